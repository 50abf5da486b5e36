/*
 * deliveries.c - notify: the `deliveries` table (deliveries.h) on both
 * backends. The SQL is written once per backend here rather than in the
 * backend table of store_int.h: two statements, the same columns and rows.
 * Threads: those of the store used.
 */
#include "store/deliveries.h"

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/parse.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store_int.h"

#define DELIVERY_COLS                                                                              \
    "id, run_id, task_id, try_number, hook, notifier, attempts, state, status, error, "            \
    "created_at, updated_at"

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

char *delivery_id(const struct delivery_rec *r)
{
    return xasprintf("%s/%s/%d/%s/%s", r->run_id, r->task_id ? r->task_id : "", r->try_number,
                     r->hook, r->notifier);
}

void delivery_rec_release(struct delivery_rec *r)
{
    free(r->id);
    free(r->run_id);
    free(r->task_id);
    free(r->hook);
    free(r->notifier);
    free(r->state);
    free(r->error);
    memset(r, 0, sizeof *r);
}

void delivery_rec_copy(struct delivery_rec *dst, const struct delivery_rec *src)
{
    *dst = *src;
    dst->id = dup_or_null(src->id);
    dst->run_id = dup_or_null(src->run_id);
    dst->task_id = dup_or_null(src->task_id);
    dst->hook = dup_or_null(src->hook);
    dst->notifier = dup_or_null(src->notifier);
    dst->state = dup_or_null(src->state);
    dst->error = dup_or_null(src->error);
}

void deliveries_free(struct delivery_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        delivery_rec_release(&v[i]);
    free(v);
}

static bool is_pg(struct store *s)
{
    return strcmp(store__backend(s)->name, "sqlite") != 0;
}

/* ---- SQLite ---- */

static int sq_fail(sqlite3 *db, struct err *e, const char *what)
{
    return err_set(e, ERR_DB, "cannot %s deliveries: %s", what, sqlite3_errmsg(db));
}

static void sq_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static char *sq_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}

static int sq_put(sqlite3 *db, const struct delivery_rec *r, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO deliveries (" DELIVERY_COLS
                           ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(db, e, "write");
    sq_text(st, 1, r->id);
    sq_text(st, 2, r->run_id);
    sq_text(st, 3, r->task_id);
    sqlite3_bind_int(st, 4, r->try_number);
    sq_text(st, 5, r->hook);
    sq_text(st, 6, r->notifier);
    sqlite3_bind_int(st, 7, r->attempts);
    sq_text(st, 8, r->state);
    sqlite3_bind_int64(st, 9, r->status);
    sq_text(st, 10, r->error);
    sqlite3_bind_int64(st, 11, r->created_at_ms);
    sqlite3_bind_int64(st, 12, r->updated_at_ms);
    int rc = sqlite3_step(st) == SQLITE_DONE ? 0 : sq_fail(db, e, "write");
    sqlite3_finalize(st);
    return rc;
}

static int sq_list(sqlite3 *db, const char *run_id, struct delivery_rec **out, size_t *n,
                   struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT " DELIVERY_COLS " FROM deliveries WHERE run_id = ?1 "
                           "ORDER BY created_at, id",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(db, e, "read");
    sq_text(st, 1, run_id);
    struct delivery_rec *v = NULL;
    size_t k = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        xgrow((void **)&v, &cap, k + 1, sizeof *v);
        struct delivery_rec *d = &v[k++];
        memset(d, 0, sizeof *d);
        d->id = sq_col(st, 0);
        d->run_id = sq_col(st, 1);
        d->task_id = sq_col(st, 2);
        d->try_number = sqlite3_column_int(st, 3);
        d->hook = sq_col(st, 4);
        d->notifier = sq_col(st, 5);
        d->attempts = sqlite3_column_int(st, 6);
        d->state = sq_col(st, 7);
        d->status = (long)sqlite3_column_int64(st, 8);
        d->error = sq_col(st, 9);
        d->created_at_ms = sqlite3_column_int64(st, 10);
        d->updated_at_ms = sqlite3_column_int64(st, 11);
    }
    int r = rc == SQLITE_DONE ? 0 : sq_fail(db, e, "read");
    sqlite3_finalize(st);
    if (r < 0) {
        deliveries_free(v, k);
        return r;
    }
    *out = v;
    *n = k;
    return 0;
}

