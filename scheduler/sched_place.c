/* sched_place.c - choosing an invoker for an activation.
 *
 * In order of preference, among invokers with memory for it:
 *  1. one that reported an idle warm sandbox of this warm key (this caller
 *     and this action version's code, gust_warm_key);
 *  2. the action's home: rendezvous hashing gives every action a stable order
 *     of invokers, so its activations land where its warm sandboxes are, and
 *     adding or removing one invoker moves only the actions that hashed to it;
 * An invoker is full while the memory of what is in flight there would pass
 * its user memory (an empty one takes anything, so no action is too big to
 * ever run). `avoid` (the invoker that just failed this activation) is taken
 * only if there is no other. NULL: wait in the queue. */
#include <string.h>

#include "scheduler.h"

void sched_invoker_unref(sched_invoker *inv)
{
	if (inv == NULL || atomic_fetch_sub(&inv->refs, 1) != 1)
		return;
	nng_close(inv->sock);
	gust_map_free(&inv->warm);
	free(inv->id);
	free(inv->address);
	free(inv);
}

/* Rendezvous weight of (action, invoker): both halves are already good
 * hashes, so one 64-bit finaliser (murmur3's fmix64) mixes them well enough. */
static uint64_t place_weight(uint64_t akey, uint64_t id_hash)
{
	uint64_t h = akey ^ (id_hash * 0x9e3779b97f4a7c15ull);
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* One pass over the invokers (under the lock) with room up to
 * memory_mb * factor / 100. */
static sched_invoker *place_pass(sched *s, const char *key, uint64_t akey, int memory_mb,
                                 const char *avoid, long factor, sched_invoker **warm_out)
{
	sched_invoker *warm = NULL, *home = NULL, *fallback = NULL;
	uint64_t home_w = 0;
	for (size_t i = 0; i < s->ninvokers; i++) {
		sched_invoker *inv = s->invokers[i];
		int used = atomic_load(&inv->inflight_mb);
		if (used > 0 && (long)(used + memory_mb) * 100 > (long)inv->memory_mb * factor)
			continue;
		if (avoid && avoid[0] && strcmp(inv->id, avoid) == 0) {
			fallback = inv;
			continue;
		}
		if (warm == NULL && inv->warm.count > 0 &&
		    (intptr_t)gust_map_get_hashed(&inv->warm, key, akey) > 0)
			warm = inv;
		uint64_t w = place_weight(akey, inv->id_hash);
		if (home == NULL || w > home_w) {
			home = inv;
			home_w = w;
		}
	}
	*warm_out = warm;
	return warm ? warm : home ? home : fallback;
}

sched_invoker *sched_place(sched *s, const char *key, int memory_mb, const char *avoid)
{
	uint64_t akey = gust_hash64(key, strlen(key));
	sched_invoker *warm = NULL;
	/* A write lock: taking a warm sandbox updates the invoker's warm map. */
	pthread_rwlock_wrlock(&s->inv_lock);
	sched_invoker *pick = place_pass(s, key, akey, memory_mb, avoid, 100, &warm);
	/* Every invoker is full: let each hold up to overcommit_pct of its memory
	 * in flight, so that it has the next activation at hand when a sandbox
	 * frees, instead of idling for a round trip to us. */
	if (pick == NULL && s->cfg.overcommit_pct > 100)
		pick =
		    place_pass(s, key, akey, memory_mb, avoid, (long)s->cfg.overcommit_pct, &warm);
	if (pick) {
		atomic_fetch_add(&pick->refs, 1);
		/* One idle warm sandbox is spoken for until the next status. */
		if (pick == warm) {
			intptr_t n = (intptr_t)gust_map_get_hashed(&pick->warm, key, akey);
			if (n > 1)
				gust_map_put(&pick->warm, key, (void *)(n - 1));
			else
				gust_map_del(&pick->warm, key);
		}
	}
	pthread_rwlock_unlock(&s->inv_lock);
	return pick;
}
