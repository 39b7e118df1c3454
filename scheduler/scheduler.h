/*
 * scheduler.h - gust-scheduler: admission, queues, placement, the journal of
 * accepted activations, and leader election.
 *
 * Requests arrive from gateways and trigger daemons on an nng rep socket
 * (sched_worker.c: one state machine per context). Each admitted request
 * becomes a sched_act (sched_act.c), queued per action version
 * (sched_queue.c) and placed on an invoker (sched_place.c) when one has
 * memory for it. Non-blocking and trigger activations are appended to a
 * Redis stream (sched_journal.c) before they are acknowledged, and leave it
 * only when their result is in; a new leader (sched_leader.c) replays what a
 * dead one left there. Requests travel as the bytes they arrived in: the
 * scheduler only appends the journal id field to them.
 */
#ifndef SCHED_SCHEDULER_H
#define SCHED_SCHEDULER_H

#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gust/config.h"
#include "gust/stores.h"
#include "gust/etcd.h"
#include "gust/map.h"
#include "gust/metrics.h"
#include "gust/msg.h"
#include "gust/transport.h"

typedef struct sched sched;
typedef struct sched_invoker sched_invoker;
typedef struct sched_worker sched_worker;
typedef struct sched_act sched_act;
typedef struct sched_queue sched_queue;
typedef struct sched_ns sched_ns;
typedef struct sched_journal sched_journal;

typedef struct sched_config {
	char *listen;
	char *advertise;
	char *status_listen;
	char *etcd;
	char *redis;
	char *id;
	char *metrics_host;
	long long metrics_port;
	char *metrics_token_file;
	long long lease_ttl_s;
	long long workers;
	long long max_action_sandboxes;
	long long default_concurrent;
	long long default_per_minute;
	long long status_timeout_ms;
	long long max_attempts;
	long long overcommit_pct;
	long long etcd_compact_period_s;    /* 0: never */
	long long etcd_compact_retention_s; /* history kept behind the newest revision */
	char *log_level;
	gust_transport_cfg tls;
	gust_stores_cfg stores; /* etcd and Redis credentials */
} sched_config;

extern const gust_cfg_key sched_config_table[];

/* An invoker as the scheduler sees it; shared by reference count because
 * activations keep using one while membership may drop it. */
struct sched_invoker {
	_Atomic int refs;
	char *id;
	uint64_t id_hash; /* gust_hash64(id), for rendezvous hashing */
	char *address;
	int memory_mb;
	nng_socket sock;
	_Atomic int inflight_mb; /* memory of activations placed and not yet answered */
	_Atomic int inflight;
	bool gone;
	bool has_status;    /* it sends InvokerStatus: staleness takes it out */
	uint64_t status_ms; /* monotonic time of its last status */
	int free_memory_mb; /* from its last status */
	gust_map warm;      /* warm key (gust_warm_key) -> (intptr_t) idle warm sandboxes */
};

/* One admitted activation, from admission to its result. */
struct sched_act {
	sched *s;
	char id[64];
	char key[GUST_WARM_KEY_MAX]; /* "user|code_key|version" (gust_warm_key): its queue */
	char ns[257];                /* the namespace charged for it */
	int memory_mb;
	int timeout_ms;
	bool blocking;
	bool journaled;
	char journal_id[48];
	int attempts;
	nng_msg *req;         /* the request bytes (journal id appended) */
	sched_worker *caller; /* blocking: the worker to answer; NULL otherwise */
	sched_invoker *inv;
	char last_invoker[128];
	nng_aio *fwd;
	nng_ctx fctx;
	bool fctx_open;
	int state;
	uint64_t t_admit;
	sched_act *next; /* in its queue */
};

/* sched_place.c */
sched_invoker *sched_place(sched *s, const char *key, int memory_mb, const char *avoid);
void sched_invoker_unref(sched_invoker *inv);

/* sched_members.c */
int sched_members_start(sched *s, gust_error **err);
void sched_members_stop(sched *s);
/* Under inv_lock (write): adds or refreshes an invoker. */
void sched_members_add(sched *s, const char *id, const char *addr, int mem);
/* Closes the sockets of invokers taken out of the table (outside the lock:
 * closing waits for callbacks that take it). Call after unlocking. */
void sched_members_reap(sched *s);
/* Takes invokers whose status stopped arriving out of placement. */
void sched_members_check(sched *s);

/* sched_worker.c */
int sched_workers_start(sched *s, gust_error **err);
void sched_workers_stop(sched *s);
/* A blocking activation finished: answer its caller with msg (taken). */
void sched_worker_answer(sched_worker *w, nng_msg *msg);
/* A non-blocking activation is journaled (rv 0) or could not be (rv != 0). */
void sched_worker_journaled(sched_worker *w, sched_act *a, int rv);

