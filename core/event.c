/*
 * The event bus (plexus/event.h): building an event once, numbering it and
 * fanning it out to the subscribers' bounded queues, the filters that
 * decide which subscriber wants it, and the subscribers' side (take, stats,
 * unsubscribe). One mutex orders emission: the sequence number is taken
 * and the event pushed to every queue under it, so each subscriber sees
 * events in sequence order, and unsubscribe takes it too, so no emitter can
 * touch a subscriber once unsubscribe has returned. Pushing is a pointer
 * store per subscriber; allocation and copying happen before the lock.
 * Events and their texts are made in blocks kept on a free list of their
 * own (below): the thread that frees them is a console's, not theirs.
 */
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/event.h>

#include "event_internal.h"
#include "event_json.h"

atomic_int px_event_subscribers;
atomic_uint px_event_build_failures;

struct px_event {
	atomic_int refs;
	enum px_event_kind kind;
	uint64_t seq;
	struct timespec ts;
	const char *channel, *uniqueid, *linkedid, *endpoint; /* point into text, "" when none */
	const char *peer, *peer_uniqueid, *peer_linkedid, *peer_endpoint;
	size_t nfields;
	size_t cost; /* what it counts against a queue's memory budget */
	/* Its JSON text and console frame, made by the first subscriber that
	 * needs it and shared by the others: ten consoles streaming events
	 * must not encode, frame or copy each event ten times. */
	_Atomic(struct px_event_text *) text;
	/* Names and strings point into the text that follows the fields. */
	struct px_event_field fields[];
};

struct slot {
	px_event *ev;
	uint64_t lost_after; /* dropped after this one: the queue was full */
};

struct px_event_sub {
	struct px_event_filter filter; /* under bus_lock */
	void (*notify)(void *ctx);
	void *ctx;
	struct px_event_sub *next; /* under bus_lock */

	pthread_mutex_t lock; /* the queue and counters */
	struct slot *ring;
	size_t cap, head, len;
	uint64_t lost_front;  /* dropped while the queue held nothing to attach them to */
	uint64_t front_after; /* ... right after this seq */
	uint64_t last_seq;    /* the last event queued here (at start: the bus's last) */
	uint64_t delivered, lost;
	size_t bytes; /* the cost of the events queued here */
	/* The next event queued calls notify. Cleared when it does; set
	 * again by px_event_sub_arm when the subscriber finds nothing left
	 * and is about to sleep, so a subscriber that batches is woken once
	 * per batch, not once per event. */
	bool armed;
};

static pthread_mutex_t bus_lock = PTHREAD_MUTEX_INITIALIZER;
static px_event_sub *subs;
static uint64_t next_seq = 1;

static const char *const kind_names[PX_EV_KINDS] = {
	[PX_EV_CHANNEL_CREATED] = "ChannelCreated",
	[PX_EV_CHANNEL_STATE] = "ChannelState",
	[PX_EV_DIAL_BEGIN] = "DialBegin",
	[PX_EV_DIAL_END] = "DialEnd",
	[PX_EV_BRIDGED] = "Bridged",
	[PX_EV_UNBRIDGED] = "Unbridged",
	[PX_EV_HOLD] = "Hold",
	[PX_EV_UNHOLD] = "Unhold",
	[PX_EV_DTMF_BEGIN] = "DtmfBegin",
	[PX_EV_DTMF_END] = "DtmfEnd",
	[PX_EV_HANGUP] = "Hangup",
	[PX_EV_REGISTERED] = "Registered",
	[PX_EV_UNREGISTERED] = "Unregistered",
	[PX_EV_REGISTRATION_EXPIRED] = "RegistrationExpired",
	[PX_EV_TRUNK_REGISTRY] = "TrunkRegistry",
	[PX_EV_TRUNK_REACHABILITY] = "TrunkReachability",
	[PX_EV_SECURITY] = "SecurityEvent",
	[PX_EV_MODULE_LOADED] = "ModuleLoaded",
	[PX_EV_MODULE_UNLOADED] = "ModuleUnloaded",
	[PX_EV_RELOAD] = "Reload",
	[PX_EV_CONNECTED_LINE] = "ConnectedLine",
	[PX_EV_CONTACT_REACHABILITY] = "ContactReachability",
};

