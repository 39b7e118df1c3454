/* inv_binding_out.c - an output binding's target: parsing the annotation,
 * and publishing a batch of results to Kafka (librdkafka, idempotent
 * producer, acks=all) or to a Redis stream (XADD) or list (RPUSH). */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gust/err.h"
#include "gust/log.h"
#include "gust/map.h"
#include "gust/redis.h"
#include "gust/util.h"
#include "inv_binding.h"

/* ---- parsing ------------------------------------------------------------ */

static int bind_fail(char **why, const char *msg)
{
	*why = gust_xstrdup(msg);
	return GUST_EINVAL;
}

static bool bind_topic_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 249)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static const char *bind_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && s[0] ? s : NULL;
}

int inv_bind_parse(const char *text, inv_bind_target *t, char **why)
{
	memset(t, 0, sizeof(*t));
	*why = NULL;
	json_t *v = json_loads(text ? text : "", JSON_DECODE_ANY, NULL);
	/* `wsk action update -a binding '{...}'` stores an object; a string
	 * holding the same JSON is taken too. */
	if (json_is_string(v)) {
		json_t *inner = json_loads(json_string_value(v), 0, NULL);
		json_decref(v);
		v = inner;
	}
	int rv = 0;
	json_t *k = json_object_get(v, "kafka"), *r = json_object_get(v, "redis");
	if (!json_is_object(v))
		rv = bind_fail(why, "the binding is not a JSON object");
	else if (json_object_size(v) != 1 || (k == NULL) == (r == NULL))
		rv = bind_fail(why, "the binding needs exactly one of \"kafka\" or \"redis\"");
	else if (k != NULL) {
		const char *brokers = bind_str(k, "brokers"), *topic = bind_str(k, "topic");
		if (brokers == NULL)
			rv =
			    bind_fail(why, "kafka binding: \"brokers\" (host:port,...) is missing");
		else if (topic == NULL || !bind_topic_ok(topic))
			rv = bind_fail(why, "kafka binding: \"topic\" is missing or not a topic "
			                    "name ([A-Za-z0-9._-], 1-249 characters)");
		else {
			t->kind = INV_BIND_KAFKA;
			t->addr = gust_xstrdup(brokers);
			t->name = gust_xstrdup(topic);
			t->label = gust_xasprintf("kafka:%s", topic);
		}
	} else {
		const char *stream = bind_str(r, "stream"), *list = bind_str(r, "list");
		const char *addr = bind_str(r, "address");
		if (!json_is_object(r) || (stream == NULL) == (list == NULL))
			rv = bind_fail(
			    why, "redis binding: needs exactly one of \"stream\" or \"list\"");
		else if (json_object_get(r, "address") != NULL && addr == NULL)
			rv = bind_fail(
			    why, "redis binding: \"address\" must be host:port or unix:/path");
		else if (strlen(stream ? stream : list) > 1024)
			rv =
			    bind_fail(why, "redis binding: the key name is longer than 1024 bytes");
		else {
			t->kind = stream ? INV_BIND_STREAM : INV_BIND_LIST;
			t->addr = addr ? gust_xstrdup(addr) : NULL;
			t->name = gust_xstrdup(stream ? stream : list);
			t->label =
			    gust_xasprintf("redis-%s:%s", stream ? "stream" : "list", t->name);
		}
	}
	json_decref(v);
	return rv;
}

void inv_bind_target_clear(inv_bind_target *t)
{
	free(t->addr);
	free(t->name);
	free(t->label);
	memset(t, 0, sizeof(*t));
}

/* ---- publishing ---------------------------------------------------------- */

struct inv_bind_out {
	char *default_redis;
	int timeout_ms;
	gust_map producers; /* brokers -> rd_kafka_t */
	gust_map redis;     /* address -> redisContext */
	/* the batch being published, for delivery reports */
	inv_bind_msg *batch;
	size_t nbatch;
	uint64_t base_seq, next_seq;
};

static void bind_set_error(inv_bind_msg *m, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void bind_set_error(inv_bind_msg *m, int rv, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char buf[512];
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	free(m->error);
	m->error = gust_xstrdup(buf);
	m->rv = rv;
}

inv_bind_out *inv_bind_out_new(const char *default_redis, int timeout_ms)
{
	inv_bind_out *o = gust_xcalloc(1, sizeof(*o));
	o->default_redis = gust_xstrdup(default_redis);
	o->timeout_ms = timeout_ms;
	o->next_seq = 1;
	return o;
}

/* Runs inside rd_kafka_flush/poll on the publishing thread. A report for a
 * message of an earlier batch (purged after its wait) is ignored: that batch
 * already counted it as failed. */
static void bind_kafka_dr(rd_kafka_t *rk, const rd_kafka_message_t *km, void *opaque)
{
	inv_bind_out *o = opaque;
	uint64_t seq = (uint64_t)(uintptr_t)km->_private;
	if (seq < o->base_seq || seq >= o->base_seq + o->nbatch)
		return;
	inv_bind_msg *m = &o->batch[seq - o->base_seq];
	if (m->seq != seq)
		return;
	if (km->err == RD_KAFKA_RESP_ERR_NO_ERROR) {
		m->rv = 0;
		free(m->error);
		m->error = NULL;
	} else {
		bind_set_error(m, GUST_EUNAVAIL, "kafka %s: %s", m->t->addr,
		               rd_kafka_err2str(km->err));
	}
}

static void bind_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* A dead broker makes librdkafka complain every reconnect; the
	 * activation record and the failure counter say it once per attempt. */
	gust_log_debug("INV-BIND-KAFKA", "%s: %s", fac, buf);
}

