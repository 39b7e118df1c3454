/*
 * etcd_watch.c - watches and mirrors over the gateway's streaming /v3/watch.
 *
 * One thread per watch drives one curl easy handle through a private multi
 * handle, so that gust_etcd_watch_stop can wake it out of curl_multi_poll at
 * once (curl_multi_wakeup) instead of waiting for a progress callback.
 *
 * The stream is newline-delimited JSON: {"result":{"created":true}} first, then
 * {"result":{"events":[...]}} (PUT events carry no "type"). A start revision that
 * was compacted answers {"result":{"canceled":true,"compact_revision":"N"}} and
 * leaves the stream open, so we hang up ourselves, re-list and go on.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "etcd_internal.h"
#include "gust/log.h"
#include "gust/util.h"

#define ETCD_WATCH_BACKOFF_MIN_MS 100
#define ETCD_WATCH_BACKOFF_MAX_MS 2000
/* A line longer than this is not an answer we understand: hang up. */
#define ETCD_WATCH_MAX_LINE (256u << 20)

enum etcd_watch_end {
	ETCD_WATCH_STOPPED,   /* gust_etcd_watch_stop asked */
	ETCD_WATCH_BROKEN,    /* connection lost or refused, or an error answer */
	ETCD_WATCH_COMPACTED, /* next_rev is gone: re-list */
};

struct gust_etcd_watch {
	gust_etcd *e;
	char *prefix;
	char *key64;
	char *end64;
	gust_watch_ops ops;
	void *arg;
	_Atomic int64_t next_rev;
	atomic_bool stop;

	pthread_mutex_t mu; /* with cv: interruptible back-off sleeps */
	pthread_cond_t cv;
	bool sync_init;
	CURLM *multi;
	pthread_t thread;
	bool started;

	/* Session state, touched by the watch thread only. */
	size_t ep;          /* endpoint index of the next attempt */
	size_t tried;       /* endpoint index of the last attempt */
	gust_buf in;        /* bytes of the stream not yet parsed */
	bool created;       /* this session's watch was confirmed */
	bool hangup;        /* the parser wants the session to end */
	bool compacted;     /* ... because next_rev was compacted */
	char reason[256];   /* why the last session ended */
	bool token_refused; /* etcd refused this session's auth token */
	char *refused;      /* that token: the next session renews it */
};

