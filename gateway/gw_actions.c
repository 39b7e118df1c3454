/* gw_actions.c - actions: create, update (merge), get, list, delete; invoke is
 * handed to gw_invoke.c. Records live in etcd at /gust/actions/<ns>/<name>
 * (metadata) and /gust/code/<ns>/<name>:<version>-<id> (the code; <id> is
 * random, new for every write of code). A deleted action leaves its last
 * version at /gust/versions/<ns>/<name>, so that one created again under the
 * name goes on counting: no version, and no code key, ever names two codes,
 * and invokers (whose code cache and warm sandboxes are keyed by them) never
 * run an older action's code for a newer one. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"
#include "gust/binding.h"
#include "gust/egress.h"
#include "gust/log.h"
#include "gust/scope.h"
#include <stdio.h>

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
	if (strcmp(k, "sequence") == 0)
		return "sequence";
	return NULL;
}

static char *bump_version(const char *v)
{
	unsigned a = 0, b = 0, c = 0;
	if (v == NULL || sscanf(v, "%u.%u.%u", &a, &b, &c) != 3)
		return gust_xstrdup("0.0.1");
	return gust_xasprintf("%u.%u.%u", a, b, c + 1);
}

/* Orders versions "a.b.c" numerically; one that does not parse is lowest. */
static int version_cmp(const char *x, const char *y)
{
	unsigned v[2][3] = {{0}};
	const char *s[2] = {x, y};
	for (int i = 0; i < 2; i++)
		if (s[i] == NULL || sscanf(s[i], "%u.%u.%u", &v[i][0], &v[i][1], &v[i][2]) != 3)
			v[i][0] = v[i][1] = v[i][2] = 0;
	for (int k = 0; k < 3; k++)
		if (v[0][k] != v[1][k])
			return v[0][k] < v[1][k] ? -1 : 1;
	return 0;
}

static char *version_key(const char *ns, const char *name)
{
	return gust_xasprintf("/gust/versions/%s/%s", ns, name);
}

/* The last version an earlier action of this name had (heap, *out NULL when
 * there was none). */
static int version_last(gw *g, const char *ns, const char *name, char **out, gust_error **e)
{
	cleanup_free char *key = version_key(ns, name);
	gust_kv kv = {0};
	*out = NULL;
	int rv = gust_etcd_get(g->etcd, key, &kv, e);
	if (rv == GUST_ENOENT)
		return 0;
	if (rv == 0)
		*out = gust_xstrndup(kv.value, kv.value_len);
	gust_kv_clear(&kv);
	return rv;
}

/* Remembers version as the name's last unless a higher one is remembered:
 * written before the record's delete, so a create that sees the record gone
 * sees its version too. A compare-and-swap, so that a delete that loses a
 * race to a later update and delete never lowers the mark. */
