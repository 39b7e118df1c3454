/*
 * scheduler.h - gust-scheduler: takes activation requests from gateways and
 * trigger daemons over nng, places each on an invoker, and relays the result.
 *
 * Every request in flight is a worker: an explicit state machine on two nng
 * aios (nng demo/async/server.c), one for the rep context facing the caller,
 * one for the req context facing the invoker. Requests are forwarded as the
 * bytes they arrived in; results are relayed as the bytes the invoker sent.
 */
#ifndef SCHED_SCHEDULER_H
#define SCHED_SCHEDULER_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>

#include "gust/config.h"
#include "gust/etcd.h"
#include "gust/map.h"
#include "gust/metrics.h"
#include "gust/msg.h"

typedef struct sched sched;
typedef struct sched_invoker sched_invoker;
typedef struct sched_worker sched_worker;

typedef struct sched_config {
	char *listen;
	char *advertise;
	char *etcd;
	char *id;
	char *metrics_host;
	long long metrics_port;
	long long lease_ttl_s;
	long long workers;
	char *log_level;
} sched_config;

extern const gust_cfg_key sched_config_table[];

/* An invoker as the scheduler sees it; shared by reference count because
 * workers keep using one while the membership watch may drop it. */
struct sched_invoker {
	int refs; /* atomic */
	char *id;
	char *address;
	int memory_mb;
	nng_socket sock;
	int inflight_mb; /* atomic: memory of activations placed and not yet answered */
	int inflight;    /* atomic */
	bool gone;
};

/* Placement: picks an invoker for (namespace/action) needing memory_mb, or NULL.
 * Returns a reference (sched_invoker_unref). */
sched_invoker *sched_place(sched *s, const char *ns, const char *action, int memory_mb);
void sched_invoker_unref(sched_invoker *inv);

/* Membership (sched_members.c): invokers mirrored from /gust/invokers/. */
int sched_members_start(sched *s, gust_error **err);
void sched_members_stop(sched *s);

/* Workers (sched_worker.c). */
int sched_workers_start(sched *s, gust_error **err);
void sched_workers_stop(sched *s);

struct sched {
	sched_config cfg;
	gust_etcd *etcd;
	gust_etcd_lease_keeper *lease;
	gust_etcd_watch *members_watch;
	nng_socket rep;
	char *address; /* what we advertise */
	pthread_rwlock_t inv_lock;
	sched_invoker **invokers; /* sorted by id */
	size_t ninvokers;
	sched_worker *workers;
	size_t nworkers;
	gust_admin_http *admin;
	gust_metric *m_invokers;
	gust_metric *m_placed;
	gust_metric *m_no_invoker;
	gust_metric *m_failed;
	gust_metric *m_malformed;
	gust_metric *m_latency;
};

#endif
