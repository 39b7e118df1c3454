/*
 * entity.c - `gust package|trigger|rule|namespace ...`: the collections other
 * than actions, against /api/v1/namespaces/<ns>/{packages,triggers,rules}.
 * One parser serves them all: NAME and up to two more positionals, --param,
 * --param-file, --annotation, --shared; each topic's verb table says what a
 * command sends.
 */
#include <string.h>

#include "cli.h"
#include "gust/util.h"

enum { E_PARAM = 1, E_PARAM_FILE, E_ANNOT, E_SHARED, E_LIMIT, E_SKIP, E_COUNT, E_FEED };

static const cli_opt ent_opts[] = {
    {"param", 'p', 2, E_PARAM},
    {"param-file", 'P', 1, E_PARAM_FILE},
    {"annotation", 'a', 2, E_ANNOT},
    {"shared", 0, 1, E_SHARED},
    {"limit", 'l', 1, E_LIMIT},
    {"skip", 's', 1, E_SKIP},
    {"count", 0, 0, E_COUNT},
    {"feed", 0, 1, E_FEED},
    {NULL, 0, 0, 0},
};

typedef struct ent_args {
	const char *pos[3];
	int npos;
	json_t *params;
	json_t *annots;
	bool have_params;
	int shared; /* -1 not given */
	long long limit, skip;
	bool count;
	const char *feed; /* triggers: --feed KIND */
} ent_args;

static int ent_parse(cli *c, cli_args *a, ent_args *e)
{
	const char *vals[2];
	int id, rv = CLI_OK;
	e->shared = -1;
	e->limit = e->skip = -1;
	while (rv == CLI_OK && (id = cli_next(c, a, ent_opts, vals)) != CLI_ARGS_END) {
		switch (id) {
		case CLI_ARGS_ERROR:
			return CLI_EUSAGE;
		case CLI_ARGS_POS:
			if (e->npos == 3)
				return cli_usage_error(c, "unexpected argument '%s'", vals[0]);
			e->pos[e->npos++] = vals[0];
			break;
		case E_PARAM:
			rv = cli_set_kv(e->params, "param", vals[0], vals[1]);
			e->have_params = true;
			break;
		case E_PARAM_FILE:
			rv = cli_merge_param_file(e->params, vals[0]);
			e->have_params = true;
			break;
		case E_ANNOT:
			rv = cli_set_kv(e->annots, "annotation", vals[0], vals[1]);
			break;
		case E_SHARED:
			if (strcmp(vals[0], "yes") == 0 || strcmp(vals[0], "true") == 0)
				e->shared = 1;
			else if (strcmp(vals[0], "no") == 0 || strcmp(vals[0], "false") == 0)
				e->shared = 0;
			else
				rv = cli_usage_error(c, "--shared wants yes or no, not '%s'",
				                     vals[0]);
			break;
		case E_LIMIT:
			rv = cli_parse_int(c, "limit", vals[0], 0, 200, &e->limit);
			break;
		case E_SKIP:
			rv = cli_parse_int(c, "skip", vals[0], 0, 1000000000, &e->skip);
			break;
		case E_COUNT:
			e->count = true;
			break;
		case E_FEED:
			e->feed = vals[0];
			break;
		}
	}
	return rv;
}

/* Sends one request and prints the outcome: "ok: <what>" or the JSON. */
static int ent_request(cli *c, const char *method, const char *url, json_t *body,
                       const char *ok_verb, const char *kind, const char *name, bool show)
{
	cleanup_free char *doc = body ? json_dumps(body, JSON_COMPACT) : NULL;
	cli_resp r;
	int rv = cli_config_resolve(c, true);
	if (rv != CLI_OK)
		return rv;
	if ((rv = cli_http(c, method, url, doc, doc ? strlen(doc) : 0, &r)) != CLI_OK)
		return rv;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		if (c->json && r.len) {
			cli_print_raw(stdout, &r);
		} else {
			printf("ok: %s %s ", ok_verb, kind);
			cli_put_safe(stdout, name);
			if (r.status == 202 || r.status == 200) {
				json_t *j = json_loadb(r.body, r.len, 0, NULL);
				const char *aid =
				    json_string_value(json_object_get(j, "activationId"));
				if (aid) {
					printf(" with id ");
					cli_put_safe(stdout, aid);
				}
				putchar('\n');
				if (show && j)
					rv = cli_print_json(stdout, j);
				json_decref(j);
			} else {
				putchar('\n');
			}
		}
	}
	cli_resp_free(&r);
	return rv;
}

