/*
 * The event bus (plexus/event.h): building an event once, numbering it and
 * fanning it out to the subscribers' bounded queues, the filters that
 * decide which subscriber wants it, and the subscribers' side (take, stats,
 * unsubscribe). One mutex orders emission: the sequence number is taken
 * and the event pushed to every queue under it, so each subscriber sees
 * events in sequence order, and unsubscribe takes it too, so no emitter can
 * touch a subscriber once unsubscribe has returned. A subscriber's queue is
 * a ring with one writer at a time (the emitter holding the bus lock) and
 * one reader (the subscriber's thread), passed between them by two
 * counters: an emitter never waits for a reader, and a reader never takes
 * the bus lock, so ten consoles taking their batches cannot hold up the
 * SIP and session threads that emit. Allocation and copying happen before
 * the lock. Events and their texts are made in blocks kept on a free list
 * of their own (below): the thread that frees them is a console's, not
 * theirs.
 */
#include <limits.h>
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
	/* The subscriber's count of dropped events when this one was
	 * queued: what changed since the slot before it is what was lost
	 * between the two. */
	uint64_t lost_before;
};

/*
 * The queue is a ring of cap slots between two counters that only grow:
 * tail (slots ever filled, written by emitters under bus_lock) and head
 * (slots ever taken, written by the subscriber's one reading thread). An
 * emitter fills slot tail, then publishes tail + 1 (release); the reader
 * reads up to the tail it sees (acquire), then publishes its head
 * (release), after which the emitter may fill those slots again. A drop
 * only counts (lost, release): the reader learns where the loss was from
 * the lost_before of the next slot, or, when the queue is empty, from the
 * count itself (lost_before_head).
 */
struct px_event_sub {
	/* The emitters' side: under bus_lock. */
	struct px_event_filter filter;
	void (*notify)(void *ctx);
	void *ctx;
	struct px_event_sub *next;
	struct slot *ring; /* resized only under bus_lock, by the reader */
	size_t cap;
	_Alignas(64) atomic_size_t tail;
	atomic_uint_fast64_t lost;      /* dropped, ever */
	atomic_uint_fast64_t delivered; /* queued, ever */
	/* The next event queued calls notify. Cleared when it does; set
	 * again by px_event_sub_arm when the subscriber finds nothing left
	 * and is about to sleep, so a subscriber that batches is woken once
	 * per batch, not once per event. */
	atomic_bool armed;
	atomic_size_t bytes; /* the cost of the events queued here */

	/* The reader's side: its one thread only. */
	_Alignas(64) atomic_size_t head;
	uint64_t lost_seen;   /* drops accounted for (told, or about to be) */
	uint64_t last_taken;  /* seq of the last event taken (at start: the bus's last) */
	uint64_t lost_front;  /* drops to tell before the next event taken ... */
	uint64_t front_after; /* ... right after this seq */
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

/* Each thread keeps up to CACHE_MAX blocks of its own and trades them
 * with the list CACHE_MOVE at a time: an emitter takes a handful under one
 * lock, a console gives back a handful, instead of the two meeting at the
 * lock for every block (at 1500 calls/s with ten consoles, about 700
 * contended locks a second). A thread's cache goes back to the list when
 * the thread ends; px_event_pool_drain empties every cache. */
#define CACHE_MAX  64
#define CACHE_MOVE 32

struct block_cache {
	struct block_head *head;
	atomic_uint n;            /* read by px_event_pool_size from other threads */
	bool listed;              /* on caches (under pool_lock) */
	struct block_cache *next; /* under pool_lock */
};

static _Thread_local struct block_cache cache;
static struct block_cache *caches; /* every thread's that has used one */
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;
static bool cache_key_made;

/* pool_lock held: the first n blocks of c go to the list; what the list
 * cannot keep is returned (a chain to free). */
static struct block_head *cache_give(struct block_cache *c, unsigned n)
{
	struct block_head *spill = NULL;

