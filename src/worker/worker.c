/*
 * worker.c - a worker's life on its loop (worker.h): registration, the
 * LISTEN doorbells, claims, heartbeats with their kill lists, the fence for
 * a worker that cannot reach the database, the batched reports of ends and
 * the drain.
 *
 * Every store call runs on libuv's thread pool (never on the loop), each
 * kind on its own connection, at most one of a kind in flight: st_claim
 * for wq_claim, st_fin for wq_finish, st_hb for registration, heartbeats
 * and the stop. A claim asks for the free slots only; a notification that
 * comes while one is in flight asks for one more after it (claim_again),
 * so a burst of notifications costs two claims. Ends are reported at the
 * next turn of the loop, those of one turn together, and those that come
 * while a report is in flight together after it (up to WORKER_FIN_BATCH in
 * one call), fenced by the store (a try taken from this worker is discarded
 * there); a failed call is retried with the same batch.
 *
 * Which tries die when: a try the scheduler asks to kill (kill list) ends
 * as killed and is reported; at the fence (no good heartbeat for 3/4 of
 * dead_after, by this process's monotonic clock from the start of the last
 * good one) every try is killed and its end held: reported once a
 * heartbeat succeeds, dropped if that heartbeat says the worker was
 * declared dead (a sweep has already made its 'lost' result). Declared
 * dead: every try is killed, nothing of them reported, and the worker
 * registers again under a new id.
 *
 * Loop thread only, except the *_work functions (thread pool), which touch
 * only their own request and their connection.
 */
#include "worker/worker.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "exec/orphans.h"
#include "store/listen.h"
#include "store/store.h"
#include "store/wq.h"
#include "worker/logserve.h"
#include "worker/worker_int.h"

#define WORKER_TICK_MS 1000 /* claims without a notification (the backstop) */
/* No wait for more ends: the scheduler's parallelism counts a try until its end is taken, so
 * every millisecond an end waits here is a slot idle there; under load the report in flight
 * gathers the next ones anyway. */
#define WORKER_FIN_GATHER_MS 0
#define WORKER_FIN_BATCH     64
#define WORKER_FIN_RETRY_MS  500

static void worker_claim_kick(struct worker *w);
static void worker_hb_kick(struct worker *w);
static void worker_fin_kick(struct worker *w);
static void worker_maybe_stop(struct worker *w);
static void worker_register(struct worker *w);

/* ---- the end: handles closed, then stopped() ---- */

static void worker_free(struct worker *w)
{
    free(w->url);
    free(w->home);
    free(w->home_abs);
    free(w->home_tag);
    free(w->name);
    free(w->hostname);
    free(w->log_url);
    for (size_t i = 0; i < w->nqueues; i++)
        free(w->queues[i]);
    free(w->queues);
    VEC_FREE(&w->pending);
    VEC_FREE(&w->held);
    wq_free_kills(w->unknown, w->nunknown);
    free(w);
}

static void worker_handle_closed(uv_handle_t *h)
{
    struct worker *w = h->data;
    if (--w->nhandles > 0)
        return;
    void (*stopped)(void *, int) = w->stopped;
    void *ud = w->ud;
    int rc = w->rc;
    worker_free(w);
    if (stopped)
        stopped(ud, rc);
}

static void worker_close(struct worker *w)
{
    if (w->closing)
        return;
    w->closing = true;
    listen_stop(w->lis);
    w->lis = NULL;
    logserve_stop(w->ls); /* joins its thread: ends its connections first */
    w->ls = NULL;
    httptask_client_free(w->http);
    w->http = NULL;
    uv_handle_t *hs[] = {(uv_handle_t *)&w->tick, (uv_handle_t *)&w->hb, (uv_handle_t *)&w->fin,
                         (uv_handle_t *)&w->grace};
    for (size_t i = 0; i < ARRAY_SIZE(hs); i++)
        uv_close(hs[i], worker_handle_closed);
}

static void wend_release(struct wend *d)
{
    free(d->run_id);
    free(d->task_id);
    free(d->e.output);
    free(d->e.message);
    free(d->out_path);
    free(d->log_path);
    free(d->log);
}

static void wends_drop(struct worker *w, bool pending_too)
{
    for (size_t i = 0; i < w->held.n; i++)
        wend_release(&w->held.v[i]);
    w->held.n = 0;
    if (!pending_too)
        return;
    for (size_t i = 0; i < w->pending.n; i++)
        wend_release(&w->pending.v[i]);
    w->pending.n = 0;
}

/* ---- the stop: the row marked stopped, connections closed (thread pool) ---- */

struct worker_stop_req {
    uv_work_t req;
    struct worker *w;
    int64_t id;
};

