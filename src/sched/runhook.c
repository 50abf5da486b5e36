/*
 * runhook.c - notify: the hooks a run fires besides its DAG's `run` hook
 * (SPEC section 13): task hooks (on_success, on_failure, on_retry, each
 * `{run}` or `{notify}`), the DAG's `{notify}` hooks, and the deadline.
 *
 * Key ideas:
 *  - A hook never holds a task: a task hook starts when the try has ended
 *    and its records are queued; the run goes on at once. A `{run}` task
 *    hook is a process on the scheduler's host (as the DAG's hooks are),
 *    logged to <run_dir>/<instance>.<hook>.<try>.log; the run's end waits
 *    for the ones still running (so the run outlives their callbacks), and
 *    a halt or a cancel kills them. Its exit code is logged, it changes no
 *    state.
 *  - A `{notify}` hook is a delivery (exec/notify.h) owned by the engine,
 *    not by the run: it may outlive the run. Each attempt updates its row in
 *    the store's `deliveries` through the writer (never a blocking write).
 *  - The deadline is a timer armed at the run's start from its stored
 *    queued time, so a resumed run re-arms it for what is left; once fired
 *    it is recorded as a delivery row with hook 'deadline', and a resumed
 *    run whose row exists (run_spec.deadline_fired) does not arm it again.
 *    The timer is detached from the run: closing it never waits.
 *
 * Loop thread only.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "exec/notify.h"
#include "sched/logpath.h"
#include "sched/run_int.h"
#include "store/deliveries.h"
#include "store/store.h"

/* ---- deliveries (engine-owned) ---- */

struct engine_delivery {
    struct engine *e;
    struct delivery_rec rec; /* owned: its row, rewritten after each attempt */
};

static void engine_delivery_report(void *ud, const struct notify_report *rep)
{
    struct engine_delivery *d = ud;
    struct engine *e = d->e;
    if (rep) {
        d->rec.attempts = rep->attempt;
        d->rec.status = rep->status;
        free(d->rec.error);
        d->rec.error = rep->error ? xstrdup(rep->error) : NULL;
        free(d->rec.state);
        d->rec.state = xstrdup(rep->final ? (rep->ok ? "sent" : "failed") : "pending");
        d->rec.updated_at_ms = when_now_ms();
        if (e->w)
            (void)store_writer_put_delivery(e->w, &d->rec);
        if (rep->final && !rep->ok)
            log_warn("notification not delivered", "run=%s hook=%s notifier=%s error=%s",
                     log_q(d->rec.run_id), d->rec.hook, log_q(d->rec.notifier),
                     log_q(rep->error ? rep->error : "?"));
    }
    if (!rep || rep->final) {
        delivery_rec_release(&d->rec);
        free(d);
        if (rep)
            engine__notify_settled(e);
    }
}

/* Records and sends one message to the notifier named name (or records why it cannot). */
static void engine_notify(struct engine *e, const char *name, const struct notify_facts *f)
{
    struct engine_delivery *d = xcalloc(1, sizeof *d);
    d->e = e;
    struct delivery_rec *rec = &d->rec;
    rec->run_id = xstrdup(f->run_id);
    rec->task_id = f->task ? xstrdup(f->task) : NULL;
    rec->try_number = f->try_number;
    rec->hook = xstrdup(f->hook);
    rec->notifier = xstrdup(name);
    rec->created_at_ms = rec->updated_at_ms = when_now_ms();
    rec->id = delivery_id(rec);
    rec->state = xstrdup("pending");
    const struct notifier *n = notifiers_find(e->notifiers, e->nnotifiers, name);
    const char *why = NULL;
    char *msg = NULL;
    if (!n)
        why = "no such notifier in baram.yaml";
    else if (!e->ns && engine__http(e, &msg) < 0)
        why = msg;
    if (why) {
        free(rec->state);
        rec->state = xstrdup("failed");
        rec->error = xstrdup(why);
        if (e->w)
            (void)store_writer_put_delivery(e->w, rec);
        log_warn("notification not sent", "run=%s notifier=%s error=%s", log_q(f->run_id),
                 log_q(name), log_q(why));
        free(msg);
        delivery_rec_release(rec);
        free(d);
        return;
    }
    if (e->w)
        (void)store_writer_put_delivery(e->w, rec);
    RUN_IGN(notify_send(e->ns, n, f, engine_delivery_report, d));
}

