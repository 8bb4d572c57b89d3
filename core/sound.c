/*
 * Sound files (plexus/sound.h): the settings of sounds.conf (directories,
 * default language), the choice of a prompt's file variant for a codec,
 * and reading a file as samples: raw G.711 and signed linear as they are,
 * WAV through libsndfile (any rate and channel count, mixed down to mono
 * and resampled with speexdsp when its rate is not one of the engine's
 * linear formats).
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <sndfile.h>
#include <speex/speex_resampler.h>

#include <plexus/channel.h>
#include <plexus/codec.h>
#include <plexus/config.h>
#include <plexus/log.h>
#include <plexus/sound.h>
#include <plexus/stream.h>

#ifndef PX_SOUNDSDIR
#define PX_SOUNDSDIR "/usr/local/share/plexus/sounds"
#endif

#define MAX_VARIANTS 8
/* WAV frames read at a time (each up to 8 channels wide). */
#define WAV_CHUNK        1024
#define WAV_CHANNELS     8
#define RESAMPLE_QUALITY 4

/* What each file extension holds: a format of the codec registry, or
 * "wav" for libsndfile. */
static const struct {
	const char *ext;
	const char *format;
} kinds[] = {
	{"ulaw", "ulaw"},    {"alaw", "alaw"}, {"sln16", "slin16"},
	{"sln48", "slin48"}, {"sln", "slin"},  {"wav", NULL},
};

struct sound_settings {
	char **directories;
	char *language;
};

static const struct px_config_option sound_options[] = {
	{"directories", PX_CFG_LIST, PX_SOUNDSDIR, 0, 0, NULL,
	 offsetof(struct sound_settings, directories), "sound directories, searched in order"},
	{"language", PX_CFG_STRING, "en", 0, 0, NULL, offsetof(struct sound_settings, language),
	 "language of a channel whose LANGUAGE variable is not set"},
};
#define NOPTIONS (sizeof(sound_options) / sizeof(sound_options[0]))

static pthread_rwlock_t settings_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct sound_settings settings; /* guarded by settings_lock */
static bool configured;

struct px_sound {
	const struct px_format *fmt;
	FILE *raw;    /* raw files */
	SNDFILE *wav; /* WAV */
	unsigned channels;
	unsigned chunk_frames;   /* read at a time: their output fits pending */
	SpeexResamplerState *rs; /* WAV at a rate of no linear format */
	/* Mixed-down WAV audio not yet returned (after resampling). */
	int16_t pending[WAV_CHUNK * 8];
	unsigned pending_off, pending_len;
	bool wav_eof;
	long length_ms;
	char path[PATH_MAX];
};

/* ---------------------------------------------------------------- settings */

int px_sound_configure(const px_config *conf, px_err *err)
{
	const px_config_section *general = conf ? px_config_find(conf, "general") : NULL;
	struct sound_settings next = {0}, old;

	if (px_config_apply(general, sound_options, NOPTIONS, &next, err) < 0)
		return -1;
	if (!next.directories || !next.directories[0]) {
		px_config_options_free(sound_options, NOPTIONS, &next);
		return px_err_set(err,
				  "sounds.conf: directories: at least one directory is needed");
	}
	if (!next.language || strchr(next.language, '/') || !strcmp(next.language, "..")) {
		px_config_options_free(sound_options, NOPTIONS, &next);
		return px_err_set(err, "sounds.conf: language: not a folder name");
	}
	pthread_rwlock_wrlock(&settings_lock);
	old = settings;
	settings = next;
	bool had = configured;
	configured = true;
	pthread_rwlock_unlock(&settings_lock);
	if (had)
		px_config_options_free(sound_options, NOPTIONS, &old);
	return 0;
}

/* The defaults, the first time anything is looked up without a
 * sounds.conf (tests, a daemon started without one). */
static void ensure_configured(void)
{
	bool done;

	pthread_rwlock_rdlock(&settings_lock);
	done = configured;
	pthread_rwlock_unlock(&settings_lock);
	if (!done) {
		px_err err;
		if (px_sound_configure(NULL, &err) < 0)
			px_log_error("sounds: %s", err.msg);
	}
}

