/*
 * plexus --switchboard (switchboard.h, docs/switchboard.md): the terminal
 * view, drawn with ncurses, and its loop. One poll() waits on the terminal,
 * the console connection and a self-pipe of signals (SIGWINCH resizes,
 * SIGINT/SIGTERM/SIGHUP end it). The connection follows the protocol's
 * advice for clients: log off, Subscribe to every event, then Status and
 * Registrations; events update the model (sbmodel.h) between snapshots,
 * and EventsLost or a new connection asks for the snapshots again. When
 * plexusd goes away the view says so, forgets what it showed and tries
 * again every second. Actions from keys are sent without waiting: their
 * results come back like events, matched by frame ID, and are shown on
 * the message line. Every cell is cut to its column's width on the
 * screen (control characters shown as '?'), so no text ever wraps.
 */
#include <errno.h>
#include <fcntl.h>
#include <locale.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>

#include <curses.h>
#include <jansson.h>

#include "pxclient.h"
#include "sbmodel.h"
#include "switchboard.h"

#define CONNECT_TIMEOUT_MS 2000
#define RETRY_MS           1000
#define EVENT_QUEUE        20000
#define MAX_PENDING        64
#define MAX_ROWS           1024
#define INPUT_MAX          200
#define DEFAULT_CONTEXT    "default"

enum pending_kind { P_SUBSCRIBE, P_STATUS, P_REGISTRATIONS, P_USER };
enum mode { M_NORMAL, M_PROMPT, M_HELP };
enum prompt_kind { PR_REDIRECT, PR_ORIGINATE_FROM, PR_ORIGINATE_TO };

struct pending {
	uint64_t id;
	enum pending_kind kind;
	char what[700]; /* for the message line: "Hangup SIP/1001-0000002a" */
};

struct sb {
	const char *socket_path;
	struct px_client c;
	bool connected;
	char conn_msg[600]; /* why we are disconnected */
	long long next_try;
	bool status_pending, regs_pending;
	char regs_error[200]; /* the Registrations action failed: why */

	struct sb_model m;
	struct pending pending[MAX_PENDING];
	size_t npending;

	/* The selected call is remembered by its first channel, so that it
	 * stays selected while rows come and go. */
	char sel_chan[SB_NAME_MAX];
	int sel;
	int party; /* 0: the caller (a), 1: the callee (b) */
	int top;   /* first call row shown */

	enum mode mode;
	enum prompt_kind prompt;
	char prompt_text[200];
	char input[INPUT_MAX + 1];
	size_t ilen;
	char target[SB_NAME_MAX];      /* the channel a redirect is for */
	char orig_from[INPUT_MAX + 1]; /* the endpoint typed for originate */

	char msg[1000];
	bool dirty;
};

static int sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t stop_signal, resized;

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_signal(int signo)
{
	int saved = errno;
	char b = 0;

	if (signo == SIGWINCH)
		resized = 1;
	else
		stop_signal = signo;
	if (write(sig_pipe[1], &b, 1) < 0) {
		/* The pipe is full: a wake-up is pending anyway. */
	}
	errno = saved;
}

__attribute__((format(printf, 2, 3))) static void message(struct sb *s, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	va_end(ap);
	s->dirty = true;
}

/* ---- text that fits ---- */

/* The longest prefix of text shown in at most width cells, made safe for
 * the screen (control and undecodable bytes become '?'), into out; *cells
 * gets the cells it takes. */
static void fit(const char *text, int width, char *out, size_t outsize, int *cells)
{
	mbstate_t st;
	size_t o = 0;
	int used = 0;
	bool utf8 = MB_CUR_MAX > 1;

	memset(&st, 0, sizeof(st));
	while (*text && o + 8 < outsize) {
		unsigned char ch = (unsigned char)*text;
		wchar_t wc;
		size_t len = 1;
		int w = 1;
		bool ok = ch >= 0x20 && ch < 0x7f;

		if (!ok && utf8 && ch >= 0x80) {
			len = mbrtowc(&wc, text, strlen(text), &st);
			if (len == (size_t)-1 || len == (size_t)-2 || len == 0) {
				memset(&st, 0, sizeof(st));
				len = 1;
			} else {
				w = wcwidth(wc);
				ok = w > 0;
				if (!ok)
					w = 1;
			}
		}
		if (used + w > width)
			break;
		if (ok) {
			memcpy(out + o, text, len);
			o += len;
		} else {
			out[o++] = '?';
		}
		used += w;
		text += len;
	}
	out[o] = '\0';
	if (cells)
		*cells = used;
}

static int text_width(const char *text)
{
	char buf[512];
	int cells;

	fit(text, 1 << 20, buf, sizeof(buf), &cells);
	return cells;
}

/* Draw text at (y, x) in exactly width cells (cut, or padded with blanks),
 * never past the screen's right edge. */
