/*
 * Unit tests of the event bus (core/event.c) and of the JSON form of events
 * (core/event_json.c): nothing is built without subscribers, fan-out of
 * one event to every subscriber (the same immutable object), filters by
 * type, channel (name, endpoint prefix, uniqueid, linkedid, peer) and
 * endpoint, the bounded queue that drops for one subscriber only and says
 * after which event and how many, sequence order seen by each subscriber
 * while several threads emit, unsubscribing while other threads emit,
 * fields kept as strings and integers, channel events carrying the
 * channel's identity, the frame text every console shares (the same
 * whether a thread refills its object of the kind or builds one), and taking
 * several events at once, and a reader taking beside several emitting
 * threads. The channels are those of a technology that does
 * nothing, made with px_channel_alloc.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>
#include <jansson.h>

#include <plexus/channel.h>
#include <plexus/event.h>
#include <plexus/location.h>
#include <plexus/log.h>

#include "../../core/console_actions.h"
#include "../../core/event_internal.h"
#include "../../core/event_json.h"
#include "../../core/json_text.h"
#include "../../core/log_internal.h"
#include "../../console/protocol.h"

#define ASSERT_STR(actual, expected)                                                               \
	do {                                                                                       \
		const char *a_ = (actual), *e_ = (expected);                                       \
		bool same_ = a_ && !strcmp(a_, e_);                                                \
		if (!same_)                                                                        \
			fprintf(stderr, "\n  expected \"%s\", got \"%s\" (line %d)\n", e_,         \
				a_ ? a_ : "(null)", __LINE__);                                     \
		CU_ASSERT(same_);                                                                  \
	} while (0)

static int nop_call(px_channel *ch, int t)
{
	return 0;
}

static int nop_op(px_channel *ch)
{
	return 0;
}

static px_channel *nop_request(const char *dest, px_channel *req, int *cause)
{
	return NULL;
}

static const struct px_channel_tech nop_tech = {
	.type = "Test",
	.request = nop_request,
	.call = nop_call,
	.answer = nop_op,
	.hangup = nop_op,
};

static atomic_int notified;

static void count_notify(void *ctx)
{
	atomic_fetch_add((atomic_int *)ctx, 1);
}

/* Take every queued event; returns how many, their kinds into kinds[]. */
static size_t drain(px_event_sub *s, int *kinds, size_t max, uint64_t *lost_total)
{
	size_t n = 0;
	px_event *ev;
	uint64_t lost;

	*lost_total = 0;
	while ((ev = px_event_sub_take(s, &lost)) != NULL) {
		if (n < max)
			kinds[n] = px_event_kind(ev);
		n++;
		*lost_total += lost;
		px_event_unref(ev);
	}
	return n;
}

static void test_no_subscriber(void)
{
	CU_ASSERT_FALSE(px_event_listening());
	/* Emitting with nobody listening is allowed and builds nothing. */
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "core"));
	px_event_sub *s = px_event_subscribe(NULL, 4, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_TRUE(px_event_listening());
	CU_ASSERT_PTR_NULL(px_event_sub_take(s, NULL));
	px_event_unsubscribe(s);
	CU_ASSERT_FALSE(px_event_listening());
}

static void test_fan_out(void)
{
	atomic_int n1 = 0, n2 = 0;
	px_event_sub *a = px_event_subscribe(NULL, 8, count_notify, &n1);
	px_event_sub *b = px_event_subscribe(NULL, 8, count_notify, &n2);
	px_event *ea, *eb;
	uint64_t lost = 99;

	PX_EVENT_EMIT(PX_EV_MODULE_LOADED, NULL, NULL, PX_EVS("module", "res_x"),
		      PX_EVI("answer", 42));
	PX_EVENT_EMIT(PX_EV_MODULE_UNLOADED, NULL, NULL, PX_EVS("module", "res_x"));
	/* Woken once each: the queue went from empty to non-empty once. */
	CU_ASSERT_EQUAL(atomic_load(&n1), 1);
	CU_ASSERT_EQUAL(atomic_load(&n2), 1);
	ea = px_event_sub_take(a, &lost);
	eb = px_event_sub_take(b, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ea);
	CU_ASSERT_PTR_EQUAL(ea, eb); /* built once, shared */
	CU_ASSERT_EQUAL(lost, 0);
	CU_ASSERT_EQUAL(px_event_kind(ea), PX_EV_MODULE_LOADED);
	ASSERT_STR(px_event_field_get(ea, "module")->s, "res_x");
	CU_ASSERT_EQUAL(px_event_field_get(ea, "answer")->type, PX_EVF_INT);
	CU_ASSERT_EQUAL(px_event_field_get(ea, "answer")->i, 42);
	CU_ASSERT_PTR_NULL(px_event_field_get(ea, "nothing"));
	ASSERT_STR(px_event_channel(ea), "");
	px_event_unref(ea);
	px_event_unref(eb);
	ea = px_event_sub_take(a, NULL);
	CU_ASSERT_EQUAL(px_event_kind(ea), PX_EV_MODULE_UNLOADED);
	px_event_unref(ea);
	CU_ASSERT_PTR_NULL(px_event_sub_take(a, NULL));
	px_event_unsubscribe(a);
	/* b still holds its second event; unsubscribing releases it. */
	px_event_unsubscribe(b);
}

/* A subscriber is woken once per batch: not again until it has taken
 * everything and armed itself, and arming fails while events wait. */
static void test_notify_armed(void)
{
	atomic_int n = 0;
	px_event_sub *s = px_event_subscribe(NULL, 8, count_notify, &n);
	px_event *ev;

	PX_EVENT_EMIT(PX_EV_MODULE_LOADED, NULL, NULL, PX_EVS("module", "a"));
	CU_ASSERT_EQUAL(atomic_load(&n), 1);
	ev = px_event_sub_take(s, NULL);
	px_event_unref(ev);
	/* Drained but not armed: the next event does not wake it. */
	PX_EVENT_EMIT(PX_EV_MODULE_LOADED, NULL, NULL, PX_EVS("module", "b"));
	CU_ASSERT_EQUAL(atomic_load(&n), 1);
	/* An event waits: arming is refused. */
	CU_ASSERT_FALSE(px_event_sub_arm(s));
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	ASSERT_STR(px_event_field_get(ev, "module")->s, "b");
	px_event_unref(ev);
	CU_ASSERT_TRUE(px_event_sub_arm(s));
	PX_EVENT_EMIT(PX_EV_MODULE_LOADED, NULL, NULL, PX_EVS("module", "c"));
	PX_EVENT_EMIT(PX_EV_MODULE_LOADED, NULL, NULL, PX_EVS("module", "d"));
	CU_ASSERT_EQUAL(atomic_load(&n), 2);
	px_event_unsubscribe(s);
}

