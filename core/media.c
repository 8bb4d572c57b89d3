/*
 * The media engine (see plexus/media.h and media_internal.h): owns the media
 * worker threads, each with its epoll set, its wake-up eventfd, the table of
 * the RTP sessions it serves and its packet buffers; the RTP port range of
 * rtp.conf and which of its even ports are taken; every px_rtp session with
 * its socket, far end, bridge peer and statistics; and the relay itself,
 * which checks each received datagram, keeps the receive statistics, latches
 * symmetric far ends and rewrites SSRC, sequence number and timestamp for the
 * bridged leg before sending the packet on, payload untouched.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <plexus/codec.h>
#include <plexus/jitterbuf.h>
#include <plexus/config.h>
#include <plexus/core.h>
#include <plexus/log.h>
#include <plexus/media.h>
#include <plexus/rfc4733.h>

#include "codec_internal.h"
#include "inband.h"
#include "rtcp.h"
#include "media_internal.h"

/*
 * Threading. Every session belongs to one worker, and everything about it
 * that the relay reads or writes (peer, far end, stream state) is guarded by
 * that worker's lock. The worker takes its own lock once per epoll wake-up,
 * for the whole batch of ready sockets, never per packet, and no worker ever
 * takes another worker's lock; so the packet path does not contend with the
 * other workers. The control calls (set_remote, bridge, destroy...) come from
 * signalling threads, take the lock of the worker(s) concerned and act at
 * once, which makes them synchronous: when one returns, the next packet the
 * worker handles sees its effect.
 *
 * epoll hands back events the worker may only look at after taking its lock,
 * and by then a control call may have moved the session to another worker
 * or freed it. So an event carries no pointer but a handle, slot index and
 * generation in the worker's own table; a session leaving the table bumps the
 * generation, and a stale event finds nothing. Outside its lock a worker
 * holds no session pointer at all, which is why px_rtp_destroy can free the
 * session as soon as it has removed it under the lock.
 *
 * Statistics are atomics written under the worker lock (one writer at a time)
 * and read without any lock by px_rtp_get_stats.
 */

/* Datagrams read by one recvmmsg call. */
#define RECV_BATCH 32
/* Larger datagrams are truncated by the kernel and dropped as not RTP. */
#define PACKET_MAX      2048
#define EPOLL_BATCH     64
#define SOCKET_RCVBUF   (256 * 1024)
#define RTP_HEADER_SIZE 12
#define RTP_VERSION     2
/* A sequence jump forward by more than this, or back by more than
 * MAX_MISORDER, is a restart of the source, not loss or reordering
 * (the limits of RFC 3550, appendix A.1). */
#define MAX_DROPOUT  3000
#define MAX_MISORDER 100
/* Received sequence numbers remembered behind the highest, so that a late
 * packet takes back its loss and a duplicate is recognised. */
#define RECEIVED_WINDOW 64
/* One packet's worth of timestamp until a source shows its own: 20 ms at
 * 8 kHz. Steps above MAX_TS_STEP (200 ms at 90 kHz) are not believed. */
#define DEFAULT_TS_STEP 160
#define MAX_TS_STEP     18000
#define MAX_WORKERS     256
#define TIMER_GRID_MS   10
/* In an epoll handle's slot half: the event is for the session's RTCP socket. */
#define RTCP_HANDLE_BIT 0x80000000u
#define WAKEUP_HANDLE   UINT64_MAX
#define TIMER_HANDLE    (UINT64_MAX - 1)
/* The packet clock of sessions with a source (stream.c): each tick sends
 * what is due, so any packet duration that is a multiple of it keeps time. */
#define TICK_NS 10000000L
#define NO_SLOT         UINT32_MAX
/* Bound RTP sockets of ended sessions kept for reuse (see "idle sockets"). */
#define IDLE_SOCKETS_MAX 4096
#define IDLE_REUSE_MS    1000
#define IDLE_NEAR_SCAN   8

struct media_worker;

/* What this session receives from its far end, for rx_lost. */
struct received_stream {
	bool started;
	uint32_t ssrc;
	uint16_t highest_seq;
	uint64_t received; /* bit k: highest_seq - k has arrived */
};

/* How the relayed source is mapped onto the stream this session sends. */
struct sent_stream {
	uint32_t ssrc;     /* ours, random, for the life of the session */
	uint16_t last_seq; /* highest sequence number sent (random at first) */
	uint32_t last_ts;  /* its timestamp */
	uint32_t ts_step;  /* timestamp advance of one packet of the source */
	bool have_source;  /* false: the next packet starts a new source */
	uint32_t source_ssrc;
	uint16_t source_seq; /* highest sequence number relayed from the source */
	uint32_t source_ts;  /* its timestamp */
	uint16_t seq_offset; /* sent = received + offset, modulo 2^16 */
	uint32_t ts_offset;  /* sent = received + offset, modulo 2^32 */
	long long sent_ms;   /* when last_ts went out; 0: never */
	/* Events relayed into a transcoded stream: the source's timestamp of
	 * the current one, and the one it was given. */
	bool event_mapped;
	uint32_t event_src_ts, event_out_ts;
	uint32_t event_src_base; /* source units of the event's earlier segments */
	uint16_t event_src_dur;  /* the source's latest duration in its current segment */
};

/* Decoding what this leg receives for a transcoded bridge. */
struct transcoder {
	px_trans *trans; /* this leg's format -> the peer's; NULL: relay */
	bool mark_next;  /* the next packet sent starts a new stream */
	/* What this leg receives waits here and is decoded on the worker's
	 * timer, one frame per frame duration (see "jitter buffer"). */
	px_jb *jb;
	bool ticking;
	long long next_tick;
};

/* RFC 4733 events: what is received (told to the handler) and what the
 * worker sends on the session's own timer (see "DTMF" below). */
#define DTMF_QUEUE 16
struct dtmf_state {
	px_rtp_dtmf_fn fn;
	void *arg;
	struct px_rfc4733_rx rx;
	bool rx_begun;        /* the handler was told the current digit began */
	uint32_t rx_duration; /* the latest duration seen for it, all segments counted */
	long long rx_last_ms; /* when its last packet came */
	struct {
		char digit;
		unsigned ms;
		bool tone; /* inband, not an event */
	} queue[DTMF_QUEUE];
	unsigned qhead, qlen;
	bool sending; /* the digit at qhead is on the wire */
	uint32_t ts;  /* its timestamp */
	long long start_ms, next_ms;
	unsigned ends_sent;
	bool tone_playing; /* audio relayed to the far end waits meanwhile */
	/* Inband: the detector and generator, and who is told of the digits. */
	px_inband *inband;
	px_rtp_dtmf_fn inband_fn;
	void *inband_arg;
};

struct session_stats {
	atomic_uint_least64_t rx_packets, rx_bytes, tx_packets, tx_bytes, rx_lost, rx_dropped;
	atomic_uint_least64_t rx_bad, transcoded;
	atomic_uint_least32_t rx_ssrc, tx_ssrc;
	atomic_uint_least64_t rtcp_rx, rtcp_tx;
	atomic_uint_least32_t jitter_ms, remote_lost, remote_fraction, remote_jitter_ms, rtt_ms;
	atomic_bool remote_reported;
};

/* RTCP of one session (see "RTCP" below): its socket and far end, when the
 * next report goes, and RFC 3550's receiver statistics of what it gets. */
struct rtcp_state {
	int fd;   /* on port + 1; -1: none (then only with rtcp-mux) */
	bool mux; /* rtcp-mux: on the RTP port */
	bool latched;
	struct sockaddr_storage remote;
	socklen_t remote_len; /* 0: the RTP far end's port + 1 */
	long long next_ms;
	uint64_t tx_at_last; /* tx_packets at the last report: SR or RR */
	bool started;
	uint32_t ssrc;
	uint16_t base_seq, max_seq;
	uint32_t cycles, received, expected_prior, received_prior;
	bool have_transit;
	int32_t last_transit;
	uint32_t jitter16; /* interarrival jitter in clock units, times 16 */
	uint32_t lsr;      /* the far end's last SR (middle of its NTP) */
	long long lsr_ms;  /* when it came */
};

struct px_rtp {
	/* Fixed once the session is created. */
	int fd;
	uint16_t port;
	struct sockaddr_storage local;
	/* Changes only with the locks of both the old and the new worker held. */
	_Atomic(struct media_worker *) worker;

	/* Guarded by worker->lock. */
	uint32_t slot;
	px_rtp *peer;
	struct sockaddr_storage remote;
	socklen_t remote_len; /* 0: no far end known, nothing is sent */
	bool symmetric;
	bool latched; /* symmetric: the far end was taken from a packet already */
	bool send;
	struct received_stream rx;
	struct sent_stream tx;
	struct px_rtp_codec codec;
	struct transcoder xc;
	struct dtmf_state dtmf;
	/* Terminated media (stream.c): while set, nothing is relayed to or
	 * from the peer. ticking: on the worker's packet clock list. */
	struct px_term *term;
	bool ticking;
	px_rtp *tick_prev, *tick_next;
	struct rtcp_state rtcp;

	struct session_stats stats;
};

/* A slot holds a socket pair registered with the worker's epoll set: a
 * session's, or an idle one's (session NULL) whose packets the worker reads
 * and drops. fd -1: the slot is free. */
struct worker_slot {
	px_rtp *session;
	int fd, rtcp_fd;
	uint32_t generation;
	uint32_t next_free;
};

struct media_worker {
	pthread_mutex_t lock;
	unsigned index;
	int epoll_fd;
	int wakeup_fd;
	int timer_fd; /* the packet clock, armed while ticking is not empty */
	pthread_t thread;
	bool thread_started;
	atomic_bool stopping;
	atomic_uint load; /* sessions served, for placing new ones */

	/* Guarded by lock. */
	long long now_ms;   /* monotonic, at the current wake-up */
	long long timer_ms; /* when some session has timed work to do; 0: none */
	struct worker_slot *slots;
	uint32_t nslots;
	uint32_t free_slot;
	px_rtp *ticking; /* sessions with a source */

	/* Scratch of the worker thread, used under lock. */
	struct mmsghdr recv_msgs[RECV_BATCH];
	struct iovec recv_iov[RECV_BATCH];
	struct sockaddr_storage recv_from[RECV_BATCH];
	struct mmsghdr send_msgs[RECV_BATCH];
	struct iovec send_iov[RECV_BATCH];
	unsigned char buffers[RECV_BATCH][PACKET_MAX];
	/* Packets made by transcoding, sent in the same batch. */
	unsigned char out_buffers[RECV_BATCH][PACKET_MAX];
};

struct rtp_settings {
	long long rtpstart;
	long long rtpend;
	long long workers;
	long long rtcpinterval;
};

static const struct px_config_option rtp_options[] = {
	{"rtpstart", PX_CFG_INT, "10000", 1024, 65535, NULL,
	 offsetof(struct rtp_settings, rtpstart), "first UDP port for RTP (even)"},
	{"rtpend", PX_CFG_INT, "20000", 1024, 65535, NULL, offsetof(struct rtp_settings, rtpend),
	 "last UDP port for RTP and RTCP"},
	{"workers", PX_CFG_INT, "0", 0, MAX_WORKERS, NULL, offsetof(struct rtp_settings, workers),
	 "media worker threads; 0: one per core"},
	{"rtcpinterval", PX_CFG_INT, "5000", 0, 60000, NULL,
	 offsetof(struct rtp_settings, rtcpinterval),
	 "ms between RTCP reports of a session (randomised by half); 0: none"},
};

/* Set by px_media_init and cleared by px_media_shutdown, which are not
 * called concurrently with anything else of the engine. */
static bool running;
static struct media_worker *workers;
static unsigned nworkers;
static atomic_uint worker_cursor;
static atomic_uint session_count;
static unsigned rtcp_interval_ms; /* set by px_media_init */

/* The port range, in pairs: pair i is RTP port port_start + 2i and RTCP
 * port port_start + 2i + 1. */
static pthread_mutex_t port_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned port_start, port_end;
static size_t npairs;
static bool *pair_taken;   /* guarded by port_lock */
static size_t pair_cursor; /* guarded by port_lock */

/* Sockets of ended sessions, still bound to their port, oldest first. */
struct idle_socket {
	int fd;
	int rtcp_fd; /* its RTCP socket on port + 1, or -1 */
	uint16_t port;
	struct sockaddr_storage local;
	long long released_ms;
	/* Still registered with this worker's epoll set, in this slot. */
	struct media_worker *worker;
	uint32_t slot;
};
static struct idle_socket *idle_ring; /* IDLE_SOCKETS_MAX; guarded by port_lock */
static size_t idle_head, idle_len;    /* guarded by port_lock */

