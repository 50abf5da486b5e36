/*
 * daemon.c - the scheduler daemon (see daemon.h).
 *
 * Key ideas:
 *  - State on the loop: one struct ddag per DAG id (its current version, a
 *    reference; paused; the cursor of plan.h; how many runs are active) in a
 *    vector indexed through an hmap, and one struct drun per run the daemon
 *    has taken on (starting or running), in a list.
 *  - Store jobs: everything that may block goes to the thread pool as a
 *    struct djob, one at a time, on the daemon's own connection (d->ctl),
 *    FIFO. A job fills its results on the worker thread; its done step runs
 *    on the loop and acts on them. Jobs: sync (requests, queued and unfinished
 *    runs, pools, pauses), load (a run's records before it starts or
 *    resumes), claim (a scheduled run), cursor (a DAG's newest scheduled
 *    run), dag (record a DAG file's state).
 *  - A run the store says is unfinished but that this daemon has just
 *    ended must not be started again from a read made before its end was
 *    durable: every job carries the epoch it was queued at, every ended run
 *    the epoch it ended at, and a sync ignores runs that ended at or after
 *    its own epoch.
 *  - The planner: for each scheduled DAG that is not paused and has room
 *    under max_active_runs, claim its cursor's run once due; one timer is
 *    set to the earliest due time across DAGs (O(DAGs) per re-plan, which
 *    happens on events, never on a tick).
 *
 * Loop thread, except the job work functions (thread pool), which touch only
 * their job and d->ctl.
 */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/vec.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "daemon/retain.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "dag/plan.h"
#include "exec/orphans.h"
#include "ops/dagdir.h"
#include "ops/ops.h"
#include "ops/schedlock.h"
#include "sched/engine.h"
#include "sched/run.h"
#include "store/deliveries.h"
#include "store/events.h"
#include "store/listen.h"
#include "store/queue.h"
#include "store/store.h"
#include "store/wq.h"
#include "worker/worker.h"

#define DAEMON_CURSOR_UNKNOWN (-2)
#define DAEMON_LOCK_WAIT_MS   2000 /* how long a start waits for the home's lock */
#define DAEMON_CLAIM_MAX      16   /* runs claimed per sync (another sync follows a full one) */

struct ddag {
    char *id;        /* owned; the hmap's key */
    struct dag *dag; /* a reference on the current version, or NULL (file gone or broken) */
    bool paused;
    int active;         /* runs taken on (starting or running) */
    int64_t cursor;     /* next logical date to claim; PLAN_NEVER; DAEMON_CURSOR_UNKNOWN */
    bool cursor_busy;   /* a cursor job is in flight */
    bool claim_busy;    /* a claim job is in flight */
    char sched_key[96]; /* schedule + start + end + catchup the cursor was computed for */
};

struct drun {
    struct daemon *d;
    struct drun *prev, *next;
    char *run_id;          /* owned */
    struct ddag *dd;       /* may be NULL (a resumed run of a DAG no longer in the folder) */
    struct dag *dag;       /* a reference on the version it runs */
    struct run *r;         /* NULL while starting, or while its clears are applied */
    bool cancel_requested; /* a cancel arrived while starting */
    VEC(char *) clears;    /* owned: clear requests (their kinds) to apply once it drained */
    VEC(char *) applied;   /* owned: clear requests applied at applied_epoch (see below) */
    uint64_t applied_epoch;
};

struct recent_end {
    char *run_id; /* owned */
    uint64_t epoch;
};

enum djob_kind { DJOB_SYNC, DJOB_LOAD, DJOB_CLAIM, DJOB_CURSOR, DJOB_DAG, DJOB_CLEAR, DJOB_ADMIT };

/* What a DAG file holds now, to record: its DAG (drec.dag_id NULL when none) and errors. */
struct dfile {
    char *path; /* owned */
    struct dag_rec drec;
    struct dag *dag; /* a reference (immutable): its source is recorded as the version */
    struct import_error_rec *errs; /* owned */
    size_t nerrs;
};

typedef VEC(struct dfile) dfile_vec;

static void dfile_vec_free(dfile_vec *v)
{
    for (size_t i = 0; i < v->n; i++) {
        struct dfile *f = &v->v[i];
        free(f->path);
        dag_rec_release(&f->drec);
        dag_free(f->dag);
        for (size_t k = 0; k < f->nerrs; k++)
            free(f->errs[k].message);
        free(f->errs);
    }
    VEC_FREE(v);
}

struct djob {
    uv_work_t req;
    struct daemon *d;
    enum djob_kind kind;
    uint64_t epoch;
    int rc;
    char *errmsg; /* owned: what failed, for the log */
    struct djob *next;
    /* sync */
    struct run_request *reqs;
    size_t nreqs;
    struct run_rec *runs;
    size_t nruns;
    struct pool_rec *pools;
    size_t npools;
    struct dag_rec *dags;
    size_t ndags;
    /* load: in: rec; out: tis, dag (a version from the store when resuming) */
    struct drun *dr;
    struct run_rec rec;
    char *cur_hash; /* the loaded version's hash, or NULL */
    bool resume;
    struct ti_rec *tis;
    size_t ntis;
    char *lost_sched;             /* resuming: the scheduler it was taken from when declared dead */
    bool deadline_fired;          /* notify: resuming a run whose deadline is recorded as fired */
    struct delivery_rec *pending; /* notify: resuming, its deliveries a dead scheduler left */
    size_t npending;
    struct wq_kill *inflight; /* resuming on PostgreSQL: its tries a worker has (wq_adopt) */
    size_t ninflight;
    struct dag *stored_dag;
    bool want_past;       /* its DAG (as loaded now) has depends_on_past: read past */
    struct run_past past; /* the previous run, for depends_on_past */
    /* vars: the keys its DAG (as loaded now) reads (owned), and the variables read for the
     * run (handed to run_begin) */
    char **var_keys;
    size_t nvar_keys;
    struct run_vars *vars;
    /* sync: the previous runs that runs here wait on (depends_on_past), read again */
    char **past_ids;
    struct run_past *pasts;
    size_t npasts;
    /* load of a queued run on a shared store: started only under max_active_runs in the
     * database (queue_start_runs) by scheduler sched_id; admitted false when there was no room */
    int64_t sched_id;
    int max_active;
    bool admitted;
    bool preadmitted; /* started by a DJOB_ADMIT already */
    /* admit: the queued runs of one sync, started in one transaction (queue_start_runs); each
     * load job (owned) is pushed when its run was started, else its run is let go */
    struct djob **loads;
    size_t nloads;
    size_t claimed;   /* sync: runs claimed by this one */
    char **elsewhere; /* sync: unfinished runs of requests that another scheduler owns */
    size_t nelsewhere;
    /* claim / cursor / dag */
    char *dag_id;
    int64_t at_ms;
    bool exists;
    char run_id[160];
    dfile_vec files; /* dag: taken from daemon.files when the job starts */
    /* clear: the run (run_id; dr while the run is held, else NULL) and its requests; a held
     * run is then loaded again (the load fields above) */
    char **clears; /* owned kinds */
    size_t nclears;
    size_t nrows;
    bool cancel;    /* in: cancel the held run in the store instead (a cancel won) */
    bool cancelled; /* out: the run was cancelled meanwhile */
    bool ended;     /* out: a mark of the run ended it */
};

struct daemon {
    const struct daemon_opts *o;
    uv_loop_t loop;
    struct engine *e;
    struct store *ctl; /* the jobs' connection */
    struct dagdir *dir;
    VEC(struct ddag *) dags;
    struct hmap by_id;
    struct drun *runs;
    size_t nruns;
    VEC(struct recent_end) recent;
    uint64_t epoch;
    struct djob *jobs_head, *jobs_tail; /* queued, not started */
    bool job_busy;
    bool sync_queued;  /* a sync job waits in the queue (another is not added) */
    dfile_vec files;   /* DAG files to record (the next dag job takes them) */
    bool files_queued; /* a dag job waits in the queue */
    uv_timer_t plan_timer, resync_timer, grace_timer, drain_timer;
    uv_fs_event_t bell;
    bool bell_on;
    struct listener *wake; /* PostgreSQL: LISTEN baram_wake, the doorbell of any host */
    uv_signal_t sigterm, sigint, sighup;
    bool stopping, halting;
    struct worker *worker; /* in process (daemon_opts.worker) until it has stopped */
    bool ready_said;
    bool dir_closing; /* dagdir_close called */
    int lock_fd;
    int open_handles;
    /* The registry (several schedulers on one database): this scheduler's row, its beat on
     * its own connection (hb, used by one heartbeat job at a time on the pool). */
    int64_t node_id;
    char node_name[300];
    bool shared;           /* the store may have other schedulers */
    bool fenced;           /* declared dead, or a write refused: it steps down */
    struct store *hb;      /* the heartbeat's connection */
    bool hb_busy;          /* a heartbeat job is in flight */
    int hb_failures;       /* heartbeats failed in a row */
    uint64_t hb_ok_ms;     /* loop time of the last beat that succeeded (registering counts) */
    uint64_t hb_steady_ms; /* since when beats succeed in a row; 0 after a failure */
    int64_t dead_after_ms;
    uv_timer_t hb_timer;
    struct retain *retain; /* retention (NULL: none configured) */
};

static void daemon_sync(struct daemon *d);
static void daemon_plan(struct daemon *d);
static void daemon_job_next(struct daemon *d);
static void daemon_maybe_finish(struct daemon *d);

/* ---- DAGs ---- */

static struct ddag *ddag_get(struct daemon *d, const char *id, bool create)
{
    uint32_t k;
    if (hmap_get(&d->by_id, id, strlen(id), &k))
        return d->dags.v[k];
    if (!create)
        return NULL;
    struct ddag *dd = xcalloc(1, sizeof(*dd));
    dd->id = xstrdup(id);
    dd->cursor = DAEMON_CURSOR_UNKNOWN;
    VEC_PUSH(&d->dags, dd);
    hmap_put(&d->by_id, dd->id, strlen(dd->id), (uint32_t)(d->dags.n - 1));
    return dd;
}

