/* test_transport.c - mutual TLS on nng (common/transport.c) with real
 * certificates from deploy/gust-pki and real nng sockets on loopback: a
 * daemon refuses to start without TLS or with the wrong files, a listener
 * admits only the roles it was given (a valid certificate of another role
 * and a certificate from another PKI fail the handshake), a dialer accepts
 * only the role it dials, and plain tcp:// needs insecure_transport. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/transport.h"
#include "gust/util.h"
#include "harness.h"

static char *dir;     /* the cluster's PKI (gust-pki init) */
static char *foreign; /* another PKI: its certificates say the right roles */

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	return system(cmd);
}

static int group_setup(void **state)
{
	const char *src = getenv("GUST_SOURCE_DIR");
	if (src == NULL)
		src = "..";
	dir = th_tmpdir("pki");
	foreign = th_tmpdir("pki-foreign");
	if (dir == NULL || foreign == NULL)
		return -1;
	static const char *const issue[][2] = {
	    {"scheduler", "s1"}, {"invoker", "i1"}, {"gateway", "g1"}, {"trigger", "t1"}};
	if (sh("%s/deploy/gust-pki %s/p init >/dev/null && %s/deploy/gust-pki %s/p init "
	       ">/dev/null",
	       src, dir, src, foreign) != 0)
		return -1;
	for (size_t i = 0; i < 4; i++)
		if (sh("%s/deploy/gust-pki %s/p issue %s %s >/dev/null", src, dir, issue[i][0],
		       issue[i][1]) != 0 ||
		    sh("%s/deploy/gust-pki %s/p issue %s %s >/dev/null", src, foreign, issue[i][0],
		       issue[i][1]) != 0)
			return -1;
	/* the foreign scheduler's own CA, and our invoker's (public) CA */
	if (sh("mkdir %s/mix && cp %s/p/ca-scheduler.crt %s/mix/ && cp %s/p/ca-invoker.crt %s/mix/",
	       foreign, foreign, foreign, dir, foreign) != 0)
		return -1;
	return 0;
}

static int group_teardown(void **state)
{
	th_rmdir(dir);
	th_rmdir(foreign);
	free(dir);
	free(foreign);
	return 0;
}

/* A transport of `role` named name, from PKI root (dir or foreign). */
typedef struct tcfg {
	char cert[512], key[512], ca[512];
	gust_transport_cfg c;
} tcfg;

static gust_transport_cfg *cfg_of(tcfg *t, const char *root, const char *role, const char *name)
{
	snprintf(t->cert, sizeof(t->cert), "%s/p/%s-%s.crt", root, role, name);
	snprintf(t->key, sizeof(t->key), "%s/p/%s-%s.key", root, role, name);
	snprintf(t->ca, sizeof(t->ca), "%s/p", dir); /* the CAs a daemon trusts: ours */
	t->c = (gust_transport_cfg){.cert = t->cert, .key = t->key, .ca_dir = t->ca};
	return &t->c;
}

static gust_transport *open_ok(const char *root, const char *role, unsigned self, unsigned peers,
                               const char *name)
{
	tcfg t;
	gust_transport *tr = NULL;
	gust_error *err = NULL;
	int rv = gust_transport_open(cfg_of(&t, root, role, name), self, peers, &tr, &err);
	if (rv != 0)
		fail_msg("open %s: %s", name, gust_error_msg(err));
	return tr;
}

static void expect_open_fails(gust_transport_cfg *c, unsigned self, const char *needle)
{
	gust_transport *tr = NULL;
	gust_error *err = NULL;
	int rv = gust_transport_open(c, self, GUST_ROLE_SCHEDULER, &tr, &err);
	assert_int_not_equal(rv, 0);
	assert_null(tr);
	if (strstr(gust_error_msg(err), needle) == NULL)
		fail_msg("'%s' does not say '%s'", gust_error_msg(err), needle);
	gust_error_free(err);
}

