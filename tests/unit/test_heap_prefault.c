/*
 * Unit tests of core/heap_prefault.c, in a process on jemalloc as plexusd
 * is: once started, the arenas' new extents come from memory the
 * prefault thread wrote ahead (counted as served), calloc on it still
 * reads zeros, what the program writes there stays as written, what was
 * written ahead is given back after the idle time, and stop then start
 * works, a request that finds nothing ready still getting jemalloc's own
 * mapping after it; while busy, a purge through the arenas' hooks gives
 * back only whole huge pages, keeping the rest as it was, and jemalloc's
 * own purges come that way; when not busy, jemalloc purges as it would. In a build without jemalloc
 * (sanitizers) starting does nothing and nothing is counted.
 */
#include "config.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/mman.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#define STRINGIFY_(x) #x
#define STRINGIFY(x)  STRINGIFY_(x)
#endif

#include <CUnit/Basic.h>

#include "allocator.h"

#define MIB        (1024u * 1024u)
#define BLOCK      (64u * 1024u) /* a "large" jemalloc size: an extent each */
#define GROW_BYTES (192u * MIB)
#define AHEAD      (8u * MIB)
#define IDLE_SECS  1

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

struct grow {
	void **blocks;
	size_t n;
	bool intact;
};

/* Set once a pause saw the prefault thread write nothing for a second:
 * later pauses are skipped, so that a thread that never writes fails the
 * counts, not the run (alarm below). */
static bool prefault_stalled;

/* A pause for the prefault thread to have 4 MiB ready again. It runs at
 * nice 5, so on a machine busy with other work (make -j check runs other
 * tests beside this one) it can take a long while to get there: the pause
 * lasts as long as the thread makes progress, and ends after a second
 * without any. */
static void wait_written_ahead(void)
{
	struct px_heap_prefault_stats s;
	unsigned long long written;
	int quiet_ms = 0;

	px_heap_prefault_stats(&s);
	written = s.written;
	while (!prefault_stalled && s.arenas && s.ready < 4 * MIB) {
		sleep_ms(2);
		px_heap_prefault_stats(&s);
		if (s.written != written) {
			written = s.written;
			quiet_ms = 0;
		} else if ((quiet_ms += 2) >= 1000) {
			prefault_stalled = true;
		}
	}
}

/* Allocates GROW_BYTES in blocks, writing each with a pattern of its own,
 * pausing every 4 MiB so that the prefault thread can keep ahead; then
 * checks every pattern. Run on a thread of its own: a fresh thread, as
 * the SIP thread is, takes an arena and grows it. */
static void *grow_main(void *arg)
{
	struct grow *g = arg;

	g->n = GROW_BYTES / BLOCK;
	g->blocks = calloc(g->n, sizeof(*g->blocks));
	g->intact = g->blocks != NULL;
	for (size_t i = 0; g->blocks && i < g->n; i++) {
		g->blocks[i] = malloc(BLOCK);
		if (!g->blocks[i]) {
			g->intact = false;
			break;
		}
		memset(g->blocks[i], (int)(i & 0xff), BLOCK);
		if ((i + 1) % (4 * MIB / BLOCK) == 0)
			wait_written_ahead();
	}
	for (size_t i = 0; g->intact && i < g->n; i++) {
		const unsigned char *b = g->blocks[i];
		if (b[0] != (i & 0xff) || b[BLOCK / 2] != (i & 0xff) || b[BLOCK - 1] != (i & 0xff))
			g->intact = false;
	}
	return NULL;
}

static void grow_free(struct grow *g)
{
	for (size_t i = 0; g->blocks && i < g->n; i++)
		free(g->blocks[i]);
	free(g->blocks);
}

/* Every growth is kept until the end: freed, its memory would be what
 * the next test's growth reuses instead of asking for new. */
static struct grow grows[3];
static size_t ngrows;

/* fn(arg) on a thread of its own, which gets an arena and a thread cache
 * of its own, and gives them back when it ends. */
static void run_on_a_thread(void *(*fn)(void *), void *arg)
{
	pthread_t t;

	CU_ASSERT_FATAL(pthread_create(&t, NULL, fn, arg) == 0);
	pthread_join(t, NULL);
}

static void grow_on_a_thread(struct grow *g)
{
	memset(g, 0, sizeof(*g));
	run_on_a_thread(grow_main, g);
}