static void test_bounded_queue(void)
{
	px_event_sub *slow = px_event_subscribe(NULL, 3, NULL, NULL);
	px_event_sub *fast = px_event_subscribe(NULL, 100, NULL, NULL);
	uint64_t delivered, lost, after[8] = {0}, seqs[8] = {0};
	px_event *ev;
	int n = 0, kinds[16];

	for (int i = 0; i < 10; i++)
		PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", i));
	px_event_sub_stats(slow, &delivered, &lost);
	CU_ASSERT_EQUAL(delivered, 3);
	CU_ASSERT_EQUAL(lost, 7);
	/* The fast one lost nothing. */
	px_event_sub_stats(fast, &delivered, &lost);
	CU_ASSERT_EQUAL(delivered, 10);
	CU_ASSERT_EQUAL(lost, 0);
	/* The loss is told right after the last event kept. */
	while ((ev = px_event_sub_take(slow, &after[n])) != NULL) {
		seqs[n] = px_event_seq(ev);
		CU_ASSERT_EQUAL(px_event_field_get(ev, "i")->i, n);
		px_event_unref(ev);
		n++;
	}
	CU_ASSERT_EQUAL(n, 3);
	CU_ASSERT_EQUAL(after[0], 0);
	CU_ASSERT_EQUAL(after[1], 0);
	CU_ASSERT_EQUAL(after[2], 7);
	CU_ASSERT_EQUAL(seqs[1], seqs[0] + 1);
	/* Room again: the next event is kept. */
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", 10));
	ev = px_event_sub_take(slow, &after[0]);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(px_event_seq(ev), seqs[2] + 8);
	CU_ASSERT_EQUAL(after[0], 0);
	px_event_unref(ev);
	CU_ASSERT_EQUAL(drain(fast, kinds, 16, &lost), 11);
	CU_ASSERT_EQUAL(lost, 0);
	px_event_unsubscribe(slow);
	px_event_unsubscribe(fast);
}

/* Events lost while the queue held nothing (they could not be built) came
 * before the next queued event: they are told as lost after the event the
 * subscriber got before them, never after the next one. */
static void test_lost_before_next(void)
{
	px_event_sub *s = px_event_subscribe(NULL, 4, NULL, NULL);
	px_event *a, *b;
	uint64_t lost = 99, after = 99, a_seq;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	/* Nothing received yet: a loss now comes after the bus's last seq. */
	atomic_store(&px_event_build_failures, 1);
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "lost first"));
	CU_ASSERT_EQUAL(px_event_sub_lost_ahead(s, &after), 1);
	CU_ASSERT_EQUAL(after, px_event_last_seq() - 1);
	CU_ASSERT_EQUAL(px_event_sub_lost_ahead(s, &after), 0); /* told once */

	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "a"));
	a = px_event_sub_take(s, &lost);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_EQUAL(lost, 0);
	a_seq = px_event_seq(a);
	px_event_unref(a);
	/* Two events cannot be built while the queue is empty, then b is. */
	atomic_store(&px_event_build_failures, 2);
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "lost 1"));
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "lost 2"));
	CU_ASSERT_EQUAL(atomic_load(&px_event_build_failures), 0);
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "b"));
	/* b is not given before the loss ahead of it is told. */
	CU_ASSERT_PTR_NULL(px_event_sub_take(s, &lost));
	CU_ASSERT_FALSE(px_event_sub_arm(s));
	CU_ASSERT_EQUAL(px_event_sub_lost_ahead(s, &after), 2);
	CU_ASSERT_EQUAL(after, a_seq);
	b = px_event_sub_take(s, &lost);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_EQUAL(px_event_seq(b), a_seq + 3);
	/* Nothing was lost after b: the two came before it. */
	CU_ASSERT_EQUAL(lost, 0);
	px_event_unref(b);
	CU_ASSERT_EQUAL(px_event_sub_lost_ahead(s, &after), 0);
	CU_ASSERT_TRUE(px_event_sub_arm(s));
	px_event_unsubscribe(s);
}

/* A new Subscribe on a console changes its subscription in place: the
 * filter and the queue size change at one point in the sequence, queued
 * events stay (those beyond a smaller queue are counted as lost after the
 * last one kept), and none is queued twice. */
static void test_configure(void)
{
	struct px_event_filter hangups = {.kinds = PX_EVENT_KIND_BIT(PX_EV_HANGUP)};
	px_event_sub *s = px_event_subscribe(NULL, 8, NULL, NULL);
	uint64_t lost, delivered, first = px_event_last_seq() + 1;
	px_event *ev;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	for (int i = 0; i < 6; i++)
		PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", i));
	CU_ASSERT_EQUAL(px_event_sub_configure(s, &hangups, 3), 0);
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", 6)); /* filtered out now */
	for (int i = 0; i < 3; i++) {
		ev = px_event_sub_take(s, &lost);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
		CU_ASSERT_EQUAL(px_event_seq(ev), first + i);
		CU_ASSERT_EQUAL(lost, i == 2 ? 3 : 0);
		px_event_unref(ev);
	}
	CU_ASSERT_PTR_NULL(px_event_sub_take(s, &lost));
	px_event_sub_stats(s, &delivered, &lost);
	CU_ASSERT_EQUAL(delivered, 6);
	CU_ASSERT_EQUAL(lost, 3);
	/* Growing keeps what is queued and where it lost. */
	for (int i = 0; i < 5; i++)
		PX_EVENT_EMIT(PX_EV_HANGUP, NULL, NULL, PX_EVI("cause", 16));
	CU_ASSERT_EQUAL(px_event_sub_configure(s, NULL, 100), 0);
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", 7));
	ev = px_event_sub_take(s, &lost);
	CU_ASSERT_EQUAL(px_event_kind(ev), PX_EV_HANGUP);
	px_event_unref(ev);
	ev = px_event_sub_take(s, &lost);
	px_event_unref(ev);
	ev = px_event_sub_take(s, &lost);
	CU_ASSERT_EQUAL(px_event_kind(ev), PX_EV_HANGUP);
	CU_ASSERT_EQUAL(lost, 2);
	px_event_unref(ev);
	ev = px_event_sub_take(s, &lost);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	CU_ASSERT_EQUAL(px_event_kind(ev), PX_EV_RELOAD);
	px_event_unref(ev);
	CU_ASSERT_PTR_NULL(px_event_sub_take(s, &lost));
	/* The same size: only the filter changes. */
	CU_ASSERT_EQUAL(px_event_sub_configure(s, &hangups, 100), 0);
	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", 8));
	CU_ASSERT_PTR_NULL(px_event_sub_take(s, &lost));
	px_event_unsubscribe(s);
}

