/*
 * store.h - the durable record of runs, task instances and tries: one
 * interface, several backends (SQLite now, in store_sqlite.c; PostgreSQL
 * later). A backend is a table of functions (struct store_backend) behind
 * the opaque struct store; callers never see which one they have.
 *
 * Two ways in:
 *  - Synchronous calls (store_open, the store_put_* writes inside
 *    store_begin/store_commit, the store_get_* and store_list_* reads) block
 *    on the database: for the CLI and for threads that may block. One struct
 *    store is one connection; use it from one thread at a time.
 *  - struct store_writer (below) is for the event loop, which must never
 *    block: it owns its own connection and thread, takes changes through a
 *    queue, commits them in groups (group commit: every change that arrived
 *    while the previous commit was running goes into the next transaction)
 *    and tells the loop, through uv_async, the sequence number up to which
 *    everything is durable.
 *
 * Every write is an upsert of a whole row keyed by its natural key, so
 * replaying or coalescing changes is harmless and a record is never half
 * written: a transaction holds all of a batch or none of it.
 *
 * Records own their strings (char *, malloc'd); *_release frees them.
 *
 * Errors: every call that can fail returns 0 or a negative code and takes a struct err *e
 * last (base/err.h): on failure it fills *e with the code and a message for a person (which
 * names the database). The storage is the caller's, so two failures on two connections keep
 * their own words; e may be NULL when only the code matters. Nothing is kept in the store.
 */
#ifndef BARAM_STORE_STORE_H
#define BARAM_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "dag/state.h"

struct err;
struct store;
struct store_writer;
struct uv_loop_s;

/* One run of a DAG. */
struct run_rec {
    char *run_id; /* "manual__2026-11-29T03:00:00.000Z" */
    char *dag_id;
    enum run_state state;
    enum run_type type;
    int64_t logical_at_ms;
    int64_t queued_at_ms;  /* -1 when unknown */
    int64_t started_at_ms; /* -1 until it starts */
    int64_t ended_at_ms;   /* -1 until it ends */
    char *conf;            /* JSON object of the params the run was given, or NULL */
    char *dag_hash;        /* the DAG version the run started with (dag.hash) */
    char *dag_path;        /* the DAG file it came from */
    /* NULL: the scheduler runs it (it resumes it after a crash); "cli" for a foreground
     * `baram run`. */
    char *owner;
};

/* One task instance: a task in a run (one per item for a mapped task). */
struct ti_rec {
    char *run_id;
    char *task_id; /* "extract", or "shards[3]" for a mapped instance */
    char *task;    /* the DAG task's name: "shards" */
    int map_index; /* -1 when not mapped */
    enum ti_state state;
    int try_number; /* tries started so far (0 before the first) */
    int max_tries;  /* retries + 1 */
    int exit_code;  /* of the last finished try; -1 when none or killed by a signal */
    char *output;   /* NULL when none; at most DAG_OUTPUT_MAX bytes */
    size_t output_len;
    char *message; /* why it failed or was skipped, for people; NULL when none */
    int priority;
    char *pool;
    int64_t scheduled_at_ms; /* -1 when unknown: upstream met */
    int64_t queued_at_ms;    /* handed to an executor */
    int64_t started_at_ms;   /* first try's process started */
    int64_t ended_at_ms;     /* finished */
    char *worker; /* read only: the worker of its current try (try_rec.worker), or NULL */
};

/* One try of a task instance. */
struct try_rec {
    char *run_id;
    char *task_id;
    int try_number;      /* from 1 */
    enum ti_state state; /* running, success, failed, skipped, up_for_retry */
    int exit_code;       /* -1 while running or when killed by a signal */
    int term_signal;     /* 0, or the signal that ended it */
    bool timed_out;
    int64_t queued_at_ms;
    int64_t started_at_ms;
    int64_t ended_at_ms; /* -1 while running */
    char *hostname;      /* where it ran; NULL = here */
    int pid;
    char *worker; /* the worker that ran it (workers.name), or NULL: not a worker's */
};

void run_rec_release(struct run_rec *r);
void ti_rec_release(struct ti_rec *t);
void try_rec_release(struct try_rec *t);

/* Opens the store named by url: a path to an SQLite file (created, with its folder's
 * database, when missing), "sqlite:PATH", or a PostgreSQL URL ("postgresql://..." or
 * "postgres://...", libpq's URI form; connecting gives up after 5 s unless the URL sets
 * connect_timeout). Applies pending migrations. 0 and *out, or a negative code with *e saying
 * what went wrong for a person (ERR_DB for a database that cannot be reached or used). */
