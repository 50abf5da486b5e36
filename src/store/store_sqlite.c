/*
 * store_sqlite.c - the SQLite backend of the store (store.h, store_int.h).
 *
 * One struct sqlite_conn is one connection, used by one thread at a time
 * (opened SQLITE_OPEN_NOMUTEX). Settings: WAL journal (readers never block
 * the writer), synchronous=FULL (a COMMIT is on disk when it returns),
 * foreign_keys=ON, busy_timeout 5 s. Every statement is prepared once per
 * connection, on first use, with SQLITE_PREPARE_PERSISTENT, and reused after
 * sqlite3_reset: the group-commit writer's hot path never re-prepares.
 *
 * Times are INTEGER ms, NULL for -1; states are stored by name. Strings are
 * bound SQLITE_STATIC: the caller's record outlives the step. A new database
 * file is made 0600 (SQLite gives -wal and -shm the file's mode) in a folder
 * created 0700 when missing.
 *
 * Errors return ERR_DB (or -ENOENT for a missing row) and fill the caller's
 * struct err (may be NULL) with a message for people; nothing is kept here.
 *
 * The scheduler's calls that write several rows (import errors, request
 * take, run-id claim, task instance delete) open their own BEGIN IMMEDIATE
 * transaction when none is open and join the caller's otherwise.
 */
#include "store/store_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <sqlite3.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/migrate.h"

#define RUN_ORDER " ORDER BY logical_at DESC, queued_at DESC, run_id DESC LIMIT ? OFFSET ?"
/* store_find_runs: ?1 dag_id (NULL in the _ANY form), ?2 the states as ",failed,running,"
 * (run_filter_states; NULL: any), ?3 from, ?4 to (INT64_MIN, INT64_MAX: open). The range and
 * the DAG are plain comparisons so that runs_logical or runs_dag_logical serve them. */
#define RUNS_FILTER_REST                                                                           \
    " AND (?2 IS NULL OR instr(?2, ',' || state || ',') > 0) AND logical_at >= ?3 AND "            \
    "logical_at <= ?4"
#define RUNS_FILTER_ANY "?1 IS NULL" RUNS_FILTER_REST
#define RUNS_FILTER_DAG "dag_id = ?1" RUNS_FILTER_REST
/* A run whose scheduler is no longer active (a finished run of one that has gone, set queued
 * again by a clear) is anyone's to claim. */
#define NOT_LIVE "sched_id NOT IN (SELECT id FROM workers WHERE state IN ('active', 'draining'))"
#define CLAIMABLE                                                                                  \
    "state IN ('queued', 'running') AND owner IS NULL AND (sched_id IS NULL OR " NOT_LIVE ")"
/* The active schedulers, at least 1: a claim takes a fair share of the claimable runs. */
#define LIVE_SCHEDULERS                                                                            \
    "(SELECT max(COUNT(*), 1) FROM workers WHERE role = 'scheduler' AND state = 'active')"

