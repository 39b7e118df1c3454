/* fuzz_feeds.c - the configuration a tenant gives to reach Redis or Kafka:
 * a trigger's feed (gust_feed_parse, common/trigger_fire.c), an action's
 * output binding (gust_binding_parse, common/binding.c), the keyspace rule
 * (gust_scope_name, common/scope.c), and the operator's policy with the
 * targets checked against it (gust_policy_parse/_target/_targets/_sockaddr).
 *
 * Properties:
 * - a feed or binding on the cluster's Redis that parses names only keys and
 *   channels inside gust:state:<ns>: (its patterns' literal prefixes too),
 *   with a group name of the safe charset; one that fails says why;
 * - gust_scope_name accepts only names that end up inside the keyspace;
 * - an empty policy allows no target; a target allowed under a policy is
 *   host:port; a loopback address is allowed only when an address entry of
 *   the policy covers it.
 *
 * Input: the first byte picks the mode (low 2 bits); the second picks the
 * namespace from a small list (so prefixes like "a" and "ab" meet); the rest:
 *   0  a trigger record (JSON) for gust_feed_parse
 *   1  a binding annotation's value (text) for gust_binding_parse
 *   2  a name for gust_scope_name
 *   3  cluster doc 0x00 grants doc 0x00 target 0x00 four address bytes + two
 *      port bytes */
#include <arpa/inet.h>
#include <netinet/in.h>

#include "fuzz.h"
#include "gust/binding.h"
#include "gust/fire.h"
#include "gust/scope.h"
#include "gust/state.h"
#include "gust/util.h"

static const char *const nss[] = {"a", "ab", "alice", "bob", "x.y-z@w", "_"};

/* A group the tenant named (a default, "gust-<ns>-<trigger name>", is made
 * of names the gateway checked, not of this charset). */
static void check_group(const char *ns, const char *g)
{
	size_t nl = strlen(ns);
	if (strncmp(g, "gust-", 5) == 0 && strncmp(g + 5, ns, nl) == 0 && g[5 + nl] == '-')
		return;
	for (const char *c = g; *c; c++)
		FUZZ_CHECK(
		    strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:@-",
		           *c) != NULL,
		    "group '%s'", g);
}

static void check_inside(const char *ns, const char *name, const char *what)
{
	FUZZ_CHECK(name != NULL && gust_scope_inside(ns, name), "%s '%s' outside of %s", what,
	           name ? name : "(null)", ns);
	/* the literal prefix: nothing a glob can widen before the ns's ':' */
	cleanup_free char *prefix = gust_state_prefix(ns);
	FUZZ_CHECK(strncmp(name, prefix, strlen(prefix)) == 0, "%s '%s'", what, name);
}

static void fuzz_feed(const char *ns, const uint8_t *data, size_t size)
{
	json_t *rec = json_loadb((const char *)data, size, 0, NULL);
	if (!json_is_object(rec)) {
		json_decref(rec);
		return;
	}
	json_object_set_new(rec, "namespace", json_string(ns));
	gust_feed f;
	gust_error *err = NULL;
	int rv = gust_feed_parse(rec, &f, &err);
	if (rv != 0 && rv != GUST_ENOENT)
		FUZZ_CHECK(err != NULL && gust_error_msg(err)[0], "a refusal without a reason");
	gust_error_free(err);
	if (rv == 0) {
		bool redis = f.kind == GUST_FEED_REDIS_STREAM || f.kind == GUST_FEED_REDIS_PUBSUB;
		FUZZ_CHECK(gust_feed_external(&f) ==
		               (f.kind == GUST_FEED_KAFKA || (redis && f.redis)),
		           "external");
		if (f.kind == GUST_FEED_REDIS_STREAM) {
			check_group(ns, f.group);
			if (f.redis == NULL) {
				check_inside(ns, f.stream, "stream");
				check_inside(ns, f.dead_letter, "deadLetterStream");
			}
		}
		if (f.kind == GUST_FEED_REDIS_PUBSUB && f.redis == NULL) {
			size_t i;
			json_t *e;
			json_array_foreach(f.channels, i, e)
			    check_inside(ns, json_string_value(e), "channel");
			json_array_foreach(f.patterns, i, e)
			    check_inside(ns, json_string_value(e), "pattern");
		}
		if (f.kind == GUST_FEED_KAFKA) {
			check_group(ns, f.group);
			if (strncmp(f.group, "gust-", 5) == 0) {
				size_t nl = strlen(ns);
				FUZZ_CHECK(strncmp(f.group + 5, ns, nl) == 0 &&
				               f.group[5 + nl] == '-',
				           "kafka group '%s' of another namespace", f.group);
			}
		}
		gust_feed_clear(&f);
	}
	json_decref(rec);
}