int store_open(const char *url, struct store **out, struct err *e) WARN_UNUSED;
/* store_open for a reader that must not create the store: -ENOENT (e filled: "no database
 * ...") when url's database holds no baram store yet (no SQLite file; a PostgreSQL database
 * without baram's tables), else as store_open. */
int store_open_existing(const char *url, struct store **out, struct err *e) WARN_UNUSED;
/* The database url names, for people: the SQLite file's path, or "PostgreSQL at HOST/DB" (a
 * PostgreSQL URL may hold a password: never print the URL itself). Into buf (n >= 1); buf. */
const char *store_describe(const char *url, char *buf, size_t n);
void store_close(struct store *s);
/* The backend's name ("sqlite", "postgresql"), static; store_url_backend: the one url names. */
const char *store_backend_name(struct store *s);
const char *store_url_backend(const char *url);
/* One round trip to the database (SELECT 1), e.g. for a health check. 0 or a negative code. */
int store_ping(struct store *s, struct err *e) WARN_UNUSED;

/* Writes. store_begin starts a transaction, store_commit makes it durable (WAL + synchronous
 * FULL on SQLite; when it fails, the transaction is rolled back), store_rollback drops it.
 * Each put is an upsert of the whole row. */
int store_begin(struct store *s, struct err *e) WARN_UNUSED;
int store_commit(struct store *s, struct err *e) WARN_UNUSED;
void store_rollback(struct store *s);
int store_put_run(struct store *s, const struct run_rec *r, struct err *e) WARN_UNUSED;
int store_put_ti(struct store *s, const struct ti_rec *t, struct err *e) WARN_UNUSED;
int store_put_try(struct store *s, const struct try_rec *t, struct err *e) WARN_UNUSED;
/* Records a DAG version (hash -> source) once; later calls with the same hash do nothing. */
int store_put_dag_version(struct store *s, const char *hash, const char *dag_id, const char *source,
                          size_t len, struct err *e) WARN_UNUSED;

/* Reads. 0 and the record (release it), -ENOENT when there is none, or ERR_DB. */
int store_get_run(struct store *s, const char *run_id, struct run_rec *out,
                  struct err *e) WARN_UNUSED;
int store_get_ti(struct store *s, const char *run_id, const char *task_id, struct ti_rec *out,
                 struct err *e) WARN_UNUSED;
/* Runs, newest logical date first (then newest queued), optionally of one DAG (dag_id NULL:
 * all). limit < 0: no limit. *total gets the number of matching runs ignoring limit/offset
 * (may be NULL). *out is a malloc'd array of *n records: free with store_free_runs. */
int store_list_runs(struct store *s, const char *dag_id, int64_t limit, int64_t offset,
                    struct run_rec **out, size_t *n, size_t *total, struct err *e) WARN_UNUSED;
/* Which runs store_find_runs returns (the UI's and API's runs across DAGs): each field narrows
 * the list, its zero value does not. */
struct run_filter {
    const char *dag_id; /* NULL: every DAG */
    unsigned states;    /* RUN_STATE_BIT(RUN_FAILED) | ...; 0: any state */
    bool has_from, has_to;
    int64_t from_ms; /* has_from: logical date >= from_ms */
    int64_t to_ms;   /* has_to: logical date <= to_ms (both ends included) */
};
#define RUN_STATE_BIT(st) (1u << (unsigned)(st))
/* store_list_runs with a filter: same order, paging and *total (the matching runs). */
int store_find_runs(struct store *s, const struct run_filter *f, int64_t limit, int64_t offset,
                    struct run_rec **out, size_t *n, size_t *total, struct err *e) WARN_UNUSED;
/* The filter's states as the text both backends bind: ",failed,running," ("" for any). Into
 * buf (n >= RUN_FILTER_STATES_MAX); buf. */
#define RUN_FILTER_STATES_MAX 96
const char *run_filter_states(const struct run_filter *f, char *buf, size_t n);
/* A run's task instances, in the order their tasks first started (tasks that never started
 * last, in first-seen order), a task's instances together by map_index. */
int store_list_tis(struct store *s, const char *run_id, struct ti_rec **out, size_t *n,
                   struct err *e) WARN_UNUSED;
