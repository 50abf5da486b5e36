/*
 * admit.c - pool slots across schedulers, the loop's side (see admit.h).
 *
 * The loop keeps the tries waiting for a slot (wants) and the slots to give
 * back (releases). A round copies what is unsent into a job, runs
 * queue_round on the thread pool on the admit object's own connection, and
 * on the loop hands the granted tries to the engine. A want remembers the
 * round that sent it: a grant matches only a want sent by that round or an
 * earlier one, so a want withdrawn and made again while a round was in
 * flight is never granted a row that its pending release is about to delete.
 *
 * Loop thread, except admit_work (thread pool), which touches only its job
 * and a->st, while a->busy.
 */
#include "sched/admit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/fault.h"
#include "base/log.h"
#include "base/pctl.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "store/queue.h"
#include "store/store.h"

struct admit_want {
    void *owner; /* borrowed */
    uint32_t id;
    char *run_id, *task_id, *pool; /* owned */
    int try_number;
    int priority;
    int64_t ready_at_ms;
    int64_t want_ns; /* monotonic: when it was wanted (admission latency) */
    bool running;    /* adopted: a try already running, whose row takes its slot at once */
    uint64_t round;  /* the round that sent it, 0 while unsent */
    bool sent;       /* some round sent it: its row may exist even if that round failed */
};

struct admit_pool {
    char *name; /* owned */
    int slots;
};

typedef VEC(struct queue_key) admit_keys;

struct admit_job {
    uv_work_t req;
    struct admit *a;
    uint64_t round;
    bool last;                    /* the stopping round: frees every row, closes the connection */
    admit_keys rel;               /* owned strings */
    VEC(struct admit_want) add;   /* owned strings, owner unused */
    VEC(struct queue_pool) pools; /* names borrowed from a->pools (never removed) */
    struct queue_key *granted;    /* out, owned */
    size_t ngranted;
    bool dispatched;
    int rc;
    char *errmsg; /* owned */
};

struct admit {
    uv_loop_t *loop;
    char *url; /* owned */
    int64_t sched_id;
    admit_grant_fn grant;
    void *ud;
    struct store *st; /* owned; opened by the first round; the job thread's while busy */
    VEC(struct admit_want) wants;
    admit_keys rel; /* owned strings */
    VEC(struct admit_pool) pools;
    uv_timer_t timer;
    uint64_t rounds;
    int64_t hold_until_ms; /* a failed round: none before this (monotonic) */
    bool busy, stopping;
    struct pctl lat; /* want -> grant of the last grants */
    admit_stopped_fn stopped;
    void *stopped_ud;
};

/* Logs the want -> grant percentiles (a wait for a free slot included), once, at the stop. */
static void admit_log_latency(struct admit *a)
{
    if (a->lat.total == 0)
        return;
    log_info("pool admission latency", "grants=%llu p50_us=%lld p99_us=%lld max_us=%lld",
             (unsigned long long)a->lat.total, (long long)pctl_get_us(&a->lat, 50),
             (long long)pctl_get_us(&a->lat, 99), (long long)pctl_get_us(&a->lat, 100));
}

static void admit_want_release(struct admit_want *w)
{
    free(w->run_id);
    free(w->task_id);
    free(w->pool);
}

static struct queue_key admit_key(const char *run_id, const char *task_id, int try_number)
{
    struct queue_key k = {xstrdup(run_id), xstrdup(task_id), try_number};
    return k;
}

static void admit_keys_free(struct queue_key *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].run_id);
        free(v[i].task_id);
    }
}

static void admit_job_free(struct admit_job *j)
{
    admit_keys_free(j->rel.v, j->rel.n);
    VEC_FREE(&j->rel);
    for (size_t i = 0; i < j->add.n; i++)
        admit_want_release(&j->add.v[i]);
    VEC_FREE(&j->add);
    VEC_FREE(&j->pools);
    queue_free_keys(j->granted, j->ngranted);
    free(j->errmsg);
    free(j);
}

