/*
 * inv_net.c - egress for sandboxes that ask for it (ActivationRequest.egress,
 * from the action's annotation "egress": true, which only a namespace the
 * operator granted egress may have: inv_egress.c). Every other sandbox has
 * only its own loopback.
 *
 * On first use the invoker makes a bridge gb<h> with 10.213.N.1/24 (N and <h>
 * come from the invoker's tag, so two invokers on one host never share
 * them; 10.213.0.0/16 is only ever used for these bridges and sandboxes) and
 * an nftables table inet gust_<h>. Each egress sandbox gets a veth pair:
 * gv<h6><n> on the bridge (an isolated port: sandboxes cannot reach each
 * other), eth0 with 10.213.N.n inside, and a default route. The veth dies
 * with the sandbox's network namespace; the bridge and the table go when the
 * invoker stops, and inv_net_sweep removes what a killed invoker left.
 *
 * The table is the egress policy (docs/operations.md "Egress"). A packet a
 * sandbox sends is checked every time, not only when its connection starts,
 * so that a policy change cuts what it now denies:
 *   - its source must be in @granted: a sandbox of a namespace whose grant
 *     was taken back loses the network at once, also what it left running;
 *   - DNS to 10.213.0.53:53 is DNAT'ed to the node's resolver (the only way
 *     to it; a resolver on loopback, such as systemd-resolved's 127.0.0.53,
 *     is reached with route_localnet on the bridge, which is safe because
 *     the input chain drops all else from the bridge);
 *   - the cluster's own addresses (@nodes4/6: local interfaces, etcd's
 *     members and endpoints, Redis, the invokers' and schedulers' published
 *     addresses) are dropped, whatever the operator allows;
 *   - then the operator's deny entries, then the allow entries, then the
 *     reserved ranges (@reserved4/6: private, CGNAT, loopback, link-local,
 *     unique-local, multicast, unspecified, broadcast) are dropped;
 *   - IPv6 is never forwarded: sandboxes get no IPv6 address (not even a
 *     link-local one: addrgenmode none), and every IPv6 packet from the
 *     bridge is dropped, to the host too.
 * A change of policy replaces the table in one nft transaction (delete and
 * make again in one batch): conntrack, hence the NAT of connections still
 * allowed, is not touched, so running sandboxes' other traffic goes on.
 *
 * Forwarding must be on for routed traffic (net.ipv4.ip_forward): we turn it
 * on when egress is first used and leave it as we found it when we stop.
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gust/log.h"
#include "invoker.h"

extern char **environ;

#define NET_IPS 256

struct inv_net {
	pthread_mutex_t lock;
	char hash[9];    /* 8 hex chars of the tag */
	char bridge[16]; /* gb<hash> */
	char table[32];  /* gust_<hash> */
	int octet;       /* 10.213.<octet>.0/24 */
	bool up;         /* bridge and table made */
	int forward_was; /* ip_forward before we set it; -1 untouched */
	bool used[NET_IPS];
	char *owner[NET_IPS]; /* the namespace whose sandbox has that address */
	/* Whether a namespace has the egress grant (inv_egress.c); called under
	 * our lock. */
	bool (*granted)(void *arg, const char *ns);
	void *garg;
	/* The policy's element lists ("a, b, ..." in nft syntax, or ""), and
	 * the resolver sandboxes' DNS goes to ("addr:port", or "": none). */
	char *nodes4, *nodes6, *deny4, *deny6, *allow4;
	char resolver[64];
	bool resolver_local; /* on 127.0.0.0/8: route_localnet on the bridge */
};

/* Runs argv (an absolute path first) with stdin_text on its stdin; 0 when it
 * exits 0. Errors (its stderr) go to the invoker's log. */
