/*
 * plexus, the console client of plexusd: it owns the command line of the
 * program, finding the console socket (-s, -C plexus.conf, $PLEXUS_SOCKET or
 * the built-in default), and the three ways of talking to the daemon over the
 * console protocol (docs/console-protocol.md): one command with -x whose
 * status becomes the exit status, commands read from a non-terminal stdin for
 * scripts, and the interactive console with libedit line editing, history,
 * tab completion asked from the daemon, log lines printed above the prompt
 * and, with -r, waiting for the daemon and reconnecting when it restarts.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <histedit.h>
#include <libgen.h>
#include <limits.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <plexus/config.h>

#include "events.h"
#include "protocol.h"
#include "switchboard.h"

#ifndef PX_RUNDIR
#define PX_RUNDIR "/var/run/plexus"
#endif
#ifndef PACKAGE_VERSION
#define PACKAGE_VERSION "unknown"
#endif

#define DEFAULT_SOCKET PX_RUNDIR "/plexus.ctl"

/* Exit statuses of the client itself; 0..3 are passed through from `end`. */
#define EXIT_USAGE         2
#define EXIT_NO_CONNECTION 4
#define EXIT_DENIED        5 /* the daemon's status for a command the role forbids */

#define RECONNECT_INTERVAL_MS 1000
/* A daemon that accepted us but says nothing is not worth waiting for long:
 * the prompt comes up without a banner after this. */
#define BANNER_TIMEOUT_MS 5000
#define HISTORY_SIZE      1000
#define HISTORY_FILE      ".plexus_history"

/* Set by the signal handler, acted upon where the client waits. Outside
 * those waits the signals stay blocked, so none is lost between a check of
 * these flags and the ppoll() that would sleep through it. */
static volatile sig_atomic_t interrupt_requested;
static volatile sig_atomic_t terminal_resized;
static volatile sig_atomic_t suspend_requested;
static volatile sig_atomic_t terminating_signal;

struct console {
	const char *socket_path;
	int fd; /* -1 while not connected */
	struct px_frame_reader reader;
	uint64_t last_id;

	bool interactive; /* libedit session: logs shown, disconnects survivable */
	bool quiet;
	bool keep_trying; /* -r */
	bool stdout_is_tty;
	sigset_t wait_mask; /* signal mask while sleeping in ppoll() */

	EditLine *el;
	History *history;
	char *history_path;
	char *prompt;
	bool in_editor;      /* inside el_gets(): printing must redraw the prompt */
	bool line_open;      /* the last thing printed did not end with a newline */
	mbstate_t key_state; /* partial multibyte character typed so far */
	int64_t next_attempt_ms;

	bool session_started; /* the first connection got its banner */
	bool line_abandoned;  /* Ctrl-C: drop the edited line */
	bool finished;        /* leave with exit_status */
	int exit_status;
};

enum wait_result {
	WAIT_FRAME,
	WAIT_TIMEOUT,
	WAIT_SIGNAL, /* Ctrl-C or a terminating signal arrived */
	WAIT_LOST,   /* end of stream or read error; reason already reported */
	WAIT_BROKEN, /* the daemon sent something that is not a frame */
};

