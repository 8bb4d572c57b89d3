/*
 * SDP for chan_sip: reading an offer or answer with sofia-sip's parser
 * (audio stream, connection address, every payload type whose format the
 * codec registry knows with its fmtp, telephone-event at each clock,
 * ptime, direction, rtcp-mux) and writing our own offer or answer: rtpmap
 * and fmtp lines from the formats' own descriptions, dynamic payload types
 * from 96 up, telephone-event at the clock of each codec offered (RFC 4733:
 * the event clock is the audio's, telephone-event/48000 beside Opus).
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include <plexus/codec.h>

#include "sip.h"

/* Telephone-event's payload type in our offers at 8000; the other clocks
 * get the top of the dynamic range, clear of the codecs' 96 upwards. */
#define DTMF_PT      101
#define DTMF_PT_HIGH 127

static const struct {
	const char *alias, *name;
} codec_names[] = {
	{"ulaw", "ulaw"},  {"pcmu", "ulaw"}, {"g711u", "ulaw"}, {"alaw", "alaw"}, {"pcma", "alaw"},
	{"g711a", "alaw"}, {"g722", "g722"}, {"gsm", "gsm"},    {"opus", "opus"},
};

const char *sip_codec_canonical(const char *name)
{
	for (size_t i = 0; i < sizeof(codec_names) / sizeof(codec_names[0]); i++)
		if (!strcasecmp(codec_names[i].alias, name))
			return codec_names[i].name;
	return NULL;
}

int sip_sdp_event_for(const struct sip_media *m, unsigned clock, unsigned *event_clock)
{
	int fallback = -1;

	for (int i = 0; i < m->nevents; i++) {
		if (m->events[i].clock == clock) {
			*event_clock = clock;
			return m->events[i].pt;
		}
		if (m->events[i].clock == 8000)
			fallback = i;
	}
	if (fallback < 0)
		return -1;
	*event_clock = 8000;
	return m->events[fallback].pt;
}

int sip_sdp_offer_events(const struct sip_payload *payloads, int npayloads,
			 struct sip_event *events, int max)
{
	int n = 0, high = DTMF_PT_HIGH;

	for (int i = 0; i < npayloads && n < max; i++) {
		unsigned clock = payloads[i].format->rtp_clock;
		bool seen = false;
		for (int k = 0; k < n; k++)
			seen = seen || events[k].clock == clock;
		if (seen)
			continue;
		events[n].clock = clock;
		events[n].pt = clock == 8000 ? DTMF_PT : high--;
		n++;
	}
	return n;
}

int sip_sdp_offer_pt(const struct px_format *f, int index)
{
	int pt;

	if (f->static_pt >= 0)
		return f->static_pt;
	pt = 96 + index;
	return pt >= DTMF_PT ? pt + 1 : pt;
}

/* The fmtp line sofia keeps for payload type pt of m. */
static const char *fmtp_of(const sdp_rtpmap_t *rm)
{
	return rm->rm_fmtp ? rm->rm_fmtp : "";
}

int sip_sdp_parse(const char *body, size_t len, struct sip_media *out, px_err *err)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	sdp_parser_t *parser;
	sdp_session_t *sess;
	sdp_media_t *m;
	sdp_connection_t *c;
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_DGRAM}, *res;
	char port[8];
	int rc = -1;

	memset(out, 0, sizeof(*out));
	parser = sdp_parse(home, body, (issize_t)len, sdp_f_insane);
	sess = sdp_session(parser);
	if (!sess) {
		px_err_set(err, "malformed SDP: %s", sdp_parsing_error(parser));
		goto out;
	}
	for (m = sess->sdp_media; m; m = m->m_next)
		if (m->m_type == sdp_media_audio && m->m_port != 0 && !m->m_rejected)
			break;
	if (!m) {
		px_err_set(err, "SDP has no audio stream");
		goto out;
	}
	out->has_audio = true;
	c = m->m_connections ? m->m_connections : sess->sdp_connection;
	if (!c || !c->c_address) {
		px_err_set(err, "SDP has no connection address");
		goto out;
	}
	snprintf(port, sizeof(port), "%lu", m->m_port);
	if (getaddrinfo(c->c_address, port, &hints, &res) != 0) {
		px_err_set(err, "SDP connection address '%s' is not an IP address", c->c_address);
		goto out;
	}
	memcpy(&out->addr, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
	for (sdp_rtpmap_t *rm = m->m_rtpmaps; rm; rm = rm->rm_next) {
		const struct px_format *f;
		if (!rm->rm_encoding)
			continue;
		if (!strcasecmp(rm->rm_encoding, "telephone-event")) {
			/* The first at each clock. */
			bool seen = rm->rm_rate == 0 || out->nevents == SIP_MAX_EVENTS;
			for (int k = 0; k < out->nevents && !seen; k++)
				seen = out->events[k].clock == rm->rm_rate;
			if (!seen) {
				out->events[out->nevents].pt = (int)rm->rm_pt;
				out->events[out->nevents].clock = (unsigned)rm->rm_rate;
				out->nevents++;
			}
			continue;
		}
		f = px_format_by_encoding(rm->rm_encoding, (unsigned)rm->rm_rate);
		if (!f || out->npayloads == SIP_MAX_CODECS)
			continue;
		struct sip_payload *p = &out->payloads[out->npayloads++];
		p->format = f;
		p->pt = (int)rm->rm_pt;
		snprintf(p->fmtp, sizeof(p->fmtp), "%s", fmtp_of(rm));
	}
	for (sdp_attribute_t *a = m->m_attributes; a; a = a->a_next) {
		if (!a->a_name)
			continue;
		if (!strcasecmp(a->a_name, "ptime") && a->a_value) {
			long ms = strtol(a->a_value, NULL, 10);
			if (ms >= 10 && ms <= 120 && ms % 10 == 0)
				out->ptime = (unsigned)ms;
		} else if (!strcasecmp(a->a_name, "rtcp-mux")) {
			out->rtcp_mux = true;
		}
	}
	switch (m->m_mode) {
	case sdp_sendonly:
		out->direction = SIP_SENDONLY;
		break;
	case sdp_recvonly:
		out->direction = SIP_RECVONLY;
		break;
	case sdp_inactive:
		out->direction = SIP_INACTIVE;
		break;
	default:
		out->direction = SIP_SENDRECV;
	}
	/* c=0.0.0.0 is the old way of saying hold. */
	if (!strcmp(c->c_address, "0.0.0.0"))
		out->direction = SIP_INACTIVE;
	rc = 0;
out:
	sdp_parser_free(parser);
	su_home_deinit(home);
	return rc;
}

