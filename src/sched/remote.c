/*
 * remote.c - tries run by workers: the scheduler's side (see remote.h).
 *
 * A try of an engine in remote mode is claimed as a local one is (its
 * 'queued' record, gated on durability); then instead of a process its spec
 * (exec/tryspec.h: the expanded command, baram's own environment, the DAG's
 * folder, the timeouts) goes to ti_queue for a worker. The try keeps a
 * struct run_try marked remote while it is in flight, so cancel, drain and
 * halt see it; its results find it again by run, task instance and try
 * number. A result taken stays in the database (marked taken) until the
 * records made of it are durable (the engine's durable sequence number): then
 * it is deleted (wq_ack_results). One for a try no longer in flight made
 * nothing: it is deleted too. One this scheduler cannot place yet (its run is
 * not loaded here, or is being resumed) stays taken and is taken again
 * (wq_retake_results) once a run is resumed, every REMOTE_POLL_MS while any
 * is left, and after a take whose answer was lost: a scheduler that dies
 * loses no result, its runs' next owner takes them again.
 *
 * Loop thread, but for remote_work, which runs on the thread pool with the
 * job and the connection it owns while busy.
 */
#include "sched/remote.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "exec/tryspec.h"
#include "sched/logpath.h"
#include "sched/metrics.h"
#include "sched/run_int.h"
#include "store/store.h"
#include "store/wq.h"

struct remote_sub { /* a try to hand out: owned strings */
    char *run_id, *task_id, *queue, *pool, *spec;
    int try_number, priority;
};

typedef VEC(struct remote_sub) remote_subs;
typedef VEC(struct wq_kill) remote_kills;

struct remote_ack {         /* a result taken: deleted from the inbox once seq is durable */
    char *run_id, *task_id; /* owned */
    int try_number;
    enum wq_phase phase;
    uint64_t seq;     /* the records made of it (the run's last sequence number then) */
    int64_t after_ms; /* monotonic: not before (left by a locked row: the next poll) */
};
typedef VEC(struct remote_ack) remote_acks;

struct remote_job {
    uv_work_t req;
    struct remote *rm;
    bool last; /* the stopping job: closes the connection */
    remote_subs subs;
    remote_kills kills; /* owned strings */
    bool *withdrawn;
    remote_acks acks; /* owned strings */
    bool *left;       /* out: acks[i] found its row locked: sent again */
    bool take, sweep;
    bool again;            /* the take also returns what this scheduler took already */
    bool submitted;        /* out: its tries are in ti_queue (not sent again on a failure) */
    bool fenced;           /* out: the submission was refused: this scheduler is not active */
    struct wq_result *res; /* out, owned */
    size_t nres;
    size_t declared; /* workers the sweep declared dead */
    int rc;
    char *errmsg; /* owned */
};

struct remote {
    struct engine *e;
    uv_loop_t *loop;
    char *url; /* owned */
    int64_t sched_id, sweep_ms, dead_after_ms;
    struct store *st; /* owned; opened by the first job; the job thread's while busy */
    remote_subs subs;
    remote_kills kills;
    remote_acks acks; /* results taken, waiting for their records to be durable */
    bool take, sweep; /* due in the next job */
    bool again;       /* the next take also returns the results taken already */
    bool leftover;    /* results were left taken (run not loaded here yet): taken again */
    bool no_take;     /* a run was halted with tries in flight: their results are the next
                         owner's, none is taken any more (the daemon is going) */
    bool busy, stopping;
    int64_t hold_until_ms; /* a failed job: none before this (monotonic) */
    uv_timer_t kick, poll, sweeper;
    int open_handles;
    remote_stopped_fn stopped;
    void *stopped_ud;
};

static void remote_sub_release(struct remote_sub *s)
{
    free(s->run_id);
    free(s->task_id);
    free(s->queue);
    free(s->pool);
    free(s->spec);
}

static void remote_kill_release(struct wq_kill *k)
{
    free(k->run_id);
    free(k->task_id);
}

