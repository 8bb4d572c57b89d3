/*
 * The core's console commands: help, "core ..." (version, uptime, settings,
 * threads, stop, reload, verbosity), "module ..." (show, load, unload,
 * reload) and "logger ..." (show, level per console, reopen). Output formats
 * follow Asterisk's where it has the same command, so administrators and
 * their scripts find what they expect.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <plexus/cli.h>
#include <plexus/core.h>
#include <plexus/log.h>

#include "allocator.h"
#include "codec_internal.h"
#include "cli_internal.h"
#include "console_server.h"
#include "daemon.h"
#include "loader.h"
#include "log_internal.h"
#include "thread_internal.h"

static void print_line(void *ctx, const char *line)
{
	px_cli_printf(ctx, "%s\n", line);
}

/* "1 hour, 2 minutes, 3 seconds", as Asterisk prints uptimes. */
static void format_duration(char *buf, size_t size, long secs)
{
	static const struct {
		long len;
		const char *name;
	} units[] = {{365L * 86400, "year"}, {7L * 86400, "week"}, {86400, "day"},
		     {3600, "hour"},         {60, "minute"},       {1, "second"}};
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		long n = secs / units[i].len;
		if (!n && !(units[i].len == 1 && used == 0))
			continue;
		secs -= n * units[i].len;
		used += (size_t)snprintf(buf + used, used < size ? size - used : 0, "%s%ld %s%s",
					 used ? ", " : "", n, units[i].name, n == 1 ? "" : "s");
		if (used >= size)
			return;
	}
}

static enum px_cli_status cmd_help(px_cli *cli, int argc, char **argv)
{
	return px_cli_help(cli, argc, argv);
}

