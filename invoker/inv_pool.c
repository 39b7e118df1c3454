/* inv_pool.c - worker threads, the sandbox pool and the code cache.
 *
 * Capacity is user memory, as in OpenWhisk: a sandbox holds its action's
 * memory limit while it exists, busy or idle. A request takes an idle warm
 * sandbox of its action version if there is one; else a new one if memory
 * allows; else it evicts the least recently used idle sandbox; else it waits
 * for one to come free. A sandbox is of one warm key (gust_warm_key): one
 * invoking namespace and one write of the action's code, so a shared
 * package's sandbox never serves two callers, and a re-created action never
 * finds the old one's.
 *
 * Wake-ups are targeted, because on 2 vCPUs every needless one costs a context
 * switch and a turn on the lock: a submitted job wakes one idle worker
 * (work_cv); a worker whose head-of-queue job finds no room waits alone on
 * room_cv, which a release signals only when someone waits there; the reaper
 * sleeps on its own timed wait. A worker that takes a job and sees more queued
 * wakes the next one, so no signal is lost while the head waits for room. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "gust/json.h"
#include "gust/log.h"
#include "gust/record.h"
#include "gust/state.h"
#include "invoker.h"

typedef struct inv_code {
	char *data;
	size_t len;
} inv_code;

#define CODE_CACHE_MAX (256u << 20)

static int code_drop(void *arg, const char *key, void *value)
{
	inv_code *c = value;
	free(c->data);
	free(c);
	return 1;
}

/* Fetches the code for key (from the cache, else etcd). Heap copy. */
static int pool_code(inv *v, const char *key, char **out, size_t *len, gust_error **err)
{
	pthread_mutex_lock(&v->code_lock);
	inv_code *c = gust_map_get(&v->code, key);
	if (c) {
		*out = gust_xstrndup(c->data, c->len);
		*len = c->len;
		pthread_mutex_unlock(&v->code_lock);
		return 0;
	}
	pthread_mutex_unlock(&v->code_lock);
	gust_kv kv = {0};
	int rv = gust_etcd_get(v->etcd, key, &kv, err);
	if (rv != 0)
		return gust_error_wrap(err, "fetching code %s", key);
	pthread_mutex_lock(&v->code_lock);
	/* A code key is written once (the gateway makes a new one for every
	 * write of code, and never reuses one after a delete), so the cache never
	 * goes stale; it is only bounded in size. */
	if (v->code_bytes + kv.value_len > CODE_CACHE_MAX) {
		gust_map_filter(&v->code, code_drop, NULL);
		v->code_bytes = 0;
	}
	if (gust_map_get(&v->code, key) == NULL) {
		c = gust_xcalloc(1, sizeof(*c));
		c->data = gust_xstrndup(kv.value, kv.value_len);
		c->len = kv.value_len;
		gust_map_put(&v->code, key, c);
		v->code_bytes += c->len;
	}
	pthread_mutex_unlock(&v->code_lock);
	*out = gust_xstrndup(kv.value, kv.value_len);
	*len = kv.value_len;
	gust_kv_clear(&kv);
	return 0;
}

void inv_pool_submit(inv *v, inv_job *job)
{
	pthread_mutex_lock(&v->lock);
	job->next = NULL;
	*v->qtail = job;
	v->qtail = &job->next;
	gust_gauge_add(v->m_queue, 1);
	/* Behind a head that waits for room, a new job cannot run either. */
	if (v->idle_workers > 0 && !v->head_waits)
		pthread_cond_signal(&v->work_cv);
	pthread_mutex_unlock(&v->lock);
}

static void slot_free(inv *v, inv_slot *s)
{
	inv_freeze_forget(v, s);
	inv_state_detach(v, s->state_ep);
	inv_sandbox_destroy(s->sb);
	inv_net_release(s->net, s->net_ip);
	free(s->key);
	free(s->kind);
	free(s);
}

