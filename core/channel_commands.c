/*
 * Console commands about calls: "core show channels [verbose|concise]",
 * "core show channel NAME", "channel request hangup NAME|all", "channel
 * hangup NAME [cause]", "channel originate ...", "channel redirect NAME
 * exten@context", "core show channeltypes", "core show applications" and
 * "core show application NAME", in the formats Asterisk administrators
 * know. Watching needs the monitor role, steering calls operator.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/dialplan.h>
#include <plexus/cli.h>
#include <plexus/media.h>

#include "app_internal.h"
#include "channel_commands.h"
#include "func_internal.h"
#include "channel_internal.h"

struct list_ctx {
	px_cli *cli;
	bool verbose;
	bool concise;
	int count;
};

static void format_hms(long secs, char *buf, size_t size)
{
	snprintf(buf, size, "%02ld:%02ld:%02ld", secs / 3600, (secs / 60) % 60, secs % 60);
}

static void list_one(void *ctx, px_channel *ch)
{
	struct list_ctx *l = ctx;
	char context[80], exten[80], app[80], data[256], cnum[80], cname[80], dur[64];
	char location[200], appdata[340];
	px_channel *peer = px_channel_get_peer(ch);
	long secs = (long)(time(NULL) - px_channel_created(ch));

	px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
	px_channel_get_application(ch, app, sizeof(app), data, sizeof(data));
	px_channel_get_caller(ch, cnum, sizeof(cnum), cname, sizeof(cname));
	format_hms(secs, dur, sizeof(dur));
	snprintf(location, sizeof(location), "%s@%s:1", exten, context);
	snprintf(appdata, sizeof(appdata), "%s(%s)", app[0] ? app : "(None)", data);
	if (l->concise) {
		px_cli_printf(l->cli, "%s!%s!%s!1!%s!%s!%s!%s!!%ld!%s!%s!%s\n", px_channel_name(ch),
			      context, exten, px_channel_state_name(px_channel_state(ch)), app,
			      data, cnum, secs, peer ? px_channel_name(peer) : "(None)",
			      px_channel_uniqueid(ch), px_channel_linkedid(ch));
	} else if (l->verbose) {
		px_cli_printf(l->cli, "%-24s %-20s %-20s %-7s %-16s %-15s %-8s %-20s\n",
			      px_channel_name(ch), context, exten,
			      px_channel_state_name(px_channel_state(ch)), appdata, cnum, dur,
			      peer ? px_channel_name(peer) : "(None)");
	} else {
		px_cli_printf(l->cli, "%-24s %-26s %-7s %s\n", px_channel_name(ch), location,
			      px_channel_state_name(px_channel_state(ch)), appdata);
	}
	l->count++;
	px_channel_unref(peer);
}

static enum px_cli_status cmd_show_channels(px_cli *cli, int argc, char **argv)
{
	struct list_ctx l = {.cli = cli};

	if (argc == 4 && !strcasecmp(argv[3], "verbose"))
		l.verbose = true;
	else if (argc == 4 && !strcasecmp(argv[3], "concise"))
		l.concise = true;
	else if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	if (l.verbose)
		px_cli_printf(cli, "%-24s %-20s %-20s %-7s %-16s %-15s %-8s %-20s\n", "Channel",
			      "Context", "Extension", "State", "Application(Data)", "CallerID",
			      "Duration", "BridgedTo");
	else if (!l.concise)
		px_cli_printf(cli, "%-24s %-26s %-7s %s\n", "Channel", "Location", "State",
			      "Application(Data)");
	px_channel_foreach(list_one, &l);
	if (!l.concise) {
		px_cli_printf(cli, "%d active channel%s\n", l.count, l.count == 1 ? "" : "s");
		px_cli_printf(cli, "%d active call%s\n", px_channel_sessions_running(),
			      px_channel_sessions_running() == 1 ? "" : "s");
	}
	return PX_CLI_SUCCESS;
}

static void print_var(void *ctx, const char *name, const char *value)
{
	px_cli_printf(ctx, "%s=%s\n", name, value);
}

static enum px_cli_status cmd_show_channel(px_cli *cli, int argc, char **argv)
{
	px_channel *ch, *peer;
	char context[80], exten[80], app[80], data[256], num[80], name[80], dur[64];
	px_rtp *rtp;

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	ch = px_channel_find(argv[3]);
	if (!ch) {
		px_cli_printf(cli, "%s is not a known channel\n", argv[3]);
		return PX_CLI_FAILURE;
	}
	peer = px_channel_get_peer(ch);
	px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
	px_channel_get_application(ch, app, sizeof(app), data, sizeof(data));
	format_hms((long)(time(NULL) - px_channel_created(ch)), dur, sizeof(dur));
	px_cli_printf(cli, " -- General --\n");
	px_cli_printf(cli, "           Name: %s\n", px_channel_name(ch));
	px_cli_printf(cli, "           Type: %s\n", px_channel_tech(ch)->type);
	px_cli_printf(cli, "       UniqueID: %s\n", px_channel_uniqueid(ch));
	px_cli_printf(cli, "       LinkedID: %s\n", px_channel_linkedid(ch));
	px_channel_get_caller(ch, num, sizeof(num), name, sizeof(name));
	px_cli_printf(cli, "      Caller ID: %s\n", num[0] ? num : "(N/A)");
	px_cli_printf(cli, " Caller ID Name: %s\n", name[0] ? name : "(N/A)");
	px_channel_get_connected(ch, num, sizeof(num), name, sizeof(name));
	px_cli_printf(cli, "Connected Line ID: %s\n", num[0] ? num : "(N/A)");
	px_cli_printf(cli, "Connected Line ID Name: %s\n", name[0] ? name : "(N/A)");
	px_cli_printf(cli, "          State: %s (%d)\n",
		      px_channel_state_name(px_channel_state(ch)), (int)px_channel_state(ch));
	px_cli_printf(cli, "  Elapsed Time: %s\n", dur);
	px_cli_printf(cli, "  Bridged Channel: %s\n", peer ? px_channel_name(peer) : "(None)");
	px_cli_printf(cli, " --   PBX   --\n");
	px_cli_printf(cli, "        Context: %s\n", context);
	px_cli_printf(cli, "      Extension: %s\n", exten);
	px_cli_printf(cli, "    Application: %s\n", app[0] ? app : "(N/A)");
	px_cli_printf(cli, "           Data: %s\n", data[0] ? data : "(Empty)");
	rtp = px_channel_rtp(ch);
	if (rtp) {
		struct px_rtp_stats st;
		px_rtp_get_stats(rtp, &st);
		px_cli_printf(cli, " --   RTP   --\n");
		px_cli_printf(cli, "     Local port: %u  worker: media/%u\n",
			      (unsigned)px_rtp_local_port(rtp), st.worker);
		px_cli_printf(cli, "  RX packets: %llu  bytes: %llu  lost: %llu  dropped: %llu\n",
			      (unsigned long long)st.rx_packets, (unsigned long long)st.rx_bytes,
			      (unsigned long long)st.rx_lost, (unsigned long long)st.rx_dropped);
		px_cli_printf(cli, "  TX packets: %llu  bytes: %llu\n",
			      (unsigned long long)st.tx_packets, (unsigned long long)st.tx_bytes);
		px_cli_printf(cli, "  RTCP sent: %llu  received: %llu  jitter: %u ms\n",
			      (unsigned long long)st.rtcp_tx, (unsigned long long)st.rtcp_rx,
			      st.jitter_ms);
		if (st.remote_reported)
			px_cli_printf(cli,
				      "  Far end reports: lost %u (%u%% lately)  jitter: %u ms  "
				      "round trip: %u ms\n",
				      st.remote_lost, st.remote_fraction_lost * 100 / 256,
				      st.remote_jitter_ms, st.rtt_ms);
	}
	px_cli_printf(cli, "      Variables:\n");
	px_channel_var_foreach(ch, print_var, cli);
	px_channel_unref(peer);
	px_channel_unref(ch);
	return PX_CLI_SUCCESS;
}

static void complete_channel(void *ctx, px_channel *ch)
{
	px_cli_complete_add(ctx, px_channel_name(ch));
}

static void complete_app_name(void *ctx, const struct px_app *app)
{
	px_cli_complete_add(ctx, app->name);
}

static void complete_channels(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3)
		px_channel_foreach(complete_channel, c);
}

static enum px_cli_status cmd_request_hangup(px_cli *cli, int argc, char **argv)
{
	px_channel *ch;

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	if (!strcasecmp(argv[3], "all")) {
		size_t n = px_channel_count();
		px_channel_hangup_all(PX_CAUSE_NORMAL_CLEARING);
		px_cli_printf(cli, "Requested hangup on %zu channel%s\n", n, n == 1 ? "" : "s");
		return PX_CLI_SUCCESS;
	}
	ch = px_channel_find(argv[3]);
	if (!ch) {
		px_cli_printf(cli, "%s is not a known channel\n", argv[3]);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Requested Hangup on channel '%s'\n", px_channel_name(ch));
	px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(ch);
	return PX_CLI_SUCCESS;
}

static void complete_hangup(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3) {
		px_cli_complete_add(c, "all");
		px_channel_foreach(complete_channel, c);
	}
}

static enum px_cli_status cmd_hangup(px_cli *cli, int argc, char **argv)
{
	px_channel *ch;
	long cause = PX_CAUSE_NORMAL_CLEARING;
	char *end;

	if (argc != 3 && argc != 4)
		return PX_CLI_SHOWUSAGE;
	if (argc == 4) {
		cause = strtol(argv[3], &end, 10);
		if (*end || end == argv[3] || cause < 1 || cause > 127) {
			px_cli_printf(cli, "'%s' is not a Q.850 cause (1 to 127)\n", argv[3]);
			return PX_CLI_SHOWUSAGE;
		}
	}
	ch = px_channel_find(argv[2]);
	if (!ch) {
		px_cli_printf(cli, "%s is not a known channel\n", argv[2]);
		return PX_CLI_FAILURE;
	}
	px_channel_hangup(ch, (int)cause);
	px_cli_printf(cli, "Hung up %s (cause %ld: %s)\n", px_channel_name(ch), cause,
		      px_cause_text((int)cause));
	px_channel_unref(ch);
	return PX_CLI_SUCCESS;
}

/* "exten@context" into its parts; false when it is not that. */
static bool split_place(char *place, char **exten, char **context)
{
	char *at = strchr(place, '@');

	if (!at || at == place || !at[1])
		return false;
	*at = '\0';
	*exten = place;
	*context = at + 1;
	return true;
}

