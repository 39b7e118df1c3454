/*
 * admin.c - `gust admin namespace|key ...`: the operator's tool, which talks to
 * etcd directly as wskadmin talks to the database. No gateway is needed (it
 * may not be running yet when the first namespace and key are made).
 *
 * Layout in etcd (shared with the gateway's mirrors):
 *   /gust/namespaces/<ns>   {"name": ns, "created": <ms since the epoch>}
 *                           [+ "limits": {"concurrentInvocations", "invocationsPerMinute",
 *                              "firesPerMinute"}]  (absent: OpenWhisk's 30, 60, 60)
 *                           [+ "limits": {"maxEntities", "maxEntityBytes"}] (absent: the
 *                              gateway's ns_max_entities, ns_max_bytes)
 *                           [+ "limits": {"stateBytes", "stateValueBytes"}] (absent: the
 *                              invokers' state_quota_bytes, state_value_bytes)
 *   /gust/cluster/secret    "<current hex> [<previous hex>]": the key of the
 *                           MACs on internal data (gust/integrity.h)
 *   /gust/keys/<uuid>       {"uuid": u, "namespace": ns, "salt": s, "hash": hex(SHA-256(s || key))}
 *                           (the secret itself is never stored; it is printed once)
 *   /gust/actions/<ns>/...  and /gust/code/<ns>/...   the namespace's actions
 *   /gust/versions/<ns>/... the last version of each deleted action (so that
 *                           one created again under its name goes on counting)
 *   /gust/policy/cluster    {"targets": [HOST[:PORT], ...]}  feed and binding targets
 *   /gust/grants/<ns>       {"targets": [...]}               outside the cluster
 *                           (gust/scope.h; other members are kept as they are)
 *                           [+ "egress": true]  ns's actions may have egress
 *   /gust/policy/cluster    [+ "egress": {"allow": [ENTRY...], "deny": [ENTRY...]}]
 *                           where egress sandboxes may go (gust/egress.h)
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "cli.h"
#include "gust/egress.h"
#include "gust/etcd.h"
#include "gust/integrity.h"
#include "gust/redis.h"
#include "gust/stores.h"
#include "gust/scope.h"
#include "gust/sha256.h"
#include "gust/state.h"
#include "gust/util.h"

#define P_NAMESPACES "/gust/namespaces/"
#define P_KEYS "/gust/keys/"
#define SECRET_LEN 64

/* What a namespace owns besides its keys, deleted with it: "<prefix><ns>/".
 * New per-namespace entities (packages, triggers, rules) add a line here. */
static const char *const ns_owned_prefixes[] = {"/gust/actions/",  "/gust/code/",
                                                "/gust/versions/", "/gust/packages/",
                                                "/gust/triggers/", "/gust/rules/"};

enum {
	O_UUID = 1,
	O_KEY,
	O_CONCURRENT,
	O_PER_MINUTE,
	O_FIRES,
	O_ENTITIES,
	O_ENTITY_BYTES,
	O_STATE_BYTES,
	O_STATE_VALUE
};
#define N_LIMITS 7
enum { O_WAIT = 100 }; /* gust admin secret rotate --wait */

void cli_help_admin(FILE *out)
{
	fputs("usage: gust admin <namespace|key|policy|grant|secret> <command> [args]   (talks to "
	      "etcd\n"
	      "directly)\n"
	      "\n"
	      "  namespace create NS     create a namespace\n"
	      "  namespace delete NS     delete it with its keys and actions\n"
	      "  namespace list          list namespaces\n"
	      "  namespace limits NS [--concurrent N] [--per-minute N] [--fires-per-minute N]\n"
	      "                   [--entities N] [--entity-bytes N]\n"
	      "                   [--state-bytes N] [--state-value-bytes N]\n"
	      "                          show or set the namespace's limits (defaults: 30\n"
	      "                          concurrent activations, 60 invocations and 60\n"
	      "                          trigger fires per minute; entities and their bytes\n"
	      "                          in etcd: the gateway's ns_max_entities, ns_max_bytes;\n"
	      "                          the state cache's quota and value size: the\n"
	      "                          invokers' state_quota_bytes, state_value_bytes)\n"
	      "  key create NS [--uuid U] [--key K]\n"
	      "                          make a key for NS and print uuid:key\n"
	      "  key list NS             print the uuid of each key of NS (secrets are\n"
	      "                          stored only as salted hashes)\n"
	      "  key revoke UUID         delete a key\n"
	      "  policy show             targets outside the cluster every namespace's\n"
	      "                          feeds and bindings may reach\n"
	      "  policy allow TARGET     allow one (HOST[:PORT]: a name, IPv4, IPv4/len,\n"
	      "                          [IPv6] or [IPv6/len]; no port: every port)\n"
	      "  policy remove TARGET    stop allowing it\n"
	      "  grant show NS           the targets granted to NS alone, and whether it\n"
	      "                          has egress\n"
	      "  grant add NS TARGET     grant one to NS\n"
	      "  grant remove NS TARGET  take it back\n"
	      "  grant egress NS on|off  let NS's actions have egress (the annotation\n"
	      "                          \"egress\": true) or take it back\n"
	      "  policy egress show      where egress sandboxes may go besides the default\n"
	      "  policy egress allow|deny|remove ENTRY\n"
	      "                          ENTRY: an address, address/prefix or DNS name;\n"
	      "                          private, CGNAT, loopback, link-local and the\n"
	      "                          cluster's own addresses are denied unless allowed\n"
	      "                          (never the nodes'); deny adds to them\n"
	      "  secret init             create the cluster secret if there is none (the\n"
	      "                          first daemon to start also does)\n"
	      "  secret show             its revision and key fingerprints (never the keys)\n"
	      "  secret rotate [--wait S]\n"
	      "                          a new key in two steps: first accepted everywhere,\n"
	      "                          S seconds later (default 5) used for signing; the\n"
	      "                          old key stays accepted as the previous one\n"
	      "\n"
	      "--etcd ENDPOINTS (or GUST_ETCD; default http://127.0.0.1:2379) names etcd;\n"
	      "several endpoints may be given, comma-separated. --json prints JSON lists.\n"
	      "Namespace names match ^[A-Za-z0-9_][A-Za-z0-9_@.-]{0,255}$.\n",
	      out);
}

/* OpenWhisk's rule for namespace names. It also keeps etcd prefixes exact: a
 * name cannot hold '/', so deleting "/gust/actions/<ns>/" touches <ns> alone. */
static bool ns_valid(const char *ns)
{
	size_t n = strlen(ns);
	if (n == 0 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)ns[i];
		bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		          (ch >= '0' && ch <= '9') || ch == '_' ||
		          (i > 0 && (ch == '@' || ch == '.' || ch == '-'));
		if (!ok)
			return false;
	}
	return true;
}

