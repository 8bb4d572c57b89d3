/*
 * Text from the outside world made fit for JSON. Names, user agents and
 * endpoints come from phones and attackers in any encoding, and jansson
 * refuses a string that is not UTF-8 (json_string returns NULL, and the
 * field or the whole object built around it silently goes missing). Every
 * string the console writes as JSON goes through px_json_text.
 */
#ifndef PLEXUS_JSON_TEXT_H
#define PLEXUS_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <jansson.h>

/* A new JSON string holding s, each byte that is not part of a valid UTF-8
 * sequence replaced by U+FFFD; "" for NULL. NULL only when memory ran out. */
json_t *px_json_text(const char *s);
/* The JSON string `string` made to hold s, cleaned the same way: 0, or -1
 * when memory ran out (string unchanged). */
int px_json_text_set(json_t *string, const char *s);

/* A JSON text written piece by piece, for the texts made at a high rate
 * (events): no object is built, strings are escaped straight into the
 * text. It starts in room the caller gives (size bytes, usually on its
 * stack) and moves to the heap when it outgrows it. The text is always
 * NUL-terminated; once memory ran out, failed is set, nothing more is
 * written and the text is not to be used. */
struct px_json_out {
	char *buf;
	size_t len, cap;
	bool heap;   /* buf is ours to free */
	bool failed; /* memory ran out: the text is incomplete */
};
void px_json_out_init(struct px_json_out *o, char *room, size_t size);
/* Frees what the writer took from the heap (not the caller's room). */
void px_json_out_free(struct px_json_out *o);
/* Room for n more bytes and the NUL after them: false once memory ran
 * out (failed is then set). */
bool px_json_out_grow(struct px_json_out *o, size_t n);
/* n bytes as they are (JSON punctuation, numbers). Inline: an event's
 * text is some fifty of these. */
static inline void px_json_put_raw(struct px_json_out *o, const char *s, size_t n)
{
	if (o->failed || (o->len + n >= o->cap && !px_json_out_grow(o, n)))
		return;
	memcpy(o->buf + o->len, s, n);
	o->len += n;
	o->buf[o->len] = '\0';
}
/* s (NULL: "") as a JSON string: quoted, cleaned as px_json_text cleans,
 * escaped as jansson escapes. */
void px_json_put_text(struct px_json_out *o, const char *s);
/* v as a JSON number. */
void px_json_put_int(struct px_json_out *o, long long v);

#endif
