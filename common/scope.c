/* scope.c - the keyspace of a namespace's feeds and bindings, its Redis feed
 * user, and the operator's policy for targets outside the cluster
 * (gust/scope.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gust/map.h"
#include "gust/redis.h"
#include "gust/scope.h"
#include "gust/sha256.h"
#include "gust/state.h"
#include "gust/util.h"

#define SCOPE_NAME_MAX 1024

/* ---- keyspace ------------------------------------------------------------ */

/* The prefix is used as a literal in key and channel patterns (the ACL's
 * "~gust:state:<ns>:*", a tenant's glob), so a namespace name holding a glob
 * character or ':' has no keyspace; the gateway never makes one. */
static bool scope_ns_ok(const char *ns)
{
	if (ns == NULL || ns[0] == '\0' || strlen(ns) > 256)
		return false;
	for (const char *c = ns; *c; c++)
		if (!(isalnum((unsigned char)*c) || *c == '_' || *c == '@' || *c == '.' ||
		      *c == '-'))
			return false;
	return true;
}

bool gust_scope_inside(const char *ns, const char *full)
{
	if (!scope_ns_ok(ns) || full == NULL)
		return false;
	size_t nl = strlen(ns);
	return strncmp(full, "gust:state:", 11) == 0 && strncmp(full + 11, ns, nl) == 0 &&
	       full[11 + nl] == ':' && full[12 + nl] != '\0';
}

int gust_scope_name(const char *ns, const char *param, const char *name, char **out,
                    gust_error **err)
{
	*out = NULL;
	if (!scope_ns_ok(ns))
		return gust_error_set(err, GUST_EINVAL, "%s: namespace '%.64s' has no keyspace",
		                      param, ns ? ns : "");
	if (name == NULL || name[0] == '\0' || strlen(name) > SCOPE_NAME_MAX)
		return gust_error_set(err, GUST_EINVAL, "%s must be a name of 1 to %d bytes", param,
		                      SCOPE_NAME_MAX);
	if (strncmp(name, "gust:", 5) != 0) {
		*out = gust_xasprintf("gust:state:%s:%s", ns, name);
		return 0;
	}
	if (!gust_scope_inside(ns, name))
		return gust_error_set(err, GUST_EPERM,
		                      "%s '%.128s' is outside the namespace's keyspace: give a "
		                      "name relative to gust:state:%s: (or one starting with it)",
		                      param, name, ns);
	*out = gust_xstrdup(name);
	return 0;
}

int gust_scope_group(const char *param, const char *name, gust_error **err)
{
	size_t n = name ? strlen(name) : 0;
	bool ok = n > 0 && n <= 200;
	for (size_t i = 0; ok && i < n; i++) {
		unsigned char c = (unsigned char)name[i];
		ok = isalnum(c) || c == '_' || c == '.' || c == ':' || c == '@' || c == '-';
	}
	if (!ok)
		return gust_error_set(err, GUST_EINVAL,
		                      "%s must be 1 to 200 characters of [A-Za-z0-9_.:@-]", param);
	return 0;
}

/* ---- the feed user --------------------------------------------------------- */

/* Commands of feeds (trig_stream.c, trig_pubsub.c) and bindings
 * (inv_binding_out.c), nothing else: no reads of arbitrary keys, no
 * scripts, no configuration. */
static const char *const feed_cmds[] = {
    "+xgroup|create", "+xreadgroup", "+xautoclaim",  "+xack",         "+xadd", "+rpush",
    "+subscribe",     "+psubscribe", "+unsubscribe", "+punsubscribe", "+ping", "+echo"};

static pthread_mutex_t feed_acl_lock = PTHREAD_MUTEX_INITIALIZER;
static gust_map feed_acl_done; /* ns -> (void *)1: the feed user set by this process */

char *gust_feed_user(const char *ns)
{
	return gust_xasprintf("gust-feed-%s", ns);
}

/* hex(SHA-256("gust-feed:" || state password)): a second secret without a
 * second record in etcd, and knowing it tells nothing about the state user's. */
