/*
 * codec_opus: Opus (dynamic payload type, opus/48000/2) on libopus, mono,
 * with its translators to and from slin48; other rates reach it through
 * the core's resamplers. The far end's fmtp sets the encoder: a
 * maxaveragebitrate caps the bitrate, useinbandfec=1 turns on in-band
 * forward error correction. The decoder conceals lost packets with
 * libopus' own loss concealment, or from the in-band FEC of the packet
 * after the lost one when the jitter buffer holds it.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <opus/opus.h>

#include <plexus/codec.h>
#include <plexus/log.h>
#include <plexus/module.h>

#define RATE            48000
#define DEFAULT_BITRATE 32000
/* The longest Opus packet decodes to 120 ms. */
#define MAX_FRAME (RATE / 1000 * 120)

struct opus_state {
	OpusEncoder *enc;
	OpusDecoder *dec;
};

/* The value of key in an fmtp line ("a=1;b=2" or "a=1; b=2"), or -1. */
static long fmtp_value(const char *fmtp, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = fmtp; p && *p;) {
		while (*p == ' ' || *p == ';')
			p++;
		if (!strncasecmp(p, key, klen) && p[klen] == '=')
			return strtol(p + klen + 1, NULL, 10);
		p = strchr(p, ';');
	}
	return -1;
}

static int open_encoder(void *state, const char *fmtp)
{
	struct opus_state *s = state;
	long bitrate = fmtp ? fmtp_value(fmtp, "maxaveragebitrate") : -1;
	int e;

	s->enc = opus_encoder_create(RATE, 1, OPUS_APPLICATION_VOIP, &e);
	if (!s->enc)
		return -1;
	if (bitrate < 6000 || bitrate > 510000)
		bitrate = DEFAULT_BITRATE;
	opus_encoder_ctl(s->enc, OPUS_SET_BITRATE((opus_int32)bitrate));
	/* Complexity 5 halves the encoder's cost for a loss of quality that
	 * a telephone call does not hear. */
	opus_encoder_ctl(s->enc, OPUS_SET_COMPLEXITY(5));
	if (fmtp && fmtp_value(fmtp, "useinbandfec") == 1) {
		opus_encoder_ctl(s->enc, OPUS_SET_INBAND_FEC(1));
		opus_encoder_ctl(s->enc, OPUS_SET_PACKET_LOSS_PERC(5));
	}
	return 0;
}

static int open_decoder(void *state, const char *fmtp)
{
	struct opus_state *s = state;
	int e;

	(void)fmtp;
	s->dec = opus_decoder_create(RATE, 1, &e);
	return s->dec ? 0 : -1;
}

static void close_state(void *state)
{
	struct opus_state *s = state;

	if (s->enc)
		opus_encoder_destroy(s->enc);
	if (s->dec)
		opus_decoder_destroy(s->dec);
}

static int decode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct opus_state *s = state;
	int max = (int)(outsize / 2), n;

	if (inlen == 0 || inlen > 1500)
		return -1;
	if (max > MAX_FRAME)
		max = MAX_FRAME;
	n = opus_decode(s->dec, in, (opus_int32)inlen, (opus_int16 *)(void *)out, max, 0);
	return n < 0 ? -1 : n * 2;
}

static int conceal(void *state, unsigned samples, uint8_t *out, size_t outsize)
{
	struct opus_state *s = state;
	int n;

	if (samples > outsize / 2)
		samples = (unsigned)(outsize / 2);
	/* Opus conceals in multiples of 2.5 ms. */
	samples -= samples % (RATE / 400);
	if (!samples)
		return 0;
	n = opus_decode(s->dec, NULL, 0, (opus_int16 *)(void *)out, (int)samples, 0);
	return n < 0 ? -1 : n * 2;
}

/* In-band FEC: the frame after a lost one carries a coarser copy of it. */
static int recover(void *state, const uint8_t *next, size_t nextlen, unsigned samples, uint8_t *out,
		   size_t outsize)
{
	struct opus_state *s = state;
	int n;

	if (nextlen == 0 || nextlen > 1500)
		return -1;
	if (samples > outsize / 2)
		samples = (unsigned)(outsize / 2);
	samples -= samples % (RATE / 400);
	if (!samples)
		return 0;
	n = opus_decode(s->dec, next, (opus_int32)nextlen, (opus_int16 *)(void *)out, (int)samples,
			1);
	return n < 0 ? -1 : n * 2;
}

static int encode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct opus_state *s = state;
	int n = opus_encode(s->enc, (const opus_int16 *)(const void *)in, (int)(inlen / 2), out,
			    (opus_int32)outsize);

	return n < 0 ? -1 : n;
}

static const struct px_format opus = {
	.name = "opus", .description = "Opus (RFC 6716), mono", .encoding = "opus", .sample_rate = RATE,
	.rtp_clock = RATE, .rtp_channels = 2, .static_pt = -1,
	.fmtp = "useinbandfec=1;maxaveragebitrate=32000;stereo=0"};
static const struct px_translator to_lin = {
	.name = "opustolin48", .src = "opus", .dst = "slin48", .state_size = sizeof(struct opus_state),
	.open = open_decoder, .close = close_state, .run = decode, .conceal = conceal,
	.recover = recover};
static const struct px_translator from_lin = {
	.name = "lin48toopus", .src = "slin48", .dst = "opus", .state_size = sizeof(struct opus_state),
	.open = open_encoder, .close = close_state, .run = encode, .frame_samples = RATE / 400};

static int load(px_module *self)
{
	px_err err = {""};

	if (px_codec_register(self, &opus, &to_lin, &from_lin, &err) < 0) {
		px_log_error("codec_opus: %s", err.msg);
		return -1;
	}
	return 0;
}

static int unload(px_module *self)
{
	(void)self;
	px_codec_unregister(&opus, &to_lin, &from_lin);
	return 0;
}

PX_MODULE(.name = "codec_opus", .description = "Opus codec (libopus)", .kind = PX_MODULE_CODEC,
	  .load = load, .unload = unload);
