/*
 * Takes most of sofia-sip's per-datagram system calls off its thread. For
 * every datagram its UDP transport receives, sofia asks the kernel for the
 * next datagram's size (ioctl FIONREAD) to allocate the buffer, then reads
 * it (recvmsg), and waits in epoll_wait before the next one; before every
 * datagram it sends, it reads and so clears the socket's pending error
 * (getsockopt SO_ERROR), then sends (sendmsg). On this project's virtual
 * machines a system call costs over a microsecond, and at 1500 calls/s
 * those were 43 system calls a call on the SIP thread. plexusd defines
 * ioctl, recvmsg, recv (and the fortified __recv_chk), getsockopt,
 * sendmsg and epoll_ctl itself (the executable's definitions are the ones
 * every library binds to; core/pollspin.c does the same for epoll_wait).
 * For the sockets a thread named with px_thread_dgram_shortcut, on that
 * thread only:
 *
 *  - FIONREAD reads what is queued, up to RING datagrams in one recvmmsg
 *    into the socket's own buffers, and answers the first one's size; the
 *    recvmsg or recv that follows is served from there without a system
 *    call, and so are the FIONREADs and reads of the others. What the read
 *    got is what the caller gets: each datagram with its source address, a
 *    zero-length datagram (FIONREAD then answers 0, as the kernel does), an
 *    error (FIONREAD answers 1 so that the caller reads, and the read fails
 *    with that error). An empty queue answers 0, as the kernel does.
 *  - While datagrams are held, the thread's epoll_wait on the set that
 *    watches the socket for input (learnt from the thread's own epoll_ctl
 *    calls since px_thread_dgram_shortcuts_begin) returns the socket as
 *    readable without asking the kernel, so the loop comes back for them:
 *    the kernel's queue no longer shows them. A socket the thread's epoll
 *    set does not watch is read one datagram at a time, which needs
 *    nothing from epoll_wait. The other descriptors of that set wait at
 *    most RING - 1 datagrams.
 *  - getsockopt SO_ERROR answers 0 without asking. An ICMP error the kernel
 *    holds for the socket then makes the next send fail with that error
 *    (and clears it), so sendmsg, when it fails with an error an ICMP
 *    message can leave (ECONNREFUSED ...), sends once more: the datagram
 *    goes out and the error is dropped, as reading SO_ERROR first did. The
 *    error itself still reaches sofia through the socket's error queue
 *    (IP_RECVERR), which is how sofia learns of it.
 *
 * Every other thread, socket, request and flag goes straight to the C
 * library. Held datagrams are read only by recvmsg or recv with no flags
 * but MSG_DONTWAIT, MSG_TRUNC or MSG_PEEK, and without ancillary data,
 * which is how sofia reads: the thread must not read a shortcut socket any
 * other way.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <plexus/core.h>

#include "dgram_shortcut.h"

/* Sockets one thread may name: sofia's UDP transport binds one per
 * address family and address. */
#define SHORTCUT_MAX 8
/* The largest UDP payload (IPv6, 65535 less the UDP header) fits. */
#define HOLD_SIZE 65536
/* Datagrams one read takes at most. At 1200 calls/s, with the SIP thread
 * 60 % busy, 89 % of its reads found more datagrams queued behind the one
 * they took, most often 3 to 5 (measured through SO_MEMINFO). */
#define RING 8

struct held_dgram {
	size_t len;
	socklen_t namelen;
	struct sockaddr_storage name;
};

/* Where the thread's epoll sets watch a descriptor, from its epoll_ctl. */
struct watch {
	int epfd, fd;
	struct epoll_event ev;
};

struct shortcut {
	int fd;
	/* The datagrams the last read took: d[next] .. d[count - 1] are not
	 * yet the caller's; after them, err (0: none) was the read's error. */
	unsigned next, count;
	int err;
	struct held_dgram d[RING];
	unsigned char *data; /* RING x HOLD_SIZE */
};

typedef int ioctl_fn(int, unsigned long, ...);
typedef ssize_t recvmsg_fn(int, struct msghdr *, int);
typedef ssize_t recv_fn(int, void *, size_t, int);
typedef ssize_t sendmsg_fn(int, const struct msghdr *, int);
typedef int getsockopt_fn(int, int, int, void *, socklen_t *);
typedef ssize_t recv_chk_fn(int, void *, size_t, size_t, int);
typedef int epoll_ctl_fn(int, int, int, struct epoll_event *);

