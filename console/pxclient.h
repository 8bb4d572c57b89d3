/*
 * The client side of the console protocol for programs (plexus -e, the
 * switchboard): a connection to plexusd's console socket that sends JSON
 * actions and receives their results, event frames and log lines, usable
 * from a poll() loop. Results are matched to actions by the frame ID, which
 * the library chooses; the action_id inside the JSON is the caller's.
 *
 * A typical event loop: px_client_connect, px_client_subscribe, then poll
 * px_client_fd for reading and drain px_client_next until it returns 0;
 * each frame of kind "event" holds one JSON object. An action is sent with
 * px_client_send_action and its "result" frame comes back with the same
 * frame ID, in between events; px_client_call does both and hands the
 * frames that arrive meanwhile to a callback.
 */
#ifndef PLEXUS_CONSOLE_PXCLIENT_H
#define PLEXUS_CONSOLE_PXCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "protocol.h"

struct px_client {
	int fd; /* -1 when not connected */
	struct px_frame_reader reader;
	uint64_t last_id;
	char banner[256]; /* "Plexus VERSION on HOST (pid N)" */
	char bye[256];    /* why the daemon closed, after a "bye" frame */
	bool eof;         /* the daemon went away */
};

void px_client_init(struct px_client *c);
/* Connect and read the banner (waiting up to timeout_ms). 0, or -1 with
 * err filled ("cannot connect to ...: No such file or directory", or the
 * daemon's bye, e.g. access denied). */
int px_client_connect(struct px_client *c, const char *path, int timeout_ms, char *err,
		      size_t errsize);
void px_client_close(struct px_client *c);
int px_client_fd(const struct px_client *c);

/* Send one action (a JSON object as text); *id gets the frame ID its
 * result will carry. 0, or -1 when the connection is lost. */
int px_client_send_action(struct px_client *c, const char *json, uint64_t *id);
/* The next complete frame, waiting up to timeout_ms (0: only what has
 * arrived; -1: no limit). 1 with f filled (valid until the next call), 0
 * when none came, -1 when the connection is lost or broken (c->bye or
 * c->eof say which). */
int px_client_next(struct px_client *c, struct px_frame *f, int timeout_ms);
/* The next complete frame among the bytes already received, without a
 * system call: 1 with f filled, 0 when none is complete, -1 as for
 * px_client_next. A reader that drains a batch with it learns when the
 * batch is done without asking the kernel. */
int px_client_buffered(struct px_client *c, struct px_frame *f);
/* Send an action and wait for its result (up to timeout_ms); every other
 * frame meanwhile goes to on_frame (may be NULL). Returns the result's JSON
 * text (caller frees), or NULL when the connection was lost or it timed out. */
char *px_client_call(struct px_client *c, const char *json, int timeout_ms,
		     void (*on_frame)(void *ctx, const struct px_frame *f), void *ctx);

/* The Subscribe action for filter words of plexus -e: "type=A,B" (or a bare
 * event type), "channel=NAME", "endpoint=NAME", "queue=N"; with lines, it
 * asks for "format":"lines". Returns a new JSON string, or NULL with err
 * saying which word is wrong. */
char *px_client_subscribe_json(int nwords, char **words, const char *action_id, bool lines,
			       char *err, size_t errsize);

#endif
