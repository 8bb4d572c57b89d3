/*
 * Faulting the heap's new memory in ahead of need, on a thread of its own.
 * sofia-sip keeps each call's transactions for up to 32 s, so under a
 * rising call rate the SIP thread's heap grows by some 25 kB a call, and
 * the first write to every new page is a page fault taken by the thread
 * that writes it: on this project's 2-core virtual machine, at 1500
 * calls/s, zeroing fresh huge pages was 11.5 % of the SIP thread's
 * samples, and the SIP thread is the one every call waits for. So
 * jemalloc's automatic arenas get their new memory (an extent, asked for
 * when an arena has nothing left to split) through a hook here: it hands
 * out address space that the "heap-prefault" thread has already written,
 * a huge page at a time, and wakes that thread to write the next. A
 * request that finds too little ready, or the lock taken, goes to
 * jemalloc's own mapping as before: the hook never waits. While the heap
 * does not grow for PREFAULT_IDLE_SECS, what was written ahead and not
 * handed out is given back to the kernel, so an idle daemon holds none of
 * it.
 *
 * The same hooks keep the heap's huge pages whole. jemalloc gives unused
 * memory back to the kernel a few seconds after it was freed (its decay),
 * by ranges that follow its extents, not huge pages, and the kernel splits
 * every huge page a purge covers only in part. Under a steady call rate
 * the heap frees what it allocates, so this went on all the time: in a 90 s
 * run at 1500 calls/s the heap's huge pages went from 1338 to 848 MB
 * between seconds 30 and 80, and the SIP thread's CPU rose from 51 to 98 %
 * of a core with them (fragmented into 4 kB pages, the heap costs every
 * access more), until calls failed. With no purge at all it stayed at
 * 51-72 %. So while the daemon is busy (the caller's busy(): plexusd has
 * calls or had one in the last seconds, see main.c), a purge here gives
 * back the whole huge pages inside its range and reports failure for the
 * rest, which jemalloc then keeps as retained memory, not zeroed, for its
 * next use. When it is not busy, jemalloc purges as it would: what a load
 * left behind goes back to the kernel once the load is over, split huge
 * pages or not. Everything else (splitting, merging, decay, reuse) stays
 * jemalloc's own code. Without jemalloc (--without-jemalloc, sanitizer
 * builds) none of this is built in.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include <plexus/core.h>
#include <plexus/log.h>

#include "allocator.h"

#ifdef HAVE_JEMALLOC

/* Written ahead one transparent huge page at a time. */
#define PREFAULT_STEP (2u << 20)
/* Ready and not yet handed out: at 1500 calls/s the heap grew by 45-90
 * MB/s, so this is a fifth of a second or more of growth. */
#define PREFAULT_AHEAD (16u << 20)
/* The largest extent an arena asks for while growing: jemalloc's requests
 * grow geometrically, to hundreds of megabytes, and each must fit in what
 * is ready. */
#define PREFAULT_GROW_LIMIT (4u << 20)
/* Address space reserved at a time; only what is written costs memory. */
#define PREFAULT_REGION    (1u << 30)
#define PREFAULT_IDLE_SECS 30
/* Below the signalling and session threads, which the memory is for. */
#define PREFAULT_NICE 5

static size_t ahead_bytes = PREFAULT_AHEAD;
static unsigned idle_secs = PREFAULT_IDLE_SECS;
static bool (*busy)(void);             /* NULL: always busy */
static extent_hooks_t *jemalloc_hooks; /* the arenas' own, for the rest */
static extent_hooks_t prefault_hooks;
static unsigned hooked_arenas;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t thread;
static bool running, stopping;
/* [next, ready): written, not handed out; [ready, end): reserved only. */
static char *next, *ready, *end;
static bool map_failed;              /* the last reservation failed (said) */
static bool requested;               /* the arenas asked at least once */
static struct timespec last_request; /* CLOCK_MONOTONIC, of the last */

static atomic_ullong stat_served, stat_missed, stat_written, stat_released;
static atomic_ullong stat_purged_whole, stat_purge_kept;

static size_t align_up(size_t v, size_t a)
{
	return (v + a - 1) & ~(a - 1);
}

static void *prefault_alloc(extent_hooks_t *hooks, void *new_addr, size_t size, size_t alignment,
			    bool *zero, bool *commit, unsigned arena_ind)
{
	char *p = NULL;

	(void)hooks;
	/* trylock: never wait here, with an arena's locks held, nor in a
	 * child of fork that inherited the lock taken. */
	if (!new_addr && alignment <= PREFAULT_STEP && pthread_mutex_trylock(&lock) == 0) {
		char *at = next ? (char *)align_up((uintptr_t)next, alignment) : NULL;
		if (at && at + size <= ready) {
			p = at;
			next = at + size;
		}
		requested = true;
		clock_gettime(CLOCK_MONOTONIC, &last_request);
		if ((size_t)(ready - next) < ahead_bytes)
			pthread_cond_signal(&wake);
		pthread_mutex_unlock(&lock);
	}
	if (p) {
		atomic_fetch_add(&stat_served, size);
		/* Written with zeros only, and committed. */
		*zero = true;
		*commit = true;
		return p;
	}
	if (!new_addr)
		atomic_fetch_add(&stat_missed, size);
	return jemalloc_hooks->alloc(jemalloc_hooks, new_addr, size, alignment, zero, commit,
				     arena_ind);
}

