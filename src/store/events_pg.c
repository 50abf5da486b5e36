/*
 * events_pg.c - the PostgreSQL backend's event log (events.h): the entries
 * events_* of store__pg_backend, each on a connection object of store_pg.c
 * (store__pg gives its libpq handle), plus the wake-ups (NOTIFY) and the
 * health probe. One thread at a time per connection.
 *
 * Appends: the writer's events_w_put only gathers its batch's events;
 * events_w_flush inserts them with ONE statement (arrays unnested), in the
 * writer's transaction. A trigger of migration 0004 sends `NOTIFY
 * baram_events` with it, delivered at COMMIT. A batch retried after its
 * COMMIT's answer was lost is not appended twice when it had committed.
 *
 * Reads without gaps: an id is drawn at insert time, so id 10 may commit
 * after id 11, and a reader that moved past 11 would never see 10. Ids are
 * drawn under a shared advisory lock (migration 0004 says why this holds);
 * a read takes the sequence's last value L, waits until the transactions
 * holding that lock then have ended (none: at once), and returns rows up to
 * L only. An appender open longer than the wait holds the stream back: the
 * call says -EAGAIN, and the caller reads again at its next poll.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/events.h"
#include "store/pg_int.h"

/* How long a read waits for the transactions in progress when it started (see above). */
#define EVENTS_PG_WAIT_MS      100
#define EVENTS_PG_LAST_WAIT_MS 1000

/* The columns of one append, the last one's dag_id looked up from the run when NULL. */
#define EVENTS_PG_COLS "at, kind, dag_id, run_id, task_id, state, try_number"
#define EVENTS_PG_DAG  "COALESCE(v.dag_id, (SELECT r.dag_id FROM runs r WHERE r.run_id = v.run_id))"

static int events_pg_fail(void *conn, const PGresult *r, const char *what, struct err *e)
{
    char msg[PG_WHERE_MAX + 64];
    snprintf(msg, sizeof msg, "cannot %s on %s", what, store__pg_where(conn));
    return pg__fail(store__pg(conn), r, msg, e);
}

/* Runs sql with n text parameters (NULL: SQL NULL) and returns its result when its status is
 * want; else NULL with e filled (ERR_DB or -ECONNRESET in *rc). The caller PQclear()s it. */
static PGresult *events_pg_exec(void *conn, const char *sql, int n, const char *const *vals,
                                ExecStatusType want, const char *what, int *rc, struct err *e)
{
    PGconn *pg = store__pg(conn);
    PGresult *r = PQexecParams(pg, sql, n, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(r) == want) {
        *rc = 0;
        return r;
    }
    *rc = events_pg_fail(conn, r, what, e);
    PQclear(r);
    return NULL;
}

/* ---- appends ---- */

/* One array parameter per column, as PostgreSQL array literals being built. */
enum { EV_AT, EV_KIND, EV_DAG, EV_RUN, EV_TASK, EV_STATE, EV_TRY, EV_NCOLS };

struct pg_events_w {
    void *conn;
    struct buf col[EV_NCOLS];
    size_t n; /* events gathered */
    /* The last flush: its events' hash and the first id it drew (0: none). A batch retried
     * after its COMMIT's answer was lost (the connection dropped) may have committed: when the
     * same events come again and that id exists, they are not appended twice. */
    uint64_t last_hash;
    int64_t last_first;
};

int events_pg_w_open(void *conn, void **out, struct err *e)
{
    (void)e;
    struct pg_events_w *w = xcalloc(1, sizeof(*w));
    w->conn = conn;
    for (int i = 0; i < EV_NCOLS; i++)
        buf_init(&w->col[i], BUF_NO_MAX);
    *out = w;
    return 0;
}

static void events_pg_w_reset(struct pg_events_w *w)
{
    for (int i = 0; i < EV_NCOLS; i++)
        buf_reset(&w->col[i]);
    w->n = 0;
}

void events_pg_w_close(void *wp)
{
    struct pg_events_w *w = wp;
    if (!w)
        return;
    for (int i = 0; i < EV_NCOLS; i++)
        buf_release(&w->col[i]);
    free(w);
}

/* Appends one element to an array literal: NULL, or s double-quoted with " and \ escaped. */
static void events_pg_elem(struct buf *b, bool first, const char *s)
{
    if (!first)
        (void)!buf_addc(b, ',');
    if (!s) {
        (void)!buf_adds(b, "NULL");
        return;
    }
    (void)!buf_addc(b, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            (void)!buf_addc(b, '\\');
        (void)!buf_addc(b, *p);
    }
    (void)!buf_addc(b, '"');
}

