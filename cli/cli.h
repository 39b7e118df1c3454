/*
 * cli/cli.h - the face shared by the files of the `gust` command-line client.
 *
 * `gust` is shaped like OpenWhisk's `wsk`: `gust <topic> <verb> [args] [flags]`.
 * main.c owns the global flags and dispatch; http.c talks to the gateway;
 * config.c resolves the API host and credentials and holds `gust property`;
 * action.c and activation.c are the gateway topics; admin.c goes straight to
 * etcd, like wskadmin; output.c prints tables, JSON and errors.
 *
 * Every command returns an exit status: CLI_OK, CLI_EFAIL (the server or the
 * system said no: bad answer, unreachable, I/O), CLI_EUSAGE (the command line is
 * wrong). Every error is reported once, on stderr, as one line starting "error: ",
 * by the function that detects it; callers just pass the status up.
 */
#ifndef GUST_CLI_H
#define GUST_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include <jansson.h>

enum cli_status {
	CLI_OK = 0,
	CLI_EFAIL = 1,
	CLI_EUSAGE = 2,
};

/* The state of one run; passed to every command, never global. */
typedef struct cli {
	/* Global flags, as given (pointers into argv) or NULL. */
	const char *apihost_flag;
	const char *auth_flag;
	const char *etcd_flag;
	bool json;     /* --json: raw JSON for get/list */
	bool insecure; /* -i: skip TLS verification */
	bool verbose;  /* -v: show each request on stderr */

	/* Resolved by cli_config_resolve (heap strings owned here). */
	char *apihost; /* no trailing slash */
	char *auth;    /* uuid:key */

	const char *topic; /* "action", ... for usage hints; NULL at the top */
} cli;

/* --- argument parsing (main.c) --- */

/* One flag a command understands. Flags may appear anywhere among its args,
 * as "--name value", "--name=value" (nargs 1 only) or "-s value". */
typedef struct cli_opt {
	const char *name; /* long name without "--" */
	char short_name;  /* 0 if none */
	int nargs;        /* 0, 1 or 2 values follow */
	int id;           /* > 0, returned by cli_next */
} cli_opt;

typedef struct cli_args {
	int argc;
	char **argv;
	int i;
	bool dashdash; /* after "--" everything is positional */
} cli_args;

enum {
	CLI_ARGS_END = -1,
	CLI_ARGS_ERROR = -2, /* a usage error was printed */
	CLI_ARGS_POS = 0,    /* a positional: vals[0] */
};

/* Takes the next argument. Global flags (--apihost, --auth/-u, --etcd, --json,
 * -i, -v) are consumed into c on the way. Returns an option id (its
 * values in vals[0..nargs-1], pointers into argv), CLI_ARGS_POS, CLI_ARGS_END
 * or CLI_ARGS_ERROR. opts is terminated by an entry with name NULL; may be NULL. */
int cli_next(cli *c, cli_args *a, const cli_opt *opts, const char *vals[2]);

