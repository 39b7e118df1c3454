/*
 * main.c - `gust`: global flags, argument parsing, and dispatch to the topics.
 *
 * Global flags may appear anywhere (before or after the topic and verb), as in
 * wsk; a flag's values are taken verbatim, so `--param k --json` sets k to
 * "--json". After "--" everything is positional.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"

enum {
	GOPT_APIHOST = 1000,
	GOPT_AUTH,
	GOPT_ETCD,
	GOPT_JSON,
	GOPT_INSECURE,
	GOPT_VERBOSE,
	GOPT_HELP,
};

static const cli_opt global_opts[] = {
    {"apihost", 0, 1, GOPT_APIHOST},     {"auth", 'u', 1, GOPT_AUTH},
    {"etcd", 0, 1, GOPT_ETCD},           {"json", 0, 0, GOPT_JSON},
    {"insecure", 'i', 0, GOPT_INSECURE}, {"verbose", 'v', 0, GOPT_VERBOSE},
    {"help", 'h', 0, GOPT_HELP},         {NULL, 0, 0, 0},
};

void cli_help_top(FILE *out)
{
	fputs("usage: gust [global flags] <topic> <command> [args] [flags]\n"
	      "\n"
	      "topics:\n"
	      "  action       create, update, get, list, delete and invoke actions\n"
	      "  activation   list, get and poll activation records, results and logs\n"
	      "  package      create, update, bind, get, list and delete packages\n"
	      "  trigger      create, update, get, list, delete and fire triggers\n"
	      "  rule         create, update, enable, disable, get, list and delete rules\n"
	      "  namespace    list your namespaces\n"
	      "  property     set and show the API host and credentials\n"
	      "  admin        manage namespaces and keys (straight to etcd)\n"
	      "\n"
	      "global flags:\n"
	      "  --apihost URL     the gateway (else GUST_APIHOST, else the config file)\n"
	      "  -u, --auth U:K    credentials (else GUST_AUTH, else the config file)\n"
	      "  --etcd ENDPOINTS  etcd for admin commands (else GUST_ETCD, else "
	      "http://127.0.0.1:2379)\n"
	      "  --json            print raw JSON from get and list commands\n"
	      "  -i, --insecure    do not verify the gateway's TLS certificate\n"
	      "  -v, --verbose     show each request and its status on stderr\n"
	      "  -h, --help        show help (also after a topic: gust action --help)\n"
	      "\n"
	      "The config file is $GUST_CONFIG_FILE or ~/.gust/config, with lines\n"
	      "APIHOST=http://127.0.0.1:3233 and AUTH=uuid:key.\n"
	      "Exit status: 0 success, 1 the request failed, 2 a usage error.\n",
	      out);
}

int cli_help(const cli *c)
{
	FILE *out = stdout;
	if (c->topic == NULL)
		cli_help_top(out);
	else if (strcmp(c->topic, "action") == 0)
		cli_help_action(out);
	else if (strcmp(c->topic, "activation") == 0)
		cli_help_activation(out);
	else if (strcmp(c->topic, "admin") == 0)
		cli_help_admin(out);
	else if (strcmp(c->topic, "property") == 0)
		cli_help_property(out);
	else if (strcmp(c->topic, "package") == 0)
		cli_help_package(out);
	else if (strcmp(c->topic, "trigger") == 0)
		cli_help_trigger(out);
	else if (strcmp(c->topic, "rule") == 0)
		cli_help_rule(out);
	else if (strcmp(c->topic, "namespace") == 0)
		cli_help_namespace(out);
	else
		cli_help_top(out);
	return CLI_OK;
}

int cli_usage_error(const cli *c, const char *fmt, ...)
{
	va_list ap;
	fputs("error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (c->topic != NULL)
		fprintf(stderr, " (try 'gust %s --help')\n", c->topic);
	else
		fputs(" (try 'gust --help')\n", stderr);
	return CLI_EUSAGE;
}

int cli_parse_int(const cli *c, const char *flag, const char *s, long long min, long long max,
                  long long *out)
{
	char *end = NULL;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return cli_usage_error(c, "--%s wants an integer from %lld to %lld, not '%s'", flag,
		                       min, max, s);
	*out = v;
	return CLI_OK;
}

static const cli_opt *find_opt(const cli_opt *opts, const char *name, size_t namelen,
                               char short_name)
{
	for (; opts != NULL && opts->name != NULL; opts++) {
		if (short_name != 0
		        ? opts->short_name == short_name
		        : strlen(opts->name) == namelen && strncmp(opts->name, name, namelen) == 0)
			return opts;
	}
	return NULL;
}

/* Applies a global flag; returns 1 if it was one, 0 if not. */
static int apply_global(cli *c, int id, const char *v)
{
	switch (id) {
	case GOPT_APIHOST:
		c->apihost_flag = v;
		return 1;
	case GOPT_AUTH:
		c->auth_flag = v;
		return 1;
	case GOPT_ETCD:
		c->etcd_flag = v;
		return 1;
	case GOPT_JSON:
		c->json = true;
		return 1;
	case GOPT_INSECURE:
		c->insecure = true;
		return 1;
	case GOPT_VERBOSE:
		c->verbose = true;
		return 1;
	case GOPT_HELP: /* handled by wants_help before parsing */
		return 1;
	default:
		return 0;
	}
}