/* What the cursor depends on: when it changes, the cursor is found again. */
static void ddag_sched_key(const struct dag *dag, char *out, size_t n)
{
    snprintf(out, n, "%.40s|%lld|%lld|%d", dag->schedule ? dag->schedule : "",
             (long long)dag->start_at_ms, (long long)dag->end_at_ms, dag->catchup);
}

/* ---- store jobs ---- */

static struct djob *djob_new(struct daemon *d, enum djob_kind kind)
{
    struct djob *j = xcalloc(1, sizeof(*j));
    j->d = d;
    j->kind = kind;
    j->epoch = d->epoch;
    j->req.data = j;
    return j;
}

static void djob_free(struct djob *j)
{
    store_free_requests(j->reqs, j->nreqs);
    store_free_runs(j->runs, j->nruns);
    store_free_pools(j->pools, j->npools);
    store_free_dags(j->dags, j->ndags);
    run_rec_release(&j->rec);
    store_free_tis(j->tis, j->ntis);
    free(j->lost_sched);
    run_past_release(&j->past);
    for (size_t i = 0; i < j->npasts; i++) {
        if (j->pasts)
            run_past_release(&j->pasts[i]);
        free(j->past_ids[i]);
    }
    free(j->pasts);
    free(j->past_ids);
    deliveries_free(j->pending, j->npending);
    wq_free_kills(j->inflight, j->ninflight);
    dag_free(j->stored_dag);
    for (size_t i = 0; i < j->nvar_keys; i++)
        free(j->var_keys[i]);
    free(j->var_keys);
    run_vars_free(j->vars);
    free(j->dag_id);
    free(j->cur_hash);
    dfile_vec_free(&j->files);
    for (size_t i = 0; i < j->nclears; i++)
        free(j->clears[i]);
    free(j->clears);
    free(j->errmsg);
    for (size_t i = 0; i < j->nelsewhere; i++)
        free(j->elsewhere[i]);
    free(j->elsewhere);
    for (size_t i = 0; i < j->nloads; i++)
        if (j->loads[i])
            djob_free(j->loads[i]);
    free(j->loads);
    free(j);
}

static void djob_fail(struct djob *j, const char *what, const struct err *se)
{
    j->rc = j->rc < 0 ? j->rc : ERR_DB;
    j->errmsg = xasprintf("%s: %s", what, err_msg(se));
}

/* Kills the process group a dead scheduler's try left (tries run in their own session, so
 * they outlive it). Only a group whose leader is still that session's leader and carries
 * the run's tags (orphans.h): the stored pid may be another process's by now. */
static void djob_kill_orphan(struct store *s, const char *const *tags, const char *run_id,
                             const char *task_id)
{
    struct try_rec *tries = NULL;
    size_t n = 0;
    if (store_list_tries(s, run_id, task_id, &tries, &n, NULL) < 0)
        return;
    for (size_t i = 0; i < n; i++) {
        int pid = tries[i].pid;
        if (tries[i].state == TI_RUNNING && orphans_kill_pid(pid, tags, RUN_ENV_NTAGS))
            log_info("killing a try left running", "run=%s task=%s pid=%d", log_q(run_id),
                     log_q(task_id), pid);
    }
    store_free_tries(tries, n);
}

static void djob_killed_tagged(void *ud, int pid)
{
    log_info("killing a try left running", "run=%s pid=%d", log_q(ud), pid);
}

/* Kills every try of the run a dead scheduler left behind whose start it never recorded:
 * they carry the run's identity in their environment (orphans.h). */
static void djob_kill_tagged(const char *const *tags, const char *run_id)
{
    (void)orphans_kill_tagged(tags, RUN_ENV_NTAGS, djob_killed_tagged, (void *)run_id);
}

static bool djob_same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* On a store several schedulers share, a queued run starts only when its DAG's running runs,
 * counted in the database under one lock, are below max_active_runs: j->admitted. */
static void djob_admit(struct djob *j, struct store *s, struct err *se)
{
    j->admitted = true;
    if (j->preadmitted || j->rec.state != RUN_QUEUED || j->sched_id <= 0 || !queue_supported(s))
        return;
    struct queue_run q = {j->rec.run_id, j->rec.dag_id, j->max_active};
    char **started = NULL;
    size_t n = 0;
    if ((j->rc = queue_start_runs(s, &q, 1, when_now_ms(), j->sched_id, &started, &n, se)) < 0) {
        djob_fail(j, "starting a queued run", se);
        return;
    }
    j->admitted = n == 1;
    for (size_t i = 0; i < n; i++)
        free(started[i]);
    free(started);
}

static bool strv_has(char **v, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

/* DJOB_ADMIT's work: every queued run of a sync offered in one transaction, so runs held by
 * max_active_runs elsewhere cost one round per sync, not one each. */
static void djob_admit_all(struct djob *j, struct store *s, struct err *se)
{
    if (!queue_supported(s)) {
        for (size_t i = 0; i < j->nloads; i++)
            j->loads[i]->admitted = true;
        return;
    }
    struct queue_run *q = xcalloc(j->nloads ? j->nloads : 1, sizeof *q);
    for (size_t i = 0; i < j->nloads; i++)
        q[i] = (struct queue_run){j->loads[i]->rec.run_id, j->loads[i]->rec.dag_id,
                                  j->loads[i]->max_active};
    char **started = NULL;
    size_t n = 0;
    j->rc = queue_start_runs(s, q, j->nloads, when_now_ms(), j->sched_id, &started, &n, se);
    free(q);
    if (j->rc < 0)
        return djob_fail(j, "starting queued runs", se);
    for (size_t i = 0; i < j->nloads; i++)
        j->loads[i]->admitted = strv_has(started, n, j->loads[i]->rec.run_id);
    for (size_t i = 0; i < n; i++)
        free(started[i]);
    free(started);
}

/* notify: a resumed run's deliveries: whether its deadline fired before (a 'deadline' row
 * written since the run was queued: one of before a clear queued it again is of its earlier
 * go), and those left 'pending' by a scheduler that died sending them (sent again: at least
 * once). */
static int djob_deliveries(struct djob *j, struct store *s, struct err *se)
{
    struct delivery_rec *v = NULL;
    size_t n = 0;
    int rc = store_list_deliveries(s, j->rec.run_id, &v, &n, se);
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < n; i++) {
        j->deadline_fired |=
            strcmp(v[i].hook, "deadline") == 0 && v[i].updated_at_ms >= j->rec.queued_at_ms;
        if (strcmp(v[i].state, "pending") == 0)
            v[k++] = v[i];
        else
            delivery_rec_release(&v[i]);
    }
    if (rc < 0) {
        deliveries_free(v, n);
        return rc;
    }
    j->pending = v;
    j->npending = k;
    return 0;
}

/* DJOB_LOAD's work: a run's records (in j->rec) and the DAG version it goes on with. */
static void djob_load(struct djob *j, struct store *s, struct err *se)
{
    if ((j->rc = store_list_tis(s, j->rec.run_id, &j->tis, &j->ntis, se)) < 0) {
        djob_fail(j, "reading task instances", se);
        return;
    }
    if (j->rec.state == RUN_RUNNING || j->ntis > 0)
        j->resume = true;
    if (j->resume && (j->rc = store_lost_scheduler(s, j->rec.run_id, &j->lost_sched, se)) < 0) {
        djob_fail(j, "reading the scheduler a run was lost with", se);
        return;
    }
    if (j->resume && (j->rc = djob_deliveries(j, s, se)) < 0) {
        djob_fail(j, "reading the run's deliveries", se);
        return;
    }
    if (j->d->shared) {
        /* Workers run the tries: those still in the workers' queue become this scheduler's
         * and are awaited; none is a process of this host's to kill (a worker kills the
         * orphans of its own predecessor). */
        if (j->resume && (j->rc = wq_adopt(s, j->d->node_id, j->rec.run_id, &j->inflight,
                                           &j->ninflight, se)) < 0) {
            djob_fail(j, "adopting the run's tries in the workers' queue", se);
            return;
        }
    } else {
        char *tags[RUN_ENV_NTAGS];
        run_env_tags(j->rec.dag_id, j->rec.run_id, tags);
        for (size_t i = 0; i < j->ntis; i++)
            if (j->tis[i].state == TI_RUNNING || j->tis[i].state == TI_QUEUED)
                djob_kill_orphan(s, (const char *const *)tags, j->rec.run_id, j->tis[i].task_id);
        /* Even a run the store still has 'queued' may have started tries whose records a
         * dead scheduler never committed. */
        djob_kill_tagged((const char *const *)tags, j->rec.run_id);
        for (size_t i = 0; i < RUN_ENV_NTAGS; i++)
            free(tags[i]);
    }
    /* A resumed run goes on with the version it started with; a queued one with the
     * version it was triggered with when the folder has not caught up with it yet. */
    if (j->rec.dag_hash &&
        (j->resume || !j->cur_hash || strcmp(j->cur_hash, j->rec.dag_hash) != 0)) {
        char *src = NULL;
        size_t len = 0;
        if (store_get_dag_version(s, j->rec.dag_hash, &src, &len, NULL) == 0) {
            struct diag dg;
            diag_init(&dg);
            j->stored_dag = dag_load_mem(src, len, j->rec.dag_path ? j->rec.dag_path : "", &dg);
            if (!j->stored_dag)
                j->errmsg = run_diag_msg(&dg);
            diag_release(&dg);
            free(src);
        }
    }
    if ((j->want_past || (j->stored_dag && j->stored_dag->uses_past)) &&
        (j->rc = run_past_read(s, j->rec.dag_id, j->rec.run_id, j->rec.logical_at_ms, &j->past,
                               se)) < 0)
        djob_fail(j, "reading the previous run (depends_on_past)", se);
    /* vars: here, on the jobs' connection, never on the loop (a store round per key and
     * the key file) */
    if (j->rc == 0 && j->stored_dag && j->stored_dag->uses_vars)
        j->vars = run_vars_read(s, j->d->o->home, (const char *const *)j->stored_dag->var_keys,
                                j->stored_dag->nvar_keys);
    else if (j->rc == 0 && !j->stored_dag && j->nvar_keys)
        j->vars = run_vars_read(s, j->d->o->home, (const char *const *)j->var_keys, j->nvar_keys);
}

