/* test_util.c - unit tests of common/util.c (buffers, JSON strings, base64, ids,
 * constant-time compare) and common/map.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/map.h"
#include "gust/util.h"

/* ---- gust_buf ---- */

static void test_buf_append(void **state)
{
	gust_buf b = {0};
	gust_buf_append(&b, "", 0);
	assert_non_null(b.data);
	assert_int_equal(b.len, 0);
	assert_string_equal(b.data, "");

	gust_buf_append(&b, "ab\0cd", 5);
	gust_buf_puts(&b, "ef");
	assert_int_equal(b.len, 7);
	assert_memory_equal(b.data, "ab\0cdef", 8); /* always NUL-terminated */

	/* Growth keeps every byte. */
	gust_buf_reset(&b);
	for (int i = 0; i < 5000; i++) {
		char c = (char)('a' + i % 26);
		gust_buf_append(&b, &c, 1);
	}
	assert_int_equal(b.len, 5000);
	assert_true(b.cap > b.len);
	assert_int_equal(b.data[5000], 0);
	for (int i = 0; i < 5000; i++)
		assert_int_equal(b.data[i], 'a' + i % 26);
	gust_buf_free(&b);
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	gust_buf_free(&b); /* twice is fine */
}

static void test_buf_printf(void **state)
{
	gust_buf b = {0};
	gust_buf_printf(&b, "%d-%s-%05.1f", 42, "x", 3.14159);
	assert_string_equal(b.data, "42-x-003.1");
	assert_int_equal(b.len, strlen("42-x-003.1"));
	gust_buf_printf(&b, "%s", "");
	assert_int_equal(b.len, strlen("42-x-003.1"));

	/* Outputs around every interesting size (the probe buffer, the first
	 * allocation, doublings) match snprintf exactly. */
	char *pad = malloc(2100);
	memset(pad, 'p', 2099);
	pad[2099] = 0;
	for (int n = 0; n < 2100; n += (n < 600 ? 1 : 37)) {
		gust_buf_reset(&b);
		gust_buf_puts(&b, "<");
		gust_buf_printf(&b, "%.*s|%d", n, pad, n);
		char want[2200];
		int wl = snprintf(want, sizeof(want), "<%.*s|%d", n, pad, n);
		assert_int_equal(b.len, (size_t)wl);
		assert_string_equal(b.data, want);
	}
	free(pad);
	gust_buf_free(&b);
}

static void test_buf_steal_reset(void **state)
{
	gust_buf b = {0};
	char *s = gust_buf_steal(&b); /* an empty buffer steals to "" */
	assert_non_null(s);
	assert_string_equal(s, "");
	free(s);

	gust_buf_puts(&b, "hello");
	size_t cap = b.cap;
	gust_buf_reset(&b);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, cap); /* memory is kept for reuse */
	assert_string_equal(b.data, "");
	gust_buf_puts(&b, "world");
	s = gust_buf_steal(&b);
	assert_string_equal(s, "world");
	assert_null(b.data);
	assert_int_equal(b.len, 0);
	assert_int_equal(b.cap, 0);
	free(s);

	gust_buf_reset(&b); /* on an empty buffer */
	assert_null(b.data);
	gust_buf_puts(&b, "again");
	assert_string_equal(b.data, "again");
	gust_buf_free(&b);
}

/* ---- gust_buf_json_str ---- */

/* Encodes n bytes of s, checks the literal, parses it back with jansson and
 * checks the same bytes come out. */
