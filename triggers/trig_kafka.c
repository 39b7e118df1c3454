/* trig_kafka.c - the Kafka source (librdkafka).
 *
 * Partitions: the feed's etcd claim already makes this instance its only
 * consumer, so it assigns itself every partition of the topic (no group
 * rebalance, which would wait out the dead consumer's session timeout) and
 * keeps its offsets in the consumer group groupId: a new owner resumes from
 * the last committed offset. Messages are read in batches (batchSize or
 * maxWaitMs, whichever comes first) and fired as one
 * {"messages": [{"topic", "partition", "offset", "key", "value"}]} up to the
 * payload limit; what does not fit waits for the next fire. Up to
 * fires_in_flight fires (1 with inOrder) are sent before the first is
 * collected, and they are collected in order: the offsets after a fire are
 * committed only when it and every fire before it were acknowledged, so a
 * commit never passes an event the scheduler has not taken. When it pushes
 * back, the feed pauses its partitions (rd_kafka_pause_partitions: the
 * fetcher stops; gust_trigger_feeds_paused), the fires in flight are
 * collected, and the unacknowledged ones are retried with their activation
 * ids after a pause; the partitions resume, at the first message not yet
 * read, with the first acknowledged retry (see kafka_pause for the two
 * librdkafka 2.0.2 traps this avoids). A fire refused for
 * another reason maxAttempts times goes to the dead-letter topic (a log line
 * and gust_trigger_dead_letters_total), and only then are its offsets
 * committed. */
#include <librdkafka/rdkafka.h>
#include <string.h>

#include "gust/json.h"
#include "gust/log.h"
#include "trigger.h"

#define KAFKA_WINDOW_MAX 64

/* A fire of consecutive held messages; fire == NULL: one message larger than
 * the payload limit, bound for the dead-letter topic. */
typedef struct kafka_batch {
	trig_fire *fire;
	size_t n;
	int attempts;
	bool started;
} kafka_batch;

typedef struct kafka_state {
	rd_kafka_t *rk;
	rd_kafka_queue_t *q;
	rd_kafka_queue_t *cq;                   /* results of the asynchronous commits */
	rd_kafka_topic_partition_list_t *parts; /* all of the topic's, assigned */
	int32_t max_part;                       /* the highest partition id in parts */
	rd_kafka_t *dlq;
	gust_policy *pol;          /* the connect callback's: freed after rk and dlq */
	rd_kafka_message_t **msgs; /* held, in consumption order */
	size_t n, cap;
	size_t nfired;                   /* msgs[0..nfired) are in batches */
	kafka_batch b[KAFKA_WINDOW_MAX]; /* in order; b[0] is collected first */
	size_t nb;
	bool paused;
	int64_t queued;    /* last rd_kafka_queue_length(q) added to m_kafka_queued */
	uint64_t first_ms; /* when msgs[nfired] was read */
	int dlq_failed;
} kafka_state;

static void kafka_commit_results(trig_feed *f, kafka_state *s);

/* A key or value as JSON: null, a string, base64, or (JSON data) itself. */
static void kafka_json_bytes(gust_buf *b, const void *p, size_t n, bool binary, bool json)
{
	if (p == NULL) {
		gust_buf_puts(b, "null");
		return;
	}
	/* valid JSON travels as its own bytes, never re-encoded (and never
	 * loaded: a check, not a jansson tree per message). "\u0000", which
	 * jansson refuses where the params are loaded again, goes as a
	 * string. */
	if (json && n && gust_json_check(p, n) != GUST_JSON_INVALID &&
	    memmem(p, n, "\\u0000", 6) == NULL) {
		gust_buf_append(b, p, n);
		return;
	}
	/* A string when it is well-formed UTF-8 (one pass: escaped as it is
	 * checked), else base64. */
	if (!binary && gust_buf_json_str_utf8(b, p, n))
		return;
	char *s = gust_b64_encode(p, n);
	gust_buf_printf(b, "\"%s\"", s);
	free(s);
}

