/*
 * inv_egress.c - the egress policy as the operator wrote it in etcd
 * (gust/egress.h, docs/operations.md "Egress"), turned into what inv_net.c
 * puts in the nftables table:
 *
 *   - which namespaces have the egress grant (/gust/grants/<ns> "egress":
 *     true). An activation asking for egress in any other runs nowhere
 *     (inv_pool.c refuses it), and a sandbox whose grant is taken back loses
 *     the network at once (inv_net.c's @granted);
 *   - the operator's allow and deny entries (/gust/policy/cluster "egress"),
 *     names resolved here through the sandboxes' resolver, so that the
 *     addresses denied are the ones a sandbox would be given;
 *   - the cluster's own addresses, never reachable: this host's interfaces,
 *     etcd's members (client and peer URLs) and configured endpoints, the
 *     configured Redis, and the addresses invokers and schedulers publish
 *     under /gust/invokers/ and /gust/schedulers/.
 *
 * Watches on those prefixes mark the policy stale, and a thread of its own
 * loads it again (at once, and every egress_refresh_s for names and
 * interfaces, which etcd does not announce). If etcd cannot be read the
 * last policy stays: the defaults deny, so nothing opens while it is stale,
 * and a grant taken back while etcd is away is seen when it is back.
 */
#include <arpa/inet.h>
#include <arpa/nameser.h>
#include <errno.h>
#include <ifaddrs.h>
#include <jansson.h>
#include <netdb.h>
#include <netinet/in.h>
#include <resolv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gust/egress.h"
#include "gust/log.h"
#include "gust/scope.h"
#include "invoker.h"

#define W_N 4

struct inv_egress {
	inv *v;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_t thread;
	bool running, stop, dirty;
	char **granted; /* sorted: what the pool checks (inv_egress_granted) */
	size_t ngranted;
	/* The same list as the table's @granted is made from: the new one goes
	 * in here and into the table first, and only then into granted, so
	 * that once a run is refused its namespace's sandboxes are already cut
	 * off (and a new grant is in the table before a run can use it). */
	char **tgranted;
	size_t ntgranted;
	gust_etcd_watch *w[W_N];
	struct sockaddr_in dns; /* names are resolved here when has_dns */
	bool has_dns;
	char *said; /* the last policy logged */
};

/* ---- address lists --------------------------------------------------------- */

typedef struct addr_list {
	gust_buf b;
	size_t n;
} addr_list;

/* Adds an element ("a.b.c.d", "x::y", "a.b.c.d/len") once. */
static void list_add(addr_list *l, const char *el)
{
	size_t n = strlen(el);
	for (const char *p = l->b.data; p != NULL && (p = strstr(p, el)) != NULL; p += n)
		if ((p == l->b.data || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return;
	gust_buf_printf(&l->b, "%s%s", l->n ? ", " : "", el);
	l->n++;
}

static const char *list_str(const addr_list *l)
{
	return l->b.data != NULL ? l->b.data : "";
}

/* An address or address/prefix in canonical form (host bits cleared, which
 * nft insists on); family 4 or 6, or 0 when it is neither. */
static int canon(const char *entry, char *out, size_t outlen)
{
	char a[64];
	const char *slash = strchr(entry, '/');
	size_t alen = slash ? (size_t)(slash - entry) : strlen(entry);
	if (alen >= sizeof(a))
		return 0;
	memcpy(a, entry, alen);
	a[alen] = '\0';
	unsigned char buf[16];
	int fam = inet_pton(AF_INET, a, buf) == 1 ? 4 : inet_pton(AF_INET6, a, buf) == 1 ? 6 : 0;
	if (fam == 0)
		return 0;
	int bits = fam == 4 ? 32 : 128;
	long len = slash ? strtol(slash + 1, NULL, 10) : bits;
	if (len < 0 || len > bits)
		return 0;
	for (int i = 0; i < bits / 8; i++) {
		int keep = (int)len - i * 8;
		buf[i] &= keep >= 8 ? 0xff : keep <= 0 ? 0 : (unsigned char)(0xff << (8 - keep));
	}
	char s[INET6_ADDRSTRLEN];
	inet_ntop(fam == 4 ? AF_INET : AF_INET6, buf, s, sizeof(s));
	if (len == bits)
		snprintf(out, outlen, "%s", s);
	else
		snprintf(out, outlen, "%s/%ld", s, len);
	return fam;
}

static void add_sockaddr(const struct sockaddr *sa, addr_list *l4, addr_list *l6)
{
	char s[INET6_ADDRSTRLEN];
	if (sa == NULL)
		return;
	if (sa->sa_family == AF_INET) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, s, sizeof(s));
		list_add(l4, s);
	} else if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
		inet_ntop(AF_INET6, a6, s, sizeof(s));
		list_add(l6, s);
	}
}