static void json_roundtrip(const char *s, size_t n, const char *want_literal)
{
	gust_buf b = {0};
	gust_buf_puts(&b, "x"); /* appending, not overwriting */
	gust_buf_json_str(&b, s, n);
	assert_int_equal(strlen(b.data), b.len);
	assert_int_equal(b.data[0], 'x');
	if (want_literal)
		assert_string_equal(b.data + 1, want_literal);
	json_error_t jerr;
	json_t *j = json_loadb(b.data + 1, b.len - 1, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		fail_msg("jansson rejects %s: %s", b.data + 1, jerr.text);
	assert_true(json_is_string(j));
	assert_int_equal(json_string_length(j), n);
	assert_memory_equal(json_string_value(j), s, n);
	json_decref(j);
	gust_buf_free(&b);
}

static void test_json_str(void **state)
{
	json_roundtrip("", 0, "\"\"");
	json_roundtrip("plain", 5, "\"plain\"");
	json_roundtrip("say \"hi\"", 8, "\"say \\\"hi\\\"\"");
	json_roundtrip("a\\b", 3, "\"a\\\\b\"");
	json_roundtrip("l1\nl2\r\tx", 8, "\"l1\\nl2\\r\\tx\"");
	json_roundtrip("\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\"");
	json_roundtrip("a\0b", 3, "\"a\\u0000b\"");
	json_roundtrip("/", 1, "\"/\"");
	/* UTF-8 passes through byte for byte. */
	static const char utf8[] = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5";
	json_roundtrip(utf8, sizeof(utf8) - 1,
	               "\""
	               "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 \xe6\x97\xa5"
	               "\"");
	/* Only n bytes are read. */
	json_roundtrip("abcdef", 3, "\"abc\"");

	/* Every ASCII byte, including all control characters. */
	char all[128];
	for (int i = 0; i < 128; i++)
		all[i] = (char)i;
	json_roundtrip(all, sizeof(all), NULL);
	gust_buf b = {0};
	gust_buf_json_str(&b, all, 32);
	for (size_t i = 1; i + 1 < b.len; i++)
		assert_true((unsigned char)b.data[i] >= 0x20); /* no raw control bytes */
	gust_buf_free(&b);

	/* A long string with escapes everywhere (growth inside the loop). */
	char *big = malloc(10000);
	for (int i = 0; i < 10000; i++)
		big[i] = "a\"\\\n\x02z"[i % 6];
	json_roundtrip(big, 10000, NULL);
	free(big);
}

/* ---- base64 ---- */

static void b64_known(const char *plain, const char *enc)
{
	char *e = gust_b64_encode(plain, strlen(plain));
	assert_string_equal(e, enc);
	free(e);
	size_t n = 999;
	char *d = gust_b64_decode(enc, strlen(enc), &n);
	assert_non_null(d);
	assert_int_equal(n, strlen(plain));
	assert_memory_equal(d, plain, n);
	assert_int_equal(d[n], 0);
	free(d);
}

/* A special byte at every place around the 16- and 8-byte blocks the plain
 * runs are scanned in: escaped exactly where it is, nothing else touched. */
static void test_json_str_blocks(void **state)
{
	static const char specials[] = {'"', '\\', '\n', 0x01, 0x7f};
	for (size_t k = 0; k < sizeof(specials); k++) {
		for (size_t at = 0; at < 40; at++) {
			char in[40];
			memset(in, 'x', sizeof(in));
			in[at] = specials[k];
			gust_buf b = {0};
			gust_buf_json_str(&b, in, sizeof(in));
			const char *esc = specials[k] == '"'    ? "\\\""
			                  : specials[k] == '\\' ? "\\\\"
			                  : specials[k] == '\n' ? "\\n"
			                  : specials[k] == 0x01 ? "\\u0001"
			                                        : "\\u007f";
			char want[64];
			snprintf(want, sizeof(want), "\"%.*s%s%.*s\"", (int)at, in, esc,
			         (int)(sizeof(in) - at - 1), in + at + 1);
			assert_string_equal(b.data, want);
			gust_buf_free(&b);
		}
	}
}

/* gust_buf_json_str_utf8: the same literal for well-formed UTF-8; false and
 * the buffer as it was for anything else (a lone continuation byte, a
 * surrogate, a truncated sequence), wherever it sits. */
static void test_json_str_utf8(void **state)
{
	static const char ok[] = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80 and plain ASCII, long";
	gust_buf a = {0}, b = {0};
	gust_buf_json_str(&a, ok, sizeof(ok) - 1);
	assert_true(gust_buf_json_str_utf8(&b, ok, sizeof(ok) - 1));
	assert_string_equal(a.data, b.data);
	static const char *bad[] = {"\x80", "\xed\xa0\x80", "\xe2\x82", "\xc0\xaf", "\xff"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		for (size_t at = 0; at < 20; at++) {
			char in[64];
			memset(in, 'y', sizeof(in));
			memcpy(in + at, bad[i], strlen(bad[i]));
			gust_buf_reset(&b);
			gust_buf_puts(&b, "keep");
			assert_false(gust_buf_json_str_utf8(&b, in, at + strlen(bad[i]) + 5));
			assert_int_equal(b.len, 4);
			assert_string_equal(b.data, "keep");
		}
	}
	gust_buf_free(&a);
	gust_buf_free(&b);
}

static void test_b64_vectors(void **state)
{
	/* RFC 4648 section 10 */
	b64_known("", "");
	b64_known("f", "Zg==");
	b64_known("fo", "Zm8=");
	b64_known("foo", "Zm9v");
	b64_known("foob", "Zm9vYg==");
	b64_known("fooba", "Zm9vYmE=");
	b64_known("foobar", "Zm9vYmFy");

	/* Line breaks and spaces inside are skipped; URL-safe letters are read. */
	size_t n;
	char *d = gust_b64_decode("Zm9v\r\nYm Fy\n", 12, &n);
	assert_non_null(d);
	assert_int_equal(n, 6);
	assert_memory_equal(d, "foobar", 6);
	free(d);
	unsigned char bin[] = {0xfb, 0xff, 0xbf};
	char *e = gust_b64_encode(bin, 3);
	assert_string_equal(e, "+/+/");
	free(e);
	d = gust_b64_decode("-_-_", 4, &n);
	assert_non_null(d);
	assert_int_equal(n, 3);
	assert_memory_equal(d, bin, 3);
	free(d);
	/* outlen may be NULL */
	d = gust_b64_decode("Zg==", 4, NULL);
	assert_non_null(d);
	assert_string_equal(d, "f");
	free(d);
}

static void test_b64_malformed(void **state)
{
	static const char *const bad[] = {
	    "Z",        /* 6 bits: not even one byte */
	    "Zm9vY",    /* a lone trailing character */
	    "Zg=a",     /* data after padding */
	    "Zg==Zg==", /* padding in the middle */
	    "Zg===",    /* too much padding */
	    "====",     /* only padding, too much */
	    "Zm9v!",    /* not in the alphabet */
	    "Zm 9v\x80", "Zm9v\0YmFy", "Zm.v",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		size_t len = strlen(bad[i]);
		if (i == 8)
			len = 9; /* the embedded NUL */
		size_t n = 12345;
		void *d = gust_b64_decode(bad[i], len, &n);
		if (d != NULL)
			fail_msg("'%s' decoded", bad[i]);
		assert_int_equal(n, 12345); /* untouched on failure */
	}
}

static void test_b64_roundtrip(void **state)
{
	srand(4648);
	unsigned char in[100];
	for (size_t len = 0; len <= 100; len++) {
		for (int rep = 0; rep < 20; rep++) {
			for (size_t i = 0; i < len; i++)
				in[i] = (unsigned char)rand();
			char *e = gust_b64_encode(in, len);
			assert_int_equal(strlen(e), (len + 2) / 3 * 4);
			for (const char *p = e; *p; p++)
				assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopq"
				                       "rstuvwxyz0123456789+/=",
				                       *p));
			size_t n = 0;
			unsigned char *d = gust_b64_decode(e, strlen(e), &n);
			assert_non_null(d);
			assert_int_equal(n, len);
			if (len)
				assert_memory_equal(d, in, len);
			free(d);
			free(e);
		}
	}
}

