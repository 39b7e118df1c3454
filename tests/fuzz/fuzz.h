/* fuzz.h - what the fuzz targets share: a property check that aborts (so
 * libFuzzer and the replay driver both stop on it, with the input saved by
 * libFuzzer), and a cursor that cuts one input into several fields. */
#ifndef GUST_FUZZ_H
#define GUST_FUZZ_H

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "%s:%d: property violated: %s: ", __FILE__, __LINE__,      \
			        #cond);                                                            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Reads an input as fields: a byte, or the bytes up to the next separator. */
typedef struct fuzz_cursor {
	const uint8_t *p;
	size_t n;
} fuzz_cursor;

static inline uint8_t fuzz_byte(fuzz_cursor *c)
{
	if (c->n == 0)
		return 0;
	c->n--;
	return *c->p++;
}

/* The bytes up to (not including) the next sep, or the rest; *len set. */
static inline const uint8_t *fuzz_field(fuzz_cursor *c, uint8_t sep, size_t *len)
{
	const uint8_t *s = c->p;
	const uint8_t *e = memchr(s, sep, c->n);
	size_t l = e ? (size_t)(e - s) : c->n;
	c->p += e ? l + 1 : l;
	c->n -= e ? l + 1 : l;
	*len = l;
	return s;
}

/* A heap NUL-terminated copy of the next field. */
static inline char *fuzz_field_str(fuzz_cursor *c, uint8_t sep)
{
	size_t l;
	const uint8_t *s = fuzz_field(c, sep, &l);
	char *r = malloc(l + 1);
	if (r == NULL)
		abort();
	memcpy(r, s, l);
	r[l] = 0;
	return r;
}

/* True when s[0..n) is one JSON value under jansson's strict reading (UTF-8,
 * no trailing bytes). */
static inline int fuzz_json_valid(const char *s, size_t n, int flags, json_error_t *je)
{
	json_t *j = json_loadb(s, n, JSON_DECODE_ANY | flags, je);
	json_decref(j);
	return j != NULL;
}

#endif
