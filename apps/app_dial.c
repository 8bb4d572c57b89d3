/*
 * app_dial: the Dial application. It owns one dial attempt from start to
 * end, in the caller's session thread: it requests an outbound channel for
 * every target, points them all at the caller's waiter and calls them, then
 * follows their progress (ringing and early media passed to the caller)
 * until one answers, all fail, the time runs out, the caller hangs up or is
 * sent elsewhere (a redirect). It then answers the caller and hands the
 * two-party call to the core's bridge (plexus/bridge.h) until one side
 * hangs up or leaves. It tells DialBegin and DialEnd for every target, and
 * leaves what happened in channel variables (DIALSTATUS and kin).
 *
 * Targets that their technology calls routes (px_channel_tech_hunts: SIP
 * trunks, "SIP/trunkA/number") are not rung together: they form a hunt
 * list, called one after another. The next route is tried when the one
 * before failed as a route (congestion, 5xx, timeout, unreachable) and not
 * when the called party answered for itself (busy, rejected, unknown
 * number): another carrier would only hear the same answer.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <plexus/app.h>
#include <plexus/bridge.h>
#include <plexus/channel.h>
#include <plexus/event.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/module.h>

/* The longest single sleep: no wait is unbounded, even without a timeout. */
#define DIAL_TICK_MS 1000
/* Q.850 "non-selected user clearing": the call was answered elsewhere. */
#define CAUSE_ANSWERED_ELSEWHERE 26
/* Longer timeouts (about 23 days; an int of ms ends at 24) mean "no timeout". */
#define DIAL_TIMEOUT_MAX_S 2000000.0

/* How a leg ended before anyone answered; LEG_ALIVE while it may still. */
enum leg_result {
	LEG_ALIVE,
	LEG_BUSY,
	LEG_NOANSWER,
	LEG_CONGESTION,
	LEG_CHANUNAVAIL,
	LEG_DROPPED, /* ended by Dial once the outcome was decided; not counted */
	LEG_RESULTS
};

struct dial_leg {
	const char *tech;     /* "SIP", pointing into the copy of the arguments */
	const char *resource; /* "1002" */
	px_channel *ch;       /* our reference; NULL when it could not be requested */
	enum leg_result result;
	bool told;    /* DialEnd went out */
	bool hunt;    /* a route, tried in turn with the other routes */
	bool pending; /* a route not tried yet (its result is LEG_DROPPED until then) */
	int cause;    /* why it failed */
};

struct dial {
	px_channel *caller;
	px_waiter *waiter; /* the caller's; every leg points at it while dialing */
	struct dial_leg *legs;
	int nlegs;
	int alive;                     /* legs still calling */
	int failed[LEG_RESULTS];       /* legs ended, by result */
	int failed_cause[LEG_RESULTS]; /* the first Q.850 cause of each result */
	bool ringing_sent;             /* ringing indicated to the caller */
	bool progress_sent;            /* progress indicated to the caller */
	struct dial_leg *early;        /* the leg whose early media the caller hears */
	struct dial_leg *winner;       /* the leg that answered */
	long long start_ms;
	int timeout_ms; /* for the routes started later */
};

enum dial_outcome {
	DIAL_ANSWERED,
	DIAL_ALL_FAILED,
	DIAL_TIMEOUT,
	DIAL_CANCELLED,
	DIAL_LEFT, /* the caller was redirected or bridged elsewhere */
};

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* What a hangup cause before answer means for DIALSTATUS. */
static enum leg_result cause_result(int cause)
{
	switch (cause) {
	case PX_CAUSE_USER_BUSY:
		return LEG_BUSY;
	case PX_CAUSE_NO_USER_RESPONSE:
	case PX_CAUSE_NO_ANSWER:
		return LEG_NOANSWER;
	case PX_CAUSE_CONGESTION:
	case 38: /* network out of order */
	case 41: /* temporary failure */
	case 42: /* switching equipment congestion */
		return LEG_CONGESTION;
	default:
		return LEG_CHANUNAVAIL;
	}
}