void px_sound_language(px_channel *ch, char *buf, size_t size)
{
	if (ch && px_channel_var_get(ch, "LANGUAGE", buf, size) == 0 && buf[0] &&
	    !strchr(buf, '/') && strcmp(buf, ".."))
		return;
	ensure_configured();
	pthread_rwlock_rdlock(&settings_lock);
	snprintf(buf, size, "%s", settings.language ? settings.language : "en");
	pthread_rwlock_unlock(&settings_lock);
}

/* ---------------------------------------------------------------- finding */

int px_sound_variants(const struct px_format *codec, const char **exts, int max)
{
	const char *order[MAX_VARIANTS];
	int n = 0;

	if (codec && codec->encoding && !strcasecmp(codec->encoding, "PCMU")) {
		order[n++] = "ulaw";
		order[n++] = "wav";
		order[n++] = "alaw";
		order[n++] = "sln16";
	} else if (codec && codec->encoding && !strcasecmp(codec->encoding, "PCMA")) {
		order[n++] = "alaw";
		order[n++] = "wav";
		order[n++] = "ulaw";
		order[n++] = "sln16";
	} else if (codec && codec->sample_rate >= 16000) {
		/* Wideband: the 16 kHz variant keeps what the codec can carry. */
		order[n++] = "sln16";
		order[n++] = "wav";
		order[n++] = "sln48";
		order[n++] = "sln";
		order[n++] = "ulaw";
		order[n++] = "alaw";
	} else {
		order[n++] = "wav";
		order[n++] = "sln";
		order[n++] = "sln16";
		order[n++] = "ulaw";
		order[n++] = "alaw";
	}
	if (n > max)
		n = max;
	memcpy(exts, order, (size_t)n * sizeof(*exts));
	return n;
}

static const char *kind_format(const char *ext)
{
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (!strcasecmp(kinds[i].ext, ext))
			return kinds[i].format ? kinds[i].format : "wav";
	return NULL;
}

/* The known extension of name, or NULL. */
static const char *known_extension(const char *name)
{
	const char *dot = strrchr(name, '.');
	const char *slash = strrchr(name, '/');

	if (!dot || (slash && dot < slash))
		return NULL;
	return kind_format(dot + 1) ? dot + 1 : NULL;
}

/* Can this variant be read here (its format is registered)? */
static bool variant_usable(const char *ext)
{
	const char *f = kind_format(ext);

	return f && (!strcmp(f, "wav") || px_format_find(f));
}

