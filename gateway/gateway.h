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
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gust/config.h"
#include "gust/stores.h"
#include "gust/etcd.h"
#include "gust/map.h"
#include "gust/metrics.h"
#include "gust/redis.h"
#include "gust/transport.h"
#include "gust/util.h"

typedef struct gw gw;
typedef struct gw_req gw_req;
typedef struct gw_cache gw_cache;
typedef struct gw_action gw_action;
typedef struct gw_key gw_key;
typedef struct gw_doc gw_doc;
typedef struct gw_conns gw_conns;
typedef struct gw_tls gw_tls;

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
	long long max_jobs;
	long long record_ttl_s;
	long long
	    header_timeout_s;     /* a request head must be complete this long after it may start */
	long long body_timeout_s; /* a request body must be complete this long after its head */
	long long idle_timeout_s; /* MHD's inactivity timeout */
	long long ns_max_entities; /* per namespace, unless its limits say otherwise */
	long long ns_max_bytes;
	char *tls_cert_file; /* both set: HTTPS (gw_tls.c) */
	char *tls_key_file;
	char *metrics_token_file;
	char *log_level;
	char *id;
	gust_transport_cfg tls;
	gust_stores_cfg stores; /* etcd and Redis credentials */
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
	bool raw_http;
	char *require_auth;  /* require-whisk-auth: NULL (none) or the secret (string/integer) */
	bool require_key;    /* require-whisk-auth: true: a valid key (Basic auth) */
	bool final;          /* annotation final: a web request may not set its parameters */
	long long code_size; /* bytes of code stored beside the record (its "code_size") */
	char *pkg;           /* the package it is in, or NULL */
	json_t *components;  /* sequences: ["/ns/[pkg/]name", ...]; NULL otherwise */
};

/* A key: its namespace and the salted hash of its secret (hash = hex of
 * SHA-256(salt || secret)). Records from before hashing carry the secret
 * itself in "key"; they still work, and `gust admin key create` never writes
 * one. */
struct gw_key {
	int refs;
	char *uuid;
	char *ns;
	char *salt;
	char *hash;
	char *key; /* legacy plaintext, or NULL */
};

/* Any other cached etcd record (package, trigger, rule, namespace): parsed
 * once, immutable once published, shared by reference count. */
struct gw_doc {
	int refs;
	json_t *j;
	int64_t rev;
	size_t len; /* bytes of the stored record */
};

enum gw_kind {
	GW_ACTIONS,
	GW_KEYS,
	GW_SCHEDULERS,
	GW_PACKAGES,
	GW_TRIGGERS,
	GW_RULES,
	GW_NAMESPACES,
	GW_NKINDS
};

struct gw_cache {
	pthread_rwlock_t lock;
	gust_map maps[GW_NKINDS]; /* id (etcd key past the prefix) -> object:
	                             actions "ns/[pkg/]name" -> gw_action, keys uuid -> gw_key,
	                             schedulers id -> address (heap string), the rest ->
	                             gw_doc ("ns/name", namespaces "ns") */
	gust_map entries;         /* etcd key -> revision and tombstone state */
	gust_etcd_watch *watches[GW_NKINDS];
};

struct gw {
	_Atomic int jobs;      /* gw_jobs.c: threads running sequences and fires */
	_Atomic int suspended; /* HTTP connections waiting on nng (see gw_destroy) */
	gw_config cfg;
	struct MHD_Daemon *mhd;
	gust_etcd *etcd;
	gw_cache cache;
	gust_transport *transport; /* mutual TLS to the schedulers */
	nng_socket sched;
	pthread_mutex_t dial_lock;
	gust_map dialers; /* scheduler address -> nng_dialer* */
	pthread_mutex_t redis_lock;
	void *redis; /* redisContext*, for activation reads */
	gust_metric *m_requests;
	gust_metric *m_latency;
	gust_metric *m_act[4];
	gust_metric *m_errors;
	gust_redis_writer *records; /* sequence and trigger activation records */
	gw_conns *conns;            /* gw_http.c: connection deadlines */
	gw_tls *tls;                /* gw_tls.c: NULL when serving plain HTTP */
	char *metrics_token;        /* NULL: GET /metrics is open */
};

/* gw_tls.c: HTTPS on the API port. gw_tls_start loads tls_cert_file and
 * tls_key_file before MHD starts; gw_tls_mhd_callback is the function MHD
 * asks for the certificate at each handshake (MHD_OPTION_HTTPS_CERT_CALLBACK),
 * so gw_tls_reload (SIGHUP) changes what new handshakes get while connections
 * already up keep theirs. A bad reload is logged and the current pair kept. */
