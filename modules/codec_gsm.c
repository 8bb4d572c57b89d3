/*
 * codec_gsm: GSM 06.10 full rate (RTP payload type 3) on libgsm, with its
 * translators to and from slin. A frame is 160 samples (20 ms) in 33
 * bytes; a packet may carry several.
 */
#include <stdint.h>
#include <string.h>

#include <gsm.h>

#include <plexus/codec.h>
#include <plexus/log.h>
#include <plexus/module.h>

#define FRAME_SAMPLES 160
#define FRAME_BYTES   33

struct gsm_state {
	gsm g;
};

static int open_state(void *state, const char *fmtp)
{
	struct gsm_state *s = state;

	(void)fmtp;
	s->g = gsm_create();
	return s->g ? 0 : -1;
}

static void close_state(void *state)
{
	struct gsm_state *s = state;

	if (s->g)
		gsm_destroy(s->g);
}

static int decode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct gsm_state *s = state;
	size_t done = 0;

	if (inlen == 0 || inlen % FRAME_BYTES)
		return -1;
	for (size_t off = 0; off < inlen; off += FRAME_BYTES) {
		if (done + FRAME_SAMPLES * 2 > outsize)
			break;
		/* libgsm takes a non-const frame but does not write to it. */
		if (gsm_decode(s->g, (gsm_byte *)(uintptr_t)(in + off),
			       (gsm_signal *)(void *)(out + done)) < 0)
			return -1;
		done += FRAME_SAMPLES * 2;
	}
	return (int)done;
}

static int encode(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct gsm_state *s = state;
	size_t done = 0;

	for (size_t off = 0; off + FRAME_SAMPLES * 2 <= inlen; off += FRAME_SAMPLES * 2) {
		if (done + FRAME_BYTES > outsize)
			break;
		gsm_encode(s->g, (gsm_signal *)(uintptr_t)(in + off), out + done);
		done += FRAME_BYTES;
	}
	return (int)done;
}

static const struct px_format gsm_format = {
	.name = "gsm", .description = "GSM 06.10 full rate", .encoding = "GSM", .sample_rate = 8000,
	.rtp_clock = 8000, .static_pt = 3};
static const struct px_translator to_lin = {
	.name = "gsmtolin", .src = "gsm", .dst = "slin", .state_size = sizeof(struct gsm_state),
	.open = open_state, .close = close_state, .run = decode};
static const struct px_translator from_lin = {
	.name = "lintogsm", .src = "slin", .dst = "gsm", .state_size = sizeof(struct gsm_state),
	.open = open_state, .close = close_state, .run = encode, .frame_samples = FRAME_SAMPLES};

static int load(px_module *self)
{
	px_err err = {""};

	if (px_codec_register(self, &gsm_format, &to_lin, &from_lin, &err) < 0) {
		px_log_error("codec_gsm: %s", err.msg);
		return -1;
	}
	return 0;
}

static int unload(px_module *self)
{
	(void)self;
	px_codec_unregister(&gsm_format, &to_lin, &from_lin);
	return 0;
}

PX_MODULE(.name = "codec_gsm", .description = "GSM full rate codec (libgsm)",
	  .kind = PX_MODULE_CODEC, .load = load, .unload = unload);
