/* fuzz_integrity.c - the integrity checks of internal data (gust/integrity.h):
 * the journal entry check of a replay (sched_journal_check, which reads what
 * XRANGE returns for an entry anyone with a tenant path into Redis may have
 * written), the request MAC (gust_areq_verify on an unpacked request, as the
 * invoker does; gust_areq_verify_head on the bytes, as the scheduler does),
 * the code ownership check and the parser of the secret's etcd value.
 *
 * Properties, beyond "no crash":
 *  - an entry is accepted only if its h and its request's MAC verify under
 *    the loaded secret: arbitrary bytes never are;
 *  - a request signed by gust_areq_sign and journaled with
 *    gust_journal_mac_hex is accepted (when its code check passes), and no
 *    longer once any byte of its request or of h changes, or once the secret
 *    is replaced; it still is with the signing key kept as the previous one;
 *  - gust_areq_verify and gust_areq_verify_head agree on every request
 *    protobuf-c unpacks (the scheduler and the invoker believe the same);
 *  - a code check that passes means the key is under /gust/code/<ns>/;
 *  - a secret value that parses re-formats to one that parses the same.
 *
 * Input: byte 0 picks the mode; mode 0 feeds the rest to a hiredis reader as
 * a Redis reply (an XRANGE entry's field list); mode 1 takes the rest as an
 * ActivationRequest; mode 2 as four fields (ns, user, action, code key)
 * separated by 0x00; mode 3 as a secret value. */
#include <hiredis/hiredis.h>

#include "fuzz.h"
#include "gust/integrity.h"
#include "gust/msg.h"
#include "gust/util.h"
#include "scheduler.h"

