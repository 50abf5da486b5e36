/*
 * run.c - one run of a DAG on a libuv loop: its task instances, their
 * tries, the trigger decisions, for_each expansion, outputs, templates,
 * environments and logs, and the durable record of every state change;
 * plus run_execute(), the one-run front door (see run.h).
 *
 * Key ideas:
 *  - Kahn's algorithm on compact per-task and per-instance arrays indexed
 *    by number: finishing an instance adds its state to each downstream
 *    task's counts and, when its task is complete, decrements the
 *    downstream's pending-upstream counter; only the downstream touched are
 *    re-decided (trigger_decide), through a worklist. A run costs
 *    O(tasks + edges); nothing scans all tasks per event.
 *  - Durability gate: a task's readiness comes from its upstream's final
 *    records, so it carries the highest sequence number among them (gate);
 *    it is pushed to the ready queue only once the store writer reports
 *    that number durable. Records that release nothing (queued/running,
 *    up_for_retry) are never waited for; 'running' ones are even submitted
 *    late (RUN_RUNNING_DELAY_MS) or with the final ones. Skips and
 *    upstream_failed cascade at once in memory; a task they make runnable
 *    is gated the same way.
 *  - Every kind of task starts a try through run_start_<kind>() and reports
 *    through run_try_done(): the one completion path (exit code or HTTP
 *    outcome, output, message) that decides success/skip/retry/failure.
 *  - The ready queue, slots, store writer and pump are the engine's
 *    (engine.h), shared by every run on the loop: an event marks its run
 *    dirty and pumps the engine.
 *  - Resuming (a daemon restarted after a crash, or `tasks clear`): the run
 *    is rebuilt from its DAG version and replays its stored instances as
 *    Kahn's algorithm reaches them. An instance that had finished by a try
 *    takes its stored result instead of starting (no finished task runs
 *    again); one whose try was running counts that try as failed and is
 *    retried if it has tries left; everything else is decided afresh, which
 *    gives the same answer (trigger rules and for_each are functions of the
 *    restored upstream states and outputs).
 *
 * Loop thread only: everything here runs in callbacks of the engine's loop.
 * The run owns its instances, their strings, outputs and per-try contexts;
 * the DAG is borrowed for the run's life.
 */
#include "sched/run.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <uv.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/suggest.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/template.h"
#include "exec/httptask.h"
#include "exec/spawn.h"
#include "exec/waiter.h"
#include "sched/engine.h"
#include "sched/logprep.h"
#include "sched/retry.h"
#include "sched/run_int.h"
#include "sched/sched.h"
#include "sched/trigger.h"
#include "store/store.h"

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
    uint64_t gate; /* highest final-record seq among finished upstream instances */
    uint32_t pool; /* sched pool index */
    bool expanded;
    bool decided;
    bool complete;    /* every instance finished */
    bool queued_eval; /* on the worklist */
    char *out_json;   /* owned: mapped task's outputs as a JSON array, once complete */
    size_t out_json_len;
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
    bool dir_made;
    bool slot_held;   /* the try holds a parallelism/pool slot (wait tasks give it back) */
    bool rec_pending; /* its 'running' records are not submitted yet (see run_flush_running) */
    char *id;         /* owned when mapped (or placeholder), else NULL: the task's name */
    char *item;       /* owned, mapped only */
    char *output;     /* owned, may be NULL */
    size_t output_len;
    char *message; /* owned, may be NULL */
    uint64_t final_seq;
    uint32_t run_pos; /* index in run->running while a try is in flight */
    int64_t scheduled_at_ms, queued_at_ms, started_at_ms, ended_at_ms, try_started_at_ms;
    int pid;
    int32_t restore_idx; /* its stored record when resuming (index in run.restore), or -1 */
    int64_t ready_ns;    /* monotonic time it last became ready: its upstream met (and durable,
                            when gated), or its retry delay over (scheduling latency) */
    struct run_try *cur; /* the try in flight, or NULL */
};

/* One try in flight: the context the executors call back with. */
struct run_try {
    struct run *r;
    uint32_t inst;
    struct spawn *sp;    /* owned by spawn.c until its callback */
    char *log_path;      /* owned */
    char *out_path;      /* owned */
    struct httptask *ht; /* http task in flight, owned by httptask.c until its callback */
    struct waiter *wt;   /* wait task in flight, owned by waiter.c until its callback */
};

/* How a try ended, whatever its kind. */
struct run_try_end {
    int exit_code; /* 0 success, 99 skip, other: failed; -1 killed by a signal */
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
    struct run_retry *prev, *next; /* the run's list of open retry timers */
};

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
    VEC(struct run_gate) gates; /* ready instances waiting for durability (FIFO) */
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
    bool no_pump;              /* while run_abort ends tries: their callbacks must not pump */
    char *hook_log;            /* owned */
};

static void run_pump(struct run *r);
static void run_stop(struct run *r);
static void run_hooks(struct run *r);
static void run_retry_closed(uv_handle_t *h);
static void run_try_done(struct run *r, uint32_t ii, struct run_try_end *e);
static void run_finish_inst(struct run *r, uint32_t ii);
static void run_prep_drop(struct run *r, uint32_t t);
static void run_halt_check(struct run *r);

/* ---- small helpers ---- */

static struct run_inst *run_inst_at(struct run *r, uint32_t ii)
{
    return &r->insts.v[ii];
}

static const char *run_inst_id(const struct run *r, const struct run_inst *in)
{
    return in->id ? in->id : r->dag->tasks[in->task].name;
}

static char *run_strf(const char *fmt, ...) PRINTF_LIKE(1, 2);
static char *run_strf(const char *fmt, ...)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    va_list ap;
    va_start(ap, fmt);
    RUN_IGN(buf_vaddf(&b, fmt, ap));
    va_end(ap);
    return buf_detach(&b, NULL);
}

/* "OUTPUT_" / "PARAM_" + NAME upper-cased, non-alphanumerics as '_'. */
static char *run_env_name(const char *prefix, const char *name)
{
    size_t pl = strlen(prefix), nl = strlen(name);
    char *s = xmalloc(pl + nl + 1);
    memcpy(s, prefix, pl);
    for (size_t i = 0; i < nl; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 'a' + 'A');
        else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            c = '_';
        s[pl + i] = (char)c;
    }
    s[pl + nl] = 0;
    return s;
}

/* Appends s as a JSON string (bytes >= 0x80 pass through). */
static void run_json_str(struct buf *b, const char *s, size_t n)
{
    RUN_IGN(buf_addc(b, '"'));
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            RUN_IGN(buf_addc(b, '\\'));
            RUN_IGN(buf_addc(b, (char)c));
        } else if (c == '\n') {
            RUN_IGN(buf_adds(b, "\\n"));
        } else if (c == '\t') {
            RUN_IGN(buf_adds(b, "\\t"));
        } else if (c == '\r') {
            RUN_IGN(buf_adds(b, "\\r"));
        } else if (c < 0x20) {
            RUN_IGN(buf_addf(b, "\\u%04x", c));
        } else {
            RUN_IGN(buf_addc(b, (char)c));
        }
    }
    RUN_IGN(buf_addc(b, '"'));
}

static void run_set_fatal(struct run *r, const char *msg)
{
    if (r->fatal)
        return;
    r->fatal = true;
    r->fatal_msg = xstrdup(msg);
}

/* ---- records ---- */

/* Around each event: the changes it makes reach the writer as one batch (one commit). */
static void run_cork(struct run *r)
{
    if (r->e)
        engine_cork(r->e);
}

static void run_uncork(struct run *r)
{
    if (r->e)
        engine_uncork(r->e);
}

/* The run has something to decide: the next engine_pump does it. */
static void run_mark(struct run *r)
{
    if (!r->e || r->dirty)
        return;
    r->dirty = true;
    VEC_PUSH(&r->e->dirty, r);
}

/* After an event of this run: mark it and pump the engine. */
static void run_pump(struct run *r)
{
    run_mark(r);
    if (r->e)
        engine_pump(r->e);
}

static uint64_t run_put_ti(struct run *r, uint32_t ii)
{
    if (!r->e || !r->e->w)
        return 0;
    struct run_inst *in = run_inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    struct ti_rec rec = {
        .run_id = r->run_id,
        .task_id = (char *)run_inst_id(r, in),
        .task = t->name,
        .map_index = in->map_index,
        .state = in->state,
        .try_number = in->try_number,
        .max_tries = in->max_tries,
        .exit_code = in->exit_code,
        .output = in->output,
        .output_len = in->output_len,
        .message = in->message,
        .priority = t->priority,
        .pool = t->pool,
        .scheduled_at_ms = in->scheduled_at_ms,
        .queued_at_ms = in->queued_at_ms,
        .started_at_ms = in->started_at_ms,
        .ended_at_ms = in->ended_at_ms,
    };
    uint64_t seq = store_writer_put_ti(r->e->w, &rec);
    if (seq > r->last_seq)
        r->last_seq = seq;
    return seq;
}

static uint64_t run_put_try(struct run *r, uint32_t ii, enum ti_state st, int64_t ended_at_ms)
{
    if (!r->e || !r->e->w)
        return 0;
    struct run_inst *in = run_inst_at(r, ii);
    struct try_rec rec = {
        .run_id = r->run_id,
        .task_id = (char *)run_inst_id(r, in),
        .try_number = in->try_number,
        .state = st,
        .exit_code = ended_at_ms < 0 ? -1 : in->exit_code,
        .term_signal = in->term_signal,
        .timed_out = in->timed_out,
        .queued_at_ms = in->queued_at_ms,
        .started_at_ms = in->try_started_at_ms,
        .ended_at_ms = ended_at_ms,
        .pid = in->pid,
    };
    uint64_t seq = store_writer_put_try(r->e->w, &rec);
    if (seq > r->last_seq)
        r->last_seq = seq;
    return seq;
}

static uint64_t run_put_run(struct run *r)
{
    if (!r->e || !r->e->w)
        return 0;
    struct run_rec rec = {
        .run_id = r->run_id,
        .dag_id = r->dag->id,
        .state = r->state,
        .type = r->type,
        .logical_at_ms = r->logical_at_ms,
        .queued_at_ms = r->queued_at_ms,
        .started_at_ms = r->started_at_ms,
        .ended_at_ms = r->ended_at_ms,
        .conf = r->conf,
        .dag_hash = (char *)r->dag->hash,
        .dag_path = r->dag->path,
        .owner = r->owner,
    };
    uint64_t seq = store_writer_put_run(r->e->w, &rec);
    if (seq > r->last_seq)
        r->last_seq = seq;
    return seq;
}

