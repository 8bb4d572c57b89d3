/*
 * The console server. An accept thread takes connections on the control
 * socket, reads each peer's credentials, resolves its role (console.conf)
 * and starts a thread for it. That thread reads frames
 * (docs/console-protocol.md), runs commands, completion and JSON actions,
 * and writes answers, queued log lines and subscribed events back. Log
 * lines and events wait in bounded queues filled without blocking by the
 * threads that produce them; writes never hold a lock and never raise
 * SIGPIPE; a client that vanishes or stops reading only stalls its own
 * thread.
 */
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <plexus/core.h>
#include <plexus/event.h>
#include <plexus/log.h>

#include "cli_internal.h"
#include "console_actions.h"
#include "console_roles.h"
#include "console_server.h"
#include "event_json.h"
#include "log_internal.h"
#include "protocol.h"

/* A console that reads its log lines too slowly loses the oldest first
 * beyond this many, and is told how many. */
#define LOG_QUEUE_MAX 2000
#define MAX_CONSOLES  256
/* Events written per wake-up before the thread looks at its socket again. */
#define EVENT_BATCH 256
/* How long a console streaming events lets them gather before it takes
 * and writes them (console.conf [events] event_gather_ms, read at every
 * batch): the first event after a quiet spell wakes the thread (the
 * subscription is armed), which then takes what came every period while
 * events keep coming, without being woken for them, and arms the
 * subscription again only when it found nothing. A busy bus thus costs
 * each console one wake-up (a timeout) and one write per period, whatever
 * the event rate, and its emitters no system call at all. The price is
 * latency: an event is on the wire at most about one period after it
 * happened (docs/console-protocol.md). */
static int64_t gather_ns(void)
{
	return (int64_t)px_console_event_gather_ms() * 1000000;
}
/* An event batch buffer larger than this is freed after its write. */
#define OUT_KEEP   (256 * 1024)
#define MAX_GROUPS 64

struct log_line {
	struct log_line *next;
	size_t len;
	char text[];
};

struct px_console {
	int fd;
	int wake_fd; /* eventfd: log lines queued, or the server stops */
	pthread_t thread;
	bool done; /* thread finished; may be joined */
	struct ucred cred;
	gid_t groups[MAX_GROUPS]; /* supplementary groups (SO_PEERGROUPS) */
	int ngroups;
	enum px_role role;
	unsigned role_gen;    /* roles generation role was resolved from */
	px_event_sub *events; /* NULL: not subscribed */
	unsigned serial;
	struct px_log_subscriber sub;
	bool log_on;
	bool dead;       /* a write failed: the client is gone */
	bool lines;      /* events only, a JSON object per line: no frames */
	bool lines_next; /* ... from after the result of the Subscribe asking it */
	char *out;       /* a batch with EventsLost notices being built */
	size_t out_len, out_cap;
	px_event *evs[EVENT_BATCH]; /* the batch being written */
	uint64_t lost[EVENT_BATCH];
	struct iovec iov[2 * EVENT_BATCH]; /* a frame each, or a line and its newline */
	uint64_t current_id;
	pid_t tid;       /* the console thread's, for its scheduling priority */
	int base_nice;   /* its nice value when it does not stream */
	int stream_nice; /* the nice value it runs at now, streaming (-1: not) */

	pthread_mutex_t qlock; /* protects the queue and dropped only */
	struct log_line *qhead, *qtail;
	size_t qlen;
	size_t dropped;

	struct px_console *next;
};

static pthread_mutex_t consoles_lock = PTHREAD_MUTEX_INITIALIZER;
static struct px_console *consoles;
static int nconsoles;
static int listen_fd = -1;
static int stop_fd = -1;
static bool stopping;
static pthread_t accept_thread;
static bool accept_running;
static char *socket_path;
static char *bye_reason;

int px_console_probe(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc == 0;
}

/* ---- output ---- */

static void console_send(struct px_console *c, const char *kind, uint64_t id, const char *data,
			 size_t len)
{
	/* A connection of lines carries events and nothing else: whatever
	 * else it would be told (a result, a bye) it goes without. */
	if (c->dead || c->lines)
		return;
	if (px_frame_write(c->fd, kind, id, data, len) < 0) {
		c->dead = true;
		px_debug(1, "console %u: write failed (%s); dropping the client", c->serial,
			 strerror(errno));
	}
}

