/*
 * store_pg.c - the PostgreSQL backend of the store (store.h, store_int.h,
 * pg_int.h).
 *
 * One struct pg_conn is one libpq connection, used by one thread at a time.
 * Records keep the SQLite backend's semantics exactly: times are bigint ms,
 * NULL for -1; states are stored by name; writes are whole-row upserts
 * (INSERT ... ON CONFLICT DO UPDATE); listings sort text bytewise (COLLATE
 * "C", as SQLite does) and put NULLs where SQLite puts them. So every JSON
 * shape is the same on both backends.
 *
 * Every statement is prepared once per connection, on first use, and run
 * with text parameters (bytea ones in binary). Key idea, pipelining: inside
 * a transaction, writes (and the BEGIN and COMMIT themselves) are sent
 * without waiting for their answers (libpq pipeline mode); the answers are
 * collected at COMMIT, or before any statement whose answer is needed (a
 * read, a claim). A group-commit batch is so one round trip to the server,
 * not one per row. A write that fails in the pipeline aborts the
 * transaction; its error is kept and returned by the next call that waits
 * (the COMMIT at the latest), which then rolls back.
 *
 * A connection found broken outside a transaction is reset (reconnected)
 * before the next statement, so a daemon outlives a server restart; inside
 * one, the failure is returned (-ECONNRESET) and the caller retries.
 *
 * Errors return ERR_DB (-ECONNRESET when the connection is gone, -ENOENT for a
 * missing row) and fill the caller's struct err (may be NULL) with a message
 * for people naming "PostgreSQL at HOST/DB", never the URL.
 *
 * The scheduler's calls that write several rows (import errors, run-id
 * claim, task instance delete, revocations) open their own transaction when
 * none is open and join the caller's otherwise.
 */
#include "store/pg_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fault.h"
#include "base/when.h"
#include "base/xalloc.h"

#define C_ORDER " COLLATE \"C\""
/* SQLite's order: NULLs first ascending, last descending; text bytewise. lim, off: the parameter
 * numbers. */
#define RUN_ORDER(lim, off)                                                                        \
    " ORDER BY logical_at DESC, queued_at DESC NULLS LAST, run_id" C_ORDER " DESC LIMIT $" lim     \
    " OFFSET $" off

/* store_find_runs: $1 dag_id (NULL in the _ANY form), $2 the states as ",failed,running,"
 * (run_filter_states; NULL: any), $3 from, $4 to (INT64_MIN, INT64_MAX: open). The range and
 * the DAG are plain comparisons so that runs_logical or runs_dag_logical serve them. */
#define RUNS_FILTER_REST                                                                           \
    " AND ($2::text IS NULL OR position(',' || state || ',' in $2) > 0) AND logical_at >= "        \
    "$3::bigint AND logical_at <= $4::bigint"
#define RUNS_FILTER_ANY "$1::text IS NULL" RUNS_FILTER_REST
#define RUNS_FILTER_DAG "dag_id = $1::text" RUNS_FILTER_REST

#define PUT_RUN_SQL                                                                                \
    "INSERT INTO runs (" RUN_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) "

