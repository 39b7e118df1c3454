/* test_fire.c - unit tests of common/trigger_fire.c: the cron parser and its
 * next-tick search, schedules (intervals, start and stop dates), feed
 * parameter validation, rule matching, and the order in which fire params
 * are merged (package, binding, action defaults, then the fire's own). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gust/binding.h"
#include "gust/fire.h"
#include "gust/scope.h"
#include "gust/util.h"

/* Epoch seconds of a UTC date. */
static int64_t utc(int y, int mo, int d, int h, int mi, int s)
{
	struct tm tm = {.tm_year = y - 1900,
	                .tm_mon = mo - 1,
	                .tm_mday = d,
	                .tm_hour = h,
	                .tm_min = mi,
	                .tm_sec = s};
	return (int64_t)timegm(&tm);
}

static void cron_ok(const char *expr, gust_cron *c)
{
	gust_error *err = NULL;
	int rv = gust_cron_parse(expr, c, &err);
	if (rv != 0)
		fail_msg("cron '%s' refused: %s", expr, gust_error_msg(err));
	gust_error_free(err);
}

/* ---- cron ---- */

static void test_cron_five_fields(void **state)
{
	gust_cron c;
	cron_ok("*/15 3 * * *", &c);
	assert_int_equal(c.sec, 1); /* 5 fields: second 0 */
	assert_true(c.min == (1ull << 0 | 1ull << 15 | 1ull << 30 | 1ull << 45));
	assert_int_equal(c.hour, 1u << 3);
	assert_true(c.dom_star && c.dow_star);
	int64_t t0 = utc(2026, 11, 27, 10, 0, 0);
	assert_int_equal(gust_cron_next(&c, t0), utc(2026, 11, 28, 3, 0, 0));
	assert_int_equal(gust_cron_next(&c, utc(2026, 11, 28, 3, 0, 0)),
	                 utc(2026, 11, 28, 3, 15, 0));
	/* strictly after */
	assert_int_equal(gust_cron_next(&c, utc(2026, 11, 28, 3, 44, 59)),
	                 utc(2026, 11, 28, 3, 45, 0));
}

static void test_cron_six_fields(void **state)
{
	gust_cron c;
	cron_ok("*/10 * * * * *", &c);
	int64_t t0 = utc(2026, 1, 1, 0, 0, 3);
	assert_int_equal(gust_cron_next(&c, t0), t0 + 7);
	assert_int_equal(gust_cron_next(&c, t0 + 7), t0 + 17);
	cron_ok("30 0 12 * * *", &c);
	assert_int_equal(gust_cron_next(&c, t0), utc(2026, 1, 1, 12, 0, 30));
}

static void test_cron_ranges_lists_steps(void **state)
{
	gust_cron c;
	cron_ok("0 9-17/4 * * 1-5", &c);
	assert_int_equal(c.hour, 1u << 9 | 1u << 13 | 1u << 17);
	assert_int_equal(c.dow, 0x3e);
	/* Saturday 2026-11-28: next is Monday 09:00 */
	assert_int_equal(gust_cron_next(&c, utc(2026, 11, 28, 8, 0, 0)),
	                 utc(2026, 11, 30, 9, 0, 0));
	cron_ok("5,10,50-52 * * * *", &c);
	assert_true(c.min == (1ull << 5 | 1ull << 10 | 1ull << 50 | 1ull << 51 | 1ull << 52));
	cron_ok("3/20 * * * *", &c); /* a/n: from a to the end */
	assert_true(c.min == (1ull << 3 | 1ull << 23 | 1ull << 43));
	cron_ok("0 0 1 1 *", &c);
	assert_int_equal(gust_cron_next(&c, utc(2026, 6, 1, 0, 0, 0)), utc(2027, 1, 1, 0, 0, 0));
	/* day 31 only in months that have one */
	cron_ok("0 0 31 * *", &c);
	assert_int_equal(gust_cron_next(&c, utc(2026, 4, 1, 0, 0, 0)), utc(2026, 5, 31, 0, 0, 0));
	/* 29 February: the next leap year */
	cron_ok("0 0 29 2 *", &c);
	assert_int_equal(gust_cron_next(&c, utc(2026, 3, 1, 0, 0, 0)), utc(2028, 2, 29, 0, 0, 0));
}

