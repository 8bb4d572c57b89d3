/*
 * RFC 4733 telephone-events: the 4-byte payload of an event packet (event
 * code, end bit, volume, duration in RTP clock units), and the receiving
 * side's state that turns a stream of such packets, with their
 * retransmitted starts and the three redundant end packets, into one
 * begin and one end per digit.
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

/* What a receiver makes of the packets of one stream. */
struct px_rfc4733_rx {
	bool active;       /* a digit has begun and not ended */
	uint32_t ts;       /* timestamp of the current or last event */
	bool ended;        /* the event at ts has been reported ended */
	char digit;
};

enum px_rfc4733_what { PX_RFC4733_NOTHING, PX_RFC4733_BEGIN, PX_RFC4733_END };

/* Feed one event packet with its RTP timestamp. Returns BEGIN for the first
 * packet of a new event, END (with the final duration in *duration) for the
 * first end packet of an event, NOTHING for updates and the redundant ends.
 * An event whose start was lost is begun by its first packet seen, even an
 * end packet (which then reports END on its own after BEGIN is skipped:
 * END is returned, the caller sees a digit with its duration). */
enum px_rfc4733_what px_rfc4733_receive(struct px_rfc4733_rx *rx, uint32_t ts,
					const struct px_rfc4733_event *ev, uint16_t *duration);

#endif
