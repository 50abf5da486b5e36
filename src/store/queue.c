/*
 * queue.c - admission across schedulers on PostgreSQL (see queue.h): the SQL
 * of the dispatch critical section, of the rounds around it and of starting
 * queued runs under max_active_runs, sent with libpq on the connection of a
 * struct store (pg_int.h). Arrays go as one text parameter each
 * ("{a,b}" literals, unnest()ed by the server), so a round costs a fixed
 * number of statements whatever its size.
 *
 * Lock order: a round touches its own scheduler's rows, then (lock holder
 * only) 'scheduled' rows of any scheduler with FOR UPDATE SKIP LOCKED: the
 * holder never waits on another round, so no cycle can form (no 40P01).
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
 * escaped, so no value can end or split the array. */
static void queue_arr_str(struct buf *b, const char *s)
{
    QUEUE_ADD(buf_addc(b, b->len > 0 ? ',' : '{'));
    QUEUE_ADD(buf_addc(b, '"'));
    for (const char *p = s; *p; p++) {
        if (*p == '"' || *p == '\\')
            QUEUE_ADD(buf_addc(b, '\\'));
        QUEUE_ADD(buf_addc(b, *p));
    }
    QUEUE_ADD(buf_addc(b, '"'));
}

static void queue_arr_int(struct buf *b, int64_t v)
{
    QUEUE_ADD(buf_addf(b, "%c%" PRId64, b->len > 0 ? ',' : '{', v));
}

static void queue_arr_bool(struct buf *b, bool v)
{
    QUEUE_ADD(buf_addf(b, "%c%c", b->len > 0 ? ',' : '{', v ? 't' : 'f'));
}

/* Closes an array begun by the appends above ("{}" when it is empty). */
static const char *queue_arr_end(struct buf *b)
{
    QUEUE_ADD(b->len == 0 ? buf_adds(b, "{}") : buf_addc(b, '}'));
    return b->data;
}

/* ---- statements ---- */

/* Runs sql with params; PGRES_COMMAND_OK or PGRES_TUPLES_OK gives the result in *out (or
 * cleared when out is NULL). 0, or a negative code with *e filled (pg__fail's). */
static int queue_exec(PGconn *c, const char *sql, int n, const char *const *params,
                      const char *what, PGresult **out, struct err *e)
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

static const char sql_release[] =
    "DELETE FROM ti_queue q USING unnest($1::text[], $2::text[], $3::int[]) "
    "AS r(run_id, task_id, try_number) WHERE q.run_id = r.run_id AND q.task_id = r.task_id "
    "AND q.try_number = r.try_number";

static const char sql_add[] =
    "INSERT INTO ti_queue (run_id, task_id, try_number, state, pool, priority, sched_id, "
    "ready_at, queued_at, claimed_at, worker_id) SELECT a.run_id, a.task_id, a.try_number, "
    "CASE WHEN a.running THEN 'running' ELSE 'scheduled' END, a.pool, a.priority, $7, "
    "to_timestamp(a.ready_ms / 1000.0), CASE WHEN a.running THEN now() END, "
    "CASE WHEN a.running THEN now() END, CASE WHEN a.running THEN $7::bigint END "
    "FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::int[], $6::int8[], "
    "$8::bool[]) AS a(run_id, task_id, try_number, pool, priority, ready_ms, running) "
    "ON CONFLICT (run_id, task_id) DO UPDATE SET try_number = EXCLUDED.try_number, "
    "state = EXCLUDED.state, pool = EXCLUDED.pool, priority = EXCLUDED.priority, "
    "sched_id = EXCLUDED.sched_id, ready_at = EXCLUDED.ready_at, "
    "queued_at = EXCLUDED.queued_at, claimed_at = EXCLUDED.claimed_at, "
    "worker_id = EXCLUDED.worker_id, kill_requested = false";

/* The slots of a scheduler that is gone (declared dead, stopped, or its row deleted) are
 * freed before anything is counted. */
