/*
 * Unit tests of the codec registry and translation paths (core/codec.c,
 * core/codec_linear.c) with the real codec modules loaded by the real
 * loader: encode -> decode round trips of a tone and of speech-like noise
 * for every codec against an SNR floor, resampler round trips, the path
 * chosen for every pair of formats (and specific multi-step ones), the
 * matrix rebuilt when a codec module unloads and loads again, a module in
 * use by a path refused unload, invalid frames refused, and packetisation
 * of the output into any ptime.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <plexus/codec.h>

#include "codec_internal.h"
#include "loader.h"
#include "log_internal.h"

#ifndef PX_MODULES_BUILDDIR
#define PX_MODULES_BUILDDIR "modules/.libs"
#endif

static const char *const codec_modules[] = {"codec_ulaw", "codec_alaw", "codec_g722", "codec_gsm",
					    "codec_opus"};
#define NCODECS (sizeof(codec_modules) / sizeof(codec_modules[0]))

static int suite_init(void)
{
	px_err err = {""};

	px_log_init();
	if (px_codec_init(&err) < 0 || px_loader_init(PX_MODULES_BUILDDIR, &err) < 0) {
		fprintf(stderr, "suite init: %s\n", err.msg);
		return -1;
	}
	for (size_t i = 0; i < NCODECS; i++)
		if (px_loader_load(codec_modules[i], &err) < 0) {
			fprintf(stderr, "suite init: %s: %s\n", codec_modules[i], err.msg);
			return -1;
		}
	return 0;
}

static int suite_cleanup(void)
{
	px_loader_shutdown();
	px_codec_shutdown();
	return 0;
}

/* Deterministic noise shaped like speech: white noise through a low-pass,
 * in syllable-like bursts. */
static void speech_like(int16_t *out, unsigned n, unsigned rate)
{
	unsigned long long x = 88172645463325252ull;
	double y = 0;

	for (unsigned i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		double white = (double)(x % 20001) - 10000.0;
		y += (white - y) * (2000.0 / rate);
		double envelope = 0.6 + 0.4 * sin(2 * M_PI * 4.0 * i / rate);
		out[i] = (int16_t)(y * 2.5 * envelope);
	}
}

/* SNR of got against ref in dB, at the delay (0..max_delay samples) that
 * fits best, over the second half of the signal (codecs settle first). */
static double snr_db(const int16_t *ref, const int16_t *got, unsigned n, unsigned max_delay)
{
	double best = -100;

	for (unsigned d = 0; d <= max_delay; d++) {
		double sig = 0, noise = 0;
		for (unsigned i = n / 2; i + d < n; i++) {
			double e = (double)got[i + d] - ref[i];
			sig += (double)ref[i] * ref[i];
			noise += e * e;
		}
		double s = noise > 0 ? 10 * log10(sig / noise) : 100;
		if (s > best)
			best = s;
	}
	return best;
}