int events_pg_w_put(void *wp, enum event_kind kind, const char *dag_id, const char *run_id,
                    const char *task_id, const char *state, int try_number, int64_t at_ms,
                    struct err *e)
{
    (void)e;
    struct pg_events_w *w = wp;
    bool first = w->n == 0;
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, at_ms);
    events_pg_elem(&w->col[EV_AT], first, num);
    events_pg_elem(&w->col[EV_KIND], first, event_kind_name(kind));
    events_pg_elem(&w->col[EV_DAG], first, dag_id);
    events_pg_elem(&w->col[EV_RUN], first, run_id ? run_id : "");
    events_pg_elem(&w->col[EV_TASK], first, task_id);
    events_pg_elem(&w->col[EV_STATE], first, state ? state : "");
    snprintf(num, sizeof num, "%d", try_number);
    events_pg_elem(&w->col[EV_TRY], first, num);
    w->n++;
    return 0;
}

/* FNV-1a over the gathered columns. */
static uint64_t events_pg_hash(const struct pg_events_w *w)
{
    uint64_t h = 14695981039346656037ULL;
    for (int i = 0; i < EV_NCOLS; i++) {
        for (size_t k = 0; k < w->col[i].len; k++)
            h = (h ^ (unsigned char)w->col[i].data[k]) * 1099511628211ULL;
        h = (h ^ 0x1f) * 1099511628211ULL;
    }
    return h;
}

/* Whether the events gathered are the last flush's, committed: a retry of a batch whose
 * COMMIT went through though its answer was lost. 0 and *done, or a negative code. */
static int events_pg_committed(struct pg_events_w *w, uint64_t hash, bool *done, struct err *e)
{
    *done = false;
    if (hash != w->last_hash || w->last_first <= 0)
        return 0;
    char id[32];
    snprintf(id, sizeof id, "%" PRId64, w->last_first);
    const char *vals[] = {id};
    int rc;
    PGresult *r =
        events_pg_exec(w->conn, "SELECT EXISTS (SELECT 1 FROM events WHERE id = $1::bigint)", 1,
                       vals, PGRES_TUPLES_OK, "read the event log", &rc, e);
    if (!r)
        return rc;
    *done = PQgetvalue(r, 0, 0)[0] == 't';
    PQclear(r);
    return 0;
}

int events_pg_w_flush(void *wp, struct err *e)
{
    struct pg_events_w *w = wp;
    if (w->n == 0)
        return 0;
    uint64_t hash = events_pg_hash(w);
    bool done;
    int rc = events_pg_committed(w, hash, &done, e);
    if (rc < 0 || done) {
        events_pg_w_reset(w);
        return rc;
    }
    /* ids are drawn in the order of the batch (ORDINALITY), as the writer made the changes */
    static const char sql[] =
        "WITH ins AS (INSERT INTO events (" EVENTS_PG_COLS ") SELECT v.at, v.kind, " EVENTS_PG_DAG
        ", v.run_id, v.task_id, v.state, v.try_number FROM unnest($1::bigint[], $2::text[], "
        "$3::text[], $4::text[], $5::text[], $6::text[], $7::int[]) WITH ORDINALITY "
        "AS v(at, kind, dag_id, run_id, task_id, state, try_number, n) ORDER BY v.n "
        "RETURNING id) SELECT min(id) FROM ins";
    char *vals[EV_NCOLS];
    for (int i = 0; i < EV_NCOLS; i++) {
        struct buf a = BUF_INIT(BUF_NO_MAX);
        (void)!buf_addc(&a, '{');
        (void)!buf_add(&a, w->col[i].data, w->col[i].len);
        (void)!buf_addc(&a, '}');
        vals[i] = buf_detach(&a, NULL);
    }
    PGresult *r = events_pg_exec(w->conn, sql, EV_NCOLS, (const char *const *)vals, PGRES_TUPLES_OK,
                                 "append to the event log", &rc, e);
    if (r) {
        w->last_hash = hash;
        w->last_first = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    }
    PQclear(r);
    for (int i = 0; i < EV_NCOLS; i++)
        free(vals[i]);
    events_pg_w_reset(w); /* a failed batch is rolled back and gathered again */
    return rc;
}

int events_pg_put(void *conn, enum event_kind kind, const char *dag_id, const char *run_id,
                  const char *task_id, const char *state, int try_number, int64_t at_ms,
                  struct err *e)
{
    char at[32], try_s[16];
    snprintf(at, sizeof at, "%" PRId64, at_ms);
    snprintf(try_s, sizeof try_s, "%d", try_number);
    const char *vals[] = {at,      event_kind_name(kind), dag_id, run_id ? run_id : "",
                          task_id, state ? state : "",    try_s};
    int rc;
    PGresult *r =
        events_pg_exec(conn,
                       "INSERT INTO events (" EVENTS_PG_COLS ") SELECT v.at, v.kind, " EVENTS_PG_DAG
                       ", v.run_id, v.task_id, v.state, v.try_number "
                       "FROM (VALUES ($1::bigint, $2::text, $3::text, $4::text, "
                       "$5::text, $6::text, $7::int)) AS v(at, kind, dag_id, run_id, "
                       "task_id, state, try_number)",
                       7, vals, PGRES_COMMAND_OK, "append to the event log", &rc, e);
    PQclear(r);
    return rc;
}

