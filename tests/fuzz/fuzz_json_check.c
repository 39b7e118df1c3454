/* fuzz_json_check.c - gust_json_check (common/json_check.c) against jansson.
 *
 * Property: on any bytes, gust_json_check accepts exactly what jansson
 * (JSON_DECODE_ANY | JSON_ALLOW_NUL) accepts, with the same top-level type,
 * except numbers out of jansson's range and "\u0000" in object keys (which
 * jansson refuses and the check
 * does not look at) and a raw NUL byte (jansson stops at one outside a
 * string; the check refuses it); and it never reads past the input (the driver and
 * libFuzzer hand over exactly size bytes, ASan watches). */
#include "fuzz.h"
#include "gust/json.h"

static gust_json_type fuzz_jansson_type(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return GUST_JSON_OBJECT;
	case JSON_ARRAY:
		return GUST_JSON_ARRAY;
	case JSON_STRING:
		return GUST_JSON_STRING;
	case JSON_INTEGER:
	case JSON_REAL:
		return GUST_JSON_NUMBER;
	case JSON_TRUE:
		return GUST_JSON_TRUE;
	case JSON_FALSE:
		return GUST_JSON_FALSE;
	default:
		return GUST_JSON_NULL;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* a copy of exactly size bytes: an overread is an ASan error */
	char *copy = calloc(1, size ? size : 1);
	if (size)
		memcpy(copy, data, size);
	gust_json_type got = gust_json_check(copy, size);
	json_error_t je;
	if (size && memchr(copy, 0, size) != NULL) {
		/* A raw NUL is valid nowhere in JSON; jansson stops reading at
		 * one outside a string and accepts what came before. */
		FUZZ_CHECK(got == GUST_JSON_INVALID, "a raw NUL accepted (%d)", (int)got);
		free(copy);
		return 0;
	}
	json_t *j = json_loadb(copy, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
	if (j != NULL) {
		FUZZ_CHECK(got == fuzz_jansson_type(j), "jansson reads type %d, the check says %d",
		           (int)fuzz_jansson_type(j), (int)got);
		json_decref(j);
	} else if (strstr(je.text, "too big") == NULL && strstr(je.text, "overflow") == NULL &&
	           strstr(je.text, "NUL byte") == NULL) {
		FUZZ_CHECK(got == GUST_JSON_INVALID, "jansson refuses (%s), the check says %d",
		           je.text, (int)got);
	}
	free(copy);
	return 0;
}