static void worker_stop_work(uv_work_t *req)
{
    struct worker_stop_req *q = req->data;
    struct worker *w = q->w;
    struct err e = {0};
    if (q->id && w->st_hb && store_node_stop(w->st_hb, q->id, &e) < 0)
        log_warn("cannot mark the worker stopped", "worker=%s error=%s", log_q(w->name),
                 log_q(err_msg(&e)));
    store_close(w->st_claim);
    store_close(w->st_fin);
    store_close(w->st_hb);
    w->st_claim = w->st_fin = w->st_hb = NULL;
}

static void worker_stop_done(uv_work_t *req, int status)
{
    struct worker_stop_req *q = req->data;
    struct worker *w = q->w;
    free(q);
    w->stop_busy = false;
    if (w->rc == 0)
        log_info("worker stopped", "worker=%s", log_q(w->name));
    worker_close(w);
}

/* Stops once nothing is left: no try, no end to report, no call in flight. Ends that cannot
 * be reported once the grace is over (the database is unreachable) do not keep the worker:
 * they are given up, and a scheduler's sweep makes their tries 'lost'. */
static void worker_maybe_stop(struct worker *w)
{
    bool give_up = w->grace_over && w->fin_failing;
    if (!w->draining || w->closing || w->stop_busy || w->ntries || (w->pending.n && !give_up) ||
        w->fin_busy || w->claim_busy || w->hb_busy || w->reg_busy || w->setup_busy)
        return;
    if (w->pending.n)
        log_warn("ends of tries given up: the database is unreachable", "worker=%s ends=%zu",
                 log_q(w->name), w->pending.n);
    wends_drop(w, true);
    uv_timer_stop(&w->tick);
    uv_timer_stop(&w->hb);
    uv_timer_stop(&w->fin);
    uv_timer_stop(&w->grace);
    struct worker_stop_req *q = xcalloc(1, sizeof(*q));
    q->w = w;
    q->id = w->id;
    q->req.data = q;
    w->stop_busy = true;
    (void)uv_queue_work(w->loop, &q->req, worker_stop_work, worker_stop_done);
}

/* A fatal error (logged by the caller): stop with rc. */
static void worker_fail(struct worker *w, int rc)
{
    if (w->rc == 0)
        w->rc = rc;
    for (struct wtry *t = w->tries; t; t = t->next) {
        t->drop = true;
        wtry_kill(t, "killed: the worker is stopping");
    }
    w->grace_over = true;
    w->draining = true;
    worker_maybe_stop(w);
}

/* ---- kills ---- */

/* Kills every try; drop: their ends are not reported; held: reported after a good heartbeat. */
static void worker_kill_all(struct worker *w, const char *note, bool drop, bool held)
{
    for (struct wtry *t = w->tries; t; t = t->next) {
        t->drop = t->drop || drop;
        t->held = t->held || held;
        wtry_kill(t, note);
    }
}

/* The fence: no good heartbeat for 3/4 of dead_after (by this clock) means a scheduler may
 * declare this worker dead any moment and give its tries to others, so they must not run on. */
static void worker_fence_check(struct worker *w)
{
    if (!w->id || w->fenced || w->closing)
        return;
    int64_t silent_ms = (when_mono_ns() - w->good_hb_ns) / 1000000;
    if (silent_ms * 4 < w->dead_after_ms * 3)
        return;
    w->fenced = true;
    log_warn("no heartbeat for 3/4 of dead_after: killing this worker's tries",
             "worker=%s silent_ms=%lld dead_after_ms=%lld tries=%zu", log_q(w->name),
             (long long)silent_ms, (long long)w->dead_after_ms, w->ntries);
    char *note =
        xasprintf("killed: worker %s had no heartbeat for %lld ms", w->name, (long long)silent_ms);
    worker_kill_all(w, note, false, true);
    free(note);
}

/* ---- ends ---- */

void worker__try_ended(struct worker *w, struct wtry *t, struct run_try_end *e)
{
    if (t->drop) {
        free(e->output);
        free(e->message);
    } else {
        struct wend d = {
            .run_id = t->run_id,
            .task_id = t->task_id,
            .try_number = t->try_number,
            .e = *e,
            .log_path = t->log_path,
        };
        t->run_id = t->task_id = t->log_path = NULL; /* taken */
        if (t->read_output) {
            d.out_path = t->out_path;
            t->out_path = NULL;
        }
        if (t->held && w->fenced)
            VEC_PUSH(&w->held, d);
        else
            VEC_PUSH(&w->pending, d);
        worker_fin_kick(w);
    }
    /* Called from inside the try's callback: the slot is free once it returns. */
    if (!w->draining)
        worker_claim_kick(w);
}

