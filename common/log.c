/* log.c - leveled logging with stable ids to stderr; one write(2) per line so that
 * lines from several threads never interleave. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "gust/log.h"

int gust_log_threshold = GUST_LOG_INFO;
static char log_name[32] = "gust";

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};

int gust_log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	if (strcasecmp(s, "warning") == 0)
		return GUST_LOG_WARN;
	return -1;
}

void gust_log_set_name(const char *daemon)
{
	snprintf(log_name, sizeof(log_name), "%s", daemon);
}

void gust_log_write(int level, const char *id, const char *fmt, ...)
{
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %s[%d] %-5s %s ",
	                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	                 tm.tm_sec, ts.tv_nsec / 1000000, log_name, (int)getpid(),
	                 level_names[level < 0   ? 0
	                             : level > 3 ? 3
	                                         : level],
	                 id);
	if (n < 0)
		return;
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + (size_t)m;
	if (len > sizeof(line) - 2)
		len = sizeof(line) - 2;
	line[len++] = '\n';
	ssize_t w = write(STDERR_FILENO, line, len);
	(void)w;
}
