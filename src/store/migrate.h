/*
 * migrate.h - numbered schema migrations, applied when a store opens.
 *
 * Each backend has its own: src/store/migrations/<backend>/NNNN_name.sql, embedded into the
 * binary at build time (embed_migrations.cmake generates migrate_<backend>_steps[], sorted by
 * number). Applying one runs its SQL and records (number, name, applied_at) in
 * schema_migrations inside one transaction, so a migration is applied wholly or not at all,
 * exactly once, even when two connections open the same database at the same time. A
 * database that records a number this binary does not know was written by a newer baram and
 * is refused.
 *
 * Any thread; one connection at a time.
 */
#ifndef BARAM_STORE_MIGRATE_H
#define BARAM_STORE_MIGRATE_H

#include <stddef.h>

#include "base/compiler.h"

struct sqlite3;

struct migrate_step {
    int number;       /* NNNN from the file name, > 0 */
    const char *name; /* the rest of the file name: "initial" */
    const char *sql;  /* the file's text */
};

/* Generated (build/gen/migrate_sqlite_steps.c): the SQLite backend's migrations by number. */
extern const struct migrate_step migrate_sqlite_steps[];
extern const size_t migrate_sqlite_steps_count;
/* Generated (build/gen/migrate_pg_steps.c): the PostgreSQL backend's, applied by migrate_pg
 * (store/pg_int.h). */
extern const struct migrate_step migrate_pg_steps[];
extern const size_t migrate_pg_steps_count;

/* The highest number among the n steps. */
int migrate_latest(const struct migrate_step *steps, size_t n);

/* migrate_sqlite.c: applies every pending SQLite migration to db. 0, or ERR_DB with *e (may be
 * NULL) saying what went wrong for a person; where names the database in messages. */
struct err;
int migrate_sqlite(struct sqlite3 *db, const char *where, struct err *e) WARN_UNUSED;

#endif