/* ------------------------------------------------------------ small helpers */

static uint16_t get_be16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put_be16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

/* Only ever written under the worker lock, so a plain load and store keep
 * the count exact while readers on other threads see whole values. */
static void counter_add(atomic_uint_least64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static void counter_sub(atomic_uint_least64_t *c, uint64_t n)
{
	atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) - n,
			      memory_order_relaxed);
}

/* SSRC, first sequence number and timestamp must be unpredictable
 * (RFC 3550, 5.1), but need not be cryptographically strong. */
/* SSRCs and initial sequence numbers and timestamps only need to be
 * unpredictable and unlikely to collide (RFC 3550 section 8), not secret:
 * a per-thread generator (splitmix64) seeded once from getrandom() costs
 * no system call per session, where getrandom() per value cost three. */
static uint32_t random_u32(void)
{
	static _Thread_local uint64_t state;
	static _Thread_local bool seeded;
	uint64_t z;

	if (!seeded) {
		if (getrandom(&state, sizeof(state), GRND_NONBLOCK) != (ssize_t)sizeof(state)) {
			struct timespec now;
			clock_gettime(CLOCK_MONOTONIC, &now);
			state = (uint64_t)now.tv_nsec * 0x9e3779b97f4a7c15ull ^
				(uint64_t)now.tv_sec ^ (uint64_t)(uintptr_t)&state;
		}
		seeded = true;
	}
	z = (state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return (uint32_t)((z ^ (z >> 31)) >> 32);
}

static socklen_t sockaddr_size(int family)
{
	if (family == AF_INET)
		return sizeof(struct sockaddr_in);
	if (family == AF_INET6)
		return sizeof(struct sockaddr_in6);
	return 0;
}

static bool same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->ss_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
		return x->sin6_port == y->sin6_port &&
		       !memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr));
	}
	return false;
}

/* "1.2.3.4:5004" or "[::1]:5004", for log lines. */
static const char *format_address(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN] = "?";

	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)ss;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		snprintf(buf, size, "%s:%u", host, ntohs(sin->sin_port));
	} else if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		snprintf(buf, size, "[%s]:%u", host, ntohs(sin6->sin6_port));
	} else {
		snprintf(buf, size, "(none)");
	}
	return buf;
}

static void set_port(struct sockaddr_storage *ss, uint16_t port)
{
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(port);
}

/* ------------------------------------------------------------ configuration */

/* "file:line: key: message" at the variable that made the range wrong. */
static int blame_setting(const px_config_section *general, const char *key, px_err *err,
			 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int blame_setting(const px_config_section *general, const char *key, px_err *err,
			 const char *fmt, ...)
{
	const px_config_var *v = general ? px_config_var_find(general, key) : NULL;
	char why[PX_ERR_MAX];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	if (v)
		return px_err_set(err, "%s:%d: %s: %s", v->file, v->line, v->name, why);
	return px_err_set(err, "rtp.conf: %s: %s", key, why);
}

static int read_settings(const px_config *rtp_conf, struct rtp_settings *set, px_err *err)
{
	const px_config_section *general = rtp_conf ? px_config_find(rtp_conf, "general") : NULL;
	const size_t nopts = sizeof(rtp_options) / sizeof(rtp_options[0]);

	if (px_config_apply(general, rtp_options, nopts, set, err) < 0)
		return -1;
	if (set->rtpstart % 2)
		return blame_setting(
			general, "rtpstart", err,
			"%lld is odd; RTP takes an even port and RTCP the one above it",
			set->rtpstart);
	if (set->rtpend <= set->rtpstart) {
		/* The defaults are consistent, so the one given is at fault. */
		if (general && px_config_var_find(general, "rtpend"))
			return blame_setting(general, "rtpend", err,
					     "%lld is not above rtpstart %lld", set->rtpend,
					     set->rtpstart);
		return blame_setting(general, "rtpstart", err, "%lld is not below rtpend %lld",
				     set->rtpstart, set->rtpend);
	}
	return 0;
}

/* ------------------------------------------------------------ ports */

/* Bind fd to a free even port of the range at local's address. Ports that
 * another process holds are skipped; the cursor goes round the range so that
 * a port just released is not handed out again at once, while late packets
 * of its old call may still arrive. */
static int bind_port_from_range(int fd, const struct sockaddr_storage *local, uint16_t *port,
				px_err *err)
{
	struct sockaddr_storage addr = *local;
	socklen_t len = sockaddr_size(local->ss_family);
	int rc = px_err_set(err, "no free RTP port in %u-%u", port_start, port_end);

	pthread_mutex_lock(&port_lock);
	for (size_t tries = 0; tries < npairs; tries++) {
		size_t pair = pair_cursor;

		pair_cursor = (pair_cursor + 1) % npairs;
		if (pair_taken[pair])
			continue;
		uint16_t candidate = (uint16_t)(port_start + 2 * pair);
		set_port(&addr, candidate);
		if (bind(fd, (struct sockaddr *)&addr, len) == 0) {
			pair_taken[pair] = true;
			*port = candidate;
			rc = 0;
			break;
		}
		if (errno != EADDRINUSE && errno != EACCES) {
			char where[INET6_ADDRSTRLEN + 16];
			rc = px_err_set(err, "cannot bind RTP port %s: %s",
					format_address(&addr, where, sizeof(where)),
					strerror(errno));
			break;
		}
	}
	pthread_mutex_unlock(&port_lock);
	return rc;
}

static void release_port_locked(uint16_t port);

static void release_port(uint16_t port)
{
	pthread_mutex_lock(&port_lock);
	release_port_locked(port);
	pthread_mutex_unlock(&port_lock);
}

/* ------------------------------------------------------------ idle sockets
 *
 * Opening an RTP socket costs five system calls (socket, two setsockopt,
 * bind, getsockname) and closing it one more, all on the thread that sets
 * up or ends the call. An ended session's socket therefore stays bound and
 * waits here, its port still taken, until a new session on the same local
 * address takes it. It also stays in its worker's epoll set, in its slot,
 * and the worker reads and drops what reaches it, so a new session takes it
 * back with no system call. Only a socket idle for IDLE_REUSE_MS is handed
 * out: the late packets of the old call must have stopped, or been
 * dropped, before a new call latches onto a far end. A session asked for
 * near another (the second leg of a call) prefers an idle socket served by
 * that session's worker, looking IDLE_NEAR_SCAN entries past the oldest:
 * the bridge of the two then moves neither. */

static long long monotonic_ms(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
		      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
}

static void release_port_locked(uint16_t port)
{
	if (pair_taken && port >= port_start)
		pair_taken[(port - port_start) / 2] = false;
}

static void worker_release(struct media_worker *w, uint32_t slot);

/* Close an idle socket taken off the FIFO: out of its worker's epoll set
 * first, then its port back to the range. port_lock not held. */
static void close_idle(struct idle_socket *s)
{
	pthread_mutex_lock(&s->worker->lock);
	worker_release(s->worker, s->slot);
	pthread_mutex_unlock(&s->worker->lock);
	close(s->fd);
	if (s->rtcp_fd >= 0)
		close(s->rtcp_fd);
	release_port(s->port);
}

/* Keep fd (and its RTCP socket rtcp_fd, or -1), parked in slot of w, for
 * reuse; false when the FIFO is full (the caller releases and closes
 * them). */
static bool idle_put(int fd, int rtcp_fd, uint16_t port, const struct sockaddr_storage *local,
		     struct media_worker *w, uint32_t slot)
{
	bool kept = false;

	pthread_mutex_lock(&port_lock);
	if (idle_ring && idle_len < IDLE_SOCKETS_MAX) {
		struct idle_socket *s = &idle_ring[(idle_head + idle_len) % IDLE_SOCKETS_MAX];
		s->fd = fd;
		s->rtcp_fd = rtcp_fd;
		s->port = port;
		s->local = *local;
		s->released_ms = monotonic_ms();
		s->worker = w;
		s->slot = slot;
		idle_len++;
		kept = true;
	}
	pthread_mutex_unlock(&port_lock);
	return kept;
}

/* Among the rested idle sockets at the head of the FIFO, the first one
 * bound to local's address and served by prefer is swapped to the head.
 * The order of the others hardly matters: every entry up to that one has
 * rested, so the FIFO's rested entries still come before the others.
 * port_lock held. */
static void idle_prefer(const struct sockaddr_storage *local, const struct media_worker *prefer,
			long long now)
{
	for (size_t i = 0; i < idle_len && i < IDLE_NEAR_SCAN; i++) {
		struct idle_socket *s = &idle_ring[(idle_head + i) % IDLE_SOCKETS_MAX];
		if (now - s->released_ms < IDLE_REUSE_MS)
			return;
		if (s->worker == prefer && same_host(&s->local, local)) {
			struct idle_socket first = idle_ring[idle_head];
			idle_ring[idle_head] = *s;
			*s = first;
			return;
		}
	}
}

/* The oldest idle socket bound to local's address (one served by prefer,
 * when prefer is not NULL and one is near the head), if it has rested long
 * enough; false otherwise. An older one on another address is closed, so
 * that a changed bind address does not pin sockets forever. Its worker has
 * been reading and dropping what reached it while idle. */
static bool idle_take(const struct sockaddr_storage *local, const struct media_worker *prefer,
		      struct idle_socket *out)
{
	long long now = monotonic_ms();

	pthread_mutex_lock(&port_lock);
	if (prefer)
		idle_prefer(local, prefer, now);
	while (idle_len > 0) {
		struct idle_socket s = idle_ring[idle_head];
		if (now - s.released_ms < IDLE_REUSE_MS)
			break;
		idle_head = (idle_head + 1) % IDLE_SOCKETS_MAX;
		idle_len--;
		if (same_host(&s.local, local)) {
			pthread_mutex_unlock(&port_lock);
			*out = s;
			return true;
		}
		pthread_mutex_unlock(&port_lock);
		close_idle(&s);
		pthread_mutex_lock(&port_lock);
	}
	pthread_mutex_unlock(&port_lock);
	return false;
}

/* Give up to n idle sockets' ports back to the range, oldest first: the
 * range is full and a new session needs a port more than reuse does.
 * Returns how many were closed. */
static size_t idle_evict(size_t n)
{
	size_t closed = 0;

	pthread_mutex_lock(&port_lock);
	while (idle_len > 0 && closed < n) {
		struct idle_socket s = idle_ring[idle_head];
		idle_head = (idle_head + 1) % IDLE_SOCKETS_MAX;
		idle_len--;
		pthread_mutex_unlock(&port_lock);
		close_idle(&s);
		closed++;
		pthread_mutex_lock(&port_lock);
	}
	pthread_mutex_unlock(&port_lock);
	return closed;
}

/* Close every idle socket; port_lock held, the workers stopped and their
 * epoll sets closed. */
static void idle_close_all(void)
{
	while (idle_len > 0) {
		struct idle_socket *s = &idle_ring[idle_head];
		close(s->fd);
		if (s->rtcp_fd >= 0)
			close(s->rtcp_fd);
		release_port_locked(s->port);
		idle_head = (idle_head + 1) % IDLE_SOCKETS_MAX;
		idle_len--;
	}
	free(idle_ring);
	idle_ring = NULL;
	idle_head = 0;
}

/* ------------------------------------------------------------ worker table */

static int slot_grow(struct media_worker *w)
{
	uint32_t n = w->nslots ? w->nslots * 2 : 16;
	struct worker_slot *slots;

	if (n >= NO_SLOT || !(slots = realloc(w->slots, n * sizeof(*slots))))
		return -1;
	for (uint32_t i = w->nslots; i < n; i++) {
		slots[i].session = NULL;
		slots[i].fd = slots[i].rtcp_fd = -1;
		slots[i].generation = 0;
		slots[i].next_free = i + 1 < n ? i + 1 : w->free_slot;
	}
	w->free_slot = w->nslots;
	w->slots = slots;
	w->nslots = n;
	return 0;
}

static uint64_t slot_handle(const struct media_worker *w, uint32_t slot)
{
	return (uint64_t)w->slots[slot].generation << 32 | slot;
}

/* Put r in w's table and w's epoll set; w->lock held. Leaves r->worker
 * to the caller. */
static int worker_attach(struct media_worker *w, px_rtp *r)
{
	struct epoll_event ev = {.events = EPOLLIN};
	uint32_t slot;

	if (w->free_slot == NO_SLOT && slot_grow(w) < 0) {
		errno = ENOMEM;
		return -1;
	}
	slot = w->free_slot;
	ev.data.u64 = slot_handle(w, slot);
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, r->fd, &ev) < 0)
		return -1;
	if (r->rtcp.fd >= 0) {
		struct epoll_event rev = {.events = EPOLLIN,
					  .data.u64 = slot_handle(w, slot) | RTCP_HANDLE_BIT};
		if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, r->rtcp.fd, &rev) < 0) {
			int why = errno;
			epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, r->fd, NULL);
			errno = why;
			return -1;
		}
	}
	w->free_slot = w->slots[slot].next_free;
	w->slots[slot].session = r;
	w->slots[slot].fd = r->fd;
	w->slots[slot].rtcp_fd = r->rtcp.fd;
	r->slot = slot;
	atomic_fetch_add(&w->load, 1);
	return 0;
}

