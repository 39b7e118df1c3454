/* inv_binding.c - output bindings: a successful result published to the
 * Kafka topic, Redis stream or Redis list named by the action's "binding"
 * annotation, at least once, keyed by the activation id (docs/state.md).
 *
 * The durable queue is Redis, per invoker id:
 *   gust:bindings:pending:<invoker>      sorted set: activation id by the time
 *                                        (ms) its next attempt is due
 *   gust:bindings:<invoker>:<activation> hash: ns, start, binding, result,
 *                                        record (without the binding
 *                                        annotation), attempts
 * Two threads, so that a slow target never delays an answer:
 *   the queue thread writes an activation's entry (HSET + ZADD, pipelined
 *   for a batch) and only then answers the scheduler, which then drops the
 *   activation from its journal. An invoker that dies before the entry is
 *   written never answered, so the scheduler runs the activation again: the
 *   publish is never lost, only possibly repeated.
 *   the publish thread makes the first attempt, writes the activation record
 *   saying how it went ("published" or "pending" with the error), and then
 *   removes the entry or schedules its next attempt (1 s doubling to 30 s).
 *   Once a second it takes the entries that are due; at start, every entry
 *   an earlier run of this invoker id left. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/record.h"
#include "inv_binding.h"
#include "invoker.h"

#define BIND_BATCH 256
#define BIND_FIRST_GUARD_MS 10000 /* a new entry's score: the first attempt comes first */
#define BIND_SCAN_MS 1000
#define BIND_BACKOFF_MAX_MS 30000

typedef struct bind_entry bind_entry;
struct bind_entry {
	char *id;
	char *ns;
	int64_t start_ms;
	char *binding;
	char *result;
	size_t result_len;
	char *journal_id; /* the scheduler's journal entry ("" none) */
	char *record;     /* without the binding annotation */
	size_t record_len;
	int attempts;
	inv_job *job; /* until answered (queue thread) */
	nng_msg *msg;
	bind_entry *next;
};

struct inv_binder {
	inv *v;
	char *zkey;
	pthread_mutex_t lock;
	pthread_cond_t q_cv, p_cv;
	bind_entry *in_head, **in_tail;   /* to be made durable and answered */
	bind_entry *pub_head, **pub_tail; /* durable, for their first attempt */
	bool stopping;
	bool q_running, p_running;
	int64_t start_ms; /* wall clock at start: entries scored below start + guard are an earlier
	                     run's */
	pthread_t q_thread, p_thread;
	redisContext *qc; /* the queue thread's connection */
	redisContext *pc; /* the publish thread's connection */
	inv_bind_out *out;
	gust_metric *m_published, *m_failures, *m_pending;
};

static void bind_entry_free(bind_entry *e)
{
	if (e == NULL)
		return;
	free(e->id);
	free(e->ns);
	free(e->binding);
	free(e->journal_id);
	free(e->result);
	free(e->record);
	if (e->msg)
		nng_msg_free(e->msg);
	free(e);
}

static char *bind_entry_key(inv_binder *b, const char *id)
{
	return gust_xasprintf("gust:bindings:%s:%s", b->v->cfg.id, id);
}

/* Writes the activation record with {"key":"binding","value":ann} among its
 * annotations. The record's JSON comes from gust_record_json, which ends
 * with the annotations list then "publish": the annotation goes in there. */
static void bind_record(inv *v, const char *id, const char *ns, int64_t start_ms, const char *rec,
                        size_t len, const char *ann)
{
	static const char tail[] = "],\"publish\":false}";
	size_t tl = sizeof(tail) - 1;
	gust_buf b = {0};
	if (len >= tl && memcmp(rec + len - tl, tail, tl) == 0) {
		gust_buf_append(&b, rec, len - tl);
		gust_buf_printf(&b, ",{\"key\":\"binding\",\"value\":%s}", ann);
		gust_buf_puts(&b, tail);
	} else {
		gust_log_warn("INV-BIND-RECORD",
		              "activation %s: unexpected record shape, "
		              "binding status not recorded",
		              id);
		gust_buf_append(&b, rec, len);
	}
	inv_record_put(v, id, ns, start_ms, b.data, b.len);
	gust_buf_free(&b);
}

/* After the activation's record: its entry leaves the scheduler's journal on
 * the records connection, so only once the record is stored, as
 * inv_record_write does for an unbound activation. XDEL is idempotent: a
 * retry's record repeats it harmlessly. */