static void flush_logs(struct px_console *c)
{
	struct log_line *list;
	size_t dropped;

	pthread_mutex_lock(&c->qlock);
	list = c->qhead;
	dropped = c->dropped;
	c->qhead = c->qtail = NULL;
	c->qlen = 0;
	c->dropped = 0;
	pthread_mutex_unlock(&c->qlock);
	if (dropped) {
		char note[64];
		int n = snprintf(note, sizeof(note), "[%zu log lines dropped]\n", dropped);
		console_send(c, "log", 0, note, (size_t)n);
	}
	while (list) {
		struct log_line *next = list->next;
		console_send(c, "log", 0, list->text, list->len);
		free(list);
		list = next;
	}
}

/* Logger callback: queue the line; never blocks beyond the queue lock. */
static void console_deliver(void *ctx, enum px_log_level level, const char *line, size_t len)
{
	struct px_console *c = ctx;
	struct log_line *l;
	uint64_t one = 1;

	(void)level;
	pthread_mutex_lock(&c->qlock);
	if (c->qlen >= LOG_QUEUE_MAX) {
		c->dropped++;
		pthread_mutex_unlock(&c->qlock);
		return;
	}
	l = malloc(sizeof(*l) + len);
	if (!l) {
		c->dropped++;
		pthread_mutex_unlock(&c->qlock);
		return;
	}
	l->next = NULL;
	l->len = len;
	memcpy(l->text, line, len);
	if (c->qtail)
		c->qtail->next = l;
	else
		c->qhead = l;
	c->qtail = l;
	c->qlen++;
	pthread_mutex_unlock(&c->qlock);
	if (write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter only saturates; the thread drains the queue anyway. */
	}
}

static void wake(struct px_console *c)
{
	uint64_t one = 1;

	if (write(c->wake_fd, &one, sizeof(one)) < 0) {
		/* The counter only saturates; the thread drains its queues anyway. */
	}
}

/* Event bus callback, under the bus lock: only wake the thread. */
static void events_notify(void *ctx)
{
	wake(ctx);
}

/* Append one event frame to the batch being built; on failure (out of
 * memory) the client is dropped, as for a failed write. */
static void batch_event(struct px_console *c, const char *json, size_t len)
{
	if (c->dead)
		return;
	if ((c->lines ? px_line_append(&c->out, &c->out_len, &c->out_cap, json, len)
		      : px_frame_append(&c->out, &c->out_len, &c->out_cap, "event", 0, json, len)) <
	    0) {
		c->dead = true;
		px_debug(1, "console %u: cannot queue an event (%s); dropping the client",
			 c->serial, strerror(errno));
	}
}

static void batch_lost(struct px_console *c, uint64_t lost, uint64_t after_seq)
{
	char *text = px_event_lost_json(lost, after_seq);

	if (text)
		batch_event(c, text, strlen(text));
	free(text);
}

static void write_failed(struct px_console *c)
{
	c->dead = true;
	px_debug(1, "console %u: write failed (%s); dropping the client", c->serial,
		 strerror(errno));
}

/* A batch with a loss in it: its EventsLost notices are this console's
 * own, so the frames are copied into one buffer around them. Rare. */
