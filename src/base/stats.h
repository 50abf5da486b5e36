/*
 * stats.h - process-wide counters for /metrics (SPEC section 10), written by
 * the scheduler's threads and read by the API's: plain atomics, no locks on
 * the hot paths.
 *
 * Any thread. The counters only grow (but the gauges queue_depth and
 * active_runs).
 */
#ifndef BARAM_BASE_STATS_H
#define BARAM_BASE_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Upper bounds (seconds) of the scheduling-latency histogram's buckets; +Inf is implied. */
#define STATS_LAT_BUCKETS 12
extern const double stats_lat_bounds_s[STATS_LAT_BUCKETS];

struct stats {
    _Atomic uint64_t lat_bucket[STATS_LAT_BUCKETS + 1]; /* not cumulative; last: +Inf */
    _Atomic uint64_t lat_count;
    _Atomic uint64_t lat_sum_ns;
    _Atomic int64_t queue_depth;     /* task instances waiting for a slot */
    _Atomic int64_t active_runs;     /* runs on this process's engine */
    _Atomic uint64_t tries_started;  /* by this process */
    _Atomic uint64_t tries_finished; /* by this process */
    _Atomic uint64_t commits;        /* store writer commits */
    _Atomic uint64_t commit_ns;      /* their total time */
    _Atomic uint64_t scheduler_up;   /* 1 while a scheduler runs in this process */
};

extern struct stats stats_g;

/* One scheduling latency (task ready -> process started). */
void stats_note_latency_ns(int64_t ns);

#endif
