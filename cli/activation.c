/*
 * activation.c - `gust activation get|result|logs ID`, against the gateway's
 * /api/v1/namespaces/_/activations/<id>[/result|/logs].
 */
#include <string.h>

#include "cli.h"
#include "gust/util.h"

void cli_help_activation(FILE *out)
{
	fputs("usage: gust activation <command> ID\n"
	      "\n"
	      "  get ID      the activation record\n"
	      "  result ID   the result only\n"
	      "  logs ID     the log lines\n"
	      "\n"
	      "--json prints the gateway's answer as it came.\n",
	      out);
}

/* Prints the part of the answer each verb is about. */
static int print_get(const cli *c, const char *id, json_t *j)
{
	printf("ok: got activation ");
	cli_put_safe(stdout, id);
	putchar('\n');
	return cli_print_json(stdout, j);
}

static int print_result(const cli *c, const char *id, json_t *j)
{
	/* OpenWhisk answers {"result": ..., "status": ..., "success": ...}. */
	json_t *res = json_is_object(j) ? json_object_get(j, "result") : NULL;
	return cli_print_json(stdout, res != NULL ? res : j);
}

static int print_logs(const cli *c, const char *id, json_t *j)
{
	json_t *logs = json_is_object(j) ? json_object_get(j, "logs") : NULL;
	if (!json_is_array(logs)) {
		cli_error("the answer for activation %s carries no logs list", id);
		return CLI_EFAIL;
	}
	size_t i;
	json_t *line;
	json_array_foreach(logs, i, line)
	{
		/* Log lines are what a function printed: never let them drive the
		 * terminal. */
		if (json_is_string(line))
			cli_put_safe(stdout, json_string_value(line));
		putchar('\n');
	}
	return CLI_OK;
}

static const struct {
	const char *verb;
	const char *suffix;
	int (*print)(const cli *c, const char *id, json_t *j);
} verbs[] = {
    {"get", "", print_get},
    {"result", "/result", print_result},
    {"logs", "/logs", print_logs},
};

int cli_cmd_activation(cli *c, cli_args *a)
{
	const char *vals[2], *id = NULL;
	int k = cli_next(c, a, NULL, vals), rv;
	if (k == CLI_ARGS_ERROR)
		return CLI_EUSAGE;
	if (k == CLI_ARGS_END)
		return cli_usage_error(c, "activation needs a command: get, result or logs");
	size_t v;
	for (v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
		if (strcmp(vals[0], verbs[v].verb) == 0)
			break;
	if (v == sizeof(verbs) / sizeof(verbs[0]))
		return cli_usage_error(c, "unknown activation command '%s'", vals[0]);

	while ((k = cli_next(c, a, NULL, vals)) != CLI_ARGS_END) {
		if (k == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		if (id != NULL)
			return cli_usage_error(c, "unexpected argument '%s'", vals[0]);
		id = vals[0];
	}
	if (id == NULL)
		return cli_usage_error(c, "usage: gust activation %s ID", verbs[v].verb);
	if (strchr(id, '/') != NULL)
		return cli_usage_error(c, "'%s' is not an activation id", id);

	cleanup_free char *path = NULL;
	cleanup_free char *url = NULL;
	if ((rv = cli_entity_path(c, "activations", id, &path, NULL)) != CLI_OK ||
	    (rv = cli_config_resolve(c, true)) != CLI_OK)
		return rv;
	if (asprintf(&url, "%s%s", path, verbs[v].suffix) < 0) {
		url = NULL;
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	cli_resp r;
	if ((rv = cli_http(c, "GET", url, NULL, 0, &r)) != CLI_OK)
		return rv;
	if ((rv = cli_http_check(c, &r)) == CLI_OK) {
		json_t *j = cli_resp_json(&r);
		if (j == NULL)
			rv = CLI_EFAIL;
		else if (c->json)
			cli_print_raw(stdout, &r);
		else
			rv = verbs[v].print(c, id, j);
		json_decref(j);
	}
	cli_resp_free(&r);
	return rv;
}
