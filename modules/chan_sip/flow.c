/*
 * Connections (flows) of TCP and TLS registrations that are gone. A phone
 * registered over TCP or TLS is reached through the connection its
 * REGISTER came on (the binding's received address); a phone behind NAT or
 * a firewall cannot accept a new one there. When that connection closes,
 * the binding stays until it expires (as Asterisk's PJSIP keeps it), and
 * every call to it would try to connect to the phone's old source port:
 * refused at once on a LAN, but lost for Timer B (32 s) behind NAT. So the
 * first call that fails that way (a 503 or 408 that sofia-sip made itself:
 * nothing came from the phone) marks the flow gone with a log line, later calls skip
 * it at once, and a successful REGISTER from that address clears the mark
 * (a phone that connects again from another port makes a new binding).
 * sofia-sip 1.12.11 tells the application nothing when a connection
 * closes, so a failed attempt is the first sign. Any thread; one mutex.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sofia-sip/nta.h>

#include <plexus/location.h>
#include <plexus/log.h>

#include "sip.h"

#define MAX_GONE 1024 /* the oldest mark is forgotten past this */

struct gone {
	char endpoint[64];
	char proxy[260]; /* "sip:1.2.3.4:5061;transport=tls" */
	struct gone *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct gone *list; /* newest first */
static size_t count;

/* A request through proxy goes over a stream to a phone's source address. */
static bool is_stream(const char *proxy)
{
	return strstr(proxy, ";transport=tcp") || strstr(proxy, ";transport=tls");
}

void sip_flow_failed(const char *endpoint, const char *proxy, int status, const void *sipmsg)
{
	struct gone *g, **pp;

	/* nta makes such responses itself when it could not send the
	 * request (503) or nothing came back (408). */
	if ((status != 503 && status != 408) || !nta_sip_is_internal(sipmsg))
		return;
	if (!proxy[0] || !is_stream(proxy) || sip_flow_gone(endpoint, proxy))
		return;
	g = calloc(1, sizeof(*g));
	if (!g)
		return;
	snprintf(g->endpoint, sizeof(g->endpoint), "%s", endpoint);
	snprintf(g->proxy, sizeof(g->proxy), "%s", proxy);
	pthread_mutex_lock(&lock);
	g->next = list;
	list = g;
	if (++count > MAX_GONE) {
		for (pp = &list; (*pp)->next; pp = &(*pp)->next)
			;
		free(*pp);
		*pp = NULL;
		count--;
	}
	pthread_mutex_unlock(&lock);
	px_log_notice("chan_sip: %s's connection %s is gone (%d, no answer from it); it stays "
		      "registered but is not called until it registers again",
		      endpoint, proxy, status);
}

bool sip_flow_gone(const char *endpoint, const char *proxy)
{
	bool gone = false;

	pthread_mutex_lock(&lock);
	for (const struct gone *g = list; g && !gone; g = g->next)
		gone = !strcmp(g->endpoint, endpoint) && !strcmp(g->proxy, proxy);
	pthread_mutex_unlock(&lock);
	return gone;
}

bool sip_flow_binding_gone(const char *endpoint, const struct px_binding *b)
{
	char proxy[260];

	sip_proxy_from_received(b->received, proxy, sizeof(proxy));
	return proxy[0] && sip_flow_gone(endpoint, proxy);
}

void sip_flow_registered(const char *endpoint, const char *received)
{
	char proxy[260];

	sip_proxy_from_received(received, proxy, sizeof(proxy));
	pthread_mutex_lock(&lock);
	for (struct gone **pp = &list; *pp;) {
		struct gone *g = *pp;
		if (strcmp(g->endpoint, endpoint) || strcmp(g->proxy, proxy)) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		free(g);
		count--;
	}
	pthread_mutex_unlock(&lock);
}

void sip_flow_forget_all(void)
{
	pthread_mutex_lock(&lock);
	while (list) {
		struct gone *g = list;
		list = g->next;
		free(g);
	}
	count = 0;
	pthread_mutex_unlock(&lock);
}
