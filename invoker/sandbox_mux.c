/*
 * sandbox_mux.c - several activations at once in one runtime (nodejs
 * concurrency > 1, OpenWhisk's intra-container concurrency).
 *
 * After an init that carried "concurrency": N, the launcher takes run lines
 * while earlier ones still run, and answers each on fd 3 as
 *   <activation id> <result object>        or   <activation id> !<{"error"}>
 * in whatever order they finish, with no end-of-activation sentinels. A
 * reader thread per sandbox routes each answer to its activation by id.
 *
 * Logs cannot be told apart: concurrent activations write to the same
 * stdout/stderr. As OpenWhisk does with concurrency > 1, they are not
 * delimited per activation: each line read goes to exactly one activation
 * record, the next one to finish after the line arrived.
 *
 * A deadline that passes kills the sandbox (as OpenWhisk does): that
 * activation times out, the others in it end as developer errors.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/util.h"
#include "sandbox.h"
#include "sandbox_int.h"

#define MUX_ID_MAX 64

typedef struct mux_pending {
	char id[MUX_ID_MAX];
	int64_t deadline_ms;
	int limit_ms;
	uint64_t start_ms;
	void *cookie;
	struct mux_pending *next;
} mux_pending;

struct inv_mux {
	inv_sandbox *sb;
	inv_mux_done done;
	void *arg;
	pthread_t thread;
	pthread_mutex_t lock;  /* pending, logs, dead */
	pthread_mutex_t wlock; /* writes to the launcher's stdin */
	mux_pending *pending;
	char **lines; /* log lines not yet given to an activation */
	size_t nlines, cap, bytes;
	bool dead;
	bool stopping;
	int wake[2]; /* a pipe that wakes the reader when a deadline is added */
};

static void mux_log(inv_mux *m, const char *stream, const char *p, size_t n)
{
	if (m->bytes + n > m->sb->log_limit)
		return; /* dropped: nobody may take them for a while */
	if (m->nlines == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 16;
		m->lines = gust_xrealloc(m->lines, m->cap * sizeof(char *));
	}
	char ts[48];
	inv_log_timestamp(ts, sizeof(ts));
	m->lines[m->nlines++] = gust_xasprintf("%s %s: %.*s", ts, stream, (int)n, p);
	m->bytes += n;
}

/* Under the lock: the complete lines of a log stream become log lines; a
 * line longer than INV_LOG_LINE_MAX is cut. */
static void mux_log_lines(inv_mux *m, inv_stream *s)
{
	size_t off = 0;
	for (;;) {
		char *base = s->pend.data + off;
		size_t left = s->pend.len - off;
		char *nl = memchr(base, '\n', left);
		if (nl != NULL) {
			size_t n = (size_t)(nl - base);
			mux_log(m, s->name, base, n > INV_LOG_LINE_MAX ? INV_LOG_LINE_MAX : n);
			off += n + 1;
		} else if (left > INV_LOG_LINE_MAX) {
			mux_log(m, s->name, base, INV_LOG_LINE_MAX);
			off += INV_LOG_LINE_MAX;
		} else {
			break;
		}
	}
	memmove(s->pend.data, s->pend.data + off, s->pend.len - off);
	s->pend.len -= off;
}

/* Under the lock: unlinks the pending activation with id, or NULL. */
static mux_pending *mux_take(inv_mux *m, const char *id, size_t idlen)
{
	for (mux_pending **pp = &m->pending; *pp; pp = &(*pp)->next) {
		if (strlen((*pp)->id) == idlen && memcmp((*pp)->id, id, idlen) == 0) {
			mux_pending *p = *pp;
			*pp = p->next;
			return p;
		}
	}
	return NULL;
}

/* Under the lock: hands the log lines collected so far to res. */
static void mux_give_logs(inv_mux *m, inv_run_result *res)
{
	res->logs = m->lines;
	res->nlogs = m->nlines;
	m->lines = NULL;
	m->nlines = m->cap = m->bytes = 0;
}

static void mux_finish(inv_mux *m, mux_pending *p, int status, char *result)
{
	inv_run_result res = {.status = status, .result = result};
	res.start_ms = p->start_ms;
	res.end_ms = (uint64_t)gust_wall_ms();
	pthread_mutex_lock(&m->lock);
	mux_give_logs(m, &res);
	pthread_mutex_unlock(&m->lock);
	m->done(m->arg, p->cookie, &res);
	free(p);
}

