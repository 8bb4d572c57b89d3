/*
 * Keeps a library's event loop from spinning on zero-timeout polls.
 * sofia-sip computes its poll timeout in whole milliseconds, rounding the
 * time left to its next timer down, so during the last millisecond before
 * every timer its loop calls epoll_wait with a zero timeout again and again.
 * Under call load a transaction timer falls due almost every millisecond,
 * and the SIP thread spent most of its idle time in that spin (measured at
 * 600 calls/s: about 34,000 empty epoll_wait calls a second, more than the
 * SIP messages it handled). plexusd defines epoll_wait itself, and the
 * executable's definition is the one every library binds to. On a thread
 * that asked for it with px_thread_avoid_poll_spin, after POLL_SPIN_LIMIT
 * zero-timeout waits in a row have found nothing, the next one waits up to
 * a millisecond: a timer then fires at most a millisecond late. The few
 * zero-timeout waits allowed first keep sofia's own short chains of
 * messages to itself (which do not wake the poll) from being delayed.
 * Every other thread's epoll_wait goes straight to the C library. On any
 * thread, datagrams core/dgram_shortcut.c read ahead are reported first,
 * without asking the kernel.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>

#include <plexus/core.h>

#include "dgram_shortcut.h"

/* Zero-timeout waits that may find nothing before one is turned into a
 * millisecond's wait. */
#define POLL_SPIN_LIMIT 3

typedef int epoll_wait_fn(int, struct epoll_event *, int, int);

static epoll_wait_fn *libc_epoll_wait;
static _Thread_local bool avoid_spin;
static _Thread_local unsigned empty_zero_waits;

__attribute__((constructor)) static void find_libc_epoll_wait(void)
{
	libc_epoll_wait = (epoll_wait_fn *)dlsym(RTLD_NEXT, "epoll_wait");
}

void px_thread_avoid_poll_spin(void)
{
	avoid_spin = true;
	empty_zero_waits = 0;
}

int epoll_wait(int epfd, struct epoll_event *events, int maxevents, int timeout)
{
	int held;

	if (!libc_epoll_wait) {
		errno = ENOSYS;
		return -1;
	}
	/* Datagrams core/dgram_shortcut.c read ahead for this thread. */
	if ((held = px_dgram_held_events(epfd, events, maxevents)) > 0) {
		empty_zero_waits = 0;
		return held;
	}
	if (!avoid_spin || timeout != 0)
		return libc_epoll_wait(epfd, events, maxevents, timeout);
	if (empty_zero_waits >= POLL_SPIN_LIMIT)
		timeout = 1;
	int n = libc_epoll_wait(epfd, events, maxevents, timeout);
	if (n == 0)
		empty_zero_waits = timeout ? 0 : empty_zero_waits + 1;
	else
		empty_zero_waits = 0;
	return n;
}
