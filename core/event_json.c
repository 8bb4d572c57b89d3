/*
 * Events as JSON (jansson): the common keys (event, seq, timestamp, and
 * for channel events channel, uniqueid, linkedid, endpoint; for two-party
 * events peer_channel, peer_uniqueid), then the event's own fields, strings
 * as strings and integers as numbers; and the console's "event" frame of
 * that JSON, made once per event for every console that streams it.
 * Each thread that encodes keeps one jansson object per event kind and
 * refills it (event_object): the encoding costs the dump and the strings
 * that changed, not an object built and freed per event.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_internal.h"
#include "event_json.h"
#include "json_text.h"
#include "protocol.h"

/* One key of an event's JSON, in the order it is written. */
struct entry {
	const char *key;
	enum { V_STR, V_INT, V_REAL } type;
	const char *s;
	json_int_t i;
	double r;
};

/* Beyond this many keys an event is encoded without its thread's cached
 * object (no event has half as many). */
#define MAX_ENTRIES 48

/* The keys of ev in order, into e (at most max); their number, or 0 when
 * there are more. */
static size_t entries_of(const px_event *ev, struct entry *e, size_t max)
{
	struct timespec ts = px_event_time(ev);
	size_t n = 0, nf = px_event_field_count(ev);

	if (nf + 8 > max)
		return 0;
	e[n++] = (struct entry){"event", V_STR, .s = px_event_kind_name(px_event_kind(ev))};
	e[n++] = (struct entry){"seq", V_INT, .i = (json_int_t)px_event_seq(ev)};
	e[n++] = (struct entry){"timestamp", V_REAL,
				.r = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9};
	if (px_event_channel(ev)[0]) {
		e[n++] = (struct entry){"channel", V_STR, .s = px_event_channel(ev)};
		e[n++] = (struct entry){"uniqueid", V_STR, .s = px_event_uniqueid(ev)};
		e[n++] = (struct entry){"linkedid", V_STR, .s = px_event_linkedid(ev)};
	}
	if (px_event_peer(ev)[0]) {
		e[n++] = (struct entry){"peer_channel", V_STR, .s = px_event_peer(ev)};
		e[n++] = (struct entry){"peer_uniqueid", V_STR, .s = px_event_peer_uniqueid(ev)};
	}
	for (size_t k = 0; k < nf; k++) {
		const struct px_event_field *f = px_event_field_at(ev, k);
		if (f->type == PX_EVF_INT)
			e[n++] = (struct entry){f->name, V_INT, .i = (json_int_t)f->i};
		else
			e[n++] = (struct entry){f->name, V_STR, .s = f->s};
	}
	return n;
}

/* A new object of the entries. Keys are our own ASCII names (the common
 * ones above, the emitters' literal field names): not checked again. */
static json_t *object_of(const struct entry *e, size_t n)
{
	json_t *o = json_object();

	for (size_t k = 0; o && k < n; k++) {
		json_t *v;
		if (e[k].type == V_INT)
			v = json_integer(e[k].i);
		else if (e[k].type == V_REAL)
			v = json_real(e[k].r);
		else
			/* Fields come from the wire (names, user agents,
			 * endpoints claimed by attackers): never dropped for
			 * not being UTF-8. */
			v = px_json_text(e[k].s);
		json_object_set_new_nocheck(o, e[k].key, v);
	}
	return o;
}

/* Give o, an object of the same keys in the same order and types, the
 * entries' values in place: no allocation but for the strings that
 * changed. False when o does not fit (then its values are undefined). */
static bool object_update(json_t *o, const struct entry *e, size_t n)
{
	void *it = json_object_iter(o);

	for (size_t k = 0; k < n; k++, it = json_object_iter_next(o, it)) {
		json_t *v;
		if (!it || strcmp(json_object_iter_key(it), e[k].key))
			return false;
		v = json_object_iter_value(it);
		if (e[k].type == V_INT) {
			if (!json_is_integer(v) || json_integer_set(v, e[k].i) < 0)
				return false;
		} else if (e[k].type == V_REAL) {
			if (!json_is_real(v) || json_real_set(v, e[k].r) < 0)
				return false;
		} else {
			/* What the object holds is valid UTF-8: equal means
			 * the new text is too, and nothing is to be done. */
			if (!json_is_string(v))
				return false;
			if (!strcmp(json_string_value(v), e[k].s ? e[k].s : ""))
				continue;
			if (px_json_text_set(v, e[k].s) < 0)
				return false;
		}
	}
	return it == NULL;
}

/* Building a jansson object costs some 40 allocations (a hash table that
 * grows twice, a pair per key, two blocks per string, one per number),
 * more than dumping it. Consecutive events of one kind have the same keys
 * in the same order, so each thread that encodes events keeps the last
 * object of each kind and gives it the next event's values in place;
 * an event whose keys differ gets a new one. Per thread: no lock, and
 * freed when the thread ends. */
