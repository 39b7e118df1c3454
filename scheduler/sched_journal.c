/* sched_journal.c - the journal of accepted activations: a Redis stream.
 *
 * A non-blocking or trigger activation is appended (XADD) before it is
 * acknowledged, and removed (XDEL) by the invoker right after its record, so
 * whatever is in the stream was accepted and has no record yet. One thread owns the Redis
 * connection and sends whatever is queued as one pipeline: under load,
 * appends are batched (group commit) without anyone waiting for a timer.
 * A new leader, and every leader once a second, replays the entries that no
 * activation in flight here owns: those of a dead leader or of activations
 * that ran out of attempts.
 *
 * An entry is {a: activation id, r: the request's bytes, h: HMAC of both
 * under the cluster secret (gust/integrity.h)}. Redis is shared with tenant
 * paths (feeds, bindings, dead-letter streams), so a replay believes only
 * entries whose h verifies, and whose request carries the MAC of the daemon
 * that resolved it; any other entry is deleted unrun, with an ERROR and
 * gust_scheduler_journal_rejected_total. */
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <string.h>

#include "gust/integrity.h"
#include "gust/log.h"
#include "gust/redis.h"
#include "scheduler.h"

#define JOURNAL_KEY "gust:journal"
#define REPLAY_GRACE_MS 2000

enum { J_APPEND, J_RECOVER };

typedef struct jop {
	int type;
	sched_act *a;
	sched_worker *w;
	struct jop *next;
	char mac[GUST_MAC_HEX_LEN + 1]; /* J_APPEND: the entry's h */
} jop;

struct sched_journal {
	sched *s;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	jop *head, **tail;
	bool stop;
	redisContext *c;
};

/* Appends a protobuf length-delimited field to encoded message bytes: the
 * parser takes the last occurrence, so this sets it without re-encoding. */
