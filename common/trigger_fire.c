/* trigger_fire.c - a trigger fire as activations, and the feeds of triggers
 * (see gust/fire.h). Shared by the gateway and gust-trigger so that a fire
 * from the API and one from a feed build the same requests. */
#include <ctype.h>
#include <strings.h>
#include <string.h>
#include <time.h>

#include "gust/fire.h"
#include "gust/scope.h"
#include "gust/integrity.h"
#include "gust/log.h"
#include "gust/util.h"

static const char *fire_jstr(json_t *o, const char *k, const char *def)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s ? s : def;
}

int gust_fire_action_from_json(json_t *rec, gust_fire_action *a)
{
	memset(a, 0, sizeof(*a));
	if (!json_is_object(rec))
		return GUST_EINVAL;
	json_t *exec = json_object_get(rec, "exec");
	json_t *limits = json_object_get(rec, "limits");
	if (json_is_array(json_object_get(exec, "components")))
		return GUST_ENOTSUP;
	a->version = fire_jstr(rec, "version", "0.0.1");
	a->kind = fire_jstr(exec, "kind", "");
	a->main = fire_jstr(exec, "main", "main");
	a->binary = json_is_true(json_object_get(exec, "binary"));
	a->code_key = fire_jstr(rec, "code_key", "");
	a->timeout_ms = (int)json_integer_value(json_object_get(limits, "timeout"));
	a->memory_mb = (int)json_integer_value(json_object_get(limits, "memory"));
	a->log_limit = json_integer_value(json_object_get(limits, "logs")) * 1024 * 1024;
	json_int_t c = json_integer_value(json_object_get(limits, "concurrency"));
	a->concurrency = c >= 1 && c <= 500 ? (int)c : 1;
	size_t i;
	json_t *ann;
	json_array_foreach(json_object_get(rec, "annotations"), i, ann)
	{
		if (strcmp(fire_jstr(ann, "key", ""), "egress") == 0)
			a->egress = json_is_true(json_object_get(ann, "value"));
		else if (strcmp(fire_jstr(ann, "key", ""), "binding") == 0)
			a->binding = json_object_get(ann, "value");
	}
	return 0;
}

/* Appends the members of the JSON object in body (already validated), with raw
 * newlines (only possible as whitespace in valid JSON) turned into spaces so
 * that the runtime gets exactly one line. Returns false for an empty object. */
static bool fire_append_inner(gust_buf *out, const char *body, size_t len)
{
	const char *open = memchr(body, '{', len);
	const char *close = body + len;
	while (close > open && close[-1] != '}')
		close--;
	if (open == NULL || close <= open + 1)
		return false;
	const char *s = open + 1, *e = close - 1;
	const char *t = s;
	while (t < e && (*t == ' ' || *t == '\n' || *t == '\r' || *t == '\t'))
		t++;
	if (t == e)
		return false;
	size_t at = out->len;
	gust_buf_append(out, s, (size_t)(e - s));
	/* memchr, not a byte loop: the payload of a fire is ~1 MB */
	for (char *q = out->data + at, *end = out->data + out->len;
	     (q = memchr(q, '\n', (size_t)(end - q))) != NULL; q++)
		*q = ' ';
	for (char *q = out->data + at, *end = out->data + out->len;
	     (q = memchr(q, '\r', (size_t)(end - q))) != NULL; q++)
		*q = ' ';
	return true;
}

char *gust_fire_params(const char *defaults, const char *params, size_t len, size_t *outlen)
{
	gust_buf b = {0};
	gust_buf_puts(&b, "{");
	bool any = false;
	if (defaults && defaults[0]) {
		gust_buf_puts(&b, defaults);
		any = true;
	}
	size_t mark = b.len;
	if (any)
		gust_buf_puts(&b, ",");
	if (!(params && len && fire_append_inner(&b, params, len))) {
		b.len = mark; /* drop the comma */
		b.data[mark] = '\0';
	}
	gust_buf_puts(&b, "}");
	*outlen = b.len;
	return gust_buf_steal(&b);
}

Gust__ActivationRequest *gust_fire_request_new(const gust_fire_action *a, const char *user,
                                               const char *api_host, const char *defaults,
                                               const char *params, size_t len, const char *cause)
{
	size_t n;
	char *p = gust_fire_params(defaults, params, len, &n);
	return gust_fire_request_take(a, user, api_host, p, n, cause);
}