struct objects {
	json_t *of_kind[PX_EV_KINDS];
};

static pthread_key_t objects_key;
static bool objects_ok;
static pthread_once_t objects_once = PTHREAD_ONCE_INIT;

static void objects_free(void *p)
{
	struct objects *t = p;

	for (size_t k = 0; k < PX_EV_KINDS; k++)
		json_decref(t->of_kind[k]);
	free(t);
}

static void objects_init(void)
{
	objects_ok = pthread_key_create(&objects_key, objects_free) == 0;
}

static struct objects *thread_objects(void)
{
	struct objects *t;

	pthread_once(&objects_once, objects_init);
	if (!objects_ok)
		return NULL;
	t = pthread_getspecific(objects_key);
	if (!t && (t = calloc(1, sizeof(*t))) && pthread_setspecific(objects_key, t) != 0) {
		free(t);
		t = NULL;
	}
	return t;
}

/* ev as a JSON object: this thread's object of its kind (*owned false: it
 * is not to be released), or a new one (*owned true). NULL: memory. */
static json_t *event_object(const px_event *ev, bool *owned)
{
	struct entry e[MAX_ENTRIES];
	size_t n = entries_of(ev, e, MAX_ENTRIES);
	struct objects *t = n ? thread_objects() : NULL;
	enum px_event_kind kind = px_event_kind(ev);
	json_t *o;

	*owned = false;
	if (t && (unsigned)kind < PX_EV_KINDS && t->of_kind[kind] &&
	    object_update(t->of_kind[kind], e, n))
		return t->of_kind[kind];
	if (!n) {
		/* Too many keys for e: built straight from the event. */
		size_t nf = px_event_field_count(ev);
		struct entry *big = calloc(nf + 8, sizeof(*big));
		o = big ? object_of(big, entries_of(ev, big, nf + 8)) : NULL;
		free(big);
		*owned = true;
		return o;
	}
	o = object_of(e, n);
	if (o && t && (unsigned)kind < PX_EV_KINDS) {
		json_decref(t->of_kind[kind]);
		t->of_kind[kind] = o;
		return o;
	}
	*owned = true;
	return o;
}

char *px_event_to_json(const px_event *ev)
{
	bool owned;
	json_t *o = event_object(ev, &owned);
	char *text;

	if (!o)
		return NULL;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	if (owned)
		json_decref(o);
	return text;
}

/* Room for the frame header "event 0 LEN\n" (LEN at most
 * PX_PROTO_MAX_PAYLOAD: 7 digits). */
#define HEAD_ROOM 24
/* The JSON is dumped here first; most events need less than half. */
#define JSON_ROOM 1024

struct px_event_text *px_event_text_new(const px_event *ev)
{
	bool owned = false;
	json_t *o = event_object(ev, &owned);
	char room[JSON_ROOM], head[HEAD_ROOM + 1];
	struct px_event_text *t = NULL;
	size_t json_len = 0;
	char *block, *json;
	int h;

	if (!o)
		return NULL;
	/* Dumped on the stack, then kept in a block of its size, nearly
	 * always one of the events' free list (event.c): a block with room
	 * for any event would be a "large" request to malloc (1 KiB and
	 * over), which merges all its small free chunks first. */
	json_len = json_dumpb(o, room, sizeof(room), JSON_COMPACT | JSON_PRESERVE_ORDER);
	h = snprintf(head, sizeof(head), "event 0 %zu\n", json_len);
	if (json_len == 0 || json_len > PX_PROTO_MAX_PAYLOAD || h < 0 || h > HEAD_ROOM)
		goto out;
	block = px_event_block_alloc(sizeof(*t) + (size_t)h + json_len + 1);
	if (!block)
		goto out;
	t = (struct px_event_text *)block;
	memcpy(block + sizeof(*t), head, (size_t)h);
	json = block + sizeof(*t) + h;
	if (json_len <= sizeof(room)) {
		memcpy(json, room, json_len);
	} else if (json_dumpb(o, json, json_len, JSON_COMPACT | JSON_PRESERVE_ORDER) != json_len) {
		px_event_block_free(block); /* the object cannot change between the two dumps */
		t = NULL;
		goto out;
	}
	json[json_len] = '\0';
	t->frame = block + sizeof(*t);
	t->frame_len = (size_t)h + json_len;
	t->json = json;
	t->json_len = json_len;
out:
	if (owned)
		json_decref(o);
	return t;
}

char *px_event_lost_json(uint64_t lost, uint64_t after_seq)
{
	json_t *o = json_pack("{s:s, s:I, s:I}", "event", "EventsLost", "lost", (json_int_t)lost,
			      "after_seq", (json_int_t)after_seq);
	char *text;

	if (!o)
		return NULL;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}
