/*
 * trigger.c - trigger rules as a pure function of upstream counts; see
 * trigger.h. Each rule first looks for what settles it early (one failure
 * for all_success, one success for one_success...), then, once nothing is
 * pending, for its final answer.
 */
#include "sched/trigger.h"

#include <stdbool.h>

#include "base/compiler.h"

enum trigger_decision trigger_decide(enum trigger_rule rule, const struct trigger_counts *c)
{
    if (c->success == 0 && c->failed == 0 && c->skipped == 0 && c->pending == 0)
        return TRIGGER_RUN; /* no upstream */
    bool done = c->pending == 0;
    switch (rule) {
    case TRIGGER_ALL_SUCCESS:
        /* A failure settles it at once (upstream_failed outranks skipped in the SPEC's
         * table); a skip does not: a later failure would still make it upstream_failed. */
        if (c->failed > 0)
            return TRIGGER_UPSTREAM_FAILED;
        if (!done)
            return TRIGGER_WAIT;
        return c->skipped > 0 ? TRIGGER_SKIP : TRIGGER_RUN;
    case TRIGGER_ALL_FAILED:
        if (c->success > 0 || c->skipped > 0)
            return TRIGGER_SKIP;
        return done ? TRIGGER_RUN : TRIGGER_WAIT;
    case TRIGGER_ALL_DONE:
        return done ? TRIGGER_RUN : TRIGGER_WAIT;
    case TRIGGER_ONE_SUCCESS:
        if (c->success > 0)
            return TRIGGER_RUN;
        if (!done)
            return TRIGGER_WAIT;
        return c->failed > 0 ? TRIGGER_UPSTREAM_FAILED : TRIGGER_SKIP;
    case TRIGGER_ONE_FAILED:
        if (c->failed > 0)
            return TRIGGER_RUN;
        return done ? TRIGGER_SKIP : TRIGGER_WAIT;
    case TRIGGER_NONE_FAILED:
        if (c->failed > 0)
            return TRIGGER_UPSTREAM_FAILED;
        return done ? TRIGGER_RUN : TRIGGER_WAIT;
    case TRIGGER_RULE_COUNT:
        break;
    }
    BUG("bad trigger rule %d", (int)rule);
}
