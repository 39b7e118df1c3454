/* inv_record.c - activation records to Redis, through the pipelining writer:
 * the record with a time to live, and the namespace's index (a sorted set by
 * start time, trimmed to the same time to live). */
#include <stdio.h>
#include <string.h>

#include "gust/record.h"
#include "invoker.h"

void inv_record_put(inv *v, const char *id, const char *ns, int64_t start_ms, const char *rec,
                    size_t len)
{
	cleanup_free char *key = gust_record_key(id);
	cleanup_free char *idx = gust_record_index_key(ns);
	char ttl[32], score[32], cutoff[32];
	snprintf(ttl, sizeof(ttl), "%lld", v->cfg.record_ttl_s);
	snprintf(score, sizeof(score), "%lld", (long long)start_ms);
	snprintf(cutoff, sizeof(cutoff), "%lld",
	         (long long)(gust_wall_ms() - v->cfg.record_ttl_s * 1000));
	const char *set[] = {"SET", key, rec, "EX", ttl};
	size_t setl[] = {3, strlen(key), len, 2, strlen(ttl)};
	gust_redis_writer_cmd(v->records, 5, set, setl);
	const char *zadd[] = {"ZADD", idx, score, id};
	gust_redis_writer_cmd(v->records, 4, zadd, NULL);
	const char *trim[] = {"ZREMRANGEBYSCORE", idx, "-inf", cutoff};
	gust_redis_writer_cmd(v->records, 4, trim, NULL);
	const char *exp[] = {"EXPIRE", idx, ttl};
	gust_redis_writer_cmd(v->records, 3, exp, NULL);
}

void inv_record_write(inv *v, const Gust__ActivationRequest *req, const Gust__ActivationResult *res)
{
	gust_buf rec = {0};
	gust_record_json(req, res, &rec);
	/* In the caller's list: the owner of a shared action sees none of it. */
	inv_record_put(v, req->activation_id, gust_activation_ns(req), res->start_ms, rec.data,
	               rec.len);
	gust_buf_free(&rec);
	/* A journaled activation leaves the scheduler's journal here, on the same
	 * connection and after its record: Redis runs a connection's commands in
	 * order, and the writer resends a broken batch whole, so the entry can
	 * only go once the record is stored. */
	if (req->journal_id && req->journal_id[0]) {
		const char *xdel[] = {"XDEL", "gust:journal", req->journal_id};
		gust_redis_writer_cmd(v->records, 3, xdel, NULL);
	}
}
