/*
 * Two-party bridges (plexus/bridge.h): the loop that keeps two channels
 * connected in one session thread (media relay, peers, hold passed across,
 * Bridged/Unbridged events) and decides what becomes of each side when it
 * ends; and the operator's Bridge, where two sessions meet: both are asked
 * to leave what they run, b's session hands its channel over and a's
 * session runs the bridge.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include <plexus/bridge.h>
#include <plexus/event.h>
#include <plexus/log.h>
#include <plexus/media.h>

#include "bridge_internal.h"
#include "channel_internal.h"

/* The longest single sleep of the bridge loop. */
#define BRIDGE_TICK_MS 1000
/* How long a's session waits for b's to hand b over. */
#define MEET_TIMEOUT_MS 10000

/* ---- the meeting point ---- */

struct px_bridge_meet {
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;   /* b's session answered */
	bool handed; /* ... by handing b over */
};

static struct px_bridge_meet *meet_new(void)
{
	struct px_bridge_meet *m = calloc(1, sizeof(*m));
	pthread_condattr_t attr;

	if (!m)
		return NULL;
	atomic_init(&m->refs, 1);
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&m->cond, &attr);
	pthread_condattr_destroy(&attr);
	return m;
}

struct px_bridge_meet *px_bridge_meet_ref(struct px_bridge_meet *m)
{
	atomic_fetch_add(&m->refs, 1);
	return m;
}

void px_bridge_meet_unref(struct px_bridge_meet *m)
{
	if (!m || atomic_fetch_sub(&m->refs, 1) != 1)
		return;
	pthread_cond_destroy(&m->cond);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

bool px_bridge_meet_handover(struct px_bridge_meet *m, bool handed)
{
	bool accepted = false;

	pthread_mutex_lock(&m->lock);
	if (!m->done) {
		m->done = true;
		m->handed = handed;
		accepted = handed;
	}
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
	return accepted;
}

bool px_bridge_meet_wait(struct px_bridge_meet *m)
{
	struct timespec deadline;
	bool handed;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += MEET_TIMEOUT_MS / 1000;
	pthread_mutex_lock(&m->lock);
	while (!m->done)
		if (pthread_cond_timedwait(&m->cond, &m->lock, &deadline) == ETIMEDOUT)
			break;
	/* Too late is never: b's session must not hand over after this. */
	if (!m->done)
		m->done = true;
	handed = m->handed;
	pthread_mutex_unlock(&m->lock);
	return handed;
}

int px_channel_bridge(px_channel *a, px_channel *b, px_err *err)
{
	struct px_bridge_meet *m = meet_new();
	int rc;

	if (!m)
		return px_err_set(err, "out of memory");
	rc = px_channel_request_bridge(a, b, m, err);
	px_bridge_meet_unref(m);
	return rc;
}

/* ---- the bridge ---- */

static bool media_bridge(px_channel *a, px_channel *b)
{
	px_rtp *ra = px_channel_rtp(a), *rb = px_channel_rtp(b);
	px_err err = {""};

	if (!ra || !rb)
		return false;
	if (px_rtp_bridge(ra, rb, &err) < 0) {
		px_log_warning("Cannot bridge the media of %s and %s: %s", px_channel_name(a),
			       px_channel_name(b), err.msg);
		return false;
	}
	return true;
}

/* Take one side's events; true when the bridge must end because of it. */
static bool side_events(px_channel *from, px_channel *to, px_channel *a, px_channel *b, bool *media)
{
	struct px_channel_event ev;

	while (px_channel_take_event(from, &ev)) {
		if (ev.type == PX_EVENT_HANGUP)
			return true;
		if (ev.type == PX_EVENT_REDIRECT && px_channel_leaving(from))
			return true;
		if (ev.type != PX_EVENT_CONTROL)
			continue;
		switch (ev.control) {
		case PX_CONTROL_HOLD:
		case PX_CONTROL_UNHOLD:
			px_verbose(3, "%s %s", px_channel_name(from),
				   ev.control == PX_CONTROL_HOLD ? "put the call on hold"
								 : "took the call off hold");
			px_channel_indicate(to, ev.control);
			break;
		case PX_CONTROL_MEDIA_CHANGED:
			*media = media_bridge(a, b) || *media;
			break;
		default:
			break;
		}
	}
	return px_channel_is_hungup(from) || px_channel_leaving(from);
}

/* The bridge is over for ch: let it go where it was sent, or hang it up. */
static void dispose(px_channel *ch, bool own_session, int cause)
{
	px_err err = {""};

	if (px_channel_is_hungup(ch))
		return;
	if (px_channel_leaving(ch)) {
		if (own_session)
			return; /* its session goes on to where it was sent */
		px_channel_set_waiter(ch, NULL);
		if (px_channel_start_session(ch, &err) == 0)
			return;
		px_log_warning("%s: %s; hanging up", px_channel_name(ch), err.msg);
	}
	px_channel_hangup(ch, cause);
}

static int cause_of(px_channel *ch)
{
	int c = px_channel_hangup_cause(ch);

	return c ? c : PX_CAUSE_NORMAL_CLEARING;
}

int px_bridge_run(px_channel *a, px_channel *b)
{
	px_waiter *w = px_channel_waiter(a);
	bool media;
	int cause = PX_CAUSE_NORMAL_CLEARING;

	px_channel_set_waiter(b, w);
	for (px_channel *ch = a; ch; ch = ch == a ? b : NULL)
		if (px_channel_state(ch) != PX_STATE_UP && px_channel_answer(ch) != 0)
			px_log_warning("Bridge: cannot answer %s", px_channel_name(ch));
	media = media_bridge(a, b);
	px_channel_set_peer(a, b);
	px_channel_set_peer(b, a);
	px_verbose(3, "%s and %s are bridged", px_channel_name(a), px_channel_name(b));
	PX_EVENT_EMIT(PX_EV_BRIDGED, a, b, PX_EVS("media", media ? "relayed" : "none"));

	while (!side_events(a, b, a, b, &media) && !side_events(b, a, a, b, &media))
		px_waiter_wait(w, BRIDGE_TICK_MS);

	if (media) {
		px_rtp *r = px_channel_rtp(a);
		if (r)
			px_rtp_unbridge(r);
		r = px_channel_rtp(b);
		if (r)
			px_rtp_unbridge(r);
	}
	px_channel_set_peer(a, NULL);
	px_channel_set_peer(b, NULL);
	PX_EVENT_EMIT(PX_EV_UNBRIDGED, a, b,
		      PX_EVS("reason", px_channel_is_hungup(a) || px_channel_is_hungup(b)
					       ? "hangup"
					       : "redirect"));
	px_verbose(3, "%s and %s are no longer bridged", px_channel_name(a), px_channel_name(b));
	if (px_channel_is_hungup(a))
		cause = cause_of(a);
	else if (px_channel_is_hungup(b))
		cause = cause_of(b);
	dispose(b, false, cause);
	dispose(a, true, cause);
	return -1;
}
