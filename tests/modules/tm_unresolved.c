/*
 * Test module: calls a function that plexusd does not export. Modules are
 * linked with -z now, so the loader must see the unresolved symbol when it
 * opens the module, not crash when the function is first called.
 */
#include <plexus/module.h>

void px_function_that_does_not_exist(void);

static int unresolved_load(px_module *self)
{
	px_function_that_does_not_exist();
	return 0;
}

static int unresolved_unload(px_module *self)
{
	return 0;
}

PX_MODULE(.name = "tm_unresolved", .description = "test: unresolved symbol",
	  .kind = PX_MODULE_RESOURCE, .load = unresolved_load, .unload = unresolved_unload);
