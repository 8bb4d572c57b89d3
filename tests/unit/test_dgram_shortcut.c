/*
 * Unit tests of core/dgram_shortcut.c, called as sofia-sip calls it: ioctl,
 * recvmsg, recv, getsockopt and sendmsg found by dynamic lookup (as
 * libsofia-sip-ua binds to them) are plexusd's. On a thread that named a
 * UDP socket, FIONREAD takes the datagram out of the kernel's queue (seen
 * by reading the queue with raw system calls, which bypass the shortcut)
 * and the read after it gets that datagram with its source address, its
 * length when truncated, a zero-length datagram, or the socket's pending
 * error; SO_ERROR reads 0 and a send over a pending ICMP error still goes
 * out. Other threads, and the thread after px_thread_dgram_shortcuts_end,
 * get the C library's behaviour, and a send over a pending error fails
 * there, which is what the shortcut's second try is for. A socket the
 * thread's epoll set watches (its epoll_ctl followed since
 * px_thread_dgram_shortcuts_begin) is read ahead, all queued datagrams in
 * one read, and that set's epoll_wait reports it readable while any are
 * held, before the set's other descriptors, unless the last report went
 * unread; one it does not watch is read one datagram at a time.
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/core.h>

typedef int ioctl_fn(int, unsigned long, ...);
typedef ssize_t recvmsg_fn(int, struct msghdr *, int);
typedef ssize_t recv_fn(int, void *, size_t, int);
typedef ssize_t sendmsg_fn(int, const struct msghdr *, int);
typedef int getsockopt_fn(int, int, int, void *, socklen_t *);
typedef int epoll_ctl_fn(int, int, int, struct epoll_event *);
typedef int epoll_wait_fn(int, struct epoll_event *, int, int);

static ioctl_fn *lib_ioctl;
static recvmsg_fn *lib_recvmsg;
static recv_fn *lib_recv;
static sendmsg_fn *lib_sendmsg;
static getsockopt_fn *lib_getsockopt;
static epoll_ctl_fn *lib_epoll_ctl;
static epoll_wait_fn *lib_epoll_wait;

/* A bound, non-blocking UDP socket on 127.0.0.1 and its address. */
struct udp {
	int fd;
	struct sockaddr_in addr;
};

static int udp_open(struct udp *u, bool recverr)
{
	socklen_t len = sizeof(u->addr);
	int on = 1;

	memset(&u->addr, 0, sizeof(u->addr));
	u->addr.sin_family = AF_INET;
	u->addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
	if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&u->addr, sizeof(u->addr)) < 0 ||
	    getsockname(u->fd, (struct sockaddr *)&u->addr, &len) < 0)
		return -1;
	if (recverr && setsockopt(u->fd, SOL_IP, IP_RECVERR, &on, sizeof(on)) < 0)
		return -1;
	return 0;
}

static ssize_t send_to(const struct udp *from, const struct udp *to, const void *data, size_t len)
{
	return sendto(from->fd, data, len, 0, (const struct sockaddr *)&to->addr, sizeof(to->addr));
}

/* Through the library-visible sendmsg, as sofia sends. */
static ssize_t lib_send_len(const struct udp *from, const struct sockaddr_in *to, const void *data,
			    size_t len)
{
	struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
	struct msghdr m = {.msg_name = (void *)to,
			   .msg_namelen = sizeof(*to),
			   .msg_iov = &iov,
			   .msg_iovlen = 1};

	return lib_sendmsg(from->fd, &m, MSG_NOSIGNAL);
}

static ssize_t lib_send_to(const struct udp *from, const struct sockaddr_in *to, const char *data)
{
	return lib_send_len(from, to, data, strlen(data));
}

/* Bytes of the next datagram still in the kernel's queue (a raw peek that
 * no interposer sees), or -1 with EAGAIN when the queue is empty. */
static ssize_t kernel_peek(int fd)
{
	char buf[64];

	return syscall(SYS_recvfrom, fd, buf, sizeof(buf), MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC,
		       NULL, NULL);
}

static int fionread(int fd)
{
	int n = -1;

	if (lib_ioctl(fd, FIONREAD, &n) < 0)
		return -2;
	return n;
}

/* A port nobody listens on: bound, then closed. */
static struct sockaddr_in closed_port(void)
{
	struct udp u;

