/*
 * Unit tests of the jitter buffer (core/jitterbuf.c), fed packets with
 * chosen arrival times: frames come out in sequence whatever the arrival
 * order; a missing frame is reported lost (with the next frame, for FEC)
 * and a late or repeated one is refused; the target delay follows the
 * jitter up and back down, dropping frames to shrink; running dry stops
 * playout until the buffer fills again; a restarted source starts afresh;
 * an oversized payload is refused.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <plexus/jitterbuf.h>

#define FRAME_TS 160 /* 20 ms at 8 kHz */

/* A payload that names its sequence number. */
static void put(px_jb *jb, uint16_t seq, long long arrival_ms, int want)
{
	char p[16];

	snprintf(p, sizeof(p), "frame %u", (unsigned)seq);
	CU_ASSERT_EQUAL(px_jb_put(jb, seq, 1000u + FRAME_TS * seq, (const uint8_t *)p,
				  strlen(p) + 1, arrival_ms),
			want);
}

/* The next turn must hand out the frame seq. */
static bool get_frame(px_jb *jb, uint16_t seq)
{
	const uint8_t *p;
	size_t len;
	char want[16];

	snprintf(want, sizeof(want), "frame %u", (unsigned)seq);
	return px_jb_get(jb, &p, &len) == PX_JB_FRAME && len == strlen(want) + 1 &&
	       !memcmp(p, want, len);
}

static void test_reorders(void)
{
	px_jb *jb = px_jb_new(8000, FRAME_TS);

	CU_ASSERT_PTR_NOT_NULL_FATAL(jb);
	put(jb, 1, 0, 0);
	put(jb, 3, 20, 0);
	put(jb, 2, 21, 0);
	put(jb, 4, 60, 0);
	put(jb, 2, 61, 1); /* twice */
	for (uint16_t seq = 1; seq <= 4; seq++)
		CU_ASSERT(get_frame(jb, seq));
	put(jb, 3, 80, 1); /* its turn has passed */
	struct px_jb_stats st;
	px_jb_get_stats(jb, &st);
	CU_ASSERT_EQUAL(st.put, 4);
	CU_ASSERT_EQUAL(st.played, 4);
	CU_ASSERT_EQUAL(st.late, 2);
	CU_ASSERT_EQUAL(st.lost, 0);
	px_jb_free(jb);
}

static void test_conceals_a_loss(void)
{
	px_jb *jb = px_jb_new(8000, FRAME_TS);
	const uint8_t *p;
	size_t len;

	put(jb, 10, 0, 0);
	put(jb, 11, 20, 0);
	put(jb, 13, 60, 0);
	put(jb, 14, 80, 0);
	CU_ASSERT(get_frame(jb, 10));
	CU_ASSERT(get_frame(jb, 11));
	/* 12 never came: lost, and 13 is handed over for FEC. */
	CU_ASSERT_EQUAL(px_jb_get(jb, &p, &len), PX_JB_LOST);
	CU_ASSERT(p && len == strlen("frame 13") + 1 && !memcmp(p, "frame 13", len));
	CU_ASSERT(get_frame(jb, 13));
	CU_ASSERT(get_frame(jb, 14));
	/* Nothing left: playout stops instead of concealing on and on. */
	CU_ASSERT_EQUAL(px_jb_get(jb, &p, &len), PX_JB_NOTHING);
	CU_ASSERT_EQUAL(px_jb_get(jb, &p, &len), PX_JB_NOTHING);
	put(jb, 15, 100, 0);
	CU_ASSERT(get_frame(jb, 15));
	struct px_jb_stats st;
	px_jb_get_stats(jb, &st);
	CU_ASSERT_EQUAL(st.lost, 1);
	px_jb_free(jb);
}

/* Run the buffer on a simulated clock: packet k (of count, from first)
 * arrives at arrival(k); a turn every 20 ms. Returns the frames lost. */