static inline bool gw_tls_on(const gw *g)
{
	return g->cfg.tls_cert_file != NULL && g->cfg.tls_cert_file[0] != '\0';
}
int gw_tls_start(gw *g, gust_error **err);
void *gw_tls_mhd_callback(void); /* a gnutls_certificate_retrieve_function2 * */
void gw_tls_reload(gw *g);
void gw_tls_stop(gw *g);

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
/* A package, trigger, rule ("ns/name") or namespace ("ns"): +1 ref or NULL. */
gw_doc *gw_cache_doc(gw *g, int kind, const char *id);
/* Every object of a kind whose id starts with prefix, each +1 ref, sorted by
 * id; free with gw_cache_list_free. */
void **gw_cache_list(gw *g, int kind, const char *prefix, size_t *n);
void gw_cache_list_free(int kind, void **v, size_t n);
/* What namespace ns stores in etcd as this gateway knows it: its actions,
 * packages, triggers and rules, and their bytes (records, and code as each
 * action's record gives its size). */
void gw_cache_usage(gw *g, const char *ns, long long *count, long long *bytes);
void gw_action_unref(gw_action *a);
void gw_key_unref(gw_key *k);
void gw_doc_unref(gw_doc *d);
gw_action *gw_action_parse(const char *json, size_t len, int64_t rev);
/* The etcd prefix of a kind ("/gust/packages/"). */
const char *gw_prefix(int kind);

/* gw_http.c: the request object and responses */
/* DRAIN: answered before its body (see http_refuse); the body is dropped. */
enum gw_req_state { GW_REQ_NEW, GW_REQ_BODY, GW_REQ_WAIT, GW_REQ_READY, GW_REQ_DRAIN };

