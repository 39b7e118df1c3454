/*
 * sandbox_bench.c - sandbox costs beside baselines measured in the same run:
 *   fork+exec of /bin/true, a bare clone with the sandbox's namespaces, and a
 *   pipe round trip to a warm process; against sandbox creations per second,
 *   cold starts per runtime with and without a stem cell, and the warm round
 *   trip through the action-loop protocol. Built and run by bench/sandbox_bench.sh
 *   (needs root; uses the cgroup back-end the invoker would pick, and a user
 *   namespace).
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cgroup.h"
#include "gust/util.h"
#include "sandbox.h"

static const char *b_rtdir;
static char b_state[] = "/tmp/gust-bench-XXXXXX";
static inv_cgroups *b_cg;
static inv_netns_pool *b_netns; /* as the invoker: network namespaces made ahead */
static bool b_defer;            /* as the invoker's cold path: init behind the exec */
static const char *b_launcher;  /* native: the C launcher, or NULL for the script */
static char *b_native_b64;      /* the native echo action, base64 */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

static void report(const char *what, uint64_t *us, int n, uint64_t total_us)
{
	qsort(us, (size_t)n, sizeof(*us), cmp_u64);
	printf("| %s | %d | %.4f | %.4f | %.0f |\n", what, n, us[n / 2] / 1000.0,
	       us[(n * 99) / 100] / 1000.0, n * 1e6 / (double)total_us);
	fflush(stdout);
}

/* Warm round trips are a few microseconds: timed in nanoseconds. */
static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void report_ns(const char *what, uint64_t *ns, int n, uint64_t total_ns)
{
	qsort(ns, (size_t)n, sizeof(*ns), cmp_u64);
	printf("| %s | %d | %.4f | %.4f | %.0f |\n", what, n, ns[n / 2] / 1e6,
	       ns[(n * 99) / 100] / 1e6, n * 1e9 / (double)total_ns);
	fflush(stdout);
}

static int b_child(void *arg)
{
	(void)arg;
	return 0;
}

/* A warm process at the end of two pipes: one line in, the same line out.
 * argv[0] == NULL: a forked C loop; else that program. */
static void b_pipe_rtt(const char *what, const char *const *argv, uint64_t *us, int n)
{
	int in[2], out[2];
	if (pipe(in) < 0 || pipe(out) < 0)
		abort();
	pid_t p = fork();
	if (p == 0) {
		close(in[1]);
		close(out[0]);
		if (argv[0] != NULL) {
			dup2(in[0], 0);
			dup2(out[1], 1);
			execv(argv[0], (char *const *)argv);
			_exit(127);
		}
		char buf[4096];
		ssize_t r;
		while ((r = read(in[0], buf, sizeof(buf))) > 0)
			if (write(out[1], buf, (size_t)r) != r)
				_exit(1);
		_exit(0);
	}
	close(in[0]);
	close(out[1]);
	const char *msg = "{\"value\":{\"x\":1}}\n";
	char buf[256];
	/* Warm it up (an interpreter's start) before timing. */
	uint64_t t0 = 0;
	for (int i = 0; i < n * 10 + 100; i++) {
		if (i == 100)
			t0 = now_ns();
		uint64_t s = now_ns();
		if (write(in[1], msg, strlen(msg)) < 0)
			abort();
		size_t got = 0;
		while (got < strlen(msg)) {
			ssize_t r = read(out[0], buf + got, sizeof(buf) - got);
			if (r <= 0)
				abort();
			got += (size_t)r;
		}
		if (i >= 100 && (i - 100) % 10 == 0)
			us[(i - 100) / 10] = now_ns() - s;
	}
	report_ns(what, us, n, (now_ns() - t0) / 10);
	close(in[1]);
	waitpid(p, NULL, 0);
	close(out[0]);
}