/* sched_act.c */
/* An activation of the request req (kept: the bytes it forwards), read as h. */
sched_act *sched_act_new(sched *s, nng_msg *req, const gust_request_head *h, sched_worker *caller);
void sched_act_free(sched_act *a);
/* Starts forwarding a placed activation (a->inv set). */
void sched_act_forward(sched_act *a);

/* sched_queue.c: admission, queues and fair dispatch */
int sched_admit(sched *s, const char *ns, char *why, size_t whylen);
/* Queues a (admitted) activation and dispatches what capacity allows. */
void sched_enqueue(sched *s, sched_act *a);
/* An activation left its invoker: give back its share and dispatch more. */
void sched_release(sched *s, sched_act *a);
/* Dispatches queued activations while invokers have room. */
void sched_pump(sched *s);
/* The activation is over: uncharge its namespace, forget its id. */
void sched_finish(sched *s, sched_act *a);
/* Charges a replayed activation to its namespace (admitted before). */
void sched_charge(sched *s, const char *ns);
bool sched_inflight_has(sched *s, const char *id);
int sched_queue_init(sched *s);
void sched_queue_fini(sched *s);
size_t sched_queued(sched *s);

/* sched_ns.c: namespace limits mirrored from /gust/namespaces/ */
int sched_ns_start(sched *s, gust_error **err);
void sched_ns_stop(sched *s);
void sched_ns_limits(sched *s, const char *ns, int *concurrent, int *per_minute);

/* sched_journal.c */
int sched_journal_start(sched *s, gust_error **err);
void sched_journal_stop(sched *s);
/* Appends a's request to the journal; calls sched_worker_journaled(w, a, rv)
 * from the journal thread when Redis has it. */
void sched_journal_append(sched *s, sched_act *a, sched_worker *w);
/* A journaled activation has its result: finish and free a. Its entry is
 * removed by the invoker together with the record. */
void sched_journal_done(sched *s, sched_act *a);
/* Forgets finished ids older than this: a replay then takes their entries,
 * still there if the invoker died before storing the record. */
void sched_journal_forget(sched *s, uint64_t older_than_ms);
/* Replays entries that no activation in flight here owns (after a leader change). */
void sched_journal_recover(sched *s);
/* Whether a journal entry's fields (an XRANGE entry's field list) may be
 * replayed: NULL and *bytes, *blen, *h set to its request, or why not
 * (gust/integrity.h: its MAC h, then the request's own). Never runs it. */
struct redisReply;
const char *sched_journal_check(const struct redisReply *fields, const char **bytes, size_t *blen,
                                gust_request_head *h);

/* sched_leader.c */
int sched_leader_start(sched *s, gust_error **err);
void sched_leader_stop(sched *s);
bool sched_is_leader(sched *s);

/* sched_status.c: InvokerStatus messages from invokers (nng pull) */
int sched_status_start(sched *s, gust_error **err);
void sched_status_stop(sched *s);

struct sched {
	sched_config cfg;
	gust_etcd *etcd;
	gust_etcd_lease_keeper *lease;
	gust_etcd_watch *members_watch;
	gust_etcd_watch *ns_watch;
	gust_transport *transport; /* mutual TLS on every nng socket */
	nng_socket rep;
	nng_socket status;
	char *address;        /* what we advertise for activations */
	char *status_address; /* what we advertise for invoker status */
	pthread_rwlock_t inv_lock;
	sched_invoker **invokers;  /* sorted by id */
	sched_invoker **graveyard; /* out of the table, socket not yet closed */
	size_t ngraveyard;
	gust_map registered; /* invoker ids with a key in etcd (under inv_lock) */
	size_t ninvokers;
	sched_worker *workers;
	size_t nworkers;
	/* queues, under qlock */
	pthread_mutex_t qlock;
	gust_map queues;   /* key -> sched_queue */
	gust_map nss;      /* ns -> sched_ns */
	gust_map inflight; /* activation id -> sched_act (placed or queued) */
	gust_map done_ids; /* journaled ids finished lately -> monotonic ms */
	sched_ns **ready;  /* namespaces with queued work, in turn order */
	size_t nready;
	/* namespace limits, under nslock */
	pthread_mutex_t nslock;
	gust_map ns_limits; /* ns -> int[2] */
	sched_journal *journal;
	/* leadership */
	pthread_t leader_thread;
	_Atomic bool leader;
	_Atomic bool stopping;
	pthread_t cron;
	gust_admin_http *admin;
	gust_metric *m_invokers;
	gust_metric *m_placed;
	gust_metric *m_queued;
	gust_metric *m_refused;
	gust_metric *m_failed;
	gust_metric *m_retried;
	gust_metric *m_malformed;
	gust_metric *m_journaled;
	gust_metric *m_replayed;
	gust_metric *m_req_rejected;     /* requests whose MAC did not verify */
	gust_metric *m_journal_rejected; /* journal entries dropped unreplayed */
	gust_metric *m_leader;
	gust_metric *m_latency;
	gust_metric *m_compactions;
};

#endif
