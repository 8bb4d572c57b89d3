/*
 * Unit tests of the switchboard's model (console/sbmodel.c): snapshots from
 * Status and Registrations results, events applied after them (and those
 * the snapshot already reflects skipped by seq), the grouping of channels
 * into calls, EventsLost asking for a resync, and bad input ignored.
 */
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include "sbmodel.h"

#define NOW 1700000000

static enum sb_change ev(struct sb_model *m, const char *json)
{
	json_error_t err;
	json_t *o = json_loads(json, 0, &err);
	enum sb_change c;

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	c = sb_model_event(m, o, NOW);
	json_decref(o);
	return c;
}

static int snapshot(struct sb_model *m, bool status, const char *json)
{
	json_t *o = json_loads(json, 0, NULL);
	int rc;

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	rc = status ? sb_model_status(m, o, NOW) : sb_model_registrations(m, o, NOW);
	json_decref(o);
	return rc;
}

/* A call 1001 -> 1002 told by events, as plexusd emits them. */
static void call_events(struct sb_model *m, uint64_t seq)
{
	char buf[512];
	const char *fmt[] = {
		"{\"event\":\"ChannelCreated\",\"seq\":%llu,\"timestamp\":1699999990.5,"
		"\"channel\":\"SIP/1001-00000001\",\"uniqueid\":\"u1\",\"linkedid\":\"u1\","
		"\"state\":\"Down\"}",
		"{\"event\":\"ChannelState\",\"seq\":%llu,\"channel\":\"SIP/1001-00000001\","
		"\"uniqueid\":\"u1\",\"linkedid\":\"u1\",\"state\":\"Ring\",\"caller_num\":"
		"\"1001\","
		"\"caller_name\":\"Alice\",\"context\":\"default\",\"exten\":\"1002\"}",
		"{\"event\":\"ChannelCreated\",\"seq\":%llu,\"channel\":\"SIP/1002-00000002\","
		"\"uniqueid\":\"u2\",\"linkedid\":\"u1\",\"state\":\"Down\"}",
		"{\"event\":\"DialBegin\",\"seq\":%llu,\"channel\":\"SIP/1001-00000001\","
		"\"peer_channel\":\"SIP/1002-00000002\"}",
		"{\"event\":\"ChannelState\",\"seq\":%llu,\"channel\":\"SIP/1002-00000002\","
		"\"state\":\"Ringing\"}",
	};

	for (size_t i = 0; i < sizeof(fmt) / sizeof(fmt[0]); i++) {
		snprintf(buf, sizeof(buf), fmt[i], (unsigned long long)(seq + i));
		CU_ASSERT_EQUAL(ev(m, buf), SB_CHANGED);
	}
}

