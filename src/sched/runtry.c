/*
 * runtry.c - the tries of a run's task instances (see run.c): a slot is
 * taken (run__sched_start), the try starts as a process, an HTTP request or a
 * wait, and every kind reports through one completion path (run_try_done)
 * that decides success, skip, retry or failure. Also the first log files,
 * made ahead on the thread pool on disks (logprep.h), and the outputs read
 * back (paths from logpath.h).
 *
 * Loop thread only; the try contexts are owned by the run until their
 * executor calls back.
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
#include "dag/duration.h"
#include "dag/template.h"
#include "exec/httptask.h"
#include "exec/mask.h"
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

/* ---- tries ---- */

static void run_try_done(struct run *r, uint32_t ii, struct run_try_end *e);

void run__try_fail_now(struct run *r, uint32_t ii, char *msg)
{
    struct run_try_end e = {.exit_code = -1, .message = msg};
    run_try_done(r, ii, &e);
}

static void run_try_free(struct run_try *tr)
{
    free(tr->log_path);
    if (tr->out_scratch)
        (void)unlink(tr->out_path); /* read (or not wanted): only the store keeps it */
    free(tr->out_path);
    free(tr);
}

void run__log_append(const char *path, const char *msg)
{
    if (!path)
        return;
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    struct buf b = BUF_INIT(BUF_NO_MAX);
    RUN_IGN(buf_addf(&b, "baram: %s\n", msg));
    ssize_t w = write(fd, b.data, b.len);
    (void)w;
    buf_release(&b);
    close(fd);
}

void run__log_append_masked(const char *path, const char *msg, const char *const *vals,
                            const size_t *lens, size_t n)
{
    if (!n || !msg) {
        run__log_append(path, msg);
        return;
    }
    struct mask m;
    mask_init(&m, vals, lens, n);
    char *masked = mask_string(&m, msg, strlen(msg), NULL);
    mask_release(&m);
    run__log_append(path, masked ? masked : "(a line that could not be masked)");
    free(masked);
}

void run__log_append_run(const struct run *r, const char *path, const char *msg)
{
    const char *const *vals;
    const size_t *lens;
    size_t n = run__vars_mask(r, &vals, &lens);
    run__log_append_masked(path, msg, vals, lens, n);
}

/* A line of baram's own in a try's log (an http or wait task's, a failure), the run's secrets
 * masked in it. */
static void run_try_log(struct run_try *tr, const char *msg)
{
    run__log_append_run(tr->r, tr->log_path, msg);
}

int run__read_output(const char *path, char **out, size_t *len, char **msg)
{
    *out = NULL;
    *len = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return 0;
    }
    if (st.st_size > DAG_OUTPUT_MAX) {
        *msg = xasprintf("output is %lld bytes, over the 64 KiB limit", (long long)st.st_size);
        close(fd);
        return -1;
    }
    char *p = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, p + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    /* It may have grown since fstat: one more read tells. */
    char extra;
    if (read(fd, &extra, 1) == 1) {
        free(p);
        struct stat st2;
        long long sz = fstat(fd, &st2) == 0 ? (long long)st2.st_size : DAG_OUTPUT_MAX + 1;
        close(fd);
        if (sz > DAG_OUTPUT_MAX) {
            *msg = xasprintf("output is %lld bytes, over the 64 KiB limit", sz);
            return -1;
        }
        return run__read_output(path, out, len, msg);
    }
    close(fd);
    p[got] = 0;
    *out = p;
    *len = got;
    return 0;
}

/* The common end of every try's completion callback (process, http, wait): the try is over,
 * decide what it means, then pump and close the event's transaction (opened by run__cork). */
void run__try_finish(struct run_try *tr, struct run_try_end *e)
{
    struct run *r = tr->r;
    uint32_t ii = tr->inst;
    run__inst_at(r, ii)->cur = NULL;
    run_try_free(tr);
    run_try_done(r, ii, e);
    if (!r->no_pump)
        run__pump(r);
    else
        run__mark(r);
    run__uncork(r);
}