static void test_cron_names_and_days(void **state)
{
	gust_cron c;
	cron_ok("0 12 * jan-mar MON,wed", &c);
	assert_int_equal(c.mon, 1u << 1 | 1u << 2 | 1u << 3);
	assert_int_equal(c.dow, 1u << 1 | 1u << 3);
	cron_ok("0 0 * * 7", &c); /* 7 is Sunday too */
	assert_int_equal(c.dow, 1u << 0);
	/* both day fields restricted: either matches (Vixie cron) */
	cron_ok("0 0 13 * 5", &c);
	/* 2026-11-27 is a Friday; 2026-12-13 a Sunday */
	assert_int_equal(gust_cron_next(&c, utc(2026, 11, 26, 1, 0, 0)),
	                 utc(2026, 11, 27, 0, 0, 0));
	assert_int_equal(gust_cron_next(&c, utc(2026, 12, 11, 1, 0, 0)),
	                 utc(2026, 12, 13, 0, 0, 0));
	/* a date that never comes */
	cron_ok("0 0 30 2 *", &c);
	assert_int_equal(gust_cron_next(&c, utc(2026, 1, 1, 0, 0, 0)), -1);
}

static void test_cron_invalid(void **state)
{
	static const struct {
		const char *expr, *want; /* a piece of the message */
	} bad[] = {
	    {"", "expected 5 fields"},
	    {"* * * *", "expected 5 fields"},
	    {"* * * * * * *", "more than 6 fields"},
	    {"61 * * * *", "minute field '61'"},
	    {"* 24 * * *", "hour field '24'"},
	    {"* * 0 * *", "day of month field '0'"},
	    {"* * 32 * *", "day of month"},
	    {"* * * 13 *", "month field '13'"},
	    {"* * * * 8", "day of week field '8'"},
	    {"60 * * * * *", "second field '60'"},
	    {"*/0 * * * *", "minute"},
	    {"5-3 * * * *", "minute"},
	    {"1,,2 * * * *", "minute"},
	    {"a * * * *", "minute"},
	    {"* * * foo *", "month"},
	    {"* * * * mon-", "day of week"},
	    {"1-2-3 * * * *", "minute"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		gust_cron c;
		gust_error *err = NULL;
		int rv = gust_cron_parse(bad[i].expr, &c, &err);
		if (rv != GUST_EINVAL)
			fail_msg("cron '%s' accepted (rv %d)", bad[i].expr, rv);
		const char *msg = gust_error_msg(err);
		if (strstr(msg, bad[i].want) == NULL)
			fail_msg("cron '%s': message '%s' lacks '%s'", bad[i].expr, msg,
			         bad[i].want);
		gust_error_free(err);
	}
	gust_cron c;
	assert_int_equal(gust_cron_parse(NULL, &c, NULL), GUST_EINVAL);
}

/* ---- feeds ---- */

/* A trigger record with a feed annotation and parameters given as
 * "key", json, "key", json, ..., NULL (values are JSON texts). */
static json_t *trigger_of(const char *feed, ...)
{
	json_t *params = json_array();
	va_list ap;
	va_start(ap, feed);
	const char *k;
	while ((k = va_arg(ap, const char *)) != NULL) {
		const char *v = va_arg(ap, const char *);
		json_t *jv = json_loads(v, JSON_DECODE_ANY, NULL);
		assert_non_null(jv);
		json_array_append_new(params, json_pack("{s:s,s:o}", "key", k, "value", jv));
	}
	va_end(ap);
	return json_pack("{s:s,s:s,s:[{s:s,s:s}],s:o}", "namespace", "guest", "name", "t",
	                 "annotations", "key", "feed", "value", feed, "parameters", params);
}

static int parse(json_t *trig, gust_feed *f, char *msg, size_t len)
{
	gust_error *err = NULL;
	int rv = gust_feed_parse(trig, f, &err);
	snprintf(msg, len, "%s", rv ? gust_error_msg(err) : "");
	gust_error_free(err);
	json_decref(trig);
	return rv;
}

static void test_feed_kafka(void **state)
{
	gust_feed f;
	char msg[256];
	assert_int_equal(
	    parse(trigger_of("kafka", "brokers", "[\"a:1\",\"b:2\"]", "topic", "\"orders\"",
	                     "batchSize", "\"500\"", "inOrder", "true", NULL),
	          &f, msg, sizeof(msg)),
	    0);
	assert_int_equal(f.kind, GUST_FEED_KAFKA);
	assert_string_equal(f.brokers, "a:1,b:2");
	assert_string_equal(f.topic, "orders");
	assert_string_equal(f.group, "gust-guest-t");
	assert_string_equal(f.dead_letter, "orders.dlq");
	assert_int_equal(f.batch_size, 500);
	assert_int_equal(f.max_wait_ms, 100);
	assert_int_equal(f.max_attempts, 5);
	assert_true(f.in_order);
	assert_false(f.start_latest);
	gust_feed_clear(&f);
	/* the OpenWhisk package names too, and a brokers string */
	assert_int_equal(parse(trigger_of("/whisk.system/messaging/messageHubFeed", "brokers",
	                                  "\"a:1, b:2\"", "topic", "\"x\"", "startFrom",
	                                  "\"latest\"", "deadLetterTopic", "\"dead\"", NULL),
	                       &f, msg, sizeof(msg)),
	                 0);
	assert_string_equal(f.brokers, "a:1,b:2");
	assert_true(f.start_latest);
	assert_string_equal(f.dead_letter, "dead");
	gust_feed_clear(&f);

	static const struct {
		const char *k, *v, *want;
	} bad[] = {
	    {"topic", "null", "'topic' is required"},
	    {"topic", "\"\"", "'topic' must be a non-empty string"},
	    {"batchSize", "0", "'batchSize' must be between 1 and 100000"},
	    {"batchSize", "\"many\"", "'batchSize' must be an integer"},
	    {"maxWaitMs", "-1", "'maxWaitMs'"},
	    {"maxAttempts", "1001", "'maxAttempts'"},
	    {"inOrder", "\"yes\"", "'inOrder' must be true or false"},
	    {"startFrom", "\"middle\"", "'startFrom' must be earliest or latest"},
	    {"isJSONData", "true", "exclude each other"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *t = strcmp(bad[i].k, "topic") == 0
		                ? trigger_of("kafka", "brokers", "\"a:1\"", "topic", bad[i].v, NULL)
		            : strcmp(bad[i].k, "isJSONData") == 0
		                ? trigger_of("kafka", "brokers", "\"a:1\"", "topic", "\"x\"",
		                             "isJSONData", "true", "isBinaryValue", "true", NULL)
		                : trigger_of("kafka", "brokers", "\"a:1\"", "topic", "\"x\"",
		                             bad[i].k, bad[i].v, NULL);
		if (parse(t, &f, msg, sizeof(msg)) != GUST_EINVAL || !strstr(msg, bad[i].want))
			fail_msg("%s=%s: '%s', want '%s'", bad[i].k, bad[i].v, msg, bad[i].want);
	}
	assert_int_equal(parse(trigger_of("kafka", "topic", "\"x\"", NULL), &f, msg, sizeof(msg)),
	                 GUST_EINVAL);
	assert_non_null(strstr(msg, "'brokers' is required"));
	assert_int_equal(parse(trigger_of("kafka", "brokers", "[1]", "topic", "\"x\"", NULL), &f,
	                       msg, sizeof(msg)),
	                 GUST_EINVAL);
	assert_non_null(strstr(msg, "'brokers' must be a string or an array"));
}

static void test_feed_redis(void **state)
{
	gust_feed f;
	char msg[256];
	assert_int_equal(
	    parse(trigger_of("redis-stream", "stream", "\"ev\"", NULL), &f, msg, sizeof(msg)), 0);
	assert_int_equal(f.kind, GUST_FEED_REDIS_STREAM);
	assert_string_equal(f.start_id, "0");
	assert_string_equal(f.group, "gust-guest-t");
	/* a relative name is the namespace's key; so is its dead-letter stream */
	assert_string_equal(f.stream, "gust:state:guest:ev");
	assert_string_equal(f.dead_letter, "gust:state:guest:ev.dlq");
	assert_null(f.redis);
	gust_feed_clear(&f);
	/* a full name inside the keyspace is kept */
	assert_int_equal(parse(trigger_of("redis-stream", "stream", "\"gust:state:guest:ev\"",
	                                  "deadLetterStream", "\"dead\"", NULL),
	                       &f, msg, sizeof(msg)),
	                 0);
	assert_string_equal(f.stream, "gust:state:guest:ev");
	assert_string_equal(f.dead_letter, "gust:state:guest:dead");
	gust_feed_clear(&f);
	/* the journal, another namespace's keys, a prefix without its ':' */
	const char *outside[] = {"\"gust:journal\"", "\"gust:state:bob:x\"",
	                         "\"gust:state:guestx:y\"", "\"gust:state:guest:\""};
	for (size_t i = 0; i < 4; i++) {
		assert_int_equal(parse(trigger_of("redis-stream", "stream", outside[i], NULL), &f,
		                       msg, sizeof(msg)),
		                 GUST_EPERM);
		assert_non_null(strstr(msg, "'stream'"));
		assert_int_equal(parse(trigger_of("redis-stream", "stream", "\"ev\"",
		                                  "deadLetterStream", outside[i], NULL),
		                       &f, msg, sizeof(msg)),
		                 GUST_EPERM);
		assert_non_null(strstr(msg, "'deadLetterStream'"));
	}
	/* on a Redis of its own the names are the tenant's */
	assert_int_equal(parse(trigger_of("redis-stream", "stream", "\"gust:journal\"", "redis",
	                                  "\"10.1.2.3:6379\"", NULL),
	                       &f, msg, sizeof(msg)),
	                 0);
	assert_string_equal(f.stream, "gust:journal");
	assert_true(gust_feed_external(&f));
	gust_feed_clear(&f);
	assert_int_equal(
	    parse(trigger_of("redis-stream", "stream", "\"ev\"", "group", "\"a b\"", NULL), &f, msg,
	          sizeof(msg)),
	    GUST_EINVAL);
	assert_int_equal(
	    parse(trigger_of("redis-stream", "stream", "\"ev\"", "startId", "\"0 MKSTREAM\"", NULL),
	          &f, msg, sizeof(msg)),
	    GUST_EINVAL);
	assert_int_equal(parse(trigger_of("redis-stream", NULL), &f, msg, sizeof(msg)),
	                 GUST_EINVAL);
	assert_non_null(strstr(msg, "'stream' is required"));

	assert_int_equal(
	    parse(trigger_of("redis-pubsub", "channels", "\"a,b\"", "patterns", "[\"n.*\"]", NULL),
	          &f, msg, sizeof(msg)),
	    0);
	assert_int_equal(f.kind, GUST_FEED_REDIS_PUBSUB);
	assert_int_equal(json_array_size(f.channels), 2);
	assert_string_equal(json_string_value(json_array_get(f.channels, 1)), "gust:state:guest:b");
	assert_int_equal(json_array_size(f.patterns), 1);
	assert_string_equal(json_string_value(json_array_get(f.patterns, 0)),
	                    "gust:state:guest:n.*");
	assert_int_equal(f.batch_size, 1); /* pub/sub fires per message by default */
	gust_feed_clear(&f);
	assert_int_equal(parse(trigger_of("redis-pubsub", NULL), &f, msg, sizeof(msg)),
	                 GUST_EINVAL);
	assert_non_null(strstr(msg, "'channels' or 'patterns' is required"));
	/* a pattern whose literal prefix leaves the keyspace */
	assert_int_equal(parse(trigger_of("redis-pubsub", "patterns", "[\"gust:*\"]", NULL), &f,
	                       msg, sizeof(msg)),
	                 GUST_EPERM);
	assert_non_null(strstr(msg, "'patterns'"));
	assert_int_equal(parse(trigger_of("redis-pubsub", "channels", "[\"gust:journal\"]", NULL),
	                       &f, msg, sizeof(msg)),
	                 GUST_EPERM);
	assert_non_null(strstr(msg, "'channels'"));
}

static void test_feed_default_group(void **state)
{
	/* a trigger name may hold a space: its default group is still fine */
	gust_feed f;
	char msg[256];
	json_t *t = trigger_of("redis-stream", "stream", "\"ev\"", NULL);
	json_object_set_new(t, "name", json_string("my trigger"));
	assert_int_equal(parse(t, &f, msg, sizeof(msg)), 0);
	assert_string_equal(f.group, "gust-guest-my trigger");
	gust_feed_clear(&f);
}

static void test_feed_kafka_group(void **state)
{
	gust_feed f;
	char msg[256];
	assert_int_equal(parse(trigger_of("kafka", "brokers", "\"k:9092\"", "topic", "\"t\"",
	                                  "groupId", "\"gust-bob-t\"", NULL),
	                       &f, msg, sizeof(msg)),
	                 GUST_EPERM);
	assert_int_equal(parse(trigger_of("kafka", "brokers", "\"k:9092\"", "topic", "\"t\"",
	                                  "groupId", "\"gust-guest-mine\"", NULL),
	                       &f, msg, sizeof(msg)),
	                 0);
	gust_feed_clear(&f);
}

static void test_policy(void **state)
{
	gust_policy *p = NULL;
	gust_error *err = NULL;
	const char *cluster = "{\"targets\": [\"kafka.example:9092\", \"10.0.0.0/8\"]}";
	const char *grants = "{\"targets\": [\"127.0.0.1:19092\"], \"egress\": []}";
	assert_int_equal(
	    gust_policy_parse(cluster, strlen(cluster), grants, strlen(grants), &p, &err), 0);
	gust_policy_add_own(p, "127.0.0.1:6379,http://127.0.0.1:2379");
	assert_int_equal(gust_policy_target(p, "x", "kafka.example:9092", NULL), 0);
	assert_int_equal(gust_policy_target(p, "x", "KAFKA.example:9092", NULL), 0);
	assert_int_equal(gust_policy_target(p, "x", "kafka.example:9093", NULL), GUST_EPERM);
	assert_int_equal(gust_policy_target(p, "x", "10.2.3.4:1", NULL), 0);
	assert_int_equal(gust_policy_target(p, "x", "127.0.0.1:19092", NULL), 0);
	assert_int_equal(gust_policy_target(p, "x", "127.0.0.1:6379", &err), GUST_EPERM);
	assert_non_null(strstr(gust_error_msg(err), "x: '127.0.0.1:6379' is not allowed"));
	gust_error_free(err);
	err = NULL;
	assert_int_equal(gust_policy_target(p, "x", "nope", NULL), GUST_EINVAL);
	assert_int_equal(gust_policy_targets(p, "x", "10.0.0.1:1, kafka.example:9092", NULL), 0);
	assert_int_equal(gust_policy_targets(p, "x", "10.0.0.1:1,evil:1", NULL), GUST_EPERM);
	/* connect time: loopback only by an address entry; the cluster's own
	 * addresses only by an exact one */
	struct sockaddr_in in = {.sin_family = AF_INET};
	char why[256];
	inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
	in.sin_port = htons(19092);
	assert_int_equal(gust_policy_sockaddr(p, (struct sockaddr *)&in, sizeof(in), why, 256), 0);
	in.sin_port = htons(19093);
	assert_int_equal(gust_policy_sockaddr(p, (struct sockaddr *)&in, sizeof(in), why, 256),
	                 GUST_EPERM);
	in.sin_port = htons(6379);
	assert_int_equal(gust_policy_sockaddr(p, (struct sockaddr *)&in, sizeof(in), why, 256),
	                 GUST_EPERM);
	assert_non_null(strstr(why, "cluster's own"));
	inet_pton(AF_INET, "169.254.169.254", &in.sin_addr);
	in.sin_port = htons(80);
	assert_int_equal(gust_policy_sockaddr(p, (struct sockaddr *)&in, sizeof(in), why, 256),
	                 GUST_EPERM);
	inet_pton(AF_INET, "10.9.9.9", &in.sin_addr);
	assert_int_equal(gust_policy_sockaddr(p, (struct sockaddr *)&in, sizeof(in), why, 256), 0);
	struct sockaddr_in6 in6 = {.sin6_family = AF_INET6, .sin6_port = htons(19092)};
	inet_pton(AF_INET6, "::ffff:127.0.0.1", &in6.sin6_addr);
	assert_int_equal(gust_policy_sockaddr(p, (struct sockaddr *)&in6, sizeof(in6), why, 256),
	                 0);
	inet_pton(AF_INET6, "::1", &in6.sin6_addr);
	assert_int_equal(gust_policy_sockaddr(p, (struct sockaddr *)&in6, sizeof(in6), why, 256),
	                 GUST_EPERM);
	gust_policy_free(p);
	const char *bad = "{\"targets\": [\"a b\"]}";
	/* nothing stored: nothing allowed */
	assert_int_equal(gust_policy_parse(NULL, 0, NULL, 0, &p, NULL), 0);
	assert_int_equal(gust_policy_target(p, "x", "kafka.example:9092", NULL), GUST_EPERM);
	gust_policy_free(p);
	assert_int_equal(gust_policy_parse(bad, strlen(bad), NULL, 0, &p, NULL), GUST_EPROTO);
	assert_int_equal(gust_policy_entry_check("[::1]:80", NULL), 0);
	assert_int_equal(gust_policy_entry_check("10.0.0.0/33", NULL), GUST_EINVAL);
	assert_int_equal(gust_policy_entry_check("::1", NULL), GUST_EINVAL);
}

static void test_binding_parse(void **state)
{
	gust_binding b;
	char *why = NULL;
	assert_int_equal(gust_binding_parse("alice", "{\"redis\":{\"list\":\"out\"}}", &b, &why),
	                 0);
	assert_string_equal(b.name, "gust:state:alice:out");
	assert_false(gust_binding_external(&b));
	gust_binding_clear(&b);
	assert_int_equal(
	    gust_binding_parse("alice", "{\"redis\":{\"list\":\"gust:state:bob:x\"}}", &b, &why),
	    GUST_EPERM);
	assert_non_null(strstr(why, "\"list\""));
	free(why);
	assert_int_equal(
	    gust_binding_parse("alice", "{\"redis\":{\"stream\":\"gust:journal\"}}", &b, &why),
	    GUST_EPERM);
	free(why);
	assert_int_equal(gust_binding_parse("alice",
	                                    "{\"kafka\":{\"brokers\":\"k:1\",\"topic\":\"t\"}}", &b,
	                                    &why),
	                 0);
	assert_true(gust_binding_external(&b));
	gust_binding_clear(&b);
}

static void test_feed_none_and_unknown(void **state)
{
	gust_feed f;
	char msg[256];
	json_t *plain = json_pack("{s:s,s:[]}", "name", "t", "annotations");
	assert_int_equal(parse(plain, &f, msg, sizeof(msg)), GUST_ENOENT);
	assert_int_equal(parse(trigger_of("ftp", NULL), &f, msg, sizeof(msg)), GUST_EINVAL);
	assert_non_null(strstr(msg, "unknown feed 'ftp'"));
	assert_string_equal(gust_feed_kind_name(GUST_FEED_REDIS_PUBSUB), "redis-pubsub");
	assert_true(gust_feed_is_param(GUST_FEED_KAFKA, "topic"));
	assert_true(gust_feed_is_param(GUST_FEED_KAFKA, "batchSize"));
	assert_false(gust_feed_is_param(GUST_FEED_KAFKA, "stream"));
	assert_false(gust_feed_is_param(GUST_FEED_KAFKA, "greeting"));
	assert_true(gust_feed_is_param(GUST_FEED_SCHEDULE, "cron"));
	assert_false(gust_feed_is_param(GUST_FEED_SCHEDULE, "batchSize"));
}

static void test_schedule_interval(void **state)
{
	gust_feed f;
	char msg[256];
	assert_int_equal(
	    parse(trigger_of("alarm", "intervalSeconds", "2", NULL), &f, msg, sizeof(msg)), 0);
	assert_int_equal(f.kind, GUST_FEED_SCHEDULE);
	assert_int_equal(f.interval_ms, 2000);
	/* aligned on the epoch: every instance computes the same ticks */
	assert_int_equal(gust_feed_next(&f, 1000), 2000);
	assert_int_equal(gust_feed_next(&f, 1999), 2000);
	assert_int_equal(gust_feed_next(&f, 2000), 4000);
	gust_feed_clear(&f);
	assert_int_equal(
	    parse(trigger_of("interval", "intervalMs", "\"250\"", NULL), &f, msg, sizeof(msg)), 0);
	assert_int_equal(f.interval_ms, 250);
	gust_feed_clear(&f);

	static const struct {
		const char *k1, *v1, *k2, *v2, *want;
	} bad[] = {
	    {"intervalMs", "99", NULL, NULL, "'intervalMs' must be between 100"},
	    {"intervalSeconds", "0", NULL, NULL, "'intervalSeconds' must be between 1"},
	    {"intervalSeconds", "1.5e9", NULL, NULL, "'intervalSeconds'"},
	    {"intervalSeconds", "2", "cron", "\"* * * * *\"", "exactly one of"},
	    {"payload", "{}", NULL, NULL, "exactly one of"},
	    {"intervalSeconds", "2", "payload", "[1]", "'payload' must be a JSON object"},
	    {"intervalSeconds", "2", "startDate", "\"tomorrow\"", "'startDate' must be ms"},
	    {"cron", "\"* * * *\"", NULL, NULL, "expected 5 fields"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *t = bad[i].k2 ? trigger_of("schedule", bad[i].k1, bad[i].v1, bad[i].k2,
		                                   bad[i].v2, NULL)
		                      : trigger_of("schedule", bad[i].k1, bad[i].v1, NULL);
		if (parse(t, &f, msg, sizeof(msg)) != GUST_EINVAL || !strstr(msg, bad[i].want))
			fail_msg("%s=%s: '%s', want '%s'", bad[i].k1, bad[i].v1, msg, bad[i].want);
	}
}

static void test_schedule_dates(void **state)
{
	gust_feed f;
	char msg[256];
	/* ISO 8601 and ms; intervals count from startDate */
	assert_int_equal(parse(trigger_of("schedule", "intervalMs", "60000", "startDate",
	                                  "\"2026-12-01T10:00:30Z\"", "stopDate", "1796122020000",
	                                  "payload", "{\"a\":1}", NULL),
	                       &f, msg, sizeof(msg)),
	                 0);
	int64_t start = utc(2026, 12, 1, 10, 0, 30) * 1000;
	assert_int_equal(f.start_ms, start);
	assert_int_equal(f.stop_ms, 1796122020000LL); /* 2026-12-01T10:47:00Z */
	assert_true(json_is_object(f.payload));
	assert_int_equal(gust_feed_next(&f, 0), start);         /* not before the start */
	assert_int_equal(gust_feed_next(&f, start - 1), start); /* the start itself */
	assert_int_equal(gust_feed_next(&f, start), start + 60000);
	assert_int_equal(gust_feed_next(&f, start + 59999), start + 60000);
	/* the last tick before the stop (10:46:30), then none */
	assert_int_equal(gust_feed_next(&f, start + 45 * 60000), start + 46 * 60000);
	assert_int_equal(gust_feed_next(&f, start + 46 * 60000), -1);
	gust_feed_clear(&f);
	/* cron with a start date: nothing before it */
	assert_int_equal(parse(trigger_of("schedule", "cron", "\"0 * * * *\"", "startDate",
	                                  "\"2026-12-01T10:30:00Z\"", NULL),
	                       &f, msg, sizeof(msg)),
	                 0);
	assert_int_equal(gust_feed_next(&f, 0), utc(2026, 12, 1, 11, 0, 0) * 1000);
	gust_feed_clear(&f);
	assert_int_equal(parse(trigger_of("schedule", "intervalSeconds", "5", "startDate", "2000",
	                                  "stopDate", "1000", NULL),
	                       &f, msg, sizeof(msg)),
	                 GUST_EINVAL);
	assert_non_null(strstr(msg, "'stopDate' must be after 'startDate'"));
}

/* ---- rules and params ---- */

static void test_rule_targets(void **state)
{
	json_t *rules[] = {
	    json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s}}", "name", "r1", "status", "active",
	              "trigger", "name", "t", "path", "guest", "action", "name", "a", "path",
	              "guest"),
	    json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s}}", "name", "r2", "status", "inactive",
	              "trigger", "name", "t", "path", "guest", "action", "name", "b", "path",
	              "guest"),
	    json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s}}", "name", "r3", "status", "active",
	              "trigger", "name", "other", "path", "guest", "action", "name", "c", "path",
	              "guest"),
	    json_pack("{s:s,s:s,s:{s:s,s:s},s:{s:s,s:s}}", "name", "r4", "status", "active",
	              "trigger", "name", "t", "path", "guest", "action", "name", "d", "path",
	              "shared/pkg"),
	};
	size_t n = sizeof(rules) / sizeof(rules[0]);
	json_t *out = gust_fire_rule_targets(rules, n, "guest", "t");
	assert_int_equal(json_array_size(out), 2);
	json_t *a = json_array_get(out, 0), *d = json_array_get(out, 1);
	assert_string_equal(json_string_value(json_object_get(a, "rule")), "guest/r1");
	assert_string_equal(json_string_value(json_object_get(a, "ns")), "guest");
	assert_string_equal(json_string_value(json_object_get(a, "path")), "a");
	assert_string_equal(json_string_value(json_object_get(d, "rule")), "guest/r4");
	assert_string_equal(json_string_value(json_object_get(d, "ns")), "shared");
	assert_string_equal(json_string_value(json_object_get(d, "path")), "pkg/d");
	json_decref(out);
	out = gust_fire_rule_targets(rules, n, "guest", "nobody");
	assert_int_equal(json_array_size(out), 0);
	json_decref(out);
	for (size_t i = 0; i < n; i++)
		json_decref(rules[i]);
}

