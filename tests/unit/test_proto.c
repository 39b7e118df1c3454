/* test_proto.c - unit tests of protobuf over nng (common/msg.c) and of the
 * activation record (common/record.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <nng/nng.h>
#include <stdlib.h>
#include <string.h>

#include "gust/err.h"
#include "gust/msg.h"
#include "gust/record.h"

static const uint8_t params[] = "{\"a\":\"x\0y\",\"b\":[1,2]}\0\0tail";

static void fill_request(Gust__ActivationRequest *q)
{
	gust__activation_request__init(q);
	q->activation_id = (char *)"0123456789abcdef0123456789abcdef";
	q->namespace_ = (char *)"guest";
	q->action = (char *)"pkg/hello";
	q->version = (char *)"0.0.3";
	q->params.data = (uint8_t *)params;
	q->params.len = sizeof(params); /* with every NUL, the final one too */
	q->deadline_ms = 1700000000123;
	q->blocking = true;
	q->cause = (char *)"fedcba9876543210fedcba9876543210";
	q->trace = (char *)"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
	q->kind = (char *)"python:3";
	q->main = (char *)"main";
	q->binary = true;
	q->memory_mb = 256;
	q->timeout_ms = 60000;
	q->log_limit = 10 << 20;
	q->code_key = (char *)"/gust/code/guest/pkg/hello@0.0.3";
	q->subject = (char *)"guest-subject";
	q->api_host = (char *)"http://127.0.0.1:3233";
	q->user = (char *)"other ns";
	q->accepted_ms = 1700000000000;
}

static void test_request_roundtrip(void **state)
{
	Gust__ActivationRequest q;
	fill_request(&q);
	nng_msg *m = NULL;
	assert_int_equal(gust_msg_pack(&q.base, &m), 0);
	assert_non_null(m);
	assert_int_equal(nng_msg_len(m), gust__activation_request__get_packed_size(&q));

	Gust__ActivationRequest *r = gust_msg_request(m);
	assert_non_null(r);
	assert_string_equal(r->activation_id, q.activation_id);
	assert_string_equal(r->namespace_, q.namespace_);
	assert_string_equal(r->action, q.action);
	assert_string_equal(r->version, q.version);
	assert_int_equal(r->params.len, sizeof(params));
	assert_memory_equal(r->params.data, params, sizeof(params));
	assert_int_equal(r->deadline_ms, q.deadline_ms);
	assert_true(r->blocking);
	assert_string_equal(r->cause, q.cause);
	assert_string_equal(r->trace, q.trace);
	assert_string_equal(r->kind, q.kind);
	assert_string_equal(r->main, q.main);
	assert_true(r->binary);
	assert_int_equal(r->memory_mb, 256);
	assert_int_equal(r->timeout_ms, 60000);
	assert_int_equal(r->log_limit, 10 << 20);
	assert_string_equal(r->code_key, q.code_key);
	assert_string_equal(r->subject, q.subject);
	assert_string_equal(r->api_host, q.api_host);
	assert_string_equal(r->user, q.user);
	assert_int_equal(r->accepted_ms, q.accepted_ms);
	gust__activation_request__free_unpacked(r, NULL);

	/* The same bytes are not an ActivationResult with the same meaning, but
	 * they must at least not crash the other helper. */
	Gust__ActivationResult *wrong = gust_msg_result(m);
	if (wrong)
		gust__activation_result__free_unpacked(wrong, NULL);
	nng_msg_free(m);

	/* An empty message is a request with every field at its default. */
	Gust__ActivationRequest e = GUST__ACTIVATION_REQUEST__INIT;
	assert_int_equal(gust_msg_pack(&e.base, &m), 0);
	assert_int_equal(nng_msg_len(m), 0);
	r = gust_msg_request(m);
	assert_non_null(r);
	assert_string_equal(r->activation_id, "");
	assert_int_equal(r->params.len, 0);
	assert_false(r->blocking);
	gust__activation_request__free_unpacked(r, NULL);
	nng_msg_free(m);
}

static bool head_is(gust_msg_str v, const char *s)
{
	return v.p != NULL && v.n == strlen(s) && memcmp(v.p, s, v.n) == 0;
}

