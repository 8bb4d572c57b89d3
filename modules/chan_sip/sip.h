/*
 * chan_sip's private header: the pieces shared by its files. The module
 * runs one sofia-sip stack (su_root + nua, single-threaded) on its own SIP
 * thread; that thread is the only one that touches nua handles. Other
 * threads (session threads running the dialplan, the registrar's writer)
 * reach it by posting closures with sip_post().
 *
 *   config.c    sip.conf: [general] and the endpoints
 *   stack.c     the SIP thread, nua, the post queue, event dispatch
 *   register.c  REGISTER: digest authentication, the location service
 *   call.c      INVITE in and out: the channel technology "SIP"
 *   sdp.c       SDP offers and answers for G.711
 *   overload.c  refusing new calls while the SIP thread is saturated
 *   commands.c  console commands
 *   trunk.c     trunks: sip.conf "type = trunk", match ACLs, qualify,
 *               "sip show trunks"
 *   outreg.c    outbound registration of trunks, "sip show registry"
 *   nat.c       external addresses, local_net and the TLS transport
 *   tls.c       the TLS certificate check (OpenSSL)
 *   transport.c the transports an endpoint may use; a request's and a
 *               contact's transport
 *   flow.c      TCP/TLS registrations whose connection is gone
 *   redirecting.c  REDIRECTING(): Diversion/History-Info for the dialplan
 *   qualify.c   OPTIONS to endpoints' contacts: Reachable/Unreachable
 *   acl.c       address ACLs (match, local_net), bind address split; no SIP
 *               stack, unit-tested
 *   dtmf.c      digits in SIP INFO, received and sent
 */
#ifndef PLEXUS_CHAN_SIP_H
#define PLEXUS_CHAN_SIP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <plexus/channel.h>
#include <plexus/config.h>
#include <plexus/error.h>
#include <plexus/module.h>

/* sofia-sip's types, kept opaque here so most files need not include it. */
struct nua_s;
struct nua_handle_s;
struct su_root_s;
struct auth_mod_t;

/* ---- configuration (config.c) ---- */

#define SIP_MAX_CODECS 8
#define SIP_CODEC_NAME 16

/* How an endpoint's DTMF travels: RFC 4733 events in the RTP stream, SIP
 * INFO requests, tones in the audio, or auto (RFC 4733 when the far end
 * offers telephone-event, else inband). */
enum sip_dtmf_mode { SIP_DTMF_RFC4733, SIP_DTMF_INFO, SIP_DTMF_INBAND, SIP_DTMF_AUTO };
/* A dtmf_mode of sip.conf (rfc4733 or rfc2833, info, inband, auto), for
 * endpoints and trunks alike; -1 for anything else. */
int sip_dtmf_mode_parse(const char *text, enum sip_dtmf_mode *out);

enum sip_transport { SIP_TP_UDP, SIP_TP_TCP, SIP_TP_TLS };
#define SIP_TP_BIT(t) (1u << (t))
#define SIP_TP_ALL    (SIP_TP_BIT(SIP_TP_UDP) | SIP_TP_BIT(SIP_TP_TCP) | SIP_TP_BIT(SIP_TP_TLS))

struct sip_endpoint {
	char name[64];     /* section name: the AOR and, by default, the auth user */
	char username[64]; /* digest user name */
	char secret[128];
	char context[80];
	char callerid_num[80];
	char callerid_name[80];
	char codecs[SIP_MAX_CODECS][SIP_CODEC_NAME]; /* format names, in preference order */
	int ncodecs;
	enum sip_dtmf_mode dtmf_mode;
	bool nat; /* rport, contact rewrite, symmetric RTP */
	int max_contacts;
	int rtp_timeout;        /* s without RTP before hanging up; 0: never */
	int rtp_timeout_hold;   /* the same while the call is on hold */
	int qualify;            /* s between OPTIONS to each contact; 0: off */
	int qualify_timeout_ms; /* no answer within this: Unreachable */
	char moh_suggest[64];   /* music class its held peers hear; "": default */
	unsigned transports;    /* SIP_TP_BITs its REGISTERs, INVITEs and contacts may use */
	const char *file;       /* where it was defined, for messages */
	int line;
};