static void feed_password(const char *state_pw, char out[2 * GUST_SHA256_LEN + 1])
{
	gust_sha256_ctx s;
	uint8_t d[GUST_SHA256_LEN];
	gust_sha256_init(&s);
	gust_sha256_update(&s, "gust-feed:", 10);
	gust_sha256_update(&s, state_pw, strlen(state_pw));
	gust_sha256_final(&s, d);
	for (size_t i = 0; i < GUST_SHA256_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", d[i]);
}

int gust_feed_acl_set(redisContext *r, const char *ns, const char *password, gust_error **err)
{
	if (!scope_ns_ok(ns))
		return gust_error_set(err, GUST_EINVAL, "namespace '%.64s' has no keyspace", ns);
	size_t ncmd = sizeof(feed_cmds) / sizeof(feed_cmds[0]);
	const char *argv[32];
	size_t argc = 0;
	cleanup_free char *user = gust_feed_user(ns);
	char pw[2 * GUST_SHA256_LEN + 1];
	feed_password(password, pw);
	cleanup_free char *pass = gust_xasprintf(">%s", pw);
	cleanup_free char *keys = gust_xasprintf("~gust:state:%s:*", ns);
	cleanup_free char *chans = gust_xasprintf("&gust:state:%s:*", ns);
	argv[argc++] = "ACL";
	argv[argc++] = "SETUSER";
	argv[argc++] = user;
	argv[argc++] = "reset";
	argv[argc++] = "on";
	argv[argc++] = pass;
	argv[argc++] = keys;
	argv[argc++] = "resetchannels";
	argv[argc++] = chans;
	argv[argc++] = "-@all";
	for (size_t i = 0; i < ncmd; i++)
		argv[argc++] = feed_cmds[i];
	int rv =
	    gust_redis_reply_ok(r, redisCommandArgv(r, (int)argc, argv, NULL), "ACL SETUSER", err);
	explicit_bzero(pw, sizeof(pw));
	if (rv == 0) {
		redisReply *rep = redisCommand(r, "ACL SAVE"); /* as gust_state_acl_set */
		if (rep != NULL)
			freeReplyObject(rep);
	}
	return rv;
}

int gust_feed_connect(gust_etcd *e, const char *addr, const char *ns, int timeout_ms,
                      redisContext **out, gust_error **err)
{
	*out = NULL;
	if (!scope_ns_ok(ns))
		return gust_error_set(err, GUST_EINVAL, "namespace '%.64s' has no keyspace", ns);
	cleanup_free char *state_pw = NULL;
	int rv = gust_state_password(e, ns, true, &state_pw, err);
	if (rv != 0)
		return gust_error_wrap(err, "the Redis password of %s", ns);
	redisContext *c = NULL;
	if ((rv = gust_redis_connect(addr, timeout_ms, &c, err)) != 0)
		return rv;
	/* Once per process and namespace the user is set before it is used, so
	 * an upgrade that changes its rules reaches users made by an older
	 * version (whose AUTH would still succeed). */
	pthread_mutex_lock(&feed_acl_lock);
	bool set = gust_map_get(&feed_acl_done, ns) != NULL;
	pthread_mutex_unlock(&feed_acl_lock);
	if (!set && (rv = gust_feed_acl_set(c, ns, state_pw, err)) != 0) {
		redisFree(c);
		return rv;
	}
	if (!set) {
		pthread_mutex_lock(&feed_acl_lock);
		gust_map_put(&feed_acl_done, ns, (void *)1);
		pthread_mutex_unlock(&feed_acl_lock);
	}
	cleanup_free char *user = gust_feed_user(ns);
	char pw[2 * GUST_SHA256_LEN + 1];
	feed_password(state_pw, pw);
	for (int tries = 0; tries < 2; tries++) {
		redisReply *rep = redisCommand(c, "AUTH %s %s", user, pw);
		if (rep == NULL) {
			rv = gust_error_set(err, GUST_EUNAVAIL, "redis %s: %s", addr, c->errstr);
			break;
		}
		bool ok = rep->type != REDIS_REPLY_ERROR;
		freeReplyObject(rep);
		if (ok) {
			explicit_bzero(pw, sizeof(pw));
			*out = c;
			return 0;
		}
		/* Unknown user or another password: still the daemon's own identity
		 * on this connection (a failed AUTH changes nothing), which may set
		 * the user, then we authenticate as it. */
		if (tries == 0 && (rv = gust_feed_acl_set(c, ns, state_pw, err)) != 0)
			break;
		if (tries == 1)
			rv = gust_error_set(err, GUST_EAUTH, "redis %s: cannot authenticate as %s",
			                    addr, user);
	}
	explicit_bzero(pw, sizeof(pw));
	redisFree(c);
	return rv;
}

/* ---- policy ---------------------------------------------------------------- */

typedef struct policy_entry {
	char *name; /* a DNS name (lower case), or NULL for an address */
	int family; /* AF_INET, AF_INET6 */
	uint8_t addr[16];
	int prefix; /* bits */
	int port;   /* 0: any */
} policy_entry;

typedef struct own_addr {
	int family;
	uint8_t addr[16];
	int port;
} own_addr;

struct gust_policy {
	policy_entry *e;
	size_t n;
	own_addr *own;
	size_t nown;
};

static bool name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 253)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '.' || s[i] == '-' || s[i] == '_'))
			return false;
	return true;
}

