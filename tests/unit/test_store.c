/*
 * Unit tests of the store (core/store.c): opening a real database file in WAL
 * mode, the clear error for a missing directory, migrations per owner (order,
 * idempotence, all-or-nothing failure, downgrade protection), persistence
 * across close and open, the bind/step/column round trip, transactions and
 * their exclusion of other threads and other connections. Every test works
 * in a temporary directory that the suite removes at the end.
 */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include <plexus/store.h>

/* Like CU_ASSERT_STRING_EQUAL, but a NULL actual fails instead of crashing. */
#define ASSERT_TEXT(actual, expected)                                                              \
	do {                                                                                       \
		const char *text_ = (actual);                                                      \
		CU_ASSERT_PTR_NOT_NULL(text_);                                                     \
		if (text_) {                                                                       \
			CU_ASSERT_STRING_EQUAL(text_, expected);                                   \
		}                                                                                  \
	} while (0)

static char tmpdir[] = "/tmp/plexus-test-store-XXXXXX";

static void db_path(char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/%s", tmpdir, name);
}

static int suite_init(void)
{
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	return remove(path);
}

static int suite_cleanup(void)
{
	return nftw(tmpdir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* Open name in the temporary directory; fails the test (fatally) if it cannot. */
static px_store *open_db(const char *name)
{
	char path[PATH_MAX];
	px_store *st = NULL;
	px_err err = {""};
	int rc;

	db_path(path, sizeof(path), name);
	rc = px_store_open(path, &st, &err);
	if (rc != 0)
		fprintf(stderr, "open %s: %s\n", path, err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
	CU_ASSERT_PTR_NOT_NULL_FATAL(st);
	return st;
}

/* First column of the first row of sql as an integer; INT64_MIN on failure. */
static int64_t query_int(px_store *st, const char *sql)
{
	px_store_stmt *s = NULL;
	px_err err = {""};
	int64_t v = INT64_MIN;

	if (px_store_prepare(st, sql, &s, &err) != 0) {
		fprintf(stderr, "%s: %s\n", sql, err.msg);
		return INT64_MIN;
	}
	if (px_store_step(s, &err) == PX_STORE_ROW)
		v = px_store_column_int64(s, 0);
	px_store_finalize(s);
	return v;
}

/* First column of the first row of sql, copied (caller frees); NULL on failure. */
static char *query_text(px_store *st, const char *sql)
{
	px_store_stmt *s = NULL;
	px_err err = {""};
	char *v = NULL;

	if (px_store_prepare(st, sql, &s, &err) != 0)
		return NULL;
	if (px_store_step(s, &err) == PX_STORE_ROW && px_store_column_text(s, 0))
		v = strdup(px_store_column_text(s, 0));
	px_store_finalize(s);
	return v;
}

static int64_t table_exists(px_store *st, const char *table)
{
	char sql[256];

	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", table);
	return query_int(st, sql);
}

static const struct px_store_migration base_migrations[] = {
        {1, "create items", "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"},
        {2, "add colour", "ALTER TABLE items ADD COLUMN colour TEXT"},
        {3, "seed", "INSERT INTO items (name, colour) VALUES ('first', 'red')"},
};
#define N_BASE (sizeof(base_migrations) / sizeof(base_migrations[0]))

static void migrate_base(px_store *st, const char *owner)
{
	px_err err = {""};
	int rc = px_store_migrate(st, owner, base_migrations, N_BASE, &err);

	if (rc != 0)
		fprintf(stderr, "migrate %s: %s\n", owner, err.msg);
	CU_ASSERT_EQUAL_FATAL(rc, 0);
}

/* ---------------------------------------------------------------- open */

static void test_open_creates_wal_file(void)
{
	char path[PATH_MAX];
	px_store *st;
	struct stat sb;
	char *mode;
	px_err err = {""};

	st = open_db("open.db");
	db_path(path, sizeof(path), "open.db");
	ASSERT_TEXT(px_store_path(st), path);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT_TRUE(S_ISREG(sb.st_mode));

	mode = query_text(st, "PRAGMA journal_mode");
	ASSERT_TEXT(mode, "wal");
	free(mode);
	CU_ASSERT_EQUAL(query_int(st, "PRAGMA synchronous"), 1); /* NORMAL */
	CU_ASSERT_EQUAL(query_int(st, "PRAGMA foreign_keys"), 1);
	CU_ASSERT_EQUAL(query_int(st, "PRAGMA busy_timeout"), 5000);
	CU_ASSERT_EQUAL(table_exists(st, "px_schema"), 1);
	CU_ASSERT_EQUAL(px_store_schema_version(st, "nobody", &err), 0);
	px_store_close(st);
}

static void test_open_missing_directory(void)
{
	char dir[PATH_MAX], path[PATH_MAX + 16];
	px_store *st = (px_store *)&st; /* must be reset to NULL */
	px_err err = {""};
	struct stat sb;

	db_path(dir, sizeof(dir), "no-such-dir");
	snprintf(path, sizeof(path), "%s/x.db", dir);
	CU_ASSERT_EQUAL(px_store_open(path, &st, &err), -1);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, strerror(ENOENT)));
	CU_ASSERT_NOT_EQUAL(stat(dir, &sb), 0); /* not created behind our back */
}

static void test_open_not_a_database(void)
{
	char path[PATH_MAX], junk[4096];
	px_store *st = NULL;
	px_err err = {""};
	FILE *f;

	db_path(path, sizeof(path), "junk.db");
	f = fopen(path, "w");
	CU_ASSERT_PTR_NOT_NULL_FATAL(f);
	memset(junk, 'x', sizeof(junk));
	CU_ASSERT_EQUAL(fwrite(junk, 1, sizeof(junk), f), sizeof(junk));
	fclose(f);

	CU_ASSERT_EQUAL(px_store_open(path, &st, &err), -1);
	CU_ASSERT_PTR_NULL(st);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, path));
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a database"));
}