static size_t align_down(size_t v, size_t a)
{
	return v & ~(a - 1);
}

/* A purge of [addr + offset, + length): jemalloc's own when the range is
 * whole huge pages or the daemon is not busy; otherwise true (failed), so
 * that no huge page is split. jemalloc follows a failed lazy purge with a
 * forced one (and a failed forced one with a lazy one), so the forced
 * purge alone gives back the whole huge pages inside the range and counts
 * what it kept: those pages then read as zeros, which a range jemalloc
 * takes as not purged may hold anyway. */
static bool purge_huge_pages(extent_hooks_t *hooks, void *addr, size_t size, size_t offset,
			     size_t length, unsigned arena_ind, bool forced)
{
	uintptr_t from = (uintptr_t)addr + offset, to = from + length;
	uintptr_t inner_from = align_up(from, PREFAULT_STEP),
		  inner_to = align_down(to, PREFAULT_STEP);
	size_t inner = inner_to > inner_from ? inner_to - inner_from : 0;

	(void)hooks;
	if ((inner_from == from && inner_to == to) || (busy && !busy())) {
		extent_purge_t *purge =
			forced ? jemalloc_hooks->purge_forced : jemalloc_hooks->purge_lazy;
		return !purge || purge(jemalloc_hooks, addr, size, offset, length, arena_ind);
	}
	if (!forced)
		return true;
	if (inner) {
		(void)madvise((void *)inner_from, inner, MADV_DONTNEED);
		atomic_fetch_add(&stat_purged_whole, inner);
	}
	atomic_fetch_add(&stat_purge_kept, length - inner);
	return true;
}

static bool purge_lazy_huge_pages(extent_hooks_t *hooks, void *addr, size_t size, size_t offset,
				  size_t length, unsigned arena_ind)
{
	return purge_huge_pages(hooks, addr, size, offset, length, arena_ind, false);
}

static bool purge_forced_huge_pages(extent_hooks_t *hooks, void *addr, size_t size, size_t offset,
				    size_t length, unsigned arena_ind)
{
	return purge_huge_pages(hooks, addr, size, offset, length, arena_ind, true);
}

/* A fresh region of address space aligned to a huge page, or NULL.
 * lock held. */
static bool region_map_locked(void)
{
	size_t len = PREFAULT_REGION + PREFAULT_STEP;
	char *m = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	char *start;

	if (m == MAP_FAILED)
		return false;
	start = (char *)align_up((uintptr_t)m, PREFAULT_STEP);
	if (start > m)
		munmap(m, (size_t)(start - m));
	if (start + PREFAULT_REGION < m + len)
		munmap(start + PREFAULT_REGION, (size_t)(m + len - (start + PREFAULT_REGION)));
	(void)madvise(start, PREFAULT_REGION, MADV_HUGEPAGE);
	/* What is left of the region before: never handed out, so never
	 * jemalloc's; written or not, it goes back. */
	if (next && end > next)
		munmap(next, (size_t)(end - next));
	next = ready = start;
	end = start + PREFAULT_REGION;
	return true;
}

/* Writes one step ahead, outside the lock: the pages from ready on are
 * nobody's until ready moves past them. lock held, dropped and taken. */
static void write_step_locked(void)
{
	char *from = ready;
	size_t len = PREFAULT_STEP;
	long page = sysconf(_SC_PAGESIZE);

	if ((size_t)(end - from) < len)
		len = (size_t)(end - from);
	pthread_mutex_unlock(&lock);
	for (size_t off = 0; off < len; off += (size_t)page)
		((volatile char *)from)[off] = 0;
	pthread_mutex_lock(&lock);
	ready = from + len;
	atomic_fetch_add(&stat_written, len);
}

static double seconds_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

static void *prefault_main(void *arg)
{
	(void)arg;
	(void)setpriority(PRIO_PROCESS, 0, PREFAULT_NICE);
	pthread_mutex_lock(&lock);
	while (!stopping) {
		/* Written ahead only while the arenas keep asking: a daemon
		 * whose heap does not grow holds nothing here. */
		double quiet = requested ? seconds_since(&last_request) : idle_secs;
		bool growing = quiet < idle_secs;

		if (growing && (size_t)(ready - next) < ahead_bytes) {
			if ((size_t)(end - ready) < PREFAULT_GROW_LIMIT && !region_map_locked()) {
				/* Said once: each request of a growing heap
				 * (several a second) would try again. */
				if (!map_failed)
					px_log_warning("heap prefault: cannot reserve address "
						       "space: %s; the heap's threads fault "
						       "their own pages",
						       strerror(errno));
				map_failed = true;
				requested = false;
				continue;
			}
			map_failed = false;
			write_step_locked();
			continue;
		}
		if (!growing) {
			if (ready > next) {
				size_t len = (size_t)(ready - next);
				(void)madvise(next, len, MADV_DONTNEED);
				ready = next;
				atomic_fetch_add(&stat_released, len);
			}
			pthread_cond_wait(&wake, &lock);
			continue;
		}
		/* Enough ready: until the next request, or until the heap has
		 * not grown for PREFAULT_IDLE_SECS. */
		struct timespec deadline;
		clock_gettime(CLOCK_REALTIME, &deadline);
		deadline.tv_sec += (time_t)(idle_secs - quiet) + 1;
		pthread_cond_timedwait(&wake, &lock, &deadline);
	}
	pthread_mutex_unlock(&lock);
	return NULL;
}