static void remote_acks_free(remote_acks *v)
{
    for (size_t i = 0; i < v->n; i++) {
        free(v->v[i].run_id);
        free(v->v[i].task_id);
    }
    VEC_FREE(v);
}

static void remote_job_free(struct remote_job *j)
{
    remote_acks_free(&j->acks);
    free(j->left);
    for (size_t i = 0; i < j->subs.n; i++)
        remote_sub_release(&j->subs.v[i]);
    VEC_FREE(&j->subs);
    for (size_t i = 0; i < j->kills.n; i++)
        remote_kill_release(&j->kills.v[i]);
    VEC_FREE(&j->kills);
    free(j->withdrawn);
    wq_free_results(j->res, j->nres);
    free(j->errmsg);
    free(j);
}

/* ---- the job (thread pool) ---- */

static void remote_work(uv_work_t *req)
{
    struct remote_job *j = req->data;
    struct remote *rm = j->rm;
    struct err err;
    err.code = 0;
    if (j->last && !rm->st)
        return; /* its acks stay taken: the next owner takes them again */
    if (!rm->st && (j->rc = store_open(rm->url, &rm->st, &err)) < 0) {
        j->errmsg = xstrdup(err_msg(&err));
        return;
    }
    if (j->acks.n > 0) {
        struct wq_taken *k = xcalloc(j->acks.n, sizeof *k);
        for (size_t i = 0; i < j->acks.n; i++) {
            const struct remote_ack *a = &j->acks.v[i];
            k[i] = (struct wq_taken){a->run_id, a->task_id, a->try_number, a->phase};
        }
        j->left = xcalloc(j->acks.n, sizeof(bool));
        j->rc = wq_ack_results(rm->st, rm->sched_id, k, j->acks.n, j->left, &err);
        free(k);
        if (j->rc < 0)
            goto fail;
    }
    if (j->last) { /* what is not deleted now stays taken: the next owner takes it again */
        store_close(rm->st);
        rm->st = NULL;
        return;
    }
    if (j->subs.n > 0) {
        struct wq_item *v = xcalloc(j->subs.n, sizeof *v);
        for (size_t i = 0; i < j->subs.n; i++) {
            const struct remote_sub *s = &j->subs.v[i];
            v[i] = (struct wq_item){s->run_id, s->task_id,  s->try_number, s->queue,
                                    s->pool,   s->priority, s->spec};
        }
        j->rc = wq_submit(rm->st, rm->sched_id, v, j->subs.n, &err);
        free(v);
        j->fenced = j->rc == -ESTALE;
        if (j->rc < 0)
            goto fail;
        j->submitted = true;
    }
    if (j->kills.n > 0) {
        j->withdrawn = xcalloc(j->kills.n, sizeof(bool));
        if ((j->rc = wq_withdraw(rm->st, j->kills.v, j->kills.n, j->withdrawn, &err)) < 0)
            goto fail;
    }
    if (j->sweep && (j->rc = wq_sweep(rm->st, rm->dead_after_ms, &j->declared, &err)) < 0)
        goto fail;
    if (j->take &&
        (j->rc = j->again ? wq_retake_results(rm->st, rm->sched_id, &j->res, &j->nres, &err)
                          : wq_take_results(rm->st, rm->sched_id, &j->res, &j->nres, &err)) < 0)
        goto fail;
    return;
fail:
    j->errmsg = xstrdup(err_msg(&err));
    store_close(rm->st); /* a broken connection is opened again by the next job */
    rm->st = NULL;
}

/* ---- finding a try again ---- */

/* The live run run_id of the engine, or NULL. */
static struct run *remote_find_run(struct remote *rm, const char *run_id)
{
    for (struct run *r = rm->e->runs; r; r = run__next_live(r))
        if (strcmp(r->run_id, run_id) == 0)
            return r;
    return NULL;
}

