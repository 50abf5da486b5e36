/*
 * run_int.h - the inside of the run module, shared by the files that make it
 * up and by nothing else: engine.c (what the runs on one loop share: the
 * writer, the ready queue, the pump), run.c (the run's course: decisions,
 * Kahn's counters, replay, ending, cancelling, halting, begin and free),
 * runtry.c (tries: starting a process, an HTTP request or a wait, their
 * completion, retries, log folders), runenv.c (templates and environments),
 * runexec.c (`baram run`) and runtest.c (`baram tasks test`). Other layers
 * see struct engine and struct run only as opaque pointers (engine.h,
 * run.h). The functions the files share are named run__* (engine__* for
 * engine.c's), each documented below. Nothing outside src/sched/engine.c and
 * src/sched/run*.c includes it.
 *
 * Loop thread only (see run.c).
 */
#ifndef BARAM_SCHED_RUN_INT_H
#define BARAM_SCHED_RUN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/hmap.h"
#include "base/pctl.h"
#include "base/vec.h"
#include "dag/dag.h"
#include "dag/state.h"
#include "exec/httptask.h"
#include "exec/spawn.h"
#include "exec/waiter.h"
#include "sched/engine.h"
#include "sched/run.h"
#include "sched/sched.h"
#include "sched/trigger.h"

struct template;
struct spawn;
struct spawn_result;
struct httptask;
struct waiter;
struct engine;
struct admit;

extern char **environ;

/* ---- the engine (engine.h) ---- */

/* An instance held back by a full gate (runconc.c). */
struct engine_gate_wait {
    struct run *r;
    uint32_t inst;
};

/* A limit across runs: "dag:<id>" (max_active_tasks) or "task:<dag>.<task>" (max_active). */
struct engine_gate {
    char *name; /* owned */
    int limit;  /* from the DAG of the last instance that took it */
    int used;   /* instances holding it: ready for a slot, or with a try in flight */
    VEC(struct engine_gate_wait) wait; /* FIFO, from wait_head */
    size_t wait_head;
};

struct engine_pend {
    struct run *r;
    uint32_t inst;
    int64_t due_ms; /* monotonic: its records go then (ENGINE_RUNNING_DELAY_MS after) */
};

struct engine {
    uv_loop_t *loop;
    char *store_url;
    char *home;
    struct store_writer *w;
    struct sched sched;
    struct admit *admit;   /* owned: pools across schedulers (engine_opts.fence_id), or NULL */
    struct remote *remote; /* owned: tries run by workers (engine_opts.remote), or NULL */
    int64_t sched_id;      /* engine_opts.fence_id */
    struct httptask_client *http; /* made on the first http or wait task */
    int http_max_per_host;        /* its limit per host (engine_opts) */
    bool gate_on_durable;
    bool prep_on;  /* make log files ahead (not on a memory file system) */
    char *scratch; /* owned: where tries write $BARAM_OUTPUT (logpath.h), or NULL: beside the log */
    char *scratch_mark;   /* owned: this engine's file in scratch while it is set (engine.c) */
    bool scratch_refused; /* the last check refused it (warned once) */
    uint64_t durable;
    int cork;
    struct run *runs; /* live runs (run.c links them) */
    VEC(struct run *) dirty;
    VEC(struct run *) touched;
    bool pumping;
    VEC(struct engine_pend) pend; /* instances whose 'running' records wait, by due_ms */
    uv_timer_t rec_timer;
    VEC(struct run *) ended; /* to report from ended_timer */
    uv_timer_t ended_timer;
    engine_error_fn on_error;
    void *ud;
    bool failed;
    bool stopping;
    int open_handles;
    /* notify: the notifiers (copied from engine_opts) and their sender, made with the first
     * delivery; engine_stop waits for the deliveries in flight when wait_notify is set */
    struct notifier *notifiers;
    size_t nnotifiers;
    struct notify *ns;
    char *public_url;
    bool wait_notify;
    bool stop_pending; /* engine_stop waits for ns to settle */
    engine_stopped_fn stopped;
    void *stopped_ud;
    struct pctl latency; /* ready -> process started, of the last tries */
    /* conc (runconc.c): run timeouts, limits across runs, depends_on_past */
    VEC(struct run *) tmo;         /* min-heap of runs with a run_timeout, on timeout_at_ms */
    uv_timer_t tmo_timer;          /* fires at the heap's first */
    VEC(struct engine_gate) gates; /* max_active_tasks / max_active counters */
    struct hmap gate_by_name;      /* gate name -> index; keys borrowed from gates */
    int npast;                     /* live runs with instances waiting on depends_on_past */
};