#define STMT_TABLE(X)                                                                              \
    X(ST_PUT_RUN,                                                                                  \
      PUT_RUN_SQL "ON CONFLICT (run_id) DO UPDATE SET dag_id = $2, state = $3, type = $4, "        \
                  "logical_at = $5, queued_at = $6, started_at = $7, ended_at = $8, conf = $9, "   \
                  "dag_hash = $10, dag_path = $11, owner = $12, logs_purged_at = NULL")            \
    /* a run claimed under a new id: nothing when the id is taken (the primary key decides) */     \
    X(ST_CLAIM_RUN, PUT_RUN_SQL "ON CONFLICT (run_id) DO NOTHING RETURNING run_id")                \
    /* a scheduled run: nothing either when its interval has one (runs_scheduled_once, 0006) */    \
    X(ST_CLAIM_SCHEDULED, PUT_RUN_SQL "ON CONFLICT DO NOTHING RETURNING run_id")                   \
    X(ST_SCHEDULED_AT, "SELECT 1 FROM runs WHERE dag_id = $1 AND logical_at = $2 AND "             \
                       "type = 'scheduled'")                                                       \
    X(ST_LIST_OWNED, "SELECT " RUN_COLS " FROM runs WHERE state IN ('queued', 'running') "         \
                     "AND owner IS NULL AND sched_id = $1 ORDER BY queued_at IS NULL DESC, "       \
                     "queued_at, logical_at, run_id" C_ORDER)                                      \
    /* seq: the first-seen order of the task (not the instance) within its run. Looked up          \
     * first by primary key (the row's own, for an update: most writes), then among the task's     \
     * other instances only for a mapped instance (an unmapped task has no other), then the        \
     * run's largest + 1; PostgreSQL evaluates each only when the one before found nothing.        \
     * The last two name their indexes by collation ("C" and "POSIX", migration 0001),             \
     * so each lookup has one index to use whatever the planner knows of the table. */             \
    X(ST_PUT_TI,                                                                                   \
      "INSERT INTO task_instances (" TI_COLS ", seq) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, " \
      "$10, $11, $12, $13, $14, $15, $16, COALESCE((SELECT seq FROM task_instances WHERE "         \
      "run_id = $1 AND task_id = $2), CASE WHEN $4 >= 0 THEN (SELECT seq FROM task_instances "     \
      "WHERE run_id COLLATE \"C\" = $1 AND task COLLATE \"C\" = $3 LIMIT 1) END, (SELECT "         \
      "COALESCE(MAX(seq), 0) + 1 FROM task_instances WHERE run_id COLLATE \"POSIX\" = $1))) "      \
      "ON CONFLICT (run_id, task_id) DO UPDATE SET task = $3, map_index = $4, state = $5, "        \
      "try_number = $6, max_tries = $7, exit_code = $8, output = $9, message = $10, "              \
      "priority = $11, pool = $12, scheduled_at = $13, queued_at = $14, started_at = $15, "        \
      "ended_at = $16")                                                                            \
    X(ST_PUT_TRY,                                                                                  \
      "INSERT INTO tries (" TRY_COLS ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, "    \
      "$12, $13) ON CONFLICT (run_id, task_id, try_number) DO UPDATE SET state = $4, exit_code = " \
      "$5, "                                                                                       \
      "term_signal = $6, timed_out = $7, queued_at = $8, started_at = $9, ended_at = $10, "        \
      "hostname = $11, pid = $12, worker = COALESCE($13, tries.worker)")                           \
    X(ST_PUT_DV, "INSERT INTO dag_versions (hash, dag_id, source, created_at) "                    \
                 "VALUES ($1, $2, $3, $4) ON CONFLICT (hash) DO NOTHING")                          \
    X(ST_GET_RUN, "SELECT " RUN_COLS " FROM runs WHERE run_id = $1")                               \
    X(ST_GET_TI, "SELECT " TI_READ_COLS " FROM task_instances WHERE run_id = $1 AND task_id = $2") \
    X(ST_LIST_RUNS, "SELECT " RUN_COLS " FROM runs" RUN_ORDER("1", "2"))                           \
    X(ST_LIST_RUNS_DAG, "SELECT " RUN_COLS " FROM runs WHERE dag_id = $1" RUN_ORDER("2", "3"))     \
    X(ST_COUNT_RUNS, "SELECT COUNT(*) FROM runs")                                                  \
    X(ST_COUNT_RUNS_DAG, "SELECT COUNT(*) FROM runs WHERE dag_id = $1")                            \
    X(ST_LIST_RUNS_FILTER,                                                                         \
      "SELECT " RUN_COLS " FROM runs WHERE " RUNS_FILTER_ANY RUN_ORDER("5", "6"))                  \
    X(ST_COUNT_RUNS_FILTER, "SELECT COUNT(*) FROM runs WHERE " RUNS_FILTER_ANY)                    \
    X(ST_LIST_RUNS_FILTER_DAG,                                                                     \
      "SELECT " RUN_COLS " FROM runs WHERE " RUNS_FILTER_DAG RUN_ORDER("5", "6"))                  \
    X(ST_COUNT_RUNS_FILTER_DAG, "SELECT COUNT(*) FROM runs WHERE " RUNS_FILTER_DAG)                \
    X(ST_LIST_TIS, "SELECT " TI_READ_COLS " FROM task_instances WHERE run_id = $1 "                \
                   "WINDOW w AS (PARTITION BY task) ORDER BY MIN(started_at) OVER w IS NULL, "     \
                   "MIN(started_at) OVER w, seq, map_index, task_id" C_ORDER)                      \
    X(ST_LIST_TRIES, "SELECT " TRY_COLS " FROM tries WHERE run_id = $1 AND task_id = $2 "          \
                     "ORDER BY try_number")                                                        \
    X(ST_GET_DV, "SELECT source FROM dag_versions WHERE hash = $1")                                \
    X(ST_PUT_DAG, "INSERT INTO dags (dag_id, path, hash, schedule, description, paused, "          \
                  "updated_at) VALUES ($1, $2, $3, $4, $5, 0, $6) ON CONFLICT (dag_id) DO UPDATE " \
                  "SET path = $2, hash = $3, schedule = $4, description = $5, updated_at = $6")    \
    X(ST_SET_PAUSED, "INSERT INTO dags (dag_id, paused, updated_at) VALUES ($1, $2, $3) "          \
                     "ON CONFLICT (dag_id) DO UPDATE SET paused = $2, updated_at = $3")            \
    X(ST_GET_DAG, "SELECT " DAG_COLS " FROM dags WHERE dag_id = $1")                               \
    X(ST_LIST_DAGS, "SELECT " DAG_COLS " FROM dags ORDER BY dag_id" C_ORDER)                       \
    /* every scheduler records every changed file: one at a time per path (M7), or two             \
     * overlapping transactions each delete what they see and both sets of errors survive */       \
    X(ST_LOCK_IMPORT_ERRORS, "SELECT pg_advisory_xact_lock(7262005, hashtext($1))")                \
    X(ST_DEL_IMPORT_ERRORS, "DELETE FROM import_errors WHERE path = $1")                           \
    X(ST_PUT_IMPORT_ERROR, "INSERT INTO import_errors (path, line, col, message, at) "             \
                           "VALUES ($1, $2, $3, $4, $5)")                                          \
    X(ST_LIST_IMPORT_ERRORS, "SELECT path, line, col, message, at FROM import_errors "             \
                             "ORDER BY path" C_ORDER ", line, col, id")                            \
    X(ST_SET_POOL, "INSERT INTO pools (name, slots, updated_at) VALUES ($1, $2, $3) "              \
                   "ON CONFLICT (name) DO UPDATE SET slots = $2, updated_at = $3")                 \
    X(ST_LIST_POOLS, "SELECT name, slots, updated_at FROM pools ORDER BY name" C_ORDER)            \
    X(ST_POOL_USAGE, "SELECT COUNT(*) FILTER (WHERE state = 'scheduled'), COUNT(*) FILTER "        \
                     "(WHERE state = 'queued'), COUNT(*) FILTER (WHERE state = 'running') FROM "   \
                     "task_instances WHERE state IN ('scheduled', 'queued', 'running') AND "       \
                     "(pool = $1::text OR (pool IS NULL AND $1::text = 'default'))")               \
    X(ST_PUT_REQUEST, "INSERT INTO run_requests (run_id, kind, at) VALUES ($1, $2, $3) "           \
                      "ON CONFLICT (run_id, kind) DO UPDATE SET at = $3")                          \
    X(ST_LIST_REQUESTS, "SELECT run_id, kind, at FROM run_requests "                               \
                        "ORDER BY at, run_id" C_ORDER ", kind" C_ORDER)                            \
    /* One statement takes the requests that go once taken and reads the lasting ones: two         \
     * schedulers taking at once each get a request or neither (the row lock decides). */          \
    X(ST_TAKE_REQUESTS,                                                                            \
      "WITH d AS (DELETE FROM run_requests q WHERE q.kind NOT LIKE '" STORE_REQUEST_LASTING "%' "  \
      "AND ($1::bigint <= 0 OR NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = q.run_id AND "    \
      "r.state IN ('queued', 'running') AND r.owner IS NULL AND r.sched_id IS DISTINCT FROM "      \
      "$1::bigint)) RETURNING run_id, kind, at) SELECT * FROM (SELECT run_id, kind, at FROM d "    \
      "UNION ALL "                                                                                 \
      "SELECT run_id, kind, at FROM run_requests WHERE kind LIKE '" STORE_REQUEST_LASTING "%') "   \
      "AS q ORDER BY at, run_id" C_ORDER ", kind" C_ORDER)                                         \
    X(ST_DEL_REQUEST, "DELETE FROM run_requests WHERE run_id = $1 AND kind = $2")                  \
    X(ST_LIST_UNFINISHED, "SELECT " RUN_COLS " FROM runs WHERE state IN ('queued', 'running') "    \
                          "AND owner IS NULL ORDER BY queued_at IS NULL DESC, queued_at, "         \
                          "logical_at, run_id" C_ORDER)                                            \
    X(ST_LAST_LOGICAL, "SELECT MAX(logical_at) FROM runs WHERE dag_id = $1 AND type = $2")         \
    X(ST_HAS_RUN_AT, "SELECT 1 FROM runs WHERE dag_id = $1 AND logical_at = $2 AND "               \
                     "type IN ('scheduled', 'backfill') LIMIT 1")                                  \
    X(ST_DEL_TRIES, "DELETE FROM tries WHERE run_id = $1 AND task_id = $2")                        \
    X(ST_DEL_TI, "DELETE FROM task_instances WHERE run_id = $1 AND task_id = $2")                  \
    X(ST_PUT_USER, "INSERT INTO users (name, role, password_hash, created_at) "                    \
                   "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET role = $2, "          \
                   "password_hash = $3")                                                           \
    X(ST_ADD_USER, "INSERT INTO users (name, role, password_hash, created_at) "                    \
                   "VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO NOTHING")                        \
    X(ST_GET_USER, "SELECT name, role, password_hash, created_at, " USER_REVOKED_GEN               \
                   " FROM users WHERE name = $1")                                                  \
    X(ST_LIST_USERS, "SELECT name, role, password_hash, created_at, " USER_REVOKED_GEN             \
                     " FROM users ORDER BY name" C_ORDER)                                          \
    X(ST_DEL_USER, "DELETE FROM users WHERE name = $1")                                            \
    X(ST_COUNT_USERS, "SELECT COUNT(*) FROM users WHERE $1::text IS NULL OR role = $1::text")      \
    /* The UPDATE's row lock orders concurrent revocations: each sees the generation it made. */   \
    X(ST_BUMP_REVOCATION_GEN, "UPDATE revocation_gen SET gen = gen + 1 WHERE id = 1")              \
    X(ST_REVOKE_TOKEN, "INSERT INTO revoked_tokens (jti, name, exp_at, gen) VALUES ($1, $2, $3, "  \
                       "(SELECT gen FROM revocation_gen WHERE id = 1)) ON CONFLICT (jti) DO "      \
                       "UPDATE SET exp_at = GREATEST(revoked_tokens.exp_at, $3), "                 \
                       "gen = EXCLUDED.gen")                                                       \
    X(ST_REVOKE_USER, "INSERT INTO revoked_users (name, before_s, gen) VALUES ($1, $2, "           \
                      "(SELECT gen FROM revocation_gen WHERE id = 1)) ON CONFLICT (name) DO "      \
                      "UPDATE SET before_s = GREATEST(revoked_users.before_s + 1, $2), "           \
                      "gen = EXCLUDED.gen")                                                        \
    X(ST_REVOCATION_GEN, "SELECT gen FROM revocation_gen WHERE id = 1")                            \
    X(ST_LIST_REVOCATIONS, "SELECT jti, name, exp_at, gen FROM revoked_tokens WHERE gen > $1 "     \
                           "UNION ALL SELECT NULL, name, before_s, gen FROM revoked_users "        \
                           "WHERE gen > $1 ORDER BY 4")                                            \
    X(ST_PURGE_REVOKED_TOKENS, "DELETE FROM revoked_tokens WHERE exp_at < $1")

enum pg_stmt {
#define X(e, sql) e,
    STMT_TABLE(X)
#undef X
        ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
#define X(e, sql) sql,
    STMT_TABLE(X)
#undef X
};

/* Room for a failure's words kept between a pipelined write and the call that collects it. */
#define PG_FAIL_MAX 1024

struct pg_conn {
    PGconn *pg;               /* owned */
    char where[PG_WHERE_MAX]; /* "PostgreSQL at HOST/DB" */
    bool in_tx;               /* a transaction begun by pg_begin is open */
    bool pipelining;          /* send a transaction's writes without waiting (the default) */
    bool piped;               /* in pipeline mode, with `pending` answers to collect */
    int pending;
    int fail_code; /* 0, or the first failure among the pipelined statements */
    char fail_msg[PG_FAIL_MAX];
    bool prepared[ST_COUNT];
};

