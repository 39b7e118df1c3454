/* gw_sequence.c - sequences: each component runs with the result of the one
 * before as its parameters; the first failure ends the sequence. A sequence
 * runs on a detached thread of its own, with synchronous round trips to the
 * scheduler (one per component), so no HTTP or nng callback thread ever
 * blocks. The sequence's own activation record (its "logs" are the component
 * activation ids, each of which has "cause" = the sequence's id) is written
 * by the gateway.
 *
 * A blocking caller waits on a suspended connection; a timer answers it 202
 * when the wait runs out, and the sequence goes on. The lock orders the timer
 * against the end of the run: whichever comes first answers, once. */
#include <jansson.h>
#include <pthread.h>
#include <string.h>

#include "gateway.h"
#include "gust/log.h"
#include "gust/record.h"

#define SEQ_MAX_DEPTH 8
#define SEQ_MAX_ACTIONS 500

typedef struct seq_run {
	gw *g;
	pthread_mutex_t lock;
	gw_req *req; /* the waiting caller, NULL once answered */
	nng_aio *timer;
	bool want_result;
	char *user;
	gw_action *a;
	char *params; /* the first component's parameters: defaults + the caller's */
	char *cause;  /* the trigger fire that started it through a rule, or NULL */
	char id[33];
	int actions; /* components run so far, nested ones included */
} seq_run;

/* The outcome of running one (possibly nested) sequence. */
typedef struct seq_out {
	int status;   /* 0-3 */
	int error;    /* a gust errno when refused before running */
	char *result; /* JSON object text */
	json_t *logs; /* component activation ids */
	int64_t start, end;
} seq_out;

static char *error_result(const char *fmt, const char *arg)
{
	json_t *o = json_pack("{s:s+}", "error", fmt, arg ? arg : "");
	char *s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* Runs a's components with params (a JSON object's text). */
static void seq_components(seq_run *sr, gw_action *a, const char *cause, const char *params,
                           int depth, seq_out *out)
{
	gw *g = sr->g;
	char *cur = gust_xstrdup(params);
	size_t i;
	json_t *c;
	out->status = 0;
	json_array_foreach(a->components, i, c)
	{
		char cns[260], path[600];
		char *defaults = NULL;
		int err = 0;
		gw_action *ca = NULL;
		if (gw_split_fqn(json_string_value(c) ?: "", sr->user, cns, sizeof(cns), path,
		                 sizeof(path)) == 0)
			ca = gw_resolve_action(g, sr->user, cns, path, &defaults, &err);
		if (ca == NULL) {
			free(cur);
			cur = error_result("Sequence component does not exist: ",
			                   json_string_value(c));
			out->status = 2;
			break;
		}
		if (++sr->actions > SEQ_MAX_ACTIONS || (ca->components && depth >= SEQ_MAX_DEPTH)) {
			free(cur);
			cur = error_result("Too many actions in the sequence", NULL);
			out->status = 2;
		} else if (ca->components) {
			/* A nested sequence: its components count toward ours, and it
			 * takes its own defaults, as an action would. */
			cleanup_free char *merged = NULL;
			Gust__ActivationRequest *tmp =
			    gw_areq_new(g, sr->user, ca, defaults, cur, strlen(cur), cause);
			merged = gust_xstrndup((const char *)tmp->params.data, tmp->params.len);
			gw_areq_free(tmp);
			seq_out sub = {0};
			sub.logs = json_array();
			seq_components(sr, ca, cause, merged, depth + 1, &sub);
			json_array_extend(out->logs, sub.logs);
			json_decref(sub.logs);
			free(cur);
			cur = sub.result;
			out->status = sub.status;
			out->error = sub.error;
		} else {
			Gust__ActivationRequest *q =
			    gw_areq_new(g, sr->user, ca, defaults, cur, strlen(cur), cause);
			q->blocking = true;
			json_array_append_new(out->logs, json_string(q->activation_id));
			Gust__ActivationResult *res = NULL;
			int rv = gw_call(g, q, ca->timeout_ms + 60000, &res);
			free(cur);
			cur = NULL;
			if (rv != 0) {
				out->status = 3;
				out->error = rv;
				cur = error_result("The sequence component failed: ",
				                   gust_strerror(rv));
			} else {
				if (res->status == 3 && res->error != 0 && res->start_ms == 0)
					out->error = res->error;
				out->status = res->status;
				if (res->result.len)
					cur = gust_xstrndup((const char *)res->result.data,
					                    res->result.len);
				else if (res->error_msg && res->error_msg[0])
					cur = error_result("", res->error_msg);
				else
					cur = gust_xstrdup("{}");
			}
			if (res)
				gust__activation_result__free_unpacked(res, NULL);
			gw_areq_free(q);
		}
		gw_action_unref(ca);
		free(defaults);
		if (out->status != 0)
			break;
	}
	out->result = cur ? cur : gust_xstrdup("{}");
}