static void test_needs_tls_or_insecure(void **state)
{
	char empty[1] = "";
	gust_transport_cfg c = {.cert = empty, .key = empty, .ca_dir = empty};
	expect_open_fails(&c, GUST_ROLE_INVOKER,
	                  "'transport_cert', 'transport_key' and 'transport_ca_dir'");
	expect_open_fails(&c, GUST_ROLE_INVOKER, "insecure_transport");
	tcfg t;
	cfg_of(&t, dir, "invoker", "i1");
	t.c.key = empty;
	expect_open_fails(&t.c, GUST_ROLE_INVOKER, "config key 'transport_key' is not set");
}

static void test_checks_its_own_files(void **state)
{
	tcfg t;
	/* a certificate of another role than the daemon's */
	expect_open_fails(cfg_of(&t, dir, "invoker", "i1"), GUST_ROLE_SCHEDULER,
	                  "is not a valid scheduler certificate");
	/* one of the right role from another PKI */
	expect_open_fails(cfg_of(&t, foreign, "scheduler", "s1"), GUST_ROLE_SCHEDULER,
	                  "is not a valid scheduler certificate");
	/* a key that is not the certificate's */
	cfg_of(&t, dir, "scheduler", "s1");
	snprintf(t.key, sizeof(t.key), "%s/p/invoker-i1.key", dir);
	expect_open_fails(&t.c, GUST_ROLE_SCHEDULER, "not the key of the certificate");
	/* a key other users can read */
	char copy[512];
	snprintf(copy, sizeof(copy), "%s/readable.key", dir);
	assert_int_equal(sh("cp %s/p/scheduler-s1.key %s && chmod 644 %s", dir, copy, copy), 0);
	cfg_of(&t, dir, "scheduler", "s1");
	snprintf(t.key, sizeof(t.key), "%s", copy);
	expect_open_fails(&t.c, GUST_ROLE_SCHEDULER, "chmod 600");
	/* a peer's CA missing from transport_ca_dir */
	char ca2[512];
	snprintf(ca2, sizeof(ca2), "%s/ca2", dir);
	assert_int_equal(sh("mkdir -p %s && cp %s/p/ca-scheduler.crt %s/", ca2, dir, ca2), 0);
	gust_transport *tr = NULL;
	gust_error *err = NULL;
	cfg_of(&t, dir, "scheduler", "s1");
	snprintf(t.ca, sizeof(t.ca), "%s", ca2);
	assert_int_not_equal(
	    gust_transport_open(&t.c, GUST_ROLE_SCHEDULER, GUST_ROLE_INVOKER, &tr, &err), 0);
	assert_non_null(strstr(gust_error_msg(err), "ca-invoker.crt"));
	gust_error_free(err);
	/* the right files open */
	gust_transport_close(
	    open_ok(dir, "scheduler", GUST_ROLE_SCHEDULER, GUST_ROLE_INVOKER, "s1"));
}

/* A rep socket listening on tls+tcp for `peers`, answering one request. */
typedef struct server {
	gust_transport *tr;
	nng_socket rep;
	char url[128];
} server;

static void server_start(server *s, const char *role, unsigned self, const char *name,
                         unsigned peers)
{
	s->tr = open_ok(dir, role, self, peers, name);
	assert_int_equal(nng_rep0_open(&s->rep), 0);
	nng_listener l;
	gust_error *err = NULL;
	int port = th_free_port();
	char want[128];
	snprintf(want, sizeof(want), "tls+tcp://127.0.0.1:%d", port);
	if (gust_transport_listen(s->tr, s->rep, want, peers, "listen", &l, &err) != 0)
		fail_msg("listen: %s", gust_error_msg(err));
	snprintf(s->url, sizeof(s->url), "%s", want);
	nng_socket_set_ms(s->rep, NNG_OPT_RECVTIMEO, 10000);
}

static void server_stop(server *s)
{
	nng_close(s->rep);
	gust_transport_close(s->tr);
}

/* Dials synchronously (flags 0: the handshake's result comes back) with a
 * certificate of role from PKI root, trusting `peer`; on success makes one
 * request and checks the answer. Returns the dial's result, 0 on success. */
