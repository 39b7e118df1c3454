/* gust-scheduler: parse config, build the parts, serve until SIGINT/SIGTERM. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gust/daemon.h"
#include "gust/integrity.h"
#include "gust/log.h"
#include "scheduler.h"

#define K(f) offsetof(sched_config, f)
const gust_cfg_key sched_config_table[] = {
    {"listen", GUST_CFG_STR, K(listen), "tls+tcp://127.0.0.1:0", 1, 1024, "GUST_SCHEDULER_LISTEN",
     "nng URL to take activations on from gateways and trigger daemons (port 0: any free "
     "port)"},
    {"advertise", GUST_CFG_STR, K(advertise), "", 0, 1024, "GUST_SCHEDULER_ADVERTISE",
     "URL published in etcd for gateways; default: the bound listen URL"},
    {"status_listen", GUST_CFG_STR, K(status_listen), "tls+tcp://127.0.0.1:0", 1, 1024,
     "GUST_SCHEDULER_STATUS_LISTEN", "nng URL on which invokers send their status"},
    GUST_TRANSPORT_CFG_KEYS(sched_config, tls, "GUST_SCHEDULER"),
    {"etcd", GUST_CFG_STR, K(etcd), "http://127.0.0.1:2379", 1, 4096, "GUST_ETCD",
     "etcd endpoints, comma-separated"},
    {"redis", GUST_CFG_STR, K(redis), "127.0.0.1:6379", 1, 1024, "GUST_REDIS",
     "Redis holding the journal of accepted activations (host:port or unix:/path)"},
    {"id", GUST_CFG_STR, K(id), "", 0, 128, "GUST_SCHEDULER_ID",
     "this scheduler's id; default sched-<hostname>-<pid>"},
    {"metrics_host", GUST_CFG_STR, K(metrics_host), "127.0.0.1", 1, 64,
     "GUST_SCHEDULER_METRICS_HOST", "address for /health and /metrics"},
    {"metrics_port", GUST_CFG_INT, K(metrics_port), "9320", 0, 65535, "GUST_SCHEDULER_METRICS_PORT",
     "port for /health and /metrics (0: off)"},
    {"metrics_token_file", GUST_CFG_STR, K(metrics_token_file), "", 0, 4096,
     "GUST_SCHEDULER_METRICS_TOKEN_FILE",
     "file holding a bearer token /metrics requires (\"\": /metrics open; /health always is)"},
    {"lease_ttl_s", GUST_CFG_INT, K(lease_ttl_s), "2", 2, 300, "GUST_SCHEDULER_LEASE_TTL_S",
     "etcd lease time: a dead leader is replaced within about this long"},
    {"workers", GUST_CFG_INT, K(workers), "1024", 1, 65536, "GUST_SCHEDULER_WORKERS",
     "requests taken at once (nng contexts)"},
    {"max_action_sandboxes", GUST_CFG_INT, K(max_action_sandboxes), "64", 1, 100000,
     "GUST_SCHEDULER_MAX_ACTION_SANDBOXES",
     "activations of one action version running at once (the rest queue)"},
    {"default_concurrent", GUST_CFG_INT, K(default_concurrent), "30", 1, 10000000,
     "GUST_DEFAULT_CONCURRENT",
     "a namespace's concurrent activations unless its record says otherwise (OpenWhisk: 30)"},
    {"default_per_minute", GUST_CFG_INT, K(default_per_minute), "60", 1, 100000000,
     "GUST_DEFAULT_PER_MINUTE",
     "a namespace's invocations per minute unless its record says otherwise (OpenWhisk: 60)"},
    {"status_timeout_ms", GUST_CFG_INT, K(status_timeout_ms), "2500", 500, 600000,
     "GUST_SCHEDULER_STATUS_TIMEOUT_MS",
     "an invoker whose status stops arriving this long leaves placement"},
    {"max_attempts", GUST_CFG_INT, K(max_attempts), "5", 1, 1000, "GUST_SCHEDULER_MAX_ATTEMPTS",
     "tries of a journaled activation before it waits for the periodic replay"},
    {"overcommit_pct", GUST_CFG_INT, K(overcommit_pct), "200", 100, 1000,
     "GUST_SCHEDULER_OVERCOMMIT_PCT",
     "when every invoker is full, each may hold this % of its memory in flight (the rest "
     "queue here)"},
    {"etcd_compact_period_s", GUST_CFG_INT, K(etcd_compact_period_s), "300", 0, 86400,
     "GUST_SCHEDULER_ETCD_COMPACT_PERIOD_S",
     "how often the leader compacts etcd's history, so deleted entities free space (0: "
     "never; then the operator must compact)"},
    {"etcd_compact_retention_s", GUST_CFG_INT, K(etcd_compact_retention_s), "600", 1, 604800,
     "GUST_SCHEDULER_ETCD_COMPACT_RETENTION_S",
     "history kept by a compaction: it goes to the revision etcd had this long ago"},
    {"log_level", GUST_CFG_STR, K(log_level), "info", 1, 16, "GUST_LOG_LEVEL",
     "debug, info, warn or error"},
    GUST_STORES_CFG_KEYS(K, stores),
    GUST_CFG_END,
};

static volatile sig_atomic_t sched_stop;

static void on_signal(int sig)
{
	sched_stop = 1;
}

static int sched_register(sched *s, int64_t lease, gust_error **err)
{
	cleanup_free char *key = gust_xasprintf("/gust/scheduler-members/%s", s->cfg.id);
	gust_buf v = {0};
	gust_buf_puts(&v, "{\"id\":");
	gust_buf_json_str(&v, s->cfg.id, strlen(s->cfg.id));
	gust_buf_puts(&v, ",\"address\":");
	gust_buf_json_str(&v, s->address, strlen(s->address));
	gust_buf_puts(&v, "}");
	int rv = gust_etcd_put(s->etcd, key, v.data, v.len, lease, NULL, err);
	gust_buf_free(&v);
	return rv;
}

static void sched_on_renew(void *arg, int64_t lease)
{
	sched *s = arg;
	gust_error *e = NULL;
	/* The old lease lapsed: whatever we led under it is gone. */
	atomic_store(&s->leader, false);
	gust_gauge_set(s->m_leader, 0);
	if (sched_register(s, lease, &e) != 0)
		gust_log_error("SCHED-REGISTER", "re-registering: %s", gust_error_msg(e));
	gust_error_free(e);
}

