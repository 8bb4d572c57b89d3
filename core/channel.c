/*
 * Channels: allocation and naming, the table of live channels, identity and
 * variables, the event queue between a technology's thread and the session
 * thread, hangup that happens exactly once, the registry of channel
 * technologies, the events told about each channel (created, state,
 * hold, DTMF, hangup), and the session that runs a channel's dialplan and
 * takes it where it is sent next (a redirect, a bridge) before it hangs up.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <plexus/channel.h>
#include <plexus/core.h>
#include <plexus/app.h>
#include <plexus/bridge.h>
#include <plexus/codec.h>
#include <plexus/dialplan.h>
#include <plexus/event.h>
#include <plexus/log.h>
#include <plexus/media.h>

#include "allocator.h"
#include "bridge_internal.h"
#include "channel_internal.h"
#include "thread_internal.h"

struct px_waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool pending;      /* an event arrived since the last wait */
	int sleepers;      /* threads inside pthread_cond_*wait on cond */
	px_channel *owner; /* the channel it is embedded in (own_waiter) */
};

struct channel_var {
	struct channel_var *next;
	char *name;
	char *value;
};

/* A channel's event queue: a ring of EVENT_QUEUE_FIRST slots inside the
 * channel, moved to the heap and doubled when it fills, up to
 * EVENT_QUEUE_MAX. A call queues a handful of events at a time (ringing,
 * answer, DTMF, hangup) and the session takes them at once; 64 inline
 * slots were 1.5 KiB in every channel, two per relayed call, for bursts
 * of DTMF that few calls have. */
#define EVENT_QUEUE_FIRST 8
#define EVENT_QUEUE_MAX   64

/* What the session must do once its application has returned: go to
 * another place in the dialplan, or meet another channel in a bridge. */
enum departure_kind {
	DEPART_NONE,
	DEPART_GOTO,        /* run the dialplan at context/exten */
	DEPART_BRIDGE_RUN,  /* run a bridge with peer once it is handed over */
	DEPART_BRIDGE_JOIN, /* hand this channel over to peer's bridge and leave */
};

struct departure {
	enum departure_kind kind;
	char *context, *exten;       /* DEPART_GOTO */
	px_channel *peer;            /* DEPART_BRIDGE_*: a reference */
	struct px_bridge_meet *meet; /* DEPART_BRIDGE_*: a reference */
};

struct px_channel {
	atomic_int refs;
	const struct px_channel_tech *tech;
	void *pvt;
	char name[96];
	char uniqueid[32];
	char linkedid[32];
	time_t created;

	pthread_mutex_t lock; /* everything below */
	enum px_channel_state state;
	char *caller_num, *caller_name;
	char *connected_num, *connected_name;
	char *context, *exten;
	char *app, *app_data;
	struct channel_var *vars;
	px_channel *peer;
	px_rtp *rtp;
	char codec[32];                  /* negotiated audio codec, "" until known */
	time_t answered;                 /* when it first went Up; 0 before */
	bool hold;                       /* the last Hold/Unhold told of it was Hold */
	struct px_channel_event *events; /* ev_first, or a heap ring */
	unsigned ev_head, ev_len, ev_cap;
	struct px_channel_event ev_first[EVENT_QUEUE_FIRST];
	bool hungup;      /* px_channel_hangup ran */
	bool tech_gone;   /* the leg ended on the wire; tech->hangup must not run */
	bool hangup_told; /* the Hangup event went out */
	int cause;
	bool in_session;      /* a session thread runs (or is about to run) this channel */
	bool session_running; /* ... and it is session_thread */
	pthread_t session_thread;
	struct departure departure; /* where the session goes next (redirect, bridge) */

	px_waiter own_waiter;
	px_waiter *waiter;

	px_channel *prev, *next; /* channel table */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static px_channel *table_head;
/* Changed under table_lock; atomic for readers that may not lock
 * (px_channel_recent). */
static atomic_size_t table_count;
/* CLOCK_MONOTONIC_COARSE second in which the last channel was made; far in
 * the past until one is. */
static atomic_llong last_made_sec = LLONG_MIN / 2;
static atomic_uint name_serial;
static atomic_uint uniqueid_serial;

/* ---- causes ---- */

const char *px_cause_text(int cause)
{
	switch (cause) {
	case PX_CAUSE_UNALLOCATED:
		return "Unallocated (unassigned) number";
	case PX_CAUSE_NORMAL_CLEARING:
		return "Normal Clearing";
	case PX_CAUSE_USER_BUSY:
		return "User busy";
	case PX_CAUSE_NO_USER_RESPONSE:
		return "No user responding";
	case PX_CAUSE_NO_ANSWER:
		return "User alerting, no answer";
	case PX_CAUSE_SUBSCRIBER_ABSENT:
		return "Subscriber absent";
	case PX_CAUSE_CALL_REJECTED:
		return "Call Rejected";
	case PX_CAUSE_ANSWERED_ELSEWHERE:
		return "Answered elsewhere";
	case PX_CAUSE_NORMAL_UNSPECIFIED:
		return "Normal, unspecified";
	case PX_CAUSE_NETWORK_OUT_OF_ORDER:
		return "Network out of order";
	case PX_CAUSE_TEMPORARY_FAILURE:
		return "Temporary failure";
	case PX_CAUSE_SWITCH_CONGESTION:
		return "Switching equipment congestion";
	case PX_CAUSE_CONGESTION:
		return "Circuit/channel congestion";
	case PX_CAUSE_BEARER_CAPABILITY_NOT_AVAILABLE:
		return "Bearer capability not available";
	case PX_CAUSE_INCOMPATIBLE_DESTINATION:
		return "Incompatible destination";
	case PX_CAUSE_INTERWORKING:
		return "Interworking, unspecified";
	default:
		return "Unknown";
	}
}

static const char *const state_names[] = {"Down", "Rsrvd",   "OffHook", "Dialing",
					  "Ring", "Ringing", "Up",      "Busy"};

const char *px_channel_state_name(enum px_channel_state state)
{
	return (unsigned)state < sizeof(state_names) / sizeof(state_names[0]) ? state_names[state]
									      : "Unknown";
}

/* ---- technologies ---- */

struct tech_entry {
	const struct px_channel_tech *tech;
	px_module_resource *res;
	struct tech_entry *next;
};

static pthread_mutex_t tech_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tech_entry *techs;

static void tech_release(void *obj)
{
	struct tech_entry *e = obj;

	pthread_mutex_lock(&tech_lock);
	for (struct tech_entry **pp = &techs; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			break;
		}
	}
	pthread_mutex_unlock(&tech_lock);
	free(e);
}

int px_channel_tech_register(px_module *owner, const struct px_channel_tech *tech, px_err *err)
{
	struct tech_entry *e;

	if (!tech->type || !tech->request || !tech->call || !tech->hangup || !tech->answer)
		return px_err_set(err, "channel technology %s is incomplete",
				  tech->type ? tech->type : "(null)");
	pthread_mutex_lock(&tech_lock);
	for (e = techs; e; e = e->next) {
		if (!strcasecmp(e->tech->type, tech->type)) {
			pthread_mutex_unlock(&tech_lock);
			return px_err_set(err, "channel technology %s is already registered",
					  tech->type);
		}
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		pthread_mutex_unlock(&tech_lock);
		return px_err_set(err, "out of memory");
	}
	e->tech = tech;
	e->next = techs;
	techs = e;
	e->res = px_module_track(owner, "channel technology", tech_release, e);
	pthread_mutex_unlock(&tech_lock);
	return 0;
}

void px_channel_tech_unregister(const struct px_channel_tech *tech)
{
	struct tech_entry *found = NULL;

	pthread_mutex_lock(&tech_lock);
	for (struct tech_entry **pp = &techs; *pp; pp = &(*pp)->next) {
		if ((*pp)->tech == tech) {
			found = *pp;
			*pp = found->next;
			break;
		}
	}
	pthread_mutex_unlock(&tech_lock);
	if (found) {
		px_module_untrack(found->res);
		free(found);
	}
}