static void run_progress(struct run *r, uint32_t ii)
{
    if (!r->progress)
        return;
    const char *ids[RUN_PROGRESS_IDS];
    size_t nids = 0;
    for (size_t i = 0; i < r->running.n && nids < RUN_PROGRESS_IDS; i++)
        ids[nids++] = run_inst_id(r, run_inst_at(r, r->running.v[i]));
    struct run_inst *in = run_inst_at(r, ii);
    struct run_progress p = {
        .total = (uint32_t)r->insts.n,
        .done = r->ndone,
        .running = (uint32_t)r->running.n,
        .failed = r->nfailed,
        .elapsed_ms = when_mono_ms() - r->started_mono_ms,
        .task_id = run_inst_id(r, in),
        .state = in->state,
        .running_ids = ids,
        .nrunning_ids = nids,
    };
    r->progress(r->progress_ud, &p);
}

/* ---- templates ---- */

struct run_lookup {
    struct run *r;
    struct run_inst *in; /* NULL for hooks and for_each expansion */
    uint32_t task;       /* UINT32_MAX for hooks */
    char trybuf[16];
};

static int run_lookup(void *ud, const char *name, const char **val, size_t *vlen)
{
    struct run_lookup *lk = ud;
    struct run *r = lk->r;
    const struct dag *dag = r->dag;
    const char *v = NULL;
    if (strcmp(name, "ds") == 0) {
        v = r->ds;
    } else if (strcmp(name, "ts") == 0) {
        v = r->ts;
    } else if (strcmp(name, "run_id") == 0) {
        v = r->run_id;
    } else if (strcmp(name, "dag") == 0) {
        v = dag->id;
    } else if (strcmp(name, "task") == 0) {
        if (lk->in)
            v = run_inst_id(r, lk->in);
        else if (lk->task != UINT32_MAX)
            v = dag->tasks[lk->task].name;
    } else if (strcmp(name, "try") == 0) {
        if (lk->in) {
            snprintf(lk->trybuf, sizeof(lk->trybuf), "%d", lk->in->try_number);
            v = lk->trybuf;
        }
    } else if (strcmp(name, "item") == 0) {
        if (lk->in && lk->in->map_index >= 0)
            v = lk->in->item;
    } else if (strncmp(name, "params.", 7) == 0) {
        int pi = dag_param_index(dag, name + 7);
        if (pi >= 0)
            v = r->param_values[pi];
    } else if (strncmp(name, "outputs.", 8) == 0) {
        uint32_t t;
        if (dag_find(dag, name + 8, &t) && r->tasks[t].complete) {
            struct run_task *rt = &r->tasks[t];
            if (dag->tasks[t].mapped && rt->out_json) {
                *val = rt->out_json;
                *vlen = rt->out_json_len;
                return 0;
            }
            struct run_inst *up = rt->ninst ? run_inst_at(r, rt->inst_start) : NULL;
            if (up && up->output) {
                *val = up->output;
                *vlen = up->output_len;
                return 0;
            }
            v = "";
        }
    }
    if (!v)
        return -ENOENT;
    *val = v;
    *vlen = strlen(v);
    return 0;
}

/* Expands t into out; on failure, *msg (malloc'd) says why. */
static int run_expand(struct run *r, const struct template *t, struct run_inst *in, uint32_t task,
                      struct buf *out, char **msg)
{
    struct run_lookup lk = {.r = r, .in = in, .task = task};
    const char *missing = NULL;
    int rc = template_expand(t, run_lookup, &lk, out, &missing);
    if (rc == -ENOENT)
        *msg = run_strf("cannot resolve '{{ %s }}' in template", missing ? missing : "?");
    else if (rc == -EINVAL && missing) /* a NUL byte: /bin/sh -c would cut the command there */
        *msg = run_strf("the value of '{{ %s }}' holds a NUL byte, which a command cannot carry",
                        missing);
    else if (rc < 0)
        *msg = run_strf("template expansion failed: %s", err_str(rc));
    return rc;
}

/* ---- environment ---- */

/* A variable of baram's own environment that a try must not see: one baram sets itself, and
 * every BARAM_* of baram's (its configuration: BARAM_DB may hold a database password,
 * BARAM_PASSWORD a user's), so a task sees only the BARAM_* that describe its try. */
static bool run_env_excluded(struct run *r, const struct hmap *excl, const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (!eq || strncmp(kv, "BARAM_", 6) == 0)
        return true;
    uint32_t dummy;
    return hmap_get(excl, kv, (size_t)(eq - kv), &dummy);
}

static void run_env_init(struct run *r)
{
    const struct dag *dag = r->dag;
    static const char *fixed[] = {"BARAM_DAG", "BARAM_RUN_ID", "BARAM_TASK",  "BARAM_TRY",
                                  "BARAM_DS",  "BARAM_TS",     "BARAM_OUTPUT"};
    struct hmap excl;
    hmap_init(&excl);
    hmap_init(&r->dag_env_names);
    VEC(char *) names = {0};
    for (size_t i = 0; i < ARRAY_SIZE(fixed); i++)
        hmap_put(&excl, fixed[i], strlen(fixed[i]), 0);
    for (size_t i = 0; i < dag->nenv; i++) {
        hmap_put(&excl, dag->env[i].name, strlen(dag->env[i].name), 0);
        hmap_put(&r->dag_env_names, dag->env[i].name, strlen(dag->env[i].name), 0);
    }
    for (size_t i = 0; i < dag->nparams; i++) {
        char *n = run_env_name("PARAM_", dag->params[i].name);
        VEC_PUSH(&names, n);
        hmap_put(&excl, n, strlen(n), 0);
    }
    for (uint32_t t = 0; t < dag->ntasks; t++)
        hmap_put(&excl, r->tasks[t].env_name, strlen(r->tasks[t].env_name), 0);

    for (char **e = environ; e && *e; e++)
        if (!run_env_excluded(r, &excl, *e))
            VEC_PUSH(&r->base_env, *e);

    uint32_t dummy;
    char *s;
#define RUN_ENV_ADD(NAME, VAL)                                                                     \
    do {                                                                                           \
        if (!hmap_get(&r->dag_env_names, NAME, strlen(NAME), &dummy)) {                            \
            s = run_strf("%s=%s", NAME, VAL);                                                      \
            VEC_PUSH(&r->base_env, s);                                                             \
            VEC_PUSH(&r->owned_env, s);                                                            \
        }                                                                                          \
    } while (0)
    RUN_ENV_ADD("BARAM_DAG", dag->id);
    RUN_ENV_ADD("BARAM_RUN_ID", r->run_id);
    RUN_ENV_ADD("BARAM_DS", r->ds);
    RUN_ENV_ADD("BARAM_TS", r->ts);
    for (size_t i = 0; i < dag->nparams; i++)
        RUN_ENV_ADD(names.v[i], r->param_values[i] ? r->param_values[i] : "");
#undef RUN_ENV_ADD
    for (size_t i = 0; i < dag->nenv; i++) {
        s = run_strf("%s=%s", dag->env[i].name, dag->env[i].value ? dag->env[i].value : "");
        VEC_PUSH(&r->dag_env, s);
    }
    for (size_t i = 0; i < names.n; i++)
        free(names.v[i]);
    VEC_FREE(&names);
    hmap_release(&excl);
}

static void run_env_release(struct run *r)
{
    for (size_t i = 0; i < r->owned_env.n; i++)
        free(r->owned_env.v[i]);
    for (size_t i = 0; i < r->dag_env.n; i++)
        free(r->dag_env.v[i]);
    VEC_FREE(&r->owned_env);
    VEC_FREE(&r->dag_env);
    VEC_FREE(&r->base_env);
    hmap_release(&r->dag_env_names);
}

typedef VEC(char *) run_strv;

/* The environment of one try: base + per-try names + OUTPUT_<UP> + the DAG's env. Strings
 * made here are pushed to *owned. */
static void run_env_try(struct run *r, struct run_inst *in, const char *out_path, run_strv *env,
                        run_strv *owned)
{
    const struct dag *dag = r->dag;
    uint32_t dummy;
    VEC_RESERVE(env, r->base_env.n + r->dag_env.n + 8);
    memcpy(env->v, r->base_env.v, r->base_env.n * sizeof(char *));
    env->n = r->base_env.n;
    char *s;
    if (!hmap_get(&r->dag_env_names, "BARAM_TASK", 10, &dummy)) {
        s = run_strf("BARAM_TASK=%s", run_inst_id(r, in));
        VEC_PUSH(env, s);
        VEC_PUSH(owned, s);
    }
    if (!hmap_get(&r->dag_env_names, "BARAM_TRY", 9, &dummy)) {
        s = run_strf("BARAM_TRY=%d", in->try_number);
        VEC_PUSH(env, s);
        VEC_PUSH(owned, s);
    }
    if (out_path && !hmap_get(&r->dag_env_names, "BARAM_OUTPUT", 12, &dummy)) {
        s = run_strf("BARAM_OUTPUT=%s", out_path);
        VEC_PUSH(env, s);
        VEC_PUSH(owned, s);
    }
    const struct graph *g = &dag->graph;
    for (uint32_t k = g->up_start[in->task]; k < g->up_start[in->task + 1]; k++) {
        uint32_t u = g->up[k];
        struct run_task *ut = &r->tasks[u];
        if (hmap_get(&r->dag_env_names, ut->env_name, strlen(ut->env_name), &dummy))
            continue;
        const char *v = "";
        size_t vl = 0;
        if (ut->complete) {
            if (dag->tasks[u].mapped && ut->out_json) {
                v = ut->out_json;
                vl = ut->out_json_len;
            } else if (ut->ninst && run_inst_at(r, ut->inst_start)->output) {
                v = run_inst_at(r, ut->inst_start)->output;
                vl = run_inst_at(r, ut->inst_start)->output_len;
            }
        }
        size_t nl = strlen(ut->env_name);
        s = xmalloc(nl + 1 + vl + 1);
        memcpy(s, ut->env_name, nl);
        s[nl] = '=';
        memcpy(s + nl + 1, v, vl);
        s[nl + 1 + vl] = 0;
        VEC_PUSH(env, s);
        VEC_PUSH(owned, s);
    }
    for (size_t i = 0; i < r->dag_env.n; i++)
        VEC_PUSH(env, r->dag_env.v[i]);
    VEC_PUSH(env, NULL);
}

/* ---- instance creation and decisions ---- */

