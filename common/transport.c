/* transport.c - mutual TLS on the nng sockets between daemons (see
 * gust/transport.h for the model: one issuing CA per role, a listener trusts
 * only the CAs of the roles that may connect to it). */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/pk.h>
#include <mbedtls/x509_crt.h>
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/transport.h"
#include "gust/util.h"

/* Largest certificate, key or CA file we read: a chain of a few PEM
 * certificates is a few KB; this only bounds a wrong path (a log file). */
#define TRANSPORT_MAX_FILE (256 * 1024)

static const char *const role_names[GUST_NROLES] = {"gateway", "scheduler", "invoker", "trigger"};

struct gust_transport {
	bool insecure;
	bool tls;
	char *cert_pem;
	char *key_pem; /* wiped on close */
	size_t key_len;
	char *ca_pem[GUST_NROLES];
	char *ca_dir;
	pthread_mutex_t lock;
	/* Made on first use and shared: a dialer or listener takes its own
	 * hold. client[i]: dialing role i; server[mask]: accepting mask. */
	nng_tls_config *client[GUST_NROLES];
	nng_tls_config *server[1u << GUST_NROLES];
};

const char *gust_role_name(unsigned role)
{
	for (int i = 0; i < GUST_NROLES; i++)
		if (role == 1u << i)
			return role_names[i];
	return "?";
}

static int role_index(unsigned role)
{
	for (int i = 0; i < GUST_NROLES; i++)
		if (role == 1u << i)
			return i;
	return -1;
}

int gust_roles_parse(const char *list, const char *key, unsigned *out, gust_error **err)
{
	unsigned m = 0;
	const char *p = list;
	while (*p) {
		const char *e = strchr(p, ',');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		int i = 0;
		while (i < GUST_NROLES &&
		       !(strlen(role_names[i]) == n && strncmp(role_names[i], p, n) == 0))
			i++;
		if (i == GUST_NROLES)
			return gust_error_set(err, GUST_EINVAL,
			                      "config key '%s': '%.*s' is not a role (gateway, "
			                      "scheduler, invoker, trigger)",
			                      key, (int)(n > 64 ? 64 : n), p);
		m |= 1u << i;
		p += n;
		if (*p == ',')
			p++;
	}
	if (m == 0)
		return gust_error_set(err, GUST_EINVAL, "config key '%s': no role given", key);
	*out = m;
	return 0;
}

/* The whole of a small file as a NUL-terminated string (PEM is text). */
static int read_small(const char *path, const char *key, char **out, size_t *lenp, struct stat *stp,
                      gust_error **err)
{
	cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		return gust_error_set(err, GUST_EINVAL, "config key '%s': cannot read %s: %s", key,
		                      path, strerror(errno));
	if (!S_ISREG(st.st_mode) || st.st_size > TRANSPORT_MAX_FILE)
		return gust_error_set(err, GUST_EINVAL,
		                      "config key '%s': %s is not a PEM file of at most %d bytes",
		                      key, path, TRANSPORT_MAX_FILE);
	char *buf = gust_xmalloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			explicit_bzero(buf, got);
			free(buf);
			return gust_error_set(err, GUST_EINVAL, "config key '%s': reading %s: %s",
			                      key, path, n < 0 ? strerror(errno) : "short read");
		}
		got += (size_t)n;
	}
	buf[got] = '\0';
	*out = buf;
	if (lenp)
		*lenp = got;
	if (stp)
		*stp = st;
	return 0;
}

/* Checks with mbedTLS itself, before any peer does, that the certificate is
 * one of our role (it chains to ca-<self>.crt alone, as a peer would check
 * it), is in date, and that the key is its key. A wrong file here would
 * otherwise show only as handshakes failing on the other side. */
