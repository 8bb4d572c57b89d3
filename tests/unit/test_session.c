/*
 * Unit tests of sessions that go somewhere else (core/channel.c sessions
 * and departures, core/bridge.c, core/app.c): the operator's Bridge, its
 * meeting point and what each side does when it ends, Redirect of one or
 * two channels, and who owns a channel at every step. Channels are those
 * of a fake technology "Fake" (a dest starting with "auto" answers at
 * once, others ring until the test ends them); sessions are real session
 * threads started by px_channel_originate; the dialplan is a small engine
 * registered here whose extensions run two applications defined here:
 * Park (waits for events like Dial, -1 on hangup or redirect) and Busy
 * (blocks until the test releases it, looking at no event). What each
 * session does is written to a log that the tests wait on, always with a
 * bound. After each test every channel must be gone.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include <plexus/app.h>
#include <plexus/bridge.h>
#include <plexus/channel.h>
#include <plexus/codec.h>
#include <plexus/config.h>
#include <plexus/dialplan.h>
#include <plexus/log.h>
#include <plexus/media.h>

#include "../../core/channel_internal.h"
#include "../../core/console_actions.h"
#include "../../core/log_internal.h"
#include "../../core/media_internal.h"
#include "../../core/thread_internal.h"

/* The longest any single wait of a test may take. */
#define WAIT_MS 5000

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- what the sessions did ---- */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t log_cond = PTHREAD_COND_INITIALIZER;
static char steps[8192];

/* "dest:what" of the channel whose fake dest is dest ("auto-a" logs as "a"). */
static const char *short_name(px_channel *ch)
{
	const char *n = px_channel_name(ch), *slash = strchr(n, '/');

	n = slash ? slash + 1 : n;
	return strncmp(n, "auto-", 5) ? (strncmp(n, "ring-", 5) ? n : n + 5) : n + 5;
}

static void step(px_channel *ch, const char *what)
{
	char line[128];
	const char *n = short_name(ch);

	snprintf(line, sizeof(line), "%.*s:%s ", (int)strcspn(n, "-"), n, what);
	pthread_mutex_lock(&log_lock);
	if (strlen(steps) + strlen(line) < sizeof(steps))
		strcat(steps, line);
	pthread_cond_broadcast(&log_cond);
	pthread_mutex_unlock(&log_lock);
}

/* Wait until the log holds want ("a:after "); false after WAIT_MS. */
static bool wait_step(const char *want)
{
	struct timespec deadline;
	bool found;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += WAIT_MS / 1000;
	pthread_mutex_lock(&log_lock);
	while (!(found = strstr(steps, want) != NULL))
		if (pthread_cond_timedwait(&log_cond, &log_lock, &deadline))
			break;
	found = strstr(steps, want) != NULL;
	if (!found)
		fprintf(stderr, "\n  expected step '%s'; steps: %s\n", want, steps);
	pthread_mutex_unlock(&log_lock);
	return found;
}

static bool has_step(const char *want)
{
	bool found;

	pthread_mutex_lock(&log_lock);
	found = strstr(steps, want) != NULL;
	pthread_mutex_unlock(&log_lock);
	return found;
}

/* ---- the fake technology ---- */

static atomic_int destroyed;
static const struct px_channel_tech fake_tech;

static px_channel *fake_new(const char *dest)
{
	char prefix[80];

	snprintf(prefix, sizeof(prefix), "Fake/%s", dest);
	return px_channel_alloc(&fake_tech, prefix, NULL, NULL);
}

static px_channel *fake_request(const char *dest, px_channel *requestor, int *cause)
{
	(void)requestor;
	(void)cause;
	return fake_new(dest);
}

static int fake_call(px_channel *ch, int timeout_ms)
{
	(void)timeout_ms;
	if (strstr(px_channel_name(ch), "/auto-")) {
		px_channel_set_state(ch, PX_STATE_UP);
		px_channel_queue_control(ch, PX_CONTROL_ANSWER);
	} else {
		px_channel_set_state(ch, PX_STATE_RINGING);
	}
	return 0;
}

static int fake_op(px_channel *ch)
{
	(void)ch;
	return 0;
}

static void fake_destroy(px_channel *ch)
{
	(void)ch;
	atomic_fetch_add(&destroyed, 1);
}

static const struct px_channel_tech fake_tech = {
	.type = "Fake",
	.request = fake_request,
	.call = fake_call,
	.answer = fake_op,
	.hangup = fake_op,
	.destroy = fake_destroy,
};

/* ---- the applications ---- */