int events_pg_w_prune(void *wp, int64_t keep, struct err *e)
{
    struct pg_events_w *w = wp;
    char k[32];
    snprintf(k, sizeof k, "%" PRId64, keep);
    const char *vals[] = {k};
    int rc;
    PGresult *r = events_pg_exec(
        w->conn, "DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - $1::bigint", 1,
        vals, PGRES_COMMAND_OK, "prune the event log", &rc, e);
    PQclear(r);
    return rc;
}

/* ---- reads ---- */

static char *events_pg_col(const PGresult *r, int row, int col)
{
    return PQgetisnull(r, row, col) ? NULL : xstrdup(PQgetvalue(r, row, col));
}

static void events_pg_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* The advisory lock every id is drawn under (migration 0004): key 7262004, as pg_locks shows
 * it. */
#define EVENTS_PG_LOCK_WHERE                                                                       \
    "locktype = 'advisory' AND classid = 0 AND objid = 7262004 AND objsubid = 1 AND database = "   \
    "(SELECT oid FROM pg_database WHERE datname = current_database())"

/* The transactions appending events now: NULL when none (the lock was free: taken and let go
 * at once, so no appender ever waits on a reader for longer than that), else their
 * virtualtransaction ids as an array literal. */
static const char events_pg_holders_sql[] =
    "SELECT CASE WHEN pg_try_advisory_lock(7262004) THEN CASE WHEN "
    "pg_advisory_unlock(7262004) THEN NULL::text[] END ELSE (SELECT coalesce(array_agg("
    "virtualtransaction), '{}') FROM pg_locks WHERE " EVENTS_PG_LOCK_WHERE " AND granted) END";

/* Whether one of the transactions $1 (virtualtransaction ids) still holds the lock. */
static const char events_pg_held_sql[] =
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE " EVENTS_PG_LOCK_WHERE
    " AND granted AND virtualtransaction = ANY ($1::text[]))";

/* *end: an id every id up to which is final (committed, or never will be), read at the call:
 * the sequence's last value once the appenders of that moment have ended; 0 and *proven false
 * when they are still at it after wait_ms (see the top of the file). */
static int events_pg_end(void *conn, int wait_ms, int64_t *end, bool *proven, struct err *e)
{
    *end = 0;
    *proven = false;
    int rc;
    PGresult *r =
        events_pg_exec(conn, "SELECT coalesce(pg_sequence_last_value('events_id_seq'), 0)", 0, NULL,
                       PGRES_TUPLES_OK, "read the event log", &rc, e);
    if (!r)
        return rc;
    int64_t last = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    if (!(r = events_pg_exec(conn, events_pg_holders_sql, 0, NULL, PGRES_TUPLES_OK,
                             "read the event log", &rc, e)))
        return rc;
    /* NULL: none; "{}": they ended meanwhile */
    char *holders = PQgetisnull(r, 0, 0) || strcmp(PQgetvalue(r, 0, 0), "{}") == 0
                        ? NULL
                        : xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    int64_t deadline = when_mono_ms() + wait_ms;
    for (int pause = 1; holders; pause = pause < 8 ? pause * 2 : pause) {
        if (when_mono_ms() >= deadline) {
            free(holders);
            return 0;
        }
        events_pg_sleep_ms(pause);
        const char *vals[] = {holders};
        if (!(r = events_pg_exec(conn, events_pg_held_sql, 1, vals, PGRES_TUPLES_OK,
                                 "read the event log", &rc, e))) {
            free(holders);
            return rc;
        }
        bool held = PQgetvalue(r, 0, 0)[0] == 't';
        PQclear(r);
        if (!held) {
            free(holders);
            holders = NULL;
        }
    }
    *end = last;
    *proven = true;
    return 0;
}

