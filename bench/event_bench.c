/*
 * bench-events: the CPU cost of the event stream's parts, per event, outside
 * "make check" and without SIP load, so that the figures hold on a busy
 * machine (thread CPU time, not wall time). A ChannelState event like the
 * ones a call emits (a channel, eight fields, ~300 bytes of JSON; each
 * event of another of 8 channels, in one of two states, as calls
 * interleave) is
 *   emit     emitted with S subscribers queueing it (the emitting thread:
 *            SIP or session), per event;
 *   text     encoded once as JSON and framed for the consoles;
 *   console  taken and written by one console, per event: take_many (one
 *            lock per batch of B) and one writev of the shared frames to a
 *            Unix socket read by another thread; and, for comparison, the
 *            way it was done before: a take, a copy into a batch buffer with
 *            a header formatted per event, one write;
 *   client   what "plexus -e" does per event it receives: its loop (poll,
 *            one read of up to 64 KiB, frame parsing, one line of output
 *            into a 256 KiB stdio buffer flushed when the socket is
 *            drained) on those frames, written to /dev/null;
 *   wake-up  a console's cost per gather period, apart from its events:
 *            a poll that sleeps until its timeout, and an empty take;
 *            from it and the console's cost per event, a subscriber's
 *            CPU share at a given event rate for several periods
 *            (console.conf event_gather_ms).
 * Usage: bench/event_bench [events] (default 200000), from the build
 * directory ("make bench-events").
 */
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <plexus/channel.h>
#include <plexus/event.h>
#include <plexus/log.h>

#include "../console/protocol.h"
#include "../core/event_internal.h"
#include "../core/event_json.h"
#include "../core/log_internal.h"

#define BATCH 50 /* events per console batch: 20 ms of 200 calls/s × 13 */

static int ok(px_channel *ch)
{
	return 0;
}
static int call(px_channel *ch, int t)
{
	return 0;
}
static px_channel *request(const char *dest, px_channel *req, int *cause)
{
	return NULL;
}
static const struct px_channel_tech tech = {
	.type = "SIP", .request = request, .call = call, .answer = ok, .hangup = ok};

static double thread_cpu_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
	return (double)t.tv_sec * 1e9 + (double)t.tv_nsec;
}

#define NCHANNELS 8
static px_channel *chans[NCHANNELS];

static void emit_one(px_channel *unused, int i)
{
	px_channel *ch = chans[i % NCHANNELS];
	bool up = (i / NCHANNELS) & 1;

	PX_EVENT_EMIT(PX_EV_CHANNEL_STATE, ch, NULL, PX_EVS("state", up ? "Up" : "Ringing"),
		      PX_EVI("state_code", up ? 6 : 5), PX_EVS("caller_num", "1001"),
		      PX_EVS("caller_name", "Reception desk"), PX_EVS("connected_num", "1002"),
		      PX_EVS("connected_name", "Sales"), PX_EVS("context", "internal"),
		      PX_EVS("exten", i & 1 ? "1002" : "1003"));
}

struct sink {
	int fd;
	volatile int stop;
	bool client; /* read as plexus -e does, and count the CPU time */
	double cpu;  /* its thread CPU time, ns */
	long events; /* event frames it printed */
};

/* The client's end: read and throw away (its cost is not counted), or
 * read as plexus -e does (console/events.c: frames parsed in place, one
 * line each into a 256 KiB buffer, flushed when nothing more is there),
 * printing to /dev/null. */
static void *sink_main(void *arg)
{
	struct sink *s = arg;
	static char buf[1 << 16], out_buffer[256 * 1024];
	struct px_frame_reader r;
	struct px_frame f;
	const char *msg;
	FILE *out;
	double t0;

	if (!s->client) {
		while (read(s->fd, buf, sizeof(buf)) > 0)
			;
		return NULL;
	}
	out = fopen("/dev/null", "w");
	if (!out)
		return NULL;
	/* A buffer of its own: given NULL, glibc would ignore the size. */
	setvbuf(out, out_buffer, _IOFBF, sizeof(out_buffer));
	px_frame_reader_init(&r);
	t0 = thread_cpu_ns();
	for (;;) {
		struct pollfd pfd = {.fd = s->fd, .events = POLLIN};
		int got;
		while ((got = px_frame_next(&r, &f, &msg)) == 1) {
			if (strcmp(f.kind, "event"))
				continue;
			fwrite_unlocked(f.payload, 1, f.len, out);
			putc_unlocked('\n', out);
			s->events++;
		}
		if (got < 0)
			break;
		fflush(out);
		if (poll(&pfd, 1, -1) < 0 || px_frame_reader_fill(&r, s->fd) <= 0)
			break;
	}
	s->cpu = thread_cpu_ns() - t0;
	px_frame_reader_free(&r);
	fclose(out);
	return NULL;
}