	CU_ASSERT_FATAL(udp_open(&u, false) == 0);
	close(u.fd);
	return u.addr;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};

	nanosleep(&ts, NULL);
}

static void test_libraries_find_ours(void)
{
	CU_ASSERT_PTR_NOT_NULL(lib_ioctl);
	CU_ASSERT_PTR_EQUAL(lib_ioctl, dlsym(RTLD_DEFAULT, "ioctl"));
	CU_ASSERT_PTR_NOT_EQUAL(lib_ioctl, dlsym(RTLD_NEXT, "ioctl"));
	CU_ASSERT_PTR_NOT_EQUAL(lib_recvmsg, dlsym(RTLD_NEXT, "recvmsg"));
	CU_ASSERT_PTR_NOT_EQUAL(lib_sendmsg, dlsym(RTLD_NEXT, "sendmsg"));
	CU_ASSERT_PTR_NOT_EQUAL(lib_epoll_ctl, dlsym(RTLD_NEXT, "epoll_ctl"));
}

static void test_fionread_takes_the_datagram(void)
{
	struct udp rx, tx;
	struct sockaddr_in from;
	char buf[32] = "";
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr m = {
		.msg_name = &from, .msg_namelen = sizeof(from), .msg_iov = &iov, .msg_iovlen = 1};

	CU_ASSERT_FATAL(udp_open(&rx, false) == 0 && udp_open(&tx, false) == 0);
	CU_ASSERT_FATAL(px_thread_dgram_shortcut(rx.fd) == 0);
	CU_ASSERT(send_to(&tx, &rx, "hello", 5) == 5);
	CU_ASSERT(send_to(&tx, &rx, "second!", 7) == 7);
	sleep_ms(5);

	CU_ASSERT_EQUAL(fionread(rx.fd), 5);
	CU_ASSERT_EQUAL(kernel_peek(rx.fd), 7); /* "hello" left the kernel's queue */
	CU_ASSERT_EQUAL(fionread(rx.fd), 5);    /* asked again: the same one */
	CU_ASSERT_EQUAL(lib_recvmsg(rx.fd, &m, 0), 5);
	CU_ASSERT(memcmp(buf, "hello", 5) == 0);
	CU_ASSERT_EQUAL(m.msg_namelen, sizeof(from));
	CU_ASSERT_EQUAL(from.sin_port, tx.addr.sin_port);
	CU_ASSERT_EQUAL(from.sin_addr.s_addr, tx.addr.sin_addr.s_addr);
	CU_ASSERT_EQUAL(m.msg_flags, 0);

	CU_ASSERT_EQUAL(fionread(rx.fd), 7);
	CU_ASSERT(kernel_peek(rx.fd) < 0 && errno == EAGAIN);
	memset(buf, 0, sizeof(buf));
	CU_ASSERT_EQUAL(lib_recv(rx.fd, buf, sizeof(buf), 0), 7);
	CU_ASSERT(memcmp(buf, "second!", 7) == 0);

	/* Nothing queued: 0, as the kernel says, and the read is the kernel's. */
	CU_ASSERT_EQUAL(fionread(rx.fd), 0);
	CU_ASSERT(lib_recv(rx.fd, buf, 1, 0) < 0 && errno == EAGAIN);

	px_thread_dgram_shortcuts_end();
	close(rx.fd);
	close(tx.fd);
}

static void test_zero_length_and_truncated(void)
{
	struct udp rx, tx;
	char buf[4];
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};

	CU_ASSERT_FATAL(udp_open(&rx, false) == 0 && udp_open(&tx, false) == 0);
	CU_ASSERT_FATAL(px_thread_dgram_shortcut(rx.fd) == 0);
	CU_ASSERT(send_to(&tx, &rx, "", 0) == 0);
	CU_ASSERT(send_to(&tx, &rx, "0123456789", 10) == 10);
	sleep_ms(5);

	/* sofia reads a zero-length datagram with a one-byte recv. */
	CU_ASSERT_EQUAL(fionread(rx.fd), 0);
	CU_ASSERT_EQUAL(kernel_peek(rx.fd), 10);
	CU_ASSERT_EQUAL(lib_recv(rx.fd, buf, 1, 0), 0);

	CU_ASSERT_EQUAL(fionread(rx.fd), 10);
	CU_ASSERT_EQUAL(lib_recvmsg(rx.fd, &m, 0), 4);
	CU_ASSERT(memcmp(buf, "0123", 4) == 0);
	CU_ASSERT(m.msg_flags & MSG_TRUNC);
	CU_ASSERT_EQUAL(fionread(rx.fd), 0); /* the rest of it is gone, as with the kernel */

	px_thread_dgram_shortcuts_end();
	close(rx.fd);
	close(tx.fd);
}