static void admit_work(uv_work_t *req)
{
    struct admit_job *j = req->data;
    struct admit *a = j->a;
    struct err err;
    err.code = 0;
    if (!a->st && (j->rc = store_open(a->url, &a->st, &err)) < 0) {
        j->errmsg = xstrdup(err_msg(&err));
        return;
    }
    if (j->last) {
        if ((j->rc = queue_release_sched(a->st, a->sched_id, &err)) < 0)
            j->errmsg = xstrdup(err_msg(&err));
        store_close(a->st);
        a->st = NULL;
        return;
    }
    struct queue_want *add = xcalloc(j->add.n ? j->add.n : 1, sizeof *add);
    for (size_t i = 0; i < j->add.n; i++) {
        const struct admit_want *w = &j->add.v[i];
        add[i] = (struct queue_want){w->run_id,   w->task_id,     w->try_number, w->pool,
                                     w->priority, w->ready_at_ms, w->running};
    }
    j->rc = queue_round(a->st, a->sched_id, j->rel.v, j->rel.n, add, j->add.n, j->pools.v,
                        j->pools.n, &j->granted, &j->ngranted, &j->dispatched, &err);
    free(add);
    if (j->rc == 0 && j->add.n > 0 && FAULT(FP_ADMIT_ANSWER_LOST)) {
        /* the round committed, its answer never came (a server restart, a cut connection) */
        queue_free_keys(j->granted, j->ngranted);
        j->granted = NULL;
        j->ngranted = 0;
        j->rc = err_set(&err, -ECONNRESET, "the answer of a pool admission round was lost");
    }
    if (j->rc < 0) {
        j->errmsg = xstrdup(err_msg(&err));
        /* A broken connection is opened again by the next round. */
        store_close(a->st);
        a->st = NULL;
    }
}

static void admit_round(struct admit *a);

static void admit_on_timer(uv_timer_t *t)
{
    admit_round(t->data);
}

/* Runs a round after ms (0: at the next turn of the loop, so the wants of one event go
 * together), not before a failed round's hold is over. */
static void admit_kick(struct admit *a, int64_t ms)
{
    if (a->busy)
        return; /* its end looks at what is pending */
    int64_t hold = a->hold_until_ms - when_mono_ms();
    if (hold > ms)
        ms = hold;
    if (uv_is_active((uv_handle_t *)&a->timer) && uv_timer_get_due_in(&a->timer) <= (uint64_t)ms)
        return;
    uv_timer_start(&a->timer, admit_on_timer, (uint64_t)(ms > 0 ? ms : 0), 0);
}

static void admit_closed(uv_handle_t *h)
{
    struct admit *a = h->data;
    admit_stopped_fn done = a->stopped;
    void *ud = a->stopped_ud;
    for (size_t i = 0; i < a->wants.n; i++)
        admit_want_release(&a->wants.v[i]);
    VEC_FREE(&a->wants);
    admit_keys_free(a->rel.v, a->rel.n);
    VEC_FREE(&a->rel);
    for (size_t i = 0; i < a->pools.n; i++)
        free(a->pools.v[i].name);
    VEC_FREE(&a->pools);
    pctl_release(&a->lat);
    free(a->url);
    free(a);
    if (done)
        done(ud);
}

/* Hands the granted tries to the engine: each matches a want sent by this round or an
 * earlier one; one that matches none (withdrawn meanwhile) is given back. */
static void admit_granted(struct admit *a, struct admit_job *j)
{
    VEC(struct admit_grant) g = {0};
    for (size_t i = 0; i < j->ngranted; i++) {
        const struct queue_key *k = &j->granted[i];
        size_t w = 0;
        for (; w < a->wants.n; w++) {
            const struct admit_want *x = &a->wants.v[w];
            if (!x->running && x->round != 0 && x->round <= j->round &&
                x->try_number == k->try_number && strcmp(x->run_id, k->run_id) == 0 &&
                strcmp(x->task_id, k->task_id) == 0)
                break;
        }
        if (w == a->wants.n) {
            VEC_PUSH(&a->rel, admit_key(k->run_id, k->task_id, k->try_number));
            continue;
        }
        struct admit_grant x = {a->wants.v[w].owner, a->wants.v[w].id, k->try_number};
        VEC_PUSH(&g, x);
        pctl_note_ns(&a->lat, when_mono_ns() - a->wants.v[w].want_ns);
        admit_want_release(&a->wants.v[w]);
        a->wants.v[w] = a->wants.v[--a->wants.n];
    }
    if (g.n > 0)
        a->grant(a->ud, g.v, g.n);
    VEC_FREE(&g);
}

