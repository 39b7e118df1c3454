/*
 * sandbox.h - one isolated runtime process for the invoker.
 *
 * A sandbox is a process tree in new pid, mount, ipc, uts, net and cgroup
 * namespaces, and a user namespace that maps it to an unprivileged host id range
 * when cfg->userns_base is set, over a read-only root (pivot_root into bind
 * mounts of /usr plus the runtime's files, a private tmpfs /tmp, a fresh /proc
 * with /proc/sys read-only and the kernel's informative files masked, a minimal
 * /dev, no /sys), in its own cgroup (memory, pids, cpu, freezer) when the
 * invoker has cgroups. Pid 1 inside is a small reaper that dies with the
 * invoker; its one child is the runtime launcher, with no capabilities,
 * no_new_privs, rlimits and a seccomp allow-list (sandbox_sec.c: what python,
 * node and ordinary executables use; deliberate denials get EPERM, unknown or
 * newer calls ENOSYS so that libc falls back; sockets only unix, inet, inet6
 * and netlink-route; the native ABI only), which speaks the action-loop
 * protocol:
 *
 *   stdin  (fd 0)  one JSON line per message, written by the invoker:
 *     {"init":{"code":"...","main":"main","binary":false,"env":{...}}}
 *     {"value":{...params...},"env":{"__OW_ACTIVATION_ID":"...",...}}
 *   fd 3           one JSON line per message, written by the launcher:
 *     init -> {"ok":true} or {"error":"message"}
 *     run  -> the action's result object (an {"error": ...} it returned is an
 *             application error), or !{"error":"message"} when the action raised
 *             an exception it did not catch: a developer error, as OpenWhisk
 *             reports it, but the runtime lives on and serves the next one
 *   stdout/stderr  the function's logs, written before the answer on fd 3: as
 *                  in OpenWhisk's action loop the answer ends the activation's
 *                  logs, and no sentinel lines are needed (one still written,
 *                  XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX, is dropped, not
 *                  waited for). Output written after the answer goes to the
 *                  next activation: an executable must flush buffered stdout
 *                  (printf into a pipe) before it answers.
 *
 * Calls on one sandbox are not thread-safe: one owner at a time (the pool hands
 * a sandbox to one worker). All calls block the calling worker thread only.
 */
#ifndef INV_SANDBOX_H
#define INV_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cgroup.h"
#include "gust/err.h"

typedef struct inv_sandbox inv_sandbox;
typedef struct inv_netns_pool inv_netns_pool;

#define INV_PIDS_DEFAULT 256
/* How many ids a sandbox's user namespace maps. */
#define INV_USERNS_SIZE 65536u

typedef struct inv_sandbox_cfg {
	const char *kind;            /* "python:3", "nodejs:20" or "native" */
	const char *runtime_dir;     /* host dir holding python/launcher.py and nodejs/launcher.js;
	                                bind-mounted read-only at /gust in the sandbox */
	const char *state_dir;       /* invoker state dir; sandbox roots are made under it */
	int memory_mb;               /* the action's memory limit (cgroup); cpu shares follow it */
	int pids_max;                /* processes + threads in the sandbox; 0: INV_PIDS_DEFAULT */
	inv_cgroups *cgroups;        /* the invoker's cgroups; NULL: no limits */
	unsigned userns_base;        /* host uid = gid of the sandbox's root; the sandbox's
	                                65536 ids map to [base, base + 65536). 0: no user ns */
	unsigned userns_slots;       /* > 0: the sandbox takes one of this many ranges
	                                base + k*65536 (sandbox_ids.c), held while it lives,
	                                and owns its user namespace as the range's first uid;
	                                0: every sandbox maps to base, owned by the invoker */
	size_t log_limit;            /* bytes of logs kept per activation; the rest is dropped
	                                with a truncation marker */
	const char *native_launcher; /* host path of gust-native-launcher (the C launcher),
	                                bind-mounted at /launcher for kind native; NULL:
	                                runtime_dir's native/launcher script */
	bool defer_ready;            /* create returns once pid 1 is in its cgroup, without
	                                waiting for the launcher's exec: the first init,
	                                written behind it, reports a failed start (saves a
	                                sleep and a wakeup on a cold start) */
	inv_netns_pool *netns;       /* network namespaces made ahead (sandbox_netns.c); NULL or
	                                empty: the clone makes one */
} inv_sandbox_cfg;

enum inv_run_status {
	INV_RUN_SUCCESS = 0,   /* the result is the action's object */
	INV_RUN_APP_ERROR = 1, /* the action returned/threw an error: result is {"error":...} */
	INV_RUN_DEV_ERROR = 2, /* the action raised (the sandbox lives on), or the runtime
	                          died (out of memory too) or answered garbage (then the
	                          sandbox is dead: see inv_sandbox_alive) */
	INV_RUN_TIMEOUT = 3,   /* the deadline passed: the sandbox has been killed */
};

typedef struct inv_run_result {
	int status;   /* enum inv_run_status */
	char *result; /* heap JSON object text (never NULL after a run returns) */
	char **logs;  /* heap array of heap lines "2026-...Z stdout: text" */
	size_t nlogs;
	uint64_t start_ms; /* wall clock */
	uint64_t end_ms;
} inv_run_result;