static enum px_cli_status cmd_originate(px_cli *cli, int argc, char **argv)
{
	struct px_originate o = {0};
	char tech[32], *slash, *exten, *context;
	px_channel *ch;
	px_err err = {""};

	/* channel originate Tech/Res extension exten@context
	 * channel originate Tech/Res application App [args] */
	if (argc < 5 || argc > 6)
		return PX_CLI_SHOWUSAGE;
	slash = strchr(argv[2], '/');
	if (!slash || slash == argv[2] || !slash[1] || (size_t)(slash - argv[2]) >= sizeof(tech)) {
		px_cli_printf(cli, "'%s' is not Tech/Resource\n", argv[2]);
		return PX_CLI_SHOWUSAGE;
	}
	snprintf(tech, sizeof(tech), "%.*s", (int)(slash - argv[2]), argv[2]);
	o.tech = tech;
	o.dest = slash + 1;
	if (!strcasecmp(argv[3], "extension") && argc == 5) {
		if (!split_place(argv[4], &exten, &context)) {
			px_cli_printf(cli, "'%s' is not exten@context\n", argv[4]);
			return PX_CLI_SHOWUSAGE;
		}
		o.exten = exten;
		o.context = context;
	} else if (!strcasecmp(argv[3], "application")) {
		o.app = argv[4];
		o.app_args = argc == 6 ? argv[5] : NULL;
	} else {
		return PX_CLI_SHOWUSAGE;
	}
	if (px_channel_originate(&o, &ch, &err) < 0) {
		px_cli_printf(cli, "Originate failed: %s\n", err.msg);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Calling %s (uniqueid %s)\n", px_channel_name(ch),
		      px_channel_uniqueid(ch));
	px_channel_unref(ch);
	return PX_CLI_SUCCESS;
}

