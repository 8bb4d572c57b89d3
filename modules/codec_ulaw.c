/*
 * codec_ulaw: G.711 mu-law (RTP payload type 0, PCMU) and its translators
 * to and from slin. Encoding and decoding go through tables computed at
 * load from the G.711 segment rules, so each sample costs one lookup.
 */
#include <stdint.h>
#include <string.h>

#include <plexus/codec.h>
#include <plexus/log.h>
#include <plexus/module.h>

#define BIAS 0x84
#define CLIP 32635

static int16_t decode_table[256];
static uint8_t encode_table[65536]; /* indexed by the sample as uint16_t */

static uint8_t encode_one(int s)
{
	int sign = 0, exponent = 7, mantissa;

	if (s < 0) {
		sign = 0x80;
		s = -s;
	}
	if (s > CLIP)
		s = CLIP;
	s += BIAS;
	for (int mask = 0x4000; !(s & mask) && exponent > 0; mask >>= 1)
		exponent--;
	mantissa = (s >> (exponent + 3)) & 0x0f;
	return (uint8_t)~(sign | exponent << 4 | mantissa);
}

static int16_t decode_one(uint8_t u)
{
	int s;

	u = (uint8_t)~u;
	s = (((u & 0x0f) << 3) + BIAS) << ((u >> 4) & 7);
	s -= BIAS;
	return (int16_t)(u & 0x80 ? -s : s);
}

static int decode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	int16_t *pcm = (int16_t *)(void *)out;

	(void)state;
	if (inlen * 2 > outsize)
		inlen = outsize / 2;
	for (size_t i = 0; i < inlen; i++)
		pcm[i] = decode_table[in[i]];
	return (int)(inlen * 2);
}

static int encode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	const int16_t *pcm = (const int16_t *)(const void *)in;
	size_t n = inlen / 2;

	(void)state;
	if (n > outsize)
		n = outsize;
	for (size_t i = 0; i < n; i++)
		out[i] = encode_table[(uint16_t)pcm[i]];
	return (int)n;
}

static const struct px_format ulaw = {
	.name = "ulaw", .description = "G.711 mu-law", .encoding = "PCMU", .sample_rate = 8000,
	.rtp_clock = 8000, .static_pt = 0};
static const struct px_translator to_lin = {
	.name = "ulawtolin", .src = "ulaw", .dst = "slin", .run = decode};
static const struct px_translator from_lin = {
	.name = "lintoulaw", .src = "slin", .dst = "ulaw", .run = encode};

static int load(px_module *self)
{
	px_err err = {""};

	for (int i = 0; i < 256; i++)
		decode_table[i] = decode_one((uint8_t)i);
	for (int i = 0; i < 65536; i++)
		encode_table[i] = encode_one((int16_t)(uint16_t)i);
	if (px_codec_register(self, &ulaw, &to_lin, &from_lin, &err) < 0) {
		px_log_error("codec_ulaw: %s", err.msg);
		return -1; /* the loader releases what was registered */
	}
	return 0;
}

static int unload(px_module *self)
{
	(void)self;
	px_codec_unregister(&ulaw, &to_lin, &from_lin);
	return 0;
}

PX_MODULE(.name = "codec_ulaw", .description = "G.711 mu-law codec", .kind = PX_MODULE_CODEC,
	  .load = load, .unload = unload);
