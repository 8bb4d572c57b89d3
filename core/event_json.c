/*
 * Events as JSON (jansson): the common keys (event, seq, timestamp, and
 * for channel events channel, uniqueid, linkedid, endpoint; for two-party
 * events peer_channel, peer_uniqueid), then the event's own fields, strings
 * as strings and integers as numbers; and the console's "event" frame of
 * that JSON, made once per event for every console that streams it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "event_json.h"
#include "json_text.h"
#include "protocol.h"

static void set_str(json_t *o, const char *key, const char *value)
{
	/* Fields come from the wire (names, user agents, endpoints claimed
	 * by attackers): never dropped for not being UTF-8. */
	json_object_set_new(o, key, px_json_text(value));
}

static json_t *event_object(const px_event *ev)
{
	json_t *o = json_object();
	struct timespec ts = px_event_time(ev);

	if (!o)
		return NULL;
	set_str(o, "event", px_event_kind_name(px_event_kind(ev)));
	json_object_set_new(o, "seq", json_integer((json_int_t)px_event_seq(ev)));
	json_object_set_new(o, "timestamp", json_real((double)ts.tv_sec + ts.tv_nsec / 1e9));
	if (px_event_channel(ev)[0]) {
		set_str(o, "channel", px_event_channel(ev));
		set_str(o, "uniqueid", px_event_uniqueid(ev));
		set_str(o, "linkedid", px_event_linkedid(ev));
	}
	if (px_event_peer(ev)[0]) {
		set_str(o, "peer_channel", px_event_peer(ev));
		set_str(o, "peer_uniqueid", px_event_peer_uniqueid(ev));
	}
	for (size_t i = 0; i < px_event_field_count(ev); i++) {
		const struct px_event_field *f = px_event_field_at(ev, i);
		if (f->type == PX_EVF_INT)
			json_object_set_new(o, f->name, json_integer((json_int_t)f->i));
		else
			set_str(o, f->name, f->s);
	}
	return o;
}

char *px_event_to_json(const px_event *ev)
{
	json_t *o = event_object(ev);
	char *text;

	if (!o)
		return NULL;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
}

/* Room before the JSON for the frame header: "event 0 " and the length
 * (at most PX_PROTO_MAX_PAYLOAD: 7 digits) and "\n". */
#define HEAD_ROOM 24

/* The text is dumped straight into the block it is kept in, behind the
 * struct and the header's room: no second copy of it. */
struct dump {
	char *block;
	size_t len, cap; /* bytes used (struct, room, JSON so far) and allocated */
};

static int dump_append(const char *buf, size_t size, void *data)
{
	struct dump *d = data;

	if (d->len + size + 1 > d->cap) {
		size_t cap = d->cap * 2;
		char *block;
		while (cap < d->len + size + 1)
			cap *= 2;
		block = realloc(d->block, cap);
		if (!block)
			return -1;
		d->block = block;
		d->cap = cap;
	}
	memcpy(d->block + d->len, buf, size);
	d->len += size;
	return 0;
}

struct px_event_text *px_event_text_new(const px_event *ev)
{
	const size_t start = sizeof(struct px_event_text) + HEAD_ROOM;
	struct dump d = {.len = start, .cap = start + 512};
	json_t *o = event_object(ev);
	struct px_event_text *t;
	char head[HEAD_ROOM + 1], *json;
	size_t json_len;
	int h;

	d.block = o ? malloc(d.cap) : NULL;
	if (!d.block ||
	    json_dump_callback(o, dump_append, &d, JSON_COMPACT | JSON_PRESERVE_ORDER)) {
		json_decref(o);
		free(d.block);
		return NULL;
	}
	json_decref(o);
	json = d.block + start;
	json_len = d.len - start;
	json[json_len] = '\0';
	h = snprintf(head, sizeof(head), "event 0 %zu\n", json_len);
	if (json_len > PX_PROTO_MAX_PAYLOAD || h < 0 || h > HEAD_ROOM) {
		free(d.block);
		return NULL;
	}
	t = (struct px_event_text *)d.block;
	memcpy(json - h, head, (size_t)h);
	t->frame = json - h;
	t->frame_len = (size_t)h + json_len;
	t->json = json;
	t->json_len = json_len;
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