static rd_kafka_t *bind_producer(inv_bind_out *o, const char *brokers, char *errstr, size_t len)
{
	rd_kafka_t *rk = gust_map_get(&o->producers, brokers);
	if (rk != NULL)
		return rk;
	char tmo[32];
	snprintf(tmo, sizeof(tmo), "%d", o->timeout_ms);
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* Idempotence keeps librdkafka's own retries from duplicating or
	 * reordering; acks=all (implied) means a report of success is durable.
	 * message.timeout.ms bounds one attempt: past it the message fails and
	 * our pending entry takes over the retrying. */
	const char *kv[][2] = {{"bootstrap.servers", brokers},
	                       {"enable.idempotence", "true"},
	                       {"acks", "all"},
	                       {"linger.ms", "2"},
	                       {"message.timeout.ms", tmo},
	                       {"log.connection.close", "false"}};
	for (size_t i = 0; i < sizeof(kv) / sizeof(kv[0]); i++)
		if (rd_kafka_conf_set(conf, kv[i][0], kv[i][1], errstr, len) != RD_KAFKA_CONF_OK) {
			rd_kafka_conf_destroy(conf);
			return NULL;
		}
	rd_kafka_conf_set_dr_msg_cb(conf, bind_kafka_dr);
	rd_kafka_conf_set_log_cb(conf, bind_kafka_log);
	rd_kafka_conf_set_opaque(conf, o);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, len);
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		return NULL;
	}
	gust_map_put(&o->producers, brokers, rk);
	return rk;
}

static void bind_producer_drop(inv_bind_out *o, const char *brokers)
{
	rd_kafka_t *rk = gust_map_del(&o->producers, brokers);
	if (rk == NULL)
		return;
	rd_kafka_purge(rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
	rd_kafka_poll(rk, 0);
	rd_kafka_destroy(rk);
}

static redisContext *bind_redis(inv_bind_out *o, const char *addr, inv_bind_msg *m)
{
	redisContext *c = gust_map_get(&o->redis, addr);
	if (c != NULL)
		return c;
	gust_error *err = NULL;
	if (gust_redis_connect(addr, o->timeout_ms, &c, &err) != 0) {
		bind_set_error(m, GUST_EUNAVAIL, "redis %s: %s", addr, gust_error_msg(err));
		gust_error_free(err);
		return NULL;
	}
	gust_map_put(&o->redis, addr, c);
	return c;
}

static void bind_redis_drop(inv_bind_out *o, const char *addr)
{
	redisContext *c = gust_map_del(&o->redis, addr);
	if (c != NULL)
		redisFree(c);
}

/* Sends the Redis publishes of the batch, pipelined per connection: all
 * commands are appended first, then the replies read in order. */
static void bind_redis_batch(inv_bind_out *o, inv_bind_msg *msgs, size_t n)
{
	bool *sent = gust_xcalloc(n ? n : 1, sizeof(bool));
	gust_buf item = {0};
	for (size_t i = 0; i < n; i++) {
		inv_bind_msg *m = &msgs[i];
		if (m->t->kind == INV_BIND_KAFKA)
			continue;
		const char *addr = m->t->addr ? m->t->addr : o->default_redis;
		redisContext *c = bind_redis(o, addr, m);
		if (c == NULL)
			continue;
		int rv;
		if (m->t->kind == INV_BIND_STREAM) {
			const char *argv[] = {"XADD", m->t->name, "*",     "id",
			                      m->id,  "result",   m->value};
			size_t argl[] = {4, strlen(m->t->name), 1, 2, strlen(m->id),
			                 6, m->value_len};
			rv = redisAppendCommandArgv(c, 7, argv, argl);
		} else {
			/* A list entry carries its key inside: {"activationId","result"}. */
			gust_buf_reset(&item);
			gust_buf_puts(&item, "{\"activationId\":");
			gust_buf_json_str(&item, m->id, strlen(m->id));
			gust_buf_puts(&item, ",\"result\":");
			gust_buf_append(&item, m->value, m->value_len);
			gust_buf_puts(&item, "}");
			const char *argv[] = {"RPUSH", m->t->name, item.data};
			size_t argl[] = {5, strlen(m->t->name), item.len};
			rv = redisAppendCommandArgv(c, 3, argv, argl);
		}
		if (rv != REDIS_OK)
			bind_set_error(m, GUST_ENOMEM, "redis %s: cannot queue the command", addr);
		else
			sent[i] = true;
	}
	gust_buf_free(&item);
	for (size_t i = 0; i < n; i++) {
		if (!sent[i])
			continue;
		inv_bind_msg *m = &msgs[i];
		const char *addr = m->t->addr ? m->t->addr : o->default_redis;
		redisContext *c = gust_map_get(&o->redis, addr);
		redisReply *r = NULL;
		if (c == NULL) {
			bind_set_error(m, GUST_EUNAVAIL, "redis %s: connection lost", addr);
		} else if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			bind_set_error(m, GUST_EUNAVAIL, "redis %s: %s", addr,
			               c->errstr[0] ? c->errstr : "no reply");
			/* The rest of this connection's replies are lost with it. */
			bind_redis_drop(o, addr);
		} else if (r->type == REDIS_REPLY_ERROR) {
			bind_set_error(m, GUST_EIO, "redis %s %s: %s", addr, m->t->label, r->str);
		} else {
			m->rv = 0;
		}
		if (r)
			freeReplyObject(r);
	}
	free(sent);
}

