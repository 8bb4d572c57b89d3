/*
 * plexus -e: the event stream of plexusd printed as JSON lines.
 */
#ifndef PLEXUS_CONSOLE_EVENTS_H
#define PLEXUS_CONSOLE_EVENTS_H

#include <stdbool.h>

/* Subscribe with the filter words and print every event as one line of
 * JSON until the daemon goes away (or, with keep_trying, forever,
 * reconnecting). Returns the exit status. */
int px_events_run(const char *socket_path, int nwords, char **words, bool keep_trying, bool quiet);

#endif
