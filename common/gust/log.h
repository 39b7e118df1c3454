/*
 * gust/log.h - leveled logging with stable message ids.
 *
 * Each call names a stable id ("SCHED-ETCD-LEASE") that operators can grep and
 * alert on; the level is checked before anything is formatted (redis serverLog,
 * nng src/core/dialer.c). Lines go to stderr:
 *   2026-11-27T01:32:45.123Z WARN  SCHED-ETCD-LEASE lease 42 lost: ...
 */
#ifndef GUST_LOG_H
#define GUST_LOG_H

enum gust_log_level {
	GUST_LOG_DEBUG = 0,
	GUST_LOG_INFO = 1,
	GUST_LOG_WARN = 2,
	GUST_LOG_ERROR = 3,
};

extern int gust_log_threshold;

/* Parses "debug", "info", "warn", "error"; returns -1 for anything else. */
int gust_log_level_parse(const char *s);
void gust_log_set_name(const char *daemon);

void gust_log_write(int level, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define gust_log_(lvl, id, ...)                                                                    \
	do {                                                                                       \
		if ((lvl) >= gust_log_threshold)                                                   \
			gust_log_write((lvl), (id), __VA_ARGS__);                                  \
	} while (0)
#define gust_log_debug(id, ...) gust_log_(GUST_LOG_DEBUG, id, __VA_ARGS__)
#define gust_log_info(id, ...) gust_log_(GUST_LOG_INFO, id, __VA_ARGS__)
#define gust_log_warn(id, ...) gust_log_(GUST_LOG_WARN, id, __VA_ARGS__)
#define gust_log_error(id, ...) gust_log_(GUST_LOG_ERROR, id, __VA_ARGS__)

#endif
