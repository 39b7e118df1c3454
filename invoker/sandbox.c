/*
 * sandbox.c - the invoker side of a sandbox: creating it (clone into new
 * namespaces, wait for the launcher's exec) and destroying it. The child side
 * is sandbox_root.c; talking to the launcher is sandbox_io.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/util.h"
#include "sandbox.h"
#include "sandbox_int.h"

/* The child's stack: it only makes system calls, but sanitizer builds use
 * bigger frames. */
#define INV_CHILD_STACK (256 * 1024)
#define INV_GUARD 4096
/* How long create waits for the launcher's exec. Mounts and the new net
 * namespace take a few ms; this only guards against a wedged child. */
#define INV_CREATE_TIMEOUT_MS 10000
#define INV_PIPE_BYTES (1024 * 1024)

static const char *const inv_env[] = {
    "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/tmp", "LANG=C.UTF-8", "TMPDIR=/tmp", NULL,
};
static const char *const inv_argv_python[] = {"/usr/bin/python3", "-u", "/gust/python/launcher.py",
                                              NULL};
static const char *const inv_argv_node[] = {"/usr/bin/node", "/gust/nodejs/launcher.js", NULL};
static const char *const inv_argv_native[] = {"/gust/native/launcher", NULL};
static const char *const inv_argv_native_c[] = {"/launcher", NULL};

/* Picks the launcher for a kind; its file relative to the runtime dir in *rel. */
static const char *const *inv_kind_argv(const char *kind, const char **rel)
{
	if (strncmp(kind, "python", 6) == 0) {
		*rel = "python/launcher.py";
		return inv_argv_python;
	}
	if (strncmp(kind, "nodejs", 6) == 0) {
		*rel = "nodejs/launcher.js";
		return inv_argv_node;
	}
	if (strcmp(kind, "native") == 0) {
		*rel = "native/launcher";
		return inv_argv_native;
	}
	return NULL;
}

static int inv_errno_code(int e)
{
	switch (e) {
	case EPERM:
	case EACCES:
		return GUST_EPERM;
	case ENOENT:
		return GUST_ENOENT;
	case ENOMEM:
		return GUST_ENOMEM;
	default:
		return GUST_EIO;
	}
}

static void inv_closefd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int inv_mkdir(const char *path, gust_error **err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return gust_error_set(err, inv_errno_code(errno), "sandbox: mkdir %s: %s", path,
		                      strerror(errno));
	return 0;
}

/* Makes a pipe whose parent end (read end if parent_reads) is non-blocking;
 * both ends are close-on-exec (the child's dup2 clears that on its copies). */
static int inv_pipe(int p[2], bool parent_reads, gust_error **err)
{
	if (pipe2(p, O_CLOEXEC) < 0)
		return gust_error_set(err, GUST_EIO, "sandbox: pipe: %s", strerror(errno));
	int pfd = parent_reads ? p[0] : p[1];
	if (fcntl(pfd, F_SETFL, O_NONBLOCK) < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		p[0] = p[1] = -1;
		return gust_error_set(err, GUST_EIO, "sandbox: pipe: %s", strerror(e));
	}
	return 0;
}

/* Waits for pid 1's sync message: ready, an error, or nothing (it died). */
static int inv_wait_ready(inv_sandbox *sb, int sync_fd, gust_error **err)
{
	struct pollfd pfd = {.fd = sync_fd, .events = POLLIN};
	uint64_t deadline = gust_now_ms() + INV_CREATE_TIMEOUT_MS;
	inv_sync_msg m;
	ssize_t n;

	for (;;) {
		int64_t left = (int64_t)(deadline - gust_now_ms());
		if (left <= 0)
			return gust_error_set(err, GUST_ETIMEDOUT,
			                      "sandbox: no answer from the sandbox within %d ms",
			                      INV_CREATE_TIMEOUT_MS);
		int r = poll(&pfd, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return gust_error_set(err, GUST_EIO, "sandbox: poll: %s", strerror(errno));
		if (r == 0)
			continue;
		n = recv(sync_fd, &m, sizeof(m), 0);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		break;
	}
	if (n == (ssize_t)sizeof(m) && m.err == 0)
		return 0;
	if (n == (ssize_t)sizeof(m)) {
		m.what[sizeof(m.what) - 1] = 0;
		return gust_error_set(err, inv_errno_code(m.err), "sandbox: %s: %s", m.what,
		                      strerror(m.err));
	}
	/* No message: the child died before it could say why. */
	int st = sb->exit_status;
	if (sb->pid > 0 && waitpid(sb->pid, &st, 0) == sb->pid)
		sb->pid = -1;
	return gust_error_set(err, GUST_EIO,
	                      "sandbox: setup process exited (status %d) before "
	                      "reporting",
	                      WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
}

/* Writes one id map of the sandbox's user namespace: its ids 0..65535 are
 * host ids base..base+65535. We are privileged in the parent namespace, so
 * setgroups stays allowed: the sandbox must drop the invoker's supplementary
 * groups (root's group 0) itself, which "deny" would forbid. */
static int inv_write_map(pid_t pid, const char *which, unsigned base, gust_error **err)
{
	char path[64], map[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, which);
	int n = snprintf(map, sizeof(map), "0 %u %u\n", base, INV_USERNS_SIZE);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, map, (size_t)n) != n) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return gust_error_set(err, inv_errno_code(e), "sandbox: write %s: %s", path,
		                      strerror(e));
	}
	close(fd);
	return 0;
}

