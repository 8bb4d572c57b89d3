/*
 * plexus -e: subscribe to plexusd's events with the filter given on the
 * command line and print each as one line of JSON on standard output,
 * flushed whenever no further event has arrived yet, so that a pipe
 * reader sees every line at once and a busy stream is written in blocks. Log lines are
 * turned off. With -r the client waits for the daemon and subscribes again
 * after a restart; a refused filter or role ends it with a message.
 */
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

/* Standard output is written in blocks of this size at most, and when no
 * further event has arrived: a busy stream costs one write per batch.
 * The buffer is given to setvbuf: given none, glibc ignores the size and
 * uses the file's block size (4 KiB), and 3 MB/s of events to a file
 * took some 950 write(2) a second. */
#define OUT_BUFFER (256 * 1024)
static char out_buffer[OUT_BUFFER];

static void print_event(void *ctx, const struct px_frame *f)
{
	(void)ctx;
	if (strcmp(f->kind, "event"))
		return;
	/* One thread: stdio's own locking per call is wasted. */
	fwrite_unlocked(f->payload, 1, f->len, stdout);
	putc_unlocked('\n', stdout);
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
	char err[512];
	char *json = px_client_subscribe_json(nwords, words, "plexus-e", err, sizeof(err));
	int status = 0;
	bool reported = false;

	if (!json) {
		fprintf(stderr, "plexus: %s\n", err);
		return EXIT_USAGE;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	setvbuf(stdout, out_buffer, _IOFBF, sizeof(out_buffer));
	px_client_init(&c);
	while (!stop) {
		struct px_frame f;

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
		/* Log lines are not events: off, without waiting for the answer. */
		px_frame_write(c.fd, "log", ++c.last_id, "off", 3);
		status = subscribe(&c, json);
		if (status && status != EXIT_NO_CONNECTION)
			break;
		if (!quiet && !status)
			fprintf(stderr, "plexus: %s: streaming events\n", c.banner);
		while (!stop && !status) {
			/* What has arrived is printed at once; the output is
			 * flushed before waiting for more. The daemon writes a
			 * batch of events at once, so a drained buffer is
			 * (nearly always) the end of a batch: no poll to ask. */
			int got = px_client_buffered(&c, &f);
			if (got == 0) {
				fflush(stdout);
				got = px_client_next(&c, &f, 500);
			}
			if (got < 0) {
				if (c.bye[0] && !quiet)
					fprintf(stderr, "plexus: plexusd closed: %s\n", c.bye);
				status = EXIT_NO_CONNECTION;
				break;
			}
			if (got == 1)
				print_event(NULL, &f);
		}
		px_client_close(&c);
		if (!keep_trying || stop)
			break;
		status = 0;
	}
	px_client_close(&c);
	free(json);
	return stop ? 0 : status;
}