const char *store__pg_where(void *conn)
{
    return conn ? ((struct pg_conn *)conn)->where : "PostgreSQL";
}

void store__pg_set_pipelining(void *conn, bool on)
{
    ((struct pg_conn *)conn)->pipelining = on;
}

/* ---- statements: parameters, pipelining, results ---- */

#define PARAMS_MAX 16

/* The parameters of one statement, in text (bytea in binary); numbers are printed into num. */
struct params {
    int n;
    const char *v[PARAMS_MAX];
    int len[PARAMS_MAX];
    int fmt[PARAMS_MAX];
    char num[PARAMS_MAX][24];
};

static void p_text(struct params *p, const char *s)
{
    p->v[p->n] = s;
    p->len[p->n] = 0;
    p->fmt[p->n++] = 0;
}

static void p_int(struct params *p, int64_t v)
{
    snprintf(p->num[p->n], sizeof p->num[0], "%" PRId64, v);
    p_text(p, p->num[p->n]);
}

/* A time: NULL for -1 (unknown). */
static void p_time(struct params *p, int64_t at_ms)
{
    if (at_ms < 0)
        p_text(p, NULL);
    else
        p_int(p, at_ms);
}

/* Bytes of a bytea column, sent as they are (binary format); NULL for NULL. */
static void p_bytes(struct params *p, const char *b, size_t len)
{
    p->v[p->n] = b;
    p->len[p->n] = (int)len;
    p->fmt[p->n++] = 1;
}

/* Keeps a failure (code, msg; msg cut to PG_FAIL_MAX) as the connection's pending one (the
 * first wins) and returns its code. */
static int keep_fail(struct pg_conn *c, int code, const char *msg)
{
    if (!c->fail_code) {
        c->fail_code = code;
        size_t n = strnlen(msg, sizeof c->fail_msg - 1);
        memcpy(c->fail_msg, msg, n);
        c->fail_msg[n] = 0;
    }
    return c->fail_code;
}

/* The kept failure, copied into e. */
static int kept_fail(struct pg_conn *c, struct err *e)
{
    return err_set(e, c->fail_code, "%s", c->fail_msg);
}

/* Fails "cannot <what> in <where>: <server's words>". */
static int conn_fail(struct pg_conn *c, const PGresult *r, const char *what, struct err *e)
{
    char msg[PG_WHERE_MAX + 128];
    snprintf(msg, sizeof msg, "cannot %s in %s", what, c->where);
    return pg__fail(c->pg, r, msg, e);
}

/* Collects the answers of every statement sent in the pipeline and leaves pipeline mode. The
 * first failure among them is kept (keep_fail). 0, or the kept failure (e filled). */
static int drain(struct pg_conn *c, struct err *e)
{
    if (!c->piped)
        return c->fail_code ? kept_fail(c, e) : 0;
    c->piped = false;
    int queries = c->pending, nulls = 0;
    c->pending = 0;
    if (!PQpipelineSync(c->pg)) {
        struct err fe;
        int code = conn_fail(c, NULL, "send statements", &fe);
        keep_fail(c, code, fe.msg);
    } else {
        for (;;) {
            PGresult *r = PQgetResult(c->pg);
            if (!r) {
                /* one NULL ends each statement's answers; more means nothing else comes */
                if (PQstatus(c->pg) == CONNECTION_BAD || ++nulls > queries + 1)
                    break;
                continue;
            }
            ExecStatusType st = PQresultStatus(r);
            if (st == PGRES_FATAL_ERROR && !c->fail_code) {
                struct err fe;
                int code = conn_fail(c, r, "write", &fe);
                keep_fail(c, code, fe.msg);
            }
            PQclear(r);
            if (st == PGRES_PIPELINE_SYNC)
                break;
        }
    }
    if (PQstatus(c->pg) == CONNECTION_BAD && !c->fail_code) {
        struct err fe;
        int code = conn_fail(c, NULL, "write", &fe);
        keep_fail(c, code, fe.msg);
    }
    PQexitPipelineMode(c->pg);
    return c->fail_code ? kept_fail(c, e) : 0;
}

/* Outside a transaction, a broken connection is reconnected (prepared statements are gone with
 * it). 0, or -ECONNRESET. */
static int ensure_conn(struct pg_conn *c, struct err *e)
{
    if (c->in_tx || PQstatus(c->pg) != CONNECTION_BAD)
        return 0;
    PQreset(c->pg);
    memset(c->prepared, 0, sizeof c->prepared);
    c->piped = false;
    c->pending = 0;
    c->fail_code = 0;
    if (PQstatus(c->pg) != CONNECTION_OK)
        return conn_fail(c, NULL, "reconnect", e);
    return 0;
}

/* Makes sure statement id is prepared on this connection (waiting for the pipeline first). */
static int prepare(struct pg_conn *c, enum pg_stmt id, struct err *e)
{
    if (c->prepared[id])
        return 0;
    int r = drain(c, e);
    if (r < 0 || (r = ensure_conn(c, e)) < 0)
        return r;
    char name[16];
    snprintf(name, sizeof name, "b%d", (int)id);
    PGresult *res = PQprepare(c->pg, name, stmt_sql[id], 0, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        r = conn_fail(c, res, "prepare a query", e);
    else
        c->prepared[id] = true;
    PQclear(res);
    return r;
}

/* Runs statement id and waits for its answer: the result (TUPLES_OK or COMMAND_OK; the
 * caller PQclear()s it), or NULL with e filled ("cannot <what> ..."), *rc the code. */
static PGresult *run(struct pg_conn *c, enum pg_stmt id, const struct params *p, const char *what,
                     int *rc, struct err *e)
{
    /* a statement prepared before the connection broke is prepared again on the new one */
    *rc = ensure_conn(c, e);
    if (*rc == 0)
        *rc = prepare(c, id, e);
    if (*rc == 0)
        *rc = drain(c, e);
    if (*rc < 0)
        return NULL;
    char name[16];
    snprintf(name, sizeof name, "b%d", (int)id);
    PGresult *r = PQexecPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                                 p ? p->fmt : NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK)
        return r;
    *rc = conn_fail(c, r, what, e);
    PQclear(r);
    return NULL;
}

/* Runs a statement whose answer is not needed: pipelined inside a transaction (its failure
 * then comes from a later call), waited for outside one. 0 or a negative code. */
static int put_stmt(struct pg_conn *c, enum pg_stmt id, const struct params *p, const char *what,
                    struct err *e)
{
    if (c->fail_code)
        return kept_fail(c, e); /* the transaction is already lost */
    if (!c->in_tx || !c->pipelining) {
        int rc;
        PQclear(run(c, id, p, what, &rc, e));
        return rc;
    }
    int rc = prepare(c, id, e);
    if (rc < 0)
        return rc;
    if (!c->piped) {
        if (!PQenterPipelineMode(c->pg))
            return conn_fail(c, NULL, what, e);
        c->piped = true;
    }
    char name[16];
    snprintf(name, sizeof name, "b%d", (int)id);
    if (!PQsendQueryPrepared(c->pg, name, p ? p->n : 0, p ? p->v : NULL, p ? p->len : NULL,
                             p ? p->fmt : NULL, 0))
        return keep_fail(c, conn_fail(c, NULL, what, e), e ? e->msg : "cannot write");
    c->pending++;
    return 0;
}

/* Sends a statement without parameters (BEGIN, COMMIT) in the pipeline. */
static int send_plain(struct pg_conn *c, const char *sql, const char *what, struct err *e)
{
    if (!c->piped) {
        if (!PQenterPipelineMode(c->pg))
            return conn_fail(c, NULL, what, e);
        c->piped = true;
    }
    if (!PQsendQueryParams(c->pg, sql, 0, NULL, NULL, NULL, NULL, 0))
        return keep_fail(c, conn_fail(c, NULL, what, e), e ? e->msg : "cannot send");
    c->pending++;
    return 0;
}

PGconn *store__pg(void *conn)
{
    struct pg_conn *c = conn;
    if (!c)
        return NULL;
    (void)drain(c, NULL); /* a failure is kept for the commit */
    (void)ensure_conn(c, NULL);
    return c->pg;
}

static char *col_text(const PGresult *r, int row, int i)
{
    if (PQgetisnull(r, row, i))
        return NULL;
    return xstrndup(PQgetvalue(r, row, i), (size_t)PQgetlength(r, row, i));
}

static int64_t col_int(const PGresult *r, int row, int i)
{
    return PQgetisnull(r, row, i) ? 0 : strtoll(PQgetvalue(r, row, i), NULL, 10);
}

