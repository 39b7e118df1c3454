/* fuzz_resp.c - the state proxy's request parser (common/resp.c), which reads
 * what untrusted function code sends.
 *
 * The input is a stream of requests, parsed one after another as the proxy
 * does. Properties:
 *  - a parsed request lies inside the input, its name inside the request, and
 *    the allowlist check of the name never reads outside it;
 *  - parsing is prefix-stable: every strict prefix of a complete request asks
 *    for more bytes (0), never fails, and the same bytes parse the same again;
 *  - a request re-built from its arguments' count and name parses;
 *  - gust_resp_args finds every argument inside the request, the first being
 *    the name, and the request re-built from all of them is no longer
 *    (the proxy rewrites APPEND and checks SETRANGE from these). */
#include "fuzz.h"
#include "gust/resp.h"
#include "gust/state.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t left = size;
	while (left > 0) {
		gust_resp_cmd c;
		int r = gust_resp_parse_request(p, left, &c);
		FUZZ_CHECK(r >= -1 && r <= 1, "result %d", r);
		if (r != 1)
			break;
		FUZZ_CHECK(c.len > 0 && c.len <= left, "len %zu of %zu", c.len, left);
		FUZZ_CHECK(c.name >= p && c.name + c.name_len <= p + c.len, "name outside");
		FUZZ_CHECK(c.nargs >= 1 && c.nargs <= GUST_RESP_MAX_ARGS, "nargs %zu", c.nargs);
		(void)gust_state_cmd_allowed(c.name, c.name_len);
		(void)gust_state_cmd_grows(c.name, c.name_len);
		{
			/* Into a copy of exactly c.len bytes: ASan sees any over-read. */
			char *q = malloc(c.len);
			memcpy(q, p, c.len);
			const char **ap = malloc(c.nargs * sizeof(*ap));
			size_t *al = malloc(c.nargs * sizeof(*al));
			size_t k = gust_resp_args(q, &c, ap, al, c.nargs);
			FUZZ_CHECK(k == c.nargs, "args %zu of %zu", k, c.nargs);
			FUZZ_CHECK(al[0] == c.name_len && ap[0] == q + (c.name - p),
			           "arg 0 not the name");
			gust_buf rb = {0};
			gust_buf_printf(&rb, "*%zu\r\n", k);
			for (size_t i = 0; i < k; i++) {
				FUZZ_CHECK(ap[i] >= q && ap[i] + al[i] <= q + c.len,
				           "arg %zu outside", i);
				gust_buf_printf(&rb, "$%zu\r\n", al[i]);
				gust_buf_append(&rb, ap[i], al[i]);
				gust_buf_puts(&rb, "\r\n");
			}
			FUZZ_CHECK(rb.len <= c.len, "rebuilt %zu > %zu", rb.len, c.len);
			gust_buf_free(&rb);
			free(ap);
			free(al);
			free(q);
		}
		size_t cuts[3] = {c.len - 1, c.len / 2, 1};
		for (int i = 0; i < 3; i++) {
			if (cuts[i] == 0 || cuts[i] >= c.len)
				continue;
			/* A copy of exactly cuts[i] bytes, so ASan sees any over-read. */
			char *q = malloc(cuts[i]);
			memcpy(q, p, cuts[i]);
			gust_resp_cmd c2;
			int r2 = gust_resp_parse_request(q, cuts[i], &c2);
			FUZZ_CHECK(r2 == 0, "prefix %zu of %zu: %d", cuts[i], c.len, r2);
			free(q);
		}
		gust_resp_cmd c3;
		FUZZ_CHECK(gust_resp_parse_request(p, c.len, &c3) == 1 && c3.len == c.len,
		           "not stable");
		gust_buf b = {0};
		gust_buf_printf(&b, "*1\r\n$%zu\r\n", c.name_len);
		gust_buf_append(&b, c.name, c.name_len);
		gust_buf_puts(&b, "\r\n");
		FUZZ_CHECK(gust_resp_parse_request(b.data, b.len, &c3) == 1 && c3.len == b.len,
		           "rebuilt request does not parse");
		gust_buf_free(&b);
		p += c.len;
		left -= c.len;
	}
	return 0;
}
