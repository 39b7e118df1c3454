/*
 * gust/fire.h - how a trigger fire becomes activations, shared by the gateway
 * (POST /triggers/<name>) and gust-trigger (feeds): the activation request
 * built from a stored action record, the trigger's active rules, the params
 * of a fire, the trigger's own activation record, and the feed a trigger
 * carries in its "feed" annotation (parsed and checked the same way by the
 * gateway when the trigger is stored and by the daemon that runs it).
 *
 * etcd layout (written by the gateway, read here):
 *   /gust/triggers/<ns>/<name>   {"namespace","name","parameters":[{key,value}],
 *                                 "annotations":[{"key":"feed","value":"kafka"},...]}
 *   /gust/rules/<ns>/<name>      {"trigger":{"name","path"},"action":{"name","path"},
 *                                 "status":"active"|"inactive"}
 *   /gust/actions/<ns>/[<pkg>/]<name>, /gust/packages/<ns>/<name>
 */
#ifndef GUST_FIRE_H
#define GUST_FIRE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "gust.pb-c.h"
#include "gust/err.h"

/* What a request needs from an action; strings are borrowed. */
typedef struct gust_fire_action {
	const char *ns;   /* the namespace that owns it */
	const char *name; /* [pkg/]name */
	const char *version;
	const char *kind;
	const char *main;
	bool binary;
	int memory_mb;
	int timeout_ms;
	int64_t log_limit; /* bytes */
	const char *code_key;
	int concurrency; /* limits.concurrency; 0 = leave unset (1) */
	bool egress;     /* annotation "egress": true */
	json_t *binding; /* annotation "binding": its value (borrowed), or NULL */
} gust_fire_action;

/* Fills a from a stored action record (strings point into rec). Sequences
 * (exec.components) are GUST_ENOTSUP: they run in the gateway. */
int gust_fire_action_from_json(json_t *rec, gust_fire_action *a);

/* The params bytes of an activation: the default members (JSON object members
 * without braces, may be "" or NULL) then the members of the JSON object in
 * params (already validated; NULL or len 0 = none), spliced as bytes, never
 * re-encoded (JSON parsers keep the last duplicate key, so the caller's win).
 * Returns a heap string; *outlen its length. */
char *gust_fire_params(const char *defaults, const char *params, size_t len, size_t *outlen);

/* A fresh non-blocking request with a new activation id; free with
 * gust_fire_request_free. cause may be NULL. */
Gust__ActivationRequest *gust_fire_request_new(const gust_fire_action *a, const char *user,
                                               const char *api_host, const char *defaults,
                                               const char *params, size_t len, const char *cause);
/* The same with params already final (what gust_fire_params returns): the
 * request takes params (heap) as they are, no copy. */
Gust__ActivationRequest *gust_fire_request_take(const gust_fire_action *a, const char *user,
                                                const char *api_host, char *params, size_t len,
                                                const char *cause);
void gust_fire_request_free(Gust__ActivationRequest *q);

/* The active rules of trigger `name` in ns among rule records rules[0..n):
 * a new array of {"rule": "ns/rule", "ns": action namespace, "path": "[pkg/]name"}. */
json_t *gust_fire_rule_targets(json_t *const *rules, size_t n, const char *ns, const char *name);

/* A "parameters" list ([{key, value}]) as JSON object members without braces
 * (heap); keys for which skip(key) is true are left out (skip may be NULL). */
char *gust_fire_params_inner(json_t *list, bool (*skip)(const char *key, void *arg), void *arg);

/* Resolves "[pkg/]name" in ns as the namespace `user` sees it, following a
 * package binding, as the gateway does. lookup(arg, "packages"|"actions", id)
 * returns a new reference to the stored record with that id ("ns/name",
 * "ns/pkg/name") or NULL. On success *action is a new reference to the action
 * record and *defaults the merged default parameters (package, binding,
 * action) as inner members (heap). GUST_ENOENT otherwise. */
typedef json_t *(*gust_fire_lookup_fn)(void *arg, const char *kind, const char *id);
int gust_fire_resolve(gust_fire_lookup_fn lookup, void *arg, const char *user, const char *ns,
                      const char *path, json_t **action, char **defaults);

/* The trigger's own activation record (OpenWhisk shape): its result is the
 * fire's params; logs (a JSON array of strings, borrowed) list what each rule
 * caused. Heap string. */
char *gust_fire_trigger_record(const char *id, const char *ns, const char *name, const char *user,
                               int64_t start_ms, const char *params, json_t *logs);

/* ---- feeds ------------------------------------------------------------ */

enum gust_feed_kind {
	GUST_FEED_NONE = 0,
	GUST_FEED_KAFKA,
	GUST_FEED_REDIS_STREAM,
	GUST_FEED_REDIS_PUBSUB,
	GUST_FEED_SCHEDULE,
};

/* A cron expression: 5 fields (minute hour day-of-month month day-of-week) or
 * 6 (seconds first); *, lists, ranges and /steps; UTC. Bit i set = value i. */
typedef struct gust_cron {
	uint64_t sec, min;
	uint32_t hour, dom, mon, dow;
	bool dom_star, dow_star;
} gust_cron;

int gust_cron_parse(const char *expr, gust_cron *c, gust_error **err);
/* The first matching second strictly after `after` (epoch seconds), or -1
 * when none within 5 years. */
int64_t gust_cron_next(const gust_cron *c, int64_t after);

typedef struct gust_feed {
	int kind; /* enum gust_feed_kind */
	/* common */
	int batch_size;
	int max_wait_ms;
	int max_attempts;
	bool in_order;
	/* kafka */
	char *brokers, *topic, *group, *dead_letter;
	bool json_data, binary_value, binary_key;
	bool start_latest;
	/* redis */
	char *redis; /* NULL: the cluster's own */
	/* On the cluster's Redis, full names inside gust:state:<ns>: (a tenant's
	 * relative name gets the prefix; anything outside is refused). */
	char *stream, *start_id;
	json_t *channels, *patterns; /* arrays of strings */
	/* schedule */
	bool has_cron;
	gust_cron cron;
	int64_t interval_ms;
	int64_t start_ms, stop_ms; /* 0 = none */
	json_t *payload;           /* object or NULL */
} gust_feed;

/* Parses the feed of a trigger record. GUST_ENOENT when it has no "feed"
 * annotation; GUST_EINVAL (with a message naming the parameter) when a
 * parameter is missing or bad. Clear f with gust_feed_clear. */
int gust_feed_parse(json_t *trigger, gust_feed *f, gust_error **err);
void gust_feed_clear(gust_feed *f);
/* True when the feed reaches outside the cluster (Kafka, a "redis" of its
 * own): the operator's policy must allow it (gust/scope.h). */
bool gust_feed_external(const gust_feed *f);
struct gust_policy;
/* GUST_EPERM (naming the parameter) when p does not allow an external feed's
 * target; 0 for the others. */
int gust_feed_check_policy(const gust_feed *f, const struct gust_policy *p, gust_error **err);
/* True for the names a feed of kind consumes (they are not fire params). */
bool gust_feed_is_param(int kind, const char *key);
/* A schedule's first tick strictly after `after` (ms since the epoch), within
 * its startDate and stopDate; -1 when there is none. */
int64_t gust_feed_next(const gust_feed *c, int64_t after);
const char *gust_feed_kind_name(int kind);

#endif
