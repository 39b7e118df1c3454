/*
 * etcd.c - the etcd v3 client: endpoints, the curl handle pool, unary calls
 * against the JSON gateway (kv, txn, lease) and their answers.
 *
 * Watches live in etcd_watch.c, the lease keeper in etcd_lease.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_internal.h"
#include "gust/log.h"
#include "gust/util.h"

/* Handles beyond this many are freed on return instead of kept: enough for the
 * few threads of a daemon that talk to etcd at once. */
#define ETCD_POOL_MAX 8

struct gust_etcd {
	char **endpoints;
	size_t nendpoints;
	atomic_size_t preferred;
	pthread_mutex_t mu;
	bool mu_init;
	CURL *pool[ETCD_POOL_MAX];
	size_t npool;
	/* Credentials, copied at open and never changed; the token is under amu. */
	char *ca, *cert, *key, *user, *password;
	char *token;
	pthread_mutex_t amu; /* one authentication at a time; guards token */
};

/* The process's credentials, copied into each handle at open. */
static pthread_mutex_t etcd_cred_mu = PTHREAD_MUTEX_INITIALIZER;
static char *etcd_cred_ca, *etcd_cred_cert, *etcd_cred_key, *etcd_cred_user, *etcd_cred_pw;

static void etcd_free_secret(char **p)
{
	if (*p != NULL) {
		explicit_bzero(*p, strlen(*p));
		free(*p);
		*p = NULL;
	}
}

static char *etcd_dup_or_null(const char *s)
{
	return s != NULL && *s != 0 ? gust_xstrdup(s) : NULL;
}

void gust_etcd_set_credentials(const gust_etcd_credentials *c)
{
	pthread_mutex_lock(&etcd_cred_mu);
	free(etcd_cred_ca);
	free(etcd_cred_cert);
	free(etcd_cred_key);
	free(etcd_cred_user);
	etcd_free_secret(&etcd_cred_pw);
	etcd_cred_ca = c ? etcd_dup_or_null(c->ca) : NULL;
	etcd_cred_cert = c ? etcd_dup_or_null(c->cert) : NULL;
	etcd_cred_key = c ? etcd_dup_or_null(c->key) : NULL;
	etcd_cred_user = c ? etcd_dup_or_null(c->user) : NULL;
	etcd_cred_pw = c && c->password ? gust_xstrdup(c->password) : NULL;
	pthread_mutex_unlock(&etcd_cred_mu);
}

static pthread_once_t etcd_curl_once = PTHREAD_ONCE_INIT;
static CURLcode etcd_curl_init_rv;

static void etcd_curl_global_init(void)
{
	etcd_curl_init_rv = curl_global_init(CURL_GLOBAL_DEFAULT);
}

size_t etcd_endpoint_count(gust_etcd *e)
{
	return e->nendpoints;
}

const char *etcd_endpoint(gust_etcd *e, size_t i)
{
	return e->endpoints[i % e->nendpoints];
}

size_t etcd_endpoint_preferred(gust_etcd *e)
{
	return atomic_load(&e->preferred);
}

void etcd_endpoint_prefer(gust_etcd *e, size_t i)
{
	atomic_store(&e->preferred, i % e->nendpoints);
}

