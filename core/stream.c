/*
 * Terminated media (plexus/stream.h): sources and sinks, the lock-free
 * rings that carry their audio between an application's thread and a media
 * worker, and what a worker does for a session that has one: on each tick
 * of its packet clock it takes a packet's worth from the source, encodes it
 * into the session's codec when the source is not already in it, and sends
 * it as the session's own stream; for each audio packet received it
 * decodes into the sink's format, conceals short losses, and hands the
 * audio to the sink. media.c calls in with the worker lock held
 * (media_internal.h); that lock also guards each session's struct px_term.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <plexus/codec.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/stream.h>

#include "media_internal.h"
#include "thread_internal.h"

#define RTP_HEADER 12
/* Packet durations outside this are clamped: the scratch is sized for
 * 120 ms at 48 kHz. */
#define PTIME_MIN     10
#define PTIME_MAX     120
#define SCRATCH_BYTES (PTIME_MAX * 48 * 2)
/* Packets sent in one tick at most, to catch up after the worker was held
 * up; further behind than CATCHUP_NS the clock starts again from now. */
#define CATCHUP_PACKETS 4
#define CATCHUP_NS      200000000LL
/* Lost packets concealed in a row at most; a longer gap is not filled. */
#define MAX_CONCEAL 5
/* Capacity of a ring, at most (a minute of 48 kHz linear audio). */
#define RING_MS_MAX 60000

/* A single-producer single-consumer byte ring. head and tail count bytes
 * written and read since the start; size is a power of two. */
struct ring {
	uint8_t *buf;
	size_t size;
	atomic_size_t head;
	atomic_size_t tail;
};

struct px_source {
	atomic_int refs;
	const struct px_format *fmt;
	unsigned bps; /* bytes a sample */
	struct ring ring;
	bool buffered; /* a buffer source; else ops */
	struct px_source_ops ops;
	void *ctx;
	atomic_bool finished; /* the producer wrote its last */
	atomic_bool done;     /* the worker sent the last packet */
	atomic_uint_least64_t packets, underruns;
};

struct px_sink {
	atomic_int refs;
	const struct px_format *fmt;
	unsigned bps;
	struct ring ring;
	bool buffered;
	struct px_sink_ops ops;
	void *ctx;
	atomic_uint_least64_t samples, dropped;
};

/* A session's terminated media; guarded by its worker's lock. */
struct px_term {
	px_source *src;
	px_trans *src_trans;               /* source format -> codec; NULL: as it is */
	const struct px_format *src_codec; /* the codec src_trans was made for */
	long long next_due;                /* monotonic ns of the next packet */
	bool mark;                         /* the next packet starts a talkspurt */

	px_sink *sink;
	px_trans *sink_trans; /* codec -> sink format; NULL: as it is */
	const struct px_format *sink_codec;
	bool rx_started;
	uint16_t rx_seq;
	uint32_t rx_ts;
	unsigned rx_samples; /* in one packet, at the codec's sample rate */
};

/* The worker's scratch: one packet at a time, never kept between calls;
 * the thread's own, allocated at its first use (thread_internal.h). */
struct scratch {
	uint8_t pcm[SCRATCH_BYTES];
	uint8_t pkt[RTP_HEADER + SCRATCH_BYTES];
};

static struct scratch *thread_scratch(void)
{
	return px_thread_scratch(PX_SCRATCH_STREAM, sizeof(struct scratch));
}

/* ---------------------------------------------------------------- formats */

unsigned px_stream_sample_bytes(const struct px_format *f)
{
	if (!f)
		return 0;
	if (f->linear)
		return 2;
	if (f->encoding && (!strcasecmp(f->encoding, "PCMU") || !strcasecmp(f->encoding, "PCMA")))
		return 1;
	return 0;
}

/* The byte a format's silence is made of (G.711's zero level). */
static uint8_t silence_byte(const struct px_format *f)
{
	if (f->linear || !f->encoding)
		return 0;
	return !strcasecmp(f->encoding, "PCMU") ? 0xff : 0xd5;
}

