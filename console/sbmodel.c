/*
 * The switchboard's model (sbmodel.h): registrations and channels in two
 * small arrays, filled from snapshots and events in the JSON of the console
 * protocol (docs/console-protocol.md), and the grouping of channels into
 * calls. Arrays, not hash tables: a switchboard shows what fits on a
 * screen, and a linear search over a few hundred entries per event costs
 * nothing next to drawing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sbmodel.h"

void sb_model_init(struct sb_model *m)
{
	memset(m, 0, sizeof(*m));
}

void sb_model_free(struct sb_model *m)
{
	free(m->regs);
	free(m->chans);
	sb_model_init(m);
}

void sb_model_clear(struct sb_model *m)
{
	m->nregs = m->nchans = 0;
	m->chan_seq = m->reg_seq = 0;
}

/* ---- fields ---- */

static void copy(char *dst, size_t size, const char *src)
{
	snprintf(dst, size, "%s", src ? src : "");
}

static const char *str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

/* A string field into dst, when present (absent keeps what dst has). */
static void take(char *dst, size_t size, const json_t *o, const char *key)
{
	const char *v = str(o, key);

	if (v)
		copy(dst, size, v);
}

static long long num(const json_t *o, const char *key, long long def)
{
	json_t *v = json_object_get(o, key);

	if (json_is_integer(v))
		return json_integer_value(v);
	if (json_is_real(v))
		return (long long)json_real_value(v);
	return def;
}

/* ---- channels ---- */

const struct sb_chan *sb_model_find(const struct sb_model *m, const char *name)
{
	if (!name || !*name)
		return NULL;
	for (size_t i = 0; i < m->nchans; i++)
		if (!strcmp(m->chans[i].name, name))
			return &m->chans[i];
	return NULL;
}

static struct sb_chan *chan_find(struct sb_model *m, const char *name)
{
	return (struct sb_chan *)sb_model_find(m, name);
}

/* The channel of that name, added (created at `created`) when new. */
static struct sb_chan *chan_get(struct sb_model *m, const char *name, time_t created)
{
	struct sb_chan *c = chan_find(m, name);

	if (c || !name || !*name)
		return c;
	if (m->nchans == m->capchans) {
		size_t ncap = m->capchans ? m->capchans * 2 : 16;
		struct sb_chan *n = realloc(m->chans, ncap * sizeof(*n));
		if (!n)
			return NULL;
		m->chans = n;
		m->capchans = ncap;
	}
	c = &m->chans[m->nchans++];
	memset(c, 0, sizeof(*c));
	copy(c->name, sizeof(c->name), name);
	c->created = created;
	c->order = ++m->next_order;
	return c;
}

static void chan_remove(struct sb_model *m, const char *name)
{
	for (size_t i = 0; i < m->nchans; i++) {
		struct sb_chan *c = &m->chans[i];
		if (!strcmp(c->name, name)) {
			m->chans[i] = m->chans[--m->nchans];
			i--;
			continue;
		}
		if (!strcmp(c->peer, name))
			c->peer[0] = '\0';
		if (!strcmp(c->dialing, name))
			c->dialing[0] = '\0';
	}
}

/* The fields that Status and ChannelState share. */
static void chan_fill(struct sb_chan *c, const json_t *o)
{
	take(c->uniqueid, sizeof(c->uniqueid), o, "uniqueid");
	take(c->linkedid, sizeof(c->linkedid), o, "linkedid");
	take(c->state, sizeof(c->state), o, "state");
	take(c->caller_num, sizeof(c->caller_num), o, "caller_num");
	take(c->caller_name, sizeof(c->caller_name), o, "caller_name");
	take(c->connected_num, sizeof(c->connected_num), o, "connected_num");
	take(c->connected_name, sizeof(c->connected_name), o, "connected_name");
	take(c->context, sizeof(c->context), o, "context");
	take(c->exten, sizeof(c->exten), o, "exten");
}

static int compare_order(const void *a, const void *b)
{
	const struct sb_chan *x = a, *y = b;

	if (x->created != y->created)
		return x->created < y->created ? -1 : 1;
	return strcmp(x->uniqueid, y->uniqueid);
}

int sb_model_status(struct sb_model *m, const json_t *result, time_t now)
{
	const json_t *list = json_object_get(result, "channels"), *o;
	size_t i;

	if (!json_is_array(list))
		return -1;
	m->nchans = 0;
	json_array_foreach(list, i, o)
	{
		/* age: since creation; duration: since the answer (daemons
		 * before age counted duration from creation). */
		json_t *age = json_object_get(o, "age");
		time_t created = now - num(o, json_is_integer(age) ? "age" : "duration", 0);
		struct sb_chan *c = chan_get(m, str(o, "channel"), created);
		if (!c)
			continue;
		chan_fill(c, o);
		c->hold = json_is_true(json_object_get(o, "hold"));
		c->answered = json_is_integer(json_object_get(o, "answered_at"))
				      ? now - num(o, "duration", 0)
				      : 0;
		take(c->application, sizeof(c->application), o, "application");
		take(c->peer, sizeof(c->peer), o, "bridged_to");
	}
	/* Oldest first, as events would have added them. */
	if (m->nchans > 1)
		qsort(m->chans, m->nchans, sizeof(*m->chans), compare_order);
	for (i = 0; i < m->nchans; i++)
		m->chans[i].order = ++m->next_order;
	m->chan_seq = (uint64_t)num(result, "seq", 0);
	return 0;
}

