/*
 * Test module: its load() registers a console command and then fails, as a
 * module whose configuration is broken would; the loader must report it,
 * release the command it left behind, and carry on.
 */
#include <plexus/cli.h>
#include <plexus/log.h>
#include <plexus/module.h>

static enum px_cli_status cmd_never(px_cli *cli, int argc, char **argv)
{
	return PX_CLI_SUCCESS;
}

static const struct px_cli_command commands[] = {
	{"tm fails cmd", "Must vanish", "Usage: tm fails cmd", cmd_never, NULL, PX_ROLE_ADMIN},
};

static int fails_load(px_module *self)
{
	px_cli_register(self, commands, 1, NULL);
	px_log_error("tm_load_fails: refusing to load (on purpose)");
	return -1;
}

static int fails_unload(px_module *self)
{
	return 0;
}

PX_MODULE(.name = "tm_load_fails", .description = "test: load fails", .kind = PX_MODULE_RESOURCE,
	  .load = fails_load, .unload = fails_unload);
