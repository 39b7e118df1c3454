/* gw_tls.c - HTTPS on the gateway's own port.
 *
 * libmicrohttpd does the TLS (GnuTLS underneath). It could take the PEM
 * pair as strings (MHD_OPTION_HTTPS_MEM_CERT/KEY), but those are read once
 * at start: replacing a certificate would mean restarting the gateway and
 * dropping every connection. Instead MHD asks gw_tls_retrieve for the
 * certificate at each handshake (MHD_OPTION_HTTPS_CERT_CALLBACK), and that
 * returns whatever pair is current; SIGHUP loads the files again and makes
 * the new pair current. Connections already up keep the session they
 * negotiated. That callback API is GnuTLS's own (gnutls_pcert_st,
 * gnutls_privkey_t), which is why the gateway links GnuTLS directly.
 *
 * A pair handed to a handshake must stay valid for as long as GnuTLS may
 * look at it, which for a kept-alive connection is its whole life; a
 * replaced pair is therefore retired, not freed, until the gateway exits
 * (a few kilobytes per reload; reloads are an operator's action). */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "gateway.h"
#include "gust/log.h"
#include "gust/sha256.h"

/* The leaf and its issuing CAs; a longer chain is a wrong file. */
#define TLS_MAX_CHAIN 8
/* PEM files of a certificate chain or a key are a few kilobytes. */
#define TLS_MAX_FILE (1 << 20)

typedef struct tls_pair {
	struct tls_pair *retired; /* older pairs, kept until exit (see above) */
	gnutls_pcert_st chain[TLS_MAX_CHAIN];
	unsigned n;
	gnutls_privkey_t key;
	char fingerprint[2 * GUST_SHA256_LEN + 1]; /* SHA-256 of the leaf (DER) */
} tls_pair;

struct gw_tls {
	pthread_mutex_t lock;
	tls_pair *cur; /* the head of the list of pairs ever loaded */
	gust_metric *m_reloads, *m_reload_errors;
};

/* GnuTLS's callback takes no user pointer: one gateway per process. */
static gw_tls *tls_active;

static void pair_free(tls_pair *p)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->n; i++)
		gnutls_pcert_deinit(&p->chain[i]);
	if (p->key)
		gnutls_privkey_deinit(p->key);
	free(p);
}

/* Reads a whole file (at most TLS_MAX_FILE bytes) into d; datum_wipe
 * clears and frees it. */
static int tls_read(const char *path, const char *cfgkey, gnutls_datum_t *d, gust_error **err)
{
	d->data = NULL;
	d->size = 0;
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return gust_error_set(err, GUST_EINVAL, "config key '%s': %s: %s", cfgkey, path,
		                      strerror(errno));
	unsigned char *buf = gust_xmalloc(TLS_MAX_FILE + 1);
	size_t n = fread(buf, 1, TLS_MAX_FILE + 1, f);
	bool bad = ferror(f) != 0;
	fclose(f);
	if (bad || n == 0 || n > TLS_MAX_FILE) {
		explicit_bzero(buf, n > TLS_MAX_FILE ? TLS_MAX_FILE + 1 : n);
		free(buf);
		return gust_error_set(err, GUST_EINVAL, "config key '%s': %s: %s", cfgkey, path,
		                      bad      ? "read error"
		                      : n == 0 ? "empty"
		                               : "larger than 1 MiB");
	}
	d->data = buf;
	d->size = (unsigned)n;
	return 0;
}

static void datum_wipe(gnutls_datum_t *d)
{
	if (d->data) {
		explicit_bzero(d->data, d->size);
		free(d->data);
	}
	d->data = NULL;
	d->size = 0;
}

/* Whether the private key is the one the leaf certificate names: a mismatch
 * would fail every handshake, so it is refused at load instead. */
static bool tls_key_matches(tls_pair *p)
{
	gnutls_pubkey_t pub = NULL;
	gnutls_datum_t a = {0}, b = {0};
	bool ok = gnutls_pubkey_init(&pub) == 0 &&
	          gnutls_pubkey_import_privkey(pub, p->key, 0, 0) == 0 &&
	          gnutls_pubkey_export2(pub, GNUTLS_X509_FMT_DER, &a) == 0 &&
	          gnutls_pubkey_export2(p->chain[0].pubkey, GNUTLS_X509_FMT_DER, &b) == 0 &&
	          a.size == b.size && memcmp(a.data, b.data, a.size) == 0;
	gnutls_free(a.data);
	gnutls_free(b.data);
	if (pub)
		gnutls_pubkey_deinit(pub);
	return ok;
}