static json_t *store; /* id -> record, for the lookup below */

static json_t *lookup(void *arg, const char *kind, const char *id)
{
	json_t *m = json_object_get(store, kind);
	json_t *r = json_object_get(m, id);
	return r ? json_incref(r) : NULL;
}

static json_t *kvs(const char *json)
{
	json_t *v = json_loads(json, 0, NULL);
	assert_non_null(v);
	return v;
}

static void test_params_merge_order(void **state)
{
	store = json_pack(
	    "{s:{s:o,s:o,s:o},s:{s:o,s:o,s:o}}", "packages", "shared/pkg",
	    json_pack("{s:b,s:o}", "publish", 1, "parameters",
	              kvs("[{\"key\":\"a\",\"value\":\"pkg\"},{\"key\":\"b\",\"value\":\"pkg\"},"
	                  "{\"key\":\"c\",\"value\":\"pkg\"},{\"key\":\"d\",\"value\":\"pkg\"}]")),
	    "guest/bound",
	    json_pack("{s:{s:s,s:s},s:o}", "binding", "namespace", "shared", "name", "pkg",
	              "parameters",
	              kvs("[{\"key\":\"b\",\"value\":\"binding\"},{\"key\":\"c\",\"value\":"
	                  "\"binding\"}]")),
	    "guest/private", json_pack("{s:b}", "publish", 0), "actions", "shared/pkg/act",
	    json_pack("{s:s,s:s,s:o}", "namespace", "shared/pkg", "name", "act", "parameters",
	              kvs("[{\"key\":\"c\",\"value\":\"action\"}]")),
	    "guest/plain",
	    json_pack("{s:s,s:s,s:o}", "namespace", "guest", "name", "plain", "parameters",
	              kvs("[{\"key\":\"x\",\"value\":1}]")),
	    "other/secret", json_pack("{s:s,s:s}", "namespace", "other", "name", "secret"));

	json_t *act = NULL;
	char *defs = NULL;
	/* through a binding: package < binding < action */
	assert_int_equal(
	    gust_fire_resolve(lookup, NULL, "guest", "guest", "bound/act", &act, &defs), 0);
	char *obj = gust_xasprintf("{%s}", defs);
	json_t *got = json_loads(obj, 0, NULL);
	free(obj);
	assert_non_null(got);
	assert_string_equal(json_string_value(json_object_get(got, "a")), "pkg");
	assert_string_equal(json_string_value(json_object_get(got, "b")), "binding");
	assert_string_equal(json_string_value(json_object_get(got, "c")), "action");
	assert_string_equal(json_string_value(json_object_get(got, "d")), "pkg");
	json_decref(got);

	/* then the trigger's params, then the event's (the last duplicate wins) */
	size_t len;
	char *p = gust_fire_params(defs, "{\"c\":\"event\", \"e\":\n2}", 21, &len);
	assert_int_equal(len, strlen(p));
	assert_null(strchr(p, '\n')); /* one line for the runtime */
	got = json_loads(p, 0, NULL);
	assert_non_null(got);
	assert_string_equal(json_string_value(json_object_get(got, "c")), "event");
	assert_int_equal(json_integer_value(json_object_get(got, "e")), 2);
	assert_string_equal(json_string_value(json_object_get(got, "b")), "binding");
	json_decref(got);
	free(p);
	free(defs);
	json_decref(act);

	/* empty pieces leave valid JSON */
	p = gust_fire_params(NULL, NULL, 0, &len);
	assert_string_equal(p, "{}");
	free(p);
	p = gust_fire_params("\"a\":1", "{ }", 3, &len);
	assert_string_equal(p, "{\"a\":1}");
	free(p);
	p = gust_fire_params("", "{\"b\":2}", 7, &len);
	assert_string_equal(p, "{\"b\":2}");
	free(p);

	/* a plain action; its defaults */
	assert_int_equal(gust_fire_resolve(lookup, NULL, "guest", "guest", "plain", &act, &defs),
	                 0);
	assert_string_equal(defs, "\"x\":1");
	free(defs);
	json_decref(act);
	/* the default package of another namespace, a private package, nothing */
	assert_int_equal(gust_fire_resolve(lookup, NULL, "guest", "other", "secret", &act, &defs),
	                 GUST_ENOENT);
	assert_null(act);
	assert_int_equal(
	    gust_fire_resolve(lookup, NULL, "nobody", "guest", "private/x", &act, &defs),
	    GUST_ENOENT);
	assert_int_equal(gust_fire_resolve(lookup, NULL, "guest", "guest", "missing", &act, &defs),
	                 GUST_ENOENT);

	json_decref(store);
}