static void test_call_from_events(void)
{
	struct sb_model m;
	struct sb_call rows[4];
	char party[64];

	sb_model_init(&m);
	call_events(&m, 1);
	CU_ASSERT_EQUAL_FATAL(sb_model_calls(&m, rows, 4), 1);
	CU_ASSERT_STRING_EQUAL(rows[0].a->name, "SIP/1001-00000001");
	CU_ASSERT_PTR_NOT_NULL_FATAL(rows[0].b);
	CU_ASSERT_STRING_EQUAL(rows[0].b->state, "Ringing");
	CU_ASSERT_STRING_EQUAL(rows[0].a->caller_name, "Alice");
	CU_ASSERT_EQUAL(rows[0].a->created, 1699999990);
	CU_ASSERT_STRING_EQUAL(sb_chan_party(rows[0].b, party, sizeof(party)), "1002");

	CU_ASSERT_EQUAL(ev(&m,
			   "{\"event\":\"Bridged\",\"seq\":10,\"channel\":\"SIP/1001-00000001\","
			   "\"peer_channel\":\"SIP/1002-00000002\"}"),
			SB_CHANGED);
	CU_ASSERT_STRING_EQUAL(sb_model_find(&m, "SIP/1002-00000002")->peer, "SIP/1001-00000001");
	/* The hangup of one side, then Unbridged: it must not come back. */
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"Hangup\",\"seq\":11,\"channel\":\"SIP/1002-00000002\","
			       "\"cause\":16}"),
			SB_CHANGED);
	CU_ASSERT_EQUAL(ev(&m,
			   "{\"event\":\"Unbridged\",\"seq\":12,\"channel\":\"SIP/1002-00000002\","
			   "\"peer_channel\":\"SIP/1001-00000001\"}"),
			SB_CHANGED);
	CU_ASSERT_PTR_NULL(sb_model_find(&m, "SIP/1002-00000002"));
	CU_ASSERT_STRING_EQUAL(sb_model_find(&m, "SIP/1001-00000001")->peer, "");
	CU_ASSERT_EQUAL_FATAL(sb_model_calls(&m, rows, 4), 1);
	CU_ASSERT_PTR_NULL(rows[0].b);
	CU_ASSERT_EQUAL(
		ev(&m, "{\"event\":\"Hangup\",\"seq\":13,\"channel\":\"SIP/1001-00000001\"}"),
		SB_CHANGED);
	CU_ASSERT_EQUAL(sb_model_calls(&m, rows, 4), 0);
	/* A Hangup of a channel never seen changes nothing. */
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"Hangup\",\"seq\":14,\"channel\":\"SIP/9-1\"}"),
			SB_UNCHANGED);
	sb_model_free(&m);
}

static void test_status_snapshot_and_seq(void)
{
	struct sb_model m;
	struct sb_call rows[4];

	sb_model_init(&m);
	call_events(&m, 1);
	/* The snapshot replaces what events told, and reflects seq <= 20. */
	CU_ASSERT_EQUAL(
		snapshot(
			&m, true,
			"{\"response\":\"Success\",\"seq\":20,\"channels\":["
			"{\"channel\":\"SIP/"
			"1003-00000009\",\"uniqueid\":\"u9\",\"linkedid\":\"u9\","
			"\"state\":\"Up\",\"duration\":30,\"bridged_to\":\"SIP/1004-0000000a\"},"
			"{\"channel\":\"SIP/"
			"1004-0000000a\",\"uniqueid\":\"u10\",\"linkedid\":\"u9\","
			"\"state\":\"Up\",\"duration\":29,\"bridged_to\":\"SIP/1003-00000009\"}]}"),
		0);
	CU_ASSERT_PTR_NULL(sb_model_find(&m, "SIP/1001-00000001"));
	CU_ASSERT_EQUAL_FATAL(sb_model_calls(&m, rows, 4), 1);
	CU_ASSERT_STRING_EQUAL(rows[0].a->name, "SIP/1003-00000009");
	CU_ASSERT_STRING_EQUAL(rows[0].b->name, "SIP/1004-0000000a");
	CU_ASSERT_EQUAL(rows[0].a->created, NOW - 30);
	/* An event the snapshot already reflects is skipped ... */
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ChannelState\",\"seq\":19,"
			       "\"channel\":\"SIP/1003-00000009\",\"state\":\"Ringing\"}"),
			SB_UNCHANGED);
	CU_ASSERT_STRING_EQUAL(sb_model_find(&m, "SIP/1003-00000009")->state, "Up");
	CU_ASSERT_EQUAL(
		ev(&m, "{\"event\":\"Hangup\",\"seq\":20,\"channel\":\"SIP/1003-00000009\"}"),
		SB_UNCHANGED);
	/* ... a later one is applied. */
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"Hold\",\"seq\":21,\"channel\":\"SIP/1003-00000009\"}"),
			SB_CHANGED);
	CU_ASSERT(sb_model_find(&m, "SIP/1003-00000009")->hold);
	/* Not a Status result. */
	CU_ASSERT_EQUAL(snapshot(&m, true, "{\"response\":\"Error\"}"), -1);
	CU_ASSERT_EQUAL(sb_model_calls(&m, rows, 4), 1);
	sb_model_clear(&m);
	CU_ASSERT_EQUAL(sb_model_calls(&m, rows, 4), 0);
	sb_model_free(&m);
}

