/*
 * codec_g722: G.722 at 64 kbit/s (RTP payload type 9) on spandsp, with its
 * translators to and from slin16. Its audio is 16 kHz but, by an old
 * mistake kept for compatibility (RFC 3551, 4.5.2), its RTP clock and
 * rtpmap rate are 8000.
 */
#include <stdint.h>
#include <string.h>

#include <spandsp/telephony.h>
#include <spandsp/g722.h>

#include <plexus/codec.h>
#include <plexus/log.h>
#include <plexus/module.h>

struct g722_state {
	g722_encode_state_t *enc;
	g722_decode_state_t *dec;
};

static int open_decoder(void *state, const char *fmtp)
{
	struct g722_state *s = state;

	(void)fmtp;
	s->dec = g722_decode_init(NULL, 64000, 0);
	return s->dec ? 0 : -1;
}

static int open_encoder(void *state, const char *fmtp)
{
	struct g722_state *s = state;

	(void)fmtp;
	s->enc = g722_encode_init(NULL, 64000, 0);
	return s->enc ? 0 : -1;
}

static void close_state(void *state)
{
	struct g722_state *s = state;

	if (s->enc)
		g722_encode_free(s->enc);
	if (s->dec)
		g722_decode_free(s->dec);
}

/* One byte holds two 16 kHz samples. */
static int decode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct g722_state *s = state;

	if (inlen * 4 > outsize)
		inlen = outsize / 4;
	return 2 * g722_decode(s->dec, (int16_t *)(void *)out, in, (int)inlen);
}

static int encode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct g722_state *s = state;
	size_t n = inlen / 2;

	if (n / 2 > outsize)
		n = outsize * 2;
	return g722_encode(s->enc, out, (const int16_t *)(const void *)in, (int)n);
}

static const struct px_format g722 = {
	.name = "g722", .description = "ITU G.722, 64 kbit/s, 16 kHz audio", .encoding = "G722",
	.sample_rate = 16000, .rtp_clock = 8000, .static_pt = 9};
static const struct px_translator to_lin = {
	.name = "g722tolin16", .src = "g722", .dst = "slin16", .state_size = sizeof(struct g722_state),
	.open = open_decoder, .close = close_state, .run = decode};
static const struct px_translator from_lin = {
	.name = "lin16tog722", .src = "slin16", .dst = "g722", .state_size = sizeof(struct g722_state),
	.open = open_encoder, .close = close_state, .run = encode, .frame_samples = 2};

static int load(px_module *self)
{
	px_err err = {""};

	if (px_codec_register(self, &g722, &to_lin, &from_lin, &err) < 0) {
		px_log_error("codec_g722: %s", err.msg);
		return -1;
	}
	return 0;
}

static int unload(px_module *self)
{
	(void)self;
	px_codec_unregister(&g722, &to_lin, &from_lin);
	return 0;
}

PX_MODULE(.name = "codec_g722", .description = "G.722 codec (spandsp)", .kind = PX_MODULE_CODEC,
	  .load = load, .unload = unload);
