/* fuzz_params.c - the byte splice of an action's default parameters with the
 * caller's object (gust_fire_params, used by gw_areq_new in
 * gateway/gw_invoke.c, by sequences and by trigger fires), and the default
 * members built from a "parameters" list (gust_fire_params_inner).
 *
 * Property: whenever the caller's body passes the gateway's check (empty, or
 * a JSON object: gw_params_check), the spliced bytes are one JSON object on
 * one line (the action-loop protocol is line-based) holding exactly the union
 * of the keys, the caller's value winning for a key in both.
 *
 * Input: two big-endian bytes give the length of the "parameters" list (any
 * JSON; a list of {key, value} counts), the rest is the caller's body. */
#include "fuzz.h"
#include "gust/fire.h"
#include "gust/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	size_t split = (size_t)data[0] << 8 | data[1];
	data += 2, size -= 2;
	if (split > size)
		split = size;
	const char *body = (const char *)data + split;
	size_t blen = size - split;

	json_t *list = json_loadb((const char *)data, split, JSON_DECODE_ANY, NULL);
	char *inner = gust_fire_params_inner(list, NULL, NULL);
	/* The defaults as an object: what the members must read back as. */
	size_t il = strlen(inner);
	char *wrapped = gust_xasprintf("{%s}", inner);
	json_t *defs = json_loadb(wrapped, il + 2, 0, NULL);
	FUZZ_CHECK(json_is_object(defs), "default members are not an object's: %s", inner);
	FUZZ_CHECK(strchr(inner, '\n') == NULL && strchr(inner, '\r') == NULL, "newline");
	free(wrapped);

	/* gw_params_check: empty, or a JSON object (flags 0, as the gateway) with
	 * no raw NUL byte (jansson lets one through after a number). */
	json_t *caller = blen ? json_loadb(body, blen, 0, NULL) : json_object();
	if (blen && memchr(body, 0, blen) != NULL) {
		json_decref(caller);
		caller = NULL;
	}
	if (json_is_object(caller)) {
		size_t n = 0;
		/* The defaults: the list's, or none (NULL and "" are both "none"). */
		const char *dv = (size & 1) ? NULL : inner;
		char *out = gust_fire_params(dv, body, blen, &n);
		/* A JSON text has no raw NUL; the launchers' parsers refuse one. */
		FUZZ_CHECK(memchr(out, 0, n) == NULL, "raw NUL byte at %zu of the %zu-byte params",
		           strlen(out), n);
		FUZZ_CHECK(memchr(out, '\n', n) == NULL && memchr(out, '\r', n) == NULL,
		           "raw newline in params: %s", out);
		json_error_t je;
		json_t *o = json_loadb(out, n, 0, &je);
		FUZZ_CHECK(json_is_object(o), "spliced params are not a JSON object (%s): %s",
		           je.text, out);
		const char *k;
		json_t *v;
		size_t want = json_object_size(caller);
		json_object_foreach(caller, k, v)
		{
			FUZZ_CHECK(json_equal(json_object_get(o, k), v), "caller's '%s' lost: %s",
			           k, out);
		}
		if (dv != NULL) {
			json_object_foreach(defs, k, v)
			{
				if (json_object_get(caller, k) != NULL)
					continue;
				want++;
				FUZZ_CHECK(json_equal(json_object_get(o, k), v),
				           "default '%s' lost: %s", k, out);
			}
		}
		FUZZ_CHECK(json_object_size(o) == want, "%zu keys, want %zu: %s",
		           json_object_size(o), want, out);
		json_decref(o);
		free(out);
	}
	json_decref(caller);
	json_decref(defs);
	json_decref(list);
	free(inner);
	return 0;
}
