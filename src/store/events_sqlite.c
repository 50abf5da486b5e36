/*
 * events_sqlite.c - the SQLite backend's event log (events.h): the entries
 * events_* of store__sqlite_backend, each on a connection of store_sqlite.c
 * (store__sqlite gives its handle). The writer's statements are prepared
 * once per connection; reads prepare per call (a stream reads in pages).
 * One thread at a time per connection.
 */
#include "store/events.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "base/err.h"
#include "base/xalloc.h"
#include "store/store.h"
#include "store/store_int.h"

/* One event's append: ?1 at, ?2 kind, ?3 dag_id (NULL: the run's), ?4 run_id, ?5 task_id,
 * ?6 state, ?7 try_number. */
#define EVENTS_PUT_SQL                                                                             \
    "INSERT INTO events (at, kind, dag_id, run_id, task_id, state, try_number) VALUES (?1, ?2, "   \
    "COALESCE(?3, (SELECT dag_id FROM runs WHERE run_id = ?4)), ?4, ?5, ?6, ?7)"

/* Fills e with what failed on the event log and SQLite's words for why; returns ERR_DB. */
static int events_fail(sqlite3 *db, struct err *e, const char *what)
{
    return err_set(e, ERR_DB, "cannot %s the event log: %s", what, sqlite3_errmsg(db));
}

struct sqlite_events_w {
    sqlite3 *db;
    sqlite3_stmt *put;
    sqlite3_stmt *prune;
};

int events_sqlite_w_open(void *conn, void **out, struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    struct sqlite_events_w *w = xcalloc(1, sizeof(*w));
    w->db = db;
    if (sqlite3_prepare_v3(db, EVENTS_PUT_SQL, -1, SQLITE_PREPARE_PERSISTENT, &w->put, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db, "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
                           -1, SQLITE_PREPARE_PERSISTENT, &w->prune, NULL) != SQLITE_OK) {
        int r = events_fail(db, e, "prepare appends to");
        events_sqlite_w_close(w);
        return r;
    }
    *out = w;
    return 0;
}

void events_sqlite_w_close(void *wp)
{
    struct sqlite_events_w *w = wp;
    if (!w)
        return;
    sqlite3_finalize(w->put);
    sqlite3_finalize(w->prune);
    free(w);
}

static void events_bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static int events_step_put(sqlite3_stmt *st, enum event_kind kind, const char *dag_id,
                           const char *run_id, const char *task_id, const char *state,
                           int try_number, int64_t at_ms, sqlite3 *db, struct err *e)
{
    sqlite3_bind_int64(st, 1, at_ms);
    sqlite3_bind_text(st, 2, event_kind_name(kind), -1, SQLITE_STATIC);
    events_bind_text(st, 3, dag_id);
    events_bind_text(st, 4, run_id);
    events_bind_text(st, 5, task_id);
    events_bind_text(st, 6, state);
    sqlite3_bind_int(st, 7, try_number);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE ? 0 : events_fail(db, e, "append to");
}

int events_sqlite_w_put(void *wp, enum event_kind kind, const char *dag_id, const char *run_id,
                        const char *task_id, const char *state, int try_number, int64_t at_ms,
                        struct err *e)
{
    struct sqlite_events_w *w = wp;
    return events_step_put(w->put, kind, dag_id, run_id, task_id, state, try_number, at_ms, w->db,
                           e);
}

int events_sqlite_put(void *conn, enum event_kind kind, const char *dag_id, const char *run_id,
                      const char *task_id, const char *state, int try_number, int64_t at_ms,
                      struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, EVENTS_PUT_SQL, -1, &st, NULL) != SQLITE_OK)
        return events_fail(db, e, "append to");
    int r = events_step_put(st, kind, dag_id, run_id, task_id, state, try_number, at_ms, db, e);
    sqlite3_finalize(st);
    return r;
}

