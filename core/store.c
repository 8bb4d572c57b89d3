/*
 * The store (see plexus/store.h): owns the one sqlite3 connection of the
 * daemon, its per-store recursive mutex that serialises statements and makes
 * px_store_begin exclusive to the calling thread until commit or rollback,
 * the px_schema table where each owner's schema version is recorded, the
 * migration runner that applies pending migrations in a single transaction,
 * and the process-wide default store pointer.
 */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include <plexus/store.h>

#define BUSY_TIMEOUT_MS 5000

struct px_store {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock; /* recursive; held for a whole transaction */
	int in_txn;           /* px_store_begin succeeded; only read/written under lock */
	px_store_stmt *stmts; /* every live statement, finalized by px_store_close */
};

struct px_store_stmt {
	px_store *st;
	sqlite3_stmt *stmt;
	px_store_stmt *prev;
	px_store_stmt *next;
};

static _Atomic(px_store *) default_store;

static const char SCHEMA_TABLE_SQL[] = "CREATE TABLE IF NOT EXISTS px_schema ("
				       "owner TEXT PRIMARY KEY, "
				       "version INTEGER NOT NULL, "
				       "applied_at INTEGER NOT NULL)";

static void store_lock(px_store *st)
{
	pthread_mutex_lock(&st->lock);
}

static void store_unlock(px_store *st)
{
	pthread_mutex_unlock(&st->lock);
}

/* Fail unless the directory that is to hold path exists: sqlite's own error
 * ("unable to open database file") does not say what is wrong. */
static int check_parent_dir(const char *path, px_err *err)
{
	const char *slash = strrchr(path, '/');
	struct stat sb;
	char *dir;
	int rc = 0;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return px_err_set(err, "%s: %s", path, strerror(ENOMEM));
	if (stat(dir, &sb) != 0)
		rc = px_err_set(err, "%s: cannot use directory %s: %s", path, dir, strerror(errno));
	else if (!S_ISDIR(sb.st_mode))
		rc = px_err_set(err, "%s: cannot use directory %s: %s", path, dir,
				strerror(ENOTDIR));
	free(dir);
	return rc;
}

/* Run a one-row pragma and check that its answer is `want`. Caller holds the
 * store (or owns it exclusively, during open). */
static int pragma_expect(px_store *st, const char *sql, const char *want, px_err *err)
{
	sqlite3_stmt *stmt = NULL;
	const char *got;
	int rc;

	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, NULL) != SQLITE_OK)
		return px_err_set(err, "%s: %s", st->path, sqlite3_errmsg(st->db));
	rc = sqlite3_step(stmt);
	if (rc != SQLITE_ROW) {
		px_err_set(err, "%s: %s", st->path, sqlite3_errmsg(st->db));
		sqlite3_finalize(stmt);
		return -1;
	}
	got = (const char *)sqlite3_column_text(stmt, 0);
	if (!got || strcasecmp(got, want) != 0) {
		px_err_set(err, "%s: '%s' answered '%s', expected '%s'", st->path, sql,
			   got ? got : "(null)", want);
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	return 0;
}

static int exec_raw(px_store *st, const char *sql, px_err *err)
{
	char *msg = NULL;

	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		px_err_set(err, "%s: %s", st->path, msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		return -1;
	}
	return 0;
}

