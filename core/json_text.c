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

/* s made valid UTF-8: s itself when it is (*clean NULL), else a new
 * string in *clean (NULL and -1 when memory ran out). */
static int clean_text(const char *s, const char **out, size_t *out_len, char **clean)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	size_t len = strlen((const char *)p), bad = 0, i, o;

	*clean = NULL;
	for (i = 0; i < len;) {
		size_t n = utf8_seq(p + i);
		bad += n == 0;
		i += n ? n : 1;
	}
	if (!bad) {
		*out = (const char *)p;
		*out_len = len;
		return 0;
	}
	*clean = malloc(len + 2 * bad + 1); /* each bad byte grows to three */
	if (!*clean)
		return -1;
	for (i = 0, o = 0; i < len;) {
		size_t n = utf8_seq(p + i);
		if (n) {
			memcpy(*clean + o, p + i, n);
			o += n;
			i += n;
		} else {
			memcpy(*clean + o, "\xEF\xBF\xBD", 3);
			o += 3;
			i++;
		}
	}
	(*clean)[o] = '\0';
	*out = *clean;
	*out_len = o;
	return 0;
}

json_t *px_json_text(const char *s)
{
	const char *text;
	size_t len;
	char *clean;
	json_t *j;

	if (clean_text(s, &text, &len, &clean) < 0)
		return NULL;
	/* Checked here as strictly as jansson would: it need not again. */
	j = json_stringn_nocheck(text, len);
	free(clean);
	return j;
}

int px_json_text_set(json_t *string, const char *s)
{
	const char *text;
	size_t len;
	char *clean;
	int rc;

	if (clean_text(s, &text, &len, &clean) < 0)
		return -1;
	rc = json_string_setn_nocheck(string, text, len);
	free(clean);
	return rc;
}
