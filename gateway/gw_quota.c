/* gw_quota.c - how much a namespace may keep in etcd.
 *
 * etcd is one store shared by every tenant, with a hard size (its backend
 * quota: once full, every write of every tenant fails). So each namespace is
 * held to a number of entities (actions, packages, triggers, rules) and to
 * the bytes of their records and code: the gateway config's ns_max_entities
 * and ns_max_bytes, or the namespace's own limits maxEntities and
 * maxEntityBytes (`gust admin namespace limits`).
 *
 * Usage is counted from this gateway's cache, which mirrors every entity, so
 * admission costs no etcd round trip. The bound is therefore as close as the
 * cache is current: creates of one namespace in flight at the same moment (on
 * other gateways, or on this one's other HTTP threads) each admit against
 * what was stored before them, so together they can overshoot it by at most
 * their number (entities, and their bytes) until the writes reach every
 * cache (at once here, through the watch within milliseconds elsewhere).
 * Sequential writes never overshoot. */
#include <jansson.h>
#include <string.h>

#include "gateway.h"

long long gw_record_bytes(json_t *rec)
{
	char *s = json_dumps(rec, JSON_COMPACT);
	long long n = s ? (long long)strlen(s) : 0;
	free(s);
	return n;
}

bool gw_quota_admit(gw_req *r, const char *ns, bool is_new, long long old_bytes,
                    long long new_bytes)
{
	gw *g = r->g;
	long long max_n = gw_ns_limit(g, ns, "maxEntities", g->cfg.ns_max_entities);
	long long max_b = gw_ns_limit(g, ns, "maxEntityBytes", g->cfg.ns_max_bytes);
	long long n = 0, bytes = 0;
	gw_cache_usage(g, ns, &n, &bytes);
	if (is_new && n + 1 > max_n) {
		gw_reply_error(r, 403, "EQUOTA",
		               "The namespace '%s' has %lld entities, its limit (maxEntities) is "
		               "%lld: delete some before creating more",
		               ns, n, max_n);
		return false;
	}
	long long after = bytes - old_bytes + new_bytes;
	if (new_bytes > old_bytes && after > max_b) {
		gw_reply_error(r, 403, "EQUOTA",
		               "The namespace '%s' would store %lld bytes, over its limit "
		               "(maxEntityBytes) of %lld",
		               ns, after, max_b);
		return false;
	}
	return true;
}
