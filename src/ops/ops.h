/*
 * ops.h - the operations people ask for while a scheduler runs (or not):
 * trigger, backfill, pause/unpause, cancel, clear, set a pool's size. The
 * CLI (`baram dags trigger` ...) and the REST API's write routes call the
 * same functions, so both write the same rows and say the same things.
 *
 * Each function works on an open store (the caller's connection), writes
 * its request in one transaction (a queued run claimed with
 * store_claim_run, a paused flag, a cancel request, reset task instances,
 * a pool row) and wakes the schedulers on success (NOTIFY baram_wake on
 * PostgreSQL, else the home's doorbell, schedlock_ring), so a running
 * scheduler reads it at once. Nothing here prints: a failure
 * fills a struct ops_err with its kind (which the CLI turns into an exit
 * code and the API into an HTTP status), its code and a message for a
 * person (a struct err, base/err.h, which the store's calls fill directly)
 * and, where there is one, a did-you-mean.
 *
 * Any thread, one store per thread (store.h). Results and the error's other
 * texts are malloc'd and belong to the caller (ops_err_release,
 * ops_names_free).
 */
#ifndef BARAM_OPS_OPS_H
#define BARAM_OPS_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "base/compiler.h"
#include "base/err.h"
#include "dag/state.h"
#include "store/store.h"

struct store;

#define OPS_BACKFILL_MAX   10000
#define OPS_POOL_SLOTS_MAX 100000
#define OPS_RUN_ID_MAX     160

/* What went wrong; the CLI's exit code and the API's status follow from it. */
#define OPS_KIND_TABLE(X)                                                                          \
    X(OPS_OK, "ok")               /* no error */                                                   \
    X(OPS_NOT_FOUND, "not found") /* no such DAG, run or task: CLI 2, HTTP 404 */                  \
    X(OPS_BAD_INPUT, "bad input") /* bad params, range, name, slots: CLI 2, HTTP 400 */            \
    X(OPS_CONFLICT, "conflict")   /* the run's state forbids it: CLI 1, HTTP 409 */                \
    X(OPS_STORE, "store failed")  /* the database failed: CLI 1, HTTP 503 */                       \
    X(OPS_UNAVAILABLE, "DAG folder unreadable") /* CLI 2, HTTP 503 */

enum ops_kind {
#define X(name, text) name,
    OPS_KIND_TABLE(X)
#undef X
};

/* On the caller's stack (a struct err is 8.5 KiB), never kept in a longer-lived struct. */
struct ops_err {
    enum ops_kind kind;
    /* code: what the function returned (0: no failure); msg: one or more lines for a person
     * (no trailing newline), "" when there are none (the diagnostics say it all) */
    struct err err;
    char *diag;    /* owned: GCC-style diagnostic lines (each ending in '\n'), or NULL */
    char *detail;  /* owned: the same problems without file positions ("error: ...", one
                      line each, '; ' between), for clients that must not learn server
                      paths (the API), or NULL */
    char *suggest; /* owned: the did-you-mean (a DAG, run or task name), or NULL */
};

/* Frees the texts, empties err and sets kind back to OPS_OK. Safe on a zeroed struct. */
void ops_err_release(struct ops_err *e);
/* The kind's name ("not found"), static. */
const char *ops_kind_name(enum ops_kind k);
/* Prints e as the CLI does: each line of err.msg as "baram CMD: LINE", then diag as it is. */
void ops_err_print(const struct ops_err *e, FILE *f, const char *cmd);

/* Checks a run's conf: a JSON object whose values are strings, numbers or booleans. label
 * names it in messages ("--conf", "conf"). 0, or -EINVAL with e (OPS_BAD_INPUT; one line per
 * bad value). NULL is no conf. */
int ops_conf_check(const json_t *conf, const char *label, struct ops_err *e) WARN_UNUSED;
/* Parses conf text (may be NULL: *out NULL) into an object checked as above: 0 with *out
 * (owned) or -EINVAL with e. */
int ops_conf_parse(const char *text, const char *label, json_t **out,
                   struct ops_err *e) WARN_UNUSED;

/* A queued run. */
struct ops_run {
    char run_id[OPS_RUN_ID_MAX];
    int64_t logical_at_ms;
    bool paused; /* its DAG is paused: the run waits until it is unpaused */
};

