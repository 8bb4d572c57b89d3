/*
 * The actions of the console protocol: parsing an action object, checking
 * the role it needs, running it against the core (channels, originate,
 * redirect, bridge, variables, console commands, registrations, the
 * connection's event subscription) and writing the JSON result. Every failure is a result
 * with "response": "Error", a machine-readable "code" and a message for
 * people; nothing here closes the connection.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include <plexus/bridge.h>
#include <plexus/channel.h>
#include <plexus/event.h>
#include <plexus/location.h>
#include <plexus/log.h>

#include "channel_internal.h"
#include "cli_internal.h"
#include "console_actions.h"
#include "event_internal.h"
#include "json_text.h"

/* What one action sees: its request, its reply being built, and the error
 * to report if it fails. */
struct action {
	const struct px_action_conn *conn;
	json_t *req;
	json_t *reply;    /* fields added on success */
	bool keep_reply;  /* ... and kept on an error too (Command's output) */
	const char *code; /* error code; NULL while all is well */
	char message[PX_ERR_MAX];
	const char *field; /* the field at fault, if any */
	enum px_role need; /* for "denied" */
};

__attribute__((format(printf, 4, 5))) static int fail(struct action *a, const char *code,
						      const char *field, const char *fmt, ...)
{
	va_list ap;

	a->code = code;
	a->field = field;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* ---- fields ---- */

/* A string field: NULL when absent (required: an error then). */
static const char *str_field(struct action *a, const char *name, bool required)
{
	json_t *v = json_object_get(a->req, name);

	if (!v || json_is_null(v)) {
		if (required)
			fail(a, "missing_field", name, "missing field '%s'", name);
		return NULL;
	}
	if (!json_is_string(v) || !json_string_value(v)[0]) {
		fail(a, "bad_field", name, "field '%s' must be a non-empty string", name);
		return NULL;
	}
	return json_string_value(v);
}

/* An integer field: def when absent; numbers given as strings are taken. */
static int int_field(struct action *a, const char *name, long long def, long long min,
		     long long max, long long *out)
{
	json_t *v = json_object_get(a->req, name);
	long long n;

	if (!v || json_is_null(v)) {
		*out = def;
		return 0;
	}
	if (json_is_integer(v)) {
		n = json_integer_value(v);
	} else if (json_is_real(v)) {
		double d = json_real_value(v);
		/* Checked before the cast: converting an out-of-range double is
		 * undefined behaviour, not a big number. */
		if (!(d >= (double)min && d <= (double)max))
			return fail(a, "bad_field", name,
				    "field '%s' must be between %lld and %lld", name, min, max);
		n = (long long)d;
	} else if (json_is_string(v)) {
		char *end;
		n = strtoll(json_string_value(v), &end, 10);
		if (end == json_string_value(v) || *end)
			return fail(a, "bad_field", name, "field '%s' must be a number", name);
	} else {
		return fail(a, "bad_field", name, "field '%s' must be a number", name);
	}
	if (n < min || n > max)
		return fail(a, "bad_field", name, "field '%s' must be between %lld and %lld", name,
			    min, max);
	*out = n;
	return 0;
}

/* The channel named by field name; an error result when it is unknown. */
static px_channel *channel_field(struct action *a, const char *name)
{
	const char *v = str_field(a, name, true);
	px_channel *ch;

	if (!v)
		return NULL;
	ch = px_channel_find(v);
	if (!ch)
		fail(a, "unknown_channel", name, "no channel '%s'", v);
	return ch;
}

/* ---- channel status ---- */

static json_t *channel_json(px_channel *ch)
{
	char cnum[80], cname[80], knum[80], kname[80], context[80], exten[80], app[80], data[256];
	char codec[32];
	px_channel *peer = px_channel_get_peer(ch);
	time_t now = time(NULL), answered = px_channel_answered(ch);
	json_t *o;

	px_channel_get_caller(ch, cnum, sizeof(cnum), cname, sizeof(cname));
	px_channel_get_connected(ch, knum, sizeof(knum), kname, sizeof(kname));
	px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
	px_channel_get_application(ch, app, sizeof(app), data, sizeof(data));
	px_channel_get_codec(ch, codec, sizeof(codec));
	/* Every string through px_json_text: a caller name in Latin-1 must
	 * not make the whole channel vanish from the list. */
	o = json_pack("{s:o, s:o, s:o, s:s, s:i, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:I, s:I, "
		      "s:o, s:I, s:b, s:o, s:b, s:o}",
		      "channel", px_json_text(px_channel_name(ch)), "uniqueid",
		      px_json_text(px_channel_uniqueid(ch)), "linkedid",
		      px_json_text(px_channel_linkedid(ch)), "state",
		      px_channel_state_name(px_channel_state(ch)), "state_code",
		      (int)px_channel_state(ch), "caller_num", px_json_text(cnum), "caller_name",
		      px_json_text(cname), "connected_num", px_json_text(knum), "connected_name",
		      px_json_text(kname), "context", px_json_text(context), "exten",
		      px_json_text(exten), "application", px_json_text(app), "application_data",
		      px_json_text(data), "duration", (json_int_t)(answered ? now - answered : 0),
		      "age", (json_int_t)(now - px_channel_created(ch)), "answered_at",
		      answered ? json_integer((json_int_t)answered) : json_null(), "created_at",
		      (json_int_t)px_channel_created(ch), "hold", px_channel_on_hold(ch),
		      "bridged_to", px_json_text(peer ? px_channel_name(peer) : ""), "in_session",
		      px_channel_in_session(ch), "codec", px_json_text(codec));
	px_channel_unref(peer);
	return o;
}

static void add_channel(void *ctx, px_channel *ch)
{
	json_t *o = channel_json(ch);

	if (o)
		json_array_append_new(ctx, o);
}

static int act_status(struct action *a)
{
	/* Read before the snapshot: every event up to it is reflected there. */
	uint64_t seq = px_event_last_seq();
	json_t *list = json_array();
	const char *name = str_field(a, "channel", false);

	if (a->code) {
		json_decref(list);
		return -1;
	}
	if (name) {
		px_channel *ch = px_channel_find(name);
		if (!ch) {
			json_decref(list);
			return fail(a, "unknown_channel", "channel", "no channel '%s'", name);
		}
		add_channel(list, ch);
		px_channel_unref(ch);
	} else {
		px_channel_foreach(add_channel, list);
	}
	json_object_set_new(a->reply, "channels", list);
	json_object_set_new(a->reply, "seq", json_integer((json_int_t)seq));
	return 0;
}

/* ---- registrations ---- */

static int act_registrations(struct action *a)
{
	uint64_t seq = px_event_last_seq();
	const char *ep = str_field(a, "endpoint", false);
	struct px_binding *b = NULL;
	size_t n = 0;
	px_err err = {""};
	json_t *list;
	time_t now = time(NULL);

	if (a->code)
		return -1;
	if (px_location_list(ep, &b, &n, &err) < 0)
		return fail(a, "failed", NULL, "%s", err.msg);
	list = json_array();
	for (size_t i = 0; i < n; i++)
		json_array_append_new(list,
				      json_pack("{s:o, s:o, s:o, s:o, s:I, s:I}", "endpoint",
						px_json_text(b[i].aor), "contact",
						px_json_text(b[i].contact), "source",
						px_json_text(b[i].received), "user_agent",
						px_json_text(b[i].user_agent), "expires",
						(json_int_t)(b[i].expires_at - now),
						"registered_at", (json_int_t)b[i].registered_at));
	free(b);
	json_object_set_new(a->reply, "registrations", list);
	json_object_set_new(a->reply, "seq", json_integer((json_int_t)seq));
	return 0;
}

/* ---- call control ---- */

static int act_hangup(struct action *a)
{
	long long cause;
	px_channel *ch;

	/* The request is checked whole before anything is looked up. */
	if (int_field(a, "cause", PX_CAUSE_NORMAL_CLEARING, 1, 127, &cause) < 0)
		return -1;
	ch = channel_field(a, "channel");
	if (!ch)
		return -1;
	px_channel_hangup(ch, (int)cause);
	json_object_set_new(a->reply, "channel", px_json_text(px_channel_name(ch)));
	json_object_set_new(a->reply, "cause", json_integer(cause));
	px_channel_unref(ch);
	return 0;
}

/* "SIP/1002" from channel, or from endpoint ("1002" is SIP/1002). */
static int originate_target(struct action *a, char *tech, size_t tsize, char *dest, size_t dsize)
{
	const char *chan = str_field(a, "channel", false);
	const char *ep = a->code ? NULL : str_field(a, "endpoint", false);
	const char *slash;

	if (a->code)
		return -1;
	if (chan) {
		slash = strchr(chan, '/');
		if (!slash || slash == chan || !slash[1])
			return fail(a, "bad_field", "channel",
				    "field 'channel' must be Tech/Resource, e.g. SIP/1002");
		snprintf(tech, tsize, "%.*s", (int)(slash - chan), chan);
		snprintf(dest, dsize, "%s", slash + 1);
		return 0;
	}
	if (ep) {
		snprintf(tech, tsize, "SIP");
		snprintf(dest, dsize, "%s", ep);
		return 0;
	}
	return fail(a, "missing_field", "channel",
		    "missing field 'channel' (Tech/Resource) or 'endpoint'");
}

/* ---- Originate with "wait": the outcome of the call ---- */

struct outcome_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool woken;
};

