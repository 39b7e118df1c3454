/*
 * config.c - where the API host and credentials come from, and `gust property`.
 *
 * Precedence, highest first: the flags --apihost / --auth, the environment
 * (GUST_APIHOST / GUST_AUTH), the config file ($GUST_CONFIG_FILE, else
 * ~/.gust/config) with KEY=VALUE lines like wsk's ~/.wskprops:
 *
 *   APIHOST=http://127.0.0.1:3233
 *   AUTH=<uuid>:<key>
 *
 * Blank lines and lines starting with '#' are ignored; unknown keys are kept
 * when `gust property set` rewrites the file.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "gust/util.h"

#define ETCD_DEFAULT "http://127.0.0.1:2379"

char *cli_config_path(void)
{
	const char *p = getenv("GUST_CONFIG_FILE");
	if (p != NULL && p[0] != '\0') {
		char *s = strdup(p);
		if (s == NULL)
			cli_error("out of memory");
		return s;
	}
	const char *home = getenv("HOME");
	if (home == NULL || home[0] == '\0') {
		struct passwd *pw = getpwuid(getuid());
		home = pw != NULL ? pw->pw_dir : NULL;
	}
	if (home == NULL) {
		cli_error("cannot find the home directory; set HOME or GUST_CONFIG_FILE");
		return NULL;
	}
	char *s = NULL;
	if (asprintf(&s, "%s/.gust/config", home) < 0) {
		cli_error("out of memory");
		return NULL;
	}
	return s;
}

const char *cli_etcd_endpoints(const cli *c)
{
	if (c->etcd_flag != NULL)
		return c->etcd_flag;
	const char *e = getenv("GUST_ETCD");
	return e != NULL && e[0] != '\0' ? e : ETCD_DEFAULT;
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n > 0 &&
	       (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\n' || s[n - 1] == '\r'))
		s[--n] = '\0';
	return s;
}

/* Reads APIHOST and AUTH from the file at path into *apihost / *auth when they
 * are still NULL. A missing file is not an error. */
static int config_read(const char *path, char **apihost, char **auth)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return CLI_OK;
		cli_error("cannot read %s: %s", path, strerror(errno));
		return CLI_EFAIL;
	}
	char *line = NULL;
	size_t cap = 0;
	int rv = CLI_OK;
	errno = 0;
	while (getline(&line, &cap, f) >= 0) {
		char *l = trim(line);
		char *eq = strchr(l, '=');
		if (l[0] == '\0' || l[0] == '#' || eq == NULL)
			continue;
		*eq = '\0';
		char *key = trim(l), *val = trim(eq + 1);
		char **slot = NULL;
		if (strcmp(key, "APIHOST") == 0)
			slot = apihost;
		else if (strcmp(key, "AUTH") == 0)
			slot = auth;
		if (slot == NULL || *slot != NULL || val[0] == '\0')
			continue;
		if ((*slot = strdup(val)) == NULL) {
			cli_error("out of memory");
			rv = CLI_EFAIL;
			break;
		}
	}
	if (rv == CLI_OK && ferror(f)) {
		cli_error("cannot read %s: %s", path, strerror(errno));
		rv = CLI_EFAIL;
	}
	free(line);
	fclose(f);
	return rv;
}

