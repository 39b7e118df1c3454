/*
 * sched_place_bench.c - placement decisions per second on one core.
 *
 * Runs the scheduler's own placement (sched_place: warm map lookup,
 * rendezvous hashing over every invoker, capacity check) and admission
 * (sched_admit: namespace limits with the sliding minute) in a loop, pinned
 * to one CPU, with 1,000 actions over 10 and over 100 invokers. The baseline
 * in the same run is the floor of any hash placement: one 64-bit hash of the
 * action key per decision.
 *
 *   gust-bench-place [decisions]      (default 2,000,000)
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

static sched *bench_sched(int ninvokers)
{
	sched *s = gust_xcalloc(1, sizeof(*s));
	s->cfg.max_action_sandboxes = 64;
	s->cfg.overcommit_pct = 200;
	s->cfg.default_concurrent = 1 << 30;
	s->cfg.default_per_minute = 1 << 30;
	s->m_refused = gust_counter_new("bench_refused", "x", NULL);
	pthread_rwlock_init(&s->inv_lock, NULL);
	pthread_mutex_init(&s->nslock, NULL);
	sched_queue_init(s);
	s->invokers = gust_xcalloc((size_t)ninvokers, sizeof(sched_invoker *));
	for (int i = 0; i < ninvokers; i++) {
		sched_invoker *inv = gust_xcalloc(1, sizeof(*inv));
		atomic_init(&inv->refs, 1);
		inv->id = gust_xasprintf("invoker%03d", i);
		inv->id_hash = gust_hash64(inv->id, strlen(inv->id));
		inv->address = gust_xstrdup("tcp://127.0.0.1:1");
		inv->memory_mb = 1 << 20;
		s->invokers[i] = inv;
	}
	s->ninvokers = (size_t)ninvokers;
	return s;
}

static double run_place(sched *s, char keys[][64], int nkeys, long n, int warm_every)
{
	/* Some actions have an idle warm sandbox reported on some invoker. */
	for (int k = 0; k < nkeys; k += warm_every)
		gust_map_put(&s->invokers[(size_t)k % s->ninvokers]->warm, keys[k],
		             (void *)1000000);
	uint64_t t0 = gust_now_us();
	for (long i = 0; i < n; i++) {
		sched_invoker *inv = sched_place(s, keys[i % nkeys], 256, NULL);
		atomic_fetch_sub(&inv->refs, 1);
	}
	return (double)n / ((double)(gust_now_us() - t0) / 1e6);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 2000000;
	cpu_set_t set;
	CPU_ZERO(&set);
	CPU_SET(0, &set);
	sched_setaffinity(0, sizeof(set), &set);
	static char keys[1000][64];
	for (int k = 0; k < 1000; k++)
		snprintf(keys[k], sizeof(keys[k]), "guest/action-%d@0.0.%d", k, k % 7 + 1);

	uint64_t t0 = gust_now_us();
	uint64_t sink = 0;
	for (long i = 0; i < n; i++)
		sink += gust_hash64(keys[i % 1000], strlen(keys[i % 1000]));
	double base = (double)n / ((double)(gust_now_us() - t0) / 1e6);

	sched *s10 = bench_sched(10), *s100 = bench_sched(100);
	double p10 = run_place(s10, keys, 1000, n, 4);
	double p100 = run_place(s100, keys, 1000, n / 4, 4);

	char why[128];
	t0 = gust_now_us();
	for (long i = 0; i < n; i++) {
		sched_admit(s10, i & 1 ? "guest" : "other", why, sizeof(why));
		if ((i & 1023) == 0) {
			/* keep the namespaces' counts from growing without bound */
			sched_act a = {0};
			snprintf(a.ns, sizeof(a.ns), "guest");
			for (int j = 0; j < 512; j++)
				sched_finish(s10, &a);
			snprintf(a.ns, sizeof(a.ns), "other");
			for (int j = 0; j < 512; j++)
				sched_finish(s10, &a);
		}
	}
	double adm = (double)n / ((double)(gust_now_us() - t0) / 1e6);

	printf("{\"baseline_hash_per_s\": %.0f, \"place_10_invokers_per_s\": %.0f, "
	       "\"place_100_invokers_per_s\": %.0f, \"admit_per_s\": %.0f, \"sink\": %llu}\n",
	       base, p10, p100, adm, (unsigned long long)(sink & 1));
	return 0;
}
