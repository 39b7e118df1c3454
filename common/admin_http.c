/* admin_http.c - GET /health and GET /metrics on libmicrohttpd, for the daemons
 * whose main protocol is nng. One internal polling thread is plenty.
 *
 * The metrics tell a reader the cluster's shape and load (namespaces' action
 * counts, queue depths, invoker names): with a token file configured, /metrics
 * wants "Authorization: Bearer <token>". /health stays open: a load balancer
 * or an orchestrator probes it without credentials, and it says only ok or
 * unhealthy with counts, nothing a tenant owns. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "gust/log.h"
#include "gust/metrics.h"
#include "gust/sha256.h"

struct gust_admin_http {
	struct MHD_Daemon *d;
	gust_health_fn health;
	void *arg;
	char *token; /* NULL: /metrics is open */
};

/* Tokens are short; a file much larger is a wrong path, not a token. */
#define ADMIN_TOKEN_MAX 1024

int gust_admin_token_load(const char *path, char **tokenp, gust_error **err)
{
	*tokenp = NULL;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return gust_error_set(err, GUST_EINVAL, "token file %s: %s", path, strerror(errno));
	char buf[ADMIN_TOKEN_MAX + 2];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	struct stat st;
	bool loose = fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0;
	fclose(f);
	buf[n] = '\0';
	if (n > ADMIN_TOKEN_MAX) {
		explicit_bzero(buf, sizeof(buf));
		return gust_error_set(err, GUST_EINVAL, "token file %s: longer than %d bytes", path,
		                      ADMIN_TOKEN_MAX);
	}
	/* One line; the newline an editor or echo leaves is not part of it. */
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	                 buf[n - 1] == '\t'))
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++) {
		/* RFC 6750's b64token alphabet is narrower; any visible ASCII is
		 * accepted, but a space or control byte would never match a header. */
		if (buf[i] <= ' ' || buf[i] > '~') {
			explicit_bzero(buf, sizeof(buf));
			return gust_error_set(
			    err, GUST_EINVAL,
			    "token file %s: the token must be one line of visible "
			    "ASCII characters",
			    path);
		}
	}
	if (n == 0)
		return gust_error_set(err, GUST_EINVAL, "token file %s: empty", path);
	if (loose)
		gust_log_warn("ADM-TOKEN-MODE",
		              "token file %s is readable by group or others (chmod 600 it)", path);
	*tokenp = gust_xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

bool gust_admin_token_ok(const char *token, const char *authorization)
{
	if (token == NULL)
		return true;
	if (authorization == NULL || strncasecmp(authorization, "Bearer ", 7) != 0)
		return false;
	const char *given = authorization + 7;
	while (*given == ' ')
		given++;
	/* Digests of both sides: equal lengths, so the comparison's time says
	 * nothing about the token's length or its prefix. */
	uint8_t a[GUST_SHA256_LEN], b[GUST_SHA256_LEN];
	gust_sha256_digest(token, strlen(token), a);
	gust_sha256_digest(given, strlen(given), b);
	return gust_ct_equal(a, b, sizeof(a));
}

static enum MHD_Result admin_reply(struct MHD_Connection *c, int status, const char *ctype,
                                   gust_buf *body)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(
	    body->len, body->data ? body->data : (char *)"", MHD_RESPMEM_MUST_COPY);
	if (r == NULL)
		return MHD_NO;
	MHD_add_response_header(r, "Content-Type", ctype);
	enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result admin_handler(void *cls, struct MHD_Connection *c, const char *url,
                                     const char *method, const char *version,
                                     const char *upload_data, size_t *upload_data_size,
                                     void **req_cls)
{
	gust_admin_http *h = cls;
	/* Answer on the second call: queueing on the first makes MHD close the
	 * connection after the response (see LIMITS.md). */
	if (*req_cls == NULL) {
		*req_cls = (void *)1;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* bodies are ignored */
		return MHD_YES;
	}
	gust_buf body = {0};
	enum MHD_Result ret;
	if (strcmp(method, "GET") != 0) {
		gust_buf_puts(&body, "{\"error\":\"method not allowed\",\"code\":\"ENOTSUP\"}");
		ret = admin_reply(c, 405, "application/json", &body);
	} else if (strcmp(url, "/health") == 0) {
		int rv = h->health ? h->health(h->arg, &body) : 0;
		if (body.len == 0)
			gust_buf_puts(&body, rv == 0 ? "{\"status\":\"ok\"}"
			                             : "{\"status\":\"unhealthy\"}");
		ret = admin_reply(c, rv == 0 ? 200 : 503, "application/json", &body);
	} else if (strcmp(url, "/metrics") == 0 &&
	           !gust_admin_token_ok(
	               h->token, MHD_lookup_connection_value(c, MHD_HEADER_KIND,
	                                                     MHD_HTTP_HEADER_AUTHORIZATION))) {
		gust_buf_puts(&body, "{\"error\":\"/metrics needs the bearer token of config key "
		                     "'metrics_token_file'\",\"code\":\"EAUTH\"}");
		ret = admin_reply(c, 401, "application/json", &body);
	} else if (strcmp(url, "/metrics") == 0) {
		gust_metrics_render(&body);
		ret = admin_reply(c, 200, "text/plain; version=0.0.4", &body);
	} else {
		gust_buf_puts(&body, "{\"error\":\"not found\",\"code\":\"ENOENT\"}");
		ret = admin_reply(c, 404, "application/json", &body);
	}
	gust_buf_free(&body);
	return ret;
}

int gust_admin_http_start(const char *host, int port, const char *token_file, gust_health_fn health,
                          void *arg, gust_admin_http **hp, gust_error **err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return gust_error_set(err, GUST_EINVAL, "metrics host '%s' is not an IPv4 address",
		                      host);
	char *token = NULL;
	if (token_file != NULL && token_file[0] != '\0' &&
	    gust_admin_token_load(token_file, &token, err) != 0)
		return gust_error_wrap(err, "config key 'metrics_token_file'");
	gust_admin_http *h = gust_xcalloc(1, sizeof(*h));
	h->health = health;
	h->arg = arg;
	h->token = token;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, (uint16_t)port,
	                        NULL, NULL, admin_handler, h, MHD_OPTION_SOCK_ADDR, &sa,
	                        MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
	if (h->d == NULL) {
		if (h->token)
			explicit_bzero(h->token, strlen(h->token));
		free(h->token);
		free(h);
		return gust_error_set(err, GUST_EIO, "cannot serve metrics on %s:%d", host, port);
	}
	*hp = h;
	return 0;
}

void gust_admin_http_stop(gust_admin_http *h)
{
	if (h == NULL)
		return;
	if (h->d)
		MHD_stop_daemon(h->d);
	if (h->token)
		explicit_bzero(h->token, strlen(h->token));
	free(h->token);
	free(h);
}
