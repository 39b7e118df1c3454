/*
 * inv_status.c - InvokerStatus to the leading scheduler.
 *
 * The leader advertises where it takes status in /gust/schedulers/leader =
 * {"id","address","status_address"}; we mirror that prefix and keep one nng
 * push socket dialed to the current status_address (a new socket when it
 * changes). A thread of our own sends a packed Gust__InvokerStatus every
 * INV_STATUS_PERIOD_MS, and sooner (at most every INV_STATUS_MIN_GAP_MS) when
 * a sandbox has become idle: the scheduler prefers invokers that report idle
 * warm sandboxes and counts one as spoken for until the next status, so a
 * status that lags the release sends the next activation of the action
 * somewhere cold. Silence for the scheduler's status timeout takes this
 * invoker out of placement.
 *
 * Nothing here runs on a pool worker: workers only call inv_status_poke(),
 * which sets a flag under the status lock. Sends never block (NONBLOCK: with
 * no leader reachable the status is dropped, and the next one says the same).
 */
#include <jansson.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/push.h>
#include <string.h>
#include <time.h>

#include "gust/log.h"
#include "invoker.h"

#define INV_STATUS_PERIOD_MS 500
#define INV_STATUS_MIN_GAP_MS 10
#define LEADER_KEY "/gust/schedulers/leader"

/* Under the status lock: takes the leader's status address from its record. */
static void status_leader_put(inv *v, const char *value, size_t len)
{
	json_t *o = json_loadb(value, len, 0, NULL);
	const char *a = json_string_value(json_object_get(o, "status_address"));
	if (a != NULL && a[0] != '\0' && (v->st_want == NULL || strcmp(v->st_want, a) != 0)) {
		free(v->st_want);
		v->st_want = gust_xstrdup(a);
		pthread_cond_signal(&v->st_cv);
	}
	json_decref(o);
}

static void status_events(void *arg, const gust_watch_event *evs, size_t n, int64_t rev)
{
	inv *v = arg;
	pthread_mutex_lock(&v->st_lock);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(evs[i].kv.key, LEADER_KEY) != 0)
			continue;
		if (evs[i].type == GUST_WATCH_PUT) {
			status_leader_put(v, evs[i].kv.value, evs[i].kv.value_len);
		} else {
			/* No leader for now: keep the old address; a new leader
			 * is likely the same process or will put its own. */
		}
	}
	pthread_mutex_unlock(&v->st_lock);
}

static void status_reset(void *arg, const gust_kvs *snap)
{
	inv *v = arg;
	pthread_mutex_lock(&v->st_lock);
	for (size_t i = 0; i < snap->n; i++)
		if (strcmp(snap->kvs[i].key, LEADER_KEY) == 0)
			status_leader_put(v, snap->kvs[i].value, snap->kvs[i].value_len);
	pthread_mutex_unlock(&v->st_lock);
}

/* Dials addr on a fresh push socket; the old one (if any) is closed. */
static void status_redial(inv *v, const char *addr)
{
	if (v->st_open) {
		nng_close(v->st_sock);
		v->st_open = false;
	}
	free(v->st_addr);
	v->st_addr = gust_xstrdup(addr);
	int rv;
	if ((rv = nng_push0_open(&v->st_sock)) != 0) {
		gust_log_error("INV-STATUS-SOCK", "push socket: %s", nng_strerror(rv));
		return;
	}
	v->st_open = true;
	nng_socket_set_int(v->st_sock, NNG_OPT_SENDBUF, 4);
	nng_socket_set_ms(v->st_sock, NNG_OPT_RECONNMINT, 50);
	nng_socket_set_ms(v->st_sock, NNG_OPT_RECONNMAXT, 500);
	/* Non-blocking: a leader that is not up yet is redialed in the
	 * background. Only a scheduler's certificate is trusted at the other
	 * end: the status says how much this invoker can take. */
	gust_error *e = NULL;
	if (gust_transport_dial(v->transport, v->st_sock, addr, GUST_ROLE_SCHEDULER,
	                        NNG_FLAG_NONBLOCK, NULL, &e) != 0)
		gust_log_warn("INV-STATUS-DIAL", "cannot dial scheduler status at %s: %s", addr,
		              gust_error_msg(e));
	else
		gust_log_info("INV-STATUS-DIAL", "sending status to %s", addr);
	gust_error_free(e);
}

typedef struct status_warm {
	const char *key;
	int idle, busy;
} status_warm;

