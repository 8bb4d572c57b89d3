/*
 * Inband DTMF (core/inband.h): spandsp's DTMF receiver on the session's
 * audio decoded to 8 kHz linear, and spandsp's DTMF generator encoded to
 * the session's format, each through a translation path of the codec
 * matrix. The receiver's real-time callback gives each digit's start and
 * end; durations are counted in samples fed, so they do not depend on when
 * packets arrived.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <spandsp.h>

#include "inband.h"

/* Audio decoded for the detector is taken in frames of this many ms. */
#define FRAME_MS      10
#define FRAME_SAMPLES (8 * FRAME_MS)
/* Longest packet generated: 120 ms at 8 kHz. */
#define TONE_MAX_SAMPLES 960

struct px_inband {
	px_trans *decoder; /* format -> slin */
	px_trans *encoder; /* slin -> format */
	dtmf_rx_state_t *rx;
	dtmf_tx_state_t *tx;
	/* Detector: the digit in progress and the samples fed so far. */
	uint64_t samples;
	uint64_t digit_start;
	char digit;
	px_rtp_dtmf_fn fn; /* set for the length of one px_inband_receive */
	void *arg;
	/* Generator: samples of tone left to make. */
	unsigned tone_left;
};

static void tone_report(void *user, int code, int level, int delay)
{
	px_inband *ib = user;

	(void)level;
	(void)delay;
	if (!ib->fn)
		return;
	if (code) {
		if (ib->digit) /* spandsp ends one before starting another; be sure */
			ib->fn(ib->arg, ib->digit, false,
			       (unsigned)((ib->samples - ib->digit_start) / 8));
		ib->digit = (char)code;
		ib->digit_start = ib->samples;
		ib->fn(ib->arg, ib->digit, true, 0);
	} else if (ib->digit) {
		ib->fn(ib->arg, ib->digit, false, (unsigned)((ib->samples - ib->digit_start) / 8));
		ib->digit = 0;
	}
}

int px_inband_new(const struct px_format *format, px_inband **out, px_err *err)
{
	const struct px_format *slin = px_format_find("slin");
	px_inband *ib;

	if (!format || !slin)
		return px_err_set(err, "inband DTMF needs a known audio format");
	ib = calloc(1, sizeof(*ib));
	if (!ib)
		return px_err_set(err, "out of memory");
	if (px_trans_new(format, slin, NULL, &ib->decoder, err) < 0 ||
	    px_trans_new(slin, format, NULL, &ib->encoder, err) < 0) {
		px_inband_free(ib);
		return -1;
	}
	ib->rx = dtmf_rx_init(NULL, NULL, NULL);
	ib->tx = dtmf_tx_init(NULL);
	if (!ib->rx || !ib->tx) {
		px_inband_free(ib);
		return px_err_set(err, "inband DTMF: cannot start spandsp");
	}
	dtmf_rx_set_realtime_callback(ib->rx, tone_report, ib);
	*out = ib;
	return 0;
}

void px_inband_free(px_inband *ib)
{
	if (!ib)
		return;
	px_trans_free(ib->decoder);
	px_trans_free(ib->encoder);
	if (ib->rx)
		dtmf_rx_free(ib->rx);
	if (ib->tx)
		dtmf_tx_free(ib->tx);
	free(ib);
}

int px_inband_receive(px_inband *ib, const uint8_t *payload, size_t len, px_rtp_dtmf_fn fn,
		      void *arg)
{
	int16_t frame[FRAME_SAMPLES];
	int n;

	if (px_trans_write(ib->decoder, payload, len) < 0)
		return -1;
	ib->fn = fn;
	ib->arg = arg;
	while ((n = px_trans_read(ib->decoder, FRAME_MS, (uint8_t *)frame, sizeof(frame))) > 0) {
		int samples = n / (int)sizeof(int16_t);

		/* Counted before, so a digit found in this frame starts in it. */
		ib->samples += (uint64_t)samples;
		dtmf_rx(ib->rx, frame, samples);
	}
	ib->fn = NULL;
	return 0;
}

void px_inband_lost(px_inband *ib, unsigned samples)
{
	ib->samples += samples;
	dtmf_rx_fillin(ib->rx, (int)samples);
}

int px_inband_tone_start(px_inband *ib, char digit, unsigned duration_ms)
{
	char d[2] = {digit, '\0'};

	if (!digit || !strchr("0123456789*#ABCD", digit))
		return -1;
	/* The tone alone: the pause between digits is the sender's to keep. */
	dtmf_tx_set_timing(ib->tx, (int)duration_ms, 0);
	/* It answers how many digits did not fit. */
	if (dtmf_tx_put(ib->tx, d, 1) != 0)
		return -1;
	ib->tone_left = 8 * duration_ms;
	return 0;
}

int px_inband_tone_read(px_inband *ib, unsigned ptime, uint8_t *out, size_t size)
{
	int16_t amp[TONE_MAX_SAMPLES];
	unsigned want = 8 * ptime;
	int made;

	if (!ib->tone_left)
		return 0;
	if (want > TONE_MAX_SAMPLES)
		want = TONE_MAX_SAMPLES;
	memset(amp, 0, sizeof(amp));
	made = dtmf_tx(ib->tx, amp, (int)(want < ib->tone_left ? want : ib->tone_left));
	(void)made; /* the rest of the packet stays silent */
	ib->tone_left = want < ib->tone_left ? ib->tone_left - want : 0;
	if (px_trans_write(ib->encoder, (const uint8_t *)amp, want * sizeof(int16_t)) < 0)
		return -1;
	return px_trans_read(ib->encoder, ptime, out, size);
}
