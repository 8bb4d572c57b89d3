/*
 * The logger: formats each message once and hands it to the sinks that want
 * its level (stderr, a file, syslog) and to every subscribed console. The
 * verbose and debug thresholds are kept as the maximum any sink or console
 * wants, so px_verbose()/px_debug() below every threshold cost one load.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/syscall.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <plexus/error.h>

#include "log_internal.h"

atomic_int px_log_verbose_max;
atomic_int px_log_debug_max;

static const char *const level_names[PX_LOG_LEVELS] = {"ERROR", "WARNING", "NOTICE", "VERBOSE",
						       "DEBUG"};

static pthread_mutex_t sink_lock = PTHREAD_MUTEX_INITIALIZER;
static struct px_log_sinks sinks;
static FILE *log_file;
static int global_verbose, global_debug;

static pthread_mutex_t sub_lock = PTHREAD_MUTEX_INITIALIZER;
static struct px_log_subscriber *subscribers;

const char *px_log_level_name(enum px_log_level level)
{
	return level < PX_LOG_LEVELS ? level_names[level] : "?";
}

int px_log_level_parse(const char *name, enum px_log_level *out)
{
	for (int i = 0; i < PX_LOG_LEVELS; i++) {
		if (!strcasecmp(name, level_names[i])) {
			*out = (enum px_log_level)i;
			return 0;
		}
	}
	return -1;
}

/* Caller holds both locks (or is single-threaded start-up). */
static void recompute_thresholds(void)
{
	int v = global_verbose, d = global_debug;

	for (struct px_log_subscriber *s = subscribers; s; s = s->next) {
		if ((s->mask & PX_LOG_MASK(PX_LOG_VERBOSE)) && s->verbose > v)
			v = s->verbose;
		if ((s->mask & PX_LOG_MASK(PX_LOG_DEBUG)) && s->debug > d)
			d = s->debug;
	}
	atomic_store(&px_log_verbose_max, v);
	atomic_store(&px_log_debug_max, d);
}

void px_log_init(void)
{
	pthread_mutex_lock(&sink_lock);
	memset(&sinks, 0, sizeof(sinks));
	sinks.to_stderr = true;
	sinks.stderr_mask = PX_LOG_MASK_ALL & ~PX_LOG_MASK(PX_LOG_DEBUG);
	sinks.syslog_facility = -1;
	pthread_mutex_unlock(&sink_lock);
	pthread_mutex_lock(&sub_lock);
	recompute_thresholds();
	pthread_mutex_unlock(&sub_lock);
}

int px_log_configure(const struct px_log_sinks *new_sinks, px_err *err)
{
	FILE *f = NULL;

	if (new_sinks->file) {
		f = fopen(new_sinks->file, "ae");
		if (!f)
			return px_err_set(err, "cannot open log file %s: %s", new_sinks->file,
					  strerror(errno));
		setvbuf(f, NULL, _IOLBF, 0);
	}
	pthread_mutex_lock(&sink_lock);
	if (log_file)
		fclose(log_file);
	log_file = f;
	free(sinks.file);
	if (sinks.syslog_facility >= 0)
		closelog();
	sinks = *new_sinks;
	sinks.file = new_sinks->file ? strdup(new_sinks->file) : NULL;
	if (sinks.syslog_facility >= 0)
		openlog("plexusd", LOG_PID | LOG_NDELAY, sinks.syslog_facility);
	pthread_mutex_unlock(&sink_lock);
	return 0;
}

int px_log_reopen(px_err *err)
{
	FILE *f;
	int rc = 0;

	pthread_mutex_lock(&sink_lock);
	if (sinks.file) {
		f = fopen(sinks.file, "ae");
		if (!f) {
			rc = px_err_set(err, "cannot reopen log file %s: %s", sinks.file,
					strerror(errno));
		} else {
			setvbuf(f, NULL, _IOLBF, 0);
			if (log_file)
				fclose(log_file);
			log_file = f;
		}
	}
	pthread_mutex_unlock(&sink_lock);
	return rc;
}