static int check_ns(const cli *c, const char *ns)
{
	if (ns_valid(ns))
		return CLI_OK;
	return cli_usage_error(c,
	                       "'%s' is not a valid namespace name: it must match "
	                       "^[A-Za-z0-9_][A-Za-z0-9_@.-]{0,255}$",
	                       ns);
}

/* 8-4-4-4-12 hex digits. */
static bool uuid_valid(const char *u)
{
	if (strlen(u) != 36)
		return false;
	for (size_t i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		unsigned char ch = (unsigned char)u[i];
		bool hex = (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') ||
		           (ch >= 'A' && ch <= 'F');
		if (dash ? ch != '-' : !hex)
			return false;
	}
	return true;
}

static bool key_valid(const char *k)
{
	size_t n = strlen(k);
	if (n < 16 || n > 256)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)k[i];
		if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		      (ch >= '0' && ch <= '9')))
			return false;
	}
	return true;
}

/* SECRET_LEN characters of [A-Za-z0-9]. A byte is kept only below 248 = 4 * 62,
 * so b % 62 is uniform: no modulo bias. */
static int gen_secret(char out[SECRET_LEN + 1])
{
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char buf[128];
	size_t n = 0;
	while (n < SECRET_LEN) {
		ssize_t r = getrandom(buf, sizeof(buf), 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			cli_error("cannot get random bytes: %s", strerror(errno));
			return CLI_EFAIL;
		}
		for (ssize_t i = 0; i < r && n < SECRET_LEN; i++)
			if (buf[i] < 248)
				out[n++] = alphabet[buf[i] % 62];
	}
	out[SECRET_LEN] = '\0';
	explicit_bzero(buf, sizeof(buf));
	return CLI_OK;
}

/* Reports an etcd failure and frees e. */
static int etcd_fail(const cli *c, const char *what, int rv, gust_error *e)
{
	const char *msg = e != NULL ? gust_error_msg(e) : gust_strerror(rv);
	if (rv == GUST_EUNAVAIL)
		cli_error("cannot reach etcd at %s: %s", cli_etcd_endpoints(c), msg);
	else
		cli_error("%s: %s", what, msg);
	gust_error_free(e);
	return CLI_EFAIL;
}

/* The operator's credentials for etcd and Redis, from the environment as the
 * daemons' keys name them (GUST_ETCD_CA, GUST_ETCD_CERT, GUST_ETCD_KEY,
 * GUST_ETCD_USER, GUST_ETCD_PASSWORD_FILE, GUST_REDIS_USER,
 * GUST_REDIS_PASSWORD_FILE, GUST_INSECURE_STORES): files, never a password
 * itself. Installed once per run. */
static int admin_stores(const cli *c)
{
	static int done = -1;
	if (done >= 0)
		return done;
	const char *ins = getenv("GUST_INSECURE_STORES");
	gust_stores_cfg s = {
	    .etcd_ca = getenv("GUST_ETCD_CA"),
	    .etcd_cert = getenv("GUST_ETCD_CERT"),
	    .etcd_key = getenv("GUST_ETCD_KEY"),
	    .etcd_user = getenv("GUST_ETCD_USER"),
	    .etcd_password_file = getenv("GUST_ETCD_PASSWORD_FILE"),
	    .redis_user = getenv("GUST_REDIS_USER"),
	    .redis_password_file = getenv("GUST_REDIS_PASSWORD_FILE"),
	    .insecure_stores = ins != NULL && (strcmp(ins, "1") == 0 || strcmp(ins, "true") == 0 ||
	                                       strcmp(ins, "yes") == 0 || strcmp(ins, "on") == 0),
	};
	gust_error *e = NULL;
	if (gust_stores_apply(&s, cli_etcd_endpoints(c), NULL, &e) != 0) {
		cli_error("%s (the environment variable GUST_<KEY> sets each key)",
		          gust_error_msg(e));
		gust_error_free(e);
		return done = CLI_EFAIL;
	}
	return done = CLI_OK;
}

static int admin_open(const cli *c, gust_etcd **ep)
{
	gust_error *e = NULL;
	if (admin_stores(c) != CLI_OK)
		return CLI_EFAIL;
	int rv = gust_etcd_open(ep, cli_etcd_endpoints(c), &e);
	if (rv != 0) {
		cli_error("cannot use etcd at %s: %s", cli_etcd_endpoints(c),
		          e != NULL ? gust_error_msg(e) : gust_strerror(rv));
		gust_error_free(e);
		return CLI_EFAIL;
	}
	return CLI_OK;
}

/* The arguments of one admin command: positionals and --uuid/--key. */
typedef struct admin_argv {
	const char *pos[2];
	int npos;
	const char *wait; /* --wait */
	const char *uuid;
	const char *key;
	const char *limit[N_LIMITS]; /* --concurrent, --per-minute, --fires-per-minute,
	                                --entities, --entity-bytes, --state-bytes,
	                                --state-value-bytes */
} admin_argv;

static const cli_opt wait_opts[] = {{"wait", 0, 1, O_WAIT}, {NULL, 0, 0, 0}};
static const cli_opt key_opts[] = {{"uuid", 0, 1, O_UUID}, {"key", 0, 1, O_KEY}, {NULL, 0, 0, 0}};
static const cli_opt limit_opts[] = {
    {"concurrent", 0, 1, O_CONCURRENT},         {"per-minute", 0, 1, O_PER_MINUTE},
    {"fires-per-minute", 0, 1, O_FIRES},        {"entities", 0, 1, O_ENTITIES},
    {"entity-bytes", 0, 1, O_ENTITY_BYTES},     {"state-bytes", 0, 1, O_STATE_BYTES},
    {"state-value-bytes", 0, 1, O_STATE_VALUE}, {NULL, 0, 0, 0}};

static int admin_parse(cli *c, cli_args *a, const cli_opt *opts, int want, const char *usage,
                       admin_argv *v)
{
	const char *vals[2];
	int id;
	memset(v, 0, sizeof(*v));
	while ((id = cli_next(c, a, opts, vals)) != CLI_ARGS_END) {
		switch (id) {
		case CLI_ARGS_ERROR:
			return CLI_EUSAGE;
		case O_CONCURRENT:
		case O_PER_MINUTE:
		case O_FIRES:
		case O_ENTITIES:
		case O_ENTITY_BYTES:
		case O_STATE_BYTES:
		case O_STATE_VALUE:
			v->limit[id - O_CONCURRENT] = vals[0];
			break;
		case O_UUID:
			v->uuid = vals[0];
			break;
		case O_KEY:
			v->key = vals[0];
			break;
		case O_WAIT:
			v->wait = vals[0];
			break;
		default:
			if (v->npos == (want < 0 ? -want : want))
				return cli_usage_error(c, "unexpected argument '%s'", vals[0]);
			v->pos[v->npos++] = vals[0];
		}
	}
	/* want < 0: from 1 to -want of them */
	if (want >= 0 ? v->npos != want : v->npos < 1)
		return cli_usage_error(c, "usage: gust admin %s", usage);
	return CLI_OK;
}

