/*
 * The registry of formats and translators (plexus/codec.h): who registered
 * what, the cost of each translator measured when it is registered, the
 * matrix of cheapest paths rebuilt after every change, the translation
 * paths that media sessions run (a chain of translator states and a linear
 * buffer before the encoder, all allocated when the path is made), and the
 * console's "core show translation" and "core show codecs".
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <plexus/cli.h>
#include <plexus/codec.h>
#include <plexus/log.h>

#include "codec_internal.h"
#include "thread_internal.h"
#include "loader.h"

#define MAX_FORMATS     32
#define MAX_TRANSLATORS 128
#define MAX_STEPS       6
#define NO_PATH         (-1)
/* Scratch between path steps: 120 ms at 48 kHz is the largest decoder
 * output (an Opus packet), with room for resampling it up. */
#define SCRATCH_BYTES 32768
/* Linear audio waiting for the encoder: 200 ms at 48 kHz. */
#define ACC_SAMPLES 9600
/* Each step of a path costs a copy and a little delay; with it, a direct
 * resampler beats two chained ones that measured slightly less (and lose
 * bandwidth on the way). Only used to choose paths, never shown. */
#define STEP_PENALTY 10000
/* A step whose output has a lower sample rate than its input throws away
 * bandwidth. Paths are compared by this first (quality before cost), so a
 * path that keeps wideband audio is never traded for a narrowband one that
 * measured cheaper (slin16 -> opus straight, not through slin), and a path
 * that must narrow does so once. Never shown either. */
#define NARROWING_PENALTY 1000000
/* A cost never measured (a decoder whose encoder is not there). */
#define UNMEASURED_COST 100000

struct format_entry {
	const struct px_format *f;
	px_module *owner;
	px_module_resource *res;
};

struct trans_entry {
	const struct px_translator *t;
	const struct px_format *src, *dst;
	px_module *owner;
	px_module_resource *res;
	int cost; /* µs per second of audio */
	int rank; /* cost with the penalties above: what paths are chosen by */
};

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
/* Guarded by lock. Entries are compacted on removal. */
static struct format_entry formats[MAX_FORMATS];
static int nformats;
static struct trans_entry *trans[MAX_TRANSLATORS];
static int ntrans;
/* The matrix, indexed like formats[]: total cost, rank, steps, first
 * translator. */
static int path_cost[MAX_FORMATS][MAX_FORMATS];
static int path_rank[MAX_FORMATS][MAX_FORMATS];
static int path_steps[MAX_FORMATS][MAX_FORMATS];
static int path_next[MAX_FORMATS][MAX_FORMATS]; /* index in trans[] */

static int format_index(const struct px_format *f)
{
	for (int i = 0; i < nformats; i++)
		if (formats[i].f == f)
			return i;
	return -1;
}

static const struct px_format *find_locked(const char *name)
{
	for (int i = 0; i < nformats; i++)
		if (!strcasecmp(formats[i].f->name, name))
			return formats[i].f;
	return NULL;
}

/* Floyd-Warshall over the direct translators; lock held for writing.
 * Paths compare by rank: measured cost plus STEP_PENALTY per step plus
 * NARROWING_PENALTY per step that lowers the sample rate; on equal rank the
 * shorter one wins. */