Gust__ActivationRequest *gust_fire_request_take(const gust_fire_action *a, const char *user,
                                                const char *api_host, char *params, size_t len,
                                                const char *cause)
{
	Gust__ActivationRequest *q = gust_xcalloc(1, sizeof(*q));
	gust__activation_request__init(q);
	char id[33];
	gust_random_hex(id, 16);
	q->activation_id = gust_xstrdup(id);
	q->namespace_ = gust_xstrdup(a->ns);
	q->action = gust_xstrdup(a->name);
	q->version = gust_xstrdup(a->version);
	q->kind = gust_xstrdup(a->kind);
	q->main = gust_xstrdup(a->main);
	q->binary = a->binary;
	q->memory_mb = a->memory_mb;
	q->timeout_ms = a->timeout_ms;
	q->log_limit = a->log_limit;
	if (a->concurrency > 0)
		q->concurrency = a->concurrency;
	q->egress = a->egress;
	/* Carried as written; the invoker checks it and records what is wrong
	 * with it, so a bad binding is never dropped silently. */
	char *binding = a->binding ? json_dumps(a->binding, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	if (binding != NULL)
		q->binding = binding;
	q->code_key = gust_xstrdup(a->code_key);
	q->subject = gust_xstrdup(user);
	q->user = gust_xstrdup(user);
	q->api_host = gust_xstrdup(api_host ? api_host : "");
	q->accepted_ms = gust_wall_ms();
	q->deadline_ms = 0; /* the invoker applies the action's timeout from its start */
	if (cause)
		q->cause = gust_xstrdup(cause);
	q->params.data = (uint8_t *)params;
	q->params.len = len;
	/* Here, where the action was resolved and the caller's right to run it
	 * decided: the scheduler and the invoker run nothing without this MAC.
	 * No secret loaded (a daemon that failed to read it would not have
	 * started): the request goes unsigned, and is refused downstream. */
	if (gust_areq_sign(q) != 0)
		gust_log_error("FIRE-UNSIGNED",
		               "no cluster secret loaded: activation %s cannot be signed",
		               q->activation_id);
	return q;
}

void gust_fire_request_free(Gust__ActivationRequest *q)
{
	if (q == NULL)
		return;
	free(q->activation_id);
	free(q->namespace_);
	free(q->action);
	free(q->version);
	free(q->params.data);
	free(q->kind);
	free(q->main);
	free(q->code_key);
	free(q->mac.data);
	free(q->subject);
	free(q->api_host);
	free(q->user);
	if (q->cause != protobuf_c_empty_string)
		free(q->cause);
	if (q->binding != protobuf_c_empty_string)
		free(q->binding);
	free(q);
}

json_t *gust_fire_rule_targets(json_t *const *rules, size_t n, const char *ns, const char *name)
{
	json_t *out = json_array();
	for (size_t i = 0; i < n; i++) {
		json_t *rj = rules[i];
		json_t *t = json_object_get(rj, "trigger");
		json_t *a = json_object_get(rj, "action");
		if (strcmp(fire_jstr(t, "name", ""), name) != 0 ||
		    strcmp(fire_jstr(rj, "status", ""), "active") != 0)
			continue;
		/* action path "ns" or "ns/pkg" */
		const char *ap = fire_jstr(a, "path", "");
		const char *an = fire_jstr(a, "name", "");
		const char *slash = strchr(ap, '/');
		json_t *e = json_pack("{s:s++,s:s%}", "rule", ns, "/", fire_jstr(rj, "name", ""),
		                      "ns", ap, slash ? (size_t)(slash - ap) : strlen(ap));
		if (e == NULL)
			continue;
		json_object_set_new(e, "path",
		                    slash ? json_sprintf("%s/%s", slash + 1, an) : json_string(an));
		json_array_append_new(out, e);
	}
	return out;
}

char *gust_fire_params_inner(json_t *list, bool (*skip)(const char *key, void *arg), void *arg)
{
	json_t *obj = json_object();
	size_t i;
	json_t *p;
	json_array_foreach(list, i, p)
	{
		const char *k = fire_jstr(p, "key", NULL);
		json_t *v = json_object_get(p, "value");
		if (k && v && !(skip && skip(k, arg)))
			json_object_set(obj, k, v);
	}
	char *s = json_dumps(obj, JSON_COMPACT);
	json_decref(obj);
	if (s == NULL)
		return gust_xstrdup("");
	size_t n = strlen(s);
	char *inner = gust_xstrndup(s + 1, n >= 2 ? n - 2 : 0);
	free(s);
	return inner;
}

/* Merges kv lists: later lists override the keys of earlier ones. */
static json_t *fire_kv_merge(json_t *a, json_t *b)
{
	json_t *out = json_array();
	json_t *lists[2] = {a, b};
	for (int l = 0; l < 2; l++) {
		size_t i;
		json_t *p;
		json_array_foreach(lists[l], i, p)
		{
			const char *k = fire_jstr(p, "key", NULL);
			if (k == NULL)
				continue;
			size_t j;
			json_t *q;
			json_array_foreach(out, j, q)
			{
				if (strcmp(fire_jstr(q, "key", ""), k) == 0) {
					json_array_remove(out, j);
					break;
				}
			}
			json_array_append(out, p);
		}
	}
	return out;
}

static json_t *fire_binding_of(json_t *pkg)
{
	json_t *b = json_object_get(pkg, "binding");
	return json_is_object(b) && json_object_size(b) ? b : NULL;
}

int gust_fire_resolve(gust_fire_lookup_fn lookup, void *arg, const char *user, const char *ns,
                      const char *path, json_t **action, char **defaults)
{
	*action = NULL;
	*defaults = NULL;
	const char *slash = strchr(path, '/');
	if (slash == NULL) {
		/* The default package is private to its namespace. */
		if (strcmp(ns, user) != 0)
			return GUST_ENOENT;
		cleanup_free char *id = gust_xasprintf("%s/%s", ns, path);
		json_t *a = lookup(arg, "actions", id);
		if (a == NULL)
			return GUST_ENOENT;
		*action = a;
		*defaults = gust_fire_params_inner(json_object_get(a, "parameters"), NULL, NULL);
		return 0;
	}
	cleanup_free char *pid = gust_xstrndup(path, (size_t)(slash - path));
	cleanup_free char *pkey = gust_xasprintf("%s/%s", ns, pid);
	json_t *p = lookup(arg, "packages", pkey), *bound = NULL, *a = NULL, *params = NULL;
	int rv = GUST_ENOENT;
	if (p == NULL || (strcmp(ns, user) != 0 && !json_is_true(json_object_get(p, "publish"))))
		goto out;
	json_t *b = fire_binding_of(p);
	if (b) {
		const char *bns = fire_jstr(b, "namespace", NULL);
		const char *bname = fire_jstr(b, "name", NULL);
		if (bns == NULL || bname == NULL)
			goto out;
		cleanup_free char *bkey = gust_xasprintf("%s/%s", bns, bname);
		bound = lookup(arg, "packages", bkey);
		if (bound == NULL || fire_binding_of(bound) ||
		    (strcmp(bns, ns) != 0 && !json_is_true(json_object_get(bound, "publish"))))
			goto out;
		cleanup_free char *aid = gust_xasprintf("%s/%s/%s", bns, bname, slash + 1);
		if ((a = lookup(arg, "actions", aid)) == NULL)
			goto out;
		json_t *m1 = fire_kv_merge(json_object_get(bound, "parameters"),
		                           json_object_get(p, "parameters"));
		params = fire_kv_merge(m1, json_object_get(a, "parameters"));
		json_decref(m1);
	} else {
		cleanup_free char *aid = gust_xasprintf("%s/%s", ns, path);
		if ((a = lookup(arg, "actions", aid)) == NULL)
			goto out;
		params = fire_kv_merge(json_object_get(p, "parameters"),
		                       json_object_get(a, "parameters"));
	}
	*defaults = gust_fire_params_inner(params, NULL, NULL);
	*action = steal_pointer(&a);
	rv = 0;
out:
	json_decref(a);
	json_decref(params);
	json_decref(p);
	json_decref(bound);
	return rv;
}

char *gust_fire_trigger_record(const char *id, const char *ns, const char *name, const char *user,
                               int64_t start_ms, const char *params, json_t *logs)
{
	json_t *result = params ? json_loads(params, 0, NULL) : NULL;
	json_t *rec = json_pack(
	    "{s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:i,s:{s:s,s:i,s:b,s:o},s:o,"
	    "s:[{s:s,s:s++}],s:b}",
	    "activationId", id, "namespace", ns, "name", name, "version", "0.0.1", "subject", user,
	    "start", (json_int_t)start_ms, "end", (json_int_t)start_ms, "duration", 0, "response",
	    "status", "success", "statusCode", 0, "success", true, "result",
	    result ? result : json_object(), "logs", logs ? json_incref(logs) : json_array(),
	    "annotations", "key", "path", "value", ns, "/", name, "publish", false);
	char *s = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
	json_decref(rec);
	return s;
}

/* ---- cron ---------------------------------------------------------------- */

static const char *const cron_dow_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
static const char *const cron_mon_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                             "jul", "aug", "sep", "oct", "nov", "dec"};