static char *key_of(const char *prefix, const char *name)
{
	char *s = NULL;
	if (asprintf(&s, "%s%s", prefix, name) < 0) {
		cli_error("out of memory");
		return NULL;
	}
	return s;
}

/* The namespace named by a key record, or NULL when the record is unreadable. */
static json_t *parse_record(const gust_kv *kv)
{
	json_t *j = json_loadb(kv->value, kv->value_len, 0, NULL);
	if (!json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

/* The Redis of the state cache: GUST_REDIS, as the daemons read it. */
static int admin_redis(redisContext **rp)
{
	const char *addr = getenv("GUST_REDIS");
	gust_error *err = NULL;
	if (addr == NULL || addr[0] == '\0')
		addr = "127.0.0.1:6379";
	int rv = gust_redis_connect(addr, 3000, rp, &err);
	if (rv != 0) {
		cli_error("cannot reach redis at %s (GUST_REDIS): %s", addr, gust_error_msg(err));
		gust_error_free(err);
	}
	return rv;
}

/* The namespace's state cache user: its password in etcd, its ACL user in
 * Redis. An unreachable Redis only warns: invokers make the user on first use. */
static void ns_state_create(gust_etcd *e, const char *ns)
{
	gust_error *err = NULL;
	cleanup_free char *pw = NULL;
	redisContext *r = NULL;
	int rv = gust_state_password(e, ns, true, &pw, &err);
	if (rv == 0 && admin_redis(&r) != 0)
		return;
	if (rv == 0)
		rv = gust_state_acl_set(r, ns, pw, &err);
	if (rv != 0)
		fprintf(stderr,
		        "warning: the state cache user of %s is not set (%s); invokers "
		        "set it on first use\n",
		        ns, gust_error_msg(err));
	gust_error_free(err);
	if (r != NULL)
		redisFree(r);
}

/* Removes the ACL user, the namespace's state keys and its password. */
static int ns_state_delete(const cli *c, gust_etcd *e, const char *ns)
{
	gust_error *err = NULL;
	redisContext *r = NULL;
	if (admin_redis(&r) != 0)
		return CLI_EFAIL;
	int rv = gust_state_acl_delete(r, ns, &err);
	redisFree(r);
	if (rv != 0) {
		cli_error("cannot remove the state cache user of %s: %s", ns, gust_error_msg(err));
		gust_error_free(err);
		return CLI_EFAIL;
	}
	cleanup_free char *key = gust_xasprintf("%s%s", GUST_STATE_ETCD_PREFIX, ns);
	if ((rv = gust_etcd_delete(e, key, false, NULL, &err)) != 0)
		return etcd_fail(c, "cannot delete the state cache password", rv, err);
	return CLI_OK;
}

static int ns_create(cli *c, gust_etcd *e, const char *ns)
{
	gust_error *err = NULL;
	cleanup_free char *key = key_of(P_NAMESPACES, ns);
	if (key == NULL)
		return CLI_EFAIL;
	json_t *j = json_pack("{s:s, s:I}", "name", ns, "created", (json_int_t)gust_wall_ms());
	char *doc = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (doc == NULL) {
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	int rv = gust_etcd_cas(e, key, 0, doc, strlen(doc), 0, NULL, &err);
	free(doc);
	if (rv == GUST_ECONFLICT) {
		gust_error_free(err);
		cli_error("namespace %s already exists", ns);
		return CLI_EFAIL;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot create the namespace", rv, err);
	ns_state_create(e, ns);
	printf("ok: created namespace %s\n", ns);
	return CLI_OK;
}

/* Deletes every key record of ns; *n gets how many. */
static int delete_ns_keys(const cli *c, gust_etcd *e, const char *ns, int64_t *n)
{
	gust_error *err = NULL;
	gust_kvs kvs = {0};
	int rv = gust_etcd_range_prefix(e, P_KEYS, 0, &kvs, &err);
	if (rv != 0)
		return etcd_fail(c, "cannot list keys", rv, err);
	*n = 0;
	for (size_t i = 0; i < kvs.n; i++) {
		json_t *rec = parse_record(&kvs.kvs[i]);
		const char *owner = json_string_value(json_object_get(rec, "namespace"));
		bool mine = owner != NULL && strcmp(owner, ns) == 0;
		json_decref(rec);
		if (!mine)
			continue;
		/* Only the version we read: a key rewritten meanwhile is not ours to
		 * judge any more. */
		rv = gust_etcd_cas_delete(e, kvs.kvs[i].key, kvs.kvs[i].mod_revision, &err);
		if (rv == GUST_ECONFLICT || rv == GUST_ENOENT) {
			gust_error_free(err);
			err = NULL;
			continue;
		}
		if (rv != 0) {
			gust_kvs_free(&kvs);
			return etcd_fail(c, "cannot delete a key", rv, err);
		}
		(*n)++;
	}
	gust_kvs_free(&kvs);
	return CLI_OK;
}

/* Keys go first, so the namespace is unusable at once; the namespace record
 * goes last, so a delete that fails half-way can simply be run again. */
static int ns_delete(cli *c, gust_etcd *e, const char *ns)
{
	gust_error *err = NULL;
	gust_kv kv = {0};
	cleanup_free char *key = key_of(P_NAMESPACES, ns);
	if (key == NULL)
		return CLI_EFAIL;
	int rv = gust_etcd_get(e, key, &kv, &err);
	if (rv == GUST_ENOENT) {
		gust_error_free(err);
		cli_error("namespace %s does not exist", ns);
		return CLI_EFAIL;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot read the namespace", rv, err);
	gust_kv_clear(&kv);

	int64_t nkeys = 0, nentities = 0;
	if ((rv = delete_ns_keys(c, e, ns, &nkeys)) != CLI_OK)
		return rv;
	/* Before the namespace record, so a failure here can be retried. */
	if ((rv = ns_state_delete(c, e, ns)) != CLI_OK)
		return rv;
	for (size_t i = 0; i < sizeof(ns_owned_prefixes) / sizeof(ns_owned_prefixes[0]); i++) {
		cleanup_free char *prefix = NULL;
		int64_t n = 0;
		if (asprintf(&prefix, "%s%s/", ns_owned_prefixes[i], ns) < 0) {
			prefix = NULL;
			cli_error("out of memory");
			return CLI_EFAIL;
		}
		if ((rv = gust_etcd_delete(e, prefix, true, &n, &err)) != 0)
			return etcd_fail(c, "cannot delete the namespace's entities", rv, err);
		nentities += n;
	}
	cleanup_free char *grants = gust_xasprintf("%s%s", GUST_GRANTS_PREFIX, ns);
	if ((rv = gust_etcd_delete(e, grants, false, NULL, &err)) != 0)
		return etcd_fail(c, "cannot delete the namespace's grants", rv, err);
	if ((rv = gust_etcd_delete(e, key, false, NULL, &err)) != 0)
		return etcd_fail(c, "cannot delete the namespace", rv, err);
	printf("ok: deleted namespace %s (%lld keys, %lld entity records)\n", ns, (long long)nkeys,
	       (long long)nentities);
	return CLI_OK;
}

static int ns_list(cli *c, gust_etcd *e)
{
	gust_error *err = NULL;
	gust_kvs kvs = {0};
	int rv = gust_etcd_range_prefix(e, P_NAMESPACES, 0, &kvs, &err);
	if (rv != 0)
		return etcd_fail(c, "cannot list namespaces", rv, err);

	static const char *const hdr[] = {"NAME", "CREATED"};
	json_t *arr = c->json ? json_array() : NULL;
	cli_table *t = c->json ? NULL : cli_table_new(2, hdr);
	rv = (c->json ? arr != NULL : t != NULL) ? CLI_OK : CLI_EFAIL;
	for (size_t i = 0; rv == CLI_OK && i < kvs.n; i++) {
		const char *name = kvs.kvs[i].key + strlen(P_NAMESPACES);
		json_t *rec = parse_record(&kvs.kvs[i]);
		if (rec == NULL)
			rec = json_pack("{s:s}", "name", name);
		if (rec == NULL) {
			rv = CLI_EFAIL;
			break;
		}
		if (arr != NULL) {
			if (json_array_append(arr, rec) != 0)
				rv = CLI_EFAIL;
		} else {
			char when[32] = "-";
			json_t *ms = json_object_get(rec, "created");
			if (json_is_integer(ms)) {
				time_t s = (time_t)(json_integer_value(ms) / 1000);
				struct tm tm;
				if (gmtime_r(&s, &tm) != NULL)
					strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
			}
			const char *row[] = {name, when};
			rv = cli_table_add(t, row);
		}
		json_decref(rec);
	}
	if (rv == CLI_OK && arr != NULL)
		rv = cli_print_json(stdout, arr);
	else if (rv == CLI_OK)
		cli_table_print(stdout, t);
	else
		cli_error("out of memory");
	json_decref(arr);
	cli_table_free(t);
	gust_kvs_free(&kvs);
	return rv;
}

static int key_create(cli *c, gust_etcd *e, const admin_argv *v)
{
	const char *ns = v->pos[0];
	char uuid[37], secret[SECRET_LEN + 1];
	gust_error *err = NULL;
	gust_kv kv = {0};
	int rv;

	if (v->uuid != NULL && !uuid_valid(v->uuid))
		return cli_usage_error(c, "--uuid must be a UUID (8-4-4-4-12 hex digits)");
	if (v->key != NULL && !key_valid(v->key))
		return cli_usage_error(c, "--key must be 16 to 256 letters and digits");

	cleanup_free char *nskey = key_of(P_NAMESPACES, ns);
	if (nskey == NULL)
		return CLI_EFAIL;
	rv = gust_etcd_get(e, nskey, &kv, &err);
	if (rv == GUST_ENOENT) {
		gust_error_free(err);
		cli_error("namespace %s does not exist; create it with 'gust admin namespace "
		          "create %s'",
		          ns, ns);
		return CLI_EFAIL;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot read the namespace", rv, err);
	gust_kv_clear(&kv);

	if (v->uuid != NULL)
		snprintf(uuid, sizeof(uuid), "%s", v->uuid);
	else
		gust_uuid4(uuid);
	if (v->key != NULL)
		snprintf(secret, sizeof(secret), "%s", v->key);
	else if ((rv = gen_secret(secret)) != CLI_OK)
		return rv;

	/* Only a salted hash is stored: a leaked etcd snapshot does not give the
	 * keys away, and the gateway compares hashes in constant time. */
	char salt[33], hash[2 * GUST_SHA256_LEN + 1];
	gust_random_hex(salt, 16);
	gust_key_hash_hex(salt, secret, hash);
	cleanup_free char *key = key_of(P_KEYS, uuid);
	json_t *j = json_pack("{s:s, s:s, s:s, s:s}", "uuid", uuid, "namespace", ns, "salt", salt,
	                      "hash", hash);
	char *doc = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (key == NULL || doc == NULL) {
		free(doc);
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	rv = gust_etcd_cas(e, key, 0, doc, strlen(doc), 0, NULL, &err);
	explicit_bzero(doc, strlen(doc));
	free(doc);
	if (rv == GUST_ECONFLICT) {
		gust_error_free(err);
		cli_error("key %s already exists", uuid);
		return CLI_EFAIL;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot store the key", rv, err);
	printf("%s:%s\n", uuid, secret);
	explicit_bzero(secret, sizeof(secret));
	return CLI_OK;
}

static int key_list(cli *c, gust_etcd *e, const char *ns)
{
	gust_error *err = NULL;
	gust_kvs kvs = {0};
	int rv = gust_etcd_range_prefix(e, P_KEYS, 0, &kvs, &err);
	if (rv != 0)
		return etcd_fail(c, "cannot list keys", rv, err);
	json_t *arr = c->json ? json_array() : NULL;
	rv = c->json && arr == NULL ? CLI_EFAIL : CLI_OK;
	for (size_t i = 0; rv == CLI_OK && i < kvs.n; i++) {
		json_t *rec = parse_record(&kvs.kvs[i]);
		const char *owner = json_string_value(json_object_get(rec, "namespace"));
		const char *u = json_string_value(json_object_get(rec, "uuid"));
		if (owner != NULL && strcmp(owner, ns) == 0 && u != NULL) {
			if (arr != NULL) {
				if (json_array_append_new(arr, json_pack("{s:s,s:s}", "uuid", u,
				                                         "namespace", owner)) != 0)
					rv = CLI_EFAIL;
			} else {
				cli_put_safe(stdout, u);
				putchar('\n');
			}
		}
		json_decref(rec);
	}
	if (rv != CLI_OK)
		cli_error("out of memory");
	else if (arr != NULL)
		rv = cli_print_json(stdout, arr);
	json_decref(arr);
	gust_kvs_free(&kvs);
	return rv;
}

static int key_revoke(cli *c, gust_etcd *e, const char *uuid)
{
	gust_error *err = NULL;
	int64_t n = 0;
	if (!uuid_valid(uuid))
		return cli_usage_error(c, "'%s' is not a UUID", uuid);
	cleanup_free char *key = key_of(P_KEYS, uuid);
	if (key == NULL)
		return CLI_EFAIL;
	int rv = gust_etcd_delete(e, key, false, &n, &err);
	if (rv != 0)
		return etcd_fail(c, "cannot delete the key", rv, err);
	if (n == 0) {
		cli_error("key %s does not exist", uuid);
		return CLI_EFAIL;
	}
	printf("ok: revoked key %s\n", uuid);
	return CLI_OK;
}

/* Shows the namespace's limits, or sets the ones given (compare-and-swap on
 * the namespace record, so a concurrent change is not lost). */
static int ns_limits(cli *c, gust_etcd *e, const admin_argv *v)
{
	/* The last four default to the gateway's or the invokers' config, which
	 * this tool does not read: unset, they are shown as null ("gateway
	 * default", "invokers' default"). stateValueBytes: one argument of a
	 * state request is at most 8 MiB (gust/resp.h), so a larger value could
	 * never be written. */
	static const char *const names[N_LIMITS] = {
	    "concurrentInvocations", "invocationsPerMinute", "firesPerMinute", "maxEntities",
	    "maxEntityBytes",        "stateBytes",           "stateValueBytes"};
	static const char *const flags[N_LIMITS] = {
	    "concurrent",   "per-minute",  "fires-per-minute", "entities",
	    "entity-bytes", "state-bytes", "state-value-bytes"};
	static const char *const owners[N_LIMITS] = {NULL,      NULL,        NULL,       "gateway",
	                                             "gateway", "invokers'", "invokers'"};
	static const long long defaults[N_LIMITS] = {30, 60, 60, -1, -1, -1, -1};
	static const long long mins[N_LIMITS] = {0, 0, 0, 1, 1, 65536, 1024};
	static const long long maxes[N_LIMITS] = {1000000000, 1000000000,      1000000000,
	                                          100000000,  1099511627776LL, 1099511627776LL,
	                                          8388608};
	const char *ns = v->pos[0];
	long long val[N_LIMITS] = {-1, -1, -1, -1, -1, -1, -1};
	bool set = false;
	for (int i = 0; i < N_LIMITS; i++) {
		if (v->limit[i] == NULL)
			continue;
		int rv = cli_parse_int(c, flags[i], v->limit[i], mins[i], maxes[i], &val[i]);
		if (rv != CLI_OK)
			return rv;
		set = true;
	}
	cleanup_free char *key = key_of(P_NAMESPACES, ns);
	if (key == NULL)
		return CLI_EFAIL;
	for (int attempt = 0; attempt < 5; attempt++) {
		gust_error *err = NULL;
		gust_kv kv = {0};
		int rv = gust_etcd_get(e, key, &kv, &err);
		if (rv == GUST_ENOENT) {
			gust_error_free(err);
			cli_error("namespace %s does not exist", ns);
			return CLI_EFAIL;
		}
		if (rv != 0)
			return etcd_fail(c, "cannot read the namespace", rv, err);
		json_t *rec = parse_record(&kv);
		if (rec == NULL)
			rec = json_pack("{s:s}", "name", ns);
		json_t *lim = json_object_get(rec, "limits");
		if (!json_is_object(lim)) {
			lim = json_object();
			json_object_set_new(rec, "limits", lim);
		}
		for (int i = 0; i < N_LIMITS; i++)
			if (val[i] >= 0)
				json_object_set_new(lim, names[i], json_integer(val[i]));
		if (!set) {
			json_t *shown = json_object();
			for (int i = 0; i < N_LIMITS; i++) {
				json_t *x = json_object_get(lim, names[i]);
				json_object_set_new(shown, names[i],
				                    json_is_integer(x)
				                        ? json_integer(json_integer_value(x))
				                    : defaults[i] >= 0 ? json_integer(defaults[i])
				                                       : json_null());
			}
			if (c->json) {
				rv = cli_print_json(stdout, shown);
			} else {
				for (int i = 0; i < N_LIMITS; i++) {
					json_t *x = json_object_get(shown, names[i]);
					if (json_is_integer(x))
						printf("%-22s %lld\n", names[i],
						       (long long)json_integer_value(x));
					else
						printf("%-22s %s default\n", names[i], owners[i]);
				}
				rv = CLI_OK;
			}
			json_decref(shown);
			json_decref(rec);
			gust_kv_clear(&kv);
			return rv;
		}
		char *doc = json_dumps(rec, JSON_COMPACT);
		json_decref(rec);
		rv = gust_etcd_cas(e, key, kv.mod_revision, doc, strlen(doc), 0, NULL, &err);
		free(doc);
		gust_kv_clear(&kv);
		if (rv == GUST_ECONFLICT) {
			gust_error_free(err);
			continue;
		}
		if (rv != 0)
			return etcd_fail(c, "cannot store the limits", rv, err);
		printf("ok: updated the limits of namespace %s\n", ns);
		return CLI_OK;
	}
	cli_error("the namespace %s kept changing; try again", ns);
	return CLI_EFAIL;
}

/* ---- the policy for feed and binding targets outside the cluster ---------- */

typedef int (*doc_edit_fn)(json_t *doc, void *arg, const char **said);

/* Reads the JSON object at key (none: {}), lets fn change it, and stores it
 * with a compare-and-swap, keeping every member fn does not touch. fn returns
 * 1 when it changed something, 0 when there was nothing to do; *said is what
 * to print. */
static int doc_edit(const cli *c, gust_etcd *e, const char *key, doc_edit_fn fn, void *arg)
{
	gust_error *err = NULL;
	for (int tries = 0; tries < 5; tries++) {
		gust_kv kv = {0};
		int rv = gust_etcd_get(e, key, &kv, &err);
		if (rv != 0 && rv != GUST_ENOENT)
			return etcd_fail(c, "cannot read the policy", rv, err);
		gust_error_free(err);
		err = NULL;
		json_t *doc = rv == 0 ? json_loadb(kv.value, kv.value_len, 0, NULL) : json_object();
		int64_t mod = rv == 0 ? kv.mod_revision : 0;
		gust_kv_clear(&kv);
		if (!json_is_object(doc)) {
			json_decref(doc);
			cli_error("%s is not a JSON object; fix or delete it", key);
			return CLI_EFAIL;
		}
		const char *said = "";
		int changed = fn(doc, arg, &said);
		if (changed <= 0) {
			json_decref(doc);
			if (changed < 0) {
				cli_error("%s: %s", key, said);
				return CLI_EFAIL;
			}
			printf("ok: %s %s\n", key, said);
			return CLI_OK;
		}
		char *text = json_dumps(doc, JSON_COMPACT);
		json_decref(doc);
		rv = gust_etcd_cas(e, key, mod, text, strlen(text), 0, NULL, &err);
		free(text);
		if (rv == GUST_ECONFLICT) {
			gust_error_free(err);
			err = NULL;
			continue;
		}
		if (rv != 0)
			return etcd_fail(c, "cannot store the policy", rv, err);
		printf("ok: %s %s\n", key, said);
		return CLI_OK;
	}
	cli_error("%s kept changing; try again", key);
	return CLI_EFAIL;
}

/* Adds or removes target in the "targets" list of the JSON document at key,
 * keeping every other member (later kinds of grant live beside it), with a
 * compare-and-swap so two operators never lose each other's change. */
typedef struct targets_arg {
	const char *target;
	bool add;
	char said[300];
} targets_arg;

static int targets_fn(json_t *doc, void *arg, const char **said)
{
	targets_arg *a = arg;
	json_t *list = json_object_get(doc, "targets");
	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(doc, "targets", list);
	}
	size_t i, at = (size_t)-1;
	json_t *t;
	json_array_foreach(list, i, t)
	{
		if (json_is_string(t) && strcmp(json_string_value(t), a->target) == 0)
			at = i;
	}
	bool change = a->add ? at == (size_t)-1 : at != (size_t)-1;
	const char *verb = change ? (a->add ? "allows" : "no longer lists")
	                          : (a->add ? "already allows" : "does not list");
	snprintf(a->said, sizeof(a->said), "%s %s", verb, a->target);
	*said = a->said;
	if (!change)
		return 0;
	if (a->add)
		json_array_append_new(list, json_string(a->target));
	else
		json_array_remove(list, at);
	return 1;
}

static int targets_edit(const cli *c, gust_etcd *e, const char *key, const char *target, bool add)
{
	gust_error *err = NULL;
	if (gust_policy_entry_check(target, &err) != 0) {
		cli_error("%s", gust_error_msg(err));
		gust_error_free(err);
		return CLI_EUSAGE;
	}
	targets_arg a = {.target = target, .add = add};
	return doc_edit(c, e, key, targets_fn, &a);
}

static int targets_show(const cli *c, gust_etcd *e, const char *key)
{
	gust_error *err = NULL;
	gust_kv kv = {0};
	int rv = gust_etcd_get(e, key, &kv, &err);
	if (rv == GUST_ENOENT) {
		gust_error_free(err);
		printf("(none)\n");
		return CLI_OK;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot read the policy", rv, err);
	json_t *doc = json_loadb(kv.value, kv.value_len, 0, NULL);
	gust_kv_clear(&kv);
	size_t i;
	json_t *t;
	size_t n = 0;
	json_array_foreach(json_object_get(doc, "targets"), i, t)
	{
		if (json_is_string(t)) {
			printf("%s\n", json_string_value(t));
			n++;
		}
	}
	if (n == 0)
		printf("(none)\n");
	json_decref(doc);
	return CLI_OK;
}

static int run_policy_show(cli *c, gust_etcd *e, const admin_argv *v)
{
	return targets_show(c, e, GUST_POLICY_CLUSTER_KEY);
}

static int run_policy_allow(cli *c, gust_etcd *e, const admin_argv *v)
{
	return targets_edit(c, e, GUST_POLICY_CLUSTER_KEY, v->pos[0], true);
}

static int run_policy_remove(cli *c, gust_etcd *e, const admin_argv *v)
{
	return targets_edit(c, e, GUST_POLICY_CLUSTER_KEY, v->pos[0], false);
}

static int run_grant_show(cli *c, gust_etcd *e, const admin_argv *v)
{
	cleanup_free char *key = gust_xasprintf("%s%s", GUST_GRANTS_PREFIX, v->pos[0]);
	int rv = targets_show(c, e, key);
	if (rv != CLI_OK)
		return rv;
	bool on = false;
	gust_error *err = NULL;
	if ((rv = gust_egress_granted(e, v->pos[0], &on, &err)) != 0)
		return etcd_fail(c, "cannot read the grants", rv, err);
	printf("egress %s\n", on ? "on" : "off");
	return CLI_OK;
}

static int run_grant_add(cli *c, gust_etcd *e, const admin_argv *v)
{
	cleanup_free char *key = gust_xasprintf("%s%s", GUST_GRANTS_PREFIX, v->pos[0]);
	return targets_edit(c, e, key, v->pos[1], true);
}

static int run_grant_remove(cli *c, gust_etcd *e, const admin_argv *v)
{
	cleanup_free char *key = gust_xasprintf("%s%s", GUST_GRANTS_PREFIX, v->pos[0]);
	return targets_edit(c, e, key, v->pos[1], false);
}

/* ---- egress: the grant and the cluster's policy (gust/egress.h) ----------- */

static int grant_egress_fn(json_t *doc, void *arg, const char **said)
{
	bool on = *(bool *)arg;
	if (json_is_true(json_object_get(doc, "egress")) == on) {
		*said = on ? "already grants egress" : "does not grant egress";
		return 0;
	}
	if (on)
		json_object_set_new(doc, "egress", json_true());
	else
		json_object_del(doc, "egress");
	*said = on ? "grants egress" : "no longer grants egress";
	return 1;
}

static int run_grant_egress(cli *c, gust_etcd *e, const admin_argv *v)
{
	bool on;
	if (strcmp(v->pos[1], "on") == 0)
		on = true;
	else if (strcmp(v->pos[1], "off") == 0)
		on = false;
	else
		return cli_usage_error(c, "grant egress NS on|off: '%s' is neither on nor off",
		                       v->pos[1]);
	cleanup_free char *key = gust_xasprintf("%s%s", GUST_GRANTS_PREFIX, v->pos[0]);
	return doc_edit(c, e, key, grant_egress_fn, &on);
}

typedef struct egress_edit {
	const char *verb; /* allow, deny, remove */
	const char *entry;
} egress_edit;

/* The "allow" or "deny" list of doc's "egress" object, made if missing (and
 * a malformed one replaced: the operator's tool owns it). */
static json_t *egress_list(json_t *doc, const char *which)
{
	json_t *eg = json_object_get(doc, "egress");
	if (!json_is_object(eg)) {
		eg = json_object();
		json_object_set_new(doc, "egress", eg);
	}
	json_t *list = json_object_get(eg, which);
	if (!json_is_array(list)) {
		list = json_array();
		json_object_set_new(eg, which, list);
	}
	return list;
}

/* Removes entry from list; true when it was there. */
static bool list_remove(json_t *list, const char *entry)
{
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t)
	{
		if (json_is_string(t) && strcmp(json_string_value(t), entry) == 0) {
			json_array_remove(list, i);
			return true;
		}
	}
	return false;
}

static int policy_egress_fn(json_t *doc, void *arg, const char **said)
{
	const egress_edit *ed = arg;
	json_t *allow = egress_list(doc, "allow"), *deny = egress_list(doc, "deny");
	/* One entry is on one list: moving it from allow to deny says so. */
	bool was_allow = list_remove(allow, ed->entry), was_deny = list_remove(deny, ed->entry);
	if (strcmp(ed->verb, "remove") == 0) {
		*said = was_allow || was_deny ? "no longer lists it" : "does not list it";
		return was_allow || was_deny;
	}
	bool allowing = strcmp(ed->verb, "allow") == 0;
	json_array_append_new(allowing ? allow : deny, json_string(ed->entry));
	if (allowing ? was_allow : was_deny) {
		*said = allowing ? "already allows it" : "already denies it";
		return 0;
	}
	*said = allowing ? "allows it for egress" : "denies it for egress";
	return 1;
}

static int policy_egress_show(cli *c, gust_etcd *e)
{
	gust_error *err = NULL;
	gust_kv kv = {0};
	int rv = gust_etcd_get(e, GUST_POLICY_CLUSTER_KEY, &kv, &err);
	json_t *doc = NULL;
	if (rv == 0) {
		doc = json_loadb(kv.value, kv.value_len, 0, NULL);
		gust_kv_clear(&kv);
	} else if (rv == GUST_ENOENT) {
		gust_error_free(err);
	} else {
		return etcd_fail(c, "cannot read the policy", rv, err);
	}
	static const char *const lists[] = {"allow", "deny"};
	for (int l = 0; l < 2; l++) {
		size_t i, n = 0;
		json_t *t;
		json_array_foreach(json_object_get(json_object_get(doc, "egress"), lists[l]), i, t)
		{
			if (json_is_string(t)) {
				printf("%s %s\n", lists[l], json_string_value(t));
				n++;
			}
		}
		if (n == 0)
			printf("%s (none)\n", lists[l]);
	}
	json_decref(doc);
	return CLI_OK;
}

static int run_policy_egress(cli *c, gust_etcd *e, const admin_argv *v)
{
	const char *verb = v->pos[0];
	if (strcmp(verb, "show") == 0) {
		if (v->npos != 1)
			return cli_usage_error(c, "usage: gust admin policy egress show");
		return policy_egress_show(c, e);
	}
	if (strcmp(verb, "allow") != 0 && strcmp(verb, "deny") != 0 && strcmp(verb, "remove") != 0)
		return cli_usage_error(c, "policy egress: '%s' is not show, allow, deny or remove",
		                       verb);
	if (v->npos != 2)
		return cli_usage_error(c, "usage: gust admin policy egress %s ENTRY", verb);
	int family;
	char why[256];
	if (gust_egress_entry_check(v->pos[1], &family, why, sizeof(why)) != 0)
		return cli_usage_error(c, "policy egress %s: %s", verb, why);
	if (family == 6 && strcmp(verb, "allow") == 0)
		return cli_usage_error(c,
		                       "policy egress allow: '%s': sandboxes have no IPv6 egress "
		                       "(every IPv6 packet is dropped); deny is accepted",
		                       v->pos[1]);
	egress_edit ed = {verb, v->pos[1]};
	return doc_edit(c, e, GUST_POLICY_CLUSTER_KEY, policy_egress_fn, &ed);
}

/* ---- the cluster secret (gust/integrity.h, docs/operations.md) ---- */

static void secret_fingerprint(const uint8_t k[GUST_SHA256_LEN], char out[17])
{
	uint8_t d[GUST_SHA256_LEN];
	gust_sha256_digest(k, GUST_SHA256_LEN, d);
	for (int i = 0; i < 8; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int secret_init(cli *c, gust_etcd *e, const admin_argv *v)
{
	gust_error *err = NULL;
	int rv = gust_secret_ensure(e, &err);
	if (rv != 0)
		return etcd_fail(c, "cannot create the cluster secret", rv, err);
	printf("ok: the cluster secret is at %s\n", GUST_SECRET_KEY);
	return CLI_OK;
}

static int secret_show(cli *c, gust_etcd *e, const admin_argv *v)
{
	gust_kv kv = {0};
	gust_error *err = NULL;
	int rv = gust_etcd_get(e, GUST_SECRET_KEY, &kv, &err);
	if (rv == GUST_ENOENT) {
		gust_error_free(err);
		cli_error("there is no cluster secret yet ('gust admin secret init' makes one)");
		return CLI_EFAIL;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot read the cluster secret", rv, err);
	uint8_t cur[GUST_SHA256_LEN], prev[GUST_SHA256_LEN];
	bool has_prev;
	rv = gust_secret_parse(kv.value, kv.value_len, cur, prev, &has_prev);
	long long mod = (long long)kv.mod_revision;
	gust_kv_clear(&kv);
	if (rv != 0) {
		cli_error("the value at %s is malformed (want 64 hex digits, optionally a blank "
		          "and 64 more)",
		          GUST_SECRET_KEY);
		return CLI_EFAIL;
	}
	char fc[17], fp[17] = "-";
	secret_fingerprint(cur, fc);
	if (has_prev)
		secret_fingerprint(prev, fp);
	printf("revision %lld current %s previous %s\n", mod, fc, fp);
	explicit_bzero(cur, sizeof(cur));
	explicit_bzero(prev, sizeof(prev));
	return CLI_OK;
}

/* Puts value at the secret's key if it is still at revision *rev; *rev gets
 * the new one. */
static int secret_swap(cli *c, gust_etcd *e, int64_t *rev, const char *value)
{
	gust_error *err = NULL;
	int rv = gust_etcd_cas(e, GUST_SECRET_KEY, *rev, value, strlen(value), 0, rev, &err);
	if (rv == GUST_ECONFLICT) {
		gust_error_free(err);
		cli_error("the cluster secret changed meanwhile (another rotation?); try again");
		return CLI_EFAIL;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot store the cluster secret", rv, err);
	return CLI_OK;
}

static int secret_rotate(cli *c, gust_etcd *e, const admin_argv *v)
{
	long wait_s = 5;
	if (v->wait != NULL) {
		char *end;
		errno = 0;
		wait_s = strtol(v->wait, &end, 10);
		if (*v->wait == '\0' || *end != '\0' || errno != 0 || wait_s < 0 || wait_s > 3600)
			return cli_usage_error(c, "--wait must be 0 to 3600 seconds");
	}
	gust_kv kv = {0};
	gust_error *err = NULL;
	int rv = gust_etcd_get(e, GUST_SECRET_KEY, &kv, &err);
	if (rv == GUST_ENOENT) {
		gust_error_free(err);
		cli_error("there is no cluster secret yet ('gust admin secret init' makes one)");
		return CLI_EFAIL;
	}
	if (rv != 0)
		return etcd_fail(c, "cannot read the cluster secret", rv, err);
	uint8_t cur[GUST_SHA256_LEN], prev[GUST_SHA256_LEN];
	bool has_prev;
	int64_t rev = kv.mod_revision;
	rv = gust_secret_parse(kv.value, kv.value_len, cur, prev, &has_prev);
	gust_kv_clear(&kv);
	if (rv != 0) {
		cli_error("the value at %s is malformed; fix it by hand first", GUST_SECRET_KEY);
		return CLI_EFAIL;
	}
	char oldhex[GUST_MAC_HEX_LEN + 1], newhex[GUST_MAC_HEX_LEN + 1];
	char val[2 * GUST_MAC_HEX_LEN + 2];
	for (int i = 0; i < GUST_SHA256_LEN; i++)
		snprintf(oldhex + 2 * i, 3, "%02x", cur[i]);
	gust_random_hex(newhex, GUST_SHA256_LEN);
	/* Step 1: the new key in the previous slot, where every daemon accepts
	 * it but none signs with it; step 2, once all have seen step 1: the new
	 * key signs, the old one is still accepted. No daemon ever meets a MAC
	 * made with a key it does not hold. */
	snprintf(val, sizeof(val), "%s %s", oldhex, newhex);
	if ((rv = secret_swap(c, e, &rev, val)) != CLI_OK)
		goto out;
	printf("step 1: the new key is accepted; signing with it in %ld s\n", wait_s);
	fflush(stdout);
	struct timespec ts = {wait_s, 0};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	snprintf(val, sizeof(val), "%s %s", newhex, oldhex);
	if ((rv = secret_swap(c, e, &rev, val)) != CLI_OK)
		goto out;
	printf("ok: rotated the cluster secret (revision %lld)\n", (long long)rev);
out:
	explicit_bzero(cur, sizeof(cur));
	explicit_bzero(prev, sizeof(prev));
	explicit_bzero(oldhex, sizeof(oldhex));
	explicit_bzero(newhex, sizeof(newhex));
	explicit_bzero(val, sizeof(val));
	return rv;
}

static int run_ns_create(cli *c, gust_etcd *e, const admin_argv *v)
{
	return ns_create(c, e, v->pos[0]);
}

static int run_ns_delete(cli *c, gust_etcd *e, const admin_argv *v)
{
	return ns_delete(c, e, v->pos[0]);
}

static int run_ns_list(cli *c, gust_etcd *e, const admin_argv *v)
{
	return ns_list(c, e);
}

static int run_key_list(cli *c, gust_etcd *e, const admin_argv *v)
{
	return key_list(c, e, v->pos[0]);
}

static int run_key_revoke(cli *c, gust_etcd *e, const admin_argv *v)
{
	return key_revoke(c, e, v->pos[0]);
}

static const struct admin_cmd {
	const char *noun;
	const char *verb;
	int npos;
	const cli_opt *opts;
	bool ns_arg; /* pos[0] is a namespace name, checked before etcd is opened */
	const char *usage;
	int (*run)(cli *c, gust_etcd *e, const admin_argv *v);
} admin_cmds[] = {
    {"namespace", "create", 1, NULL, true, "namespace create NS", run_ns_create},
    {"namespace", "delete", 1, NULL, true, "namespace delete NS", run_ns_delete},
    {"namespace", "list", 0, NULL, false, "namespace list", run_ns_list},
    {"namespace", "limits", 1, limit_opts, true,
     "namespace limits NS [--concurrent N] [--per-minute N] [--fires-per-minute N] "
     "[--entities N] [--entity-bytes N] [--state-bytes N] [--state-value-bytes N]",
     ns_limits},
    {"key", "create", 1, key_opts, true, "key create NS [--uuid U] [--key K]", key_create},
    {"key", "list", 1, NULL, true, "key list NS", run_key_list},
    {"key", "revoke", 1, NULL, false, "key revoke UUID", run_key_revoke},
    {"policy", "show", 0, NULL, false, "policy show", run_policy_show},
    {"policy", "allow", 1, NULL, false, "policy allow TARGET", run_policy_allow},
    {"policy", "remove", 1, NULL, false, "policy remove TARGET", run_policy_remove},
    {"grant", "show", 1, NULL, true, "grant show NS", run_grant_show},
    {"grant", "add", 2, NULL, true, "grant add NS TARGET", run_grant_add},
    {"grant", "remove", 2, NULL, true, "grant remove NS TARGET", run_grant_remove},
    {"grant", "egress", 2, NULL, true, "grant egress NS on|off", run_grant_egress},
    {"policy", "egress", -2, NULL, false, "policy egress show|allow|deny|remove [ENTRY]",
     run_policy_egress},
    {"secret", "init", 0, NULL, false, "secret init", secret_init},
    {"secret", "show", 0, NULL, false, "secret show", secret_show},
    {"secret", "rotate", 0, wait_opts, false, "secret rotate [--wait S]", secret_rotate},
};

int cli_cmd_admin(cli *c, cli_args *a)
{
	const char *vals[2], *noun = NULL, *verb = NULL;
	int id;
	while (verb == NULL && (id = cli_next(c, a, NULL, vals)) != CLI_ARGS_END) {
		if (id == CLI_ARGS_ERROR)
			return CLI_EUSAGE;
		if (noun == NULL)
			noun = vals[0];
		else
			verb = vals[0];
	}
	if (verb == NULL)
		return cli_usage_error(
		    c, "usage: gust admin <namespace|key|policy|grant|secret> <command> [args]");

	const struct admin_cmd *cmd = NULL;
	for (size_t i = 0; i < sizeof(admin_cmds) / sizeof(admin_cmds[0]); i++)
		if (strcmp(noun, admin_cmds[i].noun) == 0 && strcmp(verb, admin_cmds[i].verb) == 0)
			cmd = &admin_cmds[i];
	if (cmd == NULL)
		return cli_usage_error(c, "unknown admin command '%s %s'", noun, verb);

	/* The whole command line is checked before etcd is touched. */
	admin_argv v;
	int rv = admin_parse(c, a, cmd->opts, cmd->npos, cmd->usage, &v);
	if (rv != CLI_OK || (cmd->ns_arg && (rv = check_ns(c, v.pos[0])) != CLI_OK))
		return rv;

	gust_etcd *e = NULL;
	if ((rv = admin_open(c, &e)) != CLI_OK)
		return rv;
	rv = cmd->run(c, e, &v);
	gust_etcd_close(e);
	return rv;
}
