/*
 * Unit tests of the media engine (core/media.c), with real UDP sockets on
 * the loopback: two RTP sessions bridged between two plain sockets playing
 * the phones, relaying both ways with SSRC, sequence number and timestamp
 * rewritten and the payload untouched; a change of source that the receiver
 * sees as one continuous stream; loss, reordering and wrap-around in the
 * statistics; symmetric RTP latching; datagrams that are not RTP; unbridge,
 * hold and re-bridge; port exhaustion and reuse; the file:line errors of a
 * bad rtp.conf; sessions on two workers; IPv6; and sessions destroyed or
 * moved between workers while another thread floods them; terminated media
 * (plexus/stream.h): a buffer played into a session arrives as one stream
 * with the right count, sequence numbers, timestamps and marker, a source
 * in another format is transcoded, a ring that runs dry skips packets, a
 * sink receives decoded audio with losses concealed, and nothing is
 * relayed while an application owns a session. Ports come from a
 * range below the ephemeral ports, chosen from the process id so that two
 * runs at once rarely meet. Every receive has a timeout and every loop an
 * upper bound.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/codec.h>
#include <plexus/config.h>
#include <plexus/media.h>
#include <plexus/stream.h>

#include "codec_internal.h"
#include "loader.h"
#include "log_internal.h"
#include "media_internal.h"
#include "rtcp.h"

/* Long enough for a loaded machine, short enough for a test that waits for
 * nothing to arrive. */
#define RECV_TIMEOUT_MS 1000
#define SILENCE_MS      200
#define PAYLOAD_SIZE    20
#define HEADER_SIZE     12

#define STAT(field) offsetof(struct px_rtp_stats, field)

static unsigned port_base;

struct phone {
	int fd;
	struct sockaddr_storage addr;
};

struct rtp_in {
	bool marker;
	unsigned pt;
	uint16_t seq;
	uint32_t ts, ssrc;
	size_t len;
	unsigned char data[2048];
	struct sockaddr_storage from;
};

/* ---------------------------------------------------------------- helpers */

static socklen_t addr_len(const struct sockaddr_storage *ss)
{
	return ss->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return ntohs(((const struct sockaddr_in *)ss)->sin_port);
}

static struct sockaddr_storage loopback(int family, uint16_t port)
{
	struct sockaddr_storage ss;

	memset(&ss, 0, sizeof(ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_addr = in6addr_loopback;
		sin6->sin6_port = htons(port);
	} else {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ss;
		sin->sin_family = AF_INET;
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sin->sin_port = htons(port);
	}
	return ss;
}

/* Start the engine on rtpstart..rtpend with that many workers, stopping one
 * left running by a test that failed half-way. */
static unsigned rtcp_interval = 5000;

static int start_engine(unsigned start, unsigned end, unsigned nworkers)
{
	char text[256];
	px_config *cfg = NULL;
	px_err err = {""};
	int rc;

	px_media_shutdown();
	snprintf(text, sizeof(text),
	         "[general]\nrtpstart = %u\nrtpend = %u\nworkers = %u\nrtcpinterval = %u\n", start,
	         end, nworkers, rtcp_interval);
	if (px_config_load_string("rtp.conf", text, &cfg, &err) < 0) {
		fprintf(stderr, "rtp.conf: %s\n", err.msg);
		return -1;
	}
	rc = px_media_init(cfg, &err);
	if (rc < 0)
		fprintf(stderr, "px_media_init: %s\n", err.msg);
	px_config_unref(cfg);
	return rc;
}

static px_rtp *open_session(int family)
{
	struct sockaddr_storage local = loopback(family, 0);
	px_rtp *r = NULL;
	px_err err = {""};

	if (px_rtp_new((struct sockaddr *)&local, &r, &err) < 0)
		fprintf(stderr, "px_rtp_new: %s\n", err.msg);
	return r;
}

static bool phone_open(struct phone *ph, int family)
{
	struct sockaddr_storage local = loopback(family, 0);
	socklen_t len = sizeof(ph->addr);

	ph->fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (ph->fd < 0)
		return false;
	if (bind(ph->fd, (struct sockaddr *)&local, addr_len(&local)) < 0 ||
	    getsockname(ph->fd, (struct sockaddr *)&ph->addr, &len) < 0) {
		close(ph->fd);
		ph->fd = -1;
		return false;
	}
	return true;
}

static void phone_close(struct phone *ph)
{
	if (ph->fd >= 0)
		close(ph->fd);
	ph->fd = -1;
}

static void session_addr(const px_rtp *r, struct sockaddr_storage *out)
{
	px_rtp_local_addr(r, out);
}

static void send_raw(const struct phone *ph, const px_rtp *to, const void *buf, size_t len)
{
	struct sockaddr_storage dest;

	session_addr(to, &dest);
	CU_ASSERT_EQUAL(sendto(ph->fd, buf, len, 0, (struct sockaddr *)&dest, addr_len(&dest)),
	                (ssize_t)len);
}

/* The payload tells which packet it was, so the receiver can check that it
 * came through untouched. */
static void make_payload(unsigned char *out, uint32_t ssrc, uint16_t seq)
{
	char text[PAYLOAD_SIZE + 1];

	snprintf(text, sizeof(text), "%08x/%05u/abcde", (unsigned)ssrc, (unsigned)seq);
	memcpy(out, text, PAYLOAD_SIZE);
}

static size_t make_rtp(unsigned char *p, uint32_t ssrc, uint16_t seq, uint32_t ts, bool marker)
{
	p[0] = 0x80;
	p[1] = (unsigned char)((marker ? 0x80 : 0) | 0); /* PCMU */
	p[2] = (unsigned char)(seq >> 8);
	p[3] = (unsigned char)seq;
	p[4] = (unsigned char)(ts >> 24);
	p[5] = (unsigned char)(ts >> 16);
	p[6] = (unsigned char)(ts >> 8);
	p[7] = (unsigned char)ts;
	p[8] = (unsigned char)(ssrc >> 24);
	p[9] = (unsigned char)(ssrc >> 16);
	p[10] = (unsigned char)(ssrc >> 8);
	p[11] = (unsigned char)ssrc;
	make_payload(p + HEADER_SIZE, ssrc, seq);
	return HEADER_SIZE + PAYLOAD_SIZE;
}

static void send_rtp(const struct phone *ph, const px_rtp *to, uint32_t ssrc, uint16_t seq,
                     uint32_t ts, bool marker)
{
	unsigned char p[HEADER_SIZE + PAYLOAD_SIZE];

	send_raw(ph, to, p, make_rtp(p, ssrc, seq, ts, marker));
}

/* Wait up to timeout_ms for one datagram; false when none came. */
static bool recv_packet(const struct phone *ph, struct rtp_in *in, int timeout_ms)
{
	struct pollfd pfd = {.fd = ph->fd, .events = POLLIN};
	socklen_t len = sizeof(in->from);
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return false;
	n = recvfrom(ph->fd, in->data, sizeof(in->data), MSG_DONTWAIT, (struct sockaddr *)&in->from,
	             &len);
	if (n < 0)
		return false;
	in->len = (size_t)n;
	if (in->len >= HEADER_SIZE) {
		in->marker = in->data[1] & 0x80;
		in->pt = in->data[1] & 0x7f;
		in->seq = (uint16_t)(in->data[2] << 8 | in->data[3]);
		in->ts = (uint32_t)in->data[4] << 24 | (uint32_t)in->data[5] << 16 |
		         (uint32_t)in->data[6] << 8 | in->data[7];
		in->ssrc = (uint32_t)in->data[8] << 24 | (uint32_t)in->data[9] << 16 |
		           (uint32_t)in->data[10] << 8 | in->data[11];
	}
	return true;
}

/* Receive one relayed packet that must carry the payload of (ssrc, seq) as
 * sent by send_rtp. */
static bool recv_relayed(const struct phone *ph, struct rtp_in *in, uint32_t sent_ssrc,
                         uint16_t sent_seq)
{
	unsigned char payload[PAYLOAD_SIZE];

	if (!recv_packet(ph, in, RECV_TIMEOUT_MS))
		return false;
	make_payload(payload, sent_ssrc, sent_seq);
	return in->len == HEADER_SIZE + PAYLOAD_SIZE && (in->data[0] >> 6) == 2 &&
	       !memcmp(in->data + HEADER_SIZE, payload, PAYLOAD_SIZE);
}

static bool nothing_arrives(const struct phone *ph)
{
	struct rtp_in in;

	return !recv_packet(ph, &in, SILENCE_MS);
}

static struct px_rtp_stats stats_of(px_rtp *r)
{
	struct px_rtp_stats st;

	px_rtp_get_stats(r, &st);
	return st;
}

/* The counters are updated by the worker around the send, so a test that
 * has seen a packet arrive may still have to wait a moment for them. */
static bool wait_stat(px_rtp *r, size_t field, uint64_t want)
{
	for (int i = 0; i < 1000; i++) {
		struct px_rtp_stats st = stats_of(r);
		uint64_t value;

		memcpy(&value, (const char *)&st + field, sizeof(value));
		if (value == want)
			return true;
		usleep(1000);
	}
	return false;
}

/* Two sessions A and B bridged, A's far end the phone PA, B's PB. */
struct call {
	px_rtp *a, *b;
	struct phone pa, pb;
};

static bool call_open(struct call *c, int family)
{
	c->a = open_session(family);
	c->b = open_session(family);
	if (!c->a || !c->b || !phone_open(&c->pa, family) || !phone_open(&c->pb, family))
		return false;
	px_rtp_set_remote(c->a, (struct sockaddr *)&c->pa.addr, false);
	px_rtp_set_remote(c->b, (struct sockaddr *)&c->pb.addr, false);
	return px_rtp_bridge(c->a, c->b, NULL) == 0;
}

static void call_close(struct call *c)
{
	px_rtp_destroy(c->a);
	px_rtp_destroy(c->b);
	phone_close(&c->pa);
	phone_close(&c->pb);
}

/* ---------------------------------------------------------------- tests */

static void test_relay_both_ways(void)
{
	struct call c;
	struct rtp_in in;
	struct px_rtp_stats sa, sb;
	uint16_t prev_seq = 0;
	uint32_t prev_ts = 0;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	CU_ASSERT_EQUAL(px_media_session_count(), 2);
	sa = stats_of(c.a);
	sb = stats_of(c.b);
	CU_ASSERT_NOT_EQUAL(sa.tx_ssrc, sb.tx_ssrc);

	for (uint16_t i = 0; i < 10; i++)
		send_rtp(&c.pa, c.a, 0x11111111, (uint16_t)(1000 + i), 8000 + 160u * i, i == 0);
	for (uint16_t i = 0; i < 10; i++) {
		CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x11111111, (uint16_t)(1000 + i)));
		CU_ASSERT_EQUAL(in.ssrc, sb.tx_ssrc);
		CU_ASSERT_EQUAL(in.pt, 0);
		CU_ASSERT_EQUAL(in.marker, i == 0);
		/* Sent from B's own port, where PB sends back. */
		CU_ASSERT_EQUAL(addr_port(&in.from), px_rtp_local_port(c.b));
		if (i > 0) {
			CU_ASSERT_EQUAL(in.seq, (uint16_t)(prev_seq + 1));
			CU_ASSERT_EQUAL(in.ts, prev_ts + 160);
		}
		prev_seq = in.seq;
		prev_ts = in.ts;
	}

	for (uint16_t i = 0; i < 5; i++)
		send_rtp(&c.pb, c.b, 0x22222222, (uint16_t)(65533 + i), 1000u * i, false);
	for (uint16_t i = 0; i < 5; i++) {
		CU_ASSERT_FATAL(recv_relayed(&c.pa, &in, 0x22222222, (uint16_t)(65533 + i)));
		CU_ASSERT_EQUAL(in.ssrc, sa.tx_ssrc);
		CU_ASSERT_EQUAL(addr_port(&in.from), px_rtp_local_port(c.a));
		if (i > 0) {
			CU_ASSERT_EQUAL(in.seq, (uint16_t)(prev_seq + 1));
			CU_ASSERT_EQUAL(in.ts, prev_ts + 1000);
		}
		prev_seq = in.seq;
		prev_ts = in.ts;
	}

	CU_ASSERT(wait_stat(c.a, STAT(rx_packets), 10));
	CU_ASSERT(wait_stat(c.a, STAT(rx_bytes), 10 * (HEADER_SIZE + PAYLOAD_SIZE)));
	CU_ASSERT(wait_stat(c.b, STAT(tx_packets), 10));
	CU_ASSERT(wait_stat(c.b, STAT(tx_bytes), 10 * (HEADER_SIZE + PAYLOAD_SIZE)));
	CU_ASSERT(wait_stat(c.b, STAT(rx_packets), 5));
	CU_ASSERT(wait_stat(c.b, STAT(rx_bytes), 5 * (HEADER_SIZE + PAYLOAD_SIZE)));
	CU_ASSERT(wait_stat(c.a, STAT(tx_packets), 5));
	CU_ASSERT(wait_stat(c.a, STAT(tx_bytes), 5 * (HEADER_SIZE + PAYLOAD_SIZE)));
	sa = stats_of(c.a);
	sb = stats_of(c.b);
	CU_ASSERT_EQUAL(sa.rx_ssrc, 0x11111111);
	CU_ASSERT_EQUAL(sb.rx_ssrc, 0x22222222);
	CU_ASSERT_EQUAL(sa.rx_lost, 0);
	CU_ASSERT_EQUAL(sb.rx_lost, 0); /* across the wrap-around */
	CU_ASSERT_EQUAL(sa.rx_dropped, 0);
	CU_ASSERT_EQUAL(sb.rx_dropped, 0);

	call_close(&c);
	CU_ASSERT_EQUAL(px_media_session_count(), 0);
	px_media_shutdown();
}