static const char *result_status(enum leg_result r)
{
	switch (r) {
	case LEG_BUSY:
		return "BUSY";
	case LEG_NOANSWER:
		return "NOANSWER";
	case LEG_CONGESTION:
		return "CONGESTION";
	default:
		return "CHANUNAVAIL";
	}
}

/* Causes that mean the route failed, not the called party: the next
 * route may do better. */
static bool route_failed(int cause)
{
	switch (cause) {
	case PX_CAUSE_NO_USER_RESPONSE: /* 408: no answer at all */
	case 27:                        /* destination out of order */
	case PX_CAUSE_CONGESTION:       /* 503, 500 */
	case PX_CAUSE_NETWORK_OUT_OF_ORDER:
	case PX_CAUSE_TEMPORARY_FAILURE:
	case PX_CAUSE_SWITCH_CONGESTION:
	case 102: /* recovery on timer expiry */
		return true;
	default:
		return false;
	}
}

/* ---- events ---- */

static void tell_begin(struct dial *d, struct dial_leg *leg)
{
	char dialstring[160];

	if (!px_event_listening())
		return;
	snprintf(dialstring, sizeof(dialstring), "%s/%s", leg->tech, leg->resource);
	PX_EVENT_EMIT(PX_EV_DIAL_BEGIN, d->caller, leg->ch, PX_EVS("dialstring", dialstring));
}

/* DialEnd for one target, once; status is its DIALSTATUS word. */
static void tell_end(struct dial *d, struct dial_leg *leg, const char *status)
{
	char dialstring[160];

	if (leg->told)
		return;
	leg->told = true;
	if (!px_event_listening())
		return;
	snprintf(dialstring, sizeof(dialstring), "%s/%s", leg->tech, leg->resource);
	PX_EVENT_EMIT(PX_EV_DIAL_END, d->caller, leg->ch, PX_EVS("dialstring", dialstring),
		      PX_EVS("dialstatus", status));
}

/* "30" or "1.5" seconds, in ms; -1 (no timeout) when empty, zero or bad. */
static int parse_timeout(char *s)
{
	char *end;
	double secs;

	if (!*s)
		return -1;
	errno = 0;
	secs = strtod(s, &end);
	if (errno || end == s || *px_app_trim(end) || secs < 0) {
		px_log_warning("Dial: invalid timeout '%s'; dialing without a timeout", s);
		return -1;
	}
	if (secs == 0 || secs > DIAL_TIMEOUT_MAX_S)
		return -1;
	return secs * 1000 < 1 ? 1 : (int)(secs * 1000);
}

/* No option is supported yet: each one is named in a warning and ignored.
 * An option's parenthesised argument ("m(class)") is skipped with it. */
static void warn_options(const char *opts)
{
	for (const char *p = opts; *p; p++) {
		if (*p == '(') {
			int depth = 1;
			while (p[1] && depth > 0) {
				p++;
				if (*p == '(')
					depth++;
				else if (*p == ')')
					depth--;
			}
			continue;
		}
		if (isspace((unsigned char)*p))
			continue;
		px_log_warning("Dial: option '%c' is not supported; ignored", *p);
	}
}

/* ---- media ---- */

static void media_bridge(struct dial *d, px_channel *a, px_channel *b)
{
	px_rtp *ra = px_channel_rtp(a), *rb = px_channel_rtp(b);
	px_err err = {""};

	if (!ra || !rb)
		return;
	if (px_rtp_bridge(ra, rb, &err) < 0) {
		px_log_warning("Dial: cannot bridge the media of %s and %s: %s", px_channel_name(a),
			       px_channel_name(b), err.msg);
		return;
	}
}

static void media_unbridge(px_channel *ch)
{
	px_rtp *r = px_channel_rtp(ch);

	if (r)
		px_rtp_unbridge(r);
}

/* ---- legs ---- */

static void start_leg(struct dial *d, struct dial_leg *leg, int timeout_ms);

/* A route failed with cause: try the next one while routes fail as routes;
 * when the called party itself refused, the routes left are not tried. */