static void test_filters(void)
{
	px_channel *a = px_channel_alloc(&nop_tech, "Test/1001", NULL, NULL);
	px_channel *b = px_channel_alloc(&nop_tech, "Test/1002", px_channel_linkedid(a), NULL);
	struct px_event_filter f_kind = {.kinds = PX_EVENT_KIND_BIT(PX_EV_HANGUP) |
						  PX_EVENT_KIND_BIT(PX_EV_REGISTERED)};
	struct px_event_filter f_chan = {0}, f_ep = {0}, f_uid = {0}, f_link = {0};
	px_event_sub *sk, *sc, *se, *su, *sl;
	int kinds[32];
	uint64_t lost;

	snprintf(f_chan.channel, sizeof(f_chan.channel), "Test/1002");
	snprintf(f_ep.endpoint, sizeof(f_ep.endpoint), "1001");
	snprintf(f_uid.channel, sizeof(f_uid.channel), "%s", px_channel_uniqueid(b));
	snprintf(f_link.channel, sizeof(f_link.channel), "%s", px_channel_linkedid(a));
	sk = px_event_subscribe(&f_kind, 32, NULL, NULL);
	sc = px_event_subscribe(&f_chan, 32, NULL, NULL);
	se = px_event_subscribe(&f_ep, 32, NULL, NULL);
	su = px_event_subscribe(&f_uid, 32, NULL, NULL);
	sl = px_event_subscribe(&f_link, 32, NULL, NULL);

	PX_EVENT_EMIT(PX_EV_DIAL_BEGIN, a, b, PX_EVS("dialstring", "Test/1002"));
	PX_EVENT_EMIT(PX_EV_HANGUP, a, NULL, PX_EVI("cause", 16));
	PX_EVENT_EMIT(PX_EV_REGISTERED, NULL, NULL, PX_EVS("endpoint", "1001"));
	PX_EVENT_EMIT(PX_EV_REGISTERED, NULL, NULL, PX_EVS("endpoint", "1003"));
	PX_EVENT_EMIT(PX_EV_HANGUP, b, NULL, PX_EVI("cause", 16));

	/* By type: both hangups and both registrations. */
	CU_ASSERT_EQUAL(drain(sk, kinds, 32, &lost), 4);
	/* By channel "Test/1002" (an endpoint's channels): as peer and as channel. */
	CU_ASSERT_EQUAL(drain(sc, kinds, 32, &lost), 2);
	CU_ASSERT_EQUAL(kinds[0], PX_EV_DIAL_BEGIN);
	CU_ASSERT_EQUAL(kinds[1], PX_EV_HANGUP);
	/* By endpoint 1001: a's events and the registration of 1001. */
	CU_ASSERT_EQUAL(drain(se, kinds, 32, &lost), 3);
	CU_ASSERT_EQUAL(kinds[2], PX_EV_REGISTERED);
	/* By uniqueid of b, and by the linkedid both share. */
	CU_ASSERT_EQUAL(drain(su, kinds, 32, &lost), 2);
	CU_ASSERT_EQUAL(drain(sl, kinds, 32, &lost), 3);

	/* A changed filter applies to what comes next. */
	px_event_sub_set_filter(sk, &f_chan);
	PX_EVENT_EMIT(PX_EV_HANGUP, a, NULL, PX_EVI("cause", 16));
	CU_ASSERT_EQUAL(drain(sk, kinds, 32, &lost), 0);

	px_event_unsubscribe(sk);
	px_event_unsubscribe(sc);
	px_event_unsubscribe(se);
	px_event_unsubscribe(su);
	px_event_unsubscribe(sl);
	px_channel_unref(b);
	px_channel_unref(a);
}

/* A channel's own events: created, state, hangup once, with its identity. */
static void test_channel_events(void)
{
	struct px_event_filter f = {0};
	px_event_sub *s;
	px_channel *ch;
	px_event *ev;
	char uniqueid[32];

	s = px_event_subscribe(&f, 32, NULL, NULL);
	ch = px_channel_alloc(&nop_tech, "Test/2001", NULL, NULL);
	snprintf(uniqueid, sizeof(uniqueid), "%s", px_channel_uniqueid(ch));
	px_channel_set_caller(ch, "2001", "Alice");
	px_channel_set_state(ch, PX_STATE_RING);
	px_channel_set_state(ch, PX_STATE_RING); /* no change: no event */
	px_channel_queue_control(ch, PX_CONTROL_HOLD);
	px_channel_queue_dtmf(ch, '5', true, 0);
	px_channel_queue_dtmf(ch, '5', false, 120);
	px_channel_hangup(ch, 17);
	px_channel_hangup(ch, 16); /* only the first counts */
	px_channel_unref(ch);

	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_CHANNEL_CREATED);
	ASSERT_STR(px_event_uniqueid(ev), uniqueid);
	ASSERT_STR(px_event_linkedid(ev), uniqueid);
	CU_ASSERT_PTR_NOT_NULL(strstr(px_event_channel(ev), "Test/2001-"));
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_CHANNEL_STATE);
	ASSERT_STR(px_event_field_get(ev, "state")->s, "Ring");
	CU_ASSERT_EQUAL(px_event_field_get(ev, "state_code")->i, PX_STATE_RING);
	ASSERT_STR(px_event_field_get(ev, "caller_name")->s, "Alice");
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_HOLD);
	ASSERT_STR(px_event_field_get(ev, "source")->s, "remote");
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_DTMF_BEGIN);
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_DTMF_END);
	ASSERT_STR(px_event_field_get(ev, "digit")->s, "5");
	CU_ASSERT_EQUAL(px_event_field_get(ev, "duration_ms")->i, 120);
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_HANGUP);
	CU_ASSERT_EQUAL(px_event_field_get(ev, "cause")->i, 17);
	ASSERT_STR(px_event_field_get(ev, "cause_txt")->s, "User busy");
	px_event_unref(ev);
	/* One Hangup only, even after the channel is freed. */
	CU_ASSERT_PTR_NULL(px_event_sub_take(s, NULL));
	px_event_unsubscribe(s);
}

/* The connected party of an answered channel changes without a state
 * change (Redirect, Bridge, transfer): ConnectedLine tells it, once per
 * change; before the answer the next ChannelState carries it instead. */
static void test_connected_line(void)
{
	px_event_sub *s = px_event_subscribe(NULL, 32, NULL, NULL);
	px_channel *ch = px_channel_alloc(&nop_tech, "Test/2002", NULL, NULL);
	px_event *ev;

	px_channel_set_connected(ch, "1002", "Bob"); /* Down: no event */
	px_channel_set_state(ch, PX_STATE_UP);
	px_channel_set_connected(ch, "1002", "Bob"); /* no change: no event */
	px_channel_set_connected(ch, "1003", "Carol");
	px_channel_set_connected(ch, "1003", NULL); /* the name went */
	px_channel_unref(ch);

	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_CHANNEL_CREATED);
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_CHANNEL_STATE);
	ASSERT_STR(px_event_field_get(ev, "connected_num")->s, "1002");
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_CONNECTED_LINE);
	CU_ASSERT_PTR_NOT_NULL(strstr(px_event_channel(ev), "Test/2002-"));
	ASSERT_STR(px_event_field_get(ev, "connected_num")->s, "1003");
	ASSERT_STR(px_event_field_get(ev, "connected_name")->s, "Carol");
	px_event_unref(ev);
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_CONNECTED_LINE);
	ASSERT_STR(px_event_field_get(ev, "connected_num")->s, "1003");
	ASSERT_STR(px_event_field_get(ev, "connected_name")->s, "");
	px_event_unref(ev);
	/* Then only the Hangup of the freed channel. */
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_EQUAL_FATAL(px_event_kind(ev), PX_EV_HANGUP);
	px_event_unref(ev);
	CU_ASSERT_PTR_NULL(px_event_sub_take(s, NULL));
	px_event_unsubscribe(s);
}

