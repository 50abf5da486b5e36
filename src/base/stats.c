/*
 * stats.c - the process-wide counters (see stats.h).
 */
#include "base/stats.h"

const double stats_lat_bounds_s[STATS_LAT_BUCKETS] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                                      0.01,   0.025,   0.05,   0.1,   0.5,    1.0};

struct stats stats_g;

void stats_note_latency_ns(int64_t ns)
{
    if (ns < 0)
        ns = 0;
    double s = (double)ns / 1e9;
    size_t b = 0;
    while (b < STATS_LAT_BUCKETS && s > stats_lat_bounds_s[b])
        b++;
    atomic_fetch_add_explicit(&stats_g.lat_bucket[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats_g.lat_count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&stats_g.lat_sum_ns, (uint64_t)ns, memory_order_relaxed);
}