static void etcd_watch_set_reason(gust_etcd_watch *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void etcd_watch_set_reason(gust_etcd_watch *w, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(w->reason, sizeof(w->reason), fmt, ap);
	va_end(ap);
}

/* Delivers the events of one answer that the caller has not seen yet. */
static void etcd_watch_deliver(gust_etcd_watch *w, json_t *events)
{
	size_t n = json_array_size(events);
	if (n == 0)
		return;
	gust_watch_event *evs = gust_xcalloc(n, sizeof(*evs));
	size_t k = 0;
	int64_t next = atomic_load(&w->next_rev);
	int64_t last = 0;
	size_t i;
	json_t *j;
	json_array_foreach(events, i, j)
	{
		gust_watch_event *ev = &evs[k];
		if (etcd_kv_from_json(json_object_get(j, "kv"), &ev->kv) != 0) {
			gust_log_warn("ETCD-WATCH-BADEVENT", "watch %s: malformed event skipped",
			              w->prefix);
			continue;
		}
		/* INT64_MAX is what strtoll makes of a larger number: a broken or
		 * hostile peer. Such an event would wrap the resume revision. */
		if (ev->kv.mod_revision >= INT64_MAX) {
			gust_log_warn("ETCD-WATCH-BADEVENT", "watch %s: revision out of range",
			              w->prefix);
			gust_kv_clear(&ev->kv);
			continue;
		}
		/* A resumed stream starts at next_rev; older ones are already delivered. */
		if (ev->kv.mod_revision < next) {
			gust_kv_clear(&ev->kv);
			continue;
		}
		json_t *t = json_object_get(j, "type");
		ev->type = json_is_string(t) && strcmp(json_string_value(t), "DELETE") == 0
		               ? GUST_WATCH_DELETE
		               : GUST_WATCH_PUT;
		if (ev->kv.mod_revision > last)
			last = ev->kv.mod_revision;
		k++;
	}
	if (k > 0) {
		if (w->ops.on_events != NULL)
			w->ops.on_events(w->arg, evs, k, last);
		atomic_store(&w->next_rev, last + 1);
	}
	for (i = 0; i < k; i++)
		gust_kv_clear(&evs[i].kv);
	free(evs);
}

/* Handles one JSON line of the stream. */
static void etcd_watch_line(gust_etcd_watch *w, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *j = json_loadb(line, len, 0, &jerr);
	if (j == NULL) {
		etcd_watch_set_reason(w, "unparsable answer: %s", jerr.text);
		w->hangup = true;
		return;
	}
	json_t *res = json_object_get(j, "result");
	if (res == NULL) {
		json_t *e = json_object_get(j, "error");
		json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
		etcd_watch_set_reason(w, "error answer: %s",
		                      json_is_string(m) ? json_string_value(m) : "unknown");
		if (json_is_string(m) && etcd_token_refused(json_string_value(m)))
			w->token_refused = true;
		w->hangup = true;
		json_decref(j);
		return;
	}
	if (json_is_true(json_object_get(res, "created"))) {
		w->created = true;
		/* A watch "from now" pins now down, so a reconnect misses nothing. */
		int64_t now = etcd_json_i64(json_object_get(res, "header"), "revision");
		if (atomic_load(&w->next_rev) == 0 && now > 0 && now < INT64_MAX)
			atomic_store(&w->next_rev, now + 1);
	}
	int64_t compact = etcd_json_i64(res, "compact_revision");
	if (compact > 0) {
		etcd_watch_set_reason(w, "revision %" PRId64 " compacted (oldest kept %" PRId64 ")",
		                      atomic_load(&w->next_rev), compact);
		w->compacted = true;
		w->hangup = true;
	} else if (json_is_true(json_object_get(res, "canceled"))) {
		json_t *why = json_object_get(res, "cancel_reason");
		etcd_watch_set_reason(w, "canceled by etcd: %s",
		                      json_is_string(why) ? json_string_value(why) : "no reason");
		/* A stale token cancels the watch it was to create (after etcd
		 * restarted, or users or roles changed): renew it. */
		if (json_is_string(why) && etcd_token_refused(json_string_value(why)))
			w->token_refused = true;
		w->hangup = true;
	} else {
		json_t *events = json_object_get(res, "events");
		if (json_is_array(events))
			etcd_watch_deliver(w, events);
	}
	json_decref(j);
}

static size_t etcd_watch_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	gust_etcd_watch *w = arg;
	size_t n = size * nmemb;
	if (w->hangup || atomic_load(&w->stop))
		return 0; /* CURLE_WRITE_ERROR ends the transfer */
	gust_buf_append(&w->in, p, n);
	size_t off = 0;
	char *nl;
	while (!w->hangup && (nl = memchr(w->in.data + off, '\n', w->in.len - off)) != NULL) {
		size_t len = (size_t)(nl - (w->in.data + off));
		if (len > 0)
			etcd_watch_line(w, w->in.data + off, len);
		off += len + 1;
	}
	if (off > 0) {
		memmove(w->in.data, w->in.data + off, w->in.len - off);
		w->in.len -= off;
		w->in.data[w->in.len] = 0;
	}
	if (w->in.len > ETCD_WATCH_MAX_LINE) {
		etcd_watch_set_reason(w, "answer line over %u bytes", ETCD_WATCH_MAX_LINE);
		w->hangup = true;
	}
	return w->hangup ? 0 : n;
}

