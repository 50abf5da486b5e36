/*
 * queue.c - admission across schedulers on PostgreSQL (see queue.h), sent
 * with libpq on the connection of a struct store (pg_int.h). A round is one
 * call of the function baram_queue_round (migrations pg/0007, 0009), which holds
 * the dispatch critical section (QUEUE_LOCK_DISPATCH): one round trip and one
 * commit. Starting queued runs under max_active_runs is a short transaction
 * here. Arrays go as one text parameter each ("{a,b}" literals, unnest()ed by
 * the server), so a call costs the same whatever its size.
 *
 * Lock order: a round share-locks its scheduler's `workers` row (the fence
 * of migration pg/0009: a scheduler no longer active is refused), touches its
 * own rows and those of runs it adopts, then (lock holder only) deletes the
 * rows of schedulers no longer active and grants 'scheduled' rows of any
 * scheduler, both with FOR UPDATE SKIP LOCKED: the holder never waits on
 * another round's rows, so no cycle can form (no 40P01).
 *
 * Any thread that may block, one at a time per store (store.h).
 */
#include "store/queue.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xalloc.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

bool queue_supported(struct store *s)
{
    return s && store__backend(s) == &store__pg_backend;
}

void queue_free_keys(struct queue_key *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].run_id);
        free(v[i].task_id);
    }
    free(v);
}

/* ---- array parameters ---- */

/* Appends to b, which has no maximum: cannot fail. */
#define QUEUE_ADD(x)                                                                               \
    do {                                                                                           \
        if ((x) < 0) {                                                                             \
        }                                                                                          \
    } while (0)
#define QUEUE_STR_(x) #x
#define QUEUE_STR(x)  QUEUE_STR_(x)

/* Appends s as an element of a PostgreSQL array literal: always quoted, '"' and '\'
 * escaped, so no value can end or split the array; NULL is the element NULL. */
void pg__arr_str(struct buf *b, const char *s)
{
    QUEUE_ADD(buf_addc(b, b->len > 0 ? ',' : '{'));
    if (!s) {
        QUEUE_ADD(buf_adds(b, "NULL"));
        return;
    }
    QUEUE_ADD(buf_addc(b, '"'));
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            QUEUE_ADD(buf_addc(b, '\\'));
        QUEUE_ADD(buf_addc(b, *p));
    }
    QUEUE_ADD(buf_addc(b, '"'));
}

void pg__arr_int(struct buf *b, int64_t v)
{
    QUEUE_ADD(buf_addf(b, "%c%" PRId64, b->len > 0 ? ',' : '{', v));
}

void pg__arr_bool(struct buf *b, bool v)
{
    QUEUE_ADD(buf_addf(b, "%c%c", b->len > 0 ? ',' : '{', v ? 't' : 'f'));
}

/* Closes an array begun by the appends above ("{}" when it is empty). */
const char *pg__arr_end(struct buf *b)
{
    QUEUE_ADD(b->len == 0 ? buf_adds(b, "{}") : buf_addc(b, '}'));
    return b->data;
}

/* ---- statements ---- */

/* Runs sql with params; PGRES_COMMAND_OK or PGRES_TUPLES_OK gives the result in *out (or
 * cleared when out is NULL). 0, or a negative code with *e filled (pg__fail's). */
