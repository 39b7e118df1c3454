/*
 * cgroup_int.h - what the cgroup back-ends (cgroup_v1.c, cgroup_v2.c) share
 * with the common code (cgroup.c). A group is a set of directories: one per
 * controller hierarchy on v1, one on v2; the common code kills and removes
 * them, a back-end knows its file names. Not part of the API.
 */
#ifndef INV_CGROUP_INT_H
#define INV_CGROUP_INT_H

#include "cgroup.h"

#define INV_CG_MAXDIRS 4
/* v1: an empty group kept frozen beside the sandboxes' (cgroup_v1.c). */
#define INV_CG_FREEZE_ANCHOR ".freeze-anchor"

typedef struct inv_cg_ops {
	const char *name;
	/* Finds the hierarchies and fills m->dirs with gust/<tag> in each (made). */
	int (*setup)(inv_cgroups *m, gust_error **err);
	/* Writes the limits into cg's (already made) dirs. */
	int (*limit)(inv_cgroup *cg, const inv_cg_limits *lim, gust_error **err);
	/* The OOM kill counter of cg. */
	long long (*oom_kills)(inv_cgroup *cg);
	/* Kills every process in dir (v2 has cgroup.kill), thawing it if it is
	 * frozen (a frozen v1 task takes no signal); 0 when it is empty. */
	int (*kill)(const char *dir);
	/* Stops (frozen) or resumes every process of cg. Returns once the
	 * kernel has been told: a freeze completes in the background (tasks
	 * stop at their next return to user space), a thaw wakes them at once.
	 * GUST_ENOTSUP when the host has no freezer for cg. */
	int (*freeze)(inv_cgroup *cg, bool frozen, gust_error **err);
} inv_cg_ops;

struct inv_cgroups {
	const inv_cg_ops *ops;
	char *tag;
	int ndirs;
	char *dirs[INV_CG_MAXDIRS];      /* <mount>/gust/<tag> */
	const char *ctl[INV_CG_MAXDIRS]; /* v1: the controller of dirs[i]; v2: NULL */
	bool warned;                     /* about a missing controller */
};

struct inv_cgroup {
	inv_cgroups *m;
	int ndirs;
	char *dirs[INV_CG_MAXDIRS];
};

extern const inv_cg_ops inv_cg_v1_ops;
extern const inv_cg_ops inv_cg_v2_ops;

/* Helpers shared by the back-ends (cgroup.c). */
int inv_cg_write(const char *dir, const char *file, const char *value, gust_error **err);
/* Reads "key N" from a flat-keyed file (memory.events, memory.oom_control). */
long long inv_cg_read_key(const char *dir, const char *file, const char *key);
/* Finds the mount point of a cgroup hierarchy: type "cgroup" with option
 * controller, or type "cgroup2" when controller is NULL. Heap path or NULL. */
char *inv_cg_mount(const char *controller);
/* Makes dir and its parents (0755). */
int inv_cg_mkdirs(const char *dir, gust_error **err);
/* SIGKILLs each pid listed in dir/cgroup.procs; returns how many it saw. */
int inv_cg_kill_procs(const char *dir);

#endif