static int call(server *s, const char *root, const char *role, unsigned self, const char *name,
                unsigned peer)
{
	tcfg t;
	gust_transport *tr = NULL;
	gust_error *err = NULL;
	cfg_of(&t, root, role, name);
	/* The foreign PKI's holder trusts our CAs (they are public), so what
	 * fails is our side's check of its certificate, not its check of ours. */
	if (root == foreign)
		snprintf(t.ca, sizeof(t.ca), "%s/mix", foreign);
	if (gust_transport_open(&t.c, self, peer, &tr, &err) != 0)
		fail_msg("open %s: %s", name, gust_error_msg(err));
	nng_socket req;
	assert_int_equal(nng_req0_open(&req), 0);
	int rv = gust_transport_dial(tr, req, s->url, peer, 0, NULL, &err);
	if (rv == 0) {
		nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, 10000);
		assert_int_equal(nng_send(req, "ping", 5, 0), 0);
		char *buf = NULL;
		size_t n = 0;
		assert_int_equal(nng_recv(s->rep, &buf, &n, NNG_FLAG_ALLOC), 0);
		assert_string_equal(buf, "ping");
		nng_free(buf, n);
		assert_int_equal(nng_send(s->rep, "pong", 5, 0), 0);
		assert_int_equal(nng_recv(req, &buf, &n, NNG_FLAG_ALLOC), 0);
		assert_string_equal(buf, "pong");
		nng_free(buf, n);
	} else {
		print_message("    %s (%s) refused: %s\n", name, role, gust_error_msg(err));
	}
	gust_error_free(err);
	nng_close(req);
	gust_transport_close(tr);
	return rv;
}

/* The invoker's listener: schedulers only. The role CA alone is the trust
 * anchor (the root is not in the listener's chain), which mbedTLS takes. */
static void test_listener_admits_only_its_roles(void **state)
{
	server s;
	server_start(&s, "invoker", GUST_ROLE_INVOKER, "i1", GUST_ROLE_SCHEDULER);
	assert_int_equal(call(&s, dir, "scheduler", GUST_ROLE_SCHEDULER, "s1", GUST_ROLE_INVOKER),
	                 0);
	assert_int_not_equal(call(&s, dir, "trigger", GUST_ROLE_TRIGGER, "t1", GUST_ROLE_INVOKER),
	                     0);
	assert_int_not_equal(call(&s, dir, "gateway", GUST_ROLE_GATEWAY, "g1", GUST_ROLE_INVOKER),
	                     0);
	assert_int_not_equal(call(&s, dir, "invoker", GUST_ROLE_INVOKER, "i1", GUST_ROLE_INVOKER),
	                     0);
	assert_int_not_equal(
	    call(&s, foreign, "scheduler", GUST_ROLE_SCHEDULER, "s1", GUST_ROLE_INVOKER), 0);
	/* and still the scheduler, after the refusals */
	assert_int_equal(call(&s, dir, "scheduler", GUST_ROLE_SCHEDULER, "s1", GUST_ROLE_INVOKER),
	                 0);
	server_stop(&s);

	/* the scheduler's request socket: gateways and trigger daemons */
	server_start(&s, "scheduler", GUST_ROLE_SCHEDULER, "s1",
	             GUST_ROLE_GATEWAY | GUST_ROLE_TRIGGER);
	assert_int_equal(call(&s, dir, "gateway", GUST_ROLE_GATEWAY, "g1", GUST_ROLE_SCHEDULER), 0);
	assert_int_equal(call(&s, dir, "trigger", GUST_ROLE_TRIGGER, "t1", GUST_ROLE_SCHEDULER), 0);
	assert_int_not_equal(call(&s, dir, "invoker", GUST_ROLE_INVOKER, "i1", GUST_ROLE_SCHEDULER),
	                     0);
	server_stop(&s);
}

/* A dialer checks the other end: a listener holding a valid certificate of
 * another role than the one dialed is refused (a fake invoker registered in
 * etcd with a gateway's certificate gets no activation). */