static uint32_t run_add_inst(struct run *r, uint32_t task, int32_t map_index, char *item)
{
    const struct dag_task *t = &r->dag->tasks[task];
    struct run_inst in = {
        .task = task,
        .map_index = map_index,
        .state = TI_NONE,
        .max_tries = t->retries + 1,
        .exit_code = -1,
        .item = item,
        .scheduled_at_ms = -1,
        .queued_at_ms = -1,
        .started_at_ms = -1,
        .ended_at_ms = -1,
        .try_started_at_ms = -1,
        .restore_idx = -1,
    };
    if (map_index >= 0)
        in.id = run_strf("%s[%d]", t->name, map_index);
    uint32_t k;
    const char *id = in.id ? in.id : t->name;
    if (r->nrestore && hmap_get(&r->restore_by_id, id, strlen(id), &k)) {
        const struct run_restore *rs = &r->restore[k];
        in.restore_idx = (int32_t)k;
        in.try_number = rs->try_number;
        if (rs->max_tries > in.max_tries)
            in.max_tries = rs->max_tries;
        in.started_at_ms = rs->started_at_ms;
    }
    VEC_PUSH(&r->insts, in);
    return (uint32_t)(r->insts.n - 1);
}

/* Creates the instances of task t: 1, or one per item (taking items, malloc'd strings). */
static void run_expand_task(struct run *r, uint32_t t, char **items, size_t nitems)
{
    struct run_task *rt = &r->tasks[t];
    rt->inst_start = (uint32_t)r->insts.n;
    if (!r->dag->tasks[t].mapped) {
        run_add_inst(r, t, -1, NULL);
        rt->ninst = 1;
    } else {
        for (size_t i = 0; i < nitems; i++)
            run_add_inst(r, t, (int32_t)i, items[i]);
        rt->ninst = (uint32_t)nitems;
    }
    rt->expanded = true;
}

/* A mapped task with nothing to run: one placeholder instance "TASK" (map_index -1). */
static void run_expand_placeholder(struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    rt->inst_start = (uint32_t)r->insts.n;
    run_add_inst(r, t, -1, NULL);
    rt->ninst = 1;
    rt->expanded = true;
}

/* Sets a finished state decided without a process (skipped / upstream_failed) on each instance
 * of t that has not started. */
static void run_decide_finished(struct run *r, uint32_t t, enum ti_state st, const char *msg)
{
    struct run_task *rt = &r->tasks[t];
    if (!rt->expanded)
        run_expand_placeholder(r, t);
    run_prep_drop(r, t);
    int64_t now = when_now_ms();
    for (uint32_t k = 0; k < rt->ninst; k++) {
        uint32_t ii = rt->inst_start + k;
        struct run_inst *in = run_inst_at(r, ii);
        in->state = st;
        in->ended_at_ms = now;
        free(in->message);
        in->message = msg ? xstrdup(msg) : NULL;
        in->final_seq = run_put_ti(r, ii);
        run_finish_inst(r, ii);
    }
}

/* Resuming: an instance that had finished by a try takes its stored result instead of
 * running again. true when it did. */
static bool run_replay(struct run *r, uint32_t ii)
{
    struct run_inst *in = run_inst_at(r, ii);
    if (in->restore_idx < 0)
        return false;
    struct run_restore *rs = &r->restore[in->restore_idx];
    in->restore_idx = -1;
    if (rs->try_number <= 0 ||
        (rs->state != TI_SUCCESS && rs->state != TI_FAILED && rs->state != TI_SKIPPED))
        return false;
    in->state = rs->state;
    in->exit_code = rs->exit_code;
    free(in->output);
    in->output = rs->output;
    in->output_len = rs->output_len;
    rs->output = NULL;
    free(in->message);
    in->message = rs->message;
    rs->message = NULL;
    in->scheduled_at_ms = rs->scheduled_at_ms;
    in->queued_at_ms = rs->queued_at_ms;
    in->ended_at_ms = rs->ended_at_ms;
    in->final_seq = run_put_ti(r, ii);
    run_finish_inst(r, ii);
    return true;
}

static void run_ready(struct run *r, uint32_t ii, uint64_t gate)
{
    if (run_replay(r, ii))
        return;
    struct run_inst *in = run_inst_at(r, ii);
    in->state = TI_SCHEDULED;
    in->scheduled_at_ms = when_now_ms();
    in->ready_ns = when_mono_ns();
    if (r->e->gate_on_durable && (gate > r->e->durable || r->gates.n > r->gates_head)) {
        struct run_gate g = {.seq = gate, .inst = ii};
        VEC_PUSH(&r->gates, g);
    } else {
        const struct dag_task *t = &r->dag->tasks[in->task];
        sched_push(&r->e->sched, r, ii, t->priority, r->tasks[in->task].pool);
        VEC_PUSH(&r->readied, ii);
    }
}

/* for_each over a template: its expansion as items. 0, or -1 with *msg. */
static int run_for_each_items(struct run *r, uint32_t t, char ***items, size_t *nitems, char **msg)
{
    const struct dag_task *dt = &r->dag->tasks[t];
    struct buf b = BUF_INIT(16 * 1024 * 1024);
    VEC(char *) v = {0};
    if (run_expand(r, dt->for_each, NULL, t, &b, msg) < 0) {
        buf_release(&b);
        return -1;
    }
    json_error_t jerr;
    json_t *j = json_loadb(b.data, b.len, JSON_DECODE_ANY, &jerr);
    if (j && json_is_array(j)) {
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            char *s;
            if (json_is_string(e))
                s = xstrndup(json_string_value(e), json_string_length(e));
            else {
                char *d = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY);
                s = xstrdup(d ? d : "");
                free(d);
            }
            VEC_PUSH(&v, s);
        }
    } else {
        const char *p = b.data, *end = b.data + b.len;
        while (p < end) {
            const char *nl = memchr(p, '\n', (size_t)(end - p));
            const char *le = nl ? nl : end;
            const char *e2 = le;
            if (e2 > p && e2[-1] == '\r')
                e2--;
            if (e2 > p)
                VEC_PUSH(&v, xstrndup(p, (size_t)(e2 - p)));
            p = nl ? nl + 1 : end;
        }
    }
    json_decref(j);
    buf_release(&b);
    *items = v.v;
    *nitems = v.n;
    return 0;
}

static void run_decide(struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    const struct dag_task *dt = &r->dag->tasks[t];
    if (rt->decided)
        return;
    enum trigger_decision d = trigger_decide(dt->trigger, &rt->cnt);
    switch (d) {
    case TRIGGER_WAIT:
        return;
    case TRIGGER_SKIP:
        rt->decided = true;
        run_decide_finished(r, t, TI_SKIPPED, NULL);
        return;
    case TRIGGER_UPSTREAM_FAILED:
        rt->decided = true;
        run_decide_finished(r, t, TI_UPSTREAM_FAILED, NULL);
        return;
    case TRIGGER_RUN:
        break;
    }
    if (dt->mapped && dt->for_each && !rt->expanded) {
        /* The items come from upstream outputs: wait until every upstream is complete. */
        if (rt->cnt.pending > 0)
            return;
        rt->decided = true;
        char **items = NULL, *msg = NULL;
        size_t n = 0;
        if (run_for_each_items(r, t, &items, &n, &msg) < 0) {
            run_expand_placeholder(r, t);
            struct run_inst *in = run_inst_at(r, rt->inst_start);
            in->state = TI_FAILED;
            in->ended_at_ms = when_now_ms();
            in->message = msg;
            in->final_seq = run_put_ti(r, rt->inst_start);
            run_finish_inst(r, rt->inst_start);
            return;
        }
        if (n == 0) {
            free(items);
            run_decide_finished(r, t, TI_SKIPPED, "for_each gave no items");
            return;
        }
        run_expand_task(r, t, items, n);
        free(items);
        for (uint32_t k = 0; k < rt->ninst; k++)
            run_put_ti(r, rt->inst_start + k); /* 'none' records of the new instances */
    } else if (!rt->expanded) {                /* a literal list with no items */
        rt->decided = true;
        run_decide_finished(r, t, TI_SKIPPED, "for_each gave no items");
        return;
    }
    rt->decided = true;
    for (uint32_t k = 0; k < rt->ninst; k++)
        run_ready(r, rt->inst_start + k, rt->gate);
}

/* An instance reached a finished state (its record is submitted, final_seq set). */
static void run_finish_inst(struct run *r, uint32_t ii)
{
    struct run_inst *in = run_inst_at(r, ii);
    uint32_t t = in->task;
    struct run_task *rt = &r->tasks[t];
    enum ti_state st = in->state;
    uint64_t seq = in->final_seq;
    r->ndone++;
    if (st == TI_FAILED || st == TI_UPSTREAM_FAILED)
        r->nfailed++;
    rt->ndone++;
    bool complete = rt->ndone == rt->ninst;
    if (complete) {
        rt->complete = true;
        r->ntasks_complete++;
        if (r->dag->tasks[t].mapped) { /* a placeholder (no items) gives [] */
            struct buf b = BUF_INIT(BUF_NO_MAX);
            RUN_IGN(buf_addc(&b, '['));
            for (uint32_t k = 0; k < rt->ninst; k++) {
                struct run_inst *x = run_inst_at(r, rt->inst_start + k);
                if (x->map_index < 0)
                    continue;
                if (k)
                    RUN_IGN(buf_addc(&b, ','));
                run_json_str(&b, x->output ? x->output : "", x->output ? x->output_len : 0);
            }
            RUN_IGN(buf_addc(&b, ']'));
            rt->out_json = buf_detach(&b, &rt->out_json_len);
        }
    }
    run_progress(r, ii);
    if (r->cancelled || r->fatal)
        return;
    const struct graph *g = &r->dag->graph;
    for (uint32_t k = g->down_start[t]; k < g->down_start[t + 1]; k++) {
        uint32_t d = g->down[k];
        struct run_task *dtk = &r->tasks[d];
        if (st == TI_SUCCESS)
            dtk->cnt.success++;
        else if (st == TI_SKIPPED)
            dtk->cnt.skipped++;
        else
            dtk->cnt.failed++;
        if (seq > dtk->gate)
            dtk->gate = seq;
        if (complete)
            dtk->cnt.pending--;
        if (!dtk->decided && !dtk->queued_eval) {
            dtk->queued_eval = true;
            VEC_PUSH(&r->work, d);
        }
    }
}

/* ---- tries ---- */

static void run_fail_try_now(struct run *r, uint32_t ii, char *msg)
{
    struct run_try_end e = {.exit_code = -1, .message = msg};
    run_try_done(r, ii, &e);
}

static void run_try_free(struct run_try *tr)
{
    free(tr->log_path);
    free(tr->out_path);
    free(tr);
}

