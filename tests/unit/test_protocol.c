/*
 * Unit tests of the console protocol's framing (console/protocol.c), the
 * part every console connection and every client goes through: frames cut
 * at every byte boundary and many frames in one read come out whole and
 * NUL-terminated without disturbing the frames after them, malformed
 * headers are refused with a reason, and px_writev_all delivers every byte
 * in order through short writes (a socket whose buffer is smaller than the
 * data, read by another thread) and to a descriptor that is not a socket.
 * A connection that turns to lines after a frame: the bytes read past the
 * frame come back whole (the byte held aside for its terminator too), and
 * lines are appended with their newline.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "../../console/protocol.h"

/* Frames i = 0..n-1: kind "event", id i, payload "{"i":i}" padded with i
 * x's, appended to *buf. */
static void make_frames(char **buf, size_t *len, size_t *cap, int n)
{
	for (int i = 0; i < n; i++) {
		char payload[512];
		int p = snprintf(payload, sizeof(payload), "{\"i\":%d}", i);
		memset(payload + p, 'x', (size_t)(i % 300));
		p += i % 300;
		CU_ASSERT_EQUAL_FATAL(
			px_frame_append(buf, len, cap, "event", (uint64_t)i, payload, (size_t)p),
			0);
	}
}

/* Is f frame i of make_frames? */
static int frame_is(const struct px_frame *f, int i)
{
	char want[512];
	int p = snprintf(want, sizeof(want), "{\"i\":%d}", i);

	return !strcmp(f->kind, "event") && f->id == (uint64_t)i &&
	       f->len == (size_t)p + (size_t)(i % 300) && !strncmp(f->payload, want, (size_t)p) &&
	       f->payload[f->len] == '\0' && strlen(f->payload) == f->len;
}

/* Feed data into a reader through a pipe in pieces of step bytes; every
 * frame must come out whole, in order. Returns how many did. */
static int read_in_steps(const char *data, size_t len, size_t step, int expect)
{
	struct px_frame_reader r;
	struct px_frame f;
	const char *msg = NULL;
	int fds[2], got = 0, rc;
	size_t off = 0;

	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	px_frame_reader_init(&r);
	while (off < len) {
		size_t k = len - off < step ? len - off : step;
		CU_ASSERT_EQUAL_FATAL(write(fds[1], data + off, k), (ssize_t)k);
		off += k;
		CU_ASSERT_FATAL(px_frame_reader_fill(&r, fds[0]) == (ssize_t)k);
		while ((rc = px_frame_next(&r, &f, &msg)) == 1) {
			if (!frame_is(&f, got)) {
				fprintf(stderr, "\n  step %zu: frame %d wrong: %s %llu %zu\n", step,
					got, f.kind, (unsigned long long)f.id, f.len);
				break;
			}
			got++;
		}
		CU_ASSERT_EQUAL(rc == -1 ? msg : NULL, NULL);
	}
	CU_ASSERT_EQUAL(got, expect);
	px_frame_reader_free(&r);
	close(fds[0]);
	close(fds[1]);
	return got;
}

static void test_reader_pieces(void)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;
	static const size_t steps[] = {1, 2, 3, 7, 64, 1000, 4096, 65536};

	make_frames(&buf, &len, &cap, 40);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++)
		read_in_steps(buf, len, steps[i], 40);
	free(buf);
}

/* Hundreds of frames in one read: each payload is terminated in place and
 * the frame after it is intact (the byte under the terminator comes back). */
static void test_reader_many_in_one_read(void)
{
	char *buf = NULL;
	size_t len = 0, cap = 0;

	make_frames(&buf, &len, &cap, 300);
	CU_ASSERT(len < PX_PROTO_READ_CHUNK);
	read_in_steps(buf, len, len, 300);
	free(buf);
}

/* A result frame, then lines in the same read: the rest is every byte
 * after the frame, the one under the frame's terminator put back. */
