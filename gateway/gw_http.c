/* gw_http.c - the HTTP front: libmicrohttpd, routing, authentication, replies.
 *
 * Each request is a small state machine: NEW (first call, on the complete
 * head: the key and a declared Content-Length are checked here, and a refusal
 * is answered at once, see http_refuse; its body, if the client sends it
 * anyway, is dropped in DRAIN), BODY (upload chunks, capped as they arrive),
 * then either a synchronous answer or WAIT (the connection is suspended while
 * nng works) and READY (resumed: queue the answer). The gateway speaks plain
 * HTTP, or HTTPS itself (gw_tls.c); in plain HTTP http_refuse writes a
 * refusal straight to the socket, under TLS that would be bytes outside the
 * session, so there the refusal waits for the dropped body and goes out
 * through MHD.
 *
 * MHD's own timeout is an inactivity timeout: a client that sends one byte of
 * its head every few seconds would hold a connection forever. So each
 * connection also has an absolute deadline (gw_conns): its head must be
 * complete header_timeout_s after it may start, its body body_timeout_s after
 * the head; a reaper thread shuts down the socket of a connection past its
 * deadline, and MHD then closes it as a peer hang-up (under TLS too: GnuTLS
 * then fails its read, and nothing is written outside the session). */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "gateway.h"
#include "gust/log.h"
#include "gust/sha256.h"

/* One tracked connection (MHD's socket context). deadline_us 0: none (the
 * request is being served or answered). */
typedef struct gw_conn {
	struct gw_conn *prev, *next;
	int fd;
	uint64_t deadline_us;
} gw_conn;

struct gw_conns {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	gw_conn head; /* list sentinel */
	bool stop;
	pthread_t reaper;
	bool started;
	gust_metric *m_timeouts;
};

static void conn_deadline(gw *g, struct MHD_Connection *conn, long long secs)
{
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	gw_conn *c = ci ? ci->socket_context : NULL;
	if (c == NULL || g->conns == NULL)
		return;
	pthread_mutex_lock(&g->conns->lock);
	c->deadline_us = secs > 0 ? gust_now_us() + (uint64_t)secs * 1000000u : 0;
	pthread_mutex_unlock(&g->conns->lock);
}

static void http_notify_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
	gw *g = cls;
	gw_conns *cs = g->conns;
	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		const union MHD_ConnectionInfo *ci =
		    MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
		gw_conn *c = gust_xcalloc(1, sizeof(*c));
		c->fd = ci ? ci->connect_fd : -1;
		c->deadline_us = gust_now_us() + (uint64_t)g->cfg.header_timeout_s * 1000000u;
		pthread_mutex_lock(&cs->lock);
		c->next = cs->head.next;
		c->prev = &cs->head;
		cs->head.next->prev = c;
		cs->head.next = c;
		pthread_mutex_unlock(&cs->lock);
		*socket_context = c;
	} else if (toe == MHD_CONNECTION_NOTIFY_CLOSED && *socket_context) {
		/* MHD closes the socket only after this call: once the entry is
		 * unlinked under the lock, the reaper cannot touch a reused fd. */
		gw_conn *c = *socket_context;
		pthread_mutex_lock(&cs->lock);
		c->prev->next = c->next;
		c->next->prev = c->prev;
		pthread_mutex_unlock(&cs->lock);
		free(c);
		*socket_context = NULL;
	}
}

static void *http_reaper(void *arg)
{
	gw *g = arg;
	gw_conns *cs = g->conns;
	pthread_mutex_lock(&cs->lock);
	while (!cs->stop) {
		uint64_t now = gust_now_us();
		for (gw_conn *c = cs->head.next; c != &cs->head; c = c->next) {
			if (c->deadline_us == 0 || c->deadline_us > now || c->fd < 0)
				continue;
			/* shutdown, not close: MHD still owns the descriptor and
			 * sees a hang-up on its next read. */
			shutdown(c->fd, SHUT_RDWR);
			c->deadline_us = 0;
			gust_counter_add(cs->m_timeouts, 1);
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&cs->cond, &cs->lock, &ts);
	}
	pthread_mutex_unlock(&cs->lock);
	return NULL;
}

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
	/* The API port may face the world: with a token configured, the
	 * metrics (namespaces' load, the cluster's shape) are the operator's. */
	if (!gust_admin_token_ok(r->g->metrics_token,
	                         MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                                     MHD_HTTP_HEADER_AUTHORIZATION))) {
		gw_reply_error(
		    r, 401, "EAUTH",
		    "/metrics needs the bearer token of config key 'metrics_token_file'");
		return;
	}
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
	/* Checked on the head (http_head); the request owns the reference. */
	gw_key *k = steal_pointer(&r->key);
	if (k == NULL && (k = gw_auth(r)) == NULL)
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

