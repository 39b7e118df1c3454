/* gw_actions.c - actions: create, update (merge), get, list, delete; invoke is
 * handed to gw_invoke.c. Records live in etcd at /gust/actions/<ns>/<name>
 * (metadata) and /gust/code/<ns>/<name>/<version> (the code). */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "gust/log.h"

static const char *query(gw_req *r, const char *k)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, k);
}

static bool query_true(gw_req *r, const char *k)
{
	const char *v = query(r, k);
	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || *v == '\0');
}

/* OpenWhisk's entity name rule: word characters, then word characters, '@',
 * ' ', '.', '-'; at most 256; no trailing space. */
static bool valid_name(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		bool word = isalnum(c) || c == '_';
		if (i == 0 && !word)
			return false;
		if (!word && c != '@' && c != ' ' && c != '.' && c != '-')
			return false;
	}
	return s[n - 1] != ' ';
}

static const char *normal_kind(const char *k)
{
	if (k == NULL)
		return NULL;
	if (strcmp(k, "python:3") == 0 || strcmp(k, "python:default") == 0)
		return "python:3";
	if (strcmp(k, "nodejs:20") == 0 || strcmp(k, "nodejs:default") == 0)
		return "nodejs:20";
	if (strcmp(k, "native") == 0 || strcmp(k, "blackbox") == 0)
		return "native";
	return NULL;
}

static char *bump_version(const char *v)
{
	unsigned a = 0, b = 0, c = 0;
	if (v == NULL || sscanf(v, "%u.%u.%u", &a, &b, &c) != 3)
		return gust_xstrdup("0.0.1");
	return gust_xasprintf("%u.%u.%u", a, b, c + 1);
}

