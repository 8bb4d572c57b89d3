/*
 * Registration of the core's console commands about channels and
 * applications (channel_commands.c).
 */
#ifndef PLEXUS_CHANNEL_COMMANDS_H
#define PLEXUS_CHANNEL_COMMANDS_H

#include <plexus/error.h>

int px_channel_commands_register(px_err *err);
void px_channel_commands_unregister(void);

#endif
