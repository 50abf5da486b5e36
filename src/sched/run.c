/*
 * run.c - one run of a DAG on an engine's loop: its task instances, the
 * trigger decisions, for_each expansion, outputs, the durable record of
 * every state change, replay when resuming, its end, cancel and halt.
 * Tries are in runtry.c, templates and environments in runenv.c, the
 * private structures in run_int.h.
 *
 * Key ideas:
 *  - Kahn's algorithm on compact per-task and per-instance arrays indexed
 *    by number: finishing an instance adds its state to each downstream
 *    task's counts and, when its task is complete, decrements the
 *    downstream's pending-upstream counter; only the downstream touched are
 *    re-decided (trigger_decide), through a worklist. A run costs
 *    O(tasks + edges); nothing scans all tasks per event.
 *  - Durability gate: a try is claimed when it gets a slot (its instance's
 *    record, 'queued' with the new try number) and its
 *    process starts only once the store writer reports that claim durable.
 *    So a try is started at most once, even by a scheduler killed at any
 *    moment: after a restart a claimed try counts as failed (SPEC section
 *    5). The claim is recorded after whatever made the instance ready (its
 *    upstream's final records), so once it is durable so are they: no
 *    finished task runs again. It costs no commit of its own on the
 *    critical path: a downstream's claim goes into the same transaction as
 *    the final records of the upstream that released it, the claim of a
 *    slot freed by an ending try into that try's, and the first tasks'
 *    into the run's first. Other records are never waited for; 'running'
 *    ones (with the pid) are even submitted late (ENGINE_RUNNING_DELAY_MS)
 *    or with the final ones. Skips and upstream_failed cascade at once in
 *    memory. A run not gated on durability (`baram run`) starts at once.
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

#include "exec/notify.h"
#include "sched/run_int.h"

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
#include "dag/duration.h"
#include "dag/params.h"
#include "dag/template.h"
#include "exec/httptask.h"
#include "exec/spawn.h"
#include "exec/waiter.h"
#include "sched/engine.h"
#include "sched/logpath.h"
#include "sched/logprep.h"
#include "sched/metrics.h"
#include "sched/retry.h"
#include "sched/sched.h"
#include "sched/trigger.h"
#include "store/store.h"

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
void run__cork(struct run *r)
{
    if (r->e)
        engine_cork(r->e);
}

void run__uncork(struct run *r)
{
    if (r->e)
        engine_uncork(r->e);
}

/* The run has something to decide: the next engine_pump does it. */
void run__mark(struct run *r)
{
    if (!r->e || r->dirty)
        return;
    r->dirty = true;
    VEC_PUSH(&r->e->dirty, r);
}

/* After an event of this run: mark it and pump the engine. */
void run__pump(struct run *r)
{
    run__mark(r);
    if (r->e)
        engine_pump(r->e);
}

