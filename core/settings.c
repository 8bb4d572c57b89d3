/*
 * plexus.conf: the option tables of its [options], [console] and [logger]
 * sections, and their conversion into struct px_settings. The tables are the
 * single description of each key (type, default, help) used for parsing and
 * for "core show settings".
 */
#include <errno.h>
#include <grp.h>
#include <libgen.h>
#include <pwd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <plexus/config.h>

#include "settings.h"

struct options_section {
	long long verbose;
	long long debug;
	long long call_nice;
	char *module_dir;
	char *state_dir;
	char *database;
	char *pidfile;
};

static const struct px_config_option options_table[] = {
	{"verbose", PX_CFG_INT, "0", 0, 100, NULL, offsetof(struct options_section, verbose),
	 "verbose level at start; -v on the command line adds to it"},
	{"debug", PX_CFG_INT, "0", 0, 100, NULL, offsetof(struct options_section, debug),
	 "debug level at start; -d adds to it"},
	{"call_nice", PX_CFG_INT, "-5", -20, 19, NULL, offsetof(struct options_section, call_nice),
	 "nice value of the threads that carry calls (SIP, sessions, media)"},
	{"module_dir", PX_CFG_STRING, PX_MODULEDIR, 0, 0, NULL,
	 offsetof(struct options_section, module_dir), "directory of the module .so files"},
	{"state_dir", PX_CFG_STRING, PX_STATEDIR, 0, 0, NULL,
	 offsetof(struct options_section, state_dir), "directory of persistent state"},
	{"database", PX_CFG_STRING, PX_STATEDIR "/plexus.db", 0, 0, NULL,
	 offsetof(struct options_section, database), "the sqlite database of the store"},
	{"pidfile", PX_CFG_STRING, PX_RUNDIR "/plexusd.pid", 0, 0, NULL,
	 offsetof(struct options_section, pidfile), "file holding the daemon's process id"},
};

struct console_section {
	char *socket;
	char *mode;
	char *owner;
	char *group;
};

static const struct px_config_option console_table[] = {
	{"socket", PX_CFG_STRING, PX_RUNDIR "/plexus.ctl", 0, 0, NULL,
	 offsetof(struct console_section, socket), "path of the control socket"},
	{"mode", PX_CFG_STRING, "0660", 0, 0, NULL, offsetof(struct console_section, mode),
	 "permissions of the control socket, octal"},
	{"owner", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct console_section, owner),
	 "user that owns the control socket"},
	{"group", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct console_section, group),
	 "group that owns the control socket"},
};

static const char *const facility_names[] = {"none",   "daemon", "user",   "local0",
					     "local1", "local2", "local3", "local4",
					     "local5", "local6", "local7", NULL};
static const int facility_values[] = {-1,         LOG_DAEMON, LOG_USER,   LOG_LOCAL0,
				      LOG_LOCAL1, LOG_LOCAL2, LOG_LOCAL3, LOG_LOCAL4,
				      LOG_LOCAL5, LOG_LOCAL6, LOG_LOCAL7};

struct logger_section {
	char **stderr_levels;
	char *file;
	char **file_levels;
	int syslog;
	char **syslog_levels;
};

static const struct px_config_option logger_table[] = {
	{"stderr", PX_CFG_LIST, "error,warning,notice,verbose", 0, 0, NULL,
	 offsetof(struct logger_section, stderr_levels),
	 "levels written to stderr when running in the foreground"},
	{"file", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct logger_section, file),
	 "log file; none when unset"},
	{"file_levels", PX_CFG_LIST, "error,warning,notice,verbose", 0, 0, NULL,
	 offsetof(struct logger_section, file_levels), "levels written to the log file"},
	{"syslog", PX_CFG_ENUM, "none", 0, 0, facility_names,
	 offsetof(struct logger_section, syslog), "syslog facility, or none"},
	{"syslog_levels", PX_CFG_LIST, "error,warning,notice", 0, 0, NULL,
	 offsetof(struct logger_section, syslog_levels), "levels sent to syslog"},
};

#define N(table) (sizeof(table) / sizeof((table)[0]))

/* Resolve a path found in the file relative to the file's directory. */
static char *resolve(const char *dir, const char *path)
{
	char *out;

	if (!path)
		return NULL;
	if (path[0] == '/')
		return strdup(path);
	if (asprintf(&out, "%s/%s", dir, path) < 0)
		return NULL;
	return out;
}

static int levels_mask(const px_config_section *s, const char *key, char **list, unsigned *mask,
		       px_err *err)
{
	unsigned m = 0;

	for (size_t i = 0; list && list[i]; i++) {
		unsigned one;
		char bad[64];
		if (px_log_mask_parse(list[i], &one, bad, sizeof(bad)) < 0) {
			const px_config_var *v = s ? px_config_var_find(s, key) : NULL;
			if (v)
				return px_err_set(err, "%s:%d: %s: unknown log level '%s'", v->file,
						  v->line, key, bad);
			return px_err_set(err, "%s: unknown log level '%s'", key, bad);
		}
		m |= one;
	}
	*mask = m;
	return 0;
}

