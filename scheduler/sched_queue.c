/* sched_queue.c - admission, one queue per warm key (the invoking namespace
 * and the action version's code: gust_warm_key), and fair dispatch.
 *
 * A namespace is charged from admission until its activation finishes; over
 * its concurrency or per-minute limit a request is refused (429 at the
 * gateway). Admitted activations wait in their action version's queue until
 * an invoker has memory for them. Dispatch takes namespaces with waiting work
 * in turn, and within a namespace its queues in turn, so that one namespace's
 * flood cannot starve the others; an action version runs at most
 * max_action_sandboxes activations at once. */
#include <string.h>

#include "gust/log.h"
#include "scheduler.h"

struct sched_queue {
	char *key;
	sched_ns *ns;
	sched_act *head, **tail;
	int waiting;
	int running;
	bool ready; /* in its namespace's ready list */
};

#define WINDOW 60

struct sched_ns {
	char *name;
	int active; /* admitted, not finished */
	uint64_t sec[WINDOW];
	int count[WINDOW];
	sched_queue **ready; /* queues with waiting work, in turn order */
	size_t nready;
	bool is_ready; /* in the scheduler's ready list */
};

/* Small arrays in turn order: removing and rotating are O(n) in the number
 * of namespaces or queues with waiting work, which stays small. */
static void arr_remove(void **v, size_t *n, size_t i)
{
	memmove(&v[i], &v[i + 1], (*n - i - 1) * sizeof(void *));
	(*n)--;
}

static void arr_push(void ***v, size_t *n, void *p)
{
	*v = gust_xrealloc(*v, (*n + 1) * sizeof(void *));
	(*v)[(*n)++] = p;
}

int sched_queue_init(sched *s)
{
	pthread_mutex_init(&s->qlock, NULL);
	return 0;
}

static int drop_queue(void *arg, const char *k, void *v)
{
	sched_queue *q = v;
	while (q->head) {
		sched_act *a = q->head;
		q->head = a->next;
		sched_act_free(a);
	}
	free(q->key);
	free(q);
	return 1;
}

static int drop_ns(void *arg, const char *k, void *v)
{
	sched_ns *n = v;
	free(n->ready);
	free(n->name);
	free(n);
	return 1;
}

static int drop_none(void *arg, const char *k, void *v)
{
	return 1;
}

void sched_queue_fini(sched *s)
{
	pthread_mutex_lock(&s->qlock);
	gust_map_filter(&s->queues, drop_queue, NULL);
	gust_map_filter(&s->nss, drop_ns, NULL);
	gust_map_filter(&s->inflight, drop_none, NULL);
	gust_map_filter(&s->done_ids, drop_none, NULL);
	gust_map_free(&s->done_ids);
	gust_map_free(&s->queues);
	gust_map_free(&s->nss);
	gust_map_free(&s->inflight);
	free(s->ready);
	s->ready = NULL;
	s->nready = 0;
	pthread_mutex_unlock(&s->qlock);
}

static sched_ns *ns_get(sched *s, const char *name)
{
	sched_ns *n = gust_map_get(&s->nss, name);
	if (n == NULL) {
		n = gust_xcalloc(1, sizeof(*n));
		n->name = gust_xstrdup(name);
		gust_map_put(&s->nss, name, n);
	}
	return n;
}

/* Invocations in the last minute, sliding by the second. */
static int ns_rate(sched_ns *n, uint64_t now_s)
{
	int total = 0;
	for (int i = 0; i < WINDOW; i++)
		if (now_s - n->sec[i] < WINDOW)
			total += n->count[i];
	return total;
}

static void ns_count(sched_ns *n, uint64_t now_s)
{
	int i = (int)(now_s % WINDOW);
	if (n->sec[i] != now_s) {
		n->sec[i] = now_s;
		n->count[i] = 0;
	}
	n->count[i]++;
}

int sched_admit(sched *s, const char *ns, char *why, size_t whylen)
{
	int concurrent, per_minute;
	sched_ns_limits(s, ns, &concurrent, &per_minute);
	uint64_t now_s = gust_now_ms() / 1000;
	pthread_mutex_lock(&s->qlock);
	sched_ns *n = ns_get(s, ns);
	int rv = 0;
	if (n->active >= concurrent) {
		snprintf(why, whylen,
		         "Too many concurrent requests in flight (count: %d, allowed: %d).",
		         n->active, concurrent);
		rv = GUST_EBUSY;
	} else {
		int rate = ns_rate(n, now_s);
		if (rate >= per_minute) {
			snprintf(why, whylen,
			         "Too many requests in the last minute (count: %d, allowed: %d).",
			         rate, per_minute);
			rv = GUST_EBUSY;
		} else {
			ns_count(n, now_s);
			n->active++;
		}
	}
	pthread_mutex_unlock(&s->qlock);
	if (rv)
		gust_counter_add(s->m_refused, 1);
	return rv;
}

