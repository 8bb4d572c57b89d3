/*
 * app_basic: the small applications every dialplan uses to steer a call's
 * state, with Asterisk's names, arguments and behaviour: Answer, Hangup,
 * Wait, Progress, Ringing, Busy and Congestion. Each runs in the channel's
 * session thread; those that wait (Wait, Busy, Congestion, Answer's delay)
 * sleep on the channel's events, so a hangup or a redirect ends them at
 * once.
 */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/log.h>
#include <plexus/module.h>

/* Waits longer than this are refused as a typo (a day). */
#define WAIT_MAX_S 86400.0

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sleep on ch's events for ms (-1: until it ends): 0 when the time passed,
 * -1 when the channel hung up or is asked to leave. Digits and other
 * events are let go by. */
static int wait_ms(px_channel *ch, long long ms)
{
	long long deadline = ms >= 0 ? now_ms() + ms : -1;

	for (;;) {
		struct px_channel_event ev;
		int left = -1;

		if (px_channel_is_hungup(ch) || px_channel_leaving(ch))
			return -1;
		if (deadline >= 0) {
			long long l = deadline - now_ms();
			if (l <= 0)
				return 0;
			left = l > 1000000 ? 1000000 : (int)l;
		}
		if (px_channel_wait_event(ch, left, &ev) &&
		    (ev.type == PX_EVENT_HANGUP || ev.type == PX_EVENT_REDIRECT))
			return -1;
	}
}

/* Seconds as Asterisk reads them ("2", "1.5"): -1 when blank, -2 when not
 * a number within 0..WAIT_MAX_S. */
static long long parse_seconds(const char *app, const char *arg)
{
	char *end;
	double s;

	while (isspace((unsigned char)*arg))
		arg++;
	if (!*arg)
		return -1;
	errno = 0;
	s = strtod(arg, &end);
	while (isspace((unsigned char)*end))
		end++;
	if (errno || *end || !isfinite(s) || s < 0 || s > WAIT_MAX_S) {
		px_log_warning("%s: '%s' is not a number of seconds (0 to %.0f)", app, arg,
			       WAIT_MAX_S);
		return -2;
	}
	return (long long)(s * 1000 + 0.5);
}

/* ---------------------------------------------------------------- Answer */

static int answer_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *argv[2];
	long long delay = -1;
	int argc;

	if (!copy)
		return -1;
	argc = px_app_split_args(copy, argv, 2);
	if (argc > 0)
		delay = parse_seconds("Answer", argv[0]);
	free(copy);
	if (px_channel_state(ch) == PX_STATE_UP)
		return 0; /* Asterisk does not wait when already answered either */
	if (px_channel_answer(ch) < 0) {
		px_log_warning("Answer: %s could not be answered", px_channel_name(ch));
		return -1;
	}
	/* Asterisk's delay is in milliseconds. */
	if (delay > 0)
		return wait_ms(ch, delay / 1000);
	return 0;
}

/* ---------------------------------------------------------------- Hangup */

static const struct {
	const char *name;
	int cause;
} cause_names[] = {
	{"UNALLOCATED", PX_CAUSE_UNALLOCATED},
	{"NORMAL_CLEARING", PX_CAUSE_NORMAL_CLEARING},
	{"USER_BUSY", PX_CAUSE_USER_BUSY},
	{"BUSY", PX_CAUSE_USER_BUSY},
	{"NO_USER_RESPONSE", PX_CAUSE_NO_USER_RESPONSE},
	{"NO_ANSWER", PX_CAUSE_NO_ANSWER},
	{"SUBSCRIBER_ABSENT", PX_CAUSE_SUBSCRIBER_ABSENT},
	{"CALL_REJECTED", PX_CAUSE_CALL_REJECTED},
	{"NORMAL_UNSPECIFIED", PX_CAUSE_NORMAL_UNSPECIFIED},
	{"CONGESTION", PX_CAUSE_CONGESTION},
	{"NORMAL_CIRCUIT_CONGESTION", PX_CAUSE_CONGESTION},
	{"NETWORK_OUT_OF_ORDER", PX_CAUSE_NETWORK_OUT_OF_ORDER},
	{"NORMAL_TEMPORARY_FAILURE", PX_CAUSE_TEMPORARY_FAILURE},
	{"SWITCH_CONGESTION", PX_CAUSE_SWITCH_CONGESTION},
	{"INCOMPATIBLE_DESTINATION", PX_CAUSE_INCOMPATIBLE_DESTINATION},
	{"INTERWORKING", PX_CAUSE_INTERWORKING},
};