/* The host of a URL or host:port ("http://h:1", "tls+tcp://[::1]:2",
 * "h:3"); "" for unix sockets and the like. */
static void url_host(const char *url, char *host, size_t hl)
{
	host[0] = '\0';
	if (strncmp(url, "unix:", 5) == 0 || strncmp(url, "ipc:", 4) == 0 ||
	    strncmp(url, "inproc:", 7) == 0 || url[0] == '/')
		return;
	const char *p = strstr(url, "://");
	p = p != NULL ? p + 3 : url;
	const char *end;
	if (*p == '[') {
		p++;
		end = strchr(p, ']');
	} else {
		end = strpbrk(p, ":/");
	}
	size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
	if (n == 0 || n >= hl)
		return;
	memcpy(host, p, n);
	host[n] = '\0';
}

/* A node's host (a name the daemons resolve as the host does, or an
 * address): every address it has goes to the node lists. */
static void add_node_host(const char *url, addr_list *l4, addr_list *l6)
{
	char host[256];
	url_host(url, host, sizeof(host));
	if (host[0] == '\0' || strcmp(host, "*") == 0)
		return;
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int rv = getaddrinfo(host, NULL, &hints, &res);
	if (rv != 0) {
		gust_log_warn("INV-EGRESS-NODE", "cannot resolve the cluster's host %s: %s", host,
		              gai_strerror(rv));
		return;
	}
	for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next)
		add_sockaddr(ai->ai_addr, l4, l6);
	freeaddrinfo(res);
}

/* Every comma-separated URL of list. */
static void add_node_list(const char *list, addr_list *l4, addr_list *l6)
{
	cleanup_free char *copy = gust_xstrdup(list);
	char *save = NULL;
	for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
		while (*t == ' ')
			t++;
		add_node_host(t, l4, l6);
	}
}

/* Resolves a policy name through the sandboxes' resolver: its A records
 * (and AAAA when six) go to l4 (l6). 0 when it answered. */
static int resolve_name(inv_egress *g, const char *name, addr_list *l4, addr_list *l6)
{
	struct __res_state st;
	memset(&st, 0, sizeof(st));
	if (res_ninit(&st) != 0)
		return -1;
	if (g->has_dns) {
		st.nsaddr_list[0] = g->dns;
		st.nscount = 1;
	}
	st.retrans = 2;
	st.retry = 2;
	int found = 0;
	for (int t = 0; t < (l6 != NULL ? 2 : 1); t++) {
		unsigned char ans[4096];
		int len =
		    res_nquery(&st, name, ns_c_in, t == 0 ? ns_t_a : ns_t_aaaa, ans, sizeof(ans));
		ns_msg m;
		if (len < 0 || ns_initparse(ans, len, &m) < 0)
			continue;
		found++;
		for (int i = 0; i < ns_msg_count(m, ns_s_an); i++) {
			ns_rr rr;
			char s[INET6_ADDRSTRLEN];
			if (ns_parserr(&m, ns_s_an, i, &rr) < 0)
				break;
			if (ns_rr_type(rr) == ns_t_a && ns_rr_rdlen(rr) == 4) {
				inet_ntop(AF_INET, ns_rr_rdata(rr), s, sizeof(s));
				list_add(l4, s);
			} else if (ns_rr_type(rr) == ns_t_aaaa && ns_rr_rdlen(rr) == 16 &&
			           l6 != NULL) {
				inet_ntop(AF_INET6, ns_rr_rdata(rr), s, sizeof(s));
				list_add(l6, s);
			}
		}
	}
	res_nclose(&st);
	return found > 0 ? 0 : -1;
}

/* The operator's list ("allow" or "deny") into l4 (and l6 for deny). */
static void add_policy_list(inv_egress *g, json_t *list, const char *which, addr_list *l4,
                            addr_list *l6)
{
	size_t i;
	json_t *t;
	json_array_foreach(list, i, t)
	{
		const char *s = json_string_value(t);
		int fam;
		char why[256], c[80];
		if (s == NULL || gust_egress_entry_check(s, &fam, why, sizeof(why)) != 0) {
			gust_log_warn("INV-EGRESS-ENTRY", "egress %s entry %zu ignored: %s", which,
			              i, s ? why : "not a string");
			continue;
		}
		if (fam == 0) {
			if (resolve_name(g, s, l4, l6) != 0)
				gust_log_warn(
				    "INV-EGRESS-RESOLVE",
				    "egress %s entry %s: cannot resolve it; it adds nothing "
				    "until it does",
				    which, s);
			continue;
		}
		canon(s, c, sizeof(c));
		if (fam == 4)
			list_add(l4, c);
		else if (l6 != NULL)
			list_add(l6, c);
		else
			gust_log_warn("INV-EGRESS-ENTRY",
			              "egress %s entry %s ignored: there is no IPv6 egress", which,
			              s);
	}
}

