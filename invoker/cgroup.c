/*
 * cgroup.c - the back-end independent part of sandbox cgroups: choosing the
 * back-end, making and removing groups, and sweeping the groups of an earlier
 * run of this invoker.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <mntent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cgroup_int.h"
#include "gust/log.h"
#include "gust/util.h"

/* How long removing a group waits for its killed processes to leave. */
#define INV_CG_RMDIR_MS 2000

int inv_cg_write(const char *dir, const char *file, const char *value, gust_error **err)
{
	cleanup_free char *path = gust_xasprintf("%s/%s", dir, file);
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return gust_error_set(err, errno == ENOENT ? GUST_ENOENT : GUST_EIO,
		                      "cgroup: open %s: %s", path, strerror(errno));
	size_t len = strlen(value);
	ssize_t w = write(fd, value, len);
	int e = errno;
	close(fd);
	if (w != (ssize_t)len)
		return gust_error_set(err, GUST_EIO, "cgroup: write '%s' to %s: %s", value, path,
		                      w < 0 ? strerror(e) : "short write");
	return 0;
}

long long inv_cg_read_key(const char *dir, const char *file, const char *key)
{
	cleanup_free char *path = gust_xasprintf("%s/%s", dir, file);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return -1;
	char line[256];
	size_t kl = strlen(key);
	long long v = -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, kl) == 0 && line[kl] == ' ') {
			v = strtoll(line + kl + 1, NULL, 10);
			break;
		}
	}
	fclose(f);
	return v;
}

char *inv_cg_mount(const char *controller)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	if (f == NULL)
		return NULL;
	char *found = NULL;
	struct mntent *me;
	while (found == NULL && (me = getmntent(f)) != NULL) {
		if (controller == NULL && strcmp(me->mnt_type, "cgroup2") == 0)
			found = gust_xstrdup(me->mnt_dir);
		else if (controller != NULL && strcmp(me->mnt_type, "cgroup") == 0 &&
		         hasmntopt(me, controller) != NULL)
			found = gust_xstrdup(me->mnt_dir);
	}
	endmntent(f);
	return found;
}

int inv_cg_mkdirs(const char *dir, gust_error **err)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof(tmp), "%s", dir) >= (int)sizeof(tmp))
		return gust_error_set(err, GUST_EINVAL, "cgroup: path too long: %s", dir);
	for (char *p = tmp + 1;; p++) {
		if (*p != '/' && *p != 0)
			continue;
		char c = *p;
		*p = 0;
		if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
			return gust_error_set(err, errno == EACCES ? GUST_EPERM : GUST_EIO,
			                      "cgroup: mkdir %s: %s", tmp, strerror(errno));
		if (c == 0)
			return 0;
		*p = c;
	}
}

int inv_cg_kill_procs(const char *dir)
{
	cleanup_free char *path = gust_xasprintf("%s/cgroup.procs", dir);
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	int n = 0;
	long pid;
	while (fscanf(f, "%ld", &pid) == 1) {
		if (pid > 0)
			(void)kill((pid_t)pid, SIGKILL);
		n++;
	}
	fclose(f);
	return n;
}

/* Kills what is in dir, then removes it, retrying while killed processes
 * are still on their way out (rmdir says EBUSY until the last one is gone). */