static void write_with_losses(struct px_console *c, size_t n, uint64_t ahead, uint64_t ahead_seq)
{
	c->out_len = 0;
	if (ahead)
		batch_lost(c, ahead, ahead_seq);
	for (size_t k = 0; k < n; k++) {
		const struct px_event_text *t = px_event_text(c->evs[k]);
		if (t)
			batch_event(c, t->json, t->json_len);
		if (c->lost[k])
			batch_lost(c, c->lost[k], px_event_seq(c->evs[k]));
	}
	if (c->out_len && !c->dead && px_write_all(c->fd, c->out, c->out_len) < 0)
		write_failed(c);
	/* A burst leaves a large buffer behind: give it back. */
	if (c->out_cap > OUT_KEEP) {
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	c->out_len = 0;
}

/* A console thread streaming events does latency-tolerant work: it runs
 * at console.conf's event_nice under SCHED_BATCH (never preempting a
 * thread when it wakes), so that under CPU contention the SIP and session
 * threads come first; its queue absorbs the delay and what overflows is
 * counted and told as EventsLost. Applied at Subscribe and again at each
 * batch when a reload changed the setting; undone on Unsubscribe. Raising
 * a nice value needs no privilege; lowering it back needs CAP_SYS_NICE or
 * RLIMIT_NICE, so without them the thread keeps the lower priority until
 * the connection closes (its thread ends with it). Called only by the
 * console's own thread. */
static void stream_priority(struct px_console *c, bool streaming)
{
	int want = streaming ? px_console_event_nice() : -1;
	int nice = want > 0 ? c->base_nice + want : c->base_nice;
	struct sched_param sp = {0};

	if (want == c->stream_nice)
		return;
	if (nice > 19)
		nice = 19;
	if (setpriority(PRIO_PROCESS, (id_t)c->tid, nice) < 0)
		px_debug(1, "console %u: cannot set its nice value to %d: %s", c->serial, nice,
			 strerror(errno));
	if (sched_setscheduler(c->tid, want > 0 ? SCHED_BATCH : SCHED_OTHER, &sp) < 0)
		px_debug(1, "console %u: cannot set its scheduling policy: %s", c->serial,
			 strerror(errno));
	c->stream_nice = want;
}

/* Take up to EVENT_BATCH queued events (one lock) and write them as
 * "event" frames in one system call: each frame is the text the event
 * carries for every console (px_event_text), written from there, so a
 * console costs no encoding and no copy per event. Returns how many were
 * taken; the subscription is not armed here (see console_main). */
static size_t flush_events(struct px_console *c)
{
	uint64_t ahead, ahead_seq = 0;
	size_t n, k, niov = 0;
	bool losses;

	if (!c->events || c->dead)
		return 0;
	stream_priority(c, true); /* a reload may have changed event_nice */
	ahead = px_event_sub_lost_ahead(c->events, &ahead_seq);
	n = px_event_sub_take_many(c->events, c->evs, c->lost, EVENT_BATCH);
	losses = ahead != 0;
	for (k = 0; k < n && !losses; k++)
		losses = c->lost[k] != 0;
	if (losses) {
		write_with_losses(c, n, ahead, ahead_seq);
	} else {
		static const char newline[] = "\n";
		for (k = 0; k < n; k++) {
			const struct px_event_text *t = px_event_text(c->evs[k]);
			if (!t)
				continue;
			if (!c->lines) {
				c->iov[niov++] = (struct iovec){.iov_base = (void *)t->frame,
								.iov_len = t->frame_len};
				continue;
			}
			c->iov[niov++] =
				(struct iovec){.iov_base = (void *)t->json, .iov_len = t->json_len};
			c->iov[niov++] = (struct iovec){.iov_base = (void *)newline, .iov_len = 1};
		}
		if (niov && px_writev_all(c->fd, c->iov, (int)niov) < 0)
			write_failed(c);
	}
	for (k = 0; k < n; k++)
		px_event_unref(c->evs[k]);
	return n;
}

static int64_t monotonic_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

/* After a flush of n events: when to take events next (0: never, the
 * subscription is armed and the bus wakes the thread). */
static int64_t next_events_due(struct px_console *c, size_t n, int64_t now)
{
	if (n == EVENT_BATCH)
		return now; /* more waiting: after a look at the socket */
	if (n)
		return now + gather_ns();
	if (!c->events || px_event_sub_arm(c->events))
		return 0;
	return now; /* queued since the take: take it too */
}

static int console_subscribe(struct px_console *c, const struct px_event_filter *f, size_t queue,
			     bool lines, px_err *err)
{
	px_event_sub *s;

	/* Lines from after this Subscribe's result (handle_frame). */
	c->lines_next = lines;
	/* A new Subscribe replaces the filter and the queue size of the
	 * subscription in place: the events already queued are still sent,
	 * none twice, and none goes missing in between. */
	if (c->events) {
		if (px_event_sub_configure(c->events, f, queue) < 0)
			return px_err_set(err, "out of memory");
		return 0;
	}
	s = px_event_subscribe(f, queue, events_notify, c);
	if (!s)
		return px_err_set(err, "out of memory");
	c->events = s;
	stream_priority(c, true);
	return 0;
}

static void console_unsubscribe(struct px_console *c)
{
	px_event_unsubscribe(c->events);
	c->events = NULL;
	stream_priority(c, false);
}

/* The role follows console.conf: re-resolved after a reload. A console
 * left with no role is told why and closed; false then. */
static bool refresh_role(struct px_console *c)
{
	static const char why[] = "access denied: console.conf gives this user no role";
	unsigned gen = px_console_roles_generation();

	if (gen != c->role_gen) {
		c->role_gen = gen;
		c->role = px_console_role_of(c->cred.uid, c->cred.gid, c->groups, c->ngroups);
	}
	if (c->role != PX_ROLE_NONE)
		return true;
	if (!c->dead) {
		px_log_notice("Console %u (pid %d, uid %d): its role was revoked; closing",
			      c->serial, (int)c->cred.pid, (int)c->cred.uid);
		console_send(c, "bye", 0, why, sizeof(why) - 1);
	}
	c->dead = true;
	return false;
}

void px_console_roles_changed(void)
{
	pthread_mutex_lock(&consoles_lock);
	for (struct px_console *c = consoles; c; c = c->next)
		wake(c);
	pthread_mutex_unlock(&consoles_lock);
}

/* Command output goes out as "out" frames; pending log lines first, so the
 * client sees events in the order they happened. */
static void console_out(void *ctx, const char *data, size_t len)
{
	struct px_console *c = ctx;

	flush_logs(c);
	console_send(c, "out", c->current_id, data, len);
}

/* ---- levels ---- */

void px_console_set_levels(struct px_console *c, int verbose, int debug)
{
	px_log_subscriber_changed(&c->sub, c->sub.mask, verbose, debug);
}

void px_console_get_levels(struct px_console *c, int *verbose, int *debug)
{
	*verbose = c->sub.verbose;
	*debug = c->sub.debug;
}

void px_console_set_level_enabled(struct px_console *c, enum px_log_level level, bool on)
{
	unsigned mask = c->sub.mask;

	if (on)
		mask |= PX_LOG_MASK(level);
	else
		mask &= ~PX_LOG_MASK(level);
	px_log_subscriber_changed(&c->sub, mask, c->sub.verbose, c->sub.debug);
}

unsigned px_console_level_mask(struct px_console *c)
{
	return c->sub.mask;
}

int px_console_count(void)
{
	int n;

	pthread_mutex_lock(&consoles_lock);
	n = nconsoles;
	pthread_mutex_unlock(&consoles_lock);
	return n;
}

/* ---- one console ---- */

/* After a Subscribe with "format":"lines" was answered: from here on the
 * connection carries its events, a JSON object per line, and nothing
 * else, for a client that only streams them (plexus -e moves them to its
 * output without reading them). Its log lines stop; what the client sends
 * from now on is read and ignored. */
static void start_lines(struct px_console *c)
{
	c->lines_next = false;
	c->lines = true;
	if (c->log_on) {
		c->log_on = false;
		px_log_unsubscribe(&c->sub);
	}
}

static void handle_frame(struct px_console *c, const struct px_frame *f)
{
	px_cli cli = {.write = console_out,
		      .ctx = c,
		      .console = c,
		      .uid = c->cred.uid,
		      .pid = c->cred.pid};
	char status[16];
	int n;

	if (!refresh_role(c) || c->lines)
		return;
	cli.role = c->role;
	if (!strcmp(f->kind, "action")) {
		struct px_action_conn conn = {.role = c->role,
					      .uid = c->cred.uid,
					      .pid = c->cred.pid,
					      .console = c,
					      .subscribe = console_subscribe,
					      .unsubscribe = console_unsubscribe};
		char *result = px_action_run(&conn, f->payload, f->len);
		flush_logs(c);
		static const char nomem[] = "{\"response\":\"Error\",\"code\":\"failed\","
					    "\"message\":\"out of memory\"}";
		if (result)
			console_send(c, "result", f->id, result, strlen(result));
		else
			console_send(c, "result", f->id, nomem, sizeof(nomem) - 1);
		free(result);
		if (c->lines_next)
			start_lines(c);
	} else if (!strcmp(f->kind, "cmd")) {
		enum px_cli_status st;
		c->current_id = f->id;
		px_debug(2, "console %u (pid %d): %s", c->serial, (int)c->cred.pid, f->payload);
		st = px_cli_execute(&cli, f->payload);
		flush_logs(c);
		n = snprintf(status, sizeof(status), "%d", (int)st);
		console_send(c, "end", f->id, status, (size_t)n);
	} else if (!strcmp(f->kind, "complete")) {
		char *cands = px_cli_complete(&cli, f->payload);
		console_send(c, "comp", f->id, cands ? cands : "", cands ? strlen(cands) : 0);
		free(cands);
	} else if (!strcmp(f->kind, "log")) {
		bool on = !strcmp(f->payload, "on");
		if (!on && strcmp(f->payload, "off")) {
			console_send(c, "end", f->id, "2", 1);
			return;
		}
		if (on != c->log_on) {
			c->log_on = on;
			if (on)
				px_log_subscribe(&c->sub);
			else
				px_log_unsubscribe(&c->sub);
		}
		console_send(c, "end", f->id, "0", 1);
	} else {
		px_log_warning("console %u (pid %d): unknown frame kind '%s'; closing", c->serial,
			       (int)c->cred.pid, f->kind);
		c->dead = true;
	}
}

static void *console_main(void *arg)
{
	struct px_console *c = arg;
	struct px_frame_reader reader;
	char host[256] = "localhost";
	char banner[512];
	int n;

	px_frame_reader_init(&reader);
	c->tid = gettid();
	errno = 0;
	c->base_nice = getpriority(PRIO_PROCESS, (id_t)c->tid);
	if (errno)
		c->base_nice = 0;
	c->stream_nice = -1;
	gethostname(host, sizeof(host) - 1);
	n = snprintf(banner, sizeof(banner), "Plexus %s on %s (pid %d)", px_version(), host,
		     (int)getpid());
	console_send(c, "banner", 0, banner, (size_t)n);

	/* When to take events next (monotonic ns); 0 while the subscription
	 * is armed (or there is none) and the bus wakes the thread. */
	int64_t events_due = 0;

	while (!c->dead) {
		struct pollfd pfd[2] = {{.fd = c->fd, .events = POLLIN},
					{.fd = c->wake_fd, .events = POLLIN}};
		int timeout = -1;

		if (events_due) {
			int64_t left = events_due - monotonic_ns();
			timeout = left > 0 ? (int)((left + 999999) / 1000000) : 0;
		}
		if (poll(pfd, 2, timeout) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[1].revents & POLLIN) {
			uint64_t v;
			if (read(c->wake_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
				break;
			/* Nothing more reaches a console whose role was revoked,
			 * even one that never sends a request. */
			if (!refresh_role(c))
				break;
			flush_logs(c);
			if (__atomic_load_n(&stopping, __ATOMIC_ACQUIRE)) {
				const char *why = bye_reason ? bye_reason : "shutting down";
				flush_events(c);
				console_send(c, "bye", 0, why, strlen(why));
				break;
			}
			/* Woken by the bus (or a log line): the events of the
			 * next period go out together. */
			if (c->events && !events_due)
				events_due = monotonic_ns() + gather_ns();
		}
		if (events_due && monotonic_ns() >= events_due) {
			size_t taken = flush_events(c);
			events_due = next_events_due(c, taken, monotonic_ns());
		}
		if (pfd[0].revents & (POLLIN | POLLHUP | POLLERR)) {
			struct px_frame f;
			const char *msg = NULL;
			int got;
			ssize_t r = px_frame_reader_fill(&reader, c->fd);
			if (r == 0 || (r < 0 && errno != EAGAIN))
				break;
			while (!c->dead && (got = px_frame_next(&reader, &f, &msg)) == 1)
				handle_frame(c, &f);
			if (got < 0) {
				px_log_warning("console %u (pid %d): %s; closing", c->serial,
					       (int)c->cred.pid, msg);
				break;
			}
		}
	}
	if (c->log_on)
		px_log_unsubscribe(&c->sub);
	c->log_on = false;
	console_unsubscribe(c);
	/* The client learns at once; the descriptor is closed when reaped. */
	shutdown(c->fd, SHUT_RDWR);
	px_frame_reader_free(&reader);
	px_verbose(2, "Console %u (pid %d, uid %d) disconnected", c->serial, (int)c->cred.pid,
		   (int)c->cred.uid);
	pthread_mutex_lock(&consoles_lock);
	c->done = true;
	nconsoles--;
	pthread_mutex_unlock(&consoles_lock);
	return NULL;
}

static void console_free(struct px_console *c)
{
	struct log_line *l = c->qhead;

	while (l) {
		struct log_line *next = l->next;
		free(l);
		l = next;
	}
	close(c->fd);
	close(c->wake_fd);
	pthread_mutex_destroy(&c->qlock);
	free(c->out);
	free(c);
}

/* Join and free the consoles whose threads have finished. */
static void reap_consoles(bool all)
{
	for (;;) {
		struct px_console *found = NULL;
		pthread_mutex_lock(&consoles_lock);
		for (struct px_console **pp = &consoles; *pp; pp = &(*pp)->next) {
			if ((*pp)->done || all) {
				found = *pp;
				*pp = found->next;
				break;
			}
		}
		pthread_mutex_unlock(&consoles_lock);
		if (!found)
			return;
		pthread_join(found->thread, NULL);
		console_free(found);
	}
}

static void start_console(int fd)
{
	static unsigned serial;
	struct px_console *c;
	socklen_t len = sizeof(struct ucred);
	char name[32];

	if (px_console_count() >= MAX_CONSOLES) {
		static const char msg[] = "too many consoles";
		px_log_warning("Refusing a console: %d already connected", MAX_CONSOLES);
		px_frame_write(fd, "bye", 0, msg, sizeof(msg) - 1);
		close(fd);
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
	c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (c->wake_fd < 0) {
		px_log_error("Cannot accept a console: eventfd: %s", strerror(errno));
		close(fd);
		free(c);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len) < 0) {
		c->cred.pid = 0;
		c->cred.uid = (uid_t)-1;
		c->cred.gid = (gid_t)-1;
	}
#ifdef SO_PEERGROUPS
	len = sizeof(c->groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, c->groups, &len) == 0)
		c->ngroups = (int)(len / sizeof(gid_t));
#endif
	c->role_gen = px_console_roles_generation();
	c->role = px_console_role_of(c->cred.uid, c->cred.gid, c->groups, c->ngroups);
	if (c->role == PX_ROLE_NONE) {
		static const char msg[] = "access denied: console.conf gives this user no role";
		px_log_notice("Refusing a console: uid %d (pid %d) has no role in console.conf",
			      (int)c->cred.uid, (int)c->cred.pid);
		px_frame_write(fd, "bye", 0, msg, sizeof(msg) - 1);
		close(fd);
		close(c->wake_fd);
		free(c);
		return;
	}
	pthread_mutex_init(&c->qlock, NULL);
	c->serial = ++serial;
	c->sub.mask = PX_LOG_MASK_ALL;
	c->sub.verbose = px_log_get_verbose();
	c->sub.debug = px_log_get_debug();
	c->sub.deliver = console_deliver;
	c->sub.ctx = c;
	c->log_on = true;
	px_log_subscribe(&c->sub);
	px_verbose(2, "Console %u connected (pid %d, uid %d, gid %d, role %s)", c->serial,
		   (int)c->cred.pid, (int)c->cred.uid, (int)c->cred.gid, px_role_name(c->role));

	pthread_mutex_lock(&consoles_lock);
	c->next = consoles;
	consoles = c;
	nconsoles++;
	pthread_mutex_unlock(&consoles_lock);
	snprintf(name, sizeof(name), "console/%u", c->serial);
	if (px_thread_start(&c->thread, name, console_main, c) != 0) {
		px_log_error("Cannot start a console thread: %s", strerror(errno));
		px_log_unsubscribe(&c->sub);
		pthread_mutex_lock(&consoles_lock);
		for (struct px_console **pp = &consoles; *pp; pp = &(*pp)->next)
			if (*pp == c) {
				*pp = c->next;
				break;
			}
		nconsoles--;
		pthread_mutex_unlock(&consoles_lock);
		console_free(c);
	}
}

static void *accept_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct pollfd pfd[2] = {{.fd = listen_fd, .events = POLLIN},
					{.fd = stop_fd, .events = POLLIN}};
		int fd;

		if (poll(pfd, 2, 1000) < 0 && errno != EINTR)
			break;
		reap_consoles(false);
		if (pfd[1].revents & POLLIN)
			break;
		if (!(pfd[0].revents & POLLIN))
			continue;
		fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED)
				px_log_warning("Console accept failed: %s", strerror(errno));
			continue;
		}
		start_console(fd);
	}
	return NULL;
}