/* The connected party changes without a state change (a Redirect, the
 * operator's Bridge, a transfer): ConnectedLine updates the row, and one
 * the snapshot already reflects is skipped. */
static void test_connected_line(void)
{
	struct sb_model m;
	const struct sb_chan *c;

	sb_model_init(&m);
	CU_ASSERT_EQUAL(snapshot(&m, true,
				 "{\"seq\":5,\"channels\":[{\"channel\":\"SIP/1001-1\","
				 "\"uniqueid\":\"a\",\"linkedid\":\"a\",\"state\":\"Up\","
				 "\"connected_num\":\"1002\",\"connected_name\":\"Bob\"}]}"),
			0);
	CU_ASSERT_EQUAL(ev(&m,
			   "{\"event\":\"ConnectedLine\",\"seq\":5,\"channel\":"
			   "\"SIP/1001-1\",\"connected_num\":\"1009\",\"connected_name\":\"\"}"),
			SB_UNCHANGED);
	c = sb_model_find(&m, "SIP/1001-1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(c->connected_num, "1002");
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ConnectedLine\",\"seq\":6,\"channel\":"
			       "\"SIP/1001-1\",\"connected_num\":\"1003\",\"connected_name\":"
			       "\"Carol\"}"),
			SB_CHANGED);
	c = sb_model_find(&m, "SIP/1001-1");
	CU_ASSERT_STRING_EQUAL(c->connected_num, "1003");
	CU_ASSERT_STRING_EQUAL(c->connected_name, "Carol");
	CU_ASSERT_STRING_EQUAL(c->state, "Up");
	/* An identity taken away (empty) is shown as such. */
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ConnectedLine\",\"seq\":7,\"channel\":"
			       "\"SIP/1001-1\",\"connected_num\":\"\",\"connected_name\":\"\"}"),
			SB_CHANGED);
	CU_ASSERT_STRING_EQUAL(sb_model_find(&m, "SIP/1001-1")->connected_name, "");
	sb_model_free(&m);
}

/* Status tells hold and the answer (answered_at, duration since it, age
 * since creation); ChannelState Up starts the talk time of a channel that
 * events told about. */
static void test_hold_and_answer(void)
{
	struct sb_model m;
	const struct sb_chan *c;

	sb_model_init(&m);
	CU_ASSERT_EQUAL(snapshot(&m, true,
				 "{\"seq\":5,\"channels\":["
				 "{\"channel\":\"SIP/1001-1\",\"state\":\"Up\",\"hold\":true,"
				 "\"age\":50,\"duration\":20,\"answered_at\":1699999980},"
				 "{\"channel\":\"SIP/1002-2\",\"state\":\"Ring\",\"hold\":false,"
				 "\"age\":7,\"duration\":0,\"answered_at\":null}]}"),
			0);
	c = sb_model_find(&m, "SIP/1001-1");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(c->hold);
	CU_ASSERT_EQUAL(c->created, NOW - 50);
	CU_ASSERT_EQUAL(c->answered, NOW - 20);
	c = sb_model_find(&m, "SIP/1002-2");
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_FALSE(c->hold);
	CU_ASSERT_EQUAL(c->created, NOW - 7);
	CU_ASSERT_EQUAL(c->answered, 0);
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"Unhold\",\"seq\":6,\"channel\":\"SIP/1001-1\"}"),
			SB_CHANGED);
	CU_ASSERT_FALSE(sb_model_find(&m, "SIP/1001-1")->hold);
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ChannelState\",\"seq\":7,\"timestamp\":1700000003.2,"
			       "\"channel\":\"SIP/1002-2\",\"state\":\"Up\"}"),
			SB_CHANGED);
	CU_ASSERT_EQUAL(sb_model_find(&m, "SIP/1002-2")->answered, 1700000003);
	/* A later state change keeps the first answer. */
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ChannelState\",\"seq\":8,\"timestamp\":1700000009.0,"
			       "\"channel\":\"SIP/1002-2\",\"state\":\"Up\"}"),
			SB_CHANGED);
	CU_ASSERT_EQUAL(sb_model_find(&m, "SIP/1002-2")->answered, 1700000003);
	sb_model_free(&m);
}

