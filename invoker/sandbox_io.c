/*
 * sandbox_io.c - the action-loop protocol from the invoker's side: write one
 * line to the launcher's stdin, then read its result line (fd 3) and, while
 * waiting, its logs (stdout, stderr), all against a deadline, with one poll()
 * loop on non-blocking pipes.
 *
 * The end of an activation's logs is the result line itself, as in
 * OpenWhisk's action loop: a runtime writes its logs before its result, and a
 * pipe write is in the pipe when write() returns, so once the result is read
 * every log byte written before it is waiting in stdout's and stderr's pipes.
 * We drain them without blocking and the activation is complete: one write
 * and one wakeup each way, where end-of-activation sentinels on both log
 * streams cost the runtime two more writes and us more wakeups. Output that a
 * background process writes after the result goes to the next activation (as
 * in OpenWhisk). Sentinel lines that an executable still writes
 * (XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX) are dropped, not logged.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "gust/util.h"
#include "sandbox.h"
#include "sandbox_int.h"

/* After a timeout, how long we keep reading the logs of the killed sandbox. */
#define INV_DRAIN_MS 500
#define INV_READ_CHUNK 65536

typedef struct inv_logs {
	char **lines;
	size_t n;
	size_t cap;
	size_t bytes; /* of log text kept so far */
	size_t limit;
	bool truncated;
} inv_logs;

/* One activation's progress through inv_exchange. */
typedef struct inv_xfer {
	inv_logs logs;
	char *line; /* the result line, once complete */
	size_t line_len;
	size_t over; /* length so far of a result line too long to keep */
	bool res_done;
	bool dead; /* EOF, EPIPE or a read error: the launcher is gone */
} inv_xfer;

/* OpenWhisk's log time stamp: 2026-11-27T01:32:45.123456Z */
void inv_log_timestamp(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, size - k, ".%06ldZ", ts.tv_nsec / 1000);
}

static void inv_logs_push(inv_logs *lg, const char *stream, const char *p, size_t n)
{
	char ts[48];
	inv_log_timestamp(ts, sizeof(ts));
	if (lg->n == lg->cap) {
		lg->cap = lg->cap != 0 ? lg->cap * 2 : 16;
		lg->lines = gust_xrealloc(lg->lines, lg->cap * sizeof(char *));
	}
	lg->lines[lg->n++] = gust_xasprintf("%s %s: %.*s", ts, stream, (int)n, p);
}

/* Keeps one log line, or as much of it as the limit allows, then the marker. */
static void inv_log_add(inv_logs *lg, const char *stream, const char *p, size_t n)
{
	if (lg->truncated)
		return;
	bool cut = lg->bytes + n > lg->limit;
	if (cut)
		n = lg->limit - lg->bytes;
	if (n > 0 || !cut) {
		inv_logs_push(lg, stream, p, n);
		lg->bytes += n;
	}
	if (cut) {
		char msg[128];
		int m = snprintf(msg, sizeof(msg),
		                 "Logs were truncated because the total bytes size exceeds the "
		                 "limit of %zu bytes.",
		                 lg->limit);
		inv_logs_push(lg, "stderr", msg, (size_t)m);
		lg->truncated = true;
	}
}

static void inv_pend_consume(gust_buf *b, size_t n)
{
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
	b->data[b->len] = 0;
}

/* Turns the complete lines of a log stream into log lines. A sentinel line
 * (see the top) is dropped; so is a sentinel at the end of a line, which
 * keeps the text before it: an executable may print without a final newline. */
static void inv_log_lines(inv_stream *s, inv_logs *lg)
{
	const size_t sl = sizeof(INV_SENTINEL) - 1;
	size_t off = 0;

	while (off < s->pend.len) {
		const char *base = s->pend.data + off;
		size_t left = s->pend.len - off;
		const char *nl = memchr(base, '\n', left);
		if (nl == NULL) {
			/* Cut very long lines, but never inside a sentinel that may
			 * still come: keep at least its length back. */
			if (left > INV_LOG_LINE_MAX + sl) {
				inv_log_add(lg, s->name, base, INV_LOG_LINE_MAX);
				off += INV_LOG_LINE_MAX;
				continue;
			}
			break;
		}
		size_t n = (size_t)(nl - base);
		if (n >= sl && memcmp(nl - sl, INV_SENTINEL, sl) == 0) {
			if (n > sl)
				inv_log_add(lg, s->name, base, n - sl);
		} else {
			inv_log_add(lg, s->name, base, n);
		}
		off += n + 1;
	}
	if (off > 0)
		inv_pend_consume(&s->pend, off);
}

