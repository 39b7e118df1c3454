/* record.c - activation records in OpenWhisk's shape. */
#include <string.h>

#include "gust/err.h"
#include "gust/record.h"

const char *gust_status_name(int status)
{
	switch (status) {
	case 0:
		return "success";
	case 1:
		return "application error";
	case 2:
		return "action developer error";
	default:
		return "whisk internal error";
	}
}

static void put_str(gust_buf *b, const char *k, const char *v)
{
	gust_buf_printf(b, "\"%s\":", k);
	gust_buf_json_str(b, v ? v : "", v ? strlen(v) : 0);
}

const char *gust_activation_ns(const Gust__ActivationRequest *req)
{
	return req->user && req->user[0] ? req->user : req->namespace_;
}

void gust_record_json(const Gust__ActivationRequest *req, const Gust__ActivationResult *res,
                      gust_buf *b)
{
	int64_t start = res->start_ms, end = res->end_ms;
	if (start == 0)
		start = req->accepted_ms;
	if (end < start)
		end = start;
	gust_buf_puts(b, "{");
	put_str(b, "activationId", req->activation_id);
	gust_buf_puts(b, ",");
	put_str(b, "namespace", gust_activation_ns(req));
	gust_buf_puts(b, ",");
	put_str(b, "name", req->action);
	gust_buf_puts(b, ",");
	put_str(b, "version", req->version);
	gust_buf_puts(b, ",");
	put_str(b, "subject", req->subject);
	gust_buf_printf(b, ",\"start\":%lld,\"end\":%lld,\"duration\":%lld", (long long)start,
	                (long long)end, (long long)(end - start));
	if (req->cause && req->cause[0]) {
		gust_buf_puts(b, ",");
		put_str(b, "cause", req->cause);
	}
	gust_buf_puts(b, ",\"response\":{");
	put_str(b, "status", gust_status_name(res->status));
	gust_buf_printf(b, ",\"statusCode\":%d,\"success\":%s,\"result\":", res->status,
	                res->status == 0 ? "true" : "false");
	if (res->result.len > 0)
		gust_buf_append(b, res->result.data, res->result.len);
	else
		gust_buf_puts(b, "{}");
	gust_buf_puts(b, "},\"logs\":[");
	for (size_t i = 0; i < res->n_logs; i++) {
		if (i)
			gust_buf_puts(b, ",");
		gust_buf_json_str(b, res->logs[i], strlen(res->logs[i]));
	}
	gust_buf_puts(b, "],\"annotations\":[{\"key\":\"path\",\"value\":");
	{
		/* Names are checked at the API, but a record must be valid JSON
		 * whatever reached the invoker: escape the path like every string. */
		cleanup_free char *path = gust_xasprintf("%s/%s", req->namespace_, req->action);
		gust_buf_json_str(b, path, strlen(path));
		gust_buf_puts(b, "}");
	}
	gust_buf_printf(b, ",{\"key\":\"waitTime\",\"value\":%lld}", (long long)res->wait_ms);
	gust_buf_puts(b, ",{\"key\":\"kind\",\"value\":");
	gust_buf_json_str(b, req->kind, strlen(req->kind));
	gust_buf_printf(b, "},{\"key\":\"timeout\",\"value\":%s}",
	                res->status == 2 && res->error == GUST_ETIMEDOUT ? "true" : "false");
	gust_buf_printf(b,
	                ",{\"key\":\"limits\",\"value\":{\"concurrency\":1,\"logs\":%lld,"
	                "\"memory\":%d,\"timeout\":%d}}",
	                (long long)(req->log_limit / (1024 * 1024)), req->memory_mb,
	                req->timeout_ms);
	if (res->init_ms > 0)
		gust_buf_printf(b, ",{\"key\":\"initTime\",\"value\":%lld}",
		                (long long)res->init_ms);
	gust_buf_puts(b, "],\"publish\":false}");
}

char *gust_record_key(const char *activation_id)
{
	return gust_xasprintf("gust:act:%s", activation_id);
}

char *gust_record_index_key(const char *ns)
{
	return gust_xasprintf("gust:acts:%s", ns);
}
