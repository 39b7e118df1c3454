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
 * Lifetimes: a listener or connection is closed by the proxy thread or under
 * the lock, and freed only by the proxy thread after the batch of events that
 * may still name it (a dead flag makes the rest of the batch skip it). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "gust/log.h"
#include "gust/resp.h"
#include "gust/state.h"
#include "invoker.h"

#define ST_SOCK_NAME "state.sock"
#define ST_BUFFER_MAX (64u << 20) /* bytes held for one connection, each way */

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

struct st_conn {
	st_end cl, up;
	gust_buf in; /* bytes from the function not yet a whole request */
	bool dead;
	st_conn *next; /* in the list of live or of dead connections */
};

struct inv_state_ep {
	st_end l;
	char *ns;
	char *path;
	bool dead;
	inv_state_ep *next; /* on the dead list */
};

typedef struct inv_state_ns {
	char *password;
	bool acl_ok; /* the ACL user was set by this process */
} inv_state_ns;

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
};

static int st_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
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
	return gust_state_acl_set(s->admin, ns, password, err);
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
	pthread_mutex_lock(&s->lock);
	n = gust_map_get(&s->ns, ns);
	if (n == NULL) {
		n = gust_xcalloc(1, sizeof(*n));
		gust_map_put(&s->ns, ns, n);
	}
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

/* Passes whole allowed requests from in to the Redis side. -1: close. */
static int st_requests(st_conn *c)
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
			gust_buf_append(&c->up.out, c->in.data + at, cmd.len);
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
		if (st_requests(c) < 0)
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
	st_watch(s, &ep->l, EPOLL_CTL_ADD);
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
	free(s);
	v->state = NULL;
}
