/* redis.c - hiredis connections and the pipelining writer. */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "gust/log.h"
#include "gust/redis.h"
#include "gust/util.h"

static pthread_mutex_t redis_cred_mu = PTHREAD_MUTEX_INITIALIZER;
static char *redis_cred_user, *redis_cred_pw;

void gust_redis_set_credentials(const char *user, const char *password)
{
	pthread_mutex_lock(&redis_cred_mu);
	free(redis_cred_user);
	if (redis_cred_pw != NULL) {
		explicit_bzero(redis_cred_pw, strlen(redis_cred_pw));
		free(redis_cred_pw);
	}
	redis_cred_user = user != NULL && *user ? gust_xstrdup(user) : NULL;
	redis_cred_pw = redis_cred_user != NULL ? gust_xstrdup(password ? password : "") : NULL;
	pthread_mutex_unlock(&redis_cred_mu);
}

/* AUTH user password with the process's credentials; the reply's text is
 * Redis's own (never the password). */
static int redis_auth(redisContext *c, const char *addr, gust_error **err)
{
	pthread_mutex_lock(&redis_cred_mu);
	if (redis_cred_user == NULL) {
		pthread_mutex_unlock(&redis_cred_mu);
		return 0;
	}
	cleanup_free char *user = gust_xstrdup(redis_cred_user);
	char *pw = gust_xstrdup(redis_cred_pw);
	pthread_mutex_unlock(&redis_cred_mu);
	const char *argv[] = {"AUTH", user, pw};
	size_t argvlen[] = {4, strlen(user), strlen(pw)};
	redisReply *r = redisCommandArgv(c, 3, argv, argvlen);
	explicit_bzero(pw, strlen(pw));
	free(pw);
	if (r == NULL)
		return gust_error_set(err, GUST_EUNAVAIL, "redis %s: AUTH: %s", addr, c->errstr);
	int rv = 0;
	if (r->type == REDIS_REPLY_ERROR)
		rv = gust_error_set(err, GUST_EAUTH, "redis %s: AUTH as %s refused: %.200s", addr,
		                    user, r->str);
	freeReplyObject(r);
	return rv;
}

int gust_redis_connect(const char *addr, int timeout_ms, redisContext **out, gust_error **err)
{
	struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
	redisContext *c;
	if (strncmp(addr, "unix:", 5) == 0) {
		c = redisConnectUnixWithTimeout(addr + 5, tv);
	} else {
		const char *colon = strrchr(addr, ':');
		if (colon == NULL || colon == addr)
			return gust_error_set(err, GUST_EINVAL,
			                      "redis address '%s' is not host:port or unix:/path",
			                      addr);
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (*end != '\0' || port <= 0 || port > 65535)
			return gust_error_set(err, GUST_EINVAL, "redis address '%s': bad port",
			                      addr);
		cleanup_free char *host = gust_xstrndup(addr, (size_t)(colon - addr));
		c = redisConnectWithTimeout(host, (int)port, tv);
	}
	if (c == NULL)
		return gust_error_set(err, GUST_ENOMEM, "redis %s: cannot allocate", addr);
	if (c->err) {
		int rv = gust_error_set(err, GUST_EUNAVAIL, "redis %s: %s", addr, c->errstr);
		redisFree(c);
		return rv;
	}
	redisSetTimeout(c, tv);
	int rv = redis_auth(c, addr, err);
	if (rv != 0) {
		redisFree(c);
		return rv;
	}
	*out = c;
	return 0;
}

/* Arguments at least this long are written from where they are; shorter ones
 * are copied next to the protocol around them. */
#define SENDV_DIRECT 4096

/* One piece of the output: bytes in the scratch buffer (base == NULL, at an
 * offset, since the buffer may move as it grows) or an argument in place. */
typedef struct sendv_piece {
	const char *base;
	size_t off, len;
} sendv_piece;

static void sendv_scratch(gust_buf *b, sendv_piece **v, size_t *n, size_t *cap, const void *p,
                          size_t len)
{
	if (*n > 0 && (*v)[*n - 1].base == NULL && (*v)[*n - 1].off + (*v)[*n - 1].len == b->len) {
		(*v)[*n - 1].len += len; /* extends the last scratch piece */
	} else {
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*v = gust_xrealloc(*v, *cap * sizeof(**v));
		}
		(*v)[(*n)++] = (sendv_piece){NULL, b->len, len};
	}
	gust_buf_append(b, p, len);
}

