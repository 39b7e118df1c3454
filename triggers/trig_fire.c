/* trig_fire.c - a fire of a feed's trigger: one activation request per active
 * rule, built once (so retries keep their activation ids) and sent to the
 * scheduler on nng contexts in parallel. The outcome tells the source whether
 * it may acknowledge its events. */
#include <string.h>

#include "gust/log.h"
#include "gust/msg.h"
#include "gust/record.h"
#include "trigger.h"

typedef struct fire_req {
	Gust__ActivationRequest *q; /* NULL: the rule's action could not be resolved */
	json_t *log;                /* the rule's entry in the trigger record */
	bool done;
	bool lent; /* q->params is the fire's params, lent (freed with the fire) */
	nng_aio *aio;
	nng_ctx ctx;
	bool ctx_open;
} fire_req;

struct trig_fire {
	trig_feed *f;
	char id[33]; /* the trigger's activation */
	int64_t start;
	char *params; /* the fire's params (trigger's, then the payload's) */
	size_t plen;
	fire_req *reqs;
	size_t n;
	bool blocking;
	bool started; /* sends under way (trig_fire_start) */
	uint64_t t0;  /* when the first send started */
};

static json_t *fire_lookup(void *arg, const char *kind, const char *id)
{
	trig *t = arg;
	return trig_store_get(t, strcmp(kind, "packages") == 0 ? TRIG_PACKAGES : TRIG_ACTIONS, id);
}

static bool fire_skip_feed_param(const char *key, void *arg)
{
	return gust_feed_is_param(*(int *)arg, key);
}

static trig_fire *fire_new(trig_feed *f, const char *payload, size_t len, char *take, bool one_line,
                           bool blocking)
{
	trig *t = f->t;
	trig_fire *x = gust_xcalloc(1, sizeof(*x));
	x->f = f;
	x->blocking = blocking;
	x->start = gust_wall_ms();
	gust_random_hex(x->id, 16);
	/* The trigger's own parameters (not the feed's), then the payload. */
	json_t *trigger = trig_store_get(t, TRIG_TRIGGERS, f->key);
	cleanup_free char *tinner = gust_fire_params_inner(json_object_get(trigger, "parameters"),
	                                                   fire_skip_feed_param, &f->cfg.kind);
	json_decref(trigger);
	/* Without parameters of its own, a one-line {...} payload is already
	 * what gust_fire_params would make of it: keep it as it is. */
	if (take != NULL && (tinner == NULL || tinner[0] == '\0') && len >= 2 && take[0] == '{' &&
	    take[len - 1] == '}' &&
	    (one_line || (memchr(take, '\n', len) == NULL && memchr(take, '\r', len) == NULL))) {
		x->params = take;
		x->plen = len;
	} else {
		x->params = gust_fire_params(tinner, payload, len, &x->plen);
		free(take);
	}
	size_t nr;
	json_t **rules = trig_store_rules(t, f->ns, &nr);
	json_t *targets = gust_fire_rule_targets(rules, nr, f->ns, f->name);
	trig_store_list_free(rules, nr);
	x->n = json_array_size(targets);
	x->reqs = gust_xcalloc(x->n ? x->n : 1, sizeof(fire_req));
	size_t i;
	json_t *ru;
	json_array_foreach(targets, i, ru)
	{
		fire_req *r = &x->reqs[i];
		const char *ans = json_string_value(json_object_get(ru, "ns"));
		const char *apath = json_string_value(json_object_get(ru, "path"));
		r->log = json_pack("{s:O,s:s++}", "rule", json_object_get(ru, "rule"), "action",
		                   ans, "/", apath);
		json_t *arec = NULL;
		char *defaults = NULL;
		gust_fire_action a;
		int rv = gust_fire_resolve(fire_lookup, t, f->ns, ans, apath, &arec, &defaults);
		if (rv == 0 && (rv = gust_fire_action_from_json(arec, &a)) == 0) {
			/* the resolved record's own namespace and name */
			const char *rns = json_string_value(json_object_get(arec, "namespace"));
			const char *slash = rns ? strchr(rns, '/') : NULL;
			cleanup_free char *nsbuf =
			    slash ? gust_xstrndup(rns, (size_t)(slash - rns)) : NULL;
			cleanup_free char *namebuf =
			    gust_xasprintf("%s%s%s", slash ? slash + 1 : "", slash ? "/" : "",
			                   json_string_value(json_object_get(arec, "name")) ?: "");
			a.ns = nsbuf ? nsbuf : rns ? rns : ans;
			a.name = namebuf;
			/* Without defaults a rule's params are the fire's own: lend
			 * them rather than copy a batch of up to max_payload per
			 * rule (gust_fire_params would give the same bytes). */
			if (defaults == NULL || defaults[0] == '\0') {
				r->q = gust_fire_request_take(&a, f->ns, t->cfg.api_host, x->params,
				                              x->plen, x->id);
				r->lent = true;
			} else {
				r->q = gust_fire_request_new(&a, f->ns, t->cfg.api_host, defaults,
				                             x->params, x->plen, x->id);
			}
			r->q->blocking = blocking;
		} else {
			r->done = true;
			json_object_set_new(r->log, "statusCode", json_integer(1));
			json_object_set_new(r->log, "success", json_false());
			json_object_set_new(
			    r->log, "error",
			    json_string(rv == GUST_ENOTSUP
			                    ? "Sequences as rule actions are not supported."
			                    : "The action of the rule does not exist."));
		}
		json_decref(arec);
		free(defaults);
	}
	json_decref(targets);
	return x;
}