static void bind_journal_done(inv *v, const char *journal_id)
{
	if (journal_id == NULL || journal_id[0] == '\0')
		return;
	const char *xdel[] = {"XDEL", "gust:journal", journal_id};
	gust_redis_writer_cmd(v->records, 3, xdel, NULL);
}

/* {"status": status, "target": label, "attempts": n, "error": error} */
static char *bind_ann(const char *status, const char *label, int attempts, const char *error)
{
	gust_buf b = {0};
	gust_buf_puts(&b, "{\"status\":");
	gust_buf_json_str(&b, status, strlen(status));
	if (label) {
		gust_buf_puts(&b, ",\"target\":");
		gust_buf_json_str(&b, label, strlen(label));
	}
	if (attempts > 0)
		gust_buf_printf(&b, ",\"attempts\":%d", attempts);
	if (error) {
		gust_buf_puts(&b, ",\"error\":");
		gust_buf_json_str(&b, error, strlen(error));
	}
	gust_buf_puts(&b, "}");
	return gust_buf_steal(&b);
}

void inv_binding_complete(inv *v, inv_job *job, const Gust__ActivationResult *res, nng_msg *msg)
{
	inv_binder *b = v->binder;
	const Gust__ActivationRequest *q = job->req;
	gust_buf rec = {0};
	gust_record_json(q, res, &rec);
	inv_bind_target t;
	cleanup_free char *why = NULL;
	const char *status = NULL;
	int prv;
	/* The binding acts as the namespace the activation belongs to: the
	 * invoking one (req->user; gust_activation_ns on main), so a caller of a
	 * shared action never publishes into the owner's keys or brokers. */
	const char *bns = q->user && q->user[0] ? q->user : q->namespace_;
	if (res->status != 0)
		status = "skipped"; /* only a success is published */
	else if ((prv = gust_binding_parse(bns, q->binding, &t, &why)) != 0)
		status = prv == GUST_EPERM ? "refused" : "invalid";
	else
		gust_binding_clear(&t);
	if (status != NULL) {
		cleanup_free char *ann =
		    bind_ann(status, NULL, 0,
		             why ? why : "the activation did not succeed: nothing to publish");
		if (why) {
			gust_counter_add(b->m_failures, 1);
			gust_log_warn("INV-BIND-INVALID", "activation %s of %s/%s: %s",
			              q->activation_id, q->namespace_, q->action, why);
		}
		bind_record(v, q->activation_id, gust_activation_ns(q), res->start_ms, rec.data,
		            rec.len, ann);
		bind_journal_done(v, q->journal_id);
		gust_buf_free(&rec);
		inv_server_reply(job, msg);
		return;
	}
	bind_entry *e = gust_xcalloc(1, sizeof(*e));
	e->id = gust_xstrdup(q->activation_id);
	e->ns = gust_xstrdup(gust_activation_ns(q));
	e->start_ms = res->start_ms;
	e->binding = gust_xstrdup(q->binding);
	e->journal_id = gust_xstrdup(q->journal_id ? q->journal_id : "");
	e->result = gust_xstrndup((const char *)res->result.data, res->result.len);
	e->result_len = res->result.len;
	e->record_len = rec.len;
	e->record = gust_buf_steal(&rec);
	e->job = job;
	e->msg = msg;
	pthread_mutex_lock(&b->lock);
	*b->in_tail = e;
	b->in_tail = &e->next;
	pthread_cond_signal(&b->q_cv);
	pthread_mutex_unlock(&b->lock);
}

/* ---- the queue thread ----------------------------------------------------- */

/* Writes every entry of list and its place in the sorted set, as one
 * pipeline. Idempotent (HSET, ZADD), so a failed batch is simply sent again. */
