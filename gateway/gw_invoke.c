/* gw_invoke.c - invocations: build the ActivationRequest, send it to a
 * scheduler on an nng context, suspend the HTTP connection, and answer from
 * the aio callback. The caller's parameters are spliced in as bytes after the
 * action's defaults (JSON parsers keep the last of duplicate keys, so the
 * caller's win) and never re-encoded. */
#include <jansson.h>
#include <string.h>

#include "gateway.h"
#include "gust/fire.h"
#include "gust/log.h"
#include "gust/msg.h"
#include "gust/record.h"

static const char *query(gw_req *r, const char *k)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, k);
}

static bool query_true(gw_req *r, const char *k)
{
	const char *v = query(r, k);
	return v != NULL && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0 || *v == '\0');
}

void gw_invoke_cleanup(gw_req *r)
{
	if (r->aio) {
		nng_aio_stop(r->aio);
		nng_msg *m = nng_aio_get_msg(r->aio);
		if (m && !r->sent)
			nng_msg_free(m);
		nng_aio_free(r->aio);
		r->aio = NULL;
	}
	if (r->ctx_open) {
		nng_ctx_close(r->ctx);
		r->ctx_open = false;
	}
	gust_fire_request_free(r->areq);
	r->areq = NULL;
}

static void invoke_answer(gw_req *r, Gust__ActivationResult *res)
{
	gw *g = r->g;
	Gust__ActivationRequest *q = r->areq;
	if (res->status >= 0 && res->status <= 3)
		gust_counter_add(g->m_act[res->status], 1);
	if (res->accepted || (!r->blocking)) {
		char buf[96];
		snprintf(buf, sizeof(buf), "{\"activationId\":\"%s\"}", q->activation_id);
		if (res->error != 0 && !res->accepted)
			gw_reply_refused(r, res->error, res->error_msg);
		else
			gw_reply_json(r, 202, buf);
		return;
	}
	if (res->status == 3 && res->error != 0 && res->start_ms == 0) {
		/* The platform refused or lost it before it ran (limits, no invoker). */
		gw_reply_refused(r, res->error, res->error_msg);
		return;
	}
	int status = res->status == 0 ? 200 : 502;
	if (r->web) {
		gw_web_answer(r, res->status, (const char *)res->result.data, res->result.len);
		return;
	}
	if (r->want_result) {
		r->status = status;
		r->ctype = "application/json";
		gust_buf_reset(&r->resp);
		if (res->result.len)
			gust_buf_append(&r->resp, res->result.data, res->result.len);
		else
			gust_buf_puts(&r->resp, "{}");
		return;
	}
	r->status = status;
	r->ctype = "application/json";
	gust_buf_reset(&r->resp);
	gust_record_json(q, res, &r->resp);
}

static void invoke_finish(gw_req *r)
{
	r->state = GW_REQ_READY;
	/* Last: once resumed, MHD may answer and free r on another thread. */
	gw_resume(r);
}

static void invoke_cb(void *arg)
{
	gw_req *r = arg;
	int rv = nng_aio_result(r->aio);
	if (!r->sent) {
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(r->aio));
			nng_aio_set_msg(r->aio, NULL);
			gw_reply_error(r, 503, "EUNAVAIL",
			               "no scheduler accepted the activation: %s",
			               nng_strerror(rv));
			invoke_finish(r);
			return;
		}
		r->sent = true;
		nng_aio_set_timeout(r->aio, (nng_duration)r->g->cfg.blocking_timeout_ms);
		if (r->blocking)
			nng_aio_set_timeout(r->aio, (nng_duration)r->wait_ms);
		nng_ctx_recv(r->ctx, r->aio);
		return;
	}
	Gust__ActivationRequest *q = r->areq;
	if (rv == NNG_ETIMEDOUT && r->blocking) {
		/* As OpenWhisk: the activation goes on; the client polls for it. */
		char buf[96];
		snprintf(buf, sizeof(buf), "{\"activationId\":\"%s\"}", q->activation_id);
		gw_reply_json(r, 202, buf);
	} else if (rv != 0) {
		gw_reply_error(r, 503, "EUNAVAIL", "the scheduler did not answer: %s",
		               nng_strerror(rv));
	} else {
		nng_msg *m = nng_aio_get_msg(r->aio);
		nng_aio_set_msg(r->aio, NULL);
		Gust__ActivationResult *res = gust_msg_result(m);
		if (res == NULL)
			gw_reply_error(r, 502, "EPROTO", "malformed answer from the scheduler");
		else
			invoke_answer(r, res);
		if (res)
			gust__activation_result__free_unpacked(res, NULL);
		nng_msg_free(m);
	}
	invoke_finish(r);
}

/* limits.concurrency and the "egress" and "binding" annotations of a cached
 * action. Read from its stored record; a one-entry cache per thread keeps the
 * parse off the hot path for an action invoked again (a record never changes
 * once cached: an update is a new gw_action with a new mod_revision).
 * *binding is borrowed from the cache: valid until this thread's next call. */
