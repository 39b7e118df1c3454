/* trig_owner.c - which feeds run here.
 *
 * Rendezvous hashing over the live members (/gust/trigger-members/, leased)
 * ranks the instances for each feed. The first in rank claims a Kafka or
 * Redis feed by creating /gust/feed-owners/<ns>/<name> under its lease (a
 * compare-and-swap, so two instances with different views of the members
 * never both run it) and runs it while the claim is its own; a member that
 * joins takes its share when the old owner, seeing it is no longer first,
 * stops the feed and deletes its claim. When an instance dies its lease
 * expires and its claims vanish within lease_ttl_s; the next in rank claims
 * them. Schedules need no claim: the first two in rank run them and the tick
 * key decides who fires each period (trig_schedule.c). Everything here runs
 * on one thread, every 100 ms or sooner after a mirror changed. */
#include <string.h>

#include "gust/log.h"
#include "trigger.h"

#define OWNER_PREFIX "/gust/feed-owners/"
#define MEMBER_PREFIX "/gust/trigger-members/"

static int owner_register(trig *t, gust_error **err)
{
	int64_t lease = gust_etcd_lease_keeper_id(t->lease);
	cleanup_free char *key = gust_xasprintf(MEMBER_PREFIX "%s", t->cfg.id);
	gust_buf v = {0};
	gust_buf_puts(&v, "{\"id\":");
	gust_buf_json_str(&v, t->cfg.id, strlen(t->cfg.id));
	gust_buf_puts(&v, "}");
	int rv = gust_etcd_put(t->etcd, key, v.data, v.len, lease, NULL, err);
	gust_buf_free(&v);
	return rv;
}

typedef struct owner_view {
	char **members;
	size_t nmembers;
	gust_map owners; /* feed key -> owner id (copies) */
	char **keys;     /* triggers with a feed annotation */
	json_t **recs;
	size_t n;
} owner_view;

static int view_members(void *arg, const char *key, void *value)
{
	owner_view *v = arg;
	v->members = gust_xrealloc(v->members, (v->nmembers + 1) * sizeof(char *));
	v->members[v->nmembers++] = gust_xstrdup(key);
	return 0;
}

static int view_owners(void *arg, const char *key, void *value)
{
	owner_view *v = arg;
	gust_map_put(&v->owners, key, gust_xstrdup(value));
	return 0;
}

static bool has_feed(json_t *rec)
{
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(rec, "annotations"), i, e)
	{
		const char *k = json_string_value(json_object_get(e, "key"));
		if (k && strcmp(k, "feed") == 0)
			return true;
	}
	return false;
}

static int view_triggers(void *arg, const char *key, void *value)
{
	owner_view *v = arg;
	if (!has_feed(value))
		return 0;
	v->keys = gust_xrealloc(v->keys, (v->n + 1) * sizeof(char *));
	v->recs = gust_xrealloc(v->recs, (v->n + 1) * sizeof(json_t *));
	v->keys[v->n] = gust_xstrdup(key);
	v->recs[v->n++] = json_incref(value);
	return 0;
}

static int free_value(void *arg, const char *key, void *value)
{
	free(value);
	return 1;
}

static void view_free(owner_view *v)
{
	for (size_t i = 0; i < v->nmembers; i++)
		free(v->members[i]);
	free(v->members);
	for (size_t i = 0; i < v->n; i++) {
		free(v->keys[i]);
		json_decref(v->recs[i]);
	}
	free(v->keys);
	free(v->recs);
	gust_map_filter(&v->owners, free_value, NULL);
	gust_map_free(&v->owners);
}

/* Our rank for feed key among the members (0 = first). */
static int owner_rank(trig *t, owner_view *v, const char *key)
{
	char buf[1024];
	snprintf(buf, sizeof(buf), "%s|%s", t->cfg.id, key);
	uint64_t mine = gust_hash64(buf, strlen(buf));
	int rank = 0;
	for (size_t i = 0; i < v->nmembers; i++) {
		if (strcmp(v->members[i], t->cfg.id) == 0)
			continue;
		snprintf(buf, sizeof(buf), "%s|%s", v->members[i], key);
		uint64_t h = gust_hash64(buf, strlen(buf));
		if (h > mine || (h == mine && strcmp(v->members[i], t->cfg.id) > 0))
			rank++;
	}
	return rank;
}

/* The modification revision of a trigger record is not in the mirror's
 * JSON; its "updated" stamp (set on every write) stands in for it. */
static int owner_free_refused(void *arg, const char *key, void *value)
{
	free(value);
	return 1;
}

static int64_t trigger_rev(json_t *rec)
{
	return json_integer_value(json_object_get(rec, "updated"));
}

