/*
 * Test module for tests/unit/test_loader: a module with no requirements
 * that counts its loads and unloads in the store-free way the test can see
 * (an exported counter), and registers one console command.
 */
#include <plexus/cli.h>
#include <plexus/module.h>

__attribute__((visibility("default"))) int tm_base_loads;
__attribute__((visibility("default"))) int tm_base_unloads;

static enum px_cli_status cmd_ping(px_cli *cli, int argc, char **argv)
{
	px_cli_printf(cli, "tm_base pong\n");
	return PX_CLI_SUCCESS;
}

static const struct px_cli_command commands[] = {
	{"tm base ping", "Answer pong", "Usage: tm base ping", cmd_ping, NULL, PX_ROLE_ADMIN},
};

static int base_load(px_module *self)
{
	tm_base_loads++;
	return px_cli_register(self, commands, 1, NULL);
}

static int base_unload(px_module *self)
{
	tm_base_unloads++;
	px_cli_unregister(commands, 1);
	return 0;
}

PX_MODULE(.name = "tm_base", .description = "test: base module", .kind = PX_MODULE_RESOURCE,
	  .load = base_load, .unload = base_unload);