/* ---- registrations ---- */

static struct sb_reg *reg_get(struct sb_model *m, const char *endpoint, const char *contact,
			      bool add)
{
	struct sb_reg *r;

	if (!endpoint || !contact)
		return NULL;
	for (size_t i = 0; i < m->nregs; i++)
		if (!strcmp(m->regs[i].endpoint, endpoint) && !strcmp(m->regs[i].contact, contact))
			return &m->regs[i];
	if (!add)
		return NULL;
	if (m->nregs == m->capregs) {
		size_t ncap = m->capregs ? m->capregs * 2 : 16;
		struct sb_reg *n = realloc(m->regs, ncap * sizeof(*n));
		if (!n)
			return NULL;
		m->regs = n;
		m->capregs = ncap;
	}
	r = &m->regs[m->nregs++];
	memset(r, 0, sizeof(*r));
	copy(r->endpoint, sizeof(r->endpoint), endpoint);
	copy(r->contact, sizeof(r->contact), contact);
	return r;
}

static int compare_regs(const void *a, const void *b)
{
	const struct sb_reg *x = a, *y = b;
	int d = strcmp(x->endpoint, y->endpoint);

	return d ? d : strcmp(x->contact, y->contact);
}

static void reg_fill(struct sb_reg *r, const json_t *o, time_t now)
{
	take(r->source, sizeof(r->source), o, "source");
	take(r->user_agent, sizeof(r->user_agent), o, "user_agent");
	r->expires_at = now + num(o, "expires", 0);
}

int sb_model_registrations(struct sb_model *m, const json_t *result, time_t now)
{
	const json_t *list = json_object_get(result, "registrations"), *o;
	size_t i;

	if (!json_is_array(list))
		return -1;
	m->nregs = 0;
	json_array_foreach(list, i, o)
	{
		struct sb_reg *r = reg_get(m, str(o, "endpoint"), str(o, "contact"), true);
		if (r)
			reg_fill(r, o, now);
	}
	if (m->nregs > 1)
		qsort(m->regs, m->nregs, sizeof(*m->regs), compare_regs);
	m->reg_seq = (uint64_t)num(result, "seq", 0);
	return 0;
}

static void reg_remove(struct sb_model *m, const char *endpoint, const char *contact)
{
	struct sb_reg *r = reg_get(m, endpoint, contact, false);

	if (r) {
		size_t i = (size_t)(r - m->regs);
		memmove(r, r + 1, (m->nregs - i - 1) * sizeof(*r));
		m->nregs--;
	}
}

bool sb_model_expire(struct sb_model *m, time_t now)
{
	bool changed = false;

	for (size_t i = 0; i < m->nregs;) {
		/* A few seconds of grace: the registrar's own purge and its
		 * event normally come first. */
		if (m->regs[i].expires_at + 5 < now) {
			memmove(&m->regs[i], &m->regs[i + 1],
				(m->nregs - i - 1) * sizeof(m->regs[0]));
			m->nregs--;
			changed = true;
		} else {
			i++;
		}
	}
	return changed;
}

/* ---- events ---- */

static enum sb_change channel_event(struct sb_model *m, const char *type, const json_t *ev,
				    time_t when)
{
	const char *name = str(ev, "channel"), *peer = str(ev, "peer_channel");
	struct sb_chan *c, *p;

	if (!name || !*name)
		return SB_UNCHANGED;
	if (!strcmp(type, "Hangup")) {
		if (!chan_find(m, name))
			return SB_UNCHANGED;
		chan_remove(m, name);
		return SB_CHANGED;
	}
	/* Unbridged may follow the Hangup of the channel it concerns: it
	 * must not bring the channel back. */
	if (!strcmp(type, "Unbridged")) {
		c = chan_find(m, name);
		p = chan_find(m, peer);
		if (c && !strcmp(c->peer, peer ? peer : ""))
			c->peer[0] = '\0';
		if (p && !strcmp(p->peer, name))
			p->peer[0] = '\0';
		return c || p ? SB_CHANGED : SB_UNCHANGED;
	}
	c = chan_get(m, name, when);
	if (!c)
		return SB_UNCHANGED;
	take(c->uniqueid, sizeof(c->uniqueid), ev, "uniqueid");
	take(c->linkedid, sizeof(c->linkedid), ev, "linkedid");
	if (!strcmp(type, "ChannelCreated")) {
		take(c->state, sizeof(c->state), ev, "state");
	} else if (!strcmp(type, "ChannelState")) {
		chan_fill(c, ev);
		if (!c->answered && !strcmp(c->state, "Up"))
			c->answered = when;
	} else if (!strcmp(type, "DialBegin")) {
		copy(c->dialing, sizeof(c->dialing), peer);
		copy(c->application, sizeof(c->application), "Dial");
	} else if (!strcmp(type, "DialEnd")) {
		if (peer && !strcmp(c->dialing, peer))
			c->dialing[0] = '\0';
	} else if (!strcmp(type, "Bridged")) {
		copy(c->peer, sizeof(c->peer), peer);
		p = chan_find(m, peer);
		if (p)
			copy(p->peer, sizeof(p->peer), name);
	} else if (!strcmp(type, "Hold") || !strcmp(type, "Unhold")) {
		c->hold = !strcmp(type, "Hold");
	} else if (!strcmp(type, "ConnectedLine")) {
		take(c->connected_num, sizeof(c->connected_num), ev, "connected_num");
		take(c->connected_name, sizeof(c->connected_name), ev, "connected_name");
	} else {
		return SB_UNCHANGED;
	}
	return SB_CHANGED;
}

