/* inv_server.c - the nng side: rep contexts that receive activation requests,
 * hand them to the pool, and send back what the pool answers. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <string.h>

#include "gust/daemon.h"
#include "gust/integrity.h"
#include "gust/log.h"
#include "invoker.h"

enum { J_RECV, J_RUN, J_SEND };

static void job_recv(inv_job *j)
{
	j->state = J_RECV;
	nng_ctx_recv(j->ctx, j->aio);
}

void inv_server_reply(inv_job *j, nng_msg *msg)
{
	if (j->state == J_RUN)
		atomic_fetch_sub(&j->v->running, 1);
	if (j->req) {
		gust__activation_request__free_unpacked(j->req, NULL);
		j->req = NULL;
	}
	if (msg == NULL) {
		job_recv(j); /* nothing to answer with: the caller's deadline tells it */
		return;
	}
	j->state = J_SEND;
	nng_aio_set_msg(j->aio, msg);
	nng_ctx_send(j->ctx, j->aio);
}

static void job_cb(void *arg)
{
	inv_job *j = arg;
	int rv = nng_aio_result(j->aio);
	if (j->state == J_SEND) {
		if (rv != 0)
			nng_msg_free(nng_aio_get_msg(j->aio));
		if (rv == NNG_ECLOSED)
			return;
		job_recv(j);
		return;
	}
	if (rv == NNG_ECLOSED)
		return;
	if (rv != 0) {
		job_recv(j);
		return;
	}
	nng_msg *m = nng_aio_get_msg(j->aio);
	j->req = gust_msg_request(m);
	nng_msg_free(m);
	if (j->req == NULL || j->req->activation_id[0] == '\0' || j->req->code_key[0] == '\0' ||
	    j->req->kind[0] == '\0') {
		gust_log_warn("INV-REQ-MALFORMED", "refusing a malformed activation request");
		nng_msg *e;
		if (gust_msg_error_result(j->req ? j->req->activation_id : "", GUST_EPROTO,
		                          "malformed activation request", &e) != 0) {
			if (j->req)
				gust__activation_request__free_unpacked(j->req, NULL);
			j->req = NULL;
			job_recv(j);
			return;
		}
		inv_server_reply(j, e);
		return;
	}
	/* Run only what a gateway or gust-trigger resolved (its MAC), and only
	 * code of the namespace it runs as: whoever reaches this socket, or
	 * Redis, could otherwise name any owner and any code key. Nothing is
	 * recorded (a record would be written as the namespace the request
	 * claims); the sender gets the error. */
	char why[256];
	int bad = gust_areq_verify(j->req);
	if (bad != 0)
		snprintf(why, sizeof(why), "%s",
		         bad == GUST_EAUTH ? "its integrity check (MAC) failed"
		                           : "no cluster secret is loaded");
	else
		bad = gust_areq_code_check_str(j->req->namespace_, j->req->user, j->req->action,
		                               j->req->code_key, why, sizeof(why));
	if (bad != 0) {
		gust_counter_add(j->v->m_rejected, 1);
		const Gust__ActivationRequest *q = j->req;
		char id[80], ns[120], act[220], user[120], clean[256];
		gust_log_error(
		    "INV-REQ-REJECTED", "refusing activation %s of %s/%s for %s: %s",
		    gust_log_clean(id, sizeof(id), q->activation_id, strlen(q->activation_id)),
		    gust_log_clean(ns, sizeof(ns), q->namespace_, strlen(q->namespace_)),
		    gust_log_clean(act, sizeof(act), q->action, strlen(q->action)),
		    gust_log_clean(user, sizeof(user), q->user, strlen(q->user)),
		    gust_log_clean(clean, sizeof(clean), why, strlen(why)));
		nng_msg *e;
		if (gust_msg_error_result(j->req->activation_id, GUST_EPERM, why, &e) != 0) {
			gust__activation_request__free_unpacked(j->req, NULL);
			j->req = NULL;
			job_recv(j);
			return;
		}
		inv_server_reply(j, e);
		return;
	}
	j->recv_ms = (uint64_t)gust_wall_ms();
	j->state = J_RUN;
	atomic_fetch_add(&j->v->running, 1);
	inv_pool_submit(j->v, j);
}

int inv_server_start(inv *v, gust_error **err)
{
	int rv;
	nng_listener l;
	if ((rv = nng_rep0_open(&v->rep)) != 0)
		return gust_error_set(err, GUST_EIO, "nng rep socket: %s", nng_strerror(rv));
	nng_socket_set_size(v->rep, NNG_OPT_RECVMAXSZ, 64u << 20);
	/* Only the roles of listen_peers get through the handshake: by default
	 * the schedulers, whose requests carry the cluster's MAC besides. */
	if ((rv = gust_transport_listen(v->transport, v->rep, v->cfg.listen, v->listen_peers,
	                                "listen", &l, err)) != 0)
		return rv;
	v->address = gust_nng_public_url(l, v->cfg.listen, v->cfg.advertise);
	v->njobs = (size_t)v->cfg.contexts;
	v->jobs = gust_xcalloc(v->njobs, sizeof(inv_job));
	for (size_t i = 0; i < v->njobs; i++) {
		inv_job *j = &v->jobs[i];
		j->v = v;
		if ((rv = nng_aio_alloc(&j->aio, job_cb, j)) != 0 ||
		    (rv = nng_ctx_open(&j->ctx, v->rep)) != 0)
			return gust_error_set(err, GUST_ENOMEM, "nng context: %s",
			                      nng_strerror(rv));
	}
	for (size_t i = 0; i < v->njobs; i++)
		job_recv(&v->jobs[i]);
	return 0;
}

void inv_server_stop(inv *v)
{
	nng_close(v->rep);
	for (size_t i = 0; i < v->njobs; i++)
		if (v->jobs[i].aio)
			nng_aio_stop(v->jobs[i].aio);
	for (size_t i = 0; i < v->njobs; i++) {
		if (v->jobs[i].req)
			gust__activation_request__free_unpacked(v->jobs[i].req, NULL);
		nng_aio_free(v->jobs[i].aio);
	}
	free(v->jobs);
	v->jobs = NULL;
	free(v->address);
	v->address = NULL;
}