static void test_source_change(void)
{
	struct call c;
	struct rtp_in in;
	uint32_t b_ssrc;
	uint16_t last_seq = 0;
	uint32_t last_ts = 0;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	b_ssrc = stats_of(c.b).tx_ssrc;

	/* 40 ms packets: the output continues by that much after the change. */
	for (uint16_t i = 0; i < 5; i++) {
		send_rtp(&c.pa, c.a, 0xaaaa0001, (uint16_t)(100 + i), 5000 + 320u * i, false);
		CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xaaaa0001, (uint16_t)(100 + i)));
		last_seq = in.seq;
		last_ts = in.ts;
	}

	send_rtp(&c.pa, c.a, 0xbbbb0002, 50000, 0xdeadbeef, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xbbbb0002, 50000));
	CU_ASSERT_EQUAL(in.ssrc, b_ssrc);
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(last_seq + 1));
	CU_ASSERT_EQUAL(in.ts, last_ts + 320);
	CU_ASSERT(in.marker);
	last_seq = in.seq;
	last_ts = in.ts;

	send_rtp(&c.pa, c.a, 0xbbbb0002, 50001, 0xdeadbeef + 160, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xbbbb0002, 50001));
	CU_ASSERT_EQUAL(in.ssrc, b_ssrc);
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(last_seq + 1));
	CU_ASSERT_EQUAL(in.ts, last_ts + 160);
	CU_ASSERT_FALSE(in.marker);
	last_seq = in.seq;

	/* A source that restarts its numbering without a new SSRC is a new
	 * source as well. */
	send_rtp(&c.pa, c.a, 0xbbbb0002, 20000, 42, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xbbbb0002, 20000));
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(last_seq + 1));
	CU_ASSERT(in.marker);

	CU_ASSERT(wait_stat(c.a, STAT(rx_packets), 8));
	CU_ASSERT_EQUAL(stats_of(c.a).rx_ssrc, 0xbbbb0002);
	CU_ASSERT_EQUAL(stats_of(c.a).rx_lost, 0);
	call_close(&c);
	px_media_shutdown();
}

static void test_loss_and_reordering(void)
{
	struct call c;
	struct rtp_in in;
	uint16_t seq5 = 0, seq9 = 0;
	uint32_t ts5 = 0;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));

	for (uint16_t s = 1; s <= 5; s++) {
		send_rtp(&c.pa, c.a, 0x5eed, s, 160u * s, false);
		CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x5eed, s));
		seq5 = in.seq;
		ts5 = in.ts;
	}
	/* 6, 7 and 8 lost: the gap shows downstream too. */
	send_rtp(&c.pa, c.a, 0x5eed, 9, 160u * 9, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x5eed, 9));
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(seq5 + 4));
	CU_ASSERT_EQUAL(in.ts, ts5 + 4 * 160);
	seq9 = in.seq;
	CU_ASSERT(wait_stat(c.a, STAT(rx_lost), 3));

	/* 7 arrives late: one less lost, and it keeps its place. */
	send_rtp(&c.pa, c.a, 0x5eed, 7, 160u * 7, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x5eed, 7));
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(seq9 - 2));
	CU_ASSERT_FALSE(in.marker);
	CU_ASSERT(wait_stat(c.a, STAT(rx_lost), 2));
	/* A duplicate of it changes nothing. */
	send_rtp(&c.pa, c.a, 0x5eed, 7, 160u * 7, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x5eed, 7));
	send_rtp(&c.pa, c.a, 0x5eed, 10, 160u * 10, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x5eed, 10));
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(seq9 + 1));
	CU_ASSERT(wait_stat(c.a, STAT(rx_packets), 9));
	CU_ASSERT_EQUAL(stats_of(c.a).rx_lost, 2);

	/* A gap across the wrap-around counts as much as anywhere else. */
	for (uint32_t s = 65530; s <= 65541; s++) {
		uint16_t seq = (uint16_t)s;
		if (seq == 65534 || seq == 0 || seq == 1)
			continue;
		send_rtp(&c.pa, c.a, 0x5eee, seq, 160u * s, false);
		CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x5eee, seq));
	}
	CU_ASSERT(wait_stat(c.a, STAT(rx_lost), 2 + 3));
	CU_ASSERT_EQUAL(stats_of(c.a).rx_dropped, 0);
	call_close(&c);
	px_media_shutdown();
}

static void test_symmetric_latch(void)
{
	struct call c;
	struct phone decoy, stranger;
	struct rtp_in in;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	CU_ASSERT_FATAL(phone_open(&decoy, AF_INET));
	CU_ASSERT_FATAL(phone_open(&stranger, AF_INET));

	/* The SDP named the decoy; PA is where the phone really is. */
	px_rtp_set_remote(c.a, (struct sockaddr *)&decoy.addr, true);
	send_rtp(&c.pb, c.b, 0xb0b, 1, 0, false);
	CU_ASSERT(recv_relayed(&decoy, &in, 0xb0b, 1));

	send_rtp(&c.pa, c.a, 0xa1a, 1, 0, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xa1a, 1));
	send_rtp(&c.pb, c.b, 0xb0b, 2, 160, false);
	CU_ASSERT(recv_relayed(&c.pa, &in, 0xb0b, 2));

	/* Latched once: a packet from elsewhere does not move it again. */
	send_rtp(&stranger, c.a, 0x5a5a, 1, 0, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0x5a5a, 1));
	send_rtp(&c.pb, c.b, 0xb0b, 3, 320, false);
	CU_ASSERT(recv_relayed(&c.pa, &in, 0xb0b, 3));
	CU_ASSERT(nothing_arrives(&stranger));

	/* A new set_remote without symmetric: the configured address stays,
	 * whoever sends. */
	px_rtp_set_remote(c.a, (struct sockaddr *)&decoy.addr, false);
	send_rtp(&c.pa, c.a, 0xa1a, 2, 160, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xa1a, 2));
	send_rtp(&c.pb, c.b, 0xb0b, 4, 480, false);
	CU_ASSERT(recv_relayed(&decoy, &in, 0xb0b, 4));

	/* Symmetric with no address at all learns it from the first packet. */
	px_rtp_set_remote(c.a, NULL, true);
	send_rtp(&c.pb, c.b, 0xb0b, 5, 640, false);
	CU_ASSERT(wait_stat(c.b, STAT(rx_dropped), 1));
	send_rtp(&c.pa, c.a, 0xa1a, 3, 320, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xa1a, 3));
	send_rtp(&c.pb, c.b, 0xb0b, 6, 800, false);
	CU_ASSERT(recv_relayed(&c.pa, &in, 0xb0b, 6));
	CU_ASSERT(nothing_arrives(&decoy));

	phone_close(&decoy);
	phone_close(&stranger);
	call_close(&c);
	px_media_shutdown();
}

static void test_not_rtp_dropped(void)
{
	struct call c;
	struct rtp_in in;
	unsigned char p[64];
	unsigned char sent[64];
	size_t len;
	unsigned garbage = 0;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));

	send_raw(&c.pa, c.a, "hello", 5);
	garbage++;
	/* Version 1. */
	make_rtp(p, 1, 1, 0, false);
	p[0] = 0x40;
	send_raw(&c.pa, c.a, p, HEADER_SIZE + PAYLOAD_SIZE);
	garbage++;
	/* Fifteen CSRCs announced, twenty bytes after the header. */
	make_rtp(p, 1, 1, 0, false);
	p[0] = 0x8f;
	send_raw(&c.pa, c.a, p, HEADER_SIZE + PAYLOAD_SIZE);
	garbage++;
	/* An extension header that does not fit... */
	make_rtp(p, 1, 1, 0, false);
	p[0] = 0x90;
	send_raw(&c.pa, c.a, p, HEADER_SIZE + 2);
	garbage++;
	/* ...and one whose length runs past the end. */
	make_rtp(p, 1, 1, 0, false);
	p[0] = 0x90;
	p[12] = 0xbe;
	p[13] = 0xde;
	p[14] = 0;
	p[15] = 10;
	send_raw(&c.pa, c.a, p, HEADER_SIZE + PAYLOAD_SIZE);
	garbage++;
	/* More padding than packet. */
	make_rtp(p, 1, 1, 0, false);
	p[0] = 0xa0;
	p[HEADER_SIZE + PAYLOAD_SIZE - 1] = 200;
	send_raw(&c.pa, c.a, p, HEADER_SIZE + PAYLOAD_SIZE);
	garbage++;
	/* RTCP sender report multiplexed on the RTP port. */
	make_rtp(p, 1, 1, 0, false);
	p[1] = 200;
	send_raw(&c.pa, c.a, p, 28);
	garbage++;

	/* A good packet with two CSRCs, an extension and padding goes through
	 * with all of that untouched; being the first to arrive, it shows that
	 * none of the garbage was forwarded. */
	make_rtp(p, 0x600d, 77, 1234, false);
	p[0] = 0x80 | 0x20 | 0x10 | 2;
	memcpy(p + 12, "\x01\x02\x03\x04\x05\x06\x07\x08", 8);
	memcpy(p + 20, "\xbe\xde\x00\x01\x11\x22\x33\x44", 8);
	memcpy(p + 28, "payload!\x00\x00\x00\x04", 12);
	len = 40;
	memcpy(sent, p, len);
	send_raw(&c.pa, c.a, p, len);
	CU_ASSERT_FATAL(recv_packet(&c.pb, &in, RECV_TIMEOUT_MS));
	CU_ASSERT_EQUAL(in.len, len);
	CU_ASSERT_EQUAL(in.data[0], sent[0]);
	CU_ASSERT(!memcmp(in.data + HEADER_SIZE, sent + HEADER_SIZE, len - HEADER_SIZE));
	CU_ASSERT_EQUAL(in.ssrc, stats_of(c.b).tx_ssrc);

	CU_ASSERT(wait_stat(c.a, STAT(rx_packets), garbage + 1));
	CU_ASSERT(wait_stat(c.a, STAT(rx_dropped), garbage));
	CU_ASSERT(wait_stat(c.b, STAT(tx_packets), 1));
	CU_ASSERT_EQUAL(stats_of(c.a).rx_ssrc, 0x600d);
	call_close(&c);
	px_media_shutdown();
}

