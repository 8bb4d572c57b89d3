/*
 * The core's own formats: linear audio at 8, 16 and 48 kHz (slin, slin16,
 * slin48), and the six resamplers between them on speexdsp's resampler.
 * Codec modules decode to and encode from these, so any two codecs meet
 * through them.
 */
#include <stdlib.h>
#include <string.h>

#include <speex/speex_resampler.h>

#include <plexus/codec.h>

#include "codec_internal.h"

/* speexdsp's quality 0-10: 4 is clean for speech at a modest cost. */
#define RESAMPLER_QUALITY 4

static const struct px_format slin8 = {
	.name = "slin", .description = "16 bit signed linear, 8 kHz", .encoding = NULL,
	.sample_rate = 8000, .rtp_clock = 8000, .static_pt = -1, .linear = true};
static const struct px_format slin16 = {
	.name = "slin16", .description = "16 bit signed linear, 16 kHz", .encoding = NULL,
	.sample_rate = 16000, .rtp_clock = 16000, .static_pt = -1, .linear = true};
static const struct px_format slin48 = {
	.name = "slin48", .description = "16 bit signed linear, 48 kHz", .encoding = NULL,
	.sample_rate = 48000, .rtp_clock = 48000, .static_pt = -1, .linear = true};

struct resampler {
	SpeexResamplerState *rs;
};

#define RESAMPLER(from, to)                                                                        \
	static int open_##from##_##to(void *state, const char *fmtp)                               \
	{                                                                                          \
		struct resampler *r = state;                                                       \
		int e = 0;                                                                         \
		(void)fmtp;                                                                        \
		r->rs = speex_resampler_init(1, from, to, RESAMPLER_QUALITY, &e);                   \
		if (r->rs)                                                                         \
			speex_resampler_skip_zeros(r->rs);                                         \
		return r->rs ? 0 : -1;                                                             \
	}

static void resampler_close(void *state)
{
	struct resampler *r = state;

	if (r->rs)
		speex_resampler_destroy(r->rs);
}

static int resample(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize)
{
	struct resampler *r = state;
	spx_uint32_t n_in = (spx_uint32_t)(inlen / 2), n_out = (spx_uint32_t)(outsize / 2);

	if (speex_resampler_process_int(r->rs, 0, (const spx_int16_t *)(const void *)in, &n_in,
					(spx_int16_t *)(void *)out, &n_out) != RESAMPLER_ERR_SUCCESS)
		return -1;
	return (int)(n_out * 2);
}

RESAMPLER(8000, 16000)
RESAMPLER(8000, 48000)
RESAMPLER(16000, 8000)
RESAMPLER(16000, 48000)
RESAMPLER(48000, 8000)
RESAMPLER(48000, 16000)

#define TRANSLATOR(n, s, d, from, to)                                                              \
	{.name = n, .src = s, .dst = d, .state_size = sizeof(struct resampler),                    \
	 .open = open_##from##_##to, .close = resampler_close, .run = resample}

static const struct px_translator resamplers[] = {
	TRANSLATOR("slintoslin16", "slin", "slin16", 8000, 16000),
	TRANSLATOR("slintoslin48", "slin", "slin48", 8000, 48000),
	TRANSLATOR("slin16toslin", "slin16", "slin", 16000, 8000),
	TRANSLATOR("slin16toslin48", "slin16", "slin48", 16000, 48000),
	TRANSLATOR("slin48toslin", "slin48", "slin", 48000, 8000),
	TRANSLATOR("slin48toslin16", "slin48", "slin16", 48000, 16000),
};

#define N_RESAMPLERS (sizeof(resamplers) / sizeof(resamplers[0]))

int px_codec_init(px_err *err)
{
	if (px_format_register(NULL, &slin8, err) < 0 || px_format_register(NULL, &slin16, err) < 0 ||
	    px_format_register(NULL, &slin48, err) < 0)
		goto fail;
	for (size_t i = 0; i < N_RESAMPLERS; i++)
		if (px_translator_register(NULL, &resamplers[i], err) < 0)
			goto fail;
	return 0;
fail:
	px_codec_shutdown();
	return -1;
}

void px_codec_shutdown(void)
{
	for (size_t i = N_RESAMPLERS; i-- > 0;)
		px_translator_unregister(&resamplers[i]);
	px_format_unregister(&slin48);
	px_format_unregister(&slin16);
	px_format_unregister(&slin8);
}