static void run_on_exit(void *ud, const struct spawn_result *res)
{
    struct run_try *tr = ud;
    struct run *r = tr->r;
    run__cork(r);
    uint32_t ii = tr->inst;
    struct run_try_end e = {
        .exit_code = res->exit_code,
        .term_signal = res->term_signal,
        .timed_out = res->timed_out,
        .killed = res->killed,
    };
    char *msg = NULL;
    e.message = run__exit_message(res, r->dag->tasks[run__inst_at(r, ii)->task].timeout_ms);
    if (res->timed_out) {
        run_try_log(tr, e.message);
    } else if (!e.message) {
        if (run__read_output(tr->out_path, &e.output, &e.output_len, &msg) < 0) {
            e.exit_code = -1;
            e.message = msg;
            run_try_log(tr, msg);
        } else if (!e.output) {
            tr->out_scratch = false; /* no file: nothing to remove */
        }
    }
    run__try_finish(tr, &e);
}

char *run__exit_message(const struct spawn_result *res, int64_t timeout_ms)
{
    char when[32];
    if (res->timed_out) {
        duration_format(timeout_ms, when, sizeof(when));
        return xasprintf("timed out after %s", when);
    }
    if (res->term_signal)
        return xasprintf("killed by signal %d (%s)", res->term_signal, strsignal(res->term_signal));
    if (res->exit_code == 0 || res->exit_code == 99)
        return NULL;
    return xasprintf("exit code %d", res->exit_code);
}

/* ---- log files made ahead (logprep.h) ---- */

struct run_prep_ctx {
    struct run *r;
    uint32_t task;
};

/* The first log file of the unmapped task t (logpath.h). Malloc'd. */
static char *run_first_log(struct run *r, uint32_t t)
{
    return logpath_try(r->logdir, r->dag->tasks[t].name, -1, 1, "log");
}

/* The unmapped process task t will not run after all: remove what was prepared for it. */
void run__prep_drop(struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    if (rt->prep == RUN_PREP_BUSY) {
        rt->prep_drop = true; /* removed when the preparation reports */
    } else if (rt->prep == RUN_PREP_DONE) {
        char *log = run_first_log(r, t);
        logprep_remove(r->e->loop, log);
        free(log);
        rt->prep = RUN_PREP_NONE;
    }
}

void run__prep_done(void *ud, int rc)
{
    struct run_prep_ctx *c = ud;
    struct run *r = c->r;
    struct run_task *rt = &r->tasks[c->task];
    rt->prep = rc == 0 ? RUN_PREP_DONE : RUN_PREP_NONE; /* on failure run_start tries inline */
    if (rt->prep_drop || r->phase >= RUN_PH_ENDING)
        run__prep_drop(r, c->task);
    free(c);
    if (--r->nprep_busy == 0 && r->phase == RUN_PH_STOPPING)
        run__stop(r);
}

/* Queues the making of task t's first log file when it is an unmapped process task that
 * has not started: called while its last upstream runs or while it waits for a slot. */
void run__prep(struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    const struct dag_task *dt = &r->dag->tasks[t];
    if (!r->e->prep_on || rt->prep != RUN_PREP_NONE || rt->prep_drop || dt->mapped ||
        dt->kind != TASK_RUN)
        return;
    if (rt->expanded && run__inst_at(r, rt->inst_start)->try_number > 0)
        return;
    struct run_prep_ctx *c = xmalloc(sizeof(*c));
    c->r = r;
    c->task = t;
    rt->prep = RUN_PREP_BUSY;
    r->nprep_busy++;
    VEC_PUSH(&r->prepped, t);
    char *log = run_first_log(r, t);
    logprep_create(r->e->loop, log, run__prep_done, c);
    free(log);
}

/* Instance ii has just started: prepare each downstream task that now waits for it alone. */
static void run_prep_downstream(struct run *r, uint32_t ii)
{
    const struct graph *g = &r->dag->graph;
    uint32_t t = run__inst_at(r, ii)->task;
    for (uint32_t k = g->down_start[t]; k < g->down_start[t + 1]; k++) {
        uint32_t d = g->down[k];
        if (!r->tasks[d].decided && r->tasks[d].cnt.pending == 1)
            run__prep(r, d);
    }
}

