/* gw_packages.c - packages: create, update, get, list, delete; bindings to
 * (shared) packages; and finding the action behind a "[pkg/]name" path with
 * the default parameters it inherits. Records live in etcd at
 * /gust/packages/<ns>/<name>. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "gateway.h"

int gw_split_fqn(const char *s, const char *caller, char *ns, size_t nslen, char *path,
                 size_t pathlen)
{
	const char *rest = s;
	const char *n = caller;
	size_t nl = strlen(caller);
	if (s[0] == '/') {
		const char *slash = strchr(s + 1, '/');
		if (slash == NULL)
			return -1;
		n = s + 1;
		nl = (size_t)(slash - n);
		rest = slash + 1;
		if (nl == 1 && n[0] == '_') {
			n = caller;
			nl = strlen(caller);
		}
	}
	if (nl == 0 || nl >= nslen || strlen(rest) >= pathlen)
		return -1;
	memcpy(ns, n, nl);
	ns[nl] = '\0';
	strcpy(path, rest);
	const char *slash = strchr(path, '/');
	if (slash == NULL)
		return gw_valid_name(path) ? 0 : -1;
	if (strchr(slash + 1, '/') != NULL)
		return -1;
	char pkg[260];
	size_t pl = (size_t)(slash - path);
	if (pl >= sizeof(pkg))
		return -1;
	memcpy(pkg, path, pl);
	pkg[pl] = '\0';
	return gw_valid_name(pkg) && gw_valid_name(slash + 1) ? 0 : -1;
}

static json_t *binding_of(json_t *pkg)
{
	json_t *b = json_object_get(pkg, "binding");
	return json_is_object(b) && json_object_size(b) > 0 ? b : NULL;
}

gw_action *gw_resolve_action(gw *g, const char *user, const char *ns, const char *path,
                             char **defaults, int *err)
{
	*defaults = NULL;
	const char *slash = strchr(path, '/');
	if (slash == NULL) {
		/* The default package is private to its namespace. */
		gw_action *a = strcmp(ns, user) == 0 ? gw_cache_action(g, ns, path) : NULL;
		if (a == NULL)
			*err = GUST_ENOENT;
		else
			*defaults = gust_xstrdup(a->params_inner);
		return a;
	}
	cleanup_free char *pid = gust_xstrndup(path, (size_t)(slash - path));
	cleanup_free char *pkey = gust_xasprintf("%s/%s", ns, pid);
	gw_doc *p = gw_cache_doc(g, GW_PACKAGES, pkey), *bound = NULL;
	gw_action *a = NULL;
	json_t *params = NULL;
	*err = GUST_ENOENT;
	if (p == NULL || (strcmp(ns, user) != 0 && !json_is_true(json_object_get(p->j, "publish"))))
		goto out;
	json_t *b = binding_of(p->j);
	if (b) {
		const char *bns = json_string_value(json_object_get(b, "namespace"));
		const char *bname = json_string_value(json_object_get(b, "name"));
		if (bns == NULL || bname == NULL)
			goto out;
		cleanup_free char *bkey = gust_xasprintf("%s/%s", bns, bname);
		bound = gw_cache_doc(g, GW_PACKAGES, bkey);
		if (bound == NULL || binding_of(bound->j) ||
		    (strcmp(bns, ns) != 0 && !json_is_true(json_object_get(bound->j, "publish"))))
			goto out;
		cleanup_free char *aid = gust_xasprintf("%s/%s", bname, slash + 1);
		a = gw_cache_action(g, bns, aid);
		if (a == NULL)
			goto out;
		json_t *m1 = gw_kv_merge(json_object_get(bound->j, "parameters"),
		                         json_object_get(p->j, "parameters"));
		json_t *act = json_loads(a->json, 0, NULL);
		params = gw_kv_merge(m1, json_object_get(act, "parameters"));
		json_decref(m1);
		json_decref(act);
	} else {
		a = gw_cache_action(g, ns, path);
		if (a == NULL)
			goto out;
		json_t *act = json_loads(a->json, 0, NULL);
		params = gw_kv_merge(json_object_get(p->j, "parameters"),
		                     json_object_get(act, "parameters"));
		json_decref(act);
	}
	*defaults = gw_params_inner(params);
	*err = 0;