static void test_default_store(void)
{
	px_store *st = open_db("default.db");

	CU_ASSERT_PTR_NULL(px_store_default());
	px_store_set_default(st);
	CU_ASSERT_PTR_EQUAL(px_store_default(), st);
	px_store_close(st);
	CU_ASSERT_PTR_NULL(px_store_default()); /* no dangling default */
	px_store_set_default(NULL);
}

/* ---------------------------------------------------------------- migrations */

static void test_migrations_apply_in_order(void)
{
	px_store *st = open_db("migrate.db");
	px_store_stmt *s = NULL;
	px_err err = {""};

	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 0);
	migrate_base(st, "items");
	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 3);

	/* Version 3 used the column version 2 added. */
	CU_ASSERT_EQUAL_FATAL(px_store_prepare(st, "SELECT name, colour FROM items", &s, &err), 0);
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_ROW);
	ASSERT_TEXT(px_store_column_text(s, 0), "first");
	ASSERT_TEXT(px_store_column_text(s, 1), "red");
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_DONE);
	px_store_finalize(s);

	/* Again: nothing to do, the seed row is not inserted twice. */
	migrate_base(st, "items");
	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 3);
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM items"), 1);
	px_store_close(st);
}

static void test_migration_versions_validated(void)
{
	static const struct px_store_migration dup[] = {
	        {1, "one", "CREATE TABLE v1 (a)"},
	        {1, "one again", "CREATE TABLE v2 (a)"},
	};
	static const struct px_store_migration down[] = {
	        {2, "two", "CREATE TABLE v1 (a)"},
	        {1, "one", "CREATE TABLE v2 (a)"},
	};
	static const struct px_store_migration zero[] = {
	        {0, "zero", "CREATE TABLE v1 (a)"},
	};
	px_store *st = open_db("validate.db");
	px_err err = {""};

	CU_ASSERT_EQUAL(px_store_migrate(st, "val", dup, 2, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.msg, "val: migration versions must increase");
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_store_migrate(st, "val", down, 2, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.msg, "val: migration versions must increase");
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_store_migrate(st, "val", zero, 1, &err), -1);
	CU_ASSERT_STRING_EQUAL(err.msg, "val: migration versions must increase");
	CU_ASSERT_EQUAL(px_store_schema_version(st, "val", &err), 0);
	CU_ASSERT_EQUAL(table_exists(st, "v1"), 0);
	CU_ASSERT_EQUAL(table_exists(st, "v2"), 0);
	px_store_close(st);
}