static void areq_extras(const gw_action *a, int32_t *concurrency, bool *egress, json_t **binding)
{
	static __thread const gw_action *c_act;
	static __thread int64_t c_rev;
	static __thread int32_t c_conc;
	static __thread bool c_egress;
	static __thread json_t *c_binding;
	if (c_act != a || c_rev != a->mod_revision) {
		json_decref(c_binding);
		c_binding = NULL;
		json_t *o = a->json ? json_loads(a->json, 0, NULL) : NULL;
		json_int_t n = json_integer_value(
		    json_object_get(json_object_get(o, "limits"), "concurrency"));
		c_conc = n >= 1 && n <= 500 ? (int32_t)n : 1;
		c_egress = false;
		json_t *ann;
		size_t i;
		json_array_foreach(json_object_get(o, "annotations"), i, ann)
		{
			const char *k = json_string_value(json_object_get(ann, "key"));
			if (k != NULL && strcmp(k, "egress") == 0)
				c_egress = json_is_true(json_object_get(ann, "value"));
			else if (k != NULL && strcmp(k, "binding") == 0) {
				json_decref(c_binding); /* the last one wins, as for egress */
				c_binding = json_incref(json_object_get(ann, "value"));
			}
		}
		json_decref(o);
		c_act = a;
		c_rev = a->mod_revision;
	}
	*concurrency = c_conc;
	*egress = c_egress;
	*binding = c_binding;
}

Gust__ActivationRequest *gw_areq_new(gw *g, const char *user, gw_action *a, const char *defaults,
                                     const char *params, size_t len, const char *cause)
{
	gust_fire_action fa = {
	    .ns = a->ns,
	    .name = a->name,
	    .version = a->version,
	    .kind = a->kind,
	    .main = a->main,
	    .binary = a->binary,
	    .memory_mb = (int)a->memory_mb,
	    .timeout_ms = (int)a->timeout_ms,
	    .log_limit = a->log_limit,
	    .code_key = a->code_key,
	};
	int32_t conc;
	areq_extras(a, &conc, &fa.egress, &fa.binding);
	fa.concurrency = conc;
	return gust_fire_request_new(&fa, user, g->cfg.api_host,
	                             defaults ? defaults : a->params_inner, params, len, cause);
}

void gw_areq_free(Gust__ActivationRequest *q)
{
	gust_fire_request_free(q);
}

bool gw_params_check(gw_req *r, const char *body, size_t len)
{
	if (len == 0)
		return true;
	/* jansson accepts a NUL right after a number ({"a":4\0}); a raw NUL can
	 * never be valid JSON, and must not reach the runtime's one-line protocol. */
	if (memchr(body, '\0', len) != NULL) {
		gw_reply_error(r, 400, "EINVAL",
		               "The request content was malformed: a NUL byte in the parameters");
		return false;
	}
	json_error_t je;
	json_t *p = json_loadb(body, len, 0, &je);
	bool obj = json_is_object(p);
	json_decref(p);
	if (!obj)
		gw_reply_error(r, 400, "EINVAL", "The request content was malformed: %s",
		               p ? "parameters must be a JSON object" : je.text);
	return obj;
}

void gw_invoke(gw_req *r, const char *user, gw_action *a, const char *defaults, const char *params,
               size_t len)
{
	gw *g = r->g;
	if (!gw_params_check(r, params, len))
		return;
	if (!r->web && a->final) {
		/* OpenWhisk holds an invoke to "final" too (web requests were
		 * checked on their own parameters, before __ow_* were added). */
		json_t *pj = len ? json_loadb(params, len, 0, NULL) : NULL;
		bool ok = gw_final_check(r, a, defaults, pj);
		json_decref(pj);
		if (!ok)
			return;
	}
	if (!r->web) {
		r->blocking = query_true(r, "blocking");
		r->want_result = query_true(r, "result");
	}
	const char *t = query(r, "timeout");
	if (t != NULL) {
		char *end;
		long long ms = strtoll(t, &end, 10);
		if (*t == '\0' || *end != '\0' || ms < 0) {
			gw_reply_error(
			    r, 400, "EINVAL",
			    "query parameter 'timeout' must be a number of milliseconds");
			return;
		}
		r->wait_ms = ms;
	}
	if (r->wait_ms <= 0 || r->wait_ms > g->cfg.blocking_timeout_ms)
		r->wait_ms = g->cfg.blocking_timeout_ms;
	/* No scheduler known (none runs, or a new leader is being elected): the
	 * send below waits up to 5 s for one before answering 503. */
	if (a->components != NULL) {
		gw_sequence_invoke(r, user, a, defaults, params, len);
		return;
	}
	Gust__ActivationRequest *q = gw_areq_new(g, user, a, defaults, params, len, NULL);
	q->blocking = r->blocking;
	r->areq = q;
	r->activation_id = gust_xstrdup(q->activation_id);

	nng_msg *m;
	int rv;
	if ((rv = gust_msg_pack(&q->base, &m)) != 0) {
		gw_reply_gust_error(r, rv, NULL);
		return;
	}
	if ((rv = nng_aio_alloc(&r->aio, invoke_cb, r)) != 0 ||
	    (rv = nng_ctx_open(&r->ctx, g->sched)) != 0) {
		nng_msg_free(m);
		gw_reply_error(r, 500, "EINTERNAL", "nng: %s", nng_strerror(rv));
		return;
	}
	r->ctx_open = true;
	/* Suspend before the send: the callback may resume us at any moment after. */
	r->state = GW_REQ_WAIT;
	gw_suspend(r);
	nng_aio_set_msg(r->aio, m);
	nng_aio_set_timeout(r->aio, 5000);
	nng_ctx_send(r->ctx, r->aio);
}