#define STMT_TABLE(X)                                                                              \
    X(ST_BEGIN, "BEGIN IMMEDIATE")                                                                 \
    X(ST_COMMIT, "COMMIT")                                                                         \
    X(ST_ROLLBACK, "ROLLBACK")                                                                     \
    X(ST_PUT_RUN,                                                                                  \
      "INSERT INTO runs (" RUN_COLS ") "                                                           \
      "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "                                \
      "ON CONFLICT (run_id) DO UPDATE SET dag_id = ?2, state = ?3, type = ?4, logical_at = ?5, "   \
      "queued_at = ?6, started_at = ?7, ended_at = ?8, conf = ?9, dag_hash = ?10, "                \
      "dag_path = ?11, owner = ?12, logs_purged_at = NULL")                                        \
    /* seq: the first-seen order of the task (not the instance) within its run. */                 \
    X(ST_PUT_TI,                                                                                   \
      "INSERT INTO task_instances (" TI_COLS ", seq) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, " \
      "?10, ?11, ?12, ?13, ?14, ?15, ?16, COALESCE((SELECT seq FROM task_instances WHERE "         \
      "run_id = ?1 AND task = ?3 LIMIT 1), (SELECT IFNULL(MAX(seq), 0) + 1 FROM task_instances "   \
      "WHERE run_id = ?1))) "                                                                      \
      "ON CONFLICT (run_id, task_id) DO UPDATE SET task = ?3, map_index = ?4, state = ?5, "        \
      "try_number = ?6, max_tries = ?7, exit_code = ?8, output = ?9, message = ?10, "              \
      "priority = ?11, pool = ?12, scheduled_at = ?13, queued_at = ?14, started_at = ?15, "        \
      "ended_at = ?16")                                                                            \
    X(ST_PUT_TRY,                                                                                  \
      "INSERT INTO tries (" TRY_COLS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, "    \
      "?12, ?13) ON CONFLICT (run_id, task_id, try_number) DO UPDATE SET state = ?4, exit_code = " \
      "?5, "                                                                                       \
      "term_signal = ?6, timed_out = ?7, queued_at = ?8, started_at = ?9, ended_at = ?10, "        \
      "hostname = ?11, pid = ?12, worker = COALESCE(?13, tries.worker)")                           \
    X(ST_PUT_DV, "INSERT OR IGNORE INTO dag_versions (hash, dag_id, source, created_at) "          \
                 "VALUES (?, ?, ?, ?)")                                                            \
    X(ST_GET_RUN, "SELECT " RUN_COLS " FROM runs WHERE run_id = ?")                                \
    X(ST_GET_TI, "SELECT " TI_READ_COLS " FROM task_instances WHERE run_id = ? AND task_id = ?")   \
    X(ST_LIST_RUNS, "SELECT " RUN_COLS " FROM runs" RUN_ORDER)                                     \
    X(ST_LIST_RUNS_DAG, "SELECT " RUN_COLS " FROM runs WHERE dag_id = ?" RUN_ORDER)                \
    X(ST_COUNT_RUNS, "SELECT COUNT(*) FROM runs")                                                  \
    X(ST_COUNT_RUNS_DAG, "SELECT COUNT(*) FROM runs WHERE dag_id = ?")                             \
    X(ST_LIST_RUNS_FILTER, "SELECT " RUN_COLS " FROM runs WHERE " RUNS_FILTER_ANY RUN_ORDER)       \
    X(ST_COUNT_RUNS_FILTER, "SELECT COUNT(*) FROM runs WHERE " RUNS_FILTER_ANY)                    \
    X(ST_LIST_RUNS_FILTER_DAG, "SELECT " RUN_COLS " FROM runs WHERE " RUNS_FILTER_DAG RUN_ORDER)   \
    X(ST_COUNT_RUNS_FILTER_DAG, "SELECT COUNT(*) FROM runs WHERE " RUNS_FILTER_DAG)                \
    X(ST_LIST_TIS, "SELECT " TI_READ_COLS " FROM task_instances WHERE run_id = ? "                 \
                   "WINDOW w AS (PARTITION BY task) ORDER BY MIN(started_at) OVER w IS NULL, "     \
                   "MIN(started_at) OVER w, seq, map_index, task_id")                              \
    X(ST_LIST_TRIES, "SELECT " TRY_COLS " FROM tries WHERE run_id = ? AND task_id = ? "            \
                     "ORDER BY try_number")                                                        \
    X(ST_GET_DV, "SELECT source FROM dag_versions WHERE hash = ?")                                 \
    X(ST_PUT_DAG, "INSERT INTO dags (dag_id, path, hash, schedule, description, paused, "          \
                  "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6) ON CONFLICT (dag_id) DO UPDATE " \
                  "SET path = ?2, hash = ?3, schedule = ?4, description = ?5, updated_at = ?6")    \
    X(ST_SET_PAUSED, "INSERT INTO dags (dag_id, paused, updated_at) VALUES (?1, ?2, ?3) "          \
                     "ON CONFLICT (dag_id) DO UPDATE SET paused = ?2, updated_at = ?3")            \
    X(ST_GET_DAG, "SELECT " DAG_COLS " FROM dags WHERE dag_id = ?")                                \
    X(ST_LIST_DAGS, "SELECT " DAG_COLS " FROM dags ORDER BY dag_id")                               \
    X(ST_DEL_IMPORT_ERRORS, "DELETE FROM import_errors WHERE path = ?")                            \
    X(ST_PUT_IMPORT_ERROR, "INSERT INTO import_errors (path, line, col, message, at) "             \
                           "VALUES (?, ?, ?, ?, ?)")                                               \
    X(ST_LIST_IMPORT_ERRORS, "SELECT path, line, col, message, at FROM import_errors "             \
                             "ORDER BY path, line, col, rowid")                                    \
    X(ST_SET_POOL, "INSERT INTO pools (name, slots, updated_at) VALUES (?1, ?2, ?3) "              \
                   "ON CONFLICT (name) DO UPDATE SET slots = ?2, updated_at = ?3")                 \
    X(ST_LIST_POOLS, "SELECT name, slots, updated_at FROM pools ORDER BY name")                    \
    X(ST_POOL_USAGE, "SELECT TOTAL(state = 'scheduled'), TOTAL(state = 'queued'), "                \
                     "TOTAL(state = 'running') FROM task_instances WHERE state IN ('scheduled', "  \
                     "'queued', 'running') AND (pool = ?1 OR (pool IS NULL AND ?1 = 'default'))")  \
    X(ST_PUT_REQUEST, "INSERT INTO run_requests (run_id, kind, at) VALUES (?1, ?2, ?3) "           \
                      "ON CONFLICT (run_id, kind) DO UPDATE SET at = ?3")                          \
    X(ST_LIST_REQUESTS, "SELECT run_id, kind, at FROM run_requests ORDER BY at, run_id, kind")     \
    X(ST_DEL_REQUESTS,                                                                             \
      "DELETE FROM run_requests WHERE kind NOT LIKE '" STORE_REQUEST_LASTING "%'")                 \
    X(ST_DEL_REQUEST, "DELETE FROM run_requests WHERE run_id = ?1 AND kind = ?2")                  \
    X(ST_LIST_UNFINISHED, "SELECT " RUN_COLS " FROM runs WHERE state IN ('queued', 'running') "    \
                          "AND owner IS NULL ORDER BY queued_at IS NULL, queued_at, logical_at, "  \
                          "run_id")                                                                \
    X(ST_LAST_LOGICAL, "SELECT MAX(logical_at) FROM runs WHERE dag_id = ? AND type = ?")           \
    X(ST_HAS_RUN_AT, "SELECT 1 FROM runs WHERE dag_id = ? AND logical_at = ? AND "                 \
                     "type IN ('scheduled', 'backfill') LIMIT 1")                                  \
    X(ST_RUN_EXISTS, "SELECT 1 FROM runs WHERE run_id = ?")                                        \
    X(ST_SCHEDULED_AT, "SELECT 1 FROM runs WHERE dag_id = ? AND logical_at = ? AND "               \
                       "type = 'scheduled'")                                                       \
    X(ST_DEL_TRIES, "DELETE FROM tries WHERE run_id = ? AND task_id = ?")                          \
    X(ST_DEL_TI, "DELETE FROM task_instances WHERE run_id = ? AND task_id = ?")                    \
    X(ST_PUT_USER, "INSERT INTO users (name, role, password_hash, created_at) "                    \
                   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO UPDATE SET role = ?2, "          \
                   "password_hash = ?3")                                                           \
    X(ST_ADD_USER, "INSERT INTO users (name, role, password_hash, created_at) "                    \
                   "VALUES (?1, ?2, ?3, ?4) ON CONFLICT (name) DO NOTHING")                        \
    X(ST_GET_USER, "SELECT name, role, password_hash, created_at, " USER_REVOKED_GEN               \
                   " FROM users WHERE name = ?")                                                   \
    X(ST_LIST_USERS, "SELECT name, role, password_hash, created_at, " USER_REVOKED_GEN             \
                     " FROM users ORDER BY name")                                                  \
    X(ST_DEL_USER, "DELETE FROM users WHERE name = ?")                                             \
    X(ST_COUNT_USERS, "SELECT COUNT(*) FROM users WHERE ?1 IS NULL OR role = ?1")                  \
    X(ST_BUMP_REVOCATION_GEN, "UPDATE revocation_gen SET gen = gen + 1 WHERE id = 1")              \
    X(ST_REVOKE_TOKEN, "INSERT INTO revoked_tokens (jti, name, exp_at, gen) VALUES (?1, ?2, ?3, "  \
                       "(SELECT gen FROM revocation_gen WHERE id = 1)) ON CONFLICT (jti) DO "      \
                       "UPDATE SET exp_at = MAX(exp_at, ?3), gen = excluded.gen")                  \
    X(ST_REVOKE_USER, "INSERT INTO revoked_users (name, before_s, gen) VALUES (?1, ?2, "           \
                      "(SELECT gen FROM revocation_gen WHERE id = 1)) ON CONFLICT (name) DO "      \
                      "UPDATE SET before_s = MAX(before_s + 1, ?2), gen = excluded.gen")           \
    X(ST_REVOCATION_GEN, "SELECT gen FROM revocation_gen WHERE id = 1")                            \
    X(ST_LIST_REVOCATIONS, "SELECT jti, name, exp_at, gen FROM revoked_tokens WHERE gen > ?1 "     \
                           "UNION ALL SELECT NULL, name, before_s, gen FROM revoked_users "        \
                           "WHERE gen > ?1 ORDER BY 4")                                            \
    X(ST_PURGE_REVOKED_TOKENS, "DELETE FROM revoked_tokens WHERE exp_at < ?")                      \
    X(ST_NODE_REGISTER, "INSERT INTO workers (role, name, hostname, pid, queues, slots, state, "   \
                        "started_at, heartbeat_at, home) VALUES (?1, ?2, ?3, ?4, ?5, ?6, "         \
                        "'active', ?7, ?7, ?8)")                                                   \
    X(ST_NODE_REPLACE, "UPDATE workers SET state = 'dead' WHERE role = ?1 AND hostname = ?2 AND "  \
                       "home = ?3 AND state IN ('active', 'draining') RETURNING id")               \
    X(ST_NODE_HEARTBEAT, "UPDATE workers SET heartbeat_at = ?2 WHERE id = ?1 AND state IN "        \
                         "('active', 'draining')")                                                 \
    X(ST_NODE_STOP, "UPDATE workers SET state = 'stopped' WHERE id = ?1 AND state IN "             \
                    "('active', 'draining')")                                                      \
    X(ST_NODE_RELEASE, "UPDATE runs SET sched_id = NULL WHERE sched_id = ?1 AND state IN "         \
                       "('queued', 'running')")                                                    \
    X(ST_LIST_NODES, "SELECT id, role, name, hostname, pid, queues, slots, state, started_at, "    \
                     "heartbeat_at, (SELECT COUNT(*) FROM task_instances t JOIN runs r ON "        \
                     "r.run_id = t.run_id WHERE r.sched_id = workers.id AND t.state = 'running' "  \
                     "AND workers.role = 'scheduler') FROM workers ORDER BY role = 'worker', id")  \
    X(ST_REAP_NODES, "UPDATE workers SET state = 'dead' WHERE role = 'scheduler' AND state IN "    \
                     "('active', 'draining') AND heartbeat_at <= ?1 RETURNING id")                 \
    X(ST_LIVE_SCHEDULERS, "SELECT COUNT(*) FROM workers WHERE role = 'scheduler' AND state IN "    \
                          "('active', 'draining') AND heartbeat_at > ?1 AND (hostname = ?2 AND "   \
                          "home = ?3) IS NOT 1")                                                   \
    X(ST_CLAIM_RUNS, "UPDATE runs SET sched_id = ?1 WHERE run_id IN (SELECT run_id FROM runs "     \
                     "WHERE " CLAIMABLE " ORDER BY queued_at IS NULL, queued_at, logical_at, "     \
                     "run_id LIMIT min(?2, (SELECT (COUNT(*) + " LIVE_SCHEDULERS                   \
                     " - 1) / " LIVE_SCHEDULERS " FROM runs WHERE " CLAIMABLE ")))")               \
    X(ST_TAKE_RUN, "UPDATE runs SET sched_id = ?1 WHERE run_id = ?2 AND (sched_id IS NULL OR "     \
                   "sched_id = ?1 OR " NOT_LIVE ") RETURNING 1")                                   \
    X(ST_LIST_OWNED, "SELECT " RUN_COLS " FROM runs WHERE state IN ('queued', 'running') "         \
                     "AND owner IS NULL AND sched_id = ?1 ORDER BY queued_at IS NULL, queued_at, " \
                     "logical_at, run_id")                                                         \
    X(ST_FENCE, "SELECT 1 FROM workers WHERE id = ?1 AND state = 'active'")