static char *seq_record(seq_run *sr, const seq_out *o)
{
	gw_action *a = sr->a;
	json_t *result = json_loads(o->result, 0, NULL);
	if (!json_is_object(result)) {
		json_decref(result);
		result = json_object();
	}
	json_t *rec = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:{s:s,s:i,s:b,s:o},s:O,s:[{s:s,s:b},{s:s,s:s++},"
	    "{s:s,s:s},{s:s,s:{s:I,s:I,s:I,s:i}}],s:b}",
	    "activationId", sr->id, "namespace", sr->user, "name",
	    a->pkg ? strchr(a->name, '/') + 1 : a->name, "version", a->version, "subject", sr->user,
	    "start", (json_int_t)o->start, "end", (json_int_t)o->end, "duration",
	    (json_int_t)(o->end - o->start), "response", "status", gust_status_name(o->status),
	    "statusCode", o->status, "success", o->status == 0, "result", result, "logs", o->logs,
	    "annotations", "key", "topmost", "value", true, "key", "path", "value", a->ns, "/",
	    a->name, "key", "kind", "value", "sequence", "key", "limits", "value", "timeout",
	    (json_int_t)a->timeout_ms, "memory", (json_int_t)a->memory_mb, "logs",
	    (json_int_t)(a->log_limit >> 20), "concurrency", 1, "publish", false);
	if (rec && sr->cause)
		json_object_set_new(rec, "cause", json_string(sr->cause));
	char *s = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	return s;
}

/* Answers the caller, if still waiting. Under sr->lock. */
static void seq_answer_locked(seq_run *sr, const seq_out *o, const char *record)
{
	gw_req *r = sr->req;
	if (r == NULL)
		return;
	sr->req = NULL;
	if (o == NULL) {
		char buf[96];
		snprintf(buf, sizeof(buf), "{\"activationId\":\"%s\"}", sr->id);
		gw_reply_json(r, 202, buf);
	} else if (o->error != 0 && o->status == 3) {
		gw_reply_refused(r, o->error, NULL);
	} else if (r->web) {
		gw_web_answer(r, o->status, o->result, strlen(o->result));
	} else if (sr->want_result) {
		gw_reply_json(r, o->status == 0 ? 200 : 502, o->result);
	} else {
		gw_reply_json(r, o->status == 0 ? 200 : 502, record ? record : "{}");
	}
	r->state = GW_REQ_READY;
	gw_resume(r);
}

static void seq_timer_cb(void *arg)
{
	seq_run *sr = arg;
	if (nng_aio_result(sr->timer) != 0)
		return; /* cancelled: the run answered first */
	pthread_mutex_lock(&sr->lock);
	seq_answer_locked(sr, NULL, NULL);
	pthread_mutex_unlock(&sr->lock);
}

/* A run of a with params merged over defaults (its id and first parameters
 * from a fresh request); cause: what started it, or NULL. */
