/*
 * run_priv.h - the inside of a run, shared by the files that make it up:
 * run.c (the run's course: decisions, Kahn's counters, replay, ending,
 * cancelling, halting, begin and free), runtry.c (tries: starting a process,
 * an HTTP request or a wait, their completion, retries, log folders),
 * runenv.c (templates, environments, params and conf) and runtest.c
 * (`baram tasks test`). Nothing outside src/sched/run*.c includes it.
 *
 * Loop thread only (see run.c).
 */
#ifndef BARAM_SCHED_RUN_PRIV_H
#define BARAM_SCHED_RUN_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/buf.h"
#include "base/compiler.h"
#include "base/hmap.h"
#include "base/vec.h"
#include "dag/dag.h"
#include "dag/state.h"
#include "exec/httptask.h"
#include "exec/spawn.h"
#include "exec/waiter.h"
#include "sched/run.h"
#include "sched/trigger.h"

struct template;
struct spawn;
struct spawn_result;
struct httptask;
struct waiter;
struct engine;

extern char **environ;

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
    uint8_t prep;   /* RUN_PREP_*: its log folder and 1.log made ahead (unmapped tasks) */
    bool prep_drop; /* remove what the preparation makes: the task will not run */
};

enum { RUN_PREP_NONE, RUN_PREP_BUSY, RUN_PREP_DONE };

struct run_inst {
    uint32_t task;
    int32_t map_index; /* -1 when not mapped */
    enum ti_state state;
    int try_number;
    int max_tries;
    int exit_code;
    int term_signal;
    bool timed_out;
    bool slot_held;   /* the try holds a parallelism/pool slot (wait tasks give it back) */
    bool rec_pending; /* its 'running' records are not submitted yet (see run_flush_running) */
    char *id;         /* owned when mapped (or placeholder), else NULL: the task's name */
    char *item;       /* owned, mapped only */
    char *output;     /* owned, may be NULL */
    size_t output_len;
    char *message;    /* owned, may be NULL */
    uint32_t run_pos; /* index in run->running while a try is in flight */
    int64_t scheduled_at_ms, queued_at_ms, started_at_ms, ended_at_ms, try_started_at_ms;
    int pid;
    int32_t restore_idx; /* its stored record when resuming (index in run.restore), or -1 */
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
};

/* How a try ended, whatever its kind. */
struct run_try_end {
    int exit_code; /* 0 success, 99 skip, other: failed; -1 none (killed by a signal, or an
                      http or wait try: no process ran, SPEC section 7) */
    bool met;      /* an http or wait try succeeded (it has no exit code) */
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

/* A claimed try (see run_sched_start): it starts once the writer reports seq durable. */
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
    VEC(char *) base_env;      /* parent's (filtered, borrowed) + run constants (owned) */
    VEC(char *) owned_env;     /* the owned strings of base_env */
    VEC(char *) dag_env;       /* owned "K=V" of the DAG's env, appended last */
    struct hmap dag_env_names; /* keys borrowed from dag */
    char *conf;                /* owned JSON of the overrides, or NULL */
    struct spawn *hook;        /* while the hook runs */
    bool halted;               /* run_halt: stops without recording anything more */
    bool draining;             /* run_drain: nothing new starts; halts once nothing is in flight */
    bool no_pump;              /* while run_abort ends tries: their callbacks must not pump */
    char *hook_log;            /* owned */
};

typedef VEC(char *) run_strv;

/* ---- small helpers ---- */

static inline struct run_inst *run_inst_at(struct run *r, uint32_t ii)
{
    return &r->insts.v[ii];
}

static inline const char *run_inst_id(const struct run *r, const struct run_inst *in)
{
    return in->id ? in->id : r->dag->tasks[in->task].name;
}