static void test_dialer_checks_the_peer_role(void **state)
{
	server s;
	server_start(&s, "gateway", GUST_ROLE_GATEWAY, "g1", GUST_ROLE_SCHEDULER);
	assert_int_not_equal(
	    call(&s, dir, "scheduler", GUST_ROLE_SCHEDULER, "s1", GUST_ROLE_INVOKER), 0);
	/* the same listener passes when the dialer expects its role */
	assert_int_equal(call(&s, dir, "scheduler", GUST_ROLE_SCHEDULER, "s1", GUST_ROLE_GATEWAY),
	                 0);
	server_stop(&s);
}

static void test_plain_tcp_needs_insecure(void **state)
{
	gust_transport *tr =
	    open_ok(dir, "scheduler", GUST_ROLE_SCHEDULER, GUST_ROLE_INVOKER, "s1");
	nng_socket sock;
	gust_error *err = NULL;
	assert_int_equal(nng_req0_open(&sock), 0);
	assert_int_equal(gust_transport_dial(tr, sock, "tcp://127.0.0.1:1", GUST_ROLE_INVOKER,
	                                     NNG_FLAG_NONBLOCK, NULL, &err),
	                 GUST_EPERM);
	assert_non_null(strstr(gust_error_msg(err), "insecure_transport"));
	gust_error_free(err);
	err = NULL;
	assert_int_not_equal(gust_transport_listen(tr, sock, "tcp://127.0.0.1:0", GUST_ROLE_INVOKER,
	                                           "status_listen", NULL, &err),
	                     0);
	assert_non_null(strstr(gust_error_msg(err), "config key 'status_listen'"));
	gust_error_free(err);
	err = NULL;
	nng_close(sock);
	gust_transport_close(tr);

	/* insecure_transport without files: tcp:// works, tls+tcp:// is refused */
	char empty[1] = "";
	gust_transport_cfg c = {.cert = empty, .key = empty, .ca_dir = empty, .insecure = true};
	assert_int_equal(gust_transport_open(&c, GUST_ROLE_INVOKER, GUST_ROLE_SCHEDULER, &tr, &err),
	                 0);
	nng_socket rep, req;
	assert_int_equal(nng_rep0_open(&rep), 0);
	assert_int_equal(nng_req0_open(&req), 0);
	nng_listener l;
	assert_int_equal(gust_transport_listen(tr, rep, "tcp://127.0.0.1:0", GUST_ROLE_SCHEDULER,
	                                       "listen", &l, &err),
	                 0);
	int port = 0;
	assert_int_equal(nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port), 0);
	char url[64];
	snprintf(url, sizeof(url), "tcp://127.0.0.1:%d", port);
	assert_int_equal(gust_transport_dial(tr, req, url, GUST_ROLE_INVOKER, 0, NULL, &err), 0);
	assert_int_not_equal(gust_transport_listen(tr, rep, "tls+tcp://127.0.0.1:0",
	                                           GUST_ROLE_SCHEDULER, "listen", NULL, &err),
	                     0);
	assert_non_null(strstr(gust_error_msg(err), "transport_cert"));
	gust_error_free(err);
	nng_close(req);
	nng_close(rep);
	gust_transport_close(tr);
}

static void test_roles_parse(void **state)
{
	unsigned m = 0;
	gust_error *err = NULL;
	assert_int_equal(gust_roles_parse("scheduler,gateway", "listen_peers", &m, &err), 0);
	assert_int_equal(m, GUST_ROLE_SCHEDULER | GUST_ROLE_GATEWAY);
	assert_int_not_equal(gust_roles_parse("scheduler,admin", "listen_peers", &m, &err), 0);
	assert_non_null(strstr(gust_error_msg(err), "'admin' is not a role"));
	gust_error_free(err);
	err = NULL;
	assert_int_not_equal(gust_roles_parse("", "listen_peers", &m, &err), 0);
	gust_error_free(err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_needs_tls_or_insecure),
	    cmocka_unit_test(test_checks_its_own_files),
	    cmocka_unit_test(test_listener_admits_only_its_roles),
	    cmocka_unit_test(test_dialer_checks_the_peer_role),
	    cmocka_unit_test(test_plain_tcp_needs_insecure),
	    cmocka_unit_test(test_roles_parse),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
