/*
 * The extension pattern matcher of pbx_lua, with Asterisk's semantics: a
 * pattern is read one position at a time into the set of characters it
 * accepts (or a wildcard, or its end) and a score; on that rest checking a
 * key when the file is loaded, matching a dialled extension (fully, or as
 * canmatch and matchmore), and ordering the keys of a context from the most
 * to the least specific exactly as Asterisk's extension sorting does.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "pbx_lua_pattern.h"

/* Scores of the positions that are not sets, as Asterisk ranks them: above
 * every set (whose score is its size << 8 | its lowest character). */
#define SCORE_DOT  0x18000
#define SCORE_BANG 0x28000
#define SCORE_END  0x30000
#define SCORE_BAD  0x40000

/* The score of the next position of pattern *p, its character set in bits
 * (most significant bit first, so that lower characters compare first),
 * and *p moved past it; *p becomes NULL at the end. An empty set "[]" is
 * skipped, as Asterisk does. */
static int next_pos(const char **p, uint8_t bits[32])
{
	unsigned count = 0, cmin = 0xff;

	memset(bits, 0, 32);
	do {
		unsigned char c;
		const char *end;

		do
			c = (unsigned char)*(*p)++;
		while (c == '-');
		switch (c) {
		case '\0':
			*p = NULL;
			return SCORE_END;
		case '.':
			return SCORE_DOT;
		case '!':
			return SCORE_BANG;
		case 'n':
		case 'N':
			bits[6] = 0x3f, bits[7] = 0xc0;
			return 0x0800 | '2';
		case 'x':
		case 'X':
			bits[6] = 0xff, bits[7] = 0xc0;
			return 0x0a00 | '0';
		case 'z':
		case 'Z':
			bits[6] = 0x7f, bits[7] = 0xc0;
			return 0x0900 | '1';
		case '[':
			break;
		default:
			bits[c / 8] = (uint8_t)(1u << (7 - c % 8));
			return 0x0100 | c;
		}
		end = strchr(*p, ']');
		if (!end) {
			*p += strlen(*p);
			return SCORE_BAD;
		}
		for (; *p < end; ++*p) {
			unsigned c1 = (unsigned char)(*p)[0], c2 = c1;
			if (*p + 2 < end && (*p)[1] == '-') {
				c2 = (unsigned char)(*p)[2];
				*p += 2;
			}
			if (c1 < cmin)
				cmin = c1;
			for (; c1 <= c2; c1++) {
				uint8_t mask = (uint8_t)(1u << (7 - c1 % 8));
				if (!(bits[c1 / 8] & mask)) {
					bits[c1 / 8] |= mask;
					count += 0x100;
				}
			}
		}
		++*p;
	} while (!count);
	return (int)(count | cmin);
}

const char *pxlua_ext_check(const char *key)
{
	const char *p;
	uint8_t bits[32];
	int score;

	if (!key[0])
		return "an extension cannot be empty";
	if (strchr(key, '/'))
		return "caller ID matching ('/') is not supported";
	if (key[0] != '_')
		return NULL;
	for (p = key + 1; *p == '-'; p++)
		;
	if (!*p)
		return "a pattern needs at least one character after '_'";
	if (strstr(key, "[]"))
		return "empty character set '[]'";
	p = key + 1;
	do {
		score = next_pos(&p, bits);
		if (score == SCORE_BAD)
			return "'[' without a closing ']'";
	} while (p && score != SCORE_DOT && score != SCORE_BANG);
	return NULL;
}

/* Length without the '-' separators. */
static size_t exten_len(const char *s)
{
	size_t n = 0;

	for (; *s; s++)
		n += *s != '-';
	return n;
}

/* Compare two literal extensions, '-' ignored; partial: only as far as b
 * goes (a must start with b). */
static int literal_cmp(const char *a, const char *b, bool partial)
{
	for (;;) {
		while (*a == '-')
			a++;
		while (*b == '-')
			b++;
		if (partial && !*b)
			return 0;
		if (*a != *b)
			return (unsigned char)*a - (unsigned char)*b;
		if (!*a)
			return 0;
		a++;
		b++;
	}
}

static int pattern_cmp(const char *a, const char *b)
{
	for (;;) {
		uint8_t ba[32], bb[32];
		int sa = next_pos(&a, ba), sb = next_pos(&b, bb), c = sa - sb;

		if (!c)
			c = memcmp(bb, ba, sizeof(ba));
		if (c || !a)
			return c;
	}
}