/* One connection to one endpoint, from next_rev, until it ends or stop. */
static enum etcd_watch_end etcd_watch_session(gust_etcd_watch *w)
{
	w->tried = w->ep;
	const char *ep = etcd_endpoint(w->e, w->ep);
	cleanup_free char *url = gust_xasprintf("%s/v3/watch", ep);
	json_t *cr = json_pack("{s:s, s:s}", "key", w->key64, "range_end", w->end64);
	char rev[24];
	snprintf(rev, sizeof(rev), "%" PRId64, atomic_load(&w->next_rev));
	json_object_set_new(cr, "start_revision", json_string(rev));
	json_t *req = json_pack("{s:o}", "create_request", cr);
	cleanup_free char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);

	w->created = w->hangup = w->compacted = false;
	w->reason[0] = 0;
	gust_buf_reset(&w->in);
	w->in.len = 0;

	w->token_refused = false;
	char *tok = NULL;
	gust_error *terr = NULL;
	if (etcd_token(w->e, w->refused, &tok, &terr) != 0) {
		etcd_watch_set_reason(w, "%s", gust_error_msg(terr));
		gust_error_free(terr);
		return ETCD_WATCH_BROKEN;
	}
	struct curl_slist *hdrs = NULL;
	if (tok != NULL) {
		cleanup_free char *h = gust_xasprintf("Authorization: %s", tok);
		hdrs = curl_slist_append(NULL, h);
		explicit_bzero(h, strlen(h));
	}
	CURL *c = curl_easy_init();
	if (c == NULL || body == NULL || (tok != NULL && hdrs == NULL)) {
		etcd_watch_set_reason(w, "out of memory");
		if (c != NULL)
			curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		free(tok);
		return ETCD_WATCH_BROKEN;
	}
	char errbuf[CURL_ERROR_SIZE] = "";
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, etcd_watch_write_cb);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, w);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ETCD_CONNECT_TIMEOUT_MS);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	etcd_curl_tls(w->e, c);
	if (hdrs != NULL)
		curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	/* A watch is idle for as long as nothing changes: only TCP keep-alives tell
	 * a silent peer from a dead one. */
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPIDLE, 10L);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPINTVL, 5L);
	curl_multi_add_handle(w->multi, c);

	enum etcd_watch_end end = ETCD_WATCH_BROKEN;
	for (;;) {
		int running = 0;
		CURLMcode mc = curl_multi_perform(w->multi, &running);
		if (atomic_load(&w->stop)) {
			end = ETCD_WATCH_STOPPED;
			break;
		}
		if (w->hangup) {
			end = w->compacted ? ETCD_WATCH_COMPACTED : ETCD_WATCH_BROKEN;
			break;
		}
		if (mc != CURLM_OK) {
			etcd_watch_set_reason(w, "%s", curl_multi_strerror(mc));
			break;
		}
		if (running == 0) {
			int left;
			CURLMsg *m = curl_multi_info_read(w->multi, &left);
			CURLcode rc =
			    m != NULL && m->msg == CURLMSG_DONE ? m->data.result : CURLE_OK;
			long status = 0;
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
			if (rc != CURLE_OK)
				etcd_watch_set_reason(w, "%s",
				                      errbuf[0] ? errbuf : curl_easy_strerror(rc));
			else
				etcd_watch_set_reason(w, "stream ended (HTTP %ld)", status);
			break;
		}
		curl_multi_poll(w->multi, NULL, 0, 1000, NULL);
	}
	curl_multi_remove_handle(w->multi, c);
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	free(w->refused);
	w->refused = NULL;
	if (w->token_refused)
		w->refused = tok; /* renewed by the next session */
	else
		free(tok);
	/* A session that never got its watch confirmed tries the next endpoint. */
	if (end == ETCD_WATCH_BROKEN && !w->created)
		w->ep = (w->ep + 1) % etcd_endpoint_count(w->e);
	return end;
}

/* Sleeps ms unless stopped first; returns true if stopped. */
static bool etcd_watch_sleep(gust_etcd_watch *w, int ms)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&w->mu);
	while (!atomic_load(&w->stop))
		if (pthread_cond_timedwait(&w->cv, &w->mu, &ts) != 0)
			break;
	pthread_mutex_unlock(&w->mu);
	return atomic_load(&w->stop);
}

/* Re-lists the prefix after a compaction and hands the state to on_reset. */
static int etcd_watch_relist(gust_etcd_watch *w)
{
	gust_kvs snap;
	gust_error *err = NULL;
	int rv;
	if ((rv = gust_etcd_range_prefix(w->e, w->prefix, 0, &snap, &err)) != 0) {
		gust_log_warn("ETCD-WATCH-RELIST", "watch %s: re-list failed: %s", w->prefix,
		              gust_error_msg(err));
		gust_error_free(err);
		return rv;
	}
	gust_log_info("ETCD-WATCH-RESET", "watch %s: re-listed %zu keys at revision %" PRId64,
	              w->prefix, snap.n, snap.revision);
	if (w->ops.on_reset != NULL)
		w->ops.on_reset(w->arg, &snap);
	else
		gust_log_warn("ETCD-WATCH-RESET",
		              "watch %s: events lost to compaction, no on_reset", w->prefix);
	atomic_store(&w->next_rev, snap.revision + 1);
	gust_kvs_free(&snap);
	return 0;
}

static void *etcd_watch_main(void *arg)
{
	gust_etcd_watch *w = arg;
	int backoff = ETCD_WATCH_BACKOFF_MIN_MS;
	bool need_reset = false;
	while (!atomic_load(&w->stop)) {
		if (need_reset) {
			if (etcd_watch_relist(w) == 0) {
				need_reset = false;
				backoff = ETCD_WATCH_BACKOFF_MIN_MS;
				continue;
			}
		} else {
			enum etcd_watch_end end = etcd_watch_session(w);
			if (end == ETCD_WATCH_STOPPED)
				break;
			if (end == ETCD_WATCH_COMPACTED) {
				gust_log_warn("ETCD-WATCH-COMPACTED", "watch %s: %s", w->prefix,
				              w->reason);
				need_reset = true;
				continue;
			}
			if (w->created)
				backoff = ETCD_WATCH_BACKOFF_MIN_MS;
			gust_log_warn("ETCD-WATCH-RECONNECT",
			              "watch %s on %s: %s; resuming from %" PRId64 " in %d ms",
			              w->prefix, etcd_endpoint(w->e, w->tried), w->reason,
			              atomic_load(&w->next_rev), backoff);
		}
		if (etcd_watch_sleep(w, backoff))
			break;
		backoff = backoff * 2 > ETCD_WATCH_BACKOFF_MAX_MS ? ETCD_WATCH_BACKOFF_MAX_MS
		                                                  : backoff * 2;
	}
	return NULL;
}