/* One entry of an address ACL (acl.c): an address and prefix length
 * (IPv4 or IPv6), permitting or ("!") excluding what it holds. */
struct sip_acl_entry {
	int family; /* AF_INET or AF_INET6 */
	unsigned char addr[16];
	int prefix;
	bool deny; /* "!": an address it holds does not match */
};

/* A carrier trunk ("type = trunk"). Its calls use ep like an endpoint's
 * (context, codecs, NAT, RTP timeouts, name, where it was defined). */
struct sip_trunk {
	struct sip_endpoint ep;
	char host[256]; /* carrier: name or address, without port */
	int port;       /* 0: the transport's default */
	enum sip_transport transport;
	char username[64]; /* outbound digest user; the account */
	char secret[128];
	char realm[64]; /* "" answers any realm the carrier names */
	bool reg;       /* register = yes */
	char contact_user[64];
	int expiry;
	int retry_interval, max_retry_interval, forbidden_retry_interval; /* s */
	char from_user[64];
	char from_domain[128];
	char outbound_proxy[256]; /* a SIP URI, or "" */
	int qualify;              /* s between OPTIONS; 0: off */
	int qualify_timeout_ms;
	bool did_from_to; /* the DID is the To user, not the Request-URI's */
	bool send_pai, send_rpid, trust_id_outbound, trust_id_inbound;
	struct sip_acl_entry *match;
	size_t nmatch;
};

struct sip_config {
	atomic_int refs;
	char bind[256]; /* "127.0.0.1:5060", "[::1]:5060" or "*:5060" */
	bool udp, tcp;
	char realm[64];
	char user_agent[64];
	char rtp_address[64]; /* address put in SDP and bound for RTP */
	int min_expiry, max_expiry, default_expiry;
	struct sip_endpoint *endpoints;
	size_t nendpoints;
	struct sip_trunk *trunks;
	size_t ntrunks;
	/* NAT (nat.c): what peers outside local_net are told */
	char external_signaling[128]; /* host[:port] in Contact and Via; "" none */
	char external_media[64];      /* address in SDP; "" none */
	struct sip_acl_entry *local_net;
	size_t nlocal_net;
	/* TLS (nat.c) */
	bool tls; /* configured and its certificate usable */
	char tls_bind[256];
	char tls_cert_dir[512]; /* holds agent.pem and cafile.pem */
	bool tls_verify_peer;
	int tls_min_version;   /* 2: TLS 1.2, 3: TLS 1.3 */
	char tls_problem[700]; /* why a configured TLS is off; "" when it is not */
	px_config *source;     /* the parsed file, for messages */
};

/* Parse sip.conf (through px_core_load_config). */
int sip_config_load(struct sip_config **out, px_err *err);
struct sip_config *sip_config_ref(struct sip_config *c);
void sip_config_unref(struct sip_config *c);
const struct sip_endpoint *sip_config_endpoint(const struct sip_config *c, const char *name);
/* The endpoint whose digest user name is user. */
const struct sip_endpoint *sip_config_endpoint_by_user(const struct sip_config *c,
						       const char *user);

/* Endpoint-style codec lines (allow/disallow) of a section (config.c). */
int sip_config_codecs(const px_config_section *s, struct sip_endpoint *ep, px_err *err);
/* Parse the common caller ID form into num and name (config.c). */
void sip_config_callerid(const char *s, char *num, size_t nsize, char *name, size_t namesize);

/* ---- address ACLs (acl.c) ---- */

/* Split a bind address ("127.0.0.1:5060", "[::1]:5060", "*:5060") into its
 * host (without brackets) and port; -1 when it has no port. */
int sip_bind_split(const char *bind, char *host, size_t hsize, char *port, size_t psize);

/* "203.0.113.0/24", "198.51.100.7", "2001:db8::/32", "!198.51.100.7":
 * -1 when it is not one. */