static void test_unbridge_and_rebridge(void)
{
	struct call c;
	struct rtp_in in;
	uint16_t last_seq;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	send_rtp(&c.pa, c.a, 0xc0c0, 1, 0, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xc0c0, 1));
	last_seq = in.seq;

	px_rtp_unbridge(c.b); /* either side ends the bridge */
	send_rtp(&c.pa, c.a, 0xc0c0, 2, 160, false);
	CU_ASSERT(wait_stat(c.a, STAT(rx_dropped), 1));
	CU_ASSERT(nothing_arrives(&c.pb));
	send_rtp(&c.pb, c.b, 0xd0d0, 1, 0, false);
	CU_ASSERT(wait_stat(c.b, STAT(rx_dropped), 1));
	CU_ASSERT(nothing_arrives(&c.pa));
	CU_ASSERT_EQUAL(stats_of(c.a).rx_packets, 2);
	CU_ASSERT_EQUAL(stats_of(c.b).tx_packets, 1);
	px_rtp_unbridge(c.a); /* harmless twice */

	/* Bridged again, B's stream to PB goes on where it stopped, marked. */
	CU_ASSERT_FATAL(px_rtp_bridge(c.b, c.a, NULL) == 0);
	send_rtp(&c.pa, c.a, 0xc0c0, 3, 320, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xc0c0, 3));
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(last_seq + 1));
	CU_ASSERT(in.marker);
	send_rtp(&c.pb, c.b, 0xd0d0, 2, 160, false);
	CU_ASSERT(recv_relayed(&c.pa, &in, 0xd0d0, 2));

	/* A session cannot be its own peer. */
	px_err err = {""};
	CU_ASSERT_EQUAL(px_rtp_bridge(c.a, c.a, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "itself"));
	call_close(&c);
	px_media_shutdown();
}

static void test_hold(void)
{
	struct call c;
	struct rtp_in in;
	uint16_t last_seq;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	send_rtp(&c.pa, c.a, 0xe0e0, 1, 0, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xe0e0, 1));
	last_seq = in.seq;

	px_rtp_set_send(c.b, false);
	send_rtp(&c.pa, c.a, 0xe0e0, 2, 160, false);
	CU_ASSERT(wait_stat(c.a, STAT(rx_dropped), 1));
	CU_ASSERT(nothing_arrives(&c.pb));
	CU_ASSERT_EQUAL(stats_of(c.b).tx_packets, 1);
	/* The other direction is not held. */
	send_rtp(&c.pb, c.b, 0xf0f0, 1, 0, false);
	CU_ASSERT(recv_relayed(&c.pa, &in, 0xf0f0, 1));

	px_rtp_set_send(c.b, true);
	send_rtp(&c.pa, c.a, 0xe0e0, 3, 320, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pb, &in, 0xe0e0, 3));
	/* The held packet leaves its gap, as any loss would. */
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(last_seq + 2));
	CU_ASSERT(wait_stat(c.b, STAT(tx_packets), 2));
	call_close(&c);
	px_media_shutdown();
}

static void test_port_exhaustion_and_reuse(void)
{
	char expected[64];
	struct sockaddr_storage local = loopback(AF_INET, 0), bound;
	px_rtp *a, *b, *c = NULL, *d;
	px_err err = {""};

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 3, 1) == 0);
	a = open_session(AF_INET);
	b = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_NOT_EQUAL(px_rtp_local_port(a), px_rtp_local_port(b));
	for (int i = 0; i < 2; i++) {
		uint16_t port = px_rtp_local_port(i ? b : a);
		CU_ASSERT(port == port_base || port == port_base + 2);
	}
	px_rtp_local_addr(a, &bound);
	CU_ASSERT_EQUAL(bound.ss_family, AF_INET);
	CU_ASSERT_EQUAL(addr_port(&bound), px_rtp_local_port(a));

	CU_ASSERT_EQUAL(px_rtp_new((struct sockaddr *)&local, &c, &err), -1);
	CU_ASSERT_PTR_NULL(c);
	snprintf(expected, sizeof(expected), "no free RTP port in %u-%u", port_base, port_base + 3);
	CU_ASSERT_STRING_EQUAL(err.msg, expected);
	CU_ASSERT_EQUAL(px_media_session_count(), 2);

	uint16_t freed = px_rtp_local_port(a);
	px_rtp_destroy(a);
	d = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_EQUAL(px_rtp_local_port(d), freed);
	px_rtp_destroy(b);
	px_rtp_destroy(d);
	CU_ASSERT_EQUAL(px_media_session_count(), 0);

	/* A local address the machine does not have is a different error. */
	struct sockaddr_in foreign = {.sin_family = AF_INET};
	inet_pton(AF_INET, "192.0.2.1", &foreign.sin_addr);
	CU_ASSERT_EQUAL(px_rtp_new((struct sockaddr *)&foreign, &c, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "cannot bind RTP port 192.0.2.1:"));
	struct sockaddr unknown = {.sa_family = AF_UNIX};
	CU_ASSERT_EQUAL(px_rtp_new(&unknown, &c, &err), -1);
	CU_ASSERT_PTR_NULL(c);
	px_media_shutdown();
}

/* Bytes waiting in the receive queue of the IPv4 UDP socket bound to
 * 127.0.0.1:port (/proc/net/udp), or -1 when there is no such socket. */
static long udp_rx_queue(uint16_t port)
{
	char line[512], want[32];
	long queued = -1;
	FILE *f = fopen("/proc/net/udp", "r");

	if (!f)
		return -1;
	snprintf(want, sizeof(want), "0100007F:%04X", port);
	while (fgets(line, sizeof(line), f)) {
		char local[64], remote[64];
		unsigned st;
		unsigned long tx, rx;

		if (sscanf(line, "%*d: %63s %63s %x %lx:%lx", local, remote, &st, &tx, &rx) == 5 &&
		    !strcmp(local, want)) {
			queued = (long)rx;
			break;
		}
	}
	fclose(f);
	return queued;
}

/* An ended session's socket is reused only after it has rested, and what
 * reached it meanwhile (the old call's late packets) never reaches the new
 * session: neither counted nor relayed nor latched onto. While idle, the
 * worker reads and drops what reaches it, so a flood of idle ports holds no
 * memory; the reused socket relays without being registered again. */
static void test_idle_socket_reuse(void)
{
	struct phone late, pb, pc;
	struct rtp_in in;
	px_rtp *a, *b, *c;
	uint16_t old_port;
	struct timespec rest = {.tv_sec = 1, .tv_nsec = 200 * 1000000L};

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(phone_open(&late, AF_INET));
	a = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	old_port = px_rtp_local_port(a);
	px_rtp_destroy(a);
	/* At once: a fresh port, not the one just released. */
	b = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_NOT_EQUAL(px_rtp_local_port(b), old_port);

	/* The old call's far end is still sending to the released port. */
	struct sockaddr_storage to = loopback(AF_INET, old_port);
	unsigned char p[HEADER_SIZE + PAYLOAD_SIZE];
	size_t n = make_rtp(p, 0x1a7e, 7, 1120, false);
	for (int i = 0; i < 300; i++)
		CU_ASSERT(sendto(late.fd, p, n, 0, (struct sockaddr *)&to, addr_len(&to)) ==
		          (ssize_t)n);

	nanosleep(&rest, NULL);
	CU_ASSERT_EQUAL(udp_rx_queue(old_port), 0);
	c = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(c);
	CU_ASSERT_EQUAL(px_rtp_local_port(c), old_port);
	px_rtp_set_remote(c, NULL, true);
	CU_ASSERT(px_rtp_bridge(c, b, NULL) == 0);
	CU_ASSERT(nothing_arrives(&late));
	struct px_rtp_stats st = stats_of(c);
	CU_ASSERT_EQUAL(st.rx_packets, 0);
	CU_ASSERT_EQUAL(st.rx_dropped, 0);
	CU_ASSERT_EQUAL(px_media_session_count(), 2);

	/* A new far end on the reused socket is latched onto and relayed. */
	CU_ASSERT_FATAL(phone_open(&pb, AF_INET));
	CU_ASSERT_FATAL(phone_open(&pc, AF_INET));
	px_rtp_set_remote(b, (struct sockaddr *)&pb.addr, false);
	for (uint16_t i = 0; i < 3; i++)
		send_rtp(&pc, c, 0x5eed, (uint16_t)(40 + i), 160u * i, i == 0);
	for (uint16_t i = 0; i < 3; i++)
		CU_ASSERT(recv_relayed(&pb, &in, 0x5eed, (uint16_t)(40 + i)));
	CU_ASSERT(wait_stat(c, offsetof(struct px_rtp_stats, rx_packets), 3));

	px_rtp_destroy(b);
	px_rtp_destroy(c);
	phone_close(&pb);
	phone_close(&pc);
	phone_close(&late);
	px_media_shutdown();
}

static px_rtp *open_near(px_rtp *near)
{
	struct sockaddr_storage local = loopback(AF_INET, 0);
	px_rtp *r = NULL;
	px_err err = {""};

	if (px_rtp_new_near((struct sockaddr *)&local, near, &r, &err) < 0)
		fprintf(stderr, "px_rtp_new_near: %s\n", err.msg);
	return r;
}

static void test_second_leg_near_first(void)
{
	struct phone pa, pn;
	struct rtp_in in;
	px_rtp *a, *b, *s0, *s1, *n, *m;
	uint16_t port_b, port_s0;
	unsigned wa;
	struct timespec rest = {.tv_sec = 1, .tv_nsec = 200 * 1000000L};

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 23, 2) == 0);
	/* Fresh sockets: sessions asked near a join its worker, although the
	 * other one serves nothing; without a hint the other one is chosen. */
	a = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(a);
	wa = stats_of(a).worker;
	s0 = open_near(a);
	s1 = open_near(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(s1);
	CU_ASSERT_EQUAL(stats_of(s0).worker, wa);
	CU_ASSERT_EQUAL(stats_of(s1).worker, wa);
	b = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(b);
	CU_ASSERT_NOT_EQUAL(stats_of(b).worker, wa);

	/* Idle sockets: b's is older in the FIFO than s0's. Near a, s0's is
	 * taken; with no hint, the oldest, b's. */
	port_b = px_rtp_local_port(b);
	port_s0 = px_rtp_local_port(s0);
	px_rtp_destroy(b);
	px_rtp_destroy(s0);
	nanosleep(&rest, NULL);
	n = open_near(a);
	CU_ASSERT_PTR_NOT_NULL_FATAL(n);
	CU_ASSERT_EQUAL(px_rtp_local_port(n), port_s0);
	CU_ASSERT_EQUAL(stats_of(n).worker, wa);
	m = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(m);
	CU_ASSERT_EQUAL(px_rtp_local_port(m), port_b);
	CU_ASSERT_NOT_EQUAL(stats_of(m).worker, wa);

	/* The bridge of a and n moves neither, and relays both ways. */
	CU_ASSERT_FATAL(phone_open(&pa, AF_INET));
	CU_ASSERT_FATAL(phone_open(&pn, AF_INET));
	px_rtp_set_remote(a, (struct sockaddr *)&pa.addr, false);
	px_rtp_set_remote(n, (struct sockaddr *)&pn.addr, false);
	CU_ASSERT_FATAL(px_rtp_bridge(a, n, NULL) == 0);
	CU_ASSERT_EQUAL(stats_of(a).worker, wa);
	CU_ASSERT_EQUAL(stats_of(n).worker, wa);
	for (uint16_t i = 0; i < 3; i++) {
		send_rtp(&pa, a, 0xa, i, 160u * i, i == 0);
		CU_ASSERT(recv_relayed(&pn, &in, 0xa, i));
		send_rtp(&pn, n, 0xb, i, 160u * i, i == 0);
		CU_ASSERT(recv_relayed(&pa, &in, 0xb, i));
	}

	px_rtp_destroy(a);
	px_rtp_destroy(n);
	px_rtp_destroy(s1);
	px_rtp_destroy(m);
	phone_close(&pa);
	phone_close(&pn);
	CU_ASSERT_EQUAL(px_media_session_count(), 0);
	px_media_shutdown();
}