static void admit_after(uv_work_t *req, int status)
{
    struct admit_job *j = req->data;
    struct admit *a = j->a;
    a->busy = false;
    if (status < 0 && j->rc == 0)
        j->rc = status;
    if (j->last) {
        if (j->rc < 0) /* its rows go when its registry row is no longer active */
            log_warn("cannot free this scheduler's pool slots", "err=%s",
                     log_q(j->errmsg ? j->errmsg : err_str(j->rc)));
        admit_job_free(j);
        uv_close((uv_handle_t *)&a->timer, admit_closed);
        return;
    }
    if (j->rc < 0) {
        log_warn("pool admission failed, retrying", "err=%s retry_ms=%d",
                 log_q(j->errmsg ? j->errmsg : err_str(j->rc)), ADMIT_RETRY_MS);
        /* Send it all again. It may have been applied all the same (committed, the answer
         * lost): a want keeps `sent`, so withdrawing it still deletes its row. */
        for (size_t i = 0; i < a->wants.n; i++)
            if (a->wants.v[i].round == j->round)
                a->wants.v[i].round = 0;
        for (size_t i = 0; i < j->rel.n; i++)
            VEC_PUSH(&a->rel, j->rel.v[i]);
        j->rel.n = 0; /* moved */
        a->hold_until_ms = when_mono_ms() + ADMIT_RETRY_MS;
    } else {
        admit_granted(a, j);
        for (size_t i = 0; i < a->wants.n;) { /* adopted rows are in: nothing to wait for */
            struct admit_want *w = &a->wants.v[i];
            if (w->running && w->round == j->round) {
                admit_want_release(w);
                a->wants.v[i] = a->wants.v[--a->wants.n];
            } else {
                i++;
            }
        }
    }
    bool dispatched = j->dispatched;
    admit_job_free(j);
    if (a->stopping) {
        admit_round(a);
        return;
    }
    bool unsent = a->rel.n > 0;
    for (size_t i = 0; i < a->wants.n && !unsent; i++)
        unsent = a->wants.v[i].round == 0;
    if (unsent)
        admit_kick(a, 0);
    else if (admit_waiting(a) > 0) /* granted elsewhere, or slots freed: look again soon */
        admit_kick(a, dispatched ? ADMIT_POLL_MS : 1);
}

static void admit_round(struct admit *a)
{
    if (a->busy)
        return;
    uv_timer_stop(&a->timer);
    struct admit_job *j = xcalloc(1, sizeof *j);
    j->req.data = j;
    j->a = a;
    j->round = ++a->rounds;
    if (a->stopping) {
        j->last = true;
    } else {
        j->rel = a->rel; /* moved */
        memset(&a->rel, 0, sizeof a->rel);
        for (size_t i = 0; i < a->wants.n; i++) {
            struct admit_want *w = &a->wants.v[i];
            if (w->round != 0)
                continue;
            w->round = j->round;
            w->sent = true;
            struct admit_want c = *w;
            c.run_id = xstrdup(w->run_id);
            c.task_id = xstrdup(w->task_id);
            c.pool = xstrdup(w->pool);
            VEC_PUSH(&j->add, c);
        }
        for (size_t i = 0; i < a->pools.n; i++) {
            struct queue_pool p = {a->pools.v[i].name, a->pools.v[i].slots};
            VEC_PUSH(&j->pools, p);
        }
    }
    a->busy = true;
    int rc = uv_queue_work(a->loop, &j->req, admit_work, admit_after);
    if (rc < 0) { /* not expected: run it here rather than lose it */
        admit_work(&j->req);
        admit_after(&j->req, 0);
    }
}