void px_log_shutdown(void)
{
	pthread_mutex_lock(&sink_lock);
	if (log_file)
		fclose(log_file);
	log_file = NULL;
	free(sinks.file);
	sinks.file = NULL;
	if (sinks.syslog_facility >= 0)
		closelog();
	sinks.syslog_facility = -1;
	pthread_mutex_unlock(&sink_lock);
}

void px_log_set_levels(int verbose, int debug)
{
	pthread_mutex_lock(&sub_lock);
	global_verbose = verbose < 0 ? 0 : verbose;
	global_debug = debug < 0 ? 0 : debug;
	recompute_thresholds();
	pthread_mutex_unlock(&sub_lock);
}

int px_log_get_verbose(void)
{
	int v;

	pthread_mutex_lock(&sub_lock);
	v = global_verbose;
	pthread_mutex_unlock(&sub_lock);
	return v;
}

int px_log_get_debug(void)
{
	int d;

	pthread_mutex_lock(&sub_lock);
	d = global_debug;
	pthread_mutex_unlock(&sub_lock);
	return d;
}

void px_log_mask_string(unsigned mask, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < PX_LOG_LEVELS; i++) {
		if (!(mask & PX_LOG_MASK(i)))
			continue;
		int n = snprintf(buf + used, size - used, "%s%s", used ? "," : "", level_names[i]);
		if (n < 0 || (size_t)n >= size - used)
			break;
		used += (size_t)n;
	}
	for (char *p = buf; *p; p++)
		*p = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	if (!used)
		snprintf(buf, size, "none");
}

int px_log_mask_parse(const char *list, unsigned *mask, char *bad, size_t badsize)
{
	unsigned m = 0;
	const char *p = list;

	while (*p) {
		char word[32];
		size_t n = 0;
		enum px_log_level lvl;

		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		while (*p && *p != ',' && *p != ' ' && *p != '\t') {
			if (n < sizeof(word) - 1)
				word[n++] = *p;
			p++;
		}
		word[n] = '\0';
		if (!n)
			continue;
		if (!strcasecmp(word, "none"))
			continue;
		if (!strcasecmp(word, "all")) {
			m = PX_LOG_MASK_ALL;
			continue;
		}
		if (px_log_level_parse(word, &lvl) < 0) {
			snprintf(bad, badsize, "%s", word);
			return -1;
		}
		m |= PX_LOG_MASK(lvl);
	}
	*mask = m;
	return 0;
}

void px_log_describe(void (*print)(void *ctx, const char *line), void *ctx)
{
	char line[512], levels[128];

	pthread_mutex_lock(&sink_lock);
	if (sinks.to_stderr) {
		px_log_mask_string(sinks.stderr_mask, levels, sizeof(levels));
		snprintf(line, sizeof(line), "%-40s %-8s %s", "stderr", "Console", levels);
		print(ctx, line);
	}
	if (sinks.file) {
		px_log_mask_string(sinks.file_mask, levels, sizeof(levels));
		snprintf(line, sizeof(line), "%-40s %-8s %s", sinks.file,
			 log_file ? "File" : "File!", levels);
		print(ctx, line);
	}
	if (sinks.syslog_facility >= 0) {
		px_log_mask_string(sinks.syslog_mask, levels, sizeof(levels));
		snprintf(line, sizeof(line), "%-40s %-8s %s", "syslog", "Syslog", levels);
		print(ctx, line);
	}
	pthread_mutex_unlock(&sink_lock);
}

void px_log_subscribe(struct px_log_subscriber *s)
{
	pthread_mutex_lock(&sub_lock);
	s->next = subscribers;
	subscribers = s;
	recompute_thresholds();
	pthread_mutex_unlock(&sub_lock);
}

void px_log_unsubscribe(struct px_log_subscriber *s)
{
	pthread_mutex_lock(&sub_lock);
	for (struct px_log_subscriber **pp = &subscribers; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			break;
		}
	}
	s->next = NULL;
	recompute_thresholds();
	pthread_mutex_unlock(&sub_lock);
}

