/*
 * Dispatch of the location service to the registrar module that provides
 * it, with the module marked busy during each call into it.
 */
#include <pthread.h>
#include <stdlib.h>

#include <plexus/location.h>

#include "loader.h"

static pthread_rwlock_t registrar_lock = PTHREAD_RWLOCK_INITIALIZER;
static const struct px_registrar *registrar;
static px_module *registrar_owner;
static px_module_resource *registrar_res;

static void registrar_release(void *obj)
{
	pthread_rwlock_wrlock(&registrar_lock);
	if (registrar == obj) {
		registrar = NULL;
		registrar_owner = NULL;
		registrar_res = NULL;
	}
	pthread_rwlock_unlock(&registrar_lock);
}

int px_registrar_register(px_module *owner, const struct px_registrar *r, px_err *err)
{
	pthread_rwlock_wrlock(&registrar_lock);
	if (registrar) {
		const char *name = registrar->name;
		pthread_rwlock_unlock(&registrar_lock);
		return px_err_set(err, "registrar %s is already registered", name);
	}
	registrar = r;
	registrar_owner = owner;
	registrar_res = px_module_track(owner, "registrar", registrar_release, (void *)r);
	pthread_rwlock_unlock(&registrar_lock);
	return 0;
}

void px_registrar_unregister(const struct px_registrar *r)
{
	px_module_resource *res = NULL;

	pthread_rwlock_wrlock(&registrar_lock);
	if (registrar == r) {
		res = registrar_res;
		registrar = NULL;
		registrar_owner = NULL;
		registrar_res = NULL;
	}
	pthread_rwlock_unlock(&registrar_lock);
	px_module_untrack(res);
}

/* Take the registrar for one call; NULL when there is none. */
static const struct px_registrar *acquire(px_module **owner)
{
	const struct px_registrar *r;

	pthread_rwlock_rdlock(&registrar_lock);
	r = registrar;
	*owner = registrar_owner;
	if (*owner)
		px_module_busy_enter(*owner);
	pthread_rwlock_unlock(&registrar_lock);
	return r;
}

int px_location_update(const struct px_register_request *req, px_register_done done, void *ctx,
		       px_err *err)
{
	px_module *owner;
	const struct px_registrar *r = acquire(&owner);
	int rc;

	if (!r)
		return px_err_set(err, "no registrar module is loaded");
	rc = r->update(req, done, ctx, err);
	if (owner)
		px_module_busy_leave(owner);
	return rc;
}

size_t px_location_lookup(const char *aor, struct px_binding *out, size_t max)
{
	px_module *owner;
	const struct px_registrar *r = acquire(&owner);
	size_t n;

	if (!r)
		return 0;
	n = r->lookup(aor, out, max);
	if (owner)
		px_module_busy_leave(owner);
	return n;
}