static ioctl_fn *libc_ioctl;
static recvmsg_fn *libc_recvmsg;
static recv_fn *libc_recv;
static sendmsg_fn *libc_sendmsg;
static getsockopt_fn *libc_getsockopt;
static recv_chk_fn *libc_recv_chk;
static epoll_ctl_fn *libc_epoll_ctl;

/* A small array, allocated by the thread that names a socket, so that the
 * hundreds of threads that never do carry only a pointer and a count. */
static _Thread_local struct shortcut *shortcuts;
static _Thread_local unsigned nshortcuts;
/* Since px_thread_dgram_shortcuts_begin: the thread's epoll_ctl. */
static _Thread_local bool watching;
static _Thread_local struct watch *watches;
static _Thread_local size_t nwatches, watches_cap;
/* Held datagrams were last handed to epoll_wait and none has been read
 * since: the next epoll_wait asks the kernel (no loop on a socket its
 * caller stopped reading). */
static _Thread_local bool offered_unread;

/* Another library's constructor may call these before ours has run. */
static void find_libc(void)
{
	libc_ioctl = (ioctl_fn *)dlsym(RTLD_NEXT, "ioctl");
	libc_recvmsg = (recvmsg_fn *)dlsym(RTLD_NEXT, "recvmsg");
	libc_recv = (recv_fn *)dlsym(RTLD_NEXT, "recv");
	libc_sendmsg = (sendmsg_fn *)dlsym(RTLD_NEXT, "sendmsg");
	libc_getsockopt = (getsockopt_fn *)dlsym(RTLD_NEXT, "getsockopt");
	libc_recv_chk = (recv_chk_fn *)dlsym(RTLD_NEXT, "__recv_chk");
	libc_epoll_ctl = (epoll_ctl_fn *)dlsym(RTLD_NEXT, "epoll_ctl");
}

__attribute__((constructor)) static void find_libc_at_start(void)
{
	find_libc();
}

