/* test_config.c - unit tests of the config table (common/config.c): defaults,
 * file, environment and flags, in that rising precedence, and the errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gust/config.h"
#include "harness.h"

typedef struct tcfg {
	char *host;
	long long port;
	bool debug;
	bool quiet;
	char *name;
	long long workers;
	char *note;
} tcfg;

static const gust_cfg_key table[] = {
    {"host", GUST_CFG_STR, offsetof(tcfg, host), "localhost", 0, 0, "GUST_T_HOST", "host"},
    {"port", GUST_CFG_INT, offsetof(tcfg, port), "8080", 1, 65535, "GUST_T_PORT", "port"},
    {"debug", GUST_CFG_BOOL, offsetof(tcfg, debug), "false", 0, 0, "GUST_T_DEBUG", "debug"},
    {"quiet", GUST_CFG_BOOL, offsetof(tcfg, quiet), "yes", 0, 0, NULL, "quiet"},
    {"name", GUST_CFG_STR, offsetof(tcfg, name), NULL, 0, 8, "GUST_T_NAME", "at most 8"},
    {"workers", GUST_CFG_INT, offsetof(tcfg, workers), NULL, -4, 64, NULL, "workers"},
    {"note", GUST_CFG_STR, offsetof(tcfg, note), NULL, 0, 0, NULL, "free text"},
    GUST_CFG_END,
};

static const char *const envs[] = {"GUST_T_HOST", "GUST_T_PORT", "GUST_T_DEBUG", "GUST_T_NAME"};

typedef struct fixture {
	char *dir;
	char path[512];
	tcfg cfg;
	gust_error *err;
} fixture;

static int setup(void **state)
{
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
		unsetenv(envs[i]);
	fixture *f = calloc(1, sizeof(*f));
	f->dir = th_tmpdir("config");
	if (f->dir == NULL)
		return -1;
	snprintf(f->path, sizeof(f->path), "%s/gust.conf", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	for (size_t i = 0; i < sizeof(envs) / sizeof(envs[0]); i++)
		unsetenv(envs[i]);
	gust_cfg_free(table, &f->cfg);
	gust_error_free(f->err);
	th_rmdir(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void write_file(fixture *f, const char *text)
{
	FILE *fp = fopen(f->path, "w");
	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

/* Runs gust_cfg_load on a NULL-terminated argument list (after argv[0]). */
static int load(fixture *f, ...)
{
	char *argv[32];
	int argc = 0;
	argv[argc++] = (char *)"gustd";
	va_list ap;
	va_start(ap, f);
	const char *a;
	while ((a = va_arg(ap, const char *)) != NULL && argc < 31)
		argv[argc++] = (char *)a;
	va_end(ap);
	argv[argc] = NULL;
	gust_cfg_free(table, &f->cfg);
	gust_error_free(f->err);
	f->err = NULL;
	return gust_cfg_load(table, &f->cfg, "gustd", argc, argv, &f->err);
}

/* The load failed with EINVAL and the message holds every given piece. */
static void expect_einval(fixture *f, int rv, ...)
{
	assert_int_equal(rv, GUST_EINVAL);
	assert_non_null(f->err);
	assert_int_equal(f->err->code, GUST_EINVAL);
	const char *msg = gust_error_msg(f->err);
	va_list ap;
	va_start(ap, rv);
	const char *want;
	while ((want = va_arg(ap, const char *)) != NULL) {
		if (strstr(msg, want) == NULL)
			fail_msg("error \"%s\" does not contain \"%s\"", msg, want);
	}
	va_end(ap);
}

static void test_defaults(void **state)
{
	fixture *f = *state;
	assert_int_equal(load(f, NULL), 0);
	assert_null(f->err);
	assert_string_equal(f->cfg.host, "localhost");
	assert_int_equal(f->cfg.port, 8080);
	assert_false(f->cfg.debug);
	assert_true(f->cfg.quiet);
	/* A NULL default is the empty string / 0. */
	assert_non_null(f->cfg.name);
	assert_string_equal(f->cfg.name, "");
	assert_int_equal(f->cfg.workers, 0);
	assert_string_equal(f->cfg.note, "");
}

static void test_precedence(void **state)
{
	fixture *f = *state;
	char cfgarg[600];
	snprintf(cfgarg, sizeof(cfgarg), "--config=%s", f->path);
	write_file(f, "port 1000\nhost filehost\nname file\n");

	assert_int_equal(load(f, "--config", f->path, NULL), 0);
	assert_int_equal(f->cfg.port, 1000);
	assert_string_equal(f->cfg.host, "filehost");
	assert_string_equal(f->cfg.name, "file");

	setenv("GUST_T_PORT", "2000", 1);
	setenv("GUST_T_HOST", "envhost", 1);
	assert_int_equal(load(f, cfgarg, NULL), 0);
	assert_int_equal(f->cfg.port, 2000);
	assert_string_equal(f->cfg.host, "envhost");
	assert_string_equal(f->cfg.name, "file"); /* no env for it set: the file stays */

	/* A flag wins even when it comes before --config on the command line. */
	assert_int_equal(load(f, "--port", "3000", "--config", f->path, NULL), 0);
	assert_int_equal(f->cfg.port, 3000);
	assert_string_equal(f->cfg.host, "envhost");

	/* The environment alone overrides the default. */
	assert_int_equal(load(f, NULL), 0);
	assert_int_equal(f->cfg.port, 2000);
	assert_string_equal(f->cfg.name, "");
}

