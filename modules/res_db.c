/*
 * res_db: a persistent key/value database in the store, organised as
 * families and keys ("/family/key" = value), with the console commands an
 * Asterisk administrator knows from AstDB: database show, showkey, get, put,
 * del and deltree. Later the dialplan's DB() function reads and writes the
 * same table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/cli.h>
#include <plexus/log.h>
#include <plexus/module.h>
#include <plexus/store.h>

static const struct px_store_migration db_schema[] = {
	{1, "key/value table",
	 "CREATE TABLE px_db (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);"},
};

static px_store *store(void)
{
	return px_store_default();
}

/* Run a statement with up to three text parameters and print each result
 * row as "key : value". Returns rows printed, or -1. */
static int query_print(px_cli *cli, const char *sql, const char *a, const char *b)
{
	px_store_stmt *st;
	px_err err = {""};
	int rows = 0, rc;

	if (px_store_prepare(store(), sql, &st, &err) < 0) {
		px_cli_printf(cli, "Database error: %s\n", err.msg);
		return -1;
	}
	if (a)
		px_store_bind_text(st, 1, a);
	if (b)
		px_store_bind_text(st, 2, b);
	while ((rc = px_store_step(st, &err)) == PX_STORE_ROW) {
		px_cli_printf(cli, "%-50s: %-25s\n", px_store_column_text(st, 0),
			      px_store_column_text(st, 1));
		rows++;
	}
	px_store_finalize(st);
	if (rc < 0) {
		px_cli_printf(cli, "Database error: %s\n", err.msg);
		return -1;
	}
	return rows;
}

/* Keys under a prefix: "/fam" matches "/fam/..." but not "/family/...". */
static char *tree_pattern(const char *family, const char *keytree)
{
	char *out;

	if (asprintf(&out, "/%s%s%s/*", family, keytree ? "/" : "", keytree ? keytree : "") < 0)
		return NULL;
	return out;
}

static enum px_cli_status cmd_show(px_cli *cli, int argc, char **argv)
{
	int rows;

	if (argc > 4)
		return PX_CLI_SHOWUSAGE;
	if (argc == 2) {
		rows = query_print(cli, "SELECT key, value FROM px_db ORDER BY key", NULL, NULL);
	} else {
		char *pattern = tree_pattern(argv[2], argc == 4 ? argv[3] : NULL);
		char exact[512];
		snprintf(exact, sizeof(exact), "/%s/%s", argv[2], argc == 4 ? argv[3] : "");
		rows = query_print(cli,
				   "SELECT key, value FROM px_db WHERE key GLOB ?1 OR key = ?2 "
				   "ORDER BY key",
				   pattern, exact);
		free(pattern);
	}
	if (rows < 0)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, "%d result%s found.\n", rows, rows == 1 ? "" : "s");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_showkey(px_cli *cli, int argc, char **argv)
{
	char *pattern;
	int rows;

	if (argc != 3)
		return PX_CLI_SHOWUSAGE;
	if (asprintf(&pattern, "*/%s", argv[2]) < 0)
		return PX_CLI_FAILURE;
	rows = query_print(cli, "SELECT key, value FROM px_db WHERE key GLOB ?1 ORDER BY key",
			   pattern, NULL);
	free(pattern);
	if (rows < 0)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, "%d result%s found.\n", rows, rows == 1 ? "" : "s");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_get(px_cli *cli, int argc, char **argv)
{
	char key[1024];
	px_store_stmt *st;
	px_err err = {""};
	int rc;

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	snprintf(key, sizeof(key), "/%s/%s", argv[2], argv[3]);
	if (px_store_prepare(store(), "SELECT value FROM px_db WHERE key = ?1", &st, &err) < 0) {
		px_cli_printf(cli, "Database error: %s\n", err.msg);
		return PX_CLI_FAILURE;
	}
	px_store_bind_text(st, 1, key);
	rc = px_store_step(st, &err);
	if (rc == PX_STORE_ROW)
		px_cli_printf(cli, "Value: %s\n", px_store_column_text(st, 0));
	else if (rc == PX_STORE_DONE)
		px_cli_printf(cli, "Database entry not found.\n");
	else
		px_cli_printf(cli, "Database error: %s\n", err.msg);
	px_store_finalize(st);
	return rc == PX_STORE_ROW ? PX_CLI_SUCCESS : PX_CLI_FAILURE;
}

