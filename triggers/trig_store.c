/* trig_store.c - what gust-trigger mirrors from etcd: triggers, rules,
 * actions and packages (parsed JSON), the scheduler leader, the live
 * gust-trigger members and the feed claims (heap strings). Each map is kept
 * current by a mirror (list once, then watch); lookups never reach etcd. */
#include <string.h>

#include "gust/log.h"
#include "trigger.h"

static const char *const store_prefixes[TRIG_NKINDS] = {
    [TRIG_TRIGGERS] = "/gust/triggers/",     [TRIG_RULES] = "/gust/rules/",
    [TRIG_ACTIONS] = "/gust/actions/",       [TRIG_PACKAGES] = "/gust/packages/",
    [TRIG_SCHEDULERS] = "/gust/schedulers/", [TRIG_MEMBERS] = "/gust/trigger-members/",
    [TRIG_OWNERS] = "/gust/feed-owners/",
};

typedef struct store_arg {
	trig *t;
	int kind;
} store_arg;

static store_arg store_args[TRIG_NKINDS];

static bool store_is_text(int kind)
{
	return kind == TRIG_MEMBERS || kind == TRIG_OWNERS || kind == TRIG_SCHEDULERS;
}

static void store_value_free(int kind, void *v)
{
	if (store_is_text(kind))
		free(v);
	else
		json_decref(v);
}

static int store_drop(void *arg, const char *key, void *value)
{
	store_value_free(*(int *)arg, value);
	return 1;
}

/* Parses a value: JSON for records; for the text kinds the "owner" / "id" /
 * "address" member. NULL when unusable. */
static void *store_parse(int kind, const char *value, size_t len)
{
	json_t *o = json_loadb(value, len, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	if (!store_is_text(kind))
		return o;
	const char *field = kind == TRIG_OWNERS ? "owner" : kind == TRIG_MEMBERS ? "id" : "address";
	const char *s = json_string_value(json_object_get(o, field));
	char *v = s ? gust_xstrdup(s) : NULL;
	json_decref(o);
	return v;
}

static void store_put_locked(trig *t, int kind, const char *key, const char *value, size_t len)
{
	const char *id = key + strlen(store_prefixes[kind]);
	void *v = store_parse(kind, value, len);
	void *old = v ? gust_map_put(&t->maps[kind], id, v) : gust_map_del(&t->maps[kind], id);
	if (old)
		store_value_free(kind, old);
}

static void store_on_reset(void *arg, const gust_kvs *snap)
{
	store_arg *sa = arg;
	trig *t = sa->t;
	pthread_rwlock_wrlock(&t->lock);
	gust_map_filter(&t->maps[sa->kind], store_drop, &sa->kind);
	for (size_t i = 0; i < snap->n; i++)
		store_put_locked(t, sa->kind, snap->kvs[i].key, snap->kvs[i].value,
		                 snap->kvs[i].value_len);
	pthread_rwlock_unlock(&t->lock);
	atomic_fetch_add(&t->changes, 1);
}

static void store_on_events(void *arg, const gust_watch_event *evs, size_t n, int64_t rev)
{
	store_arg *sa = arg;
	trig *t = sa->t;
	pthread_rwlock_wrlock(&t->lock);
	for (size_t i = 0; i < n; i++) {
		const char *key = evs[i].kv.key;
		if (strncmp(key, store_prefixes[sa->kind], strlen(store_prefixes[sa->kind])) != 0)
			continue;
		if (evs[i].type == GUST_WATCH_PUT) {
			store_put_locked(t, sa->kind, key, evs[i].kv.value, evs[i].kv.value_len);
		} else {
			void *old = gust_map_del(&t->maps[sa->kind],
			                         key + strlen(store_prefixes[sa->kind]));
			if (old)
				store_value_free(sa->kind, old);
		}
	}
	pthread_rwlock_unlock(&t->lock);
	atomic_fetch_add(&t->changes, 1);
}

static const gust_watch_ops store_ops = {store_on_events, store_on_reset};

int trig_store_start(trig *t, gust_error **err)
{
	for (int k = 0; k < TRIG_NKINDS; k++) {
		store_args[k].t = t;
		store_args[k].kind = k;
		int rv = gust_etcd_mirror_start(t->etcd, store_prefixes[k], &store_ops,
		                                &store_args[k], &t->watches[k], err);
		if (rv != 0)
			return gust_error_wrap(err, "mirroring %s", store_prefixes[k]);
	}
	return 0;
}

void trig_store_stop(trig *t)
{
	for (int k = 0; k < TRIG_NKINDS; k++) {
		if (t->watches[k])
			gust_etcd_watch_stop(t->watches[k]);
		t->watches[k] = NULL;
		gust_map_filter(&t->maps[k], store_drop, &k);
		gust_map_free(&t->maps[k]);
	}
}

json_t *trig_store_get(trig *t, int kind, const char *id)
{
	pthread_rwlock_rdlock(&t->lock);
	json_t *v = gust_map_get(&t->maps[kind], id);
	if (v)
		json_incref(v);
	pthread_rwlock_unlock(&t->lock);
	return v;
}

typedef struct store_list {
	const char *prefix;
	size_t plen;
	json_t **v;
	size_t n;
} store_list;

static int store_collect(void *arg, const char *key, void *value)
{
	store_list *l = arg;
	if (strncmp(key, l->prefix, l->plen) == 0) {
		l->v = gust_xrealloc(l->v, (l->n + 1) * sizeof(json_t *));
		l->v[l->n++] = json_incref(value);
	}
	return 0;
}

json_t **trig_store_rules(trig *t, const char *ns, size_t *n)
{
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	store_list l = {prefix, strlen(prefix), NULL, 0};
	pthread_rwlock_rdlock(&t->lock);
	gust_map_filter(&t->maps[TRIG_RULES], store_collect, &l);
	pthread_rwlock_unlock(&t->lock);
	*n = l.n;
	return l.v;
}

void trig_store_list_free(json_t **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		json_decref(v[i]);
	free(v);
}

char *trig_store_leader(trig *t)
{
	pthread_rwlock_rdlock(&t->lock);
	const char *a = gust_map_get(&t->maps[TRIG_SCHEDULERS], "leader");
	char *v = a ? gust_xstrdup(a) : NULL;
	pthread_rwlock_unlock(&t->lock);
	return v;
}