static seq_run *seq_new(gw *g, const char *user, gw_action *a, const char *defaults,
                        const char *params, size_t len, const char *cause)
{
	seq_run *sr = gust_xcalloc(1, sizeof(*sr));
	sr->g = g;
	pthread_mutex_init(&sr->lock, NULL);
	sr->user = gust_xstrdup(user);
	__atomic_fetch_add(&a->refs, 1, __ATOMIC_SEQ_CST);
	sr->a = a;
	sr->cause = cause ? gust_xstrdup(cause) : NULL;
	Gust__ActivationRequest *tmp = gw_areq_new(g, user, a, defaults, params, len, cause);
	memcpy(sr->id, tmp->activation_id, 33);
	sr->params = gust_xstrndup((const char *)tmp->params.data, tmp->params.len);
	gw_areq_free(tmp);
	return sr;
}

static void seq_free(seq_run *sr)
{
	if (sr->timer) {
		nng_aio_stop(sr->timer);
		nng_aio_free(sr->timer);
	}
	pthread_mutex_destroy(&sr->lock);
	gw_action_unref(sr->a);
	free(sr->user);
	free(sr->params);
	free(sr->cause);
	free(sr);
}

static void *seq_thread(void *arg)
{
	seq_run *sr = arg;
	seq_out o = {0};
	o.logs = json_array();
	o.start = gust_wall_ms();
	seq_components(sr, sr->a, sr->id, sr->params, 0, &o);
	o.end = gust_wall_ms();
	char *record = seq_record(sr, &o);
	if (record)
		/* the caller's list, as its components' records (a shared
		 * package's sequence runs as its caller) */
		gw_record_store(sr->g, sr->user, sr->id, o.start, record, strlen(record));
	pthread_mutex_lock(&sr->lock);
	seq_answer_locked(sr, &o, record);
	pthread_mutex_unlock(&sr->lock);
	free(record);
	free(o.result);
	json_decref(o.logs);
	seq_free(sr);
	return NULL;
}

int gw_sequence_start(gw *g, const char *user, gw_action *a, const char *defaults,
                      const char *params, size_t len, const char *cause, char id[33])
{
	seq_run *sr = seq_new(g, user, a, defaults, params, len, cause);
	memcpy(id, sr->id, 33);
	if (gw_job_start(g, seq_thread, sr) == 0)
		return 0;
	gust_log_warn("GW-SEQ-BUSY", "too many sequences and fires in flight");
	seq_free(sr);
	return GUST_EBUSY;
}

void gw_sequence_invoke(gw_req *r, const char *user, gw_action *a, const char *defaults,
                        const char *params, size_t len)
{
	seq_run *sr = seq_new(r->g, user, a, defaults, params, len, NULL);
	sr->want_result = r->want_result;
	r->activation_id = gust_xstrdup(sr->id);
	bool blocking = r->blocking || r->web;
	if (blocking) {
		sr->req = r;
		r->state = GW_REQ_WAIT;
		gw_suspend(r);
		if (nng_aio_alloc(&sr->timer, seq_timer_cb, sr) == 0)
			nng_sleep_aio((nng_duration)r->wait_ms, sr->timer);
	}
	char buf[96];
	snprintf(buf, sizeof(buf), "{\"activationId\":\"%s\"}", sr->id);
	if (gw_job_start(r->g, seq_thread, sr) == 0) {
		/* Non-blocking: accepted only once its thread runs. */
		if (!blocking)
			gw_reply_json(r, 202, buf);
		return;
	}
	if (!blocking)
		gw_reply_error(
		    r, 429, "EBUSY",
		    "Too many sequences and trigger fires in flight at this gateway; try "
		    "again");
	gust_log_warn("GW-SEQ-BUSY", "too many sequences and fires in flight");
	seq_out o = {.status = 3, .error = GUST_EBUSY, .result = "{}"};
	pthread_mutex_lock(&sr->lock);
	if (sr->req)
		seq_answer_locked(sr, &o, NULL);
	pthread_mutex_unlock(&sr->lock);
	seq_free(sr);
}
