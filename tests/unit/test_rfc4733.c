/*
 * Unit tests of RFC 4733 telephone-event payloads (core/rfc4733.c): parse
 * and build of every digit, refused codes and short payloads, and the
 * receive state over a real event's packet sequence: a marked start, its
 * retransmissions and updates, three redundant end packets (one BEGIN, one
 * END with the final duration), a second digit, an event whose start was
 * lost, and an end packet arriving twice after the next event began; an
 * event longer than 16 bits of its clock sent and received in segments.
 */
#include <stdio.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <plexus/rfc4733.h>

static void test_parse_build(void)
{
	const char *all = "0123456789*#ABCDX";
	uint8_t buf[4];
	struct px_rfc4733_event ev, back;

	for (const char *d = all; *d; d++) {
		ev = (struct px_rfc4733_event){
			.digit = *d, .end = (*d & 1), .volume = 10, .duration = 1234};
		CU_ASSERT_EQUAL(px_rfc4733_build(&ev, buf), 0);
		CU_ASSERT_EQUAL(buf[0], (uint8_t)(d - all));
		CU_ASSERT_EQUAL(px_rfc4733_parse(buf, 4, &back), 0);
		CU_ASSERT_EQUAL(back.digit, *d);
		CU_ASSERT_EQUAL(back.end, ev.end);
		CU_ASSERT_EQUAL(back.volume, 10);
		CU_ASSERT_EQUAL(back.duration, 1234);
	}
	/* The wire form of '#' ending after 2000 units at volume 10. */
	static const uint8_t hash_end[] = {11, 0x8a, 0x07, 0xd0};
	CU_ASSERT_EQUAL(px_rfc4733_parse(hash_end, 4, &back), 0);
	CU_ASSERT_EQUAL(back.digit, '#');
	CU_ASSERT(back.end);
	CU_ASSERT_EQUAL(back.duration, 2000);
	/* Bad input. */
	static const uint8_t code_17[] = {17, 0, 0, 0}, code_255[] = {255, 0x80, 1, 1};
	CU_ASSERT_EQUAL(px_rfc4733_parse(code_17, 4, &back), -1);
	CU_ASSERT_EQUAL(px_rfc4733_parse(code_255, 4, &back), -1);
	CU_ASSERT_EQUAL(px_rfc4733_parse(hash_end, 3, &back), -1);
	CU_ASSERT_EQUAL(px_rfc4733_parse(hash_end, 0, &back), -1);
	ev.digit = 'Z';
	CU_ASSERT_EQUAL(px_rfc4733_build(&ev, buf), -1);
	ev.digit = '\0';
	CU_ASSERT_EQUAL(px_rfc4733_build(&ev, buf), -1);
}

static enum px_rfc4733_what feed(struct px_rfc4733_rx *rx, uint32_t ts, char digit, bool end,
				 uint16_t dur, uint32_t *got)
{
	struct px_rfc4733_event ev = {.digit = digit, .end = end, .duration = dur};

	return px_rfc4733_receive(rx, ts, &ev, got);
}

static void test_receive_redundancy(void)
{
	struct px_rfc4733_rx rx = {0};
	uint32_t d = 0;

	/* '5' at ts 1000: start sent three times (RFC 4733 2.5.1.2), updates. */
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', false, 0, &d), PX_RFC4733_BEGIN);
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', false, 0, &d), PX_RFC4733_NOTHING);
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', false, 160, &d), PX_RFC4733_NOTHING);
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', false, 320, &d), PX_RFC4733_NOTHING);
	/* Three end packets: one END, with the duration. */
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', true, 800, &d), PX_RFC4733_END);
	CU_ASSERT_EQUAL(d, 800);
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', true, 800, &d), PX_RFC4733_NOTHING);
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', true, 800, &d), PX_RFC4733_NOTHING);
	/* A late update of the ended event changes nothing. */
	CU_ASSERT_EQUAL(feed(&rx, 1000, '5', false, 640, &d), PX_RFC4733_NOTHING);

	/* The same digit again is a new event: a new timestamp. */
	CU_ASSERT_EQUAL(feed(&rx, 3000, '5', false, 160, &d), PX_RFC4733_BEGIN);
	CU_ASSERT_EQUAL(feed(&rx, 3000, '5', true, 1600, &d), PX_RFC4733_END);
	CU_ASSERT_EQUAL(d, 1600);

	/* Only the end packets of '9' got through: one END all the same. */
	CU_ASSERT_EQUAL(feed(&rx, 5000, '9', true, 960, &d), PX_RFC4733_END);
	CU_ASSERT_EQUAL(d, 960);
	CU_ASSERT_EQUAL(feed(&rx, 5000, '9', true, 960, &d), PX_RFC4733_NOTHING);
	CU_ASSERT_EQUAL(rx.digit, '9');
}

