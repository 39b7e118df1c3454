/* stores.c - credentials for etcd and Redis from a daemon's config (gust/stores.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gust/etcd.h"
#include "gust/log.h"
#include "gust/redis.h"
#include "gust/stores.h"
#include "gust/util.h"

#define STORES_PW_MAX 1024

static bool set(const char *s)
{
	return s != NULL && *s != 0;
}

int gust_stores_read_password(const char *path, const char *key, char **out, gust_error **err)
{
	*out = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return gust_error_set(err, GUST_EINVAL, "config key '%s': cannot open '%s': %s",
		                      key, path, strerror(errno));
	struct stat st;
	if (fstat(fd, &st) == 0 && (st.st_mode & 0077) != 0)
		/* Not refused: the operator may mean it (a group of daemons); said. */
		gust_log_warn("STORES-PW-MODE",
		              "config key '%s': '%s' is readable by group or others (mode %03o)",
		              key, path, (unsigned)(st.st_mode & 0777));
	char buf[STORES_PW_MAX + 2];
	size_t n = 0;
	ssize_t r;
	while (n < sizeof(buf) - 1 && (r = read(fd, buf + n, sizeof(buf) - 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			close(fd);
			explicit_bzero(buf, sizeof(buf));
			return gust_error_set(err, GUST_EINVAL, "config key '%s': reading '%s': %s",
			                      key, path, strerror(e));
		}
		n += (size_t)r;
	}
	close(fd);
	buf[n] = 0;
	size_t len = strcspn(buf, "\r\n");
	int rv = 0;
	if (len == 0)
		rv = gust_error_set(err, GUST_EINVAL, "config key '%s': '%s' holds no password",
		                    key, path);
	else if (len > STORES_PW_MAX)
		rv = gust_error_set(err, GUST_EINVAL,
		                    "config key '%s': the password in '%s' is over %d bytes", key,
		                    path, STORES_PW_MAX);
	else
		*out = gust_xstrndup(buf, len);
	explicit_bzero(buf, sizeof(buf));
	return rv;
}

static int stores_file_ok(const char *path, const char *key, gust_error **err)
{
	if (access(path, R_OK) != 0)
		return gust_error_set(err, GUST_EINVAL, "config key '%s': cannot read '%s': %s",
		                      key, path, strerror(errno));
	return 0;
}

int gust_stores_apply(const gust_stores_cfg *s, const char *etcd_endpoints, const char *who,
                      gust_error **err)
{
	int rv;
	bool insecure = s->insecure_stores;
	bool plain = etcd_endpoints != NULL && strstr(etcd_endpoints, "http://") != NULL;
	if (plain && !insecure)
		return gust_error_set(
		    err, GUST_EINVAL,
		    "config key 'etcd': '%s' has a plain http:// endpoint (no TLS): "
		    "use https:// with etcd_ca, etcd_cert and etcd_key, or set "
		    "insecure_stores",
		    etcd_endpoints);
	if (set(s->etcd_cert) != set(s->etcd_key))
		return gust_error_set(err, GUST_EINVAL,
		                      "config keys 'etcd_cert' and 'etcd_key' go together");
	if (!insecure && !set(s->etcd_cert))
		return gust_error_set(err, GUST_EINVAL,
		                      "config key 'etcd_cert' is required (etcd's client "
		                      "certificate), or set insecure_stores");
	if (!insecure && !set(s->etcd_user))
		return gust_error_set(err, GUST_EINVAL,
		                      "config key 'etcd_user' is required (this role's etcd user), "
		                      "or set insecure_stores");
	if (set(s->etcd_user) != set(s->etcd_password_file))
		return gust_error_set(
		    err, GUST_EINVAL,
		    "config keys 'etcd_user' and 'etcd_password_file' go together");
	if (!insecure && !set(s->redis_user))
		return gust_error_set(err, GUST_EINVAL,
		                      "config key 'redis_user' is required (this role's Redis ACL "
		                      "user), or set insecure_stores");
	if (set(s->redis_user) != set(s->redis_password_file))
		return gust_error_set(
		    err, GUST_EINVAL,
		    "config keys 'redis_user' and 'redis_password_file' go together");
	if (set(s->etcd_ca) && (rv = stores_file_ok(s->etcd_ca, "etcd_ca", err)) != 0)
		return rv;
	if (set(s->etcd_cert) && ((rv = stores_file_ok(s->etcd_cert, "etcd_cert", err)) != 0 ||
	                          (rv = stores_file_ok(s->etcd_key, "etcd_key", err)) != 0))
		return rv;

	char *etcd_pw = NULL, *redis_pw = NULL;
	if (set(s->etcd_password_file) &&
	    (rv = gust_stores_read_password(s->etcd_password_file, "etcd_password_file", &etcd_pw,
	                                    err)) != 0)
		return rv;
	if (set(s->redis_password_file) &&
	    (rv = gust_stores_read_password(s->redis_password_file, "redis_password_file",
	                                    &redis_pw, err)) != 0) {
		explicit_bzero(etcd_pw, strlen(etcd_pw ? etcd_pw : ""));
		free(etcd_pw);
		return rv;
	}
	gust_etcd_credentials c = {.ca = s->etcd_ca,
	                           .cert = s->etcd_cert,
	                           .key = s->etcd_key,
	                           .user = set(s->etcd_user) ? s->etcd_user : NULL,
	                           .password = etcd_pw};
	gust_etcd_set_credentials(&c);
	gust_redis_set_credentials(set(s->redis_user) ? s->redis_user : NULL, redis_pw);
	if (etcd_pw != NULL) {
		explicit_bzero(etcd_pw, strlen(etcd_pw));
		free(etcd_pw);
	}
	if (redis_pw != NULL) {
		explicit_bzero(redis_pw, strlen(redis_pw));
		free(redis_pw);
	}
	if (insecure)
		gust_log_warn("STORES-INSECURE",
		              "%s: insecure_stores is set: etcd %s%s, Redis %s - anyone on the "
		              "network may read or change the cluster's state",
		              who ? who : "gust", plain ? "over plain http" : "over https",
		              set(s->etcd_user) ? "" : " without a user",
		              set(s->redis_user) ? "with a user" : "without a user");
	else if (who != NULL)
		gust_log_info("STORES-CREDS", "%s: etcd as user %s over https, Redis as user %s",
		              who, s->etcd_user, s->redis_user);
	return 0;
}