	while (n-- && c->head) {
		struct block_head *b = c->head;
		c->head = b->next;
		atomic_fetch_sub_explicit(&c->n, 1, memory_order_relaxed);
		if (pool_len < EVENT_POOL_MAX) {
			b->next = pool;
			pool = b;
			pool_len++;
		} else {
			b->next = spill;
			spill = b;
		}
	}
	return spill;
}

static void free_chain(struct block_head *b)
{
	while (b) {
		struct block_head *next = b->next;
		BLOCK_UNPOISON(b);
		free(b);
		b = next;
	}
}

/* A thread ends: its cache goes back to the list. */
static void cache_end(void *arg)
{
	struct block_cache *c = arg;
	struct block_head *spill;

	pthread_mutex_lock(&pool_lock);
	spill = cache_give(c, UINT_MAX);
	for (struct block_cache **pp = &caches; *pp; pp = &(*pp)->next) {
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	}
	c->listed = false;
	pthread_mutex_unlock(&pool_lock);
	free_chain(spill);
}

static void cache_key_make(void)
{
	cache_key_made = pthread_key_create(&cache_key, cache_end) == 0;
}

/* pool_lock held: the calling thread's cache, listed so that its blocks
 * go back when the thread ends (NULL: it cannot be, use none). */
static struct block_cache *own_cache_locked(void)
{
	if (cache.listed)
		return &cache;
	if (!cache_key_made || pthread_setspecific(cache_key, &cache))
		return NULL;
	cache.next = caches;
	caches = &cache;
	cache.listed = true;
	return &cache;
}

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
	if (!cache.head) {
		pthread_once(&cache_once, cache_key_make);
		pthread_mutex_lock(&pool_lock);
		if (own_cache_locked()) {
			for (unsigned k = 0; k < CACHE_MOVE && pool; k++) {
				struct block_head *t = pool;
				pool = t->next;
				pool_len--;
				t->next = cache.head;
				cache.head = t;
				atomic_fetch_add_explicit(&cache.n, 1, memory_order_relaxed);
			}
		} else if (pool) {
			b = pool;
			pool = b->next;
			pool_len--;
		}
		pthread_mutex_unlock(&pool_lock);
	}
	if (!b && cache.head) {
		b = cache.head;
		cache.head = b->next;
		atomic_fetch_sub_explicit(&cache.n, 1, memory_order_relaxed);
	}
	if (b)
		BLOCK_UNPOISON(b);
	else if (!(b = malloc(sizeof(*b) + EVENT_BLOCK)))
		return NULL;
	b->pooled = true;
	return b + 1;
}

void px_event_block_free(void *p)
{
	struct block_head *b = p ? (struct block_head *)p - 1 : NULL, *spill = NULL;

	if (!b)
		return;
	if (!b->pooled) {
		free(b);
		return;
	}
	BLOCK_POISON(b);
	if (cache.listed || cache.head) {
		b->next = cache.head;
		cache.head = b;
		if (atomic_fetch_add_explicit(&cache.n, 1, memory_order_relaxed) + 1 <= CACHE_MAX)
			return;
		b = NULL;
	}
	pthread_once(&cache_once, cache_key_make);
	pthread_mutex_lock(&pool_lock);
	if (b && own_cache_locked()) {
		b->next = cache.head;
		cache.head = b;
		atomic_fetch_add_explicit(&cache.n, 1, memory_order_relaxed);
		b = NULL;
	}
	if (b && pool_len < EVENT_POOL_MAX) {
		b->next = pool;
		pool = b;
		pool_len++;
		b = NULL;
	}
	if (atomic_load_explicit(&cache.n, memory_order_relaxed) > CACHE_MAX)
		spill = cache_give(&cache, CACHE_MOVE);
	pthread_mutex_unlock(&pool_lock);
	if (b) {
		BLOCK_UNPOISON(b);
		free(b);
	}
	free_chain(spill);
}

