/*
 * SDP for chan_sip's first cut of media: reading an offer or answer with
 * sofia-sip's parser (audio stream, connection address, G.711 payloads in
 * the sender's order, telephone-event, direction) and writing our own
 * offer or answer for the RTP port the media engine gave the call.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/sdp.h>
#include <sofia-sip/su_alloc.h>

#include "sip.h"

static bool allowed_pt(int pt, const int *allowed, int n)
{
	for (int i = 0; i < n; i++)
		if (allowed[i] == pt)
			return true;
	return false;
}

/* The static payload type an rtpmap names, or -1 (PCMU/8000 → 0). */
static int g711_payload(const sdp_rtpmap_t *rm)
{
	if (rm->rm_rate != 8000 || !rm->rm_encoding)
		return -1;
	if (!strcasecmp(rm->rm_encoding, "PCMU"))
		return SIP_CODEC_PCMU;
	if (!strcasecmp(rm->rm_encoding, "PCMA"))
		return SIP_CODEC_PCMA;
	return -1;
}

int sip_sdp_parse(const char *body, size_t len, const int *allowed, int nallowed,
		  struct sip_media *out, px_err *err)
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
	out->dtmf_pt = -1;
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
		int pt = g711_payload(rm);
		if (pt >= 0 && (int)rm->rm_pt == pt && allowed_pt(pt, allowed, nallowed) &&
		    out->npayloads < SIP_MAX_CODECS)
			out->payloads[out->npayloads++] = pt;
		else if (rm->rm_encoding && !strcasecmp(rm->rm_encoding, "telephone-event") &&
			 out->dtmf_pt < 0)
			out->dtmf_pt = (int)rm->rm_pt;
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

int sip_sdp_build(char *buf, size_t size, const struct sockaddr_storage *rtp_addr, uint16_t port,
		  const int *payloads, int npayloads, int dtmf_pt, int direction,
		  uint64_t session_id, unsigned version)
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
		APPEND(" %d", payloads[i]);
	if (dtmf_pt >= 0)
		APPEND(" %d", dtmf_pt);
	APPEND("\r\n");
	for (int i = 0; i < npayloads; i++)
		APPEND("a=rtpmap:%d %s/8000\r\n", payloads[i],
		       payloads[i] == SIP_CODEC_PCMA ? "PCMA" : "PCMU");
	if (dtmf_pt >= 0)
		APPEND("a=rtpmap:%d telephone-event/8000\r\na=fmtp:%d 0-16\r\n", dtmf_pt, dtmf_pt);
	APPEND("a=ptime:20\r\na=%s\r\n", dirs[direction & 3]);
#undef APPEND
	return (int)used;
}
