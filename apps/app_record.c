/*
 * app_record: the Record application. It records what the caller says to
 * a WAV file (16-bit linear, 8 kHz, or 16 kHz when the call's codec is
 * wideband) through libsndfile, from a buffer sink on the caller's RTP
 * session that the session thread drains every few tens of ms. Recording
 * stops on the terminating digit, on a stretch of silence (the energy of
 * each 20 ms frame against a threshold; the silence is trimmed off the
 * file but for a little), at the maximum duration, or when the caller
 * hangs up; the file is closed properly in every case, and its header is
 * rewritten after every write, so that even a daemon killed mid-recording
 * leaves a readable file. Files live under one directory (record.conf's
 * record_dir): a relative name goes there, and a path that leads anywhere
 * else is refused. RECORDED_FILE and RECORD_STATUS say what happened.
 *
 * record.conf, section [general]:
 *   record_dir = DIR        where recordings go (default: STATEDIR/recordings)
 *   silence_threshold = N   frames below this mean amplitude are silent (256)
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <plexus/app.h>
#include <plexus/channel.h>
#include <plexus/codec.h>
#include <plexus/config.h>
#include <plexus/core.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/module.h>
#include <plexus/play.h>
#include <plexus/stream.h>

#ifndef PX_STATEDIR
#define PX_STATEDIR "/var/lib/plexus"
#endif

#define FRAME_MS 20
/* The sink's ring, and how often the session thread drains it. */
#define RING_MS 2000
#define POLL_MS 20
/* When nothing arrives (a phone that sends no packets in silence), silence
 * is written so that the file keeps the call's time; after this long. */
#define STARVE_MS 200
/* Of trailing silence that stopped the recording, this much is kept. */
#define KEEP_SILENCE_MS 200

struct record_settings {
	char *record_dir;
	long long silence_threshold;
};

static const struct px_config_option record_options[] = {
	{"record_dir", PX_CFG_STRING, PX_STATEDIR "/recordings", 0, 0, NULL,
	 offsetof(struct record_settings, record_dir),
	 "where recordings go; Record refuses paths elsewhere"},
	{"silence_threshold", PX_CFG_INT, "256", 1, 32767, NULL,
	 offsetof(struct record_settings, silence_threshold),
	 "mean amplitude below which a 20 ms frame counts as silence"},
};
#define NOPTIONS (sizeof(record_options) / sizeof(record_options[0]))

static pthread_rwlock_t settings_lock = PTHREAD_RWLOCK_INITIALIZER;
static struct record_settings settings; /* guarded by settings_lock */

/* ---------------------------------------------------------------- configuration */

static int configure(px_err *err)
{
	const char *dir = px_core_config_dir();
	char path[PATH_MAX];
	px_config *cfg = NULL;
	struct record_settings next = {0}, old;
	int rc;

	snprintf(path, sizeof(path), "%s/record.conf", dir ? dir : ".");
	if (access(path, F_OK) == 0 && px_config_load(path, &cfg, err) < 0)
		return -1;
	rc = px_config_apply(cfg ? px_config_find(cfg, "general") : NULL, record_options, NOPTIONS,
			     &next, err);
	px_config_unref(cfg);
	if (rc < 0)
		return -1;
	if (!next.record_dir || next.record_dir[0] != '/') {
		px_config_options_free(record_options, NOPTIONS, &next);
		return px_err_set(err, "record.conf: record_dir must be an absolute path");
	}
	/* No trailing slash: the prefix check below appends one. */
	for (size_t n = strlen(next.record_dir); n > 1 && next.record_dir[n - 1] == '/'; n--)
		next.record_dir[n - 1] = '\0';
	pthread_rwlock_wrlock(&settings_lock);
	old = settings;
	settings = next;
	pthread_rwlock_unlock(&settings_lock);
	px_config_options_free(record_options, NOPTIONS, &old);
	return 0;
}

/* ---------------------------------------------------------------- the path */

