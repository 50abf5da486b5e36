/*
 * engine.c - the shared part of the runs on one loop (see engine.h): the
 * writer and its callbacks, the pump across runs, the delayed 'running'
 * records and the reports of ended runs.
 */
#include "sched/engine.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/log.h"
#include "base/pctl.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "exec/httptask.h"
#include "exec/notify.h"
#include "sched/admit.h"
#include "sched/logpath.h"
#include "sched/logprep.h"
#include "sched/metrics.h"
#include "sched/remote.h"
#include "sched/run_int.h"
#include "store/store.h"

/* A try's 'running' records are submitted this long after its start, or with its final
 * records if it ends sooner (then the writer coalesces both into one row write). Nothing
 * waits for them, and a short task costs one commit less. */
#define ENGINE_RUNNING_DELAY_MS 50
/* The records due go at most this often (so up to this much late). */
#define ENGINE_RUNNING_TICK_MS 10
/* Pipelined runs (see run_opts.gate_on_durable) let the store writer gather this long before
 * each commit: a chain of short tasks then costs a commit per few steps, not per step. */
#define ENGINE_COMMIT_LINGER_MS 5
/* Where the scratch folder for tries' outputs goes when it is a memory file system: a try's
 * output is written, read once and removed, so it needs no disk (logpath.h). */
#define ENGINE_SCRATCH_ROOT "/dev/shm"
/* The local slots of a pool limited across schedulers: its tries reach the ready queue only
 * once granted (admit.h), so here nothing but the parallelism holds them. */
#define ENGINE_POOL_ADMITTED (1 << 30)

static void engine_on_grant(void *ud, const struct admit_grant *v, size_t n);

static void engine_on_durable(void *ud, uint64_t seq)
{
    struct engine *e = ud;
    if (seq > e->durable)
        e->durable = seq;
    engine_cork(e);
    for (struct run *r = e->runs; r;) {
        struct run *next = run__next_live(r);
        run__durable(r);
        r = next;
    }
    engine_pump(e);
    engine_uncork(e);
    if (e->remote)
        remote_durable(e->remote);
}

static void engine_on_error(void *ud, int code, const char *msg)
{
    struct engine *e = ud;
    (void)code;
    log_error("store write failed", "err=%s", log_q(msg));
    e->failed = true;
    engine_cork(e);
    for (struct run *r = e->runs; r;) {
        struct run *next = run__next_live(r);
        run__store_failed(r, msg);
        r = next;
    }
    engine_pump(e);
    engine_uncork(e);
    if (e->on_error)
        e->on_error(e->ud, msg);
}

/* Submits the 'running' records that are due, each ENGINE_RUNNING_DELAY_MS after its try
 * started (not all those waiting at once: a try started just before would lose its delay,
 * and its end, coming a few milliseconds later, a row write), and waits for the next. */
static void engine_on_rec_timer(uv_timer_t *h)
{
    struct engine *e = h->data;
    int64_t now = when_mono_ms();
    size_t k = 0;
    while (k < e->pend.n && e->pend.v[k].due_ms <= now)
        k++;
    engine_cork(e);
    for (size_t i = 0; i < k; i++)
        run__flush_running_rec(e->pend.v[i].r, e->pend.v[i].inst);
    memmove(e->pend.v, e->pend.v + k, (e->pend.n - k) * sizeof(*e->pend.v));
    e->pend.n -= k;
    engine_uncork(e);
    if (e->pend.n > 0 && !uv_is_active((uv_handle_t *)&e->rec_timer)) {
        /* Not for each try: those due within the next ENGINE_RUNNING_TICK_MS go together. */
        int64_t wait = e->pend.v[0].due_ms - when_mono_ms();
        uv_timer_start(&e->rec_timer, engine_on_rec_timer,
                       (uint64_t)(wait > ENGINE_RUNNING_TICK_MS ? wait : ENGINE_RUNNING_TICK_MS),
                       0);
    }
}

static void engine_on_ended_timer(uv_timer_t *h)
{
    struct engine *e = h->data;
    /* A callback may end another run (a daemon stopping): take the list as it is now. */
    while (e->ended.n > 0) {
        struct run *r = e->ended.v[0];
        memmove(e->ended.v, e->ended.v + 1, (e->ended.n - 1) * sizeof(e->ended.v[0]));
        e->ended.n--;
        run__report_ended(r);
    }
}

/* Makes the scratch folder and this engine's mark in it: a file that keeps the folder from
 * being removed (rmdir) by another engine of the same home when it stops, while this one's
 * tries may write there. 0, or a negative errno. */
