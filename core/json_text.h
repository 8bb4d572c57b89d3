/*
 * Text from the outside world made fit for JSON. Names, user agents and
 * endpoints come from phones and attackers in any encoding, and jansson
 * refuses a string that is not UTF-8 (json_string returns NULL, and the
 * field or the whole object built around it silently goes missing). Every
 * string the console writes as JSON goes through px_json_text.
 */
#ifndef PLEXUS_JSON_TEXT_H
#define PLEXUS_JSON_TEXT_H

#include <jansson.h>

/* A new JSON string holding s, each byte that is not part of a valid UTF-8
 * sequence replaced by U+FFFD; "" for NULL. NULL only when memory ran out. */
json_t *px_json_text(const char *s);
/* The JSON string `string` made to hold s, cleaned the same way: 0, or -1
 * when memory ran out (string unchanged). */
int px_json_text_set(json_t *string, const char *s);

#endif
