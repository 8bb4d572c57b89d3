/*
 * Two-party bridges (plexus/bridge.h): the loop that keeps two channels
 * connected in one session thread (media relay, peers, hold passed across
 * with music on hold for the held party through plexus/moh.h,
 * Bridged/Unbridged events); what becomes of each side when Dial's bridge
 * ends; and the operator's Bridge, where two sessions meet: both are asked
 * to leave what they run, b's session hands its channel over and waits, a's
 * session runs the bridge, and afterwards each goes on in its own session.
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
#include <plexus/moh.h>

#include "bridge_internal.h"
#include "channel_internal.h"

/* The longest single sleep of the bridge loop. */
#define BRIDGE_TICK_MS 1000
/* How long a's session waits for b's to hand b over. */
#define MEET_TIMEOUT_MS 10000

/* ---- the meeting point ---- */

enum meet_state {
	MEET_OPEN,    /* nobody has come yet */
	MEET_B_WAITS, /* b's session handed b over and waits */
	MEET_BRIDGED, /* a's session runs the bridge */
	MEET_CLOSED,  /* over: bridged and ended, or given up */
};

struct px_bridge_meet {
	atomic_int refs;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	enum meet_state state;
	bool ran; /* a's session took b into its bridge */
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
	m->state = MEET_OPEN;
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

/* Wait (m->lock held) while the state is s, at most until deadline; a wait
 * that runs out closes the meet. */
static void meet_wait_while(struct px_bridge_meet *m, enum meet_state s,
			    const struct timespec *deadline)
{
	while (m->state == s)
		if (pthread_cond_timedwait(&m->cond, &m->lock, deadline) == ETIMEDOUT)
			break;
	if (m->state == s)
		m->state = MEET_CLOSED;
}

static struct timespec meet_deadline(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	t.tv_sec += MEET_TIMEOUT_MS / 1000;
	return t;
}

bool px_bridge_meet_join(struct px_bridge_meet *m)
{
	struct timespec deadline = meet_deadline();
	bool bridged = false;

	pthread_mutex_lock(&m->lock);
	if (m->state == MEET_OPEN) {
		m->state = MEET_B_WAITS;
		pthread_cond_broadcast(&m->cond);
		meet_wait_while(m, MEET_B_WAITS, &deadline);
		/* The bridge lasts as long as the call: no bound here. */
		while (m->state == MEET_BRIDGED)
			pthread_cond_wait(&m->cond, &m->lock);
		bridged = m->ran;
	}
	pthread_mutex_unlock(&m->lock);
	return bridged;
}

bool px_bridge_meet_start(struct px_bridge_meet *m)
{
	struct timespec deadline = meet_deadline();
	bool go;

	pthread_mutex_lock(&m->lock);
	meet_wait_while(m, MEET_OPEN, &deadline);
	go = m->state == MEET_B_WAITS;
	if (go) {
		m->state = MEET_BRIDGED;
		m->ran = true;
	}
	pthread_mutex_unlock(&m->lock);
	return go;
}

void px_bridge_meet_close(struct px_bridge_meet *m)
{
	pthread_mutex_lock(&m->lock);
	m->state = MEET_CLOSED;
	pthread_cond_broadcast(&m->cond);
	pthread_mutex_unlock(&m->lock);
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

/* Legs whose formats differ are transcoded by the media layer; this fails
 * only when no translation path joins them (the operator's Bridge checked
 * that before it was accepted) or a leg has no media. */
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

/* A digit that reached from goes on to to, in to's own mode, unless the
 * media relay between them carries it already (RFC 4733 events both ways).
 * Digits of unknown length get the usual 100 ms. */
static void forward_dtmf(px_channel *from, px_channel *to, const struct px_channel_event *ev,
			 bool media)
{
	px_rtp *r = px_channel_rtp(from);

	if (media && ev->origin == PX_DTMF_RTP && r && px_rtp_carries_events(r))
		return;
	if (px_channel_send_dtmf(to, ev->digit, ev->duration_ms ? ev->duration_ms : 100,
				 ev->origin) < 0)
		px_verbose(3, "%s: digit %c not sent on to %s", px_channel_name(from), ev->digit,
			   px_channel_name(to));
}

/* Take one side's events; true when the bridge must end because of it.
 * to_moh: music on hold plays to `to` because `from` put it on hold. */
static bool side_events(px_channel *from, px_channel *to, px_channel *a, px_channel *b, bool *media,
			bool *to_moh)
{
	struct px_channel_event ev;

	while (px_channel_take_event(from, &ev)) {
		if (ev.type == PX_EVENT_HANGUP)
			return true;
		if (ev.type == PX_EVENT_REDIRECT && px_channel_leaving(from))
			return true;
		if (ev.type == PX_EVENT_DTMF)
			forward_dtmf(from, to, &ev, *media);
		if (ev.type != PX_EVENT_CONTROL)
			continue;
		switch (ev.control) {
		case PX_CONTROL_HOLD:
		case PX_CONTROL_UNHOLD:
			px_verbose(3, "%s %s", px_channel_name(from),
				   ev.control == PX_CONTROL_HOLD ? "put the call on hold"
								 : "took the call off hold");
			px_channel_indicate(to, ev.control);
			if (ev.control == PX_CONTROL_HOLD && !*to_moh) {
				/* The held party hears the holder's class, as with
				 * Asterisk's moh_suggest; the relay stops meanwhile. */
				char cls[64];
				px_moh_suggested_class(from, cls, sizeof(cls));
				*to_moh = px_moh_start(to, cls, NULL) == 0;
			} else if (ev.control == PX_CONTROL_UNHOLD && *to_moh) {
				px_moh_stop(to);
				*to_moh = false;
			}
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

/* Dial's bridge is over for ch: let it go where it was sent, or hang it up. */
static void dispose(px_channel *ch, bool own_session, int cause)
{
	px_err err = {""};

	if (px_channel_is_hungup(ch))
		return;
	if (px_channel_leaving(ch)) {
		if (own_session)
			return; /* its session goes on to where it was sent */
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

/* What the Bridged event says of the media: "transcoded", "relayed" (as
 * it came) or "none". */
static const char *media_word(px_channel *a, bool media)
{
	px_rtp *r = media ? px_channel_rtp(a) : NULL;

	if (!r)
		return "none";
	return px_rtp_transcoding(r) ? "transcoded" : "relayed";
}

/* Relay a and b until one hangs up or is asked to leave; b is woken
 * through a's waiter meanwhile, and is on its own again when this returns
 * (a's waiter dies with a: b must not point at it a moment longer). */
static void bridge_loop(px_channel *a, px_channel *b)
{
	px_waiter *w = px_channel_waiter(a);
	bool media, a_moh = false, b_moh = false;

	px_channel_set_waiter(b, w);
	for (px_channel *ch = a; ch; ch = ch == a ? b : NULL)
		if (px_channel_state(ch) != PX_STATE_UP && px_channel_answer(ch) != 0)
			px_log_warning("Bridge: cannot answer %s", px_channel_name(ch));
	media = media_bridge(a, b);
	px_channel_set_peer(a, b);
	px_channel_set_peer(b, a);
	px_verbose(3, "%s and %s are bridged", px_channel_name(a), px_channel_name(b));
	PX_EVENT_EMIT(PX_EV_BRIDGED, a, b, PX_EVS("media", media_word(a, media)));

	while (!side_events(a, b, a, b, &media, &b_moh) && !side_events(b, a, a, b, &media, &a_moh))
		px_waiter_wait(w, BRIDGE_TICK_MS);
	if (a_moh)
		px_moh_stop(a);
	if (b_moh)
		px_moh_stop(b);

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
	px_channel_set_waiter(b, NULL);
}

int px_bridge_run(px_channel *a, px_channel *b)
{
	int cause = PX_CAUSE_NORMAL_CLEARING;

	bridge_loop(a, b);
	if (px_channel_is_hungup(a))
		cause = cause_of(a);
	else if (px_channel_is_hungup(b))
		cause = cause_of(b);
	dispose(b, false, cause);
	dispose(a, true, cause);
	return -1;
}

/* Each side of the operator's bridge is now connected to the other's
 * caller (Dial sets its own legs' identities). */
static void connect_identity(px_channel *to, px_channel *from)
{
	char num[80], name[80];

	px_channel_get_caller(from, num, sizeof(num), name, sizeof(name));
	px_channel_set_connected(to, num[0] ? num : NULL, name[0] ? name : NULL);
}

void px_bridge_run_sessions(px_channel *a, px_channel *b)
{
	connect_identity(a, b);
	connect_identity(b, a);
	bridge_loop(a, b);
}