/* Packs the pool's state (under the pool lock, briefly) into a message. */
static nng_msg *status_build(inv *v)
{
	Gust__InvokerStatus st = GUST__INVOKER_STATUS__INIT;
	st.id = v->cfg.id;
	st.address = v->address;
	st.memory_mb = (int32_t)v->cfg.memory_mb;
	status_warm *w = NULL;
	size_t nw = 0, cap = 0;
	pthread_mutex_lock(&v->lock);
	st.free_memory_mb = (int32_t)(v->cfg.memory_mb - v->used_mb);
	st.load = v->inflight;
	for (inv_slot *s = v->slots; s; s = s->next) {
		if (!s->ready)
			continue; /* still starting: not warm yet */
		size_t i = 0;
		while (i < nw && strcmp(w[i].key, s->key) != 0)
			i++;
		if (i == nw) {
			if (nw == cap) {
				cap = cap ? cap * 2 : 16;
				w = gust_xrealloc(w, cap * sizeof(*w));
			}
			w[nw++] = (status_warm){.key = s->key};
		}
		/* A concurrent sandbox with room counts as idle: it takes more. */
		if (s->inflight < s->conc)
			w[i].idle++;
		else
			w[i].busy++;
	}
	Gust__InvokerStatus__Warm *items = gust_xcalloc(nw ? nw : 1, sizeof(*items));
	Gust__InvokerStatus__Warm **ptrs = gust_xcalloc(nw ? nw : 1, sizeof(*ptrs));
	for (size_t i = 0; i < nw; i++) {
		gust__invoker_status__warm__init(&items[i]);
		items[i].action = gust_xstrdup(w[i].key);
		items[i].idle = w[i].idle;
		items[i].busy = w[i].busy;
		ptrs[i] = &items[i];
	}
	pthread_mutex_unlock(&v->lock);
	st.warm = ptrs;
	st.n_warm = nw;
	st.sent_ms = gust_wall_ms();
	nng_msg *m = NULL;
	if (gust_msg_pack(&st.base, &m) != 0)
		m = NULL;
	for (size_t i = 0; i < nw; i++)
		free(items[i].action);
	free(items);
	free(ptrs);
	free(w);
	return m;
}

static void status_deadline(struct timespec *ts, uint64_t ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += (time_t)(ms / 1000);
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *status_main(void *arg)
{
	inv *v = arg;
	uint64_t last = 0;
	pthread_mutex_lock(&v->st_lock);
	while (!v->st_stopping) {
		uint64_t now = gust_now_ms();
		uint64_t due = last + (v->st_poked ? INV_STATUS_MIN_GAP_MS : INV_STATUS_PERIOD_MS);
		if (last != 0 && now < due) {
			struct timespec ts;
			status_deadline(&ts, due - now);
			pthread_cond_timedwait(&v->st_cv, &v->st_lock, &ts);
			continue;
		}
		v->st_poked = false;
		last = now;
		cleanup_free char *want = v->st_want ? gust_xstrdup(v->st_want) : NULL;
		pthread_mutex_unlock(&v->st_lock);
		if (want != NULL && (v->st_addr == NULL || strcmp(want, v->st_addr) != 0))
			status_redial(v, want);
		if (v->st_open && v->address != NULL) {
			nng_msg *m = status_build(v);
			if (m != NULL && nng_sendmsg(v->st_sock, m, NNG_FLAG_NONBLOCK) != 0)
				nng_msg_free(m); /* nobody to take it now: the next one will do */
			else if (m != NULL)
				gust_counter_add(v->m_status, 1);
		}
		pthread_mutex_lock(&v->st_lock);
	}
	pthread_mutex_unlock(&v->st_lock);
	return NULL;
}

void inv_status_poke(inv *v)
{
	if (!v->st_running)
		return;
	pthread_mutex_lock(&v->st_lock);
	if (!v->st_poked) {
		v->st_poked = true;
		pthread_cond_signal(&v->st_cv);
	}
	pthread_mutex_unlock(&v->st_lock);
}

int inv_status_start(inv *v, gust_error **err)
{
	static const gust_watch_ops ops = {status_events, status_reset};
	pthread_condattr_t ca;
	pthread_mutex_init(&v->st_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&v->st_cv, &ca);
	pthread_condattr_destroy(&ca);
	v->m_status =
	    gust_counter_new("gust_invoker_status_sent_total",
	                     "InvokerStatus messages sent to the leading scheduler", NULL);
	int rv = gust_etcd_mirror_start(v->etcd, "/gust/schedulers/", &ops, v, &v->st_watch, err);
	if (rv != 0)
		return gust_error_wrap(err, "watching /gust/schedulers/");
	if (pthread_create(&v->st_thread, NULL, status_main, v) != 0)
		return gust_error_set(err, GUST_EIO, "cannot start the status thread");
	v->st_running = true;
	return 0;
}

void inv_status_stop(inv *v)
{
	if (v->st_watch != NULL)
		gust_etcd_watch_stop(v->st_watch);
	v->st_watch = NULL;
	if (v->st_running) {
		pthread_mutex_lock(&v->st_lock);
		v->st_stopping = true;
		pthread_cond_signal(&v->st_cv);
		pthread_mutex_unlock(&v->st_lock);
		pthread_join(v->st_thread, NULL);
		v->st_running = false;
	}
	if (v->st_open)
		nng_close(v->st_sock);
	v->st_open = false;
	free(v->st_addr);
	free(v->st_want);
	v->st_addr = v->st_want = NULL;
}