static void rebuild_locked(void)
{
	for (int i = 0; i < nformats; i++)
		for (int j = 0; j < nformats; j++) {
			path_cost[i][j] = i == j ? 0 : NO_PATH;
			path_rank[i][j] = 0;
			path_steps[i][j] = 0;
			path_next[i][j] = -1;
		}
	for (int k = 0; k < ntrans; k++) {
		int s = format_index(trans[k]->src), d = format_index(trans[k]->dst);
		if (s < 0 || d < 0 || s == d)
			continue;
		if (path_cost[s][d] == NO_PATH || trans[k]->rank < path_rank[s][d]) {
			path_cost[s][d] = trans[k]->cost;
			path_rank[s][d] = trans[k]->rank;
			path_steps[s][d] = 1;
			path_next[s][d] = k;
		}
	}
	for (int m = 0; m < nformats; m++)
		for (int i = 0; i < nformats; i++) {
			if (i == m || path_cost[i][m] == NO_PATH)
				continue;
			for (int j = 0; j < nformats; j++) {
				if (j == i || j == m || path_cost[m][j] == NO_PATH)
					continue;
				int st = path_steps[i][m] + path_steps[m][j];
				if (st > MAX_STEPS)
					continue;
				int rank = path_rank[i][m] + path_rank[m][j];
				if (path_cost[i][j] == NO_PATH || rank < path_rank[i][j] ||
				    (rank == path_rank[i][j] && st < path_steps[i][j])) {
					path_cost[i][j] = path_cost[i][m] + path_cost[m][j];
					path_rank[i][j] = rank;
					path_steps[i][j] = st;
					path_next[i][j] = path_next[i][m];
				}
			}
		}
}

/* ---------------------------------------------------------------- formats */

static void format_release(void *obj)
{
	const struct px_format *f = obj;

	pthread_rwlock_wrlock(&lock);
	int i = format_index(f);
	if (i >= 0) {
		memmove(&formats[i], &formats[i + 1],
			(size_t)(nformats - i - 1) * sizeof(formats[0]));
		nformats--;
		rebuild_locked();
	}
	pthread_rwlock_unlock(&lock);
}

int px_format_register(px_module *owner, const struct px_format *f, px_err *err)
{
	if (!f->name || !f->sample_rate || !f->rtp_clock)
		return px_err_set(err, "format %s is incomplete", f->name ? f->name : "(null)");
	pthread_rwlock_wrlock(&lock);
	if (find_locked(f->name)) {
		pthread_rwlock_unlock(&lock);
		return px_err_set(err, "format %s is already registered", f->name);
	}
	if (nformats == MAX_FORMATS) {
		pthread_rwlock_unlock(&lock);
		return px_err_set(err, "format %s: too many formats", f->name);
	}
	formats[nformats].f = f;
	formats[nformats].owner = owner;
	formats[nformats].res = px_module_track(owner, "format", format_release, (void *)f);
	nformats++;
	rebuild_locked();
	pthread_rwlock_unlock(&lock);
	return 0;
}

void px_format_unregister(const struct px_format *f)
{
	px_module_resource *res = NULL;

	pthread_rwlock_wrlock(&lock);
	int i = format_index(f);
	if (i >= 0) {
		res = formats[i].res;
		memmove(&formats[i], &formats[i + 1],
			(size_t)(nformats - i - 1) * sizeof(formats[0]));
		nformats--;
		rebuild_locked();
	}
	pthread_rwlock_unlock(&lock);
	px_module_untrack(res);
}

const struct px_format *px_format_find(const char *name)
{
	const struct px_format *f;

	pthread_rwlock_rdlock(&lock);
	f = find_locked(name);
	pthread_rwlock_unlock(&lock);
	return f;
}

const struct px_format *px_format_by_encoding(const char *encoding, unsigned clock)
{
	const struct px_format *f = NULL;

	pthread_rwlock_rdlock(&lock);
	for (int i = 0; i < nformats && !f; i++)
		if (formats[i].f->encoding && !strcasecmp(formats[i].f->encoding, encoding) &&
		    formats[i].f->rtp_clock == clock)
			f = formats[i].f;
	pthread_rwlock_unlock(&lock);
	return f;
}

const struct px_format *px_format_by_static_pt(int pt)
{
	const struct px_format *f = NULL;

	if (pt < 0)
		return NULL;
	pthread_rwlock_rdlock(&lock);
	for (int i = 0; i < nformats && !f; i++)
		if (formats[i].f->static_pt == pt)
			f = formats[i].f;
	pthread_rwlock_unlock(&lock);
	return f;
}

/* ---------------------------------------------------------------- cost */

/* The calling thread's CPU time: a translator's cost is the work it does,
 * and on a busy machine wall time would add whatever ran meanwhile. */
