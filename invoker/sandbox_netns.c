/*
 * sandbox_netns.c - network namespaces made ahead of need.
 *
 * A new network namespace is the most expensive namespace here: about 0.5 ms
 * on the clone that makes it, with a p99 of about 4 ms (the kernel's net
 * setup and its RCU waits). A sandbox needs an empty one with lo up; nothing
 * about it depends on the action. So a thread of the pool makes them in the
 * background, keeps each one alive by an open nsfs fd, and a sandbox's clone
 * on the critical path only has to enter one: the creating thread setns()es
 * into it, clones without CLONE_NEWNET (the child inherits the thread's
 * namespace), and setns()es back. Network namespaces are per thread, so this
 * is safe in a multi-threaded process, and no other thread sees it.
 *
 * Such a namespace belongs to the host's user namespace, not to the
 * sandbox's: the sandbox's root has no CAP_NET_ADMIN over it and cannot
 * change its own network (that is why lo is brought up here). The egress
 * mode still works: it configures the namespace from the host.
 *
 * Nothing outlives the invoker: the fds are the only references to an
 * unused namespace, and the kernel closes them when the process dies.
 *
 * Given the state dir, the thread also makes each sandbox's run dir ahead
 * (<state_dir>/sandboxes/<id>, see sandbox_int.h): a mkdir on the state
 * dir's disk costs about 190 us here. A run dir left by a killed invoker is
 * removed by the next one's sweep.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/util.h"
#include "sandbox.h"
#include "sandbox_int.h"

#define NETNS_POOL_MAX 64

struct inv_netns_pool {
	pthread_mutex_t lock;
	pthread_cond_t cv; /* the maker waits here while the pool is full */
	pthread_t thread;
	int host_fd; /* the invoker's own network namespace */
	int fds[NETNS_POOL_MAX];
	char *dirs[NETNS_POOL_MAX]; /* the run dir made with fds[i], or NULL */
	char *top;                  /* <state_dir>/sandboxes, or NULL: no run dirs */
	int n, want;
	int failures; /* in a row: the maker backs off */
	bool stop;
	uint64_t taken, missed;
};

/* Makes one namespace with lo up and returns an fd on it; the calling thread
 * ends where it began. -1 with errno on failure. */