static const char sql_reap[] =
    "DELETE FROM ti_queue q WHERE NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = q.sched_id "
    "AND w.state IN ('active', 'draining'))";

/* The critical section proper (design note 1.4): free = slots - rows in flight, per pool;
 * as many 'scheduled' rows as are free, priority first, then the longest ready. */
static const char sql_dispatch[] =
    "WITH p AS (SELECT a.name, coalesce(t.slots, a.slots) AS slots "
    "FROM unnest($1::text[], $2::int[]) AS a(name, slots) LEFT JOIN pools t ON t.name = a.name), "
    "free AS (SELECT p.name, p.slots - (SELECT count(*) FROM ti_queue q WHERE q.pool = p.name "
    "AND q.state IN ('queued', 'running')) AS n FROM p), "
    "pick AS MATERIALIZED (SELECT q.run_id, q.task_id FROM free f CROSS JOIN LATERAL ("
    "SELECT run_id, task_id FROM ti_queue WHERE state = 'scheduled' AND pool = f.name "
    "ORDER BY priority DESC, ready_at LIMIT greatest(f.n, 0) FOR UPDATE SKIP LOCKED) q) "
    "UPDATE ti_queue t SET state = 'queued', queued_at = now() FROM pick "
    "WHERE t.run_id = pick.run_id AND t.task_id = pick.task_id";

static const char sql_claim[] =
    "UPDATE ti_queue SET state = 'running', worker_id = $1, claimed_at = now() "
    "WHERE sched_id = $1 AND state = 'queued' RETURNING run_id, task_id, try_number";

static int queue_round_tx(PGconn *c, int64_t sched_id, const struct queue_key *rel, size_t nrel,
                          const struct queue_want *add, size_t nadd, const struct queue_pool *pools,
                          size_t npools, struct queue_key **granted, size_t *ngranted,
                          bool *dispatched, struct err *e)
{
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    int r = 0;
    struct buf a[7];
    for (size_t i = 0; i < 7; i++)
        buf_init(&a[i], BUF_NO_MAX);
    if (nrel > 0) {
        for (size_t i = 0; i < nrel; i++) {
            queue_arr_str(&a[0], rel[i].run_id);
            queue_arr_str(&a[1], rel[i].task_id);
            queue_arr_int(&a[2], rel[i].try_number);
        }
        const char *p[] = {queue_arr_end(&a[0]), queue_arr_end(&a[1]), queue_arr_end(&a[2])};
        if ((r = queue_exec(c, sql_release, 3, p, "freeing pool slots", NULL, e)) < 0)
            goto out;
        for (size_t i = 0; i < 3; i++)
            buf_reset(&a[i]);
    }
    if (nadd > 0) {
        for (size_t i = 0; i < nadd; i++) {
            queue_arr_str(&a[0], add[i].run_id);
            queue_arr_str(&a[1], add[i].task_id);
            queue_arr_int(&a[2], add[i].try_number);
            queue_arr_str(&a[3], add[i].pool);
            queue_arr_int(&a[4], add[i].priority);
            queue_arr_int(&a[5], add[i].ready_at_ms);
            queue_arr_bool(&a[6], add[i].running);
        }
        const char *p[] = {queue_arr_end(&a[0]),
                           queue_arr_end(&a[1]),
                           queue_arr_end(&a[2]),
                           queue_arr_end(&a[3]),
                           queue_arr_end(&a[4]),
                           queue_arr_end(&a[5]),
                           id,
                           queue_arr_end(&a[6])};
        if ((r = queue_exec(c, sql_add, 8, p, "queueing tries for pool slots", NULL, e)) < 0)
            goto out;
        for (size_t i = 0; i < 7; i++)
            buf_reset(&a[i]);
    }
    PGresult *res = NULL;
    const char *lock = "SELECT pg_try_advisory_xact_lock(" QUEUE_STR(QUEUE_LOCK_DISPATCH) ")";
    if ((r = queue_exec(c, lock, 0, NULL, "taking the dispatch lock", &res, e)) < 0)
        goto out;
    *dispatched = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (*dispatched && npools > 0) {
        if ((r = queue_exec(c, sql_reap, 0, NULL, "freeing the slots of stopped schedulers", NULL,
                            e)) < 0)
            goto out;
        for (size_t i = 0; i < npools; i++) {
            queue_arr_str(&a[0], pools[i].name);
            queue_arr_int(&a[1], pools[i].slots);
        }
        const char *p[] = {queue_arr_end(&a[0]), queue_arr_end(&a[1])};
        if ((r = queue_exec(c, sql_dispatch, 2, p, "dispatching pool slots", NULL, e)) < 0)
            goto out;
    }
    const char *p[] = {id};
    if ((r = queue_exec(c, sql_claim, 1, p, "claiming granted tries", &res, e)) < 0)
        goto out;
    int n = PQntuples(res);
    *granted = xcalloc(n > 0 ? (size_t)n : 1, sizeof **granted);
    for (int i = 0; i < n; i++) {
        (*granted)[i].run_id = xstrdup(PQgetvalue(res, i, 0));
        (*granted)[i].task_id = xstrdup(PQgetvalue(res, i, 1));
        (*granted)[i].try_number = (int)strtol(PQgetvalue(res, i, 2), NULL, 10);
    }
    *ngranted = (size_t)n;
    PQclear(res);
out:
    for (size_t i = 0; i < 7; i++)
        buf_release(&a[i]);
    return r;
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
    int r = store_begin(s, e);
    if (r < 0)
        return r;
    r = queue_round_tx(store__pg(store__conn(s)), sched_id, release, nrelease, add, nadd, pools,
                       npools, granted, ngranted, dispatched, e);
    if (r == 0)
        r = store_commit(s, e);
    if (r < 0) {
        store_rollback(s);
        queue_free_keys(*granted, *ngranted);
        *granted = NULL;
        *ngranted = 0;
        *dispatched = false;
    }
    return r;
}

