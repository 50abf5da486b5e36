/*
 * plan.h - when a scheduled DAG's runs are due (SPEC section 5, Airflow's
 * data-interval rule): the run for logical date T covers the interval
 * [T, next(T)) and starts once that interval has ended, at next(T). Logical
 * dates are the schedule's fire times from `start` on, up to `end`.
 *
 * The daemon keeps one cursor per DAG, the next logical date to create a run
 * for: plan_cursor() finds it from the newest scheduled run in the store;
 * with catchup false it skips ahead to the latest interval that has ended,
 * so a DAG that was off for a month gets one run, not thirty. Each step is a
 * few cron_next() calls: no minute-by-minute scans, even for "every 1m" over
 * years.
 *
 * Pure functions of the DAG and the times given; any thread.
 */
#ifndef BARAM_DAG_PLAN_H
#define BARAM_DAG_PLAN_H

#include <stdint.h>

struct dag;

#define PLAN_NEVER INT64_MAX

/* The first logical date at or after t_ms within start..end, or PLAN_NEVER. */
int64_t plan_first_from(const struct dag *dag, int64_t t_ms);
/* The logical date after t_ms within start..end (the next fire), or PLAN_NEVER. */
int64_t plan_after(const struct dag *dag, int64_t t_ms);
/* When the run for logical date t_ms may start: the end of its interval, next(t). */
int64_t plan_due_at(const struct dag *dag, int64_t t_ms);
/* The newest logical date whose interval has ended by now_ms (within start..end), or -1. */
int64_t plan_latest_ended(const struct dag *dag, int64_t now_ms);
/* The next logical date to create a run for, given the newest scheduled run's (last_ms, -1
 * when none): after it, or the first from start; with catchup false, no earlier than the
 * latest interval that has ended. PLAN_NEVER when the schedule is over (or the DAG has no
 * schedule). */
int64_t plan_cursor(const struct dag *dag, int64_t last_ms, int64_t now_ms);

#endif