static void test_configuration(void)
{
	static const struct {
		const char *text;
		const char *message;
	} bad[] = {
	        {"[general]\nrtpstart = 10001\n", "rtp.conf:2: rtpstart: 10001 is odd; RTP takes "
	                                          "an even port and RTCP the one above "
	                                          "it"},
	        {"[general]\nrtpstart = 12000\nrtpend = 12000\n",
	         "rtp.conf:3: rtpend: 12000 is not above rtpstart 12000"},
	        {"[general]\n; a comment\nrtpstart = 30000\n",
	         "rtp.conf:3: rtpstart: 30000 is not below rtpend 20000"},
	        {"[general]\nrtpstart = 80\n",
	         "rtp.conf:2: rtpstart: '80' is out of range 1024..65535"},
	        {"[general]\nrtpend = 70000\n",
	         "rtp.conf:2: rtpend: '70000' is out of range 1024..65535"},
	        {"[general]\nworkers = many\n", "rtp.conf:2: workers: 'many' is not an integer"},
	        {"[general]\nworkers = -1\n", "rtp.conf:2: workers: '-1' is out of range 0..256"},
	        {"[general]\nrtpstrat = 10000\n",
	         "rtp.conf:2: unknown option 'rtpstrat' in [general]"},
	};
	struct sockaddr_storage local = loopback(AF_INET, 0);
	px_rtp *r = NULL;
	px_config *cfg;
	px_err err;

	px_media_shutdown();
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cfg = NULL;
		CU_ASSERT_FATAL(px_config_load_string("rtp.conf", bad[i].text, &cfg, &err) == 0);
		err.msg[0] = '\0';
		CU_ASSERT_EQUAL(px_media_init(cfg, &err), -1);
		CU_ASSERT_STRING_EQUAL(err.msg, bad[i].message);
		px_config_unref(cfg);
	}
	CU_ASSERT_EQUAL(px_rtp_new((struct sockaddr *)&local, &r, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.msg, "media engine not started");

	/* The smallest range: one pair. Other sections are not ours. */
	cfg = NULL;
	CU_ASSERT_FATAL(px_config_load_string("rtp.conf",
	                                      "[general]\nrtpstart = 1024\nrtpend = 1025\n"
	                                      "[ice_host_candidates]\n1.2.3.4 => 5.6.7.8\n",
	                                      &cfg, &err) == 0);
	CU_ASSERT_EQUAL(px_media_init(cfg, &err), 0);
	CU_ASSERT_EQUAL(px_media_init(cfg, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.msg, "media engine already started");
	px_config_unref(cfg);
	px_media_shutdown();

	/* No file at all: the defaults, one worker per core. */
	CU_ASSERT_EQUAL(px_media_init(NULL, &err), 0);
	px_media_shutdown();
	px_media_shutdown(); /* harmless twice */
}

static void test_two_workers(void)
{
	struct call c;
	struct phone pd, pe;
	struct rtp_in in;
	px_rtp *d, *e;

	/* Sessions go to the least loaded worker: A to one, B to the other,
	 * and the bridge moves B to A's. */
	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 2) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	for (uint16_t i = 0; i < 3; i++) {
		send_rtp(&c.pa, c.a, 0x1, i, 160u * i, false);
		CU_ASSERT(recv_relayed(&c.pb, &in, 0x1, i));
		send_rtp(&c.pb, c.b, 0x2, i, 160u * i, false);
		CU_ASSERT(recv_relayed(&c.pa, &in, 0x2, i));
	}

	/* D lands on the worker B left; bridging A to D replaces B and
	 * moves D. */
	d = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(d);
	CU_ASSERT_FATAL(phone_open(&pd, AF_INET));
	px_rtp_set_remote(d, (struct sockaddr *)&pd.addr, false);
	CU_ASSERT_FATAL(px_rtp_bridge(c.a, d, NULL) == 0);
	send_rtp(&c.pa, c.a, 0x1, 3, 480, false);
	CU_ASSERT(recv_relayed(&pd, &in, 0x1, 3));
	CU_ASSERT_EQUAL(in.ssrc, stats_of(d).tx_ssrc);
	CU_ASSERT(in.marker);
	send_rtp(&pd, d, 0x4, 1, 0, false);
	CU_ASSERT(recv_relayed(&c.pa, &in, 0x4, 1));
	send_rtp(&c.pb, c.b, 0x2, 3, 480, false);
	CU_ASSERT(wait_stat(c.b, STAT(rx_dropped), 1));
	CU_ASSERT(nothing_arrives(&c.pa));
	CU_ASSERT(nothing_arrives(&c.pb));

	/* E lands on the now idle worker, and bridging E to B moves B there. */
	e = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(e);
	CU_ASSERT_FATAL(phone_open(&pe, AF_INET));
	px_rtp_set_remote(e, (struct sockaddr *)&pe.addr, false);
	CU_ASSERT_FATAL(px_rtp_bridge(e, c.b, NULL) == 0);
	send_rtp(&c.pb, c.b, 0x2, 4, 640, false);
	CU_ASSERT(recv_relayed(&pe, &in, 0x2, 4));
	send_rtp(&pe, e, 0x5, 1, 0, false);
	CU_ASSERT(recv_relayed(&c.pb, &in, 0x5, 1));
	/* A and D, left on the first worker, still relay. */
	send_rtp(&pd, d, 0x4, 2, 160, false);
	CU_ASSERT(recv_relayed(&c.pa, &in, 0x4, 2));

	px_rtp_destroy(d);
	px_rtp_destroy(e);
	phone_close(&pd);
	phone_close(&pe);
	call_close(&c);
	CU_ASSERT_EQUAL(px_media_session_count(), 0);
	px_media_shutdown();
}

static void test_ipv6(void)
{
	struct call c;
	struct rtp_in in;
	struct sockaddr_storage bound;
	struct phone probe;

	if (!phone_open(&probe, AF_INET6)) {
		fprintf(stderr, "(no ::1 here, skipped) ");
		return;
	}
	phone_close(&probe);
	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET6));
	px_rtp_local_addr(c.a, &bound);
	CU_ASSERT_EQUAL(bound.ss_family, AF_INET6);
	CU_ASSERT_EQUAL(addr_port(&bound), px_rtp_local_port(c.a));
	for (uint16_t i = 0; i < 3; i++) {
		send_rtp(&c.pa, c.a, 0x66, i, 160u * i, false);
		CU_ASSERT(recv_relayed(&c.pb, &in, 0x66, i));
		CU_ASSERT_EQUAL(in.from.ss_family, AF_INET6);
		CU_ASSERT_EQUAL(addr_port(&in.from), px_rtp_local_port(c.b));
		send_rtp(&c.pb, c.b, 0x67, i, 160u * i, false);
		CU_ASSERT(recv_relayed(&c.pa, &in, 0x67, i));
	}
	CU_ASSERT(wait_stat(c.a, STAT(rx_packets), 3));
	CU_ASSERT(wait_stat(c.a, STAT(tx_packets), 3));
	call_close(&c);
	px_media_shutdown();
}

static void test_shutdown_closes_sessions(void)
{
	struct call c;
	struct rtp_in in;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 2) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	CU_ASSERT_PTR_NOT_NULL(open_session(AF_INET));
	send_rtp(&c.pa, c.a, 0x77, 1, 0, false);
	CU_ASSERT(recv_relayed(&c.pb, &in, 0x77, 1));
	CU_ASSERT_EQUAL(px_media_session_count(), 3);
	px_media_shutdown();
	CU_ASSERT_EQUAL(px_media_session_count(), 0);
	phone_close(&c.pa);
	phone_close(&c.pb);
	/* The ports are free again for a new engine. */
	CU_ASSERT_FATAL(start_engine(port_base, port_base + 5, 1) == 0);
	for (int i = 0; i < 3; i++)
		CU_ASSERT_PTR_NOT_NULL(open_session(AF_INET));
	px_media_shutdown();
}

/* A phone sending as fast as it can, from its own thread, to every RTP
 * port of the test range, so that whatever sessions come and go on them
 * keep their workers busy. */
struct flood {
	int fd;
	struct sockaddr_storage to[8];
	atomic_bool stop;
	pthread_t thread;
};

static void *flood_run(void *arg)
{
	struct flood *f = arg;
	unsigned char p[HEADER_SIZE + PAYLOAD_SIZE];

	for (uint32_t i = 0; i < 1000000 && !atomic_load(&f->stop); i++) {
		const struct sockaddr_storage *to = &f->to[i % 8];
		size_t len = make_rtp(p, 0xf100d, (uint16_t)(i / 8), 160 * (i / 8), false);
		sendto(f->fd, p, len, MSG_DONTWAIT, (const struct sockaddr *)to, addr_len(to));
	}
	return NULL;
}

static void flood_start(struct flood *f, const struct phone *from)
{
	f->fd = from->fd;
	for (unsigned i = 0; i < 8; i++)
		f->to[i] = loopback(AF_INET, (uint16_t)(port_base + 2 * i));
	atomic_store(&f->stop, false);
	CU_ASSERT_FATAL(pthread_create(&f->thread, NULL, flood_run, f) == 0);
}

static void flood_stop(struct flood *f)
{
	atomic_store(&f->stop, true);
	pthread_join(f->thread, NULL);
}

/* Wait (bounded) until r has received something from the flood. */
static bool flowing(px_rtp *r)
{
	for (int i = 0; i < 1000; i++) {
		if (stats_of(r).rx_packets > 0)
			return true;
		usleep(1000);
	}
	return false;
}

static void test_destroy_during_traffic(void)
{
	struct phone sender, sink;
	struct flood f;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 2) == 0);
	CU_ASSERT_FATAL(phone_open(&sender, AF_INET));
	CU_ASSERT_FATAL(phone_open(&sink, AF_INET));
	for (int round = 0; round < 10; round++) {
		px_rtp *s[2] = {open_session(AF_INET), open_session(AF_INET)};
		CU_ASSERT_PTR_NOT_NULL_FATAL(s[0]);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s[1]);
		px_rtp_set_remote(s[0], (struct sockaddr *)&sink.addr, round % 2);
		px_rtp_set_remote(s[1], (struct sockaddr *)&sink.addr, false);
		CU_ASSERT(px_rtp_bridge(s[0], s[1], NULL) == 0);
		flood_start(&f, &sender);
		CU_ASSERT(flowing(s[0]));
		CU_ASSERT(flowing(s[1]));
		/* Either end may go first, while packets for both are in flight. */
		px_rtp_destroy(s[round % 2]);
		px_rtp_destroy(s[1 - round % 2]);
		flood_stop(&f);
	}
	CU_ASSERT_EQUAL(px_media_session_count(), 0);
	phone_close(&sender);
	phone_close(&sink);
	px_media_shutdown();
}

