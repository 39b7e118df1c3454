/* gust-gateway: parse config, build the parts, serve until SIGINT/SIGTERM. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gateway.h"
#include "gust/daemon.h"
#include "gust/integrity.h"
#include "gust/log.h"
#include "gust/msg.h"
#include "gust/redis.h"

#define K(f) offsetof(gw_config, f)
const gust_cfg_key gw_config_table[] = {
    {"host", GUST_CFG_STR, K(host), "127.0.0.1", 0, 64, "GUST_GATEWAY_HOST",
     "address to serve HTTP on"},
    {"port", GUST_CFG_INT, K(port), "3233", 1, 65535, "GUST_GATEWAY_PORT", "HTTP port"},
    {"threads", GUST_CFG_INT, K(threads), "2", 1, 256, "GUST_GATEWAY_THREADS",
     "HTTP worker threads (epoll each)"},
    {"etcd", GUST_CFG_STR, K(etcd), "http://127.0.0.1:2379", 0, 4096, "GUST_ETCD",
     "etcd endpoints, comma-separated"},
    {"redis", GUST_CFG_STR, K(redis), "127.0.0.1:6379", 0, 1024, "GUST_REDIS",
     "Redis address (host:port or unix:/path)"},
    {"api_host", GUST_CFG_STR, K(api_host), "", 0, 1024, "GUST_API_HOST",
     "public URL of the API (__OW_API_HOST); default http://host:port"},
    {"blocking_timeout_ms", GUST_CFG_INT, K(blocking_timeout_ms), "60000", 100, 600000,
     "GUST_GATEWAY_BLOCKING_TIMEOUT_MS", "how long a blocking invoke waits before answering 202"},
    {"max_payload", GUST_CFG_INT, K(max_payload), "1048576", 1024, 1073741824,
     "GUST_GATEWAY_MAX_PAYLOAD", "largest request body, except code uploads (bytes)"},
    {"max_jobs", GUST_CFG_INT, K(max_jobs), "256", 1, 100000, "GUST_GATEWAY_MAX_JOBS",
     "sequences and trigger fires run at once by this gateway (more get 429)"},
    {"max_code", GUST_CFG_INT, K(max_code), "16777216", 1024, 1073741824, "GUST_GATEWAY_MAX_CODE",
     "largest action create/update body (bytes)"},
    {"record_ttl_s", GUST_CFG_INT, K(record_ttl_s), "86400", 10, 31536000, "GUST_RECORD_TTL_S",
     "how long activation records written by the gateway (sequences, triggers) are kept"},
    {"header_timeout_s", GUST_CFG_INT, K(header_timeout_s), "10", 1, 3600,
     "GUST_GATEWAY_HEADER_TIMEOUT_S",
     "a request head must be complete this long after the connection opens (or the previous "
     "answer's idle time ends); slower ones are closed"},
    {"body_timeout_s", GUST_CFG_INT, K(body_timeout_s), "120", 1, 3600,
     "GUST_GATEWAY_BODY_TIMEOUT_S",
     "a request body must be complete this long after its head; slower ones are closed"},
    {"idle_timeout_s", GUST_CFG_INT, K(idle_timeout_s), "120", 1, 3600,
     "GUST_GATEWAY_IDLE_TIMEOUT_S", "a connection with no traffic this long is closed"},
    {"ns_max_entities", GUST_CFG_INT, K(ns_max_entities), "1000", 1, 100000000,
     "GUST_GATEWAY_NS_MAX_ENTITIES",
     "actions, packages, triggers and rules a namespace may hold (its limit maxEntities "
     "overrides)"},
    {"ns_max_bytes", GUST_CFG_INT, K(ns_max_bytes), "268435456", 1024, 1099511627776LL,
     "GUST_GATEWAY_NS_MAX_BYTES",
     "bytes of records and code a namespace may store in etcd (its limit maxEntityBytes "
     "overrides)"},
    {"tls_cert_file", GUST_CFG_STR, K(tls_cert_file), "", 0, 4096, "GUST_GATEWAY_TLS_CERT_FILE",
     "PEM certificate chain (leaf first) to serve HTTPS with; \"\": plain HTTP. Reread on "
     "SIGHUP"},
    {"tls_key_file", GUST_CFG_STR, K(tls_key_file), "", 0, 4096, "GUST_GATEWAY_TLS_KEY_FILE",
     "PEM private key of tls_cert_file (unencrypted; keep it 0600). Reread on SIGHUP"},
    {"metrics_token_file", GUST_CFG_STR, K(metrics_token_file), "", 0, 4096,
     "GUST_GATEWAY_METRICS_TOKEN_FILE",
     "file holding a bearer token GET /metrics requires (\"\": /metrics open; /health always "
     "is)"},
    {"log_level", GUST_CFG_STR, K(log_level), "info", 0, 16, "GUST_LOG_LEVEL",
     "debug, info, warn or error"},
    {"id", GUST_CFG_STR, K(id), "gateway0", 1, 128, "GUST_GATEWAY_ID",
     "this gateway's name in logs"},
    GUST_TRANSPORT_CFG_KEYS(gw_config, tls, "GUST_GATEWAY"),
    GUST_STORES_CFG_KEYS(K, stores),
    GUST_CFG_END,
};

static volatile sig_atomic_t gw_stop, gw_reload;

static void on_signal(int sig)
{
	if (sig == SIGHUP)
		gw_reload = 1;
	else
		gw_stop = 1;
}

static int gw_build(gw *g, gust_error **err)
{
	int rv;
	if ((g->cfg.tls_cert_file[0] == '\0') != (g->cfg.tls_key_file[0] == '\0'))
		return gust_error_set(err, GUST_EINVAL,
		                      "config keys 'tls_cert_file' and 'tls_key_file' go together: "
		                      "set both (HTTPS) or neither (plain HTTP)");
	if (g->cfg.api_host[0] == '\0') {
		free(g->cfg.api_host);
		g->cfg.api_host = gust_xasprintf("%s://%s:%lld", gw_tls_on(g) ? "https" : "http",
		                                 g->cfg.host, g->cfg.port);
	}
	if (g->cfg.metrics_token_file[0] != '\0' &&
	    (rv = gust_admin_token_load(g->cfg.metrics_token_file, &g->metrics_token, err)) != 0)
		return gust_error_wrap(err, "config key 'metrics_token_file'");
	pthread_mutex_init(&g->dial_lock, NULL);
	pthread_mutex_init(&g->redis_lock, NULL);
	g->m_requests =
	    gust_counter_new("gust_http_requests_total", "HTTP requests answered", NULL);
	g->m_latency =
	    gust_histogram_new("gust_http_request_duration_seconds", "HTTP request latency", NULL);
	g->m_errors = gust_counter_new("gust_http_errors_total", "HTTP error answers", NULL);
	static const char *const st[] = {"status=\"success\"", "status=\"application_error\"",
	                                 "status=\"developer_error\"", "status=\"whisk_error\""};
	for (int i = 0; i < 4; i++)
		g->m_act[i] = gust_counter_new("gust_activations_total",
		                               "activations answered by status", st[i]);
	if ((rv = gust_transport_open(&g->cfg.tls, GUST_ROLE_GATEWAY, GUST_ROLE_SCHEDULER,
	                              &g->transport, err)) != 0)
		return rv;
	if ((rv = gust_nng_req_open(&g->sched, (int)g->cfg.blocking_timeout_ms)) != 0 ||
	    (rv = gust_nng_req_failover(g->sched)) != 0)
		return gust_error_set(err, rv, "nng req socket: %s", gust_strerror(rv));
	if ((rv = gust_stores_apply(&g->cfg.stores, g->cfg.etcd, "gateway", err)) != 0)
		return rv;
	if ((rv = gust_etcd_open(&g->etcd, g->cfg.etcd, err)) != 0)
		return gust_error_wrap(err, "config key 'etcd'");
	/* Before anything that signs or verifies: see gust/integrity.h. */
	if ((rv = gust_secret_start(g->etcd, err)) != 0)
		return gust_error_wrap(err, "cluster secret (%s)", GUST_SECRET_KEY);
	if ((rv = gust_redis_writer_start(g->cfg.redis, &g->records, err)) != 0)
		return gust_error_wrap(err, "config key 'redis'");
	if ((rv = gw_cache_start(g, err)) != 0)
		return rv;
	if ((rv = gw_http_start(g, err)) != 0)
		return rv;
	return 0;
}

