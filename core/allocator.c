/*
 * plexusd's memory allocator. Built with jemalloc (configure's default),
 * the whole process allocates through it: the core, sofia-sip's messages,
 * Lua states and every module bind to the malloc of the first library in
 * plexusd's link order, which is jemalloc. Its options are the string
 * below, which jemalloc reads before the first allocation; MALLOC_CONF in
 * the environment is read after it and wins (MALLOC_CONF=thp:never turns
 * huge pages off). With the C library's malloc (configure
 * --without-jemalloc, and every sanitizer build) nothing here applies.
 *
 * Huge pages: the heap and jemalloc's own metadata ask the kernel for
 * transparent huge pages (madvise, which the kernel's "madvise" mode,
 * Debian's default, grants). sofia-sip keeps each transaction's messages
 * for 32 s after it completes (64 x T1: timer D, timer J, an answered
 * INVITE's server transaction), about 25 kB per call, so under a steady
 * call rate the SIP thread's heap grows by that much per call for the
 * first 32 s, and again whenever the rate rises. In 4 kB pages that was 8
 * page faults per call at 600 calls/s, each costing the SIP thread about
 * 10 us on a virtual machine; in 2 MB pages it is one fault per 80 calls,
 * and heap_prefault.c has another thread take those.
 *
 * Two arenas, not jemalloc's four per core: each arena keeps its own
 * partly used huge pages, and with eight a relayed call cost 113 kB of RSS
 * at 100 calls instead of 73 (one arena: 75 kB). Session threads allocate
 * without a thread cache: a call's session thread spends the call parked
 * (in Dial, in a bridge), and the blocks its cache held stayed out of every
 * other thread's reach, which doubled the memory of a relayed call
 * (125-154 kB against 62-74 with the C library's malloc, 100-500 calls).
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#ifdef HAVE_JEMALLOC
#include <jemalloc/jemalloc.h>
#endif

#include "allocator.h"

#ifdef HAVE_JEMALLOC
const char *malloc_conf = "thp:always,metadata_thp:always,narenas:2";
#endif

/* The kernel's transparent huge page mode: the bracketed word of
 * /sys/kernel/mm/transparent_hugepage/enabled, or "unknown". */
static void kernel_thp_mode(char *out, size_t size)
{
	char line[128] = "";
	FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "re");
	const char *open_bracket, *close_bracket;

	snprintf(out, size, "unknown");
	if (!f)
		return;
	if (fgets(line, sizeof(line), f) && (open_bracket = strchr(line, '[')) &&
	    (close_bracket = strchr(open_bracket, ']')))
		snprintf(out, size, "%.*s", (int)(close_bracket - open_bracket - 1), open_bracket + 1);
	fclose(f);
}

void px_allocator_thread_cache(bool on)
{
#ifdef HAVE_JEMALLOC
	/* Turning it off flushes what it holds. A failure leaves the cache as
	 * it was, which costs memory, not correctness. */
	(void)mallctl("thread.tcache.enabled", NULL, NULL, &on, sizeof(on));
#else
	(void)on;
#endif
}

void px_allocator_describe(char *buf, size_t size)
{
	char kernel[32];

	kernel_thp_mode(kernel, sizeof(kernel));
#ifdef HAVE_JEMALLOC
	const char *version = "unknown", *thp = "unknown";
	size_t len = sizeof(version);

	if (mallctl("version", &version, &len, NULL, 0) != 0)
		version = "unknown";
	len = sizeof(thp);
	if (mallctl("opt.thp", &thp, &len, NULL, 0) != 0)
		thp = "unknown";
	snprintf(buf, size, "jemalloc %s, huge pages: %s (kernel: %s)", version, thp, kernel);
#else
	snprintf(buf, size, "C library malloc (kernel huge pages: %s)", kernel);
#endif
}