/* What the invoker does for a new pid 1 before it may build its root: the id
 * maps, then the first go byte. */
static int inv_release(inv_sandbox *sb, const inv_sandbox_cfg *cfg, int sync_fd, gust_error **err)
{
	int rv;
	if (sb->ids != 0 && ((rv = inv_write_map(sb->pid, "uid_map", sb->ids, err)) != 0 ||
	                     (rv = inv_write_map(sb->pid, "gid_map", sb->ids, err)) != 0))
		return rv;
	if (send(sync_fd, "g", 1, MSG_NOSIGNAL) != 1)
		return gust_error_set(err, GUST_EIO, "sandbox: go: %s", strerror(errno));
	return 0;
}

/* The sandbox's cgroup, made and joined while pid 1 builds its root on the
 * other CPU; pid 1 waits for the second go byte before it enters its cgroup
 * namespace and starts the launcher, so no user code runs outside the limits. */
static int inv_limit(inv_sandbox *sb, const inv_sandbox_cfg *cfg, const char *id, int sync_fd,
                     gust_error **err)
{
	int rv;
	if (cfg->cgroups != NULL) {
		/* cpu shares in proportion to memory, as OpenWhisk: 256 MB is 1024. */
		inv_cg_limits lim = {
		    .memory_mb = cfg->memory_mb,
		    .pids_max = cfg->pids_max > 0 ? cfg->pids_max : INV_PIDS_DEFAULT,
		    .cpu_shares = cfg->memory_mb > 0 ? cfg->memory_mb * 4 : 1024,
		};
		if ((rv = inv_cgroup_create(cfg->cgroups, id, &lim, &sb->cg, err)) != 0 ||
		    (rv = inv_cgroup_attach(sb->cg, sb->pid, err)) != 0)
			return gust_error_wrap(err, "sandbox");
	}
	/* A failed send means pid 1 has given up already: wait_ready reads why. */
	(void)send(sync_fd, "c", 1, MSG_NOSIGNAL);
	return 0;
}

/*
 * The assistant. pid 1 is cloned with CLONE_VM|CLONE_VFORK: it runs in the
 * invoker's memory, on a stack of its own, until it execs the small init, and
 * the creating thread sleeps until then. A copy of the invoker's address space
 * is what a fork would make instead, and it grows with the invoker: with 100
 * MB dirty in its heap a sandbox start took 2.9 ms longer (5.6 ms instead of
 * 2.7). Sharing is safe because nothing of the action runs before both pid 1
 * and the launcher have exec'd (each into a memory of its own), and pid 1 only
 * makes system calls; the errno it writes is the creating thread's, which
 * sleeps. The parent's part of the setup (id maps, the cgroup, the go bytes)
 * cannot wait for the creating thread, so this thread does it, for one
 * sandbox at a time, in the order they are cloned.
 */
typedef struct inv_assist_req {
	struct inv_assist_req *next;
	inv_sandbox *sb;
	const inv_sandbox_cfg *cfg;
	const char *id;
	int sync_fd;
	volatile int *pidfd; /* written by the kernel at the clone, before pid 1 runs */
	int rv;
	gust_error *err;
	bool done;
	bool resumed;         /* the creating thread is back: stop watching */
	uint64_t deadline_ms; /* pid 1 must have exec'd its init by then */
	struct inv_assist_req *next_watch;
} inv_assist_req;

