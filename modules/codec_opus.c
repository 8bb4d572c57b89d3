/*
 * codec_opus: Opus (dynamic payload type, opus/48000/2) on libopus, mono.
 * libopus encodes and decodes natively at 8, 16 and 48 kHz, so the module
 * registers a decoder and an encoder for each of slin, slin16 and slin48:
 * a PCMU or G.722 leg meets an Opus leg without a resampler and without
 * the 48 kHz work (the RTP clock stays 48 kHz whatever the rate, RFC 7587).
 * The far end's fmtp sets the encoder: a maxaveragebitrate caps the
 * bitrate, useinbandfec=1 turns on in-band forward error correction. The
 * decoder conceals lost packets with libopus' own loss concealment, or
 * from the in-band FEC of the packet after the lost one when the jitter
 * buffer holds it.
 *
 * Encoder settings by source rate (the audio can hold no more than its
 * rate gives, so the encoder is told so and spends nothing on the rest):
 *   8 kHz  narrowband (SILK NB), at most 20 kbit/s: NB speech is
 *          transparent well below that;
 *   16 kHz wideband (SILK WB), at most 28 kbit/s;
 *   48 kHz fullband, at most 32 kbit/s (the far end's music on hold,
 *          an Opus-to-Opus path).
 * Always the VOIP application with the voice signal hint, and complexity
 * 5: half the cost of 10 for a loss of quality a telephone call does not
 * hear (measured under callgrind: 8 kHz encodes at ~30 M instructions per
 * second of audio, 48 kHz at ~70 M).
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

/* The format's rate: of the RTP clock, and of what conceal/recover count. */
#define FORMAT_RATE 48000
#define COMPLEXITY  5

struct opus_state {
	OpusEncoder *enc;
	OpusDecoder *dec;
	unsigned rate; /* of the linear side */
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

/* The encoder's ceiling and bandwidth for audio at rate. */
static void rate_settings(unsigned rate, opus_int32 *bitrate, opus_int32 *bandwidth)
{
	switch (rate) {
	case 8000:
		*bitrate = 20000;
		*bandwidth = OPUS_BANDWIDTH_NARROWBAND;
		break;
	case 16000:
		*bitrate = 28000;
		*bandwidth = OPUS_BANDWIDTH_WIDEBAND;
		break;
	default:
		*bitrate = 32000;
		*bandwidth = OPUS_BANDWIDTH_FULLBAND;
	}
}

static int open_encoder(struct opus_state *s, unsigned rate, const char *fmtp)
{
	long asked = fmtp ? fmtp_value(fmtp, "maxaveragebitrate") : -1;
	opus_int32 bitrate, bandwidth;
	int e;

	s->rate = rate;
	s->enc = opus_encoder_create((opus_int32)rate, 1, OPUS_APPLICATION_VOIP, &e);
	if (!s->enc)
		return -1;
	rate_settings(rate, &bitrate, &bandwidth);
	/* The far end's cap, when it is a sane one below ours. */
	if (asked >= 6000 && asked <= 510000 && asked < bitrate)
		bitrate = (opus_int32)asked;
	opus_encoder_ctl(s->enc, OPUS_SET_BITRATE(bitrate));
	opus_encoder_ctl(s->enc, OPUS_SET_MAX_BANDWIDTH(bandwidth));
	opus_encoder_ctl(s->enc, OPUS_SET_SIGNAL(OPUS_SIGNAL_VOICE));
	opus_encoder_ctl(s->enc, OPUS_SET_COMPLEXITY(COMPLEXITY));
	if (fmtp && fmtp_value(fmtp, "useinbandfec") == 1) {
		opus_encoder_ctl(s->enc, OPUS_SET_INBAND_FEC(1));
		opus_encoder_ctl(s->enc, OPUS_SET_PACKET_LOSS_PERC(5));
	}
	return 0;
}

static int open_decoder(struct opus_state *s, unsigned rate)
{
	int e;

	s->rate = rate;
	s->dec = opus_decoder_create((opus_int32)rate, 1, &e);
	return s->dec ? 0 : -1;
}

#define OPENERS(rate)                                                                              \
	static int open_enc_##rate(void *state, const char *fmtp)                                  \
	{                                                                                          \
		return open_encoder(state, rate, fmtp);                                            \
	}                                                                                          \
	static int open_dec_##rate(void *state, const char *fmtp)                                  \
	{                                                                                          \
		(void)fmtp;                                                                        \
		return open_decoder(state, rate);                                                  \
	}

OPENERS(8000)
OPENERS(16000)
OPENERS(48000)

static void close_state(void *state)
{
	struct opus_state *s = state;

	if (s->enc)
		opus_encoder_destroy(s->enc);
	if (s->dec)
		opus_decoder_destroy(s->dec);
}

/* The longest Opus packet decodes to 120 ms. */
static int max_samples(const struct opus_state *s, size_t outsize)
{
	int max = (int)(outsize / 2), longest = (int)(s->rate / 1000 * 120);

	return max < longest ? max : longest;
}

/* samples counted at the format's 48 kHz, as the core gives them, in the
 * decoder's own rate and whole 2.5 ms steps (what Opus conceals in); 0
 * when that leaves nothing. */
static int decoder_samples(const struct opus_state *s, unsigned samples, size_t outsize)
{
	unsigned n = (unsigned)((unsigned long long)samples * s->rate / FORMAT_RATE);
	unsigned max = (unsigned)max_samples(s, outsize);

	if (n > max)
		n = max;
	return (int)(n - n % (s->rate / 400));
}

static int decode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct opus_state *s = state;
	int n;

