/*
 * The thread registry seen from the core: listing the named threads for
 * "core show threads", releasing the registry at exit, and the per-thread
 * scratch buffers of the media path.
 */
#ifndef PLEXUS_THREAD_INTERNAL_H
#define PLEXUS_THREAD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <time.h>

struct px_thread_info {
	char name[32];
	pid_t tid;
	time_t started;
	bool carries_calls;      /* said so by px_thread_carries_calls */
	bool carries_every_call; /* and by px_thread_carries_every_call */
};

/* px_thread_start with a stack of stack_size bytes (0: the default, glibc's
 * RLIMIT_STACK, usually 8 MiB), for threads whose deepest path is known. */
int px_thread_start_sized(pthread_t *out, const char *name, void *(*fn)(void *), void *arg,
			  size_t stack_size);

/* The nice value of the threads that carry calls (plexus.conf call_nice):
 * set on those running now and on those that say so later, five levels
 * lower on the one that carries every call. A value the kernel refuses is
 * said once in the log, and the threads keep theirs (that one: call_nice
 * when the kernel grants it). */
void px_thread_set_call_nice(int nice);

/* Fill up to max entries; returns the number of registered threads. */
size_t px_thread_list(struct px_thread_info *out, size_t max);
void px_thread_registry_shutdown(void);

/* Scratch buffers that a thread keeps for itself (audio between the steps
 * of a translation, one packet of a source). They are not _Thread_local
 * arrays: glibc zeroes a program's whole static TLS in every thread it
 * creates, so 88 KiB of arrays cost 88 KiB of RSS in each of the hundreds
 * of session threads that never use them. A buffer is allocated at its
 * thread's first use (zeroed) and freed when the thread ends. */
enum px_scratch {
	PX_SCRATCH_CODEC,  /* codec.c: between translator steps */
	PX_SCRATCH_STREAM, /* stream.c: a source's packet */
	PX_SCRATCH_COUNT
};
/* The calling thread's buffer `which`, of `size` bytes (the same size on
 * every call for one `which`); NULL when it cannot be allocated. */
void *px_thread_scratch(enum px_scratch which, size_t size);

#endif