static int64_t col_time(const PGresult *r, int row, int i)
{
    return PQgetisnull(r, row, i) ? -1 : strtoll(PQgetvalue(r, row, i), NULL, 10);
}

static int hexval(char ch)
{
    return ch >= '0' && ch <= '9'   ? ch - '0'
           : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
           : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                    : -1;
}

/* A bytea column (text result, hex format "\x..."), as malloc'd bytes plus a NUL (so text
 * output can be printed); NULL for NULL. */
static char *col_bytea(const PGresult *r, int row, int i, size_t *len)
{
    *len = 0;
    if (PQgetisnull(r, row, i))
        return NULL;
    const char *s = PQgetvalue(r, row, i);
    size_t n = (size_t)PQgetlength(r, row, i);
    if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
        s += 2;
        n -= 2;
    }
    char *out = xmalloc(n / 2 + 1);
    size_t j = 0;
    for (size_t k = 0; k + 1 < n; k += 2) {
        int hi = hexval(s[k]), lo = hexval(s[k + 1]);
        if (hi < 0 || lo < 0)
            break;
        out[j++] = (char)(hi << 4 | lo);
    }
    out[j] = 0;
    *len = j;
    return out;
}

/* ---- connection ---- */

static void pg_close(void *db)
{
    struct pg_conn *c = db;
    if (!c)
        return;
    PQfinish(c->pg);
    free(c);
}

/* Whether c's database holds a baram store (its schema_migrations table): 1, 0, or a negative
 * code. */
static int has_store(PGconn *c, const char *where, struct err *e)
{
    PGresult *r = PQexec(c, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int rc;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char what[PG_WHERE_MAX + 32];
        snprintf(what, sizeof what, "cannot read %s", where);
        rc = pg__fail(c, r, what, e);
    } else {
        rc = PQgetvalue(r, 0, 0)[0] == 't';
    }
    PQclear(r);
    return rc;
}

static int pg_open(const char *url, bool create, void **db, struct err *e)
{
    *db = NULL;
    struct pg_conn *c = xcalloc(1, sizeof(*c));
    c->pipelining = true;
    pg__where(url, c->where, sizeof c->where);
    int r = pg__connect(url, &c->pg, e);
    if (r == 0 && !create && (r = has_store(c->pg, c->where, e)) == 0)
        r = err_set(e, -ENOENT,
                    "no database yet in %s (nothing has run in this home yet; set --home or "
                    "BARAM_HOME, or run 'baram init')",
                    c->where);
    if (r >= 0)
        r = migrate_pg(c->pg, c->where, e);
    if (r < 0) {
        pg_close(c);
        return r;
    }
    *db = c;
    return 0;
}

int store__pg_open(const char *url, void **db, struct err *e)
{
    return pg_open(url, true, db, e);
}

int store__pg_open_existing(const char *url, void **db, struct err *e)
{
    return pg_open(url, false, db, e);
}

/* ---- transactions ---- */

static int pg_begin(void *db, struct err *e)
{
    struct pg_conn *c = db;
    if (c->in_tx)
        return err_set(e, ERR_DB, "cannot start a transaction in %s: one is open", c->where);
    int r = drain(c, e);
    if (r < 0 || (r = ensure_conn(c, e)) < 0)
        return r;
    char what[PG_WHERE_MAX + 64];
    snprintf(what, sizeof what, "start a transaction in %s", c->where);
    r = c->pipelining ? send_plain(c, "BEGIN", what, e) : pg__exec(c->pg, "BEGIN", what, e);
    c->in_tx = r == 0;
    return r;
}

