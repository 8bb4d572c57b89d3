/*
 * The console protocol for programs (pxclient.h): connecting and reading the
 * banner, sending actions with IDs of our own, taking frames as they come
 * with a deadline, and the Subscribe action built from plexus -e's filter
 * words (jansson builds the JSON, so names and values are escaped right).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "pxclient.h"

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void px_client_init(struct px_client *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = -1;
	px_frame_reader_init(&c->reader);
}

void px_client_close(struct px_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	px_frame_reader_free(&c->reader);
	px_frame_reader_init(&c->reader);
}

int px_client_fd(const struct px_client *c)
{
	return c->fd;
}

int px_client_connect(struct px_client *c, const char *path, int timeout_ms, char *err,
		      size_t errsize)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct px_frame f;
	int rc;

	px_client_close(c);
	c->eof = false;
	c->bye[0] = c->banner[0] = '\0';
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(err, errsize, "socket path too long: %s", path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		snprintf(err, errsize, "socket: %s", strerror(errno));
		return -1;
	}
	do
		rc = connect(c->fd, (struct sockaddr *)&sa, sizeof(sa));
	while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		snprintf(err, errsize, "cannot connect to %s: %s", path, strerror(errno));
		px_client_close(c);
		return -1;
	}
	rc = px_client_next(c, &f, timeout_ms);
	if (rc == 1 && !strcmp(f.kind, "banner")) {
		snprintf(c->banner, sizeof(c->banner), "%s", f.payload);
		return 0;
	}
	if (c->bye[0])
		snprintf(err, errsize, "plexusd closed the connection: %s", c->bye);
	else
		snprintf(err, errsize, "no banner from plexusd on %s", path);
	px_client_close(c);
	return -1;
}

int px_client_send_action(struct px_client *c, const char *json, uint64_t *id)
{
	if (c->fd < 0)
		return -1;
	*id = ++c->last_id;
	return px_frame_write(c->fd, "action", *id, json, strlen(json));
}

int px_client_buffered(struct px_client *c, struct px_frame *f)
{
	const char *msg = NULL;
	int got;

	if (c->fd < 0)
		return -1;
	got = px_frame_next(&c->reader, f, &msg);
	if (got == 1 && !strcmp(f->kind, "bye")) {
		snprintf(c->bye, sizeof(c->bye), "%.*s", (int)f->len, f->payload);
		return -1;
	}
	return got;
}

int px_client_next(struct px_client *c, struct px_frame *f, int timeout_ms)
{
	long long deadline = timeout_ms >= 0 ? now_ms() + timeout_ms : -1;

	if (c->fd < 0)
		return -1;
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int got = px_client_buffered(c, f);
		long long left;
		ssize_t r;

		if (got != 0)
			return got;
		left = deadline < 0 ? -1 : deadline - now_ms();
		if (deadline >= 0 && left < 0)
			left = 0;
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				return 0;
			return -1;
		}
		if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
			return 0;
		r = px_frame_reader_fill(&c->reader, c->fd);
		if (r == 0) {
			c->eof = true;
			return -1;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
	}
}

char *px_client_call(struct px_client *c, const char *json, int timeout_ms,
		     void (*on_frame)(void *ctx, const struct px_frame *f), void *ctx)
{
	long long deadline = now_ms() + timeout_ms;
	struct px_frame f;
	uint64_t id;

	if (px_client_send_action(c, json, &id) < 0)
		return NULL;
	for (;;) {
		long long left = deadline - now_ms();
		int got;

		if (left <= 0)
			return NULL;
		got = px_client_next(c, &f, (int)left);
		if (got < 0)
			return NULL;
		if (got == 0)
			continue;
		if (!strcmp(f.kind, "result") && f.id == id)
			return strdup(f.payload);
		if (on_frame)
			on_frame(ctx, &f);
	}
}

/* "Hangup,DialEnd" into the array of types. */
static int add_types(json_t *types, const char *list, char *err, size_t errsize)
{
	char *copy = strdup(list), *p, *tok;

	if (!copy)
		return -1;
	for (p = copy; (tok = strsep(&p, ","));) {
		if (!*tok) {
			snprintf(err, errsize, "empty event type in '%s'", list);
			free(copy);
			return -1;
		}
		json_array_append_new(types, json_string(tok));
	}
	free(copy);
	return 0;
}

char *px_client_subscribe_json(int nwords, char **words, const char *action_id, bool lines,
			       char *err, size_t errsize)
{
	json_t *o = json_pack("{s:s, s:s}", "action", "Subscribe", "action_id", action_id);
	json_t *types = json_array();
	char *text = NULL;

	for (int i = 0; i < nwords; i++) {
		const char *w = words[i], *eq = strchr(w, '=');
		size_t klen = eq ? (size_t)(eq - w) : 0;

		if (!eq) {
			if (add_types(types, w, err, errsize) < 0)
				goto out;
		} else if (klen == 4 && !strncasecmp(w, "type", 4)) {
			if (add_types(types, eq + 1, err, errsize) < 0)
				goto out;
		} else if ((klen == 7 && !strncasecmp(w, "channel", 7)) ||
			   (klen == 8 && !strncasecmp(w, "endpoint", 8))) {
			char key[16];
			snprintf(key, sizeof(key), "%.*s", (int)klen, w);
			for (char *k = key; *k; k++)
				*k = (char)(*k | 0x20);
			json_object_set_new(o, key, json_string(eq + 1));
		} else if (klen == 5 && !strncasecmp(w, "queue", 5)) {
			char *end;
			long long n = strtoll(eq + 1, &end, 10);
			if (end == eq + 1 || *end || n <= 0) {
				snprintf(err, errsize, "queue=%s is not a positive number", eq + 1);
				goto out;
			}
			json_object_set_new(o, "queue", json_integer(n));
		} else {
			snprintf(err, errsize,
				 "unknown filter '%s' (type=, channel=, endpoint=, queue=)", w);
			goto out;
		}
	}
	if (json_array_size(types))
		json_object_set(o, "types", types);
	if (lines)
		json_object_set_new(o, "format", json_string("lines"));
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
out:
	json_decref(types);
	json_decref(o);
	return text;
}
