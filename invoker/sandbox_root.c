/*
 * sandbox_root.c - the child side of a sandbox: pid 1 of the new namespaces.
 *
 * Everything here runs after clone() in a copy of the invoker, a multi-threaded
 * process: another thread may have held malloc's, stdio's or glibc's thread-list
 * lock at the moment of the clone, and those locks stay held forever in the copy.
 * So this file only makes system calls: no malloc, no stdio, no printf-style
 * formatting, no glibc fork() (it runs atfork handlers and takes malloc locks),
 * and no glibc set*id() (it broadcasts the change to the parent's threads, which
 * do not exist here). Errors travel as errno + a static string (inv_sync_msg).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sandbox_int.h"

#define INV_NOBODY 65534
#define INV_SYNC_FD 4 /* where pid 1 keeps the sync socket */

/* Our own /etc: never the host's (no shadow, no host users, not its resolver). */
static const char inv_etc_passwd[] = "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                                     "nobody:x:65534:65534:nobody:/tmp:/usr/sbin/nologin\n";
static const char inv_etc_group[] = "root:x:0:\nnogroup:x:65534:\n";
static const char inv_etc_hosts[] = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost\n";
static const char inv_etc_nsswitch[] = "passwd: files\ngroup: files\nhosts: files dns\n";
/* The same in every sandbox: egress ones reach the node's resolver there
 * (inv_net.c DNATs it), the others have no route and fail at once. */
static const char inv_etc_resolv[] = "nameserver 10.213.0.53\noptions timeout:2 attempts:2\n";

static const struct {
	const char *path;
	const char *data;
	size_t len;
} inv_etc_files[] = {
    {"etc/passwd", inv_etc_passwd, sizeof(inv_etc_passwd) - 1},
    {"etc/group", inv_etc_group, sizeof(inv_etc_group) - 1},
    {"etc/hosts", inv_etc_hosts, sizeof(inv_etc_hosts) - 1},
    {"etc/nsswitch.conf", inv_etc_nsswitch, sizeof(inv_etc_nsswitch) - 1},
    {"etc/resolv.conf", inv_etc_resolv, sizeof(inv_etc_resolv) - 1},
};

/* The host devices bound into /dev; static strings so failures name the device. */
static const struct {
	const char *src;
	const char *dst;
	const char *what;
} inv_devs[] = {
    {"/dev/null", "dev/null", "bind /dev/null"},
    {"/dev/zero", "dev/zero", "bind /dev/zero"},
    {"/dev/full", "dev/full", "bind /dev/full"},
    {"/dev/random", "dev/random", "bind /dev/random"},
    {"/dev/urandom", "dev/urandom", "bind /dev/urandom"},
};

typedef struct inv_link {
	const char *target;
	const char *link;
} inv_link;

/* Merged /usr: the host's /bin, /lib, ... are symlinks into it, and so are ours. */
static const inv_link inv_root_links[] = {
    {"usr/bin", "bin"},
    {"usr/lib", "lib"},
    {"usr/lib64", "lib64"},
    {"usr/sbin", "sbin"},
};
static const inv_link inv_dev_links[] = {
    {"/proc/self/fd", "dev/fd"},
    {"/proc/self/fd/0", "dev/stdin"},
    {"/proc/self/fd/1", "dev/stdout"},
    {"/proc/self/fd/2", "dev/stderr"},
};

static int inv_symlinks(const inv_link *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (symlink(l[i].target, l[i].link) < 0)
			return -1;
	}
	return 0;
}

/* Sends errno + what on fd and exits: the one way a setup step fails. */
__attribute__((noreturn)) static void inv_child_fail(int fd, const char *what, int err)
{
	inv_sync_msg m;
	memset(&m, 0, sizeof(m));
	m.err = err != 0 ? err : EIO;
	size_t n = strlen(what);
	if (n >= sizeof(m.what))
		n = sizeof(m.what) - 1;
	memcpy(m.what, what, n);
	(void)!write(fd, &m, sizeof(m));
	_exit(127);
}

static int inv_write_file(const char *path, const char *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			int e = errno;
			close(fd);
			errno = e;
			return -1;
		}
		data += w;
		len -= (size_t)w;
	}
	return close(fd);
}

/* The flags of the mount at path that a remount must keep. In a user namespace
 * the kernel locks the flags of mounts it inherited (nosuid, noexec, the atime
 * mode, ...) and refuses a remount that would clear one; statfs reports them. */