int sip_acl_parse(const char *text, struct sip_acl_entry *out);
/* The first entry holding sa decides (an exclusion: false); none: false. */
bool sip_acl_match(const struct sip_acl_entry *acl, size_t n, const struct sockaddr *sa);
/* "!203.0.113.66/32" */
void sip_acl_format(const struct sip_acl_entry *e, char *buf, size_t size);

/* ---- trunks (trunk.c) ---- */

/* Load a "type = trunk" section into t. */
int sip_trunk_load(const px_config_section *s, struct sip_trunk *t, px_err *err);
void sip_trunk_free(struct sip_trunk *t);
const struct sip_trunk *sip_config_trunk(const struct sip_config *c, const char *name);
/* The trunk whose match ACL holds the source address. */
const struct sip_trunk *sip_trunk_identify(const struct sip_config *c, const struct sockaddr *sa);
/* "sip:host:port;transport=tcp" for a trunk (the Request-URI host part). */
void sip_trunk_hostport(const struct sip_trunk *t, char *buf, size_t size);
/* Runtime state of trunks follows the configuration (SIP thread). */
void sip_trunks_apply(const struct sip_config *cfg);
void sip_trunks_stop(void);
/* Is the trunk usable now (qualify says reachable, or qualify is off)? Any thread. */
bool sip_trunk_reachable(const char *name);
/* A response to our OPTIONS or REGISTER (nh is one of ours); SIP thread.
 * true when the handle was a trunk's. */
bool sip_trunk_response(int event, int status, struct nua_handle_s *nh, const void *sipmsg);
int sip_trunk_commands_register(px_module *self, px_err *err);
/* Calls in from a trunk: the DID, and the caller (from PAI or
 * Remote-Party-ID when trust_id_inbound, else From). */
const char *sip_trunk_did(const struct sip_trunk *t, const void *sipmsg);
void sip_trunk_inbound_caller(const struct sip_trunk *t, const void *sipmsg, char *num,
			      size_t nsize, char *name, size_t namesize);
/* Calls out through a trunk: the identity headers ("" when not sent). */
struct sip_trunk_ident {
	char from[400];
	char pai[400];
	char rpid[400];
	char privacy[16];
};
void sip_trunk_identity(const struct sip_trunk *t, const char *num, const char *name,
			bool restricted, struct sip_trunk_ident *out);
/* Headers sofia leaves unparsed: the first value, or all joined by ", ". */
const char *sip_unknown_header(const void *sipmsg, const char *name);
void sip_unknown_headers(const void *sipmsg, const char *name, char *buf, size_t size);
void sip_trunk_commands_unregister(void);

/* ---- outbound registration (outreg.c) ---- */

struct sip_outreg;
struct sip_outreg *sip_outreg_new(const char *trunk);
/* Start (or restart after a configuration change) registering; SIP thread. */
void sip_outreg_configure(struct sip_outreg *r, const struct sip_trunk *t);
/* Unregister and free; SIP thread. */
void sip_outreg_destroy(struct sip_outreg *r);
bool sip_outreg_response(struct sip_outreg *r, int event, int status, struct nua_handle_s *nh,
			 const void *sipmsg);
const char *sip_outreg_state(const struct sip_outreg *r);
/* One line of "sip show registry" (under the trunks' lock). */
void sip_outreg_show(struct sip_outreg *r, char *buf, size_t size);
/* NUTAG_AUTH credentials answering a challenge in sipmsg: "Digest:\"realm\":user:pass". */
int sip_trunk_auth_string(const struct sip_trunk *t, const void *sipmsg, char *buf, size_t size);

/* ---- NAT and TLS (nat.c) ---- */

/* [general]'s NAT and TLS options as px_config_apply leaves them. */
struct sip_nat_opts {
	char *external_signaling_address;
	char *external_media_address;
	char **local_net;
	char *tls_bind;
	char *tls_cert_dir;
	bool tls_verify_peer;
	char *tls_min_version;
};
/* Check them and copy them into c; general is the section, for messages. */
int sip_nat_config(const struct sip_nat_opts *o, const px_config_section *general,
		   struct sip_config *c, px_err *err);
/* Is the peer outside local_net (so it must see external addresses)?
 * False when no external address is configured. */
