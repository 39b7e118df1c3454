/*
 * action.c - `gust action create|update|get|list|delete|invoke`, against the
 * gateway's OpenWhisk-compatible /api/v1/namespaces/<ns>/actions.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gust/util.h"

/* Larger than any code a gateway accepts (OpenWhisk: 48 MB); reading past it
 * would only waste memory before the server says no. */
#define CLI_MAX_FILE ((size_t)64 << 20)

enum {
	O_KIND = 1,
	O_MAIN,
	O_PARAM,
	O_PARAM_FILE,
	O_TIMEOUT,
	O_MEMORY,
	O_WEB,
	O_ANNOT,
	O_CODE,
	O_LIMIT,
	O_SKIP,
	O_BLOCKING,
	O_RESULT,
	O_SEQUENCE,
};

void cli_help_action(FILE *out)
{
	fputs("usage: gust action <command> [args] [flags]\n"
	      "\n"
	      "  create NAME FILE [flags]   create an action from FILE\n"
	      "  update NAME [FILE] [flags] create or replace an action\n"
	      "      --kind KIND            python:3, nodejs:20, native, ... (from .py / .js\n"
	      "                             otherwise; a .zip always needs --kind)\n"
	      "      --main NAME            the entry point\n"
	      "      -p, --param K V        a default parameter; V is JSON if it parses,\n"
	      "                             else a string (repeatable)\n"
	      "      -P, --param-file F     default parameters from a JSON object in F\n"
	      "      -a, --annotation K V   an annotation, V as for --param (repeatable)\n"
	      "      -t, --timeout MS       time limit in milliseconds\n"
	      "      -m, --memory MB        memory limit in megabytes\n"
	      "      --web true|false|raw   make it a web action (raw: the raw HTTP request)\n"
	      "      --sequence A,B,...     make it a sequence of those actions (no FILE)\n"
	      "  get NAME [--code]          show an action (--code: only its code)\n"
	      "  list [--limit N] [--skip N]  list actions\n"
	      "  delete NAME                delete an action\n"
	      "  invoke NAME [flags]        invoke an action\n"
	      "      -p, --param K V / -P, --param-file F   its parameters\n"
	      "      -b, --blocking         wait for the activation record\n"
	      "      -r, --result           wait and print only the result\n"
	      "\n"
	      "NAME is name, package/name or /namespace/[package/]name; the default\n"
	      "namespace is _ (the one of your key). --json prints raw JSON from get/list.\n",
	      out);
}

/* Reads a whole file (at most CLI_MAX_FILE bytes) into a NUL-terminated heap
 * buffer. */
