/*
 * res_registrar: the location service of plexus/location.h. It owns the
 * bindings of every address of record (a hash table aor -> bindings in
 * memory, answered from by lookup without touching the disk), their rows in
 * the store's px_location table, and the one "registrar-writer" thread that
 * applies REGISTER requests. update() only checks and copies a request and
 * queues it; the writer takes what was queued within a couple of
 * milliseconds (at most GROUP_MAX requests), applies it in order to working
 * copies of the bindings it touches (RFC 3261 10.3: Call-ID/CSeq ordering,
 * expires 0 and "*" removal, max_contacts replacing the oldest), writes the
 * difference in ONE transaction, and only after the commit installs the
 * working copies in the table and answers every request of the group. So a
 * 200 is never sent before its binding is on disk, memory and disk always
 * agree (a failed commit answers 500 and installs nothing), and a change is
 * visible to lookup once committed, a few milliseconds after update(). The
 * same thread removes expired bindings from memory and store every second,
 * and drains its queue at unload so that no request is left unanswered. It
 * also provides the console command "sip show registrations" and the list
 * of every binding that the console's Registrations action answers from.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <plexus/cli.h>
#include <plexus/core.h>
#include <plexus/event.h>
#include <plexus/location.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/store.h>

/* Requests committed in one transaction at most. */
#define GROUP_MAX 512
/* Once a request is queued, the writer waits this long for others to join
 * its transaction (unless GROUP_MAX are queued before). */
#define GROUP_LINGER_NS 2000000L
#define INITIAL_BUCKETS 1024
/* A contact without a q parameter ranks as q=1.0. */
#define Q_ABSENT_RANK 1000

static const struct px_store_migration registrar_schema[] = {
        {1, "location bindings",
         "CREATE TABLE px_location ("
         " aor TEXT NOT NULL,"
         " contact TEXT NOT NULL,"
         " received TEXT NOT NULL DEFAULT '',"
         " user_agent TEXT NOT NULL DEFAULT '',"
         " call_id TEXT NOT NULL DEFAULT '',"
         " cseq INTEGER NOT NULL DEFAULT 0,"
         " q INTEGER NOT NULL DEFAULT -1,"
         " expires_at INTEGER NOT NULL,"
         " registered_at INTEGER NOT NULL,"
         " PRIMARY KEY (aor, contact));"
         "CREATE INDEX px_location_expires ON px_location (expires_at);"},
};

static const char UPSERT_SQL[] =
        "INSERT INTO px_location (aor, contact, received, user_agent, call_id, cseq, q, "
        "expires_at, registered_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) "
        "ON CONFLICT (aor, contact) DO UPDATE SET received = excluded.received, "
        "user_agent = excluded.user_agent, call_id = excluded.call_id, cseq = excluded.cseq, "
        "q = excluded.q, expires_at = excluded.expires_at, "
        "registered_at = excluded.registered_at";
static const char DELETE_SQL[] = "DELETE FROM px_location WHERE aor = ?1 AND contact = ?2";

/* A binding in memory. seq orders registrations (a refresh takes a new
 * one): the oldest is replaced first, the newest is tried first among equal
 * q. origin and dirty only mean something in the writer's working copies. */
struct binding {
	struct px_binding b;
	uint64_t seq;
	int origin; /* index in the committed entry, -1 when new in this group */
	bool dirty; /* to be written */
};

struct aor_entry {
	struct aor_entry *next; /* hash chain */
	uint32_t hash;
	struct binding *v;
	size_t n, cap;
	char aor[PX_AOR_MAX];
};

struct work_contact {
	char uri[PX_CONTACT_MAX];
	int expires; /* computed: 0 removes */
	int q;
};

/* A queued request, a copy of what update() was given. */
struct work {
	struct work *next;
	px_register_done done;
	void *ctx;
	int status; /* 0: to apply; 400 or 423: answered as it is */
	const char *reason;
	int min_expires;
	bool wildcard;
	uint32_t cseq;
	int max_contacts;
	char aor[PX_AOR_MAX];
	char call_id[160];
	char user_agent[160];
	char received[160];
	size_t ncontacts;
	struct work_contact contacts[];
};

static struct {
	px_store *store;
	px_store_stmt *upsert, *del;

	/* The table: written by the writer thread only (under the write lock),
	 * so the writer reads it without taking the lock. */
	pthread_rwlock_t table_lock;
	struct aor_entry **buckets;
	size_t nbuckets, naors;
	uint64_t next_seq;

	pthread_mutex_t queue_lock;
	pthread_cond_t queue_cond; /* CLOCK_MONOTONIC */
	struct work *head, **tail;
	size_t queued;
	bool stopping;
	pthread_t writer;
	bool writer_running;

	/* Calls into update, lookup and the console command: unload waits
	 * for them after closing the gate, before it frees anything. */
	atomic_int inflight;
	atomic_bool closing;
} R;

/* ---- small helpers ---- */

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t len = src ? strnlen(src, size - 1) : 0;

	if (len)
		memcpy(dst, src, len);
	dst[len] = '\0';
}