/* A try this worker holds in the store but will not run (a claim that came back after the
 * fence, or one whose answer never came): its end goes as killed, fenced like any end, so the
 * run's owner gives the try back; held: after the next good heartbeat (dropped if that says
 * dead). The key's strings are copied; msg is taken. */
static void worker_give_back(struct worker *w, const char *run_id, const char *task_id,
                             int try_number, char *msg, bool held)
{
    struct wend d = {
        .run_id = xstrdup(run_id),
        .task_id = xstrdup(task_id),
        .try_number = try_number,
        .e = {.exit_code = -1, .killed = true, .message = msg},
    };
    if (held)
        VEC_PUSH(&w->held, d);
    else
        VEC_PUSH(&w->pending, d);
    worker_fin_kick(w);
}

struct worker_fin_req {
    uv_work_t req;
    struct worker *w;
    int64_t id;
    struct wend *v; /* owned */
    size_t n;
    bool *accepted; /* owned */
    int rc;
    struct err e;
};

static void worker_fin_work(uv_work_t *req)
{
    struct worker_fin_req *q = req->data;
    struct worker *w = q->w;
    struct wq_end *ends = xcalloc(q->n, sizeof(*ends));
    for (size_t i = 0; i < q->n; i++) {
        struct wend *d = &q->v[i];
        if (d->out_path) { /* $BARAM_OUTPUT, before the log: a failure to read it goes there */
            char *msg = NULL;
            if (run__read_output(d->out_path, &d->e.output, &d->e.output_len, &msg) < 0) {
                d->e.exit_code = -1;
                d->e.message = msg;
                run__log_append(d->log_path, msg);
            }
            free(d->out_path); /* read once: a retry sends the same */
            d->out_path = NULL;
        }
        if (d->log_path && !d->log) /* read once: a retry sends the same */
            wtry_read_log(d->log_path, w->store_max, &d->log, &d->log_len);
        ends[i] = (struct wq_end){
            .run_id = d->run_id,
            .task_id = d->task_id,
            .try_number = d->try_number,
            .exit_code = d->e.exit_code,
            .term_signal = d->e.term_signal,
            .timed_out = d->e.timed_out,
            .killed = d->e.killed,
            .met = d->e.met,
            .hold_ms = d->e.hold_ms,
            .message = d->e.message,
            .output = d->e.output,
            .output_len = d->e.output_len,
            .log = d->log,
            .log_len = d->log_len,
        };
    }
    q->rc = wq_finish(w->st_fin, q->id, ends, q->n, q->accepted, &q->e);
    free(ends);
}

static void worker_fin_free(struct worker_fin_req *q)
{
    free(q->v);
    free(q->accepted);
    free(q);
}

static void worker_fin_done(uv_work_t *req, int status)
{
    struct worker_fin_req *q = req->data;
    struct worker *w = q->w;
    w->fin_busy = false;
    w->fin_v = NULL;
    w->fin_n = 0;
    if (q->rc < 0) {
        if (!w->fin_failing)
            log_warn("cannot report the ends of tries, will retry", "worker=%s ends=%zu error=%s",
                     log_q(w->name), q->n, log_q(err_msg(&q->e)));
        w->fin_failing = true;
        /* The same batch again, in front of what came meanwhile. */
        size_t later = w->pending.n;
        VEC_RESERVE(&w->pending, later + q->n);
        memmove(w->pending.v + q->n, w->pending.v, later * sizeof(*w->pending.v));
        memcpy(w->pending.v, q->v, q->n * sizeof(*q->v));
        w->pending.n = later + q->n;
        worker_fin_free(q);
        worker_fin_kick(w);
        worker_maybe_stop(w);
        return;
    }
    if (w->fin_failing) {
        w->fin_failing = false;
        log_info("ends of tries reported again", "worker=%s", log_q(w->name));
    }
    for (size_t i = 0; i < q->n; i++) {
        struct wend *d = &q->v[i];
        if (!q->accepted[i]) {
            char *m = xasprintf("result of %s %s try %d discarded: the try was taken from this "
                                "worker",
                                d->run_id, d->task_id, d->try_number);
            log_warn(m, "worker=%s", log_q(w->name));
            free(m);
        }
        wend_release(d);
    }
    worker_fin_free(q);
    worker_fin_kick(w);
    worker_maybe_stop(w);
}