int events_sqlite_w_prune(void *wp, int64_t keep, struct err *e)
{
    struct sqlite_events_w *w = wp;
    sqlite3_bind_int64(w->prune, 1, keep);
    int rc = sqlite3_step(w->prune);
    int r = rc == SQLITE_DONE ? 0 : events_fail(w->db, e, "prune");
    sqlite3_reset(w->prune);
    return r;
}

static char *events_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}

int events_sqlite_list(void *conn, int64_t after_id, const char *dag_id, const char *run_id,
                       size_t limit, struct event_rec **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db = store__sqlite(conn);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, at, kind, dag_id, run_id, task_id, state, try_number "
                           "FROM events WHERE id > ?1 AND (?2 IS NULL OR dag_id = ?2) AND "
                           "(?3 IS NULL OR run_id = ?3) ORDER BY id LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return events_fail(db, e, "read");
    sqlite3_bind_int64(st, 1, after_id);
    events_bind_text(st, 2, dag_id);
    events_bind_text(st, 3, run_id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    struct event_rec *v = NULL;
    size_t k = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        xgrow((void **)&v, &cap, k + 1, sizeof(*v));
        struct event_rec *ev = &v[k++];
        memset(ev, 0, sizeof(*ev));
        ev->id = sqlite3_column_int64(st, 0);
        ev->at_ms = sqlite3_column_int64(st, 1);
        const unsigned char *kind = sqlite3_column_text(st, 2);
        ev->kind = kind && strcmp((const char *)kind, "run") == 0 ? EVENT_RUN : EVENT_TI;
        ev->dag_id = events_col(st, 3);
        ev->run_id = events_col(st, 4);
        ev->task_id = events_col(st, 5);
        ev->state = events_col(st, 6);
        ev->try_number = sqlite3_column_int(st, 7);
    }
    int r = rc == SQLITE_DONE ? 0 : events_fail(db, e, "read");
    sqlite3_finalize(st);
    if (r < 0) {
        events_free(v, k);
        return r;
    }
    *out = v;
    *n = k;
    return 0;
}

int events_sqlite_last_id(void *conn, int64_t *id, struct err *e)
{
    *id = 0;
    sqlite3 *db = store__sqlite(conn);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(id), 0) FROM events", -1, &st, NULL) !=
        SQLITE_OK)
        return events_fail(db, e, "read");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    int r = rc == SQLITE_ROW ? 0 : events_fail(db, e, "read");
    sqlite3_finalize(st);
    return r;
}

/* Counts rows by their state column: table is a fixed name, never user input. */
static int events_count(void *conn, const char *sql, int (*parse)(const char *, int *),
                        int64_t *counts, struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return err_set(e, ERR_DB, "cannot count rows: %s", sqlite3_errmsg(db));
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        int k;
        if (name && parse((const char *)name, &k) == 0)
            counts[k] += sqlite3_column_int64(st, 1);
    }
    int r = rc == SQLITE_DONE ? 0 : err_set(e, ERR_DB, "cannot count rows: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return r;
}

static int events_parse_ti(const char *name, int *k)
{
    enum ti_state st;
    int r = ti_state_parse(name, &st);
    *k = (int)st;
    return r;
}

static int events_parse_run(const char *name, int *k)
{
    enum run_state st;
    int r = run_state_parse(name, &st);
    *k = (int)st;
    return r;
}

int events_sqlite_count_tis(void *conn, int64_t counts[TI_STATE_COUNT], struct err *e)
{
    return events_count(conn, "SELECT state, count(*) FROM task_instances GROUP BY state",
                        events_parse_ti, counts, e);
}

int events_sqlite_count_runs(void *conn, int64_t counts[RUN_STATE_COUNT], struct err *e)
{
    return events_count(conn, "SELECT state, count(*) FROM runs GROUP BY state", events_parse_run,
                        counts, e);
}

int events_sqlite_ping(void *conn, struct err *e)
{
    sqlite3 *db = store__sqlite(conn);
    if (sqlite3_exec(db, "SELECT 1", NULL, NULL, NULL) != SQLITE_OK)
        return err_set(e, ERR_DB, "cannot run SELECT 1: %s", sqlite3_errmsg(db));
    return 0;
}
