/* gw_triggers.c - triggers: create, update, get, list, delete, and fire.
 *
 * A fire checks the namespace's fires-per-minute limit (a Redis counter per
 * namespace and minute), finds the trigger's active rules, answers 202 with
 * the trigger's activation id (204 when no rule is active), and hands the
 * rest to a detached thread: one non-blocking activation per rule (trigger
 * parameters, then the fire's, over the action's defaults; cause = the
 * trigger's activation), then the trigger's own activation record, whose logs
 * list what each rule caused. Records live in etcd at /gust/triggers/<ns>/<name>.
 *
 * A trigger stored with a "feed" annotation (kafka, redis-stream,
 * redis-pubsub, schedule) is a feed: its parameters are checked here with the
 * same parser gust-trigger uses (gust/fire.h) and refused with 400 when bad;
 * gust-trigger picks the record up from etcd and runs the feed until the
 * trigger is deleted. The request building, rule matching and trigger record
 * are shared with gust-trigger through libgust (common/trigger_fire.c). */
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "gateway.h"
#include "gust/fire.h"
#include "gust/log.h"
#include "gust/scope.h"

#define FIRES_PER_MINUTE_DEFAULT 60

static json_t *trigger_public(gw *g, gw_doc *d, const char *ns, const char *name)
{
	json_t *rec = json_deep_copy(d->j);
	json_object_del(rec, "updated");
	/* The rules that name it, as OpenWhisk lists them. */
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	size_t n;
	gw_doc **v = (gw_doc **)gw_cache_list(g, GW_RULES, prefix, &n);
	json_t *rules = json_object();
	for (size_t i = 0; i < n; i++) {
		json_t *t = json_object_get(v[i]->j, "trigger");
		if (strcmp(json_string_value(json_object_get(t, "name")) ?: "", name) != 0)
			continue;
		json_t *rn = json_sprintf(
		    "%s/%s", ns, json_string_value(json_object_get(v[i]->j, "name")) ?: "");
		json_object_set_new(rules, json_string_value(rn),
		                    json_pack("{s:O?,s:O?}", "action",
		                              json_object_get(v[i]->j, "action"), "status",
		                              json_object_get(v[i]->j, "status")));
		json_decref(rn);
	}
	gw_cache_list_free(GW_RULES, (void **)v, n);
	json_object_set_new(rec, "rules", rules);
	return rec;
}

static void trigger_put(gw_req *r, const char *ns, const char *name)
{
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	cleanup_free char *key = gust_xasprintf("%s%s", gw_prefix(GW_TRIGGERS), id);
	json_t *body = gw_body_object(r);
	if (body == NULL)
		return;
	gw_doc *old = gw_cache_doc(r->g, GW_TRIGGERS, id);
	json_t *rec = NULL;
	if (old && !gw_query_true(r, "overwrite")) {
		gw_reply_error(r, 409, "EEXIST", "resource already exists");
		goto out;
	}
	rec = old ? json_deep_copy(old->j)
	          : json_pack("{s:s,s:s,s:s,s:b,s:[],s:[],s:{}}", "namespace", ns, "name", name,
	                      "version", "0.0.0", "publish", false, "parameters", "annotations",
	                      "limits");
	if (!gw_entity_merge(r, body, rec))
		goto out;
	gust_feed feed;
	gust_error *ferr = NULL;
	int frv = gust_feed_parse(rec, &feed, &ferr);
	if (frv == 0 && gust_feed_external(&feed)) {
		/* A target outside the cluster: the operator's policy decides. */
		gust_policy *pol = NULL;
		frv = gust_policy_load(r->g->etcd, ns, &pol, &ferr);
		if (frv != 0) {
			gust_feed_clear(&feed);
			gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(ferr));
			gust_error_free(ferr);
			goto out;
		}
		frv = gust_feed_check_policy(&feed, pol, &ferr);
		gust_policy_free(pol);
	}
	if (frv == 0) {
		gust_feed_clear(&feed);
	} else if (frv != GUST_ENOENT) {
		gust_feed_clear(&feed);
		gw_reply_error(r, 400, "EINVAL", "The request content was malformed: %s",
		               gust_error_msg(ferr));
		gust_error_free(ferr);
		goto out;
	}
	gw_entity_save(r, key, old ? old->rev : 0, &rec);
out:
	json_decref(rec);
	json_decref(body);
	gw_doc_unref(old);
}

