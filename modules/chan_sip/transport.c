/*
 * Which transports (UDP, TCP, TLS) an endpoint may use, and which one a
 * request or a registered contact actually uses. An endpoint with
 * "transport = tls" must never have its credentials or its calls on a
 * plain connection: its REGISTER and INVITE are refused on UDP and TCP
 * after authentication (so the answer to a stranger stays the same
 * challenge), its contacts registered over another transport are not
 * rung, and calls to it go through the connection its REGISTER came on.
 *
 * The transport of a request is the connection's, never the peer's word:
 * sofia-sip 1.12.11 gives an application no handle on the transport that
 * delivered a request (nua queues the event after the delivery is over,
 * and nta_incoming_transport needs the transaction nua keeps to itself),
 * but nta compares the topmost Via's transport with the transport that
 * delivered the request and drops the request when they differ (and
 * writes the Via from the transport when there is none). So past nta the
 * Via's protocol is the connection's; the address family and protocol of
 * the message's source (UDP or a stream) are checked here as well.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/sip_header.h>

#include <plexus/location.h>
#include <plexus/log.h>

#include "sip.h"

static const char *const names[] = {"udp", "tcp", "tls"};

const char *sip_transport_name(enum sip_transport t)
{
	return (unsigned)t < 3 ? names[t] : "?";
}

int sip_transport_parse(const char *text, enum sip_transport *out)
{
	for (unsigned i = 0; i < 3; i++)
		if (!strcasecmp(text, names[i])) {
			*out = (enum sip_transport)i;
			return 0;
		}
	return -1;
}

void sip_transports_format(unsigned mask, char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	if ((mask & SIP_TP_ALL) == SIP_TP_ALL) {
		snprintf(buf, size, "any (udp, tcp, tls)");
		return;
	}
	for (unsigned i = 0; i < 3 && used < size; i++)
		if (mask & SIP_TP_BIT(i))
			used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "",
						 names[i]);
}

/* The source of the request being handled, and the transport it came on. */
static int current_source(const su_addrinfo_t **ai, enum sip_transport *tp)
{
	msg_t *msg = nua_current_request(sip.nua);
	sip_t const *s = msg ? sip_object(msg) : NULL;
	const char *proto;

	*ai = msg ? msg_addrinfo(msg) : NULL;
	if (!*ai || !(*ai)->ai_addr)
		return -1;
	if ((*ai)->ai_protocol != IPPROTO_TCP) {
		*tp = SIP_TP_UDP;
		return 0;
	}
	/* A stream: TCP or TLS. nta has matched the Via with the transport
	 * that delivered the request (see above); anything unexpected is
	 * taken as the weaker one. */
	proto = s && s->sip_via ? s->sip_via->v_protocol : NULL;
	*tp = proto && !strcasecmp(proto, "SIP/2.0/TLS") ? SIP_TP_TLS : SIP_TP_TCP;
	return 0;
}

int sip_request_transport(enum sip_transport *out)
{
	const su_addrinfo_t *ai;

	return current_source(&ai, out);
}

void sip_request_source(char *buf, size_t size)
{
	const su_addrinfo_t *ai;
	enum sip_transport tp;
	char host[64] = "?";

	buf[0] = '\0';
	if (current_source(&ai, &tp) < 0)
		return;
	if (ai->ai_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ai->ai_addr;
		inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "%s:[%s]:%u", names[tp], host, ntohs(s6->sin6_port));
	} else {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ai->ai_addr;
		inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%s:%u", names[tp], host, ntohs(s4->sin_port));
	}
}

int sip_received_transport(const char *received, enum sip_transport *out)
{
	char proto[8];
	const char *colon = strchr(received, ':');

	if (!colon || colon == received || (size_t)(colon - received) >= sizeof(proto))
		return -1;
	snprintf(proto, sizeof(proto), "%.*s", (int)(colon - received), received);
	return sip_transport_parse(proto, out);
}

bool sip_binding_allowed(const struct sip_endpoint *ep, const struct px_binding *b)
{
	enum sip_transport tp;

	if ((ep->transports & SIP_TP_ALL) == SIP_TP_ALL)
		return true;
	return sip_received_transport(b->received, &tp) == 0 && (ep->transports & SIP_TP_BIT(tp));
}

size_t sip_transport_filter(const struct sip_endpoint *ep, struct px_binding *b, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		if (!sip_binding_allowed(ep, &b[i])) {
			px_verbose(3,
				   "chan_sip: %s's contact %s came over %s, which its transport "
				   "setting does not allow; not calling it",
				   ep->name, b[i].contact, b[i].received);
			continue;
		}
		if (sip_flow_binding_gone(ep->name, &b[i])) {
			px_verbose(3,
				   "chan_sip: %s's contact %s: its connection %s is gone; not "
				   "calling it until it registers again",
				   ep->name, b[i].contact, b[i].received);
			continue;
		}
		if (kept != i)
			b[kept] = b[i];
		kept++;
	}
	return kept;
}

void sip_binding_proxy(const struct sip_endpoint *ep, const struct px_binding *b, char *out,
		       size_t size)
{
	/* Behind NAT the REGISTER's source is the only way in; an endpoint
	 * held to some transports is reached the way it registered (its
	 * Contact may name another transport, or none). */
	if (ep->nat || (ep->transports & SIP_TP_ALL) != SIP_TP_ALL)
		sip_proxy_from_received(b->received, out, size);
	else
		out[0] = '\0';
}
