/*
 * gust/integrity.h - the cluster secret, and the MACs that let a daemon tell
 * internal data made by another daemon from data a tenant path wrote.
 *
 * The secret: 32 random bytes, hex, at /gust/cluster/secret in etcd, made
 * put-if-absent by the first daemon (or `gust admin`) that needs it and read
 * by every daemon at start, then kept current by a watch. Tenants never reach
 * etcd (functions have no route to it), and whoever can write etcd can
 * already rewrite any action's code, so keeping the secret there grants no
 * new power. The value is "<current> [<previous>]": signers use the current
 * key, verifiers accept either, so that a rotation (docs/operations.md) never
 * refuses what a daemon that has not seen it yet signed.
 *
 * Two MACs, HMAC-SHA256 under that secret, with their own domain strings so
 * that one can never stand for the other:
 *  - an ActivationRequest's field `mac` (gust.proto), made where the action
 *    was resolved (gateway, gust-trigger: gust_fire_request_take) and checked
 *    by the scheduler when it takes a request and by the invoker before it
 *    runs one;
 *  - a journal entry's field `h` beside `a` and `r` (scheduler/sched_journal.c),
 *    checked before an entry is replayed.
 */
#ifndef GUST_INTEGRITY_H
#define GUST_INTEGRITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/err.h"
#include "gust/etcd.h"
#include "gust/msg.h"
#include "gust/sha256.h"

#define GUST_SECRET_KEY "/gust/cluster/secret"
#define GUST_MAC_HEX_LEN (2 * GUST_SHA256_LEN)

/* The value stored at GUST_SECRET_KEY: 64 hex digits, optionally a blank
 * and 64 more (the previous key). GUST_EINVAL for anything else. */
int gust_secret_parse(const char *value, size_t len, uint8_t cur[GUST_SHA256_LEN],
                      uint8_t prev[GUST_SHA256_LEN], bool *has_prev);

/* Installs the keys this process signs and verifies with (prev may be NULL).
 * Thread-safe; the daemons call it through gust_secret_start, tests directly. */
void gust_secret_set(const uint8_t cur[GUST_SHA256_LEN], const uint8_t *prev);
void gust_secret_clear(void);
bool gust_secret_loaded(void);

/* Reads the secret from etcd, creating it (an etcd txn: only if absent) when
 * there is none yet; installs it. */
int gust_secret_ensure(gust_etcd *e, gust_error **err);
/* gust_secret_ensure, then a watch that installs every new value (rotation). */
int gust_secret_start(gust_etcd *e, gust_error **err);
void gust_secret_stop(void);

/* An ActivationRequest's MAC. sign sets q->mac (freed by
 * gust_fire_request_free); GUST_EUNAVAIL when no secret is loaded.
 * verify/verify_head: 0, GUST_EAUTH (missing or wrong MAC) or GUST_EUNAVAIL. */
int gust_areq_sign(Gust__ActivationRequest *q);
int gust_areq_verify(const Gust__ActivationRequest *q);
int gust_areq_verify_head(const gust_request_head *h);

/* Whether the code at code_key may run for an activation of action (owned by
 * ns) invoked by user: the key must lie under /gust/code/<ns>/ (the exact
 * namespace, not a longer one with the same start), and the action must be
 * user's own or in a package (shared packages are the only way to run another
 * namespace's code; the gateway decided the caller may, and the MAC says the
 * gateway decided). 0 or GUST_EPERM with why[] filled. */
int gust_areq_code_check(gust_msg_str ns, gust_msg_str user, gust_msg_str action,
                         gust_msg_str code_key, char *why, size_t whylen);
/* The same for C strings (NULL reads as ""). */
int gust_areq_code_check_str(const char *ns, const char *user, const char *action,
                             const char *code_key, char *why, size_t whylen);

/* Bytes of a request that failed a check, made fit for a log line: printable
 * ASCII kept, anything else '?', cut to cap - 1 (its author is hostile and
 * may have put newlines in to forge log lines). Returns dst. */
char *gust_log_clean(char *dst, size_t cap, const char *p, size_t n);

/* A journal entry's MAC over its activation id and request bytes, as hex
 * (out: GUST_MAC_HEX_LEN + 1 bytes). GUST_EUNAVAIL without a secret. */
int gust_journal_mac_hex(const char *aid, size_t aidn, const void *r, size_t rn, char *out);
/* 0, GUST_EAUTH or GUST_EUNAVAIL. h: the stored hex (hn bytes). */
int gust_journal_verify(const char *aid, size_t aidn, const void *r, size_t rn, const char *h,
                        size_t hn);

#endif
