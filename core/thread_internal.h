/*
 * The thread registry seen from the core: listing the named threads for
 * "core show threads" and releasing the registry at exit.
 */
#ifndef PLEXUS_THREAD_INTERNAL_H
#define PLEXUS_THREAD_INTERNAL_H

#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct px_thread_info {
	char name[32];
	pid_t tid;
	time_t started;
};

/* Fill up to max entries; returns the number of registered threads. */
size_t px_thread_list(struct px_thread_info *out, size_t max);
void px_thread_registry_shutdown(void);

#endif