static void test_json(void)
{
	px_event_sub *s = px_event_subscribe(NULL, 4, NULL, NULL);
	px_channel *ch = px_channel_alloc(&nop_tech, "Test/3001", NULL, NULL);
	px_event *ev;
	json_t *o;
	const char *json;
	char *text;

	while ((ev = px_event_sub_take(s, NULL)))
		px_event_unref(ev);
	PX_EVENT_EMIT(PX_EV_HANGUP, ch, NULL, PX_EVI("cause", 16),
		      PX_EVS("cause_txt", "Normal \"Clearing\"\n"));
	ev = px_event_sub_take(s, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	json = px_event_json(ev);
	CU_ASSERT_PTR_NOT_NULL_FATAL(json);
	CU_ASSERT_PTR_NULL(strchr(json, '\n')); /* one line */
	o = json_loads(json, 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	ASSERT_STR(json_string_value(json_object_get(o, "event")), "Hangup");
	CU_ASSERT_TRUE(json_is_integer(json_object_get(o, "cause")));
	CU_ASSERT_EQUAL(json_integer_value(json_object_get(o, "cause")), 16);
	ASSERT_STR(json_string_value(json_object_get(o, "cause_txt")), "Normal \"Clearing\"\n");
	CU_ASSERT_TRUE(json_is_integer(json_object_get(o, "seq")));
	CU_ASSERT_TRUE(json_is_real(json_object_get(o, "timestamp")));
	CU_ASSERT(json_real_value(json_object_get(o, "timestamp")) > 1e9);
	ASSERT_STR(json_string_value(json_object_get(o, "uniqueid")), px_channel_uniqueid(ch));
	json_decref(o);
	text = px_event_lost_json(7, 12);
	ASSERT_STR(text, "{\"event\":\"EventsLost\",\"lost\":7,\"after_seq\":12}");
	free(text);
	px_event_unref(ev);
	px_channel_unref(ch);
	px_event_unsubscribe(s);
}

/* Two subscribers of one event get one JSON text, encoded once and freed
 * with the event (ASan and valgrind see a double free or a leak). */
/* ---- text that is not UTF-8 ---- */

/* A registrar holding one binding whose User-Agent is Latin-1. */
static long latin1_list(const char *aor, struct px_binding **out)
{
	struct px_binding *b = calloc(1, sizeof(*b));

	(void)aor;
	if (!b)
		return -1;
	snprintf(b->aor, sizeof(b->aor), "1001");
	snprintf(b->contact, sizeof(b->contact), "sip:1001@127.0.0.1:5061");
	snprintf(b->received, sizeof(b->received), "udp:127.0.0.1:5061");
	snprintf(b->user_agent, sizeof(b->user_agent), "T\xe9l\xe9phone 1.0");
	b->expires_at = time(NULL) + 60;
	*out = b;
	return 1;
}

static size_t no_lookup(const char *aor, struct px_binding *out, size_t max)
{
	return 0;
}

static const struct px_registrar latin1_registrar = {
	.name = "latin1", .lookup = no_lookup, .list = latin1_list};

static json_t *run_action(const char *text)
{
	struct px_action_conn conn = {.role = PX_ROLE_ADMIN};
	char *out = px_action_run(&conn, text, strlen(text));
	json_t *r = out ? json_loads(out, 0, NULL) : NULL;

	free(out);
	return r;
}

/* Text from the wire that is not UTF-8 (a Latin-1 name, an attacker's
 * bytes) loses nothing in JSON: its bad bytes become U+FFFD, and the
 * field, the channel, the binding are all still there. */
static void test_json_not_utf8(void)
{
	px_event_sub *s = px_event_subscribe(NULL, 8, NULL, NULL);
	px_channel *ch = px_channel_alloc(&nop_tech, "Test/1001", NULL, NULL);
	px_err err = {""};
	px_event *ev;
	json_t *o, *r, *list;

	CU_ASSERT_PTR_NOT_NULL_FATAL(ch);
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "unknown endpoint"),
		      PX_EVS("endpoint", "ren\xe9\xff\xc3"),
		      PX_EVS("source", "udp:127.0.0.1:5070"));
	while ((ev = px_event_sub_take(s, NULL)) && px_event_kind(ev) != PX_EV_SECURITY)
		px_event_unref(ev);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev);
	o = json_loads(px_event_json(ev), 0, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	ASSERT_STR(json_string_value(json_object_get(o, "endpoint")),
		   "ren\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
	ASSERT_STR(json_string_value(json_object_get(o, "source")), "udp:127.0.0.1:5070");
	json_decref(o);
	px_event_unref(ev);
	px_event_unsubscribe(s);

	/* Status: the channel with a Latin-1 caller name is listed. */
	px_channel_set_caller(ch, "1001", "Andr\xe9");
	r = run_action("{\"action\":\"Status\",\"action_id\":1}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	list = json_object_get(r, "channels");
	CU_ASSERT_EQUAL(json_array_size(list), 1);
	ASSERT_STR(json_string_value(json_object_get(json_array_get(list, 0), "caller_name")),
		   "Andr\xef\xbf\xbd");
	json_decref(r);
	px_channel_unref(ch);

	/* Registrations: the binding with a Latin-1 User-Agent is listed. */
	CU_ASSERT_EQUAL_FATAL(px_registrar_register(NULL, &latin1_registrar, &err), 0);
	r = run_action("{\"action\":\"Registrations\",\"action_id\":2}");
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	list = json_object_get(r, "registrations");
	CU_ASSERT_EQUAL(json_array_size(list), 1);
	ASSERT_STR(json_string_value(json_object_get(json_array_get(list, 0), "user_agent")),
		   "T\xef\xbf\xbdl\xef\xbf\xbdphone 1.0");
	json_decref(r);
	px_registrar_unregister(&latin1_registrar);

	/* Valid UTF-8 of every length is kept as it is; truncated, overlong
	 * and surrogate sequences are not. */
	static const struct {
		const char *in, *out;
	} cases[] = {
		{"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e",
		 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e"},
		{"\xe2\x82", "\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
		{"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
		{"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = px_json_text(cases[i].in);
		CU_ASSERT_PTR_NOT_NULL_FATAL(j);
		ASSERT_STR(json_string_value(j), cases[i].out);
		json_decref(j);
	}
	o = px_json_text(NULL);
	ASSERT_STR(json_string_value(o), "");
	json_decref(o);
}

/* The object ev's JSON must read as, built with jansson: the common keys,
 * then the fields (a key given again keeps its place and takes the later
 * value), strings cleaned by px_json_text; the timestamp as 0. */
static json_t *expected_object(px_event *ev)
{
	json_t *o = json_object();

	json_object_set_new(o, "event", json_string(px_event_kind_name(px_event_kind(ev))));
	json_object_set_new(o, "seq", json_integer((json_int_t)px_event_seq(ev)));
	json_object_set_new(o, "timestamp", json_integer(0));
	if (px_event_channel(ev)[0]) {
		json_object_set_new(o, "channel", px_json_text(px_event_channel(ev)));
		json_object_set_new(o, "uniqueid", px_json_text(px_event_uniqueid(ev)));
		json_object_set_new(o, "linkedid", px_json_text(px_event_linkedid(ev)));
	}
	if (px_event_peer(ev)[0]) {
		json_object_set_new(o, "peer_channel", px_json_text(px_event_peer(ev)));
		json_object_set_new(o, "peer_uniqueid", px_json_text(px_event_peer_uniqueid(ev)));
	}
	for (size_t k = 0; k < px_event_field_count(ev); k++) {
		const struct px_event_field *f = px_event_field_at(ev, k);
		json_object_set_new(o, f->name,
				    f->type == PX_EVF_INT ? json_integer((json_int_t)f->i)
							  : px_json_text(f->s));
	}
	return o;
}

/* text, the JSON written for ev, is what jansson writes for the same
 * object byte for byte (the timestamp aside: the time's own digits with
 * microseconds), and reads back without a duplicate key. */
static void check_event_text(px_event *ev, const char *text)
{
	struct timespec ts = px_event_time(ev);
	char want_ts[48], *copy, *dumped;
	const char *at = strstr(text, "\"timestamp\":");
	json_t *exp, *back;
	size_t ts_len;

	CU_ASSERT_PTR_NOT_NULL_FATAL(at);
	at += strlen("\"timestamp\":");
	snprintf(want_ts, sizeof(want_ts), "%lld.%06ld", (long long)ts.tv_sec, ts.tv_nsec / 1000);
	ts_len = strlen(want_ts);
	CU_ASSERT_EQUAL(strncmp(at, want_ts, ts_len), 0);
	CU_ASSERT(at[ts_len] == ',' || at[ts_len] == '}');
	copy = malloc(strlen(text) + 1);
	CU_ASSERT_PTR_NOT_NULL_FATAL(copy);
	memcpy(copy, text, (size_t)(at - text));
	strcpy(copy + (at - text), "0");
	strcat(copy, at + ts_len);
	exp = expected_object(ev);
	dumped = json_dumps(exp, JSON_COMPACT | JSON_PRESERVE_ORDER);
	CU_ASSERT_PTR_NOT_NULL_FATAL(dumped);
	ASSERT_STR(copy, dumped);
	back = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	CU_ASSERT_PTR_NOT_NULL(back);
	CU_ASSERT_TRUE(json_is_real(json_object_get(back, "timestamp")));
	json_decref(back);
	json_decref(exp);
	free(dumped);
	free(copy);
}

/* Every string is written as jansson writes it: each byte alone (control
 * characters, quote, backslash, DEL, bytes that begin no sequence), valid
 * and broken sequences, and a text that outgrows the writer's first room
 * many times over. */
static void test_json_strings(void)
{
	static const char *const texts[] = {
		"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e",
		"\xe2\x82",
		"\xe2\x82x",
		"\xc0\xaf",
		"\xed\xa0\x80",
		"\xf4\x90\x80\x80",
		"\xf4\x8f\xbf\xbf",
		"a\"b\\c/d\x7f\x01\x1f",
		"",
		"tab\tnl\ncr\rbs\bff\f",
	};
	char one[2] = {0, 0}, big[5000], tiny[8];
	struct px_json_out o;

	for (int c = 1; c < 256; c++) {
		one[0] = (char)c;
		json_t *j = px_json_text(one);
		char *want = json_dumps(j, JSON_ENCODE_ANY);
		px_json_out_init(&o, tiny, sizeof(tiny));
		px_json_put_text(&o, one);
		CU_ASSERT_FALSE(o.failed);
		ASSERT_STR(o.buf, want);
		px_json_out_free(&o);
		free(want);
		json_decref(j);
	}
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		json_t *j = px_json_text(texts[i]);
		char *want = json_dumps(j, JSON_ENCODE_ANY);
		px_json_out_init(&o, tiny, sizeof(tiny));
		px_json_put_text(&o, texts[i]);
		ASSERT_STR(o.buf, want);
		px_json_out_free(&o);
		free(want);
		json_decref(j);
	}
	for (size_t i = 0; i + 1 < sizeof(big); i++)
		big[i] = "ab\"\xc3\xa9\n\xff"[i % 7];
	big[sizeof(big) - 1] = '\0';
	json_t *j = px_json_text(big);
	char *want = json_dumps(j, JSON_ENCODE_ANY);
	px_json_out_init(&o, tiny, sizeof(tiny));
	px_json_put_raw(&o, "[", 1);
	px_json_put_int(&o, -9223372036854775807LL - 1);
	px_json_put_raw(&o, ",", 1);
	px_json_put_int(&o, 0);
	px_json_put_raw(&o, ",", 1);
	px_json_put_text(&o, big);
	px_json_put_raw(&o, "]", 1);
	CU_ASSERT_TRUE(o.heap);
	CU_ASSERT_EQUAL(strncmp(o.buf, "[-9223372036854775808,0,", 24), 0);
	CU_ASSERT_EQUAL(strlen(o.buf), o.len);
	CU_ASSERT_EQUAL(strncmp(o.buf + 24, want, strlen(want)), 0);
	ASSERT_STR(o.buf + 24 + strlen(want), "]");
	CU_ASSERT_EQUAL(o.len, 24 + strlen(want) + 1);
	px_json_out_free(&o);
	free(want);
	json_decref(j);
}

/* Events of every shape are written as jansson would write their object:
 * values that change, text that is not UTF-8, a field missing or added,
 * a number where a string was, a text longer than the first room, more
 * keys than fit the writer's table, a key twice, a field named like a
 * common key. */
static void test_json_written(void)
{
	px_channel *a = px_channel_alloc(&nop_tech, "Test/4001", NULL, NULL);
	px_channel *b = px_channel_alloc(&nop_tech, "Test/4002", NULL, NULL);
	px_event_sub *s = px_event_subscribe(NULL, 64, NULL, NULL);
	struct px_event_field many[60];
	char big[3000], names[60][8];
	px_event *ev;
	int n = 0;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	for (int i = 0; i < 60; i++) {
		snprintf(names[i], sizeof(names[i]), "f%d", i);
		many[i] = PX_EVS(names[i], i & 1 ? "odd" : "even");
	}
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "wrong password"),
		      PX_EVS("source", "udp:127.0.0.1:5070"));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "wrong password"),
		      PX_EVS("source", "udp:127.0.0.1:5071"));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "Andr\xe9"),
		      PX_EVS("source", NULL));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "Andr\xc3\xa9"),
		      PX_EVS("source", "udp:127.0.0.1:5071"));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("method", "Andr\xc3\xa9"),
		      PX_EVS("source", "udp:127.0.0.1:5071"));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "no source"));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "x"), PX_EVI("source", 5));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", big), PX_EVI("source", 6));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "x"), PX_EVI("source", 7),
		      PX_EVS("reason", "twice"));
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "x"), PX_EVI("source", 8));
	px_event_emit(PX_EV_SECURITY, NULL, NULL, many, 60);
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "y"), PX_EVI("source", 9));
	PX_EVENT_EMIT(PX_EV_HANGUP, a, NULL, PX_EVI("cause", 16), PX_EVS("cause_txt", "Normal"));
	PX_EVENT_EMIT(PX_EV_HANGUP, b, NULL, PX_EVI("cause", 17), PX_EVS("cause_txt", "Busy"));
	PX_EVENT_EMIT(PX_EV_BRIDGED, a, b, PX_EVS("media", "relayed"));
	PX_EVENT_EMIT(PX_EV_BRIDGED, b, NULL, PX_EVS("media", "none"));
	PX_EVENT_EMIT(PX_EV_BRIDGED, b, a, PX_EVS("media", "transcoded"));
	PX_EVENT_EMIT(PX_EV_BRIDGED, a, b, PX_EVS("channel", "Other/1"), PX_EVI("seq", -1));
	while ((ev = px_event_sub_take(s, NULL))) {
		const struct px_event_text *t = px_event_text(ev);
		CU_ASSERT_PTR_NOT_NULL(t);
		if (t) {
			CU_ASSERT_EQUAL(t->json_len, strlen(t->json));
			check_event_text(ev, t->json);
		}
		px_event_unref(ev);
		n++;
	}
	CU_ASSERT_EQUAL(n, 18);
	px_channel_unref(a);
	px_channel_unref(b);
	px_event_unsubscribe(s);
}