static enum px_cli_status cmd_show_version(px_cli *cli, int argc, char **argv)
{
	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	px_cli_printf(cli, "Plexus %s (module ABI %d)\n", px_version(), PX_MODULE_ABI_VERSION);
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_show_uptime(px_cli *cli, int argc, char **argv)
{
	time_t now = time(NULL);
	long up = (long)(now - px_core_start_time());
	long rl = (long)(now - px_core_reload_time());
	char buf[256];

	if (argc > 4 || (argc == 4 && strcasecmp(argv[3], "seconds")))
		return PX_CLI_SHOWUSAGE;
	if (argc == 4) {
		px_cli_printf(cli, "System uptime: %ld\nLast reload: %ld\n", up, rl);
		return PX_CLI_SUCCESS;
	}
	format_duration(buf, sizeof(buf), up);
	px_cli_printf(cli, "System uptime: %s\n", buf);
	format_duration(buf, sizeof(buf), rl);
	px_cli_printf(cli, "Last reload: %s\n", buf);
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_show_settings(px_cli *cli, int argc, char **argv)
{
	char buf[64];

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	px_cli_printf(cli, "\n");
	px_daemon_lock();
	px_settings_describe(px_daemon_settings(), print_line, cli);
	px_daemon_unlock();
	px_cli_printf(cli, "  %-28s %s\n", "Version:", px_version());
	px_cli_printf(cli, "  %-28s %s\n", "Configuration directory:", px_core_config_dir());
	px_cli_printf(cli, "  %-28s %s\n", "Main configuration file:", px_core_main_config());
	px_cli_printf(cli, "  %-28s %d\n", "Current verbosity:", px_log_get_verbose());
	px_cli_printf(cli, "  %-28s %d\n", "Current debug level:", px_log_get_debug());
	time_t t = px_core_start_time();
	struct tm tm;
	localtime_r(&t, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
	px_cli_printf(cli, "  %-28s %s\n", "Started:", buf);
	px_cli_printf(cli, "  %-28s %d\n", "Consoles connected:", px_console_count());
	char allocator[160];
	px_allocator_describe(allocator, sizeof(allocator));
	px_cli_printf(cli, "  %-28s %s\n", "Memory allocator:", allocator);
	struct px_heap_prefault_stats pf;
	px_heap_prefault_stats(&pf);
	if (pf.arenas)
		px_cli_printf(cli, "  %-28s %llu of %llu MiB the heap grew by (%zu MiB ready)\n",
			      "Heap written ahead:", pf.served >> 20, (pf.served + pf.missed) >> 20,
			      pf.ready >> 20);
	else
		px_cli_printf(cli, "  %-28s %s\n",
			      "Heap written ahead:", "no (not jemalloc's heap)");
	if (pf.arenas)
		px_cli_printf(cli, "  %-28s %llu MiB given back, %llu MiB kept\n",
			      "Huge pages kept whole:", pf.purged_whole >> 20, pf.purge_kept >> 20);
	return PX_CLI_SUCCESS;
}

/* "core show threads"'s Calls column: all for the thread every call
 * passes, yes for the others that carry calls. */
static const char *calls_column(const struct px_thread_info *t)
{
	if (t->carries_every_call)
		return "all";
	return t->carries_calls ? "yes" : "no";
}

static enum px_cli_status cmd_show_threads(px_cli *cli, int argc, char **argv)
{
	struct px_thread_info info[512];
	size_t n;

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	n = px_thread_list(info, sizeof(info) / sizeof(info[0]));
	px_cli_printf(cli, "%-8s %-24s %5s %-6s %s\n", "LWP", "Name", "Nice", "Calls",
		      "Running for");
	for (size_t i = 0; i < n && i < sizeof(info) / sizeof(info[0]); i++) {
		char dur[128], nice[16] = "?";
		int prio;
		errno = 0;
		prio = getpriority(PRIO_PROCESS, (id_t)info[i].tid);
		if (errno == 0)
			snprintf(nice, sizeof(nice), "%d", prio);
		format_duration(dur, sizeof(dur), (long)(time(NULL) - info[i].started));
		px_cli_printf(cli, "%-8d %-24s %5s %-6s %s\n", (int)info[i].tid, info[i].name, nice,
			      calls_column(&info[i]), dur);
	}
	px_cli_printf(cli, "%zu threads listed.\n", n);
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_stop(px_cli *cli, int argc, char **argv)
{
	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	if (!strcasecmp(argv[2], "now")) {
		px_log_notice("Stop requested from a console (pid %d, uid %d)",
			      (int)px_cli_pid(cli), (int)px_cli_uid(cli));
		px_core_request_stop(PX_STOP_NOW);
	} else {
		px_log_notice("Graceful stop requested from a console (pid %d, uid %d)",
			      (int)px_cli_pid(cli), (int)px_cli_uid(cli));
		px_core_request_stop(PX_STOP_GRACEFULLY);
	}
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_reload(px_cli *cli, int argc, char **argv)
{
	px_err err = {""};

	if (argc != 2)
		return PX_CLI_SHOWUSAGE;
	if (px_core_reload(&err) < 0) {
		px_cli_printf(cli, "Reload failed: %s\nThe running configuration was kept.\n",
			      err.msg);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Reload complete.\n");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_set_level(px_cli *cli, int argc, char **argv)
{
	bool verbose = !strcasecmp(argv[2], "verbose");
	char *end;
	long level;
	int v = px_log_get_verbose(), d = px_log_get_debug();

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	if (!strcasecmp(argv[3], "off")) {
		level = 0;
	} else {
		level = strtol(argv[3], &end, 10);
		if (*end || end == argv[3] || level < 0 || level > 100)
			return PX_CLI_SHOWUSAGE;
	}
	if (verbose)
		v = (int)level;
	else
		d = (int)level;
	px_log_set_levels(v, d);
	if (cli->console) {
		int cv, cd;
		px_console_get_levels(cli->console, &cv, &cd);
		px_console_set_levels(cli->console, verbose ? (int)level : cv,
				      verbose ? cd : (int)level);
	}
	if (level)
		px_cli_printf(cli, "%s is now %ld.\n", verbose ? "Verbosity" : "Core debug", level);
	else
		px_cli_printf(cli, "%s is now OFF.\n", verbose ? "Verbosity" : "Core debug");
	return PX_CLI_SUCCESS;
}

static void complete_level_value(px_cli_completion *c, int argc, char **argv, int pos)
{
	static const char *const values[] = {"off", "1", "2", "3", "4", "5", "10"};

	if (pos == 3)
		for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
			px_cli_complete_add(c, values[i]);
}

/* ---- module ---- */

static enum px_cli_status cmd_module_show(px_cli *cli, int argc, char **argv)
{
	struct px_module_status list[256];
	size_t n, shown = 0;
	const char *like = NULL;
	char pattern[256];

	if (argc == 4 && !strcasecmp(argv[2], "like"))
		like = argv[3];
	else if (argc != 2)
		return PX_CLI_SHOWUSAGE;
	/* "like" takes a substring, as Asterisk does, or a glob when it has one. */
	if (like)
		snprintf(pattern, sizeof(pattern), strpbrk(like, "*?[") ? "%s" : "*%s*", like);
	n = px_loader_list(list, sizeof(list) / sizeof(list[0]));
	px_cli_printf(cli, "%-24s %-48s %-12s %-10s %s\n", "Module", "Description", "Kind",
		      "Use Count", "Status");
	for (size_t i = 0; i < n && i < sizeof(list) / sizeof(list[0]); i++) {
		if (like && fnmatch(pattern, list[i].name, 0) != 0)
			continue;
		px_cli_printf(cli, "%-24s %-48.48s %-12s %-10d %s\n", list[i].name,
			      list[i].description, px_module_kind_name(list[i].kind),
			      list[i].use_count,
			      list[i].required ? "Running (required)" : "Running");
		shown++;
	}
	px_cli_printf(cli, "%zu modules loaded\n", shown);
	return PX_CLI_SUCCESS;
}

static void complete_loaded(px_cli_completion *c, int argc, char **argv, int pos)
{
	struct px_module_status list[256];
	size_t n = px_loader_list(list, sizeof(list) / sizeof(list[0]));

	for (size_t i = 0; i < n && i < sizeof(list) / sizeof(list[0]); i++)
		px_cli_complete_add(c, list[i].name);
}

static void complete_unload(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 2)
		px_cli_complete_add(c, "-f");
	complete_loaded(c, argc, argv, pos);
}

static void complete_available(px_cli_completion *c, int argc, char **argv, int pos)
{
	char **names;

	if (pos != 2)
		return;
	names = px_loader_available();
	for (size_t i = 0; names && names[i]; i++)
		if (!px_loader_is_loaded(names[i]))
			px_cli_complete_add(c, names[i]);
	px_config_list_free(names);
}

static enum px_cli_status cmd_module_load(px_cli *cli, int argc, char **argv)
{
	px_err err = {""};

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	if (px_loader_load(argv[2], &err) < 0) {
		px_cli_printf(cli, "Unable to load module %s: %s\n", argv[2], err.msg);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Loaded %s\n", argv[2]);
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_module_unload(px_cli *cli, int argc, char **argv)
{
	bool force = false;
	int first = 2;
	px_err err = {""};
	enum px_cli_status st = PX_CLI_SUCCESS;

	if (argc > 2 && (!strcmp(argv[2], "-f") || !strcmp(argv[2], "-h"))) {
		force = !strcmp(argv[2], "-f");
		first = 3;
	}
	if (argc <= first)
		return PX_CLI_SHOWUSAGE;
	for (int i = first; i < argc; i++) {
		if (px_loader_unload(argv[i], force, &err) < 0) {
			px_cli_printf(cli, "Unable to unload %s: %s\n", argv[i], err.msg);
			st = PX_CLI_FAILURE;
		} else {
			px_cli_printf(cli, "Unloaded %s\n", argv[i]);
		}
	}
	return st;
}

static enum px_cli_status cmd_module_reload(px_cli *cli, int argc, char **argv)
{
	px_err err = {""};
	enum px_cli_status st = PX_CLI_SUCCESS;

	if (argc == 2)
		return cmd_reload(cli, argc, argv);
	for (int i = 2; i < argc; i++) {
		if (px_loader_reload(argv[i], &err) < 0) {
			px_cli_printf(cli, "Unable to reload %s: %s\n", argv[i], err.msg);
			st = PX_CLI_FAILURE;
		} else {
			px_cli_printf(cli, "Reloaded %s\n", argv[i]);
		}
	}
	return st;
}

/* ---- logger ---- */

static enum px_cli_status cmd_logger_show(px_cli *cli, int argc, char **argv)
{
	char levels[128];

	if (argc != 2 && !(argc == 3 && !strcasecmp(argv[2], "channels")))
		return PX_CLI_SHOWUSAGE;
	px_cli_printf(cli, "Logger queue: none (writes are direct)\n");
	px_cli_printf(cli, "Verbosity: %d  Debug: %d\n\n", px_log_get_verbose(),
		      px_log_get_debug());
	px_cli_printf(cli, "%-40s %-8s %s\n", "Channel", "Type", "Configuration");
	px_cli_printf(cli, "%-40s %-8s %s\n", "-------", "----", "-------------");
	px_log_describe(print_line, cli);
	if (cli->console) {
		int v, d;
		px_console_get_levels(cli->console, &v, &d);
		px_log_mask_string(px_console_level_mask(cli->console), levels, sizeof(levels));
		px_cli_printf(cli, "%-40s %-8s %s (verbose %d, debug %d)\n", "this console",
			      "Remote", levels, v, d);
	}
	px_cli_printf(cli, "%-40s %-8s %d connected\n", "consoles", "Remote", px_console_count());
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_logger_set_level(px_cli *cli, int argc, char **argv)
{
	enum px_log_level level;
	bool on = true;

	if (argc != 4 && argc != 5)
		return PX_CLI_SHOWUSAGE;
	if (px_log_level_parse(argv[3], &level) < 0) {
		px_cli_printf(cli,
			      "Unknown log level '%s' (error, warning, notice, verbose, debug)\n",
			      argv[3]);
		return PX_CLI_FAILURE;
	}
	if (argc == 5 && px_parse_bool(argv[4], &on) < 0)
		return PX_CLI_SHOWUSAGE;
	if (!cli->console) {
		px_cli_printf(cli, "This command sets the levels of a console; run it from one.\n");
		return PX_CLI_FAILURE;
	}
	px_console_set_level_enabled(cli->console, level, on);
	px_cli_printf(cli, "Logger status for '%s' has been set to '%s'.\n",
		      px_log_level_name(level), on ? "on" : "off");
	return PX_CLI_SUCCESS;
}

static void complete_log_level(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3) {
		for (int i = 0; i < PX_LOG_LEVELS; i++) {
			char lower[16];
			const char *name = px_log_level_name((enum px_log_level)i);
			size_t k;
			for (k = 0; name[k] && k < sizeof(lower) - 1; k++)
				lower[k] = (char)(name[k] | 0x20);
			lower[k] = '\0';
			px_cli_complete_add(c, lower);
		}
	} else if (pos == 4) {
		px_cli_complete_add(c, "on");
		px_cli_complete_add(c, "off");
	}
}

static enum px_cli_status cmd_logger_reopen(px_cli *cli, int argc, char **argv)
{
	px_err err = {""};

	if (argc != 2)
		return PX_CLI_SHOWUSAGE;
	if (px_log_reopen(&err) < 0) {
		px_cli_printf(cli, "%s\n", err.msg);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Log files reopened.\n");
	return PX_CLI_SUCCESS;
}

static const struct px_cli_command core_commands[] = {
	{"help", "Display help list, or specific help on a command",
	 "Usage: help [topic]\n"
	 "       When called with a topic as an argument, displays usage\n"
	 "       information on the given command. If called without a\n"
	 "       topic, it provides a list of commands.",
	 cmd_help, px_cli_help_complete, PX_ROLE_MONITOR},
	{"core show version", "Display version info",
	 "Usage: core show version\n"
	 "       Shows Plexus version information.",
	 cmd_show_version, NULL, PX_ROLE_MONITOR},
	{"core show uptime", "Show uptime information",
	 "Usage: core show uptime [seconds]\n"
	 "       Shows how long Plexus has been running and when it was last reloaded.\n"
	 "       With 'seconds', both as plain numbers of seconds.",
	 cmd_show_uptime, NULL, PX_ROLE_MONITOR},
	{"core show settings", "Show some core settings",
	 "Usage: core show settings\n"
	 "       Shows the daemon's settings from plexus.conf and its current state.",
	 cmd_show_settings, NULL, PX_ROLE_MONITOR},
	{"core show threads", "Show running threads",
	 "Usage: core show threads\n"
	 "       Lists the threads of plexusd with their kernel thread ids, their nice\n"
	 "       values, and whether they carry calls: yes for those that run at\n"
	 "       plexus.conf's call_nice, all for the one every call passes (the SIP\n"
	 "       thread), which runs five levels ahead of it.",
	 cmd_show_threads, NULL, PX_ROLE_MONITOR},
	{"core show translation", "Display translation matrix",
	 "Usage: core show translation [paths FORMAT]\n"
	 "       Displays the cost, in microseconds for one second of audio, of the\n"
	 "       translation path between every two formats (rows: source, columns:\n"
	 "       destination), as measured when the translators loaded. With paths,\n"
	 "       the steps of the path from FORMAT to every other format.",
	 px_codec_cmd_show_translation, NULL, PX_ROLE_MONITOR},
	{"core show codecs", "Displays a list of registered codecs",
	 "Usage: core show codecs\n"
	 "       Lists the registered formats: name, RTP encoding, sample rate, RTP\n"
	 "       clock, payload type and the module that registered them.",
	 px_codec_cmd_show_codecs, NULL, PX_ROLE_MONITOR},
	{"core stop now|gracefully", "Shut down Plexus",
	 "Usage: core stop now|gracefully\n"
	 "       'now' stops at once, hanging up every call; 'gracefully' refuses new\n"
	 "       calls and stops when the current ones have ended.",
	 cmd_stop, NULL, PX_ROLE_ADMIN},
	{"core reload", "Reload configuration",
	 "Usage: core reload\n"
	 "       Re-reads plexus.conf and reloads every module. A configuration file\n"
	 "       with errors is reported and the running configuration is kept.",
	 cmd_reload, NULL, PX_ROLE_ADMIN},
	{"core set verbose|debug", "Set level of verbose or debug messages",
	 "Usage: core set verbose|debug <level>|off\n"
	 "       Sets the daemon's level and this console's level of verbose or\n"
	 "       debug messages.",
	 cmd_set_level, complete_level_value, PX_ROLE_ADMIN},
	{"module show", "List modules and info",
	 "Usage: module show [like <pattern>]\n"
	 "       Shows the loaded modules; with 'like', those whose name contains\n"
	 "       the pattern (or matches it, when it holds * ? or [).",
	 cmd_module_show, NULL, PX_ROLE_MONITOR},
	{"module load", "Load a module",
	 "Usage: module load <module name>\n"
	 "       Loads the named module from the module directory.",
	 cmd_module_load, complete_available, PX_ROLE_ADMIN},
	{"module unload", "Unload a module",
	 "Usage: module unload [-f] <module name> [<module name> ...]\n"
	 "       Unloads the named modules. A module in use is not unloaded unless\n"
	 "       -f forces it.",
	 cmd_module_unload, complete_unload, PX_ROLE_ADMIN},
	{"module reload", "Reload configuration for a module",
	 "Usage: module reload [<module name> ...]\n"
	 "       Reloads the named modules, or everything when none is named.",
	 cmd_module_reload, complete_loaded, PX_ROLE_ADMIN},
	{"logger show", "List configured log channels",
	 "Usage: logger show [channels]\n"
	 "       Lists the log sinks (stderr, file, syslog), their levels, and this\n"
	 "       console's levels.",
	 cmd_logger_show, NULL, PX_ROLE_MONITOR},
	{"logger set level", "Enables/Disables a specific logging level for this console",
	 "Usage: logger set level {error|warning|notice|verbose|debug} [on|off]\n"
	 "       Turns a log level on or off for this console only.",
	 cmd_logger_set_level, complete_log_level, PX_ROLE_MONITOR},
	{"logger reopen", "Reopen the log file",
	 "Usage: logger reopen\n"
	 "       Reopens the log file, after it was rotated.",
	 cmd_logger_reopen, NULL, PX_ROLE_ADMIN},
};

int px_core_commands_register(px_err *err)
{
	return px_cli_register(NULL, core_commands,
			       sizeof(core_commands) / sizeof(core_commands[0]), err);
}

void px_core_commands_unregister(void)
{
	px_cli_unregister(core_commands, sizeof(core_commands) / sizeof(core_commands[0]));
}