/* Checks an integer limit; returns false (and answers 400) when out of bounds. */
static bool check_limit(gw_req *r, json_t *limits, const char *k, long long lo, long long hi,
                        long long def, long long *out)
{
	json_t *v = json_object_get(limits, k);
	if (v == NULL) {
		*out = def;
		return true;
	}
	if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi) {
		gw_reply_error(
		    r, 400, "EINVAL",
		    "The request content was malformed: limit '%s' must be an integer in "
		    "[%lld, %lld]",
		    k, lo, hi);
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

static bool valid_kv_list(json_t *v)
{
	if (v == NULL)
		return true;
	if (!json_is_array(v))
		return false;
	size_t i;
	json_t *p;
	json_array_foreach(v, i, p)
	{
		if (!json_is_object(p) || !json_is_string(json_object_get(p, "key")) ||
		    json_object_get(p, "value") == NULL)
			return false;
	}
	return true;
}

static void action_put(gw_req *r, const char *ns, const char *name)
{
	gw *g = r->g;
	bool overwrite = query_true(r, "overwrite");
	json_error_t je;
	json_t *body = r->body.len ? json_loadb(r->body.data, r->body.len, 0, &je) : json_object();
	if (body == NULL || !json_is_object(body)) {
		gw_reply_error(r, 400, "EINVAL", "The request content was malformed: %s",
		               body ? "the body must be a JSON object" : je.text);
		json_decref(body);
		return;
	}
	cleanup_free char *rkey = gust_xasprintf("/gust/actions/%s/%s", ns, name);
	/* Every cleanup-owned local is declared before the first goto: a jump
	 * past an initialisation would free garbage on the way out. */
	cleanup_free char *version = NULL, *old_code_key = NULL, *doc = NULL, *answer = NULL;
	gust_kv old = {0};
	gust_error *e = NULL;
	int rv = gust_etcd_get(g->etcd, rkey, &old, &e);
	json_t *rec = NULL;
	if (rv == 0) {
		if (!overwrite) {
			gw_reply_error(r, 409, "EEXIST", "resource already exists");
			goto out;
		}
		rec = json_loadb(old.value, old.value_len, 0, NULL);
	} else if (rv != GUST_ENOENT) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		goto out;
	}
	if (rec == NULL)
		rec = json_object();

	json_t *exec = json_object_get(body, "exec");
	const char *code = NULL;
	size_t code_len = 0;
	if (exec != NULL) {
		if (!json_is_object(exec)) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "The request content was malformed: 'exec' must be an object");
			goto out;
		}
		const char *kind = normal_kind(json_string_value(json_object_get(exec, "kind")));
		if (kind == NULL) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "The request content was malformed: exec.kind must be one of "
			    "python:3, python:default, nodejs:20, nodejs:default, native");
			goto out;
		}
		json_t *c = json_object_get(exec, "code");
		if (!json_is_string(c)) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "The request content was malformed: exec.code must be a string");
			goto out;
		}
		code = json_string_value(c);
		code_len = json_string_length(c);
		json_t *m = json_object_get(exec, "main");
		if (m != NULL && (!json_is_string(m) || json_string_length(m) == 0)) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "The request content was malformed: exec.main must be a name");
			goto out;
		}
		bool binary =
		    json_is_true(json_object_get(exec, "binary")) || strcmp(kind, "native") == 0;
		json_object_set_new(rec, "exec",
		                    json_pack("{s:s,s:s,s:b}", "kind", kind, "main",
		                              m ? json_string_value(m) : "main", "binary", binary));
	} else if (json_object_get(rec, "exec") == NULL) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: 'exec' is required");
		goto out;
	}

	json_t *limits = json_object_get(body, "limits");
	if (limits != NULL && !json_is_object(limits)) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: 'limits' must be an object");
		goto out;
	}
	json_t *ol = json_object_get(rec, "limits");
	long long timeout, memory, logs, conc;
	long long dt = ol ? json_integer_value(json_object_get(ol, "timeout")) : 60000;
	long long dm = ol ? json_integer_value(json_object_get(ol, "memory")) : 256;
	long long dl = ol ? json_integer_value(json_object_get(ol, "logs")) : 10;
	long long dc = ol ? json_integer_value(json_object_get(ol, "concurrency")) : 1;
	if (!check_limit(r, limits, "timeout", 100, 300000, dt ? dt : 60000, &timeout) ||
	    !check_limit(r, limits, "memory", 128, 512, dm ? dm : 256, &memory) ||
	    !check_limit(r, limits, "logs", 0, 10, dl, &logs) ||
	    !check_limit(r, limits, "concurrency", 1, 500, dc ? dc : 1, &conc))
		goto out;
	json_object_set_new(rec, "limits",
	                    json_pack("{s:I,s:I,s:I,s:I}", "timeout", (json_int_t)timeout, "memory",
	                              (json_int_t)memory, "logs", (json_int_t)logs, "concurrency",
	                              (json_int_t)conc));
	const char *lists[] = {"parameters", "annotations"};
	for (int i = 0; i < 2; i++) {
		json_t *v = json_object_get(body, lists[i]);
		if (!valid_kv_list(v)) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "The request content was malformed: '%s' must be an array of "
			    "{\"key\", \"value\"}",
			    lists[i]);
			goto out;
		}
		if (v)
			json_object_set(rec, lists[i], v);
		else if (json_object_get(rec, lists[i]) == NULL)
			json_object_set_new(rec, lists[i], json_array());
	}
	json_t *pub = json_object_get(body, "publish");
	if (pub)
		json_object_set_new(rec, "publish", json_boolean(json_is_true(pub)));
	else if (json_object_get(rec, "publish") == NULL)
		json_object_set_new(rec, "publish", json_false());

	version = bump_version(json_string_value(json_object_get(rec, "version")));
	json_object_set_new(rec, "namespace", json_string(ns));
	json_object_set_new(rec, "name", json_string(name));
	json_object_set_new(rec, "version", json_string(version));
	json_object_set_new(rec, "updated", json_integer(gust_wall_ms()));
	if (code != NULL) {
		const char *ock = json_string_value(json_object_get(rec, "code_key"));
		old_code_key = ock ? gust_xstrdup(ock) : NULL;
		cleanup_free char *ck = gust_xasprintf("/gust/code/%s/%s/%s", ns, name, version);
		if ((rv = gust_etcd_put(g->etcd, ck, code, code_len, 0, NULL, &e)) != 0) {
			gw_reply_gust_error(r, rv == GUST_EINVAL ? GUST_ETOOBIG : GUST_EUNAVAIL,
			                    gust_error_msg(e));
			goto out;
		}
		json_object_set_new(rec, "code_key", json_string(ck));
	}
	doc = json_dumps(rec, JSON_COMPACT);
	int64_t rev = 0;
	rv = gust_etcd_cas(g->etcd, rkey, old.key ? old.mod_revision : 0, doc, strlen(doc), 0, &rev,
	                   &e);
	if (rv == GUST_ECONFLICT) {
		gw_reply_error(r, 409, "ECONFLICT",
		               "Concurrent modification to resource detected; try again");
		goto out;
	} else if (rv != 0) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		goto out;
	}
	gw_cache_apply_put(g, rkey, doc, strlen(doc), rev);
	if (old_code_key &&
	    strcmp(old_code_key, json_string_value(json_object_get(rec, "code_key"))))
		gust_etcd_delete(g->etcd, old_code_key, false, NULL, NULL);

	/* Answer with the record; code included as OpenWhisk does. */
	json_object_del(rec, "code_key");
	if (code)
		json_object_set_new(json_object_get(rec, "exec"), "code",
		                    json_stringn(code, code_len));
	answer = json_dumps(rec, JSON_COMPACT);
	gw_reply_json(r, 200, answer);
