/*
 * res_musiconhold: music on hold. Classes come from musiconhold.conf (a
 * directory of sound files played in alphabetical or random order); each
 * class has one producer thread that decodes its files into one ring of
 * 8 kHz linear audio, paced by the clock, so that a class costs one decoder
 * however many callers listen. A listener is a callback source
 * (plexus/stream.h) on the caller's RTP session that reads the ring at its
 * own position, which starts where the class is playing now: the media
 * worker copies a packet's worth. The producer also keeps the ring in
 * G.711 (mu-law and A-law, encoded once), so a PCMU or PCMA listener is
 * sent what it copies as it is; other codecs encode from the linear ring.
 * The producer runs only while the class has listeners. The module is the
 * core's music-on-hold provider (plexus/moh.h: a bridge's held party hears
 * it) and registers the MusicOnHold application and "moh show classes".
 *
 * musiconhold.conf, one section per class:
 *   mode = files                 the only mode: files of a directory
 *   directory = moh              absolute, or under the installed sounds
 *   sort = random | alpha        order of the files (default alpha)
 * Without the file there is one class, default, playing the installed
 * sounds/moh directory (a melody made at build time by scripts/make-moh).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/cli.h>
#include <plexus/codec.h>
#include <plexus/config.h>
#include <plexus/core.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/moh.h>
#include <plexus/module.h>
#include <plexus/sound.h>
#include <plexus/stream.h>

#ifndef PX_SOUNDSDIR
#define PX_SOUNDSDIR "/usr/local/share/plexus/sounds"
#endif

#define RATE 8000
/* The ring: about 2 s of audio (a power of two, for the index mask). */
#define RING_SAMPLES 16384u
/* The producer stays this far ahead of the clock; a new listener starts
 * this far behind what was written, which is where the class plays now. */
#define LEAD_SAMPLES (RATE / 5)
/* The producer's period, and its chunk. */
#define CHUNK_MS      20
#define CHUNK_SAMPLES (RATE * CHUNK_MS / 1000)
/* A listener further behind than this is moved to where the class plays. */
#define MAX_LAG_SAMPLES (RING_SAMPLES - LEAD_SAMPLES - 4 * CHUNK_SAMPLES)
#define MAX_FILES       512
#define CLASS_NAME      64
/* The application's longest single wait. */
#define WAIT_TICK_MS 1000

enum moh_sort { SORT_ALPHA, SORT_RANDOM };

/* The G.711 copies of a class's ring, and the formats they hold. */
enum { G711_ULAW, G711_ALAW, NG711 };
static const char *const g711_names[NG711] = {"ulaw", "alaw"};

struct moh_class {
	atomic_int refs;
	char name[CLASS_NAME];
	pthread_mutex_t lock; /* everything below but the ring and its counters */
	pthread_cond_t cond;
	char *directory;
	enum moh_sort sort;
	char **files; /* paths, sorted by name */
	size_t nfiles;
	bool removed; /* gone from the configuration: no new listeners */
	unsigned listeners;
	bool quit;
	bool running; /* the producer decodes */
	char playing[PATH_MAX];
	pthread_t thread;
	bool thread_started;
	uint64_t streams_started; /* times the producer started */
	uint64_t files_played;
	/* The ring, written by the producer only. write_pos counts samples
	 * since the class was made; run_start is where the current run began
	 * (audio before it is stale). */
	int16_t ring[RING_SAMPLES];
	/* The same audio in G.711, encoded once by the producer, so that a
	 * PCMU or PCMA listener costs a copy and nothing else. encoded[k] is
	 * set while the run has that encoder (its codec module is loaded). */
	uint8_t ring_g711[NG711][RING_SAMPLES];
	px_trans *encoder[NG711]; /* the producer's, for the run */
	atomic_bool encoded[NG711];
	_Atomic uint64_t write_pos;
	_Atomic uint64_t run_start;
	atomic_uint_least64_t underruns; /* listener reads that found too little */
	struct moh_class *next;
};

