/* gw_activations.c - activation records from Redis: get, result, logs, list.
 * Reads use one mutex-guarded connection; they are off the invoke hot path. */
#include <jansson.h>
#include <string.h>

#include "gateway.h"
#include "gust/log.h"
#include "gust/record.h"
#include "gust/redis.h"

/* Runs one command; reconnects once on a broken connection. NULL on failure. */
static redisReply *redis_cmd(gw *g, int argc, const char **argv, const size_t *lens)
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
	redisReply *rep = redis_cmd(r->g, 2, argv, NULL);
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

static void activation_list(gw_req *r, const char *ns)
{
	const char *ls = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
	const char *ss = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "skip");
	long limit = ls ? strtol(ls, NULL, 10) : 30, skip = ss ? strtol(ss, NULL, 10) : 0;
	if (limit <= 0 || limit > 200)
		limit = limit == 0 ? 30 : 200;
	if (skip < 0)
		skip = 0;
	cleanup_free char *idx = gust_record_index_key(ns);
	char a[32], b[32];
	snprintf(a, sizeof(a), "%ld", skip);
	snprintf(b, sizeof(b), "%ld", skip + limit - 1);
	const char *argv[] = {"ZREVRANGE", idx, a, b};
	redisReply *rep = redis_cmd(r->g, 4, argv, NULL);
	if (rep == NULL || rep->type != REDIS_REPLY_ARRAY) {
		if (rep)
			freeReplyObject(rep);
		gw_reply_error(r, 503, "EUNAVAIL", "the activation store is unavailable");
		return;
	}
	json_t *arr = json_array();
	if (rep->elements > 0) {
		const char **mv = gust_xcalloc(rep->elements + 1, sizeof(char *));
		char **keys = gust_xcalloc(rep->elements, sizeof(char *));
		mv[0] = "MGET";
		for (size_t i = 0; i < rep->elements; i++)
			mv[i + 1] = keys[i] = gust_record_key(rep->element[i]->str);
		redisReply *recs = redis_cmd(r->g, (int)rep->elements + 1, mv, NULL);
		for (size_t i = 0; recs && recs->type == REDIS_REPLY_ARRAY && i < recs->elements;
		     i++) {
			redisReply *e = recs->element[i];
			if (e->type != REDIS_REPLY_STRING)
				continue; /* expired since it was indexed */
			json_t *rec = json_loadb(e->str, e->len, 0, NULL);
			if (rec) {
				json_object_del(rec, "logs");
				json_array_append_new(arr, rec);
			}
		}
		if (recs)
			freeReplyObject(recs);
		for (size_t i = 0; i < rep->elements; i++)
			free(keys[i]);
		free(keys);
		free(mv);
	}
	freeReplyObject(rep);
	char *s = json_dumps(arr, JSON_COMPACT);
	gw_reply_json(r, 200, s);
	free(s);
	json_decref(arr);
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