static void bench_baselines(int n)
{
	uint64_t *us = calloc((size_t)n, sizeof(*us));
	uint64_t t0 = gust_now_us();
	for (int i = 0; i < n; i++) {
		uint64_t s = gust_now_us();
		pid_t p = fork();
		if (p == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		waitpid(p, NULL, 0);
		us[i] = gust_now_us() - s;
	}
	report("baseline: fork+exec /bin/true+wait", us, n, gust_now_us() - t0);

	char *stack = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	int flags = CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET |
	            CLONE_NEWUSER | CLONE_NEWCGROUP | SIGCHLD;
	t0 = gust_now_us();
	for (int i = 0; i < n; i++) {
		uint64_t s = gust_now_us();
		pid_t p = clone(b_child, stack + 65536, flags, NULL);
		waitpid(p, NULL, 0);
		us[i] = gust_now_us() - s;
	}
	report("baseline: bare clone, same namespaces (incl. net, user), no exec", us, n,
	       gust_now_us() - t0);
	munmap(stack, 65536);

	free(us);
}

static inv_sandbox *b_create(const char *kind)
{
	inv_sandbox_cfg cfg = {.kind = kind,
	                       .runtime_dir = b_rtdir,
	                       .state_dir = b_state,
	                       .memory_mb = 256,
	                       .cgroups = b_cg,
	                       .userns_base = 0x70000000u,
	                       .userns_slots = 1024, /* as the invoker: a host id range per sandbox */
	                       .native_launcher = b_launcher,
	                       .netns = b_netns,
	                       .defer_ready = b_defer};
	inv_sandbox *sb = NULL;
	gust_error *err = NULL;
	if (inv_sandbox_create(&cfg, &sb, &err) != 0) {
		fprintf(stderr, "create %s: %s\n", kind, gust_error_msg(err));
		exit(1);
	}
	return sb;
}

static void b_init_run(inv_sandbox *sb, const char *code)
{
	inv_run_result r = {0};
	bool bin = code == b_native_b64;
	if (inv_sandbox_init(sb, code, strlen(code), "main", bin, NULL, 10000, NULL, NULL) != 0)
		abort();
	const char *line = "{\"value\":{\"x\":1},\"env\":{}}";
	inv_sandbox_run(sb, line, strlen(line), gust_wall_ms() + 10000, &r);
	if (r.status != INV_RUN_SUCCESS)
		abort();
	inv_run_result_clear(&r);
}

static const char *b_code(const char *kind)
{
	return strncmp(kind, "python", 6) == 0 ? "def main(a):\n    return a\n"
	                                       : "function main(a) { return a; }\n";
}

static char *b_base64_file(const char *path)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	gust_buf in = {0}, out = {0};
	char buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		gust_buf_append(&in, buf, n);
	fclose(f);
	const unsigned char *p = (const unsigned char *)in.data;
	for (size_t i = 0; i < in.len; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < in.len ? (unsigned)p[i + 1] << 8 : 0) |
		             (i + 2 < in.len ? p[i + 2] : 0);
		char q[4] = {tab[v >> 18], tab[(v >> 12) & 63],
		             i + 1 < in.len ? tab[(v >> 6) & 63] : '=',
		             i + 2 < in.len ? tab[v & 63] : '='};
		gust_buf_append(&out, q, 4);
	}
	gust_buf_free(&in);
	return gust_buf_steal(&out);
}

/* n cold starts of the native echo action with launcher (NULL: the script)
 * and defer_ready as given, reported as what. */
static void b_cold_native(const char *what, const char *launcher, bool defer, uint64_t *us, int n)
{
	b_launcher = launcher;
	b_defer = defer;
	uint64_t t0 = gust_now_us();
	for (int i = 0; i < n; i++) {
		uint64_t s = gust_now_us();
		inv_sandbox *sb = b_create("native");
		b_init_run(sb, b_native_b64);
		us[i] = gust_now_us() - s;
		inv_sandbox_destroy(sb);
	}
	b_defer = false;
	report(what, us, n, gust_now_us() - t0);
}

/* Native cold starts: the script launcher (a Python start) against the C
 * one, and the C one from a stem cell. */
static void bench_native(int n)
{
	const char *c_launcher = getenv("GUST_NATIVE_LAUNCHER");
	const char *action = getenv("GUST_BENCH_NATIVE_ACTION");
	if (c_launcher == NULL || action == NULL || (b_native_b64 = b_base64_file(action)) == NULL)
		return;
	uint64_t *us = calloc((size_t)n, sizeof(*us));
	/* The script launcher, the C one as the invoker's cold path runs it
	 * (init written behind the exec), and the C one waiting for the exec. */
	const char *launchers[] = {NULL, c_launcher, c_launcher};
	const char *rows[] = {
	    "cold start native, script launcher, no stem cell (create+init+run)",
	    "cold start native, C launcher, no stem cell (create+init+run)",
	    "cold start native, C launcher, no stem cell, init only after the exec is seen"};
	for (int k = 0; k < 3; k++)
		b_cold_native(rows[k], launchers[k], k < 2, us, n);
	/* A running invoker holds about 100 MB of heap (110 MB RSS seen in the
	 * test cluster): the same cold start from a process that size. */
	size_t heap_mb = 100;
	char *heap = malloc(heap_mb << 20);
	memset(heap, 1, heap_mb << 20);
	b_cold_native(
	    "cold start native, C launcher, no stem cell, from a process with 100 MB of dirty heap",
	    c_launcher, true, us, n);
	free(heap);

	uint64_t tot = 0;
	for (int i = 0; i < n; i++) {
		inv_sandbox *sb = b_create("native");
		usleep(20 * 1000);
		uint64_t s = gust_now_us();
		if (inv_sandbox_adopt(sb, 128, 0, 0, NULL) != 0)
			abort();
		b_init_run(sb, b_native_b64);
		us[i] = gust_now_us() - s;
		tot += us[i];
		inv_sandbox_destroy(sb);
	}
	report("cold start native, C launcher, from a stem cell (adopt+init+run)", us, n, tot);

	/* From here on native sandboxes use the C launcher, as the invoker does. */
	b_launcher = c_launcher;
	free(us);
}