uint64_t run__put_ti(struct run *r, uint32_t ii)
{
    if (!r->e || !r->e->w)
        return 0;
    struct run_inst *in = run__inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    struct ti_rec rec = {
        .run_id = r->run_id,
        .task_id = (char *)run__inst_id(r, in),
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

uint64_t run__put_try(struct run *r, uint32_t ii, enum ti_state st, int64_t ended_at_ms)
{
    if (!r->e || !r->e->w)
        return 0;
    struct run_inst *in = run__inst_at(r, ii);
    struct try_rec rec = {
        .run_id = r->run_id,
        .task_id = (char *)run__inst_id(r, in),
        .try_number = in->try_number,
        .state = st,
        .exit_code = ended_at_ms < 0 ? -1 : in->exit_code,
        .term_signal = in->term_signal,
        .timed_out = in->timed_out,
        .queued_at_ms = in->queued_at_ms,
        .started_at_ms = in->try_started_at_ms,
        .ended_at_ms = ended_at_ms,
        .pid = in->pid,
        .worker = in->worker,
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

void run__progress(struct run *r, uint32_t ii)
{
    if (!r->progress)
        return;
    const char *ids[RUN_PROGRESS_IDS];
    size_t nids = 0;
    for (size_t i = 0; i < r->running.n && nids < RUN_PROGRESS_IDS; i++)
        ids[nids++] = run__inst_id(r, run__inst_at(r, r->running.v[i]));
    struct run_inst *in = run__inst_at(r, ii);
    struct run_progress p = {
        .total = (uint32_t)r->insts.n,
        .done = r->ndone,
        .running = (uint32_t)r->running.n,
        .failed = r->nfailed,
        .elapsed_ms = when_mono_ms() - r->started_mono_ms,
        .task_id = run__inst_id(r, in),
        .state = in->state,
        .running_ids = ids,
        .nrunning_ids = nids,
    };
    r->progress(r->progress_ud, &p);
}

/* ---- instance creation and decisions ---- */

uint32_t run__add_inst(struct run *r, uint32_t task, int32_t map_index, char *item)
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
        in.id = xasprintf("%s[%d]", t->name, map_index);
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
        run__add_inst(r, t, -1, NULL);
        rt->ninst = 1;
    } else {
        for (size_t i = 0; i < nitems; i++)
            run__add_inst(r, t, (int32_t)i, items[i]);
        rt->ninst = (uint32_t)nitems;
    }
    rt->expanded = true;
}

/* A mapped task with nothing to run: one placeholder instance "TASK" (map_index -1). */
static void run_expand_placeholder(struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    rt->inst_start = (uint32_t)r->insts.n;
    run__add_inst(r, t, -1, NULL);
    rt->ninst = 1;
    rt->expanded = true;
}

static bool run_replay(struct run *r, uint32_t ii);

/* Sets a finished state decided without a process (skipped / upstream_failed) on each instance
 * of t that has not started. Resuming, an instance whose stored state is final (marked by
 * `tasks mark`, ops.h) keeps it. */
static void run_decide_finished(struct run *r, uint32_t t, enum ti_state st, const char *msg)
{
    struct run_task *rt = &r->tasks[t];
    if (!rt->expanded)
        run_expand_placeholder(r, t);
    run__prep_drop(r, t);
    int64_t now = when_now_ms();
    for (uint32_t k = 0; k < rt->ninst; k++) {
        uint32_t ii = rt->inst_start + k;
        struct run_inst *in = run__inst_at(r, ii);
        if (in->restore_idx >= 0 && run_replay(r, ii))
            continue;
        in->state = st;
        in->ended_at_ms = now;
        free(in->message);
        in->message = msg ? xstrdup(msg) : NULL;
        run__put_ti(r, ii);
        run__finish_inst(r, ii);
    }
}

/* Resuming: an instance that had finished by a try takes its stored result instead of
 * running again. true when it did. */
static bool run_replay(struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    if (in->restore_idx < 0)
        return false;
    struct run_restore *rs = &r->restore[in->restore_idx];
    in->restore_idx = -1;
    if (rs->inflight && r->e->remote && !r->draining) {
        /* Its try runs on a worker: in flight, as if this run had handed it out. It holds
         * no slot of this scheduler's (its row holds its pool's in the database). */
        in->state = rs->state;
        in->try_number = rs->try_number;
        in->scheduled_at_ms = rs->scheduled_at_ms;
        in->queued_at_ms = rs->queued_at_ms;
        in->try_started_at_ms = rs->state == TI_RUNNING ? rs->started_at_ms : -1;
        in->ended_at_ms = -1;
        in->exit_code = -1;
        in->slot_held = false;
        in->run_pos = (uint32_t)r->running.n;
        VEC_PUSH(&r->running, ii);
        run__remote_adopt(r, ii);
        run__put_ti(r, ii);
        run__progress(r, ii);
        return true;
    }
    if (rs->state == TI_UP_FOR_RETRY && rs->try_number > 0 && rs->ended_at_ms >= 0 &&
        in->try_number < in->max_tries) {
        /* It waited for its retry when the run stopped (or its try was lost with its
         * scheduler): it waits what is left of the delay, showing why its last try failed. */
        free(in->message);
        in->message = rs->message;
        rs->message = NULL;
        const struct dag_task *t = &r->dag->tasks[in->task];
        int64_t left = rs->ended_at_ms +
                       retry_delay_ms(t->retry_delay_ms, t->retry_backoff, t->max_retry_delay_ms,
                                      rs->try_number) -
                       when_now_ms();
        if (left > 0) {
            in->state = TI_UP_FOR_RETRY;
            in->ended_at_ms = rs->ended_at_ms;
            run__put_ti(r, ii);
            run__retry_after(r, ii, left);
            return true;
        }
        return false;
    }
    /* A final state without a try is a mark's (`tasks mark`, `runs mark`): kept as well. */
    if (rs->state != TI_SUCCESS && rs->state != TI_FAILED && rs->state != TI_SKIPPED)
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
    run__put_ti(r, ii);
    run__finish_inst(r, ii);
    return true;
}

void run__ready(struct run *r, uint32_t ii)
{
    if (run_replay(r, ii))
        return;
    if (r->draining)
        return; /* decided again when the run resumes */
    struct run_inst *in = run__inst_at(r, ii);
    in->state = TI_SCHEDULED;
    in->scheduled_at_ms = when_now_ms();
    in->ready_ns = when_mono_ns();
    VEC_PUSH(&r->readied, ii);
    if (r->tasks[in->task].past_wait && !run__past_ready(r, ii))
        return; /* depends_on_past: waits for its instance in the previous run */
    /* No wait for durability here: the try's claim, made when it gets a slot, is recorded
     * after what made it ready and is waited for (run__sched_start). */
    engine__push(r->e, r, ii);
}

/* for_each over a template: its expansion as items. 0, or -1 with *msg. */
static int run_for_each_items(struct run *r, uint32_t t, char ***items, size_t *nitems, char **msg)
{
    const struct dag_task *dt = &r->dag->tasks[t];
    struct buf b = BUF_INIT(16 * 1024 * 1024);
    VEC(char *) v = {0};
    if (run__expand(r, dt->for_each, NULL, t, &b, msg) < 0) {
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
                char *d = json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY | PARAMS_JSON_REALS);
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
            struct run_inst *in = run__inst_at(r, rt->inst_start);
            in->state = TI_FAILED;
            in->ended_at_ms = when_now_ms();
            in->message = msg;
            run__put_ti(r, rt->inst_start);
            run__finish_inst(r, rt->inst_start);
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
            run__put_ti(r, rt->inst_start + k); /* 'none' records of the new instances */
    } else if (!rt->expanded) {                 /* a literal list with no items */
        rt->decided = true;
        run_decide_finished(r, t, TI_SKIPPED, "for_each gave no items");
        return;
    }
    rt->decided = true;
    for (uint32_t k = 0; k < rt->ninst; k++)
        run__ready(r, rt->inst_start + k);
}

/* An instance reached a finished state (its record is submitted). */
void run__finish_inst(struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    uint32_t t = in->task;
    struct run_task *rt = &r->tasks[t];
    enum ti_state st = in->state;
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
                struct run_inst *x = run__inst_at(r, rt->inst_start + k);
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
    run__progress(r, ii);
    if (r->e && r->e->npast > 0)
        engine__past_notify(r->e, r); /* runs whose depends_on_past waits on this one */
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
        if (complete)
            dtk->cnt.pending--;
        if (!dtk->decided && !dtk->queued_eval) {
            dtk->queued_eval = true;
            VEC_PUSH(&r->work, d);
        }
    }
}

