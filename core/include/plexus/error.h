/*
 * Error reports that travel back to a caller. A px_err is a fixed buffer a
 * failing function fills with one human-readable line ("sip.conf:12: bad
 * port 'x'"), so that the caller can log it, print it on a console, or wrap
 * it with more context without any allocation on the error path.
 */
#ifndef PLEXUS_ERROR_H
#define PLEXUS_ERROR_H

#include <stdarg.h>

#define PX_ERR_MAX 512

typedef struct px_err {
	char msg[PX_ERR_MAX]; /* one line, NUL-terminated, "" when unset */
} px_err;

/* Fill err (if not NULL) with a formatted message; always returns -1 so a
 * failing path can say `return px_err_set(err, "...")`. */
int px_err_set(px_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int px_err_vset(px_err *err, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* Put "prefix: " in front of the message already in err. */
int px_err_prefix(px_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
