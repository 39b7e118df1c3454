/*
 * gust/scope.h - what a tenant's feed or output binding may reach
 * (docs/triggers.md "Whose Redis, whose broker").
 *
 * On the cluster's own Redis a namespace owns the keys and channels under
 * "gust:state:<ns>:" and nothing else. A name the tenant gives is either
 * relative ("orders" means "gust:state:<ns>:orders") or, when it starts with
 * "gust:", must already be inside that prefix; anything else is refused.
 * Feeds and bindings then talk to Redis as the namespace's feed user,
 * "gust-feed-<ns>", whose ACL allows only those keys and channels, so Redis
 * itself refuses what a stale record or a bug would let through.
 *
 * Anything outside the cluster (another Redis, a Kafka broker) must be
 * allowed by the operator's policy, in etcd:
 *   /gust/policy/cluster   {"targets": [ENTRY, ...]}   every namespace
 *   /gust/grants/<ns>      {"targets": [ENTRY, ...]}   that namespace
 * (other members are kept as they are, for later kinds of grant). ENTRY is
 * HOST[:PORT] where HOST is a DNS name, an IPv4 address, an IPv4 CIDR
 * (10.0.0.0/8), or an IPv6 address or CIDR in brackets; no PORT (or "*")
 * allows every port. A target given by name must match an entry by name; one
 * given by address, an entry whose address or CIDR holds it.
 *
 * Then, when connecting, each resolved address is checked as the sandboxes'
 * egress is: loopback, link-local, unspecified and multicast addresses are
 * refused unless an address entry (not a name) covers them, and the cluster's
 * own Redis and etcd unless an entry names exactly that address and port.
 * The check runs on the address actually connected to, so a DNS name that
 * resolves to 127.0.0.1, or a Kafka broker advertising one, is refused too.
 */
#ifndef GUST_SCOPE_H
#define GUST_SCOPE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "gust/err.h"
#include "gust/etcd.h"

#define GUST_POLICY_CLUSTER_KEY "/gust/policy/cluster"
#define GUST_GRANTS_PREFIX "/gust/grants/"

/* ---- the namespace's keyspace on the cluster's Redis ---------------------- */

/* The full key or channel name for a name the tenant gave as param (used in
 * the error: "feed parameter 'stream'"). Relative names get the prefix;
 * "gust:..." names must be inside it. A pattern follows the same rule: its
 * literal prefix then holds everything it can match. out: heap. */
int gust_scope_name(const char *ns, const char *param, const char *name, char **out,
                    gust_error **err);
/* A consumer group name: [A-Za-z0-9_.:@-]{1,200}. */
int gust_scope_group(const char *param, const char *name, gust_error **err);
/* True when full is a name of ns's keyspace (where a record is used). */
bool gust_scope_inside(const char *ns, const char *full);

/* The namespace's feed user: "gust-feed-<ns>", password derived from the
 * state password (so etcd holds one secret per namespace). */
char *gust_feed_user(const char *ns);
/* Creates or updates the feed user: keys and channels of ns only, and the
 * commands of feeds and bindings (stream consumer groups, XADD, RPUSH,
 * SUBSCRIBE/PSUBSCRIBE). r: a connection with ACL rights. */
int gust_feed_acl_set(redisContext *r, const char *ns, const char *password, gust_error **err);
/* A connection to the cluster's Redis at addr authenticated as the feed user
 * of ns (making the user first when Redis does not know it). */
int gust_feed_connect(gust_etcd *e, const char *addr, const char *ns, int timeout_ms,
                      redisContext **out, gust_error **err);

/* ---- targets outside the cluster ------------------------------------------ */

typedef struct gust_policy gust_policy;

/* Parses the two documents (either may be NULL: nothing allowed by it). */
int gust_policy_parse(const char *cluster, size_t clen, const char *grants, size_t glen,
                      gust_policy **out, gust_error **err);
/* Reads both documents of ns from etcd; missing ones allow nothing. */
int gust_policy_load(gust_etcd *e, const char *ns, gust_policy **out, gust_error **err);
void gust_policy_free(gust_policy *p);
/* Marks addr (a Redis "host:port" or an etcd "http://host:port", several
 * comma-separated) as the cluster's own: reachable only when an entry names
 * exactly that address and port. */
void gust_policy_add_own(gust_policy *p, const char *addrs);
/* Checks one ENTRY (gust admin, before storing it). */
int gust_policy_entry_check(const char *entry, gust_error **err);

/* The configured target "host:port" (param names it in the error):
 * GUST_EPERM when no entry allows it, GUST_EINVAL when it is not host:port. */
int gust_policy_target(const gust_policy *p, const char *param, const char *target,
                       gust_error **err);
/* Every target of a comma-separated list (Kafka's bootstrap servers). */
int gust_policy_targets(const gust_policy *p, const char *param, const char *list,
                        gust_error **err);
/* The connect-time check of one resolved address: 0, or GUST_EPERM with why. */
int gust_policy_sockaddr(const gust_policy *p, const struct sockaddr *sa, socklen_t len, char *why,
                         size_t whylen);
/* Resolves target, checks the target and every address, and connects to the
 * first allowed one. */
int gust_policy_redis_connect(const gust_policy *p, const char *param, const char *target,
                              int timeout_ms, redisContext **out, gust_error **err);

#endif
