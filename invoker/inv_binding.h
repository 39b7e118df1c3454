/*
 * inv_binding.h - output bindings inside the invoker: the parts behind
 * invoker.h's inv_binding_* calls. inv_binding.c owns the durable queue and
 * the two threads; inv_binding_out.c publishes to a binding's target (Kafka through librdkafka,
 * Redis streams and lists through hiredis).
 */
#ifndef INV_BINDING_H
#define INV_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/binding.h"
#include "gust/etcd.h"

/* The binding's parser is shared with the gateway (gust/binding.h), which
 * refuses a bad one when the action is stored; the invoker parses it again
 * for the namespace it runs as, since a record may predate those checks. */
typedef gust_binding inv_bind_target;
#define INV_BIND_KAFKA GUST_BINDING_KAFKA
#define INV_BIND_STREAM GUST_BINDING_STREAM
#define INV_BIND_LIST GUST_BINDING_LIST

/* One publish: what to send and, after inv_bind_out_publish, how it went. */
typedef struct inv_bind_msg {
	const inv_bind_target *t;
	const char *ns; /* the namespace it is published for: its keyspace, user, policy */
	const char *id; /* activation id: the Kafka key, the stream's "id" field */
	const char *value;
	size_t value_len;
	int rv;       /* 0 published, else a gust_errno */
	char *error;  /* heap, when rv != 0 */
	uint64_t seq; /* internal: matches Kafka delivery reports */
} inv_bind_msg;

/* The publishers of one thread: a producer per namespace and brokers string,
 * a connection per namespace and Redis address (on the cluster's Redis as
 * the namespace's feed user, gust/scope.h). External targets are checked
 * against the operator's policy (read from etcd once per batch) before
 * each publish and again on every address connected to. Not thread safe: one
 * thread owns it. */
typedef struct inv_bind_out inv_bind_out;
inv_bind_out *inv_bind_out_new(gust_etcd *etcd, const char *etcd_endpoints,
                               const char *default_redis, int timeout_ms);
/* Publishes msgs[0..n) as one batch (Kafka messages produced together and
 * waited for together, Redis commands pipelined per address) and sets each
 * one's rv and error. Returns after at most about timeout_ms per target. */
void inv_bind_out_publish(inv_bind_out *o, inv_bind_msg *msgs, size_t n);
void inv_bind_out_free(inv_bind_out *o);

#endif
