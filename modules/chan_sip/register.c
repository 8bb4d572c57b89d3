/*
 * REGISTER for chan_sip: digest authentication of requests against the
 * endpoints' secrets (sofia-sip's auth_module: MD5, qop=auth, nonces that
 * expire with stale=true, the same 403 for an unknown user as for a wrong
 * password), and hand-over of an authenticated REGISTER to the location
 * service. The registrar answers once the binding is on disk; the answer
 * comes back to the SIP thread, which sends the saved request's response.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sofia-sip/auth_module.h>
#include <sofia-sip/auth_plugin.h>
#include <sofia-sip/msg_addr.h>
#include <sofia-sip/nua.h>
#include <sofia-sip/nua_tag.h>
#include <sofia-sip/sip_header.h>
#include <sofia-sip/sip_status.h>
#include <sofia-sip/su_alloc.h>

#include <plexus/event.h>
#include <plexus/location.h>
#include <plexus/log.h>

#include "sip.h"

static auth_challenger_t const challenger = {
	401,
	"Unauthorized",
	sip_www_authenticate_class,
	sip_authentication_info_class,
};

void sip_auth_load_users(const struct sip_config *cfg)
{
	/* A fresh module per configuration: removed endpoints lose their
	 * passwords at once; phones re-authenticate on the stale nonce. */
	auth_mod_t *am =
		auth_mod_create(sip.root, AUTHTAG_METHOD("Digest"), AUTHTAG_REALM(cfg->realm),
				AUTHTAG_ALGORITHM("MD5"), AUTHTAG_QOP("auth"), AUTHTAG_EXPIRES(300),
				AUTHTAG_FORBIDDEN(1), AUTHTAG_ALLOW("ACK, BYE, CANCEL"), TAG_END());
	if (!am) {
		px_log_error("chan_sip: cannot create the digest module; keeping the old users");
		return;
	}
	for (size_t i = 0; i < cfg->nendpoints; i++) {
		const struct sip_endpoint *ep = &cfg->endpoints[i];
		auth_passwd_t *apw = auth_mod_addpass(am, ep->username, cfg->realm);
		if (apw)
			apw->apw_pass = ep->secret; /* cfg outlives the module's use of it */
	}
	if (sip.auth)
		auth_mod_destroy(sip.auth);
	sip.auth = am;
}

/* The user name a request's credentials claim ("" without credentials). */
static void claimed_user(sip_t const *s, char *out, size_t size)
{
	const char *u = NULL;
	size_t len;

	out[0] = '\0';
	if (s->sip_authorization)
		u = msg_params_find(s->sip_authorization->au_params, "username=");
	if (!u)
		return;
	len = strlen(u);
	if (len >= 2 && u[0] == '"' && u[len - 1] == '"') {
		u++;
		len -= 2;
	}
	snprintf(out, size, "%.*s", (int)len, u);
}

/* A SecurityEvent: who tried what from where, and why it was refused. */
void sip_security_event(const char *reason, const char *endpoint, const char *method,
			const char *source)
{
	PX_EVENT_EMIT(PX_EV_SECURITY, NULL, NULL, PX_EVS("service", "SIP"),
		      PX_EVS("reason", reason), PX_EVS("source", source),
		      PX_EVS("endpoint", endpoint), PX_EVS("method", method));
}

