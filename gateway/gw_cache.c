/* gw_cache.c - keys, actions and schedulers mirrored from etcd.
 *
 * Each entry remembers the etcd revision it came from, and deletions leave a
 * tombstone until the watch has passed their revision: so the gateway's own
 * writes show at once (read your writes), and the watch's late echo of an
 * older state never overwrites a newer one. */
#include <jansson.h>
#include <stdatomic.h>
#include <string.h>

#include "gateway.h"
#include "gust/log.h"

typedef struct cache_entry {
	int64_t rev;
	bool deleted;
	void *obj; /* gw_action*, gw_key*, gw_doc* or char* address; NULL when deleted */
} cache_entry;

static const char *const prefixes[GW_NKINDS] = {
    [GW_ACTIONS] = "/gust/actions/",       [GW_KEYS] = "/gust/keys/",
    [GW_SCHEDULERS] = "/gust/schedulers/", [GW_PACKAGES] = "/gust/packages/",
    [GW_TRIGGERS] = "/gust/triggers/",     [GW_RULES] = "/gust/rules/",
    [GW_NAMESPACES] = "/gust/namespaces/",
};

const char *gw_prefix(int kind)
{
	return prefixes[kind];
}

/* The kind of an etcd key, or -1. */
static int kind_of(const char *key)
{
	for (int i = 0; i < GW_NKINDS; i++)
		if (strncmp(key, prefixes[i], strlen(prefixes[i])) == 0)
			return i;
	return -1;
}

void gw_doc_unref(gw_doc *d)
{
	if (d == NULL || atomic_fetch_sub((_Atomic int *)&d->refs, 1) != 1)
		return;
	json_decref(d->j);
	free(d);
}

void gw_action_unref(gw_action *a)
{
	if (a == NULL || atomic_fetch_sub((_Atomic int *)&a->refs, 1) != 1)
		return;
	free(a->ns);
	free(a->name);
	free(a->version);
	free(a->kind);
	free(a->main);
	free(a->code_key);
	free(a->params_inner);
	free(a->json);
	free(a->require_auth);
	free(a->pkg);
	json_decref(a->components);
	free(a);
}

void gw_key_unref(gw_key *k)
{
	if (k == NULL || atomic_fetch_sub((_Atomic int *)&k->refs, 1) != 1)
		return;
	free(k->uuid);
	free(k->key);
	free(k->ns);
	free(k->salt);
	free(k->hash);
	free(k);
}

static const char *jstr(json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : def;
}

/* The members of a JSON object without its braces: "\"a\":1,\"b\":2". Used to
 * splice default parameters in front of the caller's without re-encoding them. */
static char *params_inner_from_list(json_t *list)
{
	json_t *obj = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		const char *k = jstr(p, "key", NULL);
		json_t *v = json_object_get(p, "value");
		if (k && v)
			json_object_set(obj, k, v);
	}
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s == NULL)
		return gust_xstrdup("");
	size_t n = strlen(s);
	char *inner = gust_xstrndup(s + 1, n >= 2 ? n - 2 : 0);
	free(s);
	return inner;
}

