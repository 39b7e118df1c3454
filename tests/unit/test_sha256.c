/* test_sha256.c - common/sha256.c against the FIPS 180-4 / NIST example vectors. */
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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_vectors),
	    cmocka_unit_test(test_million_a_in_pieces),
	    cmocka_unit_test(test_boundaries),
	    cmocka_unit_test(test_key_hash),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
