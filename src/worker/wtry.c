/*
 * wtry.c - one try a worker claimed, run as a scheduler's local executor
 * runs it (sched/runtry.c): a `run` task as a process in its own session
 * (exec/spawn.h, timeout and grace from the spec), an `http` task as a
 * request and a `wait` task as a waiter on the worker's loop. The scheduler
 * computed everything the try needs (exec/tryspec.h); the worker adds its
 * own environment (minus baram's BARAM_*, as runenv.c filters the
 * parent's), $BARAM_OUTPUT beside the log, BARAM_WORKER_HOME=<its absolute
 * home> and BARAM_WORKER=<name> last, the tags by which a successor of the
 * same name and home finds the tries it left (exec/orphans.h): names are
 * unique per fleet, not per host.
 *
 * The log goes where the scheduler's would: HOME/logs/<dag>/<run>/<task>
 * [.<index>].<try>.log of the worker's home (sched/logpath.h). The end, with
 * its output, goes back through worker__try_ended.
 *
 * Loop thread, except wtry_prepare and wtry_read_log (thread pool): the log
 * folder is made and a stale output removed in the claim's job, the output
 * read in the finish job, so a slow home disk does not stall the loop (and
 * with it the heartbeats). A struct wtry is owned by
 * its worker's list until its end is handed over.
 */
#include "worker/worker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/hmap.h"
#include "base/log.h"
#include "base/xalloc.h"
#include "dag/dag.h"
#include "exec/httptask.h"
#include "exec/spawn.h"
#include "exec/waiter.h"
#include "sched/logpath.h"
#include "sched/logprep.h"

extern char **environ;

/* The lengths of the spec's values to mask (malloc'd), or NULL when there are none. */
static size_t *wtry_mask_lens(const struct tryspec *s)
{
    size_t *lens = s->nmask ? xcalloc(s->nmask, sizeof(size_t)) : NULL;
    for (size_t i = 0; i < s->nmask; i++)
        lens[i] = strlen(s->mask[i]);
    return lens;
}

/* A line of baram's own in the try's log, the secrets the scheduler sent masked in it. */
static void wtry_log(struct wtry *t, const char *msg)
{
    const struct tryspec *s = &t->spec;
    size_t *lens = wtry_mask_lens(s);
    run__log_append_masked(t->log_path, msg, (const char *const *)s->mask, lens, s->nmask);
    free(lens);
}

static void wtry_free(struct wtry *t)
{
    free(t->run_id);
    free(t->task_id);
    if (t->have_spec)
        tryspec_release(&t->spec);
    free(t->log_path);
    free(t->out_path);
    free(t->cmd_file);
    free(t->kill_note);
    free(t);
}

/* The try is over: out of the worker's list, its end handed to the worker (which takes e). */
static void wtry_end(struct wtry *t, struct run_try_end *e)
{
    struct worker *w = t->w;
    if (t->prev)
        t->prev->next = t->next;
    else
        w->tries = t->next;
    if (t->next)
        t->next->prev = t->prev;
    w->ntries--;
    if (t->holds_slot)
        w->nrun--;
    if (t->kill_note)
        wtry_log(t, t->kill_note);
    worker__try_ended(w, t, e);
    wtry_free(t);
}

/* Ends t at once with msg (taken) as its failure. */
static void wtry_fail_now(struct wtry *t, char *msg)
{
    wtry_log(t, msg);
    struct run_try_end e = {.exit_code = -1, .message = msg};
    wtry_end(t, &e);
}

/* The environment of a `run` try: the worker's own (minus every BARAM_* and the names the spec
 * sets), the spec's, BARAM_OUTPUT, BARAM_WORKER_HOME, then BARAM_WORKER last. env->v borrows from
 * environ, the spec and *owned. */
