/* binding.c - an action's output binding: parsing and the checks of where it
 * may publish (gust/binding.h). */
#include <jansson.h>
#include <string.h>

#include "gust/binding.h"
#include "gust/scope.h"
#include "gust/util.h"

static int bind_fail(char **why, const char *msg)
{
	*why = gust_xstrdup(msg);
	return GUST_EINVAL;
}

static int bind_fail_err(char **why, int rv, gust_error *e)
{
	*why = gust_xstrdup(gust_error_msg(e));
	gust_error_free(e);
	return rv;
}

static bool bind_topic_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 249)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

static const char *bind_str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));
	return s && s[0] ? s : NULL;
}

int gust_binding_parse(const char *ns, const char *text, gust_binding *t, char **why)
{
	memset(t, 0, sizeof(*t));
	*why = NULL;
	json_t *v = json_loads(text ? text : "", JSON_DECODE_ANY, NULL);
	/* `wsk action update -a binding '{...}'` stores an object; a string
	 * holding the same JSON is taken too. */
	if (json_is_string(v)) {
		json_t *inner = json_loads(json_string_value(v), 0, NULL);
		json_decref(v);
		v = inner;
	}
	int rv = 0;
	json_t *k = json_object_get(v, "kafka"), *r = json_object_get(v, "redis");
	if (!json_is_object(v))
		rv = bind_fail(why, "the binding is not a JSON object");
	else if (json_object_size(v) != 1 || (k == NULL) == (r == NULL))
		rv = bind_fail(why, "the binding needs exactly one of \"kafka\" or \"redis\"");
	else if (k != NULL) {
		const char *brokers = bind_str(k, "brokers"), *topic = bind_str(k, "topic");
		if (brokers == NULL)
			rv =
			    bind_fail(why, "kafka binding: \"brokers\" (host:port,...) is missing");
		else if (strlen(brokers) > 4096)
			rv = bind_fail(why, "kafka binding: \"brokers\" is longer than 4096 bytes");
		else if (topic == NULL || !bind_topic_ok(topic))
			rv = bind_fail(why, "kafka binding: \"topic\" is missing or not a topic "
			                    "name ([A-Za-z0-9._-], 1-249 characters)");
		else {
			t->kind = GUST_BINDING_KAFKA;
			t->addr = gust_xstrdup(brokers);
			t->name = gust_xstrdup(topic);
			t->label = gust_xasprintf("kafka:%s", topic);
		}
	} else {
		const char *stream = bind_str(r, "stream"), *list = bind_str(r, "list");
		const char *addr = bind_str(r, "address");
		gust_error *e = NULL;
		char *full = NULL;
		if (!json_is_object(r) || (stream == NULL) == (list == NULL))
			rv = bind_fail(
			    why, "redis binding: needs exactly one of \"stream\" or \"list\"");
		else if (json_object_get(r, "address") != NULL && addr == NULL)
			rv = bind_fail(why, "redis binding: \"address\" must be host:port");
		else if (strlen(stream ? stream : list) > 1024)
			rv =
			    bind_fail(why, "redis binding: the key name is longer than 1024 bytes");
		else if (addr == NULL &&
		         (rv = gust_scope_name(
		              ns, stream ? "redis binding: \"stream\"" : "redis binding: \"list\"",
		              stream ? stream : list, &full, &e)) != 0)
			rv = bind_fail_err(why, rv, e);
		else {
			t->kind = stream ? GUST_BINDING_STREAM : GUST_BINDING_LIST;
			t->addr = addr ? gust_xstrdup(addr) : NULL;
			t->name = full ? full : gust_xstrdup(stream ? stream : list);
			full = NULL;
			t->label =
			    gust_xasprintf("redis-%s:%s", stream ? "stream" : "list", t->name);
		}
		free(full);
	}
	json_decref(v);
	return rv;
}

void gust_binding_clear(gust_binding *t)
{
	free(t->addr);
	free(t->name);
	free(t->label);
	memset(t, 0, sizeof(*t));
}

bool gust_binding_external(const gust_binding *b)
{
	return b->kind == GUST_BINDING_KAFKA || b->addr != NULL;
}

int gust_binding_check_policy(const gust_binding *b, const gust_policy *p, char **why)
{
	*why = NULL;
	gust_error *e = NULL;
	int rv = 0;
	if (b->kind == GUST_BINDING_KAFKA)
		rv = gust_policy_targets(p, "kafka binding: \"brokers\"", b->addr, &e);
	else if (b->addr != NULL)
		rv = gust_policy_target(p, "redis binding: \"address\"", b->addr, &e);
	return rv != 0 ? bind_fail_err(why, rv, e) : 0;
}
