/*
 * test_etcd.c - the etcd client against a real etcd started in a temp dir:
 * CRUD, compare-and-swap, leases, watches across client and server restarts,
 * compaction, and endpoint fail-over.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "gust/etcd.h"
#include "gust/log.h"
#include "gust/util.h"
#include "harness.h"

static char *t_dir;
static th_proc t_etcd;
static int t_port;
static char t_url[64];
static gust_etcd *t_e;

static void t_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int setup_all(void **state)
{
	(void)state;
	t_dir = th_tmpdir("etcd");
	if (t_dir == NULL || th_start_etcd(t_dir, &t_etcd, &t_port) != 0) {
		fprintf(stderr, "cannot start etcd (log in %s/etcd.log)\n", t_dir ? t_dir : "?");
		return -1;
	}
	snprintf(t_url, sizeof(t_url), "http://127.0.0.1:%d", t_port);
	gust_error *err = NULL;
	if (gust_etcd_open(&t_e, t_url, &err) != 0) {
		fprintf(stderr, "gust_etcd_open: %s\n", gust_error_msg(err));
		gust_error_free(err);
		return -1;
	}
	return 0;
}

static int teardown_all(void **state)
{
	(void)state;
	gust_etcd_close(t_e);
	th_stop(&t_etcd, SIGTERM);
	th_rmdir(t_dir);
	free(t_dir);
	return 0;
}

/* Fails the test with the error's message when rv != 0. */
#define T_OK(call)                                                                                 \
	do {                                                                                       \
		gust_error *err_ = NULL;                                                           \
		int rv_ = (call);                                                                  \
		if (rv_ != 0)                                                                      \
			fail_msg("%s: %s", #call, gust_error_msg(err_));                           \
		gust_error_free(err_);                                                             \
	} while (0)
#define T_ERR ((gust_error **)&err_)

static void t_put(const char *key, const char *value, int64_t *rev)
{
	T_OK(gust_etcd_put(t_e, key, value, strlen(value), 0, rev, T_ERR));
}

static bool t_exists(const char *key)
{
	gust_kv kv;
	int rv = gust_etcd_get(t_e, key, &kv, NULL);
	gust_kv_clear(&kv);
	assert_true(rv == 0 || rv == GUST_ENOENT);
	return rv == 0;
}

static void test_put_get_binary(void **state)
{
	(void)state;
	static const char val[] = {'a', 0, 'b', 0, 0, (char)0xff, '\n', '"'};
	int64_t rev = 0;
	T_OK(gust_etcd_put(t_e, "/t/bin/k", val, sizeof(val), 0, &rev, T_ERR));
	assert_true(rev > 0);
	gust_kv kv;
	T_OK(gust_etcd_get(t_e, "/t/bin/k", &kv, T_ERR));
	assert_string_equal(kv.key, "/t/bin/k");
	assert_int_equal(kv.value_len, sizeof(val));
	assert_memory_equal(kv.value, val, sizeof(val));
	assert_int_equal(kv.value[kv.value_len], 0);
	assert_int_equal(kv.mod_revision, rev);
	assert_int_equal(kv.create_revision, rev);
	assert_int_equal(kv.version, 1);
	gust_kv_clear(&kv);

	/* An empty value round-trips as empty, not as missing. */
	T_OK(gust_etcd_put(t_e, "/t/bin/empty", "", 0, 0, NULL, T_ERR));
	T_OK(gust_etcd_get(t_e, "/t/bin/empty", &kv, T_ERR));
	assert_int_equal(kv.value_len, 0);
	assert_string_equal(kv.value, "");
	gust_kv_clear(&kv);
}

static void test_get_missing(void **state)
{
	(void)state;
	gust_kv kv;
	gust_error *err = NULL;
	assert_int_equal(gust_etcd_get(t_e, "/t/missing/nothing", &kv, &err), GUST_ENOENT);
	assert_non_null(strstr(gust_error_msg(err), "/t/missing/nothing"));
	gust_error_free(err);
}

static void test_range_prefix(void **state)
{
	(void)state;
	/* Put out of order; a sibling prefix (/t/r/a/bc) must not leak in. */
	t_put("/t/r/a/b/3", "3", NULL);
	t_put("/t/r/a/b/1", "1", NULL);
	t_put("/t/r/a/bc/x", "no", NULL);
	t_put("/t/r/a/b/2", "2", NULL);
	t_put("/t/r/a/b", "parent", NULL); /* the prefix itself is "under" it */
	t_put("/t/r/a/a", "no", NULL);

	gust_kvs kvs;
	T_OK(gust_etcd_range_prefix(t_e, "/t/r/a/b/", 0, &kvs, T_ERR));
	assert_int_equal(kvs.n, 3);
	assert_string_equal(kvs.kvs[0].key, "/t/r/a/b/1");
	assert_string_equal(kvs.kvs[1].key, "/t/r/a/b/2");
	assert_string_equal(kvs.kvs[2].key, "/t/r/a/b/3");
	assert_string_equal(kvs.kvs[2].value, "3");
	assert_false(kvs.more);
	assert_true(kvs.revision > 0);
	gust_kvs_free(&kvs);

	T_OK(gust_etcd_range_prefix(t_e, "/t/r/a/b", 0, &kvs, T_ERR));
	assert_int_equal(kvs.n, 5); /* /t/r/a/b, b/1..3, bc/x */
	gust_kvs_free(&kvs);

	T_OK(gust_etcd_range_prefix(t_e, "/t/r/a/b/", 2, &kvs, T_ERR));
	assert_int_equal(kvs.n, 2);
	assert_true(kvs.more);
	assert_string_equal(kvs.kvs[1].key, "/t/r/a/b/2");
	gust_kvs_free(&kvs);

	T_OK(gust_etcd_range_prefix(t_e, "/t/r/none/", 0, &kvs, T_ERR));
	assert_int_equal(kvs.n, 0);
	gust_kvs_free(&kvs);
}

static void test_delete(void **state)
{
	(void)state;
	t_put("/t/d/one", "1", NULL);
	t_put("/t/d/p/1", "1", NULL);
	t_put("/t/d/p/2", "2", NULL);
	t_put("/t/d/p/3", "3", NULL);
	t_put("/t/d/pq", "sibling", NULL);

	int64_t n = -1;
	T_OK(gust_etcd_delete(t_e, "/t/d/one", false, &n, T_ERR));
	assert_int_equal(n, 1);
	assert_false(t_exists("/t/d/one"));
	T_OK(gust_etcd_delete(t_e, "/t/d/one", false, &n, T_ERR));
	assert_int_equal(n, 0);

	T_OK(gust_etcd_delete(t_e, "/t/d/p/", true, &n, T_ERR));
	assert_int_equal(n, 3);
	assert_false(t_exists("/t/d/p/2"));
	assert_true(t_exists("/t/d/pq"));
}

static void test_cas_create(void **state)
{
	(void)state;
	int64_t rev = 0;
	T_OK(gust_etcd_cas(t_e, "/t/cas/new", 0, "v1", 2, 0, &rev, T_ERR));
	assert_true(rev > 0);
	gust_error *err = NULL;
	assert_int_equal(gust_etcd_cas(t_e, "/t/cas/new", 0, "v2", 2, 0, NULL, &err),
	                 GUST_ECONFLICT);
	assert_non_null(err);
	gust_error_free(err);
	gust_kv kv;
	T_OK(gust_etcd_get(t_e, "/t/cas/new", &kv, T_ERR));
	assert_string_equal(kv.value, "v1");
	assert_int_equal(kv.mod_revision, rev);
	gust_kv_clear(&kv);
}

static void test_cas_mod_revision(void **state)
{
	(void)state;
	int64_t r1 = 0, r2 = 0;
	t_put("/t/cas/mod", "a", &r1);
	T_OK(gust_etcd_cas(t_e, "/t/cas/mod", r1, "b", 1, 0, &r2, T_ERR));
	assert_true(r2 > r1);
	/* r1 is stale now. */
	assert_int_equal(gust_etcd_cas(t_e, "/t/cas/mod", r1, "c", 1, 0, NULL, NULL),
	                 GUST_ECONFLICT);
	gust_kv kv;
	T_OK(gust_etcd_get(t_e, "/t/cas/mod", &kv, T_ERR));
	assert_string_equal(kv.value, "b");
	assert_int_equal(kv.mod_revision, r2);
	gust_kv_clear(&kv);
}

static void test_cas_delete(void **state)
{
	(void)state;
	int64_t r1 = 0, r2 = 0;
	t_put("/t/casdel/k", "a", &r1);
	t_put("/t/casdel/k", "b", &r2);
	assert_int_equal(gust_etcd_cas_delete(t_e, "/t/casdel/k", r1, NULL), GUST_ECONFLICT);
	assert_true(t_exists("/t/casdel/k"));
	T_OK(gust_etcd_cas_delete(t_e, "/t/casdel/k", r2, T_ERR));
	assert_false(t_exists("/t/casdel/k"));
	assert_int_equal(gust_etcd_cas_delete(t_e, "/t/casdel/k", r2, NULL), GUST_ECONFLICT);
}

static void test_lease_revoke(void **state)
{
	(void)state;
	int64_t lease = 0, ttl = 0;
	T_OK(gust_etcd_lease_grant(t_e, 30, &lease, T_ERR));
	assert_true(lease != 0);
	T_OK(gust_etcd_put(t_e, "/t/lease/r", "x", 1, lease, NULL, T_ERR));
	gust_kv kv;
	T_OK(gust_etcd_get(t_e, "/t/lease/r", &kv, T_ERR));
	assert_int_equal(kv.lease, lease);
	gust_kv_clear(&kv);
	T_OK(gust_etcd_lease_keepalive(t_e, lease, &ttl, T_ERR));
	assert_int_equal(ttl, 30);
	T_OK(gust_etcd_lease_revoke(t_e, lease, T_ERR));
	assert_false(t_exists("/t/lease/r"));
	assert_int_equal(gust_etcd_lease_keepalive(t_e, lease, NULL, NULL), GUST_ENOENT);
	assert_int_equal(gust_etcd_lease_revoke(t_e, lease, NULL), GUST_ENOENT);
	/* A put with a lease that does not exist fails and writes nothing. */
	assert_int_equal(gust_etcd_put(t_e, "/t/lease/r", "x", 1, lease, NULL, NULL), GUST_ENOENT);
	assert_false(t_exists("/t/lease/r"));
}

static void test_lease_expiry(void **state)
{
	(void)state;
	int64_t lease = 0;
	T_OK(gust_etcd_lease_grant(t_e, 2, &lease, T_ERR));
	T_OK(gust_etcd_put(t_e, "/t/lease/exp", "x", 1, lease, NULL, T_ERR));
	uint64_t t0 = gust_now_ms();
	assert_true(t_exists("/t/lease/exp"));
	while (t_exists("/t/lease/exp")) {
		assert_true(gust_now_ms() - t0 < 4500);
		t_sleep_ms(100);
	}
	/* Not before the TTL: etcd may expire a little late, never early. */
	assert_true(gust_now_ms() - t0 >= 1500);
	assert_int_equal(gust_etcd_lease_keepalive(t_e, lease, NULL, NULL), GUST_ENOENT);
}

struct renew_log {
	pthread_mutex_t mu;
	int n;
	int64_t last;
};

static void on_renew(void *arg, int64_t lease)
{
	struct renew_log *r = arg;
	pthread_mutex_lock(&r->mu);
	r->n++;
	r->last = lease;
	pthread_mutex_unlock(&r->mu);
	/* No cmocka assertions on the keeper's thread: the test checks the key. */
	gust_etcd_put(t_e, "/t/keeper/k", "x", 1, lease, NULL, NULL);
}

static void test_lease_keeper(void **state)
{
	(void)state;
	struct renew_log r = {.mu = PTHREAD_MUTEX_INITIALIZER};
	gust_etcd_lease_keeper *k = NULL;
	T_OK(gust_etcd_lease_keeper_start(t_e, 2, on_renew, &r, &k, T_ERR));
	int64_t id = gust_etcd_lease_keeper_id(k);
	T_OK(gust_etcd_put(t_e, "/t/keeper/k", "x", 1, id, NULL, T_ERR));
	/* Well past the TTL, the key is still there. */
	t_sleep_ms(4500);
	assert_true(t_exists("/t/keeper/k"));
	assert_int_equal(gust_etcd_lease_keeper_id(k), id);

	/* Revoke it behind the keeper's back: it grants a new one and says so. */
	T_OK(gust_etcd_lease_revoke(t_e, id, T_ERR));
	uint64_t t0 = gust_now_ms();
	for (;;) {
		pthread_mutex_lock(&r.mu);
		int n = r.n;
		pthread_mutex_unlock(&r.mu);
		if (n > 0)
			break;
		assert_true(gust_now_ms() - t0 < 3000);
		t_sleep_ms(50);
	}
	int64_t id2 = gust_etcd_lease_keeper_id(k);
	assert_true(id2 != id);
	assert_int_equal(r.last, id2);
	assert_true(t_exists("/t/keeper/k"));

	gust_etcd_lease_keeper_stop(k, true);
	assert_false(t_exists("/t/keeper/k"));
}

/* What a watch saw, for assertions. */
typedef struct t_ev {
	int type;
	char *key;
	char *value;
	int64_t rev;
} t_ev;

typedef struct t_col {
	pthread_mutex_t mu;
	t_ev evs[256];
	size_t n;
	int resets;
	char *snapshot; /* "k=v;k=v;" of the last reset */
	int64_t snap_rev;
	int64_t last_batch_rev;
} t_col;

static void t_col_init(t_col *c)
{
	memset(c, 0, sizeof(*c));
	pthread_mutex_init(&c->mu, NULL);
}

static void t_col_free(t_col *c)
{
	for (size_t i = 0; i < c->n; i++) {
		free(c->evs[i].key);
		free(c->evs[i].value);
	}
	free(c->snapshot);
	pthread_mutex_destroy(&c->mu);
}

static void t_on_events(void *arg, const gust_watch_event *evs, size_t n, int64_t revision)
{
	t_col *c = arg;
	pthread_mutex_lock(&c->mu);
	for (size_t i = 0; i < n && c->n < 256; i++) {
		t_ev *e = &c->evs[c->n++];
		e->type = evs[i].type;
		e->key = gust_xstrdup(evs[i].kv.key);
		e->value = gust_xstrndup(evs[i].kv.value, evs[i].kv.value_len);
		e->rev = evs[i].kv.mod_revision;
	}
	c->last_batch_rev = revision;
	pthread_mutex_unlock(&c->mu);
}

static void t_on_reset(void *arg, const gust_kvs *snap)
{
	t_col *c = arg;
	gust_buf b = {0};
	for (size_t i = 0; i < snap->n; i++)
		gust_buf_printf(&b, "%s=%s;", snap->kvs[i].key, snap->kvs[i].value);
	pthread_mutex_lock(&c->mu);
	c->resets++;
	free(c->snapshot);
	c->snapshot = gust_buf_steal(&b);
	c->snap_rev = snap->revision;
	pthread_mutex_unlock(&c->mu);
}

static const gust_watch_ops t_ops = {t_on_events, t_on_reset};

/* Waits until the collector holds n events (or resets); fails after ms. */
static void t_wait_events(t_col *c, size_t n, int ms)
{
	uint64_t t0 = gust_now_ms();
	for (;;) {
		pthread_mutex_lock(&c->mu);
		size_t have = c->n;
		pthread_mutex_unlock(&c->mu);
		if (have >= n)
			return;
		if (gust_now_ms() - t0 > (uint64_t)ms)
			fail_msg("waited %d ms for %zu events, have %zu", ms, n, have);
		t_sleep_ms(20);
	}
}

static void t_assert_ev(t_col *c, size_t i, int type, const char *key, const char *value)
{
	pthread_mutex_lock(&c->mu);
	assert_true(i < c->n);
	t_ev e = c->evs[i];
	pthread_mutex_unlock(&c->mu);
	assert_int_equal(e.type, type);
	assert_string_equal(e.key, key);
	if (value != NULL)
		assert_string_equal(e.value, value);
}

static void t_stop_quickly(gust_etcd_watch *w)
{
	uint64_t t0 = gust_now_ms();
	gust_etcd_watch_stop(w);
	uint64_t took = gust_now_ms() - t0;
	if (took > 1000)
		fail_msg("gust_etcd_watch_stop took %" PRIu64 " ms", took);
}

static void test_watch_resume(void **state)
{
	(void)state;
	int64_t r0 = 0;
	t_put("/t/w/zero", "0", &r0);
	t_col c;
	t_col_init(&c);
	gust_etcd_watch *w = NULL;
	T_OK(gust_etcd_watch_start(t_e, "/t/w/", r0 + 1, &t_ops, &c, &w, T_ERR));
	t_put("/t/w/a", "1", NULL);
	t_put("/t/wx", "sibling", NULL);
	int64_t rb = 0;
	t_put("/t/w/b", "2", &rb);
	t_wait_events(&c, 2, 5000);
	t_assert_ev(&c, 0, GUST_WATCH_PUT, "/t/w/a", "1");
	t_assert_ev(&c, 1, GUST_WATCH_PUT, "/t/w/b", "2");
	assert_int_equal(c.evs[1].rev, rb);
	assert_int_equal(gust_etcd_watch_next_rev(w), rb + 1);
	int64_t next = gust_etcd_watch_next_rev(w);
	t_stop_quickly(w);

	/* Missed while no watch runs. */
	t_put("/t/w/c", "3", NULL);
	T_OK(gust_etcd_delete(t_e, "/t/w/a", false, NULL, T_ERR));
	t_put("/t/wx", "sibling again", NULL);
	t_put("/t/w/b", "2b", NULL);

	t_col c2;
	t_col_init(&c2);
	T_OK(gust_etcd_watch_start(t_e, "/t/w/", next, &t_ops, &c2, &w, T_ERR));
	t_wait_events(&c2, 3, 5000);
	t_sleep_ms(300); /* nothing else may arrive */
	pthread_mutex_lock(&c2.mu);
	assert_int_equal(c2.n, 3);
	assert_int_equal(c2.resets, 0);
	pthread_mutex_unlock(&c2.mu);
	t_assert_ev(&c2, 0, GUST_WATCH_PUT, "/t/w/c", "3");
	t_assert_ev(&c2, 1, GUST_WATCH_DELETE, "/t/w/a", NULL);
	t_assert_ev(&c2, 2, GUST_WATCH_PUT, "/t/w/b", "2b");
	assert_true(c2.evs[0].rev < c2.evs[1].rev && c2.evs[1].rev < c2.evs[2].rev);
	assert_int_equal(c2.last_batch_rev, c2.evs[2].rev);
	t_stop_quickly(w);
	t_col_free(&c);
	t_col_free(&c2);
}

static void test_watch_etcd_restart(void **state)
{
	(void)state;
	t_col c;
	t_col_init(&c);
	gust_etcd_watch *w = NULL;
	/* start_rev 0: from now. */
	T_OK(gust_etcd_watch_start(t_e, "/t/wr/", 0, &t_ops, &c, &w, T_ERR));
	t_sleep_ms(300); /* let the watch be created, so "now" is before the put */
	t_put("/t/wr/before", "1", NULL);
	t_wait_events(&c, 1, 5000);

	th_stop(&t_etcd, SIGKILL);
	t_sleep_ms(500); /* the watch notices and backs off */
	assert_int_equal(th_start_etcd(t_dir, &t_etcd, &t_port), 0);
	t_put("/t/wr/after", "2", NULL);
	t_wait_events(&c, 2, 10000);
	t_assert_ev(&c, 1, GUST_WATCH_PUT, "/t/wr/after", "2");
	t_stop_quickly(w);
	pthread_mutex_lock(&c.mu);
	assert_int_equal(c.n, 2);
	pthread_mutex_unlock(&c.mu);
	t_col_free(&c);
}

/* POST /v3/kv/compaction, physical (gust_etcd_compact is not), straight to
 * etcd so that the watch test does not depend on the client under test. */
static void t_compact(int64_t rev)
{
	CURL *h = curl_easy_init();
	assert_non_null(h);
	cleanup_free char *url = gust_xasprintf("%s/v3/kv/compaction", t_url);
	cleanup_free char *body =
	    gust_xasprintf("{\"revision\":\"%" PRId64 "\",\"physical\":true}", rev);
	FILE *sink = fopen("/dev/null", "w");
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, sink);
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	long status = 0;
	assert_int_equal(curl_easy_perform(h), CURLE_OK);
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_easy_cleanup(h);
	fclose(sink);
}