static void put(int y, int x, int width, const char *text)
{
	char buf[1024];
	int cells;

	if (x >= COLS || y >= LINES || width <= 0)
		return;
	if (x + width > COLS)
		width = COLS - x;
	/* The bottom-right cell: writing it would scroll some terminals. */
	if (y == LINES - 1 && x + width == COLS)
		width--;
	fit(text, width, buf, sizeof(buf), &cells);
	mvaddstr(y, x, buf);
	for (; cells < width; cells++)
		addch(' ');
}

/* ---- tables ---- */

#define MAX_COLS 8

/* A column: its title, its cap and minimum width, which goes first when
 * the screen is narrow (lower drop first; 0 never), and whether it may
 * shrink below its content. */
struct column {
	const char *title;
	int cap, min, drop;
	bool shrink;
	int width; /* laid out: 0 when dropped */
};

static int shown_width(const struct column *cols, int ncols)
{
	int total = 0, shown = 0;

	for (int i = 0; i < ncols; i++)
		if (cols[i].width) {
			total += cols[i].width;
			shown++;
		}
	return total + (shown > 1 ? shown - 1 : 0);
}

/* Choose widths for the columns given the widest cell of each: drop the
 * columns that go first until the rest fit at their minimum widths, then
 * give each its content's width and take back what does not fit, from the
 * columns that go first before the others. */
static void layout(struct column *cols, int ncols, const int *content, int avail)
{
	for (int i = 0; i < ncols; i++) {
		int w = content[i] > (int)strlen(cols[i].title) ? content[i]
								: (int)strlen(cols[i].title);
		cols[i].width = w > cols[i].cap ? cols[i].cap : w;
	}
	for (;;) {
		struct column mins[MAX_COLS];
		int worst = -1;

		for (int i = 0; i < ncols; i++) {
			mins[i] = cols[i];
			if (cols[i].width && cols[i].shrink && cols[i].width > cols[i].min)
				mins[i].width = cols[i].min;
		}
		if (shown_width(mins, ncols) <= avail)
			break;
		for (int i = 0; i < ncols; i++)
			if (cols[i].width && cols[i].drop &&
			    (worst < 0 || cols[i].drop < cols[worst].drop))
				worst = i;
		if (worst < 0)
			break; /* what is left is cut at the right edge */
		cols[worst].width = 0;
	}
	/* Shrink: the first to drop give first, the essential ones last. */
	for (int pass = 0; pass < 2; pass++)
		for (int prio = 1; prio <= MAX_COLS; prio++)
			for (int i = 0; i < ncols; i++) {
				int excess = shown_width(cols, ncols) - avail;
				int can = cols[i].width - cols[i].min;
				bool turn = pass == 0 ? cols[i].drop == prio
						      : (prio == 1 && !cols[i].drop);
				if (excess <= 0)
					return;
				if (!turn || !cols[i].width || !cols[i].shrink || can <= 0)
					continue;
				cols[i].width -= excess < can ? excess : can;
			}
}

static void draw_row(int y, int x, const struct column *cols, int ncols, const char *const *cells)
{
	for (int i = 0; i < ncols; i++) {
		if (!cols[i].width)
			continue;
		put(y, x, cols[i].width, cells[i]);
		x += cols[i].width + 1;
		if (x >= COLS)
			break;
	}
}

/* ---- the calls ---- */

enum { C_FROM, C_TO, C_STATE, C_TIME, C_CALLER, C_CONNECTED, C_CHAN_A, C_CHAN_B, C_NCOLS };

static const struct column call_columns[C_NCOLS] = {
	[C_FROM] = {"From", 16, 4, 0, true, 0},
	[C_TO] = {"To", 16, 4, 0, true, 0},
	[C_STATE] = {"State", 12, 5, 0, true, 0},
	[C_TIME] = {"Time", 8, 4, 0, false, 0},
	[C_CALLER] = {"Caller ID", 24, 12, 3, true, 0},
	[C_CONNECTED] = {"Connected", 24, 12, 2, true, 0},
	[C_CHAN_A] = {"Channel", 28, 10, 1, true, 0},
	[C_CHAN_B] = {"Peer channel", 28, 10, 1, true, 0},
};

struct call_cells {
	char from[80], to[80], state[24], time[32], caller[140], connected[140];
	const char *cell[C_NCOLS];
};

static void id_text(char *buf, size_t size, const char *num, const char *name)
{
	if (*num && *name)
		snprintf(buf, size, "%s \"%s\"", num, name);
	else
		snprintf(buf, size, "%s%s", num, name);
}

