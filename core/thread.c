/*
 * Named threads. Every thread plexusd starts is recorded here with its name
 * and kernel thread id, so "core show threads" can list what is running and
 * a stuck thread can be found with gdb or top by its id. The threads that
 * carry calls (SIP signalling, dialplan sessions, media) say so, and run at
 * plexus.conf's call_nice: on a machine shared with other work (event
 * clients, a SIP load generator, builds) the one SIP thread that every
 * call passes must not wait behind them, or its socket queue grows until
 * the overload control refuses calls. That thread runs a step further
 * ahead (FUNNEL_NICE_STEP), so that the session threads, which are many,
 * do not crowd it out either. Also the threads' scratch buffers,
 * allocated at first use instead of as static TLS (see thread_internal.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <plexus/core.h>
#include <plexus/log.h>

#include "thread_internal.h"

struct px_thread_entry {
	char name[32];
	pid_t tid;
	pthread_t self;
	time_t started;
	bool carries_calls;
	bool carries_every_call; /* px_thread_carries_every_call */
	struct px_thread_entry *next;
};

struct thread_start {
	char name[32];
	void *(*fn)(void *);
	void *arg;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct px_thread_entry *threads;
/* plexus.conf's call_nice, and whether setting it (or the step ahead of it)
 * failed since it was last configured (said once, not at every session
 * thread). threads_lock. */
static int call_nice;
static bool call_nice_refused;
static bool funnel_nice_refused;

/* How many nice levels ahead of call_nice the thread that every call passes
 * runs: 5 levels is three times the weight with Linux's scheduler (-10
 * against -5). When calls slow down, hundreds of session threads at
 * call_nice become runnable at once; at equal weight each takes as much of
 * a core as the one thread that can clear the backlog. Measured in
 * bench/README.md (session 19). */
#define FUNNEL_NICE_STEP 5

void px_thread_register_self(const char *name)
{
	struct px_thread_entry *t = calloc(1, sizeof(*t));

	if (!t)
		return;
	snprintf(t->name, sizeof(t->name), "%s", name);
	t->tid = (pid_t)syscall(SYS_gettid);
	t->self = pthread_self();
	t->started = time(NULL);
	/* The kernel's thread name is limited to 15 characters. */
	char comm[16];
	snprintf(comm, sizeof(comm), "%s", name);
	pthread_setname_np(t->self, comm);
	pthread_mutex_lock(&threads_lock);
	t->next = threads;
	threads = t;
	pthread_mutex_unlock(&threads_lock);
}

void px_thread_unregister_self(void)
{
	pthread_t self = pthread_self();

	pthread_mutex_lock(&threads_lock);
	for (struct px_thread_entry **pp = &threads; *pp; pp = &(*pp)->next) {
		if (pthread_equal((*pp)->self, self)) {
			struct px_thread_entry *t = *pp;
			*pp = t->next;
			free(t);
			break;
		}
	}
	pthread_mutex_unlock(&threads_lock);
}

static void *thread_main(void *p)
{
	struct thread_start start = *(struct thread_start *)p;
	void *ret;

	free(p);
	px_thread_register_self(start.name);
	ret = start.fn(start.arg);
	px_thread_unregister_self();
	return ret;
}

/* Give thread t the call threads' nice value, or the step ahead of it when
 * every call passes t. threads_lock held. */
static void apply_call_nice_locked(const struct px_thread_entry *t)
{
	int want = call_nice, err;

	if (t->carries_every_call)
		want = call_nice - FUNNEL_NICE_STEP < -20 ? -20 : call_nice - FUNNEL_NICE_STEP;
	if (setpriority(PRIO_PROCESS, (id_t)t->tid, want) == 0)
		return;
	err = errno;
	if (want != call_nice) {
		/* The kernel may grant call_nice (RLIMIT_NICE) but not further. */
		if (setpriority(PRIO_PROCESS, (id_t)t->tid, call_nice) == 0) {
			if (!funnel_nice_refused)
				px_log_notice("Thread %s, which every call passes, cannot run at "
					      "nice %d: %s; it runs at call_nice (%d) like the "
					      "other threads that carry calls",
					      t->name, want, strerror(err), call_nice);
			funnel_nice_refused = true;
			return;
		}
		err = errno;
	}
	if (call_nice_refused)
		return;
	call_nice_refused = true;
	px_log_notice("The threads that carry calls cannot run at nice %d: %s; they keep the "
		      "nice value they started with (raising a priority takes root, "
		      "CAP_SYS_NICE or RLIMIT_NICE; see call_nice in plexus.conf)",
		      call_nice, strerror(err));
}

static void mark_carrying_calls(bool every_call)
{
	pthread_t self = pthread_self();

	pthread_mutex_lock(&threads_lock);
	for (struct px_thread_entry *t = threads; t; t = t->next) {
		if (pthread_equal(t->self, self)) {
			t->carries_calls = true;
			t->carries_every_call = every_call;
			apply_call_nice_locked(t);
			break;
		}
	}
	pthread_mutex_unlock(&threads_lock);
}

void px_thread_carries_calls(void)
{
	mark_carrying_calls(false);
}

void px_thread_carries_every_call(void)
{
	mark_carrying_calls(true);
}

void px_thread_set_call_nice(int nice)
{
	pthread_mutex_lock(&threads_lock);
	call_nice = nice;
	call_nice_refused = false;
	funnel_nice_refused = false;
	for (struct px_thread_entry *t = threads; t; t = t->next)
		if (t->carries_calls)
			apply_call_nice_locked(t);
	pthread_mutex_unlock(&threads_lock);
}

int px_thread_start_sized(pthread_t *out, const char *name, void *(*fn)(void *), void *arg,
			  size_t stack_size)
{
	struct thread_start *start = malloc(sizeof(*start));
	pthread_attr_t attr;
	int rc;

	if (!start)
		return ENOMEM;
	snprintf(start->name, sizeof(start->name), "%s", name);
	start->fn = fn;
	start->arg = arg;
	if ((rc = pthread_attr_init(&attr)) != 0) {
		free(start);
		return rc;
	}
	if (stack_size)
		rc = pthread_attr_setstacksize(&attr, stack_size);
	if (rc == 0)
		rc = pthread_create(out, &attr, thread_main, start);
	pthread_attr_destroy(&attr);
	if (rc)
		free(start);
	return rc;
}

int px_thread_start(pthread_t *out, const char *name, void *(*fn)(void *), void *arg)
{
	return px_thread_start_sized(out, name, fn, arg, 0);
}

size_t px_thread_list(struct px_thread_info *out, size_t max)
{
	size_t n = 0;

	pthread_mutex_lock(&threads_lock);
	for (struct px_thread_entry *t = threads; t; t = t->next, n++) {
		if (n < max) {
			snprintf(out[n].name, sizeof(out[n].name), "%s", t->name);
			out[n].tid = t->tid;
			out[n].started = t->started;
			out[n].carries_calls = t->carries_calls;
			out[n].carries_every_call = t->carries_every_call;
		}
	}
	pthread_mutex_unlock(&threads_lock);
	return n;
}

/* ---------------------------------------------------------------- scratch */

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;
static bool scratch_key_ok;
/* Small on purpose: this is all the static TLS a thread pays for. */
static _Thread_local void *scratch[PX_SCRATCH_COUNT];

static void scratch_release(void *p)
{
	void **slots = p;

	for (int i = 0; i < PX_SCRATCH_COUNT; i++) {
		free(slots[i]);
		slots[i] = NULL;
	}
}

static void scratch_key_make(void)
{
	scratch_key_ok = pthread_key_create(&scratch_key, scratch_release) == 0;
}

void *px_thread_scratch(enum px_scratch which, size_t size)
{
	void *p = scratch[which];

	if (p)
		return p;
	pthread_once(&scratch_once, scratch_key_make);
	/* Without the key the buffer could not be freed at the thread's end. */
	if (!scratch_key_ok || !(p = calloc(1, size)))
		return NULL;
	scratch[which] = p;
	pthread_setspecific(scratch_key, scratch);
	return p;
}

void px_thread_registry_shutdown(void)
{
	/* Key destructors do not run for the main thread, which calls this. */
	scratch_release(scratch);
	pthread_mutex_lock(&threads_lock);
	while (threads) {
		struct px_thread_entry *t = threads;
		threads = t->next;
		free(t);
	}
	pthread_mutex_unlock(&threads_lock);
}