static bool djob_owns(const struct djob *j, const char *run_id)
{
    for (size_t i = 0; i < j->nruns; i++)
        if (strcmp(j->runs[i].run_id, run_id) == 0)
            return true;
    return false;
}

/* A sync's requests about unfinished runs another scheduler owns (several schedulers on one
 * database) are that scheduler's to carry out: each such run goes in j->elsewhere. Only
 * lasting ones (clears) are seen here; the take leaves the others in place for the owner. */
static void djob_requests_elsewhere(struct djob *j, struct store *s)
{
    for (size_t i = 0; i < j->nreqs; i++) {
        const struct run_request *q = &j->reqs[i];
        if (djob_owns(j, q->run_id))
            continue;
        struct run_rec rec;
        if (store_get_run(s, q->run_id, &rec, NULL) < 0)
            continue;
        bool other = !rec.owner && (rec.state == RUN_QUEUED || rec.state == RUN_RUNNING);
        run_rec_release(&rec);
        if (!other)
            continue;
        j->elsewhere = xrealloc(j->elsewhere, (j->nelsewhere + 1) * sizeof(char *));
        j->elsewhere[j->nelsewhere++] = xstrdup(q->run_id);
    }
}

/* A sync reads again the previous runs that runs here wait on (depends_on_past) but that do
 * not run here: another scheduler's, or not started yet. One that cannot be read is left for
 * the next sync. */
static void djob_read_pasts(struct djob *j, struct store *s)
{
    j->pasts = xcalloc(j->npasts ? j->npasts : 1, sizeof *j->pasts);
    for (size_t i = 0; i < j->npasts; i++) {
        struct run_past *p = &j->pasts[i];
        struct run_rec rec;
        if (store_get_run(s, j->past_ids[i], &rec, NULL) < 0)
            continue;
        bool ended = rec.state != RUN_QUEUED && rec.state != RUN_RUNNING;
        run_rec_release(&rec);
        if (store_list_tis(s, j->past_ids[i], &p->tis, &p->ntis, NULL) < 0)
            continue;
        p->ended = ended;
        p->run_id = xstrdup(j->past_ids[i]);
    }
}

static void djob_work(uv_work_t *req)
{
    struct djob *j = req->data;
    struct store *s = j->d->ctl;
    struct err err; /* on a pool thread's stack (8 MiB) */
    struct err *se = &err;
    err.code = 0;
    switch (j->kind) {
    case DJOB_SYNC:
        /* Runs no scheduler owns (queued by the CLI or API, or released by one that stopped
         * or died) become ours, a few at a time so that other schedulers get some. Claimed
         * first: their requests are ours to take in the same sync. */
        if ((j->rc = store_claim_runs(s, j->d->node_id, DAEMON_CLAIM_MAX, &j->claimed, se)) < 0)
            return djob_fail(j, "claiming runs", se);
        if ((j->rc = store_take_requests(s, j->d->node_id, &j->reqs, &j->nreqs, se)) < 0)
            return djob_fail(j, "reading requests", se);
        if ((j->rc = store_list_owned_runs(s, j->d->node_id, &j->runs, &j->nruns, se)) < 0)
            return djob_fail(j, "reading runs", se);
        djob_requests_elsewhere(j, s);
        if ((j->rc = store_list_pools(s, &j->pools, &j->npools, se)) < 0)
            return djob_fail(j, "reading pools", se);
        if ((j->rc = store_list_dags(s, &j->dags, &j->ndags, se)) < 0)
            return djob_fail(j, "reading dags", se);
        djob_read_pasts(j, s);
        return;
    case DJOB_ADMIT:
        djob_admit_all(j, s, se);
        return;
    case DJOB_LOAD:
        djob_admit(j, s, se);
        if (j->rc == 0 && j->admitted)
            djob_load(j, s, se);
        return;
    case DJOB_CLAIM: {
        if ((j->rc = store_has_run_at(s, j->dag_id, j->at_ms, &j->exists, se)) < 0)
            return djob_fail(j, "reading runs", se);
        if (j->exists)
            return;
        j->rc =
            store_claim_run(s, "scheduled__", j->at_ms, &j->rec, j->run_id, sizeof(j->run_id), se);
        if (j->rc == -EALREADY) { /* another scheduler created it a moment ago */
            j->rc = 0;
            j->exists = true;
            return;
        }
        if (j->rc < 0)
            return djob_fail(j, "claiming a run", se);
        bool taken = false;
        if ((j->rc = store_take_run(s, j->d->node_id, j->run_id, &taken, se)) < 0)
            return djob_fail(j, "taking the run", se);
        j->exists = !taken; /* another scheduler claimed it first: it runs it */
        return;
    }
    case DJOB_CLEAR: {
        struct ops_err e = {0};
        if (j->cancel) { /* a held run whose cancel came while it drained */
            if ((j->rc = ops_cancel_stored(s, j->run_id, &e)) < 0)
                j->errmsg = xasprintf("cancelling: %s", e.err.msg[0] ? e.err.msg : "failed");
            ops_err_release(&e);
            return;
        }
        /* Each request in its own transaction: one that can no longer apply does not hold
         * back the others. */
        for (size_t i = 0; i < j->nclears; i++) {
            size_t n = 0;
            int r = ops_clear_apply(s, j->run_id, j->clears[i], &n, &j->ended, &e);
            if (r == -ECANCELED) {
                j->cancelled = true;
            } else if (r < 0) {
                free(j->errmsg);
                j->errmsg = xasprintf("clearing (%s): %s", j->clears[i],
                                      e.err.msg[0] ? e.err.msg : "failed");
            }
            j->nrows += n;
            ops_err_release(&e);
        }
        if (j->dr && !j->cancelled && !j->ended) { /* the held run goes on from its records */
            if ((j->rc = store_get_run(s, j->run_id, &j->rec, se)) < 0)
                return djob_fail(j, "reading the run", se);
            djob_load(j, s, se);
        }
        return;
    }
    case DJOB_CURSOR:
        j->rc = store_last_logical(s, j->dag_id, RUN_SCHEDULED, &j->at_ms, se);
        if (j->rc == -ENOENT) {
            j->rc = 0;
            j->at_ms = -1;
        } else if (j->rc < 0) {
            djob_fail(j, "reading runs", se);
        }
        return;
    case DJOB_DAG:
        /* Every file that changed since the last such job, in one transaction; a DAG
         * recorded as it is now is not written again (a restart writes nothing). */
        if ((j->rc = store_begin(s, se)) < 0)
            return djob_fail(j, "recording DAGs", se);
        for (size_t i = 0; i < j->files.n && j->rc == 0; i++) {
            struct dfile *f = &j->files.v[i];
            if (f->drec.dag_id) {
                struct dag_rec cur;
                bool same = false;
                if (store_get_dag(s, f->drec.dag_id, &cur, NULL) == 0) {
                    same = djob_same_str(cur.path, f->drec.path) &&
                           djob_same_str(cur.hash, f->drec.hash) &&
                           djob_same_str(cur.schedule, f->drec.schedule) &&
                           djob_same_str(cur.description, f->drec.description);
                    dag_rec_release(&cur);
                }
                if (!same)
                    j->rc = store_put_dag(s, &f->drec, se);
                /* The version too (once per hash), so its graph and tasks can be shown before
                 * its first run. */
                if (j->rc == 0 && f->dag)
                    j->rc = store_put_dag_version(s, f->dag->hash, f->dag->id, f->dag->source,
                                                  f->dag->source_len, se);
            }
            if (j->rc == 0)
                j->rc = store_set_import_errors(s, f->path, f->errs, f->nerrs, se);
        }
        if (j->rc < 0 || (j->rc = store_commit(s, se)) < 0) {
            djob_fail(j, "recording DAGs", se);
            store_rollback(s);
        }
        return;
    }
}

static void daemon_job_done(struct daemon *d, struct djob *j);

static void djob_after(uv_work_t *req, int status)
{
    struct djob *j = req->data;
    struct daemon *d = j->d;
    d->job_busy = false;
    if (status < 0 && j->rc == 0)
        j->rc = status;
    if (j->errmsg && j->rc < 0)
        log_warn("store job failed", "err=%s", log_q(j->errmsg));
    daemon_job_done(d, j);
    djob_free(j);
    daemon_job_next(d);
    daemon_maybe_finish(d);
}

static void daemon_job_next(struct daemon *d)
{
    if (d->job_busy || !d->jobs_head)
        return;
    struct djob *j = d->jobs_head;
    d->jobs_head = j->next;
    if (!d->jobs_head)
        d->jobs_tail = NULL;
    if (j->kind == DJOB_SYNC)
        d->sync_queued = false;
    if (j->kind == DJOB_DAG) {
        d->files_queued = false;
        j->files = d->files;
        memset(&d->files, 0, sizeof(d->files));
    }
    j->epoch = ++d->epoch; /* its reads happen after this; runs that end later get more */
    d->job_busy = true;
    int rc = uv_queue_work(&d->loop, &j->req, djob_work, djob_after);
    if (rc < 0) { /* not expected: run it inline rather than lose it */
        djob_work(&j->req);
        djob_after(&j->req, 0);
    }
}

static void daemon_job_push(struct daemon *d, struct djob *j)
{
    if (d->jobs_tail)
        d->jobs_tail->next = j;
    else
        d->jobs_head = j;
    d->jobs_tail = j;
    daemon_job_next(d);
}

/* ---- runs ---- */