int cli_next(cli *c, cli_args *a, const cli_opt *opts, const char *vals[2])
{
	for (;;) {
		if (a->i >= a->argc)
			return CLI_ARGS_END;
		const char *arg = a->argv[a->i++];
		vals[0] = vals[1] = NULL;
		if (a->dashdash || arg[0] != '-' || arg[1] == '\0') {
			vals[0] = arg;
			return CLI_ARGS_POS;
		}
		if (strcmp(arg, "--") == 0) {
			a->dashdash = true;
			continue;
		}

		const char *inline_val = NULL;
		const cli_opt *o;
		if (arg[1] == '-') {
			const char *name = arg + 2;
			const char *eq = strchr(name, '=');
			size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
			if (eq != NULL)
				inline_val = eq + 1;
			o = find_opt(opts, name, namelen, 0);
			if (o == NULL)
				o = find_opt(global_opts, name, namelen, 0);
		} else {
			if (arg[2] != '\0') {
				cli_usage_error(c, "unknown flag '%s'", arg);
				return CLI_ARGS_ERROR;
			}
			o = find_opt(opts, NULL, 0, arg[1]);
			if (o == NULL)
				o = find_opt(global_opts, NULL, 0, arg[1]);
		}
		if (o == NULL) {
			cli_usage_error(c, "unknown flag '%s'", arg);
			return CLI_ARGS_ERROR;
		}
		if (inline_val != NULL && o->nargs != 1) {
			cli_usage_error(c, "flag --%s does not take '=value'", o->name);
			return CLI_ARGS_ERROR;
		}
		if (inline_val != NULL) {
			vals[0] = inline_val;
		} else {
			if (a->argc - a->i < o->nargs) {
				cli_usage_error(c, "flag --%s needs %d value%s", o->name, o->nargs,
				                o->nargs > 1 ? "s" : "");
				return CLI_ARGS_ERROR;
			}
			for (int k = 0; k < o->nargs; k++)
				vals[k] = a->argv[a->i++];
		}
		if (apply_global(c, o->id, vals[0]))
			continue;
		return o->id;
	}
}

/* Topic dispatch. Each topic reads its own verb and flags from a. */
static const struct {
	const char *name;
	int (*run)(cli *c, cli_args *a);
} topics[] = {
    {"action", cli_cmd_action}, {"activation", cli_cmd_activation}, {"property", cli_cmd_property},
    {"admin", cli_cmd_admin},   {"package", cli_cmd_package},       {"trigger", cli_cmd_trigger},
    {"rule", cli_cmd_rule},     {"namespace", cli_cmd_namespace},
};

/* -h/--help anywhere (before "--") shows the help of the topic named on the
 * line, whatever else is there: asking for help never runs a command. */
static bool wants_help(cli *c, int argc, char **argv)
{
	bool help = false;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			help = true;
		for (size_t t = 0; c->topic == NULL && t < sizeof(topics) / sizeof(topics[0]); t++)
			if (strcmp(argv[i], topics[t].name) == 0)
				c->topic = topics[t].name;
	}
	if (!help)
		c->topic = NULL;
	return help;
}

static int run(cli *c, int argc, char **argv)
{
	if (wants_help(c, argc, argv))
		return cli_help(c);

	cli_args a = {.argc = argc, .argv = argv, .i = 1};
	const char *vals[2];
	int id = cli_next(c, &a, NULL, vals);
	if (id == CLI_ARGS_ERROR)
		return CLI_EUSAGE;
	if (id == CLI_ARGS_END) {
		cli_help_top(stderr);
		return CLI_EUSAGE;
	}
	for (size_t i = 0; i < sizeof(topics) / sizeof(topics[0]); i++) {
		if (strcmp(vals[0], topics[i].name) == 0) {
			c->topic = topics[i].name;
			return topics[i].run(c, &a);
		}
	}
	return cli_usage_error(c, "unknown topic '%s'", vals[0]);
}

int main(int argc, char **argv)
{
	cli c = {0};
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		cli_error("cannot initialize libcurl");
		return CLI_EFAIL;
	}
	int rv = run(&c, argc, argv);
	free(c.apihost);
	free(c.auth);
	curl_global_cleanup();
	if (fflush(stdout) != 0 || ferror(stdout)) {
		/* A full disk or a closed pipe must not look like success. */
		if (rv == CLI_OK)
			rv = CLI_EFAIL;
	}
	return rv;
}