static void complete_originate(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3) {
		px_cli_complete_add(c, "extension");
		px_cli_complete_add(c, "application");
	} else if (pos == 4 && !strcasecmp(argv[3], "application")) {
		px_app_foreach(complete_app_name, c);
	}
}

static enum px_cli_status cmd_redirect(px_cli *cli, int argc, char **argv)
{
	char *exten, *context;
	px_channel *ch;
	px_err err = {""};

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	if (!split_place(argv[3], &exten, &context)) {
		px_cli_printf(cli, "'%s' is not exten@context\n", argv[3]);
		return PX_CLI_SHOWUSAGE;
	}
	ch = px_channel_find(argv[2]);
	if (!ch) {
		px_cli_printf(cli, "%s is not a known channel\n", argv[2]);
		return PX_CLI_FAILURE;
	}
	if (px_channel_async_goto(ch, context, exten, &err) < 0) {
		px_cli_printf(cli, "Redirect failed: %s\n", err.msg);
		px_channel_unref(ch);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Channel '%s' redirected to %s@%s\n", px_channel_name(ch), exten,
		      context);
	px_channel_unref(ch);
	return PX_CLI_SUCCESS;
}

static void complete_channel_arg(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 2)
		px_channel_foreach(complete_channel, c);
}

static void print_tech(void *ctx, const struct px_channel_tech *t)
{
	px_cli_printf(ctx, "%-15s %s\n", t->type, t->description ? t->description : "");
}

