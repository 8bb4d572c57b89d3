/*
 * Unit tests of the sound layer (core/sound.c): which file variant is
 * chosen for each codec, how a prompt is found across the configured
 * directories and languages (and what is refused: '..', unknown keys in
 * sounds.conf, an empty directory list), and the readers: WAV files made
 * here with libsndfile at several rates and channel counts (mixed down,
 * kept at 8/16/48 kHz, resampled otherwise, with the expected length), a
 * corrupt and an empty WAV, and a raw G.711 file. Files live in a fresh
 * temporary directory removed at the end.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <sndfile.h>

#include <plexus/codec.h>
#include <plexus/config.h>
#include <plexus/sound.h>

#include "codec_internal.h"
#include "loader.h"
#include "log_internal.h"

static char dir[256];

/* Formats that only the variant choice reads (no codec module needed). */
static const struct px_format fake_g722 = {.name = "g722",
					   .encoding = "G722",
					   .sample_rate = 16000,
					   .rtp_clock = 8000,
					   .static_pt = 9};
static const struct px_format fake_opus = {.name = "opus",
					   .encoding = "opus",
					   .sample_rate = 48000,
					   .rtp_clock = 48000,
					   .static_pt = -1};

static void write_file(const char *rel, const void *data, size_t len)
{
	char path[PATH_MAX], sub[PATH_MAX];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	snprintf(sub, sizeof(sub), "%s", path);
	for (char *p = sub + strlen(dir) + 1; *p; p++) {
		if (*p == '/') {
			*p = '\0';
			mkdir(sub, 0755);
			*p = '/';
		}
	}
	f = fopen(path, "wb");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	if (len)
		CU_ASSERT_EQUAL(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* A WAV of seconds of a 440 Hz tone, the same on every channel. */
static void write_wav(const char *rel, int rate, int channels, double seconds)
{
	char path[PATH_MAX];
	SF_INFO info = {.samplerate = rate,
			.channels = channels,
			.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
	SNDFILE *sf;
	sf_count_t frames = (sf_count_t)(rate * seconds);
	short *buf = calloc((size_t)frames * (size_t)channels, sizeof(short));

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	write_file(rel, "", 0);
	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	sf = sf_open(path, SFM_WRITE, &info);
	CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
	for (sf_count_t i = 0; i < frames; i++)
		for (int c = 0; c < channels; c++)
			buf[i * channels + c] =
				(short)(8000 * sin(2 * M_PI * 440 * (double)i / rate));
	CU_ASSERT_EQUAL(sf_writef_short(sf, buf, frames), frames);
	sf_close(sf);
	free(buf);
}

static int configure(const char *text)
{
	px_config *cfg = NULL;
	px_err err = {""};
	int rc;

	if (px_config_load_string("sounds.conf", text, &cfg, &err) < 0) {
		fprintf(stderr, "sounds.conf: %s\n", err.msg);
		return -1;
	}
	rc = px_sound_configure(cfg, &err);
	px_config_unref(cfg);
	return rc;
}

/* ---------------------------------------------------------------- tests */

static void test_variants(void)
{
	const char *exts[8];
	int n;

	n = px_sound_variants(px_format_find("ulaw"), exts, 8);
	CU_ASSERT(n >= 2);
	CU_ASSERT_STRING_EQUAL(exts[0], "ulaw");
	CU_ASSERT_STRING_EQUAL(exts[1], "wav");
	n = px_sound_variants(px_format_find("alaw"), exts, 8);
	CU_ASSERT_STRING_EQUAL(exts[0], "alaw");
	n = px_sound_variants(&fake_g722, exts, 8);
	CU_ASSERT_STRING_EQUAL(exts[0], "sln16");
	CU_ASSERT_STRING_EQUAL(exts[1], "wav");
	n = px_sound_variants(&fake_opus, exts, 8);
	CU_ASSERT_STRING_EQUAL(exts[0], "sln16");
	n = px_sound_variants(NULL, exts, 8);
	CU_ASSERT_STRING_EQUAL(exts[0], "wav");
	CU_ASSERT_EQUAL(px_sound_variants(px_format_find("ulaw"), exts, 1), 1);
	(void)n;
}

static void test_find(void)
{
	char text[2 * PATH_MAX], path[PATH_MAX], want[PATH_MAX];
	px_err err = {""};
	const struct px_format *ulaw = px_format_find("ulaw"), *alaw = px_format_find("alaw");

	write_file("en/hello.ulaw", "x", 1);
	write_file("en/hello.wav", "x", 1);
	write_file("hello.sln16", "xx", 2);
	write_file("fr/only-french.wav", "x", 1);
	write_file("en/digits/5.alaw", "x", 1);
	snprintf(text, sizeof(text), "[general]\ndirectories = %s/nowhere, %s\nlanguage = en\n",
		 dir, dir);
	CU_ASSERT_EQUAL_FATAL(configure(text), 0);

	/* The codec's own variant first, then WAV. */
	CU_ASSERT_EQUAL(px_sound_find("hello", "en", ulaw, path, sizeof(path), &err), 0);
	snprintf(want, sizeof(want), "%s/en/hello.ulaw", dir);
	CU_ASSERT_STRING_EQUAL(path, want);
	CU_ASSERT_EQUAL(px_sound_find("hello", NULL, alaw, path, sizeof(path), &err), 0);
	snprintf(want, sizeof(want), "%s/en/hello.wav", dir);
	CU_ASSERT_STRING_EQUAL(path, want);
	/* G.722: the language folder has no .sln16, but its WAV comes
	 * before the .sln16 of the directory itself. */
	CU_ASSERT_EQUAL(px_sound_find("hello", "en", &fake_g722, path, sizeof(path), &err), 0);
	CU_ASSERT_STRING_EQUAL(path, want);
	/* Another language: its folder has nothing, the directory has the sln16. */
	CU_ASSERT_EQUAL(px_sound_find("hello", "de", ulaw, path, sizeof(path), &err), 0);
	snprintf(want, sizeof(want), "%s/hello.sln16", dir);
	CU_ASSERT_STRING_EQUAL(path, want);
	/* Folders in names; only the alaw variant exists: PCMU still gets it. */
	CU_ASSERT_EQUAL(px_sound_find("digits/5", "en", ulaw, path, sizeof(path), &err), 0);
	snprintf(want, sizeof(want), "%s/en/digits/5.alaw", dir);
	CU_ASSERT_STRING_EQUAL(path, want);
	/* The language of another folder is not looked into. */
	CU_ASSERT_EQUAL(px_sound_find("only-french", "en", ulaw, path, sizeof(path), &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "only-french"));
	CU_ASSERT_EQUAL(px_sound_find("only-french", "fr", ulaw, path, sizeof(path), &err), 0);
	/* With an extension: that file only. */
	CU_ASSERT_EQUAL(px_sound_find("hello.wav", "en", ulaw, path, sizeof(path), &err), 0);
	CU_ASSERT_EQUAL(px_sound_find("hello.alaw", "en", ulaw, path, sizeof(path), &err), -1);
	/* Absolute paths, with and without extension. */
	snprintf(want, sizeof(want), "%s/en/hello", dir);
	CU_ASSERT_EQUAL(px_sound_find(want, "en", ulaw, path, sizeof(path), &err), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(path, "hello.ulaw"));
	snprintf(want, sizeof(want), "%s/en/hello.wav", dir);
	CU_ASSERT_EQUAL(px_sound_find(want, "en", ulaw, path, sizeof(path), &err), 0);
	CU_ASSERT_STRING_EQUAL(path, want);
	snprintf(want, sizeof(want), "%s/en/nothing.wav", dir);
	CU_ASSERT_EQUAL(px_sound_find(want, "en", ulaw, path, sizeof(path), &err), -1);

	/* Missing, escaping, empty. */
	CU_ASSERT_EQUAL(px_sound_find("no-such-prompt", "en", ulaw, path, sizeof(path), &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no-such-prompt not found"));
	CU_ASSERT_EQUAL(px_sound_find("../en/hello", "en", ulaw, path, sizeof(path), &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ".."));
	CU_ASSERT_EQUAL(px_sound_find("", "en", ulaw, path, sizeof(path), &err), -1);
}

static void test_bad_configuration(void)
{
	px_config *cfg = NULL;
	px_err err = {""};
	char path[PATH_MAX];

	CU_ASSERT_EQUAL_FATAL(
		px_config_load_string("sounds.conf", "[general]\nbogus = 1\n", &cfg, &err), 0);
	CU_ASSERT_EQUAL(px_sound_configure(cfg, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "sounds.conf:2"));
	px_config_unref(cfg);
	CU_ASSERT_EQUAL_FATAL(
		px_config_load_string("sounds.conf", "[general]\nlanguage = ../x\n", &cfg, &err),
		0);
	CU_ASSERT_EQUAL(px_sound_configure(cfg, &err), -1);
	px_config_unref(cfg);
	/* The running settings were kept: hello is still found. */
	CU_ASSERT_EQUAL(
		px_sound_find("hello", "en", px_format_find("ulaw"), path, sizeof(path), &err), 0);
}

/* Read everything: the sample count (bytes / sample size). */
static long read_all(px_sound *s, int16_t *first, size_t nfirst)
{
	unsigned char buf[1000];
	long total = 0;
	px_err err = {""};
	ssize_t n;

	while ((n = px_sound_read(s, buf, sizeof(buf), &err)) > 0) {
		if (first && total == 0)
			memcpy(first, buf, nfirst * 2 < (size_t)n ? nfirst * 2 : (size_t)n);
		total += n;
	}
	CU_ASSERT_EQUAL(n, 0);
	return total;
}

static void test_wav_reader(void)
{
	char path[PATH_MAX];
	px_sound *s = NULL;
	px_err err = {""};
	const struct px_format *ulaw = px_format_find("ulaw");
	int16_t first[8];
	long bytes;

	/* 16 kHz mono: kept at 16 kHz, every sample. */
	write_wav("w16.wav", 16000, 1, 0.5);
	snprintf(path, sizeof(path), "%s/w16.wav", dir);
	CU_ASSERT_EQUAL_FATAL(px_sound_open(path, ulaw, &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(px_sound_format(s)->name, "slin16");
	CU_ASSERT_EQUAL(px_sound_length_ms(s), 500);
	bytes = read_all(s, first, 8);
	CU_ASSERT_EQUAL(bytes, 8000 * 2);
	CU_ASSERT_EQUAL(first[0], 0);
	CU_ASSERT(first[2] > 2000); /* the tone's rise */
	px_sound_close(s);

	/* 44.1 kHz stereo for PCMU: mixed down and resampled to 8 kHz. */
	write_wav("w44.wav", 44100, 2, 1.0);
	snprintf(path, sizeof(path), "%s/w44.wav", dir);
	CU_ASSERT_EQUAL_FATAL(px_sound_open(path, ulaw, &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(px_sound_format(s)->name, "slin");
	CU_ASSERT_EQUAL(px_sound_length_ms(s), 1000);
	bytes = read_all(s, NULL, 0);
	CU_ASSERT(bytes / 2 > 7900 && bytes / 2 < 8100);
	px_sound_close(s);

	/* 22.05 kHz, 3 channels, for a 48 kHz codec: resampled to 48 kHz. */
	write_wav("w22.wav", 22050, 3, 0.25);
	snprintf(path, sizeof(path), "%s/w22.wav", dir);
	CU_ASSERT_EQUAL_FATAL(px_sound_open(path, &fake_opus, &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(px_sound_format(s)->name, "slin48");
	bytes = read_all(s, NULL, 0);
	CU_ASSERT(bytes / 2 > 11900 && bytes / 2 < 12100);
	px_sound_close(s);

	/* 48 kHz: kept. */
	write_wav("w48.wav", 48000, 1, 0.1);
	snprintf(path, sizeof(path), "%s/w48.wav", dir);
	CU_ASSERT_EQUAL_FATAL(px_sound_open(path, ulaw, &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(px_sound_format(s)->name, "slin48");
	CU_ASSERT_EQUAL(read_all(s, NULL, 0), 4800 * 2);
	px_sound_close(s);
}

static void test_bad_files(void)
{
	static const char corrupt[] = "RIFF\x24\x00\x00\x00WAVEjunkjunkjunkjunkjunkjunkjunk";
	char path[PATH_MAX];
	px_sound *s = NULL;
	px_err err = {""};
	const struct px_format *ulaw = px_format_find("ulaw");

	write_file("corrupt.wav", corrupt, sizeof(corrupt) - 1);
	snprintf(path, sizeof(path), "%s/corrupt.wav", dir);
	CU_ASSERT_EQUAL(px_sound_open(path, ulaw, &s, &err), -1);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "corrupt.wav"));

	write_file("empty.wav", "", 0);
	snprintf(path, sizeof(path), "%s/empty.wav", dir);
	CU_ASSERT_EQUAL(px_sound_open(path, ulaw, &s, &err), -1);

	snprintf(path, sizeof(path), "%s/absent.ulaw", dir);
	CU_ASSERT_EQUAL(px_sound_open(path, ulaw, &s, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "absent.ulaw"));

	snprintf(path, sizeof(path), "%s/file.mp3", dir);
	CU_ASSERT_EQUAL(px_sound_open(path, ulaw, &s, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unknown kind"));
}

static void test_raw_reader(void)
{
	unsigned char audio[801]; /* 100 ms and a stray byte */
	char path[PATH_MAX];
	px_sound *s = NULL;
	px_err err = {""};

	memset(audio, 0xff, sizeof(audio));
	write_file("raw.ulaw", audio, sizeof(audio));
	snprintf(path, sizeof(path), "%s/raw.ulaw", dir);
	CU_ASSERT_EQUAL_FATAL(px_sound_open(path, px_format_find("alaw"), &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(px_sound_format(s)->name, "ulaw");
	CU_ASSERT_EQUAL(px_sound_length_ms(s), 100);
	CU_ASSERT_EQUAL(read_all(s, NULL, 0), 801);
	px_sound_close(s);

	write_file("raw.sln16", audio, 321); /* an odd byte is not a sample */
	snprintf(path, sizeof(path), "%s/raw.sln16", dir);
	CU_ASSERT_EQUAL_FATAL(px_sound_open(path, NULL, &s, &err), 0);
	CU_ASSERT_STRING_EQUAL(px_sound_format(s)->name, "slin16");
	CU_ASSERT_EQUAL(read_all(s, NULL, 0), 320);
	px_sound_close(s);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{"variant choice", test_variants},
		{"finding prompts", test_find},
		{"bad sounds.conf", test_bad_configuration},
		{"WAV reader", test_wav_reader},
		{"corrupt and missing files", test_bad_files},
		{"raw reader", test_raw_reader},
	};
	px_err err = {""};
	CU_pSuite suite;
	unsigned failures;
	char cmd[PATH_MAX + 16];

	px_log_init();
	snprintf(dir, sizeof(dir), "%s/test_sound.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir) || px_codec_init(&err) < 0 ||
	    px_loader_init(PX_MODULES_BUILDDIR, &err) < 0 ||
	    px_loader_load("codec_ulaw", &err) < 0 || px_loader_load("codec_alaw", &err) < 0) {
		fprintf(stderr, "test_sound: cannot start: %s %s\n", err.msg, strerror(errno));
		return 1;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("sound", NULL, NULL);
	for (size_t i = 0; suite && i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].func))
			suite = NULL;
	if (!suite) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	px_loader_shutdown();
	px_codec_shutdown();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "test_sound: could not remove %s\n", dir);
	return failures != 0;
}
