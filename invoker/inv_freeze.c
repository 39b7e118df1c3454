/*
 * inv_freeze.c - idle warm sandboxes are frozen, so that nothing runs
 * unbilled between activations.
 *
 * A function can leave work behind when it answers: a thread, a timer, a
 * child process. OpenWhisk pauses an idle container for the same reason.
 * Here a thread of its own (the freezer) stops, through the cgroup freezer,
 * every warm sandbox that has had no activation in flight for
 * freeze_idle_ms, and the worker that takes a frozen sandbox for its next
 * activation thaws it first.
 *
 * Why a delay and not at once: a thaw is one write to the cgroup file system
 * on the activation's path (measured in bench/RESULTS.md), and back-to-back
 * calls of one action, the case warm sandboxes exist for, should pay nothing.
 * Within freeze_idle_ms of its answer a function still runs unbilled; that is
 * the bound this file gives, not zero.
 *
 * Why a thread: a freeze is a write that takes the kernel's cgroup_mutex and
 * walks the group's tasks; the pool's lock is never held across it, and no
 * worker waits for a freeze it did not ask for, except the one that wants
 * the very sandbox being frozen at that moment (then it waits for that one
 * write, and thaws).
 *
 * Locking: a slot's fz_lock orders its freeze and thaw writes; fz_state is
 * the slot's state, moved away from THAWED only under the pool lock while no
 * activation is in flight, so that a worker that took the slot afterwards
 * (under the same lock) sees it. Order: pool lock, then fz_lock by trylock
 * only (the freezer); workers and slot_free take fz_lock without the pool
 * lock.
 *
 * Stem cells are not frozen: they hold no tenant's code, only our launcher
 * waiting on its stdin.
 */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "gust/log.h"
#include "gust/util.h"
#include "invoker.h"

enum { FZ_THAWED = 0, FZ_FREEZING, FZ_FROZEN, FZ_FAILED };

void inv_freeze_slot_init(inv_slot *s)
{
	pthread_mutex_init(&s->fz_lock, NULL);
	atomic_store(&s->fz_state, FZ_THAWED);
	s->fz_init = true;
}

/* Under v->lock: the slot s went idle. Wakes the freezer only when it sleeps
 * without a deadline (no other idle slot was waiting), so that a steady
 * stream of activations costs no wake-up per call. */
void inv_freeze_idle(inv *v, inv_slot *s)
{
	(void)s;
	if (v->fz_running && v->fz_sleeping)
		pthread_cond_signal(&v->fz_cv);
}

void inv_freeze_thaw(inv *v, inv_slot *s)
{
	/* Moved away from THAWED only before this worker took the slot, under
	 * the pool lock it took it under: a plain load is enough to skip. */
	if (atomic_load(&s->fz_state) == FZ_THAWED || s->sb == NULL)
		return;
	uint64_t t0 = gust_now_us();
	pthread_mutex_lock(&s->fz_lock); /* waits out a freeze in progress */
	if (atomic_load(&s->fz_state) == FZ_FROZEN) {
		gust_error *err = NULL;
		if (inv_sandbox_freeze(s->sb, false, &err) != 0) {
			/* The run would wait for its deadline in a stopped sandbox. */
			gust_log_error("INV-THAW-FAIL",
			               "thawing the sandbox of %s: %s; dropping it", s->key,
			               gust_error_msg(err));
			gust_error_free(err);
		}
		gust_gauge_add(v->m_frozen, -1);
		gust_histogram_observe_us(v->m_thaw, gust_now_us() - t0);
		atomic_store(&s->fz_state, FZ_THAWED);
	}
	/* FZ_FAILED stays: a sandbox the kernel would not freeze is not tried
	 * again. */
	pthread_mutex_unlock(&s->fz_lock);
}

void inv_freeze_forget(inv *v, inv_slot *s)
{
	if (!s->fz_init)
		return;
	/* A freeze in progress finishes before the sandbox goes; destroying a
	 * frozen sandbox thaws it after the kill (sandbox.c). */
	pthread_mutex_lock(&s->fz_lock);
	if (atomic_load(&s->fz_state) == FZ_FROZEN)
		gust_gauge_add(v->m_frozen, -1);
	pthread_mutex_unlock(&s->fz_lock);
	pthread_mutex_destroy(&s->fz_lock);
}

/* Under v->lock: an idle slot whose time has come, with its fz_lock taken
 * and its state FREEZING; or NULL, with *wait_ms the time until the next one
 * is due (-1: none idle). */
