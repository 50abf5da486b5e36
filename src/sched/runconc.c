/*
 * runconc.c - what a run's timing and concurrency limits add to the engine
 * (SPEC section 13):
 *  - run_timeout: one timer for all the engine's runs, on a min-heap of their
 *    deadlines (started_at + run_timeout, both stored, so a restarted or another
 *    scheduler taking the run over arms it again; one already past fires at once).
 *  - max_active_tasks (DAG) and max_active (task): gates, counters of the
 *    instances holding them across the engine's runs. An instance takes its
 *    task's gates before it goes on to a slot (the ready queue, or a pool's
 *    admission round) and gives them back with its slot; one that finds a gate
 *    full waits in the gate's FIFO. A task without a limit costs one branch.
 *  - depends_on_past: a task's ready instances wait until the task's instances
 *    in the previous run (by logical date) succeeded or skipped. The previous
 *    run is read from the store when the run is loaded; while it runs in this
 *    engine, each of its finished instances lets the runs waiting on it look
 *    again (engine__past_notify).
 *
 * Loop thread only.
 */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/log.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "sched/admit.h"
#include "sched/run_int.h"
#include "store/store.h"

#define GATE_NONE UINT32_MAX

/* ---- run_timeout ---- */

static bool tmo_before(const struct run *a, const struct run *b)
{
    return a->timeout_at_ms < b->timeout_at_ms;
}

static void tmo_set(struct engine *e, size_t i, struct run *r)
{
    e->tmo.v[i] = r;
    r->tmo_pos = (int32_t)i;
}

static void tmo_up(struct engine *e, size_t i)
{
    struct run *r = e->tmo.v[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!tmo_before(r, e->tmo.v[p]))
            break;
        tmo_set(e, i, e->tmo.v[p]);
        i = p;
    }
    tmo_set(e, i, r);
}

static void tmo_down(struct engine *e, size_t i)
{
    struct run *r = e->tmo.v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->tmo.n)
            break;
        if (c + 1 < e->tmo.n && tmo_before(e->tmo.v[c + 1], e->tmo.v[c]))
            c++;
        if (!tmo_before(e->tmo.v[c], r))
            break;
        tmo_set(e, i, e->tmo.v[c]);
        i = c;
    }
    tmo_set(e, i, r);
}

static void tmo_remove(struct engine *e, struct run *r)
{
    size_t i = (size_t)r->tmo_pos;
    r->tmo_pos = -1;
    struct run *last = e->tmo.v[--e->tmo.n];
    if (i == e->tmo.n)
        return;
    tmo_set(e, i, last);
    tmo_up(e, i);
    tmo_down(e, (size_t)last->tmo_pos);
}

static void tmo_fire(uv_timer_t *h);

static void tmo_rearm(struct engine *e)
{
    if (e->tmo.n == 0 || e->stopping) {
        uv_timer_stop(&e->tmo_timer);
        return;
    }
    int64_t wait = e->tmo.v[0]->timeout_at_ms - when_now_ms();
    uv_timer_start(&e->tmo_timer, tmo_fire, (uint64_t)(wait > 0 ? wait : 0), 0);
}

static void tmo_fire(uv_timer_t *h)
{
    struct engine *e = h->data;
    int64_t now = when_now_ms();
    engine_cork(e);
    while (e->tmo.n > 0 && e->tmo.v[0]->timeout_at_ms <= now) {
        struct run *r = e->tmo.v[0];
        tmo_remove(e, r);
        run__time_out(r);
    }
    engine_pump(e);
    engine_uncork(e);
    tmo_rearm(e);
}

void engine__timeout_arm(struct engine *e, struct run *r)
{
    r->tmo_pos = -1;
    r->timeout_at_ms = -1;
    if (r->dag->run_timeout_ms <= 0)
        return;
    r->timeout_at_ms = r->started_at_ms + r->dag->run_timeout_ms;
    VEC_PUSH(&e->tmo, r);
    tmo_up(e, e->tmo.n - 1);
    if (e->tmo.v[0] == r)
        tmo_rearm(e);
}

void engine__timeout_forget(struct engine *e, struct run *r)
{
    if (r->tmo_pos < 0)
        return;
    bool first = r->tmo_pos == 0;
    tmo_remove(e, r);
    if (first)
        tmo_rearm(e);
}

