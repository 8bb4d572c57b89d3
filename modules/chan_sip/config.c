/*
 * sip.conf for chan_sip: the [general] section (where to listen, realm,
 * expiry limits for registrations, the RTP address) and one section per
 * endpoint ("type = endpoint", usually built from a template). The result is
 * an immutable, refcounted snapshot, so a reload can be refused as a whole
 * when one line is wrong.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <plexus/config.h>
#include <plexus/core.h>
#include <plexus/log.h>

#include "sip.h"

struct general_opts {
	char *bind;
	char **transports;
	char *realm;
	char *user_agent;
	char *rtp_address;
	long long min_expiry, max_expiry, default_expiry;
	struct sip_nat_opts nat; /* checked by nat.c */
};

static const struct px_config_option general_table[] = {
	{"bind", PX_CFG_STRING, "0.0.0.0:5060", 0, 0, NULL, offsetof(struct general_opts, bind),
	 "address:port to listen on for SIP ('*' for every address)"},
	{"transports", PX_CFG_LIST, "udp,tcp", 0, 0, NULL,
	 offsetof(struct general_opts, transports), "udp, tcp or both"},
	{"realm", PX_CFG_STRING, "plexus", 0, 0, NULL, offsetof(struct general_opts, realm),
	 "digest authentication realm"},
	{"user_agent", PX_CFG_STRING, "Plexus", 0, 0, NULL,
	 offsetof(struct general_opts, user_agent), "User-Agent and Server header"},
	{"rtp_address", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct general_opts, rtp_address),
	 "address for RTP and SDP; default: the bind address, or 127.0.0.1 for '*'"},
	{"min_expiry", PX_CFG_INT, "60", 1, 86400, NULL, offsetof(struct general_opts, min_expiry),
	 "shortest registration accepted (423 below it)"},
	{"max_expiry", PX_CFG_INT, "3600", 1, 604800, NULL,
	 offsetof(struct general_opts, max_expiry), "longest registration granted"},
	{"default_expiry", PX_CFG_INT, "3600", 1, 604800, NULL,
	 offsetof(struct general_opts, default_expiry),
	 "registration time when the phone asks for none"},
	{"external_signaling_address", PX_CFG_STRING, NULL, 0, 0, NULL,
	 offsetof(struct general_opts, nat.external_signaling_address),
	 "host[:port] put in Contact and Via for peers outside local_net"},
	{"external_media_address", PX_CFG_STRING, NULL, 0, 0, NULL,
	 offsetof(struct general_opts, nat.external_media_address),
	 "address put in SDP for peers outside local_net"},
	{"local_net", PX_CFG_LIST, NULL, 0, 0, NULL, offsetof(struct general_opts, nat.local_net),
	 "networks (address/prefix) that see our own addresses, not the external ones"},
	{"tls_bind", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct general_opts, nat.tls_bind),
	 "address:port for SIP over TLS (usually port 5061); unset: no TLS"},
	{"tls_cert_dir", PX_CFG_STRING, NULL, 0, 0, NULL,
	 offsetof(struct general_opts, nat.tls_cert_dir),
	 "directory with agent.pem (certificate and key) and cafile.pem (trusted CAs)"},
	{"tls_verify_peer", PX_CFG_BOOL, "no", 0, 0, NULL,
	 offsetof(struct general_opts, nat.tls_verify_peer),
	 "verify the certificate of TLS peers against cafile.pem"},
	{"tls_min_version", PX_CFG_STRING, "1.2", 0, 0, NULL,
	 offsetof(struct general_opts, nat.tls_min_version),
	 "oldest TLS version accepted and offered: 1.2 or 1.3"},
};

struct endpoint_opts {
	char *type;
	char *username;
	char *secret;
	char *context;
	char *callerid;
	char **allow;
	char **disallow;
	bool nat;
	long long max_contacts;
	char *dtmf_mode;
	long long rtp_timeout;
	long long rtp_timeout_hold;
	char *qualify;
	int64_t qualify_timeout;
	char *moh_suggest;
	char **transport;
};

