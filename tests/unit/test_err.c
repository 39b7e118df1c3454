/* test_err.c - unit tests of common/err.c: names, messages, HTTP mapping, nng
 * mapping and the crun-style error objects. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <string.h>

#include "gust/err.h"

static void test_every_code_has_text(void **state)
{
	for (int e = 0; e < GUST_ERRNO_MAX; e++) {
		const char *msg = gust_strerror(e);
		const char *name = gust_errname(e);
		assert_non_null(msg);
		assert_non_null(name);
		assert_true(strlen(msg) > 0);
		assert_true(strlen(name) > 0);
		assert_string_not_equal(msg, "unknown error");
		assert_string_not_equal(name, "EUNKNOWN");
		/* Names are the stable API "code": they must be distinct. */
		for (int f = 0; f < e; f++)
			assert_string_not_equal(name, gust_errname(f));
		int st = gust_err_http_status(e);
		assert_in_range(st, 200, 599);
	}
	assert_string_equal(gust_errname(GUST_OK), "OK");
	assert_string_equal(gust_errname(GUST_EINVAL), "EINVAL");
	assert_string_equal(gust_errname(GUST_ENOTSUP), "ENOTSUP");
	assert_int_equal(gust_err_http_status(GUST_OK), 200);
}

static void test_http_mapping(void **state)
{
	static const struct {
		int err, http;
	} want[] = {
	    {GUST_EINVAL, 400},    {GUST_EAUTH, 401},     {GUST_EPERM, 403},
	    {GUST_ENOENT, 404},    {GUST_EEXIST, 409},    {GUST_ECONFLICT, 409},
	    {GUST_ETOOBIG, 413},   {GUST_EBUSY, 429},     {GUST_EBADGATEWAY, 502},
	    {GUST_EUNAVAIL, 503},  {GUST_ETIMEDOUT, 504}, {GUST_EPROTO, 502},
	    {GUST_EINTERNAL, 500}, {GUST_EIO, 500},       {GUST_ENOMEM, 500},
	    {GUST_ECLOSED, 503},
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		if (gust_err_http_status(want[i].err) != want[i].http)
			fail_msg("%s: http %d, want %d", gust_errname(want[i].err),
			         gust_err_http_status(want[i].err), want[i].http);
	}
}

static void test_out_of_range(void **state)
{
	const int bad[] = {-1, -1000, GUST_ERRNO_MAX, GUST_ERRNO_MAX + 1, 1 << 20};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(gust_err_http_status(bad[i]), 500);
		assert_string_equal(gust_strerror(bad[i]), "unknown error");
		assert_string_equal(gust_errname(bad[i]), "EUNKNOWN");
	}
}

static void test_from_nng(void **state)
{
	assert_int_equal(gust_err_from_nng(0), GUST_OK);
	assert_int_equal(gust_err_from_nng(NNG_ETIMEDOUT), GUST_ETIMEDOUT);
	assert_int_equal(gust_err_from_nng(NNG_ECLOSED), GUST_ECLOSED);
	assert_int_equal(gust_err_from_nng(NNG_ECANCELED), GUST_ECLOSED);
	assert_int_equal(gust_err_from_nng(NNG_ECONNREFUSED), GUST_EUNAVAIL);
	assert_int_equal(gust_err_from_nng(NNG_ECONNRESET), GUST_EUNAVAIL);
	assert_int_equal(gust_err_from_nng(NNG_ECONNSHUT), GUST_EUNAVAIL);
	assert_int_equal(gust_err_from_nng(NNG_EUNREACHABLE), GUST_EUNAVAIL);
	assert_int_equal(gust_err_from_nng(NNG_ENOMEM), GUST_ENOMEM);
	assert_int_equal(gust_err_from_nng(NNG_EINVAL), GUST_EINVAL);
	assert_int_equal(gust_err_from_nng(NNG_EPROTO), GUST_EPROTO);
	/* Anything else is an I/O failure, never success. */
	assert_int_equal(gust_err_from_nng(NNG_EBUSY), GUST_EIO);
	assert_int_equal(gust_err_from_nng(12345), GUST_EIO);
}

static void test_error_set_once(void **state)
{
	gust_error *err = NULL;
	assert_int_equal(gust_error_set(&err, GUST_ENOENT, "key %s missing", "a"), GUST_ENOENT);
	assert_non_null(err);
	assert_int_equal(err->code, GUST_ENOENT);
	assert_string_equal(gust_error_msg(err), "key a missing");

	/* The first failure wins: a second set returns its code but keeps the first. */
	assert_int_equal(gust_error_set(&err, GUST_EIO, "later %d", 2), GUST_EIO);
	assert_int_equal(err->code, GUST_ENOENT);
	assert_string_equal(gust_error_msg(err), "key a missing");
	gust_error_free(err);
}

static void test_error_wrap(void **state)
{
	gust_error *err = NULL;
	gust_error_set(&err, GUST_EUNAVAIL, "connection refused");
	assert_int_equal(gust_error_wrap(&err, "etcd %s", "http://x:1"), GUST_EUNAVAIL);
	assert_string_equal(gust_error_msg(err), "etcd http://x:1: connection refused");
	assert_int_equal(gust_error_wrap(&err, "config key '%s'", "etcd"), GUST_EUNAVAIL);
	assert_string_equal(gust_error_msg(err),
	                    "config key 'etcd': etcd http://x:1: connection refused");
	assert_int_equal(err->code, GUST_EUNAVAIL);
	gust_error_free(err);
}

static void test_error_null(void **state)
{
	/* A NULL errp means "caller does not care": the code still comes back. */
	assert_int_equal(gust_error_set(NULL, GUST_EINVAL, "x %d", 1), GUST_EINVAL);
	int rv = gust_error_wrap(NULL, "ctx");
	assert_int_not_equal(rv, GUST_OK);

	/* Wrapping when nothing was set does not crash or allocate. */
	gust_error *err = NULL;
	assert_int_not_equal(gust_error_wrap(&err, "ctx"), GUST_OK);
	assert_null(err);

	gust_error_free(NULL);
	assert_string_equal(gust_error_msg(NULL), "no error");

	/* An error without a message shows the code's text. */
	gust_error bare = {GUST_ETIMEDOUT, NULL};
	assert_string_equal(gust_error_msg(&bare), gust_strerror(GUST_ETIMEDOUT));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_every_code_has_text), cmocka_unit_test(test_http_mapping),
	    cmocka_unit_test(test_out_of_range),        cmocka_unit_test(test_from_nng),
	    cmocka_unit_test(test_error_set_once),      cmocka_unit_test(test_error_wrap),
	    cmocka_unit_test(test_error_null),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
