/*
 * Playing a prompt to a channel and waiting for digits (plexus/play.h):
 * the session thread's loop that opens the file, keeps the source's ring a
 * few hundred ms ahead of the media worker, and watches the channel's
 * events (a digit that stops the prompt, a hangup, a redirect) until the
 * worker has sent the last packet.
 */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <plexus/channel.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/play.h>
#include <plexus/sound.h>
#include <plexus/stream.h>

/* Audio kept ahead of the worker, and the longest sleep between refills. */
#define RING_MS   1000
#define REFILL_MS 100
/* A prompt the worker has sent nothing of for this long is given up. */
#define STALL_MS 5000

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One event: a digit (> 0) to return, PX_PLAY_HANGUP, or 0 to go on. */
static int handle_event(px_channel *ch, const struct px_channel_event *ev, const char *escape)
{
	switch (ev->type) {
	case PX_EVENT_HANGUP:
	case PX_EVENT_REDIRECT:
		return PX_PLAY_HANGUP;
	case PX_EVENT_DTMF:
		if (escape && ev->digit && strchr(escape, ev->digit))
			return (unsigned char)ev->digit;
		px_debug(1, "%s: digit %c ignored", px_channel_name(ch), ev->digit);
		return 0;
	default:
		return 0;
	}
}

static bool gone(px_channel *ch)
{
	return px_channel_is_hungup(ch) || px_channel_leaving(ch);
}

int px_play_wait_digit(px_channel *ch, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;
	static const char all[] = "0123456789*#ABCD";

	for (;;) {
		struct px_channel_event ev;
		int left = -1, rc;

		if (gone(ch))
			return PX_PLAY_HANGUP;
		if (deadline >= 0) {
			long long l = deadline - now_ms();
			if (l <= 0)
				return PX_PLAY_DONE;
			left = l > INT_MAX ? INT_MAX : (int)l;
		}
		if (px_channel_wait_event(ch, left, &ev) == 0)
			continue;
		rc = handle_event(ch, &ev, all);
		if (rc)
			return rc;
	}
}

/* Move what fits from the file into the source; true at the file's end. */
static bool refill(px_sound *snd, px_source *src, const char *path)
{
	unsigned char buf[4096];

	for (;;) {
		size_t space = px_source_space(src);
		px_err err = {""};
		ssize_t n;

		if (space < 320)
			return false;
		n = px_sound_read(snd, buf, space < sizeof(buf) ? space : sizeof(buf), &err);
		if (n < 0) {
			px_log_warning("%s: read error, the prompt ends here: %s", path, err.msg);
			return true;
		}
		if (n == 0)
			return true;
		px_source_write(src, buf, (size_t)n);
	}
}

int px_play_file(px_channel *ch, const char *name, const char *escape, px_err *err)
{
	struct px_rtp_codec codec;
	char lang[64], path[PATH_MAX];
	px_rtp *rtp;
	px_sound *snd = NULL;
	px_source *src = NULL;
	bool eof;
	int rc = PX_PLAY_DONE;

	if (gone(ch))
		return PX_PLAY_HANGUP;
	rtp = px_channel_rtp(ch);
	if (!rtp) {
		px_err_set(err, "%s has no media session", px_channel_name(ch));
		return PX_PLAY_NOMEDIA;
	}
	px_rtp_get_codec(rtp, &codec);
	if (!codec.format) {
		px_err_set(err, "%s has no codec negotiated", px_channel_name(ch));
		return PX_PLAY_NOMEDIA;
	}
	px_sound_language(ch, lang, sizeof(lang));
	if (px_sound_find(name, lang, codec.format, path, sizeof(path), err) < 0)
		return PX_PLAY_NOFILE;
	if (px_sound_open(path, codec.format, &snd, err) < 0)
		return PX_PLAY_NOFILE;
	if (px_source_new_buffer(px_sound_format(snd), RING_MS, &src, err) < 0) {
		px_sound_close(snd);
		return PX_PLAY_NOMEDIA;
	}
	eof = refill(snd, src, path);
	if (eof)
		px_source_finish(src);
	if (px_rtp_attach_source(rtp, src, err) < 0) {
		px_source_unref(src);
		px_sound_close(snd);
		return PX_PLAY_NOMEDIA;
	}
	px_verbose(3, "%s: playing '%s' (%s)", px_channel_name(ch), path,
		   px_sound_format(snd)->name);
	uint64_t sent = 0;
	long long progress_ms = now_ms();
	while (!px_source_done(src)) {
		struct px_channel_event ev;
		unsigned ahead = px_source_buffered_ms(src);
		/* Sleep until the ring is half empty, or just past its end. */
		int wait = eof ? (int)ahead / 2 + 10 : ahead > 2 * REFILL_MS ? REFILL_MS : 20;

		if (gone(ch)) {
			rc = PX_PLAY_HANGUP;
			break;
		}
		if (px_source_packets(src) != sent) {
			sent = px_source_packets(src);
			progress_ms = now_ms();
		} else if (now_ms() - progress_ms > STALL_MS) {
			/* The worker sends nothing (a codec it cannot reach). */
			px_log_warning("%s: '%s' stalled; the prompt ends", px_channel_name(ch),
				       path);
			break;
		}
		if (px_channel_wait_event(ch, wait, &ev)) {
			rc = handle_event(ch, &ev, escape);
			if (rc)
				break;
		}
		if (!eof && refill(snd, src, path)) {
			eof = true;
			px_source_finish(src);
		}
	}
	px_rtp_detach_source(rtp);
	px_source_unref(src);
	px_sound_close(snd);
	return rc;
}
