/*
 * The store: the one place where state that must survive a restart lives
 * (registrations, voicemail index, CDR, the key/value database). It is a
 * single sqlite3 database in WAL mode with a busy timeout; no module opens
 * sqlite itself, so the backend can change without touching modules.
 *
 * Each owner (a module, or "core") declares its schema as an ordered list of
 * migrations. px_store_migrate applies those not yet applied, all in one
 * transaction: if any fails, the database is left exactly as it was.
 *
 * Statements are prepared, bound and stepped through this API. The handle is
 * safe to use from several threads; px_store_begin takes the store for the
 * calling thread until px_store_commit or px_store_rollback, so statements
 * of other threads wait rather than join the transaction.
 */
#ifndef PLEXUS_STORE_H
#define PLEXUS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include <plexus/error.h>

typedef struct px_store px_store;
typedef struct px_store_stmt px_store_stmt;

struct px_store_migration {
	int version;             /* 1, 2, 3 ... strictly increasing */
	const char *description; /* one line, shown in logs */
	const char *sql;         /* one or more statements */
};

int px_store_open(const char *path, px_store **out, px_err *err);
void px_store_close(px_store *st);
const char *px_store_path(const px_store *st);

/* The daemon's store, opened at start-up (NULL before that). */
px_store *px_store_default(void);
void px_store_set_default(px_store *st);

/* Bring owner's schema up to the last migration in m[0..n-1]. */
int px_store_migrate(px_store *st, const char *owner, const struct px_store_migration *m, size_t n,
		     px_err *err);
/* Version of owner's schema (0 when none applied), or -1 on error. */
int px_store_schema_version(px_store *st, const char *owner, px_err *err);

/* Run statements without parameters or results. */
int px_store_exec(px_store *st, const char *sql, px_err *err);

int px_store_begin(px_store *st, px_err *err);
int px_store_commit(px_store *st, px_err *err);
void px_store_rollback(px_store *st);

int px_store_prepare(px_store *st, const char *sql, px_store_stmt **out, px_err *err);
/* Parameters are 1-based, as in SQL. Text is copied. */
int px_store_bind_text(px_store_stmt *s, int idx, const char *text);
int px_store_bind_int64(px_store_stmt *s, int idx, int64_t v);
int px_store_bind_null(px_store_stmt *s, int idx);

enum { PX_STORE_DONE = 0, PX_STORE_ROW = 1 };
/* PX_STORE_ROW, PX_STORE_DONE, or -1 with err. */
int px_store_step(px_store_stmt *s, px_err *err);
/* Columns are 0-based. Text stays valid until the next step/reset/finalize;
 * NULL for SQL NULL. */
int px_store_column_count(px_store_stmt *s);
const char *px_store_column_text(px_store_stmt *s, int col);
int64_t px_store_column_int64(px_store_stmt *s, int col);
int px_store_column_is_null(px_store_stmt *s, int col);
/* Rows changed by the last statement that finished on this store. */
int64_t px_store_changes(px_store_stmt *s);
void px_store_reset(px_store_stmt *s);
void px_store_finalize(px_store_stmt *s);

#endif
