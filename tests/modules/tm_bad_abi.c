/*
 * Test module: declares a module ABI version that no plexusd has, as a
 * module built against another release would; the loader must refuse it.
 */
#include <plexus/module.h>

static int abi_load(px_module *self)
{
	return 0;
}

static int abi_unload(px_module *self)
{
	return 0;
}

__attribute__((visibility("default"))) const struct px_module_info px_module_info = {
	.abi_version = PX_MODULE_ABI_VERSION + 1000,
	.info_size = sizeof(struct px_module_info),
	.name = "tm_bad_abi",
	.description = "test: wrong ABI version",
	.kind = PX_MODULE_RESOURCE,
	.load = abi_load,
	.unload = abi_unload,
};
