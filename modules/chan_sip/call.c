/*
 * Calls for chan_sip: the channel technology "SIP". An inbound INVITE is
 * authenticated, its SDP offer answered from the codecs both sides allow,
 * a channel made and its dialplan started; an outbound channel ("SIP/1002")
 * rings every registered contact of the endpoint at once and keeps the
 * first that answers. Responses, BYE, CANCEL and re-INVITEs (hold) become
 * events on the channel; the channel's operations (answer, indicate,
 * hangup) are posted to the SIP thread, the only one touching nua handles.
 *
 * Ownership: the channel holds the call (its private part) until the
 * channel is destroyed. While any SIP dialog of the call lives, the call
 * holds a reference to the channel, so events can always be queued.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_wait.h>
#include <sofia-sip/url.h>

#include <plexus/codec.h>
#include <plexus/dialplan.h>
#include <plexus/location.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/moh.h>

#include "sip.h"

px_module *sip_module;

/* Contacts of one endpoint rung at once by an outbound call. */
#define MAX_CONTACTS 16

struct sip_call;

/* One SIP dialog of a call: the inbound INVITE, or one fork of an outbound
 * call. It is the nua handle's magic. */
struct sip_leg {
	struct sip_call *call;
	nua_handle_t *nh;
	/* Outbound: the contact rung, and where to send it (NAT, outbound
	 * proxy) or "", in one block that uri owns; NULL inbound. */
	char *uri, *proxy;
	bool terminated;
	bool auth_sent; /* outbound: credentials answered a challenge */
	int status;     /* last final status of an outbound fork */
	struct sip_leg *next;
};

struct sip_call {
	atomic_int refs;
	px_channel *chan; /* held while legs_alive > 0 */
	bool outbound;
	char endpoint[64];
	bool nat;
	px_rtp *rtp;
	struct sip_payload payloads[SIP_MAX_CODECS]; /* our offer, or the one codec answered */
	int npayloads;
	struct sip_event events[SIP_MAX_EVENTS]; /* our offer's, or the one answered */
	int nevents;
	char allowed[SIP_MAX_CODECS][SIP_CODEC_NAME]; /* the endpoint's codecs, preferred first */
	int nallowed;
	enum sip_dtmf_mode dtmf_mode;
	bool rtcp_mux;
	struct px_rtp_codec codec; /* in use (SIP thread, and request before the call starts) */
	uint64_t sdp_id;
	unsigned sdp_version;
	char from_num[80], from_name[80]; /* outbound: identity presented */
	char *to_uri;                     /* outbound: the To, or NULL */
	/* Trunks (trunk.c) and NAT (nat.c): */
	struct sip_trunk *trunk;          /* out through a trunk: its settings (no ACL) */
	bool restricted;                  /* the caller withholds the number */
	char *forward_headers;            /* Diversion/History-Info to pass on, or NULL */
	struct sockaddr_storage sdp_addr; /* the address our SDP gives */
	char *contact;                    /* our Contact for a peer outside local_net, or NULL */

	/* SIP thread only: */
	struct sip_leg *legs;
	int legs_alive;
	struct sip_leg *winner; /* outbound: the fork that answered */
	bool final_sent;        /* inbound: a final response went out */
	bool answered;          /* inbound: that response was our 200 */
	bool ringing_queued;
	bool progress_queued;
	bool remote_hold;  /* the far end put us on hold */
	int our_direction; /* what our last SDP said */
	bool hangup_done;

	/* RTP timeout (SIP thread only): */
	int rtp_timeout, rtp_timeout_hold;
	struct sip_call *watch_prev, *watch_next; /* in the watch list: a reference */
	bool watched, watch_held;
	uint64_t watch_rx;        /* packets received at the last change */
	long long watch_since_ms; /* when they last changed */
};

static atomic_size_t calls_active;

size_t sip_calls_active(void)
{
	return atomic_load(&calls_active);
}

