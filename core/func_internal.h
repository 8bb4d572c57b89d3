/*
 * Dialplan functions seen from the core: listing them for "core show
 * functions", and the registration of the core's built-in functions
 * (func_builtin.c) at start-up.
 */
#ifndef PLEXUS_FUNC_INTERNAL_H
#define PLEXUS_FUNC_INTERNAL_H

#include <plexus/func.h>

void px_func_foreach(void (*fn)(void *ctx, const struct px_func *f), void *ctx);

/* CALLERID, LEN, CUT, IF, GLOBAL, ENV, owned by the core. */
int px_func_builtin_register(px_err *err);
void px_func_builtin_unregister(void);
/* Drop every global variable (shutdown). */
void px_globals_clear(void);

#endif
