/*
 * cgroup_v2.c - the cgroup v2 back-end: one unified hierarchy; the controllers
 * a group uses must be enabled in the subtree_control of every ancestor.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "gust/log.h"
#include "gust/util.h"

static bool v2_has(const char *dir, const char *file)
{
	cleanup_free char *p = gust_xasprintf("%s/%s", dir, file);
	return access(p, F_OK) == 0;
}

/* Enables in dir's subtree_control those of memory, pids and cpu that dir
 * has; a host that lacks one (like this machine's v2 mount, which has none)
 * runs without that limit. */
static void v2_enable(const char *dir)
{
	static const char *const want[] = {"+memory", "+pids", "+cpu"};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		(void)inv_cg_write(dir, "cgroup.subtree_control", want[i], NULL);
}

static int v2_setup(inv_cgroups *m, gust_error **err)
{
	cleanup_free char *mnt = inv_cg_mount(NULL);
	if (mnt == NULL)
		return gust_error_set(err, GUST_ENOTSUP, "no cgroup2 hierarchy is mounted");
	cleanup_free char *top = gust_xasprintf("%s/gust", mnt);
	char *dir = gust_xasprintf("%s/%s", top, m->tag);
	m->ctl[0] = NULL;
	m->dirs[0] = dir;
	m->ndirs = 1;
	int rv = inv_cg_mkdirs(dir, err);
	if (rv != 0)
		return rv;
	v2_enable(mnt);
	v2_enable(top);
	v2_enable(dir);
	return 0;
}

static int v2_set(inv_cgroup *cg, const char *file, const char *value, gust_error **err)
{
	if (!v2_has(cg->dirs[0], file)) {
		if (!cg->m->warned)
			gust_log_warn("INV-CG-NOCTL", "cgroup v2: %s has no %s: not limited",
			              cg->dirs[0], file);
		cg->m->warned = true;
		return 0;
	}
	return inv_cg_write(cg->dirs[0], file, value, err);
}

static int v2_limit(inv_cgroup *cg, const inv_cg_limits *lim, gust_error **err)
{
	char buf[32];
	int rv;
	if (lim->memory_mb > 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)lim->memory_mb << 20);
		if ((rv = v2_set(cg, "memory.max", buf, err)) != 0 ||
		    (rv = v2_set(cg, "memory.swap.max", "0", err)) != 0)
			return rv;
	}
	if (lim->pids_max > 0) {
		snprintf(buf, sizeof(buf), "%d", lim->pids_max);
		if ((rv = v2_set(cg, "pids.max", buf, err)) != 0)
			return rv;
	}
	if (lim->cpu_shares > 0) {
		/* v1 shares [2, 262144] onto v2 weight [1, 10000], linearly. */
		long long s = lim->cpu_shares < 2        ? 2
		              : lim->cpu_shares > 262144 ? 262144
		                                         : lim->cpu_shares;
		snprintf(buf, sizeof(buf), "%lld", 1 + ((s - 2) * 9999) / 262142);
		if ((rv = v2_set(cg, "cpu.weight", buf, err)) != 0)
			return rv;
	}
	return 0;
}

static long long v2_oom_kills(inv_cgroup *cg)
{
	long long n = inv_cg_read_key(cg->dirs[0], "memory.events", "oom_kill");
	return n < 0 ? 0 : n;
}

/* cgroup.kill (Linux 5.14) kills the whole subtree at once, without the race
 * of a fork between reading cgroup.procs and signalling. A frozen v2 task
 * dies of SIGKILL all the same; the thaw is for kernels without
 * cgroup.kill's path, and costs nothing on an empty group. */
static int v2_kill(const char *dir)
{
	int rv = inv_cg_write(dir, "cgroup.kill", "1", NULL) == 0 ? 0 : inv_cg_kill_procs(dir);
	(void)inv_cg_write(dir, "cgroup.freeze", "0", NULL);
	return rv;
}

/* cgroup.freeze (Linux 5.2) needs no controller: it is in every non-root
 * group, even on a v2 mount without controllers. */
static int v2_freeze(inv_cgroup *cg, bool frozen, gust_error **err)
{
	if (!v2_has(cg->dirs[0], "cgroup.freeze"))
		return gust_error_set(err, GUST_ENOTSUP, "cgroup v2: %s has no cgroup.freeze",
		                      cg->dirs[0]);
	return inv_cg_write(cg->dirs[0], "cgroup.freeze", frozen ? "1" : "0", err);
}

const inv_cg_ops inv_cg_v2_ops = {
    .name = "v2",
    .setup = v2_setup,
    .limit = v2_limit,
    .oom_kills = v2_oom_kills,
    .kill = v2_kill,
    .freeze = v2_freeze,
};
