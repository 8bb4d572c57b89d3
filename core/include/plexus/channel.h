/*
 * A channel is one leg of a call: a phone's INVITE to us, or our INVITE to a
 * phone or a carrier. The core owns its identity (name "SIP/1001-0000002a",
 * uniqueid, linkedid), state, caller and connected identity, variables,
 * dialplan position and Q.850 hangup cause; a channel technology (chan_sip)
 * owns its signalling through the px_channel_tech operations and its
 * private part.
 *
 * Threads: the technology's thread reports what happens on the wire by
 * queueing events on the channel (px_channel_queue_event); the session
 * thread that owns the call (dialplan, applications) waits for them with
 * px_channel_wait_event and acts through px_channel_answer/indicate/hangup,
 * which call the technology's operations (the technology marshals them to
 * its own thread). Channels are refcounted; every channel is listed in the
 * core's channel table from alloc until its last reference is dropped.
 */
#ifndef PLEXUS_CHANNEL_H
#define PLEXUS_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <plexus/error.h>
#include <plexus/module.h>

typedef struct px_channel px_channel;
typedef struct px_rtp px_rtp; /* media.h */

/* Asterisk's channel states, so "core show channels" reads the same. */
enum px_channel_state {
	PX_STATE_DOWN,
	PX_STATE_RESERVED,
	PX_STATE_OFFHOOK,
	PX_STATE_DIALING,
	PX_STATE_RING,    /* inbound, not yet answered */
	PX_STATE_RINGING, /* outbound, the far end is ringing */
	PX_STATE_UP,
	PX_STATE_BUSY,
};

enum px_control {
	PX_CONTROL_RINGING,    /* 180 */
	PX_CONTROL_PROGRESS,   /* 183 with early media */
	PX_CONTROL_ANSWER,     /* 200 */
	PX_CONTROL_BUSY,       /* 486 */
	PX_CONTROL_CONGESTION, /* 503 and kin */
	PX_CONTROL_HOLD,       /* media sendonly/inactive from this leg */
	PX_CONTROL_UNHOLD,
	PX_CONTROL_MEDIA_CHANGED, /* remote media address or codec changed */
};

enum px_event_type {
	PX_EVENT_CONTROL, /* control: what happened */
	PX_EVENT_HANGUP,  /* the leg is gone; cause says why */
	PX_EVENT_DTMF,    /* digit */
	/* The channel is asked to leave what it runs (a redirect, a bridge
	 * requested by an operator): an application that waits on the
	 * channel returns -1 at once, and the session goes where it was sent
	 * (px_channel_leaving tells whether the request still stands). */
	PX_EVENT_REDIRECT,
};

/* How a digit reached a channel: in its signalling (SIP INFO, or an
 * application), as RFC 4733 events in its RTP stream, or as tones in its
 * audio. A bridge leaves to the media relay what it carries already. */
enum px_dtmf_origin { PX_DTMF_SIGNALLING, PX_DTMF_RTP, PX_DTMF_INBAND };

struct px_channel_event {
	enum px_event_type type;
	enum px_control control;
	int cause;                  /* Q.850, for HANGUP */
	char digit;                 /* for DTMF */
	unsigned duration_ms;       /* for DTMF */
	enum px_dtmf_origin origin; /* for DTMF */
};

/* Q.850 causes used across modules. */
enum {
	PX_CAUSE_UNALLOCATED = 1,
	PX_CAUSE_NORMAL_CLEARING = 16,
	PX_CAUSE_USER_BUSY = 17,
	PX_CAUSE_NO_USER_RESPONSE = 18,
	PX_CAUSE_NO_ANSWER = 19,
	PX_CAUSE_SUBSCRIBER_ABSENT = 20,
	PX_CAUSE_CALL_REJECTED = 21,
	PX_CAUSE_ANSWERED_ELSEWHERE = 26,
	PX_CAUSE_NORMAL_UNSPECIFIED = 31,
	PX_CAUSE_CONGESTION = 34,
	PX_CAUSE_NETWORK_OUT_OF_ORDER = 38,
	PX_CAUSE_TEMPORARY_FAILURE = 41,
	PX_CAUSE_SWITCH_CONGESTION = 42,
	PX_CAUSE_BEARER_CAPABILITY_NOT_AVAILABLE = 58,
	PX_CAUSE_INCOMPATIBLE_DESTINATION = 88,
	PX_CAUSE_INTERWORKING = 127,
};
const char *px_cause_text(int cause);

