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

#include "codec_g711.h"

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

static const struct px_format ulaw = {
	.name = "ulaw", .description = "G.711 mu-law", .encoding = "PCMU", .sample_rate = 8000,
	.rtp_clock = 8000, .static_pt = 0};
static const struct px_translator to_lin = {
	.name = "ulawtolin", .src = "ulaw", .dst = "slin", .run = g711_decode};
static const struct px_translator from_lin = {
	.name = "lintoulaw", .src = "slin", .dst = "ulaw", .run = g711_encode};

static int load(px_module *self)
{
	px_err err = {""};

	g711_fill_tables();
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