/* ICMP port unreachable for a datagram from u to a closed port: the error
 * is then pending on u. */
static void leave_icmp_error(const struct udp *u)
{
	struct sockaddr_in gone = closed_port();

	CU_ASSERT(sendto(u->fd, "x", 1, 0, (struct sockaddr *)&gone, sizeof(gone)) == 1);
	sleep_ms(20);
}

static void test_pending_error(void)
{
	struct udp a, b, plain;
	char buf[8] = "";
	int err = -1;
	socklen_t len = sizeof(err);

	CU_ASSERT_FATAL(udp_open(&a, true) == 0 && udp_open(&b, false) == 0);
	CU_ASSERT_FATAL(udp_open(&plain, true) == 0);
	CU_ASSERT_FATAL(px_thread_dgram_shortcut(a.fd) == 0);

	/* Without the shortcut the pending error fails the next send: the
	 * reason sofia reads SO_ERROR first. */
	leave_icmp_error(&plain);
	CU_ASSERT(lib_send_to(&plain, &b.addr, "lost") < 0 && errno == ECONNREFUSED);

	/* With it, SO_ERROR reads 0 without clearing, and the send still goes. */
	leave_icmp_error(&a);
	CU_ASSERT_EQUAL(lib_getsockopt(a.fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	CU_ASSERT_EQUAL(err, 0);
	CU_ASSERT_EQUAL(lib_send_to(&a, &b.addr, "ok"), 2);
	sleep_ms(5);
	CU_ASSERT_EQUAL(recv(b.fd, buf, sizeof(buf), MSG_DONTWAIT), 2);
	CU_ASSERT(memcmp(buf, "ok", 2) == 0);

	/* A pending error met by FIONREAD's read reaches the caller's read. */
	leave_icmp_error(&a);
	CU_ASSERT_EQUAL(fionread(a.fd), 1);
	CU_ASSERT(lib_recv(a.fd, buf, 1, 0) < 0 && errno == ECONNREFUSED);
	CU_ASSERT_EQUAL(fionread(a.fd), 0);

	/* An error of the send itself is still returned (tried twice). */
	static char too_big[70000];
	CU_ASSERT(lib_send_len(&a, &b.addr, too_big, sizeof(too_big)) < 0 && errno == EMSGSIZE);

	px_thread_dgram_shortcuts_end();
	close(a.fd);
	close(b.fd);
	close(plain.fd);
}

/* Reads the next datagram as sofia does (FIONREAD, then recvmsg into a
 * buffer of that size) and checks its text and source port. */
static void read_as_sofia(int fd, const char *want, const struct udp *from)
{
	char buf[64] = "";
	struct sockaddr_in src;
	struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf)};
	struct msghdr m = {
		.msg_name = &src, .msg_namelen = sizeof(src), .msg_iov = &iov, .msg_iovlen = 1};
	int n = fionread(fd);

	CU_ASSERT_EQUAL(n, (int)strlen(want));
	iov.iov_len = n > 0 ? (size_t)n : 1;
	CU_ASSERT_EQUAL(lib_recvmsg(fd, &m, 0), (ssize_t)strlen(want));
	CU_ASSERT_STRING_EQUAL(buf, want);
	CU_ASSERT_EQUAL(src.sin_port, from->addr.sin_port);
}

/* epoll_wait with a zero timeout: how many events, and the first's data. */
static int wait_now(int ep, uint64_t *first)
{
	struct epoll_event ev[4];
	int n = lib_epoll_wait(ep, ev, 4, 0);

	*first = n > 0 ? ev[0].data.u64 : 0;
	return n;
}

