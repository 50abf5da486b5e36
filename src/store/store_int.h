/*
 * store_int.h - private to the store module: the backend table behind
 * struct store (store.c dispatches, store_sqlite.c implements). Each
 * function receives the backend's own connection object (void *db) and
 * follows the contract of the matching store_* function in store.h.
 */
#ifndef BARAM_STORE_STORE_INT_H
#define BARAM_STORE_STORE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/events.h"
#include "store/store.h"

/* The columns of each record, in the order both backends bind and read them. */
#define RUN_COLS                                                                                   \
    "run_id, dag_id, state, type, logical_at, queued_at, started_at, ended_at, conf, dag_hash, "   \
    "dag_path, owner"
#define TI_COLS                                                                                    \
    "run_id, task_id, task, map_index, state, try_number, max_tries, exit_code, output, "          \
    "message, priority, pool, scheduled_at, queued_at, started_at, ended_at"
/* What a task instance is read with: its columns, then its current try's worker. */
#define TI_READ_COLS                                                                               \
    TI_COLS ", (SELECT y.worker FROM tries y WHERE y.run_id = task_instances.run_id AND "          \
            "y.task_id = task_instances.task_id AND y.try_number = task_instances.try_number)"
#define TRY_COLS                                                                                   \
    "run_id, task_id, try_number, state, exit_code, term_signal, timed_out, queued_at, "           \
    "started_at, ended_at, hostname, pid, worker"
#define DAG_COLS "dag_id, path, hash, schedule, description, paused, updated_at"
/* A user's revocation generation, read in the same statement (so the same snapshot) as the row:
 * a login that checks this row's password is ordered against every revocation (store.h). */
#define USER_REVOKED_GEN                                                                           \
    "COALESCE((SELECT gen FROM revoked_users WHERE revoked_users.name = users.name), 0)"

struct store_backend {
    const char *name;
    void (*close)(void *db);
    int (*begin)(void *db, struct err *e);
    int (*commit)(void *db, struct err *e);
    void (*rollback)(void *db);
    int (*put_run)(void *db, const struct run_rec *r, struct err *e);
    int (*put_ti)(void *db, const struct ti_rec *t, struct err *e);
    int (*put_try)(void *db, const struct try_rec *t, struct err *e);
    int (*put_dag_version)(void *db, const char *hash, const char *dag_id, const char *source,
                           size_t len, struct err *e);
    int (*get_run)(void *db, const char *run_id, struct run_rec *out, struct err *e);
    int (*get_ti)(void *db, const char *run_id, const char *task_id, struct ti_rec *out,
                  struct err *e);
    int (*list_runs)(void *db, const struct run_filter *f, int64_t limit, int64_t offset,
                     struct run_rec **out, size_t *n, size_t *total, struct err *e);
    int (*list_tis)(void *db, const char *run_id, struct ti_rec **out, size_t *n, struct err *e);
    int (*list_tries)(void *db, const char *run_id, const char *task_id, struct try_rec **out,
                      size_t *n, struct err *e);
    int (*get_dag_version)(void *db, const char *hash, char **source, size_t *len, struct err *e);
    int (*put_dag)(void *db, const struct dag_rec *d, struct err *e);
    int (*set_paused)(void *db, const char *dag_id, bool paused, struct err *e);
    int (*get_dag)(void *db, const char *dag_id, struct dag_rec *out, struct err *e);
    int (*list_dags)(void *db, struct dag_rec **out, size_t *n, struct err *e);
    int (*set_import_errors)(void *db, const char *path, const struct import_error_rec *v, size_t n,
                             struct err *e);
    int (*list_import_errors)(void *db, struct import_error_rec **out, size_t *n, struct err *e);
    int (*set_pool)(void *db, const char *name, int slots, struct err *e);
    int (*list_pools)(void *db, struct pool_rec **out, size_t *n, struct err *e);
    int (*pool_usage)(void *db, const char *pool, struct pool_usage *u, struct err *e);
    int (*put_request)(void *db, const char *run_id, const char *kind, struct err *e);
    int (*take_requests)(void *db, int64_t sched_id, struct run_request **out, size_t *n,
                         struct err *e);
    int (*delete_request)(void *db, const char *run_id, const char *kind, struct err *e);
    int (*list_unfinished_runs)(void *db, struct run_rec **out, size_t *n, struct err *e);
    int (*last_logical)(void *db, const char *dag_id, enum run_type type, int64_t *at_ms,
                        struct err *e);
    int (*has_run_at)(void *db, const char *dag_id, int64_t logical_at_ms, bool *exists,
                      struct err *e);
    int (*claim_run)(void *db, const char *prefix, int64_t at_ms, const struct run_rec *rec,
                     char *id, size_t idsz, struct err *e);
    int (*delete_ti)(void *db, const char *run_id, const char *task_id, struct err *e);
    int (*put_user)(void *db, const struct user_rec *u, struct err *e);
    int (*add_user)(void *db, const struct user_rec *u, struct err *e);
    int (*get_user)(void *db, const char *name, struct user_rec *out, struct err *e);
    int (*list_users)(void *db, struct user_rec **out, size_t *n, struct err *e);
    int (*delete_user)(void *db, const char *name, struct err *e);
    int (*count_users)(void *db, const char *role, int64_t *count, struct err *e);
    int (*revoke_token)(void *db, const char *jti, const char *name, int64_t exp_at_ms,
                        struct err *e);
    int (*revoke_user)(void *db, const char *name, int64_t before_s, struct err *e);
    int (*revocation_gen)(void *db, int64_t *gen, struct err *e);
    int (*list_revocations)(void *db, int64_t after_gen, struct revocation_rec **out, size_t *n,
                            struct err *e);
    int (*purge_revocations)(void *db, int64_t before_ms, int64_t *purged, struct err *e);
    /* the registry and run ownership (migration 0006; store.h) */
    bool shared; /* other hosts' processes may share the database */
    int (*node_register)(void *db, const struct node_rec *n, int64_t *id, struct err *e);
    int (*node_heartbeat)(void *db, int64_t id, bool *alive, struct err *e);
    int (*node_stop)(void *db, int64_t id, struct err *e);
    int (*list_nodes)(void *db, struct node_rec **out, size_t *n, struct err *e);
    int (*reap_nodes)(void *db, int64_t dead_after_ms, size_t *reaped, struct err *e);
    int (*live_schedulers)(void *db, int64_t fresh_ms, const char *host, const char *home,
                           int64_t *n, struct err *e);
    int (*lost_scheduler)(void *db, const char *run_id, char **name, struct err *e);
    /* Optional (NULL: none, a backend whose scheduler runs every try itself). */
    int (*unserved_tis)(void *db, const char *run_id, struct ti_unserved **out, size_t *n,
                        struct err *e);
    int (*claim_runs)(void *db, int64_t id, int limit, size_t *claimed, struct err *e);
    int (*take_run)(void *db, int64_t id, const char *run_id, bool *taken, struct err *e);
    int (*list_owned_runs)(void *db, int64_t id, struct run_rec **out, size_t *n, struct err *e);
    int (*fence)(void *db, int64_t id, struct err *e);
    /* the event log (events.h): appends prepared once per writer connection, then reads */
    int (*events_w_open)(void *db, void **w, struct err *e);
    void (*events_w_close)(void *w);
    int (*events_w_put)(void *w, enum event_kind kind, const char *dag_id, const char *run_id,
                        const char *task_id, const char *state, int try_number, int64_t at_ms,
                        struct err *e);
    int (*events_w_prune)(void *w, int64_t keep, struct err *e);
    int (*events_list)(void *db, int64_t after_id, const char *dag_id, const char *run_id,
                       size_t limit, struct event_rec **out, size_t *n, struct err *e);
    int (*events_last_id)(void *db, int64_t *id, struct err *e);
    int (*count_tis)(void *db, int64_t counts[TI_STATE_COUNT], struct err *e);
    int (*count_runs)(void *db, int64_t counts[RUN_STATE_COUNT], struct err *e);
    /* one event appended outside the writer (a run claimed queued, a clear or cancel the CLI
     * writes), in the caller's transaction if one is open */
    int (*events_put)(void *db, enum event_kind kind, const char *dag_id, const char *run_id,
                      const char *task_id, const char *state, int try_number, int64_t at_ms,
                      struct err *e);
    /* Optional (NULL: each events_w_put wrote its row): writes the events gathered by
     * events_w_put since the last flush, in the writer's transaction. */
    int (*events_w_flush)(void *w, struct err *e);
    /* Optional (NULL: -ENOTSUP, a backend without notifications): wakes every listener of
     * channel (NOTIFY), in the open transaction (delivered at its commit) or at once. */
    int (*notify)(void *db, const char *channel, struct err *e);
    /* The cheapest round trip to the database (SELECT 1): 0, or a negative code. */
    int (*ping)(void *db, struct err *e);
};