#define RUN_CMD_MAX      (1024 * 1024) /* bytes of an expanded command */
#define RUN_PROGRESS_IDS 8
/* Ignores a result on purpose (a cast to void does not silence warn_unused_result). */
#define RUN_IGN(x)                                                                                 \
    do {                                                                                           \
        if (x) {                                                                                   \
        }                                                                                          \
    } while (0)

struct run_task {
    uint32_t inst_start; /* first instance (instances of a task are contiguous) */
    uint32_t ninst;      /* 0 until expanded */
    uint32_t ndone;      /* instances finished */
    struct trigger_counts cnt;
    uint32_t pool; /* sched pool index */
    bool expanded;
    bool decided;
    bool complete;    /* every instance finished */
    bool queued_eval; /* on the worklist */
    char *out_json;   /* owned: mapped task's outputs as a JSON array, once complete */
    size_t out_json_len;
    char *out_file; /* owned: where its output was written for downstreams (runenv.c), or NULL */
    char *env_name; /* owned: "OUTPUT_<NAME>" */
    /* conc: the engine's gates it takes (UINT32_MAX: none) and depends_on_past */
    uint32_t gate_dag, gate_task;
    bool gated;     /* one of the gates is set */
    bool past_wait; /* depends_on_past not met yet: its ready instances wait */
    uint8_t prep;   /* RUN_PREP_*: its log folder and 1.log made ahead (unmapped tasks) */
    bool prep_drop; /* remove what the preparation makes: the task will not run */
};

enum { RUN_PREP_NONE, RUN_PREP_BUSY, RUN_PREP_DONE };

struct run_inst {
    uint32_t task;
    int admit_try;     /* the try a pool slot of the database was granted to (admit.h), or 0 */
    int32_t map_index; /* -1 when not mapped */
    enum ti_state state;
    int try_number;
    int max_tries;
    int exit_code;
    int term_signal;
    bool timed_out;
    bool slot_held;   /* the try holds a parallelism/pool slot (wait tasks give it back) */
    bool rec_pending; /* its 'running' records are not submitted yet (see run__flush_running) */
    bool stopping;    /* its try is killed for a mark (run_stop_tasks): its end decides nothing */
    char *id;         /* owned when mapped (or placeholder), else NULL: the task's name */
    char *item;       /* owned, mapped only */
    char *output;     /* owned, may be NULL */
    size_t output_len;
    char *message;    /* owned, may be NULL */
    char *worker;     /* owned: the worker running the current try (its results), or NULL */
    uint32_t run_pos; /* index in run->running while a try is in flight */
    int64_t scheduled_at_ms, queued_at_ms, started_at_ms, ended_at_ms, try_started_at_ms;
    int pid;
    int32_t restore_idx; /* its stored record when resuming (index in run.restore), or -1 */
    bool gate_held;      /* it holds its task's gates (runconc.c) */
    bool past_held;      /* ready, waiting for depends_on_past (runconc.c) */
    int64_t ready_ns;    /* monotonic time it last became ready: its upstream met (and its
                            claim durable, when gated), or its retry delay over (latency) */
    struct run_try *cur; /* the try in flight, or NULL */
};