static void call_cells(const struct sb_call *call, time_t now, struct call_cells *cc)
{
	const struct sb_chan *a = call->a, *b = call->b;
	const char *state = b && strcmp(a->state, "Up") ? b->state : a->state;
	/* Talk time once the calling side is answered; until then how long
	 * it has waited. */
	long secs = (long)(now - (a->answered ? a->answered : a->created));

	if (secs < 0)
		secs = 0;
	sb_chan_party(a, cc->from, sizeof(cc->from));
	if (b)
		sb_chan_party(b, cc->to, sizeof(cc->to));
	else if (a->exten[0])
		/* Nobody on the other end yet: where in the dialplan it is. */
		snprintf(cc->to, sizeof(cc->to), "(%s)", a->exten);
	else
		cc->to[0] = '\0';
	snprintf(cc->state, sizeof(cc->state), "%s%s", state[0] ? state : "?",
		 a->hold || (b && b->hold) ? " Hold" : "");
	if (secs >= 3600)
		snprintf(cc->time, sizeof(cc->time), "%ld:%02ld:%02ld", secs / 3600, secs / 60 % 60,
			 secs % 60);
	else
		snprintf(cc->time, sizeof(cc->time), "%ld:%02ld", secs / 60, secs % 60);
	id_text(cc->caller, sizeof(cc->caller), a->caller_num, a->caller_name);
	id_text(cc->connected, sizeof(cc->connected), a->connected_num, a->connected_name);
	cc->cell[C_FROM] = cc->from;
	cc->cell[C_TO] = cc->to;
	cc->cell[C_STATE] = cc->state;
	cc->cell[C_TIME] = cc->time;
	cc->cell[C_CALLER] = cc->caller;
	cc->cell[C_CONNECTED] = cc->connected;
	cc->cell[C_CHAN_A] = a->name;
	cc->cell[C_CHAN_B] = b ? b->name : "";
}

/* ---- registrations ---- */

enum { R_ENDPOINT, R_CONTACT, R_SOURCE, R_EXPIRES, R_AGENT, R_NCOLS };

static const struct column reg_columns[R_NCOLS] = {
	[R_ENDPOINT] = {"Endpoint", 16, 4, 0, true, 0},
	[R_CONTACT] = {"Contact", 48, 16, 2, true, 0},
	[R_SOURCE] = {"Source", 28, 10, 3, true, 0},
	[R_EXPIRES] = {"Expires", 7, 7, 0, false, 0},
	[R_AGENT] = {"User agent", 30, 8, 1, true, 0},
};

/* ---- connection ---- */

static struct pending *pending_add(struct sb *s, uint64_t id, enum pending_kind kind,
				   const char *what)
{
	struct pending *p;

	if (s->npending == MAX_PENDING) {
		/* The oldest has waited long enough to be forgotten. */
		memmove(&s->pending[0], &s->pending[1], (MAX_PENDING - 1) * sizeof(s->pending[0]));
		s->npending--;
	}
	p = &s->pending[s->npending++];
	p->id = id;
	p->kind = kind;
	snprintf(p->what, sizeof(p->what), "%s", what);
	return p;
}

static void disconnect(struct sb *s, const char *why)
{
	px_client_close(&s->c);
	s->connected = false;
	s->npending = 0;
	s->status_pending = s->regs_pending = false;
	sb_model_clear(&s->m);
	snprintf(s->conn_msg, sizeof(s->conn_msg), "%s", why);
	s->next_try = now_ms() + RETRY_MS;
	s->dirty = true;
}

/* Send an action built from o (taken); 0 or -1 (then disconnected). */
static int send_action(struct sb *s, json_t *o, enum pending_kind kind, const char *what)
{
	char *text = json_dumps(o, JSON_COMPACT);
	uint64_t id;
	int rc = -1;

	json_decref(o);
	if (text && px_client_send_action(&s->c, text, &id) == 0) {
		pending_add(s, id, kind, what);
		rc = 0;
	}
	free(text);
	if (rc < 0 && s->connected)
		disconnect(s, "the connection to plexusd was lost");
	return rc;
}

static void resync(struct sb *s)
{
	if (!s->status_pending &&
	    send_action(s, json_pack("{s:s, s:s}", "action", "Status", "action_id", "sb-status"),
			P_STATUS, "Status") == 0)
		s->status_pending = true;
	if (s->connected && !s->regs_pending &&
	    send_action(s,
			json_pack("{s:s, s:s}", "action", "Registrations", "action_id", "sb-regs"),
			P_REGISTRATIONS, "Registrations") == 0)
		s->regs_pending = true;
}

static void try_connect(struct sb *s)
{
	char err[512];

	s->next_try = now_ms() + RETRY_MS;
	if (px_client_connect(&s->c, s->socket_path, CONNECT_TIMEOUT_MS, err, sizeof(err)) < 0) {
		if (strcmp(s->conn_msg, err)) {
			snprintf(s->conn_msg, sizeof(s->conn_msg), "%s", err);
			s->dirty = true;
		}
		return;
	}
	s->connected = true;
	s->conn_msg[0] = s->regs_error[0] = '\0';
	s->dirty = true;
	/* Log lines are not for this screen. */
	px_frame_write(s->c.fd, "log", ++s->c.last_id, "off", 3);
	if (send_action(s,
			json_pack("{s:s, s:s, s:i}", "action", "Subscribe", "action_id", "sb-sub",
				  "queue", EVENT_QUEUE),
			P_SUBSCRIBE, "Subscribe") == 0)
		resync(s);
}