/* At the end of an activation: a last line without its newline is the
 * activation's too. A bare sentinel without one is dropped. */
static void inv_log_rest(inv_stream *s, inv_logs *lg)
{
	if (s->pend.len == 0)
		return;
	const size_t sl = sizeof(INV_SENTINEL) - 1;
	size_t n = s->pend.len;
	if (n >= sl && memcmp(s->pend.data + n - sl, INV_SENTINEL, sl) == 0)
		n -= sl;
	if (n > 0)
		inv_log_add(lg, s->name, s->pend.data, n);
	s->pend.len = 0;
	s->pend.data[0] = 0;
}

/* Looks for the end of the result line. A line over INV_RESULT_MAX is not
 * kept: only its length is counted, for the error message. */
static bool inv_res_scan(inv_stream *s, inv_xfer *x)
{
	if (s->pend.len == 0)
		return false;
	const char *nl = memchr(s->pend.data, '\n', s->pend.len);
	size_t n = nl != NULL ? (size_t)(nl - s->pend.data) : s->pend.len;
	if (x->over > 0 || n > INV_RESULT_MAX) {
		x->over += n;
		inv_pend_consume(&s->pend, nl != NULL ? n + 1 : n);
		return nl != NULL;
	}
	if (nl == NULL)
		return false;
	x->line = gust_xstrndup(s->pend.data, n);
	x->line_len = n;
	inv_pend_consume(&s->pend, n + 1);
	return true;
}

/* Marks the launcher dead and kills the sandbox: whatever happened (EOF,
 * EPIPE, a closed fd 3), the protocol is out of step and cannot recover. */
static void inv_mark_dead(inv_sandbox *sb, inv_xfer *x)
{
	if (!x->dead)
		inv_sandbox_kill(sb);
	x->dead = true;
}

/* Reads once from a ready stream and advances the activation; returns the
 * bytes read, 0 when there were none (EAGAIN, EINTR) or at EOF. */
static size_t inv_read_stream(inv_sandbox *sb, inv_stream *s, inv_xfer *x)
{
	char buf[INV_READ_CHUNK];
	ssize_t n = read(s->fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		s->eof = true;
		if (x->res_done && s != &sb->res)
			/* It answered, then exited (or closed a log pipe): the answer
			 * stands, but the sandbox is not used again. */
			inv_sandbox_kill(sb);
		else
			inv_mark_dead(sb, x);
		if (s != &sb->res)
			inv_log_rest(s, &x->logs); /* the launcher's last words */
		return 0;
	}
	gust_buf_append(&s->pend, buf, (size_t)n);
	if (s == &sb->res)
		x->res_done = inv_res_scan(s, x);
	else
		inv_log_lines(s, &x->logs);
	return (size_t)n;
}

/* The result is in: what the runtime logged before it is in the log pipes.
 * Bounded: a background writer that never stops cannot hold us here; what
 * it writes later goes to the next activation. empty[i]: stdout (0) or
 * stderr (1) is known to hold nothing more (see inv_exchange). */
static void inv_drain_logs(inv_sandbox *sb, inv_xfer *x, const bool empty[2])
{
	inv_stream *logs[2] = {&sb->out, &sb->err};
	for (int i = 0; i < 2; i++) {
		inv_stream *s = logs[i];
		for (int k = 0; k < 64 && !s->eof && !empty[i]; k++)
			if (inv_read_stream(sb, s, x) < INV_READ_CHUNK)
				break;
		inv_log_rest(s, &x->logs);
	}
}

