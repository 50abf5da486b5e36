/*
 * versions_sqlite.c - the SQLite half of a DAG's versions (history_int.h), on a connection
 * of store_sqlite.c (store__sqlite gives its handle). The run counts come from one pass over
 * the DAG's runs (runs_dag_logical), grouped by version, not one count per version.
 */
#include <stdlib.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "store/history_int.h"
#include "store/store_int.h"

/* ?1: the DAG id. Columns: hash, created_at, first run's queue time (NULL: none), runs. */
#define VERSIONS_SQL                                                                               \
    "SELECT v.hash, v.created_at, r.first_at, COALESCE(r.n, 0) FROM dag_versions v LEFT JOIN "     \
    "(SELECT dag_hash, MIN(COALESCE(queued_at, logical_at)) AS first_at, COUNT(*) AS n "           \
    "FROM runs WHERE dag_id = ?1 GROUP BY dag_hash) r ON r.dag_hash = v.hash "                     \
    "WHERE v.dag_id = ?1 ORDER BY v.created_at DESC, v.hash"

int versions_sqlite_list(void *conn, const char *dag_id, struct dag_version_rec **out, size_t *n,
                         struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, VERSIONS_SQL, -1, &st, NULL) != SQLITE_OK)
        return err_set(e, ERR_DB, "cannot list DAG versions: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, dag_id, -1, SQLITE_STATIC);
    size_t cap = 0, k = 0;
    struct dag_version_rec *v = NULL;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (k == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        const char *h = (const char *)sqlite3_column_text(st, 0);
        v[k].hash = xstrdup(h ? h : "");
        v[k].created_at_ms = sqlite3_column_int64(st, 1);
        v[k].first_run_ms =
            sqlite3_column_type(st, 2) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 2);
        v[k].runs = sqlite3_column_int64(st, 3);
        k++;
    }
    int r = 0;
    if (rc != SQLITE_DONE) {
        r = err_set(e, ERR_DB, "cannot list DAG versions: %s", sqlite3_errmsg(db));
        store_free_dag_versions(v, k);
        v = NULL, k = 0;
    }
    sqlite3_finalize(st);
    *out = v;
    *n = k;
    return r;
}

int versions_sqlite_owned(void *conn, const char *dag_id, const char *hash, struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM dag_versions WHERE hash = ?1 AND dag_id = ?2", -1,
                           &st, NULL) != SQLITE_OK)
        return err_set(e, ERR_DB, "cannot read a DAG version: %s", sqlite3_errmsg(db));
    sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, dag_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_ROW ? 1
            : rc == SQLITE_DONE
                ? 0
                : err_set(e, ERR_DB, "cannot read a DAG version: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return r;
}
