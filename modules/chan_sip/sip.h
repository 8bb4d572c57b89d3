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
	int rtp_timeout;      /* s without RTP before hanging up; 0: never */
	int rtp_timeout_hold; /* the same while the call is on hold */
	const char *file; /* where it was defined, for messages */
	int line;
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
	px_config *source; /* the parsed file, for messages */
};

/* Parse sip.conf (through px_core_load_config). */
int sip_config_load(struct sip_config **out, px_err *err);
struct sip_config *sip_config_ref(struct sip_config *c);
void sip_config_unref(struct sip_config *c);
const struct sip_endpoint *sip_config_endpoint(const struct sip_config *c, const char *name);
/* The endpoint whose digest user name is user. */
const struct sip_endpoint *sip_config_endpoint_by_user(const struct sip_config *c,
						       const char *user);

/* ---- the stack (stack.c) ---- */

struct sip_stack {
	struct su_root_s *root;
	struct nua_s *nua;
	struct auth_mod_t *auth;
	struct sip_config *config; /* read by the SIP thread; swapped there on reload */
	char contact_host[256];    /* host[:port] of our own URIs */
	struct sockaddr_storage rtp_addr;
	bool debug; /* SIP messages to the log */
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

/* Measure the SIP thread's load once a second; SIP thread. */
int sip_overload_start(struct su_root_s *root);
void sip_overload_stop(void);
/* Should this new INVITE be refused with 503? Counts it if so. */
bool sip_overload_refuse(bool has_credentials);

/* ---- SDP (sdp.c) ---- */

struct px_format;

/* One payload type of an SDP: its format (known to the codec registry),
 * number and fmtp. */
struct sip_payload {
	const struct px_format *format;
	int pt;
	char fmtp[128];
};

struct sip_media {
	struct sockaddr_storage addr; /* where the far end receives RTP */
	struct sip_payload payloads[SIP_MAX_CODECS]; /* known formats, in the sender's order */
	int npayloads;
	int dtmf_pt;    /* telephone-event payload type, -1 if none */
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
/* The payload type we offer for format f when it is the index-th codec
 * of our offer (static ones keep theirs). */
int sip_sdp_offer_pt(const struct px_format *f, int index);
/* Write our SDP (offer or answer) into buf. */
int sip_sdp_build(char *buf, size_t size, const struct sockaddr_storage *rtp_addr, uint16_t port,
		  const struct sip_payload *payloads, int npayloads, int dtmf_pt, int direction,
		  bool rtcp_mux, uint64_t session_id, unsigned version);

/* ---- console (commands.c) ---- */

int sip_commands_register(px_module *self, px_err *err);

#endif
