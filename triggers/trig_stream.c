/* trig_stream.c - the Redis streams source: a consumer group read with
 * XREADGROUP (consumer name = this instance's id), fired in batches, and
 * XACKed only after the scheduler acknowledged the fire. On open the owner
 * first takes over every pending entry of the group with XAUTOCLAIM (entries
 * a dead owner read and never acknowledged), then reads new ones. A fire
 * refused maxAttempts times for other reasons than pushback goes to the
 * dead-letter stream (XADD, a log line and a metric) and is then XACKed. */
#include <poll.h>
#include <string.h>

#include "gust/log.h"
#include "trigger.h"

typedef struct stream_entry {
	char *id;
	char *json; /* {"stream","id","fields":{...}} */
	redisReply *fields;
} stream_entry;

typedef struct stream_state {
	redisContext *c;
	bool reclaiming;
	char cursor[64];
	stream_entry *e;
	size_t n, cap;
	size_t nfire;
	trig_fire *fire;
	int attempts;
	uint64_t first_ms;
} stream_state;

static void stream_entry_clear(stream_entry *e)
{
	free(e->id);
	free(e->json);
	if (e->fields)
		freeReplyObject(e->fields);
	memset(e, 0, sizeof(*e));
}

static void stream_close(trig_feed *f)
{
	stream_state *s = f->state;
	if (s == NULL)
		return;
	trig_fire_free(s->fire);
	for (size_t i = 0; i < s->n; i++)
		stream_entry_clear(&s->e[i]);
	free(s->e);
	if (s->c)
		redisFree(s->c);
	free(s);
	f->state = NULL;
}

static redisReply *stream_cmd(stream_state *s, int argc, const char **argv)
{
	redisReply *r = redisCommandArgv(s->c, argc, argv, NULL);
	return r;
}

static int stream_open(trig_feed *f, gust_error **err)
{
	stream_state *s = gust_xcalloc(1, sizeof(*s));
	f->state = s;
	/* As the namespace's feed user, or to a Redis the policy allows. */
	int rv = trig_feed_redis(f, f->cfg.max_wait_ms + 5000, &s->c, err);
	if (rv != 0)
		return rv;
	const char *create[] = {"XGROUP",     "CREATE",        f->cfg.stream,
	                        f->cfg.group, f->cfg.start_id, "MKSTREAM"};
	redisReply *r = stream_cmd(s, 6, create);
	if (r == NULL)
		return gust_error_set(err, GUST_EUNAVAIL, "redis: %s", s->c->errstr);
	bool ok = r->type != REDIS_REPLY_ERROR || strncmp(r->str, "BUSYGROUP", 9) == 0;
	if (!ok)
		rv = gust_error_set(err, GUST_EINVAL, "XGROUP CREATE %s %s: %s", f->cfg.stream,
		                    f->cfg.group, r->str);
	freeReplyObject(r);
	s->reclaiming = true;
	snprintf(s->cursor, sizeof(s->cursor), "0-0");
	return rv;
}

/* Takes the entries of an XREADGROUP/XAUTOCLAIM entry array into s->e. */
static void stream_take(trig_feed *f, stream_state *s, redisReply *arr)
{
	for (size_t i = 0; arr && arr->type == REDIS_REPLY_ARRAY && i < arr->elements; i++) {
		redisReply *ent = arr->element[i];
		if (ent->type != REDIS_REPLY_ARRAY || ent->elements != 2 ||
		    ent->element[0]->type != REDIS_REPLY_STRING)
			continue; /* a deleted entry (nil) */
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 64;
			s->e = gust_xrealloc(s->e, s->cap * sizeof(*s->e));
		}
		stream_entry *e = &s->e[s->n];
		memset(e, 0, sizeof(*e));
		e->id = gust_xstrdup(ent->element[0]->str);
		gust_buf b = {0};
		gust_buf_puts(&b, "{\"stream\":");
		gust_buf_json_str(&b, f->cfg.stream, strlen(f->cfg.stream));
		gust_buf_puts(&b, ",\"id\":");
		gust_buf_json_str(&b, e->id, strlen(e->id));
		gust_buf_puts(&b, ",\"fields\":{");
		redisReply *fl = ent->element[1];
		for (size_t j = 0; fl->type == REDIS_REPLY_ARRAY && j + 1 < fl->elements; j += 2) {
			if (j)
				gust_buf_puts(&b, ",");
			gust_buf_json_str(&b, fl->element[j]->str ?: "", fl->element[j]->len);
			gust_buf_puts(&b, ":");
			gust_buf_json_str(&b, fl->element[j + 1]->str ?: "",
			                  fl->element[j + 1]->len);
		}
		gust_buf_puts(&b, "}}");
		e->json = gust_buf_steal(&b);
		/* keep the fields for a dead letter */
		ent->element[1] = NULL;
		e->fields = fl;
		if (s->n == 0)
			s->first_ms = gust_now_ms();
		s->n++;
		gust_counter_add(f->t->m_events[TRIG_SRC_STREAM], 1);
	}
}