/* ---- the run's course ---- */

/* The run is over (records durable, hooks done): once no log preparation holds it, its
 * owner hears of it. */
void run__stop(struct run *r)
{
    r->phase = RUN_PH_STOPPING;
    if (r->nprep_busy > 0)
        return; /* run__prep_done comes back here */
    r->phase = RUN_PH_DONE;
    log_debug("run ended", "dag=%s run=%s state=%s", log_q(r->dag->id), log_q(r->run_id),
              run_state_name(r->state));
    engine__run_ended(r->e, r);
}

void run__report_ended(struct run *r)
{
    if (r->ended)
        r->ended(r->ended_ud, r);
}

static void run_on_hook_exit(void *ud, const struct spawn_result *res)
{
    struct run *r = ud;
    r->hook = NULL;
    if (r->halted) {
        run__halt_check(r);
        return;
    }
    if (res->exit_code != 0)
        log_warn("hook failed", "dag=%s run=%s exit=%d", log_q(r->dag->id), log_q(r->run_id),
                 res->exit_code);
    run__stop(r);
}

void run__hooks(struct run *r)
{
    run__deadline_disarm(r);
    if (r->nhookprocs > 0) { /* the last task hook to exit comes back here */
        r->end_after_hooks = true;
        return;
    }
    r->end_after_hooks = false;
    const struct dag_hook *h = NULL;
    const char *name = NULL;
    if (r->state == RUN_SUCCESS) {
        h = &r->dag->on_success;
        name = "on_success";
    } else if (r->state == RUN_FAILED) {
        h = &r->dag->on_failure;
        name = "on_failure";
    }
    if (h && h->notify) /* a delivery holds nothing of the run */
        run__dag_notify(r, h, name);
    if (!h || !h->run) {
        run__stop(r);
        return;
    }
    r->phase = RUN_PH_HOOK;
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    char *msg = NULL;
    r->hook_log = logpath_hook(r->logdir, name, "log");
    if (run__expand(r, h->run, NULL, UINT32_MAX, &cmd, &msg) < 0) {
        run__log_append_run(r, r->hook_log, msg);
        log_warn("hook not run", "dag=%s hook=%s reason=%s", log_q(r->dag->id), name, log_q(msg));
        free(msg);
        buf_release(&cmd);
        run__stop(r);
        return;
    }
    run_strv env = {0}, owned = {0};
    struct notify_facts f = {.dag = r->dag->id,
                             .run_id = r->run_id,
                             .hook = name,
                             .state = run_state_name(r->state),
                             .message = r->fatal ? r->fatal_msg : NULL};
    run__env_hook(r, &f, &env, &owned);
    char *cmd_file = logpath_hook(r->logdir, name, "sh");
    struct spawn_opts so = {.cmd = cmd.data,
                            .cmd_file = cmd_file,
                            .cwd = r->dag->dir,
                            .env = env.v,
                            .log_path = r->hook_log,
                            .grace_ms = DAG_KILL_GRACE_MS};
    so.nmask = run__vars_mask(r, &so.mask_vals, &so.mask_lens);
    int rc = run__spawn(r->e->loop, &so, run_on_hook_exit, r, &r->hook, &msg);
    run__env_try_release(&env, &owned);
    free(cmd_file);
    buf_release(&cmd);
    if (rc < 0) {
        run__log_append_run(r, r->hook_log, msg);
        log_warn("hook not run", "dag=%s hook=%s err=%s", log_q(r->dag->id), name, log_q(msg));
        free(msg);
        run__stop(r);
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
            enum ti_state st = run__inst_at(r, rt->inst_start + k)->state;
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
    run__prep_cleanup(r);
    r->state = run_final_state(r);
    r->ended_at_ms = when_now_ms();
    r->end_seq = run_put_run(r);
    if (r->e->w && r->e->runs == r && !r->live_next)
        store_writer_set_linger(r->e->w, 0); /* the last run's end: nothing else to gather */
    if (r->end_seq == 0 || r->end_seq <= r->e->durable)
        run__hooks(r);
}

/* A draining run halts once no try is in flight and all it recorded is durable. */
static void run_drain_check(struct run *r)
{
    if (r->draining && !r->halted && r->phase == RUN_PH_RUNNING && r->running.n == 0 &&
        r->last_seq <= r->e->durable)
        run_halt(r);
}

/* Starts the claimed tries whose claim is durable (in claim order). A draining run starts
 * them too: a claimed try is in flight, like a running one. */
static void run_release_gates(struct run *r)
{
    while (r->gates_head < r->gates.n && r->gates.v[r->gates_head].seq <= r->e->durable) {
        uint32_t ii = r->gates.v[r->gates_head++].inst;
        struct run_inst *in = run__inst_at(r, ii);
        if (in->state == TI_QUEUED && !in->cur) {
            in->ready_ns = when_mono_ns(); /* latency from what it depends on being durable */
            run__try_start(r, ii);
        }
    }
    if (r->gates_head == r->gates.n)
        r->gates.n = r->gates_head = 0;
}

/* The engine's pump, before its dispatch: decide and release (see engine_pump). */
void run__pump_work(struct run *r)
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
void run__pump_after(struct run *r)
{
    r->touched = false;
    if (r->phase != RUN_PH_RUNNING || r->halted)
        return;
    for (size_t i = 0; i < r->readied.n; i++) {
        uint32_t ii = r->readied.v[i];
        if (run__inst_at(r, ii)->state == TI_SCHEDULED) {
            run__put_ti(r, ii);
            run__progress(r, ii);
            run__prep(r, run__inst_at(r, ii)->task); /* waits for a slot: prepare meanwhile */
        }
    }
    r->readied.n = 0;
    run_check_end(r);
    run_drain_check(r);
}

void run__durable(struct run *r)
{
    if (r->halted)
        return;
    run_drain_check(r);
    if (r->halted)
        return;
    if (r->phase == RUN_PH_ENDING) {
        if (r->e->durable >= r->end_seq)
            run__hooks(r);
        return;
    }
    if (r->phase == RUN_PH_RUNNING && r->gates_head < r->gates.n)
        run__mark(r);
}

/* The run stops: an instance that waits for a slot or for its retry will not start again, so
 * it must not stay 'scheduled' or 'up_for_retry' in the stored, finished run. One that has
 * tried is failed ("cancelled", like the tries that get killed); one that never started goes
 * back to 'none', like the instances whose upstream never finished. */
static void run_abort_waiting(struct run *r)
{
    int64_t now = when_now_ms();
    for (uint32_t ii = 0; ii < r->insts.n; ii++) {
        struct run_inst *in = run__inst_at(r, ii);
        if (in->state != TI_SCHEDULED && in->state != TI_UP_FOR_RETRY)
            continue;
        if (in->try_number == 0) {
            in->state = TI_NONE;
            in->scheduled_at_ms = -1;
            if (in->past_held) { /* its depends_on_past wait is over with the run */
                in->past_held = false;
                free(in->message);
                in->message = NULL;
            }
            run__put_ti(r, ii);
            continue;
        }
        in->state = TI_FAILED;
        in->ended_at_ms = now;
        free(in->message);
        in->message = xstrdup(r->timed_out ? "run timed out" : "cancelled");
        run__put_ti(r, ii);
        run__finish_inst(r, ii);
    }
}

/* Kills instance ii's try in flight: a process group, an http request, a wait, or a worker's
 * try (its worker kills it, or it is withdrawn). A claimed try not started yet: with unclaim,
 * its claim ends; else it is left to start and end. */
static void run_kill_inst(struct run *r, uint32_t ii, bool unclaim)
{
    struct run_inst *in = run__inst_at(r, ii);
    if (in->state == TI_QUEUED && !in->cur) {
        if (unclaim)
            run__claim_end(r, ii); /* claimed, not started: nothing to kill */
        return;
    }
    if (in->cur && in->cur->remote) {
        if (!in->cur->kill_sent)
            run__remote_kill(r, ii);
        return;
    }
    if (in->state != TI_RUNNING || !in->cur)
        return;
    if (in->cur->sp)
        spawn_kill(in->cur->sp);
    else if (in->cur->ht)
        httptask_cancel(in->cur->ht);
    else if (in->cur->wt)
        waiter_cancel(in->cur->wt);
}

/* Stops all work: nothing new starts, running process groups are killed, pending retries
 * are dropped. The run ends once every killed try has reported. */
static void run_abort(struct run *r)
{
    engine__drop(r->e, r);
    r->gates.n = r->gates_head = 0; /* their claims end below, with the running tries */
    run_abort_waiting(r);
    /* http and wait tries report from inside their cancel call, changing r->running: work on
     * a copy, and pump once at the end. */
    VEC(uint32_t) ids = {0};
    for (size_t i = 0; i < r->running.n; i++)
        VEC_PUSH(&ids, r->running.v[i]);
    r->no_pump = true;
    for (size_t i = 0; i < ids.n; i++)
        run_kill_inst(r, ids.v[i], true);
    r->no_pump = false;
    VEC_FREE(&ids);
    for (struct run_retry *rr = r->retries; rr; rr = rr->next)
        if (!uv_is_closing((uv_handle_t *)&rr->timer)) {
            uv_timer_stop(&rr->timer);
            uv_close((uv_handle_t *)&rr->timer, run__retry_closed);
        }
    run__pump(r);
}

void run_cancel(struct run *r)
{
    if (r->cancelled || r->fatal || r->halted || r->phase >= RUN_PH_STOPPING)
        return;
    log_info("cancelling the run", "run=%s", log_q(r->run_id));
    run__cork(r);
    r->cancelled = true;
    if (r->hook)
        spawn_kill(r->hook);
    run__hookprocs_kill(r);
    if (r->phase == RUN_PH_RUNNING)
        run_abort(r);
    run__uncork(r);
}

void run__time_out(struct run *r)
{
    if (r->cancelled || r->fatal || r->halted || r->draining || r->phase != RUN_PH_RUNNING)
        return; /* a drained run is armed again when it goes on */
    char d[32];
    duration_format(r->dag->run_timeout_ms, d, sizeof d);
    log_info("run timed out", "dag=%s run=%s run_timeout=%s", log_q(r->dag->id), log_q(r->run_id),
             d);
    run__cork(r);
    r->timed_out = true;
    run_set_fatal(r, "run timed out");
    run_abort(r);
    run__uncork(r);
}

void run__store_failed(struct run *r, const char *msg)
{
    if (r->halted)
        return;
    char *m = xasprintf("store: %s", msg ? msg : "write failed");
    bool first = !r->fatal;
    run_set_fatal(r, m);
    free(m);
    if (first && !r->cancelled && r->phase == RUN_PH_RUNNING)
        run_abort(r);
    if (r->phase == RUN_PH_ENDING)
        run__hooks(r);
}

static void run_tasks_init(struct run *r)
{
    const struct dag *dag = r->dag;
    r->tasks = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof(*r->tasks));
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        struct run_task *rt = &r->tasks[t];
        const struct dag_task *dt = &dag->tasks[t];
        rt->env_name = run__env_name("OUTPUT_", dt->name);
        rt->pool = sched_pool(&r->e->sched, dt->pool ? dt->pool : "default");
        engine__gates_init(r->e, r, t);
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

void run__release(struct run *r)
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
            free(r->tasks[t].out_file);
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
        free(in->worker);
    }
    VEC_FREE(&r->insts);
    VEC_FREE(&r->running);
    VEC_FREE(&r->work);
    VEC_FREE(&r->readied);
    VEC_FREE(&r->prepped);
    VEC_FREE(&r->gates);
    run__env_release(r);
    run__past_release(r);
    free(r->param_values);
    free(r->logdir);
    free(r->fatal_msg);
    free(r->conf);
    free(r->hook_log);
    free(r->url);
    run__deadline_disarm(r);
}

