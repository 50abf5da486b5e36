/*
 * retention_sqlite.c - the SQLite half of retention (history_int.h), on a connection of
 * store_sqlite.c. Picks use runs_ended / runs_logs_kept (migration 0011); deletes go run by
 * run with one statement per table prepared once per call (each a primary key prefix): the
 * runs row first, only while the run is still finished and old, then the rest of the runs
 * whose row went.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "store/history_int.h"
#include "store/store_int.h"

/* ?1 before, ?2-?3 the key after which to start, ?4 limit. */
#define PICK_SQL(KEPT)                                                                             \
    "SELECT run_id, dag_id, ended_at FROM runs WHERE ended_at < ?1 AND " HISTORY_FINISHED          \
    " AND (ended_at, run_id) > (?2, ?3)" KEPT " ORDER BY ended_at, run_id LIMIT ?4"

/* What belongs to a run, deleted with it once its runs row is: its task instances, tries,
 * requests and the deliveries of its notifications (migration 0009). */
static const char *const tables[] = {"task_instances", "tries", "run_requests", "deliveries"};

/* STMT (a DELETE or UPDATE of runs) on run ?1 only while it is still finished and ended
 * before the cut (a format: the cut is its last argument): a run cleared since the pick is
 * left as it is. */
#define RECHECK_SQL(STMT) STMT " WHERE run_id = ?1 AND ended_at < %" PRId64 " AND " HISTORY_FINISHED

static int fail(sqlite3 *db, const char *what, struct err *e)
{
    return err_set(e, ERR_DB, "cannot %s: %s", what, sqlite3_errmsg(db));
}

int retention_sqlite_pick(void *conn, int64_t before_ms, bool logs_kept, int64_t after_ms,
                          const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                          struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    sqlite3_stmt *st = NULL;
    const char *sql = logs_kept ? PICK_SQL(" AND logs_purged_at IS NULL") : PICK_SQL("");
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(db, "pick old runs", e);
    sqlite3_bind_int64(st, 1, before_ms);
    sqlite3_bind_int64(st, 2, after_ms);
    sqlite3_bind_text(st, 3, after_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    struct retention_run *v = xcalloc(limit ? limit : 1, sizeof(*v));
    size_t k = 0;
    int rc = SQLITE_DONE;
    while (k < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *id = (const char *)sqlite3_column_text(st, 0);
        const char *dag = (const char *)sqlite3_column_text(st, 1);
        v[k].run_id = xstrdup(id ? id : "");
        v[k].dag_id = xstrdup(dag ? dag : "");
        v[k].ended_at_ms = sqlite3_column_int64(st, 2);
        k++;
    }
    int r = 0;
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
        r = fail(db, "pick old runs", e);
        store_free_retention_runs(v, k);
        v = NULL, k = 0;
    }
    sqlite3_finalize(st);
    *out = v;
    *n = k;
    return r;
}

/* Which runs each_run runs its statement for, and what it learns. */
enum each_mode {
    EACH_ALL,  /* every run */
    EACH_MARK, /* every run; done: the statement changed its row */
    EACH_DONE, /* only the runs marked done */
};

/* Runs sql (?1: the run id) for each run of mode; *changes (NULL: not wanted) adds the rows
 * each changed, or the count it selects. */
static int each_run(sqlite3 *db, const char *sql, struct retention_run *runs, size_t n,
                    enum each_mode mode, const char *what, int64_t *changes, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return fail(db, what, e);
    int r = 0;
    for (size_t i = 0; i < n && r == 0; i++) {
        if (mode == EACH_DONE && !runs[i].done)
            continue;
        sqlite3_bind_text(st, 1, runs[i].run_id, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW && changes)
            *changes += sqlite3_column_int64(st, 0);
        else if (rc == SQLITE_DONE && changes)
            *changes += sqlite3_changes(db);
        else if (rc != SQLITE_DONE && rc != SQLITE_ROW)
            r = fail(db, what, e);
        if (mode == EACH_MARK && rc == SQLITE_DONE)
            runs[i].done = sqlite3_changes(db) > 0;
        sqlite3_reset(st);
    }
    sqlite3_finalize(st);
    return r;
}

int retention_sqlite_count_tis(void *conn, const struct retention_run *runs, size_t n, int64_t *tis,
                               struct err *e)
{
    return each_run(store__sqlite(conn), "SELECT COUNT(*) FROM task_instances WHERE run_id = ?1",
                    (struct retention_run *)runs, n, EACH_ALL, "count task instances", tis, e);
}

int retention_sqlite_delete(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                            int64_t *tis, struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    char sql[200];
    snprintf(sql, sizeof sql, RECHECK_SQL("DELETE FROM runs"), before_ms);
    int r = each_run(db, sql, runs, n, EACH_MARK, "delete old runs", NULL, e);
    for (size_t t = 0; t < sizeof tables / sizeof *tables && r == 0; t++) {
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ?1", tables[t]);
        r = each_run(db, sql, runs, n, EACH_DONE, "delete old runs", t == 0 ? tis : NULL, e);
    }
    return r;
}

int retention_sqlite_logs_done(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                               int64_t at_ms, struct err *e)
{
    char sql[200];
    snprintf(sql, sizeof sql,
             RECHECK_SQL("UPDATE runs SET logs_purged_at = %" PRId64) " AND logs_purged_at IS NULL",
             at_ms, before_ms);
    return each_run(store__sqlite(conn), sql, runs, n, EACH_MARK, "mark logs removed", NULL, e);
}
