/* sched_worker.c - the rep side: one state machine per nng context.
 *
 *   RECV --> blocking:     WAIT (the activation runs) --> REPLY --> RECV
 *        --> non-blocking: JOURNAL (Redis has it) --> ACK --> RECV
 *        --> refused:      REPLY (429/503 reason) --> RECV
 *
 * Nothing here blocks: the journal thread and the activations call back. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "gust/integrity.h"
#include "gust/log.h"
#include "scheduler.h"

enum { W_RECV, W_WAIT, W_JOURNAL, W_REPLY };

struct sched_worker {
	sched *s;
	int state;
	nng_ctx ctx;
	nng_aio *aio;
	char id[64];
};

static void worker_recv(sched_worker *w)
{
	w->state = W_RECV;
	nng_ctx_recv(w->ctx, w->aio);
}

static void worker_send(sched_worker *w, nng_msg *msg)
{
	if (msg == NULL) {
		worker_recv(w); /* nothing to say: the caller's deadline tells it */
		return;
	}
	w->state = W_REPLY;
	nng_aio_set_msg(w->aio, msg);
	nng_ctx_send(w->ctx, w->aio);
}

static void worker_refuse(sched_worker *w, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void worker_refuse(sched_worker *w, int err, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	nng_msg *m = NULL;
	gust_msg_error_result(w->id, err, text, &m);
	worker_send(w, m);
}

void sched_worker_answer(sched_worker *w, nng_msg *msg)
{
	worker_send(w, msg);
}

void sched_worker_journaled(sched_worker *w, sched_act *a, int rv)
{
	sched *s = w->s;
	if (rv != 0) {
		sched_finish(s, a);
		sched_act_free(a);
		worker_refuse(w, GUST_EUNAVAIL,
		              "the activation journal is unavailable; the activation was not "
		              "accepted");
		return;
	}
	gust_counter_add(s->m_journaled, 1);
	sched_enqueue(s, a);
	Gust__ActivationResult ack = GUST__ACTIVATION_RESULT__INIT;
	ack.activation_id = w->id;
	ack.accepted = true;
	nng_msg *m = NULL;
	gust_msg_pack(&ack.base, &m);
	worker_send(w, m);
}

static bool have_invokers(sched *s)
{
	pthread_rwlock_rdlock(&s->inv_lock);
	bool any = s->ninvokers > 0;
	pthread_rwlock_unlock(&s->inv_lock);
	return any;
}

static void worker_request(sched_worker *w, nng_msg *msg)
{
	sched *s = w->s;
	int rv;
	/* The head only: the params travel on as bytes, unread (but for the MAC). */
	gust_request_head h;
	if (gust_msg_request_head(nng_msg_body(msg), nng_msg_len(msg), &h) != 0 ||
	    h.activation_id.n == 0 || h.activation_id.n >= sizeof(w->id) || h.namespace_.n == 0 ||
	    h.action.n == 0 || h.version.n == 0) {
		gust_counter_add(s->m_malformed, 1);
		nng_msg_free(msg);
		w->id[0] = '\0';
		worker_refuse(w, GUST_EPROTO, "malformed activation request");
		return;
	}
	snprintf(w->id, sizeof(w->id), "%.*s", (int)h.activation_id.n, h.activation_id.p);
	/* Only what a gateway or gust-trigger resolved and signed is journaled
	 * and placed: a request put on this socket by anyone else (a tenant
	 * who reached the network of the daemons) names whatever owner and code
	 * it likes. The invoker checks again (its socket is reachable too). */
	if ((rv = gust_areq_verify_head(&h)) != 0) {
		gust_counter_add(s->m_req_rejected, 1);
		char id[80], ns_[120], act[220], user[120];
		gust_log_error("SCHED-REQ-FORGED", "refusing activation %s of %s/%s for %s: %s",
		               gust_log_clean(id, sizeof(id), w->id, strlen(w->id)),
		               gust_log_clean(ns_, sizeof(ns_), h.namespace_.p, h.namespace_.n),
		               gust_log_clean(act, sizeof(act), h.action.p, h.action.n),
		               gust_log_clean(user, sizeof(user), h.user.p, h.user.n),
		               rv == GUST_EAUTH ? "its integrity check (MAC) failed"
		                                : "no cluster secret is loaded");
		nng_msg_free(msg);
		worker_refuse(w, GUST_EPERM, "the activation request's integrity check failed");
		return;
	}
	char why[256], ns[257];
	if (gust_areq_code_check(h.namespace_, h.user, h.action, h.code_key, why, sizeof(why)) !=
	    0) {
		gust_counter_add(s->m_req_rejected, 1);
		char id[80], clean[256];
		gust_log_error("SCHED-REQ-FOREIGN-CODE", "refusing activation %s: %s",
		               gust_log_clean(id, sizeof(id), w->id, strlen(w->id)),
		               gust_log_clean(clean, sizeof(clean), why, strlen(why)));
		nng_msg_free(msg);
		worker_refuse(w, GUST_EPERM, "%s", why);
		return;
	}
	if (h.blocking && !have_invokers(s)) {
		nng_msg_free(msg);
		worker_refuse(w, GUST_EUNAVAIL, "no invoker is available to run the activation");
		return;
	}
	const gust_msg_str *nsv = h.user.n ? &h.user : &h.namespace_;
	snprintf(ns, sizeof(ns), "%.*s", (int)nsv->n, nsv->p);
	rv = sched_admit(s, ns, why, sizeof(why));
	if (rv != 0) {
		nng_msg_free(msg);
		worker_refuse(w, rv, "%s", why);
		return;
	}
	/* h points into msg, which the activation now holds */
	bool blocking = h.blocking;
	sched_act *a = sched_act_new(s, msg, &h, blocking ? w : NULL);
	if (a == NULL) {
		nng_msg_free(msg);
		worker_refuse(w, GUST_ENOMEM, "out of memory");
		return;
	}
	if (blocking) {
		w->state = W_WAIT;
		sched_enqueue(s, a);
		return;
	}
	w->state = W_JOURNAL;
	sched_journal_append(s, a, w);
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
	for (size_t i = 0; i < s->nworkers; i++)
		if (s->workers[i].aio)
			nng_aio_stop(s->workers[i].aio);
	for (size_t i = 0; i < s->nworkers; i++)
		nng_aio_free(s->workers[i].aio);
	free(s->workers);
	s->workers = NULL;
	s->nworkers = 0;
}
