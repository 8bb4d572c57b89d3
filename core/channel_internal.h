/*
 * Channels seen from the core: the application shown by "core show
 * channels", the list of technologies, and the whole-daemon operations used
 * at shutdown (hang up everything, wait for the sessions to end).
 */
#ifndef PLEXUS_CHANNEL_INTERNAL_H
#define PLEXUS_CHANNEL_INTERNAL_H

#include <plexus/channel.h>

void px_channel_get_application(px_channel *ch, char *app, size_t asize, char *data, size_t dsize);
void px_channel_tech_foreach(void (*fn)(void *ctx, const struct px_channel_tech *t), void *ctx);
void px_channel_hangup_all(int cause);
int px_channel_sessions_running(void);
/* At shutdown, after the calls: end the idle session threads (bounded wait). */
void px_channel_sessions_shutdown(void);

#endif
