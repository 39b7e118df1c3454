/* inv_state.c - the state cache proxy (docs/state.md).
 *
 * Each sandbox that has its namespace gets a listening Unix socket in its run
 * dir, seen inside as /run/gust/state.sock. One thread serves them all with
 * epoll. A connection from a function gets its own connection to Redis,
 * authenticated as the namespace's ACL user before the function's first byte
 * is read; then the proxy reads whole requests (common/resp.c), passes on the
 * ones in the allowlist byte for byte, and turns any other into a command
 * Redis refuses ("gust-refused:<name>") so that replies stay in order under
 * pipelining. Replies from Redis are passed back untouched. The function
 * never holds a credential: AUTH, HELLO, ACL and the rest never reach Redis,
 * and if they did, Redis's ACL still limits the user to its key prefix.
 *
 * Limits (docs/state.md, "Limits"): a request carries at most the
 * namespace's value limit plus ST_REQ_SLACK bytes; SETRANGE may not reach
 * past the value limit and APPEND is rewritten into a Redis function that
 * refuses to pass it; a quota thread samples each namespace's bytes (SCAN +
 * MEMORY USAGE), the proxy charges each request that can grow data to it
 * until the next sample, and while sampled + charged bytes reach its quota
 * such requests are refused; a sandbox holds at most state_conns_per_sandbox
 * connections. Refusals are rewritten into FCALL gust_refuse, so that the
 * function gets a Redis error reply, in order, saying why.
 *
 * Lifetimes: a listener or connection is closed by the proxy thread or under
 * the lock, and freed only by the proxy thread after the batch of events that
 * may still name it (a dead flag makes the rest of the batch skip it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/resp.h"
#include "gust/state.h"
#include "invoker.h"

#define ST_SOCK_NAME "state.sock"
#define ST_BUFFER_MAX (64u << 20) /* bytes held for one connection, each way */
/* What a request may carry besides one value: keys, names, numbers, options. */
#define ST_REQ_SLACK 65536
/* What a growing request is charged beyond its bytes until the next sample:
 * about Redis's overhead for a small key (dict entry, robj, sds headers) and
 * for each element (a listpack entry or hash field). */
#define ST_CHARGE_KEY 64
#define ST_CHARGE_ARG 16
/* How often a namespace's limits are read again from etcd. */
#define ST_LIMITS_REFRESH_MS 10000

enum { ST_WAKE, ST_LISTEN, ST_CLIENT, ST_UP };

typedef struct st_conn st_conn;

typedef struct st_end {
	int kind;
	int fd;
	st_conn *c;       /* ST_CLIENT, ST_UP */
	inv_state_ep *ep; /* ST_LISTEN */
	gust_buf out;     /* bytes waiting to be written to fd */
	size_t out_off;
	bool want_out;
} st_end;

typedef struct inv_state_ns inv_state_ns;

struct st_conn {
	st_end cl, up;
	inv_state_ns *n;  /* its namespace's entry (lives as long as the proxy) */
	inv_state_ep *ep; /* the listener it came from; NULL once that is freed */
	gust_buf in;      /* bytes from the function not yet a whole request */
	bool dead;
	st_conn *next; /* in the list of live or of dead connections */
};

struct inv_state_ep {
	st_end l;
	int nconns; /* its live connections (proxy thread only) */
	char *ns;
	char *path;
	bool dead;
	inv_state_ep *next; /* on the dead list */
};

struct inv_state_ns {
	char *password;
	bool acl_ok; /* the ACL user was set by this process */
	/* under the lock: */
	long long value_max; /* bytes one value may hold (stateValueBytes) */
	long long quota;     /* bytes its keys may use (stateBytes) */
	long long used;      /* at the last sample */
	long long pending;   /* charged by requests forwarded since that sample */
	bool over;           /* used >= quota at the last sample (for logs) */
	bool sampled;        /* used holds a sample (else 0: not yet measured) */
	uint64_t limits_ms;  /* when its limits were last read from etcd */
	int eps;             /* its sockets in sandboxes here: sampled while > 0 */
};

struct inv_state {
	inv *v;
	int epfd;
	st_end wake;
	pthread_t thread;
	bool running;
	pthread_mutex_t lock; /* eps' dead list, the namespace map, the admin connection */
	bool stopping;
	inv_state_ep *dead_eps;
	st_conn *conns;
	gust_map ns; /* ns -> inv_state_ns */
	redisContext *admin;
	/* the quota thread, under qlock */
	pthread_mutex_t qlock;
	pthread_cond_t qcv;
	pthread_t qthread;
	bool qrunning, qstopping, qpoked;
	gust_metric *m_refused[3]; /* value, quota, connections */
	gust_metric *m_over;
};

