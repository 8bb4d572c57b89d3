/*
 * Unit tests of the registrar module (modules/res_registrar.c) through the
 * location service of plexus/location.h: the real module, loaded by the
 * real loader from a temporary module directory, on a real sqlite store in a
 * temporary directory. They cover registration, refresh and the Call-ID/
 * CSeq ordering, removal by expires 0 and by "*", the 400 and 423 answers,
 * the capping and defaulting of intervals, max_contacts, q ordering, contact
 * comparison, queries, that every answered binding is in the store, that
 * bindings survive unload and load, the purge of expired bindings, group
 * commit under a burst of 500 updates from 4 threads (its throughput is
 * printed), store failures answered 500 with memory and store still in
 * agreement, the console command, and that an unload answers every update
 * in flight. Every wait is bounded; log lines are captured through a log
 * subscriber.
 */
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/cli.h>
#include <plexus/location.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/store.h>

#include "../../core/cli_internal.h"
#include "../../core/loader.h"
#include "../../core/log_internal.h"

#define WAIT_MS 2000

#define ASSERT_CONTAINS(haystack, needle)                                                          \
	do {                                                                                       \
		const char *h_ = (haystack), *n_ = (needle);                                       \
		bool found_ = h_ && strstr(h_, n_);                                                \
		if (!found_)                                                                       \
			fprintf(stderr, "\n  expected \"%s\" in \"%s\"\n", n_,                     \
				h_ ? h_ : "(null)");                                               \
		CU_ASSERT(found_);                                                                 \
	} while (0)

static char tmpdir[] = "/tmp/plexus-test-registrar-XXXXXX";
static char moddir[PATH_MAX];
static px_store *store;
static bool module_loaded;
static pthread_t main_thread;

/* ---- log capture ---- */

static pthread_mutex_t lines_lock = PTHREAD_MUTEX_INITIALIZER;
static char **lines;
static size_t nlines, lines_cap;

/* Called with the logger's subscriber lock held, from any thread. */
static void capture_deliver(void *ctx, enum px_log_level level, const char *line, size_t len)
{
	pthread_mutex_lock(&lines_lock);
	if (nlines == lines_cap) {
		size_t ncap = lines_cap ? lines_cap * 2 : 256;
		char **n = realloc(lines, ncap * sizeof(*n));
		if (!n) {
			pthread_mutex_unlock(&lines_lock);
			return;
		}
		lines = n;
		lines_cap = ncap;
	}
	lines[nlines] = strndup(line, len);
	if (lines[nlines])
		nlines++;
	pthread_mutex_unlock(&lines_lock);
}

static struct px_log_subscriber capture_sub = {
	.mask = PX_LOG_MASK_ALL,
	.verbose = 3,
	.debug = 1,
	.deliver = capture_deliver,
};

static void clear_lines(void)
{
	pthread_mutex_lock(&lines_lock);
	for (size_t i = 0; i < nlines; i++)
		free(lines[i]);
	nlines = 0;
	pthread_mutex_unlock(&lines_lock);
}

/* Captured lines containing both needles (b may be NULL). */
static size_t count_lines(const char *a, const char *b)
{
	size_t n = 0;

	pthread_mutex_lock(&lines_lock);
	for (size_t i = 0; i < nlines; i++)
		if (strstr(lines[i], a) && (!b || strstr(lines[i], b)))
			n++;
	pthread_mutex_unlock(&lines_lock);
	return n;
}

/* The writer's group commit lines: how many transactions carried requests,
 * and how many requests they carried in all. */
static void count_transactions(size_t *transactions, size_t *requests)
{
	*transactions = *requests = 0;
	pthread_mutex_lock(&lines_lock);
	for (size_t i = 0; i < nlines; i++) {
		const char *p = strstr(lines[i], "in one transaction for ");
		size_t n;
		if (p && sscanf(p, "in one transaction for %zu requests", &n) == 1 && n > 0) {
			(*transactions)++;
			*requests += n;
		}
	}
	pthread_mutex_unlock(&lines_lock);
}

/* ---- time ---- */

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

