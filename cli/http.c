/*
 * http.c - the gateway client: one libcurl request per call, Basic auth from
 * the uuid:key, JSON bodies, and the uniform reporting of failures.
 *
 * Redirects are not followed: following one would send the credentials to
 * whatever host the answer names.
 */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "cli.h"

/* Action code can be 48 MB and more once base64-encoded; anything past this is
 * not an answer a gateway would give, and must not eat the client's memory. */
#define CLI_MAX_ANSWER ((size_t)256 << 20)

typedef struct http_sink {
	char *data;
	size_t len;
	size_t cap;
	bool too_big;
	bool oom;
} http_sink;

static size_t http_write(char *p, size_t size, size_t nmemb, void *arg)
{
	http_sink *s = arg;
	size_t n = size * nmemb;
	if (n > CLI_MAX_ANSWER - s->len) {
		s->too_big = true;
		return 0;
	}
	if (s->len + n + 1 > s->cap) {
		size_t cap = s->cap ? s->cap : 4096;
		while (cap < s->len + n + 1)
			cap *= 2;
		char *d = realloc(s->data, cap);
		if (d == NULL) {
			s->oom = true;
			return 0;
		}
		s->data = d;
		s->cap = cap;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	s->data[s->len] = '\0';
	return n;
}

void cli_resp_free(cli_resp *r)
{
	free(r->body);
	r->body = NULL;
	r->len = 0;
}

int cli_http(cli *c, const char *method, const char *path, const char *body, size_t body_len,
             cli_resp *r)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	char *url = NULL, *user = NULL;
	struct curl_slist *hdrs = NULL, *h;
	http_sink sink = {0};
	int rv = CLI_EFAIL;
	CURL *curl = curl_easy_init();

	memset(r, 0, sizeof(*r));
	if (curl == NULL || asprintf(&url, "%s%s", c->apihost, path) < 0 ||
	    (user = strdup(c->auth)) == NULL) {
		url = NULL;
		cli_error("out of memory");
		goto out;
	}
	char *colon = strchr(user, ':'); /* checked by cli_config_resolve */
	*colon = '\0';

	const char *hdr_lines[] = {"Accept: application/json", "Content-Type: application/json",
	                           "Expect:", "User-Agent: gust-cli/0.1"};
	for (size_t i = 0; i < sizeof(hdr_lines) / sizeof(hdr_lines[0]); i++) {
		if ((h = curl_slist_append(hdrs, hdr_lines[i])) == NULL) {
			cli_error("out of memory");
			goto out;
		}
		hdrs = h;
	}

	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
	curl_easy_setopt(curl, CURLOPT_USERNAME, user);
	curl_easy_setopt(curl, CURLOPT_PASSWORD, colon + 1);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 15L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, http_write);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
	if (body != NULL) {
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
	} else if (strcmp(method, "GET") == 0) {
		curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
	}
	if (c->insecure) {
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(curl, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (c->verbose)
		fprintf(stderr, "> %s %s\n", method, url);

	CURLcode cr = curl_easy_perform(curl);
	if (sink.too_big) {
		cli_error("the answer from %s is larger than %zu MiB", c->apihost,
		          CLI_MAX_ANSWER >> 20);
		goto out;
	}
	if (sink.oom) {
		cli_error("out of memory reading the answer from %s", c->apihost);
		goto out;
	}
	if (cr != CURLE_OK) {
		cli_error("cannot reach %s: %s", c->apihost,
		          errbuf[0] != '\0' ? errbuf : curl_easy_strerror(cr));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
	if (c->verbose)
		fprintf(stderr, "< HTTP %ld, %zu bytes\n", r->status, sink.len);
	if (sink.data == NULL && (sink.data = strdup("")) == NULL) {
		cli_error("out of memory");
		goto out;
	}
	r->body = sink.data;
	r->len = sink.len;
	sink.data = NULL;
	rv = CLI_OK;
out:
	free(sink.data);
	curl_slist_free_all(hdrs);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(url);
	free(user);
	return rv;
}

/* A copy of at most max bytes of the first line of s, control characters
 * replaced, or NULL. */
static char *first_line(const char *s, size_t max)
{
	while (*s == ' ' || *s == '\t' || *s == '\r' || *s == '\n')
		s++;
	size_t n = strcspn(s, "\r\n");
	if (n > max)
		n = max;
	if (n == 0)
		return NULL;
	char *d = strndup(s, n);
	if (d != NULL)
		for (char *p = d; *p != '\0'; p++)
			if ((unsigned char)*p < 0x20 || *p == 0x7f)
				*p = '?';
	return d;
}

int cli_http_check(const cli *c, const cli_resp *r)
{
	if (r->status >= 200 && r->status < 300)
		return CLI_OK;

	json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	json_t *e = json_is_object(j) ? json_object_get(j, "error") : NULL;
	char *msg = NULL;
	if (json_is_string(e))
		msg = first_line(json_string_value(e), 1000);
	else if (e != NULL) /* an action's own error object, passed through */
		msg = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
	else
		msg = first_line(r->body, 200);
	json_decref(j);

	if (msg != NULL)
		cli_error("%s (HTTP %ld)", msg, r->status);
	else
		cli_error("the server answered without an error message (HTTP %ld)", r->status);
	free(msg);
	return CLI_EFAIL;
}

json_t *cli_resp_json(const cli_resp *r)
{
	json_error_t jerr;
	json_t *j = json_loadb(r->body, r->len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
	if (j == NULL)
		cli_error("the server's answer is not JSON: %s (HTTP %ld)", jerr.text, r->status);
	return j;
}

/* Writes the percent-encoding of s[0..n) at d and returns the end; only
 * RFC 3986 unreserved bytes stay as they are. d needs room for 3 * n bytes. */
static char *pct_encode(char *d, const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)s[i];
		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
			*d++ = (char)ch;
		} else {
			*d++ = '%';
			*d++ = hex[ch >> 4];
			*d++ = hex[ch & 15];
		}
	}
	return d;
}