/* "HOST[:PORT]" (entry: port optional, CIDR allowed) or "host:port" (a
 * target: port required, no CIDR). */
static int parse_hostport(const char *s, bool entry, policy_entry *pe, char *why, size_t wl)
{
	memset(pe, 0, sizeof(*pe));
	if (s == NULL || s[0] == '\0' || strlen(s) > 300) {
		snprintf(why, wl, "empty or too long");
		return GUST_EINVAL;
	}
	char host[301];
	const char *port = NULL;
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL) {
			snprintf(why, wl, "'[' without ']'");
			return GUST_EINVAL;
		}
		snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
		if (close[1] == ':')
			port = close + 2;
		else if (close[1] != '\0') {
			snprintf(why, wl, "text after ']'");
			return GUST_EINVAL;
		}
		pe->family = AF_INET6;
	} else {
		const char *colon = strrchr(s, ':');
		snprintf(host, sizeof(host), "%.*s", (int)(colon ? (size_t)(colon - s) : strlen(s)),
		         s);
		if (colon)
			port = colon + 1;
		if (strchr(host, ':') != NULL) {
			snprintf(why, wl, "an IPv6 address goes in brackets");
			return GUST_EINVAL;
		}
	}
	if (port != NULL) {
		if (entry && strcmp(port, "*") == 0) {
			pe->port = 0;
		} else {
			char *end = NULL;
			long p = port[0] >= '0' && port[0] <= '9' ? strtol(port, &end, 10) : -1;
			if (p <= 0 || p > 65535 || *end != '\0') {
				snprintf(why, wl, "bad port '%.16s'", port);
				return GUST_EINVAL;
			}
			pe->port = (int)p;
		}
	} else if (!entry) {
		snprintf(why, wl, "no port (host:port)");
		return GUST_EINVAL;
	}
	char *slash = strchr(host, '/');
	if (slash != NULL) {
		if (!entry) {
			snprintf(why, wl, "a network is not a target");
			return GUST_EINVAL;
		}
		*slash = '\0';
		char *end = NULL;
		long bits = slash[1] >= '0' && slash[1] <= '9' ? strtol(slash + 1, &end, 10) : -1;
		int max = pe->family == AF_INET6 ? 128 : 32;
		if (bits < 0 || bits > max || *end != '\0') {
			snprintf(why, wl, "bad prefix length");
			return GUST_EINVAL;
		}
		pe->prefix = (int)bits;
	} else {
		pe->prefix = pe->family == AF_INET6 ? 128 : 32;
	}
	if (pe->family == AF_INET6) {
		if (inet_pton(AF_INET6, host, pe->addr) != 1) {
			snprintf(why, wl, "'%.64s' is not an IPv6 address", host);
			return GUST_EINVAL;
		}
		return 0;
	}
	if (inet_pton(AF_INET, host, pe->addr) == 1) {
		pe->family = AF_INET;
		return 0;
	}
	if (slash != NULL || !name_ok(host)) {
		snprintf(why, wl, "'%.64s' is not a host name or address", host);
		return GUST_EINVAL;
	}
	pe->name = gust_xstrdup(host);
	for (char *c = pe->name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return 0;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, int bits)
{
	int whole = bits / 8, rest = bits % 8;
	if (memcmp(a, b, (size_t)whole) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[whole] & mask) == (b[whole] & mask);
}

