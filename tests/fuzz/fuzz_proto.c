/* fuzz_proto.c - protobuf frames from the network: ActivationRequest (what
 * the scheduler and the invoker unpack with gust_msg_request),
 * ActivationResult (gust_msg_result, in the gateway and gust-trigger) and
 * InvokerStatus (the scheduler's status socket).
 *
 * Properties, beyond "no crash":
 *  - a frame that unpacks re-packs to bytes that unpack to the same fields;
 *  - a request the scheduler accepts (its worker's checks) becomes a
 *    sched_act whose key, id and namespace are NUL-terminated in bounds;
 *  - the journal id the scheduler appends to the request bytes
 *    (append_pb_string in sched_journal.c) is what the invoker unpacks, and
 *    every other field is unchanged;
 *  - gust_record_json of a request and a result is valid JSON whenever the
 *    result bytes are a JSON value (or empty) and every string is UTF-8.
 *
 * Input: the whole input is tried as each message type; then its first two
 * bytes (big-endian) split the rest into a request and a result for the
 * record. */
#include "../../scheduler/sched_journal.c"

#include "fuzz.h"
#include "gust/msg.h"
#include "gust/record.h"
#include "gust/util.h"

/* Strict UTF-8 as jansson reads it: no overlongs, no surrogates, <= U+10FFFF. */
static bool utf8_ok(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		unsigned c = p[i];
		size_t k;
		unsigned cp;
		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2, cp = c & 0x0f;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07;
		} else {
			return false;
		}
		if (n - i <= k)
			return false;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if ((k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += k + 1;
	}
	return true;
}

static bool str_ok(const char *s)
{
	return s == NULL || utf8_ok(s, strlen(s));
}

static void check_request_same(const Gust__ActivationRequest *a, const Gust__ActivationRequest *b,
                               bool same_journal)
{
	FUZZ_CHECK(strcmp(a->activation_id, b->activation_id) == 0, "activation_id");
	FUZZ_CHECK(strcmp(a->namespace_, b->namespace_) == 0, "namespace");
	FUZZ_CHECK(strcmp(a->action, b->action) == 0, "action");
	FUZZ_CHECK(strcmp(a->version, b->version) == 0, "version");
	FUZZ_CHECK(
	    a->params.len == b->params.len &&
	        (a->params.len == 0 || memcmp(a->params.data, b->params.data, a->params.len) == 0),
	    "params");
	FUZZ_CHECK(a->deadline_ms == b->deadline_ms, "deadline_ms");
	FUZZ_CHECK(a->blocking == b->blocking, "blocking");
	FUZZ_CHECK(strcmp(a->cause, b->cause) == 0, "cause");
	FUZZ_CHECK(strcmp(a->kind, b->kind) == 0, "kind");
	FUZZ_CHECK(strcmp(a->main, b->main) == 0, "main");
	FUZZ_CHECK(a->memory_mb == b->memory_mb && a->timeout_ms == b->timeout_ms, "limits");
	FUZZ_CHECK(a->log_limit == b->log_limit, "log_limit");
	FUZZ_CHECK(strcmp(a->code_key, b->code_key) == 0, "code_key");
	FUZZ_CHECK(strcmp(a->user, b->user) == 0, "user");
	FUZZ_CHECK(a->attempt == b->attempt && a->concurrency == b->concurrency, "attempt");
	FUZZ_CHECK(a->egress == b->egress, "egress");
	FUZZ_CHECK(a->binary == b->binary, "binary");
	FUZZ_CHECK(strcmp(a->subject, b->subject) == 0 && strcmp(a->binding, b->binding) == 0,
	           "subject/binding");
	FUZZ_CHECK(a->mac.len == b->mac.len &&
	               (a->mac.len == 0 || memcmp(a->mac.data, b->mac.data, a->mac.len) == 0),
	           "mac");
	if (same_journal)
		FUZZ_CHECK(strcmp(a->journal_id, b->journal_id) == 0, "journal_id");
}