static int version_remember(gw *g, const char *ns, const char *name, const char *version,
                            gust_error **e)
{
	cleanup_free char *key = version_key(ns, name);
	for (int attempt = 0; attempt < 5; attempt++) {
		gust_kv kv = {0};
		int rv = gust_etcd_get(g->etcd, key, &kv, e);
		if (rv != 0 && rv != GUST_ENOENT)
			return rv;
		gust_error_free(*e);
		*e = NULL;
		bool higher = rv == 0 && version_cmp(kv.value, version) >= 0;
		int64_t rev = rv == 0 ? kv.mod_revision : 0;
		gust_kv_clear(&kv);
		if (higher)
			return 0;
		rv = gust_etcd_cas(g->etcd, key, rev, version, strlen(version), 0, NULL, e);
		if (rv != GUST_ECONFLICT)
			return rv;
		gust_error_free(*e);
		*e = NULL;
	}
	return gust_error_set(e, GUST_ECONFLICT, "the version mark of %s/%s keeps changing", ns,
	                      name);
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

/* A zip archive sent as base64 text, with or without "binary": true (the
 * openwhisk client and wsk send zips as plain base64 strings). */
static bool looks_like_zip(const char *code, size_t len)
{
	if (len < 8 || strncmp(code, "UEsDB", 5) != 0)
		return false;
	size_t n = 0;
	unsigned char *d = gust_b64_decode(code, 8, &n);
	bool zip = d != NULL && n >= 4 && memcmp(d, "PK\x03\x04", 4) == 0;
	free(d);
	return zip;
}

/* Checks and normalises a sequence's components to "/ns/[pkg/]name"; each must
 * name an action the caller can see. NULL after answering 400. */
static json_t *sequence_components(gw_req *r, const char *ns, json_t *comps)
{
	if (!json_is_array(comps) || json_array_size(comps) == 0) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: a sequence needs 'components', "
		               "a non-empty array of action names");
		return NULL;
	}
	if (json_array_size(comps) > 50) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: too many actions in the "
		               "sequence: %zu (the limit is 50)",
		               json_array_size(comps));
		return NULL;
	}
	json_t *out = json_array();
	size_t i;
	json_t *c;
	json_array_foreach(comps, i, c)
	{
		const char *s = json_string_value(c);
		char cns[260], path[600];
		if (s == NULL || gw_split_fqn(s, ns, cns, sizeof(cns), path, sizeof(path)) != 0) {
			gw_reply_error(r, 400, "EINVAL",
			               "The request content was malformed: sequence component %zu "
			               "is not an action name",
			               i);
			json_decref(out);
			return NULL;
		}
		char *defaults = NULL;
		int err = 0;
		gw_action *a = gw_resolve_action(r->g, ns, cns, path, &defaults, &err);
		free(defaults);
		if (a == NULL) {
			gw_reply_error(r, 400, "EINVAL",
			               "The request content was malformed: sequence component '%s' "
			               "does not exist",
			               s);
			json_decref(out);
			return NULL;
		}
		gw_action_unref(a);
		json_array_append_new(out, json_sprintf("/%s/%s", cns, path));
	}
	return out;
}

/* The "binding" annotation, parsed as the invoker will parse it (for the
 * same namespace: its keyspace), and a target outside the cluster checked
 * against the operator's policy. False once answered (400, or 503 when etcd
 * cannot say). */
static bool check_binding(gw_req *r, const char *ns, json_t *rec)
{
	size_t i;
	json_t *ann;
	json_array_foreach(json_object_get(rec, "annotations"), i, ann)
	{
		const char *k = json_string_value(json_object_get(ann, "key"));
		if (k == NULL || strcmp(k, "binding") != 0)
			continue;
		cleanup_free char *text =
		    json_dumps(json_object_get(ann, "value"), JSON_COMPACT | JSON_ENCODE_ANY);
		gust_binding b;
		char *why = NULL;
		int rv = gust_binding_parse(ns, text ? text : "", &b, &why);
		if (rv == 0 && gust_binding_external(&b)) {
			gust_policy *pol = NULL;
			gust_error *e = NULL;
			if (gust_policy_load(r->g->etcd, ns, &pol, &e) != 0) {
				gust_binding_clear(&b);
				gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
				gust_error_free(e);
				return false;
			}
			rv = gust_binding_check_policy(&b, pol, &why);
			gust_policy_free(pol);
		}
		gust_binding_clear(&b);
		if (rv != 0) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "The request content was malformed: annotation 'binding': %s",
			    why ? why : "invalid");
			free(why);
			return false;
		}
	}
	return true;
}

/* The "egress" annotation (the last one wins, as the invokers read it) is
 * the operator's to give: refused with 403 unless /gust/grants/<ns> grants
 * egress (gust/egress.h). False once answered (403, or 503 when etcd cannot
 * say). */