out:
	json_decref(params);
	gw_doc_unref(p);
	gw_doc_unref(bound);
	return a;
}

static json_t *pkg_public(gw *g, gw_doc *d)
{
	json_t *rec = json_deep_copy(d->j);
	json_object_del(rec, "updated");
	if (json_object_get(rec, "binding") == NULL)
		json_object_set_new(rec, "binding", json_object());
	return rec;
}

/* GET: the package with its actions (of the bound package, for a binding). */
static void pkg_get(gw_req *r, const char *ns, const char *name)
{
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	gw_doc *d = gw_cache_doc(r->g, GW_PACKAGES, id);
	if (d == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	json_t *b = binding_of(d->j);
	const char *bns = json_string_value(json_object_get(b, "namespace"));
	const char *bname = json_string_value(json_object_get(b, "name"));
	if (b) {
		/* The bound package is rechecked on every read: one that was
		 * unshared (or deleted) since the binding was made shows nothing. */
		cleanup_free char *bid = gust_xasprintf("%s/%s", bns ?: "", bname ?: "");
		gw_doc *bound = bns && bname ? gw_cache_doc(r->g, GW_PACKAGES, bid) : NULL;
		bool ok =
		    bound && !binding_of(bound->j) &&
		    (strcmp(bns, ns) == 0 || json_is_true(json_object_get(bound->j, "publish")));
		gw_doc_unref(bound);
		if (!ok) {
			gw_reply_error(
			    r, 404, "ENOENT",
			    "The package bound by '%s' does not exist or is not shared with "
			    "this namespace",
			    name);
			gw_doc_unref(d);
			return;
		}
	}
	json_t *rec = pkg_public(r->g, d);
	cleanup_free char *prefix =
	    b ? gust_xasprintf("%s/%s/", bns, bname) : gust_xasprintf("%s/%s/", ns, name);
	size_t n;
	gw_action **v = (gw_action **)gw_cache_list(r->g, GW_ACTIONS, prefix, &n);
	json_t *acts = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *aj = json_loads(v[i]->json, 0, NULL);
		json_t *ann = json_deep_copy(json_object_get(aj, "annotations"));
		if (strcmp(v[i]->ns, ns) != 0)
			gw_hide_secrets(ann);
		json_array_append_new(
		    acts, json_pack("{s:O?,s:O?,s:o?}", "name", json_object_get(aj, "name"),
		                    "version", json_object_get(aj, "version"), "annotations", ann));
		json_decref(aj);
	}
	gw_cache_list_free(GW_ACTIONS, (void **)v, n);
	json_object_set_new(rec, "actions", acts);
	json_object_set_new(rec, "feeds", json_array());
	gw_doc_unref(d);
	gw_reply_jsonv(r, 200, rec);
}