struct px_channel_tech {
	const char *type;        /* "SIP": the prefix of dial strings and names */
	const char *description; /* one line for "core show channeltypes" */
	/* Make an outbound channel for dest (the part after "SIP/"); nothing is
	 * sent yet. NULL with *cause set when dest cannot be reached. */
	px_channel *(*request)(const char *dest, px_channel *requestor, int *cause);
	/* Start calling (send the INVITE). Progress comes back as events.
	 * timeout_ms is how long the caller will wait (-1: no limit); the
	 * caller hangs up when it passes, the technology need not enforce it. */
	int (*call)(px_channel *ch, int timeout_ms);
	int (*answer)(px_channel *ch);
	/* Tell the far end: ringing, progress, busy, hold ... */
	int (*indicate)(px_channel *ch, enum px_control control);
	/* End the leg on the wire (CANCEL, BYE or a final response), with the
	 * channel's hangup cause. Called exactly once. */
	int (*hangup)(px_channel *ch);
	/* Free the private part when the last reference goes. */
	void (*destroy)(px_channel *ch);
	/* Optional: is dest a route that is tried in turn rather than rung
	 * with the others (a carrier trunk)? Dial calls such targets one after
	 * another, moving on only when a route fails (see app_dial). */
	bool (*hunt)(const char *dest);
	/* Optional: send a digit to the far end in the leg's own DTMF mode,
	 * without waiting (origin: how it reached the other leg, see
	 * px_dtmf_origin). -1 when it cannot be sent. */
	int (*send_dtmf)(px_channel *ch, char digit, unsigned duration_ms,
			 enum px_dtmf_origin origin);
};

int px_channel_tech_register(px_module *owner, const struct px_channel_tech *tech, px_err *err);
void px_channel_tech_unregister(const struct px_channel_tech *tech);

/* A new channel with one reference, state DOWN. name_prefix is e.g.
 * "SIP/1001"; the core appends "-%08x". linkedid NULL: its own uniqueid. */
px_channel *px_channel_alloc(const struct px_channel_tech *tech, const char *name_prefix,
			     const char *linkedid, void *pvt);
px_channel *px_channel_ref(px_channel *ch);
void px_channel_unref(px_channel *ch);

const char *px_channel_name(const px_channel *ch);
const char *px_channel_uniqueid(const px_channel *ch);
const char *px_channel_linkedid(const px_channel *ch);
const struct px_channel_tech *px_channel_tech(const px_channel *ch);
void *px_channel_pvt(const px_channel *ch);
time_t px_channel_created(const px_channel *ch);
/* When the channel was answered (first went Up), or 0 while it was not. */
time_t px_channel_answered(px_channel *ch);

enum px_channel_state px_channel_state(const px_channel *ch);
void px_channel_set_state(px_channel *ch, enum px_channel_state state);
const char *px_channel_state_name(enum px_channel_state state);

/* Identity. Strings are copied; getters copy into buf (always terminated). */
void px_channel_set_caller(px_channel *ch, const char *num, const char *name);
void px_channel_get_caller(px_channel *ch, char *num, size_t numsize, char *name, size_t namesize);
/* The party the channel is connected to. A change on an answered channel
 * emits ConnectedLine (before the answer, the next ChannelState carries it). */
void px_channel_set_connected(px_channel *ch, const char *num, const char *name);
void px_channel_get_connected(px_channel *ch, char *num, size_t numsize, char *name,
			      size_t namesize);

/* Dialplan position and the application running now (for show commands). */
void px_channel_set_dialplan(px_channel *ch, const char *context, const char *exten);
void px_channel_get_dialplan(px_channel *ch, char *context, size_t csize, char *exten,
			     size_t esize);
void px_channel_set_application(px_channel *ch, const char *app, const char *data);

