/*
 * Takes two of the four system calls sofia-sip makes per datagram off its
 * thread. For every datagram its UDP transport receives, sofia asks the
 * kernel for the next datagram's size (ioctl FIONREAD) to allocate the
 * buffer, then reads it (recvmsg); before every datagram it sends, it reads
 * and so clears the socket's pending error (getsockopt SO_ERROR), then
 * sends (sendmsg). On this project's virtual machines a system call costs
 * over a microsecond, and those two were 14.5 of the SIP thread's 43 system
 * calls a call. plexusd defines ioctl, recvmsg, recv (and the fortified
 * __recv_chk), getsockopt and sendmsg itself (the executable's definitions are the ones every
 * library binds to, as core/pollspin.c does for epoll_wait). For the sockets a thread named with
 * px_thread_dgram_shortcut, on that thread only:
 *
 *  - FIONREAD reads the datagram itself (one recvmsg into a buffer of the
 *    socket's own) and answers its size; the recvmsg or recv that follows
 *    is served from that buffer without a system call. What the read got
 *    is what the caller gets: the datagram and its source address, a
 *    zero-length datagram (FIONREAD then answers 0, as the kernel does), or
 *    an error (FIONREAD answers 1 so that the caller reads, and the read
 *    fails with that error). An empty queue answers 0, as the kernel does.
 *  - getsockopt SO_ERROR answers 0 without asking. An ICMP error the kernel
 *    holds for the socket then makes the next send fail with that error
 *    (and clears it), so sendmsg, when it fails with an error an ICMP
 *    message can leave (ECONNREFUSED ...), sends once more: the datagram
 *    goes out and the error is dropped, as reading SO_ERROR first did. The
 *    error itself still reaches sofia through the socket's error queue
 *    (IP_RECVERR), which is how sofia learns of it.
 *
 * Every other thread, socket, request and flag goes straight to the C
 * library. A held datagram is read only by recvmsg or recv with no flags
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <plexus/core.h>

/* Sockets one thread may name: sofia's UDP transport binds one per
 * address family and address. */
#define SHORTCUT_MAX 8
/* The largest UDP payload (IPv6, 65535 less the UDP header) fits. */
#define HOLD_SIZE 65536

struct shortcut {
	int fd;
	bool held; /* read from the kernel, not yet by the caller */
	int err;   /* the read failed with this (held) */
	size_t len;
	socklen_t namelen;
	struct sockaddr_storage name;
	unsigned char *data; /* HOLD_SIZE */
};

typedef int ioctl_fn(int, unsigned long, ...);
typedef ssize_t recvmsg_fn(int, struct msghdr *, int);
typedef ssize_t recv_fn(int, void *, size_t, int);
typedef ssize_t sendmsg_fn(int, const struct msghdr *, int);
typedef int getsockopt_fn(int, int, int, void *, socklen_t *);
typedef ssize_t recv_chk_fn(int, void *, size_t, size_t, int);

static ioctl_fn *libc_ioctl;
static recvmsg_fn *libc_recvmsg;
static recv_fn *libc_recv;
static sendmsg_fn *libc_sendmsg;
static getsockopt_fn *libc_getsockopt;
static recv_chk_fn *libc_recv_chk;

/* A small array, allocated by the thread that names a socket, so that the
 * hundreds of threads that never do carry only a pointer and a count. */
static _Thread_local struct shortcut *shortcuts;
static _Thread_local unsigned nshortcuts;

/* Another library's constructor may call these before ours has run. */
static void find_libc(void)
{
	libc_ioctl = (ioctl_fn *)dlsym(RTLD_NEXT, "ioctl");
	libc_recvmsg = (recvmsg_fn *)dlsym(RTLD_NEXT, "recvmsg");
	libc_recv = (recv_fn *)dlsym(RTLD_NEXT, "recv");
	libc_sendmsg = (sendmsg_fn *)dlsym(RTLD_NEXT, "sendmsg");
	libc_getsockopt = (getsockopt_fn *)dlsym(RTLD_NEXT, "getsockopt");
	libc_recv_chk = (recv_chk_fn *)dlsym(RTLD_NEXT, "__recv_chk");
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
	*s = (struct shortcut){.fd = fd, .data = malloc(HOLD_SIZE)};
	if (!s->data)
		return -1;
	nshortcuts++;
	return 0;
}

void px_thread_dgram_shortcuts_end(void)
{
	for (unsigned i = 0; i < nshortcuts; i++)
		free(shortcuts[i].data);
	free(shortcuts);
	shortcuts = NULL;
	nshortcuts = 0;
}

/* The read FIONREAD does on a shortcut socket. */
static void hold_next(struct shortcut *s)
{
	struct iovec iov = {.iov_base = s->data, .iov_len = HOLD_SIZE};
	struct msghdr m = {.msg_name = &s->name,
			   .msg_namelen = sizeof(s->name),
			   .msg_iov = &iov,
			   .msg_iovlen = 1};
	ssize_t n = libc_recvmsg(s->fd, &m, MSG_TRUNC);

	if (n < 0) {
		/* Nothing queued: not held, and FIONREAD answers 0. */
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return;
		s->err = errno;
	} else {
		s->err = 0;
		s->len = (size_t)n;
		s->namelen = m.msg_namelen;
	}
	s->held = true;
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
	if (!s->held)
		hold_next(s);
	if (!s->held)
		*(int *)arg = 0;
	else if (s->err)
		*(int *)arg = 1;
	else
		*(int *)arg = (int)(s->len < HOLD_SIZE ? s->len : HOLD_SIZE);
	return 0;
}

#define SERVED_FLAGS (MSG_DONTWAIT | MSG_TRUNC | MSG_PEEK)

/* Hands the held datagram (or error) to a read with these buffers: the
 * datagram's length with MSG_TRUNC in flags, else what was copied. */
static ssize_t take_held(struct shortcut *s, const struct iovec *iov, size_t iovlen, int flags,
			 int *msg_flags, void *name, socklen_t *namelen)
{
	size_t have = s->len < HOLD_SIZE ? s->len : HOLD_SIZE, copied = 0;

	if (!(flags & MSG_PEEK))
		s->held = false;
	if (s->err) {
		errno = s->err;
		return -1;
	}
	for (size_t i = 0; i < iovlen && copied < have; i++) {
		size_t n = have - copied < iov[i].iov_len ? have - copied : iov[i].iov_len;
		memcpy(iov[i].iov_base, s->data + copied, n);
		copied += n;
	}
	if (msg_flags)
		*msg_flags = copied < s->len ? MSG_TRUNC : 0;
	if (name && namelen) {
		memcpy(name, &s->name, *namelen < s->namelen ? *namelen : s->namelen);
		*namelen = s->namelen;
	}
	return (flags & MSG_TRUNC) ? (ssize_t)s->len : (ssize_t)copied;
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	struct shortcut *s;

	LIBC(recvmsg);
	if (!nshortcuts || (flags & ~SERVED_FLAGS) || !(s = shortcut_of(fd)) || !s->held)
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
	if (!nshortcuts || (flags & ~SERVED_FLAGS) || !(s = shortcut_of(fd)) || !s->held)
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
	    !s->held)
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
