/*
 * px_err: the one-line error reports that failing functions hand back to
 * their callers (see plexus/error.h).
 */
#include <stdio.h>
#include <string.h>

#include <plexus/error.h>

int px_err_vset(px_err *err, const char *fmt, va_list ap)
{
	if (err)
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	return -1;
}

int px_err_set(px_err *err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	px_err_vset(err, fmt, ap);
	va_end(ap);
	return -1;
}

int px_err_prefix(px_err *err, const char *fmt, ...)
{
	char prefix[PX_ERR_MAX];
	char old[PX_ERR_MAX];
	va_list ap;

	if (!err)
		return -1;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof(prefix), fmt, ap);
	va_end(ap);
	memcpy(old, err->msg, sizeof(old));
	/* Truncation keeps the start of the line, which names the place. */
	size_t plen = strnlen(prefix, sizeof(prefix) - 1);
	size_t room = sizeof(err->msg) - 1;
	size_t n = 0;
	memcpy(err->msg, prefix, plen < room ? plen : room);
	n = plen < room ? plen : room;
	for (const char *sep = ": "; *sep && n < room; sep++)
		err->msg[n++] = *sep;
	for (size_t i = 0; old[i] && n < room; i++)
		err->msg[n++] = old[i];
	err->msg[n] = '\0';
	return -1;
}
