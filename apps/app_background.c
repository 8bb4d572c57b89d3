/*
 * app_background: the IVR menu pair Background and WaitExten. Background
 * plays prompts while listening for DTMF; WaitExten waits for digits after
 * them. Either, once the caller presses a digit, collects the extension the
 * caller means (more digits while the dialplan could still match a longer
 * one, each within the digit timeout) and moves the call there, or to 'i'
 * with INVALID_EXTEN set when nothing matches; WaitExten goes to 't' when
 * nothing was pressed in time. The move is the channel's new dialplan
 * position, which the dialplan engine follows as it follows Goto.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/dialplan.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/play.h>

#define EXTEN_MAX 80
#define POS_MAX   80
/* Asterisk's defaults for TIMEOUT(digit) and TIMEOUT(response). */
#define DIGIT_TIMEOUT_MS    5000
#define RESPONSE_TIMEOUT_MS 10000
#define TIMEOUT_MAX_S       3600.0

/* A timeout in ms from a channel variable holding seconds, or def. */
static int timeout_var(px_channel *ch, const char *name, int def)
{
	char buf[32], *end;
	double s;

	if (px_channel_var_get(ch, name, buf, sizeof(buf)) < 0 || !buf[0])
		return def;
	s = strtod(buf, &end);
	if (*end || s <= 0 || s > TIMEOUT_MAX_S) {
		px_log_warning("%s: %s = '%s' is not a number of seconds; using %d",
			       px_channel_name(ch), name, buf, def / 1000);
		return def;
	}
	return (int)(s * 1000);
}

/* Move ch to exten@context: the dialplan engine runs it when the
 * application returns. */
static void go(px_channel *ch, const char *context, const char *exten)
{
	px_verbose(3, "%s: goes to %s@%s", px_channel_name(ch), exten, context);
	px_channel_set_dialplan(ch, context, exten);
}

/* The caller pressed first: collect the rest of the extension and move
 * there. -1 when the channel hung up meanwhile. */
static int collect_and_go(px_channel *ch, const char *context, char first)
{
	char exten[EXTEN_MAX + 1] = {first, '\0'};
	char callerid[64], name[8];
	size_t len = 1;
	int digit_ms = timeout_var(ch, "DIGIT_TIMEOUT", DIGIT_TIMEOUT_MS);

	px_channel_get_caller(ch, callerid, sizeof(callerid), name, sizeof(name));
	while (len < EXTEN_MAX && px_dialplan_matchmore(context, exten, callerid)) {
		int d = px_play_wait_digit(ch, digit_ms);
		if (d == PX_PLAY_HANGUP)
			return -1;
		if (d == PX_PLAY_DONE)
			break; /* the inter-digit timeout: take what is there */
		exten[len++] = (char)d;
		exten[len] = '\0';
	}
	if (px_dialplan_exists(context, exten, callerid)) {
		go(ch, context, exten);
		return 0;
	}
	px_verbose(3, "%s: '%s' is not an extension of %s", px_channel_name(ch), exten, context);
	px_channel_var_set(ch, "INVALID_EXTEN", exten);
	if (px_dialplan_exists(context, "i", callerid)) {
		go(ch, context, "i");
		return 0;
	}
	px_log_warning("%s: invalid extension '%s' and no 'i' extension in context '%s'",
		       px_channel_name(ch), exten, context);
	return -1;
}

/* ---------------------------------------------------------------- Background */

static const char all_digits[] = "0123456789*#ABCD";

static int background_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *argv[4], *files, *file, *save = NULL;
	char context[POS_MAX], cur_exten[POS_MAX], callerid[64], name[8];
	bool skip = false, noanswer = false, matchonly = false, failed = false;
	int argc, rc = 0, digit = 0;

	if (!copy)
		return -1;
	argc = px_app_split_args(copy, argv, 4);
	files = argc > 0 ? px_app_trim(argv[0]) : "";
	if (argc > 1) {
		for (const char *o = argv[1]; *o; o++) {
			if (*o == 's')
				skip = true;
			else if (*o == 'n')
				noanswer = true;
			else if (*o == 'm')
				matchonly = true;
			else if (!isspace((unsigned char)*o))
				px_log_warning("Background: unknown option '%c' (s, n, m)", *o);
		}
	}
	if (argc > 2 && *px_app_trim(argv[2]))
		px_log_warning("Background: the language override '%s' is ignored; set LANGUAGE",
			       argv[2]);
	px_channel_get_dialplan(ch, context, sizeof(context), cur_exten, sizeof(cur_exten));
	if (argc > 3 && *px_app_trim(argv[3]))
		snprintf(context, sizeof(context), "%s", px_app_trim(argv[3]));
	px_channel_get_caller(ch, callerid, sizeof(callerid), name, sizeof(name));
	if (!*files) {
		px_log_warning("Background requires an argument: filename[&filename2...]");
		px_channel_var_set(ch, "BACKGROUNDSTATUS", "FAILED");
		free(copy);
		return -1;
	}
	if (px_channel_state(ch) != PX_STATE_UP) {
		if (skip) {
			px_channel_var_set(ch, "BACKGROUNDSTATUS", "SUCCESS");
			free(copy);
			return 0;
		}
		if (!noanswer && px_channel_answer(ch) < 0) {
			px_channel_var_set(ch, "BACKGROUNDSTATUS", "FAILED");
			free(copy);
			return -1;
		}
	}
	for (file = strtok_r(files, "&", &save); file && !digit;
	     file = strtok_r(NULL, "&", &save)) {
		px_err err = {""};
		file = px_app_trim(file);
		if (!*file)
			continue;
		for (;;) {
			int r = px_play_file(ch, file, all_digits, &err);
			if (r == PX_PLAY_HANGUP) {
				free(copy);
				return -1;
			}
			if (r == PX_PLAY_NOFILE || r == PX_PLAY_NOMEDIA) {
				px_log_warning("Background: %s: %s", px_channel_name(ch), err.msg);
				failed = true;
				break;
			}
			if (r > 0 && matchonly &&
			    !px_dialplan_canmatch(context, (char[]){(char)r, '\0'}, callerid))
				continue; /* 'm': a digit that starts nothing is let by */
			digit = r > 0 ? r : 0;
			break;
		}
	}
	free(copy);
	px_channel_var_set(ch, "BACKGROUNDSTATUS", failed ? "FAILED" : "SUCCESS");
	if (digit)
		rc = collect_and_go(ch, context, (char)digit);
	return rc;
}