/* Run a write with text parameters; returns rows changed or -1. */
static int write_stmt(px_cli *cli, const char *sql, const char *a, const char *b)
{
	px_store_stmt *st;
	px_err err = {""};
	int64_t changed;

	if (px_store_prepare(store(), sql, &st, &err) < 0) {
		px_cli_printf(cli, "Database error: %s\n", err.msg);
		return -1;
	}
	px_store_bind_text(st, 1, a);
	if (b)
		px_store_bind_text(st, 2, b);
	if (px_store_step(st, &err) < 0) {
		px_cli_printf(cli, "Database error: %s\n", err.msg);
		px_store_finalize(st);
		return -1;
	}
	changed = px_store_changes(st);
	px_store_finalize(st);
	return (int)changed;
}

static enum px_cli_status cmd_put(px_cli *cli, int argc, char **argv)
{
	char key[1024];

	if (argc != 5)
		return PX_CLI_SHOWUSAGE;
	snprintf(key, sizeof(key), "/%s/%s", argv[2], argv[3]);
	if (write_stmt(cli,
		       "INSERT INTO px_db (key, value) VALUES (?1, ?2) "
		       "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
		       key, argv[4]) < 0)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, "Updated database successfully\n");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_del(px_cli *cli, int argc, char **argv)
{
	char key[1024];
	int n;

	if (argc != 4)
		return PX_CLI_SHOWUSAGE;
	snprintf(key, sizeof(key), "/%s/%s", argv[2], argv[3]);
	n = write_stmt(cli, "DELETE FROM px_db WHERE key = ?1", key, NULL);
	if (n < 0)
		return PX_CLI_FAILURE;
	if (n == 0) {
		px_cli_printf(cli, "Database entry does not exist.\n");
		return PX_CLI_FAILURE;
	}
	px_cli_printf(cli, "Database entry removed.\n");
	return PX_CLI_SUCCESS;
}

static enum px_cli_status cmd_deltree(px_cli *cli, int argc, char **argv)
{
	char *pattern;
	int n;

	if (argc != 3 && argc != 4)
		return PX_CLI_SHOWUSAGE;
	pattern = tree_pattern(argv[2], argc == 4 ? argv[3] : NULL);
	if (!pattern)
		return PX_CLI_FAILURE;
	n = write_stmt(cli, "DELETE FROM px_db WHERE key GLOB ?1", pattern, NULL);
	free(pattern);
	if (n < 0)
		return PX_CLI_FAILURE;
	px_cli_printf(cli, "%d database entr%s removed.\n", n, n == 1 ? "y" : "ies");
	return PX_CLI_SUCCESS;
}

static const struct px_cli_command db_commands[] = {
	{"database show", "Shows database contents",
	 "Usage: database show [family [keytree]]\n"
	 "       Shows the contents of the database, optionally only a family or\n"
	 "       a key tree within a family.",
	 cmd_show, NULL, PX_ROLE_MONITOR},
	{"database showkey", "Shows database contents",
	 "Usage: database showkey <keytree>\n"
	 "       Shows the entries whose key ends in keytree, in every family.",
	 cmd_showkey, NULL, PX_ROLE_ADMIN},
	{"database get", "Gets database value",
	 "Usage: database get <family> <key>\n"
	 "       Prints the value of a key in a family.",
	 cmd_get, NULL, PX_ROLE_ADMIN},
	{"database put", "Adds/updates database value",
	 "Usage: database put <family> <key> <value>\n"
	 "       Adds or updates an entry in the database.",
	 cmd_put, NULL, PX_ROLE_ADMIN},
	{"database del", "Removes database key/value",
	 "Usage: database del <family> <key>\n"
	 "       Deletes an entry from the database.",
	 cmd_del, NULL, PX_ROLE_ADMIN},
	{"database deltree", "Removes database keytree/values",
	 "Usage: database deltree <family> [keytree]\n"
	 "       Deletes a family, or a key tree within a family.",
	 cmd_deltree, NULL, PX_ROLE_ADMIN},
};

#define NCOMMANDS (sizeof(db_commands) / sizeof(db_commands[0]))

static int db_load(px_module *self)
{
	px_err err = {""};

	if (!store()) {
		px_log_error("res_db: no store is open");
		return -1;
	}
	if (px_store_migrate(store(), "res_db", db_schema, sizeof(db_schema) / sizeof(db_schema[0]),
			     &err) < 0) {
		px_log_error("res_db: %s", err.msg);
		return -1;
	}
	if (px_cli_register(self, db_commands, NCOMMANDS, &err) < 0) {
		px_log_error("res_db: %s", err.msg);
		return -1;
	}
	return 0;
}

static int db_unload(px_module *self)
{
	px_cli_unregister(db_commands, NCOMMANDS);
	return 0;
}

PX_MODULE(.name = "res_db", .description = "Key/value database in the store (AstDB)",
	  .kind = PX_MODULE_RESOURCE, .load = db_load, .unload = db_unload);