static int sched_health(void *arg, gust_buf *body)
{
	sched *s = arg;
	pthread_rwlock_rdlock(&s->inv_lock);
	size_t n = s->ninvokers;
	pthread_rwlock_unlock(&s->inv_lock);
	bool leader = sched_is_leader(s);
	gust_buf_printf(body, "{\"status\":\"%s\",\"invokers\":%zu,\"leader\":%s,\"id\":",
	                n ? "ok" : "no invokers", n, leader ? "true" : "false");
	gust_buf_json_str(body, s->cfg.id, strlen(s->cfg.id));
	gust_buf_puts(body, "}");
	return n ? 0 : GUST_EUNAVAIL;
}

static int sched_listen(sched *s, gust_error **err)
{
	int rv;
	nng_listener l;
	if ((rv = nng_rep0_open(&s->rep)) != 0)
		return gust_error_set(err, GUST_EIO, "nng rep socket: %s", nng_strerror(rv));
	nng_socket_set_size(s->rep, NNG_OPT_RECVMAXSZ, 64u << 20);
	/* Activations come from gateways and trigger daemons, no one else. */
	if ((rv = gust_transport_listen(s->transport, s->rep, s->cfg.listen,
	                                GUST_ROLE_GATEWAY | GUST_ROLE_TRIGGER, "listen", &l,
	                                err)) != 0)
		return rv;
	s->address = gust_nng_public_url(l, s->cfg.listen, s->cfg.advertise);
	return 0;
}

/* Periodic work, serverCron-style: silent invokers out every 100 ms; the
 * journal's orphans replayed and the queues pumped every second. */
static void *sched_cron(void *arg)
{
	sched *s = arg;
	unsigned tick = 0;
	while (!atomic_load(&s->stopping)) {
		usleep(100 * 1000);
		sched_members_check(s);
		sched_members_reap(s);
		if (++tick % 10 == 0) {
			sched_journal_forget(s, 10000);
			if (sched_is_leader(s))
				sched_journal_recover(s);
			sched_pump(s);
		}
	}
	return NULL;
}