static pthread_mutex_t inv_assist_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t inv_assist_cv = PTHREAD_COND_INITIALIZER;
static pthread_cond_t inv_assist_done_cv = PTHREAD_COND_INITIALIZER;
static inv_assist_req *inv_assist_head, **inv_assist_tail = &inv_assist_head;
/* Requests whose go bytes are sent and whose creating thread still sleeps:
 * a pid 1 stuck after its go (a mount or exec hanging on a dead file system)
 * would keep it asleep for good, so past the deadline the assistant kills it
 * (the vfork wait ends on SIGKILL), as the create timeout did before. */
static inv_assist_req *inv_assist_watch;
static bool inv_assist_running;

/* The pid of a pidfd, from /proc/self/fdinfo ("Pid:\t1234"). */
static pid_t inv_pidfd_pid(int pidfd)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	char *l = strstr(buf, "\nPid:");
	return l != NULL ? (pid_t)strtol(l + 6, NULL, 10) : -1;
}

static int inv_release(inv_sandbox *sb, const inv_sandbox_cfg *cfg, int sync_fd, gust_error **err);
static int inv_limit(inv_sandbox *sb, const inv_sandbox_cfg *cfg, const char *id, int sync_fd,
                     gust_error **err);

/* Waits for pid 1's hello, then does the parent's part. */
static int inv_assist_one(inv_assist_req *r, gust_error **err)
{
	struct pollfd pfd = {.fd = r->sync_fd, .events = POLLIN};
	int pr;
	do {
		pr = poll(&pfd, 1, INV_CREATE_TIMEOUT_MS);
	} while (pr < 0 && errno == EINTR);
	if (pr <= 0)
		return gust_error_set(err, GUST_ETIMEDOUT, "sandbox: pid 1 did not start");
	inv_sync_msg m;
	ssize_t n = recv(r->sync_fd, &m, sizeof(m), 0);
	if (n == (ssize_t)sizeof(m) && m.err != 0) {
		m.what[sizeof(m.what) - 1] = 0;
		return gust_error_set(err, inv_errno_code(m.err), "sandbox: %s: %s", m.what,
		                      strerror(m.err));
	}
	if (n != 1 || ((char *)&m)[0] != 'h')
		return gust_error_set(err, GUST_EIO, "sandbox: pid 1 exited before starting");
	pid_t pid = inv_pidfd_pid(*r->pidfd);
	if (pid <= 0)
		return gust_error_set(err, GUST_EIO, "sandbox: no pid for pid 1");
	r->sb->pid = pid;
	int rv = inv_release(r->sb, r->cfg, r->sync_fd, err);
	if (rv == 0)
		rv = inv_limit(r->sb, r->cfg, r->id, r->sync_fd, err);
	return rv;
}

/* Under the lock: kills the pid 1 of every watched request past its deadline;
 * the time to the next deadline in *wait_ms (-1: none). */
static void inv_assist_reap_late(int64_t *wait_ms)
{
	uint64_t now = gust_now_ms();
	*wait_ms = -1;
	for (inv_assist_req **pp = &inv_assist_watch; *pp;) {
		inv_assist_req *r = *pp;
		if (now >= r->deadline_ms) {
			gust_log_error(
			    "INV-SANDBOX-STUCK",
			    "sandbox pid 1 did not finish its setup within %d ms; killing it",
			    INV_CREATE_TIMEOUT_MS);
			syscall(SYS_pidfd_send_signal, *r->pidfd, SIGKILL, NULL, 0);
			*pp = r->next_watch; /* killed: the creating thread wakes */
			continue;
		}
		int64_t left = (int64_t)(r->deadline_ms - now);
		if (*wait_ms < 0 || left < *wait_ms)
			*wait_ms = left;
		pp = &r->next_watch;
	}
}

static void *inv_assist_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&inv_assist_lock);
	for (;;) {
		while (inv_assist_head == NULL) {
			int64_t wait_ms;
			inv_assist_reap_late(&wait_ms);
			if (wait_ms < 0) {
				pthread_cond_wait(&inv_assist_cv, &inv_assist_lock);
			} else {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				ts.tv_sec += wait_ms / 1000;
				ts.tv_nsec += (wait_ms % 1000) * 1000000;
				if (ts.tv_nsec >= 1000000000) {
					ts.tv_sec++;
					ts.tv_nsec -= 1000000000;
				}
				pthread_cond_timedwait(&inv_assist_cv, &inv_assist_lock, &ts);
			}
		}
		inv_assist_req *r = inv_assist_head;
		inv_assist_head = r->next;
		if (inv_assist_head == NULL)
			inv_assist_tail = &inv_assist_head;
		pthread_mutex_unlock(&inv_assist_lock);
		gust_error *e = NULL;
		int rv = inv_assist_one(r, &e);
		/* pid 1 waits for a go byte: without one it must end, and
		 * with it the creating thread wakes. */
		if (rv != 0)
			shutdown(r->sync_fd, SHUT_RDWR);
		pthread_mutex_lock(&inv_assist_lock);
		r->rv = rv;
		r->err = e;
		r->done = true;
		if (rv == 0 && !r->resumed) {
			r->next_watch = inv_assist_watch;
			inv_assist_watch = r;
		}
		pthread_cond_broadcast(&inv_assist_done_cv);
	}
	return NULL;
}

