/*
 * plexus -e: subscribe to plexusd's events with the filter given on the
 * command line and write each as one line of JSON on standard output, as
 * it comes. The subscription asks for lines ("format":"lines"): after its
 * result the daemon writes nothing on the connection but the events, a
 * JSON object per line, so the client moves the bytes from the socket to
 * its output without reading them (splice(2) through a pipe, when standard
 * output takes it; read and write otherwise). Log lines stop with it. With -r the client waits for
 * the daemon and subscribes again after a restart; a refused filter or role ends it with a message.
 */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "events.h"
#include "pxclient.h"

#define EXIT_FAILED        1
#define EXIT_USAGE         2
#define EXIT_NO_CONNECTION 4
#define EXIT_DENIED        5
#define CALL_TIMEOUT_MS    5000
#define RETRY_MS           1000

static volatile sig_atomic_t stop;

static void on_signal(int signo)
{
	(void)signo;
	stop = 1;
}

/* Read and write, when splice cannot move the bytes: this much at once. */
#define COPY_CHUNK (256 * 1024)
/* What one splice(2) may move. */
#define SPLICE_CHUNK (1 << 20)

/* Frames that come before the Subscribe's result (none normally: the
 * daemon sends events only after it) are written as lines too. */
static void print_event(void *ctx, const struct px_frame *f)
{
	(void)ctx;
	if (strcmp(f->kind, "event"))
		return;
	fwrite_unlocked(f->payload, 1, f->len, stdout);
	putc_unlocked('\n', stdout);
	fflush(stdout);
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR && !stop)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* How the bytes go from the socket to standard output: through a pipe of
 * our own, in and out by splice, or by read and write where splice cannot
 * (an output that takes none). Not straight from the socket into a pipe
 * given as standard output: measured here (Linux 6.18), the reader of
 * that pipe was not woken for the last splice of a burst, and one or two
 * lines stayed in the pipe until the next event came. Out of a pipe of
 * our own into it, the reader is woken. */
enum mover { MOVE_VIA_PIPE, MOVE_COPY };

struct output {
	enum mover how;
	int pipe[2]; /* MOVE_VIA_PIPE: splice in, then out */
	size_t in_pipe;
	char *buf; /* MOVE_COPY */
};

static void output_init(struct output *o)
{
	o->pipe[0] = o->pipe[1] = -1;
	o->in_pipe = 0;
	o->buf = NULL;
	if (pipe2(o->pipe, O_CLOEXEC) == 0)
		o->how = MOVE_VIA_PIPE;
	else
		o->how = MOVE_COPY;
}

static void output_free(struct output *o)
{
	if (o->pipe[0] >= 0) {
		close(o->pipe[0]);
		close(o->pipe[1]);
	}
	free(o->buf);
}

/* Empty the pipe of MOVE_VIA_PIPE into standard output: by splice, or,
 * where standard output takes none (EINVAL), by read and write from here
 * on. 0, or -1 when the output fails. */
static int drain_pipe(struct output *o)
{
	char chunk[4096];

	while (o->in_pipe) {
		ssize_t n;

		if (o->how == MOVE_VIA_PIPE) {
			n = splice(o->pipe[0], NULL, STDOUT_FILENO, NULL, o->in_pipe,
				   SPLICE_F_MOVE);
			if (n < 0 && errno == EINVAL) {
				o->how = MOVE_COPY;
				continue;
			}
		} else {
			n = read(o->pipe[0], chunk,
				 o->in_pipe < sizeof(chunk) ? o->in_pipe : sizeof(chunk));
			if (n > 0 && write_all(STDOUT_FILENO, chunk, (size_t)n) < 0)
				return -1;
		}
		if (n < 0 && errno == EINTR && !stop)
			continue;
		if (n <= 0)
			return -1;
		o->in_pipe -= (size_t)n;
	}
	return 0;
}

/* Move what the daemon writes to standard output until the connection
 * ends (1), the output fails (-1) or a signal asks to stop (0). */
