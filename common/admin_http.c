/* admin_http.c - GET /health and GET /metrics on libmicrohttpd, for the daemons
 * whose main protocol is nng. One internal polling thread is plenty. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <string.h>

#include "gust/log.h"
#include "gust/metrics.h"

struct gust_admin_http {
	struct MHD_Daemon *d;
	gust_health_fn health;
	void *arg;
};

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

int gust_admin_http_start(const char *host, int port, gust_health_fn health, void *arg,
			  gust_admin_http **hp, gust_error **err)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return gust_error_set(err, GUST_EINVAL, "metrics host '%s' is not an IPv4 address",
				      host);
	gust_admin_http *h = gust_xcalloc(1, sizeof(*h));
	h->health = health;
	h->arg = arg;
	h->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL, (uint16_t)port,
				NULL, NULL, admin_handler, h, MHD_OPTION_SOCK_ADDR, &sa,
				MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
	if (h->d == NULL) {
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
	free(h);
}