static int ent_list(cli *c, const char *coll, const ent_args *e)
{
	char url[256];
	int n = snprintf(url, sizeof(url), "/api/v1/namespaces/_/%s?", coll);
	if (e->limit >= 0)
		n += snprintf(url + n, sizeof(url) - (size_t)n, "limit=%lld&", e->limit);
	if (e->skip >= 0)
		n += snprintf(url + n, sizeof(url) - (size_t)n, "skip=%lld&", e->skip);
	if (e->count)
		snprintf(url + n, sizeof(url) - (size_t)n, "count=true");
	int rv = cli_config_resolve(c, true);
	cli_resp r;
	if (rv != CLI_OK || (rv = cli_http(c, "GET", url, NULL, 0, &r)) != CLI_OK)
		return rv;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		json_t *j = cli_resp_json(&r);
		if (j == NULL) {
			rv = CLI_EFAIL;
		} else if (c->json || !json_is_array(j)) {
			cli_print_raw(stdout, &r);
		} else {
			static const char *const hdr[] = {"NAME", "VERSION", "DETAIL"};
			cli_table *t = cli_table_new(3, hdr);
			size_t i;
			json_t *x;
			json_array_foreach(j, i, x)
			{
				char *full = NULL;
				if (asprintf(
				        &full, "/%s/%s",
				        json_string_value(json_object_get(x, "namespace")) ?: "_",
				        json_string_value(json_object_get(x, "name")) ?: "?") < 0)
					full = NULL;
				const char *detail =
				    json_string_value(json_object_get(x, "status"));
				if (detail == NULL)
					detail = json_is_true(json_object_get(x, "publish"))
					             ? "shared"
					             : "private";
				const char *row[] = {
				    full, json_string_value(json_object_get(x, "version")), detail};
				if (t)
					cli_table_add(t, row);
				free(full);
			}
			if (t)
				cli_table_print(stdout, t);
			cli_table_free(t);
		}
		json_decref(j);
	}
	cli_resp_free(&r);
	return rv;
}

/* The body of a create/update from parameters, annotations and --shared. */
static json_t *ent_body(const ent_args *e, bool update)
{
	json_t *b = json_object();
	if (e->have_params || !update)
		json_object_set_new(b, "parameters", cli_kv_array(e->params));
	if (json_object_size(e->annots) > 0)
		json_object_set_new(b, "annotations", cli_kv_array(e->annots));
	if (e->shared >= 0)
		json_object_set_new(b, "publish", json_boolean(e->shared));
	return b;
}