static void fuzz_request(const uint8_t *data, size_t size)
{
	Gust__ActivationRequest *q = gust__activation_request__unpack(NULL, size, data);
	if (q == NULL)
		return;
	/* Re-pack and unpack: the same fields. Not with unknown fields:
	 * libprotobuf-c keeps one numbered 0 when its tag is a padded varint
	 * (0x80 0x00) but refuses the 0x00 it packs it back as; nothing in Gust
	 * re-packs a received request (the bytes travel as they came). */
	if (q->base.n_unknown_fields > 0)
		goto sched;
	size_t n = gust__activation_request__get_packed_size(q);
	uint8_t *buf = gust_xmalloc(n);
	FUZZ_CHECK(gust__activation_request__pack(q, buf) == n, "packed size");
	Gust__ActivationRequest *q2 = gust__activation_request__unpack(NULL, n, buf);
	FUZZ_CHECK(q2 != NULL, "re-packed request does not unpack");
	check_request_same(q, q2, true);
	gust__activation_request__free_unpacked(q2, NULL);
	free(buf);

sched:;
	/* The scheduler's worker: what it refuses as malformed (worker_request). */
	static sched s;
	if (q->activation_id[0] == '\0' || strlen(q->activation_id) >= 64 ||
	    q->namespace_[0] == '\0' || q->action[0] == '\0' || q->version[0] == '\0') {
		gust__activation_request__free_unpacked(q, NULL);
		return;
	}
	/* What the scheduler reads instead of unpacking: the same fields. */
	gust_request_head h;
	FUZZ_CHECK(gust_msg_request_head(data, size, &h) == 0,
	           "a request protobuf-c unpacks has no head");
#define SAME_STR(v, s) ((v).n == strlen(s) && ((v).n == 0 || memcmp((v).p, (s), (v).n) == 0))
	FUZZ_CHECK(SAME_STR(h.activation_id, q->activation_id) &&
	               SAME_STR(h.namespace_, q->namespace_) && SAME_STR(h.action, q->action) &&
	               SAME_STR(h.version, q->version) && SAME_STR(h.user, q->user) &&
	               SAME_STR(h.journal_id, q->journal_id) && SAME_STR(h.code_key, q->code_key),
	           "head strings differ from the unpacked request");
	/* ... and those the MAC covers (gust/integrity.h): the scheduler and
	 * the invoker must check the MAC over the same values */
	FUZZ_CHECK(SAME_STR(h.subject, q->subject) && SAME_STR(h.code_key, q->code_key) &&
	               SAME_STR(h.kind, q->kind) && SAME_STR(h.main, q->main) &&
	               SAME_STR(h.binding, q->binding),
	           "head strings (MAC) differ from the unpacked request");
	FUZZ_CHECK(h.params.n == q->params.len &&
	               (h.params.n == 0 || memcmp(h.params.p, q->params.data, h.params.n) == 0) &&
	               h.mac.n == q->mac.len &&
	               (h.mac.n == 0 || memcmp(h.mac.p, q->mac.data, h.mac.n) == 0),
	           "head params/mac differ from the unpacked request");
	FUZZ_CHECK(h.binary == (q->binary != 0) && h.egress == (q->egress != 0) &&
	               h.log_limit == q->log_limit,
	           "head binary/egress/log_limit differ from the unpacked request");
	FUZZ_CHECK(h.blocking == q->blocking && h.memory_mb == q->memory_mb &&
	               h.timeout_ms == q->timeout_ms && h.attempt == q->attempt &&
	               h.concurrency == q->concurrency,
	           "head numbers differ from the unpacked request");
#undef SAME_STR
	nng_msg *m;
	FUZZ_CHECK(nng_msg_alloc(&m, 0) == 0, "nng_msg_alloc");
	nng_msg_append(m, data, size);
	sched_act *a = sched_act_new(&s, m, &h, NULL);
	FUZZ_CHECK(a != NULL, "sched_act_new");
	FUZZ_CHECK(memchr(a->id, 0, sizeof(a->id)) && memchr(a->key, 0, sizeof(a->key)) &&
	               memchr(a->ns, 0, sizeof(a->ns)),
	           "unterminated sched_act fields");
	FUZZ_CHECK(a->memory_mb > 0 && a->timeout_ms > 0, "memory %d timeout %d", a->memory_mb,
	           a->timeout_ms);

	/* The journal id appended to the bytes, as the journal thread does. */
	char jid[48];
	snprintf(jid, sizeof(jid), "%llu-%u", (unsigned long long)size * 1000003u,
	         (unsigned)(size ? data[0] : 0));
	append_pb_string(a->req, 21, jid);
	Gust__ActivationRequest *q3 =
	    gust__activation_request__unpack(NULL, nng_msg_len(a->req), nng_msg_body(a->req));
	FUZZ_CHECK(q3 != NULL, "request with the journal id appended does not unpack");
	FUZZ_CHECK(strcmp(q3->journal_id, jid) == 0, "journal id '%s' read back as '%s'", jid,
	           q3->journal_id);
	check_request_same(q, q3, false);
	gust__activation_request__free_unpacked(q3, NULL);
	sched_act_free(a); /* frees the nng_msg */
	gust__activation_request__free_unpacked(q, NULL);
}

