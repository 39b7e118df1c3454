/*
 * activation.c - `gust activation get|result|logs ID`, against the gateway's
 * /api/v1/namespaces/_/activations/<id>[/result|/logs].
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "gust/util.h"

void cli_help_activation(FILE *out)
{
	fputs("usage: gust activation <command> ID\n"
	      "\n"
	      "  list [NAME] [--limit N] [--skip N] [--since MS] [--upto MS]\n"
	      "              recent activations, newest first\n"
	      "  get ID      the activation record\n"
	      "  result ID   the result only\n"
	      "  logs ID     the log lines\n"
	      "  poll [NAME] [--exit SECONDS]   follow new activations and their logs live\n"
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

enum { A_LIMIT = 1, A_SKIP, A_SINCE, A_UPTO, A_EXIT };
static const cli_opt list_opts[] = {
    {"limit", 'l', 1, A_LIMIT}, {"skip", 's', 1, A_SKIP}, {"since", 0, 1, A_SINCE},
    {"upto", 0, 1, A_UPTO},     {"exit", 'e', 1, A_EXIT}, {NULL, 0, 0, 0},
};

/* GET the list; returns the JSON array or NULL (error printed). */
static json_t *fetch_list(cli *c, const char *name, long long limit, long long skip,
                          long long since, long long upto, bool docs)
{
	char url[512];
	int n =
	    snprintf(url, sizeof(url), "/api/v1/namespaces/_/activations?limit=%lld&skip=%lld%s",
	             limit, skip, docs ? "&docs=true" : "");
	if (since > 0)
		n += snprintf(url + n, sizeof(url) - (size_t)n, "&since=%lld", since);
	if (upto > 0)
		n += snprintf(url + n, sizeof(url) - (size_t)n, "&upto=%lld", upto);
	if (name != NULL) {
		cleanup_free char *p = NULL;
		/* reuse the path encoder for the name: it percent-encodes segments */
		if (cli_entity_path(c, "x", name, &p, NULL) != CLI_OK)
			return NULL;
		snprintf(url + n, sizeof(url) - (size_t)n, "&name=%s",
		         p + strlen("/api/v1/namespaces/_/x/"));
	}
	cli_resp r;
	if (cli_http(c, "GET", url, NULL, 0, &r) != CLI_OK)
		return NULL;
	json_t *j = NULL;
	if (cli_http_check(c, &r) == CLI_OK && (j = cli_resp_json(&r)) != NULL &&
	    !json_is_array(j)) {
		cli_error("the server's answer is not a list (HTTP %ld)", r.status);
		json_decref(j);
		j = NULL;
	}
	cli_resp_free(&r);
	return j;
}

static int activation_list(cli *c, cli_args *a, bool poll)
{
	const char *vals[2], *name = NULL;
	long long limit = 30, skip = 0, since = 0, upto = 0, exit_s = 0;
	int k, rv = CLI_OK;
	while (rv == CLI_OK && (k = cli_next(c, a, list_opts, vals)) != CLI_ARGS_END) {
		if (k == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		if (k == CLI_ARGS_POS && name == NULL)
			name = vals[0];
		else if (k == CLI_ARGS_POS)
			rv = cli_usage_error(c, "unexpected argument '%s'", vals[0]);
		else if (k == A_LIMIT)
			rv = cli_parse_int(c, "limit", vals[0], 1, 200, &limit);
		else if (k == A_SKIP)
			rv = cli_parse_int(c, "skip", vals[0], 0, 1000000000, &skip);
		else if (k == A_SINCE)
			rv = cli_parse_int(c, "since", vals[0], 0, INT64_MAX / 2, &since);
		else if (k == A_UPTO)
			rv = cli_parse_int(c, "upto", vals[0], 0, INT64_MAX / 2, &upto);
		else if (k == A_EXIT)
			rv = cli_parse_int(c, "exit", vals[0], 1, 86400, &exit_s);
	}
	if (rv != CLI_OK || (rv = cli_config_resolve(c, true)) != CLI_OK)
		return rv;
	if (!poll) {
		json_t *j = fetch_list(c, name, limit, skip, since, upto, false);
		if (j == NULL)
			return CLI_EFAIL;
		if (c->json) {
			rv = cli_print_json(stdout, j);
		} else {
			static const char *const hdr[] = {"ACTIVATION ID", "NAME", "STATUS",
			                                  "DURATION"};
			cli_table *t = cli_table_new(4, hdr);
			size_t i;
			json_t *x;
			static const char *const st[] = {"success", "application error",
			                                 "developer error", "whisk error"};
			json_array_foreach(j, i, x)
			{
				char dur[32];
				snprintf(
				    dur, sizeof(dur), "%lldms",
				    (long long)json_integer_value(json_object_get(x, "duration")));
				long long sc = json_integer_value(json_object_get(x, "statusCode"));
				const char *row[] = {
				    json_string_value(json_object_get(x, "activationId")),
				    json_string_value(json_object_get(x, "name")),
				    sc >= 0 && sc <= 3 ? st[sc] : "-", dur};
				if (t)
					cli_table_add(t, row);
			}
			if (t)
				cli_table_print(stdout, t);
			cli_table_free(t);
		}
		json_decref(j);
		return rv;
	}
	/* poll: every second, the activations that started since the last look,
	 * oldest first, each with its logs. */
	printf("Enter Ctrl-c to exit.\n");
	fflush(stdout);
	long long from = since > 0 ? since : (long long)gust_wall_ms();
	json_t *seen = json_object();
	uint64_t until = exit_s ? gust_now_ms() + (uint64_t)exit_s * 1000 : 0;
	while (until == 0 || gust_now_ms() < until) {
		json_t *j = fetch_list(c, name, 200, 0, from > 5000 ? from - 5000 : 1, 0, true);
		if (j == NULL) {
			json_decref(seen);
			return CLI_EFAIL;
		}
		for (size_t i = json_array_size(j); i-- > 0;) {
			json_t *x = json_array_get(j, i);
			const char *id = json_string_value(json_object_get(x, "activationId"));
			if (id == NULL || json_object_get(seen, id))
				continue;
			json_object_set_new(seen, id, json_true());
			printf("\nActivation: '");
			cli_put_safe(stdout, json_string_value(json_object_get(x, "name")) ?: "?");
			printf("' (");
			cli_put_safe(stdout, id);
			printf(")\n");
			size_t li;
			json_t *line;
			json_array_foreach(json_object_get(x, "logs"), li, line)
			{
				if (json_is_string(line)) {
					cli_put_safe(stdout, json_string_value(line));
					putchar('\n');
				}
			}
			long long st = json_integer_value(json_object_get(x, "start"));
			if (st > from)
				from = st;
		}
		json_decref(j);
		fflush(stdout);
		sleep(1);
	}
	json_decref(seen);
	return CLI_OK;
}

int cli_cmd_activation(cli *c, cli_args *a)
{
	const char *vals[2], *id = NULL;
	int k = cli_next(c, a, NULL, vals), rv;
	if (k == CLI_ARGS_ERROR)
		return CLI_EUSAGE;
	if (k == CLI_ARGS_END)
		return cli_usage_error(c, "activation needs a command: list, get, result, logs or "
		                          "poll");
	if (strcmp(vals[0], "list") == 0)
		return activation_list(c, a, false);
	if (strcmp(vals[0], "poll") == 0)
		return activation_list(c, a, true);
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
