/*
 * inv_sweep.c - what a restarted invoker removes before it takes work: the
 * leftovers of an earlier run that was killed without cleaning up (SIGKILL,
 * a crash, a power cut).
 *
 * Processes: none survive on their own. Pid 1 of every sandbox has a
 * parent-death signal of SIGKILL, and killing pid 1 of a pid namespace kills
 * all of it; the cgroup sweep (cgroup.c) kills whatever might still be in our
 * groups. Mounts: a sandbox mounts only inside its own mount namespace, which
 * dies with its processes; on the host only its empty dirs remain, removed
 * here. Cgroups: swept by inv_cgroups_open. Network devices: a sandbox's veth
 * dies with its network namespace; the egress bridge and nftables table carry
 * the invoker's tag and are removed by inv_net_sweep.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/util.h"
#include "invoker.h"

int inv_sweep_state(const char *state_dir)
{
	cleanup_free char *top = gust_xasprintf("%s/sandboxes", state_dir);
	DIR *d = opendir(top);
	if (d == NULL)
		return 0;
	int n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		cleanup_free char *dir = gust_xasprintf("%s/%s", top, de->d_name);
		cleanup_free char *own = gust_xasprintf("%s/state.sock", dir);
		(void)unlink(own);
		/* Sandboxes of releases before the run dir was <id> itself. */
		cleanup_free char *root = gust_xasprintf("%s/root", dir);
		cleanup_free char *run = gust_xasprintf("%s/run", dir);
		cleanup_free char *sock = gust_xasprintf("%s/run/state.sock", dir);
		(void)unlink(sock);
		(void)rmdir(run);
		/* A root can only still be mounted on the host if something outside
		 * Gust propagated it here; detach rather than fail. */
		if (rmdir(root) < 0 && errno == EBUSY && umount2(root, MNT_DETACH) == 0)
			(void)rmdir(root);
		if (rmdir(dir) < 0 && errno != ENOENT) {
			gust_log_warn("INV-SWEEP-DIR", "cannot remove %s: %s", dir,
			              strerror(errno));
			continue;
		}
		n++;
	}
	closedir(d);
	if (n > 0)
		gust_log_warn("INV-SWEEP-DIR", "removed %d sandbox dir(s) left by an earlier run",
		              n);
	return n;
}
