/*
 * Test module: tm_cycle_b requires tm_cycle_a, which requires it back;
 * the loader must report the cycle naming both and load neither.
 */
#include <plexus/module.h>

static int cycle_load(px_module *self)
{
	return 0;
}

static int cycle_unload(px_module *self)
{
	return 0;
}

PX_MODULE(.name = "tm_cycle_b", .description = "test: dependency cycle", .kind = PX_MODULE_RESOURCE,
	  .requires = PX_MODULE_REQUIRES("tm_cycle_a"), .load = cycle_load, .unload = cycle_unload);