static void test_failed_migration_changes_nothing(void)
{
	static const struct px_store_migration more[] = {
	        {1, "create items",
	         "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"},
	        {2, "add colour", "ALTER TABLE items ADD COLUMN colour TEXT"},
	        {3, "seed", "INSERT INTO items (name, colour) VALUES ('first', 'red')"},
	        {4, "create extras", "CREATE TABLE extras (x INTEGER)"},
	        {5, "break things",
	         "INSERT INTO items (name) VALUES ('fifth'); CREATE TABLOID oops (x)"},
	};
	static const char prefix[] = "items: migration 5 (break things) failed: ";
	px_store *st = open_db("fail.db");
	px_err err = {""};

	migrate_base(st, "items");
	CU_ASSERT_EQUAL(px_store_migrate(st, "items", more, 5, &err), -1);
	CU_ASSERT_EQUAL(strncmp(err.msg, prefix, strlen(prefix)), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "syntax error"));

	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 3);
	CU_ASSERT_EQUAL(table_exists(st, "extras"), 0);                  /* migration 4 undone */
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM items"), 1); /* and 5's insert */

	/* The store is not left inside a transaction. */
	CU_ASSERT_EQUAL(px_store_begin(st, &err), 0);
	CU_ASSERT_EQUAL(px_store_commit(st, &err), 0);

	/* Fixed, the same list applies 4 and 5. */
	{
		struct px_store_migration fixed[5];

		memcpy(fixed, more, sizeof(fixed));
		fixed[4].sql = "INSERT INTO extras (x) VALUES (5)";
		CU_ASSERT_EQUAL(px_store_migrate(st, "items", fixed, 5, &err), 0);
		CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 5);
		CU_ASSERT_EQUAL(query_int(st, "SELECT x FROM extras"), 5);
	}
	px_store_close(st);
}

static void test_migration_cannot_commit(void)
{
	static const struct px_store_migration sneaky[] = {
	        {1, "sneaky", "CREATE TABLE early (a); COMMIT; CREATE TABLE late (b)"},
	};
	px_store *st = open_db("sneaky.db");
	px_err err = {""};

	CU_ASSERT_EQUAL(px_store_migrate(st, "sneaky", sneaky, 1, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "sneaky: migration 1 (sneaky) failed: "));
	CU_ASSERT_EQUAL(table_exists(st, "early"), 0);
	CU_ASSERT_EQUAL(table_exists(st, "late"), 0);
	CU_ASSERT_EQUAL(px_store_schema_version(st, "sneaky", &err), 0);
	px_store_close(st);
}

static void test_owners_independent(void)
{
	static const struct px_store_migration other[] = {
	        {1, "create other", "CREATE TABLE other_t (a TEXT)"},
	};
	px_store *st = open_db("owners.db");
	px_err err = {""};

	migrate_base(st, "items");
	CU_ASSERT_EQUAL(px_store_migrate(st, "other", other, 1, &err), 0);
	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 3);
	CU_ASSERT_EQUAL(px_store_schema_version(st, "other", &err), 1);
	CU_ASSERT_EQUAL(px_store_schema_version(st, "third", &err), 0);
	CU_ASSERT_EQUAL(table_exists(st, "other_t"), 1);
	px_store_close(st);
}

static void test_downgrade_refused(void)
{
	static const struct px_store_migration old[] = {
	        {1, "create items",
	         "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)"},
	        {2, "add colour", "ALTER TABLE items ADD COLUMN colour TEXT"},
	};
	static const struct px_store_migration none_known[] = {
	        {1, "unused", "CREATE TABLE unused (a)"},
	};
	px_store *st = open_db("downgrade.db");
	px_err err = {""};

	migrate_base(st, "items");
	CU_ASSERT_EQUAL(px_store_migrate(st, "items", old, 2, &err), -1);
	CU_ASSERT_STRING_EQUAL(
	        err.msg, "items: database schema version 3 is newer than this build knows (2)");
	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 3);
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM items"), 1);

	CU_ASSERT_EQUAL(px_store_migrate(st, "items", none_known, 1, &err), -1);
	CU_ASSERT_EQUAL(table_exists(st, "unused"), 0);
	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 3);
	px_store_close(st);
}

static void test_data_persists(void)
{
	char path[PATH_MAX], wal[PATH_MAX + 8];
	px_store *st = open_db("persist.db");
	px_err err = {""};
	struct stat sb;
	char *name;

	migrate_base(st, "items");
	CU_ASSERT_EQUAL(px_store_exec(st, "INSERT INTO items (name) VALUES ('second')", &err), 0);
	px_store_close(st);

	/* A clean close checkpoints and removes the WAL: the connection is gone. */
	db_path(path, sizeof(path), "persist.db");
	snprintf(wal, sizeof(wal), "%s-wal", path);
	CU_ASSERT_NOT_EQUAL(stat(wal, &sb), 0);
	CU_ASSERT_EQUAL(stat(path, &sb), 0);
	CU_ASSERT_TRUE(sb.st_size > 0);

	st = open_db("persist.db");
	CU_ASSERT_EQUAL(px_store_schema_version(st, "items", &err), 3);
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM items"), 2);
	name = query_text(st, "SELECT name FROM items ORDER BY id DESC LIMIT 1");
	ASSERT_TEXT(name, "second");
	free(name);
	px_store_close(st);
}