/* Waits for events as Dial does: -1 on a hangup or a redirect. */
static int park_exec(px_channel *ch, const char *data)
{
	struct px_channel_event ev;

	(void)data;
	step(ch, "park");
	for (long long end = now_ms() + 4 * WAIT_MS; now_ms() < end;) {
		if (px_channel_is_hungup(ch))
			return -1;
		if (!px_channel_wait_event(ch, 100, &ev))
			continue;
		if (ev.type == PX_EVENT_HANGUP || ev.type == PX_EVENT_REDIRECT)
			return -1;
	}
	step(ch, "park-timeout");
	return -1;
}

static pthread_mutex_t busy_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t busy_cond = PTHREAD_COND_INITIALIZER;
static bool busy_released;

/* Looks at no event until the test releases it (a long Playback). */
static int busy_exec(px_channel *ch, const char *data)
{
	struct timespec deadline;

	(void)data;
	step(ch, "busy");
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 4 * WAIT_MS / 1000;
	pthread_mutex_lock(&busy_lock);
	while (!busy_released)
		if (pthread_cond_timedwait(&busy_cond, &busy_lock, &deadline))
			break;
	pthread_mutex_unlock(&busy_lock);
	step(ch, "busy-done");
	return 0;
}

static void release_busy(void)
{
	pthread_mutex_lock(&busy_lock);
	busy_released = true;
	pthread_cond_broadcast(&busy_cond);
	pthread_mutex_unlock(&busy_lock);
}

static const struct px_app park_app = {
	.name = "Park", .synopsis = "Wait for a hangup or a redirect", .exec = park_exec};
static const struct px_app busy_app = {
	.name = "Busy", .synopsis = "Block until the test releases it", .exec = busy_exec};

/* ---- the dialplan: context "t" ---- */

static bool dp_exists(const char *context, const char *exten, const char *callerid)
{
	(void)callerid;
	return !strcmp(context, "t") &&
	       (!strcmp(exten, "park") || !strcmp(exten, "busy") || !strcmp(exten, "next"));
}

/* park and next: Park, then (the next step, if Park returned 0) "after"
 * and Park again. busy: Busy first, then the same. */
static int dp_exec(px_channel *ch, const char *context, const char *exten)
{
	px_err err = {""};
	char what[32];

	(void)context;
	snprintf(what, sizeof(what), "exten-%s", exten);
	step(ch, what);
	if (!strcmp(exten, "busy") && px_app_exec(ch, "Busy", "", &err) < 0)
		return -1;
	if (px_app_exec(ch, "Park", "", &err) < 0)
		return -1;
	step(ch, "after");
	px_app_exec(ch, "Park", "", &err);
	return -1;
}

static const struct px_dialplan_engine engine = {
	.name = "test", .exists = dp_exists, .exec = dp_exec};

/* ---- helpers ---- */

static px_channel *originate(const char *dest, const char *exten)
{
	struct px_originate o = {
		.tech = "Fake", .dest = dest, .context = "t", .exten = exten, .timeout_ms = 20000};
	px_channel *ch = NULL;
	px_err err = {""};

	if (px_channel_originate(&o, &ch, &err) < 0)
		fprintf(stderr, "\n  originate %s: %s\n", dest, err.msg);
	return ch;
}

static bool wait_peer(px_channel *ch, px_channel *want)
{
	for (long long end = now_ms() + WAIT_MS; now_ms() < end; usleep(10000)) {
		px_channel *p = px_channel_get_peer(ch);
		px_channel_unref(p);
		if (p == want)
			return true;
	}
	return false;
}

static bool wait_hungup(px_channel *ch)
{
	for (long long end = now_ms() + WAIT_MS; now_ms() < end; usleep(10000))
		if (px_channel_is_hungup(ch))
			return true;
	return false;
}

/* Every channel gone and every session ended: what each test ends with. */
static void expect_all_gone(void)
{
	long long end = now_ms() + WAIT_MS;

	while ((px_channel_count() || px_channel_sessions_running()) && now_ms() < end)
		usleep(10000);
	if (px_channel_count())
		fprintf(stderr, "\n  %zu channels left\n", px_channel_count());
	CU_ASSERT_EQUAL(px_channel_count(), 0);
	CU_ASSERT_EQUAL(px_channel_sessions_running(), 0);
}

static void reset(void)
{
	pthread_mutex_lock(&log_lock);
	steps[0] = '\0';
	pthread_mutex_unlock(&log_lock);
	pthread_mutex_lock(&busy_lock);
	busy_released = false;
	pthread_mutex_unlock(&busy_lock);
}