/* A number or (for month and weekday fields) a three-letter name. */
static bool cron_value(const char **sp, int lo, const char *const *names, int nnames, int *out)
{
	const char *s = *sp;
	if (isdigit((unsigned char)*s)) {
		long v = 0;
		while (isdigit((unsigned char)*s) && v < 1000)
			v = v * 10 + (*s++ - '0');
		*out = (int)v;
		*sp = s;
		return true;
	}
	for (int i = 0; names && i < nnames; i++)
		if (strncasecmp(s, names[i], 3) == 0) {
			*out = i + lo;
			*sp = s + 3;
			return true;
		}
	return false;
}

/* One field: "*", "*\/n", "a", "a-b", "a-b/n", "a/n", comma lists. */
static bool cron_field(const char *f, int lo, int hi, const char *const *names, int nnames,
                       uint64_t *bits, bool *star)
{
	*bits = 0;
	*star = f[0] == '*' && f[1] == '\0';
	const char *s = f;
	for (;;) {
		int a, b, step = 1;
		if (*s == '*') {
			a = lo, b = hi;
			s++;
		} else {
			if (!cron_value(&s, lo, names, nnames, &a))
				return false;
			b = a;
			if (*s == '-') {
				s++;
				if (!cron_value(&s, lo, names, nnames, &b))
					return false;
			}
		}
		if (*s == '/') {
			s++;
			if (!cron_value(&s, 0, NULL, 0, &step) || step < 1)
				return false;
			if (a == b)
				b = hi;
		}
		if (a < lo || b > (names == cron_dow_names ? 7 : hi) || a > b)
			return false;
		for (int v = a; v <= b; v += step)
			*bits |= 1ull << (names == cron_dow_names && v == 7 ? 0 : v);
		if (*s == '\0')
			return true;
		if (*s++ != ',')
			return false;
	}
}