/* What plexusd's "has calls" is to the purge hooks. */
static atomic_bool busy = true;

static bool test_busy(void)
{
	return atomic_load(&busy);
}

static const struct px_heap_prefault_opts opts = {
	.ahead = AHEAD, .idle_secs = IDLE_SECS, .busy = test_busy};

static void test_growth_comes_from_written_memory(void)
{
	struct px_heap_prefault_stats before, after;
	struct grow *g = &grows[ngrows++];

	CU_ASSERT_EQUAL_FATAL(px_heap_prefault_start(&opts), 0);
	px_heap_prefault_stats(&before);
	grow_on_a_thread(g);
	CU_ASSERT_TRUE(g->intact);
	px_heap_prefault_stats(&after);
#ifdef HAVE_JEMALLOC
	CU_ASSERT_TRUE(after.arenas >= 1);
	/* Every hooked arena's growth is limited, those no thread had used
	 * at the start too: the thread above took one of them. */
	for (unsigned i = 0; i < after.arenas; i++) {
		char name[64];
		size_t limit = 0, len = sizeof(limit);
		snprintf(name, sizeof(name), "arena.%u.retain_grow_limit", i);
		CU_ASSERT_EQUAL(mallctl(name, &limit, &len, NULL, 0), 0);
		CU_ASSERT_EQUAL(limit, 4 * MIB);
	}
	/* Most of the growth is served; the first request of a burst (and
	 * any that finds the lock taken) maps its own. */
	CU_ASSERT_TRUE(after.served - before.served >= GROW_BYTES / 2);
	CU_ASSERT_TRUE(after.missed - before.missed + after.served - before.served <=
		       2 * GROW_BYTES);
	CU_ASSERT_TRUE(after.written >= after.served);
	CU_ASSERT_TRUE(after.written - after.served - after.released >= after.ready);
#else
	CU_ASSERT_EQUAL(after.served, 0);
	CU_ASSERT_EQUAL(after.written, 0);
#endif
}

/* Zeroed allocations on memory written ahead: jemalloc is told it is
 * zero, and skips zeroing it; what it returns must read as zeros. */
static void *calloc_main(void *arg)
{
	bool *zeros = arg;
	enum { N = 96, SIZE = 256 * 1024 };
	unsigned char *p[N];

	*zeros = true;
	wait_written_ahead();
	for (int i = 0; i < N; i++) {
		p[i] = calloc(1, SIZE);
		if (!p[i]) {
			*zeros = false;
			continue;
		}
		for (size_t k = 0; k < SIZE; k += 512)
			if (p[i][k] || p[i][k + 511])
				*zeros = false;
		memset(p[i], 0x5a, SIZE);
		if (i % 16 == 15)
			wait_written_ahead();
	}
	for (int i = 0; i < N; i++)
		free(p[i]);
	return NULL;
}

static void test_calloc_reads_zeros(void)
{
	struct px_heap_prefault_stats before, after;
	bool zeros = false;

	CU_ASSERT_EQUAL_FATAL(px_heap_prefault_start(&opts), 0);
	px_heap_prefault_stats(&before);
	run_on_a_thread(calloc_main, &zeros);
	px_heap_prefault_stats(&after);
	CU_ASSERT_TRUE(zeros);
#ifdef HAVE_JEMALLOC
	CU_ASSERT_TRUE(after.served > before.served);
#endif
}

static void test_idle_gives_back(void)
{
	struct px_heap_prefault_stats s;
	struct grow *g = &grows[ngrows++];
	int waited_ms = 0;

	CU_ASSERT_EQUAL_FATAL(px_heap_prefault_start(&opts), 0);
	grow_on_a_thread(g);
	CU_ASSERT_TRUE(g->intact);
	px_heap_prefault_stats(&s);
#ifdef HAVE_JEMALLOC
	/* Right after growth, something is ready; after the idle time,
	 * nothing is, and what was is counted as given back. */
	unsigned long long released_before = s.released;
	CU_ASSERT_TRUE(s.ready > 0);
	while (s.ready > 0 && waited_ms < (IDLE_SECS + 4) * 1000) {
		sleep_ms(50);
		waited_ms += 50;
		px_heap_prefault_stats(&s);
	}
	CU_ASSERT_EQUAL(s.ready, 0);
	CU_ASSERT_TRUE(s.released > released_before);
	CU_ASSERT_TRUE(waited_ms >= (IDLE_SECS * 1000) / 2);
#else
	CU_ASSERT_EQUAL(s.ready, 0);
	(void)waited_ms;
#endif
}