/* The media engine on a few loopback ports below the ephemeral range. */
static int start_media(void)
{
	char text[160];
	unsigned base = 12000 + (unsigned)(getpid() % 1000) * 20;
	px_config *cfg = NULL;
	px_err err = {""};
	int rc;

	snprintf(text, sizeof(text), "[general]\nrtpstart = %u\nrtpend = %u\nworkers = 1\n", base,
		 base + 19);
	if (px_config_load_string("rtp.conf", text, &cfg, &err) < 0)
		return -1;
	rc = px_media_init(cfg, &err);
	if (rc < 0)
		fprintf(stderr, "\n  px_media_init: %s\n", err.msg);
	px_config_unref(cfg);
	return rc;
}

/* ---- tests ---- */

/* After an operator's bridge, the side left behind goes on in its
 * dialplan after the application it was taken out of: it is not hung up. */
static void test_bridge_survivor_goes_on(void)
{
	px_channel *a, *b;
	px_err err = {""};

	reset();
	a = originate("auto-a", "park");
	b = originate("auto-b", "park");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_TRUE(wait_step("a:park ") && wait_step("b:park "));
	CU_ASSERT_EQUAL(px_channel_bridge(a, b, &err), 0);
	CU_ASSERT_TRUE(wait_peer(a, b));
	CU_ASSERT_TRUE(wait_peer(b, a));
	/* Both sessions are still the channels' own. */
	CU_ASSERT_TRUE(px_channel_in_session(a));
	CU_ASSERT_TRUE(px_channel_in_session(b));
	px_channel_queue_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	CU_ASSERT_TRUE(wait_step("a:after "));
	CU_ASSERT_TRUE(wait_hungup(b));
	CU_ASSERT_FALSE(px_channel_is_hungup(a));
	CU_ASSERT_TRUE(px_channel_in_session(a));
	CU_ASSERT_FALSE(has_step("b:after "));
	CU_ASSERT_TRUE(wait_peer(a, NULL));
	/* The same the other way round: a leaves, b goes on. */
	px_channel_hangup(a, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();

	reset();
	a = originate("auto-a", "park");
	b = originate("auto-b", "park");
	CU_ASSERT_TRUE(wait_step("a:park ") && wait_step("b:park "));
	CU_ASSERT_EQUAL(px_channel_bridge(a, b, &err), 0);
	CU_ASSERT_TRUE(wait_peer(b, a));
	px_channel_queue_hangup(a, PX_CAUSE_USER_BUSY);
	CU_ASSERT_TRUE(wait_step("b:after "));
	CU_ASSERT_FALSE(px_channel_is_hungup(b));
	px_channel_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();
}

/* b's session handed b over, then a gave up (hung up before it got to the
 * meeting point): b is not left without an owner, it goes on where it was. */
static void test_bridge_a_hangs_up_first(void)
{
	px_channel *a, *b;
	px_err err = {""};

	reset();
	a = originate("auto-a", "busy");
	b = originate("auto-b", "park");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_TRUE(wait_step("a:busy ") && wait_step("b:park "));
	CU_ASSERT_EQUAL(px_channel_bridge(a, b, &err), 0);
	usleep(100000); /* b's session is at the meeting point by now */
	px_channel_hangup(a, PX_CAUSE_NORMAL_CLEARING);
	release_busy();
	CU_ASSERT_TRUE(wait_step("b:after "));
	CU_ASSERT_FALSE(px_channel_is_hungup(b));
	CU_ASSERT_TRUE(px_channel_in_session(b));
	px_channel_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();
}

/* a's bridge request is replaced by a redirect before a's session took it:
 * a goes where it was sent, b goes on where it was. */
static void test_bridge_replaced_by_redirect(void)
{
	px_channel *a, *b;
	px_err err = {""};

	reset();
	a = originate("auto-a", "busy");
	b = originate("auto-b", "park");
	CU_ASSERT_TRUE(wait_step("a:busy ") && wait_step("b:park "));
	CU_ASSERT_EQUAL(px_channel_bridge(a, b, &err), 0);
	usleep(100000);
	CU_ASSERT_EQUAL(px_channel_async_goto(a, "t", "next", &err), 0);
	release_busy();
	CU_ASSERT_TRUE(wait_step("a:exten-next "));
	CU_ASSERT_TRUE(wait_step("b:after "));
	CU_ASSERT_FALSE(px_channel_is_hungup(b));
	px_channel_hangup(a, PX_CAUSE_NORMAL_CLEARING);
	px_channel_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();
}

/* Two originated channels bridged while ringing, then both fail: the
 * departures that name each other do not keep both alive for ever. */
static void test_bridge_no_reference_cycle(void)
{
	px_channel *a, *b;
	px_err err = {""};
	int before = atomic_load(&destroyed);

	reset();
	a = originate("ring-a", "park");
	b = originate("ring-b", "park");
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(px_channel_bridge(a, b, &err), 0);
	px_channel_queue_hangup(a, PX_CAUSE_USER_BUSY);
	px_channel_queue_hangup(b, PX_CAUSE_NO_ANSWER);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();
	CU_ASSERT_EQUAL(atomic_load(&destroyed) - before, 2);
}

struct bridge_thread {
	px_channel *a, *b;
};

static void *run_dial_bridge(void *arg)
{
	struct bridge_thread *t = arg;

	px_bridge_run(t->a, t->b);
	return NULL;
}

/* Dial's bridge (b without a session): when it ends, b waits on its own
 * waiter again, never on a's (which dies with a). A dialed leg is
 * redirected only while it is in a bridge that will carry it out. */
static void test_dial_bridge_and_redirect(void)
{
	px_channel *a = fake_new("dial-a"), *b = fake_new("dial-b");
	struct bridge_thread t = {a, b};
	px_waiter *own_b = px_channel_waiter(b);
	px_err err = {""};
	pthread_t th;

	reset();
	/* b rings: no session, no bridge yet; nobody would move it. */
	CU_ASSERT_EQUAL(px_channel_async_goto(b, "t", "next", &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "redirect the channel that dialed it"));
	CU_ASSERT_FALSE(px_channel_leaving(b));
	CU_ASSERT_EQUAL(pthread_create(&th, NULL, run_dial_bridge, &t), 0);
	CU_ASSERT_TRUE(wait_peer(b, a));
	px_channel_queue_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	pthread_join(th, NULL);
	CU_ASSERT_PTR_EQUAL(px_channel_waiter(b), own_b);
	CU_ASSERT_TRUE(px_channel_is_hungup(a));
	px_channel_unref(a);
	/* a is gone; an event on b must touch nothing of a's. */
	px_channel_queue_control(b, PX_CONTROL_RINGING);
	px_channel_unref(b);
	expect_all_gone();

	/* In the bridge, the dialed leg may be redirected: it gets a session. */
	a = fake_new("dial-a");
	b = fake_new("dial-b");
	t.a = a;
	t.b = b;
	CU_ASSERT_EQUAL(pthread_create(&th, NULL, run_dial_bridge, &t), 0);
	CU_ASSERT_TRUE(wait_peer(b, a));
	CU_ASSERT_EQUAL(px_channel_async_goto(b, "t", "next", &err), 0);
	pthread_join(th, NULL);
	CU_ASSERT_TRUE(wait_step("dial:exten-next "));
	CU_ASSERT_TRUE(px_channel_is_hungup(a));
	CU_ASSERT_FALSE(px_channel_is_hungup(b));
	px_channel_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();
}

/* A format no translator reaches: no path to or from it. */
static const struct px_format island = {.name = "island",
					.description = "a format with no translator",
					.encoding = "X-ISLAND",
					.sample_rate = 8000,
					.rtp_clock = 8000,
					.static_pt = -1};

static px_rtp *rtp_with(const char *format)
{
	struct sockaddr_in local = {.sin_family = AF_INET,
				    .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct px_rtp_codec c = {.format = px_format_find(format), .pt = 96, .dtmf_pt = -1};
	px_rtp *r = NULL;
	px_err err = {""};

	if (px_rtp_new((struct sockaddr *)&local, &r, &err) < 0) {
		fprintf(stderr, "\n  px_rtp_new: %s\n", err.msg);
		return NULL;
	}
	px_rtp_set_codec(r, &c);
	return r;
}

/* Legs whose formats differ are bridged through the media layer's
 * transcoding (here slin and slin16, joined by a resampler), whatever
 * codec names the technology reported; the Bridge is refused, naming both
 * formats and leaving both where they were, only when no translation path
 * joins them. */
static void test_bridge_formats_differ(void)
{
	px_rtp *ra, *rb, *rc;
	px_channel *a, *b;
	px_err err = {""};

	reset();
	CU_ASSERT_FATAL(start_media() == 0);
	CU_ASSERT_FATAL(px_format_register(NULL, &island, &err) == 0);
	ra = rtp_with("slin");
	rb = rtp_with("slin16");
	rc = rtp_with("island");
	CU_ASSERT_FATAL(ra && rb && rc);
	a = originate("auto-a", "park");
	b = originate("auto-b", "park");
	CU_ASSERT_TRUE(wait_step("a:park ") && wait_step("b:park "));
	px_channel_set_rtp(a, ra);
	px_channel_set_rtp(b, rc);
	px_channel_set_codec(a, "PCMU");
	px_channel_set_codec(b, "PCMA");
	CU_ASSERT_EQUAL(px_channel_bridge(a, b, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "slin"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "X-ISLAND"));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no translation path"));
	CU_ASSERT_FALSE(px_channel_leaving(a));
	CU_ASSERT_FALSE(px_channel_leaving(b));
	/* Different formats with a path (and different codec names): bridged,
	 * transcoding. */
	px_channel_set_rtp(b, rb);
	CU_ASSERT_EQUAL(px_channel_bridge(a, b, &err), 0);
	CU_ASSERT_TRUE(wait_peer(a, b));
	CU_ASSERT_TRUE(px_rtp_transcoding(ra));
	px_channel_hangup(a, PX_CAUSE_NORMAL_CLEARING);
	px_channel_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();
	px_rtp_destroy(ra);
	px_rtp_destroy(rb);
	px_rtp_destroy(rc);
	px_format_unregister(&island);
	px_media_shutdown();
}

static json_t *action(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static json_t *action(const char *fmt, ...)
{
	struct px_action_conn conn = {.role = PX_ROLE_ADMIN};
	char text[512], *out;
	json_t *r;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	out = px_action_run(&conn, text, strlen(text));
	r = out ? json_loads(out, 0, NULL) : NULL;
	free(out);
	return r;
}

/* Status of one channel: the first result's first channel (a new reference). */
static json_t *status_of(px_channel *ch)
{
	json_t *r = action("{\"action\":\"Status\",\"action_id\":1,\"channel\":\"%s\"}",
			   px_channel_name(ch));
	json_t *c = json_incref(json_array_get(json_object_get(r, "channels"), 0));

	json_decref(r);
	return c;
}

/* Status tells each channel's hold flag (what the last Hold/Unhold said,
 * from the far end or the operator), its talk time since the answer
 * (duration, answered_at) and its age since creation; a channel that has
 * not answered has no answered_at and no duration. */
static void test_status_hold_and_times(void)
{
	px_channel *a, *b;
	json_t *c;

	reset();
	a = originate("auto-a", "park");
	b = originate("ring-b", "park");
	CU_ASSERT_TRUE(wait_step("a:park "));
	c = status_of(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_TRUE(json_is_false(json_object_get(c, "hold")));
	CU_ASSERT_TRUE(json_is_integer(json_object_get(c, "answered_at")));
	CU_ASSERT_TRUE(json_integer_value(json_object_get(c, "answered_at")) >=
		       json_integer_value(json_object_get(c, "created_at")));
	CU_ASSERT_TRUE(json_is_integer(json_object_get(c, "duration")));
	CU_ASSERT_TRUE(json_integer_value(json_object_get(c, "duration")) <=
		       json_integer_value(json_object_get(c, "age")));
	json_decref(c);
	px_channel_queue_control(a, PX_CONTROL_HOLD); /* the far end holds */
	CU_ASSERT_TRUE(px_channel_on_hold(a));
	c = status_of(a);
	CU_ASSERT_TRUE(json_is_true(json_object_get(c, "hold")));
	json_decref(c);
	px_channel_set_hold(a, false, "operator");
	c = status_of(a);
	CU_ASSERT_TRUE(json_is_false(json_object_get(c, "hold")));
	json_decref(c);
	/* Ringing, not answered: no talk time yet. */
	c = status_of(b);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(c, "state")), "Ringing");
	CU_ASSERT_TRUE(json_is_null(json_object_get(c, "answered_at")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(c, "duration")), 0);
	CU_ASSERT_TRUE(json_is_integer(json_object_get(c, "age")));
	json_decref(c);
	CU_ASSERT_EQUAL(px_channel_answered(b), 0);
	px_channel_hangup(a, PX_CAUSE_NORMAL_CLEARING);
	px_channel_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	expect_all_gone();
}

/* Originate with "wait": the result comes once the call is answered
 * (answered true), or once it failed, as an error naming the channel and
 * the cause (a callee that rings past the timeout: cause 19). A "wait"
 * that is not a boolean is refused before anything is called. */
static void test_originate_wait(void)
{
	char name[96];
	px_channel *ch;
	long long t0;
	json_t *r;

	reset();
	r = action("{\"action\":\"Originate\",\"action_id\":\"w1\",\"channel\":\"Fake/auto-w\","
		   "\"exten\":\"park\",\"context\":\"t\",\"wait\":true}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "response")), "Success");
	CU_ASSERT_TRUE(json_is_true(json_object_get(r, "answered")));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(json_string_value(json_object_get(r, "channel")), "Fake/auto-w"));
	snprintf(name, sizeof(name), "%s", json_string_value(json_object_get(r, "channel")));
	json_decref(r);
	CU_ASSERT_TRUE(wait_step("w:park "));

	t0 = now_ms();
	r = action("{\"action\":\"Originate\",\"action_id\":\"w2\",\"channel\":\"Fake/ring-v\","
		   "\"exten\":\"park\",\"context\":\"t\",\"timeout\":1,\"wait\":true}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "response")), "Error");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "code")), "failed");
	CU_ASSERT_TRUE(json_is_false(json_object_get(r, "answered")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(r, "cause")), PX_CAUSE_NO_ANSWER);
	CU_ASSERT_PTR_NOT_NULL(
		strstr(json_string_value(json_object_get(r, "channel")), "Fake/ring-v"));
	CU_ASSERT_PTR_NOT_NULL(
		strstr(json_string_value(json_object_get(r, "message")), "cause 19"));
	/* It waited for the outcome: the timeout, not the next event. */
	CU_ASSERT(now_ms() - t0 >= 900);
	json_decref(r);

	r = action("{\"action\":\"Originate\",\"action_id\":\"w3\",\"channel\":\"Fake/auto-u\","
		   "\"exten\":\"park\",\"context\":\"t\",\"wait\":\"yes\"}");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "code")), "bad_field");
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "field")), "wait");
	json_decref(r);
	usleep(100000);
	CU_ASSERT_FALSE(has_step("u:"));
	ch = px_channel_find(name);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
	px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(ch);
	expect_all_gone();
}