int queue_release_sched(struct store *s, int64_t sched_id, struct err *e)
{
    if (!queue_supported(s))
        return err_set(e, -ENOTSUP, "pools across schedulers need PostgreSQL");
    char id[24];
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[] = {id};
    return queue_exec(store__pg(store__conn(s)), "DELETE FROM ti_queue WHERE sched_id = $1", 1, p,
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
    "WHERE r.run_id = ok.run_id AND ok.k <= ok.room RETURNING r.run_id";

static int queue_start_runs_tx(PGconn *c, const struct queue_run *v, size_t n, int64_t now_ms,
                               int64_t sched_id, char ***started, size_t *nstarted, struct err *e)
{
    /* Blocking, not the try form: it is the transaction's first statement, so its holder
     * waits on nothing this one holds, and a run must not wait a whole sync for its turn. */
    int r = queue_exec(c, "SELECT pg_advisory_xact_lock(" QUEUE_STR(QUEUE_LOCK_RUNS) ")", 0, NULL,
                       "taking the runs' lock", NULL, e);
    if (r < 0)
        return r;
    struct buf a[3];
    for (size_t i = 0; i < 3; i++)
        buf_init(&a[i], BUF_NO_MAX);
    for (size_t i = 0; i < n; i++) {
        queue_arr_str(&a[0], v[i].run_id);
        queue_arr_str(&a[1], v[i].dag_id);
        queue_arr_int(&a[2], v[i].max_active);
    }
    char now[24], id[24];
    snprintf(now, sizeof now, "%" PRId64, now_ms);
    snprintf(id, sizeof id, "%" PRId64, sched_id);
    const char *p[] = {queue_arr_end(&a[0]), queue_arr_end(&a[1]), queue_arr_end(&a[2]), now, id};
    PGresult *res = NULL;
    r = queue_exec(c, sql_start_runs, 5, p, "starting queued runs", &res, e);
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
    r = queue_start_runs_tx(store__pg(store__conn(s)), v, n, now_ms, sched_id, started, nstarted,
                            e);
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