/* ---- facts ---- */

static void run_facts(struct run *r, const char *hook, uint32_t ii, struct notify_facts *f)
{
    memset(f, 0, sizeof *f);
    f->dag = r->dag->id;
    f->run_id = r->run_id;
    f->hook = hook;
    f->url = r->url;
    if (ii == UINT32_MAX) {
        f->state = run_state_name(r->state);
        f->message = r->fatal ? r->fatal_msg : NULL;
        return;
    }
    struct run_inst *in = run__inst_at(r, ii);
    f->task = run__inst_id(r, in);
    f->try_number = in->try_number;
    f->state = strcmp(hook, "on_retry") == 0 ? "up_for_retry" : ti_state_name(in->state);
    f->message = in->message;
}

/* ---- hook processes ---- */

struct run_hookproc {
    struct run *r;
    struct spawn *sp;
    struct run_hookproc *prev, *next;
    char *what; /* owned: "task.on_failure" for messages */
};

static void run_hookproc_exit(void *ud, const struct spawn_result *res)
{
    struct run_hookproc *hp = ud;
    struct run *r = hp->r;
    if (hp->prev)
        hp->prev->next = hp->next;
    else
        r->hookprocs = hp->next;
    if (hp->next)
        hp->next->prev = hp->prev;
    r->nhookprocs--;
    if (res->exit_code != 0 && !r->halted)
        log_warn("hook failed", "dag=%s run=%s hook=%s exit=%d", log_q(r->dag->id),
                 log_q(r->run_id), log_q(hp->what), res->exit_code);
    free(hp->what);
    free(hp);
    if (r->nhookprocs > 0)
        return;
    if (r->halted)
        run__halt_check(r);
    else if (r->end_after_hooks)
        run__hooks(r);
}

/* Starts hook h's command for the facts f; logged to <run_dir>/<base>.log. */
static void run_hook_spawn(struct run *r, const struct dag_hook *h, const struct notify_facts *f,
                           const char *base)
{
    struct buf cmd = BUF_INIT(RUN_CMD_MAX);
    char *msg = NULL;
    char *log = logpath_hook(r->logdir, base, "log");
    if (run__expand(r, h->run, NULL, UINT32_MAX, &cmd, &msg) < 0) {
        run__log_append_run(r, log, msg);
        log_warn("hook not run", "dag=%s hook=%s reason=%s", log_q(r->dag->id), base, log_q(msg));
        free(msg);
        free(log);
        buf_release(&cmd);
        return;
    }
    run_strv env = {0}, owned = {0};
    run__env_hook(r, f, &env, &owned);
    char *cmd_file = logpath_hook(r->logdir, base, "sh");
    struct spawn_opts so = {.cmd = cmd.data,
                            .cmd_file = cmd_file,
                            .cwd = r->dag->dir,
                            .env = env.v,
                            .log_path = log,
                            .grace_ms = DAG_KILL_GRACE_MS};
    /* M1: a hook gets the secrets the run read in its environment: its log hides them */
    so.nmask = run__vars_mask(r, &so.mask_vals, &so.mask_lens);
    struct run_hookproc *hp = xcalloc(1, sizeof *hp);
    hp->r = r;
    hp->what = xstrdup(base);
    int rc = run__spawn(r->e->loop, &so, run_hookproc_exit, hp, &hp->sp, &msg);
    run__env_try_release(&env, &owned);
    free(cmd_file);
    buf_release(&cmd);
    if (rc < 0) {
        run__log_append_run(r, log, msg);
        log_warn("hook not run", "dag=%s hook=%s err=%s", log_q(r->dag->id), base, log_q(msg));
        free(msg);
        free(hp->what);
        free(hp);
        free(log);
        return;
    }
    free(log);
    hp->next = r->hookprocs;
    if (r->hookprocs)
        r->hookprocs->prev = hp;
    r->hookprocs = hp;
    r->nhookprocs++;
}

void run__hookprocs_kill(struct run *r)
{
    for (struct run_hookproc *hp = r->hookprocs; hp; hp = hp->next)
        spawn_kill(hp->sp);
}