void px_event_pool_drain(void)
{
	struct block_head *b, *spill = NULL;

	pthread_mutex_lock(&pool_lock);
	for (struct block_cache *c = caches; c; c = c->next) {
		struct block_head *more = cache_give(c, UINT_MAX);
		while (more) {
			struct block_head *next = more->next;
			more->next = spill;
			spill = more;
			more = next;
		}
	}
	b = pool;
	pool = NULL;
	pool_len = 0;
	pthread_mutex_unlock(&pool_lock);
	free_chain(b);
	free_chain(spill);
}

size_t px_event_pool_size(void)
{
	size_t n;

	pthread_mutex_lock(&pool_lock);
	n = pool_len;
	for (struct block_cache *c = caches; c; c = c->next)
		n += atomic_load_explicit(&c->n, memory_order_relaxed);
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

/* Drop n of ev's references at once; frees it with the last. */
static void event_unref_n(px_event *ev, int n)
{
	if (n && atomic_fetch_sub(&ev->refs, n) == n) {
		px_event_block_free(atomic_load(&ev->text));
		px_event_block_free(ev);
	}
}

void px_event_unref(px_event *ev)
{
	if (ev)
		event_unref_n(ev, 1);
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

/* The cost of every queued event, all subscribers: added by emitters,
 * taken off by readers once per batch. */
static atomic_size_t queued_total;

size_t px_event_budget_used(void)
{
	return atomic_load(&queued_total);
}

size_t px_event_sub_bytes(px_event_sub *s)
{
	return atomic_load_explicit(&s->bytes, memory_order_relaxed);
}

/* bus_lock held: may s, holding len events, queue ev? If so its cost is
 * counted. */
static bool budget_take(px_event_sub *s, const px_event *ev, size_t len)
{
	size_t sub = atomic_load_explicit(&budget_sub, memory_order_relaxed);
	size_t total = atomic_load_explicit(&budget_total, memory_order_relaxed);
	size_t bytes = atomic_load_explicit(&s->bytes, memory_order_relaxed);
	size_t now;

	if (len && bytes + ev->cost > sub)
		return false;
	now = atomic_fetch_add_explicit(&queued_total, ev->cost, memory_order_relaxed) + ev->cost;
	if (len && bytes + ev->cost > sub / 16 && now > total) {
		atomic_fetch_sub_explicit(&queued_total, ev->cost, memory_order_relaxed);
		return false;
	}
	atomic_fetch_add_explicit(&s->bytes, ev->cost, memory_order_relaxed);
	return true;
}

/* ev's cost leaves s's queue (the reader's side, or the emitters' held
 * off). */
static void budget_release(px_event_sub *s, size_t cost)
{
	if (!cost)
		return;
	atomic_fetch_sub_explicit(&s->bytes, cost, memory_order_relaxed);
	atomic_fetch_sub_explicit(&queued_total, cost, memory_order_relaxed);
}

/* ---- emitting ---- */

/* bus_lock held: a drop for s, told to it with the next event it takes. */
static void sub_drop(px_event_sub *s)
{
	atomic_store_explicit(&s->lost, atomic_load_explicit(&s->lost, memory_order_relaxed) + 1,
			      memory_order_release);
}

/* bus_lock held: wake s if it armed itself (it had taken everything and is
 * about to sleep). The fence orders what was just published before the
 * look at armed, against px_event_sub_arm's store of armed before its look
 * at the queue: one of the two sees the other. */
static void sub_wake(px_event_sub *s)
{
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load_explicit(&s->armed, memory_order_relaxed) &&
	    atomic_exchange(&s->armed, false) && s->notify)
		s->notify(s->ctx);
}

/* bus_lock held: queue ev for s (the reference is the caller's to count),
 * or drop it for s when the queue or the budget is full. True: queued. */
static bool sub_push(px_event_sub *s, px_event *ev)
{
	size_t tail = atomic_load_explicit(&s->tail, memory_order_relaxed);
	size_t len = tail - atomic_load_explicit(&s->head, memory_order_acquire);
	struct slot *sl;

	if (len == s->cap || !budget_take(s, ev, len)) {
		sub_drop(s);
		return false;
	}
	sl = &s->ring[tail % s->cap];
	sl->ev = ev;
	sl->lost_before = atomic_load_explicit(&s->lost, memory_order_relaxed);
	atomic_store_explicit(&s->tail, tail + 1, memory_order_release);
	atomic_store_explicit(&s->delivered,
			      atomic_load_explicit(&s->delivered, memory_order_relaxed) + 1,
			      memory_order_relaxed);
	return true;
}

void px_event_emit(enum px_event_kind kind, px_channel *ch, px_channel *peer,
		   const struct px_event_field *fields, size_t n)
{
	px_event *ev;
	int nsubs = 0, queued = 0;

	if (!px_event_listening() || (unsigned)kind >= PX_EV_KINDS)
		return;
	ev = event_build(kind, ch, peer, fields, n);
	pthread_mutex_lock(&bus_lock);
	if (!ev) {
		/* Every subscriber misses it: counted as lost for each, and
		 * a sleeping one is woken to be told. */
		next_seq++;
		for (px_event_sub *s = subs; s; s = s->next) {
			sub_drop(s);
			sub_wake(s);
		}
		pthread_mutex_unlock(&bus_lock);
		return;
	}
	ev->seq = next_seq++;
	clock_gettime(CLOCK_REALTIME, &ev->ts);
	/* One reference per subscriber taken at once, before any can be
	 * taken and dropped by a reader; those not used are given back below
	 * with the emitter's own. */
	for (px_event_sub *s = subs; s; s = s->next)
		nsubs++;
	atomic_store_explicit(&ev->refs, 1 + nsubs, memory_order_relaxed);
	for (px_event_sub *s = subs; s; s = s->next) {
		if (!px_event_filter_match(&s->filter, ev))
			continue;
		if (sub_push(s, ev)) {
			queued++;
			sub_wake(s);
		}
	}
	pthread_mutex_unlock(&bus_lock);
	event_unref_n(ev, 1 + nsubs - queued);
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
	atomic_init(&s->armed, true);
	pthread_mutex_lock(&bus_lock);
	s->last_taken = next_seq - 1;
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
	 * the new one applies, and none is queued twice or skipped. The
	 * caller is the reader: with the emitters held off, both ends of the
	 * queue are its own. */
	pthread_mutex_lock(&bus_lock);
	if (filter)
		s->filter = *filter;
	else
		memset(&s->filter, 0, sizeof(s->filter));
	if (ring) {
		size_t head = atomic_load(&s->head), len = atomic_load(&s->tail) - head;
		/* What no longer fits is dropped as a full queue drops: the
		 * newest go, told after the last one kept (the next event
		 * queued carries the count). */
		size_t keep = len < cap ? len : cap;
		size_t cost = 0;
		for (size_t i = 0; i < len; i++) {
			struct slot *sl = &s->ring[(head + i) % s->cap];
			if (i < keep) {
				ring[i] = *sl;
				continue;
			}
			cost += sl->ev->cost;
			dropped[ndropped++] = sl->ev;
			sub_drop(s);
		}
		budget_release(s, cost);
		old = s->ring;
		s->ring = ring;
		s->cap = cap;
		atomic_store(&s->head, 0);
		atomic_store(&s->tail, keep);
	}
	pthread_mutex_unlock(&bus_lock);
	for (size_t i = 0; i < ndropped; i++)
		px_event_unref(dropped[i]);
	free(dropped);
	free(old);
	return 0;
}

/* The reader: drops before the next event are to be told before it. */
static void front_loss(px_event_sub *s, uint64_t n)
{
	if (!s->lost_front)
		s->front_after = s->last_taken;
	s->lost_front += n;
}

/* The reader: drops before the event at head, or, with the queue empty,
 * since the last event taken. Accounted as seen. The count is read before
 * tail: a drop seen in it that came after an event was queued makes that
 * event visible too (the drop was published after it, under the bus
 * lock), and then the event's lost_before says what came before it. */
static uint64_t lost_before_head(px_event_sub *s, size_t head)
{
	uint64_t lost = atomic_load_explicit(&s->lost, memory_order_acquire);
	uint64_t n;

	if (atomic_load_explicit(&s->tail, memory_order_acquire) != head)
		lost = s->ring[head % s->cap].lost_before;
	n = lost - s->lost_seen;
	s->lost_seen = lost;
	return n;
}

px_event *px_event_sub_take(px_event_sub *s, uint64_t *lost_after)
{
	px_event *ev = NULL;
	uint64_t lost = 0;

	px_event_sub_take_many(s, &ev, &lost, 1);
	if (lost_after)
		*lost_after = lost;
	return ev;
}

size_t px_event_sub_take_many(px_event_sub *s, px_event **evs, uint64_t *lost_after, size_t max)
{
	size_t head = atomic_load_explicit(&s->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&s->tail, memory_order_acquire);
	size_t n, cost = 0;
	uint64_t after;

	for (n = 0; n < max && head != tail; n++, head++) {
		struct slot *sl = &s->ring[head % s->cap];
		uint64_t gap = sl->lost_before - s->lost_seen;

		if (gap) {
			s->lost_seen = sl->lost_before;
			/* Lost before this one: after the one taken before it,
			 * or, first in the batch, told by lost_ahead before
			 * this one is taken. (A drop decided on a head read
			 * before the last take was published lands after
			 * lost_ahead looked: nothing is taken past it.) */
			if (!n) {
				front_loss(s, gap);
				return 0;
			}
			if (lost_after)
				lost_after[n - 1] += gap;
		}
		evs[n] = sl->ev;
		if (lost_after)
			lost_after[n] = 0;
		cost += sl->ev->cost;
		s->last_taken = sl->ev->seq;
	}
	if (!n)
		return 0;
	/* What was lost right after the last one taken: before the event
	 * now at head, or since then if none is queued. */
	after = lost_before_head(s, head);
	if (lost_after)
		lost_after[n - 1] += after;
	budget_release(s, cost);
	atomic_store_explicit(&s->head, head, memory_order_release);
	return n;
}

bool px_event_sub_arm(px_event_sub *s)
{
	size_t head = atomic_load_explicit(&s->head, memory_order_relaxed);

	atomic_store(&s->armed, true);
	if (!s->lost_front && atomic_load(&s->tail) == head &&
	    atomic_load(&s->lost) == s->lost_seen)
		return true;
	atomic_store(&s->armed, false);
	return false;
}

uint64_t px_event_sub_lost_ahead(px_event_sub *s, uint64_t *after_seq)
{
	uint64_t lost = s->lost_front;

	if (lost) {
		/* Told first; a later loss waits for the next call. */
		if (after_seq)
			*after_seq = s->front_after;
		s->lost_front = 0;
		return lost;
	}
	lost = lost_before_head(s, atomic_load_explicit(&s->head, memory_order_relaxed));
	if (after_seq)
		*after_seq = s->last_taken;
	return lost;
}

void px_event_sub_stats(px_event_sub *s, uint64_t *delivered, uint64_t *lost)
{
	if (delivered)
		*delivered = atomic_load_explicit(&s->delivered, memory_order_relaxed);
	if (lost)
		*lost = atomic_load_explicit(&s->lost, memory_order_relaxed);
}

void px_event_unsubscribe(px_event_sub *s)
{
	size_t head, tail;

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
	head = atomic_load(&s->head);
	tail = atomic_load(&s->tail);
	for (; head != tail; head++) {
		budget_release(s, s->ring[head % s->cap].ev->cost);
		px_event_unref(s->ring[head % s->cap].ev);
	}
	free(s->ring);
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
