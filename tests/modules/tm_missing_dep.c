/*
 * Test module: requires a module that does not exist, so the loader must
 * refuse it with one line naming both.
 */
#include <plexus/module.h>

static int md_load(px_module *self)
{
	return 0;
}

static int md_unload(px_module *self)
{
	return 0;
}

PX_MODULE(.name = "tm_missing_dep", .description = "test: requires a missing module",
	  .kind = PX_MODULE_RESOURCE, .requires = PX_MODULE_REQUIRES("tm_does_not_exist"),
	  .load = md_load, .unload = md_unload);