/* Accumulated thread CPU time of each part, ns. */
struct parts {
	double emit, take, text, writev, copy;
};

/* One round: BATCH events emitted to the subscribers, then taken by each;
 * the first takes them, makes the text and writes them with writev, the
 * second as before (take one at a time, copy, write); the others only
 * take. Memory is recycled as in the daemon. */
static void round_trip(px_channel *ch, px_event_sub **subs, int nsubs, int fd, struct parts *p,
		       int *seq)
{
	px_event *evs[BATCH];
	uint64_t lost[BATCH];
	struct iovec iov[BATCH];
	static char *out;
	static size_t cap;
	size_t len = 0, got;
	double t0, t1;
	px_event *ev;

	t0 = thread_cpu_ns();
	for (int i = 0; i < BATCH; i++)
		emit_one(ch, (*seq)++);
	t1 = thread_cpu_ns();
	p->emit += t1 - t0;

	got = px_event_sub_take_many(subs[0], evs, lost, BATCH);
	t0 = thread_cpu_ns();
	p->take += t0 - t1;
	for (size_t k = 0; k < got; k++)
		px_event_text(evs[k]);
	t1 = thread_cpu_ns();
	p->text += t1 - t0;
	for (size_t k = 0; k < got; k++) {
		const struct px_event_text *t = px_event_text(evs[k]);
		iov[k] = (struct iovec){.iov_base = (void *)t->frame, .iov_len = t->frame_len};
	}
	px_writev_all(fd, iov, (int)got);
	for (size_t k = 0; k < got; k++)
		px_event_unref(evs[k]);
	t0 = thread_cpu_ns();
	p->writev += t0 - t1;

	while ((ev = px_event_sub_take(subs[1], NULL))) {
		const char *json = px_event_json(ev);
		px_frame_append(&out, &len, &cap, "event", 0, json, strlen(json));
		px_event_unref(ev);
	}
	px_write_all(fd, out, len);
	t1 = thread_cpu_ns();
	p->copy += t1 - t0;

	for (int i = 2; i < nsubs; i++) {
		got = px_event_sub_take_many(subs[i], evs, NULL, BATCH);
		for (size_t k = 0; k < got; k++)
			px_event_unref(evs[k]);
	}
}

static double client_us, wake_us;

/* The client's cost per event (a second pair of sockets, read by a thread
 * that does what plexus -e does) and a console's per wake-up. */