int gust_etcd_open(gust_etcd **ep, const char *endpoints, gust_error **err)
{
	*ep = NULL;
	pthread_once(&etcd_curl_once, etcd_curl_global_init);
	if (etcd_curl_init_rv != CURLE_OK)
		return gust_error_set(err, GUST_EINTERNAL, "etcd: curl_global_init: %s",
		                      curl_easy_strerror(etcd_curl_init_rv));
	if (endpoints == NULL || *endpoints == 0)
		return gust_error_set(err, GUST_EINVAL, "etcd: no endpoints given");

	gust_etcd *e = gust_xcalloc(1, sizeof(*e));
	cleanup_free char *copy = gust_xstrdup(endpoints);
	char *save = NULL;
	for (char *tok = strtok_r(copy, ",", &save); tok != NULL;
	     tok = strtok_r(NULL, ",", &save)) {
		while (*tok == ' ' || *tok == '\t')
			tok++;
		size_t n = strlen(tok);
		while (n > 0 && (tok[n - 1] == ' ' || tok[n - 1] == '\t' || tok[n - 1] == '/'))
			n--;
		if (n == 0)
			continue;
		if (strncmp(tok, "http://", 7) != 0 && strncmp(tok, "https://", 8) != 0) {
			gust_etcd_close(e);
			return gust_error_set(err, GUST_EINVAL,
			                      "etcd: endpoint \"%.*s\" is not an http(s):// URL",
			                      (int)n, tok);
		}
		e->endpoints =
		    gust_xrealloc(e->endpoints, (e->nendpoints + 1) * sizeof(*e->endpoints));
		e->endpoints[e->nendpoints++] = gust_xstrndup(tok, n);
	}
	if (e->nendpoints == 0) {
		gust_etcd_close(e);
		return gust_error_set(err, GUST_EINVAL, "etcd: no endpoints in \"%s\"", endpoints);
	}
	if (pthread_mutex_init(&e->mu, NULL) != 0) {
		gust_etcd_close(e);
		return gust_error_set(err, GUST_EINTERNAL, "etcd: pthread_mutex_init failed");
	}
	e->mu_init = true;
	pthread_mutex_init(&e->amu, NULL);
	pthread_mutex_lock(&etcd_cred_mu);
	e->ca = etcd_dup_or_null(etcd_cred_ca);
	e->cert = etcd_dup_or_null(etcd_cred_cert);
	e->key = etcd_dup_or_null(etcd_cred_key);
	e->user = etcd_dup_or_null(etcd_cred_user);
	e->password = etcd_cred_pw ? gust_xstrdup(etcd_cred_pw) : NULL;
	pthread_mutex_unlock(&etcd_cred_mu);
	*ep = e;
	return 0;
}

void gust_etcd_close(gust_etcd *e)
{
	if (e == NULL)
		return;
	for (size_t i = 0; i < e->npool; i++)
		curl_easy_cleanup(e->pool[i]);
	for (size_t i = 0; i < e->nendpoints; i++)
		free(e->endpoints[i]);
	free(e->endpoints);
	free(e->ca);
	free(e->cert);
	free(e->key);
	free(e->user);
	etcd_free_secret(&e->password);
	etcd_free_secret(&e->token);
	if (e->mu_init) {
		pthread_mutex_destroy(&e->mu);
		pthread_mutex_destroy(&e->amu);
	}
	free(e);
}

static CURL *etcd_borrow(gust_etcd *e)
{
	CURL *c = NULL;
	pthread_mutex_lock(&e->mu);
	if (e->npool > 0)
		c = e->pool[--e->npool];
	pthread_mutex_unlock(&e->mu);
	if (c == NULL)
		c = curl_easy_init();
	return c;
}

static void etcd_return(gust_etcd *e, CURL *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&e->mu);
	if (e->npool < ETCD_POOL_MAX) {
		e->pool[e->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&e->mu);
	if (c != NULL)
		curl_easy_cleanup(c);
}

static size_t etcd_write_cb(char *p, size_t size, size_t nmemb, void *arg)
{
	gust_buf_append(arg, p, size * nmemb);
	return size * nmemb;
}

/* Failures where the request never reached etcd, so another endpoint may be tried
 * without risking a write applied twice. */
static bool etcd_curl_unreached(CURLcode rc)
{
	return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST ||
	       rc == CURLE_COULDNT_RESOLVE_PROXY;
}

