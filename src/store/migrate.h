/*
 * migrate.h - numbered schema migrations, applied when a store opens.
 *
 * Each migration is a file src/store/migrations/NNNN_name.sql, embedded into the binary at
 * build time (embed_migrations.cmake generates migrate_steps[], sorted by number). Applying
 * one runs its SQL and records (number, name, applied_at) in schema_migrations inside one
 * transaction, so a migration is applied wholly or not at all, exactly once, even when two
 * connections open the same database at the same time. A database that records a number this
 * binary does not know was written by a newer baram and is refused.
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

/* Generated (build/gen/migrate_steps.c): the embedded migrations by number. */
extern const struct migrate_step migrate_steps[];
extern const size_t migrate_steps_count;

/* The highest migration number this binary knows. */
int migrate_latest(void);

/* Applies every pending migration to db. 0, or ERR_DB with *errmsg (malloc'd) saying what
 * went wrong for a person; where names the database in messages. */
int migrate_sqlite(struct sqlite3 *db, const char *where, char **errmsg) WARN_UNUSED;

#endif
