/*
 * retention.c - the store's side of retention (retention.h), with the SQL of
 * both backends on the store's own connection (store__sqlite / store__pg).
 * Picks use runs_ended / runs_logs_kept (migration 0011 / 0015). SQLite
 * deletes run by run with statements prepared once per call (each a primary
 * key prefix); PostgreSQL deletes a batch per table in one statement
 * (run_id = ANY of an array literal).
 *
 * Any thread that may block, one at a time per store.
 */
#include "store/retention.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

#define RETENTION_FINISHED "state IN ('success', 'failed', 'cancelled')"
/* 1 before, 2-3 the key after which to start, 4 limit. */
#define RETENTION_PICK_SQL(P1, P2, P3, P4, KEPT)                                                   \
    "SELECT run_id, dag_id, ended_at FROM runs WHERE ended_at < " P1 " AND " RETENTION_FINISHED    \
    " AND (ended_at, run_id) > (" P2 ", " P3 ")" KEPT " ORDER BY ended_at, run_id LIMIT " P4
#define RETENTION_KEPT " AND logs_purged_at IS NULL"

/* What belongs to a run, deleted with it (the runs row last). The issue 13 deliveries of
 * notifications, once they have a table keyed by run, belong in both lists. */
static const char *const sqlite_tables[] = {"task_instances", "tries", "run_requests", "runs"};
static const char *const pg_tables[] = {"task_instances", "tries",    "run_requests", "ti_queue",
                                        "try_results",    "try_logs", "runs"};
/* PostgreSQL: the advisory lock key of retention ("baram retention", as pg_locks shows it). */
#define RETENTION_PG_LOCK "7262013"

static bool retention_pg(struct store *s)
{
    return store__backend(s) == &store__pg_backend;
}

void store_free_retention_runs(struct retention_run *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].run_id);
        free(v[i].dag_id);
    }
    free(v);
}

static int sqlite_fail(sqlite3 *db, const char *what, struct err *e)
{
    return err_set(e, ERR_DB, "cannot %s: %s", what, sqlite3_errmsg(db));
}

static int pick_sqlite(struct store *s, int64_t before_ms, bool kept, int64_t after_ms,
                       const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                       struct err *e)
{
    sqlite3 *db = store__sqlite(store__conn(s));
    sqlite3_stmt *st = NULL;
    const char *sql = kept ? RETENTION_PICK_SQL("?1", "?2", "?3", "?4", RETENTION_KEPT)
                           : RETENTION_PICK_SQL("?1", "?2", "?3", "?4", "");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sqlite_fail(db, "pick old runs", e);
    sqlite3_bind_int64(st, 1, before_ms);
    sqlite3_bind_int64(st, 2, after_ms);
    sqlite3_bind_text(st, 3, after_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    struct retention_run *v = xcalloc(limit ? limit : 1, sizeof(*v));
    size_t k = 0;
    int rc;
    while (k < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *dag = (const char *)sqlite3_column_text(st, 1);
        v[k].run_id = xstrdup(id ? id : "");
        v[k].dag_id = xstrdup(dag ? dag : "");
        v[k].ended_at_ms = sqlite3_column_int64(st, 2);
        k++;
    }
    int r = 0;
    if (k < limit && rc != SQLITE_DONE) {
        r = sqlite_fail(db, "pick old runs", e);
        store_free_retention_runs(v, k);
        v = NULL, k = 0;
    }
    sqlite3_finalize(st);
    *out = v;
    *n = k;
    return r;
}

static int pick_pg(struct store *s, int64_t before_ms, bool kept, int64_t after_ms,
                   const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                   struct err *e)
{
    char before[24], after[24], lim[24];
    snprintf(before, sizeof before, "%" PRId64, before_ms);
    snprintf(after, sizeof after, "%" PRId64, after_ms);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[] = {before, after, after_id, lim};
    const char *sql =
        kept ? RETENTION_PICK_SQL("$1::bigint", "$2::bigint", "$3::text", "$4::bigint",
                                  RETENTION_KEPT)
             : RETENTION_PICK_SQL("$1::bigint", "$2::bigint", "$3::text", "$4::bigint", "");
    PGresult *res = NULL;
    int r =
        pg__exec_params(store__pg(store__conn(s)), sql, 4, params, "cannot pick old runs", &res, e);
    if (r < 0)
        return r;
    size_t k = (size_t)PQntuples(res);
    struct retention_run *v = xcalloc(k ? k : 1, sizeof(*v));
    for (size_t i = 0; i < k; i++) {
        v[i].run_id = xstrdup(PQgetvalue(res, (int)i, 0));
        v[i].dag_id = xstrdup(PQgetvalue(res, (int)i, 1));
        v[i].ended_at_ms = strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
    }
    PQclear(res);
    *out = v;
    *n = k;
    return 0;
}

int store_retention_pick(struct store *s, int64_t before_ms, bool logs_kept, int64_t after_ms,
                         const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                         struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!after_id) {
        after_ms = INT64_MIN;
        after_id = "";
    }
    return retention_pg(s)
               ? pick_pg(s, before_ms, logs_kept, after_ms, after_id, limit, out, n, e)
               : pick_sqlite(s, before_ms, logs_kept, after_ms, after_id, limit, out, n, e);
}