/* The gateway's error body carries a gRPC code. */
static int etcd_grpc_to_gust(int64_t code)
{
	switch (code) {
	case 3:  /* INVALID_ARGUMENT */
	case 11: /* OUT_OF_RANGE: e.g. a revision that is compacted or in the future */
		return GUST_EINVAL;
	case 5: /* NOT_FOUND */
		return GUST_ENOENT;
	case 4: /* DEADLINE_EXCEEDED */
		return GUST_ETIMEDOUT;
	case 6: /* ALREADY_EXISTS */
		return GUST_EEXIST;
	case 8: /* RESOURCE_EXHAUSTED */
		return GUST_EBUSY;
	case 9:  /* FAILED_PRECONDITION */
	case 10: /* ABORTED */
		return GUST_ECONFLICT;
	case 14: /* UNAVAILABLE: no leader, stopping */
		return GUST_EUNAVAIL;
	case 7:
	case 16:
		return GUST_EPERM;
	default:
		return GUST_EPROTO;
	}
}

/*
 * POSTs body to path on the first endpoint that accepts a connection, starting
 * with the one that answered last. On success *resp holds the parsed answer
 * (caller owns it). what ("put /gust/x") prefixes every error message.
 */
static int etcd_call_raw(gust_etcd *e, const char *path, const char *body, const char *token,
                         json_t **resp, const char *what, gust_error **err)
{
	*resp = NULL;
	struct curl_slist *hdrs = NULL;
	if (token != NULL) {
		cleanup_free char *h = gust_xasprintf("Authorization: %s", token);
		hdrs = curl_slist_append(NULL, h);
		if (hdrs == NULL)
			return gust_error_set(err, GUST_ENOMEM, "etcd %s: curl_slist_append", what);
	}
	CURL *c = etcd_borrow(e);
	if (c == NULL) {
		curl_slist_free_all(hdrs);
		return gust_error_set(err, GUST_ENOMEM, "etcd %s: curl_easy_init failed", what);
	}

	gust_buf out = {0};
	gust_buf tried = {0};
	char errbuf[CURL_ERROR_SIZE];
	size_t first = etcd_endpoint_preferred(e);
	int rv = GUST_EUNAVAIL;
	long status = 0;
	bool answered = false;

	for (size_t k = 0; k < e->nendpoints && !answered; k++) {
		size_t idx = (first + k) % e->nendpoints;
		cleanup_free char *url = gust_xasprintf("%s%s", e->endpoints[idx], path);
		curl_easy_reset(c);
		errbuf[0] = 0;
		gust_buf_reset(&out);
		curl_easy_setopt(c, CURLOPT_URL, url);
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, etcd_write_cb);
		curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
		curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
		curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
		curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, ETCD_CONNECT_TIMEOUT_MS);
		curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, ETCD_TOTAL_TIMEOUT_MS);
		curl_easy_setopt(c, CURLOPT_TCP_NODELAY, 1L);
		curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
		/* No proxy from the environment: etcd is always reached directly. */
		curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
		etcd_curl_tls(e, c);
		if (hdrs != NULL)
			curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);

		CURLcode rc = curl_easy_perform(c);
		if (rc == CURLE_OK) {
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
			etcd_endpoint_prefer(e, idx);
			answered = true;
			break;
		}
		const char *why = errbuf[0] ? errbuf : curl_easy_strerror(rc);
		gust_buf_printf(&tried, "%s%s: %s", tried.len ? "; " : "", e->endpoints[idx], why);
		if (!etcd_curl_unreached(rc)) {
			/* It may have reached etcd: do not replay it elsewhere. */
			rv = rc == CURLE_OPERATION_TIMEDOUT ? GUST_ETIMEDOUT : GUST_EUNAVAIL;
			break;
		}
	}
	etcd_return(e, c);
	curl_slist_free_all(hdrs);

	if (!answered) {
		gust_error_set(err, rv, "etcd %s: %s", what,
		               tried.len ? tried.data : "no endpoint");
		gust_buf_free(&out);
		gust_buf_free(&tried);
		return rv;
	}
	gust_buf_free(&tried);

	json_error_t jerr;
	json_t *j = json_loadb(out.data ? out.data : "", out.len, 0, &jerr);
	if (j == NULL || !json_is_object(j)) {
		rv =
		    gust_error_set(err, GUST_EPROTO, "etcd %s: HTTP %ld, unparsable answer: %.200s",
		                   what, status, out.data ? out.data : "");
		json_decref(j);
		gust_buf_free(&out);
		return rv;
	}
	gust_buf_free(&out);
	if (status != 200 || json_object_get(j, "error") != NULL) {
		json_t *m = json_object_get(j, "message");
		if (m == NULL)
			m = json_object_get(j, "error");
		int code = etcd_grpc_to_gust(json_integer_value(json_object_get(j, "code")));
		rv = gust_error_set(err, code, "etcd %s: %s (HTTP %ld)", what,
		                    json_is_string(m) ? json_string_value(m) : "error", status);
		json_decref(j);
		return rv;
	}
	*resp = j;
	return 0;
}