static void fuzz_binding(const char *ns, const uint8_t *data, size_t size)
{
	char *text = gust_xstrndup((const char *)data, size);
	gust_binding b;
	char *why = NULL;
	int rv = gust_binding_parse(ns, text, &b, &why);
	if (rv != 0) {
		FUZZ_CHECK(why != NULL && why[0], "a refusal without a reason");
	} else {
		FUZZ_CHECK(why == NULL && b.name && b.label, "fields");
		if (b.kind != GUST_BINDING_KAFKA && b.addr == NULL)
			check_inside(ns, b.name, "binding key");
		FUZZ_CHECK(gust_binding_external(&b) == (b.kind == GUST_BINDING_KAFKA || b.addr),
		           "external");
		/* nothing allowed outside without a policy */
		gust_policy *p = NULL;
		FUZZ_CHECK(gust_policy_parse(NULL, 0, NULL, 0, &p, NULL) == 0, "empty policy");
		char *pwhy = NULL;
		int prv = gust_binding_check_policy(&b, p, &pwhy);
		FUZZ_CHECK(gust_binding_external(&b) ? prv != 0 && pwhy : prv == 0, "policy");
		free(pwhy);
		gust_policy_free(p);
	}
	free(why);
	gust_binding_clear(&b);
	free(text);
}

static void fuzz_name(const char *ns, const uint8_t *data, size_t size)
{
	char *name = gust_xstrndup((const char *)data, size);
	char *full = NULL;
	gust_error *err = NULL;
	int rv = gust_scope_name(ns, "p", name, &full, &err);
	if (rv == 0) {
		check_inside(ns, full, "name");
		FUZZ_CHECK(strncmp(name, "gust:", 5) == 0 ? strcmp(full, name) == 0
		                                          : strlen(full) > strlen(name),
		           "'%s' -> '%s'", name, full);
	} else {
		FUZZ_CHECK(err != NULL && full == NULL, "error");
	}
	gust_error_free(err);
	free(full);
	free(name);
}

static void fuzz_policy(const uint8_t *data, size_t size)
{
	fuzz_cursor c = {data, size};
	size_t cl, gl;
	const uint8_t *cluster = fuzz_field(&c, 0, &cl);
	const uint8_t *grants = fuzz_field(&c, 0, &gl);
	char *target = fuzz_field_str(&c, 0);
	gust_policy *p = NULL;
	gust_error *err = NULL;
	if (gust_policy_parse((const char *)cluster, cl, (const char *)grants, gl, &p, &err) != 0) {
		FUZZ_CHECK(p == NULL && err != NULL, "error");
		gust_error_free(err);
		free(target);
		return;
	}
	gust_policy_add_own(p, "127.0.0.1:6379,http://127.0.0.1:2379");
	int rv = gust_policy_target(p, "t", target, NULL);
	FUZZ_CHECK(rv == 0 || rv == GUST_EPERM || rv == GUST_EINVAL, "rv %d", rv);
	if (rv == 0)
		FUZZ_CHECK(strchr(target, ':') != NULL, "'%s' allowed without a port", target);
	rv = gust_policy_targets(p, "t", target, NULL);
	FUZZ_CHECK(rv == 0 || rv == GUST_EPERM || rv == GUST_EINVAL, "rv %d", rv);
	(void)gust_policy_entry_check(target, NULL);
	struct sockaddr_in in = {.sin_family = AF_INET};
	uint8_t a[6] = {0};
	for (int i = 0; i < 6; i++)
		a[i] = fuzz_byte(&c);
	memcpy(&in.sin_addr, a, 4);
	memcpy(&in.sin_port, a + 4, 2);
	char why[256];
	rv = gust_policy_sockaddr(p, (struct sockaddr *)&in, sizeof(in), why, sizeof(why));
	FUZZ_CHECK(rv == 0 || rv == GUST_EPERM, "rv %d", rv);
	/* Loopback with an empty policy: never. */
	gust_policy *none = NULL;
	gust_policy_parse(NULL, 0, NULL, 0, &none, NULL);
	in.sin_addr.s_addr = htonl(0x7f000000u | a[1]);
	FUZZ_CHECK(gust_policy_sockaddr(none, (struct sockaddr *)&in, sizeof(in), why,
	                                sizeof(why)) == GUST_EPERM,
	           "loopback allowed by an empty policy");
	gust_policy_free(none);
	gust_policy_free(p);
	free(target);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	int mode = data[0] & 3;
	const char *ns = nss[data[1] % (sizeof(nss) / sizeof(nss[0]))];
	data += 2, size -= 2;
	switch (mode) {
	case 0:
		fuzz_feed(ns, data, size);
		break;
	case 1:
		fuzz_binding(ns, data, size);
		break;
	case 2:
		fuzz_name(ns, data, size);
		break;
	default:
		fuzz_policy(data, size);
	}
	return 0;
}