static const struct px_config_option endpoint_table[] = {
	{"type", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct endpoint_opts, type), "endpoint"},
	{"username", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct endpoint_opts, username),
	 "digest user name; default: the section name"},
	{"secret", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct endpoint_opts, secret),
	 "digest password"},
	{"context", PX_CFG_STRING, "default", 0, 0, NULL, offsetof(struct endpoint_opts, context),
	 "dialplan context of the endpoint's calls"},
	{"callerid", PX_CFG_STRING, NULL, 0, 0, NULL, offsetof(struct endpoint_opts, callerid),
	 "caller ID: \"Name\" <number>"},
	{"allow", PX_CFG_LIST, NULL, 0, 0, NULL, offsetof(struct endpoint_opts, allow),
	 "codecs in order of preference: ulaw, alaw"},
	{"disallow", PX_CFG_LIST, NULL, 0, 0, NULL, offsetof(struct endpoint_opts, disallow),
	 "codecs to remove ('all' clears the list)"},
	{"nat", PX_CFG_BOOL, "yes", 0, 0, NULL, offsetof(struct endpoint_opts, nat),
	 "force rport, rewrite the contact to the source address, symmetric RTP"},
	{"max_contacts", PX_CFG_INT, "1", 1, 100, NULL,
	 offsetof(struct endpoint_opts, max_contacts),
	 "registrations kept; a new one replaces the oldest"},
	{"dtmf_mode", PX_CFG_STRING, "rfc4733", 0, 0, NULL,
	 offsetof(struct endpoint_opts, dtmf_mode),
	 "rfc4733, info, inband or auto (RFC 4733 when offered, else inband)"},
	{"rtp_timeout", PX_CFG_INT, "0", 0, 86400, NULL,
	 offsetof(struct endpoint_opts, rtp_timeout),
	 "hang up an answered call after this many seconds without RTP from the endpoint; 0: "
	 "never"},
	{"rtp_timeout_hold", PX_CFG_INT, "0", 0, 86400, NULL,
	 offsetof(struct endpoint_opts, rtp_timeout_hold),
	 "the same while the call is on hold; 0: never"},
	{"qualify", PX_CFG_STRING, "no", 0, 0, NULL, offsetof(struct endpoint_opts, qualify),
	 "OPTIONS to each registered contact: no, yes (every 60 s) or every N seconds; "
	 "contacts that do not answer are not rung"},
	{"qualify_timeout", PX_CFG_DURATION, "3s", 100, 60000, NULL,
	 offsetof(struct endpoint_opts, qualify_timeout),
	 "a contact that does not answer OPTIONS within this is Unreachable"},
	{"moh_suggest", PX_CFG_STRING, "default", 0, 0, NULL,
	 offsetof(struct endpoint_opts, moh_suggest),
	 "music-on-hold class the party this endpoint puts on hold hears"},
	{"transport", PX_CFG_LIST, NULL, 0, 0, NULL, offsetof(struct endpoint_opts, transport),
	 "transports the endpoint may register, call and be called on: udp, tcp, tls or a "
	 "list (tcp,tls); others are refused with 403; default: any"},
};

#define N(t) (sizeof(t) / sizeof((t)[0]))

static const char *const all_codecs[] = {"ulaw", "alaw", "g722", "gsm", "opus"};

static void codec_remove(struct sip_endpoint *ep, const char *name)
{
	for (int i = 0; i < ep->ncodecs; i++) {
		if (!strcmp(ep->codecs[i], name)) {
			memmove(&ep->codecs[i], &ep->codecs[i + 1],
				(size_t)(ep->ncodecs - i - 1) * sizeof(ep->codecs[0]));
			ep->ncodecs--;
			return;
		}
	}
}

static void codec_add(struct sip_endpoint *ep, const char *name)
{
	codec_remove(ep, name);
	if (ep->ncodecs < SIP_MAX_CODECS)
		snprintf(ep->codecs[ep->ncodecs++], SIP_CODEC_NAME, "%s", name);
}

int sip_dtmf_mode_parse(const char *text, enum sip_dtmf_mode *out)
{
	static const struct {
		const char *name;
		enum sip_dtmf_mode mode;
	} modes[] = {{"rfc4733", SIP_DTMF_RFC4733},
		     {"rfc2833", SIP_DTMF_RFC4733},
		     {"info", SIP_DTMF_INFO},
		     {"inband", SIP_DTMF_INBAND},
		     {"auto", SIP_DTMF_AUTO}};

	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
		if (text && !strcasecmp(text, modes[i].name)) {
			*out = modes[i].mode;
			return 0;
		}
	return -1;
}