/* Copies the stored instances of a resumed run: the records replayed as Kahn's algorithm
 * reaches them (run__add_inst, run_replay). A try that was in flight when its scheduler died
 * is over: it is recorded as failed, with "scheduler NAME lost" when the scheduler was
 * declared dead (lost, its name), and the instance is up for retry if it has a try left
 * (else it fails when reached). */
/* The stored instance t has its try in the workers' queue (adopted, see run_spec). */
static bool run_restore_inflight(const struct ti_rec *t, const struct run_inflight *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].try_number == t->try_number && strcmp(v[i].task_id, t->task_id) == 0)
            return true;
    return false;
}

static void run_restore_init(struct run *r, const struct ti_rec *tis, size_t n, const char *lost,
                             const struct run_inflight *inflight, size_t ninflight)
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
        if ((t->state == TI_RUNNING || t->state == TI_QUEUED) && t->try_number > 0 &&
            run_restore_inflight(t, inflight, ninflight)) {
            rs->inflight = true; /* a worker has it (or will): its result comes to this run */
        } else if ((t->state == TI_RUNNING || t->state == TI_QUEUED) && t->try_number > 0) {
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
            /* up for retry as after any failed try (run_replay), or failed when it was the last */
            bool last = t->try_number >= t->max_tries;
            rs->state = last ? TI_FAILED : TI_UP_FOR_RETRY;
            rs->ended_at_ms = tr.ended_at_ms;
            free(rs->message);
            rs->message = lost ? xasprintf("scheduler %s lost", lost)
                               : xstrdup(last ? "the scheduler stopped while its last try ran"
                                              : "the scheduler stopped while the try ran");
        }
        r->restore_ids[r->nrestore] = xstrdup(t->task_id);
        hmap_put(&r->restore_by_id, r->restore_ids[r->nrestore], strlen(t->task_id),
                 (uint32_t)r->nrestore);
        r->nrestore++;
    }
}

