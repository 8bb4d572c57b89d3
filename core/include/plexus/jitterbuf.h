/*
 * An adaptive jitter buffer for one received RTP stream (core/jitterbuf.c):
 * packets go in as they arrive, in any order; frames come out in sequence,
 * one per call of px_jb_get, which the owner makes once per frame duration
 * on its own clock. It holds as many frames as the measured jitter needs
 * (RFC 3550 interarrival jitter), refills after running dry, drops a frame
 * now and then when it holds more than it needs, and says when a frame is
 * lost so that the decoder conceals it (handing over the frame after it,
 * for codecs with forward error correction). It allocates only in px_jb_new
 * and takes no lock: one thread at a time.
 */
#ifndef PLEXUS_JITTERBUF_H
#define PLEXUS_JITTERBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct px_jb px_jb;

/* Frames held at most, and the largest payload taken. */
#define PX_JB_SLOTS     16
#define PX_JB_FRAME_MAX 1024

struct px_jb_stats {
	uint64_t put;       /* packets taken */
	uint64_t played;    /* frames handed out */
	uint64_t lost;      /* frames missing when their turn came (concealed) */
	uint64_t late;      /* packets that came after their turn, or twice */
	uint64_t dropped;   /* frames dropped to shrink the delay, or on overflow */
	unsigned jitter_ms; /* interarrival jitter now */
	unsigned target;    /* frames the buffer aims to hold */
	unsigned depth;     /* frames it holds */
};

/* clock: the stream's RTP clock rate; frame_ts: the timestamp step of one
 * frame until the stream shows its own (ptime * clock / 1000). */
px_jb *px_jb_new(unsigned clock, unsigned frame_ts);
void px_jb_free(px_jb *jb);
/* Forget everything: the next packet starts a new stream. */
void px_jb_reset(px_jb *jb);

/* Take a packet's payload, arrived at arrival_ms (monotonic). 0: kept;
 * 1: not kept (late, duplicate); -1: larger than PX_JB_FRAME_MAX. */
int px_jb_put(px_jb *jb, uint16_t seq, uint32_t ts, const uint8_t *payload, size_t len,
	      long long arrival_ms);

enum px_jb_what {
	PX_JB_NOTHING, /* not playing (filling, or ran dry): no audio this turn */
	PX_JB_FRAME,   /* *payload, *len: the frame to decode */
	PX_JB_LOST,    /* conceal one frame; *payload is the next frame if held (FEC), else NULL */
};
/* This turn's frame. The payload stays valid until the next call. */
enum px_jb_what px_jb_get(px_jb *jb, const uint8_t **payload, size_t *len);

/* Timestamp step of one frame, as learned from the stream. */
unsigned px_jb_frame_ts(const px_jb *jb);
void px_jb_get_stats(const px_jb *jb, struct px_jb_stats *out);

#endif