const char *px_event_kind_name(enum px_event_kind kind)
{
	return (unsigned)kind < PX_EV_KINDS ? kind_names[kind] : NULL;
}

int px_event_kind_parse(const char *name)
{
	for (int k = 0; k < PX_EV_KINDS; k++)
		if (!strcasecmp(kind_names[k], name))
			return k;
	return -1;
}

/* ---- the blocks events are made in ---- */

/* An event is made by the thread that emits it (the SIP thread, a
 * session) and its text by the first console that sends it; both are
 * freed by whichever console drops the event last. Out of malloc, every
 * such free is a free into another thread's arena: it takes that arena's
 * lock and writes its bins under the owner's feet, thousands of times a
 * second (measured at 700 calls/s with ten consoles streaming every
 * event: the SIP thread's CPU per call rose by about a tenth; with ten
 * consoles whose filter matched nothing, it did not). So blocks of up to
 * EVENT_BLOCK bytes, nearly every event and text, come from a free list
 * of their own: taking and giving back is a pop or a push under a lock
 * held for a few instructions, and the blocks go round between emitters
 * and consoles without malloc. At most EVENT_POOL_MAX are kept; the rest
 * go back to malloc. px_event_pool_drain frees them for good. */
#define EVENT_BLOCK    944 /* with the header, under malloc's 1 KiB "large" size */
#define EVENT_POOL_MAX 4096

/* Before every block handed out: whether it belongs to the list. Aligned
 * as malloc aligns, so that what follows is too. */
struct block_head {
	_Alignas(max_align_t) union {
		struct block_head *next; /* on the list */
		bool pooled;             /* handed out */
	};
};

_Static_assert(sizeof(struct block_head) + EVENT_BLOCK + sizeof(size_t) < 1024,
	       "an event block is a small request for malloc");

/* Under AddressSanitizer a block on the list is poisoned, as malloc's
 * free memory is: an event used after its last unref is still caught. */
#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/asan_interface.h>
#define BLOCK_POISON(b)   ASAN_POISON_MEMORY_REGION((b) + 1, EVENT_BLOCK)
#define BLOCK_UNPOISON(b) ASAN_UNPOISON_MEMORY_REGION((b) + 1, EVENT_BLOCK)
#else
#define BLOCK_POISON(b)   ((void)(b))
#define BLOCK_UNPOISON(b) ((void)(b))
#endif

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct block_head *pool;
static size_t pool_len;

void *px_event_block_alloc(size_t size)
{
	struct block_head *b = NULL;

	if (size > EVENT_BLOCK) {
		b = malloc(sizeof(*b) + size);
		if (!b)
			return NULL;
		b->pooled = false;
		return b + 1;
	}
	pthread_mutex_lock(&pool_lock);
	if (pool) {
		b = pool;
		pool = b->next;
		pool_len--;
		BLOCK_UNPOISON(b);
	}
	pthread_mutex_unlock(&pool_lock);
	if (!b && !(b = malloc(sizeof(*b) + EVENT_BLOCK)))
		return NULL;
	b->pooled = true;
	return b + 1;
}

void px_event_block_free(void *p)
{
	struct block_head *b = p ? (struct block_head *)p - 1 : NULL;

	if (b && b->pooled) {
		pthread_mutex_lock(&pool_lock);
		if (pool_len < EVENT_POOL_MAX) {
			BLOCK_POISON(b);
			b->next = pool;
			pool = b;
			pool_len++;
			b = NULL;
		}
		pthread_mutex_unlock(&pool_lock);
	}
	free(b);
}

