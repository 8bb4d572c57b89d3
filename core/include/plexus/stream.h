/*
 * Terminated media: audio that starts or ends in the PBX instead of being
 * relayed between two call legs. A *source* feeds audio into an RTP
 * session (a prompt being played, music on hold, an echo): the session's
 * media worker pulls one packet's worth from it every packet duration,
 * encodes it into the session's negotiated codec when the source's format
 * is not already that codec, and sends it as the session's own stream
 * (SSRC, sequence number, timestamp continuing what the session sent
 * before, marker bit on the first packet). A *sink* receives what the far
 * end sends, decoded into the sink's format (recording, silence detection,
 * echo). While a session has a source or a sink attached, an application
 * owns its media: nothing is relayed to or from a bridge peer.
 *
 * Threads and ownership. Sources and sinks are refcounted; attaching takes
 * a reference that detaching (or the session's end) drops. Attach and
 * detach are control calls, made on a session or signalling thread: they
 * may allocate (a translation path is built before the worker's lock is
 * taken) and when they return the worker has seen them, so after
 * px_rtp_detach_source/sink returns the worker never touches that source
 * or sink again. The media worker never blocks, never allocates and never
 * reads files on their behalf: audio crosses between the worker and the
 * application through bounded single-producer single-consumer rings
 * (lock-free), or through callbacks that run on the worker under its lock
 * and must be as quick and non-blocking as the worker itself.
 *
 * Formats. A source or sink carries audio of one registered format whose
 * samples have a fixed size: a linear format (slin, slin16, slin48; two
 * bytes a sample) or G.711 (ulaw, alaw; one byte a sample). A source in the
 * session's own codec is sent as it is (a .ulaw prompt to a PCMU phone
 * costs no transcoding); any other goes through the codec registry's
 * translation path.
 */
#ifndef PLEXUS_STREAM_H
#define PLEXUS_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <plexus/codec.h>
#include <plexus/error.h>
#include <plexus/media.h>

typedef struct px_source px_source;
typedef struct px_sink px_sink;

/* Bytes one sample of f takes in a source or sink: 2 for linear formats, 1
 * for G.711; 0 for a format a source or sink cannot carry (compressed
 * frames such as Opus or GSM). */
unsigned px_stream_sample_bytes(const struct px_format *f);

/* ---------------------------------------------------------------- sources */

/*
 * A buffer source: a ring of capacity_ms of audio in format f that one
 * thread (the producer, usually the application's session thread) writes
 * and the worker drains. The producer keeps it filled (px_source_space),
 * marks the end (px_source_finish), and learns that the last packet went
 * out with px_source_done. A ring that runs dry before the end makes the
 * worker skip packets (the timestamp still advances, and the next packet is
 * marked), never wait.
 */
int px_source_new_buffer(const struct px_format *f, unsigned capacity_ms, px_source **out,
			 px_err *err);
/* Copy up to len bytes (whole samples) into the ring: the bytes taken,
 * fewer when it is full. Producer thread only. */
size_t px_source_write(px_source *s, const void *data, size_t len);
/* Bytes the ring can take now. */
size_t px_source_space(const px_source *s);
/* Audio in the ring, in ms. */
unsigned px_source_buffered_ms(const px_source *s);
/* No more audio will be written: once the ring is drained, the source has
 * ended. */
void px_source_finish(px_source *s);

/*
 * A callback source, for audio made elsewhere (one music-on-hold stream
 * shared by many listeners). read runs on the media worker, under its lock,
 * once a packet duration: it puts up to samples samples of the source's
 * format into out and returns how many (fewer: the rest is silence; 0: skip
 * this packet), or -1 when the source has ended. It must not block,
 * allocate, or wait for a lock that a thread doing slow work holds.
 * release, if set, is called with ctx when the source's last reference
 * goes, on whichever thread dropped it.
 */
struct px_source_ops {
	int (*read)(void *ctx, uint8_t *out, unsigned samples);
	void (*release)(void *ctx);
};
int px_source_new(const struct px_format *f, const struct px_source_ops *ops, void *ctx,
		  px_source **out, px_err *err);

px_source *px_source_ref(px_source *s);
void px_source_unref(px_source *s);
const struct px_format *px_source_format(const px_source *s);
/* The source has ended and its last packet was sent (or it was detached
 * after its end was reached). */
bool px_source_done(const px_source *s);
/* Packets the worker sent from it, and ticks it had no audio for. */
uint64_t px_source_packets(const px_source *s);
uint64_t px_source_underruns(const px_source *s);

/* Play s into r from the next packet time on, replacing a source already
 * attached. Fails when r has no codec negotiated, s's format cannot carry
 * samples, or there is no translation path to r's codec. */
int px_rtp_attach_source(px_rtp *r, px_source *s, px_err *err);
/* Stop playing r's source (if any). When this returns the worker has let
 * go of it. */
void px_rtp_detach_source(px_rtp *r);

/* ---------------------------------------------------------------- sinks */

/*
 * A buffer sink: a ring of capacity_ms of the audio r receives, decoded
 * into format f (the session's own codec is copied as it comes). The worker
 * writes, one thread reads. A full ring drops what does not fit (counted);
 * lost packets (up to 5 in a row) are concealed so the audio keeps its
 * timing. The reader polls: it is not woken, so it reads at its own pace
 * (every 20 to 100 ms is right for a ring of a second).
 */
int px_sink_new_buffer(const struct px_format *f, unsigned capacity_ms, px_sink **out, px_err *err);
/* Take up to len bytes (whole samples) out of the ring: the bytes read.
 * Reader thread only. */
size_t px_sink_read(px_sink *k, void *buf, size_t len);
unsigned px_sink_buffered_ms(const px_sink *k);

/*
 * A callback sink: write runs on the media worker under its lock with each
 * received packet's audio, samples samples of the sink's format (the same
 * rules as a source's read). release as for sources.
 */
struct px_sink_ops {
	void (*write)(void *ctx, const uint8_t *data, unsigned samples);
	void (*release)(void *ctx);
};
int px_sink_new(const struct px_format *f, const struct px_sink_ops *ops, void *ctx, px_sink **out,
		px_err *err);

px_sink *px_sink_ref(px_sink *k);
void px_sink_unref(px_sink *k);
const struct px_format *px_sink_format(const px_sink *k);
/* Samples received (concealment included), and samples dropped because the
 * ring was full. */
uint64_t px_sink_samples(const px_sink *k);
uint64_t px_sink_dropped(const px_sink *k);

/* Hand what r receives to k instead of any bridge peer, replacing a sink
 * already attached. Fails as px_rtp_attach_source does. */
int px_rtp_attach_sink(px_rtp *r, px_sink *k, px_err *err);
void px_rtp_detach_sink(px_rtp *r);

#endif
