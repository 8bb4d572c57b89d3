/*
 * The extension pattern matcher of pbx_lua: reads a pattern one position at
 * a time into the set of characters that position accepts (or a wildcard,
 * or its end), and builds on that the three things the dialplan needs:
 * checking a key when the file is loaded, matching a dialed extension, and
 * ordering the keys of a context from the most to the least specific.
 */
#include <stdint.h>
#include <string.h>

#include "pbx_lua_pattern.h"

/* What one position of a pattern accepts; the order of the kinds is their
 * order of precedence. */
enum pos_kind {
	POS_SET,  /* one character out of a set */
	POS_DOT,  /* '.': one or more characters, then the pattern ends */
	POS_BANG, /* '!': zero or more characters, then the pattern ends */
	POS_END,  /* the pattern has ended */
	POS_BAD,  /* '[' without ']' */
};

struct pos {
	enum pos_kind kind;
	unsigned count;   /* characters in the set (POS_SET) */
	uint8_t bits[32]; /* the set: bit c%8 of byte c/8 for character c */
};

static void pos_add_range(struct pos *pos, unsigned char lo, unsigned char hi)
{
	for (unsigned c = lo; c <= hi; c++) {
		if (!(pos->bits[c / 8] & (1u << (c % 8)))) {
			pos->bits[c / 8] |= (uint8_t)(1u << (c % 8));
			pos->count++;
		}
	}
}

static bool pos_has(const struct pos *pos, unsigned char c)
{
	return pos->bits[c / 8] & (1u << (c % 8));
}

/* Read the position at *p (inside a pattern, after the '_') and move *p past
 * it. '-' outside a set is a separator for the eye and is skipped. In a set,
 * "a-c" is a range when a character follows the '-' before the ']';
 * anything else stands for itself. */
static void next_pos(const char **p, struct pos *pos)
{
	const char *s = *p;
	const char *end;

	memset(pos, 0, sizeof(*pos));
	pos->kind = POS_SET;
	while (*s == '-')
		s++;
	switch (*s) {
	case '\0':
		pos->kind = POS_END;
		*p = s;
		return;
	case '.':
		pos->kind = POS_DOT;
		break;
	case '!':
		pos->kind = POS_BANG;
		break;
	case 'X':
	case 'x':
		pos_add_range(pos, '0', '9');
		break;
	case 'Z':
	case 'z':
		pos_add_range(pos, '1', '9');
		break;
	case 'N':
	case 'n':
		pos_add_range(pos, '2', '9');
		break;
	case '[':
		end = strchr(s + 1, ']');
		if (!end) {
			pos->kind = POS_BAD;
			*p = s + strlen(s);
			return;
		}
		for (const char *q = s + 1; q < end;) {
			if (q + 2 < end && q[1] == '-') {
				pos_add_range(pos, (unsigned char)q[0], (unsigned char)q[2]);
				q += 3;
			} else {
				pos_add_range(pos, (unsigned char)q[0], (unsigned char)q[0]);
				q++;
			}
		}
		s = end;
		break;
	default:
		pos_add_range(pos, (unsigned char)*s, (unsigned char)*s);
		break;
	}
	*p = s + 1;
}

const char *pxlua_ext_check(const char *key)
{
	const char *p;
	struct pos pos;

	if (!key[0])
		return "an extension cannot be empty";
	if (strchr(key, '/'))
		return "caller ID matching ('/') is not supported";
	if (key[0] != '_')
		return NULL;
	p = key + 1;
	next_pos(&p, &pos);
	if (pos.kind == POS_END)
		return "a pattern needs at least one character after '_'";
	for (;;) {
		if (pos.kind == POS_BAD)
			return "'[' without a closing ']'";
		if (pos.kind == POS_SET && pos.count == 0)
			return "empty character set '[]'";
		if (pos.kind != POS_SET)
			return NULL;
		next_pos(&p, &pos);
	}
}

static bool match_literal(const char *k, const char *d)
{
	for (;;) {
		while (*k == '-')
			k++;
		while (*d == '-')
			d++;
		if (*k != *d)
			return false;
		if (!*k)
			return true;
		k++;
		d++;
	}
}

static bool match_pattern(const char *p, const char *d)
{
	struct pos pos;

	for (;;) {
		next_pos(&p, &pos);
		while (*d == '-')
			d++;
		switch (pos.kind) {
		case POS_END:
			return *d == '\0';
		case POS_DOT:
			return *d != '\0';
		case POS_BANG:
			return true;
		case POS_BAD:
			return false;
		case POS_SET:
			if (!*d || !pos_has(&pos, (unsigned char)*d))
				return false;
			d++;
			break;
		}
	}
}

bool pxlua_ext_match(const char *key, const char *exten)
{
	if (key[0] == '_')
		return match_pattern(key + 1, exten);
	return match_literal(key, exten);
}

/* Negative when position a is more specific than position b. Two sets of
 * the same size: the one holding the lowest character the other lacks. */
static int pos_cmp(const struct pos *a, const struct pos *b)
{
	if (a->kind != b->kind)
		return a->kind < b->kind ? -1 : 1;
	if (a->kind != POS_SET)
		return 0;
	if (a->count != b->count)
		return a->count < b->count ? -1 : 1;
	for (unsigned c = 0; c < 256; c++) {
		bool ha = pos_has(a, (unsigned char)c), hb = pos_has(b, (unsigned char)c);
		if (ha != hb)
			return ha ? -1 : 1;
	}
	return 0;
}

int pxlua_ext_cmp(const char *a, const char *b)
{
	bool pa = a[0] == '_', pb = b[0] == '_';
	const char *x, *y;

	if (pa != pb)
		return pa ? 1 : -1;
	if (!pa)
		return strcmp(a, b);
	x = a + 1;
	y = b + 1;
	for (;;) {
		struct pos px, py;
		int c;

		next_pos(&x, &px);
		next_pos(&y, &py);
		c = pos_cmp(&px, &py);
		if (c)
			return c;
		/* Matching stops at a wildcard or at the end: the rest is moot. */
		if (px.kind != POS_SET)
			break;
	}
	return strcmp(a, b);
}