static void test_json_shared(void)
{
	px_event_sub *a = px_event_subscribe(NULL, 4, NULL, NULL);
	px_event_sub *b = px_event_subscribe(NULL, 4, NULL, NULL);
	px_event *ea, *eb;
	const char *ja, *jb;

	PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", "core"));
	ea = px_event_sub_take(a, NULL);
	eb = px_event_sub_take(b, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ea);
	CU_ASSERT_PTR_EQUAL_FATAL(ea, eb);
	ja = px_event_json(ea);
	jb = px_event_json(eb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ja);
	CU_ASSERT_PTR_EQUAL(ja, jb);
	check_event_text(ea, ja);
	px_event_unref(ea);
	px_event_unref(eb);
	px_event_unsubscribe(a);
	px_event_unsubscribe(b);
}

/* The frame text an event carries for the consoles: a valid "event"
 * frame of the protocol whose payload is the event's JSON, made once and
 * shared by every subscriber. */
static void test_event_text(void)
{
	px_event_sub *a = px_event_subscribe(NULL, 4, NULL, NULL);
	px_event_sub *b = px_event_subscribe(NULL, 4, NULL, NULL);
	const struct px_event_text *ta, *tb;
	struct px_frame_reader r;
	struct px_frame f;
	const char *msg = NULL;
	char head[32];
	px_event *ea, *eb;
	int fds[2], h;

	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "caf\xc3\xa9 \"quoted\""),
		      PX_EVI("n", -7));
	ea = px_event_sub_take(a, NULL);
	eb = px_event_sub_take(b, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ea);
	ta = px_event_text(ea);
	tb = px_event_text(eb);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ta);
	CU_ASSERT_PTR_EQUAL(ta, tb);
	CU_ASSERT_PTR_EQUAL(px_event_json(ea), ta->json);
	CU_ASSERT_EQUAL(ta->json_len, strlen(ta->json));
	check_event_text(ea, ta->json);
	h = snprintf(head, sizeof(head), "event 0 %zu\n", ta->json_len);
	CU_ASSERT_EQUAL(ta->frame_len, (size_t)h + ta->json_len);
	CU_ASSERT_EQUAL(memcmp(ta->frame, head, (size_t)h), 0);
	CU_ASSERT_PTR_EQUAL(ta->frame + h, ta->json);
	/* What the console writes is read back as one event frame. */
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	CU_ASSERT_EQUAL(write(fds[1], ta->frame, ta->frame_len), (ssize_t)ta->frame_len);
	close(fds[1]);
	px_frame_reader_init(&r);
	CU_ASSERT(px_frame_reader_fill(&r, fds[0]) > 0);
	CU_ASSERT_EQUAL_FATAL(px_frame_next(&r, &f, &msg), 1);
	ASSERT_STR(f.kind, "event");
	CU_ASSERT_EQUAL(f.id, 0);
	ASSERT_STR(f.payload, ta->json);
	CU_ASSERT_EQUAL(px_frame_next(&r, &f, &msg), 0);
	px_frame_reader_free(&r);
	close(fds[0]);
	px_event_unref(ea);
	px_event_unref(eb);
	px_event_unsubscribe(a);
	px_event_unsubscribe(b);
}

