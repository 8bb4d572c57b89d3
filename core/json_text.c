/*
 * Strings for JSON (json_text.h): valid UTF-8 is kept as it is; a byte
 * that does not begin a complete, shortest-form sequence of a scalar value
 * (no surrogates, nothing above U+10FFFF) is replaced by U+FFFD and the
 * scan goes on at the next byte, so one bad byte costs one character.
 * The same rule serves both ways out: jansson strings (px_json_text) and
 * the direct writer of flat objects (px_json_out), whose escapes are
 * jansson's own (\" \\ \b \f \n \r \t, \u00XX for other control
 * characters, everything else as it is), so a string reads the same
 * whichever way it was written.
 */
#include <stdio.h>
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

void px_json_out_init(struct px_json_out *o, char *room, size_t size)
{
	*o = (struct px_json_out){.buf = room, .cap = size};
}

void px_json_out_free(struct px_json_out *o)
{
	if (o->heap)
		free(o->buf);
	o->buf = NULL;
	o->len = o->cap = 0;
	o->heap = false;
}

bool px_json_out_grow(struct px_json_out *o, size_t n)
{
	size_t cap;
	char *nbuf;

	if (o->failed)
		return false;
	if (o->len + n < o->cap)
		return true;
	for (cap = o->cap ? o->cap * 2 : 256; o->len + n >= cap; cap *= 2)
		;
	nbuf = o->heap ? realloc(o->buf, cap) : malloc(cap);
	if (!nbuf) {
		o->failed = true;
		return false;
	}
	if (!o->heap && o->len)
		memcpy(nbuf, o->buf, o->len + 1);
	o->buf = nbuf;
	o->cap = cap;
	o->heap = true;
	return true;
}

void px_json_put_int(struct px_json_out *o, long long v)
{
	char digits[24];
	size_t n = 0;
	unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;

	do
		digits[sizeof(digits) - ++n] = (char)('0' + u % 10);
	while ((u /= 10) != 0);
	if (v < 0)
		digits[sizeof(digits) - ++n] = '-';
	px_json_put_raw(o, digits + sizeof(digits) - n, n);
}

/* A byte that is written as it is: printable ASCII but the quote and the
 * backslash. */
static bool plain(unsigned char c)
{
	return c >= 0x20 && c < 0x80 && c != '"' && c != '\\';
}

/* The escapes jansson writes as a backslash and one letter; every other
 * control character is \u00XX. */
static const char short_escape['\\' + 1] = {
	['"'] = '"',  ['\\'] = '\\', ['\b'] = 'b', ['\f'] = 'f',
	['\n'] = 'n', ['\r'] = 'r',  ['\t'] = 't',
};

void px_json_put_text(struct px_json_out *o, const char *s)
{
	const unsigned char *p = (const unsigned char *)(s ? s : "");
	char esc[8];

	px_json_put_raw(o, "\"", 1);
	while (*p) {
		const unsigned char *run = p;
		size_t n;

		while (plain(*p))
			p++;
		if (p > run)
			px_json_put_raw(o, (const char *)run, (size_t)(p - run));
		if (!*p)
			break;
		if (*p >= 0x80) {
			/* Sequences are checked up to their first bad byte:
			 * the NUL ends one as any other byte would. */
			n = utf8_seq(p);
			if (n)
				px_json_put_raw(o, (const char *)p, n);
			else
				px_json_put_raw(o, "\xEF\xBF\xBD", 3);
			p += n ? n : 1;
			continue;
		}
		if (*p < sizeof(short_escape) && short_escape[*p]) {
			char two[2] = {'\\', short_escape[*p]};
			px_json_put_raw(o, two, 2);
		} else {
			snprintf(esc, sizeof(esc), "\\u%04X", *p);
			px_json_put_raw(o, esc, 6);
		}
		p++;
	}
	px_json_put_raw(o, "\"", 1);
}