static void pkg_put(gw_req *r, const char *ns, const char *name)
{
	gw *g = r->g;
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	cleanup_free char *key = gust_xasprintf("%s%s", gw_prefix(GW_PACKAGES), id);
	json_t *body = gw_body_object(r);
	if (body == NULL)
		return;
	gw_doc *old = gw_cache_doc(g, GW_PACKAGES, id);
	json_t *rec = NULL;
	if (old && !gw_query_true(r, "overwrite")) {
		gw_reply_error(r, 409, "EEXIST", "resource already exists");
		goto out;
	}
	rec = old ? json_deep_copy(old->j)
	          : json_pack("{s:s,s:s,s:s,s:b,s:[],s:[],s:{}}", "namespace", ns, "name", name,
	                      "version", "0.0.0", "publish", false, "parameters", "annotations",
	                      "binding");
	if (!gw_entity_merge(r, body, rec))
		goto out;
	json_t *b = json_object_get(body, "binding");
	if (b && !json_is_object(b)) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: 'binding' must be an object");
		goto out;
	}
	if (b && json_object_size(b) > 0) {
		const char *bns = json_string_value(json_object_get(b, "namespace"));
		const char *bname = json_string_value(json_object_get(b, "name"));
		if (bns && strcmp(bns, "_") == 0)
			bns = ns;
		if (bns == NULL || bname == NULL || !gw_valid_name(bname)) {
			gw_reply_error(r, 400, "EINVAL",
			               "The request content was malformed: 'binding' needs "
			               "'namespace' and 'name'");
			goto out;
		}
		if (old && !binding_of(old->j)) {
			gw_reply_error(r, 409, "ECONFLICT",
			               "Cannot turn the package '%s' into a binding", name);
			goto out;
		}
		cleanup_free char *bid = gust_xasprintf("%s/%s", bns, bname);
		gw_doc *target = gw_cache_doc(g, GW_PACKAGES, bid);
		bool ok =
		    target && !binding_of(target->j) &&
		    (strcmp(bns, ns) == 0 || json_is_true(json_object_get(target->j, "publish")));
		gw_doc_unref(target);
		if (!ok) {
			gw_reply_error(
			    r, 404, "ENOENT",
			    "The package to bind, /%s/%s, does not exist or is not shared", bns,
			    bname);
			goto out;
		}
		json_object_set_new(rec, "binding",
		                    json_pack("{s:s,s:s}", "namespace", bns, "name", bname));
	}
	gw_entity_save(r, key, old ? old->rev : 0, &rec);
out:
	json_decref(rec);
	json_decref(body);
	gw_doc_unref(old);
}

static void pkg_delete(gw_req *r, const char *ns, const char *name)
{
	cleanup_free char *id = gust_xasprintf("%s/%s", ns, name);
	cleanup_free char *key = gust_xasprintf("%s%s", gw_prefix(GW_PACKAGES), id);
	cleanup_free char *prefix = gust_xasprintf("%s/", id);
	gw_doc *d = gw_cache_doc(r->g, GW_PACKAGES, id);
	if (d == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	size_t n = 0;
	void **v = gw_cache_list(r->g, GW_ACTIONS, prefix, &n);
	gw_cache_list_free(GW_ACTIONS, v, n);
	if (n > 0) {
		gw_reply_error(r, 409, "ECONFLICT", "Package not empty (contains %zu entit%s)", n,
		               n == 1 ? "y" : "ies");
	} else if (gw_unstore(r, key, d->rev)) {
		gw_reply_jsonv(r, 200, pkg_public(r->g, d));
	}
	gw_doc_unref(d);
}

static void pkg_list(gw_req *r, const char *ns)
{
	long long skip, limit;
	if (!gw_query_skip_limit(r, &skip, &limit))
		return;
	cleanup_free char *prefix = gust_xasprintf("%s/", ns);
	size_t n;
	gw_doc **v = (gw_doc **)gw_cache_list(r->g, GW_PACKAGES, prefix, &n);
	if (gw_query_true(r, "count")) {
		gw_reply_jsonv(r, 200, json_pack("{s:I}", "packages", (json_int_t)n));
	} else {
		json_t *arr = json_array();
		for (size_t i = (size_t)skip; i < n && (limit == 0 || i < (size_t)(skip + limit));
		     i++)
			json_array_append_new(arr, pkg_public(r->g, v[i]));
		gw_reply_jsonv(r, 200, arr);
	}
	gw_cache_list_free(GW_PACKAGES, (void **)v, n);
}

void gw_packages_route(gw_req *r, gw_key *k, const char *ns, const char *rest)
{
	const char *m = r->method;
	if (gw_route_entity(r, ns, rest, "package", pkg_list))
		return;
	if (strcmp(m, "PUT") == 0)
		return pkg_put(r, ns, rest);
	if (strcmp(m, "GET") == 0)
		return pkg_get(r, ns, rest);
	if (strcmp(m, "DELETE") == 0)
		return pkg_delete(r, ns, rest);
	gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s", m);
}
