/*
 * gust/binding.h - an action's output binding (the "binding" annotation,
 * docs/state.md): parsed the same way by the gateway, which refuses a bad
 * one when the action is stored, and by the invoker, which publishes to it.
 */
#ifndef GUST_BINDING_H
#define GUST_BINDING_H

#include <stdbool.h>

#include "gust/err.h"

enum gust_binding_kind {
	GUST_BINDING_KAFKA = 1,
	GUST_BINDING_STREAM,
	GUST_BINDING_LIST,
};

/* Where a result goes, parsed from the annotation's value. */
typedef struct gust_binding {
	int kind;    /* enum gust_binding_kind */
	char *addr;  /* Kafka bootstrap servers, or a Redis address (NULL: the cluster's) */
	char *name;  /* topic, stream or list; on the cluster's Redis the full key */
	char *label; /* "kafka:<topic>", "redis-stream:<name>", "redis-list:<name>" */
} gust_binding;

/* Parses the JSON text of a binding annotation's value for namespace ns: an
 * object (or a string holding one) with exactly one of
 *   {"kafka": {"brokers": "host:port,...", "topic": "t"}}
 *   {"redis": {"stream": "s"} | {"list": "l"}, optionally "address": "host:port"}
 * On the cluster's Redis (no "address") the key is in ns's keyspace: a
 * relative name gets "gust:state:<ns>:", a "gust:" name must already be in it
 * (gust/scope.h). GUST_EINVAL or GUST_EPERM with *why (heap) saying what is
 * wrong. Clear b with gust_binding_clear (safe on a zeroed one). */
int gust_binding_parse(const char *ns, const char *text, gust_binding *b, char **why);
void gust_binding_clear(gust_binding *b);

/* True when the binding reaches outside the cluster (Kafka, or a Redis
 * "address"): the operator's policy must allow it. */
bool gust_binding_external(const gust_binding *b);
struct gust_policy;
/* GUST_EPERM with *why (heap) when p does not allow an external target. */
int gust_binding_check_policy(const gust_binding *b, const struct gust_policy *p, char **why);

#endif
