/*
 * gust/egress.h - who may have egress, and where it may go (docs/operations.md
 * "Egress"). Both live in etcd, written by the operator (`gust admin`):
 *
 *   /gust/grants/<ns>      {"egress": true, ...}       ns's actions may have egress
 *   /gust/policy/cluster   {"egress": {"allow": [ENTRY, ...], "deny": [ENTRY, ...]}, ...}
 *
 * (the other members, such as "targets" of gust/scope.h, are kept as they
 * are). ENTRY is an IPv4 or IPv6 address, an address/prefix (10.0.0.0/8,
 * 2001:db8::/32), or a DNS name, which the invokers resolve and re-resolve.
 * Without the grant an action annotated "egress": true is refused at create
 * and update (gateway, 403) and at run (invoker). Every egress sandbox is
 * denied the private, CGNAT, loopback, link-local, unique-local, multicast
 * and reserved ranges and the cluster's own node addresses; "allow" makes
 * exceptions to the ranges (never to the node addresses), "deny" adds more.
 */
#ifndef GUST_EGRESS_H
#define GUST_EGRESS_H

#include <stdbool.h>
#include <stddef.h>

#include "gust/err.h"
#include "gust/etcd.h"

/* Checks one ENTRY: 0, or -1 with why. *family is 4, 6, or 0 for a name. */
int gust_egress_entry_check(const char *entry, int *family, char *why, size_t whylen);
/* True when the grants document of a namespace grants egress. */
bool gust_egress_granted_doc(const char *doc, size_t len);
/* Reads /gust/grants/<ns>: *granted, or an error when etcd cannot say. */
int gust_egress_granted(gust_etcd *e, const char *ns, bool *granted, gust_error **err);

#endif
