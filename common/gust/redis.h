/*
 * gust/redis.h - Redis on hiredis: connecting by address, and a writer thread
 * that pipelines commands in batches (activation records, journal appends).
 *
 * Addresses: "host:port" or "unix:/path/to/socket".
 */
#ifndef GUST_REDIS_H
#define GUST_REDIS_H

#include <hiredis/hiredis.h>
#include <stddef.h>

#include "gust/err.h"

/*
 * The identity this process authenticates as on the cluster's Redis (an ACL
 * user and its password; NULL user: none, Redis's default user). Set once at
 * start, before any connection; copied. Every gust_redis_connect (and the
 * writer's) sends AUTH with it: these connections all go to the cluster's
 * Redis (the configured address). Tenant-given addresses (feeds) connect
 * through gust_policy_connect, never with these credentials.
 */
void gust_redis_set_credentials(const char *user, const char *password);

/* Connects with a timeout (also used as the command timeout), then
 * authenticates with the process's credentials if any. */
int gust_redis_connect(const char *addr, int timeout_ms, redisContext **out, gust_error **err);

/*
 * Sends ncmds commands (argc[i] arguments each: argv[i], argvlen[i]) straight
 * to c's socket with writev: large arguments go from where they are, where
 * redisAppendCommandArgv copies each into a command string and that into the
 * output buffer, which grows a megabyte at a time (a copy of the whole buffer
 * each time) - for the journal's megabyte requests, most of the scheduler's
 * CPU outside the kernel. Nothing may be waiting in c's output buffer. Read
 * the replies with redisGetReply. REDIS_OK, or REDIS_ERR with c->err set
 * (the connection is then unusable).
 */
int gust_redis_sendv(redisContext *c, int ncmds, const int *argc, const char *const *const *argv,
                     const size_t *const *argvlen);

/* Takes rep (a reply of a command on r, or NULL when r failed) and frees it:
 * 0 for any reply but an error; GUST_EIO for an error reply, GUST_EUNAVAIL
 * for none, with "redis: <what>: <reason>" in *err. */
int gust_redis_reply_ok(redisContext *r, redisReply *rep, const char *what, gust_error **err);

/*
 * A writer owns one connection and a thread. gust_redis_writer_cmd copies the
 * command into its queue and returns at once; the thread sends whatever is
 * queued as one pipeline, and on a connection error reconnects and sends the
 * same batch again, so a command is never dropped while the writer runs
 * (at least once: commands must be idempotent, e.g. SET, ZADD).
 */
typedef struct gust_redis_writer gust_redis_writer;
int gust_redis_writer_start(const char *addr, gust_redis_writer **wp, gust_error **err);
void gust_redis_writer_cmd(gust_redis_writer *w, int argc, const char **argv,
                           const size_t *argvlen);
/* Commands queued and not yet acknowledged by Redis. */
size_t gust_redis_writer_pending(gust_redis_writer *w);
/* Sends what is queued (waits at most timeout_ms), then stops. Safe on NULL. */
void gust_redis_writer_stop(gust_redis_writer *w, int timeout_ms);

#endif