static void outcome_notify(void *ctx)
{
	struct outcome_waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->woken = true;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

static long long monotonic_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Read ch's events from s (subscribed before ch was made, so none is
 * missed): 1 when it answered, 0 when it ended (*cause), -1 when neither
 * happened by deadline_ms. The channel's own state is the fallback when
 * the queue overflowed. */
static int await_outcome(px_event_sub *s, struct outcome_waiter *w, px_channel *ch,
			 long long deadline_ms, int *cause)
{
	const char *uid = px_channel_uniqueid(ch);

	for (;;) {
		uint64_t lost = px_event_sub_lost_ahead(s, NULL), after;
		px_event *ev;
		struct timespec now;

		while ((ev = px_event_sub_take(s, &after)) != NULL) {
			const struct px_event_field *f = NULL;
			int got = -1;
			lost += after;
			if (!strcmp(px_event_uniqueid(ev), uid)) {
				if (px_event_kind(ev) == PX_EV_HANGUP) {
					f = px_event_field_get(ev, "cause");
					*cause = f && f->type == PX_EVF_INT ? (int)f->i : 0;
					got = 0;
				} else if ((f = px_event_field_get(ev, "state_code")) &&
					   f->type == PX_EVF_INT && f->i == PX_STATE_UP) {
					got = 1;
				}
			}
			px_event_unref(ev);
			if (got >= 0)
				return got;
		}
		if (lost || px_channel_is_hungup(ch)) {
			if (px_channel_state(ch) == PX_STATE_UP)
				return 1;
			if (px_channel_is_hungup(ch)) {
				*cause = px_channel_hangup_cause(ch);
				return 0;
			}
		}
		if (monotonic_ms() >= deadline_ms)
			return -1;
		/* Woken by the next event; a second at most, to look again (the
		 * condition's clock is the default, CLOCK_REALTIME). */
		clock_gettime(CLOCK_REALTIME, &now);
		now.tv_sec += 1;
		pthread_mutex_lock(&w->lock);
		while (!w->woken)
			if (pthread_cond_timedwait(&w->cond, &w->lock, &now))
				break;
		w->woken = false;
		pthread_mutex_unlock(&w->lock);
	}
}