static void test_moves_during_traffic(void)
{
	struct phone sender, sink;
	struct flood f;
	px_rtp *s[4];
	uint32_t ssrc[4];

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 2) == 0);
	CU_ASSERT_FATAL(phone_open(&sender, AF_INET));
	CU_ASSERT_FATAL(phone_open(&sink, AF_INET));
	for (int i = 0; i < 4; i++) {
		s[i] = open_session(AF_INET);
		CU_ASSERT_PTR_NOT_NULL_FATAL(s[i]);
		px_rtp_set_remote(s[i], (struct sockaddr *)&sink.addr, i % 2);
		ssrc[i] = stats_of(s[i]).tx_ssrc;
	}
	flood_start(&f, &sender);
	CU_ASSERT(flowing(s[3]));
	/* Every pairing, over and over, while the flood keeps both workers
	 * reading. Bridging gathers the sessions on one worker; a session
	 * replaced now and then lands on the other one, so moves go on. */
	for (int round = 0; round < 300; round++) {
		if (round % 10 == 9) {
			int k = round / 10 % 4;
			px_rtp_destroy(s[k]);
			s[k] = open_session(AF_INET);
			CU_ASSERT_PTR_NOT_NULL_FATAL(s[k]);
			px_rtp_set_remote(s[k], (struct sockaddr *)&sink.addr, false);
			ssrc[k] = stats_of(s[k]).tx_ssrc;
		}
		px_rtp *x = s[round % 4], *y = s[(round / 4 + round + 1) % 4];
		if (x != y)
			CU_ASSERT(px_rtp_bridge(x, y, NULL) == 0);
		if (round % 7 == 0)
			px_rtp_unbridge(s[round % 4]);
		if (round % 5 == 0)
			px_rtp_set_send(s[round % 4], round % 10 == 0);
		/* Read while the worker writes them (for TSan's sake). */
		struct px_rtp_stats st = stats_of(s[round % 4]);
		CU_ASSERT_EQUAL(st.tx_ssrc, ssrc[round % 4]);
	}
	for (int i = 0; i < 4; i++)
		px_rtp_destroy(s[i]);
	flood_stop(&f);
	CU_ASSERT_EQUAL(px_media_session_count(), 0);
	phone_close(&sender);
	phone_close(&sink);
	px_media_shutdown();
}

/* ---------------------------------------------------------------- main */

#ifndef PX_MODULES_BUILDDIR
#define PX_MODULES_BUILDDIR "modules/.libs"
#endif

/* A PCMU leg bridged to an Opus leg: the engine transcodes both ways, in
 * each receiver's payload type and ptime. Bad packets on the PCMU leg
 * (wrong version, truncated header, a CSRC count beyond the packet, a
 * wrong payload type) and Opus garbage on the other are dropped and
 * counted; good packets after them still come through. */
static void test_transcoding_and_bad_rtp(void)
{
	struct call c;
	struct rtp_in in;
	px_err err = {""};
	unsigned char p[HEADER_SIZE + 160];
	bool loaded;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	loaded = px_loader_init(PX_MODULES_BUILDDIR, &err) == 0 &&
		 px_loader_load("codec_ulaw", &err) == 0 && px_loader_load("codec_opus", &err) == 0;
	if (!loaded)
		fprintf(stderr, "\n  codec modules: %s\n", err.msg);
	CU_ASSERT_FATAL(loaded);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	struct px_rtp_codec ulaw = {.format = px_format_find("ulaw"), .pt = 0, .ptime = 20,
				    .dtmf_pt = -1};
	struct px_rtp_codec opus = {.format = px_format_find("opus"), .pt = 111, .ptime = 20,
				    .dtmf_pt = -1};
	CU_ASSERT_PTR_NOT_NULL_FATAL(ulaw.format);
	CU_ASSERT_PTR_NOT_NULL_FATAL(opus.format);
	px_rtp_set_codec(c.a, &ulaw);
	px_rtp_set_codec(c.b, &opus);
	CU_ASSERT_EQUAL_FATAL(px_rtp_bridge(c.a, c.b, &err), 0);
	CU_ASSERT(px_rtp_transcoding(c.a));
	CU_ASSERT(px_rtp_transcoding(c.b));

	/* 20 ms of PCMU silence in, an Opus packet of 20 ms out for each
	 * (encoded at 8 kHz: no resampler holds samples back). */
	for (uint16_t seq = 1; seq <= 2; seq++) {
		make_rtp(p, 0x1111, seq, 160u * seq, false);
		memset(p + HEADER_SIZE, 0xff, 160);
		send_raw(&c.pa, c.a, p, sizeof(p));
	}
	CU_ASSERT_FATAL(recv_packet(&c.pb, &in, RECV_TIMEOUT_MS));
	CU_ASSERT_EQUAL(in.pt, 111);
	CU_ASSERT(in.marker);
	CU_ASSERT(in.len > HEADER_SIZE && in.len < HEADER_SIZE + 160);
	uint32_t first_ts = in.ts;
	CU_ASSERT_FATAL(recv_packet(&c.pb, &in, RECV_TIMEOUT_MS));
	CU_ASSERT_EQUAL(in.pt, 111);
	CU_ASSERT(!in.marker);
	CU_ASSERT_EQUAL(in.ts - first_ts, 960); /* the RTP clock stays 48 kHz */
	first_ts = in.ts;

	unsigned char bad[64];
	memcpy(bad, p, sizeof(bad));
	bad[0] = 0x40; /* version 1 */
	send_raw(&c.pa, c.a, bad, sizeof(bad));
	send_raw(&c.pa, c.a, p, 7); /* shorter than a header */
	memcpy(bad, p, sizeof(bad));
	bad[0] = 0x8f; /* 15 CSRCs: 60 bytes after the header, of 52 */
	send_raw(&c.pa, c.a, bad, sizeof(bad));
	memcpy(bad, p, sizeof(bad));
	bad[1] = 8; /* PCMA, not negotiated */
	send_raw(&c.pa, c.a, bad, sizeof(bad));
	CU_ASSERT(wait_stat(c.a, STAT(rx_bad), 4));
	CU_ASSERT(nothing_arrives(&c.pb));

	/* Opus garbage from the other side: code 3 with no frames. */
	unsigned char garbage[HEADER_SIZE + PAYLOAD_SIZE];
	make_rtp(garbage, 0x2222, 1, 960, false);
	garbage[1] = 111;
	memcpy(garbage + HEADER_SIZE, "\x03\x00\x12\x34", 4);
	send_raw(&c.pb, c.b, garbage, HEADER_SIZE + 4);
	CU_ASSERT(wait_stat(c.b, STAT(rx_bad), 1));
	CU_ASSERT(nothing_arrives(&c.pa));

	/* And the call goes on: the next PCMU packet, 20 ms later in the stream. */
	make_rtp(p, 0x1111, 3, 480, false);
	memset(p + HEADER_SIZE, 0xff, 160);
	send_raw(&c.pa, c.a, p, sizeof(p));
	CU_ASSERT_FATAL(recv_packet(&c.pb, &in, RECV_TIMEOUT_MS));
	CU_ASSERT_EQUAL(in.pt, 111);
	CU_ASSERT_EQUAL(in.ts - first_ts, 960);
	CU_ASSERT(wait_stat(c.a, STAT(transcoded), 3));

	/* Same format both sides again: relayed, payload untouched. */
	px_rtp_set_codec(c.b, &ulaw);
	CU_ASSERT_EQUAL(px_rtp_bridge(c.a, c.b, &err), 0);
	CU_ASSERT(!px_rtp_transcoding(c.a));
	send_rtp(&c.pa, c.a, 0x1111, 4, 640, false);
	CU_ASSERT(recv_relayed(&c.pb, &in, 0x1111, 4));
	call_close(&c);
	px_loader_shutdown();
}

/* ---------------------------------------------------------------- terminated media */

static bool load_codecs(void)
{
	px_err err = {""};
	bool loaded = px_loader_init(PX_MODULES_BUILDDIR, &err) == 0 &&
		      px_loader_load("codec_ulaw", &err) == 0;

	if (!loaded)
		fprintf(stderr, "\n  codec modules: %s\n", err.msg);
	return loaded;
}

static const struct px_rtp_codec *ulaw_codec(void)
{
	static struct px_rtp_codec c;

	c = (struct px_rtp_codec){.format = px_format_find("ulaw"), .pt = 0, .ptime = 20,
				  .dtmf_pt = -1};
	return &c;
}

/* Read and drop what is still on its way to ph, until SILENCE_MS pass
 * without a packet (at most 200 packets): how many there were. */
static int drain(const struct phone *ph)
{
	struct rtp_in in;
	int n = 0;

	while (n < 200 && recv_packet(ph, &in, SILENCE_MS))
		n++;
	return n;
}

/* Wait until the source says it is done, up to 3 s. */
static bool wait_done(px_source *s)
{
	for (int i = 0; i < 3000 && !px_source_done(s); i++)
		usleep(1000);
	return px_source_done(s);
}

/* Receive what a source sends until nothing comes for 300 ms (at most
 * max packets); checks that they form one stream from the first. */
struct heard {
	unsigned packets, marked, bad_seq, bad_ts, bad_pt;
	uint32_t ssrc;
	bool first_marked;
	size_t payload;
	unsigned char first[2048];
	uint16_t last_seq;
	uint32_t last_ts;
};

static void listen_stream(const struct phone *ph, struct heard *h, unsigned max, uint32_t step)
{
	struct rtp_in in;

	memset(h, 0, sizeof(*h));
	while (h->packets < max && recv_packet(ph, &in, 300)) {
		if (h->packets == 0) {
			h->ssrc = in.ssrc;
			h->first_marked = in.marker;
			h->payload = in.len - HEADER_SIZE;
			memcpy(h->first, in.data + HEADER_SIZE, h->payload);
		} else {
			h->marked += in.marker;
			h->bad_seq += in.seq != (uint16_t)(h->last_seq + 1);
			h->bad_ts += in.ts != h->last_ts + step;
		}
		h->bad_pt += in.pt != 0 || in.ssrc != h->ssrc;
		h->last_seq = in.seq;
		h->last_ts = in.ts;
		h->packets++;
	}
}