gw_action *gw_action_parse(const char *json, size_t len, int64_t rev)
{
	json_error_t je;
	json_t *o = json_loadb(json, len, 0, &je);
	if (o == NULL || !json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	json_t *exec = json_object_get(o, "exec");
	json_t *limits = json_object_get(o, "limits");
	gw_action *a = gust_xcalloc(1, sizeof(*a));
	a->refs = 1;
	/* Package actions are stored with namespace "ns/pkg", as OpenWhisk shows
	 * them; inside the gateway the name carries the package. */
	const char *ns = jstr(o, "namespace", "");
	const char *slash = strchr(ns, '/');
	if (slash) {
		a->ns = gust_xstrndup(ns, (size_t)(slash - ns));
		a->pkg = gust_xstrdup(slash + 1);
		a->name = gust_xasprintf("%s/%s", slash + 1, jstr(o, "name", ""));
	} else {
		a->ns = gust_xstrdup(ns);
		a->name = gust_xstrdup(jstr(o, "name", ""));
	}
	a->version = gust_xstrdup(jstr(o, "version", "0.0.1"));
	a->kind = gust_xstrdup(jstr(exec, "kind", ""));
	a->main = gust_xstrdup(jstr(exec, "main", "main"));
	a->binary = json_is_true(json_object_get(exec, "binary"));
	a->code_key = gust_xstrdup(jstr(o, "code_key", ""));
	a->code_size = json_integer_value(json_object_get(o, "code_size"));
	if (a->code_size < 0) /* the gateway writes it, but the store is not trusted blindly */
		a->code_size = 0;
	a->timeout_ms = json_integer_value(json_object_get(limits, "timeout"));
	a->memory_mb = json_integer_value(json_object_get(limits, "memory"));
	a->log_limit = json_integer_value(json_object_get(limits, "logs")) * 1024 * 1024;
	a->params_inner = params_inner_from_list(json_object_get(o, "parameters"));
	a->json = gust_xstrndup(json, len);
	a->mod_revision = rev;
	json_t *comps = json_object_get(exec, "components");
	if (json_is_array(comps))
		a->components = json_incref(comps);
	json_t *ann;
	size_t i;
	json_array_foreach(json_object_get(o, "annotations"), i, ann)
	{
		const char *k = jstr(ann, "key", "");
		json_t *v = json_object_get(ann, "value");
		if (strcmp(k, "web-export") == 0)
			a->web_export = json_is_true(v);
		else if (strcmp(k, "raw-http") == 0)
			a->raw_http = json_is_true(v);
		else if (strcmp(k, "final") == 0)
			a->final = json_is_true(v);
		else if (strcmp(k, "require-whisk-auth") == 0 &&
		         (json_is_true(v) || json_is_string(v) || json_is_integer(v))) {
			free(a->require_auth);
			a->require_auth = NULL;
			a->require_key = json_is_true(v);
			if (json_is_string(v))
				a->require_auth = gust_xstrdup(json_string_value(v));
			else if (json_is_integer(v))
				a->require_auth =
				    gust_xasprintf("%lld", (long long)json_integer_value(v));
		}
	}
	json_decref(o);
	return a;
}

static gw_key *key_parse(const char *json, size_t len)
{
	json_t *o = json_loadb(json, len, 0, NULL);
	const char *uuid = jstr(o, "uuid", NULL), *key = jstr(o, "key", NULL),
	           *ns = jstr(o, "namespace", NULL), *salt = jstr(o, "salt", NULL),
	           *hash = jstr(o, "hash", NULL);
	gw_key *k = NULL;
	if (uuid && ns && ((salt && hash) || key)) {
		k = gust_xcalloc(1, sizeof(*k));
		k->refs = 1;
		k->uuid = gust_xstrdup(uuid);
		k->ns = gust_xstrdup(ns);
		if (salt && hash) {
			k->salt = gust_xstrdup(salt);
			k->hash = gust_xstrdup(hash);
		} else {
			k->key = gust_xstrdup(key);
		}
	}
	json_decref(o);
	return k;
}

static void entry_obj_free(const char *key, void *obj)
{
	if (obj == NULL)
		return;
	switch (kind_of(key)) {
	case GW_ACTIONS:
		gw_action_unref(obj);
		break;
	case GW_KEYS:
		gw_key_unref(obj);
		break;
	case GW_SCHEDULERS:
		free(obj);
		break;
	default:
		gw_doc_unref(obj);
	}
}

static void *entry_obj_parse(const char *key, const char *value, size_t len, int64_t rev)
{
	int kind = kind_of(key);
	if (kind == GW_ACTIONS)
		return gw_action_parse(value, len, rev);
	if (kind == GW_KEYS)
		return key_parse(value, len);
	json_t *o = json_loadb(value, len, 0, NULL);
	if (!json_is_object(o)) {
		json_decref(o);
		return NULL;
	}
	if (kind == GW_SCHEDULERS) {
		const char *addr = jstr(o, "address", NULL);
		char *a = addr ? gust_xstrdup(addr) : NULL;
		json_decref(o);
		return a;
	}
	gw_doc *d = gust_xcalloc(1, sizeof(*d));
	d->refs = 1;
	d->j = o;
	d->rev = rev;
	d->len = len;
	return d;
}

/* The map that serves lookups for a given etcd key. */
static gust_map *index_for(gw *g, const char *key, const char **id)
{
	int kind = kind_of(key);
	if (kind < 0)
		return NULL;
	*id = key + strlen(prefixes[kind]);
	return &g->cache.maps[kind];
}

/* Under the write lock. */
static bool apply_put_locked(gw *g, const char *key, const char *value, size_t len, int64_t rev)
{
	const char *id;
	gust_map *idx = index_for(g, key, &id);
	if (idx == NULL)
		return false;
	cache_entry *e = gust_map_get(&g->cache.entries, key);
	if (e && e->rev >= rev)
		return false;
	void *obj = entry_obj_parse(key, value, len, rev);
	if (obj == NULL) {
		gust_log_warn("GW-CACHE-BAD", "ignoring malformed etcd value at %s", key);
		return false;
	}
	if (e == NULL) {
		e = gust_xcalloc(1, sizeof(*e));
		gust_map_put(&g->cache.entries, key, e);
	}
	e->rev = rev;
	e->deleted = false;
	e->obj = obj;
	void *old = gust_map_put(idx, id, obj);
	entry_obj_free(key, old);
	return true;
}

static bool apply_delete_locked(gw *g, const char *key, int64_t rev)
{
	const char *id;
	gust_map *idx = index_for(g, key, &id);
	if (idx == NULL)
		return false;
	cache_entry *e = gust_map_get(&g->cache.entries, key);
	if (e && e->rev >= rev)
		return false;
	if (e == NULL) {
		e = gust_xcalloc(1, sizeof(*e));
		gust_map_put(&g->cache.entries, key, e);
	}
	e->rev = rev;
	e->deleted = true;
	e->obj = NULL;
	entry_obj_free(key, gust_map_del(idx, id));
	return true;
}

static int purge_tombstone(void *arg, const char *key, void *value)
{
	cache_entry *e = value;
	if (e->deleted && e->rev <= *(int64_t *)arg) {
		free(e);
		return 1;
	}
	return 0;
}

void gw_cache_apply_put(gw *g, const char *key, const char *value, size_t len, int64_t rev)
{
	pthread_rwlock_wrlock(&g->cache.lock);
	bool sched = apply_put_locked(g, key, value, len, rev) && kind_of(key) == GW_SCHEDULERS;
	pthread_rwlock_unlock(&g->cache.lock);
	if (sched)
		gw_sched_sync(g);
}

void gw_cache_apply_delete(gw *g, const char *key, int64_t rev)
{
	pthread_rwlock_wrlock(&g->cache.lock);
	bool sched = apply_delete_locked(g, key, rev) && kind_of(key) == GW_SCHEDULERS;
	pthread_rwlock_unlock(&g->cache.lock);
	if (sched)
		gw_sched_sync(g);
}

static void cache_on_events(void *arg, const gust_watch_event *evs, size_t n, int64_t revision)
{
	gw *g = arg;
	bool sched = false;
	pthread_rwlock_wrlock(&g->cache.lock);
	for (size_t i = 0; i < n; i++) {
		const gust_kv *kv = &evs[i].kv;
		bool changed =
		    evs[i].type == GUST_WATCH_PUT
		        ? apply_put_locked(g, kv->key, kv->value, kv->value_len, kv->mod_revision)
		        : apply_delete_locked(g, kv->key, kv->mod_revision);
		if (changed && kind_of(kv->key) == GW_SCHEDULERS)
			sched = true;
	}
	gust_map_filter(&g->cache.entries, purge_tombstone, &revision);
	pthread_rwlock_unlock(&g->cache.lock);
	if (sched)
		gw_sched_sync(g);
}

typedef struct reset_ctx {
	gw *g;
	const gust_kvs *snap;
	const char *prefix;
} reset_ctx;

/* After a re-list: drop what the snapshot no longer has (unless we wrote it
 * after the snapshot was taken). */
static int reset_drop_missing(void *arg, const char *key, void *value)
{
	reset_ctx *rc = arg;
	cache_entry *e = value;
	if (strncmp(key, rc->prefix, strlen(rc->prefix)) != 0 || e->rev > rc->snap->revision)
		return 0;
	for (size_t i = 0; i < rc->snap->n; i++)
		if (strcmp(rc->snap->kvs[i].key, key) == 0)
			return 0;
	const char *id;
	gust_map *idx = index_for(rc->g, key, &id);
	if (idx)
		entry_obj_free(key, gust_map_del(idx, id));
	free(e);
	return 1;
}

static void cache_on_reset_prefix(gw *g, const gust_kvs *snap, const char *prefix)
{
	pthread_rwlock_wrlock(&g->cache.lock);
	reset_ctx rc = {g, snap, prefix};
	gust_map_filter(&g->cache.entries, reset_drop_missing, &rc);
	for (size_t i = 0; i < snap->n; i++)
		apply_put_locked(g, snap->kvs[i].key, snap->kvs[i].value, snap->kvs[i].value_len,
		                 snap->kvs[i].mod_revision);
	pthread_rwlock_unlock(&g->cache.lock);
	if (strcmp(prefix, prefixes[GW_SCHEDULERS]) == 0)
		gw_sched_sync(g);
}

#define RESET_FN(fn, kind)                                                                         \
	static void fn(void *arg, const gust_kvs *snap)                                            \
	{                                                                                          \
		cache_on_reset_prefix(arg, snap, prefixes[kind]);                                  \
	}
RESET_FN(reset_actions, GW_ACTIONS)
RESET_FN(reset_keys, GW_KEYS)
RESET_FN(reset_sched, GW_SCHEDULERS)
RESET_FN(reset_packages, GW_PACKAGES)
RESET_FN(reset_triggers, GW_TRIGGERS)
RESET_FN(reset_rules, GW_RULES)
RESET_FN(reset_namespaces, GW_NAMESPACES)

int gw_cache_start(gw *g, gust_error **err)
{
	static const gust_watch_ops ops[GW_NKINDS] = {
	    [GW_ACTIONS] = {cache_on_events, reset_actions},
	    [GW_KEYS] = {cache_on_events, reset_keys},
	    [GW_SCHEDULERS] = {cache_on_events, reset_sched},
	    [GW_PACKAGES] = {cache_on_events, reset_packages},
	    [GW_TRIGGERS] = {cache_on_events, reset_triggers},
	    [GW_RULES] = {cache_on_events, reset_rules},
	    [GW_NAMESPACES] = {cache_on_events, reset_namespaces},
	};
	pthread_rwlock_init(&g->cache.lock, NULL);
	for (int i = 0; i < GW_NKINDS; i++) {
		int rv = gust_etcd_mirror_start(g->etcd, prefixes[i], &ops[i], g,
		                                &g->cache.watches[i], err);
		if (rv != 0) {
			gw_cache_stop(g);
			return gust_error_wrap(err, "mirroring %s", prefixes[i]);
		}
	}
	return 0;
}

static int drop_all(void *arg, const char *key, void *value)
{
	cache_entry *e = value;
	const char *id;
	gust_map *idx = index_for(arg, key, &id);
	if (idx)
		entry_obj_free(key, gust_map_del(idx, id));
	free(e);
	return 1;
}

void gw_cache_stop(gw *g)
{
	for (int i = 0; i < GW_NKINDS; i++) {
		if (g->cache.watches[i])
			gust_etcd_watch_stop(g->cache.watches[i]);
		g->cache.watches[i] = NULL;
	}
	pthread_rwlock_wrlock(&g->cache.lock);
	gust_map_filter(&g->cache.entries, drop_all, g);
	gust_map_free(&g->cache.entries);
	for (int i = 0; i < GW_NKINDS; i++)
		gust_map_free(&g->cache.maps[i]);
	pthread_rwlock_unlock(&g->cache.lock);
}

gw_action *gw_cache_action(gw *g, const char *ns, const char *name)
{
	char id[1024];
	if ((size_t)snprintf(id, sizeof(id), "%s/%s", ns, name) >= sizeof(id))
		return NULL;
	pthread_rwlock_rdlock(&g->cache.lock);
	gw_action *a = gust_map_get(&g->cache.maps[GW_ACTIONS], id);
	if (a)
		atomic_fetch_add((_Atomic int *)&a->refs, 1);
	pthread_rwlock_unlock(&g->cache.lock);
	return a;
}

gw_key *gw_cache_key(gw *g, const char *uuid)
{
	pthread_rwlock_rdlock(&g->cache.lock);
	gw_key *k = gust_map_get(&g->cache.maps[GW_KEYS], uuid);
	if (k)
		atomic_fetch_add((_Atomic int *)&k->refs, 1);
	pthread_rwlock_unlock(&g->cache.lock);
	return k;
}

size_t gw_cache_schedulers(gw *g)
{
	pthread_rwlock_rdlock(&g->cache.lock);
	size_t n = g->cache.maps[GW_SCHEDULERS].count;
	pthread_rwlock_unlock(&g->cache.lock);
	return n;
}

gw_doc *gw_cache_doc(gw *g, int kind, const char *id)
{
	pthread_rwlock_rdlock(&g->cache.lock);
	gw_doc *d = gust_map_get(&g->cache.maps[kind], id);
	if (d)
		atomic_fetch_add((_Atomic int *)&d->refs, 1);
	pthread_rwlock_unlock(&g->cache.lock);
	return d;
}

typedef struct list_ctx {
	const char *prefix;
	size_t plen;
	char **ids;
	void **v;
	size_t n, cap;
} list_ctx;

static int list_collect(void *arg, const char *key, void *value)
{
	list_ctx *lc = arg;
	if (strncmp(key, lc->prefix, lc->plen) != 0)
		return 0;
	if (lc->n == lc->cap) {
		lc->cap = lc->cap ? lc->cap * 2 : 16;
		lc->v = gust_xrealloc(lc->v, lc->cap * sizeof(*lc->v));
		lc->ids = gust_xrealloc(lc->ids, lc->cap * sizeof(*lc->ids));
	}
	/* gw_action, gw_key and gw_doc all begin with their reference count. */
	atomic_fetch_add((_Atomic int *)value, 1);
	lc->ids[lc->n] = (char *)key;
	lc->v[lc->n++] = value;
	return 0;
}

void **gw_cache_list(gw *g, int kind, const char *prefix, size_t *n)
{
	list_ctx lc = {.prefix = prefix, .plen = strlen(prefix)};
	pthread_rwlock_rdlock(&g->cache.lock);
	gust_map_filter(&g->cache.maps[kind], list_collect, &lc);
	/* Sort by id under the lock, while the ids are still alive (insertion sort:
	 * lists are short, and a namespace's entities are few). */
	for (size_t i = 1; i < lc.n; i++) {
		for (size_t j = i; j > 0 && strcmp(lc.ids[j - 1], lc.ids[j]) > 0; j--) {
			char *ti = lc.ids[j];
			lc.ids[j] = lc.ids[j - 1];
			lc.ids[j - 1] = ti;
			void *tv = lc.v[j];
			lc.v[j] = lc.v[j - 1];
			lc.v[j - 1] = tv;
		}
	}
	pthread_rwlock_unlock(&g->cache.lock);
	free(lc.ids);
	*n = lc.n;
	return lc.v;
}

void gw_cache_list_free(int kind, void **v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (kind == GW_ACTIONS)
			gw_action_unref(v[i]);
		else if (kind == GW_KEYS)
			gw_key_unref(v[i]);
		else
			gw_doc_unref(v[i]);
	}
	free(v);
}

typedef struct usage_ctx {
	const char *prefix;
	size_t plen;
	int kind;
	long long n, bytes;
} usage_ctx;

static int usage_add(void *arg, const char *key, void *value)
{
	usage_ctx *u = arg;
	if (value == NULL || strncmp(key, u->prefix, u->plen) != 0)
		return 0;
	u->n++;
	if (u->kind == GW_ACTIONS) {
		gw_action *a = value;
		u->bytes += (long long)strlen(a->json) + a->code_size;
	} else {
		u->bytes += (long long)((gw_doc *)value)->len;
	}
	return 0;
}

void gw_cache_usage(gw *g, const char *ns, long long *count, long long *bytes)
{
	static const int kinds[] = {GW_ACTIONS, GW_PACKAGES, GW_TRIGGERS, GW_RULES};
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	usage_ctx u = {.prefix = prefix, .plen = strlen(prefix)};
	pthread_rwlock_rdlock(&g->cache.lock);
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		u.kind = kinds[i];
		gust_map_filter(&g->cache.maps[kinds[i]], usage_add, &u);
	}
	pthread_rwlock_unlock(&g->cache.lock);
	*count = u.n;
	*bytes = u.bytes;
}