/* Queues r for the assistant (started on first use); false if it cannot run. */
static bool inv_assist_submit(inv_assist_req *r)
{
	pthread_mutex_lock(&inv_assist_lock);
	if (!inv_assist_running) {
		pthread_t t;
		pthread_attr_t a;
		pthread_attr_init(&a);
		pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
		inv_assist_running = pthread_create(&t, &a, inv_assist_main, NULL) == 0;
		pthread_attr_destroy(&a);
		if (!inv_assist_running) {
			pthread_mutex_unlock(&inv_assist_lock);
			return false;
		}
	}
	r->next = NULL;
	r->deadline_ms = gust_now_ms() + INV_CREATE_TIMEOUT_MS;
	*inv_assist_tail = r;
	inv_assist_tail = &r->next;
	pthread_cond_signal(&inv_assist_cv);
	pthread_mutex_unlock(&inv_assist_lock);
	return true;
}

/* The creating thread is back from the clone: waits for the assistant to
 * be done with r, and takes r off the watch (it lives on our stack). */
static void inv_assist_wait(inv_assist_req *r)
{
	pthread_mutex_lock(&inv_assist_lock);
	r->resumed = true;
	while (!r->done)
		pthread_cond_wait(&inv_assist_done_cv, &inv_assist_lock);
	for (inv_assist_req **pp = &inv_assist_watch; *pp; pp = &(*pp)->next_watch) {
		if (*pp == r) {
			*pp = r->next_watch;
			break;
		}
	}
	pthread_mutex_unlock(&inv_assist_lock);
}

/* The invoker's dumpable flag as it was before any pid 1 ran in its memory. */
static int inv_dumpable(void)
{
	static int d = -1;
	int v = __atomic_load_n(&d, __ATOMIC_RELAXED);
	if (v < 0) {
		v = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
		if (v < 0)
			v = 1;
		__atomic_store_n(&d, v, __ATOMIC_RELAXED);
	}
	return v;
}

/* Clones pid 1 of the sandbox. With a network namespace made ahead, this
 * thread enters it for the clone (the child inherits it) and returns to the
 * host's: only the calling thread ever changes namespace. */
