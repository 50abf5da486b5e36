/*
 * runtest.c - `baram tasks test` (run_task_test in run.h): one task now,
 * outside any run and without the store, its output on the terminal; the
 * environment and templates are a run's (runenv.c), upstream outputs empty.
 * A `run` task is a process; an `http` task or a `wait` runs on this
 * function's own libuv loop with the scheduler's exec/ code (httptask,
 * waiter), started and read back through the helpers runtry.c uses, so the
 * test says what a run would ("timed out after 2s", "circuit open", ...).
 *
 * Main thread; blocks until the task ends.
 */
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
#include "dag/params.h"
#include "dag/template.h"
#include "exec/httptask.h"
#include "exec/spawn.h"
#include "exec/waiter.h"
#include "sched/engine.h"
#include "sched/logprep.h"
#include "sched/retry.h"
#include "sched/sched.h"
#include "sched/trigger.h"
#include "store/store.h"

/* ---- `baram tasks test` ---- */

/* The task runs in its own session, so Ctrl-C (or a hangup) at the terminal reaches baram
 * alone: these signals kill the task's process group, as for `baram run`, instead of killing
 * baram and leaving the task running; they cancel an http request or a wait. A signal ignored
 * at start (nohup) stays ignored. */
static const int run_test_signals[] = {SIGINT, SIGTERM, SIGHUP};

struct run_test_ctx {
    struct run_try_end end;
    struct spawn *sp;    /* until run_test_exit */
    struct httptask *ht; /* until run_test_http_done */
    struct waiter *wt;   /* until run_test_wait_done */
    int64_t timeout_ms;  /* of a process */
    uv_signal_t sig[ARRAY_SIZE(run_test_signals)];
    bool sig_on[ARRAY_SIZE(run_test_signals)];
};

static void run_test_signal(uv_signal_t *h, int signum)
{
    struct run_test_ctx *c = h->data;
    (void)signum;
    if (c->sp)
        spawn_kill(c->sp);
    if (c->ht)
        httptask_cancel(c->ht);
    if (c->wt)
        waiter_cancel(c->wt);
}

/* Watched from before the start, so a signal cannot slip in between. */
static void run_test_watch(uv_loop_t *loop, struct run_test_ctx *c)
{
    for (size_t i = 0; i < ARRAY_SIZE(run_test_signals); i++) {
        struct sigaction old;
        if (sigaction(run_test_signals[i], NULL, &old) < 0 || old.sa_handler == SIG_IGN)
            continue;
        uv_signal_init(loop, &c->sig[i]);
        c->sig[i].data = c;
        uv_signal_start(&c->sig[i], run_test_signal, run_test_signals[i]);
        c->sig_on[i] = true;
    }
}

static void run_test_unwatch(struct run_test_ctx *c)
{
    for (size_t i = 0; i < ARRAY_SIZE(run_test_signals); i++)
        if (c->sig_on[i])
            uv_close((uv_handle_t *)&c->sig[i], NULL);
    memset(c->sig_on, 0, sizeof(c->sig_on));
}

/* The try ended (c->end is set): nothing is left to signal. */
static void run_test_ended(struct run_test_ctx *c)
{
    c->sp = NULL;
    c->ht = NULL;
    c->wt = NULL;
    run_test_unwatch(c);
}

static void run_test_exit(void *ud, const struct spawn_result *res)
{
    struct run_test_ctx *c = ud;
    c->end = (struct run_try_end){
        .exit_code = res->exit_code,
        .term_signal = res->term_signal,
        .timed_out = res->timed_out,
        .killed = res->killed,
        .message = run__exit_message(res, c->timeout_ms),
    };
    run_test_ended(c);
}

static void run_test_http_done(void *ud, const struct httptask_result *res)
{
    struct run_test_ctx *c = ud;
    free(run__http_end(res, &c->end));
    run_test_ended(c);
}

static void run_test_wait_done(void *ud, const struct waiter_result *res)
{
    struct run_test_ctx *c = ud;
    free(run__wait_end(res, &c->end));
    run_test_ended(c);
}