/* The run is over: remove what was prepared for tasks that never started. */
void run__prep_cleanup(struct run *r)
{
    for (size_t i = 0; i < r->prepped.n; i++) {
        uint32_t t = r->prepped.v[i];
        struct run_task *rt = &r->tasks[t];
        if (!rt->expanded || run__inst_at(r, rt->inst_start)->try_number == 0)
            run__prep_drop(r, t);
    }
    r->prepped.n = 0;
}

/* Starts a `run` task's try as a process. */
static void run_start_shell(struct run *r, uint32_t ii, struct run_try *tr)
{
    struct run_inst *in = run__inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    char *msg = NULL;
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    if (run__expand(r, t->run, in, in->task, &cmd, &msg) < 0) {
        run_try_log(tr, msg);
        buf_release(&cmd);
        run_try_free(tr);
        run__try_fail_now(r, ii, msg);
        return;
    }
    run_strv env = {0}, owned = {0};
    /* <task>.<try>.sh beside its log: where a command too long for exec runs from */
    char *cmd_file = logpath_try(r->logdir, t->name, in->map_index, in->try_number, "sh");
    int rc = run__env_try(r, in, tr->out_path, cmd.len, &env, &owned, &msg);
    if (rc == 0) {
        struct spawn_opts so = {
            .cmd = cmd.data,
            .cmd_file = cmd_file,
            .cwd = t->dir ? t->dir : r->dag->dir,
            .env = env.v,
            .log_path = tr->log_path,
            .timeout_ms = t->timeout_ms,
            .grace_ms = DAG_KILL_GRACE_MS,
        };
        so.nmask = run__vars_mask(r, &so.mask_vals, &so.mask_lens);
        rc = run__spawn(r->e->loop, &so, run_on_exit, tr, &tr->sp, &msg);
    }
    run__env_try_release(&env, &owned);
    free(cmd_file);
    buf_release(&cmd);
    if (rc < 0) {
        run_try_log(tr, msg);
        run_try_free(tr);
        run__try_fail_now(r, ii, msg);
        return;
    }
    in->pid = spawn_pid(tr->sp);
    in->cur = tr;
    if (r->e)
        engine__note_latency(r->e, when_mono_ns() - in->ready_ns);
}

/* Whether path is not a folder we can enter: asked only once a spawn has failed. */
static bool run_folder_missing(const char *path)
{
    struct stat st;
    return stat(path, &st) < 0 || !S_ISDIR(st.st_mode);
}

int run__spawn(uv_loop_t *loop, const struct spawn_opts *so, spawn_exit_fn cb, void *ud,
               struct spawn **out, char **msg)
{
    int rc = spawn_check(so, msg);
    if (rc < 0)
        return rc;
    rc = spawn_start(loop, so, cb, ud, out);
    if (rc == -E2BIG) /* spawn_check passed: the kernel counts what it does not see */
        *msg = xstrdup("cannot start the process: its command and environment are over what "
                       "exec takes (E2BIG)");
    else if (rc < 0 && so->cwd && run_folder_missing(so->cwd)) /* a task's `dir` */
        *msg = xasprintf("cannot start the process: its working folder '%s' does not exist or "
                         "is not a folder",
                         so->cwd);
    else if (rc < 0)
        *msg = xasprintf("cannot start the process: %s", err_str(rc));
    return rc;
}

/* ---- in-loop task kinds: http and wait (exec/httptask.h, exec/waiter.h) ---- */

static int run_http_client(struct run *r, char **msg)
{
    return engine__http(r->e, msg);
}

int run__http_call_init(struct run *r, struct run_inst *in, struct run_http_call *hc, char **msg)
{
    const struct dag_http *h = &r->dag->tasks[in->task].http;
    buf_init(&hc->url, 64 * 1024);
    buf_init(&hc->body, DAG_OUTPUT_MAX * 16);
    hc->line = NULL;
    hc->headers = xcalloc(h->nheaders ? h->nheaders : 1, sizeof(*hc->headers));
    for (size_t i = 0; i < h->nheaders; i++)
        hc->headers[i] = (struct httptask_header){h->headers[i].name, h->headers[i].value};
    if (run__expand(r, h->url, in, in->task, &hc->url, msg) < 0 ||
        (h->body && run__expand(r, h->body, in, in->task, &hc->body, msg) < 0))
        return -EINVAL;
    hc->req = (struct httptask_req){
        .method = h->method,
        .url = hc->url.data,
        .body = h->body ? hc->body.data : NULL,
        .body_len = h->body ? hc->body.len : 0,
        .headers = hc->headers,
        .nheaders = h->nheaders,
        .expect = h->expect,
        .nexpect = h->nexpect,
        .timeout_ms = h->timeout_ms, /* the task's timeout applied (dag.h) */
        .cb_failures = h->cb_failures,
        .cb_reset_ms = h->cb_reset_ms,
        .body_max = DAG_OUTPUT_MAX,
    };
    char *shown = httptask_redact_url(hc->url.data); /* no credentials or tokens in logs */
    hc->line = xasprintf("%s %s", h->method ? h->method : "GET", shown);
    free(shown);
    return 0;
}

