/*
 * What the event bus shows the core's own tests and nothing else: a way to
 * make the building of events fail, as it does when memory runs out, so
 * that the loss of an event no subscriber could be given is tested.
 */
#ifndef PLEXUS_EVENT_INTERNAL_H
#define PLEXUS_EVENT_INTERNAL_H

#include <stdatomic.h>

/* The next N events emitted cannot be built (tests only; 0 normally). */
extern atomic_uint px_event_build_failures;

#endif
