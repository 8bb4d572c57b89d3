/*
 * Test module for tests/unit/test_loader: the only test module with a
 * reload() callback. It counts its reloads, and the test steers it through
 * exported ints: reload() fails while tm_reload_fail is set, and unload()
 * refuses while tm_reload_refuse_unload is set, so that the loader's
 * handling of a failed reload and of a refused unload can be checked.
 */
#include <plexus/module.h>

__attribute__((visibility("default"))) int tm_reload_calls;
__attribute__((visibility("default"))) int tm_reload_fail;
__attribute__((visibility("default"))) int tm_reload_refuse_unload;

static int reload_load(px_module *self)
{
	return 0;
}

static int reload_unload(px_module *self)
{
	return tm_reload_refuse_unload ? -1 : 0;
}

static int reload_reload(px_module *self)
{
	tm_reload_calls++;
	return tm_reload_fail ? -1 : 0;
}

PX_MODULE(.name = "tm_reload", .description = "test: reload and refused unload",
	  .kind = PX_MODULE_RESOURCE, .load = reload_load, .unload = reload_unload,
	  .reload = reload_reload);
