/*
 * cgroup_v1.c - the cgroup v1 back-end: one hierarchy per controller (memory,
 * pids, cpu), each with its own gust/<tag>/<sandbox> dir.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup_int.h"
#include "gust/log.h"
#include "gust/util.h"

/* freezer: idle sandboxes are stopped between activations (cgroup.h). */
static const char *const v1_controllers[INV_CG_MAXDIRS] = {"memory", "pids", "cpu", "freezer"};

/* Why an empty group kept frozen: the v1 freezer turns a kernel static key
 * on when the first group on the host starts freezing and off when the last
 * one thaws, and each turn patches kernel text (stop_machine-like IPIs to
 * every CPU): 1.2 ms per thaw here, 8 ms at p99, on the activation's path.
 * One group that stays frozen keeps the key on, and a thaw is then a 30 us
 * write (bench/sandbox_bench.sh, GUST_BENCH_ONLY=freeze). The price, while
 * the invoker runs: the kernel's freezing() checks (in signal delivery and
 * freezable sleeps) take their slow path, a few loads, host-wide. Its name
 * starts with a dot so that sweeps leave it alone; close removes it. */
static void v1_freeze_anchor(const char *dir)
{
	cleanup_free char *anchor = gust_xasprintf("%s/" INV_CG_FREEZE_ANCHOR, dir);
	if ((mkdir(anchor, 0755) < 0 && errno != EEXIST) ||
	    inv_cg_write(anchor, "freezer.state", "FROZEN", NULL) != 0)
		gust_log_warn("INV-CG-ANCHOR",
		              "cgroup v1: cannot keep %s frozen (%s): each thaw of an idle "
		              "sandbox may cost a millisecond",
		              anchor, strerror(errno));
}

static int v1_setup(inv_cgroups *m, gust_error **err)
{
	for (int i = 0; i < INV_CG_MAXDIRS; i++) {
		cleanup_free char *mnt = inv_cg_mount(v1_controllers[i]);
		if (mnt == NULL) {
			/* Memory is the one limit we cannot run without. */
			if (i == 0)
				return gust_error_set(err, GUST_ENOTSUP,
				                      "no cgroup v1 memory hierarchy is mounted");
			gust_log_warn("INV-CG-NOCTL", "cgroup v1: no %s hierarchy: not limited",
			              v1_controllers[i]);
			continue;
		}
		char *dir = gust_xasprintf("%s/gust/%s", mnt, m->tag);
		m->ctl[m->ndirs] = v1_controllers[i];
		m->dirs[m->ndirs++] = dir;
		int rv = inv_cg_mkdirs(dir, err);
		if (rv != 0)
			return rv;
		if (strcmp(v1_controllers[i], "freezer") == 0)
			v1_freeze_anchor(dir);
	}
	return 0;
}

static const char *v1_dir(inv_cgroup *cg, const char *controller)
{
	for (int i = 0; i < cg->ndirs; i++)
		if (strcmp(cg->m->ctl[i], controller) == 0)
			return cg->dirs[i];
	return NULL;
}

static int v1_limit(inv_cgroup *cg, const inv_cg_limits *lim, gust_error **err)
{
	char buf[32];
	const char *d;
	int rv;
	if ((d = v1_dir(cg, "memory")) != NULL && lim->memory_mb > 0) {
		snprintf(buf, sizeof(buf), "%lld", (long long)lim->memory_mb << 20);
		/* memory.limit may never exceed memory.memsw.limit: when a limit is
		 * raised, the memsw one has to move first. */
		if (inv_cg_write(d, "memory.limit_in_bytes", buf, NULL) != 0) {
			(void)inv_cg_write(d, "memory.memsw.limit_in_bytes", buf, NULL);
			if ((rv = inv_cg_write(d, "memory.limit_in_bytes", buf, err)) != 0)
				return rv;
		}
		/* memory+swap at the same value: the limit cannot be dodged by swapping
		 * (the file is missing when the kernel does not account swap). */
		rv = inv_cg_write(d, "memory.memsw.limit_in_bytes", buf, NULL);
		if (rv != 0 && rv != GUST_ENOENT)
			return gust_error_set(err, rv, "cgroup v1: cannot limit swap in %s", d);
	}
	if ((d = v1_dir(cg, "pids")) != NULL && lim->pids_max > 0) {
		snprintf(buf, sizeof(buf), "%d", lim->pids_max);
		if ((rv = inv_cg_write(d, "pids.max", buf, err)) != 0)
			return rv;
	}
	if ((d = v1_dir(cg, "cpu")) != NULL && lim->cpu_shares > 0) {
		snprintf(buf, sizeof(buf), "%d", lim->cpu_shares < 2 ? 2 : lim->cpu_shares);
		if ((rv = inv_cg_write(d, "cpu.shares", buf, err)) != 0)
			return rv;
	}
	return 0;
}

static long long v1_oom_kills(inv_cgroup *cg)
{
	const char *d = v1_dir(cg, "memory");
	long long n = d != NULL ? inv_cg_read_key(d, "memory.oom_control", "oom_kill") : 0;
	return n < 0 ? 0 : n;
}

/* v1 has no cgroup.kill: signal every listed process. A frozen v1 task
 * stays in the refrigerator with SIGKILL pending, so the freezer dir is
 * thawed after the signal (the write fails harmlessly in the other
 * hierarchies, which have no freezer.state). */
static int v1_kill(const char *dir)
{
	int n = inv_cg_kill_procs(dir);
	(void)inv_cg_write(dir, "freezer.state", "THAWED", NULL);
	return n;
}

static int v1_freeze(inv_cgroup *cg, bool frozen, gust_error **err)
{
	const char *d = v1_dir(cg, "freezer");
	if (d == NULL)
		return gust_error_set(err, GUST_ENOTSUP, "cgroup v1: no freezer hierarchy");
	return inv_cg_write(d, "freezer.state", frozen ? "FROZEN" : "THAWED", err);
}

const inv_cg_ops inv_cg_v1_ops = {
    .name = "v1",
    .setup = v1_setup,
    .limit = v1_limit,
    .oom_kills = v1_oom_kills,
    .kill = v1_kill,
    .freeze = v1_freeze,
};