/* A task instance's tries, by try number. */
int store_list_tries(struct store *s, const char *run_id, const char *task_id, struct try_rec **out,
                     size_t *n, struct err *e) WARN_UNUSED;
/* The source of a DAG version: 0 and *source (malloc'd), or -ENOENT. */
int store_get_dag_version(struct store *s, const char *hash, char **source, size_t *len,
                          struct err *e) WARN_UNUSED;
void store_free_runs(struct run_rec *v, size_t n);
void store_free_tis(struct ti_rec *v, size_t n);
void store_free_tries(struct try_rec *v, size_t n);

/*
 * The scheduler's tables (migration 0002): DAGs, import errors, pools, requests from the CLI
 * to the daemon, and the queries the scheduler and the operations commands need. Same rules
 * as above: one connection, one thread at a time; 0 or a negative code (ERR_DB with *e saying
 * why). A write made outside store_begin/store_commit is its own
 * transaction; inside, it joins the caller's.
 */

/* A DAG the scheduler loaded (or one that was only paused: then every string but dag_id may
 * be NULL). */
struct dag_rec {
    char *dag_id;
    char *path;     /* its file */
    char *hash;     /* dag.hash of the version loaded */
    char *schedule; /* as written in the file; NULL: manual only */
    char *description;
    bool paused;
    int64_t updated_at_ms; /* when written; store_put_dag uses now when <= 0 */
};
void dag_rec_release(struct dag_rec *d);
/* Upserts what the scheduler loaded; keeps 'paused' of an existing row (a new row is unpaused). */
int store_put_dag(struct store *s, const struct dag_rec *d, struct err *e) WARN_UNUSED;
/* Sets paused, creating the row (other columns NULL) when the DAG was never recorded. */
int store_set_paused(struct store *s, const char *dag_id, bool paused, struct err *e) WARN_UNUSED;
/* 0, -ENOENT, or ERR_DB. */
int store_get_dag(struct store *s, const char *dag_id, struct dag_rec *out,
                  struct err *e) WARN_UNUSED;
int store_list_dags(struct store *s, struct dag_rec **out, size_t *n,
                    struct err *e) WARN_UNUSED; /* by dag_id */
void store_free_dags(struct dag_rec *v, size_t n);

/* A problem that kept a DAG file from loading. */
struct import_error_rec {
    char *path;
    int line; /* 1-based; 0 when unknown */
    int col;
    char *message;
    int64_t at_ms; /* when recorded; store_set_import_errors uses now when <= 0 */
};
void import_error_rec_release(struct import_error_rec *e);
/* Replaces every import error recorded for path with v[0..n) (n == 0 clears them), in one
 * transaction. v[i].path is ignored (path is used). */
int store_set_import_errors(struct store *s, const char *path, const struct import_error_rec *v,
                            size_t n, struct err *e) WARN_UNUSED;
/* Every import error, by path, line, column. */
int store_list_import_errors(struct store *s, struct import_error_rec **out, size_t *n,
                             struct err *e) WARN_UNUSED;
void store_free_import_errors(struct import_error_rec *v, size_t n);

/* A pool set by `baram pools set` (or PUT /api/v1/pools/NAME). */
struct pool_rec {
    char *name;
    int slots;
    int64_t updated_at_ms;
};
void pool_rec_release(struct pool_rec *p);
/* Upserts the pool's slots (updated_at now). */
int store_set_pool(struct store *s, const char *name, int slots, struct err *e) WARN_UNUSED;
/* Every stored pool, by name. */
int store_list_pools(struct store *s, struct pool_rec **out, size_t *n, struct err *e) WARN_UNUSED;
void store_free_pools(struct pool_rec *v, size_t n);
/* The task instances of a pool (one without a pool counts in "default"), by state: waiting for
 * a slot (scheduled), holding one (queued: not started yet; running). */
struct pool_usage {
    int scheduled, queued, running;
};
int store_pool_usage(struct store *s, const char *pool, struct pool_usage *u,
                     struct err *e) WARN_UNUSED;

/* A request the CLI leaves for the scheduler. */
struct run_request {
    char *run_id;
    char *kind; /* "cancel" */
    int64_t at_ms;
};
void run_request_release(struct run_request *q);
/* Records the request (a second one of the same kind for the run only updates its time). */
int store_put_request(struct store *s, const char *run_id, const char *kind,
                      struct err *e) WARN_UNUSED;