static void fuzz_result(const uint8_t *data, size_t size)
{
	Gust__ActivationResult *r = gust__activation_result__unpack(NULL, size, data);
	if (r == NULL)
		return;
	if (r->base.n_unknown_fields > 0) { /* see fuzz_request */
		gust__activation_result__free_unpacked(r, NULL);
		return;
	}
	size_t n = gust__activation_result__get_packed_size(r);
	uint8_t *buf = gust_xmalloc(n);
	FUZZ_CHECK(gust__activation_result__pack(r, buf) == n, "packed size");
	Gust__ActivationResult *r2 = gust__activation_result__unpack(NULL, n, buf);
	FUZZ_CHECK(r2 != NULL, "re-packed result does not unpack");
	FUZZ_CHECK(strcmp(r->activation_id, r2->activation_id) == 0, "activation_id");
	FUZZ_CHECK(r->status == r2->status && r->n_logs == r2->n_logs, "status/logs");
	FUZZ_CHECK(r->result.len == r2->result.len, "result");
	gust__activation_result__free_unpacked(r2, NULL);
	free(buf);
	gust__activation_result__free_unpacked(r, NULL);
}

static void fuzz_status(const uint8_t *data, size_t size)
{
	Gust__InvokerStatus *st = gust__invoker_status__unpack(NULL, size, data);
	if (st == NULL)
		return;
	/* What status_apply reads. */
	for (size_t k = 0; k < st->n_warm; k++)
		FUZZ_CHECK(st->warm[k] != NULL && st->warm[k]->action != NULL, "warm[%zu]", k);
	gust__invoker_status__free_unpacked(st, NULL);
}

static void fuzz_record(const uint8_t *data, size_t size)
{
	if (size < 2)
		return;
	size_t split = (size_t)data[0] << 8 | data[1];
	data += 2, size -= 2;
	if (split > size)
		split = size;
	Gust__ActivationRequest *q = gust__activation_request__unpack(NULL, split, data);
	Gust__ActivationResult *r =
	    gust__activation_result__unpack(NULL, size - split, data + split);
	if (q != NULL && r != NULL) {
		gust_buf b = {0};
		gust_record_json(q, r, &b);
		bool strings_ok = str_ok(q->activation_id) && str_ok(q->namespace_) &&
		                  str_ok(q->action) && str_ok(q->version) && str_ok(q->subject) &&
		                  str_ok(q->cause) && str_ok(q->kind);
		for (size_t i = 0; i < r->n_logs; i++)
			strings_ok = strings_ok && str_ok(r->logs[i]);
		bool result_ok =
		    r->result.len == 0 || fuzz_json_valid((const char *)r->result.data,
		                                          r->result.len, JSON_ALLOW_NUL, NULL);
		if (strings_ok && result_ok) {
			json_error_t je;
			FUZZ_CHECK(fuzz_json_valid(b.data, b.len, JSON_ALLOW_NUL, &je),
			           "activation record is not JSON: %s at %d: %s", je.text,
			           je.position, b.data);
		}
		gust_buf_free(&b);
	}
	if (q)
		gust__activation_request__free_unpacked(q, NULL);
	if (r)
		gust__activation_result__free_unpacked(r, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fuzz_request(data, size);
	fuzz_result(data, size);
	fuzz_status(data, size);
	fuzz_record(data, size);
	return 0;
}