static int make_parent_dir(const char *path, px_err *err)
{
	char *copy = strdup(path), *slash;

	if (!copy)
		return px_err_set(err, "out of memory");
	slash = strrchr(copy, '/');
	if (slash && slash != copy) {
		*slash = '\0';
		if (mkdir(copy, 0755) < 0 && errno != EEXIST) {
			px_err_set(err, "cannot create directory %s: %s", copy, strerror(errno));
			free(copy);
			return -1;
		}
	}
	free(copy);
	return 0;
}

int px_console_server_start(const struct px_console_listen *l, px_err *err)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	uid_t uid = (uid_t)-1;
	gid_t gid = (gid_t)-1;

	if (strlen(l->path) >= sizeof(sa.sun_path))
		return px_err_set(err, "control socket path too long: %s", l->path);
	if (px_console_probe(l->path))
		return px_err_set(err, "another plexusd is already running on %s", l->path);
	if (make_parent_dir(l->path, err) < 0)
		return -1;
	if (l->owner) {
		struct passwd *pw = getpwnam(l->owner);
		if (!pw)
			return px_err_set(err, "no such user '%s' for the control socket",
					  l->owner);
		uid = pw->pw_uid;
	}
	if (l->group) {
		struct group *gr = getgrnam(l->group);
		if (!gr)
			return px_err_set(err, "no such group '%s' for the control socket",
					  l->group);
		gid = gr->gr_gid;
	}
	strcpy(sa.sun_path, l->path);
	/* Nothing answers there: whatever is left is a stale socket. */
	unlink(l->path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (listen_fd < 0)
		return px_err_set(err, "socket: %s", strerror(errno));
	if (bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		px_err_set(err, "cannot bind control socket %s: %s", l->path, strerror(errno));
		goto fail;
	}
	if (chmod(l->path, l->mode) < 0) {
		px_err_set(err, "cannot chmod %s: %s", l->path, strerror(errno));
		goto fail_unlink;
	}
	if ((uid != (uid_t)-1 || gid != (gid_t)-1) && chown(l->path, uid, gid) < 0) {
		px_err_set(err, "cannot chown %s: %s", l->path, strerror(errno));
		goto fail_unlink;
	}
	if (listen(listen_fd, 64) < 0) {
		px_err_set(err, "listen on %s: %s", l->path, strerror(errno));
		goto fail_unlink;
	}
	stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (stop_fd < 0) {
		px_err_set(err, "eventfd: %s", strerror(errno));
		goto fail_unlink;
	}
	socket_path = strdup(l->path);
	stopping = false;
	if (px_thread_start(&accept_thread, "console-accept", accept_main, NULL) != 0) {
		px_err_set(err, "cannot start the console thread");
		close(stop_fd);
		stop_fd = -1;
		free(socket_path);
		socket_path = NULL;
		goto fail_unlink;
	}
	accept_running = true;
	px_verbose(1, "Console listening on %s (mode %04o)", l->path, (unsigned)l->mode);
	return 0;
fail_unlink:
	unlink(l->path);
fail:
	close(listen_fd);
	listen_fd = -1;
	return -1;
}

