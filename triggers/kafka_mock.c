/*
 * gust-kafka-mock - a Kafka-protocol broker for development and tests.
 *
 * librdkafka's mock cluster (rdkafka_mock.h) is a real Kafka-protocol endpoint
 * on loopback TCP: kcat and librdkafka clients produce to and consume from it.
 * It differs from a broker in two ways that matter (docs/triggers.md): it keeps
 * only about 5 MB per partition, and it answers a waiting fetch only at
 * fetch.wait.max.ms. The library picks the listen ports itself (there is no
 * call to fix them), so the bootstrap servers are printed on stdout as
 * "BOOTSTRAP=host:port,..." and, with --bootstrap-file, written to a file once
 * the cluster serves. Runs until SIGTERM or SIGINT.
 *
 *   gust-kafka-mock [--brokers N] [--topic NAME[:PARTITIONS]]... [--bootstrap-file F]
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t mock_stop;

static void mock_on_signal(int sig)
{
	mock_stop = 1;
}

static void mock_usage(FILE *out)
{
	fprintf(out, "usage: gust-kafka-mock [--brokers N] [--topic NAME[:PARTITIONS]]... "
	             "[--bootstrap-file FILE]\n");
}

static int mock_write_file(const char *path, const char *text)
{
	char tmp[4096];
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	FILE *f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%s\n", text);
	if (fclose(f) != 0)
		return -1;
	/* rename: a reader never sees half a line */
	return rename(tmp, path);
}

int main(int argc, char **argv)
{
	int brokers = 1;
	const char *bootstrap_file = NULL;
	const char *topics[64];
	int ntopics = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			mock_usage(stdout);
			return 0;
		} else if (strcmp(a, "--brokers") == 0 && v) {
			brokers = atoi(v);
			i++;
		} else if (strcmp(a, "--topic") == 0 && v && ntopics < 64) {
			topics[ntopics++] = v;
			i++;
		} else if (strcmp(a, "--bootstrap-file") == 0 && v) {
			bootstrap_file = v;
			i++;
		} else {
			fprintf(stderr, "gust-kafka-mock: unknown or incomplete option '%s'\n", a);
			mock_usage(stderr);
			return 2;
		}
	}
	if (brokers < 1 || brokers > 16) {
		fprintf(stderr, "gust-kafka-mock: --brokers must be 1..16\n");
		return 2;
	}
	char errstr[512];
	rd_kafka_conf_t *conf = rd_kafka_conf_new();
	/* The mock cluster lives inside a client handle; a producer is the
	 * lightest one to hold it. */
	rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
	if (rk == NULL) {
		fprintf(stderr, "gust-kafka-mock: %s\n", errstr);
		return 1;
	}
	rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, brokers);
	if (mc == NULL) {
		fprintf(stderr, "gust-kafka-mock: cannot create the mock cluster\n");
		rd_kafka_destroy(rk);
		return 1;
	}
	for (int i = 0; i < ntopics; i++) {
		char name[256];
		int parts = 1;
		snprintf(name, sizeof(name), "%s", topics[i]);
		char *colon = strchr(name, ':');
		if (colon) {
			*colon = '\0';
			parts = atoi(colon + 1);
		}
		if (parts < 1 || parts > 1024 ||
		    rd_kafka_mock_topic_create(mc, name, parts, brokers < 3 ? brokers : 3) !=
		        RD_KAFKA_RESP_ERR_NO_ERROR) {
			fprintf(stderr, "gust-kafka-mock: cannot create topic '%s'\n", topics[i]);
			rd_kafka_mock_cluster_destroy(mc);
			rd_kafka_destroy(rk);
			return 1;
		}
	}
	const char *bs = rd_kafka_mock_cluster_bootstraps(mc);
	printf("BOOTSTRAP=%s\n", bs);
	fflush(stdout);
	if (bootstrap_file && mock_write_file(bootstrap_file, bs) != 0) {
		fprintf(stderr, "gust-kafka-mock: cannot write %s: %s\n", bootstrap_file,
		        strerror(errno));
		rd_kafka_mock_cluster_destroy(mc);
		rd_kafka_destroy(rk);
		return 1;
	}
	struct sigaction sa = {0};
	sa.sa_handler = mock_on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	while (!mock_stop)
		pause();
	rd_kafka_mock_cluster_destroy(mc);
	rd_kafka_destroy(rk);
	return 0;
}