bool sip_nat_external(const struct sip_config *c, const struct sockaddr *peer);
/* The same for a trunk's host (a name counts as outside). */
bool sip_trunk_is_local(const struct sip_config *c, const struct sip_trunk *t);
/* "udp:1.2.3.4:5060" (a binding's received) → "sip:1.2.3.4:5060;transport=udp":
 * where requests to a contact behind NAT go. out is "" when received is not one. */
void sip_proxy_from_received(const char *received, char *out, size_t size);
/* The address our SDP offers a peer: external_media_address for peers
 * outside local_net, else the RTP address. */
void sip_nat_media_addr(const struct sip_config *c, bool external, struct sockaddr_storage *out);

/* Can sofia-sip's TLS use dir/agent.pem (certificate chain and key) and
 * dir/cafile.pem (trusted CAs: required when need_ca, else checked only
 * when present)? -1 with err naming the file otherwise (tls.c). */
int sip_tls_check(const char *dir, bool need_ca, px_err *err);
/* "1.2" or "1.3" (or "TLSv1.2", "TLSv1.3") → 2 or 3; -1 otherwise (tls.c). */
int sip_tls_version_parse(const char *text, int *minor);
/* Every SSL_CTX the process makes from now on refuses TLS below 1.minor
 * (OpenSSL's system_default: sofia-sip has no tag for it) until
 * sip_tls_floor_restore(), which gives the system's setting back. Around
 * nua_create(), which makes sofia's one TLS context (tls.c). */
int sip_tls_floor_set(int minor, px_err *err);
void sip_tls_floor_restore(void);
/* Can a TCP socket be bound on bind_addr ("127.0.0.1:5061", "[::1]:5061",
 * "*:5061") now? -1 with err saying why (tls.c). */
int sip_tls_bind_check(const char *bind_addr, px_err *err);

/* ---- transports (transport.c) ---- */

struct px_binding;
/* "udp", "tcp", "tls" */
const char *sip_transport_name(enum sip_transport t);
int sip_transport_parse(const char *text, enum sip_transport *out);
/* "tcp, tls", or "any (udp, tcp, tls)" for SIP_TP_ALL. */
void sip_transports_format(unsigned mask, char *buf, size_t size);
/* The transport the request being handled came on (the connection's, not
 * what the peer claims); -1 when unknown. SIP thread. */
int sip_request_transport(enum sip_transport *out);
/* "udp:1.2.3.4:5060", "tls:[::1]:5061": the request's source ("" unknown). */
void sip_request_source(char *buf, size_t size);
/* The transport of a binding's received ("tls:1.2.3.4:5061"); -1: none. */
int sip_received_transport(const char *received, enum sip_transport *out);
/* May a call ring this binding (its transport is one ep allows)? */
bool sip_binding_allowed(const struct sip_endpoint *ep, const struct px_binding *b);
/* Keep the bindings ep allows, whose connection is not known to be gone
 * (in place, in order); returns how many. */
size_t sip_transport_filter(const struct sip_endpoint *ep, struct px_binding *b, size_t n);
/* Where requests to binding b go (NUTAG_PROXY): the REGISTER's source for
 * nat = yes or a restricted transport, else "" (the Contact itself). */
void sip_binding_proxy(const struct sip_endpoint *ep, const struct px_binding *b, char *out,
		       size_t size);

/* ---- connections of TCP/TLS registrations that are gone (flow.c) ---- */

/* A call through proxy (a phone's source address over TCP or TLS) failed
 * with status: when sofia made that response itself (503: could not send,
 * 408: nothing came back), mark the flow gone, with a log line. Other
 * proxies and responses are ignored. SIP thread. */
void sip_flow_failed(const char *endpoint, const char *proxy, int status, const void *sipmsg);
bool sip_flow_gone(const char *endpoint, const char *proxy);
/* Is the connection binding b of endpoint came on marked gone? */
bool sip_flow_binding_gone(const char *endpoint, const struct px_binding *b);
/* The endpoint registered from received ("tls:1.2.3.4:5061"): that
 * flow is alive. Any thread. */