static long long cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void px_codec_test_signal(int16_t *out, unsigned n, unsigned rate, unsigned offset)
{
	for (unsigned i = 0; i < n; i++) {
		double t = (double)(i + offset) / rate;
		out[i] = (int16_t)(8000.0 * sin(2 * M_PI * 1000.0 * t) +
				   3000.0 * sin(2 * M_PI * 440.0 * t));
	}
}

/* Time one second of audio through t, in 20 ms frames. A decoder is fed
 * what enc (an encoder of its format) makes of the test signal. */
static int measure(const struct px_translator *t, const struct px_format *src,
		   const struct px_format *dst, const struct px_translator *enc,
		   const struct px_format *enc_src)
{
	unsigned rate = src->linear ? src->sample_rate : enc ? enc_src->sample_rate : 0;
	unsigned frame = rate / 50;
	void *st = calloc(1, t->state_size ? t->state_size : 1);
	void *est = enc ? calloc(1, enc->state_size ? enc->state_size : 1) : NULL;
	int16_t pcm[960];
	uint8_t in[4096], out[SCRATCH_BYTES];
	long long spent = 0;
	int cost = UNMEASURED_COST;

	(void)dst;
	if (!rate || frame > 960 || !st || (enc && !est))
		goto out;
	if (t->open && t->open(st, NULL) < 0)
		goto out;
	if (enc && enc->open && enc->open(est, NULL) < 0) {
		if (t->close)
			t->close(st);
		goto out;
	}
	/* What reading the clock costs (a system call where the vDSO has no
	 * thread clock) is taken off, or G.711 would seem to cost twenty
	 * times what it does. */
	long long clock_cost = cpu_ns();
	for (unsigned k = 0; k < 50; k++)
		(void)cpu_ns();
	clock_cost = cpu_ns() - clock_cost;
	for (unsigned k = 0; k < 50; k++) {
		const uint8_t *p = (const uint8_t *)pcm;
		int len = (int)(frame * 2);
		px_codec_test_signal(pcm, frame, rate, k * frame);
		if (enc) {
			len = enc->run(est, (const uint8_t *)pcm, frame * 2, in, sizeof(in));
			p = in;
		}
		if (len < 0)
			break;
		long long t0 = cpu_ns();
		t->run(st, p, (size_t)len, out, sizeof(out));
		spent += cpu_ns() - t0;
	}
	cost = (int)((spent - clock_cost) / 1000);
	if (cost < 1)
		cost = 1;
	if (t->close)
		t->close(st);
	if (enc && enc->close)
		enc->close(est);
out:
	free(st);
	free(est);
	return cost;
}

/* An encoder to the format f, and its source; lock held. */
static const struct trans_entry *encoder_for(const struct px_format *f)
{
	for (int k = 0; k < ntrans; k++)
		if (trans[k]->dst == f && trans[k]->src->linear)
			return trans[k];
	return NULL;
}

/* ---------------------------------------------------------------- translators */

static void trans_release(void *obj)
{
	struct trans_entry *e = obj;

	pthread_rwlock_wrlock(&lock);
	for (int k = 0; k < ntrans; k++) {
		if (trans[k] == e) {
			memmove(&trans[k], &trans[k + 1],
				(size_t)(ntrans - k - 1) * sizeof(trans[0]));
			ntrans--;
			break;
		}
	}
	rebuild_locked();
	pthread_rwlock_unlock(&lock);
	free(e);
}

