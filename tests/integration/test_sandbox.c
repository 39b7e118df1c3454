/*
 * test_sandbox.c - real sandboxes (namespaces, mounts, the python and node
 * launchers) driven through invoker/sandbox.h: the action-loop protocol, logs,
 * errors, time limits, isolation as seen from inside, zip actions, the native
 * kind, and rough cold/warm timings (printed, not asserted). Needs root.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "gust/util.h"
#include "harness.h"
#include "sandbox.h"

static char *t_state;       /* state dir: sandboxes are made under it */
static int t_nfds;          /* fds open before the first sandbox */
static const char *t_rtdir; /* the launchers */

/* One language's actions, so that every test runs for python and node alike. */
typedef struct t_lang {
	const char *kind;
	const char *hello;   /* prints "hi <name> <activation id>", returns the payload */
	const char *raise;   /* throws "boom" */
	const char *syntax;  /* does not compile */
	const char *sleep;   /* sleeps 5 s */
	const char *die;     /* exits the process with status 1 */
	const char *probe;   /* reports what it sees of the sandbox */
	const char *chatty;  /* prints args.n lines of "line-<i>" */
	const char *notdict; /* returns a string */
} t_lang;

static const t_lang t_python = {
    .kind = "python:3",
    .hello = "import os\n"
             "def main(args):\n"
             "    print('hi', args.get('name'), os.environ.get('__OW_ACTIVATION_ID'))\n"
             "    return {'payload': 'hello ' + args.get('name', 'stranger')}\n",
    .raise = "def main(args):\n    raise ValueError('boom')\n",
    .syntax = "def main(args:\n    return {}\n",
    .sleep = "import time\n"
             "def main(args):\n    print('going to sleep')\n    time.sleep(5)\n    return {}\n",
    .die = "import os\ndef main(args):\n    os._exit(1)\n",
    .probe = "import os, socket\n"
             "def main(args):\n"
             "    r = {'pid': os.getpid(), 'uid': os.getuid(), 'gid': os.getgid()}\n"
             "    r['procs'] = sorted(int(d) for d in os.listdir('/proc') if d.isdigit())\n"
             "    r['hostname'] = socket.gethostname()\n"
             "    r['shadow'] = os.path.exists('/etc/shadow')\n"
             "    r['passwd'] = open('/etc/passwd').read()\n"
             "    def writable(p):\n"
             "        try:\n"
             "            with open(p, 'w') as f: f.write('x')\n"
             "            return True\n"
             "        except OSError:\n"
             "            return False\n"
             "    r['usr_write'] = writable('/usr/gust-probe')\n"
             "    r['root_write'] = writable('/gust-probe')\n"
             "    r['tmp_write'] = writable('/tmp/gust-probe')\n"
             "    r['ifaces'] = [n for _, n in socket.if_nameindex()]\n"
             "    st = dict(l.split(':', 1) for l in open('/proc/self/status'))\n"
             "    r['capeff'] = st['CapEff'].strip()\n"
             "    r['capbnd'] = st['CapBnd'].strip()\n"
             "    r['nnp'] = st['NoNewPrivs'].strip()\n"
             "    s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\n"
             "    c = socket.create_connection(s.getsockname()); c.close(); s.close()\n"
             "    r['loopback'] = True\n"
             "    r['aid'] = os.environ.get('__OW_ACTIVATION_ID')\n"
             "    r['extra'] = os.environ.get('__OW_EXTRA')\n"
             "    r['initvar'] = os.environ.get('GUST_INIT_VAR')\n"
             "    r['devnull'] = writable('/dev/null')\n"
             "    r['urandom'] = len(open('/dev/urandom', 'rb').read(16))\n"
             "    return r\n",
    .chatty = "def main(args):\n"
              "    for i in range(args['n']):\n        print('line-%d' % i)\n    return {}\n",
    .notdict = "def main(args):\n    return 'just a string'\n",
};

static const t_lang t_node = {
    .kind = "nodejs:20",
    .hello = "function main(args) {\n"
             "  console.log('hi', args.name, process.env.__OW_ACTIVATION_ID);\n"
             "  return {payload: 'hello ' + (args.name || 'stranger')};\n}\n",
    .raise = "exports.main = async function (args) { throw new Error('boom'); };\n",
    .syntax = "function main(args { return {}; }\n",
    .sleep = "function main(args) {\n  console.log('going to sleep');\n"
             "  return new Promise((ok) => setTimeout(() => ok({}), 5000));\n}\n",
    .die = "module.exports.main = function () { process.exit(1); };\n",
    .probe = "const fs = require('fs'), os = require('os'), net = require('net');\n"
             "function writable(p) { try { fs.writeFileSync(p, 'x'); return true; }"
             " catch (e) { return false; } }\n"
             "async function main(args) {\n"
             "  const st = Object.fromEntries(fs.readFileSync('/proc/self/status', 'utf8')"
             ".split('\\n').filter(Boolean).map((l) => l.split(/:\\s*/)));\n"
             "  const r = {pid: process.pid, uid: process.getuid(), gid: process.getgid(),\n"
             "    procs: fs.readdirSync('/proc').filter((d) => /^\\d+$/.test(d)).map(Number),\n"
             "    hostname: os.hostname(), shadow: fs.existsSync('/etc/shadow'),\n"
             "    passwd: fs.readFileSync('/etc/passwd', 'utf8'),\n"
             "    usr_write: writable('/usr/gust-probe'), root_write: writable('/gust-probe'),\n"
             "    tmp_write: writable('/tmp/gust-probe'),\n"
             "    ifaces: Object.keys(os.networkInterfaces()),\n"
             "    capeff: st.CapEff, capbnd: st.CapBnd, nnp: st.NoNewPrivs,\n"
             "    aid: process.env.__OW_ACTIVATION_ID, extra: process.env.__OW_EXTRA,\n"
             "    initvar: process.env.GUST_INIT_VAR, devnull: writable('/dev/null'),\n"
             "    urandom: fs.readSync(fs.openSync('/dev/urandom', 'r'), Buffer.alloc(16))};\n"
             "  r.loopback = await new Promise((ok) => {\n"
             "    const s = net.createServer((c) => c.end()).listen(0, '127.0.0.1', () => {\n"
             "      const c = net.connect(s.address().port, '127.0.0.1', () => "
             "{ c.end(); s.close(); ok(true); });\n"
             "      c.on('error', () => ok(false)); }); });\n"
             "  return r;\n}\n",
    .chatty = "function main(args) {\n"
              "  for (let i = 0; i < args.n; i++) console.log('line-' + i);\n  return {};\n}\n",
    .notdict = "function main() { return 'just a string'; }\n",
};