/* One answer line from fd 3: "<id> [!]<json>". */
static void mux_answer(inv_mux *m, const char *line, size_t len)
{
	const char *sp = memchr(line, ' ', len);
	if (sp == NULL)
		return; /* not ours to route; ignore */
	pthread_mutex_lock(&m->lock);
	mux_pending *p = mux_take(m, line, (size_t)(sp - line));
	pthread_mutex_unlock(&m->lock);
	if (p == NULL)
		return;
	const char *body = sp + 1;
	size_t blen = len - (size_t)(body - line);
	bool thrown = blen > 0 && body[0] == '!';
	if (thrown) {
		body++;
		blen--;
	}
	json_t *j = json_loadb(body, blen, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	int st;
	char *result;
	if (blen > INV_RESULT_MAX) {
		st = INV_RUN_DEV_ERROR;
		result = gust_xasprintf("{\"error\":\"The action produced a response that exceeded "
		                        "the allowed length: %zu > %u bytes.\"}",
		                        blen, INV_RESULT_MAX);
	} else if (j == NULL) {
		st = INV_RUN_DEV_ERROR;
		result = gust_xstrdup(INV_MSG_BAD_RESPONSE);
	} else if (!json_is_object(j)) {
		st = INV_RUN_DEV_ERROR;
		result = gust_xstrdup(INV_MSG_NOT_DICT);
	} else {
		st = thrown                                ? INV_RUN_DEV_ERROR
		     : json_object_get(j, "error") != NULL ? INV_RUN_APP_ERROR
		                                           : INV_RUN_SUCCESS;
		result = gust_xstrndup(body, blen);
	}
	json_decref(j);
	mux_finish(m, p, st, result);
}

static int64_t mux_next_deadline(inv_mux *m)
{
	int64_t d = INT64_MAX;
	pthread_mutex_lock(&m->lock);
	for (mux_pending *p = m->pending; p; p = p->next)
		if (p->deadline_ms < d)
			d = p->deadline_ms;
	pthread_mutex_unlock(&m->lock);
	return d;
}

/* The sandbox is gone: every activation still in it fails; `late` (if any)
 * timed out. */
static void mux_fail_all(inv_mux *m, mux_pending *late)
{
	pthread_mutex_lock(&m->lock);
	m->dead = true;
	mux_pending *all = m->pending;
	m->pending = NULL;
	bool stopping = m->stopping;
	pthread_mutex_unlock(&m->lock);
	if (late != NULL)
		mux_finish(m, late, INV_RUN_TIMEOUT,
		           gust_xasprintf("{\"error\":\"The action exceeded its time limits of %d "
		                          "milliseconds.\"}",
		                          late->limit_ms));
	while (all) {
		mux_pending *n = all->next;
		if (stopping)
			free(all); /* the invoker is stopping: the caller's deadline answers */
		else
			mux_finish(m, all, INV_RUN_DEV_ERROR, gust_xstrdup(INV_MSG_BAD_RESPONSE));
		all = n;
	}
}

static void *mux_main(void *arg)
{
	inv_mux *m = arg;
	inv_sandbox *sb = m->sb;
	inv_stream *ss[3] = {&sb->res, &sb->out, &sb->err};
	char buf[65536];
	for (;;) {
		int64_t d = mux_next_deadline(m);
		int64_t now = gust_wall_ms();
		if (d != INT64_MAX && now >= d) {
			pthread_mutex_lock(&m->lock);
			mux_pending *late = NULL;
			for (mux_pending **pp = &m->pending; *pp; pp = &(*pp)->next)
				if ((*pp)->deadline_ms <= now) {
					late = *pp;
					*pp = late->next;
					break;
				}
			pthread_mutex_unlock(&m->lock);
			inv_sandbox_kill(sb);
			mux_fail_all(m, late);
			break;
		}
		struct pollfd pfd[4];
		for (int i = 0; i < 3; i++)
			pfd[i] = (struct pollfd){.fd = ss[i]->fd, .events = POLLIN};
		pfd[3] = (struct pollfd){.fd = m->wake[0], .events = POLLIN};
		int64_t wait = d == INT64_MAX ? -1 : d - now;
		int r = poll(pfd, 4, wait > 60000 || wait < 0 ? 60000 : (int)wait);
		if (r < 0 && errno != EINTR)
			break;
		if (pfd[3].revents & POLLIN)
			(void)!read(m->wake[0], buf, sizeof(buf));
		bool eof = false;
		for (int i = 0; i < 3 && r > 0; i++) {
			if (pfd[i].revents == 0)
				continue;
			ssize_t n = read(ss[i]->fd, buf, sizeof(buf));
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				continue;
			if (n <= 0) {
				eof = true;
				continue;
			}
			gust_buf_append(&ss[i]->pend, buf, (size_t)n);
			if (i > 0) {
				pthread_mutex_lock(&m->lock);
				mux_log_lines(m, ss[i]);
				pthread_mutex_unlock(&m->lock);
				continue;
			}
			char *nl;
			while ((nl = memchr(sb->res.pend.data, '\n', sb->res.pend.len)) != NULL) {
				size_t len = (size_t)(nl - sb->res.pend.data);
				mux_answer(m, sb->res.pend.data, len);
				memmove(sb->res.pend.data, nl + 1, sb->res.pend.len - len - 1);
				sb->res.pend.len -= len + 1;
			}
			if (sb->res.pend.len > INV_RESULT_MAX + MUX_ID_MAX + 2)
				eof = true; /* an answer too long to keep: out of step */
		}
		if (eof) {
			inv_sandbox_kill(sb);
			mux_fail_all(m, NULL);
			break;
		}
	}
	return NULL;
}

int inv_sandbox_mux_start(inv_sandbox *sb, inv_mux_done done, void *arg, gust_error **err)
{
	inv_mux *m = gust_xcalloc(1, sizeof(*m));
	m->sb = sb;
	m->done = done;
	m->arg = arg;
	pthread_mutex_init(&m->lock, NULL);
	pthread_mutex_init(&m->wlock, NULL);
	if (pipe2(m->wake, O_CLOEXEC | O_NONBLOCK) < 0) {
		free(m);
		return gust_error_set(err, GUST_EIO, "sandbox: pipe: %s", strerror(errno));
	}
	if (pthread_create(&m->thread, NULL, mux_main, m) != 0) {
		close(m->wake[0]);
		close(m->wake[1]);
		free(m);
		return gust_error_set(err, GUST_EIO, "sandbox: cannot start its reader thread");
	}
	sb->mux = m;
	return 0;
}

void inv_sandbox_mux_run(inv_sandbox *sb, const char *id, const char *line, size_t len,
                         int64_t deadline_ms, void *cookie)
{
	inv_mux *m = sb->mux;
	mux_pending *p = gust_xcalloc(1, sizeof(*p));
	snprintf(p->id, sizeof(p->id), "%s", id);
	p->start_ms = (uint64_t)gust_wall_ms();
	p->deadline_ms = deadline_ms;
	int64_t limit = deadline_ms - (int64_t)p->start_ms;
	p->limit_ms = limit < 0 ? 0 : limit > INT32_MAX ? INT32_MAX : (int)limit;
	p->cookie = cookie;
	pthread_mutex_lock(&m->lock);
	bool dead = m->dead;
	if (!dead) {
		p->next = m->pending;
		m->pending = p;
	}
	pthread_mutex_unlock(&m->lock);
	if (dead) {
		mux_finish(m, p, INV_RUN_DEV_ERROR, gust_xstrdup(INV_MSG_BAD_RESPONSE));
		return;
	}
	(void)!write(m->wake[1], "w", 1); /* a new deadline for the reader */
	/* Lines from several workers must not interleave: one writer at a time,
	 * each writing its whole line (blocking in poll when the pipe is full). */
	pthread_mutex_lock(&m->wlock);
	size_t done = 0;
	const char nl = '\n';
	while (done < len + 1) {
		const char *p0 = done < len ? line + done : &nl;
		size_t n = done < len ? len - done : 1;
		ssize_t w = write(sb->in_fd, p0, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && errno == EAGAIN) {
			struct pollfd pf = {.fd = sb->in_fd, .events = POLLOUT};
			int64_t left = deadline_ms - gust_wall_ms();
			if (left <= 0 || poll(&pf, 1, left > 1000 ? 1000 : (int)left) < 0)
				break;
			continue;
		}
		if (w < 0)
			break; /* EPIPE: the reader sees EOF and fails us */
		done += (size_t)w;
	}
	pthread_mutex_unlock(&m->wlock);
}

void inv_sandbox_mux_stop(inv_sandbox *sb)
{
	inv_mux *m = sb->mux;
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->lock);
	m->stopping = true;
	pthread_mutex_unlock(&m->lock);
	inv_sandbox_kill(sb); /* EOF ends the reader */
	pthread_join(m->thread, NULL);
	for (size_t i = 0; i < m->nlines; i++)
		free(m->lines[i]);
	free(m->lines);
	while (m->pending) {
		mux_pending *n = m->pending->next;
		free(m->pending);
		m->pending = n;
	}
	close(m->wake[0]);
	close(m->wake[1]);
	pthread_mutex_destroy(&m->lock);
	pthread_mutex_destroy(&m->wlock);
	free(m);
	sb->mux = NULL;
}
