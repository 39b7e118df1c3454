/*
 * sandbox_int.h - what sandbox.c (the invoker side) and sandbox_root.c (the
 * child side: namespaces, mounts, privileges) share. Not part of the API.
 */
#ifndef INV_SANDBOX_INT_H
#define INV_SANDBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "gust/util.h"
#include "sandbox.h"

struct sock_fprog;

/* Logs kept per activation when the config says 0 (OpenWhisk's default). */
#define INV_LOG_LIMIT_DEFAULT (10u * 1024 * 1024)
/* The largest result line we accept (OpenWhisk's default max response size). */
#define INV_RESULT_MAX (1024u * 1024)
/* A log line longer than this is cut into pieces of this size. */
#define INV_LOG_LINE_MAX (64u * 1024)
#define INV_SENTINEL "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX"
#define INV_MSG_BAD_RESPONSE                                                                       \
	"{\"error\":\"The action did not produce a valid response and exited unexpectedly.\"}"
#define INV_MSG_NOT_DICT "{\"error\":\"The action did not return a dictionary.\"}"

/* Concurrent runs in one sandbox (sandbox_mux.c). */
typedef struct inv_mux inv_mux;

/* One pipe from the launcher, read by the invoker. Bytes read past the end of
 * an activation (past its sentinel or result line) stay in pend for the next. */
typedef struct inv_stream {
	int fd;
	const char *name; /* "stdout" or "stderr" for log streams */
	gust_buf pend;
	bool eof;
} inv_stream;

struct inv_sandbox {
	char *run; /* <state_dir>/sandboxes/<id> (0755): bind-mounted read-only at
	              /run/gust; the state cache's socket is made in it once the
	              sandbox has a namespace. The root tmpfs is mounted over
	              <state_dir>/sandboxes itself, in the sandbox's own mount
	              namespace: one mkdir per sandbox on the state dir's file
	              system (about 120 us each here) instead of three. */
	pid_t pid; /* pid 1 of the sandbox, in our pid namespace */
	int pidfd;
	int sync_fd;     /* pid 1's report still to read (defer_ready), else -1 */
	int exit_status; /* pid 1's wait status when create reaped it (pid is then -1) */
	int in_fd;       /* the launcher's stdin (non-blocking write end) */
	inv_stream res, out, err;
	size_t log_limit;
	int memory_mb;
	inv_cgroup *cg; /* NULL when the invoker runs without cgroups */
	bool alive;
	bool frozen;     /* its cgroup is frozen (inv_sandbox_freeze) */
	int concurrency; /* > 1: init asks the launcher for concurrent runs */
	inv_mux *mux;    /* its reader thread once concurrent runs started */
	unsigned ids;    /* the first host uid (= gid) of its id range; 0: no user ns */
	int ids_lock;    /* holds the range (sandbox_ids.c) until destroy, or -1 */
};

/* OpenWhisk's log time stamp: 2026-11-27T01:32:45.123456Z */
void inv_log_timestamp(char *buf, size_t size);
/* Stops the reader thread of a concurrent sandbox (kills the sandbox). */
void inv_sandbox_mux_stop(inv_sandbox *sb);
/* Reads pid 1's report of a sandbox created with defer_ready (waiting for it
 * if need be): 0 once the launcher has started, else why it did not. */
int inv_sandbox_settle(inv_sandbox *sb, gust_error **err);

/* SIGKILLs pid 1 (and so the whole sandbox) without reaping it; marks it dead. */
void inv_sandbox_kill(inv_sandbox *sb);

static inline int inv_steal_fd(int *fd)
{
	int v = *fd;
	*fd = -1;
	return v;
}

/* The sync socket, invoker to pid 1: one byte once the invoker has written the
 * user namespace's id maps and put pid 1 in its cgroups ("go").
 * One message on the sync socket from the sandbox's pid 1 to the invoker:
 * err == 0 means "the launcher has exec'd" (ready); otherwise err is the errno
 * of the failed step and what names it ("mount /proc"). Fixed size so the child
 * never formats anything: the parent adds strerror(err). */
#define INV_SYNC_WHAT_MAX 120
typedef struct inv_sync_msg {
	int32_t err;
	char what[INV_SYNC_WHAT_MAX];
} inv_sync_msg;

/*
 * Everything the clone child needs, prepared by the parent before clone():
 * the child runs in a copy of a multi-threaded process whose other threads may
 * hold malloc's or stdio's locks, so it must not allocate or format anything.
 */
typedef struct inv_child_plan {
	const char *root;        /* host path of the (empty) root dir */
	const char *runtime_dir; /* absolute host path, bind-mounted read-only at /gust */
	const char *run_dir;     /* absolute host path, bind-mounted read-only at /run/gust */
	const char *exec_path;   /* path inside the sandbox */
	const char *launcher;    /* absolute host path bind-mounted at /launcher, or NULL */
	const char *init;        /* absolute host path of gust-sandbox-init, bind-mounted at
	                            /.init and exec'd as pid 1; NULL: pid 1 stays a copy of
	                            the invoker */
	char *const *argv;
	char *const *envp;
	const struct sock_fprog *seccomp; /* applied by the launcher just before exec */
	bool userns;    /* in a new user namespace: become its root once the maps are written */
	bool net_ready; /* the network namespace was made ahead, lo up (sandbox_netns.c) */
	int cap_last;   /* /proc/sys/kernel/cap_last_cap, or 0 when unknown */
	bool shared_vm; /* cloned with CLONE_VM|CLONE_VFORK (sandbox.c, inv_clone): pid 1
	                   says hello on the sync socket before waiting for its go, and
	                   must exec init or exit, never stay in the invoker's memory */
	int sync_fd;    /* child end of the SOCK_SEQPACKET sync pair */
	int fds[4];     /* become the launcher's 0 (stdin, read end), 1, 2 and 3 (write ends) */
} inv_child_plan;

/* The sandbox's seccomp program, built on first use and kept for the life of
 * the process (sandbox_sec.c). */
int inv_seccomp_prog(const struct sock_fprog **progp, gust_error **err);

/* The clone() entry point: becomes pid 1 of the sandbox, builds the root, starts
 * the launcher, reports ready or an error on the sync socket, then reaps until
 * the launcher exits and exits with its status. Never returns. */
int inv_child_main(void *arg);
/* Brings lo up in the calling thread's network namespace; -1 with errno. */
int inv_loopback_up(void);

#endif