#define LIBC(fn)                                                                                   \
	do {                                                                                       \
		if (!libc_##fn)                                                                    \
			find_libc();                                                               \
		if (!libc_##fn) {                                                                  \
			errno = ENOSYS;                                                            \
			return -1;                                                                 \
		}                                                                                  \
	} while (0)

static struct shortcut *shortcut_of(int fd)
{
	for (unsigned i = 0; i < nshortcuts; i++)
		if (shortcuts[i].fd == fd)
			return &shortcuts[i];
	return NULL;
}

int px_thread_dgram_shortcut(int fd)
{
	struct shortcut *s;
	int type = 0;
	socklen_t len = sizeof(type);

	if (shortcut_of(fd))
		return 0;
	LIBC(getsockopt);
	if (libc_getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -1;
	if (type != SOCK_DGRAM) {
		errno = ENOTSUP;
		return -1;
	}
	if (nshortcuts == SHORTCUT_MAX) {
		errno = ENOSPC;
		return -1;
	}
	if (!shortcuts && !(shortcuts = calloc(SHORTCUT_MAX, sizeof(*shortcuts))))
		return -1;
	s = &shortcuts[nshortcuts];
	*s = (struct shortcut){.fd = fd, .data = malloc((size_t)RING * HOLD_SIZE)};
	if (!s->data)
		return -1;
	nshortcuts++;
	return 0;
}

void px_thread_dgram_shortcuts_begin(void)
{
	watching = true;
}

void px_thread_dgram_shortcuts_end(void)
{
	for (unsigned i = 0; i < nshortcuts; i++)
		free(shortcuts[i].data);
	free(shortcuts);
	shortcuts = NULL;
	nshortcuts = 0;
	free(watches);
	watches = NULL;
	nwatches = watches_cap = 0;
	watching = offered_unread = false;
}

static struct watch *watch_of(int fd)
{
	for (size_t i = 0; i < nwatches; i++)
		if (watches[i].fd == fd)
			return &watches[i];
	return NULL;
}

/* Keeps the table of what this thread's epoll sets watch. A descriptor in
 * two sets keeps the last; sofia's loop has one. */
static void watch_update(int epfd, int op, int fd, const struct epoll_event *ev)
{
	struct watch *w = watch_of(fd);

	if (op == EPOLL_CTL_DEL) {
		if (w && w->epfd == epfd)
			*w = watches[--nwatches];
		return;
	}
	if (!ev)
		return;
	if (!w) {
		if (nwatches == watches_cap) {
			size_t cap = watches_cap ? 2 * watches_cap : 16;
			struct watch *more = realloc(watches, cap * sizeof(*more));
			/* Without room the descriptor is not known to be
			 * watched: its datagrams are then read one at a time. */
			if (!more)
				return;
			watches = more;
			watches_cap = cap;
		}
		w = &watches[nwatches++];
	}
	*w = (struct watch){.epfd = epfd, .fd = fd, .ev = *ev};
}

int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int r;

	LIBC(epoll_ctl);
	r = libc_epoll_ctl(epfd, op, fd, ev);
	if (r == 0 && watching)
		watch_update(epfd, op, fd, ev);
	return r;
}

/* The epoll set that waits for input on s, if any. */
static const struct watch *input_watch(const struct shortcut *s)
{
	const struct watch *w = watching ? watch_of(s->fd) : NULL;

	return w && (w->ev.events & EPOLLIN) ? w : NULL;
}

static bool holds(const struct shortcut *s)
{
	return s->next < s->count || s->err;
}

int px_dgram_held_events(int epfd, struct epoll_event *events, int maxevents)
{
	int n = 0;

	if (!nshortcuts)
		return 0;
	if (offered_unread) {
		offered_unread = false;
		return 0;
	}
	for (unsigned i = 0; i < nshortcuts && n < maxevents; i++) {
		const struct watch *w;
		if (!holds(&shortcuts[i]) || !(w = input_watch(&shortcuts[i])) || w->epfd != epfd)
			continue;
		events[n] = w->ev;
		events[n].events = EPOLLIN;
		n++;
	}
	offered_unread = n > 0;
	return n;
}

/* The read FIONREAD does on a shortcut socket: all that is queued, up to
 * RING datagrams, when epoll_wait can bring the caller back for them. */
static void hold_next(struct shortcut *s)
{
	struct mmsghdr m[RING];
	struct iovec iov[RING];
	unsigned want = input_watch(s) ? RING : 1;
	int n;

	for (unsigned i = 0; i < want; i++) {
		iov[i] = (struct iovec){.iov_base = s->data + (size_t)i * HOLD_SIZE,
					.iov_len = HOLD_SIZE};
		m[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &s->d[i].name,
						    .msg_namelen = sizeof(s->d[i].name),
						    .msg_iov = &iov[i],
						    .msg_iovlen = 1}};
	}
	s->next = s->count = 0;
	/* Never waits, as FIONREAD does not, even on a blocking socket. */
	n = recvmmsg(s->fd, m, want, MSG_TRUNC | MSG_DONTWAIT, NULL);
	if (n < 0) {
		/* Nothing queued: nothing held, and FIONREAD answers 0. */
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			s->err = errno;
		return;
	}
	for (int i = 0; i < n; i++) {
		s->d[i].len = m[i].msg_len;
		s->d[i].namelen = m[i].msg_hdr.msg_namelen;
	}
	s->count = (unsigned)n;
}

int ioctl(int fd, unsigned long request, ...)
{
	struct shortcut *s;
	va_list ap;
	void *arg;

	va_start(ap, request);
	arg = va_arg(ap, void *);
	va_end(ap);
	LIBC(ioctl);
	if (request != FIONREAD || !nshortcuts || !(s = shortcut_of(fd)))
		return libc_ioctl(fd, request, arg);
	if (!arg) {
		errno = EFAULT;
		return -1;
	}
	if (!holds(s))
		hold_next(s);
	if (s->next < s->count)
		*(int *)arg = (int)(s->d[s->next].len < HOLD_SIZE ? s->d[s->next].len : HOLD_SIZE);
	else
		*(int *)arg = s->err ? 1 : 0;
	return 0;
}

#define SERVED_FLAGS (MSG_DONTWAIT | MSG_TRUNC | MSG_PEEK)

