/*
 * Extension keys of the Lua dialplan, as Asterisk writes them: a key that
 * starts with '_' is a pattern (X = 0-9, Z = 1-9, N = 2-9, [1-5,7] a set
 * of characters with ranges, '.' one or more characters of anything, '!'
 * zero or more, '-' ignored as a separator outside sets), any other key is
 * matched literally and case-sensitively (its '-' ignored as well). This
 * header owns checking a key, matching a dialed extension against it, and
 * the order of precedence in which the keys of a context are tried. The
 * functions are hidden: they are private to the module that links them.
 */
#ifndef PLEXUS_PBX_LUA_PATTERN_H
#define PLEXUS_PBX_LUA_PATTERN_H

#include <stdbool.h>

#define PXLUA_HIDDEN __attribute__((visibility("hidden")))

/* NULL when key can be used as an extension key, otherwise why not (a
 * constant string such as "'[' without ']'"). */
PXLUA_HIDDEN const char *pxlua_ext_check(const char *key);

/* Whether the dialed extension exten is matched by key (literal or
 * pattern). key must have passed pxlua_ext_check. */
PXLUA_HIDDEN bool pxlua_ext_match(const char *key, const char *exten);

/* Order of precedence, for qsort: negative when a is to be tried before b.
 * Literal keys come before every pattern; patterns are compared position by
 * position, the one with the smaller set of characters at the first
 * position where they differ first (a literal character, then N, Z, X and
 * [..] by size, then '.', then '!'), as Asterisk sorts them. Keys that
 * compare equal that way are ordered by their text, so the order is total. */
PXLUA_HIDDEN int pxlua_ext_cmp(const char *a, const char *b);

#endif
