/*
 * run.h - runs of DAGs. Two ways in:
 *  - run_begin() starts (or resumes) a run on an engine (engine.h) that
 *    other runs share: the daemon's way. The run reports its end through a
 *    callback; the owner frees it then.
 *  - run_execute() runs one DAG to completion in the foreground on a loop
 *    and engine of its own, and returns when the run has ended (success,
 *    failed or cancelled) and every state change is durable: `baram run`.
 *    A manual run's id is manual__<ISO of now> (backfill__/scheduled__<ISO
 *    of the logical date> otherwise), one millisecond later when that id is
 *    already in the store.
 * Plus `baram tasks test` (run_task_test) and the helpers around params.
 *
 * run_begin & co: loop thread. run_execute, run_task_test: the main thread;
 * they block until done.
 */
#ifndef BARAM_SCHED_RUN_H
#define BARAM_SCHED_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "dag/state.h"

struct dag;
struct diag;
struct engine;
struct err;
struct notifier;
struct params_override;
struct run;
struct ti_rec;

/* A snapshot for progress displays, passed on every task instance state change. */
struct run_progress {
    uint32_t total;   /* task instances known so far (grows as mapped tasks expand) */
    uint32_t done;    /* finished: success, failed, skipped, upstream_failed */
    uint32_t running; /* queued or running */
    uint32_t failed;  /* failed or upstream_failed */
    int64_t elapsed_ms;
    const char *task_id;            /* the instance that changed (borrowed for the call) */
    enum ti_state state;            /* its new state */
    const char *const *running_ids; /* up to 8 running instance ids (borrowed for the call) */
    size_t nrunning_ids;
};

typedef void (*run_progress_fn)(void *ud, const struct run_progress *p);

/* The size of a named pool (SPEC section 4, `pools`); a pool not listed has 128 slots. */
struct run_pool {
    const char *name; /* borrowed */
    int slots;        /* >= 0 */
};

struct run_opts {
    const struct dag *dag;                /* borrowed for the call */
    const char *store_url;                /* the database (see store_open) */
    const char *home;                     /* BARAM_HOME: logs go to HOME/logs/... */
    const struct params_override *params; /* overrides of the DAG's params (checked, see below) */
    size_t nparams;
    int64_t logical_at_ms; /* the logical date; the run id is manual__<ISO of now> */
    enum run_type type;
    int parallelism;                  /* > 0 */
    int http_max_per_host;            /* requests in flight per host; <= 0: the default (16) */
    const struct notifier *notifiers; /* notify: baram.yaml's (borrowed) */
    size_t nnotifiers;
    const char *public_url;   /* api.public_url (borrowed), or NULL */
    run_progress_fn progress; /* may be NULL; called on the loop thread */
    void *progress_ud;
    bool handle_signals; /* SIGINT/SIGTERM, and SIGHUP unless ignored, cancel the run */
    /* false (the default): a finished task's downstream starts at once, while the store
     * commits its final state in the background (pipelined). The store still only ever holds
     * a prefix of the run's history, since changes commit in the order they happened, so
     * recovery always sees a consistent state. true: the downstream waits until that final
     * state is durable, so after a crash no task can have started on an upstream result the
     * store lost; costs one commit (an fsync on disk) per step of a chain. */
    bool gate_on_durable;
    const struct run_pool *pools; /* may be NULL */
    size_t npools;
};

struct run_result {
    char run_id[160]; /* "" when run_execute failed before claiming one */
    enum run_state state;
};

/* A run on a shared engine. */
typedef void (*run_ended_fn)(void *ud, struct run *r);

/* A try of a resumed run that a worker has (or will have). */
struct run_inflight {
    const char *task_id;
    int try_number;
};

struct run_spec {
    const struct dag *dag; /* borrowed for the run's life */
    const char *run_id;    /* already claimed in the store (copied) */
    enum run_type type;
    int64_t logical_at_ms;
    int64_t queued_at_ms;                 /* -1: now */
    int64_t started_at_ms;                /* -1: now; a resumed run keeps its first start */
    const char *conf;                     /* JSON of the overrides, or NULL (copied) */
    const struct params_override *params; /* checked overrides (copied) */
    size_t nparams;
    const char *owner; /* NULL (the scheduler) or "cli" (copied) */
    /* Resuming: the run's stored task instances (copied); NULL/0 for a new run. */
    const struct ti_rec *tis;
    size_t ntis;
    /* Resuming: the scheduler the run was taken from when it was declared dead
     * (store_lost_scheduler), named in the message of the try it had in flight; NULL: none. */
    const char *lost_sched;
    /* Resuming on PostgreSQL: the tries of the run still in the workers' queue, adopted by
     * this scheduler (store/wq.h wq_adopt): in flight, their results awaited, never counted
     * as failed nor started again. */
    const struct run_inflight *inflight;
    size_t ninflight;
    run_progress_fn progress; /* may be NULL */
    void *progress_ud;
    /* depends_on_past (a DAG with uses_past): the previous run of the DAG by logical date
     * (NULL: none, the first run) and its task instances as read (run_past_read; copied). */
    const char *past_run_id;
    bool past_ended; /* it had ended when read: its instances are final */
    const struct ti_rec *past_tis;
    size_t npast_tis;
    bool deadline_fired; /* notify: resuming a run whose deadline already fired (stored) */
    /* vars: the variables the DAG's templates read (run_vars_read, off the loop), or NULL
     * when none were read. run_begin takes them, whether the run starts or not. */
    struct run_vars *vars;
};

