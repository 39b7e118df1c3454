/*
 * harness.c - real servers for C tests: ports, temp dirs, reaped children, and
 * etcd / Redis started in a temp dir.
 *
 * Starting etcd twice on the same dir restarts the same member on the same ports
 * (they are kept in <dir>/etcd.ports), which is how tests kill and bring back etcd
 * under a client that keeps its endpoint list.
 */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "gust/util.h"
#include "harness.h"

#define TH_MAX_PORTS 1024

static pthread_mutex_t th_port_mu = PTHREAD_MUTEX_INITIALIZER;
static int th_ports_used[TH_MAX_PORTS];
static size_t th_nports_used;

static bool th_port_seen(int port)
{
	for (size_t i = 0; i < th_nports_used; i++)
		if (th_ports_used[i] == port)
			return true;
	return false;
}

int th_free_port(void)
{
	pthread_mutex_lock(&th_port_mu);
	int port = -1;
	for (int tries = 0; tries < 64 && port < 0; tries++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			break;
		struct sockaddr_in sa = {.sin_family = AF_INET};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		socklen_t len = sizeof(sa);
		if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
		    getsockname(fd, (struct sockaddr *)&sa, &len) == 0) {
			int p = ntohs(sa.sin_port);
			if (!th_port_seen(p))
				port = p;
		}
		close(fd);
	}
	if (port > 0 && th_nports_used < TH_MAX_PORTS)
		th_ports_used[th_nports_used++] = port;
	pthread_mutex_unlock(&th_port_mu);
	return port;
}

char *th_tmpdir(const char *tag)
{
	char *path = gust_xasprintf("/tmp/gust-test-%s-XXXXXX", tag ? tag : "x");
	if (mkdtemp(path) == NULL) {
		free(path);
		return NULL;
	}
	return path;
}

static int th_rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

