/*
 * gust/util.h - small helpers: cleanup attributes (crun's src/libcrun/utils.h,
 * bubblewrap's utils.h), time, and string buffers.
 */
#ifndef GUST_UTIL_H
#define GUST_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

void gust_freep(void *p);
void gust_closep(int *fd);

#define cleanup_free __attribute__((cleanup(gust_freep)))
#define cleanup_close __attribute__((cleanup(gust_closep)))

/* Hands a cleanup-owned pointer out: the local becomes NULL. */
static inline void *gust_steal_pointer(void *pp)
{
	void **p = (void **)pp;
	void *v = *p;
	*p = NULL;
	return v;
}
#define steal_pointer(pp) gust_steal_pointer(pp)

/* Monotonic and wall clocks. */
uint64_t gust_now_us(void); /* CLOCK_MONOTONIC, microseconds */
uint64_t gust_now_ms(void); /* CLOCK_MONOTONIC, milliseconds */
int64_t gust_wall_ms(void); /* CLOCK_REALTIME, ms since the epoch */

/* Allocation that aborts on failure: used only where failing to allocate a
 * few bytes has no sensible recovery (an out-of-memory daemon restarts). */
void *gust_xmalloc(size_t n);
void *gust_xcalloc(size_t n, size_t sz);
void *gust_xrealloc(void *p, size_t n);
char *gust_xstrdup(const char *s);
char *gust_xstrndup(const char *s, size_t n);
char *gust_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A growable byte buffer. Zeroed memory is an empty buffer. */
typedef struct gust_buf {
	char *data;
	size_t len;
	size_t cap;
} gust_buf;

/* Makes room for n more bytes at once (a writer that knows its size skips
 * the doublings, and the copies each of them makes). */
void gust_buf_reserve(gust_buf *b, size_t n);
void gust_buf_append(gust_buf *b, const void *p, size_t n);
void gust_buf_puts(gust_buf *b, const char *s);
void gust_buf_printf(gust_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends s as a JSON string literal (quotes and escapes included). */
void gust_buf_json_str(gust_buf *b, const char *s, size_t n);
/* The same for bytes that must be well-formed UTF-8: false, with b as it
 * was, where gust_buf_json_str would write U+FFFD. */
bool gust_buf_json_str_utf8(gust_buf *b, const char *s, size_t n);
void gust_buf_reset(gust_buf *b);
void gust_buf_free(gust_buf *b);
/* Returns the NUL-terminated contents and leaves the buffer empty. */
char *gust_buf_steal(gust_buf *b);

/* Base64 (standard alphabet, padded). Returned strings are heap-allocated.
 * gust_b64_decode returns NULL on malformed input. */
char *gust_b64_encode(const void *p, size_t n);
void *gust_b64_decode(const char *s, size_t slen, size_t *outlen);

/* 32 lowercase hex chars of fresh randomness (getrandom): activation ids. */
void gust_random_hex(char *out, size_t nbytes_of_randomness);
/* A random RFC 4122 version-4 UUID string (36 chars + NUL). */
void gust_uuid4(char out[37]);

/* A 64-bit FNV-1a hash, for consistent hashing and tables (not for security). */
uint64_t gust_hash64(const void *p, size_t n);

/* Constant-time comparison of two byte strings of possibly different length. */
bool gust_consttime_eq(const void *a, size_t alen, const void *b, size_t blen);

#endif
