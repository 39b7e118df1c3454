/*
 * gust/etcd.h - an etcd v3 client on libcurl against etcd's JSON gateway (/v3/...).
 *
 * etcd 3.4's gateway: keys and values travel base64-encoded; 64-bit numbers
 * (revisions, lease ids, TTLs) come back as JSON strings; a prefix range is `key`
 * plus `range_end` = prefix with its last byte plus one.
 *
 * A gust_etcd handle is thread-safe: each call borrows a kept-alive curl handle
 * from a small pool. Calls block (they are for start-up, CRUD and control paths,
 * never for the invoke hot path). Several endpoints may be given, comma-separated;
 * a call that cannot connect to one tries the next.
 *
 * Errors: GUST_EUNAVAIL (no endpoint answered), GUST_ENOENT (no such key / lease),
 * GUST_ECONFLICT (a compare failed), GUST_EPROTO (unexpected answer), GUST_EINVAL.
 */
#ifndef GUST_ETCD_H
#define GUST_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gust/err.h"

typedef struct gust_etcd gust_etcd;
typedef struct gust_etcd_watch gust_etcd_watch;

typedef struct gust_kv {
	char *key;   /* NUL-terminated */
	char *value; /* NUL-terminated for convenience; may hold NULs: use value_len */
	size_t value_len;
	int64_t create_revision;
	int64_t mod_revision;
	int64_t version;
	int64_t lease;
} gust_kv;

typedef struct gust_kvs {
	gust_kv *kvs;
	size_t n;
	int64_t revision; /* the store's revision when the range was served */
	bool more;
} gust_kvs;

/* endpoints: "http://127.0.0.1:2379[,http://...]". A handle starts with the
 * process's credentials (gust_etcd_set_credentials) as they are when it opens. */
int gust_etcd_open(gust_etcd **ep, const char *endpoints, gust_error **err);

/*
 * The credentials every handle opened afterwards uses (a daemon sets them once,
 * from its config, before it opens etcd). Any field may be NULL:
 *   ca        PEM file of the CA(s) that sign etcd's server certificate (https)
 *   cert, key PEM client certificate (with its chain) and key: etcd with
 *             --client-cert-auth refuses a client without one
 *   user, password  the etcd user whose roles bound what the daemon may read
 *             and write (RBAC). etcd's JSON gateway ignores a client
 *             certificate's CN as identity, so the user authenticates with a
 *             password for a token, refreshed when etcd says it is stale.
 * Copies everything; gust_etcd_set_credentials(NULL) forgets them (the
 * password is wiped).
 */
typedef struct gust_etcd_credentials {
	const char *ca, *cert, *key;
	const char *user, *password;
} gust_etcd_credentials;
void gust_etcd_set_credentials(const gust_etcd_credentials *c);
void gust_etcd_close(gust_etcd *e);

/* Puts key = value (value_len bytes). lease 0 = none. *rev (may be NULL) gets the
 * store's revision after the put. */
int gust_etcd_put(gust_etcd *e, const char *key, const void *value, size_t value_len, int64_t lease,
                  int64_t *rev, gust_error **err);

/* Gets one key into *kv (caller frees with gust_kv_clear). GUST_ENOENT if absent. */
int gust_etcd_get(gust_etcd *e, const char *key, gust_kv *kv, gust_error **err);

/* Ranges over every key starting with prefix, in key order, at most limit keys
 * (0 = no limit). out is filled; free with gust_kvs_free. */
int gust_etcd_range_prefix(gust_etcd *e, const char *prefix, int64_t limit, gust_kvs *out,
                           gust_error **err);

/* Deletes key (or every key under it when prefix is true). *ndeleted may be NULL. */
int gust_etcd_delete(gust_etcd *e, const char *key, bool prefix, int64_t *ndeleted,
                     gust_error **err);

/* Compare-and-swap in one txn: puts key = value only if the key's mod_revision
 * equals expect_mod_rev (0 means: only if the key does not exist). GUST_ECONFLICT
 * when the compare fails. *rev (may be NULL) gets the revision after the put. */
int gust_etcd_cas(gust_etcd *e, const char *key, int64_t expect_mod_rev, const void *value,
                  size_t value_len, int64_t lease, int64_t *rev, gust_error **err);

