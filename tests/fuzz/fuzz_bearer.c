/* fuzz_bearer.c - the bearer check on /metrics (common/admin_http.c), which
 * meets the Authorization header of anyone who reaches a metrics port.
 *
 * Input: one byte n, then the token (n bytes, up to the first NUL), then the
 * header value (the rest, up to its first NUL: MHD hands over C strings).
 * Properties:
 *  - never reads out of bounds (ASan);
 *  - a NULL token (none configured) lets every header through;
 *  - with a token, a header passes exactly when it is "Bearer" (any case),
 *    one or more spaces, and then the token itself, byte for byte;
 *  - for a token as gust_admin_token_load allows (visible ASCII), "Bearer
 *    <token>" always passes, and one that differs in the token's last byte
 *    never does. */
#include <strings.h>

#include "fuzz.h"
#include "gust/metrics.h"

static bool model(const char *token, const char *h)
{
	if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
		return false;
	h += 7;
	while (*h == ' ')
		h++;
	return strcmp(h, token) == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	size_t n = data[0];
	if (n > size - 1)
		n = size - 1;
	char *token = strndup((const char *)data + 1, n);
	char *header = strndup((const char *)data + 1 + n, size - 1 - n);
	FUZZ_CHECK(gust_admin_token_ok(NULL, header), "no token configured must let through");
	FUZZ_CHECK(gust_admin_token_ok(NULL, NULL), "no token, no header must let through");
	if (token[0] != '\0') {
		FUZZ_CHECK(!gust_admin_token_ok(token, NULL), "a missing header passed");
		FUZZ_CHECK(gust_admin_token_ok(token, header) == model(token, header),
		           "header '%s' judged unlike the model", header);
		bool visible = true;
		for (const char *c = token; *c; c++)
			visible &= *c > ' ' && *c <= '~';
		if (!visible)
			goto out;
		char *good = NULL;
		if (asprintf(&good, "Bearer %s", token) < 0)
			abort();
		FUZZ_CHECK(gust_admin_token_ok(token, good), "its own token refused");
		good[strlen(good) - 1] ^= 1;
		FUZZ_CHECK(good[strlen(good) - 1] == '\0' || !gust_admin_token_ok(token, good),
		           "a token one bit off passed");
		free(good);
	}
out:
	free(token);
	free(header);
	return 0;
}