/* Sends the first WORKER_FIN_BATCH pending ends (one call in flight). */
static void worker_fin_flush(struct worker *w)
{
    if (w->fin_busy || !w->pending.n || !w->id || w->stop_busy)
        return;
    uv_timer_stop(&w->fin);
    size_t n = w->pending.n < WORKER_FIN_BATCH ? w->pending.n : WORKER_FIN_BATCH;
    struct worker_fin_req *q = xcalloc(1, sizeof(*q));
    q->w = w;
    q->id = w->id;
    q->n = n;
    q->v = xmemdup(w->pending.v, n * sizeof(*q->v));
    q->accepted = xcalloc(n, sizeof(*q->accepted));
    w->fin_v = q->v;
    w->fin_n = n;
    memmove(w->pending.v, w->pending.v + n, (w->pending.n - n) * sizeof(*w->pending.v));
    w->pending.n -= n;
    q->req.data = q;
    w->fin_busy = true;
    (void)uv_queue_work(w->loop, &q->req, worker_fin_work, worker_fin_done);
}

static void worker_fin_fire(uv_timer_t *h)
{
    worker_fin_flush(h->data);
}

/* Ends go at the next turn of the loop, or at once with WORKER_FIN_BATCH of them (after a
 * failure: WORKER_FIN_RETRY_MS). */
static void worker_fin_kick(struct worker *w)
{
    if (w->fin_busy || !w->pending.n || w->closing)
        return;
    if (w->pending.n >= WORKER_FIN_BATCH && !w->fin_failing) {
        worker_fin_flush(w);
        return;
    }
    if (!uv_is_active((uv_handle_t *)&w->fin))
        uv_timer_start(&w->fin, worker_fin_fire,
                       w->fin_failing ? WORKER_FIN_RETRY_MS : WORKER_FIN_GATHER_MS, 0);
}

/* ---- claims ---- */

struct worker_claim_req {
    uv_work_t req;
    struct worker *w;
    int64_t id;
    int max;
    struct wq_claimed *out;
    struct wtry_prep *prep; /* one per claimed row */
    size_t n;
    int rc;
    struct err e;
};

static void worker_claim_work(uv_work_t *req)
{
    struct worker_claim_req *q = req->data;
    struct worker *w = q->w;
    q->rc = wq_claim(w->st_claim, q->id, w->name, (const char *const *)w->queues, w->nqueues,
                     q->max, &q->out, &q->n, &q->e);
    if (q->rc >= 0 && q->n > 0) {
        q->prep = xcalloc(q->n, sizeof(*q->prep));
        for (size_t i = 0; i < q->n; i++)
            wtry_prepare(w->home, q->out[i].spec, &q->prep[i]);
    }
    if (q->rc >= 0 && q->n > 0 && FAULT(FP_WORKER_SLOW_CLAIM))
        uv_sleep(1000); /* tests: a claim whose answer is late (committed, tries not started) */
}

/* A claim answered after its worker was declared dead (q->id is no longer w->id: the sweep
 * has made those tries 'lost') or fenced (a sweep may be giving them to others): not started.
 * Fenced, their ends are held as a killed try's are: given back if the worker is alive. */
static void worker_claim_refuse(struct worker *w, struct worker_claim_req *q)
{
    bool stale = q->id != w->id;
    log_warn(stale ? "claimed tries not started: the worker was declared dead meanwhile"
                   : "claimed tries not started: no heartbeat for 3/4 of dead_after",
             "worker=%s id=%lld tries=%zu", log_q(w->name), (long long)q->id, q->n);
    for (size_t i = 0; !stale && i < q->n; i++) {
        const struct wq_claimed *c = &q->out[i];
        worker_give_back(w, c->run_id, c->task_id, c->try_number,
                         xasprintf("killed: worker %s had no heartbeat for 3/4 of dead_after "
                                   "(the try was not started)",
                                   w->name),
                         true);
    }
}

static void worker_claim_done(uv_work_t *req, int status)
{
    struct worker_claim_req *q = req->data;
    struct worker *w = q->w;
    w->claim_busy = false;
    bool again = w->claim_again;
    w->claim_again = false;
    if (q->rc < 0) {
        if (!w->claim_failing)
            log_warn("cannot claim tries, will retry", "worker=%s error=%s", log_q(w->name),
                     log_q(err_msg(&q->e)));
        w->claim_failing = true;
        again = false; /* the tick tries again */
    } else {
        if (w->claim_failing)
            log_info("claiming tries again", "worker=%s", log_q(w->name));
        w->claim_failing = false;
        /* After a freeze the claim's answer may come before any timer: the fence first. */
        worker_fence_check(w);
        if (q->n && (q->id != w->id || w->fenced))
            worker_claim_refuse(w, q);
        for (size_t i = 0; q->id == w->id && !w->fenced && i < q->n; i++) {
            struct wq_claimed *c = &q->out[i];
            wtry_start(w, c->run_id, c->task_id, c->try_number, &q->prep[i]);
            c->run_id = c->task_id = NULL; /* taken */
        }
        if (w->grace_over) /* claimed as the drain's grace ran out */
            worker_kill_all(w, "killed: the worker is stopping (grace over)", false, false);
        if (q->n > 0 && (int)q->n >= q->max)
            again = true; /* there may be more */
        for (size_t i = 0; q->prep && i < q->n; i++)
            wtry_prep_release(&q->prep[i]); /* those not started */
        free(q->prep);
        wq_free_claimed(q->out, q->n);
    }
    free(q);
    if (again)
        worker_claim_kick(w);
    worker_maybe_stop(w);
}

