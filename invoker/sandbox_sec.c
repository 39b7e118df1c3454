/*
 * sandbox_sec.c - the seccomp filter of every sandbox, built once per process
 * with libseccomp and kept as a raw BPF program: the sandbox child may not
 * allocate (see sandbox_root.c), so it only hands the finished program to
 * prctl(PR_SET_SECCOMP).
 *
 * An allow-list, in the spirit of the default profiles of Docker and podman
 * (written here from the kernel's syscall table, not copied): a call is
 * allowed only if python:3, nodejs:20 or an ordinary native executable has
 * a use for it. Everything else is refused, in one of two ways:
 *
 *  - EPERM for what we know and deny on purpose (sec_denied: mounts,
 *    namespaces, ptrace, kernel modules, kexec, bpf, keyrings, clocks, swap,
 *    reboot, perf, userfaultfd, io_uring, fanotify, ...): "not allowed" is
 *    the honest answer, and runtimes do not retry it another way;
 *  - ENOSYS for everything else, above all calls newer than this list (or
 *    than libseccomp's table): glibc, node and python probe new calls
 *    (clone3, faccessat2, fchmodat2, rseq, statx, ...) and fall back to the
 *    old ones only on ENOSYS, so a kernel newer than this file degrades to
 *    "the call does not exist" instead of breaking a runtime.
 *
 * clone3 gets ENOSYS, because its flags sit in memory a filter cannot read:
 * libc then falls back to clone, whose namespace flags the filter refuses.
 * socket and socketpair take only AF_UNIX, AF_INET, AF_INET6, and AF_NETLINK
 * with NETLINK_ROUTE (getaddrinfo and if_nameindex ask the kernel for the
 * interfaces through it); vsock, packet, alg, key, the other netlink
 * protocols and every other family get EAFNOSUPPORT / EPROTONOSUPPORT, as
 * from a kernel built without them. Only the native ABI is allowed: an i386
 * (int 0x80) or x32 call from inside gets ENOSYS, since the compat entry
 * points are a separate attack surface no function needs.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/netlink.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gust/util.h"
#include "sandbox_int.h"

/* Allowed whatever their arguments: files, memory, threads, signals, time,
 * sockets (the calls after socket(): the family is checked there), pipes,
 * polling, process control within the sandbox's own pid namespace, SysV and
 * POSIX IPC (the sandbox has its own ipc namespace), and the id calls (the
 * launcher runs as nobody without capabilities in a user namespace: the
 * kernel's own checks refuse what would matter). Names this libseccomp does
 * not know on this architecture are skipped (then ENOSYS, see above). */