static void sendv_direct(sendv_piece **v, size_t *n, size_t *cap, const char *p, size_t len)
{
	if (*n == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		*v = gust_xrealloc(*v, *cap * sizeof(**v));
	}
	(*v)[(*n)++] = (sendv_piece){p, 0, len};
}

int gust_redis_sendv(redisContext *c, int ncmds, const int *argc, const char *const *const *argv,
                     const size_t *const *argvlen)
{
	gust_buf b = {0};
	sendv_piece *v = NULL;
	size_t n = 0, cap = 0;
	char num[48];
	for (int i = 0; i < ncmds; i++) {
		int k = snprintf(num, sizeof(num), "*%d\r\n", argc[i]);
		sendv_scratch(&b, &v, &n, &cap, num, (size_t)k);
		for (int a = 0; a < argc[i]; a++) {
			size_t len = argvlen[i][a];
			k = snprintf(num, sizeof(num), "$%zu\r\n", len);
			sendv_scratch(&b, &v, &n, &cap, num, (size_t)k);
			if (len >= SENDV_DIRECT)
				sendv_direct(&v, &n, &cap, argv[i][a], len);
			else
				sendv_scratch(&b, &v, &n, &cap, argv[i][a], len);
			sendv_scratch(&b, &v, &n, &cap, "\r\n", 2);
		}
	}
	struct iovec *iov = gust_xcalloc(n ? n : 1, sizeof(*iov));
	for (size_t i = 0; i < n; i++) {
		iov[i].iov_base = (void *)(v[i].base ? v[i].base : b.data + v[i].off);
		iov[i].iov_len = v[i].len;
	}
	int rv = REDIS_OK;
	size_t at = 0;
	while (at < n) {
		size_t cnt = n - at < IOV_MAX ? n - at : IOV_MAX;
		ssize_t w = writev(c->fd, iov + at, (int)cnt);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			c->err = REDIS_ERR_IO;
			snprintf(c->errstr, sizeof(c->errstr), "writev: %s",
			         errno == EAGAIN ? "timed out" : strerror(errno));
			rv = REDIS_ERR;
			break;
		}
		/* a partial write: skip what went, resume inside a piece */
		size_t done = (size_t)w;
		while (at < n && done >= iov[at].iov_len)
			done -= iov[at++].iov_len;
		if (at < n) {
			iov[at].iov_base = (char *)iov[at].iov_base + done;
			iov[at].iov_len -= done;
		}
	}
	free(iov);
	free(v);
	gust_buf_free(&b);
	return rv;
}

typedef struct writer_cmd {
	struct writer_cmd *next;
	int argc;
	char **argv;
	size_t *argvlen;
} writer_cmd;

struct gust_redis_writer {
	char *addr;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cv;
	pthread_cond_t drained;
	writer_cmd *head, **tail;
	size_t queued;   /* in the queue */
	size_t inflight; /* taken by the thread, not yet acknowledged */
	bool stopping;
	redisContext *c;
};

static void writer_cmd_free(writer_cmd *c)
{
	for (int i = 0; i < c->argc; i++)
		free(c->argv[i]);
	free(c->argv);
	free(c->argvlen);
	free(c);
}

/* Sends a batch as one pipeline; 0 when every reply arrived. */
static int writer_send(gust_redis_writer *w, writer_cmd *batch)
{
	if (w->c == NULL) {
		gust_error *e = NULL;
		if (gust_redis_connect(w->addr, 2000, &w->c, &e) != 0) {
			gust_log_warn("REDIS-WRITER-CONNECT", "%s", gust_error_msg(e));
			gust_error_free(e);
			return -1;
		}
	}
	for (writer_cmd *c = batch; c; c = c->next)
		redisAppendCommandArgv(w->c, c->argc, (const char **)c->argv, c->argvlen);
	for (writer_cmd *c = batch; c; c = c->next) {
		redisReply *r = NULL;
		if (redisGetReply(w->c, (void **)&r) != REDIS_OK) {
			gust_log_warn("REDIS-WRITER-IO", "redis %s: %s; resending the batch",
			              w->addr, w->c->errstr);
			redisFree(w->c);
			w->c = NULL;
			return -1;
		}
		if (r->type == REDIS_REPLY_ERROR)
			gust_log_error("REDIS-WRITER-CMD", "redis refused %.*s: %s",
			               (int)c->argvlen[0], c->argv[0], r->str);
		freeReplyObject(r);
	}
	return 0;
}