void run__http_call_release(struct run_http_call *hc)
{
    buf_release(&hc->url);
    buf_release(&hc->body);
    free(hc->headers);
    hc->headers = NULL;
    free(hc->line);
    hc->line = NULL;
}

char *run__http_end(const struct httptask_result *res, struct run_try_end *e)
{
    *e = (struct run_try_end){
        .exit_code = -1,
        .met = res->ok,
        .killed = res->cancelled,
        .hold_ms = res->circuit_open ? res->trial_in_ms : 0,
        .message = res->ok ? NULL : xstrdup(res->message),
    };
    if (res->body_len > 0) {
        e->output = xmemdup(res->body, res->body_len + 1);
        e->output_len = res->body_len;
    }
    return xasprintf("%s (%lld ms)%s", res->message, (long long)res->elapsed_ms,
                     res->body_cut ? ", response cut at 64 KiB" : "");
}

/* The end of an http or wait try: its log line (taken) goes to the log first. */
static void run_try_finish_logged(struct run_try *tr, struct run_try_end *e, char *line)
{
    run__cork(tr->r);
    run_try_log(tr, line);
    free(line);
    run__try_finish(tr, e);
}

static void run_on_http_done(void *arg, const struct httptask_result *res)
{
    struct run_try_end e;
    char *line = run__http_end(res, &e);
    run_try_finish_logged(arg, &e, line);
}

static void run_start_http(struct run *r, uint32_t ii, struct run_try *tr)
{
    struct run_inst *in = run__inst_at(r, ii);
    char *msg = NULL;
    struct run_http_call hc;
    if (run__http_call_init(r, in, &hc, &msg) < 0 || run_http_client(r, &msg) < 0) {
        run_try_log(tr, msg);
        run__http_call_release(&hc);
        run_try_free(tr);
        run__try_fail_now(r, ii, msg);
        return;
    }
    run_try_log(tr, hc.line);
    in->cur = tr;
    if (httptask_start(r->e->http, &hc.req, run_on_http_done, tr, &tr->ht) < 0) {
        /* Not expected (failures come through the callback), but never leave the try. */
        in->cur = NULL;
        run_try_free(tr);
        run__try_fail_now(r, ii, xstrdup("cannot start the http request"));
    }
    run__http_call_release(&hc);
}

int run__wait_call_init(struct run *r, struct run_inst *in, struct run_wait_call *wc, char **msg)
{
    const struct dag_wait *w = &r->dag->tasks[in->task].wait;
    buf_init(&wc->what, 64 * 1024);
    wc->file = wc->line = NULL;
    const struct template *tp = w->file ? w->file : w->http_url;
    if (!tp) {
        *msg = xstrdup("wait task without a condition");
        return -EINVAL;
    }
    if (run__expand(r, tp, in, in->task, &wc->what, msg) < 0)
        return -EINVAL;
    if (w->file)
        wc->file = wc->what.data[0] == '/' ? xstrdup(wc->what.data)
                                           : xasprintf("%s/%s", r->dag->dir, wc->what.data);
    wc->opts = (struct waiter_opts){
        .file = wc->file,
        .http_url = w->http_url ? wc->what.data : NULL,
        .every_ms = w->every_ms,
        .timeout_ms = w->timeout_ms, /* the task's timeout applied (dag.h) */
    };
    wc->line = xasprintf("waiting for %s '%s'", wc->file ? "file" : "url",
                         wc->file ? wc->file : wc->what.data);
    return 0;
}

