/*
 * Trunks of chan_sip: a carrier's connection as sip.conf describes it
 * ("type = trunk": where the carrier is, the account, how to register, the
 * caller ID rules, the match ACL that recognises its requests), and what
 * the SIP thread keeps about each trunk while it runs: its outbound
 * registration (outreg.c) and its qualify state (OPTIONS every "qualify"
 * seconds, the round-trip time, Reachable or Unreachable). Trunk calls
 * themselves are call.c's: a trunk carries a struct sip_endpoint so that
 * the call code treats it like an endpoint.
 *
 * Runtime state lives in a list owned by the SIP thread; the fields other
 * threads read (reachability for failover, the console's tables) are under
 * one mutex.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/su_wait.h>

#include <plexus/cli.h>
#include <plexus/config.h>
#include <plexus/event.h>
#include <plexus/log.h>

#include "sip.h"

#define N(t) (sizeof(t) / sizeof((t)[0]))

/* ---- configuration ---- */

static const char *const transport_names[] = {"udp", "tcp", "tls", NULL};
static const char *const did_names[] = {"ruri", "to", NULL};

struct trunk_opts {
	char *type;
	char *host;
	long long port;
	int transport;
	char *username;
	char *secret;
	char *realm;
	bool reg;
	char *contact_user;
	long long expiry;
	long long retry_interval, max_retry_interval, forbidden_retry_interval;
	char *from_user;
	char *from_domain;
	char *outbound_proxy;
	long long qualify;
	int64_t qualify_timeout;
	char **match;
	int did_source;
	bool send_pai, send_rpid, trust_id_outbound, trust_id_inbound;
	char *context;
	char *callerid;
	char **allow;
	char **disallow;
	bool nat;
	char *dtmf_mode;
	long long rtp_timeout, rtp_timeout_hold;
};

#define O(f) offsetof(struct trunk_opts, f)
static const struct px_config_option trunk_table[] = {
	{"type", PX_CFG_STRING, NULL, 0, 0, NULL, O(type), "trunk"},
	{"host", PX_CFG_STRING, NULL, 0, 0, NULL, O(host),
	 "the carrier: a name or an address, with or without :port"},
	{"port", PX_CFG_INT, "0", 0, 65535, NULL, O(port),
	 "the carrier's port; 0: the one in host, else 5060 (5061 for tls)"},
	{"transport", PX_CFG_ENUM, "udp", 0, 0, transport_names, O(transport), "udp, tcp or tls"},
	{"username", PX_CFG_STRING, NULL, 0, 0, NULL, O(username),
	 "account (digest user name) for the carrier's challenges"},
	{"secret", PX_CFG_STRING, NULL, 0, 0, NULL, O(secret), "the account's password"},
	{"realm", PX_CFG_STRING, NULL, 0, 0, NULL, O(realm),
	 "answer challenges of this realm only; default: whatever realm the carrier names"},
	{"register", PX_CFG_BOOL, "no", 0, 0, NULL, O(reg), "register with the carrier"},
	{"contact_user", PX_CFG_STRING, NULL, 0, 0, NULL, O(contact_user),
	 "the user registered (a DID or the account); default: username"},
	{"expiry", PX_CFG_INT, "3600", 1, 86400, NULL, O(expiry), "registration time asked for"},
	{"retry_interval", PX_CFG_INT, "30", 1, 86400, NULL, O(retry_interval),
	 "first wait after a failed registration; doubles on each failure"},
	{"max_retry_interval", PX_CFG_INT, "600", 1, 86400, NULL, O(max_retry_interval),
	 "the longest wait between registration attempts"},
	{"forbidden_retry_interval", PX_CFG_INT, "900", 1, 86400, NULL, O(forbidden_retry_interval),
	 "wait after a 403 (or refused credentials)"},
	{"from_user", PX_CFG_STRING, NULL, 0, 0, NULL, O(from_user),
	 "user of the From of calls out; default: the caller's number"},
	{"from_domain", PX_CFG_STRING, NULL, 0, 0, NULL, O(from_domain),
	 "domain of From (and To of REGISTER); default: host"},
	{"outbound_proxy", PX_CFG_STRING, NULL, 0, 0, NULL, O(outbound_proxy),
	 "send every request through this SIP URI"},
	{"qualify", PX_CFG_INT, "0", 0, 86400, NULL, O(qualify),
	 "seconds between OPTIONS to the carrier; 0: never"},
	{"qualify_timeout", PX_CFG_DURATION, "3s", 100, 60000, NULL, O(qualify_timeout),
	 "no answer to OPTIONS within this: Unreachable"},
	{"match", PX_CFG_LIST, NULL, 0, 0, NULL, O(match),
	 "addresses and networks (a.b.c.d/nn; !a.b.c.d excludes) whose requests come from this "
	 "trunk; the first entry holding a source decides"},
	{"did_source", PX_CFG_ENUM, "ruri", 0, 0, did_names, O(did_source),
	 "where an inbound call's DID is: ruri (Request-URI user) or to"},
	{"send_pai", PX_CFG_BOOL, "yes", 0, 0, NULL, O(send_pai),
	 "send P-Asserted-Identity with the caller's number"},
	{"send_rpid", PX_CFG_BOOL, "no", 0, 0, NULL, O(send_rpid), "send Remote-Party-ID"},
	{"trust_id_outbound", PX_CFG_BOOL, "no", 0, 0, NULL, O(trust_id_outbound),
	 "send the identity (with Privacy: id) even when the caller withholds it"},
	{"trust_id_inbound", PX_CFG_BOOL, "yes", 0, 0, NULL, O(trust_id_inbound),
	 "take the caller from P-Asserted-Identity or Remote-Party-ID"},
	{"context", PX_CFG_STRING, "from-trunk", 0, 0, NULL, O(context),
	 "dialplan context of inbound calls"},
	{"callerid", PX_CFG_STRING, NULL, 0, 0, NULL, O(callerid),
	 "caller ID of calls out when the caller has none"},
	{"allow", PX_CFG_LIST, NULL, 0, 0, NULL, O(allow), "codecs in order of preference"},
	{"disallow", PX_CFG_LIST, NULL, 0, 0, NULL, O(disallow), "codecs to remove"},
	{"nat", PX_CFG_BOOL, "yes", 0, 0, NULL, O(nat), "symmetric RTP toward the carrier"},
	{"dtmf_mode", PX_CFG_STRING, "rfc4733", 0, 0, NULL, O(dtmf_mode), "rfc4733"},
	{"rtp_timeout", PX_CFG_INT, "0", 0, 86400, NULL, O(rtp_timeout),
	 "hang up after this many seconds without RTP; 0: never"},
	{"rtp_timeout_hold", PX_CFG_INT, "0", 0, 86400, NULL, O(rtp_timeout_hold),
	 "the same while on hold"},
};
#undef O

