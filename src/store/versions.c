/*
 * versions.c - a DAG's versions (versions.h): the front, which hands each call to its
 * backend's half (history_int.h: versions_sqlite.c, versions_pg.c).
 *
 * Any thread that may block, one at a time per store.
 */
#include "store/versions.h"

#include <errno.h>
#include <stdlib.h>

#include "base/err.h"
#include "store/history_int.h"
#include "store/store.h"
#include "store/store_int.h"

static bool on_sqlite(struct store *s)
{
    return store__backend(s) == &store__sqlite_backend;
}

int store_list_dag_versions(struct store *s, const char *dag_id, struct dag_version_rec **out,
                            size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!dag_id)
        return err_set(e, -EINVAL, "no DAG id");
    void *c = store__conn(s);
    return on_sqlite(s) ? versions_sqlite_list(c, dag_id, out, n, e)
                        : versions_pg_list(c, dag_id, out, n, e);
}

void store_free_dag_versions(struct dag_version_rec *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++)
        free(v[i].hash);
    free(v);
}

int store_get_dag_version_of(struct store *s, const char *dag_id, const char *hash, char **source,
                             size_t *len, struct err *e)
{
    *source = NULL;
    *len = 0;
    if (!dag_id || !hash)
        return -ENOENT;
    void *c = store__conn(s);
    int r = on_sqlite(s) ? versions_sqlite_owned(c, dag_id, hash, e)
                         : versions_pg_owned(c, dag_id, hash, e);
    if (r <= 0)
        return r == 0 ? -ENOENT : r;
    return store_get_dag_version(s, hash, source, len, e);
}