static void test_stop_then_start(void)
{
	struct px_heap_prefault_stats before, after;
	struct grow *g = &grows[ngrows++];

	px_heap_prefault_stop();
	px_heap_prefault_stop(); /* twice: nothing */
	CU_ASSERT_EQUAL_FATAL(px_heap_prefault_start(&opts), 0);
	CU_ASSERT_EQUAL_FATAL(px_heap_prefault_start(&opts), 0); /* running: nothing */
	px_heap_prefault_stats(&before);
	grow_on_a_thread(g);
	CU_ASSERT_TRUE(g->intact);
	px_heap_prefault_stats(&after);
#ifdef HAVE_JEMALLOC
	/* The previous test left nothing ready: the first request went to
	 * jemalloc's own mapping, which must still be jemalloc's after a
	 * restart (taking our hook for it, it called itself for ever). */
	CU_ASSERT_EQUAL(before.ready, 0);
	CU_ASSERT_TRUE(after.missed > before.missed);
	/* Each request counted once: one that called itself would count
	 * again at every turn until something was ready. */
	CU_ASSERT_TRUE(after.missed - before.missed + after.served - before.served <=
		       2 * GROW_BYTES);
	CU_ASSERT_TRUE(after.served - before.served >= GROW_BYTES / 2);
#endif
	px_heap_prefault_stop();
}

#ifdef HAVE_JEMALLOC
/* Pages of [p, p + len) resident in memory: 1 all, 0 none, -1 mixed. */
static int resident(const char *p, size_t len)
{
	long page = sysconf(_SC_PAGESIZE);
	size_t n = len / (size_t)page, in = 0;
	unsigned char *v = malloc(n);

	if (!v || mincore((void *)p, len, v) != 0) {
		free(v);
		return -2;
	}
	for (size_t i = 0; i < n; i++)
		in += v[i] & 1;
	free(v);
	return in == n ? 1 : in == 0 ? 0 : -1;
}

static bool all_bytes(const char *p, size_t len, unsigned char want)
{
	for (size_t i = 0; i < len; i += 512)
		if ((unsigned char)p[i] != want)
			return false;
	return true;
}

/* The arenas' purge goes through the hooks: while busy, a range that is
 * not whole huge pages gives back the whole huge pages inside it, keeps
 * the rest as it was and reports failure; a range of whole huge pages is
 * purged (zeros after); when not busy, any range is purged. Called here on a region of the test's
 * own, through the hooks jemalloc holds for arena 0. */
