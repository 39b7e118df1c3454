/* egress.c - the egress grant and the entries of the egress policy (see
 * gust/egress.h). */
#include <arpa/inet.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/egress.h"
#include "gust/scope.h"
#include "gust/util.h"

/* A DNS name: letters, digits, '-', '_' and dots, labels of 1-63, at most
 * 253 in all, not all digits and dots (that is a malformed address). */
static bool name_ok(const char *s)
{
	size_t n = strlen(s), label = 0;
	bool alpha = false;
	if (n == 0 || n > 253 || s[0] == '.' || s[0] == '-')
		return false;
	for (const char *p = s; *p; p++) {
		char c = *p;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '_'))
			return false;
		if (!(c >= '0' && c <= '9'))
			alpha = true;
		if (++label > 63)
			return false;
	}
	return alpha;
}

int gust_egress_entry_check(const char *entry, int *family, char *why, size_t whylen)
{
	*family = 0;
	if (entry == NULL || *entry == '\0' || strlen(entry) > 253) {
		snprintf(why, whylen, "an entry is an address, address/prefix or DNS name");
		return -1;
	}
	char addr[64];
	const char *slash = strchr(entry, '/');
	size_t alen = slash ? (size_t)(slash - entry) : strlen(entry);
	if (alen < sizeof(addr)) {
		memcpy(addr, entry, alen);
		addr[alen] = '\0';
		unsigned char buf[16];
		int fam = inet_pton(AF_INET, addr, buf) == 1    ? 4
		          : inet_pton(AF_INET6, addr, buf) == 1 ? 6
		                                                : 0;
		if (fam != 0) {
			if (slash != NULL) {
				char *end;
				long len = strtol(slash + 1, &end, 10);
				if (slash[1] < '0' || slash[1] > '9' || *end != '\0' || len < 0 ||
				    len > (fam == 4 ? 32 : 128)) {
					snprintf(why, whylen,
					         "'%s': the prefix length must be 0 to %d", entry,
					         fam == 4 ? 32 : 128);
					return -1;
				}
			}
			*family = fam;
			return 0;
		}
	}
	if (slash == NULL && name_ok(entry))
		return 0;
	snprintf(why, whylen,
	         "'%.200s' is neither an IPv4/IPv6 address, an address/prefix nor a DNS name",
	         entry);
	return -1;
}

bool gust_egress_granted_doc(const char *doc, size_t len)
{
	json_t *j = json_loadb(doc, len, 0, NULL);
	bool on = json_is_true(json_object_get(j, "egress"));
	json_decref(j);
	return on;
}

int gust_egress_granted(gust_etcd *e, const char *ns, bool *granted, gust_error **err)
{
	*granted = false;
	cleanup_free char *key = gust_xasprintf("%s%s", GUST_GRANTS_PREFIX, ns);
	gust_kv kv = {0};
	int rv = gust_etcd_get(e, key, &kv, err);
	if (rv == GUST_ENOENT) {
		gust_error_free(*err);
		*err = NULL;
		return 0;
	}
	if (rv != 0)
		return rv;
	*granted = gust_egress_granted_doc(kv.value, kv.value_len);
	gust_kv_clear(&kv);
	return 0;
}