enum sqlite_stmt {
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

struct sqlite_conn {
    sqlite3 *db;                  /* owned */
    char *path;                   /* owned */
    sqlite3_stmt *stmt[ST_COUNT]; /* owned; NULL until first use */
};

struct sqlite3 *store__sqlite(void *conn)
{
    return conn ? ((struct sqlite_conn *)conn)->db : NULL;
}

/* Fills e with what failed, then SQLite's words for why; returns ERR_DB. */
PRINTF_LIKE(3, 4) static int conn_fail(struct sqlite_conn *c, struct err *e, const char *fmt, ...)
{
    if (!e)
        return ERR_DB;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    size_t len = n < 0 ? 0 : (size_t)n < sizeof(e->msg) ? (size_t)n : sizeof(e->msg) - 1;
    snprintf(e->msg + len, sizeof(e->msg) - len, ": %s", sqlite3_errmsg(c->db));
    e->code = ERR_DB;
    return ERR_DB;
}

/* The prepared statement id, reset and ready to bind; NULL with e filled on failure. */
static sqlite3_stmt *stmt_get(struct sqlite_conn *c, enum sqlite_stmt id, struct err *e)
{
    if (!c->stmt[id] && sqlite3_prepare_v3(c->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
                                           &c->stmt[id], NULL) != SQLITE_OK) {
        conn_fail(c, e, "cannot prepare a query on database '%s'", c->path);
        return NULL;
    }
    return c->stmt[id];
}

/* Resets st for the next use, dropping its bindings (which may point at freed memory). */
static void stmt_done(sqlite3_stmt *st)
{
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

/* Runs a statement that returns no rows: 0, or ERR_DB with a message about what. */
static int stmt_exec(struct sqlite_conn *c, sqlite3_stmt *st, const char *what, struct err *e)
{
    int rc = sqlite3_step(st);
    int r = rc == SQLITE_DONE ? 0 : conn_fail(c, e, "cannot %s in database '%s'", what, c->path);
    stmt_done(st);
    return r;
}

static void bind_text(sqlite3_stmt *st, int i, const char *s)
{
    if (s)
        sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static void bind_time(sqlite3_stmt *st, int i, int64_t at_ms)
{
    if (at_ms < 0)
        sqlite3_bind_null(st, i);
    else
        sqlite3_bind_int64(st, i, at_ms);
}

static char *col_text(sqlite3_stmt *st, int i)
{
    const unsigned char *s = sqlite3_column_text(st, i);
    return s ? xstrndup((const char *)s, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

/* A BLOB column as malloc'd bytes plus a NUL (so text output can be printed); NULL for NULL. */
static char *col_blob(sqlite3_stmt *st, int i, size_t *len)
{
    *len = 0;
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const void *p = sqlite3_column_blob(st, i);
    size_t n = (size_t)sqlite3_column_bytes(st, i);
    char *out = xmalloc(n + 1);
    if (n)
        memcpy(out, p, n);
    out[n] = 0;
    *len = n;
    return out;
}

static int64_t col_time(sqlite3_stmt *st, int i)
{
    return sqlite3_column_type(st, i) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, i);
}

/* ---- connection ---- */

/* Creates the missing folders of path's parent, each 0700. 0 or -errno, *failed naming the
 * folder that could not be made. */
static int make_parents(const char *path, struct buf *failed)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int r = 0;
    if (!slash || slash == dir)
        goto out;
    *slash = 0;
    struct stat sb;
    if (stat(dir, &sb) == 0)
        goto out;
    for (char *p = dir + 1;; p++) {
        if (*p != '/' && *p != 0)
            continue;
        char saved = *p;
        *p = 0;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
            r = -errno;
            (void)!buf_adds(failed, dir);
            goto out;
        }
        *p = saved;
        if (!saved)
            break;
    }
out:
    free(dir);
    return r;
}

static void conn_close(void *db)
{
    struct sqlite_conn *c = db;
    if (!c)
        return;
    for (int i = 0; i < ST_COUNT; i++)
        sqlite3_finalize(c->stmt[i]);
    sqlite3_close(c->db);
    free(c->path);
    free(c);
}

static int open_fail(struct err *e, const char *path, const char *why, int code)
{
    return err_set(e, code, "cannot open database '%s': %s", path, why);
}

int store__sqlite_open(const char *path, void **out, struct err *e)
{
    *out = NULL;
    struct buf failed = BUF_INIT(4096);
    int r = make_parents(path, &failed);
    if (r < 0) {
        r = err_set(e, ERR_DB, "cannot open database '%s': cannot create folder '%s': %s", path,
                    failed.data, strerror(-r));
        buf_release(&failed);
        return r;
    }
    buf_release(&failed);

    /* A new database is made 0600 with chmod, by path, right after SQLite creates it and
     * before anything is written (the -wal and -shm files then get the same mode). Never
     * open() and close() the file ourselves: closing any descriptor of it would drop the POSIX
     * locks SQLite holds on it for other connections of this process. */
    struct stat sb;
    bool created = stat(path, &sb) < 0 && errno == ENOENT;
    struct sqlite_conn *c = xcalloc(1, sizeof(*c));
    c->path = xstrdup(path);
    int rc = sqlite3_open_v2(path, &c->db,
                             SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX |
                                 SQLITE_OPEN_EXRESCODE,
                             NULL);
    if (rc != SQLITE_OK) {
        r = open_fail(e, path, c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc), ERR_DB);
        goto fail;
    }
    if (created && chmod(path, 0600) < 0 && errno != ENOENT) {
        r = open_fail(e, path, strerror(errno), ERR_DB);
        goto fail;
    }
    sqlite3_busy_timeout(c->db, 5000);
    /* Closing a connection need not checkpoint the WAL (three fsyncs on a disk, at every
     * command's exit): the WAL is already durable, and checkpoints happen as it grows. */
    sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
    sqlite3_extended_result_codes(c->db, 1);
    /* journal_mode answers with a row: read it to be sure WAL took (it fails on some
     * filesystems, and then durability rules differ). */
    /* Switching a fresh file to WAL can answer SQLITE_BUSY at once, without the busy handler,
     * while another process is doing the same (several first runs on a new home): retry for
     * up to the busy timeout. This runs at open, on a thread that may block. */
    sqlite3_stmt *st = NULL;
    int step = SQLITE_BUSY;
    for (int attempt = 0; attempt < 250; attempt++) {
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(c->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK)
            step = sqlite3_extended_errcode(c->db);
        else
            step = sqlite3_step(st);
        if ((step & 0xff) != SQLITE_BUSY && (step & 0xff) != SQLITE_LOCKED)
            break;
        struct timespec pause = {0, 20 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
    if (step != SQLITE_ROW) {
        sqlite3_finalize(st);
        r = open_fail(e, path, sqlite3_errmsg(c->db), ERR_DB);
        goto fail;
    }
    const char *mode = (const char *)sqlite3_column_text(st, 0);
    if (!mode || strcmp(mode, "wal") != 0) {
        r = err_set(e, ERR_DB,
                    "cannot open database '%s': cannot use write-ahead logging (journal mode is "
                    "'%s')",
                    path, mode ? mode : "?");
        sqlite3_finalize(st);
        goto fail;
    }
    sqlite3_finalize(st);
    if (sqlite3_exec(c->db, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON", NULL, NULL, NULL) !=
        SQLITE_OK) {
        r = open_fail(e, path, sqlite3_errmsg(c->db), ERR_DB);
        goto fail;
    }
    r = migrate_sqlite(c->db, path, e);
    if (r < 0)
        goto fail;
    *out = c;
    return 0;
fail:
    conn_close(c);
    return r;
}

/* ---- transactions ---- */

static int conn_step_simple(struct sqlite_conn *c, enum sqlite_stmt id, const char *what,
                            struct err *e)
{
    sqlite3_stmt *st = stmt_get(c, id, e);
    return st ? stmt_exec(c, st, what, e) : ERR_DB;
}

static int conn_begin(void *db, struct err *e)
{
    return conn_step_simple(db, ST_BEGIN, "start a transaction", e);
}

static void conn_rollback(void *db)
{
    struct sqlite_conn *c = db;
    if (sqlite3_get_autocommit(c->db))
        return; /* nothing open (SQLite may already have rolled back after an error) */
    sqlite3_stmt *st = stmt_get(c, ST_ROLLBACK, NULL);
    if (st) {
        sqlite3_step(st);
        stmt_done(st);
    }
}

/* On failure the transaction is rolled back, so the caller can simply retry the batch. */
static int conn_commit(void *db, struct err *e)
{
    struct sqlite_conn *c = db;
    if (FAULT(FP_STORE_COMMIT)) {
        conn_rollback(c);
        (void)err_set(e, ERR_DB, "cannot commit to database '%s': injected fault FP_STORE_COMMIT",
                      c->path);
        return ERR_DB;
    }
    int r = conn_step_simple(c, ST_COMMIT, "commit", e);
    if (r < 0)
        conn_rollback(c);
    return r;
}

/* ---- writes ---- */

/* A record the database would refuse or could not read back is our caller's bug, but it must
 * not take the store down: refuse it with a message. */
static int bad_record(struct sqlite_conn *c, const char *what, const char *id, const char *why,
                      struct err *e)
{
    (void)err_set(e, ERR_DB, "cannot write %s '%s' to database '%s': %s", what, id ? id : "",
                  c->path, why);
    return ERR_DB;
}

static int conn_put_run(void *db, const struct run_rec *r, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!r->run_id || !r->dag_id)
        return bad_record(c, "run", r->run_id, "no run id or DAG id", e);
    if ((unsigned)r->state >= RUN_STATE_COUNT || (unsigned)r->type >= RUN_TYPE_COUNT)
        return bad_record(c, "run", r->run_id, "invalid state or type", e);
    sqlite3_stmt *st = stmt_get(c, ST_PUT_RUN, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, r->run_id);
    bind_text(st, 2, r->dag_id);
    bind_text(st, 3, run_state_name(r->state));
    bind_text(st, 4, run_type_name(r->type));
    sqlite3_bind_int64(st, 5, r->logical_at_ms);
    bind_time(st, 6, r->queued_at_ms);
    bind_time(st, 7, r->started_at_ms);
    bind_time(st, 8, r->ended_at_ms);
    bind_text(st, 9, r->conf);
    bind_text(st, 10, r->dag_hash);
    bind_text(st, 11, r->dag_path);
    bind_text(st, 12, r->owner);
    return stmt_exec(c, st, "write a run", e);
}

static int conn_put_ti(void *db, const struct ti_rec *t, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!t->run_id || !t->task_id)
        return bad_record(c, "task instance", t->task_id, "no run id or task id", e);
    if ((unsigned)t->state >= TI_STATE_COUNT)
        return bad_record(c, "task instance", t->task_id, "invalid state", e);
    sqlite3_stmt *st = stmt_get(c, ST_PUT_TI, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, t->run_id);
    bind_text(st, 2, t->task_id);
    bind_text(st, 3, t->task ? t->task : t->task_id);
    sqlite3_bind_int(st, 4, t->map_index);
    bind_text(st, 5, ti_state_name(t->state));
    sqlite3_bind_int(st, 6, t->try_number);
    sqlite3_bind_int(st, 7, t->max_tries);
    sqlite3_bind_int(st, 8, t->exit_code);
    if (t->output)
        sqlite3_bind_blob64(st, 9, t->output, t->output_len, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 9);
    bind_text(st, 10, t->message);
    sqlite3_bind_int(st, 11, t->priority);
    bind_text(st, 12, t->pool);
    bind_time(st, 13, t->scheduled_at_ms);
    bind_time(st, 14, t->queued_at_ms);
    bind_time(st, 15, t->started_at_ms);
    bind_time(st, 16, t->ended_at_ms);
    return stmt_exec(c, st, "write a task instance", e);
}

static int conn_put_try(void *db, const struct try_rec *t, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!t->run_id || !t->task_id)
        return bad_record(c, "try", t->task_id, "no run id or task id", e);
    if ((unsigned)t->state >= TI_STATE_COUNT)
        return bad_record(c, "try", t->task_id, "invalid state", e);
    sqlite3_stmt *st = stmt_get(c, ST_PUT_TRY, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, t->run_id);
    bind_text(st, 2, t->task_id);
    sqlite3_bind_int(st, 3, t->try_number);
    bind_text(st, 4, ti_state_name(t->state));
    sqlite3_bind_int(st, 5, t->exit_code);
    sqlite3_bind_int(st, 6, t->term_signal);
    sqlite3_bind_int(st, 7, t->timed_out ? 1 : 0);
    bind_time(st, 8, t->queued_at_ms);
    bind_time(st, 9, t->started_at_ms);
    bind_time(st, 10, t->ended_at_ms);
    bind_text(st, 11, t->hostname);
    sqlite3_bind_int(st, 12, t->pid);
    bind_text(st, 13, t->worker);
    return stmt_exec(c, st, "write a try", e);
}

static int conn_put_dag_version(void *db, const char *hash, const char *dag_id, const char *source,
                                size_t len, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!hash || !dag_id)
        return bad_record(c, "DAG version", hash, "no hash or DAG id", e);
    sqlite3_stmt *st = stmt_get(c, ST_PUT_DV, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, hash);
    bind_text(st, 2, dag_id);
    sqlite3_bind_blob64(st, 3, source ? source : "", source ? len : 0, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, when_now_ms());
    return stmt_exec(c, st, "write a DAG version", e);
}

