/*
 * The daemon itself: version, where it runs from, and requests to stop or
 * reload that any thread may make (they are carried out by the main thread).
 */
#ifndef PLEXUS_CORE_H
#define PLEXUS_CORE_H

#include <stdbool.h>
#include <time.h>

#include <plexus/config.h>
#include <plexus/error.h>

const char *px_version(void);

/* Directory of the configuration files (-c), and the main file (-C). */
const char *px_core_config_dir(void);
const char *px_core_main_config(void);
/* Load a configuration file by name, relative to the configuration
 * directory unless absolute. */
int px_core_load_config(const char *name, px_config **out, px_err *err);

time_t px_core_start_time(void);
time_t px_core_reload_time(void);

enum px_stop_mode {
	PX_STOP_NOW,        /* hang everything up and stop */
	PX_STOP_GRACEFULLY, /* refuse new work, stop when the current work is done */
};
void px_core_request_stop(enum px_stop_mode mode);
void px_core_request_reload(void);
bool px_core_stopping(void);

/*
 * Threads the daemon starts are named and listed by "core show threads".
 * px_thread_start starts fn(arg) as a joinable thread named name.
 */
#include <pthread.h>
int px_thread_start(pthread_t *out, const char *name, void *(*fn)(void *), void *arg);
/* A thread that was not started by px_thread_start (main) registers itself. */
void px_thread_register_self(const char *name);
/* Called by a thread just before it returns. */
void px_thread_unregister_self(void);
/*
 * Called by a thread that carries calls (signalling, dialplan sessions,
 * media) as it starts: it runs at plexus.conf's call_nice from then on,
 * and follows a reload that changes it, ahead of the daemon's other work
 * and of other programs on the machine.
 */
void px_thread_carries_calls(void);
/*
 * Called instead by the one thread that every call passes (chan_sip's SIP
 * thread, where all signalling is handled): it runs five nice levels
 * ahead of call_nice (-10 with the default -5), so that the session
 * threads, hundreds of which become runnable at once when calls slow
 * down, do not take the cores from the thread that clears the backlog.
 * When the kernel grants call_nice but not that, it runs at call_nice and
 * the log says so once.
 */
void px_thread_carries_every_call(void);
/*
 * For a thread that runs a library's event loop which polls with a zero
 * timeout while its next timer is less than a millisecond away (sofia-sip):
 * after a few such polls in a row found nothing, the thread's next one
 * waits up to a millisecond instead. Timers may fire up to 1 ms late.
 */
void px_thread_avoid_poll_spin(void);
/*
 * For a thread that runs sofia-sip's UDP transport on datagram socket fd:
 * on this thread, the size query (ioctl FIONREAD) before each receive reads
 * what is queued, up to 8 datagrams, so that the receives after it cost no
 * system call, and epoll_wait reports the socket readable while datagrams
 * are held; the pending-error read (getsockopt SO_ERROR) before each send
 * answers 0 without one, and a send that fails on an error an ICMP message
 * left pending is made once more instead (core/dgram_shortcut.c). The
 * thread calls px_thread_dgram_shortcuts_begin before its event loop
 * watches its sockets (its epoll_ctl calls are followed from then on), and
 * must read fd only with recvmsg or recv. px_thread_dgram_shortcut returns
 * 0, or -1 with errno (not a datagram socket, ENOSPC past 8 sockets).
 * px_thread_dgram_shortcuts_end undoes it all for the calling thread.
 */
void px_thread_dgram_shortcuts_begin(void);
int px_thread_dgram_shortcut(int fd);
void px_thread_dgram_shortcuts_end(void);

#endif
