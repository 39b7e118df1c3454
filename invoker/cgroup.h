/*
 * cgroup.h - resource limits of sandboxes through cgroups, one interface over
 * two back-ends: cgroup v1 (one hierarchy per controller, as on this machine)
 * and cgroup v2 (one unified hierarchy, as on most current hosts).
 *
 * An invoker opens one manager; its groups live under gust/<tag>/ in every
 * hierarchy it uses, where tag names the invoker (its id and state dir), so
 * that a restarted invoker finds and removes what a killed one left behind,
 * and never touches another invoker's groups.
 *
 * A manager is shared by the invoker's threads; a group has one owner (its
 * sandbox).
 */
#ifndef INV_CGROUP_H
#define INV_CGROUP_H

#include <stdbool.h>
#include <sys/types.h>

#include "gust/err.h"

typedef struct inv_cgroups inv_cgroups;
typedef struct inv_cgroup inv_cgroup;

typedef struct inv_cg_limits {
	int memory_mb;  /* hard memory limit (no swap beyond it) */
	int pids_max;   /* processes and threads */
	int cpu_shares; /* v1 cpu.shares scale (1024 = one share); v2 maps it to cpu.weight */
} inv_cg_limits;

/* Opens the back-end named by mode ("auto", "v1", "v2" or "none"; auto picks v1
 * when the memory controller is mounted as v1, else v2), creates gust/<tag> in
 * each hierarchy and removes every group left there by an earlier run (killing
 * its processes first). With "none" (or *mp == NULL afterwards) sandboxes run
 * without cgroups. */
int inv_cgroups_open(const char *mode, const char *tag, inv_cgroups **mp, gust_error **err);
/* Sets favordynmods on the host's cgroup2 hierarchy (see cgroup.c for why);
 * 0 when it is set or was already. */
int inv_cgroups_favor_dynmods(gust_error **err);
/* Removes what is left under gust/<tag> (groups and the tag dirs). Safe on NULL. */
void inv_cgroups_close(inv_cgroups *m);
/* "v1", "v2" or "none". */
const char *inv_cgroups_backend(const inv_cgroups *m);
/* Kills and removes every group under gust/<tag>; returns how many there were. */
int inv_cgroups_sweep(inv_cgroups *m);
/* The host dir of this invoker's groups in the hierarchy of controller ("memory",
 * "pids", ...; v2: any), or NULL if that controller is not used. */
const char *inv_cgroups_dir(const inv_cgroups *m, const char *controller);

/* Makes group name with the limits (a limit whose controller the host lacks is
 * skipped, with a warning once). */
int inv_cgroup_create(inv_cgroups *m, const char *name, const inv_cg_limits *lim, inv_cgroup **cgp,
                      gust_error **err);
/* Changes the limits of an existing group (a stem cell that becomes an
 * action's sandbox takes the action's memory limit). */
int inv_cgroup_update(inv_cgroup *cg, const inv_cg_limits *lim, gust_error **err);
/* Moves pid (and its future children) into the group. */
int inv_cgroup_attach(inv_cgroup *cg, pid_t pid, gust_error **err);
/* How many processes of the group the kernel's OOM killer has killed. */
long long inv_cgroup_oom_kills(inv_cgroup *cg);
/* Stops every process of the group (frozen) or lets them run again, through
 * the cgroup freezer (v1 freezer.state, v2 cgroup.freeze). Never waits for
 * the freeze to complete: a task stops when it next leaves the kernel, and
 * one that is never scheduled costs nothing meanwhile. A thaw is one write,
 * after which the tasks are runnable. GUST_ENOTSUP when the host has no
 * freezer (v1 without the freezer hierarchy, or no cgroups). */
int inv_cgroup_freeze(inv_cgroup *cg, bool frozen, gust_error **err);
/* Whether inv_cgroup_freeze can work with this manager. */
bool inv_cgroups_can_freeze(const inv_cgroups *m);
/* Kills whatever is still in the group (thawing it first if frozen), removes
 * it and frees cg. Safe on NULL. */
void inv_cgroup_destroy(inv_cgroup *cg);

#endif
