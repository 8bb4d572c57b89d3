/*
 * Test module: requires tm_base, so it must load after it, and tm_base is
 * in use (cannot be unloaded without force) while this one is loaded.
 */
#include <plexus/module.h>

static int dep_load(px_module *self)
{
	return 0;
}

static int dep_unload(px_module *self)
{
	return 0;
}

PX_MODULE(.name = "tm_dependent", .description = "test: requires tm_base",
	  .kind = PX_MODULE_APPLICATION, .requires = PX_MODULE_REQUIRES("tm_base"),
	  .load = dep_load, .unload = dep_unload);