/* Redirect of a channel and another: both targets are checked before
 * either moves, so a bad one leaves both where they were. */
static void test_redirect_two(void)
{
	px_channel *a, *b, *dialed = fake_new("dial-x");
	px_err err = {""};
	json_t *r;

	reset();
	a = originate("auto-a", "park");
	b = originate("auto-b", "park");
	CU_ASSERT_TRUE(wait_step("a:park ") && wait_step("b:park "));
	r = action("{\"action\":\"Redirect\",\"action_id\":1,\"channel\":\"%s\",\"exten\":"
		   "\"nowhere\",\"context\":\"t\",\"extra_channel\":\"%s\",\"extra_exten\":"
		   "\"next\"}",
		   px_channel_name(a), px_channel_name(b));
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "response")), "Error");
	CU_ASSERT_PTR_NOT_NULL(strstr(json_string_value(json_object_get(r, "message")), "nowhere"));
	json_decref(r);
	CU_ASSERT_FALSE(px_channel_leaving(a));
	CU_ASSERT_FALSE(px_channel_leaving(b));
	/* A channel nobody would move fails the pair: neither moves. */
	CU_ASSERT_EQUAL(px_channel_async_goto2(a, "t", "next", dialed, "t", "next", &err), -1);
	CU_ASSERT_FALSE(px_channel_leaving(a));
	usleep(200000);
	CU_ASSERT_FALSE(has_step("exten-next"));
	/* Both good: both go. */
	r = action("{\"action\":\"Redirect\",\"action_id\":2,\"channel\":\"%s\",\"exten\":"
		   "\"next\",\"context\":\"t\",\"extra_channel\":\"%s\"}",
		   px_channel_name(a), px_channel_name(b));
	CU_ASSERT_STRING_EQUAL(json_string_value(json_object_get(r, "response")), "Success");
	json_decref(r);
	CU_ASSERT_TRUE(wait_step("a:exten-next ") && wait_step("b:exten-next "));
	px_channel_hangup(a, PX_CAUSE_NORMAL_CLEARING);
	px_channel_hangup(b, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(a);
	px_channel_unref(b);
	px_channel_unref(dialed);
	expect_all_gone();
}