static long long monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void counter_add(atomic_uint_least64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* ---------------------------------------------------------------- rings */

static int ring_init(struct ring *r, const struct px_format *f, unsigned bps, unsigned ms,
		     px_err *err)
{
	size_t want, size = 64;

	if (ms == 0 || ms > RING_MS_MAX)
		return px_err_set(err, "a ring of %u ms: between 1 and %d ms", ms, RING_MS_MAX);
	want = (size_t)f->sample_rate / 1000 * ms * bps;
	while (size < want)
		size *= 2;
	r->buf = malloc(size);
	if (!r->buf)
		return px_err_set(err, "out of memory");
	r->size = size;
	atomic_init(&r->head, 0);
	atomic_init(&r->tail, 0);
	return 0;
}

static size_t ring_used(const struct ring *r)
{
	return atomic_load_explicit(&r->head, memory_order_acquire) -
	       atomic_load_explicit(&r->tail, memory_order_acquire);
}

/* Producer: copy up to len bytes in (whole units of unit bytes). */
static size_t ring_put(struct ring *r, const uint8_t *data, size_t len, unsigned unit)
{
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	size_t space = r->size - (head - tail);
	size_t n = len < space ? len : space;
	size_t at = head & (r->size - 1), first;

	n -= n % unit;
	first = r->size - at < n ? r->size - at : n;
	memcpy(r->buf + at, data, first);
	memcpy(r->buf, data + first, n - first);
	atomic_store_explicit(&r->head, head + n, memory_order_release);
	return n;
}

/* Consumer: copy up to len bytes out. */
static size_t ring_get(struct ring *r, uint8_t *out, size_t len, unsigned unit)
{
	size_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
	size_t head = atomic_load_explicit(&r->head, memory_order_acquire);
	size_t avail = head - tail;
	size_t n = len < avail ? len : avail;
	size_t at = tail & (r->size - 1), first;

	n -= n % unit;
	first = r->size - at < n ? r->size - at : n;
	memcpy(out, r->buf + at, first);
	memcpy(out + first, r->buf, n - first);
	atomic_store_explicit(&r->tail, tail + n, memory_order_release);
	return n;
}

static unsigned bytes_to_ms(const struct px_format *f, unsigned bps, size_t bytes)
{
	return (unsigned)(bytes / bps * 1000 / f->sample_rate);
}

/* ---------------------------------------------------------------- sources */

static int source_alloc(const struct px_format *f, px_source **out, px_err *err)
{
	unsigned bps = px_stream_sample_bytes(f);
	px_source *s;

	if (!bps)
		return px_err_set(err,
				  "format %s cannot be played as samples (linear or G.711 only)",
				  f ? f->name : "(none)");
	s = calloc(1, sizeof(*s));
	if (!s)
		return px_err_set(err, "out of memory");
	atomic_init(&s->refs, 1);
	s->fmt = f;
	s->bps = bps;
	*out = s;
	return 0;
}

int px_source_new_buffer(const struct px_format *f, unsigned capacity_ms, px_source **out,
			 px_err *err)
{
	px_source *s;

	if (source_alloc(f, &s, err) < 0)
		return -1;
	if (ring_init(&s->ring, f, s->bps, capacity_ms, err) < 0) {
		free(s);
		return -1;
	}
	s->buffered = true;
	*out = s;
	return 0;
}

int px_source_new(const struct px_format *f, const struct px_source_ops *ops, void *ctx,
		  px_source **out, px_err *err)
{
	px_source *s;

	if (!ops || !ops->read)
		return px_err_set(err, "a callback source needs a read function");
	if (source_alloc(f, &s, err) < 0)
		return -1;
	s->ops = *ops;
	s->ctx = ctx;
	*out = s;
	return 0;
}

px_source *px_source_ref(px_source *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

void px_source_unref(px_source *s)
{
	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->ops.release)
		s->ops.release(s->ctx);
	free(s->ring.buf);
	free(s);
}

size_t px_source_write(px_source *s, const void *data, size_t len)
{
	if (!s->buffered)
		return 0;
	return ring_put(&s->ring, data, len, s->bps);
}

size_t px_source_space(const px_source *s)
{
	if (!s->buffered)
		return 0;
	size_t used = ring_used(&s->ring);
	return (s->ring.size - used) - (s->ring.size - used) % s->bps;
}

unsigned px_source_buffered_ms(const px_source *s)
{
	return s->buffered ? bytes_to_ms(s->fmt, s->bps, ring_used(&s->ring)) : 0;
}

void px_source_finish(px_source *s)
{
	atomic_store(&s->finished, true);
}

const struct px_format *px_source_format(const px_source *s)
{
	return s->fmt;
}

bool px_source_done(const px_source *s)
{
	return atomic_load(&s->done);
}

uint64_t px_source_packets(const px_source *s)
{
	return atomic_load_explicit(&s->packets, memory_order_relaxed);
}

uint64_t px_source_underruns(const px_source *s)
{
	return atomic_load_explicit(&s->underruns, memory_order_relaxed);
}

/* ---------------------------------------------------------------- sinks */

static int sink_alloc(const struct px_format *f, px_sink **out, px_err *err)
{
	unsigned bps = px_stream_sample_bytes(f);
	px_sink *k;

	if (!bps)
		return px_err_set(err,
				  "format %s cannot be received as samples (linear or G.711 "
				  "only)",
				  f ? f->name : "(none)");
	k = calloc(1, sizeof(*k));
	if (!k)
		return px_err_set(err, "out of memory");
	atomic_init(&k->refs, 1);
	k->fmt = f;
	k->bps = bps;
	*out = k;
	return 0;
}

int px_sink_new_buffer(const struct px_format *f, unsigned capacity_ms, px_sink **out, px_err *err)
{
	px_sink *k;

	if (sink_alloc(f, &k, err) < 0)
		return -1;
	if (ring_init(&k->ring, f, k->bps, capacity_ms, err) < 0) {
		free(k);
		return -1;
	}
	k->buffered = true;
	*out = k;
	return 0;
}

int px_sink_new(const struct px_format *f, const struct px_sink_ops *ops, void *ctx, px_sink **out,
		px_err *err)
{
	px_sink *k;

	if (!ops || !ops->write)
		return px_err_set(err, "a callback sink needs a write function");
	if (sink_alloc(f, &k, err) < 0)
		return -1;
	k->ops = *ops;
	k->ctx = ctx;
	*out = k;
	return 0;
}

px_sink *px_sink_ref(px_sink *k)
{
	atomic_fetch_add(&k->refs, 1);
	return k;
}

void px_sink_unref(px_sink *k)
{
	if (!k || atomic_fetch_sub(&k->refs, 1) != 1)
		return;
	if (k->ops.release)
		k->ops.release(k->ctx);
	free(k->ring.buf);
	free(k);
}

size_t px_sink_read(px_sink *k, void *buf, size_t len)
{
	if (!k->buffered)
		return 0;
	return ring_get(&k->ring, buf, len, k->bps);
}

unsigned px_sink_buffered_ms(const px_sink *k)
{
	return k->buffered ? bytes_to_ms(k->fmt, k->bps, ring_used(&k->ring)) : 0;
}

const struct px_format *px_sink_format(const px_sink *k)
{
	return k->fmt;
}

uint64_t px_sink_samples(const px_sink *k)
{
	return atomic_load_explicit(&k->samples, memory_order_relaxed);
}

uint64_t px_sink_dropped(const px_sink *k)
{
	return atomic_load_explicit(&k->dropped, memory_order_relaxed);
}

/* ---------------------------------------------------------------- attach and detach */

/* The path from one format to another, or NULL when none is needed. */
static int path_for(const struct px_format *from, const struct px_format *to, const char *fmtp,
		    px_trans **out, px_err *err)
{
	*out = NULL;
	if (from == to)
		return 0;
	return px_trans_new(from, to, fmtp, out, err);
}

/* Free what a session's terminated media held. No lock held. */
void px_term_free(struct px_term *t)
{
	if (!t)
		return;
	px_trans_free(t->src_trans);
	px_trans_free(t->sink_trans);
	px_source_unref(t->src);
	px_sink_unref(t->sink);
	free(t);
}

/* Locked: leave t on r if it still has a source or a sink, else take it
 * off; returns t when it is to be freed. */
static struct px_term *settle(px_rtp *r, struct px_term *t, bool ticking)
{
	if (t->src || t->sink) {
		px_rtp_set_term(r, t, ticking);
		return NULL;
	}
	px_rtp_set_term(r, NULL, false);
	return t;
}

int px_rtp_attach_source(px_rtp *r, px_source *s, px_err *err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct px_rtp_codec codec;
		struct px_term *fresh, *t;
		px_trans *trans, *old_trans;
		px_source *old_src;
		struct media_worker *w;

		px_rtp_get_codec(r, &codec);
		if (!codec.format)
			return px_err_set(err, "RTP port %u: no codec negotiated yet",
					  px_rtp_local_port(r));
		if (path_for(s->fmt, codec.format, codec.fmtp, &trans, err) < 0)
			return -1;
		fresh = calloc(1, sizeof(*fresh));
		if (!fresh) {
			px_trans_free(trans);
			return px_err_set(err, "out of memory");
		}
		w = px_rtp_lock(r);
		if (px_rtp_codec_locked(r)->format != codec.format) {
			/* A re-INVITE changed the codec meanwhile. */
			px_rtp_unlock(w);
			px_trans_free(trans);
			free(fresh);
			continue;
		}
		t = px_rtp_term(r);
		if (!t) {
			t = fresh;
			fresh = NULL;
		}
		old_src = t->src;
		old_trans = t->src_trans;
		t->src = px_source_ref(s);
		t->src_trans = trans;
		t->src_codec = codec.format;
		t->next_due = monotonic_ns();
		t->mark = true;
		settle(r, t, true); /* t has a source now: it stays */
		px_rtp_unlock(w);
		free(fresh);
		px_source_unref(old_src);
		px_trans_free(old_trans);
		return 0;
	}
	return px_err_set(err, "RTP port %u: the codec keeps changing", px_rtp_local_port(r));
}