static void run_log_append(const char *path, const char *msg)
{
    if (!path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    struct buf b = BUF_INIT(BUF_NO_MAX);
    RUN_IGN(buf_addf(&b, "baram: %s\n", msg));
    ssize_t w = write(fd, b.data, b.len);
    (void)w;
    buf_release(&b);
    close(fd);
}

/* Reads a try's output file: 0 (*out NULL when there is none), or -1 with *msg. */
static int run_read_output(const char *path, char **out, size_t *len, char **msg)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return 0;
    }
    if (st.st_size > DAG_OUTPUT_MAX) {
        *msg = run_strf("output is %lld bytes, over the 64 KiB limit", (long long)st.st_size);
        close(fd);
        return -1;
    }
    char *p = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    /* It may have grown since fstat: one more read tells. */
    char extra;
    if (read(fd, &extra, 1) == 1) {
        free(p);
        struct stat st2;
        long long sz = fstat(fd, &st2) == 0 ? (long long)st2.st_size : DAG_OUTPUT_MAX + 1;
        close(fd);
        if (sz > DAG_OUTPUT_MAX) {
            *msg = run_strf("output is %lld bytes, over the 64 KiB limit", sz);
            return -1;
        }
        return run_read_output(path, out, len, msg);
    }
    close(fd);
    p[got] = 0;
    *out = p;
    *len = got;
    return 0;
}

/* The common end of every try's completion callback (process, http, wait): the try is over,
 * decide what it means, then pump and close the event's transaction (opened by run_cork). */
static void run_try_finish(struct run_try *tr, struct run_try_end *e)
{
    struct run *r = tr->r;
    uint32_t ii = tr->inst;
    run_inst_at(r, ii)->cur = NULL;
    run_try_free(tr);
    run_try_done(r, ii, e);
    if (!r->no_pump)
        run_pump(r);
    else
        run_mark(r);
    run_uncork(r);
}

static void run_on_exit(void *ud, const struct spawn_result *res)
{
    struct run_try *tr = ud;
    struct run *r = tr->r;
    run_cork(r);
    uint32_t ii = tr->inst;
    struct run_try_end e = {
        .exit_code = res->exit_code,
        .term_signal = res->term_signal,
        .timed_out = res->timed_out,
        .killed = res->killed,
    };
    char *msg = NULL;
    if (res->timed_out) {
        const struct dag_task *t = &r->dag->tasks[run_inst_at(r, ii)->task];
        e.message = run_strf("timed out after %lld ms", (long long)t->timeout_ms);
        run_log_append(tr->log_path, e.message);
    } else if (res->exit_code == 0 || res->exit_code == 99) {
        if (run_read_output(tr->out_path, &e.output, &e.output_len, &msg) < 0) {
            e.exit_code = -1;
            e.message = msg;
            run_log_append(tr->log_path, msg);
        }
    } else if (res->term_signal) {
        e.message =
            run_strf("killed by signal %d (%s)", res->term_signal, strsignal(res->term_signal));
    } else {
        e.message = run_strf("exit code %d", res->exit_code);
    }
    run_try_finish(tr, &e);
}

/* Appends a DAG or task id as one path component: an id made only of dots ("." or "..")
 * becomes "%2E" per dot, so no id can name a folder outside its place. */
static void run_add_component(struct buf *b, const char *id)
{
    if (id[strspn(id, ".")] != 0) {
        RUN_IGN(buf_adds(b, id));
        return;
    }
    for (const char *p = id; *p; p++)
        RUN_IGN(buf_adds(b, "%2E"));
}

char *run_log_dir(const char *home, const char *dag_id, const char *run_id, const char *task,
                  int map_index)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    if (home[0] != '/') {
        char *cwd = getcwd(NULL, 0);
        RUN_IGN(buf_addf(&b, "%s/", cwd ? cwd : "."));
        free(cwd);
    }
    RUN_IGN(buf_addf(&b, "%s/logs/", home));
    run_add_component(&b, dag_id);
    RUN_IGN(buf_addc(&b, '/'));
    run_add_component(&b, run_id);
    if (task) {
        RUN_IGN(buf_addc(&b, '/'));
        run_add_component(&b, task);
        if (map_index >= 0)
            RUN_IGN(buf_addf(&b, ".%d", map_index));
    }
    return buf_detach(&b, NULL);
}

static char *run_inst_dir(struct run *r, struct run_inst *in)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    RUN_IGN(buf_addf(&b, "%s/", r->logdir));
    run_add_component(&b, r->dag->tasks[in->task].name);
    if (in->map_index >= 0)
        RUN_IGN(buf_addf(&b, ".%d", in->map_index));
    return buf_detach(&b, NULL);
}

/* ---- log folders made ahead (logprep.h) ---- */

struct run_prep_ctx {
    struct run *r;
    uint32_t task;
};

/* HOME/logs/<dag>/<run>/<task> of an unmapped task, and its first log file. Malloc'd. */
static char *run_task_dir(struct run *r, uint32_t t)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    RUN_IGN(buf_addf(&b, "%s/", r->logdir));
    run_add_component(&b, r->dag->tasks[t].name);
    return buf_detach(&b, NULL);
}

/* The unmapped process task t will not run after all: remove what was prepared for it. */
static void run_prep_drop(struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    if (rt->prep == RUN_PREP_BUSY) {
        rt->prep_drop = true; /* removed when the preparation reports */
    } else if (rt->prep == RUN_PREP_DONE) {
        char *dir = run_task_dir(r, t);
        char *log = run_strf("%s/1.log", dir);
        logprep_remove(r->e->loop, dir, log);
        free(log);
        free(dir);
        rt->prep = RUN_PREP_NONE;
    }
}

static void run_prep_done(void *ud, int rc)
{
    struct run_prep_ctx *c = ud;
    struct run *r = c->r;
    struct run_task *rt = &r->tasks[c->task];
    rt->prep = rc == 0 ? RUN_PREP_DONE : RUN_PREP_NONE; /* on failure run_start tries inline */
    if (rt->prep_drop || r->phase >= RUN_PH_ENDING)
        run_prep_drop(r, c->task);
    free(c);
    if (--r->nprep_busy == 0 && r->phase == RUN_PH_STOPPING)
        run_stop(r);
}

/* Queues the making of task t's log folder and 1.log when it is an unmapped process task that
 * has not started: called while its last upstream runs or while it waits for a slot. */
static void run_prep(struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    const struct dag_task *dt = &r->dag->tasks[t];
    if (!r->e->prep_on || rt->prep != RUN_PREP_NONE || rt->prep_drop || dt->mapped ||
        dt->kind != TASK_RUN)
        return;
    if (rt->expanded && run_inst_at(r, rt->inst_start)->try_number > 0)
        return;
    struct run_prep_ctx *c = xmalloc(sizeof(*c));
    c->r = r;
    c->task = t;
    rt->prep = RUN_PREP_BUSY;
    r->nprep_busy++;
    VEC_PUSH(&r->prepped, t);
    char *dir = run_task_dir(r, t);
    char *log = run_strf("%s/1.log", dir);
    logprep_create(r->e->loop, dir, log, run_prep_done, c);
    free(log);
    free(dir);
}

/* Instance ii has just started: prepare each downstream task that now waits for it alone. */
static void run_prep_downstream(struct run *r, uint32_t ii)
{
    const struct graph *g = &r->dag->graph;
    uint32_t t = run_inst_at(r, ii)->task;
    for (uint32_t k = g->down_start[t]; k < g->down_start[t + 1]; k++) {
        uint32_t d = g->down[k];
        if (!r->tasks[d].decided && r->tasks[d].cnt.pending == 1)
            run_prep(r, d);
    }
}

/* The run is over: remove what was prepared for tasks that never started. */
static void run_prep_cleanup(struct run *r)
{
    for (size_t i = 0; i < r->prepped.n; i++) {
        uint32_t t = r->prepped.v[i];
        struct run_task *rt = &r->tasks[t];
        if (!rt->expanded || run_inst_at(r, rt->inst_start)->try_number == 0)
            run_prep_drop(r, t);
    }
    r->prepped.n = 0;
}

/* Starts a `run` task's try as a process. */
static void run_start_shell(struct run *r, uint32_t ii, struct run_try *tr)
{
    struct run_inst *in = run_inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    char *msg = NULL;
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    if (run_expand(r, t->run, in, in->task, &cmd, &msg) < 0) {
        run_log_append(tr->log_path, msg);
        buf_release(&cmd);
        run_try_free(tr);
        run_fail_try_now(r, ii, msg);
        return;
    }
    run_strv env = {0}, owned = {0};
    run_env_try(r, in, tr->out_path, &env, &owned);
    struct spawn_opts so = {
        .cmd = cmd.data,
        .cwd = r->dag->dir,
        .env = env.v,
        .log_path = tr->log_path,
        .timeout_ms = t->timeout_ms,
    };
    int rc = spawn_start(r->e->loop, &so, run_on_exit, tr, &tr->sp);
    for (size_t i = 0; i < owned.n; i++)
        free(owned.v[i]);
    VEC_FREE(&owned);
    VEC_FREE(&env);
    buf_release(&cmd);
    if (rc < 0) {
        msg = run_strf("cannot start the process: %s", err_str(rc));
        run_log_append(tr->log_path, msg);
        run_try_free(tr);
        run_fail_try_now(r, ii, msg);
        return;
    }
    in->pid = spawn_pid(tr->sp);
    in->cur = tr;
    if (r->e)
        engine_note_latency(r->e, when_mono_ns() - in->ready_ns);
}

/* ---- in-loop task kinds: http and wait (exec/httptask.h, exec/waiter.h) ---- */

static int run_http_client(struct run *r, char **msg)
{
    if (r->e->http)
        return 0;
    int rc = httptask_client_new(r->e->loop, NULL, &r->e->http);
    if (rc < 0) {
        r->e->http = NULL;
        *msg = run_strf("cannot start the http client: %s", err_str(rc));
    }
    return rc;
}

static void run_on_http_done(void *arg, const struct httptask_result *res)
{
    struct run_try *tr = arg;
    struct run *r = tr->r;
    run_cork(r);
    struct run_try_end e = {
        .exit_code = res->ok ? 0 : 1,
        .killed = res->cancelled,
        .message = res->ok ? NULL : xstrdup(res->message),
    };
    if (res->body_len > 0) {
        e.output = xmemdup(res->body, res->body_len + 1);
        e.output_len = res->body_len;
    }
    char *line = run_strf("%s (%lld ms)%s", res->message, (long long)res->elapsed_ms,
                          res->body_cut ? ", response cut at 64 KiB" : "");
    run_log_append(tr->log_path, line);
    free(line);
    run_try_finish(tr, &e);
}