static bool skip_feed(const char *key, void *arg)
{
	return gust_feed_is_param(*(int *)arg, key);
}

static void test_params_skip_feed(void **state)
{
	json_t *list = kvs("[{\"key\":\"topic\",\"value\":\"t\"},{\"key\":\"greeting\",\"value\":"
	                   "\"hi\"},{\"key\":\"batchSize\",\"value\":9}]");
	int kind = GUST_FEED_KAFKA;
	char *inner = gust_fire_params_inner(list, skip_feed, &kind);
	assert_string_equal(inner, "\"greeting\":\"hi\"");
	free(inner);
	json_decref(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_cron_five_fields),
	    cmocka_unit_test(test_cron_six_fields),
	    cmocka_unit_test(test_cron_ranges_lists_steps),
	    cmocka_unit_test(test_cron_names_and_days),
	    cmocka_unit_test(test_cron_invalid),
	    cmocka_unit_test(test_feed_kafka),
	    cmocka_unit_test(test_feed_redis),
	    cmocka_unit_test(test_feed_none_and_unknown),
	    cmocka_unit_test(test_feed_kafka_group),
	    cmocka_unit_test(test_feed_default_group),
	    cmocka_unit_test(test_policy),
	    cmocka_unit_test(test_binding_parse),
	    cmocka_unit_test(test_schedule_interval),
	    cmocka_unit_test(test_schedule_dates),
	    cmocka_unit_test(test_rule_targets),
	    cmocka_unit_test(test_params_merge_order),
	    cmocka_unit_test(test_params_skip_feed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
