/* transport_bench.c - what mutual TLS costs an nng round trip, in one process.
 *
 *   gust-bench-transport PKI_DIR [round_trips] [bytes]
 *
 * PKI_DIR is a deploy/gust-pki directory with certificates scheduler-bench
 * and invoker-bench (gust-pki DIR issue scheduler bench; ... invoker bench).
 * A req socket
 * (scheduler certificate) and a rep socket (invoker certificate) exchange
 * `bytes`-sized messages, one round trip at a time, first over tcp:// (with
 * insecure_transport) and then over tls+tcp://, and the bench prints the
 * wall and CPU time (user + system, this process) and the context switches
 * per round trip of each, so the difference is what TLS adds per two
 * messages: mbedTLS's record encryption and nng's TLS stream layer. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "gust/transport.h"
#include "gust/util.h"

typedef struct echo {
	nng_socket rep;
	int n;
} echo;

static void *echo_main(void *arg)
{
	echo *e = arg;
	for (int i = 0; i < e->n; i++) {
		nng_msg *m;
		if (nng_recvmsg(e->rep, &m, 0) != 0)
			return NULL;
		if (nng_sendmsg(e->rep, m, 0) != 0)
			nng_msg_free(m);
	}
	return NULL;
}

/* CPU seconds of this process; *csw: its context switches (voluntary and
 * not): each is a hand-off between nng's threads or a preemption. */
static double cpu_s(long *csw)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*csw = ru.ru_nvcsw + ru.ru_nivcsw;
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static double wall_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run(const char *what, gust_transport *srv, gust_transport *cli, const char *scheme,
               int n, size_t bytes)
{
	nng_socket rep, req;
	nng_listener l;
	gust_error *err = NULL;
	char url[128];
	snprintf(url, sizeof(url), "%s://127.0.0.1:0", scheme);
	if (nng_rep0_open(&rep) != 0 || nng_req0_open(&req) != 0 ||
	    gust_transport_listen(srv, rep, url, GUST_ROLE_SCHEDULER, "listen", &l, &err) != 0) {
		fprintf(stderr, "listen: %s\n", err ? gust_error_msg(err) : "nng");
		return 1;
	}
	int port = 0;
	nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
	snprintf(url, sizeof(url), "%s://127.0.0.1:%d", scheme, port);
	if (gust_transport_dial(cli, req, url, GUST_ROLE_INVOKER, 0, NULL, &err) != 0) {
		fprintf(stderr, "dial: %s\n", gust_error_msg(err));
		return 1;
	}
	int warm = n / 10 + 1;
	echo e = {.rep = rep, .n = n + warm};
	pthread_t th;
	pthread_create(&th, NULL, echo_main, &e);
	char *buf = gust_xcalloc(1, bytes);
	double w0 = 0, c0 = 0;
	long s0 = 0, s1 = 0;
	for (int i = 0; i < n + warm; i++) {
		if (i == warm) {
			w0 = wall_s();
			c0 = cpu_s(&s0);
		}
		nng_msg *m;
		nng_msg_alloc(&m, 0);
		nng_msg_append(m, buf, bytes);
		if (nng_sendmsg(req, m, 0) != 0 || nng_recvmsg(req, &m, 0) != 0) {
			fprintf(stderr, "round trip %d failed\n", i);
			return 1;
		}
		nng_msg_free(m);
	}
	double w = wall_s() - w0, c = cpu_s(&s1) - c0;
	pthread_join(th, NULL);
	printf("%-8s %7d round trips of %zu bytes: %7.1f us wall, %7.1f us CPU, %5.1f context "
	       "switches per round trip\n",
	       what, n, bytes, w / n * 1e6, c / n * 1e6, (double)(s1 - s0) / n);
	free(buf);
	nng_close(req);
	nng_close(rep);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s PKI_DIR [round_trips] [bytes]\n", argv[0]);
		return 2;
	}
	const char *dir = argv[1];
	int n = argc > 2 ? atoi(argv[2]) : 20000;
	size_t bytes = argc > 3 ? (size_t)atol(argv[3]) : 1024;
	char path[2][3][512];
	const char *roles[2] = {"scheduler", "invoker"};
	gust_transport *t[2] = {NULL, NULL};
	for (int i = 0; i < 2; i++) {
		snprintf(path[i][0], sizeof(path[i][0]), "%s/%s-bench.crt", dir, roles[i]);
		snprintf(path[i][1], sizeof(path[i][1]), "%s/%s-bench.key", dir, roles[i]);
		snprintf(path[i][2], sizeof(path[i][2]), "%s", dir);
		gust_transport_cfg c = {
		    .cert = path[i][0], .key = path[i][1], .ca_dir = path[i][2], .insecure = true};
		gust_error *err = NULL;
		unsigned self = i == 0 ? GUST_ROLE_SCHEDULER : GUST_ROLE_INVOKER;
		unsigned peer = i == 0 ? GUST_ROLE_INVOKER : GUST_ROLE_SCHEDULER;
		if (gust_transport_open(&c, self, peer, &t[i], &err) != 0) {
			fprintf(stderr, "%s\n", gust_error_msg(err));
			return 1;
		}
	}
	/* t[1] (invoker) listens for schedulers; t[0] (scheduler) dials it. */
	for (int round = 0; round < 3; round++) {
		if (run("tcp", t[1], t[0], "tcp", n, bytes) != 0 ||
		    run("tls+tcp", t[1], t[0], "tls+tcp", n, bytes) != 0)
			return 1;
	}
	gust_transport_close(t[0]);
	gust_transport_close(t[1]);
	return 0;
}