static void wtry_env(struct wtry *t, run_strv *env, run_strv *owned)
{
    const struct tryspec *s = &t->spec;
    struct hmap names;
    hmap_init(&names);
    for (size_t i = 0; i < s->nenv; i++) {
        const char *eq = strchr(s->env[i], '=');
        if (eq)
            hmap_put(&names, s->env[i], (size_t)(eq - s->env[i]), 0);
    }
    uint32_t dummy;
    for (char **e = environ; e && *e; e++) {
        const char *eq = strchr(*e, '=');
        if (eq && strncmp(*e, "BARAM_", 6) != 0 && !hmap_get(&names, *e, (size_t)(eq - *e), &dummy))
            VEC_PUSH(env, *e);
    }
    hmap_release(&names);
    for (size_t i = 0; i < s->nenv; i++)
        if (strncmp(s->env[i], "BARAM_WORKER=", 13) != 0 &&
            strncmp(s->env[i], "BARAM_WORKER_HOME=", 18) != 0 &&
            strncmp(s->env[i], "BARAM_OUTPUT=", 13) != 0)
            VEC_PUSH(env, s->env[i]);
    char *v = xasprintf("BARAM_OUTPUT=%s", t->out_path);
    VEC_PUSH(env, v);
    VEC_PUSH(owned, v);
    VEC_PUSH(env, t->w->home_tag);
    v = xasprintf("BARAM_WORKER=%s", t->w->name);
    VEC_PUSH(env, v);
    VEC_PUSH(owned, v);
    VEC_PUSH(env, NULL);
}

static void wtry_on_exit(void *ud, const struct spawn_result *res)
{
    struct wtry *t = ud;
    t->sp = NULL;
    struct run_try_end e = {
        .exit_code = res->exit_code,
        .term_signal = res->term_signal,
        .timed_out = res->timed_out,
        .killed = res->killed,
    };
    e.message = run__exit_message(res, t->spec.timeout_ms);
    if (res->timed_out)
        wtry_log(t, e.message);
    else if (!e.message)
        t->read_output = true; /* read with the log, on the thread pool */
    wtry_end(t, &e);
}

static void wtry_start_run(struct wtry *t)
{
    const struct tryspec *s = &t->spec;
    run_strv env = {0}, owned = {0};
    wtry_env(t, &env, &owned);
    struct spawn_opts so = {
        .cmd = s->cmd ? s->cmd : "",
        .cmd_file = t->cmd_file,
        .cwd = s->dir,
        .env = env.v,
        .log_path = t->log_path,
        .timeout_ms = s->timeout_ms,
        .grace_ms = s->grace_ms,
    };
    size_t *mlens = wtry_mask_lens(s); /* vars: the secrets the scheduler sent, masked */
    so.mask_vals = (const char *const *)s->mask;
    so.mask_lens = mlens;
    so.nmask = s->nmask;
    char *msg = NULL;
    int rc = run__spawn(t->w->loop, &so, wtry_on_exit, t, &t->sp, &msg);
    free(mlens);
    run__env_try_release(&env, &owned);
    if (rc < 0)
        wtry_fail_now(t, msg);
}

static int wtry_http_client(struct worker *w, char **msg)
{
    if (w->http)
        return 0;
    struct httptask_client_opts o = {0};
    int rc = httptask_client_new(w->loop, &o, &w->http);
    if (rc < 0) {
        w->http = NULL;
        *msg = xasprintf("cannot start the http client: %s", err_str(rc));
    }
    return rc;
}

/* The end of a request or wait: its line (taken) goes to the log first. */
static void wtry_end_logged(struct wtry *t, struct run_try_end *e, char *line)
{
    wtry_log(t, line);
    free(line);
    wtry_end(t, e);
}

static void wtry_on_http_done(void *arg, const struct httptask_result *res)
{
    struct wtry *t = arg;
    t->ht = NULL;
    struct run_try_end e;
    char *line = run__http_end(res, &e);
    wtry_end_logged(t, &e, line);
}