int gw_call(gw *g, const Gust__ActivationRequest *q, int64_t wait_ms, Gust__ActivationResult **out)
{
	nng_msg *m;
	nng_aio *aio = NULL;
	nng_ctx ctx;
	int rv;
	*out = NULL;
	if ((rv = gust_msg_pack(&q->base, &m)) != 0)
		return rv;
	if ((rv = nng_aio_alloc(&aio, NULL, NULL)) != 0) {
		nng_msg_free(m);
		return gust_err_from_nng(rv);
	}
	if ((rv = nng_ctx_open(&ctx, g->sched)) != 0) {
		nng_msg_free(m);
		nng_aio_free(aio);
		return gust_err_from_nng(rv);
	}
	nng_aio_set_msg(aio, m);
	nng_aio_set_timeout(aio, 5000);
	nng_ctx_send(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		nng_msg_free(nng_aio_get_msg(aio));
		rv = GUST_EUNAVAIL;
		goto out;
	}
	nng_aio_set_timeout(aio, (nng_duration)wait_ms);
	nng_ctx_recv(ctx, aio);
	nng_aio_wait(aio);
	if ((rv = nng_aio_result(aio)) != 0) {
		rv = rv == NNG_ETIMEDOUT ? GUST_ETIMEDOUT : GUST_EUNAVAIL;
		goto out;
	}
	m = nng_aio_get_msg(aio);
	*out = gust_msg_result(m);
	nng_msg_free(m);
	rv = *out ? 0 : GUST_EPROTO;
out:
	nng_ctx_close(ctx);
	nng_aio_free(aio);
	return rv;
}

void gw_reply_refused(gw_req *r, int err, const char *msg)
{
	if (err == GUST_EBUSY) {
		gw_reply_error(r, 429, "EBUSY", "Too many requests: %s",
		               msg && msg[0] ? msg : "the namespace is over its activation limits");
		return;
	}
	gw_reply_gust_error(r, err, msg && msg[0] ? msg : NULL);
}

/* Dials every scheduler in the cache and closes dialers of those gone. */
typedef struct sync_ctx {
	char **addrs;
	size_t n;
} sync_ctx;

static int sync_collect(void *arg, const char *key, void *value)
{
	sync_ctx *sc = arg;
	sc->addrs = gust_xrealloc(sc->addrs, (sc->n + 1) * sizeof(char *));
	sc->addrs[sc->n++] = gust_xstrdup(value);
	return 0;
}

static int sync_drop(void *arg, const char *key, void *value)
{
	sync_ctx *sc = arg;
	for (size_t i = 0; i < sc->n; i++)
		if (strcmp(sc->addrs[i], key) == 0)
			return 0;
	nng_dialer *d = value;
	nng_dialer_close(*d);
	free(d);
	gust_log_info("GW-SCHED-DROP", "scheduler %s is gone", key);
	return 1;
}

int gw_sched_sync(gw *g)
{
	sync_ctx sc = {0};
	pthread_rwlock_rdlock(&g->cache.lock);
	gust_map_filter(&g->cache.maps[GW_SCHEDULERS], sync_collect, &sc);
	pthread_rwlock_unlock(&g->cache.lock);
	pthread_mutex_lock(&g->dial_lock);
	gust_map_filter(&g->dialers, sync_drop, &sc);
	for (size_t i = 0; i < sc.n; i++) {
		if (gust_map_get(&g->dialers, sc.addrs[i]) != NULL)
			continue;
		nng_dialer *d = gust_xcalloc(1, sizeof(*d));
		gust_error *e = NULL;
		/* Only a scheduler's certificate is trusted at the other end. */
		if (gust_transport_dial(g->transport, g->sched, sc.addrs[i], GUST_ROLE_SCHEDULER,
		                        NNG_FLAG_NONBLOCK, d, &e) != 0) {
			gust_log_warn("GW-SCHED-DIAL", "cannot dial scheduler %s: %s", sc.addrs[i],
			              gust_error_msg(e));
			gust_error_free(e);
			free(d);
			continue;
		}
		gust_map_put(&g->dialers, sc.addrs[i], d);
		gust_log_info("GW-SCHED-ADD", "dialing scheduler %s", sc.addrs[i]);
	}
	pthread_mutex_unlock(&g->dial_lock);
	for (size_t i = 0; i < sc.n; i++)
		free(sc.addrs[i]);
	free(sc.addrs);
	return 0;
}
