/*
 * remote_test.c - how often a scheduler sweeps dead workers: a twentieth of
 * worker.dead_after, bounded by 250 ms and by the heartbeat, the defaults
 * when unset. The protocol itself is tested end to end (tests/e2e/
 * test_remote_pg.py, test_worker_e2e.py) and in the store (wq_test.c).
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "sched/remote.h"

static void defaults_sweep_every_second(void **state)
{
    (void)state;
    assert_int_equal(remote_sweep_interval(5000, 20000), 1000);
    assert_int_equal(remote_sweep_interval(0, 0), 1000);
    assert_int_equal(remote_sweep_interval(-1, -1), 1000);
}

static void short_timings_sweep_no_faster_than_250ms(void **state)
{
    (void)state;
    assert_int_equal(remote_sweep_interval(500, 3000), 250);
    assert_int_equal(remote_sweep_interval(100, 200), 100); /* never slower than a heartbeat */
}

static void long_timings_sweep_at_most_every_heartbeat(void **state)
{
    (void)state;
    assert_int_equal(remote_sweep_interval(5000, 600000), 5000);
    assert_int_equal(remote_sweep_interval(60000, 600000), 30000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults_sweep_every_second),
        cmocka_unit_test(short_timings_sweep_no_faster_than_250ms),
        cmocka_unit_test(long_timings_sweep_at_most_every_heartbeat),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