/* The instance of r whose id is task_id ("name" or "name[3]"): true and *ii. */
static bool remote_find_inst(struct run *r, const char *task_id, uint32_t *ii)
{
    const char *br = strchr(task_id, '[');
    char *name = br ? xstrndup(task_id, (size_t)(br - task_id)) : (char *)task_id;
    uint32_t t;
    bool ok = dag_find(r->dag, name, &t);
    if (br)
        free(name);
    if (!ok || !r->tasks[t].expanded)
        return false;
    struct run_task *rt = &r->tasks[t];
    uint32_t k = 0;
    if (br) {
        char *end;
        long m = strtol(br + 1, &end, 10);
        if (end == br + 1 || *end != ']' || end[1] || m < 0 || (uint64_t)m >= rt->ninst)
            return false;
        k = (uint32_t)m;
    }
    *ii = rt->inst_start + k;
    return strcmp(run__inst_id(r, run__inst_at(r, *ii)), task_id) == 0;
}

/* The try of the result, in flight here: its run and instance. */
static bool remote_find_try(struct remote *rm, const char *run_id, const char *task_id,
                            int try_number, struct run **rp, uint32_t *ii, bool *run_live)
{
    struct run *r = remote_find_run(rm, run_id);
    *run_live = r != NULL;
    if (!r || r->phase != RUN_PH_RUNNING || !remote_find_inst(r, task_id, ii))
        return false;
    struct run_inst *in = run__inst_at(r, *ii);
    if (!in->cur || !in->cur->remote || in->try_number != try_number)
        return false;
    *rp = r;
    return true;
}

/* The name of the worker that reports instance ii's current try, kept for its try records. */
static void remote_note_worker(struct run_inst *in, const struct wq_result *res)
{
    if (!res->worker || (in->worker && strcmp(in->worker, res->worker) == 0))
        return;
    free(in->worker);
    in->worker = xstrdup(res->worker);
}

/* A worker's 'running' result: the try is running (its records go as a local try's do). */
static void remote_running(struct run *r, uint32_t ii, const struct wq_result *res)
{
    struct run_inst *in = run__inst_at(r, ii);
    remote_note_worker(in, res);
    if (in->state != TI_QUEUED)
        return;
    int64_t at = res->started_at_ms > 0 ? res->started_at_ms : when_now_ms();
    in->state = TI_RUNNING;
    in->try_started_at_ms = at;
    if (in->started_at_ms < 0)
        in->started_at_ms = at;
    in->pid = 0;
    if (in->ready_ns > 0)
        engine__note_latency(r->e, when_mono_ns() - in->ready_ns);
    in->rec_pending = true;
    engine__pend_running(r->e, r, ii);
    run__progress(r, ii);
}

/* Result res of instance ii's try in flight: it is running, or it ended. */
static void remote_apply(struct run *r, uint32_t ii, const struct wq_result *res)
{
    run__cork(r);
    if (res->phase == WQ_RUNNING) {
        remote_running(r, ii, res);
        run__pump(r);
        run__uncork(r);
        return;
    }
    /* Its 'running' result was not seen (the try ended before this scheduler took it): it
     * started, though. Its 'running' records go first (run__try_finish flushes them), as a
     * local try's do, so the event log and the latency histogram miss no try. */
    remote_running(r, ii, res);
    struct run_inst *in = run__inst_at(r, ii);
    struct run_try_end e = {
        .exit_code = res->exit_code,
        .term_signal = res->term_signal,
        .timed_out = res->timed_out,
        .killed = res->killed,
        .met = res->met,
        .hold_ms = res->hold_ms,
        .message = res->message ? xstrdup(res->message) : NULL,
    };
    if (res->phase == WQ_ENDED && res->killed && !res->timed_out && !r->cancelled && !r->fatal) {
        /* Killed without a cancel: its worker stopped (its grace was over). As a try a
         * scheduler's shutdown stops, it is not the task's failure: it gets a try more, as
         * many times as the task has tries (its recorded max_tries counts them, so a resume
         * keeps the count); past that it is a failed try, so that a task whose workers are
         * stopped under it each time (a pod evicted for its memory) does not run forever. */
        int tries = r->dag->tasks[in->task].retries + 1;
        const char *name = res->worker ? res->worker : "?";
        free(e.message);
        if (in->max_tries - tries < tries) {
            in->max_tries++;
            e.message = xasprintf("stopped: worker %s shut down (the try is given back)", name);
        } else {
            e.message = xasprintf("stopped: worker %s shut down (tries given back %d times: "
                                  "this one counts as failed)",
                                  name, in->max_tries - tries);
        }
    }
    if (res->phase == WQ_LOST) {
        e.exit_code = -1;
        e.met = e.killed = e.timed_out = false;
        if (!e.message)
            e.message = xasprintf("worker %s lost", res->worker ? res->worker : "?");
    } else if (res->output && res->output_len > 0) {
        e.output = xmemdup(res->output, res->output_len + 1); /* NUL-terminated (wq.h) */
        e.output_len = res->output_len;
    }
    run__try_finish(in->cur, &e); /* pumps and uncorks */
}