static int bind_persist(inv_binder *b, bind_entry *list)
{
	gust_error *err = NULL;
	if (b->qc == NULL && gust_redis_connect(b->v->cfg.redis, 2000, &b->qc, &err) != 0) {
		gust_log_warn("INV-BIND-QUEUE", "redis: %s", gust_error_msg(err));
		gust_error_free(err);
		return GUST_EUNAVAIL;
	}
	char score[32];
	snprintf(score, sizeof(score), "%lld", (long long)(gust_wall_ms() + BIND_FIRST_GUARD_MS));
	size_t n = 0;
	for (bind_entry *e = list; e; e = e->next) {
		cleanup_free char *key = bind_entry_key(b, e->id);
		char start[32];
		snprintf(start, sizeof(start), "%lld", (long long)e->start_ms);
		const char *hset[] = {"HSET",     key,       "ns",      e->ns,
		                      "start",    start,     "binding", e->binding,
		                      "result",   e->result, "record",  e->record,
		                      "attempts", "0",       "journal", e->journal_id};
		size_t hl[] = {4, strlen(key),
		               2, strlen(e->ns),
		               5, strlen(start),
		               7, strlen(e->binding),
		               6, e->result_len,
		               6, e->record_len,
		               8, 1,
		               7, strlen(e->journal_id)};
		const char *zadd[] = {"ZADD", b->zkey, score, e->id};
		if (redisAppendCommandArgv(b->qc, 16, hset, hl) != REDIS_OK ||
		    redisAppendCommandArgv(b->qc, 4, zadd, NULL) != REDIS_OK)
			goto broken;
		n += 2;
	}
	int rv = 0;
	for (size_t i = 0; i < n; i++) {
		redisReply *r = NULL;
		if (redisGetReply(b->qc, (void **)&r) != REDIS_OK || r == NULL)
			goto broken;
		if (r->type == REDIS_REPLY_ERROR) {
			gust_log_warn("INV-BIND-QUEUE", "redis: %s", r->str);
			rv = GUST_EIO;
		}
		freeReplyObject(r);
	}
	return rv;
broken:
	gust_log_warn("INV-BIND-QUEUE", "redis %s: %s", b->v->cfg.redis,
	              b->qc->errstr[0] ? b->qc->errstr : "connection lost");
	redisFree(b->qc);
	b->qc = NULL;
	return GUST_EUNAVAIL;
}

static void *bind_queue_main(void *arg)
{
	inv_binder *b = arg;
	for (;;) {
		pthread_mutex_lock(&b->lock);
		while (b->in_head == NULL && !b->stopping)
			pthread_cond_wait(&b->q_cv, &b->lock);
		bind_entry *list = b->in_head;
		b->in_head = NULL;
		b->in_tail = &b->in_head;
		bool stopping = b->stopping;
		pthread_mutex_unlock(&b->lock);
		if (list == NULL)
			break;
		/* Until Redis has the entries nobody is answered: a scheduler that
		 * gives up on us runs the activation again, which is still at
		 * least once. When stopping, give up after 2 s for the same reason. */
		uint64_t t0 = gust_now_ms();
		int rv;
		while ((rv = bind_persist(b, list)) != 0) {
			pthread_mutex_lock(&b->lock);
			stopping = b->stopping;
			pthread_mutex_unlock(&b->lock);
			if (stopping && gust_now_ms() - t0 > 2000)
				break;
			usleep(200 * 1000);
		}
		size_t n = 0;
		bind_entry **tail = &list;
		for (bind_entry *e = list; e; e = e->next, n++) {
			inv_server_reply(e->job, rv == 0 ? e->msg : NULL);
			if (rv != 0 && e->msg)
				nng_msg_free(e->msg);
			e->job = NULL;
			e->msg = NULL;
			tail = &e->next;
		}
		if (rv != 0) {
			gust_log_error(
			    "INV-BIND-QUEUE-LOST",
			    "stopping with Redis unreachable: %zu bound activations left "
			    "unanswered for the scheduler to run again",
			    n);
			while (list) {
				bind_entry *e = list;
				list = e->next;
				bind_entry_free(e);
			}
			continue;
		}
		gust_gauge_add(b->m_pending, (int64_t)n);
		pthread_mutex_lock(&b->lock);
		*b->pub_tail = list;
		b->pub_tail = tail;
		pthread_cond_signal(&b->p_cv);
		pthread_mutex_unlock(&b->lock);
	}
	return NULL;
}

/* ---- the publish thread ----------------------------------------------------- */

/* One command on the publish thread's connection (connecting if needed);
 * the reply or NULL. */
