/* gw_web.c - web actions: /api/v1/web/<ns>/<pkg|default>/<action>[.ext][/path].
 *
 * Actions annotated web-export answer plain HTTP, without credentials unless
 * require-whisk-auth is set (true: any valid key; a string: that value in the
 * X-Require-Whisk-Auth header). The request becomes parameters (__ow_method,
 * __ow_headers, __ow_path, and for raw-http actions __ow_query and __ow_body;
 * otherwise the query and a JSON body are merged in as parameters and a body
 * that is not a JSON object is passed as __ow_body). The extension picks how
 * the result is answered: .json (the result), .http (statusCode, headers,
 * body; the default), .html, .text, .svg (that member of the result). */
#include <jansson.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"

static enum MHD_Result collect_kv(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
	json_t *o = cls;
	char *lower = gust_xstrdup(key);
	if (kind == MHD_HEADER_KIND)
		for (char *p = lower; *p; p++)
			*p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
	json_t *v = json_string(value ? value : "");
	if (v == NULL) /* not UTF-8 */
		v = json_string("");
	json_object_set_new(o, lower, v);
	free(lower);
	return MHD_YES;
}

static void pct(gust_buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~') {
			gust_buf_append(b, s, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			gust_buf_append(b, e, 3);
		}
	}
}

static bool is_utf8_text(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);
	bool ok = j != NULL && memchr(s, '\0', n) == NULL;
	json_decref(j);
	return ok;
}

static const char not_allowed[] =
    "Request defines parameters that are not allowed (e.g., reserved properties)";

bool gw_final_check(gw_req *r, gw_action *a, const char *defaults, json_t *params)
{
	if (!a->final || !json_is_object(params) || json_object_size(params) == 0)
		return true;
	cleanup_free char *obj = gust_xasprintf("{%s}", defaults ? defaults : a->params_inner);
	json_t *d = json_loads(obj, 0, NULL);
	const char *k;
	json_t *v;
	json_object_foreach(params, k, v)
	{
		/* A parameter given as null has no value yet: OpenWhisk leaves it
		 * open to the caller. */
		json_t *dv = json_object_get(d, k);
		if (dv != NULL && !json_is_null(dv)) {
			gw_reply_error(r, 400, "EINVAL", "%s: '%.64s' is final", not_allowed, k);
			json_decref(d);
			return false;
		}
	}
	json_decref(d);
	return true;
}

void gw_hide_secrets(json_t *annotations)
{
	for (size_t i = json_array_size(annotations); i-- > 0;) {
		const char *k =
		    json_string_value(json_object_get(json_array_get(annotations, i), "key"));
		if (k && strcmp(k, "require-whisk-auth") == 0)
			json_array_remove(annotations, i);
	}
}

/* The request's own parameters (query and a JSON object body) may not set
 * __ow_* (OpenWhisk's reserved properties) nor a final parameter. */
static bool web_params_allowed(gw_req *r, gw_action *a, const char *defaults, json_t *mine)
{
	const char *k;
	json_t *v;
	json_object_foreach(mine, k, v)
	{
		if (strncmp(k, "__ow_", 5) == 0) {
			gw_reply_error(r, 400, "EINVAL", "%s: '%.64s' is reserved", not_allowed, k);
			return false;
		}
	}
	return gw_final_check(r, a, defaults, mine);
}

