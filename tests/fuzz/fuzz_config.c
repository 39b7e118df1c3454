/* fuzz_config.c - the config loader (common/config.c): a --config file of
 * "key value" lines, and --key value / --key=value flags, through
 * gust_cfg_load as a daemon calls it.
 *
 * Input: the first byte picks file or flags. File: the rest is the file's
 * contents (written to a memfd, passed as --config /proc/self/fd/N). Flags:
 * the rest, cut at NUL bytes, is argv.
 *
 * Properties: gust_cfg_load either fails with an error message naming the
 * problem, or fills every key: strings non-NULL and within their length
 * bound, integers within [min, max]. */
#include <stddef.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "gust/config.h"
#include "gust/err.h"

typedef struct fcfg {
	char *name;
	char *url;
	long long port;
	long long neg;
	bool flag;
	bool other;
	char *level;
} fcfg;

static const gust_cfg_key table[] = {
    {"name", GUST_CFG_STR, offsetof(fcfg, name), "gust", 0, 16, "GUST_FUZZ_CFG_NAME", "a name"},
    {"url", GUST_CFG_STR, offsetof(fcfg, url), NULL, 0, 0, NULL, "unbounded"},
    {"port", GUST_CFG_INT, offsetof(fcfg, port), "3233", 1, 65535, NULL, "a port"},
    {"neg", GUST_CFG_INT, offsetof(fcfg, neg), "-5", -9223372036854775807LL - 1,
     9223372036854775807LL, NULL, "any integer"},
    {"flag", GUST_CFG_BOOL, offsetof(fcfg, flag), "false", 0, 0, NULL, "a flag"},
    {"other", GUST_CFG_BOOL, offsetof(fcfg, other), NULL, 0, 0, NULL, "another"},
    {"log_level", GUST_CFG_STR, offsetof(fcfg, level), "info", 0, 8, NULL, "level"},
    GUST_CFG_END,
};

static int memfd = -1;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	bool file = data[0] & 1;
	data++, size--;
	fcfg c = {0};
	gust_error *err = NULL;
	char *argv[64];
	int argc = 0;
	char *text = malloc(size + 1);
	if (text == NULL)
		abort();
	memcpy(text, data, size);
	text[size] = 0;
	char path[64];
	argv[argc++] = "gust-fuzz";
	if (file) {
		if (memfd < 0)
			memfd = memfd_create("gust-fuzz-config", 0);
		FUZZ_CHECK(memfd >= 0, "memfd_create");
		FUZZ_CHECK(ftruncate(memfd, 0) == 0 &&
		               pwrite(memfd, data, size, 0) == (ssize_t)size,
		           "memfd write");
		snprintf(path, sizeof(path), "/proc/self/fd/%d", memfd);
		argv[argc++] = "--config";
		argv[argc++] = path;
	} else {
		char *p = text, *end = text + size;
		while (p < end && argc < 63) {
			/* No file names from the input: --config would open them. */
			argv[argc++] = strncmp(p, "--config", 8) == 0 ? "--name" : p;
			p += strlen(p) + 1;
		}
	}
	argv[argc] = NULL;
	/* --help prints to stdout; keep the replay quiet. */
	bool help = false;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			help = true;
	if (!help) {
		int rv = gust_cfg_load(table, &c, "gust-fuzz", argc, argv, &err);
		if (rv != 0) {
			FUZZ_CHECK(err != NULL && gust_error_msg(err) != NULL &&
			               gust_error_msg(err)[0] != 0,
			           "failure %d without a message", rv);
		} else {
			FUZZ_CHECK(c.name != NULL && strlen(c.name) <= 16, "name");
			FUZZ_CHECK(c.url != NULL, "url");
			FUZZ_CHECK(c.level != NULL && strlen(c.level) <= 8, "log_level");
			FUZZ_CHECK(c.port >= 1 && c.port <= 65535, "port %lld", c.port);
		}
	}
	gust_error_free(err);
	gust_cfg_free(table, &c);
	free(text);
	return 0;
}