/* The originated call's outcome into the reply: answered, or failed with
 * the cause (an error that keeps channel and cause). */
static void tell_outcome(struct action *a, px_event_sub *s, struct outcome_waiter *w,
			 px_channel *ch, int timeout_ms)
{
	int cause = 0;
	/* The session hangs up at the timeout; a little more for that. */
	int got = await_outcome(s, w, ch, monotonic_ms() + timeout_ms + 5000, &cause);

	a->keep_reply = true;
	if (got > 0) {
		json_object_set_new(a->reply, "answered", json_true());
		return;
	}
	json_object_set_new(a->reply, "answered", json_false());
	if (got < 0) {
		fail(a, "failed", NULL, "%s: no answer and no hangup within %d s",
		     px_channel_name(ch), timeout_ms / 1000 + 5);
		return;
	}
	json_object_set_new(a->reply, "cause", json_integer(cause));
	json_object_set_new(a->reply, "cause_txt", json_string(px_cause_text(cause)));
	fail(a, "failed", NULL, "%s was not answered: %s (cause %d)", px_channel_name(ch),
	     px_cause_text(cause), cause);
}

static int act_originate(struct action *a)
{
	struct px_originate o = {0};
	char tech[32], dest[128];
	const char **vars = NULL;
	json_t *jv = json_object_get(a->req, "variables"), *wait;
	struct outcome_waiter w = {.lock = PTHREAD_MUTEX_INITIALIZER,
				   .cond = PTHREAD_COND_INITIALIZER};
	px_event_sub *sub = NULL;
	long long timeout;
	px_channel *ch = NULL;
	px_err err = {""};
	int rc = -1;

	if (originate_target(a, tech, sizeof(tech), dest, sizeof(dest)) < 0)
		return -1;
	o.tech = tech;
	o.dest = dest;
	o.app = str_field(a, "application", false);
	o.app_args = a->code ? NULL : str_field(a, "data", false);
	if (!o.app && !a->code) {
		o.exten = str_field(a, "exten", true);
		o.context = a->code ? NULL : str_field(a, "context", true);
	}
	o.caller_num = a->code ? NULL : str_field(a, "caller_num", false);
	o.caller_name = a->code ? NULL : str_field(a, "caller_name", false);
	if (a->code || int_field(a, "timeout", 30, 1, 3600, &timeout) < 0)
		return -1;
	o.timeout_ms = (int)timeout * 1000;
	if (jv && !json_is_null(jv)) {
		const char *k;
		json_t *v;
		size_t i = 0;
		if (!json_is_object(jv))
			return fail(a, "bad_field", "variables",
				    "field 'variables' must be an object of NAME: value");
		vars = calloc(json_object_size(jv) + 1, sizeof(*vars));
		if (!vars)
			return fail(a, "failed", NULL, "out of memory");
		json_object_foreach(jv, k, v)
		{
			char *nv;
			if (!json_is_string(v)) {
				fail(a, "bad_field", "variables", "variable '%s' must be a string",
				     k);
				goto out;
			}
			if (asprintf(&nv, "%s=%s", k, json_string_value(v)) < 0) {
				fail(a, "failed", NULL, "out of memory");
				goto out;
			}
			vars[i++] = nv;
		}
		o.vars = vars;
		o.nvars = i;
	}
	wait = json_object_get(a->req, "wait");
	if (wait && !json_is_boolean(wait) && !json_is_null(wait)) {
		fail(a, "bad_field", "wait", "field 'wait' must be true or false");
		goto out;
	}
	if (json_is_true(wait)) {
		/* Before the channel exists, so that none of its events is missed. */
		struct px_event_filter f = {.kinds = PX_EVENT_KIND_BIT(PX_EV_CHANNEL_STATE) |
						     PX_EVENT_KIND_BIT(PX_EV_HANGUP)};
		sub = px_event_subscribe(&f, 256, outcome_notify, &w);
		if (!sub) {
			fail(a, "failed", NULL, "out of memory");
			goto out;
		}
	}
	if (px_channel_originate(&o, &ch, &err) < 0) {
		fail(a, "failed", NULL, "%s", err.msg);
		goto out;
	}
	json_object_set_new(a->reply, "channel", px_json_text(px_channel_name(ch)));
	json_object_set_new(a->reply, "uniqueid", px_json_text(px_channel_uniqueid(ch)));
	json_object_set_new(a->reply, "linkedid", px_json_text(px_channel_linkedid(ch)));
	if (sub)
		tell_outcome(a, sub, &w, ch, o.timeout_ms);
	px_channel_unref(ch);
	rc = a->code ? -1 : 0;
out:
	px_event_unsubscribe(sub);
	for (size_t i = 0; vars && vars[i]; i++)
		free((char *)vars[i]);
	free(vars);
	return rc;
}