static int check_own(gust_transport *t, int self, const char *cert_path, gust_error **err)
{
	mbedtls_x509_crt crt, ca;
	mbedtls_pk_context pk;
	mbedtls_x509_crt_init(&crt);
	mbedtls_x509_crt_init(&ca);
	mbedtls_pk_init(&pk);
	int rv = 0;
	char info[512], subject[256];
	uint32_t flags = 0;
	if (mbedtls_x509_crt_parse(&crt, (const unsigned char *)t->cert_pem,
	                           strlen(t->cert_pem) + 1) != 0) {
		rv = gust_error_set(
		    err, GUST_EINVAL,
		    "config key 'transport_cert': %s holds no valid PEM certificate", cert_path);
		goto out;
	}
	if (mbedtls_x509_crt_parse(&ca, (const unsigned char *)t->ca_pem[self],
	                           strlen(t->ca_pem[self]) + 1) != 0) {
		rv =
		    gust_error_set(err, GUST_EINVAL,
		                   "config key 'transport_ca_dir': %s/ca-%s.crt holds no valid PEM "
		                   "certificate",
		                   t->ca_dir, role_names[self]);
		goto out;
	}
	if (mbedtls_x509_crt_verify(&crt, &ca, NULL, NULL, &flags, NULL, NULL) != 0) {
		mbedtls_x509_crt_verify_info(info, sizeof(info), "", flags);
		info[strcspn(info, "\n")] = '\0';
		rv = gust_error_set(err, GUST_EINVAL,
		                    "config key 'transport_cert': %s is not a valid %s certificate "
		                    "(checked against %s/ca-%s.crt: %s)",
		                    cert_path, role_names[self], t->ca_dir, role_names[self], info);
		goto out;
	}
	if (mbedtls_pk_parse_key(&pk, (const unsigned char *)t->key_pem, t->key_len + 1, NULL, 0) !=
	    0) {
		rv = gust_error_set(
		    err, GUST_EINVAL,
		    "config key 'transport_key': no valid unencrypted PEM private key");
		goto out;
	}
	if (mbedtls_pk_check_pair(&crt.pk, &pk) != 0) {
		rv = gust_error_set(
		    err, GUST_EINVAL,
		    "config key 'transport_key': not the key of the certificate in %s", cert_path);
		goto out;
	}
	if (mbedtls_x509_dn_gets(subject, sizeof(subject), &crt.subject) < 0)
		snprintf(subject, sizeof(subject), "?");
	gust_log_info("NNG-TLS",
	              "mutual TLS on nng as %s (expires %04d-%02d-%02d); peers checked "
	              "against the role CAs in %s",
	              subject, crt.valid_to.year, crt.valid_to.mon, crt.valid_to.day, t->ca_dir);
out:
	mbedtls_pk_free(&pk);
	mbedtls_x509_crt_free(&ca);
	mbedtls_x509_crt_free(&crt);
	return rv;
}

