/*
 * Formats, translators and translation paths. A format is a kind of audio
 * on the wire or inside the engine (ulaw, opus, slin16 ...): its name, the
 * sample rate of its audio, its RTP clock, payload type (static, or -1 for
 * dynamic) and the fmtp we offer. A translator turns one format into
 * another (a decoder: codec -> linear; an encoder: linear -> codec; a
 * resampler: linear -> linear) and has a cost, measured when it is
 * registered as the time it takes to translate one second of audio. The
 * core keeps the matrix of the cheapest paths between every two formats,
 * several steps allowed (gsm -> slin -> slin16 -> g722), and rebuilds it
 * whenever a codec module registers or unregisters something. Codec
 * modules register their formats and translators; the core registers the
 * linear formats slin (8 kHz), slin16 and slin48 and the resamplers
 * between them. Everything registered is recorded against its module.
 *
 * Linear audio is signed 16-bit samples in host byte order, mono.
 */
#ifndef PLEXUS_CODEC_H
#define PLEXUS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <plexus/error.h>
#include <plexus/module.h>

struct px_format {
	const char *name;        /* "ulaw": how configuration and consoles name it */
	const char *description; /* one line for "core show codecs" */
	const char *encoding;    /* rtpmap encoding name ("PCMU"); NULL: not sent as RTP */
	unsigned sample_rate;    /* of the audio (G.722: 16000) */
	unsigned rtp_clock;      /* of the RTP timestamps and rtpmap (G.722: 8000) */
	unsigned rtp_channels;   /* written in rtpmap when not 0 (Opus: 2) */
	int static_pt;           /* static RTP payload type, -1: dynamic */
	const char *fmtp;        /* what we put in our fmtp line, or NULL */
	bool linear;             /* signed 16-bit samples */
};

struct px_translator {
	const char *name;      /* "ulawtolin" */
	const char *src, *dst; /* format names */
	size_t state_size;     /* bytes of state per open path step (zeroed) */
	/* Prepare state; fmtp is what the far end asked for (encoders), or
	 * NULL. 0, or -1 when the codec library refuses. May be NULL. */
	int (*open)(void *state, const char *fmtp);
	void (*close)(void *state); /* may be NULL */
	/* Translate in[0..inlen) into out (at most outsize bytes): the number
	 * of bytes written, or -1 when the input is not valid for the format
	 * (the packet is dropped and counted). An encoder is given a multiple
	 * of frame_samples samples. */
	int (*run)(void *state, const uint8_t *in, size_t inlen, uint8_t *out, size_t outsize);
	/* Decoders that can: audio for samples lost samples (packet loss
	 * concealment), bytes written or -1. May be NULL. samples are counted
	 * at the source format's sample_rate; a decoder that outputs another
	 * rate (Opus to slin) converts. */
	int (*conceal)(void *state, unsigned samples, uint8_t *out, size_t outsize);
	unsigned frame_samples; /* encoders: input granularity (GSM: 160); 0: any */
	/* Decoders with forward error correction (Opus): rebuild the samples
	 * of a lost frame from the redundancy carried by the frame after it,
	 * next; bytes written or -1. May be NULL. */
	int (*recover)(void *state, const uint8_t *next, size_t nextlen, unsigned samples,
		       uint8_t *out, size_t outsize);
};

int px_format_register(px_module *owner, const struct px_format *f, px_err *err);
void px_format_unregister(const struct px_format *f);
/* By name, case-insensitively; NULL when unknown. The format stays valid
 * while its module is loaded; paths hold a use on the modules they need. */
const struct px_format *px_format_find(const char *name);
/* By rtpmap encoding name and RTP clock ("PCMU", 8000). */
const struct px_format *px_format_by_encoding(const char *encoding, unsigned clock);
/* The static payload type pt's format (0 -> ulaw), or NULL. */
const struct px_format *px_format_by_static_pt(int pt);

/* Register a translator; its cost is measured now, and the matrix rebuilt.
 * Both formats must be registered already. */
int px_translator_register(px_module *owner, const struct px_translator *t, px_err *err);
void px_translator_unregister(const struct px_translator *t);

/* A codec module's whole registration: its format, then its encoder (linear
 * to the format) and its decoder (the format to linear; registered after
 * the encoder because its cost is measured on the encoder's output). On
 * failure the loader releases what was registered; px_codec_unregister
 * undoes it all in reverse order, for the module's unload. */
int px_codec_register(px_module *owner, const struct px_format *f,
		      const struct px_translator *decoder, const struct px_translator *encoder,
		      px_err *err);
void px_codec_unregister(const struct px_format *f, const struct px_translator *decoder,
			 const struct px_translator *encoder);

/* Cost of the path from src to dst in µs per second of audio, and its
 * number of steps; -1 when there is none. The path is the cheapest among
 * those that lower the sample rate the fewest times (quality first: a
 * wideband source is not narrowed to save time), each step counting a
 * little besides its measured cost. */
int px_translator_cost(const struct px_format *src, const struct px_format *dst, int *steps);
/* The names of the path's steps into names[] (at most max): the count, or -1. */
int px_translator_path_names(const struct px_format *src, const struct px_format *dst,
			     const char **names, int max);

/*
 * A translation path in use: the chain of translator states from src to
 * dst, with a buffer of linear audio before the encoder so that the output
 * can be cut into packets of any duration. Made and freed by control
 * threads; run by one thread at a time without allocating.
 */
typedef struct px_trans px_trans;

/* dst_fmtp is the far end's fmtp for the format it receives (encoder
 * settings such as Opus' maxaveragebitrate), or NULL. */
int px_trans_new(const struct px_format *src, const struct px_format *dst, const char *dst_fmtp,
		 px_trans **out, px_err *err);
void px_trans_free(px_trans *t);
/* Feed one frame of src (an RTP payload): 0, or -1 if it was not valid. */
int px_trans_write(px_trans *t, const uint8_t *in, size_t len);
/* Conceal samples (at src's sample rate) of lost audio: by the decoder's
 * concealment when it has one, else silence. */
void px_trans_conceal(px_trans *t, unsigned samples);
/* The same for a lost frame whose successor next is at hand: its forward
 * error correction when the decoder has one, else px_trans_conceal. */
void px_trans_recover(px_trans *t, const uint8_t *next, size_t len, unsigned samples);
/* Take ms of dst audio as one frame when that much is buffered: bytes
 * written to out, 0 when there is not enough yet, -1 on an encoder error. */
int px_trans_read(px_trans *t, unsigned ms, uint8_t *out, size_t size);
/* Linear samples buffered before the encoder (at dst's sample rate). */
unsigned px_trans_buffered(const px_trans *t);

/* Samples of a format's audio per ms, for packetisation (8 for slin). */
static inline unsigned px_format_samples_per_ms(const struct px_format *f)
{
	return f->sample_rate / 1000;
}

#endif
