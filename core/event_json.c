/*
 * Events as JSON (jansson): the common keys (event, seq, timestamp, and
 * for channel events channel, uniqueid, linkedid, endpoint; for two-party
 * events peer_channel, peer_uniqueid), then the event's own fields, strings
 * as strings and integers as numbers.
 */
#include <stdlib.h>

#include <jansson.h>

#include "event_json.h"
#include "json_text.h"

static void set_str(json_t *o, const char *key, const char *value)
{
	/* Fields come from the wire (names, user agents, endpoints claimed
	 * by attackers): never dropped for not being UTF-8. */
	json_object_set_new(o, key, px_json_text(value));
}

char *px_event_to_json(const px_event *ev)
{
	json_t *o = json_object();
	struct timespec ts = px_event_time(ev);
	char *text;

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
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
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