/* Claims up to the free slots, unless a claim is in flight (then one more follows it). */
static void worker_claim_kick(struct worker *w)
{
    if (!w->id || w->draining || w->fenced || w->reg_busy || w->closing)
        return;
    if (w->claim_busy) {
        w->claim_again = true;
        return;
    }
    int free_slots = w->slots - w->nrun;
    if (free_slots <= 0)
        return;
    struct worker_claim_req *q = xcalloc(1, sizeof(*q));
    q->w = w;
    q->id = w->id;
    q->max = free_slots;
    q->req.data = q;
    w->claim_busy = true;
    (void)uv_queue_work(w->loop, &q->req, worker_claim_work, worker_claim_done);
}

static void worker_tick(uv_timer_t *h)
{
    struct worker *w = h->data;
    worker_fence_check(w);
    worker_claim_kick(w);
}

/* ---- heartbeats ---- */

struct worker_hb_req {
    uv_work_t req;
    struct worker *w;
    int64_t id;
    bool draining;
    int64_t started_ns;
    bool alive;
    struct wq_kill *kills;
    size_t nkills;
    struct wq_kill *rows; /* the store's running rows of this worker */
    size_t nrows;
    int rc;
    struct err e;
};

static void worker_hb_work(uv_work_t *req)
{
    struct worker_hb_req *q = req->data;
    q->rc = wq_heartbeat_rows(q->w->st_hb, q->id, q->draining, &q->alive, &q->kills, &q->nkills,
                              &q->rows, &q->nrows, &q->e);
}

static bool wends_have(const struct wend *v, size_t n, const struct wq_kill *k)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].try_number == k->try_number && strcmp(v[i].run_id, k->run_id) == 0 &&
            strcmp(v[i].task_id, k->task_id) == 0)
            return true;
    return false;
}

/* Whether the worker runs the try of key k or is reporting its end. */
static bool worker_knows(const struct worker *w, const struct wq_kill *k)
{
    return wtry_find((struct worker *)w, k->run_id, k->task_id, k->try_number) ||
           wends_have(w->pending.v, w->pending.n, k) || wends_have(w->held.v, w->held.n, k) ||
           wends_have(w->fin_v, w->fin_n, k);
}

/* The store's running rows of this worker (rows, taken) against what it runs: a row it does
 * not know twice in a row (a claim that committed although its answer was lost) is given
 * back. Twice: a row whose finish committed after the heartbeat read it is gone by the next.
 * Not while a claim is in flight: its rows may be read before its answer comes. */
static void worker_reconcile(struct worker *w, struct wq_kill *rows, size_t nrows)
{
    if (w->claim_busy) {
        wq_free_kills(rows, nrows);
        return;
    }
    size_t m = 0;
    for (size_t i = 0; i < nrows; i++) {
        struct wq_kill *k = &rows[i];
        if (worker_knows(w, k)) {
            free(k->run_id);
            free(k->task_id);
            continue;
        }
        bool again = false;
        for (size_t j = 0; j < w->nunknown && !again; j++)
            again = w->unknown[j].try_number == k->try_number &&
                    strcmp(w->unknown[j].run_id, k->run_id) == 0 &&
                    strcmp(w->unknown[j].task_id, k->task_id) == 0;
        if (!again) {
            rows[m++] = *k; /* suspect: given back if the next heartbeat lists it too */
            continue;
        }
        log_warn("a try this worker never started is given back", "worker=%s run=%s task=%s try=%d",
                 log_q(w->name), log_q(k->run_id), log_q(k->task_id), k->try_number);
        worker_give_back(w, k->run_id, k->task_id, k->try_number,
                         xasprintf("killed: worker %s holds the try but never started it (its "
                                   "claim's answer was lost)",
                                   w->name),
                         false);
        free(k->run_id);
        free(k->task_id);
    }
    wq_free_kills(w->unknown, w->nunknown);
    w->unknown = m ? rows : NULL;
    w->nunknown = m;
    if (!m)
        free(rows);
}

static void worker_listen(struct worker *w);

