/*
 * profile.c - the critical path and parallelism of a run; see profile.h.
 * Instances are merged per task in one pass; the path walk visits each task
 * at most once (it only moves upstream, and the graph is acyclic, but a
 * visited mark guards against bad input anyway); the parallelism sweep sorts
 * 2n events. O(n log n + V + E). Any thread.
 */
#include "cli/profile.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "dag/graph.h"

struct event {
    int64_t at_ms;
    int delta; /* +1 start, -1 end */
};

static int event_cmp(const void *a, const void *b)
{
    const struct event *x = a, *y = b;
    if (x->at_ms != y->at_ms)
        return x->at_ms < y->at_ms ? -1 : 1;
    return x->delta - y->delta; /* ends (-1) before starts at the same instant */
}

static int64_t min_known(int64_t a, int64_t b)
{
    if (a < 0)
        return b;
    if (b < 0)
        return a;
    return a < b ? a : b;
}

static int64_t max_known(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

static void merge(struct profile *p, const struct profile_ti *tis, size_t n, bool *unfinished)
{
    for (uint32_t v = 0; v < p->ntasks; v++)
        p->tasks[v] = (struct profile_task){-1, -1, -1, 0};
    for (size_t i = 0; i < n; i++) {
        struct profile_task *t = &p->tasks[tis[i].task];
        t->ninstances++;
        t->queued_at_ms = min_known(t->queued_at_ms, tis[i].queued_at_ms);
        t->started_at_ms = min_known(t->started_at_ms, tis[i].started_at_ms);
        if (tis[i].ended_at_ms < 0)
            unfinished[tis[i].task] = true;
        t->ended_at_ms = max_known(t->ended_at_ms, tis[i].ended_at_ms);
    }
    for (uint32_t v = 0; v < p->ntasks; v++)
        if (unfinished[v])
            p->tasks[v].ended_at_ms = -1;
}

static void critical_path(struct profile *p, const struct graph *g)
{
    /* The leaf that ended last. */
    int64_t best = -1;
    uint32_t at = UINT32_MAX;
    for (uint32_t v = 0; v < g->n; v++) {
        if (graph_ndown(g, v) != 0 || p->tasks[v].ended_at_ms < 0)
            continue;
        if (p->tasks[v].ended_at_ms > best) {
            best = p->tasks[v].ended_at_ms;
            at = v;
        }
    }
    if (at == UINT32_MAX)
        return;
    bool *seen = xcalloc(g->n ? g->n : 1, sizeof *seen);
    uint32_t *rev = xcalloc(g->n ? g->n : 1, sizeof *rev);
    size_t n = 0;
    while (at != UINT32_MAX && !seen[at]) {
        seen[at] = true;
        rev[n++] = at;
        uint32_t next = UINT32_MAX;
        int64_t last = -1;
        for (uint32_t e = g->up_start[at]; e < g->up_start[at + 1]; e++) {
            uint32_t u = g->up[e];
            if (p->tasks[u].ended_at_ms > last) {
                last = p->tasks[u].ended_at_ms;
                next = u;
            }
        }
        at = next;
    }
    p->path = xcalloc(n ? n : 1, sizeof *p->path);
    for (size_t i = 0; i < n; i++)
        p->path[i] = rev[n - 1 - i];
    p->npath = n;
    free(rev);
    free(seen);
}

static void parallelism(struct profile *p, const struct profile_ti *tis, size_t n)
{
    struct event *ev = xcalloc(2 * n + 1, sizeof *ev);
    size_t nev = 0;
    for (size_t i = 0; i < n; i++) {
        const struct profile_ti *t = &tis[i];
        if (t->started_at_ms < 0)
            continue;
        int64_t end = t->ended_at_ms >= t->started_at_ms ? t->ended_at_ms : p->end_at_ms;
        if (end < t->started_at_ms)
            end = t->started_at_ms;
        p->sum_run_ms += end - t->started_at_ms;
        if (t->queued_at_ms >= 0 && t->queued_at_ms <= t->started_at_ms)
            p->sum_wait_ms += t->started_at_ms - t->queued_at_ms;
        if (end == t->started_at_ms)
            continue; /* an empty interval never overlaps anything */
        ev[nev++] = (struct event){t->started_at_ms, +1};
        ev[nev++] = (struct event){end, -1};
    }
    qsort(ev, nev, sizeof *ev, event_cmp);
    int cur = 0;
    for (size_t i = 0; i < nev; i++) {
        cur += ev[i].delta;
        if (cur > (int)p->max_parallel)
            p->max_parallel = (uint32_t)cur;
    }
    free(ev);
    if (p->wall_ms > 0)
        p->avg_parallel = (double)p->sum_run_ms / (double)p->wall_ms;
}

int profile_compute(const struct graph *g, const struct profile_ti *tis, size_t n,
                    int64_t run_started_at_ms, int64_t run_ended_at_ms, struct profile *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++)
        if (tis[i].task >= g->n)
            return -EINVAL;
    out->ntasks = g->n;
    out->tasks = xcalloc(g->n ? g->n : 1, sizeof *out->tasks);
    bool *unfinished = xcalloc(g->n ? g->n : 1, sizeof *unfinished);
    merge(out, tis, n, unfinished);
    free(unfinished);

    int64_t begin = -1, end = -1;
    for (size_t i = 0; i < n; i++) {
        begin = min_known(begin, tis[i].started_at_ms);
        end = max_known(end, tis[i].ended_at_ms);
    }
    out->begin_at_ms = run_started_at_ms >= 0 ? run_started_at_ms : begin;
    out->end_at_ms = run_ended_at_ms >= 0 ? run_ended_at_ms : end;
    if (out->begin_at_ms >= 0 && out->end_at_ms > out->begin_at_ms)
        out->wall_ms = out->end_at_ms - out->begin_at_ms;
    critical_path(out, g);
    parallelism(out, tis, n);
    return 0;
}

void profile_release(struct profile *p)
{
    free(p->tasks);
    free(p->path);
    memset(p, 0, sizeof *p);
}
