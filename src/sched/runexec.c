/*
 * runexec.c - run_execute(), the one-run front door (run.h): `baram run`
 * claims a run id in the store, makes a loop and an engine of its own,
 * begins the run on it, cancels it on SIGINT/SIGTERM (and SIGHUP unless
 * ignored), and returns once the run has ended and the engine has stopped
 * (every change durable).
 *
 * Main thread; blocks until the run ends. The run is recorded with owner
 * "cli", so a scheduler never resumes it as its own.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "dag/params.h"
#include "sched/engine.h"
#include "sched/run.h"
#include "sched/run_int.h"
#include "store/store.h"

struct runexec {
    uv_loop_t loop;
    struct engine *e;
    struct run *r;
    enum run_state state;
    struct err *err;   /* the caller's, may be NULL */
    bool store_failed; /* the run ended on a store failure: *err says which */
    uv_signal_t sig[3];
    bool sig_on[3];
    bool engine_done;
};

static const int runexec_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void runexec_on_signal(uv_signal_t *h, int signum)
{
    struct runexec *x = h->data;
    log_info("cancelling the run", "signal=%d", signum);
    if (x->r)
        run_cancel(x->r);
}

static void runexec_close_signals(struct runexec *x)
{
    for (size_t i = 0; i < ARRAY_SIZE(runexec_signals); i++)
        if (x->sig_on[i]) {
            x->sig_on[i] = false;
            uv_close((uv_handle_t *)&x->sig[i], NULL);
        }
}

static void runexec_engine_stopped(void *ud)
{
    struct runexec *x = ud;
    x->engine_done = true;
}

static void runexec_ended(void *ud, struct run *r)
{
    struct runexec *x = ud;
    x->state = run_get_state(r);
    const char *err = run_get_error(r);
    if (err) {
        x->store_failed = true;
        (void)err_set(x->err, ERR_DB, "%s", err);
    }
    run_free(r);
    x->r = NULL;
    runexec_close_signals(x);
    engine_stop(x->e, runexec_engine_stopped, x);
}

/* The run was claimed (a 'queued' record) but cannot start: record it as failed, so that it
 * does not stay queued forever. Best effort: the store may be what failed. */
static void runexec_unclaim(const char *store_url, const char *run_id)
{
    struct store *s = NULL;
    if (store_open(store_url, &s, NULL) < 0)
        return;
    struct run_rec rec;
    if (store_get_run(s, run_id, &rec, NULL) == 0) {
        rec.state = RUN_FAILED;
        rec.ended_at_ms = when_now_ms();
        if (store_begin(s, NULL) == 0 &&
            (store_put_run(s, &rec, NULL) < 0 || store_commit(s, NULL) < 0))
            store_rollback(s);
        run_rec_release(&rec);
    }
    store_close(s);
}

static void runexec_drain(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_DEFAULT);
    if (uv_loop_close(loop) == UV_EBUSY) {
        BUG("run loop still has open handles");
    }
}