static void test_grouping(void)
{
	struct sb_model m;
	struct sb_call rows[8];

	sb_model_init(&m);
	/* Two callers bridged by the operator (different linkedids), and one
	 * alone in the dialplan. */
	CU_ASSERT_EQUAL(snapshot(&m, true,
				 "{\"seq\":5,\"channels\":["
				 "{\"channel\":\"SIP/"
				 "1001-1\",\"uniqueid\":\"a\",\"linkedid\":\"a\",\"duration\":9,"
				 "\"bridged_to\":\"SIP/1005-3\",\"state\":\"Up\"},"
				 "{\"channel\":\"SIP/"
				 "1002-2\",\"uniqueid\":\"b\",\"linkedid\":\"a\",\"duration\":8,"
				 "\"state\":\"Down\"},"
				 "{\"channel\":\"SIP/"
				 "1005-3\",\"uniqueid\":\"c\",\"linkedid\":\"c\",\"duration\":7,"
				 "\"bridged_to\":\"SIP/1001-1\",\"state\":\"Up\"},"
				 "{\"channel\":\"SIP/"
				 "1006-4\",\"uniqueid\":\"d\",\"linkedid\":\"d\",\"duration\":1,"
				 "\"state\":\"Ring\",\"exten\":\"600\"}]}"),
			0);
	CU_ASSERT_EQUAL_FATAL(sb_model_calls(&m, rows, 8), 3);
	CU_ASSERT_STRING_EQUAL(rows[0].a->name, "SIP/1001-1");
	CU_ASSERT_STRING_EQUAL(rows[0].b->name, "SIP/1005-3");
	CU_ASSERT_STRING_EQUAL(rows[1].a->name, "SIP/1002-2");
	CU_ASSERT_PTR_NULL(rows[1].b);
	CU_ASSERT_STRING_EQUAL(rows[2].a->name, "SIP/1006-4");
	CU_ASSERT_PTR_NULL(rows[2].b);
	/* Fewer rows than calls: the count is still told. */
	CU_ASSERT_EQUAL(sb_model_calls(&m, rows, 1), 3);
	sb_model_free(&m);
}

