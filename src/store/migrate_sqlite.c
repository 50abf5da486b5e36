/*
 * migrate_sqlite.c - applies the SQLite backend's embedded migrations
 * (migrate.h) to a connection. Key idea: read the applied numbers without a lock first (the
 * common case, nothing to do, costs one query); for each missing migration
 * take the write lock (BEGIN IMMEDIATE), check again (another connection may
 * have just applied it), run it and record it, then COMMIT. Any thread.
 */
#include "store/migrate.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/when.h"

/* Is migration number applied? 1 yes, 0 no, ERR_DB. */
static int applied(sqlite3 *db, int number)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM schema_migrations WHERE number = ?", -1, &st, NULL) !=
        SQLITE_OK)
        return ERR_DB;
    sqlite3_bind_int(st, 1, number);
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc == SQLITE_ROW)
        return 1;
    return rc == SQLITE_DONE ? 0 : ERR_DB;
}

static int apply_one(sqlite3 *db, const struct migrate_step *m, const char *where, struct err *e)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return err_set(e, ERR_DB, "cannot migrate database '%s': %s", where, sqlite3_errmsg(db));
    int r = applied(db, m->number);
    if (r < 0) {
        r = err_set(e, ERR_DB, "cannot migrate database '%s': %s", where, sqlite3_errmsg(db));
        goto rollback;
    }
    if (r == 1)
        goto commit;
    if (sqlite3_exec(db, m->sql, NULL, NULL, NULL) != SQLITE_OK) {
        r = err_set(e, ERR_DB, "cannot apply migration %04d_%s to database '%s': %s", m->number,
                    m->name, where, sqlite3_errmsg(db));
        goto rollback;
    }
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO schema_migrations (number, name, applied_at) "
                           "VALUES (?, ?, ?)",
                           -1, &st, NULL) != SQLITE_OK) {
        r = err_set(e, ERR_DB, "cannot migrate database '%s': %s", where, sqlite3_errmsg(db));
        goto rollback;
    }
    sqlite3_bind_int(st, 1, m->number);
    sqlite3_bind_text(st, 2, m->name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, when_now_ms());
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        r = err_set(e, ERR_DB, "cannot record migration %04d_%s in database '%s': %s", m->number,
                    m->name, where, sqlite3_errmsg(db));
        goto rollback;
    }
commit:
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        r = err_set(e, ERR_DB, "cannot migrate database '%s': %s", where, sqlite3_errmsg(db));
        goto rollback;
    }
    return 0;
rollback:
    sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

int migrate_sqlite(sqlite3 *db, const char *where, struct err *e)
{
    if (sqlite3_exec(db,
                     "CREATE TABLE IF NOT EXISTS schema_migrations ("
                     " number INTEGER PRIMARY KEY,"
                     " name TEXT NOT NULL,"
                     " applied_at INTEGER NOT NULL)",
                     NULL, NULL, NULL) != SQLITE_OK)
        return err_set(e, ERR_DB, "cannot migrate database '%s': %s", where, sqlite3_errmsg(db));

    /* Refuse a database written by a newer baram before touching anything. */
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT MAX(number) FROM schema_migrations", -1, &st, NULL) !=
        SQLITE_OK)
        return err_set(e, ERR_DB, "cannot migrate database '%s': %s", where, sqlite3_errmsg(db));
    int rc = sqlite3_step(st);
    int64_t newest = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return err_set(e, ERR_DB, "cannot migrate database '%s': %s", where, sqlite3_errmsg(db));
    int latest = migrate_latest(migrate_sqlite_steps, migrate_sqlite_steps_count);
    if (newest > latest)
        return err_set(e, ERR_DB,
                       "database '%s' has schema version %lld, newer than this baram knows (%d): "
                       "upgrade baram or use another database",
                       where, (long long)newest, latest);

    for (size_t i = 0; i < migrate_sqlite_steps_count; i++) {
        const struct migrate_step *m = &migrate_sqlite_steps[i];
        if (!m->sql)
            continue;
        int r = applied(db, m->number);
        if (r < 0)
            return err_set(e, ERR_DB, "cannot migrate database '%s': %s", where,
                           sqlite3_errmsg(db));
        if (r == 0 && (r = apply_one(db, m, where, e)) < 0)
            return r;
    }
    return 0;
}