static void run_start_http(struct run *r, uint32_t ii, struct run_try *tr)
{
    struct run_inst *in = run_inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    const struct dag_http *h = &t->http;
    char *msg = NULL;
    struct buf url = BUF_INIT(64 * 1024), body = BUF_INIT(DAG_OUTPUT_MAX * 16);
    if (run_expand(r, h->url, in, in->task, &url, &msg) < 0 ||
        (h->body && run_expand(r, h->body, in, in->task, &body, &msg) < 0) ||
        run_http_client(r, &msg) < 0) {
        run_log_append(tr->log_path, msg);
        buf_release(&url);
        buf_release(&body);
        run_try_free(tr);
        run_fail_try_now(r, ii, msg);
        return;
    }
    int64_t timeout = h->timeout_ms;
    if (t->timeout_ms > 0 && (timeout <= 0 || t->timeout_ms < timeout))
        timeout = t->timeout_ms;
    struct httptask_req req = {
        .method = h->method,
        .url = url.data,
        .body = h->body ? body.data : NULL,
        .body_len = h->body ? body.len : 0,
        .headers = h->headers,
        .nheaders = h->nheaders,
        .expect = h->expect,
        .nexpect = h->nexpect,
        .timeout_ms = timeout,
        .cb_failures = h->cb_failures,
        .cb_reset_ms = h->cb_reset_ms,
    };
    char *shown = httptask_redact_url(url.data); /* no credentials or tokens in logs */
    char *line = run_strf("%s %s", h->method ? h->method : "GET", shown);
    run_log_append(tr->log_path, line);
    free(line);
    free(shown);
    in->cur = tr;
    if (httptask_start(r->e->http, &req, run_on_http_done, tr, &tr->ht) < 0) {
        /* Not expected (failures come through the callback), but never leave the try. */
        in->cur = NULL;
        run_try_free(tr);
        run_fail_try_now(r, ii, xstrdup("cannot start the http request"));
    }
    buf_release(&url);
    buf_release(&body);
}

static void run_on_wait_done(void *arg, const struct waiter_result *res)
{
    struct run_try *tr = arg;
    struct run *r = tr->r;
    run_cork(r);
    struct run_try_end e = {
        .exit_code = res->outcome == WAITER_MET ? 0 : 1,
        .timed_out = res->outcome == WAITER_TIMED_OUT,
        .killed = res->outcome == WAITER_CANCELLED,
        .message = res->outcome == WAITER_MET ? NULL : xstrdup(res->message),
    };
    char *line =
        run_strf("%s (%u checks, %lld ms)", res->message, res->checks, (long long)res->elapsed_ms);
    run_log_append(tr->log_path, line);
    free(line);
    run_try_finish(tr, &e);
}

static void run_start_wait(struct run *r, uint32_t ii, struct run_try *tr)
{
    struct run_inst *in = run_inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    const struct dag_wait *w = &t->wait;
    char *msg = NULL;
    struct buf what = BUF_INIT(64 * 1024);
    const struct template *tp = w->file ? w->file : w->http_url;
    if (!tp || run_expand(r, tp, in, in->task, &what, &msg) < 0 ||
        (w->http_url && run_http_client(r, &msg) < 0)) {
        if (!msg)
            msg = xstrdup("wait task without a condition");
        run_log_append(tr->log_path, msg);
        buf_release(&what);
        run_try_free(tr);
        run_fail_try_now(r, ii, msg);
        return;
    }
    char *file = NULL;
    if (w->file)
        file = what.data[0] == '/' ? xstrdup(what.data) : run_strf("%s/%s", r->dag->dir, what.data);
    int64_t timeout = w->timeout_ms;
    if (t->timeout_ms > 0 && (timeout <= 0 || t->timeout_ms < timeout))
        timeout = t->timeout_ms;
    struct waiter_opts wo = {
        .file = file,
        .http_url = w->http_url ? what.data : NULL,
        .every_ms = w->every_ms,
        .timeout_ms = timeout,
    };
    char *line = run_strf("waiting for %s '%s'", file ? "file" : "url", file ? file : what.data);
    run_log_append(tr->log_path, line);
    free(line);
    in->cur = tr;
    int rc = waiter_start(r->e->loop, r->e->http, &wo, run_on_wait_done, tr, &tr->wt);
    free(file);
    buf_release(&what);
    if (rc < 0) {
        in->cur = NULL;
        run_try_free(tr);
        run_fail_try_now(r, ii, run_strf("cannot start the wait: %s", err_str(rc)));
        return;
    }
    /* A wait holds no slot while it waits (SPEC section 7). */
    in->slot_held = false;
    sched_done(&r->e->sched, r->tasks[in->task].pool);
}

/* Submits the 'running' records of an instance's current try if they are still pending. */
static void run_flush_running(struct run *r, uint32_t ii)
{
    struct run_inst *in = run_inst_at(r, ii);
    if (!in->rec_pending)
        return;
    in->rec_pending = false;
    run_put_ti(r, ii);
    run_put_try(r, ii, TI_RUNNING, -1);
}

void run_flush_running_rec(struct run *r, uint32_t inst)
{
    run_flush_running(r, inst);
}

/* sched start callback: a slot is ours; start the next try. */
void run_sched_start(void *owner, uint32_t ii)
{
    struct run *r = owner;
    run_mark(r); /* its records and end are looked at after the dispatch */
    struct run_inst *in = run_inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    int64_t now = when_now_ms();
    in->try_number++;
    in->state = TI_RUNNING;
    in->queued_at_ms = now;
    in->try_started_at_ms = now;
    if (in->started_at_ms < 0)
        in->started_at_ms = now;
    in->exit_code = -1;
    in->term_signal = 0;
    in->timed_out = false;
    in->pid = 0;
    in->slot_held = true;
    in->run_pos = (uint32_t)r->running.n;
    VEC_PUSH(&r->running, ii);

    struct run_try *tr = xcalloc(1, sizeof(*tr));
    tr->r = r;
    tr->inst = ii;
    char *dir = run_inst_dir(r, in);
    if (in->map_index < 0 && r->tasks[in->task].prep == RUN_PREP_DONE)
        in->dir_made = true; /* made ahead, with 1.log */
    if (!in->dir_made) {
        int rc = logprep_mkdirs(dir);
        if (rc < 0) {
            char *msg = run_strf("cannot create the log folder '%s': %s", dir, err_str(rc));
            free(dir);
            free(tr);
            run_put_ti(r, ii);
            run_fail_try_now(r, ii, msg);
            return;
        }
        in->dir_made = true;
    }
    tr->log_path = run_strf("%s/%d.log", dir, in->try_number);
    tr->out_path = run_strf("%s/%d.output", dir, in->try_number);
    free(dir);

    switch (t->kind) {
    case TASK_RUN:
        run_start_shell(r, ii, tr);
        break;
    case TASK_HTTP:
        run_start_http(r, ii, tr);
        break;
    case TASK_WAIT:
        run_start_wait(r, ii, tr);
        break;
    }
    in = run_inst_at(r, ii);
    if (in->state == TI_RUNNING) {
        run_prep_downstream(r, ii);
        /* Nothing waits for the 'running' records: submitted a little later (or with the
         * final ones), see RUN_RUNNING_DELAY_MS. */
        if (r->e) {
            in->rec_pending = true;
            engine_pend_running(r->e, r, ii);
        }
        run_progress(r, ii);
    }
}

static void run_retry_closed(uv_handle_t *h)
{
    struct run_retry *rr = h->data;
    struct run *r = rr->r;
    if (rr->prev)
        rr->prev->next = rr->next;
    else
        r->retries = rr->next;
    if (rr->next)
        rr->next->prev = rr->prev;
    r->nretry_timers--;
    free(rr);
    if (r->halted) {
        run_halt_check(r);
        return;
    }
    run_cork(r);
    run_pump(r);
    run_uncork(r);
}

static void run_retry_fire(uv_timer_t *h)
{
    struct run_retry *rr = h->data;
    struct run *r = rr->r;
    if (!r->cancelled && !r->fatal) {
        struct run_inst *in = run_inst_at(r, rr->inst);
        if (in->state == TI_UP_FOR_RETRY)
            run_ready(r, rr->inst, 0);
    }
    uv_close((uv_handle_t *)h, run_retry_closed);
}

/* The one completion path of every try. Takes e's strings. */
static void run_try_done(struct run *r, uint32_t ii, struct run_try_end *e)
{
    run_flush_running(r, ii); /* before the instance changes: they describe the running try */
    struct run_inst *in = run_inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    int64_t now = when_now_ms();
    if (in->slot_held)
        sched_done(&r->e->sched, r->tasks[in->task].pool);
    in->slot_held = false;
    /* out of the running set (swap-remove) */
    uint32_t pos = in->run_pos, last = r->running.v[r->running.n - 1];
    r->running.v[pos] = last;
    run_inst_at(r, last)->run_pos = pos;
    r->running.n--;
    in = run_inst_at(r, ii);
    if (r->halted) { /* the store keeps it 'running': the next scheduler retries it */
        free(e->output);
        free(e->message);
        run_halt_check(r);
        return;
    }

    in->exit_code = e->exit_code;
    in->term_signal = e->term_signal;
    in->timed_out = e->timed_out;
    free(in->output);
    in->output = e->output;
    in->output_len = e->output_len;
    free(in->message);
    in->message = e->message;

    enum ti_state try_state;
    if (e->killed && (r->cancelled || r->fatal)) {
        free(in->message);
        in->message = xstrdup("cancelled");
        try_state = TI_FAILED;
    } else if (e->exit_code == 0 && !e->timed_out) {
        try_state = TI_SUCCESS;
    } else if (e->exit_code == 99 && !e->timed_out) {
        try_state = TI_SKIPPED;
    } else {
        try_state = TI_FAILED;
    }

    if (try_state == TI_FAILED && in->try_number < in->max_tries && !r->cancelled && !r->fatal) {
        in->state = TI_UP_FOR_RETRY;
        run_put_try(r, ii, TI_FAILED, now);
        run_put_ti(r, ii);
        run_progress(r, ii);
        struct run_retry *rr = xcalloc(1, sizeof(*rr));
        rr->r = r;
        rr->inst = ii;
        uv_timer_init(r->e->loop, &rr->timer);
        rr->timer.data = rr;
        rr->next = r->retries;
        if (r->retries)
            r->retries->prev = rr;
        r->retries = rr;
        r->nretry_timers++;
        int64_t delay = retry_delay_ms(t->retry_delay_ms, t->retry_backoff, t->max_retry_delay_ms,
                                       in->try_number);
        uv_timer_start(&rr->timer, run_retry_fire, (uint64_t)delay, 0);
        return;
    }
    in->state = try_state;
    in->ended_at_ms = now;
    run_put_try(r, ii, try_state, now);
    in->final_seq = run_put_ti(r, ii);
    run_finish_inst(r, ii);
}

/* ---- the run's course ---- */

/* The run is over (records durable, hooks done): once no log preparation holds it, its
 * owner hears of it. */
static void run_stop(struct run *r)
{
    r->phase = RUN_PH_STOPPING;
    if (r->nprep_busy > 0)
        return; /* run_prep_done comes back here */
    r->phase = RUN_PH_DONE;
    log_debug("run ended", "dag=%s run=%s state=%s", log_q(r->dag->id), log_q(r->run_id),
              run_state_name(r->state));
    engine_run_ended(r->e, r);
}