int events_pg_list(void *conn, int64_t after_id, const char *dag_id, const char *run_id,
                   size_t limit, struct event_rec **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    int64_t end;
    bool proven;
    int rc = events_pg_end(conn, EVENTS_PG_WAIT_MS, &end, &proven, e);
    if (rc < 0)
        return rc;
    if (!proven)
        return err_set(e, -EAGAIN, "events are still being appended to %s: read again later",
                       store__pg_where(conn));
    if (end <= after_id)
        return 0;
    char after[32], upto[32], lim[32];
    snprintf(after, sizeof after, "%" PRId64, after_id);
    snprintf(upto, sizeof upto, "%" PRId64, end);
    snprintf(lim, sizeof lim, "%zu", limit);
    const char *vals[] = {after, upto, dag_id, run_id, lim};
    PGresult *r = events_pg_exec(
        conn,
        "SELECT id, at, kind, dag_id, run_id, task_id, state, try_number FROM events WHERE id > "
        "$1::bigint AND id <= $2::bigint AND ($3::text IS NULL OR dag_id = $3) AND ($4::text IS "
        "NULL OR run_id = $4) ORDER BY id LIMIT $5::bigint",
        5, vals, PGRES_TUPLES_OK, "read the event log", &rc, e);
    if (!r)
        return rc;
    int rows = PQntuples(r);
    struct event_rec *v = rows > 0 ? xcalloc((size_t)rows, sizeof(*v)) : NULL;
    for (int i = 0; i < rows; i++) {
        struct event_rec *ev = &v[i];
        ev->id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
        ev->at_ms = strtoll(PQgetvalue(r, i, 1), NULL, 10);
        ev->kind = strcmp(PQgetvalue(r, i, 2), "run") == 0 ? EVENT_RUN : EVENT_TI;
        ev->dag_id = events_pg_col(r, i, 3);
        ev->run_id = events_pg_col(r, i, 4);
        ev->task_id = events_pg_col(r, i, 5);
        ev->state = events_pg_col(r, i, 6);
        ev->try_number = (int)strtol(PQgetvalue(r, i, 7), NULL, 10);
    }
    PQclear(r);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

int events_pg_last_id(void *conn, int64_t *id, struct err *e)
{
    *id = 0;
    int64_t end;
    bool proven;
    int rc = events_pg_end(conn, EVENTS_PG_LAST_WAIT_MS, &end, &proven, e);
    if (rc < 0 || proven) {
        *id = end;
        return rc;
    }
    /* An appender open for longer than the wait: the newest committed id, which may pass
     * over an id that commits later (never seen by streams starting now). */
    PGresult *r = events_pg_exec(conn, "SELECT coalesce(max(id), 0) FROM events", 0, NULL,
                                 PGRES_TUPLES_OK, "read the event log", &rc, e);
    if (!r)
        return rc;
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return 0;
}

/* Counts rows by their state column: sql names a fixed table, never user input. */
static int events_pg_count(void *conn, const char *sql, int (*parse)(const char *, int *),
                           int64_t *counts, struct err *e)
{
    int rc;
    PGresult *r =
        events_pg_exec(conn, sql, 0, NULL, PGRES_TUPLES_OK, "count rows by state", &rc, e);
    if (!r)
        return rc;
    for (int i = 0; i < PQntuples(r); i++) {
        int k;
        if (!PQgetisnull(r, i, 0) && parse(PQgetvalue(r, i, 0), &k) == 0)
            counts[k] += strtoll(PQgetvalue(r, i, 1), NULL, 10);
    }
    PQclear(r);
    return 0;
}

static int events_pg_parse_ti(const char *name, int *k)
{
    enum ti_state st;
    int r = ti_state_parse(name, &st);
    *k = (int)st;
    return r;
}

static int events_pg_parse_run(const char *name, int *k)
{
    enum run_state st;
    int r = run_state_parse(name, &st);
    *k = (int)st;
    return r;
}

int events_pg_count_tis(void *conn, int64_t counts[TI_STATE_COUNT], struct err *e)
{
    return events_pg_count(conn, "SELECT state, count(*) FROM task_instances GROUP BY state",
                           events_pg_parse_ti, counts, e);
}

int events_pg_count_runs(void *conn, int64_t counts[RUN_STATE_COUNT], struct err *e)
{
    return events_pg_count(conn, "SELECT state, count(*) FROM runs GROUP BY state",
                           events_pg_parse_run, counts, e);
}

/* ---- wake-ups and health ---- */

int events_pg_notify(void *conn, const char *channel, struct err *e)
{
    const char *vals[] = {channel};
    int rc;
    PGresult *r = events_pg_exec(conn, "SELECT pg_notify($1, '')", 1, vals, PGRES_TUPLES_OK,
                                 "send a wake-up (NOTIFY)", &rc, e);
    PQclear(r);
    return rc;
}

int events_pg_ping(void *conn, struct err *e)
{
    int rc;
    PGresult *r =
        events_pg_exec(conn, "SELECT 1", 0, NULL, PGRES_TUPLES_OK, "run SELECT 1", &rc, e);
    PQclear(r);
    return rc;
}