/* One try in flight: the context the executors call back with. */
struct run_try {
    struct run *r;
    uint32_t inst;
    struct spawn *sp;    /* owned by spawn.c until its callback */
    char *log_path;      /* owned */
    char *out_path;      /* owned: $BARAM_OUTPUT of a `run` try, else NULL */
    bool out_scratch;    /* out_path is in the scratch folder: removed with the try */
    struct httptask *ht; /* http task in flight, owned by httptask.c until its callback */
    struct waiter *wt;   /* wait task in flight, owned by waiter.c until its callback */
    bool remote;         /* run by a worker (remote.c): none of the above is set */
    bool kill_sent;      /* remote: its kill request (or withdrawal) is on its way */
};

/* How a try ended, whatever its kind. */
struct run_try_end {
    int exit_code;   /* 0 success, 99 skip, other: failed; -1 none (killed by a signal, or an
                        http or wait try: no process ran, SPEC section 7) */
    bool met;        /* an http or wait try succeeded (it has no exit code) */
    int64_t hold_ms; /* refused by an open circuit breaker: its retry waits at least this */
    int term_signal;
    bool timed_out;
    bool killed;
    char *output; /* steals: malloc'd or NULL */
    size_t output_len;
    char *message; /* steals: malloc'd or NULL */
};

struct run_retry {
    uv_timer_t timer;
    struct run *r;
    uint32_t inst;
    int64_t due_ns; /* monotonic: the delay is over (the timer may fire a little early) */
    struct run_retry *prev, *next; /* the run's list of open retry timers */
};

/* A claimed try (see run__sched_start): it starts once the writer reports seq durable. */
struct run_gate {
    uint64_t seq;
    uint32_t inst;
};

enum run_phase { RUN_PH_RUNNING, RUN_PH_ENDING, RUN_PH_HOOK, RUN_PH_STOPPING, RUN_PH_DONE };

/* A stored instance to replay when resuming (see the design note above). */
struct run_restore {
    enum ti_state state;
    int try_number;
    int max_tries;
    int exit_code;
    char *output; /* owned */
    size_t output_len;
    char *message; /* owned */
    int64_t scheduled_at_ms, queued_at_ms, started_at_ms, ended_at_ms;
    bool inflight; /* its try is still in the workers' queue (adopted): wait for its result */
};

