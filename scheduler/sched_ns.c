/* sched_ns.c - namespace limits, mirrored from /gust/namespaces/<ns>:
 * {"name", "limits": {"concurrentInvocations", "invocationsPerMinute", ...}}.
 * A namespace without limits gets the configured defaults (OpenWhisk's). */
#include <jansson.h>
#include <string.h>

#include "gust/log.h"
#include "scheduler.h"

#define P_NS "/gust/namespaces/"

typedef struct ns_limit {
	int concurrent;
	int per_minute;
} ns_limit;

static int free_limit(void *arg, const char *k, void *v)
{
	free(v);
	return 1;
}

/* Under nslock. */
static void ns_put(sched *s, const char *key, const char *value, size_t len)
{
	const char *name = key + strlen(P_NS);
	json_t *o = json_loadb(value, len, 0, NULL);
	json_t *l = json_object_get(o, "limits");
	ns_limit *lim = gust_xcalloc(1, sizeof(*lim));
	json_t *c = json_object_get(l, "concurrentInvocations");
	json_t *m = json_object_get(l, "invocationsPerMinute");
	lim->concurrent = json_is_integer(c) && json_integer_value(c) > 0
	                      ? (int)json_integer_value(c)
	                      : (int)s->cfg.default_concurrent;
	lim->per_minute = json_is_integer(m) && json_integer_value(m) > 0
	                      ? (int)json_integer_value(m)
	                      : (int)s->cfg.default_per_minute;
	free(gust_map_put(&s->ns_limits, name, lim));
	json_decref(o);
}

static void ns_events(void *arg, const gust_watch_event *evs, size_t n, int64_t rev)
{
	sched *s = arg;
	pthread_mutex_lock(&s->nslock);
	for (size_t i = 0; i < n; i++) {
		const gust_kv *kv = &evs[i].kv;
		if (evs[i].type == GUST_WATCH_PUT)
			ns_put(s, kv->key, kv->value, kv->value_len);
		else
			free(gust_map_del(&s->ns_limits, kv->key + strlen(P_NS)));
	}
	pthread_mutex_unlock(&s->nslock);
}

static void ns_reset(void *arg, const gust_kvs *snap)
{
	sched *s = arg;
	pthread_mutex_lock(&s->nslock);
	gust_map_filter(&s->ns_limits, free_limit, NULL);
	for (size_t i = 0; i < snap->n; i++)
		ns_put(s, snap->kvs[i].key, snap->kvs[i].value, snap->kvs[i].value_len);
	pthread_mutex_unlock(&s->nslock);
}

void sched_ns_limits(sched *s, const char *ns, int *concurrent, int *per_minute)
{
	pthread_mutex_lock(&s->nslock);
	ns_limit *l = gust_map_get(&s->ns_limits, ns);
	*concurrent = l ? l->concurrent : (int)s->cfg.default_concurrent;
	*per_minute = l ? l->per_minute : (int)s->cfg.default_per_minute;
	pthread_mutex_unlock(&s->nslock);
}

int sched_ns_start(sched *s, gust_error **err)
{
	static const gust_watch_ops ops = {ns_events, ns_reset};
	pthread_mutex_init(&s->nslock, NULL);
	return gust_etcd_mirror_start(s->etcd, P_NS, &ops, s, &s->ns_watch, err);
}

void sched_ns_stop(sched *s)
{
	if (s->ns_watch)
		gust_etcd_watch_stop(s->ns_watch);
	s->ns_watch = NULL;
	pthread_mutex_lock(&s->nslock);
	gust_map_filter(&s->ns_limits, free_limit, NULL);
	gust_map_free(&s->ns_limits);
	pthread_mutex_unlock(&s->nslock);
}