static void kafka_close(trig_feed *f)
{
	kafka_state *s = f->state;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nb; i++)
		trig_fire_free(s->b[i].fire);
	for (size_t i = 0; i < s->n; i++)
		rd_kafka_message_destroy(s->msgs[i]);
	free(s->msgs);
	gust_gauge_add(f->t->m_kafka_queued, -s->queued);
	if (s->q)
		rd_kafka_queue_destroy(s->q);
	/* Before rd_kafka_destroy: a partition list that librdkafka has
	 * resolved holds a reference to each partition, and the handle's
	 * broker threads wait for those forever (see kafka_pause). */
	if (s->parts)
		rd_kafka_topic_partition_list_destroy(s->parts);
	if (s->rk) {
		if (s->paused) {
			gust_gauge_add(f->t->m_paused, -1);
			s->paused = false;
		}
		rd_kafka_assign(s->rk, NULL);
		rd_kafka_consumer_close(s->rk); /* waits for the commits in flight */
		kafka_commit_results(f, s);
		if (s->cq)
			rd_kafka_queue_destroy(s->cq);
		rd_kafka_destroy_flags(s->rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
	}
	if (s->dlq) {
		rd_kafka_flush(s->dlq, 2000);
		rd_kafka_destroy(s->dlq);
	}
	gust_policy_free(s->pol);
	free(s);
	f->state = NULL;
}

static int kafka_set(rd_kafka_conf_t *conf, const char *k, const char *v, gust_error **err)
{
	char errstr[256];
	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK)
		return gust_error_set(err, GUST_EINVAL, "kafka %s: %s", k, errstr);
	return 0;
}

