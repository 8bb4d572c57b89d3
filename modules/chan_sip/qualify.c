/*
 * Qualify of endpoints' registered contacts ("qualify = yes|SECONDS" on an
 * endpoint): an OPTIONS to each contact every interval, its round-trip
 * time, and Reachable or Unreachable, shown by "sip show endpoints" and
 * "sip show endpoint", told as ContactReachability events, and used by
 * calls: a contact found Unreachable is not rung. A phone that vanished
 * without unregistering (power cut, network gone) is thus skipped until it
 * answers again, instead of making every call to it wait for a timeout.
 *
 * The SIP thread owns the list of qualified contacts; a one-second tick
 * follows the registrar (new contacts, and contacts that register again,
 * are asked at once; contacts that went away are dropped) and sends what
 * is due. Trunks are qualified by
 * trunk.c; this is the same rule for answers: any response means the
 * contact is there, except 408 and 503 (sofia's words for silence or a
 * transport error). What other threads read is under one mutex.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_wait.h>

#include <plexus/event.h>
#include <plexus/location.h>
#include <plexus/log.h>

#include "sip.h"

enum reach { REACH_UNKNOWN, REACH_YES, REACH_NO };

struct qcontact {
	char endpoint[64];
	char contact[PX_CONTACT_MAX];
	/* SIP thread only */
	char proxy[260];      /* where requests go (NAT: the REGISTER's source), or "" */
	nua_handle_t *nh;     /* the OPTIONS in flight */
	su_timer_t *deadline; /* no answer by then: Unreachable */
	long long sent_ms, next_ms;
	int64_t registered_at; /* of the binding when last seen */
	int timeout_ms;
	bool seen; /* still registered and qualified (tick) */
	/* under lock */
	enum reach reach;
	int rtt_ms;
	struct qcontact *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct qcontact *list;
static su_timer_t *tick_timer;

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct qcontact *find(const char *endpoint, const char *contact)
{
	for (struct qcontact *q = list; q; q = q->next)
		if (!strcmp(q->endpoint, endpoint) && !strcmp(q->contact, contact))
			return q;
	return NULL;
}

static void set_reach(struct qcontact *q, enum reach reach, int rtt)
{
	enum reach old;

	pthread_mutex_lock(&lock);
	old = q->reach;
	q->reach = reach;
	q->rtt_ms = rtt;
	pthread_mutex_unlock(&lock);
	if (old == reach)
		return;
	if (reach == REACH_NO)
		px_log_warning(
			"chan_sip: %s's contact %s is Unreachable (no answer to OPTIONS in %d "
			"ms)",
			q->endpoint, q->contact, q->timeout_ms);
	else
		px_verbose(1, "chan_sip: %s's contact %s is Reachable (%d ms)", q->endpoint,
			   q->contact, rtt);
	PX_EVENT_EMIT(PX_EV_CONTACT_REACHABILITY, NULL, NULL, PX_EVS("endpoint", q->endpoint),
		      PX_EVS("contact", q->contact),
		      PX_EVS("reachable", reach == REACH_YES ? "yes" : "no"),
		      PX_EVI("rtt_ms", reach == REACH_YES ? rtt : -1));
}

static void options_end(struct qcontact *q)
{
	if (q->nh) {
		nua_handle_destroy(q->nh);
		q->nh = NULL;
	}
	if (q->deadline)
		su_timer_reset(q->deadline);
}

static void on_deadline(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct qcontact *q = (struct qcontact *)arg;

	(void)m;
	(void)t;
	if (!q->nh)
		return;
	options_end(q);
	set_reach(q, REACH_NO, -1);
}

static void send_options(struct qcontact *q)
{
	char to[PX_CONTACT_MAX + 2];

	if (!q->deadline)
		q->deadline = su_timer_create(su_root_task(sip.root), (su_duration_t)q->timeout_ms);
	snprintf(to, sizeof(to), "<%s>", q->contact);
	q->nh = nua_handle(sip.nua, NULL, NUTAG_URL(q->contact), SIPTAG_TO_STR(to),
			   TAG_IF(q->proxy[0], NUTAG_PROXY(q->proxy)), TAG_END());
	if (!q->nh || !q->deadline)
		return;
	q->sent_ms = mono_ms();
	nua_options(q->nh, TAG_END());
	su_timer_set_interval(q->deadline, on_deadline, (su_timer_arg_t *)q,
			      (su_duration_t)q->timeout_ms);
}

static void q_free(struct qcontact *q)
{
	options_end(q);
	su_timer_destroy(q->deadline);
	free(q);
}

