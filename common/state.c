/* state.c - the state cache's ACL users and passwords (gust/state.h). */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gust/scope.h"
#include "gust/redis.h"
#include "gust/state.h"
#include "gust/util.h"

/*
 * What a function may send. Every command here either names its keys in its
 * arguments (so Redis checks them against the user's key pattern) or touches
 * no data at all (PING, ECHO, MULTI, EXEC, DISCARD, UNWATCH). Whole ACL
 * categories are not used: @read and @keyspace hold SCAN, RANDOMKEY, DBSIZE
 * and KEYS-like commands that take no key and so slip past key patterns,
 * telling one namespace about another's keys. Nothing that blocks, selects a
 * database, changes the connection's identity or protocol, or reaches
 * scripts, pub/sub, configuration or the server.
 */
static const char *const state_cmds[] = {
    /* strings */
    "get", "set", "setnx", "setex", "psetex", "getset", "getdel", "getex", "mget", "mset", "msetnx",
    "incr", "incrby", "incrbyfloat", "decr", "decrby", "append", "strlen", "getrange", "setrange",
    /* keys */
    "del", "unlink", "exists", "expire", "pexpire", "expireat", "pexpireat", "ttl", "pttl",
    "persist", "type", "touch",
    /* hashes */
    "hget", "hset", "hsetnx", "hmget", "hmset", "hgetall", "hdel", "hincrby", "hincrbyfloat",
    "hexists", "hlen", "hkeys", "hvals", "hstrlen",
    /* lists */
    "lpush", "rpush", "lpushx", "rpushx", "lpop", "rpop", "lrange", "llen", "lindex", "lset",
    "ltrim", "lrem", "linsert", "lpos", "lmove", "rpoplpush",
    /* sets and sorted sets */
    "sadd", "srem", "smembers", "sismember", "scard", "spop", "srandmember", "zadd", "zrem",
    "zscore", "zincrby", "zcard", "zrange", "zrank", "zcount",
    /* streams (no XREAD: it can block) */
    "xadd", "xlen", "xrange", "xrevrange", "xdel", "xtrim",
    /* transactions (compare-and-set) and the connection */
    "watch", "unwatch", "multi", "exec", "discard", "ping", "echo"};

/* The allowed commands that can make stored data larger. LMOVE/RPOPLPUSH
 * only move an element, LSET and LINSERT replace or add one, GETEX and
 * TOUCH change no size. */
static const char *const state_grows[] = {
    "set",     "setnx",       "setex",        "psetex",  "getset", "mset",     "msetnx", "incr",
    "incrby",  "incrbyfloat", "decr",         "decrby",  "append", "setrange", "hset",   "hsetnx",
    "hmset",   "hincrby",     "hincrbyfloat", "lpush",   "rpush",  "lpushx",   "rpushx", "lset",
    "linsert", "sadd",        "zadd",         "zincrby", "xadd"};

static bool state_in(const char *const *table, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(table[i]) == len && strncasecmp(table[i], name, len) == 0)
			return true;
	return false;
}

bool gust_state_cmd_allowed(const char *name, size_t len)
{
	return state_in(state_cmds, sizeof(state_cmds) / sizeof(state_cmds[0]), name, len);
}

bool gust_state_cmd_grows(const char *name, size_t len)
{
	return state_in(state_grows, sizeof(state_grows) / sizeof(state_grows[0]), name, len);
}

/* redis.call runs as the calling user: the namespace's key pattern holds
 * inside too. STRLEN of another type raises WRONGTYPE, as APPEND would. */
const char gust_state_functions[] =
    "#!lua name=gust\n"
    "redis.register_function('gust_append', function(keys, args)\n"
    "  local max = tonumber(args[2])\n"
    "  local n = redis.call('STRLEN', keys[1]) + string.len(args[1])\n"
    "  if n > max then\n"
    "    return redis.error_reply('ERR gust: APPEND would make the value ' .. n ..\n"
    "      ' bytes, over the namespace limit of ' .. max .. ' bytes (stateValueBytes)')\n"
    "  end\n"
    "  return redis.call('APPEND', keys[1], args[1])\n"
    "end)\n"
    "redis.register_function('gust_refuse', function(keys, args)\n"
    "  return redis.error_reply('ERR ' .. args[1])\n"
    "end)\n";

int gust_state_functions_load(redisContext *r, gust_error **err)
{
	return gust_redis_reply_ok(
	    r, redisCommand(r, "FUNCTION LOAD REPLACE %s", gust_state_functions), "FUNCTION LOAD",
	    err);
}

int gust_state_limits(gust_etcd *e, const char *ns, long long *state_bytes, long long *value_bytes,
                      gust_error **err)
{
	cleanup_free char *key = gust_xasprintf("/gust/namespaces/%s", ns);
	gust_kv kv = {0};
	int rv = gust_etcd_get(e, key, &kv, err);
	if (rv == GUST_ENOENT) {
		gust_error_free(*err);
		*err = NULL;
		return 0;
	}
	if (rv != 0)
		return rv;
	json_t *j = json_loadb(kv.value, kv.value_len, 0, NULL);
	gust_kv_clear(&kv);
	json_t *lim = json_object_get(j, "limits");
	json_t *sb = json_object_get(lim, "stateBytes");
	json_t *vb = json_object_get(lim, "stateValueBytes");
	if (json_is_integer(sb) && json_integer_value(sb) > 0)
		*state_bytes = json_integer_value(sb);
	if (json_is_integer(vb) && json_integer_value(vb) > 0)
		*value_bytes = json_integer_value(vb);
	json_decref(j);
	return 0;
}

