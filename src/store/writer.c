/*
 * writer.c - the group-commit writer (struct store_writer, store.h): lets
 * the event loop make changes durable without ever blocking on the disk.
 *
 * Threads and ownership:
 *  - The loop thread calls store_writer_put_* (each deep-copies its record
 *    into the queue under mu and takes the next sequence number), receives
 *    on_durable/on_error from the uv_async callback, and calls
 *    store_writer_stop. It owns the uv_async handle.
 *  - The writer thread owns its own store connection (opened by
 *    store_writer_start before the thread exists, used only by the thread
 *    after) and the batch it is writing. It calls on_commit, if given,
 *    after each commit (the only callback not on the loop).
 *  - mu guards the queue, the sequence counter, and the stopping/failed/
 *    exited flags and error; durable_seq and the statistics are atomics, so
 *    readers on the loop take no lock.
 *
 * Key idea (group commit): the thread takes everything queued at once (up to
 * WRITER_BATCH_MAX changes, copied out under mu: a bounded hold) and
 * writes it as ONE transaction (BEGIN IMMEDIATE ... COMMIT, one fsync), then
 * publishes the batch's last sequence number and wakes the loop with
 * uv_async_send. While that commit runs, new changes pile up and go into the
 * next transaction, so the fsync cost is shared by every change of a batch
 * and the number of commits adapts to the load by itself.
 *
 * Within a batch, several upserts of the same row are coalesced: the row is
 * written once, with the last content, at the position of its first
 * occurrence (positions matter: a task's first write sets its first-seen
 * order). Every write is a whole-row upsert, so this changes nothing a
 * reader can see after the commit.
 *
 * Events: every change of a run's or task instance's state (in the order the
 * loop made them, before coalescing; a repeat of the same state within a
 * batch and a task instance's initial 'none' are left out) is appended to
 * the event log (events.h) in the same transaction, so the API's stream
 * never shows a change that is not durable.
 *
 * Fence (several schedulers on one database): with store_writer_set_fence, each
 * transaction starts with store_fence on the scheduler's row; a refusal rolls the
 * batch back and fails the writer at once (a scheduler declared dead must never
 * write the runs it lost again).
 *
 * A failed commit (the transaction is rolled back) is retried up to 3 times
 * with a short backoff (a lost connection, -ECONNRESET: for up to 30 s, so a
 * database server's restart is waited out; the backend reconnects); then the
 * writer is failed: on_error runs on the loop,
 * queued and later changes are dropped and every submit returns 0.
 *
 * Stop: the thread drains the queue, commits, closes its connection,
 * publishes "exited" and sends the async; the loop's callback joins the
 * thread (already finished or about to), uv_close()s the handle, and the
 * close callback calls done_cb and frees the writer.
 */
#include "store/store.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "base/arena.h"
#include "base/err.h"
#include "base/fault.h"
#include "base/hmap.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/deliveries.h"
#include "store/events.h"

#define WRITER_RETRIES 3
/* A lost connection (a database server restarting: -ECONNRESET) is retried this long, every
 * WRITER_RECONNECT_PAUSE_MS at most, before the writer counts as failed. */
#define WRITER_RECONNECT_MS       30000
#define WRITER_RECONNECT_PAUSE_MS 250
/* Changes per transaction at most: under a flood, bounds the time to the first durable
 * report (a commit of 4096 rows takes ~20-40 ms) at no cost in throughput. */
#define WRITER_BATCH_MAX 4096

enum wchange_kind { WCHANGE_RUN, WCHANGE_TI, WCHANGE_TRY, WCHANGE_DAG_VERSION, WCHANGE_DELIVERY };

struct wchange {
    enum wchange_kind kind;
    bool superseded; /* a later change of the same row took its place in this batch */
    union {
        struct run_rec run; /* owned copies */
        struct ti_rec ti;
        struct try_rec try_;
        struct {
            char *hash, *dag_id, *source;
            size_t len;
        } dv;
        struct delivery_rec dl; /* notify */
    } u;
};