static redisReply *bind_cmd(inv_binder *b, int argc, const char **argv, const size_t *argl)
{
	gust_error *err = NULL;
	if (b->pc == NULL && gust_redis_connect(b->v->cfg.redis, 2000, &b->pc, &err) != 0) {
		gust_log_warn("INV-BIND-REDIS", "redis: %s", gust_error_msg(err));
		gust_error_free(err);
		return NULL;
	}
	redisReply *r = redisCommandArgv(b->pc, argc, argv, argl);
	if (r == NULL) {
		redisFree(b->pc);
		b->pc = NULL;
	}
	return r;
}

/* After an attempt: record it, then forget the entry or schedule it again. */
static void bind_settle(inv_binder *b, bind_entry *e, const inv_bind_target *t,
                        const inv_bind_msg *m)
{
	inv *v = b->v;
	e->attempts++;
	cleanup_free char *key = bind_entry_key(b, e->id);
	if (m->rv == 0) {
		gust_counter_add(b->m_published, 1);
		cleanup_free char *ann = bind_ann("published", t->label, e->attempts, NULL);
		bind_record(v, e->id, e->ns, e->start_ms, e->record, e->record_len, ann);
		bind_journal_done(v, e->journal_id);
		const char *del[] = {"DEL", key};
		freeReplyObject(bind_cmd(b, 2, del, NULL));
		const char *zrem[] = {"ZREM", b->zkey, e->id};
		freeReplyObject(bind_cmd(b, 3, zrem, NULL));
		gust_gauge_add(b->m_pending, -1);
		return;
	}
	gust_counter_add(b->m_failures, 1);
	if (m->rv == GUST_EPERM) {
		/* Outside the namespace's keyspace or the operator's policy (a
		 * record older than the checks, or a grant since revoked): never
		 * published, so not retried; the record says why. */
		gust_log_error("INV-BIND-REFUSED", "activation %s of %s to %s: %s", e->id, e->ns,
		               t->label, m->error ? m->error : "refused");
		cleanup_free char *ann = bind_ann("refused", t->label, e->attempts, m->error);
		bind_record(v, e->id, e->ns, e->start_ms, e->record, e->record_len, ann);
		bind_journal_done(v, e->journal_id);
		const char *del[] = {"DEL", key};
		freeReplyObject(bind_cmd(b, 2, del, NULL));
		const char *zrem[] = {"ZREM", b->zkey, e->id};
		freeReplyObject(bind_cmd(b, 3, zrem, NULL));
		gust_gauge_add(b->m_pending, -1);
		return;
	}
	gust_log_warn("INV-BIND-FAIL", "activation %s to %s, attempt %d: %s", e->id, t->label,
	              e->attempts, m->error ? m->error : "failed");
	cleanup_free char *ann = bind_ann("pending", t->label, e->attempts, m->error);
	bind_record(v, e->id, e->ns, e->start_ms, e->record, e->record_len, ann);
	bind_journal_done(v, e->journal_id);
	int shift = e->attempts - 1 < 5 ? e->attempts - 1 : 5;
	int64_t delay = 1000LL << shift;
	if (delay > BIND_BACKOFF_MAX_MS)
		delay = BIND_BACKOFF_MAX_MS;
	char n[16], score[32];
	snprintf(n, sizeof(n), "%d", e->attempts);
	snprintf(score, sizeof(score), "%lld", (long long)(gust_wall_ms() + delay));
	const char *hset[] = {"HSET", key, "attempts", n};
	freeReplyObject(bind_cmd(b, 4, hset, NULL));
	const char *zadd[] = {"ZADD", b->zkey, score, e->id};
	freeReplyObject(bind_cmd(b, 4, zadd, NULL));
}