int gust_cron_parse(const char *expr, gust_cron *c, gust_error **err)
{
	memset(c, 0, sizeof(*c));
	char buf[256];
	if (expr == NULL || strlen(expr) >= sizeof(buf))
		return gust_error_set(err, GUST_EINVAL, "cron: expression missing or too long");
	snprintf(buf, sizeof(buf), "%s", expr);
	char *fields[7];
	int n = 0;
	char *save = NULL;
	for (char *t = strtok_r(buf, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
		if (n == 6)
			return gust_error_set(err, GUST_EINVAL, "cron '%s': more than 6 fields",
			                      expr);
		fields[n++] = t;
	}
	if (n != 5 && n != 6)
		return gust_error_set(err, GUST_EINVAL,
		                      "cron '%s': expected 5 fields (min hour dom mon dow) or 6 "
		                      "(seconds first)",
		                      expr);
	static const char *const what[] = {"second",       "minute", "hour",
	                                   "day of month", "month",  "day of week"};
	int o = n == 6 ? 1 : 0;
	int bad = -1;
	uint64_t v = 0;
	bool star;
	if (n == 6) {
		if (!cron_field(fields[0], 0, 59, NULL, 0, &c->sec, &star))
			bad = 0;
	} else {
		c->sec = 1; /* second 0 */
	}
	if (bad < 0 && !cron_field(fields[o], 0, 59, NULL, 0, &c->min, &star))
		bad = 1;
	if (bad < 0 && !cron_field(fields[o + 1], 0, 23, NULL, 0, &v, &star))
		bad = 2;
	c->hour = (uint32_t)v;
	if (bad < 0 && !cron_field(fields[o + 2], 1, 31, NULL, 0, &v, &c->dom_star))
		bad = 3;
	c->dom = (uint32_t)v;
	if (bad < 0 && !cron_field(fields[o + 3], 1, 12, cron_mon_names, 12, &v, &star))
		bad = 4;
	c->mon = (uint32_t)v;
	if (bad < 0 && !cron_field(fields[o + 4], 0, 6, cron_dow_names, 7, &v, &c->dow_star))
		bad = 5;
	c->dow = (uint32_t)v;
	if (bad < 0)
		return 0;
	return gust_error_set(err, GUST_EINVAL, "cron '%s': the %s field '%s' is not valid", expr,
	                      what[bad], fields[bad == 0 ? 0 : o + bad - 1]);
}

static bool cron_day_ok(const gust_cron *c, const struct tm *tm)
{
	bool dom = c->dom >> tm->tm_mday & 1, dow = c->dow >> tm->tm_wday & 1;
	/* As Vixie cron: when both day fields are restricted, either may match. */
	if (!c->dom_star && !c->dow_star)
		return dom || dow;
	return dom && dow;
}

int64_t gust_cron_next(const gust_cron *c, int64_t after)
{
	/* Minute by minute (then the seconds inside a matching minute): at most
	 * about 2.6M steps for five years, and usually a handful. */
	int64_t t = after + 1;
	int64_t minute = t - (t % 60 + 60) % 60;
	for (int64_t i = 0; i < 5LL * 366 * 1440; i++, minute += 60) {
		time_t tt = (time_t)minute;
		struct tm tm;
		gmtime_r(&tt, &tm);
		if (!(c->mon >> (tm.tm_mon + 1) & 1)) {
			/* skip to the first minute of the next month */
			tm.tm_mon += 1, tm.tm_mday = 1, tm.tm_hour = 0, tm.tm_min = 0,
			                tm.tm_sec = 0;
			minute = (int64_t)timegm(&tm) - 60;
			continue;
		}
		if (!cron_day_ok(c, &tm)) {
			tm.tm_mday += 1, tm.tm_hour = 0, tm.tm_min = 0, tm.tm_sec = 0;
			minute = (int64_t)timegm(&tm) - 60;
			continue;
		}
		if (!(c->hour >> tm.tm_hour & 1)) {
			tm.tm_hour += 1, tm.tm_min = 0, tm.tm_sec = 0;
			minute = (int64_t)timegm(&tm) - 60;
			continue;
		}
		if (!(c->min >> tm.tm_min & 1))
			continue;
		for (int s = 0; s < 60; s++)
			if ((c->sec >> s & 1) && minute + s >= t)
				return minute + s;
	}
	return -1;
}

/* ---- feeds --------------------------------------------------------------- */

int64_t gust_feed_next(const gust_feed *c, int64_t after)
{
	int64_t next;
	if (c->start_ms && after < c->start_ms - 1)
		after = c->start_ms - 1;
	if (c->has_cron) {
		int64_t s = gust_cron_next(&c->cron, after < 0 ? -1 : after / 1000);
		next = s < 0 ? -1 : s * 1000;
	} else {
		if (c->interval_ms <= 0)
			return -1;
		/* intervals count from startDate (or the epoch), so every instance
		 * agrees on the ticks */
		int64_t base = c->start_ms;
		int64_t k = after < base ? 0 : (after - base) / c->interval_ms + 1;
		next = base + k * c->interval_ms;
	}
	if (next >= 0 && c->stop_ms && next >= c->stop_ms)
		return -1;
	return next;
}

static const struct {
	const char *name;
	int kind;
} feed_names[] = {
    {"kafka", GUST_FEED_KAFKA},
    {"kafkaFeed", GUST_FEED_KAFKA},
    {"messageHubFeed", GUST_FEED_KAFKA},
    {"redis-stream", GUST_FEED_REDIS_STREAM},
    {"redisStream", GUST_FEED_REDIS_STREAM},
    {"redis-pubsub", GUST_FEED_REDIS_PUBSUB},
    {"redisPubsub", GUST_FEED_REDIS_PUBSUB},
    {"schedule", GUST_FEED_SCHEDULE},
    {"alarm", GUST_FEED_SCHEDULE},
    {"interval", GUST_FEED_SCHEDULE},
};

const char *gust_feed_kind_name(int kind)
{
	switch (kind) {
	case GUST_FEED_KAFKA:
		return "kafka";
	case GUST_FEED_REDIS_STREAM:
		return "redis-stream";
	case GUST_FEED_REDIS_PUBSUB:
		return "redis-pubsub";
	case GUST_FEED_SCHEDULE:
		return "schedule";
	}
	return "none";
}

static const char *const feed_params_common[] = {"batchSize", "maxWaitMs", "maxAttempts", "inOrder",
                                                 NULL};
static const char *const feed_params_kafka[] = {"brokers",       "topic",           "isJSONData",
                                                "isBinaryValue", "isBinaryKey",     "groupId",
                                                "startFrom",     "deadLetterTopic", NULL};
static const char *const feed_params_stream[] = {"redis",   "stream",           "group",
                                                 "startId", "deadLetterStream", NULL};
static const char *const feed_params_pubsub[] = {"redis", "channels", "patterns", NULL};
static const char *const feed_params_schedule[] = {
    "cron",     "intervalMs", "intervalSeconds", "startDate",
    "stopDate", "payload",    "trigger_payload", NULL};

static bool feed_in(const char *const *v, const char *key)
{
	for (; *v; v++)
		if (strcmp(*v, key) == 0)
			return true;
	return false;
}

bool gust_feed_is_param(int kind, const char *key)
{
	switch (kind) {
	case GUST_FEED_KAFKA:
		return feed_in(feed_params_common, key) || feed_in(feed_params_kafka, key);
	case GUST_FEED_REDIS_STREAM:
		return feed_in(feed_params_common, key) || feed_in(feed_params_stream, key);
	case GUST_FEED_REDIS_PUBSUB:
		return feed_in(feed_params_common, key) || feed_in(feed_params_pubsub, key);
	case GUST_FEED_SCHEDULE:
		return feed_in(feed_params_schedule, key);
	}
	return false;
}

void gust_feed_clear(gust_feed *f)
{
	free(f->brokers);
	free(f->topic);
	free(f->group);
	free(f->dead_letter);
	free(f->redis);
	free(f->stream);
	free(f->start_id);
	json_decref(f->channels);
	json_decref(f->patterns);
	json_decref(f->payload);
	memset(f, 0, sizeof(*f));
}

/* A boolean parameter: JSON true/false or the strings "true"/"false". */
static int feed_bool(json_t *p, const char *k, bool def, bool *out, gust_error **err)
{
	json_t *v = json_object_get(p, k);
	*out = def;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	const char *s = json_string_value(v);
	if (s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
		*out = s[0] == 't';
		return 0;
	}
	return gust_error_set(err, GUST_EINVAL, "feed parameter '%s' must be true or false", k);
}

static int feed_int(json_t *p, const char *k, int64_t def, int64_t lo, int64_t hi, int64_t *out,
                    gust_error **err)
{
	json_t *v = json_object_get(p, k);
	*out = def;
	if (v == NULL || json_is_null(v))
		return 0;
	const char *s = json_string_value(v);
	char *end = NULL;
	if (json_is_integer(v))
		*out = json_integer_value(v);
	else if (json_is_real(v))
		*out = (int64_t)json_real_value(v);
	else if (s && *s && (*out = strtoll(s, &end, 10), *end == '\0'))
		;
	else
		return gust_error_set(err, GUST_EINVAL, "feed parameter '%s' must be an integer",
		                      k);
	if (*out < lo || *out > hi)
		return gust_error_set(err, GUST_EINVAL,
		                      "feed parameter '%s' must be between %lld and %lld", k,
		                      (long long)lo, (long long)hi);
	return 0;
}

static int feed_str(json_t *p, const char *k, bool required, char **out, gust_error **err)
{
	json_t *v = json_object_get(p, k);
	*out = NULL;
	if (v == NULL || json_is_null(v)) {
		if (required)
			return gust_error_set(err, GUST_EINVAL, "feed parameter '%s' is required",
			                      k);
		return 0;
	}
	const char *s = json_string_value(v);
	if (s == NULL || *s == '\0' || strlen(s) > 1024)
		return gust_error_set(err, GUST_EINVAL,
		                      "feed parameter '%s' must be a non-empty string", k);
	*out = gust_xstrdup(s);
	return 0;
}

/* A list parameter: a string (comma-separated) or an array of strings. */
static int feed_list(json_t *p, const char *k, json_t **out, gust_error **err)
{
	json_t *v = json_object_get(p, k);
	*out = json_array();
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		char *dup = gust_xstrdup(json_string_value(v)), *save = NULL;
		for (char *t = strtok_r(dup, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
			json_array_append_new(*out, json_string(t));
		free(dup);
		return 0;
	}
	size_t i;
	json_t *e;
	if (!json_is_array(v))
		goto bad;
	json_array_foreach(v, i, e)
	{
		if (!json_is_string(e) || json_string_length(e) == 0)
			goto bad;
		json_array_append(*out, e);
	}
	return 0;
bad:
	return gust_error_set(err, GUST_EINVAL,
	                      "feed parameter '%s' must be a string or an array of strings", k);
}

/* A date: milliseconds since the epoch (number) or ISO 8601 UTC
 * ("2026-12-01T10:00:00Z", fractions ignored). */
static int feed_date(json_t *p, const char *k, int64_t *out, gust_error **err)
{
	json_t *v = json_object_get(p, k);
	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_is_integer(v) && json_integer_value(v) > 0) {
		*out = json_integer_value(v);
		return 0;
	}
	const char *s = json_string_value(v);
	struct tm tm = {0};
	const char *rest = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (rest == NULL)
		return gust_error_set(err, GUST_EINVAL,
		                      "feed parameter '%s' must be ms since the epoch or an ISO "
		                      "8601 UTC date",
		                      k);
	*out = (int64_t)timegm(&tm) * 1000;
	return 0;
}

/* A name on the cluster's Redis, made full (gust/scope.h): in place. */
static int feed_scope(const char *ns, const char *param, char **name, gust_error **err)
{
	char *full = NULL;
	int rv = gust_scope_name(ns, param, *name, &full, err);
	if (rv != 0)
		return rv;
	free(*name);
	*name = full;
	return 0;
}

static int feed_scope_list(const char *ns, const char *param, json_t *list, gust_error **err)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e)
	{
		char *full = NULL;
		int rv = gust_scope_name(ns, param, json_string_value(e), &full, err);
		if (rv != 0)
			return rv;
		json_array_set_new(list, i, json_string(full));
		free(full);
	}
	return 0;
}