static int kafka_open(trig_feed *f, gust_error **err)
{
	kafka_state *s = gust_xcalloc(1, sizeof(*s));
	f->state = s;
	char errstr[512], wait[32], qkb[32], qmsgs[32];
	snprintf(wait, sizeof(wait), "%lld", f->t->cfg.kafka_fetch_wait_ms);
	snprintf(qkb, sizeof(qkb), "%lld", f->t->cfg.kafka_queue_kbytes);
	snprintf(qmsgs, sizeof(qmsgs), "%lld", f->t->cfg.kafka_queue_messages);
	int rv = trig_feed_policy(f, &s->pol, err);
	if (rv != 0)
		return rv;
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if ((rv = kafka_set(conf, "bootstrap.servers", f->cfg.brokers, err)) != 0 ||
	    (rv = kafka_set(conf, "group.id", f->cfg.group, err)) != 0 ||
	    (rv = kafka_set(conf, "enable.auto.commit", "false", err)) != 0 ||
	    (rv = kafka_set(conf, "enable.auto.offset.store", "false", err)) != 0 ||
	    (rv = kafka_set(conf, "auto.offset.reset", f->cfg.start_latest ? "latest" : "earliest",
	                    err)) != 0 ||
	    (rv = kafka_set(conf, "fetch.wait.max.ms", wait, err)) != 0 ||
	    /* librdkafka 2.0.2 stops fetching for a second (no
	     * fetch.queue.backoff.ms before 2.3) once the prefetch queue
	     * passes either limit: small limits cap a feed at about a queue
	     * per second (4 MiB: ~30k msgs/s of 200 B in bench/triggers.py).
	     * A pushed-back feed pauses its partitions, which empties the
	     * queue, so the limits only bound a feed that reads. */
	    (rv = kafka_set(conf, "queued.max.messages.kbytes", qkb, err)) != 0 ||
	    (rv = kafka_set(conf, "queued.min.messages", qmsgs, err)) != 0) {
		rd_kafka_conf_destroy(conf);
		return rv;
	}
	/* The policy allows the bootstrap brokers, and is asked again for
	 * every address librdkafka connects to (those of the metadata too). */
	rd_kafka_conf_set_connect_cb(conf, trig_feed_kafka_connect);
	rd_kafka_conf_set_opaque(conf, s->pol);
	s->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (s->rk == NULL) {
		rd_kafka_conf_destroy(conf);
		return gust_error_set(err, GUST_EINVAL, "kafka consumer: %s", errstr);
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(s->rk, f->cfg.topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(s->rk, 0, rkt, &md, 5000);
	rd_kafka_topic_destroy(rkt);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		return gust_error_set(err, GUST_EUNAVAIL, "kafka metadata from %s: %s",
		                      f->cfg.brokers, rd_kafka_err2str(e));
	if (md->topic_cnt != 1 || md->topics[0].err || md->topics[0].partition_cnt == 0) {
		rv = gust_error_set(err, GUST_ENOENT, "kafka topic '%s': %s", f->cfg.topic,
		                    md->topic_cnt ? rd_kafka_err2str(md->topics[0].err)
		                                  : "not found");
		rd_kafka_metadata_destroy(md);
		return rv;
	}
	s->parts = rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++) {
		int32_t id = md->topics[0].partitions[i].id;
		rd_kafka_topic_partition_list_add(s->parts, f->cfg.topic, id)->offset =
		    RD_KAFKA_OFFSET_STORED;
		if (id > s->max_part)
			s->max_part = id;
	}
	rd_kafka_metadata_destroy(md);
	if ((e = rd_kafka_assign(s->rk, s->parts)) != RD_KAFKA_RESP_ERR_NO_ERROR)
		return gust_error_set(err, GUST_EUNAVAIL, "kafka assign: %s", rd_kafka_err2str(e));
	s->q = rd_kafka_queue_get_consumer(s->rk);
	s->cq = rd_kafka_queue_new(s->rk);
	return 0;
}

/* Logs the commits that failed; the results arrive on s->cq. */
static void kafka_commit_results(trig_feed *f, kafka_state *s)
{
	rd_kafka_event_t *ev;
	while (s->cq && (ev = rd_kafka_queue_poll(s->cq, 0)) != NULL) {
		if (rd_kafka_event_type(ev) == RD_KAFKA_EVENT_OFFSET_COMMIT &&
		    rd_kafka_event_error(ev) != RD_KAFKA_RESP_ERR_NO_ERROR)
			/* The activations are journaled; a lost commit only
			 * means the next owner fires these again (duplicates,
			 * never gaps). */
			gust_log_warn("TRIG-KAFKA-COMMIT", "feed %s: offset commit failed: %s",
			              f->key, rd_kafka_event_error_string(ev));
		rd_kafka_event_destroy(ev);
	}
}

/* Commits the offsets after msgs[0..n), without waiting for the broker's
 * answer: a synchronous commit waits behind the fetch in flight on the
 * coordinator's connection (up to fetch.wait.max.ms, longer on a busy
 * broker) and cut the drain of a backlog from ~2M to ~60k msgs/s in
 * bench/feed_raw_bench.c terms. The order holds (commits travel in order on
 * one connection, a later one covers an earlier one), the scheduler has
 * acknowledged everything committed, and rd_kafka_consumer_close waits for
 * the commits still in flight. */
static void kafka_commit(trig_feed *f, kafka_state *s, size_t n)
{
	/* The next offset per partition id: the feed reads one topic, all of
	 * whose partitions are in parts. (A list lookup per message, strcmp
	 * of the topic included, showed in the profile of a drain.) */
	int64_t *next = gust_xcalloc((size_t)s->max_part + 1, sizeof(*next));
	for (size_t i = 0; i < n; i++) {
		rd_kafka_message_t *m = s->msgs[i];
		if (m->partition >= 0 && m->partition <= s->max_part &&
		    m->offset + 1 > next[m->partition])
			next[m->partition] = m->offset + 1;
	}
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(4);
	for (int i = 0; i < s->parts->cnt; i++) {
		int32_t id = s->parts->elems[i].partition;
		if (next[id] > 0)
			rd_kafka_topic_partition_list_add(l, f->cfg.topic, id)->offset = next[id];
	}
	free(next);
	rd_kafka_resp_err_t e = rd_kafka_commit_queue(s->rk, l, s->cq, NULL, NULL);
	rd_kafka_topic_partition_list_destroy(l);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		gust_log_warn("TRIG-KAFKA-COMMIT", "feed %s: offset commit failed: %s", f->key,
		              rd_kafka_err2str(e));
	kafka_commit_results(f, s);
}

static void kafka_drop_front(kafka_state *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rd_kafka_message_destroy(s->msgs[i]);
	memmove(s->msgs, s->msgs + n, (s->n - n) * sizeof(*s->msgs));
	s->n -= n;
	s->nfired -= n;
}

static void kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
	if (m->err && m->_private)
		(*(int *)m->_private)++;
}