void px_event_pool_drain(void)
{
	struct block_head *b;

	pthread_mutex_lock(&pool_lock);
	b = pool;
	pool = NULL;
	pool_len = 0;
	pthread_mutex_unlock(&pool_lock);
	while (b) {
		struct block_head *next = b->next;
		BLOCK_UNPOISON(b);
		free(b);
		b = next;
	}
}

size_t px_event_pool_size(void)
{
	size_t n;

	pthread_mutex_lock(&pool_lock);
	n = pool_len;
	pthread_mutex_unlock(&pool_lock);
	return n;
}

/* ---- building ---- */

/* "1001" of "SIP/1001-0000002a": between the technology and the serial. */
static size_t endpoint_of(const char *name, const char **start)
{
	const char *slash = strchr(name, '/');
	const char *dash = strrchr(name, '-');

	if (!slash || !dash || dash <= slash) {
		*start = name + strlen(name);
		return 0;
	}
	*start = slash + 1;
	return (size_t)(dash - slash - 1);
}

struct builder {
	char *p;
};

static const char *put(struct builder *b, const char *s, size_t len)
{
	char *at = b->p;

	memcpy(at, s, len);
	at[len] = '\0';
	b->p += len + 1;
	return at;
}

static const char *put_str(struct builder *b, const char *s)
{
	return put(b, s ? s : "", s ? strlen(s) : 0);
}

/* Room for a channel's four strings. */
static size_t channel_text(const px_channel *ch)
{
	const char *start;

	if (!ch)
		return 4;
	return strlen(px_channel_name(ch)) + strlen(px_channel_uniqueid(ch)) +
	       strlen(px_channel_linkedid(ch)) + endpoint_of(px_channel_name(ch), &start) + 4;
}

static void put_channel(struct builder *b, const px_channel *ch, const char **name,
			const char **uniqueid, const char **linkedid, const char **endpoint)
{
	const char *start;
	size_t len;

	if (!ch) {
		*name = *uniqueid = *linkedid = *endpoint = put(b, "", 0);
		return;
	}
	*name = put_str(b, px_channel_name(ch));
	*uniqueid = put_str(b, px_channel_uniqueid(ch));
	*linkedid = put_str(b, px_channel_linkedid(ch));
	len = endpoint_of(px_channel_name(ch), &start);
	*endpoint = put(b, start, len);
}

/* What an event of size bytes counts against a queue's memory budget: its
 * size, as much again for the JSON text a console will attach to it, and
 * its queue slot. */
static size_t event_cost(size_t size)
{
	return 2 * size + sizeof(struct slot);
}

static px_event *event_build(enum px_event_kind kind, px_channel *ch, px_channel *peer,
			     const struct px_event_field *fields, size_t n)
{
	size_t text = channel_text(ch) + channel_text(peer);
	struct builder b;
	px_event *ev;

	/* One relaxed load; only tests ever set it. */
	if (atomic_load_explicit(&px_event_build_failures, memory_order_relaxed)) {
		unsigned left = atomic_load(&px_event_build_failures);
		while (left &&
		       !atomic_compare_exchange_weak(&px_event_build_failures, &left, left - 1))
			;
		if (left)
			return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		text += strlen(fields[i].name) + 1;
		if (fields[i].type == PX_EVF_STRING)
			text += (fields[i].s ? strlen(fields[i].s) : 0) + 1;
	}
	ev = px_event_block_alloc(sizeof(*ev) + n * sizeof(ev->fields[0]) + text);
	if (!ev)
		return NULL;
	ev->cost = event_cost(sizeof(*ev) + n * sizeof(ev->fields[0]) + text);
	atomic_init(&ev->refs, 1);
	atomic_init(&ev->text, NULL);
	ev->kind = kind;
	ev->seq = 0;
	ev->nfields = n;
	b.p = (char *)&ev->fields[n];
	put_channel(&b, ch, &ev->channel, &ev->uniqueid, &ev->linkedid, &ev->endpoint);
	put_channel(&b, peer, &ev->peer, &ev->peer_uniqueid, &ev->peer_linkedid,
		    &ev->peer_endpoint);
	for (size_t i = 0; i < n; i++) {
		ev->fields[i].name = put_str(&b, fields[i].name);
		ev->fields[i].type = fields[i].type;
		ev->fields[i].s = fields[i].type == PX_EVF_STRING ? put_str(&b, fields[i].s) : NULL;
		ev->fields[i].i = fields[i].type == PX_EVF_INT ? fields[i].i : 0;
	}
	return ev;
}

