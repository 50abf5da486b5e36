/*
 * state.h - the states of task instances and runs (SPEC section 1), each
 * enum generated from one X-macro table with its JSON/database name so the
 * two can never drift apart. Any thread.
 */
#ifndef BARAM_DAG_STATE_H
#define BARAM_DAG_STATE_H

#include <stdbool.h>

#define TI_STATE_TABLE(X)                                                                          \
    X(TI_NONE, "none")                                                                             \
    X(TI_SCHEDULED, "scheduled")                                                                   \
    X(TI_QUEUED, "queued")                                                                         \
    X(TI_RUNNING, "running")                                                                       \
    X(TI_SUCCESS, "success")                                                                       \
    X(TI_FAILED, "failed")                                                                         \
    X(TI_SKIPPED, "skipped")                                                                       \
    X(TI_UPSTREAM_FAILED, "upstream_failed")                                                       \
    X(TI_UP_FOR_RETRY, "up_for_retry")

enum ti_state {
#define X(e, s) e,
    TI_STATE_TABLE(X)
#undef X
        TI_STATE_COUNT
};

#define RUN_STATE_TABLE(X)                                                                         \
    X(RUN_QUEUED, "queued")                                                                        \
    X(RUN_RUNNING, "running")                                                                      \
    X(RUN_SUCCESS, "success")                                                                      \
    X(RUN_FAILED, "failed")                                                                        \
    X(RUN_CANCELLED, "cancelled")

enum run_state {
#define X(e, s) e,
    RUN_STATE_TABLE(X)
#undef X
        RUN_STATE_COUNT
};

#define RUN_TYPE_TABLE(X)                                                                          \
    X(RUN_MANUAL, "manual")                                                                        \
    X(RUN_SCHEDULED, "scheduled")                                                                  \
    X(RUN_BACKFILL, "backfill")

enum run_type {
#define X(e, s) e,
    RUN_TYPE_TABLE(X)
#undef X
        RUN_TYPE_COUNT
};

const char *ti_state_name(enum ti_state s);
/* 0 and *out set, or -EINVAL for an unknown name. */
int ti_state_parse(const char *name, enum ti_state *out);
/* success, failed, skipped, upstream_failed: the instance will not change again by itself. */
bool ti_state_finished(enum ti_state s);

const char *run_state_name(enum run_state s);
int run_state_parse(const char *name, enum run_state *out);
bool run_state_finished(enum run_state s);

const char *run_type_name(enum run_type t);
int run_type_parse(const char *name, enum run_type *out);

#endif