/* Hands the next held datagram (or the error after them) to a read with
 * these buffers: the datagram's length with MSG_TRUNC in flags, else what
 * was copied. */
static ssize_t take_held(struct shortcut *s, const struct iovec *iov, size_t iovlen, int flags,
			 int *msg_flags, void *name, socklen_t *namelen)
{
	const struct held_dgram *d = &s->d[s->next];
	const unsigned char *data = s->data + (size_t)s->next * HOLD_SIZE;
	size_t have, copied = 0;

	offered_unread = false;
	if (s->next == s->count) {
		errno = s->err;
		if (!(flags & MSG_PEEK))
			s->err = 0;
		return -1;
	}
	if (!(flags & MSG_PEEK))
		s->next++;
	have = d->len < HOLD_SIZE ? d->len : HOLD_SIZE;
	for (size_t i = 0; i < iovlen && copied < have; i++) {
		size_t n = have - copied < iov[i].iov_len ? have - copied : iov[i].iov_len;
		memcpy(iov[i].iov_base, data + copied, n);
		copied += n;
	}
	if (msg_flags)
		*msg_flags = copied < d->len ? MSG_TRUNC : 0;
	if (name && namelen) {
		memcpy(name, &d->name, *namelen < d->namelen ? *namelen : d->namelen);
		*namelen = d->namelen;
	}
	return (flags & MSG_TRUNC) ? (ssize_t)d->len : (ssize_t)copied;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct shortcut *s;

	LIBC(recvmsg);
	if (!nshortcuts || (flags & ~SERVED_FLAGS) || !(s = shortcut_of(fd)) || !holds(s))
		return libc_recvmsg(fd, msg, flags);
	msg->msg_controllen = 0;
	return take_held(s, msg->msg_iov, msg->msg_iovlen, flags, &msg->msg_flags, msg->msg_name,
			 msg->msg_name ? &msg->msg_namelen : NULL);
}

ssize_t recv(int fd, void *buf, size_t len, int flags)
{
	struct shortcut *s;
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	LIBC(recv);
	if (!nshortcuts || (flags & ~SERVED_FLAGS) || !(s = shortcut_of(fd)) || !holds(s))
		return libc_recv(fd, buf, len, flags);
	return take_held(s, &iov, 1, flags, NULL, NULL, NULL);
}

/* recv as a caller built with _FORTIFY_SOURCE calls it (sofia-sip is):
 * the C library's checks that len fits the buffer, and aborts if not. */
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags);
ssize_t __recv_chk(int fd, void *buf, size_t len, size_t buflen, int flags)
{
	struct shortcut *s;
	struct iovec iov = {.iov_base = buf, .iov_len = len};

	LIBC(recv_chk);
	if (len > buflen || !nshortcuts || (flags & ~SERVED_FLAGS) || !(s = shortcut_of(fd)) ||
	    !holds(s))
		return libc_recv_chk(fd, buf, len, buflen, flags);
	return take_held(s, &iov, 1, flags, NULL, NULL, NULL);
}

int getsockopt(int fd, int level, int name, void *value, socklen_t *len)
{
	LIBC(getsockopt);
	if (!nshortcuts || level != SOL_SOCKET || name != SO_ERROR || !value || !len ||
	    *len < sizeof(int) || !shortcut_of(fd))
		return libc_getsockopt(fd, level, name, value, len);
	*(int *)value = 0;
	*len = sizeof(int);
	return 0;
}

/* Errors an ICMP message leaves pending on a UDP socket (the kernel's
 * icmp_err_convert and icmpv6_err_convert). */
static bool icmp_error(int err)
{
	switch (err) {
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EHOSTDOWN:
	case ENONET:
	case ENOPROTOOPT:
	case EMSGSIZE:
	case EOPNOTSUPP:
	case EACCES:
	case EPROTO:
		return true;
	default:
		return false;
	}
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t n;

	LIBC(sendmsg);
	n = libc_sendmsg(fd, msg, flags);
	/* A genuine error of this send (no route ...) fails the second time
	 * too, and is returned. */
	if (n < 0 && nshortcuts && icmp_error(errno) && shortcut_of(fd))
		n = libc_sendmsg(fd, msg, flags);
	return n;
}