/* One attempt for each entry of list, as one batch; frees the list. */
static void bind_attempt(inv_binder *b, bind_entry *list)
{
	size_t n = 0;
	for (bind_entry *e = list; e; e = e->next)
		n++;
	inv_bind_target *ts = gust_xcalloc(n ? n : 1, sizeof(*ts));
	inv_bind_msg *ms = gust_xcalloc(n ? n : 1, sizeof(*ms));
	bind_entry **es = gust_xcalloc(n ? n : 1, sizeof(*es));
	size_t k = 0;
	while (list) {
		bind_entry *e = list;
		list = e->next;
		char *why = NULL;
		if (gust_binding_parse(e->ns, e->binding, &ts[k], &why) != 0) {
			/* Only an entry edited by hand gets here: say so, drop it. */
			gust_log_error("INV-BIND-DROP",
			               "activation %s: pending entry with a bad "
			               "binding (%s), removed",
			               e->id, why);
			cleanup_free char *key = bind_entry_key(b, e->id);
			const char *del[] = {"DEL", key};
			freeReplyObject(bind_cmd(b, 2, del, NULL));
			const char *zrem[] = {"ZREM", b->zkey, e->id};
			freeReplyObject(bind_cmd(b, 3, zrem, NULL));
			gust_gauge_add(b->m_pending, -1);
			free(why);
			bind_entry_free(e);
			continue;
		}
		ms[k] = (inv_bind_msg){.t = &ts[k],
		                       .ns = e->ns,
		                       .id = e->id,
		                       .value = e->result,
		                       .value_len = e->result_len};
		es[k++] = e;
	}
	inv_bind_out_publish(b->out, ms, k);
	for (size_t i = 0; i < k; i++) {
		bind_settle(b, es[i], &ts[i], &ms[i]);
		free(ms[i].error);
		gust_binding_clear(&ts[i]);
		bind_entry_free(es[i]);
	}
	free(ts);
	free(ms);
	free(es);
}

static const char *bind_field(redisReply *h, const char *name, size_t *len)
{
	for (size_t i = 0; h && i + 1 < h->elements; i += 2)
		if (h->element[i]->type == REDIS_REPLY_STRING &&
		    strcmp(h->element[i]->str, name) == 0 &&
		    h->element[i + 1]->type == REDIS_REPLY_STRING) {
			if (len)
				*len = h->element[i + 1]->len;
			return h->element[i + 1]->str;
		}
	return NULL;
}

/* Attempts the entries that are due (all of an earlier run's when all is
 * set, whatever their score). Returns
 * how many it took: BIND_BATCH means there may be more. */
static size_t bind_scan(inv_binder *b, bool all)
{
	char max[32];
	if (all) /* an entry of this run scores at least start + guard */
		snprintf(max, sizeof(max), "(%lld", (long long)(b->start_ms + BIND_FIRST_GUARD_MS));
	else
		snprintf(max, sizeof(max), "%lld", (long long)gust_wall_ms());
	const char *zr[] = {"ZRANGEBYSCORE", b->zkey, "-inf", max, "LIMIT", "0", "256"};
	redisReply *ids = bind_cmd(b, 7, zr, NULL);
	if (ids == NULL || ids->type != REDIS_REPLY_ARRAY) {
		freeReplyObject(ids);
		return 0;
	}
	size_t taken = ids->elements;
	bind_entry *list = NULL, **tail = &list;
	for (size_t i = 0; i < ids->elements; i++) {
		const char *id = ids->element[i]->str;
		cleanup_free char *key = bind_entry_key(b, id);
		const char *hg[] = {"HGETALL", key};
		redisReply *h = bind_cmd(b, 2, hg, NULL);
		size_t rl = 0, cl = 0;
		const char *ns = bind_field(h, "ns", NULL),
		           *binding = bind_field(h, "binding", NULL);
		const char *result = bind_field(h, "result", &rl),
		           *rec = bind_field(h, "record", &cl);
		const char *start = bind_field(h, "start", NULL),
		           *att = bind_field(h, "attempts", NULL);
		const char *jid = bind_field(h, "journal", NULL);
		if (ns == NULL || binding == NULL || result == NULL || rec == NULL) {
			/* An index entry without its hash: nothing left to publish. */
			if (h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements == 0) {
				const char *zrem[] = {"ZREM", b->zkey, id};
				freeReplyObject(bind_cmd(b, 3, zrem, NULL));
			}
			freeReplyObject(h);
			continue;
		}
		bind_entry *e = gust_xcalloc(1, sizeof(*e));
		e->id = gust_xstrdup(id);
		e->ns = gust_xstrdup(ns);
		e->binding = gust_xstrdup(binding);
		e->journal_id = gust_xstrdup(jid ? jid : "");
		e->result = gust_xstrndup(result, rl);
		e->result_len = rl;
		e->record = gust_xstrndup(rec, cl);
		e->record_len = cl;
		e->start_ms = start ? atoll(start) : 0;
		e->attempts = att ? atoi(att) : 0;
		*tail = e;
		tail = &e->next;
		freeReplyObject(h);
	}
	freeReplyObject(ids);
	if (list)
		bind_attempt(b, list);
	return taken;
}