static bool is_file(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Try base.EXT for every usable variant, best first. */
static bool try_variants(const char *base, const char *const *exts, int n, char *path, size_t size)
{
	for (int i = 0; i < n; i++) {
		if (!variant_usable(exts[i]))
			continue;
		if ((size_t)snprintf(path, size, "%s.%s", base, exts[i]) >= size)
			continue;
		if (is_file(path))
			return true;
	}
	return false;
}

int px_sound_find(const char *name, const char *lang, const struct px_format *codec, char *path,
		  size_t size, px_err *err)
{
	const char *exts[MAX_VARIANTS];
	int n = px_sound_variants(codec, exts, MAX_VARIANTS);
	char base[PATH_MAX], deflang[64];
	bool found = false;

	if (!name || !*name)
		return px_err_set(err, "no sound file named");
	if (strstr(name, "..") && name[0] != '/')
		return px_err_set(err, "sound file %s: '..' is not allowed in a prompt name", name);
	if (!lang || !*lang) {
		px_sound_language(NULL, deflang, sizeof(deflang));
		lang = deflang;
	}
	/* An absolute path: that file, or its variants. */
	if (name[0] == '/') {
		if (known_extension(name)) {
			if (!is_file(name))
				return px_err_set(err, "sound file %s does not exist", name);
			if ((size_t)snprintf(path, size, "%s", name) >= size)
				return px_err_set(err, "sound file %s: path too long", name);
			return 0;
		}
		if (try_variants(name, exts, n, path, size))
			return 0;
		return px_err_set(err, "sound file %s.* not found", name);
	}
	ensure_configured();
	pthread_rwlock_rdlock(&settings_lock);
	for (char **d = settings.directories; d && *d && !found; d++) {
		for (int pass = 0; pass < 2 && !found; pass++) {
			/* DIR/LANG/name first, then DIR/name. */
			if (pass == 0)
				snprintf(base, sizeof(base), "%s/%s/%s", *d, lang, name);
			else
				snprintf(base, sizeof(base), "%s/%s", *d, name);
			if (known_extension(name)) {
				found = is_file(base) &&
					(size_t)snprintf(path, size, "%s", base) < size;
			} else {
				found = try_variants(base, exts, n, path, size);
			}
		}
	}
	if (!found) {
		char dirs[512] = "";
		size_t used = 0;
		for (char **d = settings.directories; d && *d; d++) {
			int w = snprintf(dirs + used, sizeof(dirs) - used, "%s%s", used ? ", " : "",
					 *d);
			if (w < 0 || (size_t)w >= sizeof(dirs) - used)
				break;
			used += (size_t)w;
		}
		px_err_set(err, "sound file %s not found (language %s, in %s)", name, lang, dirs);
	}
	pthread_rwlock_unlock(&settings_lock);
	return found ? 0 : -1;
}

/* ---------------------------------------------------------------- reading */

/* The linear format for rate, if the engine has one. */
static const struct px_format *linear_at(unsigned rate)
{
	const struct px_format *f = NULL;

	if (rate == 8000)
		f = px_format_find("slin");
	else if (rate == 16000)
		f = px_format_find("slin16");
	else if (rate == 48000)
		f = px_format_find("slin48");
	return f && f->linear ? f : NULL;
}

static int open_raw(px_sound *s, const char *fmt, px_err *err)
{
	struct stat st;

	s->fmt = px_format_find(fmt);
	if (!s->fmt)
		return px_err_set(err, "%s: format %s is not loaded", s->path, fmt);
	s->raw = fopen(s->path, "rb");
	if (!s->raw)
		return px_err_set(err, "%s: %s", s->path, strerror(errno));
	if (fstat(fileno(s->raw), &st) == 0) {
		unsigned bps = px_stream_sample_bytes(s->fmt);
		s->length_ms = (long)((long long)st.st_size / bps * 1000 / s->fmt->sample_rate);
	}
	return 0;
}

static int open_wav(px_sound *s, const struct px_format *codec, px_err *err)
{
	SF_INFO info = {0};

	s->wav = sf_open(s->path, SFM_READ, &info);
	if (!s->wav)
		return px_err_set(err, "%s: not a sound file that can be read: %s", s->path,
				  sf_strerror(NULL));
	if (info.channels < 1 || info.channels > WAV_CHANNELS || info.samplerate < 1000 ||
	    info.samplerate > 192000)
		return px_err_set(err, "%s: %d channels at %d Hz: not supported", s->path,
				  info.channels, info.samplerate);
	s->channels = (unsigned)info.channels;
	s->chunk_frames = WAV_CHUNK;
	s->length_ms = info.frames > 0 ? (long)(info.frames * 1000 / info.samplerate) : -1;
	s->fmt = linear_at((unsigned)info.samplerate);
	if (!s->fmt) {
		/* Resampled to the rate the codec works at (8 kHz for G.711). */
		unsigned to = codec && codec->sample_rate >= 48000   ? 48000
			      : codec && codec->sample_rate >= 16000 ? 16000
								     : 8000;
		int e = 0;
		s->fmt = linear_at(to);
		if (!s->fmt)
			return px_err_set(err, "%s: no linear format at %u Hz", s->path, to);
		s->rs = speex_resampler_init(1, (spx_uint32_t)info.samplerate, to, RESAMPLE_QUALITY,
					     &e);
		if (!s->rs)
			return px_err_set(err, "%s: cannot resample %d Hz to %u Hz", s->path,
					  info.samplerate, to);
		speex_resampler_skip_zeros(s->rs);
		unsigned long fit = (unsigned long)(sizeof(s->pending) / sizeof(s->pending[0])) *
				    (unsigned)info.samplerate / to;
		s->chunk_frames = fit > WAV_CHUNK + 16 ? WAV_CHUNK
				  : fit > 32           ? (unsigned)fit - 16
						       : 16;
	}
	return 0;
}

int px_sound_open(const char *path, const struct px_format *codec, px_sound **out, px_err *err)
{
	const char *ext = known_extension(path);
	const char *kind = ext ? kind_format(ext) : NULL;
	px_sound *s;
	int rc;

	if (!kind)
		return px_err_set(err, "%s: unknown kind of sound file", path);
	s = calloc(1, sizeof(*s));
	if (!s)
		return px_err_set(err, "out of memory");
	snprintf(s->path, sizeof(s->path), "%s", path);
	s->length_ms = -1;
	rc = strcmp(kind, "wav") ? open_raw(s, kind, err) : open_wav(s, codec, err);
	if (rc < 0) {
		px_sound_close(s);
		return -1;
	}
	*out = s;
	return 0;
}

const struct px_format *px_sound_format(const px_sound *s)
{
	return s->fmt;
}

long px_sound_length_ms(const px_sound *s)
{
	return s->length_ms;
}

/* Read, mix down and resample the next chunk of a WAV into pending. At
 * the end of the file, what the resampler still holds comes out once. */
static int wav_refill(px_sound *s, px_err *err)
{
	short frames[WAV_CHUNK * WAV_CHANNELS];
	int16_t mono[WAV_CHUNK];
	sf_count_t n = sf_readf_short(s->wav, frames, s->chunk_frames);

	if (n < 0 || (n == 0 && sf_error(s->wav)))
		return px_err_set(err, "%s: %s", s->path, sf_strerror(s->wav));
	for (sf_count_t i = 0; i < n; i++) {
		int sum = 0;
		for (unsigned c = 0; c < s->channels; c++)
			sum += frames[i * s->channels + c];
		mono[i] = (int16_t)(sum / (int)s->channels);
	}
	s->pending_off = 0;
	s->pending_len = 0;
	if (n == 0)
		s->wav_eof = true;
	if (!s->rs) {
		memcpy(s->pending, mono, (size_t)n * sizeof(int16_t));
		s->pending_len = (unsigned)n;
		return 0;
	}
	spx_uint32_t in_len = (spx_uint32_t)n, out_len = sizeof(s->pending) / sizeof(s->pending[0]);
	if (n == 0) {
		static const int16_t zeros[64];
		in_len = sizeof(zeros) / sizeof(zeros[0]);
		speex_resampler_process_int(s->rs, 0, zeros, &in_len, s->pending, &out_len);
	} else {
		speex_resampler_process_int(s->rs, 0, mono, &in_len, s->pending, &out_len);
	}
	s->pending_len = out_len;
	return 0;
}

ssize_t px_sound_read(px_sound *s, void *buf, size_t len, px_err *err)
{
	size_t done = 0, want = len / 2;
	int16_t *out = buf;

	if (s->raw) {
		unsigned bps = px_stream_sample_bytes(s->fmt);
		size_t n = fread(buf, 1, len - len % bps, s->raw);
		if (n == 0 && ferror(s->raw))
			return px_err_set(err, "%s: %s", s->path, strerror(errno));
		return (ssize_t)(n - n % bps);
	}
	while (done < want) {
		if (s->pending_off == s->pending_len) {
			if (s->wav_eof)
				break;
			if (wav_refill(s, err) < 0)
				return -1;
			continue;
		}
		size_t k = s->pending_len - s->pending_off;
		if (k > want - done)
			k = want - done;
		memcpy(out + done, s->pending + s->pending_off, k * sizeof(int16_t));
		s->pending_off += (unsigned)k;
		done += k;
	}
	return (ssize_t)(done * 2);
}

void px_sound_close(px_sound *s)
{
	if (!s)
		return;
	if (s->raw)
		fclose(s->raw);
	if (s->wav)
		sf_close(s->wav);
	if (s->rs)
		speex_resampler_destroy(s->rs);
	free(s);
}