void px_rtp_detach_source(px_rtp *r)
{
	struct media_worker *w = px_rtp_lock(r);
	struct px_term *t = px_rtp_term(r), *gone = NULL;
	px_source *src = NULL;
	px_trans *trans = NULL;

	if (t && t->src) {
		src = t->src;
		trans = t->src_trans;
		t->src = NULL;
		t->src_trans = NULL;
		t->src_codec = NULL;
		gone = settle(r, t, false);
	}
	px_rtp_unlock(w);
	px_term_free(gone);
	px_trans_free(trans);
	px_source_unref(src);
}

int px_rtp_attach_sink(px_rtp *r, px_sink *k, px_err *err)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct px_rtp_codec codec;
		struct px_term *fresh, *t;
		px_trans *trans, *old_trans;
		px_sink *old_sink;
		struct media_worker *w;

		px_rtp_get_codec(r, &codec);
		if (!codec.format)
			return px_err_set(err, "RTP port %u: no codec negotiated yet",
					  px_rtp_local_port(r));
		if (path_for(codec.format, k->fmt, NULL, &trans, err) < 0)
			return -1;
		fresh = calloc(1, sizeof(*fresh));
		if (!fresh) {
			px_trans_free(trans);
			return px_err_set(err, "out of memory");
		}
		w = px_rtp_lock(r);
		if (px_rtp_codec_locked(r)->format != codec.format) {
			px_rtp_unlock(w);
			px_trans_free(trans);
			free(fresh);
			continue;
		}
		t = px_rtp_term(r);
		if (!t) {
			t = fresh;
			fresh = NULL;
		}
		old_sink = t->sink;
		old_trans = t->sink_trans;
		t->sink = px_sink_ref(k);
		t->sink_trans = trans;
		t->sink_codec = codec.format;
		t->rx_started = false;
		settle(r, t, t->src && !atomic_load(&t->src->done));
		px_rtp_unlock(w);
		free(fresh);
		px_sink_unref(old_sink);
		px_trans_free(old_trans);
		return 0;
	}
	return px_err_set(err, "RTP port %u: the codec keeps changing", px_rtp_local_port(r));
}