static void owner_release(trig *t, const char *key)
{
	cleanup_free char *ck = gust_xasprintf(OWNER_PREFIX "%s", key);
	gust_error *err = NULL;
	if (gust_etcd_delete(t->etcd, ck, false, NULL, &err) != 0)
		gust_log_warn("TRIG-OWNER-RELEASE", "releasing %s: %s", key, gust_error_msg(err));
	gust_error_free(err);
}

static bool owner_claim(trig *t, const char *key)
{
	cleanup_free char *ck = gust_xasprintf(OWNER_PREFIX "%s", key);
	gust_buf v = {0};
	gust_buf_puts(&v, "{\"owner\":");
	gust_buf_json_str(&v, t->cfg.id, strlen(t->cfg.id));
	gust_buf_printf(&v, ",\"since\":%lld}", (long long)gust_wall_ms());
	gust_error *err = NULL;
	int rv = gust_etcd_cas(t->etcd, ck, 0, v.data, v.len, gust_etcd_lease_keeper_id(t->lease),
	                       NULL, &err);
	gust_buf_free(&v);
	if (rv == GUST_ECONFLICT) {
		/* Ours already (the watch has not echoed our claim yet)? */
		gust_kv kv = {0};
		if (gust_etcd_get(t->etcd, ck, &kv, NULL) == 0) {
			json_t *o = json_loadb(kv.value, kv.value_len, 0, NULL);
			const char *who = json_string_value(json_object_get(o, "owner"));
			rv = who && strcmp(who, t->cfg.id) == 0 ? 0 : GUST_ECONFLICT;
			json_decref(o);
			gust_kv_clear(&kv);
		}
	} else if (rv != 0)
		gust_log_warn("TRIG-OWNER-CLAIM", "claiming %s: %s", key, gust_error_msg(err));
	gust_error_free(err);
	return rv == 0;
}

static void feed_stop_locked(trig *t, trig_feed *f, bool release)
{
	char *key = gust_xstrdup(f->key);
	bool schedule = f->cfg.kind == GUST_FEED_SCHEDULE;
	trig_feed_stop(f);
	if (release && !schedule)
		owner_release(t, key);
	free(key);
}

typedef struct sweep_ctx {
	trig *t;
	owner_view *v;
	bool all;
} sweep_ctx;

/* Stops feeds whose trigger is gone (or all of them). */
static int sweep_gone(void *arg, const char *key, void *value)
{
	sweep_ctx *sc = arg;
	trig_feed *f = value;
	bool found = false;
	for (size_t i = 0; !sc->all && i < sc->v->n; i++)
		if (strcmp(sc->v->keys[i], key) == 0)
			found = true;
	if (found)
		return 0;
	const char *owner = gust_map_get(&sc->v->owners, key);
	feed_stop_locked(sc->t, f, owner && strcmp(owner, sc->t->cfg.id) == 0);
	return 1;
}