static bool is_api(const char *url)
{
	static const char api[] = "/api/v1/namespaces";
	return strncmp(url, api, sizeof(api) - 1) == 0 &&
	       (url[sizeof(api) - 1] == '/' || url[sizeof(api) - 1] == '\0');
}

/* The checks that need only the head. True when r already has its answer
 * (http_refuse sends it; the body is never kept). */
static bool http_head(gw_req *r)
{
	const char *cl =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	if (is_api(r->url) && (r->key = gw_auth(r)) == NULL)
		return true;
	if (cl != NULL) {
		char *end;
		unsigned long long n = strtoull(cl, &end, 10);
		if (*cl != '\0' && *end == '\0' && n > r->limit) {
			gw_reply_error(r, 413, "ETOOBIG",
			               "The request content was malformed: request entity too "
			               "large: Content-Length %llu, the limit is %zu bytes",
			               n, r->limit);
			return true;
		}
	}
	return false;
}

/* Answers a request refused before its body was read (bad key, too large).
 *
 * A client that asked "Expect: 100-continue", or sends no body, gets the
 * answer through MHD at once and sends nothing more. Most clients, though,
 * write the whole body before they read: if we closed on them with their body
 * unread, the kernel's reset would destroy the answer before they read it. So,
 * as nginx does with a lingering close, the answer is written to the socket at
 * once (MHD is only reading on this connection: no write of its own can
 * interleave) and the body is then read and thrown away, never kept: at most
 * max_code bytes (the largest valid request) and within body_timeout_s, after
 * which the connection is closed.
 *
 * Under TLS the socket carries records, not HTTP: the answer cannot be
 * written beside MHD's session. There the body is read and dropped first,
 * within the same bounds, and the answer then queued through MHD (a client
 * past max_code or body_timeout_s gets the connection closed, no answer). */
static enum MHD_Result http_refuse(gw_req *r)
{
	gw *g = r->g;
	const char *cl =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND,
	                                             MHD_HTTP_HEADER_TRANSFER_ENCODING);
	const char *ex =
	    MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_EXPECT);
	bool body_coming = (cl != NULL && strcmp(cl, "0") != 0) || te != NULL;
	if (!body_coming || (ex != NULL && strcasecmp(ex, "100-continue") == 0)) {
		r->state = GW_REQ_READY;
		conn_deadline(g, r->conn, 0);
		return http_queue(r);
	}
	if (gw_tls_on(g)) {
		r->state = GW_REQ_DRAIN;
		r->answer_after_drain = true;
		gust_buf_free(&r->body);
		return MHD_YES;
	}
	const union MHD_ConnectionInfo *ci =
	    MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
	if (ci == NULL)
		return MHD_NO;
	gust_buf b = {0};
	const char *reason = MHD_get_reason_phrase_for((unsigned)r->status);
	gust_buf_printf(&b,
	                "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: "
	                "%zu\r\nConnection: close\r\n\r\n",
	                r->status, reason ? reason : "", r->resp.len);
	gust_buf_append(&b, r->resp.data, r->resp.len);
	ssize_t n = send(ci->connect_fd, b.data, b.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	bool whole = n == (ssize_t)b.len;
	gust_buf_free(&b);
	gust_counter_add(g->m_requests, 1);
	gust_histogram_observe_us(g->m_latency, gust_now_us() - r->start_us);
	if (!whole) /* a send buffer full at the start of a request: not a client to wait for */
		return MHD_NO;
	r->state = GW_REQ_DRAIN;
	gust_buf_free(&r->body);
	return MHD_YES;
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
		conn_deadline(g, conn, g->cfg.body_timeout_s);
		if (http_head(r))
			return http_refuse(r);
		return MHD_YES;
	}
	if (r->state == GW_REQ_DRAIN) {
		/* Answered already: the body is counted and dropped, then the
		 * connection closed (MHD_NO), since MHD has no answer to send.
		 * Under TLS the answer is still to send: through MHD, now. */
		if (*upload_data_size == 0 && r->answer_after_drain) {
			r->state = GW_REQ_READY;
			conn_deadline(g, conn, 0);
			return http_queue(r);
		}
		r->drained += *upload_data_size;
		bool more = *upload_data_size != 0 && r->drained <= (size_t)g->cfg.max_code;
		*upload_data_size = 0;
		return more ? MHD_YES : MHD_NO;
	}
	if (r->state == GW_REQ_READY)
		return http_queue(r);
	if (r->state == GW_REQ_WAIT) {
		/* Spurious call while suspended: nothing to do yet. */
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (!r->too_big && r->body.len + *upload_data_size <= r->limit) {
			gust_buf_append(&r->body, upload_data, *upload_data_size);
			*upload_data_size = 0;
			return MHD_YES;
		}
		/* Over the limit without a declared length (chunked): answer now,
		 * keep none of it. */
		r->too_big = true;
		r->drained = r->body.len + *upload_data_size;
		gust_buf_free(&r->body);
		*upload_data_size = 0;
		gw_reply_error(r, 413, "ETOOBIG",
		               "The request content was malformed: request entity too large: "
		               "the limit is %zu bytes",
		               r->limit);
		return http_refuse(r);
	}
	r->status = 500;
	conn_deadline(g, conn, 0);
	http_dispatch(r);
	if (r->state == GW_REQ_WAIT)
		return MHD_YES;
	return http_queue(r);
}