struct run {
    struct engine *e;                  /* NULL for run_task_test */
    struct run *live_prev, *live_next; /* the engine's live runs */
    const struct dag *dag;             /* borrowed */
    enum run_type type;
    int64_t logical_at_ms;
    char *owner; /* owned: NULL (the scheduler) or "cli" */
    run_progress_fn progress;
    void *progress_ud;
    run_ended_fn ended;
    void *ended_ud;
    bool dirty, touched;
    int nprep_busy;      /* log preparations in flight (they hold a pointer to the run) */
    char **owned_params; /* owned copies of the overrides' values */
    size_t nowned_params;
    struct run_restore *restore; /* owned, when resuming */
    size_t nrestore;
    struct hmap restore_by_id; /* task instance id -> index in restore (keys borrowed? owned) */
    char **restore_ids;        /* owned keys */
    char run_id[160];
    char ds[16];
    char ts[32];
    char *logdir;              /* owned: HOME/logs/<dag>/<run_id> */
    const char **param_values; /* per dag param: override or default (borrowed) */
    struct run_task *tasks;    /* owned, dag->ntasks */
    VEC(struct run_inst) insts;
    VEC(uint32_t) running;      /* instances with a try in flight */
    VEC(uint32_t) work;         /* tasks to (re)decide */
    VEC(uint32_t) readied;      /* instances made ready during this event */
    VEC(uint32_t) prepped;      /* tasks whose log folder was prepared (see logprep.h) */
    VEC(struct run_gate) gates; /* claimed tries waiting for their record to be durable (FIFO) */
    size_t gates_head;
    uint64_t last_seq;
    uint32_t ntasks_complete;
    uint32_t ndone, nfailed;
    int nretry_timers;         /* open retry timer handles */
    struct run_retry *retries; /* their list */
    bool cancelled;
    bool fatal;
    char *fatal_msg; /* owned */
    enum run_phase phase;
    enum run_state state;
    uint64_t end_seq;
    int64_t started_at_ms, ended_at_ms, queued_at_ms;
    int64_t started_mono_ms;
    /* environment */
    VEC(char *) base_env;          /* parent's (filtered, borrowed) + run constants (owned) */
    VEC(char *) owned_env;         /* the owned strings of base_env */
    VEC(char *) dag_env;           /* owned "K=V" of the DAG's env, appended last */
    struct hmap dag_env_names;     /* keys borrowed from dag */
    char *env_tags[RUN_ENV_NTAGS]; /* owned: run_env_tags, last in every try's environment */
    char *conf;                    /* owned JSON of the overrides, or NULL */
    struct run_vars *vars;         /* vars: owned, when the DAG reads {{ var.KEY }} */
    struct spawn *hook;            /* while the hook runs */
    bool halted;                   /* run_halt: stops without recording anything more */
    bool draining;  /* run_drain: nothing new starts; halts once nothing is in flight */
    bool no_pump;   /* while run_abort ends tries: their callbacks must not pump */
    char *hook_log; /* owned */
    /* conc (runconc.c) */
    int64_t timeout_at_ms; /* wall clock: run_timeout reached; -1: none */
    int32_t tmo_pos;       /* index in engine.tmo, or -1 */
    bool timed_out;        /* failed by its run_timeout: killed tries say "run timed out" */
    char *past_run_id;     /* owned: the previous run by logical date (depends_on_past), or NULL */
    bool past_live;        /* counted in engine.npast */
    /* notify (runhook.c): task hooks' processes, the run's end waiting for them, deadline */
    struct run_hookproc *hookprocs;
    int nhookprocs;
    bool end_after_hooks;
    struct run_deadline *deadline;
    char *url; /* owned: the run's page in the UI (engine_opts.public_url), or NULL */
};

typedef VEC(char *) run_strv;

/* ---- small helpers ---- */

/* Instance ii of the run (ii < r->insts.n). The pointer moves when an instance is added. */
static inline struct run_inst *run__inst_at(struct run *r, uint32_t ii)
{
    return &r->insts.v[ii];
}

/* The instance's id: its task's name, or "<task>[<map_index>]" for a mapped one (borrowed). */
static inline const char *run__inst_id(const struct run *r, const struct run_inst *in)
{
    return in->id ? in->id : r->dag->tasks[in->task].name;
}

/* ---- run.c: the run's course ---- */

/* Around each event: the changes it makes reach the writer as one batch (one commit). No-ops
 * without an engine (run_task_test). */
void run__cork(struct run *r);
void run__uncork(struct run *r);
/* The run has something to decide: the next engine_pump does it. */
void run__mark(struct run *r);
/* After an event of this run: mark it and pump the engine. */
void run__pump(struct run *r);
/* Submits instance ii's task instance record to the writer: its sequence number, or 0 when
 * nothing is recorded (no engine or writer: run_task_test). */
uint64_t run__put_ti(struct run *r, uint32_t ii);
/* Submits the record of instance ii's current try, in state st (ended at ended_at_ms, or -1
 * while it runs): its sequence number, or 0 as for run__put_ti. */
uint64_t run__put_try(struct run *r, uint32_t ii, enum ti_state st, int64_t ended_at_ms);
/* Tells the run's progress callback (if any) that instance ii changed state. */
void run__progress(struct run *r, uint32_t ii);
/* Appends an instance of task (map_index -1 when not mapped; item steals a malloc'd string
 * or NULL) in state none: its index. */
uint32_t run__add_inst(struct run *r, uint32_t task, int32_t map_index, char *item);
/* Instance ii's upstream is met: it is scheduled and pushed on the ready queue (or replayed
 * from its stored record when resuming; left for later while the run drains). */