void px_console_server_stop(const char *reason)
{
	uint64_t one = 1;

	if (!accept_running)
		return;
	/* No new consoles. */
	if (write(stop_fd, &one, sizeof(one)) < 0)
		px_log_warning("Cannot wake the console thread: %s", strerror(errno));
	pthread_join(accept_thread, NULL);
	accept_running = false;

	/* Every console says goodbye and ends its thread. A thread stuck
	 * writing to a client that does not read is cut loose after a while. */
	free(bye_reason);
	bye_reason = reason ? strdup(reason) : NULL;
	__atomic_store_n(&stopping, true, __ATOMIC_RELEASE);
	pthread_mutex_lock(&consoles_lock);
	for (struct px_console *c = consoles; c; c = c->next)
		if (write(c->wake_fd, &one, sizeof(one)) < 0)
			px_log_warning("Cannot wake console %u", c->serial);
	pthread_mutex_unlock(&consoles_lock);
	for (int waited = 0; waited < 200 && px_console_count() > 0; waited++)
		usleep(10000);
	pthread_mutex_lock(&consoles_lock);
	for (struct px_console *c = consoles; c; c = c->next)
		if (!c->done)
			shutdown(c->fd, SHUT_RDWR);
	pthread_mutex_unlock(&consoles_lock);
	reap_consoles(true);

	close(listen_fd);
	listen_fd = -1;
	close(stop_fd);
	stop_fd = -1;
	if (socket_path)
		unlink(socket_path);
	free(socket_path);
	socket_path = NULL;
	free(bye_reason);
	bye_reason = NULL;
}