static void worker_hb_done(uv_work_t *req, int status)
{
    struct worker_hb_req *q = req->data;
    struct worker *w = q->w;
    w->hb_busy = false;
    worker_fence_check(w);
    if (q->rc < 0) {
        if (!w->hb_failing)
            log_warn("heartbeat failed, will retry", "worker=%s error=%s", log_q(w->name),
                     log_q(err_msg(&q->e)));
        w->hb_failing = true;
    } else if (!q->alive) {
        log_warn("declared dead: killing its tries and registering again",
                 "worker=%s id=%lld "
                 "tries=%zu",
                 log_q(w->name), (long long)q->id, w->ntries);
        w->hb_failing = false;
        w->fenced = false;
        worker_kill_all(w, "killed: the worker was declared dead", true, false);
        wends_drop(w, true);
        wq_free_kills(w->unknown, w->nunknown);
        w->unknown = NULL;
        w->nunknown = 0;
        listen_stop(w->lis);
        w->lis = NULL;
        w->id = 0;
        if (!w->draining)
            worker_register(w);
    } else {
        if (w->hb_failing)
            log_info("heartbeat back", "worker=%s", log_q(w->name));
        w->hb_failing = false;
        w->good_hb_ns = q->started_ns;
        if (w->fenced) {
            w->fenced = false;
            for (size_t i = 0; i < w->held.n; i++)
                VEC_PUSH(&w->pending, w->held.v[i]);
            w->held.n = 0;
            for (struct wtry *t = w->tries; t; t = t->next)
                t->held = false; /* killed already: their ends go as they come */
            worker_fin_kick(w);
        }
        for (size_t i = 0; i < q->nkills; i++) {
            struct wtry *t =
                wtry_find(w, q->kills[i].run_id, q->kills[i].task_id, q->kills[i].try_number);
            if (t) {
                log_info("try killed on request", "worker=%s run=%s task=%s try=%d", log_q(w->name),
                         log_q(t->run_id), log_q(t->task_id), t->try_number);
                wtry_kill(t, "killed at the scheduler's request");
            }
        }
        worker_reconcile(w, q->rows, q->nrows);
        q->rows = NULL;
        q->nrows = 0;
        worker_claim_kick(w);
    }
    wq_free_kills(q->kills, q->nkills);
    wq_free_kills(q->rows, q->nrows);
    free(q);
    if (w->hb_again) {
        w->hb_again = false;
        worker_hb_kick(w);
    }
    worker_maybe_stop(w);
}

static void worker_hb_kick(struct worker *w)
{
    if (!w->id || w->reg_busy || w->stop_busy || w->closing)
        return;
    if (w->hb_busy) {
        w->hb_again = true;
        return;
    }
    struct worker_hb_req *q = xcalloc(1, sizeof(*q));
    q->w = w;
    q->id = w->id;
    q->draining = w->draining;
    q->started_ns = when_mono_ns();
    q->req.data = q;
    w->hb_busy = true;
    (void)uv_queue_work(w->loop, &q->req, worker_hb_work, worker_hb_done);
}

static void worker_hb_fire(uv_timer_t *h)
{
    struct worker *w = h->data;
    worker_fence_check(w); /* first: after a freeze, before any heartbeat can succeed */
    worker_hb_kick(w);
}

/* ---- doorbells (LISTEN) ---- */

static void worker_on_notify(void *ud, const char *channel)
{
    struct worker *w = ud;
    if (strcmp(channel, WQ_CHANNEL_QUEUED) == 0)
        worker_claim_kick(w);
    else
        worker_hb_kick(w); /* baram_worker_<id>: a kill request, which the heartbeat returns */
}

static void worker_on_resync(void *ud)
{
    struct worker *w = ud;
    worker_claim_kick(w);
    worker_hb_kick(w);
}

static void worker_listen(struct worker *w)
{
    char mine[48];
    snprintf(mine, sizeof mine, "baram_worker_%lld", (long long)w->id);
    const char *channels[] = {WQ_CHANNEL_QUEUED, mine};
    struct err e = {0};
    if (listen_start(w->loop, w->url, channels, ARRAY_SIZE(channels), worker_on_notify,
                     worker_on_resync, w, &w->lis, &e) < 0) {
        w->lis = NULL;
        log_warn("cannot listen for new tries: claiming every second", "worker=%s error=%s",
                 log_q(w->name), log_q(err_msg(&e)));
    }
}

/* ---- registration (thread pool), at the start with the connections, and again ---- */

struct worker_reg_req {
    uv_work_t req;
    struct worker *w;
    bool setup; /* the first: connections opened, orphans killed */
    int64_t started_ns;
    int64_t id;
    int norphans;
    int rc;
    struct err e;
};