static void test_source_plays_buffer(void)
{
	px_rtp *r;
	struct phone ph;
	px_source *s = NULL;
	px_err err = {""};
	struct heard h;
	unsigned char audio[4000]; /* 500 ms of PCMU */

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(load_codecs());
	r = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_FATAL(phone_open(&ph, AF_INET));
	px_rtp_set_remote(r, (struct sockaddr *)&ph.addr, false);

	/* No codec yet: nothing to encode into. */
	CU_ASSERT_EQUAL_FATAL(px_source_new_buffer(px_format_find("ulaw"), 1000, &s, &err), 0);
	CU_ASSERT_EQUAL(px_rtp_attach_source(r, s, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no codec"));

	px_rtp_set_codec(r, ulaw_codec());
	for (size_t i = 0; i < sizeof(audio); i++)
		audio[i] = (unsigned char)(i * 7 + 1);
	CU_ASSERT_EQUAL(px_source_write(s, audio, sizeof(audio)), sizeof(audio));
	CU_ASSERT_EQUAL(px_source_buffered_ms(s), 500);
	px_source_finish(s);
	CU_ASSERT_EQUAL_FATAL(px_rtp_attach_source(r, s, &err), 0);
	listen_stream(&ph, &h, 100, 160);
	CU_ASSERT_EQUAL(h.packets, 25);
	CU_ASSERT(h.first_marked);
	CU_ASSERT_EQUAL(h.marked, 0);
	CU_ASSERT_EQUAL(h.bad_seq, 0);
	CU_ASSERT_EQUAL(h.bad_ts, 0);
	CU_ASSERT_EQUAL(h.bad_pt, 0);
	CU_ASSERT_EQUAL(h.payload, 160);
	CU_ASSERT(!memcmp(h.first, audio, 160)); /* sent as it is: no transcoding */
	CU_ASSERT(wait_done(s));
	CU_ASSERT_EQUAL(px_source_packets(s), 25);
	CU_ASSERT(wait_stat(r, STAT(tx_packets), 25));
	CU_ASSERT(nothing_arrives(&ph));
	px_rtp_detach_source(r);
	px_rtp_detach_source(r); /* twice: nothing to do */
	px_source_unref(s);

	/* Bad formats and sizes. */
	s = NULL;
	CU_ASSERT_EQUAL(px_source_new_buffer(px_format_find("slin"), 0, &s, &err), -1);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(px_stream_sample_bytes(px_format_find("slin16")), 2);
	CU_ASSERT_EQUAL(px_stream_sample_bytes(px_format_find("ulaw")), 1);
	px_rtp_destroy(r);
	phone_close(&ph);
	px_loader_shutdown();
}

/* A ring that runs dry: the worker skips packets, the timestamp runs on
 * and the next packet is marked; then a linear source is transcoded. */
static void test_source_underrun_and_transcoding(void)
{
	px_rtp *r;
	struct phone ph;
	px_source *s = NULL;
	px_err err = {""};
	struct rtp_in in;
	struct heard h;
	unsigned char audio[800];
	int16_t pcm[16000 / 1000 * 300]; /* 300 ms at 16 kHz */

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(load_codecs());
	r = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_FATAL(phone_open(&ph, AF_INET));
	px_rtp_set_remote(r, (struct sockaddr *)&ph.addr, false);
	px_rtp_set_codec(r, ulaw_codec());

	memset(audio, 0x55, sizeof(audio));
	CU_ASSERT_EQUAL_FATAL(px_source_new_buffer(px_format_find("ulaw"), 1000, &s, &err), 0);
	px_source_write(s, audio, sizeof(audio)); /* 100 ms */
	CU_ASSERT_EQUAL_FATAL(px_rtp_attach_source(r, s, &err), 0);
	listen_stream(&ph, &h, 100, 160);
	CU_ASSERT_EQUAL(h.packets, 5);
	CU_ASSERT(!px_source_done(s)); /* not finished: waiting for more */
	CU_ASSERT(px_source_underruns(s) > 0);
	px_source_write(s, audio, sizeof(audio));
	CU_ASSERT_FATAL(recv_packet(&ph, &in, RECV_TIMEOUT_MS));
	CU_ASSERT(in.marker);
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(h.last_seq + 1));
	CU_ASSERT(in.ts - h.last_ts >= 160u * 10); /* the 300 ms of silence and more */
	px_rtp_detach_source(r);
	px_source_unref(s);
	CU_ASSERT(drain(&ph) <= 4); /* what it sent before it was detached */

	/* 300 ms of 16 kHz linear into a PCMU session: resampled, encoded. */
	px_codec_test_signal(pcm, sizeof(pcm) / sizeof(pcm[0]), 16000, 0);
	CU_ASSERT_EQUAL_FATAL(px_source_new_buffer(px_format_find("slin16"), 1000, &s, &err), 0);
	CU_ASSERT_EQUAL(px_source_write(s, pcm, sizeof(pcm)), sizeof(pcm));
	px_source_finish(s);
	CU_ASSERT_EQUAL_FATAL(px_rtp_attach_source(r, s, &err), 0);
	listen_stream(&ph, &h, 100, 160);
	CU_ASSERT_EQUAL(h.packets, 15); /* the resampler's delay is sent at the end */
	CU_ASSERT_EQUAL(h.payload, 160);
	CU_ASSERT_EQUAL(h.bad_seq, 0);
	CU_ASSERT(wait_done(s));
	px_rtp_detach_source(r);
	px_source_unref(s);

	/* A source of a format that has no samples to play. */
	CU_ASSERT_EQUAL(px_source_new_buffer(NULL, 100, &s, &err), -1);
	px_rtp_destroy(r);
	phone_close(&ph);
	px_loader_shutdown();
}

/* A sink gets the decoded audio of a bridged leg, losses concealed, and
 * while an application owns the leg nothing crosses the bridge either way. */
static void test_sink_and_no_relay(void)
{
	struct call c;
	struct rtp_in in;
	px_sink *k = NULL;
	px_source *s = NULL;
	px_err err = {""};
	unsigned char p[HEADER_SIZE + 160];
	int16_t pcm[800];

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(load_codecs());
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	px_rtp_set_codec(c.a, ulaw_codec());
	px_rtp_set_codec(c.b, ulaw_codec());
	CU_ASSERT_EQUAL_FATAL(px_rtp_bridge(c.a, c.b, &err), 0);

	CU_ASSERT_EQUAL_FATAL(px_sink_new_buffer(px_format_find("slin"), 1000, &k, &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_rtp_attach_sink(c.a, k, &err), 0);
	/* Packets 1, 2 and 4: 3 received, 1 concealed; PCMU 0x80 is +8031. */
	for (uint16_t seq = 1; seq <= 4; seq++) {
		if (seq == 3)
			continue;
		make_rtp(p, 0x1111, seq, 160u * seq, false);
		memset(p + HEADER_SIZE, 0x80, 160);
		send_raw(&c.pa, c.a, p, sizeof(p));
	}
	for (int i = 0; i < 1000 && px_sink_samples(k) < 640; i++)
		usleep(1000);
	CU_ASSERT_EQUAL(px_sink_samples(k), 640);
	CU_ASSERT_EQUAL(px_sink_read(k, pcm, sizeof(pcm)), 640 * 2);
	CU_ASSERT(pcm[0] > 7000 && pcm[159] > 7000);   /* packet 1 */
	CU_ASSERT(pcm[480] > 7000 && pcm[639] > 7000); /* packet 4 */
	CU_ASSERT_EQUAL(px_sink_dropped(k), 0);
	CU_ASSERT(nothing_arrives(&c.pb)); /* not relayed to the peer */

	/* The peer's audio does not reach a leg that plays something. */
	CU_ASSERT_EQUAL_FATAL(px_source_new_buffer(px_format_find("ulaw"), 1000, &s, &err), 0);
	memset(p + HEADER_SIZE, 0xff, 160);
	px_source_write(s, p + HEADER_SIZE, 160);
	px_source_finish(s);
	CU_ASSERT_EQUAL_FATAL(px_rtp_attach_source(c.a, s, &err), 0);
	send_rtp(&c.pb, c.b, 0x2222, 1, 160, false);
	CU_ASSERT_FATAL(recv_packet(&c.pa, &in, RECV_TIMEOUT_MS));
	CU_ASSERT_EQUAL(in.len, HEADER_SIZE + 160); /* the source's, not the relayed one */
	uint16_t played_seq = in.seq;
	CU_ASSERT(nothing_arrives(&c.pa));

	/* Detached: the bridge relays again, continuing the stream, marked. */
	px_rtp_detach_source(c.a);
	px_rtp_detach_sink(c.a);
	px_source_unref(s);
	px_sink_unref(k);
	send_rtp(&c.pb, c.b, 0x2222, 2, 320, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pa, &in, 0x2222, 2));
	CU_ASSERT(in.marker);
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(played_seq + 1));
	send_rtp(&c.pa, c.a, 0x1111, 5, 800, false);
	CU_ASSERT(recv_relayed(&c.pb, &in, 0x1111, 5));
	call_close(&c);
	px_loader_shutdown();
}