int px_store_open(const char *path, px_store **out, px_err *err)
{
	pthread_mutexattr_t attr;
	px_store *st;
	int rc;

	if (out)
		*out = NULL;
	if (!path || !*path || !out)
		return px_err_set(err, "store: no database path given");
	if (check_parent_dir(path, err))
		return -1;

	st = calloc(1, sizeof(*st));
	if (!st)
		return px_err_set(err, "%s: %s", path, strerror(ENOMEM));
	st->path = strdup(path);
	if (!st->path) {
		free(st);
		return px_err_set(err, "%s: %s", path, strerror(ENOMEM));
	}
	pthread_mutexattr_init(&attr);
	pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
	rc = pthread_mutex_init(&st->lock, &attr);
	pthread_mutexattr_destroy(&attr);
	if (rc != 0) {
		px_err_set(err, "%s: %s", path, strerror(rc));
		free(st->path);
		free(st);
		return -1;
	}

	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		px_err_set(err, "%s: %s", path,
			   st->db ? sqlite3_errmsg(st->db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (sqlite3_busy_timeout(st->db, BUSY_TIMEOUT_MS) != SQLITE_OK) {
		px_err_set(err, "%s: %s", path, sqlite3_errmsg(st->db));
		goto fail;
	}
	if (pragma_expect(st, "PRAGMA journal_mode=WAL", "wal", err) ||
	    exec_raw(st, "PRAGMA synchronous=NORMAL", err) ||
	    exec_raw(st, "PRAGMA foreign_keys=ON", err) || exec_raw(st, SCHEMA_TABLE_SQL, err))
		goto fail;

	*out = st;
	return 0;

fail:
	sqlite3_close_v2(st->db); /* NULL is a no-op */
	pthread_mutex_destroy(&st->lock);
	free(st->path);
	free(st);
	return -1;
}

void px_store_close(px_store *st)
{
	px_store *expected = st;

	if (!st)
		return;
	atomic_compare_exchange_strong(&default_store, &expected, NULL);

	store_lock(st);
	if (st->in_txn) {
		/* The caller closes inside its own transaction: undo it and drop
		 * the hold px_store_begin took. */
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->in_txn = 0;
		store_unlock(st);
	}
	/* Statements the caller forgot: their handles die with the store. */
	while (st->stmts) {
		px_store_stmt *s = st->stmts;

		st->stmts = s->next;
		sqlite3_finalize(s->stmt);
		free(s);
	}
	sqlite3_close_v2(st->db);
	st->db = NULL;
	store_unlock(st);
	pthread_mutex_destroy(&st->lock);
	free(st->path);
	free(st);
}

const char *px_store_path(const px_store *st)
{
	return st ? st->path : NULL;
}

px_store *px_store_default(void)
{
	return atomic_load(&default_store);
}

void px_store_set_default(px_store *st)
{
	atomic_store(&default_store, st);
}

/* Read owner's version into *version (0 when no row). Caller holds the store. */
static int read_version(px_store *st, const char *owner, int *version, px_err *err)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT version FROM px_schema WHERE owner = ?1", -1, &stmt,
			       NULL) != SQLITE_OK)
		return px_err_set(err, "%s: %s", owner, sqlite3_errmsg(st->db));
	sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
	rc = sqlite3_step(stmt);
	if (rc == SQLITE_ROW) {
		sqlite3_int64 v = sqlite3_column_int64(stmt, 0);

		*version = v < 0 ? 0 : v > INT_MAX ? INT_MAX : (int)v;
	} else if (rc == SQLITE_DONE) {
		*version = 0;
	} else {
		px_err_set(err, "%s: %s", owner, sqlite3_errmsg(st->db));
		sqlite3_finalize(stmt);
		return -1;
	}
	sqlite3_finalize(stmt);
	return 0;
}