out:
	gust_error_free(e);
	gust_kv_clear(&old);
	json_decref(rec);
	json_decref(body);
}

/* The record as clients see it: without our internal code_key; with the code
 * when asked for. */
static json_t *action_public(gw *g, gw_action *a, bool with_code, int *err)
{
	json_t *rec = json_loadb(a->json, strlen(a->json), 0, NULL);
	if (rec == NULL) {
		*err = GUST_EINTERNAL;
		return NULL;
	}
	json_object_del(rec, "code_key");
	json_object_del(rec, "updated");
	if (with_code) {
		gust_kv kv = {0};
		if (gust_etcd_get(g->etcd, a->code_key, &kv, NULL) == 0) {
			json_object_set_new(json_object_get(rec, "exec"), "code",
			                    json_stringn(kv.value, kv.value_len));
			gust_kv_clear(&kv);
		}
	}
	return rec;
}

static void action_get(gw_req *r, const char *ns, const char *name)
{
	gw_action *a = gw_cache_action(r->g, ns, name);
	if (a == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	const char *c = query(r, "code");
	bool with_code = !(c && strcmp(c, "false") == 0);
	int err = 0;
	json_t *rec = action_public(r->g, a, with_code, &err);
	gw_action_unref(a);
	if (rec == NULL) {
		gw_reply_gust_error(r, err, NULL);
		return;
	}
	char *s = json_dumps(rec, JSON_COMPACT);
	gw_reply_json(r, 200, s);
	free(s);
	json_decref(rec);
}

static void action_delete(gw_req *r, const char *ns, const char *name)
{
	gw *g = r->g;
	cleanup_free char *rkey = gust_xasprintf("/gust/actions/%s/%s", ns, name);
	cleanup_free char *cprefix = gust_xasprintf("/gust/code/%s/%s/", ns, name);
	gust_kv old = {0};
	gust_error *e = NULL;
	int rv = gust_etcd_get(g->etcd, rkey, &old, &e);
	if (rv == GUST_ENOENT) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		goto out;
	} else if (rv != 0) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		goto out;
	}
	rv = gust_etcd_cas_delete(g->etcd, rkey, old.mod_revision, &e);
	if (rv == GUST_ECONFLICT) {
		gw_reply_error(r, 409, "ECONFLICT",
		               "Concurrent modification to resource detected; try again");
		goto out;
	} else if (rv != 0) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		goto out;
	}
	/* The delete's revision is not returned by a txn; any revision above the
	 * put's works for ordering against the watch. */
	gw_cache_apply_delete(g, rkey, old.mod_revision + 1);
	gust_etcd_delete(g->etcd, cprefix, true, NULL, NULL);
	json_t *rec = json_loadb(old.value, old.value_len, 0, NULL);
	if (rec) {
		json_object_del(rec, "code_key");
		json_object_del(rec, "updated");
	}
	char *s = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	gw_reply_json(r, 200, s ? s : "{}");
	free(s);
	json_decref(rec);