trig_fire *trig_fire_new(trig_feed *f, const char *payload, size_t len, bool blocking)
{
	return fire_new(f, payload, len, NULL, false, blocking);
}

trig_fire *trig_fire_new_take(trig_feed *f, char *payload, size_t len, bool one_line, bool blocking)
{
	return fire_new(f, payload, len, payload, one_line, blocking);
}

size_t trig_fire_count(trig_fire *x)
{
	return x->n;
}

static void fire_req_close(fire_req *r)
{
	if (r->aio) {
		nng_aio_stop(r->aio);
		nng_aio_free(r->aio);
		r->aio = NULL;
	}
	if (r->ctx_open)
		nng_ctx_close(r->ctx);
	r->ctx_open = false;
}

/* What an answer means for the fire: TRIG_OK, TRIG_RETRY or TRIG_FAILED. */
static int fire_classify(trig_fire *x, Gust__ActivationResult *res, char *why, size_t whylen)
{
	if (res->accepted && !x->blocking)
		return TRIG_OK;
	if (x->blocking && res->status == 0 && res->error == 0)
		return TRIG_OK;
	const char *msg = res->error_msg && res->error_msg[0] ? res->error_msg
	                  : res->error                        ? gust_strerror(res->error)
	                                                      : "the activation failed";
	if (why)
		snprintf(why, whylen, "%s", msg);
	/* Limits, no scheduler or invoker, a journal or leader change: wait. */
	if (res->error == GUST_EBUSY || res->error == GUST_EUNAVAIL ||
	    res->error == GUST_ETIMEDOUT || res->error == GUST_ECLOSED)
		return TRIG_RETRY;
	return TRIG_FAILED;
}

void trig_fire_start(trig_fire *x)
{
	trig *t = x->f->t;
	if (x->started)
		return;
	x->started = true;
	x->t0 = gust_now_us();
	/* Start every send, then collect: the rules' requests travel together. */
	for (size_t i = 0; i < x->n; i++) {
		fire_req *r = &x->reqs[i];
		if (r->done)
			continue;
		nng_msg *m = NULL;
		int rv;
		if ((rv = gust_msg_pack(&r->q->base, &m)) != 0 ||
		    (rv = nng_aio_alloc(&r->aio, NULL, NULL)) != 0 ||
		    (rv = nng_ctx_open(&r->ctx, t->sched)) != 0) {
			if (m)
				nng_msg_free(m);
			fire_req_close(r);
			continue; /* no aio: trig_fire_wait counts it pushed back */
		}
		r->ctx_open = true;
		nng_aio_set_msg(r->aio, m);
		/* A send only waits for a connection to the leader: when there is
		 * none, give up soon and let the feed back off (and stop when told). */
		nng_aio_set_timeout(r->aio, 1000);
		nng_ctx_send(r->ctx, r->aio);
	}
}

int trig_fire_send(trig_fire *x, char *why, size_t whylen)
{
	trig_fire_start(x);
	return trig_fire_wait(x, why, whylen);
}

