/*
 * runtest.c - `baram tasks test` (run_task_test in run.h): one task now,
 * outside any run and without the store, its output on the terminal; the
 * environment and templates are a run's (runenv.c), upstream outputs empty.
 *
 * Main thread; blocks until the task ends.
 */
#include "sched/run_priv.h"

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
        *errmsg = xasprintf("cannot start the event loop: %s", err_str(rc));
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
    char *out_path = tmpdir ? xasprintf("%s/output", tmpdir) : NULL;
    char *cmd_file = tmpdir ? xasprintf("%s/cmd.sh", tmpdir) : NULL; /* a long command */
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    char *msg = NULL;
    rc = run_expand(r, dt->run, in, task, &cmd, &msg);
    if (rc < 0) {
        *errmsg = msg;
    } else {
        run_strv env = {0}, owned = {0};
        rc = run_env_try(r, in, out_path, cmd.len, &env, &owned, &msg);
        struct run_test_ctx c = {0};
        struct spawn_opts so = {.cmd = cmd.data,
                                .cmd_file = cmd_file,
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
        if (rc == 0)
            rc = spawn_check(&so, &msg);
        if (rc == 0)
            rc = spawn_start(&loop, &so, run_test_exit, &c, &sp);
        for (size_t i = 0; i < owned.n; i++)
            free(owned.v[i]);
        VEC_FREE(&owned);
        VEC_FREE(&env);
        if (rc < 0) {
            *errmsg = msg ? msg : xasprintf("cannot start the process: %s", err_str(rc));
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
    if (cmd_file) {
        unlink(cmd_file);
        free(cmd_file);
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
