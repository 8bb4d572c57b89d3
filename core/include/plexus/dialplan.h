/*
 * The dialplan seen from the core: a dialplan engine module (pbx_lua)
 * registers how to tell whether an extension exists and how to run it on a
 * channel. Channel technologies ask px_dialplan_exists before they accept a
 * call (404 otherwise) and a channel's session thread calls px_dialplan_run.
 */
#ifndef PLEXUS_DIALPLAN_H
#define PLEXUS_DIALPLAN_H

#include <stdbool.h>

#include <plexus/channel.h>
#include <plexus/error.h>
#include <plexus/module.h>

struct px_dialplan_engine {
	const char *name; /* "lua" */
	/* Does context hold exten (exactly or by pattern)? Any thread. */
	bool (*exists)(const char *context, const char *exten, const char *callerid);
	/* Run exten in context on ch until the dialplan is done with it, in the
	 * channel's session thread. 0 when it ended normally, -1 on error. */
	int (*exec)(px_channel *ch, const char *context, const char *exten);
};

/* One engine at a time: registering a second one fails. */
int px_dialplan_register(px_module *owner, const struct px_dialplan_engine *engine, px_err *err);
void px_dialplan_unregister(const struct px_dialplan_engine *engine);

bool px_dialplan_exists(const char *context, const char *exten, const char *callerid);
/* Run the channel's dialplan (its context and extension) to the end. */
int px_dialplan_run(px_channel *ch);

#endif
