/* sched_worker.c - one state machine per request in flight.
 *
 *   RECV --(request)--> [non-blocking: ACK] --> FWD_SEND --> FWD_RECV --> REPLY --> RECV
 *
 * A blocking request is answered with the invoker's result bytes; a
 * non-blocking one is acknowledged first and its result is dropped here (the
 * invoker has written the activation record). Nothing here blocks: every step
 * is an aio callback. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "gust/log.h"
#include "scheduler.h"

enum { W_RECV, W_ACK, W_FWD_SEND, W_FWD_RECV, W_REPLY };

struct sched_worker {
	sched *s;
	int state;
	nng_ctx ctx;  /* rep context facing the caller */
	nng_aio *aio; /* for ctx */
	nng_aio *fwd; /* for the invoker's req context */
	nng_ctx fctx;
	bool fctx_open;
	nng_msg *req; /* the request bytes as received, forwarded as they are */
	char id[64];  /* activation id */
	bool blocking;
	int memory_mb;
	int timeout_ms;
	sched_invoker *inv;
	uint64_t t0;
};

static void worker_recv(sched_worker *w)
{
	w->state = W_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

/* Answers the caller with msg (ownership passes to the send). */
static void worker_reply(sched_worker *w, nng_msg *msg)
{
	w->state = W_REPLY;
	nng_aio_set_msg(w->aio, msg);
	nng_ctx_send(w->ctx, w->aio);
}

static void worker_reply_error(sched_worker *w, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void worker_reply_error(sched_worker *w, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	nng_msg *m;
	if (gust_msg_error_result(w->id, err, text, &m) != 0) {
		worker_recv(w);
		return;
	}
	worker_reply(w, m);
}

static void worker_release_invoker(sched_worker *w)
{
	if (w->fctx_open) {
		nng_ctx_close(w->fctx);
		w->fctx_open = false;
	}
	if (w->inv) {
		atomic_fetch_sub((_Atomic int *)&w->inv->inflight_mb, w->memory_mb);
		atomic_fetch_sub((_Atomic int *)&w->inv->inflight, 1);
		sched_invoker_unref(w->inv);
		w->inv = NULL;
	}
}

/* The invoker's answer, or its failure: finish the request. */
static void worker_forwarded(sched_worker *w, int rv, nng_msg *res)
{
	sched *s = w->s;
	char invid[128];
	snprintf(invid, sizeof(invid), "%s", w->inv ? w->inv->id : "?");
	worker_release_invoker(w);
	gust_histogram_observe_us(s->m_latency, gust_now_us() - w->t0);
	if (rv != 0) {
		gust_counter_add(s->m_failed, 1);
		gust_log_warn("SCHED-FORWARD-FAIL", "activation %s on invoker %s failed: %s", w->id,
		              invid, nng_strerror(rv));
	}
	if (!w->blocking) {
		if (res)
			nng_msg_free(res);
		worker_recv(w);
		return;
	}
	if (rv != 0) {
		worker_reply_error(w, GUST_EBADGATEWAY,
		                   "The invoker running the activation failed (%s); the activation "
		                   "may not have completed.",
		                   invid);
		return;
	}
	worker_reply(w, res);
}

static void worker_forward(sched_worker *w)
{
	sched *s = w->s;
	int rv;
	if ((rv = nng_ctx_open(&w->fctx, w->inv->sock)) != 0) {
		nng_msg_free(w->req);
		w->req = NULL;
		worker_forwarded(w, rv, NULL);
		return;
	}
	w->fctx_open = true;
	w->state = W_FWD_SEND;
	nng_aio_set_msg(w->fwd, w->req);
	w->req = NULL;
	/* Connecting to a live invoker takes milliseconds; one that is gone is
	 * noticed through etcd (its lease lapses) and closes the socket. */
	nng_aio_set_timeout(w->fwd, 10000);
	nng_ctx_send(w->fctx, w->fwd);
	(void)s;
}

static void fwd_cb(void *arg)
{
	sched_worker *w = arg;
	int rv = nng_aio_result(w->fwd);
	if (w->state == W_FWD_SEND) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->fwd));
			nng_aio_set_msg(w->fwd, NULL);
			worker_forwarded(w, rv, NULL);
			return;
		}
		w->state = W_FWD_RECV;
		/* The invoker enforces the action's timeout; this margin covers a
		 * cold start and a queue at the invoker. */
		nng_aio_set_timeout(w->fwd, (nng_duration)w->timeout_ms + 120000);
		nng_ctx_recv(w->fctx, w->fwd);
		return;
	}
	nng_msg *res = rv == 0 ? nng_aio_get_msg(w->fwd) : NULL;
	nng_aio_set_msg(w->fwd, NULL);
	worker_forwarded(w, rv, res);
}