static int act_redirect(struct action *a)
{
	px_channel *ch = channel_field(a, "channel"), *extra = NULL;
	const char *exten, *context, *xexten = NULL, *xcontext = NULL;
	json_t *with_peer = json_object_get(a->req, "with_peer");
	px_err err = {""};
	int rc = -1;

	if (!ch)
		return -1;
	exten = str_field(a, "exten", true);
	context = a->code ? NULL : str_field(a, "context", true);
	if (a->code)
		goto out;
	if (json_object_get(a->req, "extra_channel")) {
		extra = channel_field(a, "extra_channel");
		if (!extra)
			goto out;
	} else if (with_peer && json_is_true(with_peer)) {
		extra = px_channel_get_peer(ch);
		if (!extra) {
			fail(a, "failed", "with_peer", "%s is not bridged", px_channel_name(ch));
			goto out;
		}
	}
	if (extra) {
		xexten = str_field(a, "extra_exten", false);
		xcontext = a->code ? NULL : str_field(a, "extra_context", false);
		if (a->code)
			goto out;
	}
	/* Both at once: each target checked before either channel moves, and
	 * both marked before either is woken, so the bridge they may share
	 * finds both leaving and hangs up neither. */
	if (extra) {
		if (px_channel_async_goto2(ch, context, exten, extra, xcontext ? xcontext : context,
					   xexten ? xexten : exten, &err) < 0) {
			fail(a, "failed", NULL, "%s", err.msg);
			goto out;
		}
	} else if (px_channel_async_goto(ch, context, exten, &err) < 0) {
		fail(a, "failed", NULL, "%s: %s", px_channel_name(ch), err.msg);
		goto out;
	}
	json_object_set_new(a->reply, "channel", px_json_text(px_channel_name(ch)));
	if (extra)
		json_object_set_new(a->reply, "extra_channel",
				    px_json_text(px_channel_name(extra)));
	rc = 0;
out:
	px_channel_unref(extra);
	px_channel_unref(ch);
	return rc;
}

