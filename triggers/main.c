/* gust-trigger: parse config, build the parts, run the feeds until SIGINT/SIGTERM. */
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gust/daemon.h"
#include "gust/integrity.h"
#include "gust/log.h"
#include "trigger.h"

#define K(f) offsetof(trig_config, f)
const gust_cfg_key trig_config_table[] = {
    {"etcd", GUST_CFG_STR, K(etcd), "http://127.0.0.1:2379", 1, 4096, "GUST_ETCD",
     "etcd endpoints, comma-separated"},
    {"redis", GUST_CFG_STR, K(redis), "127.0.0.1:6379", 1, 1024, "GUST_REDIS",
     "Redis for trigger activation records, and for Redis feeds without a 'redis' parameter"},
    {"id", GUST_CFG_STR, K(id), "", 0, 128, "GUST_TRIGGER_ID",
     "this instance's id (its Redis consumer name too); default trig-<hostname>-<pid>"},
    {"api_host", GUST_CFG_STR, K(api_host), "http://127.0.0.1:3233", 0, 1024, "GUST_API_HOST",
     "__OW_API_HOST given to activations"},
    {"metrics_host", GUST_CFG_STR, K(metrics_host), "127.0.0.1", 1, 64, "GUST_TRIGGER_METRICS_HOST",
     "address for /health and /metrics"},
    {"metrics_port", GUST_CFG_INT, K(metrics_port), "9340", 0, 65535, "GUST_TRIGGER_METRICS_PORT",
     "port for /health and /metrics (0: off)"},
    {"metrics_token_file", GUST_CFG_STR, K(metrics_token_file), "", 0, 4096,
     "GUST_TRIGGER_METRICS_TOKEN_FILE",
     "file holding a bearer token /metrics requires (\"\": /metrics open; /health always is)"},
    {"lease_ttl_s", GUST_CFG_INT, K(lease_ttl_s), "3", 2, 300, "GUST_TRIGGER_LEASE_TTL_S",
     "etcd lease time: the feeds of a dead instance move within about this long"},
    {"max_payload", GUST_CFG_INT, K(max_payload), "1048576", 4096, 33554432,
     "GUST_TRIGGER_MAX_PAYLOAD", "bytes of events in one fire (the activation's params)"},
    {"fires_in_flight", GUST_CFG_INT, K(fires_in_flight), "4", 1, 64,
     "GUST_TRIGGER_FIRES_IN_FLIGHT",
     "fires a Kafka feed keeps in flight to the scheduler (inOrder feeds: 1); offsets are "
     "committed in order"},
    {"ack_timeout_ms", GUST_CFG_INT, K(ack_timeout_ms), "10000", 100, 600000,
     "GUST_TRIGGER_ACK_TIMEOUT_MS",
     "wait this long for the scheduler's acknowledgement before retrying the fire"},
    {"backoff_max_ms", GUST_CFG_INT, K(backoff_max_ms), "2000", 10, 600000,
     "GUST_TRIGGER_BACKOFF_MAX_MS", "longest pause of a pushed-back feed before it retries"},
    {"kafka_fetch_wait_ms", GUST_CFG_INT, K(kafka_fetch_wait_ms), "10", 1, 10000,
     "GUST_TRIGGER_KAFKA_FETCH_WAIT_MS",
     "librdkafka fetch.wait.max.ms (the mock broker answers a waiting fetch only then)"},
    {"kafka_queue_kbytes", GUST_CFG_INT, K(kafka_queue_kbytes), "65536", 1024, 2097151,
     "GUST_TRIGGER_KAFKA_QUEUE_KBYTES",
     "librdkafka queued.max.messages.kbytes: a Kafka feed's prefetch limit (a full queue "
     "stops its fetcher for a second: hold a second of the feed's rate)"},
    {"kafka_queue_messages", GUST_CFG_INT, K(kafka_queue_messages), "1000000", 1000, 10000000,
     "GUST_TRIGGER_KAFKA_QUEUE_MESSAGES",
     "librdkafka queued.min.messages: the same limit in messages"},
    {"schedule_backup_delay_ms", GUST_CFG_INT, K(schedule_backup_delay_ms), "300", 0, 60000,
     "GUST_TRIGGER_SCHEDULE_BACKUP_DELAY_MS",
     "the second instance of a schedule fires a period this late if the first did not"},
    {"record_ttl_s", GUST_CFG_INT, K(record_ttl_s), "86400", 1, 31536000, "GUST_RECORD_TTL_S",
     "lifetime of trigger activation records in Redis"},
    {"records", GUST_CFG_BOOL, K(records), "true", 0, 1, "GUST_TRIGGER_RECORDS",
     "write the trigger's own activation record for each fire"},
    GUST_TRANSPORT_CFG_KEYS(trig_config, tls, "GUST_TRIGGER"),
    {"log_level", GUST_CFG_STR, K(log_level), "info", 1, 16, "GUST_LOG_LEVEL",
     "debug, info, warn or error"},
    GUST_STORES_CFG_KEYS(K, stores),
    GUST_CFG_END,
};