static void t_dump_logs(const inv_run_result *r)
{
	for (size_t i = 0; i < r->nlogs; i++)
		fprintf(stderr, "    log: %s\n", r->logs[i]);
}

static bool t_has_log(const inv_run_result *r, const char *needle)
{
	for (size_t i = 0; i < r->nlogs; i++)
		if (strstr(r->logs[i], needle) != NULL)
			return true;
	return false;
}

/* The native launcher for kind native: NULL is the script in the runtime dir. */
static const char *t_native;
/* Network namespaces made ahead, for the sandboxes t_create makes (NULL: none). */
static inv_netns_pool *t_netns;

static inv_sandbox *t_create_cfg(const char *kind, size_t log_limit)
{
	inv_sandbox_cfg cfg = {.kind = kind,
	                       .runtime_dir = t_rtdir,
	                       .state_dir = t_state,
	                       .memory_mb = 256,
	                       .log_limit = log_limit,
	                       .native_launcher = strcmp(kind, "native") == 0 ? t_native : NULL,
	                       .netns = t_netns};
	inv_sandbox *sb = NULL;
	gust_error *err = NULL;
	int rv = inv_sandbox_create(&cfg, &sb, &err);
	if (rv != 0)
		fprintf(stderr, "create %s: %s\n", kind, gust_error_msg(err));
	assert_int_equal(rv, 0);
	assert_non_null(sb);
	assert_true(inv_sandbox_alive(sb));
	assert_true(inv_sandbox_pid(sb) > 0);
	gust_error_free(err);
	return sb;
}

static inv_sandbox *t_create(const char *kind)
{
	return t_create_cfg(kind, 0);
}

static int t_init_env(inv_sandbox *sb, const char *code, bool binary, const char *env,
                      gust_error **err)
{
	inv_run_result r = {0};
	int rv = inv_sandbox_init(sb, code, strlen(code), "main", binary, env, 10000, &r, err);
	if (rv != 0) {
		fprintf(stderr, "init: %s (result %s)\n", gust_error_msg(err ? *err : NULL),
		        r.result);
		t_dump_logs(&r);
	}
	inv_run_result_clear(&r);
	return rv;
}

static int t_init_bin(inv_sandbox *sb, const char *code, bool binary, gust_error **err)
{
	return t_init_env(sb, code, binary, NULL, err);
}

static inv_sandbox *t_ready(const char *kind, const char *code)
{
	inv_sandbox *sb = t_create(kind);
	assert_int_equal(t_init_bin(sb, code, false, NULL), 0);
	return sb;
}

/* Runs one activation with params (JSON text) and timeout_ms. */
static void t_run(inv_sandbox *sb, const char *params, int timeout_ms, inv_run_result *r)
{
	char aid[33];
	gust_random_hex(aid, 16);
	cleanup_free char *line =
	    gust_xasprintf("{\"value\":%s,\"env\":{\"__OW_ACTIVATION_ID\":\"%s\"}}", params, aid);
	assert_int_equal(inv_sandbox_run(sb, line, strlen(line), gust_wall_ms() + timeout_ms, r),
	                 0);
}

static void t_run_line(inv_sandbox *sb, const char *line, int timeout_ms, inv_run_result *r)
{
	assert_int_equal(inv_sandbox_run(sb, line, strlen(line), gust_wall_ms() + timeout_ms, r),
	                 0);
}

static json_t *t_json(const char *text)
{
	json_t *j = json_loads(text, 0, NULL);
	assert_non_null(j);
	return j;
}

