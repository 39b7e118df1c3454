/* test_integrity.c - common/integrity.c: the secret's value, the code
 * ownership check, and the request and journal MACs (which fields they cover,
 * rotation, no secret). The MAC's encoding is checked against an independent
 * implementation (Python's hmac) by tests/security/test_integrity.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/fire.h"
#include "gust/integrity.h"
#include "gust/msg.h"

static const uint8_t K1[32] = {1, 2, 3};
static const uint8_t K2[32] = {9, 8, 7};

static void test_secret_parse(void **state)
{
	uint8_t c[32], p[32];
	bool hp;
	char v[200];
	memset(v, 0, sizeof(v));
	memset(v, 'a', 64);
	assert_int_equal(gust_secret_parse(v, 64, c, p, &hp), 0);
	assert_false(hp);
	assert_int_equal(c[0], 0xaa);
	snprintf(v, sizeof(v), "  %064d \n %064d\n", 0, 1);
	assert_int_equal(gust_secret_parse(v, strlen(v), c, p, &hp), 0);
	assert_true(hp);
	assert_int_equal(p[31], 0x01);
	assert_int_equal(gust_secret_parse(v, 60, c, p, &hp), GUST_EINVAL); /* cut */
	snprintf(v, sizeof(v), "%064d%064d", 0, 1);                         /* no blank */
	assert_int_equal(gust_secret_parse(v, strlen(v), c, p, &hp), GUST_EINVAL);
	snprintf(v, sizeof(v), "%064d %064d %064d", 0, 1, 2); /* three keys */
	assert_int_equal(gust_secret_parse(v, strlen(v), c, p, &hp), GUST_EINVAL);
	snprintf(v, sizeof(v), "%063dg", 0); /* not hex */
	assert_int_equal(gust_secret_parse(v, strlen(v), c, p, &hp), GUST_EINVAL);
	assert_int_equal(gust_secret_parse("", 0, c, p, &hp), GUST_EINVAL);
}

static int code(const char *ns, const char *user, const char *action, const char *key)
{
	char why[256];
	return gust_areq_code_check_str(ns, user, action, key, why, sizeof(why));
}

static void test_code_check(void **state)
{
	assert_int_equal(code("a", "a", "f", "/gust/code/a/f:0.0.1"), 0);
	assert_int_equal(code("a", "b", "p/f", "/gust/code/a/p/f:0.0.1"), 0); /* shared package */
	/* the prefix trick: a must not load ab's code, nor ab a's */
	assert_int_equal(code("a", "a", "f", "/gust/code/ab/f:0.0.1"), GUST_EPERM);
	assert_int_equal(code("ab", "ab", "f", "/gust/code/a/bf:0.0.1"), GUST_EPERM);
	assert_int_equal(code("a", "a", "f", "/gust/code/a"), GUST_EPERM);
	assert_int_equal(code("a", "a", "f", "/gust/code/a/"), GUST_EPERM);
	assert_int_equal(code("a", "a", "f", "/gust/codex/a/f"), GUST_EPERM);
	assert_int_equal(code("a", "a", "f", "gust/code/a/f"), GUST_EPERM);
	assert_int_equal(code("a", "a", "f", ""), GUST_EPERM);
	assert_int_equal(code("a/b", "a/b", "f", "/gust/code/a/b/f"), GUST_EPERM);
	assert_int_equal(code("", "", "f", "/gust/code//f"), GUST_EPERM);
	assert_int_equal(code("a", "", "f", "/gust/code/a/f"), GUST_EPERM);
	/* another namespace's action outside a package */
	assert_int_equal(code("a", "b", "f", "/gust/code/a/f:0.0.1"), GUST_EPERM);
}

static Gust__ActivationRequest *req(void)
{
	gust_fire_action fa = {.ns = "alice",
	                       .name = "f",
	                       .version = "0.0.1",
	                       .kind = "python:3",
	                       .main = "main",
	                       .memory_mb = 256,
	                       .timeout_ms = 60000,
	                       .log_limit = 10 << 20,
	                       .code_key = "/gust/code/alice/f:0.0.1",
	                       .concurrency = 1};
	return gust_fire_request_new(&fa, "alice", "http://h", NULL, "{\"x\":1}", 7, NULL);
}

/* Replaces a string field of q, keeping it freeable by gust_fire_request_free. */
static void set_str(char **f, const char *v)
{
	if (*f != NULL && *f != protobuf_c_empty_string)
		free(*f);
	*f = strdup(v);
}