const struct sip_endpoint *sip_authenticate(nua_handle_t *nh, const void *sipmsg,
					    const char *method)
{
	sip_t const *s = sipmsg;
	su_home_t home[1] = {SU_HOME_INIT(home)};
	auth_status_t *as;
	const struct sip_endpoint *ep = NULL;
	msg_t *msg = nua_current_request(sip.nua);
	char source[200];

	as = auth_status_new(home);
	if (!as) {
		nua_respond(nh, 500, sip_500_Internal_server_error, NUTAG_WITH_THIS(sip.nua),
			    TAG_END());
		return NULL;
	}
	as->as_method = method;
	as->as_realm = sip.config->realm;
	as->as_source = msg ? msg_addrinfo(msg) : NULL;
	as->as_user_uri = s->sip_from ? s->sip_from->a_url : NULL;
	if (s->sip_payload) {
		as->as_body = s->sip_payload->pl_data;
		as->as_bodylen = s->sip_payload->pl_len;
	}
	auth_mod_verify(sip.auth, as, s->sip_authorization, &challenger);
	px_debug(2, "chan_sip: %s authentication: %d %s (stale %d)", method, as->as_status,
		 as->as_phrase ? as->as_phrase : "", as->as_stale);
	if (as->as_status == 0) {
		enum sip_transport tp;
		ep = sip_config_endpoint_by_user(sip.config, as->as_user);
		if (!ep) {
			sip_request_source(source, sizeof(source));
			sip_security_event("unknown endpoint", as->as_user ? as->as_user : "",
					   method, source);
			nua_respond(nh, 403, sip_403_Forbidden, NUTAG_WITH_THIS(sip.nua),
				    TAG_END());
		} else if (sip_request_transport(&tp) < 0 || !(ep->transports & SIP_TP_BIT(tp))) {
			/* Only after the digest: a stranger learns nothing, and
			 * this 403 looks like a wrong password's. */
			char allowed[64];
			sip_request_source(source, sizeof(source));
			sip_transports_format(ep->transports, allowed, sizeof(allowed));
			px_log_notice("chan_sip: %s from %s (%s): transport not allowed (only %s)",
				      method, source[0] ? source : "unknown source", ep->name,
				      allowed);
			sip_security_event("transport not allowed", ep->name, method, source);
			nua_respond(nh, 403, sip_403_Forbidden, NUTAG_WITH_THIS(sip.nua),
				    TAG_END());
			ep = NULL;
		}
	} else if (as->as_status == 401 && as->as_response) {
		nua_respond(nh, 401, sip_401_Unauthorized,
			    SIPTAG_HEADER((sip_header_t *)as->as_response),
			    NUTAG_WITH_THIS(sip.nua), TAG_END());
	} else {
		int status = as->as_status >= 400 ? as->as_status : 403;
		char user[80];
		sip_request_source(source, sizeof(source));
		px_log_notice("chan_sip: %s from %s: authentication failed (%d)", method,
			      source[0] ? source : "unknown source", status);
		claimed_user(s, user, sizeof(user));
		/* The same 403 goes out either way; the event tells them apart. */
		sip_security_event(sip_config_endpoint_by_user(sip.config, user)
					   ? "wrong password"
					   : "unknown endpoint",
				   user, method, source);
		nua_respond(nh, status, sip_status_phrase(status), NUTAG_WITH_THIS(sip.nua),
			    TAG_END());
	}
	su_home_deinit(home);
	return ep;
}

/* A REGISTER waiting for the registrar's answer. */
struct pending_register {
	nua_handle_t *nh;
	nua_saved_event_t saved[1];
	char aor[PX_AOR_MAX];
	char received[200]; /* the REGISTER's source: "tls:1.2.3.4:5061" */
	int status;
	int min_expires;
	char phrase[64];
	char *contacts; /* "<uri>;expires=N, ..." for the 200 */
};

static void register_respond(void *arg)
{
	struct pending_register *p = arg;
	char min_expires[16];

	snprintf(min_expires, sizeof(min_expires), "%d", p->min_expires);
	nua_respond(p->nh, p->status,
		    sip_status_phrase(p->status) ? sip_status_phrase(p->status) : "Error",
		    NUTAG_WITH_SAVED(p->saved),
		    TAG_IF(p->status == 200 && p->contacts && p->contacts[0],
			   SIPTAG_CONTACT_STR(p->contacts)),
		    TAG_IF(p->status == 423, SIPTAG_MIN_EXPIRES_STR(min_expires)), TAG_END());
	nua_destroy_event(p->saved);
	nua_handle_destroy(p->nh);
	free(p->contacts);
	free(p);
}

/* Called on the registrar's thread once the binding is stored. */
static void register_done(void *ctx, const struct px_register_result *res)
{
	struct pending_register *p = ctx;
	size_t size = 1, used = 0;
	int64_t now = (int64_t)time(NULL);

	p->status = res->status;
	p->min_expires = res->min_expires;
	for (size_t i = 0; i < res->nbindings; i++)
		size += strlen(res->bindings[i].contact) + 32;
	p->contacts = malloc(size);
	if (p->contacts) {
		p->contacts[0] = '\0';
		for (size_t i = 0; i < res->nbindings; i++) {
			const struct px_binding *b = &res->bindings[i];
			int64_t left = b->expires_at - now;
			const char *uri = b->contact;
			size_t len = strlen(uri);
			if (uri[0] == '<' && len > 1 && uri[len - 1] == '>') {
				uri++;
				len -= 2;
			}
			used += (size_t)snprintf(p->contacts + used, size - used,
						 "%s<%.*s>;expires=%lld", used ? ", " : "",
						 (int)len, uri, (long long)(left > 0 ? left : 0));
		}
	}
	if (res->status == 200) {
		sip_flow_registered(p->aor, p->received); /* that flow is alive */
		px_verbose(3, "chan_sip: registration of %s: %zu binding%s", p->aor, res->nbindings,
			   res->nbindings == 1 ? "" : "s");
	} else
		px_verbose(3, "chan_sip: registration of %s refused: %d %s", p->aor, res->status,
			   res->reason ? res->reason : "");
	if (sip_post(register_respond, p) < 0) {
		/* The stack is gone; nothing can answer any more. */
		free(p->contacts);
		free(p);
	}
}