/* A channel's event queue keeps its events in order as it grows past the
 * slots inside the channel (also when the ring has wrapped), holds at
 * most 64, drops what comes when it is full, and a hangup into a full
 * queue is never lost: it replaces the newest event. */
static void test_event_queue_grows(void)
{
	px_channel *ch = fake_new("evq");
	struct px_channel_event ev;
	unsigned next = 0, expect = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
	/* Wrap the first ring: 6 in, 5 out, then fill well past its size. */
	for (int i = 0; i < 6; i++) {
		ev = (struct px_channel_event){
			.type = PX_EVENT_DTMF, .digit = '1', .duration_ms = next++};
		px_channel_queue_event(ch, &ev);
	}
	for (int i = 0; i < 5; i++) {
		CU_ASSERT_EQUAL_FATAL(px_channel_take_event(ch, &ev), 1);
		CU_ASSERT_EQUAL(ev.duration_ms, expect++);
	}
	while (next < expect + 70) { /* 1 queued + 69 more: 64 kept */
		ev = (struct px_channel_event){
			.type = PX_EVENT_DTMF, .digit = '2', .duration_ms = next++};
		px_channel_queue_event(ch, &ev);
	}
	ev = (struct px_channel_event){.type = PX_EVENT_HANGUP, .cause = 17};
	px_channel_queue_event(ch, &ev);
	for (int i = 0; i < 63; i++) {
		CU_ASSERT_EQUAL_FATAL(px_channel_take_event(ch, &ev), 1);
		CU_ASSERT_EQUAL(ev.type, PX_EVENT_DTMF);
		CU_ASSERT_EQUAL(ev.duration_ms, expect++);
	}
	CU_ASSERT_EQUAL_FATAL(px_channel_take_event(ch, &ev), 1);
	CU_ASSERT_EQUAL(ev.type, PX_EVENT_HANGUP);
	CU_ASSERT_EQUAL(ev.cause, 17);
	CU_ASSERT_EQUAL(px_channel_take_event(ch, &ev), 0);
	/* Empty again, it takes new events at once. */
	ev = (struct px_channel_event){.type = PX_EVENT_DTMF, .digit = '3'};
	px_channel_queue_event(ch, &ev);
	CU_ASSERT_EQUAL(px_channel_take_event(ch, &ev), 1);
	CU_ASSERT_EQUAL(ev.digit, '3');
	px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(ch);
	expect_all_gone();
}