static pid_t inv_clone(const inv_sandbox_cfg *cfg, inv_child_plan *plan, int netfd, void *stack_top,
                       int *pidfd, inv_assist_req *req, unsigned owner)
{
	int flags =
	    CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_PIDFD | SIGCHLD;
	if (plan->userns)
		flags |= CLONE_NEWUSER;
	/* Shared memory needs the init that pid 1 execs to leave it (see the
	 * assistant above); without one, the copy of a fork. */
	plan->shared_vm = plan->init != NULL && inv_assist_submit(req);
	if (plan->shared_vm)
		flags |= CLONE_VM | CLONE_VFORK;
	if (netfd >= 0 && setns(netfd, CLONE_NEWNET) < 0) {
		gust_log_warn("INV-NETNS-ENTER", "cannot enter a prepared network namespace: %s",
		              strerror(errno));
		close(netfd);
		netfd = -1;
	}
	if (netfd < 0)
		flags |= CLONE_NEWNET;
	plan->net_ready = netfd >= 0;
	/* As posix_spawn: no handler of ours may run in pid 1 (in our memory,
	 * on our thread's signal stack) before it resets them, and it unblocks. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	/* The new user namespace is owned by our effective uid at the clone,
	 * and the kernel charges the sandbox's per-user counts (inotify, user
	 * namespaces, keys) to its owner in the host's namespace: the range's
	 * first uid, not root (sandbox_ids.c). This thread alone (raw system
	 * calls, not glibc's, which would change every thread) takes it for the
	 * clone, keeping real and saved uid 0 to come back; the file system uid
	 * stays 0, so pid 1 still opens the 0700 dirs it mounts from before it
	 * becomes the namespace's root. Effective capabilities are cleared
	 * meanwhile (the clone needs none: CLONE_NEWUSER comes first and the
	 * other namespaces belong to it) and come back with uid 0. */
	bool as_owner = (flags & CLONE_NEWUSER) && owner != 0;
	pid_t pid = -1;
	int ce = 0;
	if (as_owner && syscall(SYS_setresuid, -1, owner, -1) < 0) {
		ce = errno;
		as_owner = false;
	} else {
		/* Allowed: the real uid is 0. Returns the old value, never fails. */
		if (as_owner)
			(void)syscall(SYS_setfsuid, 0);
		pid = clone(inv_child_main, stack_top, flags, plan, pidfd);
		ce = errno;
	}
	if (as_owner && syscall(SYS_setresuid, -1, 0, -1) < 0) {
		/* Without effective uid 0 this worker could do nothing it must
		 * (cgroups, setns, maps): stop rather than fail strangely. */
		gust_log_error("INV-IDS-BACK", "cannot take back uid 0: %s", strerror(errno));
		abort();
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (netfd >= 0) {
		if (setns(inv_netns_pool_host(cfg->netns), CLONE_NEWNET) < 0) {
			/* Every socket this worker opened from now on would be in
			 * a sandbox's empty namespace: stop rather than fail
			 * strangely (setns to a namespace we hold open does not
			 * fail in practice). */
			gust_log_error("INV-NETNS-BACK",
			               "cannot return to the host network namespace: %s",
			               strerror(errno));
			abort();
		}
		close(netfd);
	}
	errno = ce;
	return pid;
}

/* Takes netfd (a prepared network namespace, or -1). */
static int inv_start(inv_sandbox *sb, const inv_sandbox_cfg *cfg, const char *id,
                     inv_child_plan *plan, int netfd, gust_error **err)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, res[2] = {-1, -1};
	int sync[2] = {-1, -1};
	int rv;

	if ((rv = inv_pipe(in, false, err)) != 0 || (rv = inv_pipe(out, true, err)) != 0 ||
	    (rv = inv_pipe(er, true, err)) != 0 || (rv = inv_pipe(res, true, err)) != 0)
		goto out;
	/* A run line (params) and a result of up to 1 MiB each pass in one
	 * write and one wakeup instead of sixteen 64 KiB rounds; the pages are
	 * only taken while the bytes are in the pipe. Best effort: the kernel
	 * caps it at /proc/sys/fs/pipe-max-size. */
	(void)fcntl(in[1], F_SETPIPE_SZ, INV_PIPE_BYTES);
	(void)fcntl(res[1], F_SETPIPE_SZ, INV_PIPE_BYTES);
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sync) < 0) {
		rv = gust_error_set(err, GUST_EIO, "sandbox: socketpair: %s", strerror(errno));
		goto out;
	}
	plan->fds[0] = in[0];
	plan->fds[1] = out[1];
	plan->fds[2] = er[1];
	plan->fds[3] = res[1];
	plan->sync_fd = sync[1];

	/* A guard page below: shared with us, an overflow must fault, not
	 * write into our memory. */
	char *stack = mmap(NULL, INV_CHILD_STACK + INV_GUARD, PROT_READ | PROT_WRITE,
	                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED) {
		rv = gust_error_set(err, GUST_ENOMEM, "sandbox: mmap stack: %s", strerror(errno));
		goto out;
	}
	/* pid 1 runs inv_child_main on its own stack, in our memory until it
	 * execs its init (see the assistant) or, without an init, in a copy of
	 * it as with fork; either way without fork()'s atfork handlers. The
	 * pidfd lets alive() poll for the death of pid 1 without reaping it.
	 * The cgroup namespace comes later, from the child: it must be rooted
	 * at the sandbox's cgroup, which pid 1 joins only after the clone. */
	int pidfd = -1;
	bool reaped = false;
	inv_assist_req req = {.sb = sb, .cfg = cfg, .id = id, .sync_fd = sync[0], .pidfd = &pidfd};
	(void)mprotect(stack, INV_GUARD, PROT_NONE);
	int dumpable = inv_dumpable();
	pid_t pid =
	    inv_clone(cfg, plan, netfd, stack + INV_GUARD + INV_CHILD_STACK, &pidfd, &req, sb->ids);
	netfd = -1;
	int ce = errno;
	/* pid 1 has its own copy of our fds. Closing ours also tells the
	 * assistant, if pid 1 (or the clone) failed before its hello, that no
	 * hello will come. */
	inv_closefd(&sync[1]);
	if (plan->shared_vm)
		inv_assist_wait(&req);
	/* Changing ids in our memory (pid 1's, or this thread's for the clone)
	 * made it non-dumpable (no core dumps, /proc/<us> root's): put the flag
	 * back. */
	if (plan->shared_vm || sb->ids != 0)
		(void)prctl(PR_SET_DUMPABLE, dumpable, 0, 0, 0);
	/* pid 1 has exec'd its init (CLONE_VFORK) or died, or has a copy. If
	 * it died, the launcher may still run on a stack inside this one until
	 * the kernel has emptied the pid namespace, which is done when pid 1
	 * can be reaped. */
	if (plan->shared_vm && pid > 0) {
		struct pollfd pf = {.fd = pidfd, .events = POLLIN};
		if (poll(&pf, 1, 0) > 0) {
			while (waitpid(pid, &sb->exit_status, 0) < 0 && errno == EINTR)
				;
			reaped = true;
		}
	}
	munmap(stack, INV_CHILD_STACK + INV_GUARD);
	if (pid < 0) {
		gust_error_free(req.err);
		rv = gust_error_set(err, inv_errno_code(ce), "sandbox: clone: %s", strerror(ce));
		goto out;
	}
	sb->pid = reaped ? -1 : pid;
	sb->pidfd = pidfd;
	inv_closefd(&in[0]);
	inv_closefd(&out[1]);
	inv_closefd(&er[1]);
	inv_closefd(&res[1]);
	sb->in_fd = inv_steal_fd(&in[1]);
	sb->out.fd = inv_steal_fd(&out[0]);
	sb->err.fd = inv_steal_fd(&er[0]);
	sb->res.fd = inv_steal_fd(&res[0]);
	if (plan->shared_vm) {
		/* The assistant did the parent's part while we slept. */
		if ((rv = req.rv) != 0 && err != NULL && *err == NULL)
			*err = req.err;
		else
			gust_error_free(req.err);
	} else if ((rv = inv_release(sb, cfg, sync[0], err)) == 0) {
		rv = inv_limit(sb, cfg, id, sync[0], err);
	}
	if (rv == 0) {
		/* Shared memory: pid 1 reported before its exec, which we waited
		 * for; deferring would only hide a failed start. */
		if (cfg->defer_ready && !plan->shared_vm)
			sb->sync_fd = inv_steal_fd(&sync[0]); /* inv_sandbox_settle */
		else
			rv = inv_wait_ready(sb, sync[0], err);
	}