int gust_policy_entry_check(const char *entry, gust_error **err)
{
	policy_entry pe;
	char why[128];
	int rv = parse_hostport(entry, true, &pe, why, sizeof(why));
	free(pe.name);
	if (rv != 0)
		return gust_error_set(err, GUST_EINVAL,
		                      "'%.128s' is not HOST[:PORT] (name, IPv4, IPv4/len, [IPv6], "
		                      "[IPv6/len]): %s",
		                      entry ? entry : "", why);
	return 0;
}

static int policy_add_doc(gust_policy *p, const char *doc, size_t len, const char *what,
                          gust_error **err)
{
	if (doc == NULL)
		return 0;
	json_t *j = json_loadb(doc, len, 0, NULL);
	json_t *targets = json_object_get(j, "targets");
	if (!json_is_object(j) || (targets != NULL && !json_is_array(targets))) {
		json_decref(j);
		return gust_error_set(err, GUST_EPROTO, "%s: not {\"targets\": [...]}", what);
	}
	size_t i;
	json_t *t;
	json_array_foreach(targets, i, t)
	{
		policy_entry pe;
		char why[128];
		const char *s = json_string_value(t);
		if (parse_hostport(s, true, &pe, why, sizeof(why)) != 0) {
			json_decref(j);
			return gust_error_set(err, GUST_EPROTO, "%s: target %zu: %s", what, i, why);
		}
		p->e = gust_xrealloc(p->e, (p->n + 1) * sizeof(*p->e));
		p->e[p->n++] = pe;
	}
	json_decref(j);
	return 0;
}

int gust_policy_parse(const char *cluster, size_t clen, const char *grants, size_t glen,
                      gust_policy **out, gust_error **err)
{
	gust_policy *p = gust_xcalloc(1, sizeof(*p));
	int rv = policy_add_doc(p, cluster, clen, GUST_POLICY_CLUSTER_KEY, err);
	if (rv == 0)
		rv = policy_add_doc(p, grants, glen, GUST_GRANTS_PREFIX, err);
	if (rv != 0) {
		gust_policy_free(p);
		*out = NULL;
		return rv;
	}
	*out = p;
	return 0;
}

int gust_policy_load(gust_etcd *e, const char *ns, gust_policy **out, gust_error **err)
{
	gust_kv c = {0}, g = {0};
	*out = NULL;
	int rv = gust_etcd_get(e, GUST_POLICY_CLUSTER_KEY, &c, err);
	if (rv == GUST_ENOENT) {
		gust_error_free(*err);
		*err = NULL;
	} else if (rv != 0) {
		return rv;
	}
	cleanup_free char *gk = gust_xasprintf("%s%s", GUST_GRANTS_PREFIX, ns);
	rv = gust_etcd_get(e, gk, &g, err);
	if (rv == GUST_ENOENT) {
		gust_error_free(*err);
		*err = NULL;
	} else if (rv != 0) {
		gust_kv_clear(&c);
		return rv;
	}
	rv = gust_policy_parse(c.value, c.value_len, g.value, g.value_len, out, err);
	gust_kv_clear(&c);
	gust_kv_clear(&g);
	return rv;
}

void gust_policy_free(gust_policy *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->e[i].name);
	free(p->e);
	free(p->own);
	free(p);
}