static int stream_read(trig_feed *f, stream_state *s)
{
	char count[24], block[24];
	size_t want = (size_t)f->cfg.batch_size - s->n;
	snprintf(count, sizeof(count), "%zu", want);
	if (s->reclaiming) {
		/* Everything pending in the group is ours now: the claim in etcd
		 * makes this instance the feed's only consumer. */
		const char *argv[] = {"XAUTOCLAIM", f->cfg.stream, f->cfg.group, f->t->cfg.id,
		                      "0",          s->cursor,     "COUNT",      count};
		redisReply *r = stream_cmd(s, 8, argv);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
			if (r)
				freeReplyObject(r);
			return -1;
		}
		stream_take(f, s, r->element[1]);
		snprintf(s->cursor, sizeof(s->cursor), "%s", r->element[0]->str ?: "0-0");
		if (strcmp(s->cursor, "0-0") == 0)
			s->reclaiming = false;
		freeReplyObject(r);
		return 0;
	}
	int64_t left =
	    s->n ? (int64_t)(s->first_ms + (uint64_t)f->cfg.max_wait_ms) - (int64_t)gust_now_ms()
	         : 200;
	if (left < 1)
		left = 1;
	if (left > 200)
		left = 200;
	snprintf(block, sizeof(block), "%lld", (long long)left);
	const char *argv[] = {"XREADGROUP", "GROUP", f->cfg.group, f->t->cfg.id,  "COUNT", count,
	                      "BLOCK",      block,   "STREAMS",    f->cfg.stream, ">"};
	redisReply *r = stream_cmd(s, 11, argv);
	if (r == NULL)
		return -1;
	if (r->type == REDIS_REPLY_ERROR) {
		gust_log_warn("TRIG-STREAM-READ", "feed %s: %s", f->key, r->str);
		freeReplyObject(r);
		return -1; /* e.g. NOGROUP after the stream was deleted: reopen */
	}
	if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
	    r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2)
		stream_take(f, s, r->element[0]->element[1]);
	freeReplyObject(r);
	return 0;
}

static trig_fire *stream_build(trig_feed *f, stream_state *s)
{
	gust_buf b = {0};
	size_t limit = (size_t)f->t->cfg.max_payload;
	gust_buf_puts(&b, "{\"messages\":[");
	size_t i;
	for (i = 0; i < s->n; i++) {
		size_t mark = b.len;
		if (i)
			gust_buf_puts(&b, ",");
		gust_buf_puts(&b, s->e[i].json);
		if (b.len + 2 > limit && i > 0) {
			b.len = mark;
			break;
		}
	}
	gust_buf_puts(&b, "]}");
	s->nfire = i;
	if (b.len > limit) {
		gust_buf_free(&b);
		s->nfire = 1;
		return NULL;
	}
	trig_fire *x = trig_fire_new(f, b.data, b.len, f->cfg.in_order);
	gust_buf_free(&b);
	return x;
}

static int stream_ack(trig_feed *f, stream_state *s, size_t n)
{
	const char **argv = gust_xcalloc(n + 3, sizeof(char *));
	argv[0] = "XACK";
	argv[1] = f->cfg.stream;
	argv[2] = f->cfg.group;
	for (size_t i = 0; i < n; i++)
		argv[3 + i] = s->e[i].id;
	redisReply *r = stream_cmd(s, (int)n + 3, argv);
	free(argv);
	int rv = r && r->type == REDIS_REPLY_INTEGER ? 0 : -1;
	if (r)
		freeReplyObject(r);
	return rv;
}