/* Fills e with msg, the words a run helper (runenv.c, runtry.c) made for a try, or with the
 * code's text when there are none; returns rc. msg is malloc'd, as in a run it goes on into
 * the task instance's record: freed here. */
static int run_test_fail(struct err *e, int rc, char *msg)
{
    (void)err_set(e, rc, "%s", msg ? msg : "");
    free(msg);
    return rc;
}

/* Starts the process of a `run` task: 0, or a negative code with *e filled. */
static int run_test_shell(struct run *r, struct run_inst *in, uv_loop_t *loop, const char *out_path,
                          const char *cmd_file, struct run_test_ctx *c, struct err *e)
{
    const struct dag_task *dt = &r->dag->tasks[in->task];
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    char *msg = NULL;
    int rc = run__expand(r, dt->run, in, in->task, &cmd, &msg);
    if (rc < 0) {
        buf_release(&cmd);
        return run_test_fail(e, rc, msg);
    }
    run_strv env = {0}, owned = {0};
    rc = run__env_try(r, in, out_path, cmd.len, &env, &owned, &msg);
    struct spawn_opts so = {.cmd = cmd.data,
                            .cmd_file = cmd_file,
                            .cwd = dt->dir ? dt->dir : r->dag->dir,
                            .env = env.v,
                            .inherit_stdio = true,
                            .timeout_ms = dt->timeout_ms,
                            .grace_ms = DAG_KILL_GRACE_MS};
    c->timeout_ms = dt->timeout_ms;
    run_test_watch(loop, c);
    if (rc == 0)
        rc = run__spawn(loop, &so, run_test_exit, c, &c->sp, &msg);
    run__env_try_release(&env, &owned);
    buf_release(&cmd);
    if (rc < 0) {
        c->sp = NULL;
        if (!msg)
            return err_set(e, rc, "cannot start the process: %s", err_str(rc));
        return run_test_fail(e, rc, msg);
    }
    return 0;
}

/* Starts the request of an `http` task or the checks of a `wait` on this loop, with the
 * scheduler's code (exec/httptask.h, exec/waiter.h): 0, or a negative code with *e filled.
 * *client is made when needed (the caller frees it). */
static int run_test_in_loop(struct run *r, struct run_inst *in, uv_loop_t *loop,
                            int http_max_per_host, struct httptask_client **client,
                            struct run_test_ctx *c, struct err *e)
{
    bool http = r->dag->tasks[in->task].kind == TASK_HTTP;
    struct run_http_call hc = {0};
    struct run_wait_call wc = {0};
    char *msg = NULL;
    int rc = http ? run__http_call_init(r, in, &hc, &msg) : run__wait_call_init(r, in, &wc, &msg);
    if (rc < 0)
        (void)run_test_fail(e, rc, msg);
    if (rc == 0 && (http || wc.opts.http_url)) {
        struct httptask_client_opts o = {
            .host_limit = http_max_per_host > 0 ? (unsigned)http_max_per_host : 0};
        rc = httptask_client_new(loop, &o, client);
        if (rc < 0) {
            *client = NULL;
            (void)err_set(e, rc, "cannot start the http client: %s", err_str(rc));
        }
    }
    if (rc == 0) {
        fprintf(stderr, "%s\n", http ? hc.line : wc.line);
        run_test_watch(loop, c);
        rc = http ? httptask_start(*client, &hc.req, run_test_http_done, c, &c->ht)
                  : waiter_start(loop, *client, &wc.opts, run_test_wait_done, c, &c->wt);
        if (rc < 0) {
            c->ht = NULL;
            c->wt = NULL;
            (void)err_set(e, rc, "cannot start the %s: %s", http ? "request" : "wait", err_str(rc));
        }
    }
    run__http_call_release(&hc);
    run__wait_call_release(&wc);
    return rc;
}

void run_test_result_release(struct run_test_result *res)
{
    free(res->message);
    free(res->output);
    memset(res, 0, sizeof(*res));
}

