/*
 * store_pg_nodes.c - the registry of schedulers and workers, run ownership
 * and the write fence (migration 0006; store.h) on PostgreSQL.
 *
 * Key ideas:
 *  - Leases use the database's clock only (now()), never a host's: a host
 *    whose clock is off neither dies early nor lives forever.
 *  - Everything any scheduler may run at any moment is one statement and
 *    idempotent: the reaper (declare dead, release the runs), claims (which
 *    skip rows another holds, FOR UPDATE SKIP LOCKED). No leader.
 *  - The fence is `SELECT ... FOR SHARE` of the scheduler's own row as the
 *    first statement of each of its writer's transactions: a reaper that
 *    comes first makes it return no row (the batch is refused); one that
 *    comes second waits for the batch to end and re-checks the heartbeat.
 *    It does not skip the row: a scheduler frozen inside a batch would hold
 *    it forever. Its session is ended by idle_in_transaction_session_timeout
 *    (pg__set_limits, dead_after/4), and lock_timeout bounds the wait.
 *    FOR KEY SHARE would not do: a non-key UPDATE does not conflict with it.
 *  - No scheduler is declared dead while the server has been up for less
 *    than dead_after: after a restart nobody could have beaten in time.
 *
 * Each function takes a connection object of store_pg.c and queries its
 * libpq handle (store__pg) directly, in the caller's transaction if one is
 * open. Any thread; one thread per connection at a time.
 */
#include "store/pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/xalloc.h"

#define MS(col) "(extract(epoch FROM " col ") * 1000)::bigint"
/* Unfinished runs only: a finished one keeps its last scheduler (no write of history). */
#define UNFINISHED "state IN ('queued', 'running')"
/* A run whose scheduler is no longer active (a finished run of one that has gone, set queued
 * again by a clear) is anyone's to claim. */
#define NOT_LIVE  "sched_id NOT IN (SELECT id FROM workers WHERE state IN ('active', 'draining'))"
#define CLAIMABLE UNFINISHED " AND owner IS NULL AND (sched_id IS NULL OR " NOT_LIVE ")"

/* Runs sql with text parameters; 0 and *out (PQclear it; may be NULL when not wanted), or a
 * negative code with e saying "cannot <what> in PostgreSQL at ...". */
static int nodes_exec(void *db, const char *sql, int n, const char *const *params, const char *what,
                      PGresult **out, struct err *e)
{
    if (out)
        *out = NULL;
    PGconn *c = store__pg(db);
    PGresult *res = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(res);
    if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot %s in %s", what, store__pg_where(db));
        int r = pg__fail(c, res, msg, e);
        PQclear(res);
        return r;
    }
    if (out)
        *out = res;
    else
        PQclear(res);
    return 0;
}

/* nodes_exec with one parameter, the integer v. */
static int nodes_exec_int(void *db, const char *sql, int64_t v, const char *what, PGresult **out,
                          struct err *e)
{
    char text[24];
    snprintf(text, sizeof text, "%" PRId64, v);
    const char *p[] = {text};
    return nodes_exec(db, sql, 1, p, what, out, e);
}

static int64_t get_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? -1 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static char *get_text(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? NULL : xstrdup(PQgetvalue(res, row, col));
}

int pg_node_register(void *db, const struct node_rec *n, int64_t *id, struct err *e)
{
    char pid[16], slots[16];
    snprintf(pid, sizeof pid, "%d", n->pid);
    snprintf(slots, sizeof slots, "%d", n->slots);
    const char *p[] = {n->role, n->name, n->hostname, pid,        n->queues ? n->queues : "default",
                       slots,   n->home, n->log_url,  n->host_key};
    PGresult *res;
    /* One statement: the predecessor of the same host and home is dead (its successor holds
     * the home's lock) and its runs are released as this one registers. A scheduler's only:
     * several workers may share a home (their names tell them apart). */
    int r =
        nodes_exec(db,
                   "WITH old AS (UPDATE workers SET state = 'dead' WHERE $7::text IS NOT NULL "
                   "AND $1 = 'scheduler' AND role = $1 AND hostname = $3 AND home = $7 AND state "
                   "IN ('active', "
                   "'draining') RETURNING id), "
                   "freed AS (UPDATE runs SET sched_id = NULL, lost_sched = NULL FROM old "
                   "WHERE runs.sched_id = "
                   "old.id AND runs." UNFINISHED " RETURNING runs.run_id) "
                   "INSERT INTO workers (role, name, hostname, pid, queues, slots, home, log_url, "
                   "host_key) VALUES ($1, $2, $3, $4, string_to_array($5, ','), $6, $7, $8, $9) "
                   "RETURNING id",
                   9, p, "register a scheduler or worker", &res, e);
    if (r < 0)
        return r;
    *id = PQntuples(res) ? get_int(res, 0, 0) : 0;
    PQclear(res);
    return 0;
}

