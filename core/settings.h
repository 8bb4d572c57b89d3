/*
 * The daemon's own settings, read from plexus.conf: sections [options]
 * (levels, the call threads' nice value, directories, database, pidfile),
 * [console] (control socket) and [logger] (sinks). Loading is
 * all-or-nothing, so a reload with a bad file keeps the running settings.
 */
#ifndef PLEXUS_SETTINGS_H
#define PLEXUS_SETTINGS_H

#include <stdbool.h>
#include <sys/types.h>

#include <plexus/error.h>

#include "log_internal.h"

struct px_settings {
	/* [options] */
	long long verbose;
	long long debug;
	int call_nice; /* of the threads that carry calls (thread.c) */
	char *module_dir;
	char *state_dir;
	char *database;
	char *pidfile;
	/* [console] */
	char *socket;
	mode_t socket_mode;
	char *socket_owner; /* NULL: leave as created */
	char *socket_group;
	/* [logger] */
	struct px_log_sinks log;
};

/* Read path into out. Relative paths in the file are taken relative to the
 * file's directory. On failure out is untouched and err says file:line. */
int px_settings_load(const char *path, struct px_settings *out, px_err *err);
void px_settings_free(struct px_settings *s);
/* Print every setting (for "core show settings"). */
void px_settings_describe(const struct px_settings *s, void (*print)(void *ctx, const char *line),
			  void *ctx);

#endif
