/*
 * pctl_test.c - percentiles of recent durations: nearest rank over what is kept, negative
 * samples ignored, the ring keeping only the last PCTL_MAX, microseconds capped.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "base/pctl.h"

static void test_empty_and_ranks(void **state)
{
    (void)state;
    struct pctl p = {0};
    assert_int_equal(pctl_get_us(&p, 50), 0);
    for (int i = 100; i >= 1; i--) /* 1..100 ms, noted out of order */
        pctl_note_ns(&p, (int64_t)i * 1000000);
    pctl_note_ns(&p, -5); /* ignored */
    assert_int_equal(p.total, 100);
    assert_int_equal(pctl_get_us(&p, 0), 1000);
    assert_int_equal(pctl_get_us(&p, 50), 51000); /* rank round(0.5 * 99) = 50 */
    assert_int_equal(pctl_get_us(&p, 99), 99000);
    assert_int_equal(pctl_get_us(&p, 100), 100000);
    pctl_release(&p);
    assert_int_equal(pctl_get_us(&p, 50), 0);
}

static void test_ring_keeps_the_last(void **state)
{
    (void)state;
    struct pctl p = {0};
    for (int i = 0; i < PCTL_MAX; i++)
        pctl_note_ns(&p, 1000000000); /* 1 s each */
    for (int i = 0; i < PCTL_MAX; i++)
        pctl_note_ns(&p, 1000); /* then 1 us each: they replace every older one */
    assert_int_equal(p.us.n, PCTL_MAX);
    assert_int_equal(pctl_get_us(&p, 100), 1);
    pctl_note_ns(&p, INT64_MAX); /* capped, not wrapped */
    assert_int_equal(pctl_get_us(&p, 100), UINT32_MAX);
    pctl_release(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_and_ranks),
        cmocka_unit_test(test_ring_keeps_the_last),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
