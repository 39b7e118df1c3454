/*
 * integrity_bench.c - what the integrity checks of issue 13 cost per request.
 *
 * One activation request, as gust_fire_request_take builds it, with params of
 * 100 B (a warm invoke), 1 KB, 64 KB and 1 MB (a trigger fire's limit):
 *   sign     gust_areq_sign, in the gateway or gust-trigger
 *   head     gust_msg_request_head + gust_areq_verify_head, in the scheduler
 *   verify   gust_areq_verify on the unpacked request, in the invoker
 *   journal  gust_journal_mac_hex + sched_journal_check's verify (non-blocking only)
 * and, as the floor, one SHA-256 of the params alone. The secret is set
 * directly (no etcd); the key pads are precomputed as in the daemons.
 *
 *   gust-bench-integrity [seconds per row]     (default 1)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/fire.h"
#include "gust/integrity.h"
#include "gust/msg.h"
#include "gust/util.h"

static double now_s(void)
{
	return (double)gust_now_us() / 1e6;
}

/* Runs fn until secs pass; returns ns per call. */
#define TIME(secs, body)                                                                           \
	({                                                                                         \
		double t0 = now_s(), t1;                                                           \
		long n_ = 0;                                                                       \
		do {                                                                               \
			for (int k_ = 0; k_ < 16; k_++) {                                          \
				body;                                                              \
			}                                                                          \
			n_ += 16;                                                                  \
			t1 = now_s();                                                              \
		} while (t1 - t0 < (secs));                                                        \
		(t1 - t0) * 1e9 / (double)n_;                                                      \
	})

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 7 + 3);
	gust_secret_set(key, NULL);
	gust_fire_action fa = {.ns = "guest",
	                       .name = "hello",
	                       .version = "0.0.1",
	                       .kind = "python:3",
	                       .main = "main",
	                       .memory_mb = 256,
	                       .timeout_ms = 60000,
	                       .log_limit = 10 << 20,
	                       .code_key = "/gust/code/guest/hello:0.0.1",
	                       .concurrency = 1};
	const size_t sizes[] = {100, 1024, 65536, 1 << 20};
	printf("%-8s %10s %10s %10s %10s %10s\n", "params", "sign", "head", "verify", "journal",
	       "sha256");
	for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++) {
		size_t n = sizes[si];
		char *p = gust_xmalloc(n + 1);
		memset(p, 'x', n);
		memcpy(p, "{\"a\":\"", 6);
		memcpy(p + n - 2, "\"}", 2);
		p[n] = '\0';
		Gust__ActivationRequest *q =
		    gust_fire_request_take(&fa, "guest", "http://127.0.0.1:3233", p, n, NULL);
		nng_msg *m;
		if (gust_msg_pack(&q->base, &m) != 0)
			return 1;
		Gust__ActivationRequest *u = gust_msg_request(m);
		char mac[GUST_MAC_HEX_LEN + 1];
		volatile int sink = 0;
		double sign = TIME(secs, sink += gust_areq_sign(q));
		double head = TIME(secs, {
			gust_request_head h;
			sink += gust_msg_request_head(nng_msg_body(m), nng_msg_len(m), &h);
			sink += gust_areq_verify_head(&h);
		});
		double verify = TIME(secs, sink += gust_areq_verify(u));
		double journal = TIME(secs, {
			sink += gust_journal_mac_hex(q->activation_id, 32, nng_msg_body(m),
			                             nng_msg_len(m), mac);
			sink += gust_journal_verify(q->activation_id, 32, nng_msg_body(m),
			                            nng_msg_len(m), mac, GUST_MAC_HEX_LEN);
		});
		uint8_t d[32];
		double sha = TIME(secs, gust_sha256_digest(p, n, d));
		if (sink != 0) {
			fprintf(stderr, "a check failed\n");
			return 1;
		}
		printf("%-8zu %8.0f ns %7.0f ns %7.0f ns %7.0f ns %7.0f ns\n", n, sign, head,
		       verify, journal, sha);
		gust__activation_request__free_unpacked(u, NULL);
		nng_msg_free(m);
		gust_fire_request_free(q);
	}
	return 0;
}