/* Queues a manual run of dag_id, found in dags_folder (dagdir_scan), its params checked
 * against the DAG. conf: the params (an object, or NULL). logical_at_ms: -1 for now.
 * 0 and *out; or a negative errno with e: OPS_NOT_FOUND (no such DAG: a did-you-mean among
 * the folder's and the store's ids), OPS_BAD_INPUT (conf, params), OPS_UNAVAILABLE (folder),
 * OPS_STORE. */
int ops_trigger(struct store *s, const char *home_dir, const char *dags_folder, const char *dag_id,
                const json_t *conf, int64_t logical_at_ms, struct ops_run *out,
                struct ops_err *e) WARN_UNUSED;

/* The dates of a backfill, FROM <= T <= TO; the texts name them in messages (NULL: ISO). */
struct ops_range {
    int64_t from_at_ms, to_at_ms;
    const char *from_text, *to_text;
    size_t max_runs; /* the most runs it may queue (more: OPS_BAD_INPUT); 0: OPS_BACKFILL_MAX */
};

struct ops_backfill {
    char **run_ids; /* owned (ops_names_free), in date order */
    size_t nrun_ids;
    size_t skipped; /* dates that already had a scheduled or backfill run */
    bool paused;
    int64_t start_at_ms; /* the DAG's start when the range began before it (cut), else -1 */
    int64_t end_at_ms;   /* the DAG's end when the range went past it (cut), else -1 */
};

/* Queues one backfill run per fire time of the DAG's schedule within range (at most
 * OPS_BACKFILL_MAX), skipping dates that have a run. 0 and *out (ops_backfill_release), or
 * a negative errno with e: as ops_trigger, plus OPS_BAD_INPUT for no schedule, from > to,
 * too many dates, a range wholly before the DAG's start or after its end. A range partly
 * outside them is cut to them, and out->start_at_ms / end_at_ms say where. */
int ops_backfill(struct store *s, const char *home_dir, const char *dags_folder, const char *dag_id,
                 const json_t *conf, const struct ops_range *range, struct ops_backfill *out,
                 struct ops_err *e) WARN_UNUSED;
void ops_backfill_release(struct ops_backfill *b);

/* Pauses or unpauses dag_id (in the folder, or known to the store). 0, or a negative errno
 * with e: OPS_NOT_FOUND, OPS_UNAVAILABLE, OPS_STORE. */
int ops_set_paused(struct store *s, const char *home_dir, const char *dags_folder,
                   const char *dag_id, bool paused, struct ops_err *e) WARN_UNUSED;

/* This host's name as schedulers register it ("localhost" when it has none). */
void ops_hostname(char *buf, size_t n);
/* Whether a scheduler runs the home's runs: one holds the home's lock (schedlock.h), or, on
 * a store that schedulers on other homes and hosts share (PostgreSQL), one is registered as
 * active or draining with a heartbeat younger than dead_after_ms (scheduler.dead_after; by
 * the database's clock), not counting a row of this home (its lock is free: it died). A
 * registry that cannot be read counts as none. */
bool ops_scheduler_running(struct store *s, const char *home_dir, int64_t dead_after_ms);

struct ops_cancel {
    enum run_state state; /* RUN_CANCELLED, or the state it is still in when requested */
    bool requested;       /* handed to the scheduler, which has not confirmed it yet */
    bool direct;          /* no scheduler ran: cancelled here, in one transaction */
};

/* Cancels a queued or running run. With a scheduler running (ops_scheduler_running) it leaves a
 * request in the store, rings, and waits up to wait_ms for the run to end; with none it
 * writes the cancellation itself (the run ends now, running task instances and tries fail
 * with "cancelled", not started ones go back to none). 0 and *out, or a negative errno with
 * e: OPS_NOT_FOUND (did-you-mean among recent runs), OPS_CONFLICT (already ended, ended
 * otherwise meanwhile, or a foreground `baram run`), OPS_STORE. May sleep up to wait_ms. */
int ops_cancel(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
               int64_t wait_ms, struct ops_cancel *out, struct ops_err *e) WARN_UNUSED;

/* Cancels the run in the store, for a scheduler that holds it stopped (nothing runs): as
 * ops_cancel does without a scheduler. 0 (also when it had ended), or a negative errno with e. */
int ops_cancel_stored(struct store *s, const char *run_id, struct ops_err *e) WARN_UNUSED;

struct ops_clear {
    char **tasks; /* owned (ops_names_free): the cleared tasks, in topological order */
    size_t ntasks;
    size_t nrows;   /* task instances reset (0 when requested) */
    bool requested; /* the run is live: the scheduler clears them (see ops_clear) */
};

