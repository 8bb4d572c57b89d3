/*
 * bench-events: the CPU cost of the event stream's parts, per event, outside
 * "make check" and without SIP load, so that the figures hold on a busy
 * machine (thread CPU time, not wall time). A ChannelState event like the
 * ones a call emits (a channel, eight fields, ~400 bytes of JSON) is
 *   emit     emitted with S subscribers queueing it (the emitting thread:
 *            SIP or session), per event;
 *   text     encoded once as JSON and framed for the consoles;
 *   console  taken and written by one console, per event: take_many (one
 *            lock per batch of B) and one writev of the shared frames to a
 *            Unix socket read by another thread; and, for comparison, the
 *            way it was done before: a take, a copy into a batch buffer with
 *            a header formatted per event, one write.
 * Usage: bench/event_bench [events] (default 200000), from the build
 * directory ("make bench-events").
 */
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

static void emit_one(px_channel *ch, int i)
{
	PX_EVENT_EMIT(PX_EV_CHANNEL_STATE, ch, NULL, PX_EVS("state", "Up"), PX_EVI("state_code", 6),
		      PX_EVS("caller_num", "1001"), PX_EVS("caller_name", "Reception desk"),
		      PX_EVS("connected_num", "1002"), PX_EVS("connected_name", "Sales"),
		      PX_EVS("context", "internal"), PX_EVS("exten", i & 1 ? "1002" : "1003"));
}

struct sink {
	int fd;
	volatile int stop;
};

/* The client's end: read and throw away (its cost is not counted). */
static void *sink_main(void *arg)
{
	struct sink *s = arg;
	static char buf[1 << 16];

	while (read(s->fd, buf, sizeof(buf)) > 0)
		;
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
	ch = px_channel_alloc(&tech, "SIP/1001", NULL, NULL);
	if (!ch || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return 1;
	sink.fd = sv[1];
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
	px_channel_unref(ch);

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
	return 0;
}
