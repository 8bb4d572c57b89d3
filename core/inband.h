/*
 * DTMF as tones in the audio of one RTP session (core/inband.c), for legs
 * whose far end neither sends nor takes RFC 4733 events: a detector that
 * decodes what the session receives and reports each digit's begin and
 * end, and a generator that makes a digit's tone in the session's format,
 * one packet's worth at a time. Made and freed by control threads (they
 * allocate and start codecs); run by the session's media worker.
 */
#ifndef PLEXUS_INBAND_H
#define PLEXUS_INBAND_H

#include <stddef.h>
#include <stdint.h>

#include <plexus/codec.h>
#include <plexus/error.h>
#include <plexus/media.h>

typedef struct px_inband px_inband;

/* For audio of format, both ways; -1 when it has no path to or from slin. */
int px_inband_new(const struct px_format *format, px_inband **out, px_err *err);
void px_inband_free(px_inband *ib);

/* Feed one received audio payload to the detector; fn is told each digit's
 * begin and end (with its duration). -1: the payload did not decode. */
int px_inband_receive(px_inband *ib, const uint8_t *payload, size_t len, px_rtp_dtmf_fn fn,
		      void *arg);
/* Tell the detector that samples (at 8 kHz) of audio were lost. */
void px_inband_lost(px_inband *ib, unsigned samples);

/* Start the tone of digit for duration_ms; -1 for a digit with no tone. */
int px_inband_tone_start(px_inband *ib, char digit, unsigned duration_ms);
/* The next ptime ms of the tone, encoded, into out: its length, 0 when the
 * tone is over, -1 on an encoder error. The last packet is padded with
 * silence. */
int px_inband_tone_read(px_inband *ib, unsigned ptime, uint8_t *out, size_t size);

#endif