/* The parameters of the activation; NULL after answering 400. */
static json_t *web_params(gw_req *r, gw_action *a, const char *defaults, const char *path)
{
	json_t *p = json_object();
	json_t *hdrs = json_object();
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_kv, hdrs);
	json_object_del(hdrs, "authorization");
	json_t *query = json_object();
	MHD_get_connection_values(r->conn, MHD_GET_ARGUMENT_KIND, collect_kv, query);
	char method[16];
	snprintf(method, sizeof(method), "%s", r->method);
	for (char *c = method; *c; c++)
		*c = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
	const char *body = r->body.data ? r->body.data : "";
	size_t blen = r->body.len;
	if (a->raw_http) {
		gust_buf q = {0};
		const char *k;
		json_t *v;
		json_object_foreach(query, k, v)
		{
			if (q.len)
				gust_buf_puts(&q, "&");
			pct(&q, k);
			gust_buf_puts(&q, "=");
			pct(&q, json_string_value(v));
		}
		json_object_set_new(p, "__ow_query", json_string(q.data ? q.data : ""));
		gust_buf_free(&q);
		if (is_utf8_text(body, blen)) {
			json_object_set_new(p, "__ow_body", json_stringn(body, blen));
		} else {
			char *b64 = gust_b64_encode(body, blen);
			json_object_set_new(p, "__ow_body", json_string(b64));
			free(b64);
		}
	} else {
		json_object_update(p, query);
		json_t *jb = blen ? json_loadb(body, blen, 0, NULL) : NULL;
		if (json_is_object(jb))
			json_object_update(p, jb);
		if (!web_params_allowed(r, a, defaults, p)) {
			json_decref(jb);
			json_decref(p);
			json_decref(hdrs);
			json_decref(query);
			return NULL;
		}
		if (!json_is_object(jb) && blen) {
			if (is_utf8_text(body, blen)) {
				json_object_set_new(p, "__ow_body", json_stringn(body, blen));
			} else {
				char *b64 = gust_b64_encode(body, blen);
				json_object_set_new(p, "__ow_body", json_string(b64));
				free(b64);
			}
		}
		json_decref(jb);
	}
	json_object_set_new(p, "__ow_method", json_string(method));
	json_object_set_new(p, "__ow_headers", hdrs);
	json_object_set_new(p, "__ow_path", json_string(path));
	json_decref(query);
	return p;
}

/* require-whisk-auth: true wants a valid key, a string wants that secret. */
static bool web_authorized(gw_req *r, gw_action *a)
{
	if (a->require_auth == NULL && !a->require_key)
		return true;
	if (a->require_key) {
		gw_key *k = gw_auth(r);
		gw_key_unref(k);
		return k != NULL;
	}
	const char *h =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Require-Whisk-Auth");
	if (h && gust_consttime_eq(h, strlen(h), a->require_auth, strlen(a->require_auth)))
		return true;
	gw_reply_error(r, 401, "EAUTH",
	               "The resource requires authentication, which was not supplied with the "
	               "request");
	return false;
}

void gw_web_route(gw_req *r)
{
	/* r->url is "/api/v1/web/<ns>/<pkg>/<action>[.ext][/rest]" */
	const char *p = r->url + strlen("/api/v1/web/");
	char seg[3][300];
	for (int i = 0; i < 3; i++) {
		size_t n = strcspn(p, "/");
		if (n == 0 || n >= sizeof(seg[i]) || (i < 2 && p[n] != '/')) {
			gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
			return;
		}
		memcpy(seg[i], p, n);
		seg[i][n] = '\0';
		p += n;
		if (i < 2)
			p++;
	}
	const char *extra = p; /* "" or "/..." */
	static const char *const exts[] = {"json", "http", "html", "text", "svg"};
	r->web = "http";
	char *dot = strrchr(seg[2], '.');
	for (size_t i = 0; dot && i < sizeof(exts) / sizeof(exts[0]); i++) {
		if (strcmp(dot + 1, exts[i]) == 0) {
			r->web = exts[i];
			*dot = '\0';
		}
	}
	if (!gw_valid_name(seg[0]) || !gw_valid_name(seg[2]) || !gw_valid_name(seg[1])) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	cleanup_free char *path = strcmp(seg[1], "default") == 0
	                              ? gust_xstrdup(seg[2])
	                              : gust_xasprintf("%s/%s", seg[1], seg[2]);
	char *defaults = NULL;
	int err = 0;
	gw_action *a = gw_resolve_action(r->g, seg[0], seg[0], path, &defaults, &err);
	if (a == NULL || !a->web_export) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
	} else if (web_authorized(r, a)) {
		json_t *params = web_params(r, a, defaults, extra);
		if (params == NULL)
			goto out;
		char *s = json_dumps(params, JSON_COMPACT);
		json_decref(params);
		r->blocking = true;
		r->want_result = true;
		gust_buf_reset(&r->body);
		if (s)
			gust_buf_puts(&r->body, s);
		free(s);
		gw_invoke(r, a->ns, a, defaults, r->body.data, r->body.len);
	}
out:
	gw_action_unref(a);
	free(defaults);
}

static void web_fail(gw_req *r, int status, const char *msg)
{
	gw_reply_error(r, status, status == 400 ? "EAPP" : "EBADGATEWAY", "%s", msg);
}

