/* integrity.c - the cluster secret and the MACs of internal data (see
 * gust/integrity.h for what is signed where, and why the secret is in etcd). */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gust/integrity.h"
#include "gust/log.h"
#include "gust/util.h"

/* The keys of this process. A reader holds the lock for one MAC (a few
 * microseconds for a small request); a rotation takes it for a copy. */
static pthread_rwlock_t ring_lock = PTHREAD_RWLOCK_INITIALIZER;
static gust_hmac_key ring_cur, ring_prev;
static bool ring_have, ring_have_prev;
static gust_etcd_watch *ring_watch;

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool unhex32(const char *s, uint8_t out[GUST_SHA256_LEN])
{
	for (int i = 0; i < GUST_SHA256_LEN; i++) {
		int a = hexval((unsigned char)s[2 * i]), b = hexval((unsigned char)s[2 * i + 1]);
		if (a < 0 || b < 0)
			return false;
		out[i] = (uint8_t)(a << 4 | b);
	}
	return true;
}

static bool blank(char c)
{
	return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

int gust_secret_parse(const char *v, size_t len, uint8_t cur[GUST_SHA256_LEN],
                      uint8_t prev[GUST_SHA256_LEN], bool *has_prev)
{
	const char *e = v + len;
	*has_prev = false;
	while (v < e && blank(*v))
		v++;
	while (e > v && blank(e[-1]))
		e--;
	if (e - v < GUST_MAC_HEX_LEN || !unhex32(v, cur))
		return GUST_EINVAL;
	v += GUST_MAC_HEX_LEN;
	if (v == e)
		return 0;
	if (!blank(*v))
		return GUST_EINVAL;
	while (v < e && blank(*v))
		v++;
	if (e - v != GUST_MAC_HEX_LEN || !unhex32(v, prev))
		return GUST_EINVAL;
	*has_prev = true;
	return 0;
}

void gust_secret_set(const uint8_t cur[GUST_SHA256_LEN], const uint8_t *prev)
{
	gust_hmac_key c, p;
	gust_hmac_key_init(&c, cur, GUST_SHA256_LEN);
	if (prev)
		gust_hmac_key_init(&p, prev, GUST_SHA256_LEN);
	pthread_rwlock_wrlock(&ring_lock);
	ring_cur = c;
	ring_have = true;
	if (prev)
		ring_prev = p;
	ring_have_prev = prev != NULL;
	pthread_rwlock_unlock(&ring_lock);
	memset(&c, 0, sizeof(c));
	memset(&p, 0, sizeof(p));
}

void gust_secret_clear(void)
{
	pthread_rwlock_wrlock(&ring_lock);
	memset(&ring_cur, 0, sizeof(ring_cur));
	memset(&ring_prev, 0, sizeof(ring_prev));
	ring_have = ring_have_prev = false;
	pthread_rwlock_unlock(&ring_lock);
}

bool gust_secret_loaded(void)
{
	pthread_rwlock_rdlock(&ring_lock);
	bool have = ring_have;
	pthread_rwlock_unlock(&ring_lock);
	return have;
}

static int secret_install(const char *v, size_t n, gust_error **err)
{
	uint8_t cur[GUST_SHA256_LEN], prev[GUST_SHA256_LEN];
	bool has_prev;
	if (gust_secret_parse(v, n, cur, prev, &has_prev) != 0)
		return gust_error_set(err, GUST_EINVAL,
		                      "the cluster secret at %s is not 64 hex digits "
		                      "(optionally a blank and 64 more: the previous key)",
		                      GUST_SECRET_KEY);
	gust_secret_set(cur, has_prev ? prev : NULL);
	memset(cur, 0, sizeof(cur));
	memset(prev, 0, sizeof(prev));
	return 0;
}

int gust_secret_ensure(gust_etcd *e, gust_error **err)
{
	/* Several daemons may start at once on a new cluster: each tries to
	 * create it only where there is none (create revision 0), and whoever
	 * loses reads the winner's. */
	for (int attempt = 0; attempt < 5; attempt++) {
		gust_kv kv = {0};
		gust_error *ge = NULL;
		int rv = gust_etcd_get(e, GUST_SECRET_KEY, &kv, &ge);
		if (rv == 0) {
			rv = secret_install(kv.value, kv.value_len, err);
			gust_kv_clear(&kv);
			return rv;
		}
		if (rv != GUST_ENOENT) {
			rv = gust_error_set(err, rv, "reading the cluster secret: %s",
			                    gust_error_msg(ge));
			gust_error_free(ge);
			return rv;
		}
		gust_error_free(ge);
		ge = NULL;
		char hex[GUST_MAC_HEX_LEN + 1];
		gust_random_hex(hex, GUST_SHA256_LEN);
		rv = gust_etcd_cas(e, GUST_SECRET_KEY, 0, hex, GUST_MAC_HEX_LEN, 0, NULL, &ge);
		if (rv == 0) {
			gust_log_info("SECRET-CREATED", "created the cluster secret at %s",
			              GUST_SECRET_KEY);
			rv = secret_install(hex, GUST_MAC_HEX_LEN, err);
			memset(hex, 0, sizeof(hex));
			return rv;
		}
		memset(hex, 0, sizeof(hex));
		if (rv != GUST_ECONFLICT) {
			rv = gust_error_set(err, rv, "creating the cluster secret: %s",
			                    gust_error_msg(ge));
			gust_error_free(ge);
			return rv;
		}
		gust_error_free(ge);
	}
	return gust_error_set(err, GUST_ECONFLICT, "the cluster secret kept changing while read");
}

static void secret_apply(const gust_kv *kv)
{
	if (kv->key == NULL || strcmp(kv->key, GUST_SECRET_KEY) != 0)
		return; /* a longer key with the same start */
	gust_error *ge = NULL;
	if (secret_install(kv->value, kv->value_len, &ge) != 0) {
		/* Keep the keys we have: a typo in a rotation must not stop the cluster. */
		gust_log_error("SECRET-BAD", "%s; keeping the keys loaded before",
		               gust_error_msg(ge));
		gust_error_free(ge);
		return;
	}
	gust_log_info("SECRET-LOADED", "loaded the cluster secret (revision %lld)",
	              (long long)kv->mod_revision);
}

static void secret_on_events(void *arg, const gust_watch_event *evs, size_t n, int64_t rev)
{
	for (size_t i = 0; i < n; i++) {
		if (evs[i].type == GUST_WATCH_PUT)
			secret_apply(&evs[i].kv);
		else if (evs[i].kv.key && strcmp(evs[i].kv.key, GUST_SECRET_KEY) == 0)
			gust_log_error("SECRET-DELETED",
			               "the cluster secret was deleted from etcd; keeping the keys "
			               "loaded before (a daemon started now would make a new one)");
	}
}

static void secret_on_reset(void *arg, const gust_kvs *snap)
{
	for (size_t i = 0; i < snap->n; i++)
		secret_apply(&snap->kvs[i]);
}

int gust_secret_start(gust_etcd *e, gust_error **err)
{
	int rv = gust_secret_ensure(e, err);
	if (rv != 0)
		return rv;
	static const gust_watch_ops ops = {secret_on_events, secret_on_reset};
	return gust_etcd_mirror_start(e, GUST_SECRET_KEY, &ops, NULL, &ring_watch, err);
}

void gust_secret_stop(void)
{
	if (ring_watch)
		gust_etcd_watch_stop(ring_watch);
	ring_watch = NULL;
}

/* ---- the MAC of an ActivationRequest ----------------------------------- */

/* The covered fields, from an unpacked request or from the scheduler's view
 * of the bytes: both must feed the MAC the same bytes. */
typedef struct areq_fields {
	gust_msg_str activation_id, namespace_, user, subject, action, version, code_key, kind,
	    main, binding, params, mac;
	bool binary, egress;
	int64_t memory_mb, timeout_ms, log_limit, concurrency;
} areq_fields;

static void put_u64(gust_sha256_ctx *c, uint64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
	gust_sha256_update(c, b, sizeof(b));
}

/* Each string as its length then its bytes: no two different field lists
 * encode alike ("ab","c" vs "a","bc"). */
static void put_str(gust_sha256_ctx *c, gust_msg_str s)
{
	put_u64(c, s.n);
	gust_sha256_update(c, s.p, s.n);
}

static void areq_mac(const gust_hmac_key *k, const areq_fields *f, uint8_t out[GUST_SHA256_LEN])
{
	static const char domain[] = "gust-areq-v1";
	gust_sha256_ctx c;
	gust_hmac_start(k, &c);
	gust_sha256_update(&c, domain, sizeof(domain)); /* with its NUL */
	put_str(&c, f->activation_id);
	put_str(&c, f->namespace_);
	put_str(&c, f->user);
	put_str(&c, f->subject);
	put_str(&c, f->action);
	put_str(&c, f->version);
	put_str(&c, f->code_key);
	put_str(&c, f->kind);
	put_str(&c, f->main);
	put_str(&c, f->binding);
	put_u64(&c, (uint64_t)f->binary << 1 | (uint64_t)f->egress);
	put_u64(&c, (uint64_t)f->memory_mb);
	put_u64(&c, (uint64_t)f->timeout_ms);
	put_u64(&c, (uint64_t)f->log_limit);
	put_u64(&c, (uint64_t)f->concurrency);
	/* last, as it is the long one: a megabyte costs ~1 ms with the CPU's
	 * SHA extensions (docs/scheduler.md), a warm invoke's ~1 us */
	put_str(&c, f->params);
	gust_hmac_finish(k, &c, out);
}

static gust_msg_str cstr(const char *s)
{
	return s ? (gust_msg_str){s, strlen(s)} : (gust_msg_str){"", 0};
}

static void fields_of_request(const Gust__ActivationRequest *q, areq_fields *f)
{
	*f = (areq_fields){
	    .activation_id = cstr(q->activation_id),
	    .namespace_ = cstr(q->namespace_),
	    .user = cstr(q->user),
	    .subject = cstr(q->subject),
	    .action = cstr(q->action),
	    .version = cstr(q->version),
	    .code_key = cstr(q->code_key),
	    .kind = cstr(q->kind),
	    .main = cstr(q->main),
	    .binding = cstr(q->binding),
	    .params = {q->params.data ? (const char *)q->params.data : "", q->params.len},
	    .mac = {q->mac.data ? (const char *)q->mac.data : "", q->mac.len},
	    .binary = q->binary != 0,
	    .egress = q->egress != 0,
	    .memory_mb = q->memory_mb,
	    .timeout_ms = q->timeout_ms,
	    .log_limit = q->log_limit,
	    .concurrency = q->concurrency,
	};
}

static void fields_of_head(const gust_request_head *h, areq_fields *f)
{
	*f = (areq_fields){
	    .activation_id = h->activation_id,
	    .namespace_ = h->namespace_,
	    .user = h->user,
	    .subject = h->subject,
	    .action = h->action,
	    .version = h->version,
	    .code_key = h->code_key,
	    .kind = h->kind,
	    .main = h->main,
	    .binding = h->binding,
	    .params = h->params,
	    .mac = h->mac,
	    .binary = h->binary,
	    .egress = h->egress,
	    .memory_mb = h->memory_mb,
	    .timeout_ms = h->timeout_ms,
	    .log_limit = h->log_limit,
	    .concurrency = h->concurrency,
	};
}

static int areq_check(const areq_fields *f)
{
	uint8_t m[GUST_SHA256_LEN];
	int rv = GUST_EAUTH;
	pthread_rwlock_rdlock(&ring_lock);
	if (!ring_have) {
		rv = GUST_EUNAVAIL;
	} else if (f->mac.n == GUST_SHA256_LEN) {
		areq_mac(&ring_cur, f, m);
		if (gust_ct_equal(m, f->mac.p, GUST_SHA256_LEN)) {
			rv = 0;
		} else if (ring_have_prev) {
			areq_mac(&ring_prev, f, m);
			if (gust_ct_equal(m, f->mac.p, GUST_SHA256_LEN))
				rv = 0;
		}
	}
	pthread_rwlock_unlock(&ring_lock);
	return rv;
}

int gust_areq_sign(Gust__ActivationRequest *q)
{
	areq_fields f;
	fields_of_request(q, &f);
	uint8_t *m = gust_xcalloc(1, GUST_SHA256_LEN);
	pthread_rwlock_rdlock(&ring_lock);
	bool have = ring_have;
	if (have)
		areq_mac(&ring_cur, &f, m);
	pthread_rwlock_unlock(&ring_lock);
	if (!have) {
		free(m);
		return GUST_EUNAVAIL;
	}
	free(q->mac.data);
	q->mac.data = m;
	q->mac.len = GUST_SHA256_LEN;
	return 0;
}

int gust_areq_verify(const Gust__ActivationRequest *q)
{
	areq_fields f;
	fields_of_request(q, &f);
	return areq_check(&f);
}

int gust_areq_verify_head(const gust_request_head *h)
{
	areq_fields f;
	fields_of_head(h, &f);
	return areq_check(&f);
}

int gust_areq_code_check(gust_msg_str ns, gust_msg_str user, gust_msg_str action,
                         gust_msg_str code_key, char *why, size_t whylen)
{
	static const char root[] = "/gust/code/";
	const size_t rl = sizeof(root) - 1;
	if (ns.n == 0 || memchr(ns.p, '/', ns.n) != NULL) {
		snprintf(why, whylen, "the request's namespace is not a namespace name");
		return GUST_EPERM;
	}
	/* "/gust/code/<ns>/" and something after it, exactly: namespace "a"
	 * must not load "/gust/code/ab/..." */
	if (code_key.n <= rl + ns.n + 1 || memcmp(code_key.p, root, rl) != 0 ||
	    memcmp(code_key.p + rl, ns.p, ns.n) != 0 || code_key.p[rl + ns.n] != '/') {
		snprintf(why, whylen, "code key %.*s does not belong to namespace %.*s",
		         (int)(code_key.n > 200 ? 200 : code_key.n), code_key.p,
		         (int)(ns.n > 100 ? 100 : ns.n), ns.p);
		return GUST_EPERM;
	}
	if (user.n == 0) {
		snprintf(why, whylen, "the request names no invoking namespace");
		return GUST_EPERM;
	}
	if ((user.n != ns.n || memcmp(user.p, ns.p, ns.n) != 0) &&
	    memchr(action.p, '/', action.n) == NULL) {
		snprintf(why, whylen,
		         "namespace %.*s may run another namespace's code only in a shared "
		         "package, and %.*s/%.*s is not in one",
		         (int)(user.n > 100 ? 100 : user.n), user.p, (int)(ns.n > 100 ? 100 : ns.n),
		         ns.p, (int)(action.n > 200 ? 200 : action.n), action.p);
		return GUST_EPERM;
	}
	return 0;
}

int gust_areq_code_check_str(const char *ns, const char *user, const char *action,
                             const char *code_key, char *why, size_t whylen)
{
	return gust_areq_code_check(cstr(ns), cstr(user), cstr(action), cstr(code_key), why,
	                            whylen);
}

char *gust_log_clean(char *dst, size_t cap, const char *p, size_t n)
{
	size_t o = 0;
	if (cap == 0)
		return dst;
	for (size_t i = 0; i < n && p != NULL && o + 1 < cap; i++) {
		unsigned char ch = (unsigned char)p[i];
		dst[o++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
	}
	dst[o] = '\0';
	return dst;
}

/* ---- the MAC of a journal entry ------------------------------------------- */

static void journal_mac(const gust_hmac_key *k, const char *aid, size_t aidn, const void *r,
                        size_t rn, uint8_t out[GUST_SHA256_LEN])
{
	static const char domain[] = "gust-journal-v1";
	gust_sha256_ctx c;
	gust_hmac_start(k, &c);
	gust_sha256_update(&c, domain, sizeof(domain));
	put_str(&c, (gust_msg_str){aid, aidn});
	put_str(&c, (gust_msg_str){r, rn});
	gust_hmac_finish(k, &c, out);
}

int gust_journal_mac_hex(const char *aid, size_t aidn, const void *r, size_t rn, char *out)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t m[GUST_SHA256_LEN];
	pthread_rwlock_rdlock(&ring_lock);
	bool have = ring_have;
	if (have)
		journal_mac(&ring_cur, aid, aidn, r, rn, m);
	pthread_rwlock_unlock(&ring_lock);
	if (!have)
		return GUST_EUNAVAIL;
	for (int i = 0; i < GUST_SHA256_LEN; i++) {
		out[2 * i] = hex[m[i] >> 4];
		out[2 * i + 1] = hex[m[i] & 15];
	}
	out[GUST_MAC_HEX_LEN] = '\0';
	return 0;
}

int gust_journal_verify(const char *aid, size_t aidn, const void *r, size_t rn, const char *h,
                        size_t hn)
{
	uint8_t want[GUST_SHA256_LEN], m[GUST_SHA256_LEN];
	if (h == NULL || hn != GUST_MAC_HEX_LEN || !unhex32(h, want))
		return GUST_EAUTH;
	int rv = GUST_EAUTH;
	pthread_rwlock_rdlock(&ring_lock);
	if (!ring_have) {
		rv = GUST_EUNAVAIL;
	} else {
		journal_mac(&ring_cur, aid, aidn, r, rn, m);
		if (gust_ct_equal(m, want, GUST_SHA256_LEN)) {
			rv = 0;
		} else if (ring_have_prev) {
			journal_mac(&ring_prev, aid, aidn, r, rn, m);
			if (gust_ct_equal(m, want, GUST_SHA256_LEN))
				rv = 0;
		}
	}
	pthread_rwlock_unlock(&ring_lock);
	return rv;
}