void px_rtp_detach_sink(px_rtp *r)
{
	struct media_worker *w = px_rtp_lock(r);
	struct px_term *t = px_rtp_term(r), *gone = NULL;
	px_sink *sink = NULL;
	px_trans *trans = NULL;

	if (t && t->sink) {
		sink = t->sink;
		trans = t->sink_trans;
		t->sink = NULL;
		t->sink_trans = NULL;
		t->sink_codec = NULL;
		gone = settle(r, t, t->src && !atomic_load(&t->src->done));
	}
	px_rtp_unlock(w);
	px_term_free(gone);
	px_trans_free(trans);
	px_sink_unref(sink);
}

/* The codec of r changed (a re-INVITE): make the paths again for the new
 * one, outside the lock, and swap them in if nothing else changed
 * meanwhile. Until then the worker neither sends nor receives for it. */
void px_term_codec_changed(px_rtp *r)
{
	for (int attempt = 0; attempt < 3; attempt++) {
		struct media_worker *w = px_rtp_lock(r);
		struct px_term *t = px_rtp_term(r);
		struct px_rtp_codec codec = *px_rtp_codec_locked(r);
		px_source *src = t && t->src ? px_source_ref(t->src) : NULL;
		px_sink *sink = t && t->sink ? px_sink_ref(t->sink) : NULL;
		bool src_stale = src && t->src_codec != codec.format;
		bool sink_stale = sink && t->sink_codec != codec.format;
		px_trans *st = NULL, *kt = NULL;
		px_err err = {""};
		bool swapped = false;

		px_rtp_unlock(w);
		if (!src_stale && !sink_stale) {
			px_source_unref(src);
			px_sink_unref(sink);
			return;
		}
		if (!codec.format ||
		    (src_stale && path_for(src->fmt, codec.format, codec.fmtp, &st, &err) < 0) ||
		    (sink_stale && path_for(codec.format, sink->fmt, NULL, &kt, &err) < 0)) {
			px_log_warning("RTP port %u: the application's audio stops: %s",
				       px_rtp_local_port(r),
				       err.msg[0] ? err.msg : "no codec negotiated");
			px_trans_free(st);
			px_source_unref(src);
			px_sink_unref(sink);
			return;
		}
		w = px_rtp_lock(r);
		t = px_rtp_term(r);
		if (t && px_rtp_codec_locked(r)->format == codec.format && t->src == src &&
		    t->sink == sink) {
			px_trans *tmp;
			if (src_stale) {
				tmp = t->src_trans;
				t->src_trans = st;
				st = tmp;
				t->src_codec = codec.format;
				t->mark = true;
			}
			if (sink_stale) {
				tmp = t->sink_trans;
				t->sink_trans = kt;
				kt = tmp;
				t->sink_codec = codec.format;
				t->rx_started = false;
			}
			swapped = true;
		}
		px_rtp_unlock(w);
		px_trans_free(st);
		px_trans_free(kt);
		px_source_unref(src);
		px_sink_unref(sink);
		if (swapped)
			return;
	}
}