void etcd_curl_tls(gust_etcd *e, CURL *c)
{
	/* Fields set at open and never changed: no lock. Peer and host checks
	 * stay on (libcurl's default). */
	if (e->ca != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, e->ca);
	if (e->cert != NULL)
		curl_easy_setopt(c, CURLOPT_SSLCERT, e->cert);
	if (e->key != NULL)
		curl_easy_setopt(c, CURLOPT_SSLKEY, e->key);
}

bool etcd_token_refused(const char *msg)
{
	/* etcd's words (auth/store.go): a simple token expires after
	 * --auth-token-ttl idle seconds or at a restart, and every token is
	 * refused once the auth store changed (a role granted, a user added). */
	return msg != NULL && (strstr(msg, "invalid auth token") != NULL ||
	                       strstr(msg, "revision of auth store is old") != NULL);
}

int etcd_token(gust_etcd *e, const char *stale, char **out, gust_error **err)
{
	*out = NULL;
	if (e->user == NULL)
		return 0;
	pthread_mutex_lock(&e->amu);
	if (e->token != NULL && (stale == NULL || strcmp(e->token, stale) != 0)) {
		*out = gust_xstrdup(e->token);
		pthread_mutex_unlock(&e->amu);
		return 0;
	}
	json_t *req =
	    json_pack("{s:s, s:s}", "name", e->user, "password", e->password ? e->password : "");
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	json_decref(req);
	if (body == NULL) {
		pthread_mutex_unlock(&e->amu);
		return gust_error_set(err, GUST_ENOMEM, "etcd authenticate: cannot encode");
	}
	json_t *resp = NULL;
	cleanup_free char *what = gust_xasprintf("authenticate as %s", e->user);
	int rv = etcd_call_raw(e, "/v3/auth/authenticate", body, NULL, &resp, what, err);
	explicit_bzero(body, strlen(body));
	free(body);
	if (rv == 0) {
		json_t *t = json_object_get(resp, "token");
		if (!json_is_string(t) || json_string_length(t) == 0 ||
		    strpbrk(json_string_value(t), "\r\n") != NULL) {
			rv = gust_error_set(err, GUST_EPROTO, "etcd %s: no token in the answer",
			                    what);
		} else {
			etcd_free_secret(&e->token);
			e->token = gust_xstrdup(json_string_value(t));
			*out = gust_xstrdup(e->token);
		}
	} else if (rv == GUST_EINVAL || rv == GUST_EPERM) {
		/* etcd says "authentication failed, invalid user ID or password"
		 * as INVALID_ARGUMENT. */
		rv = gust_error_set(err, GUST_EAUTH, "etcd refuses the credentials of user %s",
		                    e->user);
	}
	json_decref(resp);
	pthread_mutex_unlock(&e->amu);
	return rv;
}