/* allow/disallow lines apply in file order, templates first, as in Asterisk. */
static int endpoint_codecs(const px_config_section *s, struct sip_endpoint *ep, px_err *err)
{
	bool any = false;

	ep->ncodecs = 0;
	for (const px_config_var *v = px_config_vars(s); v; v = v->next) {
		bool allow = !strcasecmp(v->name, "allow");
		char **list;
		if (!allow && strcasecmp(v->name, "disallow"))
			continue;
		any = true;
		if (px_config_var_list(v, &list, err) < 0)
			return -1;
		for (size_t i = 0; list[i]; i++) {
			const char *name;
			if (!allow && !strcasecmp(list[i], "all")) {
				ep->ncodecs = 0;
				continue;
			}
			if (allow && !strcasecmp(list[i], "all")) {
				for (size_t k = 0; k < N(all_codecs); k++)
					codec_add(ep, all_codecs[k]);
				continue;
			}
			name = sip_codec_canonical(list[i]);
			if (!name) {
				px_err_set(
					err,
					"%s:%d: %s: unknown codec '%s' (known: ulaw, alaw, g722, "
					"gsm, opus)",
					v->file, v->line, v->name, list[i]);
				px_config_list_free(list);
				return -1;
			}
			if (allow)
				codec_add(ep, name);
			else
				codec_remove(ep, name);
		}
		px_config_list_free(list);
	}
	if (!any) {
		codec_add(ep, "ulaw");
		codec_add(ep, "alaw");
	}
	if (ep->ncodecs == 0)
		return px_err_set(err, "%s:%d: endpoint %s allows no codec", ep->file, ep->line,
				  ep->name);
	return 0;
}

/* "Alice" <1001>, Alice <1001>, or just 1001. */
static void parse_callerid(const char *s, char *num, size_t nsize, char *name, size_t namesize)
{
	const char *lt = strchr(s, '<'), *gt = lt ? strchr(lt, '>') : NULL;

	num[0] = name[0] = '\0';
	if (!lt || !gt) {
		snprintf(num, nsize, "%s", s);
		return;
	}
	snprintf(num, nsize, "%.*s", (int)(gt - lt - 1), lt + 1);
	while (*s == ' ' || *s == '"')
		s++;
	const char *end = lt;
	while (end > s && (end[-1] == ' ' || end[-1] == '"'))
		end--;
	snprintf(name, namesize, "%.*s", (int)(end - s), s);
}

static void copy_field(char *dst, size_t size, const char *src, bool *too_long)
{
	if (!src) {
		dst[0] = '\0';
		return;
	}
	if (strlen(src) >= size)
		*too_long = true;
	snprintf(dst, size, "%s", src);
}

/* qualify = no | yes (60 s) | SECONDS (1 .. 86400). */
static int parse_qualify(const px_config_section *s, const char *text, struct sip_endpoint *ep,
			 px_err *err)
{
	bool on;
	char *end;
	long v;

	/* A number first: px_parse_bool would take "1" for yes. */
	v = strtol(text, &end, 10);
	if (*text && !*end && v >= 0 && v <= 86400) {
		ep->qualify = (int)v;
		return 0;
	}
	if (px_parse_bool(text, &on) == 0) {
		ep->qualify = on ? 60 : 0;
		return 0;
	}
	const px_config_var *var = px_config_var_find(s, "qualify");
	return px_err_set(err,
			  "%s:%d: qualify: '%s' is not yes, no or a number of seconds (0-86400)",
			  var ? var->file : ep->file, var ? var->line : ep->line, text);
}

/* transport = udp | tcp | tls, or a list of them; none: any. */
static int parse_transports(const px_config_section *s, char **list, struct sip_endpoint *ep,
			    px_err *err)
{
	const px_config_var *v = px_config_var_find(s, "transport");
	enum sip_transport tp;

	ep->transports = list && list[0] ? 0 : SIP_TP_ALL;
	for (size_t i = 0; list && list[i]; i++) {
		if (sip_transport_parse(list[i], &tp) < 0)
			return px_err_set(
				err, "%s:%d: transport: unknown transport '%s' (udp, tcp, tls)",
				v ? v->file : ep->file, v ? v->line : ep->line, list[i]);
		ep->transports |= SIP_TP_BIT(tp);
	}
	return 0;
}

