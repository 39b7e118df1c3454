/*
 * trigger.h - gust-trigger: runs the feeds attached to triggers.
 *
 * A trigger stored with a "feed" annotation (gust/fire.h) is a feed. Every
 * gust-trigger instance mirrors the triggers, rules, actions and packages
 * from etcd (trig_store.c), registers itself under a lease at
 * /gust/trigger-members/<id>, and runs the feeds that rendezvous hashing over
 * the live members gives it (trig_owner.c). A Kafka or Redis feed runs only
 * where its claim /gust/feed-owners/<ns>/<name> (created under the instance's
 * lease) says; when an instance dies its lease expires, its claims vanish, and
 * the next instance in rendezvous order takes the feed over. A schedule runs on
 * the first two instances in that order and fires each period once, through a
 * compare-and-swap on /gust/schedule-ticks/<ns>/<name>.
 *
 * Each feed has a thread that drives its source through a small table of
 * function pointers (trig_source_ops: Kafka, Redis streams, Redis pub/sub,
 * schedules), like redis's ConnectionType. A batch of events becomes one fire
 * (trig_fire.c): one activation request per active rule, sent to the leading
 * scheduler over nng. The source acknowledges its events (Kafka offsets, XACK)
 * only after the scheduler has acknowledged every request, which it does after
 * journaling them in Redis. A refusal for limits (GUST_EBUSY) or no scheduler
 * (GUST_EUNAVAIL, timeouts) pauses the feed and retries the same fire with the
 * same activation ids: feeds slow down, they never skip.
 */
#ifndef TRIG_TRIGGER_H
#define TRIG_TRIGGER_H

#include <jansson.h>
#include <nng/nng.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "gust/config.h"
#include "gust/stores.h"
#include "gust/etcd.h"
#include "gust/fire.h"
#include "gust/map.h"
#include "gust/metrics.h"
#include "gust/redis.h"
#include "gust/scope.h"
#include "gust/transport.h"

typedef struct trig trig;
typedef struct trig_feed trig_feed;
typedef struct trig_fire trig_fire;
typedef struct trig_source_ops trig_source_ops;

typedef struct trig_config {
	char *etcd;
	char *redis;
	char *id;
	char *api_host;
	char *metrics_host;
	long long metrics_port;
	char *metrics_token_file;
	long long lease_ttl_s;
	long long max_payload;
	long long fires_in_flight;
	long long ack_timeout_ms;
	long long backoff_max_ms;
	long long kafka_fetch_wait_ms;
	long long kafka_queue_kbytes;
	long long kafka_queue_messages;
	long long schedule_backup_delay_ms;
	long long record_ttl_s;
	bool records;
	char *log_level;
	gust_transport_cfg tls;
	gust_stores_cfg stores; /* etcd and Redis credentials */
} trig_config;

extern const gust_cfg_key trig_config_table[];

/* What etcd holds that we mirror; each map: id past the prefix -> json_t*
 * (members and owners: id -> heap string). */
enum trig_kind {
	TRIG_TRIGGERS,
	TRIG_RULES,
	TRIG_ACTIONS,
	TRIG_PACKAGES,
	TRIG_SCHEDULERS,
	TRIG_MEMBERS,
	TRIG_OWNERS,
	TRIG_NKINDS
};

/* A source: each call runs on the feed's own thread. open connects (and
 * joins the group, reclaims pending entries); poll does one round (read a
 * batch, fire it, acknowledge it) and returns within about a second so that a
 * stop is seen; a non-zero return closes and reopens after a backoff. close
 * is safe after a failed open. */
struct trig_source_ops {
	const char *name;
	int (*open)(trig_feed *f, gust_error **err);
	int (*poll)(trig_feed *f);
	void (*close)(trig_feed *f);
};

extern const trig_source_ops trig_kafka_ops;
extern const trig_source_ops trig_stream_ops;
extern const trig_source_ops trig_pubsub_ops;
extern const trig_source_ops trig_schedule_ops;

struct trig_feed {
	trig *t;
	char *key; /* "ns/name" */
	char *ns;
	char *name;
	int64_t rev; /* mod revision of the trigger record it runs */
	gust_feed cfg;
	const trig_source_ops *ops;
	void *state; /* the source's */
	bool backup; /* schedules: the second in rendezvous order (fires late) */
	pthread_t thread;
	_Atomic bool stop;
	int backoff_ms; /* current pause after a refused fire */
};

/* The outcome of sending a fire. */
enum trig_outcome {
	TRIG_OK = 0,     /* every request acknowledged (journaled) */
	TRIG_RETRY = 1,  /* pushed back (limits, no scheduler): pause, retry, never drop */
	TRIG_FAILED = 2, /* refused for another reason: counts one attempt */
};

/* trig_fire.c */
/* A fire of f's trigger with payload (a JSON object: the event batch) over the
 * trigger's own parameters; one request per active rule, built now and kept
 * for retries (same activation ids). blocking: wait for the activations'
 * results (in-order delivery) instead of their acceptance. */
trig_fire *trig_fire_new(trig_feed *f, const char *payload, size_t len, bool blocking);
/* The same, taking payload (heap, freed here) for the fire's params when the
 * trigger has no parameters of its own: a batch of up to max_payload is then
 * not copied. one_line: the payload has no raw newline (the builder knows,
 * e.g. when every value is an escaped string), else it is checked. */