int px_translator_register(px_module *owner, const struct px_translator *t, px_err *err)
{
	struct trans_entry *e;
	const struct trans_entry *enc = NULL;

	if (!t->name || !t->src || !t->dst || !t->run)
		return px_err_set(err, "translator %s is incomplete", t->name ? t->name : "(null)");
	e = calloc(1, sizeof(*e));
	if (!e)
		return px_err_set(err, "out of memory");
	pthread_rwlock_rdlock(&lock);
	e->src = find_locked(t->src);
	e->dst = find_locked(t->dst);
	if (e->src && !e->src->linear)
		enc = encoder_for(e->src);
	const struct px_translator *enc_t = enc ? enc->t : NULL;
	const struct px_format *enc_src = enc ? enc->src : NULL;
	pthread_rwlock_unlock(&lock);
	if (!e->src || !e->dst) {
		const char *missing = e->src ? t->dst : t->src;
		free(e);
		return px_err_set(err, "translator %s: format %s is not registered", t->name,
				  missing);
	}
	e->t = t;
	e->owner = owner;
	/* Measured outside the lock: it takes a few milliseconds. The least of
	 * three runs, so that a preemption on a busy machine is not taken for
	 * the translator's cost. */
	e->cost = measure(t, e->src, e->dst, enc_t, enc_src);
	for (int run = 0; run < 2; run++) {
		int again = measure(t, e->src, e->dst, enc_t, enc_src);
		if (again < e->cost)
			e->cost = again;
	}
	e->rank = e->cost + STEP_PENALTY +
		  (e->dst->sample_rate < e->src->sample_rate ? NARROWING_PENALTY : 0);
	pthread_rwlock_wrlock(&lock);
	for (int k = 0; k < ntrans; k++) {
		if (trans[k]->t == t || !strcasecmp(trans[k]->t->name, t->name)) {
			pthread_rwlock_unlock(&lock);
			free(e);
			return px_err_set(err, "translator %s is already registered", t->name);
		}
	}
	if (ntrans == MAX_TRANSLATORS) {
		pthread_rwlock_unlock(&lock);
		free(e);
		return px_err_set(err, "translator %s: too many translators", t->name);
	}
	trans[ntrans++] = e;
	e->res = px_module_track(owner, "translator", trans_release, e);
	rebuild_locked();
	pthread_rwlock_unlock(&lock);
	px_debug(1, "translator %s (%s -> %s): %d us per second of audio", t->name, t->src, t->dst,
		 e->cost);
	return 0;
}

void px_translator_unregister(const struct px_translator *t)
{
	struct trans_entry *found = NULL;

	pthread_rwlock_wrlock(&lock);
	for (int k = 0; k < ntrans; k++) {
		if (trans[k]->t == t) {
			found = trans[k];
			memmove(&trans[k], &trans[k + 1],
				(size_t)(ntrans - k - 1) * sizeof(trans[0]));
			ntrans--;
			break;
		}
	}
	rebuild_locked();
	pthread_rwlock_unlock(&lock);
	if (found) {
		px_module_untrack(found->res);
		free(found);
	}
}

int px_translator_cost(const struct px_format *src, const struct px_format *dst, int *steps)
{
	int cost = -1;

	pthread_rwlock_rdlock(&lock);
	int s = format_index(src), d = format_index(dst);
	if (s >= 0 && d >= 0) {
		cost = path_cost[s][d];
		if (steps)
			*steps = path_steps[s][d];
	}
	pthread_rwlock_unlock(&lock);
	return cost;
}

/* The path's entries into out (lock held): the count, or -1. */
static int path_locked(const struct px_format *src, const struct px_format *dst,
		       struct trans_entry **out, int max)
{
	int s = format_index(src), d = format_index(dst), n = 0;

	if (s < 0 || d < 0 || path_cost[s][d] == NO_PATH)
		return -1;
	while (s != d) {
		int k = path_next[s][d];
		if (k < 0 || n == max)
			return -1;
		out[n++] = trans[k];
		s = format_index(trans[k]->dst);
		if (s < 0)
			return -1;
	}
	return n;
}

int px_translator_path_names(const struct px_format *src, const struct px_format *dst,
			     const char **names, int max)
{
	struct trans_entry *steps[MAX_STEPS];
	int n;

	pthread_rwlock_rdlock(&lock);
	n = path_locked(src, dst, steps, MAX_STEPS);
	for (int i = 0; i < n && i < max; i++)
		names[i] = steps[i]->t->name;
	pthread_rwlock_unlock(&lock);
	return n < max ? n : max;
}

/* ---------------------------------------------------------------- paths */