static enum px_cli_status cmd_show_channeltypes(px_cli *cli, int argc, char **argv)
{
	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	px_cli_printf(cli, "%-15s %s\n", "Type", "Description");
	px_channel_tech_foreach(print_tech, cli);
	return PX_CLI_SUCCESS;
}

static void print_app(void *ctx, const struct px_app *app)
{
	px_cli_printf(ctx, "%20s: %s\n", app->name, app->synopsis);
}

static enum px_cli_status cmd_show_applications(px_cli *cli, int argc, char **argv)
{
	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	px_cli_printf(cli, "    -= Registered Plexus Applications =-\n");
	px_app_foreach(print_app, cli);
	return PX_CLI_SUCCESS;
}

struct app_find {
	const char *name;
	px_cli *cli;
	bool found;
};

static void show_app(void *ctx, const struct px_app *app)
{
	struct app_find *f = ctx;

	if (strcasecmp(app->name, f->name))
		return;
	f->found = true;
	px_cli_printf(f->cli, "\n  -= Info about application '%s' =-\n\n", app->name);
	px_cli_printf(f->cli, "[Synopsis]\n%s\n\n", app->synopsis);
	px_cli_printf(f->cli, "[Syntax]\n%s\n\n", app->syntax ? app->syntax : app->name);
	px_cli_printf(f->cli, "[Description]\n%s\n", app->description ? app->description : "");
}

static enum px_cli_status cmd_show_application(px_cli *cli, int argc, char **argv)
{
	struct app_find f = {.cli = cli};

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	f.name = argv[3];
	px_app_foreach(show_app, &f);
	if (!f.found) {
		px_cli_printf(cli, "Your application '%s' was not found.\n", argv[3]);
		return PX_CLI_FAILURE;
	}
	return PX_CLI_SUCCESS;
}

static void complete_apps(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3)
		px_app_foreach(complete_app_name, c);
}

static void print_func(void *ctx, const struct px_func *f)
{
	struct app_find *list = ctx;

	if (list->name && strncasecmp(f->name, list->name, strlen(list->name)))
		return;
	list->found = true;
	px_cli_printf(list->cli, "%-20s %-35s %s\n", f->name, f->syntax ? f->syntax : f->name,
		      f->synopsis);
}

static enum px_cli_status cmd_show_functions(px_cli *cli, int argc, char **argv)
{
	struct app_find list = {.cli = cli};

	if (argc > 5 || (argc >= 4 && strcasecmp(argv[3], "like")) || argc == 4)
		return PX_CLI_SHOWUSAGE;
	list.name = argc == 5 ? argv[4] : NULL;
	px_cli_printf(cli,
		      "%s Custom Functions:\n"
		      "-----------------------------------------------------------------"
		      "---------------\n",
		      list.name ? "Matching" : "Installed");
	px_func_foreach(print_func, &list);
	return PX_CLI_SUCCESS;
}

static void show_func(void *ctx, const struct px_func *f)
{
	struct app_find *find = ctx;

	if (strcasecmp(f->name, find->name))
		return;
	find->found = true;
	px_cli_printf(find->cli, "\n  -= Info about function '%s' =-\n\n", f->name);
	px_cli_printf(find->cli, "[Synopsis]\n%s\n\n", f->synopsis);
	px_cli_printf(find->cli, "[Syntax]\n%s\n\n", f->syntax ? f->syntax : f->name);
	px_cli_printf(find->cli, "[Access]\n%s\n\n", f->write ? "read/write" : "read-only");
	px_cli_printf(find->cli, "[Description]\n%s\n", f->description ? f->description : "");
}