void sip_flow_registered(const char *endpoint, const char *received);
void sip_flow_forget_all(void);

/* ---- the stack (stack.c) ---- */

struct sip_stack {
	struct su_root_s *root;
	struct nua_s *nua;
	struct auth_mod_t *auth;
	struct sip_config *config; /* read by the SIP thread; swapped there on reload */
	char contact_host[256];    /* host[:port] of our own URIs */
	struct sockaddr_storage rtp_addr;
	bool debug;          /* SIP messages to the log */
	bool tls_running;    /* the TLS listener is up */
	int tls_min_version; /* its floor: TLS 1.N */
};

extern struct sip_stack sip;

/* Run fn(arg) on the SIP thread. From the SIP thread itself it runs at once.
 * Returns -1 when the stack is stopping (fn will not run). */
int sip_post(void (*fn)(void *arg), void *arg);
/* Run fn(arg) on the SIP thread and wait until it has run. */
int sip_call_sync(void (*fn)(void *arg), void *arg);
bool sip_on_thread(void);

int sip_stack_start(struct sip_config *cfg, px_err *err);
void sip_stack_stop(void);
/* Swap in a new configuration (on the SIP thread). */
void sip_stack_reconfigure(struct sip_config *cfg);
/* Current configuration, with a reference (any thread). */
struct sip_config *sip_stack_config(void);
void sip_set_debug(bool on);

/* ---- REGISTER (register.c) ---- */

struct sip_event; /* stack.c passes its event through to handlers */
void sip_register_incoming(struct nua_handle_s *nh, const void *sipmsg);
/* (Re)load the digest users from the configuration; SIP thread. */
void sip_auth_load_users(const struct sip_config *cfg);
/* Digest check of a request; SIP thread. Returns the authenticated endpoint,
 * or NULL after responding (401 challenge, 403) to the request. */
const struct sip_endpoint *sip_authenticate(struct nua_handle_s *nh, const void *sipmsg,
					    const char *method);
/* Tell a SecurityEvent (reason, the endpoint claimed, method, source
 * "udp:1.2.3.4:5060"). */
void sip_security_event(const char *reason, const char *endpoint, const char *method,
			const char *source);

/* ---- calls (call.c) ---- */

extern const struct px_channel_tech sip_tech;
/* The magic of a refused INVITE's handle, destroyed when its transaction ends. */
extern char sip_rejected_magic;
void sip_call_incoming(struct nua_handle_s *nh, void *hmagic, const void *sipmsg);
/* Every other nua event about a call handle (responses, BYE, CANCEL, state). */
void sip_call_event(int event, int status, const char *phrase, struct nua_handle_s *nh,
		    void *hmagic, const void *sipmsg, void *tags);
/* Hang up every call (shutdown) and count them. */
size_t sip_calls_active(void);
/* The once-a-second check of answered calls for RTP that stopped
 * (rtp_timeout); started and stopped on the SIP thread. */
int sip_rtp_watch_start(struct su_root_s *root);
void sip_rtp_watch_stop(void);

/* ---- overload control (overload.c) ---- */

/* Measure the SIP thread's load every quarter of a second and read the
 * queues of the SIP UDP sockets (udp_fds, udp_n of them; none for TCP or
 * TLS only) at every new INVITE; SIP thread, after nua_create. */
int sip_overload_start(struct su_root_s *root, const int *udp_fds, size_t udp_n);
void sip_overload_stop(void);
/* Should this new INVITE be refused with 503? Counts it if so. */
bool sip_overload_refuse(bool has_credentials);
/* One line for "sip show settings": what is watched, whether new calls
 * are refused now, how many were since the SIP stack started. Any thread. */
void sip_overload_describe(char *buf, size_t size);

/* ---- SDP (sdp.c) ---- */

struct px_format;

/* One payload type of an SDP: its format (known to the codec registry),
 * number and fmtp. */
struct sip_payload {
	const struct px_format *format;
	int pt;
	char fmtp[128];
};

/* A telephone-event payload type and its clock (RFC 4733: the audio's). */
#define SIP_MAX_EVENTS 4
struct sip_event {
	int pt;
	unsigned clock;
};