/* One caller listening: the source's context. */
struct moh_listener {
	struct moh_class *cls; /* a reference */
	int g711;              /* which G.711 ring it reads; -1: the linear one */
	px_source *src;        /* ours, until stop */
	uint64_t pos;          /* next sample to read; worker only */
	bool synced;
};

struct moh_settings {
	char *mode;
	char *directory;
	int sort;
};

static const char *const sort_names[] = {"alpha", "random", NULL};
static const struct px_config_option class_options[] = {
	{"mode", PX_CFG_STRING, "files", 0, 0, NULL, offsetof(struct moh_settings, mode),
	 "files: play the sound files of a directory"},
	{"directory", PX_CFG_STRING, "moh", 0, 0, NULL, offsetof(struct moh_settings, directory),
	 "the directory; a relative one is under the installed sounds"},
	{"sort", PX_CFG_ENUM, "alpha", 0, 0, sort_names, offsetof(struct moh_settings, sort),
	 "alpha: in order of name; random: a random file each time"},
};
#define NOPTIONS (sizeof(class_options) / sizeof(class_options[0]))

static pthread_mutex_t classes_lock = PTHREAD_MUTEX_INITIALIZER;
static struct moh_class *classes;

/* ---------------------------------------------------------------- classes */

static struct moh_class *class_ref(struct moh_class *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

static void free_files(char **files, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

static void class_unref(struct moh_class *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	free_files(c->files, c->nfiles);
	free(c->directory);
	pthread_cond_destroy(&c->cond);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool playable(const char *name)
{
	static const char *const exts[] = {".wav", ".ulaw", ".alaw", ".sln", ".sln16", ".sln48"};
	const char *dot = strrchr(name, '.');

	if (!dot || name[0] == '.')
		return false;
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++)
		if (!strcasecmp(dot, exts[i]))
			return true;
	return false;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The playable files of dir, sorted: 0, or -1 (err) when it cannot be read. */
static int scan_directory(const char *dir, char ***out, size_t *n, px_err *err)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char **files = NULL;
	size_t count = 0;

	if (!d)
		return px_err_set(err, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) && count < MAX_FILES) {
		char *path;
		if (!playable(e->d_name))
			continue;
		char **grown = realloc(files, (count + 1) * sizeof(*files));
		if (!grown || asprintf(&path, "%s/%s", dir, e->d_name) < 0) {
			files = grown ? grown : files;
			closedir(d);
			free_files(files, count);
			return px_err_set(err, "out of memory");
		}
		files = grown;
		files[count++] = path;
	}
	closedir(d);
	if (count)
		qsort(files, count, sizeof(*files), cmp_str);
	*out = files;
	*n = count;
	return 0;
}

static char *class_directory(const char *dir)
{
	char *out;

	if (dir[0] == '/')
		return strdup(dir);
	if (asprintf(&out, "%s/%s", PX_SOUNDSDIR, dir) < 0)
		return NULL;
	return out;
}

static struct moh_class *class_new(const char *name)
{
	struct moh_class *c = calloc(1, sizeof(*c));
	pthread_condattr_t attr;

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	snprintf(c->name, sizeof(c->name), "%s", name);
	pthread_mutex_init(&c->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&c->cond, &attr);
	pthread_condattr_destroy(&attr);
	return c;
}

/* Parse one section into directory, sort and the files found there. */
static int class_settings(const px_config_section *s, const char *name, char **directory,
			  enum moh_sort *sort, char ***files, size_t *nfiles, px_err *err)
{
	struct moh_settings o;
	px_err serr = {""};
	int rc = -1;

	if (strlen(name) >= CLASS_NAME)
		return px_err_set(err, "musiconhold.conf: class name '%s' is too long", name);
	if (px_config_apply(s, class_options, NOPTIONS, &o, err) < 0)
		return -1;
	if (strcasecmp(o.mode, "files")) {
		const px_config_var *v = s ? px_config_var_find(s, "mode") : NULL;
		px_err_set(err, "%s:%d: mode: '%s' is not supported (files)", v ? v->file : "?",
			   v ? v->line : 0, o.mode);
		goto out;
	}
	*directory = class_directory(o.directory);
	if (!*directory) {
		px_err_set(err, "out of memory");
		goto out;
	}
	*sort = (enum moh_sort)o.sort;
	*files = NULL;
	*nfiles = 0;
	/* A directory that cannot be read is not fatal: the class plays
	 * silence until a reload finds files. */
	if (scan_directory(*directory, files, nfiles, &serr) < 0)
		px_log_warning("musiconhold: class %s: %s", name, serr.msg);
	else if (!*nfiles)
		px_log_warning("musiconhold: class %s: no sound files in %s", name, *directory);
	rc = 0;
out:
	px_config_options_free(class_options, NOPTIONS, &o);
	return rc;
}

/* ---------------------------------------------------------------- producer */

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The file being decoded, and the path from its format to slin. */
struct decoder {
	px_sound *snd;
	px_trans *trans;
	size_t next;        /* in the class's list, for alpha order */
	long long retry_ms; /* no file opened: do not try again before */
	bool warned;        /* a file failed to open in this run */
	bool open;
};

static void decoder_close(struct decoder *d)
{
	px_sound_close(d->snd);
	px_trans_free(d->trans);
	d->snd = NULL;
	d->trans = NULL;
	d->open = false;
}

/* Open the class's next file (lock not held); false when none opens. */
static bool decoder_next(struct moh_class *c, struct decoder *d, const struct px_format *slin)
{
	size_t tries;

	decoder_close(d);
	pthread_mutex_lock(&c->lock);
	tries = c->nfiles;
	while (tries--) {
		char path[PATH_MAX];
		px_err err = {""};
		size_t i =
			c->sort == SORT_RANDOM ? (size_t)random() % c->nfiles : d->next % c->nfiles;

		d->next = i + 1;
		snprintf(path, sizeof(path), "%s", c->files[i]);
		pthread_mutex_unlock(&c->lock);
		if (px_sound_open(path, slin, &d->snd, &err) == 0) {
			const struct px_format *f = px_sound_format(d->snd);
			if (f == slin || px_trans_new(f, slin, NULL, &d->trans, &err) == 0) {
				d->open = true;
				pthread_mutex_lock(&c->lock);
				snprintf(c->playing, sizeof(c->playing), "%s", path);
				c->files_played++;
				pthread_mutex_unlock(&c->lock);
				px_verbose(4, "musiconhold: class %s plays %s", c->name, path);
				return true;
			}
			px_sound_close(d->snd);
			d->snd = NULL;
		}
		if (!d->warned)
			px_log_warning("musiconhold: class %s: %s", c->name, err.msg);
		else
			px_debug(1, "musiconhold: class %s: %s", c->name, err.msg);
		d->warned = true;
		pthread_mutex_lock(&c->lock);
		if (!c->nfiles)
			break;
	}
	c->playing[0] = '\0';
	pthread_mutex_unlock(&c->lock);
	return false;
}

/* One chunk of slin from the open file: samples written (0 at its end). */
static unsigned decode_chunk(struct decoder *d, int16_t *out)
{
	uint8_t raw[CHUNK_SAMPLES * 6 * 2]; /* 20 ms at 48 kHz */
	const struct px_format *f = px_sound_format(d->snd);
	px_err err = {""};

	if (!d->trans) {
		ssize_t n = px_sound_read(d->snd, out, CHUNK_SAMPLES * 2, &err);
		return n > 0 ? (unsigned)n / 2 : 0;
	}
	for (;;) {
		int k = px_trans_read(d->trans, CHUNK_MS, (uint8_t *)out, CHUNK_SAMPLES * 2);
		if (k > 0)
			return (unsigned)k / 2;
		if (k < 0)
			return 0;
		size_t want = (size_t)f->sample_rate * CHUNK_MS / 1000 * px_stream_sample_bytes(f);
		ssize_t n =
			px_sound_read(d->snd, raw, want < sizeof(raw) ? want : sizeof(raw), &err);
		if (n <= 0 || px_trans_write(d->trans, raw, (size_t)n) < 0)
			return 0;
	}
}

/* One chunk (CHUNK_SAMPLES, always: the G.711 rings stay aligned) into
 * the rings, then published. */
static void ring_put(struct moh_class *c, const int16_t *pcm)
{
	uint64_t w = atomic_load_explicit(&c->write_pos, memory_order_relaxed);
	uint8_t enc[CHUNK_SAMPLES];

	for (unsigned i = 0; i < CHUNK_SAMPLES; i++)
		c->ring[(w + i) & (RING_SAMPLES - 1)] = pcm[i];
	for (int k = 0; k < NG711; k++) {
		if (!c->encoder[k])
			continue;
		if (px_trans_write(c->encoder[k], (const uint8_t *)pcm, CHUNK_SAMPLES * 2) < 0 ||
		    px_trans_read(c->encoder[k], CHUNK_MS, enc, sizeof(enc)) != CHUNK_SAMPLES)
			memset(enc, k == G711_ULAW ? 0xff : 0xd5, sizeof(enc));
		for (unsigned i = 0; i < CHUNK_SAMPLES; i++)
			c->ring_g711[k][(w + i) & (RING_SAMPLES - 1)] = enc[i];
	}
	atomic_store_explicit(&c->write_pos, w + CHUNK_SAMPLES, memory_order_release);
}

/* The run's G.711 encoders, where their codec modules are loaded. */
static void encoders_open(struct moh_class *c, const struct px_format *slin)
{
	for (int k = 0; k < NG711; k++) {
		const struct px_format *f = px_format_find(g711_names[k]);
		px_err err = {""};

		if (f && px_trans_new(slin, f, NULL, &c->encoder[k], &err) == 0)
			atomic_store(&c->encoded[k], true);
		else
			c->encoder[k] = NULL;
	}
}

static void encoders_close(struct moh_class *c)
{
	for (int k = 0; k < NG711; k++) {
		atomic_store(&c->encoded[k], false);
		px_trans_free(c->encoder[k]);
		c->encoder[k] = NULL;
	}
}

/* Decode while the class has listeners; sleep (file closed) while it has
 * none; end on quit. */
static void *producer_main(void *arg)
{
	struct moh_class *c = arg;
	const struct px_format *slin = px_format_find("slin");
	struct decoder d = {0};
	int16_t pcm[CHUNK_SAMPLES];

	for (;;) {
		pthread_mutex_lock(&c->lock);
		if (c->running && (!c->listeners || c->quit)) {
			c->running = false;
			c->playing[0] = '\0';
			pthread_mutex_unlock(&c->lock);
			decoder_close(&d);
			encoders_close(c);
			px_verbose(4, "musiconhold: class %s stops (no listener)", c->name);
			pthread_mutex_lock(&c->lock);
		}
		while (!c->quit && !c->listeners)
			pthread_cond_wait(&c->cond, &c->lock);
		if (c->quit) {
			pthread_mutex_unlock(&c->lock);
			break;
		}
		c->running = true;
		c->streams_started++;
		pthread_mutex_unlock(&c->lock);

		/* A run: the clock starts now, the ring goes on from where it is. */
		d.warned = false;
		d.retry_ms = 0;
		encoders_open(c, slin);
		uint64_t base = atomic_load(&c->write_pos);
		long long t0 = now_ns(), next = t0;
		atomic_store(&c->run_start, base);
		for (;;) {
			pthread_mutex_lock(&c->lock);
			bool go = c->listeners && !c->quit;
			pthread_mutex_unlock(&c->lock);
			if (!go)
				break;
			uint64_t due = base + LEAD_SAMPLES +
				       (uint64_t)((now_ns() - t0) / (1000000000LL / RATE));
			while (atomic_load(&c->write_pos) < due) {
				unsigned n = 0;
				if (d.open)
					n = decode_chunk(&d, pcm);
				if (n == 0 && now_ns() / 1000000 >= d.retry_ms) {
					if (decoder_next(c, &d, slin))
						n = decode_chunk(&d, pcm);
					else
						d.retry_ms = now_ns() / 1000000 + 1000;
				}
				if (n == 0 && d.open)
					decoder_close(&d);
				/* A short chunk (a file's end) is padded; nothing to
				 * play at all is silence: the listeners' clock goes on. */
				memset(pcm + n, 0, (CHUNK_SAMPLES - n) * sizeof(pcm[0]));
				ring_put(c, pcm);
			}
			next += (long long)CHUNK_MS * 1000000;
			struct timespec ts = {next / 1000000000LL, next % 1000000000LL};
			while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
				;
		}
	}
	decoder_close(&d);
	encoders_close(c);
	return NULL;
}

static int class_start_thread(struct moh_class *c, px_err *err)
{
	char name[32];
	int rc;

	snprintf(name, sizeof(name), "moh/%.12s", c->name);
	rc = px_thread_start(&c->thread, name, producer_main, c);
	if (rc)
		return px_err_set(err, "class %s: cannot start its thread: %s", c->name,
				  strerror(rc));
	c->thread_started = true;
	return 0;
}

static void class_stop_thread(struct moh_class *c)
{
	if (!c->thread_started)
		return;
	pthread_mutex_lock(&c->lock);
	c->quit = true;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	pthread_join(c->thread, NULL);
	c->thread_started = false;
}

/* ---------------------------------------------------------------- listeners */

/* The media worker, once a packet: copy from the ring at our position. */
static int listener_read(void *ctx, uint8_t *out, unsigned samples)
{
	struct moh_listener *l = ctx;
	struct moh_class *c = l->cls;
	uint64_t w = atomic_load_explicit(&c->write_pos, memory_order_acquire);
	uint64_t start = atomic_load_explicit(&c->run_start, memory_order_relaxed);
	int16_t *pcm = (int16_t *)out;
	unsigned n;

	if (!l->synced || l->pos < start || w - l->pos > MAX_LAG_SAMPLES || l->pos > w) {
		/* Join (or rejoin) where the class plays now. */
		l->pos = w > start + LEAD_SAMPLES ? w - LEAD_SAMPLES : start;
		l->synced = true;
	}
	n = w - l->pos < samples ? (unsigned)(w - l->pos) : samples;
	if (l->g711 >= 0) {
		const uint8_t *ring = c->ring_g711[l->g711];
		if (!atomic_load_explicit(&c->encoded[l->g711], memory_order_acquire))
			return 0; /* this run has no such encoder (module unloaded) */
		for (unsigned i = 0; i < n; i++)
			out[i] = ring[(l->pos + i) & (RING_SAMPLES - 1)];
	} else {
		for (unsigned i = 0; i < n; i++)
			pcm[i] = c->ring[(l->pos + i) & (RING_SAMPLES - 1)];
	}
	/* The producer may have lapped us while we copied: then what we copied
	 * is not what was there; start again where the class is. */
	if (atomic_load_explicit(&c->write_pos, memory_order_acquire) + CHUNK_SAMPLES >
	    l->pos + RING_SAMPLES) {
		l->synced = false;
		return 0;
	}
	l->pos += n;
	if (n < samples)
		atomic_fetch_add_explicit(&c->underruns, 1, memory_order_relaxed);
	return (int)n;
}

static void listener_release(void *ctx)
{
	struct moh_listener *l = ctx;

	class_unref(l->cls);
	free(l);
}

static const struct px_source_ops listener_ops = {
	.read = listener_read,
	.release = listener_release,
};

/* A class by name, with a reference; NULL when there is none. */
static struct moh_class *class_find(const char *name)
{
	struct moh_class *c;

	pthread_mutex_lock(&classes_lock);
	for (c = classes; c; c = c->next)
		if (!strcasecmp(c->name, name) && !c->removed)
			break;
	if (c)
		class_ref(c);
	pthread_mutex_unlock(&classes_lock);
	return c;
}

static int provider_start(px_channel *ch, const char *music_class, void **handle, px_err *err)
{
	struct moh_class *c = class_find(music_class);
	struct moh_listener *l;
	px_rtp *rtp = px_channel_rtp(ch);

	if (!c && strcasecmp(music_class, "default")) {
		px_log_warning("musiconhold: %s: no class '%s'; playing the default class",
			       px_channel_name(ch), music_class);
		c = class_find("default");
	}
	if (!c)
		return px_err_set(err, "no music-on-hold class '%s'", music_class);
	if (!rtp) {
		class_unref(c);
		return px_err_set(err, "%s has no media session", px_channel_name(ch));
	}
	l = calloc(1, sizeof(*l));
	if (!l) {
		class_unref(c);
		return px_err_set(err, "out of memory");
	}
	l->cls = c;
	/* A PCMU or PCMA call reads the class's copy in its codec: nothing is
	 * encoded per listener. */
	struct px_rtp_codec codec;
	const struct px_format *f = px_format_find("slin");
	px_rtp_get_codec(rtp, &codec);
	l->g711 = -1;
	for (int k = 0; k < NG711 && codec.format; k++) {
		if (!strcmp(codec.format->name, g711_names[k])) {
			l->g711 = k;
			f = codec.format;
		}
	}
	if (px_source_new(f, &listener_ops, l, &l->src, err) < 0) {
		listener_release(l);
		return -1;
	}
	/* Count the listener first: the producer starts before the worker's
	 * first read wants audio. */
	pthread_mutex_lock(&c->lock);
	c->listeners++;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	if (px_rtp_attach_source(rtp, l->src, err) < 0) {
		pthread_mutex_lock(&c->lock);
		c->listeners--;
		pthread_mutex_unlock(&c->lock);
		px_source_unref(l->src); /* releases l */
		return -1;
	}
	*handle = l;
	return 0;
}

static void provider_stop(px_channel *ch, void *handle)
{
	struct moh_listener *l = handle;
	struct moh_class *c = l->cls;
	px_rtp *rtp = px_channel_rtp(ch);

	if (rtp)
		px_rtp_detach_source(rtp);
	pthread_mutex_lock(&c->lock);
	c->listeners--;
	pthread_cond_broadcast(&c->cond);
	pthread_mutex_unlock(&c->lock);
	px_source_unref(l->src); /* the last reference: releases l */
}

static const struct px_moh_provider provider = {
	.start = provider_start,
	.stop = provider_stop,
};

/* ---------------------------------------------------------------- configuration */

/* Apply musiconhold.conf (NULL: the built-in default class). Classes that
 * exist keep their stream and listeners and take the new settings; new
 * ones start their (sleeping) producer; removed ones refuse new listeners
 * and go when they have none. */
static int configure(const px_config *cfg, px_err *err)
{
	struct pending {
		char name[CLASS_NAME];
		char *directory;
		enum moh_sort sort;
		char **files;
		size_t nfiles;
	} *p = NULL;
	size_t n = 0;
	int rc = -1;

	if (cfg) {
		for (const px_config_section *s = px_config_sections(cfg); s;
		     s = px_config_section_next(s)) {
			if (px_config_section_is_template(s))
				continue;
			struct pending *grown = realloc(p, (n + 1) * sizeof(*p));
			if (!grown) {
				px_err_set(err, "out of memory");
				goto out;
			}
			p = grown;
			memset(&p[n], 0, sizeof(p[n]));
			snprintf(p[n].name, sizeof(p[n].name), "%s", px_config_section_name(s));
			if (class_settings(s, px_config_section_name(s), &p[n].directory,
					   &p[n].sort, &p[n].files, &p[n].nfiles, err) < 0)
				goto out;
			n++;
		}
	} else {
		p = calloc(1, sizeof(*p));
		if (!p) {
			px_err_set(err, "out of memory");
			goto out;
		}
		snprintf(p[0].name, sizeof(p[0].name), "default");
		if (class_settings(NULL, "default", &p[0].directory, &p[0].sort, &p[0].files,
				   &p[0].nfiles, err) < 0)
			goto out;
		n = 1;
	}

	/* Every class is good: apply. */
	pthread_mutex_lock(&classes_lock);
	for (struct moh_class *c = classes; c; c = c->next)
		c->removed = true;
	for (size_t i = 0; i < n; i++) {
		struct moh_class *c;
		for (c = classes; c; c = c->next)
			if (!strcasecmp(c->name, p[i].name))
				break;
		if (!c) {
			c = class_new(p[i].name);
			if (!c) {
				px_log_error("musiconhold: class %s: out of memory", p[i].name);
				continue;
			}
			if (class_start_thread(c, err) < 0) {
				px_log_error("musiconhold: %s", err->msg);
				class_unref(c);
				continue;
			}
			c->next = classes;
			classes = c;
		}
		pthread_mutex_lock(&c->lock);
		char **old_files = c->files;
		size_t old_n = c->nfiles;
		char *old_dir = c->directory;
		c->directory = p[i].directory;
		c->sort = p[i].sort;
		c->files = p[i].files;
		c->nfiles = p[i].nfiles;
		c->removed = false;
		pthread_mutex_unlock(&c->lock);
		free_files(old_files, old_n);
		free(old_dir);
		p[i].directory = NULL;
		p[i].files = NULL;
		p[i].nfiles = 0;
	}
	/* Removed classes nobody listens to go now. */
	for (struct moh_class **pp = &classes; *pp;) {
		struct moh_class *c = *pp;
		pthread_mutex_lock(&c->lock);
		bool idle = c->removed && !c->listeners;
		pthread_mutex_unlock(&c->lock);
		if (!idle) {
			pp = &c->next;
			continue;
		}
		*pp = c->next;
		class_stop_thread(c);
		class_unref(c);
	}
	pthread_mutex_unlock(&classes_lock);
	rc = 0;
out:
	for (size_t i = 0; i < n; i++) {
		free(p[i].directory);
		free_files(p[i].files, p[i].nfiles);
	}
	free(p);
	return rc;
}

static int load_config(px_err *err)
{
	const char *dir = px_core_config_dir();
	char path[PATH_MAX];
	px_config *cfg = NULL;
	int rc;

	snprintf(path, sizeof(path), "%s/musiconhold.conf", dir ? dir : ".");
	if (access(path, F_OK) != 0) {
		px_verbose(2, "musiconhold: no musiconhold.conf; the default class plays %s/moh",
			   PX_SOUNDSDIR);
		return configure(NULL, err);
	}
	if (px_config_load(path, &cfg, err) < 0)
		return -1;
	rc = configure(cfg, err);
	px_config_unref(cfg);
	return rc;
}

/* ---------------------------------------------------------------- the application */

static bool gone(px_channel *ch)
{
	return px_channel_is_hungup(ch) || px_channel_leaving(ch);
}

static long long now_ms(void)
{
	return now_ns() / 1000000;
}

static int moh_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data ? data : ""), *argv[2];
	const char *cls;
	double seconds = 0;
	long long deadline = -1;
	px_err err = {""};
	int argc, rc = 0;

	if (!copy)
		return -1;
	argc = px_app_split_args(copy, argv, 2);
	cls = argc > 0 ? px_app_trim(argv[0]) : "";
	if (argc > 1 && *px_app_trim(argv[1])) {
		char *end;
		seconds = strtod(px_app_trim(argv[1]), &end);
		if (*end || seconds < 0) {
			px_log_warning("MusicOnHold: duration '%s' is not a number of seconds",
				       argv[1]);
			seconds = 0;
		}
		if (seconds > 0)
			deadline = now_ms() + (long long)(seconds * 1000);
	}
	if (px_channel_state(ch) != PX_STATE_UP && px_channel_answer(ch) < 0) {
		free(copy);
		return -1;
	}
	if (px_moh_start(ch, cls, &err) < 0)
		px_log_warning("MusicOnHold on %s: %s; the caller hears silence",
			       px_channel_name(ch), err.msg);
	while (!gone(ch)) {
		struct px_channel_event ev;
		int wait = WAIT_TICK_MS;

		if (deadline >= 0) {
			long long left = deadline - now_ms();
			if (left <= 0)
				break;
			if (left < wait)
				wait = (int)left;
		}
		if (px_channel_wait_event(ch, wait, &ev) &&
		    (ev.type == PX_EVENT_HANGUP || ev.type == PX_EVENT_REDIRECT))
			break;
	}
	px_moh_stop(ch);
	if (gone(ch))
		rc = -1;
	free(copy);
	return rc;
}