/* XGROUP CREATE's id: "$", or MS[-SEQ]. */
static int feed_stream_id(const char *s, gust_error **err)
{
	bool ok = strcmp(s, "$") == 0;
	if (!ok) {
		const char *p = s;
		size_t digits = strspn(p, "0123456789");
		ok = digits > 0 && digits <= 20;
		p += digits;
		if (ok && *p == '-') {
			digits = strspn(++p, "0123456789");
			ok = digits > 0 && digits <= 20;
			p += digits;
		}
		ok = ok && *p == '\0';
	}
	return ok ? 0
	          : gust_error_set(err, GUST_EINVAL,
	                           "feed parameter 'startId' must be $, 0 or an entry id (ms-seq)");
}

/* A Kafka consumer group: a broker granted to several namespaces is one
 * group namespace for all of them, so the names Gust makes ("gust-<ns>-...")
 * are reserved to their namespace. */
static int feed_kafka_group(const char *ns, const char *group, gust_error **err)
{
	int rv = gust_scope_group("feed parameter 'groupId'", group, err);
	if (rv != 0)
		return rv;
	size_t nl = strlen(ns);
	if (strncmp(group, "gust-", 5) == 0 &&
	    !(strncmp(group + 5, ns, nl) == 0 && group[5 + nl] == '-'))
		return gust_error_set(err, GUST_EPERM,
		                      "feed parameter 'groupId': names starting with gust- are "
		                      "reserved (gust-%s-... is this namespace's)",
		                      ns);
	return 0;
}