int px_settings_load(const char *path, struct px_settings *out, px_err *err)
{
	px_config *cfg = NULL;
	struct options_section o = {0};
	struct console_section c = {0};
	struct logger_section l = {0};
	struct px_settings s = {0};
	const px_config_section *sec_o, *sec_c, *sec_l;
	char *dircopy = NULL;
	const char *dir;
	int rc = -1;

	if (px_config_load(path, &cfg, err) < 0)
		return -1;
	for (const px_config_section *sec = px_config_sections(cfg); sec;
	     sec = px_config_section_next(sec)) {
		const char *name = px_config_section_name(sec);
		if (!px_config_section_is_template(sec) && strcmp(name, "options") &&
		    strcmp(name, "console") && strcmp(name, "logger")) {
			px_err_set(err, "%s:%d: unknown section [%s]", px_config_section_file(sec),
				   px_config_section_line(sec), name);
			goto out;
		}
	}
	sec_o = px_config_find(cfg, "options");
	sec_c = px_config_find(cfg, "console");
	sec_l = px_config_find(cfg, "logger");
	if (px_config_apply(sec_o, options_table, N(options_table), &o, err) < 0 ||
	    px_config_apply(sec_c, console_table, N(console_table), &c, err) < 0 ||
	    px_config_apply(sec_l, logger_table, N(logger_table), &l, err) < 0)
		goto out;

	dircopy = strdup(path);
	if (!dircopy) {
		px_err_set(err, "out of memory");
		goto out;
	}
	dir = dirname(dircopy);
	s.verbose = o.verbose;
	s.debug = o.debug;
	s.call_nice = (int)o.call_nice;
	s.module_dir = resolve(dir, o.module_dir);
	s.state_dir = resolve(dir, o.state_dir);
	s.database = resolve(dir, o.database);
	s.pidfile = resolve(dir, o.pidfile);
	s.socket = resolve(dir, c.socket);
	s.socket_owner = c.owner ? strdup(c.owner) : NULL;
	s.socket_group = c.group ? strdup(c.group) : NULL;
	s.log.file = resolve(dir, l.file);
	{
		char *end;
		const px_config_var *v = sec_c ? px_config_var_find(sec_c, "mode") : NULL;
		errno = 0;
		long mode = strtol(c.mode, &end, 8);
		if (errno || *end || end == c.mode || mode < 0 || mode > 07777) {
			if (v)
				px_err_set(err, "%s:%d: mode: '%s' is not an octal file mode",
					   v->file, v->line, c.mode);
			else
				px_err_set(err, "mode: '%s' is not an octal file mode", c.mode);
			goto out;
		}
		s.socket_mode = (mode_t)mode;
	}
	if (c.owner && !getpwnam(c.owner)) {
		const px_config_var *v = px_config_var_find(sec_c, "owner");
		px_err_set(err, "%s:%d: owner: no such user '%s'", v->file, v->line, c.owner);
		goto out;
	}
	if (c.group && !getgrnam(c.group)) {
		const px_config_var *v = px_config_var_find(sec_c, "group");
		px_err_set(err, "%s:%d: group: no such group '%s'", v->file, v->line, c.group);
		goto out;
	}
	s.log.to_stderr = true;
	s.log.syslog_facility = facility_values[l.syslog];
	if (levels_mask(sec_l, "stderr", l.stderr_levels, &s.log.stderr_mask, err) < 0 ||
	    levels_mask(sec_l, "file_levels", l.file_levels, &s.log.file_mask, err) < 0 ||
	    levels_mask(sec_l, "syslog_levels", l.syslog_levels, &s.log.syslog_mask, err) < 0)
		goto out;
	if (!s.module_dir || !s.state_dir || !s.database || !s.pidfile || !s.socket ||
	    (l.file && !s.log.file)) {
		px_err_set(err, "out of memory");
		goto out;
	}
	*out = s;
	memset(&s, 0, sizeof(s));
	rc = 0;
out:
	px_settings_free(&s);
	px_config_options_free(options_table, N(options_table), &o);
	px_config_options_free(console_table, N(console_table), &c);
	px_config_options_free(logger_table, N(logger_table), &l);
	free(dircopy);
	px_config_unref(cfg);
	return rc;
}

void px_settings_free(struct px_settings *s)
{
	free(s->module_dir);
	free(s->state_dir);
	free(s->database);
	free(s->pidfile);
	free(s->socket);
	free(s->socket_owner);
	free(s->socket_group);
	free(s->log.file);
	memset(s, 0, sizeof(*s));
}

void px_settings_describe(const struct px_settings *s, void (*print)(void *ctx, const char *line),
			  void *ctx)
{
	char line[4200], levels[128];

#define ROW(label, fmt, value)                                                                     \
	do {                                                                                       \
		snprintf(line, sizeof(line), "  %-28s " fmt, label, value);                        \
		print(ctx, line);                                                                  \
	} while (0)
	print(ctx, "PBX Core settings");
	print(ctx, "-----------------");
	ROW("Verbosity at start:", "%lld", s->verbose);
	ROW("Debug level at start:", "%lld", s->debug);
	ROW("Call threads' nice value:", "%d", s->call_nice);
	ROW("Module directory:", "%s", s->module_dir);
	ROW("State directory:", "%s", s->state_dir);
	ROW("Database:", "%s", s->database);
	ROW("PID file:", "%s", s->pidfile);
	ROW("Control socket:", "%s", s->socket);
	ROW("Control socket mode:", "%04o", (unsigned)s->socket_mode);
	ROW("Control socket owner:", "%s", s->socket_owner ? s->socket_owner : "(unchanged)");
	ROW("Control socket group:", "%s", s->socket_group ? s->socket_group : "(unchanged)");
	px_log_mask_string(s->log.stderr_mask, levels, sizeof(levels));
	ROW("Log to stderr:", "%s", levels);
	ROW("Log file:", "%s", s->log.file ? s->log.file : "(none)");
	px_log_mask_string(s->log.file_mask, levels, sizeof(levels));
	ROW("Log file levels:", "%s", levels);
	ROW("Syslog facility:", "%s", s->log.syslog_facility < 0 ? "(none)" : "configured");
#undef ROW
}