/* Variables: set (value NULL removes), get into buf (-1 when unset).
 * Names match without leading underscores: "_NAME" (inherited by dialled
 * channels as NAME) and "__NAME" (inherited as __NAME, at every level) are
 * both the variable NAME. Reads also answer the built-in variables CHANNEL,
 * UNIQUEID, LINKEDID, CONTEXT, EXTEN and HANGUPCAUSE (Q.850 number), which
 * hide a variable set with the same name. */
void px_channel_var_set(px_channel *ch, const char *name, const char *value);
int px_channel_var_get(px_channel *ch, const char *name, char *buf, size_t size);
bool px_channel_var_is_builtin(const char *name);
/* Call fn for each variable, under the channel's lock: fn must not block. */
void px_channel_var_foreach(px_channel *ch,
			    void (*fn)(void *ctx, const char *name, const char *value), void *ctx);

/* Bridged peer (a reference is taken; NULL clears), for show commands. */
void px_channel_set_peer(px_channel *ch, px_channel *peer);
px_channel *px_channel_get_peer(px_channel *ch); /* new reference or NULL */

/* Media of the leg, owned by the channel technology. Applications read it
 * each time they bridge, so a technology clears it (NULL) before destroying
 * the session, or destroys the session only in its destroy() operation. */
void px_channel_set_rtp(px_channel *ch, px_rtp *rtp);
px_rtp *px_channel_rtp(px_channel *ch);
/* The audio codec the leg's offer and answer agreed on, named as in SDP
 * ("PCMU", "PCMA"), set by the technology; "" until then. Shown by Status;
 * whether two legs can be bridged is decided from their media's formats
 * (an operator's Bridge is refused only when no translation path joins
 * them). */
void px_channel_set_codec(px_channel *ch, const char *codec);
void px_channel_get_codec(px_channel *ch, char *buf, size_t size);

/* On hold: set when a technology reports its far end's hold
 * (px_channel_queue_control with PX_CONTROL_HOLD/UNHOLD, source "remote")
 * or the operator holds it (source "operator"); tells Hold/Unhold. The
 * flag is what the last of them said. */
void px_channel_set_hold(px_channel *ch, bool on, const char *source);
bool px_channel_on_hold(px_channel *ch);

/* ---- events: technology thread -> session thread ---- */
void px_channel_queue_event(px_channel *ch, const struct px_channel_event *ev);
void px_channel_queue_control(px_channel *ch, enum px_control control);
/* The leg is gone on the wire (BYE received, final error response ...):
 * records the cause and queues PX_EVENT_HANGUP. The tech's hangup()
 * operation is then not called again. */
void px_channel_queue_hangup(px_channel *ch, int cause);
/* A DTMF digit from the far end: begin tells it started (DtmfBegin event
 * only), the end (with its duration) is told and queued as PX_EVENT_DTMF. */
void px_channel_queue_dtmf(px_channel *ch, char digit, bool begin, int duration_ms);
/* The same, telling how the digit came (px_channel_queue_dtmf: signalling). */
void px_channel_queue_dtmf_from(px_channel *ch, char digit, bool begin, int duration_ms,
				enum px_dtmf_origin origin);

/*
 * A waiter is what a session thread sleeps on. Every channel has one of its
 * own; an application watching several channels (Dial) points them all at
 * one waiter with px_channel_set_waiter and sleeps on it once.
 */
typedef struct px_waiter px_waiter;
px_waiter *px_channel_waiter(px_channel *ch);
void px_channel_set_waiter(px_channel *ch, px_waiter *w); /* NULL: its own again */
/* Sleep until an event is queued on a channel using w, or timeout_ms passes
 * (-1: no limit). Returns 1 when woken by an event, 0 on timeout. */
int px_waiter_wait(px_waiter *w, int timeout_ms);
/* Take the next event of ch without sleeping: 1 if ev was filled, else 0. */
int px_channel_take_event(px_channel *ch, struct px_channel_event *ev);
/* Sleep on ch's own waiter for its next event: 1, or 0 on timeout. */
int px_channel_wait_event(px_channel *ch, int timeout_ms, struct px_channel_event *ev);

/* ---- actions: session thread -> technology ---- */
/* A new outbound channel of technology type for dest. With a requestor
 * (the caller), the new channel inherits its "_" and "__" variables. */
px_channel *px_channel_request(const char *type, const char *dest, px_channel *requestor,
			       int *cause);