void gust_policy_add_own(gust_policy *p, const char *addrs)
{
	if (p == NULL || addrs == NULL)
		return;
	cleanup_free char *dup = gust_xstrdup(addrs);
	char *save = NULL;
	for (char *a = strtok_r(dup, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		char *s = strstr(a, "://");
		s = s ? s + 3 : a;
		char *slash = strchr(s, '/');
		if (slash)
			*slash = '\0';
		if (strncmp(s, "unix:", 5) == 0)
			continue;
		char host[300];
		const char *port = NULL;
		if (s[0] == '[') {
			char *close = strchr(s, ']');
			if (close == NULL)
				continue;
			snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
			port = close[1] == ':' ? close + 2 : NULL;
		} else {
			char *colon = strrchr(s, ':');
			snprintf(host, sizeof(host), "%.*s",
			         (int)(colon ? (size_t)(colon - s) : strlen(s)), s);
			port = colon ? colon + 1 : NULL;
		}
		struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
		if (getaddrinfo(host, port ? port : "80", &hints, &res) != 0)
			continue;
		for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
			own_addr o = {0};
			if (ai->ai_family == AF_INET) {
				struct sockaddr_in *in = (struct sockaddr_in *)ai->ai_addr;
				o.family = AF_INET;
				memcpy(o.addr, &in->sin_addr, 4);
				o.port = ntohs(in->sin_port);
			} else if (ai->ai_family == AF_INET6) {
				struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ai->ai_addr;
				o.family = AF_INET6;
				memcpy(o.addr, &in6->sin6_addr, 16);
				o.port = ntohs(in6->sin6_port);
			} else {
				continue;
			}
			p->own = gust_xrealloc(p->own, (p->nown + 1) * sizeof(*p->own));
			p->own[p->nown++] = o;
		}
		freeaddrinfo(res);
	}
}

static bool entry_covers(const policy_entry *e, int family, const uint8_t *addr, int port)
{
	return e->name == NULL && e->family == family && (e->port == 0 || e->port == port) &&
	       prefix_match(e->addr, addr, e->prefix);
}

int gust_policy_target(const gust_policy *p, const char *param, const char *target,
                       gust_error **err)
{
	policy_entry t;
	char why[128];
	if (parse_hostport(target, false, &t, why, sizeof(why)) != 0)
		return gust_error_set(err, GUST_EINVAL, "%s: '%.128s' is not host:port (%s)", param,
		                      target ? target : "", why);
	bool ok = false;
	for (size_t i = 0; p != NULL && i < p->n && !ok; i++) {
		const policy_entry *e = &p->e[i];
		if (t.name != NULL)
			ok = e->name != NULL && strcmp(e->name, t.name) == 0 &&
			     (e->port == 0 || e->port == t.port);
		else
			ok = entry_covers(e, t.family, t.addr, t.port);
	}
	free(t.name);
	if (!ok)
		return gust_error_set(err, GUST_EPERM,
		                      "%s: '%.128s' is not allowed by the operator's policy (gust "
		                      "admin policy / gust admin grant)",
		                      param, target);
	return 0;
}

int gust_policy_targets(const gust_policy *p, const char *param, const char *list, gust_error **err)
{
	cleanup_free char *dup = gust_xstrdup(list ? list : "");
	char *save = NULL;
	int n = 0;
	for (char *t = strtok_r(dup, ", ", &save); t; t = strtok_r(NULL, ", ", &save), n++) {
		int rv = gust_policy_target(p, param, t, err);
		if (rv != 0)
			return rv;
	}
	if (n == 0)
		return gust_error_set(err, GUST_EINVAL, "%s: no host:port given", param);
	return 0;
}

/* Addresses a tenant's target may not reach unless an address entry says
 * so: the host itself, the link, nobody in particular, everybody. */