/* For the modules of this layer in front of the backends (events.c): s's backend and its
 * connection object. */
const struct store_backend *store__backend(struct store *s);
void *store__conn(struct store *s);

/* What the backends share (store.c). Finishes a transaction a backend call opened for itself
 * (own; a joined one is left to its owner): commits when r == 0, else rolls back; returns r or
 * the commit's failure. */
int store__txn_end(const struct store_backend *be, void *db, bool own, int r, struct err *e);
/* at_ms when set (> 0), else now (UTC ms). */
int64_t store__now_or(int64_t at_ms);

/* ---- the SQLite backend (store_sqlite.c, events_sqlite.c, migrate_sqlite.c) ---- */

extern const struct store_backend store__sqlite_backend;
/* Opens (creating file and folders) and migrates path. 0 and *db, or a negative code with *e
 * filled. */
int store__sqlite_open(const char *path, void **db, struct err *e);
/* The sqlite3 handle of a connection object of store_sqlite.c. */
struct sqlite3;
struct sqlite3 *store__sqlite(void *conn);

/* events_sqlite.c: the event log's entries of store__sqlite_backend. */
int events_sqlite_w_open(void *conn, void **w, struct err *e);
void events_sqlite_w_close(void *w);
int events_sqlite_w_put(void *w, enum event_kind kind, const char *dag_id, const char *run_id,
                        const char *task_id, const char *state, int try_number, int64_t at_ms,
                        struct err *e);
int events_sqlite_w_prune(void *w, int64_t keep, struct err *e);
int events_sqlite_list(void *conn, int64_t after_id, const char *dag_id, const char *run_id,
                       size_t limit, struct event_rec **out, size_t *n, struct err *e);
int events_sqlite_last_id(void *conn, int64_t *id, struct err *e);
int events_sqlite_count_tis(void *conn, int64_t counts[TI_STATE_COUNT], struct err *e);
int events_sqlite_count_runs(void *conn, int64_t counts[RUN_STATE_COUNT], struct err *e);
int events_sqlite_put(void *conn, enum event_kind kind, const char *dag_id, const char *run_id,
                      const char *task_id, const char *state, int try_number, int64_t at_ms,
                      struct err *e);
int events_sqlite_ping(void *conn, struct err *e);

#endif
