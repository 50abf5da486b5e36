/*
 * retry_test.c - retry delays: exponential backoff from the first retry,
 * the cap, and the edge cases (no delay, backoff < 1, huge exponents).
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <math.h>

#include "sched/retry.h"

static void backoff_grows_from_the_first_retry(void **state)
{
    assert_int_equal(retry_delay_ms(30000, 2, 0, 1), 30000);
    assert_int_equal(retry_delay_ms(30000, 2, 0, 2), 60000);
    assert_int_equal(retry_delay_ms(30000, 2, 0, 3), 120000);
    assert_int_equal(retry_delay_ms(1000, 1.5, 0, 3), 2250);
    assert_int_equal(retry_delay_ms(500, 1, 0, 10), 500);
}

static void capped_by_max_retry_delay(void **state)
{
    assert_int_equal(retry_delay_ms(30000, 2, 600000, 5), 480000);
    assert_int_equal(retry_delay_ms(30000, 2, 600000, 6), 600000);
    assert_int_equal(retry_delay_ms(30000, 2, 600000, 60), 600000);
}

static void edges(void **state)
{
    assert_int_equal(retry_delay_ms(0, 2, 0, 3), 0);
    assert_int_equal(retry_delay_ms(-5, 2, 0, 3), 0);
    assert_int_equal(retry_delay_ms(1000, 0.5, 0, 3), 1000); /* backoff < 1 counts as 1 */
    assert_int_equal(retry_delay_ms(1000, NAN, 0, 3), 1000);
    assert_int_equal(retry_delay_ms(1000, 2, 0, 0), 1000); /* try numbers start at 1 */
    int64_t huge = retry_delay_ms(1000, 10, 0, 5000);      /* saturates, no overflow */
    assert_true(huge > 0);
    assert_true(huge <= (int64_t)366 * 24 * 3600 * 1000);
    assert_int_equal(retry_delay_ms(1000, 1e300, 5000, 3), 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(backoff_grows_from_the_first_retry),
        cmocka_unit_test(capped_by_max_retry_delay),
        cmocka_unit_test(edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