static int tls_load(gw *g, tls_pair **out, gust_error **err)
{
	*out = NULL;
	gnutls_datum_t cert = {0}, key = {0};
	int rv;
	if ((rv = tls_read(g->cfg.tls_cert_file, "tls_cert_file", &cert, err)) != 0)
		return rv;
	if ((rv = tls_read(g->cfg.tls_key_file, "tls_key_file", &key, err)) != 0) {
		datum_wipe(&cert);
		return rv;
	}
	struct stat st;
	if (stat(g->cfg.tls_key_file, &st) == 0 && (st.st_mode & 077) != 0)
		gust_log_warn("GW-TLS-KEYMODE",
		              "config key 'tls_key_file': %s is readable by group or others "
		              "(chmod 600 it)",
		              g->cfg.tls_key_file);
	tls_pair *p = gust_xcalloc(1, sizeof(*p));
	p->n = TLS_MAX_CHAIN;
	int gr = gnutls_pcert_list_import_x509_raw(p->chain, &p->n, &cert, GNUTLS_X509_FMT_PEM,
	                                           GNUTLS_X509_CRT_LIST_FAIL_IF_UNSORTED);
	if (gr < 0) {
		p->n = 0;
		rv = gust_error_set(err, GUST_EINVAL,
		                    "config key 'tls_cert_file': %s: not a PEM certificate chain "
		                    "(leaf first, at most %d certificates): %s",
		                    g->cfg.tls_cert_file, TLS_MAX_CHAIN, gnutls_strerror(gr));
		goto out;
	}
	if ((gr = gnutls_privkey_init(&p->key)) < 0 ||
	    (gr = gnutls_privkey_import_x509_raw(p->key, &key, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0) {
		/* The reason only: never a byte of the key. */
		rv = gust_error_set(err, GUST_EINVAL,
		                    "config key 'tls_key_file': %s: not an unencrypted PEM private "
		                    "key: %s",
		                    g->cfg.tls_key_file, gnutls_strerror(gr));
		goto out;
	}
	if (!tls_key_matches(p)) {
		rv = gust_error_set(err, GUST_EINVAL,
		                    "config keys 'tls_cert_file' and 'tls_key_file': the key in %s "
		                    "is not the key of the first certificate in %s",
		                    g->cfg.tls_key_file, g->cfg.tls_cert_file);
		goto out;
	}
	uint8_t h[GUST_SHA256_LEN];
	gust_sha256_digest(p->chain[0].cert.data, p->chain[0].cert.size, h);
	for (int i = 0; i < GUST_SHA256_LEN; i++)
		snprintf(p->fingerprint + 2 * i, 3, "%02x", h[i]);
	*out = p;
	p = NULL;
	rv = 0;
out:
	pair_free(p);
	datum_wipe(&cert);
	datum_wipe(&key);
	return rv;
}

static int gw_tls_retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_rdn, int nreqs,
                           const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                           gnutls_pcert_st **pcert, unsigned int *pcert_length,
                           gnutls_privkey_t *privkey)
{
	gw_tls *t = tls_active;
	if (t == NULL)
		return -1;
	pthread_mutex_lock(&t->lock);
	tls_pair *p = t->cur;
	pthread_mutex_unlock(&t->lock);
	*pcert = p->chain;
	*pcert_length = p->n;
	*privkey = p->key;
	return 0;
}

void *gw_tls_mhd_callback(void)
{
	return (void *)gw_tls_retrieve;
}

int gw_tls_start(gw *g, gust_error **err)
{
	if (!gw_tls_on(g))
		return 0;
	if (!MHD_is_feature_supported(MHD_FEATURE_TLS) ||
	    !MHD_is_feature_supported(MHD_FEATURE_HTTPS_CERT_CALLBACK))
		return gust_error_set(err, GUST_ENOTSUP,
		                      "config key 'tls_cert_file': this libmicrohttpd was built "
		                      "without HTTPS (or without its certificate callback)");
	tls_pair *p;
	int rv = tls_load(g, &p, err);
	if (rv != 0)
		return rv;
	gw_tls *t = g->tls = gust_xcalloc(1, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->cur = p;
	t->m_reloads = gust_counter_new("gust_tls_reloads_total",
	                                "certificate reloads (SIGHUP) that took effect", NULL);
	t->m_reload_errors =
	    gust_counter_new("gust_tls_reload_errors_total",
	                     "certificate reloads refused (the old pair stays)", NULL);
	tls_active = t;
	gust_log_info("GW-TLS", "HTTPS with %s (%u certificates, leaf sha256 %s)",
	              g->cfg.tls_cert_file, p->n, p->fingerprint);
	return 0;
}

void gw_tls_reload(gw *g)
{
	gw_tls *t = g->tls;
	if (t == NULL)
		return;
	gust_error *err = NULL;
	tls_pair *p;
	if (tls_load(g, &p, &err) != 0) {
		gust_log_error("GW-TLS-RELOAD", "SIGHUP: keeping the current certificate: %s",
		               gust_error_msg(err));
		gust_error_free(err);
		gust_counter_add(t->m_reload_errors, 1);
		return;
	}
	pthread_mutex_lock(&t->lock);
	p->retired = t->cur;
	t->cur = p;
	pthread_mutex_unlock(&t->lock);
	gust_counter_add(t->m_reloads, 1);
	gust_log_info("GW-TLS-RELOADED",
	              "SIGHUP: new handshakes get %s (leaf sha256 %s); open connections keep "
	              "theirs",
	              g->cfg.tls_cert_file, p->fingerprint);
}

/* After MHD stopped: no handshake can still look at a pair. */
void gw_tls_stop(gw *g)
{
	gw_tls *t = g->tls;
	if (t == NULL)
		return;
	tls_active = NULL;
	for (tls_pair *p = t->cur, *next; p != NULL; p = next) {
		next = p->retired;
		pair_free(p);
	}
	pthread_mutex_destroy(&t->lock);
	free(t);
	g->tls = NULL;
}