char *gust_state_user(const char *ns)
{
	return gust_xasprintf("gust-ns-%s", ns);
}

char *gust_state_prefix(const char *ns)
{
	return gust_xasprintf("gust:state:%s:", ns);
}

int gust_state_acl_set(redisContext *r, const char *ns, const char *password, gust_error **err)
{
	size_t ncmd = sizeof(state_cmds) / sizeof(state_cmds[0]);
	size_t argc = 0, cap = ncmd + 10;
	const char **argv = gust_xcalloc(cap, sizeof(*argv));
	cleanup_free char *user = gust_state_user(ns);
	cleanup_free char *pass = gust_xasprintf(">%s", password);
	cleanup_free char *pat = gust_xasprintf("~gust:state:%s:*", ns);
	char(*plus)[24] = gust_xcalloc(ncmd, sizeof(*plus));
	argv[argc++] = "ACL";
	argv[argc++] = "SETUSER";
	argv[argc++] = user;
	/* reset: no earlier password, key, channel or command survives. */
	argv[argc++] = "reset";
	argv[argc++] = "on";
	argv[argc++] = pass;
	argv[argc++] = pat;
	argv[argc++] = "resetchannels";
	argv[argc++] = "-@all";
	for (size_t i = 0; i < ncmd; i++) {
		snprintf(plus[i], sizeof(plus[i]), "+%s", state_cmds[i]);
		argv[argc++] = plus[i];
	}
	/* The proxy's own rewrites (gust_state_functions): never forwarded
	 * from a function, which has no other way to Redis. */
	argv[argc++] = "+fcall";
	redisReply *rep = redisCommandArgv(r, (int)argc, argv, NULL);
	free(argv);
	free(plus);
	int rv = gust_redis_reply_ok(r, rep, "ACL SETUSER", err);
	if (rv == 0) {
		/* Persists the user when Redis runs with an aclfile; without one
		 * Redis refuses, and the invoker re-creates users on demand. */
		rep = redisCommand(r, "ACL SAVE");
		if (rep != NULL)
			freeReplyObject(rep);
	}
	return rv;
}

int gust_state_acl_delete(redisContext *r, const char *ns, gust_error **err)
{
	cleanup_free char *user = gust_state_user(ns);
	cleanup_free char *pat = gust_xasprintf("gust:state:%s:*", ns);
	/* The feed user (gust/scope.h) goes with it: both act as the namespace. */
	cleanup_free char *feed = gust_feed_user(ns);
	int rv = gust_redis_reply_ok(r, redisCommand(r, "ACL DELUSER %s %s", user, feed),
	                             "ACL DELUSER", err);
	if (rv != 0)
		return rv;
	redisReply *rep = redisCommand(r, "ACL SAVE");
	if (rep != NULL)
		freeReplyObject(rep);
	/* DELUSER has closed the user's connections; now its keys go. */
	char cursor[32] = "0";
	do {
		rep = redisCommand(r, "SCAN %s MATCH %s COUNT 1000", cursor, pat);
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2) {
			int rv2 = gust_redis_reply_ok(r, rep, "SCAN", err);
			return rv2 != 0
			           ? rv2
			           : gust_error_set(err, GUST_EPROTO, "redis: SCAN: bad reply");
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		redisReply *keys = rep->element[1];
		for (size_t i = 0; i < keys->elements; i++) {
			redisReply *d = redisCommand(r, "UNLINK %b", keys->element[i]->str,
			                             keys->element[i]->len);
			if (d != NULL)
				freeReplyObject(d);
		}
		freeReplyObject(rep);
	} while (strcmp(cursor, "0") != 0);
	return 0;
}

int gust_state_password(gust_etcd *e, const char *ns, bool create, char **out, gust_error **err)
{
	cleanup_free char *key = gust_xasprintf("%s%s", GUST_STATE_ETCD_PREFIX, ns);
	for (int tries = 0; tries < 3; tries++) {
		gust_kv kv = {0};
		int rv = gust_etcd_get(e, key, &kv, err);
		if (rv == 0) {
			json_t *j = json_loadb(kv.value, kv.value_len, 0, NULL);
			gust_kv_clear(&kv);
			const char *p = json_string_value(json_object_get(j, "password"));
			if (p == NULL) {
				json_decref(j);
				return gust_error_set(err, GUST_EPROTO, "%s: no password", key);
			}
			*out = gust_xstrdup(p);
			json_decref(j);
			return 0;
		}
		if (rv != GUST_ENOENT || !create)
			return rv;
		gust_error_free(*err);
		*err = NULL;
		char pw[GUST_STATE_PASSWORD_LEN + 1];
		gust_random_hex(pw, GUST_STATE_PASSWORD_LEN / 2);
		cleanup_free char *user = gust_state_user(ns);
		json_t *j = json_pack("{s:s, s:s}", "user", user, "password", pw);
		char *doc = json_dumps(j, JSON_COMPACT);
		json_decref(j);
		rv = gust_etcd_cas(e, key, 0, doc, strlen(doc), 0, NULL, err);
		free(doc);
		if (rv == 0) {
			*out = gust_xstrdup(pw);
			return 0;
		}
		if (rv != GUST_ECONFLICT)
			return rv;
		gust_error_free(*err); /* someone else made it first: read theirs */
		*err = NULL;
	}
	return gust_error_set(err, GUST_ECONFLICT, "%s keeps changing", key);
}