static uint64_t simulate(px_jb *jb, uint16_t first, unsigned count, long long start,
			 long long (*arrival)(unsigned k))
{
	struct px_jb_stats st;
	const uint8_t *p;
	size_t len;
	unsigned k = 0;
	uint64_t lost_before;

	px_jb_get_stats(jb, &st);
	lost_before = st.lost;
	for (long long t = start; k < count || t < start + 20LL * count; t += 20) {
		while (k < count && start + arrival(k) <= t) {
			put(jb, (uint16_t)(first + k), start + arrival(k), 0);
			k++;
		}
		px_jb_get(jb, &p, &len);
	}
	px_jb_get_stats(jb, &st);
	return st.lost - lost_before;
}

static long long calm(unsigned k)
{
	return 20LL * k;
}

/* Sent every 20 ms, delivered three at a time every 60 ms. */
static long long bursty(unsigned k)
{
	return 60LL * (k / 3) + 40;
}

static void test_adapts(void)
{
	px_jb *jb = px_jb_new(8000, FRAME_TS);
	struct px_jb_stats st;

	/* A calm stream: one frame of delay. */
	CU_ASSERT_EQUAL(simulate(jb, 0, 100, 0, calm), 0);
	px_jb_get_stats(jb, &st);
	CU_ASSERT_EQUAL(st.jitter_ms, 0);
	CU_ASSERT_EQUAL(st.target, 1);

	/* Bursts: the jitter shows, the target grows, and once the buffer
	 * has refilled to it nothing more is lost. */
	simulate(jb, 100, 100, 2000, bursty);
	px_jb_get_stats(jb, &st);
	CU_ASSERT(st.jitter_ms >= 10);
	CU_ASSERT(st.target >= 3);
	unsigned deep = st.target;
	CU_ASSERT_EQUAL(simulate(jb, 200, 200, 4000, bursty), 0);

	/* Calm again: the target comes back down, and a frame or more is
	 * dropped until the delay has followed. */
	simulate(jb, 400, 400, 8000, calm);
	px_jb_get_stats(jb, &st);
	if (st.dropped < 1)
		fprintf(stderr, "\n  jitter %u ms, target %u, depth %u, deep %u\n", st.jitter_ms,
			st.target, st.depth, deep);
	CU_ASSERT(st.target < deep);
	CU_ASSERT(st.target <= 2);
	CU_ASSERT(st.dropped >= 1);
	CU_ASSERT(st.depth <= st.target + 1);
	px_jb_free(jb);
}

static void test_restart_and_bad_input(void)
{
	px_jb *jb = px_jb_new(8000, FRAME_TS);
	uint8_t big[PX_JB_FRAME_MAX + 1] = {0};

	put(jb, 100, 0, 0);
	CU_ASSERT(get_frame(jb, 100));
	/* A source that starts again elsewhere is taken as a new stream. */
	put(jb, 30000, 20, 0);
	CU_ASSERT(get_frame(jb, 30000));
	CU_ASSERT_EQUAL(px_jb_put(jb, 30001, 0, big, sizeof(big), 40), -1);
	/* Far ahead but within reason: the turns in between are passed. */
	put(jb, 30001 + PX_JB_SLOTS + 5, 20 + 20 * (PX_JB_SLOTS + 6), 0);
	CU_ASSERT(get_frame(jb, 30001 + PX_JB_SLOTS + 5));
	/* The timestamp step of the stream is learned. */
	px_jb_reset(jb);
	CU_ASSERT_EQUAL(px_jb_put(jb, 1, 1000, big, 10, 0), 0);
	CU_ASSERT_EQUAL(px_jb_put(jb, 2, 1240, big, 10, 30), 0);
	CU_ASSERT_EQUAL(px_jb_frame_ts(jb), 240);
	px_jb_free(jb);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{"reorders", test_reorders},
		{"conceals a loss", test_conceals_a_loss},
		{"adapts", test_adapts},
		{"restart and bad input", test_restart_and_bad_input},
	};
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("jitterbuf", NULL, NULL);
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
	return failures != 0;
}