static int engine_make_scratch(struct engine *e, char **dir, char **mark)
{
    static _Atomic unsigned engine_seq; /* several engines in one process */
    unsigned seq = ++engine_seq;
    for (int attempt = 0;; attempt++) {
        int rc = logpath_scratch_dir(ENGINE_SCRATCH_ROOT, e->home, dir);
        if (rc < 0)
            return rc;
        *mark = xasprintf("%s/.engine-%ld-%u", *dir, (long)getpid(), seq);
        int fd = open(*mark, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        rc = -errno;
        free(*mark);
        free(*dir);
        *mark = *dir = NULL;
        if (rc != -ENOENT || attempt > 0) /* ENOENT: removed by another engine meanwhile */
            return rc;
    }
}

static void engine_drop_scratch(struct engine *e)
{
    if (e->scratch_mark)
        (void)unlink(e->scratch_mark);
    free(e->scratch_mark);
    free(e->scratch); /* tries in flight keep their own copies of their paths */
    e->scratch_mark = e->scratch = NULL;
}

void engine_check_scratch(struct engine *e)
{
    char *dir = NULL, *mark = NULL;
    int rc = engine_make_scratch(e, &dir, &mark);
    bool refused = rc < 0 && rc != -ENOTSUP;
    if (refused && !e->scratch_refused) /* once, not at every run */
        log_warn("scratch folder refused, outputs go beside the logs", "root=%s reason=%s",
                 ENGINE_SCRATCH_ROOT, log_q(err_str(rc)));
    e->scratch_refused = refused;
    engine_drop_scratch(e);
    e->scratch = dir;
    e->scratch_mark = mark;
}

const char *engine_scratch(struct engine *e)
{
    struct stat st;
    if (e->scratch && lstat(e->scratch_mark, &st) < 0)
        engine_check_scratch(e); /* removed (a /dev/shm cleaner, logind's RemoveIPC) */
    return e->scratch;
}

/* The store may be shared by several schedulers (PostgreSQL, see store.c's store_open). */
static bool engine_url_shared(const char *url)
{
    return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

int engine_start(const struct engine_opts *o, struct engine **out, struct err *err)
{
    struct engine *e = xcalloc(1, sizeof(*e));
    e->loop = o->loop;
    e->store_url = xstrdup(o->store_url);
    e->home = xstrdup(o->home);
    e->gate_on_durable = o->gate_on_durable;
    e->http_max_per_host = o->http_max_per_host;
    e->notifiers = notifiers_dup(o->notifiers, o->nnotifiers);
    e->nnotifiers = o->nnotifiers;
    e->public_url = o->public_url ? xstrdup(o->public_url) : NULL;
    e->wait_notify = o->wait_notify;
    e->on_error = o->on_error;
    e->ud = o->ud;
    sched_init(&e->sched, o->parallelism > 0 ? o->parallelism : 1, run__sched_start);
    char *logs = xasprintf("%s/logs", o->home);
    if (logprep_mkdirs(logs) == 0)
        e->prep_on = !logprep_is_memory_fs(logs);
    free(logs);
    int rc = store_writer_start(o->loop, o->store_url, engine_on_durable, engine_on_error, e,
                                o->on_commit, o->commit_ud, &e->w, err);
    if (rc < 0) {
        sched_release(&e->sched);
        free(e->store_url);
        free(e->home);
        free(e->scratch);
        free(e);
        return rc;
    }
    e->sched_id = o->fence_id;
    if (o->fence_id > 0)
        store_writer_set_fence(e->w, o->fence_id);
    if (!o->gate_on_durable)
        store_writer_set_linger(e->w, ENGINE_COMMIT_LINGER_MS); /* nothing waits on each */
    if (o->fence_id > 0 && engine_url_shared(o->store_url)) {
        struct admit_opts ao = {
            .loop = o->loop,
            .store_url = o->store_url,
            .sched_id = o->fence_id,
            .grant = engine_on_grant,
            .ud = e,
        };
        e->admit = admit_new(&ao);
    }
    if (o->remote && o->fence_id > 0 && engine_url_shared(o->store_url)) {
        struct remote_opts ro = {
            .loop = o->loop,
            .store_url = o->store_url,
            .sched_id = o->fence_id,
            .sweep_ms = remote_sweep_interval(o->worker_heartbeat_ms, o->worker_dead_after_ms),
            .dead_after_ms = o->worker_dead_after_ms,
        };
        e->remote = remote_new(e, &ro);
    }
    uv_timer_init(o->loop, &e->rec_timer);
    e->rec_timer.data = e;
    uv_timer_init(o->loop, &e->ended_timer);
    e->ended_timer.data = e;
    uv_timer_init(o->loop, &e->tmo_timer);
    e->tmo_timer.data = e;
    hmap_init(&e->gate_by_name);
    *out = e;
    return 0;
}

static void engine_free(struct engine *e)
{
    sched_release(&e->sched);
    VEC_FREE(&e->dirty);
    VEC_FREE(&e->touched);
    VEC_FREE(&e->pend);
    VEC_FREE(&e->ended);
    pctl_release(&e->latency);
    engine__conc_release(e);
    free(e->store_url);
    free(e->home);
    notifiers_free(e->notifiers, e->nnotifiers);
    free(e->public_url);
    char *dir = e->scratch ? xstrdup(e->scratch) : NULL;
    engine_drop_scratch(e);
    if (dir) /* fails, as it should, while another engine's mark or a try's output is there */
        (void)rmdir(dir);
    free(dir);
    free(e);
}

static void engine_handle_closed(uv_handle_t *h)
{
    struct engine *e = h->data;
    if (--e->open_handles > 0)
        return;
    engine_stopped_fn done = e->stopped;
    void *ud = e->stopped_ud;
    engine_free(e);
    if (done)
        done(ud);
}

static void engine_writer_stopped(void *ud)
{
    struct engine *e = ud;
    e->w = NULL;
    notify_free(e->ns); /* before the client: its transfers are on the client's curlloop */
    e->ns = NULL;
    httptask_client_free(e->http); /* its handles close on the loop */
    e->http = NULL;
    e->open_handles = 3;
    uv_close((uv_handle_t *)&e->rec_timer, engine_handle_closed);
    uv_close((uv_handle_t *)&e->ended_timer, engine_handle_closed);
    uv_close((uv_handle_t *)&e->tmo_timer, engine_handle_closed);
}

static void engine_admit_stopped(void *ud)
{
    struct engine *e = ud;
    e->admit = NULL;
    store_writer_stop(e->w, engine_writer_stopped);
}

static void engine_remote_stopped(void *ud)
{
    struct engine *e = ud;
    e->remote = NULL;
    if (e->admit) { /* frees this scheduler's slots in the database first */
        admit_stop(e->admit, engine_admit_stopped, e);
        return;
    }
    store_writer_stop(e->w, engine_writer_stopped);
}

static void engine_stop_now(struct engine *e);

void engine_stop(struct engine *e, engine_stopped_fn done, void *ud)
{
    e->stopping = true;
    e->stopped = done;
    e->stopped_ud = ud;
    if (e->wait_notify && notify_pending(e->ns) > 0) {
        e->stop_pending = true; /* engine__notify_settled goes on */
        return;
    }
    engine_stop_now(e);
}

int engine__http(struct engine *e, char **msg)
{
    if (!e->http) {
        struct httptask_client_opts o = {
            .host_limit = e->http_max_per_host > 0 ? (unsigned)e->http_max_per_host : 0};
        int rc = httptask_client_new(e->loop, &o, &e->http);
        if (rc < 0) {
            e->http = NULL;
            *msg = xasprintf("cannot start the http client: %s", err_str(rc));
            return rc;
        }
    }
    if (!e->ns)
        e->ns = notify_new(e->loop, httptask_client_curlloop(e->http), 0);
    return 0;
}

void engine__notify_settled(struct engine *e)
{
    /* The delivery settling is still counted until its report returns. */
    if (e->stop_pending && notify_pending(e->ns) <= 1) {
        e->stop_pending = false;
        engine_stop_now(e);
    }
}

static void engine_stop_now(struct engine *e)
{
    uint64_t commits = 0, changes = 0;
    engine_stats(e, &commits, &changes);
    log_debug("engine stopping", "commits=%llu changes=%llu", (unsigned long long)commits,
              (unsigned long long)changes);
    if (e->latency.total > 0)
        log_info("scheduling latency", "tries=%llu p50_us=%lld p99_us=%lld max_us=%lld",
                 (unsigned long long)e->latency.total, (long long)engine_latency_pct(e, 50),
                 (long long)engine_latency_pct(e, 99), (long long)engine_latency_pct(e, 100));
    uv_timer_stop(&e->rec_timer);
    uv_timer_stop(&e->ended_timer);
    uv_timer_stop(&e->tmo_timer);
    if (e->remote) { /* its job in flight ends first (results of halted runs are left) */
        remote_stop(e->remote, engine_remote_stopped, e);
        return;
    }
    if (e->admit) { /* frees this scheduler's slots in the database first */
        admit_stop(e->admit, engine_admit_stopped, e);
        return;
    }
    store_writer_stop(e->w, engine_writer_stopped);
}

void engine_stats(const struct engine *e, uint64_t *commits, uint64_t *changes)
{
    int64_t ns = 0;
    *commits = *changes = 0;
    if (e->w)
        store_writer_stats(e->w, commits, changes, &ns);
}

/* Pool idx is limited across schedulers from now on (`pools set` while its tries run or wait
 * here): its running tries take their slots in the database at once, and what waits for a
 * local slot asks the database instead, still ready, priority kept. */
static void engine_pool_limited(struct engine *e, uint32_t idx)
{
    for (struct run *r = e->runs; r; r = r->live_next)
        for (size_t k = 0; k < r->running.n; k++) {
            struct run_inst *in = run__inst_at(r, r->running.v[k]);
            if (r->tasks[in->task].pool != idx || !in->slot_held || in->admit_try)
                continue;
            in->admit_try = in->try_number;
            admit_adopt(e->admit, r, r->run_id, run__inst_id(r, in), in->try_number,
                        e->sched.pools.v[idx].name, r->dag->tasks[in->task].priority);
        }
    struct sched_pool *p = &e->sched.pools.v[idx];
    VEC(struct sched_item) items = {0};
    for (size_t i = 0; i < p->heap.n; i++)
        VEC_PUSH(&items, p->heap.v[i]);
    p->heap.n = 0;
    for (size_t i = 0; i < items.n; i++)
        engine__push(e, items.v[i].owner, items.v[i].id);
    VEC_FREE(&items);
}

void engine_set_pool(struct engine *e, const char *name, int slots)
{
    bool newly = false;
    if (e->admit) {
        /* The database counts its slots: here it only waits for the parallelism. */
        newly = !admit_limits(e->admit, name);
        admit_set_pool(e->admit, name, slots);
        slots = ENGINE_POOL_ADMITTED;
    }
    sched_pool_set(&e->sched, name, slots);
    if (newly)
        engine_pool_limited(e, sched_pool(&e->sched, name));
    engine_cork(e);
    engine_pump(e);
    engine_uncork(e);
}

void engine_set_parallelism(struct engine *e, int parallelism)
{
    e->sched.parallelism = parallelism >= 0 ? parallelism : 0; /* 0: nothing new starts */
    engine_cork(e);
    engine_pump(e);
    engine_uncork(e);
}

uint64_t engine_put_run(struct engine *e, const struct run_rec *rec)
{
    return e->w ? store_writer_put_run(e->w, rec) : 0;
}

int64_t engine_sched_id(const struct engine *e)
{
    return e->sched_id;
}

bool engine_remote(const struct engine *e)
{
    return e->remote != NULL;
}

void engine_remote_take(struct engine *e)
{
    if (e && e->remote)
        remote_take(e->remote);
}

bool engine_stopping(const struct engine *e)
{
    return e->stopping;
}

void engine_cork(struct engine *e)
{
    if (e->w && e->cork++ == 0)
        store_writer_cork(e->w);
}

void engine_uncork(struct engine *e)
{
    if (e->w && --e->cork == 0)
        store_writer_uncork(e->w);
}

void engine_pump(struct engine *e)
{
    if (e->pumping)
        return; /* the outer pump sees what this event marked */
    e->pumping = true;
    for (;;) {
        while (e->dirty.n > 0) {
            struct run *r = e->dirty.v[--e->dirty.n];
            run__pump_work(r);
        }
        sched_dispatch(&e->sched);
        if (e->dirty.n == 0)
            break; /* a try that failed at once may have released more work */
    }
    /* run__pump_after may end a run, which marks nothing dirty again */
    for (size_t i = 0; i < e->touched.n; i++)
        run__pump_after(e->touched.v[i]);
    e->touched.n = 0;
    e->pumping = false;
    size_t waiting = e->admit ? admit_waiting(e->admit) : 0; /* for a pool's slot */
    metrics_set_queue_depth((int64_t)(sched_queued(&e->sched) + waiting));
}

/* admit's grant callback: each try may take its place in the ready queue, unless its
 * instance no longer waits for it (its run was cancelled, drains or halts meanwhile: then
 * the slot goes back). */
static void engine_on_grant(void *ud, const struct admit_grant *v, size_t n)
{
    struct engine *e = ud;
    engine_cork(e);
    for (size_t i = 0; i < n; i++) {
        struct run *r = v[i].owner;
        struct run_inst *in = run__inst_at(r, v[i].id);
        if (in->state != TI_SCHEDULED || in->try_number + 1 != v[i].try_number || in->admit_try ||
            r->cancelled || r->fatal || r->draining || r->halted) {
            admit_release(e->admit, r->run_id, run__inst_id(r, in), v[i].try_number);
            continue;
        }
        in->admit_try = v[i].try_number;
        sched_push(&e->sched, r, v[i].id, r->dag->tasks[in->task].priority,
                   r->tasks[in->task].pool);
        run__mark(r);
    }
    engine_pump(e);
    engine_uncork(e);
}

/* ---- for run.c ---- */

void engine__push(struct engine *e, struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    uint32_t pool = r->tasks[in->task].pool;
    if (r->tasks[in->task].gated && !in->gate_held && !engine__gate_take(e, r, ii))
        return; /* a gate of max_active_tasks / max_active is full: it waits for it */
    const char *name = e->sched.pools.v[pool].name;
    if (e->admit && r->tasks[in->task].gated && !admit_limits(e->admit, name))
        name = engine__gate_pool(e, r, in->task); /* the limit holds across schedulers */
    if (e->admit && admit_limits(e->admit, name)) {
        admit_want(e->admit, r, ii, r->run_id, run__inst_id(r, in), in->try_number + 1, name,
                   t->priority);
        return;
    }
    sched_push(&e->sched, r, ii, t->priority, pool);
}

/* Gives back the database slots of the run's instances granted but not claimed (dropped
 * from the ready queue with them), and withdraws those still waiting. */
static void engine_admit_drop(struct engine *e, struct run *r)
{
    if (!e->admit)
        return;
    admit_withdraw(e->admit, r);
    for (uint32_t ii = 0; ii < r->insts.n; ii++) {
        struct run_inst *in = run__inst_at(r, ii);
        if (in->admit_try && !in->slot_held) {
            admit_release(e->admit, r->run_id, run__inst_id(r, in), in->admit_try);
            in->admit_try = 0;
        }
    }
}

void engine__drop(struct engine *e, struct run *r)
{
    sched_drop(&e->sched, r);
    engine_admit_drop(e, r);
    engine__gate_drop(e, r);
}

void engine__slot_done(struct engine *e, struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    in->slot_held = false;
    sched_done(&e->sched, r->tasks[in->task].pool);
    if (in->admit_try) {
        admit_release(e->admit, r->run_id, run__inst_id(r, in), in->admit_try);
        in->admit_try = 0;
    }
    if (in->gate_held)
        engine__gate_release(e, r, ii);
}

void engine__pend_running(struct engine *e, struct run *r, uint32_t inst)
{
    struct engine_pend p = {
        .r = r, .inst = inst, .due_ms = when_mono_ms() + ENGINE_RUNNING_DELAY_MS};
    VEC_PUSH(&e->pend, p);
    if (!uv_is_active((uv_handle_t *)&e->rec_timer))
        uv_timer_start(&e->rec_timer, engine_on_rec_timer, ENGINE_RUNNING_DELAY_MS, 0);
}

void engine__forget_run(struct engine *e, struct run *r)
{
    size_t k = 0;
    for (size_t i = 0; i < e->pend.n; i++)
        if (e->pend.v[i].r != r)
            e->pend.v[k++] = e->pend.v[i];
    e->pend.n = k;
    for (size_t i = 0; i < e->dirty.n; i++)
        if (e->dirty.v[i] == r)
            e->dirty.v[i] = e->dirty.v[--e->dirty.n], i--;
    for (size_t i = 0; i < e->touched.n; i++)
        if (e->touched.v[i] == r)
            e->touched.v[i] = e->touched.v[--e->touched.n], i--;
    for (size_t i = 0; i < e->ended.n; i++)
        if (e->ended.v[i] == r) {
            memmove(e->ended.v + i, e->ended.v + i + 1, (e->ended.n - i - 1) * sizeof(r));
            e->ended.n--;
            i--;
        }
    engine__drop(e, r);
    engine__timeout_forget(e, r);
}

void engine__run_ended(struct engine *e, struct run *r)
{
    VEC_PUSH(&e->ended, r);
    if (!e->stopping)
        uv_timer_start(&e->ended_timer, engine_on_ended_timer, 0, 0);
}

void engine__fenced(struct engine *e, const char *msg)
{
    if (!e->failed)
        engine_on_error(e, -ESTALE, msg);
}

void engine__note_latency(struct engine *e, int64_t latency_ns)
{
    metrics_note_latency_ns(latency_ns);
    pctl_note_ns(&e->latency, latency_ns);
}

int64_t engine_latency_pct(const struct engine *e, double p)
{
    return pctl_get_us(&e->latency, p);
}
