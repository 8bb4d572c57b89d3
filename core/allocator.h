/*
 * The memory allocator plexusd runs on, and what `core show settings` says
 * of it (see allocator.c).
 */
#ifndef PLEXUS_ALLOCATOR_H
#define PLEXUS_ALLOCATOR_H

#include <stdbool.h>
#include <stddef.h>

/* One line: the allocator, its version and whether its heap asks for
 * transparent huge pages (with the kernel's setting). */
void px_allocator_describe(char *buf, size_t size);

/* Whether the calling thread keeps a cache of freed blocks of its own
 * (jemalloc's tcache; the C library's cannot be turned off per thread).
 * Session threads turn theirs off: see allocator.c. */
void px_allocator_thread_cache(bool on);

/* The heap's new memory written ahead by a thread of its own (see
 * heap_prefault.c). Started before anything allocates much, stopped at
 * shutdown; opts NULL for the defaults. Without jemalloc, or under
 * valgrind, both do nothing. */
struct px_heap_prefault_opts {
	size_t ahead;       /* bytes kept written ahead while the heap grows; 0: 16 MiB */
	unsigned idle_secs; /* given back after this long without growth; 0: 30 */
	/* While this returns true, a purge that would split a huge page is
	 * refused (see heap_prefault.c); NULL: always. It is called under
	 * jemalloc's locks: it must neither lock nor allocate. */
	bool (*busy)(void);
};
int px_heap_prefault_start(const struct px_heap_prefault_opts *opts);
void px_heap_prefault_stop(void);

struct px_heap_prefault_stats {
	unsigned arenas;             /* jemalloc arenas that take memory from it */
	unsigned long long served;   /* bytes of extents handed out written */
	unsigned long long missed;   /* bytes the arenas mapped themselves */
	unsigned long long written;  /* bytes written ahead */
	unsigned long long released; /* bytes written and given back unused */
	size_t ready;                /* bytes written and not handed out now */
	/* Purges of ranges that were not whole huge pages: the huge pages
	 * inside given back, the rest kept (retained) so as not to split one. */
	unsigned long long purged_whole;
	unsigned long long purge_kept;
};
void px_heap_prefault_stats(struct px_heap_prefault_stats *s);

#endif
