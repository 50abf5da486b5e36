/*
 * metrics.h - the run engine's series for /metrics (SPEC section 10): the
 * scheduling-latency histogram, the queue depth, the active runs and the
 * tries started and finished by the engines of this process.
 *
 * Process-wide, like the process's other Prometheus series: the engines of
 * a process (the daemon's, or `baram run`'s) add to one set of counters, and
 * the API of the same process reads a snapshot. Plain relaxed atomics, no
 * locks on the loop's hot paths.
 *
 * Any thread. The counters only grow; queue_depth and active_runs are gauges.
 */
#ifndef BARAM_SCHED_METRICS_H
#define BARAM_SCHED_METRICS_H

#include <stdint.h>

/* Upper bounds (seconds) of the scheduling-latency histogram's buckets; +Inf is implied. */
#define METRICS_LAT_BUCKETS 12
extern const double metrics_lat_bounds_s[METRICS_LAT_BUCKETS];

/* The series as read at one moment (each load is atomic, the set is not). */
struct metrics {
    uint64_t lat_bucket[METRICS_LAT_BUCKETS + 1]; /* not cumulative; last: +Inf */
    uint64_t lat_count;
    uint64_t lat_sum_ns;
    int64_t queue_depth;     /* task instances waiting for a slot */
    int64_t active_runs;     /* runs on this process's engines */
    uint64_t tries_started;  /* by this process */
    uint64_t tries_finished; /* by this process */
};

/* One scheduling latency (task ready -> process started); a negative one counts as 0. */
void metrics_note_latency_ns(int64_t ns);
/* The task instances waiting for a slot now. */
void metrics_set_queue_depth(int64_t n);
/* A run joined (+1) or left (-1) an engine. */
void metrics_add_active_runs(int64_t delta);
void metrics_try_started(void);
void metrics_try_finished(void);

/* Fills *out with the series now. */
void metrics_read(struct metrics *out);

#endif
