/*
 * DTMF in SIP signalling for chan_sip: the INFO requests that carry digits
 * (application/dtmf-relay "Signal=5\r\nDuration=160", and application/dtmf
 * whose body is the digit), read when a phone sends one in a dialog and
 * written when a digit must reach a leg in dtmf_mode info. RFC 4733 events
 * and inband tones are the media engine's (plexus/media.h); which of the
 * three a leg uses is decided in call.c from its endpoint and its SDP.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>

#include <plexus/log.h>

#include "sip.h"

/* Without a Duration, a digit is taken to last this long. */
#define INFO_DEFAULT_MS 250
#define INFO_MAX_MS     5000

static bool valid_digit(char *d)
{
	*d = (char)toupper((unsigned char)*d);
	return *d && strchr("0123456789*#ABCD", *d);
}

/* "key = value" lines; value of key into out, case-insensitively. */
static bool body_value(const char *body, size_t len, const char *key, char *out, size_t size)
{
	const char *p = body, *end = body + len;
	size_t klen = strlen(key);

	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		const char *line_end = eol ? eol : end;

		while (p < line_end && isspace((unsigned char)*p))
			p++;
		if ((size_t)(line_end - p) > klen && !strncasecmp(p, key, klen)) {
			const char *v = p + klen;
			while (v < line_end && (*v == ' ' || *v == '\t'))
				v++;
			if (v < line_end && *v == '=') {
				v++;
				while (v < line_end && isspace((unsigned char)*v))
					v++;
				const char *ve = line_end;
				while (ve > v && isspace((unsigned char)ve[-1]))
					ve--;
				snprintf(out, size, "%.*s", (int)(ve - v), v);
				return true;
			}
		}
		p = eol ? eol + 1 : end;
	}
	return false;
}

int sip_dtmf_parse_info(const char *type, const char *body, size_t len, char *digit,
			unsigned *duration_ms)
{
	char value[32];

	*duration_ms = INFO_DEFAULT_MS;
	if (!type || !body)
		return -1;
	if (!strcasecmp(type, "application/dtmf-relay")) {
		if (!body_value(body, len, "Signal", value, sizeof(value)) || strlen(value) != 1)
			return -1;
		*digit = value[0];
		if (body_value(body, len, "Duration", value, sizeof(value))) {
			char *end;
			long ms = strtol(value, &end, 10);
			if (end == value || *end || ms <= 0)
				return -1;
			*duration_ms = ms > INFO_MAX_MS ? INFO_MAX_MS : (unsigned)ms;
		}
	} else if (!strcasecmp(type, "application/dtmf")) {
		while (len && isspace((unsigned char)body[len - 1]))
			len--;
		while (len && isspace((unsigned char)*body)) {
			body++;
			len--;
		}
		if (len != 1)
			return -1;
		*digit = body[0];
	} else {
		return -1;
	}
	return valid_digit(digit) ? 0 : -1;
}

int sip_dtmf_info_body(char digit, unsigned duration_ms, char *buf, size_t size)
{
	return snprintf(buf, size, "Signal=%c\r\nDuration=%u\r\n", digit, duration_ms);
}

void sip_dtmf_info_received(px_channel *ch, struct nua_handle_s *nh, const void *sipmsg)
{
	sip_t const *s = sipmsg;
	const char *type = s && s->sip_content_type ? s->sip_content_type->c_type : NULL;
	const char *body = s && s->sip_payload ? s->sip_payload->pl_data : NULL;
	size_t len = s && s->sip_payload ? s->sip_payload->pl_len : 0;
	char digit = 0;
	unsigned ms;

	if (!type ||
	    (strcasecmp(type, "application/dtmf-relay") && strcasecmp(type, "application/dtmf"))) {
		nua_respond(nh, 415, sip_415_Unsupported_media,
			    SIPTAG_ACCEPT_STR("application/dtmf-relay, application/dtmf"),
			    NUTAG_WITH_THIS(sip.nua), TAG_END());
		return;
	}
	if (sip_dtmf_parse_info(type, body, len, &digit, &ms) < 0) {
		px_log_notice("chan_sip: %s: INFO with a %s body that holds no digit",
			      px_channel_name(ch), type);
		nua_respond(nh, 400, "Bad DTMF body", NUTAG_WITH_THIS(sip.nua), TAG_END());
		return;
	}
	nua_respond(nh, 200, sip_200_OK, NUTAG_WITH_THIS(sip.nua), TAG_END());
	px_channel_queue_dtmf_from(ch, digit, true, 0, PX_DTMF_SIGNALLING);
	px_channel_queue_dtmf_from(ch, digit, false, (int)ms, PX_DTMF_SIGNALLING);
}
