/*
 * RFC 4733 telephone-events: the 4-byte payload of an event packet (event
 * code, end bit, volume, duration in RTP clock units), and the receiving
 * side's state that turns a stream of such packets, with their
 * retransmitted starts and the three redundant end packets, into one
 * begin and one end per digit.
 *
 * The event clock is the audio's (telephone-event/48000 beside Opus), so
 * the 16-bit duration holds only 1.36 s at 48 kHz: a longer event goes on
 * in segments (RFC 4733 2.5.1.3), each with the previous segment's
 * timestamp plus PX_RFC4733_SEGMENT and its duration counted from there.
 */
#ifndef PLEXUS_RFC4733_H
#define PLEXUS_RFC4733_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct px_rfc4733_event {
	char digit;        /* '0'-'9', '*', '#', 'A'-'D', or 'X' for flash */
	bool end;          /* the E bit */
	uint8_t volume;    /* 0-63, -dBm0 */
	uint16_t duration; /* RTP clock units since the event's timestamp */
};

/* Parse an event payload; -1 when it is shorter than 4 bytes or its code is
 * not a DTMF digit (0-16). */
int px_rfc4733_parse(const uint8_t *payload, size_t len, struct px_rfc4733_event *out);
/* Write ev as a 4-byte payload; -1 for a digit that has no code. */
int px_rfc4733_build(const struct px_rfc4733_event *ev, uint8_t out[4]);

/* The most units one segment of an event covers. */
#define PX_RFC4733_SEGMENT 0xFFFFu

/* Where the packet sent units after its event's start belongs: its
 * segment's timestamp as an offset from the event's, and the duration
 * within that segment. */
void px_rfc4733_segment(uint32_t units, uint32_t *ts_offset, uint16_t *duration);

/* What a receiver makes of the packets of one stream. */
struct px_rfc4733_rx {
	bool active; /* a digit has begun and not ended */
	uint32_t ts; /* timestamp of the current or last event (its current segment) */
	bool ended;  /* the event at ts has been reported ended */
	char digit;
	uint32_t base; /* units of the event's segments before the one at ts */
};

/* Whether a packet at ts is the next segment of the event rx has going. */
bool px_rfc4733_continues(const struct px_rfc4733_rx *rx, uint32_t ts,
			  const struct px_rfc4733_event *ev);

enum px_rfc4733_what { PX_RFC4733_NOTHING, PX_RFC4733_BEGIN, PX_RFC4733_END };

/* Feed one event packet with its RTP timestamp. Returns BEGIN for the first
 * packet of a new event, END (with the final duration in *duration, all
 * segments counted) for the first end packet of an event, NOTHING for
 * updates, the start of a further segment and the redundant ends.
 * An event whose start was lost is begun by its first packet seen, even an
 * end packet (which then reports END on its own after BEGIN is skipped:
 * END is returned, the caller sees a digit with its duration). */
enum px_rfc4733_what px_rfc4733_receive(struct px_rfc4733_rx *rx, uint32_t ts,
					const struct px_rfc4733_event *ev, uint32_t *duration);

#endif