/* A session destroyed with a source and a sink attached lets go of both. */
static void test_destroy_with_stream(void)
{
	px_rtp *r;
	struct phone ph;
	px_source *s = NULL;
	px_sink *k = NULL;
	px_err err = {""};
	static unsigned char audio[8000];

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(load_codecs());
	r = open_session(AF_INET);
	CU_ASSERT_PTR_NOT_NULL_FATAL(r);
	CU_ASSERT_FATAL(phone_open(&ph, AF_INET));
	px_rtp_set_remote(r, (struct sockaddr *)&ph.addr, false);
	px_rtp_set_codec(r, ulaw_codec());
	CU_ASSERT_EQUAL_FATAL(px_source_new_buffer(px_format_find("slin"), 1000, &s, &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_sink_new_buffer(px_format_find("slin"), 1000, &k, &err), 0);
	px_source_write(s, audio, sizeof(audio));
	CU_ASSERT_EQUAL_FATAL(px_rtp_attach_source(r, s, &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_rtp_attach_sink(r, k, &err), 0);
	struct rtp_in in;
	CU_ASSERT(recv_packet(&ph, &in, RECV_TIMEOUT_MS));
	px_rtp_destroy(r); /* drops the session's references; ours remain */
	/* Of the 450 ms of audio left, at most what was already on its way. */
	CU_ASSERT(drain(&ph) <= 3);
	px_source_unref(s);
	px_sink_unref(k);
	phone_close(&ph);
	px_loader_shutdown();
}

/* ---------------------------------------------------------------- DTMF */

/* What the DTMF handler was told, on the worker thread. */
struct dtmf_log {
	pthread_mutex_t lock;
	unsigned n;
	struct {
		char digit;
		bool begin;
		unsigned ms;
	} calls[32];
};

static void dtmf_logger(void *arg, char digit, bool begin, unsigned duration_ms)
{
	struct dtmf_log *log = arg;

	pthread_mutex_lock(&log->lock);
	if (log->n < 32) {
		log->calls[log->n].digit = digit;
		log->calls[log->n].begin = begin;
		log->calls[log->n].ms = duration_ms;
	}
	log->n++;
	pthread_mutex_unlock(&log->lock);
}

static unsigned dtmf_count(struct dtmf_log *log)
{
	pthread_mutex_lock(&log->lock);
	unsigned n = log->n;
	pthread_mutex_unlock(&log->lock);
	return n;
}

/* Poll until the handler has been called n times (or the deadline). */
static bool wait_dtmf(struct dtmf_log *log, unsigned n, int timeout_ms)
{
	for (int i = 0; i < timeout_ms; i++) {
		if (dtmf_count(log) >= n)
			return true;
		usleep(1000);
	}
	return dtmf_count(log) >= n;
}

static void send_event(const struct phone *ph, const px_rtp *to, uint16_t seq, uint32_t ts,
		       unsigned code, bool end, uint16_t duration, bool marker)
{
	unsigned char p[HEADER_SIZE + PAYLOAD_SIZE]; /* make_rtp fills a payload */

	make_rtp(p, 0x4733, seq, ts, marker);
	p[1] = (unsigned char)((marker ? 0x80 : 0) | 101);
	p[HEADER_SIZE] = (unsigned char)code;
	p[HEADER_SIZE + 1] = (unsigned char)((end ? 0x80 : 0) | 10);
	p[HEADER_SIZE + 2] = (unsigned char)(duration >> 8);
	p[HEADER_SIZE + 3] = (unsigned char)duration;
	send_raw(ph, to, p, HEADER_SIZE + 4);
}

static void test_dtmf_receive(void)
{
	struct call c;
	struct rtp_in in;
	struct dtmf_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
	struct px_rtp_codec ulaw = {.pt = 0, .ptime = 20, .dtmf_pt = 101};
	uint16_t seq = 100;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	px_rtp_set_codec(c.a, &ulaw);
	px_rtp_set_codec(c.b, &ulaw);
	CU_ASSERT_FATAL(px_rtp_bridge(c.a, c.b, NULL) == 0);
	px_rtp_set_dtmf_handler(c.a, dtmf_logger, &log);

	/* '5' for 100 ms: begin, two updates (one repeated), three ends. */
	send_event(&c.pa, c.a, seq++, 8000, 5, false, 0, true);
	send_event(&c.pa, c.a, seq++, 8000, 5, false, 400, false);
	send_event(&c.pa, c.a, seq, 8000, 5, false, 400, false);
	send_event(&c.pa, c.a, seq++, 8000, 5, false, 640, false);
	for (int i = 0; i < 3; i++)
		send_event(&c.pa, c.a, seq++, 8000, 5, true, 800, false);
	CU_ASSERT_FATAL(wait_dtmf(&log, 2, RECV_TIMEOUT_MS));
	/* Relayed to B's far end as well: the begin, marked, in B's stream. */
	CU_ASSERT_FATAL(recv_packet(&c.pb, &in, RECV_TIMEOUT_MS));
	CU_ASSERT_EQUAL(in.pt, 101);
	CU_ASSERT_EQUAL(in.data[HEADER_SIZE], 5);

	/* '#' whose start was lost: the end alone tells begin and end. */
	for (int i = 0; i < 3; i++)
		send_event(&c.pa, c.a, seq++, 9600, 11, true, 1200, false);
	/* 'A' that begins while '1' never ended: '1' ends with its last duration. */
	send_event(&c.pa, c.a, seq++, 11200, 1, false, 0, true);
	send_event(&c.pa, c.a, seq++, 11200, 1, false, 480, false);
	send_event(&c.pa, c.a, seq++, 12800, 12, false, 0, true);
	/* Not a digit (code 40): ignored, still relayed. */
	send_event(&c.pa, c.a, seq++, 12800, 40, false, 160, false);
	CU_ASSERT_FATAL(wait_dtmf(&log, 7, RECV_TIMEOUT_MS));
	/* 'A' has no end packet at all: it ends after a second of silence. */
	CU_ASSERT_FATAL(wait_dtmf(&log, 8, 3000));
	usleep(SILENCE_MS * 1000);
	/* A late end of 'A' changes nothing. */
	send_event(&c.pa, c.a, seq++, 12800, 12, true, 800, false);
	usleep(SILENCE_MS * 1000);

	static const struct {
		char digit;
		bool begin;
		unsigned ms;
	} want[] = {{'5', true, 0}, {'5', false, 100}, {'#', true, 0}, {'#', false, 150},
		    {'1', true, 0}, {'1', false, 60},  {'A', true, 0}, {'A', false, 0}};
	pthread_mutex_lock(&log.lock);
	CU_ASSERT_EQUAL(log.n, 8);
	for (unsigned i = 0; i < 8 && i < log.n; i++) {
		CU_ASSERT_EQUAL(log.calls[i].digit, want[i].digit);
		CU_ASSERT_EQUAL(log.calls[i].begin, want[i].begin);
		CU_ASSERT_EQUAL(log.calls[i].ms, want[i].ms);
	}
	pthread_mutex_unlock(&log.lock);

	/* Unbridged, the handler is still told; once removed, no more. */
	px_rtp_unbridge(c.a);
	send_event(&c.pa, c.a, seq++, 20000, 9, false, 0, true);
	CU_ASSERT(wait_dtmf(&log, 9, RECV_TIMEOUT_MS));
	px_rtp_set_dtmf_handler(c.a, NULL, NULL);
	for (int i = 0; i < 3; i++)
		send_event(&c.pa, c.a, seq++, 20000, 9, true, 800, false);
	CU_ASSERT(wait_stat(c.a, STAT(rx_packets), (uint64_t)(seq - 100 + 1))); /* one repeat */
	CU_ASSERT_EQUAL(dtmf_count(&log), 9);
	call_close(&c);
	px_media_shutdown();
}

/* Read what a digit sent by px_rtp_send_dtmf looks like on the wire. */
static void test_dtmf_send(void)
{
	struct call c;
	struct rtp_in in;
	struct px_rtp_codec ulaw = {.pt = 0, .ptime = 20, .dtmf_pt = 101};
	struct px_rtp_codec no_events = {.pt = 0, .ptime = 20, .dtmf_pt = -1};
	uint16_t last_seq;
	uint32_t audio_ts;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	px_rtp_set_codec(c.a, &no_events);
	CU_ASSERT_EQUAL(px_rtp_send_dtmf(c.a, '1', 100), -1); /* no telephone-event */
	px_rtp_set_codec(c.a, &ulaw);
	px_rtp_set_codec(c.b, &ulaw);
	CU_ASSERT_FATAL(px_rtp_bridge(c.a, c.b, NULL) == 0);
	CU_ASSERT_EQUAL(px_rtp_send_dtmf(c.a, 'Z', 100), -1);
	CU_ASSERT_EQUAL(px_rtp_send_dtmf(c.a, 'X', 100), -1); /* flash is no digit */

	/* Audio relayed from B to A's far end, then a digit on A. */
	for (uint16_t i = 0; i < 3; i++) {
		send_rtp(&c.pb, c.b, 0x5555, (uint16_t)(10 + i), 1000 + 160u * i, i == 0);
		CU_ASSERT_FATAL(recv_relayed(&c.pa, &in, 0x5555, (uint16_t)(10 + i)));
	}
	last_seq = in.seq;
	audio_ts = in.ts;
	CU_ASSERT_EQUAL(px_rtp_send_dtmf(c.a, '7', 120), 0);

	unsigned updates = 0, ends = 0;
	uint32_t event_ts = 0;
	for (int i = 0; i < 20 && ends < 3; i++) {
		CU_ASSERT_FATAL(recv_packet(&c.pa, &in, RECV_TIMEOUT_MS));
		CU_ASSERT_FATAL(in.len == HEADER_SIZE + 4);
		CU_ASSERT_EQUAL(in.pt, 101);
		CU_ASSERT_EQUAL(in.seq, (uint16_t)(last_seq + 1));
		last_seq = in.seq;
		CU_ASSERT_EQUAL(in.data[HEADER_SIZE], 7);
		bool end = in.data[HEADER_SIZE + 1] & 0x80;
		unsigned duration =
			(unsigned)(in.data[HEADER_SIZE + 2] << 8 | in.data[HEADER_SIZE + 3]);
		if (i == 0) {
			CU_ASSERT(in.marker);
			CU_ASSERT(!end);
			CU_ASSERT_EQUAL(duration, 0);
			/* Where the audio stream is: after the last audio sent,
			 * by no more than the time passed since (well under 1 s). */
			event_ts = in.ts;
			CU_ASSERT(event_ts - audio_ts < 8000);
			continue;
		}
		CU_ASSERT(!in.marker);
		CU_ASSERT_EQUAL(in.ts, event_ts);
		if (end) {
			CU_ASSERT_EQUAL(duration, 960);
			ends++;
		} else {
			CU_ASSERT(ends == 0);
			CU_ASSERT(duration > 0 && duration < 960);
			updates++;
		}
	}
	CU_ASSERT_EQUAL(ends, 3);
	CU_ASSERT(updates >= 1 && updates <= 2); /* every 50 ms of 120 */
	CU_ASSERT(nothing_arrives(&c.pa));

	/* Relayed audio goes on after the event's sequence numbers. */
	send_rtp(&c.pb, c.b, 0x5555, 13, 1480, false);
	CU_ASSERT_FATAL(recv_relayed(&c.pa, &in, 0x5555, 13));
	CU_ASSERT_EQUAL(in.seq, (uint16_t)(last_seq + 1));

	/* Digits queue up and go one after the other; the queue is bounded. */
	CU_ASSERT_EQUAL(px_rtp_send_dtmf(c.b, '1', 40), 0);
	CU_ASSERT_EQUAL(px_rtp_send_dtmf(c.b, '2', 40), 0);
	char seen[3] = "";
	unsigned nseen = 0;
	for (int i = 0; i < 30 && nseen < 2; i++) {
		CU_ASSERT_FATAL(recv_packet(&c.pb, &in, RECV_TIMEOUT_MS));
		if (in.marker)
			seen[nseen++] = (char)('0' + in.data[HEADER_SIZE]);
	}
	CU_ASSERT_STRING_EQUAL(seen, "12");
	int accepted = 0;
	for (int i = 0; i < 20; i++)
		accepted += px_rtp_send_dtmf(c.b, '3', 5000) == 0;
	CU_ASSERT(accepted >= 15 && accepted <= 16);
	call_close(&c); /* with digits still queued */
	px_media_shutdown();
}

/* A digit on a leg whose events count at 48 kHz (telephone-event/48000
 * beside Opus): durations in 48 kHz units, and one longer than 16 bits of
 * them (1.5 s) goes on in a second segment, 0xFFFF on in timestamp. */
static void test_dtmf_send_48k(void)
{
	struct call c;
	struct rtp_in in;
	struct px_rtp_codec ev48 = {.pt = 0, .ptime = 20, .dtmf_pt = 101, .dtmf_clock = 48000};
	uint32_t event_ts = 0;
	unsigned first_segment = 0, second_segment = 0, ends = 0, last_end = 0;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	px_rtp_set_codec(c.a, &ev48);
	px_rtp_set_codec(c.b, &ev48);
	CU_ASSERT_FATAL(px_rtp_bridge(c.a, c.b, NULL) == 0);
	CU_ASSERT_EQUAL(px_rtp_send_dtmf(c.a, '5', 1500), 0);
	for (int i = 0; i < 60 && ends < 3; i++) {
		CU_ASSERT_FATAL(recv_packet(&c.pa, &in, RECV_TIMEOUT_MS));
		CU_ASSERT_FATAL(in.len == HEADER_SIZE + 4);
		CU_ASSERT_EQUAL(in.data[HEADER_SIZE], 5);
		bool end = in.data[HEADER_SIZE + 1] & 0x80;
		unsigned duration =
			(unsigned)(in.data[HEADER_SIZE + 2] << 8 | in.data[HEADER_SIZE + 3]);
		if (i == 0) {
			CU_ASSERT(in.marker);
			event_ts = in.ts;
			continue;
		}
		if (in.ts == event_ts) {
			CU_ASSERT(!end);
			CU_ASSERT(duration > 0 && duration <= 0xFFFF);
			first_segment++;
		} else {
			CU_ASSERT_EQUAL(in.ts - event_ts, 0xFFFFu);
			CU_ASSERT(duration <= 1500 * 48 - 0xFFFF);
			second_segment++;
			if (end) {
				ends++;
				last_end = duration;
			}
		}
	}
	CU_ASSERT_EQUAL(ends, 3);
	CU_ASSERT_EQUAL(last_end, 1500 * 48 - 0xFFFF); /* 72000 units in all */
	CU_ASSERT(first_segment >= 20); /* an update every 50 ms for 1.36 s */
	CU_ASSERT(second_segment >= 3);
	call_close(&c);
	px_media_shutdown();
}

/* A transcoded leg (PCMU -> PCMA) puts what it receives in order through
 * its jitter buffer: a reordered packet is decoded in its turn rather than
 * dropped as late, and a lost one is concealed, so that one packet of the
 * other format goes out per frame, in sequence. */
static void test_jitter_buffer_transcoding(void)
{
	struct call c;
	struct rtp_in in;
	px_err err = {""};
	unsigned char p[HEADER_SIZE + 160];
	bool loaded;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	loaded = px_loader_init(PX_MODULES_BUILDDIR, &err) == 0 &&
		 px_loader_load("codec_ulaw", &err) == 0 && px_loader_load("codec_alaw", &err) == 0;
	CU_ASSERT_FATAL(loaded);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	struct px_rtp_codec ulaw = {.format = px_format_find("ulaw"), .pt = 0, .ptime = 20,
				    .dtmf_pt = -1};
	struct px_rtp_codec alaw = {.format = px_format_find("alaw"), .pt = 8, .ptime = 20,
				    .dtmf_pt = -1};
	px_rtp_set_codec(c.a, &ulaw);
	px_rtp_set_codec(c.b, &alaw);
	CU_ASSERT_FATAL(px_rtp_bridge(c.a, c.b, &err) == 0);
	CU_ASSERT(px_rtp_transcoding(c.a));

	/* 1 2 4 3 5 6, then 7 9 (8 lost), in one burst: they wait in the
	 * buffer for their turns, one every 20 ms. */
	static const uint16_t order[] = {1, 2, 4, 3, 5, 6, 7, 9};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		make_rtp(p, 0x3550, order[i], 160u * order[i], false);
		memset(p + HEADER_SIZE, 0xff, 160);
		send_raw(&c.pa, c.a, p, sizeof(p));
	}
	unsigned out = 0;
	uint16_t seq = 0;
	while (recv_packet(&c.pb, &in, SILENCE_MS)) {
		CU_ASSERT_EQUAL(in.pt, 8);
		CU_ASSERT_EQUAL(in.len, HEADER_SIZE + 160);
		if (out)
			CU_ASSERT_EQUAL(in.seq, (uint16_t)(seq + 1));
		seq = in.seq;
		out++;
	}
	CU_ASSERT_EQUAL(out, 9); /* eight decoded, one concealed */
	CU_ASSERT(wait_stat(c.a, STAT(transcoded), 8));
	CU_ASSERT_EQUAL(stats_of(c.a).rx_lost, 1);
	call_close(&c);
	px_loader_shutdown();
}

/* Wait for an RTCP packet on ph (RTP that comes first is skipped). */
static bool recv_rtcp(const struct phone *ph, struct px_rtcp_report *rep)
{
	struct rtp_in in;

	for (int i = 0; i < 50; i++) {
		if (!recv_packet(ph, &in, 3 * RECV_TIMEOUT_MS))
			return false;
		if (px_rtcp_is_rtcp(in.data, in.len))
			return px_rtcp_parse(in.data, in.len, rep) == 0;
	}
	return false;
}

/* RTCP multiplexed on the RTP port, and on port + 1: the session's reports
 * (RR while it sends nothing, SR once it relays) reach the far end and
 * describe what it received; the far end's RR is read (not counted as bad
 * RTP) into loss, jitter and round trip. */
static void test_rtcp(void)
{
	struct call c;
	struct px_rtcp_report rep;
	unsigned char p[256];
	int n;

	rtcp_interval = 200;
	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	rtcp_interval = 5000;
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	px_rtp_unbridge(c.a);
	px_rtp_set_rtcp_mux(c.a, true);
	uint32_t a_ssrc = stats_of(c.a).tx_ssrc;

	/* Ten packets from PA, two of them lost (seq 1003 and 1006). */
	for (uint16_t i = 0; i < 10; i++)
		if (i != 3 && i != 6)
			send_rtp(&c.pa, c.a, 0x7777, (uint16_t)(1000 + i), 160u * i, false);
	CU_ASSERT(wait_stat(c.a, STAT(rx_packets), 8));
	CU_ASSERT_FATAL(recv_rtcp(&c.pa, &rep));
	CU_ASSERT(!rep.sender); /* A sent no RTP */
	CU_ASSERT_EQUAL(rep.ssrc, a_ssrc);
	CU_ASSERT_EQUAL_FATAL(rep.nblocks, 1);
	CU_ASSERT_EQUAL(rep.blocks[0].ssrc, 0x7777);
	CU_ASSERT_EQUAL(rep.blocks[0].highest_seq, 1009);
	CU_ASSERT_EQUAL(rep.blocks[0].cumulative_lost, 2);
	CU_ASSERT_EQUAL(rep.blocks[0].fraction_lost, 2 * 256 / 10);

	/* PA's RR about A's stream, on A's RTP port. */
	struct px_rtcp_block about_a = {.ssrc = a_ssrc, .fraction_lost = 64,
					.cumulative_lost = 5, .jitter = 80};
	n = px_rtcp_build(p, sizeof(p), 0x7777, NULL, &about_a, "pa");
	CU_ASSERT_FATAL(n > 0);
	send_raw(&c.pa, c.a, p, (size_t)n);
	CU_ASSERT(wait_stat(c.a, STAT(rtcp_rx), 1));
	struct px_rtp_stats st = stats_of(c.a);
	CU_ASSERT(st.remote_reported);
	CU_ASSERT_EQUAL(st.remote_lost, 5);
	CU_ASSERT_EQUAL(st.remote_fraction_lost, 64);
	CU_ASSERT_EQUAL(st.remote_jitter_ms, 10);
	CU_ASSERT_EQUAL(st.rx_bad, 0);
	CU_ASSERT_EQUAL(st.rx_packets, 8);

	/* Bridged, A relays PB's audio to PA: its next report is an SR. */
	CU_ASSERT_FATAL(px_rtp_bridge(c.a, c.b, NULL) == 0);
	for (uint16_t i = 0; i < 5; i++)
		send_rtp(&c.pb, c.b, 0x8888, (uint16_t)(50 + i), 160u * i, false);
	CU_ASSERT(wait_stat(c.a, STAT(tx_packets), 5));
	for (int i = 0; i < 5 && (!recv_rtcp(&c.pa, &rep) || !rep.sender); i++)
		;
	CU_ASSERT_FATAL(rep.sender);
	CU_ASSERT_EQUAL(rep.info.packets, 5);
	CU_ASSERT_EQUAL(rep.info.octets, 5 * (HEADER_SIZE + PAYLOAD_SIZE));
	/* Answered at once (DLSR 0): A measures the round trip. */
	about_a.lsr = px_rtcp_ntp_mid(rep.info.ntp);
	n = px_rtcp_build(p, sizeof(p), 0x7777, NULL, &about_a, "pa");
	send_raw(&c.pa, c.a, p, (size_t)n);
	CU_ASSERT(wait_stat(c.a, STAT(rtcp_rx), 2));
	CU_ASSERT(stats_of(c.a).rtt_ms < 1000);

	/* Not multiplexed: B's RTCP port is its RTP port + 1. */
	struct sockaddr_storage b_rtcp;
	session_addr(c.b, &b_rtcp);
	((struct sockaddr_in *)&b_rtcp)->sin_port = htons((uint16_t)(px_rtp_local_port(c.b) + 1));
	CU_ASSERT_EQUAL(sendto(c.pb.fd, p, (size_t)n, 0, (struct sockaddr *)&b_rtcp,
	                       sizeof(struct sockaddr_in)),
	                n);
	CU_ASSERT(wait_stat(c.b, STAT(rtcp_rx), 1));
	/* Garbage there is bad, not RTCP. */
	CU_ASSERT_EQUAL(sendto(c.pb.fd, "\x80\xc9\x00\x09", 4, 0, (struct sockaddr *)&b_rtcp,
	                       sizeof(struct sockaddr_in)),
	                4);
	CU_ASSERT(wait_stat(c.b, STAT(rx_bad), 1));
	CU_ASSERT_EQUAL(stats_of(c.b).rtcp_rx, 1);
	call_close(&c);
	px_media_shutdown();
}

/* A digit played as tones by one session, its packets carried by the test
 * to another session that listens for tones. */
static void test_inband_dtmf(void)
{
	struct call c;
	struct rtp_in in;
	struct dtmf_log log = {.lock = PTHREAD_MUTEX_INITIALIZER};
	px_err err = {""};
	bool loaded;

	CU_ASSERT_FATAL(start_engine(port_base, port_base + 15, 1) == 0);
	loaded = px_loader_init(PX_MODULES_BUILDDIR, &err) == 0 &&
		 px_loader_load("codec_ulaw", &err) == 0;
	CU_ASSERT_FATAL(loaded);
	CU_ASSERT_FATAL(call_open(&c, AF_INET));
	px_rtp_unbridge(c.a);
	/* No format known: nothing to decode. */
	CU_ASSERT_EQUAL(px_rtp_set_inband(c.a, dtmf_logger, &log, &err), -1);
	CU_ASSERT(strstr(err.msg, "format") != NULL);
	CU_ASSERT_EQUAL(px_rtp_send_tone(c.a, '5', 100), -1);

	struct px_rtp_codec ulaw = {.format = px_format_find("ulaw"), .pt = 0, .ptime = 20,
				    .dtmf_pt = -1};
	px_rtp_set_codec(c.a, &ulaw);
	px_rtp_set_codec(c.b, &ulaw);
	CU_ASSERT_FATAL(px_rtp_set_inband(c.a, dtmf_logger, &log, &err) == 0);
	CU_ASSERT_FATAL(px_rtp_set_inband(c.b, dtmf_logger, &log, &err) == 0);
	CU_ASSERT_EQUAL(px_rtp_send_tone(c.a, 'Z', 100), -1);
	CU_ASSERT_EQUAL(px_rtp_send_tone(c.a, '8', 200), 0);

	/* A plays 200 ms of '8': ten PCMU packets, consecutive, the first
	 * marked; each is sent on to B as it arrives, then some silence. */
	unsigned packets = 0;
	uint16_t seq = 0;
	uint32_t ts = 0;
	while (recv_packet(&c.pa, &in, SILENCE_MS)) {
		CU_ASSERT_EQUAL(in.pt, 0);
		CU_ASSERT_EQUAL(in.len, HEADER_SIZE + 160);
		CU_ASSERT_EQUAL(in.marker, packets == 0);
		if (packets) {
			CU_ASSERT_EQUAL(in.seq, (uint16_t)(seq + 1));
			CU_ASSERT_EQUAL(in.ts, ts + 160);
		}
		seq = in.seq;
		ts = in.ts;
		packets++;
		send_raw(&c.pb, c.b, in.data, in.len);
	}
	if (packets != 10)
		fprintf(stderr, "\n  inband: %u packets\n", packets);
	CU_ASSERT_EQUAL(packets, 10);
	unsigned char p[HEADER_SIZE + 160];
	for (uint16_t i = 1; i <= 5; i++) {
		make_rtp(p, 0x8888, (uint16_t)(seq + i), ts + 160u * i, false);
		memset(p + HEADER_SIZE, 0xff, 160); /* PCMU silence */
		send_raw(&c.pb, c.b, p, sizeof(p));
	}
	CU_ASSERT_FATAL(wait_dtmf(&log, 2, RECV_TIMEOUT_MS));
	pthread_mutex_lock(&log.lock);
	CU_ASSERT_EQUAL(log.n, 2);
	CU_ASSERT_EQUAL(log.calls[0].digit, '8');
	CU_ASSERT(log.calls[0].begin);
	CU_ASSERT_EQUAL(log.calls[1].digit, '8');
	CU_ASSERT(!log.calls[1].begin);
	/* Detection takes a few tens of ms at each edge. */
	CU_ASSERT(log.calls[1].ms >= 150 && log.calls[1].ms <= 240);
	pthread_mutex_unlock(&log.lock);

	/* A codec change turns it off. */
	struct px_rtp_codec other = ulaw;
	other.format = px_format_find("slin");
	px_rtp_set_codec(c.a, &other);
	CU_ASSERT_EQUAL(px_rtp_send_tone(c.a, '1', 100), -1);
	call_close(&c);
	px_loader_shutdown();
}

static int suite_cleanup(void)
{
	px_media_shutdown();
	return 0;
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
	        {"relay both ways", test_relay_both_ways},
	        {"source change", test_source_change},
	        {"loss and reordering", test_loss_and_reordering},
	        {"symmetric latch", test_symmetric_latch},
	        {"not RTP is dropped", test_not_rtp_dropped},
	        {"unbridge and re-bridge", test_unbridge_and_rebridge},
	        {"hold", test_hold},
	        {"port exhaustion and reuse", test_port_exhaustion_and_reuse},
	        {"idle socket reuse", test_idle_socket_reuse},
	        {"second leg near the first", test_second_leg_near_first},
	        {"configuration", test_configuration},
	        {"two workers", test_two_workers},
	        {"IPv6", test_ipv6},
	        {"shutdown closes sessions", test_shutdown_closes_sessions},
	        {"destroy during traffic", test_destroy_during_traffic},
	        {"moves during traffic", test_moves_during_traffic},
	        {"transcoding and bad RTP", test_transcoding_and_bad_rtp},
	        {"source plays a buffer", test_source_plays_buffer},
	        {"source underrun and transcoding", test_source_underrun_and_transcoding},
	        {"sink, and no relay while owned", test_sink_and_no_relay},
	        {"destroy with a source and a sink", test_destroy_with_stream},
		{"DTMF receive", test_dtmf_receive},
		{"DTMF send", test_dtmf_send},
		{"DTMF send at 48 kHz, in segments", test_dtmf_send_48k},
		{"inband DTMF", test_inband_dtmf},
		{"jitter buffer on a transcoded leg", test_jitter_buffer_transcoding},
		{"RTCP", test_rtcp},
	};
	CU_pSuite suite;
	unsigned failures;

	px_log_init();
	/* Below the ephemeral ports (32768 up), so the phones' own ports never
	 * take one of ours. */
	port_base = 12000 + (unsigned)(getpid() % 1000) * 20;
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("media", NULL, suite_cleanup);
	if (!suite) {
		CU_cleanup_registry();
		return 1;
	}
	for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++) {
		if (!CU_add_test(suite, tests[i].name, tests[i].func)) {
			CU_cleanup_registry();
			return 1;
		}
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
