/*
 * versions.c - a DAG's versions (versions.h), with the SQL of both backends:
 * one statement each, on the store's own connection (store__sqlite /
 * store__pg). The run counts come from one pass over the DAG's runs
 * (runs_dag_logical), grouped by version, not one count per version.
 *
 * Any thread that may block, one at a time per store.
 */
#include "store/versions.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

/* ?1 / $1: the DAG id. Columns: hash, created_at, first run's queue time (NULL: none), runs. */
#define VERSIONS_SQL(P)                                                                            \
    "SELECT v.hash, v.created_at, r.first_at, COALESCE(r.n, 0) FROM dag_versions v LEFT JOIN "     \
    "(SELECT dag_hash, MIN(COALESCE(queued_at, logical_at)) AS first_at, COUNT(*) AS n "           \
    "FROM runs WHERE dag_id = " P " GROUP BY dag_hash) r ON r.dag_hash = v.hash "                  \
    "WHERE v.dag_id = " P " ORDER BY v.created_at DESC, v.hash"
#define VERSION_OF_SQL(P1, P2) "SELECT 1 FROM dag_versions WHERE hash = " P1 " AND dag_id = " P2

static bool versions_pg(struct store *s)
{
    return store__backend(s) == &store__pg_backend;
}

static int versions_list_sqlite(struct store *s, const char *dag_id, struct dag_version_rec **out,
                                size_t *n, struct err *e)
{
    sqlite3 *db = store__sqlite(store__conn(s));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, VERSIONS_SQL("?1"), -1, &st, NULL) != SQLITE_OK)
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

static int versions_list_pg(struct store *s, const char *dag_id, struct dag_version_rec **out,
                            size_t *n, struct err *e)
{
    PGresult *res = NULL;
    const char *params[] = {dag_id};
    int r = pg__exec_params(store__pg(store__conn(s)), VERSIONS_SQL("$1"), 1, params,
                            "cannot list DAG versions", &res, e);
    if (r < 0)
        return r;
    size_t k = (size_t)PQntuples(res);
    struct dag_version_rec *v = k ? xcalloc(k, sizeof(*v)) : NULL;
    for (size_t i = 0; i < k; i++) {
        v[i].hash = xstrdup(PQgetvalue(res, (int)i, 0));
        v[i].created_at_ms = strtoll(PQgetvalue(res, (int)i, 1), NULL, 10);
        v[i].first_run_ms =
            PQgetisnull(res, (int)i, 2) ? -1 : strtoll(PQgetvalue(res, (int)i, 2), NULL, 10);
        v[i].runs = strtoll(PQgetvalue(res, (int)i, 3), NULL, 10);
    }
    PQclear(res);
    *out = v;
    *n = k;
    return 0;
}

int store_list_dag_versions(struct store *s, const char *dag_id, struct dag_version_rec **out,
                            size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!dag_id)
        return err_set(e, -EINVAL, "no DAG id");
    return versions_pg(s) ? versions_list_pg(s, dag_id, out, n, e)
                          : versions_list_sqlite(s, dag_id, out, n, e);
}

void store_free_dag_versions(struct dag_version_rec *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].hash);
    free(v);
}

/* Is version hash dag_id's? 1 yes, 0 no, or a negative code with *e filled. */
static int version_owned(struct store *s, const char *dag_id, const char *hash, struct err *e)
{
    if (versions_pg(s)) {
        PGresult *res = NULL;
        const char *params[] = {hash, dag_id};
        int r = pg__exec_params(store__pg(store__conn(s)), VERSION_OF_SQL("$1", "$2"), 2, params,
                                "cannot read a DAG version", &res, e);
        if (r < 0)
            return r;
        r = PQntuples(res) > 0;
        PQclear(res);
        return r;
    }
    sqlite3 *db = store__sqlite(store__conn(s));
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, VERSION_OF_SQL("?1", "?2"), -1, &st, NULL) != SQLITE_OK)
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

int store_get_dag_version_of(struct store *s, const char *dag_id, const char *hash, char **source,
                             size_t *len, struct err *e)
{
    *source = NULL;
    *len = 0;
    if (!dag_id || !hash)
        return -ENOENT;
    int r = version_owned(s, dag_id, hash, e);
    if (r <= 0)
        return r == 0 ? -ENOENT : r;
    return store_get_dag_version(s, hash, source, len, e);
}