/* ---- max_active_tasks, max_active ---- */

static uint32_t gate_index(struct engine *e, char *name)
{
    uint32_t i;
    if (hmap_get(&e->gate_by_name, name, strlen(name), &i)) {
        free(name);
        return i;
    }
    struct engine_gate g = {.name = name};
    VEC_PUSH(&e->gates, g);
    i = (uint32_t)(e->gates.n - 1);
    (void)hmap_put(&e->gate_by_name, name, strlen(name), i);
    return i;
}

void engine__gates_init(struct engine *e, struct run *r, uint32_t t)
{
    struct run_task *rt = &r->tasks[t];
    const struct dag_task *dt = &r->dag->tasks[t];
    rt->gate_dag = rt->gate_task = GATE_NONE;
    if (!e)
        return;
    if (r->dag->max_active_tasks > 0)
        rt->gate_dag = gate_index(e, xasprintf("dag:%s", r->dag->id));
    if (dt->max_active > 0)
        rt->gate_task = gate_index(e, xasprintf("task:%s.%s", r->dag->id, dt->name));
    rt->gated = rt->gate_dag != GATE_NONE || rt->gate_task != GATE_NONE;
}

bool engine__gate_take(struct engine *e, struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    const struct run_task *rt = &r->tasks[in->task];
    struct engine_gate *gd = rt->gate_dag != GATE_NONE ? &e->gates.v[rt->gate_dag] : NULL;
    struct engine_gate *gt = rt->gate_task != GATE_NONE ? &e->gates.v[rt->gate_task] : NULL;
    if (gd)
        gd->limit = r->dag->max_active_tasks; /* the DAG as this run has it */
    if (gt)
        gt->limit = r->dag->tasks[in->task].max_active;
    struct engine_gate *full = NULL;
    if (gd && gd->used >= gd->limit)
        full = gd;
    else if (gt && gt->used >= gt->limit)
        full = gt;
    if (full) {
        struct engine_gate_wait w = {r, ii};
        VEC_PUSH(&full->wait, w);
        return false;
    }
    if (gd)
        gd->used++;
    if (gt)
        gt->used++;
    in->gate_held = true;
    return true;
}

const char *engine__gate_pool(struct engine *e, struct run *r, uint32_t t)
{
    const struct run_task *rt = &r->tasks[t];
    uint32_t gi = rt->gate_task != GATE_NONE ? rt->gate_task : rt->gate_dag;
    struct engine_gate *g = &e->gates.v[gi];
    admit_set_pool(e->admit, g->name, g->limit); /* the DAG as this run has it */
    return g->name;
}

/* Lets the instances waiting for gate gi go on while it has room. */
static void gate_wake(struct engine *e, uint32_t gi)
{
    while (e->gates.v[gi].wait_head < e->gates.v[gi].wait.n &&
           e->gates.v[gi].used < e->gates.v[gi].limit) {
        struct engine_gate *g = &e->gates.v[gi];
        struct engine_gate_wait w = g->wait.v[g->wait_head++];
        struct run *r = w.r;
        struct run_inst *in = run__inst_at(r, w.inst);
        if (in->state != TI_SCHEDULED || in->gate_held || r->cancelled || r->fatal || r->draining ||
            r->halted || r->phase != RUN_PH_RUNNING)
            continue;
        engine__push(e, r, w.inst); /* takes the gates, or waits for the other one */
        run__mark(r);
    }
    struct engine_gate *g = &e->gates.v[gi];
    if (g->wait_head == g->wait.n)
        g->wait.n = g->wait_head = 0;
}

void engine__gate_release(struct engine *e, struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    if (!in->gate_held)
        return;
    in->gate_held = false;
    const struct run_task *rt = &r->tasks[in->task];
    if (rt->gate_dag != GATE_NONE)
        e->gates.v[rt->gate_dag].used--;
    if (rt->gate_task != GATE_NONE)
        e->gates.v[rt->gate_task].used--;
    if (rt->gate_dag != GATE_NONE)
        gate_wake(e, rt->gate_dag);
    if (rt->gate_task != GATE_NONE)
        gate_wake(e, rt->gate_task);
}

