/* gw_http.c - the HTTP front: libmicrohttpd, routing, authentication, replies.
 *
 * Each request is a small state machine: NEW (first call: only allocate, since
 * answering on the first call makes MHD close the connection), BODY (upload
 * chunks, capped), then either a synchronous answer or WAIT (the connection is
 * suspended while nng works) and READY (resumed: queue the answer). */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gateway.h"
#include "gust/log.h"
#include "gust/sha256.h"

void gw_reply_json(gw_req *r, int status, const char *json)
{
	r->status = status;
	gust_buf_reset(&r->resp);
	gust_buf_puts(&r->resp, json);
	r->ctype = "application/json";
}

void gw_reply_error(gw_req *r, int status, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	r->status = status;
	r->ctype = "application/json";
	gust_buf_reset(&r->resp);
	gust_buf_puts(&r->resp, "{\"error\":");
	gust_buf_json_str(&r->resp, msg, strlen(msg));
	gust_buf_puts(&r->resp, ",\"code\":");
	gust_buf_json_str(&r->resp, code, strlen(code));
	gust_buf_puts(&r->resp, "}");
	gust_counter_add(r->g->m_errors, 1);
}

void gw_reply_gust_error(gw_req *r, int err, const char *msg)
{
	gw_reply_error(r, gust_err_http_status(err), gust_errname(err), "%s",
	               msg ? msg : gust_strerror(err));
}

static enum MHD_Result http_queue(gw_req *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    r->resp.len, r->resp.data ? r->resp.data : (char *)"", MHD_RESPMEM_MUST_COPY);
	if (resp == NULL)
		return MHD_NO;
	MHD_add_response_header(resp, "Content-Type", r->ctype ? r->ctype : "application/json");
	if (r->activation_id)
		MHD_add_response_header(resp, "x-openwhisk-activation-id", r->activation_id);
	const char *hk;
	json_t *hv;
	json_object_foreach(r->headers, hk, hv)
	{
		/* Header text from an action: no CR/LF may split the response. */
		const char *v = json_string_value(hv);
		if (v && strcasecmp(hk, "content-type") != 0 && strpbrk(hk, "\r\n:") == NULL &&
		    strpbrk(v, "\r\n") == NULL)
			MHD_add_response_header(resp, hk, v);
	}
	enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	gust_counter_add(r->g->m_requests, 1);
	gust_histogram_observe_us(r->g->m_latency, gust_now_us() - r->start_us);
	return ret;
}

gw_key *gw_auth(gw_req *r)
{
	char *pass = NULL;
	char *user = MHD_basic_auth_get_username_password(r->conn, &pass);
	if (user == NULL) {
		if (pass)
			MHD_free(pass);
		gw_reply_error(r, 401, "EAUTH",
		               "The resource requires authentication, which was not supplied with "
		               "the request");
		return NULL;
	}
	gw_key *k = gw_cache_key(r->g, user);
	bool ok = false;
	if (k != NULL && pass != NULL && k->hash != NULL) {
		char h[2 * GUST_SHA256_LEN + 1];
		gust_key_hash_hex(k->salt, pass, h);
		ok = gust_consttime_eq(k->hash, strlen(k->hash), h, strlen(h));
	} else if (k != NULL && pass != NULL && k->key != NULL) {
		ok = gust_consttime_eq(k->key, strlen(k->key), pass, strlen(pass));
	}
	MHD_free(user);
	if (pass)
		MHD_free(pass);
	if (!ok) {
		gw_key_unref(k);
		gw_reply_error(r, 401, "EAUTH", "The supplied authentication is invalid");
		return NULL;
	}
	return k;
}

static void http_health(gw_req *r)
{
	gw *g = r->g;
	size_t n = gw_cache_schedulers(g);
	if (n == 0) {
		gw_reply_json(r, 503, "{\"status\":\"unhealthy\",\"reason\":\"no scheduler\"}");
		return;
	}
	gw_reply_json(r, 200, "{\"status\":\"ok\"}");
}

static void http_metrics(gw_req *r)
{
	r->status = 200;
	r->ctype = "text/plain; version=0.0.4";
	gust_buf_reset(&r->resp);
	gust_metrics_render(&r->resp);
}