trig_fire *trig_fire_new_take(trig_feed *f, char *payload, size_t len, bool one_line,
                              bool blocking);
/* Sends the requests not yet acknowledged and waits; why (may be NULL) gets
 * the reason of a non-OK outcome. trig_fire_send = trig_fire_start, then
 * trig_fire_wait: a feed may start several fires before it collects the
 * first (each request has its own nng context, so their answers never mix).
 * trig_fire_start on a started fire does nothing; trig_fire_wait collects
 * every started request, so a fire is never left with sends under way. */
int trig_fire_send(trig_fire *x, char *why, size_t whylen);
void trig_fire_start(trig_fire *x);
int trig_fire_wait(trig_fire *x, char *why, size_t whylen);
/* Writes the trigger's activation record (if it caused anything) and frees x. */
void trig_fire_free(trig_fire *x);
size_t trig_fire_count(trig_fire *x); /* requests (active rules) */

/* trig_feed.c: the feed thread around a source */
int trig_feed_start(trig *t, const char *key, json_t *trigger, int64_t rev, bool backup,
                    trig_feed **out, gust_error **err);
/* Signals the thread, joins it, frees f. */
void trig_feed_stop(trig_feed *f);
/* Sleeps ms in slices, returning early (false) when the feed is told to stop. */
bool trig_feed_sleep(trig_feed *f, int ms);
/* After a pushed-back or failed fire: sleeps the next backoff (doubling up to
 * backoff_max_ms); trig_feed_backoff_reset after a success. */
bool trig_feed_backoff(trig_feed *f);
void trig_feed_backoff_reset(trig_feed *f);
/* Where a feed is opened (a record may predate the gateway's checks, a grant
 * may have been revoked since): on the cluster's Redis, a connection as the
 * namespace's feed user after checking every name is in its keyspace;
 * elsewhere the operator's policy (*pol, with the cluster's own addresses
 * marked) allows the target and then every address connected to.
 * GUST_EPERM when refused. */
int trig_feed_redis(trig_feed *f, int timeout_ms, redisContext **out, gust_error **err);
int trig_feed_policy(trig_feed *f, struct gust_policy **pol, gust_error **err);
/* librdkafka's connect_cb with a gust_policy as opaque. */
int trig_feed_kafka_connect(int fd, const struct sockaddr *addr, int addrlen, const char *id,
                            void *opaque);

/* trig_store.c: etcd mirrors */
int trig_store_start(trig *t, gust_error **err);
void trig_store_stop(trig *t);
/* A new reference to the record of kind with id, or NULL. */
json_t *trig_store_get(trig *t, int kind, const char *id);
/* The rule records of namespace ns (new references); free with trig_store_list_free. */
json_t **trig_store_rules(trig *t, const char *ns, size_t *n);
void trig_store_list_free(json_t **v, size_t n);
/* The leading scheduler's address (heap) or NULL. */
char *trig_store_leader(trig *t);

/* trig_owner.c: membership, claims and the feeds running here */
int trig_owner_start(trig *t, gust_error **err);
void trig_owner_stop(trig *t);
size_t trig_owner_running(trig *t);

/* trig_sched.c: the nng socket to the leading scheduler */
int trig_sched_open(trig *t, gust_error **err);
/* Dials the leader when it changed. */
void trig_sched_sync(trig *t);
void trig_sched_close(trig *t);

enum { TRIG_SRC_KAFKA, TRIG_SRC_STREAM, TRIG_SRC_PUBSUB, TRIG_SRC_SCHEDULE, TRIG_NSRC };

struct trig {
	trig_config cfg;
	gust_etcd *etcd;
	gust_etcd_lease_keeper *lease;
	/* mirrors, under lock */
	pthread_rwlock_t lock;
	gust_map maps[TRIG_NKINDS];
	gust_etcd_watch *watches[TRIG_NKINDS];
	_Atomic unsigned changes; /* bumped by every mirror change */
	/* the scheduler */
	gust_transport *transport; /* mutual TLS to it */
	nng_socket sched;
	pthread_mutex_t dial_lock;
	char *dialed; /* address dialed, or NULL */
	nng_dialer dialer;
	/* owner thread */
	pthread_t owner_thread;
	pthread_mutex_t feeds_lock;
	gust_map feeds; /* "ns/name" -> trig_feed* */
	gust_map
	    refused; /* "ns/name" -> why (heap): a stored feed outside its keyspace, logged once */
	_Atomic bool lease_lost;
	_Atomic bool stopping;
	gust_redis_writer *records;
	gust_admin_http *admin;
	/* metrics */
	gust_metric *m_events[TRIG_NSRC];
	gust_metric *m_acked[TRIG_NSRC];
	gust_metric *m_dead[TRIG_NSRC];
	gust_metric *m_fires;
	gust_metric *m_activations;
	gust_metric *m_pushback;
	gust_metric *m_failed;
	gust_metric *m_dropped;
	gust_metric *m_feeds;
	gust_metric *m_paused;
	gust_metric *m_kafka_queued;
	gust_metric *m_fire_latency;
};

/* The metrics index of a feed's source. */
int trig_src(const trig_feed *f);

#endif
