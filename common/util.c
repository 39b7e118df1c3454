/* util.c - cleanup helpers, clocks, buffers, base64, ids, hashing. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "gust/util.h"
#include "json_scan.h"

void gust_freep(void *p)
{
	free(*(void **)p);
}

void gust_closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}

uint64_t gust_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t gust_now_ms(void)
{
	return gust_now_us() / 1000u;
}

int64_t gust_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void oom(void)
{
	static const char m[] = "gust: out of memory\n";
	ssize_t w = write(2, m, sizeof(m) - 1);
	(void)w;
	abort();
}

void *gust_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (p == NULL)
		oom();
	return p;
}

void *gust_xcalloc(size_t n, size_t sz)
{
	void *p = calloc(n ? n : 1, sz ? sz : 1);
	if (p == NULL)
		oom();
	return p;
}

void *gust_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (q == NULL)
		oom();
	return q;
}

char *gust_xstrdup(const char *s)
{
	char *p = strdup(s ? s : "");
	if (p == NULL)
		oom();
	return p;
}

char *gust_xstrndup(const char *s, size_t n)
{
	char *p = gust_xmalloc(n + 1);
	memcpy(p, s, n);
	p[n] = 0;
	return p;
}

char *gust_xasprintf(const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int r = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (r < 0)
		oom();
	return s;
}

static void buf_reserve(gust_buf *b, size_t extra)
{
	if (b->len + extra + 1 <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->len + extra + 1)
		cap *= 2;
	b->data = gust_xrealloc(b->data, cap);
	b->cap = cap;
}

void gust_buf_reserve(gust_buf *b, size_t n)
{
	buf_reserve(b, n);
}

void gust_buf_append(gust_buf *b, const void *p, size_t n)
{
	buf_reserve(b, n);
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = 0;
}

void gust_buf_puts(gust_buf *b, const char *s)
{
	gust_buf_append(b, s, strlen(s));
}

void gust_buf_printf(gust_buf *b, const char *fmt, ...)
{
	/* Probe into a stack buffer, not vsnprintf(NULL, 0, ...): gcc's
	 * -Wformat-truncation misreads that under the sanitizers. Short output
	 * is copied from the probe; longer output is formatted a second time. */
	char probe[256];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(probe, sizeof(probe), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	buf_reserve(b, (size_t)n);
	if ((size_t)n < sizeof(probe)) {
		memcpy(b->data + b->len, probe, (size_t)n + 1);
	} else {
		va_start(ap, fmt);
		vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

/* Length of the well-formed UTF-8 sequence at p (at most n bytes), or 0
 * (RFC 3629: no overlongs, no surrogates, nothing past U+10FFFF). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

/* strict: stop at ill-formed UTF-8 and take back what was written (false). */
static bool buf_json_str(gust_buf *b, const char *s, size_t n, bool strict)
{
	static const char hex[] = "0123456789abcdef";
	size_t start = b->len;
	buf_reserve(b, n + 2);
	b->data[b->len++] = '"';
	for (size_t i = 0; i < n; i++) {
		/* Runs of bytes that need no escape are copied whole: a trigger
		 * fire writes ~1 MB of message values through here. */
		size_t run = (size_t)(json_plain_end(s + i, s + n, true) - s);
		if (run > i) {
			gust_buf_append(b, s + i, run - i);
			i = run;
			if (i == n)
				break;
		}
		unsigned char c = (unsigned char)s[i];
		char esc[7];
		size_t el = 0;
		if (c >= 0x80) {
			/* Logs and names come from anywhere: keep well-formed UTF-8,
			 * turn anything else into U+FFFD so the JSON stays valid. */
			size_t ul = utf8_seq((const unsigned char *)s + i, n - i);
			if (ul == 0 && strict) {
				b->len = start;
				b->data[start] = 0;
				return false;
			}
			if (ul == 0) {
				gust_buf_append(b, "\\ufffd", 6);
			} else {
				gust_buf_append(b, s + i, ul);
				i += ul - 1;
			}
			continue;
		}
		switch (c) {
		case '"':
			el = 2, esc[0] = '\\', esc[1] = '"';
			break;
		case '\\':
			el = 2, esc[0] = '\\', esc[1] = '\\';
			break;
		case '\n':
			el = 2, esc[0] = '\\', esc[1] = 'n';
			break;
		case '\r':
			el = 2, esc[0] = '\\', esc[1] = 'r';
			break;
		case '\t':
			el = 2, esc[0] = '\\', esc[1] = 't';
			break;
		default:
			if (c < 0x20 || c == 0x7f) {
				el = 6;
				esc[0] = '\\', esc[1] = 'u', esc[2] = '0', esc[3] = '0';
				esc[4] = hex[c >> 4], esc[5] = hex[c & 15];
			}
		}
		if (el) {
			gust_buf_append(b, esc, el);
		} else {
			buf_reserve(b, 1);
			b->data[b->len++] = (char)c;
		}
	}
	buf_reserve(b, 1);
	b->data[b->len++] = '"';
	b->data[b->len] = 0;
	return true;
}

void gust_buf_json_str(gust_buf *b, const char *s, size_t n)
{
	buf_json_str(b, s, n, false);
}

bool gust_buf_json_str_utf8(gust_buf *b, const char *s, size_t n)
{
	return buf_json_str(b, s, n, true);
}

void gust_buf_reset(gust_buf *b)
{
	b->len = 0;
	if (b->data)
		b->data[0] = 0;
}

void gust_buf_free(gust_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

char *gust_buf_steal(gust_buf *b)
{
	if (b->data == NULL)
		return gust_xstrdup("");
	char *d = b->data;
	b->data = NULL;
	b->len = b->cap = 0;
	return d;
}

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *gust_b64_encode(const void *p, size_t n)
{
	const unsigned char *s = p;
	char *out = gust_xmalloc(((n + 2) / 3) * 4 + 1);
	size_t o = 0, i = 0;
	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = b64chars[(v >> 6) & 63];
		out[o++] = b64chars[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
		out[o++] = b64chars[v >> 18];
		out[o++] = b64chars[(v >> 12) & 63];
		out[o++] = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
		out[o++] = '=';
	}
	out[o] = 0;
	return out;
}

static int b64val(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

void *gust_b64_decode(const char *s, size_t slen, size_t *outlen)
{
	unsigned char *out = gust_xmalloc(slen / 4 * 3 + 4);
	size_t o = 0;
	uint32_t acc = 0;
	int bits = 0, pad = 0;
	for (size_t i = 0; i < slen; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '\n' || c == '\r' || c == ' ' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		int v = b64val(c);
		if (v < 0 || pad) {
			free(out);
			return NULL;
		}
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	if (pad > 2 || bits >= 6) {
		free(out);
		return NULL;
	}
	out[o] = 0;
	if (outlen)
		*outlen = o;
	return out;
}

static void fill_random(void *p, size_t n)
{
	unsigned char *c = p;
	while (n > 0) {
		ssize_t r = getrandom(c, n, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			abort(); /* the kernel has no entropy API: nothing safe to do */
		}
		c += r;
		n -= (size_t)r;
	}
}

void gust_random_hex(char *out, size_t nbytes)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char buf[64];
	if (nbytes > sizeof(buf))
		nbytes = sizeof(buf);
	fill_random(buf, nbytes);
	for (size_t i = 0; i < nbytes; i++) {
		out[2 * i] = hex[buf[i] >> 4];
		out[2 * i + 1] = hex[buf[i] & 15];
	}
	out[2 * nbytes] = 0;
}

void gust_uuid4(char out[37])
{
	unsigned char b[16];
	fill_random(b, sizeof(b));
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	         b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
	         b[13], b[14], b[15]);
}

uint64_t gust_hash64(const void *p, size_t n)
{
	const unsigned char *s = p;
	uint64_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++) {
		h ^= s[i];
		h *= 1099511628211ull;
	}
	/* FNV alone mixes the last bytes poorly: finish with a murmur-style avalanche. */
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return h;
}

bool gust_consttime_eq(const void *a, size_t alen, const void *b, size_t blen)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char d = alen != blen;
	size_t n = alen < blen ? alen : blen;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}