/* A call with the handle's token; a token etcd refuses is renewed once. */
static int etcd_call(gust_etcd *e, const char *path, const char *body, json_t **resp,
                     const char *what, gust_error **err)
{
	cleanup_free char *stale = NULL;
	for (int attempt = 0;; attempt++) {
		char *tok = NULL;
		int rv = etcd_token(e, stale, &tok, err);
		if (rv != 0)
			return rv;
		gust_error *ce = NULL;
		rv = etcd_call_raw(e, path, body, tok, resp, what, &ce);
		if (rv != 0 && tok != NULL && attempt == 0 &&
		    etcd_token_refused(gust_error_msg(ce))) {
			gust_error_free(ce);
			free(stale);
			stale = tok;
			continue;
		}
		if (tok != NULL) {
			explicit_bzero(tok, strlen(tok));
			free(tok);
		}
		if (ce != NULL) {
			if (err != NULL)
				*err = ce;
			else
				gust_error_free(ce);
		}
		return rv;
	}
}

int64_t etcd_json_i64(json_t *obj, const char *field)
{
	json_t *v = json_object_get(obj, field);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return (int64_t)strtoll(json_string_value(v), NULL, 10);
	return 0;
}

static int64_t etcd_header_rev(json_t *resp)
{
	return etcd_json_i64(json_object_get(resp, "header"), "revision");
}