/* An event of a batch: its strings are borrowed from the batch's changes. */
struct wevent {
    enum event_kind kind;
    const char *dag_id, *run_id, *task_id;
    enum ti_state ti_state;
    enum run_state run_state;
    int try_number;
    int64_t at_ms;
};

#define WRITER_PRUNE_EVERY 10000

/* Commits of every writer of the process and their time (store_writer_totals, for /metrics):
 * written by the writer threads, read by any; relaxed atomics. */
static _Atomic uint64_t writer_commits;
static _Atomic uint64_t writer_commit_ns;

struct store_writer {
    uv_async_t async; /* loop thread; async.data = this writer */
    pthread_t thread;
    struct store *store; /* owned; used by the writer thread only once it runs */
    store_durable_fn on_durable;
    store_error_fn on_error;
    store_commit_fn on_commit; /* called on the writer thread */
    void *commit_ud;
    store_stopped_fn on_stopped;
    void *ud;
    atomic_bool coalesce;  /* set by the loop, read by the thread per batch */
    _Atomic int64_t fence; /* scheduler id whose row fences each batch (0: none) */

    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Guarded by mu. */
    VEC(struct wchange) queue; /* waiting changes: queue.v[qhead..n) */
    size_t qhead;              /* changes before it were taken by the thread */
    uint64_t queued_seq;       /* the last sequence number handed out */
    uint64_t batch_seq;        /* the last sequence number taken by the thread */
    bool stopping;             /* stop requested: drain, then exit */
    int linger_ms;             /* store_writer_set_linger */
    bool lingering;            /* the thread gathers changes until its deadline: no signals */
    bool failed;
    bool exited; /* the thread has written its last batch and closed its connection */
    int err_code;
    char *err_msg; /* owned */

    _Atomic uint64_t durable_seq;
    _Atomic uint64_t commits, changes, rows;
    _Atomic int64_t commit_ns;

    /* Loop thread only. */
    uint64_t reported_seq;
    bool stop_called, error_reported, closing;
    bool corked; /* store_writer_cork: submit queues without waking the thread */

    /* Writer thread only: the changes of the transaction being written, their events. */
    VEC(struct wchange) batch;
    VEC(struct wevent) events;
    struct events_w *ev; /* NULL until the first batch, or when the log cannot be written */
    bool ev_tried;
    uint64_t ev_since_prune;
};

/* ---- copies ---- */

static char *dup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

static void copy_run(struct run_rec *d, const struct run_rec *s)
{
    *d = *s;
    d->run_id = dup_or_null(s->run_id);
    d->dag_id = dup_or_null(s->dag_id);
    d->conf = dup_or_null(s->conf);
    d->dag_hash = dup_or_null(s->dag_hash);
    d->dag_path = dup_or_null(s->dag_path);
    d->owner = dup_or_null(s->owner);
}

static void copy_ti(struct ti_rec *d, const struct ti_rec *s)
{
    *d = *s;
    d->run_id = dup_or_null(s->run_id);
    d->task_id = dup_or_null(s->task_id);
    d->task = dup_or_null(s->task);
    d->output = s->output ? xmemdup(s->output, s->output_len) : NULL;
    d->message = dup_or_null(s->message);
    d->pool = dup_or_null(s->pool);
    d->worker = NULL; /* read only */
}

static void copy_try(struct try_rec *d, const struct try_rec *s)
{
    *d = *s;
    d->run_id = dup_or_null(s->run_id);
    d->task_id = dup_or_null(s->task_id);
    d->hostname = dup_or_null(s->hostname);
    d->worker = dup_or_null(s->worker);
}