/* Give r the idle socket parked in slot of w (r->fd is that socket):
 * no system call unless r has an RTCP socket the idle one did not. w->lock
 * held. */
static void worker_resume(struct media_worker *w, uint32_t slot, px_rtp *r)
{
	struct worker_slot *s = &w->slots[slot];

	if (r->rtcp.fd >= 0 && s->rtcp_fd < 0) {
		struct epoll_event rev = {.events = EPOLLIN,
					  .data.u64 = slot_handle(w, slot) | RTCP_HANDLE_BIT};
		if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, r->rtcp.fd, &rev) < 0) {
			px_log_warning("RTP port %u: no RTCP, cannot register with media/%u: %s",
				       r->port, w->index, strerror(errno));
			close(r->rtcp.fd);
			r->rtcp.fd = -1;
		} else {
			s->rtcp_fd = r->rtcp.fd;
		}
	}
	s->session = r;
	r->slot = slot;
	atomic_fetch_add(&w->load, 1);
}

/* The session in slot has ended: its sockets stay in w's epoll set, idle,
 * and the worker drops what reaches them. w->lock held. */
static void worker_park(struct media_worker *w, uint32_t slot)
{
	w->slots[slot].session = NULL;
	atomic_fetch_sub(&w->load, 1);
}

/* Take slot's sockets out of w's epoll set and free the slot; w->lock
 * held. Events for it that epoll has already handed out find a new
 * generation. */
static void worker_release(struct media_worker *w, uint32_t slot)
{
	struct worker_slot *s = &w->slots[slot];

	epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, s->fd, NULL);
	if (s->rtcp_fd >= 0)
		epoll_ctl(w->epoll_fd, EPOLL_CTL_DEL, s->rtcp_fd, NULL);
	if (s->session)
		atomic_fetch_sub(&w->load, 1);
	s->session = NULL;
	s->fd = s->rtcp_fd = -1;
	s->generation++;
	s->next_free = w->free_slot;
	w->free_slot = slot;
}

static struct worker_slot *slot_lookup(const struct media_worker *w, uint64_t handle)
{
	uint32_t slot = (uint32_t)handle & ~RTCP_HANDLE_BIT;

	if (slot >= w->nslots || w->slots[slot].generation != (uint32_t)(handle >> 32) ||
	    w->slots[slot].fd < 0)
		return NULL;
	return &w->slots[slot];
}

/* The packet clock runs only while some session of w has a source. */
static void arm_clock(struct media_worker *w, bool on)
{
	struct itimerspec its = {{0, 0}, {0, 0}};

	if (on) {
		its.it_interval.tv_nsec = TICK_NS;
		its.it_value.tv_nsec = TICK_NS;
	}
	if (timerfd_settime(w->timer_fd, 0, &its, NULL) < 0)
		px_log_error("media/%u: timerfd_settime: %s", w->index, strerror(errno));
}

/* Put r on w's packet clock, or take it off; w->lock held. */
static void tick_link(struct media_worker *w, px_rtp *r)
{
	r->tick_prev = NULL;
	r->tick_next = w->ticking;
	if (w->ticking)
		w->ticking->tick_prev = r;
	else
		arm_clock(w, true);
	w->ticking = r;
}

static void tick_unlink(struct media_worker *w, px_rtp *r)
{
	if (r->tick_prev)
		r->tick_prev->tick_next = r->tick_next;
	else
		w->ticking = r->tick_next;
	if (r->tick_next)
		r->tick_next->tick_prev = r->tick_prev;
	r->tick_prev = r->tick_next = NULL;
	if (!w->ticking)
		arm_clock(w, false);
}

/* Lock the worker that serves r, which a concurrent bridge may be moving. */
static struct media_worker *lock_session(px_rtp *r)
{
	for (;;) {
		struct media_worker *w = atomic_load(&r->worker);

		pthread_mutex_lock(&w->lock);
		if (atomic_load(&r->worker) == w)
			return w;
		pthread_mutex_unlock(&w->lock);
	}
}

/* Lock the workers of a and b, lower index first so that two bridges
 * never wait for each other. */
static void lock_pair(px_rtp *a, px_rtp *b, struct media_worker **wa, struct media_worker **wb)
{
	for (;;) {
		struct media_worker *x = atomic_load(&a->worker);
		struct media_worker *y = atomic_load(&b->worker);
		struct media_worker *first = x->index <= y->index ? x : y;
		struct media_worker *second = first == x ? y : x;

		pthread_mutex_lock(&first->lock);
		if (second != first)
			pthread_mutex_lock(&second->lock);
		if (atomic_load(&a->worker) == x && atomic_load(&b->worker) == y) {
			*wa = x;
			*wb = y;
			return;
		}
		if (second != first)
			pthread_mutex_unlock(&second->lock);
		pthread_mutex_unlock(&first->lock);
	}
}

static void unlock_pair(struct media_worker *wa, struct media_worker *wb)
{
	if (wb != wa)
		pthread_mutex_unlock(&wb->lock);
	pthread_mutex_unlock(&wa->lock);
}

/* Least loaded worker; ties go round, so that an idle engine spreads
 * sessions over all workers. */
static struct media_worker *pick_worker(void)
{
	unsigned start = atomic_fetch_add(&worker_cursor, 1) % nworkers;
	struct media_worker *best = &workers[start];

	for (unsigned i = 1; i < nworkers; i++) {
		struct media_worker *w = &workers[(start + i) % nworkers];
		if (atomic_load(&w->load) < atomic_load(&best->load))
			best = w;
	}
	return best;
}

/* ------------------------------------------------------------ timers */

static void dtmf_received(struct media_worker *w, px_rtp *in, const unsigned char *p, size_t offset,
			  size_t plen);
static long long dtmf_timer(struct media_worker *w, px_rtp *r);
static long long jb_timer(struct media_worker *w, px_rtp *r);
static bool session_timers_pending(const px_rtp *r);
static void inband_received(px_rtp *in, const unsigned char *payload, size_t len);
static long long rtcp_timer(struct media_worker *w, px_rtp *r);
static void rtcp_note(struct media_worker *w, px_rtp *r, const unsigned char *p, bool audio);
static bool rtcp_received(struct media_worker *w, px_rtp *r, const unsigned char *p, size_t len,
			  const struct sockaddr_storage *from);
static void rtcp_read(struct media_worker *w, px_rtp *r);
static void rtcp_start(struct media_worker *w, px_rtp *r);
static int open_rtcp_socket(px_rtp *r);

/* Make w run its timers by due (monotonic ms); w->lock held. A caller on
 * another thread wakes the worker too, so that it waits no longer. */
static void worker_timer_at(struct media_worker *w, long long due)
{
	/* On a grid, so that many sessions' timers share a wake-up and a walk
	 * of the table (the jitter buffers of a thousand transcoded legs
	 * tick every 20 ms each). */
	if (due)
		due += (TIMER_GRID_MS - due % TIMER_GRID_MS) % TIMER_GRID_MS;
	if (due && (!w->timer_ms || due < w->timer_ms))
		w->timer_ms = due;
}

static void worker_kick(struct media_worker *w)
{
	uint64_t one = 1;

	if (write(w->wakeup_fd, &one, sizeof(one)) < 0)
		px_log_error("media/%u: cannot wake the worker: %s", w->index, strerror(errno));
}

/* The timed work of r (DTMF sent and timed out); the next time it has
 * some, 0 for none. */