static const char *const sec_allowed[] = {
    /* files and directories */
    "read",
    "write",
    "readv",
    "writev",
    "pread64",
    "pwrite64",
    "preadv",
    "pwritev",
    "preadv2",
    "pwritev2",
    "open",
    "openat",
    "openat2",
    "creat",
    "close",
    "close_range",
    "lseek",
    "_llseek",
    "stat",
    "fstat",
    "lstat",
    "newfstatat",
    "statx",
    "statfs",
    "fstatfs",
    "access",
    "faccessat",
    "faccessat2",
    "getdents",
    "getdents64",
    "getcwd",
    "chdir",
    "fchdir",
    "mkdir",
    "mkdirat",
    "rmdir",
    "rename",
    "renameat",
    "renameat2",
    "link",
    "linkat",
    "unlink",
    "unlinkat",
    "symlink",
    "symlinkat",
    "readlink",
    "readlinkat",
    "chmod",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "chown",
    "fchown",
    "fchownat",
    "lchown",
    "umask",
    "truncate",
    "ftruncate",
    "fallocate",
    "fadvise64",
    "readahead",
    "fsync",
    "fdatasync",
    "sync",
    "syncfs",
    "sync_file_range",
    "flock",
    "fcntl",
    "ioctl",
    "dup",
    "dup2",
    "dup3",
    "utime",
    "utimes",
    "utimensat",
    "futimesat",
    "mknod",
    "mknodat",
    "getxattr",
    "lgetxattr",
    "fgetxattr",
    "setxattr",
    "lsetxattr",
    "fsetxattr",
    "listxattr",
    "llistxattr",
    "flistxattr",
    "removexattr",
    "lremovexattr",
    "fremovexattr",
    "sendfile",
    "splice",
    "tee",
    "vmsplice",
    "copy_file_range",
    "inotify_init",
    "inotify_init1",
    "inotify_add_watch",
    "inotify_rm_watch",
    "memfd_create",
    "cachestat",
    /* asynchronous I/O (the old io_* calls; io_uring is denied) */
    "io_setup",
    "io_destroy",
    "io_submit",
    "io_cancel",
    "io_getevents",
    "io_pgetevents",
    /* pipes, events, polling */
    "pipe",
    "pipe2",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "timerfd_settime",
    "timerfd_gettime",
    "poll",
    "ppoll",
    "select",
    "pselect6",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_wait",
    "epoll_pwait",
    "epoll_pwait2",
    /* memory */
    "brk",
    "mmap",
    "munmap",
    "mremap",
    "mprotect",
    "madvise",
    "msync",
    "mincore",
    "mlock",
    "mlock2",
    "munlock",
    "mlockall",
    "munlockall",
    "remap_file_pages",
    "membarrier",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "get_mempolicy",
    "set_mempolicy",
    "mbind",
    "map_shadow_stack",
    "mseal",
    /* processes and threads (clone is checked below) */
    "fork",
    "vfork",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "wait4",
    "waitid",
    "kill",
    "tkill",
    "tgkill",
    "getpid",
    "getppid",
    "gettid",
    "getpgid",
    "setpgid",
    "getpgrp",
    "getsid",
    "setsid",
    "set_tid_address",
    "set_robust_list",
    "get_robust_list",
    "futex",
    "futex_waitv",
    "futex_wake",
    "futex_wait",
    "futex_requeue",
    "rseq",
    "arch_prctl",
    "set_thread_area",
    "get_thread_area",
    "prctl",
    "seccomp",
    "capget",
    "capset",
    "getrlimit",
    "setrlimit",
    "prlimit64",
    "getrusage",
    "times",
    "getpriority",
    "setpriority",
    "ioprio_get",
    "ioprio_set",
    "sched_yield",
    "sched_getaffinity",
    "sched_setaffinity",
    "sched_getparam",
    "sched_setparam",
    "sched_getscheduler",
    "sched_setscheduler",
    "sched_getattr",
    "sched_setattr",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_rr_get_interval",
    "getcpu",
    "pidfd_open",
    "pidfd_send_signal",
    "process_mrelease",
    "landlock_create_ruleset",
    "landlock_add_rule",
    "landlock_restrict_self",
    /* ids */
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "getresuid",
    "getresgid",
    "getgroups",
    "setuid",
    "setgid",
    "setreuid",
    "setregid",
    "setresuid",
    "setresgid",
    "setgroups",
    "setfsuid",
    "setfsgid",
    /* signals */
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "rt_sigpending",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigqueueinfo",
    "rt_tgsigqueueinfo",
    "sigaltstack",
    "pause",
    "restart_syscall",
    "alarm",
    /* time */
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "time",
    "getitimer",
    "setitimer",
    "timer_create",
    "timer_settime",
    "timer_gettime",
    "timer_getoverrun",
    "timer_delete",
    /* sockets, once made */
    "bind",
    "connect",
    "listen",
    "accept",
    "accept4",
    "getsockname",
    "getpeername",
    "getsockopt",
    "setsockopt",
    "sendto",
    "recvfrom",
    "sendmsg",
    "recvmsg",
    "sendmmsg",
    "recvmmsg",
    "shutdown",
    /* IPC, in the sandbox's own ipc namespace */
    "shmget",
    "shmat",
    "shmdt",
    "shmctl",
    "semget",
    "semop",
    "semtimedop",
    "semctl",
    "msgget",
    "msgsnd",
    "msgrcv",
    "msgctl",
    "mq_open",
    "mq_unlink",
    "mq_timedsend",
    "mq_timedreceive",
    "mq_notify",
    "mq_getsetattr",
    /* the system, read only */
    "uname",
    "sysinfo",
    "getrandom",
};

/* Refused with EPERM (see the top of the file). Kept as a list of its own,
 * beside the allow-list, so that a later edit cannot allow one of these by
 * accident: sec_build refuses to start if a name is in both. */
static const char *const sec_denied[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "statmount",
    "listmount",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "process_madvise",
    "pidfd_getfd",
    "kcmp",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "clock_settime",
    "clock_adjtime",
    "settimeofday",
    "adjtimex",
    "stime",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "open_by_handle_at",
    "name_to_handle_at",
    "perf_event_open",
    "userfaultfd",
    "iopl",
    "ioperm",
    "modify_ldt",
    "uselib",
    "vhangup",
    "lookup_dcookie",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
    "fanotify_mark",
    "memfd_secret",
    "nfsservctl",
    "sysfs",
    "_sysctl",
    "ustat",
    "migrate_pages",
    "move_pages",
    "set_mempolicy_home_node",
    "vm86",
    "vm86old",
};

/* Namespace flags clone must not carry. */
#define SEC_CLONE_NS                                                                               \
	(CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
	 CLONE_NEWCGROUP | 0x00000080 /* CLONE_NEWTIME */)

/* The socket families a function may open; AF_NETLINK only for
 * NETLINK_ROUTE (checked apart). */
static const int sec_families[] = {AF_UNIX, AF_INET, AF_INET6};

/* personality(2) values that change nothing a function could abuse: the
 * query (0xffffffff) and plain Linux. READ_IMPLIES_EXEC, ADDR_NO_RANDOMIZE
 * and the rest weaken the process's own defences: the default, ENOSYS
 * (libseccomp cannot say "between 0 and 0xffffffff" in one rule, and rules
 * of one call with different actions must not overlap). */
static const scmp_datum_t sec_personas[] = {0x0, 0xffffffffUL};

static int sec_name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(name, list[i]) == 0)
			return 1;
	return 0;
}