static void wchange_release(struct wchange *c)
{
    switch (c->kind) {
    case WCHANGE_RUN:
        run_rec_release(&c->u.run);
        break;
    case WCHANGE_TI:
        ti_rec_release(&c->u.ti);
        break;
    case WCHANGE_TRY:
        try_rec_release(&c->u.try_);
        break;
    case WCHANGE_DAG_VERSION:
        free(c->u.dv.hash);
        free(c->u.dv.dag_id);
        free(c->u.dv.source);
        break;
    case WCHANGE_DELIVERY:
        delivery_rec_release(&c->u.dl);
        break;
    }
}

/* ---- writer thread ---- */

/* The row key of a change, in a: NULL for changes that are never coalesced. */
static const char *wchange_key(struct arena *a, const struct wchange *c, size_t *len)
{
    const char *run = NULL, *task = "";
    int try_number = 0;
    switch (c->kind) {
    case WCHANGE_RUN:
        run = c->u.run.run_id;
        break;
    case WCHANGE_TI:
        run = c->u.ti.run_id;
        task = c->u.ti.task_id;
        break;
    case WCHANGE_TRY:
        run = c->u.try_.run_id;
        task = c->u.try_.task_id;
        try_number = c->u.try_.try_number;
        break;
    case WCHANGE_DAG_VERSION:
    case WCHANGE_DELIVERY:
        return NULL;
    }
    if (!run || !task)
        return NULL;
    size_t rl = strlen(run), tl = strlen(task);
    char *k = arena_alloc(a, rl + tl + 16);
    int n =
        snprintf(k, rl + tl + 16, "%d%s%c%s%c%d", (int)c->kind, run, 0x1f, task, 0x1f, try_number);
    *len = (size_t)n;
    return k;
}

/* Marks every change superseded by a later one of the same row, moving the later content to
 * the earlier position. */
static void coalesce(struct store_writer *w)
{
    if (w->batch.n < 2)
        return;
    struct arena a;
    struct hmap seen;
    arena_init(&a, 64 * 1024);
    hmap_init(&seen);
    for (size_t i = 0; i < w->batch.n; i++) {
        struct wchange *c = &w->batch.v[i];
        size_t len = 0;
        const char *key = wchange_key(&a, c, &len);
        if (!key)
            continue;
        uint32_t first;
        if (hmap_get(&seen, key, len, &first)) {
            struct wchange tmp = w->batch.v[first];
            w->batch.v[first] = *c;
            *c = tmp;
            c->superseded = true;
        } else {
            hmap_put(&seen, key, len, (uint32_t)i);
        }
    }
    hmap_release(&seen);
    arena_release(&a);
}

/* The batch's events, in submission order (see the design note). */
static void collect_events(struct store_writer *w)
{
    w->events.n = 0;
    int64_t now = when_now_ms();
    for (size_t i = 0; i < w->batch.n; i++) {
        const struct wchange *c = &w->batch.v[i];
        struct wevent e = {.at_ms = now};
        if (c->kind == WCHANGE_RUN) {
            e.kind = EVENT_RUN;
            e.dag_id = c->u.run.dag_id;
            e.run_id = c->u.run.run_id;
            e.run_state = c->u.run.state;
        } else if (c->kind == WCHANGE_TI) {
            if (c->u.ti.state == TI_NONE)
                continue;
            e.kind = EVENT_TI;
            e.run_id = c->u.ti.run_id;
            e.task_id = c->u.ti.task_id;
            e.ti_state = c->u.ti.state;
            e.try_number = c->u.ti.try_number;
        } else {
            continue;
        }
        /* the same state again for the same row within the batch says nothing new */
        bool repeat = false;
        for (size_t k = w->events.n; k-- > 0 && !repeat;) {
            const struct wevent *p = &w->events.v[k];
            if (p->kind != e.kind || strcmp(p->run_id, e.run_id) != 0 ||
                (e.task_id && strcmp(p->task_id, e.task_id) != 0))
                continue;
            repeat = e.kind == EVENT_RUN
                         ? p->run_state == e.run_state
                         : p->ti_state == e.ti_state && p->try_number == e.try_number;
            break;
        }
        if (!repeat)
            VEC_PUSH(&w->events, e);
    }
}