struct gw_req {
	gw *g;
	struct MHD_Connection *conn;
	int state;
	char *method;
	char *url;
	gust_buf body;
	size_t limit;
	bool too_big;
	size_t drained;          /* body bytes read and dropped (GW_REQ_DRAIN) */
	bool answer_after_drain; /* TLS: the refusal goes out once the body is dropped */
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
	long long wait_ms; /* how long a blocking call waits before 202 */
	void *areq;        /* Gust__ActivationRequest being served */
	const char *web;   /* web actions: the extension ("json", "http", ...) */
	json_t *headers;   /* extra response headers: {"name": "value"} or NULL */
	gw_key *key;       /* the caller's key, checked on the request head (API paths) */
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
#include "gust.pb-c.h"
/* Invokes a for the caller's namespace user with defaults (inner JSON members,
 * NULL = the action's own) and the caller's params (a JSON object, checked
 * here). Answers r, synchronously or after suspending it. */
void gw_invoke(gw_req *r, const char *user, gw_action *a, const char *defaults, const char *params,
               size_t len);
void gw_invoke_cleanup(gw_req *r);
int gw_sched_sync(gw *g);
/* Answers 400 and returns false unless body is empty or a JSON object. */
bool gw_params_check(gw_req *r, const char *body, size_t len);
/* A fresh request for a (params merged over defaults, as bytes). */
Gust__ActivationRequest *gw_areq_new(gw *g, const char *user, gw_action *a, const char *defaults,
                                     const char *params, size_t len, const char *cause);
void gw_areq_free(Gust__ActivationRequest *q);
/* A synchronous round trip to a scheduler, for threads that may block
 * (sequences, trigger fires); never on an HTTP thread. *out owned by caller. */
int gw_call(gw *g, const Gust__ActivationRequest *q, int64_t wait_ms, Gust__ActivationResult **out);
/* The answer for a refused activation: 429 for limits, else by error. */
void gw_reply_refused(gw_req *r, int err, const char *msg);

/* gw_sequence.c: runs a sequence on a thread of its own. */
void gw_sequence_invoke(gw_req *r, const char *user, gw_action *a, const char *defaults,
                        const char *params, size_t len);
/* Starts a sequence that no caller waits for (the action of a rule of a fired
 * trigger; cause is the fire's activation id): its activation id in id.
 * 0, or GUST_EBUSY when too many sequences and fires are in flight. */
int gw_sequence_start(gw *g, const char *user, gw_action *a, const char *defaults,
                      const char *params, size_t len, const char *cause, char id[33]);

/* gw_packages.c */
void gw_packages_route(gw_req *r, gw_key *k, const char *ns, const char *rest);
/* Finds the action at "[pkg/]name" in ns as seen by caller user (following a
 * package binding). *defaults gets the merged default parameters (package,
 * binding, action) as inner JSON members (heap). NULL with *err set. */
gw_action *gw_resolve_action(gw *g, const char *user, const char *ns, const char *path,
                             char **defaults, int *err);
/* Records: the redis writer commands for one activation record. */
void gw_record_store(gw *g, const char *ns, const char *id, int64_t start, const char *json,
                     size_t len);

/* Splits an entity name as a sequence component or rule names it: "name",
 * "pkg/name", "/ns/name", "/ns/pkg/name" ("_" = caller). 0 or -1. */
int gw_split_fqn(const char *s, const char *caller, char *ns, size_t nslen, char *path,
                 size_t pathlen);

/* gw_triggers.c, gw_rules.c */
/* The namespace's limit named k (its record's "limits"), or def. */
long long gw_ns_limit(gw *g, const char *ns, const char *k, long long def);
void gw_triggers_route(gw_req *r, gw_key *k, const char *ns, const char *rest);
void gw_rules_route(gw_req *r, gw_key *k, const char *ns, const char *rest);

/* gw_web.c */
void gw_web_route(gw_req *r);
/* OpenWhisk's "final": when a is annotated final, a caller's params (a JSON
 * object) may not set a parameter that defaults (inner JSON members; NULL =
 * the action's own) gives a value. Answers 400 naming it and returns false. */
bool gw_final_check(gw_req *r, gw_action *a, const char *defaults, json_t *params);
/* Removes the annotations that hold secrets (require-whisk-auth) from an
 * annotations list, for a viewer that is not the owner. */
void gw_hide_secrets(json_t *annotations);
void gw_web_answer(gw_req *r, int status, const char *result, size_t len);

/* gw_entity.c: helpers shared by the entity collections */
const char *gw_query(gw_req *r, const char *k);
bool gw_query_true(gw_req *r, const char *k);
bool gw_valid_name(const char *s);
/* The part every entity router shares: a collection (rest empty) is listed
 * on GET and 405 otherwise, a bad name is 400 naming what ("rule"...). True
 * when it answered; false: rest is a valid name for the router. */
bool gw_route_entity(gw_req *r, const char *ns, const char *rest, const char *what,
                     void (*list)(gw_req *r, const char *ns));
bool gw_valid_kv_list(json_t *v);
/* Parses skip/limit; false after answering 400. */
bool gw_query_skip_limit(gw_req *r, long long *skip, long long *limit);
/* Answers with the JSON value (and decrefs it). */
void gw_reply_jsonv(gw_req *r, int status, json_t *v);
/* Loads the body as a JSON object, or answers 400 and returns NULL. */
json_t *gw_body_object(gw_req *r);
/* The "parameters" list as inner JSON members ("\"a\":1,..."), heap. */
char *gw_params_inner(json_t *list);
/* Merges kv lists: later lists override the keys of earlier ones. */
json_t *gw_kv_merge(json_t *a, json_t *b);
/* Writes a record with compare-and-swap; answers errors; true on success. */
bool gw_store(gw_req *r, const char *key, int64_t expect_rev, json_t *rec);
/* Sets rec's "parameters" and "annotations" (lists of {key, value}) and
 * "publish" from body where given. False after answering 400. */
bool gw_entity_merge(gw_req *r, json_t *body, json_t *rec);
/* Bumps rec's version, stores it under key (compare-and-swap against the
 * old document's revision, 0 for a new one) and answers 200 with it. */
void gw_entity_save(gw_req *r, const char *key, int64_t old_rev, json_t **rec);
/* Deletes a record read at rev; answers errors; true on success. */
bool gw_unstore(gw_req *r, const char *key, int64_t rev);

/* gw_quota.c: a write that would take namespace ns over its entity count
 * (when is_new) or stored bytes (its usage - old_bytes + new_bytes) is
 * answered 403 EQUOTA, and false returned. */
bool gw_quota_admit(gw_req *r, const char *ns, bool is_new, long long old_bytes,
                    long long new_bytes);
/* The bytes a record counts against the quota. */
long long gw_record_bytes(json_t *rec);

/* gw_activations.c */
#include <hiredis/hiredis.h>
/* One Redis command on the gateway's shared read connection (reconnecting
 * once); NULL when Redis is unreachable. Caller frees the reply. */
redisReply *gw_redis_cmd(gw *g, int argc, const char **argv, const size_t *lens);
void gw_activations_route(gw_req *r, gw_key *k, const char *ns, const char *rest);

/* gw_jobs.c: sequences and trigger fires run on threads of their own, at most
 * max_jobs at once. Returns 0, or GUST_EBUSY when that many are running. */
int gw_job_start(gw *g, void *(*fn)(void *), void *arg);

/* Suspend/resume a request's connection, counted: MHD aborts if it is
 * stopped while any connection is suspended. */
void gw_suspend(gw_req *r);
void gw_resume(gw_req *r);

#endif