static void worker_request(sched_worker *w, nng_msg *msg)
{
	sched *s = w->s;
	Gust__ActivationRequest *q = gust_msg_request(msg);
	w->t0 = gust_now_us();
	if (q == NULL || q->activation_id[0] == '\0' || q->namespace_[0] == '\0' ||
	    q->action[0] == '\0') {
		gust_counter_add(s->m_malformed, 1);
		if (q)
			gust__activation_request__free_unpacked(q, NULL);
		nng_msg_free(msg);
		w->id[0] = '\0';
		w->blocking = true;
		worker_reply_error(w, GUST_EPROTO, "%s", "malformed activation request");
		return;
	}
	snprintf(w->id, sizeof(w->id), "%s", q->activation_id);
	w->blocking = q->blocking;
	w->memory_mb = q->memory_mb > 0 ? q->memory_mb : 256;
	w->timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : 60000;
	w->inv = sched_place(s, q->namespace_, q->action, w->memory_mb);
	gust__activation_request__free_unpacked(q, NULL);
	if (w->inv == NULL) {
		gust_counter_add(s->m_no_invoker, 1);
		nng_msg_free(msg);
		w->blocking = true; /* the caller learns it was not accepted */
		worker_reply_error(w, GUST_EUNAVAIL, "%s",
		                   "no invoker is available to run the activation");
		return;
	}
	atomic_fetch_add((_Atomic int *)&w->inv->inflight_mb, w->memory_mb);
	atomic_fetch_add((_Atomic int *)&w->inv->inflight, 1);
	gust_counter_add(s->m_placed, 1);
	w->req = msg;
	if (w->blocking) {
		worker_forward(w);
		return;
	}
	Gust__ActivationResult ack = GUST__ACTIVATION_RESULT__INIT;
	ack.activation_id = w->id;
	ack.accepted = true;
	nng_msg *m;
	if (gust_msg_pack(&ack.base, &m) != 0) {
		worker_forward(w);
		return;
	}
	w->state = W_ACK;
	nng_aio_set_msg(w->aio, m);
	nng_ctx_send(w->ctx, w->aio);
}

static void worker_cb(void *arg)
{
	sched_worker *w = arg;
	int rv = nng_aio_result(w->aio);
	switch (w->state) {
	case W_RECV:
		if (rv == NNG_ECLOSED)
			return;
		if (rv != 0) {
			worker_recv(w);
			return;
		}
		worker_request(w, nng_aio_get_msg(w->aio));
		return;
	case W_ACK:
		if (rv != 0) {
			/* The caller is gone; it will retry with the same id. */
			nng_msg_free(nng_aio_get_msg(w->aio));
		}
		worker_forward(w);
		return;
	case W_REPLY:
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(w->aio));
		if (rv == NNG_ECLOSED)
			return;
		worker_recv(w);
		return;
	}
}

int sched_workers_start(sched *s, gust_error **err)
{
	int rv;
	s->nworkers = (size_t)s->cfg.workers;
	s->workers = gust_xcalloc(s->nworkers, sizeof(sched_worker));
	for (size_t i = 0; i < s->nworkers; i++) {
		sched_worker *w = &s->workers[i];
		w->s = s;
		if ((rv = nng_aio_alloc(&w->aio, worker_cb, w)) != 0 ||
		    (rv = nng_aio_alloc(&w->fwd, fwd_cb, w)) != 0 ||
		    (rv = nng_ctx_open(&w->ctx, s->rep)) != 0)
			return gust_error_set(err, gust_err_from_nng(rv), "worker %zu: %s", i,
			                      nng_strerror(rv));
	}
	for (size_t i = 0; i < s->nworkers; i++)
		worker_recv(&s->workers[i]);
	return 0;
}

void sched_workers_stop(sched *s)
{
	for (size_t i = 0; i < s->nworkers; i++) {
		sched_worker *w = &s->workers[i];
		if (w->aio)
			nng_aio_stop(w->aio);
		if (w->fwd)
			nng_aio_stop(w->fwd);
	}
	for (size_t i = 0; i < s->nworkers; i++) {
		sched_worker *w = &s->workers[i];
		worker_release_invoker(w);
		if (w->req)
			nng_msg_free(w->req);
		nng_aio_free(w->aio);
		nng_aio_free(w->fwd);
	}
	free(s->workers);
	s->workers = NULL;
	s->nworkers = 0;
}