static void test_compact(void **state)
{
	(void)state;
	int64_t r1 = 0, r2 = 0;
	t_put("/t/compact/k", "v1", &r1);
	t_put("/t/compact/k", "v2", &r2);
	T_OK(gust_etcd_compact(t_e, r2, T_ERR));
	/* Already compacted: another leader got there first, not an error. */
	T_OK(gust_etcd_compact(t_e, r1, T_ERR));
	gust_error *err = NULL;
	assert_int_equal(gust_etcd_compact(t_e, r2 + 1000000, &err), GUST_EINVAL);
	assert_non_null(strstr(gust_error_msg(err), "compact to"));
	gust_error_free(err);
	assert_int_equal(gust_etcd_compact(t_e, 0, NULL), GUST_EINVAL);
	gust_kv kv;
	T_OK(gust_etcd_get(t_e, "/t/compact/k", &kv, T_ERR));
	assert_memory_equal(kv.value, "v2", 2);
	gust_kv_clear(&kv);
}

static void test_watch_compaction(void **state)
{
	(void)state;
	int64_t r = 0, rnow = 0;
	t_put("/t/wc/a", "1", NULL);
	t_put("/t/wc/b", "2", &r);
	t_put("/t/wc/c", "3", NULL);
	T_OK(gust_etcd_delete(t_e, "/t/wc/a", false, NULL, T_ERR));
	t_put("/t/other", "x", &rnow);
	t_compact(rnow);

	t_col c;
	t_col_init(&c);
	gust_etcd_watch *w = NULL;
	T_OK(gust_etcd_watch_start(t_e, "/t/wc/", r + 1, &t_ops, &c, &w, T_ERR));
	uint64_t t0 = gust_now_ms();
	for (;;) {
		pthread_mutex_lock(&c.mu);
		int resets = c.resets;
		pthread_mutex_unlock(&c.mu);
		if (resets > 0)
			break;
		assert_true(gust_now_ms() - t0 < 5000);
		t_sleep_ms(20);
	}
	assert_string_equal(c.snapshot, "/t/wc/b=2;/t/wc/c=3;");
	assert_true(c.snap_rev >= rnow);
	assert_int_equal(gust_etcd_watch_next_rev(w), c.snap_rev + 1);
	/* And it goes on watching from there. */
	t_put("/t/wc/d", "4", NULL);
	t_wait_events(&c, 1, 5000);
	t_assert_ev(&c, 0, GUST_WATCH_PUT, "/t/wc/d", "4");
	t_stop_quickly(w);
	assert_int_equal(c.resets, 1);
	t_col_free(&c);
}