static bool check_egress(gw_req *r, const char *ns, json_t *rec)
{
	bool want = false;
	size_t i;
	json_t *ann;
	json_array_foreach(json_object_get(rec, "annotations"), i, ann)
	{
		const char *k = json_string_value(json_object_get(ann, "key"));
		if (k != NULL && strcmp(k, "egress") == 0)
			want = json_is_true(json_object_get(ann, "value"));
	}
	if (!want)
		return true;
	bool granted = false;
	gust_error *e = NULL;
	if (gust_egress_granted(r->g->etcd, ns, &granted, &e) != 0) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		gust_error_free(e);
		return false;
	}
	if (!granted) {
		gw_reply_error(r, 403, "EPERM",
		               "annotation 'egress': egress is not granted to namespace '%s' (the "
		               "operator grants it: gust admin grant egress %s on)",
		               ns, ns);
		return false;
	}
	return true;
}

static void action_put(gw_req *r, const char *ns, const char *name)
{
	gw *g = r->g;
	bool overwrite = gw_query_true(r, "overwrite");
	/* Every cleanup-owned local is declared before the first goto: a jump
	 * past an initialisation would free garbage on the way out. */
	cleanup_free char *version = NULL, *old_code_key = NULL, *doc = NULL, *answer = NULL;
	cleanup_free char *last = NULL, *ck = NULL;
	cleanup_free char *rkey = gust_xasprintf("/gust/actions/%s/%s", ns, name);
	cleanup_free char *pkg = NULL;
	gust_kv old = {0};
	gust_error *e = NULL;
	json_t *rec = NULL, *comps = NULL;
	json_t *body = gw_body_object(r);
	if (body == NULL)
		return;
	const char *slash = strchr(name, '/');
	if (slash) {
		pkg = gust_xstrndup(name, (size_t)(slash - name));
		cleanup_free char *pid = gust_xasprintf("%s/%s", ns, pkg);
		gw_doc *p = gw_cache_doc(g, GW_PACKAGES, pid);
		bool binding = p && json_object_size(json_object_get(p->j, "binding")) > 0;
		gw_doc_unref(p);
		if (p == NULL || binding) {
			gw_reply_error(r, p ? 400 : 404, p ? "EINVAL" : "ENOENT",
			               p ? "Cannot create an action in a package binding"
			                 : "The package '%s' does not exist.",
			               pkg);
			goto out;
		}
	}
	int rv = gust_etcd_get(g->etcd, rkey, &old, &e);
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
			    "python:3, python:default, nodejs:20, nodejs:default, native, "
			    "sequence");
			goto out;
		}
		if (strcmp(kind, "sequence") == 0) {
			comps = sequence_components(r, ns, json_object_get(exec, "components"));
			if (comps == NULL)
				goto out;
			json_object_set_new(
			    rec, "exec",
			    json_pack("{s:s,s:O}", "kind", "sequence", "components", comps));
			json_object_del(rec, "code_key");
			json_object_del(rec, "code_size");
			goto exec_done;
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
		bool binary = json_is_true(json_object_get(exec, "binary")) ||
		              strcmp(kind, "native") == 0 || looks_like_zip(code, code_len);
		json_object_set_new(rec, "exec",
		                    json_pack("{s:s,s:s,s:b}", "kind", kind, "main",
		                              m ? json_string_value(m) : "main", "binary", binary));
	} else if (json_object_get(rec, "exec") == NULL) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: 'exec' is required");
		goto out;
	}
