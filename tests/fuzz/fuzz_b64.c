/* fuzz_b64.c - base64 and JSON string literals (common/util.c).
 *
 * Properties:
 *  - gust_b64_decode never reads or writes out of bounds; what it accepts
 *    re-encodes (gust_b64_encode) to text that decodes to the same bytes;
 *  - gust_b64_encode of any bytes decodes back to them, and its length is
 *    4 * ceil(n / 3);
 *  - gust_buf_json_str of any bytes that are UTF-8 is a JSON string that
 *    jansson reads back as exactly those bytes (NUL included), and it never
 *    holds a raw control character; of bytes that are not UTF-8, it still
 *    never holds a raw control character, quote or backslash unescaped. */
#include "fuzz.h"
#include "gust/util.h"

static bool utf8_ok(const uint8_t *p, size_t n)
{
	/* jansson's own check (json_stringn refuses what is not UTF-8). */
	json_t *v = json_stringn((const char *)p, n);
	bool ok = v != NULL;
	json_decref(v);
	return ok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* decode */
	size_t n = 0;
	uint8_t *d = gust_b64_decode((const char *)data, size, &n);
	if (d != NULL) {
		FUZZ_CHECK(n <= size, "decoded %zu bytes from %zu", n, size);
		char *e = gust_b64_encode(d, n);
		size_t n2 = 0;
		uint8_t *d2 = gust_b64_decode(e, strlen(e), &n2);
		FUZZ_CHECK(d2 != NULL && n2 == n && memcmp(d, d2, n) == 0,
		           "decode(encode(decode(x))) != decode(x)");
		free(d2);
		free(e);
		free(d);
	}

	/* encode */
	char *e = gust_b64_encode(data, size);
	FUZZ_CHECK(strlen(e) == (size + 2) / 3 * 4, "encoded length %zu for %zu bytes", strlen(e),
	           size);
	d = gust_b64_decode(e, strlen(e), &n);
	FUZZ_CHECK(d != NULL && n == size && (size == 0 || memcmp(d, data, size) == 0),
	           "decode(encode(x)) != x");
	free(d);
	free(e);

	/* JSON string literals */
	gust_buf b = {0};
	gust_buf_puts(&b, "[");
	gust_buf_json_str(&b, (const char *)data, size);
	gust_buf_puts(&b, "]");
	FUZZ_CHECK(b.len >= size + 4 && b.data[b.len] == 0, "length");
	for (size_t i = 0; i < b.len; i++)
		FUZZ_CHECK((unsigned char)b.data[i] >= 0x20 && b.data[i] != 0x7f,
		           "raw control byte %#x at %zu", (unsigned char)b.data[i], i);
	if (utf8_ok(data, size)) {
		json_error_t je;
		json_t *j = json_loadb(b.data, b.len, JSON_ALLOW_NUL, &je);
		FUZZ_CHECK(j != NULL, "not JSON: %s: %s", je.text, b.data);
		json_t *s = json_array_get(j, 0);
		FUZZ_CHECK(json_is_string(s) && json_string_length(s) == size &&
		               memcmp(json_string_value(s), data, size) == 0,
		           "round trip changed the string");
		json_decref(j);
	} else {
		/* Unescaped '"' would end the literal early: exactly two are unescaped. */
		size_t quotes = 0;
		for (size_t i = 1; i + 1 < b.len; i++) {
			if (b.data[i] == '\\') {
				i++;
				continue;
			}
			if (b.data[i] == '"')
				quotes++;
		}
		FUZZ_CHECK(quotes == 2, "%zu unescaped quotes", quotes);
	}
	gust_buf_free(&b);
	return 0;
}