/* Through lin -> f -> lin in 20 ms packets; returns the SNR. */
static double round_trip(const char *codec, const char *linear, bool tone)
{
	const struct px_format *f = px_format_find(codec), *lin = px_format_find(linear);
	px_trans *enc = NULL, *dec = NULL;
	px_err err = {""};
	unsigned rate, n, frame, got = 0;
	int16_t *in, *out;
	uint8_t packet[4096];
	double snr = -100;

	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	CU_ASSERT_PTR_NOT_NULL_FATAL(lin);
	rate = lin->sample_rate;
	n = rate; /* one second */
	frame = rate / 50;
	in = calloc(n, sizeof(*in));
	out = calloc(n + frame, sizeof(*out));
	CU_ASSERT_FATAL(in && out);
	if (tone)
		px_codec_test_signal(in, n, rate, 0);
	else
		speech_like(in, n, rate);
	CU_ASSERT_EQUAL_FATAL(px_trans_new(lin, f, NULL, &enc, &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_trans_new(f, lin, NULL, &dec, &err), 0);
	for (unsigned off = 0; off + frame <= n; off += frame) {
		CU_ASSERT_EQUAL(px_trans_write(enc, (const uint8_t *)(in + off), frame * 2), 0);
		/* A resampler may hold back a few samples at first. */
		int len = px_trans_read(enc, 20, packet, sizeof(packet));
		CU_ASSERT(len >= 0);
		if (len <= 0)
			continue;
		CU_ASSERT_EQUAL(px_trans_write(dec, packet, (size_t)len), 0);
		int pcm = px_trans_read(dec, 20, (uint8_t *)(out + got), (n + frame - got) * 2);
		CU_ASSERT(pcm == 0 || pcm == (int)frame * 2);
		if (pcm > 0)
			got += (unsigned)pcm / 2;
	}
	CU_ASSERT(got + 2 * frame >= n);
	if (got + 2 * frame >= n)
		snr = snr_db(in, out, got, rate / 100 * 2); /* up to 20 ms of codec delay */
	printf("\n    %s via %s, %s: SNR %.1f dB", codec, linear, tone ? "tone" : "speech-like",
	       snr);
	px_trans_free(enc);
	px_trans_free(dec);
	free(in);
	free(out);
	return snr;
}

static void test_g711_round_trip(void)
{
	CU_ASSERT(round_trip("ulaw", "slin", true) > 35);
	CU_ASSERT(round_trip("ulaw", "slin", false) > 30);
	CU_ASSERT(round_trip("alaw", "slin", true) > 35);
	CU_ASSERT(round_trip("alaw", "slin", false) > 30);
}

static void test_g722_round_trip(void)
{
	CU_ASSERT(round_trip("g722", "slin16", true) > 20);
	CU_ASSERT(round_trip("g722", "slin16", false) > 15);
}

static void test_gsm_round_trip(void)
{
	/* A vocoder: it keeps the sound, not the waveform. */
	CU_ASSERT(round_trip("gsm", "slin", true) > 5);
	CU_ASSERT(round_trip("gsm", "slin", false) > 3);
}

static void test_opus_round_trip(void)
{
	CU_ASSERT(round_trip("opus", "slin48", true) > 10);
	CU_ASSERT(round_trip("opus", "slin48", false) > 2);
}

/* The encoders and decoders at 8 and 16 kHz (straight, no resampler: see
 * "multi-step paths") keep the voice as well as the 48 kHz ones. */
static void test_opus_native_rates(void)
{
	CU_ASSERT(round_trip("opus", "slin", true) > 10);
	CU_ASSERT(round_trip("opus", "slin", false) > 2);
	CU_ASSERT(round_trip("opus", "slin16", true) > 10);
	CU_ASSERT(round_trip("opus", "slin16", false) > 2);
}

/* Lost packets at 8 kHz: concealment and FEC are asked for in 48 kHz
 * samples (the format's rate) and give the same duration at 8 kHz. */
static void test_opus_narrowband_loss(void)
{
	const struct px_format *opus = px_format_find("opus"), *slin = px_format_find("slin");
	px_trans *enc = NULL, *dec = NULL;
	px_err err = {""};
	int16_t pcm[160];
	uint8_t packet[2][1500], out[4096];
	int len[2] = {0, 0};

	CU_ASSERT_EQUAL_FATAL(px_trans_new(slin, opus, "useinbandfec=1", &enc, &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_trans_new(opus, slin, NULL, &dec, &err), 0);
	for (int k = 0; k < 2; k++) {
		px_codec_test_signal(pcm, 160, 8000, (unsigned)k * 160);
		CU_ASSERT_EQUAL(px_trans_write(enc, (const uint8_t *)pcm, sizeof(pcm)), 0);
		len[k] = px_trans_read(enc, 20, packet[k], sizeof(packet[k]));
		CU_ASSERT(len[k] > 0);
	}
	/* The first is lost: rebuilt from the second's FEC, then the second. */
	px_trans_recover(dec, packet[1], (size_t)len[1], 960);
	CU_ASSERT_EQUAL(px_trans_buffered(dec), 160);
	CU_ASSERT_EQUAL(px_trans_write(dec, packet[1], (size_t)len[1]), 0);
	CU_ASSERT_EQUAL(px_trans_buffered(dec), 320);
	/* Then two lost with nothing after them: concealed, 40 ms. */
	px_trans_conceal(dec, 1920);
	CU_ASSERT_EQUAL(px_trans_buffered(dec), 640);
	CU_ASSERT_EQUAL(px_trans_read(dec, 20, out, sizeof(out)), 320);
	px_trans_free(enc);
	px_trans_free(dec);
}

static void test_resampler_round_trips(void)
{
	static const char *const pairs[][2] = {
		{"slin", "slin16"}, {"slin", "slin48"}, {"slin16", "slin48"}};

	for (size_t i = 0; i < 3; i++) {
		/* slinX through slinY and back is a round trip of a "codec". */
		double snr = round_trip(pairs[i][1], pairs[i][0], true);
		CU_ASSERT(snr > 30);
	}
}

static void test_every_pair_has_a_path(void)
{
	static const char *const names[] = {"slin", "slin16", "slin48", "ulaw",
					    "alaw", "g722",   "gsm",    "opus"};
	const size_t n = sizeof(names) / sizeof(names[0]);

	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++) {
			const struct px_format *s = px_format_find(names[i]);
			const struct px_format *d = px_format_find(names[j]);
			const char *steps[8];
			int nsteps = -1;
			CU_ASSERT_PTR_NOT_NULL_FATAL(s);
			CU_ASSERT_PTR_NOT_NULL_FATAL(d);
			int cost = px_translator_cost(s, d, &nsteps);
			if (i == j) {
				CU_ASSERT_EQUAL(cost, 0);
				continue;
			}
			CU_ASSERT(cost > 0);
			/* Decode, at most one resampling, encode. */
			CU_ASSERT(nsteps >= 1 && nsteps <= 3);
			CU_ASSERT_EQUAL(px_translator_path_names(s, d, steps, 8), nsteps);
			/* Each path is usable. */
			px_trans *t = NULL;
			px_err err = {""};
			CU_ASSERT_EQUAL(px_trans_new(s, d, NULL, &t, &err), 0);
			px_trans_free(t);
		}
}

static void expect_path(const char *src, const char *dst, const char *const *want, int nwant)
{
	const char *steps[8];
	int n = px_translator_path_names(px_format_find(src), px_format_find(dst), steps, 8);

	CU_ASSERT_EQUAL(n, nwant);
	for (int i = 0; i < n && i < nwant; i++) {
		if (strcmp(steps[i], want[i]))
			printf("\n    %s -> %s: step %d is %s, expected %s", src, dst, i, steps[i],
			       want[i]);
		CU_ASSERT_STRING_EQUAL(steps[i], want[i]);
	}
}

static void test_multi_step_paths(void)
{
	expect_path("gsm", "g722", (const char *[]){"gsmtolin", "slintoslin16", "lin16tog722"}, 3);
	/* Opus at the rate of the other side: no resampler. */
	expect_path("ulaw", "opus", (const char *[]){"ulawtolin", "lintoopus"}, 2);
	expect_path("opus", "alaw", (const char *[]){"opustolin", "lintoalaw"}, 2);
	expect_path("g722", "opus", (const char *[]){"g722tolin16", "lin16toopus"}, 2);
	expect_path("opus", "g722", (const char *[]){"opustolin16", "lin16tog722"}, 2);
	expect_path("gsm", "opus", (const char *[]){"gsmtolin", "lintoopus"}, 2);
	expect_path("slin48", "opus", (const char *[]){"lin48toopus"}, 1);
	expect_path("opus", "slin48", (const char *[]){"opustolin48"}, 1);
	/* Wideband is not narrowed on the way, whatever the costs measured. */
	expect_path("slin16", "opus", (const char *[]){"lin16toopus"}, 1);
	expect_path("g722", "slin48", (const char *[]){"g722tolin16", "slin16toslin48"}, 2);
	expect_path("ulaw", "alaw", (const char *[]){"ulawtolin", "lintoalaw"}, 2);
	expect_path("g722", "slin16", (const char *[]){"g722tolin16"}, 1);
}

/* Every decoder's cost is measured (on its own encoder's output), not the
 * placeholder of a translator that could not be timed. */
static void test_decoders_measured(void)
{
	static const char *const pairs[][2] = {
		{"ulaw", "slin"},   {"alaw", "slin"},   {"g722", "slin16"}, {"gsm", "slin"},
		{"opus", "slin48"}, {"opus", "slin16"}, {"opus", "slin"}};

	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		int steps = 0;
		int cost = px_translator_cost(px_format_find(pairs[i][0]),
					      px_format_find(pairs[i][1]), &steps);
		printf("\n    %s -> %s: %d us per second of audio", pairs[i][0], pairs[i][1], cost);
		CU_ASSERT_EQUAL(steps, 1);
		CU_ASSERT(cost > 0 && cost < 100000);
	}
}