static void test_flag_forms(void **state)
{
	fixture *f = *state;
	assert_int_equal(load(f, "--port=81", "--host", "h1", "--name=", NULL), 0);
	assert_int_equal(f->cfg.port, 81);
	assert_string_equal(f->cfg.host, "h1");
	assert_string_equal(f->cfg.name, "");

	assert_int_equal(load(f, "--port", "82", "--host=a=b", "--workers", "-4", NULL), 0);
	assert_int_equal(f->cfg.port, 82);
	assert_string_equal(f->cfg.host, "a=b"); /* only the first '=' splits */
	assert_int_equal(f->cfg.workers, -4);

	/* The last of repeated flags wins. */
	assert_int_equal(load(f, "--port", "1", "--port=2", NULL), 0);
	assert_int_equal(f->cfg.port, 2);
}

static void test_bool_flags(void **state)
{
	fixture *f = *state;
	/* Without a value: true, whether last or followed by another flag. */
	assert_int_equal(load(f, "--debug", NULL), 0);
	assert_true(f->cfg.debug);
	assert_int_equal(load(f, "--debug", "--port", "9", NULL), 0);
	assert_true(f->cfg.debug);
	assert_int_equal(f->cfg.port, 9);

	/* With a value, both forms, every spelling. */
	static const char *const yes[] = {"true", "yes", "1", "on", "TRUE", "On"};
	static const char *const no[] = {"false", "no", "0", "off", "FALSE", "Off"};
	char a[64];
	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		assert_int_equal(load(f, "--quiet", no[i], "--debug", yes[i], NULL), 0);
		assert_true(f->cfg.debug);
		assert_false(f->cfg.quiet);
		snprintf(a, sizeof(a), "--quiet=%s", no[i]);
		assert_int_equal(load(f, a, NULL), 0);
		assert_false(f->cfg.quiet);
	}
	setenv("GUST_T_DEBUG", "on", 1);
	assert_int_equal(load(f, NULL), 0);
	assert_true(f->cfg.debug);
	assert_int_equal(load(f, "--debug=off", NULL), 0);
	assert_false(f->cfg.debug);

	expect_einval(f, load(f, "--debug=maybe", NULL), "'debug'", "--debug", "'maybe'", NULL);
	expect_einval(f, load(f, "--debug", "2", NULL), "'debug'", "--debug", NULL);
}

static void test_int_errors(void **state)
{
	fixture *f = *state;
	expect_einval(f, load(f, "--port", "70000", NULL), "'port'", "--port", "70000",
	              "out of range", NULL);
	expect_einval(f, load(f, "--port=0", NULL), "'port'", "--port", "out of range", NULL);
	expect_einval(f, load(f, "--workers=-5", NULL), "'workers'", "--workers", NULL);
	expect_einval(f, load(f, "--port", "12abc", NULL), "'port'", "--port",
	              "'12abc' is not an integer", NULL);
	expect_einval(f, load(f, "--port=", NULL), "'port'", "not an integer", NULL);
	expect_einval(f, load(f, "--port", "99999999999999999999999", NULL), "'port'",
	              "not an integer", NULL);
	expect_einval(f, load(f, "--port", " ", NULL), "'port'", "not an integer", NULL);
	/* Bounds are inclusive. */
	assert_int_equal(load(f, "--port", "65535", "--workers", "64", NULL), 0);
	assert_int_equal(f->cfg.port, 65535);
	assert_int_equal(load(f, "--port", "1", NULL), 0);
	assert_int_equal(f->cfg.port, 1);

	setenv("GUST_T_PORT", "70000", 1);
	expect_einval(f, load(f, NULL), "'port'", "environment GUST_T_PORT", NULL);
	setenv("GUST_T_PORT", "eighty", 1);
	expect_einval(f, load(f, NULL), "'port'", "environment GUST_T_PORT", "'eighty'", NULL);
	/* A bad environment value fails even when a flag would override it. */
	expect_einval(f, load(f, "--port", "80", NULL), "environment GUST_T_PORT", NULL);
	unsetenv("GUST_T_PORT");

	char where[600];
	snprintf(where, sizeof(where), "%s:3", f->path);
	write_file(f, "host x\n\nport 0\n");
	expect_einval(f, load(f, "--config", f->path, NULL), "'port'", where, "out of range", NULL);
}