struct admit *admit_new(const struct admit_opts *o)
{
    struct admit *a = xcalloc(1, sizeof *a);
    a->loop = o->loop;
    a->url = xstrdup(o->store_url);
    a->sched_id = o->sched_id;
    a->grant = o->grant;
    a->ud = o->ud;
    uv_timer_init(o->loop, &a->timer);
    a->timer.data = a;
    return a;
}

void admit_stop(struct admit *a, admit_stopped_fn done, void *ud)
{
    a->stopping = true;
    admit_log_latency(a);
    a->stopped = done;
    a->stopped_ud = ud;
    admit_round(a); /* when busy, the round in flight calls it at its end */
}

void admit_set_pool(struct admit *a, const char *name, int slots)
{
    for (size_t i = 0; i < a->pools.n; i++)
        if (strcmp(a->pools.v[i].name, name) == 0) {
            a->pools.v[i].slots = slots;
            if (admit_waiting(a) > 0)
                admit_kick(a, 0); /* more slots may be free */
            return;
        }
    struct admit_pool p = {xstrdup(name), slots};
    VEC_PUSH(&a->pools, p);
}

bool admit_limits(const struct admit *a, const char *pool)
{
    for (size_t i = 0; i < a->pools.n; i++)
        if (strcmp(a->pools.v[i].name, pool) == 0)
            return true;
    return false;
}

static void admit_push(struct admit *a, void *owner, uint32_t id, const char *run_id,
                       const char *task_id, int try_number, const char *pool, int priority,
                       bool running)
{
    struct admit_want w = {
        .owner = owner,
        .id = id,
        .run_id = xstrdup(run_id),
        .task_id = xstrdup(task_id),
        .pool = xstrdup(pool),
        .try_number = try_number,
        .priority = priority,
        .ready_at_ms = when_now_ms(),
        .want_ns = when_mono_ns(),
        .running = running,
    };
    VEC_PUSH(&a->wants, w);
    admit_kick(a, 0);
}

void admit_want(struct admit *a, void *owner, uint32_t id, const char *run_id, const char *task_id,
                int try_number, const char *pool, int priority)
{
    admit_push(a, owner, id, run_id, task_id, try_number, pool, priority, false);
}

void admit_adopt(struct admit *a, void *owner, const char *run_id, const char *task_id,
                 int try_number, const char *pool, int priority)
{
    admit_push(a, owner, 0, run_id, task_id, try_number, pool, priority, true);
}

void admit_withdraw(struct admit *a, void *owner)
{
    bool rel = false;
    for (size_t i = 0; i < a->wants.n;) {
        struct admit_want *w = &a->wants.v[i];
        if (w->owner != owner || w->running) { /* an adopted try gives its slot at its end */
            i++;
            continue;
        }
        if (w->sent) { /* its row exists, or will once its round commits, or may */
            VEC_PUSH(&a->rel, admit_key(w->run_id, w->task_id, w->try_number));
            rel = true;
        }
        admit_want_release(w);
        a->wants.v[i] = a->wants.v[--a->wants.n];
    }
    if (rel)
        admit_kick(a, 0);
}

void admit_release(struct admit *a, const char *run_id, const char *task_id, int try_number)
{
    for (size_t i = 0; i < a->wants.n; i++) {
        struct admit_want *w = &a->wants.v[i];
        if (w->running && w->round == 0 && w->try_number == try_number &&
            strcmp(w->run_id, run_id) == 0 && strcmp(w->task_id, task_id) == 0) {
            bool sent = w->sent; /* by a failed round: its row may exist */
            admit_want_release(w);
            a->wants.v[i] = a->wants.v[--a->wants.n];
            if (!sent) /* never sent: no row to delete */
                return;
            break;
        }
    }
    VEC_PUSH(&a->rel, admit_key(run_id, task_id, try_number));
    admit_kick(a, 0);
}

size_t admit_waiting(const struct admit *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->wants.n; i++)
        n += !a->wants.v[i].running;
    return n;
}