void run__ready(struct run *r, uint32_t ii);
/* An instance reached a finished state (its record is submitted): updates its downstream's
 * counts and puts them on the worklist. */
void run__finish_inst(struct run *r, uint32_t ii);
/* The run is over (records durable, hooks done): once no log preparation holds it, its
 * owner hears of it. */
void run__stop(struct run *r);
/* Frees everything the run owns but the struct itself (run_free, run_task_test). */
void run__release(struct run *r);
/* A halted run ends once its killed tries, retry timers and hook have reported. */
void run__halt_check(struct run *r);

/* ---- runenv.c: templates, environments, param values ---- */

/* "OUTPUT_" / "PARAM_" + NAME upper-cased, non-alphanumerics as '_'; malloc'd. */
char *run__env_name(const char *prefix, const char *name);
/* Expands template t for instance in of task (in NULL for hooks and for_each; task
 * UINT32_MAX for hooks) into out: 0, or a negative code with *msg (malloc'd) saying why. */
int run__expand(struct run *r, const struct template *t, struct run_inst *in, uint32_t task,
                struct buf *out, char **msg);
/* The entries of d as one message in *e, as run_diag_msg makes it (one line each), but whole
 * lines only: past ERR_MSG_MAX the rest are counted, "(N more not shown)". Returns code. */
int run__diag_err(struct diag *d, int code, struct err *e);
/* Builds the environment every try of the run starts from (base_env, dag_env), once the
 * run's ids, dates and param values are set. */
void run__env_init(struct run *r, struct run_vars *vars, const char *vars_missing);

/* ---- runvars.c: {{ var.KEY }} (vars) ---- */
/* Takes vars (read by run_vars_read; may be NULL) when the DAG reads some (dag->uses_vars),
 * else frees them; NULL makes every read fail with missing. */
void run__vars_load(struct run *r, struct run_vars *vars, const char *missing);
void run__vars_release(struct run *r);
/* 0 with the value; TEMPLATE_ENV_REF with the name of the secret's variable when shell (a
 * command: the value goes in its environment); -ENOENT. */
int run__var_lookup(struct run *r, const char *key, bool shell, const char **val, size_t *vlen);
/* Why var.KEY cannot be read (malloc'd), for the try that failed on it. */
char *run__var_problem(struct run *r, const char *key);
/* Pushes "BARAM_VAR_<KEY>=value" of each secret (borrowed from the run) onto env. */
void run__vars_env(struct run *r, run_strv *env);
/* The secrets' values to mask in the run's logs (borrowed): their number. */
size_t run__vars_mask(const struct run *r, const char *const **vals, const size_t **lens);
/* Frees what run__env_init made. */
void run__env_release(struct run *r);
/* The environment of one try of instance in: the run's, its try's names, OUTPUT_<UP> (or
 * OUTPUT_<UP>_FILE, written under out_path's folder), the DAG's env and the task's (which wins
 * over every other value of its names), sized to fit exec with a command of cmd_len bytes;
 * NULL-terminated in *env, the strings made in *owned. 0, or a negative code with *msg
 * (malloc'd). Free with run__env_try_release in both cases. */
int run__env_try(struct run *r, struct run_inst *in, const char *out_path, size_t cmd_len,
                 run_strv *env, run_strv *owned, char **msg);
/* The environment of the run's hook (on_success, on_failure): baram's own less every BARAM_*
 * (as a try's), then BARAM_DAG, BARAM_RUN_ID, BARAM_RUN_STATE, BARAM_DS and the DAG's env,
 * NULL-terminated in *env; the strings made are in *owned. Free with run__env_try_release. */
struct notify_facts;
void run__env_hook(struct run *r, const struct notify_facts *f, run_strv *env, run_strv *owned);
/* Frees what run__env_try or run__env_hook made. */
void run__env_try_release(run_strv *env, run_strv *owned);
/* Sets r->param_values: the DAG's params with the overrides applied (dag/params.h), the run
 * keeping its own copies of the overrides' values. */