/* Requests whose kind starts with this stay until carried out (see store_take_requests). */
#define STORE_REQUEST_LASTING "clear"
/* Reads every pending request (oldest first) and deletes them, in one transaction, except
 * those whose kind starts with STORE_REQUEST_LASTING: they stay until store_delete_request (the
 * scheduler deletes one in the transaction that carries it out, so a crash before that loses
 * nothing). Only such lasting requests, or none: a read alone. With several schedulers
 * (PostgreSQL) and sched_id > 0, a request about an unfinished run that scheduler sched_id does
 * not own is neither taken nor returned (unless lasting): it stays for the run's owner. */
int store_take_requests(struct store *s, int64_t sched_id, struct run_request **out, size_t *n,
                        struct err *e) WARN_UNUSED;
/* Deletes one request: 1 when it was there, 0 when not, or ERR_DB. */
int store_delete_request(struct store *s, const char *run_id, const char *kind,
                         struct err *e) WARN_UNUSED;
void store_free_requests(struct run_request *v, size_t n);

/* Runs the scheduler owns (owner NULL) that have not ended (queued or running), oldest queued
 * first. */
int store_list_unfinished_runs(struct store *s, struct run_rec **out, size_t *n,
                               struct err *e) WARN_UNUSED;
/* The newest logical date among the DAG's runs of this type: 0 and *at_ms, or -ENOENT. */
int store_last_logical(struct store *s, const char *dag_id, enum run_type type, int64_t *at_ms,
                       struct err *e) WARN_UNUSED;
/* Whether the DAG has a scheduled or backfill run at this logical date. */
int store_has_run_at(struct store *s, const char *dag_id, int64_t logical_at_ms, bool *exists,
                     struct err *e) WARN_UNUSED;
/* Claims a run id not yet taken, prefix + ISO-8601 of at_ms
 * ("scheduled__2026-01-01T03:00:00.000Z", see when.h), the next millisecond while taken (up to
 * 1000 tries, then -EEXIST), and records *rec under it, all in one transaction that takes the
 * write lock (BEGIN IMMEDIATE) so two processes never get the same id. rec->run_id is ignored;
 * the id is copied into id (idsz bytes, >= 64). 0, or a negative code (*e says why):
 * -EALREADY when rec is a scheduled run and the DAG has one at this logical date already
 * (another scheduler created it: a scheduled interval exists once).
 * Should not be called inside store_begin; if it is, it joins that transaction (which holds
 * the write lock already) and the id is only claimed once the caller commits. */
int store_claim_run(struct store *s, const char *prefix, int64_t at_ms, const struct run_rec *rec,
                    char *id, size_t idsz, struct err *e) WARN_UNUSED;
/* Deletes a task instance and its tries (nothing to delete is not an error). */
int store_delete_ti(struct store *s, const char *run_id, const char *task_id,
                    struct err *e) WARN_UNUSED;

/* A user of the API (migration 0003). */
struct user_rec {
    char *name;
    char *role;            /* "viewer", "operator" or "admin" (auth.h) */
    char *password_hash;   /* argon2id, libsodium's string form; never the password */
    int64_t created_at_ms; /* store_put_user uses now when <= 0 (an update keeps the first) */
    /* Read only: the generation of the user's latest per-user revocation (0: none), read in
     * the same snapshot as the row, so a token issued on the strength of this row can carry it
     * and be refused by any later revocation (api/revoke.h). store_put_user ignores it. */
    int64_t revoked_gen;
};
void user_rec_release(struct user_rec *u);
/* Upserts the user (role and hash replaced; created_at kept on an update). */
int store_put_user(struct store *s, const struct user_rec *u, struct err *e) WARN_UNUSED;
/* Inserts a new user: -EEXIST (nothing written) when one of that name exists, even one
 * another connection has just added. */
int store_add_user(struct store *s, const struct user_rec *u, struct err *e) WARN_UNUSED;
/* 0 and *out (release it), -ENOENT, or ERR_DB. */
int store_get_user(struct store *s, const char *name, struct user_rec *out,
                   struct err *e) WARN_UNUSED;
/* Every user, by name. */
int store_list_users(struct store *s, struct user_rec **out, size_t *n, struct err *e) WARN_UNUSED;
void store_free_users(struct user_rec *v, size_t n);
/* 0, -ENOENT when there is no such user, or ERR_DB. */
int store_delete_user(struct store *s, const char *name, struct err *e) WARN_UNUSED;
/* The number of users (role NULL) or of users with this role. */
int store_count_users(struct store *s, const char *role, int64_t *count, struct err *e) WARN_UNUSED;