/* ---------------------------------------------------------------- the worker's side */

static void source_ended(px_rtp *r, struct px_term *t)
{
	atomic_store(&t->src->done, true);
	/* Still attached (the application owns the media until it detaches),
	 * but off the clock. */
	px_rtp_set_term(r, t, false);
}

/* Send one packet of t's source; false when the source ended. */
static bool send_one(px_rtp *r, struct px_term *t, const struct px_rtp_codec *codec, unsigned ptime)
{
	px_source *s = t->src;
	unsigned samples = s->fmt->sample_rate / 1000 * ptime;
	size_t bytes = (size_t)samples * s->bps;
	uint32_t ts_step = ptime * codec->format->rtp_clock / 1000;
	bool ended = false;
	struct scratch *sc = thread_scratch();
	uint8_t *scratch_pcm, *scratch_pkt;
	int got;

	if (!sc) {
		/* No memory for the scratch: a gap, as when the source is late. */
		px_rtp_skip_own(r, ts_step);
		t->mark = true;
		return true;
	}
	scratch_pcm = sc->pcm;
	scratch_pkt = sc->pkt;
	if (s->buffered) {
		bool finished = atomic_load(&s->finished);
		got = (int)(ring_get(&s->ring, scratch_pcm, bytes, s->bps) / s->bps);
		ended = finished && ring_used(&s->ring) == 0;
	} else {
		got = s->ops.read(s->ctx, scratch_pcm, samples);
		if (got < 0) {
			ended = true;
			got = 0;
		} else if ((unsigned)got > samples) {
			got = (int)samples;
		}
	}
	if (got == 0) {
		if (ended)
			return false;
		/* Nothing to send this time: the far end hears a gap, and the
		 * next packet starts a talkspurt. */
		px_rtp_skip_own(r, ts_step);
		t->mark = true;
		counter_add(&s->underruns, 1);
		return true;
	}
	memset(scratch_pcm + (size_t)got * s->bps, silence_byte(s->fmt),
	       bytes - (size_t)got * s->bps);
	if (!t->src_trans) {
		memcpy(scratch_pkt + RTP_HEADER, scratch_pcm, bytes);
		if (px_rtp_send_own(r, scratch_pkt, bytes, ts_step, t->mark))
			t->mark = false;
	} else {
		int n = -1;
		if (px_trans_write(t->src_trans, scratch_pcm, bytes) == 0)
			n = px_trans_read(t->src_trans, ptime, scratch_pkt + RTP_HEADER,
					  sizeof(sc->pkt) - RTP_HEADER);
		if (n > 0) {
			if (px_rtp_send_own(r, scratch_pkt, (size_t)n, ts_step, t->mark))
				t->mark = false;
		} else {
			/* The encoder is still filling up (a resampler's delay). */
			px_rtp_skip_own(r, ts_step);
			t->mark = true;
		}
		if (ended && px_trans_buffered(t->src_trans) > 0) {
			/* The end: what the delay held back goes out padded with
			 * silence, so the far end hears all of it. */
			memset(scratch_pcm, silence_byte(s->fmt), bytes);
			if (px_trans_write(t->src_trans, scratch_pcm, bytes) == 0 &&
			    (n = px_trans_read(t->src_trans, ptime, scratch_pkt + RTP_HEADER,
					       sizeof(sc->pkt) - RTP_HEADER)) > 0)
				px_rtp_send_own(r, scratch_pkt, (size_t)n, ts_step, t->mark);
		}
	}
	counter_add(&s->packets, 1);
	return !ended;
}