static int netns_make(int host_fd)
{
	if (unshare(CLONE_NEWNET) < 0)
		return -1;
	int fd = -1, e = 0;
	if (inv_loopback_up() < 0 ||
	    (fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0)
		e = errno;
	if (setns(host_fd, CLONE_NEWNET) < 0) {
		/* This thread makes nothing but namespaces: stranded in one, it
		 * must not make more. */
		gust_log_error("INV-NETNS-BACK", "cannot return to the host network namespace: %s",
		               strerror(errno));
		if (fd >= 0)
			close(fd);
		errno = EIO;
		return -2;
	}
	if (e != 0) {
		errno = e;
		return -1;
	}
	return fd;
}

/* Makes a run dir under top, or NULL. */
static char *netns_dir(const char *top)
{
	char id[17];
	gust_random_hex(id, 8);
	char *dir = gust_xasprintf("%s/%s", top, id);
	/* 0755: the sandbox's users must reach the socket made in it. */
	if (mkdir(dir, 0700) < 0 || chmod(dir, 0755) < 0) {
		gust_log_warn("INV-NETNS-DIR", "cannot make %s ahead: %s", dir, strerror(errno));
		rmdir(dir);
		free(dir);
		return NULL;
	}
	return dir;
}

static void *netns_main(void *arg)
{
	inv_netns_pool *p = arg;
	/* Ahead of need means when a CPU is free: on a busy invoker this thread
	 * must not slow down the sandbox starts it is there to speed up (if it
	 * falls behind, a sandbox makes its own namespace in its clone). */
	struct sched_param sp = {0};
	pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		if (p->n >= p->want) {
			pthread_cond_wait(&p->cv, &p->lock);
			continue;
		}
		pthread_mutex_unlock(&p->lock);
		int fd = netns_make(p->host_fd);
		int e = errno;
		pthread_mutex_lock(&p->lock);
		if (fd == -2)
			break;
		if (fd < 0) {
			if (p->failures++ == 0)
				gust_log_warn(
				    "INV-NETNS-MAKE",
				    "cannot make a network namespace ahead: %s; sandboxes "
				    "make their own",
				    strerror(e));
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&p->cv, &p->lock, &ts);
			continue;
		}
		p->failures = 0;
		char *dir = NULL;
		if (p->top != NULL) {
			pthread_mutex_unlock(&p->lock);
			dir = netns_dir(p->top);
			pthread_mutex_lock(&p->lock);
		}
		p->dirs[p->n] = dir;
		p->fds[p->n++] = fd;
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int inv_netns_pool_open(int want, const char *state_dir, inv_netns_pool **pp, gust_error **err)
{
	*pp = NULL;
	if (want <= 0)
		return 0;
	if (want > NETNS_POOL_MAX)
		want = NETNS_POOL_MAX;
	inv_netns_pool *p = gust_xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->want = want;
	if (state_dir != NULL) {
		p->top = gust_xasprintf("%s/sandboxes", state_dir);
		if (mkdir(p->top, 0700) < 0 && errno != EEXIST) {
			gust_log_warn("INV-NETNS-DIR", "cannot make %s: %s", p->top,
			              strerror(errno));
			free(p->top);
			p->top = NULL;
		}
	}
	if ((p->host_fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC)) < 0) {
		int e = errno;
		free(p->top);
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return gust_error_set(err, GUST_EIO, "network namespaces: open own: %s",
		                      strerror(e));
	}
	if (pthread_create(&p->thread, NULL, netns_main, p) != 0) {
		close(p->host_fd);
		free(p->top);
		pthread_cond_destroy(&p->cv);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return gust_error_set(err, GUST_EIO, "network namespaces: cannot start the thread");
	}
	*pp = p;
	return 0;
}

void inv_netns_pool_close(inv_netns_pool *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	for (int i = 0; i < p->n; i++) {
		close(p->fds[i]);
		if (p->dirs[i] != NULL)
			rmdir(p->dirs[i]);
		free(p->dirs[i]);
	}
	free(p->top);
	close(p->host_fd);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int inv_netns_pool_take(inv_netns_pool *p, const char *top, char **dir)
{
	*dir = NULL;
	if (p == NULL)
		return -1;
	int fd = -1;
	/* The maker runs at SCHED_IDLE: if it was preempted holding the lock, a
	 * sandbox start must not wait for a free CPU; it makes its own. */
	if (pthread_mutex_trylock(&p->lock) != 0) {
		__atomic_fetch_add(&p->missed, 1, __ATOMIC_RELAXED);
		return -1;
	}
	if (p->n > 0) {
		fd = p->fds[--p->n];
		char *d = p->dirs[p->n];
		p->dirs[p->n] = NULL;
		if (d != NULL && top != NULL && p->top != NULL && strcmp(top, p->top) == 0)
			*dir = d;
		else if (d != NULL) {
			rmdir(d);
			free(d);
		}
		p->taken++;
	} else {
		__atomic_fetch_add(&p->missed, 1, __ATOMIC_RELAXED);
	}
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->lock);
	return fd;
}

int inv_netns_pool_ready(inv_netns_pool *p)
{
	pthread_mutex_lock(&p->lock);
	int n = p->n;
	pthread_mutex_unlock(&p->lock);
	return n;
}

int inv_netns_pool_host(const inv_netns_pool *p)
{
	return p != NULL ? p->host_fd : -1;
}

void inv_netns_pool_counts(inv_netns_pool *p, uint64_t *taken, uint64_t *missed)
{
	pthread_mutex_lock(&p->lock);
	*taken = p->taken;
	*missed = __atomic_load_n(&p->missed, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&p->lock);
}