static void hunt_next(struct dial *d, int cause)
{
	for (;;) {
		struct dial_leg *next = NULL;
		for (int i = 0; i < d->nlegs && !next; i++)
			if (d->legs[i].pending)
				next = &d->legs[i];
		if (!next)
			return;
		if (!route_failed(cause)) {
			for (int i = 0; i < d->nlegs; i++)
				d->legs[i].pending = false;
			px_verbose(3,
				   "Dial: cause %d (%s) is the callee's answer; no other route "
				   "is tried",
				   cause, px_cause_text(cause));
			return;
		}
		next->pending = false;
		px_verbose(3, "Dial: route failed (cause %d - %s); trying %s/%s", cause,
			   px_cause_text(cause), next->tech, next->resource);
		start_leg(d, next, d->timeout_ms);
		if (next->result == LEG_ALIVE && next->ch)
			return;
		cause = next->cause;
	}
}

/* The leg is over before answer: count why, stop its early media, and end it
 * (nothing happens on the wire if its technology ended it already). */
static void leg_fail(struct dial *d, struct dial_leg *leg, enum leg_result result, int cause)
{
	if (leg->result != LEG_ALIVE)
		return;
	leg->result = result;
	leg->cause = cause;
	d->failed[result]++;
	if (!d->failed_cause[result])
		d->failed_cause[result] = cause;
	d->alive--;
	tell_end(d, leg, result_status(result));
	if (d->early == leg) {
		media_unbridge(d->caller);
		d->early = NULL;
	}
	px_channel_hangup(leg->ch, cause);
	if (leg->hunt)
		hunt_next(d, cause);
}

/* End every leg still calling, except keep (may be NULL); status is what
 * their DialEnd says. */
static void hangup_alive(struct dial *d, const struct dial_leg *keep, int cause, const char *status)
{
	for (int i = 0; i < d->nlegs; i++) {
		struct dial_leg *leg = &d->legs[i];
		if (leg == keep || leg->result != LEG_ALIVE)
			continue;
		leg->result = LEG_DROPPED;
		d->alive--;
		tell_end(d, leg, status);
		px_channel_hangup(leg->ch, cause);
	}
}

/* A target that never became a calling leg. */
static void target_fail(struct dial *d, struct dial_leg *leg, int cause)
{
	leg->result = cause_result(cause);
	leg->cause = cause;
	d->failed[leg->result]++;
	if (!d->failed_cause[leg->result])
		d->failed_cause[leg->result] = cause;
	tell_end(d, leg, result_status(leg->result));
}

static void start_leg(struct dial *d, struct dial_leg *leg, int timeout_ms)
{
	char num[128], name[128];
	int cause = 0;

	leg->ch = px_channel_request(leg->tech, leg->resource, d->caller, &cause);
	if (!leg->ch) {
		px_verbose(3, "Unable to create channel of type '%s' for %s (cause %d - %s)",
			   leg->tech, leg->resource, cause, px_cause_text(cause));
		target_fail(d, leg, cause);
		return;
	}
	/* The callee sees who calls, and that it is connected to the caller. */
	px_channel_get_caller(d->caller, num, sizeof(num), name, sizeof(name));
	px_channel_set_caller(leg->ch, num[0] ? num : NULL, name[0] ? name : NULL);
	px_channel_set_connected(leg->ch, num[0] ? num : NULL, name[0] ? name : NULL);
	px_channel_set_waiter(leg->ch, d->waiter);
	tell_begin(d, leg);
	if (px_channel_call(leg->ch, timeout_ms) != 0) {
		cause = px_channel_hangup_cause(leg->ch);
		px_verbose(3, "Dial: calling %s failed (cause %d - %s)", px_channel_name(leg->ch),
			   cause, px_cause_text(cause));
		px_channel_hangup(leg->ch, cause);
		target_fail(d, leg, cause);
		return;
	}
	px_verbose(3, "Called %s/%s", leg->tech, leg->resource);
	leg->result = LEG_ALIVE;
	d->alive++;
}

