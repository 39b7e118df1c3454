/*
 * gust/config.h - one table describes every config key of a daemon.
 *
 * As redis's static_configs[] in src/config.c: name, type, bounds, default,
 * environment variable and help, once. A daemon's keys are read, in rising
 * precedence, from the defaults, a config file (--config FILE: "name value"
 * lines, '#' comments, like redis.conf), the environment, and --name value
 * flags. Every error names the key and where the bad value came from.
 */
#ifndef GUST_CONFIG_H
#define GUST_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "gust/err.h"

enum gust_cfg_type {
	GUST_CFG_STR,  /* char * (heap, owned by the config struct) */
	GUST_CFG_INT,  /* long long, within [min, max] */
	GUST_CFG_BOOL, /* bool: true/false/yes/no/1/0/on/off */
};

typedef struct gust_cfg_key {
	const char *name; /* flag --name, file key name */
	int type;         /* enum gust_cfg_type */
	size_t offset;    /* offsetof(the daemon's config struct, field) */
	const char *def;  /* default, as text; NULL = empty string / 0 / false */
	long long min, max;
	const char *env;  /* environment variable, e.g. "GUST_ETCD"; may be NULL */
	const char *help;
} gust_cfg_key;

#define GUST_CFG_END {NULL, 0, 0, NULL, 0, 0, NULL, NULL}

/*
 * Fills cfg from the table. argv may hold --config FILE and --name value (or
 * --name=value). --help prints usage to stdout and returns GUST_ECLOSED so that
 * main can exit 0. Unknown flags and bad values are GUST_EINVAL with a message
 * like "config key 'port' (from --port): 'abc' is not an integer".
 */
int gust_cfg_load(const gust_cfg_key *table, void *cfg, const char *prog, int argc, char **argv,
		  gust_error **err);
/* Frees the strings of cfg. */
void gust_cfg_free(const gust_cfg_key *table, void *cfg);
void gust_cfg_usage(const gust_cfg_key *table, const char *prog, FILE *out);
/* Sets one key from text; `source` is used in error messages. */
int gust_cfg_set(const gust_cfg_key *table, void *cfg, const char *name, const char *value,
		 const char *source, gust_error **err);

#endif