int run_execute(const struct run_opts *o, struct run_result *res, struct err *e)
{
    memset(res, 0, sizeof(*res));
    res->state = RUN_FAILED;
    const struct dag *dag = o->dag;
    struct diag d;
    diag_init(&d);
    if (params_check(dag, o->params, o->nparams, &d) < 0) {
        run__diag_err(&d, -EINVAL, e);
        diag_release(&d);
        return -EINVAL;
    }
    diag_release(&d);

    /* Claim the id: prefix + ISO time, one transaction with the check. */
    int64_t now = when_now_ms();
    char *conf = params_conf_json(dag, o->params, o->nparams);
    const char *prefix = o->type == RUN_MANUAL     ? "manual__"
                         : o->type == RUN_BACKFILL ? "backfill__"
                                                   : "scheduled__";
    struct run_rec claim = {
        .dag_id = dag->id,
        .state = RUN_QUEUED,
        .type = o->type,
        .logical_at_ms = o->logical_at_ms,
        .queued_at_ms = now,
        .started_at_ms = -1,
        .ended_at_ms = -1,
        .conf = conf,
        .dag_hash = (char *)dag->hash,
        .dag_path = dag->path,
        .owner = "cli",
    };
    struct store *s = NULL;
    int rc = store_open(o->store_url, &s, e);
    if (rc < 0) {
        free(conf);
        return rc;
    }
    struct err se = {0}; /* the store's words, which ours wrap */
    rc = store_claim_run(s, prefix, o->type == RUN_MANUAL ? now : o->logical_at_ms, &claim,
                         res->run_id, sizeof(res->run_id), &se);
    if (rc < 0) {
        (void)err_set(e, rc, "cannot write to the store: %s", err_msg(&se));
        store_close(s);
        free(conf);
        return rc;
    }
    /* vars: read before the loop starts, as the daemon reads them on its pool */
    struct run_vars *vars =
        dag->uses_vars
            ? run_vars_read(s, o->home, (const char *const *)dag->var_keys, dag->nvar_keys)
            : NULL;
    store_close(s);

    struct runexec *x = xcalloc(1, sizeof(*x));
    x->err = e;
    if ((rc = uv_loop_init(&x->loop)) < 0) {
        (void)err_set(e, rc, "cannot start the event loop: %s", err_str(rc));
        runexec_unclaim(o->store_url, res->run_id);
        run_vars_free(vars);
        free(conf);
        free(x);
        return rc;
    }
    struct engine_opts eo = {
        .loop = &x->loop,
        .store_url = o->store_url,
        .home = o->home,
        .parallelism = o->parallelism,
        .http_max_per_host = o->http_max_per_host,
        .gate_on_durable = o->gate_on_durable,
        .notifiers = o->notifiers,
        .nnotifiers = o->nnotifiers,
        .public_url = o->public_url,
        .wait_notify = true, /* `baram run` ends once its notifications are sent or failed */
    };
    rc = engine_start(&eo, &x->e, e);
    if (rc < 0) {
        runexec_unclaim(o->store_url, res->run_id);
        run_vars_free(vars);
        free(conf);
        runexec_drain(&x->loop);
        free(x);
        return rc;
    }
    for (size_t i = 0; i < o->npools; i++)
        if (o->pools[i].name)
            engine_set_pool(x->e, o->pools[i].name, o->pools[i].slots);
    if (o->handle_signals) {
        for (size_t i = 0; i < ARRAY_SIZE(runexec_signals); i++) {
            /* A hangup (the terminal closed) would kill baram and leave the tries, each in
             * its own session, running on and the run 'running' in the store: it cancels
             * the run too, unless baram was told to ignore it (nohup). */
            struct sigaction old;
            if (runexec_signals[i] == SIGHUP &&
                (sigaction(SIGHUP, NULL, &old) < 0 || old.sa_handler == SIG_IGN))
                continue;
            uv_signal_init(&x->loop, &x->sig[i]);
            x->sig[i].data = x;
            uv_signal_start(&x->sig[i], runexec_on_signal, runexec_signals[i]);
            x->sig_on[i] = true;
        }
    }
    struct run_spec sp = {
        .dag = dag,
        .run_id = res->run_id,
        .type = o->type,
        .logical_at_ms = o->logical_at_ms,
        .queued_at_ms = now,
        .started_at_ms = now,
        .conf = conf,
        .params = o->params,
        .nparams = o->nparams,
        .owner = "cli",
        .progress = o->progress,
        .progress_ud = o->progress_ud,
        .vars = vars, /* run_begin takes them */
    };
    rc = run_begin(x->e, &sp, runexec_ended, x, &x->r, e);
    free(conf);
    if (rc < 0) {
        runexec_unclaim(o->store_url, res->run_id);
        runexec_close_signals(x);
        engine_stop(x->e, runexec_engine_stopped, x);
        runexec_drain(&x->loop);
        free(x);
        return rc;
    }
    uv_run(&x->loop, UV_RUN_DEFAULT);
    res->state = x->state;
    rc = x->store_failed ? ERR_DB : 0;
    runexec_drain(&x->loop);
    free(x);
    return rc;
}
