/* inv_binding_out.c - an output binding's target: publishing a batch of
 * results to Kafka (librdkafka, idempotent producer, acks=all) or to a Redis
 * stream (XADD) or list (RPUSH), each as the namespace it belongs to: on the
 * cluster's Redis as the namespace's feed user, elsewhere only where the
 * operator's policy allows, checked on the configured target and again on
 * every address actually connected to (gust/scope.h). */
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gust/err.h"
#include "gust/log.h"
#include "gust/map.h"
#include "gust/redis.h"
#include "gust/scope.h"
#include "gust/util.h"
#include "inv_binding.h"

/* ---- publishing ---------------------------------------------------------- */

static void bind_set_error(inv_bind_msg *m, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

struct inv_bind_out {
	gust_etcd *etcd;
	char *etcd_endpoints;
	char *default_redis;
	int timeout_ms;
	gust_map producers; /* ns "\n" brokers -> bind_prod */
	gust_map redis;     /* ns "\n" address ("" the cluster's) -> redisContext */
	gust_map policies;  /* ns -> bind_policy */
	/* the batch being published, for delivery reports */
	inv_bind_msg *batch;
	size_t nbatch;
	uint64_t base_seq, next_seq;
};

/* A producer and the policy its connections are checked against (its own
 * copy: the cache may replace its entry while the producer lives). */
typedef struct bind_prod {
	inv_bind_out *o;
	rd_kafka_t *rk;
	gust_policy *pol;
} bind_prod;

typedef struct bind_policy {
	gust_policy *p;
} bind_policy;

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

/* The namespace's policy with the cluster's own addresses marked, read once
 * per batch (the cache is emptied when a batch starts, so a revoked grant
 * holds for every publish after it); NULL (and the error in m) when etcd
 * cannot say. Owned by the cache. */
static gust_policy *bind_policy_of(inv_bind_out *o, const char *ns, inv_bind_msg *m)
{
	bind_policy *bp = gust_map_get(&o->policies, ns);
	if (bp != NULL)
		return bp->p;
	gust_policy *p = NULL;
	gust_error *err = NULL;
	if (gust_policy_load(o->etcd, ns, &p, &err) != 0) {
		bind_set_error(m, GUST_EUNAVAIL, "the operator's policy: %s", gust_error_msg(err));
		gust_error_free(err);
		return NULL;
	}
	gust_policy_add_own(p, o->default_redis);
	gust_policy_add_own(p, o->etcd_endpoints);
	if (bp == NULL) {
		bp = gust_xcalloc(1, sizeof(*bp));
		gust_map_put(&o->policies, ns, bp);
	}
	gust_policy_free(bp->p);
	bp->p = p;
	return p;
}

/* A copy for a producer: the same documents, read now. */
static gust_policy *bind_policy_copy(inv_bind_out *o, const char *ns, char *errstr, size_t len)
{
	gust_policy *p = NULL;
	gust_error *err = NULL;
	if (gust_policy_load(o->etcd, ns, &p, &err) != 0) {
		snprintf(errstr, len, "the operator's policy: %s", gust_error_msg(err));
		gust_error_free(err);
		return NULL;
	}
	gust_policy_add_own(p, o->default_redis);
	gust_policy_add_own(p, o->etcd_endpoints);
	return p;
}

inv_bind_out *inv_bind_out_new(gust_etcd *etcd, const char *etcd_endpoints,
                               const char *default_redis, int timeout_ms)
{
	inv_bind_out *o = gust_xcalloc(1, sizeof(*o));
	o->etcd = etcd;
	o->etcd_endpoints = gust_xstrdup(etcd_endpoints ? etcd_endpoints : "");
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
	inv_bind_out *o = ((bind_prod *)opaque)->o;
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

/* Every connection a producer makes, to the bootstrap brokers and to those
 * their metadata names, is checked here on the address itself. */
static int bind_kafka_connect(int fd, const struct sockaddr *addr, int addrlen, const char *id,
                              void *opaque)
{
	bind_prod *bp = opaque;
	char why[256];
	if (gust_policy_sockaddr(bp->pol, addr, (socklen_t)addrlen, why, sizeof(why)) != 0) {
		gust_log_warn("INV-BIND-EGRESS", "kafka %s: refused: %s", id, why);
		return EACCES;
	}
	if (connect(fd, addr, (socklen_t)addrlen) == -1 && errno != EINPROGRESS)
		return errno;
	return 0;
}

static rd_kafka_t *bind_producer(inv_bind_out *o, const char *key, const char *ns,
                                 const char *brokers, char *errstr, size_t len)
{
	bind_prod *bp = gust_map_get(&o->producers, key);
	if (bp != NULL)
		return bp->rk;
	gust_policy *pol = bind_policy_copy(o, ns, errstr, len);
	if (pol == NULL)
		return NULL;
	rd_kafka_t *rk;
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
			gust_policy_free(pol);
			return NULL;
		}
	bp = gust_xcalloc(1, sizeof(*bp));
	bp->o = o;
	bp->pol = pol;
	rd_kafka_conf_set_dr_msg_cb(conf, bind_kafka_dr);
	rd_kafka_conf_set_log_cb(conf, bind_kafka_log);
	rd_kafka_conf_set_connect_cb(conf, bind_kafka_connect);
	rd_kafka_conf_set_opaque(conf, bp);
	rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, len);
	if (rk == NULL) {
		rd_kafka_conf_destroy(conf);
		gust_policy_free(pol);
		free(bp);
		return NULL;
	}
	bp->rk = rk;
	gust_map_put(&o->producers, key, bp);
	return rk;
}