/* ---- reads ---- */

/* Reads the current row of st into *r: 0, or ERR_DB for a state this binary does not know. */
static int read_run(struct sqlite_conn *c, sqlite3_stmt *st, struct run_rec *r, struct err *e)
{
    memset(r, 0, sizeof(*r));
    r->run_id = col_text(st, 0);
    r->dag_id = col_text(st, 1);
    const char *state = (const char *)sqlite3_column_text(st, 2);
    const char *type = (const char *)sqlite3_column_text(st, 3);
    r->logical_at_ms = sqlite3_column_int64(st, 4);
    r->queued_at_ms = col_time(st, 5);
    r->started_at_ms = col_time(st, 6);
    r->ended_at_ms = col_time(st, 7);
    r->conf = col_text(st, 8);
    r->dag_hash = col_text(st, 9);
    r->dag_path = col_text(st, 10);
    r->owner = col_text(st, 11);
    if (!state || run_state_parse(state, &r->state) < 0 || !type ||
        run_type_parse(type, &r->type) < 0) {
        (void)err_set(e, ERR_DB, "run '%s' in database '%s' has an unknown state or type",
                      r->run_id ? r->run_id : "?", c->path);
        run_rec_release(r);
        return ERR_DB;
    }
    return 0;
}

static int read_ti(struct sqlite_conn *c, sqlite3_stmt *st, struct ti_rec *t, struct err *e)
{
    memset(t, 0, sizeof(*t));
    t->run_id = col_text(st, 0);
    t->task_id = col_text(st, 1);
    t->task = col_text(st, 2);
    t->map_index = sqlite3_column_int(st, 3);
    const char *state = (const char *)sqlite3_column_text(st, 4);
    t->try_number = sqlite3_column_int(st, 5);
    t->max_tries = sqlite3_column_int(st, 6);
    t->exit_code = sqlite3_column_int(st, 7);
    t->output = col_blob(st, 8, &t->output_len);
    t->message = col_text(st, 9);
    t->priority = sqlite3_column_int(st, 10);
    t->pool = col_text(st, 11);
    t->scheduled_at_ms = col_time(st, 12);
    t->queued_at_ms = col_time(st, 13);
    t->started_at_ms = col_time(st, 14);
    t->ended_at_ms = col_time(st, 15);
    t->worker = col_text(st, 16);
    if (!state || ti_state_parse(state, &t->state) < 0) {
        (void)err_set(e, ERR_DB, "task instance '%s' in database '%s' has an unknown state",
                      t->task_id ? t->task_id : "?", c->path);
        ti_rec_release(t);
        return ERR_DB;
    }
    return 0;
}

static int read_try(struct sqlite_conn *c, sqlite3_stmt *st, struct try_rec *t, struct err *e)
{
    memset(t, 0, sizeof(*t));
    t->run_id = col_text(st, 0);
    t->task_id = col_text(st, 1);
    t->try_number = sqlite3_column_int(st, 2);
    const char *state = (const char *)sqlite3_column_text(st, 3);
    t->exit_code = sqlite3_column_int(st, 4);
    t->term_signal = sqlite3_column_int(st, 5);
    t->timed_out = sqlite3_column_int(st, 6) != 0;
    t->queued_at_ms = col_time(st, 7);
    t->started_at_ms = col_time(st, 8);
    t->ended_at_ms = col_time(st, 9);
    t->hostname = col_text(st, 10);
    t->pid = sqlite3_column_int(st, 11);
    t->worker = col_text(st, 12);
    if (!state || ti_state_parse(state, &t->state) < 0) {
        (void)err_set(e, ERR_DB, "try %d of '%s' in database '%s' has an unknown state",
                      t->try_number, t->task_id ? t->task_id : "?", c->path);
        try_rec_release(t);
        return ERR_DB;
    }
    return 0;
}

/* Steps st for one row: the row's reader result, -ENOENT, or ERR_DB (filling the struct err *e
 * of the calling function). */
#define GET_ONE(c, st, reader, out, what)                                                          \
    do {                                                                                           \
        int rc_ = sqlite3_step(st);                                                                \
        int r_;                                                                                    \
        if (rc_ == SQLITE_ROW)                                                                     \
            r_ = reader((c), (st), (out), e);                                                      \
        else if (rc_ == SQLITE_DONE)                                                               \
            r_ = -ENOENT;                                                                          \
        else                                                                                       \
            r_ = conn_fail((c), e, "cannot read %s from database '%s'", (what), (c)->path);        \
        stmt_done(st);                                                                             \
        return r_;                                                                                 \
    } while (0)

static int conn_get_run(void *db, const char *run_id, struct run_rec *out, struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_GET_RUN, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, run_id);
    GET_ONE(c, st, read_run, out, "a run");
}

static int conn_get_ti(void *db, const char *run_id, const char *task_id, struct ti_rec *out,
                       struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_GET_TI, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, run_id);
    bind_text(st, 2, task_id);
    GET_ONE(c, st, read_ti, out, "a task instance");
}

/* Reads every row of st into a growing array of records of size elem; a failure fills the
 * struct err *e of the calling function. */
