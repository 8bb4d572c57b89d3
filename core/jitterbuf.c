/*
 * The adaptive jitter buffer (plexus/jitterbuf.h). Frames sit in a ring
 * indexed by sequence number. Playout starts once the buffer holds its
 * target number of frames (or its first frame has waited that many turns); the target follows the
 * interarrival jitter (three times the jitter, in frames, plus one), so a calm stream plays with
 * one frame of delay and a jittery one waits longer. A turn whose frame is missing while later ones
 * are held is a loss; a turn with nothing held ends playout until the buffer has filled again, so
 * that silence (hold, discontinuous transmission) is not concealed forever and a target that grew
 * takes effect. Holding more than the target plus two frames for a second drops one frame, which
 * brings the delay back down.
 */
#include <stdlib.h>
#include <string.h>

#include <plexus/jitterbuf.h>

/* Ticks of excess depth before a frame is dropped: a second at 20 ms. */
#define SHRINK_TICKS 50
#define TARGET_MAX   (PX_JB_SLOTS - 4)
/* A jump this far either way is a new stream, not reordering. */
#define RESTART_GAP 100

struct slot {
	bool used;
	uint16_t seq;
	uint16_t len;
	uint32_t ts;
	uint8_t data[PX_JB_FRAME_MAX];
};

struct px_jb {
	unsigned clock;
	unsigned frame_ts;
	bool have_stream; /* a packet came since the last reset */
	bool playing;
	uint16_t next_seq; /* the frame whose turn comes next */
	/* Interarrival jitter (RFC 3550 6.4.1), in clock units times 16. */
	bool have_transit;
	int64_t last_transit;
	uint64_t jitter16;
	/* For learning frame_ts. */
	bool have_last;
	uint16_t last_seq;
	uint32_t last_ts;
	unsigned excess_ticks;
	unsigned fill_turns; /* turns spent filling with something held */
	unsigned depth;
	struct px_jb_stats stats;
	struct slot held; /* the frame handed out last */
	struct slot slots[PX_JB_SLOTS];
};

px_jb *px_jb_new(unsigned clock, unsigned frame_ts)
{
	px_jb *jb = calloc(1, sizeof(*jb));

	if (!jb)
		return NULL;
	jb->clock = clock ? clock : 8000;
	jb->frame_ts = frame_ts ? frame_ts : jb->clock / 50;
	jb->stats.target = 1;
	return jb;
}

void px_jb_free(px_jb *jb)
{
	free(jb);
}

static void clear_slots(px_jb *jb)
{
	for (unsigned i = 0; i < PX_JB_SLOTS; i++)
		jb->slots[i].used = false;
	jb->depth = 0;
}

void px_jb_reset(px_jb *jb)
{
	clear_slots(jb);
	jb->have_stream = false;
	jb->playing = false;
	jb->have_transit = false;
	jb->have_last = false;
	jb->excess_ticks = 0;
	jb->fill_turns = 0;
}

static void update_jitter(px_jb *jb, uint32_t ts, long long arrival_ms)
{
	int64_t transit = arrival_ms * (int64_t)jb->clock / 1000 - (int64_t)ts;

	if (jb->have_transit) {
		int64_t d = transit - jb->last_transit;
		uint64_t ad = (uint64_t)(d < 0 ? -d : d);
		/* Wrap-around of ts, or a new talkspurt far away: not jitter. */
		if (ad < jb->clock) {
			/* J += (|D| - J) / 16, with J kept times 16. */
			int64_t j = (int64_t)jb->jitter16;
			j += (int64_t)ad - ((j + 8) >> 4);
			jb->jitter16 = (uint64_t)(j < 0 ? 0 : j);
		}
	}
	jb->have_transit = true;
	jb->last_transit = transit;

	unsigned jitter_ts = (unsigned)(jb->jitter16 >> 4);
	unsigned target = 1 + (3 * jitter_ts + jb->frame_ts - 1) / jb->frame_ts;
	jb->stats.jitter_ms = (unsigned)((uint64_t)jitter_ts * 1000 / jb->clock);
	jb->stats.target = target > TARGET_MAX ? TARGET_MAX : target;
}

/* The held frame with the lowest sequence number at or after next_seq. */
static struct slot *earliest(px_jb *jb)
{
	struct slot *best = NULL;
	int best_d = 0;

