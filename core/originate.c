/*
 * Originate: a call the PBX places by itself, for an operator's action or
 * the "channel originate" command. The callee's channel is requested with
 * no caller, given its caller ID and variables, and called; a session
 * thread then waits for the answer and runs the dialplan (or one
 * application) on it, like the session of an inbound call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/dialplan.h>
#include <plexus/log.h>

#include "channel_internal.h"

#define ORIGINATE_DEFAULT_TIMEOUT_MS 30000

static int set_vars(px_channel *ch, const struct px_originate *o, px_err *err)
{
	for (size_t i = 0; o->vars && (o->nvars ? i < o->nvars : o->vars[i] != NULL); i++) {
		const char *eq = strchr(o->vars[i], '=');
		char name[128];

		if (!eq || eq == o->vars[i] || (size_t)(eq - o->vars[i]) >= sizeof(name))
			return px_err_set(err, "variable '%s' is not NAME=value", o->vars[i]);
		memcpy(name, o->vars[i], (size_t)(eq - o->vars[i]));
		name[eq - o->vars[i]] = '\0';
		px_channel_var_set(ch, name, eq + 1);
	}
	return 0;
}

int px_channel_originate(const struct px_originate *o, px_channel **out, px_err *err)
{
	struct px_session_opts opts = {0};
	px_channel *ch;
	int cause = 0;

	if (!o->tech || !*o->tech || !o->dest || !*o->dest)
		return px_err_set(err, "originate needs a channel to call (Tech/Resource)");
	if (o->app && *o->app) {
		if (!px_app_exists(o->app))
			return px_err_set(err, "no such application '%s'", o->app);
	} else if (!o->context || !*o->context || !o->exten || !*o->exten) {
		return px_err_set(err, "originate needs exten@context or an application");
	} else if (!px_dialplan_exists(o->context, o->exten, o->caller_num)) {
		return px_err_set(err, "no extension %s in context %s", o->exten, o->context);
	}
	ch = px_channel_request(o->tech, o->dest, NULL, &cause);
	if (!ch)
		return px_err_set(err, "cannot call %s/%s: %s (cause %d)", o->tech, o->dest,
				  px_cause_text(cause), cause);
	if (set_vars(ch, o, err) < 0) {
		px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
		px_channel_unref(ch);
		return -1;
	}
	px_channel_set_caller(ch, o->caller_num, o->caller_name);
	if (o->app && *o->app) {
		opts.app = o->app;
		opts.app_args = o->app_args;
	} else {
		px_channel_set_dialplan(ch, o->context, o->exten);
	}
	opts.answer_timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : ORIGINATE_DEFAULT_TIMEOUT_MS;
	if (px_channel_call(ch, opts.answer_timeout_ms) != 0) {
		cause = px_channel_hangup_cause(ch);
		px_channel_hangup(ch, cause);
		px_channel_unref(ch);
		return px_err_set(err, "calling %s/%s failed: %s", o->tech, o->dest,
				  px_cause_text(cause));
	}
	/* The session waits for the answer, then runs the dialplan. */
	if (px_channel_start_session_opts(ch, &opts, err) < 0) {
		px_channel_hangup(ch, PX_CAUSE_CONGESTION);
		px_channel_unref(ch);
		return -1;
	}
	px_verbose(3, "Originated %s to %s", px_channel_name(ch), opts.app ? opts.app : o->exten);
	*out = ch;
	return 0;
}