void run_cork(struct run *r);
void run_uncork(struct run *r);
void run_mark(struct run *r);
void run_pump(struct run *r);
uint64_t run_put_ti(struct run *r, uint32_t ii);
uint64_t run_put_try(struct run *r, uint32_t ii, enum ti_state st, int64_t ended_at_ms);
void run_progress(struct run *r, uint32_t ii);
uint32_t run_add_inst(struct run *r, uint32_t task, int32_t map_index, char *item);
void run_ready(struct run *r, uint32_t ii);
void run_finish_inst(struct run *r, uint32_t ii);
void run_stop(struct run *r);
void run_release(struct run *r);
void run_halt_check(struct run *r);
char *run_env_name(const char *prefix, const char *name);
int run_expand(struct run *r, const struct template *t, struct run_inst *in, uint32_t task,
               struct buf *out, char **msg);
void run_env_init(struct run *r);
void run_env_release(struct run *r);
int run_env_try(struct run *r, struct run_inst *in, const char *out_path, size_t cmd_len,
                run_strv *env, run_strv *owned, char **msg);
/* Frees what run_env_try made. */
void run_env_try_release(run_strv *env, run_strv *owned);
int run_spawn(struct run *r, const struct spawn_opts *so, spawn_exit_fn cb, void *ud,
              struct spawn **out, char **msg);
void run_params_init(struct run *r, const struct run_param *params, size_t nparams);
void run_log_append(const char *path, const char *msg);

/* How a run, an http or a wait try is started and read back; shared by the scheduler
 * (runtry.c) and `baram tasks test` (runtest.c), so both say the same things. */

/* Why a process try failed ("exit code 3", "killed by signal 9 (Killed)", "timed out after
 * 2s"), malloc'd; NULL when it succeeded or skipped. */
char *run_exit_message(const struct spawn_result *res, int64_t timeout_ms);

/* An http try's request, its URL and body expanded for instance in. */
struct run_http_call {
    struct buf url, body;
    struct httptask_req req; /* points into url, body and the DAG */
    char *line;              /* owned: "METHOD URL" for the log, secrets redacted */
};
/* 0, or -EINVAL with *msg (malloc'd). Release hc in both cases. */
int run_http_call_init(struct run *r, struct run_inst *in, struct run_http_call *hc,
                       char **msg) WARN_UNUSED;
void run_http_call_release(struct run_http_call *hc);
/* Fills e from a finished request (e's strings malloc'd); returns the log line (malloc'd). */
char *run_http_end(const struct httptask_result *res, struct run_try_end *e);

/* A wait try's condition, expanded for instance in (a relative file joined to the DAG's
 * folder). */
struct run_wait_call {
    struct buf what;
    char *file;              /* owned, or NULL */
    char *line;              /* owned: "waiting for file '...'" for the log */
    struct waiter_opts opts; /* points into what, file and the DAG */
};
/* 0, or -EINVAL with *msg (malloc'd). Release wc in both cases. */
int run_wait_call_init(struct run *r, struct run_inst *in, struct run_wait_call *wc,
                       char **msg) WARN_UNUSED;
void run_wait_call_release(struct run_wait_call *wc);
/* Fills e from a finished wait (e's strings malloc'd); returns the log line (malloc'd). */
char *run_wait_end(const struct waiter_result *res, struct run_try_end *e);
void run_prep_drop(struct run *r, uint32_t t);
void run_prep_done(void *ud, int rc);
void run_prep(struct run *r, uint32_t t);
void run_prep_cleanup(struct run *r);
void run_flush_running(struct run *r, uint32_t ii);
void run_retry_closed(uv_handle_t *h);
/* Starts the try instance ii has claimed (state queued, holding a slot). */
void run_try_start(struct run *r, uint32_t ii);
/* Ends a claimed try that never started, as if killed: the run is cancelled, failed or
 * halted (run_abort, run_halt). */
void run_claim_end(struct run *r, uint32_t ii);
/* The instance (up_for_retry) is made ready again after delay_ms. */
void run_retry_after(struct run *r, uint32_t ii, int64_t delay_ms);

#endif
