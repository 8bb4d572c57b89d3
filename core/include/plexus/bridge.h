/*
 * A two-party bridge: two channels talking to each other. The core runs it
 * in the session thread of one channel (a); the other (b) has no session of
 * its own meanwhile: it is Dial's callee, or a channel whose session handed
 * it over for an operator's Bridge. While bridged, media is relayed between
 * the two legs, each is the other's peer, hold and unhold from one side are
 * indicated to the other, and Bridged / Unbridged events are told.
 *
 * The bridge ends when a side hangs up or is asked to leave (a redirect, a
 * new bridge). Then each side that is still up is either sent where it was
 * asked to go (a continues in its own session; b gets a session of its
 * own) or hung up, with the cause of the side that hung up first.
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
 * then runs the bridge once b's session has handed b over. Returns once the
 * request is made; -1 with err when either is hung up, runs no session, or
 * a == b. */
int px_channel_bridge(px_channel *a, px_channel *b, px_err *err);

#endif