#define LIST_ALL(c, st, T, reader, release, outp, np, what)                                        \
    do {                                                                                           \
        T *v_ = NULL;                                                                              \
        size_t n_ = 0, cap_ = 0;                                                                   \
        int rc_, r_ = 0;                                                                           \
        while ((rc_ = sqlite3_step(st)) == SQLITE_ROW) {                                           \
            xgrow((void **)&v_, &cap_, n_ + 1, sizeof(T));                                         \
            if ((r_ = reader((c), (st), &v_[n_], e)) < 0)                                          \
                break;                                                                             \
            n_++;                                                                                  \
        }                                                                                          \
        if (r_ == 0 && rc_ != SQLITE_DONE)                                                         \
            r_ = conn_fail((c), e, "cannot read %s from database '%s'", (what), (c)->path);        \
        stmt_done(st);                                                                             \
        if (r_ < 0) {                                                                              \
            for (size_t i_ = 0; i_ < n_; i_++)                                                     \
                release(&v_[i_]);                                                                  \
            free(v_);                                                                              \
            return r_;                                                                             \
        }                                                                                          \
        *(outp) = v_;                                                                              \
        *(np) = n_;                                                                                \
        return 0;                                                                                  \
    } while (0)

/* Binds f as RUNS_FILTER's ?1 to ?4; states is the caller's buffer for the states' text. */
static void bind_run_filter(sqlite3_stmt *st, const struct run_filter *f,
                            char states[RUN_FILTER_STATES_MAX])
{
    bind_text(st, 1, f->dag_id);
    bind_text(st, 2, f->states ? run_filter_states(f, states, RUN_FILTER_STATES_MAX) : NULL);
    sqlite3_bind_int64(st, 3, f->has_from ? f->from_ms : INT64_MIN);
    sqlite3_bind_int64(st, 4, f->has_to ? f->to_ms : INT64_MAX);
}

static int conn_list_runs(void *db, const struct run_filter *f, int64_t limit, int64_t offset,
                          struct run_rec **out, size_t *n, size_t *total, struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    const char *dag_id = f->dag_id;
    /* a DAG's runs (its pages) keep the statements that use its index */
    bool filtered = f->states || f->has_from || f->has_to;
    char states[RUN_FILTER_STATES_MAX];
    if (total) {
        sqlite3_stmt *ct =
            stmt_get(c,
                     filtered ? (dag_id ? ST_COUNT_RUNS_FILTER_DAG : ST_COUNT_RUNS_FILTER)
                     : dag_id ? ST_COUNT_RUNS_DAG
                              : ST_COUNT_RUNS,
                     e);
        if (!ct)
            return ERR_DB;
        if (filtered)
            bind_run_filter(ct, f, states);
        else if (dag_id)
            bind_text(ct, 1, dag_id);
        int rc = sqlite3_step(ct);
        *total = rc == SQLITE_ROW ? (size_t)sqlite3_column_int64(ct, 0) : 0;
        int r =
            rc == SQLITE_ROW ? 0 : conn_fail(c, e, "cannot count runs in database '%s'", c->path);
        stmt_done(ct);
        if (r < 0)
            return r;
    }
    sqlite3_stmt *st = stmt_get(c,
                                filtered ? (dag_id ? ST_LIST_RUNS_FILTER_DAG : ST_LIST_RUNS_FILTER)
                                : dag_id ? ST_LIST_RUNS_DAG
                                         : ST_LIST_RUNS,
                                e);
    if (!st)
        return ERR_DB;
    int i = 1;
    if (filtered) {
        bind_run_filter(st, f, states);
        i = 5;
    } else if (dag_id) {
        bind_text(st, i++, dag_id);
    }
    sqlite3_bind_int64(st, i++, limit < 0 ? -1 : limit);
    sqlite3_bind_int64(st, i, offset < 0 ? 0 : offset);
    LIST_ALL(c, st, struct run_rec, read_run, run_rec_release, out, n, "runs");
}

static int conn_list_tis(void *db, const char *run_id, struct ti_rec **out, size_t *n,
                         struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_TIS, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, run_id);
    LIST_ALL(c, st, struct ti_rec, read_ti, ti_rec_release, out, n, "task instances");
}

static int conn_list_tries(void *db, const char *run_id, const char *task_id, struct try_rec **out,
                           size_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_TRIES, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, run_id);
    bind_text(st, 2, task_id);
    LIST_ALL(c, st, struct try_rec, read_try, try_rec_release, out, n, "tries");
}

static int conn_get_dag_version(void *db, const char *hash, char **source, size_t *len,
                                struct err *e)
{
    struct sqlite_conn *c = db;
    *source = NULL;
    *len = 0;
    sqlite3_stmt *st = stmt_get(c, ST_GET_DV, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, hash);
    int rc = sqlite3_step(st);
    int r = 0;
    if (rc == SQLITE_ROW)
        *source = col_blob(st, 0, len);
    else if (rc == SQLITE_DONE)
        r = -ENOENT;
    else
        r = conn_fail(c, e, "cannot read a DAG version from database '%s'", c->path);
    stmt_done(st);
    return r;
}

/* ---- the scheduler's tables ---- */

/* Opens a transaction unless the caller has one: *own tells txn_end whether to finish it. */
static int txn_start(struct sqlite_conn *c, bool *own, struct err *e)
{
    *own = sqlite3_get_autocommit(c->db) != 0;
    return *own ? conn_begin(c, e) : 0;
}

/* Ends a transaction txn_start opened (store__txn_end); a joined one is left to its owner. */
static int txn_end(struct sqlite_conn *c, bool own, int r, struct err *e)
{
    return store__txn_end(&store__sqlite_backend, c, own, r, e);
}

static int read_dag(struct sqlite_conn *c, sqlite3_stmt *st, struct dag_rec *d, struct err *e)
{
    (void)c;
    memset(d, 0, sizeof(*d));
    d->dag_id = col_text(st, 0);
    d->path = col_text(st, 1);
    d->hash = col_text(st, 2);
    d->schedule = col_text(st, 3);
    d->description = col_text(st, 4);
    d->paused = sqlite3_column_int(st, 5) != 0;
    d->updated_at_ms = col_time(st, 6);
    return 0;
}

static int read_import_error(struct sqlite_conn *c, sqlite3_stmt *st, struct import_error_rec *ie,
                             struct err *e)
{
    (void)c;
    memset(ie, 0, sizeof(*ie));
    ie->path = col_text(st, 0);
    ie->line = sqlite3_column_int(st, 1);
    ie->col = sqlite3_column_int(st, 2);
    ie->message = col_text(st, 3);
    ie->at_ms = col_time(st, 4);
    return 0;
}

static int read_pool(struct sqlite_conn *c, sqlite3_stmt *st, struct pool_rec *p, struct err *e)
{
    (void)c;
    memset(p, 0, sizeof(*p));
    p->name = col_text(st, 0);
    p->slots = sqlite3_column_int(st, 1);
    p->updated_at_ms = col_time(st, 2);
    return 0;
}

static int read_request(struct sqlite_conn *c, sqlite3_stmt *st, struct run_request *q,
                        struct err *e)
{
    (void)c;
    memset(q, 0, sizeof(*q));
    q->run_id = col_text(st, 0);
    q->kind = col_text(st, 1);
    q->at_ms = col_time(st, 2);
    return 0;
}

static int conn_put_dag(void *db, const struct dag_rec *d, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!d->dag_id)
        return bad_record(c, "DAG", d->dag_id, "no DAG id", e);
    sqlite3_stmt *st = stmt_get(c, ST_PUT_DAG, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, d->dag_id);
    bind_text(st, 2, d->path);
    bind_text(st, 3, d->hash);
    bind_text(st, 4, d->schedule);
    bind_text(st, 5, d->description);
    sqlite3_bind_int64(st, 6, store__now_or(d->updated_at_ms));
    return stmt_exec(c, st, "write a DAG", e);
}

static int conn_set_paused(void *db, const char *dag_id, bool paused, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!dag_id)
        return bad_record(c, "DAG", dag_id, "no DAG id", e);
    sqlite3_stmt *st = stmt_get(c, ST_SET_PAUSED, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, dag_id);
    sqlite3_bind_int(st, 2, paused ? 1 : 0);
    sqlite3_bind_int64(st, 3, when_now_ms());
    return stmt_exec(c, st, "pause or unpause a DAG", e);
}

static int conn_get_dag(void *db, const char *dag_id, struct dag_rec *out, struct err *e)
{
    struct sqlite_conn *c = db;
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = stmt_get(c, ST_GET_DAG, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, dag_id);
    GET_ONE(c, st, read_dag, out, "a DAG");
}

static int conn_list_dags(void *db, struct dag_rec **out, size_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_DAGS, e);
    if (!st)
        return ERR_DB;
    LIST_ALL(c, st, struct dag_rec, read_dag, dag_rec_release, out, n, "DAGs");
}

static int conn_set_import_errors(void *db, const char *path, const struct import_error_rec *v,
                                  size_t n, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!path)
        return bad_record(c, "import errors", path, "no path", e);
    for (size_t i = 0; i < n; i++)
        if (!v[i].message)
            return bad_record(c, "import errors of", path, "an error without a message", e);
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = stmt_get(c, ST_DEL_IMPORT_ERRORS, e);
    if (!st) {
        r = ERR_DB;
        goto out;
    }
    bind_text(st, 1, path);
    if ((r = stmt_exec(c, st, "clear import errors", e)) < 0)
        goto out;
    for (size_t i = 0; i < n; i++) {
        if (!(st = stmt_get(c, ST_PUT_IMPORT_ERROR, e))) {
            r = ERR_DB;
            goto out;
        }
        bind_text(st, 1, path);
        sqlite3_bind_int(st, 2, v[i].line);
        sqlite3_bind_int(st, 3, v[i].col);
        bind_text(st, 4, v[i].message);
        sqlite3_bind_int64(st, 5, store__now_or(v[i].at_ms));
        if ((r = stmt_exec(c, st, "write an import error", e)) < 0)
            goto out;
    }
