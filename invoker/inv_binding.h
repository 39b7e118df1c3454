/*
 * inv_binding.h - output bindings inside the invoker: the parts behind
 * invoker.h's inv_binding_* calls. inv_binding.c owns the durable queue and
 * the two threads; inv_binding_out.c parses a binding and publishes to its
 * target (Kafka through librdkafka, Redis streams and lists through hiredis).
 */
#ifndef INV_BINDING_H
#define INV_BINDING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum inv_bind_kind {
	INV_BIND_KAFKA = 1,
	INV_BIND_STREAM,
	INV_BIND_LIST,
};

/* Where a result goes, parsed from the annotation's value. */
typedef struct inv_bind_target {
	int kind;    /* enum inv_bind_kind */
	char *addr;  /* Kafka bootstrap servers, or a Redis address (NULL: the invoker's) */
	char *name;  /* topic, stream or list */
	char *label; /* "kafka:<topic>", "redis-stream:<name>", "redis-list:<name>" */
} inv_bind_target;

/* Parses the JSON text of a binding annotation's value: an object (or a
 * string holding one) with exactly one of
 *   {"kafka": {"brokers": "host:port,...", "topic": "t"}}
 *   {"redis": {"stream": "s"} | {"list": "l"}, optionally "address": "host:port"}
 * GUST_EINVAL with *why (heap) saying what is wrong. Clear t with
 * inv_bind_target_clear (safe on a zeroed one). */
int inv_bind_parse(const char *text, inv_bind_target *t, char **why);
void inv_bind_target_clear(inv_bind_target *t);

/* One publish: what to send and, after inv_bind_out_publish, how it went. */
typedef struct inv_bind_msg {
	const inv_bind_target *t;
	const char *id; /* activation id: the Kafka key, the stream's "id" field */
	const char *value;
	size_t value_len;
	int rv;       /* 0 published, else a gust_errno */
	char *error;  /* heap, when rv != 0 */
	uint64_t seq; /* internal: matches Kafka delivery reports */
} inv_bind_msg;

/* The publishers of one thread: a producer per brokers string, a connection
 * per Redis address. Not thread safe: one thread owns it. */
typedef struct inv_bind_out inv_bind_out;
inv_bind_out *inv_bind_out_new(const char *default_redis, int timeout_ms);
/* Publishes msgs[0..n) as one batch (Kafka messages produced together and
 * waited for together, Redis commands pipelined per address) and sets each
 * one's rv and error. Returns after at most about timeout_ms per target. */
void inv_bind_out_publish(inv_bind_out *o, inv_bind_msg *msgs, size_t n);
void inv_bind_out_free(inv_bind_out *o);

#endif