/* The scheduler's reading of a request without unpacking it. */
static void test_request_head(void **state)
{
	Gust__ActivationRequest q;
	fill_request(&q);
	q.attempt = 2;
	q.concurrency = -3; /* a negative int32 is ten bytes on the wire */
	nng_msg *m = NULL;
	assert_int_equal(gust_msg_pack(&q.base, &m), 0);
	/* the journal id, appended as the scheduler does: the last one wins */
	/* tag 21 << 3 | 2 = 170: a two-byte varint */
	const uint8_t jid[] = {0xaa, 0x01, 3, 'a', '-', '1', 0xaa, 0x01, 3, '7', '-', '0'};
	assert_int_equal(nng_msg_append(m, jid, sizeof(jid)), 0);

	gust_request_head h;
	assert_int_equal(gust_msg_request_head(nng_msg_body(m), nng_msg_len(m), &h), 0);
	assert_true(head_is(h.activation_id, q.activation_id));
	assert_true(head_is(h.namespace_, "guest"));
	assert_true(head_is(h.action, "pkg/hello"));
	assert_true(head_is(h.version, "0.0.3"));
	assert_true(head_is(h.user, "other ns"));
	assert_true(head_is(h.journal_id, "7-0"));
	assert_true(head_is(h.code_key, q.code_key));
	assert_true(h.blocking);

	/* the warm key: caller, code, version; the owner without a caller */
	char wk[GUST_WARM_KEY_MAX];
	size_t wn = gust_warm_key(wk, sizeof(wk), &h);
	assert_string_equal(wk, "other ns|/gust/code/guest/pkg/hello@0.0.3|0.0.3");
	assert_int_equal(wn, strlen(wk));
	assert_int_equal(gust_warm_key(NULL, 0, &h), wn);
	gust_request_head owner = h;
	owner.user = (gust_msg_str){"", 0};
	gust_warm_key(wk, sizeof(wk), &owner);
	assert_string_equal(wk, "guest|/gust/code/guest/pkg/hello@0.0.3|0.0.3");
	assert_int_equal(h.memory_mb, 256);
	assert_int_equal(h.timeout_ms, 60000);
	assert_int_equal(h.attempt, 2);
	assert_int_equal(h.concurrency, -3);

	/* every truncation is refused (the params' bytes included) */
	size_t n = nng_msg_len(m);
	const uint8_t *b = nng_msg_body(m);
	for (size_t cut = 1; cut < n; cut++) {
		Gust__ActivationRequest *r = gust__activation_request__unpack(NULL, cut, b);
		int rv = gust_msg_request_head(b, cut, &h);
		if (r != NULL) /* a cut between fields is a shorter request */
			assert_int_equal(rv, 0);
		else
			assert_int_equal(rv, GUST_EPROTO);
		if (r)
			gust__activation_request__free_unpacked(r, NULL);
	}
	nng_msg_free(m);

	/* empty: every field at its default */
	assert_int_equal(gust_msg_request_head("", 0, &h), 0);
	assert_true(head_is(h.activation_id, "") && head_is(h.user, "") &&
	            head_is(h.journal_id, "") && head_is(h.code_key, ""));
	assert_false(h.blocking);
	/* a known field on the wrong wire type, field 0, a group, an unknown
	 * field skipped */
	const uint8_t wrong[] = {1 << 3 | 0, 1};
	assert_int_equal(gust_msg_request_head(wrong, sizeof(wrong), &h), GUST_EPROTO);
	const uint8_t zero[] = {0 << 3 | 0, 1};
	assert_int_equal(gust_msg_request_head(zero, sizeof(zero), &h), GUST_EPROTO);
	/* field 30: a two-byte tag (30 << 3 | wire type, as a varint) */
	const uint8_t group[] = {0xf3, 0x01};
	assert_int_equal(gust_msg_request_head(group, sizeof(group), &h), GUST_EPROTO);
	const uint8_t unknown[] = {0xf2, 0x01, 2, 'x', 'y', 7 << 3 | 0, 1, 0xf5, 0x01, 1, 2, 3, 4};
	assert_int_equal(gust_msg_request_head(unknown, sizeof(unknown), &h), 0);
	assert_true(h.blocking);
}