static void deadline_in(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/* ---- answers ---- */

#define MAX_BINDINGS 8

struct answer {
	int status; /* 0: none came */
	int min_expires;
	char reason[128];
	size_t nbindings;
	struct px_binding b[MAX_BINDINGS];
	bool on_main_thread;
};

/* One update's wait: on the heap, so that a late answer after a timeout
 * writes into memory that is still there (it is leaked then). */
struct waiter {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool done;
	int calls;
	struct answer a;
};

static void on_done(void *ctx, const struct px_register_result *res)
{
	struct waiter *w = ctx;

	pthread_mutex_lock(&w->lock);
	w->calls++;
	w->a.status = res->status;
	w->a.min_expires = res->min_expires;
	snprintf(w->a.reason, sizeof(w->a.reason), "%s", res->reason ? res->reason : "");
	w->a.nbindings = res->nbindings;
	for (size_t i = 0; i < res->nbindings && i < MAX_BINDINGS; i++)
		w->a.b[i] = res->bindings[i];
	w->a.on_main_thread = pthread_equal(pthread_self(), main_thread);
	w->done = true;
	pthread_cond_broadcast(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Submit req and wait for its answer. Returns the status; -1 when update
 * refused the request (err says why), 0 when no answer came in time. */
static int submit_err(const struct px_register_request *req, struct answer *out, px_err *err)
{
	struct waiter *w = calloc(1, sizeof(*w));
	struct timespec deadline;
	int status;

	memset(out, 0, sizeof(*out));
	if (!w)
		return 0;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	if (px_location_update(req, on_done, w, err) != 0) {
		pthread_mutex_destroy(&w->lock);
		pthread_cond_destroy(&w->cond);
		free(w);
		return -1;
	}
	deadline_in(&deadline, WAIT_MS);
	pthread_mutex_lock(&w->lock);
	while (!w->done)
		if (pthread_cond_timedwait(&w->cond, &w->lock, &deadline) != 0)
			break;
	if (!w->done) {
		pthread_mutex_unlock(&w->lock);
		fprintf(stderr, "\n  no answer for %s within %d ms\n", req->aor, WAIT_MS);
		return 0; /* w leaks: the answer may still come */
	}
	*out = w->a;
	status = w->a.status;
	CU_ASSERT_EQUAL(w->calls, 1);
	pthread_mutex_unlock(&w->lock);
	CU_ASSERT_FALSE(out->on_main_thread);
	pthread_mutex_destroy(&w->lock);
	pthread_cond_destroy(&w->cond);
	free(w);
	return status;
}

static int submit(const struct px_register_request *req, struct answer *out)
{
	px_err err = {""};
	int rc = submit_err(req, out, &err);

	if (rc < 0)
		fprintf(stderr, "\n  update refused: %s\n", err.msg);
	return rc;
}

/* A REGISTER of the test phone with typical endpoint settings. */
static struct px_register_request request(const char *aor, const char *call_id, uint32_t cseq)
{
	return (struct px_register_request){
		.aor = aor,
		.expires = -1,
		.call_id = call_id,
		.cseq = cseq,
		.user_agent = "TestPhone/1.0",
		.received = "udp:127.0.0.1:5060",
		.max_contacts = 10,
		.min_expires = 60,
		.max_expires = 7200,
		.default_expires = 3600,
	};
}

/* Register one contact; returns the status. */
static int register_one(const char *aor, const char *uri, int expires, int q, const char *call_id,
			uint32_t cseq, struct answer *out)
{
	struct px_register_contact c = {uri, expires, q};
	struct px_register_request req = request(aor, call_id, cseq);

	req.contacts = &c;
	req.ncontacts = 1;
	return submit(&req, out);
}

/* ---- the store, read behind the module's back ---- */

static int store_count(const char *aor)
{
	px_store_stmt *s;
	px_err err = {""};
	int n = -1;

	if (px_store_prepare(store, "SELECT count(*) FROM px_location WHERE aor = ?1", &s, &err)) {
		fprintf(stderr, "\n  %s\n", err.msg);
		return -1;
	}
	px_store_bind_text(s, 1, aor);
	if (px_store_step(s, &err) == PX_STORE_ROW)
		n = (int)px_store_column_int64(s, 0);
	px_store_finalize(s);
	return n;
}

/* The stored row of (aor, contact) into *out; false when there is none. */
static bool store_row(const char *aor, const char *contact, struct px_binding *out)
{
	px_store_stmt *s;
	px_err err = {""};
	bool found = false;

	if (px_store_prepare(store,
			     "SELECT received, user_agent, call_id, cseq, q, expires_at, "
			     "registered_at FROM px_location WHERE aor = ?1 AND contact = ?2",
			     &s, &err)) {
		fprintf(stderr, "\n  %s\n", err.msg);
		return false;
	}
	px_store_bind_text(s, 1, aor);
	px_store_bind_text(s, 2, contact);
	if (px_store_step(s, &err) == PX_STORE_ROW) {
		memset(out, 0, sizeof(*out));
		snprintf(out->aor, sizeof(out->aor), "%s", aor);
		snprintf(out->contact, sizeof(out->contact), "%s", contact);
		snprintf(out->received, sizeof(out->received), "%s", px_store_column_text(s, 0));
		snprintf(out->user_agent, sizeof(out->user_agent), "%s",
			 px_store_column_text(s, 1));
		snprintf(out->call_id, sizeof(out->call_id), "%s", px_store_column_text(s, 2));
		out->cseq = (uint32_t)px_store_column_int64(s, 3);
		out->q = (int)px_store_column_int64(s, 4);
		out->expires_at = px_store_column_int64(s, 5);
		out->registered_at = px_store_column_int64(s, 6);
		found = true;
	}
	px_store_finalize(s);
	return found;
}

/* Memory (lookup) and store hold the same bindings for aor. */
static bool lookup_matches_store(const char *aor)
{
	struct px_binding mem[MAX_BINDINGS], row;
	size_t n = px_location_lookup(aor, mem, MAX_BINDINGS);

	if ((int)n != store_count(aor))
		return false;
	for (size_t i = 0; i < n && i < MAX_BINDINGS; i++) {
		if (!store_row(aor, mem[i].contact, &row) || row.expires_at != mem[i].expires_at ||
		    row.cseq != mem[i].cseq || strcmp(row.call_id, mem[i].call_id))
			return false;
	}
	return true;
}

static bool near(int64_t value, int64_t expected)
{
	return value >= expected - 2 && value <= expected + 2;
}

/* ---- suite set-up ---- */

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

/* The module's shared object: $PX_REGISTRAR_SO, or the build tree's
 * (PX_TEST_MODULEDIR is <builddir>/tests/modules/.libs, which need not
 * exist when only this test is built). */
static int module_so(char *buf, size_t size)
{
	const char *env = getenv("PX_REGISTRAR_SO");

	if (env && *env)
		return snprintf(buf, size, "%s", env) < (int)size ? 0 : -1;
#ifdef PX_TEST_MODULEDIR
	{
		static const char suffix[] = "/tests/modules/.libs";
		const char *dir = PX_TEST_MODULEDIR;
		size_t len = strlen(dir), slen = sizeof(suffix) - 1;

		if (len > slen && !strcmp(dir + len - slen, suffix) &&
		    snprintf(buf, size, "%.*s/modules/.libs/res_registrar.so", (int)(len - slen),
			     dir) < (int)size)
			return 0;
	}
#endif
	return -1;
}

static int load_module(void)
{
	px_err err = {""};

	if (px_loader_load("res_registrar", &err) != 0) {
		fprintf(stderr, "\n  loading res_registrar: %s\n", err.msg);
		return -1;
	}
	module_loaded = true;
	return 0;
}

static int suite_cleanup(void)
{
	px_loader_shutdown();
	module_loaded = false;
	px_log_unsubscribe(&capture_sub);
	clear_lines();
	free(lines);
	lines = NULL;
	lines_cap = 0;
	px_store_set_default(NULL);
	px_store_close(store);
	store = NULL;
	px_cli_registry_shutdown();
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int suite_init(void)
{
	char path[PATH_MAX], so[PATH_MAX];
	px_err err = {""};

	main_thread = pthread_self();
	if (module_so(so, sizeof(so)) != 0 || access(so, R_OK) != 0) {
		fprintf(stderr, "test_registrar: res_registrar.so not found (build it first)\n");
		return -1;
	}
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(moddir, sizeof(moddir), "%s/modules", tmpdir);
	if (mkdir(moddir, 0700) != 0 ||
	    snprintf(path, sizeof(path), "%s/res_registrar.so", moddir) >= (int)sizeof(path) ||
	    symlink(so, path) != 0)
		goto fail;
	snprintf(path, sizeof(path), "%s/plexus.db", tmpdir);
	if (px_store_open(path, &store, &err) != 0) {
		fprintf(stderr, "test_registrar: %s\n", err.msg);
		goto fail;
	}
	px_store_set_default(store);
	px_log_subscribe(&capture_sub);
	if (px_loader_init(moddir, &err) != 0) {
		fprintf(stderr, "test_registrar: %s\n", err.msg);
		goto fail;
	}
	if (load_module() == 0)
		return 0;
fail:
	/* CUnit does not call the clean-up of a suite whose set-up failed. */
	suite_cleanup();
	return -1;
}

static void test_setup(void)
{
	clear_lines();
}

/* ---- tests ---- */

static void test_register_and_lookup(void)
{
	struct answer a;
	struct px_binding b[MAX_BINDINGS], row;
	int64_t now = (int64_t)time(NULL);

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1001", "sip:1001@192.0.2.10:5062", 3600, -1, "call-a", 1, &a),
			200);
	ASSERT_CONTAINS(a.reason, "OK");
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT_STRING_EQUAL(a.b[0].aor, "1001");
	CU_ASSERT_STRING_EQUAL(a.b[0].contact, "sip:1001@192.0.2.10:5062");
	CU_ASSERT_STRING_EQUAL(a.b[0].received, "udp:127.0.0.1:5060");
	CU_ASSERT_STRING_EQUAL(a.b[0].user_agent, "TestPhone/1.0");
	CU_ASSERT_STRING_EQUAL(a.b[0].call_id, "call-a");
	CU_ASSERT_EQUAL(a.b[0].cseq, 1);
	CU_ASSERT_EQUAL(a.b[0].q, -1);
	CU_ASSERT(near(a.b[0].expires_at, now + 3600));
	CU_ASSERT(near(a.b[0].registered_at, now));

	/* Visible to lookup once answered, from any thread. */
	CU_ASSERT_EQUAL(px_location_lookup("1001", b, MAX_BINDINGS), 1);
	CU_ASSERT_STRING_EQUAL(b[0].contact, "sip:1001@192.0.2.10:5062");
	CU_ASSERT_EQUAL(b[0].expires_at, a.b[0].expires_at);
	/* Counting only, and an unknown AOR. */
	CU_ASSERT_EQUAL(px_location_lookup("1001", NULL, 0), 1);
	CU_ASSERT_EQUAL(px_location_lookup("nobody", b, MAX_BINDINGS), 0);

	/* On disk before the answer. */
	CU_ASSERT_FATAL(store_row("1001", "sip:1001@192.0.2.10:5062", &row));
	CU_ASSERT_EQUAL(row.expires_at, a.b[0].expires_at);
	CU_ASSERT_EQUAL(row.cseq, 1);
	CU_ASSERT_STRING_EQUAL(row.call_id, "call-a");
	CU_ASSERT_STRING_EQUAL(row.user_agent, "TestPhone/1.0");
	CU_ASSERT_STRING_EQUAL(row.received, "udp:127.0.0.1:5060");
	CU_ASSERT_EQUAL(count_lines("Registered 1001 contact sip:1001@192.0.2.10:5062", NULL), 1);
}

static void test_refresh(void)
{
	struct answer a;
	struct px_register_contact c = {"sip:1002@192.0.2.11", -1, -1};
	struct px_register_request req = request("1002", "call-r", 10);
	struct px_binding row;
	int64_t now = (int64_t)time(NULL);

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1002", "sip:1002@192.0.2.11", 600, -1, "call-r", 10, &a),
			200);
	CU_ASSERT(near(a.b[0].expires_at, now + 600));

	/* Higher CSeq, Expires header this time, from elsewhere. */
	req.contacts = &c;
	req.ncontacts = 1;
	req.cseq = 11;
	req.expires = 1800;
	req.received = "tcp:192.0.2.99:40000";
	req.user_agent = "TestPhone/2.0";
	CU_ASSERT_EQUAL(submit(&req, &a), 200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT(near(a.b[0].expires_at, now + 1800));
	CU_ASSERT_EQUAL(a.b[0].cseq, 11);
	CU_ASSERT_STRING_EQUAL(a.b[0].received, "tcp:192.0.2.99:40000");
	CU_ASSERT_STRING_EQUAL(a.b[0].user_agent, "TestPhone/2.0");
	CU_ASSERT_FATAL(store_row("1002", "sip:1002@192.0.2.11", &row));
	CU_ASSERT_EQUAL(row.expires_at, a.b[0].expires_at);
	CU_ASSERT_EQUAL(row.cseq, 11);
	CU_ASSERT_STRING_EQUAL(row.received, "tcp:192.0.2.99:40000");
	CU_ASSERT_EQUAL(store_count("1002"), 1);
}

static void test_stale_cseq_ignored(void)
{
	struct answer a;
	struct px_binding row;
	int64_t first;

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1003", "sip:1003@192.0.2.12", 600, -1, "call-s", 5, &a), 200);
	first = a.b[0].expires_at;

	/* Same Call-ID, same CSeq: a retransmission; answered, nothing changes. */
	CU_ASSERT_EQUAL(register_one("1003", "sip:1003@192.0.2.12", 3000, -1, "call-s", 5, &a),
			200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT_EQUAL(a.b[0].expires_at, first);
	CU_ASSERT_EQUAL(a.b[0].cseq, 5);
	/* Lower CSeq: out of order; nor does an expires 0 remove it. */
	CU_ASSERT_EQUAL(register_one("1003", "sip:1003@192.0.2.12", 3000, -1, "call-s", 4, &a),
			200);
	CU_ASSERT_EQUAL(a.b[0].expires_at, first);
	CU_ASSERT_EQUAL(register_one("1003", "sip:1003@192.0.2.12", 0, -1, "call-s", 3, &a), 200);
	CU_ASSERT_EQUAL(a.nbindings, 1);
	CU_ASSERT_FATAL(store_row("1003", "sip:1003@192.0.2.12", &row));
	CU_ASSERT_EQUAL(row.expires_at, first);
	CU_ASSERT_EQUAL(row.cseq, 5);
	CU_ASSERT(count_lines("not above 5", "ignored") >= 2);

	/* Another Call-ID (the phone rebooted) may start from any CSeq. */
	CU_ASSERT_EQUAL(register_one("1003", "sip:1003@192.0.2.12", 3000, -1, "call-t", 1, &a),
			200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT(a.b[0].expires_at > first);
	CU_ASSERT_STRING_EQUAL(a.b[0].call_id, "call-t");
	CU_ASSERT_EQUAL(a.b[0].cseq, 1);
	CU_ASSERT(lookup_matches_store("1003"));
}

static void test_expires_zero_removes(void)
{
	struct answer a;
	struct px_binding row;

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1004", "sip:1004@192.0.2.13", 600, -1, "call-z", 1, &a), 200);
	CU_ASSERT_EQUAL(register_one("1004", "sip:1004@192.0.2.14", 600, -1, "call-z", 2, &a), 200);
	CU_ASSERT_EQUAL(a.nbindings, 2);
	CU_ASSERT_EQUAL(register_one("1004", "sip:1004@192.0.2.13", 0, -1, "call-z", 3, &a), 200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT_STRING_EQUAL(a.b[0].contact, "sip:1004@192.0.2.14");
	CU_ASSERT_EQUAL(px_location_lookup("1004", NULL, 0), 1);
	CU_ASSERT_FALSE(store_row("1004", "sip:1004@192.0.2.13", &row));
	CU_ASSERT_EQUAL(store_count("1004"), 1);
	CU_ASSERT_EQUAL(count_lines("Unregistered 1004 contact sip:1004@192.0.2.13", NULL), 1);
	/* Removing a contact that is not there is fine too. */
	CU_ASSERT_EQUAL(register_one("1004", "sip:1004@192.0.2.99", 0, -1, "call-z", 4, &a), 200);
	CU_ASSERT_EQUAL(a.nbindings, 1);
	CU_ASSERT(lookup_matches_store("1004"));
}

static void test_wildcard_removes_all(void)
{
	struct answer a;
	struct px_register_request req = request("1005", "call-w", 10);

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1005", "sip:1005@192.0.2.15", 600, -1, "call-w", 1, &a), 200);
	CU_ASSERT_EQUAL(register_one("1005", "sip:1005@192.0.2.16", 600, -1, "other", 1, &a), 200);
	CU_ASSERT_EQUAL(a.nbindings, 2);
	CU_ASSERT_EQUAL(store_count("1005"), 2);

	req.wildcard = true;
	req.expires = 0;
	CU_ASSERT_EQUAL(submit(&req, &a), 200);
	CU_ASSERT_EQUAL(a.nbindings, 0);
	CU_ASSERT_EQUAL(px_location_lookup("1005", NULL, 0), 0);
	CU_ASSERT_EQUAL(store_count("1005"), 0);
}

static void test_wildcard_bad(void)
{
	struct answer a;
	struct px_register_contact c = {"sip:1006@192.0.2.18", -1, -1};
	struct px_register_request req = request("1006", "call-b", 10);

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1006", "sip:1006@192.0.2.17", 600, -1, "call-b", 1, &a), 200);

	req.wildcard = true;
	req.expires = 3600;
	CU_ASSERT_EQUAL(submit(&req, &a), 400);
	ASSERT_CONTAINS(a.reason, "Expires: 0");
	CU_ASSERT_EQUAL(a.nbindings, 0);
	/* Without an Expires header at all, also refused. */
	req.expires = -1;
	CU_ASSERT_EQUAL(submit(&req, &a), 400);
	/* "*" together with another contact. */
	req.expires = 0;
	req.contacts = &c;
	req.ncontacts = 1;
	CU_ASSERT_EQUAL(submit(&req, &a), 400);
	ASSERT_CONTAINS(a.reason, "only contact");

	CU_ASSERT_EQUAL(px_location_lookup("1006", NULL, 0), 1);
	CU_ASSERT_EQUAL(store_count("1006"), 1);
}

static void test_interval_too_brief(void)
{
	struct answer a;
	struct px_register_contact c[2] = {{"sip:1007@192.0.2.20", 3600, -1},
					   {"sip:1007@192.0.2.21", 30, -1}};
	struct px_register_request req = request("1007", "call-m", 2);

	CU_ASSERT_FATAL(module_loaded);
	/* A new AOR: nothing is stored. */
	CU_ASSERT_EQUAL(register_one("1007-new", "sip:x@192.0.2.19", 59, -1, "call-m", 1, &a), 423);
	CU_ASSERT_EQUAL(a.min_expires, 60);
	CU_ASSERT_EQUAL(a.nbindings, 0);
	CU_ASSERT_EQUAL(px_location_lookup("1007-new", NULL, 0), 0);
	CU_ASSERT_EQUAL(store_count("1007-new"), 0);

	/* An existing AOR: one brief contact refuses the whole request. */
	CU_ASSERT_EQUAL(register_one("1007", "sip:1007@192.0.2.20", 600, -1, "call-m", 1, &a), 200);
	int64_t first = a.b[0].expires_at;
	req.contacts = c;
	req.ncontacts = 2;
	CU_ASSERT_EQUAL(submit(&req, &a), 423);
	CU_ASSERT_EQUAL(a.min_expires, 60);
	CU_ASSERT_EQUAL(px_location_lookup("1007", NULL, 0), 1);
	CU_ASSERT_EQUAL(store_count("1007"), 1);
	struct px_binding row;
	CU_ASSERT(store_row("1007", "sip:1007@192.0.2.20", &row) && row.expires_at == first);
	/* Exactly min_expires is fine. */
	CU_ASSERT_EQUAL(register_one("1007", "sip:1007@192.0.2.21", 60, -1, "call-m", 3, &a), 200);
	CU_ASSERT_EQUAL(a.nbindings, 2);
}

static void test_capped_and_default(void)
{
	struct answer a;
	int64_t now = (int64_t)time(NULL);

	CU_ASSERT_FATAL(module_loaded);
	/* Above max_expires: capped. */
	CU_ASSERT_EQUAL(register_one("1008", "sip:1008@192.0.2.22", 100000, -1, "call-c", 1, &a),
			200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT(near(a.b[0].expires_at, now + 7200));
	CU_ASSERT(lookup_matches_store("1008"));
	/* Neither the contact nor the request says: default_expires. */
	CU_ASSERT_EQUAL(register_one("1009", "sip:1009@192.0.2.23", -1, -1, "call-d", 1, &a), 200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT(near(a.b[0].expires_at, now + 3600));
	/* The contact's parameter wins over the Expires header. */
	struct px_register_contact c = {"sip:1009@192.0.2.24", 900, -1};
	struct px_register_request req = request("1009", "call-d", 2);
	req.contacts = &c;
	req.ncontacts = 1;
	req.expires = 120;
	CU_ASSERT_EQUAL(submit(&req, &a), 200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 2);
	struct px_binding row;
	CU_ASSERT(store_row("1009", "sip:1009@192.0.2.24", &row) &&
		  near(row.expires_at, now + 900));
}

static void test_max_contacts(void)
{
	struct answer a;
	struct px_register_request req;
	struct px_register_contact c;
	struct px_binding row;
	const char *uris[] = {"sip:1010@192.0.2.31", "sip:1010@192.0.2.32", "sip:1010@192.0.2.33"};

	CU_ASSERT_FATAL(module_loaded);
	/* c1, c2, then c1 again: c2 is now the oldest registration. */
	for (int i = 0; i < 4; i++) {
		c = (struct px_register_contact){uris[i == 2 ? 0 : i == 3 ? 2 : i], 600, -1};
		req = request("1010", "call-x", (uint32_t)(i + 1));
		req.contacts = &c;
		req.ncontacts = 1;
		req.max_contacts = 2;
		CU_ASSERT_EQUAL(submit(&req, &a), 200);
	}
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 2);
	CU_ASSERT_STRING_EQUAL(a.b[0].contact, uris[2]);
	CU_ASSERT_STRING_EQUAL(a.b[1].contact, uris[0]);
	CU_ASSERT_EQUAL(px_location_lookup("1010", NULL, 0), 2);
	CU_ASSERT_FALSE(store_row("1010", uris[1], &row));
	CU_ASSERT_EQUAL(store_count("1010"), 2);
	CU_ASSERT(lookup_matches_store("1010"));
	CU_ASSERT_EQUAL(count_lines("Unregistered 1010 contact sip:1010@192.0.2.32", "replaced"),
			1);
}

static void test_q_order(void)
{
	struct answer a;
	struct px_binding b[MAX_BINDINGS];
	/* Registered in this order; absent q ranks as 1.0, and among equal q
	 * the most recent registration comes first. */
	const struct {
		const char *uri;
		int q;
	} reg[] = {{"sip:1011@192.0.2.41", 500},
		   {"sip:1011@192.0.2.42", 1000},
		   {"sip:1011@192.0.2.43", -1},
		   {"sip:1011@192.0.2.44", 100}};
	const char *expected[] = {"sip:1011@192.0.2.43", "sip:1011@192.0.2.42",
				  "sip:1011@192.0.2.41", "sip:1011@192.0.2.44"};

	CU_ASSERT_FATAL(module_loaded);
	for (int i = 0; i < 4; i++)
		CU_ASSERT_EQUAL(register_one("1011", reg[i].uri, 600, reg[i].q, "call-q",
					     (uint32_t)(i + 1), &a),
				200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 4);
	CU_ASSERT_EQUAL_FATAL(px_location_lookup("1011", b, MAX_BINDINGS), 4);
	for (int i = 0; i < 4; i++) {
		CU_ASSERT_STRING_EQUAL(b[i].contact, expected[i]);
		CU_ASSERT_STRING_EQUAL(a.b[i].contact, expected[i]);
	}
	/* Fewer than there are: the best ones, and the total. */
	CU_ASSERT_EQUAL(px_location_lookup("1011", b, 2), 4);
	CU_ASSERT_STRING_EQUAL(b[0].contact, expected[0]);
	CU_ASSERT_STRING_EQUAL(b[1].contact, expected[1]);
}

static void test_contact_comparison(void)
{
	struct answer a;
	struct px_binding row;

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1012", " <SIP:1012@Phone.EXAMPLE:5060;transport=udp> ", 600,
				     -1, "call-n", 1, &a),
			200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	/* Stored without the brackets and blanks. */
	CU_ASSERT_STRING_EQUAL(a.b[0].contact, "SIP:1012@Phone.EXAMPLE:5060;transport=udp");
	/* Scheme and host compare without case: a refresh, not a second binding. */
	CU_ASSERT_EQUAL(register_one("1012", "sip:1012@phone.example:5060;transport=udp", 600, -1,
				     "call-n", 2, &a),
			200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT_EQUAL(a.b[0].cseq, 2);
	/* The row follows the phone's latest spelling. */
	CU_ASSERT_EQUAL(store_count("1012"), 1);
	CU_ASSERT(store_row("1012", "sip:1012@phone.example:5060;transport=udp", &row));
	/* The user part does not fold. */
	CU_ASSERT_EQUAL(register_one("1012", "sip:USER@phone.example:5060;transport=udp", 600, -1,
				     "call-n", 3, &a),
			200);
	CU_ASSERT_EQUAL(a.nbindings, 2);
	CU_ASSERT(lookup_matches_store("1012"));
}

static void test_query(void)
{
	struct answer a;
	struct px_register_request req = request("1013", "call-y", 9);

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(submit(&req, &a), 200); /* nothing registered yet */
	CU_ASSERT_EQUAL(a.nbindings, 0);
	CU_ASSERT_EQUAL(register_one("1013", "sip:1013@192.0.2.50", 600, -1, "call-y", 1, &a), 200);
	int64_t first = a.b[0].expires_at;
	req.cseq = 1; /* a query changes nothing, whatever its CSeq */
	CU_ASSERT_EQUAL(submit(&req, &a), 200);
	CU_ASSERT_EQUAL_FATAL(a.nbindings, 1);
	CU_ASSERT_STRING_EQUAL(a.b[0].contact, "sip:1013@192.0.2.50");
	CU_ASSERT_EQUAL(a.b[0].expires_at, first);
	CU_ASSERT_EQUAL(a.b[0].cseq, 1);
}

static void test_bad_requests(void)
{
	struct answer a;
	px_err err = {""};
	char longuri[PX_CONTACT_MAX + 16];
	struct px_register_request req = request(NULL, "call-e", 1);

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(submit_err(&req, &a, &err), -1);
	ASSERT_CONTAINS(err.msg, "address of record");
	req.aor = "1014";
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_location_update(&req, NULL, NULL, &err), -1);
	CU_ASSERT(err.msg[0] != '\0');

	memset(longuri, 'a', sizeof(longuri) - 1);
	memcpy(longuri, "sip:", 4);
	longuri[sizeof(longuri) - 1] = '\0';
	CU_ASSERT_EQUAL(register_one("1014", longuri, 600, -1, "call-e", 1, &a), 400);
	ASSERT_CONTAINS(a.reason, "too long");
	CU_ASSERT_EQUAL(register_one("1014", "", 600, -1, "call-e", 2, &a), 400);
	ASSERT_CONTAINS(a.reason, "Empty");
	CU_ASSERT_EQUAL(register_one("1014", " <> ", 600, -1, "call-e", 2, &a), 400);
	ASSERT_CONTAINS(a.reason, "Empty");
	CU_ASSERT_EQUAL(register_one("1014", "sip:1014@192.0.2.60", 600, 1001, "call-e", 3, &a),
			400);
	CU_ASSERT_EQUAL(px_location_lookup("1014", NULL, 0), 0);
	CU_ASSERT_EQUAL(store_count("1014"), 0);
}

static void test_persistence(void)
{
	struct answer a;
	struct px_binding before[MAX_BINDINGS], after[MAX_BINDINGS];
	px_err err = {""};
	size_t n;

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1015", "sip:1015@192.0.2.70", 600, 700, "call-p", 1, &a),
			200);
	CU_ASSERT_EQUAL(register_one("1015", "sip:1015@192.0.2.71", 900, -1, "call-p", 2, &a), 200);
	n = px_location_lookup("1015", before, MAX_BINDINGS);
	CU_ASSERT_EQUAL_FATAL(n, 2);

	CU_ASSERT_EQUAL_FATAL(px_loader_unload("res_registrar", false, &err), 0);
	module_loaded = false;
	CU_ASSERT_EQUAL(px_location_lookup("1015", after, MAX_BINDINGS), 0);
	CU_ASSERT_EQUAL(px_location_update(&(struct px_register_request){.aor = "1015"}, on_done,
					   NULL, &err),
			-1);
	{
		struct px_binding *none = NULL;
		size_t count = 1;
		err.msg[0] = '\0';
		CU_ASSERT_EQUAL(px_location_list(NULL, &none, &count, &err), -1);
		ASSERT_CONTAINS(err.msg, "no registrar");
		CU_ASSERT_EQUAL(count, 0);
		CU_ASSERT_PTR_NULL(none);
	}
	CU_ASSERT_EQUAL(store_count("1015"), 2);
	CU_ASSERT_EQUAL_FATAL(load_module(), 0);

	CU_ASSERT_EQUAL_FATAL(px_location_lookup("1015", after, MAX_BINDINGS), 2);
	for (size_t i = 0; i < n; i++) {
		CU_ASSERT_STRING_EQUAL(after[i].aor, before[i].aor);
		CU_ASSERT_STRING_EQUAL(after[i].contact, before[i].contact);
		CU_ASSERT_STRING_EQUAL(after[i].received, before[i].received);
		CU_ASSERT_STRING_EQUAL(after[i].user_agent, before[i].user_agent);
		CU_ASSERT_STRING_EQUAL(after[i].call_id, before[i].call_id);
		CU_ASSERT_EQUAL(after[i].cseq, before[i].cseq);
		CU_ASSERT_EQUAL(after[i].q, before[i].q);
		CU_ASSERT_EQUAL(after[i].expires_at, before[i].expires_at);
		CU_ASSERT_EQUAL(after[i].registered_at, before[i].registered_at);
	}
	/* Bindings of the earlier tests are back as well. */
	CU_ASSERT_EQUAL(px_location_lookup("1001", NULL, 0), 1);
	CU_ASSERT_EQUAL(px_location_lookup("1011", NULL, 0), 4);
	/* And the CSeq ordering still holds after the restart. */
	CU_ASSERT_EQUAL(register_one("1015", "sip:1015@192.0.2.70", 3000, 700, "call-p", 1, &a),
			200);
	CU_ASSERT_EQUAL(px_location_lookup("1015", after, MAX_BINDINGS), 2);
	CU_ASSERT(after[0].expires_at == before[0].expires_at ||
		  after[1].expires_at == before[0].expires_at);
	CU_ASSERT(lookup_matches_store("1015"));
}

static void test_expired_purged(void)
{
	struct answer a;
	struct px_register_contact c = {"sip:1016@192.0.2.80", 1, -1};
	struct px_register_request req = request("1016", "call-e", 1);
	double start = now_seconds(), gone_after = -1;

	CU_ASSERT_FATAL(module_loaded);
	req.contacts = &c;
	req.ncontacts = 1;
	req.min_expires = 1;
	CU_ASSERT_EQUAL_FATAL(submit(&req, &a), 200);
	CU_ASSERT_EQUAL(px_location_lookup("1016", NULL, 0), 1);
	CU_ASSERT_EQUAL(store_count("1016"), 1);
	while (now_seconds() - start < 4.0) {
		if (px_location_lookup("1016", NULL, 0) == 0 && store_count("1016") == 0) {
			gone_after = now_seconds() - start;
			break;
		}
		sleep_ms(50);
	}
	CU_ASSERT(gone_after >= 0 && gone_after <= 3.1);
	if (gone_after < 0 || gone_after > 3.1)
		fprintf(stderr, "\n  expired binding still there after %.2f s\n",
			now_seconds() - start);
	/* Logged once the purge has committed: wait a moment for the line. */
	for (int i = 0;
	     i < 40 && !count_lines("Unregistered 1016 contact sip:1016@192.0.2.80", "(expired)");
	     i++)
		sleep_ms(25);
	CU_ASSERT_EQUAL(count_lines("Unregistered 1016 contact sip:1016@192.0.2.80", "(expired)"),
			1);
}

/* ---- group commit ---- */

#define BURST_THREADS 4
#ifndef BURST_PER_THREAD
#define BURST_PER_THREAD 125
#endif
#define BURST_TOTAL (BURST_THREADS * BURST_PER_THREAD)

static pthread_mutex_t burst_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t burst_cond = PTHREAD_COND_INITIALIZER;
static int burst_answered, burst_ok, burst_refused;
static double burst_last;

static void burst_done(void *ctx, const struct px_register_result *res)
{
	pthread_mutex_lock(&burst_lock);
	burst_answered++;
	if (res->status == 200 && res->nbindings == 1)
		burst_ok++;
	burst_last = now_seconds();
	pthread_cond_broadcast(&burst_cond);
	pthread_mutex_unlock(&burst_lock);
}

static void *burst_thread(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int i = 0; i < BURST_PER_THREAD; i++) {
		char aor[32], uri[64];
		int k = t * BURST_PER_THREAD + i;
		struct px_register_contact c = {uri, 600, -1};
		struct px_register_request req = request(aor, "burst-call", 1);
		px_err err = {""};

		snprintf(aor, sizeof(aor), "burst-%03d", k);
		snprintf(uri, sizeof(uri), "sip:%s@10.1.%d.%d:5060", aor, k / 250, k % 250);
		req.contacts = &c;
		req.ncontacts = 1;
		if (px_location_update(&req, burst_done, NULL, &err) != 0) {
			pthread_mutex_lock(&burst_lock);
			burst_refused++;
			pthread_mutex_unlock(&burst_lock);
		}
	}
	return NULL;
}

static void test_group_commit(void)
{
	pthread_t threads[BURST_THREADS];
	struct timespec deadline;
	size_t transactions, requests;
	double start, elapsed;
	int rows = 0;

	CU_ASSERT_FATAL(module_loaded);
	burst_answered = burst_ok = burst_refused = 0;
	start = now_seconds();
	for (int t = 0; t < BURST_THREADS; t++)
		CU_ASSERT_FATAL(
			pthread_create(&threads[t], NULL, burst_thread, (void *)(intptr_t)t) == 0);
	for (int t = 0; t < BURST_THREADS; t++)
		pthread_join(threads[t], NULL);
	deadline_in(&deadline, WAIT_MS);
	pthread_mutex_lock(&burst_lock);
	while (burst_answered + burst_refused < BURST_TOTAL)
		if (pthread_cond_timedwait(&burst_cond, &burst_lock, &deadline) != 0)
			break;
	elapsed = burst_last - start;
	CU_ASSERT_EQUAL(burst_refused, 0);
	CU_ASSERT_EQUAL(burst_answered, BURST_TOTAL);
	CU_ASSERT_EQUAL(burst_ok, BURST_TOTAL);
	pthread_mutex_unlock(&burst_lock);

	for (int k = 0; k < BURST_TOTAL; k++) {
		char aor[32];
		snprintf(aor, sizeof(aor), "burst-%03d", k);
		rows += store_count(aor);
	}
	CU_ASSERT_EQUAL(rows, BURST_TOTAL);

	count_transactions(&transactions, &requests);
	CU_ASSERT_EQUAL(requests, BURST_TOTAL);
	CU_ASSERT(transactions >= 1 && transactions <= BURST_TOTAL / 10);
	printf("\n    group commit: %d updates from %d threads answered in %.1f ms "
	       "(%.0f updates/s), %zu transactions ",
	       BURST_TOTAL, BURST_THREADS, elapsed * 1000.0,
	       elapsed > 0 ? BURST_TOTAL / elapsed : 0, transactions);
}

/* ---- store failures ---- */

static void test_store_failure(void)
{
	struct answer a;
	struct px_binding b[MAX_BINDINGS];
	px_err err = {""};

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(register_one("1017", "sip:1017@192.0.2.90", 600, -1, "call-f", 1, &a), 200);

	/* Writes for this AOR fail inside the transaction. */
	CU_ASSERT_EQUAL_FATAL(px_store_exec(store,
					    "CREATE TRIGGER px_test_fail BEFORE INSERT ON "
					    "px_location WHEN NEW.aor = '1017' BEGIN "
					    "SELECT RAISE(ABORT, 'injected failure'); END",
					    &err),
			      0);
	CU_ASSERT_EQUAL(register_one("1017", "sip:1017@192.0.2.91", 600, -1, "call-f", 2, &a), 500);
	ASSERT_CONTAINS(a.reason, "store error");
	CU_ASSERT_EQUAL(a.nbindings, 0);
	CU_ASSERT(count_lines("store error", "injected failure") >= 1);
	/* Memory kept what the store has: the first contact only. */
	CU_ASSERT_EQUAL(px_location_lookup("1017", b, MAX_BINDINGS), 1);
	CU_ASSERT_STRING_EQUAL(b[0].contact, "sip:1017@192.0.2.90");
	CU_ASSERT_EQUAL(b[0].cseq, 1);
	CU_ASSERT(lookup_matches_store("1017"));
	/* A refresh of the stored contact fails as well (upsert is an insert). */
	CU_ASSERT_EQUAL(register_one("1017", "sip:1017@192.0.2.90", 3000, -1, "call-f", 3, &a),
			500);
	CU_ASSERT(lookup_matches_store("1017"));

	CU_ASSERT_EQUAL_FATAL(px_store_exec(store, "DROP TRIGGER px_test_fail", &err), 0);
	/* The failed CSeq was never recorded: the same request now works. */
	CU_ASSERT_EQUAL(register_one("1017", "sip:1017@192.0.2.91", 600, -1, "call-f", 2, &a), 200);
	CU_ASSERT_EQUAL(a.nbindings, 2);
	CU_ASSERT(lookup_matches_store("1017"));

	/* The table itself disappears behind the module's back. */
	CU_ASSERT_EQUAL_FATAL(
		px_store_exec(store, "ALTER TABLE px_location RENAME TO px_location_away", &err),
		0);
	CU_ASSERT_EQUAL(register_one("1018", "sip:1018@192.0.2.92", 600, -1, "call-g", 1, &a), 500);
	CU_ASSERT_EQUAL(register_one("1017", "sip:1017@192.0.2.90", 0, -1, "call-f", 9, &a), 500);
	CU_ASSERT_EQUAL(px_location_lookup("1018", NULL, 0), 0);
	CU_ASSERT_EQUAL(px_location_lookup("1017", NULL, 0), 2);
	CU_ASSERT_EQUAL_FATAL(
		px_store_exec(store, "ALTER TABLE px_location_away RENAME TO px_location", &err),
		0);
	CU_ASSERT(lookup_matches_store("1017"));
	CU_ASSERT(lookup_matches_store("1018"));
	CU_ASSERT_EQUAL(register_one("1018", "sip:1018@192.0.2.92", 600, -1, "call-g", 1, &a), 200);
	CU_ASSERT(lookup_matches_store("1018"));
}

/* ---- console ---- */

static void test_console(void)
{
	struct answer a;
	char *out = NULL, *comp;

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(
		register_one("show-1", "sip:show-1@192.0.2.100:5070", 600, -1, "call-c", 1, &a),
		200);
	CU_ASSERT_EQUAL(px_cli_run_capture("sip show registrations", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "AOR");
	ASSERT_CONTAINS(out, "show-1");
	ASSERT_CONTAINS(out, "sip:show-1@192.0.2.100:5070");
	ASSERT_CONTAINS(out, "udp:127.0.0.1:5060");
	ASSERT_CONTAINS(out, "TestPhone/1.0");
	ASSERT_CONTAINS(out, "1001");
	free(out);
	out = NULL;
	CU_ASSERT_EQUAL(px_cli_run_capture("sip show registrations show-1", &out), PX_CLI_SUCCESS);
	ASSERT_CONTAINS(out, "sip:show-1@192.0.2.100:5070");
	ASSERT_CONTAINS(out, "1 contact for 1 AOR");
	CU_ASSERT_PTR_NULL(out ? strstr(out, "1001 ") : NULL);
	free(out);
	out = NULL;
	CU_ASSERT_EQUAL(px_cli_run_capture("sip show registrations nobody", &out), PX_CLI_FAILURE);
	ASSERT_CONTAINS(out, "No registrations for nobody");
	free(out);
	out = NULL;
	CU_ASSERT_EQUAL(px_cli_run_capture("sip show registrations a b", &out), PX_CLI_SHOWUSAGE);
	free(out);
	comp = px_cli_complete(NULL, "sip show registrations show");
	ASSERT_CONTAINS(comp, "show-1");
	CU_ASSERT_PTR_NULL(comp ? strstr(comp, "1001") : NULL);
	free(comp);
}

/* The list the console's Registrations action answers from: every current
 * binding sorted by AOR (best first within one), or one AOR's. */
static void test_list(void)
{
	struct answer a;
	struct px_binding *b = NULL;
	size_t n = 0, i;
	px_err err = {""};
	bool seen = false;

	CU_ASSERT_FATAL(module_loaded);
	CU_ASSERT_EQUAL(
		register_one("list-2", "sip:list-2@192.0.2.102:5070", 600, -1, "call-l2", 1, &a),
		200);
	CU_ASSERT_EQUAL(
		register_one("list-1", "sip:list-1@192.0.2.101:5070", 600, -1, "call-l1", 1, &a),
		200);
	CU_ASSERT_EQUAL_FATAL(px_location_list(NULL, &b, &n, &err), 0);
	CU_ASSERT_FATAL(n >= 2 && b != NULL);
	for (i = 1; i < n; i++)
		CU_ASSERT(strcmp(b[i - 1].aor, b[i].aor) <= 0);
	for (i = 0; i + 1 < n; i++)
		if (!strcmp(b[i].aor, "list-1")) {
			seen = true;
			CU_ASSERT_STRING_EQUAL(b[i].contact, "sip:list-1@192.0.2.101:5070");
			CU_ASSERT_STRING_EQUAL(b[i + 1].aor, "list-2");
			CU_ASSERT_STRING_EQUAL(b[i].received, "udp:127.0.0.1:5060");
		}
	CU_ASSERT(seen);
	free(b);
	b = NULL;
	CU_ASSERT_EQUAL_FATAL(px_location_list("list-2", &b, &n, &err), 0);
	CU_ASSERT_EQUAL_FATAL(n, 1);
	CU_ASSERT_STRING_EQUAL(b[0].contact, "sip:list-2@192.0.2.102:5070");
	CU_ASSERT(b[0].expires_at > (int64_t)time(NULL) + 590);
	free(b);
	b = NULL;
	CU_ASSERT_EQUAL(px_location_list("nobody", &b, &n, &err), 0);
	CU_ASSERT_EQUAL(n, 0);
	CU_ASSERT_PTR_NULL(b);
}

/* ---- unload with updates in flight ---- */

static atomic_int inflight_accepted, inflight_answered, inflight_bad;
static atomic_int inflight_per_thread[BURST_THREADS];
static atomic_bool inflight_stop;

static void inflight_done(void *ctx, const struct px_register_result *res)
{
	if (res->status != 200)
		atomic_fetch_add(&inflight_bad, 1);
	atomic_fetch_add(&inflight_answered, 1);
}

static void *inflight_thread(void *arg)
{
	int t = (int)(intptr_t)arg;

	for (int i = 0; !atomic_load(&inflight_stop); i++) {
		char aor[32], uri[64];
		struct px_register_contact c = {uri, 600, -1};
		struct px_register_request req = request(aor, "inflight", 1);
		px_err err = {""};

		snprintf(aor, sizeof(aor), "inflight-%d-%d", t, i);
		snprintf(uri, sizeof(uri), "sip:%s@10.2.%d.1", aor, t);
		req.contacts = &c;
		req.ncontacts = 1;
		/* Counted before the call: an answer may come before it returns. */
		atomic_fetch_add(&inflight_accepted, 1);
		if (px_location_update(&req, inflight_done, NULL, &err) != 0) {
			atomic_fetch_sub(&inflight_accepted, 1);
			break; /* the registrar is going or gone */
		}
		atomic_store(&inflight_per_thread[t], i + 1);
	}
	return NULL;
}

static int store_count_like(const char *pattern)
{
	px_store_stmt *s;
	px_err err = {""};
	int n = -1;

	if (px_store_prepare(store, "SELECT count(*) FROM px_location WHERE aor LIKE ?1", &s, &err))
		return -1;
	px_store_bind_text(s, 1, pattern);
	if (px_store_step(s, &err) == PX_STORE_ROW)
		n = (int)px_store_column_int64(s, 0);
	px_store_finalize(s);
	return n;
}

static void test_unload_in_flight(void)
{
	pthread_t threads[BURST_THREADS];
	px_err err = {""};
	int answered_at_unload, accepted;
	double start;

	CU_ASSERT_FATAL(module_loaded);
	atomic_store(&inflight_accepted, 0);
	atomic_store(&inflight_answered, 0);
	atomic_store(&inflight_bad, 0);
	atomic_store(&inflight_stop, false);
	for (int t = 0; t < BURST_THREADS; t++) {
		atomic_store(&inflight_per_thread[t], 0);
		CU_ASSERT_FATAL(pthread_create(&threads[t], NULL, inflight_thread,
					       (void *)(intptr_t)t) == 0);
	}
	start = now_seconds();
	while (atomic_load(&inflight_accepted) < 300 && now_seconds() - start < 2.0)
		sleep_ms(1);
	/* Forced: the threads keep the module busy inside update(). */
	CU_ASSERT_EQUAL(px_loader_unload("res_registrar", true, &err), 0);
	module_loaded = false;
	answered_at_unload = atomic_load(&inflight_answered);
	atomic_store(&inflight_stop, true);
	for (int t = 0; t < BURST_THREADS; t++)
		pthread_join(threads[t], NULL);

	/* Every update accepted before the unload was answered by then, and
	 * is on disk. */
	accepted = atomic_load(&inflight_accepted);
	CU_ASSERT(accepted >= 300);
	CU_ASSERT_EQUAL(answered_at_unload, accepted);
	CU_ASSERT_EQUAL(atomic_load(&inflight_answered), accepted);
	CU_ASSERT_EQUAL(atomic_load(&inflight_bad), 0);
	CU_ASSERT_EQUAL(store_count_like("inflight-%"), accepted);
	printf("\n    %d updates in flight, all answered before unload returned ", accepted);

	/* Load again: they come back from the store. */
	CU_ASSERT_EQUAL_FATAL(load_module(), 0);
	for (int t = 0; t < BURST_THREADS; t++) {
		char aor[32];
		int n = atomic_load(&inflight_per_thread[t]);
		if (!n)
			continue;
		snprintf(aor, sizeof(aor), "inflight-%d-%d", t, n - 1);
		CU_ASSERT_EQUAL(px_location_lookup(aor, NULL, 0), 1);
		CU_ASSERT(lookup_matches_store(aor));
	}
	CU_ASSERT_EQUAL(px_location_lookup("1001", NULL, 0), 1);
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failures;

	px_log_init();
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite_with_setup_and_teardown("registrar", suite_init, suite_cleanup,
						     test_setup, NULL);
	if (!suite || !CU_add_test(suite, "register and lookup", test_register_and_lookup) ||
	    !CU_add_test(suite, "refresh with a higher CSeq", test_refresh) ||
	    !CU_add_test(suite, "stale CSeq ignored", test_stale_cseq_ignored) ||
	    !CU_add_test(suite, "expires 0 removes", test_expires_zero_removes) ||
	    !CU_add_test(suite, "wildcard removes all", test_wildcard_removes_all) ||
	    !CU_add_test(suite, "bad wildcard is 400", test_wildcard_bad) ||
	    !CU_add_test(suite, "interval too brief is 423", test_interval_too_brief) ||
	    !CU_add_test(suite, "capped and default intervals", test_capped_and_default) ||
	    !CU_add_test(suite, "max_contacts replaces the oldest", test_max_contacts) ||
	    !CU_add_test(suite, "q ordering", test_q_order) ||
	    !CU_add_test(suite, "contact comparison", test_contact_comparison) ||
	    !CU_add_test(suite, "query", test_query) ||
	    !CU_add_test(suite, "bad requests", test_bad_requests) ||
	    !CU_add_test(suite, "bindings survive unload and load", test_persistence) ||
	    !CU_add_test(suite, "expired bindings purged", test_expired_purged) ||
	    !CU_add_test(suite, "group commit", test_group_commit) ||
	    !CU_add_test(suite, "store failure", test_store_failure) ||
	    !CU_add_test(suite, "console command", test_console) ||
	    !CU_add_test(suite, "list for the console", test_list) ||
	    !CU_add_test(suite, "unload answers updates in flight", test_unload_in_flight)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	px_log_shutdown();
	return failures != 0;
}
