/*
 * The console server: the control socket and one thread per connected
 * console. Each console runs its commands in its own thread, so a slow or
 * vanished client only ever stalls itself; log lines reach it through a
 * bounded queue that the logger fills without blocking.
 */
#ifndef PLEXUS_CONSOLE_SERVER_H
#define PLEXUS_CONSOLE_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include <plexus/error.h>
#include <plexus/log.h>

struct px_console;

struct px_console_listen {
	const char *path;
	mode_t mode;
	const char *owner; /* NULL: unchanged */
	const char *group; /* NULL: unchanged */
};

/* Is a daemon answering on path? 1 yes, 0 no (nothing there, or stale). */
int px_console_probe(const char *path);
/* Bind the socket (refusing when another daemon answers on it) and start
 * accepting consoles. */
int px_console_server_start(const struct px_console_listen *l, px_err *err);
/* Say goodbye to every console, stop their threads, remove the socket. */
void px_console_server_stop(const char *reason);
/* Number of consoles connected now. */
int px_console_count(void);
/* console.conf was re-read: every console re-resolves its role now (one
 * left with none gets bye), not only at its next request. */
void px_console_roles_changed(void);

/* Levels of one console ("core set verbose N" run from it). */
void px_console_set_levels(struct px_console *c, int verbose, int debug);
void px_console_get_levels(struct px_console *c, int *verbose, int *debug);
/* Turn one log level on or off for this console ("logger set level"). */
void px_console_set_level_enabled(struct px_console *c, enum px_log_level level, bool on);
unsigned px_console_level_mask(struct px_console *c);

#endif