/* ---- grants ---------------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool in_list(char **list, size_t n, const char *ns)
{
	return n > 0 && bsearch(&ns, list, n, sizeof(char *), cmp_str) != NULL;
}

bool inv_egress_granted(inv *v, const char *ns)
{
	inv_egress *g = v->egress;
	if (g == NULL || ns == NULL)
		return false;
	pthread_mutex_lock(&g->lock);
	bool on = in_list(g->granted, g->ngranted, ns);
	pthread_mutex_unlock(&g->lock);
	return on;
}

bool inv_egress_net_granted(void *arg, const char *ns)
{
	inv_egress *g = ((inv *)arg)->egress;
	if (g == NULL || ns == NULL)
		return false;
	pthread_mutex_lock(&g->lock);
	bool on = in_list(g->tgranted, g->ntgranted, ns);
	pthread_mutex_unlock(&g->lock);
	return on;
}

static char **dup_strs(char **s, size_t n)
{
	char **d = gust_xcalloc(n ? n : 1, sizeof(*d));
	for (size_t i = 0; i < n; i++)
		d[i] = gust_xstrdup(s[i]);
	return d;
}

static void free_strs(char **s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(s[i]);
	free(s);
}

/* ---- loading ----------------------------------------------------------------- */

/* Reads everything from etcd and the host, and puts it in place. */
static int egress_load(inv_egress *g, gust_error **err)
{
	inv *v = g->v;
	gust_kvs gk = {0};
	int rv = gust_etcd_range_prefix(v->etcd, GUST_GRANTS_PREFIX, 0, &gk, err);
	if (rv != 0)
		return rv;
	char **granted = NULL;
	size_t ngranted = 0;
	for (size_t i = 0; i < gk.n; i++) {
		if (!gust_egress_granted_doc(gk.kvs[i].value, gk.kvs[i].value_len))
			continue;
		granted = gust_xrealloc(granted, (ngranted + 1) * sizeof(*granted));
		granted[ngranted++] = gust_xstrdup(gk.kvs[i].key + strlen(GUST_GRANTS_PREFIX));
	}
	gust_kvs_free(&gk);
	if (ngranted > 1)
		qsort(granted, ngranted, sizeof(*granted), cmp_str);

	json_t *policy = NULL;
	gust_kv pk = {0};
	rv = gust_etcd_get(v->etcd, GUST_POLICY_CLUSTER_KEY, &pk, err);
	if (rv == 0) {
		policy = json_loadb(pk.value, pk.value_len, 0, NULL);
		if (!json_is_object(policy))
			gust_log_error("INV-EGRESS-POLICY",
			               "%s is not a JSON object: no egress allow or deny entries",
			               GUST_POLICY_CLUSTER_KEY);
		gust_kv_clear(&pk);
	} else if (rv == GUST_ENOENT) {
		gust_error_free(*err);
		*err = NULL;
	} else {
		free_strs(granted, ngranted);
		return rv;
	}

	addr_list n4 = {0}, n6 = {0}, d4 = {0}, d6 = {0}, a4 = {0};
	/* the cluster's own: configured, then published, then etcd's members */
	add_node_list(v->cfg.etcd, &n4, &n6);
	add_node_list(v->cfg.redis, &n4, &n6);
	static const char *const pubs[] = {"/gust/invokers/", "/gust/schedulers/"};
	for (int p = 0; p < 2; p++) {
		gust_kvs k = {0};
		gust_error *e = NULL;
		if (gust_etcd_range_prefix(v->etcd, pubs[p], 0, &k, &e) != 0) {
			gust_log_warn("INV-EGRESS-NODE", "cannot list %s: %s", pubs[p],
			              gust_error_msg(e));
			gust_error_free(e);
			continue;
		}
		for (size_t i = 0; i < k.n; i++) {
			json_t *j = json_loadb(k.kvs[i].value, k.kvs[i].value_len, 0, NULL);
			static const char *const fields[] = {"address", "status_address"};
			for (int f = 0; f < 2; f++) {
				const char *u = json_string_value(json_object_get(j, fields[f]));
				if (u != NULL)
					add_node_host(u, &n4, &n6);
			}
			json_decref(j);
		}
		gust_kvs_free(&k);
	}
	char **urls = NULL;
	size_t nurls = 0;
	gust_error *e = NULL;
	if (gust_etcd_member_urls(v->etcd, &urls, &nurls, &e) == 0) {
		for (size_t i = 0; i < nurls; i++)
			add_node_host(urls[i], &n4, &n6);
		free_strs(urls, nurls);
	} else {
		gust_log_warn("INV-EGRESS-NODE", "cannot list etcd's members: %s",
		              gust_error_msg(e));
		gust_error_free(e);
	}
	struct ifaddrs *ifa = NULL;
	if (getifaddrs(&ifa) == 0) {
		for (struct ifaddrs *i = ifa; i != NULL; i = i->ifa_next)
			add_sockaddr(i->ifa_addr, &n4, &n6);
		freeifaddrs(ifa);
	}
	json_t *eg = json_object_get(policy, "egress");
	add_policy_list(g, json_object_get(eg, "deny"), "deny", &d4, &d6);
	add_policy_list(g, json_object_get(eg, "allow"), "allow", &a4, NULL);
	json_decref(policy);

	pthread_mutex_lock(&g->lock);
	char **told = g->tgranted;
	size_t ntold = g->ntgranted;
	g->tgranted = dup_strs(granted, ngranted);
	g->ntgranted = ngranted;
	pthread_mutex_unlock(&g->lock);
	free_strs(told, ntold);
	/* Also recomputes @granted from the new grants (tgranted). */
	inv_net_set_policy(v->net, list_str(&n4), list_str(&n6), list_str(&d4), list_str(&d6),
	                   list_str(&a4));
	pthread_mutex_lock(&g->lock);
	char **old = g->granted;
	size_t nold = g->ngranted;
	g->granted = granted;
	g->ngranted = ngranted;
	pthread_mutex_unlock(&g->lock);
	free_strs(old, nold);
	gust_buf said = {0};
	gust_buf_printf(&said,
	                "%zu namespaces granted; allow {%s}; deny {%s}{%s}; %zu node addresses",
	                ngranted, list_str(&a4), list_str(&d4), list_str(&d6), n4.n + n6.n);
	if (g->said == NULL || strcmp(g->said, said.data) != 0) {
		gust_log_info("INV-EGRESS-POLICY", "egress policy: %s", said.data);
		free(g->said);
		g->said = said.data;
	} else {
		gust_buf_free(&said);
	}
	gust_buf_free(&n4.b);
	gust_buf_free(&n6.b);
	gust_buf_free(&d4.b);
	gust_buf_free(&d6.b);
	gust_buf_free(&a4.b);
	return 0;
}