/* SQLite: runs sql (one ?1, the run id) for each run; *changes: the rows it changed in all. */
static int each_run_sqlite(sqlite3 *db, const char *sql, const struct retention_run *runs, size_t n,
                           const char *what, int64_t *changes, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return sqlite_fail(db, what, e);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        sqlite3_bind_text(st, 1, runs[i].run_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && changes) /* a count */
            *changes += sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE && changes)
            *changes += sqlite3_changes(db);
        else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            r = sqlite_fail(db, what, e);
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return r;
}

/* PostgreSQL: the run ids as one array literal (b's text). */
static const char *pg_ids(struct buf *b, const struct retention_run *runs, size_t n)
{
    buf_init(b, BUF_NO_MAX);
    for (size_t i = 0; i < n; i++)
        pg__arr_str(b, runs[i].run_id);
    return pg__arr_end(b);
}

/* PostgreSQL: runs sql ($1, the array of run ids); *changes: rows changed, or the count it
 * selects. */
static int ids_pg(struct store *s, const char *sql, const char *ids, const char *what,
                  int64_t *changes, struct err *e)
{
    PGresult *res = NULL;
    const char *params[] = {ids};
    int r = pg__exec_params(store__pg(store__conn(s)), sql, 1, params, what, &res, e);
    if (r < 0)
        return r;
    if (changes)
        *changes += PQresultStatus(res) == PGRES_TUPLES_OK
                        ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                        : strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

int store_retention_count_tis(struct store *s, const struct retention_run *runs, size_t n,
                              int64_t *tis, struct err *e)
{
    *tis = 0;
    if (n == 0)
        return 0;
    if (!retention_pg(s))
        return each_run_sqlite(store__sqlite(store__conn(s)),
                               "SELECT COUNT(*) FROM task_instances WHERE run_id = ?1", runs, n,
                               "count task instances", tis, e);
    struct buf b;
    int r = ids_pg(s, "SELECT COUNT(*) FROM task_instances WHERE run_id = ANY($1::text[])",
                   pg_ids(&b, runs, n), "cannot count task instances", tis, e);
    buf_release(&b);
    return r;
}

/* Runs the statements of one transaction: 0, or the first failure (rolled back). */
static int retention_txn(struct store *s, int r, struct err *e)
{
    if (r == 0 && (r = store_commit(s, e)) == 0)
        return 0;
    store_rollback(s);
    return r;
}

int store_retention_delete(struct store *s, const struct retention_run *runs, size_t n,
                           int64_t *tis, struct err *e)
{
    *tis = 0;
    if (n == 0)
        return 0;
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    char sql[160];
    if (!retention_pg(s)) {
        sqlite3 *db = store__sqlite(store__conn(s));
        for (size_t t = 0; t < sizeof sqlite_tables / sizeof *sqlite_tables && r == 0; t++) {
            snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ?1", sqlite_tables[t]);
            r = each_run_sqlite(db, sql, runs, n, "delete old runs", t == 0 ? tis : NULL, e);
        }
        return retention_txn(s, r, e);
    }
    struct buf b;
    const char *ids = pg_ids(&b, runs, n);
    for (size_t t = 0; t < sizeof pg_tables / sizeof *pg_tables && r == 0; t++) {
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ANY($1::text[])", pg_tables[t]);
        r = ids_pg(s, sql, ids, "cannot delete old runs", t == 0 ? tis : NULL, e);
    }
    buf_release(&b);
    return retention_txn(s, r, e);
}

int store_retention_logs_done(struct store *s, const struct retention_run *runs, size_t n,
                              int64_t at_ms, struct err *e)
{
    if (n == 0)
        return 0;
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    char sql[160];
    if (!retention_pg(s)) {
        snprintf(sql, sizeof sql, "UPDATE runs SET logs_purged_at = %" PRId64 " WHERE run_id = ?1",
                 at_ms);
        r = each_run_sqlite(store__sqlite(store__conn(s)), sql, runs, n, "mark logs removed", NULL,
                            e);
        return retention_txn(s, r, e);
    }
    struct buf b;
    const char *ids = pg_ids(&b, runs, n);
    snprintf(sql, sizeof sql,
             "UPDATE runs SET logs_purged_at = %" PRId64 " WHERE run_id = ANY($1::text[])", at_ms);
    r = ids_pg(s, "DELETE FROM try_logs WHERE run_id = ANY($1::text[])", ids,
               "cannot delete stored logs", NULL, e);
    if (r == 0)
        r = ids_pg(s, sql, ids, "cannot mark logs removed", NULL, e);
    buf_release(&b);
    return retention_txn(s, r, e);
}

int store_retention_lock(struct store *s, bool *got, struct err *e)
{
    *got = true;
    if (!retention_pg(s))
        return 0;
    PGresult *res = NULL;
    int r = pg__exec_params(store__pg(store__conn(s)),
                            "SELECT pg_try_advisory_lock(" RETENTION_PG_LOCK ")", 0, NULL,
                            "cannot take the retention lock", &res, e);
    if (r < 0)
        return r;
    *got = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

void store_retention_unlock(struct store *s)
{
    if (!retention_pg(s))
        return;
    PGresult *res = NULL;
    if (pg__exec_params(store__pg(store__conn(s)),
                        "SELECT pg_advisory_unlock(" RETENTION_PG_LOCK ")", 0, NULL,
                        "cannot release the retention lock", &res, NULL) == 0)
        PQclear(res);
}