static void *b_churn(void *arg)
{
	int n = *(int *)arg;
	for (int i = 0; i < n; i++)
		inv_sandbox_destroy(b_create("native"));
	return NULL;
}

/* Creations per second as an invoker makes them: a burst of n in a row (kept
 * alive, destroyed afterwards: the pool of prepared network namespaces is
 * soon empty), then several worker threads at once (here one per CPU), each
 * creating and destroying. */
static void bench_churn(int n)
{
	inv_sandbox **sbs = calloc((size_t)n, sizeof(*sbs));
	uint64_t b0 = gust_now_us();
	for (int i = 0; i < n; i++)
		sbs[i] = b_create("native");
	double bs = (gust_now_us() - b0) / 1e6;
	for (int i = 0; i < n; i++)
		inv_sandbox_destroy(sbs[i]);
	free(sbs);
	printf(
	    "| sandbox creations (native, to launcher ready), %d in a row, destroyed after | %d | "
	    "| | %.0f |\n",
	    n, n, n / bs);

	pthread_t th[2];
	int per = n;
	uint64_t t0 = gust_now_us();
	for (int i = 0; i < 2; i++)
		pthread_create(&th[i], NULL, b_churn, &per);
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	double s = (gust_now_us() - t0) / 1e6;
	printf("| sandbox creations (native, to launcher ready) and destructions, 2 threads | %d | "
	       "| | %.0f |\n",
	       2 * n, 2 * n / s);
	fflush(stdout);
}

static void bench_sandboxes(int n)
{
	uint64_t *us = calloc((size_t)n, sizeof(*us));
	const char *kinds[] = {"native", "python:3", "nodejs:20"};
	/* Creations: namespaces, cgroup, root, launcher exec'd and ready. */
	for (int k = 0; k < 3; k++) {
		uint64_t t0 = gust_now_us();
		for (int i = 0; i < n; i++) {
			uint64_t s = gust_now_us();
			inv_sandbox *sb = b_create(kinds[k]);
			us[i] = gust_now_us() - s;
			inv_sandbox_destroy(sb);
		}
		char what[128];
		snprintf(what, sizeof(what),
		         "sandbox create (to launcher ready), %s; /s incl. destroy", kinds[k]);
		report(what, us, n, gust_now_us() - t0);
	}
	for (int k = 1; k < 3; k++) {
		int m = n / 2;
		uint64_t t0 = gust_now_us();
		b_defer = true;
		for (int i = 0; i < m; i++) {
			uint64_t s = gust_now_us();
			inv_sandbox *sb = b_create(kinds[k]);
			b_init_run(sb, b_code(kinds[k]));
			us[i] = gust_now_us() - s;
			inv_sandbox_destroy(sb);
		}
		b_defer = false;
		char what[128];
		snprintf(what, sizeof(what), "cold start %s, no stem cell (create+init+run)",
		         kinds[k]);
		report(what, us, m, gust_now_us() - t0);
		t0 = 0;
		for (int i = 0; i < m; i++) {
			/* The stem cell, made ahead: in the invoker it has long finished
			 * starting its interpreter when it is adopted. */
			inv_sandbox *sb = b_create(kinds[k]);
			usleep(300 * 1000);
			uint64_t s = gust_now_us();
			if (inv_sandbox_adopt(sb, 128, 0, 0, NULL) != 0)
				abort();
			b_init_run(sb, b_code(kinds[k]));
			us[i] = gust_now_us() - s;
			t0 += us[i];
			inv_sandbox_destroy(sb);
		}
		snprintf(what, sizeof(what), "cold start %s from a stem cell (adopt+init+run)",
		         kinds[k]);
		report(what, us, m, t0);
	}
	free(us);
}