/* mkdir -p of dir's components below base (which exists or is made). */
static int make_dirs(const char *dir)
{
	char buf[PATH_MAX];

	snprintf(buf, sizeof(buf), "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0750) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0750) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static bool has_dotdot(const char *path)
{
	for (const char *p = path; (p = strstr(p, "..")); p += 2)
		if ((p == path || p[-1] == '/') && (p[2] == '\0' || p[2] == '/'))
			return true;
	return false;
}

/*
 * The file for name ("msg.wav", "vm/1001/%d.wav", or an absolute path under
 * the record directory): its full path in out, without the extension in
 * base. %d becomes the first number that names no existing file. -1 with
 * err when the name is bad or leads outside the directory.
 */
static int record_path(const char *name, char *out, size_t size, char *base, size_t bsize,
		       px_err *err)
{
	char dir[PATH_MAX], want[PATH_MAX], real_dir[PATH_MAX], real_parent[PATH_MAX];
	const char *ext = strrchr(name, '.');
	const char *slash = strrchr(name, '/');

	pthread_rwlock_rdlock(&settings_lock);
	snprintf(dir, sizeof(dir), "%s", settings.record_dir);
	pthread_rwlock_unlock(&settings_lock);
	if (!ext || (slash && ext < slash) || strcasecmp(ext, ".wav"))
		return px_err_set(err, "'%s': the file must end in .wav", name);
	if (has_dotdot(name))
		return px_err_set(err, "'%s': '..' is not allowed in a recording's path", name);
	if (name[0] == '/') {
		size_t n = strlen(dir);
		if (strncmp(name, dir, n) || name[n] != '/')
			return px_err_set(err, "'%s' is outside the recording directory %s", name,
					  dir);
		snprintf(want, sizeof(want), "%s", name);
	} else if (snprintf(want, sizeof(want), "%s/%s", dir, name) >= (int)sizeof(want)) {
		return px_err_set(err, "'%s': the path is too long", name);
	}
	/* The directories it needs, then where they really are (symbolic links
	 * included): still under the recording directory? */
	char parent[PATH_MAX];
	snprintf(parent, sizeof(parent), "%s", want);
	*strrchr(parent, '/') = '\0';
	if (make_dirs(dir) < 0 || make_dirs(parent) < 0)
		return px_err_set(err, "cannot make the directory %s: %s", parent, strerror(errno));
	if (!realpath(dir, real_dir) || !realpath(parent, real_parent))
		return px_err_set(err, "%s: %s", parent, strerror(errno));
	size_t n = strlen(real_dir);
	if (strncmp(real_parent, real_dir, n) || (real_parent[n] && real_parent[n] != '/'))
		return px_err_set(err, "'%s' leads outside the recording directory %s", name, dir);

	char *pct = strstr(want, "%d");
	if (pct) {
		/* Only the first %d counts; anything else stays as written. */
		for (int i = 0; i < 100000; i++) {
			char cand[PATH_MAX];
			snprintf(cand, sizeof(cand), "%.*s%d%s", (int)(pct - want), want, i,
				 pct + 2);
			if (access(cand, F_OK) != 0) {
				snprintf(want, sizeof(want), "%s", cand);
				break;
			}
		}
	}
	snprintf(out, size, "%s", want);
	snprintf(base, bsize, "%.*s", (int)(strrchr(want, '.') - want), want);
	return 0;
}

/* ---------------------------------------------------------------- recording */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool gone(px_channel *ch)
{
	return px_channel_is_hungup(ch) || px_channel_leaving(ch);
}

struct recording {
	px_channel *ch;
	SNDFILE *sf;
	unsigned rate;
	unsigned frame; /* samples in a frame */
	int threshold;
	sf_count_t written; /* samples in the file */
	sf_count_t silent;  /* trailing silent samples */
	int16_t pending[48 * FRAME_MS];
	unsigned npending;
	bool write_failed;
};

/* Write whole frames; note each one's silence. */
static void put_frames(struct recording *r, const int16_t *pcm, size_t n)
{
	while (n) {
		unsigned k = r->frame - r->npending;
		if (k > n)
			k = (unsigned)n;
		memcpy(r->pending + r->npending, pcm, k * sizeof(int16_t));
		r->npending += k;
		pcm += k;
		n -= k;
		if (r->npending < r->frame)
			break;
		long long sum = 0;
		for (unsigned i = 0; i < r->frame; i++)
			sum += r->pending[i] < 0 ? -r->pending[i] : r->pending[i];
		if (sum / r->frame < r->threshold)
			r->silent += r->frame;
		else
			r->silent = 0;
		if (sf_write_short(r->sf, r->pending, r->frame) != r->frame && !r->write_failed) {
			px_log_warning("Record on %s: write error: %s", px_channel_name(r->ch),
				       sf_strerror(r->sf));
			r->write_failed = true;
		}
		r->written += r->frame;
		r->npending = 0;
	}
}

/* Everything the sink holds, into the file; samples taken. */
static size_t drain(struct recording *r, px_sink *k)
{
	int16_t buf[1024];
	size_t total = 0, got;

	while ((got = px_sink_read(k, buf, sizeof(buf))) > 0) {
		put_frames(r, buf, got / 2);
		total += got / 2;
	}
	return total;
}

static void put_silence(struct recording *r, size_t samples)
{
	static const int16_t zeros[480];

	while (samples) {
		size_t k = samples < 480 ? samples : 480;
		put_frames(r, zeros, k);
		samples -= k;
	}
}

struct record_args {
	const char *file;
	double silence_s;
	double max_s;
	bool skip, quiet, any_digit;
};

static const char *record_loop(struct recording *r, px_sink *k, const struct record_args *a)
{
	long long start = now_ms(), last_audio = start;
	sf_count_t max = a->max_s > 0 ? (sf_count_t)(a->max_s * r->rate) : 0;
	sf_count_t silence = a->silence_s > 0 ? (sf_count_t)(a->silence_s * r->rate) : 0;

	for (;;) {
		struct px_channel_event ev;

		if (px_channel_wait_event(r->ch, POLL_MS, &ev)) {
			if (ev.type == PX_EVENT_HANGUP || ev.type == PX_EVENT_REDIRECT) {
				drain(r, k);
				return "HANGUP";
			}
			if (ev.type == PX_EVENT_DTMF &&
			    (ev.digit == '#' || (a->any_digit && ev.digit))) {
				drain(r, k);
				return "DTMF";
			}
		}
		if (gone(r->ch)) {
			drain(r, k);
			return "HANGUP";
		}
		long long now = now_ms();
		if (drain(r, k))
			last_audio = now;
		else if (now - last_audio >= STARVE_MS) {
			/* The far end sends nothing: keep time with silence. */
			sf_count_t due = (sf_count_t)((now - start) * (long long)r->rate / 1000);
			if (due > r->written + r->npending)
				put_silence(r, (size_t)(due - r->written - r->npending));
			last_audio = now;
		}
		if (silence && r->silent >= silence) {
			/* Keep a little of the silence; the rest goes. */
			sf_count_t keep = r->written - r->silent + r->rate * KEEP_SILENCE_MS / 1000;
			if (keep < r->written) {
				sf_command(r->sf, SFC_FILE_TRUNCATE, &keep, sizeof(keep));
				r->written = keep;
			}
			r->npending = 0;
			return "SILENCE";
		}
		if (max && r->written >= max) {
			if (r->written > max) {
				sf_command(r->sf, SFC_FILE_TRUNCATE, &max, sizeof(max));
				r->written = max;
			}
			r->npending = 0;
			return "TIMEOUT";
		}
		if (r->write_failed)
			return "ERROR";
	}
}

static int parse_args(char *copy, struct record_args *a)
{
	char *argv[4], *end;
	int argc = px_app_split_args(copy, argv, 4);

	memset(a, 0, sizeof(*a));
	a->file = argc > 0 ? px_app_trim(argv[0]) : "";
	if (!*a->file) {
		px_log_warning("Record requires an argument: filename.wav[,silence[,maxduration"
			       "[,options]]]");
		return -1;
	}
	if (argc > 1 && *px_app_trim(argv[1])) {
		a->silence_s = strtod(px_app_trim(argv[1]), &end);
		if (*end || a->silence_s < 0) {
			px_log_warning("Record: silence '%s' is not a number of seconds", argv[1]);
			return -1;
		}
	}
	if (argc > 2 && *px_app_trim(argv[2])) {
		a->max_s = strtod(px_app_trim(argv[2]), &end);
		if (*end || a->max_s < 0) {
			px_log_warning("Record: maxduration '%s' is not a number of seconds",
				       argv[2]);
			return -1;
		}
	}
	for (const char *o = argc > 3 ? argv[3] : ""; *o; o++) {
		switch (*o) {
		case 's':
			a->skip = true;
			break;
		case 'q':
			a->quiet = true;
			break;
		case 'y':
			a->any_digit = true;
			break;
		case 'k': /* keep on hangup: we always keep */
			break;
		default:
			if (!isspace((unsigned char)*o))
				px_log_warning("Record: unknown option '%c' (s, q, y, k)", *o);
		}
	}
	return 0;
}

static int record_exec(px_channel *ch, const char *data)
{
	char *copy = strdup(data ? data : "");
	char path[PATH_MAX], base[PATH_MAX];
	struct record_args a;
	struct recording r = {.ch = ch};
	struct px_rtp_codec codec;
	const char *status = "ERROR";
	px_sink *sink = NULL;
	px_err err = {""};
	px_rtp *rtp;
	SF_INFO info;
	int rc = 0;

	if (!copy)
		return -1;
	if (parse_args(copy, &a) < 0)
		goto out;
	if (px_channel_state(ch) != PX_STATE_UP) {
		if (a.skip) {
			status = "SKIP";
			goto out;
		}
		if (px_channel_answer(ch) < 0) {
			rc = -1;
			goto out;
		}
	}
	if (record_path(a.file, path, sizeof(path), base, sizeof(base), &err) < 0) {
		px_log_warning("Record on %s refused: %s", px_channel_name(ch), err.msg);
		goto out;
	}
	rtp = px_channel_rtp(ch);
	if (rtp)
		px_rtp_get_codec(rtp, &codec);
	if (!rtp || !codec.format) {
		px_log_warning("Record: %s has no media session or codec", px_channel_name(ch));
		goto out;
	}
	r.rate = codec.format->sample_rate >= 16000 ? 16000 : 8000;
	r.frame = r.rate / 1000 * FRAME_MS;
	pthread_rwlock_rdlock(&settings_lock);
	r.threshold = (int)settings.silence_threshold;
	pthread_rwlock_unlock(&settings_lock);

	if (!a.quiet) {
		int b = px_play_file(ch, "beep", NULL, &err);
		if (b == PX_PLAY_HANGUP) {
			status = "HANGUP";
			rc = -1;
			goto out;
		}
		if (b < 0)
			px_debug(1, "Record: no beep for %s: %s", px_channel_name(ch), err.msg);
	}
	memset(&info, 0, sizeof(info));
	info.samplerate = (int)r.rate;
	info.channels = 1;
	info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
	r.sf = sf_open(path, SFM_WRITE, &info);
	if (!r.sf) {
		px_log_warning("Record on %s: cannot write %s: %s", px_channel_name(ch), path,
			       sf_strerror(NULL));
		goto out;
	}
	/* The header follows every write: the file is valid at any moment. */
	sf_command(r.sf, SFC_SET_UPDATE_HEADER_AUTO, NULL, SF_TRUE);
	if (px_sink_new_buffer(px_format_find(r.rate == 16000 ? "slin16" : "slin"), RING_MS, &sink,
			       &err) < 0 ||
	    px_rtp_attach_sink(rtp, sink, &err) < 0) {
		px_log_warning("Record on %s: %s", px_channel_name(ch), err.msg);
		sf_close(r.sf);
		unlink(path);
		goto out;
	}
	px_channel_var_set(ch, "RECORDED_FILE", base);
	px_verbose(3, "%s: recording %s (%u Hz)", px_channel_name(ch), path, r.rate);
	status = record_loop(&r, sink, &a);
	px_rtp_detach_sink(rtp);
	if (!strcmp(status, "DTMF") || !strcmp(status, "HANGUP")) {
		/* What came before the end, to the last sample. */
		drain(&r, sink);
		if (r.npending && sf_write_short(r.sf, r.pending, r.npending) == r.npending)
			r.written += r.npending;
	}
	if (!strcmp(status, "HANGUP"))
		rc = -1;
	sf_close(r.sf);
	px_verbose(3, "%s: recorded %s: %.2f s, %s", px_channel_name(ch), path,
		   (double)r.written / r.rate, status);
out:
	px_sink_unref(sink);
	px_channel_var_set(ch, "RECORD_STATUS", status);
	free(copy);
	return rc;
}

static const struct px_app record_app = {
	.name = "Record",
	.synopsis = "Record the caller to a file",
	.syntax = "Record(filename.wav[,silence[,maxduration[,options]]])",
	.description =
		"Records what the caller says to a WAV file (16-bit, 8 kHz; 16 kHz when the\n"
		"call's codec is wideband), after a beep. A relative filename is under\n"
		"record.conf's record_dir; an absolute one must be inside it, and a name\n"
		"with '..' or one that leads elsewhere through a link is refused\n"
		"(RECORD_STATUS=ERROR and a warning). Missing directories below record_dir\n"
		"are made. '%d' in the name becomes the first number that makes a new file.\n"
		"  silence      stop after this many seconds of silence (0: never); the\n"
		"               silence is cut from the file but for 0.2 s\n"
		"  maxduration  stop after this many seconds of recording (0: no limit)\n"
		"Options:\n"
		"  s  skip: do nothing when the call is not answered (RECORD_STATUS=SKIP)\n"
		"  q  quiet: no beep\n"
		"  y  any digit stops the recording (else only #)\n"
		"  k  keep the file when the caller hangs up (always done)\n"
		"An unanswered call is answered first. The file is complete and valid\n"
		"however recording stops, a hangup included.\n"
		"Sets RECORDED_FILE (the file's path without .wav) and RECORD_STATUS:\n"
		"DTMF, SILENCE, TIMEOUT, HANGUP, SKIP or ERROR.",
	.exec = record_exec,
};

static int record_load(px_module *self)
{
	px_err err = {""};

	if (configure(&err) < 0) {
		px_log_error("app_record: %s", err.msg);
		return -1;
	}
	if (px_app_register(self, &record_app, &err) < 0) {
		px_log_error("app_record: %s", err.msg);
		px_config_options_free(record_options, NOPTIONS, &settings);
		return -1;
	}
	return 0;
}

static int record_unload(px_module *self)
{
	(void)self;
	px_app_unregister(&record_app);
	pthread_rwlock_wrlock(&settings_lock);
	px_config_options_free(record_options, NOPTIONS, &settings);
	memset(&settings, 0, sizeof(settings));
	pthread_rwlock_unlock(&settings_lock);
	return 0;
}

static int record_reload(px_module *self)
{
	px_err err = {""};

	(void)self;
	if (configure(&err) < 0) {
		px_log_error("app_record: %s; the settings stay as they were", err.msg);
		return -1;
	}
	return 0;
}

PX_MODULE(.name = "app_record", .description = "Record: record the caller to a WAV file",
	  .kind = PX_MODULE_APPLICATION, .load = record_load, .unload = record_unload,
	  .reload = record_reload);