static int var_error(const px_config_section *s, const char *key, const struct sip_trunk *t,
		     px_err *err, const char *fmt, const char *arg)
{
	const px_config_var *v = px_config_var_find(s, key);
	char msg[300];

	snprintf(msg, sizeof(msg), fmt, arg);
	return px_err_set(err, "%s:%d: trunk %s: %s: %s", v ? v->file : t->ep.file,
			  v ? v->line : t->ep.line, t->ep.name, key, msg);
}

/* "host", "host:port", "[v6]:port" → host and port. */
static int split_host(const char *in, char *host, size_t size, int *port)
{
	const char *colon;
	size_t len;

	*port = 0;
	if (in[0] == '[') {
		const char *end = strchr(in, ']');
		if (!end)
			return -1;
		len = (size_t)(end - in + 1);
		colon = end[1] == ':' ? end + 1 : NULL;
		if (end[1] && !colon)
			return -1;
	} else {
		colon = strchr(in, ':');
		if (colon && strchr(colon + 1, ':'))
			return -1; /* a bare IPv6 address needs brackets */
		len = colon ? (size_t)(colon - in) : strlen(in);
	}
	if (len == 0 || len >= size || strpbrk(in, " \t;<>@\""))
		return -1;
	memcpy(host, in, len);
	host[len] = '\0';
	if (colon) {
		char *end;
		long p = strtol(colon + 1, &end, 10);
		if (*end || p <= 0 || p > 65535)
			return -1;
		*port = (int)p;
	}
	return 0;
}

/* false when src does not fit (dst is then left empty). */
static bool copy(char *dst, size_t size, const char *src)
{
	size_t len = src ? strlen(src) : 0;

	dst[0] = '\0';
	if (len >= size)
		return false;
	memcpy(dst, src ? src : "", len + 1);
	return true;
}