out:
    return txn_end(c, own, r, e);
}

static int conn_list_import_errors(void *db, struct import_error_rec **out, size_t *n,
                                   struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_IMPORT_ERRORS, e);
    if (!st)
        return ERR_DB;
    LIST_ALL(c, st, struct import_error_rec, read_import_error, import_error_rec_release, out, n,
             "import errors");
}

static int conn_set_pool(void *db, const char *name, int slots, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!name || !*name)
        return bad_record(c, "pool", name, "no name", e);
    if (slots < 0)
        return bad_record(c, "pool", name, "negative slots", e);
    sqlite3_stmt *st = stmt_get(c, ST_SET_POOL, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, name);
    sqlite3_bind_int(st, 2, slots);
    sqlite3_bind_int64(st, 3, when_now_ms());
    return stmt_exec(c, st, "write a pool", e);
}

static int conn_list_pools(void *db, struct pool_rec **out, size_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_POOLS, e);
    if (!st)
        return ERR_DB;
    LIST_ALL(c, st, struct pool_rec, read_pool, pool_rec_release, out, n, "pools");
}

/* Runs a one-row, one-integer query: 0 with *v (*null when the value is NULL), or ERR_DB. */
static int scalar_int(struct sqlite_conn *c, sqlite3_stmt *st, int64_t *v, bool *null,
                      const char *what, struct err *e)
{
    int rc = sqlite3_step(st);
    int r = 0;
    *v = 0;
    *null = true;
    if (rc == SQLITE_ROW) {
        *null = sqlite3_column_type(st, 0) == SQLITE_NULL;
        *v = sqlite3_column_int64(st, 0);
    } else if (rc != SQLITE_DONE) {
        r = conn_fail(c, e, "cannot read %s from database '%s'", what, c->path);
    }
    stmt_done(st);
    return r;
}

static int conn_pool_usage(void *db, const char *pool, struct pool_usage *u, struct err *e)
{
    struct sqlite_conn *c = db;
    *u = (struct pool_usage){0};
    sqlite3_stmt *st = stmt_get(c, ST_POOL_USAGE, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, pool ? pool : "default");
    int r = 0;
    if (sqlite3_step(st) == SQLITE_ROW) {
        u->scheduled = sqlite3_column_int(st, 0);
        u->queued = sqlite3_column_int(st, 1);
        u->running = sqlite3_column_int(st, 2);
    } else {
        r = conn_fail(c, e, "cannot read a pool's usage from database '%s'", c->path);
    }
    stmt_done(st);
    return r;
}

static int conn_put_request(void *db, const char *run_id, const char *kind, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!run_id || !kind)
        return bad_record(c, "request", run_id, "no run id or kind", e);
    sqlite3_stmt *st = stmt_get(c, ST_PUT_REQUEST, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, run_id);
    bind_text(st, 2, kind);
    sqlite3_bind_int64(st, 3, when_now_ms());
    return stmt_exec(c, st, "write a request", e);
}

/* Reads every row of st into *out; like LIST_ALL but returns instead of leaving the caller. */
static int list_requests(struct sqlite_conn *c, sqlite3_stmt *st, struct run_request **out,
                         size_t *n, struct err *e)
{
    LIST_ALL(c, st, struct run_request, read_request, run_request_release, out, n, "requests");
}

static int conn_take_requests(void *db, int64_t sched_id, struct run_request **out, size_t *n,
                              struct err *e)
{
    (void)sched_id; /* one scheduler per SQLite store: every request is its own */
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    /* A scheduler asks every few seconds: when there is nothing, answer from a read alone,
     * so an idle home is never written to (no write lock, no WAL frame, no fsync). */
    sqlite3_stmt *st = stmt_get(c, ST_LIST_REQUESTS, e);
    if (!st)
        return ERR_DB;
    int r = list_requests(c, st, out, n, e);
    if (r < 0 || *n == 0)
        return r;
    bool lasting = true; /* only requests that stay until done (clears): nothing to delete */
    for (size_t i = 0; i < *n && lasting; i++)
        lasting =
            strncmp((*out)[i].kind, STORE_REQUEST_LASTING, sizeof STORE_REQUEST_LASTING - 1) == 0;
    if (lasting)
        return 0;
    store_free_requests(*out, *n);
    *out = NULL;
    *n = 0;
    bool own;
    r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    st = stmt_get(c, ST_LIST_REQUESTS, e);
    if (!st) {
        r = ERR_DB;
        goto out;
    }
    if ((r = list_requests(c, st, out, n, e)) < 0)
        goto out;
    if (!(st = stmt_get(c, ST_DEL_REQUESTS, e)))
        r = ERR_DB;
    else
        r = stmt_exec(c, st, "delete requests", e);
out:
    r = txn_end(c, own, r, e);
    if (r < 0) {
        store_free_requests(*out, *n);
        *out = NULL;
        *n = 0;
    }
    return r;
}

static int conn_delete_request(void *db, const char *run_id, const char *kind, struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_DEL_REQUEST, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, run_id);
    bind_text(st, 2, kind);
    int r = stmt_exec(c, st, "delete a request", e);
    return r < 0 ? r : sqlite3_changes(c->db) > 0;
}

static int conn_list_unfinished_runs(void *db, struct run_rec **out, size_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_UNFINISHED, e);
    if (!st)
        return ERR_DB;
    LIST_ALL(c, st, struct run_rec, read_run, run_rec_release, out, n, "unfinished runs");
}

static int conn_last_logical(void *db, const char *dag_id, enum run_type type, int64_t *at_ms,
                             struct err *e)
{
    struct sqlite_conn *c = db;
    *at_ms = 0;
    if ((unsigned)type >= RUN_TYPE_COUNT)
        return bad_record(c, "query for DAG", dag_id, "invalid run type", e);
    sqlite3_stmt *st = stmt_get(c, ST_LAST_LOGICAL, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, dag_id);
    bind_text(st, 2, run_type_name(type));
    bool null;
    int r = scalar_int(c, st, at_ms, &null, "the last logical date", e);
    if (r == 0 && null)
        r = -ENOENT;
    return r;
}

static int conn_has_run_at(void *db, const char *dag_id, int64_t logical_at_ms, bool *exists,
                           struct err *e)
{
    struct sqlite_conn *c = db;
    *exists = false;
    sqlite3_stmt *st = stmt_get(c, ST_HAS_RUN_AT, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, dag_id);
    sqlite3_bind_int64(st, 2, logical_at_ms);
    int64_t v;
    bool null;
    int r = scalar_int(c, st, &v, &null, "runs", e);
    *exists = r == 0 && !null;
    return r;
}

/* Whether run_id is taken: 1, 0, or ERR_DB. */
static int run_exists(struct sqlite_conn *c, const char *run_id, struct err *e)
{
    sqlite3_stmt *st = stmt_get(c, ST_RUN_EXISTS, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, run_id);
    int64_t v;
    bool null;
    int r = scalar_int(c, st, &v, &null, "a run", e);
    return r < 0 ? r : !null;
}

static int conn_claim_run(void *db, const char *prefix, int64_t at_ms, const struct run_rec *rec,
                          char *id, size_t idsz, struct err *e)
{
    struct sqlite_conn *c = db;
    if (idsz)
        id[0] = 0;
    if (!prefix || !rec || !rec->dag_id)
        return bad_record(c, "run", prefix, "no prefix or DAG id", e);
    if (idsz < strlen(prefix) + 25)
        return bad_record(c, "run", prefix, "no room for the run id", e);
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    if (rec->type == RUN_SCHEDULED) { /* an interval exists once (runs_scheduled_once) */
        sqlite3_stmt *st = stmt_get(c, ST_SCHEDULED_AT, e);
        int64_t v;
        bool null = true;
        if (!st)
            r = ERR_DB;
        else {
            bind_text(st, 1, rec->dag_id);
            sqlite3_bind_int64(st, 2, rec->logical_at_ms);
            r = scalar_int(c, st, &v, &null, "runs", e);
        }
        if (r == 0 && !null)
            r = err_set(e, -EALREADY, "DAG '%s' has a scheduled run at this logical date already",
                        rec->dag_id);
        if (r < 0) {
            r = txn_end(c, own, r, e);
            if (idsz)
                id[0] = 0;
            return r;
        }
    }
    char iso[32];
    r = -EEXIST;
    for (int n = 0; n < 1000 && r == -EEXIST; n++) {
        when_format_iso(at_ms + n, iso, sizeof(iso));
        snprintf(id, idsz, "%s%s", prefix, iso);
        int taken = run_exists(c, id, e);
        if (taken < 0)
            r = taken;
        else if (!taken) {
            struct run_rec claim = *rec;
            claim.run_id = id;
            r = conn_put_run(c, &claim, e);
            /* A run claimed here is written outside the group-commit writer, which records
             * the events of everything else: its event goes in the same transaction, so the
             * event stream shows a run held queued (a paused DAG, max_active_runs) at once. */
            if (r == 0 &&
                events_sqlite_put(c, EVENT_RUN, rec->dag_id, id, NULL, run_state_name(rec->state),
                                  0, store__now_or(rec->queued_at_ms), NULL) < 0)
                r = conn_fail(c, e, "cannot record the event of run '%s' in database '%s'", id,
                              c->path);
        }
    }
    if (r == -EEXIST) {
        (void)err_set(e, ERR_DB, "cannot find a free run id after '%s' in database '%s'", id,
                      c->path);
    }
    r = txn_end(c, own, r, e);
    if (r < 0 && idsz)
        id[0] = 0;
    return r;
}