	if (inlen == 0 || inlen > 1500)
		return -1;
	n = opus_decode(s->dec, in, (opus_int32)inlen, (opus_int16 *)(void *)out,
			max_samples(s, outsize), 0);
	return n < 0 ? -1 : n * 2;
}

static int conceal(void *state, unsigned samples, uint8_t *out, size_t outsize)
{
	struct opus_state *s = state;
	int want = decoder_samples(s, samples, outsize), n;

	if (!want)
		return 0;
	n = opus_decode(s->dec, NULL, 0, (opus_int16 *)(void *)out, want, 0);
	return n < 0 ? -1 : n * 2;
}

/* In-band FEC: the frame after a lost one carries a coarser copy of it. */
static int recover(void *state, const uint8_t *next, size_t nextlen, unsigned samples, uint8_t *out,
		   size_t outsize)
{
	struct opus_state *s = state;
	int want = decoder_samples(s, samples, outsize), n;

	if (nextlen == 0 || nextlen > 1500)
		return -1;
	if (!want)
		return 0;
	n = opus_decode(s->dec, next, (opus_int32)nextlen, (opus_int16 *)(void *)out, want, 1);
	return n < 0 ? -1 : n * 2;
}

static int encode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct opus_state *s = state;
	int n = opus_encode(s->enc, (const opus_int16 *)(const void *)in, (int)(inlen / 2), out,
			    (opus_int32)outsize);

	return n < 0 ? -1 : n;
}

static const struct px_format opus = {.name = "opus",
				      .description = "Opus (RFC 6716), mono",
				      .encoding = "opus",
				      .sample_rate = FORMAT_RATE,
				      .rtp_clock = FORMAT_RATE,
				      .rtp_channels = 2,
				      .static_pt = -1,
				      .fmtp = "useinbandfec=1;maxaveragebitrate=32000;stereo=0"};

#define DECODER(n, lin, rate)                                                                      \
	{                                                                                          \
		.name = n, .src = "opus", .dst = lin, .state_size = sizeof(struct opus_state),     \
		.open = open_dec_##rate, .close = close_state, .run = decode, .conceal = conceal,  \
		.recover = recover                                                                 \
	}
/* An encoder takes whole 2.5 ms steps of its rate (the shortest Opus frame). */
#define ENCODER(n, lin, rate)                                                                      \
	{                                                                                          \
		.name = n, .src = lin, .dst = "opus", .state_size = sizeof(struct opus_state),     \
		.open = open_enc_##rate, .close = close_state, .run = encode,                      \
		.frame_samples = rate / 400                                                        \
	}

/* Encoders first: the core measures a decoder on what an encoder of its
 * format makes, and the 48 kHz one first so that every decoder is timed on
 * fullband packets, what an Opus phone sends. */
static const struct px_translator translators[] = {
	ENCODER("lin48toopus", "slin48", 48000), ENCODER("lin16toopus", "slin16", 16000),
	ENCODER("lintoopus", "slin", 8000),      DECODER("opustolin48", "slin48", 48000),
	DECODER("opustolin16", "slin16", 16000), DECODER("opustolin", "slin", 8000),
};
#define NTRANSLATORS (sizeof(translators) / sizeof(translators[0]))

static int unload(px_module *self)
{
	(void)self;
	for (size_t i = NTRANSLATORS; i-- > 0;)
		px_translator_unregister(&translators[i]);
	px_format_unregister(&opus);
	return 0;
}

static int load(px_module *self)
{
	px_err err = {""};

	/* On failure the loader releases what was registered. */
	if (px_format_register(self, &opus, &err) < 0)
		goto fail;
	for (size_t i = 0; i < NTRANSLATORS; i++)
		if (px_translator_register(self, &translators[i], &err) < 0)
			goto fail;
	return 0;
fail:
	px_log_error("codec_opus: %s", err.msg);
	return -1;
}

PX_MODULE(.name = "codec_opus", .description = "Opus codec (libopus)", .kind = PX_MODULE_CODEC,
	  .load = load, .unload = unload);
