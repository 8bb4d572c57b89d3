/*
 * Overload control of the SIP thread. Every message of every call goes
 * through this one thread; past its capacity its socket queue grows, every
 * call slows down, phones retransmit, which adds load, and within seconds
 * no call at all gets through. New INVITEs are refused with 503 and
 * Retry-After on one of two signals:
 *
 *  - The backlog of the SIP UDP sockets, read at a new INVITE when the
 *    last look is a millisecond old, and every quarter of a second (one
 *    getsockopt SO_MEMINFO per socket). At 1500 calls/s, two INVITEs a
 *    call, a look at each INVITE was 3000 system calls a second; a look
 *    a millisecond old misses at most a millisecond of arrivals against
 *    the 130 ms that make a backlog.
 *    Once a socket's receive queue holds half its buffer (4 MB: about 1700
 *    messages, 130 ms of arrivals at 1500 calls/s, well before phones
 *    retransmit at 500 ms and before the buffer overflows), every new
 *    INVITE is refused; then, until the queues are down to an eighth,
 *    those without credentials (an INVITE with credentials most often
 *    answers our challenge, and refusing it wastes that round trip). A
 *    refused call costs the thread three messages where an accepted one
 *    costs fifteen, so the queue drains. A short stall, or a burst the
 *    thread absorbs, refuses nothing.
 *  - Where no UDP queue can be read (TCP or TLS only): how busy the thread
 *    is, every quarter of a second, its CPU time plus its run-queue delay
 *    from /proc schedstat. Above 95 % twice in a row (one busy quarter is
 *    only a burst) it refuses another fifth of new calls; below 90 % it
 *    accepts a twentieth more. INVITEs with credentials are refused at a
 *    quarter of that share, never exempt: a phone that always sends
 *    credentials, or a flood with a made-up Authorization header, is shed
 *    too. This signal is not used with UDP: on cores shared with other
 *    work the thread can be busy 95 % of the time with an empty queue, and
 *    it then refused calls the thread had time for (2302 calls over 7 s at
 *    1200 calls/s after a 370 kB burst that drained within a second).
 *
 * In-dialog requests, REGISTER and responses are untouched. SIP thread
 * only.
 */
#include <linux/sock_diag.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sofia-sip/su_wait.h>

#include <plexus/log.h>

#include "sip.h"

#define BUSY_HIGH        0.95
#define BUSY_LOW         0.90
#define STEP_UP          0.20
#define STEP_DOWN        0.05
#define SHED_MAX         0.95
#define TICK_MS          250
#define TICKS_PER_REPORT (1000 / TICK_MS)
#define QUEUE_HIGH_DIV   2         /* half the receive buffer: refuse all */
#define QUEUE_LOW_DIV    8         /* an eighth: the backlog is gone */
#define QUEUE_SOCKETS    4         /* IPv4 and IPv6 on the bind address, and spare */
#define QUEUE_LOOK_NS    1000000LL /* an INVITE reads the queues once this old */

static su_timer_t *timer;
static char schedstat_path[64];
static long long last_wall_ns, last_busy_ns;
static double shed_share;        /* of fresh INVITEs refused now */
static double shed_credit;       /* spreads the refusals evenly */
static double shed_credit_auth;  /* the same for INVITEs with credentials */
static unsigned long shed_count; /* refused since the last report */
static unsigned long shed_total; /* refused since this overload began */
static unsigned ticks;
static bool was_high;
static int queue_fds[QUEUE_SOCKETS];
static size_t queue_nfds;
/* 0: no backlog; 1: draining (new INVITEs without credentials refused);
 * 2: backlog (every new INVITE refused). */
static int queue_level;
static long long queue_looked_ns; /* wall_ns() of the last look at an INVITE */
/* What "sip show settings" tells: written here, read by console threads. */
static atomic_int view_sockets;
static atomic_llong view_queued, view_buffer;
static atomic_bool view_refusing;
static atomic_ulong view_refused;

