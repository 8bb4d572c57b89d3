/*
 * The logger seen from the core: configuring its sinks from plexus.conf,
 * setting the daemon-wide verbose and debug levels, and subscribing consoles
 * that receive log lines at their own levels.
 */
#ifndef PLEXUS_LOG_INTERNAL_H
#define PLEXUS_LOG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include <plexus/log.h>

struct px_log_sinks {
	bool to_stderr;       /* write to stderr (foreground runs) */
	unsigned stderr_mask; /* PX_LOG_MASK bits */
	char *file;           /* log file path, NULL for none */
	unsigned file_mask;
	int syslog_facility; /* LOG_DAEMON ...; -1 for no syslog */
	unsigned syslog_mask;
};

/* Start with stderr only, all levels but debug; used before the config is read. */
void px_log_init(void);
/* Switch to new sinks (reopening the file). On failure the old sinks stay. */
int px_log_configure(const struct px_log_sinks *sinks, px_err *err);
void px_log_shutdown(void);
/* Reopen the log file (after rotation). */
int px_log_reopen(px_err *err);

void px_log_set_levels(int verbose, int debug);
int px_log_get_verbose(void);
int px_log_get_debug(void);

/* For "logger show": one line per sink written through print(ctx, line). */
void px_log_describe(void (*print)(void *ctx, const char *line), void *ctx);
/* Comma-separated level names of a mask ("error,warning,notice"). */
void px_log_mask_string(unsigned mask, char *buf, size_t size);
/* Parse such a list; -1 if a name is unknown (*bad points at it). */
int px_log_mask_parse(const char *list, unsigned *mask, char *bad, size_t badsize);

/* A console's subscription. deliver() must not block: it is called with
 * the logger's subscriber lock held, from whatever thread logs. */
struct px_log_subscriber {
	unsigned mask;
	int verbose; /* this subscriber's verbose level */
	int debug;
	void (*deliver)(void *ctx, enum px_log_level level, const char *line, size_t len);
	void *ctx;
	struct px_log_subscriber *next; /* owned by the logger */
};
void px_log_subscribe(struct px_log_subscriber *s);
void px_log_unsubscribe(struct px_log_subscriber *s);
/* After changing a subscriber's mask or levels. */
void px_log_subscriber_changed(struct px_log_subscriber *s, unsigned mask, int verbose, int debug);

#endif