static int cg_remove_dir(const inv_cg_ops *ops, const char *dir)
{
	uint64_t until = gust_now_ms() + INV_CG_RMDIR_MS;
	for (;;) {
		if (rmdir(dir) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY || gust_now_ms() > until) {
			gust_log_warn("INV-CG-RMDIR", "rmdir %s: %s", dir, strerror(errno));
			return -1;
		}
		ops->kill(dir);
		struct timespec ts = {0, 2 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

/* Kills and removes every group under dir; returns how many. */
static int cg_sweep_dir(const inv_cg_ops *ops, const char *dir)
{
	DIR *d = opendir(dir);
	if (d == NULL)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		cleanup_free char *sub = gust_xasprintf("%s/%s", dir, de->d_name);
		ops->kill(sub);
		if (cg_remove_dir(ops, sub) == 0)
			n++;
	}
	closedir(d);
	return n;
}

int inv_cgroups_sweep(inv_cgroups *m)
{
	int most = 0;
	/* Last dir first: on v1 that is the freezer, whose kill thaws a group a
	 * killed run left frozen; its tasks then die, and the other
	 * hierarchies find their groups empty. */
	for (int i = m != NULL ? m->ndirs - 1 : -1; i >= 0; i--) {
		int n = cg_sweep_dir(m->ops, m->dirs[i]);
		if (n > most)
			most = n;
	}
	return most;
}

static bool cg_v1_memory(void)
{
	cleanup_free char *mem = inv_cg_mount("memory");
	return mem != NULL;
}

int inv_cgroups_open(const char *mode, const char *tag, inv_cgroups **mp, gust_error **err)
{
	const inv_cg_ops *ops;
	*mp = NULL;
	if (mode == NULL || strcmp(mode, "auto") == 0)
		ops = cg_v1_memory() ? &inv_cg_v1_ops : &inv_cg_v2_ops;
	else if (strcmp(mode, "v1") == 0)
		ops = &inv_cg_v1_ops;
	else if (strcmp(mode, "v2") == 0)
		ops = &inv_cg_v2_ops;
	else if (strcmp(mode, "none") == 0)
		return 0;
	else
		return gust_error_set(err, GUST_EINVAL,
		                      "cgroup: mode '%s' is not one of auto, v1, v2, none", mode);
	inv_cgroups *m = gust_xcalloc(1, sizeof(*m));
	m->ops = ops;
	m->tag = gust_xstrdup(tag);
	int rv = ops->setup(m, err);
	if (rv != 0) {
		inv_cgroups_close(m);
		return gust_error_wrap(err, "cgroup %s", ops->name);
	}
	int n = inv_cgroups_sweep(m);
	if (n > 0)
		gust_log_warn("INV-CG-SWEEP", "removed %d cgroup(s) left by an earlier run of %s",
		              n, tag);
	*mp = m;
	return 0;
}

void inv_cgroups_close(inv_cgroups *m)
{
	if (m == NULL)
		return;
	inv_cgroups_sweep(m);
	for (int i = 0; i < m->ndirs; i++) {
		cleanup_free char *anchor = gust_xasprintf("%s/" INV_CG_FREEZE_ANCHOR, m->dirs[i]);
		(void)rmdir(anchor); /* empty: it goes, frozen or not */
		if (rmdir(m->dirs[i]) < 0 && errno != ENOENT && errno != EBUSY)
			gust_log_warn("INV-CG-RMDIR", "rmdir %s: %s", m->dirs[i], strerror(errno));
		/* gust/ itself stays when other invokers use it (EBUSY/ENOTEMPTY). */
		char *slash = strrchr(m->dirs[i], '/');
		if (slash != NULL) {
			*slash = 0;
			(void)rmdir(m->dirs[i]);
		}
		free(m->dirs[i]);
	}
	free(m->tag);
	free(m);
}

const char *inv_cgroups_backend(const inv_cgroups *m)
{
	return m != NULL ? m->ops->name : "none";
}

const char *inv_cgroups_dir(const inv_cgroups *m, const char *controller)
{
	for (int i = 0; m != NULL && i < m->ndirs; i++)
		if (m->ctl[i] == NULL || (controller != NULL && strcmp(m->ctl[i], controller) == 0))
			return m->dirs[i];
	return NULL;
}

int inv_cgroup_create(inv_cgroups *m, const char *name, const inv_cg_limits *lim, inv_cgroup **cgp,
                      gust_error **err)
{
	*cgp = NULL;
	inv_cgroup *cg = gust_xcalloc(1, sizeof(*cg));
	cg->m = m;
	for (int i = 0; i < m->ndirs; i++) {
		cg->dirs[i] = gust_xasprintf("%s/%s", m->dirs[i], name);
		cg->ndirs = i + 1;
		if (mkdir(cg->dirs[i], 0755) < 0) {
			int e = errno;
			inv_cgroup_destroy(cg);
			return gust_error_set(err, e == EACCES ? GUST_EPERM : GUST_EIO,
			                      "cgroup: mkdir %s/%s: %s", m->dirs[i], name,
			                      strerror(e));
		}
	}
	int rv = m->ops->limit(cg, lim, err);
	if (rv != 0) {
		inv_cgroup_destroy(cg);
		return rv;
	}
	*cgp = cg;
	return 0;
}

int inv_cgroup_update(inv_cgroup *cg, const inv_cg_limits *lim, gust_error **err)
{
	return cg != NULL ? cg->m->ops->limit(cg, lim, err) : 0;
}

int inv_cgroup_attach(inv_cgroup *cg, pid_t pid, gust_error **err)
{
	char buf[24];
	snprintf(buf, sizeof(buf), "%d", (int)pid);
	for (int i = 0; i < cg->ndirs; i++) {
		int rv = inv_cg_write(cg->dirs[i], "cgroup.procs", buf, err);
		if (rv != 0)
			return rv;
	}
	return 0;
}

int inv_cgroup_freeze(inv_cgroup *cg, bool frozen, gust_error **err)
{
	if (cg == NULL)
		return gust_error_set(err, GUST_ENOTSUP, "cgroup: the sandbox has no cgroup");
	return cg->m->ops->freeze(cg, frozen, err);
}

bool inv_cgroups_can_freeze(const inv_cgroups *m)
{
	if (m == NULL)
		return false;
	if (m->ops == &inv_cg_v2_ops) {
		/* The tag dir is a non-root group: it has the file if the kernel
		 * has the v2 freezer. */
		cleanup_free char *p = gust_xasprintf("%s/cgroup.freeze", m->dirs[0]);
		return access(p, F_OK) == 0;
	}
	return inv_cgroups_dir(m, "freezer") != NULL;
}

long long inv_cgroup_oom_kills(inv_cgroup *cg)
{
	return cg != NULL ? cg->m->ops->oom_kills(cg) : 0;
}

void inv_cgroup_destroy(inv_cgroup *cg)
{
	if (cg == NULL)
		return;
	/* Last dir first, for the freezer's sake (see inv_cgroups_sweep). */
	for (int i = cg->ndirs - 1; i >= 0; i--) {
		cg->m->ops->kill(cg->dirs[i]);
		cg_remove_dir(cg->m->ops, cg->dirs[i]);
		free(cg->dirs[i]);
	}
	free(cg);
}

/* Why: moving a process into a cgroup takes the kernel's global
 * cgroup_threadgroup_rwsem for writing, and when nothing has moved for a while
 * that waits for an RCU grace period: 1.1 ms on average here, 15 ms at worst,
 * on the critical path of every sandbox. favordynmods (Linux 6.0+) keeps that
 * lock in the mode where writers do not wait, at the price of a slightly
 * slower fork and exit for readers. The lock is global, so the flag on any
 * cgroup2 hierarchy (even one without controllers, as the v2 mount of a v1
 * host) helps the v1 back-end as well. fspick + fsconfig change the
 * superblock only, leaving the mount's own flags alone, which a
 * mount(MS_REMOUNT) would reset. */
#ifndef FSCONFIG_SET_FLAG
#define FSCONFIG_SET_FLAG 0
#define FSCONFIG_CMD_RECONFIGURE 7
#endif
#ifndef FSPICK_CLOEXEC
#define FSPICK_CLOEXEC 1
#endif
/* A reconfigure sets or clears every cgroup2 root flag from a blank
 * context, so the flags the mount already has are set again with ours; an
 * option this list does not know means "leave the host alone". */
static const char *const cg2_flags[] = {"nsdelegate",
                                        "favordynmods",
                                        "memory_localevents",
                                        "memory_recursiveprot",
                                        "memory_hugetlb_accounting",
                                        "pids_localevents"};
static const char *const cg2_mount_opts[] = {"rw",         "ro",       "nosuid",  "nodev",
                                             "noexec",     "relatime", "noatime", "strictatime",
                                             "nodiratime", "lazytime", "seclabel"};

static bool cg2_in(const char *opt, size_t n, const char *const *list, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (strlen(list[i]) == n && strncmp(opt, list[i], n) == 0)
			return true;
	return false;
}

/* Sets favordynmods on the cgroup2 mount me, keeping its other flags. */
static int cg2_favor(const struct mntent *me, gust_error **err)
{
	const char *o = me->mnt_opts;
	while (*o != '\0') {
		size_t n = strcspn(o, ",");
		if (!cg2_in(o, n, cg2_flags, sizeof(cg2_flags) / sizeof(cg2_flags[0])) &&
		    !cg2_in(o, n, cg2_mount_opts,
		            sizeof(cg2_mount_opts) / sizeof(cg2_mount_opts[0])))
			return gust_error_set(
			    err, GUST_ENOTSUP,
			    "cgroup: %s has option '%.*s', unknown to us: left as it is",
			    me->mnt_dir, (int)n, o);
		o += n + (o[n] == ',');
	}
	int fd = (int)syscall(SYS_fspick, AT_FDCWD, me->mnt_dir, FSPICK_CLOEXEC);
	if (fd < 0)
		return gust_error_set(err, GUST_EIO, "cgroup: favordynmods on %s: %s", me->mnt_dir,
		                      strerror(errno));
	int rv = 0;
	for (size_t i = 0; rv == 0 && i < sizeof(cg2_flags) / sizeof(cg2_flags[0]); i++) {
		bool want = strcmp(cg2_flags[i], "favordynmods") == 0 ||
		            hasmntopt(me, cg2_flags[i]) != NULL;
		if (want && syscall(SYS_fsconfig, fd, FSCONFIG_SET_FLAG, cg2_flags[i], NULL, 0) < 0)
			rv = gust_error_set(err, GUST_EIO, "cgroup: %s on %s: %s", cg2_flags[i],
			                    me->mnt_dir, strerror(errno));
	}
	if (rv == 0 && syscall(SYS_fsconfig, fd, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) < 0)
		rv = gust_error_set(err, GUST_EIO, "cgroup: favordynmods on %s: %s", me->mnt_dir,
		                    strerror(errno));
	close(fd);
	return rv;
}

/* Whether the cgroup2 mount at dir shows favordynmods now. */
static bool cg2_has_favor(const char *dir)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	bool yes = false;
	struct mntent *me;
	while (f != NULL && !yes && (me = getmntent(f)) != NULL)
		yes = strcmp(me->mnt_type, "cgroup2") == 0 && strcmp(me->mnt_dir, dir) == 0 &&
		      hasmntopt(me, "favordynmods") != NULL;
	if (f != NULL)
		endmntent(f);
	return yes;
}

int inv_cgroups_favor_dynmods(gust_error **err)
{
	FILE *f = setmntent("/proc/self/mounts", "re");
	if (f == NULL)
		return gust_error_set(err, GUST_EIO, "cgroup: /proc/self/mounts: %s",
		                      strerror(errno));
	int rv = 1; /* no cgroup2 mount */
	struct mntent *me;
	while (rv != 0 && (me = getmntent(f)) != NULL) {
		if (strcmp(me->mnt_type, "cgroup2") != 0)
			continue;
		if (hasmntopt(me, "favordynmods") != NULL) {
			rv = 0;
			break;
		}
		if ((rv = cg2_favor(me, err)) != 0)
			break;
		/* In a cgroup namespace other than the host's, the kernel takes
		 * the request and does nothing: believe the mount table only. */
		if (!cg2_has_favor(me->mnt_dir)) {
			rv = gust_error_set(
			    err, GUST_EPERM,
			    "cgroup: the kernel did not set favordynmods on %s (not the "
			    "host's cgroup namespace?)",
			    me->mnt_dir);
			break;
		}
		gust_log_info("INV-CG-DYNMODS",
		              "cgroup2 at %s remounted with favordynmods (its other flags kept): "
		              "moving a sandbox into its cgroup no longer waits for an RCU grace "
		              "period",
		              me->mnt_dir);
		rv = 0;
	}
	endmntent(f);
	if (rv == 1)
		rv = gust_error_set(err, GUST_ENOENT, "cgroup: no cgroup2 hierarchy is mounted");
	return rv;
}
