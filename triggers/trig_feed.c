/* trig_feed.c - the thread of one feed: open its source, poll it until told
 * to stop, reopen after a failure with a growing pause. */
#include <errno.h>
#include <string.h>

#include "gust/log.h"
#include "trigger.h"

int trig_src(const trig_feed *f)
{
	switch (f->cfg.kind) {
	case GUST_FEED_KAFKA:
		return TRIG_SRC_KAFKA;
	case GUST_FEED_REDIS_STREAM:
		return TRIG_SRC_STREAM;
	case GUST_FEED_REDIS_PUBSUB:
		return TRIG_SRC_PUBSUB;
	}
	return TRIG_SRC_SCHEDULE;
}

bool trig_feed_sleep(trig_feed *f, int ms)
{
	while (ms > 0 && !atomic_load(&f->stop)) {
		int step = ms < 50 ? ms : 50;
		usleep((useconds_t)step * 1000);
		ms -= step;
	}
	return !atomic_load(&f->stop);
}

bool trig_feed_backoff(trig_feed *f)
{
	int max = (int)f->t->cfg.backoff_max_ms;
	f->backoff_ms = f->backoff_ms ? f->backoff_ms * 2 : 20;
	if (f->backoff_ms > max)
		f->backoff_ms = max;
	return trig_feed_sleep(f, f->backoff_ms);
}

void trig_feed_backoff_reset(trig_feed *f)
{
	f->backoff_ms = 0;
}

int trig_feed_policy(trig_feed *f, gust_policy **pol, gust_error **err)
{
	*pol = NULL;
	int rv = gust_policy_load(f->t->etcd, f->ns, pol, err);
	if (rv != 0)
		return gust_error_wrap(err, "the operator's policy");
	gust_policy_add_own(*pol, f->t->cfg.redis);
	gust_policy_add_own(*pol, f->t->cfg.etcd);
	if ((rv = gust_feed_check_policy(&f->cfg, *pol, err)) != 0) {
		gust_policy_free(*pol);
		*pol = NULL;
	}
	return rv;
}

/* Every name the feed uses on the cluster's Redis is in its keyspace. */
static int feed_names_inside(trig_feed *f, gust_error **err)
{
	const char *names[2] = {f->cfg.stream, f->cfg.dead_letter};
	for (int i = 0; i < 2; i++)
		if (names[i] && !gust_scope_inside(f->ns, names[i]))
			return gust_error_set(err, GUST_EPERM,
			                      "'%.128s' is outside the keyspace of %s", names[i],
			                      f->ns);
	json_t *lists[2] = {f->cfg.channels, f->cfg.patterns};
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *e;
		json_array_foreach(lists[l], i, e)
		{
			if (!gust_scope_inside(f->ns, json_string_value(e)))
				return gust_error_set(err, GUST_EPERM,
				                      "'%.128s' is outside the keyspace of %s",
				                      json_string_value(e), f->ns);
		}
	}
	return 0;
}

int trig_feed_redis(trig_feed *f, int timeout_ms, redisContext **out, gust_error **err)
{
	*out = NULL;
	int rv;
	if (f->cfg.redis == NULL) {
		if ((rv = feed_names_inside(f, err)) != 0)
			return rv;
		return gust_feed_connect(f->t->etcd, f->t->cfg.redis, f->ns, timeout_ms, out, err);
	}
	gust_policy *pol = NULL;
	if ((rv = trig_feed_policy(f, &pol, err)) != 0)
		return rv;
	rv = gust_policy_redis_connect(pol, "feed parameter 'redis'", f->cfg.redis, timeout_ms, out,
	                               err);
	gust_policy_free(pol);
	return rv;
}

int trig_feed_kafka_connect(int fd, const struct sockaddr *addr, int addrlen, const char *id,
                            void *opaque)
{
	char why[256];
	if (gust_policy_sockaddr(opaque, addr, (socklen_t)addrlen, why, sizeof(why)) != 0) {
		gust_log_error("TRIG-FEED-EGRESS", "kafka %s: refused: %s", id, why);
		return EACCES;
	}
	if (connect(fd, addr, (socklen_t)addrlen) == -1 && errno != EINPROGRESS)
		return errno;
	return 0;
}