#define SEC_N(a) (sizeof(a) / sizeof((a)[0]))

/* socket(2) and socketpair(2): the allowed families, then every other one
 * refused with the errno a kernel without it would give. Comparisons are on
 * all 64 bits of the register: a family with junk in the upper half matches
 * no allow rule and falls to the default action. */
static int sec_sockets(scmp_filter_ctx ctx)
{
	int rv;
	for (size_t i = 0; i < SEC_N(sec_families); i++)
		if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
		                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)sec_families[i]))) <
		    0)
			return rv;
	if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 2,
	                           SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
	                           SCMP_A2(SCMP_CMP_EQ, NETLINK_ROUTE))) < 0)
		return rv;
	if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPROTONOSUPPORT), SCMP_SYS(socket), 2,
	                           SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
	                           SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE))) < 0)
		return rv;
	for (int f = 0; f < AF_MAX; f++) {
		bool ok = f == AF_NETLINK;
		for (size_t i = 0; i < SEC_N(sec_families); i++)
			ok = ok || f == sec_families[i];
		if (!ok &&
		    (rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
		                           SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)f))) < 0)
			return rv;
	}
	if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
	                           SCMP_A0(SCMP_CMP_GE, AF_MAX))) < 0)
		return rv;
	/* A pair is only ever local. */
	if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socketpair), 1,
	                           SCMP_A0(SCMP_CMP_EQ, AF_UNIX))) < 0)
		return rv;
	return seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1,
	                        SCMP_A0(SCMP_CMP_NE, AF_UNIX));
}

static int sec_rules(scmp_filter_ctx ctx)
{
	int rv;
	/* The native ABI only; foreign ones (i386, x32) get ENOSYS. Branches
	 * of the filter as a tree, not a chain: a call costs log2(n) tests. */
	if ((rv = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_ERRNO(ENOSYS))) < 0 ||
	    (rv = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2)) < 0)
		return rv;
	for (size_t i = 0; i < SEC_N(sec_allowed); i++) {
		if (sec_name_in(sec_allowed[i], sec_denied, SEC_N(sec_denied)))
			return -EINVAL; /* a list edited into a contradiction */
		int nr = seccomp_syscall_resolve_name(sec_allowed[i]);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue; /* not a call on this architecture, or unknown here */
		if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0)) < 0)
			return rv;
	}
	for (size_t i = 0; i < SEC_N(sec_denied); i++) {
		int nr = seccomp_syscall_resolve_name(sec_denied[i]);
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;
		if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0)
			return rv;
	}
	/* clone without namespace flags; with any of them, EPERM (one rule per
	 * flag: masked_eq cannot say "any bit of"). */
	if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
	                           SCMP_A0(SCMP_CMP_MASKED_EQ, SEC_CLONE_NS, 0))) < 0)
		return rv;
	for (unsigned long bit = 1; bit != 0; bit <<= 1) {
		if ((SEC_CLONE_NS & bit) == 0)
			continue;
		if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
		                           SCMP_A0(SCMP_CMP_MASKED_EQ, bit, bit))) < 0)
			return rv;
	}
	/* clone3 is in neither list: the default, ENOSYS (libseccomp refuses a
	 * rule whose action is the default's). */
	for (size_t i = 0; i < SEC_N(sec_personas); i++)
		if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(personality), 1,
		                           SCMP_A0(SCMP_CMP_EQ, sec_personas[i]))) < 0)
			return rv;
	return sec_sockets(ctx);
}

static pthread_mutex_t sec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_fprog sec_prog;

static int sec_build(struct sock_fprog *out, gust_error **err)
{
	/* Unknown or unlisted: ENOSYS (see the top of the file). */
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(ENOSYS));
	int rv = 0, fd = -1;
	if (ctx == NULL)
		return gust_error_set(err, GUST_ENOMEM, "seccomp: init failed");
	if ((rv = sec_rules(ctx)) < 0)
		goto fail;
	/* libseccomp writes the program to an fd; read it back into memory. */
	if ((fd = memfd_create("gust-seccomp", MFD_CLOEXEC)) < 0) {
		rv = -errno;
		goto fail;
	}
	if ((rv = seccomp_export_bpf(ctx, fd)) < 0)
		goto fail;
	off_t len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) != 0) {
		rv = -EINVAL;
		goto fail;
	}
	struct sock_filter *f = gust_xmalloc((size_t)len);
	if (pread(fd, f, (size_t)len, 0) != len) {
		free(f);
		rv = -EIO;
		goto fail;
	}
	out->filter = f;
	out->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
	close(fd);
	seccomp_release(ctx);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return gust_error_set(err, GUST_EIO, "seccomp: building the filter: %s", strerror(-rv));
}

int inv_seccomp_prog(const struct sock_fprog **progp, gust_error **err)
{
	int rv = 0;
	pthread_mutex_lock(&sec_lock);
	if (sec_prog.filter == NULL)
		rv = sec_build(&sec_prog, err);
	pthread_mutex_unlock(&sec_lock);
	*progp = rv == 0 ? &sec_prog : NULL;
	return rv;
}