static int load_endpoint(const px_config_section *s, struct sip_endpoint *ep, px_err *err)
{
	struct endpoint_opts o;
	bool too_long = false;
	int rc = -1;

	memset(ep, 0, sizeof(*ep));
	if (px_config_apply(s, endpoint_table, N(endpoint_table), &o, err) < 0)
		return -1;
	snprintf(ep->name, sizeof(ep->name), "%s", px_config_section_name(s));
	ep->file = px_config_section_file(s);
	ep->line = px_config_section_line(s);
	if (!o.type || strcasecmp(o.type, "endpoint")) {
		const px_config_var *v = px_config_var_find(s, "type");
		if (v)
			px_err_set(err, "%s:%d: type: unknown type '%s' (endpoint or trunk)",
				   v->file, v->line, o.type);
		else
			px_err_set(err, "%s:%d: [%s] has no 'type = endpoint'", ep->file, ep->line,
				   ep->name);
		goto out;
	}
	if (!o.secret || !o.secret[0]) {
		px_err_set(err, "%s:%d: endpoint %s has no secret", ep->file, ep->line, ep->name);
		goto out;
	}
	if (sip_dtmf_mode_parse(o.dtmf_mode, &ep->dtmf_mode) < 0) {
		const px_config_var *v = px_config_var_find(s, "dtmf_mode");
		px_err_set(err, "%s:%d: dtmf_mode: '%s' is not one of rfc4733, info, inband, auto",
			   v ? v->file : ep->file, v ? v->line : ep->line, o.dtmf_mode);
		goto out;
	}
	copy_field(ep->username, sizeof(ep->username), o.username ? o.username : ep->name,
		   &too_long);
	copy_field(ep->secret, sizeof(ep->secret), o.secret, &too_long);
	copy_field(ep->context, sizeof(ep->context), o.context, &too_long);
	copy_field(ep->moh_suggest, sizeof(ep->moh_suggest), o.moh_suggest, &too_long);
	if (o.callerid)
		parse_callerid(o.callerid, ep->callerid_num, sizeof(ep->callerid_num),
			       ep->callerid_name, sizeof(ep->callerid_name));
	else
		snprintf(ep->callerid_num, sizeof(ep->callerid_num), "%s", ep->name);
	if (too_long || strlen(px_config_section_name(s)) >= sizeof(ep->name)) {
		px_err_set(err, "%s:%d: endpoint %s: a value is too long", ep->file, ep->line,
			   px_config_section_name(s));
		goto out;
	}
	ep->nat = o.nat;
	ep->max_contacts = (int)o.max_contacts;
	ep->rtp_timeout = (int)o.rtp_timeout;
	ep->rtp_timeout_hold = (int)o.rtp_timeout_hold;
	if (parse_qualify(s, o.qualify, ep, err) < 0)
		goto out;
	ep->qualify_timeout_ms = (int)o.qualify_timeout;
	if (parse_transports(s, o.transport, ep, err) < 0)
		goto out;
	if (endpoint_codecs(s, ep, err) < 0)
		goto out;
	rc = 0;
out:
	px_config_options_free(endpoint_table, N(endpoint_table), &o);
	return rc;
}

/* A trunk section says so (its templates may); anything else is an endpoint. */
static bool is_trunk(const px_config_section *s)
{
	const px_config_var *v = px_config_var_find(s, "type");

	return v && !strcasecmp(v->value, "trunk");
}

int sip_config_codecs(const px_config_section *s, struct sip_endpoint *ep, px_err *err)
{
	return endpoint_codecs(s, ep, err);
}

void sip_config_callerid(const char *s, char *num, size_t nsize, char *name, size_t namesize)
{
	parse_callerid(s, num, nsize, name, namesize);
}