static struct sip_call *call_ref(struct sip_call *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

static void call_unref(struct sip_call *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	if (c->rtp)
		px_rtp_destroy(c->rtp);
	free(c->trunk);
	free(c->forward_headers);
	free(c->to_uri);
	free(c->contact);
	while (c->legs) {
		struct sip_leg *next = c->legs->next;
		free(c->legs->uri);
		free(c->legs);
		c->legs = next;
	}
	free(c);
	atomic_fetch_sub(&calls_active, 1);
	px_module_unuse(sip_module);
}

static struct sip_call *call_new(bool outbound, const struct sip_endpoint *ep)
{
	struct sip_call *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	atomic_init(&c->refs, 1);
	c->outbound = outbound;
	snprintf(c->endpoint, sizeof(c->endpoint), "%s", ep->name);
	c->nat = ep->nat;
	c->rtp_timeout = ep->rtp_timeout;
	c->rtp_timeout_hold = ep->rtp_timeout_hold;
	memcpy(c->allowed, ep->codecs, sizeof(c->allowed));
	c->nallowed = ep->ncodecs;
	c->dtmf_mode = ep->dtmf_mode;
	c->codec.pt = -1;
	c->codec.dtmf_pt = -1;
	c->sdp_id = ((uint64_t)time(NULL) << 16) ^ (uint64_t)(uintptr_t)c;
	c->our_direction = SIP_SENDRECV;
	c->sdp_addr = sip.rtp_addr;
	atomic_fetch_add(&calls_active, 1);
	px_module_use(sip_module);
	return c;
}

static struct sip_leg *leg_new(struct sip_call *c)
{
	struct sip_leg *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->call = c;
	l->next = c->legs;
	c->legs = l;
	if (c->legs_alive++ == 0)
		px_channel_ref(c->chan);
	return l;
}

/* A planned outbound leg (not yet a dialog) to uri, sent through proxy
 * ("" for none); NULL when memory ran out. */
static struct sip_leg *leg_plan(struct sip_call *c, const char *uri, const char *proxy)
{
	size_t ul = strlen(uri) + 1, pl = strlen(proxy) + 1;
	struct sip_leg *l = calloc(1, sizeof(*l));

	if (!l || !(l->uri = malloc(ul + pl))) {
		free(l);
		return NULL;
	}
	memcpy(l->uri, uri, ul);
	l->proxy = memcpy(l->uri + ul, proxy, pl);
	l->call = c;
	return l;
}

/* ---- RTP timeout ----
 *
 * A phone that lost power or network never sends BYE; without this its
 * call would stay Up, holding the other party, a channel and two RTP ports.
 * Answered calls whose endpoint sets rtp_timeout (or rtp_timeout_hold) are
 * on a list that a one-second timer on the SIP thread walks: a call whose
 * received-packet count has not moved for the timeout is hung up. Only the
 * SIP thread touches the list. */

static struct sip_call *watch_head;
static su_timer_t *watch_timer;

static long long monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool call_held(const struct sip_call *c)
{
	return c->remote_hold || c->our_direction != SIP_SENDRECV;
}

/* Start watching an answered call; SIP thread. */
static void watch_add(struct sip_call *c)
{
	if (c->watched || !c->rtp || (!c->rtp_timeout && !c->rtp_timeout_hold))
		return;
	struct px_rtp_stats st;
	px_rtp_get_stats(c->rtp, &st);
	c->watch_rx = st.rx_packets;
	c->watch_since_ms = monotonic_ms();
	c->watch_held = call_held(c);
	c->watched = true;
	c->watch_prev = NULL;
	c->watch_next = watch_head;
	if (watch_head)
		watch_head->watch_prev = c;
	watch_head = call_ref(c);
}

static void watch_remove(struct sip_call *c)
{
	if (!c->watched)
		return;
	if (c->watch_prev)
		c->watch_prev->watch_next = c->watch_next;
	else
		watch_head = c->watch_next;
	if (c->watch_next)
		c->watch_next->watch_prev = c->watch_prev;
	c->watched = false;
	c->watch_prev = c->watch_next = NULL;
	call_unref(c);
}

static void watch_tick(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	long long now = monotonic_ms();
	struct sip_call *c = watch_head;

	(void)magic;
	(void)t;
	(void)arg;
	while (c) {
		struct sip_call *next = c->watch_next;
		struct px_rtp_stats st;
		bool held = call_held(c);
		int timeout = held ? c->rtp_timeout_hold : c->rtp_timeout;

		if (c->hangup_done || px_channel_is_hungup(c->chan)) {
			watch_remove(c);
			c = next;
			continue;
		}
		px_rtp_get_stats(c->rtp, &st);
		if (st.rx_packets != c->watch_rx || held != c->watch_held) {
			/* Holding or resuming starts the count afresh. */
			c->watch_rx = st.rx_packets;
			c->watch_held = held;
			c->watch_since_ms = now;
		} else if (timeout > 0 && now - c->watch_since_ms >= timeout * 1000LL) {
			px_log_notice("chan_sip: %s: no RTP for %d s%s; hanging up",
				      px_channel_name(c->chan), timeout, held ? " on hold" : "");
			px_channel_hangup(c->chan, PX_CAUSE_NETWORK_OUT_OF_ORDER);
			watch_remove(c);
		}
		c = next;
	}
}

int sip_rtp_watch_start(struct su_root_s *root)
{
	watch_timer = su_timer_create(su_root_task(root), 1000);
	if (!watch_timer || su_timer_set_for_ever(watch_timer, watch_tick, NULL) < 0) {
		su_timer_destroy(watch_timer);
		watch_timer = NULL;
		return -1;
	}
	return 0;
}

void sip_rtp_watch_stop(void)
{
	while (watch_head)
		watch_remove(watch_head);
	su_timer_destroy(watch_timer);
	watch_timer = NULL;
}

/* The dialog is over: release its handle; the last one lets the channel go. */
static void leg_terminated(struct sip_leg *l)
{
	struct sip_call *c = l->call;

	if (l->terminated)
		return;
	l->terminated = true;
	if (l->nh) {
		nua_handle_bind(l->nh, NULL);
		nua_handle_destroy(l->nh);
		l->nh = NULL;
	}
	if (--c->legs_alive == 0) {
		watch_remove(c);
		/* If the far end vanished without BYE, the session must still learn it. */
		if (!px_channel_is_hungup(c->chan))
			px_channel_queue_hangup(c->chan, PX_CAUSE_NORMAL_CLEARING);
		px_channel_unref(c->chan);
	}
}

static int build_sdp(struct sip_call *c, char *buf, size_t size, int direction)
{
	c->our_direction = direction;
	return sip_sdp_build(buf, size, &c->sdp_addr, px_rtp_local_port(c->rtp), c->payloads,
			     c->npayloads, c->events, c->nevents, direction, c->rtcp_mux, c->sdp_id,
			     c->sdp_version++);
}

/* The codec to use from the far end's SDP m: in our preference order for an
 * offer, in its order for an answer to our offer (limited to what we
 * offered); false when none fits. */
static bool choose_codec(const struct sip_call *c, const struct sip_media *m, bool answer,
			 struct sip_payload *chosen)
{
	if (answer) {
		for (int k = 0; k < m->npayloads; k++)
			for (int i = 0; i < c->npayloads; i++)
				if (m->payloads[k].format == c->payloads[i].format) {
					*chosen = m->payloads[k];
					return true;
				}
		return false;
	}
	for (int i = 0; i < c->nallowed; i++) {
		const struct px_format *f = px_format_find(c->allowed[i]);
		for (int k = 0; f && k < m->npayloads; k++)
			if (m->payloads[k].format == f) {
				*chosen = m->payloads[k];
				return true;
			}
	}
	return false;
}

/* Use p (from the far end's SDP m) from now on; true when that changed the
 * format or payload type in use. */
static void set_inband(struct sip_call *c);

static bool use_codec(struct sip_call *c, const struct sip_payload *p, const struct sip_media *m)
{
	struct px_rtp_codec nc = {
		.format = p->format, .pt = p->pt, .ptime = m->ptime ? m->ptime : 20};
	bool changed;
	unsigned clock = 0;

	snprintf(nc.fmtp, sizeof(nc.fmtp), "%s", p->fmtp);
	/* Events only in the modes that use them, at the audio's clock. */
	nc.dtmf_pt = c->dtmf_mode == SIP_DTMF_RFC4733 || c->dtmf_mode == SIP_DTMF_AUTO
			     ? sip_sdp_event_for(m, p->format->rtp_clock, &clock)
			     : -1;
	nc.dtmf_clock = nc.dtmf_pt >= 0 ? clock : 0;
	changed = c->codec.format &&
		  (c->codec.format != nc.format || c->codec.pt != nc.pt ||
		   c->codec.dtmf_pt != nc.dtmf_pt || c->codec.dtmf_clock != nc.dtmf_clock);
	c->codec = nc;
	c->nevents = nc.dtmf_pt >= 0;
	c->events[0] = (struct sip_event){.pt = nc.dtmf_pt, .clock = nc.dtmf_clock};
	c->rtcp_mux = m->rtcp_mux;
	px_rtp_set_codec(c->rtp, &nc);
	px_rtp_set_rtcp_mux(c->rtp, m->rtcp_mux);
	set_inband(c);
	return changed;
}

/* An RFC 4733 digit from the far end, on the media worker. The handler is
 * installed once c->chan is set and removed before the channel goes (in
 * tech_destroy), so c->chan is alive whenever it runs. */
static void rtp_dtmf(void *arg, char digit, bool begin, unsigned duration_ms)
{
	struct sip_call *c = arg;

	px_channel_queue_dtmf_from(c->chan, digit, begin, (int)duration_ms, PX_DTMF_RTP);
}

/* A digit heard as tones in the far end's audio, on the media worker
 * (same lifetime rules as rtp_dtmf). */
static void inband_dtmf(void *arg, char digit, bool begin, unsigned duration_ms)
{
	struct sip_call *c = arg;

	px_channel_queue_dtmf_from(c->chan, digit, begin, (int)duration_ms, PX_DTMF_INBAND);
}

/* Listen for tones on legs in inband mode, or auto without events; set
 * again whenever the codec changes. Only once the channel exists. */
static void set_inband(struct sip_call *c)
{
	bool want = c->dtmf_mode == SIP_DTMF_INBAND ||
		    (c->dtmf_mode == SIP_DTMF_AUTO && c->codec.dtmf_pt < 0);
	px_err err = {""};

	if (!c->chan || !c->rtp)
		return;
	if (!want || !c->codec.format) {
		px_rtp_set_inband(c->rtp, NULL, NULL, NULL);
		return;
	}
	if (px_rtp_set_inband(c->rtp, inband_dtmf, c, &err) < 0)
		px_log_warning("chan_sip: %s: no inband DTMF: %s", px_channel_name(c->chan),
			       err.msg);
}

/* How digits reach this leg's far end now: RFC 4733 when the leg's mode
 * allows events and its SDP negotiated them, else INFO or inband tones. */
static enum sip_dtmf_mode send_mode(struct sip_call *c)
{
	struct px_rtp_codec codec;

	if (c->dtmf_mode == SIP_DTMF_INFO || c->dtmf_mode == SIP_DTMF_INBAND)
		return c->dtmf_mode;
	px_rtp_get_codec(c->rtp, &codec);
	if (codec.dtmf_pt >= 0)
		return SIP_DTMF_RFC4733;
	/* rfc4733 without events on the far end: INFO is all that is left. */
	return c->dtmf_mode == SIP_DTMF_AUTO ? SIP_DTMF_INBAND : SIP_DTMF_INFO;
}

struct info_req {
	struct sip_call *call;
	char digit;
	unsigned duration_ms;
};

static void do_info(void *arg)
{
	struct info_req *req = arg;
	struct sip_call *c = req->call;
	struct sip_leg *l = c->outbound ? c->winner : c->legs;
	char body[64];

	if (l && l->nh && !l->terminated && !c->hangup_done) {
		sip_dtmf_info_body(req->digit, req->duration_ms, body, sizeof(body));
		nua_info(l->nh, SIPTAG_CONTENT_TYPE_STR("application/dtmf-relay"),
			 SIPTAG_PAYLOAD_STR(body), TAG_END());
	}
	call_unref(c);
	free(req);
}

static int tech_send_dtmf(px_channel *ch, char digit, unsigned duration_ms,
			  enum px_dtmf_origin origin)
{
	struct sip_call *c = px_channel_pvt(ch);
	struct info_req *req;

	switch (send_mode(c)) {
	case SIP_DTMF_RFC4733:
		return px_rtp_send_dtmf(c->rtp, digit, duration_ms);
	case SIP_DTMF_INBAND:
		/* Tones heard on the other leg reach this one in the audio. */
		if (origin == PX_DTMF_INBAND && px_rtp_bridged(c->rtp))
			return 0;
		return px_rtp_send_tone(c->rtp, digit, duration_ms);
	default:
		break;
	}
	req = malloc(sizeof(*req));
	if (!req)
		return -1;
	req->call = call_ref(c);
	req->digit = digit;
	req->duration_ms = duration_ms;
	if (sip_post(do_info, req) < 0) {
		call_unref(c);
		free(req);
		return -1;
	}
	return 0;
}

/* ---- cause and status ---- */

static int status_for_cause(int cause)
{
	switch (cause) {
	case PX_CAUSE_UNALLOCATED:
		return 404;
	case PX_CAUSE_USER_BUSY:
		return 486;
	case PX_CAUSE_NO_USER_RESPONSE:
		return 408;
	case PX_CAUSE_NO_ANSWER:
	case PX_CAUSE_SUBSCRIBER_ABSENT:
		return 480;
	case PX_CAUSE_CALL_REJECTED:
		return 603;
	case PX_CAUSE_CONGESTION:
		return 503;
	case PX_CAUSE_INCOMPATIBLE_DESTINATION:
	case PX_CAUSE_BEARER_CAPABILITY_NOT_AVAILABLE:
		return 488;
	case PX_CAUSE_NORMAL_CLEARING:
		return 480;
	default:
		return 500;
	}
}

static int cause_for_status(int status)
{
	switch (status) {
	case 404:
	case 484:
	case 604:
		return PX_CAUSE_UNALLOCATED;
	case 486:
	case 600:
		return PX_CAUSE_USER_BUSY;
	case 408:
		return PX_CAUSE_NO_USER_RESPONSE;
	case 480:
		return PX_CAUSE_NO_ANSWER;
	case 403:
	case 603:
		return PX_CAUSE_CALL_REJECTED;
	case 487:
		return PX_CAUSE_NORMAL_CLEARING;
	case 488:
	case 606:
		return PX_CAUSE_INCOMPATIBLE_DESTINATION;
	case 500:
	case 503:
		return PX_CAUSE_CONGESTION;
	default:
		return status >= 500 ? PX_CAUSE_CONGESTION : PX_CAUSE_INTERWORKING;
	}
}

/* Of several failed forks, the answer the caller should hear. */
static int status_rank(int status)
{
	switch (status) {
	case 486:
	case 600:
		return 5;
	case 603:
		return 4;
	case 488:
		return 3;
	case 480:
	case 408:
		return 2;
	default:
		return 1;
	}
}

/* ---- channel operations (session thread → SIP thread) ---- */

static int post_call(void (*fn)(void *), struct sip_call *c)
{
	call_ref(c);
	if (sip_post(fn, c) < 0) {
		call_unref(c);
		return -1;
	}
	return 0;
}

static void do_answer(void *arg)
{
	struct sip_call *c = arg;
	struct sip_leg *l = c->legs;
	char sdp[1024];

	if (!c->final_sent && l && l->nh && !l->terminated &&
	    build_sdp(c, sdp, sizeof(sdp), SIP_SENDRECV) > 0) {
		nua_respond(l->nh, 200, sip_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
			    SIPTAG_PAYLOAD_STR(sdp),
			    TAG_IF(c->contact, SIPTAG_CONTACT_STR(c->contact)), TAG_END());
		c->final_sent = true;
		c->answered = true;
		watch_add(c);
	}
	call_unref(c);
}

static int tech_answer(px_channel *ch)
{
	struct sip_call *c = px_channel_pvt(ch);

	if (c->outbound)
		return -1;
	return post_call(do_answer, c);
}

struct indication {
	struct sip_call *call;
	enum px_control control;
};

static void reinvite(struct sip_call *c, struct sip_leg *l, int direction)
{
	char sdp[1024];

	if (!l || !l->nh || l->terminated || build_sdp(c, sdp, sizeof(sdp), direction) <= 0)
		return;
	nua_invite(l->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"), SIPTAG_PAYLOAD_STR(sdp),
		   TAG_END());
}

static void do_indicate(void *arg)
{
	struct indication *ind = arg;
	struct sip_call *c = ind->call;
	struct sip_leg *l = c->outbound ? c->winner : c->legs;
	char sdp[1024];

	switch (ind->control) {
	case PX_CONTROL_RINGING:
		if (!c->outbound && !c->final_sent && l && l->nh)
			nua_respond(l->nh, 180, sip_180_Ringing, TAG_END());
		break;
	case PX_CONTROL_PROGRESS:
		if (!c->outbound && !c->final_sent && l && l->nh &&
		    build_sdp(c, sdp, sizeof(sdp), SIP_SENDRECV) > 0)
			nua_respond(l->nh, 183, sip_183_Session_progress,
				    SIPTAG_CONTENT_TYPE_STR("application/sdp"),
				    SIPTAG_PAYLOAD_STR(sdp), TAG_END());
		break;
	case PX_CONTROL_BUSY:
	case PX_CONTROL_CONGESTION:
		if (!c->outbound && !c->final_sent && l && l->nh) {
			int status = ind->control == PX_CONTROL_BUSY ? 486 : 503;
			nua_respond(l->nh, status, sip_status_phrase(status), TAG_END());
			c->final_sent = true;
		}
		break;
	case PX_CONTROL_HOLD:
		reinvite(c, l, SIP_SENDONLY);
		break;
	case PX_CONTROL_UNHOLD:
		reinvite(c, l, SIP_SENDRECV);
		break;
	default:
		break;
	}
	call_unref(c);
	free(ind);
}

static int tech_indicate(px_channel *ch, enum px_control control)
{
	struct sip_call *c = px_channel_pvt(ch);
	struct indication *ind = malloc(sizeof(*ind));

	if (!ind)
		return -1;
	ind->call = call_ref(c);
	ind->control = control;
	if (sip_post(do_indicate, ind) < 0) {
		call_unref(c);
		free(ind);
		return -1;
	}
	return 0;
}

struct hangup_req {
	struct sip_call *call;
	int cause;
};

static void do_hangup(void *arg)
{
	struct hangup_req *h = arg;
	struct sip_call *c = h->call;

	if (!c->hangup_done) {
		c->hangup_done = true;
		if (c->outbound) {
			for (struct sip_leg *l = c->legs; l; l = l->next) {
				if (l->terminated || !l->nh)
					continue;
				if (l == c->winner)
					nua_bye(l->nh, TAG_END());
				else
					nua_cancel(l->nh, TAG_END());
			}
		} else if (c->legs && c->legs->nh && !c->legs->terminated) {
			if (c->answered) {
				nua_bye(c->legs->nh, TAG_END());
			} else if (!c->final_sent) {
				int status = status_for_cause(h->cause);
				nua_respond(c->legs->nh, status, sip_status_phrase(status),
					    TAG_END());
				c->final_sent = true;
			}
		}
	}
	call_unref(c);
	free(h);
}

static int tech_hangup(px_channel *ch)
{
	struct sip_call *c = px_channel_pvt(ch);
	struct hangup_req *h = malloc(sizeof(*h));

	if (!h)
		return -1;
	h->call = call_ref(c);
	h->cause = px_channel_hangup_cause(ch);
	if (sip_post(do_hangup, h) < 0) {
		call_unref(c);
		free(h);
		return -1;
	}
	return 0;
}

static void tech_destroy(px_channel *ch)
{
	struct sip_call *c = px_channel_pvt(ch);

	/* The call may outlive its channel (a watch list reference): from
	 * here on no digit may reach c->chan. */
	if (c->rtp) {
		px_rtp_set_dtmf_handler(c->rtp, NULL, NULL);
		px_rtp_set_inband(c->rtp, NULL, NULL, NULL);
	}
	call_unref(c);
}

/* ---- outbound ---- */

/* Add format f to our offer, once. */
static void offer_add(struct sip_call *c, const struct px_format *f)
{
	if (!f || !f->encoding || c->npayloads == SIP_MAX_CODECS)
		return;
	for (int i = 0; i < c->npayloads; i++)
		if (c->payloads[i].format == f)
			return;
	c->payloads[c->npayloads].format = f;
	c->payloads[c->npayloads].pt = sip_sdp_offer_pt(f, c->npayloads);
	c->payloads[c->npayloads].fmtp[0] = '\0';
	c->npayloads++;
}

/* The codecs of a call out: what the caller negotiated (so the bridge can
 * relay packets) and ep allows, else ep's own. */
static int offer_codecs(struct sip_call *c, const struct sip_endpoint *ep, px_channel *requestor)
{
	struct sip_call *caller = NULL;

	/* Offer what the caller uses first, when this endpoint allows it, so
	 * the bridge can relay packets untouched; then the endpoint's own
	 * codecs, preferred first: any of them is transcoded. */
	if (requestor && px_channel_tech(requestor) == &sip_tech)
		caller = px_channel_pvt(requestor);
	if (caller && caller->codec.format)
		for (int i = 0; i < ep->ncodecs; i++)
			if (px_format_find(ep->codecs[i]) == caller->codec.format)
				offer_add(c, caller->codec.format);
	for (int i = 0; i < ep->ncodecs; i++)
		offer_add(c, px_format_find(ep->codecs[i]));
	if (ep->dtmf_mode == SIP_DTMF_RFC4733 || ep->dtmf_mode == SIP_DTMF_AUTO)
		c->nevents =
			sip_sdp_offer_events(c->payloads, c->npayloads, c->events, SIP_MAX_EVENTS);
	return c->npayloads;
}

/* A forwarded call passes on how it got here: the Diversion and
 * History-Info it came with, and, when it came in from a trunk and leaves
 * through one, a Diversion naming the number that was called. */
static void forward_headers(struct sip_call *c, const struct sip_config *cfg, px_channel *req)
{
	/* On the heap: this runs on the caller's session thread, whose stack
	 * pages stay resident for the whole call once touched. */
	struct {
		char div[1024], hi[1024], did[80], trunk[64], text[2200];
	} * b;
	const struct sip_trunk *in;
	size_t used = 0;

	if (!req || !(b = calloc(1, sizeof(*b))))
		return;
	px_channel_var_get(req, "SIP_DIVERSION", b->div, sizeof(b->div));
	px_channel_var_get(req, "SIP_HISTORY_INFO", b->hi, sizeof(b->hi));
	if (px_channel_var_get(req, "SIP_DID", b->did, sizeof(b->did)) == 0 && b->did[0] &&
	    px_channel_var_get(req, "SIP_TRUNK", b->trunk, sizeof(b->trunk)) == 0 &&
	    (in = sip_config_trunk(cfg, b->trunk)) != NULL)
		used += (size_t)snprintf(b->text + used, sizeof(b->text) - used,
					 "Diversion: <sip:%s@%s>;reason=unconditional%s%s\r\n",
					 b->did, in->from_domain, b->div[0] ? ", " : "", b->div);
	else if (b->div[0])
		used += (size_t)snprintf(b->text + used, sizeof(b->text) - used,
					 "Diversion: %s\r\n", b->div);
	if (b->hi[0] && used < sizeof(b->text))
		used += (size_t)snprintf(b->text + used, sizeof(b->text) - used,
					 "History-Info: %s\r\n", b->hi);
	if (used && used < sizeof(b->text)) {
		b->text[used - 2] = '\0'; /* the tag adds the last line end */
		c->forward_headers = strdup(b->text);
	}
	free(b);
}

/* Not inlined into tech_request: its kilobyte of locals would deepen the
 * stack of every call to an endpoint too. */
__attribute__((noinline)) static px_channel *trunk_request(struct sip_config *cfg, const char *dest,
							   px_channel *requestor, int *cause)
{
	char name[80], trunk[64], number[80], hp[300], uri[400], pres[32] = "";
	const char *slash = strchr(dest, '/');
	const struct sip_trunk *t;
	struct sip_call *c;
	struct sip_leg *l;
	px_err err = {""};
	px_channel *ch;

	snprintf(trunk, sizeof(trunk), "%.*s", (int)(slash - dest), dest);
	snprintf(number, sizeof(number), "%s", slash + 1);
	t = sip_config_trunk(cfg, trunk);
	if (!t) {
		px_log_warning("chan_sip: no trunk '%s'", trunk);
		*cause = PX_CAUSE_UNALLOCATED;
		return NULL;
	}
	if (!number[0] || strpbrk(number, " \t;<>@\"/:")) {
		px_log_warning("chan_sip: '%s' is not a number to dial through trunk %s", number,
			       trunk);
		*cause = PX_CAUSE_UNALLOCATED;
		return NULL;
	}
	if (!sip_trunk_reachable(t->ep.name)) {
		px_verbose(3, "chan_sip: trunk %s is unreachable; not calling %s", t->ep.name,
			   number);
		*cause = PX_CAUSE_NETWORK_OUT_OF_ORDER;
		return NULL;
	}
	c = call_new(true, &t->ep);
	if (!c) {
		*cause = PX_CAUSE_CONGESTION;
		return NULL;
	}
	c->trunk = malloc(sizeof(*c->trunk));
	if (!c->trunk || offer_codecs(c, &t->ep, requestor) == 0) {
		*cause = c->trunk ? PX_CAUSE_INCOMPATIBLE_DESTINATION : PX_CAUSE_CONGESTION;
		call_unref(c);
		return NULL;
	}
	*c->trunk = *t;
	c->trunk->match = NULL;
	c->trunk->nmatch = 0;
	if (!sip_trunk_is_local(cfg, t)) {
		sip_nat_media_addr(cfg, true, &c->sdp_addr);
		if (cfg->external_signaling[0] &&
		    asprintf(&c->contact, "<sip:%s@%s%s>",
			     t->from_user[0] ? t->from_user : "plexus", cfg->external_signaling,
			     t->transport == SIP_TP_TCP   ? ";transport=tcp"
			     : t->transport == SIP_TP_TLS ? ";transport=tls"
							  : "") < 0) {
			c->contact = NULL;
			*cause = PX_CAUSE_CONGESTION;
			call_unref(c);
			return NULL;
		}
	}
	if (requestor && px_channel_var_get(requestor, "CALLERPRES", pres, sizeof(pres)) == 0)
		c->restricted = !strncasecmp(pres, "prohib", 6);
	forward_headers(c, cfg, requestor);
	if (px_rtp_new_near((const struct sockaddr *)&sip.rtp_addr,
			    requestor ? px_channel_rtp(requestor) : NULL, &c->rtp, &err) < 0) {
		px_log_warning("chan_sip: calling %s through %s: %s", number, trunk, err.msg);
		*cause = PX_CAUSE_CONGESTION;
		call_unref(c);
		return NULL;
	}
	snprintf(name, sizeof(name), "SIP/%s", t->ep.name);
	ch = px_channel_alloc(&sip_tech, name, requestor ? px_channel_linkedid(requestor) : NULL,
			      c);
	if (!ch) {
		*cause = PX_CAUSE_CONGESTION;
		call_unref(c);
		return NULL;
	}
	c->chan = ch;
	px_rtp_set_dtmf_handler(c->rtp, rtp_dtmf, c);
	set_inband(c);
	px_channel_set_rtp(ch, c->rtp);
	sip_trunk_hostport(t, hp, sizeof(hp));
	snprintf(uri, sizeof(uri), "sip:%s@%s", number, hp);
	/* On failure the channel's end frees the call, with its legs. */
	c->legs = l = leg_plan(c, uri, t->outbound_proxy);
	if (!l || asprintf(&c->to_uri, "<sip:%s@%s>", number, t->from_domain) < 0) {
		c->to_uri = NULL;
		*cause = PX_CAUSE_CONGESTION;
		px_channel_unref(ch);
		return NULL;
	}
	if (requestor)
		px_channel_get_caller(requestor, c->from_num, sizeof(c->from_num), c->from_name,
				      sizeof(c->from_name));
	px_channel_set_connected(ch, number, NULL);
	return ch;
}

/* Drop the contacts qualify.c found gone: ringing them would only wait
 * for a timeout. Returns how many are left (in place, in order). */
static size_t usable_contacts(const struct sip_endpoint *ep, struct px_binding *b, size_t n)
{
	size_t kept = 0;

	for (size_t i = 0; i < n; i++) {
		if (!sip_qualify_usable(ep->name, b[i].contact)) {
			px_verbose(3, "chan_sip: %s's contact %s is unreachable; not calling it",
				   ep->name, b[i].contact);
			continue;
		}
		if (kept != i)
			b[kept] = b[i];
		kept++;
	}
	return kept;
}

static px_channel *tech_request(const char *dest, px_channel *requestor, int *cause)
{
	struct sip_config *cfg = sip_stack_config();
	const struct sip_endpoint *ep;
	struct px_binding *bindings;
	struct sip_call *c;
	size_t n, max;
	px_err err = {""};
	char name[80];
	px_channel *ch;

	if (!cfg) {
		*cause = PX_CAUSE_CONGESTION;
		return NULL;
	}
	if (strchr(dest, '/')) {
		ch = trunk_request(cfg, dest, requestor, cause);
		sip_config_unref(cfg);
		return ch;
	}
	ep = sip_config_endpoint(cfg, dest);
	if (!ep) {
		px_log_warning("chan_sip: no endpoint '%s'", dest);
		*cause = PX_CAUSE_UNALLOCATED;
		sip_config_unref(cfg);
		return NULL;
	}
	/* The bindings on the heap, as many as there are (1.3 KiB each): this
	 * runs on the caller's session thread, and every stack page it
	 * touches stays resident for the whole call (a 16-binding array was a
	 * 20 KiB frame, three more resident pages per call). Counted first,
	 * then copied; one that registers in between waits for the next call. */
	max = px_location_lookup(ep->name, NULL, 0);
	if (max == 0) {
		px_verbose(3, "chan_sip: %s has no registered contact", ep->name);
		*cause = PX_CAUSE_SUBSCRIBER_ABSENT;
		sip_config_unref(cfg);
		return NULL;
	}
	if (max > MAX_CONTACTS)
		max = MAX_CONTACTS;
	if (!(bindings = malloc(max * sizeof(*bindings)))) {
		px_log_warning("chan_sip: calling %s: out of memory", ep->name);
		*cause = PX_CAUSE_CONGESTION;
		sip_config_unref(cfg);
		return NULL;
	}
	n = px_location_lookup(ep->name, bindings, max);
	if (n > max)
		n = max;
	n = usable_contacts(ep, bindings, sip_transport_filter(ep, bindings, n));
	if (n == 0) {
		*cause = PX_CAUSE_SUBSCRIBER_ABSENT;
		free(bindings);
		sip_config_unref(cfg);
		return NULL;
	}
	c = call_new(true, ep);
	if (!c) {
		*cause = PX_CAUSE_CONGESTION;
		free(bindings);
		sip_config_unref(cfg);
		return NULL;
	}
	if (offer_codecs(c, ep, requestor) == 0) {
		px_verbose(3, "chan_sip: %s shares no codec with the caller", ep->name);
		*cause = PX_CAUSE_INCOMPATIBLE_DESTINATION;
		goto fail;
	}
	if (px_rtp_new_near((const struct sockaddr *)&sip.rtp_addr,
			    requestor ? px_channel_rtp(requestor) : NULL, &c->rtp, &err) < 0) {
		px_log_warning("chan_sip: calling %s: %s", ep->name, err.msg);
		*cause = PX_CAUSE_CONGESTION;
		goto fail;
	}
	snprintf(name, sizeof(name), "SIP/%s", ep->name);
	ch = px_channel_alloc(&sip_tech, name, requestor ? px_channel_linkedid(requestor) : NULL,
			      c);
	if (!ch) {
		*cause = PX_CAUSE_CONGESTION;
		goto fail;
	}
	c->chan = ch;
	px_rtp_set_dtmf_handler(c->rtp, rtp_dtmf, c);
	set_inband(c);
	px_channel_set_rtp(ch, c->rtp);
	if (ep->moh_suggest[0])
		px_channel_var_set(ch, PX_MOH_SUGGEST_VAR, ep->moh_suggest);
	for (size_t i = 0; i < n; i++) {
		char proxy[260];
		struct sip_leg *l;
		sip_binding_proxy(ep, &bindings[i], proxy, sizeof(proxy));
		if (!(l = leg_plan(c, bindings[i].contact, proxy)))
			continue;
		l->next = c->legs;
		c->legs = l;
	}
	if (asprintf(&c->to_uri, "sip:%s@%s", ep->name, sip.contact_host) < 0) {
		c->to_uri = NULL;
		*cause = PX_CAUSE_CONGESTION;
		free(bindings);
		sip_config_unref(cfg);
		px_channel_unref(ch);
		return NULL;
	}
	if (requestor)
		px_channel_get_caller(requestor, c->from_num, sizeof(c->from_num), c->from_name,
				      sizeof(c->from_name));
	px_channel_set_connected(ch, ep->callerid_num, ep->callerid_name);
	free(bindings);
	sip_config_unref(cfg);
	return ch;
fail:
	free(bindings);
	sip_config_unref(cfg);
	call_unref(c);
	return NULL;
}

static void do_call(void *arg)
{
	struct sip_call *c = arg;
	char sdp[1024], from[600];
	int sent = 0;

	if (build_sdp(c, sdp, sizeof(sdp), SIP_SENDRECV) <= 0) {
		px_channel_queue_hangup(c->chan, PX_CAUSE_INTERWORKING);
		call_unref(c);
		return;
	}
	struct sip_trunk_ident id;
	char extra[1400] = "";
	if (c->trunk) {
		size_t used = 0;
		sip_trunk_identity(c->trunk, c->from_num, c->from_name, c->restricted, &id);
		snprintf(from, sizeof(from), "%s", id.from);
		if (id.pai[0])
			used += (size_t)snprintf(extra + used, sizeof(extra) - used,
						 "P-Asserted-Identity: %s\r\n", id.pai);
		if (id.rpid[0] && used < sizeof(extra))
			used += (size_t)snprintf(extra + used, sizeof(extra) - used,
						 "Remote-Party-ID: %s\r\n", id.rpid);
		if (id.privacy[0] && used < sizeof(extra))
			used += (size_t)snprintf(extra + used, sizeof(extra) - used,
						 "Privacy: %s\r\n", id.privacy);
		if (used >= 2 && used < sizeof(extra))
			extra[used - 2] = '\0';
		else
			extra[0] = '\0';
	} else {
		snprintf(from, sizeof(from), "\"%s\" <sip:%s@%s>",
			 c->from_name[0] ? c->from_name : c->from_num,
			 c->from_num[0] ? c->from_num : "anonymous", sip.contact_host);
	}
	/* The legs were prepared by request(); now each becomes a dialog. */
	struct sip_leg *legs = c->legs;
	c->legs = NULL;
	while (legs) {
		struct sip_leg *l = legs, *nl;
		legs = legs->next;
		nl = leg_new(c);
		if (!nl) {
			free(l->uri);
			free(l);
			continue;
		}
		nl->uri = l->uri;
		nl->proxy = l->proxy;
		free(l);
		nl->nh = nua_handle(sip.nua, nl, NUTAG_URL(nl->uri), SIPTAG_TO_STR(c->to_uri),
				    SIPTAG_FROM_STR(from),
				    TAG_IF(nl->proxy[0], NUTAG_PROXY(nl->proxy)), TAG_END());
		if (!nl->nh) {
			leg_terminated(nl);
			continue;
		}
		nua_invite(nl->nh, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
			   SIPTAG_PAYLOAD_STR(sdp), TAG_IF(extra[0], SIPTAG_HEADER_STR(extra)),
			   TAG_IF(c->forward_headers, SIPTAG_HEADER_STR(c->forward_headers)),
			   TAG_IF(c->contact, SIPTAG_CONTACT_STR(c->contact)), TAG_END());
		sent++;
	}
	if (!sent)
		px_channel_queue_hangup(c->chan, PX_CAUSE_CONGESTION);
	else
		px_channel_set_state(c->chan, PX_STATE_DIALING);
	call_unref(c);
}

static int tech_call(px_channel *ch, int timeout_ms)
{
	struct sip_call *c = px_channel_pvt(ch);
	char num[80], name[80];

	/* The identity presented is the channel's own when it has one (set by
	 * Dial from its caller, or by an originate). */
	px_channel_get_caller(ch, num, sizeof(num), name, sizeof(name));
	if (num[0] || name[0]) {
		snprintf(c->from_num, sizeof(c->from_num), "%s", num);
		snprintf(c->from_name, sizeof(c->from_name), "%s", name);
	}
	return post_call(do_call, c);
}

/* "trunk/number" is a route through a carrier: Dial hunts over such targets. */
static bool tech_hunt(const char *dest)
{
	return strchr(dest, '/') != NULL;
}

const struct px_channel_tech sip_tech = {
	.type = "SIP",
	.description = "Session Initiation Protocol (SIP), on sofia-sip",
	.request = tech_request,
	.call = tech_call,
	.answer = tech_answer,
	.indicate = tech_indicate,
	.hangup = tech_hangup,
	.destroy = tech_destroy,
	.hunt = tech_hunt,
	.send_dtmf = tech_send_dtmf,
};

/* ---- inbound ---- */

/* A refused INVITE's handle must live until its transaction ends (the ACK
 * for our final response, or its timeout): destroying it at once leaves the
 * response retransmitting and confuses the next INVITE of the same call. */
char sip_rejected_magic;

static void let_finish(nua_handle_t *nh)
{
	nua_handle_bind(nh, (nua_hmagic_t *)&sip_rejected_magic);
}

static void reject(nua_handle_t *nh, int status)
{
	nua_respond(nh, status, sip_status_phrase(status), NUTAG_WITH_THIS(sip.nua), TAG_END());
	let_finish(nh);
}

void sip_call_incoming(nua_handle_t *nh, void *hmagic, const void *sipmsg)
{
	sip_t const *s = sipmsg;
	const struct sip_endpoint *ep;
	const struct sip_trunk *trunk;
	struct sip_media media;
	struct sip_call *c;
	struct sip_leg *l;
	px_err err = {""};
	const char *exten;
	char name[80], caller_num[80], caller_name[80];
	px_channel *ch;
	msg_t *msg = nua_current_request(sip.nua);
	su_addrinfo_t *src = msg ? msg_addrinfo(msg) : NULL;

	/* A carrier is known by its address (the trunk's match), never asked
	 * for a password; everyone else is an endpoint and authenticates. A
	 * carrier's call, like one with credentials, is refused under overload
	 * at a quarter of the share: the carrier routes it elsewhere. */
	trunk = src ? sip_trunk_identify(sip.config, src->ai_addr) : NULL;
	if (sip_overload_refuse(trunk || s->sip_authorization || s->sip_proxy_authorization)) {
		nua_respond(nh, 503, sip_503_Service_unavailable, NUTAG_WITH_THIS(sip.nua),
			    SIPTAG_RETRY_AFTER_STR("2"), TAG_END());
		let_finish(nh);
		return;
	}
	ep = trunk ? &trunk->ep : sip_authenticate(nh, s, "INVITE");
	if (!ep) {
		let_finish(nh);
		return;
	}
	if (!s->sip_payload || !s->sip_payload->pl_data) {
		px_log_notice("chan_sip: INVITE from %s without SDP offer: not supported yet",
			      ep->name);
		reject(nh, 488);
		return;
	}
	if (sip_sdp_parse(s->sip_payload->pl_data, s->sip_payload->pl_len, &media, &err) < 0) {
		px_log_notice("chan_sip: INVITE from %s: %s", ep->name, err.msg);
		reject(nh, 488);
		return;
	}
	{
		struct sip_call probe = {.nallowed = ep->ncodecs};
		struct sip_payload chosen;
		memcpy(probe.allowed, ep->codecs, sizeof(probe.allowed));
		if (!choose_codec(&probe, &media, false, &chosen)) {
			px_verbose(3, "chan_sip: INVITE from %s: no codec in common", ep->name);
			reject(nh, 488);
			return;
		}
	}
	exten = s->sip_request->rq_url->url_user ? s->sip_request->rq_url->url_user : "s";
	snprintf(caller_num, sizeof(caller_num), "%s", ep->callerid_num);
	snprintf(caller_name, sizeof(caller_name), "%s", ep->callerid_name);
	if (trunk) {
		exten = sip_trunk_did(trunk, s);
		sip_trunk_inbound_caller(trunk, s, caller_num, sizeof(caller_num), caller_name,
					 sizeof(caller_name));
	}
	if (!px_dialplan_exists(ep->context, exten, caller_num)) {
		px_verbose(3, "chan_sip: %s called %s: no such extension in context %s", ep->name,
			   exten, ep->context);
		reject(nh, 404);
		return;
	}
	c = call_new(false, ep);
	if (!c) {
		reject(nh, 500);
		return;
	}
	if (src && sip_nat_external(sip.config, src->ai_addr)) {
		sip_nat_media_addr(sip.config, true, &c->sdp_addr);
		if (sip.config->external_signaling[0] &&
		    asprintf(&c->contact, "<sip:%s@%s>", exten, sip.config->external_signaling) <
			    0) {
			c->contact = NULL;
			call_unref(c);
			reject(nh, 500);
			return;
		}
	}
	if (px_rtp_new((const struct sockaddr *)&sip.rtp_addr, &c->rtp, &err) < 0) {
		px_log_warning("chan_sip: INVITE from %s: %s", ep->name, err.msg);
		call_unref(c);
		reject(nh, 503);
		return;
	}
	/* Answer with the one codec we prefer among those offered, in the
	 * offer's payload type. */
	{
		struct sip_payload chosen;
		choose_codec(c, &media, false, &chosen);
		use_codec(c, &chosen, &media);
		c->payloads[0] = chosen;
		c->npayloads = 1;
	}
	px_rtp_set_remote(c->rtp, (struct sockaddr *)&media.addr, ep->nat);
	snprintf(name, sizeof(name), "SIP/%s", ep->name);
	ch = px_channel_alloc(&sip_tech, name, NULL, c);
	if (!ch) {
		call_unref(c);
		reject(nh, 500);
		return;
	}
	c->chan = ch;
	px_rtp_set_dtmf_handler(c->rtp, rtp_dtmf, c);
	if (ep->moh_suggest[0])
		px_channel_var_set(ch, PX_MOH_SUGGEST_VAR, ep->moh_suggest);
	set_inband(c);
	l = leg_new(c);
	if (!l) {
		px_channel_unref(ch);
		reject(nh, 500);
		return;
	}
	l->nh = nh;
	nua_handle_bind(nh, l);
	px_channel_set_rtp(ch, c->rtp);
	if (c->codec.format)
		px_channel_set_codec(ch, c->codec.format->encoding);
	px_channel_set_caller(ch, caller_num[0] ? caller_num : NULL,
			      caller_name[0] ? caller_name : NULL);
	if (trunk) {
		char fwd[1024];
		px_channel_var_set(ch, "SIP_TRUNK", trunk->ep.name);
		px_channel_var_set(ch, "SIP_DID", exten);
		sip_unknown_headers(s, "Diversion", fwd, sizeof(fwd));
		if (fwd[0])
			px_channel_var_set(ch, "SIP_DIVERSION", fwd);
		sip_unknown_headers(s, "History-Info", fwd, sizeof(fwd));
		if (fwd[0])
			px_channel_var_set(ch, "SIP_HISTORY_INFO", fwd);
	}
	px_channel_set_dialplan(ch, ep->context, exten);
	px_channel_set_state(ch, PX_STATE_RING);
	px_verbose(2, "chan_sip: %s%s calls %s@%s (%s)", trunk ? "trunk " : "", ep->name, exten,
		   ep->context, px_channel_name(ch));
	if (px_channel_start_session(ch, &err) < 0) {
		px_log_error("chan_sip: %s", err.msg);
		nua_respond(nh, 503, sip_503_Service_unavailable, TAG_END());
		c->final_sent = true;
		px_channel_hangup(ch, PX_CAUSE_CONGESTION);
	}
	px_channel_unref(ch); /* the session and the leg hold their own */
}

/* ---- events on a call's dialogs (SIP thread) ---- */

/* Take the far end's SDP; returns its direction, or -1 without a usable SDP. */
static int apply_remote_sdp(struct sip_call *c, sip_t const *s, bool signal_hold, bool answer)
{
	struct sip_media media;
	px_err err = {""};

	if (!s || !s->sip_payload || !s->sip_payload->pl_data)
		return -1;
	if (sip_sdp_parse(s->sip_payload->pl_data, s->sip_payload->pl_len, &media, &err) < 0) {
		px_log_notice("chan_sip: %s: %s", px_channel_name(c->chan), err.msg);
		return -1;
	}
	struct sip_payload chosen;
	if (!choose_codec(c, &media, answer, &chosen)) {
		px_log_notice("chan_sip: %s: no codec in common in the far end's SDP",
			      px_channel_name(c->chan));
		return -1;
	}
	bool changed = use_codec(c, &chosen, &media);
	if (!answer) {
		/* Our answer to a new offer holds the codec chosen. */
		c->payloads[0] = chosen;
		c->npayloads = 1;
	}
	px_channel_set_codec(c->chan, chosen.format->encoding);
	if (changed) {
		px_verbose(3, "chan_sip: %s now uses %s (payload type %d)",
			   px_channel_name(c->chan), chosen.format->name, chosen.pt);
		px_channel_queue_control(c->chan, PX_CONTROL_MEDIA_CHANGED);
	}
	/* c=0.0.0.0 (old-style hold) keeps the old address; only the direction changes. */
	if (!(media.addr.ss_family == AF_INET &&
	      ((struct sockaddr_in *)&media.addr)->sin_addr.s_addr == 0))
		px_rtp_set_remote(c->rtp, (struct sockaddr *)&media.addr, c->nat);
	if (signal_hold) {
		bool hold = media.direction == SIP_SENDONLY || media.direction == SIP_INACTIVE;
		if (hold != c->remote_hold) {
			c->remote_hold = hold;
			px_channel_queue_control(c->chan,
						 hold ? PX_CONTROL_HOLD : PX_CONTROL_UNHOLD);
		}
	}
	return media.direction;
}

/* The far end answered our offer with no codec we offered (or none we
 * know, or no SDP at all): the call cannot carry audio. As Asterisk does
 * with an answer its SDP negotiation refuses, the dialog is ended (nua has
 * ACKed the 200; we send BYE) and the attempt fails with cause 58, bearer
 * capability not available (Asterisk's cause for 488/606; Dial's
 * DIALSTATUS is then CHANUNAVAIL), instead of a call Up with no media. */
static void answer_unusable(struct sip_call *c, struct sip_leg *l, sip_t const *s)
{
	char offered[128] = "", answered[160] = "";
	size_t used = 0;

	for (int i = 0; i < c->npayloads && used < sizeof(offered); i++)
		used += (size_t)snprintf(offered + used, sizeof(offered) - used, "%s%s/%u",
					 i ? ", " : "", c->payloads[i].format->encoding,
					 c->payloads[i].format->rtp_clock);
	if (s && s->sip_payload && s->sip_payload->pl_data)
		sip_sdp_describe(s->sip_payload->pl_data, s->sip_payload->pl_len, answered,
				 sizeof(answered));
	px_log_warning("chan_sip: %s: endpoint %s answered with %s, which is none of the codecs "
		       "offered (%s): hanging up",
		       px_channel_name(c->chan), c->endpoint, answered[0] ? answered : "no SDP",
		       offered);
	c->hangup_done = true;
	if (l->nh && !l->terminated)
		nua_bye(l->nh, TAG_END());
	px_channel_queue_hangup(c->chan, PX_CAUSE_BEARER_CAPABILITY_NOT_AVAILABLE);
}

static void outbound_response(struct sip_leg *l, int status, sip_t const *s)
{
	struct sip_call *c = l->call;

	if (status < 100)
		return;
	if (status < 200) {
		if (status == 183 && s && s->sip_payload && !c->progress_queued && !c->winner) {
			apply_remote_sdp(c, s, false, true);
			c->progress_queued = true;
			px_channel_queue_control(c->chan, PX_CONTROL_PROGRESS);
		} else if (status >= 180 && !c->ringing_queued && !c->winner) {
			c->ringing_queued = true;
			px_channel_set_state(c->chan, PX_STATE_RINGING);
			px_channel_queue_control(c->chan, PX_CONTROL_RINGING);
		}
		return;
	}
	if (status < 300) {
		if (c->winner && c->winner != l) { /* a second fork answered too late */
			nua_bye(l->nh, TAG_END());
			return;
		}
		if (c->winner) /* 200 to a re-INVITE */
			return;
		c->winner = l;
		for (struct sip_leg *o = c->legs; o; o = o->next)
			if (o != l && !o->terminated && o->nh)
				nua_cancel(o->nh, TAG_END());
		if (apply_remote_sdp(c, s, false, true) < 0) {
			answer_unusable(c, l, s);
			return;
		}
		px_channel_set_state(c->chan, PX_STATE_UP);
		px_channel_queue_control(c->chan, PX_CONTROL_ANSWER);
		watch_add(c);
		return;
	}
	if (c->winner == l) /* a re-INVITE failed; the call goes on */
		return;
	if ((status == 401 || status == 407) && c->trunk && !l->auth_sent && !c->hangup_done) {
		char auth[400];
		if (sip_trunk_auth_string(c->trunk, s, auth, sizeof(auth)) == 0) {
			l->auth_sent = true; /* once: a second challenge is a refusal */
			nua_authenticate(l->nh, NUTAG_AUTH(auth), TAG_END());
			return;
		}
	}
	if (!c->trunk)
		sip_flow_failed(c->endpoint, l->proxy, status, s); /* did a flow die? */
	l->status = status;
	if (c->winner || c->hangup_done)
		return;
	for (struct sip_leg *o = c->legs; o; o = o->next)
		if (!o->status && !o->terminated && o != l)
			return; /* another fork may still answer */
	int best = status;
	for (struct sip_leg *o = c->legs; o; o = o->next)
		if (o->status && status_rank(o->status) > status_rank(best))
			best = o->status;
	px_verbose(3, "chan_sip: %s failed: %d", px_channel_name(c->chan), best);
	px_channel_queue_hangup(c->chan, cause_for_status(best));
}

static void incoming_reinvite(struct sip_leg *l, sip_t const *s)
{
	struct sip_call *c = l->call;
	char sdp[1024];
	int dir;

	/* RFC 3264 6.1: the answer's direction mirrors the offer's. */
	switch (apply_remote_sdp(c, s, true, false)) {
	case SIP_SENDONLY:
		dir = SIP_RECVONLY;
		break;
	case SIP_RECVONLY:
		dir = SIP_SENDONLY;
		break;
	case SIP_INACTIVE:
		dir = SIP_INACTIVE;
		break;
	case SIP_SENDRECV:
		dir = SIP_SENDRECV;
		break;
	default:
		if (s && s->sip_payload && s->sip_payload->pl_data) {
			/* An offer we cannot use: the call goes on as it was. */
			nua_respond(l->nh, 488, sip_488_Not_acceptable, NUTAG_WITH_THIS(sip.nua),
				    TAG_END());
			return;
		}
		/* No offer in the re-INVITE: offer what we had. */
		dir = c->remote_hold ? SIP_RECVONLY : SIP_SENDRECV;
	}
	/* What we said we would not send, we do not send. */
	px_rtp_set_send(c->rtp, dir == SIP_SENDRECV || dir == SIP_SENDONLY);
	if (build_sdp(c, sdp, sizeof(sdp), dir) > 0)
		nua_respond(l->nh, 200, sip_200_OK, SIPTAG_CONTENT_TYPE_STR("application/sdp"),
			    SIPTAG_PAYLOAD_STR(sdp), NUTAG_WITH_THIS(sip.nua), TAG_END());
	else
		nua_respond(l->nh, 500, sip_500_Internal_server_error, NUTAG_WITH_THIS(sip.nua),
			    TAG_END());
}

void sip_call_event(int event, int status, const char *phrase, nua_handle_t *nh, void *hmagic,
		    const void *sipmsg, void *tags)
{
	struct sip_leg *l = hmagic;
	struct sip_call *c = l->call;
	sip_t const *s = sipmsg;

	switch ((nua_event_t)event) {
	case nua_r_invite:
		if (c->outbound)
			outbound_response(l, status, s);
		break;
	case nua_i_invite: /* re-INVITE within the dialog */
		incoming_reinvite(l, s);
		break;
	case nua_i_cancel:
		c->final_sent = true; /* nua answered 487 */
		px_channel_queue_hangup(c->chan, PX_CAUSE_NORMAL_CLEARING);
		break;
	case nua_i_bye:
		px_channel_queue_hangup(c->chan, PX_CAUSE_NORMAL_CLEARING);
		break;
	case nua_i_info:
		sip_dtmf_info_received(c->chan, nh, s);
		break;
	case nua_i_state: {
		int state = -1;
		tl_gets(tags, NUTAG_CALLSTATE_REF(state), TAG_END());
		if (state == nua_callstate_terminated)
			leg_terminated(l);
		break;
	}
	case nua_r_bye:
	case nua_r_cancel:
	case nua_i_ack:
	case nua_i_active:
	case nua_i_terminated:
	default:
		break;
	}
}
