/*
 * inv_net.c - egress for sandboxes that ask for it (ActivationRequest.egress,
 * from the action's annotation "egress": true). Every other sandbox has only
 * its own loopback.
 *
 * On first use the invoker makes a bridge gb<h> with 10.213.N.1/24 (N and <h>
 * come from the invoker's tag, so two invokers on one host never share
 * them; 10.213.0.0/16 is only ever used for these bridges and sandboxes) and
 * an nftables table ip gust_<h> that masquerades the /24 out of any other
 * interface, drops what sandboxes send to the host itself, and lets into the
 * bridge only replies. Each egress sandbox gets a veth pair: gv<h6><n> on the
 * bridge (an isolated port: sandboxes cannot reach each other), eth0 with
 * 10.213.N.n inside, and a default route. The veth dies with
 * the sandbox's network namespace; the bridge and the table go when the
 * invoker stops, and inv_net_sweep removes what a killed invoker left.
 *
 * Forwarding must be on for routed traffic (net.ipv4.ip_forward): we turn it
 * on when egress is first used and leave it as we found it when we stop.
 * Sandboxes have no resolver: egress is by address.
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
	char *del_t[] = {"/usr/sbin/nft", "delete", "table", "ip", table, NULL};
	/* Quietly: usually there is nothing to remove. */
	int a = net_run_quiet(del_br), b = net_run_quiet(del_t);
	if (a == 0 || b == 0)
		gust_log_warn("INV-SWEEP-NET", "removed egress bridge/table of an earlier run (%s)",
		              hash);
}

int inv_net_open(const char *tag, inv_net **np)
{
	inv_net *n = gust_xcalloc(1, sizeof(*n));
	pthread_mutex_init(&n->lock, NULL);
	net_names(tag, n->hash, n->bridge, n->table, &n->octet);
	n->forward_was = -1;
	n->used[0] = n->used[1] = n->used[255] = true; /* network, bridge, broadcast */
	*np = n;
	return 0;
}

/* Under the lock: makes the bridge and the table. */
static int net_up(inv_net *n, gust_error **err)
{
	char addr[32], script[2048];
	snprintf(addr, sizeof(addr), "10.213.%d.1/24", n->octet);
	char *add[] = {"/usr/sbin/ip", "link", "add", n->bridge, "type", "bridge", NULL};
	char *ad[] = {"/usr/sbin/ip", "addr", "add", addr, "dev", n->bridge, NULL};
	char *up[] = {"/usr/sbin/ip", "link", "set", n->bridge, "up", NULL};
	if (net_run(add, NULL) != 0 || net_run(ad, NULL) != 0 || net_run(up, NULL) != 0)
		return gust_error_set(err, GUST_EIO, "egress: cannot make bridge %s", n->bridge);
	snprintf(script, sizeof(script),
	         "table ip %s {\n"
	         " chain nat_out { type nat hook postrouting priority srcnat; policy accept;\n"
	         "  ip saddr 10.213.%d.0/24 oifname != \"%s\" masquerade\n }\n"
	         " chain to_sandboxes { type filter hook forward priority filter; policy accept;\n"
	         "  oifname \"%s\" ct state established,related accept\n"
	         "  oifname \"%s\" drop\n }\n"
	         " chain to_host { type filter hook input priority filter; policy accept;\n"
	         "  iifname \"%s\" ct state established,related accept\n"
	         "  iifname \"%s\" drop\n }\n"
	         "}\n",
	         n->table, n->octet, n->bridge, n->bridge, n->bridge, n->bridge, n->bridge);
	char *nft[] = {"/usr/sbin/nft", "-f", "-", NULL};
	if (net_run(nft, script) != 0) {
		char *del[] = {"/usr/sbin/ip", "link", "del", n->bridge, NULL};
		net_run(del, NULL);
		return gust_error_set(err, GUST_EIO, "egress: cannot make nftables table %s",
		                      n->table);
	}
	n->forward_was = net_forward(1);
	n->up = true;
	gust_log_info("INV-EGRESS-UP", "egress bridge %s 10.213.%d.0/24, nft table %s", n->bridge,
	              n->octet, n->table);
	return 0;
}

int inv_net_attach(inv_net *n, pid_t pid, int *ipp, gust_error **err)
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
	if (ip >= 0)
		n->used[ip] = true;
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
	snprintf(script, sizeof(script),
	         "addr add 10.213.%d.%d/24 dev eth0\nlink set eth0 up\n"
	         "route add default via 10.213.%d.1\n",
	         n->octet, ip, n->octet);
	char *in[] = {"/usr/bin/nsenter", "-t", ps, "-n", "/usr/sbin/ip", "-batch", "-", NULL};
	if (net_run(add, NULL) != 0 || net_run(br, NULL) != 0 || net_run(iso, NULL) != 0 ||
	    net_run(in, script) != 0) {
		char *del[] = {"/usr/sbin/ip", "link", "del", host, NULL};
		net_run(del, NULL);
		inv_net_release(n, ip);
		return gust_error_set(err, GUST_EIO, "egress: cannot connect sandbox %d", (int)pid);
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
	pthread_mutex_lock(&n->lock);
	n->used[ip] = false;
	pthread_mutex_unlock(&n->lock);
}

void inv_net_close(inv_net *n)
{
	if (n == NULL)
		return;
	if (n->up) {
		char *del_br[] = {"/usr/sbin/ip", "link", "del", n->bridge, NULL};
		char *del_t[] = {"/usr/sbin/nft", "delete", "table", "ip", n->table, NULL};
		net_run(del_br, NULL);
		net_run(del_t, NULL);
		if (n->forward_was == 0)
			net_forward(0);
	}
	pthread_mutex_destroy(&n->lock);
	free(n);
}
