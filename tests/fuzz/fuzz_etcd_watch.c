/* fuzz_etcd_watch.c - the etcd watch stream (common/etcd_watch.c): the
 * newline-delimited JSON answers of etcd's gateway /v3/watch, cut into
 * arbitrary chunks as curl hands them over (etcd_watch_write_cb), split into
 * lines, and decoded into events (etcd_watch_line, etcd_watch_deliver,
 * etcd_kv_from_json with its base64 keys and values).
 *
 * Properties: every delivered event is at or past the revision the watch
 * resumes from, carries a key, and the resume revision only grows; a hang-up
 * gives a reason; the unparsed tail never holds a complete line.
 *
 * Input: byte 0 seeds the chunk sizes, byte 1 the start revision (0 = "from
 * now"); the rest is the stream. */
#include "../../common/etcd_watch.c"

#include "fuzz.h"

typedef struct seen {
	int64_t from; /* the watch's next_rev when the answer arrived */
	size_t events;
} seen;

static void on_events(void *arg, const gust_watch_event *evs, size_t n, int64_t revision)
{
	seen *s = arg;
	FUZZ_CHECK(n > 0, "empty delivery");
	int64_t max = INT64_MIN;
	for (size_t i = 0; i < n; i++) {
		FUZZ_CHECK(evs[i].kv.key != NULL, "event without a key");
		FUZZ_CHECK(evs[i].kv.mod_revision >= s->from, "event at %lld before %lld",
		           (long long)evs[i].kv.mod_revision, (long long)s->from);
		FUZZ_CHECK(evs[i].type == GUST_WATCH_PUT || evs[i].type == GUST_WATCH_DELETE,
		           "type %d", evs[i].type);
		FUZZ_CHECK(evs[i].type == GUST_WATCH_DELETE || evs[i].kv.value != NULL,
		           "PUT without a value");
		if (evs[i].kv.mod_revision > max)
			max = evs[i].kv.mod_revision;
	}
	FUZZ_CHECK(revision == max, "revision %lld, newest event %lld", (long long)revision,
	           (long long)max);
	s->events += n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	unsigned chunk_seed = data[0];
	int64_t start = data[1];
	data += 2, size -= 2;

	gust_etcd_watch w = {0};
	seen s = {0};
	w.prefix = "/gust/actions/";
	w.ops.on_events = on_events;
	w.arg = &s;
	atomic_store(&w.next_rev, start);

	size_t off = 0;
	unsigned x = chunk_seed * 2654435761u + 1;
	while (off < size) {
		x = x * 1103515245u + 12345u;
		size_t n = 1 + (x >> 16) % 97;
		if (chunk_seed & 0x80)
			n = size - off; /* all at once */
		if (n > size - off)
			n = size - off;
		int64_t before = atomic_load(&w.next_rev);
		s.from = before;
		char *copy = gust_xstrndup((const char *)data + off, n);
		size_t took = etcd_watch_write_cb(copy, 1, n, &w);
		free(copy);
		int64_t after = atomic_load(&w.next_rev);
		FUZZ_CHECK(after >= before, "next_rev went back from %lld to %lld",
		           (long long)before, (long long)after);
		if (took != n) {
			FUZZ_CHECK(took == 0 && w.hangup && w.reason[0],
			           "short write without reason");
			break;
		}
		FUZZ_CHECK(w.in.len == 0 || memchr(w.in.data, '\n', w.in.len) == NULL,
		           "a complete line left unparsed");
		off += n;
	}
	gust_buf_free(&w.in);
	return 0;
}