static void on_result(struct sb *s, const struct px_frame *f)
{
	struct pending p = {0};
	bool found = false;
	json_t *r;
	const char *response, *errmsg;
	bool ok;

	for (size_t i = 0; i < s->npending; i++)
		if (s->pending[i].id == f->id) {
			p = s->pending[i];
			memmove(&s->pending[i], &s->pending[i + 1],
				(s->npending - i - 1) * sizeof(s->pending[0]));
			s->npending--;
			found = true;
			break;
		}
	if (!found)
		return;
	r = json_loads(f->payload, 0, NULL);
	response = json_string_value(json_object_get(r, "response"));
	errmsg = json_string_value(json_object_get(r, "message"));
	ok = response && !strcmp(response, "Success");
	switch (p.kind) {
	case P_SUBSCRIBE:
		if (!ok)
			message(s, "Cannot subscribe to events: %s", errmsg ? errmsg : "no answer");
		break;
	case P_STATUS:
		s->status_pending = false;
		if (!ok || sb_model_status(&s->m, r, time(NULL)) < 0)
			message(s, "Status failed: %s", errmsg ? errmsg : "bad answer");
		break;
	case P_REGISTRATIONS:
		s->regs_pending = false;
		if (!ok || sb_model_registrations(&s->m, r, time(NULL)) < 0)
			snprintf(s->regs_error, sizeof(s->regs_error), "%s",
				 errmsg ? errmsg : "bad answer");
		else
			s->regs_error[0] = '\0';
		break;
	case P_USER:
		if (ok)
			message(s, "%s: done", p.what);
		else
			message(s, "%s failed: %s", p.what, errmsg ? errmsg : "bad answer");
		break;
	}
	json_decref(r);
	s->dirty = true;
}

static void on_event(struct sb *s, const struct px_frame *f)
{
	json_t *ev = json_loads(f->payload, 0, NULL);

	if (!ev)
		return;
	switch (sb_model_event(&s->m, ev, time(NULL))) {
	case SB_RESYNC:
		resync(s);
		/* fall through */
	case SB_CHANGED:
		s->dirty = true;
		break;
	case SB_UNCHANGED:
		break;
	}
	json_decref(ev);
}

/* Everything that has arrived. */
static void read_connection(struct sb *s)
{
	struct px_frame f;
	int got;

	while (s->connected && (got = px_client_next(&s->c, &f, 0)) != 0) {
		if (got < 0) {
			char why[300];
			if (s->c.bye[0])
				snprintf(why, sizeof(why), "plexusd closed the connection: %s",
					 s->c.bye);
			else
				snprintf(why, sizeof(why), "the connection to plexusd was lost");
			disconnect(s, why);
			return;
		}
		if (!strcmp(f.kind, "event"))
			on_event(s, &f);
		else if (!strcmp(f.kind, "result"))
			on_result(s, &f);
	}
}

/* ---- selection ---- */

static size_t current_calls(const struct sb *s, struct sb_call *rows)
{
	size_t n = sb_model_calls(&s->m, rows, MAX_ROWS);

	return n > MAX_ROWS ? MAX_ROWS : n;
}

/* Keep the selection on the same call when rows move. */
static void fix_selection(struct sb *s, const struct sb_call *rows, size_t n)
{
	if (!n) {
		s->sel = 0;
		s->sel_chan[0] = '\0';
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(rows[i].a->name, s->sel_chan)) {
			s->sel = (int)i;
			break;
		}
	if (s->sel >= (int)n)
		s->sel = (int)n - 1;
	if (s->sel < 0)
		s->sel = 0;
	snprintf(s->sel_chan, sizeof(s->sel_chan), "%s", rows[s->sel].a->name);
	if (s->party && !rows[s->sel].b)
		s->party = 0;
}

/* The channel the next action is for; NULL (with a message) when none. */
static const struct sb_chan *selected_channel(struct sb *s)
{
	struct sb_call rows[MAX_ROWS];
	size_t n = current_calls(s, rows);

	if (!s->connected) {
		message(s, "Not connected to plexusd.");
		return NULL;
	}
	fix_selection(s, rows, n);
	if (!n) {
		message(s, "No call is selected.");
		return NULL;
	}
	return s->party && rows[s->sel].b ? rows[s->sel].b : rows[s->sel].a;
}

/* ---- actions from keys ---- */