/* Compacts the key-value history up to revision rev (etcd's Compact, not
 * physical): older revisions of keys are forgotten, so the space of deleted
 * and overwritten values can be reused. A revision already compacted is not
 * an error (another caller got there first). */
int gust_etcd_compact(gust_etcd *e, int64_t rev, gust_error **err);

/* Deletes key only if its mod_revision equals expect_mod_rev. GUST_ECONFLICT otherwise. */
int gust_etcd_cas_delete(gust_etcd *e, const char *key, int64_t expect_mod_rev, gust_error **err);

/* Leases. keepalive refreshes once (call it every ttl/3); GUST_ENOENT if the lease
 * has expired or was revoked. */
int gust_etcd_lease_grant(gust_etcd *e, int64_t ttl_s, int64_t *lease, gust_error **err);
int gust_etcd_lease_keepalive(gust_etcd *e, int64_t lease, int64_t *ttl_left, gust_error **err);
int gust_etcd_lease_revoke(gust_etcd *e, int64_t lease, gust_error **err);

/* The client and peer URLs of every member of the etcd cluster (*urls: heap
 * strings in a heap array, *n of them). */
int gust_etcd_member_urls(gust_etcd *e, char ***urls, size_t *n, gust_error **err);

void gust_kv_clear(gust_kv *kv);
void gust_kvs_free(gust_kvs *kvs);

/*
 * Watches. A watch runs on a thread of its own and calls back on it, in revision
 * order. It delivers every event with revision >= start_rev under prefix. When the
 * connection drops it reconnects and resumes from the revision after the last one
 * delivered; if that revision has been compacted away it re-lists the prefix and
 * calls on_reset with the full current state (the callee replaces its cache), then
 * goes on watching from there. Callbacks must not call gust_etcd_watch_stop on
 * their own watch.
 */
enum gust_watch_type { GUST_WATCH_PUT = 0, GUST_WATCH_DELETE = 1 };

typedef struct gust_watch_event {
	int type;   /* GUST_WATCH_PUT or GUST_WATCH_DELETE */
	gust_kv kv; /* for DELETE only key and mod_revision are meaningful */
} gust_watch_event;

typedef struct gust_watch_ops {
	void (*on_events)(void *arg, const gust_watch_event *evs, size_t n, int64_t revision);
	void (*on_reset)(void *arg, const gust_kvs *snapshot); /* may be NULL */
} gust_watch_ops;

int gust_etcd_watch_start(gust_etcd *e, const char *prefix, int64_t start_rev,
                          const gust_watch_ops *ops, void *arg, gust_etcd_watch **wp,
                          gust_error **err);
/* The revision after the last event delivered (where a new watch would resume). */
int64_t gust_etcd_watch_next_rev(gust_etcd_watch *w);
/* Stops the watch and joins its thread; no callback runs after it returns. */
void gust_etcd_watch_stop(gust_etcd_watch *w);

/*
 * A mirror: the common "load once, then keep current" pattern. Lists prefix,
 * calls on_reset with the snapshot, then watches from snapshot.revision + 1.
 */
int gust_etcd_mirror_start(gust_etcd *e, const char *prefix, const gust_watch_ops *ops, void *arg,
                           gust_etcd_watch **wp, gust_error **err);

/*
 * A lease kept alive from a thread of its own (every ttl/3). If a keep-alive
 * finds the lease gone (expired while etcd was unreachable), it grants a new one
 * and calls on_renew(arg, new_lease) so the owner can re-put its keys.
 */
typedef struct gust_etcd_lease_keeper gust_etcd_lease_keeper;
int gust_etcd_lease_keeper_start(gust_etcd *e, int64_t ttl_s,
                                 void (*on_renew)(void *arg, int64_t lease), void *arg,
                                 gust_etcd_lease_keeper **kp, gust_error **err);
int64_t gust_etcd_lease_keeper_id(gust_etcd_lease_keeper *k);
/* Stops keeping alive; revoke=true also revokes the lease (its keys vanish now). */
void gust_etcd_lease_keeper_stop(gust_etcd_lease_keeper *k, bool revoke);

#endif