static void client_and_wakeups(px_event_sub **subs, long n, struct parts *unused)
{
	px_event *evs[BATCH];
	struct iovec iov[BATCH];
	struct sink sink;
	pthread_t th;
	int sv[2], seq = 0;
	const int wakeups = 200;
	double t0;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return;
	sink = (struct sink){.fd = sv[1], .client = true};
	pthread_create(&th, NULL, sink_main, &sink);
	subs[0] = px_event_subscribe(NULL, 2 * BATCH, NULL, NULL);
	for (long r = 0; r < n / BATCH; r++) {
		size_t got;
		for (int i = 0; i < BATCH; i++)
			emit_one(NULL, seq++);
		got = px_event_sub_take_many(subs[0], evs, NULL, BATCH);
		for (size_t k = 0; k < got; k++) {
			const struct px_event_text *t = px_event_text(evs[k]);
			iov[k] = (struct iovec){.iov_base = (void *)t->frame,
						.iov_len = t->frame_len};
		}
		px_writev_all(sv[0], iov, (int)got);
		for (size_t k = 0; k < got; k++)
			px_event_unref(evs[k]);
	}
	shutdown(sv[0], SHUT_WR);
	pthread_join(th, NULL);
	client_us = sink.events ? sink.cpu / (double)sink.events / 1000 : 0;

	/* A console's wake-up when its period ends: poll sleeps until its
	 * timeout (1 ms here), then a take finds what came (nothing). */
	t0 = thread_cpu_ns();
	for (int i = 0; i < wakeups; i++) {
		struct pollfd pfd = {.fd = sv[0], .events = POLLIN};
		poll(&pfd, 1, 1);
		px_event_sub_take_many(subs[0], evs, NULL, BATCH);
	}
	wake_us = (thread_cpu_ns() - t0) / wakeups / 1000;
	px_event_unsubscribe(subs[0]);
	close(sv[0]);
	close(sv[1]);
}

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 200000;
	px_channel *ch;
	px_event_sub *subs[10];
	struct parts p2 = {0}, p10 = {0};
	int sv[2], seq = 0;
	long rounds;
	pthread_t sink_thread;
	struct sink sink;
	px_event *probe;
	size_t json_len = 0;

	rounds = n / BATCH > 0 ? n / BATCH : 1;
	px_log_init();
	for (int i = 0; i < NCHANNELS; i++)
		if (!(chans[i] = px_channel_alloc(&tech, "SIP/1001", NULL, NULL)))
			return 1;
	ch = chans[0];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	sink = (struct sink){.fd = sv[1]};
	pthread_create(&sink_thread, NULL, sink_main, &sink);

	/* Two subscribers (the least round_trip needs), then ten. */
	for (int i = 0; i < 10; i++)
		subs[i] = px_event_subscribe(NULL, 2 * BATCH, NULL, NULL);
	for (long r = 0; r < rounds; r++)
		round_trip(ch, subs, 10, sv[0], &p10, &seq);
	for (int i = 2; i < 10; i++)
		px_event_unsubscribe(subs[i]);
	for (long r = 0; r < rounds; r++)
		round_trip(ch, subs, 2, sv[0], &p2, &seq);

	emit_one(ch, 0);
	probe = px_event_sub_take(subs[0], NULL);
	json_len = probe && px_event_text(probe) ? px_event_text(probe)->json_len : 0;
	px_event_unref(probe);
	while ((probe = px_event_sub_take(subs[1], NULL)))
		px_event_unref(probe);
	px_event_unsubscribe(subs[0]);
	px_event_unsubscribe(subs[1]);
	shutdown(sv[0], SHUT_WR);
	pthread_join(sink_thread, NULL);
	close(sv[0]);
	close(sv[1]);

	client_and_wakeups(subs, n, &p2);
	for (int i = 0; i < NCHANNELS; i++)
		px_channel_unref(chans[i]);

	n = rounds * BATCH;
	printf("event_bench: %ld ChannelState events (%zu bytes of JSON), batches of %d;"
	       " CPU us per event\n",
	       n, json_len, BATCH);
	printf("  emit, 2 subscribers                 %7.3f\n", p2.emit / n / 1000);
	printf("  emit, 10 subscribers                %7.3f  (%.3f per subscriber)\n",
	       p10.emit / n / 1000, (p10.emit - p2.emit) / 8 / n / 1000);
	printf("  JSON text and frame (once)          %7.3f\n",
	       (p2.text + p10.text) / 2 / n / 1000);
	printf("  console: take_many                  %7.3f  per subscriber\n",
	       (p2.take + p10.take) / 2 / n / 1000);
	printf("  console: writev of shared frames    %7.3f  per subscriber\n",
	       (p2.writev + p10.writev) / 2 / n / 1000);
	printf("  console as before: take, copy, write %6.3f  per subscriber\n",
	       (p2.copy + p10.copy) / 2 / n / 1000);
	printf("  client (plexus -e): read, parse, print %5.3f  per subscriber\n", client_us);
	printf("  console wake-up (poll timeout, empty take) %.2f us each; a subscriber's CPU\n"
	       "  (wake-ups + take_many + writev per event), %% of a core:\n",
	       wake_us);
	printf("    event_gather_ms     2600 ev/s (200 calls/s)   12000 ev/s (930 calls/s)\n");
	for (int g = 0; g < 4; g++) {
		static const int ms[] = {10, 20, 50, 100};
		double per_event = (p2.take + p10.take + p2.writev + p10.writev) / 2 / n / 1000;
		double wakes = 1000.0 / ms[g];
		printf("    %4d             %8.3f %%                %8.3f %%\n", ms[g],
		       (wakes * wake_us + 2600 * per_event) / 1e4,
		       (wakes * wake_us + 12000 * per_event) / 1e4);
	}
	return 0;
}