/*
 * Revoked API tokens (migration 0005; api/revoke.h uses them). Two kinds of row: a token
 * revoked by its jti (a logout), kept until its exp has passed; and, per user name, a second
 * before which every token issued to the user is refused (the user deleted, or their role or
 * password replaced). Every revocation raises one generation number in its own transaction and
 * stamps its row with it, so a reader checks one number (store_revocation_gen) on each request
 * and reads only the rows above the generation it has seen (store_list_revocations). A backend
 * makes a committed revocation visible to store_revocation_gen on every connection at once
 * (SQLite: the next read sees it; a PostgreSQL backend may read the row, or keep it current
 * with LISTEN/NOTIFY, as long as the delay it adds is bounded and documented).
 */
struct revocation_rec {
    char *jti;  /* the revoked token's id; NULL for a user's row */
    char *name; /* the token's user, or the user whose tokens are refused */
    int64_t at; /* jti: the token's exp, UTC ms; user: tokens with an iat (s) below this (s) */
    int64_t gen;
};
void revocation_rec_release(struct revocation_rec *r);
/* Adds jti to the deny list until exp_at_ms (a jti revoked again keeps the later exp). */
int store_revoke_token(struct store *s, const char *jti, const char *name, int64_t exp_at_ms,
                       struct err *e) WARN_UNUSED;
/* Refuses every token of name with an iat (seconds) below before_s. The stored cutoff only
 * grows, strictly: a second revocation in the same second still moves it (to the old one + 1
 * when before_s is not above it). */
int store_revoke_user(struct store *s, const char *name, int64_t before_s,
                      struct err *e) WARN_UNUSED;
/* The generation of the latest revocation (0 before any). */
int store_revocation_gen(struct store *s, int64_t *gen, struct err *e) WARN_UNUSED;
/* Every revocation row with a generation above after_gen, by generation. */
int store_list_revocations(struct store *s, int64_t after_gen, struct revocation_rec **out,
                           size_t *n, struct err *e) WARN_UNUSED;
void store_free_revocations(struct revocation_rec *v, size_t n);
/* Deletes the revoked tokens whose exp is before before_ms; *purged (may be NULL) gets how
 * many. */
int store_purge_revocations(struct store *s, int64_t before_ms, int64_t *purged,
                            struct err *e) WARN_UNUSED;

/*
 * Schedulers and workers on one database (migration 0006, SPEC section 12): the registry
 * (`workers` table: one row per process that registered, heartbeats on the database's clock),
 * which scheduler owns each run (NULL: claimable), and the write fence. On SQLite one
 * scheduler runs per home (its lock) and registers all the same; the claims are the same
 * calls. Same rules as above: one connection, one thread at a time.
 */
struct node_rec {
    int64_t id;
    char *role; /* "scheduler" or "worker" */
    char *name; /* HOSTNAME:PID unless given */
    char *hostname;
    int pid;
    char *queues; /* comma-separated ("default") */
    char *home;   /* its home folder (absolute), or NULL; read back on PostgreSQL only */
    int slots;
    char *state;     /* "active", "draining", "dead" or "stopped" */
    int64_t running; /* read only: its running tries */
    int64_t started_at_ms;
    int64_t heartbeat_at_ms;
    char *log_url;  /* a worker's log server (http://HOST:PORT), or NULL; not read back */
    char *host_key; /* its machine and PID namespace (exec/orphans.h orphans_host_key), or NULL */
};
void node_rec_release(struct node_rec *n);
void store_free_nodes(struct node_rec *v, size_t n);
/* Whether processes on other hosts may share this store (PostgreSQL): several schedulers. */
bool store_shared(const struct store *s);
/* Bounds PostgreSQL connections opened from now on by a scheduler's dead_after: a transaction
 * left idle (a frozen process) ends, a lock wait and unacknowledged traffic give up, each well
 * under dead_after. Call before the first store_open; no effect on SQLite. */
void store_set_dead_after(int64_t dead_after_ms);
/* Registers a process (role, name, hostname, pid, queues, slots, home, log_url of n; active,
 * started and heartbeat now): its id in *id. In the same transaction, an active row of the
 * same role, host and home (a predecessor that crashed: its successor holds the home's lock)
 * is declared dead and its runs released, so that a restart resumes them at once. */