static void test_unknown_and_missing(void **state)
{
	fixture *f = *state;
	expect_einval(f, load(f, "--nope", "1", NULL), "unknown", "'nope'", "--nope", NULL);
	expect_einval(f, load(f, "--nope=1", NULL), "'nope'", NULL);
	/* A prefix of a key is not the key. */
	expect_einval(f, load(f, "--por", "1", NULL), "'por'", NULL);
	expect_einval(f, load(f, "--port", NULL), "'port'", "--port", "missing value", NULL);
	expect_einval(f, load(f, "--host", NULL), "'host'", "missing value", NULL);
	expect_einval(f, load(f, "stray", NULL), "unexpected argument", "'stray'", NULL);
	expect_einval(f, load(f, "--config", NULL), "--config", NULL);
	expect_einval(f, load(f, "--config", "/nonexistent/gust.conf", NULL),
	              "/nonexistent/gust.conf", NULL);

	char where[600];
	snprintf(where, sizeof(where), "%s:2", f->path);
	write_file(f, "port 1\nbogus 2\n");
	expect_einval(f, load(f, "--config", f->path, NULL), "unknown", "'bogus'", where, NULL);

	gust_error_free(f->err);
	f->err = NULL;
	assert_int_equal(gust_cfg_set(table, &f->cfg, "zzz", "1", "test", &f->err), GUST_EINVAL);
	assert_non_null(strstr(gust_error_msg(f->err), "'zzz'"));
	assert_non_null(strstr(gust_error_msg(f->err), "test"));
	/* A NULL error pointer is allowed. */
	assert_int_equal(load(f, NULL), 0);
	assert_int_equal(gust_cfg_set(table, &f->cfg, "port", "x", "test", NULL), GUST_EINVAL);
	assert_int_equal(gust_cfg_set(table, &f->cfg, "port", "443", "test", NULL), 0);
	assert_int_equal(f->cfg.port, 443);
}

static void test_file_syntax(void **state)
{
	fixture *f = *state;
	write_file(f, "# a comment\n"
	              "   # an indented comment\n"
	              "\n"
	              "\t\n"
	              "port\t  4242   \n"
	              "host \"with  two spaces\"\n"
	              "name \"\"\n"
	              "note   \"a # not a comment\"  \r\n"
	              "debug on\n"
	              "  quiet off\n"
	              "workers -3");
	assert_int_equal(load(f, "--config", f->path, NULL), 0);
	assert_int_equal(f->cfg.port, 4242);
	assert_string_equal(f->cfg.host, "with  two spaces");
	assert_string_equal(f->cfg.name, "");
	assert_string_equal(f->cfg.note, "a # not a comment");
	assert_true(f->cfg.debug);
	assert_false(f->cfg.quiet);
	assert_int_equal(f->cfg.workers, -3); /* last line without a newline */

	/* A later file line overrides an earlier one; an error stops the file. */
	write_file(f, "port 1\nport 2\nport x\nport 3\n");
	expect_einval(f, load(f, "--config", f->path, NULL), "'port'", ":3", NULL);
}

static void test_string_max(void **state)
{
	fixture *f = *state;
	assert_int_equal(load(f, "--name", "12345678", NULL), 0);
	assert_string_equal(f->cfg.name, "12345678");
	expect_einval(f, load(f, "--name", "123456789", NULL), "'name'", "--name", "8 bytes", NULL);
	setenv("GUST_T_NAME", "much-too-long", 1);
	expect_einval(f, load(f, NULL), "'name'", "environment GUST_T_NAME", NULL);
	unsetenv("GUST_T_NAME");
	/* max 0 means unbounded */
	char big[4096];
	memset(big, 'n', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(load(f, "--note", big, NULL), 0);
	assert_string_equal(f->cfg.note, big);
}

static void test_help(void **state)
{
	fixture *f = *state;
	fflush(stdout);
	assert_int_equal(load(f, "--port", "1", "--help", NULL), GUST_ECLOSED);
	assert_null(f->err);
	assert_int_equal(load(f, "-h", NULL), GUST_ECLOSED);
	/* --help wins over a bad value given before it. */
	assert_int_equal(load(f, "--port", "x", "--help", NULL), GUST_ECLOSED);

	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	assert_non_null(mem);
	gust_cfg_usage(table, "gustd", mem);
	fclose(mem);
	assert_non_null(strstr(text, "usage: gustd"));
	assert_non_null(strstr(text, "--port"));
	assert_non_null(strstr(text, "range [1, 65535]"));
	assert_non_null(strstr(text, "env GUST_T_PORT"));
	assert_non_null(strstr(text, "--workers"));
	free(text);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_defaults),    T(test_precedence), T(test_flag_forms),
	    T(test_bool_flags),  T(test_int_errors), T(test_unknown_and_missing),
	    T(test_file_syntax), T(test_string_max), T(test_help),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
