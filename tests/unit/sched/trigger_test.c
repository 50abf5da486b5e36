/*
 * trigger_test.c - every trigger rule against a table of upstream-state
 * combinations, including the ones not yet decidable.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>

#include "sched/trigger.h"

#define W TRIGGER_WAIT
#define R TRIGGER_RUN
#define S TRIGGER_SKIP
#define U TRIGGER_UPSTREAM_FAILED

/* Upstream counts: success, failed (incl. upstream_failed), skipped, pending. */
static const struct trigger_counts cases[] = {
    {0, 0, 0, 0}, /*  0 no upstream */
    {0, 0, 0, 2}, /*  1 nothing finished */
    {2, 0, 0, 0}, /*  2 all success */
    {1, 0, 0, 1}, /*  3 one success, one pending */
    {0, 2, 0, 0}, /*  4 all failed */
    {0, 1, 0, 1}, /*  5 one failed, one pending */
    {0, 0, 2, 0}, /*  6 all skipped */
    {0, 0, 1, 1}, /*  7 one skipped, one pending */
    {1, 1, 0, 0}, /*  8 success + failed */
    {1, 0, 1, 0}, /*  9 success + skipped */
    {0, 1, 1, 0}, /* 10 failed + skipped */
    {1, 1, 1, 0}, /* 11 one of each */
};

static const enum trigger_decision want[TRIGGER_RULE_COUNT][ARRAY_SIZE(cases)] = {
    /*                      0  1  2  3  4  5  6  7  8  9 10 11 */
    [TRIGGER_ALL_SUCCESS] = {R, W, R, W, U, U, S, W, U, S, U, U},
    [TRIGGER_ALL_FAILED] = {R, W, S, S, R, W, S, S, S, S, S, S},
    [TRIGGER_ALL_DONE] = {R, W, R, W, R, W, R, W, R, R, R, R},
    [TRIGGER_ONE_SUCCESS] = {R, W, R, R, U, W, S, W, R, R, U, R},
    [TRIGGER_ONE_FAILED] = {R, W, S, W, R, R, S, W, R, S, R, R},
    [TRIGGER_NONE_FAILED] = {R, W, R, W, U, U, R, W, U, R, U, U},
};

static void every_rule_on_every_case(void **state)
{
    int bad = 0;
    for (int rule = 0; rule < TRIGGER_RULE_COUNT; rule++) {
        for (size_t c = 0; c < ARRAY_SIZE(cases); c++) {
            enum trigger_decision got = trigger_decide((enum trigger_rule)rule, &cases[c]);
            if (got != want[rule][c]) {
                fprintf(stderr, "rule %s case %zu: got %d, want %d\n",
                        trigger_rule_name((enum trigger_rule)rule), c, got, want[rule][c]);
                bad++;
            }
        }
    }
    assert_int_equal(bad, 0);
}

static void one_success_fires_before_the_rest_finish(void **state)
{
    struct trigger_counts c = {.success = 1, .pending = 100};
    assert_int_equal(trigger_decide(TRIGGER_ONE_SUCCESS, &c), TRIGGER_RUN);
    c = (struct trigger_counts){.failed = 1, .pending = 100};
    assert_int_equal(trigger_decide(TRIGGER_ONE_FAILED, &c), TRIGGER_RUN);
    assert_int_equal(trigger_decide(TRIGGER_ALL_SUCCESS, &c), TRIGGER_UPSTREAM_FAILED);
    assert_int_equal(trigger_decide(TRIGGER_ALL_DONE, &c), TRIGGER_WAIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(every_rule_on_every_case),
        cmocka_unit_test(one_success_fires_before_the_rest_finish),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
