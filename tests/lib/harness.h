/*
 * harness.h - what C tests need to run real servers: free loopback ports, temp
 * dirs, child processes that are always reaped, and etcd / Redis started on free
 * ports in a temp dir (nng's nuts_next_port idea).
 */
#ifndef GUST_TEST_HARNESS_H
#define GUST_TEST_HARNESS_H

#include <stdbool.h>
#include <sys/types.h>

/* A free TCP port on 127.0.0.1 (bound then released; never reused within a run). */
int th_free_port(void);

/* mkdtemp("/tmp/gust-test-<tag>-XXXXXX"); heap path. */
char *th_tmpdir(const char *tag);
/* rm -rf of a dir made by th_tmpdir. */
void th_rmdir(const char *dir);

typedef struct th_proc {
	pid_t pid;
	char name[64];
} th_proc;

/* Starts argv[0] (PATH lookup) with stdout+stderr appended to logfile. The child
 * dies with the test (PR_SET_PDEATHSIG). */
int th_spawn(th_proc *p, const char *logfile, char *const argv[]);
/* Sends sig, waits for the process to exit (SIGKILL after 5 s). Safe if not running. */
void th_stop(th_proc *p, int sig);

/* Waits until 127.0.0.1:port accepts a connection; 0 or -1 after timeout_ms. */
int th_wait_tcp(int port, int timeout_ms);

/* Starts etcd with its data under dir on a free client port; waits until it
 * serves. Returns 0, or 77-worthy -1 when etcd is not installed. */
int th_start_etcd(const char *dir, th_proc *p, int *client_port);
int th_start_redis(const char *dir, th_proc *p, int *port);

/* True if the binary is on PATH. */
bool th_have(const char *prog);

#endif
