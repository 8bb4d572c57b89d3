/*
 * Test module: registers console commands and "forgets" to unregister them
 * in unload(), so the test can check that the loader releases whatever a
 * module left registered; one command prints a large output for the tests
 * of clients that vanish mid-output.
 */
#include <plexus/cli.h>
#include <plexus/module.h>

static enum px_cli_status cmd_hello(px_cli *cli, int argc, char **argv)
{
	px_cli_printf(cli, "hello from tm_cli\n");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_flood(px_cli *cli, int argc, char **argv)
{
	for (int i = 0; i < 200000; i++)
		px_cli_printf(cli, "flood line %d of 200000 ..............................\n", i);
	return PX_CLI_SUCCESS;
}

static void complete_color(px_cli_completion *c, int argc, char **argv, int pos)
{
	if (pos == 3) {
		px_cli_complete_add(c, "red");
		px_cli_complete_add(c, "green");
		px_cli_complete_add(c, "grey");
	}
}

static const struct px_cli_command commands[] = {
	{"tm cli hello", "Say hello", "Usage: tm cli hello", cmd_hello, NULL, PX_ROLE_ADMIN},
	{"tm cli flood", "Print 200000 lines", "Usage: tm cli flood", cmd_flood, NULL,
	 PX_ROLE_ADMIN},
	{"tm cli color", "Complete a color", "Usage: tm cli color <red|green|grey>", cmd_hello,
	 complete_color, PX_ROLE_ADMIN},
};

static int cli_load(px_module *self)
{
	return px_cli_register(self, commands, sizeof(commands) / sizeof(commands[0]), NULL);
}

static int cli_unload(px_module *self)
{
	return 0; /* deliberately leaves its commands registered */
}

PX_MODULE(.name = "tm_cli", .description = "test: leaves commands registered",
	  .kind = PX_MODULE_RESOURCE, .load = cli_load, .unload = cli_unload);