static int dup_first(char **slot, const char *a, const char *b)
{
	const char *v = a != NULL ? a : (b != NULL && b[0] != '\0' ? b : NULL);
	if (*slot != NULL || v == NULL)
		return CLI_OK;
	if ((*slot = strdup(v)) == NULL) {
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	return CLI_OK;
}

/* Fills what can be found, without judging it. */
static int config_load(cli *c, char **pathp)
{
	int rv;
	if ((rv = dup_first(&c->apihost, c->apihost_flag, getenv("GUST_APIHOST"))) != CLI_OK ||
	    (rv = dup_first(&c->auth, c->auth_flag, getenv("GUST_AUTH"))) != CLI_OK)
		return rv;
	char *path = cli_config_path();
	if (path == NULL)
		return CLI_EFAIL;
	if (c->apihost == NULL || c->auth == NULL)
		rv = config_read(path, &c->apihost, &c->auth);
	if (pathp != NULL)
		*pathp = path;
	else
		free(path);
	return rv;
}

/* Checks an API host and returns it normalized (scheme present, no trailing
 * slash) as a heap string, or NULL with the error printed. */
static char *apihost_normalize(const cli *c, const char *h, int *rvp)
{
	char *s = NULL;
	*rvp = CLI_EFAIL;
	if (strstr(h, "://") == NULL) {
		/* wsk assumes https; the Gust gateway speaks plain HTTP unless a TLS
		 * proxy fronts it, and that proxy's URL will carry its scheme. */
		if (asprintf(&s, "http://%s", h) < 0)
			s = NULL;
	} else if (strncmp(h, "http://", 7) == 0 || strncmp(h, "https://", 8) == 0) {
		s = strdup(h);
	} else {
		*rvp = cli_usage_error(
		    c, "the API host must be an http:// or https:// URL, not '%s'", h);
		return NULL;
	}
	if (s == NULL) {
		cli_error("out of memory");
		return NULL;
	}
	size_t n = strlen(s);
	while (n > 0 && s[n - 1] == '/')
		s[--n] = '\0';
	if (strcmp(strstr(s, "://") + 3, "") == 0) {
		free(s);
		*rvp = cli_usage_error(c, "the API host '%s' names no host", h);
		return NULL;
	}
	*rvp = CLI_OK;
	return s;
}

static int auth_check(const cli *c, const char *auth)
{
	const char *colon = strchr(auth, ':');
	if (colon == NULL || colon == auth || colon[1] == '\0')
		return cli_usage_error(c, "the auth key must look like uuid:key");
	return CLI_OK;
}

int cli_config_resolve(cli *c, bool need_auth)
{
	int rv;
	if ((rv = config_load(c, NULL)) != CLI_OK)
		return rv;
	if (c->apihost == NULL)
		return cli_usage_error(c,
		                       "no API host: give --apihost URL, set GUST_APIHOST, or run "
		                       "'gust property set --apihost URL'");
	char *h = apihost_normalize(c, c->apihost, &rv);
	if (h == NULL)
		return rv;
	free(c->apihost);
	c->apihost = h;
	if (c->auth == NULL) {
		if (!need_auth)
			return CLI_OK;
		return cli_usage_error(c, "no credentials: give --auth uuid:key, set GUST_AUTH, or "
		                          "run 'gust property set --auth uuid:key'");
	}
	return auth_check(c, c->auth);
}

/* --- gust property --- */

void cli_help_property(FILE *out)
{
	fputs("usage: gust property <command>\n"
	      "\n"
	      "  gust property set [--apihost URL] [--auth uuid:key]\n"
	      "      write them to the config file (created with mode 0600)\n"
	      "  gust property get [--json]\n"
	      "      show the API host and credentials in effect, and the config file\n",
	      out);
}

/* Creates the directory holding path when it is missing (one level, 0700). */
static int ensure_dir(const char *path)
{
	char *copy = strdup(path);
	if (copy == NULL) {
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	const char *dir = dirname(copy);
	int rv = CLI_OK;
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		cli_error("cannot create %s: %s", dir, strerror(errno));
		rv = CLI_EFAIL;
	}
	free(copy);
	return rv;
}

/* Whether line (leading blanks skipped) sets key. */
static bool is_key_line(const char *l, const char *key)
{
	size_t n = strlen(key);
	while (*l == ' ' || *l == '\t')
		l++;
	if (strncmp(l, key, n) != 0)
		return false;
	for (l += n; *l == ' ' || *l == '\t'; l++)
		;
	return *l == '=';
}

/* Appends the lines of the old file to b, except the APIHOST/AUTH lines that
 * are being replaced. */
static int keep_other_lines(const char *path, gust_buf *b, bool drop_apihost, bool drop_auth)
{
	FILE *f = fopen(path, "re");
	if (f == NULL) {
		if (errno == ENOENT)
			return CLI_OK;
		cli_error("cannot read %s: %s", path, strerror(errno));
		return CLI_EFAIL;
	}
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		if ((drop_apihost && is_key_line(line, "APIHOST")) ||
		    (drop_auth && is_key_line(line, "AUTH")))
			continue;
		gust_buf_append(b, line, (size_t)n);
		if (line[n - 1] != '\n')
			gust_buf_puts(b, "\n");
	}
	int rv = CLI_OK;
	if (ferror(f)) {
		cli_error("cannot read %s: %s", path, strerror(errno));
		rv = CLI_EFAIL;
	}
	free(line);
	fclose(f);
	return rv;
}

