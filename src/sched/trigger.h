/*
 * trigger.h - the trigger-rule decision (SPEC section 2): given how a task's
 * upstream task instances have ended so far, run it, skip it, mark it
 * upstream_failed, or wait. A pure function of the counts, so the scheduler
 * can decide as soon as the states allow it (one_success fires on the first
 * success) and the rules are table-tested. Any thread.
 */
#ifndef BARAM_SCHED_TRIGGER_H
#define BARAM_SCHED_TRIGGER_H

#include <stdint.h>

#include "dag/dag.h"

/* Upstream task instances by how they ended (each instance of a mapped upstream counts). */
struct trigger_counts {
    uint32_t success;
    uint32_t failed; /* failed or upstream_failed */
    uint32_t skipped;
    uint32_t pending; /* upstream not finished yet (tasks or instances: only zero matters) */
};

enum trigger_decision {
    TRIGGER_WAIT,            /* not decidable yet */
    TRIGGER_RUN,             /* the task's condition holds */
    TRIGGER_SKIP,            /* becomes skipped */
    TRIGGER_UPSTREAM_FAILED, /* becomes upstream_failed */
};

/* The decision for rule given c. A task without upstream (all counts zero) runs. */
enum trigger_decision trigger_decide(enum trigger_rule rule, const struct trigger_counts *c);

#endif