static void *feed_thread(void *arg)
{
	trig_feed *f = arg;
	int pause_ms = 0;
	while (!atomic_load(&f->stop)) {
		gust_error *err = NULL;
		int orv = f->ops->open(f, &err);
		if (orv == GUST_EPERM) {
			/* Refused: outside the namespace's keyspace or the operator's
			 * policy. Looked at again now and then, since a grant may
			 * come; never opened meanwhile. */
			pause_ms = 30000;
			gust_log_error("TRIG-FEED-REFUSED",
			               "feed %s (%s) refused: %s; again in %d ms", f->key,
			               f->ops->name, gust_error_msg(err), pause_ms);
			gust_error_free(err);
			f->ops->close(f);
			trig_feed_sleep(f, pause_ms);
			continue;
		}
		if (orv != 0) {
			pause_ms = pause_ms ? (pause_ms * 2 > 5000 ? 5000 : pause_ms * 2) : 200;
			gust_log_warn("TRIG-FEED-OPEN", "feed %s (%s): %s; again in %d ms", f->key,
			              f->ops->name, gust_error_msg(err), pause_ms);
			gust_error_free(err);
			f->ops->close(f);
			trig_feed_sleep(f, pause_ms);
			continue;
		}
		gust_log_info("TRIG-FEED-RUN", "feed %s (%s) running%s", f->key, f->ops->name,
		              f->backup ? " as backup" : "");
		pause_ms = 0;
		int rv = 0;
		while (!atomic_load(&f->stop) && (rv = f->ops->poll(f)) == 0)
			;
		f->ops->close(f);
		if (rv != 0 && !atomic_load(&f->stop)) {
			gust_log_warn("TRIG-FEED-REOPEN", "feed %s (%s) lost its source; reopening",
			              f->key, f->ops->name);
			trig_feed_sleep(f, 200);
		}
	}
	return NULL;
}

static void feed_free(trig_feed *f)
{
	gust_feed_clear(&f->cfg);
	free(f->key);
	free(f->ns);
	free(f->name);
	free(f);
}

int trig_feed_start(trig *t, const char *key, json_t *trigger, int64_t rev, bool backup,
                    trig_feed **out, gust_error **err)
{
	trig_feed *f = gust_xcalloc(1, sizeof(*f));
	f->t = t;
	f->key = gust_xstrdup(key);
	const char *slash = strchr(key, '/');
	f->ns = gust_xstrndup(key, slash ? (size_t)(slash - key) : strlen(key));
	f->name = gust_xstrdup(slash ? slash + 1 : "");
	f->rev = rev;
	f->backup = backup;
	/* The keyspace is the one of the key's namespace, whatever the record
	 * says (gust_feed_parse reads "namespace" from it). */
	const char *rns = json_string_value(json_object_get(trigger, "namespace"));
	if (rns == NULL || strcmp(rns, f->ns) != 0) {
		feed_free(f);
		return gust_error_set(err, GUST_EPERM, "the record's namespace is not its key's");
	}
	int rv = gust_feed_parse(trigger, &f->cfg, err);
	if (rv != 0) {
		feed_free(f);
		return rv;
	}
	switch (f->cfg.kind) {
	case GUST_FEED_KAFKA:
		f->ops = &trig_kafka_ops;
		break;
	case GUST_FEED_REDIS_STREAM:
		f->ops = &trig_stream_ops;
		break;
	case GUST_FEED_REDIS_PUBSUB:
		f->ops = &trig_pubsub_ops;
		break;
	default:
		f->ops = &trig_schedule_ops;
	}
	if ((rv = pthread_create(&f->thread, NULL, feed_thread, f)) != 0) {
		feed_free(f);
		return gust_error_set(err, GUST_EIO, "cannot start a feed thread");
	}
	*out = f;
	return 0;
}

void trig_feed_stop(trig_feed *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
	gust_log_info("TRIG-FEED-STOP", "feed %s (%s) stopped", f->key, f->ops->name);
	feed_free(f);
}
