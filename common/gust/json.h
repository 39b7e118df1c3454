/*
 * gust/json.h - checking JSON text without building it.
 *
 * Parsing a fire of 1 MiB with jansson only to learn that it is an object
 * costs ~10 ms (bench/RESULTS.md, triggers); a check that allocates nothing
 * does the same in a fraction of that. Use gust_json_check where the text is
 * passed on as bytes and only its validity (and its top-level type) matters.
 */
#ifndef GUST_JSON_H
#define GUST_JSON_H

#include <stddef.h>

typedef enum gust_json_type {
	GUST_JSON_INVALID = 0,
	GUST_JSON_OBJECT,
	GUST_JSON_ARRAY,
	GUST_JSON_STRING,
	GUST_JSON_NUMBER,
	GUST_JSON_TRUE,
	GUST_JSON_FALSE,
	GUST_JSON_NULL,
} gust_json_type;

/* Nesting deeper than this is refused; jansson (2.14) takes 2047 nested
 * containers and refuses 2048. */
#define GUST_JSON_MAX_DEPTH 2047

/* The type of the one JSON value (RFC 8259) that s[0..n) holds, with
 * whitespace around it, or GUST_JSON_INVALID. Strings must be UTF-8 without
 * overlong forms or surrogates, and their \u escapes must pair surrogates,
 * as jansson requires. Unlike jansson, "\u0000" is accepted (jansson needs
 * JSON_ALLOW_NUL, and refuses it in keys even then) and numbers are not checked for range (jansson refuses
 * integers beyond 64 bits and reals beyond a double). Allocates nothing;
 * s need not be NUL-terminated. */
gust_json_type gust_json_check(const char *s, size_t n);

#endif