static void wtry_start_http(struct wtry *t)
{
    const struct tryspec *s = &t->spec;
    char *msg = NULL;
    if (!s->http.url) {
        wtry_fail_now(t, xstrdup("http try without a url"));
        return;
    }
    if (wtry_http_client(t->w, &msg) < 0) {
        wtry_fail_now(t, msg);
        return;
    }
    struct httptask_header *hh = xcalloc(s->http.nheaders ? s->http.nheaders : 1, sizeof(*hh));
    for (size_t i = 0; i < s->http.nheaders; i++)
        hh[i] = (struct httptask_header){s->http.headers[i].name, s->http.headers[i].value};
    struct httptask_req req = {
        .method = s->http.method,
        .url = s->http.url,
        .body = s->http.body,
        .body_len = s->http.body ? s->http.body_len : 0,
        .headers = hh,
        .nheaders = s->http.nheaders,
        .expect = s->http.expect,
        .nexpect = s->http.nexpect,
        .timeout_ms = s->http.timeout_ms,
        .cb_failures = s->http.cb_failures,
        .cb_reset_ms = s->http.cb_reset_ms,
        .body_max = DAG_OUTPUT_MAX,
    };
    char *shown = httptask_redact_url(s->http.url); /* no credentials or tokens in logs */
    char *line = xasprintf("%s %s", s->http.method ? s->http.method : "GET", shown);
    free(shown);
    wtry_log(t, line);
    free(line);
    int rc = httptask_start(t->w->http, &req, wtry_on_http_done, t, &t->ht);
    free(hh);
    if (rc < 0) /* not expected (failures come through the callback), but never leave it */
        wtry_fail_now(t, xstrdup("cannot start the http request"));
}

static void wtry_on_wait_done(void *arg, const struct waiter_result *res)
{
    struct wtry *t = arg;
    t->wt = NULL;
    struct run_try_end e;
    char *line = run__wait_end(res, &e);
    wtry_end_logged(t, &e, line);
}

static void wtry_start_wait(struct wtry *t)
{
    const struct tryspec *s = &t->spec;
    char *msg = NULL;
    if (!s->wait.file == !s->wait.http_url) {
        wtry_fail_now(t, xstrdup("wait try without exactly one condition"));
        return;
    }
    if (s->wait.http_url && wtry_http_client(t->w, &msg) < 0) {
        wtry_fail_now(t, msg);
        return;
    }
    struct waiter_opts o = {
        .file = s->wait.file,
        .http_url = s->wait.http_url,
        .every_ms = s->wait.every_ms,
        .timeout_ms = s->wait.timeout_ms,
    };
    char *line = xasprintf("waiting for %s '%s'", s->wait.file ? "file" : "url",
                           s->wait.file ? s->wait.file : s->wait.http_url);
    wtry_log(t, line);
    free(line);
    if (waiter_start(t->w->loop, t->w->http, &o, wtry_on_wait_done, t, &t->wt) < 0)
        wtry_fail_now(t, xstrdup("cannot start the wait"));
}

void wtry_prepare(const char *home, const char *spec, struct wtry_prep *p)
{
    memset(p, 0, sizeof *p);
    if (tryspec_decode(spec ? spec : "", spec ? strlen(spec) : 0, &p->spec, &p->msg) < 0)
        return;
    p->have_spec = true;
    const struct tryspec *s = &p->spec;
    char *run_dir = logpath_run_dir(home, s->dag, s->run_id);
    p->mkdir_rc = logprep_mkdirs(run_dir);
    p->log_path = logpath_try(run_dir, s->task, s->map_index, s->try_number, "log");
    if (s->kind == TRYSPEC_RUN) {
        p->out_path = logpath_try(run_dir, s->task, s->map_index, s->try_number, "output");
        p->cmd_file = logpath_try(run_dir, s->task, s->map_index, s->try_number, "sh");
        if (p->mkdir_rc == 0)
            (void)unlink(p->out_path); /* a file left there is not this try's output */
    }
    free(run_dir);
}

