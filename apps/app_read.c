/*
 * app_read: the Read application, Asterisk's way of asking the caller for
 * a number. It plays the prompts (a digit cuts them short and counts as
 * the first one), collects digits up to a count or the '#' that ends the
 * input, within a timeout for the first digit and another between digits,
 * tries again when nothing was entered, and leaves the digits in the named
 * variable and what happened in READSTATUS.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/play.h>

#define MAXDIGITS 255
/* Asterisk's defaults for the first digit and between digits. */
#define FIRST_TIMEOUT_MS 10000
#define DIGIT_TIMEOUT_MS 5000
#define TIMEOUT_MAX_S    3600.0
#define ATTEMPTS_MAX     100

static const char all_digits[] = "0123456789*#ABCD";

enum read_result { READ_OK, READ_TIMEOUT, READ_HANGUP };

/* One attempt: the prompts, then the digits into buf. */
static enum read_result read_once(px_channel *ch, char *prompts, char *buf, size_t maxdigits,
				  int first_ms, int digit_ms)
{
	char *files = prompts ? strdup(prompts) : NULL, *file, *save = NULL;
	size_t len = 0;
	int d = 0;

	buf[0] = '\0';
	if (prompts && !files)
		return READ_HANGUP;
	for (file = files ? strtok_r(files, "&", &save) : NULL; file && !d;
	     file = strtok_r(NULL, "&", &save)) {
		px_err err = {""};
		int r;

		file = px_app_trim(file);
		if (!*file)
			continue;
		r = px_play_file(ch, file, all_digits, &err);
		if (r == PX_PLAY_HANGUP) {
			free(files);
			return READ_HANGUP;
		}
		if (r == PX_PLAY_NOFILE || r == PX_PLAY_NOMEDIA)
			/* As Asterisk does: the prompt is skipped, the digits still read. */
			px_log_warning("Read: %s: %s; reading digits without it",
				       px_channel_name(ch), err.msg);
		else if (r > 0)
			d = r;
	}
	free(files);
	for (;;) {
		if (!d) {
			d = px_play_wait_digit(ch, len ? digit_ms : first_ms);
			if (d == PX_PLAY_HANGUP)
				return READ_HANGUP;
			if (d == PX_PLAY_DONE)
				return READ_TIMEOUT;
		}
		if (d == '#')
			return READ_OK;
		buf[len++] = (char)d;
		buf[len] = '\0';
		d = 0;
		if (len >= maxdigits)
			return READ_OK;
	}
}

/* A non-negative integer argument, or def when blank; -1 when bad. */
static long number_arg(const char *what, const char *arg, long def, long max)
{
	char *end;
	long n;

	while (isspace((unsigned char)*arg))
		arg++;
	if (!*arg)
		return def;
	n = strtol(arg, &end, 10);
	while (isspace((unsigned char)*end))
		end++;
	if (*end || n < 0) {
		px_log_warning("Read: %s '%s' is not a number", what, arg);
		return -1;
	}
	return n > max ? max : n;
}