static long long earliest_due(long long a, long long b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

static long long session_timers(struct media_worker *w, px_rtp *r)
{
	return earliest_due(earliest_due(dtmf_timer(w, r), jb_timer(w, r)), rtcp_timer(w, r));
}

/* Run what is due on every session of w; w->lock held. Timers are few
 * (digits being sent, transcoded legs' jitter buffers) and on a 10 ms
 * grid, so a walk of the table is cheaper than a heap kept up to date on
 * every change. */
static void worker_timers(struct media_worker *w)
{
	long long next = 0;

	w->timer_ms = 0;
	for (uint32_t i = 0; i < w->nslots; i++) {
		px_rtp *r = w->slots[i].session;
		long long due = r ? session_timers(w, r) : 0;

		if (due && (!next || due < next))
			next = due;
	}
	worker_timer_at(w, next);
}

/* ------------------------------------------------------------ the relay */

/* Whether a datagram is an RTP packet we may rewrite: version 2, and CSRC
 * list, header extension and padding all within it. RTCP multiplexed on the
 * RTP port (second byte 192-223, RFC 5761) is not, and would be corrupted. */
static bool rtp_payload(const unsigned char *p, size_t len, size_t *offset, size_t *plen)
{
	size_t header, padding = 0;

	if (len < RTP_HEADER_SIZE || p[0] >> 6 != RTP_VERSION)
		return false;
	if (p[1] >= 192 && p[1] <= 223)
		return false;
	header = RTP_HEADER_SIZE + 4 * (size_t)(p[0] & 0x0f);
	if (header > len)
		return false;
	if (p[0] & 0x10) {
		if (header + 4 > len)
			return false;
		header += 4 + 4 * (size_t)get_be16(p + header + 2);
		if (header > len)
			return false;
	}
	if (p[0] & 0x20) {
		padding = p[len - 1];
		if (padding == 0 || header + padding > len)
			return false;
	}
	*offset = header;
	*plen = len - header - padding;
	return true;
}

/* Count the gaps in what r receives. A late packet that fills a gap takes
 * its loss back, a duplicate changes nothing, and a large jump either way is
 * a restarted source, counted as no loss. */
static void note_received(px_rtp *r, uint32_t ssrc, uint16_t seq)
{
	struct received_stream *rx = &r->rx;
	int delta;

	atomic_store_explicit(&r->stats.rx_ssrc, ssrc, memory_order_relaxed);
	if (!rx->started || rx->ssrc != ssrc) {
		rx->started = true;
		rx->ssrc = ssrc;
		rx->highest_seq = seq;
		rx->received = 1;
		return;
	}
	delta = (int16_t)(uint16_t)(seq - rx->highest_seq);
	if (delta > 0 && delta < MAX_DROPOUT) {
		counter_add(&r->stats.rx_lost, (uint64_t)(delta - 1));
		rx->received = delta < RECEIVED_WINDOW ? rx->received << delta | 1 : 1;
		rx->highest_seq = seq;
	} else if (delta < 0 && -delta < RECEIVED_WINDOW) {
		uint64_t bit = (uint64_t)1 << -delta;
		if (!(rx->received & bit)) {
			rx->received |= bit;
			if (atomic_load_explicit(&r->stats.rx_lost, memory_order_relaxed) > 0)
				counter_sub(&r->stats.rx_lost, 1);
		}
	} else if (delta >= MAX_DROPOUT || delta < -MAX_MISORDER) {
		rx->highest_seq = seq;
		rx->received = 1;
	}
	/* delta == 0: a duplicate; a little older than the window: too late
	 * to tell whether it was counted as lost. */
}

/* Symmetric RTP: the far end is where its first packet after set_remote
 * came from (behind NAT that is not what its SDP said); then it stays. */
static void latch_remote(px_rtp *r, const struct sockaddr_storage *from)
{
	char was[INET6_ADDRSTRLEN + 16], now[INET6_ADDRSTRLEN + 16];

	r->latched = true;
	if (r->remote_len && same_address(&r->remote, from))
		return;
	px_debug(1, "RTP port %u: symmetric: far end %s is at %s", r->port,
		 format_address(&r->remote, was, sizeof(was)),
		 format_address(from, now, sizeof(now)));
	r->remote = *from;
	r->remote_len = sockaddr_size(from->ss_family);
}

/* Rewrite a packet of the source relayed to out's far end so that it
 * continues out's stream: our SSRC; sequence numbers and timestamps shifted
 * by offsets fixed when the source started, so gaps and reordering pass
 * through; a new source (another SSRC, a restart, a new bridge) continues
 * one packet after the last one sent, marked. */
static void rewrite_for(px_rtp *out, unsigned char *p)
{
	struct sent_stream *tx = &out->tx;
	uint32_t ssrc = get_be32(p + 8);
	uint16_t seq = get_be16(p + 2);
	uint32_t ts = get_be32(p + 4);
	bool marker = p[1] & 0x80;
	int delta = 0;
	bool restart = !tx->have_source || tx->source_ssrc != ssrc;

	if (!restart) {
		delta = (int16_t)(uint16_t)(seq - tx->source_seq);
		restart = delta > MAX_DROPOUT || delta < -MAX_MISORDER;
	}
	if (restart) {
		tx->have_source = true;
		tx->source_ssrc = ssrc;
		tx->seq_offset = (uint16_t)(tx->last_seq + 1 - seq);
		tx->ts_offset = tx->last_ts + tx->ts_step - ts;
		tx->source_seq = seq;
		tx->source_ts = ts;
		p[1] |= 0x80;
		delta = 1;
	} else if (delta > 0) {
		uint32_t step = ts - tx->source_ts;
		/* A marked packet starts a talkspurt after silence: its
		 * timestamp jump is not the packet size. */
		if (delta == 1 && !marker && step > 0 && step <= MAX_TS_STEP)
			tx->ts_step = step;
		tx->source_seq = seq;
		tx->source_ts = ts;
	}
	uint16_t out_seq = (uint16_t)(seq + tx->seq_offset);
	uint32_t out_ts = ts + tx->ts_offset;
	if (delta > 0) {
		tx->last_seq = out_seq;
		tx->last_ts = out_ts;
	}
	put_be16(p + 2, out_seq);
	put_be32(p + 4, out_ts);
	put_be32(p + 8, tx->ssrc);
}

/* Send n prepared messages from out's socket; returns how many went, and
 * adds their bytes. A destination refusing one packet does not stop the
 * others; a full socket buffer does. */
static unsigned send_prepared(px_rtp *out, struct mmsghdr *msgs, unsigned n, uint64_t *bytes)
{
	unsigned done = 0, sent = 0;

	while (done < n) {
		int rc = sendmmsg(out->fd, msgs + done, n - done, MSG_DONTWAIT);

		if (rc > 0) {
			for (unsigned i = done; i < done + (unsigned)rc; i++)
				*bytes += msgs[i].msg_len;
			sent += (unsigned)rc;
			done += (unsigned)rc;
		} else if (rc == 0 || errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS) {
			break;
		} else if (errno != EINTR) {
			done++;
		}
	}
	return sent;
}

static void queue_send(struct media_worker *w, px_rtp *out, unsigned k, unsigned char *p,
		       size_t len)
{
	w->send_iov[k].iov_base = p;
	w->send_iov[k].iov_len = len;
	w->send_msgs[k].msg_hdr = (struct msghdr){
		.msg_name = &out->remote,
		.msg_namelen = out->remote_len,
		.msg_iov = &w->send_iov[k],
		.msg_iovlen = 1,
	};
}

static void flush_sends(struct media_worker *w, px_rtp *out, unsigned *nsend, unsigned *sent,
			uint64_t *tx_bytes, uint64_t *dropped)
{
	unsigned done = send_prepared(out, w->send_msgs, *nsend, tx_bytes);

	*dropped += *nsend - done;
	*sent += done;
	*nsend = 0;
}

/* An RFC 4733 event relayed into a transcoded stream: it takes the
 * stream's SSRC and next sequence number, and as timestamp where the stream
 * is when the event begins (an event's timestamp is where it began; its
 * duration field counts from there). The packets of one event share it. */
static uint32_t stream_ts_now(const px_rtp *r, long long now);

static unsigned event_clock(const px_rtp *r)
{
	return r->codec.dtmf_clock ? r->codec.dtmf_clock : 8000;
}

/* The duration is carried over into out's event clock (8000 -> 48000
 * between a PCMU and an Opus leg), a long event in out's own segments
 * (RFC 4733 2.5.1.3); the source's segments are followed by their
 * timestamps. */
static void rewrite_event_for(struct media_worker *w, px_rtp *in, px_rtp *out, unsigned char *p,
			      size_t offset, size_t plen)
{
	struct sent_stream *tx = &out->tx;
	uint32_t ts = get_be32(p + 4), off;
	uint16_t dur = plen >= 4 ? get_be16(p + offset + 2) : 0;

	if (tx->event_mapped && ts == tx->event_src_ts + PX_RFC4733_SEGMENT &&
	    tx->event_src_dur > PX_RFC4733_SEGMENT / 2) {
		/* The source's next segment of the same event. */
		tx->event_src_base += PX_RFC4733_SEGMENT;
		tx->event_src_ts = ts;
	} else if (!tx->event_mapped || tx->event_src_ts != ts) {
		tx->event_mapped = true;
		tx->event_src_ts = ts;
		tx->event_src_base = 0;
		tx->event_out_ts = stream_ts_now(out, w->now_ms);
		/* The stream is there now (what the next event is placed from,
		 * while no audio goes out); its packets do not move it on. */
		tx->last_ts = tx->event_out_ts;
		tx->sent_ms = w->now_ms;
	}
	tx->event_src_dur = dur;
	off = 0;
	if (plen >= 4) {
		uint64_t units = (uint64_t)(tx->event_src_base + dur) * event_clock(out) /
				 event_clock(in);
		px_rfc4733_segment(units > UINT32_MAX ? UINT32_MAX : (uint32_t)units, &off, &dur);
		put_be16(p + offset + 2, dur);
	}
	tx->last_seq++;
	put_be16(p + 2, tx->last_seq);
	put_be32(p + 4, tx->event_out_ts + off);
	put_be32(p + 8, tx->ssrc);
}

/* ------------------------------------------------------------ jitter buffer
 *
 * A transcoded leg's packets go into its jitter buffer as they arrive; the
 * worker's timer takes one frame out per frame duration, decodes it (or
 * conceals it, with the next frame's FEC when the codec has it), and sends
 * what that makes of the peer's packet duration at once. A leg whose buffer
 * ran dry stops ticking until its next packet. Pure relays have no buffer:
 * the far end's own buffer takes the jitter. */

#define TICK_MIN_MS 10
#define TICK_MAX_MS 120
/* Turns caught up at most when the worker was late. */
#define TICK_CATCH_UP 4

/* A packet for in's transcoder: into its jitter buffer; -1 if too big. */
static int jb_receive(struct media_worker *w, px_rtp *in, const unsigned char *p, size_t offset,
		      size_t plen)
{
	struct transcoder *xc = &in->xc;

	if (px_jb_put(xc->jb, get_be16(p + 2), get_be32(p + 4), p + offset, plen, w->now_ms) < 0)
		return -1;
	if (!xc->ticking) {
		xc->ticking = true;
		xc->next_tick = w->now_ms;
		worker_timer_at(w, w->now_ms);
	}
	return 0;
}

/* Encode what in's transcoder holds into out's packet duration and send it. */
static void emit_transcoded(px_rtp *in, px_rtp *out, long long now)
{
	struct transcoder *xc = &in->xc;
	unsigned ptime = out->codec.ptime ? out->codec.ptime : 20;
	uint32_t ts_step = ptime * out->codec.format->rtp_clock / 1000;
	unsigned char o[PACKET_MAX];

	for (int k = 0; k < 8; k++) {
		int n = px_trans_read(xc->trans, ptime, o + RTP_HEADER_SIZE,
				      PACKET_MAX - RTP_HEADER_SIZE);
		if (n <= 0)
			break;
		out->tx.last_seq++;
		out->tx.last_ts += ts_step;
		out->tx.sent_ms = now;
		o[0] = RTP_VERSION << 6;
		o[1] = (unsigned char)((xc->mark_next ? 0x80 : 0) | (out->codec.pt & 0x7f));
		xc->mark_next = false;
		put_be16(o + 2, out->tx.last_seq);
		put_be32(o + 4, out->tx.last_ts);
		put_be32(o + 8, out->tx.ssrc);
		if (!out->send || !out->remote_len || out->dtmf.tone_playing)
			continue;
		size_t len = RTP_HEADER_SIZE + (size_t)n;
		if (sendto(out->fd, o, len, MSG_DONTWAIT, (struct sockaddr *)&out->remote,
			   out->remote_len) == (ssize_t)len) {
			counter_add(&out->stats.tx_packets, 1);
			counter_add(&out->stats.tx_bytes, len);
		}
	}
}

/* One turn of in's jitter buffer; false when it has run dry. */
static bool jb_turn(px_rtp *in, long long now)
{
	struct transcoder *xc = &in->xc;
	const struct px_format *src = in->codec.format;
	const uint8_t *payload;
	size_t len;
	unsigned samples = (unsigned)((unsigned long long)px_jb_frame_ts(xc->jb) *
				      src->sample_rate / src->rtp_clock);

	switch (px_jb_get(xc->jb, &payload, &len)) {
	case PX_JB_NOTHING: {
		struct px_jb_stats st;
		px_jb_get_stats(xc->jb, &st);
		return st.depth > 0; /* filling up: go on ticking */
	}
	case PX_JB_FRAME:
		if (px_trans_write(xc->trans, payload, len) < 0) {
			counter_add(&in->stats.rx_bad, 1);
			counter_add(&in->stats.rx_dropped, 1);
			return true;
		}
		counter_add(&in->stats.transcoded, 1);
		break;
	case PX_JB_LOST:
		px_trans_recover(xc->trans, payload, len, samples);
		break;
	}
	emit_transcoded(in, in->peer, now);
	return true;
}

static long long jb_timer(struct media_worker *w, px_rtp *r)
{
	struct transcoder *xc = &r->xc;
	long long now = w->now_ms;
	unsigned clock;
	long long frame_ms;

	if (!xc->ticking)
		return 0;
	/* A codec set to unknown since the bridge was made: nothing to do
	 * until the bridge is made again. */
	if (!xc->trans || !xc->jb || !r->peer || !r->codec.format || !r->peer->codec.format) {
		xc->ticking = false;
		return 0;
	}
	clock = r->codec.format->rtp_clock;
	frame_ms = (long long)px_jb_frame_ts(xc->jb) * 1000 / clock;
	if (frame_ms < TICK_MIN_MS)
		frame_ms = TICK_MIN_MS;
	if (frame_ms > TICK_MAX_MS)
		frame_ms = TICK_MAX_MS;
	for (int k = 0; k < TICK_CATCH_UP && now >= xc->next_tick; k++) {
		if (!jb_turn(r, now)) {
			xc->ticking = false;
			return 0;
		}
		xc->next_tick += frame_ms;
	}
	if (now >= xc->next_tick)
		xc->next_tick = now + frame_ms; /* too far behind: skip ahead */
	return xc->next_tick;
}

/* Read what is waiting on in's socket (one batch; level-triggered epoll
 * brings the worker back for more) and relay it to in's peer. */
static void relay_batch(struct media_worker *w, px_rtp *in)
{
	px_rtp *out = in->peer;
	uint64_t rx_bytes = 0, tx_bytes = 0, dropped = 0, bad = 0, rtcp = 0;
	unsigned nsend = 0, sent = 0;
	int n;

	for (unsigned i = 0; i < RECV_BATCH; i++) {
		w->recv_msgs[i].msg_hdr.msg_namelen = sizeof(w->recv_from[i]);
		w->recv_msgs[i].msg_hdr.msg_flags = 0;
	}
	n = recvmmsg(in->fd, w->recv_msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
	if (n <= 0)
		return;
	for (int i = 0; i < n; i++) {
		unsigned char *p = w->buffers[i];
		size_t len = w->recv_msgs[i].msg_len;

		size_t offset, plen;

		rx_bytes += len;
		if (!(w->recv_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) && px_rtcp_is_rtcp(p, len) &&
		    rtcp_received(w, in, p, len, NULL)) {
			rtcp++; /* multiplexed (RFC 5761): not RTP, not bad */
			rx_bytes -= len;
			continue;
		}
		if ((w->recv_msgs[i].msg_hdr.msg_flags & MSG_TRUNC) ||
		    !rtp_payload(p, len, &offset, &plen)) {
			dropped++;
			bad++;
			continue;
		}
		unsigned pt = p[1] & 0x7f;
		bool event = in->codec.dtmf_pt >= 0 && pt == (unsigned)in->codec.dtmf_pt;
		bool audio = !event && (!in->codec.format || pt == (unsigned)in->codec.pt);
		if (!audio && !event) {
			/* Not what was negotiated: a decoder must never see it,
			 * and a relayed far end would misread it. */
			dropped++;
			bad++;
			continue;
		}
		note_received(in, get_be32(p + 8), get_be16(p + 2));
		rtcp_note(w, in, p, audio);
		if (event)
			dtmf_received(w, in, p, offset, plen);
		if (in->symmetric && !in->latched)
			latch_remote(in, &w->recv_from[i]);
		if (audio && in->dtmf.inband && in->dtmf.inband_fn)
			inband_received(in, p + offset, plen);
		if (in->term) {
			/* An application owns this leg's media. */
			if (audio)
				px_term_receive(in, in->term, p, offset, plen);
			dropped += !audio;
			continue;
		}
		if (!out || out->term || !out->send || !out->remote_len ||
		    (audio && out->dtmf.tone_playing)) {
			dropped++;
			continue;
		}
		if (in->xc.trans && audio) {
			if (jb_receive(w, in, p, offset, plen) < 0) {
				dropped++;
				bad++;
			}
			continue;
		}
		if (event && out->codec.format &&
		    (out->codec.dtmf_pt < 0 ||
		     (!in->xc.trans && in->codec.format && event_clock(in) != event_clock(out)))) {
			/* The other leg did not negotiate events, or counts them
			 * in another clock on a relayed stream: the bridge sends
			 * the digit on (px_rtp_carries_events). */
			dropped++;
			continue;
		}
		if (nsend == RECV_BATCH)
			flush_sends(w, out, &nsend, &sent, &tx_bytes, &dropped);
		if (in->xc.trans)
			rewrite_event_for(w, in, out, p, offset, plen);
		else
			rewrite_for(out, p);
		if (out->codec.format && in->codec.format)
			p[1] = (unsigned char)((p[1] & 0x80) |
					       (audio ? out->codec.pt : out->codec.dtmf_pt));
		queue_send(w, out, nsend++, p, len);
	}
	if (nsend)
		flush_sends(w, out, &nsend, &sent, &tx_bytes, &dropped);
	/* Relayed audio: last_ts went out now. Events into a transcoded
	 * stream keep their start's timestamp, which is not where the stream
	 * is now (rewrite_event_for keeps the clock). */
	if (out && sent && !in->xc.trans)
		out->tx.sent_ms = w->now_ms;
	if (out) {
		counter_add(&out->stats.tx_packets, sent);
		counter_add(&out->stats.tx_bytes, tx_bytes);
	}
	counter_add(&in->stats.rx_packets, (uint64_t)n - rtcp);
	counter_add(&in->stats.rx_bytes, rx_bytes);
	counter_add(&in->stats.rx_dropped, dropped);
	counter_add(&in->stats.rx_bad, bad);
}

/* Read and drop a batch of what reached an idle socket (the last call's
 * late packets, or a flood of the range): level-triggered epoll brings the
 * worker back for more, so an idle socket never holds more than a batch. */
static void drop_idle(struct media_worker *w, int fd)
{
	for (unsigned i = 0; i < RECV_BATCH; i++) {
		w->recv_msgs[i].msg_hdr.msg_namelen = sizeof(w->recv_from[i]);
		w->recv_msgs[i].msg_hdr.msg_flags = 0;
	}
	(void)recvmmsg(fd, w->recv_msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
}

static void drain_wakeup(struct media_worker *w)
{
	uint64_t count;

	while (read(w->wakeup_fd, &count, sizeof(count)) == (ssize_t)sizeof(count))
		;
}

/* A tick of the packet clock: every session with a source sends what is
 * due. px_term_tick may take its session off the list. */
static void run_clock(struct media_worker *w)
{
	uint64_t expirations;
	struct timespec now;
	long long now_ns;

	if (read(w->timer_fd, &expirations, sizeof(expirations)) < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	now_ns = (long long)now.tv_sec * 1000000000LL + now.tv_nsec;
	for (px_rtp *r = w->ticking, *next; r; r = next) {
		next = r->tick_next;
		px_term_tick(r, r->term, now_ns);
	}
}

static void *worker_main(void *arg)
{
	struct media_worker *w = arg;
	struct epoll_event events[EPOLL_BATCH];
	int timeout = -1;

	px_thread_carries_calls();

	while (!atomic_load(&w->stopping)) {
		int n = epoll_wait(w->epoll_fd, events, EPOLL_BATCH, timeout);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			px_log_error("media/%u: epoll_wait: %s; worker stops", w->index,
				     strerror(errno));
			break;
		}
		pthread_mutex_lock(&w->lock);
		w->now_ms = monotonic_ms();
		for (int i = 0; i < n; i++) {
			if (events[i].data.u64 == WAKEUP_HANDLE) {
				drain_wakeup(w);
				continue;
			}
			if (events[i].data.u64 == TIMER_HANDLE) {
				run_clock(w);
				continue;
			}
			struct worker_slot *s = slot_lookup(w, events[i].data.u64);
			bool rtcp = events[i].data.u64 & RTCP_HANDLE_BIT;
			if (!s)
				continue;
			if (!s->session)
				drop_idle(w, rtcp ? s->rtcp_fd : s->fd);
			else if (rtcp)
				rtcp_read(w, s->session);
			else
				relay_batch(w, s->session);
		}
		if (w->timer_ms && w->now_ms >= w->timer_ms)
			worker_timers(w);
		timeout = -1;
		if (w->timer_ms)
			timeout = w->timer_ms > w->now_ms ? (int)(w->timer_ms - w->now_ms) : 0;
		pthread_mutex_unlock(&w->lock);
	}
	return NULL;
}

/* ------------------------------------------------------------ engine life */

static int worker_open(struct media_worker *w, unsigned index, px_err *err)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = WAKEUP_HANDLE};

	w->index = index;
	w->epoll_fd = -1;
	w->wakeup_fd = -1;
	w->timer_fd = -1;
	w->free_slot = NO_SLOT;
	pthread_mutex_init(&w->lock, NULL);
	for (unsigned i = 0; i < RECV_BATCH; i++) {
		w->recv_iov[i].iov_base = w->buffers[i];
		w->recv_iov[i].iov_len = sizeof(w->buffers[i]);
		w->recv_msgs[i].msg_hdr.msg_iov = &w->recv_iov[i];
		w->recv_msgs[i].msg_hdr.msg_iovlen = 1;
		w->recv_msgs[i].msg_hdr.msg_name = &w->recv_from[i];
	}
	w->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epoll_fd < 0)
		return px_err_set(err, "media/%u: epoll_create1: %s", index, strerror(errno));
	w->wakeup_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (w->wakeup_fd < 0)
		return px_err_set(err, "media/%u: eventfd: %s", index, strerror(errno));
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->wakeup_fd, &ev) < 0)
		return px_err_set(err, "media/%u: epoll_ctl: %s", index, strerror(errno));
	w->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	if (w->timer_fd < 0)
		return px_err_set(err, "media/%u: timerfd_create: %s", index, strerror(errno));
	ev.data.u64 = TIMER_HANDLE;
	if (epoll_ctl(w->epoll_fd, EPOLL_CTL_ADD, w->timer_fd, &ev) < 0)
		return px_err_set(err, "media/%u: epoll_ctl: %s", index, strerror(errno));

	char name[32];
	snprintf(name, sizeof(name), "media/%u", index);
	int rc = px_thread_start(&w->thread, name, worker_main, w);
	if (rc)
		return px_err_set(err, "%s: cannot start thread: %s", name, strerror(rc));
	w->thread_started = true;
	return 0;
}