static long long wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Nanoseconds this thread ran plus waited to run, or -1. */
static long long busy_ns(void)
{
	unsigned long long run = 0, wait = 0;
	FILE *f = fopen(schedstat_path, "re");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%llu %llu", &run, &wait);
	fclose(f);
	return n == 2 ? (long long)(run + wait) : -1;
}

/* The fullest SIP UDP socket's backlog against its buffer: 2 above a
 * half, 1 above an eighth, else 0; -1 when none can be read. */
static int queue_read(long long *queued)
{
	int level = -1;

	*queued = 0;
	for (size_t i = 0; i < queue_nfds; i++) {
		uint32_t mem[SK_MEMINFO_VARS];
		socklen_t len = sizeof(mem);
		int l;

		if (getsockopt(queue_fds[i], SOL_SOCKET, SO_MEMINFO, mem, &len) < 0 ||
		    len < sizeof(uint32_t) * (SK_MEMINFO_RCVBUF + 1) || !mem[SK_MEMINFO_RCVBUF])
			continue;
		l = mem[SK_MEMINFO_RMEM_ALLOC] > mem[SK_MEMINFO_RCVBUF] / QUEUE_HIGH_DIV  ? 2
		    : mem[SK_MEMINFO_RMEM_ALLOC] > mem[SK_MEMINFO_RCVBUF] / QUEUE_LOW_DIV ? 1
											  : 0;
		if (l > level)
			level = l;
		if (mem[SK_MEMINFO_RMEM_ALLOC] >= *queued) {
			*queued = mem[SK_MEMINFO_RMEM_ALLOC];
			atomic_store(&view_buffer, (long long)mem[SK_MEMINFO_RCVBUF]);
		}
	}
	if (level >= 0)
		atomic_store(&view_queued, *queued);
	return level;
}

/* Follows the backlog of the queues (level from queue_read), and says
 * when it begins and when it is gone. */
static void queue_follow(int level, long long queued)
{
	int was = queue_level;

	if (level == 2)
		queue_level = 2;
	else if (level == 1 && queue_level == 2)
		queue_level = 1;
	else if (level == 0)
		queue_level = 0;
	if (queue_level && !was)
		px_log_warning("chan_sip: %lld kB of SIP messages wait in a socket queue: "
			       "refusing new calls with 503 until it drains",
			       queued / 1024);
	else if (!queue_level && was) {
		px_log_notice("chan_sip: the SIP socket queue drained; %lu new calls were refused",
			      shed_total);
		shed_total = 0;
	}
	atomic_store(&view_refusing, queue_level != 0);
}

/* The CPU signal, when no UDP queue can be read: the thread's run time
 * plus run-queue delay since the last tick moves the share of new INVITEs
 * refused. */
static void busy_follow(void)
{
	long long now = wall_ns(), busy = busy_ns();
	double share = shed_share;

	if (busy < 0 || now <= last_wall_ns)
		return;
	double load = (double)(busy - last_busy_ns) / (double)(now - last_wall_ns);
	last_wall_ns = now;
	last_busy_ns = busy;
	bool high = load > BUSY_HIGH;
	if (high && was_high)
		share = shed_share + STEP_UP > SHED_MAX ? SHED_MAX : shed_share + STEP_UP;
	else if (load < BUSY_LOW)
		share = shed_share - STEP_DOWN < 0.001 ? 0 : shed_share - STEP_DOWN;
	was_high = high;
	if (share > 0 && shed_share == 0)
		px_log_warning("chan_sip: the SIP thread is overloaded (busy %.0f %% of the last "
			       "%d ms): refusing some new calls with 503",
			       load * 100, TICK_MS);
	else if (share == 0 && shed_share > 0) {
		px_log_notice("chan_sip: overload over; %lu new calls were refused", shed_total);
		shed_total = 0;
	}
	shed_share = share;
	atomic_store(&view_refusing, shed_share > 0);
}