static void bind_prod_free(bind_prod *bp, bool purge)
{
	if (purge) {
		rd_kafka_purge(bp->rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
		rd_kafka_poll(bp->rk, 0);
	} else {
		rd_kafka_flush(bp->rk, 1000);
	}
	rd_kafka_destroy(bp->rk);
	gust_policy_free(bp->pol);
	free(bp);
}

static void bind_producer_drop(inv_bind_out *o, const char *key)
{
	bind_prod *bp = gust_map_del(&o->producers, key);
	if (bp != NULL)
		bind_prod_free(bp, true);
}

/* The connection for m's namespace and target: on the cluster's Redis as
 * the namespace's feed user, elsewhere by an address the policy allows. */
static redisContext *bind_redis(inv_bind_out *o, const char *key, inv_bind_msg *m)
{
	redisContext *c = gust_map_get(&o->redis, key);
	if (c != NULL)
		return c;
	gust_error *err = NULL;
	int rv;
	if (m->t->addr == NULL) {
		rv = gust_feed_connect(o->etcd, o->default_redis, m->ns, o->timeout_ms, &c, &err);
	} else {
		gust_policy *p = bind_policy_of(o, m->ns, m);
		if (p == NULL)
			return NULL;
		rv = gust_policy_redis_connect(p, "redis binding: \"address\"", m->t->addr,
		                               o->timeout_ms, &c, &err);
	}
	if (rv != 0) {
		bind_set_error(m, rv == GUST_EPERM ? GUST_EPERM : GUST_EUNAVAIL, "redis %s: %s",
		               m->t->addr ? m->t->addr : "(cluster)", gust_error_msg(err));
		gust_error_free(err);
		return NULL;
	}
	gust_map_put(&o->redis, key, c);
	return c;
}

static char *bind_redis_key(const inv_bind_msg *m)
{
	return gust_xasprintf("%s\n%s", m->ns, m->t->addr ? m->t->addr : "");
}

static void bind_redis_drop(inv_bind_out *o, const char *addr)
{
	redisContext *c = gust_map_del(&o->redis, addr);
	if (c != NULL)
		redisFree(c);
}

/* Where m's target is used: the namespace's keyspace on the cluster's Redis
 * (the record may predate the gateway's check; Redis's ACL refuses too), the
 * operator's policy elsewhere. False with m's error set. */
static bool bind_target_ok(inv_bind_out *o, inv_bind_msg *m)
{
	if (m->t->kind != INV_BIND_KAFKA && m->t->addr == NULL) {
		if (gust_scope_inside(m->ns, m->t->name))
			return true;
		bind_set_error(m, GUST_EPERM, "%s is outside the keyspace of %s", m->t->label,
		               m->ns);
		return false;
	}
	gust_policy *p = bind_policy_of(o, m->ns, m);
	if (p == NULL)
		return false;
	char *why = NULL;
	if (gust_binding_check_policy(m->t, p, &why) != 0) {
		bind_set_error(m, GUST_EPERM, "%s", why);
		free(why);
		return false;
	}
	return true;
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
		if (!bind_target_ok(o, m))
			continue;
		cleanup_free char *key = bind_redis_key(m);
		redisContext *c = bind_redis(o, key, m);
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
		cleanup_free char *key = bind_redis_key(m);
		redisContext *c = gust_map_get(&o->redis, key);
		redisReply *r = NULL;
		if (c == NULL) {
			bind_set_error(m, GUST_EUNAVAIL, "redis %s: connection lost", addr);
		} else if (redisGetReply(c, (void **)&r) != REDIS_OK || r == NULL) {
			bind_set_error(m, GUST_EUNAVAIL, "redis %s: %s", addr,
			               c->errstr[0] ? c->errstr : "no reply");
			/* The rest of this connection's replies are lost with it. */
			bind_redis_drop(o, key);
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

static int bind_drop_policy_cb(void *arg, const char *key, void *value);

void inv_bind_out_publish(inv_bind_out *o, inv_bind_msg *msgs, size_t n)
{
	char errstr[512];
	gust_map_filter(&o->policies, bind_drop_policy_cb, NULL);
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
		if (!bind_target_ok(o, m))
			continue;
		m->error = gust_xasprintf("kafka %s: no delivery report in time", m->t->addr);
		cleanup_free char *key = gust_xasprintf("%s\n%s", m->ns, m->t->addr);
		rd_kafka_t *rk = bind_producer(o, key, m->ns, m->t->addr, errstr, sizeof(errstr));
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
			gust_map_put(&used, key, rk);
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
	bind_prod_free(value, false);
	return 1;
}

static int bind_drop_policy_cb(void *arg, const char *key, void *value)
{
	bind_policy *bp = value;
	gust_policy_free(bp->p);
	free(bp);
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
	gust_map_filter(&o->policies, bind_drop_policy_cb, NULL);
	gust_map_free(&o->policies);
	free(o->default_redis);
	free(o->etcd_endpoints);
	free(o);
}