px_event *px_event_ref(px_event *ev)
{
	atomic_fetch_add(&ev->refs, 1);
	return ev;
}

void px_event_unref(px_event *ev)
{
	if (!ev || atomic_fetch_sub(&ev->refs, 1) != 1)
		return;
	px_event_block_free(atomic_load(&ev->text));
	px_event_block_free(ev);
}

const struct px_event_text *px_event_text(px_event *ev)
{
	struct px_event_text *text = atomic_load_explicit(&ev->text, memory_order_acquire);
	struct px_event_text *expected = NULL;

	if (text)
		return text;
	text = px_event_text_new(ev);
	if (!text)
		return NULL;
	if (!atomic_compare_exchange_strong_explicit(&ev->text, &expected, text,
						     memory_order_acq_rel, memory_order_acquire)) {
		px_event_block_free(text); /* another subscriber's thread was first */
		return expected;
	}
	return text;
}

const char *px_event_json(px_event *ev)
{
	const struct px_event_text *text = px_event_text(ev);

	return text ? text->json : NULL;
}

/* ---- filters ---- */

static bool channel_matches(const char *want, const char *name, const char *uniqueid,
			    const char *linkedid)
{
	size_t len = strlen(want);

	if (!name[0])
		return false;
	if (!strcasecmp(want, name) || !strcmp(want, uniqueid) || !strcmp(want, linkedid))
		return true;
	/* "SIP/1002" is every channel of that endpoint: "SIP/1002-0000002a". */
	return !strncasecmp(want, name, len) && name[len] == '-' && !strchr(name + len + 1, '-');
}

bool px_event_filter_match(const struct px_event_filter *f, const px_event *ev)
{
	if (f->kinds && !(f->kinds & PX_EVENT_KIND_BIT(ev->kind)))
		return false;
	if (f->channel[0] &&
	    !channel_matches(f->channel, ev->channel, ev->uniqueid, ev->linkedid) &&
	    !channel_matches(f->channel, ev->peer, ev->peer_uniqueid, ev->peer_linkedid))
		return false;
	if (f->endpoint[0]) {
		const struct px_event_field *e = px_event_field_get(ev, "endpoint");
		if (!(e && e->type == PX_EVF_STRING && !strcmp(e->s, f->endpoint)) &&
		    strcmp(ev->endpoint, f->endpoint) && strcmp(ev->peer_endpoint, f->endpoint))
			return false;
	}
	return true;
}

/* ---- the memory budget (event_internal.h) ---- */

static atomic_size_t budget_sub = PX_EVENT_SUB_BYTES_DEFAULT;
static atomic_size_t budget_total = PX_EVENT_TOTAL_BYTES_DEFAULT;
static atomic_size_t queued_total; /* the cost of every queued event, all subscribers */

void px_event_budget_set(size_t sub_bytes, size_t total_bytes)
{
	atomic_store(&budget_sub, sub_bytes ? sub_bytes : PX_EVENT_SUB_BYTES_DEFAULT);
	atomic_store(&budget_total, total_bytes ? total_bytes : PX_EVENT_TOTAL_BYTES_DEFAULT);
}

