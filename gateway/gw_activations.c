/* gw_activations.c - activation records from Redis: get, result, logs, list.
 * Reads use one mutex-guarded connection; they are off the invoke hot path. */
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"
#include "gust/log.h"
#include "gust/record.h"
#include "gust/redis.h"

/* Runs one command; reconnects once on a broken connection. NULL on failure. */
redisReply *gw_redis_cmd(gw *g, int argc, const char **argv, const size_t *lens)
{
	redisReply *rep = NULL;
	pthread_mutex_lock(&g->redis_lock);
	for (int attempt = 0; attempt < 2 && rep == NULL; attempt++) {
		if (g->redis == NULL) {
			gust_error *e = NULL;
			redisContext *c;
			if (gust_redis_connect(g->cfg.redis, 2000, &c, &e) != 0) {
				gust_log_warn("GW-REDIS", "%s", gust_error_msg(e));
				gust_error_free(e);
				break;
			}
			g->redis = c;
		}
		rep = redisCommandArgv(g->redis, argc, argv, lens);
		if (rep == NULL) {
			redisFree(g->redis);
			g->redis = NULL;
		}
	}
	pthread_mutex_unlock(&g->redis_lock);
	return rep;
}

static bool valid_id(const char *id)
{
	size_t n = strlen(id);
	if (n == 0 || n > 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
			return false;
	return true;
}

static void activation_get(gw_req *r, const char *ns, const char *id, const char *part)
{
	if (!valid_id(id)) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	cleanup_free char *key = gust_record_key(id);
	const char *argv[] = {"GET", key};
	redisReply *rep = gw_redis_cmd(r->g, 2, argv, NULL);
	if (rep == NULL || rep->type == REDIS_REPLY_ERROR) {
		gw_reply_error(r, 503, "EUNAVAIL", "the activation store is unavailable");
		if (rep)
			freeReplyObject(rep);
		return;
	}
	if (rep->type != REDIS_REPLY_STRING) {
		freeReplyObject(rep);
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	json_t *rec = json_loadb(rep->str, rep->len, 0, NULL);
	freeReplyObject(rep);
	if (rec == NULL || strcmp(json_string_value(json_object_get(rec, "namespace")) ?: "", ns)) {
		json_decref(rec);
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	json_t *out = rec;
	if (part && strcmp(part, "result") == 0)
		out = json_object_get(rec, "response");
	else if (part && strcmp(part, "logs") == 0 && json_object_get(rec, "logs") == NULL)
		out = json_pack("{s:[]}", "logs");
	else if (part && strcmp(part, "logs") == 0)
		out = json_pack("{s:O}", "logs", json_object_get(rec, "logs"));
	else if (part) {
		json_decref(rec);
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	char *s = json_dumps(out, JSON_COMPACT);
	gw_reply_json(r, 200, s ? s : "{}");
	free(s);
	if (out != rec && part && strcmp(part, "logs") == 0)
		json_decref(out);
	json_decref(rec);
}

/* The summary OpenWhisk lists without docs=true. */
static json_t *summary(json_t *rec)
{
	json_t *resp = json_object_get(rec, "response");
	json_t *o = json_pack(
	    "{s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?,s:O?}", "activationId",
	    json_object_get(rec, "activationId"), "namespace", json_object_get(rec, "namespace"),
	    "name", json_object_get(rec, "name"), "version", json_object_get(rec, "version"),
	    "start", json_object_get(rec, "start"), "end", json_object_get(rec, "end"), "duration",
	    json_object_get(rec, "duration"), "annotations", json_object_get(rec, "annotations"),
	    "publish", json_object_get(rec, "publish"), "cause", json_object_get(rec, "cause"));
	if (o && json_object_get(o, "cause") == NULL)
		json_object_del(o, "cause");
	json_object_set(o, "statusCode", json_object_get(resp, "statusCode"));
	return o;
}

/* Does the record's name match the filter: "name" or "pkg/name"? */
static bool name_matches(json_t *rec, const char *want)
{
	const char *n = json_string_value(json_object_get(rec, "name"));
	if (n == NULL)
		return false;
	if (strcmp(n, want) == 0)
		return true;
	const char *slash = strrchr(want, '/');
	if (slash == NULL)
		return false;
	/* "pkg/name": the path annotation says which package */
	size_t i;
	json_t *an;
	json_array_foreach(json_object_get(rec, "annotations"), i, an)
	{
		const char *k = json_string_value(json_object_get(an, "key"));
		const char *v = json_string_value(json_object_get(an, "value"));
		if (k && v && strcmp(k, "path") == 0) {
			size_t vl = strlen(v), wl = strlen(want);
			return vl > wl && v[vl - wl - 1] == '/' && strcmp(v + vl - wl, want) == 0;
		}
	}
	return false;
}

static bool query_ll(gw_req *r, const char *k, long long lo, long long hi, long long *out)
{
	const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, k);
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

#define LIST_SCAN_MAX 5000
/* The deepest page a list may ask for: Redis walks the index to the offset,
 * so an unbounded skip would be an unbounded walk per request. */
#define LIST_SKIP_MAX 100000

static void activation_list(gw_req *r, const char *ns)
{
	long long skip = 0, limit = 30, since = 0, upto = 0;
	if (!query_ll(r, "skip", 0, LIST_SKIP_MAX, &skip) ||
	    !query_ll(r, "limit", 0, 200, &limit) ||
	    !query_ll(r, "since", 0, INT64_MAX / 2, &since) ||
	    !query_ll(r, "upto", 0, INT64_MAX / 2, &upto))
		return;
	if (limit == 0)
		limit = 30;
	const char *name = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "name");
	bool docs = gw_query_true(r, "docs"), count = gw_query_true(r, "count");
	cleanup_free char *idx = gust_record_index_key(ns);
	char lo[32], hi[32], n[32];
	snprintf(lo, sizeof(lo), "%lld", since);
	if (upto > 0)
		snprintf(hi, sizeof(hi), "%lld", upto);
	else
		snprintf(hi, sizeof(hi), "+inf");
	/* Without a name filter only the page itself is read (Redis skips to its
	 * offset); with one, or for a count, up to LIST_SCAN_MAX of the newest. */
	bool page = !(name || count);
	long long want = page ? limit : LIST_SCAN_MAX;
	char off[32];
	snprintf(n, sizeof(n), "%lld", want);
	snprintf(off, sizeof(off), "%lld", page ? skip : 0);
	if (page)
		skip = 0; /* done by Redis */
	const char *argv[] = {"ZREVRANGEBYSCORE", idx, hi, lo, "LIMIT", off, n};
	redisReply *rep = gw_redis_cmd(r->g, 7, argv, NULL);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		if (rep)
			freeReplyObject(rep);
		gw_reply_error(r, 503, "EUNAVAIL", "the activation store is unavailable");
		return;
	}
	if (count && name == NULL) {
		gw_reply_jsonv(r, 200,
		               json_pack("{s:I}", "activations", (json_int_t)rep->elements));
		freeReplyObject(rep);
		return;
	}
	json_t *arr = json_array();
	long long matched = 0;
	if (rep->elements > 0) {
		const char **mv = gust_xcalloc(rep->elements + 1, sizeof(char *));
		char **keys = gust_xcalloc(rep->elements, sizeof(char *));
		mv[0] = "MGET";
		for (size_t i = 0; i < rep->elements; i++)
			mv[i + 1] = keys[i] = gust_record_key(rep->element[i]->str);
		redisReply *recs = gw_redis_cmd(r->g, (int)rep->elements + 1, mv, NULL);
		for (size_t i = 0; recs && recs->type == REDIS_REPLY_ARRAY && i < recs->elements;
		     i++) {
			redisReply *e = recs->element[i];
			if (e->type != REDIS_REPLY_STRING)
				continue; /* expired since it was indexed */
			json_t *rec = json_loadb(e->str, e->len, 0, NULL);
			if (rec == NULL || (name && !name_matches(rec, name))) {
				json_decref(rec);
				continue;
			}
			if (count || matched++ < skip || (long long)json_array_size(arr) >= limit) {
				if (count)
					matched++;
				json_decref(rec);
				continue;
			}
			json_array_append_new(arr, docs ? json_incref(rec) : summary(rec));
			json_decref(rec);
		}
		if (recs)
			freeReplyObject(recs);
		for (size_t i = 0; i < rep->elements; i++)
			free(keys[i]);
		free(keys);
		free(mv);
	}
	freeReplyObject(rep);
	if (count) {
		json_decref(arr);
		gw_reply_jsonv(r, 200, json_pack("{s:I}", "activations", (json_int_t)matched));
		return;
	}
	gw_reply_jsonv(r, 200, arr);
}

void gw_record_store(gw *g, const char *ns, const char *id, int64_t start, const char *json,
                     size_t len)
{
	if (g->records == NULL)
		return;
	cleanup_free char *key = gust_record_key(id);
	cleanup_free char *idx = gust_record_index_key(ns);
	char ttl[32], score[32], cutoff[32];
	snprintf(ttl, sizeof(ttl), "%lld", g->cfg.record_ttl_s);
	snprintf(score, sizeof(score), "%lld", (long long)start);
	snprintf(cutoff, sizeof(cutoff), "%lld",
	         (long long)(gust_wall_ms() - g->cfg.record_ttl_s * 1000));
	const char *set[] = {"SET", key, json, "EX", ttl};
	size_t setl[] = {3, strlen(key), len, 2, strlen(ttl)};
	gust_redis_writer_cmd(g->records, 5, set, setl);
	const char *zadd[] = {"ZADD", idx, score, id};
	gust_redis_writer_cmd(g->records, 4, zadd, NULL);
	const char *trim[] = {"ZREMRANGEBYSCORE", idx, "-inf", cutoff};
	gust_redis_writer_cmd(g->records, 4, trim, NULL);
	const char *exp[] = {"EXPIRE", idx, ttl};
	gust_redis_writer_cmd(g->records, 3, exp, NULL);
}

void gw_activations_route(gw_req *r, gw_key *k, const char *ns, const char *rest)
{
	if (strcmp(r->method, "GET") != 0) {
		gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s", r->method);
		return;
	}
	if (*rest == '\0')
		return activation_list(r, ns);
	char id[80];
	const char *slash = strchr(rest, '/');
	size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
	if (n >= sizeof(id)) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	memcpy(id, rest, n);
	id[n] = '\0';
	activation_get(r, ns, id, slash ? slash + 1 : NULL);
}
