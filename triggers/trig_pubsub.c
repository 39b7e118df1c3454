/* trig_pubsub.c - Redis pub/sub channels and patterns. Pub/sub keeps nothing:
 * a message published while no instance is subscribed (a takeover, a
 * reconnect) is gone, so this source is at most once, as documented. While
 * the scheduler pushes back the fire is retried and Redis buffers what is
 * published meanwhile (up to its client-output-buffer-limit pubsub); a fire
 * refused maxAttempts times for other reasons is dropped with a log line and
 * gust_trigger_pubsub_dropped_total.
 *
 * On the cluster's Redis the feed is the namespace's feed user, whose ACL
 * allows the channels gust:state:<ns>:* and, for PSUBSCRIBE, only that very
 * pattern (Redis compares patterns literally). So a feed with patterns
 * subscribes to the namespace's whole pattern once and keeps the messages
 * whose channel matches one of its own (fnmatch, the glob Redis uses), one
 * message per matching pattern as Redis would send. */
#include <fnmatch.h>
#include <poll.h>
#include <string.h>

#include "gust/log.h"
#include "trigger.h"

typedef struct pubsub_state {
	redisContext *c;
	gust_buf batch; /* ",{...}" per message */
	size_t n;
	uint64_t first_ms;
	trig_fire *fire;
	int attempts;
	bool filter; /* patterns matched here, not by Redis */
} pubsub_state;

static void pubsub_close(trig_feed *f)
{
	pubsub_state *s = f->state;
	if (s == NULL)
		return;
	trig_fire_free(s->fire);
	gust_buf_free(&s->batch);
	if (s->c)
		redisFree(s->c);
	free(s);
	f->state = NULL;
}

static int pubsub_subscribe(pubsub_state *s, const char *cmd, json_t *names)
{
	size_t n = json_array_size(names);
	if (n == 0)
		return 0;
	const char **argv = gust_xcalloc(n + 1, sizeof(char *));
	argv[0] = cmd;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = json_string_value(json_array_get(names, i));
	int rv = redisAppendCommandArgv(s->c, (int)n + 1, argv, NULL);
	free(argv);
	return rv == REDIS_OK ? 0 : -1;
}

static int pubsub_open(trig_feed *f, gust_error **err)
{
	pubsub_state *s = gust_xcalloc(1, sizeof(*s));
	f->state = s;
	/* As the namespace's feed user, or to a Redis the policy allows. */
	int rv = trig_feed_redis(f, 5000, &s->c, err);
	if (rv != 0)
		return rv;
	s->filter = f->cfg.redis == NULL && json_array_size(f->cfg.patterns) > 0;
	json_t *wide = s->filter ? json_pack("[s++]", "gust:state:", f->ns, ":*") : NULL;
	rv = pubsub_subscribe(s, "SUBSCRIBE", f->cfg.channels) != 0 ||
	     pubsub_subscribe(s, "PSUBSCRIBE", wide ? wide : f->cfg.patterns) != 0;
	json_decref(wide);
	if (rv != 0)
		return gust_error_set(err, GUST_EUNAVAIL, "redis subscribe: %s", s->c->errstr);
	int done = 0;
	while (!done)
		if (redisBufferWrite(s->c, &done) != REDIS_OK)
			return gust_error_set(err, GUST_EUNAVAIL, "redis: %s", s->c->errstr);
	return 0;
}

/* The next pushed message within wait_ms: 1 (in *out), 0 (none), -1 (lost). */
static int pubsub_next(pubsub_state *s, int wait_ms, redisReply **out)
{
	void *r = NULL;
	*out = NULL;
	if (redisGetReplyFromReader(s->c, &r) != REDIS_OK)
		return -1;
	if (r == NULL) {
		struct pollfd p = {.fd = s->c->fd, .events = POLLIN};
		int pr = poll(&p, 1, wait_ms);
		if (pr <= 0)
			return pr < 0 ? -1 : 0;
		if (redisBufferRead(s->c) != REDIS_OK ||
		    redisGetReplyFromReader(s->c, &r) != REDIS_OK)
			return -1;
		if (r == NULL)
			return 0;
	}
	*out = r;
	return 1;
}

