/*
 * Where two sessions meet for an operator's Bridge: b's session hands its
 * channel over and waits; a's session, once b is there, runs the bridge
 * and closes the meet when it is over; either side gives up by closing it
 * (its departure dropped: hung up, sent elsewhere, session ended), and each
 * waits for the other a bounded time. Refcounted; both departures hold a
 * reference. Whatever happens, each channel stays its own session's.
 */
#ifndef PLEXUS_BRIDGE_INTERNAL_H
#define PLEXUS_BRIDGE_INTERNAL_H

#include <stdbool.h>

#include <plexus/channel.h>

struct px_bridge_meet;

struct px_bridge_meet *px_bridge_meet_ref(struct px_bridge_meet *m);
void px_bridge_meet_unref(struct px_bridge_meet *m);
/* b's session: wait for a to take b into its bridge and for that bridge to
 * end. True when it ran; false when a gave up or did not come in time. */
bool px_bridge_meet_join(struct px_bridge_meet *m);
/* a's session: true once b waits, and the bridge is a's to run (then
 * px_bridge_meet_close); false when b gave up or did not come in time. */
bool px_bridge_meet_start(struct px_bridge_meet *m);
/* No bridge (any more): the side waiting, if any, goes on. Idempotent. */
void px_bridge_meet_close(struct px_bridge_meet *m);

/* The operator's bridge of a and b, both in sessions of their own (a's is
 * the calling thread, b's waits in px_bridge_meet_join). When it ends
 * neither is hung up or moved: each session decides. */
void px_bridge_run_sessions(px_channel *a, px_channel *b);

#endif