static volatile sig_atomic_t trig_stop_flag;

static void trig_on_signal(int sig)
{
	trig_stop_flag = 1;
}

static int trig_health(void *arg, gust_buf *body)
{
	trig *t = arg;
	char *leader = trig_store_leader(t);
	gust_buf_printf(body,
	                "{\"status\":\"%s\",\"feeds\":%zu,\"id\":", leader ? "ok" : "no scheduler",
	                trig_owner_running(t));
	gust_buf_json_str(body, t->cfg.id, strlen(t->cfg.id));
	gust_buf_puts(body, ",\"scheduler\":");
	if (leader)
		gust_buf_json_str(body, leader, strlen(leader));
	else
		gust_buf_puts(body, "null");
	gust_buf_puts(body, "}");
	free(leader);
	/* Healthy without a scheduler too: the feeds wait (paused) for one. */
	return 0;
}

static void trig_metrics_init(trig *t)
{
	static const char *const srcs[TRIG_NSRC] = {"source=\"kafka\"", "source=\"redis-stream\"",
	                                            "source=\"redis-pubsub\"",
	                                            "source=\"schedule\""};
	for (int i = 0; i < TRIG_NSRC; i++) {
		t->m_events[i] = gust_counter_new("gust_trigger_events_total",
		                                  "events read from feeds", srcs[i]);
		t->m_acked[i] = gust_counter_new(
		    "gust_trigger_events_acked_total",
		    "events acknowledged to their source after the scheduler took them", srcs[i]);
		t->m_dead[i] = gust_counter_new(
		    "gust_trigger_dead_letters_total",
		    "events sent to a dead-letter topic or stream after their attempts", srcs[i]);
	}
	t->m_fires = gust_counter_new("gust_trigger_fires_total", "trigger fires sent", NULL);
	t->m_activations = gust_counter_new("gust_trigger_activations_total",
	                                    "activations acknowledged by the scheduler", NULL);
	t->m_pushback = gust_counter_new(
	    "gust_trigger_pushbacks_total",
	    "fires pushed back (limits, no scheduler) and retried after a pause", NULL);
	t->m_failed = gust_counter_new("gust_trigger_failed_attempts_total",
	                               "fire attempts refused for other reasons", NULL);
	t->m_dropped = gust_counter_new(
	    "gust_trigger_pubsub_dropped_total",
	    "pub/sub messages given up after their attempts (pub/sub is at most once)", NULL);
	t->m_feeds = gust_gauge_new("gust_trigger_feeds", "feeds running in this instance", NULL);
	t->m_paused = gust_gauge_new("gust_trigger_feeds_paused",
	                             "feeds paused because the scheduler pushed back", NULL);
	t->m_kafka_queued = gust_gauge_new("gust_trigger_kafka_queued_messages",
	                                   "messages librdkafka has fetched that the Kafka feeds "
	                                   "have not read (none while paused)",
	                                   NULL);
	t->m_fire_latency =
	    gust_histogram_new("gust_trigger_fire_seconds",
	                       "from sending a fire to the scheduler's acknowledgement", NULL);
}