static void test_mirror(void **state)
{
	(void)state;
	t_put("/t/m/1", "one", NULL);
	t_put("/t/m/2", "two", NULL);
	t_col c;
	t_col_init(&c);
	gust_etcd_watch *w = NULL;
	T_OK(gust_etcd_mirror_start(t_e, "/t/m/", &t_ops, &c, &w, T_ERR));
	assert_int_equal(c.resets, 1); /* before mirror_start returns */
	assert_string_equal(c.snapshot, "/t/m/1=one;/t/m/2=two;");
	t_put("/t/m/3", "three", NULL);
	t_wait_events(&c, 1, 5000);
	t_assert_ev(&c, 0, GUST_WATCH_PUT, "/t/m/3", "three");
	t_stop_quickly(w);
	t_col_free(&c);
}

static void test_multi_endpoint(void **state)
{
	(void)state;
	int dead = th_free_port(); /* nothing listens there */
	cleanup_free char *eps = gust_xasprintf("http://127.0.0.1:%d,%s", dead, t_url);
	gust_etcd *e = NULL;
	T_OK(gust_etcd_open(&e, eps, T_ERR));
	int64_t rev = 0;
	T_OK(gust_etcd_put(e, "/t/multi/k", "v", 1, 0, &rev, T_ERR));
	gust_kv kv;
	T_OK(gust_etcd_get(e, "/t/multi/k", &kv, T_ERR));
	assert_string_equal(kv.value, "v");
	gust_kv_clear(&kv);

	gust_etcd_close(e);

	/* A watch fails over too: a fresh handle starts at the dead endpoint. */
	T_OK(gust_etcd_open(&e, eps, T_ERR));
	t_col c;
	t_col_init(&c);
	gust_etcd_watch *w = NULL;
	T_OK(gust_etcd_watch_start(e, "/t/multi/", rev, &t_ops, &c, &w, T_ERR));
	t_wait_events(&c, 1, 5000);
	t_assert_ev(&c, 0, GUST_WATCH_PUT, "/t/multi/k", "v");
	t_stop_quickly(w);
	t_col_free(&c);
	gust_etcd_close(e);
}