/* At 48 kHz (telephone-event/48000 beside Opus) 16 bits hold 1.36 s: a
 * longer event is sent in segments and received as one digit. */
static void test_long_event_segments(void)
{
	struct px_rfc4733_rx rx = {0};
	uint32_t off = 1, d = 0;
	uint16_t dur = 1;

	px_rfc4733_segment(0, &off, &dur);
	CU_ASSERT(off == 0 && dur == 0);
	px_rfc4733_segment(12000, &off, &dur); /* 250 ms at 48 kHz */
	CU_ASSERT(off == 0 && dur == 12000);
	px_rfc4733_segment(0xFFFF, &off, &dur);
	CU_ASSERT(off == 0 && dur == 0xFFFF);
	px_rfc4733_segment(0x10000, &off, &dur);
	CU_ASSERT(off == 0xFFFF && dur == 1);
	px_rfc4733_segment(144000, &off, &dur); /* 3 s */
	CU_ASSERT(off == 2 * 0xFFFFu && dur == 144000 - 2 * 0xFFFF);

	/* '7' for 3 s from ts 0xFFFFF000 (the segments wrap the timestamp). */
	uint32_t ts = 0xFFFFF000u;
	CU_ASSERT_EQUAL(feed(&rx, ts, '7', false, 0, &d), PX_RFC4733_BEGIN);
	CU_ASSERT_EQUAL(feed(&rx, ts, '7', false, 0xFFFF, &d), PX_RFC4733_NOTHING);
	CU_ASSERT_EQUAL(feed(&rx, ts + 0xFFFF, '7', false, 2400, &d), PX_RFC4733_NOTHING);
	CU_ASSERT_EQUAL(feed(&rx, ts + 2 * 0xFFFF, '7', false, 2400, &d), PX_RFC4733_NOTHING);
	CU_ASSERT_EQUAL(feed(&rx, ts + 2 * 0xFFFF, '7', true, 144000 - 2 * 0xFFFF, &d),
			PX_RFC4733_END);
	CU_ASSERT_EQUAL(d, 144000);
	CU_ASSERT_EQUAL(feed(&rx, ts + 2 * 0xFFFF, '7', true, 144000 - 2 * 0xFFFF, &d),
			PX_RFC4733_NOTHING);
	/* Another digit one segment on is a new event, not a continuation. */
	CU_ASSERT_EQUAL(feed(&rx, ts + 3 * 0xFFFF, '8', false, 0, &d), PX_RFC4733_BEGIN);
	struct px_rfc4733_event ev = {.digit = '8'};
	CU_ASSERT(px_rfc4733_continues(&rx, ts + 4 * 0xFFFF, &ev));
	CU_ASSERT(!px_rfc4733_continues(&rx, ts + 4 * 0xFFFF + 1, &ev));
	ev.digit = '9';
	CU_ASSERT(!px_rfc4733_continues(&rx, ts + 4 * 0xFFFF, &ev));
	CU_ASSERT_EQUAL(feed(&rx, ts + 3 * 0xFFFF, '8', true, 4800, &d), PX_RFC4733_END);
	CU_ASSERT_EQUAL(d, 4800);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("rfc4733", NULL, NULL);
	if (!suite || !CU_add_test(suite, "parse and build", test_parse_build) ||
	    !CU_add_test(suite, "receive with redundancy", test_receive_redundancy) ||
	    !CU_add_test(suite, "long events in segments", test_long_event_segments))
		return 1;
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
