/*
 * The event bus: what happens in the daemon (a channel is created, changes
 * state, is dialed, bridged, put on hold, hung up; a phone registers; a
 * password is wrong; a module loads ...) told to whoever listens: the
 * console's event stream, later CDR and the switchboard. The code that owns
 * a fact emits its event; subscribers take events from a queue of their own.
 *
 * An event is typed (enum px_event_kind), immutable once emitted, and
 * refcounted: it is built once and shared by every subscriber. It carries a
 * sequence number (increasing by one per emitted event, in the order every
 * subscriber receives them), the wall-clock time, the channel it concerns
 * (name, uniqueid, linkedid) and for two-party events the other channel
 * (peer), and typed fields: strings and integers.
 *
 * Emitting never blocks and never does I/O: with nobody subscribed it costs
 * one atomic load (px_event_listening); otherwise the event is allocated
 * once and pushed onto each interested subscriber's bounded queue, which
 * its reader empties without taking any lock an emitter takes. A full
 * queue drops the event for that subscriber only and counts it against the
 * last event it kept, so the subscriber learns exactly where it lost how
 * many. A subscriber is woken by its notify callback when its queue goes
 * from empty to non-empty (an eventfd write, for the console).
 */
#ifndef PLEXUS_EVENT_H
#define PLEXUS_EVENT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <plexus/channel.h>

enum px_event_kind {
	PX_EV_CHANNEL_CREATED,      /* fields: state, caller_num, caller_name */
	PX_EV_CHANNEL_STATE,        /* state, state_code, caller_*, connected_*, context, exten */
	PX_EV_DIAL_BEGIN,           /* peer = the callee; dialstring */
	PX_EV_DIAL_END,             /* peer = the callee (if any); dialstring, dialstatus */
	PX_EV_BRIDGED,              /* peer = the other party */
	PX_EV_UNBRIDGED,            /* peer = the other party */
	PX_EV_HOLD,                 /* source: "remote" (the phone) or "operator" */
	PX_EV_UNHOLD,               /* source */
	PX_EV_DTMF_BEGIN,           /* digit, direction */
	PX_EV_DTMF_END,             /* digit, duration_ms, direction */
	PX_EV_HANGUP,               /* cause, cause_txt */
	PX_EV_REGISTERED,           /* endpoint, contact, source, user_agent, expires, refresh */
	PX_EV_UNREGISTERED,         /* endpoint, contact, reason */
	PX_EV_REGISTRATION_EXPIRED, /* endpoint, contact */
	PX_EV_TRUNK_REGISTRY,       /* trunk, state, status, reason, username, retry_in, expires */
	PX_EV_TRUNK_REACHABILITY,   /* trunk, reachable, rtt_ms */
	PX_EV_SECURITY,             /* service, reason, source, endpoint, method */
	PX_EV_MODULE_LOADED,        /* module, description */
	PX_EV_MODULE_UNLOADED,      /* module, forced */
	PX_EV_RELOAD,               /* what ("core" or a module), status ("ok"/"failed") */
	PX_EV_CONNECTED_LINE,       /* connected_num, connected_name (answered channel) */
	PX_EV_CONTACT_REACHABILITY, /* endpoint, contact, reachable, rtt_ms (qualify) */
	PX_EV_KINDS
};

/* "ChannelCreated" ...; NULL for an unknown kind. */
const char *px_event_kind_name(enum px_event_kind kind);
/* Case-insensitive; -1 when name is no kind. */
int px_event_kind_parse(const char *name);

enum px_event_field_type { PX_EVF_STRING, PX_EVF_INT };

struct px_event_field {
	const char *name; /* "cause": lower case, snake_case */
	enum px_event_field_type type;
	const char *s; /* PX_EVF_STRING; NULL is emitted as "" */
	long long i;   /* PX_EVF_INT */
};

#define PX_EVS(n, v) ((struct px_event_field){.name = (n), .type = PX_EVF_STRING, .s = (v)})
#define PX_EVI(n, v) ((struct px_event_field){.name = (n), .type = PX_EVF_INT, .i = (v)})

/* Subscribers now: emitters test it (one relaxed load) before building
 * anything, through px_event_listening or PX_EVENT_EMIT. */
extern atomic_int px_event_subscribers;

static inline bool px_event_listening(void)
{
	return atomic_load_explicit(&px_event_subscribers, memory_order_relaxed) > 0;
}

/* Emit an event about ch (NULL: about no channel) and peer (NULL: none)
 * with n fields, copied. Any thread; never blocks on a subscriber. */
void px_event_emit(enum px_event_kind kind, px_channel *ch, px_channel *peer,
		   const struct px_event_field *fields, size_t n);

/* PX_EVENT_EMIT(PX_EV_HANGUP, ch, NULL, PX_EVI("cause", 16), ...): the
 * fields are evaluated only when someone listens. */
#define PX_EVENT_EMIT(kind, ch, peer, ...)                                                         \
	do {                                                                                       \
		if (px_event_listening()) {                                                        \
			const struct px_event_field f_[] = {__VA_ARGS__};                          \
			px_event_emit((kind), (ch), (peer), f_, sizeof(f_) / sizeof(f_[0]));       \
		}                                                                                  \
	} while (0)

