/* fuzz_sandbox_io.c - the action-loop protocol as the invoker reads it
 * (invoker/sandbox_io.c): the result line on fd 3 (inv_res_scan), the log
 * lines on stdout and stderr, read while the result is awaited and drained
 * once it is in (inv_log_lines, inv_drain_logs, inv_log_rest, inv_log_add
 * with the log limit; sentinel lines dropped), the launcher's last words at
 * EOF (inv_read_stream), and the verdict on the result (inv_finish: a JSON
 * object, "!" for a thrown error, too long, not a dictionary).
 *
 * The three streams are real pipes, read by inv_read_stream as in a run, in
 * chunks interleaved across the streams. Two activations run back to back:
 * bytes written but not read by the first one's end belong to the second, as
 * in inv_exchange.
 *
 * Properties: a result the invoker passes on as success or error is one JSON
 * object with no raw newline; the kept log text never exceeds the limit
 * (plus the one truncation notice); every log line has the OpenWhisk shape
 * "<time stamp> stdout|stderr: text" and holds no newline.
 *
 * Input: byte 0 picks the log limit, the chunking and whether the streams
 * end (EOF); the rest is fd 3, stdout and stderr separated by 0xff bytes. */
#include <fcntl.h>

#include "../../invoker/sandbox_io.c"

#include "fuzz.h"

/* What sandbox_io.c needs from the rest of the invoker. */
void inv_sandbox_kill(inv_sandbox *sb)
{
	sb->alive = false;
}

bool inv_sandbox_alive(const inv_sandbox *sb)
{
	return sb->alive;
}

long long inv_cgroup_oom_kills(inv_cgroup *cg)
{
	return 0;
}

/* The fuzzed sandboxes have no start report pending (sync_fd -1). */
int inv_sandbox_settle(inv_sandbox *sb, gust_error **err)
{
	return 0;
}

static void check_result(const inv_run_result *r, size_t limit)
{
	FUZZ_CHECK(r->result != NULL, "no result");
	size_t n = strlen(r->result);
	if (r->status == INV_RUN_SUCCESS || r->status == INV_RUN_APP_ERROR ||
	    r->status == INV_RUN_DEV_ERROR) {
		json_error_t je;
		json_t *j = json_loadb(r->result, n, JSON_ALLOW_NUL, &je);
		FUZZ_CHECK(json_is_object(j), "status %d result is not an object (%s): %s",
		           r->status, je.text, r->result);
		if (r->status == INV_RUN_APP_ERROR)
			FUZZ_CHECK(json_object_get(j, "error") != NULL, "app error without error");
		json_decref(j);
	}
	FUZZ_CHECK(memchr(r->result, '\n', n) == NULL, "newline in the result");
	size_t text = 0;
	bool notice = false;
	for (size_t i = 0; i < r->nlogs; i++) {
		const char *l = r->logs[i];
		FUZZ_CHECK(strlen(l) > 28 && l[4] == '-' && l[26] == 'Z' && l[27] == ' ',
		           "log line shape: %s", l);
		const char *t = l + 28;
		FUZZ_CHECK(strncmp(t, "stdout: ", 8) == 0 || strncmp(t, "stderr: ", 8) == 0,
		           "log stream: %s", l);
		FUZZ_CHECK(strchr(l, '\n') == NULL, "newline in a log line");
		if (strstr(t, "Logs were truncated") == t + 8)
			notice = true;
		else
			text += strlen(t + 8);
	}
	/* strlen undercounts text with NUL bytes: it is a lower bound. */
	FUZZ_CHECK(text <= limit, "%zu bytes of logs kept, limit %zu", text, limit);
	(void)notice;
}

typedef struct feed {
	const uint8_t *p;
	size_t n;
	int wfd;
} feed;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	uint8_t mode = data[0];
	fuzz_cursor c = {data + 1, size - 1};
	feed f[3];
	for (int i = 0; i < 3; i++)
		f[i].p = fuzz_field(&c, 0xff, &f[i].n);

	static const size_t limits[4] = {0, 40, 1000, INV_LOG_LIMIT_DEFAULT};
	inv_sandbox sb = {0};
	sb.alive = true;
	sb.log_limit = limits[mode & 3];
	sb.in_fd = -1;
	inv_stream *st[3] = {&sb.res, &sb.out, &sb.err};
	sb.out.name = "stdout";
	sb.err.name = "stderr";
	for (int i = 0; i < 3; i++) {
		int p[2];
		FUZZ_CHECK(pipe2(p, O_NONBLOCK | O_CLOEXEC) == 0, "pipe");
		st[i]->fd = p[0];
		f[i].wfd = p[1];
	}
	bool eof = mode & 4;
	size_t step = mode & 8 ? 65536 : 1 + (mode >> 4) * 7;

	for (int act = 0; act < 2; act++) {
		inv_xfer x = {.logs = {.limit = sb.log_limit}};
		x.res_done = inv_res_scan(&sb.res, &x);
		inv_log_lines(&sb.out, &x.logs);
		inv_log_lines(&sb.err, &x.logs);
		bool progress = true;
		while (progress && !x.dead && !x.res_done) {
			progress = false;
			for (int i = 0; i < 3 && !x.res_done; i++) {
				if (st[i]->eof)
					continue;
				size_t n = f[i].n < step ? f[i].n : step;
				if (n > 0) {
					FUZZ_CHECK(write(f[i].wfd, f[i].p, n) == (ssize_t)n,
					           "write");
					f[i].p += n, f[i].n -= n;
				} else if (eof && f[i].wfd >= 0) {
					close(f[i].wfd);
					f[i].wfd = -1;
				} else {
					continue;
				}
				inv_read_stream(&sb, st[i], &x);
				progress = true;
			}
		}
		/* An activation that neither answered nor died would time out: the
		 * run loop kills it and finishes as a timeout. */
		bool timed_out = !x.dead && !x.res_done;
		if (timed_out)
			inv_mark_dead(&sb, &x);
		if (!x.dead)
			inv_drain_logs(&sb, &x, (const bool[2]){false, false});
		inv_log_rest(&sb.out, &x.logs);
		inv_log_rest(&sb.err, &x.logs);
		inv_run_result r = {0};
		inv_finish(&sb, &x, timed_out, 1000, &r);
		check_result(&r, sb.log_limit);
		inv_run_result_clear(&r);
		if (x.dead)
			break;
	}
	for (int i = 0; i < 3; i++) {
		close(st[i]->fd);
		if (f[i].wfd >= 0)
			close(f[i].wfd);
		gust_buf_free(&st[i]->pend);
	}
	return 0;
}