void gust_kv_clear(gust_kv *kv)
{
	if (kv == NULL)
		return;
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

void gust_kvs_free(gust_kvs *kvs)
{
	if (kvs == NULL)
		return;
	for (size_t i = 0; i < kvs->n; i++)
		gust_kv_clear(&kvs->kvs[i]);
	free(kvs->kvs);
	memset(kvs, 0, sizeof(*kvs));
}

/* Decodes a base64 field; an absent one is empty (proto3 omits empty bytes). */
static int etcd_b64_field(json_t *j, const char *field, char **out, size_t *outlen)
{
	json_t *v = json_object_get(j, field);
	const char *s = json_is_string(v) ? json_string_value(v) : "";
	size_t n = 0;
	char *d = gust_b64_decode(s, strlen(s), &n);
	if (d == NULL)
		return GUST_EPROTO;
	*out = d;
	if (outlen != NULL)
		*outlen = n;
	return 0;
}

int etcd_kv_from_json(json_t *j, gust_kv *kv)
{
	memset(kv, 0, sizeof(*kv));
	if (!json_is_object(j))
		return GUST_EPROTO;
	if (etcd_b64_field(j, "key", &kv->key, NULL) != 0 ||
	    etcd_b64_field(j, "value", &kv->value, &kv->value_len) != 0) {
		gust_kv_clear(kv);
		return GUST_EPROTO;
	}
	kv->create_revision = etcd_json_i64(j, "create_revision");
	kv->mod_revision = etcd_json_i64(j, "mod_revision");
	kv->version = etcd_json_i64(j, "version");
	kv->lease = etcd_json_i64(j, "lease");
	return 0;
}

char *etcd_prefix_end_b64(const char *prefix)
{
	size_t n = strlen(prefix);
	cleanup_free unsigned char *end = (unsigned char *)gust_xstrndup(prefix, n);
	/* Drop trailing 0xff bytes: they cannot be incremented. */
	while (n > 0 && end[n - 1] == 0xff)
		n--;
	if (n == 0)
		return gust_b64_encode("", 1); /* "\0": to the end of the keyspace */
	end[n - 1]++;
	return gust_b64_encode(end, n);
}

/* Builds {"key":b64(key)} plus the prefix's range_end when asked. */
static json_t *etcd_key_req(const char *key, bool prefix)
{
	cleanup_free char *k64 = gust_b64_encode(key, strlen(key));
	json_t *req = json_pack("{s:s}", "key", k64);
	if (prefix) {
		cleanup_free char *end = etcd_prefix_end_b64(key);
		json_object_set_new(req, "range_end", json_string(end));
	}
	return req;
}

static void etcd_set_i64(json_t *obj, const char *field, int64_t v)
{
	char s[24];
	snprintf(s, sizeof(s), "%" PRId64, v);
	json_object_set_new(obj, field, json_string(s));
}

/* Sends req (consumed) to path; *resp as for etcd_call. */
static int etcd_call_json(gust_etcd *e, const char *path, json_t *req, json_t **resp,
                          const char *what, gust_error **err)
{
	cleanup_free char *body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (body == NULL)
		return gust_error_set(err, GUST_ENOMEM, "etcd %s: cannot encode the request", what);
	return etcd_call(e, path, body, resp, what, err);
}

static bool etcd_key_ok(const char *key)
{
	return key != NULL && *key != 0;
}

int gust_etcd_put(gust_etcd *e, const char *key, const void *value, size_t value_len, int64_t lease,
                  int64_t *rev, gust_error **err)
{
	if (!etcd_key_ok(key) || (value == NULL && value_len > 0))
		return gust_error_set(err, GUST_EINVAL, "etcd put: empty key or NULL value");
	cleanup_free char *what = gust_xasprintf("put %s", key);
	cleanup_free char *v64 = gust_b64_encode(value, value_len);
	json_t *req = etcd_key_req(key, false);
	json_object_set_new(req, "value", json_string(v64));
	if (lease != 0)
		etcd_set_i64(req, "lease", lease);
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/kv/put", req, &resp, what, err)) != 0)
		return rv;
	if (rev != NULL)
		*rev = etcd_header_rev(resp);
	json_decref(resp);
	return 0;
}

/* Parses a range answer into out. */
static int etcd_parse_range(json_t *resp, gust_kvs *out, const char *what, gust_error **err)
{
	memset(out, 0, sizeof(*out));
	out->revision = etcd_header_rev(resp);
	out->more = json_is_true(json_object_get(resp, "more"));
	json_t *arr = json_object_get(resp, "kvs");
	if (arr == NULL)
		return 0;
	if (!json_is_array(arr))
		return gust_error_set(err, GUST_EPROTO, "etcd %s: \"kvs\" is not an array", what);
	out->kvs = gust_xcalloc(json_array_size(arr), sizeof(*out->kvs));
	size_t i;
	json_t *j;
	json_array_foreach(arr, i, j)
	{
		if (etcd_kv_from_json(j, &out->kvs[out->n]) != 0) {
			gust_kvs_free(out);
			return gust_error_set(err, GUST_EPROTO, "etcd %s: malformed kv in answer",
			                      what);
		}
		out->n++;
	}
	return 0;
}

int gust_etcd_get(gust_etcd *e, const char *key, gust_kv *kv, gust_error **err)
{
	memset(kv, 0, sizeof(*kv));
	if (!etcd_key_ok(key))
		return gust_error_set(err, GUST_EINVAL, "etcd get: empty key");
	cleanup_free char *what = gust_xasprintf("get %s", key);
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/kv/range", etcd_key_req(key, false), &resp, what, err)) !=
	    0)
		return rv;
	gust_kvs kvs;
	rv = etcd_parse_range(resp, &kvs, what, err);
	json_decref(resp);
	if (rv != 0)
		return rv;
	if (kvs.n == 0) {
		gust_kvs_free(&kvs);
		return gust_error_set(err, GUST_ENOENT, "etcd %s: no such key", what);
	}
	*kv = kvs.kvs[0];
	memset(&kvs.kvs[0], 0, sizeof(kvs.kvs[0]));
	gust_kvs_free(&kvs);
	return 0;
}