static int ent_run(cli *c, cli_args *a, const char *topic, const char *coll)
{
	const char *vals[2];
	int id = cli_next(c, a, NULL, vals);
	if (id == CLI_ARGS_ERROR)
		return CLI_EUSAGE;
	if (id == CLI_ARGS_END)
		return cli_usage_error(c, "%s needs a command", topic);
	const char *verb = vals[0];
	ent_args e = {0};
	e.params = json_object();
	e.annots = json_object();
	int rv = ent_parse(c, a, &e);
	cleanup_free char *path = NULL;
	cleanup_free char *url = NULL;
	json_t *body = NULL;
	if (rv != CLI_OK)
		goto out;
	if (strcmp(verb, "list") == 0) {
		rv = ent_list(c, coll, &e);
		goto out;
	}
	int need = strcmp(verb, "bind") == 0                                       ? 2
	           : (strcmp(topic, "rule") == 0 && (strcmp(verb, "create") == 0)) ? 3
	                                                                           : 1;
	if (e.npos < need) {
		rv = cli_usage_error(c, "usage: gust %s %s NAME%s", topic, verb,
		                     need == 3   ? " TRIGGER ACTION"
		                     : need == 2 ? " NAME"
		                                 : "");
		goto out;
	}
	const char *name = strcmp(verb, "bind") == 0 ? e.pos[1] : e.pos[0];
	if ((rv = cli_entity_path(c, coll, name, &path, NULL)) != CLI_OK)
		goto out;
	rv = CLI_EUSAGE;
	if (e.feed && (strcmp(topic, "trigger") != 0 ||
	               (strcmp(verb, "create") != 0 && strcmp(verb, "update") != 0))) {
		rv = cli_usage_error(c, "--feed goes with trigger create or update");
		goto out;
	}
	if (strcmp(verb, "create") == 0 || strcmp(verb, "update") == 0) {
		bool upd = verb[0] == 'u';
		if (e.feed) {
			static const char *const kinds[] = {"kafka", "redis-stream", "redis-pubsub",
			                                    "schedule"};
			bool known = false;
			for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++)
				known = known || strcmp(e.feed, kinds[k]) == 0;
			if (!known) {
				rv = cli_usage_error(
				    c,
				    "--feed wants kafka, redis-stream, redis-pubsub "
				    "or schedule, not '%s'",
				    e.feed);
				goto out;
			}
			/* the gateway checks the parameters against the feed */
			json_object_set_new(e.annots, "feed", json_string(e.feed));
		}
		body = ent_body(&e, upd);
		if (strcmp(topic, "rule") == 0 && e.npos >= 3) {
			json_object_set_new(body, "trigger", json_string(e.pos[1]));
			json_object_set_new(body, "action", json_string(e.pos[2]));
		}
		if (strcmp(topic, "rule") == 0)
			json_object_del(body, "parameters");
		if (asprintf(&url, "%s%s", path, upd ? "?overwrite=true" : "") < 0)
			url = NULL;
		rv = ent_request(c, "PUT", url, body, upd ? "updated" : "created", topic, name,
		                 false);
	} else if (strcmp(verb, "bind") == 0 && strcmp(topic, "package") == 0) {
		/* bind /ns/pkg NAME: a binding of the (shared) package pkg */
		const char *src = e.pos[0];
		const char *bns = "_", *bname = src;
		char nsbuf[260];
		if (src[0] == '/') {
			const char *slash = strchr(src + 1, '/');
			if (slash == NULL || (size_t)(slash - src - 1) >= sizeof(nsbuf)) {
				rv = cli_usage_error(c, "'%s' is not a package name", src);
				goto out;
			}
			memcpy(nsbuf, src + 1, (size_t)(slash - src - 1));
			nsbuf[slash - src - 1] = '\0';
			bns = nsbuf;
			bname = slash + 1;
		}
		body = ent_body(&e, false);
		json_object_set_new(body, "binding",
		                    json_pack("{s:s,s:s}", "namespace", bns, "name", bname));
		rv = ent_request(c, "PUT", path, body, "created binding", "package", name, false);
	} else if (strcmp(verb, "get") == 0) {
		rv = cli_config_resolve(c, true);
		cli_resp r;
		if (rv == CLI_OK && (rv = cli_http(c, "GET", path, NULL, 0, &r)) == CLI_OK) {
			if ((rv = cli_http_check(c, &r)) == CLI_OK) {
				json_t *j = cli_resp_json(&r);
				if (j == NULL)
					rv = CLI_EFAIL;
				else if (c->json)
					cli_print_raw(stdout, &r);
				else {
					printf("ok: got %s ", topic);
					cli_put_safe(stdout, name);
					putchar('\n');
					size_t k;
					json_t *an;
					json_array_foreach(json_object_get(j, "annotations"), k, an)
					{
						const char *v =
						    json_string_value(json_object_get(an, "value"));
						if (v && strcmp(json_string_value(
						                    json_object_get(an, "key"))
						                    ?: "",
						                "feed") == 0) {
							printf("feed: ");
							cli_put_safe(stdout, v);
							putchar('\n');
						}
					}
					rv = cli_print_json(stdout, j);
				}
				json_decref(j);
			}
			cli_resp_free(&r);
		}
	} else if (strcmp(verb, "delete") == 0) {
		rv = ent_request(c, "DELETE", path, NULL, "deleted", topic, name, false);
	} else if (strcmp(verb, "fire") == 0 && strcmp(topic, "trigger") == 0) {
		body = json_incref(e.params);
		rv = ent_request(c, "POST", path, body, "triggered", "trigger", name, false);
	} else if ((strcmp(verb, "enable") == 0 || strcmp(verb, "disable") == 0) &&
	           strcmp(topic, "rule") == 0) {
		body = json_pack("{s:s}", "status", verb[0] == 'e' ? "active" : "inactive");
		rv = ent_request(c, "POST", path, body, verb[0] == 'e' ? "enabled" : "disabled",
		                 "rule", name, false);
	} else {
		rv = cli_usage_error(c, "unknown %s command '%s'", topic, verb);
	}