static const uint8_t key_a[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                  17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const uint8_t key_b[32] = {0xaa, 0xbb};

static void fuzz_entry(const uint8_t *data, size_t size)
{
	gust_secret_set(key_a, NULL);
	redisReader *rd = redisReaderCreate();
	redisReaderFeed(rd, (const char *)data, size);
	void *reply = NULL;
	if (redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL) {
		gust_request_head h;
		const char *bytes = NULL;
		size_t blen = 0;
		const char *why = sched_journal_check(reply, &bytes, &blen, &h);
		if (why == NULL) {
			/* only with both MACs right: practically never for fuzzed
			 * bytes, and then they must verify on their own */
			FUZZ_CHECK(gust_areq_verify_head(&h) == 0, "accepted a request MAC that fails");
			FUZZ_CHECK(bytes != NULL && blen > 0, "accepted without request bytes");
		}
		freeReplyObject(reply);
	}
	redisReaderFree(rd);
}

/* The RESP of an XRANGE entry's field list: a, r, h. */
static void resp_bulk(gust_buf *b, const void *p, size_t n)
{
	gust_buf_printf(b, "$%zu\r\n", n);
	gust_buf_append(b, p, n);
	gust_buf_puts(b, "\r\n");
}

static const char *check_entry(const char *aid, const uint8_t *r, size_t rn, const char *h)
{
	gust_buf b = {0};
	gust_buf_puts(&b, "*6\r\n");
	resp_bulk(&b, "a", 1);
	resp_bulk(&b, aid, strlen(aid));
	resp_bulk(&b, "r", 1);
	resp_bulk(&b, r, rn);
	resp_bulk(&b, "h", 1);
	resp_bulk(&b, h, strlen(h));
	redisReader *rd = redisReaderCreate();
	redisReaderFeed(rd, b.data, b.len);
	void *reply = NULL;
	FUZZ_CHECK(redisReaderGetReply(rd, &reply) == REDIS_OK && reply != NULL, "RESP");
	gust_request_head hd;
	const char *bytes;
	size_t blen;
	const char *why = sched_journal_check(reply, &bytes, &blen, &hd);
	freeReplyObject(reply);
	redisReaderFree(rd);
	gust_buf_free(&b);
	return why;
}

static void fuzz_signed(const uint8_t *data, size_t size)
{
	gust_secret_set(key_a, NULL);
	Gust__ActivationRequest *q = gust__activation_request__unpack(NULL, size, data);
	if (q == NULL)
		return;
	/* The scheduler and the invoker agree on the MAC of what came in. */
	gust_request_head h;
	FUZZ_CHECK(gust_msg_request_head(data, size, &h) == 0, "unpacks but has no head");
	FUZZ_CHECK(gust_areq_verify(q) == gust_areq_verify_head(&h),
	           "the invoker's and the scheduler's MAC checks disagree");
	if (q->base.n_unknown_fields > 0 || q->activation_id[0] == '\0') {
		/* see fuzz_proto.c: such a request is never re-packed */
		gust__activation_request__free_unpacked(q, NULL);
		return;
	}
	/* Signed, as gust_fire_request_take does: both checks accept it. */
	uint8_t *old_mac = q->mac.data;
	size_t old_len = q->mac.len;
	q->mac.data = NULL;
	q->mac.len = 0;
	FUZZ_CHECK(gust_areq_sign(q) == 0, "sign");
	FUZZ_CHECK(gust_areq_verify(q) == 0, "a request just signed does not verify");
	size_t n = gust__activation_request__get_packed_size(q);
	uint8_t *buf = gust_xmalloc(n);
	gust__activation_request__pack(q, buf);
	FUZZ_CHECK(gust_msg_request_head(buf, n, &h) == 0 && gust_areq_verify_head(&h) == 0,
	           "a signed request's bytes do not verify");

	char mac[GUST_MAC_HEX_LEN + 1];
	FUZZ_CHECK(gust_journal_mac_hex(q->activation_id, strlen(q->activation_id), buf, n, mac) ==
	               0,
	           "journal mac");
	char why[256];
	bool code_ok = gust_areq_code_check_str(q->namespace_, q->user, q->action, q->code_key, why,
	                                        sizeof(why)) == 0;
	const char *res = check_entry(q->activation_id, buf, n, mac);
	FUZZ_CHECK((res == NULL) == code_ok, "signed entry: %s (code check %d)", res ? res : "ok",
	           code_ok);
	/* any byte of r changed: refused */
	size_t at = (size_t)data[0] * 131 % n;
	buf[at] ^= (uint8_t)(1u << (data[size - 1] & 7));
	FUZZ_CHECK(check_entry(q->activation_id, buf, n, mac) != NULL,
	           "an entry whose request changed at %zu was accepted", at);
	buf[at] ^= (uint8_t)(1u << (data[size - 1] & 7));
	/* h changed: refused */
	char bad[GUST_MAC_HEX_LEN + 1];
	memcpy(bad, mac, sizeof(bad));
	bad[at % GUST_MAC_HEX_LEN] = bad[at % GUST_MAC_HEX_LEN] == '0' ? '1' : '0';
	FUZZ_CHECK(check_entry(q->activation_id, buf, n, bad) != NULL, "a changed h was accepted");
	/* another activation's id in a: refused */
	FUZZ_CHECK(check_entry("0123456789abcdef0123456789abcdef", buf, n, mac) != NULL ||
	               strcmp(q->activation_id, "0123456789abcdef0123456789abcdef") == 0,
	           "an entry moved to another activation id was accepted");
	/* a rotation: the signing key kept as the previous one still verifies,
	 * a cluster that never had it refuses */
	gust_secret_set(key_b, key_a);
	FUZZ_CHECK(gust_areq_verify(q) == 0, "previous key not accepted");
	FUZZ_CHECK((check_entry(q->activation_id, buf, n, mac) == NULL) == code_ok,
	           "previous key not accepted for the journal");
	gust_secret_set(key_b, NULL);
	FUZZ_CHECK(gust_areq_verify(q) == GUST_EAUTH, "a foreign key verified");
	FUZZ_CHECK(check_entry(q->activation_id, buf, n, mac) != NULL, "a foreign h verified");
	gust_secret_set(key_a, NULL);
	free(buf);
	free(q->mac.data);
	q->mac.data = old_mac;
	q->mac.len = old_len;
	gust__activation_request__free_unpacked(q, NULL);
}

static void fuzz_code(const uint8_t *data, size_t size)
{
	fuzz_cursor c = {data, size};
	size_t l[4];
	const uint8_t *f[4];
	for (int i = 0; i < 4; i++)
		f[i] = fuzz_field(&c, 0, &l[i]);
	gust_msg_str s[4];
	for (int i = 0; i < 4; i++)
		s[i] = (gust_msg_str){(const char *)f[i], l[i]};
	char why[256];
	if (gust_areq_code_check(s[0], s[1], s[2], s[3], why, sizeof(why)) == 0) {
		FUZZ_CHECK(l[0] > 0 && memchr(f[0], '/', l[0]) == NULL, "namespace with a slash");
		FUZZ_CHECK(l[3] > 11 + l[0] + 1 && memcmp(f[3], "/gust/code/", 11) == 0 &&
		               memcmp(f[3] + 11, f[0], l[0]) == 0 && f[3][11 + l[0]] == '/',
		           "code key outside /gust/code/<ns>/");
		FUZZ_CHECK(l[1] > 0, "no user");
		FUZZ_CHECK((l[1] == l[0] && memcmp(f[1], f[0], l[0]) == 0) ||
		               memchr(f[2], '/', l[2]) != NULL,
		           "another namespace's code outside a package");
	}
}

static void fuzz_secret(const uint8_t *data, size_t size)
{
	uint8_t cur[32], prev[32], cur2[32], prev2[32];
	bool hp, hp2;
	if (gust_secret_parse((const char *)data, size, cur, prev, &hp) != 0)
		return;
	char v[2 * GUST_MAC_HEX_LEN + 2];
	for (int i = 0; i < 32; i++)
		snprintf(v + 2 * i, 3, "%02x", cur[i]);
	if (hp) {
		v[GUST_MAC_HEX_LEN] = ' ';
		for (int i = 0; i < 32; i++)
			snprintf(v + GUST_MAC_HEX_LEN + 1 + 2 * i, 3, "%02x", prev[i]);
	}
	FUZZ_CHECK(gust_secret_parse(v, strlen(v), cur2, prev2, &hp2) == 0 && hp2 == hp &&
	               memcmp(cur, cur2, 32) == 0 && (!hp || memcmp(prev, prev2, 32) == 0),
	           "re-formatted secret differs");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	switch (data[0] & 3) {
	case 0:
		fuzz_entry(data + 1, size - 1);
		break;
	case 1:
		if (size > 1)
			fuzz_signed(data + 1, size - 1);
		break;
	case 2:
		fuzz_code(data + 1, size - 1);
		break;
	default:
		fuzz_secret(data + 1, size - 1);
	}
	return 0;
}