static void test_reader_rest_after_frame(void)
{
	static const char wire[] = "result 2 5\n{\"a\"}{\"event\":\"X\"}\n{\"event\":\"Y\"}\n";
	struct px_frame_reader r;
	struct px_frame f;
	const char *err = NULL, *rest;
	char *out = NULL;
	size_t len = 0, cap = 0, n;
	int fds[2];

	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	CU_ASSERT_EQUAL_FATAL(write(fds[1], wire, sizeof(wire) - 1), (ssize_t)sizeof(wire) - 1);
	px_frame_reader_init(&r);
	CU_ASSERT_FATAL(px_frame_reader_fill(&r, fds[0]) == (ssize_t)sizeof(wire) - 1);
	CU_ASSERT_EQUAL_FATAL(px_frame_next(&r, &f, &err), 1);
	CU_ASSERT_STRING_EQUAL(f.payload, "{\"a\"}");
	n = px_frame_reader_rest(&r, &rest);
	CU_ASSERT_EQUAL(n, strlen("{\"event\":\"X\"}\n{\"event\":\"Y\"}\n"));
	CU_ASSERT(n && !memcmp(rest, "{\"event\":\"X\"}\n{\"event\":\"Y\"}\n", n));
	/* Taken: nothing is left, and no frame. */
	CU_ASSERT_EQUAL(px_frame_reader_rest(&r, &rest), 0);
	CU_ASSERT_EQUAL(px_frame_next(&r, &f, &err), 0);
	px_frame_reader_free(&r);
	close(fds[0]);
	close(fds[1]);

	CU_ASSERT_EQUAL(px_line_append(&out, &len, &cap, "{\"event\":\"X\"}", 13), 0);
	CU_ASSERT_EQUAL(px_line_append(&out, &len, &cap, "{}", 2), 0);
	CU_ASSERT_EQUAL(len, 17);
	CU_ASSERT(out && !memcmp(out, "{\"event\":\"X\"}\n{}\n", 17));
	free(out);
}

static void test_reader_malformed(void)
{
	static const char *const bad[] = {"Event 1 2\nab",
					  "event x 2\nab",
					  "event 1 -2\nab",
					  "event 1 99999999\n",
					  "event 1 2 3\nab",
					  " event 1 2\nab",
					  "event 18446744073709551616 2\nab",
					  "event 1 \nab",
					  "event 1 2x\nab",
					  "event 1  2\nab",
					  "event 1 1048577\n"};
	char longhead[PX_PROTO_MAX_HEADER + 8];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct px_frame_reader r;
		struct px_frame f;
		const char *msg = NULL;
		int fds[2];

		CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
		CU_ASSERT_EQUAL(write(fds[1], bad[i], strlen(bad[i])), (ssize_t)strlen(bad[i]));
		px_frame_reader_init(&r);
		px_frame_reader_fill(&r, fds[0]);
		CU_ASSERT_EQUAL(px_frame_next(&r, &f, &msg), -1);
		CU_ASSERT_PTR_NOT_NULL(msg);
		px_frame_reader_free(&r);
		close(fds[0]);
		close(fds[1]);
	}
	/* The largest ID and an empty payload are fine. */
	{
		static const char ok[] = "cmd 18446744073709551615 0\nend 0 1\n7";
		struct px_frame_reader r;
		struct px_frame f;
		const char *msg = NULL;
		int fds[2];

		CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
		CU_ASSERT_EQUAL(write(fds[1], ok, sizeof(ok) - 1), (ssize_t)(sizeof(ok) - 1));
		px_frame_reader_init(&r);
		px_frame_reader_fill(&r, fds[0]);
		CU_ASSERT_EQUAL(px_frame_next(&r, &f, &msg), 1);
		CU_ASSERT_EQUAL(f.id, UINT64_MAX);
		CU_ASSERT_EQUAL(f.len, 0);
		CU_ASSERT_EQUAL(px_frame_next(&r, &f, &msg), 1);
		CU_ASSERT_STRING_EQUAL(f.kind, "end");
		CU_ASSERT_STRING_EQUAL(f.payload, "7");
		px_frame_reader_free(&r);
		close(fds[0]);
		close(fds[1]);
	}
	/* A header that never ends. */
	memset(longhead, 'a', sizeof(longhead));
	{
		struct px_frame_reader r;
		struct px_frame f;
		const char *msg = NULL;
		int fds[2];

		CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
		CU_ASSERT_EQUAL(write(fds[1], longhead, sizeof(longhead)),
				(ssize_t)sizeof(longhead));
		px_frame_reader_init(&r);
		px_frame_reader_fill(&r, fds[0]);
		CU_ASSERT_EQUAL(px_frame_next(&r, &f, &msg), -1);
		CU_ASSERT_STRING_EQUAL(msg ? msg : "", "frame header too long");
		px_frame_reader_free(&r);
		close(fds[0]);
		close(fds[1]);
	}
}

