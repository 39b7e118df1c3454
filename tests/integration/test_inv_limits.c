/*
 * test_inv_limits.c - the hardening of invoker/sandbox.h against the real
 * kernel: the user namespace's id mapping, the cgroup namespace, the seccomp
 * filter, /proc masking, and cgroup limits (memory -> "memory limit exceeded",
 * pids -> a fork bomb stays inside) with both cgroup back-ends, and the sweep
 * of groups left by an earlier run. Needs root.
 */
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "cgroup.h"
#include "gust/util.h"
#include "harness.h"
#include "sandbox.h"

#define T_USERNS_BASE 0x70000000u

static char *t_state;
static const char *t_rtdir;
static inv_cgroups *t_cg;
static char t_tag[64];

static inv_sandbox *t_create(const char *kind, int memory_mb, int pids_max, unsigned userns)
{
	inv_sandbox_cfg cfg = {.kind = kind,
	                       .runtime_dir = t_rtdir,
	                       .state_dir = t_state,
	                       .memory_mb = memory_mb,
	                       .pids_max = pids_max,
	                       .cgroups = t_cg,
	                       .userns_base = userns};
	inv_sandbox *sb = NULL;
	gust_error *err = NULL;
	int rv = inv_sandbox_create(&cfg, &sb, &err);
	if (rv != 0)
		fprintf(stderr, "create %s: %s\n", kind, gust_error_msg(err));
	gust_error_free(err);
	assert_int_equal(rv, 0);
	return sb;
}

static void t_init(inv_sandbox *sb, const char *code)
{
	gust_error *err = NULL;
	inv_run_result r = {0};
	int rv = inv_sandbox_init(sb, code, strlen(code), "main", false, NULL, 10000, &r, &err);
	if (rv != 0) {
		fprintf(stderr, "init: %s\n", gust_error_msg(err));
		for (size_t i = 0; i < r.nlogs; i++)
			fprintf(stderr, "  log: %s\n", r.logs[i]);
	}
	inv_run_result_clear(&r);
	gust_error_free(err);
	assert_int_equal(rv, 0);
}

static json_t *t_run(inv_sandbox *sb, int timeout_ms, inv_run_result *r)
{
	const char *line = "{\"value\":{},\"env\":{}}";
	assert_int_equal(inv_sandbox_run(sb, line, strlen(line), gust_wall_ms() + timeout_ms, r),
	                 0);
	printf("[info] result %s\n", r->result);
	for (size_t i = 0; i < r->nlogs; i++)
		printf("[info]   log: %s\n", r->logs[i]);
	return json_loads(r->result, 0, NULL);
}

/* The pid of pid 1's only child (the launcher), from the host. */
static pid_t t_launcher_pid(inv_sandbox *sb)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)inv_sandbox_pid(sb),
	         (int)inv_sandbox_pid(sb));
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	int pid = -1;
	assert_int_equal(fscanf(f, "%d", &pid), 1);
	fclose(f);
	return pid;
}

static long t_host_uid(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	long uid = -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "Uid: %ld", &uid) == 1)
			break;
	fclose(f);
	return uid;
}

