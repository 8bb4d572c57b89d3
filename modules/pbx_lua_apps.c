/*
 * The dialplan applications that belong to the dialplan engine itself, with
 * Asterisk's names and arguments: Goto and GotoIf (move the call to another
 * extension; the running extension function is left and the target's runs
 * from its start, as in Asterisk's pbx_lua), Set (a variable or a dialplan
 * function), NoOp, Verbose and Log. A Lua extension is one function, so
 * the only priority there is is 1.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/app.h>
#include <plexus/func.h>
#include <plexus/log.h>

#include "pbx_lua.h"

/* Move ch to [[context,]exten,]priority, as Goto does. -1 when the label
 * cannot be followed (the call then ends, as in Asterisk). */
static int go_to(px_channel *ch, const char *app, char *label)
{
	char ctx[PXLUA_POS_MAX], ext[PXLUA_POS_MAX];
	char *argv[4];
	const char *context, *exten, *prio;
	int argc = px_app_split_args(label, argv, 4);

	px_channel_get_dialplan(ch, ctx, sizeof(ctx), ext, sizeof(ext));
	for (int i = 0; i < argc; i++)
		argv[i] = px_app_trim(argv[i]);
	switch (argc) {
	case 1:
		context = ctx, exten = ext, prio = argv[0];
		break;
	case 2:
		context = ctx, exten = argv[0], prio = argv[1];
		break;
	case 3:
		context = argv[0], exten = argv[1], prio = argv[2];
		break;
	default:
		px_log_warning("%s: '%s': use [[context,]extension,]priority", app, label);
		return -1;
	}
	if (!*context)
		context = ctx;
	if (!*exten)
		exten = ext;
	if (*prio && strcmp(prio, "1") != 0) {
		px_log_warning("%s: %s,%s,%s: a Lua extension is one function and has priority 1 "
			       "only; ending the call",
			       app, context, exten, prio);
		return -1;
	}
	if (strlen(context) >= PXLUA_POS_MAX || strlen(exten) >= PXLUA_POS_MAX) {
		px_log_warning("%s: context or extension name longer than %d characters", app,
			       PXLUA_POS_MAX - 1);
		return -1;
	}
	px_verbose(3, "%s (%s,%s,1)", app, context, exten);
	px_channel_set_dialplan(ch, context, exten);
	if (pxlua_running && pxlua_running->ch == ch)
		pxlua_running->jumped = true;
	return 0;
}

static int goto_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data);
	int rc;

	if (!copy)
		return -1;
	if (!*px_app_trim(copy)) {
		px_log_warning("Goto requires an argument: [[context,]extension,]priority");
		free(copy);
		return -1;
	}
	rc = go_to(ch, "Goto", copy);
	free(copy);
	return rc;
}

static int gotoif_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *q, *iftrue, *iffalse, *label;
	int rc = 0;

	if (!copy)
		return -1;
	q = strchr(copy, '?');
	if (!q) {
		px_log_warning("GotoIf requires an argument: condition?[label1][:label2]");
		free(copy);
		return -1;
	}
	*q = '\0';
	iftrue = q + 1;
	iffalse = strchr(iftrue, ':');
	if (iffalse)
		*iffalse++ = '\0';
	label = px_app_condition_true(copy) ? iftrue : iffalse;
	if (label && *px_app_trim(label))
		rc = go_to(ch, "GotoIf", label);
	free(copy);
	return rc;
}

static int set_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *eq, *name;
	px_err err = {""};
	int rc = 0;

	if (!copy)
		return -1;
	eq = strchr(copy, '=');
	if (!eq) {
		px_log_warning("Set requires an argument: variable=value");
		free(copy);
		return 0;
	}
	*eq = '\0';
	name = px_app_trim(copy);
	if (!*name) {
		px_log_warning("Set: no variable name before '='");
	} else if (strchr(name, '(')) {
		if (px_func_write(ch, name, eq + 1, &err) < 0)
			px_log_warning("Set: %s", err.msg);
	} else if (px_channel_var_is_builtin(name)) {
		px_log_warning("Set: %s is read-only", name);
	} else {
		px_channel_var_set(ch, name, eq + 1);
	}
	free(copy);
	return rc;
}

static int noop_exec(px_channel *ch, const char *data)
{
	return 0;
}