/* Events and their texts are made in blocks of a free list of their own,
 * given back when the last reference goes and used again by the next
 * events; an event too large for a block is malloc's and never joins the
 * list; the list is emptied at shutdown. */
static void test_event_blocks(void)
{
	px_event_sub *s = px_event_subscribe(NULL, 8, NULL, NULL);
	char big[2048];
	px_event *ev[3];

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	px_event_pool_drain();
	CU_ASSERT_EQUAL(px_event_pool_size(), 0);
	for (int k = 0; k < 3; k++)
		PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "blocks"),
			      PX_EVI("n", k));
	/* The emitter's reference is gone, the queue's holds them. */
	CU_ASSERT_EQUAL(px_event_pool_size(), 0);
	for (int k = 0; k < 3; k++) {
		ev[k] = px_event_sub_take(s, NULL);
		CU_ASSERT_PTR_NOT_NULL_FATAL(ev[k]);
	}
	CU_ASSERT_PTR_NOT_NULL_FATAL(px_event_text(ev[0]));
	CU_ASSERT_PTR_NOT_NULL(strstr(px_event_json(ev[0]), "\"blocks\""));
	for (int k = 0; k < 3; k++)
		px_event_unref(ev[k]);
	CU_ASSERT_EQUAL(px_event_pool_size(), 4); /* three events, one text */

	/* The next event takes a block back, its text another. */
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", "again"));
	CU_ASSERT_EQUAL(px_event_pool_size(), 3);
	ev[0] = px_event_sub_take(s, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev[0]);
	CU_ASSERT_PTR_NOT_NULL(strstr(px_event_json(ev[0]), "\"again\""));
	CU_ASSERT_EQUAL(px_event_pool_size(), 2);
	px_event_unref(ev[0]);
	CU_ASSERT_EQUAL(px_event_pool_size(), 4);

	/* Too large for a block: the event and its text are malloc's. */
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("reason", big));
	ev[0] = px_event_sub_take(s, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(ev[0]);
	CU_ASSERT_EQUAL(strlen(px_event_field_get(ev[0], "reason")->s), sizeof(big) - 1);
	CU_ASSERT_PTR_NOT_NULL(px_event_json(ev[0]));
	CU_ASSERT(px_event_text(ev[0])->json_len > sizeof(big));
	CU_ASSERT_EQUAL(px_event_pool_size(), 4);
	px_event_unref(ev[0]);
	CU_ASSERT_EQUAL(px_event_pool_size(), 4);

	px_event_pool_drain();
	CU_ASSERT_EQUAL(px_event_pool_size(), 0);
	px_event_unsubscribe(s);
}

/* Taking several events at once gives them in order with what was
 * lost after each, around the ring's end, and gives their budget back. */
static void test_take_many(void)
{
	px_event_sub *s = px_event_subscribe(NULL, 4, NULL, NULL);
	px_event *evs[8];
	uint64_t lost[8], first;
	size_t n;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	CU_ASSERT_EQUAL(px_event_sub_take_many(s, evs, lost, 8), 0);
	first = px_event_last_seq() + 1;
	for (int i = 0; i < 10; i++) /* 4 kept, 6 lost after the 4th */
		PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", i));
	CU_ASSERT(px_event_sub_bytes(s) > 0);
	n = px_event_sub_take_many(s, evs, lost, 3);
	CU_ASSERT_EQUAL_FATAL(n, 3);
	for (size_t k = 0; k < n; k++) {
		CU_ASSERT_EQUAL(px_event_seq(evs[k]), first + k);
		CU_ASSERT_EQUAL(lost[k], 0);
		px_event_unref(evs[k]);
	}
	/* What is lost comes with the last one kept; no lost array: fine. */
	n = px_event_sub_take_many(s, evs, lost, 8);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_EQUAL(px_event_seq(evs[0]), first + 3);
	CU_ASSERT_EQUAL(lost[0], 6);
	px_event_unref(evs[0]);
	CU_ASSERT_EQUAL(px_event_sub_bytes(s), 0);
	/* The ring's head goes round: three rounds of three. */
	for (int round = 0; round < 3; round++) {
		first = px_event_last_seq() + 1;
		for (int i = 0; i < 3; i++)
			PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("i", round * 3 + i));
		n = px_event_sub_take_many(s, evs, NULL, 8);
		CU_ASSERT_EQUAL_FATAL(n, 3);
		for (size_t k = 0; k < n; k++) {
			CU_ASSERT_EQUAL(px_event_seq(evs[k]), first + k);
			CU_ASSERT_EQUAL(px_event_field_get(evs[k], "i")->i, round * 3 + (int)k);
			px_event_unref(evs[k]);
		}
	}
	CU_ASSERT_EQUAL(px_event_sub_bytes(s), 0);
	CU_ASSERT_EQUAL(px_event_budget_used(), 0);
	/* Drained: the subscriber may arm. */
	CU_ASSERT_TRUE(px_event_sub_arm(s));
	px_event_unsubscribe(s);
}

