/* err.c - the error enum's names, messages and HTTP mapping, and crun-style error objects. */
#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gust/err.h"
#include "gust/util.h"

static const struct {
	const char *name;
	const char *msg;
	int http;
} err_table[GUST_ERRNO_MAX] = {
    [GUST_OK] = {"OK", "success", 200},
    [GUST_EINVAL] = {"EINVAL", "invalid argument", 400},
    [GUST_ENOENT] = {"ENOENT", "not found", 404},
    [GUST_EEXIST] = {"EEXIST", "already exists", 409},
    [GUST_ETIMEDOUT] = {"ETIMEDOUT", "timed out", 504},
    [GUST_ECLOSED] = {"ECLOSED", "closed", 503},
    [GUST_ENOMEM] = {"ENOMEM", "out of memory", 500},
    [GUST_EPERM] = {"EPERM", "not allowed", 403},
    [GUST_EAUTH] = {"EAUTH", "the supplied authentication is invalid", 401},
    [GUST_EBUSY] = {"EBUSY", "too many requests", 429},
    [GUST_ETOOBIG] = {"ETOOBIG", "payload too large", 413},
    [GUST_EUNAVAIL] = {"EUNAVAIL", "service unavailable", 503},
    [GUST_EPROTO] = {"EPROTO", "protocol error", 502},
    [GUST_ECONFLICT] = {"ECONFLICT", "conflict", 409},
    [GUST_EIO] = {"EIO", "input/output error", 500},
    [GUST_EINTERNAL] = {"EINTERNAL", "internal error", 500},
    [GUST_EBADGATEWAY] = {"EBADGATEWAY", "the action did not produce a valid response", 502},
    [GUST_ENOTSUP] = {"ENOTSUP", "not supported", 405},
};

static int err_valid(int err)
{
	return err >= 0 && err < GUST_ERRNO_MAX;
}

const char *gust_strerror(int err)
{
	return err_valid(err) ? err_table[err].msg : "unknown error";
}

const char *gust_errname(int err)
{
	return err_valid(err) ? err_table[err].name : "EUNKNOWN";
}

int gust_err_http_status(int err)
{
	return err_valid(err) ? err_table[err].http : 500;
}

int gust_err_from_nng(int rv)
{
	switch (rv) {
	case 0:
		return GUST_OK;
	case NNG_ETIMEDOUT:
		return GUST_ETIMEDOUT;
	case NNG_ECLOSED:
	case NNG_ECANCELED:
		return GUST_ECLOSED;
	case NNG_ENOMEM:
		return GUST_ENOMEM;
	case NNG_EINVAL:
		return GUST_EINVAL;
	case NNG_ECONNREFUSED:
	case NNG_ECONNRESET:
	case NNG_ECONNSHUT:
	case NNG_EADDRINVAL:
	case NNG_EUNREACHABLE:
		return GUST_EUNAVAIL;
	case NNG_EPROTO:
		return GUST_EPROTO;
	default:
		return GUST_EIO;
	}
}

int gust_error_set(gust_error **errp, int code, const char *fmt, ...)
{
	if (errp == NULL || *errp != NULL)
		return code;
	gust_error *e = gust_xcalloc(1, sizeof(*e));
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&e->msg, fmt, ap) < 0)
		e->msg = NULL;
	va_end(ap);
	e->code = code;
	*errp = e;
	return code;
}

int gust_error_wrap(gust_error **errp, const char *fmt, ...)
{
	if (errp == NULL || *errp == NULL)
		return GUST_EINTERNAL;
	gust_error *e = *errp;
	char *ctx = NULL;
	va_list ap;
	va_start(ap, fmt);
	if (vasprintf(&ctx, fmt, ap) < 0)
		ctx = NULL;
	va_end(ap);
	if (ctx != NULL) {
		char *m = gust_xasprintf("%s: %s", ctx, gust_error_msg(e));
		free(ctx);
		free(e->msg);
		e->msg = m;
	}
	return e->code;
}

void gust_error_free(gust_error *e)
{
	if (e == NULL)
		return;
	free(e->msg);
	free(e);
}

const char *gust_error_msg(const gust_error *e)
{
	if (e == NULL)
		return "no error";
	return e->msg != NULL ? e->msg : gust_strerror(e->code);
}
