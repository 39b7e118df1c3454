/* sched_members.c - the invokers, mirrored from their leased keys in etcd
 * (/gust/invokers/<id> = {"id","address","memory_mb"}). A key that vanishes
 * (lease lapsed: the invoker died or was cut off) takes the invoker out of
 * placement at once; closing its socket fails the activations in flight
 * there, which the workers then answer as errors. */
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdatomic.h>
#include <string.h>

#include "gust/log.h"
#include "scheduler.h"

#define P_INV "/gust/invokers/"

static int by_id(const void *a, const void *b)
{
	return strcmp((*(sched_invoker *const *)a)->id, (*(sched_invoker *const *)b)->id);
}

/* Under the write lock: removes invoker i from the table. */
static void members_remove_at(sched *s, size_t i)
{
	sched_invoker *inv = s->invokers[i];
	memmove(&s->invokers[i], &s->invokers[i + 1],
	        (s->ninvokers - i - 1) * sizeof(s->invokers[0]));
	s->ninvokers--;
	inv->gone = true;
	/* From now on status_ms tells whether it is still alive (see reap). */
	inv->status_ms = gust_now_ms();
	gust_log_info("SCHED-INVOKER-DOWN", "invoker %s (%s) left placement", inv->id,
	              inv->address);
	/* Its socket is closed by sched_members_reap, after the lock is let go:
	 * nng_close waits for the callbacks of the activations in flight there,
	 * and those take this lock (placing a retry, releasing the slot). */
	s->graveyard = gust_xrealloc(s->graveyard, (s->ngraveyard + 1) * sizeof(*s->graveyard));
	s->graveyard[s->ngraveyard++] = inv;
}

/*
 * An invoker out of placement keeps its socket while it finishes what it
 * has (a drain: it left on purpose and still sends status), and loses it as
 * soon as it has nothing in flight or has been silent for status_timeout_ms
 * (dead or cut off: closing fails its activations now, so blocking callers
 * get their 502 and journaled ones run elsewhere, instead of waiting out
 * their deadlines). A killed invoker's connections reset on their own.
 */
void sched_members_reap(sched *s)
{
	uint64_t now = gust_now_ms();
	bool all = atomic_load(&s->stopping);
	sched_invoker **dead = NULL;
	size_t n = 0;
	pthread_rwlock_wrlock(&s->inv_lock);
	for (size_t i = 0; i < s->ngraveyard;) {
		sched_invoker *inv = s->graveyard[i];
		if (all || atomic_load(&inv->inflight) == 0 ||
		    now - inv->status_ms > (uint64_t)s->cfg.status_timeout_ms) {
			dead = gust_xrealloc(dead, (n + 1) * sizeof(*dead));
			dead[n++] = inv;
			s->graveyard[i] = s->graveyard[--s->ngraveyard];
		} else {
			i++;
		}
	}
	pthread_rwlock_unlock(&s->inv_lock);
	for (size_t i = 0; i < n; i++) {
		nng_close(dead[i]->sock);
		sched_invoker_unref(dead[i]);
	}
	free(dead);
}

static ssize_t members_find(sched *s, const char *id)
{
	for (size_t i = 0; i < s->ninvokers; i++)
		if (strcmp(s->invokers[i]->id, id) == 0)
			return (ssize_t)i;
	return -1;
}

/* Under the write lock: adds (or refreshes) an invoker. */
void sched_members_add(sched *s, const char *id, const char *addr, int mem)
{
	ssize_t at = members_find(s, id);
	if (at >= 0) {
		sched_invoker *cur = s->invokers[at];
		if (strcmp(cur->address, addr) == 0) {
			cur->memory_mb = mem;
			return;
		}
		members_remove_at(s, (size_t)at); /* restarted elsewhere */
	}
	sched_invoker *inv = gust_xcalloc(1, sizeof(*inv));
	atomic_init(&inv->refs, 1);
	inv->id = gust_xstrdup(id);
	inv->id_hash = gust_hash64(id, strlen(id));
	inv->address = gust_xstrdup(addr);
	inv->memory_mb = mem;
	inv->status_ms = gust_now_ms();
	int rv;
	/* Each request sets its own deadline on its aio, so the socket itself
	 * never times out; resends are off, so a dead invoker's requests fail
	 * at once (connection reset) instead of going to another one blindly. */
	if ((rv = gust_nng_req_open(&inv->sock, -1)) != 0) {
		free(inv->id);
		free(inv->address);
		free(inv);
		return;
	}
	/* The peer must hold an invoker certificate; a tcp:// address is
	 * refused unless this scheduler runs with insecure_transport. */
	gust_error *e = NULL;
	if ((rv = gust_transport_dial(s->transport, inv->sock, addr, GUST_ROLE_INVOKER,
	                              NNG_FLAG_NONBLOCK, NULL, &e)) != 0) {
		gust_log_error("SCHED-INVOKER-DIAL", "cannot dial invoker %s at %s: %s", id, addr,
		               gust_error_msg(e));
		gust_error_free(e);
		nng_close(inv->sock);
		free(inv->id);
		free(inv->address);
		free(inv);
		return;
	}
	s->invokers = gust_xrealloc(s->invokers, (s->ninvokers + 1) * sizeof(s->invokers[0]));
	s->invokers[s->ninvokers++] = inv;
	qsort(s->invokers, s->ninvokers, sizeof(s->invokers[0]), by_id);
	gust_gauge_set(s->m_invokers, (int64_t)s->ninvokers);
	gust_log_info("SCHED-INVOKER-UP", "invoker %s at %s with %d MB", id, addr, mem);
}

