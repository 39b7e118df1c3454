/*
 * invoker.h - gust-invoker: runs activations in sandboxes on this node.
 *
 * nng rep contexts take requests (inv_server.c) and hand them to a pool of
 * worker threads (inv_pool.c); a worker takes a warm sandbox of the action's
 * version, or starts one (fetching the code from etcd once and caching it),
 * runs the activation, queues the activation record for Redis (inv_record.c)
 * and sends the result back on the request's context. Workers block on
 * sandbox pipes; nng callback threads never do.
 */
#ifndef INV_INVOKER_H
#define INV_INVOKER_H

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
#include "gust/redis.h"
#include "gust/transport.h"
#include "sandbox.h"

typedef struct inv inv;
typedef struct inv_job inv_job;
typedef struct inv_slot inv_slot;
typedef struct inv_stem_kind inv_stem_kind;
typedef struct inv_net inv_net;
typedef struct inv_egress inv_egress;
typedef struct inv_state inv_state;
typedef struct inv_state_ep inv_state_ep;
typedef struct inv_binder inv_binder;

/* The smallest memory limit an action may have: user memory / this is the
 * most sandboxes that can exist at once. */
#define INV_MIN_MEMORY_MB 128

typedef struct inv_config {
	char *listen;
	char *listen_peers;
	char *advertise;
	char *etcd;
	char *redis;
	char *id;
	char *state_dir;
	char *runtime_dir;
	long long memory_mb;
	long long workers;
	long long contexts;
	long long idle_timeout_s;
	long long record_ttl_s;
	long long drain_timeout_s;
	long long lease_ttl_s;
	char *metrics_host;
	long long metrics_port;
	char *metrics_token_file;
	char *log_level;
	char *cgroup;
	bool cgroup_favordynmods;
	long long netns_pool;
	long long userns_base;
	long long userns_slots;
	bool insecure_no_userns;
	long long pids_max;
	char *stem_cells;
	char *native_launcher;
	long long binding_timeout_ms;
	long long freeze_idle_ms;
	long long state_value_bytes;
	long long state_quota_bytes;
	long long state_quota_interval_ms;
	long long state_conns_per_sandbox;
	char *egress_resolver;
	long long egress_refresh_s;
	gust_transport_cfg tls;
	gust_stores_cfg stores; /* etcd and Redis credentials */
} inv_config;

extern const gust_cfg_key inv_config_table[];

/* One request in flight: its rep context and aio, and the decoded request. */
struct inv_job {
	inv *v;
	nng_ctx ctx;
	nng_aio *aio;
	int state;
	Gust__ActivationRequest *req;
	uint64_t recv_ms; /* wall clock when received */
	inv_job *next;    /* in the pool's queue */
};

/* A sandbox in the pool. */
struct inv_slot {
	inv_sandbox *sb;
	char *key; /* "ns/action@version" */
	char *kind;
	int memory_mb;
	int conc;     /* activations it may run at once (nodejs concurrency), >= 1 */
	int inflight; /* activations running in it (a starting slot counts its first) */
	bool ready;   /* initialized: others of its key may join while inflight < conc */
	bool gone;    /* unlinked (its sandbox died); freed when inflight reaches 0 */
	inv_net *net; /* set when its sandbox has egress: net_ip is its address */
	int net_ip;
	inv_state_ep *state_ep; /* its state socket, once it has its namespace */
	uint64_t last_used_ms;
	/* the idle freezer (inv_freeze.c) */
	pthread_mutex_t fz_lock; /* orders its freeze and thaw writes */
	_Atomic int fz_state;    /* thawed, freezing, frozen, failed */
	bool fz_init;
	inv_slot *next;
};

