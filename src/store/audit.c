/*
 * audit.c - the audit log's rows (audit.h) on both backends: the same two
 * statements, bound with SQLite's API or sent as text parameters to
 * PostgreSQL, so both give the same rows.
 */
#include "store/audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

#define AUDIT_COLS "id, at, username, source, action, dag_id, run_id, task_id, details"

void audit_rec_release(struct audit_rec *a)
{
    if (!a)
        return;
    free(a->user);
    free(a->source);
    free(a->action);
    free(a->dag_id);
    free(a->run_id);
    free(a->task_id);
    free(a->details);
    memset(a, 0, sizeof *a);
}

void store_audit_free(struct audit_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        audit_rec_release(&v[i]);
    free(v);
}

static bool is_sqlite(struct store *s)
{
    return store__backend(s) == &store__sqlite_backend;
}

/* ---- SQLite ---- */

static int sq_fail(sqlite3 *db, const char *what, struct err *e)
{
    return err_set(e, ERR_DB, "cannot %s the audit log: %s", what, sqlite3_errmsg(db));
}

static void sq_bind(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static char *sq_text(sqlite3_stmt *st, int i)
{
    const unsigned char *v = sqlite3_column_text(st, i);
    return v ? xstrdup((const char *)v) : NULL;
}

static int sq_put(sqlite3 *db, const struct audit_rec *a, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "INSERT INTO audit (at, username, source, action, dag_id, run_id, "
                           "task_id, details) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(db, "write", e);
    sqlite3_bind_int64(st, 1, a->at_ms);
    sq_bind(st, 2, a->user);
    sq_bind(st, 3, a->source);
    sq_bind(st, 4, a->action);
    sq_bind(st, 5, a->dag_id);
    sq_bind(st, 6, a->run_id);
    sq_bind(st, 7, a->task_id);
    sq_bind(st, 8, a->details);
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? 0 : sq_fail(db, "write", e);
    sqlite3_finalize(st);
    return r;
}

static int sq_list(sqlite3 *db, const char *dag_id, const char *user, int64_t before_id,
                   int64_t limit, struct audit_rec **out, size_t *n, struct err *e)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT " AUDIT_COLS " FROM audit WHERE (?1 IS NULL OR dag_id = ?1) "
                           "AND (?2 IS NULL OR username = ?2) AND (?3 <= 0 OR id < ?3) "
                           "ORDER BY id DESC LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return sq_fail(db, "read", e);
    sq_bind(st, 1, dag_id);
    sq_bind(st, 2, user);
    sqlite3_bind_int64(st, 3, before_id);
    sqlite3_bind_int64(st, 4, limit);
    struct audit_rec *v = NULL;
    size_t nv = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        xgrow((void **)&v, &cap, nv + 1, sizeof *v);
        struct audit_rec *a = &v[nv++];
        a->id = sqlite3_column_int64(st, 0);
        a->at_ms = sqlite3_column_int64(st, 1);
        a->user = sq_text(st, 2);
        a->source = sq_text(st, 3);
        a->action = sq_text(st, 4);
        a->dag_id = sq_text(st, 5);
        a->run_id = sq_text(st, 6);
        a->task_id = sq_text(st, 7);
        a->details = sq_text(st, 8);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        store_audit_free(v, nv);
        return sq_fail(db, "read", e);
    }
    *out = v;
    *n = nv;
    return 0;
}

/* ---- PostgreSQL ---- */

static char *pg_text(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static int pg_put(PGconn *c, const struct audit_rec *a, struct err *e)
{
    char at[24];
    snprintf(at, sizeof at, "%" PRId64, a->at_ms);
    const char *p[] = {at,        a->user,   a->source,  a->action,
                       a->dag_id, a->run_id, a->task_id, a->details};
    return pg__exec_params(c,
                           "INSERT INTO audit (at, username, source, action, dag_id, run_id, "
                           "task_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                           8, p, "cannot write the audit log", NULL, e);
}

static int pg_list(PGconn *c, const char *dag_id, const char *user, int64_t before_id,
                   int64_t limit, struct audit_rec **out, size_t *n, struct err *e)
{
    char before[24], lim[24];
    snprintf(before, sizeof before, "%" PRId64, before_id);
    snprintf(lim, sizeof lim, "%" PRId64, limit);
    const char *p[] = {dag_id, user, before, lim};
    PGresult *r = NULL;
    int rc = pg__exec_params(c,
                             "SELECT " AUDIT_COLS " FROM audit WHERE ($1::text IS NULL OR "
                             "dag_id = $1) AND ($2::text IS NULL OR username = $2) AND "
                             "($3::bigint <= 0 OR id < $3) ORDER BY id DESC LIMIT $4",
                             4, p, "cannot read the audit log", &r, e);
    if (rc < 0)
        return rc;
    int rows = PQntuples(r);
    struct audit_rec *v = xcalloc(rows ? (size_t)rows : 1, sizeof *v);
    for (int i = 0; i < rows; i++) {
        struct audit_rec *a = &v[i];
        a->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        a->at_ms = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        a->user = pg_text(r, i, 2);
        a->source = pg_text(r, i, 3);
        a->action = pg_text(r, i, 4);
        a->dag_id = pg_text(r, i, 5);
        a->run_id = pg_text(r, i, 6);
        a->task_id = pg_text(r, i, 7);
        a->details = pg_text(r, i, 8);
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

/* ---- both ---- */

int store_audit_put(struct store *s, const struct audit_rec *a, struct err *e)
{
    if (!a->user || !a->source || !a->action)
        return err_set(e, ERR_DB, "cannot write the audit log: a row without user or action");
    if (is_sqlite(s))
        return sq_put(store__sqlite(store__conn(s)), a, e);
    return pg_put(store__pg(store__conn(s)), a, e);
}

int store_audit_list(struct store *s, const char *dag_id, const char *user, int64_t before_id,
                     int64_t limit, struct audit_rec **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (is_sqlite(s))
        return sq_list(store__sqlite(store__conn(s)), dag_id, user, before_id, limit, out, n, e);
    return pg_list(store__pg(store__conn(s)), dag_id, user, before_id, limit, out, n, e);
}
