/* config.c - the config table: defaults, file, environment and flags. */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gust/config.h"
#include "gust/util.h"

static const gust_cfg_key *cfg_find(const gust_cfg_key *t, const char *name, size_t len)
{
	for (; t->name != NULL; t++)
		if (strlen(t->name) == len && strncmp(t->name, name, len) == 0)
			return t;
	return NULL;
}

static int cfg_parse_bool(const char *v, bool *out)
{
	static const char *const yes[] = {"true", "yes", "1", "on"};
	static const char *const no[] = {"false", "no", "0", "off"};
	for (size_t i = 0; i < 4; i++) {
		if (strcasecmp(v, yes[i]) == 0)
			return *out = true, 0;
		if (strcasecmp(v, no[i]) == 0)
			return *out = false, 0;
	}
	return -1;
}

static int cfg_apply(const gust_cfg_key *k, void *cfg, const char *value, const char *source,
		     gust_error **err)
{
	char *base = (char *)cfg + k->offset;
	switch (k->type) {
	case GUST_CFG_STR: {
		char **p = (char **)(void *)base;
		if (k->max > 0 && (long long)strlen(value) > k->max)
			return gust_error_set(err, GUST_EINVAL,
					      "config key '%s' (from %s): longer than %lld bytes",
					      k->name, source, k->max);
		free(*p);
		*p = gust_xstrdup(value);
		return 0;
	}
	case GUST_CFG_INT: {
		char *end = NULL;
		errno = 0;
		long long v = strtoll(value, &end, 10);
		if (errno != 0 || end == value || *end != '\0')
			return gust_error_set(err, GUST_EINVAL,
					      "config key '%s' (from %s): '%s' is not an integer",
					      k->name, source, value);
		if (v < k->min || v > k->max)
			return gust_error_set(
				err, GUST_EINVAL,
				"config key '%s' (from %s): %lld is out of range [%lld, %lld]",
				k->name, source, v, k->min, k->max);
		*(long long *)(void *)base = v;
		return 0;
	}
	case GUST_CFG_BOOL: {
		bool b;
		if (cfg_parse_bool(value, &b) != 0)
			return gust_error_set(
				err, GUST_EINVAL,
				"config key '%s' (from %s): '%s' is not a boolean (true/false)",
				k->name, source, value);
		*(bool *)(void *)base = b;
		return 0;
	}
	}
	return gust_error_set(err, GUST_EINTERNAL, "config key '%s': bad type", k->name);
}

int gust_cfg_set(const gust_cfg_key *table, void *cfg, const char *name, const char *value,
		 const char *source, gust_error **err)
{
	const gust_cfg_key *k = cfg_find(table, name, strlen(name));
	if (k == NULL)
		return gust_error_set(err, GUST_EINVAL, "unknown config key '%s' (from %s)", name,
				      source);
	return cfg_apply(k, cfg, value, source, err);
}

static int cfg_load_file(const gust_cfg_key *table, void *cfg, const char *path, gust_error **err)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return gust_error_set(err, GUST_EINVAL, "config file %s: %s", path,
				      strerror(errno));
	char *line = NULL;
	size_t cap = 0;
	int lineno = 0, rv = 0;
	while (rv == 0 && getline(&line, &cap, f) >= 0) {
		lineno++;
		char *s = line;
		while (isspace((unsigned char)*s))
			s++;
		if (*s == '#' || *s == '\0')
			continue;
		char *e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			*--e = '\0';
		char *name = s;
		while (*s && !isspace((unsigned char)*s))
			s++;
		if (*s)
			*s++ = '\0';
		while (isspace((unsigned char)*s))
			s++;
		/* A value may be quoted to hold spaces or be empty. */
		size_t vl = strlen(s);
		if (vl >= 2 && s[0] == '"' && s[vl - 1] == '"') {
			s[vl - 1] = '\0';
			s++;
		}
		char source[512];
		snprintf(source, sizeof(source), "%s:%d", path, lineno);
		rv = gust_cfg_set(table, cfg, name, s, source, err);
	}
	free(line);
	fclose(f);
	return rv;
}

