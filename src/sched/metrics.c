/*
 * metrics.c - the run engine's process-wide series (see metrics.h).
 *
 * The one global of the module: the engines of a process write it (their
 * loop threads), the API's threads read it; every access is a relaxed
 * atomic, since each series is independent and only ever read whole by
 * /metrics.
 */
#include "sched/metrics.h"

#include <stdatomic.h>
#include <stddef.h>

const double metrics_lat_bounds_s[METRICS_LAT_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0};

static struct {
    _Atomic uint64_t lat_bucket[METRICS_LAT_BUCKETS + 1];
    _Atomic uint64_t lat_count;
    _Atomic uint64_t lat_sum_ns;
    _Atomic int64_t queue_depth;
    _Atomic int64_t active_runs;
    _Atomic uint64_t tries_started;
    _Atomic uint64_t tries_finished;
} metrics_g;

void metrics_note_latency_ns(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    double s = (double)ns / 1e9;
    size_t b = 0;
    while (b < METRICS_LAT_BUCKETS && s > metrics_lat_bounds_s[b])
        b++;
    atomic_fetch_add_explicit(&metrics_g.lat_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_g.lat_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&metrics_g.lat_sum_ns, (uint64_t)ns, memory_order_relaxed);
}

void metrics_set_queue_depth(int64_t n)
{
    atomic_store_explicit(&metrics_g.queue_depth, n, memory_order_relaxed);
}

void metrics_add_active_runs(int64_t delta)
{
    atomic_fetch_add_explicit(&metrics_g.active_runs, delta, memory_order_relaxed);
}

void metrics_try_started(void)
{
    atomic_fetch_add_explicit(&metrics_g.tries_started, 1, memory_order_relaxed);
}

void metrics_try_finished(void)
{
    atomic_fetch_add_explicit(&metrics_g.tries_finished, 1, memory_order_relaxed);
}

void metrics_read(struct metrics *out)
{
    for (size_t i = 0; i <= METRICS_LAT_BUCKETS; i++)
        out->lat_bucket[i] = atomic_load_explicit(&metrics_g.lat_bucket[i], memory_order_relaxed);
    out->lat_count = atomic_load_explicit(&metrics_g.lat_count, memory_order_relaxed);
    out->lat_sum_ns = atomic_load_explicit(&metrics_g.lat_sum_ns, memory_order_relaxed);
    out->queue_depth = atomic_load_explicit(&metrics_g.queue_depth, memory_order_relaxed);
    out->active_runs = atomic_load_explicit(&metrics_g.active_runs, memory_order_relaxed);
    out->tries_started = atomic_load_explicit(&metrics_g.tries_started, memory_order_relaxed);
    out->tries_finished = atomic_load_explicit(&metrics_g.tries_finished, memory_order_relaxed);
}