static void trigger_get_delete(gw_req *r, const char *ns, const char *name, bool del)
{
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	cleanup_free char *key = gust_xasprintf("%s%s", gw_prefix(GW_TRIGGERS), id);
	gw_doc *d = gw_cache_doc(r->g, GW_TRIGGERS, id);
	if (d == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	if (!del || gw_unstore(r, key, d->rev))
		gw_reply_jsonv(r, 200, trigger_public(r->g, d, ns, name));
	gw_doc_unref(d);
}

static void trigger_list(gw_req *r, const char *ns)
{
	long long skip, limit;
	if (!gw_query_skip_limit(r, &skip, &limit))
		return;
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	size_t n;
	gw_doc **v = (gw_doc **)gw_cache_list(r->g, GW_TRIGGERS, prefix, &n);
	if (gw_query_true(r, "count")) {
		gw_reply_jsonv(r, 200, json_pack("{s:I}", "triggers", (json_int_t)n));
	} else {
		json_t *arr = json_array();
		for (size_t i = (size_t)skip; i < n && (limit == 0 || i < (size_t)(skip + limit));
		     i++) {
			json_t *rec = json_deep_copy(v[i]->j);
			json_object_del(rec, "updated");
			json_array_append_new(arr, rec);
		}
		gw_reply_jsonv(r, 200, arr);
	}
	gw_cache_list_free(GW_TRIGGERS, (void **)v, n);
}

/* The namespace's limit named k (its record's "limits"), or def. */
long long gw_ns_limit(gw *g, const char *ns, const char *k, long long def)
{
	gw_doc *d = gw_cache_doc(g, GW_NAMESPACES, ns);
	json_t *v = d ? json_object_get(json_object_get(d->j, "limits"), k) : NULL;
	long long n = json_is_integer(v) ? json_integer_value(v) : def;
	gw_doc_unref(d);
	return n;
}

/* Counts one fire against the namespace's per-minute limit: false when over
 * it. Redis being down does not stop fires (the scheduler still admits). */
static bool fire_admit(gw *g, const char *ns, long long *limit)
{
	*limit = gw_ns_limit(g, ns, "firesPerMinute", FIRES_PER_MINUTE_DEFAULT);
	cleanup_free char *key =
	    gust_xasprintf("gust:fires:%s:%lld", ns, (long long)(gust_wall_ms() / 60000));
	const char *incr[] = {"INCR", key};
	redisReply *rep = gw_redis_cmd(g, 2, incr, NULL);
	long long n = rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : 0;
	if (rep)
		freeReplyObject(rep);
	if (n == 1) {
		const char *exp[] = {"EXPIRE", key, "120"};
		rep = gw_redis_cmd(g, 3, exp, NULL);
		if (rep)
			freeReplyObject(rep);
	}
	return n <= *limit;
}

typedef struct fire_job {
	gw *g;
	char *ns, *name, *user;
	char id[33];
	char *params;  /* trigger parameters, then the fire's: a JSON object */
	json_t *rules; /* [{"rule": "ns/name", "ns": ..., "path": ...}] */
	int64_t start;
} fire_job;

static void *fire_thread(void *arg)
{
	fire_job *f = arg;
	gw *g = f->g;
	json_t *logs = json_array();
	size_t i;
	json_t *ru;
	json_array_foreach(f->rules, i, ru)
	{
		const char *ans = json_string_value(json_object_get(ru, "ns"));
		const char *apath = json_string_value(json_object_get(ru, "path"));
		char *defaults = NULL;
		int err = 0;
		gw_action *a = gw_resolve_action(g, f->user, ans, apath, &defaults, &err);
		json_t *entry = json_pack("{s:O,s:s++}", "rule", json_object_get(ru, "rule"),
		                          "action", ans, "/", apath);
		if (a == NULL) {
			json_object_set_new(entry, "statusCode", json_integer(1));
			json_object_set_new(entry, "success", json_false());
			json_object_set_new(entry, "error",
			                    json_string("The action of the rule does not exist."));
		} else if (a->components) {
			/* A sequence runs in the gateway: started detached, as a
			 * non-blocking invoke of it would be. */
			char sid[33];
			int rv = gw_sequence_start(g, f->user, a, defaults, f->params,
			                           strlen(f->params), f->id, sid);
			if (rv == 0)
				json_object_set_new(entry, "activationId", json_string(sid));
			json_object_set_new(entry, "statusCode", json_integer(rv == 0 ? 0 : 1));
			json_object_set_new(entry, "success", json_boolean(rv == 0));
			if (rv != 0)
				json_object_set_new(entry, "error", json_string(gust_strerror(rv)));
		} else {
			Gust__ActivationRequest *q = gw_areq_new(g, f->user, a, defaults, f->params,
			                                         strlen(f->params), f->id);
			q->blocking = false;
			Gust__ActivationResult *res = NULL;
			int rv = gw_call(g, q, 10000, &res);
			bool ok = rv == 0 && res && (res->accepted || res->error == 0);
			json_object_set_new(entry, "activationId", json_string(q->activation_id));
			json_object_set_new(entry, "statusCode", json_integer(ok ? 0 : 1));
			json_object_set_new(entry, "success", json_boolean(ok));
			if (!ok)
				json_object_set_new(
				    entry, "error",
				    json_string(res && res->error_msg && res->error_msg[0]
				                    ? res->error_msg
				                    : gust_strerror(rv    ? rv
				                                    : res ? res->error
				                                          : 0)));
			if (res)
				gust__activation_result__free_unpacked(res, NULL);
			gw_areq_free(q);
		}
		char *line = json_dumps(entry, JSON_COMPACT);
		json_array_append_new(logs, json_string(line ? line : "{}"));
		free(line);
		json_decref(entry);
		gw_action_unref(a);
		free(defaults);
	}
	char *s =
	    gust_fire_trigger_record(f->id, f->ns, f->name, f->user, f->start, f->params, logs);
	json_decref(logs);
	if (s)
		gw_record_store(g, f->ns, f->id, f->start, s, strlen(s));
	free(s);
	json_decref(f->rules);
	free(f->ns);
	free(f->name);
	free(f->user);
	free(f->params);
	free(f);
	return NULL;
}

static void trigger_fire(gw_req *r, gw_key *k, const char *ns, const char *name)
{
	gw *g = r->g;
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	if (!gw_params_check(r, r->body.data, r->body.len))
		return;
	gw_doc *d = gw_cache_doc(g, GW_TRIGGERS, id);
	if (d == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	long long limit;
	if (!fire_admit(g, ns, &limit)) {
		gw_doc_unref(d);
		gw_reply_error(r, 429, "EBUSY",
		               "Too many requests in the last minute (count: %lld, allowed: %lld): "
		               "the namespace '%s' is over its trigger fires per minute",
		               limit + 1, limit, ns);
		return;
	}
	/* The active rules of this trigger. */
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	size_t n;
	gw_doc **v = (gw_doc **)gw_cache_list(g, GW_RULES, prefix, &n);
	json_t **rj = gust_xcalloc(n ? n : 1, sizeof(json_t *));
	for (size_t i = 0; i < n; i++)
		rj[i] = v[i]->j;
	json_t *rules = gust_fire_rule_targets(rj, n, ns, name);
	free(rj);
	gw_cache_list_free(GW_RULES, (void **)v, n);
	if (json_array_size(rules) == 0) {
		json_decref(rules);
		gw_doc_unref(d);
		r->status = 204;
		gust_buf_reset(&r->resp);
		return;
	}
	fire_job *f = gust_xcalloc(1, sizeof(*f));
	f->g = g;
	f->ns = gust_xstrdup(ns);
	f->name = gust_xstrdup(name);
	f->user = gust_xstrdup(k->ns);
	f->rules = rules;
	f->start = gust_wall_ms();
	gust_random_hex(f->id, 16);
	/* trigger parameters, then the fire's (the later key wins) */
	cleanup_free char *tinner = gw_params_inner(json_object_get(d->j, "parameters"));
	gw_doc_unref(d);
	cleanup_free char *tobj = gust_xasprintf("{%s}", tinner);
	json_t *merged = json_loads(tobj, 0, NULL);
	json_t *body = r->body.len ? json_loadb(r->body.data, r->body.len, 0, NULL) : NULL;
	if (json_is_object(body))
		json_object_update(merged, body);
	json_decref(body);
	f->params = json_dumps(merged ? merged : json_object(), JSON_COMPACT);
	json_decref(merged);
	r->activation_id = gust_xstrdup(f->id);
	char buf[96];
	snprintf(buf, sizeof(buf), "{\"activationId\":\"%s\"}", f->id);
	if (gw_job_start(g, fire_thread, f) != 0) {
		gw_reply_error(r, 429, "EBUSY",
		               "Too many trigger fires and sequences in flight at this gateway; "
		               "try again");
		json_decref(f->rules);
		free(f->ns);
		free(f->name);
		free(f->user);
		free(f->params);
		free(f);
	} else {
		gw_reply_json(r, 202, buf);
	}
}

void gw_triggers_route(gw_req *r, gw_key *k, const char *ns, const char *rest)
{
	const char *m = r->method;
	if (gw_route_entity(r, ns, rest, "trigger", trigger_list))
		return;
	if (strcmp(m, "PUT") == 0)
		return trigger_put(r, ns, rest);
	if (strcmp(m, "GET") == 0)
		return trigger_get_delete(r, ns, rest, false);
	if (strcmp(m, "DELETE") == 0)
		return trigger_get_delete(r, ns, rest, true);
	if (strcmp(m, "POST") == 0)
		return trigger_fire(r, k, ns, rest);
	gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s", m);
}
