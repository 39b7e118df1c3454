/*
 * state_native.c - bench/state.py's native action: times N GET and N SET of
 * a 16-byte value through the state cache proxy (/run/gust/state.sock) with
 * raw RESP, one request in flight at a time, as a C function would with any
 * Redis client. Speaks the native runtime's protocol (invoker/sandbox.h):
 * one JSON line per activation on stdin ({"value":{"n":N},...}), the result
 * on fd 3 (which ends the activation's logs). Built static by state.py:
 *   cc -O2 -static -o state_native bench/state_native.c
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static int sn_fd = -1;
static char sn_buf[65536];
static size_t sn_len;

static long long sn_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int sn_connect(void)
{
	const char *path = getenv("GUST_STATE_SOCKET");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path ? path : "/run/gust/state.sock");
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* Sends req and reads one reply: a simple string, error, integer or bulk
 * string (all GET and SET answer). 0 on success. */
static int sn_call(const char *req, size_t len)
{
	if (write(sn_fd, req, len) != (ssize_t)len)
		return -1;
	sn_len = 0;
	for (;;) {
		ssize_t r = read(sn_fd, sn_buf + sn_len, sizeof(sn_buf) - sn_len);
		if (r <= 0)
			return -1;
		sn_len += (size_t)r;
		char *eol = memchr(sn_buf, '\n', sn_len);
		if (eol == NULL)
			continue;
		if (sn_buf[0] != '$')
			return sn_buf[0] == '-' ? -1 : 0;
		long n = atol(sn_buf + 1);
		size_t need = (size_t)(eol + 1 - sn_buf) + (n < 0 ? 0 : (size_t)n + 2);
		if (sn_len >= need)
			return 0;
	}
}

static int sn_cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return x < y ? -1 : x > y;
}

/* Times n calls of req; appends {"p50_us","p99_us","ops_s"} to out. */
static int sn_time(const char *req, long n, long long *lat, char *out, size_t outsz)
{
	long long t0 = sn_now_ns();
	for (long i = 0; i < n; i++) {
		long long a = sn_now_ns();
		if (sn_call(req, strlen(req)) != 0)
			return -1;
		lat[i] = sn_now_ns() - a;
	}
	double el = (double)(sn_now_ns() - t0) / 1e9;
	qsort(lat, (size_t)n, sizeof(*lat), sn_cmp);
	snprintf(out, outsz, "{\"p50_us\":%.1f,\"p99_us\":%.1f,\"ops_s\":%.0f}",
	         (double)lat[n / 2] / 1000.0, (double)lat[n * 99 / 100] / 1000.0, (double)n / el);
	return 0;
}

int main(void)
{
	char *line = NULL;
	size_t cap = 0;
	FILE *res = fdopen(3, "w");
	while (getline(&line, &cap, stdin) > 0) {
		const char *p = strstr(line, "\"n\":");
		long n = p ? atol(p + 4) : 1000;
		if (n < 1 || n > 1000000)
			n = 1000;
		const char *prefix = getenv("GUST_STATE_PREFIX");
		char key[256], get[512], set[512];
		snprintf(key, sizeof(key), "%sbench-native", prefix ? prefix : "");
		snprintf(get, sizeof(get), "*2\r\n$3\r\nGET\r\n$%zu\r\n%s\r\n", strlen(key), key);
		snprintf(set, sizeof(set),
		         "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$16\r\nxxxxxxxxxxxxxxxx\r\n",
		         strlen(key), key);
		long long *lat = calloc((size_t)n, sizeof(*lat));
		char g[128], s[128];
		if (sn_fd < 0)
			sn_fd = sn_connect();
		if (lat == NULL || sn_fd < 0 || sn_call(set, strlen(set)) != 0 ||
		    sn_time(get, n, lat, g, sizeof(g)) != 0 ||
		    sn_time(set, n, lat, s, sizeof(s)) != 0) {
			fprintf(res, "{\"error\":\"state cache unreachable\"}\n");
			if (sn_fd >= 0)
				close(sn_fd); /* the next activation connects again */
			sn_fd = -1;
		} else
			fprintf(res, "{\"get\":%s,\"set\":%s}\n", g, s);
		fflush(res);
		free(lat);
	}
	free(line);
	return 0;
}
