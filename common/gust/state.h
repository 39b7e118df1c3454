/*
 * gust/state.h - the state cache's namespaces in Redis (docs/state.md).
 *
 * Each namespace has one Redis ACL user, "gust-ns-<ns>", allowed only the
 * commands of gust_state_cmd_allowed and only keys under "gust:state:<ns>:".
 * Its password is random and lives in etcd at /gust/state/<ns>
 * ({"user": ..., "password": ...}), written by `gust admin namespace create`
 * or, for a namespace made without it, by the first invoker that needs it.
 * The same list of commands drives the ACL rule and the invoker's proxy, so
 * the two can never disagree.
 */
#ifndef GUST_STATE_H
#define GUST_STATE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "gust/err.h"
#include "gust/etcd.h"

#define GUST_STATE_ETCD_PREFIX "/gust/state/"
#define GUST_STATE_PASSWORD_LEN 40

/* True when a function may send the command (case-insensitive name). */
bool gust_state_cmd_allowed(const char *name, size_t len);
/* True when an allowed command may make the namespace's data larger (refused
 * while the namespace is over its state quota); deletions, reads and
 * expiries are not. */
bool gust_state_cmd_grows(const char *name, size_t len);

/* The Redis function library the proxy uses to bound what a command may
 * allocate where the bound depends on data already stored (docs/state.md):
 *   FCALL gust_append 1 <key> <value> <max>  APPEND, refused when the value
 *                                            would pass max bytes
 *   FCALL gust_refuse 0 <message>            an error reply "ERR <message>"
 * Loaded with FUNCTION LOAD REPLACE by a connection with the rights to. */
extern const char gust_state_functions[];
int gust_state_functions_load(redisContext *r, gust_error **err);

/* The namespace's limits on the state cache, from its record in etcd
 * (/gust/namespaces/<ns> "limits": "stateBytes", "stateValueBytes"); a
 * missing one stays as the caller set it (the cluster's default). */
int gust_state_limits(gust_etcd *e, const char *ns, long long *state_bytes, long long *value_bytes,
                      gust_error **err);

/* "gust-ns-<ns>" and "gust:state:<ns>:" (heap). */
char *gust_state_user(const char *ns);
char *gust_state_prefix(const char *ns);

/* Creates or updates the namespace's ACL user with password (idempotent);
 * r is a connection with ACL rights (the operator's). Then ACL SAVE, when
 * Redis has an aclfile (ignored otherwise). */
int gust_state_acl_set(redisContext *r, const char *ns, const char *password, gust_error **err);
/* Removes the ACL user, disconnects its clients, and deletes the
 * namespace's keys. */
int gust_state_acl_delete(redisContext *r, const char *ns, gust_error **err);

/* The namespace's password from etcd; when there is none, makes one and
 * stores it (put-if-absent, so concurrent makers agree). out: heap. */
int gust_state_password(gust_etcd *e, const char *ns, bool create, char **out, gust_error **err);

#endif
