/*
 * Dialplan applications (Dial, Answer, Playback ...). An application is a
 * name, its documentation, and an exec function that runs in the session
 * thread of the channel, as plain blocking code, until it is done. The
 * argument string is passed whole, as in Asterisk ("SIP/1001&SIP/1002,30");
 * px_app_split_args splits it on commas the way Asterisk's applications do.
 */
#ifndef PLEXUS_APP_H
#define PLEXUS_APP_H

#include <plexus/channel.h>
#include <plexus/error.h>
#include <plexus/module.h>

struct px_app {
	const char *name;        /* "Dial"; looked up case-insensitively */
	const char *synopsis;    /* one line */
	const char *syntax;      /* "Dial(Tech/Resource[&...][,timeout])" */
	const char *description; /* arguments, behaviour, variables it sets */
	/* 0: the dialplan goes on; -1: the channel is to be hung up. */
	int (*exec)(px_channel *ch, const char *data);
};

int px_app_register(px_module *owner, const struct px_app *app, px_err *err);
void px_app_unregister(const struct px_app *app);

/* Run application name on ch. -1 with err filled when there is no such
 * application; otherwise what the application returned (err untouched), so
 * a caller tells the two -1s apart by err->msg[0]. */
int px_app_exec(px_channel *ch, const char *name, const char *data, px_err *err);
bool px_app_exists(const char *name);

/* Split data in place on commas that are not inside quotes or parentheses;
 * quotes are removed, blanks around arguments kept. Returns the count. */
int px_app_split_args(char *data, char **argv, int max);

/* Remove blanks at both ends of s in place; returns the first non-blank. */
char *px_app_trim(char *s);

/* Asterisk's truth of a condition (GotoIf, IF, ExecIf): blank is false, a
 * number is its value, any other text is true. */
bool px_app_condition_true(const char *s);

#endif