void wtry_prep_release(struct wtry_prep *p)
{
    if (p->have_spec)
        tryspec_release(&p->spec);
    free(p->msg);
    free(p->log_path);
    free(p->out_path);
    free(p->cmd_file);
    memset(p, 0, sizeof *p);
}

void wtry_start(struct worker *w, char *run_id, char *task_id, int try_number, struct wtry_prep *p)
{
    struct wtry *t = xcalloc(1, sizeof(*t));
    t->w = w;
    t->run_id = run_id;
    t->task_id = task_id;
    t->try_number = try_number;
    t->next = w->tries;
    if (w->tries)
        w->tries->prev = t;
    w->tries = t;
    w->ntries++;

    if (!p->have_spec) {
        char *m = xasprintf("cannot read the try's spec: %s", p->msg ? p->msg : "?");
        wtry_prep_release(p);
        log_warn("try not started", "run=%s task=%s try=%d error=%s", log_q(run_id), log_q(task_id),
                 try_number, log_q(m));
        wtry_fail_now(t, m);
        return;
    }
    t->spec = p->spec;
    t->have_spec = true;
    t->log_path = p->log_path;
    t->out_path = p->out_path;
    t->cmd_file = p->cmd_file;
    int rc = p->mkdir_rc;
    free(p->msg);
    memset(p, 0, sizeof *p); /* taken */
    const struct tryspec *s = &t->spec;
    t->holds_slot = s->kind != TRYSPEC_WAIT;
    if (t->holds_slot)
        w->nrun++;
    if (rc < 0) {
        char *m = xasprintf("cannot make the log folder: %s", err_str(rc));
        free(t->log_path); /* nowhere to write it */
        t->log_path = NULL;
        wtry_fail_now(t, m);
        return;
    }
    log_debug("try started", "run=%s task=%s try=%d", log_q(run_id), log_q(task_id), try_number);
    switch (s->kind) {
    case TRYSPEC_RUN:
        wtry_start_run(t);
        break;
    case TRYSPEC_HTTP:
        wtry_start_http(t);
        break;
    case TRYSPEC_WAIT:
        wtry_start_wait(t);
        break;
    }
}

void wtry_kill(struct wtry *t, const char *note)
{
    if (t->killing)
        return;
    t->killing = true;
    if (note)
        t->kill_note = xstrdup(note);
    if (t->sp)
        spawn_kill(t->sp);
    else if (t->ht)
        httptask_cancel(t->ht);
    else if (t->wt)
        waiter_cancel(t->wt);
}

struct wtry *wtry_find(struct worker *w, const char *run_id, const char *task_id, int try_number)
{
    for (struct wtry *t = w->tries; t; t = t->next)
        if (t->try_number == try_number && strcmp(t->run_id, run_id) == 0 &&
            strcmp(t->task_id, task_id) == 0)
            return t;
    return NULL;
}

void wtry_read_log(const char *path, int64_t store_max, char **log, size_t *len)
{
    *log = NULL;
    *len = 0;
    if (!path || store_max <= 0)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        close(fd);
        return;
    }
    size_t size = (size_t)st.st_size, keep = size, cut = 0;
    if ((int64_t)size > store_max) {
        keep = (size_t)store_max;
        cut = size - keep;
    }
    char head[96];
    int hl = cut ? snprintf(head, sizeof head,
                            "[baram: log cut: the first %zu bytes are not kept]\n", cut)
                 : 0;
    char *p = xmalloc((size_t)hl + keep + 1);
    memcpy(p, head, (size_t)hl);
    size_t got = 0;
    while (got < keep) {
        ssize_t n = pread(fd, p + hl + got, keep - got, (off_t)(cut + got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    p[hl + got] = 0;
    *log = p;
    *len = (size_t)hl + got;
}
