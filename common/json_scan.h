/* json_scan.h - the end of a run of plain JSON string bytes (inside libgust:
 * gust_buf_json_str writes a trigger fire's ~1 MiB of message values, and
 * gust_json_check reads it again in the invoker). */
#ifndef GUST_JSON_SCAN_H
#define GUST_JSON_SCAN_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* The first byte in [p, e) that a JSON string does not take as it is - a
 * control byte (< 0x20), a non-ASCII byte (>= 0x80), '"' or '\\', and DEL
 * (0x7f) as well when del - or e if there is none. Sixteen bytes at a time
 * with SSE2 (one signed compare finds both the control and the non-ASCII
 * bytes), else eight at a time in a word. */
static inline const char *json_plain_end(const char *p, const char *e, bool del)
{
#ifdef __SSE2__
	const __m128i q = _mm_set1_epi8('"'), bs = _mm_set1_epi8('\\');
	const __m128i sp = _mm_set1_epi8(0x20), dl = _mm_set1_epi8(0x7f);
	while (e - p >= 16) {
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
		__m128i m = _mm_or_si128(_mm_cmpeq_epi8(v, q), _mm_cmpeq_epi8(v, bs));
		m = _mm_or_si128(m, _mm_cmplt_epi8(v, sp));
		if (del)
			m = _mm_or_si128(m, _mm_cmpeq_epi8(v, dl));
		int mask = _mm_movemask_epi8(m);
		if (mask != 0)
			return p + __builtin_ctz((unsigned)mask);
		p += 16;
	}
#else
	const uint64_t ones = 0x0101010101010101ULL, high = 0x8080808080808080ULL;
	for (uint64_t w; e - p >= 8; p += 8) {
		memcpy(&w, p, 8);
		uint64_t x = (w & high) | ((w - ones * 0x20) & ~w & high);
		uint64_t t = w ^ (ones * '"');
		x |= (t - ones) & ~t & high;
		t = w ^ (ones * '\\');
		x |= (t - ones) & ~t & high;
		if (del) {
			t = w ^ (ones * 0x7f);
			x |= (t - ones) & ~t & high;
		}
		if (x != 0)
			break; /* the byte loop finds which */
	}
#endif
	for (; p < e; p++) {
		unsigned char c = (unsigned char)*p;
		if (c < 0x20 || c >= 0x80 || c == '"' || c == '\\' || (del && c == 0x7f))
			return p;
	}
	return e;
}

#endif
