/*
 * RFC 4733 telephone-event payloads (plexus/rfc4733.h): parsing and
 * building the four bytes, the segments of a long event, and the receive
 * state that reports one begin and one end per event whatever the packets'
 * redundancy and however many segments it took.
 */
#include <stdbool.h>
#include <string.h>

#include <plexus/rfc4733.h>

static const char digits[] = "0123456789*#ABCDX";

int px_rfc4733_parse(const uint8_t *payload, size_t len, struct px_rfc4733_event *out)
{
	if (len < 4 || payload[0] > 16)
		return -1;
	out->digit = digits[payload[0]];
	out->end = payload[1] & 0x80;
	out->volume = payload[1] & 0x3f;
	out->duration = (uint16_t)(payload[2] << 8 | payload[3]);
	return 0;
}

int px_rfc4733_build(const struct px_rfc4733_event *ev, uint8_t out[4])
{
	const char *p = ev->digit ? strchr(digits, ev->digit) : NULL;

	if (!p)
		return -1;
	out[0] = (uint8_t)(p - digits);
	out[1] = (uint8_t)((ev->end ? 0x80 : 0) | (ev->volume & 0x3f));
	out[2] = (uint8_t)(ev->duration >> 8);
	out[3] = (uint8_t)ev->duration;
	return 0;
}

void px_rfc4733_segment(uint32_t units, uint32_t *ts_offset, uint16_t *duration)
{
	uint32_t seg = units / PX_RFC4733_SEGMENT, rest = units % PX_RFC4733_SEGMENT;

	/* A segment's last packet says the whole segment, not 0 of the next. */
	if (seg && !rest) {
		seg--;
		rest = PX_RFC4733_SEGMENT;
	}
	*ts_offset = seg * PX_RFC4733_SEGMENT;
	*duration = (uint16_t)rest;
}

bool px_rfc4733_continues(const struct px_rfc4733_rx *rx, uint32_t ts,
			  const struct px_rfc4733_event *ev)
{
	return rx->active && !rx->ended && ev->digit == rx->digit &&
	       ts == rx->ts + PX_RFC4733_SEGMENT;
}

enum px_rfc4733_what px_rfc4733_receive(struct px_rfc4733_rx *rx, uint32_t ts,
					const struct px_rfc4733_event *ev, uint32_t *duration)
{
	bool same = (rx->active || rx->ended) && rx->ts == ts;

	if (same && rx->ended)
		return PX_RFC4733_NOTHING; /* a redundant end, or a late update */
	if (!same && px_rfc4733_continues(rx, ts, ev)) {
		rx->base += PX_RFC4733_SEGMENT;
		rx->ts = ts;
		same = true;
	}
	if (!same) {
		/* A new event; one still active whose end was lost ends here. */
		rx->ts = ts;
		rx->digit = ev->digit;
		rx->ended = false;
		rx->active = true;
		rx->base = 0;
		if (!ev->end)
			return PX_RFC4733_BEGIN;
	}
	if (ev->end) {
		rx->active = false;
		rx->ended = true;
		if (duration)
			*duration = rx->base + ev->duration;
		return PX_RFC4733_END;
	}
	return PX_RFC4733_NOTHING;
}