static int write_events(struct store_writer *w, struct err *err)
{
    if (!w->ev_tried) {
        w->ev_tried = true;
        if (events_w_open(w->store, &w->ev, NULL) < 0)
            w->ev = NULL; /* no event log on this backend: changes still go in */
    }
    if (!w->ev)
        return 0;
    for (size_t i = 0; i < w->events.n; i++) {
        const struct wevent *e = &w->events.v[i];
        const char *state =
            e->kind == EVENT_RUN ? run_state_name(e->run_state) : ti_state_name(e->ti_state);
        int r = events_w_put(w->ev, e->kind, e->dag_id, e->run_id, e->task_id, state, e->try_number,
                             e->at_ms, err);
        if (r < 0)
            return r;
    }
    int r = events_w_flush(w->ev, err);
    if (r < 0)
        return r;
    w->ev_since_prune += w->events.n;
    if (w->ev_since_prune >= WRITER_PRUNE_EVERY) {
        w->ev_since_prune = 0;
        return events_w_prune(w->ev, err);
    }
    return 0;
}

static int write_one(struct store *s, const struct wchange *c, struct err *err)
{
    switch (c->kind) {
    case WCHANGE_RUN:
        return store_put_run(s, &c->u.run, err);
    case WCHANGE_TI:
        return store_put_ti(s, &c->u.ti, err);
    case WCHANGE_TRY:
        return store_put_try(s, &c->u.try_, err);
    case WCHANGE_DAG_VERSION:
        return store_put_dag_version(s, c->u.dv.hash, c->u.dv.dag_id, c->u.dv.source, c->u.dv.len,
                                     err);
    case WCHANGE_DELIVERY:
        return store_put_delivery(s, &c->u.dl, err);
    }
    return err_set(err, ERR_DB, "cannot write a change of unknown kind %d", (int)c->kind);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

/* One transaction for the whole batch: 0 or ERR_DB (rolled back) with *err filled. */
static int write_batch(struct store_writer *w, uint64_t *rows, struct err *err)
{
    int r = store_begin(w->store, err);
    if (r < 0)
        return r;
    int64_t fence = atomic_load_explicit(&w->fence, memory_order_relaxed);
    if (fence > 0 && (r = store_fence(w->store, fence, err)) < 0) {
        store_rollback(w->store);
        return r;
    }
    if (fence > 0 && FAULT(FP_STOP_IN_BATCH))
        raise(SIGSTOP); /* tests: a process frozen with its fence lock held */
    *rows = 0;
    for (size_t i = 0; i < w->batch.n; i++) {
        if (w->batch.v[i].superseded)
            continue;
        if ((r = write_one(w->store, &w->batch.v[i], err)) < 0) {
            store_rollback(w->store);
            return r;
        }
        (*rows)++;
    }
    if ((r = write_events(w, err)) < 0) {
        store_rollback(w->store);
        return r;
    }
    if (FAULT(FP_STORE_SLOW_COMMIT))
        sleep_ms(300); /* tests: a disk that takes its time */
    return store_commit(w->store, err);
}

static void *writer_main(void *arg)
{
    struct store_writer *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        while (w->queue.n == w->qhead && !w->stopping)
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->queue.n == w->qhead)
            break; /* stopping, and everything is written */
        if (w->linger_ms > 0 && !w->stopping) {
            /* Let more changes gather for up to linger_ms: one commit (and one wake-up of
             * this thread) for many events when changes trickle in. Submitters do not
             * signal meanwhile; only a stop or a full batch ends the wait early. */
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_nsec += (long)w->linger_ms * 1000000L;
            until.tv_sec += until.tv_nsec / 1000000000L;
            until.tv_nsec %= 1000000000L;
            w->lingering = true;
            while (!w->stopping && w->linger_ms > 0 && w->queue.n - w->qhead < WRITER_BATCH_MAX &&
                   pthread_cond_timedwait(&w->cond, &w->mu, &until) == 0)
                ;
            w->lingering = false;
        }
        /* Take up to WRITER_BATCH_MAX changes from the front of the queue. */
        size_t k = w->queue.n - w->qhead;
        if (k > WRITER_BATCH_MAX)
            k = WRITER_BATCH_MAX;
        VEC_RESERVE(&w->batch, k);
        memcpy(w->batch.v, w->queue.v + w->qhead, k * sizeof(*w->batch.v));
        w->batch.n = k;
        w->qhead += k;
        w->batch_seq += k;
        if (w->qhead == w->queue.n) {
            w->queue.n = w->qhead = 0;
        } else if (w->qhead > w->queue.n / 2) {
            /* Compact: each change moves at most once per halving, so O(1) amortised. */
            memmove(w->queue.v, w->queue.v + w->qhead,
                    (w->queue.n - w->qhead) * sizeof(*w->queue.v));
            w->queue.n -= w->qhead;
            w->qhead = 0;
        }
        uint64_t last = w->batch_seq;
        bool failed = w->failed;
        pthread_mutex_unlock(&w->mu);

        int r = 0;
        struct err err; /* on this thread's stack (8 MiB): the last attempt's failure */
        err.code = 0;
        if (!failed) {
            collect_events(w);
            if (atomic_load_explicit(&w->coalesce, memory_order_relaxed))
                coalesce(w);
            uint64_t rows = 0;
            int64_t took_ns = 0;
            int64_t lost_until = when_mono_ms() + WRITER_RECONNECT_MS;
            for (int attempt = 0;; attempt++) {
                int64_t t0 = when_mono_ns();
                r = write_batch(w, &rows, &err);
                if (r == 0) {
                    took_ns = when_mono_ns() - t0;
                    break;
                }
                if (r == -ESTALE) /* fenced: never again */
                    break;
                int pause = attempt < 5 ? 10 << attempt : WRITER_RECONNECT_PAUSE_MS;
                if (r == -ECONNRESET && when_mono_ms() + pause < lost_until) {
                    sleep_ms(pause); /* the whole batch again once the server is back */
                    continue;
                }
                if (attempt >= WRITER_RETRIES)
                    break;
                sleep_ms(10 << attempt);
            }
            if (r == 0) {
                atomic_fetch_add_explicit(&w->commits, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&w->commit_ns, took_ns, memory_order_relaxed);
                atomic_fetch_add_explicit(&w->changes, w->batch.n, memory_order_relaxed);
                atomic_fetch_add_explicit(&w->rows, rows, memory_order_relaxed);
                atomic_store_explicit(&w->durable_seq, last, memory_order_release);
                atomic_fetch_add_explicit(&writer_commits, 1, memory_order_relaxed);
                atomic_fetch_add_explicit(&writer_commit_ns, (uint64_t)took_ns,
                                          memory_order_relaxed);
                if (w->on_commit)
                    w->on_commit(w->commit_ud, last, w->events.n);
            }
        }
        char *msg = r < 0 ? xstrdup(err_msg(&err)) : NULL;
        for (size_t i = 0; i < w->batch.n; i++)
            wchange_release(&w->batch.v[i]);
        w->batch.n = 0;

        pthread_mutex_lock(&w->mu);
        if (r < 0) {
            w->failed = true;
            w->err_code = r;
            w->err_msg = msg;
        }
        if (!failed) {
            pthread_mutex_unlock(&w->mu);
            uv_async_send(&w->async);
            pthread_mutex_lock(&w->mu);
        }
    }
    pthread_mutex_unlock(&w->mu);
    /* The connection is the thread's: close it here, then say so. */
    events_w_close(w->ev);
    w->ev = NULL;
    VEC_FREE(&w->events);
    store_close(w->store);
    w->store = NULL;
    pthread_mutex_lock(&w->mu);
    w->exited = true;
    pthread_mutex_unlock(&w->mu);
    uv_async_send(&w->async);
    return NULL;
}