static int t_count_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return -1;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL)
		if (de->d_type == DT_DIR && de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

/* Everything an action must not be able to do, tried from inside. */
static const char t_probe[] =
    "import ctypes, errno, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "def call(f, *a):\n"
    "    r = f(*a)\n"
    "    return 0 if r == 0 else ctypes.get_errno()\n"
    "def tryopen(p, mode='r'):\n"
    "    try:\n"
    "        with open(p, mode) as f:\n"
    "            return f.write('1') if 'w' in mode else len(f.read())\n"
    "    except OSError as e:\n"
    "        return 'E' + errno.errorcode[e.errno]\n"
    "def main(args):\n"
    "    r = {'uid_map': open('/proc/self/uid_map').read().split(),\n"
    "         'cgroup': open('/proc/self/cgroup').read().strip().split('\\n'),\n"
    "         'sys': os.path.exists('/sys/kernel'),\n"
    "         'mount': call(libc.mount, b'none', b'/tmp', b'tmpfs', 0, None),\n"
    "         'unshare': call(libc.unshare, 0x20000),\n"
    "         'ptrace': call(libc.ptrace, 16, 1, None, None),\n"
    "         'setns': call(libc.setns, 0, 0),\n"
    "         'keyctl': call(libc.syscall, 250, 0, 0, 0, 0),\n"
    "         'bpf': call(libc.syscall, 321, 0, 0, 0),\n"
    "         'clock': call(libc.syscall, 227, 0, 0),\n"
    "         'swapoff': call(libc.swapoff, b'/tmp'),\n"
    "         'proc_sys': tryopen('/proc/sys/kernel/hostname', 'w'),\n"
    "         'kcore': tryopen('/proc/kcore', 'rb'),\n"
    "         'keys': tryopen('/proc/keys'),\n"
    "         'sysrq': tryopen('/proc/sysrq-trigger', 'w'),\n"
    "         'vsock': call(libc.socket, 40, 1, 0) if libc.socket(40, 1, 0) < 0 else 0,\n"
    "         'netlink_audit': call(libc.socket, 16, 3, 9) if libc.socket(16, 3, 9) < 0 "
    "else 0,\n"
    "         'clone3': call(libc.syscall, 435, 0, 0),\n"
    "         'unix': libc.socket(1, 1, 0) >= 0}\n"
    "    return r\n";

static void test_userns_seccomp_proc(void **state)
{
	(void)state;
	inv_sandbox *sb = t_create("python:3", 256, 0, T_USERNS_BASE);
	/* From the host: the launcher runs as the sandbox's nobody, which is an
	 * id of the unprivileged range, not the host's nobody or root; so is
	 * pid 1. */
	assert_int_equal(t_host_uid(t_launcher_pid(sb)), (long)T_USERNS_BASE + 65534);
	assert_int_equal(t_host_uid(inv_sandbox_pid(sb)), (long)T_USERNS_BASE);
	t_init(sb, t_probe);
	inv_run_result r = {0};
	json_t *j = t_run(sb, 10000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_non_null(j);
	json_t *map = json_object_get(j, "uid_map");
	assert_string_equal(json_string_value(json_array_get(map, 0)), "0");
	assert_string_equal(json_string_value(json_array_get(map, 1)), "1879048192");
	/* cgroup namespace: every hierarchy shows the sandbox's group as "/". */
	json_t *cg = json_object_get(j, "cgroup");
	size_t i;
	json_t *v;
	json_array_foreach(cg, i, v)
	{
		const char *line = json_string_value(v);
		assert_non_null(line);
		const char *path = strrchr(line, ':');
		assert_non_null(path);
		assert_string_equal(path, ":/");
	}
	assert_false(json_is_true(json_object_get(j, "sys")));
	static const char *const denied[] = {"mount",  "unshare", "ptrace", "setns",
	                                     "keyctl", "bpf",     "clock",  "swapoff"};
	for (size_t k = 0; k < sizeof(denied) / sizeof(denied[0]); k++) {
		json_int_t e = json_integer_value(json_object_get(j, denied[k]));
		if (e != EPERM)
			fprintf(stderr, "%s: errno %lld\n", denied[k], (long long)e);
		assert_int_equal(e, EPERM);
	}
	const char *ps = json_string_value(json_object_get(j, "proc_sys"));
	assert_non_null(ps);
	assert_true(strcmp(ps, "EEROFS") == 0 || strcmp(ps, "EEACCES") == 0 ||
	            strcmp(ps, "EEPERM") == 0);
	/* Masked files read empty (or are absent from this kernel). */
	static const char *const masked[] = {"kcore", "keys"};
	for (size_t k = 0; k < 2; k++) {
		json_t *m = json_object_get(j, masked[k]);
		assert_true((json_is_integer(m) && json_integer_value(m) == 0) ||
		            (json_is_string(m) && strcmp(json_string_value(m), "EENOENT") == 0));
	}
	assert_true(json_is_string(json_object_get(j, "sysrq")));
	/* The allow-list: families beyond unix/inet/inet6/netlink-route are
	 * "not supported", clone3 "does not exist" (libc falls back to clone),
	 * and a unix socket still opens. */
	assert_int_equal(json_integer_value(json_object_get(j, "vsock")), EAFNOSUPPORT);
	assert_int_equal(json_integer_value(json_object_get(j, "netlink_audit")), EPROTONOSUPPORT);
	assert_int_equal(json_integer_value(json_object_get(j, "clone3")), ENOSYS);
	assert_true(json_is_true(json_object_get(j, "unix")));
	json_decref(j);
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

static const char t_hog[] = "def main(args):\n"
                            "    print('allocating')\n"
                            "    blocks = []\n"
                            "    for i in range(64):\n"
                            "        blocks.append(bytearray(16 << 20))\n"
                            "    return {'allocated_mb': 16 * len(blocks)}\n";

static void test_oom(void **state)
{
	const char *kind = *state;
	(void)kind;
	inv_sandbox *sb = t_create("python:3", 64, 0, T_USERNS_BASE);
	t_init(sb, t_hog);
	inv_run_result r = {0};
	json_t *j = t_run(sb, 20000, &r);
	assert_int_equal(r.status, INV_RUN_DEV_ERROR);
	assert_non_null(strstr(r.result, "memory limit exceeded"));
	assert_false(inv_sandbox_alive(sb));
	json_decref(j);
	inv_run_result_clear(&r);
	inv_sandbox_destroy(sb);
}

static const char t_bomb[] = "import os, time\n"
                             "def main(args):\n"
                             "    kids, err = [], None\n"
                             "    for i in range(500):\n"
                             "        try:\n"
                             "            pid = os.fork()\n"
                             "        except OSError as e:\n"
                             "            err = e.errno\n"
                             "            break\n"
                             "        if pid == 0:\n"
                             "            time.sleep(60)\n"
                             "            os._exit(0)\n"
                             "        kids.append(pid)\n"
                             "    for k in kids:\n"
                             "        os.kill(k, 9)\n"
                             "        os.waitpid(k, 0)\n"
                             "    return {'forked': len(kids), 'errno': err}\n";

static void test_fork_bomb(void **state)
{
	(void)state;
	inv_sandbox *sb = t_create("python:3", 128, 32, T_USERNS_BASE);
	t_init(sb, t_bomb);
	inv_run_result r = {0};
	json_t *j = t_run(sb, 20000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	json_int_t forked = json_integer_value(json_object_get(j, "forked"));
	assert_true(forked > 0 && forked < 32);
	assert_int_equal(json_integer_value(json_object_get(j, "errno")), EAGAIN);
	json_decref(j);
	inv_run_result_clear(&r);
	/* Still usable after the storm. */
	assert_true(inv_sandbox_alive(sb));
	inv_sandbox_destroy(sb);
}

/* A thread left behind by the function bumps a counter file in /tmp. */
static const char t_ticker[] = "import os, threading, time\n"
                               "def tick():\n"
                               "    n = 0\n"
                               "    while True:\n"
                               "        n += 1\n"
                               "        with open('/tmp/c.new', 'w') as f:\n"
                               "            f.write(str(n))\n"
                               "        os.rename('/tmp/c.new', '/tmp/c')\n"
                               "        time.sleep(0.005)\n"
                               "threading.Thread(target=tick, daemon=True).start()\n"
                               "def main(args):\n"
                               "    while not os.path.exists('/tmp/c'):\n"
                               "        time.sleep(0.005)\n"
                               "    time.sleep(0.05)\n"
                               "    return {'n': int(open('/tmp/c').read())}\n";

static long t_counter(pid_t launcher)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/root/tmp/c", (int)launcher);
	FILE *f = fopen(path, "r");
	long n = -1;
	if (f != NULL) {
		if (fscanf(f, "%ld", &n) != 1)
			n = -1;
		fclose(f);
	}
	return n;
}

/* The one group dir under dir (a sandbox's), heap, or NULL. */
static char *t_only_group(const char *dir)
{
	DIR *d = opendir(dir);
	char *found = NULL;
	struct dirent *de;
	while (d != NULL && (de = readdir(d)) != NULL)
		if (de->d_type == DT_DIR && de->d_name[0] != '.' && found == NULL)
			found = gust_xasprintf("%s/%s", dir, de->d_name);
	if (d != NULL)
		closedir(d);
	return found;
}

static bool t_file_says(const char *path, const char *want)
{
	char buf[256] = "";
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = 0;
	fclose(f);
	return strstr(buf, want) != NULL;
}

/* Waits (bounded) until path says want; the assertion is on the state. */
static bool t_wait_file(const char *path, const char *want)
{
	for (int i = 0; i < 500 && !t_file_says(path, want); i++)
		usleep(10 * 1000);
	return t_file_says(path, want);
}

/* The idle freezer (v1): a frozen sandbox runs nothing, a thawed one runs
 * its next activation, and destroying a frozen one neither hangs nor leaves
 * a group behind; a frozen group left by a killed run is swept. */
static void test_freeze(void **state)
{
	(void)state;
	assert_true(inv_cgroups_can_freeze(t_cg));
	const char *fzdir = inv_cgroups_dir(t_cg, "freezer");
	assert_non_null(fzdir);
	inv_sandbox *sb = t_create("python:3", 128, 0, T_USERNS_BASE);
	t_init(sb, t_ticker);
	pid_t launcher = t_launcher_pid(sb);
	inv_run_result r = {0};
	json_t *j = t_run(sb, 10000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	json_decref(j);
	inv_run_result_clear(&r);
	cleanup_free char *group = t_only_group(fzdir);
	assert_non_null(group);
	cleanup_free char *fstate = gust_xasprintf("%s/freezer.state", group);

	assert_int_equal(inv_sandbox_freeze(sb, true, NULL), 0);
	assert_true(t_wait_file(fstate, "FROZEN"));
	long c1 = t_counter(launcher);
	usleep(300 * 1000);
	long c2 = t_counter(launcher);
	printf("[info] frozen: counter %ld then %ld\n", c1, c2);
	assert_true(c1 > 0);
	assert_int_equal(c1, c2);

	assert_int_equal(inv_sandbox_freeze(sb, false, NULL), 0);
	assert_true(t_file_says(fstate, "THAWED"));
	j = t_run(sb, 10000, &r);
	assert_int_equal(r.status, INV_RUN_SUCCESS);
	assert_true(json_integer_value(json_object_get(j, "n")) > c2);
	json_decref(j);
	inv_run_result_clear(&r);

	/* Destroyed while frozen: the kill thaws it, pid 1 is reaped. */
	assert_int_equal(inv_sandbox_freeze(sb, true, NULL), 0);
	assert_true(t_wait_file(fstate, "FROZEN"));
	inv_sandbox_destroy(sb);
	assert_int_equal(t_count_dir(fzdir), 0);
	assert_int_equal(t_count_dir(inv_cgroups_dir(t_cg, "memory")), 0);

	/* A frozen group with a process, as a killed invoker leaves it. */
	inv_cgroup *g = NULL;
	inv_cg_limits lim = {.memory_mb = 64, .pids_max = 8, .cpu_shares = 256};
	assert_int_equal(inv_cgroup_create(t_cg, "frozen-leftover", &lim, &g, NULL), 0);
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(inv_cgroup_attach(g, kid, NULL), 0);
	assert_int_equal(inv_cgroup_freeze(g, true, NULL), 0);
	cleanup_free char *gstate = gust_xasprintf("%s/frozen-leftover/freezer.state", fzdir);
	assert_true(t_wait_file(gstate, "FROZEN"));
	inv_cgroups *again = NULL;
	assert_int_equal(inv_cgroups_open("v1", t_tag, &again, NULL), 0);
	int st = 0;
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(t_count_dir(fzdir), 0);
	/* Closing a manager removes the tag dirs: the tests after this one get
	 * them back from a fresh one. */
	inv_cgroups_close(again);
	inv_cgroup_destroy(g);
	inv_cgroups_close(t_cg);
	t_cg = NULL;
	assert_int_equal(inv_cgroups_open("v1", t_tag, &t_cg, NULL), 0);
}

/* Groups are removed with their sandboxes, and after a crash by the sweep of
 * the next manager with the same tag (its processes killed first). */
static void test_cleanup_and_sweep(void **state)
{
	(void)state;
	const char *memdir = inv_cgroups_dir(t_cg, "memory");
	assert_non_null(memdir);
	inv_sandbox *sb = t_create("python:3", 128, 0, T_USERNS_BASE);
	assert_int_equal(t_count_dir(memdir), 1);
	inv_sandbox_destroy(sb);
	assert_int_equal(t_count_dir(memdir), 0);

	/* A process left in a group, as if the invoker had been killed. */
	inv_cgroup *g = NULL;
	inv_cg_limits lim = {.memory_mb = 64, .pids_max = 8, .cpu_shares = 256};
	assert_int_equal(inv_cgroup_create(t_cg, "leftover", &lim, &g, NULL), 0);
	pid_t kid = fork();
	assert_true(kid >= 0);
	if (kid == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(inv_cgroup_attach(g, kid, NULL), 0);
	inv_cgroups *again = NULL;
	assert_int_equal(inv_cgroups_open("v1", t_tag, &again, NULL), 0);
	int st = 0;
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(t_count_dir(memdir), 0);
	inv_cgroups_close(again);
	/* g's dirs are gone already: destroying it only frees it. */
	inv_cgroup_destroy(g);
}

/* The v2 back-end on this host's unified hierarchy (which has no controllers:
 * limits are skipped) still contains, kills and removes. */
static void test_v2_backend(void **state)
{
	(void)state;
	char tag[64];
	snprintf(tag, sizeof(tag), "test-v2-%d", (int)getpid());
	inv_cgroups *m = NULL;
	gust_error *err = NULL;
	int rv = inv_cgroups_open("v2", tag, &m, &err);
	if (rv != 0)
		fprintf(stderr, "v2: %s\n", gust_error_msg(err));
	gust_error_free(err);
	assert_int_equal(rv, 0);
	assert_string_equal(inv_cgroups_backend(m), "v2");
	const char *dir = inv_cgroups_dir(m, NULL);
	assert_non_null(dir);
	inv_cgroup *g = NULL;
	inv_cg_limits lim = {.memory_mb = 64, .pids_max = 8, .cpu_shares = 1024};
	assert_int_equal(inv_cgroup_create(m, "g1", &lim, &g, NULL), 0);
	pid_t kid = fork();
	if (kid == 0) {
		pause();
		_exit(0);
	}
	assert_int_equal(inv_cgroup_attach(g, kid, NULL), 0);
	cleanup_free char *procs = gust_xasprintf("%s/g1/cgroup.procs", dir);
	FILE *f = fopen(procs, "r");
	assert_non_null(f);
	int seen = 0;
	assert_int_equal(fscanf(f, "%d", &seen), 1);
	fclose(f);
	assert_int_equal(seen, kid);
	/* cgroup.freeze needs no controller: the group freezes, and a frozen
	 * group is still killed and removed. */
	assert_true(inv_cgroups_can_freeze(m));
	assert_int_equal(inv_cgroup_freeze(g, true, NULL), 0);
	cleanup_free char *events = gust_xasprintf("%s/g1/cgroup.events", dir);
	assert_true(t_wait_file(events, "frozen 1"));
	inv_cgroup_destroy(g);
	int st = 0;
	assert_int_equal(waitpid(kid, &st, 0), kid);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(t_count_dir(dir), 0);
	cleanup_free char *keep = gust_xstrdup(dir);
	inv_cgroups_close(m);
	struct stat sst;
	assert_int_equal(stat(keep, &sst), -1);
}

static int setup_all(void **state)
{
	(void)state;
	t_rtdir = getenv("GUST_RUNTIME_DIR");
	if (t_rtdir == NULL)
		t_rtdir = GUST_RUNTIME_DIR_DEFAULT;
	t_state = th_tmpdir("invlimits");
	snprintf(t_tag, sizeof(t_tag), "test-limits-%d", (int)getpid());
	gust_error *err = NULL;
	if (inv_cgroups_open("v1", t_tag, &t_cg, &err) != 0) {
		fprintf(stderr, "cgroups: %s\n", gust_error_msg(err));
		gust_error_free(err);
		return -1;
	}
	return t_state != NULL ? 0 : -1;
}

static int teardown_all(void **state)
{
	(void)state;
	inv_cgroups_close(t_cg);
	th_rmdir(t_state);
	free(t_state);
	return 0;
}

int main(void)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_inv_limits needs root: skipped\n");
		return 77;
	}
	if (access("/sys/fs/cgroup/memory/memory.limit_in_bytes", F_OK) != 0) {
		fprintf(stderr, "test_inv_limits needs the cgroup v1 memory controller: skipped\n");
		return 77;
	}
	signal(SIGPIPE, SIG_IGN);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_userns_seccomp_proc), cmocka_unit_test(test_oom),
	    cmocka_unit_test(test_fork_bomb),           cmocka_unit_test(test_freeze),
	    cmocka_unit_test(test_cleanup_and_sweep),   cmocka_unit_test(test_v2_backend),
	};
	return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