out:
	json_decref(body);
	json_decref(e.params);
	json_decref(e.annots);
	return rv;
}

void cli_help_package(FILE *out)
{
	fputs("usage: gust package <command> [args] [flags]\n"
	      "\n"
	      "  create NAME [-p K V]... [-a K V]... [--shared yes|no]\n"
	      "  update NAME [same flags]      change the given members only\n"
	      "  bind /NS/PACKAGE NAME [-p K V]...   a binding of a (shared) package\n"
	      "  get NAME | list [--limit N] [--skip N] [--count] | delete NAME\n",
	      out);
}

void cli_help_trigger(FILE *out)
{
	fputs("usage: gust trigger <command> [args] [flags]\n"
	      "\n"
	      "  create NAME [--feed KIND] [-p K V]... [-P FILE] [-a K V]...\n"
	      "      KIND: kafka, redis-stream, redis-pubsub or schedule; the -p parameters\n"
	      "      configure it (docs/triggers.md), e.g. --feed kafka -p brokers H:P -p topic T\n"
	      "  update NAME [same flags]\n"
	      "  fire NAME [-p K V]... [-P FILE]   fire it: every active rule invokes its action\n"
	      "  get NAME | list [--limit N] [--skip N] [--count] | delete NAME\n",
	      out);
}

void cli_help_rule(FILE *out)
{
	fputs("usage: gust rule <command> [args] [flags]\n"
	      "\n"
	      "  create NAME TRIGGER ACTION   a rule (active at once)\n"
	      "  update NAME [TRIGGER ACTION]\n"
	      "  enable NAME | disable NAME\n"
	      "  get NAME | list [--limit N] [--skip N] [--count] | delete NAME\n",
	      out);
}

void cli_help_namespace(FILE *out)
{
	fputs("usage: gust namespace list    the namespaces of your key\n", out);
}

int cli_cmd_package(cli *c, cli_args *a)
{
	return ent_run(c, a, "package", "packages");
}

int cli_cmd_trigger(cli *c, cli_args *a)
{
	return ent_run(c, a, "trigger", "triggers");
}

int cli_cmd_rule(cli *c, cli_args *a)
{
	return ent_run(c, a, "rule", "rules");
}

int cli_cmd_namespace(cli *c, cli_args *a)
{
	const char *vals[2];
	int id = cli_next(c, a, NULL, vals);
	if (id == CLI_ARGS_ERROR)
		return CLI_EUSAGE;
	if (id != CLI_ARGS_POS || (strcmp(vals[0], "list") != 0 && strcmp(vals[0], "get") != 0))
		return cli_usage_error(c, "usage: gust namespace list");
	if ((id = cli_next(c, a, NULL, vals)) != CLI_ARGS_END)
		return id == CLI_ARGS_ERROR
		           ? CLI_EUSAGE
		           : cli_usage_error(c, "unexpected argument '%s'", vals[0]);
	int rv = cli_config_resolve(c, true);
	cli_resp r;
	if (rv != CLI_OK || (rv = cli_http(c, "GET", "/api/v1/namespaces", NULL, 0, &r)) != CLI_OK)
		return rv;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		json_t *j = cli_resp_json(&r);
		if (j == NULL) {
			rv = CLI_EFAIL;
		} else if (c->json) {
			cli_print_raw(stdout, &r);
		} else {
			printf("namespaces\n");
			size_t i;
			json_t *x;
			json_array_foreach(j, i, x)
			{
				if (json_is_string(x)) {
					cli_put_safe(stdout, json_string_value(x));
					putchar('\n');
				}
			}
		}
		json_decref(j);
	}
	cli_resp_free(&r);
	return rv;
}