static int net_run(char *const argv[], const char *stdin_text)
{
	int in[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	if (stdin_text != NULL) {
		if (pipe2(in, O_CLOEXEC) < 0)
			return -1;
		posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	} else {
		posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	}
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rv = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (in[0] >= 0)
		close(in[0]);
	if (rv != 0) {
		if (in[1] >= 0)
			close(in[1]);
		return -1;
	}
	if (stdin_text != NULL) {
		(void)!write(in[1], stdin_text, strlen(stdin_text));
		close(in[1]);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* net_run with stderr to /dev/null: for deletions that may find nothing. */
static int net_run_quiet(char *const argv[])
{
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	pid_t pid;
	int rv = posix_spawn(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rv != 0)
		return -1;
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static int net_forward(int set)
{
	int fd = open("/proc/sys/net/ipv4/ip_forward", O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return -1;
	char c = 0;
	int was = read(fd, &c, 1) == 1 ? c - '0' : -1;
	if (set >= 0 && was != set) {
		char w = (char)('0' + set);
		(void)!pwrite(fd, &w, 1, 0);
	}
	close(fd);
	return was;
}

static void net_names(const char *tag, char hash[9], char bridge[16], char table[32], int *octet)
{
	const char *h = strrchr(tag, '-');
	snprintf(hash, 9, "%s", h != NULL ? h + 1 : tag);
	snprintf(bridge, 16, "gb%s", hash);
	snprintf(table, 32, "gust_%s", hash);
	*octet = (int)(strtoul(hash, NULL, 16) % 254) + 1;
}

void inv_net_sweep(const char *tag)
{
	char hash[9], bridge[16], table[32];
	int octet;
	net_names(tag, hash, bridge, table, &octet);
	char *del_br[] = {"/usr/sbin/ip", "link", "del", bridge, NULL};
	char *del_t[] = {"/usr/sbin/nft", "delete", "table", "inet", table, NULL};
	/* the table of an invoker from before the egress policy */
	char *del_old[] = {"/usr/sbin/nft", "delete", "table", "ip", table, NULL};
	/* Quietly: usually there is nothing to remove. */
	int a = net_run_quiet(del_br), b = net_run_quiet(del_t), o = net_run_quiet(del_old);
	if (a == 0 || b == 0 || o == 0)
		gust_log_warn("INV-SWEEP-NET", "removed egress bridge/table of an earlier run (%s)",
		              hash);
}

int inv_net_open(const char *tag, bool (*granted)(void *arg, const char *ns), void *garg,
                 inv_net **np)
{
	inv_net *n = gust_xcalloc(1, sizeof(*n));
	n->granted = granted;
	n->garg = garg;
	n->nodes4 = gust_xstrdup("");
	n->nodes6 = gust_xstrdup("");
	n->deny4 = gust_xstrdup("");
	n->deny6 = gust_xstrdup("");
	n->allow4 = gust_xstrdup("");
	pthread_mutex_init(&n->lock, NULL);
	net_names(tag, n->hash, n->bridge, n->table, &n->octet);
	n->forward_was = -1;
	n->used[0] = n->used[1] = n->used[255] = true; /* network, bridge, broadcast */
	*np = n;
	return 0;
}

/* The ranges no egress sandbox reaches unless the operator allows them:
 * "this network", RFC 1918, CGNAT, loopback, link-local (the metadata
 * address 169.254.169.254 of most clouds), IETF protocol assignments,
 * benchmarking, multicast, reserved and broadcast. */
static const char reserved4[] =
    "0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 127.0.0.0/8, 169.254.0.0/16, 172.16.0.0/12, "
    "192.0.0.0/24, 192.168.0.0/16, 198.18.0.0/15, 224.0.0.0/3";
/* unspecified, loopback, IPv4-mapped, NAT64, unique-local, link-local,
 * site-local, multicast */
static const char reserved6[] = "::/127, ::ffff:0:0/96, 64:ff9b::/96, 64:ff9b:1::/48, fc00::/7, "
                                "fe80::/10, fec0::/10, ff00::/8";

/* Where sandboxes send DNS: never a bridge's address (N is 1 to 254), the
 * same in every sandbox, so that their /etc/resolv.conf is fixed
 * (sandbox_root.c). */
#define NET_DNS "10.213.0.53"

static void set_decl(gust_buf *b, const char *name, const char *type, bool interval,
                     const char *elems)
{
	gust_buf_printf(b, " set %s { type %s;%s", name, type,
	                interval ? " flags interval; auto-merge;" : "");
	if (elems != NULL && *elems)
		gust_buf_printf(b, " elements = { %s }", elems);
	gust_buf_puts(b, " }\n");
}

/* Under the lock: the whole table, made anew in one transaction. */
static void net_script(inv_net *n, gust_buf *b)
{
	const char *B = n->bridge;
	gust_buf g = {0};
	for (int i = 2; i < NET_IPS - 1; i++)
		if (n->used[i] && n->owner[i] != NULL && n->granted(n->garg, n->owner[i]))
			gust_buf_printf(&g, "%s10.213.%d.%d", g.len ? ", " : "", n->octet, i);
	gust_buf_printf(b, "table inet %s {}\ndelete table inet %s\ntable inet %s {\n", n->table,
	                n->table, n->table);
	set_decl(b, "granted", "ipv4_addr", false, g.data);
	set_decl(b, "nodes4", "ipv4_addr", true, n->nodes4);
	set_decl(b, "nodes6", "ipv6_addr", true, n->nodes6);
	set_decl(b, "deny4", "ipv4_addr", true, n->deny4);
	set_decl(b, "deny6", "ipv6_addr", true, n->deny6);
	set_decl(b, "allow4", "ipv4_addr", true, n->allow4);
	set_decl(b, "reserved4", "ipv4_addr", true, reserved4);
	set_decl(b, "reserved6", "ipv6_addr", true, reserved6);
	gust_buf_free(&g);
	if (n->resolver[0])
		gust_buf_printf(
		    b,
		    " chain dns { type nat hook prerouting priority dstnat; policy accept;\n"
		    "  iifname \"%s\" ip daddr " NET_DNS
		    " meta l4proto { tcp, udp } th dport 53 dnat ip to %s\n }\n",
		    B, n->resolver);
	gust_buf_printf(
	    b,
	    " chain nat_out { type nat hook postrouting priority srcnat; policy accept;\n"
	    "  ip saddr 10.213.%d.0/24 oifname != \"%s\" masquerade\n }\n"
	    " chain forward { type filter hook forward priority filter; policy accept;\n"
	    "  oifname \"%s\" ct state established,related accept\n"
	    "  oifname \"%s\" drop\n"
	    "  iifname \"%s\" meta nfproto != ipv4 drop\n"
	    "  iifname \"%s\" ip saddr != @granted drop\n"
	    "  iifname \"%s\" ct status dnat ct original ip daddr " NET_DNS " accept\n"
	    "  iifname \"%s\" ip daddr @nodes4 drop\n"
	    "  iifname \"%s\" ip daddr @deny4 drop\n"
	    "  iifname \"%s\" ip daddr @allow4 accept\n"
	    "  iifname \"%s\" ip daddr @reserved4 drop\n"
	    " }\n"
	    " chain to_host { type filter hook input priority filter; policy accept;\n"
	    "  iifname \"%s\" ct state established,related accept\n"
	    "  iifname \"%s\" ip saddr @granted ct status dnat ct original ip daddr " NET_DNS
	    " accept\n"
	    "  iifname \"%s\" drop\n"
	    " }\n"
	    "}\n",
	    n->octet, B, B, B, B, B, B, B, B, B, B, B, B, B);
	/* nodes6, deny6 and reserved6 are not matched while no IPv6 is
	 * forwarded (above); they are there so that the lists the operator
	 * sees in `nft list table` are the whole policy. */
}

/* Under the lock: puts the table in place (when the bridge is up). */
static int net_apply(inv_net *n)
{
	if (!n->up)
		return 0;
	gust_buf b = {0};
	net_script(n, &b);
	char *nft[] = {"/usr/sbin/nft", "-f", "-", NULL};
	int rv = net_run(nft, b.data);
	if (rv != 0)
		gust_log_error("INV-EGRESS-NFT",
		               "cannot update the egress table %s; the one before stays", n->table);
	gust_buf_free(&b);
	return rv;
}

static void net_sysctl(const char *path, char v)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, &v, 1) != 1)
		gust_log_warn("INV-EGRESS-SYSCTL", "cannot set %s to %c: %s", path, v,
		              strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* Under the lock: makes the bridge and the table. */
static int net_up(inv_net *n, gust_error **err)
{
	char addr[32];
	snprintf(addr, sizeof(addr), "10.213.%d.1/24", n->octet);
	char *add[] = {"/usr/sbin/ip", "link", "add", n->bridge, "type", "bridge", NULL};
	/* No IPv6 link-local address on the bridge: nothing of the host's to
	 * reach over IPv6 from a sandbox, whatever the firewall. */
	char *no6[] = {"/usr/sbin/ip", "link", "set", n->bridge, "addrgenmode", "none", NULL};
	char *ad[] = {"/usr/sbin/ip", "addr", "add", addr, "dev", n->bridge, NULL};
	char *up[] = {"/usr/sbin/ip", "link", "set", n->bridge, "up", NULL};
	if (net_run(add, NULL) != 0 || net_run(no6, NULL) != 0 || net_run(ad, NULL) != 0 ||
	    net_run(up, NULL) != 0) {
		char *del[] = {"/usr/sbin/ip", "link", "del", n->bridge, NULL};
		net_run_quiet(del);
		return gust_error_set(err, GUST_EIO, "egress: cannot make bridge %s", n->bridge);
	}
	if (n->resolver_local) {
		cleanup_free char *p =
		    gust_xasprintf("/proc/sys/net/ipv4/conf/%s/route_localnet", n->bridge);
		net_sysctl(p, '1');
	}
	n->up = true;
	if (net_apply(n) != 0) {
		n->up = false;
		char *del[] = {"/usr/sbin/ip", "link", "del", n->bridge, NULL};
		net_run(del, NULL);
		return gust_error_set(err, GUST_EIO, "egress: cannot make nftables table %s",
		                      n->table);
	}
	n->forward_was = net_forward(1);
	gust_log_info("INV-EGRESS-UP", "egress bridge %s 10.213.%d.0/24, nft table inet %s%s%s",
	              n->bridge, n->octet, n->table, n->resolver[0] ? ", DNS to " : ", no DNS",
	              n->resolver);
	return 0;
}

void inv_net_set_resolver(inv_net *n, const char *addr_port, bool local)
{
	pthread_mutex_lock(&n->lock);
	snprintf(n->resolver, sizeof(n->resolver), "%s", addr_port ? addr_port : "");
	n->resolver_local = local;
	pthread_mutex_unlock(&n->lock);
}

static void swap_str(char **dst, const char *src)
{
	free(*dst);
	*dst = gust_xstrdup(src ? src : "");
}

int inv_net_set_policy(inv_net *n, const char *nodes4, const char *nodes6, const char *deny4,
                       const char *deny6, const char *allow4)
{
	pthread_mutex_lock(&n->lock);
	swap_str(&n->nodes4, nodes4);
	swap_str(&n->nodes6, nodes6);
	swap_str(&n->deny4, deny4);
	swap_str(&n->deny6, deny6);
	swap_str(&n->allow4, allow4);
	int rv = net_apply(n);
	pthread_mutex_unlock(&n->lock);
	return rv;
}

int inv_net_attach(inv_net *n, const char *ns, pid_t pid, int *ipp, gust_error **err)
{
	int rv = 0, ip = -1;
	pthread_mutex_lock(&n->lock);
	if (!n->up)
		rv = net_up(n, err);
	for (int i = 2; rv == 0 && i < NET_IPS - 1 && ip < 0; i++)
		if (!n->used[i])
			ip = i;
	if (rv == 0 && ip < 0)
		rv = gust_error_set(err, GUST_EBUSY, "egress: all 253 addresses are in use");
	if (ip >= 0) {
		n->used[ip] = true;
		n->owner[ip] = gust_xstrdup(ns);
	}
	pthread_mutex_unlock(&n->lock);
	if (rv != 0)
		return rv;
	char host[16], ps[16], script[256];
	snprintf(host, sizeof(host), "gv%.6s%03u", n->hash, (unsigned)ip % 1000u);
	snprintf(ps, sizeof(ps), "%d", (int)pid);
	char *add[] = {"/usr/sbin/ip", "link", "add",  host,    "type", "veth",
	               "peer",         "name", "eth0", "netns", ps,     NULL};
	char *br[] = {"/usr/sbin/ip", "link", "set", host, "master", n->bridge, "up", NULL};
	/* Isolated ports talk only to the bridge (the host), never to each other:
	 * one namespace's egress sandbox cannot reach another's. */
	char *iso[] = {"/usr/sbin/ip", "link",     "set", host, "type",
	               "bridge_slave", "isolated", "on",  NULL};
	char *no6[] = {"/usr/sbin/ip", "link", "set", host, "addrgenmode", "none", NULL};
	/* addrgenmode none before up: no IPv6 address at all in the sandbox,
	 * so no IPv6 link-local neighbour to reach. */
	snprintf(script, sizeof(script),
	         "link set eth0 addrgenmode none\naddr add 10.213.%d.%d/24 dev eth0\n"
	         "link set eth0 up\nroute add default via 10.213.%d.1\n",
	         n->octet, ip, n->octet);
	char *in[] = {"/usr/bin/nsenter", "-t", ps, "-n", "/usr/sbin/ip", "-batch", "-", NULL};
	if (net_run(add, NULL) != 0 || net_run(no6, NULL) != 0 || net_run(br, NULL) != 0 ||
	    net_run(iso, NULL) != 0 || net_run(in, script) != 0) {
		char *del[] = {"/usr/sbin/ip", "link", "del", host, NULL};
		net_run(del, NULL);
		inv_net_release(n, ip);
		return gust_error_set(err, GUST_EIO, "egress: cannot connect sandbox %d", (int)pid);
	}
	/* Into @granted: from now on its packets go out (while the grant holds:
	 * net_script leaves out the addresses of namespaces without it). */
	char el[64];
	snprintf(el, sizeof(el), "{ 10.213.%d.%d }", n->octet, ip);
	char *grant[] = {"/usr/sbin/nft", "add", "element", "inet", n->table, "granted", el, NULL};
	pthread_mutex_lock(&n->lock);
	if (n->granted(n->garg, ns))
		rv = net_run(grant, NULL);
	else
		rv = gust_error_set(err, GUST_EPERM, "egress is not granted to namespace '%s'", ns);
	pthread_mutex_unlock(&n->lock);
	if (rv != 0) {
		char *del[] = {"/usr/sbin/ip", "link", "del", host, NULL};
		net_run(del, NULL);
		inv_net_release(n, ip);
		if (rv == GUST_EPERM)
			return rv;
		return gust_error_set(err, GUST_EIO, "egress: cannot add sandbox %d to the table",
		                      (int)pid);
	}
	*ipp = ip;
	return 0;
}

void inv_net_release(inv_net *n, int ip)
{
	if (n == NULL || ip < 2 || ip >= NET_IPS - 1)
		return;
	/* The kernel tears a dead network namespace down later, veth included:
	 * remove our end now, so that the name and address are free for the
	 * next sandbox and nothing outlives the invoker. */
	char host[16];
	snprintf(host, sizeof(host), "gv%.6s%03u", n->hash, (unsigned)ip % 1000u);
	char *del[] = {"/usr/sbin/ip", "link", "del", host, NULL};
	net_run_quiet(del);
	char el[64];
	snprintf(el, sizeof(el), "{ 10.213.%d.%d }", n->octet, ip);
	char *ungrant[] = {"/usr/sbin/nft", "delete",  "element", "inet",
	                   n->table,        "granted", el,        NULL};
	pthread_mutex_lock(&n->lock);
	if (n->up)
		net_run_quiet(ungrant); /* not there when the grant was taken back */
	n->used[ip] = false;
	free(n->owner[ip]);
	n->owner[ip] = NULL;
	pthread_mutex_unlock(&n->lock);
}

void inv_net_close(inv_net *n)
{
	if (n == NULL)
		return;
	if (n->up) {
		char *del_br[] = {"/usr/sbin/ip", "link", "del", n->bridge, NULL};
		char *del_t[] = {"/usr/sbin/nft", "delete", "table", "inet", n->table, NULL};
		net_run(del_br, NULL);
		net_run(del_t, NULL);
		if (n->forward_was == 0)
			net_forward(0);
	}
	for (int i = 0; i < NET_IPS; i++)
		free(n->owner[i]);
	free(n->nodes4);
	free(n->nodes6);
	free(n->deny4);
	free(n->deny6);
	free(n->allow4);
	pthread_mutex_destroy(&n->lock);
	free(n);
}

/* The grants changed: @granted anew. */
void inv_net_regrant(inv_net *n)
{
	pthread_mutex_lock(&n->lock);
	net_apply(n);
	pthread_mutex_unlock(&n->lock);
}