static void test_unload_and_load_rebuild(void)
{
	px_err err = {""};
	const struct px_format *ulaw = px_format_find("ulaw");
	px_trans *t = NULL;

	CU_ASSERT_EQUAL_FATAL(px_trans_new(ulaw, px_format_find("g722"), NULL, &t, &err), 0);
	/* A path in use holds its modules. */
	CU_ASSERT_NOT_EQUAL(px_loader_unload("codec_g722", false, &err), 0);
	px_trans_free(t);
	CU_ASSERT_EQUAL(px_loader_unload("codec_g722", false, &err), 0);
	CU_ASSERT_PTR_NULL(px_format_find("g722"));
	CU_ASSERT_EQUAL(px_translator_cost(ulaw, px_format_find("slin16"), NULL) > 0, 1);
	CU_ASSERT_EQUAL(px_trans_new(ulaw, px_format_find("opus"), NULL, &t, &err), 0);
	px_trans_free(t);
	CU_ASSERT_EQUAL(px_loader_load("codec_g722", &err), 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(px_format_find("g722"));
	CU_ASSERT(px_translator_cost(ulaw, px_format_find("g722"), NULL) > 0);
	/* Twice more, for leaks and stale entries. */
	for (int i = 0; i < 2; i++) {
		CU_ASSERT_EQUAL(px_loader_unload("codec_opus", false, &err), 0);
		CU_ASSERT_PTR_NULL(px_format_find("opus"));
		CU_ASSERT_EQUAL(px_loader_load("codec_opus", &err), 0);
	}
	CU_ASSERT(px_translator_cost(px_format_find("gsm"), px_format_find("opus"), NULL) > 0);
}

static void test_invalid_frames(void)
{
	px_err err = {""};
	px_trans *t = NULL;
	/* Opus code 3 with a frame count of zero; a GSM frame of the wrong
	 * size; a GSM frame without its signature. */
	static const uint8_t bad_opus[] = {0x03, 0x00, 0x12, 0x34};
	uint8_t bad_gsm[33] = {0};
	uint8_t out[4096];

	CU_ASSERT_EQUAL_FATAL(
		px_trans_new(px_format_find("opus"), px_format_find("slin"), NULL, &t, &err), 0);
	CU_ASSERT_EQUAL(px_trans_write(t, bad_opus, sizeof(bad_opus)), -1);
	CU_ASSERT_EQUAL(px_trans_write(t, bad_opus, 0), -1);
	CU_ASSERT_EQUAL(px_trans_buffered(t), 0);
	/* Concealment gives audio all the same (40 ms: the resampler to
	 * slin holds a few samples back). */
	px_trans_conceal(t, 1920);
	CU_ASSERT_EQUAL(px_trans_read(t, 20, out, sizeof(out)), 320);
	px_trans_free(t);

	CU_ASSERT_EQUAL_FATAL(
		px_trans_new(px_format_find("gsm"), px_format_find("ulaw"), NULL, &t, &err), 0);
	CU_ASSERT_EQUAL(px_trans_write(t, bad_gsm, 20), -1);
	CU_ASSERT_EQUAL(px_trans_write(t, bad_gsm, 33), -1);
	px_trans_free(t);
	CU_ASSERT_PTR_NULL(px_format_find("nosuch"));
	CU_ASSERT_EQUAL(
		px_trans_new(px_format_find("ulaw"), px_format_find("ulaw"), NULL, &t, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "needs no translation"));
}

static void test_packetisation(void)
{
	px_err err = {""};
	px_trans *t = NULL;
	uint8_t in[160], out[4096];

	memset(in, 0xff, sizeof(in));
	/* 20 ms of ulaw in, 30 ms of alaw out: nothing until 30 ms are there. */
	CU_ASSERT_EQUAL_FATAL(
		px_trans_new(px_format_find("ulaw"), px_format_find("alaw"), NULL, &t, &err), 0);
	CU_ASSERT_EQUAL(px_trans_write(t, in, 160), 0);
	CU_ASSERT_EQUAL(px_trans_read(t, 30, out, sizeof(out)), 0);
	CU_ASSERT_EQUAL(px_trans_write(t, in, 160), 0);
	CU_ASSERT_EQUAL(px_trans_read(t, 30, out, sizeof(out)), 240);
	CU_ASSERT_EQUAL(px_trans_buffered(t), 80);
	px_trans_free(t);
	/* GSM out takes whole 160-sample frames: 40 ms is two of them. */
	CU_ASSERT_EQUAL_FATAL(
		px_trans_new(px_format_find("ulaw"), px_format_find("gsm"), NULL, &t, &err), 0);
	for (int i = 0; i < 2; i++)
		CU_ASSERT_EQUAL(px_trans_write(t, in, 160), 0);
	CU_ASSERT_EQUAL(px_trans_read(t, 40, out, sizeof(out)), 66);
	px_trans_free(t);
}

static void test_formats(void)
{
	const struct px_format *g722 = px_format_find("G722");

	CU_ASSERT_PTR_NOT_NULL_FATAL(g722);
	CU_ASSERT_EQUAL(g722->rtp_clock, 8000);
	CU_ASSERT_EQUAL(g722->sample_rate, 16000);
	CU_ASSERT_PTR_EQUAL(px_format_by_static_pt(0), px_format_find("ulaw"));
	CU_ASSERT_PTR_EQUAL(px_format_by_static_pt(8), px_format_find("alaw"));
	CU_ASSERT_PTR_EQUAL(px_format_by_static_pt(3), px_format_find("gsm"));
	CU_ASSERT_PTR_NULL(px_format_by_static_pt(96));
	CU_ASSERT_PTR_EQUAL(px_format_by_encoding("OPUS", 48000), px_format_find("opus"));
	CU_ASSERT_PTR_NULL(px_format_by_encoding("opus", 8000));
	CU_ASSERT_PTR_EQUAL(px_format_by_encoding("pcmu", 8000), px_format_find("ulaw"));
	/* A second registration of a name is refused. */
	static const struct px_format dup = {
		.name = "ulaw", .sample_rate = 8000, .rtp_clock = 8000, .static_pt = -1};
	px_err err = {""};
	CU_ASSERT_EQUAL(px_format_register(NULL, &dup, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "already registered"));
	static const struct px_translator orphan = {
		.name = "xtoy",
		.src = "x",
		.dst = "slin",
		.run = (int (*)(void *, const uint8_t *, size_t, uint8_t *, size_t))1};
	CU_ASSERT_EQUAL(px_translator_register(NULL, &orphan, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not registered"));
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{"formats", test_formats},
		{"G.711 round trips", test_g711_round_trip},
		{"G.722 round trip", test_g722_round_trip},
		{"GSM round trip", test_gsm_round_trip},
		{"Opus round trip", test_opus_round_trip},
		{"Opus at 8 and 16 kHz", test_opus_native_rates},
		{"Opus at 8 kHz conceals in 48 kHz samples", test_opus_narrowband_loss},
		{"decoders are measured", test_decoders_measured},
		{"resampler round trips", test_resampler_round_trips},
		{"every pair has a path", test_every_pair_has_a_path},
		{"multi-step paths", test_multi_step_paths},
		{"invalid frames", test_invalid_frames},
		{"packetisation", test_packetisation},
		{"unload and load rebuild the matrix", test_unload_and_load_rebuild},
	};
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("codec", suite_init, suite_cleanup);
	if (!suite)
		return 1;
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].func))
			return 1;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures() + CU_get_number_of_suites_failed();
	CU_cleanup_registry();
	return failures != 0;
}