static int act_bridge(struct action *a)
{
	px_channel *c1 = channel_field(a, "channel1"), *c2 = NULL;
	px_err err = {""};
	int rc = -1;

	if (!c1)
		return -1;
	c2 = channel_field(a, "channel2");
	if (!c2)
		goto out;
	if (px_channel_bridge(c1, c2, &err) < 0) {
		fail(a, "failed", NULL, "%s", err.msg);
		goto out;
	}
	rc = 0;
out:
	px_channel_unref(c1);
	px_channel_unref(c2);
	return rc;
}

static int hold(struct action *a, bool on)
{
	px_channel *ch = channel_field(a, "channel");
	int rc = 0;

	if (!ch)
		return -1;
	if (px_channel_state(ch) != PX_STATE_UP)
		rc = fail(a, "failed", "channel", "%s is not answered", px_channel_name(ch));
	else if (px_channel_indicate(ch, on ? PX_CONTROL_HOLD : PX_CONTROL_UNHOLD) != 0)
		rc = fail(a, "failed", "channel", "%s cannot be %s", px_channel_name(ch),
			  on ? "held" : "taken off hold");
	else
		px_channel_set_hold(ch, on, "operator");
	px_channel_unref(ch);
	return rc;
}

static int act_hold(struct action *a)
{
	return hold(a, true);
}

static int act_unhold(struct action *a)
{
	return hold(a, false);
}

static int act_setvar(struct action *a)
{
	px_channel *ch = channel_field(a, "channel");
	const char *name;
	json_t *v;

	if (!ch)
		return -1;
	name = str_field(a, "variable", true);
	v = json_object_get(a->req, "value");
	if (name && (!v || !(json_is_string(v) || json_is_null(v))))
		fail(a, v ? "bad_field" : "missing_field", "value",
		     v ? "field 'value' must be a string or null" : "missing field 'value'");
	if (!a->code)
		px_channel_var_set(ch, name, json_is_null(v) ? NULL : json_string_value(v));
	px_channel_unref(ch);
	return a->code ? -1 : 0;
}

static int act_getvar(struct action *a)
{
	px_channel *ch = channel_field(a, "channel");
	const char *name;
	char buf[4096];

	if (!ch)
		return -1;
	name = str_field(a, "variable", true);
	if (name) {
		json_object_set_new(a->reply, "variable", px_json_text(name));
		json_object_set_new(a->reply, "value",
				    px_channel_var_get(ch, name, buf, sizeof(buf)) == 0
					    ? px_json_text(buf)
					    : json_null());
	}
	px_channel_unref(ch);
	return a->code ? -1 : 0;
}

/* ---- console commands ---- */

struct capture {
	char *buf;
	size_t len, cap;
};

static void capture_write(void *ctx, const char *data, size_t len)
{
	struct capture *c = ctx;

	if (c->len + len + 1 > c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 1024;
		char *n;
		while (ncap < c->len + len + 1)
			ncap *= 2;
		n = realloc(c->buf, ncap);
		if (!n)
			return;
		c->buf = n;
		c->cap = ncap;
	}
	memcpy(c->buf + c->len, data, len);
	c->len += len;
	c->buf[c->len] = '\0';
}