/* Replaces path with contents atomically: a 0600 temp file beside it, renamed. */
static int write_atomic(const char *path, const char *data, size_t len)
{
	char *tmp = NULL;
	if (asprintf(&tmp, "%s.XXXXXX", path) < 0) {
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	int fd = mkostemp(tmp, O_CLOEXEC); /* mode 0600 */
	if (fd < 0) {
		cli_error("cannot create a file beside %s: %s", path, strerror(errno));
		free(tmp);
		return CLI_EFAIL;
	}
	const char *p = data;
	size_t left = len;
	int rv = CLI_OK;
	while (left > 0) {
		ssize_t w = write(fd, p, left);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			rv = CLI_EFAIL;
			break;
		}
		p += w;
		left -= (size_t)w;
	}
	if (rv == CLI_OK && fsync(fd) < 0)
		rv = CLI_EFAIL;
	if (close(fd) < 0)
		rv = CLI_EFAIL;
	if (rv == CLI_OK && rename(tmp, path) < 0)
		rv = CLI_EFAIL;
	if (rv != CLI_OK) {
		cli_error("cannot write %s: %s", path, strerror(errno));
		unlink(tmp);
	}
	free(tmp);
	return rv;
}

static int property_set(cli *c, cli_args *a)
{
	const char *vals[2];
	int id;
	while ((id = cli_next(c, a, NULL, vals)) != CLI_ARGS_END) {
		if (id == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		return cli_usage_error(c, "property set takes no argument '%s'", vals[0]);
	}
	if (c->apihost_flag == NULL && c->auth_flag == NULL)
		return cli_usage_error(c,
		                       "property set needs --apihost URL and/or --auth uuid:key");

	int rv;
	if (c->apihost_flag != NULL) {
		char *h = apihost_normalize(c, c->apihost_flag, &rv);
		if (h == NULL)
			return rv;
		free(h);
	}
	if (c->auth_flag != NULL && (rv = auth_check(c, c->auth_flag)) != CLI_OK)
		return rv;

	cleanup_free char *path = cli_config_path();
	if (path == NULL)
		return CLI_EFAIL;
	gust_buf b = {0};
	rv = keep_other_lines(path, &b, c->apihost_flag != NULL, c->auth_flag != NULL);
	if (rv == CLI_OK) {
		if (c->apihost_flag != NULL)
			gust_buf_printf(&b, "APIHOST=%s\n", c->apihost_flag);
		if (c->auth_flag != NULL)
			gust_buf_printf(&b, "AUTH=%s\n", c->auth_flag);
		if ((rv = ensure_dir(path)) == CLI_OK)
			rv = write_atomic(path, b.data, b.len);
	}
	gust_buf_free(&b);
	if (rv != CLI_OK)
		return rv;
	printf("ok: wrote %s%s%s to %s\n", c->apihost_flag != NULL ? "the API host" : "",
	       c->apihost_flag != NULL && c->auth_flag != NULL ? " and " : "",
	       c->auth_flag != NULL ? "the auth key" : "", path);
	return CLI_OK;
}

static int property_get(cli *c, cli_args *a)
{
	const char *vals[2];
	int id;
	while ((id = cli_next(c, a, NULL, vals)) != CLI_ARGS_END) {
		if (id == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		return cli_usage_error(c, "property get takes no argument '%s'", vals[0]);
	}
	cleanup_free char *path = NULL;
	int rv = config_load(c, &path);
	if (rv != CLI_OK)
		return rv;
	if (c->json) {
		json_t *j = json_pack("{s:s?, s:s?, s:s}", "apihost", c->apihost, "auth", c->auth,
		                      "config", path);
		if (j == NULL) {
			cli_error("cannot encode the properties as JSON");
			return CLI_EFAIL;
		}
		rv = cli_print_json(stdout, j);
		json_decref(j);
		return rv;
	}
	printf("API host   ");
	cli_put_safe(stdout, c->apihost != NULL ? c->apihost : "(not set)");
	printf("\nauth       ");
	cli_put_safe(stdout, c->auth != NULL ? c->auth : "(not set)");
	printf("\nconfig     ");
	cli_put_safe(stdout, path);
	printf("\n");
	return CLI_OK;
}

int cli_cmd_property(cli *c, cli_args *a)
{
	const char *vals[2];
	int id = cli_next(c, a, NULL, vals);
	if (id == CLI_ARGS_ERROR)
		return CLI_EUSAGE;
	if (id == CLI_ARGS_END)
		return cli_usage_error(c, "property needs a command: set or get");
	if (strcmp(vals[0], "set") == 0)
		return property_set(c, a);
	if (strcmp(vals[0], "get") == 0)
		return property_get(c, a);
	return cli_usage_error(c, "unknown property command '%s'", vals[0]);
}