static int write_version(px_store *st, const char *owner, int version)
{
	sqlite3_stmt *stmt = NULL;
	int rc;

	if (sqlite3_prepare_v2(st->db,
			       "INSERT INTO px_schema (owner, version, applied_at) "
			       "VALUES (?1, ?2, ?3) ON CONFLICT (owner) DO UPDATE SET "
			       "version = excluded.version, applied_at = excluded.applied_at",
			       -1, &stmt, NULL) != SQLITE_OK)
		return -1;
	sqlite3_bind_text(stmt, 1, owner, -1, SQLITE_STATIC);
	sqlite3_bind_int(stmt, 2, version);
	sqlite3_bind_int64(stmt, 3, (sqlite3_int64)time(NULL));
	rc = sqlite3_step(stmt);
	sqlite3_finalize(stmt);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* Installed while migrations run: a migration that could COMMIT or ROLLBACK
 * would end the enclosing transaction and break all-or-nothing, so such
 * statements are refused at prepare time. Savepoints stay allowed. */
static int migration_authorizer(void *arg, int action, const char *a, const char *b, const char *c,
				const char *d)
{
	return action == SQLITE_TRANSACTION ? SQLITE_DENY : SQLITE_OK;
}

static const char *describe(const struct px_store_migration *m)
{
	return m->description ? m->description : "no description";
}

int px_store_migrate(px_store *st, const char *owner, const struct px_store_migration *m, size_t n,
		     px_err *err)
{
	int current, last = 0;
	size_t i;

	if (!st)
		return px_err_set(err, "store: no store");
	if (!owner || !*owner)
		return px_err_set(err, "store: migration owner is empty");
	if (n > 0 && !m)
		return px_err_set(err, "%s: no migrations given", owner);
	for (i = 0; i < n; i++) {
		if (m[i].version < 1 || m[i].version <= last)
			return px_err_set(err, "%s: migration versions must increase", owner);
		if (!m[i].sql)
			return px_err_set(err, "%s: migration %d (%s) has no SQL", owner,
					  m[i].version, describe(&m[i]));
		last = m[i].version;
	}

	/* Version check and upgrade in one write transaction, so that another
	 * process cannot migrate between the read and the writes. */
	if (px_store_begin(st, err))
		return px_err_prefix(err, "%s", owner);
	if (read_version(st, owner, &current, err))
		goto fail;
	if (current > last) {
		px_err_set(err,
			   "%s: database schema version %d is newer than this build knows (%d)",
			   owner, current, last);
		goto fail;
	}
	if (current == last) {
		px_store_rollback(st);
		return 0;
	}

	sqlite3_set_authorizer(st->db, migration_authorizer, NULL);
	for (i = 0; i < n; i++) {
		char *msg = NULL;

		if (m[i].version <= current)
			continue;
		if (sqlite3_exec(st->db, m[i].sql, NULL, NULL, &msg) != SQLITE_OK) {
			px_err_set(err, "%s: migration %d (%s) failed: %s", owner, m[i].version,
				   describe(&m[i]), msg ? msg : sqlite3_errmsg(st->db));
			sqlite3_free(msg);
			sqlite3_set_authorizer(st->db, NULL, NULL);
			goto fail;
		}
	}
	sqlite3_set_authorizer(st->db, NULL, NULL);

	if (write_version(st, owner, last)) {
		px_err_set(err, "%s: recording schema version %d failed: %s", owner, last,
			   sqlite3_errmsg(st->db));
		goto fail;
	}
	if (px_store_commit(st, err))
		return px_err_prefix(err, "%s", owner);
	return 0;

fail:
	px_store_rollback(st);
	return -1;
}

int px_store_schema_version(px_store *st, const char *owner, px_err *err)
{
	int version;
	int rc;

	if (!st)
		return px_err_set(err, "store: no store");
	if (!owner || !*owner)
		return px_err_set(err, "store: schema owner is empty");
	store_lock(st);
	rc = read_version(st, owner, &version, err);
	store_unlock(st);
	return rc ? -1 : version;
}

int px_store_exec(px_store *st, const char *sql, px_err *err)
{
	char *msg = NULL;
	int rc = 0;

	if (!st || !sql)
		return px_err_set(err, "SQL error: no store or no SQL");
	store_lock(st);
	if (sqlite3_exec(st->db, sql, NULL, NULL, &msg) != SQLITE_OK)
		rc = px_err_set(err, "SQL error: %s", msg ? msg : sqlite3_errmsg(st->db));
	store_unlock(st);
	sqlite3_free(msg);
	return rc;
}

int px_store_begin(px_store *st, px_err *err)
{
	char *msg = NULL;

	if (!st)
		return px_err_set(err, "store: no store");
	store_lock(st);
	if (st->in_txn) {
		store_unlock(st);
		return px_err_set(err, "%s: transaction already open", st->path);
	}
	if (sqlite3_exec(st->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
		px_err_set(err, "%s: BEGIN failed: %s", st->path,
			   msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		store_unlock(st);
		return -1;
	}
	st->in_txn = 1;
	return 0; /* the lock stays held until commit or rollback */
}

/* A failed COMMIT rolls back: either way the transaction is over and the
 * store is released, so a later px_store_rollback is harmless. */
int px_store_commit(px_store *st, px_err *err)
{
	char *msg = NULL;
	int rc = 0;

	if (!st)
		return px_err_set(err, "store: no store");
	store_lock(st);
	if (!st->in_txn) {
		store_unlock(st);
		return px_err_set(err, "%s: COMMIT without a transaction", st->path);
	}
	if (sqlite3_exec(st->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
		rc = px_err_set(err, "%s: COMMIT failed: %s", st->path,
				msg ? msg : sqlite3_errmsg(st->db));
		sqlite3_free(msg);
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
	}
	st->in_txn = 0;
	store_unlock(st); /* px_store_begin's hold */
	store_unlock(st);
	return rc;
}

void px_store_rollback(px_store *st)
{
	if (!st)
		return;
	store_lock(st);
	if (st->in_txn) {
		sqlite3_exec(st->db, "ROLLBACK", NULL, NULL, NULL);
		st->in_txn = 0;
		store_unlock(st); /* px_store_begin's hold */
	}
	store_unlock(st);
}

int px_store_prepare(px_store *st, const char *sql, px_store_stmt **out, px_err *err)
{
	sqlite3_stmt *stmt = NULL;
	sqlite3_stmt *extra = NULL;
	const char *tail = NULL;
	px_store_stmt *s;

	if (out)
		*out = NULL;
	if (!st || !sql || !out)
		return px_err_set(err, "SQL error: no store or no SQL");
	store_lock(st);
	if (sqlite3_prepare_v2(st->db, sql, -1, &stmt, &tail) != SQLITE_OK) {
		px_err_set(err, "SQL error: %s", sqlite3_errmsg(st->db));
		goto fail;
	}
	if (!stmt) {
		px_err_set(err, "SQL error: no statement in '%.60s'", sql);
		goto fail;
	}
	/* Only one statement can be stepped: refuse rather than ignore the rest
	 * (whitespace and comments after it are fine). */
	if (tail && *tail) {
		if (sqlite3_prepare_v2(st->db, tail, -1, &extra, NULL) != SQLITE_OK) {
			px_err_set(err, "SQL error: %s", sqlite3_errmsg(st->db));
			goto fail;
		}
		if (extra) {
			px_err_set(err, "SQL error: more than one statement in '%.60s'", sql);
			goto fail;
		}
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		px_err_set(err, "SQL error: %s", strerror(ENOMEM));
		goto fail;
	}
	s->st = st;
	s->stmt = stmt;
	s->next = st->stmts;
	if (st->stmts)
		st->stmts->prev = s;
	st->stmts = s;
	store_unlock(st);
	*out = s;
	return 0;

fail:
	sqlite3_finalize(extra);
	sqlite3_finalize(stmt);
	store_unlock(st);
	return -1;
}

int px_store_bind_text(px_store_stmt *s, int idx, const char *text)
{
	int rc;

	if (!s)
		return -1;
	if (text)
		rc = sqlite3_bind_text(s->stmt, idx, text, -1, SQLITE_TRANSIENT);
	else
		rc = sqlite3_bind_null(s->stmt, idx);
	return rc == SQLITE_OK ? 0 : -1;
}

int px_store_bind_int64(px_store_stmt *s, int idx, int64_t v)
{
	if (!s)
		return -1;
	return sqlite3_bind_int64(s->stmt, idx, (sqlite3_int64)v) == SQLITE_OK ? 0 : -1;
}

int px_store_bind_null(px_store_stmt *s, int idx)
{
	if (!s)
		return -1;
	return sqlite3_bind_null(s->stmt, idx) == SQLITE_OK ? 0 : -1;
}

int px_store_step(px_store_stmt *s, px_err *err)
{
	int rc;

	if (!s)
		return px_err_set(err, "SQL error: no statement");
	store_lock(s->st);
	rc = sqlite3_step(s->stmt);
	if (rc == SQLITE_ROW)
		rc = PX_STORE_ROW;
	else if (rc == SQLITE_DONE)
		rc = PX_STORE_DONE;
	else
		rc = px_err_set(err, "SQL error: %s", sqlite3_errmsg(s->st->db));
	store_unlock(s->st);
	return rc;
}

int px_store_column_count(px_store_stmt *s)
{
	return s ? sqlite3_column_count(s->stmt) : 0;
}

const char *px_store_column_text(px_store_stmt *s, int col)
{
	return s ? (const char *)sqlite3_column_text(s->stmt, col) : NULL;
}

int64_t px_store_column_int64(px_store_stmt *s, int col)
{
	return s ? (int64_t)sqlite3_column_int64(s->stmt, col) : 0;
}

int px_store_column_is_null(px_store_stmt *s, int col)
{
	return s ? sqlite3_column_type(s->stmt, col) == SQLITE_NULL : 1;
}

int64_t px_store_changes(px_store_stmt *s)
{
	int64_t n;

	if (!s)
		return 0;
	store_lock(s->st);
#if SQLITE_VERSION_NUMBER >= 3037000
	n = (int64_t)sqlite3_changes64(s->st->db);
#else
	n = (int64_t)sqlite3_changes(s->st->db);
#endif
	store_unlock(s->st);
	return n;
}

void px_store_reset(px_store_stmt *s)
{
	if (!s)
		return;
	store_lock(s->st);
	sqlite3_reset(s->stmt);
	store_unlock(s->st);
}

void px_store_finalize(px_store_stmt *s)
{
	px_store *st;

	if (!s)
		return;
	st = s->st;
	store_lock(st);
	if (s->prev)
		s->prev->next = s->next;
	else
		st->stmts = s->next;
	if (s->next)
		s->next->prev = s->prev;
	sqlite3_finalize(s->stmt);
	store_unlock(st);
	free(s);
}
