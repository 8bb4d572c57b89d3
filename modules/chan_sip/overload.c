/*
 * Overload control of the SIP thread. Every message of every call goes
 * through this one thread; past its capacity its socket queue grows, every
 * call slows down, phones retransmit, which adds load, and within seconds
 * no call at all gets through. Every quarter of a second this file
 * measures how much of it the SIP thread spent running or waiting for a
 * CPU (its CPU time plus its run-queue delay from /proc schedstat). Above
 * 95 % twice in a row (one busy quarter is only a burst) it refuses another
 * fifth of new calls with 503 and Retry-After (the collapse takes about
 * three seconds to build); below 90 % it accepts a twentieth more (a thread
 * busy 80-90 % of the time still keeps up: measured, its socket queue stays
 * under 10 KB). New INVITEs are refused; those with credentials (most
 * often answering our challenge: refusing them wastes it) at a quarter of
 * the share. In-dialog requests, REGISTER and responses are untouched. SIP
 * thread only.
 */
#include <stdio.h>
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

static su_timer_t *timer;
static char schedstat_path[64];
static long long last_wall_ns, last_busy_ns;
static double shed_share;  /* of fresh INVITEs refused now */
static double shed_credit;      /* spreads the refusals evenly */
static double shed_credit_auth; /* the same for INVITEs with credentials */
static unsigned long shed_count, shed_total;
static unsigned ticks;
static bool was_high;

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

static void tick(su_root_magic_t *magic, su_timer_t *t, su_timer_arg_t *arg)
{
	long long now = wall_ns(), busy = busy_ns();
	double share = shed_share;

	(void)magic;
	(void)t;
	(void)arg;
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
	else if (share == 0 && shed_share > 0)
		px_log_notice("chan_sip: overload over; %lu new calls were refused", shed_total);
	if (++ticks % TICKS_PER_REPORT == 0 && shed_count) {
		px_verbose(2,
			   "chan_sip: refused %lu new calls in the last second (overload, %.0f %%)",
			   shed_count, shed_share * 100);
		shed_count = 0;
	}
	if (share == 0 && shed_share > 0)
		shed_total = 0;
	shed_share = share;
}

bool sip_overload_refuse(bool has_credentials)
{
	double *credit = has_credentials ? &shed_credit_auth : &shed_credit;

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
	return true;
}

int sip_overload_start(struct su_root_s *root)
{
	snprintf(schedstat_path, sizeof(schedstat_path), "/proc/self/task/%ld/schedstat",
		 (long)syscall(SYS_gettid));
	shed_share = shed_credit = shed_credit_auth = 0;
	was_high = false;
	shed_count = shed_total = 0;
	last_wall_ns = wall_ns();
	last_busy_ns = busy_ns();
	if (last_busy_ns < 0) {
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
}
