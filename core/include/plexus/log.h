/*
 * Logging. Every message has a level: error, warning, notice, verbose N or
 * debug N (N from 1, higher is chattier). Sinks (stderr, a file, syslog) are
 * configured in the [logger] section of plexus.conf; every attached console
 * receives lines at its own levels. Emitting never blocks on a slow console:
 * each console has a bounded queue and counts what it had to drop.
 */
#ifndef PLEXUS_LOG_H
#define PLEXUS_LOG_H

#include <stdatomic.h>
#include <stdbool.h>

enum px_log_level {
	PX_LOG_ERROR,
	PX_LOG_WARNING,
	PX_LOG_NOTICE,
	PX_LOG_VERBOSE,
	PX_LOG_DEBUG,
	PX_LOG_LEVELS
};

/* A bit per level, for sinks and consoles that take some levels only. */
#define PX_LOG_MASK(level) (1u << (level))
#define PX_LOG_MASK_ALL    ((1u << PX_LOG_LEVELS) - 1)

void px_log(enum px_log_level level, int sublevel, const char *file, int line, const char *func,
	    const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* The highest verbose and debug sublevel that any sink or console wants;
 * checked before formatting so that quiet messages cost one load. */
extern atomic_int px_log_verbose_max;
extern atomic_int px_log_debug_max;

const char *px_log_level_name(enum px_log_level level);
/* Parse "error", "warning", "notice", "verbose", "debug" (case-insensitive). */
int px_log_level_parse(const char *name, enum px_log_level *out);

#define px_log_error(...)   px_log(PX_LOG_ERROR, 0, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define px_log_warning(...) px_log(PX_LOG_WARNING, 0, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define px_log_notice(...)  px_log(PX_LOG_NOTICE, 0, __FILE__, __LINE__, __func__, __VA_ARGS__)
#define px_verbose(n, ...)                                                                         \
	do {                                                                                       \
		if ((n) <= atomic_load_explicit(&px_log_verbose_max, memory_order_relaxed))        \
			px_log(PX_LOG_VERBOSE, (n), __FILE__, __LINE__, __func__, __VA_ARGS__);    \
	} while (0)
#define px_debug(n, ...)                                                                           \
	do {                                                                                       \
		if ((n) <= atomic_load_explicit(&px_log_debug_max, memory_order_relaxed))          \
			px_log(PX_LOG_DEBUG, (n), __FILE__, __LINE__, __func__, __VA_ARGS__);      \
	} while (0)

#endif