static void note_signal(int signo)
{
	switch (signo) {
	case SIGINT:
		interrupt_requested = 1;
		break;
	case SIGWINCH:
		terminal_resized = 1;
		break;
	case SIGTSTP:
		suspend_requested = 1;
		break;
	default:
		terminating_signal = signo;
		break;
	}
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int ms_until(int64_t deadline_ms)
{
	int64_t left = deadline_ms - now_ms();

	if (left < 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

/* poll() that lets the caught signals in only while it sleeps. */
static int wait_ready(struct console *c, struct pollfd *fds, nfds_t nfds, int timeout_ms)
{
	struct timespec ts, *tsp = NULL;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000;
		tsp = &ts;
	}
	return ppoll(fds, nfds, tsp, &c->wait_mask);
}

static bool stop_signal_pending(void)
{
	return interrupt_requested || terminating_signal;
}

/* Ctrl-Z: give the terminal back in its normal mode while stopped. */
static void suspend_self(struct console *c)
{
	suspend_requested = 0;
	if (c->in_editor)
		el_set(c->el, EL_PREP_TERM, 0);
	fflush(stdout);
	raise(SIGSTOP);
	if (c->in_editor) {
		el_set(c->el, EL_PREP_TERM, 1);
		el_set(c->el, EL_REFRESH);
	}
}

/* Sleep, but wake up for a signal that asks us to stop: false then. */
static bool pause_ms(struct console *c, int ms)
{
	int64_t deadline = now_ms() + ms;

	for (;;) {
		if (suspend_requested)
			suspend_self(c);
		if (stop_signal_pending())
			return false;
		if (ms_until(deadline) == 0)
			return true;
		wait_ready(c, NULL, 0, ms_until(deadline));
	}
}

static int connect_socket(const char *path)
{
	struct sockaddr_un addr;
	int fd, rc;

	memset(&addr, 0, sizeof(addr));
	addr.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(addr.sun_path)) {
		errno = ENAMETOOLONG;
		return -1;
	}
	strcpy(addr.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	do
		rc = connect(fd, (struct sockaddr *)&addr, sizeof(addr));
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		int saved = errno;

		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void adopt_connection(struct console *c, int fd)
{
	c->fd = fd;
	px_frame_reader_free(&c->reader);
	px_frame_reader_init(&c->reader);
}

static void drop_connection(struct console *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	px_frame_reader_free(&c->reader);
	px_frame_reader_init(&c->reader);
}

/* Display columns taken by len bytes of s, so that we know on which screen
 * row libedit left the cursor. */
static size_t display_width(const char *s, size_t len)
{
	mbstate_t state;
	size_t width = 0;

	memset(&state, 0, sizeof(state));
	while (len) {
		wchar_t wc;
		size_t n = mbrtowc(&wc, s, len, &state);
		int w;

		if (n == (size_t)-1 || n == (size_t)-2) {
			memset(&state, 0, sizeof(state));
			n = 1;
			w = 1;
		} else {
			if (n == 0)
				n = 1;
			w = wcwidth(wc);
		}
		if (w > 0)
			width += (size_t)w;
		s += n;
		len -= n;
	}
	return width;
}

static size_t terminal_columns(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
		return ws.ws_col;
	return 80;
}

/* Screen rows (from the prompt's row) of the cursor and of the end of the
 * line being edited, which may wrap. */
static void input_rows(struct console *c, size_t *cursor_row, size_t *last_row)
{
	const LineInfo *li = el_line(c->el);
	size_t cols = terminal_columns();
	size_t prompt = display_width(c->prompt, strlen(c->prompt));

	*cursor_row =
		(prompt + display_width(li->buffer, (size_t)(li->cursor - li->buffer))) / cols;
	*last_row =
		(prompt + display_width(li->buffer, (size_t)(li->lastchar - li->buffer))) / cols;
}

/* Wipe the prompt and the line being edited so that other text can take
 * their place; the caller prints, then has libedit draw them again. */
static void erase_input(struct console *c)
{
	size_t cursor_row, last_row;

	if (!c->stdout_is_tty) {
		fputc('\r', stdout);
		return;
	}
	input_rows(c, &cursor_row, &last_row);
	if (cursor_row)
		printf("\x1b[%zuA", cursor_row);
	fputs("\r\x1b[J", stdout);
}

/* Text that is not the output of the command being run (log lines, news of
 * the connection): at the prompt it goes above the line being edited. */
static void show_notice(struct console *c, const char *text, size_t len)
{
	if (c->in_editor)
		erase_input(c);
	else if (c->line_open)
		fputc('\n', stdout);
	fwrite(text, 1, len, stdout);
	if (!len || text[len - 1] != '\n')
		fputc('\n', stdout);
	c->line_open = false;
	fflush(stdout);
	/* A session that is over leaves the cursor on a fresh line for the
	 * shell instead of a prompt nobody will answer. */
	if (c->in_editor && !c->finished)
		el_set(c->el, EL_REFRESH);
}

static void show_noticef(struct console *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void show_noticef(struct console *c, const char *fmt, ...)
{
	va_list ap;
	char *text;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&text, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	show_notice(c, text, (size_t)n);
	free(text);
}

/* The daemon is gone: say so and decide whether the session goes on. reason
 * is NULL for a plain end of stream. */
static void connection_lost(struct console *c, const char *reason)
{
	drop_connection(c);
	if (c->interactive && !c->session_started)
		return; /* a failed first attempt: open_connection() reports */
	if (!c->interactive) {
		fprintf(stderr, "plexus: connection to plexusd lost%s%s\n", reason ? ": " : "",
			reason ? reason : "");
		c->finished = true;
		c->exit_status = EXIT_NO_CONNECTION;
		return;
	}
	if (c->keep_trying) {
		c->next_attempt_ms = now_ms() + RECONNECT_INTERVAL_MS;
	} else {
		c->finished = true;
		c->exit_status = EXIT_NO_CONNECTION;
	}
	if (reason)
		show_noticef(c, "Disconnected from Plexus server (%s)", reason);
	else
		show_noticef(c, "Disconnected from Plexus server");
}

/* We can no longer tell where frames start: nothing sensible can follow. */
static void protocol_broken(struct console *c, const char *why)
{
	if (c->in_editor)
		erase_input(c);
	else if (c->line_open)
		fputc('\n', stdout);
	fflush(stdout);
	fprintf(stderr, "plexus: malformed data from plexusd: %s\n", why);
	drop_connection(c);
	c->finished = true;
	c->exit_status = EXIT_NO_CONNECTION;
}

/* Wait for the next complete frame; deadline_ms < 0 waits for ever. */
static enum wait_result await_frame(struct console *c, struct px_frame *f, int64_t deadline_ms)
{
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		const char *why = NULL;
		ssize_t got;
		int ready, rc;

		rc = px_frame_next(&c->reader, f, &why);
		if (rc > 0)
			return WAIT_FRAME;
		if (rc < 0) {
			protocol_broken(c, why);
			return WAIT_BROKEN;
		}
		if (suspend_requested)
			suspend_self(c);
		if (stop_signal_pending())
			return WAIT_SIGNAL;
		if (deadline_ms >= 0 && ms_until(deadline_ms) == 0)
			return WAIT_TIMEOUT;
		ready = wait_ready(c, &pfd, 1, deadline_ms >= 0 ? ms_until(deadline_ms) : -1);
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0) {
			connection_lost(c, strerror(errno));
			return WAIT_LOST;
		}
		if (ready == 0)
			continue;
		got = px_frame_reader_fill(&c->reader, c->fd);
		if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
			continue;
		connection_lost(c, got < 0 ? strerror(errno) : NULL);
		return WAIT_LOST;
	}
}

/* A frame that is not the answer being waited for. False for a bye, with its
 * reason in *bye_reason: the caller then calls connection_closed_by_daemon. */
static bool handle_unsolicited(struct console *c, const struct px_frame *f, char **bye_reason)
{
	if (!strcmp(f->kind, "log")) {
		/* -x and scripts turn logs off; any that slipped in before that
		 * took effect would only be noise in their output. */
		if (c->interactive)
			show_notice(c, f->payload, f->len);
		return true;
	}
	if (!strcmp(f->kind, "bye")) {
		size_t len = f->len;

		while (len && isspace((unsigned char)f->payload[len - 1]))
			len--;
		*bye_reason = len ? strndup(f->payload, len) : NULL;
		return false;
	}
	/* A late banner, or the answer to a request we gave up on. */
	return true;
}

/* After a bye frame: report it with its reason. */
static void connection_closed_by_daemon(struct console *c, char *reason)
{
	connection_lost(c, reason ? reason : "plexusd is stopping");
	free(reason);
}

/* Take the frames already buffered that nobody waits for (we are at the
 * prompt). False when the connection ended. */
static bool process_buffered_frames(struct console *c)
{
	struct px_frame f;
	const char *why = NULL;
	char *reason = NULL;
	int rc;

	while (c->fd >= 0 && (rc = px_frame_next(&c->reader, &f, &why)) != 0) {
		if (rc < 0) {
			protocol_broken(c, why);
			return false;
		}
		if (!handle_unsolicited(c, &f, &reason)) {
			connection_closed_by_daemon(c, reason);
			return false;
		}
	}
	return c->fd >= 0;
}

/* The daemon greets every connection with a banner; a copy goes to *banner
 * (NULL if it did not come in time). False if the connection failed first. */
static bool receive_banner(struct console *c, char **banner)
{
	int64_t deadline = now_ms() + BANNER_TIMEOUT_MS;
	char *reason = NULL;
	struct px_frame f;

	*banner = NULL;
	for (;;) {
		switch (await_frame(c, &f, deadline)) {
		case WAIT_FRAME:
			break;
		case WAIT_TIMEOUT:
			return true;
		case WAIT_SIGNAL:
			drop_connection(c);
			return false;
		case WAIT_LOST:
		case WAIT_BROKEN:
			return false;
		}
		if (!strcmp(f.kind, "banner")) {
			size_t len = f.len;

			while (len && isspace((unsigned char)f.payload[len - 1]))
				len--;
			*banner = strndup(f.payload, len);
			return true;
		}
		if (!handle_unsolicited(c, &f, &reason)) {
			connection_closed_by_daemon(c, reason);
			return false;
		}
	}
}

static bool transient_connect_error(int err)
{
	return err == ENOENT || err == ECONNREFUSED || err == EAGAIN || err == ECONNRESET;
}

/* First connection. With -r a daemon that is not there yet is waited for. */
static bool open_connection(struct console *c)
{
	bool announced = false;
	FILE *news = c->interactive ? stdout : stderr;

	for (;;) {
		int fd = connect_socket(c->socket_path);
		int err = errno;

		if (fd >= 0) {
			char *banner;

			adopt_connection(c, fd);
			if (!c->interactive)
				return true;
			if (receive_banner(c, &banner)) {
				c->session_started = true;
				if (banner && !c->quiet)
					printf("Connected to %s\n", banner);
				free(banner);
				return true;
			}
			drop_connection(c);
			if (c->finished || stop_signal_pending())
				return false;
			err = ECONNRESET;
		}
		if (!c->keep_trying || !transient_connect_error(err)) {
			fprintf(stderr, "plexus: cannot connect to %s: %s (is plexusd running?)\n",
				c->socket_path, strerror(err));
			return false;
		}
		if (!announced) {
			fprintf(news, "Waiting for plexusd on %s...\n", c->socket_path);
			fflush(news);
			announced = true;
		}
		if (!pause_ms(c, RECONNECT_INTERVAL_MS))
			return false;
	}
}

/* One reconnection attempt while the interactive session goes on. */
static bool try_reconnect(struct console *c)
{
	char *banner;
	int fd;

	c->next_attempt_ms = now_ms() + RECONNECT_INTERVAL_MS;
	fd = connect_socket(c->socket_path);
	if (fd < 0)
		return false;
	adopt_connection(c, fd);
	if (!receive_banner(c, &banner))
		return false;
	show_noticef(c, "Reconnected to %s", banner && !c->quiet ? banner : "Plexus");
	free(banner);
	return true;
}

static bool write_output(struct console *c, const char *data, size_t len)
{
	if (!len)
		return true;
	if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0) {
		if (errno != EPIPE)
			fprintf(stderr, "plexus: cannot write output: %s\n", strerror(errno));
		c->finished = true;
		c->exit_status = EXIT_NO_CONNECTION;
		return false;
	}
	c->line_open = data[len - 1] != '\n';
	return true;
}

static bool parse_status(const struct px_frame *f, int *status)
{
	char *end;
	long v;

	if (!f->len || !isdigit((unsigned char)f->payload[0]))
		return false;
	errno = 0;
	v = strtol(f->payload, &end, 10);
	while (end < f->payload + f->len && isspace((unsigned char)*end))
		end++;
	if (errno || end != f->payload + f->len)
		return false;
	/* Statuses this client does not know still mean "did not succeed". */
	*status = v <= 3 || v == EXIT_DENIED ? (int)v : 1;
	return true;
}

/* Send a request; a failure to send is a lost connection. */
static bool send_request(struct console *c, const char *kind, const char *payload, uint64_t *id)
{
	size_t len = strlen(payload);

	if (len > PX_PROTO_MAX_PAYLOAD) {
		fprintf(stderr, "plexus: request too long (%zu bytes, at most %d)\n", len,
			PX_PROTO_MAX_PAYLOAD);
		return false;
	}
	*id = ++c->last_id;
	if (px_frame_write(c->fd, kind, *id, payload, len) < 0) {
		connection_lost(c, strerror(errno));
		return false;
	}
	return true;
}

/* What to do after Ctrl-C or a terminating signal interrupted a wait. */
static void stop_waiting(struct console *c)
{
	if (terminating_signal) {
		c->finished = true;
		return;
	}
	interrupt_requested = 0;
	/* The command goes on in the daemon; its late frames carry an id we
	 * no longer wait for and are dropped. */
	if (c->line_open || c->interactive)
		fputc('\n', stdout);
	c->line_open = false;
	fflush(stdout);
}

/* Run one command line, printing its output as it comes. True with the
 * command's status in *status; false if it could not be run to its end. */
static bool run_command(struct console *c, const char *line, int *status)
{
	char *reason = NULL;
	struct px_frame f;
	uint64_t id;

	if (c->fd < 0 && !(c->keep_trying && try_reconnect(c))) {
		if (c->fd < 0 && !c->finished)
			show_noticef(c, "Not connected to plexusd (%s)", c->socket_path);
		return false;
	}
	if (!send_request(c, "cmd", line, &id))
		return false;
	for (;;) {
		switch (await_frame(c, &f, -1)) {
		case WAIT_FRAME:
			break;
		case WAIT_SIGNAL:
			stop_waiting(c);
			return false;
		case WAIT_TIMEOUT:
			continue;
		case WAIT_LOST:
		case WAIT_BROKEN:
			return false;
		}
		if (f.id == id && !strcmp(f.kind, "out")) {
			if (!write_output(c, f.payload, f.len))
				return false;
		} else if (f.id == id && !strcmp(f.kind, "end")) {
			if (!parse_status(&f, status)) {
				protocol_broken(c, "bad command status");
				return false;
			}
			return true;
		} else if (!handle_unsolicited(c, &f, &reason)) {
			connection_closed_by_daemon(c, reason);
			return false;
		}
	}
}

/* Logs would be noise in the output of -x or a script. Its `end` comes back
 * before the command's and is ignored as the answer to nobody. */
static bool silence_logs(struct console *c)
{
	uint64_t id;

	return send_request(c, "log", "off", &id);
}

static int run_single_command(struct console *c, const char *command)
{
	int status;

	if (!open_connection(c))
		return EXIT_NO_CONNECTION;
	if (!silence_logs(c) || !run_command(c, command, &status))
		return EXIT_NO_CONNECTION;
	return status;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		end--;
	*end = '\0';
	return s;
}

static bool is_quit_command(const char *line)
{
	return !strcasecmp(line, "quit") || !strcasecmp(line, "exit");
}

/* Commands from a pipe or file, one a line; the last status is ours. */
static int run_script(struct console *c)
{
	char *buf = NULL;
	size_t cap = 0;
	int status = 0;

	if (!open_connection(c))
		return EXIT_NO_CONNECTION;
	if (!silence_logs(c))
		return EXIT_NO_CONNECTION;
	while (getline(&buf, &cap, stdin) >= 0) {
		char *line = trim(buf);

		if (!*line)
			continue;
		if (is_quit_command(line))
			break;
		if (!run_command(c, line, &status)) {
			status = c->exit_status ? c->exit_status : EXIT_NO_CONNECTION;
			break;
		}
	}
	free(buf);
	return status;
}

static struct console *console_of(EditLine *el)
{
	void *data = NULL;

	el_get(el, EL_CLIENTDATA, &data);
	return data;
}

static char *prompt_of(EditLine *el)
{
	return console_of(el)->prompt;
}

/* Signals that arrived while editing. False when el_gets() must return. */
static bool take_signals_at_prompt(struct console *c)
{
	if (terminating_signal)
		c->finished = true;
	if (interrupt_requested) {
		interrupt_requested = 0;
		c->line_abandoned = true;
		return false;
	}
	if (terminal_resized) {
		terminal_resized = 0;
		el_resize(c->el);
	}
	if (suspend_requested)
		suspend_self(c);
	return !c->finished;
}

/* libedit's character source: waits on the keyboard and the daemon at once
 * so that log lines and disconnections show while the user types. Returns 1
 * with a character, 0 to make el_gets() return (end of input, Ctrl-C, or
 * the session is over), -1 on a read error. */
static int read_key(EditLine *el, wchar_t *key)
{
	struct console *c = console_of(el);

	for (;;) {
		struct pollfd fds[2];
		nfds_t nfds = 1;
		int timeout = -1;
		char byte;
		ssize_t n;
		size_t used;
		int ready;

		/* Frames read along with an earlier answer wake no poll(). They
		 * may end the connection, so look at c->fd only after them. */
		if (c->fd >= 0)
			process_buffered_frames(c);
		if (!take_signals_at_prompt(c))
			return 0;
		fds[0] = (struct pollfd){.fd = STDIN_FILENO, .events = POLLIN};
		if (c->fd >= 0)
			fds[nfds++] = (struct pollfd){.fd = c->fd, .events = POLLIN};
		if (c->fd < 0 && c->keep_trying)
			timeout = ms_until(c->next_attempt_ms);
		ready = wait_ready(c, fds, nfds, timeout);
		if (ready < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (ready == 0) {
			if (c->fd < 0 && c->keep_trying)
				try_reconnect(c);
			continue;
		}
		if (nfds == 2 && fds[1].revents) {
			ssize_t got = px_frame_reader_fill(&c->reader, c->fd);

			if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
				connection_lost(c, got < 0 ? strerror(errno) : NULL);
			continue;
		}
		if (!fds[0].revents)
			continue;
		n = read(STDIN_FILENO, &byte, 1);
		if (n < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (n <= 0)
			return (int)n;
		used = mbrtowc(key, &byte, 1, &c->key_state);
		if (used == (size_t)-2)
			continue;
		if (used == (size_t)-1) {
			/* Not text in our locale: drop it rather than guess. */
			memset(&c->key_state, 0, sizeof(c->key_state));
			continue;
		}
		return 1;
	}
}

/* Ask the daemon for the candidates completing line. */
static char *ask_completions(struct console *c, const char *line)
{
	char *reason = NULL;
	struct px_frame f;
	uint64_t id;

	if (c->fd < 0 || !send_request(c, "complete", line, &id))
		return NULL;
	for (;;) {
		switch (await_frame(c, &f, -1)) {
		case WAIT_FRAME:
			break;
		case WAIT_SIGNAL:
			return NULL; /* read_key() sees the signal next */
		case WAIT_TIMEOUT:
			continue;
		case WAIT_LOST:
		case WAIT_BROKEN:
			return NULL;
		}
		if (f.id == id && !strcmp(f.kind, "comp"))
			return strndup(f.payload, f.len);
		if (!handle_unsolicited(c, &f, &reason)) {
			connection_closed_by_daemon(c, reason);
			return NULL;
		}
	}
}

/* Split the comp payload in place into its non-empty lines. */
static char **split_candidates(char *answer, size_t *count)
{
	size_t n = 0, cap = 16;
	char **list = malloc(cap * sizeof(*list));
	char *line, *save = NULL;

	if (!list)
		return NULL;
	for (line = strtok_r(answer, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (n == cap) {
			char **bigger = realloc(list, 2 * cap * sizeof(*list));

			if (!bigger) {
				free(list);
				return NULL;
			}
			list = bigger;
			cap *= 2;
		}
		list[n++] = line;
	}
	*count = n;
	return list;
}

static size_t common_prefix_length(char **words, size_t count)
{
	size_t len = strlen(words[0]);

	for (size_t i = 1; i < count; i++) {
		size_t k = 0;

		while (k < len && words[i][k] == words[0][k])
			k++;
		len = k;
	}
	/* Never stop in the middle of a UTF-8 sequence. */
	while (len && ((unsigned char)words[0][len] & 0xc0) == 0x80)
		len--;
	return len;
}

/* Put text in place of the word being completed (which it extends when it
 * starts with it, the usual case). */
static bool replace_word(EditLine *el, const char *word, const char *text, size_t text_len,
			 bool then_space)
{
	size_t word_len = strlen(word);
	char *insert;
	bool ok;

	if (text_len >= word_len && !strncmp(text, word, word_len)) {
		text += word_len;
		text_len -= word_len;
	} else {
		size_t chars = mbstowcs(NULL, word, 0);

		el_deletestr(el, chars == (size_t)-1 ? (int)word_len : (int)chars);
	}
	if (asprintf(&insert, "%.*s%s", (int)text_len, text, then_space ? " " : "") < 0)
		return false;
	ok = !*insert || el_insertstr(el, insert) == 0;
	free(insert);
	return ok;
}

/* Candidates in columns under the line being edited, like ls does. */
static void list_candidates(struct console *c, char **words, size_t count)
{
	size_t cols = terminal_columns(), widest = 0, per_row, rows;
	size_t cursor_row, last_row;

	for (size_t i = 0; i < count; i++) {
		size_t w = display_width(words[i], strlen(words[i]));

		if (w > widest)
			widest = w;
	}
	per_row = cols / (widest + 2);
	if (!per_row)
		per_row = 1;
	rows = (count + per_row - 1) / per_row;

	if (c->stdout_is_tty) {
		input_rows(c, &cursor_row, &last_row);
		if (last_row > cursor_row)
			printf("\x1b[%zuB", last_row - cursor_row);
	}
	fputc('\n', stdout);
	for (size_t r = 0; r < rows; r++) {
		for (size_t k = 0; k < per_row; k++) {
			size_t i = k * rows + r;
			size_t width;

			if (i >= count)
				break;
			fputs(words[i], stdout);
			/* No trailing blanks after the last column. */
			if (k + 1 == per_row || i + rows >= count)
				break;
			width = display_width(words[i], strlen(words[i]));
			printf("%*s", (int)(widest + 2 - width), "");
		}
		fputc('\n', stdout);
	}
	fflush(stdout);
}

/* Tab: the daemon knows the commands, we only edit the line. */
static unsigned char complete_command(EditLine *el, int key)
{
	struct console *c = console_of(el);
	const LineInfo *li = el_line(el);
	char *typed, *answer = NULL, *word;
	char **words = NULL;
	size_t count = 0, prefix;
	unsigned char result = CC_REFRESH_BEEP;

	typed = strndup(li->buffer, (size_t)(li->cursor - li->buffer));
	if (!typed)
		return CC_ERROR;
	answer = ask_completions(c, typed);
	if (!answer)
		goto done;
	words = split_candidates(answer, &count);
	if (!words || !count)
		goto done;

	word = typed + strlen(typed);
	while (word > typed && !isspace((unsigned char)word[-1]))
		word--;

	if (count == 1) {
		if (replace_word(el, word, words[0], strlen(words[0]), true))
			result = CC_REFRESH;
		goto done;
	}
	prefix = common_prefix_length(words, count);
	if (prefix > strlen(word)) {
		if (replace_word(el, word, words[0], prefix, false))
			result = CC_REFRESH;
		goto done;
	}
	list_candidates(c, words, count);
	/* The cursor now sits on a fresh line under the list. CC_REDISPLAY
	 * would first clear the rows libedit believes the line occupies,
	 * i.e. the end of the list when the line wraps; a plain refresh of a
	 * cleared display just draws the prompt and line where we are. */
	el_set(el, EL_REFRESH);
	result = CC_NORM;
done:
	free(words);
	free(answer);
	free(typed);
	return result;
}

static bool setup_editor(struct console *c)
{
	char host[HOST_NAME_MAX + 1];
	const char *home = getenv("HOME");
	HistEvent ev;

	if (gethostname(host, sizeof(host)) < 0)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	if (asprintf(&c->prompt, "%s*CLI> ", host) < 0) {
		c->prompt = NULL;
		return false;
	}

	c->history = history_init();
	if (!c->history)
		return false;
	history(c->history, &ev, H_SETSIZE, HISTORY_SIZE);
	history(c->history, &ev, H_SETUNIQUE, 1);
	if (home && *home) {
		if (asprintf(&c->history_path, "%s/%s", home, HISTORY_FILE) < 0)
			c->history_path = NULL;
		else
			history(c->history, &ev, H_LOAD, c->history_path);
	}

	/* The name selects the "plexus:" lines of ~/.editrc. */
	c->el = el_init("plexus", stdin, stdout, stderr);
	if (!c->el)
		return false;
	el_set(c->el, EL_CLIENTDATA, c);
	el_set(c->el, EL_PROMPT, prompt_of);
	el_set(c->el, EL_EDITOR, "emacs");
	el_set(c->el, EL_HIST, history, c->history);
	el_set(c->el, EL_GETCFN, read_key);
	/* The wide form: libedit keeps these strings as given, while the narrow
	 * el_set(EL_ADDFN) copies them and never frees the copies. */
	el_wset(c->el, EL_ADDFN, L"plexus-complete", L"Complete the word from plexusd",
		complete_command);
	/* ~/.editrc may choose vi mode and other keys; Tab stays ours. */
	el_source(c->el, NULL);
	el_set(c->el, EL_BIND, "^I", "plexus-complete", NULL);
	return true;
}

static void teardown_editor(struct console *c)
{
	HistEvent ev;

	if (c->history && c->history_path)
		history(c->history, &ev, H_SAVE, c->history_path);
	if (c->el)
		el_end(c->el);
	if (c->history)
		history_end(c->history);
	free(c->history_path);
	free(c->prompt);
	c->el = NULL;
	c->history = NULL;
	c->history_path = NULL;
	c->prompt = NULL;
}

/* The signals the interactive console handles itself; blocked except while
 * it sleeps in ppoll(). */
static void catch_signals(struct console *c)
{
	static const int handled[] = {SIGINT, SIGTERM, SIGHUP, SIGWINCH, SIGTSTP};
	struct sigaction sa;
	sigset_t block;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = note_signal;
	sigemptyset(&sa.sa_mask);
	sigemptyset(&block);
	for (size_t i = 0; i < sizeof(handled) / sizeof(handled[0]); i++) {
		sigaction(handled[i], &sa, NULL);
		sigaddset(&block, handled[i]);
	}
	sigprocmask(SIG_BLOCK, &block, &c->wait_mask);
}

static void run_line(struct console *c, const char *entered)
{
	char *copy = strdup(entered);
	char *line;
	int status;
	HistEvent ev;

	if (!copy)
		return;
	line = trim(copy);
	if (*line) {
		history(c->history, &ev, H_ENTER, line);
		if (is_quit_command(line)) {
			c->finished = true;
			c->exit_status = 0;
		} else if (run_command(c, line, &status) && c->line_open) {
			/* Keep the next prompt off an unfinished last line. */
			fputc('\n', stdout);
			c->line_open = false;
			fflush(stdout);
		}
	}
	free(copy);
}

static int run_interactive(struct console *c)
{
	setlocale(LC_CTYPE, "");
	catch_signals(c);
	if (!open_connection(c)) {
		fflush(stdout);
		return EXIT_NO_CONNECTION;
	}
	fflush(stdout);
	if (!setup_editor(c)) {
		fprintf(stderr, "plexus: cannot set up line editing\n");
		teardown_editor(c);
		return EXIT_NO_CONNECTION;
	}
	while (!c->finished) {
		const char *entered;
		int count;

		c->line_abandoned = false;
		c->in_editor = true;
		entered = el_gets(c->el, &count);
		c->in_editor = false;
		if (terminating_signal)
			fputc('\n', stdout);
		if (c->finished)
			break;
		if (c->line_abandoned) {
			fputc('\n', stdout);
			fflush(stdout);
			continue;
		}
		if (!entered) {
			/* Ctrl-D or the end of the terminal's input. */
			fputc('\n', stdout);
			c->exit_status = 0;
			break;
		}
		run_line(c, entered);
	}
	fflush(stdout);
	teardown_editor(c);
	return c->exit_status;
}

static char *socket_from_config(const char *path)
{
	const px_config_section *section;
	const px_config_var *var;
	px_config *cfg = NULL;
	char *socket_path = NULL;
	px_err err;

	err.msg[0] = '\0';
	if (px_config_load(path, &cfg, &err) < 0) {
		fprintf(stderr, "plexus: %s\n", err.msg[0] ? err.msg : path);
		return NULL;
	}
	section = px_config_find(cfg, "console");
	var = section ? px_config_var_find(section, "socket") : NULL;
	if (!var || !*var->value) {
		socket_path = strdup("");
	} else if (var->value[0] == '/') {
		socket_path = strdup(var->value);
	} else {
		/* plexusd takes relative paths from the directory of the file;
		 * we must find the socket where it put it. */
		char *dir_copy = strdup(path);

		if (dir_copy && asprintf(&socket_path, "%s/%s", dirname(dir_copy), var->value) < 0)
			socket_path = NULL;
		free(dir_copy);
	}
	px_config_unref(cfg);
	return socket_path;
}

/* -s, else [console] socket of -C, else $PLEXUS_SOCKET, else the default.
 * NULL (reported) when the configuration cannot be read. */
static char *choose_socket_path(const char *socket_opt, const char *config_opt)
{
	const char *env = getenv("PLEXUS_SOCKET");

	if (socket_opt)
		return strdup(socket_opt);
	if (config_opt) {
		char *from_config = socket_from_config(config_opt);

		if (!from_config || *from_config)
			return from_config;
		free(from_config);
	}
	if (env && *env)
		return strdup(env);
	return strdup(DEFAULT_SOCKET);
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: plexus [-s SOCKET | -C plexus.conf] [-x COMMAND] [-r] [-q] [-h] [-V]\n"
		"       plexus [-s SOCKET | -C plexus.conf] [-r] -e [FILTER ...]\n"
		"       plexus [-s SOCKET | -C plexus.conf] --switchboard\n"
		"Talk to a running plexusd over its console socket.\n"
		"\n"
		"  -s SOCKET    console socket of plexusd\n"
		"  -C FILE      take the socket from the [console] socket key of FILE\n"
		"  -x COMMAND   run COMMAND, print its output, exit with its status\n"
		"  -e           print events as JSON lines, one object per event; FILTER:\n"
		"               type=T[,T...] (or just T), channel=NAME, endpoint=NAME,\n"
		"               queue=N\n"
		"  --switchboard  a full-screen view of the live calls and registrations,\n"
		"               reconnecting when plexusd restarts. Keys: Up/Down select a\n"
		"               call, Tab its party, h hang up, r redirect to\n"
		"               exten[@context], o originate (endpoint, then\n"
		"               exten[@context]), ? help, q quit. Calls show From/To (the\n"
		"               parties' endpoints), State, Time, Caller ID, Connected and\n"
		"               the channels; registrations show Endpoint, Contact, Source,\n"
		"               Expires (s) and User agent (see docs/switchboard.md)\n"
		"  -r           wait for plexusd to start and reconnect when it restarts\n"
		"  -q           do not print the banner\n"
		"  -h           show this help\n"
		"  -V           show the version\n"
		"\n"
		"Without -s or -C the socket is $PLEXUS_SOCKET, else %s.\n"
		"Without -x, commands are read from the terminal, or one per line from a\n"
		"non-terminal standard input.\n"
		"Exit status: the command's (0 success, 1 failed, 2 wrong arguments,\n"
		"3 no such command, 5 not allowed by this user's console role), 4 when\n"
		"plexusd could not be reached or went away.\n",
		DEFAULT_SOCKET);
}

int main(int argc, char **argv)
{
	const char *socket_opt = NULL, *config_opt = NULL, *command = NULL;
	struct console c;
	int opt, status;
	char *socket_path;
	bool events = false, switchboard = false;
	static const struct option long_options[] = {
		{"switchboard", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};

	memset(&c, 0, sizeof(c));
	c.fd = -1;
	px_frame_reader_init(&c.reader);

	while ((opt = getopt_long(argc, argv, "s:C:x:erqhV", long_options, NULL)) != -1) {
		switch (opt) {
		case 's':
			socket_opt = optarg;
			break;
		case 'C':
			config_opt = optarg;
			break;
		case 'x':
			if (command) {
				fprintf(stderr, "plexus: only one -x COMMAND may be given\n");
				return EXIT_USAGE;
			}
			command = optarg;
			break;
		case 'e':
			events = true;
			break;
		case 'S':
			switchboard = true;
			break;
		case 'r':
			c.keep_trying = true;
			break;
		case 'q':
			c.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("plexus %s\n", PACKAGE_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (events && command) {
		fprintf(stderr, "plexus: -e and -x cannot be combined\n");
		return EXIT_USAGE;
	}
	if (switchboard && (events || command)) {
		fprintf(stderr, "plexus: --switchboard cannot be combined with -e or -x\n");
		return EXIT_USAGE;
	}
	if (optind < argc && !events) {
		fprintf(stderr,
			"plexus: unexpected argument '%s' (quote the command given to -x)\n",
			argv[optind]);
		usage(stderr);
		return EXIT_USAGE;
	}

	/* A daemon that goes away must be reported, not kill us. */
	signal(SIGPIPE, SIG_IGN);
	sigprocmask(SIG_BLOCK, NULL, &c.wait_mask);

	socket_path = choose_socket_path(socket_opt, config_opt);
	if (!socket_path)
		return EXIT_NO_CONNECTION;
	c.socket_path = socket_path;
	c.stdout_is_tty = isatty(STDOUT_FILENO);

	if (switchboard) {
		status = px_switchboard_run(socket_path);
	} else if (events) {
		status = px_events_run(socket_path, argc - optind, argv + optind, c.keep_trying,
				       c.quiet);
	} else if (command) {
		status = run_single_command(&c, command);
	} else if (isatty(STDIN_FILENO)) {
		c.interactive = true;
		status = run_interactive(&c);
	} else {
		status = run_script(&c);
	}

	drop_connection(&c);
	px_frame_reader_free(&c.reader);
	free(socket_path);
	if (fflush(stdout) != 0 && errno != EPIPE && !status)
		status = EXIT_NO_CONNECTION;
	if (terminating_signal) {
		/* Die of the signal, as the shell expects, now that the
		 * terminal is restored and the history saved. */
		sigset_t unblock;

		signal(terminating_signal, SIG_DFL);
		sigemptyset(&unblock);
		sigaddset(&unblock, terminating_signal);
		sigprocmask(SIG_UNBLOCK, &unblock, NULL);
		raise(terminating_signal);
	}
	return status;
}