/* ---- threads ---- */

#define EMITTERS    4
#define PER_EMITTER 20000
#define ORDER_QUEUE (EMITTERS * PER_EMITTER)

static atomic_bool emitters_stop;

static void *emitter(void *arg)
{
	long id = (long)arg;

	for (int i = 0; i < PER_EMITTER && !atomic_load(&emitters_stop); i++)
		PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVI("emitter", id), PX_EVI("i", i));
	return NULL;
}

/* Several emitting threads: each subscriber sees strictly increasing
 * sequence numbers, and each emitter's events in its own order. */
static void test_ordering(void)
{
	px_event_sub *s1, *s2;
	pthread_t t[EMITTERS];
	long long last_i[EMITTERS];
	uint64_t last_seq = 0, lost;
	px_event *ev;
	size_t n = 0;
	bool ordered = true;

	/* Every event must fit: a budget far above the default. */
	px_event_budget_set(256u << 20, 512u << 20);
	s1 = px_event_subscribe(NULL, ORDER_QUEUE, NULL, NULL);
	s2 = px_event_subscribe(NULL, ORDER_QUEUE, NULL, NULL);
	atomic_store(&emitters_stop, false);
	for (long i = 0; i < EMITTERS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, emitter, (void *)i), 0);
	for (int i = 0; i < EMITTERS; i++)
		pthread_join(t[i], NULL);
	for (int i = 0; i < EMITTERS; i++)
		last_i[i] = -1;
	while ((ev = px_event_sub_take(s1, &lost))) {
		long id = (long)px_event_field_get(ev, "emitter")->i;
		long long i = px_event_field_get(ev, "i")->i;
		if (px_event_seq(ev) <= last_seq || i != last_i[id] + 1 || lost)
			ordered = false;
		last_seq = px_event_seq(ev);
		last_i[id] = i;
		n++;
		px_event_unref(ev);
	}
	CU_ASSERT_TRUE(ordered);
	CU_ASSERT_EQUAL(n, (size_t)EMITTERS * PER_EMITTER);
	/* The second subscriber saw the very same sequence. */
	last_seq = 0;
	n = 0;
	ordered = true;
	while ((ev = px_event_sub_take(s2, NULL))) {
		if (px_event_seq(ev) != last_seq + 1 && last_seq)
			ordered = false;
		last_seq = px_event_seq(ev);
		n++;
		px_event_unref(ev);
	}
	CU_ASSERT_TRUE(ordered);
	CU_ASSERT_EQUAL(n, (size_t)EMITTERS * PER_EMITTER);
	px_event_unsubscribe(s1);
	px_event_unsubscribe(s2);
	px_event_budget_set(0, 0);
}

/* A reader takes while several threads emit into a queue too small to
 * hold them: every event it gets comes in sequence order, each gap in the
 * sequence is told before the event after it (as lost after the event
 * before it, or ahead of the next batch; a drop an emitter decided just
 * before a take may be told apart, after the same event), and what it
 * got plus what it was told it lost is every event emitted, as the
 * subscriber's counters say. */
static void test_reader_beside_emitters(void)
{
	px_event_sub *s = px_event_subscribe(NULL, 16, NULL, NULL);
	uint64_t first = px_event_last_seq() + 1, expect = first, last_got = first - 1;
	uint64_t got = 0, told = 0;
	uint64_t delivered, lost, lost_after[8], after_seq;
	pthread_t t[EMITTERS];
	px_event *evs[8];
	bool exact = true;
	struct timespec start, now;

	CU_ASSERT_PTR_NOT_NULL_FATAL(s);
	atomic_store(&emitters_stop, false);
	for (long i = 0; i < EMITTERS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, emitter, (void *)i), 0);
	/* Until every event is accounted for (20 s at most). */
	clock_gettime(CLOCK_MONOTONIC, &start);
	now = start;
	while (got + told < (uint64_t)EMITTERS * PER_EMITTER && now.tv_sec - start.tv_sec < 20) {
		uint64_t ahead = px_event_sub_lost_ahead(s, &after_seq);
		size_t n;

		if (ahead) {
			/* A loss may be told in parts: each after the
			 * last event got. */
			if (after_seq != last_got)
				exact = false;
			expect += ahead;
			told += ahead;
		}
		n = px_event_sub_take_many(s, evs, lost_after, 1 + got % 8);
		for (size_t k = 0; k < n; k++) {
			if (px_event_seq(evs[k]) != expect)
				exact = false;
			last_got = px_event_seq(evs[k]);
			expect = last_got + 1 + lost_after[k];
			told += lost_after[k];
			got++;
			px_event_unref(evs[k]);
		}
		if (!n)
			usleep(50);
		clock_gettime(CLOCK_MONOTONIC, &now);
	}
	for (int i = 0; i < EMITTERS; i++)
		pthread_join(t[i], NULL);
	/* Nothing more comes. */
	CU_ASSERT_EQUAL(px_event_sub_lost_ahead(s, NULL), 0);
	CU_ASSERT_EQUAL(px_event_sub_take_many(s, evs, lost_after, 8), 0);
	CU_ASSERT_TRUE(exact);
	px_event_sub_stats(s, &delivered, &lost);
	CU_ASSERT_EQUAL(got, delivered);
	CU_ASSERT_EQUAL(told, lost);
	CU_ASSERT_EQUAL(got + told, (uint64_t)EMITTERS * PER_EMITTER);
	CU_ASSERT_EQUAL(expect, first + (uint64_t)EMITTERS * PER_EMITTER);
	/* The queue was too small: something was lost, and something read. */
	CU_ASSERT(lost > 0);
	CU_ASSERT(got > 16);
	CU_ASSERT_TRUE(px_event_sub_arm(s));
	CU_ASSERT_EQUAL(px_event_sub_bytes(s), 0);
	px_event_unsubscribe(s);
}

/* Subscribers come and go while threads emit: nothing is touched after
 * unsubscribe (the sanitizer build checks), and what is taken is intact. */