int gust_etcd_range_prefix(gust_etcd *e, const char *prefix, int64_t limit, gust_kvs *out,
                           gust_error **err)
{
	memset(out, 0, sizeof(*out));
	if (prefix == NULL || limit < 0)
		return gust_error_set(err, GUST_EINVAL,
		                      "etcd range: NULL prefix or negative limit");
	cleanup_free char *what = gust_xasprintf("range %s", prefix);
	json_t *req;
	if (*prefix == 0) {
		/* Every key: key "\0" with range_end "\0" means ">= key" in etcd. */
		req = json_pack("{s:s, s:s}", "key", "AA==", "range_end", "AA==");
	} else {
		req = etcd_key_req(prefix, true);
	}
	if (limit > 0)
		etcd_set_i64(req, "limit", limit);
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/kv/range", req, &resp, what, err)) != 0)
		return rv;
	rv = etcd_parse_range(resp, out, what, err);
	json_decref(resp);
	return rv;
}

int gust_etcd_delete(gust_etcd *e, const char *key, bool prefix, int64_t *ndeleted,
                     gust_error **err)
{
	if (!etcd_key_ok(key))
		return gust_error_set(err, GUST_EINVAL, "etcd delete: empty key");
	cleanup_free char *what = gust_xasprintf("delete %s%s", key, prefix ? "*" : "");
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/kv/deleterange", etcd_key_req(key, prefix), &resp, what,
	                         err)) != 0)
		return rv;
	if (ndeleted != NULL)
		*ndeleted = etcd_json_i64(resp, "deleted");
	json_decref(resp);
	return 0;
}

int gust_etcd_compact(gust_etcd *e, int64_t rev, gust_error **err)
{
	if (rev <= 0)
		return gust_error_set(err, GUST_EINVAL, "etcd compact: revision %lld",
		                      (long long)rev);
	cleanup_free char *what = gust_xasprintf("compact to %lld", (long long)rev);
	json_t *req = json_object();
	etcd_set_i64(req, "revision", rev);
	json_t *resp;
	gust_error *e2 = NULL;
	int rv = etcd_call_json(e, "/v3/kv/compaction", req, &resp, what, &e2);
	if (rv == GUST_EINVAL && e2 && strstr(gust_error_msg(e2), "compacted") != NULL) {
		gust_error_free(e2);
		return 0;
	}
	if (rv != 0) {
		if (err)
			*err = e2;
		else
			gust_error_free(e2);
		return rv;
	}
	json_decref(resp);
	return 0;
}

/* A txn: if key's mod_revision == expect_mod_rev then op (consumed). */
static int etcd_txn_if_mod(gust_etcd *e, const char *key, int64_t expect_mod_rev, json_t *op,
                           int64_t *rev, const char *what, gust_error **err)
{
	cleanup_free char *k64 = gust_b64_encode(key, strlen(key));
	json_t *cmp = json_pack("{s:s, s:s, s:s}", "key", k64, "target", "MOD", "result", "EQUAL");
	etcd_set_i64(cmp, "mod_revision", expect_mod_rev);
	json_t *req = json_pack("{s:[o], s:[o]}", "compare", cmp, "success", op);
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/kv/txn", req, &resp, what, err)) != 0)
		return rv;
	bool ok = json_is_true(json_object_get(resp, "succeeded"));
	if (rev != NULL)
		*rev = etcd_header_rev(resp);
	json_decref(resp);
	if (!ok)
		return gust_error_set(
		    err, GUST_ECONFLICT, "etcd %s: mod_revision is not %" PRId64 " (%s)", what,
		    expect_mod_rev, expect_mod_rev == 0 ? "the key exists" : "changed or deleted");
	return 0;
}

int gust_etcd_cas(gust_etcd *e, const char *key, int64_t expect_mod_rev, const void *value,
                  size_t value_len, int64_t lease, int64_t *rev, gust_error **err)
{
	if (!etcd_key_ok(key) || expect_mod_rev < 0 || (value == NULL && value_len > 0))
		return gust_error_set(err, GUST_EINVAL, "etcd cas: bad key, value or revision");
	cleanup_free char *what = gust_xasprintf("cas %s", key);
	cleanup_free char *v64 = gust_b64_encode(value, value_len);
	json_t *put = etcd_key_req(key, false);
	json_object_set_new(put, "value", json_string(v64));
	if (lease != 0)
		etcd_set_i64(put, "lease", lease);
	return etcd_txn_if_mod(e, key, expect_mod_rev, json_pack("{s:o}", "request_put", put), rev,
	                       what, err);
}

