/*
 * codec_alaw: G.711 A-law (RTP payload type 8, PCMA) and its translators
 * to and from slin, through tables computed at load from the G.711
 * segment rules.
 */
#include <stdint.h>
#include <string.h>

#include <plexus/codec.h>
#include <plexus/log.h>
#include <plexus/module.h>

#include "codec_g711.h"

/* Upper ends of the eight segments, on the 13-bit magnitude. */
static const int segment_end[8] = {0x1f, 0x3f, 0x7f, 0xff, 0x1ff, 0x3ff, 0x7ff, 0xfff};

static uint8_t encode_one(int s)
{
	int mask, seg, a;

	s >>= 3;
	if (s >= 0) {
		mask = 0xd5;
	} else {
		mask = 0x55;
		s = -s - 1;
	}
	for (seg = 0; seg < 8 && s > segment_end[seg]; seg++)
		;
	if (seg == 8)
		return (uint8_t)(0x7f ^ mask);
	a = seg << 4;
	a |= seg < 2 ? (s >> 1) & 0x0f : (s >> seg) & 0x0f;
	return (uint8_t)(a ^ mask);
}

static int16_t decode_one(uint8_t a)
{
	int t, seg;

	a ^= 0x55;
	t = (a & 0x0f) << 4;
	seg = (a & 0x70) >> 4;
	if (seg == 0)
		t += 8;
	else if (seg == 1)
		t += 0x108;
	else
		t = (t + 0x108) << (seg - 1);
	return (int16_t)(a & 0x80 ? t : -t);
}

static const struct px_format alaw = {
	.name = "alaw", .description = "G.711 A-law", .encoding = "PCMA", .sample_rate = 8000,
	.rtp_clock = 8000, .static_pt = 8};
static const struct px_translator to_lin = {
	.name = "alawtolin", .src = "alaw", .dst = "slin", .run = g711_decode};
static const struct px_translator from_lin = {
	.name = "lintoalaw", .src = "slin", .dst = "alaw", .run = g711_encode};

static int load(px_module *self)
{
	px_err err = {""};

	g711_fill_tables();
	if (px_codec_register(self, &alaw, &to_lin, &from_lin, &err) < 0) {
		px_log_error("codec_alaw: %s", err.msg);
		return -1;
	}
	return 0;
}

static int unload(px_module *self)
{
	(void)self;
	px_codec_unregister(&alaw, &to_lin, &from_lin);
	return 0;
}

PX_MODULE(.name = "codec_alaw", .description = "G.711 A-law codec", .kind = PX_MODULE_CODEC,
	  .load = load, .unload = unload);