static int hangup_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data), *arg, *end;
	int cause = 0;

	if (!copy)
		return -1;
	arg = px_app_trim(copy);
	if (*arg) {
		long n = strtol(arg, &end, 10);
		if (!*end && n >= 1 && n <= 127) {
			cause = (int)n;
		} else {
			for (size_t i = 0; i < sizeof(cause_names) / sizeof(cause_names[0]); i++)
				if (!strcasecmp(arg, cause_names[i].name) ||
				    (!strncasecmp(arg, "AST_CAUSE_", 10) &&
				     !strcasecmp(arg + 10, cause_names[i].name)))
					cause = cause_names[i].cause;
			if (!cause)
				px_log_warning("Hangup: '%s' is not a Q.850 cause (1-127 or a name "
					       "such as USER_BUSY); hanging up with the channel's "
					       "own cause",
					       arg);
		}
	}
	free(copy);
	if (!cause)
		cause = px_channel_hangup_cause(ch) ? px_channel_hangup_cause(ch)
						    : PX_CAUSE_NORMAL_CLEARING;
	px_channel_set_hangup_cause(ch, cause);
	px_channel_hangup(ch, cause);
	return -1;
}

/* ---------------------------------------------------------------- Wait */

static int wait_exec(px_channel *ch, const char *data)
{
	long long ms = parse_seconds("Wait", data);

	if (ms == -1) {
		px_log_warning("Wait requires an argument: seconds");
		return 0;
	}
	if (ms < 0)
		return 0;
	return wait_ms(ch, ms);
}

/* ---------------------------------------------------------------- Progress, Ringing */

static int progress_exec(px_channel *ch, const char *data)
{
	(void)data;
	px_channel_indicate(ch, PX_CONTROL_PROGRESS);
	return 0;
}

static int ringing_exec(px_channel *ch, const char *data)
{
	(void)data;
	px_channel_indicate(ch, PX_CONTROL_RINGING);
	return 0;
}

/* ---------------------------------------------------------------- Busy, Congestion */

/* Tell the caller, and (when not answered) record the cause; then wait for
 * the caller to hang up, or timeout seconds. Always ends the dialplan. */
static int refuse(px_channel *ch, const char *app, const char *data, enum px_control control,
		  int cause)
{
	long long ms = parse_seconds(app, data);

	px_channel_indicate(ch, control);
	if (px_channel_state(ch) != PX_STATE_UP) {
		px_channel_set_hangup_cause(ch, cause);
		if (control == PX_CONTROL_BUSY)
			px_channel_set_state(ch, PX_STATE_BUSY);
	}
	wait_ms(ch, ms >= 0 ? ms : -1);
	return -1;
}

static int busy_exec(px_channel *ch, const char *data)
{
	return refuse(ch, "Busy", data, PX_CONTROL_BUSY, PX_CAUSE_USER_BUSY);
}

static int congestion_exec(px_channel *ch, const char *data)
{
	return refuse(ch, "Congestion", data, PX_CONTROL_CONGESTION, PX_CAUSE_CONGESTION);
}

/* ---------------------------------------------------------------- the module */

