/* sched_status.c - InvokerStatus from invokers, over an nng pull socket whose
 * address the leader advertises. An invoker that has sent status and then
 * stops (hung, or cut off while its lease still runs) is taken out of
 * placement after status_timeout_ms (sched_members_check). */
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <string.h>

#include "gust/daemon.h"
#include "gust/log.h"
#include "scheduler.h"

static nng_aio *status_aio;

static int drop_warm(void *arg, const char *k, void *v)
{
	return 1;
}

static void status_apply(sched *s, Gust__InvokerStatus *st)
{
	pthread_rwlock_wrlock(&s->inv_lock);
	bool found = false;
	for (size_t i = 0; i < s->ninvokers && !found; i++)
		found = strcmp(s->invokers[i]->id, st->id) == 0;
	/* Out of placement but still finishing work (draining): only note that
	 * it is alive, so its socket stays open for the answers. */
	for (size_t i = 0; i < s->ngraveyard && !found; i++) {
		if (strcmp(s->graveyard[i]->id, st->id) == 0) {
			s->graveyard[i]->status_ms = gust_now_ms();
			pthread_rwlock_unlock(&s->inv_lock);
			return;
		}
	}
	/* Back from silence (taken out, lease still alive): in again. An
	 * invoker whose key is gone (it left, or its lease lapsed) stays out. */
	if (!found && st->address[0] && st->memory_mb > 0 && strlen(st->id) < 128 &&
	    gust_map_get(&s->registered, st->id) != NULL)
		sched_members_add(s, st->id, st->address, st->memory_mb);
	for (size_t i = 0; i < s->ninvokers; i++) {
		sched_invoker *inv = s->invokers[i];
		if (strcmp(inv->id, st->id) != 0)
			continue;
		inv->has_status = true;
		inv->status_ms = gust_now_ms();
		inv->free_memory_mb = st->free_memory_mb;
		gust_map_filter(&inv->warm, drop_warm, NULL);
		for (size_t k = 0; k < st->n_warm; k++)
			if (st->warm[k]->idle > 0)
				gust_map_put(&inv->warm, st->warm[k]->action,
				             (void *)(intptr_t)st->warm[k]->idle);
		break;
	}
	pthread_rwlock_unlock(&s->inv_lock);
	/* An invoker replaced at a new address waits in the graveyard for the
	 * cron thread: closing its socket here, on an nng callback thread, could
	 * wait for callbacks that need this very thread. */
}

static void status_cb(void *arg)
{
	sched *s = arg;
	int rv = nng_aio_result(status_aio);
	if (rv == NNG_ECLOSED)
		return;
	if (rv == 0) {
		nng_msg *m = nng_aio_get_msg(status_aio);
		Gust__InvokerStatus *st =
		    gust__invoker_status__unpack(NULL, nng_msg_len(m), nng_msg_body(m));
		if (st != NULL && st->id[0]) {
			status_apply(s, st);
			/* Capacity may have appeared: dispatch what waits. */
			sched_pump(s);
		}
		if (st)
			gust__invoker_status__free_unpacked(st, NULL);
		nng_msg_free(m);
	}
	nng_recv_aio(s->status, status_aio);
}

int sched_status_start(sched *s, gust_error **err)
{
	int rv;
	nng_listener l;
	if ((rv = nng_pull0_open(&s->status)) != 0 ||
	    (rv = nng_aio_alloc(&status_aio, status_cb, s)))
		return gust_error_set(err, GUST_EIO, "nng pull socket: %s", nng_strerror(rv));
	/* Only invokers: a status re-points an invoker id at an address. */
	if ((rv = gust_transport_listen(s->transport, s->status, s->cfg.status_listen,
	                                GUST_ROLE_INVOKER, "status_listen", &l, err)) != 0)
		return rv;
	s->status_address = gust_nng_public_url(l, s->cfg.status_listen, NULL);
	nng_recv_aio(s->status, status_aio);
	return 0;
}

void sched_status_stop(sched *s)
{
	nng_close(s->status);
	if (status_aio) {
		nng_aio_stop(status_aio);
		nng_aio_free(status_aio);
		status_aio = NULL;
	}
	free(s->status_address);
	s->status_address = NULL;
}
