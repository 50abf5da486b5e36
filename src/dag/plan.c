/*
 * plan.c - logical dates and due times of scheduled DAGs (see plan.h).
 * plan_latest_ended needs the fire before a time, which cron cannot step to
 * directly: it looks back over a window that doubles until it holds two
 * fires, so it costs O(log(gap)) window scans of a few fires each.
 */
#include "dag/plan.h"

#include "dag/cron.h"
#include "dag/dag.h"

static int64_t plan_next_raw(const struct dag *dag, int64_t after_ms)
{
    int64_t t = cron_next_tz(&dag->cron, dag->tz, after_ms);
    return t < 0 ? PLAN_NEVER : t;
}

static int64_t plan_start(const struct dag *dag)
{
    return dag->start_at_ms >= 0 ? dag->start_at_ms : 0;
}

int64_t plan_first_from(const struct dag *dag, int64_t t_ms)
{
    if (!dag->schedule)
        return PLAN_NEVER;
    int64_t from = t_ms > plan_start(dag) ? t_ms : plan_start(dag);
    int64_t t = plan_next_raw(dag, from - 1);
    if (t == PLAN_NEVER || (dag->end_at_ms >= 0 && t > dag->end_at_ms))
        return PLAN_NEVER;
    return t;
}

int64_t plan_after(const struct dag *dag, int64_t t_ms)
{
    if (t_ms == PLAN_NEVER)
        return PLAN_NEVER;
    return plan_first_from(dag, t_ms + 1);
}

int64_t plan_due_at(const struct dag *dag, int64_t t_ms)
{
    if (!dag->schedule || t_ms == PLAN_NEVER)
        return PLAN_NEVER;
    return plan_next_raw(dag, t_ms);
}

int64_t plan_latest_ended(const struct dag *dag, int64_t now_ms)
{
    if (!dag->schedule)
        return -1;
    /* The fires in a window before now: the last two, f1 < f2 <= now, make [f1, f2) the
     * latest ended interval. */
    int64_t first = plan_next_raw(dag, now_ms);
    int64_t second = plan_next_raw(dag, first);
    int64_t span = (first == PLAN_NEVER || second == PLAN_NEVER) ? 60000 : second - first;
    if (span < 60000)
        span = 60000;
    for (int round = 0; round < 64; round++) {
        int64_t from = now_ms - 2 * span;
        int64_t f1 = -1, f2 = -1;
        for (int64_t t = plan_next_raw(dag, from - 1); t != PLAN_NEVER && t <= now_ms;
             t = plan_next_raw(dag, t)) {
            f1 = f2;
            f2 = t;
        }
        if (f1 >= 0) {
            if (f1 < plan_start(dag))
                return -1;
            if (dag->end_at_ms >= 0 && f1 > dag->end_at_ms) {
                /* the schedule ended: the last logical date within it */
                int64_t t, last = -1;
                /* a walk over the end's last window, not from start */
                int64_t w = dag->end_at_ms - 2 * span;
                for (t = plan_first_from(dag, w > plan_start(dag) ? w : plan_start(dag));
                     t != PLAN_NEVER && plan_due_at(dag, t) <= now_ms; t = plan_after(dag, t))
                    last = t;
                return last;
            }
            return f1;
        }
        if (from < plan_start(dag) - span)
            return -1; /* nothing before start */
        span *= 2;
    }
    return -1;
}

int64_t plan_cursor(const struct dag *dag, int64_t last_ms, int64_t now_ms)
{
    if (!dag->schedule)
        return PLAN_NEVER;
    int64_t c = last_ms >= 0 ? plan_after(dag, last_ms) : plan_first_from(dag, plan_start(dag));
    if (!dag->catchup && c != PLAN_NEVER) {
        int64_t l = plan_latest_ended(dag, now_ms);
        if (l > c)
            c = l;
    }
    return c;
}
