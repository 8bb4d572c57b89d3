/*
 * A two-party bridge: two channels talking to each other. The core runs it
 * in the session thread of one channel (a); the other (b) is Dial's callee,
 * which has no session of its own, or, for an operator's Bridge, a channel
 * whose session handed it over and waits. While bridged, media is relayed
 * between the two legs, each is the other's peer, hold and unhold from one
 * side are indicated to the other, and Bridged / Unbridged events are told.
 *
 * The bridge ends when a side hangs up or is asked to leave (a redirect, a
 * new bridge). Dial's bridge then sends each side that is still up where
 * it was asked to go (a continues in its own session; b gets a session of
 * its own) or hangs it up, with the cause of the side that hung up first.
 * After an operator's bridge neither side is hung up: each goes on in its
 * own session, after the application it was taken out of (or where it was
 * sent meanwhile).
 */
#ifndef PLEXUS_BRIDGE_H
#define PLEXUS_BRIDGE_H

#include <plexus/channel.h>
#include <plexus/error.h>

/* Bridge a (owned by the calling session thread) and b until it ends, as
 * above. Unanswered channels are answered first. Returns -1, what the
 * application that ran the bridge returns: the call is over for it. */
int px_bridge_run(px_channel *a, px_channel *b);

/* The operator's Bridge: a and b, each running a session of its own (both
 * parked in an application, for instance), leave what they run; a's session
 * then runs the bridge once b's session has handed b over (each waits at
 * most 10 s for the other; a meet that fails leaves both where they were).
 * When the bridge ends, each continues its dialplan after the application
 * it left. Legs whose formats differ are transcoded. Returns once the
 * request is made; -1 with err when either is hung up, runs no session,
 * a == b, or no translation path joins the two legs' formats. */
int px_channel_bridge(px_channel *a, px_channel *b, px_err *err);

#endif