static void test_result_roundtrip(void **state)
{
	char *logs[] = {(char *)"2024-01-01T00:00:00Z stdout: hello", (char *)"",
	                (char *)"caf\xc3\xa9 \"quoted\"\tand\\slash"};
	static const uint8_t result[] = "{\"greeting\":\"hi\"}";
	Gust__ActivationResult res = GUST__ACTIVATION_RESULT__INIT;
	res.activation_id = (char *)"abc";
	res.status = 1;
	res.result.data = (uint8_t *)result;
	res.result.len = sizeof(result) - 1;
	res.n_logs = 3;
	res.logs = logs;
	res.start_ms = 1000;
	res.end_ms = 1500;
	res.init_ms = 42;
	res.wait_ms = 7;
	res.error = GUST_EBADGATEWAY;
	res.error_msg = (char *)"boom";
	res.accepted = true;
	res.invoker = (char *)"invoker0";
	res.memory_mb = 128;
	res.timeout_ms = 3000;
	res.kind = (char *)"nodejs:20";

	nng_msg *m = NULL;
	assert_int_equal(gust_msg_pack(&res.base, &m), 0);
	Gust__ActivationResult *r = gust_msg_result(m);
	nng_msg_free(m);
	assert_non_null(r);
	assert_string_equal(r->activation_id, "abc");
	assert_int_equal(r->status, 1);
	assert_int_equal(r->result.len, sizeof(result) - 1);
	assert_memory_equal(r->result.data, result, sizeof(result) - 1);
	assert_int_equal(r->n_logs, 3);
	for (int i = 0; i < 3; i++)
		assert_string_equal(r->logs[i], logs[i]);
	assert_int_equal(r->start_ms, 1000);
	assert_int_equal(r->end_ms, 1500);
	assert_int_equal(r->init_ms, 42);
	assert_int_equal(r->wait_ms, 7);
	assert_int_equal(r->error, GUST_EBADGATEWAY);
	assert_string_equal(r->error_msg, "boom");
	assert_true(r->accepted);
	assert_string_equal(r->invoker, "invoker0");
	assert_int_equal(r->memory_mb, 128);
	assert_int_equal(r->timeout_ms, 3000);
	assert_string_equal(r->kind, "nodejs:20");
	gust__activation_result__free_unpacked(r, NULL);
}

/* Unpacks len bytes as a request and as a result; only crashes or leaks fail. */
static int unpack_any(const void *p, size_t len)
{
	nng_msg *m;
	assert_int_equal(nng_msg_alloc(&m, len), 0);
	if (len)
		memcpy(nng_msg_body(m), p, len);
	int ok = 0;
	Gust__ActivationRequest *q = gust_msg_request(m);
	if (q) {
		ok = 1;
		/* What did unpack is well-formed: strings are terminated. */
		assert_non_null(q->activation_id);
		assert_true(strlen(q->activation_id) <= len);
		assert_true(q->params.len <= len);
		gust__activation_request__free_unpacked(q, NULL);
	}
	Gust__ActivationResult *r = gust_msg_result(m);
	if (r) {
		assert_true(r->n_logs <= len);
		for (size_t i = 0; i < r->n_logs; i++)
			assert_non_null(r->logs[i]);
		gust__activation_result__free_unpacked(r, NULL);
	}
	nng_msg_free(m);
	return ok;
}

static void test_garbage(void **state)
{
	srand(1234);
	uint8_t buf[600];
	int ok = 0;
	for (int i = 0; i < 10000; i++) {
		size_t len = (size_t)rand() % sizeof(buf);
		if (i % 4 == 0)
			len %= 16; /* short inputs are the likeliest to parse */
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)rand();
		ok += unpack_any(buf, len);
	}
	/* Some random inputs are valid, most are not; both paths ran. */
	assert_true(ok > 0);
	assert_true(ok < 10000);

	/* Every truncation and every single-byte corruption of a valid message. */
	Gust__ActivationRequest q;
	fill_request(&q);
	size_t n = gust__activation_request__get_packed_size(&q);
	uint8_t *good = malloc(n);
	gust__activation_request__pack(&q, good);
	uint8_t *copy = malloc(n);
	for (size_t len = 0; len < n; len++)
		unpack_any(good, len);
	for (size_t k = 0; k < n; k++) {
		memcpy(copy, good, n);
		for (int v = 0; v < 256; v += 17) {
			copy[k] = (uint8_t)v;
			unpack_any(copy, n);
		}
	}
	free(copy);
	free(good);
}

