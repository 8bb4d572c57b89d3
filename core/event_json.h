/*
 * Events as JSON, the form the console's event stream sends them in (one
 * object per event; docs/console-protocol.md lists the keys).
 */
#ifndef PLEXUS_EVENT_JSON_H
#define PLEXUS_EVENT_JSON_H

#include <stdint.h>

#include <plexus/event.h>

/* An event as the console sends it: the whole "event" frame (header
 * "event 0 LEN\n" and the JSON) in one block, so that every console
 * streaming it writes the same bytes straight from the event, without
 * building or copying anything per subscriber. */
struct px_event_text {
	const char *frame; /* "event 0 LEN\n{...}", frame_len bytes */
	size_t frame_len;
	const char *json; /* the payload within frame, NUL-terminated */
	size_t json_len;
};
/* A new text of ev (one block, freed with px_event_block_free), or NULL
 * (memory, or a JSON text longer than a frame may carry). */
struct px_event_text *px_event_text_new(const px_event *ev);
/* ev's text, made once by the first caller and kept with the event (freed
 * with it), or NULL (memory). Any thread. */
const struct px_event_text *px_event_text(px_event *ev);
/* ev's JSON text (px_event_text's json), or NULL. */
const char *px_event_json(px_event *ev);
/* {"event":"EventsLost","lost":N,"after_seq":S}: a subscriber's gap. */
char *px_event_lost_json(uint64_t lost, uint64_t after_seq);

#endif