void px_event_budget_get(size_t *sub_bytes, size_t *total_bytes)
{
	*sub_bytes = atomic_load(&budget_sub);
	*total_bytes = atomic_load(&budget_total);
}

size_t px_event_queue_fit(size_t queue_max)
{
	size_t most = atomic_load(&budget_sub) / PX_EVENT_MIN_COST;

	if (!queue_max)
		queue_max = 1;
	return queue_max < most ? queue_max : (most ? most : 1);
}

size_t px_event_budget_used(void)
{
	return atomic_load(&queued_total);
}

size_t px_event_sub_bytes(px_event_sub *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->bytes;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* s->lock held: may s queue ev? If so its cost is counted. */
static bool budget_take(px_event_sub *s, const px_event *ev)
{
	size_t sub = atomic_load_explicit(&budget_sub, memory_order_relaxed);
	size_t total = atomic_load_explicit(&budget_total, memory_order_relaxed);
	size_t now;

	if (s->len && s->bytes + ev->cost > sub)
		return false;
	now = atomic_fetch_add_explicit(&queued_total, ev->cost, memory_order_relaxed) + ev->cost;
	if (s->len && s->bytes + ev->cost > sub / 16 && now > total) {
		atomic_fetch_sub_explicit(&queued_total, ev->cost, memory_order_relaxed);
		return false;
	}
	s->bytes += ev->cost;
	return true;
}

/* s->lock held: ev leaves s's queue. */
static void budget_release(px_event_sub *s, const px_event *ev)
{
	s->bytes -= ev->cost;
	atomic_fetch_sub_explicit(&queued_total, ev->cost, memory_order_relaxed);
}

/* ---- emitting ---- */

/* Under bus_lock. True when the subscriber is to be woken: it was armed
 * (asleep, or about to be) and its queue empty. */
static bool sub_push(px_event_sub *s, px_event *ev)
{
	bool was_empty;

	pthread_mutex_lock(&s->lock);
	was_empty = s->len == 0 && s->armed;
	if (was_empty)
		s->armed = false;
	if (s->len == s->cap || !budget_take(s, ev)) {
		s->ring[(s->head + s->len - 1) % s->cap].lost_after++;
		s->lost++;
		was_empty = false;
	} else {
		struct slot *sl = &s->ring[(s->head + s->len) % s->cap];
		sl->ev = px_event_ref(ev);
		sl->lost_after = 0;
		s->last_seq = ev->seq;
		s->len++;
		s->delivered++;
	}
	pthread_mutex_unlock(&s->lock);
	return was_empty;
}

void px_event_emit(enum px_event_kind kind, px_channel *ch, px_channel *peer,
		   const struct px_event_field *fields, size_t n)
{
	px_event *ev;

	if (!px_event_listening() || (unsigned)kind >= PX_EV_KINDS)
		return;
	ev = event_build(kind, ch, peer, fields, n);
	if (!ev) {
		/* Every subscriber misses it: count it as lost for each. */
		pthread_mutex_lock(&bus_lock);
		next_seq++;
		for (px_event_sub *s = subs; s; s = s->next) {
			bool wake;

			pthread_mutex_lock(&s->lock);
			/* A sleeping subscriber is woken to be told of the loss. */
			wake = !s->len && s->armed;
			if (wake)
				s->armed = false;
			if (s->len)
				s->ring[(s->head + s->len - 1) % s->cap].lost_after++;
			else if (s->lost_front++ == 0)
				s->front_after = s->last_seq;
			s->lost++;
			pthread_mutex_unlock(&s->lock);
			if (wake && s->notify)
				s->notify(s->ctx);
		}
		pthread_mutex_unlock(&bus_lock);
		return;
	}
	pthread_mutex_lock(&bus_lock);
	ev->seq = next_seq++;
	clock_gettime(CLOCK_REALTIME, &ev->ts);
	for (px_event_sub *s = subs; s; s = s->next)
		if (px_event_filter_match(&s->filter, ev) && sub_push(s, ev) && s->notify)
			s->notify(s->ctx);
	pthread_mutex_unlock(&bus_lock);
	px_event_unref(ev);
}

/* ---- subscribers ---- */

px_event_sub *px_event_subscribe(const struct px_event_filter *filter, size_t queue_max,
				 void (*notify)(void *ctx), void *ctx)
{
	px_event_sub *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->cap = px_event_queue_fit(queue_max);
	s->ring = calloc(s->cap, sizeof(*s->ring));
	if (!s->ring) {
		free(s);
		return NULL;
	}
	if (filter)
		s->filter = *filter;
	s->notify = notify;
	s->ctx = ctx;
	s->armed = true;
	pthread_mutex_init(&s->lock, NULL);
	pthread_mutex_lock(&bus_lock);
	s->last_seq = next_seq - 1;
	s->next = subs;
	subs = s;
	atomic_fetch_add(&px_event_subscribers, 1);
	pthread_mutex_unlock(&bus_lock);
	return s;
}

void px_event_sub_set_filter(px_event_sub *s, const struct px_event_filter *filter)
{
	pthread_mutex_lock(&bus_lock);
	if (filter)
		s->filter = *filter;
	else
		memset(&s->filter, 0, sizeof(s->filter));
	pthread_mutex_unlock(&bus_lock);
}

int px_event_sub_configure(px_event_sub *s, const struct px_event_filter *filter, size_t queue_max)
{
	size_t cap = px_event_queue_fit(queue_max);
	struct slot *ring = NULL, *old = NULL;
	px_event **dropped = NULL;
	size_t ndropped = 0;

	if (cap != s->cap) {
		ring = calloc(cap, sizeof(*ring));
		dropped = calloc(s->cap, sizeof(*dropped));
		if (!ring || !dropped) {
			free(ring);
			free(dropped);
			return -1;
		}
	}
	/* Under the bus lock: no event is queued under the old filter after
	 * the new one applies, and none is queued twice or skipped. */
	pthread_mutex_lock(&bus_lock);
	if (filter)
		s->filter = *filter;
	else
		memset(&s->filter, 0, sizeof(s->filter));
	if (ring) {
		pthread_mutex_lock(&s->lock);
		/* What no longer fits is dropped as a full queue drops: the
		 * newest go, counted after the last one kept. */
		size_t keep = s->len < cap ? s->len : cap;
		uint64_t extra = 0;
		for (size_t i = 0; i < s->len; i++) {
			struct slot *sl = &s->ring[(s->head + i) % s->cap];
			if (i < keep) {
				ring[i] = *sl;
				continue;
			}
			extra += 1 + sl->lost_after;
			budget_release(s, sl->ev);
			dropped[ndropped++] = sl->ev;
		}
		if (extra) /* then keep == cap >= 1 */
			ring[keep - 1].lost_after += extra;
		s->lost += ndropped;
		old = s->ring;
		s->ring = ring;
		s->cap = cap;
		s->head = 0;
		s->len = keep;
		pthread_mutex_unlock(&s->lock);
	}
	pthread_mutex_unlock(&bus_lock);
	for (size_t i = 0; i < ndropped; i++)
		px_event_unref(dropped[i]);
	free(dropped);
	free(old);
	return 0;
}

px_event *px_event_sub_take(px_event_sub *s, uint64_t *lost_after)
{
	px_event *ev = NULL;
	uint64_t lost = 0;

	pthread_mutex_lock(&s->lock);
	if (s->len) {
		struct slot *sl = &s->ring[s->head];
		ev = sl->ev;
		lost = sl->lost_after;
		sl->ev = NULL;
		budget_release(s, ev);
		s->head = (s->head + 1) % s->cap;
		s->len--;
	}
	pthread_mutex_unlock(&s->lock);
	if (lost_after)
		*lost_after = lost;
	return ev;
}

size_t px_event_sub_take_many(px_event_sub *s, px_event **evs, uint64_t *lost_after, size_t max)
{
	size_t n, cost = 0;

	pthread_mutex_lock(&s->lock);
	for (n = 0; n < max && s->len; n++) {
		struct slot *sl = &s->ring[s->head];
		evs[n] = sl->ev;
		if (lost_after)
			lost_after[n] = sl->lost_after;
		sl->ev = NULL;
		cost += evs[n]->cost;
		s->head = s->head + 1 == s->cap ? 0 : s->head + 1;
		s->len--;
	}
	/* budget_release for the lot: one atomic on the shared total. */
	s->bytes -= cost;
	if (cost)
		atomic_fetch_sub_explicit(&queued_total, cost, memory_order_relaxed);
	pthread_mutex_unlock(&s->lock);
	return n;
}

bool px_event_sub_arm(px_event_sub *s)
{
	bool armed;

	pthread_mutex_lock(&s->lock);
	armed = s->len == 0 && s->lost_front == 0;
	if (armed)
		s->armed = true;
	pthread_mutex_unlock(&s->lock);
	return armed;
}

uint64_t px_event_sub_lost_ahead(px_event_sub *s, uint64_t *after_seq)
{
	uint64_t lost;

	pthread_mutex_lock(&s->lock);
	lost = s->lost_front;
	if (after_seq)
		*after_seq = s->front_after;
	s->lost_front = 0;
	pthread_mutex_unlock(&s->lock);
	return lost;
}

void px_event_sub_stats(px_event_sub *s, uint64_t *delivered, uint64_t *lost)
{
	pthread_mutex_lock(&s->lock);
	if (delivered)
		*delivered = s->delivered;
	if (lost)
		*lost = s->lost;
	pthread_mutex_unlock(&s->lock);
}

void px_event_unsubscribe(px_event_sub *s)
{
	if (!s)
		return;
	pthread_mutex_lock(&bus_lock);
	for (px_event_sub **pp = &subs; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			atomic_fetch_sub(&px_event_subscribers, 1);
			break;
		}
	}
	pthread_mutex_unlock(&bus_lock);
	for (size_t i = 0; i < s->len; i++) {
		budget_release(s, s->ring[(s->head + i) % s->cap].ev);
		px_event_unref(s->ring[(s->head + i) % s->cap].ev);
	}
	free(s->ring);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

/* ---- reading ---- */

enum px_event_kind px_event_kind(const px_event *ev)
{
	return ev->kind;
}

uint64_t px_event_seq(const px_event *ev)
{
	return ev->seq;
}

uint64_t px_event_last_seq(void)
{
	uint64_t seq;

	pthread_mutex_lock(&bus_lock);
	seq = next_seq - 1;
	pthread_mutex_unlock(&bus_lock);
	return seq;
}

struct timespec px_event_time(const px_event *ev)
{
	return ev->ts;
}

const char *px_event_channel(const px_event *ev)
{
	return ev->channel;
}

const char *px_event_uniqueid(const px_event *ev)
{
	return ev->uniqueid;
}

const char *px_event_linkedid(const px_event *ev)
{
	return ev->linkedid;
}

const char *px_event_peer(const px_event *ev)
{
	return ev->peer;
}

const char *px_event_peer_uniqueid(const px_event *ev)
{
	return ev->peer_uniqueid;
}

size_t px_event_field_count(const px_event *ev)
{
	return ev->nfields;
}

const struct px_event_field *px_event_field_at(const px_event *ev, size_t i)
{
	return i < ev->nfields ? &ev->fields[i] : NULL;
}

const struct px_event_field *px_event_field_get(const px_event *ev, const char *name)
{
	for (size_t i = 0; i < ev->nfields; i++)
		if (!strcmp(ev->fields[i].name, name))
			return &ev->fields[i];
	return NULL;
}
