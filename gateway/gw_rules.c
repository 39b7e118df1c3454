/* gw_rules.c - rules: create, update, get, list, delete, and enable/disable
 * with POST {"status": "active"|"inactive"}. A rule ties a trigger to an
 * action; both are stored by path ({"name", "path"}, as OpenWhisk shows them).
 * Records live in etcd at /gust/rules/<ns>/<name>. */
#include <jansson.h>
#include <string.h>

#include "gateway.h"

static json_t *rule_public(gw_doc *d)
{
	json_t *rec = json_deep_copy(d->j);
	json_object_del(rec, "updated");
	return rec;
}

/* {"name", "path"} for an entity named s (relative to ns), or NULL. */
static json_t *entity_ref(const char *s, const char *ns, char *rns, char *path)
{
	if (s == NULL || gw_split_fqn(s, ns, rns, 260, path, 600) != 0)
		return NULL;
	const char *slash = strrchr(path, '/');
	return json_pack("{s:s,s:s}", "name", slash ? slash + 1 : path, "path", rns);
}

static void rule_put(gw_req *r, const char *ns, const char *name)
{
	gw *g = r->g;
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	cleanup_free char *key = gust_xasprintf("%s%s", gw_prefix(GW_RULES), id);
	json_t *body = gw_body_object(r);
	if (body == NULL)
		return;
	gw_doc *old = gw_cache_doc(g, GW_RULES, id);
	json_t *rec = NULL;
	if (old && !gw_query_true(r, "overwrite")) {
		gw_reply_error(r, 409, "EEXIST", "resource already exists");
		goto out;
	}
	rec =
	    old ? json_deep_copy(old->j)
	        : json_pack("{s:s,s:s,s:s,s:b,s:[],s:s}", "namespace", ns, "name", name, "version",
	                    "0.0.0", "publish", false, "annotations", "status", "active");
	json_t *t = json_object_get(body, "trigger"), *a = json_object_get(body, "action");
	if ((old == NULL && (t == NULL || a == NULL)) || (t && !json_is_string(t)) ||
	    (a && !json_is_string(a))) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: a rule needs 'trigger' and "
		               "'action' names");
		goto out;
	}
	char tns[260], tpath[600], ans[260], apath[600];
	if (t) {
		json_t *ref = entity_ref(json_string_value(t), ns, tns, tpath);
		cleanup_free char *tid = gust_xasprintf("%s/%s", tns, tpath);
		gw_doc *td = ref && strcmp(tns, ns) == 0 && strchr(tpath, '/') == NULL
		                 ? gw_cache_doc(g, GW_TRIGGERS, tid)
		                 : NULL;
		gw_doc_unref(td);
		if (td == NULL) {
			json_decref(ref);
			gw_reply_error(r, 404, "ENOENT", "The trigger '%s' does not exist.",
			               json_string_value(t));
			goto out;
		}
		json_object_set_new(rec, "trigger", ref);
	}
	if (a) {
		json_t *ref = entity_ref(json_string_value(a), ns, ans, apath);
		char *defaults = NULL;
		int err = 0;
		gw_action *act = ref ? gw_resolve_action(g, ns, ans, apath, &defaults, &err) : NULL;
		free(defaults);
		gw_action_unref(act);
		if (act == NULL) {
			json_decref(ref);
			gw_reply_error(r, 404, "ENOENT", "The action '%s' does not exist.",
			               json_string_value(a));
			goto out;
		}
		if (strchr(apath, '/')) {
			/* path "ns/pkg" as OpenWhisk writes it */
			char *slash = strchr(apath, '/');
			*slash = '\0';
			json_object_set_new(ref, "path", json_sprintf("%s/%s", ans, apath));
		}
		json_object_set_new(rec, "action", ref);
	}
	json_t *st = json_object_get(body, "status");
	if (st && (!json_is_string(st) || (strcmp(json_string_value(st), "active") != 0 &&
	                                   strcmp(json_string_value(st), "inactive") != 0))) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: 'status' must be 'active' or "
		               "'inactive'");
		goto out;
	}
	if (st)
		json_object_set(rec, "status", st);
	json_t *ann = json_object_get(body, "annotations");
	if (!gw_valid_kv_list(ann)) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: 'annotations' must be an array "
		               "of {\"key\", \"value\"}");
		goto out;
	}
	if (ann)
		json_object_set(rec, "annotations", ann);
	gw_entity_save(r, key, old ? old->rev : 0, &rec);
out:
	json_decref(rec);
	json_decref(body);
	gw_doc_unref(old);
}

/* POST {"status": "active"|"inactive"}. */
static void rule_status(gw_req *r, const char *ns, const char *name)
{
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	cleanup_free char *key = gust_xasprintf("%s%s", gw_prefix(GW_RULES), id);
	json_t *body = gw_body_object(r);
	if (body == NULL)
		return;
	const char *st = json_string_value(json_object_get(body, "status"));
	gw_doc *d = NULL;
	if (st == NULL || (strcmp(st, "active") != 0 && strcmp(st, "inactive") != 0)) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: 'status' must be 'active' or "
		               "'inactive'");
	} else if ((d = gw_cache_doc(r->g, GW_RULES, id)) == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
	} else {
		json_t *rec = json_deep_copy(d->j);
		json_object_set_new(rec, "status", json_string(st));
		if (gw_store(r, key, d->rev, rec))
			gw_reply_json(r, 200, "{}");
		json_decref(rec);
	}
	gw_doc_unref(d);
	json_decref(body);
}

static void rule_get_delete(gw_req *r, const char *ns, const char *name, bool del)
{
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	cleanup_free char *key = gust_xasprintf("%s%s", gw_prefix(GW_RULES), id);
	gw_doc *d = gw_cache_doc(r->g, GW_RULES, id);
	if (d == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	if (!del || gw_unstore(r, key, d->rev))
		gw_reply_jsonv(r, 200, rule_public(d));
	gw_doc_unref(d);
}

static void rule_list(gw_req *r, const char *ns)
{
	long long skip, limit;
	if (!gw_query_skip_limit(r, &skip, &limit))
		return;
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	size_t n;
	gw_doc **v = (gw_doc **)gw_cache_list(r->g, GW_RULES, prefix, &n);
	if (gw_query_true(r, "count")) {
		gw_reply_jsonv(r, 200, json_pack("{s:I}", "rules", (json_int_t)n));
	} else {
		json_t *arr = json_array();
		for (size_t i = (size_t)skip; i < n && (limit == 0 || i < (size_t)(skip + limit));
		     i++)
			json_array_append_new(arr, rule_public(v[i]));
		gw_reply_jsonv(r, 200, arr);
	}
	gw_cache_list_free(GW_RULES, (void **)v, n);
}

void gw_rules_route(gw_req *r, gw_key *k, const char *ns, const char *rest)
{
	const char *m = r->method;
	if (gw_route_entity(r, ns, rest, "rule", rule_list))
		return;
	if (strcmp(m, "PUT") == 0)
		return rule_put(r, ns, rest);
	if (strcmp(m, "GET") == 0)
		return rule_get_delete(r, ns, rest, false);
	if (strcmp(m, "DELETE") == 0)
		return rule_get_delete(r, ns, rest, true);
	if (strcmp(m, "POST") == 0)
		return rule_status(r, ns, rest);
	gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s", m);
}