void run_report_ended(struct run *r)
{
    if (r->ended)
        r->ended(r->ended_ud, r);
}

static void run_on_hook_exit(void *ud, const struct spawn_result *res)
{
    struct run *r = ud;
    r->hook = NULL;
    if (r->halted) {
        run_halt_check(r);
        return;
    }
    if (res->exit_code != 0)
        log_warn("hook failed", "dag=%s run=%s exit=%d", log_q(r->dag->id), log_q(r->run_id),
                 res->exit_code);
    run_stop(r);
}

static void run_hooks(struct run *r)
{
    const struct dag_hook *h = NULL;
    const char *name = NULL;
    if (r->state == RUN_SUCCESS) {
        h = &r->dag->on_success;
        name = "on_success";
    } else if (r->state == RUN_FAILED) {
        h = &r->dag->on_failure;
        name = "on_failure";
    }
    if (!h || !h->run) {
        run_stop(r);
        return;
    }
    r->phase = RUN_PH_HOOK;
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    char *msg = NULL;
    r->hook_log = run_strf("%s/%s.log", r->logdir, name);
    if (run_expand(r, h->run, NULL, UINT32_MAX, &cmd, &msg) < 0) {
        run_log_append(r->hook_log, msg);
        log_warn("hook not run", "dag=%s hook=%s reason=%s", log_q(r->dag->id), name, log_q(msg));
        free(msg);
        buf_release(&cmd);
        run_stop(r);
        return;
    }
    run_strv env = {0};
    char *own[4];
    own[0] = run_strf("BARAM_DAG=%s", r->dag->id);
    own[1] = run_strf("BARAM_RUN_ID=%s", r->run_id);
    own[2] = run_strf("BARAM_RUN_STATE=%s", run_state_name(r->state));
    own[3] = run_strf("BARAM_DS=%s", r->ds);
    for (char **e = environ; e && *e; e++) {
        if (strncmp(*e, "BARAM_DAG=", 10) == 0 || strncmp(*e, "BARAM_RUN_ID=", 13) == 0 ||
            strncmp(*e, "BARAM_RUN_STATE=", 16) == 0 || strncmp(*e, "BARAM_DS=", 9) == 0)
            continue;
        VEC_PUSH(&env, *e);
    }
    for (int i = 0; i < 4; i++)
        VEC_PUSH(&env, own[i]);
    for (size_t i = 0; i < r->dag_env.n; i++)
        VEC_PUSH(&env, r->dag_env.v[i]);
    VEC_PUSH(&env, NULL);
    struct spawn_opts so = {
        .cmd = cmd.data, .cwd = r->dag->dir, .env = env.v, .log_path = r->hook_log};
    int rc = spawn_start(r->e->loop, &so, run_on_hook_exit, r, &r->hook);
    for (int i = 0; i < 4; i++)
        free(own[i]);
    VEC_FREE(&env);
    buf_release(&cmd);
    if (rc < 0) {
        log_warn("hook not run", "dag=%s hook=%s err=%s", log_q(r->dag->id), name,
                 log_q(err_str(rc)));
        run_stop(r);
    }
}

static enum run_state run_final_state(struct run *r)
{
    if (r->cancelled)
        return RUN_CANCELLED;
    if (r->fatal)
        return RUN_FAILED;
    const struct dag *dag = r->dag;
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        if (graph_ndown(&dag->graph, t) != 0)
            continue;
        struct run_task *rt = &r->tasks[t];
        for (uint32_t k = 0; k < rt->ninst; k++) {
            enum ti_state st = run_inst_at(r, rt->inst_start + k)->state;
            if (st != TI_SUCCESS && st != TI_SKIPPED)
                return RUN_FAILED;
        }
    }
    return RUN_SUCCESS;
}

static void run_check_end(struct run *r)
{
    if (r->phase != RUN_PH_RUNNING)
        return;
    if (r->running.n > 0 || r->nretry_timers > 0)
        return;
    if (!r->cancelled && !r->fatal && r->ntasks_complete < r->dag->ntasks)
        return;
    r->phase = RUN_PH_ENDING;
    run_prep_cleanup(r);
    r->state = run_final_state(r);
    r->ended_at_ms = when_now_ms();
    r->end_seq = run_put_run(r);
    if (r->e->w && r->e->runs == r && !r->live_next)
        store_writer_set_linger(r->e->w, 0); /* the last run's end: nothing else to gather */
    if (r->end_seq == 0 || r->end_seq <= r->e->durable)
        run_hooks(r);
}

static void run_release_gates(struct run *r)
{
    while (r->gates_head < r->gates.n && r->gates.v[r->gates_head].seq <= r->e->durable) {
        uint32_t ii = r->gates.v[r->gates_head++].inst;
        struct run_inst *in = run_inst_at(r, ii);
        if (r->cancelled || r->fatal || in->state != TI_SCHEDULED)
            continue;
        const struct dag_task *t = &r->dag->tasks[in->task];
        in->ready_ns = when_mono_ns(); /* ready now that what it depends on is durable */
        sched_push(&r->e->sched, r, ii, t->priority, r->tasks[in->task].pool);
        VEC_PUSH(&r->readied, ii);
    }
    if (r->gates_head == r->gates.n)
        r->gates.n = r->gates_head = 0;
}

/* The engine's pump, before its dispatch: decide and release (see engine_pump). */
void run_pump_work(struct run *r)
{
    r->dirty = false;
    if (!r->touched) {
        r->touched = true;
        VEC_PUSH(&r->e->touched, r);
    }
    if (r->phase != RUN_PH_RUNNING || r->halted)
        return;
    while (r->work.n > 0) {
        uint32_t t = r->work.v[--r->work.n];
        r->tasks[t].queued_eval = false;
        if (!r->cancelled && !r->fatal)
            run_decide(r, t);
    }
    run_release_gates(r);
}

/* The engine's pump, after its dispatch: record who waits for a slot, maybe end. */
void run_pump_after(struct run *r)
{
    r->touched = false;
    if (r->phase != RUN_PH_RUNNING || r->halted)
        return;
    for (size_t i = 0; i < r->readied.n; i++) {
        uint32_t ii = r->readied.v[i];
        if (run_inst_at(r, ii)->state == TI_SCHEDULED) {
            run_put_ti(r, ii);
            run_progress(r, ii);
            run_prep(r, run_inst_at(r, ii)->task); /* waits for a slot: prepare meanwhile */
        }
    }
    r->readied.n = 0;
    run_check_end(r);
}

void run_durable(struct run *r)
{
    if (r->halted)
        return;
    if (r->phase == RUN_PH_ENDING) {
        if (r->e->durable >= r->end_seq)
            run_hooks(r);
        return;
    }
    if (r->phase == RUN_PH_RUNNING && r->gates_head < r->gates.n)
        run_mark(r);
}

/* The run stops: an instance that waits for a slot or for its retry will not start again, so
 * it must not stay 'scheduled' or 'up_for_retry' in the stored, finished run. One that has
 * tried is failed ("cancelled", like the tries that get killed); one that never started goes
 * back to 'none', like the instances whose upstream never finished. */
static void run_abort_waiting(struct run *r)
{
    int64_t now = when_now_ms();
    for (uint32_t ii = 0; ii < r->insts.n; ii++) {
        struct run_inst *in = run_inst_at(r, ii);
        if (in->state != TI_SCHEDULED && in->state != TI_UP_FOR_RETRY)
            continue;
        if (in->try_number == 0) {
            in->state = TI_NONE;
            in->scheduled_at_ms = -1;
            run_put_ti(r, ii);
            continue;
        }
        in->state = TI_FAILED;
        in->ended_at_ms = now;
        free(in->message);
        in->message = xstrdup("cancelled");
        in->final_seq = run_put_ti(r, ii);
        run_finish_inst(r, ii);
    }
}

/* Stops all work: nothing new starts, running process groups are killed, pending retries
 * are dropped. The run ends once every killed try has reported. */
static void run_abort(struct run *r)
{
    sched_drop(&r->e->sched, r);
    r->gates.n = r->gates_head = 0;
    run_abort_waiting(r);
    /* http and wait tries report from inside their cancel call, changing r->running: work on
     * a copy, and pump once at the end. */
    VEC(uint32_t) ids = {0};
    for (size_t i = 0; i < r->running.n; i++)
        VEC_PUSH(&ids, r->running.v[i]);
    r->no_pump = true;
    for (size_t i = 0; i < ids.n; i++) {
        struct run_inst *in = run_inst_at(r, ids.v[i]);
        if (in->state != TI_RUNNING || !in->cur)
            continue;
        if (in->cur->sp)
            spawn_kill(in->cur->sp);
        else if (in->cur->ht)
            httptask_cancel(in->cur->ht);
        else if (in->cur->wt)
            waiter_cancel(in->cur->wt);
    }
    r->no_pump = false;
    VEC_FREE(&ids);
    for (struct run_retry *rr = r->retries; rr; rr = rr->next)
        if (!uv_is_closing((uv_handle_t *)&rr->timer)) {
            uv_timer_stop(&rr->timer);
            uv_close((uv_handle_t *)&rr->timer, run_retry_closed);
        }
    run_pump(r);
}

void run_cancel(struct run *r)
{
    if (r->cancelled || r->fatal || r->halted || r->phase >= RUN_PH_STOPPING)
        return;
    log_info("cancelling the run", "run=%s", log_q(r->run_id));
    run_cork(r);
    r->cancelled = true;
    if (r->hook)
        spawn_kill(r->hook);
    if (r->phase == RUN_PH_RUNNING)
        run_abort(r);
    run_uncork(r);
}

void run_store_failed(struct run *r, const char *msg)
{
    if (r->halted)
        return;
    char *m = run_strf("store: %s", msg ? msg : "write failed");
    bool first = !r->fatal;
    run_set_fatal(r, m);
    free(m);
    if (first && !r->cancelled && r->phase == RUN_PH_RUNNING)
        run_abort(r);
    if (r->phase == RUN_PH_ENDING)
        run_hooks(r);
}

/* ---- setup and the front doors ---- */

/* The values of the DAG's params with the overrides applied (last override wins). */
static void run_params_init(struct run *r, const struct run_param *params, size_t nparams)
{
    const struct dag *dag = r->dag;
    r->param_values = xcalloc(dag->nparams ? dag->nparams : 1, sizeof(char *));
    for (size_t i = 0; i < dag->nparams; i++)
        r->param_values[i] = dag->params[i].value;
    r->owned_params = xcalloc(nparams ? nparams : 1, sizeof(char *));
    for (size_t i = 0; i < nparams; i++) {
        int pi = dag_param_index(dag, params[i].name);
        if (pi >= 0 && params[i].value) {
            r->owned_params[r->nowned_params] = xstrdup(params[i].value);
            r->param_values[pi] = r->owned_params[r->nowned_params++];
        }
    }
}