/* Under qlock. */
static void queue_push(sched *s, sched_act *a, bool front)
{
	sched_queue *q = gust_map_get(&s->queues, a->key);
	if (q == NULL) {
		q = gust_xcalloc(1, sizeof(*q));
		q->key = gust_xstrdup(a->key);
		q->tail = &q->head;
		q->ns = ns_get(s, a->ns);
		gust_map_put(&s->queues, a->key, q);
	}
	if (front) {
		a->next = q->head;
		q->head = a;
		if (q->tail == &q->head)
			q->tail = &a->next;
	} else {
		a->next = NULL;
		*q->tail = a;
		q->tail = &a->next;
	}
	q->waiting++;
	gust_map_put(&s->inflight, a->id, a);
	if (!q->ready) {
		q->ready = true;
		arr_push((void ***)&q->ns->ready, &q->ns->nready, q);
	}
	if (!q->ns->is_ready) {
		q->ns->is_ready = true;
		arr_push((void ***)&s->ready, &s->nready, q->ns);
	}
}

void sched_enqueue(sched *s, sched_act *a)
{
	pthread_mutex_lock(&s->qlock);
	/* A retried activation goes to the front: it has waited already. */
	queue_push(s, a, a->attempts > 0);
	pthread_mutex_unlock(&s->qlock);
	gust_gauge_add(s->m_queued, 1);
	sched_pump(s);
}

/*
 * Under qlock: picks the next activation to run and its invoker, taking
 * namespaces with waiting work in turn, and each namespace's queues in turn.
 * The one served goes to the back of both lists. NULL when nothing can run.
 */
static sched_act *pump_one(sched *s)
{
	for (size_t i = 0; i < s->nready; i++) {
		sched_ns *n = s->ready[i];
		for (size_t j = 0; j < n->nready; j++) {
			sched_queue *q = n->ready[j];
			if (q->head == NULL) {
				q->ready = false;
				arr_remove((void **)n->ready, &n->nready, j--);
				continue;
			}
			if (q->running >= s->cfg.max_action_sandboxes)
				continue;
			sched_act *a = q->head;
			sched_invoker *inv = sched_place(s, q->key, a->memory_mb, a->last_invoker);
			if (inv == NULL)
				continue;
			q->head = a->next;
			if (q->head == NULL)
				q->tail = &q->head;
			q->waiting--;
			q->running++;
			a->inv = inv;
			atomic_fetch_add(&inv->inflight_mb, a->memory_mb);
			atomic_fetch_add(&inv->inflight, 1);
			arr_remove((void **)n->ready, &n->nready, j);
			if (q->head != NULL)
				arr_push((void ***)&n->ready, &n->nready, q);
			else
				q->ready = false;
			arr_remove((void **)s->ready, &s->nready, i);
			if (n->nready > 0)
				arr_push((void ***)&s->ready, &s->nready, n);
			else
				n->is_ready = false;
			return a;
		}
		if (n->nready == 0) {
			n->is_ready = false;
			arr_remove((void **)s->ready, &s->nready, i--);
		}
	}
	return NULL;
}

void sched_pump(sched *s)
{
	for (;;) {
		pthread_mutex_lock(&s->qlock);
		sched_act *a = pump_one(s);
		pthread_mutex_unlock(&s->qlock);
		if (a == NULL)
			return;
		gust_gauge_add(s->m_queued, -1);
		gust_counter_add(s->m_placed, 1);
		sched_act_forward(a);
	}
}

void sched_release(sched *s, sched_act *a)
{
	pthread_mutex_lock(&s->qlock);
	sched_queue *q = gust_map_get(&s->queues, a->key);
	if (q && q->running > 0)
		q->running--;
	pthread_mutex_unlock(&s->qlock);
	if (a->inv) {
		atomic_fetch_sub(&a->inv->inflight_mb, a->memory_mb);
		atomic_fetch_sub(&a->inv->inflight, 1);
		snprintf(a->last_invoker, sizeof(a->last_invoker), "%s", a->inv->id);
		sched_invoker_unref(a->inv);
		a->inv = NULL;
	}
}

/* The activation is over (answered, or given up): uncharge its namespace. */
void sched_finish(sched *s, sched_act *a)
{
	pthread_mutex_lock(&s->qlock);
	sched_ns *n = gust_map_get(&s->nss, a->ns);
	if (n && n->active > 0)
		n->active--;
	if (gust_map_get(&s->inflight, a->id) == a)
		gust_map_del(&s->inflight, a->id);
	pthread_mutex_unlock(&s->qlock);
}

/* Charges a replayed activation to its namespace without a limit check: it
 * was admitted before. */
void sched_charge(sched *s, const char *ns)
{
	pthread_mutex_lock(&s->qlock);
	ns_get(s, ns)->active++;
	pthread_mutex_unlock(&s->qlock);
}

bool sched_inflight_has(sched *s, const char *id)
{
	pthread_mutex_lock(&s->qlock);
	bool has = gust_map_get(&s->inflight, id) != NULL;
	pthread_mutex_unlock(&s->qlock);
	return has;
}

size_t sched_queued(sched *s)
{
	return (size_t)gust_metric_value(s->m_queued);
}