static void trig_destroy(trig *t)
{
	trig_owner_stop(t);
	gust_admin_http_stop(t->admin);
	trig_store_stop(t);
	if (t->lease)
		gust_etcd_lease_keeper_stop(t->lease, true);
	trig_sched_close(t);
	gust_redis_writer_stop(t->records, 2000);
	gust_secret_stop();
	if (t->etcd)
		gust_etcd_close(t->etcd);
	gust_cfg_free(trig_config_table, &t->cfg);
}

static void trig_on_renew(void *arg, int64_t lease)
{
	trig *t = arg;
	/* The old lease lapsed: our claims are gone and others may run our feeds. */
	atomic_store(&t->lease_lost, true);
}

static int trig_build(trig *t, gust_error **err)
{
	int rv;
	if (t->cfg.id[0] == '\0') {
		char host[64] = "host";
		gethostname(host, sizeof(host) - 1);
		free(t->cfg.id);
		t->cfg.id = gust_xasprintf("trig-%s-%d", host, (int)getpid());
	}
	trig_metrics_init(t);
	if ((rv = gust_stores_apply(&t->cfg.stores, t->cfg.etcd, "trigger", err)) != 0)
		return rv;
	if ((rv = gust_etcd_open(&t->etcd, t->cfg.etcd, err)) != 0)
		return gust_error_wrap(err, "etcd");
	/* Before anything that signs or verifies: see gust/integrity.h. */
	if ((rv = gust_secret_start(t->etcd, err)) != 0)
		return gust_error_wrap(err, "cluster secret (%s)", GUST_SECRET_KEY);
	if (t->cfg.records && (rv = gust_redis_writer_start(t->cfg.redis, &t->records, err)) != 0)
		return gust_error_wrap(err, "redis (activation records)");
	if ((rv = trig_sched_open(t, err)) != 0)
		return rv;
	if ((rv = gust_etcd_lease_keeper_start(t->etcd, t->cfg.lease_ttl_s, trig_on_renew, t,
	                                       &t->lease, err)) != 0)
		return gust_error_wrap(err, "etcd lease");
	if ((rv = trig_store_start(t, err)) != 0)
		return rv;
	if (t->cfg.metrics_port > 0 &&
	    (rv = gust_admin_http_start(t->cfg.metrics_host, (int)t->cfg.metrics_port,
	                                t->cfg.metrics_token_file, trig_health, t, &t->admin,
	                                err)) != 0)
		return gust_error_wrap(err, "metrics");
	return trig_owner_start(t, err);
}

int main(int argc, char **argv)
{
	static trig t;
	gust_error *err = NULL;
	int rv;
	pthread_rwlock_init(&t.lock, NULL);
	pthread_mutex_init(&t.dial_lock, NULL);
	pthread_mutex_init(&t.feeds_lock, NULL);
	rv = gust_daemon_init(trig_config_table, &t.cfg, "gust-trigger", "gust-trigger", argc, argv,
	                      trig_on_signal);
	if (rv != 0)
		return rv < 0 ? 0 : rv;
	if ((rv = trig_build(&t, &err)) != 0) {
		gust_log_error("TRIG-START", "cannot start: %s", gust_error_msg(err));
		gust_error_free(err);
		trig_destroy(&t);
		return 1;
	}
	gust_log_info("TRIG-READY", "gust-trigger %s running", t.cfg.id);
	while (!trig_stop_flag)
		usleep(100 * 1000);
	gust_log_info("TRIG-STOP", "stopping");
	trig_destroy(&t);
	return 0;
}