static int act_command(struct action *a)
{
	const char *line = str_field(a, "command", true);
	struct capture cap = {0};
	px_cli cli = {.write = capture_write,
		      .ctx = &cap,
		      .console = a->conn->console,
		      .uid = a->conn->uid,
		      .pid = a->conn->pid,
		      .role = a->conn->role};
	char words[128];
	enum px_role need;
	enum px_cli_status st;

	if (!line)
		return -1;
	need = px_cli_line_role(line, words, sizeof(words));
	if (need > a->conn->role) {
		a->need = need;
		return fail(a, "denied", "command", "'%s' needs the %s role (this console is %s)",
			    words, px_role_name(need), px_role_name(a->conn->role));
	}
	st = px_cli_execute(&cli, line);
	json_object_set_new(a->reply, "status", json_integer(st));
	json_object_set_new(a->reply, "output", px_json_text(cap.buf));
	free(cap.buf);
	if (st == PX_CLI_NOCOMMAND)
		return fail(a, "unknown_command", "command", "no such command '%s'", line);
	return 0;
}

/* ---- events ---- */

static int types_field(struct action *a, uint64_t *kinds)
{
	json_t *v = json_object_get(a->req, "types");
	size_t i;
	json_t *t;

	*kinds = 0;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_string(v)) {
		char *copy = strdup(json_string_value(v)), *p, *tok;
		if (!copy)
			return fail(a, "failed", NULL, "out of memory");
		for (p = copy; (tok = strsep(&p, ", "));) {
			int k;
			if (!*tok)
				continue;
			k = px_event_kind_parse(tok);
			if (k < 0) {
				fail(a, "bad_field", "types", "unknown event type '%s'", tok);
				free(copy);
				return -1;
			}
			*kinds |= PX_EVENT_KIND_BIT(k);
		}
		free(copy);
		return 0;
	}
	if (!json_is_array(v))
		return fail(a, "bad_field", "types", "field 'types' must be a list of event types");
	json_array_foreach(v, i, t)
	{
		int k = json_is_string(t) ? px_event_kind_parse(json_string_value(t)) : -1;
		if (k < 0)
			return fail(a, "bad_field", "types", "unknown event type %s",
				    json_is_string(t) ? json_string_value(t) : "(not a string)");
		*kinds |= PX_EVENT_KIND_BIT(k);
	}
	return 0;
}

static int act_subscribe(struct action *a)
{
	struct px_event_filter f = {0};
	const char *chan, *ep, *format;
	long long queue;
	px_err err = {""};
	json_t *types;

	if (types_field(a, &f.kinds) < 0)
		return -1;
	chan = str_field(a, "channel", false);
	ep = a->code ? NULL : str_field(a, "endpoint", false);
	format = a->code ? NULL : str_field(a, "format", false);
	if (a->code || int_field(a, "queue", PX_CONSOLE_EVENT_QUEUE, 1, PX_CONSOLE_EVENT_QUEUE_MAX,
				 &queue) < 0)
		return -1;
	if (format && strcmp(format, "frames") && strcmp(format, "lines"))
		return fail(a, "bad_field", "format",
			    "field 'format' must be \"frames\" or \"lines\", not \"%s\"", format);
	snprintf(f.channel, sizeof(f.channel), "%s", chan ? chan : "");
	snprintf(f.endpoint, sizeof(f.endpoint), "%s", ep ? ep : "");
	/* What the memory budget lets the queue hold (console.conf [events]). */
	queue = (long long)px_event_queue_fit((size_t)queue);
	if (a->conn->subscribe(a->conn->console, &f, (size_t)queue,
			       format && !strcmp(format, "lines"), &err) < 0)
		return fail(a, "failed", NULL, "%s", err.msg);
	types = json_array();
	for (int k = 0; k < PX_EV_KINDS; k++)
		if (!f.kinds || (f.kinds & PX_EVENT_KIND_BIT(k)))
			json_array_append_new(types, json_string(px_event_kind_name(k)));
	json_object_set_new(a->reply, "types", types);
	json_object_set_new(a->reply, "queue", json_integer(queue));
	json_object_set_new(a->reply, "format", json_string(format ? format : "frames"));
	return 0;
}