/* ---- ids and comparisons ---- */

static bool is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int drop_entry(void *arg, const char *key, void *value)
{
	return 1;
}

static void test_uuid4(void **state)
{
	gust_map seen = {0};
	for (int i = 0; i < 1000; i++) {
		char u[37];
		memset(u, 'X', sizeof(u));
		gust_uuid4(u);
		assert_int_equal(strlen(u), 36);
		for (int k = 0; k < 36; k++) {
			if (k == 8 || k == 13 || k == 18 || k == 23)
				assert_int_equal(u[k], '-');
			else
				assert_true(is_lower_hex(u[k]));
		}
		assert_int_equal(u[14], '4');               /* version 4 */
		assert_non_null(strchr("89ab", u[19]));     /* variant 10xx */
		assert_null(gust_map_put(&seen, u, &seen)); /* unique */
	}
	assert_int_equal(seen.count, 1000);
	gust_map_filter(&seen, drop_entry, NULL);
	gust_map_free(&seen);
}

static void test_random_hex(void **state)
{
	static const size_t sizes[] = {1, 8, 16, 32, 64};
	for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
		size_t nb = sizes[s];
		char a[130], b[130];
		memset(a, 'X', sizeof(a));
		gust_random_hex(a, nb);
		gust_random_hex(b, nb);
		assert_int_equal(strlen(a), 2 * nb);
		assert_int_equal(a[2 * nb + 1], 'X'); /* nothing written past the NUL */
		for (size_t i = 0; i < 2 * nb; i++)
			assert_true(is_lower_hex(a[i]));
		if (nb >= 8)
			assert_string_not_equal(a, b);
	}
	/* Activation ids: 16 bytes, 32 chars, and every hex digit shows up. */
	bool digit[16] = {false};
	for (int i = 0; i < 200; i++) {
		char id[33];
		gust_random_hex(id, 16);
		assert_int_equal(strlen(id), 32);
		for (int k = 0; k < 32; k++)
			digit[id[k] <= '9' ? id[k] - '0' : id[k] - 'a' + 10] = true;
	}
	for (int i = 0; i < 16; i++)
		assert_true(digit[i]);
}