exec_done:;

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
	if (!gw_entity_merge(r, body, rec))
		goto out;
	if (!check_binding(r, ns, rec) || !check_egress(r, ns, rec))
		goto out;
	/* A new action has them all, empty, as OpenWhisk shows one. */
	if (json_object_get(rec, "parameters") == NULL)
		json_object_set_new(rec, "parameters", json_array());
	if (json_object_get(rec, "annotations") == NULL)
		json_object_set_new(rec, "annotations", json_array());
	if (json_object_get(rec, "publish") == NULL)
		json_object_set_new(rec, "publish", json_false());

	/* A new action goes on from the last version of any earlier one of
	 * this name: a version never names two different actions. */
	if (old.key == NULL && (rv = version_last(g, ns, name, &last, &e)) != 0) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		goto out;
	}
	version = bump_version(old.key ? json_string_value(json_object_get(rec, "version")) : last);
	if (pkg) {
		json_object_set_new(rec, "namespace", json_sprintf("%s/%s", ns, pkg));
		json_object_set_new(rec, "name", json_string(slash + 1));
	} else {
		json_object_set_new(rec, "namespace", json_string(ns));
		json_object_set_new(rec, "name", json_string(name));
	}
	json_object_set_new(rec, "version", json_string(version));
	json_object_set_new(rec, "updated", json_integer(gust_wall_ms()));
	/* The namespace's storage quota (gw_quota.c) counts the code by the
	 * size its record gives. */
	long long old_code = json_integer_value(json_object_get(rec, "code_size"));
	if (code != NULL)
		json_object_set_new(rec, "code_size", json_integer((json_int_t)code_len));
	if (!gw_quota_admit(r, ns, old.key == NULL,
	                    old.key ? (long long)old.value_len + old_code : 0,
	                    gw_record_bytes(rec) + (code ? (long long)code_len : old_code)))
		goto out;
	if (code != NULL) {
		const char *ock = json_string_value(json_object_get(rec, "code_key"));
		old_code_key = ock ? gust_xstrdup(ock) : NULL;
		/* ':' cannot be in a name, so no action's code prefix covers
		 * another's (action "a" and package "a"'s actions). The random id
		 * makes the key this write's own: two writers racing to the same
		 * version never write the same key, so the record that wins
		 * points at its own writer's bytes. */
		char id[33];
		gust_random_hex(id, 16);
		ck = gust_xasprintf("/gust/code/%s/%s:%s-%s", ns, name, version, id);
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
		/* Another writer's record won: our code is nobody's. (On another
		 * error the put may have landed: the code stays.) */
		if (ck != NULL)
			gust_etcd_delete(g->etcd, ck, false, NULL, NULL);
		gw_reply_error(r, 409, "ECONFLICT",
		               "Concurrent modification to resource detected; try again");
		goto out;
	} else if (rv != 0) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		goto out;
	}
	gw_cache_apply_put(g, rkey, doc, strlen(doc), rev);
	const char *nck = json_string_value(json_object_get(rec, "code_key"));
	if (old_code_key && (nck == NULL || strcmp(old_code_key, nck) != 0))
		gust_etcd_delete(g->etcd, old_code_key, false, NULL, NULL);

	/* Answer with the record; code included as OpenWhisk does. */
	json_object_del(rec, "code_key");
	json_object_del(rec, "code_size");
	if (code)
		json_object_set_new(json_object_get(rec, "exec"), "code",
		                    json_stringn(code, code_len));
	answer = json_dumps(rec, JSON_COMPACT);
	gw_reply_json(r, 200, answer);