int pg__exec_params(PGconn *c, const char *sql, int n, const char *const *params, const char *what,
                    PGresult **out, struct err *e)
{
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        int r = pg__fail(c, res, what, e);
        PQclear(res);
        return r;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* The round is one call of baram_queue_round (migration pg/0007: its statements and their
 * order are there), so it costs one round trip and one commit, however loaded the box. */
static const char sql_round[] =
    "SELECT g_run, g_task, g_try, g_dispatched FROM baram_queue_round($1, $2::text[], "
    "$3::text[], $4::int[], $5::text[], $6::text[], $7::int[], $8::text[], $9::int[], "
    "$10::int8[], $11::bool[], $12::text[], $13::int[])";

static int queue_round_call(PGconn *c, int64_t sched_id, const struct queue_key *rel, size_t nrel,
                            const struct queue_want *add, size_t nadd,
                            const struct queue_pool *pools, size_t npools,
                            struct queue_key **granted, size_t *ngranted, bool *dispatched,
                            struct err *e)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    struct buf a[12];
    for (size_t i = 0; i < 12; i++)
        buf_init(&a[i], BUF_NO_MAX);
    for (size_t i = 0; i < nrel; i++) {
        pg__arr_str(&a[0], rel[i].run_id);
        pg__arr_str(&a[1], rel[i].task_id);
        pg__arr_int(&a[2], rel[i].try_number);
    }
    for (size_t i = 0; i < nadd; i++) {
        pg__arr_str(&a[3], add[i].run_id);
        pg__arr_str(&a[4], add[i].task_id);
        pg__arr_int(&a[5], add[i].try_number);
        pg__arr_str(&a[6], add[i].pool);
        pg__arr_int(&a[7], add[i].priority);
        pg__arr_int(&a[8], add[i].ready_at_ms);
        pg__arr_bool(&a[9], add[i].running);
    }
    for (size_t i = 0; i < npools; i++) {
        pg__arr_str(&a[10], pools[i].name);
        pg__arr_int(&a[11], pools[i].slots);
    }
    const char *p[13] = {id};
    for (size_t i = 0; i < 12; i++)
        p[i + 1] = pg__arr_end(&a[i]);
    PGresult *res = NULL;
    int r = pg__exec_params(c, sql_round, 13, p, "admitting tries to pool slots", &res, e);
    for (size_t i = 0; i < 12; i++)
        buf_release(&a[i]);
    if (r < 0)
        return r;
    int n = PQntuples(res);
    *granted = xcalloc(n > 0 ? (size_t)n : 1, sizeof **granted);
    for (int i = 0; i < n; i++) {
        *dispatched = strcmp(PQgetvalue(res, i, 3), "t") == 0;
        if (PQgetisnull(res, i, 0))
            continue; /* nothing granted: only the flag */
        struct queue_key *k = &(*granted)[(*ngranted)++];
        k->run_id = xstrdup(PQgetvalue(res, i, 0));
        k->task_id = xstrdup(PQgetvalue(res, i, 1));
        k->try_number = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
    }
    PQclear(res);
    return 0;
}

int queue_round(struct store *s, int64_t sched_id, const struct queue_key *release, size_t nrelease,
                const struct queue_want *add, size_t nadd, const struct queue_pool *pools,
                size_t npools, struct queue_key **granted, size_t *ngranted, bool *dispatched,
                struct err *e)
{
    *granted = NULL;
    *ngranted = 0;
    *dispatched = false;
    if (!queue_supported(s))
        return err_set(e, -ENOTSUP, "pools across schedulers need PostgreSQL");
    return queue_round_call(store__pg(store__conn(s)), sched_id, release, nrelease, add, nadd,
                            pools, npools, granted, ngranted, dispatched, e);
}

int queue_release_sched(struct store *s, int64_t sched_id, struct err *e)
{
    if (!queue_supported(s))
        return err_set(e, -ENOTSUP, "pools across schedulers need PostgreSQL");
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[] = {id};
    /* Rows handed to workers (with a spec) stay: they belong to the run, whose next owner
     * adopts them (wq_adopt), and their worker's finish frees their slot. */
    return pg__exec_params(store__pg(store__conn(s)),
                           "DELETE FROM ti_queue WHERE sched_id = $1 AND spec = '{}'::jsonb", 1, p,
                           "freeing a scheduler's pool slots", NULL, e);
}

/* For each DAG, the room under max_active is its maximum less its running runs (the
 * scheduler's, as on SQLite: a foreground `baram run` is not counted); candidates still
 * queued take it in the order given. */
