/*
 * Unit tests of the music-on-hold hook (core/moh.c, plexus/moh.h): a fake
 * provider that records what it is asked, on channels of a fake
 * technology. Covered: no provider (refused, nothing kept), start and stop,
 * a second start on a channel stops the first, the default class for an
 * empty name, a provider that refuses, a second provider refused,
 * unregister stops every channel and no call reaches the provider after
 * it, and the class a holder suggests (MOH_SUGGEST or "default").
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include <plexus/channel.h>
#include <plexus/moh.h>

static int op_ok(px_channel *ch)
{
	(void)ch;
	return 0;
}

static int op_indicate(px_channel *ch, enum px_control c)
{
	(void)ch;
	(void)c;
	return 0;
}

static void op_destroy(px_channel *ch)
{
	(void)ch;
}

static const struct px_channel_tech fake_tech = {
	.type = "Fake",
	.description = "test channels",
	.answer = op_ok,
	.indicate = op_indicate,
	.hangup = op_ok,
	.destroy = op_destroy,
};

/* What the provider saw. */
static struct {
	int starts, stops;
	char last_class[64];
	px_channel *last_stopped;
	bool refuse;
	bool unregistered; /* a call after this is a failure */
	int late_calls;
} seen;
static int handles;

static int fake_start(px_channel *ch, const char *cls, void **handle, px_err *err)
{
	(void)ch;
	if (seen.unregistered)
		seen.late_calls++;
	if (seen.refuse)
		return px_err_set(err, "refused");
	seen.starts++;
	snprintf(seen.last_class, sizeof(seen.last_class), "%s", cls);
	*handle = &handles;
	return 0;
}

static void fake_stop(px_channel *ch, void *handle)
{
	if (seen.unregistered)
		seen.late_calls++;
	CU_ASSERT_PTR_EQUAL(handle, &handles);
	seen.stops++;
	seen.last_stopped = ch;
}

static const struct px_moh_provider fake = {.start = fake_start, .stop = fake_stop};

static px_channel *chan(void)
{
	return px_channel_alloc(&fake_tech, "Fake/test", NULL, NULL);
}

static void test_no_provider(void)
{
	px_channel *a = chan();
	px_err err = {""};

	CU_ASSERT_EQUAL(px_moh_start(a, "default", &err), -1);
	CU_ASSERT(strstr(err.msg, "no music-on-hold provider") != NULL);
	CU_ASSERT_FALSE(px_moh_playing(a));
	px_moh_stop(a); /* nothing to stop: no effect */
	px_channel_unref(a);
}

static void test_start_stop_unregister(void)
{
	px_channel *a = chan(), *b = chan();
	px_err err = {""};

	memset(&seen, 0, sizeof(seen));
	CU_ASSERT_EQUAL_FATAL(px_moh_register(NULL, &fake, &err), 0);
	CU_ASSERT_EQUAL(px_moh_register(NULL, &fake, &err), -1);
	CU_ASSERT(strstr(err.msg, "already") != NULL);

	CU_ASSERT_EQUAL(px_moh_start(a, NULL, &err), 0);
	CU_ASSERT_STRING_EQUAL(seen.last_class, "default");
	CU_ASSERT(px_moh_playing(a));
	CU_ASSERT_FALSE(px_moh_playing(b));
	/* A second start on a replaces the first. */
	CU_ASSERT_EQUAL(px_moh_start(a, "jazz", &err), 0);
	CU_ASSERT_EQUAL(seen.stops, 1);
	CU_ASSERT_STRING_EQUAL(seen.last_class, "jazz");
	px_moh_stop(a);
	CU_ASSERT_EQUAL(seen.stops, 2);
	CU_ASSERT_FALSE(px_moh_playing(a));
	px_moh_stop(a);
	CU_ASSERT_EQUAL(seen.stops, 2);

	/* A refusal keeps nothing. */
	seen.refuse = true;
	CU_ASSERT_EQUAL(px_moh_start(b, "x", &err), -1);
	CU_ASSERT_STRING_EQUAL(err.msg, "refused");
	CU_ASSERT_FALSE(px_moh_playing(b));
	seen.refuse = false;

	/* Unregistering stops everyone, and nothing comes after. */
	CU_ASSERT_EQUAL(px_moh_start(a, "", &err), 0);
	CU_ASSERT_EQUAL(px_moh_start(b, "", &err), 0);
	int stops = seen.stops;
	px_moh_unregister(&fake);
	seen.unregistered = true;
	CU_ASSERT_EQUAL(seen.stops, stops + 2);
	CU_ASSERT_FALSE(px_moh_playing(a));
	CU_ASSERT_FALSE(px_moh_playing(b));
	px_moh_stop(a);
	CU_ASSERT_EQUAL(px_moh_start(a, "", &err), -1);
	CU_ASSERT_EQUAL(seen.late_calls, 0);
	px_channel_unref(a);
	px_channel_unref(b);
}

static void test_suggested_class(void)
{
	px_channel *a = chan();
	char buf[64];

	px_moh_suggested_class(a, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "default");
	px_channel_var_set(a, PX_MOH_SUGGEST_VAR, "lobby");
	px_moh_suggested_class(a, buf, sizeof(buf));
	CU_ASSERT_STRING_EQUAL(buf, "lobby");
	px_channel_unref(a);
}

int main(void)
{
	CU_pSuite suite;
	unsigned failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("moh", NULL, NULL);
	CU_add_test(suite, "no provider", test_no_provider);
	CU_add_test(suite, "start, stop, unregister", test_start_stop_unregister);
	CU_add_test(suite, "suggested class", test_suggested_class);
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