void px_term_tick(px_rtp *r, struct px_term *t, long long now_ns)
{
	const struct px_rtp_codec *codec = px_rtp_codec_locked(r);
	unsigned ptime;
	long long step;

	if (!t || !t->src) {
		if (t)
			px_rtp_set_term(r, t, false);
		return;
	}
	if (!codec->format || t->src_codec != codec->format) {
		t->next_due = now_ns; /* waiting for px_term_codec_changed */
		return;
	}
	ptime = codec->ptime ? codec->ptime : 20;
	ptime = ptime < PTIME_MIN ? PTIME_MIN : ptime > PTIME_MAX ? PTIME_MAX : ptime;
	step = (long long)ptime * 1000000LL;
	if (now_ns - t->next_due > CATCHUP_NS) {
		t->next_due = now_ns;
		t->mark = true;
	}
	for (int n = 0; n < CATCHUP_PACKETS && now_ns >= t->next_due; n++) {
		t->next_due += step;
		if (!send_one(r, t, codec, ptime)) {
			source_ended(r, t);
			return;
		}
	}
}

static void sink_deliver(px_sink *k, const uint8_t *data, unsigned samples)
{
	counter_add(&k->samples, samples);
	if (!k->buffered) {
		k->ops.write(k->ctx, data, samples);
		return;
	}
	size_t want = (size_t)samples * k->bps;
	size_t put = ring_put(&k->ring, data, want, k->bps);
	if (put < want)
		counter_add(&k->dropped, (want - put) / k->bps);
}

