/*
 * Addressing of chan_sip behind NAT, and the TLS listener's settings: a PBX
 * on a private address that talks to a carrier on the Internet must show
 * the carrier its public address (external_signaling_address in Contact,
 * external_media_address in SDP) while phones on the LAN (local_net) keep
 * seeing the private one. Via is left to rport/received, which sofia-sip
 * and every carrier honour. This file checks those [general] options and
 * answers "is this peer outside?".
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <plexus/config.h>
#include <plexus/log.h>

#include "sip.h"

static int opt_error(const px_config_section *g, const char *key, px_err *err, const char *fmt,
		     const char *arg)
{
	const px_config_var *v = g ? px_config_var_find(g, key) : NULL;
	char msg[600];

	snprintf(msg, sizeof(msg), fmt, arg);
	return px_err_set(err, "%s:%d: %s: %s", v ? v->file : "sip.conf", v ? v->line : 0, key,
			  msg);
}

int sip_nat_config(const struct sip_nat_opts *o, const px_config_section *g, struct sip_config *c,
		   px_err *err)
{
	size_t n = 0;
	unsigned char buf[16];

	if (o->external_signaling_address) {
		if (strpbrk(o->external_signaling_address, " \t;<>@\"") ||
		    strlen(o->external_signaling_address) >= sizeof(c->external_signaling))
			return opt_error(g, "external_signaling_address", err,
					 "'%s' is not host[:port]", o->external_signaling_address);
		snprintf(c->external_signaling, sizeof(c->external_signaling), "%s",
			 o->external_signaling_address);
	}
	if (o->external_media_address) {
		if (inet_pton(AF_INET, o->external_media_address, buf) != 1 &&
		    inet_pton(AF_INET6, o->external_media_address, buf) != 1)
			return opt_error(g, "external_media_address", err,
					 "'%s' is not an IP address", o->external_media_address);
		snprintf(c->external_media, sizeof(c->external_media), "%s",
			 o->external_media_address);
	}
	while (o->local_net && o->local_net[n])
		n++;
	if (n) {
		c->local_net = calloc(n, sizeof(*c->local_net));
		if (!c->local_net)
			return px_err_set(err, "out of memory");
		for (size_t i = 0; i < n; i++)
			if (sip_acl_parse(o->local_net[i], &c->local_net[i]) < 0)
				return opt_error(g, "local_net", err,
						 "'%s' is not an address or network (a.b.c.d/nn)",
						 o->local_net[i]);
		c->nlocal_net = n;
	}
	if (sip_tls_version_parse(o->tls_min_version, &c->tls_min_version) < 0)
		return opt_error(g, "tls_min_version", err, "'%s' is not 1.2 or 1.3",
				 o->tls_min_version);
	if (o->tls_bind) {
		px_err terr = {""};
		if (!o->tls_cert_dir)
			return opt_error(g, "tls_bind", err, "%s",
					 "TLS needs tls_cert_dir (agent.pem, cafile.pem)");
		if (strlen(o->tls_bind) >= sizeof(c->tls_bind) ||
		    strlen(o->tls_cert_dir) >= sizeof(c->tls_cert_dir))
			return opt_error(g, "tls_bind", err, "%s", "value too long");
		snprintf(c->tls_bind, sizeof(c->tls_bind), "%s", o->tls_bind);
		snprintf(c->tls_cert_dir, sizeof(c->tls_cert_dir), "%s", o->tls_cert_dir);
		c->tls_verify_peer = o->tls_verify_peer;
		/* A certificate that cannot be used costs TLS only: phones and
		 * carriers on UDP and TCP keep working, and the reason is told
		 * (and kept for "sip show settings"). */
		if (sip_tls_check(o->tls_cert_dir, o->tls_verify_peer, &terr) < 0) {
			const px_config_var *v = g ? px_config_var_find(g, "tls_cert_dir") : NULL;
			snprintf(c->tls_problem, sizeof(c->tls_problem), "%s", terr.msg);
			px_log_error("chan_sip: %s:%d: tls_cert_dir: %s; TLS is off, UDP and TCP "
				     "are not affected",
				     v ? v->file : "sip.conf", v ? v->line : 0, terr.msg);
		} else {
			c->tls = true;
		}
	}
	return 0;
}

void sip_proxy_from_received(const char *received, char *out, size_t size)
{
	const char *colon = strchr(received, ':');

	out[0] = '\0';
	if (!colon || colon == received)
		return;
	snprintf(out, size, "sip:%s;transport=%.*s", colon + 1, (int)(colon - received), received);
}

bool sip_nat_external(const struct sip_config *c, const struct sockaddr *peer)
{
	if (!c->external_signaling[0] && !c->external_media[0])
		return false;
	return !sip_acl_match(c->local_net, c->nlocal_net, peer);
}

bool sip_trunk_is_local(const struct sip_config *c, const struct sip_trunk *t)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST}, *res;
	bool local = false;

	if (!c->external_signaling[0] && !c->external_media[0])
		return true;
	if (getaddrinfo(t->host, NULL, &hints, &res) != 0)
		return false; /* a carrier known by name is out there */
	local = !sip_nat_external(c, res->ai_addr);
	freeaddrinfo(res);
	return local;
}

void sip_nat_media_addr(const struct sip_config *c, bool external, struct sockaddr_storage *out)
{
	struct addrinfo hints = {.ai_flags = AI_NUMERICHOST}, *res;

	*out = sip.rtp_addr;
	if (!external || !c->external_media[0] ||
	    getaddrinfo(c->external_media, NULL, &hints, &res) != 0)
		return;
	memset(out, 0, sizeof(*out));
	memcpy(out, res->ai_addr, res->ai_addrlen);
	freeaddrinfo(res);
}