static unsigned long inv_locked_flags(const char *path)
{
	struct statfs sf;
	unsigned long f = 0;
	if (statfs(path, &sf) < 0)
		return 0;
	if (sf.f_flags & ST_NOSUID)
		f |= MS_NOSUID;
	if (sf.f_flags & ST_NODEV)
		f |= MS_NODEV;
	if (sf.f_flags & ST_NOEXEC)
		f |= MS_NOEXEC;
	if (sf.f_flags & ST_NOATIME)
		f |= MS_NOATIME;
	if (sf.f_flags & ST_NODIRATIME)
		f |= MS_NODIRATIME;
	if (sf.f_flags & ST_RELATIME)
		f |= MS_RELATIME;
	return f;
}

/* Makes the bind mount at dst read-only, nosuid and nodev. A bind mount ignores
 * the flags it is made with, hence a second, remounting call. */
static int inv_remount_ro(const char *dst, unsigned long extra)
{
	return mount(NULL, dst, NULL,
	             MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV | extra |
	                 inv_locked_flags(dst),
	             NULL);
}

/* Read-only, nosuid, nodev bind of src at dst. */
static int inv_bind_ro(const char *src, const char *dst, const char **what, const char *bind_what,
                       const char *ro_what)
{
	if (mount(src, dst, NULL, MS_BIND, NULL) < 0) {
		*what = bind_what;
		return -1;
	}
	if (inv_remount_ro(dst, 0) < 0) {
		*what = ro_what;
		return -1;
	}
	return 0;
}

/* /proc shows the sandbox's processes but also the kernel's: /proc/sys and the
 * other tunables become read-only, what describes the host (kcore, keys,
 * timers, scheduler state) is covered with /dev/null or an empty read-only
 * tmpfs. A path the kernel does not have is skipped. Needs /dev/null. */
static const char *const inv_proc_ro[] = {"proc/sys", "proc/sysrq-trigger", "proc/irq", "proc/bus",
                                          "proc/fs"};
static const char *const inv_proc_null[] = {
    "proc/kcore",         "proc/keys",     "proc/timer_list", "proc/sched_debug",
    "proc/latency_stats", "proc/kallsyms", "proc/kmsg"};
static const char *const inv_proc_empty[] = {"proc/acpi", "proc/scsi", "proc/asound",
                                             "proc/driver"};