static void *writer_main(void *arg)
{
	gust_redis_writer *w = arg;
	unsigned backoff_ms = 50;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->head == NULL && !w->stopping)
			pthread_cond_wait(&w->cv, &w->lock);
		if (w->head == NULL && w->stopping)
			break;
		writer_cmd *batch = w->head;
		size_t n = w->queued;
		w->head = NULL;
		w->tail = &w->head;
		w->queued = 0;
		w->inflight = n;
		pthread_mutex_unlock(&w->lock);

		int rv = writer_send(w, batch);

		pthread_mutex_lock(&w->lock);
		if (rv == 0) {
			w->inflight = 0;
			backoff_ms = 50;
			while (batch) {
				writer_cmd *next = batch->next;
				writer_cmd_free(batch);
				batch = next;
			}
			if (w->head == NULL)
				pthread_cond_broadcast(&w->drained);
			continue;
		}
		/* Put the batch back in front, in order, and try again later. */
		writer_cmd **t = &batch;
		while (*t)
			t = &(*t)->next;
		*t = w->head;
		if (w->head == NULL)
			w->tail = t;
		w->head = batch;
		w->queued += n;
		w->inflight = 0;
		if (w->stopping && backoff_ms > 1000)
			break; /* stopping and Redis stays away: give up */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += (long)backoff_ms * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&w->cv, &w->lock, &ts);
		if (backoff_ms < 2000)
			backoff_ms *= 2;
	}
	pthread_cond_broadcast(&w->drained);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int gust_redis_writer_start(const char *addr, gust_redis_writer **wp, gust_error **err)
{
	gust_redis_writer *w = gust_xcalloc(1, sizeof(*w));
	w->addr = gust_xstrdup(addr);
	w->tail = &w->head;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cv, NULL);
	pthread_cond_init(&w->drained, NULL);
	if (pthread_create(&w->thread, NULL, writer_main, w) != 0) {
		free(w->addr);
		free(w);
		return gust_error_set(err, GUST_EIO, "redis writer: cannot start thread");
	}
	*wp = w;
	return 0;
}

void gust_redis_writer_cmd(gust_redis_writer *w, int argc, const char **argv, const size_t *argvlen)
{
	writer_cmd *c = gust_xcalloc(1, sizeof(*c));
	c->argc = argc;
	c->argv = gust_xcalloc((size_t)argc, sizeof(char *));
	c->argvlen = gust_xcalloc((size_t)argc, sizeof(size_t));
	for (int i = 0; i < argc; i++) {
		size_t n = argvlen ? argvlen[i] : strlen(argv[i]);
		c->argv[i] = gust_xstrndup(argv[i], n);
		c->argvlen[i] = n;
	}
	pthread_mutex_lock(&w->lock);
	*w->tail = c;
	w->tail = &c->next;
	w->queued++;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->lock);
}

size_t gust_redis_writer_pending(gust_redis_writer *w)
{
	pthread_mutex_lock(&w->lock);
	size_t n = w->queued + w->inflight;
	pthread_mutex_unlock(&w->lock);
	return n;
}

void gust_redis_writer_stop(gust_redis_writer *w, int timeout_ms)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	while ((w->head != NULL || w->inflight) &&
	       pthread_cond_timedwait(&w->drained, &w->lock, &ts) == 0)
		;
	w->stopping = true;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	while (w->head) {
		writer_cmd *n = w->head->next;
		writer_cmd_free(w->head);
		w->head = n;
	}
	if (w->c)
		redisFree(w->c);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cv);
	pthread_cond_destroy(&w->drained);
	free(w->addr);
	free(w);
}

int gust_redis_reply_ok(redisContext *r, redisReply *rep, const char *what, gust_error **err)
{
	if (rep == NULL)
		return gust_error_set(err, GUST_EUNAVAIL, "redis: %s: %s", what,
		                      r->errstr[0] ? r->errstr : "no reply");
	int rv = 0;
	if (rep->type == REDIS_REPLY_ERROR)
		rv = gust_error_set(err, GUST_EIO, "redis: %s: %s", what, rep->str);
	freeReplyObject(rep);
	return rv;
}