/* ---------------------------------------------------------------- statements */

static void test_bind_step_column_round_trip(void)
{
	static const int64_t big = INT64_C(-9007199254740993); /* not exact as a double */
	px_store *st = open_db("roundtrip.db");
	px_store_stmt *s = NULL;
	px_err err = {""};
	char text[32];

	CU_ASSERT_EQUAL_FATAL(px_store_exec(st, "CREATE TABLE r (t TEXT, i INTEGER, n TEXT)", &err),
	                      0);
	CU_ASSERT_EQUAL_FATAL(px_store_prepare(st, "INSERT INTO r VALUES (?1, ?2, ?3)", &s, &err),
	                      0);
	snprintf(text, sizeof(text), "h\xc3\xa9llo 'quoted'");
	CU_ASSERT_EQUAL(px_store_bind_text(s, 1, text), 0);
	memset(text, 'X', sizeof(text) - 1); /* the text was copied */
	CU_ASSERT_EQUAL(px_store_bind_int64(s, 2, big), 0);
	CU_ASSERT_EQUAL(px_store_bind_null(s, 3), 0);
	CU_ASSERT_EQUAL(px_store_bind_int64(s, 4, 1), -1); /* no such parameter */
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_DONE);
	CU_ASSERT_EQUAL(px_store_changes(s), 1);

	px_store_reset(s);
	CU_ASSERT_EQUAL(px_store_bind_text(s, 1, "second"), 0);
	CU_ASSERT_EQUAL(px_store_bind_int64(s, 2, INT64_MAX), 0);
	CU_ASSERT_EQUAL(px_store_bind_text(s, 3, "not null"), 0);
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_DONE);
	px_store_finalize(s);

	CU_ASSERT_EQUAL_FATAL(
	        px_store_prepare(st, "SELECT t, i, n FROM r ORDER BY rowid", &s, &err), 0);
	CU_ASSERT_EQUAL(px_store_column_count(s), 3);
	CU_ASSERT_EQUAL_FATAL(px_store_step(s, &err), PX_STORE_ROW);
	ASSERT_TEXT(px_store_column_text(s, 0), "h\xc3\xa9llo 'quoted'");
	CU_ASSERT_EQUAL(px_store_column_int64(s, 1), big);
	CU_ASSERT_TRUE(px_store_column_is_null(s, 2));
	CU_ASSERT_PTR_NULL(px_store_column_text(s, 2));
	CU_ASSERT_FALSE(px_store_column_is_null(s, 0));
	CU_ASSERT_EQUAL_FATAL(px_store_step(s, &err), PX_STORE_ROW);
	ASSERT_TEXT(px_store_column_text(s, 0), "second");
	CU_ASSERT_EQUAL(px_store_column_int64(s, 1), INT64_MAX);
	CU_ASSERT_FALSE(px_store_column_is_null(s, 2));
	ASSERT_TEXT(px_store_column_text(s, 2), "not null");
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_DONE);

	/* reset rewinds the query. */
	px_store_reset(s);
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_ROW);
	ASSERT_TEXT(px_store_column_text(s, 0), "h\xc3\xa9llo 'quoted'");
	px_store_finalize(s);

	CU_ASSERT_EQUAL(px_store_exec(st, "UPDATE r SET n = 'x'", &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_store_prepare(st, "SELECT 1", &s, &err), 0);
	CU_ASSERT_EQUAL(px_store_changes(s), 2);
	px_store_finalize(s);
	px_store_close(st);
}