/* Rows a command changed. */
static int64_t nodes_changed(const PGresult *res)
{
    return strtoll(PQcmdTuples((PGresult *)res), NULL, 10);
}

int pg_node_heartbeat(void *db, int64_t id, bool *alive, struct err *e)
{
    PGresult *res;
    int r = nodes_exec_int(db,
                           "UPDATE workers SET heartbeat_at = now() WHERE id = $1 AND state IN "
                           "('active', 'draining')",
                           id, "record a heartbeat", &res, e);
    if (r < 0)
        return r;
    *alive = nodes_changed(res) > 0;
    PQclear(res);
    return 0;
}

int pg_node_stop(void *db, int64_t id, struct err *e)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *p[] = {ids};
    return nodes_exec(
        db,
        "WITH s AS (UPDATE workers SET state = 'stopped' WHERE id = $1 AND state IN "
        "('active', 'draining') RETURNING id) "
        "UPDATE runs SET sched_id = NULL, lost_sched = NULL WHERE sched_id = $1 AND " UNFINISHED,
        1, p, "record a stop", NULL, e);
}

/* A registry row's running tries: a scheduler's, the running instances of the runs it owns
 * (whoever runs their tries); a worker's, the tries it claimed (index ti_queue_worker). */
#define RUNNING_OF_W                                                                               \
    "CASE WHEN w.role = 'scheduler' THEN (SELECT count(*) FROM task_instances t JOIN runs r "      \
    "ON r.run_id = t.run_id WHERE r.sched_id = w.id AND t.state = 'running') "                     \
    "ELSE (SELECT count(*) FROM ti_queue q WHERE q.worker_id = w.id AND q.state = 'running') END"

int pg_list_nodes(void *db, struct node_rec **out, size_t *n, struct err *e)
{
    static const char sql[] =
        "SELECT w.id, w.role, w.name, w.hostname, w.pid, "
        "array_to_string(w.queues, ','), w.slots, w.state, " MS("w.started_at") ", " MS(
            "w.heartbeat_at") ", " RUNNING_OF_W ", w.host_key, w.home FROM workers w "
                              "ORDER BY w.role = 'worker', w.id";
    PGresult *res;
    int r = nodes_exec(db, sql, 0, NULL, "read the schedulers and workers", &res, e);
    if (r < 0)
        return r;
    int rows = PQntuples(res);
    struct node_rec *v = xcalloc(rows ? (size_t)rows : 1, sizeof(*v));
    for (int i = 0; i < rows; i++) {
        v[i].id = get_int(res, i, 0);
        v[i].role = get_text(res, i, 1);
        v[i].name = get_text(res, i, 2);
        v[i].hostname = get_text(res, i, 3);
        v[i].pid = (int)get_int(res, i, 4);
        v[i].queues = get_text(res, i, 5);
        v[i].slots = (int)get_int(res, i, 6);
        v[i].state = get_text(res, i, 7);
        v[i].started_at_ms = get_int(res, i, 8);
        v[i].heartbeat_at_ms = get_int(res, i, 9);
        v[i].running = get_int(res, i, 10);
        v[i].host_key = get_text(res, i, 11);
        v[i].home = get_text(res, i, 12);
    }
    PQclear(res);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

int pg_reap_nodes(void *db, int64_t dead_after_ms, size_t *reaped, struct err *e)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, dead_after_ms);
    const char *p[] = {ms};
    PGresult *res;
    int r = nodes_exec(
        db,
        "WITH dead AS (UPDATE workers w SET state = 'dead' WHERE w.id IN (SELECT id FROM workers "
        "WHERE role = 'scheduler' AND state IN ('active', 'draining') AND heartbeat_at <= now() - "
        "make_interval(secs => $1::bigint / 1000.0) AND pg_postmaster_start_time() <= now() - "
        "make_interval(secs => $1::bigint / 1000.0) FOR UPDATE) RETURNING w.id, w.name), "
        "freed AS (UPDATE runs SET sched_id = NULL, lost_sched = dead.name FROM dead WHERE "
        "runs.sched_id = dead.id "
        "AND runs." UNFINISHED " RETURNING runs.run_id) "
        "SELECT (SELECT count(*) FROM dead), (SELECT count(*) FROM freed)",
        1, p, "declare silent schedulers dead", &res, e);
    if (r < 0)
        return r;
    *reaped = PQntuples(res) ? (size_t)get_int(res, 0, 0) : 0;
    PQclear(res);
    return 0;
}

