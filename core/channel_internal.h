/*
 * Channels seen from the core: the application shown by "core show
 * channels", the list of technologies, and the whole-daemon operations used
 * at shutdown (hang up everything, wait for the sessions to end).
 */
#ifndef PLEXUS_CHANNEL_INTERNAL_H
#define PLEXUS_CHANNEL_INTERNAL_H

#include <stdbool.h>

#include <plexus/channel.h>

void px_channel_get_application(px_channel *ch, char *app, size_t asize, char *data, size_t dsize);
void px_channel_tech_foreach(void (*fn)(void *ctx, const struct px_channel_tech *t), void *ctx);
void px_channel_hangup_all(int cause);
int px_channel_sessions_running(void);
/* Whether a channel exists, or one was made less than secs seconds ago
 * (0: exists now). Takes no lock and allocates nothing, so that code
 * running under the allocator's own locks may ask (heap_prefault.c's purge
 * hook, through main.c). The time matters under a load of short calls: at
 * 1500 calls/s that last a few milliseconds each, the moments with no
 * channel at all were frequent enough that a purge hook asking "any
 * channel?" saw an idle daemon 200 times a minute. */
bool px_channel_recent(unsigned secs);
/* At shutdown, after the calls: end the idle session threads (bounded wait). */
void px_channel_sessions_shutdown(void);
/* For tests: while fail is true, every session thread the pool tries to
 * make fails with EAGAIN, as when the system is out of threads. */
void px_channel_sessions_fail_spawns(bool fail);

/* How a session starts: an originated channel first waits for its answer
 * (answer_timeout_ms > 0), then runs app(app_args) if app is set, else
 * the dialplan at the channel's context and extension. */
struct px_session_opts {
	int answer_timeout_ms;
	const char *app;
	const char *app_args;
};
int px_channel_start_session_opts(px_channel *ch, const struct px_session_opts *opts, px_err *err);

/* Ask the sessions of a and b to leave what they run and meet in a bridge
 * (bridge.c): a's session runs it once b's session has handed b over.
 * Both must be in a session now; checked and marked at once. */
struct px_bridge_meet;
int px_channel_request_bridge(px_channel *a, px_channel *b, struct px_bridge_meet *meet,
			      px_err *err);

/* In ch's session thread, when an application has returned: carry out a
 * bridge requested meanwhile (run it, or be handed to it and wait) and come
 * back. True when the channel stays where it was, so the dialplan goes on
 * after the application; false when it is hung up or sent elsewhere. Does
 * nothing on another thread than ch's session's. */
bool px_channel_session_departs(px_channel *ch);

#endif