static int drop_dialer(void *arg, const char *key, void *value)
{
	free(value); /* the dialer itself closes with the socket */
	return 1;
}

static void gw_destroy(gw *g)
{
	/* Closing the scheduler socket fails every request waiting on it, which
	 * answers (503) and resumes its connection; MHD must not be stopped while
	 * any is still suspended. Sequences wait on their own calls, which fail
	 * the same way. */
	nng_close(g->sched);
	for (int i = 0; i < 500 && atomic_load(&g->suspended) > 0; i++)
		usleep(10 * 1000);
	usleep(100 * 1000); /* let MHD's threads take the resumed connections in */
	gw_http_stop(g);
	gw_cache_stop(g);
	gust_map_filter(&g->dialers, drop_dialer, NULL);
	gust_map_free(&g->dialers);
	gust_secret_stop();
	gw_tls_stop(g);
	if (g->metrics_token)
		explicit_bzero(g->metrics_token, strlen(g->metrics_token));
	free(g->metrics_token);
	if (g->etcd)
		gust_etcd_close(g->etcd);
	if (g->redis)
		redisFree(g->redis);
	gust_redis_writer_stop(g->records, 2000);
	gust_transport_close(g->transport); /* after the socket: each dialer held its config */
	gust_cfg_free(gw_config_table, &g->cfg);
}

int main(int argc, char **argv)
{
	gw g = {0};
	gust_error *err = NULL;
	int rv = gust_daemon_init(gw_config_table, &g.cfg, "gust-gateway", "gateway", argc, argv,
	                          on_signal);
	if (rv != 0)
		return rv < 0 ? 0 : rv;
	/* SIGHUP rereads the certificate and key; installed before anything
	 * starts, so that an early one does not end the process (its default). */
	struct sigaction sa = {.sa_handler = on_signal};
	sigaction(SIGHUP, &sa, NULL);
	if ((rv = gw_build(&g, &err)) != 0) {
		gust_log_error("GW-START", "%s", gust_error_msg(err));
		gust_error_free(err);
		gw_destroy(&g);
		return 1;
	}
	gust_log_info("GW-READY", "serving %s://%s:%lld (etcd %s)",
	              gw_tls_on(&g) ? "https" : "http", g.cfg.host, g.cfg.port, g.cfg.etcd);
	/* The signal may land on any thread: the flags are polled, not only
	 * checked when pause returns. */
	while (!gw_stop) {
		if (gw_reload) {
			gw_reload = 0;
			if (gw_tls_on(&g))
				gw_tls_reload(&g);
			else
				gust_log_info("GW-HUP",
				              "SIGHUP: no TLS configured, nothing to reload");
		}
		struct timespec ts = {.tv_sec = 0, .tv_nsec = 200 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	gust_log_info("GW-STOP", "stopping");
	gw_destroy(&g);
	return 0;
}