void store_writer_totals(uint64_t *commits, uint64_t *commit_ns)
{
    *commits = atomic_load_explicit(&writer_commits, memory_order_relaxed);
    *commit_ns = atomic_load_explicit(&writer_commit_ns, memory_order_relaxed);
}

/* ---- loop thread ---- */

static void writer_free(struct store_writer *w)
{
    for (size_t i = w->qhead; i < w->queue.n; i++)
        wchange_release(&w->queue.v[i]);
    VEC_FREE(&w->queue);
    VEC_FREE(&w->batch);
    free(w->err_msg);
    pthread_cond_destroy(&w->cond);
    pthread_mutex_destroy(&w->mu);
    free(w);
}

static void on_closed(uv_handle_t *h)
{
    struct store_writer *w = h->data;
    store_stopped_fn done = w->on_stopped;
    void *ud = w->ud;
    writer_free(w);
    if (done)
        done(ud);
}

static void on_async(uv_async_t *h)
{
    struct store_writer *w = h->data;
    if (w->closing)
        return;
    pthread_mutex_lock(&w->mu);
    bool failed = w->failed, exited = w->exited;
    int code = w->err_code;
    char *msg = failed && !w->error_reported ? xstrdup(w->err_msg ? w->err_msg : "") : NULL;
    pthread_mutex_unlock(&w->mu);

    uint64_t durable = atomic_load_explicit(&w->durable_seq, memory_order_acquire);
    if (durable > w->reported_seq) {
        w->reported_seq = durable;
        if (w->on_durable)
            w->on_durable(w->ud, durable);
    }
    if (msg) {
        w->error_reported = true;
        if (w->on_error)
            w->on_error(w->ud, code, msg);
        free(msg);
    }
    if (exited && !w->closing) {
        /* The thread has published its exit: the join waits at most for its last
         * uv_async_send to return. */
        w->closing = true;
        pthread_join(w->thread, NULL);
        uv_close((uv_handle_t *)&w->async, on_closed);
    }
}