static int inv_mask_proc(const char **what)
{
	for (size_t i = 0; i < sizeof(inv_proc_ro) / sizeof(inv_proc_ro[0]); i++) {
		if (mount(inv_proc_ro[i], inv_proc_ro[i], NULL, MS_BIND | MS_REC, NULL) < 0) {
			if (errno == ENOENT)
				continue;
			*what = "bind /proc/sys";
			return -1;
		}
		if (inv_remount_ro(inv_proc_ro[i], MS_NOEXEC) < 0) {
			*what = "remount /proc/sys read-only";
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(inv_proc_null) / sizeof(inv_proc_null[0]); i++) {
		if (mount("dev/null", inv_proc_null[i], NULL, MS_BIND, NULL) < 0 &&
		    errno != ENOENT) {
			*what = "mask a /proc file";
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(inv_proc_empty) / sizeof(inv_proc_empty[0]); i++) {
		if (mount("tmpfs", inv_proc_empty[i], "tmpfs",
		          MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=0") < 0 &&
		    errno != ENOENT) {
			*what = "mask a /proc dir";
			return -1;
		}
	}
	return 0;
}

/* Becomes root of the new user namespace (whose maps the invoker has written):
 * until now we held the invoker's host ids, which the namespace does not map,
 * and files could not be made on our own tmpfs. Changing ids clears the
 * parent-death signal, so it is set after. */
static int inv_become_ns_root(const inv_child_plan *p, const char **what)
{
	if (p->userns &&
	    (syscall(SYS_setresgid, 0, 0, 0) < 0 || syscall(SYS_setresuid, 0, 0, 0) < 0)) {
		*what = "become root of the user namespace";
		return -1;
	}
	/* pid 1 dies with the invoker (SIGKILL included), and takes the whole
	 * sandbox with it. If the invoker died before this line, its end of the
	 * sync socket is closed: check after setting, so that there is no gap. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0) {
		*what = "parent death signal";
		return -1;
	}
	struct pollfd pf = {.fd = INV_SYNC_FD, .events = POLLRDHUP};
	if (poll(&pf, 1, 0) > 0 && (pf.revents & (POLLHUP | POLLRDHUP)) != 0)
		_exit(126);
	return 0;
}

static int inv_setup_dev(const char **what)
{
	if (mkdir("dev", 0755) < 0) {
		*what = "mkdir /dev";
		return -1;
	}
	if (mount("tmpfs", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=64k") < 0) {
		*what = "mount /dev";
		return -1;
	}
	for (size_t i = 0; i < sizeof(inv_devs) / sizeof(inv_devs[0]); i++) {
		int fd = open(inv_devs[i].dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
		if (fd < 0 || close(fd) < 0 ||
		    mount(inv_devs[i].src, inv_devs[i].dst, NULL, MS_BIND, NULL) < 0) {
			*what = inv_devs[i].what;
			return -1;
		}
	}
	return 0;
}

/* Brings lo up: the new net ns starts with lo down, and a runtime that talks to
 * itself over 127.0.0.1 would fail in confusing ways. System calls only: the
 * network namespace pool (sandbox_netns.c) uses it too. */
int inv_loopback_up(void)
{
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	memcpy(ifr.ifr_name, "lo", 3);
	int rv = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (rv == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rv = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	int e = errno;
	close(fd);
	errno = e;
	return rv;
}

/* Builds the root on a tmpfs mounted over p->root and pivots into it. */
static int inv_setup_root(const inv_child_plan *p, const char **what)
{
	/* Nothing we mount may propagate back to the host's mount namespace. */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) {
		*what = "make / rprivate";
		return -1;
	}
	/* The runtime dir may sit below dirs that only the invoker's host uid may
	 * search (a 0700 temp dir in tests): take a detached copy of it now, while
	 * we still hold that uid, and attach it once the root is built. */
	int rt = (int)syscall(SYS_open_tree, AT_FDCWD, p->runtime_dir,
	                      OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (rt < 0) {
		*what = "open runtime dir";
		return -1;
	}
	int rd = -1;
	if (p->run_dir != NULL && (rd = (int)syscall(SYS_open_tree, AT_FDCWD, p->run_dir,
	                                             OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) < 0) {
		*what = "open run dir";
		return -1;
	}
	int it = -1;
	if (p->init != NULL && (it = (int)syscall(SYS_open_tree, AT_FDCWD, p->init,
	                                          OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) < 0) {
		*what = "open init";
		return -1;
	}
	int lt = -1;
	if (p->launcher != NULL && (lt = (int)syscall(SYS_open_tree, AT_FDCWD, p->launcher,
	                                              OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC)) < 0) {
		*what = "open launcher";
		return -1;
	}
	/* The root's mount point is the same dir for every sandbox (each mounts
	 * over it in its own mount namespace), and it holds the run dirs: hence
	 * after the open_trees. uid=0 is read in the sandbox's user namespace:
	 * the root dir belongs to the sandbox's root, who makes what is in it. */
	if (mount("tmpfs", p->root, "tmpfs", MS_NOSUID | MS_NODEV,
	          "mode=0755,size=1m,uid=0,gid=0") < 0) {
		*what = "mount root tmpfs";
		return -1;
	}
	/* From here on paths are relative to the new root, so the parent never has
	 * to build "<root>/usr"-style strings for us. */
	if (chdir(p->root) < 0) {
		*what = "chdir root";
		return -1;
	}
	if (inv_become_ns_root(p, what) < 0)
		return -1;
	static const char *const dirs[] = {"usr", "gust", "etc", "tmp", "proc", "run", "run/gust"};
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		if (mkdir(dirs[i], 0755) < 0) {
			*what = "mkdir in root";
			return -1;
		}
	}
	if (inv_symlinks(inv_root_links, sizeof(inv_root_links) / sizeof(inv_root_links[0])) < 0) {
		*what = "symlink in root";
		return -1;
	}
	if (inv_bind_ro("/usr", "usr", what, "bind /usr", "remount /usr read-only") < 0)
		return -1;
	if (syscall(SYS_move_mount, rt, "", AT_FDCWD, "gust", MOVE_MOUNT_F_EMPTY_PATH) < 0) {
		*what = "attach runtime dir at /gust";
		return -1;
	}
	close(rt);
	if (inv_remount_ro("gust", 0) < 0) {
		*what = "remount /gust read-only";
		return -1;
	}
	if (rd >= 0) {
		if (syscall(SYS_move_mount, rd, "", AT_FDCWD, "run/gust", MOVE_MOUNT_F_EMPTY_PATH) <
		    0) {
			*what = "attach run dir at /run/gust";
			return -1;
		}
		close(rd);
		/* Read-only: the action cannot plant files there; connecting to
		 * the socket in it needs no write access to the mount. */
		if (inv_remount_ro("run/gust", 0) < 0) {
			*what = "remount /run/gust read-only";
			return -1;
		}
	}
	if (it >= 0) {
		int fd = open(".init", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
		if (fd < 0 || close(fd) < 0 ||
		    syscall(SYS_move_mount, it, "", AT_FDCWD, ".init", MOVE_MOUNT_F_EMPTY_PATH) <
		        0) {
			*what = "attach init at /.init";
			return -1;
		}
		close(it);
		if (inv_remount_ro(".init", 0) < 0) {
			*what = "remount /.init read-only";
			return -1;
		}
	}
	if (lt >= 0) {
		int fd = open("launcher", O_WRONLY | O_CREAT | O_CLOEXEC, 0755);
		if (fd < 0 || close(fd) < 0 ||
		    syscall(SYS_move_mount, lt, "", AT_FDCWD, "launcher", MOVE_MOUNT_F_EMPTY_PATH) <
		        0) {
			*what = "attach the launcher at /launcher";
			return -1;
		}
		close(lt);
		if (inv_remount_ro("launcher", 0) < 0) {
			*what = "remount /launcher read-only";
			return -1;
		}
	}
	for (size_t i = 0; i < sizeof(inv_etc_files) / sizeof(inv_etc_files[0]); i++) {
		if (inv_write_file(inv_etc_files[i].path, inv_etc_files[i].data,
		                   inv_etc_files[i].len) < 0) {
			*what = "write /etc";
			return -1;
		}
	}
	if (mount("tmpfs", "tmp", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=64m") < 0) {
		*what = "mount /tmp";
		return -1;
	}
	/* We are pid 1 of the new pid namespace: this proc shows only the sandbox.
	 * hidepid=invisible also hides pid 1 from the action. Pid 1 execs the
	 * small init once the launcher runs; if that is missing it stays a copy
	 * of the invoker (its paths, its code cache), and hiding it matters. */
	if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible") <
	    0) {
		*what = "mount /proc";
		return -1;
	}
	if (inv_setup_dev(what) < 0)
		return -1;
	if (inv_symlinks(inv_dev_links, sizeof(inv_dev_links) / sizeof(inv_dev_links[0])) < 0) {
		*what = "symlink in /dev";
		return -1;
	}
	if (inv_mask_proc(what) < 0)
		return -1;
	if (mount(NULL, "dev", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC,
	          NULL) < 0) {
		*what = "remount /dev read-only";
		return -1;
	}
	/* pivot_root(".", ".") stacks the old root on top of the new one; detaching
	 * it leaves the new root alone (the pivot_root(2) man page's recipe). */
	if (syscall(SYS_pivot_root, ".", ".") < 0) {
		*what = "pivot_root";
		return -1;
	}
	if (umount2(".", MNT_DETACH) < 0) {
		*what = "detach old root";
		return -1;
	}
	if (chdir("/") < 0) {
		*what = "chdir /";
		return -1;
	}
	if (mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) <
	    0) {
		*what = "remount / read-only";
		return -1;
	}
	if (sethostname("sandbox", 7) < 0) {
		*what = "sethostname";
		return -1;
	}
	if (!p->net_ready && inv_loopback_up() < 0) {
		*what = "bring lo up";
		return -1;
	}
	return 0;
}

/* Empties the bounding set, so that no exec can ever gain a capability back.
 * Needs CAP_SETPCAP: must come before setuid, which takes it away. */
static int inv_drop_bounding(const inv_child_plan *p, const char **what)
{
	/* Up to the kernel's last capability (the invoker read it); past it
	 * prctl fails with EINVAL, which is ignored when it is not known. */
	int last = p->cap_last > 0 ? p->cap_last : 63;
	for (int cap = 0; cap <= last; cap++) {
		if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 && errno != EINVAL) {
			*what = "drop bounding capabilities";
			return -1;
		}
	}
	return 0;
}

/* Empties the ambient, permitted, effective and inheritable sets. */
static int inv_drop_caps(const char **what)
{
	if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
		*what = "clear ambient capabilities";
		return -1;
	}
	struct __user_cap_header_struct hdr = {.version = _LINUX_CAPABILITY_VERSION_3, .pid = 0};
	struct __user_cap_data_struct data[2];
	memset(data, 0, sizeof(data));
	if (syscall(SYS_capset, &hdr, data) < 0) {
		*what = "capset";
		return -1;
	}
	return 0;
}

/* The launcher: becomes nobody with nothing, then execs the runtime. Errors go
 * to exec_fd (close-on-exec: pid 1 reads EOF there when the exec worked). */
__attribute__((noreturn)) static void inv_launcher(const inv_child_plan *p, int exec_fd)
{
	const char *what = NULL;
	gid_t gid = INV_NOBODY;
	uid_t uid = INV_NOBODY;

	close(INV_SYNC_FD);
	/* The bounding set is already empty: pid 1 emptied it before starting
	 * us, and a clone inherits it. */
	/* Raw syscalls: see the top of the file for why not glibc's wrappers. */
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		inv_child_fail(exec_fd, "setgroups", errno);
	if (syscall(SYS_setresgid, gid, gid, gid) < 0)
		inv_child_fail(exec_fd, "setresgid nobody", errno);
	if (syscall(SYS_setresuid, uid, uid, uid) < 0)
		inv_child_fail(exec_fd, "setresuid nobody", errno);
	if (inv_drop_caps(&what) < 0)
		inv_child_fail(exec_fd, what, errno);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		inv_child_fail(exec_fd, "no_new_privs", errno);
	struct rlimit core = {0, 0};
	struct rlimit nofile = {1024, 1024};
	if (setrlimit(RLIMIT_CORE, &core) < 0 || setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		inv_child_fail(exec_fd, "setrlimit", errno);
	/* Keep only 0..3; exec_fd must survive until the exec itself, so mark
	 * instead of close. */
	if (syscall(SYS_close_range, 4, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
		inv_child_fail(exec_fd, "close_range", errno);
	/* Last: the filter forbids calls made above (setgroups is fine, but
	 * unshare and mount are not). */
	if (p->seccomp != NULL && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, p->seccomp, 0, 0) < 0)
		inv_child_fail(exec_fd, "seccomp", errno);
	execve(p->exec_path, p->argv, p->envp);
	inv_child_fail(exec_fd, "exec launcher", errno);
}

typedef struct inv_launch_arg {
	const inv_child_plan *plan;
	int exec_fd;
} inv_launch_arg;

static int inv_launcher_main(void *arg)
{
	inv_launch_arg *la = arg;
	inv_launcher(la->plan, la->exec_fd);
}

/* Resets what the invoker's thread left us: its signal handlers (which would
 * run the invoker's code in this copy) and its blocked-signal mask. */
static void inv_reset_signals(void)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	for (int sig = 1; sig < NSIG; sig++) {
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)sigaction(sig, &sa, NULL);
	}
	sigset_t none;
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
}

/* Waits for the launcher's exec (EOF on exec_fd) or its error, and tells the
 * invoker. */
static void inv_report_start(int exec_fd)
{
	inv_sync_msg m;
	ssize_t n;
	memset(&m, 0, sizeof(m));
	do {
		n = read(exec_fd, &m, sizeof(m));
	} while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(m))
		memset(&m, 0, sizeof(m)); /* EOF: exec succeeded, m.err == 0 is "ready" */
	(void)!write(INV_SYNC_FD, &m, sizeof(m));
	close(exec_fd);
	close(INV_SYNC_FD);
}

int inv_child_main(void *arg)
{
	const inv_child_plan *p = arg;
	const char *what = NULL;
	int src[5] = {p->fds[0], p->fds[1], p->fds[2], p->fds[3], p->sync_fd};
	int hi[5];

	/* Move the five fds we keep to 0..4 and close the rest: this copy holds
	 * every fd the invoker had open, including other sandboxes' pipe ends
	 * (whose EOF must not be delayed by us). Going through fds >= 10 first
	 * keeps dup2 from overwriting a source that sits in 0..4. */
	for (int i = 0; i < 5; i++) {
		hi[i] = fcntl(src[i], F_DUPFD, 10);
		if (hi[i] < 0)
			inv_child_fail(p->sync_fd, "dup fds", errno);
	}
	for (int i = 0; i < 5; i++) {
		if (dup2(hi[i], i) < 0)
			inv_child_fail(p->sync_fd, "dup2 fds", errno);
	}
	if (syscall(SYS_close_range, 5, ~0U, 0) < 0)
		inv_child_fail(INV_SYNC_FD, "close_range", errno);
	inv_reset_signals();
	/* The invoker's assistant thread does our parent's part (the creating
	 * thread is suspended until we exec): it learns here that we run. */
	if (p->shared_vm && write(INV_SYNC_FD, "h", 1) != 1)
		_exit(126);

	/* Wait for the invoker's first go: our id maps are in place. */
	char go;
	ssize_t gn;
	do {
		gn = read(INV_SYNC_FD, &go, 1);
	} while (gn < 0 && errno == EINTR);
	if (gn != 1)
		_exit(126); /* the invoker gave up on us, or died */
	/* The invoker's supplementary groups (root's group 0) must not follow us
	 * into the sandbox. */
	if (syscall(SYS_setgroups, 0, NULL) < 0)
		inv_child_fail(INV_SYNC_FD, "setgroups", errno);
	if (inv_setup_root(p, &what) < 0)
		inv_child_fail(INV_SYNC_FD, what, errno);

	/* The second go: the invoker made our cgroup and moved us into it while
	 * we built the root. Nothing of the action runs before this. */
	do {
		gn = read(INV_SYNC_FD, &go, 1);
	} while (gn < 0 && errno == EINTR);
	if (gn != 1)
		_exit(126);
	/* Rooted at our own cgroup: /proc/self/cgroup shows "/" and nothing of
	 * the host's tree. */
	if (unshare(CLONE_NEWCGROUP) < 0)
		inv_child_fail(INV_SYNC_FD, "new cgroup namespace", errno);
	/* Empty the bounding set once, here, for us and the launcher (which
	 * inherits it): the launcher's start is on the critical path, and so is
	 * what we do between its exec and ours. */
	if (inv_drop_bounding(p, &what) < 0)
		inv_child_fail(INV_SYNC_FD, what, errno);

	int ep[2];
	if (pipe2(ep, O_CLOEXEC) < 0)
		inv_child_fail(INV_SYNC_FD, "pipe", errno);
	/* The launcher starts as posix_spawn starts a child: in our memory, on a
	 * stack of its own, with us suspended until it has exec'd or died
	 * (CLONE_VFORK). No copy of the address space (which is still a copy of
	 * the invoker's), and by the time we run again exec_fd already holds the
	 * launcher's error or its EOF. It only makes system calls on its stack;
	 * its errno is ours, and we are not running. */
	char launcher_stack[64 * 1024] __attribute__((aligned(16)));
	inv_launch_arg la = {.plan = p, .exec_fd = ep[1]};
	pid_t launcher = clone(inv_launcher_main, launcher_stack + sizeof(launcher_stack),
	                       CLONE_VM | CLONE_VFORK | SIGCHLD, &la);
	if (launcher < 0)
		inv_child_fail(INV_SYNC_FD, "start launcher", errno);
	close(ep[1]);
	/* Only the launcher may hold the pipes: their EOF is how the invoker learns
	 * that it died. */
	for (int fd = 0; fd < 4; fd++)
		close(fd);
	inv_report_start(ep[0]);
	/* pid 1 keeps uid 0 (it owns nothing the action could reach) but needs no
	 * capability to reap. */
	(void)inv_drop_caps(&what);

	/* Become the small init: nothing of the invoker's memory stays here.
	 * It is no set-id binary, so the parent-death signal survives the exec.
	 * The launcher's pid goes as text, formatted without stdio. */
	if (p->init != NULL) {
		char num[16];
		int k = (int)sizeof(num) - 1;
		num[k] = '\0';
		unsigned v = (unsigned)launcher;
		do {
			num[--k] = (char)('0' + v % 10);
			v /= 10;
		} while (v != 0 && k > 0);
		char *const iargv[] = {"init", &num[k], NULL};
		char *const ienv[] = {NULL};
		execve("/.init", iargv, ienv);
		/* Not fatal with a memory of our own: stay the reaper below. In
		 * the invoker's memory we must not stay: the sandbox ends. */
		if (p->shared_vm)
			_exit(125);
	}
	/* The reaper: orphans re-parent to us; the launcher's exit ends the
	 * sandbox (our exit kills everything left in the pid namespace). */
	for (;;) {
		int st;
		pid_t w = waitpid(-1, &st, 0);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			_exit(125);
		if (w == launcher)
			_exit(WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
	}
}