static int conn_delete_ti(void *db, const char *run_id, const char *task_id, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!run_id || !task_id)
        return bad_record(c, "task instance", task_id, "no run id or task id", e);
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    static const enum sqlite_stmt ids[] = {ST_DEL_TRIES, ST_DEL_TI};
    for (size_t i = 0; i < 2 && r == 0; i++) {
        sqlite3_stmt *st = stmt_get(c, ids[i], e);
        if (!st) {
            r = ERR_DB;
            break;
        }
        bind_text(st, 1, run_id);
        bind_text(st, 2, task_id);
        r = stmt_exec(c, st, "delete a task instance", e);
    }
    return txn_end(c, own, r, e);
}

/* ---- users ---- */

static int read_user(struct sqlite_conn *c, sqlite3_stmt *st, struct user_rec *u, struct err *e)
{
    memset(u, 0, sizeof(*u));
    u->name = col_text(st, 0);
    u->role = col_text(st, 1);
    u->password_hash = col_text(st, 2);
    u->created_at_ms = col_time(st, 3);
    u->revoked_gen = sqlite3_column_int64(st, 4);
    if (!u->name || !u->role || !u->password_hash) {
        (void)err_set(e, ERR_DB, "a user in database '%s' lacks a name, role or hash", c->path);
        user_rec_release(u);
        return ERR_DB;
    }
    return 0;
}

/* Runs ST_PUT_USER or ST_ADD_USER with the columns of u. */
static int user_write(struct sqlite_conn *c, enum sqlite_stmt id, const struct user_rec *u,
                      const char *what, struct err *e)
{
    if (!u || !u->name || !*u->name || !u->role || !u->password_hash)
        return bad_record(c, "user", u ? u->name : NULL, "no name, role or password hash", e);
    sqlite3_stmt *st = stmt_get(c, id, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, u->name);
    bind_text(st, 2, u->role);
    bind_text(st, 3, u->password_hash);
    sqlite3_bind_int64(st, 4, store__now_or(u->created_at_ms));
    return stmt_exec(c, st, what, e);
}

static int conn_put_user(void *db, const struct user_rec *u, struct err *e)
{
    return user_write(db, ST_PUT_USER, u, "write a user", e);
}

static int conn_add_user(void *db, const struct user_rec *u, struct err *e)
{
    struct sqlite_conn *c = db;
    int r = user_write(c, ST_ADD_USER, u, "add a user", e);
    return r < 0 ? r : sqlite3_changes(c->db) > 0 ? 0 : -EEXIST;
}

static int conn_get_user(void *db, const char *name, struct user_rec *out, struct err *e)
{
    struct sqlite_conn *c = db;
    memset(out, 0, sizeof(*out));
    sqlite3_stmt *st = stmt_get(c, ST_GET_USER, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, name);
    GET_ONE(c, st, read_user, out, "a user");
}

static int conn_list_users(void *db, struct user_rec **out, size_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_USERS, e);
    if (!st)
        return ERR_DB;
    LIST_ALL(c, st, struct user_rec, read_user, user_rec_release, out, n, "users");
}

static int conn_delete_user(void *db, const char *name, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!name)
        return -ENOENT;
    sqlite3_stmt *st = stmt_get(c, ST_DEL_USER, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, name);
    int r = stmt_exec(c, st, "delete a user", e);
    if (r == 0 && sqlite3_changes(c->db) == 0)
        r = -ENOENT;
    return r;
}

static int conn_count_users(void *db, const char *role, int64_t *count, struct err *e)
{
    struct sqlite_conn *c = db;
    *count = 0;
    sqlite3_stmt *st = stmt_get(c, ST_COUNT_USERS, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, role);
    bool null;
    return scalar_int(c, st, count, &null, "the number of users", e);
}

/* ---- revoked tokens ---- */

/* Raises the revocation generation, then runs st (bound by the caller), whose row takes the new
 * generation; one transaction (the caller's, or one of its own). */
static int revocation_write(struct sqlite_conn *c, sqlite3_stmt *st, const char *what,
                            struct err *e)
{
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0) {
        stmt_done(st);
        return r;
    }
    r = conn_step_simple(c, ST_BUMP_REVOCATION_GEN, "raise the revocation generation", e);
    if (r == 0)
        r = stmt_exec(c, st, what, e);
    else
        stmt_done(st);
    return txn_end(c, own, r, e);
}

static int conn_revoke_token(void *db, const char *jti, const char *name, int64_t exp_at_ms,
                             struct err *e)
{
    struct sqlite_conn *c = db;
    if (!jti || !*jti || !name)
        return bad_record(c, "revoked token", jti, "no jti or user", e);
    sqlite3_stmt *st = stmt_get(c, ST_REVOKE_TOKEN, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, jti);
    bind_text(st, 2, name);
    sqlite3_bind_int64(st, 3, exp_at_ms);
    return revocation_write(c, st, "revoke a token", e);
}

static int conn_revoke_user(void *db, const char *name, int64_t before_s, struct err *e)
{
    struct sqlite_conn *c = db;
    if (!name || !*name)
        return bad_record(c, "revoked user", name, "no name", e);
    sqlite3_stmt *st = stmt_get(c, ST_REVOKE_USER, e);
    if (!st)
        return ERR_DB;
    bind_text(st, 1, name);
    sqlite3_bind_int64(st, 2, before_s);
    return revocation_write(c, st, "revoke a user's tokens", e);
}

static int conn_revocation_gen(void *db, int64_t *gen, struct err *e)
{
    struct sqlite_conn *c = db;
    *gen = 0;
    sqlite3_stmt *st = stmt_get(c, ST_REVOCATION_GEN, e);
    if (!st)
        return ERR_DB;
    bool null;
    return scalar_int(c, st, gen, &null, "the revocation generation", e);
}

static int read_revocation(struct sqlite_conn *c, sqlite3_stmt *st, struct revocation_rec *r,
                           struct err *e)
{
    memset(r, 0, sizeof(*r));
    r->jti = col_text(st, 0);
    r->name = col_text(st, 1);
    r->at = sqlite3_column_int64(st, 2);
    r->gen = sqlite3_column_int64(st, 3);
    if (!r->name) {
        (void)err_set(e, ERR_DB, "a revocation in database '%s' lacks a user", c->path);
        revocation_rec_release(r);
        return ERR_DB;
    }
    return 0;
}

static int conn_list_revocations(void *db, int64_t after_gen, struct revocation_rec **out,
                                 size_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    *out = NULL;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_REVOCATIONS, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, after_gen);
    LIST_ALL(c, st, struct revocation_rec, read_revocation, revocation_rec_release, out, n,
             "revocations");
}

static int conn_purge_revocations(void *db, int64_t before_ms, int64_t *purged, struct err *e)
{
    struct sqlite_conn *c = db;
    if (purged)
        *purged = 0;
    sqlite3_stmt *st = stmt_get(c, ST_PURGE_REVOKED_TOKENS, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, before_ms);
    int r = stmt_exec(c, st, "purge expired revoked tokens", e);
    if (r == 0 && purged)
        *purged = sqlite3_changes(c->db);
    return r;
}

/* ---- the registry and run ownership (migration 0006) ---- */

static int read_node(struct sqlite_conn *c, sqlite3_stmt *st, struct node_rec *n, struct err *e)
{
    (void)c;
    (void)e;
    memset(n, 0, sizeof(*n));
    n->id = sqlite3_column_int64(st, 0);
    n->role = col_text(st, 1);
    n->name = col_text(st, 2);
    n->hostname = col_text(st, 3);
    n->pid = sqlite3_column_int(st, 4);
    n->queues = col_text(st, 5);
    n->slots = sqlite3_column_int(st, 6);
    n->state = col_text(st, 7);
    n->started_at_ms = col_time(st, 8);
    n->heartbeat_at_ms = col_time(st, 9);
    n->running = sqlite3_column_int64(st, 10);
    return 0;
}

