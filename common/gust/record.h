/*
 * gust/record.h - OpenWhisk's activation record, built from a request and its
 * result. The invoker stores it in Redis; the gateway answers blocking calls
 * with it. The result bytes are embedded as they are (the invoker has already
 * checked that they are one JSON object).
 */
#ifndef GUST_RECORD_H
#define GUST_RECORD_H

#include "gust.pb-c.h"
#include "gust/util.h"

/* "success", "application error", "action developer error", "whisk internal error" */
const char *gust_status_name(int status);

/* The namespace an activation belongs to: the invoking one (req->user), as
 * in OpenWhisk, where an action of another namespace's shared package runs
 * as its caller. Its record and logs go to the caller's list, its state
 * cache is the caller's, and __OW_NAMESPACE names it; the owner's name stays
 * only in the action's path. The owner when no user is set. */
const char *gust_activation_ns(const Gust__ActivationRequest *req);

/* The record's "namespace" is gust_activation_ns(req). */
void gust_record_json(const Gust__ActivationRequest *req, const Gust__ActivationResult *res,
                      gust_buf *out);

/* Redis keys: the record itself and the per-namespace index (a sorted set
 * scored by start time). Heap strings. */
char *gust_record_key(const char *activation_id);
char *gust_record_index_key(const char *ns);

#endif