/* q=0.5 → 500 */
static int parse_q(const char *q)
{
	double v;

	if (!q)
		return -1;
	v = strtod(q, NULL);
	if (v < 0)
		v = 0;
	if (v > 1)
		v = 1;
	return (int)(v * 1000 + 0.5);
}

void sip_register_incoming(nua_handle_t *nh, const void *sipmsg)
{
	sip_t const *s = sipmsg;
	const struct sip_endpoint *ep;
	struct px_register_contact contacts[16];
	struct px_register_request req = {0};
	struct pending_register *p;
	char received[200], uris[16][PX_CONTACT_MAX];
	px_err err = {""};
	size_t n = 0;
	bool wildcard = false;

	if (!s || !s->sip_to || !s->sip_to->a_url->url_user || !s->sip_call_id || !s->sip_cseq) {
		nua_respond(nh, 400, sip_400_Bad_request, NUTAG_WITH_THIS(sip.nua), TAG_END());
		nua_handle_destroy(nh);
		return;
	}
	ep = sip_authenticate(nh, s, "REGISTER");
	if (!ep) {
		nua_handle_destroy(nh);
		return;
	}
	if (strcmp(ep->name, s->sip_to->a_url->url_user) != 0) {
		char source[200];
		px_log_notice("chan_sip: %s tried to register %s", ep->name,
			      s->sip_to->a_url->url_user);
		sip_request_source(source, sizeof(source));
		sip_security_event("registering another endpoint", ep->name, "REGISTER", source);
		nua_respond(nh, 403, sip_403_Forbidden, NUTAG_WITH_THIS(sip.nua), TAG_END());
		nua_handle_destroy(nh);
		return;
	}
	for (sip_contact_t const *m = s->sip_contact; m; m = m->m_next) {
		if (m->m_url->url_type == url_any) {
			wildcard = true;
			continue;
		}
		if (n == sizeof(contacts) / sizeof(contacts[0]))
			break;
		url_e(uris[n], sizeof(uris[n]), m->m_url);
		contacts[n].uri = uris[n];
		contacts[n].expires = m->m_expires ? atoi(m->m_expires) : -1;
		contacts[n].q = parse_q(m->m_q);
		n++;
	}
	sip_request_source(received, sizeof(received));
	req.aor = ep->name;
	req.contacts = contacts;
	req.ncontacts = n;
	req.wildcard = wildcard;
	req.expires = s->sip_expires ? (int)s->sip_expires->ex_delta : -1;
	req.call_id = s->sip_call_id->i_id;
	req.cseq = s->sip_cseq->cs_seq;
	req.user_agent = s->sip_user_agent ? s->sip_user_agent->g_string : NULL;
	req.received = received;
	req.max_contacts = ep->max_contacts;
	req.min_expires = sip.config->min_expiry;
	req.max_expires = sip.config->max_expiry;
	req.default_expires = sip.config->default_expiry;

	p = calloc(1, sizeof(*p));
	if (!p) {
		nua_respond(nh, 500, sip_500_Internal_server_error, NUTAG_WITH_THIS(sip.nua),
			    TAG_END());
		nua_handle_destroy(nh);
		return;
	}
	p->nh = nh;
	snprintf(p->aor, sizeof(p->aor), "%s", ep->name);
	snprintf(p->received, sizeof(p->received), "%s", received);
	nua_save_event(sip.nua, p->saved);
	if (px_location_update(&req, register_done, p, &err) < 0) {
		px_log_warning("chan_sip: REGISTER of %s: %s", ep->name, err.msg);
		nua_respond(nh, 500, sip_500_Internal_server_error, NUTAG_WITH_SAVED(p->saved),
			    TAG_END());
		nua_destroy_event(p->saved);
		nua_handle_destroy(nh);
		free(p);
	}
}