/* Makes run run task (and, with downstream, every task downstream of it) again, in the DAG
 * version the run started with. An ended run (or a live one without a scheduler): their
 * instances are reset and the run queued, in one transaction. A run the scheduler is running:
 * none of those instances may be in flight (OPS_CONFLICT); a request is left for the
 * scheduler, which stops starting the run's tasks, lets its tries in flight end, then clears
 * them and resumes the run (out->requested). 0 and *out (ops_clear_release), or a negative
 * errno with e: OPS_NOT_FOUND (run, task: did-you-mean), OPS_CONFLICT (an instance in flight,
 * a foreground `baram run`, the run's DAG version gone or no longer loading), OPS_STORE. */
int ops_clear(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
              const char *task, bool downstream, struct ops_clear *out,
              struct ops_err *e) WARN_UNUSED;
void ops_clear_release(struct ops_clear *c);
/* Whether a run request's kind asks for a clear (ops_clear's request): its task (a pointer
 * into kind) and downstream flag. */
bool ops_clear_request_parse(const char *kind, const char **task, bool *downstream);
/* The scheduler's side of a clear request (kind), once the run stands still: in one
 * transaction, resets the instances, deletes the request and sets the run running again (a
 * queued run stays queued), so a crash before it loses nothing and one after it repeats
 * nothing (a request already gone: 0, nothing done). 0 and *nrows; -ECANCELED when the run
 * was cancelled meanwhile (the request is deleted); or a negative errno with e (a request that
 * can never apply, its task or the run's version gone, is deleted too). A mark's request
 * (ops_mark_task, ops_mark_run) is applied here too, with *ended as ops_mark_request_parse
 * says. */
int ops_clear_apply(struct store *s, const char *run_id, const char *kind, size_t *nrows,
                    bool *ended, struct ops_err *e) WARN_UNUSED;

/* ---- mark (SPEC section 13) ---- */

struct ops_mark {
    char **tasks; /* owned (ops_names_free): the marked tasks, in topological order (a task's
                     mark; none for a run's) */
    size_t ntasks;
    size_t nrows;             /* task instances written (0 when requested) */
    bool requested;           /* the run is live: the scheduler applies it (see below) */
    enum run_state run_state; /* the run's state after it (as it was when requested) */
};
void ops_mark_release(struct ops_mark *m);

/* Marks task (and, with downstream, every task downstream of it) of run run_id success or
 * failed: each of its instances gets that state, whatever it was ("marked success" / "marked
 * failed"), a try still running is stopped and recorded failed. On a run the scheduler runs, a
 * request is left (lasting, like a clear's): the scheduler stops those tasks' tries, lets its
 * other tries in flight end, then applies the mark in one transaction and goes on (the run
 * ends when its leaves are done). An ended run (or a live one without a scheduler) is written
 * here, in one transaction; an ended run's state is left as it is. 0 and *out
 * (ops_mark_release), or a negative errno with e: OPS_BAD_INPUT (state), OPS_NOT_FOUND (run,
 * task: did-you-mean), OPS_CONFLICT (a foreground `baram run`, the run's version gone),
 * OPS_STORE. who (ops/audit.h; NULL: none) is recorded in the audit log in the same
 * transaction as the mark, or as its request. */
struct audit_who;
int ops_mark_task(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
                  const char *task, enum ti_state state, bool downstream,
                  const struct audit_who *who, struct ops_mark *out, struct ops_err *e) WARN_UNUSED;
/* Marks run run_id success or failed. A live run: its running tries are stopped, its
 * unfinished instances that started become the state (success or failed), those that did not
 * success (a success) or skipped (a failure, as Airflow does), and the run ends with the
 * state; through the scheduler as ops_mark_task when one runs it. An ended run: only its state
 * changes. 0 and *out, or a negative errno with e as ops_mark_task. */
int ops_mark_run(struct store *s, const char *home_dir, int64_t dead_after_ms, const char *run_id,
                 enum run_state state, const struct audit_who *who, struct ops_mark *out,
                 struct ops_err *e) WARN_UNUSED;
/* Whether a run request's kind is a mark (ops_clear_apply carries it out, with *ended true
 * when the run has ended after it: a run's mark, or a run that ended on its own meanwhile; the
 * scheduler does not take it on again). */
bool ops_mark_request_parse(const char *kind);
/* For a mark request: sets set[k] (dag's tasks) for each task whose tries it stops, true; not
 * a mark: false, set untouched. */
struct dag;
bool ops_mark_request_tasks(const struct dag *dag, const char *kind, bool *set);

