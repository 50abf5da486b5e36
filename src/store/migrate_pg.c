/*
 * migrate_pg.c - applies the PostgreSQL backend's embedded migrations
 * (migrate.h) to a connection. Key idea: one session advisory lock
 * (MIGRATE_LOCK) serialises every baram that opens the database, so two
 * opening at once never both run a step; each step then runs in its own
 * transaction together with its row in schema_migrations. The steps applied
 * are the files present, in order of number: a number may be missing from the
 * list (another branch's file not yet merged) and is applied when a later
 * binary carries it. Any thread.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/err.h"
#include "base/when.h"
#include "store/migrate.h"
#include "store/pg_int.h"

/* The key of the session advisory lock held while migrating ("baram" 7262, step 0). */
#define MIGRATE_LOCK "7262000"

/* The numbers recorded in schema_migrations: a malloc'd array of *n (sorted), or NULL with
 * e filled. */
static int applied_numbers(PGconn *c, const char *where, int **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    PGresult *r = PQexec(c, "SELECT number FROM schema_migrations ORDER BY number");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        char what[PG_WHERE_MAX + 64];
        snprintf(what, sizeof what, "cannot migrate %s", where);
        int rc = pg__fail(c, r, what, e);
        PQclear(r);
        return rc;
    }
    size_t rows = (size_t)PQntuples(r);
    int *v = calloc(rows ? rows : 1, sizeof(*v));
    if (!v) {
        PQclear(r);
        return err_set(e, -ENOMEM, "cannot migrate %s: out of memory", where);
    }
    for (size_t i = 0; i < rows; i++)
        v[i] = atoi(PQgetvalue(r, (int)i, 0));
    PQclear(r);
    *out = v;
    *n = rows;
    return 0;
}

static bool has(const int *v, size_t n, int number)
{
    for (size_t i = 0; i < n; i++)
        if (v[i] == number)
            return true;
    return false;
}

/* Does this binary carry migration number? */
static bool known(int number)
{
    for (size_t i = 0; i < migrate_pg_steps_count; i++)
        if (migrate_pg_steps[i].sql && migrate_pg_steps[i].number == number)
            return true;
    return false;
}

static int apply_one(PGconn *c, const struct migrate_step *m, const char *where, struct err *e)
{
    char what[PG_WHERE_MAX + 128];
    snprintf(what, sizeof what, "apply migration %04d_%s to %s", m->number, m->name, where);
    int rc = pg__exec(c, "BEGIN", what, e);
    if (rc < 0)
        return rc;
    if ((rc = pg__exec(c, m->sql, what, e)) < 0)
        goto rollback;
    char num[16], at[24];
    snprintf(num, sizeof num, "%d", m->number);
    snprintf(at, sizeof at, "%lld", (long long)when_now_ms());
    const char *vals[3] = {num, m->name, at};
    PGresult *r = PQexecParams(c,
                               "INSERT INTO schema_migrations (number, name, applied_at) "
                               "VALUES ($1, $2, $3)",
                               3, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        snprintf(what, sizeof what, "cannot record migration %04d_%s in %s", m->number, m->name,
                 where);
        rc = pg__fail(c, r, what, e);
        PQclear(r);
        goto rollback;
    }
    PQclear(r);
    if ((rc = pg__exec(c, "COMMIT", what, e)) < 0)
        goto rollback;
    return 0;
rollback:
    PQclear(PQexec(c, "ROLLBACK"));
    return rc;
}

static int migrate_locked(PGconn *c, const char *where, struct err *e)
{
    char what[PG_WHERE_MAX + 64];
    snprintf(what, sizeof what, "migrate %s", where);
    int rc = pg__exec(c,
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " number integer PRIMARY KEY,"
                      " name text NOT NULL,"
                      " applied_at bigint NOT NULL)",
                      what, e);
    if (rc < 0)
        return rc;
    int *done = NULL;
    size_t ndone = 0;
    if ((rc = applied_numbers(c, where, &done, &ndone, e)) < 0)
        return rc;
    /* Refuse a database written by a newer baram (it records a step this one lacks) before
     * touching anything. */
    for (size_t i = 0; i < ndone; i++) {
        if (known(done[i]))
            continue;
        int unknown = done[i];
        free(done);
        return err_set(e, ERR_DB,
                       "%s has schema version %d, newer than this baram knows (it has %d): "
                       "upgrade baram or use another database",
                       where, unknown, migrate_latest(migrate_pg_steps, migrate_pg_steps_count));
    }
    for (size_t i = 0; i < migrate_pg_steps_count && rc == 0; i++) {
        const struct migrate_step *m = &migrate_pg_steps[i];
        if (m->sql && !has(done, ndone, m->number))
            rc = apply_one(c, m, where, e);
    }
    free(done);
    return rc;
}

int migrate_pg(PGconn *c, const char *where, struct err *e)
{
    char what[PG_WHERE_MAX + 64];
    snprintf(what, sizeof what, "lock %s for migration", where);
    int rc = pg__exec(c, "SELECT pg_advisory_lock(" MIGRATE_LOCK ")", what, e);
    if (rc < 0)
        return rc;
    rc = migrate_locked(c, where, e);
    /* A failed unlock leaves the lock to the session's end, which the caller's close brings. */
    PQclear(PQexec(c, "SELECT pg_advisory_unlock(" MIGRATE_LOCK ")"));
    return rc;
}