void run__wait_call_release(struct run_wait_call *wc)
{
    buf_release(&wc->what);
    free(wc->file);
    free(wc->line);
    wc->file = wc->line = NULL;
}

char *run__wait_end(const struct waiter_result *res, struct run_try_end *e)
{
    *e = (struct run_try_end){
        .exit_code = -1,
        .met = res->outcome == WAITER_MET,
        .hold_ms = res->outcome == WAITER_CIRCUIT_OPEN ? res->trial_in_ms : 0,
        .timed_out = res->outcome == WAITER_TIMED_OUT,
        .killed = res->outcome == WAITER_CANCELLED,
        .message = res->outcome == WAITER_MET ? NULL : xstrdup(res->message),
    };
    return xasprintf("%s (%u checks, %lld ms)", res->message, res->checks,
                     (long long)res->elapsed_ms);
}

static void run_on_wait_done(void *arg, const struct waiter_result *res)
{
    struct run_try_end e;
    char *line = run__wait_end(res, &e);
    run_try_finish_logged(arg, &e, line);
}

static void run_start_wait(struct run *r, uint32_t ii, struct run_try *tr)
{
    struct run_inst *in = run__inst_at(r, ii);
    char *msg = NULL;
    struct run_wait_call wc;
    if (run__wait_call_init(r, in, &wc, &msg) < 0 ||
        (wc.opts.http_url && run_http_client(r, &msg) < 0)) {
        run_try_log(tr, msg);
        run__wait_call_release(&wc);
        run_try_free(tr);
        run__try_fail_now(r, ii, msg);
        return;
    }
    run_try_log(tr, wc.line);
    in->cur = tr;
    int rc = waiter_start(r->e->loop, r->e->http, &wc.opts, run_on_wait_done, tr, &tr->wt);
    run__wait_call_release(&wc);
    if (rc < 0) {
        in->cur = NULL;
        run_try_free(tr);
        run__try_fail_now(r, ii, xasprintf("cannot start the wait: %s", err_str(rc)));
        return;
    }
    /* A wait holds no slot while it waits (SPEC section 7). */
    engine__slot_done(r->e, r, ii);
}

/* Submits the 'running' records of an instance's current try if they are still pending. */
void run__flush_running(struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    if (!in->rec_pending)
        return;
    in->rec_pending = false;
    run__put_ti(r, ii);
    run__put_try(r, ii, TI_RUNNING, -1);
}

void run__flush_running_rec(struct run *r, uint32_t inst)
{
    run__flush_running(r, inst);
}

/* sched start callback: a slot is ours. The next try is claimed: the instance is 'queued'
 * with the new try number, its record submitted in the transaction the event that freed the
 * slot or made the instance ready is writing (see the design note of run.c). A run
 * gated on durability starts the process once that claim is durable (run_release_gates); a
 * scheduler killed in between leaves a claimed try, which the next one counts as failed, so
 * no try number ever runs twice. */
void run__sched_start(void *owner, uint32_t ii)
{
    struct run *r = owner;
    run__mark(r); /* its records and end are looked at after the dispatch */
    struct run_inst *in = run__inst_at(r, ii);
    in->try_number++;
    in->state = TI_QUEUED;
    in->queued_at_ms = when_now_ms();
    in->try_started_at_ms = -1;
    in->ended_at_ms = -1; /* an earlier try's end (up_for_retry) is not this one's */
    in->exit_code = -1;
    in->term_signal = 0;
    in->timed_out = false;
    in->pid = 0;
    free(in->worker); /* the next try's comes with its results */
    in->worker = NULL;
    in->slot_held = true;
    in->run_pos = (uint32_t)r->running.n;
    VEC_PUSH(&r->running, ii);
    if (r->e && r->e->gate_on_durable) {
        /* The instance's record is the claim: a resumed run makes the try's record (failed)
         * from it, so the try's own row waits for the 'running' one (run__flush_running). */
        uint64_t seq = run__put_ti(r, ii);
        if (seq > r->e->durable) {
            struct run_gate g = {.seq = seq, .inst = ii};
            VEC_PUSH(&r->gates, g);
            return;
        }
    }
    run__try_start(r, ii);
}

