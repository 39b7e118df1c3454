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

#include "gust.pb-c.h"
#include "gust/err.h"

/* Packs m into a new nng message. */
int gust_msg_pack(const ProtobufCMessage *m, nng_msg **out);

/* Unpack helpers: NULL when the body is not a valid message of that type. */
Gust__ActivationRequest *gust_msg_request(nng_msg *m);
Gust__ActivationResult *gust_msg_result(nng_msg *m);

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
