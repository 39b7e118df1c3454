/*
 * inv_stem.c - stem cells: sandboxes prewarmed per runtime, with their
 * namespaces (the network one is the slow part, ~0.5 ms, p99 ~4 ms), cgroup,
 * root and a started launcher, but no code. A cold start takes one, sets the
 * action's limits and sends a single init; a background thread makes
 * replacements, so that namespaces are created ahead of need, off the
 * activation's path.
 *
 * Configured as "kind=count,...", e.g. "python:3=2,nodejs:20=2,native=2". Stem cells
 * are not counted in user memory: they hold a bare runtime (a few MB), and
 * they take the action's memory limit, counted by the pool, when they are
 * adopted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gust/log.h"
#include "invoker.h"

#define INV_STEM_MEMORY_MB 256

struct inv_stem_kind {
	char *kind;
	int want;
	int have;
	inv_sandbox **cells; /* [want] */
	int failures;        /* in a row: creation backs off */
};

static int stem_parse(inv *v, const char *spec, gust_error **err)
{
	cleanup_free char *copy = gust_xstrdup(spec);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ')
			tok++;
		if (*tok == 0)
			continue;
		char *eq = strrchr(tok, '=');
		char *end = NULL;
		long n = eq != NULL ? strtol(eq + 1, &end, 10) : -1;
		if (eq == NULL || end == eq + 1 || *end != 0 || n < 0 || n > 64)
			return gust_error_set(err, GUST_EINVAL,
			                      "config key 'stem_cells': '%s' is not kind=count "
			                      "(0..64)",
			                      tok);
		*eq = 0;
		v->stems = gust_xrealloc(v->stems, (v->nstems + 1) * sizeof(*v->stems));
		inv_stem_kind *k = &v->stems[v->nstems++];
		memset(k, 0, sizeof(*k));
		k->kind = gust_xstrdup(tok);
		k->want = (int)n;
		k->cells = gust_xcalloc((size_t)(n > 0 ? n : 1), sizeof(inv_sandbox *));
	}
	return 0;
}

static inv_sandbox_cfg stem_cfg(inv *v, const char *kind)
{
	inv_sandbox_cfg sc = {.kind = kind,
	                      .runtime_dir = v->cfg.runtime_dir,
	                      .state_dir = v->cfg.state_dir,
	                      .memory_mb = INV_STEM_MEMORY_MB,
	                      .pids_max = (int)v->cfg.pids_max,
	                      .cgroups = v->cgroups,
	                      .userns_base = v->userns_base,
	                      .userns_slots = v->userns_slots,
	                      .native_launcher = v->cfg.native_launcher,
	                      .netns = v->netns};
	return sc;
}

/* The replenisher: keeps every kind at its count, one creation at a time,
 * outside the lock. */
static void *stem_main(void *arg)
{
	inv *v = arg;
	pthread_mutex_lock(&v->stem_lock);
	while (!v->stopping_stems) {
		inv_stem_kind *need = NULL;
		for (size_t i = 0; i < v->nstems && need == NULL; i++)
			if (v->stems[i].have < v->stems[i].want && v->stems[i].failures < 3)
				need = &v->stems[i];
		if (need == NULL) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 5;
			pthread_cond_timedwait(&v->stem_cv, &v->stem_lock, &ts);
			/* Retry failed kinds now and then (a runtime may come back). */
			for (size_t i = 0; i < v->nstems; i++)
				v->stems[i].failures = 0;
			continue;
		}
		const char *kind = need->kind;
		pthread_mutex_unlock(&v->stem_lock);
		inv_sandbox_cfg sc = stem_cfg(v, kind);
		inv_sandbox *sb = NULL;
		gust_error *err = NULL;
		int rv = inv_sandbox_create(&sc, &sb, &err);
		if (rv != 0)
			gust_log_warn("INV-STEM-CREATE", "stem cell of %s: %s", kind,
			              gust_error_msg(err));
		gust_error_free(err);
		pthread_mutex_lock(&v->stem_lock);
		if (rv != 0) {
			need->failures++;
			continue;
		}
		need->failures = 0;
		if (v->stopping_stems || need->have >= need->want) {
			pthread_mutex_unlock(&v->stem_lock);
			inv_sandbox_destroy(sb);
			pthread_mutex_lock(&v->stem_lock);
			continue;
		}
		need->cells[need->have++] = sb;
	}
	pthread_mutex_unlock(&v->stem_lock);
	return NULL;
}

int inv_stem_start(inv *v, gust_error **err)
{
	pthread_mutex_init(&v->stem_lock, NULL);
	pthread_cond_init(&v->stem_cv, NULL);
	int rv = stem_parse(v, v->cfg.stem_cells, err);
	if (rv != 0)
		return rv;
	if (pthread_create(&v->stem_thread, NULL, stem_main, v) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the stem cell thread");
	v->stem_running = true;
	return 0;
}

inv_sandbox *inv_stem_take(inv *v, const char *kind)
{
	inv_sandbox *sb = NULL;
	pthread_mutex_lock(&v->stem_lock);
	for (size_t i = 0; i < v->nstems; i++) {
		inv_stem_kind *k = &v->stems[i];
		if (strcmp(k->kind, kind) != 0)
			continue;
		/* Newest first: the oldest ones are the likeliest to have died. */
		while (sb == NULL && k->have > 0) {
			sb = k->cells[--k->have];
			if (!inv_sandbox_alive(sb)) {
				inv_sandbox_destroy(sb);
				sb = NULL;
			}
		}
		break;
	}
	pthread_cond_signal(&v->stem_cv);
	pthread_mutex_unlock(&v->stem_lock);
	return sb;
}

void inv_stem_stop(inv *v)
{
	if (v->stem_running) {
		pthread_mutex_lock(&v->stem_lock);
		v->stopping_stems = true;
		pthread_cond_broadcast(&v->stem_cv);
		pthread_mutex_unlock(&v->stem_lock);
		pthread_join(v->stem_thread, NULL);
		v->stem_running = false;
	}
	for (size_t i = 0; i < v->nstems; i++) {
		for (int j = 0; j < v->stems[i].have; j++)
			inv_sandbox_destroy(v->stems[i].cells[j]);
		free(v->stems[i].cells);
		free(v->stems[i].kind);
	}
	free(v->stems);
	v->stems = NULL;
	v->nstems = 0;
}