/* Writes what it can of the message without blocking. */
static void inv_write_some(inv_sandbox *sb, inv_xfer *x, const char *line, size_t len, size_t *done)
{
	while (*done < len + 1) {
		struct iovec iov[2];
		int cnt = 0;
		if (*done < len) {
			iov[cnt].iov_base = (void *)(line + *done);
			iov[cnt++].iov_len = len - *done;
		}
		iov[cnt].iov_base = "\n";
		iov[cnt++].iov_len = 1;
		/* The invoker ignores SIGPIPE process-wide: a dead reader is EPIPE. */
		ssize_t w = writev(sb->in_fd, iov, cnt);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN)
			return;
		if (w < 0) {
			inv_mark_dead(sb, x);
			return;
		}
		*done += (size_t)w;
	}
}

/* Sets res from the finished activation. limit_ms is the time limit to name in
 * a timeout message. */
static void inv_finish(inv_sandbox *sb, inv_xfer *x, bool timed_out, int limit_ms,
                       inv_run_result *res)
{
	json_t *j = NULL;
	/* "!" before the object: the action raised (see sandbox.h). */
	bool thrown = !timed_out && !x->dead && x->line != NULL && x->line[0] == '!';
	if (thrown) {
		memmove(x->line, x->line + 1, x->line_len);
		x->line_len--;
	}

	if (timed_out) {
		res->status = INV_RUN_TIMEOUT;
		res->result =
		    gust_xasprintf("{\"error\":\"The action exceeded its time limits of %d "
		                   "milliseconds.\"}",
		                   limit_ms);
	} else if (x->dead && inv_cgroup_oom_kills(sb->cg) > 0) {
		/* The kernel's OOM killer ended it inside its cgroup: say so, rather
		 * than the generic "exited unexpectedly". */
		res->status = INV_RUN_DEV_ERROR;
		res->result = gust_xasprintf("{\"error\":\"The action exhausted its memory and was "
		                             "aborted: memory limit exceeded (%d MB).\"}",
		                             sb->memory_mb);
	} else if (x->dead) {
		res->status = INV_RUN_DEV_ERROR;
		res->result = gust_xstrdup(INV_MSG_BAD_RESPONSE);
	} else if (x->over > 0) {
		res->status = INV_RUN_DEV_ERROR;
		res->result = gust_xasprintf("{\"error\":\"The action produced a response that "
		                             "exceeded the allowed length: %zu > %u bytes.\"}",
		                             x->over, INV_RESULT_MAX);
	} else if (memchr(x->line, 0, x->line_len) != NULL ||
	           (j = json_loadb(x->line, x->line_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL)) ==
	               NULL) {
		/* A raw NUL is not JSON (jansson lets one through), and the result
		 * travels on as a C string: it would arrive cut short. */
		res->status = INV_RUN_DEV_ERROR;
		res->result = gust_xstrdup(INV_MSG_BAD_RESPONSE);
	} else if (!json_is_object(j)) {
		res->status = INV_RUN_DEV_ERROR;
		res->result = gust_xstrdup(INV_MSG_NOT_DICT);
	} else {
		/* Valid: pass the launcher's bytes through, not a re-encoding. An
		 * uncaught exception is OpenWhisk's "action developer error"; an
		 * {"error": ...} the action returned is an application error. */
		res->status = thrown                                ? INV_RUN_DEV_ERROR
		              : json_object_get(j, "error") != NULL ? INV_RUN_APP_ERROR
		                                                    : INV_RUN_SUCCESS;
		res->result = steal_pointer(&x->line);
	}
	json_decref(j);
	/* A runtime that answered garbage is out of step with us for good. */
	if ((res->status == INV_RUN_DEV_ERROR && !thrown) || res->status == INV_RUN_TIMEOUT)
		inv_mark_dead(sb, x);
	free(x->line);
	x->line = NULL;
	res->logs = x->logs.lines;
	res->nlogs = x->logs.n;
	res->end_ms = (uint64_t)gust_wall_ms();
}