int run_begin(struct engine *e, const struct run_spec *sp, run_ended_fn ended, void *ud,
              struct run **out, struct err *err)
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
    r->logdir = logpath_run_dir(e->home, dag->id, r->run_id);
    int rc = logprep_mkdirs(r->logdir);
    if (rc < 0) {
        (void)err_set(err, rc, "cannot create '%s': %s", r->logdir, err_str(rc));
        free(r->logdir);
        free(r->conf);
        free(r->owner);
        free(r);
        run_vars_free(sp->vars);
        return rc;
    }
    engine_check_scratch(e);
    run__cork(r);
    r->last_seq =
        store_writer_put_dag_version(e->w, dag->hash, dag->id, dag->source, dag->source_len);
    run__params_init(r, sp->params, sp->nparams);
    run_restore_init(r, sp->tis, sp->ntis, sp->lost_sched, sp->inflight, sp->ninflight);
    run_tasks_init(r);
    run__past_init(r, sp);
    run__env_init(r, sp->vars, "the variables were not read for this run");
    r->live_next = e->runs;
    if (e->runs)
        e->runs->live_prev = r;
    e->runs = r;
    engine__timeout_arm(e, r);
    metrics_add_active_runs(1);
    log_debug("run started", "dag=%s run=%s tasks=%u resumed=%zu", log_q(dag->id), log_q(r->run_id),
              dag->ntasks, r->nrestore);

    run_put_run(r);
    for (uint32_t i = 0; i < r->insts.n; i++)
        if (run__inst_at(r, i)->restore_idx < 0) /* a stored one keeps its record until replayed */
            run__put_ti(r, i);
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
    if (e->public_url) /* the UI's route of a run page (web/api.js link.run) */
        r->url = xasprintf("%s%s#/dags/%s/runs/%s", e->public_url,
                           e->public_url[strlen(e->public_url) - 1] == '/' ? "" : "/", dag->id,
                           r->run_id);
    run__deadline_arm(r, sp->deadline_fired);
    *out = r;
    run__pump(r);
    run__uncork(r);
    return 0;
}