/* Does technology type treat dest as a route to hunt over (tech->hunt)? */
bool px_channel_tech_hunts(const char *type, const char *dest);
int px_channel_call(px_channel *ch, int timeout_ms);
int px_channel_answer(px_channel *ch);
int px_channel_indicate(px_channel *ch, enum px_control control);
/* Send a digit to the far end, through the technology's send_dtmf; -1 when
 * it has none, the channel is hung up, or the digit cannot be sent. */
int px_channel_send_dtmf(px_channel *ch, char digit, unsigned duration_ms,
			 enum px_dtmf_origin origin);
/* Hang up with cause (once; later calls do nothing). Safe from any thread. */
void px_channel_hangup(px_channel *ch, int cause);
bool px_channel_is_hungup(const px_channel *ch);
/* Record why the call failed before hanging up later (Dial after a busy
 * callee): the cause the caller is eventually told. Overrides an earlier one. */
void px_channel_set_hangup_cause(px_channel *ch, int cause);
int px_channel_hangup_cause(const px_channel *ch);

/* Run the dialplan for an inbound channel in a new session thread; the
 * thread takes a reference and hangs the channel up when the dialplan ends.
 * A channel with a redirect pending (px_channel_async_goto) starts there:
 * this is how the owner of a channel without a session (Dial's callee)
 * hands a redirected channel a session of its own. */
int px_channel_start_session(px_channel *ch, px_err *err);
bool px_channel_in_session(px_channel *ch); /* a session thread runs it now */

/*
 * Redirect ("async goto"), from any thread: the channel leaves what it runs
 * and continues in the dialplan at exten@context. Its session is woken
 * (PX_EVENT_REDIRECT), the running application returns -1, and the session
 * runs the dialplan again at the new place instead of hanging up. A
 * channel without a session of its own is handled by the bridge it is in:
 * Dial ends its bridge and gives the redirected leg a session. Fails when
 * the channel is hung up, the extension does not exist, or nobody would
 * carry it out: a channel with no session that is in no bridge (a leg Dial
 * still rings; redirect its caller instead).
 */
int px_channel_async_goto(px_channel *ch, const char *context, const char *exten, px_err *err);
/* Redirect two channels at once (a transfer of both parties of a call):
 * both targets and both channels are checked first, and both channels are
 * marked before either is woken, so a bridge they share finds both
 * leaving and hangs up neither. On failure neither is moved. */
int px_channel_async_goto2(px_channel *ch, const char *context, const char *exten,
			   px_channel *extra, const char *xcontext, const char *xexten,
			   px_err *err);
/* A redirect or bridge request waits: applications return -1 when they see
 * it (px_app_exec does that for applications that do not wait on events). */
bool px_channel_leaving(px_channel *ch);

/*
 * Originate: a call placed by the PBX itself (an operator, a script). The
 * channel is requested with no caller, its caller ID and variables set, and
 * called; a session thread waits for the answer (up to timeout_ms, then it
 * is hung up with cause 19) and then runs the dialplan at exten@context on
 * it, or the application app(app_args). What happens next is told by
 * events (ChannelState, Hangup with its cause).
 */
struct px_originate {
	const char *tech;            /* "SIP" */
	const char *dest;            /* "1002": what follows "SIP/" */
	const char *context, *exten; /* where the answered channel goes ... */
	const char *app, *app_args;  /* ... or the application run on it */
	const char *caller_num;      /* presented to the callee; NULL: none */
	const char *caller_name;
	int timeout_ms;          /* ringing at most; <= 0: 30 s */
	const char *const *vars; /* "NAME=value" strings, NULL-ended; or NULL */
	size_t nvars;            /* entries of vars (when not NULL-ended) */
};
/* 0 with *out a new reference once the call is placed (the callee is
 * being called), or -1 with err saying why (unknown technology, endpoint
 * not registered, no such extension or application ...). */
int px_channel_originate(const struct px_originate *o, px_channel **out, px_err *err);

/* ---- the channel table ---- */
px_channel *px_channel_find(const char *name); /* new reference or NULL */
/* Snapshot of every channel: fn gets each with a reference held. */
void px_channel_foreach(void (*fn)(void *ctx, px_channel *ch), void *ctx);
size_t px_channel_count(void);

#endif
