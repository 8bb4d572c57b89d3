/*
 * Extension keys of the Lua dialplan, as Asterisk writes them: a key that
 * starts with '_' is a pattern (X = 0-9, Z = 1-9, N = 2-9, [1-5,7] a set
 * of characters with ranges, '.' one or more characters of anything, '!'
 * zero or more, '-' ignored as a separator), any other key is matched
 * literally and case-sensitively (its '-' ignored as well). This header
 * owns checking a key, matching a dialled extension against it (fully, or
 * as Asterisk's canmatch and matchmore for overlap dialling), and the order
 * of precedence in which the keys of a context are tried, which is
 * Asterisk's. The functions are hidden: private to the module that links
 * them.
 */
#ifndef PLEXUS_PBX_LUA_PATTERN_H
#define PLEXUS_PBX_LUA_PATTERN_H

#include <stdbool.h>

#define PXLUA_HIDDEN __attribute__((visibility("hidden")))

enum pxlua_match {
	PXLUA_MATCH,     /* the key matches the extension */
	PXLUA_CANMATCH,  /* it matches, or would with more characters */
	PXLUA_MATCHMORE, /* it would match the extension followed by more characters */
};

/* NULL when key can be used as an extension key, otherwise why not (a
 * constant string such as "'[' without ']'"). */
PXLUA_HIDDEN const char *pxlua_ext_check(const char *key);

/* Whether the dialled extension exten is matched by key (literal or
 * pattern). key must have passed pxlua_ext_check. */
PXLUA_HIDDEN bool pxlua_ext_match(const char *key, const char *exten);
PXLUA_HIDDEN bool pxlua_ext_close(const char *key, const char *exten, enum pxlua_match mode);

/* Order of precedence, for qsort: negative when a is to be tried before b,
 * as Asterisk's ext_cmp orders them. Literal keys come before every pattern
 * (by their text, '-' ignored). Patterns are compared position by position:
 * a position scores the size of its character set, then its lowest
 * character; '.' comes after every set, '!' after '.', and a pattern that
 * has ended after '!' ("_1X" after "_1X." and "_1X!"). Equal scores with
 * different sets: the set holding the lower characters first. Keys that
 * compare equal that way are ordered by their text, so the order is total. */
PXLUA_HIDDEN int pxlua_ext_cmp(const char *a, const char *b);

/* Whether two keys are the same extension for Asterisk ("555-1234" and
 * "5551234"; "_1-XX" and "_1XX"). */
PXLUA_HIDDEN bool pxlua_ext_same(const char *a, const char *b);

/* One line saying what a key matches, for "dialplan locate"
 * ("pattern: 1, then 0-9, then one or more of anything"). */
PXLUA_HIDDEN void pxlua_ext_describe(const char *key, char *out, unsigned size);

#endif