void gust_cfg_usage(const gust_cfg_key *t, const char *prog, FILE *out)
{
	fprintf(out, "usage: %s [--config FILE] [--KEY VALUE]...\n\nkeys:\n", prog);
	for (; t->name != NULL; t++) {
		const char *ty = t->type == GUST_CFG_INT	? "int"
				 : t->type == GUST_CFG_BOOL ? "bool"
							    : "string";
		fprintf(out, "  --%-22s %-6s %s\n", t->name, ty, t->help ? t->help : "");
		fprintf(out, "  %-24s        default: %s", "", t->def ? t->def : "(none)");
		if (t->type == GUST_CFG_INT)
			fprintf(out, ", range [%lld, %lld]", t->min, t->max);
		if (t->env)
			fprintf(out, ", env %s", t->env);
		fputc('\n', out);
	}
}

int gust_cfg_load(const gust_cfg_key *table, void *cfg, const char *prog, int argc, char **argv,
		  gust_error **err)
{
	int rv;
	for (const gust_cfg_key *k = table; k->name != NULL; k++) {
		const char *d = k->def;
		if (d == NULL)
			d = k->type == GUST_CFG_STR ? "" : k->type == GUST_CFG_INT ? "0" : "false";
		if ((rv = cfg_apply(k, cfg, d, "default", err)) != 0)
			return rv;
	}
	/* The file comes first so that environment and flags override it. */
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			gust_cfg_usage(table, prog, stdout);
			return GUST_ECLOSED;
		}
		if (strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc)
				return gust_error_set(err, GUST_EINVAL, "--config needs a file");
			if ((rv = cfg_load_file(table, cfg, argv[i + 1], err)) != 0)
				return rv;
			i++;
		} else if (strncmp(argv[i], "--config=", 9) == 0) {
			if ((rv = cfg_load_file(table, cfg, argv[i] + 9, err)) != 0)
				return rv;
		}
	}
	for (const gust_cfg_key *k = table; k->name != NULL; k++) {
		const char *v = k->env ? getenv(k->env) : NULL;
		if (v == NULL)
			continue;
		char source[128];
		snprintf(source, sizeof(source), "environment %s", k->env);
		if ((rv = cfg_apply(k, cfg, v, source, err)) != 0)
			return rv;
	}
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strncmp(a, "--", 2) != 0)
			return gust_error_set(err, GUST_EINVAL, "unexpected argument '%s'", a);
		a += 2;
		if (strcmp(a, "config") == 0) {
			i++;
			continue;
		}
		if (strncmp(a, "config=", 7) == 0)
			continue;
		const char *eq = strchr(a, '=');
		size_t nl = eq ? (size_t)(eq - a) : strlen(a);
		const gust_cfg_key *k = cfg_find(table, a, nl);
		if (k == NULL)
			return gust_error_set(err, GUST_EINVAL, "unknown config key '%.*s' (from --%.*s)",
					      (int)nl, a, (int)nl, a);
		const char *v;
		if (eq)
			v = eq + 1;
		else if (k->type == GUST_CFG_BOOL && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0))
			v = "true";
		else if (i + 1 < argc)
			v = argv[++i];
		else
			return gust_error_set(err, GUST_EINVAL, "config key '%s' (from --%s): missing value",
					      k->name, k->name);
		char source[128];
		snprintf(source, sizeof(source), "--%s", k->name);
		if ((rv = cfg_apply(k, cfg, v, source, err)) != 0)
			return rv;
	}
	return 0;
}

void gust_cfg_free(const gust_cfg_key *t, void *cfg)
{
	for (; t->name != NULL; t++) {
		if (t->type != GUST_CFG_STR)
			continue;
		char **p = (char **)(void *)((char *)cfg + t->offset);
		free(*p);
		*p = NULL;
	}
}