void run__params_init(struct run *r, const struct params_override *params, size_t nparams);

/* ---- runtry.c: tries ---- */

/* Appends the line msg to the log file at path (NULL: nothing), ignoring failures. */
void run__log_append(const char *path, const char *msg);
/* vars: the same with every one of the n values masked as *** (exec/mask.h). */
void run__log_append_masked(const char *path, const char *msg, const char *const *vals,
                            const size_t *lens, size_t n);
/* vars: the same with the values of the secrets run r read masked (a hook's own lines). */
void run__log_append_run(const struct run *r, const char *path, const char *msg);
/* Starts a process on loop (the run's, or `tasks test`'s own) after spawn_check: 0 and *out,
 * or a negative code with *msg (malloc'd) for the try's log and message, the same for a run
 * and a test. */
int run__spawn(uv_loop_t *loop, const struct spawn_opts *so, spawn_exit_fn cb, void *ud,
               struct spawn **out, char **msg);

/* How a run, an http or a wait try is started and read back; shared by the scheduler
 * (runtry.c) and `baram tasks test` (runtest.c), so both say the same things. */

/* Why a process try failed ("exit code 3", "killed by signal 9 (Killed)", "timed out after
 * 2s"), malloc'd; NULL when it succeeded or skipped. */
char *run__exit_message(const struct spawn_result *res, int64_t timeout_ms);
/* Reads a try's $BARAM_OUTPUT file (at most DAG_OUTPUT_MAX bytes): 0 (*out malloc'd, NULL
 * when there is no file), or -1 with *msg (malloc'd) when it is over the limit. Any thread. */
int run__read_output(const char *path, char **out, size_t *len, char **msg) WARN_UNUSED;

/* An http try's request, its URL and body expanded for instance in. */
struct run_http_call {
    struct buf url, body;
    struct httptask_header *headers; /* owned array; the strings borrowed from the DAG */
    struct httptask_req req;         /* points into url, body, headers and the DAG */
    char *line;                      /* owned: "METHOD URL" for the log, secrets redacted */
};
/* 0, or -EINVAL with *msg (malloc'd). Release hc in both cases. */
int run__http_call_init(struct run *r, struct run_inst *in, struct run_http_call *hc,
                        char **msg) WARN_UNUSED;
/* Frees what run__http_call_init made. */
void run__http_call_release(struct run_http_call *hc);
/* Fills e from a finished request (e's strings malloc'd); returns the log line (malloc'd). */
char *run__http_end(const struct httptask_result *res, struct run_try_end *e);

/* A wait try's condition, expanded for instance in (a relative file joined to the DAG's
 * folder). */
struct run_wait_call {
    struct buf what;
    char *file;              /* owned, or NULL */
    char *line;              /* owned: "waiting for file '...'" for the log */
    struct waiter_opts opts; /* points into what, file and the DAG */
};
/* 0, or -EINVAL with *msg (malloc'd). Release wc in both cases. */
int run__wait_call_init(struct run *r, struct run_inst *in, struct run_wait_call *wc,
                        char **msg) WARN_UNUSED;
/* Frees what run__wait_call_init made. */
void run__wait_call_release(struct run_wait_call *wc);
/* Fills e from a finished wait (e's strings malloc'd); returns the log line (malloc'd). */
char *run__wait_end(const struct waiter_result *res, struct run_try_end *e);

/* Log folders made ahead (logprep.h): */
/* The unmapped process task t will not run after all: remove what was prepared for it. */
void run__prep_drop(struct run *r, uint32_t t);
/* logprep's callback for one task's preparation (ud: its context; rc 0 when made). */
void run__prep_done(void *ud, int rc);
/* Queues the making of task t's log folder and 1.log when it is an unmapped process task that
 * has not started: called while its last upstream runs or while it waits for a slot. */