int store_writer_start(struct uv_loop_s *loop, const char *url, store_durable_fn on_durable,
                       store_error_fn on_error, void *ud, store_commit_fn on_commit,
                       void *commit_ud, struct store_writer **out, struct err *e)
{
    *out = NULL;
    struct store *s = NULL;
    int r = store_open(url, &s, e);
    if (r < 0)
        return r;
    struct store_writer *w = xcalloc(1, sizeof(*w));
    w->store = s;
    w->on_durable = on_durable;
    w->on_error = on_error;
    w->ud = ud;
    w->on_commit = on_commit;
    w->commit_ud = commit_ud;
    atomic_init(&w->coalesce, true);
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* linger deadlines ignore clock steps */
    pthread_cond_init(&w->cond, &ca);
    pthread_condattr_destroy(&ca);
    if ((r = uv_async_init(loop, &w->async, on_async)) < 0) {
        (void)err_set(e, r, "cannot start the store writer: cannot create its wakeup handle");
        store_close(s);
        w->store = NULL;
        writer_free(w);
        return r;
    }
    w->async.data = w;
    if ((r = pthread_create(&w->thread, NULL, writer_main, w)) != 0) {
        (void)err_set(e, -r, "cannot start the store writer: cannot create its thread");
        store_close(s);
        w->store = NULL;
        w->closing = true;
        uv_close((uv_handle_t *)&w->async, on_closed); /* frees w; on_stopped is NULL */
        return -r;
    }
    *out = w;
    return 0;
}

/* Queues c (already a private copy): its sequence number, or 0 (c released) when the writer
 * is stopping or failed. */
static uint64_t submit(struct store_writer *w, struct wchange *c)
{
    uint64_t seq = 0;
    pthread_mutex_lock(&w->mu);
    if (!w->failed && !w->stopping) {
        VEC_PUSH(&w->queue, *c);
        seq = ++w->queued_seq;
        size_t queued = w->queue.n - w->qhead;
        if ((queued == 1 && !w->corked && !w->lingering) ||
            (w->lingering && queued == WRITER_BATCH_MAX))
            pthread_cond_signal(&w->cond);
    }
    pthread_mutex_unlock(&w->mu);
    if (!seq)
        wchange_release(c);
    return seq;
}