struct sip_media {
	struct sockaddr_storage addr;                /* where the far end receives RTP */
	struct sip_payload payloads[SIP_MAX_CODECS]; /* known formats, in the sender's order */
	int npayloads;
	struct sip_event events[SIP_MAX_EVENTS]; /* telephone-events, one per clock */
	int nevents;
	unsigned ptime; /* a=ptime, 0 if absent */
	enum { SIP_SENDRECV, SIP_SENDONLY, SIP_RECVONLY, SIP_INACTIVE } direction;
	bool has_audio;
	bool rtcp_mux; /* a=rtcp-mux */
};

/* The format a codec name of sip.conf means ("pcmu" -> "ulaw"), or NULL
 * for a name no codec module provides. */
const char *sip_codec_canonical(const char *name);
/* Parse an SDP body: its audio stream, with the payloads whose format is
 * registered. -1 with err when the body is not SDP or has no audio stream. */
int sip_sdp_parse(const char *body, size_t len, struct sip_media *out, px_err *err);
/* The audio codecs an SDP names, for messages ("G722/8000 (9), AMR-WB/16000
 * (98)"); "" when it is not SDP. */
void sip_sdp_describe(const char *body, size_t len, char *buf, size_t size);
/* The payload type we offer for format f when it is the index-th codec
 * of our offer (static ones keep theirs). */
int sip_sdp_offer_pt(const struct px_format *f, int index);
/* The telephone-event of m to use beside audio of RTP clock `clock`: the
 * one at that clock, else the one at 8000 (far ends that offer only that,
 * whatever the codec); its payload type and (in *event_clock) clock, or
 * -1 when m has neither. */
int sip_sdp_event_for(const struct sip_media *m, unsigned clock, unsigned *event_clock);
/* The telephone-events we offer beside payloads: one per RTP clock among
 * them, 101 for 8000, 127, 126... for the others; their count. */
int sip_sdp_offer_events(const struct sip_payload *payloads, int npayloads,
			 struct sip_event *events, int max);
/* Write our SDP (offer or answer) into buf. */
int sip_sdp_build(char *buf, size_t size, const struct sockaddr_storage *rtp_addr, uint16_t port,
		  const struct sip_payload *payloads, int npayloads, const struct sip_event *events,
		  int nevents, int direction, bool rtcp_mux, uint64_t session_id, unsigned version);

/* ---- qualify of endpoints' contacts (qualify.c) ---- */

/* The one-second tick that follows the registrar; SIP thread. */
int sip_qualify_start(struct su_root_s *root);
void sip_qualify_stop(void);
/* A response to one of our OPTIONS; true when the handle was ours. */
bool sip_qualify_response(int event, int status, struct nua_handle_s *nh, const void *sipmsg);
/* May a call ring this contact (not found Unreachable)? Any thread. */
bool sip_qualify_usable(const char *endpoint, const char *contact);
/* "OK (3 ms)", "UNREACHABLE" or "UNKNOWN": one contact, or the endpoint's best. */
void sip_qualify_status(const char *endpoint, const char *contact, char *buf, size_t size);
void sip_qualify_summary(const char *endpoint, char *buf, size_t size);

/* ---- REDIRECTING() (redirecting.c) ---- */

int sip_redirecting_register(px_module *self, px_err *err);
void sip_redirecting_unregister(void);

/* ---- console (commands.c) ---- */

int sip_commands_register(px_module *self, px_err *err);

/* ---- DTMF in SIP INFO (dtmf.c) ---- */

/* The digit and duration of an INFO body of content type type
 * (application/dtmf-relay or application/dtmf); -1 when it holds none. */
int sip_dtmf_parse_info(const char *type, const char *body, size_t len, char *digit,
			unsigned *duration_ms);
/* An application/dtmf-relay body for digit. */
int sip_dtmf_info_body(char digit, unsigned duration_ms, char *buf, size_t size);
/* An INFO in ch's dialog (SIP thread): answered, and its digit queued on ch. */
void sip_dtmf_info_received(px_channel *ch, struct nua_handle_s *nh, const void *sipmsg);

#endif
