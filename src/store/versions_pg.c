/*
 * versions_pg.c - the PostgreSQL half of a DAG's versions (history_int.h), with libpq on a
 * connection of store_pg.c (store__pg gives its handle). The same statements as
 * versions_sqlite.c.
 */
#include <stdlib.h>

#include <libpq-fe.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "store/history_int.h"
#include "store/pg_int.h"

#define VERSIONS_SQL                                                                               \
    "SELECT v.hash, v.created_at, r.first_at, COALESCE(r.n, 0) FROM dag_versions v LEFT JOIN "     \
    "(SELECT dag_hash, MIN(COALESCE(queued_at, logical_at)) AS first_at, COUNT(*) AS n "           \
    "FROM runs WHERE dag_id = $1 GROUP BY dag_hash) r ON r.dag_hash = v.hash "                     \
    "WHERE v.dag_id = $1 ORDER BY v.created_at DESC, v.hash"

int versions_pg_list(void *conn, const char *dag_id, struct dag_version_rec **out, size_t *n,
                     struct err *e)
{
    PGresult *res = NULL;
    const char *params[] = {dag_id};
    int r = pg__exec_params(store__pg(conn), VERSIONS_SQL, 1, params, "cannot list DAG versions",
                            &res, e);
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

int versions_pg_owned(void *conn, const char *dag_id, const char *hash, struct err *e)
{
    PGresult *res = NULL;
    const char *params[] = {hash, dag_id};
    int r = pg__exec_params(store__pg(conn),
                            "SELECT 1 FROM dag_versions WHERE hash = $1 AND dag_id = $2", 2, params,
                            "cannot read a DAG version", &res, e);
    if (r < 0)
        return r;
    r = PQntuples(res) > 0;
    PQclear(res);
    return r;
}