enum remote_fate {
    REMOTE_DELIVERED, /* its try took it: deleted once the records it made are durable */
    REMOTE_STALE,     /* its try is over (it was delivered before): deleted, as above */
    REMOTE_LATER      /* not placed yet (run not loaded or not resumed yet): left taken */
};

/* Hands result res to its try; *seq: the sequence number that makes what it decided durable
 * (DELIVERED, STALE). */
static enum remote_fate remote_deliver(struct remote *rm, const struct wq_result *res,
                                       uint64_t *seq)
{
    struct run *r = remote_find_run(rm, res->run_id);
    uint32_t ii;
    *seq = 0;
    /* A halted run's tries in flight are the next owner's (run__remote_forget). */
    if (!r || r->halted)
        return REMOTE_LATER;
    *seq = r->last_seq;
    if (r->phase != RUN_PH_RUNNING)
        return REMOTE_STALE; /* the run has ended: every try of it is over */
    if (!remote_find_inst(r, res->task_id, &ii))
        return REMOTE_LATER; /* not expanded yet */
    struct run_inst *in = run__inst_at(r, ii);
    if (in->restore_idx >= 0 || in->try_number < res->try_number)
        return REMOTE_LATER; /* not resumed yet */
    if (!in->cur || !in->cur->remote || in->try_number != res->try_number)
        return REMOTE_STALE;
    remote_apply(r, ii, res);
    *seq = r->last_seq;
    return REMOTE_DELIVERED;
}

/* ---- the loop's side ---- */

static void remote_round(struct remote *rm);

/* Whether ack a may be sent now: the records made of its result are durable (and the store
 * has not failed: then nothing is deleted, the next owner takes it all again). */
static bool remote_ack_ready(const struct remote *rm, const struct remote_ack *a, int64_t now)
{
    return !rm->e->failed && a->seq <= rm->e->durable && a->after_ms <= now;
}

static bool remote_acks_ready(const struct remote *rm)
{
    int64_t now = when_mono_ms();
    for (size_t i = 0; i < rm->acks.n; i++)
        if (remote_ack_ready(rm, &rm->acks.v[i], now))
            return true;
    return false;
}

/* Something for a job to do. */
static bool remote_due(const struct remote *rm)
{
    return rm->subs.n > 0 || rm->kills.n > 0 || rm->take || rm->sweep || remote_acks_ready(rm);
}

static void remote_on_kick(uv_timer_t *t)
{
    struct remote *rm = t->data;
    if (remote_due(rm))
        remote_round(rm);
}

/* Runs a job after ms (0: at the next turn of the loop, so what one event gathers goes
 * together), not before a failed job's hold is over. */