int store_node_register(struct store *s, const struct node_rec *n, int64_t *id,
                        struct err *e) WARN_UNUSED;
/* A heartbeat: *alive false (and nothing written) when the row is no longer active or
 * draining (declared dead, or stopped): the process must stop writing and step down. */
int store_node_heartbeat(struct store *s, int64_t id, bool *alive, struct err *e) WARN_UNUSED;
/* A clean stop: the row becomes 'stopped' (when it was active or draining) and the runs it
 * owned are released (owner scheduler NULL) so that others claim them at once. */
int store_node_stop(struct store *s, int64_t id, struct err *e) WARN_UNUSED;
/* Every registered process, schedulers first, then by id; running = its running tries. */
int store_list_nodes(struct store *s, struct node_rec **out, size_t *n, struct err *e) WARN_UNUSED;
/* Declares dead every active or draining scheduler silent for dead_after_ms or more (by the
 * database's clock) and releases its runs. Idempotent; any scheduler may call it at any time
 * (rows another caller holds are skipped). *reaped (may be NULL): how many were declared dead.
 * dead_after_ms < 0 declares every active scheduler dead (on SQLite at a scheduler's start:
 * the home's lock shows that no other runs). */
int store_reap_nodes(struct store *s, int64_t dead_after_ms, size_t *reaped,
                     struct err *e) WARN_UNUSED;
/* How many schedulers are active or draining with a heartbeat younger than fresh_ms (by the
 * database's clock), leaving out those of host and home (both given: a home whose lock is
 * free, so its scheduler has died): whether one runs anywhere, for a command that hands a
 * request over. */
int store_live_schedulers(struct store *s, int64_t fresh_ms, const char *host, const char *home,
                          int64_t *n, struct err *e) WARN_UNUSED;
/* The name of the scheduler run_id was taken from when another declared it dead for its
 * silence (store_reap_nodes), malloc'd in *name; NULL when its last release was a clean stop
 * or a successor on the same home (a restart after a crash), or on SQLite (one scheduler per
 * home). PostgreSQL: migration 0008. */
int store_lost_scheduler(struct store *s, const char *run_id, char **name,
                         struct err *e) WARN_UNUSED;
/* The task instances of run_id that wait for a worker no one provides: queued, their try
 * handed out in ti_queue (state 'queued', not claimed) on a queue that no active worker
 * listens on. Each with its task_id and that queue, malloc'd in *out (free with
 * store_free_unserved). None on SQLite (the scheduler runs every try itself). */
struct ti_unserved {
    char *task_id;
    char *queue;
};
int store_unserved_tis(struct store *s, const char *run_id, struct ti_unserved **out, size_t *n,
                       struct err *e) WARN_UNUSED;
void store_free_unserved(struct ti_unserved *v, size_t n);
/* Gives up to limit claimable runs (queued or running, run by a scheduler (owner NULL), owned
 * by no active scheduler; oldest queued first; rows another caller holds are skipped) to
 * scheduler id, and no more than its fair share: the claimable runs divided by the active
 * schedulers, rounded up. *claimed (may be NULL): how many. */
int store_claim_runs(struct store *s, int64_t id, int limit, size_t *claimed,
                     struct err *e) WARN_UNUSED;
/* Gives run_id to scheduler id if no active scheduler owns it: *taken says whether it is id's
 * now (also when it was already). */
int store_take_run(struct store *s, int64_t id, const char *run_id, bool *taken,
                   struct err *e) WARN_UNUSED;
/* The unfinished runs (as store_list_unfinished_runs) owned by scheduler id. */
int store_list_owned_runs(struct store *s, int64_t id, struct run_rec **out, size_t *n,
                          struct err *e) WARN_UNUSED;
/* The write fence: inside a transaction, 0 when scheduler id is still active (and, on
 * PostgreSQL, its row is held FOR SHARE until the transaction ends, so that no one declares
 * it dead before the commit), else -ESTALE with *e saying it was fenced. */
int store_fence(struct store *s, int64_t id, struct err *e) WARN_UNUSED;