static const struct px_channel_tech *tech_find(const char *type)
{
	const struct px_channel_tech *t = NULL;

	pthread_mutex_lock(&tech_lock);
	for (struct tech_entry *e = techs; e; e = e->next)
		if (!strcasecmp(e->tech->type, type))
			t = e->tech;
	pthread_mutex_unlock(&tech_lock);
	return t;
}

void px_channel_tech_foreach(void (*fn)(void *ctx, const struct px_channel_tech *t), void *ctx)
{
	pthread_mutex_lock(&tech_lock);
	for (struct tech_entry *e = techs; e; e = e->next)
		fn(ctx, e->tech);
	pthread_mutex_unlock(&tech_lock);
}

/* ---- waiters ---- */

static void waiter_init(px_waiter *w)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&w->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&w->cond, &attr);
	pthread_condattr_destroy(&attr);
	w->pending = false;
	w->sleepers = 0;
}

static void waiter_destroy(px_waiter *w)
{
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
}

/* Signalled after the unlock, and only when someone sleeps: a session
 * thread woken while the waker still holds the mutex would only block on it
 * again, two futex calls per event for nothing. The caller keeps w alive:
 * it holds a reference to w's owner. */
static void waiter_wake(px_waiter *w)
{
	bool sleeping;

	pthread_mutex_lock(&w->lock);
	w->pending = true;
	sleeping = w->sleepers > 0;
	pthread_mutex_unlock(&w->lock);
	if (sleeping)
		pthread_cond_broadcast(&w->cond);
}