static void test_unsubscribe_while_emitting(void)
{
	pthread_t t[EMITTERS];
	int rounds = 0;
	bool intact = true;
	struct timespec start, now;

	atomic_store(&emitters_stop, false);
	for (long i = 0; i < EMITTERS; i++)
		CU_ASSERT_EQUAL_FATAL(pthread_create(&t[i], NULL, emitter, (void *)i), 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		px_event_sub *s =
			px_event_subscribe(NULL, 1 + rounds % 16, count_notify, &notified);
		px_event *ev;
		for (int k = 0; k < 8 && (ev = px_event_sub_take(s, NULL)); k++) {
			if (px_event_kind(ev) != PX_EV_RELOAD || !px_event_field_get(ev, "i"))
				intact = false;
			px_event_unref(ev);
		}
		px_event_unsubscribe(s);
		rounds++;
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (rounds < 2000 && now.tv_sec - start.tv_sec < 5);
	atomic_store(&emitters_stop, true);
	for (int i = 0; i < EMITTERS; i++)
		pthread_join(t[i], NULL);
	CU_ASSERT_TRUE(intact);
	CU_ASSERT(rounds > 0);
	CU_ASSERT_FALSE(px_event_listening());
}

/* Queue count n of events, each carrying a string of len bytes. */
static void emit_sized(int n, size_t len)
{
	char *text = malloc(len + 1);

	memset(text, 'x', len);
	text[len] = '\0';
	for (int i = 0; i < n; i++)
		PX_EVENT_EMIT(PX_EV_RELOAD, NULL, NULL, PX_EVS("what", text), PX_EVI("i", i));
	free(text);
}

/* Stalled subscribers pin memory only up to the budget: each its own
 * queue_bytes, all of them together total_bytes beyond each one's floor
 * (queue_bytes / 16), so a subscriber that reads is still served in full.
 * What a budget refuses is counted as lost for that subscriber alone, and
 * the queue length is cut to what the budget could ever fill. */
static void test_memory_budget(void)
{
	size_t sub_bytes, total_bytes, cap;
	px_event_sub *a, *b, *c;
	uint64_t delivered, lost, lost_total;
	int kinds[1];
	px_event *ev;

	px_event_budget_get(&sub_bytes, &total_bytes);
	CU_ASSERT_EQUAL(sub_bytes, PX_EVENT_SUB_BYTES_DEFAULT);
	CU_ASSERT_EQUAL(total_bytes, PX_EVENT_TOTAL_BYTES_DEFAULT);
	px_event_budget_set(64 << 10, 96 << 10);
	CU_ASSERT_EQUAL(px_event_queue_fit(100000), (64u << 10) / PX_EVENT_MIN_COST);
	CU_ASSERT_EQUAL(px_event_queue_fit(10), 10);

	/* One subscriber alone: its own budget, whatever its queue length. */
	a = px_event_subscribe(NULL, 100000, NULL, NULL);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	emit_sized(200, 1000);
	px_event_sub_stats(a, &delivered, &lost);
	CU_ASSERT(delivered > 10 && delivered < 64);
	CU_ASSERT_EQUAL(delivered + lost, 200);
	CU_ASSERT(px_event_sub_bytes(a) <= 64u << 10);
	CU_ASSERT_EQUAL(px_event_budget_used(), px_event_sub_bytes(a));
	/* The loss is told after the last event kept. */
	CU_ASSERT_EQUAL(drain(a, kinds, 1, &lost_total), delivered);
	CU_ASSERT_EQUAL(lost_total, lost);
	CU_ASSERT_EQUAL(px_event_sub_bytes(a), 0);
	CU_ASSERT_EQUAL(px_event_budget_used(), 0);

	/* Two stalled subscribers share the total; a third that reads after
	 * each event loses nothing. */
	b = px_event_subscribe(NULL, 100000, NULL, NULL);
	c = px_event_subscribe(NULL, 100000, NULL, NULL);
	for (int i = 0; i < 300; i++) {
		emit_sized(1, 1000);
		while ((ev = px_event_sub_take(c, NULL)) != NULL)
			px_event_unref(ev);
	}
	px_event_sub_stats(c, &delivered, &lost);
	CU_ASSERT_EQUAL(delivered, 300);
	CU_ASSERT_EQUAL(lost, 0);
	CU_ASSERT(px_event_sub_bytes(a) + px_event_sub_bytes(b) <= (96u << 10) + 2 * (4u << 10));
	CU_ASSERT(px_event_sub_bytes(a) + px_event_sub_bytes(b) > (64u << 10));
	px_event_sub_stats(a, NULL, &lost);
	CU_ASSERT(lost > 0);
	/* An empty queue always takes the next event, however large. */
	drain(a, kinds, 1, &lost_total);
	emit_sized(1, 200 << 10);
	ev = px_event_sub_take(a, NULL);
	CU_ASSERT_PTR_NOT_NULL(ev);
	px_event_unref(ev);
	/* A smaller queue given by a new Subscribe releases what it drops. */
	cap = px_event_sub_bytes(b);
	CU_ASSERT_EQUAL(px_event_sub_configure(b, NULL, 2), 0);
	CU_ASSERT(px_event_sub_bytes(b) < cap);
	px_event_unsubscribe(a);
	px_event_unsubscribe(b);
	px_event_unsubscribe(c);
	CU_ASSERT_EQUAL(px_event_budget_used(), 0);
	px_event_budget_set(0, 0);
	px_event_budget_get(&sub_bytes, &total_bytes);
	CU_ASSERT_EQUAL(sub_bytes, PX_EVENT_SUB_BYTES_DEFAULT);
}

static void test_kind_names(void)
{
	for (int k = 0; k < PX_EV_KINDS; k++) {
		CU_ASSERT_PTR_NOT_NULL_FATAL(px_event_kind_name(k));
		CU_ASSERT_EQUAL(px_event_kind_parse(px_event_kind_name(k)), k);
	}
	CU_ASSERT_EQUAL(px_event_kind_parse("hangup"), PX_EV_HANGUP);
	CU_ASSERT_EQUAL(px_event_kind_parse("SecurityEvent"), PX_EV_SECURITY);
	CU_ASSERT_EQUAL(px_event_kind_parse("ConnectedLine"), PX_EV_CONNECTED_LINE);
	CU_ASSERT_EQUAL(px_event_kind_parse("NoSuchEvent"), -1);
	CU_ASSERT_PTR_NULL(px_event_kind_name(PX_EV_KINDS));
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failures;

	px_log_init();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("event bus", NULL, NULL);
	if (!suite ||
	    !CU_add_test(suite, "nothing built without subscribers", test_no_subscriber) ||
	    !CU_add_test(suite, "fan-out of one shared event", test_fan_out) ||
	    !CU_add_test(suite, "woken once per batch", test_notify_armed) ||
	    !CU_add_test(suite, "bounded queue and overflow count", test_bounded_queue) ||
	    !CU_add_test(suite, "events lost before the next one", test_lost_before_next) ||
	    !CU_add_test(suite, "subscription changed in place", test_configure) ||
	    !CU_add_test(suite, "filters", test_filters) ||
	    !CU_add_test(suite, "channel events", test_channel_events) ||
	    !CU_add_test(suite, "ConnectedLine on an answered channel", test_connected_line) ||
	    !CU_add_test(suite, "JSON form", test_json) ||
	    !CU_add_test(suite, "JSON shared by subscribers", test_json_shared) ||
	    !CU_add_test(suite, "JSON strings written as jansson writes them", test_json_strings) ||
	    !CU_add_test(suite, "JSON of events of every shape", test_json_written) ||
	    !CU_add_test(suite, "frame text shared by consoles", test_event_text) ||
	    !CU_add_test(suite, "events made in blocks of their own list", test_event_blocks) ||
	    !CU_add_test(suite, "take many at once", test_take_many) ||
	    !CU_add_test(suite, "JSON of text that is not UTF-8", test_json_not_utf8) ||
	    !CU_add_test(suite, "ordering with several emitters", test_ordering) ||
	    !CU_add_test(suite, "unsubscribe while emitting", test_unsubscribe_while_emitting) ||
	    !CU_add_test(suite, "a reader beside the emitters", test_reader_beside_emitters) ||
	    !CU_add_test(suite, "memory budget of queued events", test_memory_budget) ||
	    !CU_add_test(suite, "kind names", test_kind_names)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	px_log_shutdown();
	return failures != 0;
}