static const char sql_start_runs[] =
    "WITH c AS (SELECT * FROM unnest($1::text[], $2::text[], $3::int[]) WITH ORDINALITY "
    "AS c(run_id, dag_id, maxr, ord)), "
    "busy AS (SELECT dag_id, count(*) AS n FROM runs WHERE state = 'running' AND owner IS NULL "
    "AND dag_id IN (SELECT dag_id FROM c) GROUP BY dag_id), "
    "ok AS (SELECT c.run_id, c.maxr - coalesce(b.n, 0) AS room, "
    "row_number() OVER (PARTITION BY c.dag_id ORDER BY c.ord) AS k FROM c "
    "JOIN runs r ON r.run_id = c.run_id AND r.state = 'queued' "
    "AND (r.sched_id IS NULL OR r.sched_id = $5) LEFT JOIN busy b ON b.dag_id = c.dag_id) "
    "UPDATE runs r SET state = 'running', started_at = $4, sched_id = $5 FROM ok "
    "WHERE r.run_id = ok.run_id AND ok.k <= ok.room AND r.state = 'queued' AND r.owner IS NULL "
    "AND (r.sched_id IS NULL OR r.sched_id = $5) RETURNING r.run_id";
/* The guard of ok is repeated on the row updated: under READ COMMITTED a row changed by a
 * transaction that commits while this statement waits for it is re-checked against the
 * UPDATE's own conditions only (a cancel, another scheduler's claim must win). */

static int queue_start_runs_tx(struct store *s, const struct queue_run *v, size_t n, int64_t now_ms,
                               int64_t sched_id, char ***started, size_t *nstarted, struct err *e)
{
    PGconn *c = store__pg(store__conn(s));
    /* Blocking, not the try form: it is the transaction's first statement, so its holder
     * waits on nothing this one holds, and a run must not wait a whole sync for its turn. The
     * wait is bounded: a holder frozen mid-transaction loses its session after
     * idle_in_transaction_session_timeout, and lock_timeout ends the wait (pg__set_limits);
     * the runs are then offered again at the next sync. */
    int r = pg__exec_params(c, "SELECT pg_advisory_xact_lock(" QUEUE_STR(QUEUE_LOCK_RUNS) ")", 0,
                            NULL, "taking the runs' lock", NULL, e);
    /* Fenced like the writer: a scheduler declared dead cannot take a run here. */
    if (r < 0 || (r = store_fence(s, sched_id, e)) < 0)
        return r;
    struct buf a[3];
    for (size_t i = 0; i < 3; i++)
        buf_init(&a[i], BUF_NO_MAX);
    for (size_t i = 0; i < n; i++) {
        pg__arr_str(&a[0], v[i].run_id);
        pg__arr_str(&a[1], v[i].dag_id);
        pg__arr_int(&a[2], v[i].max_active);
    }
    char now[24], id[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[] = {pg__arr_end(&a[0]), pg__arr_end(&a[1]), pg__arr_end(&a[2]), now, id};
    PGresult *res = NULL;
    r = pg__exec_params(c, sql_start_runs, 5, p, "starting queued runs", &res, e);
    for (size_t i = 0; i < 3; i++)
        buf_release(&a[i]);
    if (r < 0)
        return r;
    int k = PQntuples(res);
    *started = xcalloc(k > 0 ? (size_t)k : 1, sizeof **started);
    for (int i = 0; i < k; i++)
        (*started)[i] = xstrdup(PQgetvalue(res, i, 0));
    *nstarted = (size_t)k;
    PQclear(res);
    return 0;
}

int queue_start_runs(struct store *s, const struct queue_run *v, size_t n, int64_t now_ms,
                     int64_t sched_id, char ***started, size_t *nstarted, struct err *e)
{
    *started = NULL;
    *nstarted = 0;
    if (!queue_supported(s))
        return err_set(e, -ENOTSUP, "max_active_runs across schedulers needs PostgreSQL");
    if (n == 0)
        return 0;
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    r = queue_start_runs_tx(s, v, n, now_ms, sched_id, started, nstarted, e);
    if (r == 0)
        r = store_commit(s, e);
    if (r < 0) {
        store_rollback(s);
        for (size_t i = 0; i < *nstarted; i++)
            free((*started)[i]);
        free(*started);
        *started = NULL;
        *nstarted = 0;
    }
    return r;
}