/* Split "SIP/1001&SIP/1002" into legs and call each. */
static int start_legs(struct dial *d, char *targets, int timeout_ms)
{
	char *p = targets, *tok;
	struct dial_leg *first_failed = NULL;
	bool hunting = false;
	int n = 1;

	for (const char *c = targets; *c; c++)
		n += *c == '&';
	d->legs = calloc((size_t)n, sizeof(*d->legs));
	if (!d->legs)
		return -1;
	while ((tok = strsep(&p, "&"))) {
		struct dial_leg *leg;
		char *slash;

		tok = px_app_trim(tok);
		if (!*tok)
			continue;
		leg = &d->legs[d->nlegs++];
		slash = strchr(tok, '/');
		if (!slash || slash == tok || !slash[1]) {
			px_log_warning("Dial: target '%s' is not Tech/Resource; skipped", tok);
			leg->tech = leg->resource = tok;
			target_fail(d, leg, 0);
			continue;
		}
		*slash = '\0';
		leg->tech = tok;
		leg->resource = slash + 1;
		leg->hunt = px_channel_tech_hunts(leg->tech, leg->resource);
		if (leg->hunt && hunting) {
			leg->pending = true; /* after the routes before it */
			leg->result = LEG_DROPPED;
			continue;
		}
		hunting |= leg->hunt;
		start_leg(d, leg, timeout_ms);
		if (leg->hunt && !(leg->result == LEG_ALIVE && leg->ch))
			first_failed = leg;
	}
	if (first_failed)
		hunt_next(d, first_failed->cause);
	return 0;
}

/* ---- before answer ---- */

/* Take the caller's events; true when the caller has hung up. */
static bool caller_gone(struct dial *d)
{
	struct px_channel_event ev;
	bool gone = false;

	while (px_channel_take_event(d->caller, &ev))
		if (ev.type == PX_EVENT_HANGUP)
			gone = true;
	return gone || px_channel_is_hungup(d->caller);
}

/* Handle one event of a leg that is still calling. */
static void leg_event(struct dial *d, struct dial_leg *leg, const struct px_channel_event *ev)
{
	px_channel *ch = leg->ch;
	int cause;

	if (ev->type == PX_EVENT_HANGUP) {
		cause = ev->cause ? ev->cause : px_channel_hangup_cause(ch);
		px_verbose(3, "%s hung up before answer (cause %d - %s)", px_channel_name(ch),
			   cause, px_cause_text(cause));
		leg_fail(d, leg, cause_result(cause), cause);
		return;
	}
	if (ev->type != PX_EVENT_CONTROL)
		return; /* digits before answer mean nothing to Dial */
	switch (ev->control) {
	case PX_CONTROL_RINGING:
		px_verbose(3, "%s is ringing", px_channel_name(ch));
		if (!d->ringing_sent) {
			d->ringing_sent = true;
			px_channel_indicate(d->caller, PX_CONTROL_RINGING);
		}
		break;
	case PX_CONTROL_PROGRESS:
		px_verbose(3, "%s is making progress", px_channel_name(ch));
		if (!d->progress_sent) {
			d->progress_sent = true;
			px_channel_indicate(d->caller, PX_CONTROL_PROGRESS);
		}
		/* The first leg with media to give is the one the caller hears. */
		if (!d->early && px_channel_rtp(ch) && px_channel_rtp(d->caller)) {
			d->early = leg;
			media_bridge(d, d->caller, ch);
		}
		break;
	case PX_CONTROL_MEDIA_CHANGED:
		if (d->early == leg)
			media_bridge(d, d->caller, ch);
		break;
	case PX_CONTROL_ANSWER:
		d->winner = leg;
		break;
	case PX_CONTROL_BUSY:
		px_verbose(3, "%s is busy", px_channel_name(ch));
		leg_fail(d, leg, LEG_BUSY, PX_CAUSE_USER_BUSY);
		break;
	case PX_CONTROL_CONGESTION:
		px_verbose(3, "%s is circuit-busy", px_channel_name(ch));
		leg_fail(d, leg, LEG_CONGESTION, PX_CAUSE_CONGESTION);
		break;
	case PX_CONTROL_HOLD:
	case PX_CONTROL_UNHOLD:
		break;
	}
}