int px_heap_prefault_start(const struct px_heap_prefault_opts *opts)
{
	unsigned narenas;
	extent_hooks_t *current = NULL;
	size_t len = sizeof(narenas), hooks_len = sizeof(current);
	size_t limit = PREFAULT_GROW_LIMIT;
	char name[64];
	int rc;

	if (running)
		return 0;
	ahead_bytes = opts && opts->ahead ? opts->ahead : PREFAULT_AHEAD;
	idle_secs = opts && opts->idle_secs ? opts->idle_secs : PREFAULT_IDLE_SECS;
	busy = opts ? opts->busy : NULL;
	if (mallctl("opt.narenas", &narenas, &len, NULL, 0) != 0 ||
	    mallctl("arena.0.extent_hooks", &current, &hooks_len, NULL, 0) != 0 || !current) {
		/* Another malloc stands in for jemalloc's (valgrind's). */
		px_log_notice(
			"heap prefault: not jemalloc's heap; pages are faulted by their threads");
		return 0;
	}
	/* Started again after a stop, the arenas still have ours (see
	 * px_heap_prefault_stop): jemalloc's are the ones kept from the
	 * first start. Taken as ours, a request that missed would call
	 * itself for ever. */
	if (current != &prefault_hooks) {
		jemalloc_hooks = current;
		prefault_hooks = *jemalloc_hooks;
		prefault_hooks.alloc = prefault_alloc;
		prefault_hooks.purge_lazy = purge_lazy_huge_pages;
		prefault_hooks.purge_forced = purge_forced_huge_pages;
	}
	stopping = false;
	rc = px_thread_start(&thread, "heap-prefault", prefault_main, NULL);
	if (rc != 0) {
		px_log_warning("heap prefault: cannot start its thread: %s", strerror(rc));
		return -1;
	}
	running = true;
	/* Setting an arena's hooks creates it if no thread has used it yet;
	 * only then can its growth be limited (jemalloc refuses the limit of
	 * an arena that does not exist, which a thread taking it later would
	 * then grow geometrically, past anything written ahead). */
	for (unsigned i = 0; i < narenas; i++) {
		extent_hooks_t *new_hooks = &prefault_hooks;
		snprintf(name, sizeof(name), "arena.%u.extent_hooks", i);
		if (mallctl(name, NULL, NULL, &new_hooks, sizeof(new_hooks)) != 0)
			break;
		hooked_arenas = i + 1;
		snprintf(name, sizeof(name), "arena.%u.retain_grow_limit", i);
		rc = mallctl(name, NULL, NULL, &limit, sizeof(limit));
		if (rc != 0)
			px_log_warning("heap prefault: arena %u keeps its growth unlimited: %s", i,
				       strerror(rc));
	}
	return 0;
}

void px_heap_prefault_stop(void)
{
	if (!running)
		return;
	/* The hooks stay: the arenas' extents may have come through them,
	 * and every other operation is jemalloc's own anyway. What is
	 * written ahead stays until exit. */
	pthread_mutex_lock(&lock);
	stopping = true;
	pthread_cond_signal(&wake);
	pthread_mutex_unlock(&lock);
	pthread_join(thread, NULL);
	running = false;
}

void px_heap_prefault_stats(struct px_heap_prefault_stats *s)
{
	memset(s, 0, sizeof(*s));
	s->arenas = hooked_arenas;
	s->served = atomic_load(&stat_served);
	s->missed = atomic_load(&stat_missed);
	s->written = atomic_load(&stat_written);
	s->released = atomic_load(&stat_released);
	s->purged_whole = atomic_load(&stat_purged_whole);
	s->purge_kept = atomic_load(&stat_purge_kept);
	pthread_mutex_lock(&lock);
	s->ready = (size_t)(ready - next);
	pthread_mutex_unlock(&lock);
}

#else /* !HAVE_JEMALLOC */

int px_heap_prefault_start(const struct px_heap_prefault_opts *opts)
{
	(void)opts;
	return 0;
}

void px_heap_prefault_stop(void)
{
}

void px_heap_prefault_stats(struct px_heap_prefault_stats *s)
{
	memset(s, 0, sizeof(*s));
}

#endif