static void pubsub_add_one(trig_feed *f, pubsub_state *s, redisReply *ch, redisReply *data,
                           const char *pat, size_t patlen)
{
	gust_buf_puts(&s->batch, s->n ? ",{\"channel\":" : "{\"channel\":");
	gust_buf_json_str(&s->batch, ch->str ?: "", ch->len);
	if (pat) {
		gust_buf_puts(&s->batch, ",\"pattern\":");
		gust_buf_json_str(&s->batch, pat, patlen);
	}
	gust_buf_puts(&s->batch, ",\"message\":");
	gust_buf_json_str(&s->batch, data->str ?: "", data->len);
	gust_buf_puts(&s->batch, "}");
	if (s->n++ == 0)
		s->first_ms = gust_now_ms();
	gust_counter_add(f->t->m_events[TRIG_SRC_PUBSUB], 1);
}

static void pubsub_add(trig_feed *f, pubsub_state *s, redisReply *r)
{
	/* ["message", channel, data] or ["pmessage", pattern, channel, data] */
	if (r->type != REDIS_REPLY_ARRAY)
		return;
	bool pm = r->elements == 4 && strcmp(r->element[0]->str ?: "", "pmessage") == 0;
	bool m = r->elements == 3 && strcmp(r->element[0]->str ?: "", "message") == 0;
	if (!pm && !m)
		return; /* subscribe confirmations */
	redisReply *ch = r->element[pm ? 2 : 1], *data = r->element[pm ? 3 : 2];
	if (!pm || !s->filter) {
		pubsub_add_one(f, s, ch, data, pm ? r->element[1]->str ?: "" : NULL,
		               pm ? r->element[1]->len : 0);
		return;
	}
	size_t i;
	json_t *p;
	json_array_foreach(f->cfg.patterns, i, p)
	{
		const char *pat = json_string_value(p);
		if (fnmatch(pat, ch->str ?: "", 0) == 0)
			pubsub_add_one(f, s, ch, data, pat, strlen(pat));
	}
}

static int pubsub_poll(trig_feed *f)
{
	pubsub_state *s = f->state;
	trig *t = f->t;
	if (s->fire == NULL) {
		size_t limit = (size_t)t->cfg.max_payload;
		while (s->n < (size_t)f->cfg.batch_size && s->batch.len + 64 < limit) {
			int64_t left = s->n
			                   ? (int64_t)(s->first_ms + (uint64_t)f->cfg.max_wait_ms) -
			                         (int64_t)gust_now_ms()
			                   : 200;
			if (s->n && left <= 0)
				break;
			redisReply *r;
			int rv = pubsub_next(s, (int)(left > 200 ? 200 : left < 0 ? 0 : left), &r);
			if (rv < 0)
				return -1;
			if (rv == 0) {
				if (s->n == 0)
					return 0;
				continue;
			}
			pubsub_add(f, s, r);
			freeReplyObject(r);
			if (atomic_load(&f->stop))
				return 0;
		}
		gust_buf p = {0};
		gust_buf_puts(&p, "{\"messages\":[");
		gust_buf_append(&p, s->batch.data, s->batch.len);
		gust_buf_puts(&p, "]}");
		s->fire = trig_fire_new(f, p.data, p.len, f->cfg.in_order);
		gust_buf_free(&p);
		s->attempts = 0;
	}
	char why[256];
	int o = trig_fire_count(s->fire) ? trig_fire_send(s->fire, why, sizeof(why)) : TRIG_OK;
	if (o == TRIG_RETRY) {
		trig_feed_backoff(f);
		return 0;
	}
	if (o == TRIG_FAILED && ++s->attempts < f->cfg.max_attempts) {
		trig_feed_backoff(f);
		return 0;
	}
	if (o == TRIG_FAILED) {
		gust_log_error("TRIG-PUBSUB-DROP",
		               "feed %s: %zu messages dropped after %d attempts: %s", f->key, s->n,
		               s->attempts, why);
		gust_counter_add(t->m_dropped, s->n);
	} else {
		gust_counter_add(t->m_acked[TRIG_SRC_PUBSUB], s->n);
	}
	trig_feed_backoff_reset(f);
	trig_fire_free(s->fire);
	s->fire = NULL;
	gust_buf_reset(&s->batch);
	s->n = 0;
	return 0;
}

const trig_source_ops trig_pubsub_ops = {"redis-pubsub", pubsub_open, pubsub_poll, pubsub_close};
