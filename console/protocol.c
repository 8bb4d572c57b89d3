/*
 * Console protocol framing shared by plexusd and the plexus client: parsing
 * "KIND ID LEN\n<payload>" frames out of a byte stream and writing them out
 * whole (see docs/console-protocol.md).
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "protocol.h"

void px_frame_reader_init(struct px_frame_reader *r)
{
	memset(r, 0, sizeof(*r));
}

void px_frame_reader_free(struct px_frame_reader *r)
{
	free(r->buf);
	memset(r, 0, sizeof(*r));
}

static int reserve(char **buf, size_t *cap, size_t need)
{
	size_t ncap;
	char *nbuf;

	if (need <= *cap)
		return 0;
	ncap = *cap ? *cap : 4096;
	while (ncap < need)
		ncap *= 2;
	nbuf = realloc(*buf, ncap);
	if (!nbuf)
		return -1;
	*buf = nbuf;
	*cap = ncap;
	return 0;
}

/* The byte the last frame's terminator replaced goes back. */
static void put_back(struct px_frame_reader *r)
{
	if (r->holding) {
		r->buf[r->consumed] = r->held;
		r->holding = false;
	}
}

size_t px_frame_reader_rest(struct px_frame_reader *r, const char **p)
{
	size_t n;

	put_back(r);
	*p = r->buf ? r->buf + r->consumed : "";
	n = r->len - r->consumed;
	r->consumed = r->len;
	return n;
}

ssize_t px_frame_reader_fill(struct px_frame_reader *r, int fd)
{
	ssize_t n;

	put_back(r);
	if (r->consumed) {
		memmove(r->buf, r->buf + r->consumed, r->len - r->consumed);
		r->len -= r->consumed;
		r->consumed = 0;
	}
	/* The last byte of buf stays free for the NUL after a payload that
	 * ends the data (see px_frame_next). */
	if (reserve(&r->buf, &r->cap, r->len + PX_PROTO_READ_CHUNK) < 0) {
		errno = ENOMEM;
		return -1;
	}
	do
		n = read(fd, r->buf + r->len, r->cap - r->len - 1);
	while (n < 0 && errno == EINTR);
	if (n > 0)
		r->len += (size_t)n;
	return n;
}

/* The decimal number at *p (at least one digit), *p moved past it; -1 when
 * there is none or it exceeds max. Digits only: no sign, no spaces, no
 * locale (strtoull's), and it runs once per frame on every event. */
static int parse_number(const char **p, uint64_t max, uint64_t *out)
{
	const char *s = *p;
	uint64_t v = 0;

	if (*s < '0' || *s > '9')
		return -1;
	for (; *s >= '0' && *s <= '9'; s++) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*p = s;
	*out = v;
	return 0;
}

/* "KIND ID LEN" (n bytes, no newline) into f. */
static int parse_header(const char *line, size_t n, struct px_frame *f)
{
	char tmp[PX_PROTO_MAX_HEADER + 1];
	const char *p = tmp, *end = tmp + n;
	uint64_t v;
	size_t k;

	/* A copy ends in a NUL, which stops the digit loops. */
	memcpy(tmp, line, n);
	tmp[n] = '\0';
	for (k = 0; p[k] >= 'a' && p[k] <= 'z'; k++)
		;
	if (k == 0 || k > PX_PROTO_MAX_KIND || p[k] != ' ')
		return -1;
	memcpy(f->kind, p, k);
	f->kind[k] = '\0';
	p += k + 1;
	if (parse_number(&p, UINT64_MAX, &v) < 0 || *p != ' ')
		return -1;
	f->id = v;
	p++;
	if (parse_number(&p, PX_PROTO_MAX_PAYLOAD, &v) < 0 || p != end)
		return -1;
	f->len = (size_t)v;
	return 0;
}

int px_frame_next(struct px_frame_reader *r, struct px_frame *f, const char **errmsg)
{
	char *start, *nl;
	size_t avail, hlen;

	put_back(r);
	start = r->buf + r->consumed;
	avail = r->len - r->consumed;
	if (!avail)
		return 0;
	nl = memchr(start, '\n', avail < PX_PROTO_MAX_HEADER + 1 ? avail : PX_PROTO_MAX_HEADER + 1);
	if (!nl) {
		if (avail > PX_PROTO_MAX_HEADER) {
			*errmsg = "frame header too long";
			return -1;
		}
		return 0;
	}
	hlen = (size_t)(nl - start);
	if (parse_header(start, hlen, f) < 0) {
		*errmsg = "malformed frame header";
		return -1;
	}
	if (avail < hlen + 1 + f->len) {
		/* Make sure the whole frame will fit before asking for more. */
		if (reserve(&r->buf, &r->cap, r->len + f->len + 2) < 0) {
			*errmsg = "out of memory";
			return -1;
		}
		return 0;
	}
	f->payload = start + hlen + 1;
	/* The byte after the payload belongs to the next frame (or is the
	 * free byte after the data): it is kept aside and the payload
	 * terminated in its place, until the next call puts it back. */
	r->consumed += hlen + 1 + f->len;
	r->held = f->payload[f->len];
	r->holding = true;
	f->payload[f->len] = '\0';
	return 1;
}

int px_write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == ENOTSOCK)
			w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int px_writev_all(int fd, struct iovec *iov, int iovcnt)
{
	while (iovcnt > 0) {
		struct msghdr m = {.msg_iov = iov,
				   .msg_iovlen = (size_t)(iovcnt < IOV_MAX ? iovcnt : IOV_MAX)};
		ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
		if (w < 0 && errno == ENOTSOCK)
			w = writev(fd, iov, (int)m.msg_iovlen);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		/* Skip what went out; a buffer written in part is resumed. */
		while (iovcnt > 0 && (size_t)w >= iov->iov_len) {
			w -= (ssize_t)iov->iov_len;
			iov++;
			iovcnt--;
		}
		if (iovcnt > 0) {
			iov->iov_base = (char *)iov->iov_base + w;
			iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

int px_frame_write(int fd, const char *kind, uint64_t id, const void *payload, size_t len)
{
	char *buf = NULL;
	size_t blen = 0, cap = 0;
	int rc;

	if (px_frame_append(&buf, &blen, &cap, kind, id, payload, len) < 0)
		return -1;
	rc = px_write_all(fd, buf, blen);
	free(buf);
	return rc;
}

int px_line_append(char **buf, size_t *len, size_t *cap, const void *payload, size_t plen)
{
	if (reserve(buf, cap, *len + plen + 1) < 0) {
		errno = ENOMEM;
		return -1;
	}
	if (plen)
		memcpy(*buf + *len, payload, plen);
	(*buf)[*len + plen] = '\n';
	*len += plen + 1;
	return 0;
}

int px_frame_append(char **buf, size_t *len, size_t *cap, const char *kind, uint64_t id,
		    const void *payload, size_t plen)
{
	char head[PX_PROTO_MAX_HEADER + 1];
	int h;

	if (plen > PX_PROTO_MAX_PAYLOAD) {
		errno = EMSGSIZE;
		return -1;
	}
	h = snprintf(head, sizeof(head), "%s %" PRIu64 " %zu\n", kind, id, plen);
	if (h < 0 || (size_t)h >= sizeof(head)) {
		errno = EINVAL;
		return -1;
	}
	if (reserve(buf, cap, *len + (size_t)h + plen) < 0) {
		errno = ENOMEM;
		return -1;
	}
	memcpy(*buf + *len, head, (size_t)h);
	if (plen)
		memcpy(*buf + *len + h, payload, plen);
	*len += (size_t)h + plen;
	return 0;
}
