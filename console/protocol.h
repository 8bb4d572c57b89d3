/*
 * Frames of the console protocol (docs/console-protocol.md), shared by the
 * daemon's console server and the plexus client: a header line
 * "KIND ID LEN\n" and LEN bytes of payload. Reading is incremental so that
 * a caller can feed whatever bytes arrived and take out complete frames.
 */
#ifndef PLEXUS_CONSOLE_PROTOCOL_H
#define PLEXUS_CONSOLE_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PX_PROTO_MAX_PAYLOAD (1024 * 1024)
#define PX_PROTO_MAX_HEADER  64
#define PX_PROTO_MAX_KIND    15
/* What a reader asks for at once: a busy event stream arrives in batches
 * of a few hundred frames, taken in one read. */
#define PX_PROTO_READ_CHUNK (64 * 1024)

struct px_frame {
	char kind[PX_PROTO_MAX_KIND + 1];
	uint64_t id;
	size_t len;
	char *payload; /* NUL-terminated for convenience; owned by the reader */
};

/* Accumulates bytes from a stream and yields complete frames. */
struct px_frame_reader {
	char *buf;
	size_t len, cap;
	size_t consumed; /* bytes of buf already handed out as a frame */
	/* The byte after the last payload handed out, replaced by its NUL
	 * (put back by the next call), so that no frame is moved to make room
	 * for its terminator. */
	char held;
	bool holding;
};

void px_frame_reader_init(struct px_frame_reader *r);
void px_frame_reader_free(struct px_frame_reader *r);
/* Read what fd has (one read(2) of up to PX_PROTO_READ_CHUNK). Returns bytes read, 0 on end of
 * stream, -1 on error (errno set; EAGAIN when nothing was ready). */
ssize_t px_frame_reader_fill(struct px_frame_reader *r, int fd);
/* Take the next complete frame: 1 when f was filled (valid until the next
 * call), 0 when more bytes are needed, -1 when the stream is malformed
 * (errmsg describes it). */
int px_frame_next(struct px_frame_reader *r, struct px_frame *f, const char **errmsg);

/* Write a whole frame to a blocking fd, retrying short writes and EINTR;
 * never raises SIGPIPE. 0 or -1 (errno set). */
int px_frame_write(int fd, const char *kind, uint64_t id, const void *payload, size_t len);
/* Write n bytes to a blocking fd the same way (frames built with
 * px_frame_append, several in one write). 0 or -1 (errno set). */
int px_write_all(int fd, const char *p, size_t n);
/* Write the iovcnt buffers of iov in order, the same way, in as few
 * system calls as the kernel allows (frames kept elsewhere, e.g. the text
 * every console shares for one event). iov is modified. 0 or -1. */
struct iovec;
int px_writev_all(int fd, struct iovec *iov, int iovcnt);
/* Append a frame to a memory buffer (for queued, non-blocking output). */
int px_frame_append(char **buf, size_t *len, size_t *cap, const char *kind, uint64_t id,
		    const void *payload, size_t plen);
/* Append payload and a newline: an event on a connection subscribed with
 * "format":"lines" (no frame around it). 0 or -1 (errno set). */
int px_line_append(char **buf, size_t *len, size_t *cap, const void *payload, size_t plen);
/* The bytes read but not yet handed out as a frame (with the byte held
 * aside put back), all taken: what follows the last frame on a
 * connection that now carries lines. Returns how many, *p where. */
size_t px_frame_reader_rest(struct px_frame_reader *r, const char **p);

#endif