enum { ST_REFUSED_VALUE, ST_REFUSED_QUOTA, ST_REFUSED_CONNS };

static int st_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

/* Asks the quota thread for a round now. */
static void st_poke(inv_state *s)
{
	pthread_mutex_lock(&s->qlock);
	s->qpoked = true;
	pthread_cond_signal(&s->qcv);
	pthread_mutex_unlock(&s->qlock);
}

/* Under the lock: (re)creates the namespace's ACL user. */
static int st_acl_set(inv_state *s, const char *ns, const char *password, gust_error **err)
{
	if (s->admin == NULL || s->admin->err) {
		if (s->admin != NULL)
			redisFree(s->admin);
		s->admin = NULL;
		int rv = gust_redis_connect(s->v->cfg.redis, 2000, &s->admin, err);
		if (rv != 0)
			return rv;
	}
	int rv = gust_state_acl_set(s->admin, ns, password, err);
	if (rv != 0)
		return rv;
	/* With the user, so that a Redis that lost its users (a restart
	 * without persistence) also gets the functions back. */
	gust_error *e = NULL;
	if (gust_state_functions_load(s->admin, &e) != 0)
		gust_log_warn("INV-STATE-FUNCTIONS",
		              "cannot load the state functions (APPEND and refusals answer "
		              "'Function not found'): %s",
		              gust_error_msg(e));
	gust_error_free(e);
	return 0;
}

