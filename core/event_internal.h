/*
 * What the event bus shows the core and its tests, not modules: the memory
 * budget of queued events (set from console.conf), and a way to make the
 * building of events fail, as it does when memory runs out, so that the
 * loss of an event no subscriber could be given is tested.
 */
#ifndef PLEXUS_EVENT_INTERNAL_H
#define PLEXUS_EVENT_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

#include <plexus/event.h>

/*
 * The memory budget of queued events. An event held in a queue is counted
 * at its cost: its size in memory, an allowance as large for the JSON text
 * a console makes of it, and its queue slot. Each subscriber may hold at
 * most sub_bytes; all subscribers together at most total_bytes, except that
 * a subscriber holding less than its floor (sub_bytes / 16) is always
 * served, so that subscribers that stall cannot starve those that read. An
 * empty queue always takes the next event. What a budget refuses is
 * dropped for that subscriber only and counted like a full queue's drop.
 * Worst case: subscribers x (floor + queue slots) + total_bytes.
 */
#define PX_EVENT_SUB_BYTES_DEFAULT   (4u << 20)
#define PX_EVENT_TOTAL_BYTES_DEFAULT (64u << 20)
/* The least an event can cost: a queue longer than sub_bytes / this could
 * never fill, and would only pin memory in its slots. */
#define PX_EVENT_MIN_COST 256u

void px_event_budget_set(size_t sub_bytes, size_t total_bytes);
void px_event_budget_get(size_t *sub_bytes, size_t *total_bytes);
/* The queue length a subscriber asking for queue_max events gets. */
size_t px_event_queue_fit(size_t queue_max);
/* Bytes queued now: by all subscribers, and by s. */
size_t px_event_budget_used(void);
size_t px_event_sub_bytes(px_event_sub *s);

/* Memory for an event or its text: a block of the events' free list
 * when size fits one, else malloc's (event.c says why). NULL: memory.
 * Given back with px_event_block_free (NULL is ignored). */
void *px_event_block_alloc(size_t size);
void px_event_block_free(void *block);
/* Frees the blocks kept for events; at shutdown, once no thread emits or
 * holds events any more. */
void px_event_pool_drain(void);
/* Blocks kept now (tests). */
size_t px_event_pool_size(void);

/* The next N events emitted cannot be built (tests only; 0 normally). */
extern atomic_uint px_event_build_failures;

#endif
