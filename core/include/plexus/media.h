/*
 * Media, first cut: RTP sessions served by the media workers (one thread
 * per core, epoll). A channel technology makes one px_rtp per call leg
 * (a UDP port from the range in rtp.conf), tells it where the far end
 * receives (from SDP), and the core relays packets between two bridged
 * sessions without decoding them, rewriting SSRC, sequence number and
 * timestamp so that each receiver sees one continuous stream even when the
 * source changes (re-INVITE, transfer). Both sessions of a bridge live on
 * the same worker, so no lock is taken per packet.
 */
#ifndef PLEXUS_MEDIA_H
#define PLEXUS_MEDIA_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include <plexus/error.h>

typedef struct px_rtp px_rtp;
struct px_format;

/* What a leg's far end and we agreed on (SDP): the format and payload type
 * of its audio both ways, the packet duration it wants, its fmtp for the
 * format (settings for our encoder) and its telephone-event payload type. */
struct px_rtp_codec {
	const struct px_format *format; /* NULL: unknown, packets are relayed as they come */
	int pt;
	unsigned ptime; /* ms; 0: 20 */
	char fmtp[128];
	int dtmf_pt; /* -1: no RFC 4733 events */
};

struct px_rtp_stats {
	uint64_t rx_packets, rx_bytes; /* received from this leg's far end */
	uint64_t tx_packets, tx_bytes; /* sent to this leg's far end */
	uint64_t rx_lost;              /* gaps in the received sequence numbers */
	uint64_t rx_dropped;           /* received but not relayed (no peer, bad packet) */
	uint64_t rx_bad;               /* of those: not RTP, wrong payload type, undecodable */
	uint64_t transcoded;           /* received packets decoded for a transcoded bridge */
	uint32_t rx_ssrc, tx_ssrc;
	/* RTCP, terminated by each session (see px_rtp_set_rtcp_mux). */
	uint64_t rtcp_rx, rtcp_tx;     /* reports received and sent */
	unsigned jitter_ms;            /* interarrival jitter of what we receive */
	bool remote_reported;          /* the far end reported on our stream: */
	uint32_t remote_lost;          /*   packets of ours it lost, in all */
	unsigned remote_fraction_lost; /*   of 256, since its previous report */
	unsigned remote_jitter_ms;     /*   the jitter it sees */
	unsigned rtt_ms;               /*   round trip (0 until an SR of ours came back) */
};

/* A session on a free even port of local (an address; its port is ignored),
 * from the range of rtp.conf. */
int px_rtp_new(const struct sockaddr *local, px_rtp **out, px_err *err);
uint16_t px_rtp_local_port(const px_rtp *r);
/* The local address and port, as bound. */
void px_rtp_local_addr(const px_rtp *r, struct sockaddr_storage *out);

/* Where the far end receives. With symmetric (NAT) on, the first packet
 * that arrives from elsewhere moves the destination to its source. */
void px_rtp_set_remote(px_rtp *r, const struct sockaddr *addr, bool symmetric);
/* RTCP on the RTP port (rtcp-mux negotiated) instead of port + 1. RTCP
 * arriving on the RTP port is taken as such either way (RFC 5761). */
void px_rtp_set_rtcp_mux(px_rtp *r, bool mux);
/* Stop or resume sending to the far end (hold: sendonly/inactive). */
void px_rtp_set_send(px_rtp *r, bool send);

/* Set what the leg negotiated; a bridge it is in is set up again (relay or
 * transcoding) by the next px_rtp_bridge. */
void px_rtp_set_codec(px_rtp *r, const struct px_rtp_codec *codec);
void px_rtp_get_codec(px_rtp *r, struct px_rtp_codec *out);

/* Relay packets between a and b both ways; replaces any earlier peer. When
 * both legs use one format (or either is unknown) packets are forwarded
 * untouched but for SSRC, sequence, timestamp and payload type; otherwise
 * the worker decodes, translates and re-encodes them, in each receiver's
 * packet duration. Fails when there is no translation path. */
int px_rtp_bridge(px_rtp *a, px_rtp *b, px_err *err);
/* Stop relaying (both directions of r's bridge). */
void px_rtp_unbridge(px_rtp *r);

void px_rtp_get_stats(px_rtp *r, struct px_rtp_stats *out);
/* Whether r's bridge transcodes. */
bool px_rtp_transcoding(px_rtp *r);
/* DTMF carried as RFC 4733 telephone-events (see plexus/rfc4733.h).
 *
 * The handler is told once when a digit begins and once when it ends (with
 * its duration), for the events received on the session's dtmf_pt, whether
 * the session is bridged or not (a bridged peer that negotiated events
 * still gets the packets relayed). A digit whose end packets are all lost
 * is ended after a second without packets; a new digit ends the one before.
 * It runs on the media worker, under the worker's lock: it must be quick
 * and must not call any px_rtp function. Setting another handler (or NULL)
 * waits for a call in progress, and none comes after it returns, nor after
 * px_rtp_destroy. */
typedef void (*px_rtp_dtmf_fn)(void *arg, char digit, bool begin, unsigned duration_ms);
void px_rtp_set_dtmf_handler(px_rtp *r, px_rtp_dtmf_fn fn, void *arg);

/* Have the worker send digit ('0'-'9', '*', '#', 'A'-'D') as an RFC 4733
 * event on the session's dtmf_pt: a marked begin packet, an update every
 * 50 ms, three end packets; its timestamp is where the session's outgoing
 * stream is now, so it lines up with the audio around it. Digits queue up
 * (16 at most) and go one after another, 50 ms apart. duration_ms is
 * clamped to 40-5000. -1: no dtmf_pt, a digit with no event code, or the
 * queue is full. */
int px_rtp_send_dtmf(px_rtp *r, char digit, unsigned duration_ms);
/* Inband DTMF, for far ends without RFC 4733: with fn set, the worker
 * decodes the audio the session receives and tells fn (like the handler
 * above, same rules) each digit heard as tones; the tones still reach the
 * peer in the audio. It works in the session's current format: a codec
 * change turns it off until it is set again. fn NULL: off. -1 when the
 * format has no path to linear audio. Control threads only (it allocates). */
int px_rtp_set_inband(px_rtp *r, px_rtp_dtmf_fn fn, void *arg, px_err *err);
/* Have the worker play digit's tone to the far end for duration_ms (40 to
 * 5000), in place of the audio relayed meanwhile; digits queue with the
 * events of px_rtp_send_dtmf. -1 when inband is off, for a digit with no
 * tone, or when the queue is full. */
int px_rtp_send_tone(px_rtp *r, char digit, unsigned duration_ms);

/* Whether r's bridge relays the events r receives to its peer (both legs
 * negotiated telephone-events): a digit r received needs no sending on. */
bool px_rtp_carries_events(px_rtp *r);
/* Whether r is bridged to another session (its audio relayed or transcoded). */
bool px_rtp_bridged(px_rtp *r);

/* Close the session; unbridges first. The memory goes once its worker has
 * let go of it. */
void px_rtp_destroy(px_rtp *r);

#endif