int gust_etcd_cas_delete(gust_etcd *e, const char *key, int64_t expect_mod_rev, gust_error **err)
{
	if (!etcd_key_ok(key) || expect_mod_rev <= 0)
		return gust_error_set(err, GUST_EINVAL, "etcd cas_delete: bad key or revision");
	cleanup_free char *what = gust_xasprintf("cas_delete %s", key);
	json_t *del = etcd_key_req(key, false);
	return etcd_txn_if_mod(e, key, expect_mod_rev,
	                       json_pack("{s:o}", "request_delete_range", del), NULL, what, err);
}

int gust_etcd_lease_grant(gust_etcd *e, int64_t ttl_s, int64_t *lease, gust_error **err)
{
	if (ttl_s <= 0 || lease == NULL)
		return gust_error_set(err, GUST_EINVAL, "etcd lease grant: ttl must be > 0");
	json_t *req = json_object();
	etcd_set_i64(req, "TTL", ttl_s);
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/lease/grant", req, &resp, "lease grant", err)) != 0)
		return rv;
	*lease = etcd_json_i64(resp, "ID");
	json_decref(resp);
	if (*lease == 0)
		return gust_error_set(err, GUST_EPROTO, "etcd lease grant: no ID in the answer");
	return 0;
}

int gust_etcd_lease_keepalive(gust_etcd *e, int64_t lease, int64_t *ttl_left, gust_error **err)
{
	cleanup_free char *what = gust_xasprintf("lease keepalive %" PRId64, lease);
	json_t *req = json_object();
	etcd_set_i64(req, "ID", lease);
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/lease/keepalive", req, &resp, what, err)) != 0)
		return rv;
	/* The gateway streams: one {"result": ...} per request. A lease that is gone
	 * answers with no TTL (proto3 drops the 0). */
	json_t *res = json_object_get(resp, "result");
	int64_t ttl = etcd_json_i64(res != NULL ? res : resp, "TTL");
	json_decref(resp);
	if (ttl <= 0)
		return gust_error_set(err, GUST_ENOENT, "etcd %s: lease not found", what);
	if (ttl_left != NULL)
		*ttl_left = ttl;
	return 0;
}

int gust_etcd_lease_revoke(gust_etcd *e, int64_t lease, gust_error **err)
{
	cleanup_free char *what = gust_xasprintf("lease revoke %" PRId64, lease);
	json_t *req = json_object();
	etcd_set_i64(req, "ID", lease);
	json_t *resp;
	int rv;
	if ((rv = etcd_call_json(e, "/v3/lease/revoke", req, &resp, what, err)) != 0)
		return rv;
	json_decref(resp);
	return 0;
}

int gust_etcd_member_urls(gust_etcd *e, char ***urls, size_t *n, gust_error **err)
{
	*urls = NULL;
	*n = 0;
	json_t *resp = NULL;
	int rv = etcd_call(e, "/v3/cluster/member/list", "{}", &resp, "member list", err);
	if (rv != 0)
		return rv;
	static const char *const kinds[] = {"clientURLs", "peerURLs"};
	size_t i, j;
	json_t *m, *u;
	json_array_foreach(json_object_get(resp, "members"), i, m)
	{
		for (int k = 0; k < 2; k++) {
			json_array_foreach(json_object_get(m, kinds[k]), j, u)
			{
				if (!json_is_string(u))
					continue;
				*urls = gust_xrealloc(*urls, (*n + 1) * sizeof(**urls));
				(*urls)[(*n)++] = gust_xstrdup(json_string_value(u));
			}
		}
	}
	json_decref(resp);
	return 0;
}