/* ---------------------------------------------------------------- WaitExten */

static int waitexten_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *argv[2];
	char context[POS_MAX], exten[POS_MAX], callerid[64], name[8];
	int argc, timeout_ms, d;

	if (!copy)
		return -1;
	argc = px_app_split_args(copy, argv, 2);
	timeout_ms = timeout_var(ch, "RESPONSE_TIMEOUT", RESPONSE_TIMEOUT_MS);
	if (argc > 0 && *px_app_trim(argv[0])) {
		char *end;
		double s = strtod(px_app_trim(argv[0]), &end);
		if (*end || s <= 0 || s > TIMEOUT_MAX_S)
			px_log_warning("WaitExten: '%s' is not a number of seconds; waiting %d s",
				       argv[0], timeout_ms / 1000);
		else
			timeout_ms = (int)(s * 1000);
	}
	if (argc > 1 && *px_app_trim(argv[1]))
		px_log_warning("WaitExten: options '%s' are not supported (music on hold)",
			       argv[1]);
	free(copy);
	px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
	px_channel_get_caller(ch, callerid, sizeof(callerid), name, sizeof(name));
	d = px_play_wait_digit(ch, timeout_ms);
	if (d == PX_PLAY_HANGUP)
		return -1;
	if (d > 0)
		return collect_and_go(ch, context, (char)d);
	if (px_dialplan_exists(context, "t", callerid)) {
		px_verbose(3, "%s: timeout in %s, going to 't'", px_channel_name(ch), context);
		go(ch, context, "t");
		return 0;
	}
	px_log_warning("%s: WaitExten timed out and context '%s' has no 't' extension; hanging up",
		       px_channel_name(ch), context);
	return -1;
}

static const struct px_app apps[] = {
	{
		.name = "Background",
		.synopsis = "Play a file while awaiting extension",
		.syntax =
			"Background(filename[&filename2[&...]][,options[,langoverride[,context]]])",
		.description =
			"Plays the files (found as Playback finds them) while listening for DTMF.\n"
			"A digit stops the prompt; more digits are collected while an extension "
			"of\n"
			"the context could still match a longer number (each within DIGIT_TIMEOUT\n"
			"seconds, default 5), then the call goes to that extension, or to 'i' "
			"with\n"
			"INVALID_EXTEN set when there is none (no 'i': the call ends). Without a\n"
			"digit the dialplan goes on after the prompts (usually with WaitExten).\n"
			"A file that cannot be found is a warning, and the next one plays;\n"
			"BACKGROUNDSTATUS is then FAILED (else SUCCESS).\n"
			"Options: s  do nothing on an unanswered call;  n  do not answer it;\n"
			"m  only a digit that starts an extension of the context stops the "
			"prompt.\n"
			"langoverride is not supported (set LANGUAGE); context: where to look for\n"
			"and go to the extension (default: the current context).",
		.exec = background_exec,
	},
	{
		.name = "WaitExten",
		.synopsis = "Waits for an extension to be entered",
		.syntax = "WaitExten([seconds[,options]])",
		.description =
			"Waits for the caller to dial an extension of the current context: the\n"
			"first digit within seconds (default RESPONSE_TIMEOUT, else 10), the next\n"
			"ones as Background collects them; then the call goes to the extension, "
			"or\n"
			"to 'i' with INVALID_EXTEN set. Nothing pressed in time: the call goes to\n"
			"'t' (no 't': it ends). The music-on-hold option is not supported yet.",
		.exec = waitexten_exec,
	},
};
#define NAPPS (sizeof(apps) / sizeof(apps[0]))

static int background_load(px_module *self)
{
	px_err err = {""};

	for (size_t i = 0; i < NAPPS; i++) {
		if (px_app_register(self, &apps[i], &err) < 0) {
			px_log_error("app_background: %s", err.msg);
			return -1;
		}
	}
	return 0;
}

static int background_unload(px_module *self)
{
	(void)self;
	for (size_t i = NAPPS; i-- > 0;)
		px_app_unregister(&apps[i]);
	return 0;
}

PX_MODULE(.name = "app_background", .description = "Background and WaitExten: IVR menus",
	  .kind = PX_MODULE_APPLICATION, .load = background_load, .unload = background_unload);