static void hangup_selected(struct sb *s)
{
	const struct sb_chan *c = selected_channel(s);
	char what[160];

	if (!c)
		return;
	snprintf(what, sizeof(what), "Hangup %s", c->name);
	if (send_action(s,
			json_pack("{s:s, s:s, s:s}", "action", "Hangup", "action_id", "sb-hangup",
				  "channel", c->name),
			P_USER, what) == 0)
		message(s, "%s ...", what);
}

/* "exten[@context]" into its parts; false when exten is empty. */
static bool split_place(const char *text, const char *def_context, char *exten, size_t esize,
			char *context, size_t csize)
{
	const char *at = strchr(text, '@');

	snprintf(exten, esize, "%.*s", at ? (int)(at - text) : (int)strlen(text), text);
	snprintf(context, csize, "%s", at && at[1] ? at + 1 : def_context);
	return exten[0] != '\0';
}

static void start_prompt(struct sb *s, enum prompt_kind kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void start_prompt(struct sb *s, enum prompt_kind kind, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(s->prompt_text, sizeof(s->prompt_text), fmt, ap);
	va_end(ap);
	s->mode = M_PROMPT;
	s->prompt = kind;
	s->ilen = 0;
	s->input[0] = '\0';
	s->dirty = true;
}

static void prompt_done(struct sb *s)
{
	char exten[INPUT_MAX + 1], context[INPUT_MAX + 1], what[700];
	const struct sb_chan *c;
	json_t *o;

	s->mode = M_NORMAL;
	s->dirty = true;
	switch (s->prompt) {
	case PR_REDIRECT:
		c = sb_model_find(&s->m, s->target);
		if (!c) {
			message(s, "%s is gone.", s->target);
			return;
		}
		if (!split_place(s->input, c->context[0] ? c->context : DEFAULT_CONTEXT, exten,
				 sizeof(exten), context, sizeof(context))) {
			message(s, "Redirect cancelled: no extension given.");
			return;
		}
		snprintf(what, sizeof(what), "Redirect %s to %s@%s", c->name, exten, context);
		o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "action", "Redirect", "action_id",
			      "sb-redirect", "channel", c->name, "exten", exten, "context",
			      context);
		if (send_action(s, o, P_USER, what) == 0)
			message(s, "%s ...", what);
		return;
	case PR_ORIGINATE_FROM:
		if (!s->ilen) {
			message(s, "Originate cancelled: no endpoint given.");
			return;
		}
		snprintf(s->orig_from, sizeof(s->orig_from), "%s", s->input);
		start_prompt(s, PR_ORIGINATE_TO,
			     "Connect %s to extension[@context]: ", s->orig_from);
		return;
	case PR_ORIGINATE_TO:
		if (!split_place(s->input, DEFAULT_CONTEXT, exten, sizeof(exten), context,
				 sizeof(context))) {
			message(s, "Originate cancelled: no extension given.");
			return;
		}
		snprintf(what, sizeof(what), "Originate %s to %s@%s", s->orig_from, exten, context);
		/* "SIP/1002" names a channel to request; "1002" an endpoint. */
		o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "action", "Originate", "action_id",
			      "sb-originate", strchr(s->orig_from, '/') ? "channel" : "endpoint",
			      s->orig_from, "exten", exten, "context", context);
		if (send_action(s, o, P_USER, what) == 0)
			message(s, "%s ...", what);
		return;
	}
}

static void prompt_key(struct sb *s, int key)
{
	switch (key) {
	case 27: /* Esc */
	case 7:  /* ^G */
		s->mode = M_NORMAL;
		message(s, "Cancelled.");
		return;
	case '\n':
	case '\r':
	case KEY_ENTER:
		prompt_done(s);
		return;
	case KEY_BACKSPACE:
	case 127:
	case 8:
		if (s->ilen) {
			/* Back over a whole UTF-8 sequence. */
			do
				s->ilen--;
			while (s->ilen && ((unsigned char)s->input[s->ilen] & 0xC0) == 0x80);
			s->input[s->ilen] = '\0';
		}
		break;
	case 21: /* ^U */
		s->ilen = 0;
		s->input[0] = '\0';
		break;
	default:
		if (key >= 0x20 && key < 0x100 && key != 0x7f && s->ilen < INPUT_MAX) {
			s->input[s->ilen++] = (char)key;
			s->input[s->ilen] = '\0';
		}
		break;
	}
	s->dirty = true;
}