static void test_read_ahead_with_epoll(void)
{
	struct udp rx, tx, tx2;
	struct epoll_event watch_rx = {.events = EPOLLIN, .data.u64 = 42};
	struct epoll_event watch_ev = {.events = EPOLLIN, .data.u64 = 7};
	int ep, evfd;
	uint64_t data, one = 1;

	px_thread_dgram_shortcuts_begin();
	ep = epoll_create1(0);
	evfd = eventfd(0, EFD_NONBLOCK);
	CU_ASSERT_FATAL(ep >= 0 && evfd >= 0);
	CU_ASSERT_FATAL(udp_open(&rx, false) == 0 && udp_open(&tx, false) == 0 &&
			udp_open(&tx2, false) == 0);
	CU_ASSERT_FATAL(lib_epoll_ctl(ep, EPOLL_CTL_ADD, rx.fd, &watch_rx) == 0);
	CU_ASSERT_FATAL(lib_epoll_ctl(ep, EPOLL_CTL_ADD, evfd, &watch_ev) == 0);
	CU_ASSERT_FATAL(px_thread_dgram_shortcut(rx.fd) == 0);

	CU_ASSERT(send_to(&tx, &rx, "one", 3) == 3);
	CU_ASSERT(send_to(&tx2, &rx, "two!", 4) == 4);
	CU_ASSERT(send_to(&tx, &rx, "three", 5) == 5);
	sleep_ms(5);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 1);
	CU_ASSERT_EQUAL(data, 42);

	/* One read takes all three; each is then the caller's in turn. */
	CU_ASSERT_EQUAL(fionread(rx.fd), 3);
	CU_ASSERT(kernel_peek(rx.fd) < 0 && errno == EAGAIN);
	read_as_sofia(rx.fd, "one", &tx);

	/* The kernel no longer shows them: epoll_wait does, before the
	 * eventfd, with the data the set has for the socket. */
	CU_ASSERT(write(evfd, &one, sizeof(one)) == sizeof(one));
	CU_ASSERT_EQUAL(wait_now(ep, &data), 1);
	CU_ASSERT_EQUAL(data, 42);
	read_as_sofia(rx.fd, "two!", &tx2);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 1);
	CU_ASSERT_EQUAL(data, 42);
	read_as_sofia(rx.fd, "three", &tx);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 1);
	CU_ASSERT_EQUAL(data, 7);
	CU_ASSERT(read(evfd, &one, sizeof(one)) == sizeof(one));
	CU_ASSERT_EQUAL(fionread(rx.fd), 0);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 0);

	/* Offered and not read: the next wait asks the kernel (nothing
	 * there), the one after offers it again. */
	CU_ASSERT(send_to(&tx, &rx, "a", 1) == 1);
	CU_ASSERT(send_to(&tx, &rx, "b", 1) == 1);
	sleep_ms(5);
	read_as_sofia(rx.fd, "a", &tx);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 1);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 0);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 1);
	read_as_sofia(rx.fd, "b", &tx);

	/* No longer watched: read one at a time, nothing reported. */
	CU_ASSERT_FATAL(lib_epoll_ctl(ep, EPOLL_CTL_DEL, rx.fd, NULL) == 0);
	CU_ASSERT(send_to(&tx, &rx, "c", 1) == 1);
	CU_ASSERT(send_to(&tx, &rx, "dd", 2) == 2);
	sleep_ms(5);
	CU_ASSERT_EQUAL(fionread(rx.fd), 1);
	CU_ASSERT_EQUAL(kernel_peek(rx.fd), 2);
	CU_ASSERT_EQUAL(wait_now(ep, &data), 0);
	read_as_sofia(rx.fd, "c", &tx);
	read_as_sofia(rx.fd, "dd", &tx);

	px_thread_dgram_shortcuts_end();
	close(ep);
	close(evfd);
	close(rx.fd);
	close(tx.fd);
	close(tx2.fd);
}

struct other {
	int fd;
	int fionread;
	ssize_t left;
};

static void *other_thread(void *arg)
{
	struct other *o = arg;

	o->fionread = fionread(o->fd);
	o->left = kernel_peek(o->fd);
	return NULL;
}

