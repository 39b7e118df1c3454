/* sandbox_ids.c - a host id range of its own for each live sandbox.
 *
 * The kernel counts inotify instances and watches, user namespaces, keys,
 * fanotify groups and message queues per (user namespace, uid), and charges
 * each level up to the initial namespace: a count made inside a sandbox is
 * charged, in the host's namespace, to the uid that OWNS the sandbox's user
 * namespace, which is the effective uid of the thread that cloned it. With
 * every sandbox cloned by the invoker as root, all of them (and the host's
 * root) shared root's 128 inotify instances: one function could take them
 * all. So each sandbox gets a slot k, maps its 65536 ids to base + k*65536,
 * and is cloned with that range's first uid as effective uid (sandbox.c):
 * its counts are its own, bounded by the host's per-user limits, and no
 * tenant reaches another's or root's.
 *
 * A slot is held by an flock on /run/gust/userns/<first uid> for as long as
 * the sandbox lives: host-wide, so that two invokers on one host with the
 * same base never hand out one range twice, and released by the kernel if
 * the invoker dies (its sandboxes die with it: PR_SET_PDEATHSIG).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/util.h"
#include "sandbox.h"

#define IDS_LOCK_PARENT "/run/gust"
#define IDS_LOCK_DIR "/run/gust/userns"

static unsigned ids_next; /* where the next search starts (atomic) */

int inv_userns_ids_take(unsigned base, unsigned slots, unsigned *first, int *lock_fd,
                        gust_error **err)
{
	if (slots == 0) {
		/* The caller asked for one shared range (tests of the sandbox
		 * alone): nothing to hold. */
		*first = base;
		*lock_fd = -1;
		return 0;
	}
	(void)mkdir(IDS_LOCK_PARENT, 0755);
	(void)mkdir(IDS_LOCK_DIR, 0700);
	unsigned start = __atomic_fetch_add(&ids_next, 1, __ATOMIC_RELAXED);
	for (unsigned i = 0; i < slots; i++) {
		unsigned k = (start + i) % slots;
		unsigned uid = base + k * INV_USERNS_SIZE;
		char path[64];
		snprintf(path, sizeof(path), IDS_LOCK_DIR "/%u", uid);
		int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0)
			return gust_error_set(err, GUST_EIO, "sandbox: id range lock %s: %s", path,
			                      strerror(errno));
		if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
			*first = uid;
			*lock_fd = fd;
			return 0;
		}
		int e = errno;
		close(fd);
		if (e != EWOULDBLOCK && e != EINTR)
			return gust_error_set(err, GUST_EIO, "sandbox: flock %s: %s", path,
			                      strerror(e));
	}
	return gust_error_set(err, GUST_EBUSY,
	                      "sandbox: all %u host id ranges from %u are in use (config key "
	                      "'userns_slots')",
	                      slots, base);
}

/* Does [lo, hi) meet a number in field col (0-based) of the ':'-separated
 * lines of path? With count_col >= 0, each line names the range
 * [field col, field col + field count_col) (/etc/subuid). */
static int ids_meets(const char *path, int col, int count_col, unsigned long long lo,
                     unsigned long long hi, char *who, size_t who_size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return 0;
	char line[1024];
	int hit = 0;
	while (!hit && fgets(line, sizeof(line), f) != NULL) {
		char *fields[8] = {0};
		int n = 0;
		/* strtok_r would merge empty fields (a password of ""): split by hand. */
		char *p = line;
		while (n < 8) {
			fields[n++] = p;
			char *c = strchr(p, ':');
			if (c == NULL)
				break;
			*c = '\0';
			p = c + 1;
		}
		if (col >= n || (count_col >= 0 && count_col >= n))
			continue;
		char *end = NULL;
		unsigned long long a = strtoull(fields[col], &end, 10);
		if (end == fields[col])
			continue;
		unsigned long long b = a + 1;
		if (count_col >= 0) {
			unsigned long long cnt = strtoull(fields[count_col], &end, 10);
			if (end == fields[count_col])
				continue;
			b = a + cnt;
		}
		if (a < hi && lo < b) {
			snprintf(who, who_size, "%s (%s)", fields[0], path);
			hit = 1;
		}
	}
	fclose(f);
	return hit;
}

int inv_userns_ids_check(unsigned base, unsigned slots, gust_error **err)
{
	unsigned long long lo = base, hi = (unsigned long long)base +
	                                   (unsigned long long)slots * INV_USERNS_SIZE;
	char who[300];
	static const struct {
		const char *path;
		int col, count_col;
	} files[] = {{"/etc/passwd", 2, -1},
	             {"/etc/group", 2, -1},
	             {"/etc/subuid", 1, 2},
	             {"/etc/subgid", 1, 2}};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (ids_meets(files[i].path, files[i].col, files[i].count_col, lo, hi, who,
		              sizeof(who)))
			return gust_error_set(err, GUST_EINVAL,
			                      "config key 'userns_base': the sandboxes' host ids "
			                      "[%llu, %llu) meet those of %s",
			                      lo, hi, who);
	return 0;
}