static void *egress_main(void *arg)
{
	inv_egress *g = arg;
	uint64_t wait_ms = (uint64_t)g->v->cfg.egress_refresh_s * 1000;
	pthread_mutex_lock(&g->lock);
	while (!g->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)(wait_ms / 1000);
		ts.tv_nsec += (long)(wait_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		while (!g->dirty && !g->stop)
			if (pthread_cond_timedwait(&g->cv, &g->lock, &ts) == ETIMEDOUT)
				break;
		if (g->stop)
			break;
		g->dirty = false;
		pthread_mutex_unlock(&g->lock);
		gust_error *e = NULL;
		int rv = egress_load(g, &e);
		if (rv != 0)
			gust_log_warn("INV-EGRESS-LOAD",
			              "cannot load the egress policy (the last one "
			              "stays; trying again in 1 s): %s",
			              gust_error_msg(e));
		gust_error_free(e);
		wait_ms = rv != 0 ? 1000 : (uint64_t)g->v->cfg.egress_refresh_s * 1000;
		pthread_mutex_lock(&g->lock);
	}
	pthread_mutex_unlock(&g->lock);
	return NULL;
}

static void egress_stale(void *arg)
{
	inv_egress *g = arg;
	pthread_mutex_lock(&g->lock);
	g->dirty = true;
	pthread_cond_signal(&g->cv);
	pthread_mutex_unlock(&g->lock);
}

static void on_events(void *arg, const gust_watch_event *evs, size_t n, int64_t revision)
{
	egress_stale(arg);
}

static void on_reset(void *arg, const gust_kvs *snapshot)
{
	egress_stale(arg);
}

/* The sandboxes' resolver: egress_resolver, or the first IPv4 nameserver of
 * /etc/resolv.conf. */
