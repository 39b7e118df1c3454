/* resp.c - parsing a Redis request from an untrusted client (gust/resp.h).
 *
 * Every length is checked against the bytes present before it is used, and
 * every number is bounded before it is multiplied or added: the bytes come
 * from function code the invoker does not trust. */
#include <string.h>

#include "gust/resp.h"

/* Reads "<digits>\r\n" at p[0..n): a non-negative decimal of at most 10
 * digits. Returns the bytes used, 0 when more are needed, -1 when invalid. */
static long resp_number(const char *p, size_t n, size_t *out)
{
	size_t v = 0, i = 0;
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++) {
		if (i == 10)
			return -1;
		v = v * 10 + (size_t)(p[i] - '0');
	}
	if (i == n || (i + 1 == n && p[i] == '\r'))
		return i < 11 ? 0 : -1;
	if (i == 0 || p[i] != '\r' || p[i + 1] != '\n')
		return -1;
	*out = v;
	return (long)(i + 2);
}

int gust_resp_parse_request(const char *buf, size_t n, gust_resp_cmd *cmd)
{
	if (n == 0)
		return 0;
	if (buf[0] != '*')
		return -1; /* inline commands are refused (see resp.h) */
	size_t at = 1, nargs = 0;
	long used = resp_number(buf + at, n - at, &nargs);
	if (used <= 0)
		return (int)used;
	if (nargs == 0 || nargs > GUST_RESP_MAX_ARGS)
		return -1;
	at += (size_t)used;
	const char *name = NULL;
	size_t name_len = 0;
	for (size_t i = 0; i < nargs; i++) {
		if (at == n)
			return 0;
		if (buf[at] != '$')
			return -1;
		at++;
		size_t blen = 0;
		used = resp_number(buf + at, n - at, &blen);
		if (used <= 0)
			return (int)used;
		if (blen > GUST_RESP_MAX_BULK)
			return -1;
		at += (size_t)used;
		/* at <= n and blen is bounded: no overflow in the sums below. */
		if (n - at < blen + 2) {
			/* The terminator, if present, must still be right. */
			if (n - at > blen && buf[at + blen] != '\r')
				return -1;
			return 0;
		}
		if (buf[at + blen] != '\r' || buf[at + blen + 1] != '\n')
			return -1;
		if (i == 0) {
			name = buf + at;
			name_len = blen;
		}
		at += blen + 2;
	}
	if (name_len == 0)
		return -1;
	cmd->len = at;
	cmd->nargs = nargs;
	cmd->name = name;
	cmd->name_len = name_len;
	return 1;
}

size_t gust_resp_args(const char *buf, const gust_resp_cmd *cmd, const char **ptr, size_t *len,
                      size_t max)
{
	/* The request is whole and valid: every number was checked by the
	 * parser, so only the walk remains (and it stops at cmd->len anyway). */
	size_t at = 1, k = 0, nargs = 0;
	long used = resp_number(buf + at, cmd->len - at, &nargs);
	if (used <= 0)
		return 0;
	at += (size_t)used;
	for (size_t i = 0; i < nargs && k < max && at < cmd->len; i++) {
		size_t blen = 0;
		at++; /* '$' */
		used = resp_number(buf + at, cmd->len - at, &blen);
		if (used <= 0 || cmd->len - at - (size_t)used < blen + 2)
			return k;
		at += (size_t)used;
		ptr[k] = buf + at;
		len[k] = blen;
		k++;
		at += blen + 2;
	}
	return k;
}

void gust_resp_error(gust_buf *out, const char *msg)
{
	gust_buf_puts(out, "-");
	gust_buf_puts(out, msg);
	gust_buf_puts(out, "\r\n");
}
