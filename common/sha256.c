/* sha256.c - SHA-256 as FIPS 180-4 section 6.2 describes it. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "gust/sha256.h"

/* The first 32 bits of the fractional parts of the cube roots of the first
 * 64 primes (FIPS 180-4, 4.2.2). */
static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define GUST_SHA_NI 1
#endif

static inline uint32_t rotr(uint32_t x, unsigned n)
{
	return (x >> n) | (x << (32 - n));
}

/* 6.2.2: one 512-bit block. */
static void compress(uint32_t h[8], const uint8_t *p)
{
	uint32_t w[64];
	for (int t = 0; t < 16; t++)
		w[t] = (uint32_t)p[4 * t] << 24 | (uint32_t)p[4 * t + 1] << 16 |
		       (uint32_t)p[4 * t + 2] << 8 | (uint32_t)p[4 * t + 3];
	for (int t = 16; t < 64; t++) {
		uint32_t s0 = rotr(w[t - 15], 7) ^ rotr(w[t - 15], 18) ^ (w[t - 15] >> 3);
		uint32_t s1 = rotr(w[t - 2], 17) ^ rotr(w[t - 2], 19) ^ (w[t - 2] >> 10);
		w[t] = s1 + w[t - 7] + s0 + w[t - 16];
	}
	uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
	for (int t = 0; t < 64; t++) {
		uint32_t S1 = rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25);
		uint32_t ch = (e & f) ^ (~e & g);
		uint32_t t1 = hh + S1 + ch + K[t] + w[t];
		uint32_t S0 = rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22);
		uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
		uint32_t t2 = S0 + maj;
		hh = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	h[0] += a;
	h[1] += b;
	h[2] += c;
	h[3] += d;
	h[4] += e;
	h[5] += f;
	h[6] += g;
	h[7] += hh;
}

static void compress_blocks_c(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
	for (; nblocks > 0; nblocks--, p += 64)
		compress(h, p);
}

#ifdef GUST_SHA_NI
/* The same compression with the SHA extensions of x86 (Intel SHA-NI, AMD
 * since Zen), 4-8 times faster: what every activation request's MAC costs
 * (gust/integrity.h). The rounds instruction works on the state as
 * (A,B,E,F) and (C,D,G,H), two rounds at a time, with W + K of those two
 * rounds in the low half of its third operand; msg1/msg2 compute the
 * schedule of FIPS 180-4 6.2.2 step 1 four words at a time. */
__attribute__((target("sha,sse4.1,ssse3"))) static void
compress_blocks_ni(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
	__m128i t = _mm_loadu_si128((const __m128i *)&h[0]);  /* D C B A */
	__m128i s1 = _mm_loadu_si128((const __m128i *)&h[4]); /* H G F E */
	t = _mm_shuffle_epi32(t, 0xB1);                       /* C D A B */
	s1 = _mm_shuffle_epi32(s1, 0x1B);                     /* E F G H */
	__m128i s0 = _mm_alignr_epi8(t, s1, 8);               /* A B E F */
	s1 = _mm_blend_epi16(s1, t, 0xF0);                    /* C D G H */
	for (; nblocks > 0; nblocks--, p += 64) {
		__m128i save0 = s0, save1 = s1;
		__m128i w[4];
		for (int i = 0; i < 16; i++) {
			__m128i m;
			if (i < 4) {
				m = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)(p + 16 * i)),
				                     bswap);
			} else {
				/* W[t-16] + s0(W[t-15]) + W[t-7], then + s1(W[t-2]) */
				__m128i x = _mm_sha256msg1_epu32(w[i & 3], w[(i + 1) & 3]);
				x = _mm_add_epi32(
				    x, _mm_alignr_epi8(w[(i + 3) & 3], w[(i + 2) & 3], 4));
				m = _mm_sha256msg2_epu32(x, w[(i + 3) & 3]);
			}
			w[i & 3] = m;
			__m128i wk = _mm_add_epi32(m, _mm_loadu_si128((const __m128i *)&K[4 * i]));
			s1 = _mm_sha256rnds2_epu32(s1, s0, wk);
			s0 = _mm_sha256rnds2_epu32(s0, s1, _mm_shuffle_epi32(wk, 0x0E));
		}
		s0 = _mm_add_epi32(s0, save0);
		s1 = _mm_add_epi32(s1, save1);
	}
	t = _mm_shuffle_epi32(s0, 0x1B);   /* F E B A */
	s1 = _mm_shuffle_epi32(s1, 0xB1);  /* D C H G */
	s0 = _mm_blend_epi16(t, s1, 0xF0); /* D C B A */
	s1 = _mm_alignr_epi8(s1, t, 8);    /* H G F E */
	_mm_storeu_si128((__m128i *)&h[0], s0);
	_mm_storeu_si128((__m128i *)&h[4], s1);
}

static bool have_sha_ni(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_SSSE3) || !(c & bit_SSE4_1))
		return false;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return false;
	return (b & bit_SHA) != 0;
}
#endif