static int read_file(const char *path, char **datap, size_t *lenp)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		cli_error("cannot open %s: %s", path, strerror(errno));
		return CLI_EFAIL;
	}
	char *data = NULL;
	size_t len = 0, cap = 0;
	int rv = CLI_OK;
	for (;;) {
		if (cap - len < 65536 + 1) {
			if (cap > CLI_MAX_FILE) {
				cli_error("%s is larger than %zu MiB", path, CLI_MAX_FILE >> 20);
				rv = CLI_EFAIL;
				break;
			}
			size_t ncap = cap ? cap * 2 : 65536 * 2;
			char *n = realloc(data, ncap);
			if (n == NULL) {
				cli_error("out of memory reading %s", path);
				rv = CLI_EFAIL;
				break;
			}
			data = n;
			cap = ncap;
		}
		ssize_t r = read(fd, data + len, cap - len - 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_error("cannot read %s: %s", path, strerror(errno));
			rv = CLI_EFAIL;
			break;
		}
		if (r == 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	if (rv != CLI_OK) {
		free(data);
		return rv;
	}
	data[len] = '\0';
	*datap = data;
	*lenp = len;
	return CLI_OK;
}

/* A --param value: JSON if it parses (wsk does the same), else a string. */
static json_t *param_value(const char *v)
{
	json_t *j = json_loads(v, JSON_DECODE_ANY, NULL);
	return j != NULL ? j : json_string(v);
}

/* Sets obj[k] = the value of v; errors name the flag. */
int cli_set_kv(json_t *obj, const char *flag, const char *k, const char *v)
{
	json_t *val = param_value(v);
	if (val == NULL) {
		cli_error("the value of --%s %s is not valid UTF-8", flag, k);
		return CLI_EFAIL;
	}
	if (json_object_set_new(obj, k, val) != 0) {
		cli_error("the name of --%s '%s' is not valid UTF-8", flag, k);
		return CLI_EFAIL;
	}
	return CLI_OK;
}

/* Merges the JSON object in file path into obj. */
int cli_merge_param_file(json_t *obj, const char *path)
{
	char *data = NULL;
	size_t len = 0;
	int rv = read_file(path, &data, &len);
	if (rv != CLI_OK)
		return rv;
	json_error_t jerr;
	json_t *j = json_loadb(data, len, 0, &jerr);
	free(data);
	if (j == NULL) {
		cli_error("%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return CLI_EFAIL;
	}
	if (!json_is_object(j)) {
		json_decref(j);
		cli_error("%s: parameters must be a JSON object", path);
		return CLI_EFAIL;
	}
	rv = json_object_update(obj, j) == 0 ? CLI_OK : CLI_EFAIL;
	json_decref(j);
	if (rv != CLI_OK)
		cli_error("out of memory");
	return rv;
}

/* {"k": v, ...} -> [{"key": "k", "value": v}, ...], in insertion order. */
json_t *cli_kv_array(json_t *obj)
{
	json_t *arr = json_array();
	const char *k;
	json_t *v;
	if (arr == NULL)
		return NULL;
	json_object_foreach(obj, k, v)
	{
		if (json_array_append_new(arr, json_pack("{s:s, s:O}", "key", k, "value", v)) !=
		    0) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* "/ns/name" for messages. */
static char *display_name(const char *ns, const char *name)
{
	char *s = NULL;
	if (name[0] == '/')
		s = strdup(name);
	else if (asprintf(&s, "/%s/%s", ns, name) < 0)
		s = NULL;
	if (s == NULL)
		cli_error("out of memory");
	return s;
}

/* Both flag sets below read --param / --param-file into params as they come, so
 * later flags win, as they do in wsk. */
static const cli_opt put_opts[] = {
    {"kind", 0, 1, O_KIND},         {"main", 0, 1, O_MAIN},
    {"param", 'p', 2, O_PARAM},     {"param-file", 'P', 1, O_PARAM_FILE},
    {"timeout", 't', 1, O_TIMEOUT}, {"memory", 'm', 1, O_MEMORY},
    {"web", 0, 1, O_WEB},           {"annotation", 'a', 2, O_ANNOT},
    {"sequence", 0, 1, O_SEQUENCE}, {NULL, 0, 0, 0},
};

typedef struct put_req {
	const char *name;
	const char *file;
	const char *kind;
	const char *main;
	const char *sequence; /* "a,b,c" */
	json_t *params;
	json_t *annots;
	bool have_params;
	long long timeout; /* 0 = not given */
	long long memory;
} put_req;

static const char *kind_from_ext(const char *file)
{
	const char *base = strrchr(file, '/');
	const char *dot = strrchr(base != NULL ? base + 1 : file, '.');
	if (dot == NULL)
		return NULL;
	if (strcmp(dot, ".py") == 0)
		return "python:3";
	if (strcmp(dot, ".js") == 0)
		return "nodejs:20";
	return NULL;
}

static bool is_zip(const char *file)
{
	size_t n = strlen(file);
	return n >= 4 && strcmp(file + n - 4, ".zip") == 0;
}

/* Builds the "exec" member from the file. */
static int build_exec(const cli *c, const put_req *p, json_t **execp)
{
	const char *kind = p->kind != NULL ? p->kind : kind_from_ext(p->file);
	bool zip = is_zip(p->file);
	if (kind == NULL || (zip && p->kind == NULL))
		return cli_usage_error(c,
		                       "cannot tell the kind of %s; give --kind (python:3, "
		                       "nodejs:20, native, ...)",
		                       p->file);

	char *data = NULL;
	size_t len = 0;
	int rv = read_file(p->file, &data, &len);
	if (rv != CLI_OK)
		return rv;
	/* Code travels as a JSON string when it is text; archives, executables and
	 * anything that is not UTF-8 go base64-encoded with binary = true. */
	json_t *code = NULL;
	bool binary = zip || memchr(data, '\0', len) != NULL;
	if (!binary && (code = json_stringn(data, len)) == NULL)
		binary = true;
	if (binary) {
		char *b64 = gust_b64_encode(data, len);
		code = json_string(b64);
		free(b64);
	}
	free(data);
	json_t *exec = json_pack("{s:s, s:o, s:b}", "kind", kind, "code", code, "binary", binary);
	if (exec != NULL && p->main != NULL &&
	    json_object_set_new(exec, "main", json_string(p->main)) != 0) {
		json_decref(exec);
		exec = NULL;
	}
	if (exec == NULL) {
		cli_error("cannot encode the action: --kind and --main must be valid UTF-8");
		return CLI_EFAIL;
	}
	*execp = exec;
	return CLI_OK;
}

static int build_put_body(const cli *c, const put_req *p, bool update, char **bodyp)
{
	json_t *body = json_object();
	json_t *exec = NULL;
	int rv = CLI_EFAIL;
	if (body == NULL)
		goto oom;
	if (p->sequence != NULL) {
		json_t *comps = json_array();
		const char *s = p->sequence;
		while (*s) {
			size_t n = strcspn(s, ",");
			if (n > 0)
				json_array_append_new(comps, json_stringn(s, n));
			s += n;
			if (*s == ',')
				s++;
		}
		if (json_object_set_new(
		        body, "exec",
		        json_pack("{s:s,s:o}", "kind", "sequence", "components", comps)) != 0)
			goto oom;
	} else if (p->file != NULL) {
		if ((rv = build_exec(c, p, &exec)) != CLI_OK)
			goto out;
		rv = CLI_EFAIL;
		if (json_object_set_new(body, "exec", exec) != 0)
			goto oom;
	}
	/* On update, leaving a member out keeps the stored one. */
	if (p->have_params || !update) {
		if (json_object_set_new(body, "parameters", cli_kv_array(p->params)) != 0)
			goto oom;
	}
	if (json_object_size(p->annots) > 0 &&
	    json_object_set_new(body, "annotations", cli_kv_array(p->annots)) != 0)
		goto oom;
	if (p->timeout > 0 || p->memory > 0) {
		json_t *lim = json_object();
		if (lim == NULL || json_object_set_new(body, "limits", lim) != 0)
			goto oom;
		if (p->timeout > 0 &&
		    json_object_set_new(lim, "timeout", json_integer(p->timeout)) != 0)
			goto oom;
		if (p->memory > 0 &&
		    json_object_set_new(lim, "memory", json_integer(p->memory)) != 0)
			goto oom;
	}
	if ((*bodyp = json_dumps(body, JSON_COMPACT)) == NULL)
		goto oom;
	rv = CLI_OK;
	goto out;
oom:
	cli_error("out of memory");
out:
	json_decref(body);
	return rv;
}

/* --web true|false|raw as wsk sets it: web-export, raw-http and final. */
static int set_web(const cli *c, json_t *annots, const char *v)
{
	bool web, raw = false;
	if (strcmp(v, "true") == 0 || strcmp(v, "yes") == 0)
		web = true;
	else if (strcmp(v, "false") == 0 || strcmp(v, "no") == 0)
		web = false;
	else if (strcmp(v, "raw") == 0)
		web = raw = true;
	else
		return cli_usage_error(c, "--web wants true, false or raw, not '%s'", v);
	if (json_object_set_new(annots, "web-export", json_boolean(web)) != 0 ||
	    json_object_set_new(annots, "raw-http", json_boolean(raw)) != 0 ||
	    (web && json_object_set_new(annots, "final", json_true()) != 0)) {
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	return CLI_OK;
}

static int action_put(cli *c, cli_args *a, bool update)
{
	put_req p = {0};
	const char *vals[2];
	int id, rv = CLI_OK, npos = 0;
	cleanup_free char *path = NULL;
	cleanup_free char *url = NULL;
	cleanup_free char *body = NULL;
	cli_resp r = {0};
	p.params = json_object();
	p.annots = json_object();
	if (p.params == NULL || p.annots == NULL) {
		cli_error("out of memory");
		rv = CLI_EFAIL;
		goto out;
	}
	while (rv == CLI_OK && (id = cli_next(c, a, put_opts, vals)) != CLI_ARGS_END) {
		switch (id) {
		case CLI_ARGS_ERROR:
			rv = CLI_EUSAGE;
			break;
		case CLI_ARGS_POS:
			if (npos == 0)
				p.name = vals[0];
			else if (npos == 1)
				p.file = vals[0];
			else
				rv = cli_usage_error(c, "unexpected argument '%s'", vals[0]);
			npos++;
			break;
		case O_KIND:
			p.kind = vals[0];
			break;
		case O_MAIN:
			p.main = vals[0];
			break;
		case O_PARAM:
			rv = cli_set_kv(p.params, "param", vals[0], vals[1]);
			p.have_params = true;
			break;
		case O_PARAM_FILE:
			rv = cli_merge_param_file(p.params, vals[0]);
			p.have_params = true;
			break;
		case O_ANNOT:
			rv = cli_set_kv(p.annots, "annotation", vals[0], vals[1]);
			break;
		case O_TIMEOUT:
			rv = cli_parse_int(c, "timeout", vals[0], 1, INT32_MAX, &p.timeout);
			break;
		case O_MEMORY:
			rv = cli_parse_int(c, "memory", vals[0], 1, INT32_MAX, &p.memory);
			break;
		case O_WEB:
			rv = set_web(c, p.annots, vals[0]);
			break;
		case O_SEQUENCE:
			p.sequence = vals[0];
			break;
		}
	}
	if (rv != CLI_OK)
		goto out;
	if (p.name == NULL || (!update && p.file == NULL && p.sequence == NULL)) {
		rv = cli_usage_error(c, "usage: gust action %s NAME %s [flags]",
		                     update ? "update" : "create", update ? "[FILE]" : "FILE");
		goto out;
	}
	if (p.file == NULL && (p.kind != NULL || p.main != NULL)) {
		rv = cli_usage_error(c, "--kind and --main need a FILE");
		goto out;
	}

	if ((rv = cli_entity_path(c, "actions", p.name, &path, NULL)) != CLI_OK ||
	    (rv = build_put_body(c, &p, update, &body)) != CLI_OK ||
	    (rv = cli_config_resolve(c, true)) != CLI_OK)
		goto out;
	if (asprintf(&url, "%s%s", path, update ? "?overwrite=true" : "") < 0) {
		url = NULL;
		cli_error("out of memory");
		rv = CLI_EFAIL;
		goto out;
	}
	if ((rv = cli_http(c, "PUT", url, body, strlen(body), &r)) != CLI_OK)
		goto out;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		printf("ok: %s action ", update ? "updated" : "created");
		cli_put_safe(stdout, p.name);
		putchar('\n');
	}
out:
	cli_resp_free(&r);
	json_decref(p.params);
	json_decref(p.annots);
	return rv;
}

/* The flags of get, list, delete and invoke. */
static const cli_opt get_opts[] = {{"code", 0, 0, O_CODE}, {NULL, 0, 0, 0}};
static const cli_opt list_opts[] = {
    {"limit", 'l', 1, O_LIMIT}, {"skip", 's', 1, O_SKIP}, {NULL, 0, 0, 0}};
static const cli_opt invoke_opts[] = {
    {"param", 'p', 2, O_PARAM},
    {"param-file", 'P', 1, O_PARAM_FILE},
    {"blocking", 'b', 0, O_BLOCKING},
    {"result", 'r', 0, O_RESULT},
    {NULL, 0, 0, 0},
};

/* Prints the code of an action answer: text as is, binary decoded (and only
 * into a file or a pipe, never onto a terminal). */
static int print_code(const cli *c, const char *name, json_t *j)
{
	json_t *exec = json_object_get(j, "exec");
	json_t *code = json_object_get(exec, "code");
	if (!json_is_string(code)) {
		cli_error("the answer for action %s carries no code", name);
		return CLI_EFAIL;
	}
	const char *s = json_string_value(code);
	size_t n = json_string_length(code);
	if (!json_is_true(json_object_get(exec, "binary"))) {
		fwrite(s, 1, n, stdout);
		if (n == 0 || s[n - 1] != '\n')
			putchar('\n');
		return CLI_OK;
	}
	if (isatty(STDOUT_FILENO)) {
		cli_error("the code of %s is binary; redirect it to a file", name);
		return CLI_EFAIL;
	}
	size_t len = 0;
	void *bytes = gust_b64_decode(s, n, &len);
	if (bytes == NULL) {
		cli_error("the code of %s is not valid base64", name);
		return CLI_EFAIL;
	}
	fwrite(bytes, 1, len, stdout);
	free(bytes);
	return CLI_OK;
}

static int action_get(cli *c, cli_args *a)
{
	const char *vals[2], *name = NULL;
	bool code = false;
	int id, rv;
	while ((id = cli_next(c, a, get_opts, vals)) != CLI_ARGS_END) {
		if (id == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		if (id == O_CODE)
			code = true;
		else if (name == NULL)
			name = vals[0];
		else
			return cli_usage_error(c, "unexpected argument '%s'", vals[0]);
	}
	if (name == NULL)
		return cli_usage_error(c, "usage: gust action get NAME [--code]");

	cleanup_free char *path = NULL;
	cleanup_free char *url = NULL;
	if ((rv = cli_entity_path(c, "actions", name, &path, NULL)) != CLI_OK ||
	    (rv = cli_config_resolve(c, true)) != CLI_OK)
		return rv;
	/* Without --code there is no point in fetching megabytes of it. */
	if (asprintf(&url, "%s%s", path, code ? "" : "?code=false") < 0) {
		url = NULL;
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	cli_resp r;
	if ((rv = cli_http(c, "GET", url, NULL, 0, &r)) != CLI_OK)
		return rv;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		json_t *j = cli_resp_json(&r);
		if (j == NULL) {
			rv = CLI_EFAIL;
		} else if (code) {
			rv = print_code(c, name, j);
		} else if (c->json) {
			cli_print_raw(stdout, &r);
		} else {
			printf("ok: got action ");
			cli_put_safe(stdout, name);
			putchar('\n');
			rv = cli_print_json(stdout, j);
		}
		json_decref(j);
	}
	cli_resp_free(&r);
	return rv;
}

/* The kind of a listed action: exec.kind, else the "exec" annotation that
 * OpenWhisk puts on list entries. */
static const char *listed_kind(json_t *e)
{
	json_t *k = json_object_get(json_object_get(e, "exec"), "kind");
	if (json_is_string(k))
		return json_string_value(k);
	size_t i;
	json_t *an;
	json_array_foreach(json_object_get(e, "annotations"), i, an)
	{
		k = json_object_get(an, "key");
		if (json_is_string(k) && strcmp(json_string_value(k), "exec") == 0 &&
		    json_is_string(json_object_get(an, "value")))
			return json_string_value(json_object_get(an, "value"));
	}
	return NULL;
}

static int print_action_table(json_t *list)
{
	static const char *const hdr[] = {"NAME", "VERSION", "KIND"};
	cli_table *t = cli_table_new(3, hdr);
	if (t == NULL)
		return CLI_EFAIL;
	size_t i;
	json_t *e;
	int rv = CLI_OK;
	json_array_foreach(list, i, e)
	{
		const char *ns = json_string_value(json_object_get(e, "namespace"));
		const char *nm = json_string_value(json_object_get(e, "name"));
		if (nm == NULL)
			continue; /* not an action: nothing sensible to show */
		char *full = NULL;
		if (ns != NULL && asprintf(&full, "/%s/%s", ns, nm) < 0)
			full = NULL;
		if (ns != NULL && full == NULL) {
			cli_error("out of memory");
			rv = CLI_EFAIL;
			break;
		}
		const char *row[] = {full != NULL ? full : nm,
		                     json_string_value(json_object_get(e, "version")),
		                     listed_kind(e)};
		rv = cli_table_add(t, row);
		free(full);
		if (rv != CLI_OK)
			break;
	}
	if (rv == CLI_OK)
		cli_table_print(stdout, t);
	cli_table_free(t);
	return rv;
}

static int action_list(cli *c, cli_args *a)
{
	const char *vals[2];
	long long limit = -1, skip = -1;
	int id, rv;
	while ((id = cli_next(c, a, list_opts, vals)) != CLI_ARGS_END) {
		if (id == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		if (id == O_LIMIT)
			rv = cli_parse_int(c, "limit", vals[0], 0, 200, &limit);
		else if (id == O_SKIP)
			rv = cli_parse_int(c, "skip", vals[0], 0, INT32_MAX, &skip);
		else
			rv = cli_usage_error(c, "action list takes no argument '%s'", vals[0]);
		if (rv != CLI_OK)
			return rv;
	}
	if ((rv = cli_config_resolve(c, true)) != CLI_OK)
		return rv;
	char url[128];
	int n = snprintf(url, sizeof(url), "/api/v1/namespaces/_/actions");
	if (limit >= 0)
		n += snprintf(url + n, sizeof(url) - (size_t)n, "?limit=%lld", limit);
	if (skip >= 0)
		snprintf(url + n, sizeof(url) - (size_t)n, "%cskip=%lld", limit >= 0 ? '&' : '?',
		         skip);

	cli_resp r;
	if ((rv = cli_http(c, "GET", url, NULL, 0, &r)) != CLI_OK)
		return rv;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		json_t *j = cli_resp_json(&r);
		if (j == NULL) {
			rv = CLI_EFAIL;
		} else if (!json_is_array(j)) {
			cli_error("the server's answer is not a list (HTTP %ld)", r.status);
			rv = CLI_EFAIL;
		} else if (c->json) {
			cli_print_raw(stdout, &r);
		} else {
			rv = print_action_table(j);
		}
		json_decref(j);
	}
	cli_resp_free(&r);
	return rv;
}

static int action_delete(cli *c, cli_args *a)
{
	const char *vals[2], *name = NULL;
	int id, rv;
	while ((id = cli_next(c, a, NULL, vals)) != CLI_ARGS_END) {
		if (id == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		if (name != NULL)
			return cli_usage_error(c, "unexpected argument '%s'", vals[0]);
		name = vals[0];
	}
	if (name == NULL)
		return cli_usage_error(c, "usage: gust action delete NAME");
	cleanup_free char *path = NULL;
	if ((rv = cli_entity_path(c, "actions", name, &path, NULL)) != CLI_OK ||
	    (rv = cli_config_resolve(c, true)) != CLI_OK)
		return rv;
	cli_resp r;
	if ((rv = cli_http(c, "DELETE", path, NULL, 0, &r)) != CLI_OK)
		return rv;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		printf("ok: deleted action ");
		cli_put_safe(stdout, name);
		putchar('\n');
	}
	cli_resp_free(&r);
	return rv;
}

/* What a successful invoke prints. 202 means "accepted, not finished": the
 * answer of a non-blocking invoke, or of a blocking one that outlived the wait. */
static int invoke_done(const cli *c, const char *who, bool blocking, bool result, const cli_resp *r)
{
	if (result && r->status == 200) {
		json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
		int rv = CLI_OK;
		if (j != NULL)
			rv = cli_print_json(stdout, j);
		else
			cli_print_raw(stdout, r); /* not ours to judge; show it as it came */
		json_decref(j);
		return rv;
	}
	json_t *j = cli_resp_json(r);
	if (j == NULL)
		return CLI_EFAIL;
	const char *aid = json_string_value(json_object_get(j, "activationId"));
	int rv = CLI_OK;
	if (aid == NULL) {
		cli_error("the answer names no activationId (HTTP %ld)", r->status);
		rv = CLI_EFAIL;
	} else if (r->status == 202 && result) {
		/* stdout is for the result alone: a script must not parse this. */
		cli_error("no result yet: activation %s of %s outlived the blocking wait; get it "
		          "later with 'gust activation result %s'",
		          aid, who, aid);
		rv = CLI_EFAIL;
	} else if (r->status == 202 && blocking) {
		printf("ok: invoked ");
		cli_put_safe(stdout, who);
		printf(", but the request has not finished yet, with id ");
		cli_put_safe(stdout, aid);
		putchar('\n');
	} else {
		printf("ok: invoked ");
		cli_put_safe(stdout, who);
		printf(" with id ");
		cli_put_safe(stdout, aid);
		putchar('\n');
		if (blocking)
			rv = cli_print_json(stdout, j);
	}
	json_decref(j);
	return rv;
}

static int action_invoke(cli *c, cli_args *a)
{
	const char *vals[2], *name = NULL;
	bool blocking = false, result = false;
	int id, rv = CLI_OK;
	cleanup_free char *body = NULL;
	cleanup_free char *path = NULL;
	cleanup_free char *url = NULL;
	cleanup_free char *ns = NULL;
	cleanup_free char *who = NULL;
	cli_resp r = {0};
	json_t *params = json_object();
	if (params == NULL) {
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	while (rv == CLI_OK && (id = cli_next(c, a, invoke_opts, vals)) != CLI_ARGS_END) {
		switch (id) {
		case CLI_ARGS_ERROR:
			rv = CLI_EUSAGE;
			break;
		case CLI_ARGS_POS:
			if (name != NULL)
				rv = cli_usage_error(c, "unexpected argument '%s'", vals[0]);
			name = vals[0];
			break;
		case O_PARAM:
			rv = cli_set_kv(params, "param", vals[0], vals[1]);
			break;
		case O_PARAM_FILE:
			rv = cli_merge_param_file(params, vals[0]);
			break;
		case O_BLOCKING:
			blocking = true;
			break;
		case O_RESULT:
			result = blocking = true; /* a result needs the wait */
			break;
		}
	}
	if (rv == CLI_OK && name == NULL)
		rv =
		    cli_usage_error(c, "usage: gust action invoke NAME [--param K V]... [-b] [-r]");
	if (rv != CLI_OK)
		goto out;
	if ((rv = cli_entity_path(c, "actions", name, &path, &ns)) != CLI_OK ||
	    (rv = cli_config_resolve(c, true)) != CLI_OK)
		goto out;
	rv = CLI_EFAIL;
	if ((body = json_dumps(params, JSON_COMPACT)) == NULL ||
	    asprintf(&url, "%s%s", path,
	             result     ? "?blocking=true&result=true"
	             : blocking ? "?blocking=true"
	                        : "") < 0) {
		url = NULL;
		cli_error("out of memory");
		goto out;
	}
	if ((who = display_name(ns, name)) == NULL)
		goto out;
	if ((rv = cli_http(c, "POST", url, body, strlen(body), &r)) != CLI_OK)
		goto out;
	if (r.status >= 200 && r.status < 300) {
		rv = invoke_done(c, who, blocking, result, &r);
		goto out;
	}
	/* A blocking invoke of an action that failed answers with its activation
	 * record (502, OpenWhisk-style) rather than an {"error"} body: show it. */
	json_t *j = json_loadb(r.body, r.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	const char *aid = json_string_value(json_object_get(j, "activationId"));
	if (blocking && !result && aid != NULL && json_object_get(j, "error") == NULL) {
		cli_print_json(stdout, j);
		cli_error("the activation %s of %s failed (HTTP %ld)", aid, who, r.status);
		rv = CLI_EFAIL;
	} else {
		rv = cli_http_check(c, &r);
	}
	json_decref(j);
out:
	cli_resp_free(&r);
	json_decref(params);
	return rv;
}

int cli_cmd_action(cli *c, cli_args *a)
{
	const char *vals[2];
	int id = cli_next(c, a, NULL, vals);
	if (id == CLI_ARGS_ERROR)
		return CLI_EUSAGE;
	if (id == CLI_ARGS_END)
		return cli_usage_error(c, "action needs a command");
	const char *verb = vals[0];
	if (strcmp(verb, "create") == 0)
		return action_put(c, a, false);
	if (strcmp(verb, "update") == 0)
		return action_put(c, a, true);
	if (strcmp(verb, "get") == 0)
		return action_get(c, a);
	if (strcmp(verb, "list") == 0)
		return action_list(c, a);
	if (strcmp(verb, "delete") == 0)
		return action_delete(c, a);
	if (strcmp(verb, "invoke") == 0)
		return action_invoke(c, a);
	return cli_usage_error(c, "unknown action command '%s'", verb);
}