static const struct px_app moh_app = {
	.name = "MusicOnHold",
	.synopsis = "Play music on hold",
	.syntax = "MusicOnHold([class[,duration]])",
	.description = "Plays the music-on-hold class (musiconhold.conf; empty: default) to the\n"
		       "caller until it hangs up, or for duration seconds when given (then the\n"
		       "dialplan goes on). An unanswered call is answered first. Digits are\n"
		       "ignored. A class that does not exist plays the default class (with a\n"
		       "warning); with no class at all the caller hears silence.\n"
		       "Every caller of a class hears one shared stream, decoded once, joining it\n"
		       "where it plays now; the class decodes only while someone listens.\n"
		       "A caller put on hold by the other party of a bridge (re-INVITE) hears the\n"
		       "class the holder's endpoint suggests (sip.conf moh_suggest, default\n"
		       "'default') in the same way, until taken off hold.",
	.exec = moh_exec,
};

/* ---------------------------------------------------------------- console */

static enum px_cli_status cmd_show_classes(px_cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	pthread_mutex_lock(&classes_lock);
	for (struct moh_class *c = classes; c; c = c->next) {
		pthread_mutex_lock(&c->lock);
		px_cli_printf(cli,
			      "Class: %s%s\n\tMode: files\n\tDirectory: %s\n\tSort: %s\n"
			      "\tFiles: %zu\n\tStreams: %d\n\tListeners: %u\n"
			      "\tStarted: %llu\n\tFiles played: %llu\n\tUnderruns: %llu\n"
			      "\tPlaying: %s\n",
			      c->name, c->removed ? " (removed)" : "", c->directory,
			      sort_names[c->sort], c->nfiles, c->running ? 1 : 0, c->listeners,
			      (unsigned long long)c->streams_started,
			      (unsigned long long)c->files_played,
			      (unsigned long long)atomic_load(&c->underruns),
			      c->playing[0] ? c->playing : "-");
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&classes_lock);
	return PX_CLI_SUCCESS;
}