static void worker_stop(struct media_worker *w)
{
	if (w->thread_started) {
		uint64_t one = 1;

		atomic_store(&w->stopping, true);
		if (write(w->wakeup_fd, &one, sizeof(one)) < 0)
			px_log_error("media/%u: cannot wake the worker: %s", w->index,
				     strerror(errno));
		pthread_join(w->thread, NULL);
		w->thread_started = false;
	}
}

/* After the thread is gone: close what sessions are left and everything
 * the worker owned. */
static void worker_close(struct media_worker *w)
{
	for (uint32_t i = 0; i < w->nslots; i++) {
		px_rtp *r = w->slots[i].session;

		if (r) {
			close(r->fd);
			if (r->rtcp.fd >= 0)
				close(r->rtcp.fd);
			px_trans_free(r->xc.trans);
			px_term_free(r->term);
			px_jb_free(r->xc.jb);
			px_inband_free(r->dtmf.inband);
			free(r);
			atomic_fetch_sub(&session_count, 1);
		}
	}
	free(w->slots);
	w->slots = NULL;
	w->nslots = 0;
	if (w->wakeup_fd >= 0)
		close(w->wakeup_fd);
	if (w->timer_fd >= 0)
		close(w->timer_fd);
	if (w->epoll_fd >= 0)
		close(w->epoll_fd);
	pthread_mutex_destroy(&w->lock);
}

static void engine_close(void)
{
	for (unsigned i = 0; i < nworkers; i++)
		worker_stop(&workers[i]);
	for (unsigned i = 0; i < nworkers; i++)
		worker_close(&workers[i]);
	free(workers);
	workers = NULL;
	nworkers = 0;
	pthread_mutex_lock(&port_lock);
	idle_close_all();
	free(pair_taken);
	pair_taken = NULL;
	npairs = 0;
	pthread_mutex_unlock(&port_lock);
}

int px_media_init(const px_config *rtp_conf, px_err *err)
{
	struct rtp_settings set;
	unsigned n;

	if (running)
		return px_err_set(err, "media engine already started");
	if (read_settings(rtp_conf, &set, err) < 0)
		return -1;
	if (px_codec_init(err) < 0)
		return -1;
	n = (unsigned)set.workers;
	if (n == 0) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		n = cores < 1 ? 1 : cores > MAX_WORKERS ? MAX_WORKERS : (unsigned)cores;
	}

	pthread_mutex_lock(&port_lock);
	port_start = (unsigned)set.rtpstart;
	rtcp_interval_ms = (unsigned)set.rtcpinterval;
	port_end = (unsigned)set.rtpend;
	/* An RTP port needs its RTCP port inside the range too. */
	npairs = (port_end - port_start + 1) / 2;
	pair_cursor = 0;
	pair_taken = calloc(npairs, sizeof(*pair_taken));
	idle_ring = calloc(IDLE_SOCKETS_MAX, sizeof(*idle_ring));
	idle_head = idle_len = 0;
	pthread_mutex_unlock(&port_lock);
	workers = calloc(n, sizeof(*workers));
	if (!pair_taken || !idle_ring || !workers) {
		free(workers);
		workers = NULL;
		engine_close();
		px_codec_shutdown();
		return px_err_set(err, "media engine: out of memory");
	}
	atomic_store(&worker_cursor, 0);
	for (nworkers = 0; nworkers < n; nworkers++) {
		if (worker_open(&workers[nworkers], nworkers, err) < 0) {
			nworkers++; /* so that engine_close releases its part */
			engine_close();
			px_codec_shutdown();
			return -1;
		}
	}
	running = true;
	px_verbose(1, "media: %u worker%s, RTP ports %u-%u", nworkers, nworkers == 1 ? "" : "s",
		   port_start, port_end);
	return 0;
}

void px_media_shutdown(void)
{
	if (!running)
		return;
	running = false;
	engine_close();
	px_codec_shutdown();
}

unsigned px_media_session_count(void)
{
	return atomic_load(&session_count);
}

/* ------------------------------------------------------------ sessions */

/* A new socket for r, bound to a free port of the range at r->local's
 * address; r->fd, r->port and r->local are set. */