static enum dial_outcome wait_for_answer(struct dial *d, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? d->start_ms + timeout_ms : -1;

	for (;;) {
		long long left;
		int wait = DIAL_TICK_MS;

		if (caller_gone(d))
			return DIAL_CANCELLED;
		if (px_channel_leaving(d->caller))
			return DIAL_LEFT;
		for (int i = 0; i < d->nlegs && !d->winner; i++) {
			struct dial_leg *leg = &d->legs[i];
			struct px_channel_event ev;
			/* Events after an answer stay queued for the bridge. */
			while (leg->result == LEG_ALIVE && !d->winner &&
			       px_channel_take_event(leg->ch, &ev))
				leg_event(d, leg, &ev);
		}
		if (d->winner)
			return DIAL_ANSWERED;
		if (d->alive == 0)
			return DIAL_ALL_FAILED;
		if (deadline >= 0) {
			left = deadline - now_ms();
			if (left <= 0)
				return DIAL_TIMEOUT;
			if (left < wait)
				wait = (int)left;
		}
		px_waiter_wait(d->waiter, wait);
	}
}

/* With several targets and none answering, the most telling result wins. */
static enum leg_result failed_result(const struct dial *d)
{
	static const enum leg_result order[] = {LEG_BUSY, LEG_NOANSWER, LEG_CONGESTION};

	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++)
		if (d->failed[order[i]])
			return order[i];
	return LEG_CHANUNAVAIL;
}

/* ---- after answer ---- */

static void set_elapsed(px_channel *ch, const char *name, long long ms)
{
	char buf[32], name_ms[32];

	snprintf(buf, sizeof(buf), "%lld", ms / 1000);
	px_channel_var_set(ch, name, buf);
	snprintf(buf, sizeof(buf), "%lld", ms);
	snprintf(name_ms, sizeof(name_ms), "%s_MS", name);
	px_channel_var_set(ch, name_ms, buf);
}

/* The winner answered: end the others, answer the caller, bridge, and stay
 * until one side hangs up or leaves (the core's bridge decides what becomes
 * of each side). Returns what Dial returns. */
static int connect_call(struct dial *d)
{
	px_channel *caller = d->caller, *callee = d->winner->ch;
	long long answered;

	if (d->early && d->early != d->winner)
		media_unbridge(caller);
	d->early = NULL;
	hangup_alive(d, d->winner, CAUSE_ANSWERED_ELSEWHERE, "CANCEL");
	tell_end(d, d->winner, "ANSWER");
	if (px_channel_is_hungup(caller) || px_channel_leaving(caller)) {
		/* The caller left just as the callee answered. */
		px_verbose(3, "%s answered, but %s is gone", px_channel_name(callee),
			   px_channel_name(caller));
		px_channel_hangup(callee, px_channel_is_hungup(caller)
						  ? px_channel_hangup_cause(caller)
						  : PX_CAUSE_NORMAL_CLEARING);
		px_channel_var_set(caller, "DIALSTATUS", "CANCEL");
		return -1;
	}
	px_verbose(3, "%s answered %s", px_channel_name(callee), px_channel_name(caller));
	/* Before the answer, so that the caller's ChannelState Up tells whom
	 * it is connected to. */
	px_channel_set_connected(caller, d->winner->resource, NULL);
	if (px_channel_state(caller) != PX_STATE_UP && px_channel_answer(caller) != 0) {
		px_log_warning("Dial: cannot answer %s; hanging up %s", px_channel_name(caller),
			       px_channel_name(callee));
		px_channel_hangup(callee, PX_CAUSE_NORMAL_CLEARING);
		px_channel_var_set(caller, "DIALSTATUS", "CANCEL");
		return -1;
	}
	px_channel_var_set(caller, "DIALSTATUS", "ANSWER");
	px_channel_var_set(caller, "DIALEDPEERNAME", px_channel_name(callee));
	px_channel_var_set(caller, "DIALEDPEERNUMBER", d->winner->resource);
	answered = now_ms();

	px_bridge_run(caller, callee);

	set_elapsed(caller, "ANSWEREDTIME", now_ms() - answered);
	return -1;
}

