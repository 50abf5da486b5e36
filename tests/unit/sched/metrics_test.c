/*
 * metrics_test.c - the run engine's process-wide series (sched/metrics.c):
 * each latency lands in the first bucket whose bound holds it (a bound is
 * inclusive, a negative latency counts as 0, above the last is +Inf), and
 * the gauges and counters move as the engine reports.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "sched/metrics.h"

static void latencies_land_in_their_buckets(void **state)
{
    (void)state;
    struct metrics before, after;
    metrics_read(&before);
    metrics_note_latency_ns(-5);         /* counts as 0: the first bucket */
    metrics_note_latency_ns(100000);     /* 0.0001 s: exactly the first bound */
    metrics_note_latency_ns(300000);     /* 0.0003 s: the 0.0005 bucket */
    metrics_note_latency_ns(2000000000); /* 2 s: +Inf */
    metrics_read(&after);
    assert_int_equal(after.lat_bucket[0] - before.lat_bucket[0], 2);
    assert_int_equal(after.lat_bucket[2] - before.lat_bucket[2], 1);
    assert_int_equal(after.lat_bucket[METRICS_LAT_BUCKETS] - before.lat_bucket[METRICS_LAT_BUCKETS],
                     1);
    assert_int_equal(after.lat_count - before.lat_count, 4);
    assert_int_equal(after.lat_sum_ns - before.lat_sum_ns, 100000 + 300000 + 2000000000ULL);
}

static void gauges_and_counters_follow_the_engine(void **state)
{
    (void)state;
    struct metrics before, after;
    metrics_read(&before);
    metrics_add_active_runs(1);
    metrics_add_active_runs(1);
    metrics_add_active_runs(-1);
    metrics_set_queue_depth(7);
    metrics_try_started();
    metrics_try_started();
    metrics_try_finished();
    metrics_read(&after);
    assert_int_equal(after.active_runs - before.active_runs, 1);
    assert_int_equal(after.queue_depth, 7);
    assert_int_equal(after.tries_started - before.tries_started, 2);
    assert_int_equal(after.tries_finished - before.tries_finished, 1);
    metrics_add_active_runs(-1);
    metrics_set_queue_depth(0);
    metrics_read(&after);
    assert_int_equal(after.active_runs, before.active_runs);
    assert_int_equal(after.queue_depth, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(latencies_land_in_their_buckets),
        cmocka_unit_test(gauges_and_counters_follow_the_engine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