/* One message in, one answer out: see the top of the file. */
static void inv_exchange(inv_sandbox *sb, const char *line, size_t len, int64_t deadline_ms,
                         int limit_ms, inv_run_result *res)
{
	inv_xfer x = {.logs = {.limit = sb->log_limit}};
	size_t written = 0;
	bool timed_out = false;
	int64_t stop_ms = deadline_ms;

	/* Log pipes seen empty after the result was written (below). */
	bool empty[2] = {false, false};

	/* Bytes left from the previous activation belong to this one. */
	x.res_done = inv_res_scan(&sb->res, &x);
	inv_log_lines(&sb->out, &x.logs);
	inv_log_lines(&sb->err, &x.logs);
	for (;;) {
		if (!x.dead && written < len + 1)
			inv_write_some(sb, &x, line, len, &written);
		if (x.res_done && !x.dead && written == len + 1) {
			inv_drain_logs(sb, &x, empty);
			break;
		}
		/* Logs are read while the result is awaited (a runtime blocked on
		 * a full log pipe would never answer) and, once it died, until
		 * the pipes close. */
		bool logs_open = !x.res_done || x.dead;
		bool want_res = !x.res_done && !sb->res.eof;
		bool want_out = logs_open && !sb->out.eof;
		bool want_err = logs_open && !sb->err.eof;
		if (!want_res && !want_out && !want_err && (x.dead || written == len + 1))
			break;
		int64_t now = gust_wall_ms();
		if (now >= stop_ms) {
			if (timed_out || x.dead)
				break;
			/* Kill it, then collect what it logged before it died. */
			timed_out = true;
			inv_mark_dead(sb, &x);
			stop_ms = now + INV_DRAIN_MS;
			continue;
		}
		struct pollfd pfd[4];
		inv_stream *who[4];
		int n = 0;
		if (!x.dead && written < len + 1) {
			pfd[n] = (struct pollfd){.fd = sb->in_fd, .events = POLLOUT};
			who[n++] = NULL;
		}
		if (want_res) {
			pfd[n] = (struct pollfd){.fd = sb->res.fd, .events = POLLIN};
			who[n++] = &sb->res;
		}
		if (want_out) {
			pfd[n] = (struct pollfd){.fd = sb->out.fd, .events = POLLIN};
			who[n++] = &sb->out;
		}
		if (want_err) {
			pfd[n] = (struct pollfd){.fd = sb->err.fd, .events = POLLIN};
			who[n++] = &sb->err;
		}
		int64_t wait = stop_ms - now;
		int r = poll(pfd, (nfds_t)n, wait > INT_MAX ? INT_MAX : (int)wait);
		if (r < 0 && errno != EINTR) {
			inv_mark_dead(sb, &x);
			break;
		}
		bool had_res = x.res_done;
		size_t got[4] = {0};
		for (int i = 0; r > 0 && i < n; i++) {
			if (pfd[i].revents == 0)
				continue;
			if (who[i] == NULL) {
				if (pfd[i].revents & (POLLERR | POLLHUP))
					inv_mark_dead(sb, &x); /* no reader: the launcher is gone */
				continue;
			}
			got[i] = inv_read_stream(sb, who[i], &x);
		}
		/* The poll that saw the result also looked at the log pipes, after
		 * it (res comes first in pfd, and poll checks the fds of one pass
		 * in order): the logs were written before the result, so a log pipe
		 * it found empty, or read short, holds none of this activation's
		 * logs any more. That spares two reads per activation. */
		for (int i = 0; r > 0 && !had_res && x.res_done && i < n; i++) {
			if (who[i] == &sb->out || who[i] == &sb->err)
				empty[who[i] == &sb->err] = got[i] < INV_READ_CHUNK;
		}
	}
	inv_log_rest(&sb->out, &x.logs);
	inv_log_rest(&sb->err, &x.logs);
	inv_finish(sb, &x, timed_out, limit_ms, res);
}

static void inv_result_dead(inv_run_result *res)
{
	res->status = INV_RUN_DEV_ERROR;
	res->result = gust_xstrdup(INV_MSG_BAD_RESPONSE);
	res->end_ms = (uint64_t)gust_wall_ms();
}

int inv_sandbox_run(inv_sandbox *sb, const char *line, size_t len, int64_t deadline_ms,
                    inv_run_result *res)
{
	memset(res, 0, sizeof(*res));
	res->start_ms = (uint64_t)gust_wall_ms();
	/* Only the flag: a launcher that died since its last answer is found
	 * by the exchange itself (EPIPE on stdin, EOF on its pipes), with the
	 * same answer, so a warm run is spared a poll of the pidfd. */
	if (sb == NULL || !sb->alive) {
		inv_result_dead(res);
		return GUST_ECLOSED;
	}
	/* The time limit named in a timeout message is the time this call was
	 * given: callers pass deadline = start + the action's timeout. */
	int64_t limit = deadline_ms - (int64_t)res->start_ms;
	if (limit < 0)
		limit = 0;
	inv_exchange(sb, line, len, deadline_ms, limit > INT_MAX ? INT_MAX : (int)limit, res);
	return 0;
}

