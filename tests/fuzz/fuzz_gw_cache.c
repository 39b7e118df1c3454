/* fuzz_gw_cache.c - the gateway's parsers of stored records
 * (gateway/gw_cache.c): gw_action_parse (action records, with the default
 * parameters turned into JSON members for the invoke splice), key records,
 * scheduler records and the other documents, through the cache as the etcd
 * watch feeds it (gw_cache_apply_put / gw_cache_apply_delete and lookups).
 * It also runs gust_fire_action_from_json (common/trigger_fire.c), the trigger
 * daemon's reading of the same action records.
 *
 * Properties: a parsed action has every string set, its default members make
 * a JSON object, and it keeps the record's bytes; the cache answers lookups
 * with what it was given, honours revisions (an older put or delete does not
 * replace a newer entry) and frees everything.
 *
 * Input: byte 0 picks the kind of key (actions, keys, schedulers, packages,
 * ...); the rest is the stored value. */
#include "../../gateway/gw_cache.c"

#include "fuzz.h"
#include "gust/fire.h"

int gw_sched_sync(gw *g)
{
	return 0;
}

static void check_action(const gw_action *a, const char *json, size_t len)
{
	FUZZ_CHECK(a->ns && a->name && a->version && a->kind && a->main && a->code_key &&
	               a->params_inner && a->json,
	           "unset field");
	FUZZ_CHECK(strlen(a->json) <= len && memcmp(a->json, json, strlen(a->json)) == 0,
	           "record bytes not kept");
	size_t n = strlen(a->params_inner);
	char *w = gust_xasprintf("{%s}", a->params_inner);
	json_error_t je;
	json_t *o = json_loadb(w, n + 2, 0, &je);
	FUZZ_CHECK(json_is_object(o), "default members are not an object's (%s): %s", je.text, w);
	FUZZ_CHECK(strchr(w, '\n') == NULL, "newline in default members");
	json_decref(o);
	free(w);
	FUZZ_CHECK(a->pkg == NULL || strncmp(a->name, a->pkg, strlen(a->pkg)) == 0,
	           "package action name %s not under %s", a->name, a->pkg);
	FUZZ_CHECK(!(a->require_key && a->require_auth),
	           "require-whisk-auth both a key and a secret");
	FUZZ_CHECK(a->code_size >= 0, "negative code size");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	int kind = data[0] % GW_NKINDS;
	const char *value = (const char *)data + 1;
	size_t len = size - 1;

	gust_log_threshold = GUST_LOG_ERROR + 1;
	/* The parser alone. */
	gw_action *a = gw_action_parse(value, len, 7);
	if (a != NULL) {
		check_action(a, value, len);
		gw_action_unref(a);
	}
	json_t *rec = json_loadb(value, len, 0, NULL);
	gust_fire_action fa;
	if (gust_fire_action_from_json(rec, &fa) == 0)
		FUZZ_CHECK(fa.version && fa.kind && fa.main && fa.code_key && fa.concurrency >= 1 &&
		               fa.concurrency <= 500,
		           "fire action");
	json_decref(rec);

	/* Through the cache, as the watch delivers it. */
	gw g;
	memset(&g, 0, sizeof(g));
	pthread_rwlock_init(&g.cache.lock, NULL);
	char *key = gust_xasprintf(
	    "%sguest/%s", gw_prefix(kind),
	    kind == GW_NAMESPACES || kind == GW_KEYS || kind == GW_SCHEDULERS ? "x" : "hello");
	const char *id = key + strlen(gw_prefix(kind));
	gw_cache_apply_put(&g, key, value, len, 10);
	void *obj = NULL;
	switch (kind) {
	case GW_ACTIONS:
		obj = gw_cache_action(&g, "guest", "hello");
		if (obj) {
			check_action(obj, value, len);
			gw_action_unref(obj);
		}
		break;
	case GW_KEYS:
		obj = gw_cache_key(&g, id);
		if (obj) {
			gw_key *k = obj;
			FUZZ_CHECK(k->uuid && k->ns && ((k->salt && k->hash) || k->key), "key");
			gw_key_unref(k);
		}
		break;
	case GW_SCHEDULERS:
		FUZZ_CHECK(gw_cache_schedulers(&g) <= 1, "schedulers");
		break;
	default:
		obj = gw_cache_doc(&g, kind, id);
		if (obj) {
			FUZZ_CHECK(json_is_object(((gw_doc *)obj)->j), "doc");
			gw_doc_unref(obj);
		}
	}
	/* Quota usage (gw_quota.c) counts what the cache holds of the namespace. */
	long long un = -1, ub = -1;
	gw_cache_usage(&g, "guest", &un, &ub);
	bool entity =
	    kind == GW_ACTIONS || kind == GW_PACKAGES || kind == GW_TRIGGERS || kind == GW_RULES;
	FUZZ_CHECK(un == (entity && obj != NULL ? 1 : 0) && ub >= 0 && (un > 0 || ub == 0),
	           "usage %lld entities, %lld bytes", un, ub);
	/* An older put changes nothing; a newer delete removes it; an older
	 * put after the delete does not bring it back. */
	gw_cache_apply_put(&g, key, "{}", 2, 9);
	if (kind == GW_ACTIONS && obj != NULL) {
		gw_action *b = gw_cache_action(&g, "guest", "hello");
		FUZZ_CHECK(b != NULL && b->mod_revision == 10, "an older put replaced the entry");
		gw_action_unref(b);
	}
	gw_cache_apply_delete(&g, key, 11);
	gw_cache_apply_put(&g, key, value, len, 10);
	if (kind == GW_ACTIONS)
		FUZZ_CHECK(gw_cache_action(&g, "guest", "hello") == NULL,
		           "an older put undid a delete");
	size_t n = 0;
	void **v = gw_cache_list(&g, kind, "", &n);
	FUZZ_CHECK(n == 0, "%zu entries after delete", n);
	gw_cache_list_free(kind, v, n);
	gw_cache_stop(&g);
	pthread_rwlock_destroy(&g.cache.lock);
	free(key);
	return 0;
}