out:
	gust_error_free(e);
	gust_kv_clear(&old);
}

typedef struct list_ctx {
	const char *prefix;
	size_t plen;
	gw_action **v;
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
	}
	gw_action *a = value;
	__atomic_fetch_add(&a->refs, 1, __ATOMIC_SEQ_CST);
	lc->v[lc->n++] = a;
	return 0;
}

static int by_name(const void *x, const void *y)
{
	return strcmp((*(gw_action *const *)x)->name, (*(gw_action *const *)y)->name);
}

static long long query_int(gw_req *r, const char *k, long long def, long long lo, long long hi,
                           bool *bad)
{
	const char *v = query(r, k);
	if (v == NULL)
		return def;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
		*bad = true;
		gw_reply_error(r, 400, "EINVAL",
		               "query parameter '%s' must be an integer in [%lld, %lld]", k, lo,
		               hi);
	}
	return n;
}

static void action_list(gw_req *r, const char *ns)
{
	gw *g = r->g;
	bool bad = false;
	long long skip = query_int(r, "skip", 0, 0, 1000000000, &bad);
	long long limit = bad ? 0 : query_int(r, "limit", 30, 0, 200, &bad);
	if (bad)
		return;
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	list_ctx lc = {.prefix = prefix, .plen = strlen(prefix)};
	pthread_rwlock_rdlock(&g->cache.lock);
	gust_map_filter(&g->cache.actions, list_collect, &lc);
	pthread_rwlock_unlock(&g->cache.lock);
	qsort(lc.v, lc.n, sizeof(*lc.v), by_name);
	if (query_true(r, "count")) {
		char buf[64];
		snprintf(buf, sizeof(buf), "{\"actions\":%zu}", lc.n);
		gw_reply_json(r, 200, buf);
	} else {
		json_t *arr = json_array();
		for (size_t i = (size_t)skip;
		     i < lc.n && (limit == 0 || i < (size_t)(skip + limit)); i++) {
			int err = 0;
			json_t *rec = action_public(g, lc.v[i], false, &err);
			if (rec)
				json_array_append_new(arr, rec);
		}
		char *s = json_dumps(arr, JSON_COMPACT);
		gw_reply_json(r, 200, s);
		free(s);
		json_decref(arr);
	}
	for (size_t i = 0; i < lc.n; i++)
		gw_action_unref(lc.v[i]);
	free(lc.v);
}

void gw_actions_route(gw_req *r, gw_key *k, const char *ns, const char *rest)
{
	const char *m = r->method;
	if (*rest == '\0') {
		if (strcmp(m, "GET") == 0)
			return action_list(r, ns);
		gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s on a collection", m);
		return;
	}
	if (!valid_name(rest)) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: '%.64s' is not a valid action "
		               "name",
		               rest);
		return;
	}
	if (strcmp(m, "PUT") == 0)
		return action_put(r, ns, rest);
	if (strcmp(m, "GET") == 0)
		return action_get(r, ns, rest);
	if (strcmp(m, "DELETE") == 0)
		return action_delete(r, ns, rest);
	if (strcmp(m, "POST") == 0) {
		gw_action *a = gw_cache_action(r->g, ns, rest);
		if (a == NULL) {
			gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
			return;
		}
		gw_invoke(r, k, a);
		gw_action_unref(a);
		return;
	}
	gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s", m);
}

void gw_namespaces_list(gw_req *r, gw_key *k)
{
	if (strcmp(r->method, "GET") != 0) {
		gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s", r->method);
		return;
	}
	gust_buf b = {0};
	gust_buf_puts(&b, "[");
	gust_buf_json_str(&b, k->ns, strlen(k->ns));
	gust_buf_puts(&b, "]");
	gw_reply_json(r, 200, b.data);
	gust_buf_free(&b);
}
