/*
 * gust/msg.h - protobuf-c messages carried in nng messages.
 *
 * Ownership follows nng: a successful send takes the nng_msg; on failure the
 * caller still owns it. Unpacked protobuf messages are freed with the matching
 * gust__*__free_unpacked(m, NULL).
 */
#ifndef GUST_MSG_H
#define GUST_MSG_H

#include <nng/nng.h>
#include <stdbool.h>
#include <stdint.h>

#include "gust.pb-c.h"
#include "gust/err.h"

/* Packs m into a new nng message. */
int gust_msg_pack(const ProtobufCMessage *m, nng_msg **out);

/* Unpack helpers: NULL when the body is not a valid message of that type. */
Gust__ActivationRequest *gust_msg_request(nng_msg *m);
Gust__ActivationResult *gust_msg_result(nng_msg *m);

/* Bytes inside a message (not NUL-terminated). */
typedef struct gust_msg_str {
	const char *p;
	size_t n;
} gust_msg_str;

/* What the scheduler needs of an ActivationRequest, read from its bytes
 * without unpacking it: protobuf-c would copy the params (up to a megabyte
 * for a trigger fire) only for them to be freed unread. */
typedef struct gust_request_head {
	gust_msg_str activation_id, namespace_, action, version, user, journal_id, code_key;
	bool blocking;
	int32_t memory_mb, timeout_ms, attempt, concurrency;
	/* The rest of what the integrity check covers (gust/integrity.h):
	 * params and mac are bytes (their full length, NULs and all), the
	 * others strings as above. */
	gust_msg_str subject, kind, main, binding, params, mac;
	bool binary, egress;
	int64_t log_limit;
} gust_request_head;

/* Reads h from the packed ActivationRequest buf[0..len): views into buf that
 * end at a NUL, as protobuf-c's C strings do; a field given twice reads as
 * its last; absent strings are "" and absent numbers 0. GUST_EPROTO where
 * libprotobuf-c's unpack would fail: truncated, a bad tag, varint or length,
 * a group or unknown wire type, a string or number on the wrong wire type. */
int gust_msg_request_head(const void *buf, size_t len, gust_request_head *h);

/* The key of an action's warm sandboxes, written the same way by the
 * invoker's pool (and its InvokerStatus) and the scheduler's placement and
 * queues: "<user>|<code_key>|<version>". The invoking namespace is in it
 * because a shared package's action runs as its caller: a sandbox (its
 * globals, its state connection) must never serve two callers. The code key
 * is in it because it is unique per write of the code (a re-created action
 * never reuses an old one); the version because an update without new code
 * (limits, parameters) is a new record. '|' is in no name, so the parts
 * cannot run into each other. Writes at most size bytes with the NUL, as
 * snprintf, and returns the length the key needs. user empty: the owner. */
size_t gust_warm_key(char *buf, size_t size, const gust_request_head *h);

/* A buffer that holds any warm key of valid names: a user (256), a code key
 * (/gust/code/<ns 256>/<pkg 256>/<name 256>:<version>-<32 hex>) and a
 * version. */
#define GUST_WARM_KEY_MAX 1280

/* Builds a packed ActivationResult that reports a platform error (status 3,
 * "whisk error") for activation id. */
int gust_msg_error_result(const char *activation_id, int err, const char *msg, nng_msg **out);

/* nng sockets: a req socket with resends disabled (a resend would run an
 * activation twice behind the caller's back) and the given receive timeout. */
int gust_nng_req_open(nng_socket *s, int recv_timeout_ms);
/* Callers of a replicated service (gateways and trigger daemons calling the
 * leading scheduler): resend a request when its connection is lost. */
int gust_nng_req_failover(nng_socket s);

#endif
