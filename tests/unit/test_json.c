/* test_json.c - unit tests of gust_json_check (common/json_check.c): the
 * grammar, strings and their escapes, and the depth limit, each beside what
 * jansson says of the same text (tests/fuzz/fuzz_json_check.c compares the
 * two on mutated inputs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/json.h"

static gust_json_type check(const char *s)
{
	return gust_json_check(s, strlen(s));
}

static bool jansson_ok(const char *s, size_t n)
{
	json_t *j = json_loadb(s, n, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	json_decref(j);
	return j != NULL;
}

static void test_types(void **state)
{
	assert_int_equal(check("{}"), GUST_JSON_OBJECT);
	assert_int_equal(check(" \t\r\n{\"a\" : [1, 2.5e-3, -0, true, false, null]} \n"),
	                 GUST_JSON_OBJECT);
	assert_int_equal(check("[]"), GUST_JSON_ARRAY);
	assert_int_equal(check("\"x\""), GUST_JSON_STRING);
	assert_int_equal(check("-12.5E+10"), GUST_JSON_NUMBER);
	assert_int_equal(check("true"), GUST_JSON_TRUE);
	assert_int_equal(check("false"), GUST_JSON_FALSE);
	assert_int_equal(check("null"), GUST_JSON_NULL);
	/* the type is the outer value's */
	assert_int_equal(check("[{}]"), GUST_JSON_ARRAY);
	assert_int_equal(check("{\"a\":[]}"), GUST_JSON_OBJECT);
}

static void test_invalid(void **state)
{
	const char *bad[] = {"",
	                     " ",
	                     "{",
	                     "}",
	                     "[1,]",
	                     "{\"a\":1,}",
	                     "{\"a\"}",
	                     "{1:2}",
	                     "{\"a\":1 \"b\":2}",
	                     "[1 2]",
	                     "01",
	                     "1.",
	                     ".5",
	                     "1e",
	                     "-",
	                     "+1",
	                     "tru",
	                     "nul",
	                     "True",
	                     "{}{}",
	                     "{} x",
	                     "\"abc",
	                     "'a'",
	                     "[,]",
	                     "{\"a\":1]",
	                     "[1}",
	                     "\"\\x\"",
	                     "\"\\u12g4\"",
	                     "\"a\tb\"",
	                     "NaN",
	                     "Infinity",
	                     "[\"\\ud800\"]",
	                     "\"\\udc00\"",
	                     "\"\\ud800\\u0041\"",
	                     "\"\xc0\xaf\"",
	                     "\"\xed\xa0\x80\"",
	                     "\"\xf4\x90\x80\x80\"",
	                     "\"\xe2\x82\"",
	                     "\"\xff\""};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (check(bad[i]) != GUST_JSON_INVALID)
			fail_msg("accepted: %s", bad[i]);
		if (jansson_ok(bad[i], strlen(bad[i])))
			fail_msg("jansson accepts: %s", bad[i]);
	}
	/* a raw NUL, in a string or after the value */
	assert_int_equal(gust_json_check("\"a\0b\"", 5), GUST_JSON_INVALID);
	assert_int_equal(gust_json_check("{}\0", 3), GUST_JSON_INVALID);
	assert_int_equal(gust_json_check(NULL, 0), GUST_JSON_INVALID);
}

static void test_strings(void **state)
{
	const char *good[] = {"\"\"",
	                      "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"",
	                      "\"\\u00e9\\u20AC\"",
	                      "\"\\ud83d\\ude00\"",
	                      "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
	                      "\"\\u0000\"",
	                      "\"\x7f\""};
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		if (check(good[i]) != GUST_JSON_STRING)
			fail_msg("refused: %s", good[i]);
		assert_true(jansson_ok(good[i], strlen(good[i])));
	}
	/* the length bounds the read: a quote just past n does not count */
	assert_int_equal(gust_json_check("\"ab\"", 3), GUST_JSON_INVALID);
	assert_int_equal(gust_json_check("\"\\u00e9\"", 6), GUST_JSON_INVALID);
}

/* n nested arrays around 1 */
static char *nest(size_t n)
{
	char *s = malloc(2 * n + 2);
	memset(s, '[', n);
	s[n] = '1';
	memset(s + n + 1, ']', n);
	s[2 * n + 1] = '\0';
	return s;
}

static void test_depth(void **state)
{
	char *ok = nest(GUST_JSON_MAX_DEPTH);
	char *deep = nest(GUST_JSON_MAX_DEPTH + 1);
	assert_int_equal(check(ok), GUST_JSON_ARRAY);
	assert_true(jansson_ok(ok, strlen(ok)));
	assert_int_equal(check(deep), GUST_JSON_INVALID);
	assert_false(jansson_ok(deep, strlen(deep)));
	free(ok);
	free(deep);
	/* hostile nesting fails cleanly at the limit, whatever its length */
	char *huge = nest(1 << 20);
	assert_int_equal(check(huge), GUST_JSON_INVALID);
	free(huge);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_types),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_strings),
	    cmocka_unit_test(test_depth),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
