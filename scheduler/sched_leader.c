/* sched_leader.c - leader election through etcd (lease + compare-and-swap).
 *
 * The leader holds /gust/schedulers/leader = {"id","address","status_address"}
 * under its lease; gateways, trigger daemons and invokers mirror that prefix,
 * so the key both elects and advertises. Standbys try to create the key every
 * 100 ms; when the leader dies its lease lapses (lease_ttl_s), the key goes,
 * and the first standby to create it leads, replaying the journal of
 * activations the old leader left unfinished. Every scheduler is also listed
 * under /gust/scheduler-members/<id> for operators.
 *
 * The leader also compacts etcd's history. etcd keeps every revision of every
 * key until compacted, so without it a deleted action's code still takes its
 * space and a tenant could fill the store by create/delete cycles. Every
 * etcd_compact_period_s the leader notes etcd's revision, and compacts to the
 * newest one noted at least etcd_compact_retention_s ago: watchers that lag
 * less than that never notice, and one that lags more re-lists its prefix
 * (gust_etcd_watch). A new leader starts with no notes, so it waits a full
 * retention before its first compaction. */
#include <jansson.h>
#include <string.h>
#include <unistd.h>

#include "gust/log.h"
#include "scheduler.h"

#define LEADER_KEY "/gust/schedulers/leader"

static char *leader_value(sched *s)
{
	json_t *o = json_pack("{s:s,s:s,s:s}", "id", s->cfg.id, "address", s->address,
	                      "status_address", s->status_address);
	char *v = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return v;
}

bool sched_is_leader(sched *s)
{
	return atomic_load(&s->leader);
}

static void leader_set(sched *s, bool on)
{
	if (atomic_exchange(&s->leader, on) == on)
		return;
	gust_gauge_set(s->m_leader, on ? 1 : 0);
	if (on) {
		gust_log_info("SCHED-LEADER", "scheduler %s leads", s->cfg.id);
		sched_journal_recover(s);
	} else {
		gust_log_warn("SCHED-LEADER-LOST", "scheduler %s no longer leads", s->cfg.id);
	}
}

#define COMPACT_NOTES 64

/* Revisions noted by the leader, oldest first. */
typedef struct compact_notes {
	uint64_t at_ms[COMPACT_NOTES];
	int64_t rev[COMPACT_NOTES];
	int n;
	uint64_t next_ms;
	int64_t done; /* the last revision compacted to */
} compact_notes;

static void leader_compact(sched *s, compact_notes *c)
{
	uint64_t now = gust_now_us() / 1000;
	if (s->cfg.etcd_compact_period_s <= 0 || now < c->next_ms)
		return;
	c->next_ms = now + (uint64_t)s->cfg.etcd_compact_period_s * 1000;
	gust_kvs kvs = {0};
	gust_error *err = NULL;
	if (gust_etcd_range_prefix(s->etcd, LEADER_KEY, 1, &kvs, &err) != 0) {
		gust_log_warn("SCHED-COMPACT-REV", "cannot read etcd's revision: %s",
		              gust_error_msg(err));
		gust_error_free(err);
		return;
	}
	int64_t rev = kvs.revision;
	gust_kvs_free(&kvs);
	if (c->n == COMPACT_NOTES) { /* a period far shorter than the retention: thin out */
		memmove(c->at_ms, c->at_ms + 1, (COMPACT_NOTES - 1) * sizeof(c->at_ms[0]));
		memmove(c->rev, c->rev + 1, (COMPACT_NOTES - 1) * sizeof(c->rev[0]));
		c->n--;
	}
	c->at_ms[c->n] = now;
	c->rev[c->n++] = rev;
	/* The newest note old enough; drop the ones before it. */
	int pick = -1;
	for (int i = 0; i < c->n; i++)
		if (now - c->at_ms[i] >= (uint64_t)s->cfg.etcd_compact_retention_s * 1000)
			pick = i;
	if (pick < 0 || c->rev[pick] <= c->done)
		return;
	int64_t target = c->rev[pick];
	memmove(c->at_ms, c->at_ms + pick + 1, (size_t)(c->n - pick - 1) * sizeof(c->at_ms[0]));
	memmove(c->rev, c->rev + pick + 1, (size_t)(c->n - pick - 1) * sizeof(c->rev[0]));
	c->n -= pick + 1;
	if (gust_etcd_compact(s->etcd, target, &err) != 0) {
		gust_log_warn("SCHED-COMPACT", "etcd compaction to revision %lld failed: %s",
		              (long long)target, gust_error_msg(err));
		gust_error_free(err);
		return;
	}
	c->done = target;
	gust_counter_add(s->m_compactions, 1);
	gust_log_info("SCHED-COMPACT", "compacted etcd's history to revision %lld (now %lld)",
	              (long long)target, (long long)rev);
}

static void *leader_main(void *arg)
{
	sched *s = arg;
	unsigned tick = 0;
	compact_notes notes = {0};
	while (!atomic_load(&s->stopping)) {
		if (atomic_load(&s->leader))
			leader_compact(s, &notes);
		else
			memset(&notes, 0, sizeof(notes)); /* a new term starts with no notes */
		int64_t lease = gust_etcd_lease_keeper_id(s->lease);
		if (!atomic_load(&s->leader)) {
			cleanup_free char *v = leader_value(s);
			int rv =
			    gust_etcd_cas(s->etcd, LEADER_KEY, 0, v, strlen(v), lease, NULL, NULL);
			if (rv == 0)
				leader_set(s, true);
		} else if (++tick % 5 == 0) {
			/* Check we still hold it: our lease may have lapsed while etcd
			 * was out of reach, and another scheduler taken over. */
			gust_kv kv = {0};
			int rv = gust_etcd_get(s->etcd, LEADER_KEY, &kv, NULL);
			if (rv == GUST_ENOENT || (rv == 0 && kv.lease != lease))
				leader_set(s, false);
			gust_kv_clear(&kv);
		}
		usleep(100 * 1000);
	}
	return NULL;
}

int sched_leader_start(sched *s, gust_error **err)
{
	if (pthread_create(&s->leader_thread, NULL, leader_main, s) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the election thread");
	return 0;
}

void sched_leader_stop(sched *s)
{
	atomic_store(&s->stopping, true);
	if (s->leader_thread)
		pthread_join(s->leader_thread, NULL);
	s->leader_thread = 0;
	if (atomic_load(&s->leader)) {
		/* Hand over at once rather than after the lease time. */
		gust_kv kv = {0};
		if (gust_etcd_get(s->etcd, LEADER_KEY, &kv, NULL) == 0 &&
		    kv.lease == gust_etcd_lease_keeper_id(s->lease))
			gust_etcd_cas_delete(s->etcd, LEADER_KEY, kv.mod_revision, NULL);
		gust_kv_clear(&kv);
		atomic_store(&s->leader, false);
	}
}