	for (unsigned i = 0; i < PX_JB_SLOTS; i++) {
		struct slot *s = &jb->slots[i];
		int d = (int16_t)(uint16_t)(s->seq - jb->next_seq);
		if (s->used && (!best || d < best_d)) {
			best = s;
			best_d = d;
		}
	}
	return best;
}

int px_jb_put(px_jb *jb, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t len,
	      long long arrival_ms)
{
	struct slot *s;
	int d;

	if (len > PX_JB_FRAME_MAX)
		return -1;
	if (jb->have_stream) {
		d = (int16_t)(uint16_t)(seq - jb->next_seq);
		if (d > RESTART_GAP || d < -RESTART_GAP) {
			px_jb_reset(jb); /* the source restarted */
		} else if (d < 0 && jb->playing) {
			jb->stats.late++;
			return 1;
		}
	}
	if (!jb->have_stream) {
		jb->have_stream = true;
		jb->next_seq = seq;
	}
	d = (int16_t)(uint16_t)(seq - jb->next_seq);
	if (d < 0) { /* before playout began: it starts earlier */
		jb->next_seq = seq;
		d = 0;
	}
	if (d >= PX_JB_SLOTS) {
		/* Beyond the ring: what is held is too old to wait for;
		 * playout resumes at this packet. */
		jb->stats.dropped += jb->depth;
		clear_slots(jb);
		jb->playing = false;
		jb->next_seq = seq;
	}
	s = &jb->slots[seq % PX_JB_SLOTS];
	if (s->used) {
		jb->stats.late++; /* a duplicate */
		return 1;
	}
	if (jb->have_last && (uint16_t)(seq - jb->last_seq) == 1) {
		uint32_t step = ts - jb->last_ts;
		if (step > 0 && step <= jb->clock / 8)
			jb->frame_ts = step;
	}
	jb->have_last = true;
	jb->last_seq = seq;
	jb->last_ts = ts;
	update_jitter(jb, ts, arrival_ms);
	s->used = true;
	s->seq = seq;
	s->ts = ts;
	s->len = (uint16_t)len;
	memcpy(s->data, payload, len);
	jb->depth++;
	jb->stats.put++;
	return 0;
}

enum px_jb_what px_jb_get(px_jb *jb, const uint8_t **payload, size_t *len)
{
	struct slot *s;

	*payload = NULL;
	*len = 0;
	if (!jb->playing) {
		/* Filling: until the target is held, or the first frame held
		 * has waited as long as the target would have taken to come. */
		if (jb->depth == 0) {
			jb->fill_turns = 0;
			return PX_JB_NOTHING;
		}
		if (jb->depth < jb->stats.target && ++jb->fill_turns < jb->stats.target)
			return PX_JB_NOTHING;
		jb->fill_turns = 0;
		jb->playing = true;
		jb->next_seq = earliest(jb)->seq;
	}
	if (jb->depth == 0) {
		jb->playing = false; /* ran dry: fill up again */
		return PX_JB_NOTHING;
	}
	if (jb->depth > jb->stats.target + 1) {
		if (++jb->excess_ticks >= SHRINK_TICKS) {
			s = &jb->slots[jb->next_seq % PX_JB_SLOTS];
			if (s->used && s->seq == jb->next_seq) {
				s->used = false;
				jb->depth--;
			}
			jb->next_seq++;
			jb->stats.dropped++;
			jb->excess_ticks = 0;
		}
	} else {
		jb->excess_ticks = 0;
	}
	s = &jb->slots[jb->next_seq % PX_JB_SLOTS];
	jb->next_seq++;
	if (s->used && s->seq == (uint16_t)(jb->next_seq - 1)) {
		jb->held = *s;
		s->used = false;
		jb->depth--;
		jb->stats.played++;
		*payload = jb->held.data;
		*len = jb->held.len;
		return PX_JB_FRAME;
	}
	jb->stats.lost++;
	s = &jb->slots[jb->next_seq % PX_JB_SLOTS];
	if (s->used && s->seq == jb->next_seq) {
		*payload = s->data;
		*len = s->len;
	}
	return PX_JB_LOST;
}

unsigned px_jb_frame_ts(const px_jb *jb)
{
	return jb->frame_ts;
}

void px_jb_get_stats(const px_jb *jb, struct px_jb_stats *out)
{
	*out = jb->stats;
	out->depth = jb->depth;
}
