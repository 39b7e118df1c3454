/* driver.c - replays a fuzz target without libFuzzer.
 *
 *   fuzz_<target> [-n ITERS] [-s SEED] PATH...
 *
 * Every PATH is a file (run once) or a directory (each regular file in it,
 * sorted by name, run once). Then ITERS (default 20000, or $GUST_FUZZ_ITERS)
 * deterministic mutations of those inputs are run: the same seed gives the
 * same inputs on every machine, so a failure reproduces with the same command.
 * To get the input of a crash in the mutation phase, set GUST_FUZZ_SAVE=DIR:
 * each mutated input is written to DIR/mutation-N before it runs and removed
 * after, so the one that crashed stays (slow; for reproducing only).
 *
 * The mutations are the usual byte-level ones (flip a bit, set a byte to an
 * interesting value, insert, erase, duplicate or swap a range, splice with
 * another input) plus insertion of tokens that matter to the parsers under
 * test (JSON punctuation, escapes, protobuf varints and tags, the action-loop
 * sentinel). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define DRIVER_MAX_INPUT (1u << 20)

typedef struct input {
	uint8_t *data;
	size_t len;
	char *name;
} input;

static input *inputs;
static size_t ninputs, capinputs;

static uint64_t rng_state;

static uint64_t rng(void)
{
	/* xorshift64*: small, fast, and the same everywhere. */
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static size_t below(size_t n)
{
	return n ? (size_t)(rng() % n) : 0;
}

static void add_input(const char *name, uint8_t *data, size_t len)
{
	if (ninputs == capinputs) {
		capinputs = capinputs ? capinputs * 2 : 64;
		inputs = realloc(inputs, capinputs * sizeof(*inputs));
		if (inputs == NULL)
			abort();
	}
	inputs[ninputs].data = data;
	inputs[ninputs].len = len;
	inputs[ninputs].name = strdup(name);
	ninputs++;
}

