/*
 * events.c - the event log's SQL (see events.h), on the SQLite connection of
 * a struct store (store__conn). The writer's statements are prepared once
 * per connection; reads, and the one-off appends of changes written outside
 * the writer (events_put), prepare per call.
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

struct events_w {
    sqlite3 *db;
    sqlite3_stmt *put;
    sqlite3_stmt *prune;
};

const char *event_kind_name(enum event_kind k)
{
    return k == EVENT_RUN ? "run" : "task_instance";
}

void event_rec_release(struct event_rec *e)
{
    free(e->dag_id);
    free(e->run_id);
    free(e->task_id);
    free(e->state);
    memset(e, 0, sizeof(*e));
}

void events_free(struct event_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        event_rec_release(&v[i]);
    free(v);
}

static sqlite3 *events_db(struct store *s)
{
    return store__sqlite(store__conn(s));
}

int events_w_open(struct store *s, struct events_w **out)
{
    sqlite3 *db = events_db(s);
    if (!db)
        return -ENOTSUP;
    struct events_w *w = xcalloc(1, sizeof(*w));
    w->db = db;
    if (sqlite3_prepare_v3(db, EVENTS_PUT_SQL, -1, SQLITE_PREPARE_PERSISTENT, &w->put, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(db, "DELETE FROM events WHERE id <= (SELECT MAX(id) FROM events) - ?1",
                           -1, SQLITE_PREPARE_PERSISTENT, &w->prune, NULL) != SQLITE_OK) {
        events_w_close(w);
        return ERR_DB;
    }
    *out = w;
    return 0;
}

void events_w_close(struct events_w *w)
{
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
                           int try_number, int64_t at_ms)
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
    return rc == SQLITE_DONE ? 0 : ERR_DB;
}

int events_w_put(struct events_w *w, enum event_kind kind, const char *dag_id, const char *run_id,
                 const char *task_id, const char *state, int try_number, int64_t at_ms)
{
    return events_step_put(w->put, kind, dag_id, run_id, task_id, state, try_number, at_ms);
}

int events__put(struct sqlite3 *db, enum event_kind kind, const char *dag_id, const char *run_id,
                const char *task_id, const char *state, int try_number, int64_t at_ms)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, EVENTS_PUT_SQL, -1, &st, NULL) != SQLITE_OK)
        return ERR_DB;
    int r = events_step_put(st, kind, dag_id, run_id, task_id, state, try_number, at_ms);
    sqlite3_finalize(st);
    return r;
}

int events_put(struct store *s, enum event_kind kind, const char *dag_id, const char *run_id,
               const char *task_id, const char *state, int try_number, int64_t at_ms)
{
    sqlite3 *db = events_db(s);
    if (!db)
        return -ENOTSUP;
    return events__put(db, kind, dag_id, run_id, task_id, state, try_number, at_ms);
}

int events_w_prune(struct events_w *w)
{
    sqlite3_bind_int64(w->prune, 1, EVENTS_KEEP);
    int rc = sqlite3_step(w->prune);
    sqlite3_reset(w->prune);
    return rc == SQLITE_DONE ? 0 : ERR_DB;
}

static char *events_col(sqlite3_stmt *st, int i)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? xstrdup((const char *)t) : NULL;
}

int events_list(struct store *s, int64_t after_id, const char *dag_id, const char *run_id,
                size_t limit, struct event_rec **out, size_t *n)
{
    *out = NULL;
    *n = 0;
    sqlite3 *db = events_db(s);
    if (!db)
        return -ENOTSUP;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db,
                           "SELECT id, at, kind, dag_id, run_id, task_id, state, try_number "
                           "FROM events WHERE id > ?1 AND (?2 IS NULL OR dag_id = ?2) AND "
                           "(?3 IS NULL OR run_id = ?3) ORDER BY id LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, after_id);
    events_bind_text(st, 2, dag_id);
    events_bind_text(st, 3, run_id);
    sqlite3_bind_int64(st, 4, (sqlite3_int64)limit);
    struct event_rec *v = NULL;
    size_t k = 0, cap = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        xgrow((void **)&v, &cap, k + 1, sizeof(*v));
        struct event_rec *e = &v[k++];
        memset(e, 0, sizeof(*e));
        e->id = sqlite3_column_int64(st, 0);
        e->at_ms = sqlite3_column_int64(st, 1);
        const unsigned char *kind = sqlite3_column_text(st, 2);
        e->kind = kind && strcmp((const char *)kind, "run") == 0 ? EVENT_RUN : EVENT_TI;
        e->dag_id = events_col(st, 3);
        e->run_id = events_col(st, 4);
        e->task_id = events_col(st, 5);
        e->state = events_col(st, 6);
        e->try_number = sqlite3_column_int(st, 7);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        events_free(v, k);
        return ERR_DB;
    }
    *out = v;
    *n = k;
    return 0;
}

int events_last_id(struct store *s, int64_t *id)
{
    *id = 0;
    sqlite3 *db = events_db(s);
    if (!db)
        return -ENOTSUP;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, "SELECT COALESCE(MAX(id), 0) FROM events", -1, &st, NULL) !=
        SQLITE_OK)
        return ERR_DB;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *id = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? 0 : ERR_DB;
}

/* Counts rows by their state column: table is a fixed name, never user input. */
static int events_count(struct store *s, const char *sql, int (*parse)(const char *, int *),
                        int64_t *counts)
{
    sqlite3 *db = events_db(s);
    if (!db)
        return -ENOTSUP;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return ERR_DB;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const unsigned char *name = sqlite3_column_text(st, 0);
        int k;
        if (name && parse((const char *)name, &k) == 0)
            counts[k] += sqlite3_column_int64(st, 1);
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : ERR_DB;
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

int events_count_tis(struct store *s, int64_t counts[TI_STATE_COUNT])
{
    for (int i = 0; i < TI_STATE_COUNT; i++)
        counts[i] = 0;
    return events_count(s, "SELECT state, count(*) FROM task_instances GROUP BY state",
                        events_parse_ti, counts);
}

int events_count_runs(struct store *s, int64_t counts[RUN_STATE_COUNT])
{
    for (int i = 0; i < RUN_STATE_COUNT; i++)
        counts[i] = 0;
    return events_count(s, "SELECT state, count(*) FROM runs GROUP BY state", events_parse_run,
                        counts);
}