static void normal_key(struct sb *s, int key, bool *quit)
{
	struct sb_call rows[MAX_ROWS];
	size_t n;
	const struct sb_chan *c;

	switch (key) {
	case 'q':
	case 'Q':
		*quit = true;
		return;
	case '?':
	case KEY_F(1):
		s->mode = M_HELP;
		break;
	case KEY_UP:
	case 'k':
	case KEY_DOWN:
	case 'j':
	case KEY_HOME:
	case KEY_END:
		n = current_calls(s, rows);
		fix_selection(s, rows, n);
		if (key == KEY_UP || key == 'k')
			s->sel--;
		else if (key == KEY_DOWN || key == 'j')
			s->sel++;
		else
			s->sel = key == KEY_HOME ? 0 : (int)n - 1;
		if (s->sel >= (int)n)
			s->sel = (int)n - 1;
		if (s->sel < 0)
			s->sel = 0;
		s->sel_chan[0] = '\0';
		if (n)
			snprintf(s->sel_chan, sizeof(s->sel_chan), "%s", rows[s->sel].a->name);
		s->party = 0;
		break;
	case '\t':
	case KEY_LEFT:
	case KEY_RIGHT:
		n = current_calls(s, rows);
		fix_selection(s, rows, n);
		if (n && rows[s->sel].b)
			s->party = key == KEY_LEFT ? 0 : key == KEY_RIGHT ? 1 : !s->party;
		break;
	case 'h':
	case 'H':
		hangup_selected(s);
		break;
	case 'r':
	case 'R':
		c = selected_channel(s);
		if (c) {
			snprintf(s->target, sizeof(s->target), "%s", c->name);
			start_prompt(s, PR_REDIRECT,
				     "Redirect %s to extension[@context]: ", c->name);
		}
		break;
	case 'o':
	case 'O':
		if (!s->connected)
			message(s, "Not connected to plexusd.");
		else
			start_prompt(s, PR_ORIGINATE_FROM,
				     "Originate from endpoint (or Tech/Resource): ");
		break;
	case 12: /* ^L */
		clearok(curscr, TRUE);
		break;
	default:
		return;
	}
	s->dirty = true;
}

/* ---- drawing ---- */

static const char *const help_lines[] = {
	"Plexus switchboard: live calls and registrations of plexusd.",
	"",
	"Keys",
	"  Up/Down, k/j   select a call            Tab, Left/Right  choose its party",
	"  h              hang up the selected party's channel (the call ends)",
	"  r              redirect the selected party to extension[@context]",
	"                 (the context defaults to the channel's own)",
	"  o              originate: endpoint (1002, or SIP/1002), then",
	"                 extension[@context] (default context: default)",
	"  Esc            cancel a prompt          ^L  redraw",
	"  ?              this help                q   quit",
	"",
	"Calls",
	"  From, To       the two parties (the endpoint of each channel); To is",
	"                 (exten) while nobody answers for the caller yet",
	"  State          the callee's state while it rings, then the caller's",
	"  Time           since the caller was answered (before: since it called)",
	"  Caller ID      what the caller presents; Connected: who it is connected to",
	"  Channel        the channels of both parties",
	"",
	"Registrations",
	"  Endpoint, Contact, Source (where the REGISTER came from),",
	"  Expires (seconds left), User agent",
	"",
	"Narrow terminals drop columns from the right first. Any key closes this.",
};

static void draw_help(void)
{
	size_t n = sizeof(help_lines) / sizeof(help_lines[0]);

	for (int y = 0; y < LINES; y++)
		put(y, 0, COLS, (size_t)y < n ? help_lines[y] : "");
}

static void draw_title(struct sb *s, time_t now)
{
	char left[800], clock[24];
	struct tm tm;
	int cw;

	localtime_r(&now, &tm);
	strftime(clock, sizeof(clock), " %H:%M:%S", &tm);
	if (s->connected)
		snprintf(left, sizeof(left), " Plexus switchboard | %s", s->c.banner);
	else
		/* What matters most first: narrow screens cut the rest. */
		snprintf(left, sizeof(left), " disconnected, retrying | Plexus switchboard%s%s",
			 s->conn_msg[0] ? " | " : "", s->conn_msg);
	attron(A_REVERSE);
	put(0, 0, COLS, left);
	cw = (int)strlen(clock);
	/* The clock keeps its place at the right edge, over the title. */
	if (COLS > cw + 2)
		put(0, COLS - cw - 1, cw + 1, clock);
	attroff(A_REVERSE);
}