/* hello: params in, result out, logs captured and delimited per activation. */
static void test_hello(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_ready(l->kind, l->hello);
	inv_run_result r = {0};

	t_run(sb, "{\"name\":\"X\"}", 5000, &r);
	if (r.status != INV_RUN_SUCCESS)
		t_dump_logs(&r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_string_equal(r.result, "{\"payload\":\"hello X\"}");
	assert_true(t_has_log(&r, "stdout: hi X "));
	assert_true(r.end_ms >= r.start_ms);
	/* 2026-11-27T01:32:45.123456Z stdout: ... */
	assert_true(r.nlogs >= 1);
	const char *ln = r.logs[0];
	assert_true(strlen(ln) > 28);
	assert_true(ln[4] == '-' && ln[10] == 'T' && ln[19] == '.' && ln[26] == 'Z' &&
	            ln[27] == ' ');
	assert_false(t_has_log(&r, "XXX_THE_END"));
	inv_run_result_clear(&r);

	t_run(sb, "{\"name\":\"Y\"}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_string_equal(r.result, "{\"payload\":\"hello Y\"}");
	assert_true(t_has_log(&r, "stdout: hi Y "));
	assert_false(t_has_log(&r, "hi X"));
	assert_int_equal(r.nlogs, 1);
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* A warm sandbox serves many activations in a row; prints cold and warm times. */
static void test_warm_and_timing(void **state)
{
	const t_lang *l = *state;
	enum { COLD = 3, WARM = 50 };
	uint64_t cold_us = 0;

	for (int i = 0; i < COLD; i++) {
		uint64_t t0 = gust_now_us();
		inv_sandbox *sb = t_ready(l->kind, l->hello);
		cold_us += gust_now_us() - t0;
		inv_sandbox_destroy(sb);
	}
	uint64_t t0 = gust_now_us();
	inv_sandbox *sb = t_create(l->kind);
	uint64_t t1 = gust_now_us();
	assert_int_equal(t_init_bin(sb, l->hello, false, NULL), 0);
	uint64_t t2 = gust_now_us();

	uint64_t warm0 = gust_now_us();
	for (int i = 0; i < WARM; i++) {
		inv_run_result r = {0};
		char params[64], want[64];
		snprintf(params, sizeof(params), "{\"name\":\"n%d\"}", i);
		snprintf(want, sizeof(want), "{\"payload\":\"hello n%d\"}", i);
		t_run(sb, params, 5000, &r);
		assert_int_equal(r.status, INV_RUN_SUCCESS);
		assert_string_equal(r.result, want);
		assert_int_equal(r.nlogs, 1);
		inv_run_result_clear(&r);
	}
	uint64_t warm_us = gust_now_us() - warm0;
	assert_true(inv_sandbox_alive(sb));
	inv_sandbox_destroy(sb);
	printf("[timing] %s: cold create+init %.2f ms (mean of %d); last: create %.2f ms + init "
	       "%.2f ms; warm run %.1f us (mean of %d)\n",
	       l->kind, cold_us / 1000.0 / COLD, COLD, (t1 - t0) / 1000.0, (t2 - t1) / 1000.0,
	       (double)warm_us / WARM, WARM);
}

static void test_exception(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_ready(l->kind, l->raise);
	inv_run_result r = {0};

	/* An uncaught exception is a developer error (OpenWhisk's reference.md:
	 * "the action did not detect an exception"), but the runtime lives on. */
	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	assert_string_equal(r.result, "{\"error\":\"boom\"}");
	assert_true(t_has_log(&r, "stderr: "));
	assert_true(inv_sandbox_alive(sb));
	inv_run_result_clear(&r);
	/* Still serves the next activation. */
	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	assert_true(inv_sandbox_alive(sb));
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

static void test_syntax_error(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_create(l->kind);
	gust_error *err = NULL;
	inv_run_result r = {0};

	int rv = inv_sandbox_init(sb, l->syntax, strlen(l->syntax), "main", false, NULL, 10000, &r,
	                          &err);
	assert_int_not_equal(rv, 0);
	assert_non_null(err);
	assert_int_equal(r.status, INV_RUN_APP_ERROR);
	assert_non_null(strstr(gust_error_msg(err), "Initialization has failed"));
	printf("[info] %s syntax error: %s\n", l->kind, gust_error_msg(err));
	gust_error_free(err);
	inv_run_result_clear(&r);

	/* A missing function is an error too. */
	err = NULL;
	rv = inv_sandbox_init(sb, l->hello, strlen(l->hello), "nope", false, NULL, 10000, NULL,
	                      &err);
	assert_int_not_equal(rv, 0);
	assert_non_null(strstr(gust_error_msg(err), "nope"));
	gust_error_free(err);
	inv_sandbox_destroy(sb);
}

static void test_timeout(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_ready(l->kind, l->sleep);
	inv_run_result r = {0};
	pid_t pid = inv_sandbox_pid(sb);

	uint64_t t0 = gust_now_ms();
	t_run(sb, "{}", 300, &r);
	uint64_t took = gust_now_ms() - t0;
	assert_int_equal(r.status, INV_RUN_TIMEOUT);
	assert_non_null(strstr(r.result, "The action exceeded its time limits of "));
	assert_true(took < 2000);
	assert_false(inv_sandbox_alive(sb));
	assert_true(t_has_log(&r, "stdout: going to sleep"));
	assert_int_equal(kill(pid, 0), 0); /* a zombie until destroy reaps it */
	inv_run_result_clear(&r);

	/* A dead sandbox refuses further work. */
	assert_int_equal(inv_sandbox_run(sb, "{}", 2, gust_wall_ms() + 1000, &r), GUST_ECLOSED);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
	assert_int_equal(kill(pid, 0), -1);
}

static void test_exit(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_ready(l->kind, l->die);
	inv_run_result r = {0};

	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	assert_string_equal(r.result, "{\"error\":\"The action did not produce a valid response "
	                              "and exited unexpectedly.\"}");
	assert_false(inv_sandbox_alive(sb));
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

static void test_not_dict(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_ready(l->kind, l->notdict);
	inv_run_result r = {0};

	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	assert_string_equal(r.result, "{\"error\":\"The action did not return a dictionary.\"}");
	assert_false(inv_sandbox_alive(sb));
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

static void test_run_before_init(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_create(l->kind);
	inv_run_result r = {0};

	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_APP_ERROR);
	assert_string_equal(r.result, "{\"error\":\"not initialized\"}");
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

static void test_log_limit(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_create_cfg(l->kind, 100);
	inv_run_result r = {0};

	assert_int_equal(t_init_bin(sb, l->chatty, false, NULL), 0);
	t_run(sb, "{\"n\":100}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	/* "line-0".."line-9" are 6 bytes, then 7: 100 bytes hold 15 lines and
	 * the first 5 bytes of the 16th, then the marker. */
	assert_int_equal(r.nlogs, 17);
	assert_true(t_has_log(&r, "stdout: line-14"));
	const char *cut = r.logs[15];
	assert_string_equal(cut + strlen(cut) - strlen(" stdout: line-"), " stdout: line-");
	assert_non_null(strstr(r.logs[r.nlogs - 1],
	                       "Logs were truncated because the total bytes size exceeds the "
	                       "limit of 100 bytes."));
	inv_run_result_clear(&r);
	/* The next activation starts with a fresh budget and in step. */
	t_run(sb, "{\"n\":2}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_int_equal(r.nlogs, 2);
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* What the action sees of its sandbox. */
static void test_isolation(void **state)
{
	const t_lang *l = *state;
	inv_sandbox *sb = t_create(l->kind);
	inv_run_result r = {0};

	assert_int_equal(t_init_env(sb, l->probe, false, "{\"GUST_INIT_VAR\":\"init-ok\"}", NULL),
	                 0);
	/* An activation's __OW_ variables do not leak into the next one. */
	t_run_line(sb, "{\"value\":{},\"env\":{\"__OW_EXTRA\":\"1\"}}", 10000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	json_t *j0 = t_json(r.result);
	assert_string_equal(json_string_value(json_object_get(j0, "extra")), "1");
	json_decref(j0);
	inv_run_result_clear(&r);

	t_run(sb, "{}", 10000, &r);
	if (r.status != INV_RUN_SUCCESS)
		t_dump_logs(&r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	printf("[info] %s probe: %s\n", l->kind, r.result);
	json_t *j = t_json(r.result);
	json_int_t pid = json_integer_value(json_object_get(j, "pid"));
	assert_true(pid >= 2 && pid < 10);
	json_t *procs = json_object_get(j, "procs");
	/* The launcher and its own children; pid 1 (a copy of the invoker) is
	 * hidden (hidepid=invisible). */
	assert_true(json_array_size(procs) >= 1 && json_array_size(procs) <= 3);
	size_t i;
	json_t *v;
	json_array_foreach(procs, i, v)
	{
		assert_true(json_integer_value(v) > 1 && json_integer_value(v) < 10);
	}
	assert_string_equal(json_string_value(json_object_get(j, "hostname")), "sandbox");
	assert_int_equal(json_integer_value(json_object_get(j, "uid")), 65534);
	assert_int_equal(json_integer_value(json_object_get(j, "gid")), 65534);
	assert_true(json_is_false(json_object_get(j, "shadow")));
	assert_null(strstr(json_string_value(json_object_get(j, "passwd")), "root:$"));
	assert_true(json_is_false(json_object_get(j, "usr_write")));
	assert_true(json_is_false(json_object_get(j, "root_write")));
	assert_true(json_is_true(json_object_get(j, "tmp_write")));
	json_t *ifs = json_object_get(j, "ifaces");
	assert_int_equal(json_array_size(ifs), 1);
	assert_string_equal(json_string_value(json_array_get(ifs, 0)), "lo");
	assert_true(json_is_true(json_object_get(j, "loopback")));
	assert_string_equal(json_string_value(json_object_get(j, "capeff")), "0000000000000000");
	assert_string_equal(json_string_value(json_object_get(j, "capbnd")), "0000000000000000");
	assert_string_equal(json_string_value(json_object_get(j, "nnp")), "1");
	assert_int_equal(strlen(json_string_value(json_object_get(j, "aid"))), 32);
	assert_true(json_is_null(json_object_get(j, "extra")) || !json_object_get(j, "extra"));
	assert_string_equal(json_string_value(json_object_get(j, "initvar")), "init-ok");
	assert_true(json_is_true(json_object_get(j, "devnull")));
	assert_int_equal(json_integer_value(json_object_get(j, "urandom")), 16);
	json_decref(j);
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* pid 1 and the launcher change ids while they share our memory, which makes
 * the memory non-dumpable: create puts the flag back (core dumps of the
 * invoker, /proc/<invoker> ownership). */
static void test_dumpable(void **state)
{
	(void)state;
	int before = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	assert_int_equal(before, 1);
	inv_sandbox *sb = t_create("python:3");
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), before);
	inv_sandbox_destroy(sb);
}

/* The first host uid of pid's user namespace map ("0 <uid> 65536"), or -1. */
static long t_map_base(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	FILE *f = fopen(path, "re");
	long in = -1, out = -1, n = -1;
	if (f == NULL)
		return -1;
	if (fscanf(f, "%ld %ld %ld", &in, &out, &n) != 3 || in != 0 || n != 65536)
		out = -1;
	fclose(f);
	return out;
}

/* The uid that owns pid's user namespace: what the kernel charges its
 * per-user counts to in the host's namespace. */
static long t_ns_owner(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", (int)pid);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);
	uid_t owner = (uid_t)-1;
	assert_int_equal(ioctl(fd, NS_GET_OWNER_UID, &owner), 0);
	close(fd);
	return (long)owner;
}

/* Host id ranges (sandbox_ids.c): each sandbox takes one of the slots, maps
 * to it and owns its user namespace as the range's first uid; the creating
 * thread is back to uid 0; a full set of slots refuses a sandbox, and a
 * destroyed sandbox frees its slot. A base of its own, so that invokers of
 * other tests on this host never hold these slots. */
static void test_id_ranges(void **state)
{
	(void)state;
	const unsigned base = 0x7e000000u;
	gust_error *err = NULL;
	assert_int_not_equal(inv_userns_ids_check(0, 1, &err), 0); /* root's uid */
	assert_non_null(strstr(gust_error_msg(err), "/etc/passwd"));
	gust_error_free(err);
	err = NULL;
	assert_int_equal(inv_userns_ids_check(base, 2, &err), 0);

	inv_sandbox_cfg cfg = {.kind = "python:3",
	                       .runtime_dir = t_rtdir,
	                       .state_dir = t_state,
	                       .memory_mb = 256,
	                       .userns_base = base,
	                       .userns_slots = 2,
	                       .netns = t_netns};
	inv_sandbox *a = NULL, *b = NULL, *c = NULL;
	assert_int_equal(inv_sandbox_create(&cfg, &a, &err), 0);
	assert_int_equal(inv_sandbox_create(&cfg, &b, &err), 0);
	assert_int_equal(geteuid(), 0);
	assert_int_equal(syscall(SYS_setfsuid, -1), 0); /* fsuid, unchanged */
	assert_int_equal(prctl(PR_GET_DUMPABLE, 0, 0, 0, 0), 1);
	long ba = t_map_base(inv_sandbox_pid(a)), bb = t_map_base(inv_sandbox_pid(b));
	assert_true(ba == (long)base || ba == (long)base + 65536);
	assert_true(bb == (long)base || bb == (long)base + 65536);
	assert_true(ba != bb);
	assert_int_equal(t_ns_owner(inv_sandbox_pid(a)), ba);
	assert_int_equal(t_ns_owner(inv_sandbox_pid(b)), bb);
	/* They work as sandboxes. */
	assert_int_equal(t_init_env(a, "def main(a):\n    return {'ok': 1}\n", false, NULL, NULL),
	                 0);
	inv_run_result r = {0};
	t_run(a, "{}", 10000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	inv_run_result_clear(&r);
	/* Both slots taken. */
	assert_int_equal(inv_sandbox_create(&cfg, &c, &err), GUST_EBUSY);
	assert_non_null(strstr(gust_error_msg(err), "userns_slots"));
	gust_error_free(err);
	err = NULL;
	assert_null(c);
	inv_sandbox_destroy(a);
	assert_int_equal(inv_sandbox_create(&cfg, &c, &err), 0);
	assert_int_equal(t_map_base(inv_sandbox_pid(c)), ba);
	inv_sandbox_destroy(b);
	inv_sandbox_destroy(c);
}

static ino_t t_ns_ino(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return st.st_ino;
}

/* Network namespaces made ahead of need: each sandbox gets one of its own,
 * with lo up and nothing else, and the thread that created the sandboxes is
 * back in the host's namespace afterwards. */
static void test_netns_pool(void **state)
{
	(void)state;
	assert_int_equal(inv_netns_pool_open(2, t_state, &t_netns, NULL), 0);
	ino_t host = t_ns_ino("/proc/thread-self/ns/net");
	for (int i = 0; i < 1000 && inv_netns_pool_ready(t_netns) < 2; i++)
		usleep(10 * 1000);
	assert_int_equal(inv_netns_pool_ready(t_netns), 2);
	inv_sandbox *a = t_create("python:3");
	inv_sandbox *b = t_create("python:3");
	assert_int_equal(t_ns_ino("/proc/thread-self/ns/net"), host);
	char pa[64], pb[64];
	snprintf(pa, sizeof(pa), "/proc/%d/ns/net", (int)inv_sandbox_pid(a));
	snprintf(pb, sizeof(pb), "/proc/%d/ns/net", (int)inv_sandbox_pid(b));
	ino_t ia = t_ns_ino(pa), ib = t_ns_ino(pb);
	assert_true(ia != host && ib != host && ia != ib);
	uint64_t taken = 0, missed = 0;
	inv_netns_pool_counts(t_netns, &taken, &missed);
	assert_int_equal(taken, 2);
	assert_int_equal(missed, 0);

	inv_run_result r = {0};
	assert_int_equal(t_init_bin(a, t_python.probe, false, NULL), 0);
	t_run(a, "{}", 10000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	json_t *j = t_json(r.result);
	json_t *ifs = json_object_get(j, "ifaces");
	assert_int_equal(json_array_size(ifs), 1);
	assert_string_equal(json_string_value(json_array_get(ifs, 0)), "lo");
	assert_true(json_is_true(json_object_get(j, "loopback")));
	json_decref(j);
	inv_run_result_clear(&r);
	inv_sandbox_destroy(a);
	inv_sandbox_destroy(b);
	inv_netns_pool_close(t_netns);
	t_netns = NULL;
}

/* Builds a zip of (name, text) pairs with the host's python; base64 of it. */
static char *t_zip_b64(const char *files_json)
{
	cleanup_free char *zpath = gust_xasprintf("%s/action.zip", t_state);
	cleanup_free char *cmd = gust_xasprintf(
	    "/usr/bin/python3 -c 'import json, sys, zipfile\n"
	    "with zipfile.ZipFile(sys.argv[1], \"w\", zipfile.ZIP_DEFLATED) as z:\n"
	    "    for n, t in json.loads(sys.argv[2]).items(): z.writestr(n, t)' %s '%s'",
	    zpath, files_json);
	assert_int_equal(system(cmd), 0);
	FILE *f = fopen(zpath, "rb");
	assert_non_null(f);
	char buf[65536];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	unlink(zpath);
	return gust_b64_encode(buf, n);
}

static void test_zip(void **state)
{
	const t_lang *l = *state;
	cleanup_free char *b64 = NULL;
	if (strncmp(l->kind, "python", 6) == 0)
		b64 = t_zip_b64("{\"__main__.py\": \"from helper import greet\\n"
		                "def main(args):\\n    return {\\\"payload\\\": greet(args)}\\n\","
		                "\"helper.py\": \"def greet(a):\\n    return \\\"zip \\\" + "
		                "a[\\\"name\\\"]\\n\"}");
	else
		b64 =
		    t_zip_b64("{\"package.json\": \"{\\\"main\\\": \\\"lib/entry.js\\\"}\","
		              "\"lib/entry.js\": \"const u = require(\\\"./util\\\");\\n"
		              "exports.main = (a) => ({payload: u.greet(a)});\\n\","
		              "\"lib/util.js\": \"exports.greet = (a) => \\\"zip \\\" + a.name;\\n"
		              "// padding padding padding padding padding padding padding\\n\"}");
	inv_sandbox *sb = t_create(l->kind);
	assert_int_equal(t_init_bin(sb, b64, true, NULL), 0);
	inv_run_result r = {0};
	t_run(sb, "{\"name\":\"Z\"}", 5000, &r);
	if (r.status != INV_RUN_SUCCESS)
		t_dump_logs(&r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_string_equal(r.result, "{\"payload\":\"zip Z\"}");
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* python only: a result over the limit, and garbage input. */
static void test_big_result(void **state)
{
	(void)state;
	inv_sandbox *sb = t_ready("python:3", "def main(a):\n    return {'x': 'y' * (2 << 20)}\n");
	inv_run_result r = {0};

	t_run(sb, "{}", 10000, &r);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	assert_string_equal(r.result, "{\"error\":\"The action produced a response that exceeded "
	                              "the allowed length: 2097160 > 1048576 bytes.\"}");
	assert_false(inv_sandbox_alive(sb));
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* python only: params far bigger than a pipe's buffer (the invoker's write
 * must not block past the deadline), and output without a final newline. */
static void test_big_params(void **state)
{
	(void)state;
	inv_sandbox *sb = t_ready("python:3", "import sys\n"
	                                      "def main(a):\n"
	                                      "    sys.stdout.write('no newline')\n"
	                                      "    return {'len': len(a['s'])}\n");
	size_t n = 3u << 20;
	gust_buf b = {0};
	gust_buf_puts(&b, "{\"value\":{\"s\":\"");
	for (size_t i = 0; i < n / 64; i++)
		gust_buf_puts(&b,
		              "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
	gust_buf_puts(&b, "\"}}");
	inv_run_result r = {0};
	t_run_line(sb, b.data, 10000, &r);
	gust_buf_free(&b);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_string_equal(r.result, "{\"len\":3145728}");
	assert_int_equal(r.nlogs, 1);
	assert_non_null(strstr(r.logs[0], " stdout: no newline"));
	inv_run_result_clear(&r);

	/* Params nested deeper than Python's recursion limit: an error answer,
	 * and the runtime serves the next activation. */
	gust_buf_puts(&b, "{\"value\":{\"s\":");
	for (int i = 0; i < 3000; i++)
		gust_buf_puts(&b, "[");
	for (int i = 0; i < 3000; i++)
		gust_buf_puts(&b, "]");
	gust_buf_puts(&b, "}}");
	t_run_line(sb, b.data, 10000, &r);
	gust_buf_free(&b);
	assert_int_equal(r.status, INV_RUN_APP_ERROR);
	assert_non_null(strstr(r.result, "bad message"));
	assert_true(inv_sandbox_alive(sb));
	inv_run_result_clear(&r);
	t_run_line(sb, "{\"value\":{\"s\":\"ok\"}}", 10000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_string_equal(r.result, "{\"len\":2}");
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* Bytes of 'x' in an activation's stdout lines. */
static size_t t_count_x(const inv_run_result *r)
{
	size_t n = 0;
	for (size_t i = 0; i < r->nlogs; i++) {
		const char *t = strstr(r->logs[i], " stdout: ");
		for (t = t != NULL ? t + 9 : ""; *t; t++)
			n += *t == 'x';
	}
	return n;
}

/* The answer ends the activation's logs: a log far bigger than the pipe,
 * written just before a synchronous answer, is all this activation's, and
 * the next gets none of it (node queued what did not fit and answered
 * first until its log streams were made blocking). Node: a log from a
 * promise resolved before returning is this activation's too. */
static void test_logs_before_answer(void **state)
{
	(void)state;
	static const char *const code[2][2] = {
	    {"nodejs:20", "function main(a) {\n"
	                  "  if (!a.big) { console.log('small'); return {ok: true}; }\n"
	                  "  console.log('x'.repeat(300000));\n"
	                  "  Promise.resolve().then(() => console.log('micro'));\n"
	                  "  return {ok: true};\n}\n"},
	    {"python:3", "def main(a):\n"
	                 "    print('x' * 300000 if a.get('big') else 'small')\n"
	                 "    return {'ok': True}\n"},
	};
	for (int k = 0; k < 2; k++) {
		inv_sandbox *sb = t_ready(code[k][0], code[k][1]);
		for (int i = 0; i < 2; i++) {
			inv_run_result r = {0};
			t_run(sb, "{\"big\":true}", 10000, &r);
			assert_int_equal(r.status, INV_RUN_SUCCESS);
			assert_int_equal(t_count_x(&r), 300000);
			if (k == 0)
				assert_true(t_has_log(&r, "stdout: micro"));
			inv_run_result_clear(&r);
			t_run(sb, "{}", 10000, &r);
			assert_int_equal(r.status, INV_RUN_SUCCESS);
			assert_int_equal(t_count_x(&r), 0);
			assert_int_equal(r.nlogs, 1);
			assert_true(t_has_log(&r, "stdout: small"));
			inv_run_result_clear(&r);
		}
		inv_sandbox_destroy(sb);
	}
}

/* native: the action's own executable speaks the protocol after init. */
static void test_native(void **state)
{
	t_native = *state;
	printf("[info] native launcher: %s\n", t_native ? t_native : "the script");
	static const char exe[] =
	    "#!/usr/bin/python3 -u\n"
	    "import json, os, sys\n"
	    "for line in sys.stdin:\n"
	    "    v = json.loads(line)['value']\n"
	    "    print('native got', v['name'])\n"
	    "    os.write(3, (json.dumps({'payload': 'native ' + v['name']}) + '\\n').encode())\n"
	    "    for s in (sys.stdout, sys.stderr):\n"
	    "        s.write('XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\\n'); s.flush()\n";
	inv_sandbox *sb = t_ready("native", exe);
	for (int i = 0; i < 3; i++) {
		inv_run_result r = {0};
		t_run(sb, "{\"name\":\"N\"}", 5000, &r);
		if (r.status != INV_RUN_SUCCESS)
			t_dump_logs(&r);
		assert_int_equal(r.status, INV_RUN_SUCCESS);
		assert_string_equal(r.result, "{\"payload\": \"native N\"}");
		assert_true(t_has_log(&r, "stdout: native got N"));
		/* Its sentinels (the older protocol) are dropped, not logged. */
		assert_false(t_has_log(&r, "XXX_THE_END"));
		inv_run_result_clear(&r);
	}
	inv_sandbox_destroy(sb);

	/* OpenWhisk's action loop: logs, then the answer on fd 3, no sentinels.
	 * Every activation gets its own lines, including one without a final
	 * newline, and nothing of the next. */
	static const char loop[] = "#!/bin/sh\n"
	                           "n=0\n"
	                           "while read l; do\n"
	                           "  n=$((n+1))\n"
	                           "  echo \"out $n\"; echo \"err $n\" >&2; printf 'tail %s' $n\n"
	                           "  echo \"{\\\"n\\\":$n}\" >&3\n"
	                           "done\n";
	sb = t_ready("native", loop);
	for (int i = 1; i <= 3; i++) {
		inv_run_result r = {0};
		char want[64], other[64];
		t_run(sb, "{}", 5000, &r);
		if (r.status != INV_RUN_SUCCESS)
			t_dump_logs(&r);
		assert_int_equal(r.status, INV_RUN_SUCCESS);
		snprintf(want, sizeof(want), "{\"n\":%d}", i);
		assert_string_equal(r.result, want);
		assert_int_equal(r.nlogs, 3);
		snprintf(want, sizeof(want), "stdout: out %d", i);
		assert_true(t_has_log(&r, want));
		snprintf(want, sizeof(want), "stderr: err %d", i);
		assert_true(t_has_log(&r, want));
		snprintf(want, sizeof(want), "stdout: tail %d", i);
		assert_true(t_has_log(&r, want));
		snprintf(other, sizeof(other), "out %d", i + 1);
		assert_false(t_has_log(&r, other));
		inv_run_result_clear(&r);
	}
	inv_sandbox_destroy(sb);

	/* binary: base64 of the executable ("#!/bin/sh" echoing the protocol). */
	static const char b64[] =
	    "IyEvYmluL3NoCndoaWxlIHJlYWQgbDsgZG8gZWNobyAneyJiNjQiOnRydWV9JyA+JjM7IGVjaG8g"
	    "WFhYX1RIRV9FTkRfT0ZfQV9XSElTS19BQ1RJVkFUSU9OX1hYWDsgZWNobyBYWFhfVEhFX0VORF9P"
	    "Rl9BX1dISVNLX0FDVElWQVRJT05fWFhYID4mMjsgZG9uZQo=";
	sb = t_create("native");
	gust_error *err = NULL;
	assert_int_equal(t_init_bin(sb, b64, true, &err), 0);
	inv_run_result r = {0};
	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_string_equal(r.result, "{\"b64\":true}");
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);

	/* Not base64: init fails and says why; the runtime answers on. */
	sb = t_create("native");
	assert_int_not_equal(t_init_bin(sb, "!!!not base64!!!", true, &err), 0);
	assert_non_null(strstr(gust_error_msg(err), "Initialization has failed"));
	gust_error_free(err);
	inv_sandbox_destroy(sb);
	t_native = NULL;
}

/* A runtime that answers garbage: the sandbox is written off. */
static void test_garbage(void **state)
{
	(void)state;
	static const char exe[] = "#!/bin/sh\n"
	                          "read line\n"
	                          "echo 'not json' >&3\n"
	                          "echo XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX\n"
	                          "echo XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX >&2\n"
	                          "sleep 60\n";
	inv_sandbox *sb = t_ready("native", exe);
	inv_run_result r = {0};
	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	assert_string_equal(r.result, "{\"error\":\"The action did not produce a valid response "
	                              "and exited unexpectedly.\"}");
	assert_false(inv_sandbox_alive(sb));
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* A runtime that answers and exits at once: the answer stands (however the
 * EOF of its log pipes and the answer interleave), and the sandbox is not
 * used again. */
static void test_answer_then_exit(void **state)
{
	(void)state;
	static const char exe[] = "#!/bin/sh\n"
	                          "read line\n"
	                          "echo bye\n"
	                          "echo '{\"ok\":1}' >&3\n"
	                          "exit 0\n";
	for (int i = 0; i < 5; i++) {
		inv_sandbox *sb = t_ready("native", exe);
		inv_run_result r = {0};
		t_run(sb, "{}", 5000, &r);
		if (r.status != INV_RUN_SUCCESS)
			t_dump_logs(&r);
		assert_int_equal(r.status, INV_RUN_SUCCESS);
		assert_string_equal(r.result, "{\"ok\":1}");
		assert_true(t_has_log(&r, "stdout: bye"));
		inv_run_result_clear(&r);
		for (int k = 0; k < 100 && inv_sandbox_alive(sb); k++)
			usleep(10000);
		assert_false(inv_sandbox_alive(sb));
		inv_sandbox_destroy(sb);
	}
}

/* A python action that closes sys.stdout still gets its answer out (the
 * launcher flushes the streams before answering). */
static void test_closed_stdout(void **state)
{
	(void)state;
	inv_sandbox *sb = t_ready("python:3", "import sys\n"
	                                      "def main(a):\n"
	                                      "    sys.stdout.close()\n"
	                                      "    return {'ok': True}\n");
	inv_run_result r = {0};
	t_run(sb, "{}", 5000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_string_equal(r.result, "{\"ok\":true}");
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

/* Bad configs, and a failure inside the child reported with its errno. */
static void test_create_errors(void **state)
{
	(void)state;
	inv_sandbox *sb = NULL;
	gust_error *err = NULL;
	inv_sandbox_cfg cfg = {.kind = "cobol:85", .runtime_dir = t_rtdir, .state_dir = t_state};

	assert_int_equal(inv_sandbox_create(&cfg, &sb, &err), GUST_ENOTSUP);
	assert_null(sb);
	gust_error_free(err);
	err = NULL;

	cfg.kind = "python:3";
	cfg.runtime_dir = "/nonexistent/gust-runtimes";
	assert_int_equal(inv_sandbox_create(&cfg, &sb, &err), GUST_ENOENT);
	gust_error_free(err);
	err = NULL;

	/* A native launcher that is not executable: exec fails inside. */
	cleanup_free char *rt = gust_xasprintf("%s/badrt", t_state);
	cleanup_free char *nat = gust_xasprintf("%s/native", rt);
	cleanup_free char *ln = gust_xasprintf("%s/launcher", nat);
	assert_int_equal(mkdir(rt, 0755), 0);
	assert_int_equal(mkdir(nat, 0755), 0);
	FILE *f = fopen(ln, "w");
	assert_non_null(f);
	fputs("not a program\n", f);
	fclose(f);
	chmod(ln, 0644);
	cfg.kind = "native";
	cfg.runtime_dir = rt;
	assert_int_equal(inv_sandbox_create(&cfg, &sb, &err), GUST_EPERM);
	assert_null(sb);
	printf("[info] child error: %s\n", gust_error_msg(err));
	assert_string_equal(gust_error_msg(err), "sandbox: exec launcher: Permission denied");
	gust_error_free(err);
	err = NULL;

	/* The same with defer_ready (the invoker's cold path): the reason comes
	 * from create (pid 1 shares our memory until its exec, so create has
	 * its report anyway) or, when create did not wait, from init. */
	cfg.defer_ready = true;
	int crv = inv_sandbox_create(&cfg, &sb, &err);
	if (crv == 0) {
		assert_non_null(sb);
		inv_run_result r = {0};
		assert_int_equal(inv_sandbox_init(sb, "x", 1, "main", false, NULL, 5000, &r, &err),
		                 GUST_EPERM);
		assert_int_equal(r.status, INV_RUN_DEV_ERROR);
		inv_run_result_clear(&r);
		inv_sandbox_destroy(sb);
		sb = NULL;
	} else {
		assert_int_equal(crv, GUST_EPERM);
		assert_null(sb);
	}
	assert_string_equal(gust_error_msg(err), "sandbox: exec launcher: Permission denied");
	gust_error_free(err);
	unlink(ln);
	rmdir(nat);
	rmdir(rt);

	inv_sandbox_destroy(NULL);
}

/* Several threads create and use sandboxes at once (the invoker's workers). */
static void *t_worker(void *arg)
{
	const t_lang *l = arg;
	for (int i = 0; i < 3; i++) {
		inv_sandbox *sb = t_ready(l->kind, l->hello);
		inv_run_result r = {0};
		t_run(sb, "{\"name\":\"T\"}", 10000, &r);
		assert_int_equal(r.status, INV_RUN_SUCCESS);
		inv_run_result_clear(&r);
		inv_sandbox_destroy(sb);
	}
	return NULL;
}

static void test_threads(void **state)
{
	(void)state;
	pthread_t th[4];
	for (int i = 0; i < 4; i++)
		assert_int_equal(
		    pthread_create(&th[i], NULL, t_worker, (void *)(i % 2 ? &t_node : &t_python)),
		    0);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
}

static int t_count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	assert_non_null(d);
	while (readdir(d) != NULL)
		n++;
	closedir(d);
	return n;
}

/* Every sandbox dir and every pipe is gone after destroy. */
static void test_no_leftovers(void **state)
{
	(void)state;
	assert_int_equal(t_count_fds(), t_nfds);
	cleanup_free char *cmd = gust_xasprintf(
	    "ls -A %s/sandboxes; test -z \"$(ls -A %s/sandboxes)\"", t_state, t_state);
	assert_int_equal(system(cmd), 0);
}

static int setup_all(void **state)
{
	(void)state;
	t_rtdir = getenv("GUST_RUNTIME_DIR");
	if (t_rtdir == NULL)
		t_rtdir = GUST_RUNTIME_DIR_DEFAULT;
	t_state = th_tmpdir("sandbox");
	t_nfds = t_count_fds();
	return t_state != NULL ? 0 : -1;
}

static int teardown_all(void **state)
{
	(void)state;
	th_rmdir(t_state);
	free(t_state);
	return 0;
}

#define T_BOTH(f)                                                                                  \
	cmocka_unit_test_prestate(f, (void *)&t_python),                                           \
	    cmocka_unit_test_prestate(f, (void *)&t_node)

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_sandbox needs root (namespaces, mounts): skipped\n");
		return 77;
	}
	/* As in the invoker: a dead launcher must be EPIPE, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    T_BOTH(test_hello),
	    T_BOTH(test_warm_and_timing),
	    T_BOTH(test_exception),
	    T_BOTH(test_syntax_error),
	    T_BOTH(test_timeout),
	    T_BOTH(test_exit),
	    T_BOTH(test_not_dict),
	    T_BOTH(test_run_before_init),
	    T_BOTH(test_log_limit),
	    T_BOTH(test_isolation),
	    T_BOTH(test_zip),
	    cmocka_unit_test(test_big_result),
	    cmocka_unit_test(test_big_params),
	    cmocka_unit_test(test_logs_before_answer),
	    cmocka_unit_test_prestate(test_native, NULL),
	    cmocka_unit_test_prestate(test_native, (void *)GUST_NATIVE_LAUNCHER_DEFAULT),
	    cmocka_unit_test(test_garbage),
	    cmocka_unit_test(test_answer_then_exit),
	    cmocka_unit_test(test_closed_stdout),
	    cmocka_unit_test(test_create_errors),
	    cmocka_unit_test(test_threads),
	    cmocka_unit_test(test_netns_pool),
	    cmocka_unit_test(test_dumpable),
	    cmocka_unit_test(test_id_ranges),
	    cmocka_unit_test(test_no_leftovers),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