void run__claim_end(struct run *r, uint32_t ii)
{
    struct run_try_end e = {.exit_code = -1, .killed = true};
    run_try_done(r, ii, &e);
}

/* Where try tr of instance ii writes $BARAM_OUTPUT: the engine's scratch folder on a memory
 * file system (removed when the try is freed), else beside its log. Whatever is there already
 * (left by a daemon that died) is removed, so it is never taken for the try's output. */
static void run_try_out_path(struct run *r, uint32_t ii, struct run_try *tr)
{
    struct run_inst *in = run__inst_at(r, ii);
    const char *task = r->dag->tasks[in->task].name;
    const char *scratch = r->e ? engine_scratch(r->e) : NULL;
    if (scratch) {
        tr->out_path = logpath_scratch_output(scratch, r->dag->id, r->run_id, task, in->map_index,
                                              in->try_number);
        tr->out_scratch = true;
    } else {
        tr->out_path = logpath_try(r->logdir, task, in->map_index, in->try_number, "output");
    }
    (void)unlink(tr->out_path);
}

void run__try_start(struct run *r, uint32_t ii)
{
    run__mark(r); /* a try that fails at once releases work */
    metrics_try_started();
    if (r->e && r->e->remote) { /* a worker runs it (remote.c) */
        run__remote_start(r, ii);
        return;
    }
    struct run_inst *in = run__inst_at(r, ii);
    const struct dag_task *t = &r->dag->tasks[in->task];
    int64_t now = when_now_ms();
    in->state = TI_RUNNING;
    in->try_started_at_ms = now;
    if (in->started_at_ms < 0)
        in->started_at_ms = now;

    struct run_try *tr = xcalloc(1, sizeof(*tr));
    tr->r = r;
    tr->inst = ii;
    /* All in the run's folder, made when the run started (logpath.h). */
    tr->log_path = logpath_try(r->logdir, t->name, in->map_index, in->try_number, "log");
    if (t->kind == TASK_RUN)
        run_try_out_path(r, ii, tr);

    switch (t->kind) {
    case TASK_RUN:
        run_start_shell(r, ii, tr);
        break;
    case TASK_HTTP:
        run_start_http(r, ii, tr);
        break;
    case TASK_WAIT:
        run_start_wait(r, ii, tr);
        break;
    }
    in = run__inst_at(r, ii);
    if (in->state == TI_RUNNING) {
        run_prep_downstream(r, ii);
        /* Nothing waits for the 'running' records: submitted a little later (or with the
         * final ones), see RUN_RUNNING_DELAY_MS. */
        if (r->e) {
            in->rec_pending = true;
            engine__pend_running(r->e, r, ii);
        }
        run__progress(r, ii);
    }
}

void run__retry_closed(uv_handle_t *h)
{
    struct run_retry *rr = h->data;
    struct run *r = rr->r;
    if (rr->prev)
        rr->prev->next = rr->next;
    else
        r->retries = rr->next;
    if (rr->next)
        rr->next->prev = rr->prev;
    r->nretry_timers--;
    free(rr);
    if (r->halted) {
        run__halt_check(r);
        return;
    }
    run__cork(r);
    run__pump(r);
    run__uncork(r);
}

static void run_retry_fire(uv_timer_t *h)
{
    struct run_retry *rr = h->data;
    struct run *r = rr->r;
    int64_t left_ns = rr->due_ns - when_mono_ns();
    if (left_ns > 0 && !r->cancelled && !r->fatal) {
        /* libuv counts timers in whole milliseconds of a clock read once per loop turn (a
         * coarse one when it is precise enough), so a timer can fire up to ~2 ms early: a
         * retry delay is a minimum, wait the rest. */
        uv_timer_start(h, run_retry_fire, (uint64_t)((left_ns + 999999) / 1000000), 0);
        return;
    }
    if (!r->cancelled && !r->fatal) {
        struct run_inst *in = run__inst_at(r, rr->inst);
        if (in->state == TI_UP_FOR_RETRY)
            run__ready(r, rr->inst);
    }
    uv_close((uv_handle_t *)h, run__retry_closed);
}