static void test_consttime_eq(void **state)
{
	assert_true(gust_consttime_eq("", 0, "", 0));
	assert_true(gust_consttime_eq("secret", 6, "secret", 6));
	assert_false(gust_consttime_eq("secret", 6, "secreT", 6));
	assert_false(gust_consttime_eq("secret", 6, "Secret", 6));
	assert_false(gust_consttime_eq("secret", 6, "secret!", 7)); /* same prefix */
	assert_false(gust_consttime_eq("secret!", 7, "secret", 6));
	assert_false(gust_consttime_eq("", 0, "a", 1));
	assert_true(gust_consttime_eq("a\0b", 3, "a\0b", 3));
	assert_false(gust_consttime_eq("a\0b", 3, "a\0c", 3));
	unsigned char x[256], y[256];
	for (int i = 0; i < 256; i++)
		x[i] = y[i] = (unsigned char)i;
	assert_true(gust_consttime_eq(x, 256, y, 256));
	for (int i = 0; i < 256; i++) {
		y[i] ^= 0x80;
		assert_false(gust_consttime_eq(x, 256, y, 256));
		y[i] ^= 0x80;
	}
}

/* ---- gust_map ---- */

static void test_map_basic(void **state)
{
	gust_map m = {0};
	int a = 1, b = 2, c = 3;
	assert_null(gust_map_get(&m, "a"));
	assert_null(gust_map_del(&m, "a"));

	char key[8] = "a";
	assert_null(gust_map_put(&m, key, &a));
	key[0] = 'z'; /* keys are copied */
	assert_ptr_equal(gust_map_get(&m, "a"), &a);
	assert_null(gust_map_get(&m, "z"));
	assert_int_equal(m.count, 1);

	assert_null(gust_map_put(&m, "b", &b));
	assert_ptr_equal(gust_map_put(&m, "a", &c), &a); /* overwrite gives the old value */
	assert_int_equal(m.count, 2);
	assert_ptr_equal(gust_map_get(&m, "a"), &c);

	assert_null(gust_map_put(&m, "", &b)); /* the empty key is a key */
	assert_ptr_equal(gust_map_get(&m, ""), &b);

	assert_ptr_equal(gust_map_del(&m, "a"), &c);
	assert_null(gust_map_get(&m, "a"));
	assert_null(gust_map_del(&m, "a"));
	assert_int_equal(m.count, 2);
	assert_ptr_equal(gust_map_get(&m, "b"), &b);

	/* A NULL value is storable, though get cannot tell it from absence. */
	assert_null(gust_map_put(&m, "n", NULL));
	assert_int_equal(m.count, 3);
	gust_map_free(&m);
	assert_null(m.buckets);
	assert_int_equal(m.count, 0);
	gust_map_free(&m);
}