/* vars: the variables one run reads ({{ var.KEY }}), secrets decrypted. */
struct run_vars;
struct store;
/* Reads the n variables keys (a DAG's var_keys) from s, each secret decrypted with the key of
 * home: never fails, what cannot be read is kept to fail the try that reads it. Free with
 * run_vars_free unless handed to run_begin. The thread of s, never the loop: it reads the
 * store and the key file. */
struct run_vars *run_vars_read(struct store *s, const char *home, const char *const *keys,
                               size_t n);
void run_vars_free(struct run_vars *rv);

/* The previous run of a DAG (by logical date) as depends_on_past looks at it. */
struct run_past {
    char *run_id;       /* owned; NULL: none */
    bool ended;         /* it had ended when read */
    struct ti_rec *tis; /* owned */
    size_t ntis;
};
struct store;
/* Reads the run before run_id (logical date logical_at_ms) of dag_id, any type, and its task
 * instances: 0 (out->run_id NULL when there is none), or a negative code with *e. Release out.
 * The thread of s. */
int run_past_read(struct store *s, const char *dag_id, const char *run_id, int64_t logical_at_ms,
                  struct run_past *out, struct err *e) WARN_UNUSED;
void run_past_release(struct run_past *p);

/* notify: sends again the deliveries v (n; borrowed) a dead scheduler left 'pending' for a
 * resumed run (at least once: the receiver may get a message twice). Loop thread. */
struct delivery_rec;
void run_resend(struct run *r, const struct delivery_rec *v, size_t n);

/* Starts the run: its first decisions are made before this returns. 0 and *out, or a
 * negative code with *err filled: the run did not start. ended(ud, run) is called on the
 * loop once the run has ended, its end is durable and its hooks have run; free it then. */
int run_begin(struct engine *e, const struct run_spec *spec, run_ended_fn ended, void *ud,
              struct run **out, struct err *err) WARN_UNUSED;
/* Cancels: nothing new starts, running tries are killed, the run ends 'cancelled'. */
void run_cancel(struct run *r);
/* Stops the run without ending it (a daemon shutting down): nothing new starts, tries still
 * in flight are killed (SIGKILL), and nothing more is recorded, so the store keeps the run as
 * it stood ('running') for the next scheduler to resume. The ended callback comes as usual. */
void run_halt(struct run *r);
/* Drains the run for a change to its stored records (a clear): nothing new starts (what
 * waits for a slot is taken back), the tries in flight end and are recorded as usual, and
 * once none is left and every record is durable the run halts (run_halt, nothing to kill),
 * so the store holds it exactly as it stood. The ended callback comes as usual; if the run
 * ended on its own meanwhile, it ended. */
void run_drain(struct run *r);
/* Kills the tries in flight of the tasks marked in set (indexed by the run's DAG's tasks;
 * NULL: every task), as a cancel does, for a run draining before its records are changed (a
 * mark): they end and are recorded as usual. */
void run_stop_tasks(struct run *r, const bool *set);
/* Tries in flight. */
size_t run_in_flight(const struct run *r);
/* Frees a run that has ended (or, at shutdown, one whose loop is done). */
void run_free(struct run *r);
const char *run_get_id(const struct run *r);
const struct dag *run_get_dag(const struct run *r);
enum run_state run_get_state(const struct run *r);
/* Why the run failed for a reason of baram's (the store), or NULL. */
const char *run_get_error(const struct run *r);
bool run_get_ended(const struct run *r);

/* What every try of a run carries in its environment, "BARAM_DAG=<dag_id>" and
 * "BARAM_RUN_ID=<run_id>": the tags that find the tries a dead scheduler left
 * (exec/orphans.h). tags[0..RUN_ENV_NTAGS-1] are malloc'd. Any thread. */
#define RUN_ENV_NTAGS 2
void run_env_tags(const char *dag_id, const char *run_id, char *tags[RUN_ENV_NTAGS]);

/* The entries of d as one message (lines), malloc'd. */
char *run_diag_msg(struct diag *d);

/* Runs the DAG to completion. 0 with *res filled (res->state says how it ended), or a negative
 * code with *e filled: the run could not start (store unreachable, bad params; res->state is
 * RUN_FAILED), or ERR_DB when the store failed for good during the run (res->state says how it
 * ended). */
int run_execute(const struct run_opts *o, struct run_result *res, struct err *e) WARN_UNUSED;

/* How a `baram tasks test` try ended. */
struct run_test_result {
    bool ok;       /* succeeded (or skipped) */
    bool skipped;  /* exit code 99 */
    int exit_code; /* the process's; -1 when none (http, wait, killed by a signal) */
    char *message; /* owned: why it failed, as `baram run` says it ("exit code 3", "timed out
                      after 2s", "expected status 2xx, got 503", ...); NULL when ok */
    char *output;  /* owned: an http task's response body (at most 64 KiB), or NULL */
    size_t output_len;
};
void run_test_result_release(struct run_test_result *res);

/* `baram tasks test`: runs one task now, outside any run and without the store (outputs of
 * upstream tasks are empty): a process with this process's stdout/stderr, or an http request
 * or a wait on a loop of its own (http_max_per_host: requests in flight per host, <= 0 the
 * default). 0 with *res filled (release it), or a negative code with *e filled when it could
 * not start. Blocks until the task ends; SIGINT/SIGTERM/SIGHUP end it. */
int run_task_test(const struct dag *dag, uint32_t task, const struct params_override *params,
                  size_t nparams, int64_t logical_at_ms, int http_max_per_host,
                  struct run_test_result *res, struct err *e) WARN_UNUSED;

#endif
