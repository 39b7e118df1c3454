/*
 * etcd_lease.c - a lease kept alive from a thread of its own.
 *
 * Every ttl/3 the thread refreshes the lease. If etcd says the lease is gone
 * (it expired while etcd was unreachable, or someone revoked it), the keys it
 * held are gone too: the thread grants a new lease and tells the owner through
 * on_renew so that it can put them back.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

#include "gust/etcd.h"
#include "gust/log.h"
#include "gust/util.h"

/* While etcd does not answer, retry at least this often so that a lease with a
 * long TTL is refreshed soon after etcd is back. */
#define ETCD_LEASE_RETRY_MS 500

struct gust_etcd_lease_keeper {
	gust_etcd *e;
	int64_t ttl_s;
	void (*on_renew)(void *arg, int64_t lease);
	void *arg;
	_Atomic int64_t id;
	bool stop; /* under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool sync_init;
	pthread_t thread;
	bool started;
};

/* Waits ms or until stopped; returns true if stopped. */
static bool etcd_lease_wait(gust_etcd_lease_keeper *k, int64_t ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += (time_t)(ms / 1000);
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&k->mu);
	while (!k->stop)
		if (pthread_cond_timedwait(&k->cv, &k->mu, &ts) != 0)
			break;
	bool stop = k->stop;
	pthread_mutex_unlock(&k->mu);
	return stop;
}

static void *etcd_lease_main(void *arg)
{
	gust_etcd_lease_keeper *k = arg;
	int64_t period_ms = k->ttl_s * 1000 / 3;
	if (period_ms < 100)
		period_ms = 100;
	int64_t wait_ms = period_ms;
	while (!etcd_lease_wait(k, wait_ms)) {
		int64_t id = atomic_load(&k->id);
		gust_error *err = NULL;
		int rv = gust_etcd_lease_keepalive(k->e, id, NULL, &err);
		wait_ms = period_ms;
		if (rv == GUST_ENOENT) {
			gust_log_warn("ETCD-LEASE-LOST",
			              "lease %" PRId64 " is gone (%s): granting anew", id,
			              gust_error_msg(err));
			gust_error_free(err);
			err = NULL;
			int64_t nid = 0;
			if ((rv = gust_etcd_lease_grant(k->e, k->ttl_s, &nid, &err)) == 0) {
				atomic_store(&k->id, nid);
				gust_log_info("ETCD-LEASE-RENEW",
				              "lease %" PRId64 " replaces %" PRId64, nid, id);
				if (k->on_renew != NULL)
					k->on_renew(k->arg, nid);
			} else {
				/* The old id stays: its keepalive fails with ENOENT
				 * again next time and we grant again. */
				gust_log_warn("ETCD-LEASE-GRANT", "lease grant failed: %s",
				              gust_error_msg(err));
				wait_ms = period_ms < ETCD_LEASE_RETRY_MS ? period_ms
				                                          : ETCD_LEASE_RETRY_MS;
			}
		} else if (rv != 0) {
			gust_log_warn("ETCD-LEASE-KEEPALIVE", "lease %" PRId64 ": %s", id,
			              gust_error_msg(err));
			wait_ms = period_ms < ETCD_LEASE_RETRY_MS ? period_ms : ETCD_LEASE_RETRY_MS;
		}
		gust_error_free(err);
	}
	return NULL;
}

static void etcd_lease_destroy(gust_etcd_lease_keeper *k)
{
	if (k == NULL)
		return;
	if (k->sync_init) {
		pthread_cond_destroy(&k->cv);
		pthread_mutex_destroy(&k->mu);
	}
	free(k);
}

int gust_etcd_lease_keeper_start(gust_etcd *e, int64_t ttl_s,
                                 void (*on_renew)(void *arg, int64_t lease), void *arg,
                                 gust_etcd_lease_keeper **kp, gust_error **err)
{
	*kp = NULL;
	if (e == NULL || ttl_s <= 0)
		return gust_error_set(err, GUST_EINVAL, "etcd lease keeper: ttl must be > 0");
	gust_etcd_lease_keeper *k = gust_xcalloc(1, sizeof(*k));
	k->e = e;
	k->ttl_s = ttl_s;
	k->on_renew = on_renew;
	k->arg = arg;
	int rv;
	int64_t id = 0;
	if ((rv = gust_etcd_lease_grant(e, ttl_s, &id, err)) != 0) {
		etcd_lease_destroy(k);
		return rv;
	}
	atomic_store(&k->id, id);
	if (pthread_mutex_init(&k->mu, NULL) != 0) {
		etcd_lease_destroy(k);
		return gust_error_set(err, GUST_EINTERNAL, "etcd lease keeper: mutex init");
	}
	/* Back-off sleeps measure elapsed time: a wall-clock step must not stretch them. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int crc = pthread_cond_init(&k->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (crc != 0) {
		pthread_mutex_destroy(&k->mu);
		etcd_lease_destroy(k);
		return gust_error_set(err, GUST_EINTERNAL, "etcd lease keeper: cond init");
	}
	k->sync_init = true;
	if ((rv = pthread_create(&k->thread, NULL, etcd_lease_main, k)) != 0) {
		/* Nobody holds the lease yet: do not leave it to expire on its own. */
		gust_etcd_lease_revoke(e, id, NULL);
		etcd_lease_destroy(k);
		return gust_error_set(err, GUST_EINTERNAL, "etcd lease keeper: pthread_create: %s",
		                      strerror(rv));
	}
	k->started = true;
	*kp = k;
	return 0;
}

int64_t gust_etcd_lease_keeper_id(gust_etcd_lease_keeper *k)
{
	return atomic_load(&k->id);
}

void gust_etcd_lease_keeper_stop(gust_etcd_lease_keeper *k, bool revoke)
{
	if (k == NULL)
		return;
	if (k->started) {
		pthread_mutex_lock(&k->mu);
		k->stop = true;
		pthread_cond_broadcast(&k->cv);
		pthread_mutex_unlock(&k->mu);
		pthread_join(k->thread, NULL);
	}
	if (revoke) {
		gust_error *err = NULL;
		int64_t id = atomic_load(&k->id);
		if (gust_etcd_lease_revoke(k->e, id, &err) != 0)
			gust_log_warn("ETCD-LEASE-REVOKE", "lease %" PRId64 ": %s", id,
			              gust_error_msg(err));
		gust_error_free(err);
	}
	etcd_lease_destroy(k);
}
