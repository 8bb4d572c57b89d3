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

struct px_rtp_stats {
	uint64_t rx_packets, rx_bytes; /* received from this leg's far end */
	uint64_t tx_packets, tx_bytes; /* sent to this leg's far end */
	uint64_t rx_lost;              /* gaps in the received sequence numbers */
	uint64_t rx_dropped;           /* received but not relayed (no peer, bad packet) */
	uint32_t rx_ssrc, tx_ssrc;
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
/* Stop or resume sending to the far end (hold: sendonly/inactive). */
void px_rtp_set_send(px_rtp *r, bool send);

/* Relay packets between a and b both ways; replaces any earlier peer. */
int px_rtp_bridge(px_rtp *a, px_rtp *b, px_err *err);
/* Stop relaying (both directions of r's bridge). */
void px_rtp_unbridge(px_rtp *r);

void px_rtp_get_stats(px_rtp *r, struct px_rtp_stats *out);
/* Close the session; unbridges first. The memory goes once its worker has
 * let go of it. */
void px_rtp_destroy(px_rtp *r);

#endif
