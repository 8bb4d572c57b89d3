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

#endif