/* ---- reading an event ---- */

typedef struct px_event px_event;

px_event *px_event_ref(px_event *ev);
void px_event_unref(px_event *ev);

enum px_event_kind px_event_kind(const px_event *ev);
uint64_t px_event_seq(const px_event *ev);
/* The sequence number of the last event numbered so far (0 before the
 * first). A snapshot of state taken after reading it reflects every event
 * up to it, so a client can skip those it receives after the snapshot. */
uint64_t px_event_last_seq(void);
struct timespec px_event_time(const px_event *ev); /* CLOCK_REALTIME */
/* The channel's name, uniqueid, linkedid and endpoint ("1001" of
 * "SIP/1001-0000002a"): "" when the event concerns no channel. */
const char *px_event_channel(const px_event *ev);
const char *px_event_uniqueid(const px_event *ev);
const char *px_event_linkedid(const px_event *ev);
/* The other channel of a two-party event ("" when none). */
const char *px_event_peer(const px_event *ev);
const char *px_event_peer_uniqueid(const px_event *ev);
size_t px_event_field_count(const px_event *ev);
const struct px_event_field *px_event_field_at(const px_event *ev, size_t i);
/* The field called name, or NULL. */
const struct px_event_field *px_event_field_get(const px_event *ev, const char *name);

/* ---- subscribing ---- */

/* What a subscriber wants. kinds: a bit per kind (1ull << kind), 0 = all.
 * channel: the event's channel or peer is this channel, or one of this
 * endpoint's channels ("SIP/1002" matches "SIP/1002-0000002a"), or has this
 * uniqueid or linkedid. endpoint: the event's "endpoint" field, or its
 * channel's or peer's endpoint, equals it. Empty strings match everything. */
struct px_event_filter {
	uint64_t kinds;
	char channel[96];
	char endpoint[80];
};

#define PX_EVENT_KIND_BIT(k) (1ull << (k))

typedef struct px_event_sub px_event_sub;

/* A new subscriber with a queue of queue_max events (at least 1). notify,
 * if not NULL, is called (from the emitting thread, under the bus lock: it
 * must only wake the subscriber) when an event is queued for a subscriber
 * that is armed and has nothing queued. A new subscriber is armed; notify
 * disarms it, and px_event_sub_arm arms it again once it has taken
 * everything. NULL when out of memory. */
px_event_sub *px_event_subscribe(const struct px_event_filter *filter, size_t queue_max,
				 void (*notify)(void *ctx), void *ctx);
/* Replace the filter (events already queued stay). */
void px_event_sub_set_filter(px_event_sub *s, const struct px_event_filter *filter);
/* Replace the filter and the queue's size at once: every event emitted
 * before the call was queued under the old filter, every one after under
 * the new. Queued events stay; those beyond a smaller size are dropped as
 * from a full queue (counted after the last one kept). -1 when out of
 * memory (nothing changed). */
int px_event_sub_configure(px_event_sub *s, const struct px_event_filter *filter, size_t queue_max);
/* One thread at a time reads a subscriber: takes, arms, asks for losses,
 * configures and unsubscribes it (a console's own thread). Emitters never
 * wait for it, nor it for them.
 *
 * Take the oldest queued event (the caller owns the reference), or NULL
 * when the queue is empty or a loss not yet told comes before the next
 * event (px_event_sub_lost_ahead tells it). *lost_after: events dropped
 * right after this one because the queue was full (0 normally). */
px_event *px_event_sub_take(px_event_sub *s, uint64_t *lost_after);
/* Take up to max of the oldest queued events at once, in order: evs[i]
 * (the caller owns the references) and lost_after[i] (as for
 * px_event_sub_take; may be NULL). Returns how many (0: the queue is
 * empty, or a loss is to be told first, as for px_event_sub_take). */
size_t px_event_sub_take_many(px_event_sub *s, px_event **evs, uint64_t *lost_after, size_t max);
/* Before the subscriber sleeps: arm notify for the next event. False (not
 * armed) when events or a loss are waiting: take them first. */
bool px_event_sub_arm(px_event_sub *s);
/* Events dropped after the last event taken and before whatever is
 * queued now, not yet told with an event's lost_after (they could not be
 * built, or were dropped as the last batch was taken): how many (0
 * normally; told once), and in *after_seq the seq of the event taken last
 * before them (before any: the bus's last when subscribing). Ask this
 * before px_event_sub_take. A loss after one event may be told in two
 * parts, both after that event. */
uint64_t px_event_sub_lost_ahead(px_event_sub *s, uint64_t *after_seq);
/* Totals since subscribing: events queued and events dropped. */
void px_event_sub_stats(px_event_sub *s, uint64_t *delivered, uint64_t *lost);
/* After it returns no emitter touches s; queued events are released. */
void px_event_unsubscribe(px_event_sub *s);

/* Does filter accept ev? (what the bus applies before queueing) */
bool px_event_filter_match(const struct px_event_filter *filter, const px_event *ev);

#endif
