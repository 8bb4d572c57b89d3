/*
 * The dialplan seen from the core: a dialplan engine module (pbx_lua)
 * registers how to tell whether an extension exists and how to run it on a
 * channel. Channel technologies ask px_dialplan_exists before they accept a
 * call (404 otherwise) and a channel's session thread calls px_dialplan_run.
 * Applications that collect digits (overlap dialling, IVR menus) ask
 * px_dialplan_canmatch and px_dialplan_matchmore, with Asterisk's meaning.
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
	/* Could exten, or exten with more digits, match in context? Any thread;
	 * NULL: never. */
	bool (*canmatch)(const char *context, const char *exten, const char *callerid);
	/* Could exten followed by at least one more digit match? Any thread;
	 * NULL: never. */
	bool (*matchmore)(const char *context, const char *exten, const char *callerid);
};

/* One engine at a time: registering a second one fails. */
int px_dialplan_register(px_module *owner, const struct px_dialplan_engine *engine, px_err *err);
void px_dialplan_unregister(const struct px_dialplan_engine *engine);

/* Does context hold exten, exactly or by a pattern (includes searched)? */
bool px_dialplan_exists(const char *context, const char *exten, const char *callerid);
/* Asterisk's canmatch: exten matches an entry, or is the start of one
 * ("12" can match "_1XXX"). */
bool px_dialplan_canmatch(const char *context, const char *exten, const char *callerid);
/* Asterisk's matchmore: some entry would match exten followed by more
 * characters ("12" with "_1XXX" or "_X."; not "1234" with "_1XXX"). A
 * collector stops waiting for digits when this is false. */
bool px_dialplan_matchmore(const char *context, const char *exten, const char *callerid);
/* Run the channel's dialplan (its context and extension) to the end. */
int px_dialplan_run(px_channel *ch);

#endif