static void test_sql_errors(void)
{
	px_store *st = open_db("errors.db");
	px_store_stmt *s = (px_store_stmt *)&s;
	px_err err = {""};

	CU_ASSERT_EQUAL(px_store_exec(st, "SELEC 1", &err), -1);
	CU_ASSERT_EQUAL(strncmp(err.msg, "SQL error: ", 11), 0);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "syntax error"));

	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_store_prepare(st, "SELECT * FROM missing_table", &s, &err), -1);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no such table: missing_table"));

	/* Only one statement per prepare; trailing blanks and comments are fine. */
	CU_ASSERT_EQUAL(px_store_prepare(st, "SELECT 1; SELECT 2", &s, &err), -1);
	CU_ASSERT_PTR_NULL(s);
	CU_ASSERT_EQUAL(px_store_prepare(st, "   ", &s, &err), -1);
	CU_ASSERT_EQUAL(px_store_prepare(st, "SELECT 7; -- seven\n", &s, &err), 0);
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_ROW);
	CU_ASSERT_EQUAL(px_store_column_int64(s, 0), 7);
	px_store_finalize(s);

	/* A failing step reports sqlite's message. */
	CU_ASSERT_EQUAL_FATAL(px_store_exec(st, "CREATE TABLE u (k TEXT UNIQUE)", &err), 0);
	CU_ASSERT_EQUAL(px_store_exec(st, "INSERT INTO u VALUES ('a')", &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_store_prepare(st, "INSERT INTO u VALUES ('a')", &s, &err), 0);
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_store_step(s, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "UNIQUE constraint failed"));
	px_store_finalize(s);
	px_store_close(st);
}

/* ---------------------------------------------------------------- transactions */

static void test_transaction_rollback_and_commit(void)
{
	px_store *st = open_db("txn.db");
	px_err err = {""};

	CU_ASSERT_EQUAL_FATAL(px_store_exec(st, "CREATE TABLE t (v TEXT)", &err), 0);
	CU_ASSERT_EQUAL(px_store_commit(st, &err), -1); /* nothing to commit */

	CU_ASSERT_EQUAL_FATAL(px_store_begin(st, &err), 0);
	CU_ASSERT_EQUAL(px_store_begin(st, &err), -1); /* no nesting */
	CU_ASSERT_EQUAL(px_store_exec(st, "INSERT INTO t VALUES ('a'), ('b'), ('c')", &err), 0);
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM t"), 3);
	px_store_rollback(st);
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM t"), 0);

	CU_ASSERT_EQUAL_FATAL(px_store_begin(st, &err), 0);
	CU_ASSERT_EQUAL(px_store_exec(st, "INSERT INTO t VALUES ('kept')", &err), 0);
	CU_ASSERT_EQUAL(px_store_commit(st, &err), 0);
	px_store_rollback(st); /* after the commit: nothing to undo */
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM t"), 1);
	px_store_close(st);
}

struct writer {
	px_store *st;
	atomic_int started;
	atomic_int done;
	atomic_int *released; /* set by the main thread just before commit/rollback */
	int saw_released;
	int rc;
	px_err err;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;

	atomic_store(&w->started, 1);
	w->rc = px_store_exec(w->st, "INSERT INTO t VALUES ('thread')", &w->err);
	w->saw_released = atomic_load(w->released);
	atomic_store(&w->done, 1);
	return NULL;
}

/* The main thread holds a transaction; another thread's insert must wait for
 * it to end rather than run inside it. */
static void run_exclusion(const char *name, int commit)
{
	static atomic_int released;
	struct writer w = {0};
	struct timespec deadline;
	pthread_t th;
	px_store *st = open_db(name);
	px_err err = {""};
	int i, rc;

	atomic_store(&released, 0);
	CU_ASSERT_EQUAL_FATAL(px_store_exec(st, "CREATE TABLE t (v TEXT)", &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_store_begin(st, &err), 0);
	CU_ASSERT_EQUAL(px_store_exec(st, "INSERT INTO t VALUES ('main')", &err), 0);

	w.st = st;
	w.released = &released;
	CU_ASSERT_EQUAL_FATAL(pthread_create(&th, NULL, writer_main, &w), 0);
	for (i = 0; i < 200 && !atomic_load(&w.started); i++)
		sleep_ms(10);
	sleep_ms(200);
	CU_ASSERT_FALSE(atomic_load(&w.done)); /* still waiting for us */

	atomic_store(&released, 1);
	if (commit) {
		CU_ASSERT_EQUAL(px_store_commit(st, &err), 0);
	} else {
		px_store_rollback(st);
	}

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	rc = pthread_timedjoin_np(th, NULL, &deadline);
	CU_ASSERT_EQUAL(rc, 0);
	if (rc != 0) {
		/* The writer is stuck on the store: leave both behind. */
		pthread_detach(th);
		return;
	}
	CU_ASSERT_EQUAL(w.rc, 0);
	CU_ASSERT_EQUAL(w.saw_released, 1);
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM t WHERE v = 'thread'"), 1);
	CU_ASSERT_EQUAL(query_int(st, "SELECT count(*) FROM t WHERE v = 'main'"), commit ? 1 : 0);
	px_store_close(st);
}

static void test_transaction_excludes_threads_commit(void)
{
	run_exclusion("threads-commit.db", 1);
}

static void test_transaction_excludes_threads_rollback(void)
{
	run_exclusion("threads-rollback.db", 0);
}

/* Another connection (as another process would have) cannot write while a
 * transaction is open, even one that has not written yet: BEGIN IMMEDIATE. */
static void test_busy_other_connection(void)
{
	px_store *a = open_db("busy.db");
	px_store *b = open_db("busy.db");
	px_store_stmt *s = NULL;
	px_err err = {""};

	CU_ASSERT_EQUAL_FATAL(px_store_exec(a, "CREATE TABLE t (v TEXT)", &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_store_exec(b, "PRAGMA busy_timeout = 100", &err), 0);
	CU_ASSERT_EQUAL_FATAL(px_store_prepare(b, "INSERT INTO t VALUES ('b')", &s, &err), 0);

	CU_ASSERT_EQUAL_FATAL(px_store_begin(a, &err), 0);
	err.msg[0] = '\0';
	CU_ASSERT_EQUAL(px_store_step(s, &err), -1);
	CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "locked"));
	CU_ASSERT_EQUAL(px_store_commit(a, &err), 0);

	px_store_reset(s);
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_DONE);
	px_store_finalize(s);
	CU_ASSERT_EQUAL(query_int(a, "SELECT count(*) FROM t"), 1);
	px_store_close(b);
	px_store_close(a);
}