out:
	if (netfd >= 0)
		close(netfd);
	inv_closefd(&in[0]);
	inv_closefd(&in[1]);
	inv_closefd(&out[0]);
	inv_closefd(&out[1]);
	inv_closefd(&er[0]);
	inv_closefd(&er[1]);
	inv_closefd(&res[0]);
	inv_closefd(&res[1]);
	inv_closefd(&sync[0]);
	inv_closefd(&sync[1]);
	return rv;
}

/* The sandbox's users must reach the socket in the run dir (the dirs above it
 * stay 0700: the child attaches a detached copy of the mount). */
static int inv_chmod_run(const char *path, gust_error **err)
{
	if (chmod(path, 0755) < 0)
		return gust_error_set(err, inv_errno_code(errno), "sandbox: chmod %s: %s", path,
		                      strerror(errno));
	return 0;
}

/* The kernel's last capability, read once (0 when unknown). */
static int inv_cap_last(void)
{
	static int last = -1;
	int v = __atomic_load_n(&last, __ATOMIC_RELAXED);
	if (v >= 0)
		return v;
	v = 0;
	FILE *f = fopen("/proc/sys/kernel/cap_last_cap", "re");
	if (f != NULL) {
		if (fscanf(f, "%d", &v) != 1 || v < 0 || v > 63)
			v = 0;
		fclose(f);
	}
	__atomic_store_n(&last, v, __ATOMIC_RELAXED);
	return v;
}

const char *inv_sandbox_run_dir(const inv_sandbox *sb)
{
	return sb->run;
}

