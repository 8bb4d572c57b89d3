/*
 * Outbound registration of a trunk: Plexus as a UA registering its
 * contact_user with the carrier, on the SIP thread. One nua handle per
 * trunk keeps the Call-ID and CSeq across refreshes; sofia-sip refreshes a
 * granted registration before it expires and answers repeated challenges
 * with the credentials it was given once. This file owns the rest: the
 * first answer to a 401/407 (a second challenge after that means the
 * credentials were refused), and what happens after a failure. A trunk
 * never gives up: after a failure it waits retry_interval, doubled on each
 * further failure up to max_retry_interval, and cut by a random share of
 * up to 15 % so that many trunks do not retry in step; a 403 (or refused
 * credentials) is flagged Rejected and retried every
 * forbidden_retry_interval. Every change of state is told as a
 * TrunkRegistry event and logged.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_wait.h>

#include <plexus/event.h>
#include <plexus/log.h>

#include "sip.h"

enum reg_state { REG_UNREGISTERED, REG_REGISTERING, REG_REGISTERED, REG_REJECTED, REG_FAILED };

static const char *const state_names[] = {"Unregistered", "Registering", "Registered", "Rejected",
					  "Failed"};

struct sip_outreg {
	char name[64];
	struct sip_trunk t; /* the settings in use (match left out) */
	nua_handle_t *nh;
	su_timer_t *timer; /* the next attempt after a failure */
	enum reg_state state;
	bool auth_sent;  /* credentials went out since the last challenge-free answer */
	int failures;    /* in a row */
	int last_status; /* 0: none yet */
	char last_phrase[48];
	int granted;            /* s, from the last 200 */
	time_t next;            /* wall clock of the next attempt or refresh; 0: none */
	int retry_in;           /* s of the wait now running */
	char call_id[48];       /* kept across handles: one registration to the carrier */
	char last_contact[400]; /* the Contact the carrier granted, for un-REGISTER */
};

/* The jitter's generator: the SIP thread only. */
static unsigned long long rng;

static double jitter(void)
{
	if (!rng)
		rng = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32) ^
		      (unsigned long long)(uintptr_t)&rng;
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return 0.85 + 0.15 * (double)(rng % 10000) / 10000.0;
}

struct sip_outreg *sip_outreg_new(const char *trunk)
{
	struct sip_outreg *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	snprintf(r->name, sizeof(r->name), "%s", trunk);
	jitter();
	snprintf(r->call_id, sizeof(r->call_id), "plexus-reg-%016llx-%s", rng, trunk);
	r->timer = su_timer_create(su_root_task(sip.root), 1000);
	if (!r->timer) {
		free(r);
		return NULL;
	}
	return r;
}

static void tell(struct sip_outreg *r, enum reg_state state, int status, const char *phrase)
{
	enum reg_state old = r->state;

	r->state = state;
	r->last_status = status;
	snprintf(r->last_phrase, sizeof(r->last_phrase), "%s", phrase ? phrase : "");
	if (old != state) {
		if (state == REG_REGISTERED)
			px_verbose(1, "chan_sip: trunk %s: registered as %s (%d s)", r->name,
				   r->t.contact_user, r->granted);
		else if (state == REG_REJECTED || state == REG_FAILED)
			px_log_warning("chan_sip: trunk %s: registration %s: %d %s; next attempt "
				       "in %d s",
				       r->name, state == REG_REJECTED ? "rejected" : "failed",
				       status, r->last_phrase, r->retry_in);
	}
	PX_EVENT_EMIT(PX_EV_TRUNK_REGISTRY, NULL, NULL, PX_EVS("trunk", r->name),
		      PX_EVS("state", state_names[state]), PX_EVI("status", status),
		      PX_EVS("reason", r->last_phrase), PX_EVS("username", r->t.contact_user),
		      PX_EVI("retry_in", state == REG_REGISTERED ? -1 : r->retry_in),
		      PX_EVI("expires", state == REG_REGISTERED ? r->granted : 0));
}

static void attempt(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg);