int pg_live_schedulers(void *db, int64_t fresh_ms, const char *host, const char *home, int64_t *n,
                       struct err *e)
{
    char ms[24];
    snprintf(ms, sizeof ms, "%" PRId64, fresh_ms);
    const char *p[] = {ms, host, home};
    PGresult *res;
    int r = nodes_exec(db,
                       "SELECT count(*) FROM workers WHERE role = 'scheduler' AND state IN "
                       "('active', 'draining') AND heartbeat_at > now() - make_interval(secs => "
                       "$1::bigint / 1000.0) AND (hostname = $2::text AND home = $3::text) IS NOT "
                       "TRUE",
                       3, p, "read the schedulers", &res, e);
    if (r < 0)
        return r;
    *n = PQntuples(res) ? get_int(res, 0, 0) : 0;
    PQclear(res);
    return 0;
}

int pg_lost_scheduler(void *db, const char *run_id, char **name, struct err *e)
{
    const char *p[] = {run_id};
    PGresult *res;
    int r = nodes_exec(db, "SELECT lost_sched FROM runs WHERE run_id = $1", 1, p,
                       "read the scheduler a run was lost with", &res, e);
    if (r < 0)
        return r;
    *name = PQntuples(res) ? get_text(res, 0, 0) : NULL;
    PQclear(res);
    return 0;
}

int pg_unserved_tis(void *db, const char *run_id, struct ti_unserved **out, size_t *n,
                    struct err *e)
{
    const char *p[] = {run_id};
    PGresult *res;
    /* Only rows handed out to workers (queued, not claimed): a 'scheduled' row still waits for
     * its pool, which says nothing of workers. */
    int r = nodes_exec(db,
                       "SELECT q.task_id, q.queue FROM ti_queue q JOIN task_instances t ON "
                       "t.run_id = q.run_id AND t.task_id = q.task_id WHERE q.run_id = $1 AND "
                       "q.state = 'queued' AND t.state = 'queued' AND NOT EXISTS (SELECT 1 FROM "
                       "workers w WHERE w.role = 'worker' AND w.state = 'active' AND q.queue = "
                       "ANY (w.queues)) ORDER BY q.task_id",
                       1, p, "read the queues without a worker", &res, e);
    if (r < 0)
        return r;
    int rows = PQntuples(res);
    struct ti_unserved *v = xcalloc(rows ? (size_t)rows : 1, sizeof(*v));
    for (int i = 0; i < rows; i++) {
        v[i].task_id = get_text(res, i, 0);
        v[i].queue = get_text(res, i, 1);
    }
    PQclear(res);
    *out = v;
    *n = (size_t)rows;
    return 0;
}

int pg_claim_runs(void *db, int64_t id, int limit, size_t *claimed, struct err *e)
{
    char ids[24], lim[16];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {ids, lim};
    PGresult *res;
    /* A fair share: at most the claimable runs divided by the active schedulers (rounded up),
     * so the one whose doorbell rang first does not take a whole burst. MATERIALIZED: the
     * planner must not rerun the LIMIT subquery per row (more rows than LIMIT could be
     * updated, as Oban's fetch notes). */
    int r = nodes_exec(
        db,
        "WITH pick AS MATERIALIZED (SELECT run_id FROM runs WHERE " CLAIMABLE " ORDER BY "
        "queued_at NULLS LAST, logical_at, run_id LIMIT least($2::int, (SELECT ceil(count(*) / "
        "greatest((SELECT count(*) FROM workers WHERE role = 'scheduler' AND state = 'active'), "
        "1)::numeric)::int FROM runs WHERE " CLAIMABLE ")) FOR UPDATE OF runs SKIP LOCKED) "
        "UPDATE runs r SET sched_id = $1 FROM pick WHERE r.run_id = pick.run_id",
        2, p, "claim runs", &res, e);
    if (r < 0)
        return r;
    *claimed = (size_t)nodes_changed(res);
    PQclear(res);
    return 0;
}

int pg_take_run(void *db, int64_t id, const char *run_id, bool *taken, struct err *e)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *p[] = {ids, run_id};
    PGresult *res;
    int r = nodes_exec(db,
                       "UPDATE runs SET sched_id = $1 WHERE run_id = $2 AND (sched_id IS NULL OR "
                       "sched_id = $1 OR " NOT_LIVE ")",
                       2, p, "take a run", &res, e);
    if (r < 0)
        return r;
    *taken = nodes_changed(res) > 0;
    PQclear(res);
    return 0;
}

int pg_fence(void *db, int64_t id, struct err *e)
{
    char ids[24];
    snprintf(ids, sizeof ids, "%" PRId64, id);
    const char *p[] = {ids};
    PGresult *res;
    int r = nodes_exec(db, "SELECT 1 FROM workers WHERE id = $1 AND state = 'active' FOR SHARE", 1,
                       p, "check the scheduler's registration", &res, e);
    if (r < 0)
        return r;
    int rows = PQntuples(res);
    PQclear(res);
    if (rows == 0)
        return err_set(e, -ESTALE,
                       "scheduler %" PRId64 " is no longer active in %s: its writes are refused",
                       id, store__pg_where(db));
    return 0;
}