static inv_slot *fz_pick(inv *v, uint64_t now, int64_t *wait_ms)
{
	uint64_t delay = (uint64_t)v->cfg.freeze_idle_ms;
	*wait_ms = -1;
	for (inv_slot *s = v->slots; s != NULL; s = s->next) {
		if (s->inflight > 0 || !s->ready || s->sb == NULL ||
		    atomic_load(&s->fz_state) != FZ_THAWED)
			continue;
		uint64_t due = s->last_used_ms + delay;
		if (due > now) {
			int64_t w = (int64_t)(due - now);
			if (*wait_ms < 0 || w < *wait_ms)
				*wait_ms = w;
			continue;
		}
		/* Held: a worker thaws it (it is busy again) or it is being
		 * freed. Look again soon rather than wait on the lock here. */
		if (pthread_mutex_trylock(&s->fz_lock) != 0) {
			if (*wait_ms < 0 || *wait_ms > 10)
				*wait_ms = 10;
			continue;
		}
		atomic_store(&s->fz_state, FZ_FREEZING);
		return s;
	}
	return NULL;
}

static void *fz_main(void *arg)
{
	inv *v = arg;
	pthread_mutex_lock(&v->lock);
	while (!v->fz_stopping) {
		int64_t wait_ms;
		inv_slot *s = fz_pick(v, gust_now_ms(), &wait_ms);
		if (s != NULL) {
			pthread_mutex_unlock(&v->lock);
			gust_error *err = NULL;
			int rv = inv_sandbox_freeze(s->sb, true, &err);
			if (rv == 0) {
				gust_gauge_add(v->m_frozen, 1);
				gust_counter_add(v->m_freezes, 1);
			} else {
				/* Left running; not tried again for this sandbox. */
				gust_log_warn("INV-FREEZE-FAIL",
				              "freezing the idle sandbox of %s: %s", s->key,
				              gust_error_msg(err));
				gust_error_free(err);
			}
			atomic_store(&s->fz_state, rv == 0 ? FZ_FROZEN : FZ_FAILED);
			pthread_mutex_unlock(&s->fz_lock); /* s may go from here on */
			pthread_mutex_lock(&v->lock);
			continue;
		}
		if (wait_ms < 0) {
			v->fz_sleeping = true;
			pthread_cond_wait(&v->fz_cv, &v->lock);
			v->fz_sleeping = false;
		} else {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += wait_ms / 1000;
			ts.tv_nsec += (wait_ms % 1000) * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&v->fz_cv, &v->lock, &ts);
		}
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

int inv_freeze_start(inv *v, gust_error **err)
{
	v->m_frozen = gust_gauge_new("gust_invoker_sandboxes_frozen",
	                             "idle warm sandboxes stopped by the cgroup freezer", NULL);
	v->m_freezes =
	    gust_counter_new("gust_invoker_freezes_total", "idle warm sandboxes frozen", NULL);
	v->m_thaw = gust_histogram_new("gust_invoker_thaw_seconds",
	                               "time a warm activation spent thawing its sandbox", NULL);
	if (v->cfg.freeze_idle_ms < 0) {
		gust_log_warn("INV-FREEZE-OFF", "config key 'freeze_idle_ms' is -1: idle warm "
		                                "sandboxes keep running between activations");
		return 0;
	}
	if (!inv_cgroups_can_freeze(v->cgroups)) {
		gust_log_warn("INV-FREEZE-OFF",
		              "no cgroup freezer (cgroups %s): idle warm sandboxes keep running "
		              "between activations",
		              inv_cgroups_backend(v->cgroups));
		return 0;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->fz_cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_lock(&v->lock);
	v->fz_running = true;
	pthread_mutex_unlock(&v->lock);
	if (pthread_create(&v->fz_thread, NULL, fz_main, v) != 0) {
		v->fz_running = false;
		return gust_error_set(err, GUST_EIO, "cannot start the freezer thread");
	}
	gust_log_info("INV-FREEZE", "idle warm sandboxes are frozen after %lld ms",
	              v->cfg.freeze_idle_ms);
	return 0;
}

void inv_freeze_stop(inv *v)
{
	if (!v->fz_running)
		return;
	pthread_mutex_lock(&v->lock);
	v->fz_stopping = true;
	pthread_cond_signal(&v->fz_cv);
	pthread_mutex_unlock(&v->lock);
	pthread_join(v->fz_thread, NULL);
	v->fz_running = false;
	pthread_cond_destroy(&v->fz_cv);
}