void inv_bind_out_publish(inv_bind_out *o, inv_bind_msg *msgs, size_t n)
{
	char errstr[512];
	o->batch = msgs;
	o->nbatch = n;
	o->base_seq = o->next_seq;
	o->next_seq += n;
	gust_map used = {0}; /* brokers -> producer, of this batch */
	for (size_t i = 0; i < n; i++) {
		inv_bind_msg *m = &msgs[i];
		m->seq = o->base_seq + i;
		free(m->error);
		m->error = NULL;
		m->rv = GUST_ETIMEDOUT;
		if (m->t->kind != INV_BIND_KAFKA)
			continue;
		m->error = gust_xasprintf("kafka %s: no delivery report in time", m->t->addr);
		rd_kafka_t *rk = bind_producer(o, m->t->addr, errstr, sizeof(errstr));
		if (rk == NULL) {
			bind_set_error(m, GUST_EINVAL, "kafka %s: %s", m->t->addr, errstr);
			continue;
		}
		rd_kafka_resp_err_t e = rd_kafka_producev(
		    rk, RD_KAFKA_V_TOPIC(m->t->name), RD_KAFKA_V_KEY(m->id, strlen(m->id)),
		    RD_KAFKA_V_VALUE((void *)m->value, m->value_len),
		    RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
		    RD_KAFKA_V_OPAQUE((void *)(uintptr_t)m->seq), RD_KAFKA_V_END);
		if (e != RD_KAFKA_RESP_ERR_NO_ERROR)
			bind_set_error(m, GUST_EUNAVAIL, "kafka %s: %s", m->t->addr,
			               rd_kafka_err2str(e));
		else
			gust_map_put(&used, m->t->addr, rk);
	}
	/* Redis while Kafka's messages are on their way. */
	bind_redis_batch(o, msgs, n);
	for (size_t b = 0; b < used.nbuckets; b++)
		for (gust_map_entry *e = used.buckets[b]; e; e = e->next) {
			rd_kafka_t *rk = e->value;
			rd_kafka_flush(rk, o->timeout_ms + 1000);
			if (rd_kafka_fatal_error(rk, NULL, 0) != RD_KAFKA_RESP_ERR_NO_ERROR ||
			    rd_kafka_outq_len(rk) > 0) {
				/* Not reported in time, or an idempotence state it
				 * cannot leave: start over with a new producer. */
				gust_log_warn("INV-BIND-KAFKA-RESET",
				              "kafka %s: resetting the producer", e->key);
				bind_producer_drop(o, e->key);
			}
		}
	gust_map_free(&used);
	o->batch = NULL;
	o->nbatch = 0;
}

static int bind_drop_producer_cb(void *arg, const char *key, void *value)
{
	rd_kafka_t *rk = value;
	rd_kafka_flush(rk, 1000);
	rd_kafka_destroy(rk);
	return 1;
}

static int bind_drop_redis_cb(void *arg, const char *key, void *value)
{
	redisFree(value);
	return 1;
}

void inv_bind_out_free(inv_bind_out *o)
{
	if (o == NULL)
		return;
	gust_map_filter(&o->producers, bind_drop_producer_cb, NULL);
	gust_map_free(&o->producers);
	gust_map_filter(&o->redis, bind_drop_redis_cb, NULL);
	gust_map_free(&o->redis);
	free(o->default_redis);
	free(o);
}