bool gust_feed_external(const gust_feed *f)
{
	return f->kind == GUST_FEED_KAFKA ||
	       ((f->kind == GUST_FEED_REDIS_STREAM || f->kind == GUST_FEED_REDIS_PUBSUB) &&
	        f->redis != NULL);
}

int gust_feed_check_policy(const gust_feed *f, const gust_policy *p, gust_error **err)
{
	if (f->kind == GUST_FEED_KAFKA)
		return gust_policy_targets(p, "feed parameter 'brokers'", f->brokers, err);
	if (gust_feed_external(f))
		return gust_policy_target(p, "feed parameter 'redis'", f->redis, err);
	return 0;
}

int gust_feed_parse(json_t *trigger, gust_feed *f, gust_error **err)
{
	memset(f, 0, sizeof(*f));
	const char *feed = NULL;
	size_t i;
	json_t *e;
	json_array_foreach(json_object_get(trigger, "annotations"), i, e)
	{
		if (strcmp(fire_jstr(e, "key", ""), "feed") == 0)
			feed = json_string_value(json_object_get(e, "value"));
	}
	if (feed == NULL)
		return GUST_ENOENT;
	const char *last = strrchr(feed, '/');
	last = last ? last + 1 : feed;
	for (i = 0; i < sizeof(feed_names) / sizeof(feed_names[0]); i++)
		if (strcmp(last, feed_names[i].name) == 0)
			f->kind = feed_names[i].kind;
	if (f->kind == GUST_FEED_NONE)
		return gust_error_set(err, GUST_EINVAL,
		                      "unknown feed '%.128s' (kafka, redis-stream, redis-pubsub or "
		                      "schedule)",
		                      feed);
	/* the parameters as one object */
	json_t *p = json_object();
	json_array_foreach(json_object_get(trigger, "parameters"), i, e)
	{
		const char *k = fire_jstr(e, "key", NULL);
		if (k && json_object_get(e, "value"))
			json_object_set(p, k, json_object_get(e, "value"));
	}
	int64_t v;
	int rv;
	const char *ns = fire_jstr(trigger, "namespace", "");
	const char *name = fire_jstr(trigger, "name", "");
	if ((rv = feed_int(p, "batchSize", f->kind == GUST_FEED_REDIS_PUBSUB ? 1 : 100, 1, 100000,
	                   &v, err)) != 0)
		goto out;
	f->batch_size = (int)v;
	if ((rv = feed_int(p, "maxWaitMs", 100, 0, 60000, &v, err)) != 0)
		goto out;
	f->max_wait_ms = (int)v;
	if ((rv = feed_int(p, "maxAttempts", 5, 1, 1000, &v, err)) != 0)
		goto out;
	f->max_attempts = (int)v;
	if ((rv = feed_bool(p, "inOrder", false, &f->in_order, err)) != 0)
		goto out;
	switch (f->kind) {
	case GUST_FEED_KAFKA: {
		json_t *brokers = NULL;
		if ((rv = feed_list(p, "brokers", &brokers, err)) != 0) {
			json_decref(brokers);
			goto out;
		}
		gust_buf b = {0};
		json_array_foreach(brokers, i, e)
		{
			if (b.len)
				gust_buf_puts(&b, ",");
			gust_buf_puts(&b, json_string_value(e));
		}
		json_decref(brokers);
		if (b.len == 0) {
			gust_buf_free(&b);
			rv = gust_error_set(err, GUST_EINVAL,
			                    "feed parameter 'brokers' is required");
			goto out;
		}
		f->brokers = gust_buf_steal(&b);
		char *start = NULL;
		if ((rv = feed_str(p, "topic", true, &f->topic, err)) != 0 ||
		    (rv = feed_str(p, "groupId", false, &f->group, err)) != 0 ||
		    (rv = feed_str(p, "deadLetterTopic", false, &f->dead_letter, err)) != 0 ||
		    (rv = feed_str(p, "startFrom", false, &start, err)) != 0 ||
		    (rv = feed_bool(p, "isJSONData", false, &f->json_data, err)) != 0 ||
		    (rv = feed_bool(p, "isBinaryValue", false, &f->binary_value, err)) != 0 ||
		    (rv = feed_bool(p, "isBinaryKey", false, &f->binary_key, err)) != 0) {
			free(start);
			goto out;
		}
		if (start && strcmp(start, "earliest") != 0 && strcmp(start, "latest") != 0) {
			free(start);
			rv =
			    gust_error_set(err, GUST_EINVAL,
			                   "feed parameter 'startFrom' must be earliest or latest");
			goto out;
		}
		f->start_latest = start && strcmp(start, "latest") == 0;
		free(start);
		if (f->json_data && f->binary_value) {
			rv = gust_error_set(err, GUST_EINVAL,
			                    "feed parameters 'isJSONData' and 'isBinaryValue' "
			                    "exclude each other");
			goto out;
		}
		/* A group the tenant names is checked; the default is made of
		 * names the gateway already checked. */
		if (f->group != NULL && (rv = feed_kafka_group(ns, f->group, err)) != 0)
			goto out;
		if (f->group == NULL)
			f->group = gust_xasprintf("gust-%s-%s", ns, name);
		if (f->dead_letter == NULL)
			f->dead_letter = gust_xasprintf("%s.dlq", f->topic);
		break;
	}
	case GUST_FEED_REDIS_STREAM:
		if ((rv = feed_str(p, "redis", false, &f->redis, err)) != 0 ||
		    (rv = feed_str(p, "stream", true, &f->stream, err)) != 0 ||
		    (rv = feed_str(p, "group", false, &f->group, err)) != 0 ||
		    (rv = feed_str(p, "startId", false, &f->start_id, err)) != 0 ||
		    (rv = feed_str(p, "deadLetterStream", false, &f->dead_letter, err)) != 0)
			goto out;
		if (f->group != NULL &&
		    (rv = gust_scope_group("feed parameter 'group'", f->group, err)) != 0)
			goto out;
		if (f->group == NULL)
			f->group = gust_xasprintf("gust-%s-%s", ns, name);
		if (f->start_id == NULL)
			f->start_id = gust_xstrdup("0"); /* the whole stream: nothing missed */
		if ((rv = feed_stream_id(f->start_id, err)) != 0)
			goto out;
		if (f->redis == NULL &&
		    ((rv = feed_scope(ns, "feed parameter 'stream'", &f->stream, err)) != 0 ||
		     (f->dead_letter && (rv = feed_scope(ns, "feed parameter 'deadLetterStream'",
		                                         &f->dead_letter, err)) != 0)))
			goto out;
		if (f->dead_letter == NULL)
			f->dead_letter = gust_xasprintf("%s.dlq", f->stream);
		break;
	case GUST_FEED_REDIS_PUBSUB:
		if ((rv = feed_str(p, "redis", false, &f->redis, err)) != 0 ||
		    (rv = feed_list(p, "channels", &f->channels, err)) != 0 ||
		    (rv = feed_list(p, "patterns", &f->patterns, err)) != 0)
			goto out;
		if (json_array_size(f->channels) + json_array_size(f->patterns) == 0) {
			rv = gust_error_set(err, GUST_EINVAL,
			                    "feed parameter 'channels' or 'patterns' is required");
			goto out;
		}
		if (f->redis == NULL &&
		    ((rv = feed_scope_list(ns, "feed parameter 'channels'", f->channels, err)) !=
		         0 ||
		     (rv = feed_scope_list(ns, "feed parameter 'patterns'", f->patterns, err)) !=
		         0))
			goto out;
		break;
	case GUST_FEED_SCHEDULE: {
		char *cron = NULL;
		if ((rv = feed_str(p, "cron", false, &cron, err)) != 0)
			goto out;
		if (cron) {
			rv = gust_cron_parse(cron, &f->cron, err);
			free(cron);
			if (rv != 0)
				goto out;
			f->has_cron = true;
		}
		int64_t ms, s;
		if ((rv = feed_int(p, "intervalMs", 0, 100, 366LL * 86400000, &ms, err)) != 0 ||
		    (rv = feed_int(p, "intervalSeconds", 0, 1, 366LL * 86400, &s, err)) != 0)
			goto out;
		f->interval_ms = ms ? ms : s * 1000;
		if (f->has_cron == (f->interval_ms != 0)) {
			rv = gust_error_set(err, GUST_EINVAL,
			                    "a schedule needs exactly one of 'cron', 'intervalMs' "
			                    "and 'intervalSeconds'");
			goto out;
		}
		if ((rv = feed_date(p, "startDate", &f->start_ms, err)) != 0 ||
		    (rv = feed_date(p, "stopDate", &f->stop_ms, err)) != 0)
			goto out;
		if (f->stop_ms && f->stop_ms <= f->start_ms) {
			rv = gust_error_set(err, GUST_EINVAL,
			                    "'stopDate' must be after 'startDate'");
			goto out;
		}
		json_t *pl = json_object_get(p, "payload");
		if (pl == NULL)
			pl = json_object_get(p, "trigger_payload");
		if (pl && !json_is_object(pl)) {
			rv = gust_error_set(err, GUST_EINVAL,
			                    "feed parameter 'payload' must be a JSON object");
			goto out;
		}
		f->payload = pl ? json_incref(pl) : NULL;
		break;
	}
	}
	rv = 0;
out:
	json_decref(p);
	if (rv != 0)
		gust_feed_clear(f);
	return rv;
}