static void pg_rollback(void *db)
{
    struct pg_conn *c = db;
    (void)drain(c, NULL);
    if (PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        PQclear(PQexec(c->pg, "ROLLBACK"));
    c->in_tx = false;
    c->fail_code = 0;
}

/* On failure the transaction is rolled back, so the caller can simply retry the batch. */
static int pg_commit(void *db, struct err *e)
{
    struct pg_conn *c = db;
    if (!c->in_tx)
        return err_set(e, ERR_DB, "cannot commit to %s: no transaction is open", c->where);
    if (FAULT(FP_STORE_COMMIT)) {
        pg_rollback(c);
        return err_set(e, ERR_DB, "cannot commit to %s: injected fault FP_STORE_COMMIT", c->where);
    }
    char what[PG_WHERE_MAX + 64];
    snprintf(what, sizeof what, "commit to %s", c->where);
    int r = c->fail_code ? kept_fail(c, e) : 0;
    if (r == 0 && c->piped) {
        if ((r = send_plain(c, "COMMIT", what, e)) == 0)
            r = drain(c, e);
    } else if (r == 0) {
        r = pg__exec(c->pg, "COMMIT", what, e);
    }
    /* A COMMIT of a transaction a failed statement aborted answers ROLLBACK, not an error:
     * the failure was kept, or the connection says so. */
    if (r == 0 && PQtransactionStatus(c->pg) != PQTRANS_IDLE)
        r = conn_fail(c, NULL, "commit", e);
    if (r < 0)
        pg_rollback(c);
    c->in_tx = false;
    c->fail_code = 0;
    return r;
}

/* Opens a transaction unless the caller has one: *own tells txn_end whether to finish it. */
static int txn_start(struct pg_conn *c, bool *own, struct err *e)
{
    *own = !c->in_tx;
    return *own ? pg_begin(c, e) : 0;
}

/* Ends a transaction txn_start opened (store__txn_end); a joined one is left to its owner. */
static int txn_end(struct pg_conn *c, bool own, int r, struct err *e)
{
    return store__txn_end(&store__pg_backend, c, own, r, e);
}

/* ---- writes ---- */

/* A record the database would refuse or could not read back is our caller's bug, but it must
 * not take the store down: refuse it with a message. */
static int bad_record(struct pg_conn *c, const char *what, const char *id, const char *why,
                      struct err *e)
{
    return err_set(e, ERR_DB, "cannot write %s '%s' to %s: %s", what, id ? id : "", c->where, why);
}

static void run_params(struct params *p, const struct run_rec *r, const char *run_id)
{
    p_text(p, run_id);
    p_text(p, r->dag_id);
    p_text(p, run_state_name(r->state));
    p_text(p, run_type_name(r->type));
    p_int(p, r->logical_at_ms);
    p_time(p, r->queued_at_ms);
    p_time(p, r->started_at_ms);
    p_time(p, r->ended_at_ms);
    p_text(p, r->conf);
    p_text(p, r->dag_hash);
    p_text(p, r->dag_path);
    p_text(p, r->owner);
}

static int check_run(struct pg_conn *c, const struct run_rec *r, const char *run_id, struct err *e)
{
    if (!run_id || !r->dag_id)
        return bad_record(c, "run", run_id, "no run id or DAG id", e);
    if ((unsigned)r->state >= RUN_STATE_COUNT || (unsigned)r->type >= RUN_TYPE_COUNT)
        return bad_record(c, "run", run_id, "invalid state or type", e);
    return 0;
}

static int pg_put_run(void *db, const struct run_rec *r, struct err *e)
{
    struct pg_conn *c = db;
    int rc = check_run(c, r, r->run_id, e);
    if (rc < 0)
        return rc;
    struct params p = {0};
    run_params(&p, r, r->run_id);
    return put_stmt(c, ST_PUT_RUN, &p, "write a run", e);
}

static int pg_put_ti(void *db, const struct ti_rec *t, struct err *e)
{
    struct pg_conn *c = db;
    if (!t->run_id || !t->task_id)
        return bad_record(c, "task instance", t->task_id, "no run id or task id", e);
    if ((unsigned)t->state >= TI_STATE_COUNT)
        return bad_record(c, "task instance", t->task_id, "invalid state", e);
    struct params p = {0};
    p_text(&p, t->run_id);
    p_text(&p, t->task_id);
    p_text(&p, t->task ? t->task : t->task_id);
    p_int(&p, t->map_index);
    p_text(&p, ti_state_name(t->state));
    p_int(&p, t->try_number);
    p_int(&p, t->max_tries);
    p_int(&p, t->exit_code);
    p_bytes(&p, t->output, t->output_len);
    p_text(&p, t->message);
    p_int(&p, t->priority);
    p_text(&p, t->pool);
    p_time(&p, t->scheduled_at_ms);
    p_time(&p, t->queued_at_ms);
    p_time(&p, t->started_at_ms);
    p_time(&p, t->ended_at_ms);
    return put_stmt(c, ST_PUT_TI, &p, "write a task instance", e);
}

static int pg_put_try(void *db, const struct try_rec *t, struct err *e)
{
    struct pg_conn *c = db;
    if (!t->run_id || !t->task_id)
        return bad_record(c, "try", t->task_id, "no run id or task id", e);
    if ((unsigned)t->state >= TI_STATE_COUNT)
        return bad_record(c, "try", t->task_id, "invalid state", e);
    struct params p = {0};
    p_text(&p, t->run_id);
    p_text(&p, t->task_id);
    p_int(&p, t->try_number);
    p_text(&p, ti_state_name(t->state));
    p_int(&p, t->exit_code);
    p_int(&p, t->term_signal);
    p_int(&p, t->timed_out ? 1 : 0);
    p_time(&p, t->queued_at_ms);
    p_time(&p, t->started_at_ms);
    p_time(&p, t->ended_at_ms);
    p_text(&p, t->hostname);
    p_int(&p, t->pid);
    p_text(&p, t->worker);
    return put_stmt(c, ST_PUT_TRY, &p, "write a try", e);
}

static int pg_put_dag_version(void *db, const char *hash, const char *dag_id, const char *source,
                              size_t len, struct err *e)
{
    struct pg_conn *c = db;
    if (!hash || !dag_id)
        return bad_record(c, "DAG version", hash, "no hash or DAG id", e);
    struct params p = {0};
    p_text(&p, hash);
    p_text(&p, dag_id);
    p_bytes(&p, source ? source : "", source ? len : 0);
    p_int(&p, when_now_ms());
    return put_stmt(c, ST_PUT_DV, &p, "write a DAG version", e);
}

/* ---- reads ---- */

static int read_run(struct pg_conn *c, const PGresult *res, int row, struct run_rec *r,
                    struct err *e)
{
    memset(r, 0, sizeof(*r));
    r->run_id = col_text(res, row, 0);
    r->dag_id = col_text(res, row, 1);
    const char *state = PQgetisnull(res, row, 2) ? NULL : PQgetvalue(res, row, 2);
    const char *type = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
    r->logical_at_ms = col_int(res, row, 4);
    r->queued_at_ms = col_time(res, row, 5);
    r->started_at_ms = col_time(res, row, 6);
    r->ended_at_ms = col_time(res, row, 7);
    r->conf = col_text(res, row, 8);
    r->dag_hash = col_text(res, row, 9);
    r->dag_path = col_text(res, row, 10);
    r->owner = col_text(res, row, 11);
    if (!state || run_state_parse(state, &r->state) < 0 || !type ||
        run_type_parse(type, &r->type) < 0) {
        (void)err_set(e, ERR_DB, "run '%s' in %s has an unknown state or type",
                      r->run_id ? r->run_id : "?", c->where);
        run_rec_release(r);
        return ERR_DB;
    }
    return 0;
}

static int read_ti(struct pg_conn *c, const PGresult *res, int row, struct ti_rec *t, struct err *e)
{
    memset(t, 0, sizeof(*t));
    t->run_id = col_text(res, row, 0);
    t->task_id = col_text(res, row, 1);
    t->task = col_text(res, row, 2);
    t->map_index = (int)col_int(res, row, 3);
    const char *state = PQgetisnull(res, row, 4) ? NULL : PQgetvalue(res, row, 4);
    t->try_number = (int)col_int(res, row, 5);
    t->max_tries = (int)col_int(res, row, 6);
    t->exit_code = (int)col_int(res, row, 7);
    t->output = col_bytea(res, row, 8, &t->output_len);
    t->message = col_text(res, row, 9);
    t->priority = (int)col_int(res, row, 10);
    t->pool = col_text(res, row, 11);
    t->scheduled_at_ms = col_time(res, row, 12);
    t->queued_at_ms = col_time(res, row, 13);
    t->started_at_ms = col_time(res, row, 14);
    t->ended_at_ms = col_time(res, row, 15);
    t->worker = col_text(res, row, 16);
    if (!state || ti_state_parse(state, &t->state) < 0) {
        (void)err_set(e, ERR_DB, "task instance '%s' in %s has an unknown state",
                      t->task_id ? t->task_id : "?", c->where);
        ti_rec_release(t);
        return ERR_DB;
    }
    return 0;
}

static int read_try(struct pg_conn *c, const PGresult *res, int row, struct try_rec *t,
                    struct err *e)
{
    memset(t, 0, sizeof(*t));
    t->run_id = col_text(res, row, 0);
    t->task_id = col_text(res, row, 1);
    t->try_number = (int)col_int(res, row, 2);
    const char *state = PQgetisnull(res, row, 3) ? NULL : PQgetvalue(res, row, 3);
    t->exit_code = (int)col_int(res, row, 4);
    t->term_signal = (int)col_int(res, row, 5);
    t->timed_out = col_int(res, row, 6) != 0;
    t->queued_at_ms = col_time(res, row, 7);
    t->started_at_ms = col_time(res, row, 8);
    t->ended_at_ms = col_time(res, row, 9);
    t->hostname = col_text(res, row, 10);
    t->pid = (int)col_int(res, row, 11);
    t->worker = col_text(res, row, 12);
    if (!state || ti_state_parse(state, &t->state) < 0) {
        (void)err_set(e, ERR_DB, "try %d of '%s' in %s has an unknown state", t->try_number,
                      t->task_id ? t->task_id : "?", c->where);
        try_rec_release(t);
        return ERR_DB;
    }
    return 0;
}

static int read_dag(struct pg_conn *c, const PGresult *res, int row, struct dag_rec *d,
                    struct err *e)
{
    (void)c;
    memset(d, 0, sizeof(*d));
    d->dag_id = col_text(res, row, 0);
    d->path = col_text(res, row, 1);
    d->hash = col_text(res, row, 2);
    d->schedule = col_text(res, row, 3);
    d->description = col_text(res, row, 4);
    d->paused = col_int(res, row, 5) != 0;
    d->updated_at_ms = col_time(res, row, 6);
    return 0;
}

static int read_import_error(struct pg_conn *c, const PGresult *res, int row,
                             struct import_error_rec *ie, struct err *e)
{
    (void)c;
    memset(ie, 0, sizeof(*ie));
    ie->path = col_text(res, row, 0);
    ie->line = (int)col_int(res, row, 1);
    ie->col = (int)col_int(res, row, 2);
    ie->message = col_text(res, row, 3);
    ie->at_ms = col_time(res, row, 4);
    return 0;
}

static int read_pool(struct pg_conn *c, const PGresult *res, int row, struct pool_rec *p,
                     struct err *e)
{
    (void)c;
    memset(p, 0, sizeof(*p));
    p->name = col_text(res, row, 0);
    p->slots = (int)col_int(res, row, 1);
    p->updated_at_ms = col_time(res, row, 2);
    return 0;
}

static int read_request(struct pg_conn *c, const PGresult *res, int row, struct run_request *q,
                        struct err *e)
{
    (void)c;
    memset(q, 0, sizeof(*q));
    q->run_id = col_text(res, row, 0);
    q->kind = col_text(res, row, 1);
    q->at_ms = col_time(res, row, 2);
    return 0;
}

static int read_user(struct pg_conn *c, const PGresult *res, int row, struct user_rec *u,
                     struct err *e)
{
    memset(u, 0, sizeof(*u));
    u->name = col_text(res, row, 0);
    u->role = col_text(res, row, 1);
    u->password_hash = col_text(res, row, 2);
    u->created_at_ms = col_time(res, row, 3);
    u->revoked_gen = col_int(res, row, 4);
    if (!u->name || !u->role || !u->password_hash) {
        (void)err_set(e, ERR_DB, "a user in %s lacks a name, role or hash", c->where);
        user_rec_release(u);
        return ERR_DB;
    }
    return 0;
}

static int read_revocation(struct pg_conn *c, const PGresult *res, int row,
                           struct revocation_rec *r, struct err *e)
{
    memset(r, 0, sizeof(*r));
    r->jti = col_text(res, row, 0);
    r->name = col_text(res, row, 1);
    r->at = col_int(res, row, 2);
    r->gen = col_int(res, row, 3);
    if (!r->name) {
        (void)err_set(e, ERR_DB, "a revocation in %s lacks a user", c->where);
        revocation_rec_release(r);
        return ERR_DB;
    }
    return 0;
}

/* Runs statement id for at most one row, read by reader into out: its result, -ENOENT, or a
 * negative code (filling the struct err *e of the calling function). */
#define GET_ONE(c, id, p, reader, out, what)                                                       \
    do {                                                                                           \
        int rc_;                                                                                   \
        PGresult *res_ = run((c), (id), (p), "read " what, &rc_, e);                               \
        if (res_)                                                                                  \
            rc_ = PQntuples(res_) > 0 ? reader((c), res_, 0, (out), e) : -ENOENT;                  \
        PQclear(res_);                                                                             \
        return rc_;                                                                                \
    } while (0)

/* Runs statement id and reads every row into a malloc'd array of T; returns from the calling
 * function (whose struct err *e a failure fills). */
#define LIST_ALL(c, id, p, T, reader, release, outp, np, what)                                     \
    do {                                                                                           \
        *(outp) = NULL;                                                                            \
        *(np) = 0;                                                                                 \
        int rc_;                                                                                   \
        PGresult *res_ = run((c), (id), (p), "read " what, &rc_, e);                               \
        if (!res_)                                                                                 \
            return rc_;                                                                            \
        size_t n_ = (size_t)PQntuples(res_), i_ = 0;                                               \
        T *v_ = n_ ? xcalloc(n_, sizeof(T)) : NULL;                                                \
        for (; i_ < n_ && rc_ == 0; i_++)                                                          \
            rc_ = reader((c), res_, (int)i_, &v_[i_], e);                                          \
        PQclear(res_);                                                                             \
        if (rc_ < 0) {                                                                             \
            for (size_t k_ = 0; k_ + 1 < i_; k_++)                                                 \
                release(&v_[k_]);                                                                  \
            free(v_);                                                                              \
            return rc_;                                                                            \
        }                                                                                          \
        *(outp) = v_;                                                                              \
        *(np) = n_;                                                                                \
        return 0;                                                                                  \
    } while (0)

/* Runs a one-row, one-integer query: 0 with *v (*null when the value or row is absent). */
static int scalar_int(struct pg_conn *c, enum pg_stmt id, const struct params *p, int64_t *v,
                      bool *null, const char *what, struct err *e)
{
    *v = 0;
    *null = true;
    int rc;
    PGresult *res = run(c, id, p, what, &rc, e);
    if (!res)
        return rc;
    if (PQntuples(res) > 0 && !PQgetisnull(res, 0, 0)) {
        *null = false;
        *v = col_int(res, 0, 0);
    }
    PQclear(res);
    return 0;
}

static int pg_get_run(void *db, const char *run_id, struct run_rec *out, struct err *e)
{
    struct params p = {0};
    p_text(&p, run_id);
    GET_ONE((struct pg_conn *)db, ST_GET_RUN, &p, read_run, out, "a run");
}

static int pg_get_ti(void *db, const char *run_id, const char *task_id, struct ti_rec *out,
                     struct err *e)
{
    struct params p = {0};
    p_text(&p, run_id);
    p_text(&p, task_id);
    GET_ONE((struct pg_conn *)db, ST_GET_TI, &p, read_ti, out, "a task instance");
}

static int pg_list_runs(void *db, const struct run_filter *f, int64_t limit, int64_t offset,
                        struct run_rec **out, size_t *n, size_t *total, struct err *e)
{
    struct pg_conn *c = db;
    *out = NULL;
    *n = 0;
    const char *dag_id = f->dag_id;
    /* a DAG's runs (its pages) keep the statements that use its index */
    bool filtered = f->states || f->has_from || f->has_to;
    enum pg_stmt list = filtered ? (dag_id ? ST_LIST_RUNS_FILTER_DAG : ST_LIST_RUNS_FILTER)
                        : dag_id ? ST_LIST_RUNS_DAG
                                 : ST_LIST_RUNS;
    enum pg_stmt count = filtered ? (dag_id ? ST_COUNT_RUNS_FILTER_DAG : ST_COUNT_RUNS_FILTER)
                         : dag_id ? ST_COUNT_RUNS_DAG
                                  : ST_COUNT_RUNS;
    char states[RUN_FILTER_STATES_MAX];
    struct params p = {0};
    if (filtered) {
        p_text(&p, dag_id);
        p_text(&p, f->states ? run_filter_states(f, states, sizeof states) : NULL);
        p_int(&p, f->has_from ? f->from_ms : INT64_MIN);
        p_int(&p, f->has_to ? f->to_ms : INT64_MAX);
    } else if (dag_id) {
        p_text(&p, dag_id);
    }
    if (total) {
        int64_t v;
        bool null;
        int r = scalar_int(c, count, &p, &v, &null, "count runs", e);
        if (r < 0)
            return r;
        *total = (size_t)v;
    }
    if (limit < 0)
        p_text(&p, NULL); /* LIMIT NULL: all */
    else
        p_int(&p, limit);
    p_int(&p, offset < 0 ? 0 : offset);
    LIST_ALL(c, list, &p, struct run_rec, read_run, run_rec_release, out, n, "runs");
}

static int pg_list_tis(void *db, const char *run_id, struct ti_rec **out, size_t *n, struct err *e)
{
    struct params p = {0};
    p_text(&p, run_id);
    LIST_ALL((struct pg_conn *)db, ST_LIST_TIS, &p, struct ti_rec, read_ti, ti_rec_release, out, n,
             "task instances");
}

static int pg_list_tries(void *db, const char *run_id, const char *task_id, struct try_rec **out,
                         size_t *n, struct err *e)
{
    struct params p = {0};
    p_text(&p, run_id);
    p_text(&p, task_id);
    LIST_ALL((struct pg_conn *)db, ST_LIST_TRIES, &p, struct try_rec, read_try, try_rec_release,
             out, n, "tries");
}

static int pg_get_dag_version(void *db, const char *hash, char **source, size_t *len, struct err *e)
{
    struct pg_conn *c = db;
    *source = NULL;
    *len = 0;
    struct params p = {0};
    p_text(&p, hash);
    int rc;
    PGresult *res = run(c, ST_GET_DV, &p, "read a DAG version", &rc, e);
    if (!res)
        return rc;
    if (PQntuples(res) > 0)
        *source = col_bytea(res, 0, 0, len);
    else
        rc = -ENOENT;
    PQclear(res);
    return rc;
}

/* ---- the scheduler's tables ---- */

static int pg_put_dag(void *db, const struct dag_rec *d, struct err *e)
{
    struct pg_conn *c = db;
    if (!d->dag_id)
        return bad_record(c, "DAG", d->dag_id, "no DAG id", e);
    struct params p = {0};
    p_text(&p, d->dag_id);
    p_text(&p, d->path);
    p_text(&p, d->hash);
    p_text(&p, d->schedule);
    p_text(&p, d->description);
    p_int(&p, store__now_or(d->updated_at_ms));
    return put_stmt(c, ST_PUT_DAG, &p, "write a DAG", e);
}

static int pg_set_paused(void *db, const char *dag_id, bool paused, struct err *e)
{
    struct pg_conn *c = db;
    if (!dag_id)
        return bad_record(c, "DAG", dag_id, "no DAG id", e);
    struct params p = {0};
    p_text(&p, dag_id);
    p_int(&p, paused ? 1 : 0);
    p_int(&p, when_now_ms());
    return put_stmt(c, ST_SET_PAUSED, &p, "pause or unpause a DAG", e);
}

static int pg_get_dag(void *db, const char *dag_id, struct dag_rec *out, struct err *e)
{
    memset(out, 0, sizeof(*out));
    struct params p = {0};
    p_text(&p, dag_id);
    GET_ONE((struct pg_conn *)db, ST_GET_DAG, &p, read_dag, out, "a DAG");
}

static int pg_list_dags(void *db, struct dag_rec **out, size_t *n, struct err *e)
{
    LIST_ALL((struct pg_conn *)db, ST_LIST_DAGS, NULL, struct dag_rec, read_dag, dag_rec_release,
             out, n, "DAGs");
}

static int pg_set_import_errors(void *db, const char *path, const struct import_error_rec *v,
                                size_t n, struct err *e)
{
    struct pg_conn *c = db;
    if (!path)
        return bad_record(c, "import errors", path, "no path", e);
    for (size_t i = 0; i < n; i++)
        if (!v[i].message)
            return bad_record(c, "import errors of", path, "an error without a message", e);
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    struct params p = {0};
    p_text(&p, path);
    r = put_stmt(c, ST_LOCK_IMPORT_ERRORS, &p, "lock import errors", e);
    if (r == 0)
        r = put_stmt(c, ST_DEL_IMPORT_ERRORS, &p, "clear import errors", e);
    for (size_t i = 0; i < n && r == 0; i++) {
        struct params q = {0};
        p_text(&q, path);
        p_int(&q, v[i].line);
        p_int(&q, v[i].col);
        p_text(&q, v[i].message);
        p_int(&q, store__now_or(v[i].at_ms));
        r = put_stmt(c, ST_PUT_IMPORT_ERROR, &q, "write an import error", e);
    }
    return txn_end(c, own, r, e);
}

static int pg_list_import_errors(void *db, struct import_error_rec **out, size_t *n, struct err *e)
{
    LIST_ALL((struct pg_conn *)db, ST_LIST_IMPORT_ERRORS, NULL, struct import_error_rec,
             read_import_error, import_error_rec_release, out, n, "import errors");
}

static int pg_set_pool(void *db, const char *name, int slots, struct err *e)
{
    struct pg_conn *c = db;
    if (!name || !*name)
        return bad_record(c, "pool", name, "no name", e);
    if (slots < 0)
        return bad_record(c, "pool", name, "negative slots", e);
    struct params p = {0};
    p_text(&p, name);
    p_int(&p, slots);
    p_int(&p, when_now_ms());
    return put_stmt(c, ST_SET_POOL, &p, "write a pool", e);
}

static int pg_list_pools(void *db, struct pool_rec **out, size_t *n, struct err *e)
{
    LIST_ALL((struct pg_conn *)db, ST_LIST_POOLS, NULL, struct pool_rec, read_pool,
             pool_rec_release, out, n, "pools");
}

static int pg_pool_usage(void *db, const char *pool, struct pool_usage *u, struct err *e)
{
    *u = (struct pool_usage){0};
    struct params p = {0};
    p_text(&p, pool ? pool : "default");
    int rc;
    PGresult *res = run(db, ST_POOL_USAGE, &p, "read a pool's usage", &rc, e);
    if (!res)
        return rc;
    if (PQntuples(res) > 0) {
        u->scheduled = (int)col_int(res, 0, 0);
        u->queued = (int)col_int(res, 0, 1);
        u->running = (int)col_int(res, 0, 2);
    }
    PQclear(res);
    return 0;
}

static int pg_put_request(void *db, const char *run_id, const char *kind, struct err *e)
{
    struct pg_conn *c = db;
    if (!run_id || !kind)
        return bad_record(c, "request", run_id, "no run id or kind", e);
    struct params p = {0};
    p_text(&p, run_id);
    p_text(&p, kind);
    p_int(&p, when_now_ms());
    return put_stmt(c, ST_PUT_REQUEST, &p, "write a request", e);
}

static int list_requests(struct pg_conn *c, enum pg_stmt id, const struct params *p,
                         struct run_request **out, size_t *n, struct err *e)
{
    LIST_ALL(c, id, p, struct run_request, read_request, run_request_release, out, n, "requests");
}

/* Only what sched_id may carry out is taken: requests about an unfinished run of another
 * scheduler (or of none yet) stay, in place, for the one that owns it; nothing is put back. */
static int pg_take_requests(void *db, int64_t sched_id, struct run_request **out, size_t *n,
                            struct err *e)
{
    struct pg_conn *c = db;
    /* A scheduler asks every few seconds: when there is nothing to take, answer from a read
     * alone, so an idle database is never written to. */
    int r = list_requests(c, ST_LIST_REQUESTS, NULL, out, n, e);
    if (r < 0 || *n == 0)
        return r;
    bool lasting = true; /* only requests that stay until done (clears): nothing to delete */
    for (size_t i = 0; i < *n && lasting; i++)
        lasting =
            strncmp((*out)[i].kind, STORE_REQUEST_LASTING, sizeof STORE_REQUEST_LASTING - 1) == 0;
    if (lasting)
        return 0;
    store_free_requests(*out, *n);
    struct params p = {0};
    p_int(&p, sched_id);
    return list_requests(c, ST_TAKE_REQUESTS, &p, out, n, e);
}

/* The number of rows statement id changed: >= 0, or a negative code. */
static int64_t changed(struct pg_conn *c, enum pg_stmt id, const struct params *p, const char *what,
                       struct err *e)
{
    int rc;
    PGresult *res = run(c, id, p, what, &rc, e);
    if (!res)
        return rc;
    int64_t v = strtoll(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return v;
}

static int pg_delete_request(void *db, const char *run_id, const char *kind, struct err *e)
{
    struct params p = {0};
    p_text(&p, run_id);
    p_text(&p, kind);
    int64_t r = changed(db, ST_DEL_REQUEST, &p, "delete a request", e);
    return r < 0 ? (int)r : r > 0;
}

static int pg_list_unfinished_runs(void *db, struct run_rec **out, size_t *n, struct err *e)
{
    LIST_ALL((struct pg_conn *)db, ST_LIST_UNFINISHED, NULL, struct run_rec, read_run,
             run_rec_release, out, n, "unfinished runs");
}

static int pg_list_owned_runs(void *db, int64_t id, struct run_rec **out, size_t *n, struct err *e)
{
    struct params p = {0};
    p_int(&p, id);
    LIST_ALL((struct pg_conn *)db, ST_LIST_OWNED, &p, struct run_rec, read_run, run_rec_release,
             out, n, "owned runs");
}

static int pg_last_logical(void *db, const char *dag_id, enum run_type type, int64_t *at_ms,
                           struct err *e)
{
    struct pg_conn *c = db;
    *at_ms = 0;
    if ((unsigned)type >= RUN_TYPE_COUNT)
        return bad_record(c, "query for DAG", dag_id, "invalid run type", e);
    struct params p = {0};
    p_text(&p, dag_id);
    p_text(&p, run_type_name(type));
    bool null;
    int r = scalar_int(c, ST_LAST_LOGICAL, &p, at_ms, &null, "read the last logical date", e);
    return r == 0 && null ? -ENOENT : r;
}

static int pg_has_run_at(void *db, const char *dag_id, int64_t logical_at_ms, bool *exists,
                         struct err *e)
{
    *exists = false;
    struct params p = {0};
    p_text(&p, dag_id);
    p_int(&p, logical_at_ms);
    int64_t v;
    bool null;
    int r = scalar_int(db, ST_HAS_RUN_AT, &p, &v, &null, "read runs", e);
    *exists = r == 0 && !null;
    return r;
}

/* Claims prefix + the ISO time of at_ms (+1 ms until one is free): the INSERT ... ON CONFLICT
 * DO NOTHING of the primary key decides, so two claimers, in this process or another
 * scheduler, never get one id. */
static int pg_claim_run(void *db, const char *prefix, int64_t at_ms, const struct run_rec *rec,
                        char *id, size_t idsz, struct err *e)
{
    struct pg_conn *c = db;
    if (idsz)
        id[0] = 0;
    if (!prefix || !rec || !rec->dag_id)
        return bad_record(c, "run", prefix, "no prefix or DAG id", e);
    if (idsz < strlen(prefix) + 25)
        return bad_record(c, "run", prefix, "no room for the run id", e);
    int r = check_run(c, rec, prefix, e);
    if (r < 0)
        return r;
    bool own;
    if ((r = txn_start(c, &own, e)) < 0)
        return r;
    char iso[32];
    r = -EEXIST;
    /* A scheduled interval exists once (0006): another scheduler may have created it a
     * moment ago, or be creating it now (its insert then decides ours, ON CONFLICT). */
    bool sched = rec->type == RUN_SCHEDULED;
    for (int n = 0; n < 1000 && r == -EEXIST; n++) {
        if (sched) {
            struct params q = {0};
            p_text(&q, rec->dag_id);
            p_int(&q, rec->logical_at_ms);
            int64_t v;
            bool null;
            if ((r = scalar_int(c, ST_SCHEDULED_AT, &q, &v, &null, "read runs", e)) < 0)
                break;
            if (!null) {
                r = err_set(e, -EALREADY,
                            "DAG '%s' has a scheduled run at this logical date already",
                            rec->dag_id);
                break;
            }
        }
        when_format_iso(at_ms + n, iso, sizeof(iso));
        snprintf(id, idsz, "%s%s", prefix, iso);
        struct params p = {0};
        run_params(&p, rec, id);
        PGresult *res =
            run(c, sched ? ST_CLAIM_SCHEDULED : ST_CLAIM_RUN, &p, "claim a run id", &r, e);
        if (!res)
            break;
        r = PQntuples(res) > 0 ? 0 : -EEXIST;
        PQclear(res);
    }
    /* A run claimed here is written outside the group-commit writer, which records the events
     * of everything else: its event goes in the same transaction, so the event stream shows a
     * run held queued (a paused DAG, max_active_runs) at once. A backend without an event log
     * yet answers -ENOTSUP: the run still goes in. */
    if (r == 0) {
        int er = store__pg_backend.events_put(c, EVENT_RUN, rec->dag_id, id, NULL,
                                              run_state_name(rec->state), 0,
                                              store__now_or(rec->queued_at_ms), e);
        if (er < 0 && er != -ENOTSUP)
            r = er;
    }
    if (r == -EEXIST)
        (void)err_set(e, ERR_DB, "cannot find a free run id after '%s' in %s", id, c->where);
    r = txn_end(c, own, r, e);
    if (r < 0 && idsz)
        id[0] = 0;
    return r;
}

static int pg_delete_ti(void *db, const char *run_id, const char *task_id, struct err *e)
{
    struct pg_conn *c = db;
    if (!run_id || !task_id)
        return bad_record(c, "task instance", task_id, "no run id or task id", e);
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    struct params p = {0};
    p_text(&p, run_id);
    p_text(&p, task_id);
    r = put_stmt(c, ST_DEL_TRIES, &p, "delete a task instance", e);
    if (r == 0)
        r = put_stmt(c, ST_DEL_TI, &p, "delete a task instance", e);
    return txn_end(c, own, r, e);
}

/* ---- users ---- */

/* Binds the columns of u for ST_PUT_USER or ST_ADD_USER; -EINVAL when u lacks one. */
static int user_params(struct pg_conn *c, const struct user_rec *u, struct params *p, struct err *e)
{
    if (!u || !u->name || !*u->name || !u->role || !u->password_hash)
        return bad_record(c, "user", u ? u->name : NULL, "no name, role or password hash", e);
    p_text(p, u->name);
    p_text(p, u->role);
    p_text(p, u->password_hash);
    p_int(p, store__now_or(u->created_at_ms));
    return 0;
}

static int pg_put_user(void *db, const struct user_rec *u, struct err *e)
{
    struct pg_conn *c = db;
    struct params p = {0};
    int r = user_params(c, u, &p, e);
    return r < 0 ? r : put_stmt(c, ST_PUT_USER, &p, "write a user", e);
}

/* One statement, so two concurrent adds of a name cannot both see it missing (READ
 * COMMITTED): the second finds the first's row through the unique index. */
static int pg_add_user(void *db, const struct user_rec *u, struct err *e)
{
    struct pg_conn *c = db;
    struct params p = {0};
    int r = user_params(c, u, &p, e);
    if (r < 0)
        return r;
    int64_t n = changed(c, ST_ADD_USER, &p, "add a user", e);
    return n < 0 ? (int)n : n == 0 ? -EEXIST : 0;
}

static int pg_get_user(void *db, const char *name, struct user_rec *out, struct err *e)
{
    memset(out, 0, sizeof(*out));
    struct params p = {0};
    p_text(&p, name);
    GET_ONE((struct pg_conn *)db, ST_GET_USER, &p, read_user, out, "a user");
}

static int pg_list_users(void *db, struct user_rec **out, size_t *n, struct err *e)
{
    LIST_ALL((struct pg_conn *)db, ST_LIST_USERS, NULL, struct user_rec, read_user,
             user_rec_release, out, n, "users");
}

static int pg_delete_user(void *db, const char *name, struct err *e)
{
    if (!name)
        return -ENOENT;
    struct params p = {0};
    p_text(&p, name);
    int64_t r = changed(db, ST_DEL_USER, &p, "delete a user", e);
    return r < 0 ? (int)r : r == 0 ? -ENOENT : 0;
}

static int pg_count_users(void *db, const char *role, int64_t *count, struct err *e)
{
    struct params p = {0};
    p_text(&p, role);
    bool null;
    return scalar_int(db, ST_COUNT_USERS, &p, count, &null, "count users", e);
}

/* ---- revoked tokens ---- */

/* Raises the revocation generation, then runs statement id, whose row takes the new
 * generation; one transaction (the caller's, or one of its own). */
static int revocation_write(struct pg_conn *c, enum pg_stmt id, const struct params *p,
                            const char *what, struct err *e)
{
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    r = put_stmt(c, ST_BUMP_REVOCATION_GEN, NULL, "raise the revocation generation", e);
    if (r == 0)
        r = put_stmt(c, id, p, what, e);
    return txn_end(c, own, r, e);
}

static int pg_revoke_token(void *db, const char *jti, const char *name, int64_t exp_at_ms,
                           struct err *e)
{
    struct pg_conn *c = db;
    if (!jti || !*jti || !name)
        return bad_record(c, "revoked token", jti, "no jti or user", e);
    struct params p = {0};
    p_text(&p, jti);
    p_text(&p, name);
    p_int(&p, exp_at_ms);
    return revocation_write(c, ST_REVOKE_TOKEN, &p, "revoke a token", e);
}

static int pg_revoke_user(void *db, const char *name, int64_t before_s, struct err *e)
{
    struct pg_conn *c = db;
    if (!name || !*name)
        return bad_record(c, "revoked user", name, "no name", e);
    struct params p = {0};
    p_text(&p, name);
    p_int(&p, before_s);
    return revocation_write(c, ST_REVOKE_USER, &p, "revoke a user's tokens", e);
}

static int pg_revocation_gen(void *db, int64_t *gen, struct err *e)
{
    bool null;
    return scalar_int(db, ST_REVOCATION_GEN, NULL, gen, &null, "read the revocation generation", e);
}

static int pg_list_revocations(void *db, int64_t after_gen, struct revocation_rec **out, size_t *n,
                               struct err *e)
{
    struct params p = {0};
    p_int(&p, after_gen);
    LIST_ALL((struct pg_conn *)db, ST_LIST_REVOCATIONS, &p, struct revocation_rec, read_revocation,
             revocation_rec_release, out, n, "revocations");
}

static int pg_purge_revocations(void *db, int64_t before_ms, int64_t *purged, struct err *e)
{
    if (purged)
        *purged = 0;
    struct params p = {0};
    p_int(&p, before_ms);
    int64_t r = changed(db, ST_PURGE_REVOKED_TOKENS, &p, "purge expired revoked tokens", e);
    if (r < 0)
        return (int)r;
    if (purged)
        *purged = r;
    return 0;
}

const struct store_backend store__pg_backend = {
    .name = "postgresql",
    .close = pg_close,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .put_run = pg_put_run,
    .put_ti = pg_put_ti,
    .put_try = pg_put_try,
    .put_dag_version = pg_put_dag_version,
    .get_run = pg_get_run,
    .get_ti = pg_get_ti,
    .list_runs = pg_list_runs,
    .list_tis = pg_list_tis,
    .list_tries = pg_list_tries,
    .get_dag_version = pg_get_dag_version,
    .put_dag = pg_put_dag,
    .set_paused = pg_set_paused,
    .get_dag = pg_get_dag,
    .list_dags = pg_list_dags,
    .set_import_errors = pg_set_import_errors,
    .list_import_errors = pg_list_import_errors,
    .set_pool = pg_set_pool,
    .list_pools = pg_list_pools,
    .pool_usage = pg_pool_usage,
    .put_request = pg_put_request,
    .take_requests = pg_take_requests,
    .delete_request = pg_delete_request,
    .list_unfinished_runs = pg_list_unfinished_runs,
    .last_logical = pg_last_logical,
    .has_run_at = pg_has_run_at,
    .claim_run = pg_claim_run,
    .delete_ti = pg_delete_ti,
    .put_user = pg_put_user,
    .add_user = pg_add_user,
    .get_user = pg_get_user,
    .list_users = pg_list_users,
    .delete_user = pg_delete_user,
    .count_users = pg_count_users,
    .revoke_token = pg_revoke_token,
    .revoke_user = pg_revoke_user,
    .revocation_gen = pg_revocation_gen,
    .list_revocations = pg_list_revocations,
    .purge_revocations = pg_purge_revocations,
    .shared = true,
    .node_register = pg_node_register,
    .node_heartbeat = pg_node_heartbeat,
    .node_stop = pg_node_stop,
    .list_nodes = pg_list_nodes,
    .reap_nodes = pg_reap_nodes,
    .live_schedulers = pg_live_schedulers,
    .lost_scheduler = pg_lost_scheduler,
    .unserved_tis = pg_unserved_tis,
    .claim_runs = pg_claim_runs,
    .take_run = pg_take_run,
    .list_owned_runs = pg_list_owned_runs,
    .fence = pg_fence,
    .events_w_open = events_pg_w_open,
    .events_w_close = events_pg_w_close,
    .events_w_put = events_pg_w_put,
    .events_w_prune = events_pg_w_prune,
    .events_list = events_pg_list,
    .events_last_id = events_pg_last_id,
    .count_tis = events_pg_count_tis,
    .count_runs = events_pg_count_runs,
    .events_put = events_pg_put,
    .events_w_flush = events_pg_w_flush,
    .notify = events_pg_notify,
    .ping = events_pg_ping,
};