static struct drun *daemon_find_run(struct daemon *d, const char *run_id)
{
    for (struct drun *dr = d->runs; dr; dr = dr->next)
        if (strcmp(dr->run_id, run_id) == 0)
            return dr;
    return NULL;
}

static bool daemon_recently_ended(struct daemon *d, const char *run_id, uint64_t job_epoch)
{
    for (size_t i = 0; i < d->recent.n; i++)
        if (d->recent.v[i].epoch >= job_epoch && strcmp(d->recent.v[i].run_id, run_id) == 0)
            return true;
    return false;
}

static void daemon_prune_recent(struct daemon *d, uint64_t job_epoch)
{
    size_t k = 0;
    for (size_t i = 0; i < d->recent.n; i++) {
        if (d->recent.v[i].epoch < job_epoch)
            free(d->recent.v[i].run_id);
        else
            d->recent.v[k++] = d->recent.v[i];
    }
    d->recent.n = k;
}

static void strv_clear(char **v, size_t *n)
{
    for (size_t i = 0; i < *n; i++)
        free(v[i]);
    *n = 0;
}

static void drun_unlink(struct daemon *d, struct drun *dr)
{
    if (dr->prev)
        dr->prev->next = dr->next;
    else
        d->runs = dr->next;
    if (dr->next)
        dr->next->prev = dr->prev;
    d->nruns--;
    if (dr->dd)
        dr->dd->active--;
    struct recent_end re = {.run_id = dr->run_id, .epoch = ++d->epoch};
    VEC_PUSH(&d->recent, re);
    strv_clear(dr->clears.v, &dr->clears.n);
    VEC_FREE(&dr->clears);
    strv_clear(dr->applied.v, &dr->applied.n);
    VEC_FREE(&dr->applied);
    dag_free(dr->dag);
    free(dr);
}

static struct drun *drun_new(struct daemon *d, const char *run_id, struct ddag *dd)
{
    struct drun *dr = xcalloc(1, sizeof(*dr));
    dr->d = d;
    dr->run_id = xstrdup(run_id);
    dr->dd = dd;
    if (dd)
        dd->active++;
    dr->next = d->runs;
    if (d->runs)
        d->runs->prev = dr;
    d->runs = dr;
    d->nruns++;
    return dr;
}

static bool daemon_clear_hold(struct daemon *d, struct drun *dr, struct run *r);

static void daemon_run_ended(void *ud, struct run *r)
{
    struct drun *dr = ud;
    struct daemon *d = dr->d;
    bool halted = run_get_state(r) == RUN_RUNNING; /* a drain, or a shutdown */
    if (!d->halting && !halted)
        log_info("run ended", "dag=%s run=%s state=%s", log_q(run_get_dag(r)->id),
                 log_q(dr->run_id), run_state_name(run_get_state(r)));
    if (daemon_clear_hold(d, dr, r))
        return;
    run_free(r);
    drun_unlink(d, dr);
    if (!d->stopping) {
        daemon_plan(d);
        daemon_sync(d); /* a queued run may have waited for this one's slot */
    }
    daemon_maybe_finish(d);
}

/* Drains a run for its clear and mark requests (dr->clears); the tries of the tasks a mark
 * names are stopped, as a cancel stops them. */
static void daemon_drain(struct drun *dr)
{
    run_drain(dr->r);
    const struct dag *dag = run_get_dag(dr->r);
    bool *set = NULL;
    for (size_t i = 0; i < dr->clears.n; i++) {
        if (!set)
            set = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof *set);
        (void)ops_mark_request_tasks(dag, dr->clears.v[i], set);
    }
    bool any = false;
    for (uint32_t k = 0; set && k < dag->ntasks; k++)
        any = any || set[k];
    if (any)
        run_stop_tasks(dr->r, set);
    free(set);
}

/* Writes a run that will not start as ended (a cancelled queued run, or one whose DAG cannot
 * be loaded). */
static void daemon_end_unstarted(struct daemon *d, const struct run_rec *rec, enum run_state st)
{
    struct run_rec x = *rec;
    x.state = st;
    x.ended_at_ms = when_now_ms();
    if (x.started_at_ms < 0)
        x.started_at_ms = x.ended_at_ms;
    engine_cork(d->e);
    if (engine_put_run(d->e, &x) == 0)
        log_warn("cannot record the run's end", "run=%s", log_q(rec->run_id));
    engine_uncork(d->e);
}

static void daemon_start_loaded(struct daemon *d, struct djob *j)
{
    struct drun *dr = j->dr;
    if (j->rc < 0 || d->stopping || (j->kind == DJOB_LOAD && !j->admitted)) {
        /* Not admitted: its DAG has max_active_runs running elsewhere; a later sync (a run's
         * end, or the resync) offers it again. */
        drun_unlink(d, dr);
        return;
    }
    const struct dag *dag = NULL;
    if (j->stored_dag) {
        dr->dag = j->stored_dag;
        j->stored_dag = NULL;
    } else if (dr->dd && dr->dd->dag) {
        dr->dag = dag_ref(dr->dd->dag);
    }
    dag = dr->dag;
    if (!dag) {
        log_warn("run cannot start: its DAG is not loaded", "run=%s dag=%s err=%s",
                 log_q(dr->run_id), log_q(j->rec.dag_id), log_q(j->errmsg ? j->errmsg : ""));
        if (j->resume) /* its version is lost: it cannot go on */
            daemon_end_unstarted(d, &j->rec, RUN_FAILED);
        drun_unlink(d, dr);
        return;
    }
    struct params_override *params = NULL;
    size_t nparams = 0;
    char *err = NULL;
    struct diag dg;
    diag_init(&dg);
    if (params_conf_parse(j->rec.conf, &params, &nparams, &err) < 0 ||
        params_check(dag, params, nparams, &dg) < 0) {
        if (!err)
            err = run_diag_msg(&dg);
        log_warn("run cannot start: bad conf", "run=%s err=%s", log_q(dr->run_id), log_q(err));
        daemon_end_unstarted(d, &j->rec, RUN_FAILED);
        free(err);
        diag_release(&dg);
        params_conf_free(params, nparams);
        drun_unlink(d, dr);
        return;
    }
    diag_release(&dg);
    struct run_spec sp = {
        .dag = dag,
        .run_id = j->rec.run_id,
        .type = j->rec.type,
        .logical_at_ms = j->rec.logical_at_ms,
        .queued_at_ms = j->rec.queued_at_ms,
        /* A run queued again (a clear of a finished run) starts anew, as Airflow resets its
         * start: its run_timeout counts from now. */
        .started_at_ms = j->resume && j->rec.state != RUN_QUEUED ? j->rec.started_at_ms : -1,
        .conf = j->rec.conf,
        .params = params,
        .nparams = nparams,
        .tis = j->tis,
        .ntis = j->ntis,
        .lost_sched = j->lost_sched,
        .past_run_id = j->past.run_id,
        .past_ended = j->past.ended,
        .past_tis = j->past.tis,
        .npast_tis = j->past.ntis,
        .deadline_fired = j->deadline_fired,
        .vars = j->vars,
    };
    j->vars = NULL; /* run_begin takes them */
    struct run_inflight *inflight = xcalloc(j->ninflight ? j->ninflight : 1, sizeof *inflight);
    for (size_t i = 0; i < j->ninflight; i++)
        inflight[i] = (struct run_inflight){j->inflight[i].task_id, j->inflight[i].try_number};
    sp.inflight = inflight;
    sp.ninflight = j->ninflight;
    log_info(j->resume ? "run resumed" : "run started", "dag=%s run=%s in_flight=%zu",
             log_q(dag->id), log_q(dr->run_id), j->ninflight);
    struct err be = {0};
    int rc = run_begin(d->e, &sp, daemon_run_ended, dr, &dr->r, &be);
    free(inflight);
    params_conf_free(params, nparams);
    if (rc < 0) {
        log_warn("run cannot start", "run=%s err=%s", log_q(dr->run_id), log_q(err_msg(&be)));
        daemon_end_unstarted(d, &j->rec, RUN_FAILED);
        drun_unlink(d, dr);
        return;
    }
    run_resend(dr->r, j->pending, j->npending);
    if (dr->cancel_requested)
        run_cancel(dr->r);
    else if (dr->clears.n)
        daemon_drain(dr);
}

/* What a load job needs of the run's DAG as loaded now (dag is the loop's: copied here). */
static void djob_dag_facts(struct djob *j, const struct dag *dag)
{
    j->cur_hash = xstrdup(dag->hash);
    j->var_keys = xcalloc(dag->nvar_keys ? dag->nvar_keys : 1, sizeof *j->var_keys);
    for (size_t i = 0; i < dag->nvar_keys; i++)
        j->var_keys[i] = xstrdup(dag->var_keys[i]);
    j->nvar_keys = dag->nvar_keys;
}

/* The job that takes on a run from the store: loads its records on the pool, then begins
 * it. */
static struct djob *daemon_load_job(struct daemon *d, const struct run_rec *rec)
{
    struct ddag *dd = ddag_get(d, rec->dag_id, false);
    struct drun *dr = drun_new(d, rec->run_id, dd);
    struct djob *j = djob_new(d, DJOB_LOAD);
    j->dr = dr;
    j->rec.run_id = xstrdup(rec->run_id);
    j->rec.dag_id = xstrdup(rec->dag_id);
    j->rec.state = rec->state;
    j->rec.type = rec->type;
    j->rec.logical_at_ms = rec->logical_at_ms;
    j->rec.queued_at_ms = rec->queued_at_ms;
    j->rec.started_at_ms = rec->started_at_ms;
    j->rec.ended_at_ms = rec->ended_at_ms;
    j->rec.conf = rec->conf ? xstrdup(rec->conf) : NULL;
    j->rec.dag_hash = rec->dag_hash ? xstrdup(rec->dag_hash) : NULL;
    j->rec.dag_path = rec->dag_path ? xstrdup(rec->dag_path) : NULL;
    if (dd && dd->dag) {
        djob_dag_facts(j, dd->dag);
        j->max_active = dd->dag->max_active_runs;
        j->want_past = dd->dag->uses_past;
        j->sched_id = engine_sched_id(d->e);
    }
    return j;
}