/* "a,b": the queues as the registry keeps them (malloc'd). */
static char *worker_queues_csv(const struct worker *w)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    for (size_t i = 0; i < w->nqueues; i++)
        if (buf_addf(&b, "%s%s", i ? "," : "", w->queues[i]) < 0)
            break;
    return buf_detach(&b, NULL);
}

static void worker_orphan_killed(void *ud, int pid)
{
    const struct worker *w = ud;
    log_warn("killed a try left by a previous worker of this name", "worker=%s pid=%d",
             log_q(w->name), pid);
}

static void worker_reg_work(uv_work_t *req)
{
    struct worker_reg_req *q = req->data;
    struct worker *w = q->w;
    if (q->setup) {
        /* Tries a previous worker of this name and home left on this host: they carry both (a
         * worker of the same name on another home, another fleet, is none of its business). */
        char *tag = xasprintf("BARAM_WORKER=%s", w->name);
        const char *tags[] = {tag, w->home_tag};
        q->norphans = orphans_kill_tagged(tags, 2, worker_orphan_killed, w);
        free(tag);
        if ((q->rc = store_open(w->url, &w->st_hb, &q->e)) < 0 ||
            (q->rc = store_open(w->url, &w->st_claim, &q->e)) < 0 ||
            (q->rc = store_open(w->url, &w->st_fin, &q->e)) < 0)
            return;
    }
    char *queues = worker_queues_csv(w);
    char key[128];
    struct node_rec n = {
        .role = "worker",
        .name = w->name,
        .hostname = w->hostname,
        .pid = (int)getpid(),
        .queues = queues,
        .slots = w->slots,
        .home = w->home_abs,
        .log_url = w->log_url,
        .host_key = orphans_host_key(key, sizeof key) == 0 ? key : NULL,
    };
    q->started_ns = when_mono_ns();
    q->rc = store_node_register(w->st_hb, &n, &q->id, &q->e);
    free(queues);
}

static void worker_reg_done(uv_work_t *req, int status)
{
    struct worker_reg_req *q = req->data;
    struct worker *w = q->w;
    if (q->setup)
        w->setup_busy = false;
    else
        w->reg_busy = false;
    if (q->rc < 0) {
        if (q->setup) {
            log_error("cannot start", "role=worker error=%s", log_q(err_msg(&q->e)));
            free(q);
            worker_fail(w, ERR_DB);
            return;
        }
        log_warn("cannot register again, will retry", "worker=%s error=%s", log_q(w->name),
                 log_q(err_msg(&q->e)));
        free(q);
        w->reg_busy = false;
        /* The heartbeat timer comes back here: worker_register is called by it while id is 0. */
        worker_maybe_stop(w);
        return;
    }
    w->id = q->id;
    w->good_hb_ns = q->started_ns;
    w->fenced = false;
    if (q->setup && q->norphans < 0)
        log_warn("cannot look for tries a previous worker left", "worker=%s error=%s",
                 log_q(w->name), err_str(q->norphans));
    free(q);
    if (w->draining) { /* asked to stop meanwhile */
        worker_maybe_stop(w);
        return;
    }
    worker_listen(w);
    char *queues = worker_queues_csv(w);
    log_info("worker up", "worker=%s id=%lld queues=%s slots=%d log_url=%s", log_q(w->name),
             (long long)w->id, log_q(queues), w->slots, log_q(w->log_url ? w->log_url : ""));
    free(queues);
    worker_claim_kick(w);
    worker_fin_kick(w);
}

static void worker_queue_reg(struct worker *w, bool setup)
{
    struct worker_reg_req *q = xcalloc(1, sizeof(*q));
    q->w = w;
    q->setup = setup;
    q->req.data = q;
    if (setup)
        w->setup_busy = true;
    else
        w->reg_busy = true;
    (void)uv_queue_work(w->loop, &q->req, worker_reg_work, worker_reg_done);
}

static void worker_register(struct worker *w)
{
    if (w->reg_busy || w->setup_busy || w->closing || w->id)
        return;
    worker_queue_reg(w, false);
}

static void worker_hb_timer(uv_timer_t *h)
{
    struct worker *w = h->data;
    if (!w->id && !w->setup_busy && !w->draining) {
        worker_register(w); /* declared dead and registering failed: try again */
        return;
    }
    worker_hb_fire(h);
}

/* ---- drain ---- */

static void worker_grace_over(uv_timer_t *h)
{
    struct worker *w = h->data;
    w->grace_over = true;
    if (w->ntries)
        log_warn("grace over: killing the tries left", "worker=%s tries=%zu", log_q(w->name),
                 w->ntries);
    worker_kill_all(w, "killed: the worker is stopping (grace over)", false, false);
    worker_maybe_stop(w);
}