static void test_purge_keeps_huge_pages_whole(void)
{
	extent_hooks_t *h = NULL;
	size_t hlen = sizeof(h);
	struct px_heap_prefault_stats before, after;
	char *m, *r;

	CU_ASSERT_EQUAL_FATAL(px_heap_prefault_start(&opts), 0);
	CU_ASSERT_EQUAL_FATAL(mallctl("arena.0.extent_hooks", &h, &hlen, NULL, 0), 0);
	CU_ASSERT_FATAL(h && h->purge_forced && h->purge_lazy);
	m = mmap(NULL, 10 * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CU_ASSERT_FATAL(m != MAP_FAILED);
	r = (char *)(((uintptr_t)m + 2 * MIB - 1) & ~(uintptr_t)(2 * MIB - 1));
	memset(r, 0xab, 8 * MIB);
	px_heap_prefault_stats(&before);

	/* [1, 5) MiB: the huge page [2, 4) goes, the edges stay. */
	CU_ASSERT_TRUE(h->purge_forced(h, r, 8 * MIB, 1 * MIB, 4 * MIB, 0));
	CU_ASSERT_TRUE(all_bytes(r + 1 * MIB, 1 * MIB, 0xab));
	CU_ASSERT_TRUE(all_bytes(r + 4 * MIB, 1 * MIB, 0xab));
	CU_ASSERT_EQUAL(resident(r + 2 * MIB, 2 * MIB), 0);
	CU_ASSERT_TRUE(all_bytes(r + 2 * MIB, 2 * MIB, 0));
	/* Less than a huge page, lazily: nothing goes. */
	CU_ASSERT_TRUE(h->purge_lazy(h, r, 8 * MIB, 4 * MIB + 4096, 8192, 0));
	CU_ASSERT_EQUAL(resident(r + 4 * MIB, 1 * MIB), 1);
	CU_ASSERT_TRUE(all_bytes(r + 4 * MIB, 1 * MIB, 0xab));
	/* [6, 8) MiB, a whole huge page: purged, and it says so. */
	CU_ASSERT_FALSE(h->purge_forced(h, r, 8 * MIB, 6 * MIB, 2 * MIB, 0));
	CU_ASSERT_EQUAL(resident(r + 6 * MIB, 2 * MIB), 0);
	CU_ASSERT_TRUE(all_bytes(r + 6 * MIB, 2 * MIB, 0));

	px_heap_prefault_stats(&after);
	CU_ASSERT_EQUAL(after.purged_whole - before.purged_whole, 2 * MIB);
	/* The lazy purge left it to the forced one that follows a failure. */
	CU_ASSERT_EQUAL(after.purge_kept - before.purge_kept, 2 * MIB);

	/* Not busy: jemalloc's own purge, huge page split or not. */
	atomic_store(&busy, false);
	memset(r, 0xab, 2 * MIB);
	CU_ASSERT_FALSE(h->purge_forced(h, r, 8 * MIB, 1 * MIB, 4096, 0));
	CU_ASSERT_TRUE(all_bytes(r + 1 * MIB, 4096, 0));
	CU_ASSERT_TRUE(all_bytes(r, 1 * MIB, 0xab));
	atomic_store(&busy, true);
	munmap(m, 10 * MIB);
}

/* jemalloc's own purge of every arena (what its decay does over time)
 * comes through those hooks, and memory it could not purge stays usable. */
static void *churn_main(void *arg)
{
	enum { N = 512, SIZE = 48 * 1024 };
	void **p = calloc(N, sizeof(*p));
	bool *ok = arg;

	*ok = p != NULL;
	for (int round = 0; *ok && round < 2; round++) {
		for (int i = 0; i < N; i++)
			if ((p[i] = malloc(SIZE)))
				memset(p[i], round + 1, SIZE);
		for (int i = 0; i < N; i += 2) /* every other one: holes */
			free(p[i]);
		(void)mallctl("arena." STRINGIFY(MALLCTL_ARENAS_ALL) ".purge", NULL, NULL, NULL, 0);
		for (int i = 1; i < N; i += 2) {
			if (!p[i] || !all_bytes(p[i], SIZE, (unsigned char)(round + 1)))
				*ok = false;
			free(p[i]);
		}
	}
	free(p);
	return NULL;
}

static void test_arena_purge_goes_through_hooks(void)
{
	struct px_heap_prefault_stats before, after;
	bool ok = false;

	CU_ASSERT_EQUAL_FATAL(px_heap_prefault_start(&opts), 0);
	px_heap_prefault_stats(&before);
	run_on_a_thread(churn_main, &ok);
	px_heap_prefault_stats(&after);
	CU_ASSERT_TRUE(ok);
	CU_ASSERT_TRUE(after.purge_kept + after.purged_whole >
		       before.purge_kept + before.purged_whole);
}
#endif

int main(void)
{
	static const struct {
		const char *name;
		CU_TestFunc func;
	} tests[] = {
		{"growth comes from written memory", test_growth_comes_from_written_memory},
		{"calloc reads zeros", test_calloc_reads_zeros},
		{"idle gives back", test_idle_gives_back},
		{"stop then start", test_stop_then_start},
#ifdef HAVE_JEMALLOC
		{"a purge keeps huge pages whole", test_purge_keeps_huge_pages_whole},
		{"the arenas' purges go through the hooks", test_arena_purge_goes_through_hooks},
#endif
	};
	CU_pSuite suite;
	unsigned failures;

	/* A hook that loops, or a thread that never writes, fails the run
	 * instead of hanging it. */
	alarm(120);
	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("heap_prefault", NULL, NULL);
	for (size_t i = 0; suite && i < sizeof(tests) / sizeof(tests[0]); i++)
		if (!CU_add_test(suite, tests[i].name, tests[i].func))
			suite = NULL;
	if (!suite) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	for (size_t i = 0; i < ngrows; i++)
		grow_free(&grows[i]);
	return failures != 0;
}