void run__prep(struct run *r, uint32_t t);
/* The run is over: remove what was prepared for tasks that never started. */
void run__prep_cleanup(struct run *r);

/* Submits the 'running' records of instance ii's current try if they are still pending. */
void run__flush_running(struct run *r, uint32_t ii);
/* The close callback of a retry timer: unlinks and frees it, then checks a halted run's end
 * (run__halt_check) or pumps the run. */
void run__retry_closed(uv_handle_t *h);
/* Starts the try instance ii has claimed (state queued, holding a slot). */
void run__try_start(struct run *r, uint32_t ii);
/* Ends a claimed try that never started, as if killed: the run is cancelled, failed or
 * halted (run_abort, run_halt). */
void run__claim_end(struct run *r, uint32_t ii);
/* The instance (up_for_retry) is made ready again after delay_ms. */
void run__retry_after(struct run *r, uint32_t ii, int64_t delay_ms);
/* The try tr (in flight) is over: decides what e means (taking its strings), frees tr, pumps
 * and closes the event's transaction, which the caller opened with run__cork. */
void run__try_finish(struct run_try *tr, struct run_try_end *e);
/* Instance ii's try (claimed, no executor holds it) fails at once with msg (taken). */
void run__try_fail_now(struct run *r, uint32_t ii, char *msg);

/* ---- remote.c: tries run by workers (remote.h) ---- */

/* Hands instance ii's claimed try (durable, state queued) to the workers' queue: it stays
 * 'queued' until a worker's 'running' result arrives. */
void run__remote_start(struct run *r, uint32_t ii);
/* Asks for instance ii's remote try to end (cancel): withdrawn if no worker claimed it yet
 * (it ends killed then), else its worker is told to kill it and reports. */
void run__remote_kill(struct run *r, uint32_t ii);
/* Resuming: instance ii's try is in the workers' queue already (adopted): it is in flight. */
void run__remote_adopt(struct run *r, uint32_t ii);
/* Halting: instance ii's remote try is left to the next scheduler, nothing recorded. */
void run__remote_forget(struct run *r, uint32_t ii);

/* ---- runconc.c: run_timeout, max_active_tasks / max_active, depends_on_past ---- */

/* Arms the run's timeout (run_timeout from its stored start); nothing without one. */
void engine__timeout_arm(struct engine *e, struct run *r);
/* The run is freed or has ended: its timeout is dropped. */
void engine__timeout_forget(struct engine *e, struct run *r);
/* The run's timeout passed: the run fails, its tries are stopped (run.c). */
void run__time_out(struct run *r);
/* Sets r->tasks[t].gate_dag / gate_task from the DAG's limits (run_tasks_init). */
void engine__gates_init(struct engine *e, struct run *r, uint32_t t);
/* Instance ii may go on to a slot: it takes its task's gates (true), or waits for them
 * (false: it is pushed when they free up). */
bool engine__gate_take(struct engine *e, struct run *r, uint32_t ii);
/* On PostgreSQL (engine.admit), the pool a gated task's tries are admitted through when its
 * own pool is not limited: its gate's ("task:<dag>.<task>", else "dag:<id>"), set in the
 * admission with the gate's limit, so the database counts it across schedulers (borrowed). */
const char *engine__gate_pool(struct engine *e, struct run *r, uint32_t t);
/* Instance ii gives its gates back (its try ended, or it no longer waits for a slot); the
 * next instances waiting for them go on. */
void engine__gate_release(struct engine *e, struct run *r, uint32_t ii);
/* Drops the run's instances waiting for a gate, and gives back the gates of those not
 * holding a slot (cancel, drain, halt, free). */
void engine__gate_drop(struct engine *e, struct run *r);
/* Frees the engine's gates and its timeout timer's data (engine_free). */
void engine__conc_release(struct engine *e);
/* depends_on_past: the run's tasks with the flag look at their instance in the previous run
 * (sp->past_*: read by the caller from the store; a live run of this engine wins). */