static int conn_node_heartbeat(void *db, int64_t id, bool *alive, struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_NODE_HEARTBEAT, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int64(st, 2, when_now_ms());
    int r = stmt_exec(c, st, "record a heartbeat", e);
    *alive = r == 0 && sqlite3_changes(c->db) > 0;
    return r;
}

/* Releases the runs scheduler id owned (in the caller's transaction). */
static int release_runs(struct sqlite_conn *c, int64_t id, struct err *e)
{
    sqlite3_stmt *st = stmt_get(c, ST_NODE_RELEASE, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    return stmt_exec(c, st, "release the runs of a scheduler", e);
}

/* Declares dead the rows st returns (bound by the caller) and releases their runs; *n (may be
 * NULL) gets how many. In the caller's transaction. */
static int kill_rows(struct sqlite_conn *c, sqlite3_stmt *st, size_t *n, struct err *e)
{
    VEC(int64_t) dead = {0};
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        VEC_PUSH(&dead, sqlite3_column_int64(st, 0));
    if (rc != SQLITE_DONE)
        r = conn_fail(c, e, "cannot declare schedulers dead in database '%s'", c->path);
    stmt_done(st);
    for (size_t i = 0; i < dead.n && r == 0; i++)
        r = release_runs(c, dead.v[i], e);
    if (r == 0 && n)
        *n = dead.n;
    VEC_FREE(&dead);
    return r;
}

static int conn_node_register(void *db, const struct node_rec *n, int64_t *id, struct err *e)
{
    struct sqlite_conn *c = db;
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = NULL;
    if (n->home) {
        if (!(st = stmt_get(c, ST_NODE_REPLACE, e)))
            return txn_end(c, own, ERR_DB, e);
        bind_text(st, 1, n->role);
        bind_text(st, 2, n->hostname);
        bind_text(st, 3, n->home);
        if ((r = kill_rows(c, st, NULL, e)) < 0)
            return txn_end(c, own, r, e);
    }
    if (!(st = stmt_get(c, ST_NODE_REGISTER, e)))
        return txn_end(c, own, ERR_DB, e);
    bind_text(st, 1, n->role);
    bind_text(st, 2, n->name);
    bind_text(st, 3, n->hostname);
    sqlite3_bind_int(st, 4, n->pid);
    bind_text(st, 5, n->queues ? n->queues : "default");
    sqlite3_bind_int(st, 6, n->slots);
    sqlite3_bind_int64(st, 7, when_now_ms());
    bind_text(st, 8, n->home);
    r = stmt_exec(c, st, "register a scheduler or worker", e);
    if (r == 0)
        *id = sqlite3_last_insert_rowid(c->db);
    return txn_end(c, own, r, e);
}

static int conn_node_stop(void *db, int64_t id, struct err *e)
{
    struct sqlite_conn *c = db;
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = stmt_get(c, ST_NODE_STOP, e);
    if (!st)
        r = ERR_DB;
    if (r == 0) {
        sqlite3_bind_int64(st, 1, id);
        r = stmt_exec(c, st, "record a stop", e);
    }
    if (r == 0)
        r = release_runs(c, id, e);
    return txn_end(c, own, r, e);
}

static int conn_list_nodes(void *db, struct node_rec **out, size_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_NODES, e);
    if (!st)
        return ERR_DB;
    LIST_ALL(c, st, struct node_rec, read_node, node_rec_release, out, n, "schedulers and workers");
}

static int conn_reap_nodes(void *db, int64_t dead_after_ms, size_t *reaped, struct err *e)
{
    struct sqlite_conn *c = db;
    *reaped = 0;
    bool own;
    int r = txn_start(c, &own, e);
    if (r < 0)
        return r;
    sqlite3_stmt *st = stmt_get(c, ST_REAP_NODES, e);
    if (!st)
        return txn_end(c, own, ERR_DB, e);
    sqlite3_bind_int64(st, 1, when_now_ms() - dead_after_ms);
    return txn_end(c, own, kill_rows(c, st, reaped, e), e);
}

static int conn_live_schedulers(void *db, int64_t fresh_ms, const char *host, const char *home,
                                int64_t *n, struct err *e)
{
    struct sqlite_conn *c = db;
    *n = 0;
    sqlite3_stmt *st = stmt_get(c, ST_LIVE_SCHEDULERS, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, when_now_ms() - fresh_ms);
    bind_text(st, 2, host);
    bind_text(st, 3, home);
    bool null;
    return scalar_int(c, st, n, &null, "the live schedulers", e);
}

/* One scheduler runs per home: the one that died is this one's predecessor, whose tries a
 * restart counts as failed without naming it (no other scheduler took them). */
static int conn_lost_scheduler(void *db, const char *run_id, char **name, struct err *e)
{
    *name = NULL;
    return 0;
}

static int conn_claim_runs(void *db, int64_t id, int limit, size_t *claimed, struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_CLAIM_RUNS, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_int(st, 2, limit);
    int r = stmt_exec(c, st, "claim runs", e);
    if (r == 0)
        *claimed = (size_t)sqlite3_changes(c->db);
    return r;
}

static int conn_take_run(void *db, int64_t id, const char *run_id, bool *taken, struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_TAKE_RUN, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    bind_text(st, 2, run_id);
    int64_t v;
    bool null;
    int r = scalar_int(c, st, &v, &null, "a run", e);
    *taken = r == 0 && !null;
    return r;
}

static int conn_list_owned_runs(void *db, int64_t id, struct run_rec **out, size_t *n,
                                struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_LIST_OWNED, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    LIST_ALL(c, st, struct run_rec, read_run, run_rec_release, out, n, "owned runs");
}

static int conn_fence(void *db, int64_t id, struct err *e)
{
    struct sqlite_conn *c = db;
    sqlite3_stmt *st = stmt_get(c, ST_FENCE, e);
    if (!st)
        return ERR_DB;
    sqlite3_bind_int64(st, 1, id);
    int64_t v;
    bool null;
    int r = scalar_int(c, st, &v, &null, "the scheduler's registration", e);
    if (r == 0 && null)
        r = err_set(e, -ESTALE,
                    "scheduler %lld is no longer active in database '%s': its writes are refused",
                    (long long)id, c->path);
    return r;
}

const struct store_backend store__sqlite_backend = {
    .name = "sqlite",
    .close = conn_close,
    .begin = conn_begin,
    .commit = conn_commit,
    .rollback = conn_rollback,
    .put_run = conn_put_run,
    .put_ti = conn_put_ti,
    .put_try = conn_put_try,
    .put_dag_version = conn_put_dag_version,
    .get_run = conn_get_run,
    .get_ti = conn_get_ti,
    .list_runs = conn_list_runs,
    .list_tis = conn_list_tis,
    .list_tries = conn_list_tries,
    .get_dag_version = conn_get_dag_version,
    .put_dag = conn_put_dag,
    .set_paused = conn_set_paused,
    .get_dag = conn_get_dag,
    .list_dags = conn_list_dags,
    .set_import_errors = conn_set_import_errors,
    .list_import_errors = conn_list_import_errors,
    .set_pool = conn_set_pool,
    .list_pools = conn_list_pools,
    .pool_usage = conn_pool_usage,
    .put_request = conn_put_request,
    .take_requests = conn_take_requests,
    .delete_request = conn_delete_request,
    .list_unfinished_runs = conn_list_unfinished_runs,
    .last_logical = conn_last_logical,
    .has_run_at = conn_has_run_at,
    .claim_run = conn_claim_run,
    .delete_ti = conn_delete_ti,
    .put_user = conn_put_user,
    .add_user = conn_add_user,
    .get_user = conn_get_user,
    .list_users = conn_list_users,
    .delete_user = conn_delete_user,
    .count_users = conn_count_users,
    .revoke_token = conn_revoke_token,
    .revoke_user = conn_revoke_user,
    .revocation_gen = conn_revocation_gen,
    .list_revocations = conn_list_revocations,
    .purge_revocations = conn_purge_revocations,
    .shared = false,
    .node_register = conn_node_register,
    .node_heartbeat = conn_node_heartbeat,
    .node_stop = conn_node_stop,
    .list_nodes = conn_list_nodes,
    .reap_nodes = conn_reap_nodes,
    .live_schedulers = conn_live_schedulers,
    .lost_scheduler = conn_lost_scheduler,
    .claim_runs = conn_claim_runs,
    .take_run = conn_take_run,
    .list_owned_runs = conn_list_owned_runs,
    .fence = conn_fence,
    .events_w_open = events_sqlite_w_open,
    .events_w_close = events_sqlite_w_close,
    .events_w_put = events_sqlite_w_put,
    .events_w_prune = events_sqlite_w_prune,
    .events_list = events_sqlite_list,
    .events_last_id = events_sqlite_last_id,
    .count_tis = events_sqlite_count_tis,
    .count_runs = events_sqlite_count_runs,
    .events_put = events_sqlite_put,
    .ping = events_sqlite_ping,
};