static int open_rtp_socket(px_rtp *r, px_err *err)
{
	int one = 1, rcvbuf = SOCKET_RCVBUF;
	socklen_t len;

	r->fd = socket(r->local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (r->fd < 0)
		return px_err_set(err, "RTP socket: %s", strerror(errno));
	/* Each session has its own port in each family; an IPv6 socket taking
	 * IPv4 traffic as well would only blur which far end is which. */
	if (r->local.ss_family == AF_INET6)
		setsockopt(r->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	/* A worker busy with other sockets for a moment must not lose packets;
	 * the kernel caps this at net.core.rmem_max, which is fine too. */
	setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
	if (bind_port_from_range(r->fd, &r->local, &r->port, err) < 0 &&
	    (idle_evict(16) == 0 || bind_port_from_range(r->fd, &r->local, &r->port, err) < 0)) {
		close(r->fd);
		r->fd = -1;
		return -1;
	}
	len = sizeof(r->local);
	getsockname(r->fd, (struct sockaddr *)&r->local, &len);
	return 0;
}

int px_rtp_new(const struct sockaddr *local, px_rtp **out, px_err *err)
{
	return px_rtp_new_near(local, NULL, out, err);
}

int px_rtp_new_near(const struct sockaddr *local, px_rtp *near, px_rtp **out, px_err *err)
{
	socklen_t len = local ? sockaddr_size(local->sa_family) : 0;
	struct media_worker *w = NULL, *prefer = near ? atomic_load(&near->worker) : NULL;
	struct idle_socket idle;
	px_rtp *r;
	int rc = 0, why = 0;

	if (!running)
		return px_err_set(err, "media engine not started");
	if (!len)
		return px_err_set(err, "RTP needs an IPv4 or IPv6 local address");
	r = calloc(1, sizeof(*r));
	if (!r)
		return px_err_set(err, "out of memory");
	memcpy(&r->local, local, len);
	r->fd = r->rtcp.fd = -1;
	if (idle_take(&r->local, prefer, &idle)) {
		r->fd = idle.fd;
		r->rtcp.fd = idle.rtcp_fd;
		r->port = idle.port;
		r->local = idle.local;
		w = idle.worker;
	} else if (open_rtp_socket(r, err) < 0) {
		free(r);
		return -1;
	}
	if (r->rtcp.fd < 0)
		r->rtcp.fd = open_rtcp_socket(r);
	r->send = true;
	r->codec.pt = -1;
	r->codec.dtmf_pt = -1;
	r->tx.ssrc = random_u32();
	r->tx.last_seq = (uint16_t)random_u32();
	r->tx.last_ts = random_u32();
	r->tx.ts_step = DEFAULT_TS_STEP;
	atomic_store(&r->stats.tx_ssrc, r->tx.ssrc);

	if (w) {
		/* The idle socket is still in its worker's epoll set. */
		pthread_mutex_lock(&w->lock);
		atomic_store(&r->worker, w);
		worker_resume(w, idle.slot, r);
	} else {
		w = prefer ? prefer : pick_worker();
		pthread_mutex_lock(&w->lock);
		atomic_store(&r->worker, w);
		rc = worker_attach(w, r);
		why = errno;
	}
	if (rc == 0)
		rtcp_start(w, r);
	pthread_mutex_unlock(&w->lock);
	if (rc < 0) {
		px_err_set(err, "RTP port %u: cannot register with media/%u: %s", r->port, w->index,
			   strerror(why));
		if (r->rtcp.fd >= 0)
			close(r->rtcp.fd);
		close(r->fd);
		release_port(r->port);
		free(r);
		return -1;
	}
	atomic_fetch_add(&session_count, 1);
	px_debug(1, "RTP port %u: new session on media/%u", r->port, w->index);
	*out = r;
	return 0;
}

uint16_t px_rtp_local_port(const px_rtp *r)
{
	return r->port;
}

void px_rtp_local_addr(const px_rtp *r, struct sockaddr_storage *out)
{
	*out = r->local;
}

/* A NULL addr forgets the far end (nothing is sent until one is known,
 * which with symmetric on is the source of the next packet). */
void px_rtp_set_remote(px_rtp *r, const struct sockaddr *addr, bool symmetric)
{
	socklen_t len = addr ? sockaddr_size(addr->sa_family) : 0;
	struct media_worker *w;

	if (addr && !len)
		px_log_warning("RTP port %u: far end of unknown address family %d ignored", r->port,
			       addr->sa_family);
	w = lock_session(r);
	memset(&r->remote, 0, sizeof(r->remote));
	if (len)
		memcpy(&r->remote, addr, len);
	r->remote_len = len;
	r->symmetric = symmetric;
	r->latched = false;
	pthread_mutex_unlock(&w->lock);
}

void px_rtp_set_send(px_rtp *r, bool send)
{
	struct media_worker *w = lock_session(r);

	r->send = send;
	pthread_mutex_unlock(&w->lock);
}

/* Leave r's bridge, if any; r's worker lock held (its peer is on the same
 * worker). The next packet relayed either way starts a new source. */
static void drop_transcoder(px_rtp *r)
{
	px_trans_free(r->xc.trans);
	px_jb_free(r->xc.jb);
	memset(&r->xc, 0, sizeof(r->xc));
}

static void leave_bridge(px_rtp *r)
{
	px_rtp *peer = r->peer;

	if (!peer)
		return;
	peer->peer = NULL;
	peer->tx.have_source = false;
	drop_transcoder(peer);
	r->peer = NULL;
	r->tx.have_source = false;
	drop_transcoder(r);
}

/* Move r from one worker to another, both locked, without a moment where
 * neither serves it: added to the new epoll set before leaving the old. */
static int move_session(px_rtp *r, struct media_worker *from, struct media_worker *to, px_err *err)
{
	uint32_t old_slot = r->slot;

	if (worker_attach(to, r) < 0)
		return px_err_set(err, "RTP port %u: cannot move to media/%u: %s", r->port,
				  to->index, strerror(errno));
	worker_release(from, old_slot);
	atomic_store(&r->worker, to);
	if (r->ticking) {
		tick_unlink(from, r);
		tick_link(to, r);
	}
	/* Its timed work goes with it: the new worker looks at once. */
	if (session_timers_pending(r)) {
		worker_timer_at(to, monotonic_ms());
		worker_kick(to);
	}
	return 0;
}

void px_rtp_set_codec(px_rtp *r, const struct px_rtp_codec *codec)
{
	struct media_worker *w = lock_session(r);
	bool term = r->term != NULL;
	px_inband *stale = NULL;

	/* Inband DTMF works in the old format: off until set up again. */
	if (r->dtmf.inband && codec->format != r->codec.format) {
		stale = r->dtmf.inband;
		r->dtmf.inband = NULL;
		r->dtmf.tone_playing = false;
	}
	r->codec = *codec;
	pthread_mutex_unlock(&w->lock);
	if (term)
		px_term_codec_changed(r);
	px_inband_free(stale);
}

void px_rtp_get_codec(px_rtp *r, struct px_rtp_codec *out)
{
	struct media_worker *w = lock_session(r);

	*out = r->codec;
	pthread_mutex_unlock(&w->lock);
}

bool px_rtp_transcoding(px_rtp *r)
{
	struct media_worker *w = lock_session(r);
	bool t = r->xc.trans != NULL;

	pthread_mutex_unlock(&w->lock);
	return t;
}

int px_rtp_bridge(px_rtp *a, px_rtp *b, px_err *err)
{
	struct media_worker *wa, *wb;
	struct px_rtp_codec ca, cb;
	px_trans *ab = NULL, *ba = NULL;
	px_jb *jba = NULL, *jbb = NULL;

	if (a == b)
		return px_err_set(err, "RTP port %u: cannot bridge a session with itself", a->port);
	/* The transcoders are made before the locks are taken: they allocate
	 * and start codec libraries, which the workers must not wait for. */
	px_rtp_get_codec(a, &ca);
	px_rtp_get_codec(b, &cb);
	if (ca.format && cb.format && ca.format != cb.format) {
		if (px_trans_new(ca.format, cb.format, cb.fmtp, &ab, err) < 0)
			return -1;
		if (px_trans_new(cb.format, ca.format, ca.fmtp, &ba, err) < 0) {
			px_trans_free(ab);
			return -1;
		}
		jba = px_jb_new(ca.format->rtp_clock,
				(ca.ptime ? ca.ptime : 20) * ca.format->rtp_clock / 1000);
		jbb = px_jb_new(cb.format->rtp_clock,
				(cb.ptime ? cb.ptime : 20) * cb.format->rtp_clock / 1000);
		if (!jba || !jbb) {
			px_trans_free(ab);
			px_trans_free(ba);
			px_jb_free(jba);
			px_jb_free(jbb);
			return px_err_set(err, "out of memory");
		}
	}
	lock_pair(a, b, &wa, &wb);
	/* Both legs of a bridge on one worker: a packet is read and relayed
	 * under one lock, with no hand-over between threads. */
	if (wa != wb && move_session(b, wb, wa, err) < 0) {
		unlock_pair(wa, wb);
		px_trans_free(ab);
		px_trans_free(ba);
		px_jb_free(jba);
		px_jb_free(jbb);
		return -1;
	}
	leave_bridge(a);
	leave_bridge(b);
	a->peer = b;
	b->peer = a;
	a->xc.trans = ab;
	a->xc.jb = jba;
	a->xc.mark_next = true;
	b->xc.trans = ba;
	b->xc.jb = jbb;
	b->xc.mark_next = true;
	unlock_pair(wa, wb);
	px_debug(1, "RTP ports %u and %u bridged on media/%u%s%s%s%s", a->port, b->port, wa->index,
		 ab ? ", transcoding " : "", ab ? ca.format->name : "", ab ? " <-> " : "",
		 ab ? cb.format->name : "");
	return 0;
}

void px_rtp_unbridge(px_rtp *r)
{
	struct media_worker *w = lock_session(r);

	leave_bridge(r);
	pthread_mutex_unlock(&w->lock);
}

void px_rtp_get_stats(px_rtp *r, struct px_rtp_stats *out)
{
	const struct session_stats *s = &r->stats;

	out->rx_packets = atomic_load_explicit(&s->rx_packets, memory_order_relaxed);
	out->rx_bytes = atomic_load_explicit(&s->rx_bytes, memory_order_relaxed);
	out->tx_packets = atomic_load_explicit(&s->tx_packets, memory_order_relaxed);
	out->tx_bytes = atomic_load_explicit(&s->tx_bytes, memory_order_relaxed);
	out->rx_lost = atomic_load_explicit(&s->rx_lost, memory_order_relaxed);
	out->rx_dropped = atomic_load_explicit(&s->rx_dropped, memory_order_relaxed);
	out->rx_bad = atomic_load_explicit(&s->rx_bad, memory_order_relaxed);
	out->transcoded = atomic_load_explicit(&s->transcoded, memory_order_relaxed);
	out->rx_ssrc = atomic_load_explicit(&s->rx_ssrc, memory_order_relaxed);
	out->tx_ssrc = atomic_load_explicit(&s->tx_ssrc, memory_order_relaxed);
	out->rtcp_rx = atomic_load_explicit(&s->rtcp_rx, memory_order_relaxed);
	out->rtcp_tx = atomic_load_explicit(&s->rtcp_tx, memory_order_relaxed);
	out->jitter_ms = atomic_load_explicit(&s->jitter_ms, memory_order_relaxed);
	out->remote_reported = atomic_load_explicit(&s->remote_reported, memory_order_relaxed);
	out->remote_lost = atomic_load_explicit(&s->remote_lost, memory_order_relaxed);
	out->remote_fraction_lost = atomic_load_explicit(&s->remote_fraction, memory_order_relaxed);
	out->remote_jitter_ms = atomic_load_explicit(&s->remote_jitter_ms, memory_order_relaxed);
	out->rtt_ms = atomic_load_explicit(&s->rtt_ms, memory_order_relaxed);
	out->worker = atomic_load(&r->worker)->index;
}

void px_rtp_destroy(px_rtp *r)
{
	struct media_worker *w;

	if (!r)
		return;
	w = lock_session(r);
	leave_bridge(r);
	if (r->ticking)
		tick_unlink(w, r);
	struct px_term *term = r->term;
	r->term = NULL;
	worker_park(w, r->slot);
	pthread_mutex_unlock(&w->lock);
	px_term_free(term);
	/* The worker holds no session pointer outside its lock, and its
	 * pending events for r's slot now find it idle: r is ours alone. */
	px_debug(1, "RTP port %u: session closed", r->port);
	if (!idle_put(r->fd, r->rtcp.fd, r->port, &r->local, w, r->slot)) {
		pthread_mutex_lock(&w->lock);
		worker_release(w, r->slot);
		pthread_mutex_unlock(&w->lock);
		close(r->fd);
		if (r->rtcp.fd >= 0)
			close(r->rtcp.fd);
		release_port(r->port);
	}
	atomic_fetch_sub(&session_count, 1);
	px_inband_free(r->dtmf.inband);
	free(r);
}

/* ------------------------------------------------------------ terminated media hooks */

struct media_worker *px_rtp_lock(px_rtp *r)
{
	return lock_session(r);
}

void px_rtp_unlock(struct media_worker *w)
{
	pthread_mutex_unlock(&w->lock);
}

struct px_term *px_rtp_term(const px_rtp *r)
{
	return r->term;
}

void px_rtp_set_term(px_rtp *r, struct px_term *t, bool ticking)
{
	struct media_worker *w = atomic_load(&r->worker);

	r->term = t;
	if (ticking && !r->ticking)
		tick_link(w, r);
	else if (!ticking && r->ticking)
		tick_unlink(w, r);
	r->ticking = ticking;
	/* Whatever is relayed next starts a new source on both sides. */
	r->tx.have_source = false;
	r->xc.mark_next = true;
	if (r->peer) {
		r->peer->tx.have_source = false;
		r->peer->xc.mark_next = true;
	}
}

const struct px_rtp_codec *px_rtp_codec_locked(const px_rtp *r)
{
	return &r->codec;
}

bool px_rtp_send_own(px_rtp *r, uint8_t *pkt, size_t payload_len, uint32_t ts_step, bool marker)
{
	size_t len = RTP_HEADER_SIZE + payload_len;
	ssize_t rc;

	r->tx.last_ts += ts_step;
	r->tx.sent_ms = monotonic_ms(); /* where a DTMF digit sent now takes its timestamp */
	r->tx.have_source = false;
	if (!r->send || !r->remote_len)
		return false; /* a packet time passed; no sequence number used */
	r->tx.last_seq++;
	pkt[0] = RTP_VERSION << 6;
	pkt[1] = (unsigned char)((marker ? 0x80 : 0) | (r->codec.pt & 0x7f));
	put_be16(pkt + 2, r->tx.last_seq);
	put_be32(pkt + 4, r->tx.last_ts);
	put_be32(pkt + 8, r->tx.ssrc);
	rc = sendto(r->fd, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&r->remote, r->remote_len);
	if (rc != (ssize_t)len)
		return false;
	counter_add(&r->stats.tx_packets, 1);
	counter_add(&r->stats.tx_bytes, len);
	return true;
}

void px_rtp_skip_own(px_rtp *r, uint32_t ts_step)
{
	r->tx.last_ts += ts_step;
	r->tx.sent_ms = monotonic_ms();
	r->tx.have_source = false;
}

/* ------------------------------------------------------------ DTMF
 *
 * RFC 4733 events. Received ones are told to the session's handler as they
 * are seen in relay_batch; the ones we send are paced by the worker's
 * timers. Durations are in the event clock the SDP negotiated
 * (telephone-event/8000, /16000, /48000: the audio's), an event longer than
 * 16 bits of it in segments; the timestamp of an event we send is in the
 * audio clock, where the outgoing stream has got to. */

#define DTMF_UPDATE_MS     50
#define DTMF_GAP_MS        50
#define DTMF_END_PACKETS   3
#define DTMF_RX_TIMEOUT_MS 1000
#define DTMF_MIN_MS        40
#define DTMF_MAX_MS        5000

static bool session_timers_pending(const px_rtp *r)
{
	return r->dtmf.qlen || r->dtmf.rx_begun || r->xc.ticking || r->rtcp.next_ms;
}

static void dtmf_tell(px_rtp *r, char digit, bool begin, uint32_t units)
{
	if (r->dtmf.fn)
		r->dtmf.fn(r->dtmf.arg, digit, begin,
			   (unsigned)((uint64_t)units * 1000u / event_clock(r)));
}

static void dtmf_received(struct media_worker *w, px_rtp *in, const unsigned char *p, size_t offset,
			  size_t plen)
{
	struct dtmf_state *d = &in->dtmf;
	struct px_rfc4733_event ev;
	uint32_t ts = get_be32(p + 4);
	uint32_t duration = 0;

	if (px_rfc4733_parse(p + offset, plen, &ev) < 0)
		return; /* not a digit: relayed all the same, for the far end to judge */
	if (d->rx_begun && d->rx.active && d->rx.ts != ts &&
	    !px_rfc4733_continues(&d->rx, ts, &ev)) {
		/* A new event while one had not ended: its end was lost. */
		dtmf_tell(in, d->rx.digit, false, d->rx_duration);
		d->rx_begun = false;
	}
	switch (px_rfc4733_receive(&d->rx, ts, &ev, &duration)) {
	case PX_RFC4733_BEGIN:
		d->rx_begun = true;
		d->rx_duration = ev.duration;
		dtmf_tell(in, ev.digit, true, 0);
		worker_timer_at(w, w->now_ms + DTMF_RX_TIMEOUT_MS);
		break;
	case PX_RFC4733_END:
		if (!d->rx_begun) /* its start was lost */
			dtmf_tell(in, d->rx.digit, true, 0);
		d->rx_begun = false;
		dtmf_tell(in, d->rx.digit, false, duration);
		break;
	case PX_RFC4733_NOTHING:
		if (d->rx_begun && d->rx.base + ev.duration > d->rx_duration)
			d->rx_duration = d->rx.base + ev.duration;
		break;
	}
	d->rx_last_ms = w->now_ms;
}

/* Where r's outgoing stream is now, in its audio clock. */
static uint32_t stream_ts_now(const px_rtp *r, long long now)
{
	unsigned clock = r->codec.format ? r->codec.format->rtp_clock : 8000;

	if (!r->tx.sent_ms)
		return r->tx.last_ts;
	return r->tx.last_ts + (uint32_t)((unsigned long long)(now - r->tx.sent_ms) * clock / 1000);
}

/* One packet of the digit at the head of r's queue. */
static void dtmf_send_packet(px_rtp *r, bool begin, bool end, unsigned ms)
{
	struct px_rfc4733_event ev = {
		.digit = r->dtmf.queue[r->dtmf.qhead].digit,
		.end = end,
		.volume = 10,
	};
	unsigned char p[RTP_HEADER_SIZE + 4];
	uint32_t off;

	px_rfc4733_segment((uint32_t)((uint64_t)ms * event_clock(r) / 1000), &off, &ev.duration);
	if (px_rfc4733_build(&ev, p + RTP_HEADER_SIZE) < 0)
		return;
	r->tx.last_seq++;
	/* Relayed packets that follow must not reuse this sequence number. */
	if (r->tx.have_source)
		r->tx.seq_offset++;
	p[0] = RTP_VERSION << 6;
	p[1] = (unsigned char)((begin ? 0x80 : 0) | (r->codec.dtmf_pt & 0x7f));
	put_be16(p + 2, r->tx.last_seq);
	put_be32(p + 4, r->dtmf.ts + off);
	put_be32(p + 8, r->tx.ssrc);
	if (!r->send || !r->remote_len)
		return;
	if (sendto(r->fd, p, sizeof(p), MSG_DONTWAIT, (struct sockaddr *)&r->remote,
		   r->remote_len) == (ssize_t)sizeof(p)) {
		counter_add(&r->stats.tx_packets, 1);
		counter_add(&r->stats.tx_bytes, sizeof(p));
	}
}

static void dtmf_pop(struct dtmf_state *d, long long now)
{
	d->sending = false;
	d->qhead = (d->qhead + 1) % DTMF_QUEUE;
	d->qlen--;
	d->next_ms = now + DTMF_GAP_MS;
}

/* One packet of the inband tone at the head of r's queue, in place of the
 * audio relayed to r's far end; when it is over the relay takes up the
 * stream again where the tone left it. */
static void tone_timer(px_rtp *r, long long now)
{
	struct dtmf_state *d = &r->dtmf;
	unsigned ptime = r->codec.ptime ? r->codec.ptime : 20;
	unsigned char p[PACKET_MAX];
	int n;

	if (!d->inband) {
		dtmf_pop(d, now);
		d->tone_playing = false;
		return;
	}
	if (!d->sending) {
		if (px_inband_tone_start(d->inband, d->queue[d->qhead].digit,
					 d->queue[d->qhead].ms) < 0) {
			dtmf_pop(d, now);
			return;
		}
		d->sending = true;
		d->tone_playing = true;
		d->start_ms = now;
		r->tx.last_ts = stream_ts_now(r, now);
	}
	n = px_inband_tone_read(d->inband, ptime, p + RTP_HEADER_SIZE, sizeof(p) - RTP_HEADER_SIZE);
	if (n <= 0) {
		d->tone_playing = false;
		r->tx.have_source = false;
		dtmf_pop(d, now);
		return;
	}
	r->tx.last_seq++;
	r->tx.last_ts += ptime * r->codec.format->rtp_clock / 1000;
	r->tx.sent_ms = now;
	p[0] = RTP_VERSION << 6;
	p[1] = (unsigned char)((now == d->start_ms ? 0x80 : 0) | (r->codec.pt & 0x7f));
	put_be16(p + 2, r->tx.last_seq);
	put_be32(p + 4, r->tx.last_ts);
	put_be32(p + 8, r->tx.ssrc);
	if (r->send && r->remote_len &&
	    sendto(r->fd, p, RTP_HEADER_SIZE + (size_t)n, MSG_DONTWAIT,
		   (struct sockaddr *)&r->remote, r->remote_len) == RTP_HEADER_SIZE + n) {
		counter_add(&r->stats.tx_packets, 1);
		counter_add(&r->stats.tx_bytes, RTP_HEADER_SIZE + (uint64_t)n);
	}
	/* Paced from the start, so timer lateness does not add up. */
	d->next_ms = d->start_ms + (long long)ptime * (long long)((now - d->start_ms) / ptime + 1);
}

static long long dtmf_timer(struct media_worker *w, px_rtp *r)
{
	struct dtmf_state *d = &r->dtmf;
	long long now = w->now_ms, due = 0;

	if (d->rx_begun) {
		if (now - d->rx_last_ms >= DTMF_RX_TIMEOUT_MS) {
			/* Every end packet was lost; late ones are ignored. */
			d->rx_begun = false;
			d->rx.active = false;
			d->rx.ended = true;
			dtmf_tell(r, d->rx.digit, false, d->rx_duration);
		} else {
			due = d->rx_last_ms + DTMF_RX_TIMEOUT_MS;
		}
	}
	if (d->qlen && now >= d->next_ms && d->queue[d->qhead].tone) {
		tone_timer(r, now);
	} else if (d->qlen && now >= d->next_ms) {
		unsigned total = d->queue[d->qhead].ms;

		if (r->codec.dtmf_pt < 0) {
			/* Renegotiated without events: what is queued is dropped. */
			d->qlen = 0;
			d->sending = false;
		} else if (!d->sending) {
			d->sending = true;
			d->ts = stream_ts_now(r, now);
			d->start_ms = now;
			d->ends_sent = 0;
			dtmf_send_packet(r, true, false, 0);
			d->next_ms = now + (total < DTMF_UPDATE_MS ? total : DTMF_UPDATE_MS);
		} else if (d->ends_sent || now - d->start_ms >= total) {
			dtmf_send_packet(r, false, true, total);
			d->next_ms = now + DTMF_UPDATE_MS;
			if (++d->ends_sent == DTMF_END_PACKETS)
				dtmf_pop(d, now);
		} else {
			long long end = d->start_ms + total;

			dtmf_send_packet(r, false, false, (unsigned)(now - d->start_ms));
			d->next_ms = now + DTMF_UPDATE_MS < end ? now + DTMF_UPDATE_MS : end;
		}
	}
	if (d->qlen && (!due || d->next_ms < due))
		due = d->next_ms;
	return due;
}

void px_rtp_set_dtmf_handler(px_rtp *r, px_rtp_dtmf_fn fn, void *arg)
{
	struct media_worker *w = lock_session(r);

	r->dtmf.fn = fn;
	r->dtmf.arg = arg;
	pthread_mutex_unlock(&w->lock);
}

int px_rtp_send_dtmf(px_rtp *r, char digit, unsigned duration_ms)
{
	struct px_rfc4733_event ev = {.digit = digit};
	unsigned char scratch[4];
	struct media_worker *w;
	int rc = -1;

	if (digit == 'X' || px_rfc4733_build(&ev, scratch) < 0)
		return -1;
	if (duration_ms < DTMF_MIN_MS)
		duration_ms = DTMF_MIN_MS;
	if (duration_ms > DTMF_MAX_MS)
		duration_ms = DTMF_MAX_MS;
	w = lock_session(r);
	if (r->codec.dtmf_pt >= 0 && r->dtmf.qlen < DTMF_QUEUE) {
		unsigned k = (r->dtmf.qhead + r->dtmf.qlen++) % DTMF_QUEUE;

		r->dtmf.queue[k].digit = digit;
		r->dtmf.queue[k].ms = duration_ms;
		r->dtmf.queue[k].tone = false;
		worker_timer_at(w, monotonic_ms());
		worker_kick(w);
		rc = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

bool px_rtp_carries_events(px_rtp *r)
{
	struct media_worker *w = lock_session(r);
	bool carries = r->peer && r->codec.dtmf_pt >= 0 &&
		       (!r->peer->codec.format ||
			(r->peer->codec.dtmf_pt >= 0 &&
			 (r->xc.trans || !r->codec.format ||
			  event_clock(r) == event_clock(r->peer))));

	pthread_mutex_unlock(&w->lock);
	return carries;
}

bool px_rtp_bridged(px_rtp *r)
{
	struct media_worker *w = lock_session(r);
	bool bridged = r->peer != NULL;

	pthread_mutex_unlock(&w->lock);
	return bridged;
}

/* ------------------------------------------------------------ inband DTMF */

static void inband_received(px_rtp *in, const unsigned char *payload, size_t len)
{
	px_inband_receive(in->dtmf.inband, payload, len, in->dtmf.inband_fn, in->dtmf.inband_arg);
}

int px_rtp_set_inband(px_rtp *r, px_rtp_dtmf_fn fn, void *arg, px_err *err)
{
	struct px_rtp_codec codec;
	px_inband *ib = NULL, *old;
	struct media_worker *w;

	if (fn) {
		px_rtp_get_codec(r, &codec);
		if (px_inband_new(codec.format, &ib, err) < 0)
			return -1;
	}
	w = lock_session(r);
	if (fn && r->codec.format != codec.format) {
		/* The codec changed meanwhile: this one would not fit. */
		pthread_mutex_unlock(&w->lock);
		px_inband_free(ib);
		return px_err_set(err, "RTP port %u: codec changed while setting up inband DTMF",
				  r->port);
	}
	old = r->dtmf.inband;
	r->dtmf.inband = ib;
	r->dtmf.inband_fn = fn;
	r->dtmf.inband_arg = arg;
	r->dtmf.tone_playing = false;
	pthread_mutex_unlock(&w->lock);
	px_inband_free(old);
	return 0;
}

int px_rtp_send_tone(px_rtp *r, char digit, unsigned duration_ms)
{
	struct media_worker *w;
	int rc = -1;

	if (!digit || !strchr("0123456789*#ABCD", digit))
		return -1;
	if (duration_ms < DTMF_MIN_MS)
		duration_ms = DTMF_MIN_MS;
	if (duration_ms > DTMF_MAX_MS)
		duration_ms = DTMF_MAX_MS;
	w = lock_session(r);
	if (r->dtmf.inband && r->dtmf.qlen < DTMF_QUEUE) {
		unsigned k = (r->dtmf.qhead + r->dtmf.qlen++) % DTMF_QUEUE;

		r->dtmf.queue[k].digit = digit;
		r->dtmf.queue[k].ms = duration_ms;
		r->dtmf.queue[k].tone = true;
		worker_timer_at(w, monotonic_ms());
		worker_kick(w);
		rc = 0;
	}
	pthread_mutex_unlock(&w->lock);
	return rc;
}

/* ------------------------------------------------------------ RTCP
 *
 * Each session terminates its own RTCP, relayed or not: it reports every
 * rtcpinterval ms (randomised between half and one and a half times, RFC
 * 3550 6.2) on port + 1, or on the RTP port with rtcp-mux, an SR when it
 * has sent RTP since its last report, else an RR, with a block about the
 * stream it receives; and it reads the far end's SR/RR for its loss,
 * jitter and round trip. */

/* Seconds from 1900 (NTP) to 1970 (Unix). */
#define NTP_UNIX_OFFSET 2208988800ULL

static uint64_t ntp_now(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return ((uint64_t)now.tv_sec + NTP_UNIX_OFFSET) << 32 |
	       (uint64_t)(((uint64_t)now.tv_nsec << 32) / 1000000000ULL);
}

static unsigned rtcp_clock(const px_rtp *r)
{
	return r->codec.format ? r->codec.format->rtp_clock : 8000;
}

static long long rtcp_next(long long now)
{
	return now + rtcp_interval_ms / 2 + random_u32() % (rtcp_interval_ms + 1);
}

/* A socket on port + 1 of the session's address; -1 when it is taken
 * (then RTCP goes only with rtcp-mux). */
static int open_rtcp_socket(px_rtp *r)
{
	struct sockaddr_storage addr = r->local;
	int one = 1;
	int fd = socket(r->local.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);

	if (fd < 0)
		return -1;
	if (r->local.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	set_port(&addr, (uint16_t)(r->port + 1));
	if (bind(fd, (struct sockaddr *)&addr, sockaddr_size(addr.ss_family)) < 0) {
		px_debug(1, "RTP port %u: no RTCP port: %s", r->port, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static void rtcp_start(struct media_worker *w, px_rtp *r)
{
	long long before = w->timer_ms;

	if (!rtcp_interval_ms)
		return;
	r->rtcp.next_ms = rtcp_next(monotonic_ms());
	worker_timer_at(w, r->rtcp.next_ms);
	/* A worker already due to wake up sooner needs no system call. */
	if (w->timer_ms != before)
		worker_kick(w);
}

/* RFC 3550 A.1 and A.8, for what r receives: extended sequence numbers and
 * the interarrival jitter (audio only: events keep their timestamp). */
static void rtcp_note(struct media_worker *w, px_rtp *r, const unsigned char *p, bool audio)
{
	struct rtcp_state *c = &r->rtcp;
	uint32_t ssrc = get_be32(p + 8);
	uint16_t seq = get_be16(p + 2);

	if (!c->started || c->ssrc != ssrc) {
		memset(&c->started, 0, sizeof(*c) - offsetof(struct rtcp_state, started));
		c->started = true;
		c->ssrc = ssrc;
		c->base_seq = c->max_seq = seq;
	} else {
		int16_t delta = (int16_t)(uint16_t)(seq - c->max_seq);
		if (delta > 0) {
			if (seq < c->max_seq)
				c->cycles += 65536;
			c->max_seq = seq;
		}
	}
	c->received++;
	if (audio) {
		unsigned clock = rtcp_clock(r);
		int32_t transit =
			(int32_t)((uint32_t)((uint64_t)w->now_ms * clock / 1000) - get_be32(p + 4));
		if (c->have_transit) {
			int32_t d = transit - c->last_transit;
			uint32_t ad = (uint32_t)(d < 0 ? -(int64_t)d : d);
			if (ad < clock) /* a jump of a second or more is a restart */
				c->jitter16 += ad - ((c->jitter16 + 8) >> 4);
		}
		c->have_transit = true;
		c->last_transit = transit;
		atomic_store_explicit(&r->stats.jitter_ms,
				      (uint32_t)((uint64_t)(c->jitter16 >> 4) * 1000 / clock),
				      memory_order_relaxed);
	}
}

static void rtcp_send(struct media_worker *w, px_rtp *r)
{
	struct rtcp_state *c = &r->rtcp;
	uint64_t tx_packets = atomic_load_explicit(&r->stats.tx_packets, memory_order_relaxed);
	struct px_rtcp_sender_info info;
	struct px_rtcp_block block;
	struct sockaddr_storage to;
	socklen_t to_len;
	unsigned char p[256];
	char cname[32];
	int fd, n;

	if (c->mux) {
		fd = r->fd;
		to = r->remote;
		to_len = r->remote_len;
	} else if (c->latched) {
		fd = c->fd;
		to = c->remote;
		to_len = c->remote_len;
	} else {
		fd = c->fd;
		to = r->remote;
		to_len = r->remote_len;
		if (to_len)
			set_port(&to, (uint16_t)(ntohs(((struct sockaddr_in *)&to)->sin_port) + 1));
	}
	if (fd < 0 || !to_len)
		return;
	bool sender = tx_packets != c->tx_at_last;
	if (sender) {
		info.ntp = ntp_now();
		info.rtp_ts = stream_ts_now(r, w->now_ms);
		info.packets = (uint32_t)tx_packets;
		info.octets =
			(uint32_t)atomic_load_explicit(&r->stats.tx_bytes, memory_order_relaxed);
		c->tx_at_last = tx_packets;
	}
	if (c->started) {
		uint32_t ext_max = c->cycles + c->max_seq;
		uint32_t expected = ext_max - c->base_seq + 1;
		int64_t lost = (int64_t)expected - c->received;
		uint32_t exp_int = expected - c->expected_prior;
		uint32_t rec_int = c->received - c->received_prior;
		int64_t lost_int = (int64_t)exp_int - rec_int;

		c->expected_prior = expected;
		c->received_prior = c->received;
		block = (struct px_rtcp_block){
			.ssrc = c->ssrc,
			.fraction_lost = (uint8_t)(exp_int == 0 || lost_int <= 0
							   ? 0
							   : (lost_int << 8) / exp_int),
			.cumulative_lost = (int32_t)(lost > 0x7fffff ? 0x7fffff : lost),
			.highest_seq = ext_max,
			.jitter = c->jitter16 >> 4,
			.lsr = c->lsr,
			.dlsr = c->lsr ? (uint32_t)((w->now_ms - c->lsr_ms) * 65536 / 1000) : 0,
		};
	}
	snprintf(cname, sizeof(cname), "plexus-%08x", (unsigned)r->tx.ssrc);
	n = px_rtcp_build(p, sizeof(p), r->tx.ssrc, sender ? &info : NULL,
			  c->started ? &block : NULL, cname);
	if (n > 0 && sendto(fd, p, (size_t)n, MSG_DONTWAIT, (struct sockaddr *)&to, to_len) == n)
		counter_add(&r->stats.rtcp_tx, 1);
}

static long long rtcp_timer(struct media_worker *w, px_rtp *r)
{
	if (!r->rtcp.next_ms)
		return 0;
	if (w->now_ms >= r->rtcp.next_ms) {
		rtcp_send(w, r);
		r->rtcp.next_ms = rtcp_next(w->now_ms);
	}
	return r->rtcp.next_ms;
}

/* An RTCP packet from r's far end (from: its source on the RTCP port, NULL
 * when multiplexed). false when it is not valid RTCP. */
static bool rtcp_received(struct media_worker *w, px_rtp *r, const unsigned char *p, size_t len,
			  const struct sockaddr_storage *from)
{
	struct rtcp_state *c = &r->rtcp;
	struct px_rtcp_report rep;

	if (px_rtcp_parse(p, len, &rep) < 0)
		return false;
	counter_add(&r->stats.rtcp_rx, 1);
	if (rep.sender) {
		c->lsr = px_rtcp_ntp_mid(rep.info.ntp);
		c->lsr_ms = w->now_ms;
	}
	for (unsigned i = 0; i < rep.nblocks; i++) {
		const struct px_rtcp_block *b = &rep.blocks[i];

		if (b->ssrc != r->tx.ssrc)
			continue;
		atomic_store(&r->stats.remote_fraction, b->fraction_lost);
		atomic_store(&r->stats.remote_lost,
			     (uint32_t)(b->cumulative_lost > 0 ? b->cumulative_lost : 0));
		atomic_store(&r->stats.remote_jitter_ms,
			     (uint32_t)((uint64_t)b->jitter * 1000 / rtcp_clock(r)));
		if (b->lsr) {
			/* RFC 3550 6.4.1: arrival - LSR - DLSR, in 1/65536 s. */
			uint32_t rtt = px_rtcp_ntp_mid(ntp_now()) - b->lsr - b->dlsr;
			if (rtt < 0x80000000u)
				atomic_store(&r->stats.rtt_ms,
					     (uint32_t)((uint64_t)rtt * 1000 >> 16));
		}
		atomic_store(&r->stats.remote_reported, true);
	}
	if (from && r->symmetric && !c->latched) {
		c->latched = true;
		c->remote = *from;
		c->remote_len = sockaddr_size(from->ss_family);
	}
	return true;
}

/* What waits on r's RTCP socket; bad packets are counted with the RTP's. */
static void rtcp_read(struct media_worker *w, px_rtp *r)
{
	for (int i = 0; i < 8; i++) {
		struct sockaddr_storage from;
		socklen_t from_len = sizeof(from);
		ssize_t n = recvfrom(r->rtcp.fd, w->buffers[0], PACKET_MAX, MSG_DONTWAIT,
				     (struct sockaddr *)&from, &from_len);

		if (n < 0)
			break;
		if (!rtcp_received(w, r, w->buffers[0], (size_t)n, &from))
			counter_add(&r->stats.rx_bad, 1);
	}
}

void px_rtp_set_rtcp_mux(px_rtp *r, bool mux)
{
	struct media_worker *w = lock_session(r);

	r->rtcp.mux = mux;
	pthread_mutex_unlock(&w->lock);
}
