/*
 * Events as JSON: the common keys (event, seq, timestamp, and for channel
 * events channel, uniqueid, linkedid, endpoint; for two-party events
 * peer_channel, peer_uniqueid), then the event's own fields, strings as
 * strings and integers as numbers; and the console's "event" frame of
 * that JSON, made once per event for every console that streams it.
 * Events are flat objects of strings and numbers, so their text is
 * written straight (px_json_out, json_text.c) rather than dumped from a
 * jansson object: with ten consoles streaming every event at 1200 calls/s
 * jansson's generic dump took 40 % of the consoles' CPU (its per-character
 * UTF-8 walk, printf for every number, a key lookup to refill a kept
 * object), as much as all their socket writes. jansson still reads every
 * request and writes every reply; the tests read these texts back with it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_internal.h"
#include "event_json.h"
#include "json_text.h"
#include "protocol.h"

/* The JSON is written here first; most events need less than half. */
#define JSON_ROOM 1024

/* One key of an event's JSON, in the order it is written. */
struct entry {
	const char *key;
	enum { V_STR, V_INT, V_TIME } type;
	const char *s;
	long long i;
	struct timespec t;
	uint32_t hash; /* of key: a key given twice is looked for among equal hashes */
};

/* Beyond this many keys an event's entries are kept on the heap (no event
 * has half as many). */
#define MAX_ENTRIES 48

/* The keys of ev in order, into e (room for px_event_field_count + 8). */
static size_t entries_of(const px_event *ev, struct entry *e)
{
	size_t n = 0, nf = px_event_field_count(ev);

	e[n++] = (struct entry){"event", V_STR, .s = px_event_kind_name(px_event_kind(ev))};
	e[n++] = (struct entry){"seq", V_INT, .i = (long long)px_event_seq(ev)};
	e[n++] = (struct entry){"timestamp", V_TIME, .t = px_event_time(ev)};
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
			e[n++] = (struct entry){f->name, V_INT, .i = (long long)f->i};
		else
			e[n++] = (struct entry){f->name, V_STR, .s = f->s};
	}
	return n;
}

/* FNV-1a of a key. */
static uint32_t key_hash(const char *key)
{
	uint32_t h = 2166136261u;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h;
}

static bool same_key(const struct entry *a, const struct entry *b)
{
	return a->hash == b->hash && !strcmp(a->key, b->key);
}

/* Unix time with microseconds ("1795474843.762640"), as the protocol
 * says: digits of the time itself, not of a double near it. */
static void put_time(struct px_json_out *o, struct timespec t)
{
	char frac[8];
	long us = t.tv_nsec / 1000;

	px_json_put_int(o, (long long)t.tv_sec);
	frac[0] = '.';
	for (int d = 6; d >= 1; d--, us /= 10)
		frac[d] = (char)('0' + us % 10);
	px_json_put_raw(o, frac, 7);
}

/* The JSON of ev onto o. A key given twice (a field named like a common
 * key, or twice among the fields) is written once, where it first came,
 * with the value it was given last, as an object would hold it. */
static void write_event(struct px_json_out *o, const px_event *ev)
{
	struct entry room[MAX_ENTRIES], *e = room;
	size_t n, nf = px_event_field_count(ev);

	if (nf + 8 > MAX_ENTRIES && !(e = calloc(nf + 8, sizeof(*e)))) {
		o->failed = true;
		return;
	}
	n = entries_of(ev, e);
	for (size_t k = 0; k < n; k++)
		e[k].hash = key_hash(e[k].key);
	px_json_put_raw(o, "{", 1);
	for (size_t k = 0, written = 0; k < n; k++) {
		const struct entry *v = &e[k];
		bool seen = false;
		for (size_t j = 0; j < k && !seen; j++)
			seen = same_key(&e[j], &e[k]);
		if (seen)
			continue;
		for (size_t j = k + 1; j < n; j++)
			if (same_key(&e[j], &e[k]))
				v = &e[j];
		if (written++)
			px_json_put_raw(o, ",", 1);
		px_json_put_text(o, e[k].key);
		px_json_put_raw(o, ":", 1);
		if (v->type == V_INT)
			px_json_put_int(o, v->i);
		else if (v->type == V_TIME)
			put_time(o, v->t);
		else
			/* Fields come from the wire (names, user agents,
			 * endpoints claimed by attackers): never dropped for
			 * not being UTF-8. */
			px_json_put_text(o, v->s);
	}
	px_json_put_raw(o, "}", 1);
	if (e != room)
		free(e);
}

/* Room for the frame header "event 0 LEN\n" (LEN at most
 * PX_PROTO_MAX_PAYLOAD: 7 digits). */
#define HEAD_ROOM 24

struct px_event_text *px_event_text_new(const px_event *ev)
{
	char room[JSON_ROOM], head[HEAD_ROOM + 1];
	struct px_event_text *t = NULL;
	struct px_json_out o;
	char *block;
	int h;

	/* Written on the stack, then kept in a block of its size, nearly
	 * always one of the events' free list (event.c): a block with room
	 * for any event would be a "large" request to malloc (1 KiB and
	 * over), which merges all its small free chunks first. */
	px_json_out_init(&o, room, sizeof(room));
	write_event(&o, ev);
	h = snprintf(head, sizeof(head), "event 0 %zu\n", o.len);
	if (o.failed || o.len > PX_PROTO_MAX_PAYLOAD || h < 0 || h > HEAD_ROOM)
		goto out;
	block = px_event_block_alloc(sizeof(*t) + (size_t)h + o.len + 1);
	if (!block)
		goto out;
	t = (struct px_event_text *)block;
	memcpy(block + sizeof(*t), head, (size_t)h);
	memcpy(block + sizeof(*t) + h, o.buf, o.len + 1);
	t->frame = block + sizeof(*t);
	t->frame_len = (size_t)h + o.len;
	t->json = t->frame + h;
	t->json_len = o.len;
out:
	px_json_out_free(&o);
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