static void etcd_watch_destroy(gust_etcd_watch *w)
{
	if (w == NULL)
		return;
	if (w->multi != NULL)
		curl_multi_cleanup(w->multi);
	if (w->sync_init) {
		pthread_cond_destroy(&w->cv);
		pthread_mutex_destroy(&w->mu);
	}
	gust_buf_free(&w->in);
	free(w->prefix);
	free(w->key64);
	free(w->end64);
	free(w->refused);
	free(w);
}

int gust_etcd_watch_start(gust_etcd *e, const char *prefix, int64_t start_rev,
                          const gust_watch_ops *ops, void *arg, gust_etcd_watch **wp,
                          gust_error **err)
{
	*wp = NULL;
	if (e == NULL || prefix == NULL || ops == NULL || start_rev < 0)
		return gust_error_set(err, GUST_EINVAL, "etcd watch: bad arguments");
	gust_etcd_watch *w = gust_xcalloc(1, sizeof(*w));
	w->e = e;
	w->prefix = gust_xstrdup(prefix);
	if (*prefix == 0) {
		w->key64 = gust_b64_encode("", 1);
		w->end64 = gust_b64_encode("", 1);
	} else {
		w->key64 = gust_b64_encode(prefix, strlen(prefix));
		w->end64 = etcd_prefix_end_b64(prefix);
	}
	w->ops = *ops;
	w->arg = arg;
	/* Revision 0 means "from now" to etcd; the first answer tells which. */
	atomic_store(&w->next_rev, start_rev);
	w->ep = etcd_endpoint_preferred(e);
	if (pthread_mutex_init(&w->mu, NULL) != 0) {
		etcd_watch_destroy(w);
		return gust_error_set(err, GUST_EINTERNAL, "etcd watch %s: mutex init", prefix);
	}
	/* Back-off sleeps measure elapsed time: a wall-clock step must not stretch them. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	int crc = pthread_cond_init(&w->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (crc != 0) {
		pthread_mutex_destroy(&w->mu);
		etcd_watch_destroy(w);
		return gust_error_set(err, GUST_EINTERNAL, "etcd watch %s: cond init", prefix);
	}
	w->sync_init = true;
	if ((w->multi = curl_multi_init()) == NULL) {
		etcd_watch_destroy(w);
		return gust_error_set(err, GUST_ENOMEM, "etcd watch %s: curl_multi_init", prefix);
	}
	int rc;
	if ((rc = pthread_create(&w->thread, NULL, etcd_watch_main, w)) != 0) {
		etcd_watch_destroy(w);
		return gust_error_set(err, GUST_EINTERNAL, "etcd watch %s: pthread_create: %s",
		                      prefix, strerror(rc));
	}
	w->started = true;
	*wp = w;
	return 0;
}

int64_t gust_etcd_watch_next_rev(gust_etcd_watch *w)
{
	return atomic_load(&w->next_rev);
}

void gust_etcd_watch_stop(gust_etcd_watch *w)
{
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->mu);
		atomic_store(&w->stop, true);
		pthread_cond_broadcast(&w->cv);
		pthread_mutex_unlock(&w->mu);
		curl_multi_wakeup(w->multi);
		pthread_join(w->thread, NULL);
	}
	etcd_watch_destroy(w);
}

int gust_etcd_mirror_start(gust_etcd *e, const char *prefix, const gust_watch_ops *ops, void *arg,
                           gust_etcd_watch **wp, gust_error **err)
{
	*wp = NULL;
	if (e == NULL || prefix == NULL || ops == NULL)
		return gust_error_set(err, GUST_EINVAL, "etcd mirror: bad arguments");
	gust_kvs snap;
	int rv;
	if ((rv = gust_etcd_range_prefix(e, prefix, 0, &snap, err)) != 0) {
		gust_error_wrap(err, "mirror");
		return rv;
	}
	if (ops->on_reset != NULL)
		ops->on_reset(arg, &snap);
	int64_t from = snap.revision + 1;
	gust_kvs_free(&snap);
	return gust_etcd_watch_start(e, prefix, from, ops, arg, wp, err);
}