struct inv {
	_Atomic int running; /* requests taken and not yet answered (for the drain) */
	inv_config cfg;
	char *tag; /* <id>-<hash of the state dir>: names our cgroups, netdevs, nft table */
	inv_cgroups *cgroups;
	inv_netns_pool *netns; /* network namespaces made ahead (sandbox_netns.c) */
	inv_net *net;          /* egress bridge and nftables table, made on first use */
	inv_egress *egress;    /* egress grants and policy (inv_egress.c) */
	unsigned userns_base;  /* 0: no user namespaces (only with insecure_no_userns) */
	unsigned userns_slots; /* host id ranges of 65536 from userns_base (sandbox.h) */
	gust_etcd *etcd;
	gust_etcd_lease_keeper *lease;
	gust_redis_writer *records;
	inv_state *state;          /* the state cache proxy (inv_state.c) */
	inv_binder *binder;        /* output bindings (inv_binding.c) */
	gust_transport *transport; /* mutual TLS on the nng sockets */
	unsigned listen_peers;     /* GUST_ROLE_* bits that may send activations */
	nng_socket rep;
	char *address;
	inv_job *jobs;
	size_t njobs;
	/* the pool */
	pthread_mutex_t lock;
	pthread_cond_t work_cv;   /* a job was queued: wakes one idle worker */
	pthread_cond_t room_cv;   /* memory or a sandbox came free: wakes the head's worker */
	pthread_cond_t reaper_cv; /* only to stop the reaper early */
	int idle_workers;         /* waiting on work_cv */
	bool head_waits;          /* a worker waits on room_cv with the queue's head */
	inv_job *qhead, **qtail;
	inv_slot *slots;
	inv_slot *graveyard; /* dead concurrent slots, freed by the reaper */
	int used_mb;
	int inflight; /* activations taken off the queue and not yet answered */
	bool stopping;
	pthread_t *threads;
	size_t nthreads;
	pthread_t reaper;
	/* stem cells (inv_stem.c), under their own lock */
	pthread_mutex_t stem_lock;
	pthread_cond_t stem_cv;
	pthread_t stem_thread;
	bool stem_running;
	bool stopping_stems;
	inv_stem_kind *stems;
	size_t nstems;
	/* code cache: code_key -> inv_code */
	pthread_mutex_t code_lock;
	gust_map code;
	size_t code_bytes;
	/* status to the leading scheduler (inv_status.c), under st_lock */
	pthread_mutex_t st_lock;
	pthread_cond_t st_cv;
	pthread_t st_thread;
	bool st_running, st_stopping, st_poked;
	char *st_want; /* the leader's status address, from etcd */
	char *st_addr; /* the one st_sock is dialed to (status thread only) */
	nng_socket st_sock;
	bool st_open;
	gust_etcd_watch *st_watch;
	gust_metric *m_status;
	gust_admin_http *admin;
	gust_metric *m_act[4];
	gust_metric *m_cold;
	gust_metric *m_warm;
	gust_metric *m_stem;
	gust_metric *m_duration;
	gust_metric *m_sandboxes;
	gust_metric *m_queue;
	/* the idle freezer (inv_freeze.c), under the pool's lock */
	pthread_cond_t fz_cv;
	pthread_t fz_thread;
	bool fz_running, fz_stopping, fz_sleeping;
	gust_metric *m_frozen;
	gust_metric *m_freezes;
	gust_metric *m_thaw;
	gust_metric *m_rejected; /* requests refused: MAC or code ownership */
};

/* inv_server.c */
int inv_server_start(inv *v, gust_error **err);
void inv_server_stop(inv *v);
/* Sends the result for job and recycles its context. Takes msg. */
void inv_server_reply(inv_job *job, nng_msg *msg);

/* inv_pool.c */
int inv_pool_start(inv *v, gust_error **err);
void inv_pool_stop(inv *v);
void inv_pool_submit(inv *v, inv_job *job);

/* inv_freeze.c: idle warm sandboxes are frozen after freeze_idle_ms (see
 * there). start/stop after/before the pool's; slot_init when a slot is
 * made, forget before its sandbox is destroyed; idle under the pool lock
 * when a slot's last activation ends; thaw before a warm activation runs. */
