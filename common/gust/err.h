/*
 * gust/err.h - the one error enum of libgust.
 *
 * Modelled on nng's include/nng/nng.h: every call returns 0 or a GUST_E* value.
 * The values are stable: they travel in protobuf messages (ActivationResult.error)
 * and map 1:1 to HTTP status codes at the gateway (gust_err_http_status()).
 *
 * Where the reason matters (config, etcd, sandbox setup) a call also fills a
 * gust_error object, crun-style: a code plus a message that callers wrap with
 * context on the way up (gust_error_wrap).
 */
#ifndef GUST_ERR_H
#define GUST_ERR_H

#include <stdarg.h>

enum gust_errno {
	GUST_OK = 0,
	GUST_EINVAL = 1,       /* bad input from a caller: 400 */
	GUST_ENOENT = 2,       /* no such entity: 404 */
	GUST_EEXIST = 3,       /* already exists: 409 */
	GUST_ETIMEDOUT = 4,    /* deadline passed: 504 (202 for blocking invokes) */
	GUST_ECLOSED = 5,      /* object closed / shutting down: 503 */
	GUST_ENOMEM = 6,       /* out of memory: 500 */
	GUST_EPERM = 7,        /* authenticated but not allowed: 403 */
	GUST_EAUTH = 8,        /* not authenticated: 401 */
	GUST_EBUSY = 9,        /* over a limit, try later: 429 */
	GUST_ETOOBIG = 10,     /* payload too large: 413 */
	GUST_EUNAVAIL = 11,    /* a dependency is unreachable: 503 */
	GUST_EPROTO = 12,      /* malformed message from a peer: 502 */
	GUST_ECONFLICT = 13,   /* concurrent update lost a compare-and-swap: 409 */
	GUST_EIO = 14,         /* I/O or system call failed: 500 */
	GUST_EINTERNAL = 15,   /* a bug or unexpected state: 500 */
	GUST_EBADGATEWAY = 16, /* the function or its sandbox failed: 502 */
	GUST_ENOTSUP = 17,     /* not supported: 405/501 */
	GUST_ERRNO_MAX
};

/* A short English description; never NULL. */
const char *gust_strerror(int err);

/* The stable symbolic name ("EINVAL"), used as the "code" of API errors. */
const char *gust_errname(int err);

/* The HTTP status that the gateway answers for err. */
int gust_err_http_status(int err);

/* Maps an nng error (NNG_E*) to the closest gust error. */
int gust_err_from_nng(int nng_rv);

/*
 * crun-style error object: the first failure sets it, callers add context.
 * A NULL gust_error ** is allowed everywhere and means "caller does not care".
 */
typedef struct gust_error {
	int code;  /* GUST_E* */
	char *msg; /* heap string, owned by the error */
} gust_error;

/* Sets *errp (if errp != NULL and *errp == NULL) and returns code. */
int gust_error_set(gust_error **errp, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Prefixes the message of *errp with "context: " and returns its code. */
int gust_error_wrap(gust_error **errp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void gust_error_free(gust_error *e);
/* The message, or gust_strerror(code) when there is none. */
const char *gust_error_msg(const gust_error *e);

#endif
