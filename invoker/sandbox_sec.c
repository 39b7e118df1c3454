/*
 * sandbox_sec.c - the seccomp filter of every sandbox, built once per process
 * with libseccomp and kept as a raw BPF program: the sandbox child may not
 * allocate (see sandbox_root.c), so it only hands the finished program to
 * prctl(PR_SET_SECCOMP).
 *
 * Denied with EPERM: what a function has no business doing and what widens
 * the kernel's attack surface (mounts, namespaces, ptrace, kernel modules,
 * kexec, bpf, keyrings, clocks, swap, reboot, perf, userfaultfd, io_uring).
 * clone3 gets ENOSYS, because its flags sit in memory a filter cannot read:
 * libc then falls back to clone, whose flags the filter checks.
 */
#include <errno.h>
#include <linux/filter.h>
#include <pthread.h>
#include <sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "gust/util.h"
#include "sandbox_int.h"

static const char *const sec_denied[] = {
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "chroot",
    "open_tree",
    "move_mount",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "kcmp",
    "kexec_load",
    "kexec_file_load",
    "bpf",
    "keyctl",
    "add_key",
    "request_key",
    "unshare",
    "setns",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "clock_settime",
    "clock_adjtime",
    "settimeofday",
    "adjtimex",
    "stime",
    "swapon",
    "swapoff",
    "reboot",
    "acct",
    "syslog",
    "quotactl",
    "quotactl_fd",
    "open_by_handle_at",
    "name_to_handle_at",
    "perf_event_open",
    "userfaultfd",
    "iopl",
    "ioperm",
    "uselib",
    "vhangup",
    "lookup_dcookie",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "fanotify_init",
};

/* Namespace flags clone must not carry. */
static const unsigned long sec_clone_ns[] = {
    CLONE_NEWNS,  CLONE_NEWUSER, CLONE_NEWPID,    CLONE_NEWNET,
    CLONE_NEWIPC, CLONE_NEWUTS,  CLONE_NEWCGROUP, 0x00000080 /* CLONE_NEWTIME */,
};

static pthread_mutex_t sec_lock = PTHREAD_MUTEX_INITIALIZER;
static struct sock_fprog sec_prog;

static int sec_build(struct sock_fprog *out, gust_error **err)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
	int rv = 0, fd = -1;
	if (ctx == NULL)
		return gust_error_set(err, GUST_ENOMEM, "seccomp: init failed");
	for (size_t i = 0; i < sizeof(sec_denied) / sizeof(sec_denied[0]); i++) {
		int nr = seccomp_syscall_resolve_name(sec_denied[i]);
		if (nr == __NR_SCMP_ERROR)
			continue; /* not a call on this architecture */
		if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), nr, 0)) < 0)
			goto fail;
	}
	for (size_t i = 0; i < sizeof(sec_clone_ns) / sizeof(sec_clone_ns[0]); i++) {
		rv =
		    seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(clone), 1,
		                     SCMP_A0(SCMP_CMP_MASKED_EQ, sec_clone_ns[i], sec_clone_ns[i]));
		if (rv < 0)
			goto fail;
	}
	if ((rv = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) < 0)
		goto fail;
	/* libseccomp writes the program to an fd; read it back into memory. */
	if ((fd = memfd_create("gust-seccomp", MFD_CLOEXEC)) < 0) {
		rv = -errno;
		goto fail;
	}
	if ((rv = seccomp_export_bpf(ctx, fd)) < 0)
		goto fail;
	off_t len = lseek(fd, 0, SEEK_END);
	if (len <= 0 || len % (off_t)sizeof(struct sock_filter) != 0) {
		rv = -EINVAL;
		goto fail;
	}
	struct sock_filter *f = gust_xmalloc((size_t)len);
	if (pread(fd, f, (size_t)len, 0) != len) {
		free(f);
		rv = -EIO;
		goto fail;
	}
	out->filter = f;
	out->len = (unsigned short)(len / (off_t)sizeof(struct sock_filter));
	close(fd);
	seccomp_release(ctx);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return gust_error_set(err, GUST_EIO, "seccomp: building the filter: %s", strerror(-rv));
}

int inv_seccomp_prog(const struct sock_fprog **progp, gust_error **err)
{
	int rv = 0;
	pthread_mutex_lock(&sec_lock);
	if (sec_prog.filter == NULL)
		rv = sec_build(&sec_prog, err);
	pthread_mutex_unlock(&sec_lock);
	*progp = rv == 0 ? &sec_prog : NULL;
	return rv;
}