void engine__gate_drop(struct engine *e, struct run *r)
{
    if (e->gates.n == 0)
        return;
    for (size_t gi = 0; gi < e->gates.n; gi++) {
        struct engine_gate *g = &e->gates.v[gi];
        size_t k = g->wait_head;
        for (size_t i = g->wait_head; i < g->wait.n; i++)
            if (g->wait.v[i].r != r)
                g->wait.v[k++] = g->wait.v[i];
        g->wait.n = k;
    }
    bool any = false;
    for (uint32_t t = 0; t < r->dag->ntasks && !any; t++)
        any = r->tasks[t].gated;
    if (!any)
        return;
    for (uint32_t ii = 0; ii < r->insts.n; ii++) {
        struct run_inst *in = run__inst_at(r, ii);
        if (in->gate_held && !in->slot_held)
            engine__gate_release(e, r, ii);
    }
}

void engine__conc_release(struct engine *e)
{
    for (size_t i = 0; i < e->gates.n; i++) {
        free(e->gates.v[i].name);
        VEC_FREE(&e->gates.v[i].wait);
    }
    VEC_FREE(&e->gates);
    hmap_release(&e->gate_by_name);
    VEC_FREE(&e->tmo);
}

/* ---- depends_on_past ---- */

static bool past_ok(enum ti_state st)
{
    return st == TI_SUCCESS || st == TI_SKIPPED;
}

static struct run *past_live_run(struct engine *e, const char *run_id)
{
    for (struct run *x = e->runs; x; x = x->live_next)
        if (!x->halted && strcmp(x->run_id, run_id) == 0)
            return x;
    return NULL;
}

/* Task name's instances in the live run p all succeeded or skipped (or it has none). */
static bool past_met_live(const struct run *p, const char *name)
{
    uint32_t t;
    if (!dag_find(p->dag, name, &t))
        return true; /* a task the previous run's version did not have */
    const struct run_task *rt = &p->tasks[t];
    if (!rt->complete)
        return false;
    for (uint32_t k = 0; k < rt->ninst; k++)
        if (!past_ok(p->insts.v[rt->inst_start + k].state))
            return false;
    return true;
}

/* The same from the stored instances of a run that is not live here: an ended run without
 * the task (its version had none) is met; one that has not ended yet (not started, or run by
 * another scheduler) waits. */
static bool past_met_stored(const struct ti_rec *tis, size_t n, bool ended, const char *name)
{
    bool seen = false;
    for (size_t i = 0; i < n; i++) {
        if (!tis[i].task || strcmp(tis[i].task, name) != 0)
            continue;
        if (!past_ok(tis[i].state))
            return false;
        seen = true;
    }
    return seen || ended;
}

static void past_count(struct run *r, bool waiting)
{
    if (waiting == r->past_live || !r->e)
        return;
    r->past_live = waiting;
    r->e->npast += waiting ? 1 : -1;
}

void run__past_init(struct run *r, const struct run_spec *sp)
{
    if (!r->dag->uses_past || !sp->past_run_id || !r->e)
        return; /* the first run: nothing to wait for */
    r->past_run_id = xstrdup(sp->past_run_id);
    struct run *p = past_live_run(r->e, r->past_run_id);
    bool waiting = false;
    for (uint32_t t = 0; t < r->dag->ntasks; t++) {
        const struct dag_task *dt = &r->dag->tasks[t];
        if (!dt->depends_on_past)
            continue;
        bool met = p ? past_met_live(p, dt->name)
                     : past_met_stored(sp->past_tis, sp->npast_tis, sp->past_ended, dt->name);
        r->tasks[t].past_wait = !met;
        waiting |= !met;
    }
    past_count(r, waiting);
}

bool run__past_ready(struct run *r, uint32_t ii)
{
    struct run_inst *in = run__inst_at(r, ii);
    if (!r->tasks[in->task].past_wait)
        return true;
    in->past_held = true;
    free(in->message);
    in->message = xasprintf("waiting for %s in run %s (depends_on_past)",
                            r->dag->tasks[in->task].name, r->past_run_id);
    return false;
}

