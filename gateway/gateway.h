/*
 * gateway.h - gust-gateway: the OpenWhisk-compatible HTTP API.
 *
 * Stateless: keys and actions are cached from etcd (a mirror kept current by a
 * watch, so invoking makes no etcd round trip); invocations go to a scheduler
 * over nng req/rep, one context per request in flight; the HTTP connection is
 * suspended meanwhile and resumed from the nng callback.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <microhttpd.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdbool.h>

#include "gust/config.h"
#include "gust/etcd.h"
#include "gust/map.h"
#include "gust/metrics.h"
#include "gust/util.h"

typedef struct gw gw;
typedef struct gw_req gw_req;
typedef struct gw_cache gw_cache;
typedef struct gw_action gw_action;
typedef struct gw_key gw_key;

typedef struct gw_config {
	char *host;
	long long port;
	long long threads;
	char *etcd;
	char *redis;
	char *api_host;
	long long blocking_timeout_ms;
	long long max_payload;
	long long max_code;
	char *log_level;
	char *id;
} gw_config;

extern const gust_cfg_key gw_config_table[];

/* A cached action; immutable once published, shared by reference count. */
struct gw_action {
	int refs; /* atomic */
	char *ns;
	char *name;
	char *version;
	char *kind;
	char *main;
	bool binary;
	long long timeout_ms;
	long long memory_mb;
	long long log_limit; /* bytes */
	char *code_key;
	char *params_inner; /* default parameters as JSON object members without braces, or "" */
	char *json;         /* the stored record (without code) */
	int64_t mod_revision;
	bool web_export;
};

struct gw_key {
	int refs;
	char *uuid;
	char *key;
	char *ns;
};

struct gw_cache {
	pthread_rwlock_t lock;
	gust_map actions;    /* "ns/name" -> gw_action (NULL value never stored) */
	gust_map keys;       /* uuid -> gw_key */
	gust_map schedulers; /* scheduler id -> address (heap string) */
	gust_map entries;    /* etcd key -> revision and tombstone state */
	gust_etcd_watch *watches[3];
};

struct gw {
	gw_config cfg;
	struct MHD_Daemon *mhd;
	gust_etcd *etcd;
	gw_cache cache;
	nng_socket sched;
	pthread_mutex_t dial_lock;
	gust_map dialers; /* scheduler address -> nng_dialer* */
	pthread_mutex_t redis_lock;
	void *redis; /* redisContext*, for activation reads */
	gust_metric *m_requests;
	gust_metric *m_latency;
	gust_metric *m_act[4];
	gust_metric *m_errors;
};

/* gw_cache.c */
int gw_cache_start(gw *g, gust_error **err);
void gw_cache_stop(gw *g);
gw_action *gw_cache_action(gw *g, const char *ns, const char *name); /* +1 ref or NULL */
gw_key *gw_cache_key(gw *g, const char *uuid);                       /* +1 ref or NULL */
/* Makes a write visible at once in this gateway (read your writes); the watch
 * brings the same change a moment later and is ignored as not newer. */
void gw_cache_apply_put(gw *g, const char *key, const char *value, size_t len, int64_t rev);
void gw_cache_apply_delete(gw *g, const char *key, int64_t rev);
size_t gw_cache_schedulers(gw *g);
void gw_action_unref(gw_action *a);
void gw_key_unref(gw_key *k);
gw_action *gw_action_parse(const char *json, size_t len, int64_t rev);

/* gw_http.c: the request object and responses */
enum gw_req_state { GW_REQ_NEW, GW_REQ_BODY, GW_REQ_WAIT, GW_REQ_READY };

struct gw_req {
	gw *g;
	struct MHD_Connection *conn;
	int state;
	char *method;
	char *url;
	gust_buf body;
	size_t limit;
	bool too_big;
	uint64_t start_us;
	/* the response once known */
	int status;
	gust_buf resp;
	const char *ctype;
	char *activation_id; /* for the x-openwhisk-activation-id header */
	/* invoke state */
	nng_aio *aio;
	nng_ctx ctx;
	bool ctx_open;
	bool sent;
	bool want_result;
	bool blocking;
	void *areq; /* Gust__ActivationRequest being served */
};

void gw_reply_json(gw_req *r, int status, const char *json);
void gw_reply_error(gw_req *r, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void gw_reply_gust_error(gw_req *r, int err, const char *msg);
int gw_http_start(gw *g, gust_error **err);
void gw_http_stop(gw *g);

/* Authentication: the namespace of the caller's key, or an error already
 * answered (returns NULL). */
gw_key *gw_auth(gw_req *r);

/* gw_actions.c */
void gw_actions_route(gw_req *r, gw_key *k, const char *ns, const char *rest);
void gw_namespaces_list(gw_req *r, gw_key *k);

/* gw_invoke.c */
void gw_invoke(gw_req *r, gw_key *k, gw_action *a);
void gw_invoke_cleanup(gw_req *r);
int gw_sched_sync(gw *g);

/* gw_activations.c */
void gw_activations_route(gw_req *r, gw_key *k, const char *ns, const char *rest);

#endif