static void b_warm_sandbox(const char *what, const char *kind, const char *code, uint64_t *us,
                           int n)
{
	inv_sandbox *sb = b_create(kind);
	b_init_run(sb, code);
	const char *line = "{\"value\":{\"x\":1},\"env\":{}}";
	uint64_t t0 = 0;
	for (int i = 0; i < n * 10 + 100; i++) {
		if (i == 100)
			t0 = now_ns();
		inv_run_result r = {0};
		uint64_t s = now_ns();
		inv_sandbox_run(sb, line, strlen(line), gust_wall_ms() + 10000, &r);
		if (r.status != INV_RUN_SUCCESS)
			abort();
		if (i >= 100 && (i - 100) % 10 == 0)
			us[(i - 100) / 10] = now_ns() - s;
		inv_run_result_clear(&r);
	}
	report_ns(what, us, n, (now_ns() - t0) / 10);
	inv_sandbox_destroy(sb);
}

/* The idle freezer's cost on the activation's path: a warm round trip to a
 * sandbox that was frozen while idle (thaw, then the run) beside one to a
 * sandbox that never was, and the thaw write alone. The freeze itself is
 * off the path (the invoker's freezer thread) and not timed; a 2 ms pause
 * after it lets the tasks reach the frozen state, as they would during
 * freeze_idle_ms of idleness. */
static void bench_freeze(int n)
{
	uint64_t *us = calloc((size_t)n, sizeof(*us));
	uint64_t *thaw = calloc((size_t)n, sizeof(*thaw));
	const char *kinds[] = {"python:3", "nodejs:20"};
	for (size_t k = 0; k < 2; k++) {
		inv_sandbox *sb = b_create(kinds[k]);
		b_init_run(sb, b_code(kinds[k]));
		const char *line = "{\"value\":{\"x\":1},\"env\":{}}";
		for (int frozen = 0; frozen <= 1; frozen++) {
			uint64_t total = 0;
			for (int i = 0; i < n; i++) {
				if (frozen) {
					if (inv_sandbox_freeze(sb, true, NULL) != 0)
						abort();
				}
				struct timespec ts = {0, 2 * 1000 * 1000};
				nanosleep(&ts, NULL);
				inv_run_result r = {0};
				uint64_t s = now_ns();
				if (frozen && inv_sandbox_freeze(sb, false, NULL) != 0)
					abort();
				thaw[i] = now_ns() - s;
				inv_sandbox_run(sb, line, strlen(line), gust_wall_ms() + 10000, &r);
				if (r.status != INV_RUN_SUCCESS)
					abort();
				us[i] = now_ns() - s;
				total += us[i];
				inv_run_result_clear(&r);
			}
			char what[160];
			snprintf(what, sizeof(what), "warm round trip %s after 2 ms idle, %s",
			         kinds[k],
			         frozen ? "frozen and thawed (thaw + run)" : "not frozen");
			report_ns(what, us, n, total);
			if (frozen) {
				snprintf(what, sizeof(what), "  of which the thaw write (%s)",
				         kinds[k]);
				report_ns(what, thaw, n, total);
			}
		}
		inv_sandbox_destroy(sb);
	}
	free(us);
	free(thaw);
}

/* Warm round trips beside plain pipe round trips to warm processes, first
 * with both ends on one CPU (affinity is inherited by the sandbox, so the
 * invoker side, the launcher and the action share it), then unpinned, where
 * the scheduler may put the two ends on different CPUs (a cross-CPU wakeup
 * costs about 25 us here). */