static void test_other_threads_and_end(void)
{
	struct udp rx, tx;
	struct other o;
	pthread_t t;
	char buf[8];

	CU_ASSERT_FATAL(udp_open(&rx, false) == 0 && udp_open(&tx, false) == 0);
	CU_ASSERT_FATAL(px_thread_dgram_shortcut(rx.fd) == 0);
	CU_ASSERT(send_to(&tx, &rx, "abc", 3) == 3);
	sleep_ms(5);

	/* Another thread's FIONREAD is the kernel's: the datagram stays. */
	o = (struct other){.fd = rx.fd};
	CU_ASSERT_FATAL(pthread_create(&t, NULL, other_thread, &o) == 0);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(o.fionread, 3);
	CU_ASSERT_EQUAL(o.left, 3);

	/* Once ended, this thread's too. */
	px_thread_dgram_shortcuts_end();
	CU_ASSERT_EQUAL(fionread(rx.fd), 3);
	CU_ASSERT_EQUAL(kernel_peek(rx.fd), 3);
	CU_ASSERT_EQUAL(lib_recv(rx.fd, buf, sizeof(buf), 0), 3);

	close(rx.fd);
	close(tx.fd);
}

/* FIONREAD never waits; the read it makes must not either, even on a
 * blocking socket (here one that would wait a second). */
static void test_blocking_socket_never_waits(void)
{
	struct udp rx;
	struct timeval second = {.tv_sec = 1};
	struct timespec t0, t1;

	CU_ASSERT_FATAL(udp_open(&rx, false) == 0);
	CU_ASSERT_FATAL(fcntl(rx.fd, F_SETFL, 0) == 0);
	CU_ASSERT_FATAL(setsockopt(rx.fd, SOL_SOCKET, SO_RCVTIMEO, &second, sizeof(second)) == 0);
	CU_ASSERT_FATAL(px_thread_dgram_shortcut(rx.fd) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CU_ASSERT_EQUAL(fionread(rx.fd), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CU_ASSERT((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000 < 500);
	px_thread_dgram_shortcuts_end();
	close(rx.fd);
}

static void test_only_datagram_sockets(void)
{
	int tcp = socket(AF_INET, SOCK_STREAM, 0);
	struct udp u[9];

	CU_ASSERT_FATAL(tcp >= 0);
	CU_ASSERT(px_thread_dgram_shortcut(tcp) < 0 && errno == ENOTSUP);
	for (int i = 0; i < 9; i++)
		CU_ASSERT_FATAL(udp_open(&u[i], false) == 0);
	for (int i = 0; i < 8; i++)
		CU_ASSERT(px_thread_dgram_shortcut(u[i].fd) == 0);
	CU_ASSERT(px_thread_dgram_shortcut(u[0].fd) == 0); /* named twice: once */
	CU_ASSERT(px_thread_dgram_shortcut(u[8].fd) < 0 && errno == ENOSPC);
	px_thread_dgram_shortcuts_end();
	for (int i = 0; i < 9; i++)
		close(u[i].fd);
	close(tcp);
}

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{"libraries find plexusd's socket calls", test_libraries_find_ours},
		{"FIONREAD takes the datagram, the read gets it", test_fionread_takes_the_datagram},
		{"zero-length and truncated datagrams", test_zero_length_and_truncated},
		{"pending ICMP error: send goes, read reports", test_pending_error},
		{"read ahead, shown to epoll_wait", test_read_ahead_with_epoll},
		{"other threads, and after the end", test_other_threads_and_end},
		{"a blocking socket never waits", test_blocking_socket_never_waits},
		{"datagram sockets only, eight at most", test_only_datagram_sockets},
	};
	CU_pSuite suite;
	unsigned failures;

	lib_ioctl = (ioctl_fn *)dlsym(RTLD_DEFAULT, "ioctl");
	lib_recvmsg = (recvmsg_fn *)dlsym(RTLD_DEFAULT, "recvmsg");
	lib_recv = (recv_fn *)dlsym(RTLD_DEFAULT, "recv");
	lib_sendmsg = (sendmsg_fn *)dlsym(RTLD_DEFAULT, "sendmsg");
	lib_getsockopt = (getsockopt_fn *)dlsym(RTLD_DEFAULT, "getsockopt");
	lib_epoll_ctl = (epoll_ctl_fn *)dlsym(RTLD_DEFAULT, "epoll_ctl");
	lib_epoll_wait = (epoll_wait_fn *)dlsym(RTLD_DEFAULT, "epoll_wait");
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("dgram_shortcut", NULL, NULL);
	for (size_t i = 0; suite && i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].func))
			suite = NULL;
	if (!suite) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