int inv_sandbox_create(const inv_sandbox_cfg *cfg, inv_sandbox **sbp, gust_error **err)
{
	const char *rel = NULL;
	const char *const *argv;
	cleanup_free char *rtdir = NULL;
	cleanup_free char *launcher = NULL;
	cleanup_free char *top = NULL;
	char id[17];
	struct stat st;
	int rv;

	*sbp = NULL;
	if (cfg == NULL || cfg->kind == NULL || cfg->runtime_dir == NULL || cfg->state_dir == NULL)
		return gust_error_set(err, GUST_EINVAL,
		                      "sandbox: kind, runtime_dir and state_dir "
		                      "are required");
	if ((argv = inv_kind_argv(cfg->kind, &rel)) == NULL)
		return gust_error_set(err, GUST_ENOTSUP, "sandbox: unknown kind '%s'", cfg->kind);
	/* The mount source must be absolute: the child resolves it after chdir. */
	if ((rtdir = realpath(cfg->runtime_dir, NULL)) == NULL)
		return gust_error_set(err, inv_errno_code(errno), "sandbox: runtime dir %s: %s",
		                      cfg->runtime_dir, strerror(errno));
	launcher = gust_xasprintf("%s/%s", rtdir, rel);
	if (stat(launcher, &st) < 0)
		return gust_error_set(err, inv_errno_code(errno), "sandbox: launcher %s: %s",
		                      launcher, strerror(errno));

	/* The C launcher, when configured and present: no Python start. */
	cleanup_free char *native = NULL;
	if (strcmp(cfg->kind, "native") == 0 && cfg->native_launcher != NULL &&
	    cfg->native_launcher[0] != '\0') {
		if ((native = realpath(cfg->native_launcher, NULL)) == NULL)
			return gust_error_set(err, inv_errno_code(errno),
			                      "sandbox: launcher %s: %s", cfg->native_launcher,
			                      strerror(errno));
		argv = inv_argv_native_c;
	}

	/* pid 1 execs the small init when it is built: then no invoker memory
	 * stays in the sandbox. */
	cleanup_free char *init = realpath(GUST_SANDBOX_INIT_DEFAULT, NULL);
	if (init != NULL && access(init, X_OK) != 0) {
		free(init);
		init = NULL;
	}

	inv_sandbox *sb = gust_xcalloc(1, sizeof(*sb));
	sb->pid = -1;
	sb->pidfd = sb->in_fd = sb->out.fd = sb->err.fd = sb->res.fd = sb->sync_fd = -1;
	sb->out.name = "stdout";
	sb->err.name = "stderr";
	sb->log_limit = cfg->log_limit != 0 ? cfg->log_limit : INV_LOG_LIMIT_DEFAULT;
	sb->memory_mb = cfg->memory_mb;
	sb->ids_lock = -1;
	if (cfg->userns_base != 0 &&
	    (rv = inv_userns_ids_take(cfg->userns_base, cfg->userns_slots, &sb->ids, &sb->ids_lock,
	                              err)) != 0) {
		inv_sandbox_destroy(sb);
		return rv;
	}
	top = gust_xasprintf("%s/sandboxes", cfg->state_dir);
	/* A network namespace and a run dir made ahead, if the pool has them. */
	int netfd = inv_netns_pool_take(cfg->netns, top, &sb->run);
	if (sb->run != NULL) {
		snprintf(id, sizeof(id), "%s", strrchr(sb->run, '/') + 1);
	} else {
		gust_random_hex(id, 8);
		sb->run = gust_xasprintf("%s/%s", top, id);
		if ((rv = inv_mkdir(cfg->state_dir, err)) != 0 || (rv = inv_mkdir(top, err)) != 0 ||
		    (rv = inv_mkdir(sb->run, err)) != 0 ||
		    (rv = inv_chmod_run(sb->run, err)) != 0) {
			if (netfd >= 0)
				close(netfd);
			inv_sandbox_destroy(sb);
			return rv;
		}
	}

	const struct sock_fprog *prog = NULL;
	if ((rv = inv_seccomp_prog(&prog, err)) != 0) {
		if (netfd >= 0)
			close(netfd);
		inv_sandbox_destroy(sb);
		return rv;
	}
	inv_child_plan plan = {
	    .root = top,
	    .runtime_dir = rtdir,
	    .run_dir = sb->run,
	    .exec_path = argv[0],
	    .launcher = native,
	    .init = init,
	    .argv = (char *const *)argv,
	    .envp = (char *const *)inv_env,
	    .seccomp = prog,
	    .userns = sb->ids != 0,
	    .cap_last = inv_cap_last(),
	};
	if ((rv = inv_start(sb, cfg, id, &plan, netfd, err)) != 0) {
		inv_sandbox_destroy(sb);
		return rv;
	}
	sb->alive = true;
	*sbp = sb;
	return 0;
}