static const struct px_app apps[] = {
	{
		.name = "Answer",
		.synopsis = "Answer a channel if ringing",
		.syntax = "Answer([delay])",
		.description =
			"Answers the channel if it is not answered yet (for SIP: 200 OK with our\n"
			"SDP). delay: milliseconds to wait after answering before the dialplan "
			"goes\n"
			"on (when it was not up already); a hangup during the wait ends the call.\n"
			"Returns -1 (the dialplan ends) when the channel cannot be answered.",
		.exec = answer_exec,
	},
	{
		.name = "Hangup",
		.synopsis = "Hang up the calling channel",
		.syntax = "Hangup([causecode])",
		.description =
			"Hangs up the channel and ends the dialplan (the 'h' extension runs).\n"
			"causecode: a Q.850 cause, as a number (1-127; 17 is user busy) or a name\n"
			"(NORMAL_CLEARING, USER_BUSY, NO_ANSWER, CALL_REJECTED, CONGESTION,\n"
			"UNALLOCATED ...; an AST_CAUSE_ prefix is accepted). Without one, the "
			"cause\n"
			"recorded on the channel (after a failed Dial) or normal clearing (16).\n"
			"HANGUPCAUSE tells it afterwards.",
		.exec = hangup_exec,
	},
	{
		.name = "Wait",
		.synopsis = "Waits for some time",
		.syntax = "Wait(seconds)",
		.description =
			"Waits seconds (fractions allowed: 1.5), then the dialplan goes on.\n"
			"Digits pressed meanwhile are dropped. A hangup or redirect ends\n"
			"the wait at once, and the dialplan with it (returns -1).",
		.exec = wait_exec,
	},
	{
		.name = "Progress",
		.synopsis = "Indicate progress",
		.syntax = "Progress()",
		.description =
			"Tells an unanswered caller that in-band information follows: for SIP a\n"
			"183 Session Progress with SDP, after which Playback(file,noanswer) is\n"
			"heard as early media without answering the call.",
		.exec = progress_exec,
	},
	{
		.name = "Ringing",
		.synopsis = "Indicate ringing tone",
		.syntax = "Ringing()",
		.description = "Tells an unanswered caller that the far end is ringing (for SIP:\n"
			       "180 Ringing). The dialplan goes on at once.",
		.exec = ringing_exec,
	},
	{
		.name = "Busy",
		.synopsis = "Indicate the Busy condition",
		.syntax = "Busy([timeout])",
		.description =
			"Tells the caller that the called party is busy (for SIP, on an "
			"unanswered\n"
			"call: 486 Busy Here, which ends it) and sets the hangup cause to user\n"
			"busy (17) when the channel is not answered. Then waits until the caller\n"
			"hangs up, or timeout seconds, and ends the dialplan (returns -1).",
		.exec = busy_exec,
	},
	{
		.name = "Congestion",
		.synopsis = "Indicate the Congestion condition",
		.syntax = "Congestion([timeout])",
		.description =
			"Tells the caller that the network is congested (for SIP, on an "
			"unanswered\n"
			"call: 503 Service Unavailable, which ends it) and sets the hangup cause\n"
			"to congestion (34) when the channel is not answered. Then waits until "
			"the\n"
			"caller hangs up, or timeout seconds, and ends the dialplan (returns -1).",
		.exec = congestion_exec,
	},
};
#define NAPPS (sizeof(apps) / sizeof(apps[0]))

static int basic_unload(px_module *self)
{
	(void)self;
	for (size_t i = NAPPS; i-- > 0;)
		px_app_unregister(&apps[i]);
	return 0;
}

static int basic_load(px_module *self)
{
	px_err err = {""};

	for (size_t i = 0; i < NAPPS; i++) {
		if (px_app_register(self, &apps[i], &err) < 0) {
			px_log_error("app_basic: %s", err.msg);
			return -1; /* the loader releases what was registered */
		}
	}
	return 0;
}

PX_MODULE(.name = "app_basic",
	  .description = "Answer, Hangup, Wait, Progress, Ringing, Busy, Congestion",
	  .kind = PX_MODULE_APPLICATION, .load = basic_load, .unload = basic_unload);