struct trans_step {
	const struct px_translator *t;
	px_module *owner;
	void *state;
	bool opened;
};

struct px_trans {
	const struct px_format *src, *dst;
	struct trans_step steps[MAX_STEPS];
	int nsteps;
	int npre; /* steps before the linear buffer; an encoder follows if npre < nsteps */
	unsigned acc_rate;
	unsigned src_rate;
	unsigned frame_samples; /* of the encoder */
	int16_t acc[ACC_SAMPLES];
	unsigned acc_len;
};

/* Between steps. A path runs on one thread at a time and never keeps audio
 * here between calls, so the scratch is the thread's, not each path's:
 * two buffers of SCRATCH_BYTES, allocated at the thread's first use. */
typedef uint8_t scratch_t[2][SCRATCH_BYTES];

static scratch_t *thread_scratch(void)
{
	return px_thread_scratch(PX_SCRATCH_CODEC, sizeof(scratch_t));
}

void px_trans_free(px_trans *t)
{
	if (!t)
		return;
	for (int i = 0; i < t->nsteps; i++) {
		if (t->steps[i].opened && t->steps[i].t->close)
			t->steps[i].t->close(t->steps[i].state);
		free(t->steps[i].state);
		if (t->steps[i].owner)
			px_module_unuse(t->steps[i].owner);
	}
	free(t);
}

int px_trans_new(const struct px_format *src, const struct px_format *dst, const char *dst_fmtp,
		 px_trans **out, px_err *err)
{
	struct trans_entry *entries[MAX_STEPS];
	px_trans *t = calloc(1, sizeof(*t));
	int n;

	if (!t)
		return px_err_set(err, "out of memory");
	t->src = src;
	t->dst = dst;
	t->src_rate = src->sample_rate;
	pthread_rwlock_rdlock(&lock);
	n = path_locked(src, dst, entries, MAX_STEPS);
	for (int i = 0; i < n; i++) {
		t->steps[i].t = entries[i]->t;
		t->steps[i].owner = entries[i]->owner;
		/* The module cannot go while a path runs its code. */
		if (entries[i]->owner)
			px_module_use(entries[i]->owner);
	}
	pthread_rwlock_unlock(&lock);
	if (n <= 0) {
		free(t);
		if (src == dst)
			return px_err_set(err, "%s to %s needs no translation", src->name,
					  dst->name);
		return px_err_set(err, "no translation path from %s to %s", src->name, dst->name);
	}
	t->nsteps = n;
	t->npre = dst->linear ? n : n - 1;
	t->acc_rate = dst->sample_rate;
	for (int i = 0; i < n; i++) {
		struct trans_step *s = &t->steps[i];
		s->state = calloc(1, s->t->state_size ? s->t->state_size : 1);
		if (!s->state) {
			px_trans_free(t);
			return px_err_set(err, "out of memory");
		}
		if (s->t->open && s->t->open(s->state, i == n - 1 ? dst_fmtp : NULL) < 0) {
			px_trans_free(t);
			return px_err_set(err, "translator %s cannot start", s->t->name);
		}
		s->opened = true;
	}
	if (t->npre < n) {
		t->frame_samples = t->steps[n - 1].t->frame_samples;
		const struct px_format *lin = px_format_find(t->steps[n - 1].t->src);
		if (lin)
			t->acc_rate = lin->sample_rate;
	}
	*out = t;
	return 0;
}

static void acc_append(px_trans *t, const int16_t *s, unsigned n)
{
	if (n > ACC_SAMPLES) {
		s += n - ACC_SAMPLES;
		n = ACC_SAMPLES;
	}
	if (t->acc_len + n > ACC_SAMPLES) {
		/* The reader fell behind: keep the newest audio. */
		unsigned drop = t->acc_len + n - ACC_SAMPLES;
		memmove(t->acc, t->acc + drop, (t->acc_len - drop) * sizeof(int16_t));
		t->acc_len -= drop;
	}
	memcpy(t->acc + t->acc_len, s, n * sizeof(int16_t));
	t->acc_len += n;
}