out:
	gust_error_free(e);
	gust_kv_clear(&old);
	json_decref(rec);
	json_decref(comps);
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
	json_object_del(rec, "code_size");
	json_object_del(rec, "updated");
	if (with_code && a->code_key[0]) {
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
	char *defaults = NULL;
	int rerr = 0;
	gw_action *a = gw_resolve_action(r->g, ns, ns, name, &defaults, &rerr);
	free(defaults);
	if (a == NULL) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	const char *c = gw_query(r, "code");
	bool with_code = !(c && strcmp(c, "false") == 0);
	int err = 0;
	json_t *rec = action_public(r->g, a, with_code, &err);
	if (rec && strcmp(a->ns, ns) != 0) /* a shared package's action, seen through a binding */
		gw_hide_secrets(json_object_get(rec, "annotations"));
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
	gust_kv old = {0};
	gust_error *e = NULL;
	json_t *rec = NULL;
	int rv = gust_etcd_get(g->etcd, rkey, &old, &e);
	if (rv == GUST_ENOENT) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		goto out;
	} else if (rv != 0) {
		gw_reply_gust_error(r, GUST_EUNAVAIL, gust_error_msg(e));
		goto out;
	}
	rec = json_loadb(old.value, old.value_len, 0, NULL);
	/* Before the delete: whoever sees the record gone sees its version. */
	const char *ver = json_string_value(json_object_get(rec, "version"));
	if (ver != NULL && (rv = version_remember(g, ns, name, ver, &e)) != 0) {
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
	/* Only the deleted record's own code: a prefix delete could take the
	 * code of a create of the same name that is under way. */
	const char *ock = json_string_value(json_object_get(rec, "code_key"));
	if (ock)
		gust_etcd_delete(g->etcd, ock, false, NULL, NULL);
	if (rec) {
		json_object_del(rec, "code_key");
		json_object_del(rec, "code_size");
		json_object_del(rec, "updated");
	}
	char *s = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	gw_reply_json(r, 200, s ? s : "{}");
	free(s);
out:
	json_decref(rec);
	gust_error_free(e);
	gust_kv_clear(&old);
}

/* All the namespace's actions, or one package's (pkg non-NULL). */
static void action_list(gw_req *r, const char *ns, const char *pkg)
{
	gw *g = r->g;
	long long skip, limit;
	if (!gw_query_skip_limit(r, &skip, &limit))
		return;
	cleanup_free char *prefix =
	    pkg ? gust_xasprintf("%s/%s/", ns, pkg) : gust_xasprintf("%s/", ns);
	size_t n;
	gw_action **v = (gw_action **)gw_cache_list(g, GW_ACTIONS, prefix, &n);
	if (gw_query_true(r, "count")) {
		char buf[64];
		snprintf(buf, sizeof(buf), "{\"actions\":%zu}", n);
		gw_reply_json(r, 200, buf);
	} else {
		json_t *arr = json_array();
		for (size_t i = (size_t)skip; i < n && (limit == 0 || i < (size_t)(skip + limit));
		     i++) {
			int err = 0;
			json_t *rec = action_public(g, v[i], false, &err);
			if (rec)
				json_array_append_new(arr, rec);
		}
		gw_reply_jsonv(r, 200, arr);
	}
	gw_cache_list_free(GW_ACTIONS, (void **)v, n);
}

void gw_actions_route(gw_req *r, gw_key *k, const char *ns, const char *rest)
{
	const char *m = r->method;
	size_t rl = strlen(rest);
	/* gw_http lets another namespace's path through only to invoke */
	if (strcmp(ns, k->ns) != 0 && strcmp(m, "POST") != 0) {
		gw_reply_error(r, 403, "EPERM",
		               "The supplied authentication is not authorized to access this "
		               "resource.");
		return;
	}
	if (*rest == '\0' || (rl > 1 && rest[rl - 1] == '/' && memchr(rest, '/', rl - 1) == NULL)) {
		if (strcmp(m, "GET") != 0) {
			gw_reply_error(r, 405, "ENOTSUP", "Method not allowed: %s on a collection",
			               m);
			return;
		}
		cleanup_free char *pkg = *rest ? gust_xstrndup(rest, rl - 1) : NULL;
		return action_list(r, ns, pkg);
	}
	const char *slash = strchr(rest, '/');
	bool ok = slash == NULL ? gw_valid_name(rest) : false;
	if (slash != NULL) {
		cleanup_free char *pkg = gust_xstrndup(rest, (size_t)(slash - rest));
		ok = gw_valid_name(pkg) && gw_valid_name(slash + 1);
	}
	if (!ok) {
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
		char *defaults = NULL;
		int err = 0;
		gw_action *a = gw_resolve_action(r->g, k->ns, ns, rest, &defaults, &err);
		if (a == NULL) {
			gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
			return;
		}
		gw_invoke(r, k->ns, a, defaults, r->body.data, r->body.len);
		gw_action_unref(a);
		free(defaults);
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