enum sb_change sb_model_event(struct sb_model *m, const json_t *ev, time_t now)
{
	const char *type = str(ev, "event");
	uint64_t seq = (uint64_t)num(ev, "seq", 0);
	time_t when = (time_t)num(ev, "timestamp", now);

	if (!type)
		return SB_UNCHANGED;
	if (!strcmp(type, "EventsLost"))
		return SB_RESYNC;
	if (!strcmp(type, "Registered") || !strcmp(type, "Unregistered") ||
	    !strcmp(type, "RegistrationExpired")) {
		const char *ep = str(ev, "endpoint"), *contact = str(ev, "contact");
		struct sb_reg *r;

		if (seq && seq <= m->reg_seq)
			return SB_UNCHANGED;
		if (strcmp(type, "Registered")) {
			if (!reg_get(m, ep, contact, false))
				return SB_UNCHANGED;
			reg_remove(m, ep, contact);
			return SB_CHANGED;
		}
		r = reg_get(m, ep, contact, true);
		if (!r)
			return SB_UNCHANGED;
		reg_fill(r, ev, now);
		qsort(m->regs, m->nregs, sizeof(*m->regs), compare_regs);
		return SB_CHANGED;
	}
	if (seq && seq <= m->chan_seq)
		return SB_UNCHANGED;
	return channel_event(m, type, ev, when);
}

/* ---- calls ---- */

const char *sb_chan_party(const struct sb_chan *c, char *buf, size_t size)
{
	const char *slash = strchr(c->name, '/');
	const char *start = slash ? slash + 1 : c->name;
	const char *dash = strrchr(start, '-');
	size_t len = dash && dash > start ? (size_t)(dash - start) : strlen(start);

	snprintf(buf, size, "%.*s", (int)len, start);
	return buf;
}

size_t sb_model_calls(const struct sb_model *m, struct sb_call *rows, size_t max)
{
	size_t n = m->nchans, nrows = 0;
	const struct sb_chan **order;
	bool *placed;

	if (!n)
		return 0;
	order = malloc(n * sizeof(*order));
	placed = calloc(n, sizeof(*placed));
	if (!order || !placed) {
		free(order);
		free(placed);
		return 0;
	}
	/* Oldest first: the older of two parties is the one who called. */
	for (size_t i = 0; i < n; i++)
		order[i] = &m->chans[i];
	for (size_t i = 1; i < n; i++)
		for (size_t j = i; j > 0 && order[j - 1]->order > order[j]->order; j--) {
			const struct sb_chan *t = order[j];
			order[j] = order[j - 1];
			order[j - 1] = t;
		}
	for (size_t i = 0; i < n; i++) {
		const struct sb_chan *a = order[i], *b = NULL;
		size_t bi = n;

		if (placed[i])
			continue;
		placed[i] = true;
		/* Its bridged peer, else what its Dial rings, else another
		 * channel of the same call (linkedid). */
		for (int pass = 0; pass < 3 && bi == n; pass++)
			for (size_t j = i + 1; j < n && bi == n; j++) {
				const struct sb_chan *c = order[j];
				if (placed[j])
					continue;
				if ((pass == 0 && a->peer[0] && !strcmp(a->peer, c->name)) ||
				    (pass == 1 && a->dialing[0] && !strcmp(a->dialing, c->name)) ||
				    (pass == 2 && a->linkedid[0] && !c->peer[0] &&
				     !strcmp(a->linkedid, c->linkedid)))
					bi = j;
			}
		if (bi < n) {
			placed[bi] = true;
			b = order[bi];
		}
		if (nrows < max)
			rows[nrows] = (struct sb_call){a, b};
		nrows++;
	}
	free(order);
	free(placed);
	return nrows;
}