static void test_request_mac(void **state)
{
	gust_secret_set(K1, NULL);
	Gust__ActivationRequest *q = req();
	assert_int_equal(q->mac.len, 32); /* signed where it was made */
	assert_int_equal(gust_areq_verify(q), 0);

	/* its bytes, as the scheduler reads them */
	size_t n = gust__activation_request__get_packed_size(q);
	uint8_t *b = malloc(n);
	gust__activation_request__pack(q, b);
	gust_request_head h;
	assert_int_equal(gust_msg_request_head(b, n, &h), 0);
	assert_int_equal(gust_areq_verify_head(&h), 0);
	free(b);

	/* every covered field changes the MAC */
	char **strs[] = {&q->activation_id, &q->namespace_, &q->user, &q->subject, &q->action,
	                 &q->version,       &q->code_key,   &q->kind, &q->main,    &q->binding};
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		char *old = strdup(*strs[i]);
		set_str(strs[i], "other");
		assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
		set_str(strs[i], old);
		free(old);
		assert_int_equal(gust_areq_verify(q), 0);
	}
	q->params.data[2] ^= 1;
	assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
	q->params.data[2] ^= 1;
	q->params.len--;
	assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
	q->params.len++;
	int32_t *ints[] = {&q->memory_mb, &q->timeout_ms, &q->concurrency};
	for (size_t i = 0; i < 3; i++) {
		(*ints[i])++;
		assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
		(*ints[i])--;
	}
	q->log_limit++;
	assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
	q->log_limit--;
	q->binary = !q->binary;
	assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
	q->binary = !q->binary;
	q->egress = !q->egress;
	assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
	q->egress = !q->egress;
	/* fields set on the way, or deciding nothing about identity, are not covered */
	q->blocking = !q->blocking;
	q->attempt = 3;
	q->deadline_ms = 12345;
	assert_int_equal(gust_areq_verify(q), 0);
	/* a wrong length of MAC */
	q->mac.len = 31;
	assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
	q->mac.len = 32;

	/* rotation: the signing key kept as the previous one still verifies */
	gust_secret_set(K2, K1);
	assert_int_equal(gust_areq_verify(q), 0);
	gust_secret_set(K2, NULL);
	assert_int_equal(gust_areq_verify(q), GUST_EAUTH);
	gust_secret_clear();
	assert_int_equal(gust_areq_verify(q), GUST_EUNAVAIL);
	assert_int_equal(gust_areq_sign(q), GUST_EUNAVAIL);
	gust_fire_request_free(q);
}

static void test_journal_mac(void **state)
{
	gust_secret_set(K1, NULL);
	char h[GUST_MAC_HEX_LEN + 1];
	const char r[] = "request\0bytes";
	assert_int_equal(gust_journal_mac_hex("id1", 3, r, sizeof(r), h), 0);
	assert_int_equal(strlen(h), 64);
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), h, 64), 0);
	assert_int_equal(gust_journal_verify("id2", 3, r, sizeof(r), h, 64), GUST_EAUTH);
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r) - 1, h, 64), GUST_EAUTH);
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), h, 63), GUST_EAUTH);
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), NULL, 0), GUST_EAUTH);
	/* "id" + "1request..." is not "id1" + "request...": lengths are framed */
	char r2[sizeof(r) + 1] = "1";
	memcpy(r2 + 1, r, sizeof(r));
	assert_int_equal(gust_journal_verify("id", 2, r2, sizeof(r2), h, 64), GUST_EAUTH);
	char bad[65];
	memcpy(bad, h, 65);
	bad[10] = bad[10] == 'f' ? 'e' : 'f';
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), bad, 64), GUST_EAUTH);
	bad[10] = 'x';
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), bad, 64), GUST_EAUTH);
	gust_secret_set(K2, K1);
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), h, 64), 0);
	gust_secret_set(K2, NULL);
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), h, 64), GUST_EAUTH);
	gust_secret_clear();
	assert_int_equal(gust_journal_verify("id1", 3, r, sizeof(r), h, 64), GUST_EUNAVAIL);
	assert_int_equal(gust_journal_mac_hex("id1", 3, r, sizeof(r), h), GUST_EUNAVAIL);
}

static void test_log_clean(void **state)
{
	char out[8];
	assert_string_equal(gust_log_clean(out, sizeof(out), "a\nb\x1b\xff", 5), "a?b??");
	assert_string_equal(gust_log_clean(out, sizeof(out), "0123456789", 10), "0123456");
	assert_string_equal(gust_log_clean(out, sizeof(out), "x\0y", 3), "x?y");
	assert_string_equal(gust_log_clean(out, sizeof(out), NULL, 3), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_secret_parse),
	    cmocka_unit_test(test_code_check),
	    cmocka_unit_test(test_request_mac),
	    cmocka_unit_test(test_journal_mac),
	    cmocka_unit_test(test_log_clean),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
