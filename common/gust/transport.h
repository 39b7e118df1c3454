/*
 * gust/transport.h - the nng sockets between daemons, over mutual TLS.
 *
 * Every daemon holds a certificate of its role (deploy/gust-pki: subject
 * "O=gust, OU=<name>, CN=gust-<role>", issued by that role's own CA) and
 * every nng connection between daemons is tls+tcp:// with a certificate on
 * both ends. nng 1.5 cannot show a listener its peer's subject, so the role
 * is carried by the chain instead: a listener trusts only the CAs of the
 * roles allowed to connect to it (the invoker: ca-scheduler.crt; the
 * scheduler's request socket: ca-gateway.crt and ca-trigger.crt; its status
 * socket: ca-invoker.crt), and a dialer trusts only the CA of the role it
 * dials. mbedTLS takes a role CA as a trust anchor without the cluster root,
 * so a valid certificate of another role fails the handshake. The address a
 * dialer is given (from etcd) is not checked against the certificate; what
 * is checked is that the peer holds a key certified for the expected role.
 *
 * Plain tcp:// (or any non-TLS nng URL) is used only when the operator sets
 * the config key insecure_transport, which is logged at WARN on every start.
 * Without TLS files and without that key a daemon does not start.
 */
#ifndef GUST_TRANSPORT_H
#define GUST_TRANSPORT_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stddef.h>

#include "gust/config.h"
#include "gust/err.h"

/* The daemon roles, as bits: a listener takes a set of them. */
enum {
	GUST_ROLE_GATEWAY = 1u << 0,
	GUST_ROLE_SCHEDULER = 1u << 1,
	GUST_ROLE_INVOKER = 1u << 2,
	GUST_ROLE_TRIGGER = 1u << 3,
};
#define GUST_NROLES 4

/* The four config keys every daemon has; a daemon's config struct holds one
 * of these and its table lists GUST_TRANSPORT_CFG_KEYS. */
typedef struct gust_transport_cfg {
	char *cert;    /* file: this daemon's certificate, then its role's CA (PEM) */
	char *key;     /* file: its private key (PEM), not readable by others */
	char *ca_dir;  /* directory holding ca-<role>.crt */
	bool insecure; /* plain tcp:// allowed */
} gust_transport_cfg;

/* The table rows of gust_transport_cfg `field` inside config struct `type`;
 * ENV is the daemon's environment prefix, e.g. "GUST_SCHEDULER". The CA
 * directory and insecure_transport are shared by every daemon of a host. */
/* clang-format off */
#define GUST_TRANSPORT_CFG_KEYS(type, field, ENV)                                           \
	{"transport_cert", GUST_CFG_STR, offsetof(type, field.cert), "", 0, 4096,             \
	 ENV "_TRANSPORT_CERT",                                                               \
	 "file holding this daemon's certificate for mutual TLS on nng (PEM: the "           \
	 "certificate, then its role's CA; deploy/gust-pki issues it)"},                      \
	{"transport_key", GUST_CFG_STR, offsetof(type, field.key), "", 0, 4096,               \
	 ENV "_TRANSPORT_KEY",                                                                \
	 "file holding the private key of transport_cert (PEM; must not be readable by "     \
	 "other users)"},                                                                     \
	{"transport_ca_dir", GUST_CFG_STR, offsetof(type, field.ca_dir), "", 0, 4096,         \
	 "GUST_TRANSPORT_CA_DIR",                                                             \
	 "directory holding ca-<role>.crt of this daemon's role and of the roles it talks "  \
	 "to; each listener trusts only the CAs of the roles that may connect to it"},        \
	{"insecure_transport", GUST_CFG_BOOL, offsetof(type, field.insecure), "false", 0, 1,  \
	 "GUST_INSECURE_TRANSPORT",                                                           \
	 "allow plain tcp:// between daemons: unencrypted, and whoever reaches a port may "  \
	 "send to it. Only for a single trusted host; logged at WARN on every start"}
/* clang-format on */

typedef struct gust_transport gust_transport;

/*
 * Reads cfg's files and checks them: transport_cert must chain to
 * <ca_dir>/ca-<self>.crt (self: this daemon's GUST_ROLE_* bit), the key must
 * be its key and not be readable by other users, and ca-<role>.crt must be
 * there for every role in `peers` (those this daemon dials or accepts).
 * Without the three files and without insecure_transport this fails with a
 * message naming the keys; insecure_transport is logged at WARN. Every
 * error names the config key. *out is freed with gust_transport_close.
 */
int gust_transport_open(const gust_transport_cfg *cfg, unsigned self, unsigned peers,
                        gust_transport **out, gust_error **err);

/*
 * Listens on url: tls+tcp:// admits only peers whose certificate chains to
 * the CA of a role in `peers`; other schemes only with insecure_transport.
 * `key` is the config key that gave url, for messages. *lp (may be NULL) is
 * the started listener.
 */
int gust_transport_listen(gust_transport *t, nng_socket s, const char *url, unsigned peers,
                          const char *key, nng_listener *lp, gust_error **err);

/*
 * Dials url with our certificate, trusting only the CA of role `peer` (one
 * GUST_ROLE_* bit); flags as nng_dial's (the daemons pass
 * NNG_FLAG_NONBLOCK: connect and redial in the background). A URL that is
 * not tls+tcp:// is refused unless insecure_transport is set: an address
 * read from etcd cannot turn TLS off. *dp (may be NULL) is the dialer.
 */
int gust_transport_dial(gust_transport *t, nng_socket s, const char *url, unsigned peer, int flags,
                        nng_dialer *dp, gust_error **err);

/* "gateway", "scheduler", ... for one role bit; "?" otherwise. */
const char *gust_role_name(unsigned role);

/* Parses a comma-separated list of role names into bits; the message names
 * the config key. */
int gust_roles_parse(const char *list, const char *key, unsigned *out, gust_error **err);

/* Frees the TLS configurations (listeners and dialers keep their own hold)
 * and wipes the key. Safe on NULL. */
void gust_transport_close(gust_transport *t);

#endif