static void http_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                           enum MHD_RequestTerminationCode toe)
{
	gw_req *r = *req_cls;
	gw *g = cls;
	/* A kept-alive connection's next head must be complete within the idle
	 * timeout plus the head timeout (MHD closes a silent one earlier). */
	conn_deadline(g, conn, g->cfg.idle_timeout_s + g->cfg.header_timeout_s);
	if (r == NULL)
		return;
	gw_key_unref(r->key);
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
	gw_conns *cs = g->conns = gust_xcalloc(1, sizeof(*cs));
	pthread_mutex_init(&cs->lock, NULL);
	pthread_cond_init(&cs->cond, NULL);
	cs->head.next = cs->head.prev = &cs->head;
	cs->m_timeouts =
	    gust_counter_new("gust_http_deadline_closes_total",
	                     "connections closed for a head or body past its deadline", NULL);
	int rc = pthread_create(&cs->reaper, NULL, http_reaper, g);
	if (rc != 0)
		return gust_error_set(err, GUST_EINTERNAL, "http reaper: pthread_create: %s",
		                      strerror(rc));
	cs->started = true;
	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME;
	/* Without TLS the option list ends where the TLS options would start. */
	enum MHD_OPTION tls_opt = MHD_OPTION_END;
	if (gw_tls_on(g)) {
		if ((rc = gw_tls_start(g, err)) != 0)
			return rc;
		flags |= MHD_USE_TLS;
		tls_opt = MHD_OPTION_HTTPS_CERT_CALLBACK;
	}
	g->mhd = MHD_start_daemon(
	    flags, (uint16_t)g->cfg.port, NULL, NULL, http_handler, g, MHD_OPTION_SOCK_ADDR, &sa,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)g->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED,
	    http_completed, g, MHD_OPTION_NOTIFY_CONNECTION, http_notify_conn, g,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)g->cfg.idle_timeout_s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)10000, MHD_OPTION_LISTEN_BACKLOG_SIZE,
	    (unsigned)1024, tls_opt, gw_tls_mhd_callback(),
	    /* TLS 1.2 and 1.3 only, with GnuTLS's NORMAL choice of ciphers. */
	    MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
	    MHD_OPTION_END);
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
	gw_conns *cs = g->conns;
	if (cs == NULL)
		return;
	if (cs->started) {
		pthread_mutex_lock(&cs->lock);
		cs->stop = true;
		pthread_cond_signal(&cs->cond);
		pthread_mutex_unlock(&cs->lock);
		pthread_join(cs->reaper, NULL);
	}
	/* MHD reported every connection closed before it stopped. */
	pthread_mutex_destroy(&cs->lock);
	pthread_cond_destroy(&cs->cond);
	free(cs);
	g->conns = NULL;
}