int inv_freeze_start(inv *v, gust_error **err);
void inv_freeze_stop(inv *v);
void inv_freeze_slot_init(inv_slot *s);
void inv_freeze_idle(inv *v, inv_slot *s);
void inv_freeze_thaw(inv *v, inv_slot *s);
void inv_freeze_forget(inv *v, inv_slot *s);

/* inv_stem.c */
int inv_stem_start(inv *v, gust_error **err);
/* A live stem cell of kind (the caller owns it), or NULL. */
inv_sandbox *inv_stem_take(inv *v, const char *kind);
void inv_stem_stop(inv *v);

/* inv_sweep.c: removes the sandbox dirs an earlier run left; returns how many. */
int inv_sweep_state(const char *state_dir);

/* inv_status.c: InvokerStatus to the leading scheduler, from a thread of its
 * own. poke asks for a status soon (a sandbox came free); never blocks long. */
int inv_status_start(inv *v, gust_error **err);
void inv_status_stop(inv *v);
void inv_status_poke(inv *v);

/* inv_net.c: egress (see there). sweep removes what a killed run with this
 * tag left; attach connects a sandbox of namespace ns (pid 1 in our pid
 * namespace) to the bridge and gives it an address (*ip, to release when it
 * is destroyed); GUST_EPERM when ns has no egress grant. granted(garg, ns)
 * says whether ns has it. set_policy takes the element lists of the table
 * ("a, b/24, ..." or "") and puts them in place; regrant recomputes which
 * sandboxes may send. */
void inv_net_sweep(const char *tag);
int inv_net_open(const char *tag, bool (*granted)(void *arg, const char *ns), void *garg,
                 inv_net **np);
void inv_net_set_resolver(inv_net *n, const char *addr_port, bool local);
int inv_net_set_policy(inv_net *n, const char *nodes4, const char *nodes6, const char *deny4,
                       const char *deny6, const char *allow4);
void inv_net_regrant(inv_net *n);
int inv_net_attach(inv_net *n, const char *ns, pid_t pid, int *ip, gust_error **err);
void inv_net_release(inv_net *n, int ip);
void inv_net_close(inv_net *n);

/* inv_egress.c: the egress grants and policy from etcd, kept current by
 * watches and a refresh every egress_refresh_s (names re-resolved, node
 * addresses re-read). start loads them once before returning. */
int inv_egress_start(inv *v, gust_error **err);
void inv_egress_stop(inv *v);
bool inv_egress_granted(inv *v, const char *ns);
/* the same for inv_net_open (arg: the inv) */
bool inv_egress_net_granted(void *arg, const char *ns);

/* inv_state.c: the state cache proxy. attach makes the namespace's ACL user
 * if this process has not yet (etcd and Redis: a worker thread only) and a
 * listening socket in the sandbox's run dir (*ep: give it to detach, which
 * is safe on NULL, before the sandbox is destroyed). */
int inv_state_start(inv *v, gust_error **err);
void inv_state_stop(inv *v);
int inv_state_attach(inv *v, const char *run_dir, const char *ns, inv_state_ep **ep,
                     gust_error **err);
void inv_state_detach(inv *v, inv_state_ep *ep);

/* inv_binding.c: output bindings (docs/state.md). complete takes over an
 * activation whose request has a binding: it records it and answers job
 * with msg (taken; NULL: no answer) once the publish is queued durably. */
int inv_binding_start(inv *v, gust_error **err);
void inv_binding_stop(inv *v);
void inv_binding_complete(inv *v, inv_job *job, const Gust__ActivationResult *res, nng_msg *msg);

/* inv_record.c: write queues the record of an activation; put queues a
 * record already made (JSON text, copied). */
void inv_record_write(inv *v, const Gust__ActivationRequest *req,
                      const Gust__ActivationResult *res);
void inv_record_put(inv *v, const char *id, const char *ns, int64_t start_ms, const char *rec,
                    size_t len);

#endif