static void append_pb_string(nng_msg *m, uint32_t field, const char *s)
{
	uint8_t buf[16];
	size_t n = 0;
	uint64_t v = ((uint64_t)field << 3) | 2;
	do {
		buf[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	v = strlen(s);
	do {
		buf[n++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
		v >>= 7;
	} while (v);
	nng_msg_append(m, buf, n);
	nng_msg_append(m, s, strlen(s));
}

static void journal_post(sched_journal *j, int type, sched_act *a, sched_worker *w)
{
	jop *op = gust_xcalloc(1, sizeof(*op));
	op->type = type;
	op->a = a;
	op->w = w;
	pthread_mutex_lock(&j->lock);
	*j->tail = op;
	j->tail = &op->next;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->lock);
}

void sched_journal_append(sched *s, sched_act *a, sched_worker *w)
{
	journal_post(s->journal, J_APPEND, a, w);
}

void sched_journal_done(sched *s, sched_act *a)
{
	/* The invoker removes the entry itself, after the record, on its Redis
	 * connection (invoker/inv_record.c): so an entry leaves the journal only
	 * once its record is stored. Until that lands, remember the id so that
	 * a replay does not take the entry for an orphan. */
	if (a->journaled) {
		pthread_mutex_lock(&s->qlock);
		gust_map_put(&s->done_ids, a->id, (void *)(uintptr_t)gust_now_ms());
		pthread_mutex_unlock(&s->qlock);
	}
	sched_finish(s, a);
	sched_act_free(a);
}

static int done_expired(void *arg, const char *key, void *value)
{
	return gust_now_ms() - (uint64_t)(uintptr_t)value > *(uint64_t *)arg;
}

void sched_journal_forget(sched *s, uint64_t older_than_ms)
{
	pthread_mutex_lock(&s->qlock);
	gust_map_filter(&s->done_ids, done_expired, &older_than_ms);
	pthread_mutex_unlock(&s->qlock);
}

static bool journal_recently_done(sched *s, const char *id)
{
	pthread_mutex_lock(&s->qlock);
	bool done = gust_map_get(&s->done_ids, id) != NULL;
	pthread_mutex_unlock(&s->qlock);
	return done;
}

void sched_journal_recover(sched *s)
{
	journal_post(s->journal, J_RECOVER, NULL, NULL);
}

static bool journal_connect(sched_journal *j)
{
	if (j->c != NULL)
		return true;
	gust_error *e = NULL;
	if (gust_redis_connect(j->s->cfg.redis, 2000, &j->c, &e) != 0) {
		gust_log_warn("SCHED-JOURNAL-CONNECT", "%s", gust_error_msg(e));
		gust_error_free(e);
		return false;
	}
	return true;
}

static void journal_drop_conn(sched_journal *j)
{
	if (j->c)
		redisFree(j->c);
	j->c = NULL;
}

/* Sends the batch as one pipeline. Returns false if the connection broke
 * (nothing in the batch is considered done). */
static bool journal_pipeline(sched_journal *j, jop *batch)
{
	/* The requests go from their nng messages to the socket (writev), not
	 * through hiredis's output buffer: see gust_redis_sendv. */
	int n = 0;
	for (jop *op = batch; op; op = op->next)
		n += op->type == J_APPEND;
	if (n > 0) {
		int *argc = gust_xcalloc((size_t)n, sizeof(*argc));
		const char *(*argv)[9] = gust_xcalloc((size_t)n, sizeof(*argv));
		size_t(*lens)[9] = gust_xcalloc((size_t)n, sizeof(*lens));
		const char *const **av = gust_xcalloc((size_t)n, sizeof(*av));
		const size_t **al = gust_xcalloc((size_t)n, sizeof(*al));
		int i = 0;
		for (jop *op = batch; op; op = op->next) {
			if (op->type != J_APPEND)
				continue;
			/* Here, on the journal's thread, not the worker's: one
			 * SHA-256 pass over the request (~1 ms a megabyte with the
			 * CPU's SHA extensions, ~5-10 without: docs/scheduler.md). */
			if (gust_journal_mac_hex(op->a->id, strlen(op->a->id),
			                         nng_msg_body(op->a->req), nng_msg_len(op->a->req),
			                         op->mac) != 0) {
				/* cannot happen once started (the secret is loaded before
				 * the socket opens); a replay would drop the entry */
				gust_log_error("SCHED-JOURNAL-UNSIGNED",
				               "no cluster secret: journal entry of %s unsigned",
				               op->a->id);
				op->mac[0] = '\0';
			}
			const char *v[9] = {
			    "XADD", JOURNAL_KEY, "*", "a", op->a->id, "r", nng_msg_body(op->a->req),
			    "h",    op->mac};
			size_t l[9] = {4,
			               strlen(JOURNAL_KEY),
			               1,
			               1,
			               strlen(op->a->id),
			               1,
			               nng_msg_len(op->a->req),
			               1,
			               strlen(op->mac)};
			memcpy(argv[i], v, sizeof(v));
			memcpy(lens[i], l, sizeof(l));
			argc[i] = 9;
			av[i] = argv[i];
			al[i] = lens[i];
			i++;
		}
		int rv = gust_redis_sendv(j->c, n, argc, av, al);
		free(argc);
		free(argv);
		free(lens);
		free(av);
		free(al);
		if (rv != REDIS_OK) {
			gust_log_warn("SCHED-JOURNAL-IO", "redis: %s", j->c->errstr);
			journal_drop_conn(j);
			return false;
		}
	}
	for (jop *op = batch; op; op = op->next) {
		if (op->type == J_RECOVER)
			continue;
		redisReply *r = NULL;
		if (redisGetReply(j->c, (void **)&r) != REDIS_OK) {
			gust_log_warn("SCHED-JOURNAL-IO", "redis: %s", j->c->errstr);
			journal_drop_conn(j);
			return false;
		}
		if (op->type == J_APPEND) {
			if (r->type == REDIS_REPLY_STRING && r->len < sizeof(op->a->journal_id)) {
				memcpy(op->a->journal_id, r->str, r->len);
				op->a->journal_id[r->len] = '\0';
				op->a->journaled = true;
				append_pb_string(op->a->req, 21, op->a->journal_id);
			} else {
				gust_log_error("SCHED-JOURNAL-XADD", "redis refused XADD: %s",
				               r->type == REDIS_REPLY_ERROR ? r->str : "?");
			}
		}
		freeReplyObject(r);
	}
	return true;
}

const char *sched_journal_check(const struct redisReply *f, const char **bytes, size_t *blen,
                                gust_request_head *h)
{
	const redisReply *a = NULL, *r = NULL, *mac = NULL;
	if (f == NULL || f->type != REDIS_REPLY_ARRAY || f->elements % 2 != 0)
		return "not a field list";
	for (size_t k = 0; k + 1 < f->elements; k += 2) {
		const redisReply *name = f->element[k], *val = f->element[k + 1];
		if (name == NULL || val == NULL || name->type != REDIS_REPLY_STRING ||
		    val->type != REDIS_REPLY_STRING)
			return "a field that is not a string";
		/* a field given twice is refused: which one would be believed? */
		const redisReply **slot = name->len == 1 && name->str[0] == 'a'   ? &a
		                          : name->len == 1 && name->str[0] == 'r' ? &r
		                          : name->len == 1 && name->str[0] == 'h' ? &mac
		                                                                  : NULL;
		if (slot == NULL)
			return "a field other than a, r and h";
		if (*slot != NULL)
			return "a field given twice";
		*slot = val;
	}
	if (a == NULL || r == NULL)
		return "no activation id (a) or request (r)";
	if (mac == NULL)
		return "no MAC (h): not written by a scheduler";
	if (gust_msg_request_head(r->str, r->len, h) != 0 || h->activation_id.n == 0)
		return "the request (r) is not an ActivationRequest";
	if (h->activation_id.n != a->len || memcmp(h->activation_id.p, a->str, a->len) != 0)
		return "the request is of another activation than a";
	int rv = gust_journal_verify(a->str, a->len, r->str, r->len, mac->str, mac->len);
	if (rv != 0)
		return rv == GUST_EAUTH ? "its MAC (h) does not verify: forged or foreign"
		                        : "no cluster secret is loaded";
	/* h proves a scheduler of this cluster wrote it; the request's own MAC
	 * that a gateway or gust-trigger resolved it (a scheduler journals only
	 * those, but a secret rotated twice since the entry was written would
	 * fail here, not at the invoker on every attempt). */
	rv = gust_areq_verify_head(h);
	if (rv != 0)
		return "the request's own MAC does not verify";
	char why[256];
	if (gust_areq_code_check(h->namespace_, h->user, h->action, h->code_key, why,
	                         sizeof(why)) != 0)
		return "its code does not belong to the namespace it would run as";
	*bytes = r->str;
	*blen = r->len;
	return NULL;
}

/* Replays entries no activation in flight here owns. */
static void journal_replay(sched_journal *j)
{
	sched *s = j->s;
	if (!atomic_load(&s->leader) || !journal_connect(j))
		return;
	char start[64] = "-";
	uint64_t cutoff = (uint64_t)gust_wall_ms() - REPLAY_GRACE_MS;
	/* Stream ids start with their time in ms: ask only for entries older
	 * than the grace. Reading to "+" fetched every entry in flight (up to
	 * 200 of a megabyte each with trigger fires) once a second only to
	 * stop at the first young one: in a Kafka drain that was a third of the
	 * scheduler's page faults, and the work of sending them in Redis. */
	char end[32];
	snprintf(end, sizeof(end), "%llu", (unsigned long long)cutoff);
	int replayed = 0;
	for (int page = 0; page < 50; page++) {
		redisReply *r =
		    redisCommand(j->c, "XRANGE %s %s %s COUNT 200", JOURNAL_KEY, start, end);
		if (r == NULL) {
			journal_drop_conn(j);
			return;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
			freeReplyObject(r);
			break;
		}
		bool done = false;
		for (size_t i = 0; i < r->elements; i++) {
			redisReply *e = r->element[i];
			if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
				continue;
			const char *eid = e->element[0]->str;
			snprintf(start, sizeof(start), "(%s", eid);
			if (strtoull(eid, NULL, 10) > cutoff) {
				done = true; /* newer ones were just appended: not orphans */
				break;
			}
			gust_request_head h;
			const char *bytes = NULL;
			size_t blen = 0;
			const char *why = sched_journal_check(e->element[1], &bytes, &blen, &h);
			if (why != NULL) {
				/* Deleted, not skipped: it would come back every second. */
				gust_counter_add(s->m_journal_rejected, 1);
				gust_log_error("SCHED-JOURNAL-REJECTED",
				               "dropping journal entry %s unrun: %s", eid, why);
				freeReplyObject(redisCommand(j->c, "XDEL %s %b", JOURNAL_KEY, eid,
				                             strlen(eid)));
				continue;
			}
			char id[64];
			snprintf(id, sizeof(id), "%.*s", (int)h.activation_id.n, h.activation_id.p);
			if (sched_inflight_has(s, id) || journal_recently_done(s, id))
				continue;
			nng_msg *m;
			if (nng_msg_alloc(&m, 0) != 0 || nng_msg_append(m, bytes, blen) != 0)
				continue;
			append_pb_string(m, 21, eid);
			h.blocking = false;
			h.journal_id = (gust_msg_str){"", 0}; /* set below, from eid */
			sched_act *a = sched_act_new(s, m, &h, NULL);
			if (a == NULL) {
				nng_msg_free(m);
				continue;
			}
			a->blocking = false;
			a->journaled = true;
			snprintf(a->journal_id, sizeof(a->journal_id), "%s", eid);
			sched_charge(s, a->ns);
			sched_enqueue(s, a);
			replayed++;
		}
		size_t n = r->elements;
		freeReplyObject(r);
		if (done || n < 200)
			break;
	}
	if (replayed) {
		gust_counter_add(s->m_replayed, (uint64_t)replayed);
		gust_log_info("SCHED-JOURNAL-REPLAY", "replaying %d unfinished activations",
		              replayed);
	}
}

static void *journal_main(void *arg)
{
	sched_journal *j = arg;
	unsigned backoff_ms = 50;
	pthread_mutex_lock(&j->lock);
	while (!j->stop) {
		if (j->head == NULL) {
			pthread_cond_wait(&j->cv, &j->lock);
			continue;
		}
		jop *batch = j->head;
		j->head = NULL;
		j->tail = &j->head;
		pthread_mutex_unlock(&j->lock);

		bool ok = journal_connect(j) && journal_pipeline(j, batch);
		bool recover = false;
		for (jop *op = batch, *next; op; op = next) {
			next = op->next;
			op->next = NULL;
			if (op->type == J_RECOVER) {
				recover = true;
				free(op);
			} else if (op->type == J_APPEND) {
				/* A caller waits: answer now, even if Redis is away. */
				sched_worker_journaled(op->w, op->a,
				                       ok && op->a->journaled ? 0 : GUST_EUNAVAIL);
				free(op);
			}
		}
		if (recover && ok)
			journal_replay(j);
		pthread_mutex_lock(&j->lock);
		if (!ok) {
			/* Redis is away: its callers were refused (503); do not spin. */
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (long)backoff_ms * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			pthread_cond_timedwait(&j->cv, &j->lock, &ts);
			if (backoff_ms < 2000)
				backoff_ms *= 2;
		} else {
			backoff_ms = 50;
		}
	}
	pthread_mutex_unlock(&j->lock);
	return NULL;
}

int sched_journal_start(sched *s, gust_error **err)
{
	sched_journal *j = gust_xcalloc(1, sizeof(*j));
	j->s = s;
	j->tail = &j->head;
	pthread_mutex_init(&j->lock, NULL);
	pthread_cond_init(&j->cv, NULL);
	if (pthread_create(&j->thread, NULL, journal_main, j) != 0) {
		free(j);
		return gust_error_set(err, GUST_EIO, "cannot start the journal thread");
	}
	s->journal = j;
	return 0;
}

void sched_journal_stop(sched *s)
{
	sched_journal *j = s->journal;
	if (j == NULL)
		return;
	pthread_mutex_lock(&j->lock);
	j->stop = true;
	pthread_cond_signal(&j->cv);
	pthread_mutex_unlock(&j->lock);
	pthread_join(j->thread, NULL);
	while (j->head) {
		jop *n = j->head->next;
		free(j->head);
		j->head = n;
	}
	journal_drop_conn(j);
	free(j);
	s->journal = NULL;
}