static uint32_t hash_aor(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

static bool gate_enter(void)
{
	atomic_fetch_add(&R.inflight, 1);
	if (atomic_load(&R.closing)) {
		atomic_fetch_sub(&R.inflight, 1);
		return false;
	}
	return true;
}

static void gate_leave(void)
{
	atomic_fetch_sub(&R.inflight, 1);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Contact URIs are compared after trimming blanks and <>, with the scheme
 * and the host (the part after '@', or after the scheme without a user, up
 * to ':', ';', '?' or '>') folded to lower case; the user part and the
 * parameters compare exactly. This is simpler than RFC 3261 19.1.4 (no
 * parameter reordering, no escapes) and is what phones refreshing their own
 * Contact need. Returns false when the URI does not fit. */
static bool normalize_contact(const char *uri, char *out, size_t size)
{
	size_t len, i, host_start, host_end;
	const char *colon, *at;

	while (isspace((unsigned char)*uri))
		uri++;
	len = strlen(uri);
	while (len && isspace((unsigned char)uri[len - 1]))
		len--;
	if (len >= 2 && uri[0] == '<' && uri[len - 1] == '>') {
		uri++;
		len -= 2;
	}
	if (len >= size)
		return false;
	memcpy(out, uri, len);
	out[len] = '\0';

	colon = memchr(out, ':', len);
	if (!colon)
		return true;
	for (i = 0; out + i < colon; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	at = strchr(colon + 1, '@');
	host_start = (size_t)((at ? at : colon) - out) + 1;
	host_end = host_start;
	if (out[host_end] == '[') { /* IPv6 reference */
		while (out[host_end] && out[host_end] != ']')
			host_end++;
	}
	while (out[host_end] && !strchr(":;?>", out[host_end]))
		host_end++;
	for (i = host_start; i < host_end; i++)
		out[i] = (char)tolower((unsigned char)out[i]);
	return true;
}

static bool same_contact(const char *a, const char *b)
{
	char na[PX_CONTACT_MAX], nb[PX_CONTACT_MAX];

	if (!strcmp(a, b))
		return true;
	if (!normalize_contact(a, na, sizeof(na)) || !normalize_contact(b, nb, sizeof(nb)))
		return false;
	return !strcmp(na, nb);
}

static int q_rank(int q)
{
	return q < 0 ? Q_ABSENT_RANK : q;
}

/* Best first: higher q, then the most recent registration. */
static int compare_bindings(const void *pa, const void *pb)
{
	const struct binding *a = *(const struct binding *const *)pa;
	const struct binding *b = *(const struct binding *const *)pb;
	int qa = q_rank(a->b.q), qb = q_rank(b->b.q);

	if (qa != qb)
		return qa > qb ? -1 : 1;
	return a->seq > b->seq ? -1 : a->seq < b->seq ? 1 : 0;
}

/* A binding is current up to and including the second of its expires_at,
 * so that it lasts at least the granted interval. */
static bool is_current(const struct binding *b, int64_t now)
{
	return b->b.expires_at >= now;
}

/* ---- the table ---- */

static struct aor_entry *table_find(const char *aor, uint32_t h)
{
	struct aor_entry *e;

	if (!R.nbuckets)
		return NULL;
	for (e = R.buckets[h & (R.nbuckets - 1)]; e; e = e->next)
		if (e->hash == h && !strcmp(e->aor, aor))
			return e;
	return NULL;
}

/* Caller holds the write lock (or is alone: load, unload). */
static int table_grow(void)
{
	size_t nb = R.nbuckets ? R.nbuckets * 2 : INITIAL_BUCKETS;
	struct aor_entry **b = calloc(nb, sizeof(*b));

	if (!b)
		return -1;
	for (size_t i = 0; i < R.nbuckets; i++) {
		while (R.buckets[i]) {
			struct aor_entry *e = R.buckets[i];
			R.buckets[i] = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(R.buckets);
	R.buckets = b;
	R.nbuckets = nb;
	return 0;
}

/* Caller holds the write lock (or is alone). Takes e. There is always a
 * bucket array: load() makes the first one. */
static void table_insert(struct aor_entry *e)
{
	if (R.naors >= R.nbuckets)
		table_grow(); /* on failure, the chains just get longer */
	e->next = R.buckets[e->hash & (R.nbuckets - 1)];
	R.buckets[e->hash & (R.nbuckets - 1)] = e;
	R.naors++;
}

/* Caller holds the write lock (or is alone). Unlinks e without freeing it. */
static void table_unlink(struct aor_entry *e)
{
	struct aor_entry **pp = &R.buckets[e->hash & (R.nbuckets - 1)];

	while (*pp && *pp != e)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = e->next;
		R.naors--;
	}
}

static void entry_free(struct aor_entry *e)
{
	if (e) {
		free(e->v);
		free(e);
	}
}

static void table_free(void)
{
	for (size_t i = 0; i < R.nbuckets; i++) {
		while (R.buckets[i]) {
			struct aor_entry *e = R.buckets[i];
			R.buckets[i] = e->next;
			entry_free(e);
		}
	}
	free(R.buckets);
	R.buckets = NULL;
	R.nbuckets = R.naors = 0;
}

static int bindings_push(struct binding **v, size_t *n, size_t *cap, const struct binding *b)
{
	if (*n == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1;
		struct binding *nv = realloc(*v, ncap * sizeof(*nv));
		if (!nv)
			return -1;
		*v = nv;
		*cap = ncap;
	}
	(*v)[(*n)++] = *b;
	return 0;
}

/* Current bindings of e, best first, into out[0..max-1]; returns how many
 * are current. Caller holds the read lock, or is the writer. */
static size_t entry_sorted(const struct aor_entry *e, int64_t now, struct px_binding *out,
                           size_t max)
{
	const struct binding *stackp[32], **p = stackp;
	size_t n = 0;

	if (!e)
		return 0;
	if (e->n > 32) {
		p = malloc(e->n * sizeof(*p));
		if (!p)
			return 0;
	}
	for (size_t i = 0; i < e->n; i++)
		if (is_current(&e->v[i], now))
			p[n++] = &e->v[i];
	if (out && max) {
		qsort(p, n, sizeof(*p), compare_bindings);
		for (size_t i = 0; i < n && i < max; i++)
			out[i] = p[i]->b;
	}
	if (p != stackp)
		free(p);
	return n;
}

/* ---- the writer: groups of requests, one transaction each ---- */

/* An AOR touched by the group: the committed entry and its working copy. */
struct working {
	struct aor_entry *old; /* NULL when the AOR has no bindings yet */
	uint32_t hash;
	struct binding *v;
	size_t n, cap;
	const char **why; /* per old binding: why it went, NULL while kept */
	bool changed;
	char aor[PX_AOR_MAX];
};

struct group {
	struct working *w;
	size_t nw, capw;
	int *index; /* open addressing over w: -1 empty */
	size_t nindex;
	int64_t now;
	size_t rows; /* rows written */
};

static int group_index_rebuild(struct group *g, size_t nindex)
{
	int *idx = malloc(nindex * sizeof(*idx));

	if (!idx)
		return -1;
	for (size_t i = 0; i < nindex; i++)
		idx[i] = -1;
	for (size_t i = 0; i < g->nw; i++) {
		size_t k = g->w[i].hash & (nindex - 1);
		while (idx[k] >= 0)
			k = (k + 1) & (nindex - 1);
		idx[k] = (int)i;
	}
	free(g->index);
	g->index = idx;
	g->nindex = nindex;
	return 0;
}

/* Drop the working copy's binding i, saying why if it was committed. */
static void working_remove(struct working *w, size_t i, const char *why)
{
	if (w->v[i].origin >= 0 && !w->why[w->v[i].origin])
		w->why[w->v[i].origin] = why;
	memmove(&w->v[i], &w->v[i + 1], (w->n - i - 1) * sizeof(w->v[0]));
	w->n--;
	w->changed = true;
}

/* The working copy of aor, made on first use from the committed entry
 * (without its expired bindings). NULL when out of memory. */
static struct working *group_get(struct group *g, const char *aor)
{
	uint32_t h = hash_aor(aor);
	struct working *w;
	size_t k;

	if (g->nindex) {
		for (k = h & (g->nindex - 1); g->index[k] >= 0; k = (k + 1) & (g->nindex - 1)) {
			w = &g->w[g->index[k]];
			if (w->hash == h && !strcmp(w->aor, aor))
				return w;
		}
	}
	if (g->nw == g->capw) {
		size_t ncap = g->capw ? g->capw * 2 : 64;
		struct working *nw = realloc(g->w, ncap * sizeof(*nw));
		if (!nw)
			return NULL;
		g->w = nw;
		g->capw = ncap;
	}
	if ((g->nw + 1) * 2 > g->nindex && group_index_rebuild(g, g->nindex ? g->nindex * 2 : 256))
		return NULL;
	w = &g->w[g->nw];
	memset(w, 0, sizeof(*w));
	copy_str(w->aor, sizeof(w->aor), aor);
	w->hash = h;
	w->old = table_find(aor, h);
	if (w->old) {
		w->why = calloc(w->old->n ? w->old->n : 1, sizeof(*w->why));
		if (!w->why)
			return NULL;
		for (size_t i = 0; i < w->old->n; i++) {
			struct binding b = w->old->v[i];
			if (!is_current(&b, g->now)) {
				w->why[i] = "expired";
				w->changed = true;
				continue;
			}
			b.origin = (int)i;
			b.dirty = false;
			if (bindings_push(&w->v, &w->n, &w->cap, &b)) {
				free(w->v);
				free(w->why);
				return NULL;
			}
		}
	}
	for (k = h & (g->nindex - 1); g->index[k] >= 0; k = (k + 1) & (g->nindex - 1))
		;
	g->index[k] = (int)g->nw;
	return &g->w[g->nw++];
}

static void group_free(struct group *g)
{
	for (size_t i = 0; i < g->nw; i++) {
		free(g->w[i].v);
		free(g->w[i].why);
	}
	free(g->w);
	free(g->index);
	memset(g, 0, sizeof(*g));
}

/* Apply one request to its working copy. Returns 0, or -1 out of memory. */
static int apply(struct group *g, const struct work *rq)
{
	struct working *w = group_get(g, rq->aor);

	if (!w)
		return -1;
	if (rq->wildcard) {
		for (size_t i = 0; i < w->n;) {
			struct px_binding *b = &w->v[i].b;
			if (!strcmp(b->call_id, rq->call_id) && rq->cseq <= b->cseq) {
				px_debug(1,
				         "res_registrar: %s: '*' with CSeq %" PRIu32
				         " not above %" PRIu32 " of %s; kept",
				         rq->aor, rq->cseq, b->cseq, b->contact);
				i++;
				continue;
			}
			working_remove(w, i, "unregistered");
		}
		return 0;
	}
	for (size_t c = 0; c < rq->ncontacts; c++) {
		const struct work_contact *ct = &rq->contacts[c];
		struct binding nb;
		size_t i;

		for (i = 0; i < w->n; i++)
			if (same_contact(w->v[i].b.contact, ct->uri))
				break;
		if (i < w->n) {
			struct binding *b = &w->v[i];
			if (!strcmp(b->b.call_id, rq->call_id) && rq->cseq <= b->b.cseq) {
				px_debug(1,
				         "res_registrar: %s: CSeq %" PRIu32 " not above %" PRIu32
				         " for %s (same Call-ID); ignored",
				         rq->aor, rq->cseq, b->b.cseq, b->b.contact);
				continue;
			}
			if (ct->expires == 0) {
				working_remove(w, i, "unregistered");
				continue;
			}
			nb = *b;
			memmove(&w->v[i], &w->v[i + 1], (w->n - i - 1) * sizeof(w->v[0]));
			w->n--;
		} else {
			if (ct->expires == 0)
				continue;
			memset(&nb, 0, sizeof(nb));
			copy_str(nb.b.aor, sizeof(nb.b.aor), rq->aor);
			nb.origin = -1;
		}
		/* New or refreshed: it goes to the end, as the newest. */
		copy_str(nb.b.contact, sizeof(nb.b.contact), ct->uri);
		copy_str(nb.b.received, sizeof(nb.b.received), rq->received);
		copy_str(nb.b.user_agent, sizeof(nb.b.user_agent), rq->user_agent);
		copy_str(nb.b.call_id, sizeof(nb.b.call_id), rq->call_id);
		nb.b.cseq = rq->cseq;
		nb.b.q = ct->q;
		nb.b.expires_at = g->now + ct->expires;
		nb.b.registered_at = g->now;
		nb.seq = ++R.next_seq;
		nb.dirty = true;
		w->changed = true;
		if (bindings_push(&w->v, &w->n, &w->cap, &nb))
			return -1;
	}
	/* Too many: the least recently registered go first. */
	while (rq->max_contacts > 0 && w->n > (size_t)rq->max_contacts) {
		size_t oldest = 0;
		for (size_t i = 1; i < w->n; i++)
			if (w->v[i].seq < w->v[oldest].seq)
				oldest = i;
		working_remove(w, oldest, "replaced by a newer contact");
	}
	return 0;
}

static int write_binding(const struct px_binding *b, px_err *err)
{
	px_store_stmt *s = R.upsert;

	px_store_reset(s);
	if (px_store_bind_text(s, 1, b->aor) || px_store_bind_text(s, 2, b->contact) ||
	    px_store_bind_text(s, 3, b->received) || px_store_bind_text(s, 4, b->user_agent) ||
	    px_store_bind_text(s, 5, b->call_id) || px_store_bind_int64(s, 6, b->cseq) ||
	    px_store_bind_int64(s, 7, b->q) || px_store_bind_int64(s, 8, b->expires_at) ||
	    px_store_bind_int64(s, 9, b->registered_at))
		return px_err_set(err, "binding parameters refused");
	return px_store_step(s, err) < 0 ? -1 : 0;
}

static int delete_binding(const char *aor, const char *contact, px_err *err)
{
	px_store_stmt *s = R.del;

	px_store_reset(s);
	if (px_store_bind_text(s, 1, aor) || px_store_bind_text(s, 2, contact))
		return px_err_set(err, "binding parameters refused");
	return px_store_step(s, err) < 0 ? -1 : 0;
}

/* Write the difference between the committed entries and the working
 * copies in one transaction. */
static int group_write(struct group *g, px_err *err)
{
	if (px_store_begin(R.store, err))
		return -1;
	for (size_t i = 0; i < g->nw; i++) {
		struct working *w = &g->w[i];

		if (!w->changed)
			continue;
		for (size_t k = 0; w->old && k < w->old->n; k++) {
			const char *contact = w->old->v[k].b.contact;
			size_t j;
			for (j = 0; j < w->n; j++)
				if (!strcmp(w->v[j].b.contact, contact))
					break;
			if (j < w->n)
				continue; /* still there (same row) */
			if (delete_binding(w->aor, contact, err))
				goto fail;
			g->rows++;
		}
		for (size_t j = 0; j < w->n; j++) {
			if (!w->v[j].dirty)
				continue;
			if (write_binding(&w->v[j].b, err))
				goto fail;
			g->rows++;
		}
	}
	if (px_store_commit(R.store, err))
		return -1;
	return 0;
fail:
	px_store_rollback(R.store);
	return -1;
}

/* After the commit: say what changed, in the log (verbose 3 for new and
 * removed contacts, 4 for refreshes) and as events (Registered,
 * Unregistered, RegistrationExpired). The committed entries are still
 * intact. */
static void group_tell(const struct group *g)
{
	bool log = atomic_load_explicit(&px_log_verbose_max, memory_order_relaxed) >= 3;

	if (!log && !px_event_listening())
		return;
	for (size_t i = 0; i < g->nw; i++) {
		const struct working *w = &g->w[i];

		if (!w->changed)
			continue;
		for (size_t k = 0; w->old && k < w->old->n; k++) {
			const char *contact = w->old->v[k].b.contact;
			if (!w->why[k])
				continue;
			px_verbose(3, "Unregistered %s contact %s (%s)", w->aor, contact,
			           w->why[k]);
			if (!strcmp(w->why[k], "expired"))
				PX_EVENT_EMIT(PX_EV_REGISTRATION_EXPIRED, NULL, NULL,
				              PX_EVS("endpoint", w->aor), PX_EVS("contact", contact),
				              PX_EVS("source", w->old->v[k].b.received));
			else
				PX_EVENT_EMIT(PX_EV_UNREGISTERED, NULL, NULL,
				              PX_EVS("endpoint", w->aor), PX_EVS("contact", contact),
				              PX_EVS("source", w->old->v[k].b.received),
				              PX_EVS("reason", w->why[k]));
		}
		for (size_t j = 0; j < w->n; j++) {
			const struct px_binding *b = &w->v[j].b;
			if (!w->v[j].dirty)
				continue;
			if (w->v[j].origin < 0)
				px_verbose(3,
				           "Registered %s contact %s from %s (expires in %" PRId64
				           " s)",
				           w->aor, b->contact, b->received, b->expires_at - g->now);
			else
				px_verbose(4,
				           "Refreshed %s contact %s from %s (expires in %" PRId64
				           " s)",
				           w->aor, b->contact, b->received, b->expires_at - g->now);
			PX_EVENT_EMIT(PX_EV_REGISTERED, NULL, NULL, PX_EVS("endpoint", w->aor),
			              PX_EVS("contact", b->contact), PX_EVS("source", b->received),
			              PX_EVS("user_agent", b->user_agent),
			              PX_EVI("expires", b->expires_at - g->now),
			              PX_EVI("refresh", w->v[j].origin >= 0));
		}
	}
}

/* After the commit: the working copies become the table. */
static void group_install(struct group *g)
{
	pthread_rwlock_wrlock(&R.table_lock);
	for (size_t i = 0; i < g->nw; i++) {
		struct working *w = &g->w[i];
		struct aor_entry *e = w->old;

		if (!w->changed)
			continue;
		if (w->n == 0) {
			if (e) {
				table_unlink(e);
				entry_free(e);
			}
			continue;
		}
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e) {
				/* Memory and disk disagree until the next load. */
				px_log_error("res_registrar: out of memory; %s not kept", w->aor);
				continue;
			}
			copy_str(e->aor, sizeof(e->aor), w->aor);
			e->hash = w->hash;
			table_insert(e);
		}
		/* Swap arrays: the old one goes with the group. */
		struct binding *oldv = e->v;
		size_t oldcap = e->cap;
		e->v = w->v;
		e->n = w->n;
		e->cap = w->cap;
		w->v = oldv;
		w->n = 0;
		w->cap = oldcap;
	}
	pthread_rwlock_unlock(&R.table_lock);
}

/* Answer one request, with the current bindings of its AOR for a 200. The
 * writer reads the table without the lock: it is the only one to change it. */
static void answer(const struct work *rq, int status, const char *reason, struct px_binding **buf,
                   size_t *bufcap, int64_t now)
{
	struct px_register_result res = {.status = status, .reason = reason};

	if (status == 200) {
		const struct aor_entry *e = table_find(rq->aor, hash_aor(rq->aor));
		size_t n = e ? e->n : 0;

		if (n > *bufcap) {
			struct px_binding *nb = realloc(*buf, n * sizeof(*nb));
			if (nb) {
				*buf = nb;
				*bufcap = n;
			}
		}
		n = entry_sorted(e, now, *buf, *bufcap);
		res.bindings = *buf;
		res.nbindings = n < *bufcap ? n : *bufcap;
	} else if (status == 423) {
		res.min_expires = rq->min_expires;
	}
	rq->done(rq->ctx, &res);
}

/* Every AOR holding an expired binding gets a working copy, which drops it. */
static int group_add_expired(struct group *g)
{
	for (size_t i = 0; i < R.nbuckets; i++) {
		for (struct aor_entry *e = R.buckets[i]; e; e = e->next) {
			for (size_t k = 0; k < e->n; k++) {
				if (!is_current(&e->v[k], g->now)) {
					if (!group_get(g, e->aor))
						return -1;
					break;
				}
			}
		}
	}
	return 0;
}

/* One group: apply, write in one transaction, install, answer. */
static void process_group(struct work *items, bool purge)
{
	struct group g = {0};
	struct px_binding *buf = NULL;
	size_t bufcap = 0, napplied = 0;
	px_err err = {""};
	bool failed = false, changed = false;

	g.now = (int64_t)time(NULL);
	if (purge && group_add_expired(&g))
		failed = px_err_set(&err, "out of memory");
	for (struct work *rq = items; rq && !failed; rq = rq->next) {
		if (rq->status)
			continue;
		napplied++;
		if ((rq->ncontacts || rq->wildcard) && apply(&g, rq))
			failed = px_err_set(&err, "out of memory");
	}
	for (size_t i = 0; i < g.nw; i++)
		changed |= g.w[i].changed;
	if (!failed && changed) {
		if (group_write(&g, &err) == 0) {
			px_debug(1,
			         "res_registrar: committed %zu bindings in one transaction for %zu "
			         "requests",
			         g.rows, napplied);
			group_tell(&g);
			group_install(&g);
		} else {
			failed = true;
		}
	}
	if (failed)
		px_log_error("res_registrar: store error, bindings not saved (%zu requests "
		             "answered 500): %s",
		             napplied, err.msg);

	for (struct work *rq = items, *next; rq; rq = next) {
		next = rq->next;
		if (rq->status)
			answer(rq, rq->status, rq->reason, &buf, &bufcap, g.now);
		else if (failed)
			answer(rq, 500, "store error", &buf, &bufcap, g.now);
		else
			answer(rq, 200, "OK", &buf, &bufcap, g.now);
		free(rq);
	}
	free(buf);
	group_free(&g);
}

static void timespec_add_ns(struct timespec *ts, long ns)
{
	ts->tv_sec += ns / 1000000000L;
	ts->tv_nsec += ns % 1000000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool timespec_reached(const struct timespec *deadline)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > deadline->tv_sec ||
	       (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec);
}

/* Just after the next second of wall-clock time starts, on the monotonic
 * clock: bindings expire by whole seconds. */
static void next_purge_time(struct timespec *out)
{
	struct timespec real;

	clock_gettime(CLOCK_REALTIME, &real);
	clock_gettime(CLOCK_MONOTONIC, out);
	timespec_add_ns(out, 1000000000L - real.tv_nsec + 5000000L);
}

static void *writer_main(void *arg)
{
	struct timespec purge_at;
	bool stop = false;

	(void)arg;
	next_purge_time(&purge_at);
	while (!stop) {
		struct work *batch = NULL, **tail = &batch;
		bool purge;
		size_t n = 0;

		pthread_mutex_lock(&R.queue_lock);
		while (!R.head && !R.stopping)
			if (pthread_cond_timedwait(&R.queue_cond, &R.queue_lock, &purge_at) ==
			    ETIMEDOUT)
				break;
		if (R.head && !R.stopping && R.queued < GROUP_MAX) {
			struct timespec linger;

			/* Let others join this transaction for a moment. */
			clock_gettime(CLOCK_MONOTONIC, &linger);
			timespec_add_ns(&linger, GROUP_LINGER_NS);
			while (!R.stopping && R.queued < GROUP_MAX)
				if (pthread_cond_timedwait(&R.queue_cond, &R.queue_lock, &linger) ==
				    ETIMEDOUT)
					break;
		}
		while (R.head && n < GROUP_MAX) {
			struct work *w = R.head;
			R.head = w->next;
			w->next = NULL;
			*tail = w;
			tail = &w->next;
			n++;
		}
		if (!R.head)
			R.tail = &R.head;
		R.queued -= n;
		/* Nothing can be queued once stopping is set: drain, then end. */
		stop = R.stopping && !R.head;
		pthread_mutex_unlock(&R.queue_lock);

		purge = timespec_reached(&purge_at);
		if (purge)
			next_purge_time(&purge_at);
		if (batch || purge)
			process_group(batch, purge);
	}
	return NULL;
}

/* ---- the location service ---- */

/* The Contact URI without surrounding blanks and <>: 0, or -1 when that
 * leaves nothing, -2 when it does not fit. */
static int trim_contact(const char *uri, char *out, size_t size)
{
	size_t len;

	while (isspace((unsigned char)*uri))
		uri++;
	len = strlen(uri);
	while (len && isspace((unsigned char)uri[len - 1]))
		len--;
	if (len >= 2 && uri[0] == '<' && uri[len - 1] == '>') {
		uri++;
		len -= 2;
	}
	if (len == 0)
		return -1;
	if (len >= size)
		return -2;
	memcpy(out, uri, len);
	out[len] = '\0';
	return 0;
}

/* Check the request and work out each contact's interval; sets w->status
 * to 400 or 423 when the request is refused as a whole. */
static void validate(const struct px_register_request *req, struct work *w)
{
	if (req->wildcard) {
		if (req->ncontacts) {
			w->status = 400;
			w->reason = "Contact '*' must be the only contact";
		} else if (req->expires != 0) {
			w->status = 400;
			w->reason = "Contact '*' requires Expires: 0";
		}
		return;
	}
	for (size_t i = 0; i < req->ncontacts; i++) {
		const struct px_register_contact *c = &req->contacts[i];
		struct work_contact *wc = &w->contacts[i];
		int e;

		int rc = c->uri ? trim_contact(c->uri, wc->uri, sizeof(wc->uri)) : -1;

		if (rc) {
			w->status = 400;
			w->reason = rc == -2 ? "Contact URI too long" : "Empty Contact URI";
			return;
		}
		if (c->q < -1 || c->q > 1000) {
			w->status = 400;
			w->reason = "Bad q value in Contact";
			return;
		}
		wc->q = c->q;
		if (c->expires >= 0)
			e = c->expires;
		else if (req->expires >= 0)
			e = req->expires;
		else
			e = req->default_expires;
		if (req->max_expires > 0 && e > req->max_expires)
			e = req->max_expires;
		wc->expires = e < 0 ? 0 : e;
	}
	for (size_t i = 0; i < req->ncontacts; i++) {
		if (w->contacts[i].expires > 0 && w->contacts[i].expires < req->min_expires) {
			w->status = 423;
			w->reason = "Interval Too Brief";
			w->min_expires = req->min_expires;
			return;
		}
	}
}

static int reg_update(const struct px_register_request *req, px_register_done done, void *ctx,
                      px_err *err)
{
	struct work *w;
	size_t n;
	bool wake;

	if (!req || !done)
		return px_err_set(err, "registrar: no request or no callback");
	if (!req->aor || !*req->aor)
		return px_err_set(err, "registrar: REGISTER without an address of record");
	if (strlen(req->aor) >= PX_AOR_MAX)
		return px_err_set(err, "registrar: address of record '%.40s...' is too long",
		                  req->aor);
	if (req->ncontacts && !req->contacts)
		return px_err_set(err, "registrar: %s: contacts missing", req->aor);
	if (!gate_enter())
		return px_err_set(err, "registrar: res_registrar is unloading");
	n = req->wildcard ? 0 : req->ncontacts;
	w = calloc(1, sizeof(*w) + n * sizeof(w->contacts[0]));
	if (!w) {
		gate_leave();
		return px_err_set(err, "registrar: out of memory");
	}
	w->done = done;
	w->ctx = ctx;
	w->wildcard = req->wildcard;
	w->cseq = req->cseq;
	w->max_contacts = req->max_contacts;
	w->ncontacts = n;
	copy_str(w->aor, sizeof(w->aor), req->aor);
	copy_str(w->call_id, sizeof(w->call_id), req->call_id);
	copy_str(w->user_agent, sizeof(w->user_agent), req->user_agent);
	copy_str(w->received, sizeof(w->received), req->received);
	validate(req, w);
	if (w->status)
		px_debug(1, "res_registrar: %s: %d %s", w->aor, w->status, w->reason);

	pthread_mutex_lock(&R.queue_lock);
	*R.tail = w;
	R.tail = &w->next;
	wake = R.queued++ == 0 || R.queued == GROUP_MAX;
	if (wake)
		pthread_cond_signal(&R.queue_cond);
	pthread_mutex_unlock(&R.queue_lock);
	gate_leave();
	return 0;
}

static size_t reg_lookup(const char *aor, struct px_binding *out, size_t max)
{
	size_t n;

	if (!aor || !gate_enter())
		return 0;
	pthread_rwlock_rdlock(&R.table_lock);
	n = entry_sorted(table_find(aor, hash_aor(aor)), (int64_t)time(NULL), out, max);
	pthread_rwlock_unlock(&R.table_lock);
	gate_leave();
	return n;
}

static long reg_list(const char *aor, struct px_binding **out);

static const struct px_registrar registrar = {
        .name = "res_registrar",
        .update = reg_update,
        .lookup = reg_lookup,
        .list = reg_list,
};

/* ---- console ---- */

typedef char aor_name[PX_AOR_MAX];

static int compare_names(const void *a, const void *b)
{
	return strcmp((const char *)a, (const char *)b);
}

/* Names of the AORs with bindings (those starting with prefix), sorted;
 * an array of PX_AOR_MAX-sized names to free. Caller is inside the gate. */
static aor_name *aor_names(const char *prefix, size_t *count)
{
	aor_name *names = NULL;
	size_t n = 0, plen = prefix ? strlen(prefix) : 0;

	pthread_rwlock_rdlock(&R.table_lock);
	if (R.naors)
		names = malloc(R.naors * sizeof(*names));
	for (size_t i = 0; names && i < R.nbuckets; i++)
		for (struct aor_entry *e = R.buckets[i]; e; e = e->next)
			if (!plen || !strncmp(e->aor, prefix, plen))
				memcpy(names[n++], e->aor, PX_AOR_MAX);
	pthread_rwlock_unlock(&R.table_lock);
	if (names)
		qsort(names, n, sizeof(*names), compare_names);
	*count = n;
	return names;
}

/* Every current binding of aor (NULL: of every AOR), sorted by AOR, best
 * first within one; -1 when memory ran out. Caller is inside the gate. */
static long collect_bindings(const char *aor, struct px_binding **out)
{
	aor_name *names = NULL;
	struct px_binding *buf = NULL;
	size_t nnames = 0, len = 0, cap = 0;
	int64_t now = (int64_t)time(NULL);

	*out = NULL;
	if (aor) {
		if (strlen(aor) >= PX_AOR_MAX)
			return 0;
		names = malloc(sizeof(*names));
		if (!names)
			return -1;
		copy_str(names[0], sizeof(names[0]), aor);
		nnames = 1;
	} else {
		names = aor_names(NULL, &nnames);
	}
	for (size_t i = 0; i < nnames; i++) {
		size_t n;

		/* The AOR may gain bindings between counting and copying:
		 * grow and try again until they fit. */
		for (;;) {
			pthread_rwlock_rdlock(&R.table_lock);
			n = entry_sorted(table_find(names[i], hash_aor(names[i])), now,
			                 buf ? buf + len : NULL, cap - len);
			pthread_rwlock_unlock(&R.table_lock);
			if (len + n <= cap)
				break;
			size_t ncap = cap ? cap * 2 : 16;
			while (ncap < len + n)
				ncap *= 2;
			struct px_binding *nb = realloc(buf, ncap * sizeof(*nb));
			if (!nb) {
				free(buf);
				free(names);
				return -1;
			}
			buf = nb;
			cap = ncap;
		}
		len += n;
	}
	free(names);
	if (!len) {
		free(buf);
		buf = NULL;
	}
	*out = buf;
	return (long)len;
}

static long reg_list(const char *aor, struct px_binding **out)
{
	long n;

	*out = NULL;
	if (!gate_enter())
		return 0;
	n = collect_bindings(aor, out);
	gate_leave();
	return n;
}

static enum px_cli_status cmd_show_registrations(px_cli *cli, int argc, char **argv)
{
	struct px_binding *b = NULL;
	size_t naors = 0;
	long n;
	int64_t now = (int64_t)time(NULL);

	if (argc > 4)
		return PX_CLI_SHOWUSAGE;
	if (!gate_enter()) {
		px_cli_printf(cli, "The registrar is unloading.\n");
		return PX_CLI_FAILURE;
	}
	n = collect_bindings(argc == 4 ? argv[3] : NULL, &b);
	gate_leave();
	if (n < 0) {
		px_cli_printf(cli, "Out of memory.\n");
		return PX_CLI_FAILURE;
	}
	for (long k = 0; k < n; k++) {
		if (!k)
			px_cli_printf(cli, "%-16s %-48s %-26s %7s  %s\n", "AOR", "Contact",
			              "Received", "Expires", "User agent");
		px_cli_printf(cli, "%-16s %-48s %-26s %7" PRId64 "  %s\n", b[k].aor, b[k].contact,
		              b[k].received, b[k].expires_at - now, b[k].user_agent);
		if (!k || strcmp(b[k].aor, b[k - 1].aor))
			naors++;
	}
	free(b);
	if (argc == 4 && !n) {
		px_cli_printf(cli, "No registrations for %s.\n", argv[3]);
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "%ld contact%s for %zu AOR%s.\n", n, n == 1 ? "" : "s", naors,
	              naors == 1 ? "" : "s");
	return PX_CLI_SUCCESS;
}

static void complete_aor(px_cli_completion *c, int argc, char **argv, int pos)
{
	aor_name *names;
	size_t n = 0;

	if (pos != 3 || !gate_enter())
		return;
	names = aor_names(pos < argc ? argv[pos] : NULL, &n);
	for (size_t i = 0; i < n; i++)
		px_cli_complete_add(c, names[i]);
	free(names);
	gate_leave();
}

static const struct px_cli_command registrar_commands[] = {
        {"sip show registrations", "Shows the registered contacts",
         "Usage: sip show registrations [aor]\n"
         "       Lists the current bindings of every address of record, or of one:\n"
         "       contact, where the REGISTER came from, seconds until it expires\n"
         "       and the phone's user agent.",
         cmd_show_registrations, complete_aor, PX_ROLE_MONITOR},
};

#define NCOMMANDS (sizeof(registrar_commands) / sizeof(registrar_commands[0]))

/* ---- load and unload ---- */

/* Read the unexpired bindings back, oldest registration first, and delete
 * the expired rows. */
static int load_bindings(int64_t now, px_err *err)
{
	px_store_stmt *s;
	size_t count = 0;
	int rc;

	if (px_store_prepare(R.store,
	                     "SELECT aor, contact, received, user_agent, call_id, cseq, q, "
	                     "expires_at, registered_at FROM px_location WHERE expires_at >= ?1 "
	                     "ORDER BY registered_at, rowid",
	                     &s, err))
		return -1;
	px_store_bind_int64(s, 1, now);
	while ((rc = px_store_step(s, err)) == PX_STORE_ROW) {
		const char *aor = px_store_column_text(s, 0);
		struct binding b = {0};
		struct aor_entry *e;
		uint32_t h;

		if (!aor || strlen(aor) >= PX_AOR_MAX)
			continue;
		copy_str(b.b.aor, sizeof(b.b.aor), aor);
		copy_str(b.b.contact, sizeof(b.b.contact), px_store_column_text(s, 1));
		copy_str(b.b.received, sizeof(b.b.received), px_store_column_text(s, 2));
		copy_str(b.b.user_agent, sizeof(b.b.user_agent), px_store_column_text(s, 3));
		copy_str(b.b.call_id, sizeof(b.b.call_id), px_store_column_text(s, 4));
		b.b.cseq = (uint32_t)px_store_column_int64(s, 5);
		b.b.q = (int)px_store_column_int64(s, 6);
		b.b.expires_at = px_store_column_int64(s, 7);
		b.b.registered_at = px_store_column_int64(s, 8);
		b.seq = ++R.next_seq;
		h = hash_aor(aor);
		e = table_find(aor, h);
		if (!e) {
			e = calloc(1, sizeof(*e));
			if (!e)
				goto oom;
			copy_str(e->aor, sizeof(e->aor), aor);
			e->hash = h;
			table_insert(e);
		}
		if (bindings_push(&e->v, &e->n, &e->cap, &b))
			goto oom;
		count++;
	}
	px_store_finalize(s);
	if (rc < 0)
		return -1;

	if (px_store_prepare(R.store, "DELETE FROM px_location WHERE expires_at < ?1", &s, err))
		return -1;
	px_store_bind_int64(s, 1, now);
	rc = px_store_step(s, err);
	if (rc >= 0 && px_store_changes(s) > 0)
		px_verbose(3, "res_registrar: %" PRId64 " expired bindings removed from the store",
		           px_store_changes(s));
	px_store_finalize(s);
	if (rc < 0)
		return -1;
	px_verbose(2, "res_registrar: %zu bindings of %zu AORs loaded from the store", count,
	           R.naors);
	return 0;
oom:
	px_store_finalize(s);
	return px_err_set(err, "out of memory");
}

static void state_destroy(void)
{
	px_store_finalize(R.upsert);
	px_store_finalize(R.del);
	R.upsert = R.del = NULL;
	table_free();
	pthread_rwlock_destroy(&R.table_lock);
	pthread_mutex_destroy(&R.queue_lock);
	pthread_cond_destroy(&R.queue_cond);
}

static void writer_stop(void)
{
	if (!R.writer_running)
		return;
	pthread_mutex_lock(&R.queue_lock);
	R.stopping = true;
	pthread_cond_signal(&R.queue_cond);
	pthread_mutex_unlock(&R.queue_lock);
	pthread_join(R.writer, NULL);
	R.writer_running = false;
}

static int registrar_load(px_module *self)
{
	pthread_condattr_t attr;
	px_err err = {""};
	int rc;

	/* The module's statics may survive an unload (if the object stays
	 * mapped): start from scratch. */
	memset(&R, 0, sizeof(R));
	R.tail = &R.head;
	atomic_store(&R.inflight, 0);
	atomic_store(&R.closing, false);
	pthread_rwlock_init(&R.table_lock, NULL);
	pthread_mutex_init(&R.queue_lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&R.queue_cond, &attr);
	pthread_condattr_destroy(&attr);
	if (table_grow()) {
		px_log_error("res_registrar: out of memory");
		goto fail;
	}

	R.store = px_store_default();
	if (!R.store) {
		px_log_error("res_registrar: no store is open");
		goto fail;
	}
	if (px_store_migrate(R.store, "res_registrar", registrar_schema,
	                     sizeof(registrar_schema) / sizeof(registrar_schema[0]), &err) ||
	    px_store_prepare(R.store, UPSERT_SQL, &R.upsert, &err) ||
	    px_store_prepare(R.store, DELETE_SQL, &R.del, &err) ||
	    load_bindings((int64_t)time(NULL), &err)) {
		px_log_error("res_registrar: %s", err.msg);
		goto fail;
	}
	rc = px_thread_start(&R.writer, "registrar-writer", writer_main, NULL);
	if (rc) {
		px_log_error("res_registrar: cannot start the writer thread: %s", strerror(rc));
		goto fail;
	}
	R.writer_running = true;
	if (px_registrar_register(self, &registrar, &err)) {
		px_log_error("res_registrar: %s", err.msg);
		goto fail;
	}
	if (px_cli_register(self, registrar_commands, NCOMMANDS, &err)) {
		px_log_error("res_registrar: %s", err.msg);
		px_registrar_unregister(&registrar);
		goto fail;
	}
	return 0;
fail:
	writer_stop();
	state_destroy();
	return -1;
}

static int registrar_unload(px_module *self)
{
	(void)self;
	px_cli_unregister(registrar_commands, NCOMMANDS);
	px_registrar_unregister(&registrar);
	/* Calls already inside update, lookup or the command finish first;
	 * then the writer answers everything queued and ends. */
	atomic_store(&R.closing, true);
	while (atomic_load(&R.inflight) > 0)
		sleep_ms(1);
	writer_stop();
	state_destroy();
	return 0;
}

PX_MODULE(.name = "res_registrar",
          .description = "SIP registrar: location service with bindings kept in the store",
          .kind = PX_MODULE_REGISTRAR, .load = registrar_load, .unload = registrar_unload);
