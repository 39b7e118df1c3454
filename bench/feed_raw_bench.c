/*
 * feed_raw_bench.c - the raw consume rate a feed is measured against
 * (bench/triggers.py): the same backlog read with the same client library
 * and the same settings as gust-trigger's feed, with nothing done per
 * message. Times from the first message to the last, like the Gust side.
 *
 *   gust-bench-feed-raw kafka BOOTSTRAP TOPIC N [FETCH_WAIT_MS] [BATCH]
 *       librdkafka consumer configured as trig_kafka.c's kafka_open (group,
 *       no auto commit, earliest, fetch.wait.max.ms, the default
 *       kafka_queue_kbytes / kafka_queue_messages: 64 MiB, 1M), every
 *       partition assigned by hand, rd_kafka_consume_batch_queue of BATCH
 *       (default 1000) on the consumer queue.
 *   gust-bench-feed-raw stream HOST:PORT STREAM N [COUNT]
 *       hiredis, one connection: a new group at 0, then XREADGROUP COUNT
 *       (default 1000) + XACK of what was read, as trig_stream.c does.
 *
 * Prints one JSON object: {"n", "seconds" (first message to last),
 * "msgs_per_s", "start_s" (from the start of the program to the first
 * message)}. Exits 1 when fewer than N messages could be read.
 */
#include <hiredis/hiredis.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_print(long n, double t_start, double t_first, double t_last)
{
	double s = t_last - t_first;
	printf("{\"n\": %ld, \"seconds\": %.6f, \"msgs_per_s\": %.1f, \"start_s\": %.6f}\n", n, s,
	       s > 0 ? (double)(n - 1) / s : 0.0, t_first - t_start);
}

static int bench_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
	char errstr[256];
	if (rd_kafka_conf_set(conf, k, v, errstr, sizeof(errstr)) != RD_KAFKA_CONF_OK) {
		fprintf(stderr, "feed_raw_bench: %s: %s\n", k, errstr);
		return -1;
	}
	return 0;
}

static int bench_kafka(const char *brokers, const char *topic, long n, const char *wait, int batch)
{
	double t_start = bench_now();
	char errstr[512], group[64];
	/* a fresh group each run: nothing committed, so earliest applies */
	snprintf(group, sizeof(group), "raw-bench-%ld-%ld", (long)time(NULL), (long)getpid());
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	if (bench_set(conf, "bootstrap.servers", brokers) || bench_set(conf, "group.id", group) ||
	    bench_set(conf, "enable.auto.commit", "false") ||
	    bench_set(conf, "enable.auto.offset.store", "false") ||
	    bench_set(conf, "auto.offset.reset", "earliest") ||
	    bench_set(conf, "fetch.wait.max.ms", wait) ||
	    bench_set(conf, "queued.max.messages.kbytes", "65536") ||
	    bench_set(conf, "queued.min.messages", "1000000"))
		return 2;
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "feed_raw_bench: %s\n", errstr);
		return 2;
	}
	rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
	const struct rd_kafka_metadata *md = NULL;
	rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 0, rkt, &md, 5000);
	rd_kafka_topic_destroy(rkt);
	if (e || md->topic_cnt != 1 || md->topics[0].partition_cnt == 0) {
		fprintf(stderr, "feed_raw_bench: metadata: %s\n", rd_kafka_err2str(e));
		return 2;
	}
	rd_kafka_topic_partition_list_t *parts =
	    rd_kafka_topic_partition_list_new(md->topics[0].partition_cnt);
	for (int i = 0; i < md->topics[0].partition_cnt; i++)
		rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id)
		    ->offset = RD_KAFKA_OFFSET_STORED;
	rd_kafka_metadata_destroy(md);
	rd_kafka_assign(rk, parts);
	rd_kafka_topic_partition_list_destroy(parts);
	rd_kafka_queue_t *q = rd_kafka_queue_get_consumer(rk);
	rd_kafka_message_t **m = calloc((size_t)batch, sizeof(*m));
	long got = 0;
	double t_first = 0, t_last = 0, idle_since = bench_now();
	while (got < n && bench_now() - idle_since < 5.0) {
		ssize_t k = rd_kafka_consume_batch_queue(q, 100, m, (size_t)batch);
		for (ssize_t i = 0; i < k; i++) {
			if (m[i]->err == 0) {
				if (got++ == 0)
					t_first = bench_now();
				idle_since = bench_now();
			}
			rd_kafka_message_destroy(m[i]);
		}
	}
	t_last = bench_now();
	free(m);
	rd_kafka_queue_destroy(q);
	rd_kafka_assign(rk, NULL);
	rd_kafka_consumer_close(rk);
	rd_kafka_destroy(rk);
	bench_print(got, t_start, t_first, t_last);
	return got < n;
}