/* Run r waits on its previous run: the live run p, else its stored instances (tis, ended);
 * its tasks whose past is now met go on. */
static void past_recheck(struct run *r, const struct run *p, const struct ti_rec *tis, size_t n,
                         bool ended)
{
    bool waiting = false;
    for (uint32_t t = 0; t < r->dag->ntasks; t++) {
        struct run_task *rt = &r->tasks[t];
        if (!rt->past_wait)
            continue;
        const char *name = r->dag->tasks[t].name;
        if (!(p ? past_met_live(p, name) : past_met_stored(tis, n, ended, name))) {
            waiting = true;
            continue;
        }
        rt->past_wait = false;
        for (uint32_t k = 0; k < rt->ninst; k++) {
            uint32_t ii = rt->inst_start + k;
            struct run_inst *in = run__inst_at(r, ii);
            if (!in->past_held)
                continue;
            in->past_held = false;
            free(in->message);
            in->message = NULL;
            in->ready_ns = when_mono_ns();
            engine__push(r->e, r, ii);
            VEC_PUSH(&r->readied, ii); /* its record loses the message */
        }
        run__mark(r);
    }
    past_count(r, waiting);
}

static bool past_waits_on(const struct run *r, const char *run_id)
{
    return r->past_live && r->phase == RUN_PH_RUNNING && !r->halted && !r->cancelled && !r->fatal &&
           strcmp(r->past_run_id, run_id) == 0;
}

void engine__past_notify(struct engine *e, struct run *p)
{
    for (struct run *r = e->runs; r && e->npast > 0; r = r->live_next)
        if (r != p && past_waits_on(r, p->run_id))
            past_recheck(r, p, NULL, 0, false);
}

size_t engine_past_pending(struct engine *e, char ***ids)
{
    *ids = NULL;
    if (e->npast == 0)
        return 0;
    VEC(char *) v = {0};
    for (struct run *r = e->runs; r; r = r->live_next) {
        if (!r->past_live || past_live_run(e, r->past_run_id))
            continue; /* a live run here tells its waiters itself */
        bool dup = false;
        for (size_t i = 0; i < v.n && !dup; i++)
            dup = strcmp(v.v[i], r->past_run_id) == 0;
        if (!dup)
            VEC_PUSH(&v, xstrdup(r->past_run_id));
    }
    *ids = v.v;
    return v.n;
}

void engine_past_update(struct engine *e, const char *run_id, bool ended, const struct ti_rec *tis,
                        size_t n)
{
    if (e->npast == 0 || past_live_run(e, run_id))
        return;
    engine_cork(e);
    for (struct run *r = e->runs; r && e->npast > 0; r = r->live_next)
        if (past_waits_on(r, run_id))
            past_recheck(r, NULL, tis, n, ended);
    engine_pump(e);
    engine_uncork(e);
}

void run__past_release(struct run *r)
{
    past_count(r, false);
    free(r->past_run_id);
    r->past_run_id = NULL;
}

int run_past_read(struct store *s, const char *dag_id, const char *run_id, int64_t logical_at_ms,
                  struct run_past *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    enum { PAGE = 64 };
    for (int64_t off = 0;; off += PAGE) {
        struct run_rec *v = NULL;
        size_t n = 0;
        int rc = store_list_runs(s, dag_id, PAGE, off, &v, &n, NULL, e);
        if (rc < 0)
            return rc;
        for (size_t i = 0; i < n && !out->run_id; i++) {
            if (v[i].logical_at_ms >= logical_at_ms || strcmp(v[i].run_id, run_id) == 0)
                continue;
            out->run_id = xstrdup(v[i].run_id);
            out->ended = v[i].state != RUN_QUEUED && v[i].state != RUN_RUNNING;
        }
        store_free_runs(v, n);
        if (out->run_id || n < PAGE)
            break;
    }
    if (!out->run_id)
        return 0;
    int rc = store_list_tis(s, out->run_id, &out->tis, &out->ntis, e);
    if (rc < 0) {
        run_past_release(out);
        return rc;
    }
    return 0;
}

void run_past_release(struct run_past *p)
{
    free(p->run_id);
    store_free_tis(p->tis, p->ntis);
    memset(p, 0, sizeof *p);
}