/* Run steps [from, npre) over in; append the linear result. */
static int run_pre(px_trans *t, int from, const uint8_t *in, size_t len)
{
	const uint8_t *cur = in;
	int which = 0;
	scratch_t *scratch = from < t->npre ? thread_scratch() : NULL;

	if (from < t->npre && !scratch)
		return -1;
	for (int i = from; i < t->npre; i++) {
		int rc = t->steps[i].t->run(t->steps[i].state, cur, len, (*scratch)[which],
					    SCRATCH_BYTES);
		if (rc < 0)
			return -1;
		cur = (*scratch)[which];
		len = (size_t)rc;
		which ^= 1;
	}
	acc_append(t, (const int16_t *)(const void *)cur, (unsigned)(len / 2));
	return 0;
}

int px_trans_write(px_trans *t, const uint8_t *in, size_t len)
{
	if (t->src->linear && len % 2)
		return -1;
	return run_pre(t, 0, in, len);
}

void px_trans_conceal(px_trans *t, unsigned samples)
{
	scratch_t *scratch;

	if (t->npre > 0 && !t->src->linear && t->steps[0].t->conceal &&
	    (scratch = thread_scratch())) {
		int rc = t->steps[0].t->conceal(t->steps[0].state, samples, (*scratch)[1],
						SCRATCH_BYTES);
		if (rc >= 0 && run_pre(t, 1, (*scratch)[1], (size_t)rc) == 0)
			return;
	}
	/* Silence, at the buffer's rate. */
	unsigned n = (unsigned)((unsigned long long)samples * t->acc_rate / t->src_rate);
	int16_t zero[480] = {0};
	while (n > 0) {
		unsigned k = n > 480 ? 480 : n;
		acc_append(t, zero, k);
		n -= k;
	}
}

void px_trans_recover(px_trans *t, const uint8_t *next, size_t len, unsigned samples)
{
	scratch_t *scratch;

	if (next && t->npre > 0 && !t->src->linear && t->steps[0].t->recover &&
	    (scratch = thread_scratch())) {
		int rc = t->steps[0].t->recover(t->steps[0].state, next, len, samples,
						 (*scratch)[1], SCRATCH_BYTES);
		if (rc > 0 && run_pre(t, 1, (*scratch)[1], (size_t)rc) == 0)
			return;
	}
	px_trans_conceal(t, samples);
}

int px_trans_read(px_trans *t, unsigned ms, uint8_t *out, size_t size)
{
	unsigned need = t->acc_rate / 1000 * ms;
	int rc;

	if (t->frame_samples && need % t->frame_samples)
		need -= need % t->frame_samples;
	if (!need || t->acc_len < need)
		return 0;
	if (t->npre == t->nsteps) {
		if (size < need * 2)
			return -1;
		memcpy(out, t->acc, need * 2);
		rc = (int)(need * 2);
	} else {
		struct trans_step *s = &t->steps[t->nsteps - 1];
		rc = s->t->run(s->state, (const uint8_t *)t->acc, need * 2, out, size);
	}
	memmove(t->acc, t->acc + need, (t->acc_len - need) * sizeof(int16_t));
	t->acc_len -= need;
	return rc;
}

unsigned px_trans_buffered(const px_trans *t)
{
	return t->acc_len;
}

/* ---------------------------------------------------------------- console */

/* "core show translation paths FORMAT": the steps from FORMAT to every
 * other format, as a path made now would take them. */