static bool binary_type(const char *ct)
{
	return ct && strncasecmp(ct, "text/", 5) != 0 && strncasecmp(ct, "application/json", 16) &&
	       strncasecmp(ct, "application/xml", 15) &&
	       strncasecmp(ct, "application/javascript", 22) && strncasecmp(ct, "image/svg", 9);
}

static void web_http(gw_req *r, json_t *res)
{
	json_t *sc = json_object_get(res, "statusCode");
	json_t *h = json_object_get(res, "headers");
	json_t *body = json_object_get(res, "body");
	int status = json_is_integer(sc) ? (int)json_integer_value(sc) : body ? 200 : 204;
	if (status < 100 || status > 599) {
		web_fail(r, 400, "The action returned an invalid statusCode.");
		return;
	}
	if (h && !json_is_object(h)) {
		web_fail(r, 400, "The action returned 'headers' that are not an object.");
		return;
	}
	r->headers = json_object();
	const char *k;
	json_t *v;
	const char *ct = NULL;
	json_object_foreach(h, k, v)
	{
		json_t *sv = json_is_string(v) ? json_incref(v)
		             : json_is_number(v) || json_is_boolean(v)
		                 ? json_string(json_is_true(v)    ? "true"
		                               : json_is_false(v) ? "false"
		                                                  : "")
		                 : NULL;
		if (json_is_number(v)) {
			json_decref(sv);
			sv = json_sprintf("%g", json_number_value(v));
		}
		if (sv == NULL)
			continue;
		json_object_set_new(r->headers, k, sv);
		if (strcasecmp(k, "content-type") == 0)
			ct = json_string_value(sv);
	}
	r->status = status;
	gust_buf_reset(&r->resp);
	if (json_is_string(body)) {
		const char *s = json_string_value(body);
		size_t n = json_string_length(body);
		size_t dl = 0;
		void *d = binary_type(ct) ? gust_b64_decode(s, n, &dl) : NULL;
		if (d) {
			gust_buf_append(&r->resp, d, dl);
			free(d);
		} else {
			gust_buf_append(&r->resp, s, n);
		}
		r->ctype = ct ? ct : "text/html; charset=utf-8";
	} else if (body && !json_is_null(body)) {
		char *s = json_dumps(body, JSON_COMPACT | JSON_ENCODE_ANY);
		gust_buf_puts(&r->resp, s ? s : "");
		free(s);
		r->ctype = ct ? ct : "application/json";
	} else {
		r->ctype = ct ? ct : "text/plain";
	}
}

void gw_web_answer(gw_req *r, int status, const char *result, size_t len)
{
	json_t *res = len ? json_loadb(result, len, 0, NULL) : json_object();
	if (status != 0 || !json_is_object(res)) {
		/* OpenWhisk answers an action's error as a 400 with the error. */
		json_t *e = json_object_get(res, "error");
		json_t *o = json_object();
		if (e)
			json_object_set(o, "error", e);
		else
			json_object_set_new(o, "error", json_string("the action failed"));
		json_object_set_new(o, "code", json_string(status == 1 ? "EAPP" : "EBADGATEWAY"));
		gw_reply_jsonv(r, status == 1 ? 400 : 502, o);
		json_decref(res);
		return;
	}
	if (strcmp(r->web, "json") == 0) {
		r->status = 200;
		r->ctype = "application/json";
		gust_buf_reset(&r->resp);
		gust_buf_append(&r->resp, result, len);
	} else if (strcmp(r->web, "http") == 0) {
		web_http(r, res);
	} else {
		const char *member = strcmp(r->web, "svg") == 0 ? "svg" : r->web;
		json_t *v = json_object_get(res, member);
		if (!json_is_string(v)) {
			char msg[128];
			snprintf(msg, sizeof(msg),
			         "The action did not return a response of type '%s'.", r->web);
			web_fail(r, 400, msg);
		} else {
			r->status = 200;
			gust_buf_reset(&r->resp);
			gust_buf_append(&r->resp, json_string_value(v), json_string_length(v));
			r->ctype = strcmp(r->web, "html") == 0   ? "text/html; charset=utf-8"
			           : strcmp(r->web, "text") == 0 ? "text/plain; charset=utf-8"
			                                         : "image/svg+xml";
		}
	}
	json_decref(res);
}
