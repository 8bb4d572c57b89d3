/*
 * Playing prompts to a channel from its session thread, the way IVR
 * applications need it: a sound file (plexus/sound.h) is streamed into the
 * channel's RTP session as a source (plexus/stream.h) while the channel's
 * events are watched, so that a DTMF digit can cut the prompt short and a
 * hangup or redirect ends it at once. Also the digit wait that menus and
 * Read use between prompts. All of it blocks the calling session thread
 * only; the file is read there, a few hundred ms ahead of the worker.
 */
#ifndef PLEXUS_PLAY_H
#define PLEXUS_PLAY_H

#include <plexus/channel.h>
#include <plexus/error.h>

/* What px_play_file and px_play_wait_digit come to, besides a digit
 * (the character, '0'-'9', '*', '#', 'A'-'D', which is > 0). */
enum {
	PX_PLAY_DONE = 0,     /* played to the end / the wait timed out */
	PX_PLAY_HANGUP = -1,  /* the channel hung up or is asked to leave */
	PX_PLAY_NOFILE = -2,  /* the file was not found or is not readable (err) */
	PX_PLAY_NOMEDIA = -3, /* the channel has no media session or codec (err) */
};

/* Play the prompt name (px_sound_find; the channel's language) to ch. A
 * digit in escape (NULL or "": none) stops it and is returned; other
 * digits are dropped. */
int px_play_file(px_channel *ch, const char *name, const char *escape, px_err *err);

/* Wait up to timeout_ms (-1: no limit) for a digit. */
int px_play_wait_digit(px_channel *ch, int timeout_ms);

#endif
