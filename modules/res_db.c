/*
 * res_db: a persistent key/value database in the store, organised as
 * families and keys ("/family/key" = value), with the console commands an
 * Asterisk administrator knows from AstDB: database show, showkey, get, put,
 * del and deltree; and the dialplan functions over the same table: DB
 * (read and write), DB_EXISTS and DB_DELETE, as Asterisk names them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <plexus/cli.h>
#include <plexus/func.h>
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

/* ---------------------------------------------------------------- dialplan functions */

/* "family/key" (the key may hold further '/') into "/family/key". */
static int func_key(const char *fn, const char *args, char *key, size_t size, px_err *err)
{
	const char *slash = strchr(args, '/');

	if (!slash || slash == args || !slash[1])
		return px_err_set(err, "%s: the argument must be family/key, got '%s'", fn, args);
	if ((size_t)snprintf(key, size, "/%s", args) >= size)
		return px_err_set(err, "%s: family/key too long", fn);
	return 0;
}

/* The value of key into buf: 1 found, 0 not found, -1 error. */
static int db_lookup(const char *key, char *buf, size_t size, px_err *err)
{
	px_store_stmt *st;
	int rc;

	if (px_store_prepare(store(), "SELECT value FROM px_db WHERE key = ?1", &st, err) < 0)
		return -1;
	px_store_bind_text(st, 1, key);
	rc = px_store_step(st, err);
	if (rc == PX_STORE_ROW)
		snprintf(buf, size, "%s", px_store_column_text(st, 0));
	px_store_finalize(st);
	return rc < 0 ? -1 : rc == PX_STORE_ROW;
}

static int db_func_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	char key[1024];

	if (func_key("DB", args, key, sizeof(key), err) < 0)
		return -1;
	if (db_lookup(key, buf, size, err) < 0)
		return -1;
	return 0;
}

static int db_func_write(px_channel *ch, const char *args, const char *value, px_err *err)
{
	char key[1024];
	px_store_stmt *st;
	int rc;

	if (func_key("DB", args, key, sizeof(key), err) < 0)
		return -1;
	if (px_store_prepare(store(),
			     "INSERT INTO px_db (key, value) VALUES (?1, ?2) "
			     "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
			     &st, err) < 0)
		return -1;
	px_store_bind_text(st, 1, key);
	px_store_bind_text(st, 2, value);
	rc = px_store_step(st, err);
	px_store_finalize(st);
	return rc < 0 ? -1 : 0;
}

static int db_exists_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	char key[1024], value[16];
	int found;

	if (func_key("DB_EXISTS", args, key, sizeof(key), err) < 0)
		return -1;
	found = db_lookup(key, value, sizeof(value), err);
	if (found < 0)
		return -1;
	snprintf(buf, size, "%d", found);
	return 0;
}

/* Returns the value it deleted, as Asterisk's DB_DELETE does. */
static int db_delete_read(px_channel *ch, const char *args, char *buf, size_t size, px_err *err)
{
	char key[1024];
	px_store_stmt *st;
	int rc;

	if (func_key("DB_DELETE", args, key, sizeof(key), err) < 0)
		return -1;
	if (db_lookup(key, buf, size, err) < 0)
		return -1;
	if (px_store_prepare(store(), "DELETE FROM px_db WHERE key = ?1", &st, err) < 0)
		return -1;
	px_store_bind_text(st, 1, key);
	rc = px_store_step(st, err);
	px_store_finalize(st);
	return rc < 0 ? -1 : 0;
}

static const struct px_func db_funcs[] = {
	{
		.name = "DB",
		.synopsis = "Reads or writes a key of the database",
		.syntax = "DB(family/key)",
		.description = "Reads the value of key in family (empty when there is none), or\n"
			       "writes it (creating or replacing the entry). The same entries\n"
			       "as the 'database' console commands.",
		.read = db_func_read,
		.write = db_func_write,
	},
	{
		.name = "DB_DELETE",
		.synopsis = "Deletes a key of the database and returns its value",
		.syntax = "DB_DELETE(family/key)",
		.description = "Deletes key in family and returns the value it had (empty when\n"
			       "there was none).",
		.read = db_delete_read,
	},
	{
		.name = "DB_EXISTS",
		.synopsis = "Tells whether a key exists in the database",
		.syntax = "DB_EXISTS(family/key)",
		.description = "Returns 1 when key exists in family, 0 otherwise.",
		.read = db_exists_read,
	},
};

#define NFUNCS (sizeof(db_funcs) / sizeof(db_funcs[0]))

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
	for (size_t i = 0; i < NFUNCS; i++) {
		if (px_func_register(self, &db_funcs[i], &err) < 0) {
			px_log_error("res_db: %s", err.msg);
			while (i-- > 0)
				px_func_unregister(&db_funcs[i]);
			px_cli_unregister(db_commands, NCOMMANDS);
			return -1;
		}
	}
	return 0;
}

static int db_unload(px_module *self)
{
	for (size_t i = NFUNCS; i-- > 0;)
		px_func_unregister(&db_funcs[i]);
	px_cli_unregister(db_commands, NCOMMANDS);
	return 0;
}

PX_MODULE(.name = "res_db", .description = "Key/value database in the store (AstDB)",
	  .kind = PX_MODULE_RESOURCE, .load = db_load, .unload = db_unload);