int sip_trunk_load(const px_config_section *s, struct sip_trunk *t, px_err *err)
{
	struct trunk_opts o;
	struct sip_endpoint *ep = &t->ep;
	bool ok = true;
	int rc = -1, hport;

	memset(t, 0, sizeof(*t));
	copy(ep->name, sizeof(ep->name), px_config_section_name(s));
	ep->file = px_config_section_file(s);
	ep->line = px_config_section_line(s);
	if (strlen(px_config_section_name(s)) >= sizeof(ep->name) ||
	    strchr(px_config_section_name(s), '/'))
		return px_err_set(err, "%s:%d: trunk name '%s' is too long or has a '/'", ep->file,
				  ep->line, px_config_section_name(s));
	if (px_config_apply(s, trunk_table, N(trunk_table), &o, err) < 0)
		return -1;
	if (!o.host || !o.host[0]) {
		px_err_set(err, "%s:%d: trunk %s has no host", ep->file, ep->line, ep->name);
		goto out;
	}
	if (split_host(o.host, t->host, sizeof(t->host), &hport) < 0) {
		var_error(s, "host", t, err, "'%s' is not host or host:port", o.host);
		goto out;
	}
	t->port = o.port ? (int)o.port : hport;
	t->transport = (enum sip_transport)o.transport;
	ep->transports = SIP_TP_ALL; /* a carrier is known by its address, on any transport */
	if (o.secret && o.secret[0] && (!o.username || !o.username[0])) {
		var_error(s, "secret", t, err, "%s", "a secret needs a username");
		goto out;
	}
	if (o.reg && (!o.username || !o.username[0]) && (!o.contact_user || !o.contact_user[0])) {
		var_error(s, "register", t, err, "%s",
			  "registering needs a username or a contact_user");
		goto out;
	}
	if (sip_dtmf_mode_parse(o.dtmf_mode, &ep->dtmf_mode) < 0) {
		var_error(s, "dtmf_mode", t, err, "'%s' is not one of rfc4733, info, inband, auto",
			  o.dtmf_mode);
		goto out;
	}
	if (o.max_retry_interval < o.retry_interval) {
		var_error(s, "max_retry_interval", t, err, "%s", "is shorter than retry_interval");
		goto out;
	}
	if (o.outbound_proxy && strncasecmp(o.outbound_proxy, "sip:", 4) &&
	    strncasecmp(o.outbound_proxy, "sips:", 5)) {
		var_error(s, "outbound_proxy", t, err, "'%s' is not a sip: or sips: URI",
			  o.outbound_proxy);
		goto out;
	}
	ok &= copy(t->username, sizeof(t->username), o.username);
	ok &= copy(t->secret, sizeof(t->secret), o.secret);
	ok &= copy(t->realm, sizeof(t->realm), o.realm);
	ok &= copy(t->contact_user, sizeof(t->contact_user),
		   o.contact_user ? o.contact_user : o.username);
	ok &= copy(t->from_user, sizeof(t->from_user), o.from_user);
	ok &= copy(t->from_domain, sizeof(t->from_domain), o.from_domain ? o.from_domain : t->host);
	ok &= copy(t->outbound_proxy, sizeof(t->outbound_proxy), o.outbound_proxy);
	ok &= copy(ep->context, sizeof(ep->context), o.context);
	ok &= copy(ep->username, sizeof(ep->username), o.username);
	if (!ok) {
		px_err_set(err, "%s:%d: trunk %s: a value is too long", ep->file, ep->line,
			   ep->name);
		goto out;
	}
	if (o.callerid)
		sip_config_callerid(o.callerid, ep->callerid_num, sizeof(ep->callerid_num),
				    ep->callerid_name, sizeof(ep->callerid_name));
	t->reg = o.reg;
	t->expiry = (int)o.expiry;
	t->retry_interval = (int)o.retry_interval;
	t->max_retry_interval = (int)o.max_retry_interval;
	t->forbidden_retry_interval = (int)o.forbidden_retry_interval;
	t->qualify = (int)o.qualify;
	t->qualify_timeout_ms = (int)o.qualify_timeout;
	t->did_from_to = o.did_source == 1;
	t->send_pai = o.send_pai;
	t->send_rpid = o.send_rpid;
	t->trust_id_outbound = o.trust_id_outbound;
	t->trust_id_inbound = o.trust_id_inbound;
	ep->nat = o.nat;
	ep->max_contacts = 0;
	ep->rtp_timeout = (int)o.rtp_timeout;
	ep->rtp_timeout_hold = (int)o.rtp_timeout_hold;

	size_t n = 0;
	while (o.match && o.match[n])
		n++;
	t->match = calloc(n ? n : 1, sizeof(*t->match));
	if (!t->match) {
		px_err_set(err, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (sip_acl_parse(o.match[i], &t->match[i]) < 0) {
			var_error(s, "match", t, err,
				  "'%s' is not an IP address or network (a.b.c.d/nn)", o.match[i]);
			goto out;
		}
	}
	t->nmatch = n;
	/* A carrier given by address is recognised by it unless match says otherwise. */
	if (n == 0 && t->host[0] != '!' && sip_acl_parse(t->host, &t->match[0]) == 0)
		t->nmatch = 1;
	if (sip_config_codecs(s, ep, err) < 0)
		goto out;
	rc = 0;
out:
	px_config_options_free(trunk_table, N(trunk_table), &o);
	if (rc < 0)
		sip_trunk_free(t);
	return rc;
}

void sip_trunk_free(struct sip_trunk *t)
{
	free(t->match);
	t->match = NULL;
	t->nmatch = 0;
}

const struct sip_trunk *sip_config_trunk(const struct sip_config *c, const char *name)
{
	for (size_t i = 0; i < c->ntrunks; i++)
		if (!strcmp(c->trunks[i].ep.name, name))
			return &c->trunks[i];
	return NULL;
}

const struct sip_trunk *sip_trunk_identify(const struct sip_config *c, const struct sockaddr *sa)
{
	for (size_t i = 0; i < c->ntrunks; i++)
		if (sip_acl_match(c->trunks[i].match, c->trunks[i].nmatch, sa))
			return &c->trunks[i];
	return NULL;
}

void sip_trunk_hostport(const struct sip_trunk *t, char *buf, size_t size)
{
	bool v6 = strchr(t->host, ':') && t->host[0] != '[';
	char port[16] = "";

	if (t->port)
		snprintf(port, sizeof(port), ":%d", t->port);
	snprintf(buf, size, "%s%s%s%s%s", v6 ? "[" : "", t->host, v6 ? "]" : "", port,
		 t->transport == SIP_TP_TCP   ? ";transport=tcp"
		 : t->transport == SIP_TP_TLS ? ";transport=tls"
					      : "");
}

/* The realm= of the challenge in a 401/407 ("" when none). */
static void challenge_realm(sip_t const *s, char *out, size_t size)
{
	msg_auth_t const *au =
		s ? (s->sip_www_authenticate ? s->sip_www_authenticate : s->sip_proxy_authenticate)
		  : NULL;
	const char *r = au ? msg_params_find(au->au_params, "realm=") : NULL;
	size_t len;

	out[0] = '\0';
	if (!r)
		return;
	len = strlen(r);
	if (len >= 2 && r[0] == '"' && r[len - 1] == '"') {
		r++;
		len -= 2;
	}
	snprintf(out, size, "%.*s", (int)len, r);
}

int sip_trunk_auth_string(const struct sip_trunk *t, const void *sipmsg, char *buf, size_t size)
{
	char realm[128];
	int n;

	if (!t->username[0])
		return -1;
	challenge_realm(sipmsg, realm, sizeof(realm));
	if (t->realm[0] && strcmp(t->realm, realm)) {
		px_log_warning("chan_sip: trunk %s: challenged for realm '%s', configured for '%s'",
			       t->ep.name, realm, t->realm);
		return -1;
	}
	n = snprintf(buf, size, "Digest:\"%s\":%s:%s", realm, t->username, t->secret);
	return n > 0 && (size_t)n < size ? 0 : -1;
}

/* ---- runtime: registration and qualify ---- */

enum reach { REACH_UNKNOWN, REACH_YES, REACH_NO };

struct trunk_rt {
	char name[64];
	struct sip_outreg *reg;
	/* qualify (SIP thread) */
	char uri[320], to[320], proxy[256];
	int qualify, timeout_ms;
	su_timer_t *timer;    /* the next OPTIONS */
	su_timer_t *deadline; /* no answer by then: Unreachable */
	nua_handle_t *nh;     /* the OPTIONS in flight */
	long long sent_ms;
	/* under rt_lock */
	enum reach reach;
	int rtt_ms;
	bool seen; /* still in the configuration (apply) */
	struct trunk_rt *next;
};

static pthread_mutex_t rt_lock = PTHREAD_MUTEX_INITIALIZER;
static struct trunk_rt *rts;

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct trunk_rt *rt_find(const char *name)
{
	for (struct trunk_rt *r = rts; r; r = r->next)
		if (!strcmp(r->name, name))
			return r;
	return NULL;
}

static void set_reach(struct trunk_rt *r, enum reach reach, int rtt)
{
	enum reach old;

	pthread_mutex_lock(&rt_lock);
	old = r->reach;
	r->reach = reach;
	r->rtt_ms = rtt;
	pthread_mutex_unlock(&rt_lock);
	if (old == reach)
		return;
	if (reach == REACH_NO)
		px_log_warning("chan_sip: trunk %s is Unreachable (no answer to OPTIONS in %d ms)",
			       r->name, r->timeout_ms);
	else if (reach == REACH_YES)
		px_verbose(1, "chan_sip: trunk %s is Reachable (%d ms)", r->name, rtt);
	PX_EVENT_EMIT(PX_EV_TRUNK_REACHABILITY, NULL, NULL, PX_EVS("trunk", r->name),
		      PX_EVS("reachable", reach == REACH_YES ? "yes" : "no"),
		      PX_EVI("rtt_ms", reach == REACH_YES ? rtt : -1));
}

static void options_end(struct trunk_rt *r)
{
	if (r->nh) {
		nua_handle_destroy(r->nh);
		r->nh = NULL;
	}
	su_timer_reset(r->deadline);
}

static void qualify_deadline(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct trunk_rt *r = (struct trunk_rt *)arg;

	(void)m;
	(void)t;
	if (!r->nh)
		return;
	options_end(r);
	set_reach(r, REACH_NO, -1);
}

static void qualify_send(su_root_magic_t *m, su_timer_t *t, su_timer_arg_t *arg)
{
	struct trunk_rt *r = (struct trunk_rt *)arg;

	(void)m;
	(void)t;
	if (r->nh)
		return; /* the last one is still waiting for its deadline */
	r->nh = nua_handle(sip.nua, NULL, NUTAG_URL(r->uri), SIPTAG_TO_STR(r->to),
			   TAG_IF(r->proxy[0], NUTAG_PROXY(r->proxy)), TAG_END());
	if (!r->nh)
		return;
	r->sent_ms = mono_ms();
	nua_options(r->nh, TAG_END());
	su_timer_set_interval(r->deadline, qualify_deadline, (su_timer_arg_t *)r,
			      (su_duration_t)r->timeout_ms);
}

static void qualify_stop(struct trunk_rt *r)
{
	options_end(r);
	su_timer_destroy(r->timer);
	su_timer_destroy(r->deadline);
	r->timer = r->deadline = NULL;
}

static void qualify_configure(struct trunk_rt *r, const struct sip_trunk *t)
{
	char hp[300];

	sip_trunk_hostport(t, hp, sizeof(hp));
	snprintf(r->uri, sizeof(r->uri), "sip:%s", hp);
	snprintf(r->to, sizeof(r->to), "<sip:%s>", t->from_domain);
	snprintf(r->proxy, sizeof(r->proxy), "%s", t->outbound_proxy);
	r->timeout_ms = t->qualify_timeout_ms;
	if (t->qualify == r->qualify && r->timer)
		return;
	qualify_stop(r);
	r->qualify = t->qualify;
	if (!t->qualify) {
		set_reach(r, REACH_UNKNOWN, -1);
		return;
	}
	r->timer = su_timer_create(su_root_task(sip.root), (su_duration_t)t->qualify * 1000);
	r->deadline = su_timer_create(su_root_task(sip.root), (su_duration_t)r->timeout_ms);
	if (!r->timer || !r->deadline) {
		px_log_error("chan_sip: trunk %s: cannot start qualify", r->name);
		qualify_stop(r);
		return;
	}
	su_timer_set_for_ever(r->timer, qualify_send, (su_timer_arg_t *)r);
	qualify_send(NULL, NULL, (su_timer_arg_t *)r); /* the first at once */
}

static void rt_free(struct trunk_rt *r)
{
	qualify_stop(r);
	if (r->reg)
		sip_outreg_destroy(r->reg);
	free(r);
}

void sip_trunks_apply(const struct sip_config *cfg)
{
	struct trunk_rt **pp;

	for (struct trunk_rt *r = rts; r; r = r->next)
		r->seen = false;
	for (size_t i = 0; i < cfg->ntrunks; i++) {
		const struct sip_trunk *t = &cfg->trunks[i];
		struct trunk_rt *r = rt_find(t->ep.name);
		if (!r) {
			r = calloc(1, sizeof(*r));
			if (!r) {
				px_log_error("chan_sip: trunk %s: out of memory", t->ep.name);
				continue;
			}
			snprintf(r->name, sizeof(r->name), "%s", t->ep.name);
			pthread_mutex_lock(&rt_lock);
			r->next = rts;
			rts = r;
			pthread_mutex_unlock(&rt_lock);
		}
		r->seen = true;
		if (t->reg && !r->reg)
			r->reg = sip_outreg_new(t->ep.name);
		if (!t->reg && r->reg) {
			struct sip_outreg *old = r->reg;
			pthread_mutex_lock(&rt_lock);
			r->reg = NULL;
			pthread_mutex_unlock(&rt_lock);
			sip_outreg_destroy(old);
		}
		if (r->reg)
			sip_outreg_configure(r->reg, t);
		qualify_configure(r, t);
	}
	pthread_mutex_lock(&rt_lock);
	for (pp = &rts; *pp;) {
		struct trunk_rt *r = *pp;
		if (r->seen) {
			pp = &r->next;
			continue;
		}
		*pp = r->next;
		pthread_mutex_unlock(&rt_lock);
		rt_free(r);
		pthread_mutex_lock(&rt_lock);
	}
	pthread_mutex_unlock(&rt_lock);
}

void sip_trunks_stop(void)
{
	struct trunk_rt *list;

	pthread_mutex_lock(&rt_lock);
	list = rts;
	rts = NULL;
	pthread_mutex_unlock(&rt_lock);
	while (list) {
		struct trunk_rt *next = list->next;
		rt_free(list);
		list = next;
	}
}

bool sip_trunk_reachable(const char *name)
{
	bool ok = true;

	pthread_mutex_lock(&rt_lock);
	struct trunk_rt *r = rt_find(name);
	if (r && r->reach == REACH_NO)
		ok = false;
	pthread_mutex_unlock(&rt_lock);
	return ok;
}

bool sip_trunk_response(int event, int status, nua_handle_t *nh, const void *sipmsg)
{
	for (struct trunk_rt *r = rts; r; r = r->next) {
		if (event == nua_r_options && r->nh == nh) {
			if (status < 200)
				return true;
			options_end(r);
			/* Any answer from the carrier means it is there, except
			 * 408 and 503: what sofia reports when nothing answered or
			 * the transport failed (ICMP unreachable, a refused
			 * connection), and what a carrier out of service says. */
			if (sipmsg && status != 408 && status != 503)
				set_reach(r, REACH_YES, (int)(mono_ms() - r->sent_ms));
			else
				set_reach(r, REACH_NO, -1);
			return true;
		}
		if (r->reg && sip_outreg_response(r->reg, event, status, nh, sipmsg))
			return true;
	}
	/* A handle a registration let go of after its un-REGISTER (the only
	 * requests sent with nua_method are REGISTERs). */
	if (event == nua_r_method && status >= 200) {
		nua_handle_destroy(nh);
		return true;
	}
	return event == nua_r_method || event == nua_r_options;
}

/* ---- console ---- */

static const char *transport_name(enum sip_transport t)
{
	return t == SIP_TP_TLS ? "tls" : t == SIP_TP_TCP ? "tcp" : "udp";
}

static enum px_cli_status cmd_show_trunks(px_cli *cli, int argc, char **argv)
{
	struct sip_config *cfg;

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	cfg = sip_stack_config();
	if (!cfg)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, "%-16s %-28s %-4s %-12s %-16s %-13s %s\n", "Trunk", "Host", "Tran",
		      "Context", "Match", "Status", "Registration");
	for (size_t i = 0; i < cfg->ntrunks; i++) {
		const struct sip_trunk *t = &cfg->trunks[i];
		char host[300], match[80] = "-", status[32] = "Unmonitored", regstate[32] = "-";
		char entry[64];

		snprintf(host, sizeof(host), "%s%s%.0d", t->host, t->port ? ":" : "", t->port);
		if (t->nmatch) {
			sip_acl_format(&t->match[0], entry, sizeof(entry));
			snprintf(match, sizeof(match), "%s%s", entry, t->nmatch > 1 ? ",..." : "");
		}
		pthread_mutex_lock(&rt_lock);
		struct trunk_rt *r = rt_find(t->ep.name);
		if (r && t->qualify) {
			if (r->reach == REACH_YES)
				snprintf(status, sizeof(status), "OK (%d ms)", r->rtt_ms);
			else if (r->reach == REACH_NO)
				snprintf(status, sizeof(status), "UNREACHABLE");
			else
				snprintf(status, sizeof(status), "UNKNOWN");
		}
		if (r && r->reg)
			snprintf(regstate, sizeof(regstate), "%s", sip_outreg_state(r->reg));
		pthread_mutex_unlock(&rt_lock);
		px_cli_printf(cli, "%-16s %-28s %-4s %-12s %-16s %-13s %s\n", t->ep.name, host,
			      transport_name(t->transport), t->ep.context, match, status,
			      t->reg ? regstate : "-");
	}
	px_cli_printf(cli, "%zu trunk%s\n", cfg->ntrunks, cfg->ntrunks == 1 ? "" : "s");
	sip_config_unref(cfg);
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_show_trunk(px_cli *cli, int argc, char **argv)
{
	struct sip_config *cfg;
	const struct sip_trunk *t;
	char entry[64], hp[300];

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	cfg = sip_stack_config();
	if (!cfg)
		return PX_CLI_FAILURE;
	t = sip_config_trunk(cfg, argv[3]);
	if (!t) {
		px_cli_printf(cli, "Unable to find trunk '%s'\n", argv[3]);
		sip_config_unref(cfg);
		return PX_CLI_FAILURE;
	}
	sip_trunk_hostport(t, hp, sizeof(hp));
	px_cli_printf(cli, " Trunk:         %s\n", t->ep.name);
	px_cli_printf(cli, " Defined at:    %s:%d\n", t->ep.file, t->ep.line);
	px_cli_printf(cli, " Host:          sip:%s\n", hp);
	px_cli_printf(cli, " Outbound proxy: %s\n", t->outbound_proxy[0] ? t->outbound_proxy : "-");
	px_cli_printf(cli, " Username:      %s\n", t->username[0] ? t->username : "-");
	px_cli_printf(cli, " Realm:         %s\n", t->realm[0] ? t->realm : "(any)");
	px_cli_printf(cli, " Register:      %s (contact %s, expiry %d s)\n", t->reg ? "yes" : "no",
		      t->contact_user[0] ? t->contact_user : "-", t->expiry);
	px_cli_printf(cli, " From:          %s@%s\n", t->from_user[0] ? t->from_user : "(caller)",
		      t->from_domain);
	px_cli_printf(cli,
		      " Identity:      send_pai %s, send_rpid %s, trust_id_outbound %s, "
		      "trust_id_inbound %s\n",
		      t->send_pai ? "yes" : "no", t->send_rpid ? "yes" : "no",
		      t->trust_id_outbound ? "yes" : "no", t->trust_id_inbound ? "yes" : "no");
	px_cli_printf(cli, " Context:       %s (DID from %s)\n", t->ep.context,
		      t->did_from_to ? "To" : "Request-URI");
	px_cli_printf(
		cli, " DTMF mode:     %s\n",
		(const char *const[]){"rfc4733", "info", "inband", "auto"}[t->ep.dtmf_mode & 3]);
	px_cli_printf(cli, " Match:        ");
	for (size_t i = 0; i < t->nmatch; i++) {
		sip_acl_format(&t->match[i], entry, sizeof(entry));
		px_cli_printf(cli, " %s", entry);
	}
	px_cli_printf(cli, "%s\n", t->nmatch ? "" : " (none)");
	pthread_mutex_lock(&rt_lock);
	struct trunk_rt *r = rt_find(t->ep.name);
	if (t->qualify)
		px_cli_printf(cli, " Qualify:       every %d s, timeout %d ms: %s\n", t->qualify,
			      t->qualify_timeout_ms,
			      !r || r->reach == REACH_UNKNOWN ? "Unknown"
			      : r->reach == REACH_YES         ? "Reachable"
							      : "Unreachable");
	else
		px_cli_printf(cli, " Qualify:       off\n");
	if (r && r->reach == REACH_YES)
		px_cli_printf(cli, " RTT:           %d ms\n", r->rtt_ms);
	pthread_mutex_unlock(&rt_lock);
	sip_config_unref(cfg);
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_show_registry(px_cli *cli, int argc, char **argv)
{
	size_t n = 0;

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	px_cli_printf(cli, "%-16s %-32s %-8s %-12s %-24s %s\n", "Trunk", "Username", "Refresh",
		      "State", "Last response", "Next attempt");
	pthread_mutex_lock(&rt_lock);
	for (struct trunk_rt *r = rts; r; r = r->next) {
		char line[400];
		if (!r->reg)
			continue;
		sip_outreg_show(r->reg, line, sizeof(line));
		px_cli_printf(cli, "%s\n", line);
		n++;
	}
	pthread_mutex_unlock(&rt_lock);
	px_cli_printf(cli, "%zu SIP registration%s.\n", n, n == 1 ? "" : "s");
	return PX_CLI_SUCCESS;
}

static void complete_trunk(px_cli_completion *c, int argc, char **argv, int pos)
{
	struct sip_config *cfg;

	if (pos != 3 || !(cfg = sip_stack_config()))
		return;
	for (size_t i = 0; i < cfg->ntrunks; i++)
		px_cli_complete_add(c, cfg->trunks[i].ep.name);
	sip_config_unref(cfg);
}

static const struct px_cli_command commands[] = {
	{"sip show trunks", "List the SIP trunks",
	 "Usage: sip show trunks\n"
	 "       Lists the trunks of sip.conf: the carrier, transport, inbound context,\n"
	 "       match ACL, qualify status with its round-trip time, registration state.",
	 cmd_show_trunks, NULL, PX_ROLE_MONITOR},
	{"sip show trunk", "Show one SIP trunk",
	 "Usage: sip show trunk <name>\n"
	 "       Shows a trunk's settings, its match ACL and qualify state.",
	 cmd_show_trunk, complete_trunk, PX_ROLE_MONITOR},
	{"sip show registry", "List the outbound registrations of the trunks",
	 "Usage: sip show registry\n"
	 "       For each trunk with register = yes: the user registered at the carrier,\n"
	 "       the refresh interval granted, the state (Unregistered, Registering,\n"
	 "       Registered, Rejected, Failed), the last response and when the next\n"
	 "       attempt or refresh is due.",
	 cmd_show_registry, NULL, PX_ROLE_MONITOR},
};

int sip_trunk_commands_register(px_module *self, px_err *err)
{
	return px_cli_register(self, commands, N(commands), err);
}

void sip_trunk_commands_unregister(void)
{
	px_cli_unregister(commands, N(commands));
}

/* ---- calls through trunks: identities ---- */

/* The raw value of the first header called name that sofia did not parse. */
const char *sip_unknown_header(const void *sipmsg, const char *name)
{
	sip_t const *s = sipmsg;

	for (sip_unknown_t const *u = s ? s->sip_unknown : NULL; u; u = u->un_next)
		if (u->un_name && !strcasecmp(u->un_name, name))
			return u->un_value;
	return NULL;
}

/* Every value of the headers called name, joined by ", " ("" when none). */
void sip_unknown_headers(const void *sipmsg, const char *name, char *buf, size_t size)
{
	sip_t const *s = sipmsg;
	size_t used = 0;

	buf[0] = '\0';
	for (sip_unknown_t const *u = s ? s->sip_unknown : NULL; u; u = u->un_next) {
		if (!u->un_name || strcasecmp(u->un_name, name) || !u->un_value)
			continue;
		int n = snprintf(buf + used, size - used, "%s%s", used ? ", " : "", u->un_value);
		if (n < 0 || (size_t)n >= size - used) {
			buf[used] = '\0'; /* whole values only */
			return;
		}
		used += (size_t)n;
	}
}

/* user and display name of a name-addr ("\"Bob\" <sip:+1555@x>"). */
static bool name_addr(const char *value, char *num, size_t nsize, char *name, size_t namesize)
{
	su_home_t home[1] = {SU_HOME_INIT(home)};
	sip_from_t *a = value ? sip_from_make(home, value) : NULL;
	bool ok = a && a->a_url->url_user;

	if (ok) {
		snprintf(num, nsize, "%s", a->a_url->url_user);
		if (a->a_display) {
			const char *d = a->a_display;
			size_t len = strlen(d);
			if (len >= 2 && d[0] == '"' && d[len - 1] == '"') {
				d++;
				len -= 2;
			}
			snprintf(name, namesize, "%.*s", (int)len, d);
		}
	}
	su_home_deinit(home);
	return ok;
}

void sip_trunk_inbound_caller(const struct sip_trunk *t, const void *sipmsg, char *num,
			      size_t nsize, char *name, size_t namesize)
{
	sip_t const *s = sipmsg;

	num[0] = name[0] = '\0';
	if (t->trust_id_inbound &&
	    (name_addr(sip_unknown_header(s, "P-Asserted-Identity"), num, nsize, name, namesize) ||
	     name_addr(sip_unknown_header(s, "Remote-Party-ID"), num, nsize, name, namesize)))
		return;
	if (s->sip_from && s->sip_from->a_url->url_user)
		snprintf(num, nsize, "%s", s->sip_from->a_url->url_user);
	if (s->sip_from && s->sip_from->a_display) {
		const char *d = s->sip_from->a_display;
		size_t len = strlen(d);
		if (len >= 2 && d[0] == '"' && d[len - 1] == '"') {
			d++;
			len -= 2;
		}
		snprintf(name, namesize, "%.*s", (int)len, d);
	}
}

const char *sip_trunk_did(const struct sip_trunk *t, const void *sipmsg)
{
	sip_t const *s = sipmsg;
	const char *did = NULL;

	if (t->did_from_to && s->sip_to)
		did = s->sip_to->a_url->url_user;
	else if (s->sip_request)
		did = s->sip_request->rq_url->url_user;
	return did && did[0] ? did : "s";
}

/* Characters that may stand in a SIP user part as we write it. */
static void clean_user(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 1 < size; in++)
		if (strchr("+*#-._~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
			   *in))
			out[o++] = *in;
	out[o] = '\0';
}

static void clean_name(const char *in, char *out, size_t size)
{
	size_t o = 0;

	for (; *in && o + 1 < size; in++)
		if (*in != '"' && *in != '\\' && (unsigned char)*in >= ' ')
			out[o++] = *in;
	out[o] = '\0';
}

void sip_trunk_identity(const struct sip_trunk *t, const char *num_in, const char *name_in,
			bool restricted, struct sip_trunk_ident *out)
{
	char num[80], name[80], user[80];

	clean_user(num_in && num_in[0] ? num_in : t->ep.callerid_num, num, sizeof(num));
	clean_name(name_in && name_in[0] ? name_in
					 : (num_in && num_in[0] ? "" : t->ep.callerid_name),
		   name, sizeof(name));
	memset(out, 0, sizeof(*out));
	/* From: the account when from_user is set (carriers that identify the
	 * customer by it), else the caller; anonymous when withheld. */
	if (restricted && !t->from_user[0]) {
		snprintf(out->from, sizeof(out->from),
			 "\"Anonymous\" <sip:anonymous@anonymous.invalid>");
	} else {
		snprintf(user, sizeof(user), "%s", t->from_user[0] ? t->from_user : num);
		if (restricted)
			snprintf(out->from, sizeof(out->from), "\"Anonymous\" <sip:%s@%s>", user,
				 t->from_domain);
		else if (name[0])
			snprintf(out->from, sizeof(out->from), "\"%s\" <sip:%s@%s>", name,
				 user[0] ? user : "anonymous", t->from_domain);
		else
			snprintf(out->from, sizeof(out->from), "<sip:%s@%s>",
				 user[0] ? user : "anonymous", t->from_domain);
	}
	/* The asserted identity goes to the carrier when it may see it: always
	 * when presentation is allowed, with Privacy: id when withheld and the
	 * carrier is trusted to keep it. */
	if (!num[0] || (restricted && !t->trust_id_outbound))
		return;
	if (t->send_pai) {
		if (name[0])
			snprintf(out->pai, sizeof(out->pai), "\"%s\" <sip:%s@%s>", name, num,
				 t->from_domain);
		else
			snprintf(out->pai, sizeof(out->pai), "<sip:%s@%s>", num, t->from_domain);
	}
	if (t->send_rpid)
		snprintf(out->rpid, sizeof(out->rpid),
			 "%s%s%s<sip:%s@%s>;party=calling;privacy=%s;screen=yes",
			 name[0] ? "\"" : "", name, name[0] ? "\" " : "", num, t->from_domain,
			 restricted ? "full" : "off");
	if (restricted)
		snprintf(out->privacy, sizeof(out->privacy), "id");
}