/* ---- the application ---- */

static int dial_exec(px_channel *caller, const char *data)
{
	struct dial d = {.caller = caller};
	char *args, *argv[3] = {NULL, NULL, NULL};
	int argc, timeout_ms, rc = 0;
	enum leg_result result;

	px_channel_var_set(caller, "DIALEDPEERNAME", NULL);
	px_channel_var_set(caller, "DIALEDPEERNUMBER", NULL);
	px_channel_var_set(caller, "ANSWEREDTIME", NULL);
	px_channel_var_set(caller, "ANSWEREDTIME_MS", NULL);
	args = strdup(data ? data : "");
	if (!args) {
		px_log_error("Dial: out of memory");
		return -1;
	}
	argc = px_app_split_args(args, argv, 3);
	if (argc < 1 || !*px_app_trim(argv[0])) {
		px_log_warning("Dial requires an argument: Tech/Resource[&Tech/Resource...]"
			       "[,timeout[,options]]");
		px_channel_var_set(caller, "DIALSTATUS", "INVALIDARGS");
		free(args);
		return -1;
	}
	timeout_ms = argc > 1 ? parse_timeout(px_app_trim(argv[1])) : -1;
	if (argc > 2)
		warn_options(argv[2]);
	if (px_channel_is_hungup(caller)) {
		px_channel_var_set(caller, "DIALSTATUS", "CANCEL");
		free(args);
		return -1;
	}

	d.waiter = px_channel_waiter(caller);
	d.start_ms = now_ms();
	d.timeout_ms = timeout_ms;
	if (start_legs(&d, px_app_trim(argv[0]), timeout_ms) < 0) {
		px_log_error("Dial: out of memory");
		px_channel_var_set(caller, "DIALSTATUS", "CHANUNAVAIL");
		free(args);
		return -1;
	}

	switch (d.alive ? wait_for_answer(&d, timeout_ms) : DIAL_ALL_FAILED) {
	case DIAL_ANSWERED:
		rc = connect_call(&d);
		break;
	case DIAL_CANCELLED:
		px_verbose(3, "%s hung up while dialing", px_channel_name(caller));
		hangup_alive(&d, NULL, PX_CAUSE_NORMAL_CLEARING, "CANCEL");
		px_channel_var_set(caller, "DIALSTATUS", "CANCEL");
		rc = -1;
		break;
	case DIAL_LEFT:
		px_verbose(3, "%s was sent elsewhere while dialing", px_channel_name(caller));
		hangup_alive(&d, NULL, PX_CAUSE_NORMAL_CLEARING, "CANCEL");
		px_channel_var_set(caller, "DIALSTATUS", "CANCEL");
		rc = -1;
		break;
	case DIAL_TIMEOUT:
		px_verbose(3, "Nobody picked up in %d ms", timeout_ms);
		hangup_alive(&d, NULL, PX_CAUSE_NO_ANSWER, "NOANSWER");
		px_channel_var_set(caller, "DIALSTATUS", "NOANSWER");
		/* The caller is told why if the dialplan ends here. */
		px_channel_set_hangup_cause(caller, PX_CAUSE_NO_ANSWER);
		break;
	case DIAL_ALL_FAILED:
		result = failed_result(&d);
		px_verbose(3, "Dial: no target could be reached (%s)", result_status(result));
		px_channel_var_set(caller, "DIALSTATUS", result_status(result));
		if (d.failed_cause[result])
			px_channel_set_hangup_cause(caller, d.failed_cause[result]);
		break;
	}
	if (d.early)
		media_unbridge(caller);
	set_elapsed(caller, "DIALEDTIME", now_ms() - d.start_ms);

	for (int i = 0; i < d.nlegs; i++) {
		if (!d.legs[i].ch)
			continue;
		px_channel_set_waiter(d.legs[i].ch, NULL);
		px_channel_unref(d.legs[i].ch);
	}
	free(d.legs);
	free(args);
	return rc;
}