void th_rmdir(const char *dir)
{
	/* Only what th_tmpdir made: a slip here must not remove anything else. */
	if (dir == NULL || strncmp(dir, "/tmp/gust-test-", 15) != 0 || strstr(dir, "..") != NULL)
		return;
	nftw(dir, th_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool th_have(const char *prog)
{
	if (strchr(prog, '/') != NULL)
		return access(prog, X_OK) == 0;
	const char *path = getenv("PATH");
	if (path == NULL)
		path = "/usr/local/bin:/usr/bin:/bin";
	cleanup_free char *copy = gust_xstrdup(path);
	char *save = NULL;
	for (char *d = strtok_r(copy, ":", &save); d != NULL; d = strtok_r(NULL, ":", &save)) {
		cleanup_free char *f = gust_xasprintf("%s/%s", *d ? d : ".", prog);
		if (access(f, X_OK) == 0)
			return true;
	}
	return false;
}

int th_spawn(th_proc *p, const char *logfile, char *const argv[])
{
	memset(p, 0, sizeof(*p));
	const char *base = strrchr(argv[0], '/');
	snprintf(p->name, sizeof(p->name), "%s", base ? base + 1 : argv[0]);
	/* Everything that allocates happens before fork: the test may have threads. */
	int logfd =
	    open(logfile ? logfile : "/dev/null", O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (logfd < 0)
		return -1;
	int nullfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		close(logfd);
		if (nullfd >= 0)
			close(nullfd);
		return -1;
	}
	if (pid == 0) {
		/* The child dies with the thread that forked it: tests fork from main. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (nullfd >= 0)
			dup2(nullfd, 0);
		dup2(logfd, 1);
		dup2(logfd, 2);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(logfd);
	if (nullfd >= 0)
		close(nullfd);
	p->pid = pid;
	return 0;
}

static void th_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Reaps p if it has exited; true then. */
static bool th_reaped(th_proc *p)
{
	int st;
	pid_t r = waitpid(p->pid, &st, WNOHANG);
	if (r == p->pid || (r < 0 && errno == ECHILD)) {
		p->pid = 0;
		return true;
	}
	return false;
}

void th_stop(th_proc *p, int sig)
{
	if (p == NULL || p->pid <= 0)
		return;
	kill(p->pid, sig);
	for (int i = 0; i < 500; i++) {
		if (th_reaped(p))
			return;
		th_sleep_ms(10);
	}
	kill(p->pid, SIGKILL);
	int st;
	while (waitpid(p->pid, &st, 0) < 0 && errno == EINTR)
		;
	p->pid = 0;
}

int th_wait_tcp(int port, int timeout_ms)
{
	uint64_t deadline = gust_now_ms() + (uint64_t)timeout_ms;
	do {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return -1;
		struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		int rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
		close(fd);
		if (rc == 0)
			return 0;
		th_sleep_ms(20);
	} while (gust_now_ms() < deadline);
	return -1;
}

static size_t th_sink(char *p, size_t size, size_t nmemb, void *arg)
{
	gust_buf_append(arg, p, size * nmemb);
	return size * nmemb;
}

/* True when etcd's /health says it has a leader and serves. */
static bool th_etcd_healthy(int port)
{
	CURL *c = curl_easy_init();
	if (c == NULL)
		return false;
	gust_buf body = {0};
	cleanup_free char *url = gust_xasprintf("http://127.0.0.1:%d/health", port);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, th_sink);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 1000L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	long status = 0;
	bool ok = curl_easy_perform(c) == CURLE_OK &&
	          curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK &&
	          status == 200 && body.data != NULL && strstr(body.data, "\"true\"") != NULL;
	curl_easy_cleanup(c);
	gust_buf_free(&body);
	return ok;
}

/* Reads the ports of an etcd that ran on dir before; false if none did. */
static bool th_etcd_ports_load(const char *dir, int *client, int *peer)
{
	cleanup_free char *f = gust_xasprintf("%s/etcd.ports", dir);
	FILE *fp = fopen(f, "r");
	if (fp == NULL)
		return false;
	bool ok = fscanf(fp, "%d %d", client, peer) == 2;
	fclose(fp);
	return ok;
}

static void th_etcd_ports_save(const char *dir, int client, int peer)
{
	cleanup_free char *f = gust_xasprintf("%s/etcd.ports", dir);
	FILE *fp = fopen(f, "w");
	if (fp == NULL)
		return;
	fprintf(fp, "%d %d\n", client, peer);
	fclose(fp);
}

static int th_etcd_try(const char *dir, th_proc *p, int client, int peer)
{
	cleanup_free char *data = gust_xasprintf("%s/etcd-data", dir);
	cleanup_free char *log = gust_xasprintf("%s/etcd.log", dir);
	cleanup_free char *curl = gust_xasprintf("http://127.0.0.1:%d", client);
	cleanup_free char *purl = gust_xasprintf("http://127.0.0.1:%d", peer);
	cleanup_free char *cluster = gust_xasprintf("default=%s", purl);
	char *argv[] = {"etcd",    "--name",
	                "default", "--data-dir",
	                data,      "--listen-client-urls",
	                curl,      "--advertise-client-urls",
	                curl,      "--listen-peer-urls",
	                purl,      "--initial-advertise-peer-urls",
	                purl,      "--initial-cluster",
	                cluster,   "--logger",
	                "zap",     "--log-level",
	                "warn",    NULL};
	if (th_spawn(p, log, argv) != 0)
		return -1;
	uint64_t deadline = gust_now_ms() + 20000;
	while (gust_now_ms() < deadline) {
		if (th_reaped(p))
			return -1; /* it died: most likely a port was taken meanwhile */
		if (th_etcd_healthy(client))
			return 0;
		th_sleep_ms(50);
	}
	th_stop(p, SIGKILL);
	return -1;
}

int th_start_etcd(const char *dir, th_proc *p, int *client_port)
{
	memset(p, 0, sizeof(*p));
	if (!th_have("etcd"))
		return -1;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	int client, peer;
	if (th_etcd_ports_load(dir, &client, &peer)) {
		/* A restart: the same member must come back where clients expect it. */
		for (int tries = 0; tries < 3; tries++) {
			if (th_etcd_try(dir, p, client, peer) == 0) {
				*client_port = client;
				return 0;
			}
			th_sleep_ms(200);
		}
		return -1;
	}
	for (int tries = 0; tries < 3; tries++) {
		client = th_free_port();
		peer = th_free_port();
		if (client < 0 || peer < 0)
			return -1;
		if (th_etcd_try(dir, p, client, peer) == 0) {
			th_etcd_ports_save(dir, client, peer);
			*client_port = client;
			return 0;
		}
	}
	return -1;
}

int th_start_redis(const char *dir, th_proc *p, int *port)
{
	memset(p, 0, sizeof(*p));
	if (!th_have("redis-server"))
		return -1;
	cleanup_free char *log = gust_xasprintf("%s/redis.log", dir);
	for (int tries = 0; tries < 3; tries++) {
		int rp = th_free_port();
		if (rp < 0)
			return -1;
		char portstr[16];
		snprintf(portstr, sizeof(portstr), "%d", rp);
		char *argv[] = {"redis-server", "--port", portstr,        "--bind", "127.0.0.1",
		                "--save",       "",       "--appendonly", "no",     "--daemonize",
		                "no",           "--dir",  (char *)dir,    NULL};
		if (th_spawn(p, log, argv) != 0)
			return -1;
		uint64_t deadline = gust_now_ms() + 10000;
		while (gust_now_ms() < deadline) {
			if (th_reaped(p))
				break;
			if (th_wait_tcp(rp, 50) == 0) {
				*port = rp;
				return 0;
			}
		}
		th_stop(p, SIGKILL);
	}
	return -1;
}
