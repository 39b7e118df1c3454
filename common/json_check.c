/* json_check.c - gust_json_check: one pass over JSON text, no allocation.
 *
 * An explicit stack of the open containers (one byte each) replaces
 * recursion, so hostile nesting costs GUST_JSON_MAX_DEPTH bytes of stack and
 * no more. Strings go through a byte table: the common case (printable ASCII)
 * is one load and one compare per byte. */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "gust/json.h"
#include "json_scan.h"

/* 0: a plain string byte; 1: '"' or '\\'; 2: a control byte (invalid);
 * 3: the first byte of a UTF-8 sequence or an invalid byte. */
static const uint8_t json_str_class[256] = {
    [0x00 ... 0x1f] = 2,
    ['"'] = 1,
    ['\\'] = 1,
    [0x80 ... 0xff] = 3,
};

static inline const char *json_ws(const char *p, const char *e)
{
	while (p < e && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
		p++;
	return p;
}

static inline int json_hex(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* The code unit of \uXXXX at p (p at the 'u'), or -1. */
static long json_u4(const char *p, const char *e)
{
	if (e - p < 5)
		return -1;
	long v = 0;
	for (int i = 1; i <= 4; i++) {
		int h = json_hex(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* One UTF-8 sequence at p (its first byte >= 0x80): past it, or NULL. The
 * ranges of RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF. */
static const char *json_utf8(const char *p, const char *e)
{
	const uint8_t *s = (const uint8_t *)p;
	size_t left = (size_t)(e - p);
	uint8_t c = s[0];
	if (c >= 0xc2 && c <= 0xdf) {
		if (left < 2 || (s[1] & 0xc0) != 0x80)
			return NULL;
		return p + 2;
	}
	if (c >= 0xe0 && c <= 0xef) {
		uint8_t lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
		if (left < 3 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80)
			return NULL;
		return p + 3;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		uint8_t lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
		if (left < 4 || s[1] < lo || s[1] > hi || (s[2] & 0xc0) != 0x80 ||
		    (s[3] & 0xc0) != 0x80)
			return NULL;
		return p + 4;
	}
	return NULL;
}

/* A string at p (p at its opening quote): past its closing quote, or NULL. */
static const char *json_string(const char *p, const char *e)
{
	p++;
	for (;;) {
		/* plain bytes sixteen at a time (json_scan.h), then by class */
		p = json_plain_end(p, e, false);
		while (p < e && json_str_class[(uint8_t)*p] == 0)
			p++;
		if (p >= e)
			return NULL;
		switch (json_str_class[(uint8_t)*p]) {
		case 1:
			if (*p == '"')
				return p + 1;
			/* a backslash */
			if (++p >= e)
				return NULL;
			switch (*p) {
			case '"':
			case '\\':
			case '/':
			case 'b':
			case 'f':
			case 'n':
			case 'r':
			case 't':
				p++;
				break;
			case 'u': {
				long u = json_u4(p, e);
				if (u < 0 || (u >= 0xdc00 && u <= 0xdfff))
					return NULL; /* bad hex or a lone low surrogate */
				p += 5;
				if (u >= 0xd800 && u <= 0xdbff) {
					/* a high surrogate needs its low one */
					if (e - p < 2 || p[0] != '\\' || p[1] != 'u')
						return NULL;
					long lo = json_u4(p + 1, e);
					if (lo < 0xdc00 || lo > 0xdfff)
						return NULL;
					p += 6;
				}
				break;
			}
			default:
				return NULL;
			}
			break;
		case 2:
			return NULL;
		default:
			if ((p = json_utf8(p, e)) == NULL)
				return NULL;
		}
	}
}

static inline bool json_digit(const char *p, const char *e)
{
	return p < e && *p >= '0' && *p <= '9';
}

/* A number at p: past it, or NULL. */
static const char *json_number(const char *p, const char *e)
{
	if (*p == '-')
		p++;
	if (!json_digit(p, e))
		return NULL;
	if (*p == '0')
		p++;
	else
		while (json_digit(p, e))
			p++;
	if (p < e && *p == '.') {
		if (!json_digit(++p, e))
			return NULL;
		while (json_digit(p, e))
			p++;
	}
	if (p < e && (*p == 'e' || *p == 'E')) {
		p++;
		if (p < e && (*p == '+' || *p == '-'))
			p++;
		if (!json_digit(p, e))
			return NULL;
		while (json_digit(p, e))
			p++;
	}
	return p;
}

static const char *json_word(const char *p, const char *e, const char *w, size_t n)
{
	if ((size_t)(e - p) < n)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (p[i] != w[i])
			return NULL;
	return p + n;
}

gust_json_type gust_json_check(const char *s, size_t n)
{
	char stack[GUST_JSON_MAX_DEPTH];
	size_t depth = 0;
	const char *p = s, *e = s + n;
	gust_json_type top = GUST_JSON_INVALID;
	if (s == NULL)
		return GUST_JSON_INVALID;
	p = json_ws(p, e);
value:
	if (p >= e)
		return GUST_JSON_INVALID;
	{
		gust_json_type t;
		switch (*p) {
		case '{':
		case '[':
			if (depth == GUST_JSON_MAX_DEPTH)
				return GUST_JSON_INVALID;
			if (top == GUST_JSON_INVALID)
				top = *p == '{' ? GUST_JSON_OBJECT : GUST_JSON_ARRAY;
			stack[depth++] = *p;
			p = json_ws(p + 1, e);
			if (p < e && *p == (stack[depth - 1] == '{' ? '}' : ']')) {
				p++;
				depth--;
				goto after;
			}
			if (stack[depth - 1] == '{')
				goto key;
			goto value;
		case '"':
			p = json_string(p, e);
			t = GUST_JSON_STRING;
			break;
		case 't':
			p = json_word(p, e, "true", 4);
			t = GUST_JSON_TRUE;
			break;
		case 'f':
			p = json_word(p, e, "false", 5);
			t = GUST_JSON_FALSE;
			break;
		case 'n':
			p = json_word(p, e, "null", 4);
			t = GUST_JSON_NULL;
			break;
		default:
			p = json_number(p, e);
			t = GUST_JSON_NUMBER;
		}
		if (p == NULL)
			return GUST_JSON_INVALID;
		if (top == GUST_JSON_INVALID)
			top = t;
	}
after:
	p = json_ws(p, e);
	if (depth == 0)
		return p == e ? top : GUST_JSON_INVALID;
	if (p >= e)
		return GUST_JSON_INVALID;
	if (*p == ',') {
		p = json_ws(p + 1, e);
		if (stack[depth - 1] == '{')
			goto key;
		goto value;
	}
	if (*p == (stack[depth - 1] == '{' ? '}' : ']')) {
		p++;
		depth--;
		goto after;
	}
	return GUST_JSON_INVALID;
key:
	if (p >= e || *p != '"' || (p = json_string(p, e)) == NULL)
		return GUST_JSON_INVALID;
	p = json_ws(p, e);
	if (p >= e || *p != ':')
		return GUST_JSON_INVALID;
	p = json_ws(p + 1, e);
	goto value;
}
