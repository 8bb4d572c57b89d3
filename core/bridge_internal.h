/*
 * Where two sessions meet for an operator's Bridge: b's session hands its
 * channel over, a's session waits for that (bounded) before it bridges.
 * Refcounted; both departures hold a reference.
 */
#ifndef PLEXUS_BRIDGE_INTERNAL_H
#define PLEXUS_BRIDGE_INTERNAL_H

#include <stdbool.h>

struct px_bridge_meet;

struct px_bridge_meet *px_bridge_meet_ref(struct px_bridge_meet *m);
void px_bridge_meet_unref(struct px_bridge_meet *m);
/* b's session: handed (true) or could not come (false: hung up). True
 * when the channel now belongs to a's bridge; false when a gave up waiting
 * (b's session keeps it). */
bool px_bridge_meet_handover(struct px_bridge_meet *m, bool handed);
/* a's session: true once b was handed over; false if it could not come or
 * did not within a few seconds. */
bool px_bridge_meet_wait(struct px_bridge_meet *m);

#endif
