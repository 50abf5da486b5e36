/*
 * retention_pg.c - the PostgreSQL half of retention (history_int.h), with libpq on a
 * connection of store_pg.c. Picks use runs_ended / runs_logs_kept (migration 0015); a batch
 * is deleted with one statement per table (run_id = ANY of an array literal, pg__arr_*): the
 * runs rows first, only those still finished and old, then the rest of the runs whose row
 * went.
 * One process applies retention at a time: a session advisory lock.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "store/history_int.h"
#include "store/pg_int.h"

/* $1 before, $2-$3 the key after which to start, $4 limit. */
#define PICK_SQL(KEPT)                                                                             \
    "SELECT run_id, dag_id, ended_at FROM runs WHERE ended_at < $1::bigint AND " HISTORY_FINISHED  \
    " AND (ended_at, run_id) > ($2::bigint, $3::text)" KEPT                                        \
    " ORDER BY ended_at, run_id LIMIT $4::bigint"

/* What belongs to a run, deleted with it once its runs row is: as retention_sqlite.c's, plus
 * the queue of tries for workers, their results and their stored logs. */
static const char *const tables[] = {"task_instances", "tries",       "run_requests", "deliveries",
                                     "ti_queue",       "try_results", "try_logs"};

/* STMT (a DELETE or UPDATE of runs) on the runs of $1 that are still finished and ended
 * before $2 (READ COMMITTED re-checks a row a clear changed meanwhile): the ids it changed. */
#define RECHECK_SQL(STMT)                                                                          \
    STMT " WHERE run_id = ANY($1::text[]) AND ended_at < $2::bigint AND " HISTORY_FINISHED
#define RECHECK_END " RETURNING run_id"
/* The logs pass's mark (a format: the time of the mark). */
#define LOGS_DONE_SQL                                                                              \
    RECHECK_SQL("UPDATE runs SET logs_purged_at = %" PRId64)                                       \
    " AND logs_purged_at IS NULL" RECHECK_END

/* The advisory lock key of retention ("baram retention", as pg_locks shows it). */
#define LOCK_KEY "7262013"

int retention_pg_pick(void *conn, int64_t before_ms, bool logs_kept, int64_t after_ms,
                      const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                      struct err *e)
{
    char before[24], after[24], lim[24];
    snprintf(before, sizeof before, "%" PRId64, before_ms);
    snprintf(after, sizeof after, "%" PRId64, after_ms);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *params[] = {before, after, after_id, lim};
    const char *sql = logs_kept ? PICK_SQL(" AND logs_purged_at IS NULL") : PICK_SQL("");
    PGresult *res = NULL;
    int r = pg__exec_params(store__pg(conn), sql, 4, params, "cannot pick old runs", &res, e);
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

/* The run ids as one array literal (b's text; the caller releases b); done: only those
 * marked done. */
static const char *ids_of(struct buf *b, const struct retention_run *runs, size_t n, bool done)
{
    buf_init(b, BUF_NO_MAX);
    for (size_t i = 0; i < n; i++)
        if (!done || runs[i].done)
            pg__arr_str(b, runs[i].run_id);
    return pg__arr_end(b);
}

/* Runs sql ($1: the array of run ids); *changes (NULL: not wanted) adds the rows it changed,
 * or the count it selects. */
static int with_ids(void *conn, const char *sql, const char *ids, const char *what,
                    int64_t *changes, struct err *e)
{
    PGresult *res = NULL;
    const char *params[] = {ids};
    int r = pg__exec_params(store__pg(conn), sql, 1, params, what, &res, e);
    if (r < 0)
        return r;
    if (changes)
        *changes += PQresultStatus(res) == PGRES_TUPLES_OK
                        ? strtoll(PQgetvalue(res, 0, 0), NULL, 10)
                        : strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return 0;
}

/* Runs sql (a RECHECK_SQL) on the runs and marks done those whose row it changed: 0 and
 * *any (one was), or a negative code with *e filled. */
static int recheck(void *conn, const char *sql, struct retention_run *runs, size_t n,
                   int64_t before_ms, const char *what, bool *any, struct err *e)
{
    struct buf b;
    char before[24];
    snprintf(before, sizeof before, "%" PRId64, before_ms);
    const char *params[] = {ids_of(&b, runs, n, false), before};
    PGresult *res = NULL;
    int r = pg__exec_params(store__pg(conn), sql, 2, params, what, &res, e);
    buf_release(&b);
    if (r < 0)
        return r;
    *any = false;
    for (int k = 0; k < PQntuples(res); k++) {
        const char *id = PQgetvalue(res, k, 0);
        for (size_t i = 0; i < n; i++)
            if (!runs[i].done && strcmp(runs[i].run_id, id) == 0) {
                runs[i].done = *any = true;
                break;
            }
    }
    PQclear(res);
    return 0;
}

int retention_pg_count_tis(void *conn, const struct retention_run *runs, size_t n, int64_t *tis,
                           struct err *e)
{
    struct buf b;
    int r = with_ids(conn, "SELECT COUNT(*) FROM task_instances WHERE run_id = ANY($1::text[])",
                     ids_of(&b, runs, n, false), "cannot count task instances", tis, e);
    buf_release(&b);
    return r;
}

int retention_pg_delete(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                        int64_t *tis, struct err *e)
{
    bool any = false;
    int r = recheck(conn, RECHECK_SQL("DELETE FROM runs") RECHECK_END, runs, n, before_ms,
                    "cannot delete old runs", &any, e);
    if (r < 0 || !any)
        return r;
    struct buf b;
    const char *ids = ids_of(&b, runs, n, true);
    char sql[160];
    for (size_t t = 0; t < sizeof tables / sizeof *tables && r == 0; t++) {
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE run_id = ANY($1::text[])", tables[t]);
        r = with_ids(conn, sql, ids, "cannot delete old runs", t == 0 ? tis : NULL, e);
    }
    buf_release(&b);
    return r;
}

int retention_pg_logs_done(void *conn, struct retention_run *runs, size_t n, int64_t before_ms,
                           int64_t at_ms, struct err *e)
{
    char sql[300];
    snprintf(sql, sizeof sql, LOGS_DONE_SQL, at_ms);
    bool any = false;
    int r = recheck(conn, sql, runs, n, before_ms, "cannot mark logs removed", &any, e);
    if (r < 0 || !any)
        return r;
    struct buf b;
    r = with_ids(conn, "DELETE FROM try_logs WHERE run_id = ANY($1::text[])",
                 ids_of(&b, runs, n, true), "cannot delete stored logs", NULL, e);
    buf_release(&b);
    return r;
}

int retention_pg_lock(void *conn, bool *got, struct err *e)
{
    PGresult *res = NULL;
    int r = pg__exec_params(store__pg(conn), "SELECT pg_try_advisory_lock(" LOCK_KEY ")", 0, NULL,
                            "cannot take the retention lock", &res, e);
    if (r < 0)
        return r;
    *got = PQgetvalue(res, 0, 0)[0] == 't';
    PQclear(res);
    return 0;
}

void retention_pg_unlock(void *conn)
{
    PGresult *res = NULL;
    if (pg__exec_params(store__pg(conn), "SELECT pg_advisory_unlock(" LOCK_KEY ")", 0, NULL,
                        "cannot release the retention lock", &res, NULL) == 0)
        PQclear(res);
}
