/*
 * gust/sha256.h - SHA-256 (FIPS 180-4), for salted hashes of API keys.
 *
 * Written from the standard; checked against its test vectors in
 * tests/unit/test_sha256.c. Not a general crypto library: no HMAC, no
 * streaming beyond init/update/final.
 */
#ifndef GUST_SHA256_H
#define GUST_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define GUST_SHA256_LEN 32

typedef struct gust_sha256_ctx {
	uint32_t h[8];
	uint64_t bits;     /* message length so far, in bits */
	uint8_t block[64]; /* a partial block */
	size_t used;       /* bytes in block */
} gust_sha256_ctx;

void gust_sha256_init(gust_sha256_ctx *s);
void gust_sha256_update(gust_sha256_ctx *s, const void *p, size_t n);
void gust_sha256_final(gust_sha256_ctx *s, uint8_t out[GUST_SHA256_LEN]);

/* One call: out = SHA-256(p[0..n)). */
void gust_sha256_digest(const void *p, size_t n, uint8_t out[GUST_SHA256_LEN]);

/* The lowercase hex of SHA-256(salt || secret) into out (65 bytes with NUL):
 * how API keys are stored ("salt" and "hash" in /gust/keys/<uuid>). */
void gust_key_hash_hex(const char *salt, const char *secret, char out[2 * GUST_SHA256_LEN + 1]);

#endif