static int verbose_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *msg, *comma;
	long level = 0;

	if (!copy)
		return 0;
	msg = copy;
	comma = strchr(copy, ',');
	if (comma) {
		char *end;
		*comma = '\0';
		level = strtol(px_app_trim(copy), &end, 10);
		if (*end || level < 0 || level > 4) {
			*comma = ',';
			level = 0;
		} else {
			msg = comma + 1;
		}
	}
	if (level == 0)
		px_log_notice("%s", msg);
	else
		px_verbose((int)level, "%s", msg);
	free(copy);
	return 0;
}

static int log_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *comma;
	const char *msg;
	enum px_log_level level;

	if (!copy)
		return 0;
	comma = strchr(copy, ',');
	if (!comma || px_log_level_parse(px_app_trim((*comma = '\0', copy)), &level) < 0) {
		px_log_warning("Log requires level,message (level: ERROR, WARNING, NOTICE, "
			       "VERBOSE or DEBUG)");
		free(copy);
		return 0;
	}
	msg = comma + 1;
	switch (level) {
	case PX_LOG_ERROR:
		px_log_error("%s: %s", px_channel_name(ch), msg);
		break;
	case PX_LOG_WARNING:
		px_log_warning("%s: %s", px_channel_name(ch), msg);
		break;
	case PX_LOG_NOTICE:
		px_log_notice("%s: %s", px_channel_name(ch), msg);
		break;
	case PX_LOG_VERBOSE:
		px_verbose(1, "%s: %s", px_channel_name(ch), msg);
		break;
	default:
		px_debug(1, "%s: %s", px_channel_name(ch), msg);
		break;
	}
	free(copy);
	return 0;
}

static const struct px_app lua_apps[] = {
	{
		.name = "Goto",
		.synopsis = "Jump to a particular extension in the dialplan",
		.syntax = "Goto([[context,]extension,]priority)",
		.description =
			"Moves the call to extension in context (the current ones when left\n"
			"out). The running extension function is left at once and the\n"
			"target's function runs from its start, as in Asterisk's pbx_lua;\n"
			"an extension that does not exist there leads to 'i' (or ends the\n"
			"call). A Lua extension has one priority: 1; any other ends the call.\n"
			"From Lua: app[\"goto\"](\"context\", \"extension\", 1).",
		.exec = goto_exec,
	},
	{
		.name = "GotoIf",
		.synopsis = "Conditional goto",
		.syntax = "GotoIf(condition?[label1][:label2])",
		.description =
			"Goes to label1 when condition is true and to label2 otherwise (an\n"
			"empty label goes nowhere: the function continues). A label is\n"
			"[[context,]extension,]priority as for Goto. Empty is false, a number\n"
			"is true when it is not 0, other text is true.",
		.exec = gotoif_exec,
	},
	{
		.name = "Log",
		.synopsis = "Send arbitrary text to a selected log level",
		.syntax = "Log(level,message)",
		.description = "Logs message, after the channel's name, at level ERROR, WARNING,\n"
			       "NOTICE, VERBOSE or DEBUG.",
		.exec = log_exec,
	},
	{
		.name = "NoOp",
		.synopsis = "Do nothing",
		.syntax = "NoOp([text])",
		.description = "Does nothing; its text shows in the verbose log line of every\n"
			       "application run, which makes it a dialplan trace.",
		.exec = noop_exec,
	},
	{
		.name = "Set",
		.synopsis = "Set a channel variable or a dialplan function",
		.syntax = "Set(name=value)",
		.description =
			"Sets the channel variable name to value, or writes the dialplan\n"
			"function name (Set(CALLERID(name)=Alice), Set(GLOBAL(x)=1),\n"
			"Set(DB(family/key)=v)). A name starting with '_' is inherited by the\n"
			"channels this one dials, one level; with '__', at every level.",
		.exec = set_exec,
	},
	{
		.name = "Verbose",
		.synopsis = "Send arbitrary text to verbose output",
		.syntax = "Verbose([level,]message)",
		.description = "Logs message at verbose level (1 to 4), or as a notice when the\n"
			       "level is 0 or left out.",
		.exec = verbose_exec,
	},
};

#define NAPPS (sizeof(lua_apps) / sizeof(lua_apps[0]))

int pxlua_apps_register(px_module *self, px_err *err)
{
	for (size_t i = 0; i < NAPPS; i++) {
		if (px_app_register(self, &lua_apps[i], err) < 0) {
			while (i-- > 0)
				px_app_unregister(&lua_apps[i]);
			return -1;
		}
	}
	return 0;
}

void pxlua_apps_unregister(void)
{
	for (size_t i = NAPPS; i-- > 0;)
		px_app_unregister(&lua_apps[i]);
}