/* Asterisk's match of a key against data: 0 no, 1 yes, 2 an early match
 * ('!'), in the given mode. */
static int match_core(const char *key, const char *data, enum pxlua_match mode)
{
	const char *p;

	if (key[0] != '_') {
		size_t lp = exten_len(key), ld = exten_len(data);
		if (lp < ld)
			return 0;
		if (mode == PXLUA_MATCH)
			return literal_cmp(key, data, false) == 0;
		if (ld == 0 || literal_cmp(key, data, true) == 0)
			return mode == PXLUA_MATCHMORE ? lp > ld : 1;
		return 0;
	}
	if (mode == PXLUA_MATCH && data[0] == '_' && pattern_cmp(key + 1, data + 1) == 0)
		return 1;
	p = key + 1;
	for (;;) {
		while (*data == '-')
			data++;
		while (*p == '-')
			p++;
		if (!*data || !*p)
			break;
		switch (*p) {
		case '[': {
			const char *end = strchr(++p, ']');
			if (!end)
				return 0;
			if (p == end) {
				p++;
				continue;
			}
			for (; p < end; p++) {
				if (p + 2 < end && p[1] == '-') {
					if (*data >= p[0] && *data <= p[2])
						break;
					p += 2;
				} else if (*data == p[0]) {
					break;
				}
			}
			if (p >= end)
				return 0;
			p = end;
			break;
		}
		case 'n':
		case 'N':
			if (*data < '2' || *data > '9')
				return 0;
			break;
		case 'x':
		case 'X':
			if (*data < '0' || *data > '9')
				return 0;
			break;
		case 'z':
		case 'Z':
			if (*data < '1' || *data > '9')
				return 0;
			break;
		case '.':
			return 1;
		case '!':
			return 2;
		default:
			if (*data != *p)
				return 0;
			break;
		}
		data++;
		p++;
	}
	if (*data)
		return 0;
	if (!*p)
		return mode == PXLUA_MATCHMORE ? 0 : 1;
	if (*p == '!')
		return 2;
	return mode == PXLUA_MATCH ? 0 : 1;
}

bool pxlua_ext_match(const char *key, const char *exten)
{
	return match_core(key, exten ? exten : "", PXLUA_MATCH) != 0;
}

bool pxlua_ext_close(const char *key, const char *exten, enum pxlua_match mode)
{
	return match_core(key, exten ? exten : "", mode) != 0;
}

static int ext_cmp(const char *a, const char *b)
{
	if (a[0] != '_')
		return b[0] == '_' ? -1 : literal_cmp(a, b, false);
	if (b[0] != '_')
		return 1;
	return pattern_cmp(a + 1, b + 1);
}

int pxlua_ext_cmp(const char *a, const char *b)
{
	int c = ext_cmp(a, b);

	return c ? c : strcmp(a, b);
}

bool pxlua_ext_same(const char *a, const char *b)
{
	return ext_cmp(a, b) == 0;
}

void pxlua_ext_describe(const char *key, char *out, unsigned size)
{
	const char *p = key + 1;
	unsigned used;

	if (key[0] != '_') {
		snprintf(out, size, "exact extension '%s'", key);
		return;
	}
	used = (unsigned)snprintf(out, size, "pattern:");
	for (bool first = true; p && used < size; first = false) {
		const char *start = p;
		uint8_t bits[32];
		int score = next_pos(&p, bits);
		char what[96];

		if (score == SCORE_END)
			break;
		if (score == SCORE_DOT)
			snprintf(what, sizeof(what), "one or more characters of anything");
		else if (score == SCORE_BANG)
			snprintf(what, sizeof(what), "zero or more characters of anything");
		else if ((score >> 8) == 1)
			snprintf(what, sizeof(what), "'%c'", score & 0xff);
		else
			snprintf(what, sizeof(what), "one of %.*s (%d characters)",
				 (int)((p ? (size_t)(p - start) : strlen(start))), start,
				 score >> 8);
		used += (unsigned)snprintf(out + used, size - used, "%s %s", first ? "" : ",",
					   what);
		if (score == SCORE_DOT || score == SCORE_BANG)
			break;
	}
}