/* One contact of a qualified endpoint, seen at this tick. */
static void visit(const struct sip_endpoint *ep, const struct px_binding *b, long long now)
{
	struct qcontact *q = find(ep->name, b->contact);

	if (!q) {
		q = calloc(1, sizeof(*q));
		if (!q)
			return;
		snprintf(q->endpoint, sizeof(q->endpoint), "%s", ep->name);
		snprintf(q->contact, sizeof(q->contact), "%s", b->contact);
		pthread_mutex_lock(&lock);
		q->next = list;
		list = q;
		pthread_mutex_unlock(&lock);
	}
	q->seen = true;
	/* A contact that registers again is asked at once: a phone back
	 * after an outage should not wait a whole interval to be rung. */
	if (b->registered_at != q->registered_at) {
		q->registered_at = b->registered_at;
		q->next_ms = 0;
	}
	q->timeout_ms = ep->qualify_timeout_ms;
	sip_binding_proxy(ep, b, q->proxy, sizeof(q->proxy));
	if (!q->nh && now >= q->next_ms) {
		q->next_ms = now + (long long)ep->qualify * 1000;
		send_options(q);
	}
}

static void tick(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	const struct sip_config *cfg = sip.config;
	long long now = mono_ms();
	struct px_binding b[16];

	(void)m;
	(void)t;
	(void)arg;
	for (struct qcontact *q = list; q; q = q->next)
		q->seen = false;
	for (size_t i = 0; cfg && i < cfg->nendpoints; i++) {
		const struct sip_endpoint *ep = &cfg->endpoints[i];
		size_t n;
		if (!ep->qualify)
			continue;
		n = px_location_lookup(ep->name, b, sizeof(b) / sizeof(b[0]));
		for (size_t k = 0; k < n && k < sizeof(b) / sizeof(b[0]); k++)
			if (sip_binding_allowed(ep, &b[k])) /* never rung: not asked */
				visit(ep, &b[k], now);
	}
	/* Contacts gone (unregistered, expired) or no longer qualified. */
	pthread_mutex_lock(&lock);
	for (struct qcontact **pp = &list; *pp;) {
		struct qcontact *q = *pp;
		if (q->seen) {
			pp = &q->next;
			continue;
		}
		*pp = q->next;
		pthread_mutex_unlock(&lock);
		q_free(q);
		pthread_mutex_lock(&lock);
	}
	pthread_mutex_unlock(&lock);
}

int sip_qualify_start(struct su_root_s *root)
{
	tick_timer = su_timer_create(su_root_task(root), 1000);
	if (!tick_timer || su_timer_set_for_ever(tick_timer, tick, NULL) < 0) {
		su_timer_destroy(tick_timer);
		tick_timer = NULL;
		return -1;
	}
	return 0;
}

void sip_qualify_stop(void)
{
	struct qcontact *l;

	su_timer_destroy(tick_timer);
	tick_timer = NULL;
	pthread_mutex_lock(&lock);
	l = list;
	list = NULL;
	pthread_mutex_unlock(&lock);
	while (l) {
		struct qcontact *next = l->next;
		q_free(l);
		l = next;
	}
}

bool sip_qualify_response(int event, int status, nua_handle_t *nh, const void *sipmsg)
{
	if (event != nua_r_options)
		return false;
	for (struct qcontact *q = list; q; q = q->next) {
		if (q->nh != nh)
			continue;
		if (status < 200)
			return true;
		options_end(q);
		if (sipmsg && status != 408 && status != 503)
			set_reach(q, REACH_YES, (int)(mono_ms() - q->sent_ms));
		else
			set_reach(q, REACH_NO, -1);
		return true;
	}
	return false;
}

bool sip_qualify_usable(const char *endpoint, const char *contact)
{
	bool ok = true;

	pthread_mutex_lock(&lock);
	struct qcontact *q = find(endpoint, contact);
	if (q && q->reach == REACH_NO)
		ok = false;
	pthread_mutex_unlock(&lock);
	return ok;
}

void sip_qualify_status(const char *endpoint, const char *contact, char *buf, size_t size)
{
	pthread_mutex_lock(&lock);
	struct qcontact *q = find(endpoint, contact);
	if (!q || q->reach == REACH_UNKNOWN)
		snprintf(buf, size, "UNKNOWN");
	else if (q->reach == REACH_YES)
		snprintf(buf, size, "OK (%d ms)", q->rtt_ms);
	else
		snprintf(buf, size, "UNREACHABLE");
	pthread_mutex_unlock(&lock);
}

void sip_qualify_summary(const char *endpoint, char *buf, size_t size)
{
	int yes = 0, no = 0, best = -1;

	pthread_mutex_lock(&lock);
	for (struct qcontact *q = list; q; q = q->next) {
		if (strcmp(q->endpoint, endpoint))
			continue;
		if (q->reach == REACH_YES) {
			yes++;
			if (best < 0 || q->rtt_ms < best)
				best = q->rtt_ms;
		} else if (q->reach == REACH_NO) {
			no++;
		}
	}
	pthread_mutex_unlock(&lock);
	if (yes)
		snprintf(buf, size, "OK (%d ms)", best);
	else if (no)
		snprintf(buf, size, "UNREACHABLE");
	else
		snprintf(buf, size, "UNKNOWN");
}