static void daemon_take_run(struct daemon *d, const struct run_rec *rec)
{
    daemon_job_push(d, daemon_load_job(d, rec));
}

/* A DJOB_ADMIT ended: the runs it started are loaded, the others let go (held by
 * max_active_runs elsewhere; a later sync offers them again). */
static void daemon_admit_done(struct daemon *d, struct djob *j)
{
    for (size_t i = 0; i < j->nloads; i++) {
        struct djob *l = j->loads[i];
        j->loads[i] = NULL;
        if (j->rc == 0 && l->admitted && !d->stopping) {
            l->preadmitted = true;
            daemon_job_push(d, l);
        } else {
            drun_unlink(d, l->dr);
            djob_free(l);
        }
    }
}

/* ---- clearing a live run (ops_clear's requests) ----
 *
 * A clear request stays in the store until carried out (store_take_requests), so every sync
 * sees it again: for a run of ours it is noted once (dr->clears) and the run drains; once the
 * run has halted (daemon_run_ended) it stays held (in d->runs, so no sync takes it on as it
 * stood, and its slot kept) while DJOB_CLEAR resets its instances, deletes the requests and
 * loads it again, all on the jobs' connection, then it goes on (daemon_start_loaded). A
 * request for a run that is not ours (queued, not taken on yet) is carried out at once. A
 * cancel wins over a clear. */

/* Pushes DJOB_CLEAR for run_id: kinds (copied) applied, or with cancel the held run cancelled;
 * dr: the run held meanwhile, or NULL. */
static void daemon_clear_push(struct daemon *d, struct drun *dr, const char *run_id,
                              char *const *kinds, size_t n, bool cancel)
{
    struct djob *j = djob_new(d, DJOB_CLEAR);
    j->dr = dr;
    j->cancel = cancel;
    snprintf(j->run_id, sizeof j->run_id, "%s", run_id);
    j->clears = xcalloc(n ? n : 1, sizeof *j->clears);
    for (size_t i = 0; i < n; i++)
        j->clears[j->nclears++] = xstrdup(kinds[i]);
    if (dr && dr->dd && dr->dd->dag)
        djob_dag_facts(j, dr->dd->dag);
    daemon_job_push(d, j);
}

static void daemon_clear_request(struct daemon *d, struct djob *j, const struct run_request *q)
{
    struct drun *dr = daemon_find_run(d, q->run_id);
    if (dr) {
        if (strv_has(dr->clears.v, dr->clears.n, q->kind) ||
            (j->epoch <= dr->applied_epoch && strv_has(dr->applied.v, dr->applied.n, q->kind)))
            return; /* noted already, or read before it was carried out */
        log_info("clear requested: draining the run", "run=%s request=%s", log_q(q->run_id),
                 log_q(q->kind));
        VEC_PUSH(&dr->clears, xstrdup(q->kind));
        if (dr->r)
            daemon_drain(dr); /* else once it has started (daemon_start_loaded) */
        return;
    }
    char *kind = q->kind;
    daemon_clear_push(d, NULL, q->run_id, &kind, 1, false);
}

/* A run of ours halted or ended with clears or a cancel pending: true when it stays held. */
static bool daemon_clear_hold(struct daemon *d, struct drun *dr, struct run *r)
{
    enum run_state st = run_get_state(r);
    if (d->stopping || st == RUN_CANCELLED || (!dr->clears.n && !dr->cancel_requested))
        return false; /* its requests wait in the store for the next sync (or start) */
    if (dr->cancel_requested && st != RUN_RUNNING)
        return false; /* it ended on its own: nothing to cancel */
    run_free(r);
    dr->r = NULL;
    dag_free(dr->dag);
    dr->dag = NULL;
    if (dr->cancel_requested) {
        daemon_clear_push(d, dr, dr->run_id, NULL, 0, true);
    } else {
        daemon_clear_push(d, dr, dr->run_id, dr->clears.v, dr->clears.n, false);
        strv_clear(dr->clears.v, &dr->clears.n);
    }
    return true;
}

static void daemon_clear_done(struct daemon *d, struct djob *j)
{
    struct drun *dr = j->dr;
    if (j->cancel) {
        log_info(j->rc == 0 ? "run cancelled" : "run not cancelled", "run=%s", log_q(j->run_id));
    } else if (j->cancelled) {
        log_info("clear dropped: the run was cancelled", "run=%s", log_q(j->run_id));
    } else if (j->ended) {
        log_info("run marked", "run=%s task_instances=%zu", log_q(j->run_id), j->nrows);
    } else if (j->nrows || dr) {
        log_info("run cleared", "run=%s task_instances=%zu", log_q(j->run_id), j->nrows);
    }
    if (dr && !j->cancel && !j->cancelled && !j->ended && !d->stopping) {
        for (size_t i = 0; i < j->nclears; i++)
            VEC_PUSH(&dr->applied, xstrdup(j->clears[i]));
        dr->applied_epoch = ++d->epoch;
        daemon_start_loaded(d, j); /* goes on (drains again if more clears came meanwhile) */
        return;
    }
    if (dr)
        drun_unlink(d, dr);
    if (!d->stopping) {
        daemon_plan(d);
        daemon_sync(d);
    }
}

/* ---- sync: requests, queued runs, pools, pauses ---- */

static void daemon_sync_done(struct daemon *d, struct djob *j)
{
    for (size_t i = 0; i < j->npasts; i++)
        if (j->pasts && j->pasts[i].run_id)
            engine_past_update(d->e, j->pasts[i].run_id, j->pasts[i].ended, j->pasts[i].tis,
                               j->pasts[i].ntis);
    if (j->rc < 0)
        return;
    struct djob *admit = NULL;
    for (size_t i = 0; i < j->npools; i++)
        engine_set_pool(d->e, j->pools[i].name, j->pools[i].slots);
    for (size_t i = 0; i < j->ndags; i++) {
        struct ddag *dd = ddag_get(d, j->dags[i].dag_id, false);
        if (dd && dd->paused != j->dags[i].paused) {
            dd->paused = j->dags[i].paused;
            log_info(dd->paused ? "dag paused" : "dag unpaused", "dag=%s", log_q(dd->id));
            if (!dd->paused && dd->dag && !dd->dag->catchup)
                dd->cursor = DAEMON_CURSOR_UNKNOWN; /* skips to the latest interval */
        }
    }
    for (size_t i = 0; i < j->nreqs; i++) {
        const struct run_request *q = &j->reqs[i];
        if (strcmp(q->kind, "cancel") != 0 || strv_has(j->elsewhere, j->nelsewhere, q->run_id))
            continue;
        struct drun *dr = daemon_find_run(d, q->run_id);
        if (dr) {
            dr->cancel_requested = true; /* also when it drained: see daemon_clear_hold */
            if (dr->r)
                run_cancel(dr->r);
            continue;
        }
        for (size_t k = 0; k < j->nruns; k++)
            if (strcmp(j->runs[k].run_id, q->run_id) == 0 && j->runs[k].state == RUN_QUEUED) {
                log_info("queued run cancelled", "run=%s", log_q(q->run_id));
                daemon_end_unstarted(d, &j->runs[k], RUN_CANCELLED);
                j->runs[k].state = RUN_CANCELLED; /* not taken on below */
            }
    }
    for (size_t i = 0; i < j->nreqs; i++) { /* clears, after the cancels, which win */
        const struct run_request *q = &j->reqs[i];
        const char *task;
        bool down, cancelled = false;
        if ((!ops_clear_request_parse(q->kind, &task, &down) && !ops_mark_request_parse(q->kind)) ||
            strv_has(j->elsewhere, j->nelsewhere, q->run_id))
            continue;
        for (size_t k = 0; k < j->nreqs && !cancelled; k++)
            cancelled =
                strcmp(j->reqs[k].kind, "cancel") == 0 && strcmp(j->reqs[k].run_id, q->run_id) == 0;
        if (!cancelled) /* else a later sync finds it cancelled and drops the request */
            daemon_clear_request(d, j, q);
    }
    for (size_t i = 0; i < j->nruns; i++) {
        const struct run_rec *rec = &j->runs[i];
        if (rec->state != RUN_QUEUED && rec->state != RUN_RUNNING)
            continue;
        if (daemon_find_run(d, rec->run_id) || daemon_recently_ended(d, rec->run_id, j->epoch))
            continue;
        struct ddag *dd = ddag_get(d, rec->dag_id, false);
        if (rec->state == RUN_QUEUED) {
            /* A new run waits for its DAG, for the DAG to be unpaused and for room. */
            if (!dd || !dd->dag || dd->paused || dd->active >= dd->dag->max_active_runs)
                continue;
            if (d->shared) { /* room in the database too: all of them in one round */
                if (!admit) {
                    admit = djob_new(d, DJOB_ADMIT);
                    admit->sched_id = engine_sched_id(d->e);
                }
                admit->loads = xrealloc(admit->loads, (admit->nloads + 1) * sizeof(struct djob *));
                admit->loads[admit->nloads++] = daemon_load_job(d, rec);
                continue;
            }
        }
        daemon_take_run(d, rec);
    }
    if (admit)
        daemon_job_push(d, admit);
    daemon_prune_recent(d, j->epoch);
    daemon_plan(d);
    if (j->claimed >= DAEMON_CLAIM_MAX)
        daemon_sync(d); /* more may be waiting */
}

static void daemon_sync(struct daemon *d)
{
    if (d->stopping)
        return;
    if (d->sync_queued)
        return; /* the queued one reads after this moment anyway */
    d->sync_queued = true;
    struct djob *j = djob_new(d, DJOB_SYNC);
    j->npasts = engine_past_pending(d->e, &j->past_ids);
    daemon_job_push(d, j);
}

static void daemon_on_bell(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct daemon *d = h->data;
    (void)filename;
    (void)events;
    (void)status;
    daemon_sync(d);
}