/* What the heap's purge hooks ask (through main.c): a channel now, or one
 * made in the last seconds, so that the gaps of a load of short calls do not
 * read as idle. */
static void test_channel_recent(void)
{
	px_channel *ch;

	expect_all_gone();
	ch = fake_new("recent");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
	CU_ASSERT_TRUE(px_channel_recent(0));
	px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(ch);
	expect_all_gone();
	CU_ASSERT_FALSE(px_channel_recent(0));
	CU_ASSERT_TRUE(px_channel_recent(10));
	/* The clock counts whole seconds: 1.1 s later the second has changed. */
	usleep(1100 * 1000);
	CU_ASSERT_FALSE(px_channel_recent(1));
	CU_ASSERT_TRUE(px_channel_recent(10));
}

/* ---- the session pool ---- */

/* The pool keeps this many idle threads beyond the queued sessions
 * (SESSION_SPARE in core/channel.c). */
#define POOL_SPARE 8

static int threads_named(const char *name)
{
	static struct px_thread_info info[1024];
	size_t n = px_thread_list(info, 1024);
	int count = 0;

	for (size_t i = 0; i < n && i < 1024; i++)
		count += !strcmp(info[i].name, name);
	return count;
}

static int count_steps(const char *what)
{
	int n = 0;

	pthread_mutex_lock(&log_lock);
	for (const char *p = steps; (p = strstr(p, what)); p += strlen(what))
		n++;
	pthread_mutex_unlock(&log_lock);
	return n;
}