static void run_tasks_init(struct run *r)
{
    const struct dag *dag = r->dag;
    r->tasks = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof(*r->tasks));
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        struct run_task *rt = &r->tasks[t];
        const struct dag_task *dt = &dag->tasks[t];
        rt->env_name = run_env_name("OUTPUT_", dt->name);
        rt->pool = sched_pool(&r->e->sched, dt->pool ? dt->pool : "default");
        rt->cnt.pending = graph_nup(&dag->graph, t);
        if (!dt->mapped) {
            run_expand_task(r, t, NULL, 0);
        } else if (!dt->for_each && dt->nitems > 0) {
            char **items = xcalloc(dt->nitems, sizeof(char *));
            for (size_t i = 0; i < dt->nitems; i++)
                items[i] = xstrdup(dt->items[i]);
            run_expand_task(r, t, items, dt->nitems);
            free(items);
        }
    }
}

static void run_release(struct run *r)
{
    for (size_t i = 0; i < r->nrestore; i++) {
        free(r->restore[i].output);
        free(r->restore[i].message);
        free(r->restore_ids[i]);
    }
    free(r->restore);
    free(r->restore_ids);
    if (r->nrestore)
        hmap_release(&r->restore_by_id);
    for (size_t i = 0; i < r->nowned_params; i++)
        free(r->owned_params[i]);
    free(r->owned_params);
    free(r->owner);
    if (r->tasks) {
        for (uint32_t t = 0; t < r->dag->ntasks; t++) {
            free(r->tasks[t].out_json);
            free(r->tasks[t].env_name);
        }
    }
    free(r->tasks);
    for (size_t i = 0; i < r->insts.n; i++) {
        struct run_inst *in = &r->insts.v[i];
        free(in->id);
        free(in->item);
        free(in->output);
        free(in->message);
    }
    VEC_FREE(&r->insts);
    VEC_FREE(&r->running);
    VEC_FREE(&r->work);
    VEC_FREE(&r->readied);
    VEC_FREE(&r->prepped);
    VEC_FREE(&r->gates);
    run_env_release(r);
    free(r->param_values);
    free(r->logdir);
    free(r->fatal_msg);
    free(r->conf);
    free(r->hook_log);
}

int run_check_params(const struct dag *dag, const struct run_param *params, size_t nparams,
                     struct diag *d)
{
    int rc = 0;
    const char **names = xcalloc(dag->nparams ? dag->nparams : 1, sizeof(char *));
    for (size_t i = 0; i < dag->nparams; i++)
        names[i] = dag->params[i].name;
    for (size_t i = 0; i < nparams; i++) {
        const char *n = params[i].name;
        if (!n || !*n || !params[i].value) {
            rc = diag_err(d, dag->path, 0, 0, "malformed param '%s' (expected NAME=VALUE)",
                          n ? n : "");
            continue;
        }
        if (dag_param_index(dag, n) < 0) {
            rc = diag_err(d, dag->path, 0, 0, "unknown param '%s'", n);
            const char *s = suggest_closest(n, names, dag->nparams);
            if (s)
                diag_hint(d, "did you mean '%s'?", s);
        }
    }
    for (size_t i = 0; i < dag->nparams; i++) {
        if (dag->params[i].value)
            continue;
        bool given = false;
        for (size_t k = 0; k < nparams && !given; k++)
            given = params[k].name && strcmp(params[k].name, dag->params[i].name) == 0 &&
                    params[k].value;
        if (!given)
            rc = diag_err(d, dag->path, 0, 0, "param '%s' has no default and was not given",
                          dag->params[i].name);
    }
    free(names);
    return rc < 0 ? -EINVAL : 0;
}

char *run_diag_msg(struct diag *d)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < d->n; i++) {
        char *line = diag_format(&d->v[i]);
        RUN_IGN(buf_addf(&b, "%s%s", i ? "\n" : "", line));
        free(line);
    }
    return buf_detach(&b, NULL);
}

char *run_conf_json(const struct run_param *params, size_t nparams)
{
    if (nparams == 0)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; i < nparams; i++)
        if (params[i].name && params[i].value)
            json_object_set_new(o, params[i].name, json_string(params[i].value));
    char *s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(o);
    return s;
}

/* Copies the stored instances of a resumed run: the records replayed as Kahn's algorithm
 * reaches them (run_add_inst, run_replay). A try that was in flight when its scheduler died
 * is over: it is recorded as failed, and the instance starts afresh with the next try if it
 * has one (else it fails when reached). */
static void run_restore_init(struct run *r, const struct ti_rec *tis, size_t n)
{
    if (n == 0)
        return;
    r->restore = xcalloc(n, sizeof(*r->restore));
    r->restore_ids = xcalloc(n, sizeof(char *));
    hmap_init(&r->restore_by_id);
    for (size_t i = 0; i < n; i++) {
        const struct ti_rec *t = &tis[i];
        struct run_restore *rs = &r->restore[r->nrestore];
        rs->state = t->state;
        rs->try_number = t->try_number;
        rs->max_tries = t->max_tries;
        rs->exit_code = t->exit_code;
        if (t->output) {
            rs->output = xmemdup(t->output, t->output_len + 1);
            rs->output[t->output_len] = 0;
            rs->output_len = t->output_len;
        }
        rs->message = t->message ? xstrdup(t->message) : NULL;
        rs->scheduled_at_ms = t->scheduled_at_ms;
        rs->queued_at_ms = t->queued_at_ms;
        rs->started_at_ms = t->started_at_ms;
        rs->ended_at_ms = t->ended_at_ms;
        if ((t->state == TI_RUNNING || t->state == TI_QUEUED) && t->try_number > 0) {
            struct try_rec tr = {
                .run_id = r->run_id,
                .task_id = t->task_id,
                .try_number = t->try_number,
                .state = TI_FAILED,
                .exit_code = -1,
                .queued_at_ms = t->queued_at_ms,
                .started_at_ms = t->started_at_ms,
                .ended_at_ms = when_now_ms(),
            };
            uint64_t seq = store_writer_put_try(r->e->w, &tr);
            if (seq > r->last_seq)
                r->last_seq = seq;
            if (t->try_number >= t->max_tries) {
                rs->state = TI_FAILED;
                rs->ended_at_ms = when_now_ms();
                free(rs->message);
                rs->message = xstrdup("the scheduler stopped while its last try ran");
            } else {
                rs->state = TI_NONE;
            }
        }
        r->restore_ids[r->nrestore] = xstrdup(t->task_id);
        hmap_put(&r->restore_by_id, r->restore_ids[r->nrestore], strlen(t->task_id),
                 (uint32_t)r->nrestore);
        r->nrestore++;
    }
}

int run_begin(struct engine *e, const struct run_spec *sp, run_ended_fn ended, void *ud,
              struct run **out, char **errmsg)
{
    const struct dag *dag = sp->dag;
    struct run *r = xcalloc(1, sizeof(*r));
    int64_t now = when_now_ms();
    r->e = e;
    r->dag = dag;
    r->type = sp->type;
    r->logical_at_ms = sp->logical_at_ms;
    r->owner = sp->owner ? xstrdup(sp->owner) : NULL;
    r->progress = sp->progress;
    r->progress_ud = sp->progress_ud;
    r->ended = ended;
    r->ended_ud = ud;
    snprintf(r->run_id, sizeof(r->run_id), "%s", sp->run_id);
    r->queued_at_ms = sp->queued_at_ms >= 0 ? sp->queued_at_ms : now;
    r->started_at_ms = sp->started_at_ms >= 0 ? sp->started_at_ms : now;
    r->ended_at_ms = -1;
    r->started_mono_ms = when_mono_ms();
    r->state = RUN_RUNNING;
    r->conf = sp->conf ? xstrdup(sp->conf) : NULL;
    when_format_date(sp->logical_at_ms, r->ds, sizeof(r->ds));
    when_format_iso(sp->logical_at_ms, r->ts, sizeof(r->ts));
    /* Absolute: tasks run in the DAG's folder and get paths in here (BARAM_OUTPUT). */
    r->logdir = run_log_dir(e->home, dag->id, r->run_id, NULL, -1);
    int rc = logprep_mkdirs(r->logdir);
    if (rc < 0) {
        *errmsg = run_strf("cannot create '%s': %s", r->logdir, err_str(rc));
        free(r->logdir);
        free(r->conf);
        free(r->owner);
        free(r);
        return rc;
    }
    run_cork(r);
    r->last_seq =
        store_writer_put_dag_version(e->w, dag->hash, dag->id, dag->source, dag->source_len);
    run_params_init(r, sp->params, sp->nparams);
    run_restore_init(r, sp->tis, sp->ntis);
    run_tasks_init(r);
    run_env_init(r);
    r->live_next = e->runs;
    if (e->runs)
        e->runs->live_prev = r;
    e->runs = r;
    log_debug("run started", "dag=%s run=%s tasks=%u resumed=%zu", log_q(dag->id), log_q(r->run_id),
              dag->ntasks, r->nrestore);

    run_put_run(r);
    for (uint32_t i = 0; i < r->insts.n; i++)
        if (run_inst_at(r, i)->restore_idx < 0) /* a stored one keeps its record until replayed */
            run_put_ti(r, i);
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        if (graph_nup(&dag->graph, t) == 0) {
            r->tasks[t].queued_eval = true;
            VEC_PUSH(&r->work, t);
        }
    }
    /* Roots first in file order: the worklist pops from its end. */
    for (size_t i = 0, j = r->work.n; i < j / 2; i++) {
        uint32_t x = r->work.v[i];
        r->work.v[i] = r->work.v[j - 1 - i];
        r->work.v[j - 1 - i] = x;
    }
    *out = r;
    run_pump(r);
    run_uncork(r);
    return 0;
}

/* A halted run ends once its killed tries, retry timers and hook have reported. */
static void run_halt_check(struct run *r)
{
    if (r->phase >= RUN_PH_STOPPING || r->running.n > 0 || r->nretry_timers > 0 || r->hook)
        return;
    run_prep_cleanup(r);
    run_stop(r);
}

