/*
 * Provider slots (provider.h): registration of the one module that provides
 * a core service, its release on unload, and lending it out while its
 * module is marked busy.
 */
#include <plexus/error.h>

#include "loader.h"
#include "provider.h"

/* The loader's release callback: the owner unloaded with the slot filled. */
static void slot_release(void *obj)
{
	struct px_provider_slot *s = obj;

	pthread_rwlock_wrlock(&s->lock);
	s->provider = NULL;
	s->name = NULL;
	s->owner = NULL;
	s->res = NULL;
	pthread_rwlock_unlock(&s->lock);
}

int px_provider_set(struct px_provider_slot *s, px_module *owner, const void *provider,
		    const char *name, px_err *err)
{
	pthread_rwlock_wrlock(&s->lock);
	if (s->provider) {
		px_err_set(err, "%s %s is already registered", s->what, s->name);
		pthread_rwlock_unlock(&s->lock);
		return -1;
	}
	s->provider = provider;
	s->name = name;
	s->owner = owner;
	s->res = px_module_track(owner, s->what, slot_release, s);
	pthread_rwlock_unlock(&s->lock);
	return 0;
}

void px_provider_clear(struct px_provider_slot *s, const void *provider)
{
	px_module_resource *res = NULL;

	pthread_rwlock_wrlock(&s->lock);
	if (s->provider == provider) {
		res = s->res;
		s->provider = NULL;
		s->name = NULL;
		s->owner = NULL;
		s->res = NULL;
	}
	pthread_rwlock_unlock(&s->lock);
	px_module_untrack(res);
}

const void *px_provider_get(struct px_provider_slot *s, px_module **owner)
{
	const void *p;

	pthread_rwlock_rdlock(&s->lock);
	p = s->provider;
	*owner = p ? s->owner : NULL;
	if (*owner)
		px_module_busy_enter(*owner);
	pthread_rwlock_unlock(&s->lock);
	return p;
}

void px_provider_put(px_module *owner)
{
	if (owner)
		px_module_busy_leave(owner);
}