static bool wait_count_steps(const char *what, int want)
{
	for (long long end = now_ms() + WAIT_MS; now_ms() < end; usleep(10000))
		if (count_steps(what) >= want)
			break;
	return count_steps(what) == want;
}

/* An inbound call's session, started from this thread as chan_sip starts
 * one from the SIP thread. */
static px_channel *start_inbound(const char *dest, const char *exten)
{
	px_channel *ch = fake_new(dest);
	px_err err = {""};

	if (!ch)
		return NULL;
	px_channel_set_dialplan(ch, "t", exten);
	if (px_channel_start_session(ch, &err) < 0) {
		fprintf(stderr, "\n  start %s: %s\n", dest, err.msg);
		px_channel_hangup(ch, PX_CAUSE_CONGESTION);
	}
	return ch;
}

static void end_all(px_channel **ch, int n)
{
	release_busy();
	for (int i = 0; i < n; i++) {
		px_channel_hangup(ch[i], PX_CAUSE_NORMAL_CLEARING);
		px_channel_unref(ch[i]);
	}
	expect_all_gone();
}

/* 40 calls start at once, more than the threads the earlier tests left:
 * each is run by a thread the keeper makes, and once they all run the
 * pool still holds its spares, made ahead of the next calls. */
static void test_pool_burst_and_spares(void)
{
	enum { BURST = 40 };
	px_channel *ch[BURST];
	char dest[32];

	reset();
	for (int i = 0; i < BURST; i++) {
		snprintf(dest, sizeof(dest), "ring-p%d", i);
		ch[i] = start_inbound(dest, "busy");
		CU_ASSERT_PTR_NOT_NULL_FATAL(ch[i]);
	}
	CU_ASSERT(wait_count_steps(":busy ", BURST));
	for (long long end = now_ms() + WAIT_MS; now_ms() < end; usleep(10000))
		if (threads_named("session") >= BURST + POOL_SPARE)
			break;
	CU_ASSERT(threads_named("session") >= BURST + POOL_SPARE);
	CU_ASSERT_EQUAL(threads_named("session-pool"), 1);
	end_all(ch, BURST);
}

