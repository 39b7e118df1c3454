/* trig_sched.c - one nng req socket to the leading scheduler, shared by every
 * feed (each request on a context of its own). The leader's address comes
 * from /gust/schedulers/leader; when it changes we dial the new one and close
 * the old dialer, and the socket's failover resends a request whose
 * connection died to the new leader with the same activation id. */
#include <string.h>

#include "gust/log.h"
#include "gust/msg.h"
#include "trigger.h"

int trig_sched_open(trig *t, gust_error **err)
{
	int rv = gust_transport_open(&t->cfg.tls, GUST_ROLE_TRIGGER, GUST_ROLE_SCHEDULER,
	                             &t->transport, err);
	if (rv != 0)
		return rv;
	rv = gust_nng_req_open(&t->sched, (int)t->cfg.ack_timeout_ms);
	if (rv == 0)
		rv = gust_nng_req_failover(t->sched);
	if (rv != 0)
		return gust_error_set(err, rv, "nng req socket: %s", gust_strerror(rv));
	return 0;
}

void trig_sched_sync(trig *t)
{
	char *leader = trig_store_leader(t);
	pthread_mutex_lock(&t->dial_lock);
	bool same = (leader == NULL && t->dialed == NULL) ||
	            (leader && t->dialed && strcmp(leader, t->dialed) == 0);
	if (!same) {
		if (t->dialed) {
			nng_dialer_close(t->dialer);
			gust_log_info("TRIG-SCHED-DROP", "scheduler %s is no longer the leader",
			              t->dialed);
			free(t->dialed);
			t->dialed = NULL;
		}
		if (leader) {
			/* Only a scheduler's certificate is trusted at the other end. */
			gust_error *e = NULL;
			if (gust_transport_dial(t->transport, t->sched, leader, GUST_ROLE_SCHEDULER,
			                        NNG_FLAG_NONBLOCK, &t->dialer, &e) != 0) {
				gust_log_warn("TRIG-SCHED-DIAL", "cannot dial scheduler %s: %s",
				              leader, gust_error_msg(e));
				gust_error_free(e);
			} else {
				gust_log_info("TRIG-SCHED-ADD", "dialing scheduler %s", leader);
				t->dialed = gust_xstrdup(leader);
			}
		}
	}
	pthread_mutex_unlock(&t->dial_lock);
	free(leader);
}

void trig_sched_close(trig *t)
{
	pthread_mutex_lock(&t->dial_lock);
	free(t->dialed);
	t->dialed = NULL;
	pthread_mutex_unlock(&t->dial_lock);
	nng_close(t->sched);
	gust_transport_close(t->transport); /* after the socket: its dialer held the config */
	t->transport = NULL;
}