/* Build the handle and send REGISTER. */
static void send_register(struct sip_outreg *r)
{
	char hp[300], registrar[320], aor[300], expires[16], contact[300] = "";
	struct sip_config *cfg = sip.config;

	sip_trunk_hostport(&r->t, hp, sizeof(hp));
	snprintf(registrar, sizeof(registrar), "sip:%s", hp);
	snprintf(aor, sizeof(aor), "<sip:%s@%s>", r->t.contact_user, r->t.from_domain);
	snprintf(expires, sizeof(expires), "%d", r->t.expiry);
	if (cfg && cfg->external_signaling[0] && !sip_trunk_is_local(cfg, &r->t))
		snprintf(contact, sizeof(contact), "<sip:%s@%s%s>", r->t.contact_user,
			 cfg->external_signaling,
			 r->t.transport == SIP_TP_TCP   ? ";transport=tcp"
			 : r->t.transport == SIP_TP_TLS ? ";transport=tls"
							: "");
	if (!r->nh) {
		r->nh = nua_handle(sip.nua, NULL, SIPTAG_TO_STR(aor), SIPTAG_FROM_STR(aor),
				   SIPTAG_CALL_ID_STR(r->call_id),
				   TAG_IF(r->t.outbound_proxy[0], NUTAG_PROXY(r->t.outbound_proxy)),
				   TAG_END());
		if (!r->nh) {
			r->retry_in = r->t.retry_interval;
			tell(r, REG_FAILED, 500, "cannot create a SIP handle");
			su_timer_set_interval(r->timer, attempt, (su_timer_arg_t *)r,
					      (su_duration_t)r->retry_in * 1000);
			return;
		}
	}
	r->auth_sent = false;
	r->next = 0;
	if (r->state != REG_REGISTERED)
		tell(r, REG_REGISTERING, r->last_status, r->last_phrase);
	/* A plain REGISTER transaction (nua_method), not sofia's registration
	 * usage: that one un-REGISTERs when its handle goes and resends stale
	 * requests after a failure; the schedule is ours (refresh timer). */
	nua_method(r->nh, NUTAG_METHOD("REGISTER"), NUTAG_URL(registrar),
		   SIPTAG_EXPIRES_STR(expires), TAG_IF(contact[0], SIPTAG_CONTACT_STR(contact)),
		   TAG_IF(!contact[0], NUTAG_M_USERNAME(r->t.contact_user)), TAG_END());
}

static void attempt(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	(void)m;
	(void)t;
	send_register((struct sip_outreg *)arg);
}

/* Settings whose change needs a new registration (a new handle). */
static bool same_registration(const struct sip_trunk *a, const struct sip_trunk *b)
{
	return !strcmp(a->host, b->host) && a->port == b->port && a->transport == b->transport &&
	       !strcmp(a->contact_user, b->contact_user) &&
	       !strcmp(a->from_domain, b->from_domain) && !strcmp(a->username, b->username) &&
	       !strcmp(a->secret, b->secret) && !strcmp(a->realm, b->realm) &&
	       !strcmp(a->outbound_proxy, b->outbound_proxy) && a->expiry == b->expiry;
}

/* Let go of a handle: un-REGISTER first when registered; trunk.c destroys
 * the handle when that answer comes. */
static void release_handle(struct sip_outreg *r)
{
	char hp[300], registrar[320], contact[400];

	if (!r->nh)
		return;
	if (r->state == REG_REGISTERED && r->last_contact[0]) {
		sip_trunk_hostport(&r->t, hp, sizeof(hp));
		snprintf(registrar, sizeof(registrar), "sip:%s", hp);
		snprintf(contact, sizeof(contact), "%s", r->last_contact);
		nua_method(r->nh, NUTAG_METHOD("REGISTER"), NUTAG_URL(registrar),
			   SIPTAG_EXPIRES_STR("0"), SIPTAG_CONTACT_STR(contact), TAG_END());
	} else {
		nua_handle_destroy(r->nh);
	}
	r->nh = NULL;
}

void sip_outreg_configure(struct sip_outreg *r, const struct sip_trunk *t)
{
	bool fresh = r->t.host[0] == '\0';

	if (!fresh && same_registration(&r->t, t)) {
		r->t = *t;
		r->t.match = NULL;
		r->t.nmatch = 0;
		return;
	}
	release_handle(r);
	r->t = *t;
	r->t.match = NULL;
	r->t.nmatch = 0;
	r->failures = 0;
	su_timer_reset(r->timer);
	tell(r, REG_UNREGISTERED, 0, fresh ? "" : "configuration changed");
	send_register(r);
}

void sip_outreg_destroy(struct sip_outreg *r)
{
	if (!r)
		return;
	release_handle(r);
	su_timer_destroy(r->timer);
	free(r);
}

/* The granted expiry: the Expires of our contact in the 200, else the
 * Expires header, else what we asked for. */
