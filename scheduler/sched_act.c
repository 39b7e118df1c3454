/* sched_act.c - an activation's way to an invoker and back.
 *
 *   QUEUED --(placed)--> FWD_SEND --> FWD_RECV --> done
 *
 * On the invoker's answer a blocking activation answers its caller; a
 * non-blocking one leaves the journal. When the invoker fails (it died: nng
 * resets the connection; or it never answered), a blocking caller gets a 502
 * and a journaled activation is queued again with the same id, preferring
 * another invoker. Every step is an aio callback: nothing blocks. */
#include <stdio.h>
#include <string.h>

#include "gust/log.h"
#include "scheduler.h"

enum { A_QUEUED, A_FWD_SEND, A_FWD_RECV };

static void act_fwd_cb(void *arg);

sched_act *sched_act_new(sched *s, nng_msg *req, const gust_request_head *h, sched_worker *caller)
{
	sched_act *a = gust_xcalloc(1, sizeof(*a));
	a->s = s;
	const gust_msg_str *ns = h->user.n ? &h->user : &h->namespace_;
	snprintf(a->id, sizeof(a->id), "%.*s", (int)h->activation_id.n, h->activation_id.p);
	/* The invoker's pool key: warm matches and queues per caller and code.
	 * Only a request no gateway makes is longer; cut, it would only share a
	 * queue and a placement hint, never a sandbox (the invoker keys its pool
	 * by the whole key). */
	gust_warm_key(a->key, sizeof(a->key), h);
	snprintf(a->ns, sizeof(a->ns), "%.*s", (int)ns->n, ns->p);
	a->memory_mb = h->memory_mb > 0 ? h->memory_mb : 256;
	/* A sandbox that runs `concurrency` activations at once holds its memory
	 * once: charge each activation its share (at least 1 MB). */
	if (h->concurrency > 1) {
		a->memory_mb /= h->concurrency;
		if (a->memory_mb < 1)
			a->memory_mb = 1;
	}
	a->timeout_ms = h->timeout_ms > 0 ? h->timeout_ms : 60000;
	a->blocking = h->blocking;
	a->attempts = h->attempt;
	if (h->journal_id.n) {
		snprintf(a->journal_id, sizeof(a->journal_id), "%.*s", (int)h->journal_id.n,
		         h->journal_id.p);
		a->journaled = true;
	}
	a->req = req;
	a->caller = caller;
	a->t_admit = gust_now_us();
	if (nng_aio_alloc(&a->fwd, act_fwd_cb, a) != 0) {
		free(a);
		return NULL;
	}
	return a;
}

void sched_act_free(sched_act *a)
{
	if (a == NULL)
		return;
	/* Often called from a->fwd's own callback, where nng_aio_free would
	 * wait for itself: let nng free the aio in the background. */
	if (a->fwd)
		nng_aio_reap(a->fwd);
	if (a->fctx_open)
		nng_ctx_close(a->fctx);
	if (a->req)
		nng_msg_free(a->req);
	free(a);
}

/* The invoker's answer (res, owned) or its failure (rv). Runs on an aio
 * callback: the activation is not touched by anyone else meanwhile. */
static void act_done(sched_act *a, int rv, nng_msg *res)
{
	sched *s = a->s;
	char invid[128];
	snprintf(invid, sizeof(invid), "%s", a->inv ? a->inv->id : "?");
	if (a->fctx_open) {
		nng_ctx_close(a->fctx);
		a->fctx_open = false;
	}
	sched_release(s, a);
	gust_histogram_observe_us(s->m_latency, gust_now_us() - a->t_admit);
	if (rv == 0 && res != NULL) {
		if (a->blocking) {
			sched_finish(s, a);
			sched_worker_answer(a->caller, res);
			sched_act_free(a);
		} else {
			nng_msg_free(res);
			sched_journal_done(s, a); /* finishes and frees after the XDEL */
		}
		sched_pump(s);
		return;
	}
	gust_counter_add(s->m_failed, 1);
	gust_log_warn("SCHED-FORWARD-FAIL", "activation %s on invoker %s failed: %s (attempt %d)",
	              a->id, invid, nng_strerror(rv), a->attempts + 1);
	if (a->blocking) {
		char text[256];
		snprintf(text, sizeof(text),
		         "The invoker running the activation (%s) failed: %s. The activation may "
		         "not have completed.",
		         invid, nng_strerror(rv));
		nng_msg *m = NULL;
		sched_finish(s, a);
		if (gust_msg_error_result(a->id, GUST_EBADGATEWAY, text, &m) == 0)
			sched_worker_answer(a->caller, m);
		else
			sched_worker_answer(a->caller, NULL);
		sched_act_free(a);
		sched_pump(s);
		return;
	}
	a->attempts++;
	if (a->attempts >= s->cfg.max_attempts) {
		/* Stays in the journal: the periodic replay takes it up again later
		 * (and on another leader after a failover). Nothing is dropped. */
		gust_log_error("SCHED-ACT-PARKED",
		               "activation %s failed %d times; left in the journal for replay",
		               a->id, a->attempts);
		sched_finish(s, a);
		sched_act_free(a);
		sched_pump(s);
		return;
	}
	gust_counter_add(s->m_retried, 1);
	sched_enqueue(s, a);
}

static void act_fwd_cb(void *arg)
{
	sched_act *a = arg;
	int rv = nng_aio_result(a->fwd);
	if (a->state == A_FWD_SEND) {
		if (rv != 0) {
			/* A failed send leaves the copy with us; a->req still
			 * holds the bytes for a retry. */
			nng_msg_free(nng_aio_get_msg(a->fwd));
			nng_aio_set_msg(a->fwd, NULL);
			act_done(a, rv, NULL);
			return;
		}
		a->state = A_FWD_RECV;
		/* The invoker enforces the action's timeout; the margin covers a
		 * cold start and a queue at the invoker. */
		nng_aio_set_timeout(a->fwd, (nng_duration)a->timeout_ms + 120000);
		nng_ctx_recv(a->fctx, a->fwd);
		return;
	}
	nng_msg *res = rv == 0 ? nng_aio_get_msg(a->fwd) : NULL;
	nng_aio_set_msg(a->fwd, NULL);
	act_done(a, rv, res);
}

void sched_act_forward(sched_act *a)
{
	int rv;
	nng_msg *m = NULL;
	if (a->req == NULL || (rv = nng_msg_dup(&m, a->req)) != 0) {
		act_done(a, NNG_ENOMEM, NULL);
		return;
	}
	if ((rv = nng_ctx_open(&a->fctx, a->inv->sock)) != 0) {
		nng_msg_free(m);
		act_done(a, rv, NULL);
		return;
	}
	a->fctx_open = true;
	a->state = A_FWD_SEND;
	/* The request stays in a->req for a retry; the copy goes out. */
	nng_aio_set_msg(a->fwd, m);
	nng_aio_set_timeout(a->fwd, 10000);
	nng_ctx_send(a->fctx, a->fwd);
}