uint64_t store_writer_put_run(struct store_writer *w, const struct run_rec *r)
{
    if (w->stop_called)
        return 0;
    struct wchange c = {.kind = WCHANGE_RUN};
    copy_run(&c.u.run, r);
    return submit(w, &c);
}

uint64_t store_writer_put_ti(struct store_writer *w, const struct ti_rec *t)
{
    if (w->stop_called)
        return 0;
    struct wchange c = {.kind = WCHANGE_TI};
    copy_ti(&c.u.ti, t);
    return submit(w, &c);
}

uint64_t store_writer_put_try(struct store_writer *w, const struct try_rec *t)
{
    if (w->stop_called)
        return 0;
    struct wchange c = {.kind = WCHANGE_TRY};
    copy_try(&c.u.try_, t);
    return submit(w, &c);
}

uint64_t store_writer_put_dag_version(struct store_writer *w, const char *hash, const char *dag_id,
                                      const char *source, size_t len)
{
    if (w->stop_called)
        return 0;
    struct wchange c = {.kind = WCHANGE_DAG_VERSION};
    c.u.dv.hash = dup_or_null(hash);
    c.u.dv.dag_id = dup_or_null(dag_id);
    c.u.dv.source = source ? xmemdup(source, len) : NULL;
    c.u.dv.len = source ? len : 0;
    return submit(w, &c);
}

uint64_t store_writer_put_delivery(struct store_writer *w, const struct delivery_rec *d)
{
    if (w->stop_called)
        return 0;
    struct wchange c = {.kind = WCHANGE_DELIVERY};
    delivery_rec_copy(&c.u.dl, d);
    return submit(w, &c);
}

void store_writer_cork(struct store_writer *w)
{
    w->corked = true;
}

void store_writer_uncork(struct store_writer *w)
{
    pthread_mutex_lock(&w->mu);
    w->corked = false;
    if (w->queue.n > w->qhead && !w->lingering)
        pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

void store_writer_set_linger(struct store_writer *w, int ms)
{
    pthread_mutex_lock(&w->mu);
    w->linger_ms = ms < 0 ? 0 : ms;
    if (w->linger_ms == 0 && w->lingering)
        pthread_cond_signal(&w->cond); /* commit what is gathered now */
    pthread_mutex_unlock(&w->mu);
}

uint64_t store_writer_durable(const struct store_writer *w)
{
    return atomic_load_explicit(&w->durable_seq, memory_order_acquire);
}

void store_writer_set_fence(struct store_writer *w, int64_t id)
{
    atomic_store_explicit(&w->fence, id, memory_order_relaxed);
}

void store_writer_stats(const struct store_writer *w, uint64_t *commits, uint64_t *changes,
                        int64_t *commit_ns_total)
{
    if (commits)
        *commits = atomic_load_explicit(&w->commits, memory_order_relaxed);
    if (changes)
        *changes = atomic_load_explicit(&w->changes, memory_order_relaxed);
    if (commit_ns_total)
        *commit_ns_total = atomic_load_explicit(&w->commit_ns, memory_order_relaxed);
}

uint64_t store_writer_rows(const struct store_writer *w)
{
    return atomic_load_explicit(&w->rows, memory_order_relaxed);
}

void store_writer_set_coalesce(struct store_writer *w, bool on)
{
    atomic_store_explicit(&w->coalesce, on, memory_order_relaxed);
}

void store_writer_stop(struct store_writer *w, store_stopped_fn done_cb)
{
    if (!w || w->stop_called)
        return;
    w->stop_called = true;
    w->on_stopped = done_cb;
    pthread_mutex_lock(&w->mu);
    w->stopping = true;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}
