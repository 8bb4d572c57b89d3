/*
 * Between core/dgram_shortcut.c and core/pollspin.c: the datagrams a
 * thread's shortcut sockets hold are shown to its epoll_wait.
 */
#ifndef PLEXUS_DGRAM_SHORTCUT_H
#define PLEXUS_DGRAM_SHORTCUT_H

#include <sys/epoll.h>

/* For epoll_wait(epfd, events, maxevents) on the calling thread: the
 * shortcut sockets that hold datagrams read ahead and that epfd watches
 * for input, as EPOLLIN events with the data epfd has for them; 0 when
 * there are none (or they were offered by the last call and none was read
 * since: then the kernel must be asked). */
int px_dgram_held_events(int epfd, struct epoll_event *events, int maxevents);

#endif
