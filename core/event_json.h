/*
 * Events as JSON, the form the console's event stream sends them in (one
 * object per event; docs/console-protocol.md lists the keys).
 */
#ifndef PLEXUS_EVENT_JSON_H
#define PLEXUS_EVENT_JSON_H

#include <stdint.h>

#include <plexus/event.h>

/* A new string holding ev as one line of compact JSON, or NULL (memory). */
char *px_event_to_json(const px_event *ev);
/* ev's JSON text, encoded once and kept with the event (freed with it), or
 * NULL (memory). Any thread. */
const char *px_event_json(px_event *ev);
/* {"event":"EventsLost","lost":N,"after_seq":S}: a subscriber's gap. */
char *px_event_lost_json(uint64_t lost, uint64_t after_seq);

#endif
