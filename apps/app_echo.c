/*
 * app_echo: the Echo application, the classic echo test. What the caller
 * says is sent back to them: a callback sink on the caller's RTP session
 * puts the audio it receives into a small ring, and a callback source on
 * the same session takes it out again one packet later. Both run on the
 * session's media worker under its lock, in the session's own codec when
 * a source can carry it (G.711: no decoding or encoding at all), else as
 * linear audio at the codec's rate. Digits come back as RFC 4733 events;
 * '#' ends the test and the dialplan goes on.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/codec.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/module.h>
#include <plexus/stream.h>

/* The ring holds at most this much (48 kHz linear: 2 bytes a sample). */
#define RING_MS    500
#define RING_BYTES (RING_MS * 48 * 2)
/* More than this waiting (a burst after a stall) is cut back to one packet,
 * so the echo's delay does not grow. */
#define MAX_DELAY_MS 300
#define DIGIT_MS     100
#define WAIT_MS      1000

/* Written by the sink, read by the source: both on the session's worker,
 * under its lock, so no other synchronisation is needed. */
struct echo {
	unsigned bps;  /* bytes a sample */
	unsigned rate; /* samples a second */
	uint8_t buf[RING_BYTES];
	size_t head, len; /* bytes */
	uint8_t silence;
};

static void ring_drop(struct echo *e, size_t n)
{
	e->head = (e->head + n) % RING_BYTES;
	e->len -= n;
}

static void echo_write(void *ctx, const uint8_t *data, unsigned samples)
{
	struct echo *e = ctx;
	size_t n = (size_t)samples * e->bps;
	size_t max = (size_t)e->rate * MAX_DELAY_MS / 1000 * e->bps;

	if (n > RING_BYTES)
		return;
	if (e->len + n > max) {
		size_t drop = e->len + n - max;
		if (drop > e->len)
			drop = e->len;
		ring_drop(e, drop - drop % e->bps);
	}
	for (size_t i = 0; i < n; i++)
		e->buf[(e->head + e->len + i) % RING_BYTES] = data[i];
	e->len += n;
}

static int echo_read(void *ctx, uint8_t *out, unsigned samples)
{
	struct echo *e = ctx;
	size_t n = (size_t)samples * e->bps;

	if (e->len == 0)
		return 0; /* nothing came in: skip the packet */
	if (n > e->len)
		n = e->len;
	for (size_t i = 0; i < n; i++)
		out[i] = e->buf[(e->head + i) % RING_BYTES];
	ring_drop(e, n);
	return (int)(n / e->bps);
}

static const struct px_source_ops source_ops = {.read = echo_read};
static const struct px_sink_ops sink_ops = {.write = echo_write};

/* The format to echo in: the codec itself when a source can carry it. */
static const struct px_format *echo_format(const struct px_format *codec)
{
	if (px_stream_sample_bytes(codec))
		return codec;
	switch (codec->sample_rate) {
	case 16000:
		return px_format_find("slin16");
	case 48000:
		return px_format_find("slin48");
	default:
		return px_format_find("slin");
	}
}

static bool gone(px_channel *ch)
{
	return px_channel_is_hungup(ch) || px_channel_leaving(ch);
}

static int echo_exec(px_channel *ch, const char *data)
{
	struct px_rtp_codec codec;
	const struct px_format *f;
	struct echo *e = NULL;
	px_source *src = NULL;
	px_sink *sink = NULL;
	px_err err = {""};
	px_rtp *rtp;
	int rc = 0;

	(void)data;
	if (px_channel_state(ch) != PX_STATE_UP && px_channel_answer(ch) < 0)
		return -1;
	rtp = px_channel_rtp(ch);
	if (!rtp) {
		px_log_warning("Echo: %s has no media session", px_channel_name(ch));
		return 0;
	}
	px_rtp_get_codec(rtp, &codec);
	f = codec.format ? echo_format(codec.format) : NULL;
	if (!f) {
		px_log_warning("Echo: %s has no codec negotiated", px_channel_name(ch));
		return 0;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -1;
	e->bps = px_stream_sample_bytes(f);
	e->rate = f->sample_rate;
	if (px_source_new(f, &source_ops, e, &src, &err) < 0 ||
	    px_sink_new(f, &sink_ops, e, &sink, &err) < 0 ||
	    px_rtp_attach_sink(rtp, sink, &err) < 0 || px_rtp_attach_source(rtp, src, &err) < 0) {
		px_log_warning("Echo on %s: %s", px_channel_name(ch), err.msg);
		goto out;
	}
	px_verbose(3, "%s: echo test (%s)", px_channel_name(ch), f->name);
	while (!gone(ch)) {
		struct px_channel_event ev;

		if (!px_channel_wait_event(ch, WAIT_MS, &ev))
			continue;
		if (ev.type == PX_EVENT_HANGUP || ev.type == PX_EVENT_REDIRECT)
			break;
		if (ev.type != PX_EVENT_DTMF)
			continue;
		if (ev.digit == '#')
			break;
		if (px_rtp_send_dtmf(rtp, ev.digit, DIGIT_MS) < 0)
			px_debug(1, "Echo: %s: digit %c not sent back (no telephone-event)",
				 px_channel_name(ch), ev.digit);
	}
out:
	/* Once both are detached the worker no longer touches e. */
	px_rtp_detach_source(rtp);
	px_rtp_detach_sink(rtp);
	px_source_unref(src);
	px_sink_unref(sink);
	free(e);
	if (gone(ch))
		rc = -1;
	return rc;
}

static const struct px_app echo_app = {
	.name = "Echo",
	.synopsis = "Send the caller's audio and digits back to them",
	.syntax = "Echo()",
	.description = "The echo test: everything the caller sends is sent back to them, audio\n"
		       "about one packet later (in the call's own codec when it is G.711, so\n"
		       "nothing is transcoded), and digits as RFC 4733 events when the call\n"
		       "negotiated them. Pressing # ends the test and the dialplan goes on. An\n"
		       "unanswered call is answered first. Sets no variables.",
	.exec = echo_exec,
};

static int echo_load(px_module *self)
{
	px_err err = {""};

	if (px_app_register(self, &echo_app, &err) < 0) {
		px_log_error("app_echo: %s", err.msg);
		return -1;
	}
	return 0;
}

static int echo_unload(px_module *self)
{
	(void)self;
	px_app_unregister(&echo_app);
	return 0;
}

PX_MODULE(.name = "app_echo", .description = "Echo: send the caller's audio back to them",
	  .kind = PX_MODULE_APPLICATION, .load = echo_load, .unload = echo_unload);