/* A halted run ends once its killed tries, retry timers and hook have reported. */
void run__halt_check(struct run *r)
{
    if (r->phase >= RUN_PH_STOPPING || r->running.n > 0 || r->nretry_timers > 0 || r->hook ||
        r->nhookprocs > 0)
        return;
    run__deadline_disarm(r);
    run__prep_cleanup(r);
    run__stop(r);
}

void run_drain(struct run *r)
{
    if (r->draining || r->halted || r->phase != RUN_PH_RUNNING)
        return;
    log_info("run draining", "run=%s running=%zu", log_q(r->run_id), r->running.n);
    r->draining = true;
    engine__drop(r->e, r); /* claimed tries are in flight: they start and end */
    run_drain_check(r);
}

void run_stop_tasks(struct run *r, const bool *set)
{
    if (r->halted || r->phase != RUN_PH_RUNNING)
        return;
    /* http and wait tries report from inside their cancel call, changing r->running. */
    VEC(uint32_t) ids = {0};
    for (size_t i = 0; i < r->running.n; i++)
        if (!set || set[run__inst_at(r, r->running.v[i])->task])
            VEC_PUSH(&ids, r->running.v[i]);
    if (ids.n)
        log_info("stopping tries", "run=%s tries=%zu", log_q(r->run_id), ids.n);
    for (size_t i = 0; i < ids.n; i++) {
        run__inst_at(r, ids.v[i])->stopping = true;
        run_kill_inst(r, ids.v[i], false);
    }
    VEC_FREE(&ids);
    run__pump(r);
}

