/*
 * Address ACLs of chan_sip: a trunk's "match" (which sources are that
 * carrier) and [general] local_net (which peers see our own addresses).
 * An entry is an IPv4 or IPv6 address, a network in CIDR form
 * ("203.0.113.0/24", "2001:db8::/32"), or either with a leading "!" that
 * excludes it ("!203.0.113.66"). The entries are tried in order and the
 * first that holds the address decides; an address no entry holds does
 * not match. So "!203.0.113.66, 203.0.113.0/24" is the network but one
 * host, while "203.0.113.0/24, !203.0.113.66" is the whole network (the
 * exclusion comes too late). IPv4-mapped IPv6 sources ("::ffff:a.b.c.d")
 * are matched as the IPv4 address they are. Also the split of a bind
 * address ("host:port", "[v6]:port") into host and port, for the TLS check
 * and the overload control. No SIP stack here: the unit tests use this
 * file on its own.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip.h"

int sip_acl_parse(const char *text, struct sip_acl_entry *out)
{
	char addr[80];
	bool deny = false;
	const char *slash;
	size_t len;
	int max;

	while (*text == ' ' || *text == '\t')
		text++;
	if (*text == '!') {
		deny = true;
		text++;
	}
	slash = strchr(text, '/');
	len = slash ? (size_t)(slash - text) : strlen(text);
	if (len == 0 || len >= sizeof(addr))
		return -1;
	memcpy(addr, text, len);
	addr[len] = '\0';
	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, addr, out->addr) == 1) {
		out->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, addr, out->addr) == 1) {
		out->family = AF_INET6;
		max = 128;
	} else {
		return -1;
	}
	out->prefix = max;
	out->deny = deny;
	if (slash) {
		char *end;
		long p;
		if (slash[1] < '0' || slash[1] > '9')
			return -1;
		p = strtol(slash + 1, &end, 10);
		if (*end || p < 0 || p > max)
			return -1;
		out->prefix = (int)p;
	}
	return 0;
}

static bool prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
	int bytes = bits / 8, rest = bits % 8;

	if (memcmp(a, b, (size_t)bytes))
		return false;
	if (!rest)
		return true;
	unsigned char mask = (unsigned char)(0xff << (8 - rest));
	return (a[bytes] & mask) == (b[bytes] & mask);
}

bool sip_acl_match(const struct sip_acl_entry *acl, size_t n, const struct sockaddr *sa)
{
	unsigned char a[16];
	int family;

	if (!sa)
		return false;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(a, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
		if (IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr)) {
			family = AF_INET;
			memcpy(a, s6->sin6_addr.s6_addr + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(a, &s6->sin6_addr, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < n; i++)
		if (acl[i].family == family && prefix_equal(a, acl[i].addr, acl[i].prefix))
			return !acl[i].deny;
	return false;
}

void sip_acl_format(const struct sip_acl_entry *e, char *buf, size_t size)
{
	char addr[INET6_ADDRSTRLEN] = "?";

	inet_ntop(e->family, e->addr, addr, sizeof(addr));
	snprintf(buf, size, "%s%s/%d", e->deny ? "!" : "", addr, e->prefix);
}

int sip_bind_split(const char *bind, char *host, size_t hsize, char *port, size_t psize)
{
	const char *colon;

	if (bind[0] == '[') {
		const char *end = strchr(bind, ']');
		if (!end || end[1] != ':')
			return -1;
		snprintf(host, hsize, "%.*s", (int)(end - bind - 1), bind + 1);
		colon = end + 1;
	} else {
		colon = strrchr(bind, ':');
		if (!colon)
			return -1;
		snprintf(host, hsize, "%.*s", (int)(colon - bind), bind);
	}
	snprintf(port, psize, "%s", colon + 1);
	return 0;
}