static void *bind_publish_main(void *arg)
{
	inv_binder *b = arg;
	const char *zc[] = {"ZCARD", b->zkey};
	redisReply *r = bind_cmd(b, 2, zc, NULL);
	if (r && r->type == REDIS_REPLY_INTEGER) {
		gust_gauge_set(b->m_pending, r->integer);
		if (r->integer > 0)
			gust_log_info("INV-BIND-RESUME",
			              "%lld pending publishes left by an earlier run",
			              (long long)r->integer);
	}
	freeReplyObject(r);
	bool takeover = true; /* nothing is in flight yet: every entry is ours to retry */
	uint64_t last_scan = 0;
	for (;;) {
		pthread_mutex_lock(&b->lock);
		if (b->pub_head == NULL && !b->stopping && !takeover) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&b->p_cv, &b->lock, &ts);
		}
		bind_entry *list = b->pub_head;
		b->pub_head = NULL;
		b->pub_tail = &b->pub_head;
		bool stopping = b->stopping;
		pthread_mutex_unlock(&b->lock);
		if (stopping) {
			/* Entries are in Redis: the next run publishes them. */
			while (list) {
				bind_entry *e = list;
				list = e->next;
				bind_entry_free(e);
			}
			break;
		}
		if (list)
			bind_attempt(b, list);
		uint64_t now = gust_now_ms();
		if (takeover || now - last_scan >= BIND_SCAN_MS) {
			/* The gauge follows Redis, so entries removed by hand (or by
			 * another process) stop counting. */
			if ((r = bind_cmd(b, 2, zc, NULL)) != NULL &&
			    r->type == REDIS_REPLY_INTEGER)
				gust_gauge_set(b->m_pending, r->integer);
			freeReplyObject(r);
			size_t taken = bind_scan(b, takeover);
			takeover = takeover && taken == BIND_BATCH;
			last_scan = now;
		}
	}
	return NULL;
}

int inv_binding_start(inv *v, gust_error **err)
{
	inv_binder *b = gust_xcalloc(1, sizeof(*b));
	b->v = v;
	b->start_ms = gust_wall_ms();
	b->zkey = gust_xasprintf("gust:bindings:pending:%s", v->cfg.id);
	pthread_mutex_init(&b->lock, NULL);
	pthread_cond_init(&b->q_cv, NULL);
	pthread_cond_init(&b->p_cv, NULL);
	b->in_tail = &b->in_head;
	b->pub_tail = &b->pub_head;
	b->out =
	    inv_bind_out_new(v->etcd, v->cfg.etcd, v->cfg.redis, (int)v->cfg.binding_timeout_ms);
	b->m_published = gust_counter_new("gust_invoker_binding_published_total",
	                                  "results published to output bindings", NULL);
	b->m_failures = gust_counter_new("gust_invoker_binding_failures_total",
	                                 "failed publish attempts and invalid bindings", NULL);
	b->m_pending =
	    gust_gauge_new("gust_invoker_binding_pending",
	                   "results queued for an output binding, not yet published", NULL);
	v->binder = b;
	if (pthread_create(&b->q_thread, NULL, bind_queue_main, b) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the binding queue thread");
	b->q_running = true;
	if (pthread_create(&b->p_thread, NULL, bind_publish_main, b) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the binding publish thread");
	b->p_running = true;
	return 0;
}

void inv_binding_stop(inv *v)
{
	inv_binder *b = v->binder;
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->lock);
	b->stopping = true;
	pthread_cond_broadcast(&b->q_cv);
	pthread_cond_broadcast(&b->p_cv);
	pthread_mutex_unlock(&b->lock);
	/* The queue thread first: what it makes durable is then left to the
	 * next run, not half-published by this one. */
	if (b->q_running)
		pthread_join(b->q_thread, NULL);
	if (b->p_running)
		pthread_join(b->p_thread, NULL);
	while (b->pub_head) {
		bind_entry *e = b->pub_head;
		b->pub_head = e->next;
		bind_entry_free(e);
	}
	inv_bind_out_free(b->out);
	if (b->qc)
		redisFree(b->qc);
	if (b->pc)
		redisFree(b->pc);
	pthread_mutex_destroy(&b->lock);
	pthread_cond_destroy(&b->q_cv);
	pthread_cond_destroy(&b->p_cv);
	free(b->zkey);
	free(b);
	v->binder = NULL;
}