static void test_unavailable(void **state)
{
	(void)state;
	int dead = th_free_port();
	cleanup_free char *ep = gust_xasprintf("http://127.0.0.1:%d", dead);
	gust_etcd *e = NULL;
	T_OK(gust_etcd_open(&e, ep, T_ERR));
	gust_error *err = NULL;
	uint64_t t0 = gust_now_ms();
	assert_int_equal(gust_etcd_put(e, "/gust/x", "v", 1, 0, NULL, &err), GUST_EUNAVAIL);
	assert_true(gust_now_ms() - t0 < 1500);
	assert_non_null(err);
	assert_int_equal(err->code, GUST_EUNAVAIL);
	assert_non_null(strstr(gust_error_msg(err), "etcd put /gust/x"));
	gust_error_free(err);
	gust_etcd_close(e);

	/* Bad input is an error, not a crash. */
	assert_int_equal(gust_etcd_open(&e, "", NULL), GUST_EINVAL);
	assert_int_equal(gust_etcd_open(&e, "127.0.0.1:2379", NULL), GUST_EINVAL);
	assert_null(e);
}

int main(void)
{
	if (!th_have("etcd")) {
		fprintf(stderr, "etcd is not installed: skipping\n");
		return 77;
	}
	/* Reconnect warnings are expected while etcd restarts; keep them visible. */
	gust_log_threshold = GUST_LOG_WARN;
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_put_get_binary),   cmocka_unit_test(test_get_missing),
	    cmocka_unit_test(test_range_prefix),     cmocka_unit_test(test_delete),
	    cmocka_unit_test(test_cas_create),       cmocka_unit_test(test_cas_mod_revision),
	    cmocka_unit_test(test_cas_delete),       cmocka_unit_test(test_lease_revoke),
	    cmocka_unit_test(test_lease_expiry),     cmocka_unit_test(test_lease_keeper),
	    cmocka_unit_test(test_watch_resume),     cmocka_unit_test(test_watch_etcd_restart),
	    cmocka_unit_test(test_watch_compaction), cmocka_unit_test(test_mirror),
	    cmocka_unit_test(test_multi_endpoint),   cmocka_unit_test(test_unavailable),
	    cmocka_unit_test(test_compact),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