void run__task_hook(struct run *r, uint32_t ii, const char *hook)
{
    const struct dag_task *t = &r->dag->tasks[run__inst_at(r, ii)->task];
    const struct dag_hook *h = hook[3] == 's'   ? &t->on_success
                               : hook[3] == 'f' ? &t->on_failure
                                                : &t->on_retry;
    if (!dag_hook_set(h) || r->halted)
        return;
    struct notify_facts f;
    run_facts(r, hook, ii, &f);
    if (h->notify) {
        engine_notify(r->e, h->notify, &f);
        return;
    }
    char *base = xasprintf("%s.%s.%d", f.task, hook, f.try_number);
    run_hook_spawn(r, h, &f, base);
    free(base);
}

void run__dag_notify(struct run *r, const struct dag_hook *h, const char *hook)
{
    struct notify_facts f;
    run_facts(r, hook, UINT32_MAX, &f);
    engine_notify(r->e, h->notify, &f);
}

void run_resend(struct run *r, const struct delivery_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct delivery_rec *d = &v[i];
        const char *h = d->hook;
        struct notify_facts f = {
            .dag = r->dag->id,
            .run_id = r->run_id,
            .task = d->task_id,
            .try_number = d->try_number,
            .hook = h,
            .state = strcmp(h, "on_success") == 0   ? "success"
                     : strcmp(h, "on_failure") == 0 ? "failed"
                     : strcmp(h, "on_retry") == 0   ? "up_for_retry"
                                                    : run_state_name(r->state),
            .message = "sent again: the scheduler sending it stopped",
            .url = r->url,
        };
        log_info("notification sent again", "run=%s hook=%s notifier=%s", log_q(r->run_id), h,
                 log_q(d->notifier));
        engine_notify(r->e, d->notifier, &f);
    }
}

/* ---- the deadline ---- */

struct run_deadline {
    uv_timer_t timer;
    struct run *r; /* NULL once the run let go of it */
};

static void run_deadline_closed(uv_handle_t *h)
{
    free(h->data);
}

static void run_deadline_fire(uv_timer_t *t)
{
    struct run_deadline *dl = t->data;
    struct run *r = dl->r;
    uv_close((uv_handle_t *)t, run_deadline_closed);
    if (!r)
        return;
    r->deadline = NULL;
    if (r->halted || r->phase != RUN_PH_RUNNING)
        return;
    const struct dag_hook *h = &r->dag->deadline;
    struct notify_facts f;
    run_facts(r, "deadline", UINT32_MAX, &f);
    char msg[96];
    char after[32];
    snprintf(after, sizeof after, "%" PRId64 "s", r->dag->deadline_ms / 1000);
    snprintf(msg, sizeof msg, "not ended %s after it was queued", after);
    f.message = msg;
    log_info("run missed its deadline", "dag=%s run=%s", log_q(r->dag->id), log_q(r->run_id));
    if (h->notify) {
        engine_notify(r->e, h->notify, &f);
        return;
    }
    /* A `run` deadline is recorded as a delivery too: the mark that it fired. */
    struct delivery_rec rec = {.run_id = xstrdup(r->run_id),
                               .hook = xstrdup("deadline"),
                               .notifier = xstrdup("run"),
                               .state = xstrdup("sent"),
                               .attempts = 1};
    rec.created_at_ms = rec.updated_at_ms = when_now_ms();
    rec.id = delivery_id(&rec);
    if (r->e->w)
        (void)store_writer_put_delivery(r->e->w, &rec);
    delivery_rec_release(&rec);
    run_hook_spawn(r, h, &f, "deadline");
}

void run__deadline_arm(struct run *r, bool fired)
{
    if (r->dag->deadline_ms <= 0 || fired)
        return;
    int64_t left = r->queued_at_ms + r->dag->deadline_ms - when_now_ms();
    struct run_deadline *dl = xcalloc(1, sizeof *dl);
    dl->r = r;
    uv_timer_init(r->e->loop, &dl->timer);
    dl->timer.data = dl;
    uv_timer_start(&dl->timer, run_deadline_fire, (uint64_t)(left > 0 ? left : 0), 0);
    r->deadline = dl;
}

void run__deadline_disarm(struct run *r)
{
    struct run_deadline *dl = r->deadline;
    if (!dl)
        return;
    r->deadline = NULL;
    dl->r = NULL;
    uv_timer_stop(&dl->timer);
    uv_close((uv_handle_t *)&dl->timer, run_deadline_closed);
}