int sip_config_load(struct sip_config **out, px_err *err)
{
	px_config *cfg = NULL;
	struct general_opts g;
	struct sip_config *c;
	size_t n = 0;

	if (px_core_load_config("sip.conf", &cfg, err) < 0)
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c) {
		px_config_unref(cfg);
		return px_err_set(err, "out of memory");
	}
	atomic_init(&c->refs, 1);
	c->source = cfg;
	if (px_config_apply(px_config_find(cfg, "general"), general_table, N(general_table), &g,
			    err) < 0)
		goto fail;
	snprintf(c->bind, sizeof(c->bind), "%s", g.bind);
	snprintf(c->realm, sizeof(c->realm), "%s", g.realm);
	snprintf(c->user_agent, sizeof(c->user_agent), "%s", g.user_agent);
	snprintf(c->rtp_address, sizeof(c->rtp_address), "%s", g.rtp_address ? g.rtp_address : "");
	if (sip_nat_config(&g.nat, px_config_find(cfg, "general"), c, err) < 0) {
		px_config_options_free(general_table, N(general_table), &g);
		goto fail;
	}
	c->min_expiry = (int)g.min_expiry;
	c->max_expiry = (int)g.max_expiry;
	c->default_expiry = (int)g.default_expiry;
	for (size_t i = 0; g.transports && g.transports[i]; i++) {
		if (!strcasecmp(g.transports[i], "udp")) {
			c->udp = true;
		} else if (!strcasecmp(g.transports[i], "tcp")) {
			c->tcp = true;
		} else {
			const px_config_var *v =
				px_config_var_find(px_config_find(cfg, "general"), "transports");
			px_err_set(err, "%s:%d: transports: unknown transport '%s' (udp, tcp)",
				   v->file, v->line, g.transports[i]);
			px_config_options_free(general_table, N(general_table), &g);
			goto fail;
		}
	}
	px_config_options_free(general_table, N(general_table), &g);
	if (!c->udp && !c->tcp) {
		px_err_set(err, "sip.conf: no transport enabled");
		goto fail;
	}
	if (c->min_expiry > c->max_expiry || c->default_expiry > c->max_expiry ||
	    c->default_expiry < c->min_expiry) {
		px_err_set(err, "sip.conf: expiry limits disagree (min %d, default %d, max %d)",
			   c->min_expiry, c->default_expiry, c->max_expiry);
		goto fail;
	}

	for (const px_config_section *s = px_config_sections(cfg); s; s = px_config_section_next(s))
		if (!px_config_section_is_template(s) &&
		    strcmp(px_config_section_name(s), "general"))
			n++;
	c->endpoints = calloc(n ? n : 1, sizeof(*c->endpoints));
	c->trunks = calloc(n ? n : 1, sizeof(*c->trunks));
	if (!c->endpoints || !c->trunks) {
		px_err_set(err, "out of memory");
		goto fail;
	}
	for (const px_config_section *s = px_config_sections(cfg); s;
	     s = px_config_section_next(s)) {
		if (px_config_section_is_template(s) ||
		    !strcmp(px_config_section_name(s), "general"))
			continue;
		if (is_trunk(s)) {
			struct sip_trunk *t = &c->trunks[c->ntrunks];
			if (sip_trunk_load(s, t, err) < 0)
				goto fail;
			c->ntrunks++;
			if (sip_config_endpoint(c, t->ep.name) ||
			    sip_config_trunk(c, t->ep.name) != t) {
				px_err_set(err, "%s:%d: %s is defined twice", t->ep.file,
					   t->ep.line, t->ep.name);
				goto fail;
			}
			continue;
		}
		struct sip_endpoint *ep = &c->endpoints[c->nendpoints];
		if (load_endpoint(s, ep, err) < 0)
			goto fail;
		if (sip_config_endpoint(c, ep->name) || sip_config_trunk(c, ep->name)) {
			px_err_set(err, "%s:%d: endpoint %s is defined twice", ep->file, ep->line,
				   ep->name);
			goto fail;
		}
		c->nendpoints++;
	}
	for (size_t i = 0; i < c->nendpoints; i++) {
		const struct sip_endpoint *ep = &c->endpoints[i];
		unsigned avail = (c->udp ? SIP_TP_BIT(SIP_TP_UDP) : 0) |
				 (c->tcp ? SIP_TP_BIT(SIP_TP_TCP) : 0) |
				 (c->tls ? SIP_TP_BIT(SIP_TP_TLS) : 0);
		char list[64];
		if (ep->transports & avail)
			continue;
		sip_transports_format(ep->transports, list, sizeof(list));
		px_log_warning("chan_sip: %s:%d: endpoint %s may only use %s, which chan_sip does "
			       "not listen on: it can neither register nor call",
			       ep->file, ep->line, ep->name, list);
	}
	*out = c;
	return 0;
fail:
	sip_config_unref(c);
	return -1;
}

struct sip_config *sip_config_ref(struct sip_config *c)
{
	atomic_fetch_add(&c->refs, 1);
	return c;
}

void sip_config_unref(struct sip_config *c)
{
	if (!c || atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	free(c->endpoints);
	for (size_t i = 0; c->trunks && i < c->ntrunks; i++)
		sip_trunk_free(&c->trunks[i]);
	free(c->trunks);
	free(c->local_net);
	px_config_unref(c->source);
	free(c);
}

const struct sip_endpoint *sip_config_endpoint(const struct sip_config *c, const char *name)
{
	for (size_t i = 0; i < c->nendpoints; i++)
		if (!strcmp(c->endpoints[i].name, name))
			return &c->endpoints[i];
	return NULL;
}

const struct sip_endpoint *sip_config_endpoint_by_user(const struct sip_config *c, const char *user)
{
	for (size_t i = 0; i < c->nendpoints; i++)
		if (!strcmp(c->endpoints[i].username, user))
			return &c->endpoints[i];
	return NULL;
}