int gust_transport_open(const gust_transport_cfg *cfg, unsigned self, unsigned peers,
                        gust_transport **out, gust_error **err)
{
	int si = role_index(self);
	if (si < 0)
		return gust_error_set(err, GUST_EINTERNAL, "transport: bad role %u", self);
	gust_transport *t = gust_xcalloc(1, sizeof(*t));
	pthread_mutex_init(&t->lock, NULL);
	t->insecure = cfg->insecure;
	int rv = 0;
	bool have_cert = cfg->cert[0] != '\0', have_key = cfg->key[0] != '\0',
	     have_dir = cfg->ca_dir[0] != '\0';
	if (cfg->insecure)
		gust_log_warn("NNG-INSECURE",
		              "config key 'insecure_transport' is set: nng between daemons may be "
		              "plain tcp://, unencrypted, and anyone who can reach a port may send "
		              "activations or status to it");
	if (!have_cert && !have_key && !have_dir) {
		if (cfg->insecure) {
			*out = t;
			return 0;
		}
		rv = gust_error_set(
		    err, GUST_EINVAL,
		    "no TLS for nng: set config keys 'transport_cert', 'transport_key' and "
		    "'transport_ca_dir' (deploy/gust-pki makes the files), or "
		    "'insecure_transport' for plain tcp:// (insecure)");
		goto fail;
	}
	if (!have_cert || !have_key || !have_dir) {
		rv =
		    gust_error_set(err, GUST_EINVAL,
		                   "config key '%s' is not set (mutual TLS needs 'transport_cert', "
		                   "'transport_key' and 'transport_ca_dir')",
		                   !have_cert  ? "transport_cert"
		                   : !have_key ? "transport_key"
		                               : "transport_ca_dir");
		goto fail;
	}
	t->ca_dir = gust_xstrdup(cfg->ca_dir);
	struct stat st;
	if ((rv = read_small(cfg->cert, "transport_cert", &t->cert_pem, NULL, NULL, err)) != 0 ||
	    (rv = read_small(cfg->key, "transport_key", &t->key_pem, &t->key_len, &st, err)) != 0)
		goto fail;
	/* As ssh does with its keys: a key others can read is no secret. */
	if ((st.st_mode & 0077) != 0) {
		rv = gust_error_set(
		    err, GUST_EPERM,
		    "config key 'transport_key': %s is accessible to other users (mode "
		    "%04o); chmod 600 it",
		    cfg->key, (unsigned)(st.st_mode & 07777));
		goto fail;
	}
	for (int i = 0; i < GUST_NROLES; i++) {
		if (((peers | self) & (1u << i)) == 0)
			continue;
		cleanup_free char *p = gust_xasprintf("%s/ca-%s.crt", cfg->ca_dir, role_names[i]);
		if ((rv = read_small(p, "transport_ca_dir", &t->ca_pem[i], NULL, NULL, err)) != 0)
			goto fail;
	}
	if ((rv = check_own(t, si, cfg->cert, err)) != 0)
		goto fail;
	t->tls = true;
	*out = t;
	return 0;
fail:
	gust_transport_close(t);
	return rv;
}

/* The shared config for dialing role `mask` (client) or accepting the roles
 * of `mask` (server), made on first use. */
static int transport_config(gust_transport *t, bool server, unsigned mask, nng_tls_config **out,
                            gust_error **err)
{
	pthread_mutex_lock(&t->lock);
	nng_tls_config **slot = server ? &t->server[mask] : &t->client[role_index(mask)];
	if (*slot != NULL) {
		*out = *slot;
		pthread_mutex_unlock(&t->lock);
		return 0;
	}
	gust_buf cas = {0};
	for (int i = 0; i < GUST_NROLES; i++) {
		if ((mask & (1u << i)) == 0)
			continue;
		if (t->ca_pem[i] == NULL) {
			gust_buf_free(&cas);
			pthread_mutex_unlock(&t->lock);
			return gust_error_set(err, GUST_EINTERNAL,
			                      "transport: ca-%s.crt was not loaded at start",
			                      role_names[i]);
		}
		gust_buf_puts(&cas, t->ca_pem[i]);
		gust_buf_puts(&cas, "\n");
	}
	nng_tls_config *c = NULL;
	int rv;
	if ((rv = nng_tls_config_alloc(&c, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT)) !=
	        0 ||
	    (rv = nng_tls_config_version(c, NNG_TLS_1_2, NNG_TLS_1_3)) != 0 ||
	    (rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
	    (rv = nng_tls_config_ca_chain(c, cas.data, NULL)) != 0 ||
	    (rv = nng_tls_config_own_cert(c, t->cert_pem, t->key_pem, NULL)) != 0) {
		if (c)
			nng_tls_config_free(c);
		gust_buf_free(&cas);
		pthread_mutex_unlock(&t->lock);
		return gust_error_set(err, gust_err_from_nng(rv), "TLS configuration: %s",
		                      nng_strerror(rv));
	}
	gust_buf_free(&cas);
	*slot = c;
	*out = c;
	pthread_mutex_unlock(&t->lock);
	return 0;
}

static bool url_is_tls(const char *url)
{
	return strncmp(url, "tls+", 4) == 0;
}

int gust_transport_listen(gust_transport *t, nng_socket s, const char *url, unsigned peers,
                          const char *key, nng_listener *lp, gust_error **err)
{
	nng_listener l;
	int rv;
	if (!url_is_tls(url)) {
		if (!t->insecure)
			return gust_error_set(
			    err, GUST_EINVAL,
			    "config key '%s': %s is not tls+tcp:// (plain transport "
			    "needs config key 'insecure_transport')",
			    key, url);
		if ((rv = nng_listen(s, url, &l, 0)) != 0)
			return gust_error_set(err, GUST_EINVAL,
			                      "config key '%s': cannot listen on %s: %s", key, url,
			                      nng_strerror(rv));
		if (lp)
			*lp = l;
		return 0;
	}
	if (!t->tls)
		return gust_error_set(
		    err, GUST_EINVAL,
		    "config key '%s': %s needs config keys 'transport_cert', 'transport_key' "
		    "and 'transport_ca_dir'",
		    key, url);
	nng_tls_config *c;
	if ((rv = transport_config(t, true, peers, &c, err)) != 0)
		return rv;
	if ((rv = nng_listener_create(&l, s, url)) != 0)
		return gust_error_set(err, GUST_EINVAL, "config key '%s': %s: %s", key, url,
		                      nng_strerror(rv));
	if ((rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, c)) != 0 ||
	    (rv = nng_listener_start(l, 0)) != 0) {
		nng_listener_close(l);
		return gust_error_set(err, GUST_EINVAL, "config key '%s': cannot listen on %s: %s",
		                      key, url, nng_strerror(rv));
	}
	if (lp)
		*lp = l;
	return 0;
}