/* The calls section from line y, at most h lines. */
static void draw_calls(struct sb *s, int y, int h, const struct sb_call *rows, size_t n, time_t now)
{
	struct column cols[C_NCOLS];
	int content[C_NCOLS] = {0}, shown;
	char head[64];
	static struct call_cells cells[MAX_ROWS];
	const char *titles[C_NCOLS];

	if (h <= 0)
		return;
	memcpy(cols, call_columns, sizeof(cols));
	snprintf(head, sizeof(head), "Calls (%zu)", n);
	attron(A_BOLD);
	put(y, 0, COLS, head);
	attroff(A_BOLD);
	if (h < 2)
		return;
	for (size_t i = 0; i < n; i++) {
		call_cells(&rows[i], now, &cells[i]);
		for (int k = 0; k < C_NCOLS; k++) {
			int w = text_width(cells[i].cell[k]);
			if (w > content[k])
				content[k] = w;
		}
	}
	layout(cols, C_NCOLS, content, COLS - 2);
	for (int k = 0; k < C_NCOLS; k++)
		titles[k] = cols[k].title;
	attron(A_UNDERLINE);
	put(y + 1, 0, 2, "");
	draw_row(y + 1, 2, cols, C_NCOLS, titles);
	attroff(A_UNDERLINE);
	shown = h - 2;
	if (!n) {
		if (shown > 0)
			put(y + 2, 0, COLS, "  (no calls)");
		return;
	}
	/* Scroll so that the selected row is visible. */
	if (s->sel < s->top)
		s->top = s->sel;
	if (shown > 0 && s->sel >= s->top + shown)
		s->top = s->sel - shown + 1;
	if (s->top > (int)n - shown)
		s->top = (int)n - shown;
	if (s->top < 0)
		s->top = 0;
	for (int i = 0; i < shown && s->top + i < (int)n; i++) {
		int r = s->top + i;
		bool sel = r == s->sel;
		int x = 2;

		put(y + 2 + i, 0, 2, sel ? ">" : "");
		if (sel)
			attron(A_REVERSE);
		for (int k = 0; k < C_NCOLS; k++) {
			bool party_cell =
				sel && ((s->party == 0 && (k == C_FROM || k == C_CHAN_A)) ||
					(s->party == 1 && (k == C_TO || k == C_CHAN_B)));
			if (!cols[k].width)
				continue;
			if (party_cell)
				attron(A_BOLD | A_UNDERLINE);
			put(y + 2 + i, x, cols[k].width, cells[r].cell[k]);
			if (party_cell)
				attroff(A_BOLD | A_UNDERLINE);
			x += cols[k].width;
			if (x < COLS && k < C_NCOLS - 1) {
				put(y + 2 + i, x, 1, "");
				x++;
			}
			if (x >= COLS)
				break;
		}
		if (sel)
			attroff(A_REVERSE);
	}
}

static void draw_regs(struct sb *s, int y, int h, time_t now)
{
	struct column cols[R_NCOLS];
	int content[R_NCOLS] = {0}, shown;
	char head[300], expires[24];
	const char *titles[R_NCOLS];

	if (h <= 0)
		return;
	memcpy(cols, reg_columns, sizeof(cols));
	if (s->regs_error[0])
		snprintf(head, sizeof(head), "Registrations: %s", s->regs_error);
	else
		snprintf(head, sizeof(head), "Registrations (%zu)", s->m.nregs);
	attron(A_BOLD);
	put(y, 0, COLS, head);
	attroff(A_BOLD);
	if (h < 2)
		return;
	for (size_t i = 0; i < s->m.nregs; i++) {
		const struct sb_reg *r = &s->m.regs[i];
		const char *cell[R_NCOLS] = {r->endpoint, r->contact, r->source, "1234567",
					     r->user_agent};
		for (int k = 0; k < R_NCOLS; k++) {
			int w = text_width(cell[k]);
			if (w > content[k])
				content[k] = w;
		}
	}
	layout(cols, R_NCOLS, content, COLS - 2);
	for (int k = 0; k < R_NCOLS; k++)
		titles[k] = cols[k].title;
	attron(A_UNDERLINE);
	put(y + 1, 0, 2, "");
	draw_row(y + 1, 2, cols, R_NCOLS, titles);
	attroff(A_UNDERLINE);
	shown = h - 2;
	if (!s->m.nregs && shown > 0)
		put(y + 2, 0, COLS, "  (none)");
	for (int i = 0; i < shown && i < (int)s->m.nregs; i++) {
		const struct sb_reg *r = &s->m.regs[i];
		const char *cell[R_NCOLS] = {r->endpoint, r->contact, r->source, expires,
					     r->user_agent};
		long left = (long)(r->expires_at - now);

		/* The last line says how many more there are, if they do not fit. */
		if (i == shown - 1 && (int)s->m.nregs > shown) {
			char more[64];
			snprintf(more, sizeof(more), "  ... %zu more", s->m.nregs - (size_t)i);
			put(y + 2 + i, 0, COLS, more);
			break;
		}
		snprintf(expires, sizeof(expires), "%7ld", left > 0 ? left : 0);
		put(y + 2 + i, 0, 2, "");
		draw_row(y + 2 + i, 2, cols, R_NCOLS, cell);
	}
}