static int bench_stream(const char *addr, const char *stream, long n, int count)
{
	double t_start = bench_now();
	char host[256];
	snprintf(host, sizeof(host), "%s", addr);
	char *colon = strrchr(host, ':');
	if (colon == NULL)
		return 2;
	*colon = '\0';
	redisContext *c = redisConnect(host, atoi(colon + 1));
	if (c == NULL || c->err) {
		fprintf(stderr, "feed_raw_bench: redis %s: %s\n", addr, c ? c->errstr : "oom");
		return 2;
	}
	/* As the ACL user of GUST_REDIS_USER, its password read from the file in
	 * GUST_REDIS_PASSWORD_FILE (the harness's operator; none: an open Redis). */
	const char *user = getenv("GUST_REDIS_USER"), *pwf = getenv("GUST_REDIS_PASSWORD_FILE");
	if (user != NULL && *user && pwf != NULL && *pwf) {
		char pw[1100] = "";
		FILE *f = fopen(pwf, "r");
		if (f == NULL || fgets(pw, sizeof(pw), f) == NULL) {
			fprintf(stderr, "feed_raw_bench: cannot read %s\n", pwf);
			return 2;
		}
		fclose(f);
		pw[strcspn(pw, "\r\n")] = 0;
		redisReply *a = redisCommand(c, "AUTH %s %s", user, pw);
		if (a == NULL || a->type == REDIS_REPLY_ERROR) {
			fprintf(stderr, "feed_raw_bench: AUTH as %s refused\n", user);
			return 2;
		}
		freeReplyObject(a);
	}
	/* a group of its own each run, from the start: runs can repeat */
	char group[64];
	snprintf(group, sizeof(group), "raw-bench-%ld-%ld", (long)time(NULL), (long)getpid());
	redisReply *r = redisCommand(c, "XGROUP CREATE %s %s 0", stream, group);
	freeReplyObject(r);
	long got = 0;
	double t_first = 0;
	const char **argv = malloc(sizeof(char *) * ((size_t)count + 3));
	size_t *lens = malloc(sizeof(size_t) * ((size_t)count + 3));
	while (got < n) {
		r = redisCommand(c, "XREADGROUP GROUP %s c COUNT %d STREAMS %s >", group, count,
		                 stream);
		if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
			freeReplyObject(r);
			break;
		}
		redisReply *entries = r->element[0]->element[1];
		if (entries->elements == 0) {
			freeReplyObject(r);
			break;
		}
		if (got == 0)
			t_first = bench_now();
		argv[0] = "XACK";
		argv[1] = stream;
		argv[2] = group;
		lens[0] = 4;
		lens[1] = strlen(stream);
		lens[2] = strlen(group);
		for (size_t i = 0; i < entries->elements; i++) {
			argv[3 + i] = entries->element[i]->element[0]->str;
			lens[3 + i] = entries->element[i]->element[0]->len;
		}
		redisReply *a = redisCommandArgv(c, (int)entries->elements + 3, argv, lens);
		freeReplyObject(a);
		got += (long)entries->elements;
		freeReplyObject(r);
	}
	double t_last = bench_now();
	free(argv);
	free(lens);
	redisFree(c);
	bench_print(got, t_start, t_first, t_last);
	return got < n;
}

int main(int argc, char **argv)
{
	if (argc >= 5 && strcmp(argv[1], "kafka") == 0)
		return bench_kafka(argv[2], argv[3], atol(argv[4]), argc > 5 ? argv[5] : "10",
		                   argc > 6 ? atoi(argv[6]) : 1000);
	if (argc >= 5 && strcmp(argv[1], "stream") == 0)
		return bench_stream(argv[2], argv[3], atol(argv[4]),
		                    argc > 5 ? atoi(argv[5]) : 1000);
	fprintf(stderr,
	        "usage: gust-bench-feed-raw kafka BOOTSTRAP TOPIC N [FETCH_WAIT_MS] [BATCH]\n"
	        "       gust-bench-feed-raw stream HOST:PORT STREAM N [COUNT]\n");
	return 2;
}