static int read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	uint8_t *buf = malloc(DRIVER_MAX_INPUT);
	if (buf == NULL)
		abort();
	size_t n = fread(buf, 1, DRIVER_MAX_INPUT, f);
	fclose(f);
	add_input(path, buf, n);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_path(const char *path)
{
	struct stat st;
	if (stat(path, &st) != 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return read_file(path);
	DIR *d = opendir(path);
	if (d == NULL) {
		fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	char **names = NULL;
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		names = realloc(names, (n + 1) * sizeof(*names));
		if (names == NULL)
			abort();
		size_t l = strlen(path) + strlen(de->d_name) + 2;
		names[n] = malloc(l);
		if (names[n] == NULL)
			abort();
		snprintf(names[n], l, "%s/%s", path, de->d_name);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof(*names), cmp_str);
	int rv = 0;
	for (size_t i = 0; i < n; i++) {
		if (stat(names[i], &st) == 0 && S_ISREG(st.st_mode) && read_file(names[i]) != 0)
			rv = -1;
		free(names[i]);
	}
	free(names);
	return rv;
}

static const char *const tokens[] = {
    "{",
    "}",
    "[",
    "]",
    "\"",
    ":",
    ",",
    "\\",
    "\\u",
    "\\u0000",
    "\\ud800",
    "\\udc00",
    "null",
    "true",
    "false",
    "0",
    "-1",
    "1e999",
    "-0.0",
    "\"\"",
    "{}",
    "[]",
    "\n",
    "\r\n",
    " ",
    "\t",
    "\x00",
    "\xff",
    "\xc3\xa9",
    "\xed\xa0\x80",
    "\x80",
    "\xf4\x90",
    "=",
    "==",
    "+/",
    "-_",
    "#",
    "\"key\"",
    "\"value\"",
    "\"kv\"",
    "\"exec\"",
    "\"result\"",
    "\"events\"",
    "\"mod_revision\"",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "\"9223372036854775807\"",
    "!",
    "XXX_THE_END_OF_A_WHISK_ACTIVATION_XXX",
    "\x08",
    "\x0a",
    "\x12",
    "\x1a",
    "\x22",
    "\x2a",
    "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01",
    "\xff\xff\xff\xff\x0f",
    "\x7f",
};

static const uint8_t interesting[] = {0, 1, 0x7f, 0x80, 0xff, '0', '9', 'a', '{', '}', '"', '\\'};

/* One random edit of buf (len bytes, room for cap). Returns the new length. */
static size_t mutate_once(uint8_t *buf, size_t len, size_t cap)
{
	switch (below(10)) {
	case 0: /* flip a bit */
		if (len)
			buf[below(len)] ^= (uint8_t)(1u << below(8));
		break;
	case 1: /* an interesting byte */
		if (len)
			buf[below(len)] = interesting[below(sizeof(interesting))];
		break;
	case 2: /* a random byte */
		if (len)
			buf[below(len)] = (uint8_t)rng();
		break;
	case 3: { /* insert a random byte */
		if (len >= cap)
			break;
		size_t at = below(len + 1);
		memmove(buf + at + 1, buf + at, len - at);
		buf[at] = (uint8_t)rng();
		len++;
		break;
	}
	case 4: { /* erase a range */
		if (len == 0)
			break;
		size_t at = below(len);
		size_t n = 1 + below(len - at < 16 ? len - at : 16);
		memmove(buf + at, buf + at + n, len - at - n);
		len -= n;
		break;
	}
	case 5:
	case 6: { /* insert a token */
		const char *t = tokens[below(sizeof(tokens) / sizeof(tokens[0]))];
		size_t tl = t[0] ? strlen(t) : 1; /* "\x00" is one NUL byte */
		if (len + tl > cap)
			break;
		size_t at = below(len + 1);
		memmove(buf + at + tl, buf + at, len - at);
		memcpy(buf + at, t, tl);
		len += tl;
		break;
	}
	case 7: { /* duplicate a range */
		static uint8_t tmp[1u << 16];
		if (len == 0)
			break;
		size_t at = below(len), n = 1 + below(len - at);
		size_t to = below(len + 1);
		if (len + n > cap || n > sizeof(tmp) || to > len)
			break;
		memcpy(tmp, buf + at, n);
		memmove(buf + to + n, buf + to, len - to);
		memcpy(buf + to, tmp, n);
		len += n;
		break;
	}
	case 8: { /* splice with another input */
		const input *o = &inputs[below(ninputs)];
		if (o->len == 0)
			break;
		size_t at = below(o->len), n = 1 + below(o->len - at);
		size_t to = below(len + 1);
		if (to + n > cap)
			break;
		memcpy(buf + to, o->data + at, n);
		if (to + n > len)
			len = to + n;
		break;
	}
	case 9: /* truncate */
		len = below(len + 1);
		break;
	}
	return len;
}

int main(int argc, char **argv)
{
	unsigned long long iters = 20000, seed = 0x6775737466757a7aull; /* "gustfuzz" */
	const char *e = getenv("GUST_FUZZ_ITERS");
	if (e != NULL && *e)
		iters = strtoull(e, NULL, 10);
	int i = 1;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			iters = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "-s") == 0 && i + 1 < argc)
			seed = strtoull(argv[++i], NULL, 0);
		else if (read_path(argv[i]) != 0)
			return 2;
	}
	if (ninputs == 0) {
		fprintf(stderr, "usage: %s [-n ITERS] [-s SEED] FILE-OR-DIR...\n", argv[0]);
		return 2;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t k = 0; k < ninputs; k++) {
		/* A private copy, exactly len bytes: ASan sees any over-read. */
		uint8_t *copy = malloc(inputs[k].len ? inputs[k].len : 1);
		if (copy == NULL)
			abort();
		memcpy(copy, inputs[k].data, inputs[k].len);
		LLVMFuzzerTestOneInput(copy, inputs[k].len);
		free(copy);
	}
	rng_state = seed ? seed : 1;
	const size_t cap = 1u << 16;
	uint8_t *buf = malloc(cap);
	const char *save = getenv("GUST_FUZZ_SAVE");
	if (buf == NULL)
		abort();
	for (unsigned long long it = 0; it < iters; it++) {
		const input *base = &inputs[below(ninputs)];
		size_t len = base->len < cap ? base->len : cap;
		memcpy(buf, base->data, len);
		size_t edits = 1 + below(8);
		for (size_t m = 0; m < edits; m++)
			len = mutate_once(buf, len, cap);
		if (save != NULL && *save) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/mutation-%llu", save, it);
			FILE *f = fopen(p, "wb");
			if (f != NULL) {
				fwrite(buf, 1, len, f);
				fclose(f);
			}
		}
		uint8_t *copy = malloc(len ? len : 1);
		if (copy == NULL)
			abort();
		memcpy(copy, buf, len);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
		if (save != NULL && *save) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/mutation-%llu", save, it);
			remove(p);
		}
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%s: %zu corpus inputs and %llu mutations (seed %#llx) in %.2f s: ok\n", argv[0],
	       ninputs, iters, seed, s);
	free(buf);
	for (size_t k = 0; k < ninputs; k++) {
		free(inputs[k].data);
		free(inputs[k].name);
	}
	free(inputs);
	return 0;
}