static void remote_kick(struct remote *rm, int64_t ms)
{
    if (rm->busy || rm->stopping)
        return; /* its end looks at what is pending */
    int64_t hold = rm->hold_until_ms - when_mono_ms();
    if (hold > ms)
        ms = hold;
    if (uv_is_active((uv_handle_t *)&rm->kick) &&
        uv_timer_get_due_in(&rm->kick) <= (uint64_t)(ms > 0 ? ms : 0))
        return;
    uv_timer_start(&rm->kick, remote_on_kick, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static void remote_closed(uv_handle_t *h)
{
    struct remote *rm = h->data;
    if (--rm->open_handles > 0)
        return;
    remote_stopped_fn done = rm->stopped;
    void *ud = rm->stopped_ud;
    for (size_t i = 0; i < rm->subs.n; i++)
        remote_sub_release(&rm->subs.v[i]);
    VEC_FREE(&rm->subs);
    for (size_t i = 0; i < rm->kills.n; i++)
        remote_kill_release(&rm->kills.v[i]);
    VEC_FREE(&rm->kills);
    remote_acks_free(&rm->acks);
    free(rm->url);
    free(rm);
    if (done)
        done(ud);
}

/* A withdrawn try (its row deleted before any worker claimed it) ends killed at once. */
static void remote_withdrawn(struct remote *rm, const struct wq_kill *k)
{
    struct run *r;
    uint32_t ii;
    bool live;
    if (!remote_find_try(rm, k->run_id, k->task_id, k->try_number, &r, &ii, &live))
        return;
    struct run_try_end e = {.exit_code = -1, .killed = true};
    run__cork(r);
    run__try_finish(run__inst_at(r, ii)->cur, &e);
}

static void remote_after(uv_work_t *req, int status)
{
    (void)status;
    struct remote_job *j = req->data;
    struct remote *rm = j->rm;
    rm->busy = false;
    if (j->last) {
        remote_job_free(j);
        uv_close((uv_handle_t *)&rm->kick, remote_closed);
        uv_close((uv_handle_t *)&rm->poll, remote_closed);
        uv_close((uv_handle_t *)&rm->sweeper, remote_closed);
        return;
    }
    if (j->fenced) {
        /* Declared dead: another scheduler owns its runs now. Nothing is sent again (it
         * would rewrite what the new owner handed out); it stops as a fenced writer does. */
        log_error("workers' queue: submission refused", "err=%s",
                  log_q(j->errmsg ? j->errmsg : "?"));
        j->submitted = true; /* never sent again */
        engine__fenced(rm->e, j->errmsg ? j->errmsg : "this scheduler is not active any more");
    }
    /* Acks sent again: a row locked (by a worker's finish replacing it, mostly) at the next
     * poll, all of them after a failure (deleting twice is harmless). */
    int64_t later = when_mono_ms() + REMOTE_POLL_MS;
    for (size_t i = 0; i < j->acks.n; i++) {
        if (j->rc == 0 && !(j->left && j->left[i]))
            continue;
        struct remote_ack a = j->acks.v[i];
        a.after_ms = j->rc == 0 ? later : 0;
        VEC_PUSH(&rm->acks, a);
        j->acks.v[i].run_id = j->acks.v[i].task_id = NULL; /* moved */
    }
    if (j->rc < 0) {
        log_warn("workers' queue: a round failed, retried", "err=%s retry_ms=%d",
                 log_q(j->errmsg ? j->errmsg : "?"), REMOTE_RETRY_MS);
        rm->hold_until_ms = when_mono_ms() + REMOTE_RETRY_MS;
        /* Sent again: a withdrawal is harmless twice, and so is a submission (the database
         * skips a try already handed out, whether or not the failed one committed). One that
         * went through is not sent again all the same: nothing to gain. */
        for (size_t i = 0; i < j->subs.n && !j->submitted; i++)
            VEC_PUSH(&rm->subs, j->subs.v[i]);
        if (!j->submitted)
            j->subs.n = 0;
        for (size_t i = 0; i < j->kills.n; i++)
            VEC_PUSH(&rm->kills, j->kills.v[i]);
        j->kills.n = 0;
        rm->take = rm->take || j->take;
        rm->again = rm->again || j->take; /* its answer may be lost: what it took, too */
        rm->sweep = rm->sweep || j->sweep;
    } else {
        if (j->declared > 0)
            log_warn("workers declared dead: their tries are lost", "count=%zu", j->declared);
        for (size_t i = 0; i < j->kills.n; i++)
            if (j->withdrawn && j->withdrawn[i])
                remote_withdrawn(rm, &j->kills.v[i]);
        if (j->nres > 0 && FAULT(FP_CRASH_AFTER_TAKE))
            for (size_t i = 0; i < j->nres; i++)
                if (j->res[i].phase != WQ_RUNNING)
                    raise(SIGKILL); /* tests: killed with an end taken, not recorded yet */
        bool left = false;
        for (size_t i = 0; i < j->nres; i++) {
            struct wq_result *x = &j->res[i];
            uint64_t seq;
            enum remote_fate f = remote_deliver(rm, x, &seq);
            if (f == REMOTE_LATER) {
                left = true;
                continue;
            }
            if (f == REMOTE_STALE)
                log_debug("remote result stale", "run=%s task=%s try=%d", log_q(x->run_id),
                          log_q(x->task_id), x->try_number);
            struct remote_ack a = {x->run_id, x->task_id, x->try_number, x->phase, seq, 0};
            x->run_id = x->task_id = NULL; /* moved */
            VEC_PUSH(&rm->acks, a);
        }
        /* A retake saw all that is left; a take only what was new. */
        rm->leftover = left || (rm->leftover && !(j->take && j->again));
    }
    remote_job_free(j);
    if (rm->stopping) {
        remote_round(rm);
        return;
    }
    if (remote_due(rm))
        remote_kick(rm, 0);
}

static void remote_round(struct remote *rm)
{
    if (rm->busy)
        return;
    uv_timer_stop(&rm->kick);
    struct remote_job *j = xcalloc(1, sizeof *j);
    j->req.data = j;
    j->rm = rm;
    int64_t now = when_mono_ms();
    size_t k = 0;
    for (size_t i = 0; i < rm->acks.n; i++) {
        if (remote_ack_ready(rm, &rm->acks.v[i], now))
            VEC_PUSH(&j->acks, rm->acks.v[i]);
        else
            rm->acks.v[k++] = rm->acks.v[i];
    }
    rm->acks.n = k;
    if (rm->stopping) {
        j->last = true;
    } else {
        j->subs = rm->subs; /* moved */
        memset(&rm->subs, 0, sizeof rm->subs);
        j->kills = rm->kills;
        memset(&rm->kills, 0, sizeof rm->kills);
        j->take = rm->take && !rm->no_take;
        j->again = j->take && rm->again;
        if (j->take)
            rm->again = false;
        j->sweep = rm->sweep;
        rm->take = rm->sweep = false;
    }
    rm->busy = true;
    int rc = uv_queue_work(rm->loop, &j->req, remote_work, remote_after);
    if (rc < 0) { /* not expected: run it here rather than lose it */
        remote_work(&j->req);
        remote_after(&j->req, 0);
    }
}

void remote_take(struct remote *rm)
{
    rm->take = true;
    remote_kick(rm, 0);
}

static void remote_on_poll(uv_timer_t *t)
{
    struct remote *rm = t->data;
    if (rm->leftover)
        rm->again = true;
    remote_take(rm);
}

void remote_durable(struct remote *rm)
{
    if (rm->acks.n > 0 && remote_acks_ready(rm))
        remote_kick(rm, 0);
}

int64_t remote_sweep_interval(int64_t heartbeat_ms, int64_t dead_after_ms)
{
    if (heartbeat_ms <= 0)
        heartbeat_ms = 5000;
    if (dead_after_ms <= 0)
        dead_after_ms = 20000;
    int64_t ms = dead_after_ms / 20;
    if (ms < 250)
        ms = 250;
    if (ms > heartbeat_ms)
        ms = heartbeat_ms;
    return ms;
}

static void remote_on_sweep(uv_timer_t *t)
{
    struct remote *rm = t->data;
    rm->sweep = true;
    remote_kick(rm, 0);
}

struct remote *remote_new(struct engine *e, const struct remote_opts *o)
{
    struct remote *rm = xcalloc(1, sizeof *rm);
    rm->e = e;
    rm->loop = o->loop;
    rm->url = xstrdup(o->store_url);
    rm->sched_id = o->sched_id;
    rm->sweep_ms = o->sweep_ms > 0 ? o->sweep_ms : 5000;
    rm->dead_after_ms = o->dead_after_ms > 0 ? o->dead_after_ms : 20000;
    uv_timer_init(o->loop, &rm->kick);
    uv_timer_init(o->loop, &rm->poll);
    uv_timer_init(o->loop, &rm->sweeper);
    rm->kick.data = rm->poll.data = rm->sweeper.data = rm;
    rm->open_handles = 3;
    uv_timer_start(&rm->poll, remote_on_poll, REMOTE_POLL_MS, REMOTE_POLL_MS);
    uv_timer_start(&rm->sweeper, remote_on_sweep, (uint64_t)rm->sweep_ms, (uint64_t)rm->sweep_ms);
    rm->take = true; /* results left for this scheduler before it started */
    rm->again = true;
    remote_kick(rm, 0);
    return rm;
}

void remote_stop(struct remote *rm, remote_stopped_fn done, void *ud)
{
    rm->stopping = true;
    rm->stopped = done;
    rm->stopped_ud = ud;
    uv_timer_stop(&rm->poll);
    uv_timer_stop(&rm->sweeper);
    remote_round(rm); /* when busy, the job in flight calls it at its end */
}

/* ---- the runs' side (run_int.h) ---- */

static void remote_spec_env(struct run *r, struct run_inst *in, size_t cmd_len, struct tryspec *s,
                            run_strv *env, run_strv *owned, char **msg, int *rc)
{
    *rc = run__env_try(r, in, NULL, cmd_len, env, owned, msg);
    if (*rc < 0)
        return;
    /* The scheduler's own inherited environment comes first in base_env: the worker adds its
     * own instead. */
    size_t skip = r->base_env.n - r->owned_env.n;
    size_t n = env->n > 0 ? env->n - 1 : 0; /* less the NULL at its end */
    s->env = n > skip ? env->v + skip : NULL;
    s->nenv = n > skip ? n - skip : 0;
}

/* Builds instance ii's spec (JSON, malloc'd): NULL with *msg when its templates fail. */
static char *remote_spec(struct run *r, uint32_t ii, char **msg)
{
    struct run_inst *in = run__inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    struct tryspec s = {
        .dag = (char *)r->dag->id,
        .run_id = r->run_id,
        .task = t->name,
        .task_id = (char *)run__inst_id(r, in),
        .queue = t->queue ? t->queue : "default",
        .dir = t->dir ? t->dir : (char *)r->dag->dir, /* tz part: the task's `dir` */
        .map_index = in->map_index,
        .try_number = in->try_number,
        .timeout_ms = t->timeout_ms,
        .grace_ms = DAG_KILL_GRACE_MS,
    };
    const char *const *mvals;
    const size_t *mlens;
    s.nmask = run__vars_mask(r, &mvals, &mlens); /* vars: the worker masks them in the log */
    s.mask = (char **)mvals;
    char *json = NULL;
    int rc = 0;
    switch (t->kind) {
    case TASK_RUN: {
        s.kind = TRYSPEC_RUN;
        struct buf cmd = BUF_INIT(RUN_CMD_MAX);
        if (run__expand(r, t->run, in, in->task, &cmd, msg) < 0) {
            buf_release(&cmd);
            return NULL;
        }
        run_strv env = {0}, owned = {0};
        remote_spec_env(r, in, cmd.len, &s, &env, &owned, msg, &rc);
        if (rc == 0) {
            s.cmd = cmd.data;
            json = tryspec_encode(&s);
        }
        run__env_try_release(&env, &owned);
        buf_release(&cmd);
        return json;
    }
    case TASK_HTTP: {
        s.kind = TRYSPEC_HTTP;
        struct run_http_call hc;
        if (run__http_call_init(r, in, &hc, msg) < 0) {
            run__http_call_release(&hc);
            return NULL;
        }
        struct tryspec_header *hs = xcalloc(hc.req.nheaders ? hc.req.nheaders : 1, sizeof *hs);
        for (size_t i = 0; i < hc.req.nheaders; i++)
            hs[i] = (struct tryspec_header){(char *)hc.req.headers[i].name,
                                            (char *)hc.req.headers[i].value};
        s.http.method = (char *)(hc.req.method ? hc.req.method : "GET");
        s.http.url = (char *)hc.req.url;
        s.http.body = (char *)hc.req.body;
        s.http.body_len = hc.req.body_len;
        s.http.headers = hs;
        s.http.nheaders = hc.req.nheaders;
        s.http.expect = (int *)hc.req.expect;
        s.http.nexpect = hc.req.nexpect;
        s.http.timeout_ms = hc.req.timeout_ms;
        s.http.cb_failures = hc.req.cb_failures;
        s.http.cb_reset_ms = hc.req.cb_reset_ms;
        json = tryspec_encode(&s);
        free(hs);
        run__http_call_release(&hc);
        return json;
    }
    case TASK_WAIT: {
        s.kind = TRYSPEC_WAIT;
        struct run_wait_call wc;
        if (run__wait_call_init(r, in, &wc, msg) < 0) {
            run__wait_call_release(&wc);
            return NULL;
        }
        s.wait.file = (char *)wc.opts.file;
        s.wait.http_url = (char *)wc.opts.http_url;
        s.wait.every_ms = wc.opts.every_ms;
        s.wait.timeout_ms = wc.opts.timeout_ms;
        json = tryspec_encode(&s);
        run__wait_call_release(&wc);
        return json;
    }
    }
    *msg = xstrdup("unknown task kind");
    return NULL;
}

static struct run_try *remote_try_new(struct run *r, uint32_t ii)
{
    struct run_try *tr = xcalloc(1, sizeof *tr);
    tr->r = r;
    tr->inst = ii;
    tr->remote = true;
    return tr;
}

void run__remote_start(struct run *r, uint32_t ii)
{
    struct remote *rm = r->e->remote;
    struct run_inst *in = run__inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    char *msg = NULL;
    char *spec = remote_spec(r, ii, &msg);
    if (!spec) {
        /* The try fails here, as a local one whose template fails: its log says why. */
        in->state = TI_RUNNING;
        in->try_started_at_ms = when_now_ms();
        if (in->started_at_ms < 0)
            in->started_at_ms = in->try_started_at_ms;
        char *log = logpath_try(r->logdir, t->name, in->map_index, in->try_number, "log");
        run__log_append(log, msg ? msg : "cannot make the try's spec");
        free(log);
        run__try_fail_now(r, ii, msg ? msg : xstrdup("cannot make the try's spec"));
        return;
    }
    in->cur = remote_try_new(r, ii);
    const char *pool = t->pool ? t->pool : "default";
    struct remote_sub s = {
        .run_id = xstrdup(r->run_id),
        .task_id = xstrdup(run__inst_id(r, in)),
        .queue = xstrdup(t->queue ? t->queue : "default"),
        .pool = xstrdup(pool), /* its slot is counted there once the pool is limited */
        .spec = spec,
        .try_number = in->try_number,
        .priority = t->priority,
    };
    VEC_PUSH(&rm->subs, s);
    remote_kick(rm, 0);
    run__progress(r, ii);
}

void run__remote_kill(struct run *r, uint32_t ii)
{
    struct remote *rm = r->e->remote;
    struct run_inst *in = run__inst_at(r, ii);
    if (!in->cur || !in->cur->remote || in->cur->kill_sent)
        return;
    in->cur->kill_sent = true;
    struct wq_kill k = {xstrdup(r->run_id), xstrdup(run__inst_id(r, in)), in->try_number};
    VEC_PUSH(&rm->kills, k);
    remote_kick(rm, 0);
}

void run__remote_adopt(struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    in->cur = remote_try_new(r, ii);
    struct remote *rm = r->e->remote;
    /* Its result may have been taken before the run was loaded here (left taken): all that
     * is left is taken again, soon (not here: this is inside the run's pump). */
    rm->take = rm->again = true;
    remote_kick(rm, 0);
}

void run__remote_forget(struct run *r, uint32_t ii)
{
    r->e->remote->no_take = true;
    struct run_inst *in = run__inst_at(r, ii);
    free(in->cur);
    in->cur = NULL;
}