/* Sends msgs[0..n) to the dead-letter topic; 0 when every one is stored. */
static int kafka_dead_letter(trig_feed *f, kafka_state *s, size_t n, const char *why)
{
	char errstr[256];
	if (s->dlq == NULL) {
		rd_kafka_conf_t *conf = rd_kafka_conf_new();
		rd_kafka_conf_set(conf, "bootstrap.servers", f->cfg.brokers, errstr,
		                  sizeof(errstr));
		rd_kafka_conf_set(conf, "linger.ms", "1", errstr, sizeof(errstr));
		rd_kafka_conf_set_dr_msg_cb(conf, kafka_dr);
		rd_kafka_conf_set_connect_cb(conf, trig_feed_kafka_connect);
		rd_kafka_conf_set_opaque(conf, s->pol);
		s->dlq = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
		if (s->dlq == NULL) {
			rd_kafka_conf_destroy(conf);
			return -1;
		}
	}
	s->dlq_failed = 0;
	for (size_t i = 0; i < n; i++) {
		rd_kafka_message_t *m = s->msgs[i];
		const char *topic = rd_kafka_topic_name(m->rkt);
		char part[16], off[24];
		snprintf(part, sizeof(part), "%d", (int)m->partition);
		snprintf(off, sizeof(off), "%lld", (long long)m->offset);
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    s->dlq, RD_KAFKA_V_TOPIC(f->cfg.dead_letter),
		    RD_KAFKA_V_KEY(m->key, m->key_len), RD_KAFKA_V_VALUE(m->payload, m->len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_HEADER("gust-topic", topic, -1),
		    RD_KAFKA_V_HEADER("gust-partition", part, -1),
		    RD_KAFKA_V_HEADER("gust-offset", off, -1),
		    RD_KAFKA_V_HEADER("gust-trigger", f->key, -1),
		    RD_KAFKA_V_HEADER("gust-error", why, -1), RD_KAFKA_V_OPAQUE(&s->dlq_failed),
		    RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
			s->dlq_failed++;
	}
	if (rd_kafka_flush(s->dlq, 10000) != RD_KAFKA_RESP_ERR_NO_ERROR || s->dlq_failed)
		return -1;
	return 0;
}

/* Writes v in decimal at w (room for 20 bytes) and returns the end: the
 * partition and offset of every message, where printf's format parsing
 * showed in the profile of a drain. */
static char *kafka_put_int(char *w, long long v)
{
	char tmp[24], *e = tmp + sizeof(tmp), *p = e;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
	do
		*--p = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		*--p = '-';
	memcpy(w, p, (size_t)(e - p));
	return w + (e - p);
}

/* Builds the fire of the unfired messages msgs[nfired..) up to the payload
 * limit and appends it to the batches; NULL fire: msgs[nfired] alone is over
 * the limit. */
static void kafka_build(trig_feed *f, kafka_state *s)
{
	gust_buf b = {0};
	/* {"topic":<name>,"partition": once per topic, not per message */
	gust_buf head = {0};
	rd_kafka_topic_t *head_rkt = NULL;
	size_t limit = (size_t)f->t->cfg.max_payload;
	/* a fire fills up to the limit under load: grow once, not ~12 times */
	gust_buf_reserve(&b, limit + 4096);
	gust_buf_puts(&b, "{\"messages\":[");
	size_t i, first = s->nfired;
	for (i = first; i < s->n; i++) {
		rd_kafka_message_t *m = s->msgs[i];
		size_t mark = b.len;
		if (m->rkt != head_rkt) {
			const char *topic = rd_kafka_topic_name(m->rkt);
			gust_buf_reset(&head);
			gust_buf_puts(&head, "{\"topic\":");
			gust_buf_json_str(&head, topic, strlen(topic));
			gust_buf_puts(&head, ",\"partition\":");
			head_rkt = m->rkt;
		}
		/* The envelope up to the key, written in place: room reserved once
		 * per message, not checked per piece (~8 appends a message showed
		 * in the profile of a drain). */
		gust_buf_reserve(&b, head.len + 64);
		char *w = b.data + b.len;
		if (i > first)
			*w++ = ',';
		memcpy(w, head.data, head.len);
		w = kafka_put_int(w + head.len, (long long)m->partition);
		memcpy(w, ",\"offset\":", 10);
		w = kafka_put_int(w + 10, (long long)m->offset);
		memcpy(w, ",\"key\":", 7);
		b.len = (size_t)(w + 7 - b.data);
		kafka_json_bytes(&b, m->key, m->key_len, f->cfg.binary_key, false);
		gust_buf_append(&b, ",\"value\":", 9);
		kafka_json_bytes(&b, m->payload, m->len, f->cfg.binary_value, f->cfg.json_data);
		gust_buf_append(&b, "}", 1);
		if (b.len + 2 > limit && i > first) {
			b.len = mark; /* the rest waits for the next fire */
			break;
		}
	}
	gust_buf_free(&head);
	gust_buf_puts(&b, "]}");
	kafka_batch *k = &s->b[s->nb++];
	memset(k, 0, sizeof(*k));
	k->n = i - first;
	if (b.len > limit)
		k->n = 1; /* a single message over the limit can never be delivered */
	else {
		/* Handed over, not copied: keys and values are escaped strings or
		 * base64, so raw newlines can only come in JSON data values. */
		size_t len = b.len;
		k->fire = trig_fire_new_take(f, gust_buf_steal(&b), len, !f->cfg.json_data,
		                             f->cfg.in_order);
	}
	gust_buf_free(&b);
	s->nfired += k->n;
	if (s->n > s->nfired)
		s->first_ms = gust_now_ms();
}

/* Messages librdkafka has fetched that the feed has not read: while paused,
 * none (the fetcher stops and drops what it had queued). */
static void kafka_queued_update(trig_feed *f, kafka_state *s)
{
	int64_t n = (int64_t)rd_kafka_queue_length(s->q);
	gust_gauge_add(f->t->m_kafka_queued, n - s->queued);
	s->queued = n;
}

/* Reads what is there (waiting up to wait_ms) after the held messages. */
static void kafka_read(trig_feed *f, kafka_state *s, size_t want, int wait_ms)
{
	size_t need = s->nfired + want;
	if (s->cap < need) {
		s->msgs = gust_xrealloc(s->msgs, need * sizeof(*s->msgs));
		s->cap = need;
	}
	size_t tail = s->n - s->nfired;
	if (tail >= want)
		return;
	ssize_t got = rd_kafka_consume_batch_queue(s->q, wait_ms, s->msgs + s->n, want - tail);
	size_t before = s->n;
	for (ssize_t i = 0; i < got; i++) {
		rd_kafka_message_t *m = s->msgs[before + (size_t)i];
		if (m->err) {
			if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
				gust_log_warn("TRIG-KAFKA-ERR", "feed %s: %s", f->key,
				              rd_kafka_message_errstr(m));
			rd_kafka_message_destroy(m);
			continue;
		}
		if (s->n == s->nfired)
			s->first_ms = gust_now_ms();
		s->msgs[s->n++] = m;
	}
	gust_counter_add(f->t->m_events[TRIG_SRC_KAFKA], s->n - before);
	kafka_queued_update(f, s);
}

/* A fresh copy of the assignment for one call. Never hand s->parts itself
 * to pause, resume or seek: librdkafka 2.0.2 caches a reference to each
 * partition in the list's elements (rd_kafka_topic_partition_ensure_toppar),
 * released only when the list is destroyed, so a list that outlives the
 * handle makes rd_kafka_destroy wait forever for its broker threads. */
static rd_kafka_topic_partition_list_t *kafka_parts_copy(kafka_state *s)
{
	rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(s->parts->cnt);
	for (int i = 0; i < s->parts->cnt; i++)
		rd_kafka_topic_partition_list_add(l, s->parts->elems[i].topic,
		                                  s->parts->elems[i].partition);
	return l;
}

/* Takes what the consumer queue holds after a pause: the pause's version
 * barriers and the fetched messages it made stale (both dropped by
 * librdkafka as they are served); a message still current is held like any
 * other, so nothing read is lost. */
static void kafka_drain(trig_feed *f, kafka_state *s)
{
	/* bounded: a fetch response in flight may still land, stale, after
	 * the pause; it is dropped as it is served */
	for (int i = 0; i < 16 && rd_kafka_queue_length(s->q) > 0; i++)
		kafka_read(f, s, s->n - s->nfired + 256, 0);
}

static void kafka_pause(trig_feed *f, kafka_state *s, const char *why)
{
	if (s->paused)
		return;
	/* A real pause: the fetcher stops fetching these partitions and drops
	 * what it had queued for them; on resume it fetches again from the
	 * position after the last message read (held in msgs), so nothing is
	 * skipped. The two traps of librdkafka 2.0.2 that once kept us from
	 * pausing (a destroy that never returned, and nothing delivered for
	 * up to a second after a resume) are the list references described at
	 * kafka_parts_copy and the missing wakeup described at kafka_resume. */
	rd_kafka_topic_partition_list_t *l = kafka_parts_copy(s);
	rd_kafka_resp_err_t e = rd_kafka_pause_partitions(s->rk, l);
	rd_kafka_topic_partition_list_destroy(l);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		/* still safe: not reading stops the fetcher at
		 * queued.max.messages.kbytes */
		gust_log_warn("TRIG-KAFKA-PAUSE", "feed %s: pause: %s", f->key,
		              rd_kafka_err2str(e));
	kafka_drain(f, s);
	kafka_queued_update(f, s);
	s->paused = true;
	gust_gauge_add(f->t->m_paused, 1);
	gust_log_info("TRIG-KAFKA-PAUSE", "feed %s paused: %s", f->key, why);
}

static void kafka_resume(trig_feed *f, kafka_state *s)
{
	if (!s->paused)
		return;
	rd_kafka_topic_partition_list_t *l = kafka_parts_copy(s);
	rd_kafka_resp_err_t e = rd_kafka_resume_partitions(s->rk, l);
	if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
		gust_log_warn("TRIG-KAFKA-RESUME", "feed %s: resume: %s", f->key,
		              rd_kafka_err2str(e));
	/* librdkafka 2.0.2 does not wake the broker thread on a resume: an
	 * idle fetcher only sees it at its next timeout, up to a second later.
	 * A seek does wake it; seek each partition read from to where the
	 * feed stands (the position after its last message read), which is
	 * where the resume would fetch from anyway. Partitions never read keep
	 * their logical start. */
	rd_kafka_position(s->rk, l);
	rd_kafka_topic_partition_list_t *to = rd_kafka_topic_partition_list_new(l->cnt);
	for (int i = 0; i < l->cnt; i++)
		if (l->elems[i].offset >= 0)
			rd_kafka_topic_partition_list_add(to, l->elems[i].topic,
			                                  l->elems[i].partition)
			    ->offset = l->elems[i].offset;
	rd_kafka_topic_partition_list_destroy(l);
	if (to->cnt) {
		rd_kafka_error_t *err = rd_kafka_seek_partitions(s->rk, to, 2000);
		if (err) {
			gust_log_warn("TRIG-KAFKA-RESUME", "feed %s: seek: %s", f->key,
			              rd_kafka_error_string(err));
			rd_kafka_error_destroy(err);
		}
	}
	rd_kafka_topic_partition_list_destroy(to);
	s->paused = false;
	gust_gauge_add(f->t->m_paused, -1);
	gust_log_info("TRIG-KAFKA-RESUME", "feed %s resumed", f->key);
}

/* Removes the first batch once its messages are committed or dead-lettered. */
static void kafka_pop(trig_feed *f, kafka_state *s)
{
	size_t n = s->b[0].n;
	trig_fire_free(s->b[0].fire);
	memmove(s->b, s->b + 1, (s->nb - 1) * sizeof(*s->b));
	s->nb--;
	kafka_commit(f, s, n);
	kafka_drop_front(s, n);
}

static int kafka_poll(trig_feed *f)
{
	kafka_state *s = f->state;
	trig *t = f->t;
	int src = TRIG_SRC_KAFKA;
	size_t window = f->cfg.in_order ? 1 : (size_t)t->cfg.fires_in_flight;
	if (window > KAFKA_WINDOW_MAX)
		window = KAFKA_WINDOW_MAX;
	/* Fires collected after a refusal go out again, in order. */
	for (size_t i = 0; i < s->nb; i++) {
		if (s->b[i].fire && !s->b[i].started && trig_fire_count(s->b[i].fire)) {
			trig_fire_start(s->b[i].fire);
			s->b[i].started = true;
		}
	}
	if (!s->paused && s->nb < window) {
		size_t want = (size_t)f->cfg.batch_size;
		size_t tail = s->n - s->nfired;
		int64_t left = tail ? (int64_t)(s->first_ms + (uint64_t)f->cfg.max_wait_ms) -
		                          (int64_t)gust_now_ms()
		                    : 200;
		if (left < 0)
			left = 0;
		if (left > 200)
			left = 200;
		/* With fires in flight, take only what is there: the first of them
		 * may be ready to collect. */
		kafka_read(f, s, want, s->nb ? 0 : (int)left);
		tail = s->n - s->nfired;
		if (tail >= want ||
		    (tail && gust_now_ms() >= s->first_ms + (uint64_t)f->cfg.max_wait_ms)) {
			kafka_build(f, s);
			kafka_batch *k = &s->b[s->nb - 1];
			if (k->fire && trig_fire_count(k->fire)) {
				trig_fire_start(k->fire);
				k->started = true;
			}
			return 0;
		}
		if (s->nb == 0)
			return 0;
	}
	kafka_queued_update(f, s); /* also while paused, when nothing is read */
	if (s->nb == 0) {
		trig_feed_backoff(f); /* paused with nothing held: wait for the scheduler */
		return 0;
	}
	kafka_batch *h = &s->b[0];
	if (h->fire == NULL) {
		rd_kafka_message_t *m = s->msgs[0];
		gust_log_error("TRIG-KAFKA-TOOBIG",
		               "feed %s: message %d/%lld is larger than max_payload; sending it to "
		               "the dead-letter topic %s",
		               f->key, (int)m->partition, (long long)m->offset, f->cfg.dead_letter);
		if (kafka_dead_letter(f, s, 1, "larger than the payload limit") != 0) {
			trig_feed_backoff(f);
			return 0;
		}
		gust_counter_add(t->m_dead[src], 1);
		kafka_pop(f, s);
		return 0;
	}
	char why[256] = "";
	int o = trig_fire_count(h->fire) ? trig_fire_wait(h->fire, why, sizeof(why)) : TRIG_OK;
	h->started = false;
	if (o != TRIG_OK) {
		/* Collect the fires behind it too: their acknowledged requests stay
		 * acknowledged, the rest go out again with this one. */
		for (size_t i = 1; i < s->nb; i++)
			if (s->b[i].started) {
				trig_fire_wait(s->b[i].fire, NULL, 0);
				s->b[i].started = false;
			}
	}
	if (o == TRIG_RETRY) {
		kafka_pause(f, s, why);
		trig_feed_backoff(f);
		return 0;
	}
	if (o == TRIG_FAILED && ++h->attempts < f->cfg.max_attempts) {
		gust_log_warn("TRIG-KAFKA-RETRY", "feed %s: attempt %d of %d failed: %s", f->key,
		              h->attempts, f->cfg.max_attempts, why);
		trig_feed_backoff(f);
		return 0;
	}
	if (o == TRIG_FAILED) {
		if (kafka_dead_letter(f, s, h->n, why) != 0) {
			gust_log_error(
			    "TRIG-KAFKA-DLQ-FAIL",
			    "feed %s: cannot write the dead-letter topic %s; holding the "
			    "batch",
			    f->key, f->cfg.dead_letter);
			trig_feed_backoff(f);
			return 0;
		}
		gust_log_error("TRIG-KAFKA-DEAD",
		               "feed %s: %zu messages from %d/%lld sent to dead-letter topic %s "
		               "after %d attempts: %s",
		               f->key, h->n, (int)s->msgs[0]->partition,
		               (long long)s->msgs[0]->offset, f->cfg.dead_letter, h->attempts, why);
		gust_counter_add(t->m_dead[src], h->n);
	} else {
		gust_counter_add(t->m_acked[src], h->n);
	}
	kafka_resume(f, s);
	trig_feed_backoff_reset(f);
	kafka_pop(f, s);
	return 0;
}

const trig_source_ops trig_kafka_ops = {"kafka", kafka_open, kafka_poll, kafka_close};
