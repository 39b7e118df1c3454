/* sched_leader.c - leader election through etcd (lease + compare-and-swap).
 *
 * The leader holds /gust/schedulers/leader = {"id","address","status_address"}
 * under its lease; gateways, trigger daemons and invokers mirror that prefix,
 * so the key both elects and advertises. Standbys try to create the key every
 * 100 ms; when the leader dies its lease lapses (lease_ttl_s), the key goes,
 * and the first standby to create it leads, replaying the journal of
 * activations the old leader left unfinished. Every scheduler is also listed
 * under /gust/scheduler-members/<id> for operators. */
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

static void *leader_main(void *arg)
{
	sched *s = arg;
	unsigned tick = 0;
	while (!atomic_load(&s->stopping)) {
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