void run__retry_after(struct run *r, uint32_t ii, int64_t delay_ms)
{
    struct run_retry *rr = xcalloc(1, sizeof(*rr));
    rr->r = r;
    rr->inst = ii;
    rr->due_ns = when_mono_ns() + (delay_ms > 0 ? delay_ms : 0) * 1000000;
    uv_timer_init(r->e->loop, &rr->timer);
    rr->timer.data = rr;
    rr->next = r->retries;
    if (r->retries)
        r->retries->prev = rr;
    r->retries = rr;
    r->nretry_timers++;
    uv_timer_start(&rr->timer, run_retry_fire, (uint64_t)(delay_ms > 0 ? delay_ms : 0), 0);
}

/* The one completion path of every try. Takes e's strings. */
static void run_try_done(struct run *r, uint32_t ii, struct run_try_end *e)
{
    run__flush_running(r, ii); /* before the instance changes: they describe the running try */
    struct run_inst *in = run__inst_at(r, ii);
    if (in->try_started_at_ms >= 0) /* a claim that never started is no try to count */
        metrics_try_finished();
    const struct dag_task *t = &r->dag->tasks[in->task];
    int64_t now = when_now_ms();
    if (in->slot_held)
        engine__slot_done(r->e, r, ii);
    /* out of the running set (swap-remove) */
    uint32_t pos = in->run_pos, last = r->running.v[r->running.n - 1];
    r->running.v[pos] = last;
    run__inst_at(r, last)->run_pos = pos;
    r->running.n--;
    in = run__inst_at(r, ii);
    if (r->halted) { /* the store keeps it 'running': the next scheduler retries it */
        free(e->output);
        free(e->message);
        run__halt_check(r);
        return;
    }

    if (in->stopping) { /* stopped for a mark, which sets its state once the run has drained */
        in->stopping = false;
        free(e->output);
        free(e->message);
        free(in->message);
        in->message = xstrdup("stopped: marked");
        in->exit_code = -1;
        run__put_try(r, ii, TI_FAILED, now);
        in->state = TI_UP_FOR_RETRY; /* unfinished, no retry timer: the mark decides */
        in->max_tries++;
        in->ended_at_ms = now;
        run__put_ti(r, ii);
        run__progress(r, ii);
        return;
    }
    in->exit_code = e->exit_code;
    in->term_signal = e->term_signal;
    in->timed_out = e->timed_out;
    free(in->output);
    in->output = e->output;
    in->output_len = e->output_len;
    free(in->message);
    in->message = e->message;

    enum ti_state try_state;
    if (e->killed && (r->cancelled || r->fatal)) {
        free(in->message);
        in->message = xstrdup(r->timed_out ? "run timed out" : "cancelled");
        try_state = TI_FAILED;
    } else if ((e->exit_code == 0 || e->met) && !e->timed_out) {
        try_state = TI_SUCCESS;
    } else if (e->exit_code == 99 && !e->timed_out) {
        try_state = TI_SKIPPED;
    } else {
        try_state = TI_FAILED;
    }

    if (try_state == TI_FAILED && in->try_number < in->max_tries && !r->cancelled && !r->fatal) {
        in->state = TI_UP_FOR_RETRY;
        in->ended_at_ms = now; /* when the failed try ended: a resumed run waits what is left */
        run__put_try(r, ii, TI_FAILED, now);
        run__put_ti(r, ii);
        run__progress(r, ii);
        /* A try refused by an open breaker waits until it may let a trial through: a retry
         * sooner would be refused too, and burn the tries (SPEC section 7). */
        int64_t delay = retry_delay_ms(t->retry_delay_ms, t->retry_backoff, t->max_retry_delay_ms,
                                       in->try_number);
        run__retry_after(r, ii, delay > e->hold_ms ? delay : e->hold_ms);
        if (t->on_retry.run || t->on_retry.notify)
            run__task_hook(r, ii, "on_retry");
        return;
    }
    in->state = try_state;
    in->ended_at_ms = now;
    run__put_try(r, ii, try_state, now);
    run__put_ti(r, ii);
    if (try_state == TI_SUCCESS && (t->on_success.run || t->on_success.notify))
        run__task_hook(r, ii, "on_success");
    else if (try_state == TI_FAILED && !r->cancelled && (t->on_failure.run || t->on_failure.notify))
        run__task_hook(r, ii, "on_failure");
    run__finish_inst(r, ii);
}
