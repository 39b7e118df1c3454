/*
 * gust/sha256.h - SHA-256 (FIPS 180-4), for salted hashes of API keys.
 *
 * Written from the standard; checked against its test vectors in
 * tests/unit/test_sha256.c, and HMAC-SHA256 (RFC 2104) checked against
 * RFC 4231's. Not a general crypto library: no streaming beyond
 * init/update/final. On x86 CPUs with the SHA extensions the compression
 * uses them (chosen at run time; GUST_SHA256_NO_NI=1 in the environment
 * forces the portable code, which tests/unit runs too).
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

/* HMAC-SHA256 (RFC 2104) with its key pads absorbed once: the state after
 * (K ^ ipad) and after (K ^ opad), so that a MAC of a short message costs
 * the compressions of the message and two more, not four (the integrity
 * checks of activation requests, gust/integrity.h, run once per request). */
typedef struct gust_hmac_key {
	gust_sha256_ctx inner, outer;
} gust_hmac_key;

/* Any key length: a key longer than a block is hashed first (RFC 2104). */
void gust_hmac_key_init(gust_hmac_key *k, const void *key, size_t n);
/* A MAC in pieces: start copies the inner state into c; update with
 * gust_sha256_update(c, ...); finish writes the MAC. */
void gust_hmac_start(const gust_hmac_key *k, gust_sha256_ctx *c);
void gust_hmac_finish(const gust_hmac_key *k, gust_sha256_ctx *c, uint8_t out[GUST_SHA256_LEN]);
/* One call: out = HMAC-SHA256(key, msg). */
void gust_hmac_sha256(const void *key, size_t klen, const void *msg, size_t n,
                      uint8_t out[GUST_SHA256_LEN]);
/* a == b over n bytes in time that does not depend on where they differ */
int gust_ct_equal(const void *a, const void *b, size_t n);

#endif