static int act_unsubscribe(struct action *a)
{
	a->conn->unsubscribe(a->conn->console);
	return 0;
}

/* ---- dispatch ---- */

struct action_def {
	const char *name;
	enum px_role role;
	int (*run)(struct action *a);
};

static const struct action_def actions[] = {
	{"Status", PX_ROLE_MONITOR, act_status},
	{"Registrations", PX_ROLE_MONITOR, act_registrations},
	{"GetVar", PX_ROLE_MONITOR, act_getvar},
	{"Subscribe", PX_ROLE_MONITOR, act_subscribe},
	{"Unsubscribe", PX_ROLE_MONITOR, act_unsubscribe},
	/* Command checks the role of the command it runs. */
	{"Command", PX_ROLE_MONITOR, act_command},
	{"Originate", PX_ROLE_OPERATOR, act_originate},
	{"Hangup", PX_ROLE_OPERATOR, act_hangup},
	{"Redirect", PX_ROLE_OPERATOR, act_redirect},
	{"Bridge", PX_ROLE_OPERATOR, act_bridge},
	{"Hold", PX_ROLE_OPERATOR, act_hold},
	{"Unhold", PX_ROLE_OPERATOR, act_unhold},
	{"SetVar", PX_ROLE_OPERATOR, act_setvar},
};

static char *dump(json_t *o)
{
	char *text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);

	json_decref(o);
	return text;
}

char *px_action_run(const struct px_action_conn *conn, const char *payload, size_t len)
{
	struct action a = {.conn = conn};
	json_error_t jerr;
	const struct action_def *def = NULL;
	json_t *id = NULL, *name, *out;

	a.reply = json_object();
	a.req = json_loadb(payload, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!a.req) {
		fail(&a, "bad_json", NULL, "not JSON: %s (line %d, column %d)", jerr.text,
		     jerr.line, jerr.column);
		goto reply;
	}
	if (!json_is_object(a.req)) {
		fail(&a, "bad_json", NULL, "an action is a JSON object");
		goto reply;
	}
	id = json_object_get(a.req, "action_id");
	name = json_object_get(a.req, "action");
	if (!name) {
		fail(&a, "missing_field", "action", "missing field 'action'");
		goto reply;
	}
	if (!json_is_string(name)) {
		fail(&a, "bad_field", "action", "field 'action' must be a string");
		goto reply;
	}
	for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
		if (!strcasecmp(actions[i].name, json_string_value(name)))
			def = &actions[i];
	if (!def) {
		fail(&a, "unknown_action", "action", "unknown action '%s'",
		     json_string_value(name));
		goto reply;
	}
	if (!id || !(json_is_string(id) || json_is_integer(id))) {
		fail(&a, id ? "bad_field" : "missing_field", "action_id",
		     id ? "field 'action_id' must be a string or an integer"
			: "missing field 'action_id'");
		goto reply;
	}
	if (def->role > conn->role) {
		a.need = def->role;
		fail(&a, "denied", "action", "%s needs the %s role (this console is %s)", def->name,
		     px_role_name(def->role), px_role_name(conn->role));
		goto reply;
	}
	px_debug(2, "console action %s from pid %d", def->name, (int)conn->pid);
	def->run(&a);
reply:
	out = json_object();
	json_object_set_new(out, "response", json_string(a.code ? "Error" : "Success"));
	json_object_set(out, "action_id",
			id && (json_is_string(id) || json_is_integer(id)) ? id : json_null());
	json_object_set_new(out, "action", json_string(def ? def->name : ""));
	if (a.code) {
		json_object_set_new(out, "code", json_string(a.code));
		json_object_set_new(out, "message", px_json_text(a.message));
		if (a.field)
			json_object_set_new(out, "field", json_string(a.field));
		if (a.need != PX_ROLE_NONE)
			json_object_set_new(out, "role_needed", json_string(px_role_name(a.need)));
		/* Command keeps its output even when it failed, Originate
		 * with wait its channel and cause. */
		if (a.keep_reply || json_object_get(a.reply, "output"))
			json_object_update(out, a.reply);
	} else {
		json_object_update(out, a.reply);
	}
	json_decref(a.reply);
	json_decref(a.req);
	return dump(out);
}