/* Routes the request once its body is complete. */
static void http_dispatch(gw_req *r)
{
	const char *url = r->url;
	if (strcmp(url, "/health") == 0 || strcmp(url, "/ping") == 0)
		return http_health(r);
	if (strcmp(url, "/metrics") == 0)
		return http_metrics(r);
	static const char api[] = "/api/v1/namespaces";
	static const char web[] = "/api/v1/web/";
	if (strncmp(url, web, sizeof(web) - 1) == 0) {
		if (r->too_big) {
			gw_reply_error(
			    r, 413, "ETOOBIG",
			    "The request content was malformed: request entity too large: "
			    "the limit is %zu bytes",
			    r->limit);
			return;
		}
		return gw_web_route(r);
	}
	if (strncmp(url, api, sizeof(api) - 1) != 0 ||
	    (url[sizeof(api) - 1] != '/' && url[sizeof(api) - 1] != '\0')) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		return;
	}
	if (r->too_big) {
		gw_reply_error(r, 413, "ETOOBIG",
		               "The request content was malformed: request entity too large: "
		               "the limit is %zu bytes",
		               r->limit);
		return;
	}
	gw_key *k = gw_auth(r);
	if (k == NULL)
		return;
	const char *rest = url + sizeof(api) - 1;
	if (*rest == '\0' || strcmp(rest, "/") == 0) {
		gw_namespaces_list(r, k);
		gw_key_unref(k);
		return;
	}
	rest++; /* past '/' */
	const char *slash = strchr(rest, '/');
	size_t nslen = slash ? (size_t)(slash - rest) : strlen(rest);
	char ns[257];
	if (nslen == 0 || nslen >= sizeof(ns)) {
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
		gw_key_unref(k);
		return;
	}
	memcpy(ns, rest, nslen);
	ns[nslen] = '\0';
	const char *coll = slash ? slash + 1 : "";
	/* Another namespace in the path: only to invoke an action of its
	 * packages (POST .../alice/actions/pkg/name), as OpenWhisk allows;
	 * gw_resolve_action lets it through for a published package alone, and
	 * the activation runs as the caller (k->ns). */
	bool foreign = strcmp(ns, "_") != 0 && strcmp(ns, k->ns) != 0;
	if (foreign && !(strcmp(r->method, "POST") == 0 && strncmp(coll, "actions/", 8) == 0 &&
	                 strchr(coll + 8, '/') != NULL)) {
		gw_reply_error(r, 403, "EPERM",
		               "The supplied authentication is not authorized to access this "
		               "resource.");
		gw_key_unref(k);
		return;
	}
	if (strncmp(coll, "actions", 7) == 0 && (coll[7] == '\0' || coll[7] == '/'))
		gw_actions_route(r, k, foreign ? ns : k->ns, coll[7] ? coll + 8 : "");
	else if (strncmp(coll, "activations", 11) == 0 && (coll[11] == '\0' || coll[11] == '/'))
		gw_activations_route(r, k, k->ns, coll[11] ? coll + 12 : "");
	else if (strncmp(coll, "packages", 8) == 0 && (coll[8] == '\0' || coll[8] == '/'))
		gw_packages_route(r, k, k->ns, coll[8] ? coll + 9 : "");
	else if (strncmp(coll, "triggers", 8) == 0 && (coll[8] == '\0' || coll[8] == '/'))
		gw_triggers_route(r, k, k->ns, coll[8] ? coll + 9 : "");
	else if (strncmp(coll, "rules", 5) == 0 && (coll[5] == '\0' || coll[5] == '/'))
		gw_rules_route(r, k, k->ns, coll[5] ? coll + 6 : "");
	else if (*coll == '\0' && strcmp(r->method, "GET") == 0) {
		gust_buf b = {0};
		gust_buf_puts(&b, "{\"name\":");
		gust_buf_json_str(&b, k->ns, strlen(k->ns));
		gust_buf_puts(&b, "}");
		gw_reply_json(r, 200, b.data);
		gust_buf_free(&b);
	} else
		gw_reply_error(r, 404, "ENOENT", "The requested resource does not exist.");
	gw_key_unref(k);
}

static size_t http_body_limit(gw *g, const char *method, const char *url)
{
	/* Code uploads may be large; everything else is held to the payload limit. */
	if (strcmp(method, "PUT") == 0 && strstr(url, "/actions/") != NULL)
		return (size_t)g->cfg.max_code;
	return (size_t)g->cfg.max_payload;
}

static enum MHD_Result http_handler(void *cls, struct MHD_Connection *conn, const char *url,
                                    const char *method, const char *version,
                                    const char *upload_data, size_t *upload_data_size,
                                    void **req_cls)
{
	gw *g = cls;
	gw_req *r = *req_cls;
	if (r == NULL) {
		r = gust_xcalloc(1, sizeof(*r));
		r->g = g;
		r->conn = conn;
		r->start_us = gust_now_us();
		r->method = gust_xstrdup(method);
		r->url = gust_xstrdup(url);
		r->limit = http_body_limit(g, method, url);
		r->state = GW_REQ_BODY;
		*req_cls = r;
		return MHD_YES;
	}
	if (r->state == GW_REQ_READY)
		return http_queue(r);
	if (r->state == GW_REQ_WAIT) {
		/* Spurious call while suspended: nothing to do yet. */
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (!r->too_big && r->body.len + *upload_data_size <= r->limit)
			gust_buf_append(&r->body, upload_data, *upload_data_size);
		else {
			r->too_big = true;
			gust_buf_free(&r->body);
		}
		*upload_data_size = 0;
		return MHD_YES;
	}
	r->status = 500;
	http_dispatch(r);
	if (r->state == GW_REQ_WAIT)
		return MHD_YES;
	return http_queue(r);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
	gw_req *r = *req_cls;
	if (r == NULL)
		return;
	gw_invoke_cleanup(r);
	free(r->method);
	free(r->url);
	free(r->activation_id);
	json_decref(r->headers);
	gust_buf_free(&r->body);
	gust_buf_free(&r->resp);
	free(r);
	*req_cls = NULL;
}

int gw_http_start(gw *g, gust_error **err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g->cfg.port)};
	if (inet_pton(AF_INET, g->cfg.host, &sa.sin_addr) != 1)
		return gust_error_set(err, GUST_EINVAL,
		                      "config key 'host': '%s' is not an IPv4 address",
		                      g->cfg.host);
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
	g->mhd = MHD_start_daemon(flags, (uint16_t)g->cfg.port, NULL, NULL, http_handler, g,
	                          MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE,
	                          (unsigned)g->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED,
	                          http_completed, g, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)300,
	                          MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000,
	                          MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_END);
	if (g->mhd == NULL)
		return gust_error_set(err, GUST_EIO,
		                      "cannot listen on %s:%lld (config keys 'host', 'port')",
		                      g->cfg.host, g->cfg.port);
	return 0;
}

void gw_http_stop(gw *g)
{
	if (g->mhd)
		MHD_stop_daemon(g->mhd);
	g->mhd = NULL;
}