void worker_drain(struct worker *w)
{
    if (w->draining || w->closing)
        return;
    w->draining = true;
    log_info("worker draining", "worker=%s tries=%zu grace_ms=%lld", log_q(w->name), w->ntries,
             (long long)w->grace_ms);
    worker_hb_kick(w); /* the row says 'draining' at once */
    /* Also without tries: a claim in flight may still bring some. */
    uv_timer_start(&w->grace, worker_grace_over, (uint64_t)(w->grace_ms > 0 ? w->grace_ms : 0), 0);
    worker_maybe_stop(w);
}

void worker_stop_now(struct worker *w)
{
    worker_drain(w);
    if (w->closing || w->grace_over)
        return;
    uv_timer_stop(&w->grace);
    worker_grace_over(&w->grace);
}

/* ---- start ---- */

int worker_start(const struct worker_opts *o, struct worker **out, struct err *e)
{
    *out = NULL;
    if (!o->store_url || !listen_url_is_pg(o->store_url))
        return err_set(e, -ENOTSUP,
                       "baram worker needs a PostgreSQL database (db: postgresql://...): on "
                       "SQLite `baram standalone` runs the tasks");
    if (o->heartbeat_ms <= 0 || o->dead_after_ms <= o->heartbeat_ms)
        return err_set(e, -EINVAL, "worker.dead_after must be longer than worker.heartbeat");
    struct worker *w = xcalloc(1, sizeof(*w));
    w->loop = o->loop;
    w->url = xstrdup(o->store_url);
    w->home = xstrdup(o->home);
    w->home_abs = realpath(o->home, NULL);
    if (!w->home_abs)
        w->home_abs = xstrdup(o->home);
    w->home_tag = xasprintf("BARAM_WORKER_HOME=%s", w->home_abs);
    char host[256] = "localhost";
    if (gethostname(host, sizeof host) < 0)
        snprintf(host, sizeof host, "localhost");
    host[sizeof host - 1] = 0;
    w->hostname = xstrdup(host);
    w->name = o->name && *o->name ? xstrdup(o->name) : xasprintf("%s:%d", host, (int)getpid());
    if (o->nqueues) {
        w->queues = xcalloc(o->nqueues, sizeof(*w->queues));
        for (size_t i = 0; i < o->nqueues; i++)
            w->queues[i] = xstrdup(o->queues[i]);
        w->nqueues = o->nqueues;
    } else {
        w->queues = xcalloc(1, sizeof(*w->queues));
        w->queues[0] = xstrdup("default");
        w->nqueues = 1;
    }
    w->slots = o->slots > 0 ? o->slots : (int)uv_available_parallelism();
    w->heartbeat_ms = o->heartbeat_ms;
    w->dead_after_ms = o->dead_after_ms;
    w->grace_ms = o->grace_ms;
    w->store_max = o->store_max;
    if (o->listen) {
        struct logserve_opts lo = {
            .listen = o->listen, .home = o->home, .auth = o->auth, .store_url = o->store_url};
        int rc = logserve_start(&lo, &w->ls, e);
        if (rc < 0) {
            w->ls = NULL;
            worker_free(w);
            return rc;
        }
        w->log_url = xstrdup(logserve_url(w->ls));
    }
    w->stopped = o->stopped;
    w->ud = o->ud;

    uv_timer_init(w->loop, &w->tick);
    uv_timer_init(w->loop, &w->hb);
    uv_timer_init(w->loop, &w->fin);
    uv_timer_init(w->loop, &w->grace);
    w->tick.data = w->hb.data = w->fin.data = w->grace.data = w;
    w->nhandles = 4;
    uv_timer_start(&w->tick, worker_tick, WORKER_TICK_MS, WORKER_TICK_MS);
    uv_timer_start(&w->hb, worker_hb_timer, (uint64_t)w->heartbeat_ms, (uint64_t)w->heartbeat_ms);
    worker_queue_reg(w, true);
    *out = w;
    return 0;
}

#define WORKER_POOL_THREADS "16"

static void worker_pool_noop(uv_work_t *req)
{
    (void)req;
}

void worker_pool_widen(void)
{
    if (getenv("UV_THREADPOOL_SIZE"))
        return; /* the user's: kept, and passed on as any variable */
    if (setenv("UV_THREADPOOL_SIZE", WORKER_POOL_THREADS, 1) < 0)
        return;
    /* The pool reads the variable once, when the first work is queued: queue one now. */
    uv_loop_t loop;
    if (uv_loop_init(&loop) == 0) {
        uv_work_t req;
        if (uv_queue_work(&loop, &req, worker_pool_noop, NULL) == 0)
            uv_run(&loop, UV_RUN_DEFAULT);
        (void)uv_loop_close(&loop);
    }
    (void)unsetenv("UV_THREADPOOL_SIZE");
}