/* "." and ".." would be folded away by URL normalization and name another
 * resource than the one the user typed. */
static bool bad_segment(const char *s, size_t n)
{
	return n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.');
}

int cli_entity_path(const cli *c, const char *collection, const char *name, char **pathp,
                    char **ns_out)
{
	const char *ns = "_", *rest = name;
	size_t nslen = 1;
	*pathp = NULL;
	if (name != NULL && name[0] == '/') {
		ns = name + 1;
		const char *slash = strchr(ns, '/');
		if (slash == NULL || slash[1] == '\0' || bad_segment(ns, (size_t)(slash - ns)))
			return cli_usage_error(c,
			                       "'%s' is not a name: a fully qualified name "
			                       "looks like /namespace/[package/]name",
			                       name);
		nslen = (size_t)(slash - ns);
		rest = slash + 1;
	}

	size_t cap = 32 + strlen(collection) + 3 * nslen + 3 * (name ? strlen(name) : 0);
	char *path = malloc(cap), *d = path;
	if (path == NULL) {
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	d = stpcpy(d, "/api/v1/namespaces/");
	d = pct_encode(d, ns, nslen);
	*d++ = '/';
	d = stpcpy(d, collection);
	for (int nseg = 0; rest != NULL; nseg++) {
		size_t n = strcspn(rest, "/");
		if (bad_segment(rest, n) || nseg == 2) {
			free(path);
			return cli_usage_error(c,
			                       "'%s' is not a name: use name, package/name or "
			                       "/namespace/[package/]name",
			                       name);
		}
		*d++ = '/';
		d = pct_encode(d, rest, n);
		rest = rest[n] == '/' ? rest + n + 1 : NULL;
	}
	*d = '\0';
	if (ns_out != NULL && (*ns_out = strndup(ns, nslen)) == NULL) {
		free(path);
		cli_error("out of memory");
		return CLI_EFAIL;
	}
	*pathp = path;
	return CLI_OK;
}