/* With no thread to be made, every idle thread takes a call and the calls
 * beyond them are hung up as congestion at once (not left waiting for a
 * call to end); once threads can be made again, the keeper's next try
 * makes them and a new call runs. */
static void test_pool_no_thread(void)
{
	enum { MAX = 200, EXTRA = 3 };
	px_channel *ch[MAX];
	char dest[32];
	int idle, n = 0;

	reset();
	px_channel_sessions_fail_spawns(true);
	idle = threads_named("session") - px_channel_sessions_running();
	CU_ASSERT_FATAL(idle >= POOL_SPARE && idle + EXTRA + 1 <= MAX);
	for (; n < idle + EXTRA; n++) {
		snprintf(dest, sizeof(dest), "ring-q%d", n);
		ch[n] = start_inbound(dest, "busy");
		CU_ASSERT_PTR_NOT_NULL_FATAL(ch[n]);
	}
	CU_ASSERT(wait_count_steps(":busy ", idle));
	for (int i = idle; i < n; i++) {
		CU_ASSERT(wait_hungup(ch[i]));
		CU_ASSERT_EQUAL(px_channel_hangup_cause(ch[i]), PX_CAUSE_CONGESTION);
	}
	CU_ASSERT_FALSE(px_channel_is_hungup(ch[0]));
	/* The keeper tries again 1 s after its failure (SESSION_RETRY_SECS). */
	px_channel_sessions_fail_spawns(false);
	usleep(1300 * 1000);
	ch[n++] = start_inbound("ring-q-after", "busy");
	CU_ASSERT_PTR_NOT_NULL_FATAL(ch[n - 1]);
	CU_ASSERT(wait_count_steps(":busy ", idle + 1));
	CU_ASSERT_FALSE(px_channel_is_hungup(ch[n - 1]));
	end_all(ch, n);
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failures;
	px_err err = {""};

	px_log_init();
	if (px_channel_tech_register(NULL, &fake_tech, &err) < 0 ||
	    px_app_register(NULL, &park_app, &err) < 0 ||
	    px_app_register(NULL, &busy_app, &err) < 0 ||
	    px_dialplan_register(NULL, &engine, &err) < 0) {
		fprintf(stderr, "setup: %s\n", err.msg);
		return 1;
	}
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("sessions: bridge and redirect", NULL, NULL);
	if (!suite ||
	    !CU_add_test(suite, "after an operator's bridge the survivor goes on",
			 test_bridge_survivor_goes_on) ||
	    !CU_add_test(suite, "a hangs up before the meeting: b goes on",
			 test_bridge_a_hangs_up_first) ||
	    !CU_add_test(suite, "a's bridge replaced by a redirect: b goes on",
			 test_bridge_replaced_by_redirect) ||
	    !CU_add_test(suite, "bridged while ringing, both fail: both freed",
			 test_bridge_no_reference_cycle) ||
	    !CU_add_test(suite, "Dial's bridge: waiter given back, dialed leg redirect",
			 test_dial_bridge_and_redirect) ||
	    !CU_add_test(suite, "Redirect of two channels is all or nothing", test_redirect_two) ||
	    !CU_add_test(suite, "Status: hold, talk time and age", test_status_hold_and_times) ||
	    !CU_add_test(suite, "Originate with wait: the outcome", test_originate_wait) ||
	    !CU_add_test(suite, "event queue: grows in order, 64 at most, hangup kept",
			 test_event_queue_grows) ||
	    !CU_add_test(suite, "bridge across formats: transcoded, refused without a path",
			 test_bridge_formats_differ) ||
	    !CU_add_test(suite, "a channel counts as recent for the seconds asked",
			 test_channel_recent) ||
	    !CU_add_test(suite, "session pool: a burst of calls is served, spares made ahead",
			 test_pool_burst_and_spares) ||
	    !CU_add_test(suite,
			 "session pool: no thread to be made: the calls beyond the idle "
			 "threads are refused at once",
			 test_pool_no_thread)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	px_channel_sessions_shutdown();
	px_dialplan_unregister(&engine);
	px_app_unregister(&busy_app);
	px_app_unregister(&park_app);
	px_channel_tech_unregister(&fake_tech);
	px_log_shutdown();
	return failures != 0;
}
