/* test_sha256.c - common/sha256.c against the FIPS 180-4 / NIST example vectors,
 * and its HMAC against RFC 4231's. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/sha256.h"

static void hex(const uint8_t *d, char *out)
{
	for (int i = 0; i < GUST_SHA256_LEN; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static void check(const void *p, size_t n, const char *want)
{
	uint8_t d[GUST_SHA256_LEN];
	char h[65];
	gust_sha256_digest(p, n, d);
	hex(d, h);
	assert_string_equal(h, want);
}

static void test_vectors(void **state)
{
	check("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	check("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	check(two, strlen(two), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	const char *four =
	    "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnop"
	    "jklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	check(four, strlen(four),
	      "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1");
}

static void test_million_a_in_pieces(void **state)
{
	/* One million 'a', fed in uneven pieces to exercise block boundaries. */
	char *a = malloc(1000000);
	memset(a, 'a', 1000000);
	gust_sha256_ctx s;
	gust_sha256_init(&s);
	size_t at = 0, step = 1;
	while (at < 1000000) {
		size_t n = step < 1000000 - at ? step : 1000000 - at;
		gust_sha256_update(&s, a + at, n);
		at += n;
		step = step * 3 % 257 + 1;
	}
	uint8_t d[GUST_SHA256_LEN];
	char h[65];
	gust_sha256_final(&s, d);
	hex(d, h);
	assert_string_equal(h, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	free(a);
}

static void test_boundaries(void **state)
{
	/* Lengths around the 55/56/64-byte padding edges: the one-shot and the
	 * byte-at-a-time digests must agree. */
	uint8_t buf[200];
	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 1);
	for (size_t n = 0; n < sizeof(buf); n++) {
		uint8_t d1[GUST_SHA256_LEN], d2[GUST_SHA256_LEN];
		gust_sha256_digest(buf, n, d1);
		gust_sha256_ctx s;
		gust_sha256_init(&s);
		for (size_t i = 0; i < n; i++)
			gust_sha256_update(&s, buf + i, 1);
		gust_sha256_final(&s, d2);
		assert_memory_equal(d1, d2, GUST_SHA256_LEN);
	}
}

static void test_key_hash(void **state)
{
	char h[65];
	gust_key_hash_hex("ab", "c", h); /* = SHA-256("abc") */
	assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

/* RFC 4231 section 4: test cases 1-7 (case 5 compares the first 128 bits,
 * as the RFC gives only those). */
static void hmac_check(const void *key, size_t klen, const void *msg, size_t n, const char *want)
{
	uint8_t d[GUST_SHA256_LEN];
	char h[65];
	gust_hmac_sha256(key, klen, msg, n, d);
	hex(d, h);
	assert_memory_equal(h, want, strlen(want));
	/* the same MAC from precomputed pads, message fed in two pieces */
	gust_hmac_key k;
	gust_sha256_ctx c;
	uint8_t d2[GUST_SHA256_LEN];
	gust_hmac_key_init(&k, key, klen);
	gust_hmac_start(&k, &c);
	gust_sha256_update(&c, msg, n / 2);
	gust_sha256_update(&c, (const uint8_t *)msg + n / 2, n - n / 2);
	gust_hmac_finish(&k, &c, d2);
	assert_memory_equal(d, d2, GUST_SHA256_LEN);
	assert_true(gust_ct_equal(d, d2, GUST_SHA256_LEN));
	d2[31] ^= 1;
	assert_false(gust_ct_equal(d, d2, GUST_SHA256_LEN));
}

static void test_hmac_rfc4231(void **state)
{
	uint8_t k[131], m[50];
	memset(k, 0x0b, 20);
	hmac_check(k, 20, "Hi There", 8,
	           "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
	hmac_check("Jefe", 4, "what do ya want for nothing?", 28,
	           "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
	memset(k, 0xaa, 20);
	memset(m, 0xdd, 50);
	hmac_check(k, 20, m, 50,
	           "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
	for (int i = 0; i < 25; i++)
		k[i] = (uint8_t)(i + 1);
	memset(m, 0xcd, 50);
	hmac_check(k, 25, m, 50,
	           "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
	memset(k, 0x0c, 20);
	hmac_check(k, 20, "Test With Truncation", 20, "a3b6167473100ee06e0c796c2955552b");
	memset(k, 0xaa, 131);
	const char *t6 = "Test Using Larger Than Block-Size Key - Hash Key First";
	hmac_check(k, 131, t6, strlen(t6),
	           "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
	const char *t7 = "This is a test using a larger than block-size key and a larger than "
	                 "block-size data. The key needs to be hashed before being used by the "
	                 "HMAC algorithm.";
	hmac_check(k, 131, t7, strlen(t7),
	           "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),      cmocka_unit_test(test_million_a_in_pieces),
	    cmocka_unit_test(test_boundaries),   cmocka_unit_test(test_key_hash),
	    cmocka_unit_test(test_hmac_rfc4231),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