static void test_registrations(void)
{
	struct sb_model m;

	sb_model_init(&m);
	CU_ASSERT_EQUAL(
		snapshot(&m, false,
			 "{\"seq\":7,\"registrations\":["
			 "{\"endpoint\":\"1003\",\"contact\":\"sip:1003@h\",\"source\":\"udp:h:5\","
			 "\"user_agent\":\"X\",\"expires\":60},"
			 "{\"endpoint\":\"1002\",\"contact\":\"sip:1002@h\",\"source\":\"udp:h:6\","
			 "\"expires\":3600}]}"),
		0);
	CU_ASSERT_EQUAL_FATAL(m.nregs, 2);
	CU_ASSERT_STRING_EQUAL(m.regs[0].endpoint, "1002");
	CU_ASSERT_EQUAL(m.regs[1].expires_at, NOW + 60);
	/* Reflected already: skipped. */
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"Unregistered\",\"seq\":7,\"endpoint\":\"1002\","
			       "\"contact\":\"sip:1002@h\"}"),
			SB_UNCHANGED);
	CU_ASSERT_EQUAL(m.nregs, 2);
	CU_ASSERT_EQUAL(ev(&m,
			   "{\"event\":\"Registered\",\"seq\":8,\"endpoint\":\"1001\","
			   "\"contact\":\"sip:1001@h\",\"source\":\"udp:h:7\",\"expires\":120}"),
			SB_CHANGED);
	CU_ASSERT_EQUAL_FATAL(m.nregs, 3);
	CU_ASSERT_STRING_EQUAL(m.regs[0].endpoint, "1001");
	CU_ASSERT_STRING_EQUAL(m.regs[0].source, "udp:h:7");
	/* A refresh updates the row, no new one. */
	CU_ASSERT_EQUAL(ev(&m,
			   "{\"event\":\"Registered\",\"seq\":9,\"endpoint\":\"1001\","
			   "\"contact\":\"sip:1001@h\",\"source\":\"udp:h:8\",\"expires\":300}"),
			SB_CHANGED);
	CU_ASSERT_EQUAL(m.nregs, 3);
	CU_ASSERT_EQUAL(m.regs[0].expires_at, NOW + 300);
	CU_ASSERT_EQUAL(ev(&m,
			   "{\"event\":\"RegistrationExpired\",\"seq\":10,\"endpoint\":\"1001\","
			   "\"contact\":\"sip:1001@h\"}"),
			SB_CHANGED);
	CU_ASSERT_EQUAL(m.nregs, 2);
	/* The clock expires what the registrar has not told about yet. */
	CU_ASSERT_FALSE(sb_model_expire(&m, NOW + 60));
	CU_ASSERT_TRUE(sb_model_expire(&m, NOW + 66));
	CU_ASSERT_EQUAL_FATAL(m.nregs, 1);
	CU_ASSERT_STRING_EQUAL(m.regs[0].endpoint, "1002");
	sb_model_free(&m);
}

static void test_lost_and_bad_input(void)
{
	struct sb_model m;
	struct sb_call rows[2];

	sb_model_init(&m);
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"EventsLost\",\"lost\":5,\"after_seq\":3}"), SB_RESYNC);
	CU_ASSERT_EQUAL(ev(&m, "{\"seq\":1}"), SB_UNCHANGED);
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ChannelState\",\"seq\":2}"), SB_UNCHANGED);
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ChannelState\",\"seq\":3,\"channel\":5}"),
			SB_UNCHANGED);
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"Registered\",\"seq\":4,\"endpoint\":\"1\"}"),
			SB_UNCHANGED);
	CU_ASSERT_EQUAL(ev(&m, "{\"event\":\"ModuleLoaded\",\"seq\":5,\"module\":\"x\"}"),
			SB_UNCHANGED);
	CU_ASSERT_EQUAL(snapshot(&m, false, "{\"registrations\":5}"), -1);
	/* Empty snapshots on a model that never held anything. */
	CU_ASSERT_EQUAL(snapshot(&m, true, "{\"seq\":1,\"channels\":[]}"), 0);
	CU_ASSERT_EQUAL(snapshot(&m, false, "{\"seq\":1,\"registrations\":[]}"), 0);
	CU_ASSERT_EQUAL(sb_model_calls(&m, rows, 2), 0);
	CU_ASSERT_EQUAL(m.nregs, 0);
	sb_model_free(&m);
}

int main(void)
{
	CU_pSuite suite;
	int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("console/sbmodel", NULL, NULL);
	if (!suite || !CU_add_test(suite, "a call told by events", test_call_from_events) ||
	    !CU_add_test(suite, "Status snapshot and seq", test_status_snapshot_and_seq) ||
	    !CU_add_test(suite, "ConnectedLine", test_connected_line) ||
	    !CU_add_test(suite, "hold and answer time", test_hold_and_answer) ||
	    !CU_add_test(suite, "channels grouped into calls", test_grouping) ||
	    !CU_add_test(suite, "registrations", test_registrations) ||
	    !CU_add_test(suite, "EventsLost and bad input", test_lost_and_bad_input)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