static const struct px_cli_command moh_commands[] = {
	{"moh show classes", "Lists the music-on-hold classes",
	 "Usage: moh show classes\n"
	 "       Lists each music-on-hold class: its directory and order, its files,\n"
	 "       whether its stream is decoding (Streams: 1 while anyone listens, one\n"
	 "       stream however many listen) and how many channels listen.",
	 cmd_show_classes, NULL, PX_ROLE_MONITOR},
};
#define NCOMMANDS (sizeof(moh_commands) / sizeof(moh_commands[0]))

/* ---------------------------------------------------------------- module */

static void free_classes(void)
{
	pthread_mutex_lock(&classes_lock);
	while (classes) {
		struct moh_class *c = classes;
		classes = c->next;
		class_stop_thread(c);
		class_unref(c);
	}
	pthread_mutex_unlock(&classes_lock);
}

static int moh_load(px_module *self)
{
	px_err err = {""};

	if (load_config(&err) < 0) {
		px_log_error("res_musiconhold: %s", err.msg);
		free_classes();
		return -1;
	}
	if (px_moh_register(self, &provider, &err) < 0)
		goto fail;
	if (px_app_register(self, &moh_app, &err) < 0) {
		px_moh_unregister(&provider);
		goto fail;
	}
	if (px_cli_register(self, moh_commands, NCOMMANDS, &err) < 0) {
		px_app_unregister(&moh_app);
		px_moh_unregister(&provider);
		goto fail;
	}
	return 0;
fail:
	px_log_error("res_musiconhold: %s", err.msg);
	free_classes();
	return -1;
}

static int moh_unload(px_module *self)
{
	(void)self;
	px_cli_unregister(moh_commands, NCOMMANDS);
	px_app_unregister(&moh_app);
	px_moh_unregister(&provider); /* stops every listener */
	free_classes();
	return 0;
}

static int moh_reload(px_module *self)
{
	px_err err = {""};

	(void)self;
	if (load_config(&err) < 0) {
		px_log_error("res_musiconhold: %s; the classes stay as they were", err.msg);
		return -1;
	}
	return 0;
}

PX_MODULE(.name = "res_musiconhold", .description = "Music on hold: classes, MusicOnHold",
	  .kind = PX_MODULE_RESOURCE, .load = moh_load, .unload = moh_unload, .reload = moh_reload);