static void daemon_on_resync(uv_timer_t *t)
{
    daemon_sync(t->data);
}

/* NOTIFY baram_wake (a request the CLI or an API wrote, on any host), or the listener back
 * after an outage (a notification may have gone by): read the store now. */
static void daemon_on_wake(void *ud, const char *channel)
{
    struct daemon *d = ud;
    if (strncmp(channel, "baram_sched_", 12) == 0) { /* a worker left results for us */
        engine_remote_take(d->e);
        return;
    }
    daemon_sync(d);
}

static void daemon_on_relisten(void *ud)
{
    struct daemon *d = ud;
    engine_remote_take(d->e); /* a notification may have been missed */
    daemon_sync(d);
}

static void daemon_stop_wake(struct daemon *d)
{
    listen_stop(d->wake);
    d->wake = NULL;
}

/* ---- the planner ---- */

static void daemon_claim_done(struct daemon *d, struct djob *j)
{
    struct ddag *dd = ddag_get(d, j->dag_id, false);
    if (!dd)
        return;
    dd->claim_busy = false;
    if (j->rc < 0)
        return; /* tried again at the next plan */
    if (dd->cursor == j->at_ms && dd->dag)
        dd->cursor = plan_after(dd->dag, j->at_ms);
    if (j->exists) {
        log_debug("scheduled run exists", "dag=%s at=%lld", log_q(dd->id), (long long)j->at_ms);
    } else if (!d->stopping) {
        log_info("scheduled run created", "dag=%s run=%s", log_q(dd->id), log_q(j->run_id));
        j->rec.run_id = xstrdup(j->run_id);
        daemon_take_run(d, &j->rec);
    }
    daemon_plan(d);
}

static void daemon_cursor_done(struct daemon *d, struct djob *j)
{
    struct ddag *dd = ddag_get(d, j->dag_id, false);
    if (!dd)
        return;
    dd->cursor_busy = false;
    if (j->rc < 0 || !dd->dag)
        return;
    dd->cursor = plan_cursor(dd->dag, j->at_ms, when_now_ms());
    ddag_sched_key(dd->dag, dd->sched_key, sizeof(dd->sched_key));
    daemon_plan(d);
}

static void daemon_on_plan_timer(uv_timer_t *t)
{
    daemon_plan(t->data);
}

/* Claims every due run there is room for; sets the timer to the next due time. */
static void daemon_plan(struct daemon *d)
{
    if (d->stopping)
        return;
    int64_t now = when_now_ms();
    int64_t wake = PLAN_NEVER;
    for (size_t i = 0; i < d->dags.n; i++) {
        struct ddag *dd = d->dags.v[i];
        const struct dag *dag = dd->dag;
        if (!dag || !dag->schedule || dd->paused || dd->cursor_busy || dd->claim_busy)
            continue;
        char key[96];
        ddag_sched_key(dag, key, sizeof(key));
        if (dd->cursor == DAEMON_CURSOR_UNKNOWN || strcmp(key, dd->sched_key) != 0) {
            dd->cursor_busy = true;
            struct djob *j = djob_new(d, DJOB_CURSOR);
            j->dag_id = xstrdup(dd->id);
            daemon_job_push(d, j);
            continue;
        }
        if (dd->cursor == PLAN_NEVER)
            continue;
        int64_t due = plan_due_at(dag, dd->cursor);
        if (due > now) {
            if (due < wake)
                wake = due;
            continue;
        }
        if (dd->active >= dag->max_active_runs)
            continue; /* a run's end plans again */
        dd->claim_busy = true;
        struct djob *j = djob_new(d, DJOB_CLAIM);
        j->dag_id = xstrdup(dd->id);
        j->at_ms = dd->cursor;
        j->rec.dag_id = xstrdup(dd->id);
        j->rec.state = RUN_QUEUED;
        j->rec.type = RUN_SCHEDULED;
        j->rec.logical_at_ms = dd->cursor;
        j->rec.queued_at_ms = now;
        j->rec.started_at_ms = -1;
        j->rec.ended_at_ms = -1;
        j->rec.dag_hash = xstrdup(dag->hash);
        j->rec.dag_path = xstrdup(dag->path);
        daemon_job_push(d, j);
    }
    uv_timer_stop(&d->plan_timer);
    if (wake != PLAN_NEVER) {
        int64_t ms = wake - when_now_ms();
        uv_timer_start(&d->plan_timer, daemon_on_plan_timer, (uint64_t)(ms > 0 ? ms : 0), 0);
    }
}

/* ---- the DAG folder ---- */

/* Queues the recording of the files changed so far (one job takes them all). */
static void daemon_record_files(struct daemon *d)
{
    if (d->files_queued || d->files.n == 0)
        return;
    d->files_queued = true;
    daemon_job_push(d, djob_new(d, DJOB_DAG));
}

static void daemon_on_dag_change(void *ud, const char *path, const struct dag *old,
                                 const struct dag *now, const struct diag *errors)
{
    struct daemon *d = ud;
    if (old && (!now || strcmp(old->id, now->id) != 0)) {
        struct ddag *dd = ddag_get(d, old->id, false);
        if (dd && dd->dag == old) {
            dag_free(dd->dag);
            dd->dag = NULL;
            if (d->ready_said)
                log_info("dag unloaded", "dag=%s file=%s", log_q(old->id), log_q(path));
        }
    }
    struct dfile f = {.path = xstrdup(path)};
    if (now) {
        struct ddag *dd = ddag_get(d, now->id, true);
        struct dag *fresh = dag_ref((struct dag *)now);
        dag_free(dd->dag);
        dd->dag = fresh;
        if (d->ready_said)
            log_info("dag loaded", "dag=%s file=%s hash=%.12s", log_q(now->id), log_q(path),
                     now->hash);
        f.drec.dag_id = xstrdup(now->id);
        f.drec.path = xstrdup(path);
        f.drec.hash = xstrdup(now->hash);
        f.drec.schedule = now->schedule ? xstrdup(now->schedule) : NULL;
        f.drec.description = now->description ? xstrdup(now->description) : NULL;
        f.dag = dag_ref((struct dag *)now);
    } else if (errors && errors->n > 0) {
        f.errs = xcalloc(errors->n, sizeof(*f.errs));
        for (size_t i = 0; i < errors->n; i++) {
            f.errs[i].line = errors->v[i].line;
            f.errs[i].col = errors->v[i].col;
            f.errs[i].message = diag_message(&errors->v[i]); /* with its did-you-mean */
        }
        f.nerrs = errors->n;
        log_warn("dag file has errors", "file=%s line=%d err=%s", log_q(path), errors->v[0].line,
                 log_q(f.errs[0].message));
    }
    VEC_PUSH(&d->files, f);
    if (d->ready_said) {
        daemon_record_files(d);
        daemon_plan(d);
        daemon_sync(d); /* a queued run may have waited for this DAG */
    }
}

static void daemon_job_done(struct daemon *d, struct djob *j)
{
    switch (j->kind) {
    case DJOB_SYNC:
        daemon_sync_done(d, j);
        break;
    case DJOB_LOAD:
        daemon_start_loaded(d, j);
        break;
    case DJOB_CLAIM:
        daemon_claim_done(d, j);
        break;
    case DJOB_CURSOR:
        daemon_cursor_done(d, j);
        break;
    case DJOB_DAG:
        break;
    case DJOB_CLEAR:
        daemon_clear_done(d, j);
        break;
    case DJOB_ADMIT:
        daemon_admit_done(d, j);
        break;
    }
}

/* ---- the registry: heartbeats, the reaper, stepping down ---- */

static void daemon_halt_all(struct daemon *d);
static void daemon_begin_stop(struct daemon *d);

/* Declared dead by the others, or a write refused by the fence: its runs are theirs now. It
 * stops its tries at once, writes nothing more (the fence refuses it anyway) and ends;
 * daemon_run returns -ESTALE. */
static void daemon_step_down(struct daemon *d, const char *why)
{
    if (d->fenced)
        return;
    d->fenced = true;
    log_error("scheduler lost its runs: stopping its tries and exiting", "scheduler=%s why=%s",
              log_q(d->node_name), log_q(why));
    if (!d->stopping)
        daemon_begin_stop(d);
    daemon_halt_all(d);
}

struct dbeat {
    uv_work_t req;
    struct daemon *d;
    uint64_t at_ms; /* loop time the beat was sent */
    bool may_reap;
    bool alive;
    size_t reaped;
    int rc, reap_rc;
    struct err err, reap_err;
};

static void dbeat_work(uv_work_t *req)
{
    struct dbeat *b = req->data;
    struct daemon *d = b->d;
    if ((b->rc = store_node_heartbeat(d->hb, d->node_id, &b->alive, &b->err)) < 0 || !b->alive)
        return;
    /* Any scheduler may reap (idempotent, it waits for a batch holding the row): the runs of
     * one silent past dead_after become claimable. */
    if (b->may_reap)
        b->reap_rc = store_reap_nodes(d->hb, d->dead_after_ms, &b->reaped, &b->reap_err);
}

static void dbeat_after(uv_work_t *req, int status)
{
    struct dbeat *b = req->data;
    struct daemon *d = b->d;
    d->hb_busy = false;
    if (status < 0 && b->rc == 0)
        b->rc = status;
    if (b->rc < 0) {
        d->hb_steady_ms = 0;
        if (d->hb_failures++ == 0 || d->hb_failures % 10 == 0)
            log_warn("heartbeat failed", "scheduler=%s failures=%d err=%s", log_q(d->node_name),
                     d->hb_failures, log_q(err_msg(&b->err)));
    } else {
        d->hb_failures = 0;
        d->hb_ok_ms = b->at_ms;
        if (d->hb_steady_ms == 0)
            d->hb_steady_ms = b->at_ms;
    }
    if (b->reap_rc < 0)
        log_warn("declaring silent schedulers dead failed (tried again at the next beat)",
                 "scheduler=%s err=%s", log_q(d->node_name), log_q(err_msg(&b->reap_err)));
    if (b->rc == 0 && !b->alive && !d->stopping)
        daemon_step_down(d, "declared dead by the other schedulers (no heartbeat in time)");
    else if (b->reaped > 0) {
        log_warn("schedulers declared dead: taking over their runs", "schedulers=%zu", b->reaped);
        daemon_sync(d);
    }
    free(b);
    daemon_maybe_finish(d);
}

