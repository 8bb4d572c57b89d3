/*
 * Unit tests of RTCP packets (core/rtcp.c): an SR with a report block and
 * an RR without one survive build and parse field for field; the SDES
 * CNAME is where RFC 3550 puts it; a compound packet with more after the
 * report parses; a negative cumulative loss keeps its sign; and packets
 * that are not valid compound RTCP (too short, wrong version, lengths past
 * the end, not starting with SR/RR, padding in the wrong place, more
 * blocks than bytes) are refused.
 */
#include <string.h>

#include <CUnit/Basic.h>

#include "rtcp.h"

static void test_sr_round_trip(void)
{
	struct px_rtcp_sender_info info = {
		.ntp = 0xe1234567890abcdeULL, .rtp_ts = 123456, .packets = 250, .octets = 43000};
	struct px_rtcp_block block = {.ssrc = 0xcafe,
				      .fraction_lost = 25,
				      .cumulative_lost = 7,
				      .highest_seq = 0x10005,
				      .jitter = 44,
				      .lsr = 0x45678901,
				      .dlsr = 65536};
	struct px_rtcp_report r;
	uint8_t buf[256];
	int n = px_rtcp_build(buf, sizeof(buf), 0xbeef, &info, &block, "plexus@127.0.0.1");

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(n % 4, 0);
	/* SR: 28 + 24 bytes; then SDES: header, SSRC, CNAME item. */
	CU_ASSERT_EQUAL(buf[0], 0x81);
	CU_ASSERT_EQUAL(buf[1], 200);
	CU_ASSERT_EQUAL(buf[52 + 1], 202);
	CU_ASSERT_EQUAL(buf[52 + 8], 1);
	CU_ASSERT_EQUAL(buf[52 + 9], strlen("plexus@127.0.0.1"));
	CU_ASSERT(!memcmp(buf + 52 + 10, "plexus@127.0.0.1", 16));
	CU_ASSERT(px_rtcp_is_rtcp(buf, (size_t)n));

	CU_ASSERT_EQUAL_FATAL(px_rtcp_parse(buf, (size_t)n, &r), 0);
	CU_ASSERT(r.sender);
	CU_ASSERT_EQUAL(r.ssrc, 0xbeef);
	CU_ASSERT_EQUAL(r.info.ntp, info.ntp);
	CU_ASSERT_EQUAL(r.info.rtp_ts, 123456);
	CU_ASSERT_EQUAL(r.info.packets, 250);
	CU_ASSERT_EQUAL(r.info.octets, 43000);
	CU_ASSERT_EQUAL_FATAL(r.nblocks, 1);
	CU_ASSERT_EQUAL(r.blocks[0].ssrc, 0xcafe);
	CU_ASSERT_EQUAL(r.blocks[0].fraction_lost, 25);
	CU_ASSERT_EQUAL(r.blocks[0].cumulative_lost, 7);
	CU_ASSERT_EQUAL(r.blocks[0].highest_seq, 0x10005);
	CU_ASSERT_EQUAL(r.blocks[0].jitter, 44);
	CU_ASSERT_EQUAL(r.blocks[0].lsr, 0x45678901);
	CU_ASSERT_EQUAL(r.blocks[0].dlsr, 65536);
	CU_ASSERT_EQUAL(px_rtcp_ntp_mid(info.ntp), 0x4567890a);
}

static void test_rr_and_compound(void)
{
	struct px_rtcp_block block = {.ssrc = 1, .cumulative_lost = -3};
	struct px_rtcp_report r;
	uint8_t buf[256];
	int n = px_rtcp_build(buf, sizeof(buf), 0x1234, NULL, NULL, "x");

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(buf[0], 0x80);
	CU_ASSERT_EQUAL(buf[1], 201);
	CU_ASSERT_EQUAL_FATAL(px_rtcp_parse(buf, (size_t)n, &r), 0);
	CU_ASSERT(!r.sender);
	CU_ASSERT_EQUAL(r.ssrc, 0x1234);
	CU_ASSERT_EQUAL(r.nblocks, 0);

	n = px_rtcp_build(buf, sizeof(buf), 0x1234, NULL, &block, "x");
	CU_ASSERT_FATAL(n > 0);
	/* A BYE after it, as a compound packet may carry. */
	memcpy(buf + n, "\x81\xcb\x00\x01\x00\x00\x12\x34", 8);
	CU_ASSERT_EQUAL_FATAL(px_rtcp_parse(buf, (size_t)n + 8, &r), 0);
	CU_ASSERT_EQUAL(r.nblocks, 1);
	CU_ASSERT_EQUAL(r.blocks[0].cumulative_lost, -3);
	/* No room. */
	CU_ASSERT_EQUAL(px_rtcp_build(buf, 19, 1, NULL, NULL, "x"), -1); /* needs 20 */
}

static void test_bad_packets(void)
{
	struct px_rtcp_report r;
	uint8_t buf[256], bad[256];
	int n = px_rtcp_build(buf, sizeof(buf), 9, NULL, &(struct px_rtcp_block){.ssrc = 2}, "x");

	CU_ASSERT_FATAL(n > 0);
	CU_ASSERT_EQUAL(px_rtcp_parse(buf, 7, &r), -1);  /* shorter than a header */
	CU_ASSERT_EQUAL(px_rtcp_parse(buf, 40, &r), -1); /* cut in the SDES */
	memcpy(bad, buf, (size_t)n);
	bad[0] = (uint8_t)((bad[0] & 0x3f) | 0x40); /* version 1 */
	CU_ASSERT_EQUAL(px_rtcp_parse(bad, (size_t)n, &r), -1);
	memcpy(bad, buf, (size_t)n);
	bad[3] = 60; /* longer than the datagram */
	CU_ASSERT_EQUAL(px_rtcp_parse(bad, (size_t)n, &r), -1);
	memcpy(bad, buf, (size_t)n);
	bad[0] = (uint8_t)(bad[0] | 0x20); /* padding in the first packet */
	CU_ASSERT_EQUAL(px_rtcp_parse(bad, (size_t)n, &r), -1);
	memcpy(bad, buf, (size_t)n);
	bad[0] = (uint8_t)((bad[0] & 0xe0) | 5); /* 5 blocks in the room of 1 */
	CU_ASSERT_EQUAL(px_rtcp_parse(bad, (size_t)n, &r), -1);
	/* An SDES alone: no report. */
	CU_ASSERT_EQUAL(px_rtcp_parse(buf + 32, (size_t)n - 32, &r), -1);
	/* RTP is not RTCP: PCMU, and a marked dynamic payload type 96. */
	CU_ASSERT(!px_rtcp_is_rtcp((const uint8_t *)"\x80\x00\x00\x01\x00\x00\x00\x00", 8));
	CU_ASSERT(!px_rtcp_is_rtcp((const uint8_t *)"\x80\xe0\x00\x01\x00\x00\x00\x00", 8));
	CU_ASSERT(px_rtcp_is_rtcp((const uint8_t *)"\x80\xc8\x00\x01\x00\x00\x00\x00", 8));
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{"SR round trip", test_sr_round_trip},
		{"RR and compound", test_rr_and_compound},
		{"bad packets", test_bad_packets},
	};
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("rtcp", NULL, NULL);
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