static bool addr_special(int family, const uint8_t *a)
{
	if (family == AF_INET)
		return a[0] == 127 || a[0] == 0 || (a[0] == 169 && a[1] == 254) ||
		       a[0] >= 224; /* multicast, reserved, broadcast */
	static const uint8_t zero[16];
	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return true;                              /* :: and ::1 */
	return (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || /* fe80::/10 */
	       a[0] == 0xff;                              /* multicast */
}

int gust_policy_sockaddr(const gust_policy *p, const struct sockaddr *sa, socklen_t len, char *why,
                         size_t whylen)
{
	int family, port;
	uint8_t a[16] = {0};
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		family = AF_INET;
		memcpy(a, &in->sin_addr, 4);
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		family = AF_INET6;
		memcpy(a, &in6->sin6_addr, 16);
		port = ntohs(in6->sin6_port);
		static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
		if (memcmp(a, mapped, 12) == 0) { /* ::ffff:a.b.c.d is a.b.c.d */
			memmove(a, a + 12, 4);
			memset(a + 4, 0, 12);
			family = AF_INET;
		}
	} else {
		snprintf(why, whylen, "not an IP address");
		return GUST_EPERM;
	}
	char text[INET6_ADDRSTRLEN];
	inet_ntop(family, a, text, sizeof(text));
	for (size_t i = 0; p != NULL && i < p->nown; i++) {
		const own_addr *o = &p->own[i];
		if (o->family != family || o->port != port || memcmp(o->addr, a, 16) != 0)
			continue;
		for (size_t j = 0; j < p->n; j++) {
			const policy_entry *e = &p->e[j];
			if (e->name == NULL && e->family == family && e->port == port &&
			    e->prefix == (family == AF_INET ? 32 : 128) &&
			    memcmp(e->addr, a, family == AF_INET ? 4 : 16) == 0)
				return 0;
		}
		snprintf(why, whylen,
		         "%s port %d is the cluster's own Redis or etcd: only an entry naming "
		         "exactly that address and port allows it",
		         text, port);
		return GUST_EPERM;
	}
	if (!addr_special(family, a))
		return 0;
	for (size_t j = 0; p != NULL && j < p->n; j++)
		if (entry_covers(&p->e[j], family, a, port))
			return 0;
	snprintf(why, whylen,
	         "%s is a loopback, link-local or other special address: only an address "
	         "entry of the policy allows it",
	         text);
	return GUST_EPERM;
}

int gust_policy_redis_connect(const gust_policy *p, const char *param, const char *target,
                              int timeout_ms, redisContext **out, gust_error **err)
{
	*out = NULL;
	int rv = gust_policy_target(p, param, target, err);
	if (rv != 0)
		return rv;
	char host[301];
	const char *colon = strrchr(target, ':');
	if (target[0] == '[')
		snprintf(host, sizeof(host), "%.*s", (int)(strchr(target, ']') - target - 1),
		         target + 1);
	else
		snprintf(host, sizeof(host), "%.*s", (int)(colon - target), target);
	struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
	int gr = getaddrinfo(host, colon + 1, &hints, &res);
	if (gr != 0)
		return gust_error_set(err, GUST_EUNAVAIL, "%s: cannot resolve '%.128s': %s", param,
		                      host, gai_strerror(gr));
	char why[256] = "no address";
	rv = GUST_EPERM;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		if (gust_policy_sockaddr(p, ai->ai_addr, ai->ai_addrlen, why, sizeof(why)) != 0)
			continue;
		/* By the address just checked, never by the name again: a second
		 * lookup could answer differently. */
		char ip[INET6_ADDRSTRLEN];
		int port;
		if (ai->ai_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)ai->ai_addr;
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			port = ntohs(in->sin_port);
		} else {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ai->ai_addr;
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			port = ntohs(in6->sin6_port);
		}
		struct timeval tv = {.tv_sec = timeout_ms / 1000,
		                     .tv_usec = (timeout_ms % 1000) * 1000};
		redisContext *c = redisConnectWithTimeout(ip, port, tv);
		if (c == NULL || c->err) {
			snprintf(why, sizeof(why), "%s", c ? c->errstr : "cannot allocate");
			if (c)
				redisFree(c);
			rv = GUST_EUNAVAIL;
			continue;
		}
		redisSetTimeout(c, tv);
		freeaddrinfo(res);
		*out = c;
		return 0;
	}
	freeaddrinfo(res);
	return gust_error_set(err, rv, "%s '%.128s': %s", param, target, why);
}