void run_halt(struct run *r)
{
    if (r->halted || r->phase >= RUN_PH_STOPPING)
        return;
    log_info("run halted", "run=%s running=%zu", log_q(r->run_id), r->running.n);
    sched_drop(&r->e->sched, r);
    r->gates.n = r->gates_head = 0;
    VEC(uint32_t) ids = {0};
    for (size_t i = 0; i < r->running.n; i++)
        VEC_PUSH(&ids, r->running.v[i]);
    /* A try stopped by the shutdown is not the task's failure: it is recorded as failed but
     * gets a try more, and the instance waits for its retry, which the next scheduler
     * starts at once. Nothing else changes: the run stays 'running'. */
    run_cork(r);
    int64_t now = when_now_ms();
    for (size_t i = 0; i < ids.n; i++) {
        uint32_t ii = ids.v[i];
        run_flush_running(r, ii);
        struct run_inst *in = run_inst_at(r, ii);
        if (in->state != TI_RUNNING)
            continue;
        free(in->message);
        in->message = xstrdup("stopped: the scheduler shut down (the try is given back)");
        run_put_try(r, ii, TI_FAILED, now);
        in->state = TI_UP_FOR_RETRY;
        in->max_tries++;
        run_put_ti(r, ii);
    }
    run_uncork(r);
    r->halted = true;
    for (size_t i = 0; i < ids.n; i++) {
        struct run_inst *in = run_inst_at(r, ids.v[i]);
        if (!in->cur)
            continue;
        if (in->cur->sp) {
            if (in->pid > 0)
                kill(-in->pid, SIGKILL); /* no grace left: the daemon is going */
            spawn_kill(in->cur->sp);
        } else if (in->cur->ht) {
            httptask_cancel(in->cur->ht);
        } else if (in->cur->wt) {
            waiter_cancel(in->cur->wt);
        }
    }
    VEC_FREE(&ids);
    for (struct run_retry *rr = r->retries; rr; rr = rr->next)
        if (!uv_is_closing((uv_handle_t *)&rr->timer)) {
            uv_timer_stop(&rr->timer);
            uv_close((uv_handle_t *)&rr->timer, run_retry_closed);
        }
    if (r->hook)
        spawn_kill(r->hook);
    run_halt_check(r);
}

size_t run_in_flight(const struct run *r)
{
    return r->running.n;
}

void run_free(struct run *r)
{
    if (!r)
        return;
    struct engine *e = r->e;
    if (r->live_prev)
        r->live_prev->live_next = r->live_next;
    else if (e->runs == r)
        e->runs = r->live_next;
    if (r->live_next)
        r->live_next->live_prev = r->live_prev;
    engine_forget_run(e, r);
    run_release(r);
    free(r);
}

const char *run_get_id(const struct run *r)
{
    return r->run_id;
}

const struct dag *run_get_dag(const struct run *r)
{
    return r->dag;
}

enum run_state run_get_state(const struct run *r)
{
    return r->state;
}

const char *run_get_error(const struct run *r)
{
    return r->fatal ? (r->fatal_msg ? r->fatal_msg : "store failure") : NULL;
}

bool run_get_ended(const struct run *r)
{
    return r->phase == RUN_PH_DONE;
}

struct run *run_next_live(struct run *r)
{
    return r->live_next;
}

/* ---- `baram tasks test` ---- */

/* The task runs in its own session, so Ctrl-C (or a hangup) at the terminal reaches baram
 * alone: these signals kill the task's process group, as for `baram run`, instead of killing
 * baram and leaving the task running. A signal ignored at start (nohup) stays ignored. */
static const int run_test_signals[] = {SIGINT, SIGTERM, SIGHUP};

struct run_test_ctx {
    int exit_code;
    bool done;
    struct spawn *sp; /* until run_test_exit */
    uv_signal_t sig[ARRAY_SIZE(run_test_signals)];
    bool sig_on[ARRAY_SIZE(run_test_signals)];
};

static void run_test_signal(uv_signal_t *h, int signum)
{
    struct run_test_ctx *c = h->data;
    (void)signum;
    if (c->sp)
        spawn_kill(c->sp);
}

static void run_test_exit(void *ud, const struct spawn_result *res)
{
    struct run_test_ctx *c = ud;
    c->exit_code = res->term_signal ? 128 + res->term_signal : res->exit_code;
    if (res->timed_out && (c->exit_code == 0 || c->exit_code == 99))
        c->exit_code = 124; /* a timed-out try fails however it exits (timeout(1)'s code) */
    c->done = true;
    c->sp = NULL;
    for (size_t i = 0; i < ARRAY_SIZE(run_test_signals); i++)
        if (c->sig_on[i])
            uv_close((uv_handle_t *)&c->sig[i], NULL);
}

int run_task_test(const struct dag *dag, uint32_t task, const struct run_param *params,
                  size_t nparams, int64_t logical_at_ms, int *exit_code, char **errmsg)
{
    *errmsg = NULL;
    *exit_code = -1;
    if (task >= dag->ntasks) {
        *errmsg = xstrdup("no such task");
        return -EINVAL;
    }
    const struct dag_task *dt = &dag->tasks[task];
    if (dt->kind == TASK_HTTP) {
        *errmsg = xstrdup("tasks test runs only 'run' tasks for now (this one is an http task)");
        return -ENOTSUP;
    }
    if (dt->kind == TASK_WAIT) {
        *errmsg = xstrdup("tasks test runs only 'run' tasks for now (this one is a wait task)");
        return -ENOTSUP;
    }
    if (dt->mapped && (dt->for_each || dt->nitems == 0)) {
        *errmsg = xstrdup("cannot test a mapped task whose items come from upstream outputs");
        return -EINVAL;
    }
    struct diag d;
    diag_init(&d);
    if (run_check_params(dag, params, nparams, &d) < 0) {
        *errmsg = run_diag_msg(&d);
        diag_release(&d);
        return -EINVAL;
    }
    diag_release(&d);

    struct run *r = xcalloc(1, sizeof(*r));
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        free(r);
        *errmsg = run_strf("cannot start the event loop: %s", err_str(rc));
        return rc;
    }
    char iso[32];
    when_format_iso(when_now_ms(), iso, sizeof(iso));
    snprintf(r->run_id, sizeof(r->run_id), "test__%s", iso);
    r->dag = dag;
    r->logical_at_ms = logical_at_ms;
    when_format_date(logical_at_ms, r->ds, sizeof(r->ds));
    when_format_iso(logical_at_ms, r->ts, sizeof(r->ts));
    run_params_init(r, params, nparams);
    r->tasks = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof(*r->tasks));
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        r->tasks[t].env_name = run_env_name("OUTPUT_", dag->tasks[t].name);
        r->tasks[t].complete = true; /* upstream outputs are empty */
    }
    run_env_init(r);
    uint32_t ii =
        run_add_inst(r, task, dt->mapped ? 0 : -1, dt->mapped ? xstrdup(dt->items[0]) : NULL);
    struct run_inst *in = run_inst_at(r, ii);
    in->try_number = 1;

    char tmpl[] = "/tmp/baram-test-XXXXXX";
    const char *tmpdir = mkdtemp(tmpl);
    char *out_path = tmpdir ? run_strf("%s/output", tmpdir) : NULL;
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    char *msg = NULL;
    rc = run_expand(r, dt->run, in, task, &cmd, &msg);
    if (rc < 0) {
        *errmsg = msg;
    } else {
        run_strv env = {0}, owned = {0};
        run_env_try(r, in, out_path, &env, &owned);
        struct run_test_ctx c = {0};
        struct spawn_opts so = {.cmd = cmd.data,
                                .cwd = dag->dir,
                                .env = env.v,
                                .inherit_stdio = true,
                                .timeout_ms = dt->timeout_ms};
        /* Watched from before the start, so a signal cannot slip in between. */
        for (size_t i = 0; i < ARRAY_SIZE(run_test_signals); i++) {
            struct sigaction old;
            if (sigaction(run_test_signals[i], NULL, &old) < 0 || old.sa_handler == SIG_IGN)
                continue;
            uv_signal_init(&loop, &c.sig[i]);
            c.sig[i].data = &c;
            uv_signal_start(&c.sig[i], run_test_signal, run_test_signals[i]);
            c.sig_on[i] = true;
        }
        struct spawn *sp;
        rc = spawn_start(&loop, &so, run_test_exit, &c, &sp);
        for (size_t i = 0; i < owned.n; i++)
            free(owned.v[i]);
        VEC_FREE(&owned);
        VEC_FREE(&env);
        if (rc < 0) {
            *errmsg = run_strf("cannot start the process: %s", err_str(rc));
            for (size_t i = 0; i < ARRAY_SIZE(run_test_signals); i++)
                if (c.sig_on[i])
                    uv_close((uv_handle_t *)&c.sig[i], NULL);
            uv_run(&loop, UV_RUN_DEFAULT); /* the closes, while c is in scope */
        } else {
            c.sp = sp;
            uv_run(&loop, UV_RUN_DEFAULT);
            *exit_code = c.exit_code;
        }
    }
    buf_release(&cmd);
    if (out_path) {
        unlink(out_path);
        free(out_path);
    }
    if (tmpdir)
        rmdir(tmpdir);
    run_release(r);
    free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) == UV_EBUSY) {
        BUG("tasks test loop still has open handles");
    }
    return rc < 0 ? rc : 0;
}

int run_conf_parse(const char *json, struct run_param **out, size_t *n, char **errmsg)
{
    *out = NULL;
    *n = 0;
    if (!json || !*json)
        return 0;
    json_error_t jerr;
    json_t *o = json_loads(json, JSON_REJECT_DUPLICATES, &jerr);
    if (!o || !json_is_object(o)) {
        *errmsg = o ? xstrdup("conf must be a JSON object of params, like {\"region\": \"eu\"}")
                    : run_strf("conf is not valid JSON: %s (line %d, column %d)", jerr.text,
                               jerr.line, jerr.column);
        json_decref(o);
        return -EINVAL;
    }
    struct run_param *v = xcalloc(json_object_size(o) + 1, sizeof(*v));
    size_t k = 0;
    const char *key;
    json_t *val;
    json_object_foreach(o, key, val)
    {
        char *sv;
        if (json_is_string(val))
            sv = xstrndup(json_string_value(val), json_string_length(val));
        else if (json_is_integer(val) || json_is_real(val) || json_is_boolean(val)) {
            char *d = json_dumps(val, JSON_ENCODE_ANY | JSON_COMPACT);
            sv = xstrdup(d ? d : "");
            free(d);
        } else {
            *errmsg = run_strf("conf param '%s' must be a string, number or boolean", key);
            for (size_t i = 0; i < k; i++) {
                free((char *)v[i].name);
                free((char *)v[i].value);
            }
            free(v);
            json_decref(o);
            return -EINVAL;
        }
        v[k].name = xstrdup(key);
        v[k].value = sv;
        k++;
    }
    json_decref(o);
    *out = v;
    *n = k;
    return 0;
}

void run_conf_free(struct run_param *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free((char *)v[i].name);
        free((char *)v[i].value);
    }
    free(v);
}