/* Close releases statements the caller forgot (checked by the leak checkers). */
static void test_close_with_open_statement(void)
{
	px_store *st = open_db("leftover.db");
	px_store_stmt *s = NULL;
	px_err err = {""};

	CU_ASSERT_EQUAL_FATAL(px_store_prepare(st, "SELECT 1 UNION ALL SELECT 2", &s, &err), 0);
	CU_ASSERT_EQUAL(px_store_step(s, &err), PX_STORE_ROW);
	CU_ASSERT_EQUAL_FATAL(px_store_begin(st, &err), 0);
	CU_ASSERT_EQUAL(px_store_exec(st, "CREATE TABLE gone (a)", &err), 0);
	px_store_close(st); /* rolls the open transaction back */

	st = open_db("leftover.db");
	CU_ASSERT_EQUAL(table_exists(st, "gone"), 0);
	px_store_close(st);
}

int main(void)
{
	CU_pSuite suite;
	unsigned int failures;

	if (CU_initialize_registry() != CUE_SUCCESS)
		return 1;
	suite = CU_add_suite("store", suite_init, suite_cleanup);
	if (!suite || !CU_add_test(suite, "open creates a WAL file", test_open_creates_wal_file) ||
	    !CU_add_test(suite, "open in a missing directory", test_open_missing_directory) ||
	    !CU_add_test(suite, "open a file that is not a database", test_open_not_a_database) ||
	    !CU_add_test(suite, "default store", test_default_store) ||
	    !CU_add_test(suite, "migrations apply in order", test_migrations_apply_in_order) ||
	    !CU_add_test(suite, "migration versions validated",
	                 test_migration_versions_validated) ||
	    !CU_add_test(suite, "failed migration changes nothing",
	                 test_failed_migration_changes_nothing) ||
	    !CU_add_test(suite, "migration cannot commit", test_migration_cannot_commit) ||
	    !CU_add_test(suite, "owners are independent", test_owners_independent) ||
	    !CU_add_test(suite, "downgrade refused", test_downgrade_refused) ||
	    !CU_add_test(suite, "data persists", test_data_persists) ||
	    !CU_add_test(suite, "bind/step/column round trip", test_bind_step_column_round_trip) ||
	    !CU_add_test(suite, "SQL errors", test_sql_errors) ||
	    !CU_add_test(suite, "transaction rollback and commit",
	                 test_transaction_rollback_and_commit) ||
	    !CU_add_test(suite, "transaction excludes threads (commit)",
	                 test_transaction_excludes_threads_commit) ||
	    !CU_add_test(suite, "transaction excludes threads (rollback)",
	                 test_transaction_excludes_threads_rollback) ||
	    !CU_add_test(suite, "busy other connection", test_busy_other_connection) ||
	    !CU_add_test(suite, "close with open statement", test_close_with_open_statement)) {
		CU_cleanup_registry();
		return 1;
	}
	CU_basic_set_mode(CU_BRM_VERBOSE);
	CU_basic_run_tests();
	failures = CU_get_number_of_failures();
	CU_cleanup_registry();
	return failures != 0;
}