static void owner_reconcile(trig *t)
{
	owner_view v = {0};
	pthread_rwlock_rdlock(&t->lock);
	gust_map_filter(&t->maps[TRIG_MEMBERS], view_members, &v);
	gust_map_filter(&t->maps[TRIG_OWNERS], view_owners, &v);
	gust_map_filter(&t->maps[TRIG_TRIGGERS], view_triggers, &v);
	pthread_rwlock_unlock(&t->lock);
	bool self_listed = false;
	for (size_t i = 0; i < v.nmembers; i++)
		self_listed = self_listed || strcmp(v.members[i], t->cfg.id) == 0;
	if (!self_listed) /* our own registration may not have echoed yet */
		view_members(&v, t->cfg.id, NULL);

	pthread_mutex_lock(&t->feeds_lock);
	sweep_ctx sc = {t, &v, false};
	gust_map_filter(&t->feeds, sweep_gone, &sc);
	for (size_t i = 0; i < v.n; i++) {
		const char *key = v.keys[i];
		int rank = owner_rank(t, &v, key);
		gust_feed probe;
		int kind = GUST_FEED_NONE;
		gust_error *perr = NULL;
		int prv = gust_feed_parse(v.recs[i], &probe, &perr);
		if (prv == 0) {
			kind = probe.kind;
			gust_feed_clear(&probe);
		} else if (prv == GUST_EPERM) {
			/* A record older than the gateway's check (or written
			 * behind it): never run; said once per key and reason. */
			const char *was = gust_map_get(&t->refused, key);
			if (was == NULL || strcmp(was, gust_error_msg(perr)) != 0) {
				gust_log_error("TRIG-FEED-REFUSED", "trigger %s: %s", key,
				               gust_error_msg(perr));
				free(gust_map_put(&t->refused, key,
				                  gust_xstrdup(gust_error_msg(perr))));
			}
		}
		gust_error_free(perr);
		trig_feed *f = gust_map_get(&t->feeds, key);
		const char *owner = gust_map_get(&v.owners, key);
		bool mine = owner && strcmp(owner, t->cfg.id) == 0;
		bool want;
		if (kind == GUST_FEED_NONE)
			want = false; /* a bad feed: the gateway refuses those; skip */
		else if (kind == GUST_FEED_SCHEDULE)
			want = rank < 2;
		else
			want = rank == 0;
		if (f && want && kind != GUST_FEED_SCHEDULE && owner == NULL) {
			/* Our claim lapsed (a lease from an earlier life of this id):
			 * claim it again or let it go. */
			if (owner_claim(t, key)) {
				gust_map_put(&v.owners, key, gust_xstrdup(t->cfg.id));
				owner = gust_map_get(&v.owners, key);
				mine = true;
			} else {
				want = false;
			}
		}
		if (f && (f->rev != trigger_rev(v.recs[i]) || !want ||
		          (kind == GUST_FEED_SCHEDULE && f->backup != (rank == 1)) ||
		          (kind != GUST_FEED_SCHEDULE && owner && !mine))) {
			gust_map_del(&t->feeds, key);
			feed_stop_locked(t, f, mine && !want);
			f = NULL;
		}
		if (f || !want)
			continue;
		if (kind != GUST_FEED_SCHEDULE && !mine) {
			if (owner != NULL || !owner_claim(t, key))
				continue;
			gust_map_put(&v.owners, key, gust_xstrdup(t->cfg.id));
		}
		gust_error *err = NULL;
		int frv =
		    trig_feed_start(t, key, v.recs[i], trigger_rev(v.recs[i]), rank == 1, &f, &err);
		if (frv == 0)
			gust_map_put(&t->feeds, key, f);
		else if (frv ==
		         GUST_EPERM) /* outside its keyspace: a record older than the check */
			gust_log_error("TRIG-FEED-REFUSED", "trigger %s: %s", key,
			               gust_error_msg(err));
		else
			gust_log_warn("TRIG-FEED-BAD", "trigger %s: %s", key, gust_error_msg(err));
		gust_error_free(err);
	}
	gust_gauge_set(t->m_feeds, (int64_t)t->feeds.count);
	pthread_mutex_unlock(&t->feeds_lock);
	view_free(&v);
}

static void *owner_thread(void *arg)
{
	trig *t = arg;
	unsigned seen = ~0u;
	uint64_t last = 0;
	while (!atomic_load(&t->stopping)) {
		if (atomic_exchange(&t->lease_lost, false)) {
			/* Our claims died with the old lease: stop everything, say
			 * who we are again, and claim afresh. */
			gust_log_warn("TRIG-LEASE-LOST", "lease lost: stopping every feed");
			pthread_mutex_lock(&t->feeds_lock);
			owner_view empty = {0};
			sweep_ctx sc = {t, &empty, true};
			gust_map_filter(&t->feeds, sweep_gone, &sc);
			pthread_mutex_unlock(&t->feeds_lock);
			gust_error *err = NULL;
			if (owner_register(t, &err) != 0)
				gust_log_error("TRIG-REGISTER", "re-registering: %s",
				               gust_error_msg(err));
			gust_error_free(err);
		}
		unsigned now = atomic_load(&t->changes);
		if (now != seen || gust_now_ms() - last >= 1000) {
			seen = now;
			last = gust_now_ms();
			trig_sched_sync(t);
			owner_reconcile(t);
		}
		usleep(20 * 1000);
	}
	return NULL;
}

int trig_owner_start(trig *t, gust_error **err)
{
	int rv;
	if ((rv = owner_register(t, err)) != 0)
		return gust_error_wrap(err, "registering at " MEMBER_PREFIX);
	if ((rv = pthread_create(&t->owner_thread, NULL, owner_thread, t)) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the owner thread");
	return 0;
}

void trig_owner_stop(trig *t)
{
	if (atomic_exchange(&t->stopping, true) || t->owner_thread == 0)
		return;
	pthread_join(t->owner_thread, NULL);
	/* Stop every feed and hand its claim back at once. */
	pthread_mutex_lock(&t->feeds_lock);
	owner_view empty = {0};
	sweep_ctx sc = {t, &empty, true};
	gust_map_filter(&t->feeds, sweep_gone, &sc);
	gust_map_free(&t->feeds);
	gust_map_filter(&t->refused, owner_free_refused, NULL);
	gust_map_free(&t->refused);
	pthread_mutex_unlock(&t->feeds_lock);
}

size_t trig_owner_running(trig *t)
{
	pthread_mutex_lock(&t->feeds_lock);
	size_t n = t->feeds.count;
	pthread_mutex_unlock(&t->feeds_lock);
	return n;
}