void run_halt(struct run *r)
{
    if (r->halted || r->phase >= RUN_PH_STOPPING)
        return;
    log_info(r->draining ? "run drained" : "run halted", "run=%s running=%zu", log_q(r->run_id),
             r->running.n);
    engine__drop(r->e, r);
    r->gates.n = r->gates_head = 0;
    VEC(uint32_t) ids = {0};
    for (size_t i = 0; i < r->running.n; i++)
        VEC_PUSH(&ids, r->running.v[i]);
    /* A try stopped by the shutdown (or claimed and not started yet) is not the task's
     * failure: it is recorded as failed but gets a try more, and the instance waits for its
     * retry, which the next scheduler starts at once. Nothing else changes: the run stays
     * 'running'. */
    run__cork(r);
    int64_t now = when_now_ms();
    for (size_t i = 0; i < ids.n; i++) {
        uint32_t ii = ids.v[i];
        run__flush_running(r, ii);
        struct run_inst *in = run__inst_at(r, ii);
        if (in->state != TI_RUNNING && in->state != TI_QUEUED)
            continue;
        if (in->cur && in->cur->remote)
            continue; /* left in flight: the next scheduler adopts it (wq_adopt) */
        free(in->message);
        in->message = xstrdup("stopped: the scheduler shut down (the try is given back)");
        run__put_try(r, ii, TI_FAILED, now);
        in->state = TI_UP_FOR_RETRY;
        in->max_tries++;
        run__put_ti(r, ii);
    }
    run__uncork(r);
    r->halted = true;
    for (size_t i = 0; i < ids.n; i++) {
        struct run_inst *in = run__inst_at(r, ids.v[i]);
        if (in->cur && in->cur->remote) {
            /* Its worker goes on; its row keeps its pool slot until its result. */
            run__remote_forget(r, ids.v[i]);
            in->admit_try = 0;
            run__claim_end(r, ids.v[i]); /* halted: drops it, recording nothing */
            continue;
        }
        if (!in->cur) {
            if (in->slot_held)
                run__claim_end(r, ids.v[i]); /* claimed, not started */
            continue;
        }
        if (in->cur->sp) {
            if (in->pid > 0) /* no grace left: the daemon is going */
                RUN_IGN(spawn_kill_group(in->pid));
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
            uv_close((uv_handle_t *)&rr->timer, run__retry_closed);
        }
    if (r->hook)
        spawn_kill(r->hook);
    run__hookprocs_kill(r);
    run__halt_check(r);
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
    engine__forget_run(e, r);
    metrics_add_active_runs(-1);
    run__release(r);
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
    if (r->timed_out) /* its own run_timeout: the run failed, nothing of baram's */
        return NULL;
    return r->fatal ? (r->fatal_msg ? r->fatal_msg : "store failure") : NULL;
}

bool run_get_ended(const struct run *r)
{
    return r->phase == RUN_PH_DONE;
}

struct run *run__next_live(struct run *r)
{
    return r->live_next;
}
