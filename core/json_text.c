/*
 * Strings for JSON (json_text.h): valid UTF-8 is kept as it is; a byte
 * that does not begin a complete, shortest-form sequence of a scalar value
 * (no surrogates, nothing above U+10FFFF) is replaced by U+FFFD and the
 * scan goes on at the next byte, so one bad byte costs one character.
 */
#include <stdlib.h>
#include <string.h>

#include "json_text.h"

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *p)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t n;

	if (c < 0x80)
		return 1;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		n = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		n = 4;
	else
		return 0; /* a continuation byte, an overlong lead (C0, C1), or F5..FF */
	/* The second byte's range rules out overlong forms, surrogates and
	 * values above U+10FFFF. */
	if (c == 0xE0)
		lo = 0xA0;
	else if (c == 0xED)
		hi = 0x9F;
	else if (c == 0xF0)
		lo = 0x90;
	else if (c == 0xF4)
		hi = 0x8F;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	return n;
}

json_t *px_json_text(const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p), bad = 0, i, o;
	char *clean;
	json_t *j;

	for (i = 0; i < len;) {
		size_t n = utf8_seq(p + i);
		bad += n == 0;
		i += n ? n : 1;
	}
	/* Checked here as strictly as jansson would: it need not again. */
	if (!bad)
		return json_stringn_nocheck((const char *)p, len);
	clean = malloc(len + 2 * bad + 1); /* each bad byte grows to three */
	if (!clean)
		return NULL;
	for (i = 0, o = 0; i < len;) {
		size_t n = utf8_seq(p + i);
		if (n) {
			memcpy(clean + o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(clean + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	clean[o] = '\0';
	j = json_stringn_nocheck(clean, o);
	free(clean);
	return j;
}