static void daemon_on_beat(uv_timer_t *t)
{
    struct daemon *d = t->data;
    if (d->fenced)
        return;
    uint64_t now = uv_now(&d->loop);
    /* Silent for 3/4 of dead_after (beats failing or one hanging), it may be declared dead
     * any moment and its runs resumed elsewhere: it stops its tries before that can happen,
     * as a worker does (SPEC section 12). */
    if (d->shared && now - d->hb_ok_ms >= (uint64_t)d->dead_after_ms * 3 / 4) {
        daemon_step_down(d, "no heartbeat recorded for 3/4 of dead_after");
        return;
    }
    if (d->hb_busy)
        return;
    struct dbeat *b = xcalloc(1, sizeof(*b));
    b->d = d;
    b->req.data = b;
    b->at_ms = now;
    /* Only one that has itself beaten steadily for dead_after judges the others: after an
     * outage everybody's heartbeat is old, the first one back must not reap them all. */
    b->may_reap =
        d->shared && d->hb_steady_ms != 0 && now - d->hb_steady_ms >= (uint64_t)d->dead_after_ms;
    d->hb_busy = true;
    if (uv_queue_work(&d->loop, &b->req, dbeat_work, dbeat_after) < 0) {
        d->hb_busy = false;
        free(b);
    }
}

/* The engine's writer failed. With other schedulers about, this one can no longer keep its
 * runs (a refused write means it was declared dead): it steps down. */
static void daemon_on_store_error(void *ud, const char *msg)
{
    struct daemon *d = ud;
    if (d->shared)
        daemon_step_down(d, msg);
}

/* Registers this scheduler: 0, or a negative code with *e filled. */
static int daemon_register(struct daemon *d, struct err *e)
{
    char host[256];
    ops_hostname(host, sizeof host);
    snprintf(d->node_name, sizeof d->node_name, "%s:%d", host, (int)getpid());
    int rc;
    if (!d->shared) {
        /* The home's lock shows that no other scheduler runs on this database: rows left
         * active by a predecessor that crashed are dead, and their runs ours to resume now. */
        if ((rc = store_reap_nodes(d->ctl, -1, NULL, e)) < 0)
            return rc;
    }
    /* A predecessor on this home that crashed is replaced (store_node_register): its runs are
     * resumed at once rather than after dead_after. */
    char *home = realpath(d->o->home, NULL);
    struct node_rec n = {
        .role = "scheduler",
        .name = d->node_name,
        .hostname = host,
        .pid = (int)getpid(),
        .queues = "default",
        .slots = d->o->parallelism,
        .home = home ? home : (char *)d->o->home,
    };
    rc = store_node_register(d->ctl, &n, &d->node_id, e);
    free(home);
    if (rc < 0)
        return rc;
    log_info("scheduler registered", "scheduler=%s id=%lld", log_q(d->node_name),
             (long long)d->node_id);
    return 0;
}

/* PostgreSQL: the workers registered on this host whose process is gone (a crash, or a
 * `standalone` killed with its in-process worker) are dead for sure: their tries are lost
 * now, not after worker.dead_after, and what they left running is killed (the processes
 * tagged with the worker's name and home). "This host" is the same machine and PID namespace (the
 * host key), not only the same host name: a container with the host's network has its name
 * but pids of its own. Another host's workers are left to their heartbeats. */
static void daemon_lose_local_workers(struct daemon *d)
{
    char host[256], key[128];
    ops_hostname(host, sizeof host);
    if (orphans_host_key(key, sizeof key) < 0)
        return; /* no pid of any worker can be judged from here */
    struct node_rec *v = NULL;
    size_t n = 0;
    struct err e = {0};
    if (store_list_nodes(d->ctl, &v, &n, &e) < 0) {
        log_warn("cannot list the workers of this host", "err=%s", log_q(err_msg(&e)));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct node_rec *w = &v[i];
        if (strcmp(w->role, "worker") != 0 || !w->hostname || strcmp(w->hostname, host) != 0 ||
            !w->host_key || strcmp(w->host_key, key) != 0 ||
            (strcmp(w->state, "active") != 0 && strcmp(w->state, "draining") != 0) || w->pid <= 0 ||
            w->pid == (int)getpid() || kill(w->pid, 0) == 0 || errno != ESRCH)
            continue;
        /* its name and home (a namesake of another home is another fleet's); a worker that
         * registered no home, its name only */
        char *tag = xasprintf("BARAM_WORKER=%s", w->name);
        char *home = w->home ? xasprintf("BARAM_WORKER_HOME=%s", w->home) : NULL;
        const char *tags[] = {tag, home};
        int killed = orphans_kill_tagged(tags, home ? 2 : 1, NULL, NULL);
        free(home);
        free(tag);
        if (wq_lose_worker(d->ctl, w->id, &e) < 0)
            log_warn("cannot declare a gone worker dead", "worker=%s err=%s", log_q(w->name),
                     log_q(err_msg(&e)));
        else
            log_info("worker of this host gone: declared dead", "worker=%s pid=%d killed=%d",
                     log_q(w->name), w->pid, killed);
    }
    store_free_nodes(v, n);
}

/* ---- stopping ---- */

static void daemon_handle_closed(uv_handle_t *h)
{
    struct daemon *d = h->data;
    d->open_handles--;
}

static void daemon_close(struct daemon *d, uv_handle_t *h)
{
    if (!uv_is_closing(h)) {
        d->open_handles++;
        uv_close(h, daemon_handle_closed);
    }
}

static void daemon_engine_stopped(void *ud)
{
    struct daemon *d = ud;
    d->e = NULL;
    daemon_close(d, (uv_handle_t *)&d->plan_timer);
    daemon_close(d, (uv_handle_t *)&d->resync_timer);
    daemon_close(d, (uv_handle_t *)&d->grace_timer);
    daemon_close(d, (uv_handle_t *)&d->drain_timer);
    daemon_close(d, (uv_handle_t *)&d->hb_timer);
    retain_close(d->retain);
    d->retain = NULL;
    daemon_close(d, (uv_handle_t *)&d->sigterm);
    daemon_close(d, (uv_handle_t *)&d->sigint);
    daemon_close(d, (uv_handle_t *)&d->sighup);
}

static void daemon_dagdir_closed(void *ud)
{
    struct daemon *d = ud;
    d->dir = NULL;
    daemon_maybe_finish(d);
}

/* Once stopping, runs halted and jobs done: close everything. */
static void daemon_maybe_finish(struct daemon *d)
{
    if (!d->stopping || d->runs || d->job_busy || d->jobs_head || d->hb_busy ||
        retain_busy(d->retain) || !d->e || engine_stopping(d->e) || d->worker)
        return;
    /* No run is left to hear of: a drain whose last run ended before its timer saw it (so
     * daemon_halt_all never ran) must not leave the listener holding the loop open. */
    daemon_stop_wake(d);
    if (d->dir) {
        if (!d->dir_closing) { /* once: this runs again at each event until it has closed */
            d->dir_closing = true;
            dagdir_close(d->dir, daemon_dagdir_closed, d);
        }
        return;
    }
    engine_stop(d->e, daemon_engine_stopped, d);
}

static void daemon_retain_idle(void *ud)
{
    daemon_maybe_finish(ud);
}

static void daemon_halt_all(struct daemon *d)
{
    if (d->halting)
        return;
    d->halting = true;
    daemon_stop_wake(d);
    uv_timer_stop(&d->grace_timer);
    uv_timer_stop(&d->drain_timer);
    if (d->worker) /* no grace left for its tries either */
        worker_stop_now(d->worker);
    size_t n = 0;
    for (struct drun *dr = d->runs; dr;) {
        struct drun *next = dr->next;
        if (dr->r) {
            n += run_in_flight(dr->r);
            run_halt(dr->r);
        }
        dr = next;
    }
    if (n)
        log_warn("grace over: tries stopped (they run again at the next start)", "tries=%zu", n);
    daemon_maybe_finish(d);
}

static void daemon_on_grace(uv_timer_t *t)
{
    daemon_halt_all(t->data);
}

/* While stopping: halt as soon as no try is in flight. */
static void daemon_on_drain(uv_timer_t *t)
{
    struct daemon *d = t->data;
    for (struct drun *dr = d->runs; dr; dr = dr->next)
        if (dr->r && run_in_flight(dr->r) > 0)
            return;
    daemon_halt_all(d);
}

static void daemon_on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    if (signum == SIGHUP) {
        log_info("SIGHUP ignored", "why=%s",
                 log_q("the DAG folder is watched; restart to reload baram.yaml"));
        return;
    }
    if (d->stopping) {
        log_info("second signal: stopping now", "signal=%d", signum);
        daemon_halt_all(d);
        return;
    }
    int64_t grace = d->o->grace_ms >= 0 ? d->o->grace_ms : DAEMON_GRACE_MS;
    size_t inflight = 0;
    for (struct drun *dr = d->runs; dr; dr = dr->next)
        if (dr->r)
            inflight += run_in_flight(dr->r);
    log_info("stopping: no new tasks start", "signal=%d tries_running=%zu grace_ms=%lld", signum,
             inflight, (long long)grace);
    daemon_begin_stop(d);
    uv_timer_start(&d->grace_timer, daemon_on_grace, (uint64_t)grace, 0);
    uv_timer_start(&d->drain_timer, daemon_on_drain, 0, 50);
}