static void members_put(sched *s, const char *value, size_t len)
{
	json_t *o = json_loadb(value, len, 0, NULL);
	const char *id = json_string_value(json_object_get(o, "id"));
	const char *addr = json_string_value(json_object_get(o, "address"));
	int mem = (int)json_integer_value(json_object_get(o, "memory_mb"));
	if (id == NULL || addr == NULL || mem <= 0 || strlen(id) > 127)
		gust_log_warn("SCHED-INVOKER-BAD", "ignoring malformed invoker record");
	else
		sched_members_add(s, id, addr, mem);
	json_decref(o);
}

void sched_members_check(sched *s)
{
	uint64_t now = gust_now_ms();
	bool removed = false;
	pthread_rwlock_wrlock(&s->inv_lock);
	for (size_t i = s->ninvokers; i-- > 0;) {
		sched_invoker *inv = s->invokers[i];
		if (inv->has_status && now - inv->status_ms > (uint64_t)s->cfg.status_timeout_ms) {
			gust_log_warn("SCHED-INVOKER-SILENT",
			              "invoker %s sent no status for %llu ms", inv->id,
			              (unsigned long long)(now - inv->status_ms));
			members_remove_at(s, i);
			removed = true;
		}
	}
	if (removed)
		gust_gauge_set(s->m_invokers, (int64_t)s->ninvokers);
	pthread_rwlock_unlock(&s->inv_lock);
	if (removed)
		sched_members_reap(s);
}

static void members_events(void *arg, const gust_watch_event *evs, size_t n, int64_t rev)
{
	sched *s = arg;
	pthread_rwlock_wrlock(&s->inv_lock);
	for (size_t i = 0; i < n; i++) {
		const gust_kv *kv = &evs[i].kv;
		const char *id = kv->key + strlen(P_INV);
		if (evs[i].type == GUST_WATCH_PUT) {
			gust_map_put(&s->registered, id, (void *)1);
			members_put(s, kv->value, kv->value_len);
		} else {
			gust_map_del(&s->registered, id);
			ssize_t at = members_find(s, id);
			if (at >= 0)
				members_remove_at(s, (size_t)at);
		}
	}
	gust_gauge_set(s->m_invokers, (int64_t)s->ninvokers);
	pthread_rwlock_unlock(&s->inv_lock);
	sched_members_reap(s);
	/* A new invoker is new capacity. */
	sched_pump(s);
}

static int drop_registered(void *arg, const char *key, void *value)
{
	return 1;
}

static void members_reset(void *arg, const gust_kvs *snap)
{
	sched *s = arg;
	pthread_rwlock_wrlock(&s->inv_lock);
	/* Drop invokers the snapshot no longer has, then add or refresh the rest. */
	for (size_t i = s->ninvokers; i-- > 0;) {
		bool found = false;
		for (size_t j = 0; j < snap->n && !found; j++)
			found = strcmp(snap->kvs[j].key + strlen(P_INV), s->invokers[i]->id) == 0;
		if (!found)
			members_remove_at(s, i);
	}
	gust_map_filter(&s->registered, drop_registered, NULL);
	for (size_t j = 0; j < snap->n; j++) {
		gust_map_put(&s->registered, snap->kvs[j].key + strlen(P_INV), (void *)1);
		members_put(s, snap->kvs[j].value, snap->kvs[j].value_len);
	}
	gust_gauge_set(s->m_invokers, (int64_t)s->ninvokers);
	pthread_rwlock_unlock(&s->inv_lock);
	sched_members_reap(s);
	sched_pump(s);
}

int sched_members_start(sched *s, gust_error **err)
{
	static const gust_watch_ops ops = {members_events, members_reset};
	return gust_etcd_mirror_start(s->etcd, P_INV, &ops, s, &s->members_watch, err);
}

void sched_members_stop(sched *s)
{
	if (s->members_watch)
		gust_etcd_watch_stop(s->members_watch);
	s->members_watch = NULL;
	pthread_rwlock_wrlock(&s->inv_lock);
	while (s->ninvokers)
		members_remove_at(s, s->ninvokers - 1);
	free(s->invokers);
	s->invokers = NULL;
	gust_map_filter(&s->registered, drop_registered, NULL);
	gust_map_free(&s->registered);
	pthread_rwlock_unlock(&s->inv_lock);
	atomic_store(&s->stopping, true);
	sched_members_reap(s);
	free(s->graveyard);
	s->graveyard = NULL;
}