/*
 * The group-commit writer, for the event loop.
 *
 * store_writer_start opens its own connection to url and starts one thread. Changes are
 * copied in (the caller keeps its records), each gets the next sequence number, and the
 * thread commits everything queued as one transaction, then calls on_durable(ud, seq) on the
 * loop thread (through uv_async) with the highest sequence number now durable: a caller that
 * must not act before a change is durable (report it, release downstream work) waits for
 * that number. Callbacks may coalesce: one call can cover many commits.
 *
 * on_commit (may be NULL) is the one callback on the writer thread itself: it is called
 * right after each commit, before the loop hears of it, with commit_ud, the sequence number
 * now durable and the number of events the commit appended to the event log (events.h; 0
 * when it appended none). It is how a reader of the event log in the same process (the
 * API's event hub, wired by `baram standalone`) learns of new events without polling: it
 * must return quickly, never block on the loop and never call the writer. It is called
 * from the writer's start until store_writer_stop's done_cb, never after.
 *
 * If a commit fails, the writer retries it a few times, then calls on_error(ud, code, msg)
 * on the loop thread and stops taking changes (every later submit returns 0).
 * store_writer_stop commits what is queued, joins the thread and closes its handles; the loop
 * must run until done_cb (may be NULL) is called before the writer's memory is freed by it.
 */
typedef void (*store_durable_fn)(void *ud, uint64_t seq);
typedef void (*store_error_fn)(void *ud, int code, const char *msg);
typedef void (*store_stopped_fn)(void *ud);
typedef void (*store_commit_fn)(void *ud, uint64_t seq, size_t nevents);

int store_writer_start(struct uv_loop_s *loop, const char *url, store_durable_fn on_durable,
                       store_error_fn on_error, void *ud, store_commit_fn on_commit,
                       void *commit_ud, struct store_writer **out, struct err *e) WARN_UNUSED;
/* Loop thread. Each returns the change's sequence number (> 0), or 0 when the writer has
 * failed or is stopping. */
uint64_t store_writer_put_run(struct store_writer *w, const struct run_rec *r);
uint64_t store_writer_put_ti(struct store_writer *w, const struct ti_rec *t);
uint64_t store_writer_put_try(struct store_writer *w, const struct try_rec *t);
uint64_t store_writer_put_dag_version(struct store_writer *w, const char *hash, const char *dag_id,
                                      const char *source, size_t len);
/* Loop thread. Between cork and uncork, changes are queued without waking the writer thread
 * (which may still take them if it is awake): the changes one event makes then go into one
 * transaction instead of the first waking the thread alone. Uncork wakes it if anything is
 * queued. Not nested. */
/* notify: a row of `deliveries` (store/deliveries.h), copied. */
struct delivery_rec;
uint64_t store_writer_put_delivery(struct store_writer *w, const struct delivery_rec *d);
void store_writer_cork(struct store_writer *w);
void store_writer_uncork(struct store_writer *w);
/* Group changes for up to ms milliseconds after the first one arrives before committing
 * (0, the default: commit as soon as the thread wakes). For callers that do not wait on each
 * change's durability: fewer commits and thread wake-ups when changes trickle in. Setting 0
 * while the writer lingers makes it commit at once. Any thread. */
void store_writer_set_linger(struct store_writer *w, int ms);
/* Highest sequence number known durable (loop thread). */
uint64_t store_writer_durable(const struct store_writer *w);
/* Statistics: commits made and changes written (loop thread, approximate). */
void store_writer_stats(const struct store_writer *w, uint64_t *commits, uint64_t *changes,
                        int64_t *commit_ns_total);
/* Rows actually written (changes minus those coalesced away within a batch), approximate. */
uint64_t store_writer_rows(const struct store_writer *w);
/* Commits made by every writer of this process so far, and their total time with the fsync,
 * in ns (for /metrics). Any thread. */
void store_writer_totals(uint64_t *commits, uint64_t *commit_ns);
/* Fences every later transaction of the writer with scheduler id's row (store_fence; 0: none):
 * a batch the fence refuses is rolled back, not retried, and the writer fails with -ESTALE
 * (on_error). Loop thread, before the first change. */
void store_writer_set_fence(struct store_writer *w, int64_t id);
/* Coalescing of several upserts of one row within a batch: on by default (for measurements). */
void store_writer_set_coalesce(struct store_writer *w, bool on);
/* Loop thread. Flushes, stops the thread; done_cb(ud) runs on the loop when every handle is
 * closed, and the writer frees itself then. */
void store_writer_stop(struct store_writer *w, store_stopped_fn done_cb);

#endif