struct drain {
	int fd;
	char *data;
	size_t len, cap;
};

static void *drain_main(void *arg)
{
	struct drain *d = arg;
	ssize_t n;

	for (;;) {
		if (d->len == d->cap)
			break;
		n = read(d->fd, d->data + d->len, d->cap - d->len);
		if (n <= 0)
			break;
		d->len += (size_t)n;
	}
	return NULL;
}

/* Many buffers, more than the socket holds: short writes resume in the
 * middle of a buffer and every byte arrives once, in order. */
static void writev_through(int wfd, int rfd)
{
	enum { NBUF = 600 };
	struct iovec iov[NBUF];
	char *bufs[NBUF];
	size_t total = 0, off = 0;
	struct drain d = {.fd = rfd};
	pthread_t t;
	int ok = 1;

	for (int i = 0; i < NBUF; i++) {
		size_t len = (size_t)(1 + (i * 37) % 1500);
		bufs[i] = malloc(len);
		for (size_t k = 0; k < len; k++)
			bufs[i][k] = (char)(i + k);
		iov[i] = (struct iovec){.iov_base = bufs[i], .iov_len = len};
		total += len;
	}
	d.cap = total;
	d.data = malloc(total);
	CU_ASSERT_EQUAL_FATAL(pthread_create(&t, NULL, drain_main, &d), 0);
	CU_ASSERT_EQUAL(px_writev_all(wfd, iov, NBUF), 0);
	pthread_join(t, NULL);
	CU_ASSERT_EQUAL(d.len, total);
	for (int i = 0; i < NBUF && ok; i++) {
		size_t len = (size_t)(1 + (i * 37) % 1500);
		ok = d.len >= off + len && !memcmp(d.data + off, bufs[i], len);
		off += len;
	}
	CU_ASSERT_TRUE(ok);
	for (int i = 0; i < NBUF; i++)
		free(bufs[i]);
	free(d.data);
}

static void test_writev_all(void)
{
	int sv[2], fds[2], small = 4096;

	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
	setsockopt(sv[1], SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
	writev_through(sv[0], sv[1]);
	close(sv[0]);
	close(sv[1]);
	/* Not a socket: writev instead of sendmsg. */
	CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
	writev_through(fds[1], fds[0]);
	close(fds[0]);
	close(fds[1]);
	/* The peer is gone: an error, not SIGPIPE. */
	CU_ASSERT_EQUAL_FATAL(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	{
		struct iovec one = {.iov_base = "x", .iov_len = 1};
		CU_ASSERT_EQUAL(px_writev_all(sv[0], &one, 1), -1);
		CU_ASSERT_EQUAL(errno, EPIPE);
	}
	close(sv[0]);
}

int main(void)
{
	CU_pSuite suite;
	int failed;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("console protocol framing", NULL, NULL);
	if (!suite || !CU_add_test(suite, "frames cut at every size", test_reader_pieces) ||
	    !CU_add_test(suite, "many frames in one read", test_reader_many_in_one_read) ||
	    !CU_add_test(suite, "malformed headers", test_reader_malformed) ||
	    !CU_add_test(suite, "the bytes after a frame, and lines",
			 test_reader_rest_after_frame) ||
	    !CU_add_test(suite, "writev of many buffers, short writes", test_writev_all)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failed = (int)CU_get_number_of_failures();
	CU_cleanup_registry();
	return failed != 0;
}