static int sched_build(sched *s, gust_error **err)
{
	int rv;
	if (s->cfg.id[0] == '\0') {
		char host[64] = "host";
		gethostname(host, sizeof(host) - 1);
		free(s->cfg.id);
		s->cfg.id = gust_xasprintf("sched-%s-%d", host, (int)getpid());
	}
	s->m_invokers = gust_gauge_new("gust_scheduler_invokers", "invokers in placement", NULL);
	s->m_placed = gust_counter_new("gust_scheduler_placed_total", "activations placed", NULL);
	s->m_queued = gust_gauge_new("gust_scheduler_queued", "activations waiting for room", NULL);
	s->m_refused = gust_counter_new("gust_scheduler_refused_total",
	                                "activations refused over a namespace limit", NULL);
	s->m_failed = gust_counter_new("gust_scheduler_forward_failures_total",
	                               "activations whose invoker failed", NULL);
	s->m_retried = gust_counter_new("gust_scheduler_retries_total",
	                                "journaled activations sent again after a failure", NULL);
	s->m_malformed =
	    gust_counter_new("gust_scheduler_malformed_total", "malformed requests refused", NULL);
	s->m_journaled = gust_counter_new("gust_scheduler_journaled_total",
	                                  "activations appended to the journal", NULL);
	s->m_replayed = gust_counter_new("gust_scheduler_replayed_total",
	                                 "unfinished journal entries replayed", NULL);
	s->m_req_rejected =
	    gust_counter_new("gust_scheduler_requests_rejected_total",
	                     "activation requests refused: integrity check (MAC) failed", NULL);
	s->m_journal_rejected = gust_counter_new(
	    "gust_scheduler_journal_rejected_total",
	    "journal entries dropped, never run: missing, wrong or foreign MAC", NULL);
	s->m_leader = gust_gauge_new("gust_scheduler_leader", "1 while this scheduler leads", NULL);
	s->m_compactions = gust_counter_new("gust_scheduler_etcd_compactions_total",
	                                    "etcd history compactions done by this leader", NULL);
	s->m_latency = gust_histogram_new("gust_scheduler_activation_duration_seconds",
	                                  "from admission to the invoker's answer", NULL);
	pthread_rwlock_init(&s->inv_lock, NULL);
	sched_queue_init(s);
	if ((rv = gust_transport_open(&s->cfg.tls, GUST_ROLE_SCHEDULER,
	                              GUST_ROLE_GATEWAY | GUST_ROLE_TRIGGER | GUST_ROLE_INVOKER,
	                              &s->transport, err)) != 0)
		return rv;
	if ((rv = gust_stores_apply(&s->cfg.stores, s->cfg.etcd, "scheduler", err)) != 0)
		return rv;
	if ((rv = gust_etcd_open(&s->etcd, s->cfg.etcd, err)) != 0)
		return gust_error_wrap(err, "config key 'etcd'");
	/* Before anything that signs or verifies: see gust/integrity.h. */
	if ((rv = gust_secret_start(s->etcd, err)) != 0)
		return gust_error_wrap(err, "cluster secret (%s)", GUST_SECRET_KEY);
	if ((rv = sched_journal_start(s, err)) != 0)
		return rv;
	if ((rv = sched_listen(s, err)) != 0)
		return rv;
	if ((rv = sched_status_start(s, err)) != 0)
		return rv;
	if ((rv = sched_ns_start(s, err)) != 0)
		return gust_error_wrap(err, "watching namespaces");
	if ((rv = sched_members_start(s, err)) != 0)
		return gust_error_wrap(err, "watching invokers");
	if ((rv = sched_workers_start(s, err)) != 0)
		return rv;
	if (s->cfg.metrics_port > 0 &&
	    (rv = gust_admin_http_start(s->cfg.metrics_host, (int)s->cfg.metrics_port,
	                                s->cfg.metrics_token_file, sched_health, s, &s->admin,
	                                err)) != 0)
		return gust_error_wrap(err, "config key 'metrics_port'");
	if ((rv = gust_etcd_lease_keeper_start(s->etcd, s->cfg.lease_ttl_s, sched_on_renew, s,
	                                       &s->lease, err)) != 0)
		return gust_error_wrap(err, "etcd lease");
	if ((rv = sched_register(s, gust_etcd_lease_keeper_id(s->lease), err)) != 0)
		return gust_error_wrap(err, "registering in etcd");
	if (pthread_create(&s->cron, NULL, sched_cron, s) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the cron thread");
	/* Campaign last: gateways send as soon as they see us lead. */
	return sched_leader_start(s, err);
}

static void sched_destroy(sched *s)
{
	sched_leader_stop(s);
	atomic_store(&s->stopping, true);
	if (s->cron)
		pthread_join(s->cron, NULL);
	if (s->lease)
		gust_etcd_lease_keeper_stop(s->lease, true);
	gust_admin_http_stop(s->admin);
	nng_close(s->rep);
	sched_workers_stop(s);
	sched_members_stop(s);
	sched_status_stop(s);
	sched_journal_stop(s);
	sched_queue_fini(s);
	sched_ns_stop(s);
	gust_secret_stop();
	if (s->etcd)
		gust_etcd_close(s->etcd);
	free(s->address);
	gust_transport_close(s->transport); /* after the sockets: each held its own config */
	gust_cfg_free(sched_config_table, &s->cfg);
}

int main(int argc, char **argv)
{
	sched s = {0};
	gust_error *err = NULL;
	int rv = gust_daemon_init(sched_config_table, &s.cfg, "gust-scheduler", "scheduler", argc,
	                          argv, on_signal);
	if (rv != 0)
		return rv < 0 ? 0 : rv;
	if ((rv = sched_build(&s, &err)) != 0) {
		gust_log_error("SCHED-START", "%s", gust_error_msg(err));
		gust_error_free(err);
		sched_destroy(&s);
		return 1;
	}
	gust_log_info("SCHED-READY", "scheduler %s taking activations at %s", s.cfg.id, s.address);
	while (!sched_stop)
		pause();
	gust_log_info("SCHED-STOP", "stopping");
	sched_destroy(&s);
	return 0;
}
