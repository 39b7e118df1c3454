/* trig_schedule.c - cron expressions and fixed intervals, with start and stop
 * dates. A schedule runs on the first two gust-trigger instances in
 * rendezvous order; each period is fired once across the cluster because the
 * firing instance must first move /gust/schedule-ticks/<ns>/<name> to that
 * period with a compare-and-swap. The second instance tries
 * schedule_backup_delay_ms late, so it fires only when the first is dead or
 * slow. A tick is claimed before it is fired: an instance that dies between
 * the two loses that one tick (once per period means at most once here). */
#include <string.h>

#include "gust/log.h"
#include "trigger.h"

#define TICK_PREFIX "/gust/schedule-ticks/"
#define TICK_GRACE_MS 1000 /* a new owner still fires a tick this late */

typedef struct sched_state {
	int64_t next_ms; /* next tick, wall clock; -1 = no more */
	trig_fire *fire;
	int64_t fire_tick;
	int attempts;
} sched_state;

static int sched_open(trig_feed *f, gust_error **err)
{
	sched_state *s = gust_xcalloc(1, sizeof(*s));
	f->state = s;
	s->next_ms = gust_feed_next(&f->cfg, gust_wall_ms() - TICK_GRACE_MS);
	return 0;
}

static void sched_close(trig_feed *f)
{
	sched_state *s = f->state;
	if (s == NULL)
		return;
	trig_fire_free(s->fire);
	free(s);
	f->state = NULL;
}

/* Moves the tick key to tick: true when this instance is the one to fire. */
static bool sched_claim(trig_feed *f, int64_t tick)
{
	trig *t = f->t;
	cleanup_free char *key = gust_xasprintf(TICK_PREFIX "%s", f->key);
	gust_kv kv = {0};
	gust_error *err = NULL;
	int64_t expect = 0;
	int rv = gust_etcd_get(t->etcd, key, &kv, &err);
	if (rv == 0) {
		json_t *o = json_loadb(kv.value, kv.value_len, 0, NULL);
		int64_t last = json_integer_value(json_object_get(o, "tick"));
		json_decref(o);
		expect = kv.mod_revision;
		gust_kv_clear(&kv);
		if (last >= tick)
			return false; /* fired already */
	} else if (rv != GUST_ENOENT) {
		gust_log_warn("TRIG-SCHEDULE-ETCD", "schedule %s: reading its tick: %s", f->key,
		              gust_error_msg(err));
		gust_error_free(err);
		return false;
	}
	gust_error_free(err);
	err = NULL;
	char v[256];
	int n =
	    snprintf(v, sizeof(v), "{\"tick\":%lld,\"by\":\"%.128s\"}", (long long)tick, t->cfg.id);
	rv = gust_etcd_cas(t->etcd, key, expect, v, (size_t)n, 0, NULL, &err);
	if (rv != 0 && rv != GUST_ECONFLICT)
		gust_log_warn("TRIG-SCHEDULE-ETCD", "schedule %s: claiming tick %lld: %s", f->key,
		              (long long)tick, gust_error_msg(err));
	gust_error_free(err);
	return rv == 0;
}

static int sched_poll(trig_feed *f)
{
	sched_state *s = f->state;
	trig *t = f->t;
	if (s->fire == NULL) {
		if (s->next_ms < 0)
			return trig_feed_sleep(f, 200), 0; /* past its stop date */
		int64_t now = gust_wall_ms();
		int64_t due = s->next_ms + (f->backup ? t->cfg.schedule_backup_delay_ms : 0);
		if (now < due) {
			trig_feed_sleep(f, (int)(due - now > 100 ? 100 : due - now));
			return 0;
		}
		int64_t tick = s->next_ms;
		s->next_ms = gust_feed_next(&f->cfg, tick);
		if (now - tick > TICK_GRACE_MS + t->cfg.schedule_backup_delay_ms) {
			/* far behind (a stall): skip to the current period */
			s->next_ms = gust_feed_next(&f->cfg, now - TICK_GRACE_MS);
			return 0;
		}
		if (!sched_claim(f, tick))
			return 0;
		gust_counter_add(t->m_events[TRIG_SRC_SCHEDULE], 1);
		char *payload = f->cfg.payload ? json_dumps(f->cfg.payload, JSON_COMPACT) : NULL;
		s->fire = trig_fire_new(f, payload, payload ? strlen(payload) : 0, false);
		free(payload);
		s->fire_tick = tick;
		s->attempts = 0;
		gust_log_debug("TRIG-SCHEDULE-FIRE", "schedule %s: tick %lld fired %lld ms late",
		               f->key, (long long)tick, (long long)(now - tick));
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
		gust_log_error("TRIG-SCHEDULE-FAILED",
		               "schedule %s: tick %lld given up after %d "
		               "attempts: %s",
		               f->key, (long long)s->fire_tick, s->attempts, why);
		gust_counter_add(t->m_dead[TRIG_SRC_SCHEDULE], 1);
	} else {
		gust_counter_add(t->m_acked[TRIG_SRC_SCHEDULE], 1);
	}
	trig_feed_backoff_reset(f);
	trig_fire_free(s->fire);
	s->fire = NULL;
	return 0;
}

const trig_source_ops trig_schedule_ops = {"schedule", sched_open, sched_poll, sched_close};