/* ---- clear over a date range (`dags clear`, POST /dags/{dag}/clear) ---- */

struct ops_clear_range_opts {
    int64_t from_at_ms, to_at_ms;    /* logical dates, inclusive */
    const char *from_text, *to_text; /* as given, for messages */
    const char *task;                /* only this task (no downstream), or NULL: every task */
    bool only_failed;                /* only failed and upstream_failed instances */
    bool dry_run;                    /* say what would be cleared, change nothing */
    const struct audit_who *who;     /* records the clear in the audit log, in its
                                        transaction; NULL: not recorded */
};
struct ops_clear_range_run {
    char *run_id; /* owned */
    int64_t logical_at_ms;
    char **tasks; /* owned: the tasks cleared (or to clear), topological order */
    size_t ntasks;
    size_t nrows; /* task instances reset */
    bool skipped; /* the run has not ended: left alone (clear it with `tasks clear`) */
};
struct ops_clear_range {
    struct ops_clear_range_run *runs; /* oldest first */
    size_t nruns;
    size_t nrows;
};
void ops_clear_range_release(struct ops_clear_range *c);
/* Clears the ended runs of dag_id (known to the store) whose logical dates are in [from, to]
 * (every one, however many) so they run again, as `tasks clear` does each: the chosen
 * instances are reset and the runs queued again, all in one transaction with the audit row
 * (o->who). Runs not ended yet (or no longer, when the transaction reads them again) are
 * listed as skipped. 0 and *out (ops_clear_range_release), or a negative errno with e:
 * OPS_BAD_INPUT (from > to), OPS_NOT_FOUND (DAG, task: did-you-mean), OPS_STORE (nothing
 * was cleared, and the message says so). */
int ops_clear_range(struct store *s, const char *home_dir, const char *dag_id,
                    const struct ops_clear_range_opts *o, struct ops_clear_range *out,
                    struct ops_err *e) WARN_UNUSED;

/* {"dag", "dry_run", "runs": [{"run_id", "logical_date", "tasks", "task_instances",
 * "skipped"}], "task_instances"}: what `dags clear --json` prints and the API answers. */
json_t *ops_clear_range_json(const char *dag_id, const struct ops_clear_range *c, bool dry_run);

/* Checks a pool name ([A-Za-z0-9_.-], 1 to DAG_ID_MAX): 0 or -EINVAL with e. */
int ops_pool_check(const char *name, struct ops_err *e) WARN_UNUSED;
/* Sets the pool's slots (0..OPS_POOL_SLOTS_MAX). 0, or a negative errno with e:
 * OPS_BAD_INPUT, OPS_STORE. */
int ops_pool_set(struct store *s, const char *home_dir, const char *name, int64_t slots,
                 struct ops_err *e) WARN_UNUSED;

/* A pool as the scheduler sizes it. */
struct ops_pool {
    char *name; /* owned */
    int slots;
    const char *source;    /* "default", "config" (the home's baram.yaml) or "store" (set) */
    int64_t updated_at_ms; /* when it was set in the store, or -1 */
    struct pool_usage use; /* its task instances waiting for a slot, queued, running */
};
struct run_pool;
/* Every pool, sorted by name, sized as the scheduler sizes it: "default" with
 * SCHED_POOL_DEFAULT_SLOTS, then cfg (the home's `pools`), then the store's rows (`pools set`,
 * the API), each overriding the one before. The CLI's `pools list` and the API's GET /pools
 * both show this. s may be NULL (no database yet: nothing stored, nothing running). 0 and
 * *out (ops_pools_free), or a negative errno with e (OPS_STORE). */
int ops_pools_list(struct store *s, const struct run_pool *cfg, size_t ncfg, struct ops_pool **out,
                   size_t *n, struct ops_err *e) WARN_UNUSED;
void ops_pools_free(struct ops_pool *v, size_t n);
/* A pool as `pools list --json` and GET /api/v1/pools show it: {"name","slots","running",
 * "queued","scheduled","open","source"} (open: the slots neither queued nor running hold, 0 when
 * a smaller size left more in flight). A new reference. */
json_t *ops_pool_json(const struct ops_pool *p);

void ops_names_free(char **v, size_t n);
/* The error for a DAG id found neither in the folder's files nor loaded by the scheduler: a
 * did-you-mean among both, or the file it was loaded from when that now fails. -ENOENT. */
struct dagdir_file;
int ops_no_dag(struct store *s, const struct dagdir_file *files, size_t nfiles, const char *dir,
               const char *dag_id, struct ops_err *e);

#endif