static int granted_expiry(const struct sip_outreg *r, sip_t const *s)
{
	if (s) {
		for (sip_contact_t const *m = s->sip_contact; m; m = m->m_next)
			if (m->m_expires && m->m_url->url_user &&
			    !strcmp(m->m_url->url_user, r->t.contact_user))
				return atoi(m->m_expires);
		if (s->sip_expires)
			return (int)s->sip_expires->ex_delta;
	}
	return r->t.expiry;
}

static void schedule_retry(struct sip_outreg *r, int base)
{
	su_timer_set_interval(r->timer, attempt, (su_timer_arg_t *)r,
			      (su_duration_t)(base * 1000 * jitter()));
	r->retry_in = base;
	r->next = time(NULL) + base;
}

bool sip_outreg_response(struct sip_outreg *r, int event, int status, nua_handle_t *nh,
			 const void *sipmsg)
{
	sip_t const *s = sipmsg;
	char auth[400];
	const char *phrase;

	if (nh != r->nh || event != nua_r_method)
		return false;
	if (status < 200)
		return true;
	phrase = s && s->sip_status && s->sip_status->st_phrase ? s->sip_status->st_phrase
								: sip_status_phrase(status);
	if (status < 300) {
		if (s && s->sip_contact) {
			char *m = sip_header_as_string(NULL, (sip_header_t const *)s->sip_contact);
			if (m) {
				char *semi = strchr(m, '>');
				snprintf(r->last_contact, sizeof(r->last_contact), "%.*s",
					 semi ? (int)(semi - m + 1) : (int)strlen(m), m);
				su_free(NULL, m);
			}
		}
		r->failures = 0;
		r->auth_sent = false;
		r->granted = granted_expiry(r, s);
		r->retry_in = 0;
		/* Refresh about half-way, a little earlier at random. */
		int refresh = r->granted > 1 ? r->granted / 2 : 1;
		su_timer_set_interval(r->timer, attempt, (su_timer_arg_t *)r,
				      (su_duration_t)(refresh * 1000 * jitter()));
		r->next = time(NULL) + refresh;
		tell(r, REG_REGISTERED, status, phrase);
		return true;
	}
	if ((status == 401 || status == 407) && !r->auth_sent &&
	    sip_trunk_auth_string(&r->t, s, auth, sizeof(auth)) == 0) {
		r->auth_sent = true;
		nua_authenticate(nh, NUTAG_AUTH(auth), TAG_END());
		return true;
	}
	if (status == 401 || status == 407 || status == 403) {
		/* Refused credentials: retrying soon would only lock the account. */
		r->failures++;
		schedule_retry(r, r->t.forbidden_retry_interval);
		tell(r, REG_REJECTED, status, phrase);
		return true;
	}
	r->failures++;
	long long wait = r->t.retry_interval;
	for (int i = 1; i < r->failures && wait < r->t.max_retry_interval; i++)
		wait *= 2;
	if (wait > r->t.max_retry_interval)
		wait = r->t.max_retry_interval;
	if (s && s->sip_retry_after && (long long)s->sip_retry_after->af_delta > wait)
		wait = s->sip_retry_after->af_delta < (sip_time_t)r->t.max_retry_interval
			       ? (long long)s->sip_retry_after->af_delta
			       : r->t.max_retry_interval;
	schedule_retry(r, (int)wait);
	tell(r, REG_FAILED, status, phrase);
	return true;
}

const char *sip_outreg_state(const struct sip_outreg *r)
{
	return state_names[r->state];
}

void sip_outreg_show(struct sip_outreg *r, char *buf, size_t size)
{
	char user[400], last[64] = "-", next[80] = "-", refresh[16] = "-";
	time_t now = time(NULL);

	snprintf(user, sizeof(user), "%s@%s", r->t.contact_user, r->t.host);
	if (r->last_status)
		snprintf(last, sizeof(last), "%d %s", r->last_status, r->last_phrase);
	if (r->state == REG_REGISTERED)
		snprintf(refresh, sizeof(refresh), "%d", r->granted);
	if (r->next) {
		struct tm tm;
		char at[16];
		localtime_r(&r->next, &tm);
		strftime(at, sizeof(at), "%H:%M:%S", &tm);
		snprintf(next, sizeof(next), "%s in %llds (%s)",
			 r->state == REG_REGISTERED ? "refresh" : "retry",
			 (long long)(r->next > now ? r->next - now : 0), at);
	}
	snprintf(buf, size, "%-16s %-32s %-8s %-12s %-24s %s", r->name, user, refresh,
		 state_names[r->state], last, next);
}