static const struct px_app dial_app = {
	.name = "Dial",
	.synopsis = "Call one or more channels and connect the first that answers",
	.syntax = "Dial(Tech/Resource[&Tech2/Resource2[&...]][,timeout[,options]])",
	.description =
		"Requests an outbound channel for every target and calls them all at once,\n"
		"except routes: targets through a carrier trunk (SIP/trunk/number) are\n"
		"tried one after another, the next only when the one before failed as a\n"
		"route (503 or another 5xx, 408, no answer to qualify, unreachable), never\n"
		"after the called party's own answer (486 busy, 404, 603 ...).\n"
		"While they are being called, the caller is told once that the far end is\n"
		"ringing, and hears the early media of the first target that offers some.\n"
		"The first target to answer is connected to the caller (answering the caller\n"
		"if needed) and every other target is hung up. The two parties are then\n"
		"bridged until one of them hangs up; the other is hung up with the same\n"
		"cause. Hold and unhold from either party are passed to the other.\n"
		"\n"
		"Arguments:\n"
		"  Tech/Resource  what to call, e.g. SIP/1002; several targets are joined\n"
		"                 with '&' and called in parallel.\n"
		"  timeout        seconds (decimals allowed) to wait for an answer; empty or\n"
		"                 0: wait without limit. On expiry every target is hung up.\n"
		"  options        none is supported yet; each option letter given is\n"
		"                 reported in a warning and ignored.\n"
		"\n"
		"Dial ends the dialplan (returns -1) once an answered call is over, when the\n"
		"caller hangs up while dialing, when the caller is redirected or bridged\n"
		"elsewhere by an operator (the dialplan then continues where it was sent;\n"
		"a redirected callee gets a session of its own at its target, any other\n"
		"party still up is hung up), and when no target is given. When nobody\n"
		"answered, the dialplan goes on (to voicemail, for instance), and the\n"
		"caller's hangup cause is set to that of the failure (17 when busy, 19 on\n"
		"timeout ...): the caller is told that cause if the dialplan ends there.\n"
		"\n"
		"Variables set on the caller:\n"
		"  DIALSTATUS        how the dial ended:\n"
		"      ANSWER        a target answered.\n"
		"      BUSY          a target was busy.\n"
		"      NOANSWER      nobody answered within the timeout, or a target gave up\n"
		"                    ringing (Q.850 cause 18 or 19).\n"
		"      CONGESTION    a target or the network was congested (cause 34, 38,\n"
		"                    41 or 42).\n"
		"      CHANUNAVAIL   no target could be reached (unknown technology, not\n"
		"                    registered, unreachable, or any other cause).\n"
		"      CANCEL        the caller hung up before anyone answered.\n"
		"      INVALIDARGS   no target was given.\n"
		"    With several targets and none answering in time, the most telling\n"
		"    result is reported: BUSY if any target was busy, else NOANSWER if any\n"
		"    rang out, else CONGESTION if any was congested, else CHANUNAVAIL.\n"
		"  DIALEDPEERNAME    the name of the channel that answered.\n"
		"  DIALEDPEERNUMBER  the resource it was dialed with (\"1002\").\n"
		"  DIALEDTIME        seconds from the start of Dial to its end\n"
		"                    (DIALEDTIME_MS: in milliseconds).\n"
		"  ANSWEREDTIME      seconds the answered call lasted\n"
		"                    (ANSWEREDTIME_MS: in milliseconds).\n",
	.exec = dial_exec,
};

static int dial_load(px_module *self)
{
	px_err err = {""};

	if (px_app_register(self, &dial_app, &err) < 0) {
		px_log_error("app_dial: %s", err.msg);
		return -1;
	}
	return 0;
}

static int dial_unload(px_module *self)
{
	px_app_unregister(&dial_app);
	return 0;
}

PX_MODULE(.name = "app_dial", .description = "Dial: call channels and connect the first to answer",
	  .kind = PX_MODULE_APPLICATION, .load = dial_load, .unload = dial_unload);