static int read_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *argv[6] = {0};
	char digits[MAXDIGITS + 1] = "";
	const char *status = "ERROR";
	bool skip = false, noanswer = false;
	long maxdigits, attempts;
	int argc, first_ms = FIRST_TIMEOUT_MS, digit_ms = DIGIT_TIMEOUT_MS, rc = 0;
	char *var;

	if (!copy)
		return -1;
	argc = px_app_split_args(copy, argv, 6);
	var = argc > 0 ? px_app_trim(argv[0]) : "";
	if (!*var || strchr(var, '(') || px_channel_var_is_builtin(var)) {
		px_log_warning("Read requires a variable name: Read(variable[,filename[,maxdigits"
			       "[,options[,attempts[,timeout]]]]])");
		goto out;
	}
	maxdigits = number_arg("maxdigits", argc > 2 ? argv[2] : "", 0, MAXDIGITS);
	attempts = number_arg("attempts", argc > 4 ? argv[4] : "", 1, ATTEMPTS_MAX);
	if (maxdigits < 0 || attempts < 0)
		goto out;
	if (maxdigits == 0)
		maxdigits = MAXDIGITS; /* up to '#' */
	if (attempts == 0)
		attempts = 1;
	if (argc > 3) {
		for (const char *o = argv[3]; *o; o++) {
			if (*o == 's')
				skip = true;
			else if (*o == 'n')
				noanswer = true;
			else if (*o == 'i')
				px_log_warning(
					"Read: option 'i' (indication tones) is not supported; "
					"the prompt is played as a file");
			else if (!isspace((unsigned char)*o))
				px_log_warning("Read: unknown option '%c' (s, n)", *o);
		}
	}
	if (argc > 5 && *px_app_trim(argv[5])) {
		char *end;
		double s = strtod(px_app_trim(argv[5]), &end);
		if (*end || s < 0 || s > TIMEOUT_MAX_S) {
			px_log_warning("Read: timeout '%s' is not a number of seconds", argv[5]);
			goto out;
		}
		if (s > 0)
			first_ms = digit_ms = (int)(s * 1000);
	}
	if (px_channel_state(ch) != PX_STATE_UP) {
		if (skip) {
			status = "SKIPPED";
			goto out;
		}
		if (!noanswer && px_channel_answer(ch) < 0) {
			status = "HANGUP";
			rc = -1;
			goto out;
		}
	}
	for (long tries = attempts; tries > 0; tries--) {
		enum read_result r = read_once(ch, argc > 1 ? argv[1] : NULL, digits,
					       (size_t)maxdigits, first_ms, digit_ms);
		if (r == READ_HANGUP) {
			status = "HANGUP";
			rc = -1;
			break;
		}
		status = r == READ_OK ? "OK" : "TIMEOUT";
		if (digits[0]) {
			px_verbose(3, "%s: Read: the caller entered '%s'", px_channel_name(ch),
				   digits);
			break;
		}
		px_verbose(3, "%s: Read: nothing entered, %ld attempt%s left", px_channel_name(ch),
			   tries - 1, tries == 2 ? "" : "s");
	}
	px_channel_var_set(ch, var, digits);
out:
	px_channel_var_set(ch, "READSTATUS", status);
	free(copy);
	return rc;
}

static const struct px_app read_app = {
	.name = "Read",
	.synopsis = "Read a variable",
	.syntax = "Read(variable[,filename[&filename2[&...]][,maxdigits[,options[,attempts[,"
		  "timeout]]]]])",
	.description =
		"Plays the files (found as Playback finds them), then collects digits into\n"
		"variable. A digit pressed during a prompt stops it and is the first one.\n"
		"Input ends with '#' (not stored), after maxdigits digits (0 or blank: up to\n"
		"255, so '#' ends it), or when no digit comes in time: timeout seconds for\n"
		"every digit when given (> 0), else 10 s for the first and 5 s between.\n"
		"attempts: how many times prompts and input are tried while nothing is\n"
		"entered (default 1).\n"
		"Options: s  return at once on an unanswered call (READSTATUS=SKIPPED);\n"
		"n  read without answering (otherwise an unanswered call is answered).\n"
		"A prompt that cannot be found is skipped with a warning naming it and the\n"
		"digits are still read, as Asterisk does: READSTATUS tells how the input\n"
		"ended, not whether the prompt played.\n"
		"Sets READSTATUS: OK (digits, or '#' ended the input), TIMEOUT (the time ran\n"
		"out; the digits entered before it are stored), HANGUP, SKIPPED, or ERROR\n"
		"(bad arguments: no variable name, a maxdigits, attempts or timeout that is\n"
		"not a number).",
	.exec = read_exec,
};

static int read_load(px_module *self)
{
	px_err err = {""};

	if (px_app_register(self, &read_app, &err) < 0) {
		px_log_error("app_read: %s", err.msg);
		return -1;
	}
	return 0;
}

static int read_unload(px_module *self)
{
	(void)self;
	px_app_unregister(&read_app);
	return 0;
}

PX_MODULE(.name = "app_read", .description = "Read: collect digits from the caller",
	  .kind = PX_MODULE_APPLICATION, .load = read_load, .unload = read_unload);