/* Prints "error: <msg> (try 'gust [topic] --help')" and returns CLI_EUSAGE. */
int cli_usage_error(const cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prints the help of c->topic (or the top-level help) on stdout; returns CLI_OK.
 * main.c calls it when -h/--help appears anywhere, before any command runs. */
int cli_help(const cli *c);

/* Parses a decimal integer in [min, max] from s. The flag name goes in the error. */
int cli_parse_int(const cli *c, const char *flag, const char *s, long long min, long long max,
                  long long *out);

/* --- configuration (config.c) --- */

/* Fills c->apihost and c->auth from flags, then GUST_APIHOST / GUST_AUTH, then
 * the config file. need_auth: fail if no credentials are found. */
int cli_config_resolve(cli *c, bool need_auth);
/* The config file path ($GUST_CONFIG_FILE or ~/.gust/config), heap-allocated,
 * or NULL (error printed). */
char *cli_config_path(void);
/* The etcd endpoints for admin commands: --etcd, GUST_ETCD or the default. */
const char *cli_etcd_endpoints(const cli *c);

int cli_cmd_property(cli *c, cli_args *a);

/* --- HTTP to the gateway (http.c) --- */

typedef struct cli_resp {
	long status;
	char *body; /* NUL-terminated, owned; free with cli_resp_free */
	size_t len;
} cli_resp;

/* Sends one request to c->apihost + path (path starts with "/"; query included)
 * with Basic auth from c->auth. body may be NULL. Returns CLI_OK when the server
 * answered (any status) and fills *r; otherwise prints
 * "error: cannot reach <apihost>: <reason>" and returns CLI_EFAIL. */
int cli_http(cli *c, const char *method, const char *path, const char *body, size_t body_len,
             cli_resp *r);
void cli_resp_free(cli_resp *r);

/* For a non-2xx answer, prints "error: <error> (HTTP <status>)" and returns
 * CLI_EFAIL; for a 2xx answer returns CLI_OK. */
int cli_http_check(const cli *c, const cli_resp *r);

/* Parses a 2xx answer body as JSON (any value). Returns NULL and prints an error
 * when it is not JSON. The caller owns the result (json_decref). */
json_t *cli_resp_json(const cli_resp *r);

/* Makes *path = "/api/v1/namespaces/<ns>/<collection>[/<name>]" (heap): ns is
 * "_" unless name is fully qualified ("/ns/pkg/name"); each segment is
 * percent-encoded. name may be NULL (the collection itself). *ns_out (may be
 * NULL) gets the namespace as a heap string. */
int cli_entity_path(const cli *c, const char *collection, const char *name, char **path,
                    char **ns_out);

/* --- output (output.c) --- */

void cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Pretty JSON (2-space indent) followed by a newline on out. CLI_EFAIL if it
 * cannot be encoded (error printed). */
int cli_print_json(FILE *out, const json_t *j);
/* The body as received (a newline added if missing). */
void cli_print_raw(FILE *out, const cli_resp *r);

/* Writes s with control characters replaced by '?' (server text to a terminal). */
void cli_put_safe(FILE *out, const char *s);

/* An aligned table: the header row, then rows; all cells are copied. */
typedef struct cli_table cli_table;
cli_table *cli_table_new(size_t ncols, const char *const *headers);
/* Adds a row of ncols cells (NULL cells print as "-"). CLI_EFAIL on out of memory. */
int cli_table_add(cli_table *t, const char *const *cells);
void cli_table_print(FILE *out, const cli_table *t);
void cli_table_free(cli_table *t);

/* --- shared by the topics (action.c) --- */

/* obj[k] = v, v parsed as JSON if it parses, else a string; errors name --flag. */
int cli_set_kv(json_t *obj, const char *flag, const char *k, const char *v);
/* Merges the JSON object in the file at path into obj. */
int cli_merge_param_file(json_t *obj, const char *path);
/* {"k": v, ...} -> [{"key": "k", "value": v}, ...]. */
json_t *cli_kv_array(json_t *obj);

/* --- topics --- */

int cli_cmd_action(cli *c, cli_args *a);
int cli_cmd_activation(cli *c, cli_args *a);
int cli_cmd_admin(cli *c, cli_args *a);
int cli_cmd_package(cli *c, cli_args *a);
int cli_cmd_trigger(cli *c, cli_args *a);
int cli_cmd_rule(cli *c, cli_args *a);
int cli_cmd_namespace(cli *c, cli_args *a);

void cli_help_top(FILE *out);
void cli_help_action(FILE *out);
void cli_help_activation(FILE *out);
void cli_help_admin(FILE *out);
void cli_help_property(FILE *out);
void cli_help_package(FILE *out);
void cli_help_trigger(FILE *out);
void cli_help_rule(FILE *out);
void cli_help_namespace(FILE *out);

#endif