int run_task_test(const struct dag *dag, uint32_t task, const struct params_override *params,
                  size_t nparams, int64_t logical_at_ms, int http_max_per_host,
                  struct run_test_result *res, struct err *e)
{
    memset(res, 0, sizeof(*res));
    res->exit_code = -1;
    if (task >= dag->ntasks)
        return err_set(e, -EINVAL, "no such task");
    const struct dag_task *dt = &dag->tasks[task];
    if (dt->mapped && (dt->for_each || dt->nitems == 0))
        return err_set(e, -EINVAL,
                       "cannot test a mapped task whose items come from upstream outputs");
    struct diag d;
    diag_init(&d);
    if (params_check(dag, params, nparams, &d) < 0) {
        run__diag_err(&d, -EINVAL, e);
        diag_release(&d);
        return -EINVAL;
    }
    diag_release(&d);

    struct run *r = xcalloc(1, sizeof(*r));
    uv_loop_t loop;
    int rc = uv_loop_init(&loop);
    if (rc < 0) {
        free(r);
        return err_set(e, rc, "cannot start the event loop: %s", err_str(rc));
    }
    char iso[32];
    when_format_iso(when_now_ms(), iso, sizeof(iso));
    snprintf(r->run_id, sizeof(r->run_id), "test__%s", iso);
    r->dag = dag;
    r->logical_at_ms = logical_at_ms;
    when_format_date(logical_at_ms, r->ds, sizeof(r->ds));
    when_format_iso(logical_at_ms, r->ts, sizeof(r->ts));
    run__params_init(r, params, nparams);
    r->tasks = xcalloc(dag->ntasks ? dag->ntasks : 1, sizeof(*r->tasks));
    for (uint32_t t = 0; t < dag->ntasks; t++) {
        r->tasks[t].env_name = run__env_name("OUTPUT_", dag->tasks[t].name);
        r->tasks[t].complete = true; /* upstream outputs are empty */
    }
    run__env_init(r, NULL, "variables are not read outside a run (tasks test)");
    uint32_t ii =
        run__add_inst(r, task, dt->mapped ? 0 : -1, dt->mapped ? xstrdup(dt->items[0]) : NULL);
    struct run_inst *in = run__inst_at(r, ii);
    in->try_number = 1;

    char tmpl[] = "/tmp/baram-test-XXXXXX";
    const char *tmpdir = mkdtemp(tmpl);
    char *out_path = tmpdir ? xasprintf("%s/output", tmpdir) : NULL;
    char *cmd_file = tmpdir ? xasprintf("%s/cmd.sh", tmpdir) : NULL; /* a long command */
    struct run_test_ctx c = {0};
    struct httptask_client *client = NULL;
    if (dt->kind == TASK_RUN)
        rc = run_test_shell(r, in, &loop, out_path, cmd_file, &c, e);
    else
        rc = run_test_in_loop(r, in, &loop, http_max_per_host, &client, &c, e);
    if (rc < 0)
        run_test_unwatch(&c);
    uv_run(&loop, UV_RUN_DEFAULT); /* the try; or, when it did not start, the closes */
    if (rc == 0) {
        bool ok = (c.end.exit_code == 0 || c.end.exit_code == 99 || c.end.met) && !c.end.timed_out;
        res->ok = ok;
        res->skipped = ok && c.end.exit_code == 99;
        res->exit_code = c.end.exit_code;
        res->message = c.end.message;
        res->output = c.end.output; /* an http task's response body */
        res->output_len = c.end.output_len;
        if (!ok && !res->message)
            res->message = xstrdup(c.end.killed ? "cancelled" : "failed");
    } else {
        free(c.end.message);
        free(c.end.output);
    }
    httptask_client_free(client);
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
    run__release(r);
    free(r);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (uv_loop_close(&loop) == UV_EBUSY) {
        BUG("tasks test loop still has open handles");
    }
    return rc < 0 ? rc : 0;
}