int trig_fire_wait(trig_fire *x, char *why, size_t whylen)
{
	trig *t = x->f->t;
	int outcome = TRIG_OK;
	if (!x->started)
		trig_fire_start(x);
	x->started = false;
	uint64_t t0 = x->t0;
	if (why && whylen)
		why[0] = '\0';
	for (size_t i = 0; i < x->n; i++) {
		fire_req *r = &x->reqs[i];
		if (!r->done && r->aio == NULL) {
			if (why && !why[0])
				snprintf(why, whylen, "cannot send to the scheduler");
			if (outcome == TRIG_OK)
				outcome = TRIG_RETRY;
		}
	}
	for (size_t i = 0; i < x->n; i++) {
		fire_req *r = &x->reqs[i];
		if (r->done || r->aio == NULL)
			continue;
		nng_aio_wait(r->aio);
		int rv = nng_aio_result(r->aio);
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(r->aio));
			if (why && !why[0])
				snprintf(why, whylen, "no scheduler took the request: %s",
				         nng_strerror(rv));
			outcome = outcome == TRIG_FAILED ? TRIG_FAILED : TRIG_RETRY;
			fire_req_close(r);
			continue;
		}
		/* in-order delivery waits for the activation itself */
		int64_t wait = t->cfg.ack_timeout_ms;
		if (x->blocking)
			wait += r->q->timeout_ms > 0 ? r->q->timeout_ms : 60000;
		nng_aio_set_timeout(r->aio, (nng_duration)wait);
		nng_ctx_recv(r->ctx, r->aio);
		nng_aio_wait(r->aio);
		rv = nng_aio_result(r->aio);
		if (rv != 0) {
			if (why && !why[0])
				snprintf(why, whylen, "the scheduler did not answer: %s",
				         nng_strerror(rv));
			outcome = outcome == TRIG_FAILED ? TRIG_FAILED : TRIG_RETRY;
			fire_req_close(r);
			continue;
		}
		nng_msg *m = nng_aio_get_msg(r->aio);
		Gust__ActivationResult *res = gust_msg_result(m);
		nng_msg_free(m);
		fire_req_close(r);
		int o = res ? fire_classify(x, res, why, whylen) : TRIG_RETRY;
		if (res)
			gust__activation_result__free_unpacked(res, NULL);
		if (o == TRIG_OK) {
			r->done = true;
			gust_counter_add(t->m_activations, 1);
			json_object_set_new(r->log, "activationId",
			                    json_string(r->q->activation_id));
			json_object_set_new(r->log, "statusCode", json_integer(0));
			json_object_set_new(r->log, "success", json_true());
		} else if (o == TRIG_FAILED) {
			outcome = TRIG_FAILED;
		} else if (outcome == TRIG_OK) {
			outcome = TRIG_RETRY;
		}
	}
	if (outcome == TRIG_OK) {
		gust_counter_add(t->m_fires, 1);
		gust_histogram_observe_us(t->m_fire_latency, gust_now_us() - t0);
	} else if (outcome == TRIG_RETRY) {
		gust_counter_add(t->m_pushback, 1);
	} else {
		gust_counter_add(t->m_failed, 1);
	}
	return outcome;
}

static void fire_record(trig_fire *x)
{
	trig *t = x->f->t;
	if (t->records == NULL || x->n == 0)
		return;
	json_t *logs = json_array();
	for (size_t i = 0; i < x->n; i++) {
		char *line = json_dumps(x->reqs[i].log, JSON_COMPACT);
		json_array_append_new(logs, json_string(line ? line : "{}"));
		free(line);
	}
	/* The record's result is the fire's params; keep it small for batches. */
	const char *params = x->plen > 65536 ? "{\"truncated\":true}" : x->params;
	char *rec =
	    gust_fire_trigger_record(x->id, x->f->ns, x->f->name, x->f->ns, x->start, params, logs);
	json_decref(logs);
	if (rec == NULL)
		return;
	cleanup_free char *key = gust_record_key(x->id);
	cleanup_free char *idx = gust_record_index_key(x->f->ns);
	char ttl[32], score[32];
	snprintf(ttl, sizeof(ttl), "%lld", t->cfg.record_ttl_s);
	snprintf(score, sizeof(score), "%lld", (long long)x->start);
	const char *set[] = {"SET", key, rec, "EX", ttl};
	size_t setl[] = {3, strlen(key), strlen(rec), 2, strlen(ttl)};
	gust_redis_writer_cmd(t->records, 5, set, setl);
	const char *zadd[] = {"ZADD", idx, score, x->id};
	gust_redis_writer_cmd(t->records, 4, zadd, NULL);
	free(rec);
}

void trig_fire_free(trig_fire *x)
{
	if (x == NULL)
		return;
	bool all = true;
	for (size_t i = 0; i < x->n; i++)
		all = all && x->reqs[i].done;
	if (all)
		fire_record(x);
	for (size_t i = 0; i < x->n; i++) {
		fire_req_close(&x->reqs[i]);
		if (x->reqs[i].lent)
			x->reqs[i].q->params.data = NULL;
		gust_fire_request_free(x->reqs[i].q);
		json_decref(x->reqs[i].log);
	}
	free(x->reqs);
	free(x->params);
	free(x);
}