/* Under the lock: unlinks s from the pool and gives its memory back. */
static void pool_unlink(inv *v, inv_slot *s)
{
	for (inv_slot **pp = &v->slots; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	v->used_mb -= s->memory_mb;
	gust_gauge_add(v->m_sandboxes, -1);
}

/*
 * Under the lock. Returns a busy warm slot for key (*cold = false), or a new
 * slot with its memory reserved and no sandbox yet (*cold = true), or NULL when
 * the request must wait. *evict gets an idle slot to destroy outside the lock.
 */
static inv_slot *pool_acquire(inv *v, const char *key, const char *kind, int mem, int conc,
                              bool *cold, inv_slot **evict)
{
	inv_slot *lru = NULL;
	for (inv_slot *s = v->slots; s; s = s->next) {
		if (s->ready && s->inflight < s->conc && strcmp(s->key, key) == 0) {
			s->inflight++;
			*cold = false;
			return s;
		}
		if (s->inflight > 0)
			continue;
		if (lru == NULL || s->last_used_ms < lru->last_used_ms)
			lru = s;
	}
	if (v->used_mb + mem > v->cfg.memory_mb) {
		if (lru == NULL)
			return NULL;
		pool_unlink(v, lru);
		*evict = lru;
		if (v->used_mb + mem > v->cfg.memory_mb)
			return NULL; /* freed some; the next pass may free more */
	}
	inv_slot *s = gust_xcalloc(1, sizeof(*s));
	s->key = gust_xstrdup(key);
	s->kind = gust_xstrdup(kind);
	s->memory_mb = mem;
	s->conc = conc;
	s->inflight = 1;
	inv_freeze_slot_init(s);
	s->next = v->slots;
	v->slots = s;
	v->used_mb += mem;
	gust_gauge_add(v->m_sandboxes, 1);
	*cold = true;
	return s;
}

/* Builds the action-loop run line: {"value":<params>,"env":{...}}. */
static void run_line(inv *v, const Gust__ActivationRequest *q, int64_t deadline, gust_buf *b)
{
	gust_buf_puts(b, "{\"value\":");
	size_t at = b->len;
	if (q->params.len)
		gust_buf_append(b, q->params.data, q->params.len);
	else
		gust_buf_puts(b, "{}");
	/* Raw newlines can only be whitespace in valid JSON: keep it one line.
	 * memchr, not a byte loop: a trigger's fire is ~1 MiB, and the loop was
	 * ~3% of all CPU in a Kafka drain (perf). */
	for (char *p = b->data + at, *end = b->data + b->len;
	     (p = memchr(p, '\n', (size_t)(end - p))) != NULL; p++)
		*p = ' ';
	for (char *p = b->data + at, *end = b->data + b->len;
	     (p = memchr(p, '\r', (size_t)(end - p))) != NULL; p++)
		*p = ' ';
	gust_buf_puts(b, ",\"env\":{\"__OW_ACTIVATION_ID\":");
	gust_buf_json_str(b, q->activation_id, strlen(q->activation_id));
	gust_buf_printf(b, ",\"__OW_DEADLINE\":\"%lld\",\"__OW_NAMESPACE\":", (long long)deadline);
	/* the caller's, as OpenWhisk's; the action's name keeps its owner */
	const char *ns = gust_activation_ns(q);
	gust_buf_json_str(b, ns, strlen(ns));
	cleanup_free char *full = gust_xasprintf("/%s/%s", q->namespace_, q->action);
	gust_buf_puts(b, ",\"__OW_ACTION_NAME\":");
	gust_buf_json_str(b, full, strlen(full));
	gust_buf_puts(b, ",\"__OW_ACTION_VERSION\":");
	gust_buf_json_str(b, q->version, strlen(q->version));
	gust_buf_puts(b, ",\"__OW_API_HOST\":");
	gust_buf_json_str(b, q->api_host, strlen(q->api_host));
	gust_buf_puts(b, "}}");
}

/* The gateway and gust-trigger check params before sending them; this is the
 * invoker's own guard, so a check that builds nothing (a trigger's batch can
 * be 1 MiB, which jansson takes ~10 ms to load). */
static bool params_valid(const Gust__ActivationRequest *q)
{
	return q->params.len == 0 ||
	       gust_json_check((const char *)q->params.data, q->params.len) == GUST_JSON_OBJECT;
}

static void set_result(Gust__ActivationResult *res, int status, const char *json)
{
	res->status = status;
	res->result.data = (uint8_t *)gust_xstrdup(json);
	res->result.len = strlen(json);
}

/* One activation from the worker that starts it to its answer; for a
 * concurrent sandbox the answer comes on the sandbox's reader thread. */
typedef struct pool_act {
	inv *v;
	inv_job *job;
	inv_slot *slot;
	Gust__ActivationResult res;
	uint64_t t0;
	int64_t start;
} pool_act;

/* Under the lock, or alone: frees what can be freed now; a slot of a
 * concurrent sandbox goes to the reaper, since the reader thread that may be
 * calling us must not join itself. */
static void slot_bury(inv *v, inv_slot *dead)
{
	if (dead->conc > 1) {
		pthread_mutex_lock(&v->lock);
		dead->next = v->graveyard;
		v->graveyard = dead;
		pthread_cond_signal(&v->reaper_cv);
		pthread_mutex_unlock(&v->lock);
	} else {
		slot_free(v, dead);
	}
}

/* The activation is over: release its slot, record it, answer. Takes rr. */
static void pool_complete(pool_act *a, inv_run_result *rr)
{
	inv *v = a->v;
	inv_slot *slot = a->slot;
	Gust__ActivationRequest *q = a->job->req;
	Gust__ActivationResult *res = &a->res;
	if (rr != NULL && res->result.data == NULL) {
		int st = rr->status == INV_RUN_SUCCESS     ? 0
		         : rr->status == INV_RUN_APP_ERROR ? 1
		                                           : 2;
		if (rr->status == INV_RUN_TIMEOUT)
			res->error = GUST_ETIMEDOUT;
		set_result(res, st, rr->result ? rr->result : "{}");
	}
	res->start_ms = a->start;
	res->end_ms = gust_wall_ms();
	if (rr != NULL) {
		res->logs = rr->logs;
		res->n_logs = rr->nlogs;
	}
	gust_histogram_observe_us(v->m_duration, gust_now_us() - a->t0);
	if (res->status >= 0 && res->status <= 3)
		gust_counter_add(v->m_act[res->status], 1);

	/* Give the sandbox back (or drop it if it died) before answering, so
	 * that the next request of this action finds it warm. */
	pthread_mutex_lock(&v->lock);
	inv_slot *dead = NULL;
	v->inflight--;
	slot->inflight--;
	if (!slot->gone && (slot->sb == NULL || !inv_sandbox_alive(slot->sb))) {
		pool_unlink(v, slot);
		slot->gone = true;
	}
	if (slot->gone) {
		if (slot->inflight == 0)
			dead = slot;
	} else {
		slot->ready = true;
		slot->last_used_ms = gust_now_ms();
		if (slot->inflight == 0)
			inv_freeze_idle(v, slot);
	}
	if (v->head_waits)
		pthread_cond_signal(&v->room_cv);
	pthread_mutex_unlock(&v->lock);
	if (dead)
		slot_bury(v, dead);
	else if (!slot->gone)
		inv_status_poke(v); /* an idle warm sandbox: tell the scheduler now */

	nng_msg *m = NULL;
	if (gust_msg_pack(&res->base, &m) != 0)
		m = NULL;
	if (q->binding != NULL && q->binding[0] != '\0' && v->binder != NULL) {
		/* It answers once the publish is queued durably, and records. */
		inv_binding_complete(v, a->job, res, m);
	} else {
		inv_record_write(v, q, res);
		inv_server_reply(a->job, m);
	}
	free(res->result.data);
	inv_run_result_clear(rr);
	free(a);
}

static void pool_mux_done(void *arg, void *cookie, inv_run_result *rr)
{
	pool_complete(cookie, rr);
}

/* Starts a sandbox for the slot (a stem cell if there is one) and sends init.
 * On failure sets the activation's result. */
static bool pool_cold(inv *v, pool_act *a, inv_run_result *rr)
{
	Gust__ActivationRequest *q = a->job->req;
	inv_slot *slot = a->slot;
	gust_error *err = NULL;
	inv_sandbox_cfg sc = {.kind = q->kind,
	                      .runtime_dir = v->cfg.runtime_dir,
	                      .state_dir = v->cfg.state_dir,
	                      .memory_mb = slot->memory_mb,
	                      .pids_max = (int)v->cfg.pids_max,
	                      .cgroups = v->cgroups,
	                      .userns_base = v->userns_base,
	                      .userns_slots = v->userns_slots,
	                      .log_limit = q->log_limit > 0 ? (size_t)q->log_limit : 10u << 20,
	                      .native_launcher = v->cfg.native_launcher,
	                      .netns = v->netns};
	cleanup_free char *code = NULL;
	size_t code_len = 0;
	int rv = pool_code(v, q->code_key, &code, &code_len, &err);
	/* A stem cell if there is one: its namespaces, root and runtime are
	 * ready; it only needs the action's limits and code. */
	if (rv == 0 && (slot->sb = inv_stem_take(v, q->kind)) != NULL) {
		gust_counter_add(v->m_stem, 1);
		rv = inv_sandbox_adopt(slot->sb, sc.memory_mb, sc.pids_max, sc.log_limit, &err);
	} else if (rv == 0) {
		/* init follows at once: written behind the launcher's exec */
		sc.defer_ready = true;
		rv = inv_sandbox_create(&sc, &slot->sb, &err);
	}
	if (rv == 0 && q->egress) {
		if ((rv = inv_net_attach(v->net, q->namespace_, inv_sandbox_pid(slot->sb),
		                         &slot->net_ip, &err)) == 0)
			slot->net = v->net;
	}
	/* The state cache: a socket in the sandbox, for the namespace the
	 * activation runs as only: the caller's, for a shared package's action
	 * (the slot serves that caller alone: its key holds it). */
	gust_buf env = {0};
	gust_buf_puts(&env, "{}");
	if (rv == 0 && v->state != NULL) {
		const char *ns = gust_activation_ns(q);
		rv = inv_state_attach(v, inv_sandbox_run_dir(slot->sb), ns, &slot->state_ep, &err);
		cleanup_free char *prefix = gust_state_prefix(ns);
		gust_buf_reset(&env);
		gust_buf_puts(&env, "{\"GUST_STATE_SOCKET\":\"/run/gust/state.sock\","
		                    "\"GUST_STATE_PREFIX\":");
		gust_buf_json_str(&env, prefix, strlen(prefix));
		gust_buf_puts(&env, "}");
	}
	if (rv == 0) {
		inv_sandbox_set_concurrency(slot->sb, slot->conc);
		rv = inv_sandbox_init(slot->sb, code, code_len, q->main[0] ? q->main : "main",
		                      q->binary, env.data,
		                      q->timeout_ms > 0 ? q->timeout_ms : 60000, rr, &err);
	}
	gust_buf_free(&env);
	if (rv == 0 && slot->conc > 1)
		rv = inv_sandbox_mux_start(slot->sb, pool_mux_done, v, &err);
	gust_counter_add(v->m_cold, 1);
	if (rv != 0) {
		gust_buf b = {0};
		gust_buf_puts(&b, "{\"error\":");
		const char *m = gust_error_msg(err);
		/* A missing code key or a platform fault is ours (whisk error);
		 * what the action's code did at init is the developer's. */
		int st = (rv == GUST_EBADGATEWAY || rv == GUST_EINVAL) ? 2 : 3;
		gust_buf_json_str(&b, m, strlen(m));
		gust_buf_puts(&b, "}");
		set_result(&a->res, st, b.data);
		gust_buf_free(&b);
		gust_log_warn("INV-INIT-FAIL", "activation %s (%s/%s): %s", q->activation_id,
		              q->namespace_, q->action, m);
		/* A runtime whose init failed holds no action: never reuse it. */
		inv_state_detach(v, slot->state_ep);
		slot->state_ep = NULL;
		if (slot->sb != NULL) {
			inv_sandbox_destroy(slot->sb);
			slot->sb = NULL;
		}
	}
	gust_error_free(err);
	a->res.init_ms = (int64_t)((gust_now_us() - a->t0) / 1000);
	if (a->res.init_ms == 0)
		a->res.init_ms = 1;
	return rv == 0;
}

/* Runs one job from this worker thread: (init,) run or hand the run to the
 * sandbox's reader thread, then pool_complete. */
static void pool_run(inv *v, inv_job *job, inv_slot *slot, bool cold)
{
	Gust__ActivationRequest *q = job->req;
	pool_act *a = gust_xcalloc(1, sizeof(*a));
	a->v = v;
	a->job = job;
	a->slot = slot;
	gust__activation_result__init(&a->res);
	a->res.activation_id = q->activation_id;
	a->res.invoker = v->cfg.id;
	a->res.memory_mb = q->memory_mb;
	a->res.timeout_ms = q->timeout_ms;
	a->res.kind = q->kind;
	a->t0 = gust_now_us();
	a->start = gust_wall_ms();
	a->res.wait_ms = a->start - (q->accepted_ms ? q->accepted_ms : (int64_t)job->recv_ms);
	if (a->res.wait_ms < 0)
		a->res.wait_ms = 0;
	inv_run_result rr = {0};
	bool ok = true;

	/* Egress is the operator's to grant (gust/egress.h): checked on every
	 * run, warm ones too, so a grant taken back stops the action at once
	 * (its sandboxes lost the network then too: inv_net.c). Refused, not
	 * run without egress: an action that expects the network would fail in
	 * ways harder to read. The owner's grant: the one the gateway checked. */
	if (q->egress && !inv_egress_granted(v, q->namespace_)) {
		ok = false;
		gust_buf b = {0};
		cleanup_free char *m = gust_xasprintf(
		    "egress is not granted to namespace '%s' (annotation 'egress'); the operator "
		    "grants it with: gust admin grant egress NS on",
		    q->namespace_);
		gust_buf_puts(&b, "{\"error\":");
		gust_buf_json_str(&b, m, strlen(m));
		gust_buf_puts(&b, "}");
		set_result(&a->res, 2, b.data);
		gust_buf_free(&b);
		gust_log_warn("INV-EGRESS-DENIED", "activation %s (%s/%s): %s", q->activation_id,
		              q->namespace_, q->action, m);
	} else if (cold) {
		ok = pool_cold(v, a, &rr);
	} else {
		gust_counter_add(v->m_warm, 1);
		inv_freeze_thaw(v, slot); /* frozen while it was idle */
	}
	if (ok && !params_valid(q)) {
		ok = false;
		set_result(&a->res, 3,
		           "{\"error\":\"The activation's parameters are not a JSON object.\"}");
	}
	if (!ok) {
		pool_complete(a, &rr);
		return;
	}
	int64_t deadline = gust_wall_ms() + (q->timeout_ms > 0 ? q->timeout_ms : 60000);
	if (q->deadline_ms > 0 && q->deadline_ms < deadline)
		deadline = q->deadline_ms;
	gust_buf line = {0};
	run_line(v, q, deadline, &line);
	inv_run_result_clear(&rr);
	if (slot->conc > 1) {
		if (cold) {
			/* Initialized: others may join it while this one runs. */
			pthread_mutex_lock(&v->lock);
			slot->ready = true;
			if (v->head_waits)
				pthread_cond_signal(&v->room_cv);
			pthread_mutex_unlock(&v->lock);
		}
		/* The reader thread answers; this worker is free for the next job. */
		inv_sandbox_mux_run(slot->sb, q->activation_id, line.data, line.len, deadline, a);
		gust_buf_free(&line);
		return;
	}
	inv_sandbox_run(slot->sb, line.data, line.len, deadline, &rr);
	gust_buf_free(&line);
	pool_complete(a, &rr);
}

static void *pool_worker(void *arg)
{
	inv *v = arg;
	pthread_mutex_lock(&v->lock);
	while (!v->stopping) {
		inv_job *job = v->qhead;
		if (job == NULL || v->head_waits) {
			v->idle_workers++;
			pthread_cond_wait(&v->work_cv, &v->lock);
			v->idle_workers--;
			continue;
		}
		Gust__ActivationRequest *q = job->req;
		/* Never cut: the whole key is what keeps callers and codes apart. */
		gust_request_head h = {
		    .namespace_ = {q->namespace_, strlen(q->namespace_)},
		    .user = {q->user, strlen(q->user)},
		    .code_key = {q->code_key, strlen(q->code_key)},
		    .version = {q->version, strlen(q->version)},
		};
		size_t klen = gust_warm_key(NULL, 0, &h);
		cleanup_free char *key = gust_xmalloc(klen + 1);
		gust_warm_key(key, klen + 1, &h);
		int mem = q->memory_mb > 0 ? q->memory_mb : 256;
		if (mem > v->cfg.memory_mb)
			mem = (int)v->cfg.memory_mb;
		/* Only the Node.js runtime runs activations concurrently (as in
		 * OpenWhisk); one sandbox's memory serves up to conc of them. */
		int conc = q->concurrency > 1 && strncmp(q->kind, "nodejs", 6) == 0
		               ? (q->concurrency > 500 ? 500 : q->concurrency)
		               : 1;
		bool cold = false;
		inv_slot *evict = NULL;
		inv_slot *slot = pool_acquire(v, key, q->kind, mem, conc, &cold, &evict);
		if (slot == NULL && evict == NULL) {
			/* Every sandbox is busy and memory is full: this worker alone
			 * waits for a release; the others stay asleep. */
			v->head_waits = true;
			pthread_cond_wait(&v->room_cv, &v->lock);
			v->head_waits = false;
			continue;
		}
		if (slot != NULL) {
			v->qhead = job->next;
			v->inflight++;
			if (v->qhead == NULL)
				v->qtail = &v->qhead;
			gust_gauge_add(v->m_queue, -1);
			if (v->qhead != NULL && v->idle_workers > 0)
				pthread_cond_signal(&v->work_cv);
		}
		pthread_mutex_unlock(&v->lock);
		if (evict)
			slot_free(v, evict);
		if (slot)
			pool_run(v, job, slot, cold);
		pthread_mutex_lock(&v->lock);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* Evicts sandboxes idle for longer than idle_timeout_s, once a second. */
static void *pool_reaper(void *arg)
{
	inv *v = arg;
	pthread_mutex_lock(&v->lock);
	while (!v->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&v->reaper_cv, &v->lock, &ts);
		uint64_t now = gust_now_ms();
		uint64_t idle = (uint64_t)v->cfg.idle_timeout_s * 1000;
		inv_slot *victims = v->graveyard; /* dead, already unlinked */
		v->graveyard = NULL;
		for (inv_slot *s = v->slots, *next; s; s = next) {
			next = s->next;
			if (s->inflight == 0 && now - s->last_used_ms > idle) {
				pool_unlink(v, s);
				s->next = victims;
				victims = s;
			}
		}
		if (victims) {
			if (v->head_waits)
				pthread_cond_signal(&v->room_cv);
			pthread_mutex_unlock(&v->lock);
			while (victims) {
				inv_slot *n = victims->next;
				gust_log_debug("INV-EVICT-IDLE", "evicting idle sandbox of %s",
				               victims->key);
				slot_free(v, victims);
				victims = n;
			}
			pthread_mutex_lock(&v->lock);
		}
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

int inv_pool_start(inv *v, gust_error **err)
{
	pthread_mutex_init(&v->lock, NULL);
	pthread_cond_init(&v->work_cv, NULL);
	pthread_cond_init(&v->room_cv, NULL);
	pthread_cond_init(&v->reaper_cv, NULL);
	pthread_mutex_init(&v->code_lock, NULL);
	v->qtail = &v->qhead;
	/* A worker waits on one sandbox at a time, and no more sandboxes than
	 * user memory / 128 MB (the smallest memory limit) can exist at once. */
	v->nthreads = v->cfg.workers > 0 ? (size_t)v->cfg.workers
	                                 : (size_t)(v->cfg.memory_mb / INV_MIN_MEMORY_MB);
	if (v->nthreads == 0)
		v->nthreads = 1;
	v->threads = gust_xcalloc(v->nthreads, sizeof(pthread_t));
	for (size_t i = 0; i < v->nthreads; i++)
		if (pthread_create(&v->threads[i], NULL, pool_worker, v) != 0) {
			v->nthreads = i;
			return gust_error_set(err, GUST_EIO, "cannot start worker thread %zu", i);
		}
	if (pthread_create(&v->reaper, NULL, pool_reaper, v) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the reaper thread");
	return 0;
}

void inv_pool_stop(inv *v)
{
	if (v->threads == NULL)
		return;
	pthread_mutex_lock(&v->lock);
	v->stopping = true;
	pthread_cond_broadcast(&v->work_cv);
	pthread_cond_broadcast(&v->room_cv);
	pthread_cond_broadcast(&v->reaper_cv);
	pthread_mutex_unlock(&v->lock);
	for (size_t i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
	pthread_join(v->reaper, NULL);
	free(v->threads);
	v->threads = NULL;
	while (v->slots) {
		inv_slot *s = v->slots;
		v->slots = s->next;
		slot_free(v, s);
	}
	while (v->graveyard) {
		inv_slot *s = v->graveyard;
		v->graveyard = s->next;
		slot_free(v, s);
	}
	gust_map_filter(&v->code, code_drop, NULL);
	gust_map_free(&v->code);
}
