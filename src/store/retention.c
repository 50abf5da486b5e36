/*
 * retention.c - the store's side of retention (retention.h): the front, which hands each
 * call to its backend's half (history_int.h: retention_sqlite.c, retention_pg.c) and wraps
 * the writes of a batch in one transaction.
 *
 * Any thread that may block, one at a time per store.
 */
#include "store/retention.h"

#include <stdint.h>
#include <stdlib.h>

#include "base/err.h"
#include "store/history_int.h"
#include "store/store.h"
#include "store/store_int.h"

static bool on_sqlite(struct store *s)
{
    return store__backend(s) == &store__sqlite_backend;
}

void store_free_retention_runs(struct retention_run *v, size_t n)
{
    for (size_t i = 0; v && i < n; i++) {
        free(v[i].run_id);
        free(v[i].dag_id);
    }
    free(v);
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
    void *c = store__conn(s);
    return on_sqlite(s)
               ? retention_sqlite_pick(c, before_ms, logs_kept, after_ms, after_id, limit, out, n,
                                       e)
               : retention_pg_pick(c, before_ms, logs_kept, after_ms, after_id, limit, out, n, e);
}

int store_retention_count_tis(struct store *s, const struct retention_run *runs, size_t n,
                              int64_t *tis, struct err *e)
{
    *tis = 0;
    if (n == 0)
        return 0;
    void *c = store__conn(s);
    return on_sqlite(s) ? retention_sqlite_count_tis(c, runs, n, tis, e)
                        : retention_pg_count_tis(c, runs, n, tis, e);
}

/* Ends the transaction of a batch: commits when r is 0, else rolls back; r or the commit's
 * failure. */
static int batch_end(struct store *s, int r, struct err *e)
{
    if (r == 0 && (r = store_commit(s, e)) == 0)
        return 0;
    store_rollback(s);
    return r;
}

/* Clears the runs' done marks. */
static void undone(struct retention_run *runs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        runs[i].done = false;
}

int store_retention_delete(struct store *s, struct retention_run *runs, size_t n, int64_t before_ms,
                           int64_t *tis, struct err *e)
{
    *tis = 0;
    undone(runs, n);
    if (n == 0)
        return 0;
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    void *c = store__conn(s);
    r = on_sqlite(s) ? retention_sqlite_delete(c, runs, n, before_ms, tis, e)
                     : retention_pg_delete(c, runs, n, before_ms, tis, e);
    if ((r = batch_end(s, r, e)) < 0) {
        undone(runs, n);
        *tis = 0;
    }
    return r;
}

int store_retention_logs_done(struct store *s, struct retention_run *runs, size_t n,
                              int64_t before_ms, int64_t at_ms, struct err *e)
{
    undone(runs, n);
    if (n == 0)
        return 0;
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    void *c = store__conn(s);
    r = on_sqlite(s) ? retention_sqlite_logs_done(c, runs, n, before_ms, at_ms, e)
                     : retention_pg_logs_done(c, runs, n, before_ms, at_ms, e);
    if ((r = batch_end(s, r, e)) < 0)
        undone(runs, n);
    return r;
}

int store_retention_lock(struct store *s, bool *got, struct err *e)
{
    *got = true; /* SQLite: one scheduler per home */
    return on_sqlite(s) ? 0 : retention_pg_lock(store__conn(s), got, e);
}

void store_retention_unlock(struct store *s)
{
    if (!on_sqlite(s))
        retention_pg_unlock(store__conn(s));
}
