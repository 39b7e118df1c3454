/*
 * gust/metrics.h - Prometheus text metrics, and the small HTTP server that every
 * daemon without an HTTP API of its own uses for GET /health and GET /metrics.
 *
 * Metrics are registered once at start-up and live until exit; updates are
 * lock-free atomics, so any thread may update any metric.
 */
#ifndef GUST_METRICS_H
#define GUST_METRICS_H

#include <stdint.h>

#include "gust/err.h"
#include "gust/util.h"

typedef struct gust_metric gust_metric;

/* labels: Prometheus label text without braces, e.g. `status="success"`, or NULL.
 * Several metrics may share a name with different labels. */
gust_metric *gust_counter_new(const char *name, const char *help, const char *labels);
gust_metric *gust_gauge_new(const char *name, const char *help, const char *labels);
/* Seconds-valued histogram with buckets from 50 us to 60 s. */
gust_metric *gust_histogram_new(const char *name, const char *help, const char *labels);

void gust_counter_add(gust_metric *m, uint64_t n);
void gust_gauge_set(gust_metric *m, int64_t v);
void gust_gauge_add(gust_metric *m, int64_t d);
void gust_histogram_observe_us(gust_metric *m, uint64_t us);
uint64_t gust_metric_value(gust_metric *m); /* counter/gauge value, histogram count */

/* Appends every registered metric in the text exposition format. */
void gust_metrics_render(gust_buf *out);

typedef struct gust_admin_http gust_admin_http;
/* health(arg, body) fills a JSON body and returns 0 when healthy (200) or an
 * error (503). health may be NULL (always healthy). */
typedef int (*gust_health_fn)(void *arg, gust_buf *body);
/* token_file: NULL or "" leaves /metrics open; otherwise /metrics answers
 * 401 unless the request carries "Authorization: Bearer <the file's token>".
 * /health is always open (load balancers probe it without credentials). */
int gust_admin_http_start(const char *host, int port, const char *token_file, gust_health_fn health,
                          void *arg, gust_admin_http **hp, gust_error **err);
void gust_admin_http_stop(gust_admin_http *h);
/* Reads a bearer token from a file: one line of visible ASCII, at most 1 KiB,
 * a trailing newline dropped (the token itself is never put in an error or a
 * log). Warns when the file is readable by group or others. */
int gust_admin_token_load(const char *path, char **tokenp, gust_error **err);
/* Whether an Authorization header value carries token (constant time); true
 * when token is NULL (no token required). */
bool gust_admin_token_ok(const char *token, const char *authorization);

#endif
