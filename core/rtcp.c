/*
 * RTCP packets (core/rtcp.h): the byte layout of SR, RR, report blocks and
 * SDES CNAME, written and read with explicit bounds checks; nothing here
 * keeps state or knows about sessions.
 */
#include <string.h>

#include "rtcp.h"

#define RTCP_SDES    202
#define SDES_CNAME   1
#define HEADER_BYTES 4
#define SENDER_BYTES 20
#define BLOCK_BYTES  24
#define RTCP_VERSION 2

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

bool px_rtcp_is_rtcp(const uint8_t *p, size_t len)
{
	return len >= 8 && p[0] >> 6 == RTCP_VERSION && p[1] >= 192 && p[1] <= 223;
}

int px_rtcp_build(uint8_t *out, size_t size, uint32_t ssrc, const struct px_rtcp_sender_info *info,
		  const struct px_rtcp_block *block, const char *cname)
{
	size_t report = HEADER_BYTES + 4 + (info ? SENDER_BYTES : 0) + (block ? BLOCK_BYTES : 0);
	size_t clen = strlen(cname);
	/* SDES chunk: SSRC, CNAME item (type, length, text), a zero item
	 * ending the list, padded to 32 bits. */
	size_t chunk = (4 + 2 + clen + 1 + 3) & ~(size_t)3;
	size_t total = report + HEADER_BYTES + chunk;
	uint8_t *p = out;

	if (clen > 255 || total > size)
		return -1;
	memset(out, 0, total);
	p[0] = (uint8_t)(RTCP_VERSION << 6 | (block ? 1 : 0));
	p[1] = info ? RTCP_SR : RTCP_RR;
	put16(p + 2, (uint16_t)(report / 4 - 1));
	put32(p + 4, ssrc);
	p += 8;
	if (info) {
		put32(p, (uint32_t)(info->ntp >> 32));
		put32(p + 4, (uint32_t)info->ntp);
		put32(p + 8, info->rtp_ts);
		put32(p + 12, info->packets);
		put32(p + 16, info->octets);
		p += SENDER_BYTES;
	}
	if (block) {
		int32_t lost = block->cumulative_lost;
		if (lost > 0x7fffff)
			lost = 0x7fffff;
		if (lost < -0x800000)
			lost = -0x800000;
		put32(p, block->ssrc);
		put32(p + 4, (uint32_t)block->fraction_lost << 24 | ((uint32_t)lost & 0xffffff));
		put32(p + 8, block->highest_seq);
		put32(p + 12, block->jitter);
		put32(p + 16, block->lsr);
		put32(p + 20, block->dlsr);
		p += BLOCK_BYTES;
	}
	p[0] = RTCP_VERSION << 6 | 1;
	p[1] = RTCP_SDES;
	put16(p + 2, (uint16_t)((HEADER_BYTES + chunk) / 4 - 1));
	put32(p + 4, ssrc);
	p[8] = SDES_CNAME;
	p[9] = (uint8_t)clen;
	memcpy(p + 10, cname, clen);
	return (int)total;
}

static void read_block(const uint8_t *p, struct px_rtcp_block *b)
{
	uint32_t word = get32(p + 4);

	b->ssrc = get32(p);
	b->fraction_lost = (uint8_t)(word >> 24);
	b->cumulative_lost = (int32_t)(word << 8) >> 8; /* sign-extend 24 bits */
	b->highest_seq = get32(p + 8);
	b->jitter = get32(p + 12);
	b->lsr = get32(p + 16);
	b->dlsr = get32(p + 20);
}

int px_rtcp_parse(const uint8_t *p, size_t len, struct px_rtcp_report *out)
{
	bool found = false;

	if (!px_rtcp_is_rtcp(p, len))
		return -1;
	/* RFC 3550 A.2: the first is an SR or RR, without padding. */
	if ((p[1] != RTCP_SR && p[1] != RTCP_RR) || (p[0] & 0x20))
		return -1;
	while (len > 0) {
		size_t whole, body;
		unsigned count, pt;

		if (len < HEADER_BYTES || p[0] >> 6 != RTCP_VERSION)
			return -1;
		whole = 4 * ((size_t)get16(p + 2) + 1);
		if (whole > len)
			return -1;
		body = whole;
		count = p[0] & 0x1f;
		pt = p[1];
		if (p[0] & 0x20) {
			/* Padding only in the last packet of the compound. */
			if (whole != len || p[whole - 1] == 0 ||
			    p[whole - 1] > whole - HEADER_BYTES)
				return -1;
			body -= p[whole - 1];
		}
		if (!found && (pt == RTCP_SR || pt == RTCP_RR)) {
			size_t need = 8 + (pt == RTCP_SR ? SENDER_BYTES : 0) + count * BLOCK_BYTES;
			const uint8_t *b;

			if (need > body)
				return -1;
			memset(out, 0, sizeof(*out));
			out->sender = pt == RTCP_SR;
			out->ssrc = get32(p + 4);
			b = p + 8;
			if (out->sender) {
				out->info.ntp = (uint64_t)get32(b) << 32 | get32(b + 4);
				out->info.rtp_ts = get32(b + 8);
				out->info.packets = get32(b + 12);
				out->info.octets = get32(b + 16);
				b += SENDER_BYTES;
			}
			for (unsigned i = 0; i < count; i++, b += BLOCK_BYTES)
				if (i < RTCP_MAX_BLOCKS)
					read_block(b, &out->blocks[out->nblocks++]);
			found = true;
		}
		p += whole;
		len -= whole;
	}
	return found ? 0 : -1;
}