int inv_sandbox_adopt(inv_sandbox *sb, int memory_mb, int pids_max, size_t log_limit,
                      gust_error **err)
{
	sb->log_limit = log_limit != 0 ? log_limit : INV_LOG_LIMIT_DEFAULT;
	if (memory_mb == sb->memory_mb)
		return 0;
	inv_cg_limits lim = {
	    .memory_mb = memory_mb,
	    .pids_max = pids_max > 0 ? pids_max : INV_PIDS_DEFAULT,
	    .cpu_shares = memory_mb > 0 ? memory_mb * 4 : 1024,
	};
	int rv = inv_cgroup_update(sb->cg, &lim, err);
	if (rv != 0)
		return gust_error_wrap(err, "sandbox: adopting a stem cell");
	sb->memory_mb = memory_mb;
	return 0;
}

int inv_sandbox_settle(inv_sandbox *sb, gust_error **err)
{
	if (sb->sync_fd < 0)
		return 0;
	int rv = inv_wait_ready(sb, sb->sync_fd, err);
	inv_closefd(&sb->sync_fd);
	return rv;
}

void inv_sandbox_set_concurrency(inv_sandbox *sb, int n)
{
	sb->concurrency = n;
}

bool inv_sandbox_alive(const inv_sandbox *sb)
{
	if (sb == NULL || !sb->alive || sb->pidfd < 0)
		return false;
	/* A pidfd polls readable once the process has exited. */
	struct pollfd pfd = {.fd = sb->pidfd, .events = POLLIN};
	return poll(&pfd, 1, 0) == 0;
}

pid_t inv_sandbox_pid(const inv_sandbox *sb)
{
	return sb != NULL ? sb->pid : -1;
}

void inv_sandbox_kill(inv_sandbox *sb)
{
	sb->alive = false;
	if (sb->pid > 0 && kill(sb->pid, SIGKILL) < 0 && errno != ESRCH)
		gust_log_warn("INV-SANDBOX-KILL", "kill sandbox pid %d: %s", (int)sb->pid,
		              strerror(errno));
	/* A frozen v1 task keeps its SIGKILL pending until it is thawed (pid 1
	 * would never be reaped, a reader never see EOF); thawed after the
	 * kill, it dies without running a cycle of its own. */
	if (sb->frozen)
		(void)inv_sandbox_freeze(sb, false, NULL);
}

int inv_sandbox_freeze(inv_sandbox *sb, bool frozen, gust_error **err)
{
	if (sb->frozen == frozen)
		return 0;
	int rv = inv_cgroup_freeze(sb->cg, frozen, err);
	if (rv == 0) {
		sb->frozen = frozen;
	} else if (!frozen) {
		/* Still stopped: a run would only wait for its deadline. Dead now,
		 * so that the caller drops it. */
		sb->alive = false;
		if (sb->pid > 0)
			(void)kill(sb->pid, SIGKILL);
	}
	return rv;
}

void inv_sandbox_destroy(inv_sandbox *sb)
{
	if (sb == NULL)
		return;
	inv_sandbox_mux_stop(sb);
	if (sb->pid > 0) {
		/* SIGKILL to pid 1 of a pid namespace kills every process in it. */
		inv_sandbox_kill(sb);
		while (waitpid(sb->pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
	inv_closefd(&sb->pidfd);
	inv_closefd(&sb->sync_fd);
	inv_closefd(&sb->in_fd);
	inv_closefd(&sb->out.fd);
	inv_closefd(&sb->err.fd);
	inv_closefd(&sb->res.fd);
	gust_buf_free(&sb->out.pend);
	gust_buf_free(&sb->err.pend);
	gust_buf_free(&sb->res.pend);
	/* After pid 1 is reaped its pid namespace is empty: the group can go. */
	inv_cgroup_destroy(sb->cg);
	/* Its processes are gone, and with them the counts charged to its range
	 * (inotify, namespaces): the range may serve another sandbox. */
	inv_closefd(&sb->ids_lock);
	/* The mounts lived in the sandbox's own mount namespace, gone with pid 1:
	 * on the host only the empty dirs remain. */
	if (sb->run != NULL && rmdir(sb->run) < 0 && errno != ENOENT)
		gust_log_warn("INV-SANDBOX-RMDIR", "rmdir %s: %s", sb->run, strerror(errno));
	free(sb->run);
	free(sb);
}