static int move_lines(struct output *o, int fd)
{
	while (!stop) {
		ssize_t n;

		switch (o->how) {
		case MOVE_VIA_PIPE:
			n = splice(fd, NULL, o->pipe[1], NULL, SPLICE_CHUNK, SPLICE_F_MOVE);
			if (n < 0 && errno == EINVAL) {
				o->how = MOVE_COPY;
				continue;
			}
			if (n > 0) {
				o->in_pipe = (size_t)n;
				if (drain_pipe(o) < 0)
					return -1;
			}
			break;
		default:
			if (!o->buf && !(o->buf = malloc(COPY_CHUNK)))
				return -1;
			n = read(fd, o->buf, COPY_CHUNK);
			if (n > 0 && write_all(STDOUT_FILENO, o->buf, (size_t)n) < 0)
				return -1;
			break;
		}
		if (n == 0)
			return 1;
		if (n < 0 && errno != EINTR)
			return errno == ECONNRESET ? 1 : -1;
	}
	return 0;
}

/* Subscribe; 0, or the exit status when the daemon refused. */
static int subscribe(struct px_client *c, const char *json)
{
	char *result = px_client_call(c, json, CALL_TIMEOUT_MS, print_event, NULL);
	json_t *r;
	const char *response, *code, *message;
	int status = 0;

	if (!result)
		return EXIT_NO_CONNECTION;
	r = json_loads(result, 0, NULL);
	response = json_string_value(json_object_get(r, "response"));
	if (!response || strcmp(response, "Success")) {
		code = json_string_value(json_object_get(r, "code"));
		message = json_string_value(json_object_get(r, "message"));
		fprintf(stderr, "plexus: %s\n", message ? message : result);
		status = code && !strcmp(code, "denied") ? EXIT_DENIED : EXIT_USAGE;
	}
	json_decref(r);
	free(result);
	return status;
}

int px_events_run(const char *socket_path, int nwords, char **words, bool keep_trying, bool quiet)
{
	struct px_client c;
	struct output out;
	struct sigaction sa = {.sa_handler = on_signal};
	struct sched_param batch = {0};
	char err[512];
	char *json = px_client_subscribe_json(nwords, words, "plexus-e", true, err, sizeof(err));
	int status = 0;
	bool reported = false;

	if (!json) {
		fprintf(stderr, "plexus: %s\n", err);
		return EXIT_USAGE;
	}
	/* Without SA_RESTART: a signal ends the splice or read waiting for
	 * events, and the loop sees stop. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A stream that is written in batches needs no preemption when it
	 * wakes: under SCHED_BATCH the daemon's SIP and call threads, on
	 * the same cores, are not interrupted for it. Allowed to any user;
	 * on an idle machine it changes nothing. */
	if (sched_setscheduler(0, SCHED_BATCH, &batch) < 0 && !quiet)
		fprintf(stderr, "plexus: cannot run as SCHED_BATCH: %s\n", strerror(errno));
	output_init(&out);
	px_client_init(&c);
	while (!stop) {
		const char *rest;
		size_t nrest;
		int moved;

		if (px_client_connect(&c, socket_path, CALL_TIMEOUT_MS, err, sizeof(err)) < 0) {
			if (!keep_trying || strstr(err, "access denied")) {
				fprintf(stderr, "plexus: %s\n", err);
				status = strstr(err, "access denied") ? EXIT_DENIED
								      : EXIT_NO_CONNECTION;
				break;
			}
			if (!reported && !quiet)
				fprintf(stderr, "plexus: %s; waiting for plexusd\n", err);
			reported = true;
			usleep(RETRY_MS * 1000);
			continue;
		}
		reported = false;
		/* Log lines are not events: off, without waiting for the answer
		 * (the daemon stops them anyway once it sends lines). */
		px_frame_write(c.fd, "log", ++c.last_id, "off", 3);
		status = subscribe(&c, json);
		if (status && status != EXIT_NO_CONNECTION)
			break;
		if (!quiet && !status)
			fprintf(stderr, "plexus: %s: streaming events\n", c.banner);
		if (!status) {
			/* Lines from here on: what was read past the result
			 * first, then straight from the socket. */
			nrest = px_frame_reader_rest(&c.reader, &rest);
			moved = nrest && write_all(STDOUT_FILENO, rest, nrest) < 0
					? -1
					: move_lines(&out, c.fd);
			if (moved < 0 && !stop) {
				fprintf(stderr, "plexus: cannot write the events: %s\n",
					strerror(errno));
				status = EXIT_FAILED;
				break;
			}
			if (moved > 0 && !quiet)
				fprintf(stderr, "plexus: plexusd closed the connection\n");
			status = EXIT_NO_CONNECTION;
		}
		px_client_close(&c);
		if (!keep_trying || stop)
			break;
		status = 0;
	}
	px_client_close(&c);
	output_free(&out);
	free(json);
	return stop ? 0 : status;
}
