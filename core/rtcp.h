/*
 * RTCP packets (core/rtcp.c), RFC 3550 section 6: building the compound
 * packet a session sends every few seconds (a sender report when it has
 * sent RTP since the last one, else a receiver report; at most one report
 * block, about the stream it receives; an SDES with its CNAME) and reading
 * the first SR or RR of the compound packets a far end sends. The media
 * engine keeps the statistics and timing (core/media.c).
 */
#ifndef PLEXUS_RTCP_H
#define PLEXUS_RTCP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RTCP_SR 200
#define RTCP_RR 201
/* Report blocks kept from one packet. */
#define RTCP_MAX_BLOCKS 4

struct px_rtcp_sender_info {
	uint64_t ntp; /* wall clock, NTP format (32.32) */
	uint32_t rtp_ts;
	uint32_t packets, octets;
};

struct px_rtcp_block {
	uint32_t ssrc;           /* the source reported on */
	uint8_t fraction_lost;   /* of 256, since the previous report */
	int32_t cumulative_lost; /* 24 bits, signed */
	uint32_t highest_seq;    /* extended */
	uint32_t jitter;         /* in the source's RTP clock units */
	uint32_t lsr, dlsr;      /* last SR (middle of its NTP), delay since (1/65536 s) */
};

struct px_rtcp_report {
	bool sender; /* SR (with info), else RR */
	uint32_t ssrc;
	struct px_rtcp_sender_info info;
	unsigned nblocks;
	struct px_rtcp_block blocks[RTCP_MAX_BLOCKS];
};

/* Whether a datagram on an RTP port is RTCP multiplexed there (RFC 5761:
 * version 2, packet type 192-223, where no RTP payload type may be). */
bool px_rtcp_is_rtcp(const uint8_t *p, size_t len);

/* A compound packet into out: an SR (info not NULL) or RR from ssrc with
 * block (or none), then SDES CNAME cname. Its length, or -1 if it does not
 * fit. */
int px_rtcp_build(uint8_t *out, size_t size, uint32_t ssrc, const struct px_rtcp_sender_info *info,
		  const struct px_rtcp_block *block, const char *cname);

/* Read the first SR or RR of the compound packet p. -1 when p is not a
 * valid compound packet (version, lengths, padding) or holds neither. */
int px_rtcp_parse(const uint8_t *p, size_t len, struct px_rtcp_report *out);

/* The middle 32 bits of an NTP timestamp, as LSR and RTT use them. */
static inline uint32_t px_rtcp_ntp_mid(uint64_t ntp)
{
	return (uint32_t)(ntp >> 16);
}

#endif