/* The namespace's password, its ACL user made once per process. Heap copy. */
static int st_ns_password(inv_state *s, const char *ns, char **out, gust_error **err)
{
	pthread_mutex_lock(&s->lock);
	inv_state_ns *n = gust_map_get(&s->ns, ns);
	if (n != NULL && n->acl_ok) {
		*out = gust_xstrdup(n->password);
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	pthread_mutex_unlock(&s->lock);
	/* etcd outside the lock: a first use of a namespace may wait for it,
	 * nothing else does. */
	char *pw = NULL;
	int rv = gust_state_password(s->v->etcd, ns, true, &pw, err);
	if (rv != 0)
		return gust_error_wrap(err, "state password of %s", ns);
	long long quota = s->v->cfg.state_quota_bytes, vmax = s->v->cfg.state_value_bytes;
	gust_error *le = NULL;
	if (gust_state_limits(s->v->etcd, ns, &quota, &vmax, &le) != 0)
		gust_log_warn("INV-STATE-LIMITS", "limits of %s (the defaults hold): %s", ns,
		              gust_error_msg(le));
	gust_error_free(le);
	pthread_mutex_lock(&s->lock);
	n = gust_map_get(&s->ns, ns);
	if (n == NULL) {
		n = gust_xcalloc(1, sizeof(*n));
		gust_map_put(&s->ns, ns, n);
	}
	n->quota = quota;
	n->value_max = vmax;
	n->limits_ms = gust_now_ms();
	free(n->password);
	n->password = pw;
	rv = st_acl_set(s, ns, pw, err);
	n->acl_ok = rv == 0;
	*out = gust_xstrdup(pw);
	pthread_mutex_unlock(&s->lock);
	return rv;
}

/* A blocking connection to Redis as the namespace's user; its fd. */
static int st_upstream(inv_state *s, const char *ns, int *fdp, gust_error **err)
{
	cleanup_free char *user = gust_state_user(ns);
	for (int tries = 0; tries < 2; tries++) {
		cleanup_free char *pw = NULL;
		redisContext *r = NULL;
		int rv = st_ns_password(s, ns, &pw, err);
		if (rv == 0)
			rv = gust_redis_connect(s->v->cfg.redis, 2000, &r, err);
		if (rv != 0)
			return rv;
		redisReply *rep = redisCommand(r, "AUTH %s %s", user, pw);
		bool ok = rep != NULL && rep->type == REDIS_REPLY_STATUS;
		bool wrong = rep != NULL && rep->type == REDIS_REPLY_ERROR;
		if (rep != NULL)
			freeReplyObject(rep);
		if (ok) {
			*fdp = redisFreeKeepFd(r);
			return st_nonblock(*fdp) == 0 ? 0 : gust_error_set(err, GUST_EIO, "fcntl");
		}
		redisFree(r);
		if (!wrong)
			break;
		/* Redis lost the user (a restart without an aclfile): make it again. */
		pthread_mutex_lock(&s->lock);
		inv_state_ns *n = gust_map_get(&s->ns, ns);
		if (n != NULL)
			n->acl_ok = false;
		pthread_mutex_unlock(&s->lock);
	}
	return gust_error_set(err, GUST_EUNAVAIL, "cannot authenticate to redis as %s", user);
}

static void st_watch(inv_state *s, st_end *e, int op)
{
	struct epoll_event ev = {.events = EPOLLIN | (e->want_out ? EPOLLOUT : 0), .data.ptr = e};
	(void)epoll_ctl(s->epfd, op, e->fd, &ev);
}

static void st_conn_close(inv_state *s, st_conn *c)
{
	if (c->dead)
		return;
	c->dead = true;
	if (c->ep != NULL)
		c->ep->nconns--;
	close(c->cl.fd); /* closing removes them from the epoll set */
	close(c->up.fd);
}

static void st_conn_free(st_conn *c)
{
	gust_buf_free(&c->in);
	gust_buf_free(&c->cl.out);
	gust_buf_free(&c->up.out);
	free(c);
}

/* Writes what e holds; -1 when the peer is gone. */
static int st_flush(inv_state *s, st_end *e)
{
	while (e->out_off < e->out.len) {
		ssize_t w =
		    send(e->fd, e->out.data + e->out_off, e->out.len - e->out_off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (w <= 0)
			return -1;
		e->out_off += (size_t)w;
	}
	bool pending = e->out_off < e->out.len;
	if (!pending) {
		gust_buf_reset(&e->out);
		e->out_off = 0;
	}
	if (pending != e->want_out) {
		e->want_out = pending;
		st_watch(s, e, EPOLL_CTL_MOD);
	}
	return e->out.len - e->out_off > ST_BUFFER_MAX ? -1 : 0;
}

/* A refusal Redis answers in order: "-ERR <msg>" (msg: no CR or LF). */
static void st_refuse(inv_state *s, st_conn *c, int why, const char *msg)
{
	gust_counter_add(s->m_refused[why], 1);
	gust_buf_printf(&c->up.out,
	                "*4\r\n$5\r\nFCALL\r\n$11\r\ngust_refuse\r\n$1\r\n0\r\n$%zu\r\n%s\r\n",
	                strlen(msg), msg);
}

static bool st_is(const gust_resp_cmd *cmd, const char *name)
{
	return cmd->name_len == strlen(name) && strncasecmp(cmd->name, name, cmd->name_len) == 0;
}

/* A Redis integer of 1 to 18 digits, no sign: else -1. */
static long long st_offset(const char *p, size_t n)
{
	if (n == 0 || n > 18 || (n > 1 && p[0] == '0'))
		return -1;
	long long v = 0;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

/* Appends to the Redis side what it gets for the allowed request req: the
 * request itself, or a rewrite that bounds what it may allocate. Under the
 * lock (the namespace's limits). */
static void st_forward(inv_state *s, st_conn *c, const char *req, const gust_resp_cmd *cmd)
{
	inv_state_ns *n = c->n;
	long long vmax = n->value_max;
	char msg[256];
	/* Every argument (so every value a command can store) is at most the
	 * value limit, and the request as a whole at most one value plus what
	 * keys, names and options take. */
	const char *a[GUST_RESP_MAX_ARGS];
	size_t l[GUST_RESP_MAX_ARGS];
	size_t na = gust_resp_args(req, cmd, a, l, GUST_RESP_MAX_ARGS);
	bool big = (long long)cmd->len > vmax + ST_REQ_SLACK;
	for (size_t i = 1; i < na && !big; i++)
		big = (long long)l[i] > vmax;
	if (big) {
		snprintf(msg, sizeof(msg),
		         "gust: a request of %zu bytes is over the namespace limit of %lld bytes "
		         "per value (stateValueBytes)",
		         cmd->len, vmax);
		st_refuse(s, c, ST_REFUSED_VALUE, msg);
		return;
	}
	bool grows = gust_state_cmd_grows(cmd->name, cmd->name_len);
	if (grows && n->used + n->pending >= n->quota) {
		snprintf(msg, sizeof(msg),
		         "gust: the namespace is over its state quota of %lld bytes (stateBytes; "
		         "%lld used): delete keys to write again",
		         n->quota, n->used + n->pending);
		st_refuse(s, c, ST_REFUSED_QUOTA, msg);
		return;
	}
	if (st_is(cmd, "setrange") && na == 4) {
		/* The value becomes at least offset + len bytes, zero-filled: bound
		 * it before Redis allocates. */
		long long off = st_offset(a[2], l[2]);
		if (off < 0 || off > vmax || (long long)l[3] > vmax - off) {
			snprintf(msg, sizeof(msg),
			         "gust: SETRANGE would make the value longer than the namespace "
			         "limit of %lld bytes (stateValueBytes)",
			         vmax);
			st_refuse(s, c, ST_REFUSED_VALUE, msg);
			return;
		}
	}
	/* Charged until the next sample measures it: the bytes it carries and
	 * Redis's overhead per key and element, as if all of it were new (an
	 * overwrite is counted too: the error is on the safe side). */
	if (grows)
		n->pending +=
		    (long long)cmd->len + ST_CHARGE_KEY + ST_CHARGE_ARG * (long long)cmd->nargs;
	if (st_is(cmd, "append") && na == 3) {
		/* The result's length depends on what is stored: Redis checks it. */
		char max[24];
		int ml = snprintf(max, sizeof(max), "%lld", vmax);
		gust_buf_printf(&c->up.out,
		                "*6\r\n$5\r\nFCALL\r\n$11\r\ngust_append\r\n$1\r\n1\r\n$%zu\r\n",
		                l[1]);
		gust_buf_append(&c->up.out, a[1], l[1]);
		gust_buf_printf(&c->up.out, "\r\n$%zu\r\n", l[2]);
		gust_buf_append(&c->up.out, a[2], l[2]);
		gust_buf_printf(&c->up.out, "\r\n$%d\r\n%s\r\n", ml, max);
		return;
	}
	gust_buf_append(&c->up.out, req, cmd->len);
}

/* Passes whole allowed requests from in to the Redis side. -1: close. */
static int st_requests(inv_state *s, st_conn *c)
{
	size_t at = 0;
	while (at < c->in.len) {
		gust_resp_cmd cmd;
		int r = gust_resp_parse_request(c->in.data + at, c->in.len - at, &cmd);
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		if (gust_state_cmd_allowed(cmd.name, cmd.name_len)) {
			st_forward(s, c, c->in.data + at, &cmd);
		} else {
			/* Redis answers an unknown command with an error, in order. */
			char name[40];
			size_t n = 0;
			for (size_t i = 0; i < cmd.name_len && n < 32; i++) {
				char ch = cmd.name[i];
				if (ch >= 'A' && ch <= 'Z')
					ch = (char)(ch - 'A' + 'a');
				if ((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))
					name[n++] = ch;
			}
			name[n] = '\0';
			gust_buf_printf(&c->up.out, "*1\r\n$%zu\r\ngust-refused:%s\r\n", n + 13,
			                name);
		}
		at += cmd.len;
	}
	if (at > 0) {
		memmove(c->in.data, c->in.data + at, c->in.len - at);
		c->in.len -= at;
	}
	return c->in.len > ST_BUFFER_MAX ? -1 : 0;
}

static void st_accept(inv_state *s, inv_state_ep *ep)
{
	for (;;) {
		int fd = accept4(ep->l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0)
			return;
		if (ep->nconns >= s->v->cfg.state_conns_per_sandbox) {
			/* Each costs a Redis connection and two buffers: one sandbox
			 * may not hold them all. */
			gust_counter_add(s->m_refused[ST_REFUSED_CONNS], 1);
			char msg[160];
			int ml =
			    snprintf(msg, sizeof(msg),
			             "-ERR gust: this sandbox already holds %d state connections "
			             "(the invoker's state_conns_per_sandbox)\r\n",
			             ep->nconns);
			(void)!write(fd, msg, (size_t)ml);
			close(fd);
			continue;
		}
		gust_error *err = NULL;
		int up = -1;
		if (st_upstream(s, ep->ns, &up, &err) != 0) {
			gust_log_warn("INV-STATE-UPSTREAM", "state connection for %s: %s", ep->ns,
			              gust_error_msg(err));
			gust_error_free(err);
			static const char msg[] = "-ERR gust: the state cache is unavailable\r\n";
			(void)!write(fd, msg, sizeof(msg) - 1);
			close(fd);
			continue;
		}
		st_conn *c = gust_xcalloc(1, sizeof(*c));
		pthread_mutex_lock(&s->lock);
		c->n = gust_map_get(&s->ns, ep->ns); /* made by st_upstream */
		pthread_mutex_unlock(&s->lock);
		if (c->n == NULL) {
			free(c);
			close(fd);
			close(up);
			continue;
		}
		c->ep = ep;
		ep->nconns++;
		c->cl = (st_end){.kind = ST_CLIENT, .fd = fd, .c = c};
		c->up = (st_end){.kind = ST_UP, .fd = up, .c = c};
		c->next = s->conns;
		s->conns = c;
		st_watch(s, &c->cl, EPOLL_CTL_ADD);
		st_watch(s, &c->up, EPOLL_CTL_ADD);
	}
}

/* Readable or writable end e of a connection. */
static void st_event(inv_state *s, st_end *e, uint32_t events)
{
	st_conn *c = e->c;
	st_end *peer = e == &c->cl ? &c->up : &c->cl;
	if ((events & EPOLLOUT) && st_flush(s, e) < 0)
		goto close;
	if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
		return;
	char buf[65536];
	ssize_t r = recv(e->fd, buf, sizeof(buf), 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (r <= 0)
		goto close;
	if (e->kind == ST_CLIENT) {
		gust_buf_append(&c->in, buf, (size_t)r);
		if (st_requests(s, c) < 0)
			goto close;
	} else {
		gust_buf_append(&peer->out, buf, (size_t)r);
	}
	if (st_flush(s, peer) < 0)
		goto close;
	return;
close:
	st_conn_close(s, c);
}

static void *st_thread(void *arg)
{
	inv_state *s = arg;
	struct epoll_event evs[64];
	for (;;) {
		int n = epoll_wait(s->epfd, evs, 64, -1);
		if (n < 0 && errno != EINTR)
			break;
		pthread_mutex_lock(&s->lock);
		bool stop = s->stopping;
		for (int i = 0; i < n && !stop; i++) {
			st_end *e = evs[i].data.ptr;
			if (e->kind == ST_WAKE) {
				uint64_t x;
				(void)!read(e->fd, &x, sizeof(x));
			} else if (e->kind == ST_LISTEN) {
				if (!e->ep->dead) {
					/* Connecting to Redis blocks briefly: not under
					 * the lock, which st_ns_password takes. */
					pthread_mutex_unlock(&s->lock);
					st_accept(s, e->ep);
					pthread_mutex_lock(&s->lock);
				}
			} else if (!e->c->dead) {
				st_event(s, e, evs[i].events);
			}
		}
		/* Nothing in this batch names them any more. */
		inv_state_ep *eps = s->dead_eps;
		s->dead_eps = NULL;
		pthread_mutex_unlock(&s->lock);
		while (eps) {
			inv_state_ep *next = eps->next;
			for (st_conn *c = s->conns; c != NULL; c = c->next)
				if (c->ep == eps)
					c->ep = NULL;
			close(eps->l.fd);
			free(eps->ns);
			free(eps->path);
			free(eps);
			eps = next;
		}
		for (st_conn **pp = &s->conns; *pp;) {
			st_conn *c = *pp;
			if (c->dead) {
				*pp = c->next;
				st_conn_free(c);
			} else {
				pp = &c->next;
			}
		}
		if (stop)
			break;
	}
	return NULL;
}

/* The quota thread. */

typedef struct st_names {
	char **v;
	size_t n;
} st_names;

/* The namespaces with a socket in a sandbox here: the others are not
 * sampled (nothing of theirs can write through this invoker). */
static int st_collect(void *arg, const char *key, void *value)
{
	st_names *names = arg;
	inv_state_ns *n = value;
	if (n->eps == 0)
		return 0;
	names->v = gust_xrealloc(names->v, (names->n + 1) * sizeof(*names->v));
	names->v[names->n++] = gust_xstrdup(key);
	return 0;
}

/* Adds the bytes of every key of the namespaces in idx (name -> index + 1)
 * to used[]: one SCAN over all state keys per round, whatever the number of
 * namespaces (SCAN visits the whole keyspace anyway; MATCH only filters),
 * and MEMORY USAGE (Redis's own estimate, nested values sampled) of the keys
 * of those namespaces only. */
/* SCAN calls (COUNT 1000) a sample makes per second at most: a keyspace of
 * activation records can hold tens of millions of keys, and one sample must
 * not take Redis from the hot path (100 calls visit ~100k keys a second, about
 * 1% of a Redis core here). A keyspace of N keys takes N / 100k seconds. */
#define ST_SCAN_CALLS_PER_S 100

static bool st_quota_stopping(inv_state *s)
{
	pthread_mutex_lock(&s->qlock);
	bool stop = s->qstopping;
	pthread_mutex_unlock(&s->qlock);
	return stop;
}

static int st_sample(inv_state *s, redisContext *r, gust_map *idx, long long *used,
                     gust_error **err)
{
	static const char pfx[] = "gust:state:";
	const size_t plen = sizeof(pfx) - 1;
	char cursor[32] = "0";
	size_t cap = 0;
	size_t *which = NULL;
	int rv = 0;
	bool first = true;
	do {
		if (!first) {
			struct timespec pause = {0, 1000000000L / ST_SCAN_CALLS_PER_S};
			nanosleep(&pause, NULL);
			if (st_quota_stopping(s)) {
				rv = gust_error_set(err, GUST_ECLOSED, "stopping");
				break;
			}
		}
		first = false;
		redisReply *rep = redisCommand(r, "SCAN %s MATCH gust:state:* COUNT 1000", cursor);
		if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 2 ||
		    rep->element[0]->type != REDIS_REPLY_STRING ||
		    rep->element[1]->type != REDIS_REPLY_ARRAY) {
			if (rep != NULL)
				freeReplyObject(rep);
			rv = gust_error_set(err, GUST_EUNAVAIL, "redis: SCAN: %s",
			                    r->errstr[0] ? r->errstr : "bad reply");
			break;
		}
		snprintf(cursor, sizeof(cursor), "%s", rep->element[0]->str);
		redisReply *keys = rep->element[1];
		if (keys->elements > cap) {
			cap = keys->elements;
			which = gust_xrealloc(which, cap * sizeof(*which));
		}
		size_t asked = 0;
		for (size_t i = 0; i < keys->elements; i++) {
			redisReply *k = keys->element[i];
			if (k->type != REDIS_REPLY_STRING || k->len <= plen)
				continue;
			/* gust:state:<ns>:<key>; names hold no ':' */
			const char *ns = k->str + plen;
			const char *end = memchr(ns, ':', k->len - plen);
			if (end == NULL || end == ns || end - ns > 255)
				continue;
			char name[256];
			memcpy(name, ns, (size_t)(end - ns));
			name[end - ns] = '\0';
			uintptr_t at = (uintptr_t)gust_map_get(idx, name);
			if (at == 0)
				continue;
			redisAppendCommand(r, "MEMORY USAGE %b", k->str, k->len);
			which[asked++] = at - 1;
		}
		for (size_t i = 0; i < asked; i++) {
			redisReply *m = NULL;
			if (redisGetReply(r, (void **)&m) != REDIS_OK) {
				rv = gust_error_set(err, GUST_EUNAVAIL, "redis: MEMORY USAGE: %s",
				                    r->errstr);
				break;
			}
			if (m->type == REDIS_REPLY_INTEGER)
				used[which[i]] += m->integer; /* nil: gone since the SCAN */
			freeReplyObject(m);
		}
		freeReplyObject(rep);
	} while (rv == 0 && strcmp(cursor, "0") != 0);
	free(which);
	return rv;
}

static int st_drop_idx(void *arg, const char *key, void *value)
{
	return 1;
}

static void st_quota_round(inv_state *s, redisContext **rp)
{
	gust_error *err = NULL;
	if (*rp == NULL && gust_redis_connect(s->v->cfg.redis, 2000, rp, &err) != 0) {
		gust_log_warn("INV-STATE-QUOTA-REDIS", "quota sampling: %s", gust_error_msg(err));
		gust_error_free(err);
		return;
	}
	/* A Redis restarted without persistence has lost the functions that
	 * APPEND and refusals are rewritten into: put them back. */
	redisReply *fl = redisCommand(*rp, "FUNCTION LIST LIBRARYNAME gust");
	if (fl != NULL && fl->type == REDIS_REPLY_ARRAY && fl->elements == 0 &&
	    gust_state_functions_load(*rp, &err) != 0) {
		gust_log_warn("INV-STATE-FUNCTIONS", "cannot load the state functions: %s",
		              gust_error_msg(err));
		gust_error_free(err);
		err = NULL;
	}
	if (fl != NULL)
		freeReplyObject(fl);
	st_names names = {0};
	pthread_mutex_lock(&s->lock);
	gust_map_filter(&s->ns, st_collect, &names);
	pthread_mutex_unlock(&s->lock);
	if (names.n == 0) {
		gust_gauge_set(s->m_over, 0);
		return;
	}
	long long *used = gust_xcalloc(names.n, sizeof(*used));
	long long *charged = gust_xcalloc(names.n, sizeof(*charged));
	gust_map idx = {0};
	uint64_t now = gust_now_ms();
	size_t nsample = 0;
	for (size_t i = 0; i < names.n; i++) {
		const char *ns = names.v[i];
		pthread_mutex_lock(&s->lock);
		inv_state_ns *n = gust_map_get(&s->ns, ns);
		bool refresh = now - n->limits_ms >= ST_LIMITS_REFRESH_MS;
		pthread_mutex_unlock(&s->lock);
		if (refresh) {
			/* An operator's `gust admin namespace limits` holds within
			 * ST_LIMITS_REFRESH_MS. */
			long long quota = s->v->cfg.state_quota_bytes;
			long long vmax = s->v->cfg.state_value_bytes;
			if (gust_state_limits(s->v->etcd, ns, &quota, &vmax, &err) == 0) {
				pthread_mutex_lock(&s->lock);
				n->quota = quota;
				n->value_max = vmax;
				n->limits_ms = now;
				pthread_mutex_unlock(&s->lock);
			}
			gust_error_free(err);
			err = NULL;
		}
		/* What was charged before the SCAN began is in the sample (or
		 * deleted since); what is charged while it runs stays charged,
		 * counted twice at worst. */
		pthread_mutex_lock(&s->lock);
		charged[i] = n->pending;
		/* A sample SCANs the whole keyspace (activation records too), so
		 * it is taken only where it can change a decision: a namespace
		 * never measured here, or one whose estimate (last sample plus
		 * charges) is within a quarter of its quota or over it — where
		 * a sample finds what deletes, expiries and overwrites (charged
		 * as new) gave back. Below that no sample is needed: writes are
		 * let through either way. */
		bool need = !n->sampled || n->used + n->pending >= n->quota - n->quota / 4;
		pthread_mutex_unlock(&s->lock);
		if (need) {
			gust_map_put(&idx, ns, (void *)(uintptr_t)(i + 1));
			nsample++;
		}
	}
	int over = 0;
	if (nsample == 0) {
		/* nothing to measure this round */
	} else if (st_sample(s, *rp, &idx, used, &err) != 0) {
		/* Limits stay as sampled last, charges keep adding up: a Redis
		 * that does not answer lets no namespace past its quota either. */
		gust_log_warn("INV-STATE-QUOTA-REDIS", "sampling: %s", gust_error_msg(err));
		gust_error_free(err);
		redisFree(*rp);
		*rp = NULL;
	} else {
		for (size_t i = 0; i < names.n; i++) {
			const char *ns = names.v[i];
			if (gust_map_get(&idx, ns) == NULL)
				continue; /* not sampled this round */
			pthread_mutex_lock(&s->lock);
			inv_state_ns *n = gust_map_get(&s->ns, ns);
			bool was = n->over;
			n->sampled = true;
			n->used = used[i];
			n->pending = n->pending > charged[i] ? n->pending - charged[i] : 0;
			n->over = used[i] >= n->quota;
			bool is = n->over;
			long long quota = n->quota;
			pthread_mutex_unlock(&s->lock);
			over += is;
			if (is && !was)
				gust_log_warn(
				    "INV-STATE-QUOTA",
				    "namespace %s uses %lld bytes of state, over its quota "
				    "of %lld: its writes are refused",
				    ns, used[i], quota);
			else if (was && !is)
				gust_log_info(
				    "INV-STATE-QUOTA",
				    "namespace %s uses %lld bytes of state, under its quota "
				    "of %lld: writes are taken again",
				    ns, used[i], quota);
		}
		gust_gauge_set(s->m_over, over);
	}
	gust_map_filter(&idx, st_drop_idx, NULL);
	gust_map_free(&idx);
	free(used);
	free(charged);
	for (size_t i = 0; i < names.n; i++)
		free(names.v[i]);
	free(names.v);
}

static void *st_quota_main(void *arg)
{
	inv_state *s = arg;
	redisContext *r = NULL;
	pthread_mutex_lock(&s->qlock);
	while (!s->qstopping) {
		if (!s->qpoked) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			long long ms = s->v->cfg.state_quota_interval_ms;
			ts.tv_sec += ms / 1000;
			ts.tv_nsec += (ms % 1000) * 1000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&s->qcv, &s->qlock, &ts);
		}
		if (s->qstopping)
			break;
		s->qpoked = false;
		pthread_mutex_unlock(&s->qlock);
		st_quota_round(s, &r);
		pthread_mutex_lock(&s->qlock);
	}
	pthread_mutex_unlock(&s->qlock);
	if (r != NULL)
		redisFree(r);
	return NULL;
}

int inv_state_attach(inv *v, const char *run_dir, const char *ns, inv_state_ep **epp,
                     gust_error **err)
{
	inv_state *s = v->state;
	*epp = NULL;
	if (s == NULL)
		return 0;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	cleanup_free char *path = gust_xasprintf("%s/%s", run_dir, ST_SOCK_NAME);
	if (strlen(path) >= sizeof(sa.sun_path))
		return gust_error_set(err, GUST_EINVAL, "state socket path too long: %s", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	/* Make the user now, so the first request does not wait on etcd. */
	cleanup_free char *pw = NULL;
	int rv = st_ns_password(s, ns, &pw, err);
	if (rv != 0)
		return rv;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return gust_error_set(err, GUST_EIO, "state socket: %s", strerror(errno));
	(void)unlink(path);
	/* Any uid of the sandbox's user namespace may connect. */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chmod(path, 0666) < 0 ||
	    listen(fd, 64) < 0) {
		rv = gust_error_set(err, GUST_EIO, "state socket %s: %s", path, strerror(errno));
		close(fd);
		(void)unlink(path);
		return rv;
	}
	inv_state_ep *ep = gust_xcalloc(1, sizeof(*ep));
	ep->l = (st_end){.kind = ST_LISTEN, .fd = fd, .ep = ep};
	ep->ns = gust_xstrdup(ns);
	ep->path = steal_pointer(&path);
	pthread_mutex_lock(&s->lock);
	inv_state_ns *n = gust_map_get(&s->ns, ns); /* made by st_ns_password */
	bool first = n != NULL && n->eps++ == 0;
	st_watch(s, &ep->l, EPOLL_CTL_ADD);
	pthread_mutex_unlock(&s->lock);
	/* Sampled at once: what it wrote while no sandbox of it was here is
	 * not known yet. */
	if (first)
		st_poke(s);
	*epp = ep;
	return 0;
}

void inv_state_detach(inv *v, inv_state_ep *ep)
{
	inv_state *s = v->state;
	if (ep == NULL || s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	ep->dead = true;
	inv_state_ns *n = gust_map_get(&s->ns, ep->ns);
	if (n != NULL && n->eps > 0)
		n->eps--;
	/* The fd stays open until the proxy thread frees the listener, so its
	 * number cannot be reused by another namespace's listener while an
	 * accept on it may still be running. */
	(void)epoll_ctl(s->epfd, EPOLL_CTL_DEL, ep->l.fd, NULL);
	(void)unlink(ep->path);
	ep->next = s->dead_eps;
	s->dead_eps = ep;
	pthread_mutex_unlock(&s->lock);
	/* Freed by the proxy thread after its current batch. */
	uint64_t one = 1;
	(void)!write(s->wake.fd, &one, sizeof(one));
}

int inv_state_start(inv *v, gust_error **err)
{
	inv_state *s = gust_xcalloc(1, sizeof(*s));
	s->v = v;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_init(&s->qlock, NULL);
	pthread_cond_init(&s->qcv, NULL);
	static const char *const why[3] = {"reason=\"value\"", "reason=\"quota\"",
	                                   "reason=\"connections\""};
	for (int i = 0; i < 3; i++)
		s->m_refused[i] = gust_counter_new("gust_invoker_state_refused_total",
		                                   "state cache requests and connections refused "
		                                   "by a limit",
		                                   why[i]);
	s->m_over =
	    gust_gauge_new("gust_invoker_state_namespaces_over_quota",
	                   "namespaces whose state writes are refused (over stateBytes)", NULL);
	s->wake = (st_end){.kind = ST_WAKE, .fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)};
	s->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (s->wake.fd < 0 || s->epfd < 0) {
		int e = errno;
		v->state = s;
		inv_state_stop(v);
		return gust_error_set(err, GUST_EIO, "state proxy: %s", strerror(e));
	}
	st_watch(s, &s->wake, EPOLL_CTL_ADD);
	v->state = s;
	if (pthread_create(&s->thread, NULL, st_thread, s) != 0) {
		inv_state_stop(v);
		return gust_error_set(err, GUST_EIO, "cannot start the state proxy thread");
	}
	s->running = true;
	if (pthread_create(&s->qthread, NULL, st_quota_main, s) != 0) {
		inv_state_stop(v);
		return gust_error_set(err, GUST_EIO, "cannot start the state quota thread");
	}
	s->qrunning = true;
	return 0;
}

static int st_ns_drop(void *arg, const char *key, void *value)
{
	inv_state_ns *n = value;
	free(n->password);
	free(n);
	return 1;
}

void inv_state_stop(inv *v)
{
	inv_state *s = v->state;
	if (s == NULL)
		return;
	if (s->qrunning) {
		pthread_mutex_lock(&s->qlock);
		s->qstopping = true;
		pthread_cond_signal(&s->qcv);
		pthread_mutex_unlock(&s->qlock);
		pthread_join(s->qthread, NULL);
	}
	if (s->running) {
		pthread_mutex_lock(&s->lock);
		s->stopping = true;
		pthread_mutex_unlock(&s->lock);
		uint64_t one = 1;
		(void)!write(s->wake.fd, &one, sizeof(one));
		pthread_join(s->thread, NULL);
	}
	while (s->conns) {
		st_conn *c = s->conns;
		s->conns = c->next;
		st_conn_close(s, c);
		st_conn_free(c);
	}
	while (s->dead_eps) {
		inv_state_ep *ep = s->dead_eps;
		s->dead_eps = ep->next;
		close(ep->l.fd);
		free(ep->ns);
		free(ep->path);
		free(ep);
	}
	gust_map_filter(&s->ns, st_ns_drop, NULL);
	gust_map_free(&s->ns);
	if (s->admin != NULL)
		redisFree(s->admin);
	if (s->wake.fd >= 0)
		close(s->wake.fd);
	if (s->epfd >= 0)
		close(s->epfd);
	pthread_mutex_destroy(&s->lock);
	pthread_mutex_destroy(&s->qlock);
	pthread_cond_destroy(&s->qcv);
	free(s);
	v->state = NULL;
}