void px_log_subscriber_changed(struct px_log_subscriber *s, unsigned mask, int verbose, int debug)
{
	pthread_mutex_lock(&sub_lock);
	s->mask = mask;
	s->verbose = verbose;
	s->debug = debug;
	recompute_thresholds();
	pthread_mutex_unlock(&sub_lock);
}

static int syslog_priority(enum px_log_level level)
{
	switch (level) {
	case PX_LOG_ERROR:
		return LOG_ERR;
	case PX_LOG_WARNING:
		return LOG_WARNING;
	case PX_LOG_NOTICE:
		return LOG_NOTICE;
	case PX_LOG_VERBOSE:
		return LOG_INFO;
	default:
		return LOG_DEBUG;
	}
}

static bool wants(unsigned mask, enum px_log_level level, int sublevel, int verbose, int debug)
{
	if (!(mask & PX_LOG_MASK(level)))
		return false;
	if (level == PX_LOG_VERBOSE)
		return sublevel <= verbose;
	if (level == PX_LOG_DEBUG)
		return sublevel <= debug;
	return true;
}

void px_log(enum px_log_level level, int sublevel, const char *file, int line, const char *func,
	    const char *fmt, ...)
{
	char stackbuf[1024];
	char *msg = stackbuf;
	char prefix[160];
	char *full = NULL;
	struct timespec ts;
	struct tm tm;
	const char *base;
	va_list ap;
	int n, plen;

	if (level >= PX_LOG_LEVELS)
		return;
	va_start(ap, fmt);
	n = vsnprintf(stackbuf, sizeof(stackbuf), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n >= sizeof(stackbuf)) {
		msg = malloc((size_t)n + 1);
		if (!msg) {
			msg = stackbuf; /* truncated rather than lost */
		} else {
			va_start(ap, fmt);
			vsnprintf(msg, (size_t)n + 1, fmt, ap);
			va_end(ap);
		}
	}
	/* Strip a trailing newline: every line gets exactly one. */
	n = (int)strlen(msg);
	while (n > 0 && msg[n - 1] == '\n')
		msg[--n] = '\0';

	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	base = strrchr(file, '/');
	base = base ? base + 1 : file;
	plen = snprintf(prefix, sizeof(prefix),
			"[%04d-%02d-%02d %02d:%02d:%02d.%03ld] %s[%ld] %s:%d: ", tm.tm_year + 1900,
			tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			ts.tv_nsec / 1000000, level_names[level], (long)syscall(SYS_gettid), base,
			line);
	if (plen < 0)
		plen = 0;
	if ((size_t)plen >= sizeof(prefix))
		plen = (int)sizeof(prefix) - 1;
	(void)func;
	full = malloc((size_t)plen + (size_t)n + 2);
	if (full) {
		memcpy(full, prefix, (size_t)plen);
		memcpy(full + plen, msg, (size_t)n);
		full[plen + n] = '\n';
		full[plen + n + 1] = '\0';
	}

	pthread_mutex_lock(&sub_lock);
	int gv = global_verbose, gd = global_debug;
	if (full) {
		for (struct px_log_subscriber *s = subscribers; s; s = s->next) {
			if (wants(s->mask, level, sublevel, s->verbose, s->debug))
				s->deliver(s->ctx, level, full, (size_t)(plen + n + 1));
		}
	}
	pthread_mutex_unlock(&sub_lock);

	pthread_mutex_lock(&sink_lock);
	if (sinks.to_stderr && wants(sinks.stderr_mask, level, sublevel, gv, gd)) {
		if (full)
			fputs(full, stderr);
		else
			fprintf(stderr, "%s%s\n", prefix, msg);
	}
	if (log_file && wants(sinks.file_mask, level, sublevel, gv, gd))
		fprintf(log_file, "%s%s\n", prefix, msg);
	if (sinks.syslog_facility >= 0 && wants(sinks.syslog_mask, level, sublevel, gv, gd))
		syslog(syslog_priority(level), "%s[%s:%d]: %s", level_names[level], base, line,
		       msg);
	pthread_mutex_unlock(&sink_lock);

	free(full);
	if (msg != stackbuf)
		free(msg);
}