/* ---- PostgreSQL ---- */

static int pg_put(PGconn *c, const struct delivery_rec *r, struct err *e)
{
    char try_s[24], att[24], status[24], cat[24], uat[24];
    snprintf(try_s, sizeof try_s, "%d", r->try_number);
    snprintf(att, sizeof att, "%d", r->attempts);
    snprintf(status, sizeof status, "%ld", r->status);
    snprintf(cat, sizeof cat, "%" PRId64, r->created_at_ms);
    snprintf(uat, sizeof uat, "%" PRId64, r->updated_at_ms);
    const char *p[] = {r->id, r->run_id, r->task_id, try_s,    r->hook, r->notifier,
                       att,   r->state,  status,     r->error, cat,     uat};
    return pg__exec_params(c,
                           "INSERT INTO deliveries (" DELIVERY_COLS
                           ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "
                           "ON CONFLICT (id) DO UPDATE SET attempts = EXCLUDED.attempts, "
                           "state = EXCLUDED.state, status = EXCLUDED.status, "
                           "error = EXCLUDED.error, updated_at = EXCLUDED.updated_at",
                           12, p, "write deliveries", NULL, e);
}

static char *pg_col(PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : xstrdup(PQgetvalue(res, row, col));
}

static int64_t dl_int64(PGresult *res, int row, int col)
{
    int64_t v = 0;
    if (parse_int64(PQgetvalue(res, row, col), INT64_MIN, INT64_MAX, &v) < 0)
        v = 0;
    return v;
}

static int dl_int(PGresult *res, int row, int col)
{
    int v = 0;
    if (parse_int(PQgetvalue(res, row, col), INT_MIN, INT_MAX, &v) < 0)
        v = 0;
    return v;
}

static int pg_list(PGconn *c, const char *run_id, struct delivery_rec **out, size_t *n,
                   struct err *e)
{
    const char *p[] = {run_id};
    PGresult *res = NULL;
    int r = pg__exec_params(c,
                            "SELECT " DELIVERY_COLS " FROM deliveries WHERE run_id = $1 "
                            "ORDER BY created_at, id",
                            1, p, "read deliveries", &res, e);
    if (r < 0)
        return r;
    int rows = PQntuples(res);
    struct delivery_rec *v = xcalloc(rows ? (size_t)rows : 1, sizeof *v);
    for (int i = 0; i < rows; i++) {
        struct delivery_rec *d = &v[i];
        d->id = pg_col(res, i, 0);
        d->run_id = pg_col(res, i, 1);
        d->task_id = pg_col(res, i, 2);
        d->try_number = dl_int(res, i, 3);
        d->hook = pg_col(res, i, 4);
        d->notifier = pg_col(res, i, 5);
        d->attempts = dl_int(res, i, 6);
        d->state = pg_col(res, i, 7);
        d->status = (long)dl_int64(res, i, 8);
        d->error = pg_col(res, i, 9);
        d->created_at_ms = dl_int64(res, i, 10);
        d->updated_at_ms = dl_int64(res, i, 11);
    }
    PQclear(res);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

/* ---- public ---- */

int store_put_delivery(struct store *s, const struct delivery_rec *r, struct err *e)
{
    void *conn = store__conn(s);
    return is_pg(s) ? pg_put(store__pg(conn), r, e) : sq_put(store__sqlite(conn), r, e);
}

int store_list_deliveries(struct store *s, const char *run_id, struct delivery_rec **out, size_t *n,
                          struct err *e)
{
    *out = NULL;
    *n = 0;
    void *conn = store__conn(s);
    return is_pg(s) ? pg_list(store__pg(conn), run_id, out, n, e)
                    : sq_list(store__sqlite(conn), run_id, out, n, e);
}