static int drop_odd(void *arg, const char *key, void *value)
{
	int *calls = arg;
	(*calls)++;
	intptr_t v = (intptr_t)value;
	char want[32];
	snprintf(want, sizeof(want), "key-%ld", (long)(v - 1));
	assert_string_equal(key, want); /* every key comes with its own value */
	return (v - 1) % 2 == 1;
}

static void test_map_grow_filter(void **state)
{
	enum { N = 20000 };
	gust_map m = {0};
	char k[32];
	for (intptr_t i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "key-%ld", (long)i);
		assert_null(gust_map_put(&m, k, (void *)(i + 1)));
	}
	assert_int_equal(m.count, N);
	assert_true(m.nbuckets >= N); /* it grew */
	assert_int_equal(m.nbuckets & (m.nbuckets - 1), 0);
	for (intptr_t i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "key-%ld", (long)i);
		assert_ptr_equal(gust_map_get(&m, k), (void *)(i + 1));
	}
	assert_null(gust_map_get(&m, "key-20000"));

	int calls = 0;
	gust_map_filter(&m, drop_odd, &calls);
	assert_int_equal(calls, N);
	assert_int_equal(m.count, N / 2);
	size_t seen = 0;
	for (size_t i = 0; i < m.nbuckets; i++)
		for (gust_map_entry *e = m.buckets[i]; e; e = e->next)
			seen++;
	assert_int_equal(seen, N / 2);
	for (intptr_t i = 0; i < N; i++) {
		snprintf(k, sizeof(k), "key-%ld", (long)i);
		if (i % 2)
			assert_null(gust_map_get(&m, k));
		else
			assert_ptr_equal(gust_map_get(&m, k), (void *)(i + 1));
	}
	/* Deleting the rest one by one empties it. */
	for (intptr_t i = 0; i < N; i += 2) {
		snprintf(k, sizeof(k), "key-%ld", (long)i);
		assert_ptr_equal(gust_map_del(&m, k), (void *)(i + 1));
	}
	assert_int_equal(m.count, 0);
	gust_map_free(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_buf_append),      cmocka_unit_test(test_buf_printf),
	    cmocka_unit_test(test_buf_steal_reset), cmocka_unit_test(test_json_str),
	    cmocka_unit_test(test_json_str_blocks), cmocka_unit_test(test_json_str_utf8),
	    cmocka_unit_test(test_b64_vectors),     cmocka_unit_test(test_b64_malformed),
	    cmocka_unit_test(test_b64_roundtrip),   cmocka_unit_test(test_uuid4),
	    cmocka_unit_test(test_random_hex),      cmocka_unit_test(test_consttime_eq),
	    cmocka_unit_test(test_map_basic),       cmocka_unit_test(test_map_grow_filter),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
