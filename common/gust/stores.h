/*
 * gust/stores.h - the credentials a daemon (or gust admin) presents to the
 * cluster's stores: etcd over https with a client certificate and an etcd
 * user (RBAC), Redis as an ACL user. One set of config keys, shared by every
 * daemon's table (GUST_STORES_CFG_KEYS), read from files named in the config
 * so that no secret is on a command line, in the environment or in a log.
 *
 * Without them a daemon refuses to start, unless insecure_stores is set: then
 * plain http etcd and an unauthenticated Redis are accepted and the daemon
 * logs STORES-INSECURE at WARN on start.
 */
#ifndef GUST_STORES_H
#define GUST_STORES_H

#include <stdbool.h>

#include "gust/config.h"
#include "gust/err.h"

typedef struct gust_stores_cfg {
	char *etcd_ca;            /* PEM: the CA(s) that sign etcd's server certificate */
	char *etcd_cert;          /* PEM: this daemon's client certificate (and chain) */
	char *etcd_key;           /* PEM: its key */
	char *etcd_user;          /* the etcd user of this daemon's role */
	char *etcd_password_file; /* a file holding that user's password */
	char *redis_user;         /* the Redis ACL user of this daemon's role */
	char *redis_password_file;
	bool insecure_stores; /* accept http:// etcd and Redis without a user */
} gust_stores_cfg;

/* The keys, for a daemon table whose struct has a gust_stores_cfg `field`;
 * K is the table's offsetof macro. */
/* clang-format off */
#define GUST_STORES_CFG_KEYS(K, field)                                                   \
	{"etcd_ca", GUST_CFG_STR, K(field.etcd_ca), "", 0, 4096, "GUST_ETCD_CA",         \
	 "PEM file of the CA that signs etcd's server certificate (https:// endpoints)"}, \
	{"etcd_cert", GUST_CFG_STR, K(field.etcd_cert), "", 0, 4096, "GUST_ETCD_CERT",   \
	 "PEM file of this daemon's etcd client certificate"},                            \
	{"etcd_key", GUST_CFG_STR, K(field.etcd_key), "", 0, 4096, "GUST_ETCD_KEY",      \
	 "PEM file of the key of etcd_cert"},                                             \
	{"etcd_user", GUST_CFG_STR, K(field.etcd_user), "", 0, 128, "GUST_ETCD_USER",    \
	 "etcd user of this daemon's role (RBAC)"},                                       \
	{"etcd_password_file", GUST_CFG_STR, K(field.etcd_password_file), "", 0, 4096,   \
	 "GUST_ETCD_PASSWORD_FILE", "file holding etcd_user's password"},                \
	{"redis_user", GUST_CFG_STR, K(field.redis_user), "", 0, 128, "GUST_REDIS_USER", \
	 "Redis ACL user of this daemon's role"},                                         \
	{"redis_password_file", GUST_CFG_STR, K(field.redis_password_file), "", 0, 4096, \
	 "GUST_REDIS_PASSWORD_FILE", "file holding redis_user's password"},              \
	{"insecure_stores", GUST_CFG_BOOL, K(field.insecure_stores), "false", 0, 1,      \
	 "GUST_INSECURE_STORES",                                                          \
	 "accept plain http:// etcd and Redis without a user (logged at WARN; for a "     \
	 "laptop, never a shared network)"}
/* clang-format on */

/*
 * Checks the credentials against the endpoints and installs them for the
 * process (gust_etcd_set_credentials, gust_redis_set_credentials): call once
 * at start, before opening etcd or Redis. who names the daemon in the
 * STORES-CREDS log line (NULL: none, for the CLI, whose stderr is its answer).
 * GUST_EINVAL naming the config key when something required is missing or a
 * file cannot be read; never a password in a message.
 */
int gust_stores_apply(const gust_stores_cfg *s, const char *etcd_endpoints, const char *who,
                      gust_error **err);

/* Reads a password file: its first line, at most 1024 bytes, not empty
 * (heap; the caller wipes and frees it). key names the config key. */
int gust_stores_read_password(const char *path, const char *key, char **out, gust_error **err);

#endif