static enum px_cli_status show_paths(px_cli *cli, const char *name)
{
	pthread_rwlock_rdlock(&lock);
	const struct px_format *src = find_locked(name);
	if (!src) {
		pthread_rwlock_unlock(&lock);
		px_cli_printf(cli, "No format '%s' (see core show codecs)\n", name);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Translation paths from %s (cost in microseconds for one second)\n",
		      src->name);
	for (int j = 0; j < nformats; j++) {
		const struct px_format *dst = formats[j].f;
		struct trans_entry *steps[MAX_STEPS];
		int n;
		if (dst == src)
			continue;
		n = path_locked(src, dst, steps, MAX_STEPS);
		px_cli_printf(cli, "%8s -> %-8s ", src->name, dst->name);
		if (n <= 0) {
			px_cli_printf(cli, "no path\n");
			continue;
		}
		px_cli_printf(cli, "%7d ", path_cost[format_index(src)][j]);
		for (int i = 0; i < n; i++)
			px_cli_printf(cli, "%s%s (%s@%u -> %s@%u)", i ? ", " : "",
				      steps[i]->t->name, steps[i]->src->name,
				      steps[i]->src->sample_rate, steps[i]->dst->name,
				      steps[i]->dst->sample_rate);
		px_cli_printf(cli, "\n");
	}
	pthread_rwlock_unlock(&lock);
	return PX_CLI_SUCCESS;
}

enum px_cli_status px_codec_cmd_show_translation(px_cli *cli, int argc, char **argv)
{
	int w = 8;

	if (argc == 5 && !strcasecmp(argv[3], "paths"))
		return show_paths(cli, argv[4]);
	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	pthread_rwlock_rdlock(&lock);
	px_cli_printf(cli, "         Translation times between formats (in microseconds) for one "
			   "second of data\n");
	px_cli_printf(cli, "          Source Format (Rows) Destination Format (Columns)\n\n");
	px_cli_printf(cli, "%*s", w, "");
	for (int j = 0; j < nformats; j++)
		px_cli_printf(cli, " %*s", w, formats[j].f->name);
	px_cli_printf(cli, "\n");
	for (int i = 0; i < nformats; i++) {
		px_cli_printf(cli, "%*s", w, formats[i].f->name);
		for (int j = 0; j < nformats; j++) {
			if (i == j || path_cost[i][j] == NO_PATH)
				px_cli_printf(cli, " %*s", w, "-");
			else
				px_cli_printf(cli, " %*d", w, path_cost[i][j]);
		}
		px_cli_printf(cli, "\n");
	}
	pthread_rwlock_unlock(&lock);
	return PX_CLI_SUCCESS;
}

enum px_cli_status px_codec_cmd_show_codecs(px_cli *cli, int argc, char **argv)
{
	(void)argv;
	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	pthread_rwlock_rdlock(&lock);
	px_cli_printf(cli, "%-8s %-8s %6s %6s %-7s %-10s %s\n", "Format", "Encoding", "Rate",
		      "Clock", "Payload", "Module", "Description");
	for (int i = 0; i < nformats; i++) {
		const struct px_format *f = formats[i].f;
		char pt[16];
		if (f->static_pt >= 0)
			snprintf(pt, sizeof(pt), "%d", f->static_pt);
		else
			snprintf(pt, sizeof(pt), "%s", f->encoding ? "dynamic" : "-");
		px_cli_printf(cli, "%-8s %-8s %6u %6u %-7s %-10s %s\n", f->name,
			      f->encoding ? f->encoding : "-", f->sample_rate, f->rtp_clock, pt,
			      formats[i].owner ? px_module_name(formats[i].owner) : "core",
			      f->description ? f->description : "");
	}
	px_cli_printf(cli, "%d formats, %d translators\n", nformats, ntrans);
	pthread_rwlock_unlock(&lock);
	return PX_CLI_SUCCESS;
}

/* The encoder goes first: a decoder's cost is measured on what an encoder
 * of its format makes, and without one it would stay unmeasured. */
int px_codec_register(px_module *owner, const struct px_format *f,
		      const struct px_translator *decoder, const struct px_translator *encoder,
		      px_err *err)
{
	if (px_format_register(owner, f, err) < 0 ||
	    px_translator_register(owner, encoder, err) < 0 ||
	    px_translator_register(owner, decoder, err) < 0)
		return -1;
	return 0;
}

void px_codec_unregister(const struct px_format *f, const struct px_translator *decoder,
			 const struct px_translator *encoder)
{
	px_translator_unregister(decoder);
	px_translator_unregister(encoder);
	px_format_unregister(f);
}