static int stream_dead_letter(trig_feed *f, stream_state *s, size_t n, const char *why)
{
	for (size_t i = 0; i < n; i++) {
		redisReply *fl = s->e[i].fields;
		size_t nf = fl && fl->type == REDIS_REPLY_ARRAY ? fl->elements : 0;
		const char **argv = gust_xcalloc(nf + 9, sizeof(char *));
		size_t *lens = gust_xcalloc(nf + 9, sizeof(size_t));
		int a = 0;
		const char *fixed[] = {"XADD",     f->cfg.dead_letter, "*", "gust-id",
		                       s->e[i].id, "gust-error",       why};
		for (; a < 7; a++)
			argv[a] = fixed[a], lens[a] = strlen(fixed[a]);
		for (size_t j = 0; j < nf; j++, a++)
			argv[a] = fl->element[j]->str ?: "", lens[a] = fl->element[j]->len;
		redisReply *r = redisCommandArgv(s->c, a, argv, lens);
		free(argv);
		free(lens);
		bool ok = r && r->type == REDIS_REPLY_STRING;
		if (r)
			freeReplyObject(r);
		if (!ok)
			return -1;
	}
	return 0;
}

static void stream_drop_front(stream_state *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		stream_entry_clear(&s->e[i]);
	memmove(s->e, s->e + n, (s->n - n) * sizeof(*s->e));
	s->n -= n;
	s->nfire = 0;
	if (s->n)
		s->first_ms = gust_now_ms();
}

static int stream_poll(trig_feed *f)
{
	stream_state *s = f->state;
	trig *t = f->t;
	if (s->fire == NULL) {
		if (s->n < (size_t)f->cfg.batch_size) {
			if (stream_read(f, s) != 0)
				return -1;
			if (s->n == 0)
				return 0;
			if (s->reclaiming)
				return 0;
			if (s->n < (size_t)f->cfg.batch_size &&
			    gust_now_ms() < s->first_ms + (uint64_t)f->cfg.max_wait_ms)
				return 0;
		}
		s->attempts = 0;
		if ((s->fire = stream_build(f, s)) == NULL) {
			gust_log_error(
			    "TRIG-STREAM-TOOBIG",
			    "feed %s: entry %s is larger than max_payload; sending it to "
			    "the dead-letter stream %s",
			    f->key, s->e[0].id, f->cfg.dead_letter);
			if (stream_dead_letter(f, s, 1, "larger than the payload limit") != 0 ||
			    stream_ack(f, s, 1) != 0)
				return -1;
			gust_counter_add(t->m_dead[TRIG_SRC_STREAM], 1);
			stream_drop_front(s, 1);
			return 0;
		}
	}
	char why[256];
	int o = trig_fire_count(s->fire) ? trig_fire_send(s->fire, why, sizeof(why)) : TRIG_OK;
	if (o == TRIG_RETRY) {
		if (f->backoff_ms == 0)
			gust_log_info("TRIG-STREAM-PAUSE", "feed %s paused: %s", f->key, why);
		trig_feed_backoff(f);
		return 0;
	}
	if (o == TRIG_FAILED && ++s->attempts < f->cfg.max_attempts) {
		gust_log_warn("TRIG-STREAM-RETRY", "feed %s: attempt %d of %d failed: %s", f->key,
		              s->attempts, f->cfg.max_attempts, why);
		trig_feed_backoff(f);
		return 0;
	}
	if (o == TRIG_FAILED) {
		if (stream_dead_letter(f, s, s->nfire, why) != 0)
			return -1;
		gust_log_error("TRIG-STREAM-DEAD",
		               "feed %s: %zu entries from %s sent to dead-letter stream %s after "
		               "%d attempts: %s",
		               f->key, s->nfire, s->e[0].id, f->cfg.dead_letter, s->attempts, why);
		gust_counter_add(t->m_dead[TRIG_SRC_STREAM], s->nfire);
	}
	trig_feed_backoff_reset(f);
	if (stream_ack(f, s, s->nfire) != 0)
		return -1; /* reopen: the entries stay pending and come back (duplicates) */
	gust_counter_add(t->m_acked[TRIG_SRC_STREAM], s->nfire);
	trig_fire_free(s->fire);
	s->fire = NULL;
	stream_drop_front(s, s->nfire);
	return 0;
}

const trig_source_ops trig_stream_ops = {"redis-stream", stream_open, stream_poll, stream_close};
