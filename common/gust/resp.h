/*
 * gust/resp.h - the one piece of the Redis protocol (RESP) that Gust parses
 * from untrusted peers: a client's request. The invoker's state proxy
 * (invoker/inv_state.c) reads what a function sends, one command at a time,
 * and must know where each ends and what it is before Redis sees it.
 *
 * Only the multibulk form is accepted ("*<n>\r\n" then n "$<len>\r\n<bytes>\r\n");
 * the inline form ("GET k\r\n") is refused: every Redis client library sends
 * multibulk, and one form is less surface to get wrong. Replies from Redis are
 * not parsed here: the proxy passes them through.
 */
#ifndef GUST_RESP_H
#define GUST_RESP_H

#include <stddef.h>

#include "gust/util.h"

/* Bounds on one request; anything larger is a protocol error. */
#define GUST_RESP_MAX_ARGS 1024u
#define GUST_RESP_MAX_BULK (8u << 20)

typedef struct gust_resp_cmd {
	size_t len;       /* bytes of the whole command, header included */
	size_t nargs;     /* >= 1 */
	const char *name; /* the first argument (the command name), inside the buffer */
	size_t name_len;
} gust_resp_cmd;

/*
 * Parses one request at the start of buf[0..n). Returns 1 and fills *cmd when
 * a whole request is there, 0 when more bytes are needed, or -1 when the bytes
 * cannot start a valid request (the connection should be closed). Never reads
 * past buf + n; keeps no state, so a caller re-parses from the start of the
 * request when more bytes arrive (requests are small; bulk headers are skipped
 * in O(1) each).
 */
int gust_resp_parse_request(const char *buf, size_t n, gust_resp_cmd *cmd);

/*
 * The arguments of a request that gust_resp_parse_request accepted, from the
 * same bytes: the first min(cmd->nargs, max) of them into ptr[] and len[]
 * (the name is argument 0). Returns how many it filled.
 */
size_t gust_resp_args(const char *buf, const gust_resp_cmd *cmd, const char **ptr, size_t *len,
                      size_t max);

/* Appends a RESP error reply "-<msg>\r\n" to out (msg has no CR or LF). */
void gust_resp_error(gust_buf *out, const char *msg);

#endif
