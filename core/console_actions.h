/*
 * Actions on the console socket: a JSON object in an "action" frame, run in
 * the console's thread and answered by one JSON result carrying the same
 * action_id (docs/console-protocol.md). Each action needs a role; a denied
 * or malformed one gets an error result and the connection stays usable.
 */
#ifndef PLEXUS_CONSOLE_ACTIONS_H
#define PLEXUS_CONSOLE_ACTIONS_H

#include <stddef.h>
#include <sys/types.h>

#include <plexus/cli.h>
#include <plexus/error.h>
#include <plexus/event.h>

struct px_console;

/* What an action may know and do about the connection that sent it. */
struct px_action_conn {
	enum px_role role;
	uid_t uid;
	pid_t pid;
	struct px_console *console;
	/* Subscribe (or change the filter of) this connection's event stream;
	 * lines: after this action's result the connection carries nothing
	 * but events, a JSON object per line ("format":"lines"). */
	int (*subscribe)(struct px_console *c, const struct px_event_filter *f, size_t queue,
			 bool lines, px_err *err);
	void (*unsubscribe)(struct px_console *c);
};

/* Run one action; returns the result as a new JSON string (NULL only when
 * out of memory). */
char *px_action_run(const struct px_action_conn *conn, const char *payload, size_t len);

/* Default and largest queue of a subscriber on the console, in events. */
#define PX_CONSOLE_EVENT_QUEUE     2000
#define PX_CONSOLE_EVENT_QUEUE_MAX 100000

#endif