/* Chosen once, on first use (a race only makes two threads pick the same). */
static void compress_blocks(uint32_t h[8], const uint8_t *p, size_t nblocks)
{
#ifdef GUST_SHA_NI
	static int ni = -1;
	int v = __atomic_load_n(&ni, __ATOMIC_RELAXED);
	if (v < 0) {
		v = have_sha_ni() && getenv("GUST_SHA256_NO_NI") == NULL;
		__atomic_store_n(&ni, v, __ATOMIC_RELAXED);
	}
	if (v) {
		compress_blocks_ni(h, p, nblocks);
		return;
	}
#endif
	compress_blocks_c(h, p, nblocks);
}

void gust_sha256_init(gust_sha256_ctx *s)
{
	/* 5.3.3: the first 32 bits of the fractional parts of the square roots
	 * of the first 8 primes. */
	static const uint32_t h0[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
	                               0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
	memcpy(s->h, h0, sizeof(h0));
	s->bits = 0;
	s->used = 0;
}

void gust_sha256_update(gust_sha256_ctx *s, const void *p, size_t n)
{
	const uint8_t *b = p;
	s->bits += (uint64_t)n * 8;
	while (n > 0) {
		if (s->used == 0 && n >= 64) {
			/* whole blocks straight from the input, no copy */
			size_t nb = n / 64;
			compress_blocks(s->h, b, nb);
			b += nb * 64;
			n -= nb * 64;
			continue;
		}
		size_t take = 64 - s->used < n ? 64 - s->used : n;
		memcpy(s->block + s->used, b, take);
		s->used += take;
		b += take;
		n -= take;
		if (s->used == 64) {
			compress_blocks(s->h, s->block, 1);
			s->used = 0;
		}
	}
}

void gust_sha256_final(gust_sha256_ctx *s, uint8_t out[GUST_SHA256_LEN])
{
	/* 5.1.1: a 1 bit, zeros to 448 mod 512, then the length as 64 bits. */
	uint64_t bits = s->bits;
	s->block[s->used++] = 0x80;
	if (s->used > 56) {
		memset(s->block + s->used, 0, 64 - s->used);
		compress_blocks(s->h, s->block, 1);
		s->used = 0;
	}
	memset(s->block + s->used, 0, 56 - s->used);
	for (int i = 0; i < 8; i++)
		s->block[56 + i] = (uint8_t)(bits >> (56 - 8 * i));
	compress_blocks(s->h, s->block, 1);
	for (int i = 0; i < 8; i++) {
		out[4 * i] = (uint8_t)(s->h[i] >> 24);
		out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
		out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
		out[4 * i + 3] = (uint8_t)s->h[i];
	}
	memset(s, 0, sizeof(*s));
}

void gust_sha256_digest(const void *p, size_t n, uint8_t out[GUST_SHA256_LEN])
{
	gust_sha256_ctx s;
	gust_sha256_init(&s);
	gust_sha256_update(&s, p, n);
	gust_sha256_final(&s, out);
}

void gust_key_hash_hex(const char *salt, const char *secret, char out[2 * GUST_SHA256_LEN + 1])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t d[GUST_SHA256_LEN];
	gust_sha256_ctx s;
	gust_sha256_init(&s);
	gust_sha256_update(&s, salt, strlen(salt));
	gust_sha256_update(&s, secret, strlen(secret));
	gust_sha256_final(&s, d);
	for (int i = 0; i < GUST_SHA256_LEN; i++) {
		out[2 * i] = hex[d[i] >> 4];
		out[2 * i + 1] = hex[d[i] & 15];
	}
	out[2 * GUST_SHA256_LEN] = '\0';
}

void gust_hmac_key_init(gust_hmac_key *k, const void *key, size_t n)
{
	uint8_t kb[64] = {0}, pad[64];
	if (n > sizeof(kb))
		gust_sha256_digest(key, n, kb);
	else if (n > 0)
		memcpy(kb, key, n);
	for (int i = 0; i < 64; i++)
		pad[i] = kb[i] ^ 0x36;
	gust_sha256_init(&k->inner);
	gust_sha256_update(&k->inner, pad, sizeof(pad));
	for (int i = 0; i < 64; i++)
		pad[i] = kb[i] ^ 0x5c;
	gust_sha256_init(&k->outer);
	gust_sha256_update(&k->outer, pad, sizeof(pad));
	memset(kb, 0, sizeof(kb));
	memset(pad, 0, sizeof(pad));
}

void gust_hmac_start(const gust_hmac_key *k, gust_sha256_ctx *c)
{
	*c = k->inner;
}

void gust_hmac_finish(const gust_hmac_key *k, gust_sha256_ctx *c, uint8_t out[GUST_SHA256_LEN])
{
	uint8_t ih[GUST_SHA256_LEN];
	gust_sha256_final(c, ih);
	gust_sha256_ctx o = k->outer;
	gust_sha256_update(&o, ih, sizeof(ih));
	gust_sha256_final(&o, out);
}

void gust_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n,
                      uint8_t out[GUST_SHA256_LEN])
{
	gust_hmac_key k;
	gust_sha256_ctx c;
	gust_hmac_key_init(&k, key, klen);
	gust_hmac_start(&k, &c);
	gust_sha256_update(&c, msg, n);
	gust_hmac_finish(&k, &c, out);
	memset(&k, 0, sizeof(k));
}

int gust_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile uint8_t *x = a, *y = b;
	uint8_t d = 0;
	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d == 0;
}
