/*
 * A provider slot: a core service that exactly one module provides at a
 * time (the dialplan engine, the registrar). The slot records the provider
 * against its module so an unload releases it, and lends it out with the
 * module marked busy, so the code cannot be unmapped while a caller is in it.
 */
#ifndef PLEXUS_PROVIDER_H
#define PLEXUS_PROVIDER_H

#include <pthread.h>

#include <plexus/error.h>
#include <plexus/module.h>

struct px_provider_slot {
	pthread_rwlock_t lock;
	const char *what;     /* "dialplan engine", for messages */
	const void *provider; /* NULL when nobody provides the service */
	const char *name;     /* the provider's name, for messages */
	px_module *owner;
	px_module_resource *res;
};

#define PX_PROVIDER_SLOT_INIT(what_)                                                               \
	{                                                                                          \
		.lock = PTHREAD_RWLOCK_INITIALIZER, .what = (what_)                                \
	}

/* Fails when the slot is taken ("dialplan engine lua is already registered"). */
int px_provider_set(struct px_provider_slot *s, px_module *owner, const void *provider,
		    const char *name, px_err *err);
/* Empty the slot if provider is in it. */
void px_provider_clear(struct px_provider_slot *s, const void *provider);
/* The provider with its module marked busy, or NULL; give it back with
 * px_provider_put(owner) when done. */
const void *px_provider_get(struct px_provider_slot *s, px_module **owner);
void px_provider_put(px_module *owner);

#endif