int gust_transport_dial(gust_transport *t, nng_socket s, const char *url, unsigned peer, int flags,
                        nng_dialer *dp, gust_error **err)
{
	nng_dialer d;
	int rv;
	if (role_index(peer) < 0)
		return gust_error_set(err, GUST_EINTERNAL, "transport: bad role %u", peer);
	if (!url_is_tls(url)) {
		if (!t->insecure)
			return gust_error_set(
			    err, GUST_EPERM,
			    "%s is not tls+tcp://, and plain transport needs config "
			    "key 'insecure_transport'",
			    url);
		if ((rv = nng_dial(s, url, &d, flags)) != 0)
			return gust_error_set(err, gust_err_from_nng(rv), "%s", nng_strerror(rv));
		if (dp)
			*dp = d;
		return 0;
	}
	if (!t->tls)
		return gust_error_set(
		    err, GUST_EINVAL,
		    "%s is tls+tcp://, and config keys 'transport_cert', 'transport_key' and "
		    "'transport_ca_dir' are not set",
		    url);
	nng_tls_config *c;
	if ((rv = transport_config(t, false, peer, &c, err)) != 0)
		return rv;
	if ((rv = nng_dialer_create(&d, s, url)) != 0)
		return gust_error_set(err, gust_err_from_nng(rv), "%s", nng_strerror(rv));
	if ((rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, c)) != 0 ||
	    (rv = nng_dialer_start(d, flags)) != 0) {
		nng_dialer_close(d);
		return gust_error_set(err, gust_err_from_nng(rv), "%s", nng_strerror(rv));
	}
	if (dp)
		*dp = d;
	return 0;
}

void gust_transport_close(gust_transport *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < GUST_NROLES; i++) {
		if (t->client[i])
			nng_tls_config_free(t->client[i]);
		free(t->ca_pem[i]);
	}
	for (size_t i = 0; i < sizeof(t->server) / sizeof(t->server[0]); i++)
		if (t->server[i])
			nng_tls_config_free(t->server[i]);
	if (t->key_pem) {
		explicit_bzero(t->key_pem, t->key_len);
		free(t->key_pem);
	}
	free(t->cert_pem);
	free(t->ca_dir);
	pthread_mutex_destroy(&t->lock);
	free(t);
}