static void test_error_result(void **state)
{
	static const char *const msgs[] = {
	    "plain",
	    "",
	    "has \"quotes\" and \\backslash\\",
	    "line1\nline2\r\n\ttabbed \x01 ctrl",
	    "utf8: \xe2\x82\xac",
	};
	for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
		nng_msg *m = NULL;
		assert_int_equal(gust_msg_error_result("id-1", GUST_ETIMEDOUT, msgs[i], &m), 0);
		Gust__ActivationResult *r = gust_msg_result(m);
		nng_msg_free(m);
		assert_non_null(r);
		assert_string_equal(r->activation_id, "id-1");
		assert_int_equal(r->status, 3);
		assert_int_equal(r->error, GUST_ETIMEDOUT);
		assert_string_equal(r->error_msg, msgs[i]);

		json_error_t jerr;
		json_t *j = json_loadb((const char *)r->result.data, r->result.len, 0, &jerr);
		if (j == NULL)
			fail_msg("result is not JSON (%s): %.*s", jerr.text, (int)r->result.len,
			         (const char *)r->result.data);
		assert_true(json_is_object(j));
		assert_int_equal(json_object_size(j), 1);
		json_t *e = json_object_get(j, "error");
		assert_true(json_is_string(e));
		assert_string_equal(json_string_value(e), msgs[i]);
		json_decref(j);
		gust__activation_result__free_unpacked(r, NULL);
	}
}

/* ---- activation records ---- */

static json_t *record(const Gust__ActivationRequest *q, const Gust__ActivationResult *res)
{
	gust_buf b = {0};
	gust_record_json(q, res, &b);
	json_error_t jerr;
	json_t *j = json_loadb(b.data, b.len, 0, &jerr);
	if (j == NULL)
		fail_msg("record is not JSON (%s): %s", jerr.text, b.data);
	gust_buf_free(&b);
	assert_true(json_is_object(j));
	return j;
}

/* The value of the annotation with key k, or NULL. */
static json_t *annotation(json_t *rec, const char *k)
{
	json_t *a = json_object_get(rec, "annotations");
	assert_true(json_is_array(a));
	size_t i;
	json_t *v;
	json_t *found = NULL;
	json_array_foreach(a, i, v)
	{
		const char *key = json_string_value(json_object_get(v, "key"));
		assert_non_null(key);
		if (strcmp(key, k) == 0) {
			assert_null(found); /* each key once */
			found = json_object_get(v, "value");
		}
	}
	return found;
}