/* Network namespaces made ahead of need by a thread of the pool, want at a
 * time (0: no pool, *pp = NULL); with state_dir, each comes with a run dir
 * made ahead under <state_dir>/sandboxes. take hands one over as an fd (the
 * caller closes it), with its run dir in *dir (the caller's, heap) when top is
 * the pool's <state_dir>/sandboxes, or returns -1 when the pool is empty;
 * host is the invoker's own namespace, where a creating thread returns. */
int inv_netns_pool_open(int want, const char *state_dir, inv_netns_pool **pp, gust_error **err);
void inv_netns_pool_close(inv_netns_pool *p);
int inv_netns_pool_take(inv_netns_pool *p, const char *top, char **dir);
int inv_netns_pool_host(const inv_netns_pool *p);
/* How many are made and waiting. */
int inv_netns_pool_ready(inv_netns_pool *p);
/* How many sandboxes took a prepared namespace, and how many found none. */
void inv_netns_pool_counts(inv_netns_pool *p, uint64_t *taken, uint64_t *missed);

/* sandbox_ids.c: takes a free host id range of the slots from base (its first
 * uid in *first, held while *lock_fd is open; slots 0: base itself, no lock),
 * or GUST_EBUSY when all are in use. check refuses ranges that meet a user,
 * group or subordinate range of /etc/passwd, group, subuid or subgid. */
int inv_userns_ids_take(unsigned base, unsigned slots, unsigned *first, int *lock_fd,
                        gust_error **err);
int inv_userns_ids_check(unsigned base, unsigned slots, gust_error **err);

/* Creates a sandbox and starts its launcher (a stem cell: no code yet). */
int inv_sandbox_create(const inv_sandbox_cfg *cfg, inv_sandbox **sbp, gust_error **err);

/* Sends init with the action's code; waits at most timeout_ms. On failure the
 * error says why (syntax error, missing main, ...) and res (if not NULL) gets
 * the init logs. */
int inv_sandbox_init(inv_sandbox *sb, const char *code, size_t code_len, const char *main_name,
                     bool binary, const char *env_json, int timeout_ms, inv_run_result *res,
                     gust_error **err);

/* Runs one activation: line is one complete JSON message without newline (the
 * caller builds it; bytes are passed through). Waits until deadline_ms (wall
 * clock, ms since the epoch). Always fills res; returns 0 unless the call itself
 * could not be made (then res->status is INV_RUN_DEV_ERROR). */
int inv_sandbox_run(inv_sandbox *sb, const char *line, size_t len, int64_t deadline_ms,
                    inv_run_result *res);

/* Gives a stem cell (made for a runtime, not an action) the limits of the
 * action it is about to become: memory (its cgroup, and the cpu shares that
 * follow memory) and the log limit. */
int inv_sandbox_adopt(inv_sandbox *sb, int memory_mb, int pids_max, size_t log_limit,
                      gust_error **err);

/* Concurrent runs (nodejs concurrency > 1; see sandbox_mux.c for the protocol
 * and what happens to logs). set_concurrency comes before init, which tells
 * the launcher; mux_start after a successful init starts the sandbox's reader
 * thread. mux_run writes one run line (blocking the caller only while the pipe
 * is full) and returns: done(arg, cookie, res) is called once per run, from
 * the reader thread (or from mux_run when the sandbox is already dead); res
 * is done's to clear. Runs never mix with inv_sandbox_run on one sandbox. */
typedef void (*inv_mux_done)(void *arg, void *cookie, inv_run_result *res);
void inv_sandbox_set_concurrency(inv_sandbox *sb, int n);
int inv_sandbox_mux_start(inv_sandbox *sb, inv_mux_done done, void *arg, gust_error **err);
void inv_sandbox_mux_run(inv_sandbox *sb, const char *id, const char *line, size_t len,
                         int64_t deadline_ms, void *cookie);

/* Stops (frozen = true) or resumes every process of the sandbox through its
 * cgroup's freezer, so that an idle warm sandbox runs nothing between
 * activations (a thread a function left behind, a timer): the pool freezes
 * it once it has been idle for freeze_idle_ms and thaws it before its next
 * activation (inv_freeze.c). Freezing returns at once (tasks stop when they
 * next leave the kernel); thawing is one write, after which they run.
 * GUST_ENOTSUP without cgroups or a freezer. Destroying a frozen sandbox is
 * fine: it is thawed after the kill. Same one-owner rule as the other
 * calls. */
int inv_sandbox_freeze(inv_sandbox *sb, bool frozen, gust_error **err);

/* True while the launcher is alive and the last run left it usable. */
bool inv_sandbox_alive(const inv_sandbox *sb);
/* The host dir seen inside as /run/gust (where the state socket goes). */
const char *inv_sandbox_run_dir(const inv_sandbox *sb);
pid_t inv_sandbox_pid(const inv_sandbox *sb);

/* Kills the whole process tree, reaps it and removes its root dir. Safe on NULL. */
void inv_sandbox_destroy(inv_sandbox *sb);

void inv_run_result_clear(inv_run_result *res);

#endif