static enum px_cli_status cmd_show_function(px_cli *cli, int argc, char **argv)
{
	struct app_find find = {.cli = cli};

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	find.name = argv[3];
	px_func_foreach(show_func, &find);
	if (!find.found) {
		px_cli_printf(cli, "No function by that name registered: '%s'.\n", argv[3]);
		return PX_CLI_FAILURE;
	}
	return PX_CLI_SUCCESS;
}

static void complete_func(void *ctx, const struct px_func *f)
{
	px_cli_complete_add(ctx, f->name);
}

static void complete_funcs(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3)
		px_func_foreach(complete_func, c);
}

static const struct px_cli_command channel_commands[] = {
	{"core show channels", "Display information on channels",
	 "Usage: core show channels [verbose|concise]\n"
	 "       Lists the channels: name, dialplan location, state and application;\n"
	 "       'verbose' adds caller ID, duration and the bridged channel,\n"
	 "       'concise' prints one '!'-separated line per channel for scripts.",
	 cmd_show_channels, NULL, PX_ROLE_MONITOR},
	{"core show channel", "Display information on a specific channel",
	 "Usage: core show channel <channel>\n"
	 "       Shows everything known about a channel, its RTP counters and its\n"
	 "       variables.",
	 cmd_show_channel, complete_channels, PX_ROLE_MONITOR},
	{"channel request hangup", "Request a hangup on a given channel",
	 "Usage: channel request hangup <channel>|all\n"
	 "       Requests that a channel (or every channel) be hung up.",
	 cmd_request_hangup, complete_hangup, PX_ROLE_OPERATOR},
	{"channel hangup", "Hang up a channel with a cause",
	 "Usage: channel hangup <channel> [cause]\n"
	 "       Hangs up a channel; cause is a Q.850 number (default 16, normal\n"
	 "       clearing), told to the far end and in the Hangup event.",
	 cmd_hangup, complete_channel_arg, PX_ROLE_OPERATOR},
	{"channel originate", "Originate a call",
	 "Usage: channel originate <tech/data> extension <exten>@<context>\n"
	 "       channel originate <tech/data> application <application> [data]\n"
	 "       Calls tech/data (e.g. SIP/1002); when it answers, it runs the dialplan\n"
	 "       at exten@context, or the application with its data.",
	 cmd_originate, complete_originate, PX_ROLE_OPERATOR},
	{"channel redirect", "Redirect a call to an extension",
	 "Usage: channel redirect <channel> <exten>@<context>\n"
	 "       Sends a live channel to another place in the dialplan: it leaves the\n"
	 "       application it is in (its bridge ends; the other party is hung up)\n"
	 "       and the dialplan runs at exten@context.",
	 cmd_redirect, complete_channel_arg, PX_ROLE_OPERATOR},
	{"core show channeltypes", "List available channel types",
	 "Usage: core show channeltypes\n"
	 "       Lists the registered channel technologies.",
	 cmd_show_channeltypes, NULL, PX_ROLE_MONITOR},
	{"core show applications", "Shows registered dialplan applications",
	 "Usage: core show applications\n"
	 "       Lists the registered dialplan applications.",
	 cmd_show_applications, NULL, PX_ROLE_MONITOR},
	{"core show application", "Describe a specific dialplan application",
	 "Usage: core show application <application>\n"
	 "       Shows the synopsis, syntax and description of an application.",
	 cmd_show_application, complete_apps, PX_ROLE_MONITOR},
	{"core show functions", "Shows registered dialplan functions",
	 "Usage: core show functions [like <text>]\n"
	 "       Lists the registered dialplan functions (those whose name starts\n"
	 "       with text, given 'like') with their syntax and synopsis.",
	 cmd_show_functions, NULL, PX_ROLE_MONITOR},
	{"core show function", "Describe a specific dialplan function",
	 "Usage: core show function <function>\n"
	 "       Shows the synopsis, syntax, access and description of a function.",
	 cmd_show_function, complete_funcs, PX_ROLE_MONITOR},
};

int px_channel_commands_register(px_err *err)
{
	return px_cli_register(NULL, channel_commands,
			       sizeof(channel_commands) / sizeof(channel_commands[0]), err);
}

void px_channel_commands_unregister(void)
{
	px_cli_unregister(channel_commands, sizeof(channel_commands) / sizeof(channel_commands[0]));
}