static int egress_resolver(inv_egress *g, gust_error **err)
{
	const char *cfg = g->v->cfg.egress_resolver;
	char addr[64] = "";
	long port = 53;
	if (strcmp(cfg, "none") == 0) {
		gust_log_info("INV-EGRESS-DNS", "egress sandboxes get no resolver "
		                                "(config key 'egress_resolver' is none)");
		return 0;
	}
	if (cfg[0] != '\0') {
		const char *colon = strchr(cfg, ':');
		size_t n = colon ? (size_t)(colon - cfg) : strlen(cfg);
		char *end = NULL;
		if (colon != NULL)
			port = strtol(colon + 1, &end, 10);
		if (n >= sizeof(addr) || (colon != NULL && (colon[1] == '\0' || *end != '\0')) ||
		    port < 1 || port > 65535)
			return gust_error_set(err, GUST_EINVAL,
			                      "config key 'egress_resolver': '%s' is not IPv4 "
			                      "ADDR[:PORT] or none",
			                      cfg);
		memcpy(addr, cfg, n);
		addr[n] = '\0';
	} else {
		FILE *f = fopen("/etc/resolv.conf", "re");
		char line[512];
		struct in_addr a;
		while (f != NULL && fgets(line, sizeof(line), f) != NULL && addr[0] == '\0') {
			char ns[64];
			if (sscanf(line, " nameserver %63s", ns) == 1 &&
			    inet_pton(AF_INET, ns, &a) == 1)
				snprintf(addr, sizeof(addr), "%s", ns);
		}
		if (f != NULL)
			fclose(f);
		if (addr[0] == '\0') {
			gust_log_warn("INV-EGRESS-DNS",
			              "/etc/resolv.conf names no IPv4 nameserver: egress sandboxes "
			              "get no resolver (config key 'egress_resolver' names one)");
			return 0;
		}
	}
	g->dns.sin_family = AF_INET;
	g->dns.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, addr, &g->dns.sin_addr) != 1)
		return gust_error_set(err, GUST_EINVAL,
		                      "config key 'egress_resolver': '%s' is not an IPv4 address",
		                      addr);
	g->has_dns = true;
	char ap[96];
	snprintf(ap, sizeof(ap), "%s:%ld", addr, port);
	bool local = (ntohl(g->dns.sin_addr.s_addr) >> 24) == 127;
	inv_net_set_resolver(g->v->net, ap, local);
	gust_log_info("INV-EGRESS-DNS", "egress sandboxes resolve through %s%s", ap,
	              local ? " (on loopback: DNAT with route_localnet on the bridge)" : "");
	return 0;
}

int inv_egress_start(inv *v, gust_error **err)
{
	inv_egress *g = gust_xcalloc(1, sizeof(*g));
	g->v = v;
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cv, NULL);
	v->egress = g;
	int rv = egress_resolver(g, err);
	if (rv != 0)
		return rv;
	if ((rv = egress_load(g, err)) != 0)
		return gust_error_wrap(err, "loading the egress policy");
	static const gust_watch_ops ops = {on_events, on_reset};
	static const char *const prefixes[W_N] = {GUST_GRANTS_PREFIX, GUST_POLICY_CLUSTER_KEY,
	                                          "/gust/invokers/", "/gust/schedulers/"};
	for (int i = 0; i < W_N; i++)
		if ((rv = gust_etcd_mirror_start(v->etcd, prefixes[i], &ops, g, &g->w[i], err)) !=
		    0)
			return gust_error_wrap(err, "watching %s", prefixes[i]);
	if (pthread_create(&g->thread, NULL, egress_main, g) != 0)
		return gust_error_set(err, GUST_EIO, "egress: cannot start the policy thread");
	g->running = true;
	return 0;
}

void inv_egress_stop(inv *v)
{
	inv_egress *g = v->egress;
	if (g == NULL)
		return;
	for (int i = 0; i < W_N; i++)
		if (g->w[i] != NULL)
			gust_etcd_watch_stop(g->w[i]);
	if (g->running) {
		pthread_mutex_lock(&g->lock);
		g->stop = true;
		pthread_cond_signal(&g->cv);
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	/* The table's @granted asks us: nothing is granted from now on. */
	pthread_mutex_lock(&g->lock);
	free_strs(g->granted, g->ngranted);
	free_strs(g->tgranted, g->ntgranted);
	g->granted = g->tgranted = NULL;
	g->ngranted = g->ntgranted = 0;
	pthread_mutex_unlock(&g->lock);
	v->egress = NULL;
	free(g->said);
	pthread_cond_destroy(&g->cv);
	pthread_mutex_destroy(&g->lock);
	free(g);
}