void run__past_init(struct run *r, const struct run_spec *sp);
/* Instance ii is ready: false when it waits for depends_on_past (recorded as waiting). */
bool run__past_ready(struct run *r, uint32_t ii);
/* An instance of run r finished (or r began): the runs waiting on r look again. */
void engine__past_notify(struct engine *e, struct run *r);
/* The run is freed: it no longer waits. */
void run__past_release(struct run *r);

/* ---- between the engine and its runs ---- */

/* The ready queue's start callback (sched.h): a slot is taken for instance id of run owner. */
void run__sched_start(void *owner, uint32_t id);

/* Decides the run's worklist and releases its gated instances (before a dispatch). */
void run__pump_work(struct run *r);
/* Records the instances made ready, then checks whether the run has ended. */
void run__pump_after(struct run *r);
/* The store's durable sequence number advanced (engine->durable). */
void run__durable(struct run *r);
/* The store failed for good: the run fails and stops its work. */
void run__store_failed(struct run *r, const char *msg);
/* Submits instance inst's delayed 'running' records if still pending. */
void run__flush_running_rec(struct run *r, uint32_t inst);
/* The run has ended: calls its owner's callback (from the engine's ended timer). */
void run__report_ended(struct run *r);

/* ---- notify (runhook.c) ---- */

/* The run's end hooks (run.c): the DAG's on_success / on_failure, once the end is durable and
 * the task hooks' processes have exited; then the run stops. */
void run__hooks(struct run *r);
/* Fires task hook "on_success", "on_failure" or "on_retry" of instance ii's task, if set. */
void run__task_hook(struct run *r, uint32_t ii, const char *hook);
/* Sends the DAG's `{notify}` hook h named hook (on_success, on_failure). */
void run__dag_notify(struct run *r, const struct dag_hook *h, const char *hook);
/* Kills the task hooks' processes (a halt, a cancel). */
void run__hookprocs_kill(struct run *r);
/* Arms the DAG's deadline from the run's queued time, unless fired (stored) or none. */
void run__deadline_arm(struct run *r, bool fired);
void run__deadline_disarm(struct run *r);
/* The engine's HTTP client, made on first use: 0, or a negative code with *msg (malloc'd). */
int engine__http(struct engine *e, char **msg);
/* A delivery reached its end: a stopping engine that waited for it may go on. */
void engine__notify_settled(struct engine *e);
/* The next live run of the engine after r (NULL at the end). */
struct run *run__next_live(struct run *r);

/* What engine.c offers run.c: */
/* Queues instance inst's 'running' records for the delayed flush. */
void engine__pend_running(struct engine *e, struct run *r, uint32_t inst);
/* The run is being freed: drop every reference the engine holds to it. */
void engine__forget_run(struct engine *e, struct run *r);
/* Instance ii became ready: onto the ready queue, or first to the database for a slot of its
 * pool when that pool is limited across schedulers (admit.h). */
void engine__push(struct engine *e, struct run *r, uint32_t ii);
/* Drops the run's instances waiting for a slot, here and in the database (cancel, drain,
 * halt). */
void engine__drop(struct engine *e, struct run *r);
/* Instance ii's try gives its slots back: the parallelism's and its pool's (here, and in the
 * database when granted there). */
void engine__slot_done(struct engine *e, struct run *r, uint32_t ii);
/* A process started latency_ns after its instance became ready (statistics). */
void engine__note_latency(struct engine *e, int64_t latency_ns);
/* The database refused a write of this scheduler's because it is not active any more (declared
 * dead: fenced): as when the writer is fenced, every run fails here and the owner is told (it
 * stops). Once. */
void engine__fenced(struct engine *e, const char *msg);
/* The run has ended: report it to its owner soon (run__report_ended). */
void engine__run_ended(struct engine *e, struct run *r);

#endif
