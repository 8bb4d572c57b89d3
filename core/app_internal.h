/*
 * Applications seen from the core: listing them for "core show
 * applications".
 */
#ifndef PLEXUS_APP_INTERNAL_H
#define PLEXUS_APP_INTERNAL_H

#include <plexus/app.h>

void px_app_foreach(void (*fn)(void *ctx, const struct px_app *app), void *ctx);

#endif