/* Nothing new starts, nothing more is read. */
static void daemon_begin_stop(struct daemon *d)
{
    d->stopping = true;
    engine_set_parallelism(d->e, 0);
    uv_timer_stop(&d->plan_timer);
    uv_timer_stop(&d->resync_timer);
    retain_stop(d->retain);
    if (d->bell_on) {
        d->bell_on = false;
        daemon_close(d, (uv_handle_t *)&d->bell);
    }
    /* The workers' results come on the same connection: heard until the runs halt, so the
     * drain ends as soon as the last try does (no sync starts any more). */
    if (!engine_remote(d->e))
        daemon_stop_wake(d);
    if (d->worker) /* its tries get the grace too; their ends are reported */
        worker_drain(d->worker);
}

/* The in-process worker has stopped: drained, or a fatal error (logged) that stops the
 * daemon too, as a signal would: nothing would run its tries. */
static void daemon_worker_stopped(void *ud, int rc)
{
    struct daemon *d = ud;
    d->worker = NULL;
    if (rc < 0 && !d->stopping) {
        log_error("the in-process worker stopped: stopping", "err=%s", log_q(err_str(rc)));
        daemon_begin_stop(d);
        int64_t grace = d->o->grace_ms >= 0 ? d->o->grace_ms : DAEMON_GRACE_MS;
        uv_timer_start(&d->grace_timer, daemon_on_grace, (uint64_t)grace, 0);
        uv_timer_start(&d->drain_timer, daemon_on_drain, 0, 50);
    }
    daemon_maybe_finish(d);
}

/* ---- start ---- */

static void daemon_each_file(void *ud, const char *path, const struct dag *dag,
                             const struct diag *errors)
{
    size_t *counts = ud;
    (void)path;
    (void)errors;
    if (dag)
        counts[0]++;
    else
        counts[1]++;
}

int daemon_run(const struct daemon_opts *o, struct err *e)
{
    struct daemon *d = xcalloc(1, sizeof(*d));
    d->o = o;
    d->lock_fd = -1;
    hmap_init(&d->by_id);
    /* A predecessor killed a moment ago may still be exiting (its threads) and hold the lock:
     * wait a little for it before giving up. */
    int rc = schedlock_take(o->home, &d->lock_fd, e);
    for (int i = 0; rc == -EBUSY && i < DAEMON_LOCK_WAIT_MS / 50; i++) {
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
        rc = schedlock_take(o->home, &d->lock_fd, e);
    }
    if (rc < 0)
        goto out_free;
    if (o->locked && (rc = o->locked(o->ready_ud, e)) < 0)
        goto out_lock;
    d->dead_after_ms = o->dead_after_ms > 0 ? o->dead_after_ms : DAEMON_DEAD_AFTER_MS;
    store_set_dead_after(d->dead_after_ms);
    if ((rc = store_open(o->store_url, &d->ctl, e)) < 0)
        goto out_lock;
    d->shared = store_shared(d->ctl);
    if ((rc = store_open(o->store_url, &d->hb, e)) < 0 || (rc = daemon_register(d, e)) < 0)
        goto out_store;
    if (d->shared)
        daemon_lose_local_workers(d);
    if ((rc = uv_loop_init(&d->loop)) < 0) {
        (void)err_set(e, rc, "cannot start the event loop: %s", err_str(rc));
        goto out_store;
    }
    struct engine_opts eo = {
        .loop = &d->loop,
        .store_url = o->store_url,
        .home = o->home,
        .parallelism = o->parallelism,
        .http_max_per_host = o->http_max_per_host,
        /* The daemon resumes runs after a crash: a task starts only once what it depends on
         * is durable, so no finished task can run again (SPEC section 5). */
        .gate_on_durable = true,
        .on_commit = o->on_commit,
        .commit_ud = o->commit_ud,
        .on_error = daemon_on_store_error,
        .ud = d,
        .fence_id = d->shared ? d->node_id : 0,
        /* On PostgreSQL workers run every try (SPEC section 12). */
        .remote = d->shared,
        .worker_heartbeat_ms = o->worker_heartbeat_ms,
        .worker_dead_after_ms = o->worker_dead_after_ms,
        .notifiers = o->notifiers,
        .nnotifiers = o->nnotifiers,
        .public_url = o->public_url,
    };
    if ((rc = engine_start(&eo, &d->e, e)) < 0)
        goto out_loop;
    for (size_t i = 0; i < o->npools; i++)
        if (o->pools[i].name)
            engine_set_pool(d->e, o->pools[i].name, o->pools[i].slots);
    uv_timer_init(&d->loop, &d->plan_timer);
    uv_timer_init(&d->loop, &d->resync_timer);
    uv_timer_init(&d->loop, &d->grace_timer);
    uv_timer_init(&d->loop, &d->drain_timer);
    uv_timer_init(&d->loop, &d->hb_timer);
    d->hb_ok_ms = d->hb_steady_ms = uv_now(&d->loop); /* registering was a beat */
    d->plan_timer.data = d->resync_timer.data = d->grace_timer.data = d->drain_timer.data = d;
    d->hb_timer.data = d;
    uv_signal_init(&d->loop, &d->sigterm);
    uv_signal_init(&d->loop, &d->sigint);
    uv_signal_init(&d->loop, &d->sighup);
    d->sigterm.data = d->sigint.data = d->sighup.data = d;
    uv_signal_start(&d->sigterm, daemon_on_signal, SIGTERM);
    uv_signal_start(&d->sigint, daemon_on_signal, SIGINT);
    uv_signal_start(&d->sighup, daemon_on_signal, SIGHUP);

    /* The doorbell: the CLI touches it after writing a request. */
    char *bell = schedlock_wake_path(o->home);
    int bfd = open(bell, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (bfd >= 0)
        close(bfd);
    uv_fs_event_init(&d->loop, &d->bell);
    d->bell.data = d;
    if (uv_fs_event_start(&d->bell, daemon_on_bell, bell, 0) == 0)
        d->bell_on = true;
    else
        daemon_close(d, (uv_handle_t *)&d->bell);
    free(bell);
    /* On PostgreSQL the CLI and the APIs, on any host, NOTIFY instead. */
    /* And, as the workers' scheduler, to baram_sched_<id>: their results (sched/remote.h). */
    char results_channel[64];
    snprintf(results_channel, sizeof results_channel, "baram_sched_%lld", (long long)d->node_id);
    const char *wake_channels[] = {EVENTS_CHANNEL_WAKE, results_channel};
    struct err le = {0};
    int lr = listen_start(&d->loop, o->store_url, wake_channels, engine_remote(d->e) ? 2 : 1,
                          daemon_on_wake, daemon_on_relisten, d, &d->wake, &le);
    if (lr < 0 && lr != -ENOTSUP)
        log_warn("cannot listen for wake-ups: requests wait for the periodic look", "error=%s",
                 log_q(err_msg(&le)));

    if (o->worker && d->shared) {
        struct worker_opts wo = *o->worker;
        wo.loop = &d->loop;
        wo.stopped = daemon_worker_stopped;
        wo.ud = d;
        if ((rc = worker_start(&wo, &d->worker, e)) < 0)
            d->worker = NULL;
    }
    if (rc < 0 || (rc = dagdir_open(&d->loop, o->dags, daemon_on_dag_change, d, &d->dir, e)) < 0) {
        d->dir = NULL;
        d->stopping = true;
        daemon_stop_wake(d);
        if (d->worker)
            worker_drain(d->worker);
        daemon_close(d, (uv_handle_t *)&d->bell);
        d->bell_on = false;
        daemon_maybe_finish(d);
        uv_run(&d->loop, UV_RUN_DEFAULT);
        goto out_loop;
    }
    d->ready_said = true;
    daemon_sync(d); /* the first one resumes every unfinished run */
    daemon_record_files(d);
    daemon_plan(d);
    uv_timer_start(&d->resync_timer, daemon_on_resync, DAEMON_RESYNC_MS, DAEMON_RESYNC_MS);
    uint64_t beat = (uint64_t)(o->heartbeat_ms > 0 ? o->heartbeat_ms : DAEMON_HEARTBEAT_MS);
    uv_timer_start(&d->hb_timer, daemon_on_beat, beat, beat);
    struct retain_opts ro = {
        .home = o->home,
        .store_url = o->store_url,
        .runs_ms = o->retention_runs_ms,
        .logs_ms = o->retention_logs_ms,
        .every_ms = o->retention_every_ms,
        .idle = daemon_retain_idle,
        .ud = d,
    };
    d->retain = retain_start(&d->loop, &ro);
    size_t counts[2] = {0, 0};
    dagdir_each(d->dir, daemon_each_file, counts);
    if (o->ready)
        o->ready(o->ready_ud, counts[0], counts[1]);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    log_info("stopped", "home=%s", log_q(o->home));
    rc = 0;
    if (d->fenced)
        rc = err_set(e, -ESTALE,
                     "scheduler %s was declared dead by the other schedulers: they run its runs "
                     "now",
                     d->node_name);

out_loop:
    uv_run(&d->loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&d->loop) == UV_EBUSY)
        log_warn("event loop closed with open handles", "home=%s", log_q(o->home));
    if (!d->fenced) {
        /* Everything it wrote is durable (the engine has stopped): the others may take its
         * runs at once rather than after dead_after. */
        struct err se = {0};
        if (store_node_stop(d->ctl, d->node_id, &se) < 0)
            log_warn("cannot record the scheduler's stop (its runs are released after "
                     "dead_after)",
                     "err=%s", log_q(err_msg(&se)));
    }
out_store:
    if (d->hb)
        store_close(d->hb);
    store_close(d->ctl);
out_lock:
    schedlock_drop(d->lock_fd);
out_free:
    for (size_t i = 0; i < d->dags.n; i++) {
        dag_free(d->dags.v[i]->dag);
        free(d->dags.v[i]->id);
        free(d->dags.v[i]);
    }
    VEC_FREE(&d->dags);
    hmap_release(&d->by_id);
    for (size_t i = 0; i < d->recent.n; i++)
        free(d->recent.v[i].run_id);
    VEC_FREE(&d->recent);
    dfile_vec_free(&d->files);
    free(d);
    return rc;
}
