/* gw_jobs.c - threads for sequences and trigger fires, bounded.
 *
 * A sequence waits on each component in turn and a fire sends one activation
 * per rule; both run on a thread of their own so that no HTTP or nng thread
 * blocks. Unbounded, a flood of them would be a flood of threads: at most
 * max_jobs run at once, and the next is refused (429) until one ends. */
#include <pthread.h>

#include "gateway.h"

typedef struct gw_job {
	gw *g;
	void *(*fn)(void *);
	void *arg;
} gw_job;

static void *job_main(void *p)
{
	gw_job j = *(gw_job *)p;
	free(p);
	j.fn(j.arg);
	atomic_fetch_sub(&j.g->jobs, 1);
	return NULL;
}

int gw_job_start(gw *g, void *(*fn)(void *), void *arg)
{
	if (atomic_fetch_add(&g->jobs, 1) >= g->cfg.max_jobs) {
		atomic_fetch_sub(&g->jobs, 1);
		return GUST_EBUSY;
	}
	gw_job *j = gust_xmalloc(sizeof(*j));
	j->g = g;
	j->fn = fn;
	j->arg = arg;
	pthread_t t;
	pthread_attr_t at;
	pthread_attr_init(&at);
	pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
	int rv = pthread_create(&t, &at, job_main, j);
	pthread_attr_destroy(&at);
	if (rv != 0) {
		free(j);
		atomic_fetch_sub(&g->jobs, 1);
		return GUST_EBUSY;
	}
	return 0;
}

void gw_suspend(gw_req *r)
{
	atomic_fetch_add(&r->g->suspended, 1);
	MHD_suspend_connection(r->conn);
}

void gw_resume(gw_req *r)
{
	gw *g = r->g;
	/* r may be answered and freed by an HTTP thread as soon as it resumes. */
	MHD_resume_connection(r->conn);
	atomic_fetch_sub(&g->suspended, 1);
}