/* Hand everything the sink's path has ready to the sink. */
static void sink_drain(px_sink *k, px_trans *trans)
{
	static const unsigned chunks[] = {20, 10, 5, 2, 1};
	struct scratch *sc = thread_scratch();

	if (!sc)
		return;
	for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
		int n;
		while ((n = px_trans_read(trans, chunks[i], sc->pcm, sizeof(sc->pcm))) > 0)
			sink_deliver(k, sc->pcm, (unsigned)n / k->bps);
	}
}

/* samples of silence into the sink, at the codec's rate. */
static void sink_conceal(struct px_term *t, unsigned samples)
{
	px_sink *k = t->sink;
	struct scratch *sc;

	if (t->sink_trans) {
		px_trans_conceal(t->sink_trans, samples);
		sink_drain(k, t->sink_trans);
		return;
	}
	if (!(sc = thread_scratch()))
		return;
	while (samples > 0) {
		unsigned n = samples > SCRATCH_BYTES / k->bps ? SCRATCH_BYTES / k->bps : samples;
		memset(sc->pcm, silence_byte(k->fmt), (size_t)n * k->bps);
		sink_deliver(k, sc->pcm, n);
		samples -= n;
	}
}

void px_term_receive(px_rtp *r, struct px_term *t, const uint8_t *pkt, size_t offset, size_t plen)
{
	const struct px_rtp_codec *codec = px_rtp_codec_locked(r);
	const struct px_format *f = codec->format;
	px_sink *k = t->sink;
	uint16_t seq = (uint16_t)(pkt[2] << 8 | pkt[3]);
	uint32_t ts =
		(uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];

	if (!k || !f || t->sink_codec != f)
		return;
	if (!t->rx_started) {
		unsigned ptime = codec->ptime ? codec->ptime : 20;
		t->rx_samples = f->sample_rate / 1000 * ptime;
	} else {
		int gap = (int16_t)(uint16_t)(seq - t->rx_seq);
		if (gap <= 0)
			return; /* late or repeated: its time has passed */
		uint32_t dts = ts - t->rx_ts;
		if (gap == 1 && dts > 0 && dts <= f->rtp_clock / 8)
			t->rx_samples =
				(unsigned)((unsigned long long)dts * f->sample_rate / f->rtp_clock);
		else if (gap > 1 && gap <= MAX_CONCEAL)
			sink_conceal(t, (unsigned)(gap - 1) * t->rx_samples);
	}
	t->rx_started = true;
	t->rx_seq = seq;
	t->rx_ts = ts;
	if (!t->sink_trans) {
		sink_deliver(k, pkt + offset, (unsigned)(plen / k->bps));
		return;
	}
	if (px_trans_write(t->sink_trans, pkt + offset, plen) == 0)
		sink_drain(k, t->sink_trans);
}
