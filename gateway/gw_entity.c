/* gw_entity.c - what the entity collections (actions, packages, triggers,
 * rules) share: query parsing, name rules, parameter lists, and compare-and-
 * swap writes to etcd that show in this gateway's cache at once. */
#include <stdio.h>
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

const char *gw_query(gw_req *r, const char *k)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, k);
}

bool gw_query_true(gw_req *r, const char *k)
{
	const char *v = gw_query(r, k);
	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || *v == '\0');
}

/* OpenWhisk's entity name rule: a word character, then word characters, '@',
 * ' ', '.', '-'; at most 256; no trailing space. */
bool gw_valid_name(const char *s)
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

bool gw_route_entity(gw_req *r, const char *ns, const char *rest, const char *what,
                     void (*list)(gw_req *r, const char *ns))
{
	if (*rest == '\0') {
		if (strcmp(r->method, "GET") == 0)
			list(r, ns);
		else
			gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s on a collection",
			               r->method);
		return true;
	}
	if (!gw_valid_name(rest)) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: '%.64s' is not a valid %s name",
		               rest, what);
		return true;
	}
	return false;
}

bool gw_valid_kv_list(json_t *v)
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

static bool query_int(gw_req *r, const char *k, long long lo, long long hi, long long *out)
{
	const char *v = gw_query(r, k);
	if (v == NULL)
		return true;
	char *end;
	long long n = strtoll(v, &end, 10);
	if (*v == '\0' || *end != '\0' || n < lo || n > hi) {
		gw_reply_error(r, 400, "EINVAL",
		               "query parameter '%s' must be an integer in [%lld, %lld]", k, lo,
		               hi);
		return false;
	}
	*out = n;
	return true;
}

bool gw_query_skip_limit(gw_req *r, long long *skip, long long *limit)
{
	*skip = 0;
	*limit = 30;
	return query_int(r, "skip", 0, 1000000000, skip) && query_int(r, "limit", 0, 200, limit);
}

void gw_reply_jsonv(gw_req *r, int status, json_t *v)
{
	char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	if (s == NULL)
		gw_reply_error(r, 500, "EINTERNAL", "cannot encode the answer");
	else
		gw_reply_json(r, status, s);
	free(s);
	json_decref(v);
}

json_t *gw_body_object(gw_req *r)
{
	json_error_t je;
	json_t *body = r->body.len ? json_loadb(r->body.data, r->body.len, 0, &je) : json_object();
	if (body == NULL || !json_is_object(body)) {
		gw_reply_error(r, 400, "EINVAL", "The request content was malformed: %s",
		               body ? "the body must be a JSON object" : je.text);
		json_decref(body);
		return NULL;
	}
	return body;
}

char *gw_params_inner(json_t *list)
{
	json_t *obj = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		const char *k = json_string_value(json_object_get(p, "key"));
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

json_t *gw_kv_merge(json_t *a, json_t *b)
{
	json_t *out = json_array();
	size_t i, j;
	json_t *p, *q;
	json_array_foreach(a, i, p)
	{
		const char *k = json_string_value(json_object_get(p, "key"));
		bool over = false;
		json_array_foreach(b, j, q)
		{
			const char *kb = json_string_value(json_object_get(q, "key"));
			if (k && kb && strcmp(k, kb) == 0)
				over = true;
		}
		if (!over)
			json_array_append(out, p);
	}
	json_array_foreach(b, j, q) json_array_append(out, q);
	return out;
}

bool gw_store(gw_req *r, const char *key, int64_t expect_rev, json_t *rec)
{
	gust_error *e = NULL;
	int64_t rev = 0;
	char *doc = json_dumps(rec, JSON_COMPACT);
	if (doc == NULL) {
		gw_reply_error(r, 500, "EINTERNAL", "cannot encode the record");
		return false;
	}
	int rv = gust_etcd_cas(r->g->etcd, key, expect_rev, doc, strlen(doc), 0, &rev, &e);
	if (rv == 0)
		gw_cache_apply_put(r->g, key, doc, strlen(doc), rev);
	else if (rv == GUST_ECONFLICT)
		gw_reply_error(r, 409, "ECONFLICT",
		               "Concurrent modification to resource detected; try again");
	else
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
	free(doc);
	gust_error_free(e);
	return rv == 0;
}

bool gw_unstore(gw_req *r, const char *key, int64_t rev)
{
	gust_error *e = NULL;
	int rv = gust_etcd_cas_delete(r->g->etcd, key, rev, &e);
	if (rv == 0)
		/* A txn does not return the delete's revision; any revision above
		 * the put's orders it against the watch. */
		gw_cache_apply_delete(r->g, key, rev + 1);
	else if (rv == GUST_ECONFLICT || rv == GUST_ENOENT)
		gw_reply_error(r, 409, "ECONFLICT",
		               "Concurrent modification to resource detected; try again");
	else
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
	gust_error_free(e);
	return rv == 0;
}

bool gw_entity_merge(gw_req *r, json_t *body, json_t *rec)
{
	static const char *const lists[] = {"parameters", "annotations"};
	for (int i = 0; i < 2; i++) {
		json_t *v = json_object_get(body, lists[i]);
		if (!gw_valid_kv_list(v)) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "The request content was malformed: '%s' must be an array of "
			    "{\"key\", \"value\"}",
			    lists[i]);
			return false;
		}
		if (v)
			json_object_set(rec, lists[i], v);
	}
	json_t *pub = json_object_get(body, "publish");
	if (pub)
		json_object_set_new(rec, "publish", json_boolean(json_is_true(pub)));
	return true;
}

void gw_entity_save(gw_req *r, const char *key, int64_t old_rev, json_t **rec)
{
	unsigned x = 0, y = 0, z = 0;
	sscanf(json_string_value(json_object_get(*rec, "version")) ?: "0.0.0", "%u.%u.%u", &x, &y,
	       &z);
	json_object_set_new(*rec, "version", json_sprintf("%u.%u.%u", x, y, z + 1));
	json_object_set_new(*rec, "updated", json_integer(gust_wall_ms()));
	/* The namespace's storage quota: the key is <prefix of a kind><ns>/<name>. */
	static const int kinds[] = {GW_PACKAGES, GW_TRIGGERS, GW_RULES};
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const char *pre = gw_prefix(kinds[i]);
		size_t pl = strlen(pre);
		const char *id = key + pl, *slash = strchr(id, '/');
		if (strncmp(key, pre, pl) != 0 || slash == NULL)
			continue;
		cleanup_free char *ns = gust_xstrndup(id, (size_t)(slash - id));
		gw_doc *old = old_rev ? gw_cache_doc(r->g, kinds[i], id) : NULL;
		long long old_bytes = old ? (long long)old->len : 0;
		gw_doc_unref(old);
		if (!gw_quota_admit(r, ns, old_rev == 0, old_bytes, gw_record_bytes(*rec)))
			return;
		break;
	}
	if (gw_store(r, key, old_rev, *rec)) {
		json_object_del(*rec, "updated");
		gw_reply_jsonv(r, 200, steal_pointer(rec));
	}
}