static void draw(struct sb *s)
{
	static struct sb_call rows[MAX_ROWS];
	time_t now = time(NULL);
	size_t n;
	int avail, calls_h, regs_h, need_calls, need_regs;

	erase();
	if (s->mode == M_HELP) {
		draw_help();
		refresh();
		return;
	}
	if (LINES < 4 || COLS < 16) {
		put(0, 0, COLS, "terminal too small");
		refresh();
		return;
	}
	n = current_calls(s, rows);
	fix_selection(s, rows, n);
	draw_title(s, now);
	/* Lines 1 .. LINES-3 for the two sections; then message and keys. */
	avail = LINES - 3;
	need_calls = 2 + (n ? (int)n : 1);
	need_regs = 2 + (s->m.nregs ? (int)s->m.nregs : 1);
	if (need_calls + 1 + need_regs <= avail) {
		calls_h = need_calls;
		regs_h = avail - calls_h - 1;
	} else {
		/* Calls first; registrations keep at least a few lines. */
		regs_h = need_regs < 4 ? need_regs : 4;
		calls_h = avail - 1 - regs_h;
		if (calls_h > need_calls) {
			calls_h = need_calls;
		} else if (calls_h < 3) {
			calls_h = avail < 3 ? avail : 3;
		}
		regs_h = avail - calls_h - 1;
	}
	draw_calls(s, 1, calls_h, rows, n, now);
	draw_regs(s, 1 + calls_h + 1, regs_h, now);
	if (s->mode == M_PROMPT) {
		char line[INPUT_MAX + 256];
		int x;
		snprintf(line, sizeof(line), "%s%s", s->prompt_text, s->input);
		put(LINES - 2, 0, COLS, line);
		x = text_width(line);
		move(LINES - 2, x < COLS - 1 ? x : COLS - 1);
	} else {
		put(LINES - 2, 0, COLS, s->msg);
	}
	attron(A_REVERSE);
	put(LINES - 1, 0, COLS,
	    s->mode == M_PROMPT ? " Enter: go  Esc: cancel  ^U: clear"
	    : COLS >= 64        ? " h:hang up  r:redirect  o:originate  Tab:party  ?:help  q:quit"
				: " h:hangup r:redir o:orig ?:help q:quit");
	attroff(A_REVERSE);
	curs_set(s->mode == M_PROMPT ? 1 : 0);
	refresh();
}

/* ---- the loop ---- */

static void apply_size(void)
{
	struct winsize ws;

	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0)
		resizeterm(ws.ws_row, ws.ws_col);
}

static int setup_signals(void)
{
	struct sigaction sa;

	if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	return 0;
}

int px_switchboard_run(const char *socket_path)
{
	struct sb *s;
	bool quit = false;
	time_t drawn_at = 0;

	if (!isatty(STDIN_FILENO) || !isatty(STDOUT_FILENO)) {
		fprintf(stderr, "plexus: --switchboard needs a terminal\n");
		return 2;
	}
	s = calloc(1, sizeof(*s));
	if (!s || setup_signals() < 0) {
		fprintf(stderr, "plexus: out of resources\n");
		free(s);
		return 1;
	}
	setlocale(LC_ALL, "");
	s->socket_path = socket_path;
	px_client_init(&s->c);
	sb_model_init(&s->m);
	if (!initscr()) {
		fprintf(stderr, "plexus: cannot initialise the terminal\n");
		free(s);
		return 1;
	}
	cbreak();
	noecho();
	nonl();
	keypad(stdscr, TRUE);
	nodelay(stdscr, TRUE);
	/* Esc alone must cancel a prompt without waiting a second. */
	set_escdelay(50);
	curs_set(0);
	s->dirty = true;
	try_connect(s);

	while (!quit && !stop_signal) {
		struct pollfd pfd[3] = {
			{.fd = STDIN_FILENO, .events = POLLIN},
			{.fd = sig_pipe[0], .events = POLLIN},
			{.fd = s->connected ? px_client_fd(&s->c) : -1, .events = POLLIN}};
		long long t = now_ms(), wait_ms;
		time_t now = time(NULL);
		int key;

		if (!s->connected && t >= s->next_try)
			try_connect(s);
		if (sb_model_expire(&s->m, now))
			s->dirty = true;
		/* The durations and the clock move once a second. */
		if (s->dirty || now != drawn_at) {
			draw(s);
			s->dirty = false;
			drawn_at = now;
		}
		wait_ms = 1000 - t % 1000;
		if (!s->connected && s->next_try - t < wait_ms)
			wait_ms = s->next_try - t > 0 ? s->next_try - t : 0;
		if (poll(pfd, 3, (int)wait_ms) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents & POLLIN) {
			char buf[64];
			while (read(sig_pipe[0], buf, sizeof(buf)) > 0)
				;
		}
		if (resized) {
			resized = 0;
			apply_size();
			s->dirty = true;
		}
		if (s->connected && (pfd[2].revents & (POLLIN | POLLHUP | POLLERR)))
			read_connection(s);
		while ((key = getch()) != ERR) {
			if (key == KEY_RESIZE) {
				s->dirty = true;
			} else if (s->mode == M_HELP) {
				s->mode = M_NORMAL;
				s->dirty = true;
			} else if (s->mode == M_PROMPT) {
				prompt_key(s, key);
			} else {
				normal_key(s, key, &quit);
			}
		}
	}
	endwin();
	px_client_close(&s->c);
	sb_model_free(&s->m);
	free(s);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	return 0;
}