void sip_sdp_describe(const char *body, size_t len, char *buf, size_t size)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	sdp_parser_t *parser = sdp_parse(home, body, (issize_t)len, sdp_f_insane);
	sdp_session_t *sess = sdp_session(parser);
	size_t used = 0;

	buf[0] = '\0';
	for (sdp_media_t *m = sess ? sess->sdp_media : NULL; m; m = m->m_next) {
		if (m->m_type != sdp_media_audio)
			continue;
		for (sdp_rtpmap_t *rm = m->m_rtpmaps; rm && used < size; rm = rm->rm_next) {
			int n = snprintf(buf + used, size - used, "%s%s/%lu (%u)", used ? ", " : "",
					 rm->rm_encoding ? rm->rm_encoding : "?", rm->rm_rate,
					 rm->rm_pt);
			if (n < 0)
				break;
			used += (size_t)n;
		}
	}
	if (used >= size && size > 4)
		strcpy(buf + size - 4, "...");
	sdp_parser_free(parser);
	su_home_deinit(home);
}

int sip_sdp_build(char *buf, size_t size, const struct sockaddr_storage *rtp_addr, uint16_t port,
		  const struct sip_payload *payloads, int npayloads, const struct sip_event *events,
		  int nevents, int direction, bool rtcp_mux, uint64_t session_id, unsigned version)
{
	static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
	char host[64];
	const char *family = rtp_addr->ss_family == AF_INET6 ? "IP6" : "IP4";
	size_t used = 0;
	int n;

	if (rtp_addr->ss_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)rtp_addr)->sin6_addr, host,
			  sizeof(host));
	else
		inet_ntop(AF_INET, &((const struct sockaddr_in *)rtp_addr)->sin_addr, host,
			  sizeof(host));
#define APPEND(...)                                                                                \
	do {                                                                                       \
		n = snprintf(buf + used, size - used, __VA_ARGS__);                                \
		if (n < 0 || (size_t)n >= size - used)                                             \
			return -1;                                                                 \
		used += (size_t)n;                                                                 \
	} while (0)
	APPEND("v=0\r\no=plexus %llu %u IN %s %s\r\ns=plexus\r\nc=IN %s %s\r\nt=0 0\r\n",
	       (unsigned long long)session_id, version, family, host, family, host);
	APPEND("m=audio %u RTP/AVP", (unsigned)port);
	for (int i = 0; i < npayloads; i++)
		APPEND(" %d", payloads[i].pt);
	for (int i = 0; i < nevents; i++)
		APPEND(" %d", events[i].pt);
	APPEND("\r\n");
	for (int i = 0; i < npayloads; i++) {
		const struct px_format *f = payloads[i].format;
		if (f->rtp_channels)
			APPEND("a=rtpmap:%d %s/%u/%u\r\n", payloads[i].pt, f->encoding,
			       f->rtp_clock, f->rtp_channels);
		else
			APPEND("a=rtpmap:%d %s/%u\r\n", payloads[i].pt, f->encoding, f->rtp_clock);
		if (f->fmtp)
			APPEND("a=fmtp:%d %s\r\n", payloads[i].pt, f->fmtp);
	}
	for (int i = 0; i < nevents; i++)
		APPEND("a=rtpmap:%d telephone-event/%u\r\na=fmtp:%d 0-16\r\n", events[i].pt,
		       events[i].clock, events[i].pt);
	APPEND("a=ptime:20\r\n");
	if (rtcp_mux)
		APPEND("a=rtcp-mux\r\n");
	APPEND("a=%s\r\n", dirs[direction & 3]);
#undef APPEND
	return (int)used;
}
