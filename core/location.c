/*
 * Dispatch of the location service to the registrar module that provides
 * it, with the module marked busy during each call into it.
 */
#include <plexus/location.h>

#include "provider.h"

static struct px_provider_slot registrar_slot = PX_PROVIDER_SLOT_INIT("registrar");

int px_registrar_register(px_module *owner, const struct px_registrar *r, px_err *err)
{
	return px_provider_set(&registrar_slot, owner, r, r->name, err);
}

void px_registrar_unregister(const struct px_registrar *r)
{
	px_provider_clear(&registrar_slot, r);
}

int px_location_update(const struct px_register_request *req, px_register_done done, void *ctx,
		       px_err *err)
{
	px_module *owner;
	const struct px_registrar *r = px_provider_get(&registrar_slot, &owner);
	int rc;

	if (!r)
		return px_err_set(err, "no registrar module is loaded");
	rc = r->update(req, done, ctx, err);
	px_provider_put(owner);
	return rc;
}

size_t px_location_lookup(const char *aor, struct px_binding *out, size_t max)
{
	px_module *owner;
	const struct px_registrar *r = px_provider_get(&registrar_slot, &owner);
	size_t n = r ? r->lookup(aor, out, max) : 0;

	px_provider_put(owner);
	return n;
}

int px_location_list(const char *aor, struct px_binding **out, size_t *count, px_err *err)
{
	px_module *owner;
	const struct px_registrar *r = px_provider_get(&registrar_slot, &owner);
	long n;

	*out = NULL;
	*count = 0;
	if (!r)
		return px_err_set(err, "no registrar module is loaded");
	n = r->list ? r->list(aor, out) : -1;
	px_provider_put(owner);
	if (n < 0)
		return px_err_set(err,
				  r->list ? "out of memory" : "the registrar cannot list bindings");
	*count = (size_t)n;
	return 0;
}