static void bench_warm(int n)
{
	uint64_t *us = calloc((size_t)n, sizeof(*us));
	const char *c_echo[] = {NULL};
	const char *py_echo[] = {"/usr/bin/python3", "-u", "-c",
	                         "import sys\nfor l in sys.stdin.buffer:\n"
	                         "    sys.stdout.buffer.write(l)\n",
	                         NULL};
	const char *node_echo[] = {"/usr/bin/node", "-e",
	                           "process.stdin.on('data', (d) => process.stdout.write(d))",
	                           NULL};
	/* The same, parsing and printing the JSON line as a runtime must. */
	const char *py_json[] = {"/usr/bin/python3", "-u", "-c",
	                         "import sys, json\nfor l in sys.stdin.buffer:\n"
	                         "    sys.stdout.buffer.write(json.dumps(json.loads(l), "
	                         "separators=(',', ':')).encode() + b'\\n')\n",
	                         NULL};
	const char *node_json[] = {
	    "/usr/bin/node", "-e",
	    "let p = ''; process.stdin.setEncoding('utf8'); process.stdin.on('data', (d) => "
	    "{ p += d; let i; while ((i = p.indexOf('\\n')) >= 0) { const l = p.slice(0, i); "
	    "p = p.slice(i + 1); process.stdout.write(JSON.stringify(JSON.parse(l)) + '\\n'); } "
	    "});",
	    NULL};
	cpu_set_t all, one;
	sched_getaffinity(0, sizeof(all), &all);
	CPU_ZERO(&one);
	CPU_SET(0, &one);
	for (int pin = 1; pin >= 0; pin--) {
		sched_setaffinity(0, sizeof(pin ? one : all), pin ? &one : &all);
		const char *tag = pin ? "one CPU" : "unpinned";
		char what[160];
		snprintf(what, sizeof(what),
		         "baseline: pipe round trip to a warm process, C echo (%s)", tag);
		b_pipe_rtt(what, c_echo, us, n);
		if (b_native_b64 != NULL) {
			b_launcher = getenv("GUST_NATIVE_LAUNCHER");
			snprintf(what, sizeof(what), "warm round trip native, C echo action (%s)",
			         tag);
			b_warm_sandbox(what, "native", b_native_b64, us, n);
			b_launcher = NULL;
		}
		snprintf(what, sizeof(what),
		         "baseline: pipe round trip to a warm python3 process, echo (%s)", tag);
		b_pipe_rtt(what, py_echo, us, n);
		snprintf(what, sizeof(what),
		         "baseline: the same python3, parsing and printing the JSON line (%s)",
		         tag);
		b_pipe_rtt(what, py_json, us, n);
		snprintf(what, sizeof(what), "warm round trip python:3 (%s)", tag);
		b_warm_sandbox(what, "python:3", b_code("python:3"), us, n);
		snprintf(what, sizeof(what),
		         "baseline: pipe round trip to a warm node process, echo (%s)", tag);
		b_pipe_rtt(what, node_echo, us, n);
		snprintf(what, sizeof(what),
		         "baseline: the same node, parsing and printing the JSON line (%s)", tag);
		b_pipe_rtt(what, node_json, us, n);
		snprintf(what, sizeof(what), "warm round trip nodejs:20 (%s)", tag);
		b_warm_sandbox(what, "nodejs:20", b_code("nodejs:20"), us, n);
	}
	free(us);
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 200;
	signal(SIGPIPE, SIG_IGN);
	b_rtdir = getenv("GUST_RUNTIME_DIR");
	if (b_rtdir == NULL || mkdtemp(b_state) == NULL)
		return 2;
	char tag[64];
	snprintf(tag, sizeof(tag), "bench-%d", (int)getpid());
	const char *cgmode = getenv("GUST_BENCH_CGROUP"); /* auto, v1, v2 */
	if (inv_cgroups_open(cgmode != NULL ? cgmode : "auto", tag, &b_cg, NULL) != 0)
		return 2;
	gust_error *e = NULL;
	bool dyn = inv_cgroups_favor_dynmods(&e) == 0;
	if (inv_netns_pool_open(4, b_state, &b_netns, NULL) != 0)
		return 2;
	printf("cgroups %s (favordynmods %s), user namespace on, network namespaces made ahead "
	       "(pool of 4), n=%d\n\n",
	       inv_cgroups_backend(b_cg), dyn ? "on" : gust_error_msg(e), n);
	printf("| what | n | p50 ms | p99 ms | per s |\n|---|---|---|---|---|\n");
	/* GUST_BENCH_ONLY=warm: the warm round trips alone (a quick re-check);
	 * =freeze: the freezer's cost alone. */
	const char *only = getenv("GUST_BENCH_ONLY");
	if (only != NULL && strcmp(only, "freeze") == 0) {
		bench_freeze(n);
		inv_netns_pool_close(b_netns);
		inv_cgroups_close(b_cg);
		char cmd[128];
		snprintf(cmd, sizeof(cmd), "rm -rf %s", b_state);
		return system(cmd) == 0 ? 0 : 1;
	}
	bool all = only == NULL || strcmp(only, "warm") != 0;
	if (all) {
		bench_baselines(n);
		bench_native(n / 2);
		bench_sandboxes(n);
		bench_churn(n);
	} else if (getenv("GUST_BENCH_NATIVE_ACTION") != NULL) {
		b_native_b64 = b_base64_file(getenv("GUST_BENCH_NATIVE_ACTION"));
	}
	bench_warm(n);
	free(b_native_b64);
	uint64_t taken = 0, missed = 0;
	inv_netns_pool_counts(b_netns, &taken, &missed);
	printf("\nprepared network namespaces: %llu taken, %llu sandboxes found none ready\n",
	       (unsigned long long)taken, (unsigned long long)missed);
	inv_netns_pool_close(b_netns);
	inv_cgroups_close(b_cg);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", b_state);
	return system(cmd) == 0 ? 0 : 1;
}