int px_waiter_wait(px_waiter *w, int timeout_ms)
{
	struct timespec deadline;
	int woken;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	if (timeout_ms >= 0) {
		deadline.tv_sec += timeout_ms / 1000;
		deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (deadline.tv_nsec >= 1000000000L) {
			deadline.tv_sec++;
			deadline.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&w->lock);
	while (!w->pending) {
		int rc;
		w->sleepers++;
		rc = timeout_ms < 0 ? pthread_cond_wait(&w->cond, &w->lock)
				    : pthread_cond_timedwait(&w->cond, &w->lock, &deadline);
		w->sleepers--;
		if (rc == ETIMEDOUT)
			break;
	}
	woken = w->pending;
	w->pending = false;
	pthread_mutex_unlock(&w->lock);
	return woken ? 1 : 0;
}

px_waiter *px_channel_waiter(px_channel *ch)
{
	px_waiter *w;

	pthread_mutex_lock(&ch->lock);
	w = ch->waiter;
	pthread_mutex_unlock(&ch->lock);
	return w;
}

void px_channel_set_waiter(px_channel *ch, px_waiter *w)
{
	bool has_events;

	pthread_mutex_lock(&ch->lock);
	ch->waiter = w ? w : &ch->own_waiter;
	w = ch->waiter;
	has_events = ch->ev_len > 0;
	pthread_mutex_unlock(&ch->lock);
	/* Events already queued must not go unnoticed by the new waiter. */
	if (has_events)
		waiter_wake(w);
}

/* ---- allocation and the table ---- */

/* The vDSO's coarse clock: no system call, a tick's precision is plenty. */
static long long coarse_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

/* Written only when the second changes: at thousands of channels a second,
 * from the SIP and session threads, the cache line stays shared. */
static void note_channel_made(void)
{
	long long now = coarse_seconds();

	if (atomic_load_explicit(&last_made_sec, memory_order_relaxed) != now)
		atomic_store_explicit(&last_made_sec, now, memory_order_relaxed);
}

px_channel *px_channel_alloc(const struct px_channel_tech *tech, const char *name_prefix,
			     const char *linkedid, void *pvt)
{
	px_channel *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	atomic_init(&ch->refs, 1);
	ch->tech = tech;
	ch->pvt = pvt;
	ch->created = time(NULL);
	snprintf(ch->name, sizeof(ch->name), "%s-%08x", name_prefix,
		 atomic_fetch_add(&name_serial, 1) + 1);
	snprintf(ch->uniqueid, sizeof(ch->uniqueid), "%lld.%u", (long long)ch->created,
		 atomic_fetch_add(&uniqueid_serial, 1));
	snprintf(ch->linkedid, sizeof(ch->linkedid), "%s", linkedid ? linkedid : ch->uniqueid);
	pthread_mutex_init(&ch->lock, NULL);
	ch->events = ch->ev_first;
	ch->ev_cap = EVENT_QUEUE_FIRST;
	waiter_init(&ch->own_waiter);
	ch->own_waiter.owner = ch;
	ch->waiter = &ch->own_waiter;
	ch->state = PX_STATE_DOWN;

	pthread_mutex_lock(&table_lock);
	ch->next = table_head;
	if (table_head)
		table_head->prev = ch;
	table_head = ch;
	table_count++;
	pthread_mutex_unlock(&table_lock);
	note_channel_made();
	px_debug(1, "Channel %s allocated (uniqueid %s)", ch->name, ch->uniqueid);
	PX_EVENT_EMIT(PX_EV_CHANNEL_CREATED, ch, NULL,
		      PX_EVS("state", px_channel_state_name(PX_STATE_DOWN)),
		      PX_EVS("technology", tech ? tech->type : ""));
	return ch;
}

px_channel *px_channel_ref(px_channel *ch)
{
	atomic_fetch_add(&ch->refs, 1);
	return ch;
}

static void tell_hangup(px_channel *ch);
static void departure_clear(struct departure *d);

static void channel_free(px_channel *ch)
{
	struct channel_var *v = ch->vars;

	/* A channel that never ended on the wire (its request was abandoned)
	 * still closes its story for event subscribers. */
	tell_hangup(ch);
	departure_clear(&ch->departure);
	if (ch->tech && ch->tech->destroy)
		ch->tech->destroy(ch);
	while (v) {
		struct channel_var *next = v->next;
		free(v->name);
		free(v->value);
		free(v);
		v = next;
	}
	if (ch->peer)
		px_channel_unref(ch->peer);
	free(ch->caller_num);
	free(ch->caller_name);
	free(ch->connected_num);
	free(ch->connected_name);
	free(ch->context);
	free(ch->exten);
	free(ch->app);
	free(ch->app_data);
	if (ch->events != ch->ev_first)
		free(ch->events);
	waiter_destroy(&ch->own_waiter);
	pthread_mutex_destroy(&ch->lock);
	px_debug(1, "Channel %s destroyed", ch->name);
	free(ch);
}

void px_channel_unref(px_channel *ch)
{
	if (!ch)
		return;
	if (atomic_fetch_sub(&ch->refs, 1) != 1)
		return;
	pthread_mutex_lock(&table_lock);
	if (ch->prev)
		ch->prev->next = ch->next;
	else
		table_head = ch->next;
	if (ch->next)
		ch->next->prev = ch->prev;
	table_count--;
	pthread_mutex_unlock(&table_lock);
	channel_free(ch);
}

px_channel *px_channel_find(const char *name)
{
	px_channel *found = NULL;

	pthread_mutex_lock(&table_lock);
	for (px_channel *ch = table_head; ch; ch = ch->next) {
		if (!strcasecmp(ch->name, name)) {
			/* A channel whose last reference is being dropped is skipped. */
			int refs = atomic_load(&ch->refs);
			while (refs > 0 &&
			       !atomic_compare_exchange_weak(&ch->refs, &refs, refs + 1))
				;
			if (refs > 0)
				found = ch;
			break;
		}
	}
	pthread_mutex_unlock(&table_lock);
	return found;
}

void px_channel_foreach(void (*fn)(void *ctx, px_channel *ch), void *ctx)
{
	px_channel **snap = NULL;
	size_t n = 0;

	pthread_mutex_lock(&table_lock);
	snap = calloc(table_count + 1, sizeof(*snap));
	if (snap) {
		for (px_channel *ch = table_head; ch; ch = ch->next) {
			int refs = atomic_load(&ch->refs);
			while (refs > 0 &&
			       !atomic_compare_exchange_weak(&ch->refs, &refs, refs + 1))
				;
			if (refs > 0)
				snap[n++] = ch;
		}
	}
	pthread_mutex_unlock(&table_lock);
	/* Oldest first reads naturally in listings. */
	for (size_t i = n; i > 0; i--) {
		fn(ctx, snap[i - 1]);
		px_channel_unref(snap[i - 1]);
	}
	free(snap);
}

bool px_channel_recent(unsigned secs)
{
	if (atomic_load_explicit(&table_count, memory_order_relaxed) > 0)
		return true;
	return coarse_seconds() - atomic_load_explicit(&last_made_sec, memory_order_relaxed) <
	       (long long)secs;
}

size_t px_channel_count(void)
{
	size_t n;

	pthread_mutex_lock(&table_lock);
	n = table_count;
	pthread_mutex_unlock(&table_lock);
	return n;
}

/* ---- plain accessors ---- */

const char *px_channel_name(const px_channel *ch)
{
	return ch->name;
}

const char *px_channel_uniqueid(const px_channel *ch)
{
	return ch->uniqueid;
}

const char *px_channel_linkedid(const px_channel *ch)
{
	return ch->linkedid;
}

const struct px_channel_tech *px_channel_tech(const px_channel *ch)
{
	return ch->tech;
}

void *px_channel_pvt(const px_channel *ch)
{
	return ch->pvt;
}

time_t px_channel_created(const px_channel *ch)
{
	return ch->created;
}

time_t px_channel_answered(px_channel *ch)
{
	time_t t;

	pthread_mutex_lock(&ch->lock);
	t = ch->answered;
	pthread_mutex_unlock(&ch->lock);
	return t;
}

enum px_channel_state px_channel_state(const px_channel *ch)
{
	px_channel *m = (px_channel *)ch;
	enum px_channel_state st;

	pthread_mutex_lock(&m->lock);
	st = m->state;
	pthread_mutex_unlock(&m->lock);
	return st;
}

static void emit_state(px_channel *ch, enum px_channel_state state)
{
	char cnum[80], cname[80], knum[80], kname[80], context[80], exten[80];

	if (!px_event_listening())
		return;
	px_channel_get_caller(ch, cnum, sizeof(cnum), cname, sizeof(cname));
	px_channel_get_connected(ch, knum, sizeof(knum), kname, sizeof(kname));
	px_channel_get_dialplan(ch, context, sizeof(context), exten, sizeof(exten));
	PX_EVENT_EMIT(PX_EV_CHANNEL_STATE, ch, NULL, PX_EVS("state", px_channel_state_name(state)),
		      PX_EVI("state_code", (int)state), PX_EVS("caller_num", cnum),
		      PX_EVS("caller_name", cname), PX_EVS("connected_num", knum),
		      PX_EVS("connected_name", kname), PX_EVS("context", context),
		      PX_EVS("exten", exten));
}

void px_channel_set_state(px_channel *ch, enum px_channel_state state)
{
	enum px_channel_state old;

	pthread_mutex_lock(&ch->lock);
	old = ch->state;
	ch->state = state;
	if (state == PX_STATE_UP && !ch->answered)
		ch->answered = time(NULL);
	pthread_mutex_unlock(&ch->lock);
	if (old != state) {
		px_debug(1, "Channel %s: %s -> %s", ch->name, px_channel_state_name(old),
			 px_channel_state_name(state));
		emit_state(ch, state);
	}
}

static void set_str(char **field, const char *value)
{
	char *copy = value ? strdup(value) : NULL;

	free(*field);
	*field = copy;
}

static void get_str(const char *field, char *buf, size_t size)
{
	if (size)
		snprintf(buf, size, "%s", field ? field : "");
}

void px_channel_set_caller(px_channel *ch, const char *num, const char *name)
{
	pthread_mutex_lock(&ch->lock);
	set_str(&ch->caller_num, num);
	set_str(&ch->caller_name, name);
	pthread_mutex_unlock(&ch->lock);
}

void px_channel_get_caller(px_channel *ch, char *num, size_t numsize, char *name, size_t namesize)
{
	pthread_mutex_lock(&ch->lock);
	get_str(ch->caller_num, num, numsize);
	get_str(ch->caller_name, name, namesize);
	pthread_mutex_unlock(&ch->lock);
}

static bool same_str(const char *field, const char *value)
{
	return !strcmp(field ? field : "", value ? value : "");
}

/* A change on an answered channel (a Redirect, a Bridge, a transfer, the
 * callee's identity arriving) is told by ConnectedLine; before the answer
 * the ChannelState that follows carries it, so Dial's calls cost no extra
 * event. */
void px_channel_set_connected(px_channel *ch, const char *num, const char *name)
{
	bool tell;

	pthread_mutex_lock(&ch->lock);
	tell = ch->state == PX_STATE_UP &&
	       !(same_str(ch->connected_num, num) && same_str(ch->connected_name, name));
	set_str(&ch->connected_num, num);
	set_str(&ch->connected_name, name);
	pthread_mutex_unlock(&ch->lock);
	if (tell)
		PX_EVENT_EMIT(PX_EV_CONNECTED_LINE, ch, NULL, PX_EVS("connected_num", num),
			      PX_EVS("connected_name", name));
}

void px_channel_get_connected(px_channel *ch, char *num, size_t numsize, char *name,
			      size_t namesize)
{
	pthread_mutex_lock(&ch->lock);
	get_str(ch->connected_num, num, numsize);
	get_str(ch->connected_name, name, namesize);
	pthread_mutex_unlock(&ch->lock);
}

void px_channel_set_dialplan(px_channel *ch, const char *context, const char *exten)
{
	pthread_mutex_lock(&ch->lock);
	set_str(&ch->context, context);
	set_str(&ch->exten, exten);
	pthread_mutex_unlock(&ch->lock);
}

void px_channel_get_dialplan(px_channel *ch, char *context, size_t csize, char *exten, size_t esize)
{
	pthread_mutex_lock(&ch->lock);
	get_str(ch->context, context, csize);
	get_str(ch->exten, exten, esize);
	pthread_mutex_unlock(&ch->lock);
}

void px_channel_set_application(px_channel *ch, const char *app, const char *data)
{
	pthread_mutex_lock(&ch->lock);
	set_str(&ch->app, app);
	set_str(&ch->app_data, data);
	pthread_mutex_unlock(&ch->lock);
}

void px_channel_get_application(px_channel *ch, char *app, size_t asize, char *data, size_t dsize)
{
	pthread_mutex_lock(&ch->lock);
	get_str(ch->app, app, asize);
	get_str(ch->app_data, data, dsize);
	pthread_mutex_unlock(&ch->lock);
}

/* ---- variables ----
 *
 * As in Asterisk, a variable set as "_NAME" or "__NAME" is inherited by the
 * channels dialled from this one (see px_channel_request), and is the
 * variable NAME for every read and write: names are matched without their
 * leading underscores, and a set replaces the variable whatever its prefix.
 */

static const char *var_base(const char *name)
{
	if (name[0] == '_')
		name += name[1] == '_' ? 2 : 1;
	return name;
}

void px_channel_var_set(px_channel *ch, const char *name, const char *value)
{
	struct channel_var **pp, *v, *old = NULL, *fresh = NULL;
	const char *base = var_base(name);

	if (value) {
		fresh = calloc(1, sizeof(*fresh));
		if (!fresh || !(fresh->name = strdup(name)) || !(fresh->value = strdup(value))) {
			if (fresh) {
				free(fresh->name);
				free(fresh);
			}
			return;
		}
	}
	pthread_mutex_lock(&ch->lock);
	for (pp = &ch->vars; *pp; pp = &(*pp)->next)
		if (!strcmp(var_base((*pp)->name), base))
			break;
	v = *pp;
	if (v && fresh && !strcmp(v->name, name)) {
		/* Same name: keep its place in the listing. */
		old = fresh;
		char *t = v->value;
		v->value = fresh->value;
		fresh->value = t;
	} else {
		if (v) {
			*pp = v->next;
			old = v;
		}
		if (fresh) {
			for (pp = &ch->vars; *pp; pp = &(*pp)->next)
				;
			*pp = fresh; /* appended: listing order is setting order */
		}
	}
	pthread_mutex_unlock(&ch->lock);
	if (old) {
		free(old->name);
		free(old->value);
		free(old);
	}
}

/* The variables every channel has without setting them, as in Asterisk.
 * Called with ch->lock held. */
static bool builtin_var(px_channel *ch, const char *name, char *buf, size_t size)
{
	if (!strcmp(name, "CHANNEL"))
		get_str(ch->name, buf, size);
	else if (!strcmp(name, "UNIQUEID"))
		get_str(ch->uniqueid, buf, size);
	else if (!strcmp(name, "LINKEDID"))
		get_str(ch->linkedid, buf, size);
	else if (!strcmp(name, "CONTEXT"))
		get_str(ch->context, buf, size);
	else if (!strcmp(name, "EXTEN"))
		get_str(ch->exten, buf, size);
	else if (!strcmp(name, "HANGUPCAUSE"))
		snprintf(buf, size, "%d", ch->cause);
	else
		return false;
	return true;
}

int px_channel_var_get(px_channel *ch, const char *name, char *buf, size_t size)
{
	const char *base = var_base(name);
	int rc = -1;

	pthread_mutex_lock(&ch->lock);
	if (builtin_var(ch, name, buf, size)) {
		rc = 0;
	} else {
		for (struct channel_var *v = ch->vars; v; v = v->next) {
			if (!strcmp(var_base(v->name), base)) {
				get_str(v->value, buf, size);
				rc = 0;
				break;
			}
		}
	}
	pthread_mutex_unlock(&ch->lock);
	return rc;
}

bool px_channel_var_is_builtin(const char *name)
{
	static const char *const names[] = {"CHANNEL", "UNIQUEID", "LINKEDID",
					    "CONTEXT", "EXTEN",    "HANGUPCAUSE"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(name, names[i]))
			return true;
	return false;
}

/* Copy the inheritable variables of parent into child: "__NAME" keeps its
 * prefix (inherited again by the child's own dialled channels), "_NAME"
 * arrives as NAME (one level only). */
static void inherit_vars(px_channel *parent, px_channel *child)
{
	struct channel_var *copy = NULL, **tail = &copy;

	pthread_mutex_lock(&parent->lock);
	for (struct channel_var *v = parent->vars; v; v = v->next) {
		struct channel_var *c;
		if (v->name[0] != '_')
			continue;
		c = calloc(1, sizeof(*c));
		if (!c)
			break;
		c->name = strdup(v->name[1] == '_' ? v->name : v->name + 1);
		c->value = strdup(v->value);
		*tail = c;
		tail = &c->next;
	}
	pthread_mutex_unlock(&parent->lock);
	while (copy) {
		struct channel_var *next = copy->next;
		if (copy->name && copy->value && copy->name[0])
			px_channel_var_set(child, copy->name, copy->value);
		free(copy->name);
		free(copy->value);
		free(copy);
		copy = next;
	}
}

void px_channel_var_foreach(px_channel *ch,
			    void (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
	pthread_mutex_lock(&ch->lock);
	for (struct channel_var *v = ch->vars; v; v = v->next)
		fn(ctx, v->name, v->value);
	pthread_mutex_unlock(&ch->lock);
}

/* ---- peer and media ---- */

void px_channel_set_peer(px_channel *ch, px_channel *peer)
{
	px_channel *old;

	if (peer)
		px_channel_ref(peer);
	pthread_mutex_lock(&ch->lock);
	old = ch->peer;
	ch->peer = peer;
	pthread_mutex_unlock(&ch->lock);
	px_channel_unref(old);
}

px_channel *px_channel_get_peer(px_channel *ch)
{
	px_channel *p;

	pthread_mutex_lock(&ch->lock);
	p = ch->peer ? px_channel_ref(ch->peer) : NULL;
	pthread_mutex_unlock(&ch->lock);
	return p;
}

void px_channel_set_rtp(px_channel *ch, px_rtp *rtp)
{
	pthread_mutex_lock(&ch->lock);
	ch->rtp = rtp;
	pthread_mutex_unlock(&ch->lock);
}

px_rtp *px_channel_rtp(px_channel *ch)
{
	px_rtp *r;

	pthread_mutex_lock(&ch->lock);
	r = ch->rtp;
	pthread_mutex_unlock(&ch->lock);
	return r;
}

void px_channel_set_codec(px_channel *ch, const char *codec)
{
	pthread_mutex_lock(&ch->lock);
	snprintf(ch->codec, sizeof(ch->codec), "%s", codec ? codec : "");
	pthread_mutex_unlock(&ch->lock);
}

void px_channel_get_codec(px_channel *ch, char *buf, size_t size)
{
	pthread_mutex_lock(&ch->lock);
	get_str(ch->codec, buf, size);
	pthread_mutex_unlock(&ch->lock);
}

/* ---- events ---- */

/* Double the ring (caller holds the lock); false when it is at its
 * largest or memory ran out. */
static bool events_grow(px_channel *ch)
{
	unsigned cap = ch->ev_cap * 2;
	struct px_channel_event *ring;

	if (cap > EVENT_QUEUE_MAX || !(ring = malloc(cap * sizeof(*ring))))
		return false;
	for (unsigned i = 0; i < ch->ev_len; i++)
		ring[i] = ch->events[(ch->ev_head + i) % ch->ev_cap];
	if (ch->events != ch->ev_first)
		free(ch->events);
	ch->events = ring;
	ch->ev_head = 0;
	ch->ev_cap = cap;
	return true;
}

void px_channel_queue_event(px_channel *ch, const struct px_channel_event *ev)
{
	px_waiter *w;
	px_channel *owner;

	pthread_mutex_lock(&ch->lock);
	if (ch->ev_len < ch->ev_cap || events_grow(ch)) {
		ch->events[(ch->ev_head + ch->ev_len) % ch->ev_cap] = *ev;
		ch->ev_len++;
	} else if (ev->type == PX_EVENT_HANGUP) {
		/* A hangup must never be lost: it replaces the newest event. */
		ch->events[(ch->ev_head + ch->ev_len - 1) % ch->ev_cap] = *ev;
	} else {
		px_log_warning("Channel %s: event queue full; event dropped", ch->name);
	}
	/* Woken after the channel lock is released, or the session thread
	 * would wake only to block on that lock in px_channel_take_event (a
	 * second wake-up per event). The reference keeps the waiter alive
	 * should px_channel_set_waiter move ch off it meanwhile: that waiter
	 * then gets a wake-up with nothing queued, which its sleeper takes as
	 * one, and the new waiter is woken by px_channel_set_waiter itself. */
	w = ch->waiter;
	owner = px_channel_ref(w->owner);
	pthread_mutex_unlock(&ch->lock);
	waiter_wake(w);
	px_channel_unref(owner);
}

void px_channel_queue_control(px_channel *ch, enum px_control control)
{
	struct px_channel_event ev = {.type = PX_EVENT_CONTROL, .control = control};

	/* The technology reports its far end's hold: that is the fact told. */
	if (control == PX_CONTROL_HOLD || control == PX_CONTROL_UNHOLD)
		px_channel_set_hold(ch, control == PX_CONTROL_HOLD, "remote");
	px_channel_queue_event(ch, &ev);
}

void px_channel_set_hold(px_channel *ch, bool on, const char *source)
{
	pthread_mutex_lock(&ch->lock);
	ch->hold = on;
	pthread_mutex_unlock(&ch->lock);
	PX_EVENT_EMIT(on ? PX_EV_HOLD : PX_EV_UNHOLD, ch, NULL, PX_EVS("source", source));
}

bool px_channel_on_hold(px_channel *ch)
{
	bool on;

	pthread_mutex_lock(&ch->lock);
	on = ch->hold;
	pthread_mutex_unlock(&ch->lock);
	return on;
}

void px_channel_queue_dtmf(px_channel *ch, char digit, bool begin, int duration_ms)
{
	px_channel_queue_dtmf_from(ch, digit, begin, duration_ms, PX_DTMF_SIGNALLING);
}

void px_channel_queue_dtmf_from(px_channel *ch, char digit, bool begin, int duration_ms,
				enum px_dtmf_origin origin)
{
	char d[2] = {digit, '\0'};

	if (begin) {
		PX_EVENT_EMIT(PX_EV_DTMF_BEGIN, ch, NULL, PX_EVS("digit", d),
			      PX_EVS("direction", "received"));
		return;
	}
	PX_EVENT_EMIT(PX_EV_DTMF_END, ch, NULL, PX_EVS("digit", d),
		      PX_EVI("duration_ms", duration_ms), PX_EVS("direction", "received"));
	struct px_channel_event ev = {.type = PX_EVENT_DTMF,
				      .digit = digit,
				      .duration_ms = duration_ms > 0 ? (unsigned)duration_ms : 0,
				      .origin = origin};
	px_channel_queue_event(ch, &ev);
}

/* The Hangup event, once per channel: when it is hung up or its leg ends on
 * the wire, whichever comes first. */
static void tell_hangup(px_channel *ch)
{
	bool tell;
	int cause;

	pthread_mutex_lock(&ch->lock);
	tell = !ch->hangup_told;
	ch->hangup_told = true;
	cause = ch->cause ? ch->cause : PX_CAUSE_NORMAL_CLEARING;
	pthread_mutex_unlock(&ch->lock);
	if (tell)
		PX_EVENT_EMIT(PX_EV_HANGUP, ch, NULL, PX_EVI("cause", cause),
			      PX_EVS("cause_txt", px_cause_text(cause)));
}

void px_channel_queue_hangup(px_channel *ch, int cause)
{
	struct px_channel_event ev = {.type = PX_EVENT_HANGUP, .cause = cause};

	pthread_mutex_lock(&ch->lock);
	ch->tech_gone = true;
	if (!ch->cause)
		ch->cause = cause;
	pthread_mutex_unlock(&ch->lock);
	tell_hangup(ch);
	px_channel_queue_event(ch, &ev);
}

int px_channel_take_event(px_channel *ch, struct px_channel_event *ev)
{
	int got = 0;

	pthread_mutex_lock(&ch->lock);
	if (ch->ev_len) {
		*ev = ch->events[ch->ev_head];
		ch->ev_head = (ch->ev_head + 1) % ch->ev_cap;
		ch->ev_len--;
		got = 1;
	}
	pthread_mutex_unlock(&ch->lock);
	return got;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int px_channel_wait_event(px_channel *ch, int timeout_ms, struct px_channel_event *ev)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

	for (;;) {
		int left;
		if (px_channel_take_event(ch, ev))
			return 1;
		if (deadline < 0) {
			left = -1;
		} else {
			long long l = deadline - now_ms();
			if (l <= 0)
				return 0;
			left = (int)l;
		}
		px_waiter_wait(px_channel_waiter(ch), left);
	}
}

/* ---- actions ---- */

px_channel *px_channel_request(const char *type, const char *dest, px_channel *requestor,
			       int *cause)
{
	const struct px_channel_tech *tech = tech_find(type);
	px_channel *ch;
	int dummy = 0;

	if (!cause)
		cause = &dummy;
	if (!tech) {
		px_log_warning("No channel technology '%s' (dialing %s/%s)", type, type, dest);
		*cause = PX_CAUSE_INCOMPATIBLE_DESTINATION;
		return NULL;
	}
	*cause = 0;
	ch = tech->request(dest, requestor, cause);
	if (!ch && !*cause)
		*cause = PX_CAUSE_CONGESTION;
	if (ch && requestor)
		inherit_vars(requestor, ch);
	return ch;
}

bool px_channel_tech_hunts(const char *type, const char *dest)
{
	const struct px_channel_tech *tech = tech_find(type);

	return tech && tech->hunt && tech->hunt(dest);
}

int px_channel_call(px_channel *ch, int timeout_ms)
{
	return ch->tech->call(ch, timeout_ms);
}

int px_channel_answer(px_channel *ch)
{
	int rc;

	if (px_channel_state(ch) == PX_STATE_UP)
		return 0;
	if (px_channel_is_hungup(ch))
		return -1;
	rc = ch->tech->answer(ch);
	if (rc == 0)
		px_channel_set_state(ch, PX_STATE_UP);
	return rc;
}

int px_channel_indicate(px_channel *ch, enum px_control control)
{
	if (!ch->tech->indicate || px_channel_is_hungup(ch))
		return -1;
	return ch->tech->indicate(ch, control);
}

int px_channel_send_dtmf(px_channel *ch, char digit, unsigned duration_ms,
			 enum px_dtmf_origin origin)
{
	if (!ch->tech->send_dtmf || px_channel_is_hungup(ch))
		return -1;
	return ch->tech->send_dtmf(ch, digit, duration_ms, origin);
}

void px_channel_hangup(px_channel *ch, int cause)
{
	bool first, call_tech;
	struct px_channel_event ev = {.type = PX_EVENT_HANGUP, .cause = cause};

	pthread_mutex_lock(&ch->lock);
	first = !ch->hungup;
	ch->hungup = true;
	if (first && !ch->cause)
		ch->cause = cause ? cause : PX_CAUSE_NORMAL_CLEARING;
	call_tech = first && !ch->tech_gone;
	ch->tech_gone = true;
	ev.cause = ch->cause;
	pthread_mutex_unlock(&ch->lock);
	if (!first)
		return;
	px_verbose(3, "Hanging up %s (cause %d: %s)", ch->name, ev.cause, px_cause_text(ev.cause));
	tell_hangup(ch);
	if (call_tech)
		ch->tech->hangup(ch);
	/* Wake whoever waits on this channel (a console may hang it up). */
	px_channel_queue_event(ch, &ev);
}

bool px_channel_is_hungup(const px_channel *ch)
{
	px_channel *m = (px_channel *)ch;
	bool h;

	pthread_mutex_lock(&m->lock);
	h = m->hungup || m->tech_gone;
	pthread_mutex_unlock(&m->lock);
	return h;
}

void px_channel_set_hangup_cause(px_channel *ch, int cause)
{
	pthread_mutex_lock(&ch->lock);
	if (!ch->hungup)
		ch->cause = cause;
	pthread_mutex_unlock(&ch->lock);
}

int px_channel_hangup_cause(const px_channel *ch)
{
	px_channel *m = (px_channel *)ch;
	int c;

	pthread_mutex_lock(&m->lock);
	c = m->cause;
	pthread_mutex_unlock(&m->lock);
	return c;
}

/* ---- sessions ----
 *
 * Each inbound channel's dialplan runs in a session thread of its own, for
 * as long as the call lasts. Threads are kept, reused and made ahead of
 * need: starting a call only queues it and wakes an idle session thread,
 * and a keeper thread ("session-pool") makes new ones whenever fewer than
 * SESSION_SPARE would be idle once the queued calls are taken. So the
 * signalling thread that starts a call never creates a thread (120-150 us
 * here, the largest single cost per call; when it did so itself, a burst
 * of new calls made it create one for each, and the SIP socket's queue
 * grew while it did). Idle threads beyond SESSION_KEEP end after
 * SESSION_IDLE_SECS.
 */

#define SESSION_KEEP      16
#define SESSION_IDLE_SECS 30
/* Below SESSION_KEEP, so that spares made by the keeper do not time out. */
#define SESSION_SPARE 8
/* After a failure to make a thread, the keeper tries again this much later. */
#define SESSION_RETRY_SECS 1
/* A session thread's stack: 1 MiB instead of glibc's 8 MiB (RLIMIT_STACK).
 * Only pages a thread touches count in RSS (a relayed call parked in Dial
 * has 16 KiB of it resident), so this does not lower RSS here; it bounds the address
 * space of hundreds of threads and keeps stacks below the 2 MiB of a
 * transparent huge page, which a system with THP "always" may otherwise
 * back an 8 MiB stack with. The deepest path is Lua calling C calling Lua,
 * which Lua itself limits to 200 C levels (LUAI_MAXCCALLS): measured with
 * Debian's liblua5.4, 190 nested string.gsub callbacks take 400 KiB, 195
 * nested pcalls 150 KiB, while an ordinary call parked in Dial reaches
 * 16 KiB in all. 1 MiB leaves more than twice the worst (tests/sip/lua.sh
 * "5000" dials from the bottom of such a recursion). Sanitizers' redzones
 * make frames several times larger, so their builds get 4 MiB. */
#if defined(__SANITIZE_ADDRESS__)
#define SESSION_STACK_SIZE (4u << 20)
#else
#define SESSION_STACK_SIZE (1u << 20)
#endif

struct session_job {
	px_channel *ch;
	struct px_session_opts opts; /* strings owned by the job */
	struct session_job *next;
};

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_gone = PTHREAD_COND_INITIALIZER;
static pthread_cond_t keeper_cond = PTHREAD_COND_INITIALIZER;
static struct session_job *jobs_head, *jobs_tail;
/* workers_total counts threads made or being made; workers_starting those
 * made but not yet waiting for a job. */
static int jobs_queued, workers_idle, workers_total, workers_starting;
static bool pool_stopping;
static bool keeper_running;
static pthread_t keeper_thread;
static atomic_bool spawn_fails; /* px_channel_sessions_fail_spawns */
static atomic_int sessions_running;

static void job_free(struct session_job *job)
{
	free((char *)job->opts.app);
	free((char *)job->opts.app_args);
	free(job);
}

/* ---- departures: redirect and bridge requests ---- */

/* Drop a departure that was replaced, taken or abandoned. A bridge's meet
 * is closed: the other session stops waiting for this one (does nothing
 * once the bridge ran, or when the other side closed it already). */
static void departure_clear(struct departure *d)
{
	free(d->context);
	free(d->exten);
	if (d->peer)
		px_channel_unref(d->peer);
	if (d->meet) {
		px_bridge_meet_close(d->meet);
		px_bridge_meet_unref(d->meet);
	}
	memset(d, 0, sizeof(*d));
}

static void departure_take(px_channel *ch, struct departure *out)
{
	pthread_mutex_lock(&ch->lock);
	*out = ch->departure;
	memset(&ch->departure, 0, sizeof(ch->departure));
	pthread_mutex_unlock(&ch->lock);
}

/* Can ch be sent somewhere now? Called with ch->lock held. A goto needs
 * someone to carry it out: the channel's session, or the bridge it is the
 * peer of (Dial's callee: the bridge gives it a session). A bridge needs
 * the channel's own session. */
static int check_movable(px_channel *ch, bool bridge, px_err *err)
{
	if (ch->hungup || ch->tech_gone)
		return px_err_set(err, "%s is hung up", ch->name);
	if (ch->in_session || (!bridge && ch->peer))
		return 0;
	if (bridge)
		return px_err_set(err,
				  "%s runs no session of its own (it is a dialed leg); "
				  "bridge the channel that dialed it",
				  ch->name);
	return px_err_set(err,
			  "%s runs no session of its own and is in no bridge (it is a dialed "
			  "leg still ringing); redirect the channel that dialed it",
			  ch->name);
}

/* Give n channels (1 or 2, distinct) their departures d[] (taken over) at
 * once: every channel is checked and marked under its lock (both locks, in
 * address order), and only then is any of them woken. So nothing acts on
 * one of them before the other is marked too, and a refusal leaves every
 * channel as it was (d[] then still belongs to the caller). */
static int departures_set(px_channel *const *chs, struct departure *d, int n, px_err *err)
{
	struct departure old[2];
	struct px_channel_event ev = {.type = PX_EVENT_REDIRECT};
	int first = n == 2 && (uintptr_t)chs[1] < (uintptr_t)chs[0] ? 1 : 0;

	pthread_mutex_lock(&chs[first]->lock);
	if (n == 2)
		pthread_mutex_lock(&chs[1 - first]->lock);
	for (int i = 0; i < n; i++) {
		if (check_movable(chs[i], d[i].kind != DEPART_GOTO, err) < 0) {
			if (n == 2)
				pthread_mutex_unlock(&chs[1 - first]->lock);
			pthread_mutex_unlock(&chs[first]->lock);
			return -1;
		}
	}
	for (int i = 0; i < n; i++) {
		old[i] = chs[i]->departure;
		chs[i]->departure = d[i];
		memset(&d[i], 0, sizeof(d[i]));
	}
	if (n == 2)
		pthread_mutex_unlock(&chs[1 - first]->lock);
	pthread_mutex_unlock(&chs[first]->lock);
	for (int i = 0; i < n; i++)
		departure_clear(&old[i]);
	for (int i = 0; i < n; i++)
		px_channel_queue_event(chs[i], &ev);
	return 0;
}

static int goto_departure(struct departure *d, const char *context, const char *exten, px_err *err)
{
	memset(d, 0, sizeof(*d));
	d->kind = DEPART_GOTO;
	if (!context || !*context || !exten || !*exten)
		return px_err_set(err, "a redirect needs a context and an extension");
	if (!px_dialplan_exists(context, exten, NULL))
		return px_err_set(err, "no extension %s in context %s", exten, context);
	d->context = strdup(context);
	d->exten = strdup(exten);
	if (!d->context || !d->exten) {
		departure_clear(d);
		return px_err_set(err, "out of memory");
	}
	return 0;
}

int px_channel_async_goto(px_channel *ch, const char *context, const char *exten, px_err *err)
{
	struct departure d;

	if (goto_departure(&d, context, exten, err) < 0)
		return -1;
	if (departures_set(&ch, &d, 1, err) < 0) {
		departure_clear(&d);
		return -1;
	}
	px_verbose(3, "Redirecting %s to %s@%s", ch->name, exten, context);
	return 0;
}

int px_channel_async_goto2(px_channel *ch, const char *context, const char *exten,
			   px_channel *extra, const char *xcontext, const char *xexten, px_err *err)
{
	struct departure d[2];
	px_channel *chs[2] = {ch, extra};
	px_err e2 = {""};

	if (ch == extra)
		return px_err_set(err, "%s cannot be redirected twice at once", ch->name);
	if (goto_departure(&d[0], context, exten, &e2) < 0)
		return px_err_set(err, "%s: %s", ch->name, e2.msg);
	if (goto_departure(&d[1], xcontext, xexten, &e2) < 0) {
		departure_clear(&d[0]);
		return px_err_set(err, "%s: %s", extra->name, e2.msg);
	}
	if (departures_set(chs, d, 2, err) < 0) {
		departure_clear(&d[0]);
		departure_clear(&d[1]);
		return -1;
	}
	px_verbose(3, "Redirecting %s to %s@%s and %s to %s@%s", ch->name, exten, context,
		   extra->name, xexten, xcontext);
	return 0;
}

bool px_channel_leaving(px_channel *ch)
{
	bool leaving;

	pthread_mutex_lock(&ch->lock);
	leaving = ch->departure.kind != DEPART_NONE;
	pthread_mutex_unlock(&ch->lock);
	return leaving;
}

bool px_channel_in_session(px_channel *ch)
{
	bool in;

	pthread_mutex_lock(&ch->lock);
	in = ch->in_session;
	pthread_mutex_unlock(&ch->lock);
	return in;
}

static const char *format_label(const struct px_format *f)
{
	return f->encoding ? f->encoding : f->name;
}

/* The media layer transcodes between legs whose formats differ
 * (px_rtp_bridge), so a Bridge is refused only when no translation path
 * joins the two formats, either way: it would stand without audio. Legs
 * whose format is not known yet are let through; their bridge is set up
 * again when it becomes known. */
static int media_path_check(px_channel *a, px_channel *b, px_err *err)
{
	px_rtp *ra = px_channel_rtp(a), *rb = px_channel_rtp(b);
	struct px_rtp_codec ca, cb;

	if (!ra || !rb)
		return 0;
	px_rtp_get_codec(ra, &ca);
	px_rtp_get_codec(rb, &cb);
	if (!ca.format || !cb.format || ca.format == cb.format)
		return 0;
	if (px_translator_cost(ca.format, cb.format, NULL) >= 0 &&
	    px_translator_cost(cb.format, ca.format, NULL) >= 0)
		return 0;
	return px_err_set(err,
			  "%s speaks %s and %s speaks %s: no translation path joins them "
			  "(is a codec module missing?)",
			  a->name, format_label(ca.format), b->name, format_label(cb.format));
}

int px_channel_request_bridge(px_channel *a, px_channel *b, struct px_bridge_meet *meet,
			      px_err *err)
{
	struct departure d[2] = {{.kind = DEPART_BRIDGE_RUN}, {.kind = DEPART_BRIDGE_JOIN}};
	px_channel *chs[2] = {a, b};

	if (a == b)
		return px_err_set(err, "a channel cannot be bridged with itself");
	if (media_path_check(a, b, err) < 0)
		return -1;
	d[0].peer = px_channel_ref(b);
	d[0].meet = px_bridge_meet_ref(meet);
	d[1].peer = px_channel_ref(a);
	d[1].meet = px_bridge_meet_ref(meet);
	if (departures_set(chs, d, 2, err) < 0) {
		/* Not given to anyone: the meet must stay open for nobody. */
		for (int i = 0; i < 2; i++) {
			px_channel_unref(d[i].peer);
			px_bridge_meet_unref(d[i].meet);
		}
		return -1;
	}
	return 0;
}

/* ---- sessions ---- */

/* Carry out a bridge departure d (taken from ch) in ch's session: a runs
 * the bridge once b is handed to it; b waits, handed over, until that
 * bridge is over. Either way the channel is back in its own session
 * afterwards, at the same place; a meet that fails (the other side hung
 * up, was sent elsewhere, or did not come within the meet's bound) leaves
 * it there untouched. */
static void session_bridge(px_channel *ch, struct departure *d)
{
	if (d->kind == DEPART_BRIDGE_RUN) {
		if (px_bridge_meet_start(d->meet))
			px_bridge_run_sessions(ch, d->peer);
		else
			px_verbose(3, "Bridge of %s and %s: %s did not come; %s stays where it was",
				   ch->name, d->peer->name, d->peer->name, ch->name);
	} else if (!px_bridge_meet_join(d->meet)) {
		px_verbose(3, "Bridge of %s and %s: %s did not take it; %s stays where it was",
			   d->peer->name, ch->name, d->peer->name, ch->name);
	}
	departure_clear(d);
}

bool px_channel_session_departs(px_channel *ch)
{
	for (;;) {
		struct departure d = {DEPART_NONE};

		pthread_mutex_lock(&ch->lock);
		if (ch->in_session && ch->session_running &&
		    pthread_equal(ch->session_thread, pthread_self()) &&
		    (ch->departure.kind == DEPART_BRIDGE_RUN ||
		     ch->departure.kind == DEPART_BRIDGE_JOIN)) {
			d = ch->departure;
			memset(&ch->departure, 0, sizeof(ch->departure));
		}
		pthread_mutex_unlock(&ch->lock);
		if (d.kind == DEPART_NONE)
			break;
		if (px_channel_is_hungup(ch))
			departure_clear(&d);
		else
			session_bridge(ch, &d);
	}
	return !px_channel_is_hungup(ch) && !px_channel_leaving(ch);
}

/* An originated channel: wait until the far end answers. False when it
 * failed, was hung up or timed out (the channel is then hung up). */
static bool wait_answer(px_channel *ch, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;
	struct px_channel_event ev;

	for (;;) {
		long long left = deadline - now_ms();
		if (px_channel_state(ch) == PX_STATE_UP)
			return true;
		if (px_channel_is_hungup(ch))
			return false;
		if (left <= 0) {
			px_verbose(3, "%s did not answer in %d ms", ch->name, timeout_ms);
			px_channel_hangup(ch, PX_CAUSE_NO_ANSWER);
			return false;
		}
		if (!px_channel_wait_event(ch, left > 1000 ? 1000 : (int)left, &ev))
			continue;
		if (ev.type == PX_EVENT_HANGUP)
			return false;
		if (ev.type != PX_EVENT_CONTROL)
			continue;
		if (ev.control == PX_CONTROL_ANSWER)
			return true;
		if (ev.control == PX_CONTROL_BUSY || ev.control == PX_CONTROL_CONGESTION) {
			px_channel_hangup(ch, ev.control == PX_CONTROL_BUSY ? PX_CAUSE_USER_BUSY
									    : PX_CAUSE_CONGESTION);
			return false;
		}
	}
}

static void run_first(px_channel *ch, const struct px_session_opts *o)
{
	px_err err = {""};

	if (o->app) {
		if (px_app_exec(ch, o->app, o->app_args ? o->app_args : "", &err) < 0 && err.msg[0])
			px_log_warning("%s: %s", ch->name, err.msg);
	} else {
		px_dialplan_run(ch);
	}
}

/* The session: the channel's first run (the dialplan, or an originated
 * channel's application once it answered), then wherever it is sent, until
 * nothing is pending; then it is hung up. A bridge requested while an
 * application runs is carried out by px_app_exec, and the dialplan goes on
 * after it; one found here (asked for between applications) is carried
 * out here, and the session goes on where it was: with its first run if
 * that has not happened, else to its end. */
static void run_session(struct session_job *job)
{
	px_channel *ch = job->ch;
	bool ran_first = false;
	struct departure d;

	pthread_mutex_lock(&ch->lock);
	ch->in_session = true;
	ch->session_running = true;
	ch->session_thread = pthread_self();
	pthread_mutex_unlock(&ch->lock);
	if (job->opts.answer_timeout_ms > 0 && !wait_answer(ch, job->opts.answer_timeout_ms))
		goto done;
	for (;;) {
		departure_take(ch, &d);
		if (px_channel_is_hungup(ch))
			break;
		if (d.kind == DEPART_NONE) {
			if (ran_first)
				break;
			ran_first = true;
			run_first(ch, &job->opts);
		} else if (d.kind == DEPART_GOTO) {
			ran_first = true;
			px_channel_set_dialplan(ch, d.context, d.exten);
			px_dialplan_run(ch);
		} else {
			session_bridge(ch, &d);
		}
		departure_clear(&d);
	}
	departure_clear(&d);
done:
	/* No departure can be set once in_session is false (departures_set
	 * checks it under the same lock), so whatever is pending now is the
	 * last: dropped here, it releases the peer it holds (a reference each
	 * way would keep both channels forever) and tells a meet that this
	 * side will not come. */
	pthread_mutex_lock(&ch->lock);
	ch->in_session = false;
	ch->session_running = false;
	pthread_mutex_unlock(&ch->lock);
	departure_take(ch, &d);
	departure_clear(&d);
	/* Does nothing if the dialplan or the far end hung up already. */
	px_channel_hangup(ch, PX_CAUSE_NORMAL_CLEARING);
	px_channel_unref(ch);
	job_free(job);
	atomic_fetch_sub(&sessions_running, 1);
}

/* Fewer than SESSION_SPARE threads would be idle once the queued sessions
 * are taken: the keeper has threads to make. pool_lock held. */
static bool pool_short_locked(void)
{
	return workers_idle + workers_starting < jobs_queued + SESSION_SPARE;
}

static void *session_worker(void *arg)
{
	(void)arg;
	px_thread_carries_calls();
	px_allocator_thread_cache(false);
	pthread_mutex_lock(&pool_lock);
	workers_starting--;
	for (;;) {
		struct session_job *job;
		while (!jobs_head && !pool_stopping) {
			struct timespec deadline;
			int rc;
			clock_gettime(CLOCK_REALTIME, &deadline);
			deadline.tv_sec += SESSION_IDLE_SECS;
			workers_idle++;
			rc = pthread_cond_timedwait(&pool_cond, &pool_lock, &deadline);
			workers_idle--;
			if (rc == ETIMEDOUT && !jobs_head && workers_total > SESSION_KEEP)
				goto out;
		}
		if (!jobs_head) /* stopping, nothing left to run */
			goto out;
		job = jobs_head;
		jobs_head = job->next;
		if (!jobs_head)
			jobs_tail = NULL;
		jobs_queued--;
		/* Taking the last spare makes the pool short: tell the keeper. */
		if (pool_short_locked())
			pthread_cond_signal(&keeper_cond);
		pthread_mutex_unlock(&pool_lock);
		run_session(job);
		pthread_mutex_lock(&pool_lock);
	}
out:
	workers_total--;
	pthread_cond_broadcast(&pool_gone);
	pthread_mutex_unlock(&pool_lock);
	return NULL;
}

/* A session that will not run: undo what starting it did. */
static void job_refuse(struct session_job *job)
{
	px_channel *ch = job->ch;

	atomic_fetch_sub(&sessions_running, 1);
	pthread_mutex_lock(&ch->lock);
	ch->in_session = false;
	pthread_mutex_unlock(&ch->lock);
	px_channel_unref(ch);
	job_free(job);
}

/* No thread could be made: the queued sessions that no idle thread is
 * there to take would wait for a call to end, which may be minutes; they
 * are hung up as congestion instead, as a start that finds no thread is.
 * The newest go: the oldest are the ones the idle threads take. pool_lock
 * held, released and taken again. */
static void refuse_unserved_locked(void)
{
	struct session_job *keep_last = NULL, *refused;
	int keep = workers_idle + workers_starting, n = 0;

	if (jobs_queued <= keep)
		return;
	if (keep > 0) {
		keep_last = jobs_head;
		for (int i = 1; i < keep; i++)
			keep_last = keep_last->next;
		refused = keep_last->next;
		keep_last->next = NULL;
	} else {
		refused = jobs_head;
		jobs_head = NULL;
	}
	jobs_tail = keep_last;
	jobs_queued = keep;
	pthread_mutex_unlock(&pool_lock);
	while (refused) {
		struct session_job *next = refused->next;
		px_channel *ch = px_channel_ref(refused->ch);
		job_refuse(refused);
		px_channel_hangup(ch, PX_CAUSE_CONGESTION);
		px_channel_unref(ch);
		refused = next;
		n++;
	}
	px_log_error("%d call%s hung up: no session thread to run %s", n, n == 1 ? "" : "s",
		     n == 1 ? "it" : "them");
	pthread_mutex_lock(&pool_lock);
}

/* The keeper: makes session threads while the pool is short of spares. */
static void *session_keeper(void *arg)
{
	struct timespec retry_at;
	bool backing_off = false;

	(void)arg;
	/* A call with no spare thread waits for this one; and it would
	 * otherwise keep the nice value of the thread that started the first
	 * session (the SIP thread's, ahead of call_nice), and compete with
	 * that thread while it makes hundreds of threads in a burst. */
	px_thread_carries_calls();
	pthread_mutex_lock(&pool_lock);
	while (!pool_stopping) {
		pthread_t t;
		int rc;

		if (backing_off) {
			/* Until it tries again, a session no idle thread can
			 * take is refused at once, not left waiting. */
			if (pthread_cond_timedwait(&keeper_cond, &pool_lock, &retry_at) ==
			    ETIMEDOUT)
				backing_off = false;
			refuse_unserved_locked();
			continue;
		}
		if (!pool_short_locked()) {
			pthread_cond_wait(&keeper_cond, &pool_lock);
			continue;
		}
		workers_total++;
		workers_starting++;
		pthread_mutex_unlock(&pool_lock);
		rc = atomic_load(&spawn_fails)
			     ? EAGAIN
			     : px_thread_start_sized(&t, "session", session_worker, NULL,
						     SESSION_STACK_SIZE);
		if (rc == 0)
			pthread_detach(t);
		pthread_mutex_lock(&pool_lock);
		if (rc == 0)
			continue;
		workers_total--;
		workers_starting--;
		pthread_cond_broadcast(&pool_gone);
		px_log_error("cannot make a session thread: %s; trying again in %d s", strerror(rc),
			     SESSION_RETRY_SECS);
		refuse_unserved_locked();
		clock_gettime(CLOCK_REALTIME, &retry_at);
		retry_at.tv_sec += SESSION_RETRY_SECS;
		backing_off = true;
	}
	pthread_mutex_unlock(&pool_lock);
	return NULL;
}

int px_channel_start_session_opts(px_channel *ch, const struct px_session_opts *opts, px_err *err)
{
	struct session_job *job = calloc(1, sizeof(*job));
	bool wake_idle = false, wake_keeper = false;
	int rc = 0;

	if (!job)
		return px_err_set(err, "out of memory");
	if (opts) {
		job->opts.answer_timeout_ms = opts->answer_timeout_ms;
		job->opts.app = opts->app ? strdup(opts->app) : NULL;
		job->opts.app_args = opts->app_args ? strdup(opts->app_args) : NULL;
		if ((opts->app && !job->opts.app) || (opts->app_args && !job->opts.app_args)) {
			job_free(job);
			return px_err_set(err, "out of memory");
		}
	}
	job->ch = px_channel_ref(ch);
	job->next = NULL;
	/* Marked at once: a bridge or redirect asked before the thread runs
	 * must find the channel in a session. */
	pthread_mutex_lock(&ch->lock);
	ch->in_session = true;
	pthread_mutex_unlock(&ch->lock);
	atomic_fetch_add(&sessions_running, 1);
	pthread_mutex_lock(&pool_lock);
	if (pool_stopping) {
		rc = -1;
	} else if (!keeper_running) {
		/* The first session: the keeper starts, and makes the spares. */
		rc = px_thread_start(&keeper_thread, "session-pool", session_keeper, NULL);
		keeper_running = rc == 0;
	}
	if (rc == 0) {
		if (jobs_tail)
			jobs_tail->next = job;
		else
			jobs_head = job;
		jobs_tail = job;
		jobs_queued++;
		wake_idle = workers_idle >= jobs_queued;
		wake_keeper = pool_short_locked();
	}
	pthread_mutex_unlock(&pool_lock);
	/* Signalled after the unlock, so the worker does not wake only to
	 * block on pool_lock. It cannot miss the job: a worker leaves the pool
	 * on its idle timeout only when no job is queued. With no idle worker,
	 * the job waits for the keeper's new thread or the first worker whose
	 * call ends. */
	if (wake_idle)
		pthread_cond_signal(&pool_cond);
	if (wake_keeper)
		pthread_cond_signal(&keeper_cond);
	if (rc) {
		job_refuse(job);
		return px_err_set(err, "cannot start a session thread: %s",
				  rc > 0 ? strerror(rc) : "the daemon is stopping");
	}
	return 0;
}

int px_channel_start_session(px_channel *ch, px_err *err)
{
	return px_channel_start_session_opts(ch, NULL, err);
}

void px_channel_sessions_shutdown(void)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 5;
	pthread_mutex_lock(&pool_lock);
	pool_stopping = true;
	pthread_cond_broadcast(&pool_cond);
	pthread_cond_signal(&keeper_cond);
	if (keeper_running) {
		pthread_mutex_unlock(&pool_lock);
		pthread_join(keeper_thread, NULL);
		pthread_mutex_lock(&pool_lock);
		keeper_running = false;
	}
	while (workers_total > 0) {
		if (pthread_cond_timedwait(&pool_gone, &pool_lock, &deadline) == ETIMEDOUT)
			break;
	}
	if (workers_total > 0)
		px_log_warning("%d session threads did not end", workers_total);
	else
		refuse_unserved_locked(); /* queued when no thread was left to take them */
	pthread_mutex_unlock(&pool_lock);
}

void px_channel_sessions_fail_spawns(bool fail)
{
	atomic_store(&spawn_fails, fail);
}

int px_channel_sessions_running(void)
{
	return atomic_load(&sessions_running);
}

static void hangup_one(void *ctx, px_channel *ch)
{
	px_channel_hangup(ch, *(int *)ctx);
}

void px_channel_hangup_all(int cause)
{
	px_channel_foreach(hangup_one, &cause);
}