/* The "error" string of an {"error": ...} result, for an init error message. */
static char *inv_error_text(const char *result)
{
	json_t *j = json_loads(result, 0, NULL);
	json_t *e = json_object_get(j, "error");
	char *s = json_is_string(e) ? gust_xstrdup(json_string_value(e))
	          : e != NULL       ? json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY)
	                            : gust_xstrdup(result);
	json_decref(j);
	return s != NULL ? s : gust_xstrdup(result);
}

int inv_sandbox_init(inv_sandbox *sb, const char *code, size_t code_len, const char *main_name,
                     bool binary, const char *env_json, int timeout_ms, inv_run_result *res,
                     gust_error **err)
{
	inv_run_result local;
	inv_run_result *r = res != NULL ? res : &local;
	gust_buf b = {0};
	int rv = 0;

	memset(r, 0, sizeof(*r));
	r->start_ms = (uint64_t)gust_wall_ms();
	if (!inv_sandbox_alive(sb)) {
		inv_result_dead(r);
		/* A start that failed says why (defer_ready); else it just died. */
		gust_error *start_err = NULL;
		if (inv_sandbox_settle(sb, &start_err) != 0)
			rv = gust_error_set(err, start_err->code, "%s", gust_error_msg(start_err));
		else
			rv = gust_error_set(err, GUST_ECLOSED,
			                    "sandbox: init: the sandbox is not alive");
		gust_error_free(start_err);
		goto out;
	}
	const char *m = main_name != NULL && main_name[0] != 0 ? main_name : "main";
	gust_buf_puts(&b, "{\"init\":{\"code\":");
	gust_buf_json_str(&b, code != NULL ? code : "", code != NULL ? code_len : 0);
	gust_buf_puts(&b, ",\"main\":");
	gust_buf_json_str(&b, m, strlen(m));
	gust_buf_printf(&b, ",\"binary\":%s,\"env\":%s", binary ? "true" : "false",
	                env_json != NULL && env_json[0] != 0 ? env_json : "{}");
	if (sb->concurrency > 1)
		gust_buf_printf(&b, ",\"concurrency\":%d", sb->concurrency);
	gust_buf_puts(&b, "}}");
	inv_exchange(sb, b.data, b.len, (int64_t)r->start_ms + timeout_ms, timeout_ms, r);
	gust_buf_free(&b);
	/* A sandbox created with defer_ready: pid 1 reported on the launcher's
	 * start long before any answer to init; a start that failed is the
	 * reason init failed. */
	gust_error *start_err = NULL;
	if (inv_sandbox_settle(sb, &start_err) != 0) {
		rv = gust_error_set(err, start_err->code, "%s", gust_error_msg(start_err));
		gust_error_free(start_err);
		if (r->status == INV_RUN_SUCCESS)
			r->status = INV_RUN_DEV_ERROR;
		goto out;
	}

	switch (r->status) {
	case INV_RUN_SUCCESS:
		break;
	case INV_RUN_TIMEOUT:
		rv = gust_error_set(err, GUST_ETIMEDOUT,
		                    "sandbox: init: the action exceeded its time limit of %d ms",
		                    timeout_ms);
		break;
	default: {
		cleanup_free char *why = inv_error_text(r->result);
		rv = gust_error_set(err, GUST_EBADGATEWAY, "sandbox: init: %s", why);
		break;
	}
	}
out:
	if (r == &local)
		inv_run_result_clear(&local);
	return rv;
}

void inv_run_result_clear(inv_run_result *res)
{
	if (res == NULL)
		return;
	free(res->result);
	for (size_t i = 0; i < res->nlogs; i++)
		free(res->logs[i]);
	free(res->logs);
	memset(res, 0, sizeof(*res));
}
