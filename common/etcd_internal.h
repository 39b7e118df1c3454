/*
 * etcd_internal.h - what etcd.c shares with etcd_watch.c and etcd_lease.c; not
 * part of libgust's face (gust/etcd.h is).
 */
#ifndef GUST_ETCD_INTERNAL_H
#define GUST_ETCD_INTERNAL_H

#include <curl/curl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/etcd.h"

/* Timeouts of every unary call: a dead endpoint is skipped after the connect
 * timeout, a stuck one fails the call after the total. */
#define ETCD_CONNECT_TIMEOUT_MS 1000L
#define ETCD_TOTAL_TIMEOUT_MS 5000L

/* The endpoints of a handle, in the order calls try them. */
size_t etcd_endpoint_count(gust_etcd *e);
const char *etcd_endpoint(gust_etcd *e, size_t i);
/* The endpoint that answered last (calls start there); i is a hint, not a lock. */
size_t etcd_endpoint_preferred(gust_etcd *e);
void etcd_endpoint_prefer(gust_etcd *e, size_t i);

/* A 64-bit field that the gateway sends as a JSON string (or, rarely, a number);
 * 0 when absent, as proto3 omits zero values. */
int64_t etcd_json_i64(json_t *obj, const char *field);

/* Fills kv from a gateway "kv" object (base64 key and value). GUST_EPROTO on a
 * malformed one; kv is then cleared. */
int etcd_kv_from_json(json_t *j, gust_kv *kv);

/* The range_end that makes [key, range_end) every key starting with prefix, as
 * base64 (heap). An empty prefix, or one of only 0xff bytes, ranges to the end
 * ("\0"). */
char *etcd_prefix_end_b64(const char *prefix);

/* Sets c's TLS options (CA, client certificate and key) from e's credentials. */
void etcd_curl_tls(gust_etcd *e, CURL *c);

/* The auth token to send (heap, caller wipes and frees; NULL when e has no
 * user). stale: a token etcd just refused, renewed unless another thread
 * already did; NULL takes the current one. */
int etcd_token(gust_etcd *e, const char *stale, char **out, gust_error **err);

/* True when an error message from etcd means: authenticate again. */
bool etcd_token_refused(const char *msg);

#endif