static void tick(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	long long queued;
	int level = queue_read(&queued);

	(void)magic;
	(void)t;
	(void)arg;
	if (level >= 0) {
		/* With a readable UDP queue, the queue alone decides. */
		shed_share = 0;
		queue_follow(level, queued);
	} else {
		busy_follow();
	}
	if (++ticks % TICKS_PER_REPORT == 0 && shed_count) {
		if (level >= 0)
			px_verbose(2,
				   "chan_sip: refused %lu new calls in the last second (overload: "
				   "messages wait in the socket queue)",
				   shed_count);
		else
			px_verbose(2,
				   "chan_sip: refused %lu new calls in the last second (overload, "
				   "%.0f %% of new calls)",
				   shed_count, shed_share * 100);
		shed_count = 0;
	}
}

bool sip_overload_refuse(bool has_credentials)
{
	double *credit = has_credentials ? &shed_credit_auth : &shed_credit;
	long long now = wall_ns();

	if (now - queue_looked_ns >= QUEUE_LOOK_NS) {
		long long queued;
		int level = queue_read(&queued);

		queue_looked_ns = now;
		if (level >= 0)
			queue_follow(level, queued);
	}
	if (queue_level == 2 || (queue_level == 1 && !has_credentials)) {
		shed_total++;
		shed_count++;
		atomic_fetch_add(&view_refused, 1);
		return true;
	}
	if (shed_share <= 0)
		return false;
	/* An INVITE with credentials most often answers our own challenge, and
	 * refusing it wastes that round trip: it is refused at a quarter of the
	 * share. It cannot be exempt: a phone that sends credentials with
	 * every INVITE (or a flood with a made-up Authorization header) must
	 * be shed too. */
	*credit += has_credentials ? shed_share / 4 : shed_share;
	if (*credit < 1)
		return false;
	*credit -= 1;
	shed_count++;
	shed_total++;
	atomic_fetch_add(&view_refused, 1);
	return true;
}

void sip_overload_describe(char *buf, size_t size)
{
	int n = atomic_load(&view_sockets);
	const char *state = atomic_load(&view_refusing) ? "refusing new calls" : "not refusing";
	unsigned long refused = atomic_load(&view_refused);

	if (n > 0)
		snprintf(buf, size,
			 "by the queue of %d UDP socket%s (%lld of %lld kB at the last look); %s; "
			 "%lu new calls refused since start",
			 n, n == 1 ? "" : "s", atomic_load(&view_queued) / 1024,
			 atomic_load(&view_buffer) / 1024, state, refused);
	else
		snprintf(buf, size,
			 "by the SIP thread's CPU (no UDP socket to watch); %s; %lu new calls "
			 "refused since start",
			 state, refused);
}

int sip_overload_start(struct su_root_s *root, const int *udp_fds, size_t udp_n)
{
	snprintf(schedstat_path, sizeof(schedstat_path), "/proc/self/task/%ld/schedstat",
		 (long)syscall(SYS_gettid));
	shed_share = shed_credit = shed_credit_auth = 0;
	was_high = false;
	shed_count = shed_total = 0;
	queue_level = 0;
	queue_looked_ns = 0;
	for (queue_nfds = 0; queue_nfds < udp_n && queue_nfds < QUEUE_SOCKETS; queue_nfds++)
		queue_fds[queue_nfds] = udp_fds[queue_nfds];
	atomic_store(&view_sockets, (int)queue_nfds);
	atomic_store(&view_queued, 0);
	atomic_store(&view_buffer, 0);
	atomic_store(&view_refusing, false);
	atomic_store(&view_refused, 0);
	last_wall_ns = wall_ns();
	last_busy_ns = busy_ns();
	if (last_busy_ns < 0 && !queue_nfds) {
		px_log_warning("chan_sip: cannot read %s: no overload control", schedstat_path);
		return 0;
	}
	timer = su_timer_create(su_root_task(root), TICK_MS);
	if (!timer || su_timer_set_for_ever(timer, tick, NULL) < 0) {
		su_timer_destroy(timer);
		timer = NULL;
		return -1;
	}
	return 0;
}

void sip_overload_stop(void)
{
	su_timer_destroy(timer);
	timer = NULL;
	shed_share = 0;
	queue_nfds = 0;
	queue_level = 0;
	atomic_store(&view_sockets, 0);
	atomic_store(&view_refusing, false);
}
