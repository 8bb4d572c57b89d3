/*
 * Sound files: where prompts are found and how one is read. The sound
 * directories and the default language come from sounds.conf; a prompt is
 * named without extension ("digits/5", "vm-youhave") and looked up in each
 * directory under the language's folder first (DIR/en/digits/5.*), then
 * in the directory itself (DIR/digits/5.*). Of the variants on disk the
 * one that needs the least work for the channel's codec is taken: .ulaw
 * for PCMU, .alaw for PCMA, .sln16 for 16 kHz codecs (G.722), else .wav,
 * so that most prompts are sent without transcoding. A name with a known
 * extension, or an absolute path, names one file.
 *
 * A px_sound reads one file as samples of a format a source can play
 * (plexus/stream.h): raw .ulaw, .alaw, .sln (8 kHz), .sln16, .sln48 as
 * they are; WAV through libsndfile, mixed down to mono, at its own rate
 * when that is 8, 16 or 48 kHz (the translation path resamples), else
 * resampled to the codec's rate. Files are read by the application's
 * thread, never by a media worker.
 *
 * sounds.conf, section [general]:
 *   directories = /a, /b   searched in order (default: the installed sounds)
 *   language = en          when the channel's LANGUAGE variable is not set
 */
#ifndef PLEXUS_SOUND_H
#define PLEXUS_SOUND_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <plexus/codec.h>
#include <plexus/config.h>
#include <plexus/error.h>

/* The variants worth trying for a codec, best first ("ulaw", "wav" ...):
 * the count written to exts (at most max). */
int px_sound_variants(const struct px_format *codec, const char **exts, int max);

/* The file to play for name in language lang (NULL or "": the configured
 * default) to a channel of codec: 0 with its path, or -1 with err saying
 * what was looked for. */
int px_sound_find(const char *name, const char *lang, const struct px_format *codec, char *path,
		  size_t size, px_err *err);

/* The language for a channel: its LANGUAGE variable, else sounds.conf's. */
struct px_channel;
void px_sound_language(struct px_channel *ch, char *buf, size_t size);

typedef struct px_sound px_sound;

/* Open path (its extension says what it holds) for a channel of codec. */
int px_sound_open(const char *path, const struct px_format *codec, px_sound **out, px_err *err);
/* The format of what px_sound_read returns. */
const struct px_format *px_sound_format(const px_sound *s);
/* Up to len bytes of whole samples: the bytes read, 0 at the end, -1 on a
 * read error (err filled). */
ssize_t px_sound_read(px_sound *s, void *buf, size_t len, px_err *err);
/* The length in ms, when known (raw files and WAV); -1 otherwise. */
long px_sound_length_ms(const px_sound *s);
void px_sound_close(px_sound *s);

/* Apply sounds.conf (NULL: the defaults). A bad file is refused whole, and
 * the running settings are kept. */
int px_sound_configure(const px_config *conf, px_err *err);

#endif