static void test_record(void **state)
{
	static const char *const names[] = {"success", "application error",
	                                    "action developer error", "whisk internal error"};
	char *logs[] = {(char *)"first \"line\"", (char *)"second\nline"};
	static const char result[] = "{\"answer\":42,\"nested\":{\"s\":\"\\u00e9\"}}";
	Gust__ActivationRequest q;
	fill_request(&q);
	q.namespace_ = (char *)"guest";
	q.action = (char *)"my-pkg/hello.world@v1";
	for (int status = 0; status <= 3; status++) {
		Gust__ActivationResult res = GUST__ACTIVATION_RESULT__INIT;
		res.activation_id = q.activation_id;
		res.status = status;
		res.result.data = (uint8_t *)result;
		res.result.len = strlen(result);
		res.logs = logs;
		res.n_logs = 2;
		res.start_ms = 1700000001000;
		res.end_ms = 1700000001250;
		res.wait_ms = 12;
		res.init_ms = status == 1 ? 0 : 80;
		json_t *j = record(&q, &res);

		assert_string_equal(json_string_value(json_object_get(j, "activationId")),
		                    q.activation_id);
		/* the caller's namespace, as OpenWhisk's; the owner's in the path */
		assert_string_equal(json_string_value(json_object_get(j, "namespace")), "other ns");
		assert_string_equal(json_string_value(json_object_get(j, "name")), q.action);
		assert_string_equal(json_string_value(json_object_get(j, "version")), "0.0.3");
		assert_string_equal(json_string_value(json_object_get(j, "subject")),
		                    "guest-subject");
		assert_string_equal(json_string_value(json_object_get(j, "cause")), q.cause);
		assert_int_equal(json_integer_value(json_object_get(j, "start")), res.start_ms);
		assert_int_equal(json_integer_value(json_object_get(j, "end")), res.end_ms);
		assert_int_equal(json_integer_value(json_object_get(j, "duration")), 250);

		json_t *resp = json_object_get(j, "response");
		assert_true(json_is_object(resp));
		assert_string_equal(json_string_value(json_object_get(resp, "status")),
		                    names[status]);
		assert_string_equal(gust_status_name(status), names[status]);
		assert_int_equal(json_integer_value(json_object_get(resp, "statusCode")), status);
		assert_true(json_is_boolean(json_object_get(resp, "success")));
		assert_int_equal(json_is_true(json_object_get(resp, "success")), status == 0);
		json_t *want = json_loads(result, 0, NULL);
		assert_true(json_equal(json_object_get(resp, "result"), want));
		json_decref(want);

		json_t *l = json_object_get(j, "logs");
		assert_true(json_is_array(l));
		assert_int_equal(json_array_size(l), 2);
		assert_string_equal(json_string_value(json_array_get(l, 0)), logs[0]);
		assert_string_equal(json_string_value(json_array_get(l, 1)), logs[1]);

		assert_string_equal(json_string_value(annotation(j, "path")),
		                    "guest/my-pkg/hello.world@v1");
		assert_string_equal(json_string_value(annotation(j, "kind")), "python:3");
		assert_int_equal(json_integer_value(annotation(j, "waitTime")), 12);
		json_t *lim = annotation(j, "limits");
		assert_true(json_is_object(lim));
		assert_int_equal(json_integer_value(json_object_get(lim, "memory")), 256);
		assert_int_equal(json_integer_value(json_object_get(lim, "timeout")), 60000);
		assert_int_equal(json_integer_value(json_object_get(lim, "logs")), 10);
		json_t *init = annotation(j, "initTime");
		if (res.init_ms > 0)
			assert_int_equal(json_integer_value(init), 80);
		else
			assert_null(init);
		json_decref(j);
	}
}

static void test_record_edges(void **state)
{
	Gust__ActivationRequest q;
	fill_request(&q);
	q.cause = (char *)"";
	q.accepted_ms = 5000;
	Gust__ActivationResult res = GUST__ACTIVATION_RESULT__INIT;
	res.status = 3;
	/* No start: the accepted time stands in; no result: an empty object; an end
	 * before the start is clamped so the duration is never negative. */
	res.end_ms = 4000;
	json_t *j = record(&q, &res);
	assert_int_equal(json_integer_value(json_object_get(j, "start")), 5000);
	assert_int_equal(json_integer_value(json_object_get(j, "end")), 5000);
	assert_int_equal(json_integer_value(json_object_get(j, "duration")), 0);
	assert_null(json_object_get(j, "cause"));
	json_t *resp = json_object_get(j, "response");
	assert_true(json_is_object(json_object_get(resp, "result")));
	assert_int_equal(json_object_size(json_object_get(resp, "result")), 0);
	assert_true(json_is_false(json_object_get(resp, "success")));
	assert_int_equal(json_array_size(json_object_get(j, "logs")), 0);
	assert_null(annotation(j, "initTime"));
	json_decref(j);

	/* An unknown status is a whisk error, not a crash. */
	assert_string_equal(gust_status_name(7), "whisk internal error");
	assert_string_equal(gust_status_name(-1), "whisk internal error");

	/* A developer-error timeout is flagged. */
	res.status = 2;
	res.error = GUST_ETIMEDOUT;
	j = record(&q, &res);
	assert_true(json_is_true(annotation(j, "timeout")));
	json_decref(j);
	res.status = 0;
	res.error = 0;
	j = record(&q, &res);
	assert_true(json_is_false(annotation(j, "timeout")));
	json_decref(j);

	char *k = gust_record_key("abc");
	assert_string_equal(k, "gust:act:abc");
	free(k);
	k = gust_record_index_key("guest");
	assert_string_equal(k, "gust:acts:guest");
	free(k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_request_roundtrip), cmocka_unit_test(test_request_head),
	    cmocka_unit_test(test_result_roundtrip),  cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_error_result),      cmocka_unit_test(test_record),
	    cmocka_unit_test(test_record_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
