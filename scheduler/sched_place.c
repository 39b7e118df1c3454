/* sched_place.c - choosing an invoker.
 *
 * Rendezvous hashing gives every action a stable order of invokers (its home
 * first), so an action's activations land where its warm sandboxes are, and
 * adding or removing one invoker moves only the actions that hashed to it.
 * An invoker is skipped while the memory of what is in flight there would
 * pass its user memory; when every one is full the least loaded takes it and
 * queues it. */
#include <stdatomic.h>
#include <string.h>

#include "scheduler.h"

void sched_invoker_unref(sched_invoker *inv)
{
	if (inv == NULL || atomic_fetch_sub((_Atomic int *)&inv->refs, 1) != 1)
		return;
	nng_close(inv->sock);
	free(inv->id);
	free(inv->address);
	free(inv);
}

sched_invoker *sched_place(sched *s, const char *ns, const char *action, int memory_mb)
{
	char key[1024];
	int kl = snprintf(key, sizeof(key), "%s/%s", ns, action);
	if (kl < 0 || (size_t)kl >= sizeof(key))
		kl = sizeof(key) - 1;
	uint64_t akey = gust_hash64(key, (size_t)kl);

	sched_invoker *best = NULL, *least = NULL;
	uint64_t best_w = 0;
	int least_load = 0;
	pthread_rwlock_rdlock(&s->inv_lock);
	for (size_t i = 0; i < s->ninvokers; i++) {
		sched_invoker *inv = s->invokers[i];
		int used = atomic_load((_Atomic int *)&inv->inflight_mb);
		/* Load as a fraction of capacity, scaled to compare without floats. */
		int load = inv->memory_mb > 0 ? (int)((long)used * 1000 / inv->memory_mb) : used;
		if (least == NULL || load < least_load) {
			least = inv;
			least_load = load;
		}
		if (used + memory_mb > inv->memory_mb)
			continue;
		uint64_t ih = gust_hash64(inv->id, strlen(inv->id));
		uint64_t w = gust_hash64(&(uint64_t[2]){akey, ih}, 2 * sizeof(uint64_t));
		if (best == NULL || w > best_w) {
			best = inv;
			best_w = w;
		}
	}
	sched_invoker *pick = best ? best : least;
	if (pick)
		atomic_fetch_add((_Atomic int *)&pick->refs, 1);
	pthread_rwlock_unlock(&s->inv_lock);
	return pick;
}
