/* metrics.c - Prometheus counters, gauges and histograms. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "gust/metrics.h"

enum { M_COUNTER, M_GAUGE, M_HISTOGRAM };

/* Upper bounds in microseconds; the last bucket is +Inf. */
static const uint64_t hist_bounds_us[] = {50,     100,    250,     500,     1000,    2500,
					  5000,   10000,  25000,   50000,   100000,  250000,
					  500000, 1000000, 2500000, 5000000, 10000000, 60000000};
#define HIST_N (sizeof(hist_bounds_us) / sizeof(hist_bounds_us[0]))

struct gust_metric {
	const char *name;
	const char *help;
	char *labels;
	int type;
	_Atomic int64_t value;
	_Atomic uint64_t buckets[HIST_N + 1];
	_Atomic uint64_t sum_us;
	gust_metric *next;
};

static pthread_mutex_t metrics_lock = PTHREAD_MUTEX_INITIALIZER;
static gust_metric *metrics_head, **metrics_tail = &metrics_head;

static gust_metric *metric_new(int type, const char *name, const char *help, const char *labels)
{
	gust_metric *m = gust_xcalloc(1, sizeof(*m));
	m->name = name;
	m->help = help;
	m->labels = labels ? gust_xstrdup(labels) : NULL;
	m->type = type;
	pthread_mutex_lock(&metrics_lock);
	*metrics_tail = m;
	metrics_tail = &m->next;
	pthread_mutex_unlock(&metrics_lock);
	return m;
}

gust_metric *gust_counter_new(const char *name, const char *help, const char *labels)
{
	return metric_new(M_COUNTER, name, help, labels);
}

gust_metric *gust_gauge_new(const char *name, const char *help, const char *labels)
{
	return metric_new(M_GAUGE, name, help, labels);
}

gust_metric *gust_histogram_new(const char *name, const char *help, const char *labels)
{
	return metric_new(M_HISTOGRAM, name, help, labels);
}

void gust_counter_add(gust_metric *m, uint64_t n)
{
	atomic_fetch_add_explicit(&m->value, (int64_t)n, memory_order_relaxed);
}

void gust_gauge_set(gust_metric *m, int64_t v)
{
	atomic_store_explicit(&m->value, v, memory_order_relaxed);
}

void gust_gauge_add(gust_metric *m, int64_t d)
{
	atomic_fetch_add_explicit(&m->value, d, memory_order_relaxed);
}

void gust_histogram_observe_us(gust_metric *m, uint64_t us)
{
	size_t i = 0;
	while (i < HIST_N && us > hist_bounds_us[i])
		i++;
	atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->sum_us, us, memory_order_relaxed);
	atomic_fetch_add_explicit(&m->value, 1, memory_order_relaxed);
}

uint64_t gust_metric_value(gust_metric *m)
{
	return (uint64_t)atomic_load_explicit(&m->value, memory_order_relaxed);
}

static bool name_seen_before(gust_metric *upto, const char *name)
{
	for (gust_metric *p = metrics_head; p != upto; p = p->next)
		if (strcmp(p->name, name) == 0)
			return true;
	return false;
}

void gust_metrics_render(gust_buf *out)
{
	static const char *const types[] = {"counter", "gauge", "histogram"};
	pthread_mutex_lock(&metrics_lock);
	gust_metric *head = metrics_head;
	pthread_mutex_unlock(&metrics_lock);
	/* Metrics are only ever appended, so walking without the lock is safe. */
	for (gust_metric *m = head; m != NULL; m = m->next) {
		if (!name_seen_before(m, m->name))
			gust_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name,
					types[m->type]);
		const char *l = m->labels ? m->labels : "";
		const char *sep = m->labels ? "," : "";
		if (m->type != M_HISTOGRAM) {
			if (m->labels)
				gust_buf_printf(out, "%s{%s} %lld\n", m->name, l,
						(long long)atomic_load(&m->value));
			else
				gust_buf_printf(out, "%s %lld\n", m->name,
						(long long)atomic_load(&m->value));
			continue;
		}
		uint64_t cum = 0;
		for (size_t i = 0; i <= HIST_N; i++) {
			cum += atomic_load(&m->buckets[i]);
			if (i < HIST_N)
				gust_buf_printf(out, "%s_bucket{%s%sle=\"%g\"} %llu\n", m->name, l, sep,
						(double)hist_bounds_us[i] / 1e6,
						(unsigned long long)cum);
			else
				gust_buf_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", m->name, l,
						sep, (unsigned long long)cum);
		}
		const char *lb = m->labels ? "{" : "", *le = m->labels ? "}" : "";
		gust_buf_printf(out, "%s_sum%s%s%s %.6f\n", m->name, lb, l, le,
				(double)atomic_load(&m->sum_us) / 1e6);
		gust_buf_printf(out, "%s_count%s%s%s %llu\n", m->name, lb, l, le,
				(unsigned long long)cum);
	}
}
