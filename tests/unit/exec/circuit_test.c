/*
 * circuit_test.c - the circuit breaker state machine, driven by tables of
 * (time, event, expected answer, expected state) steps.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <string.h>

#include "exec/circuit.h"

enum ev { ALLOW, OK, FAIL, ABANDON };

struct step {
    int64_t now;
    enum ev ev;
    bool allowed; /* expected answer of ALLOW */
    enum circuit_state after;
};

static void run_table(int failures, int64_t reset_ms, const struct step *steps, size_t n)
{
    struct circuit c;
    circuit_init(&c, failures, reset_ms);
    assert_int_equal(c.state, CIRCUIT_CLOSED);
    for (size_t i = 0; i < n; i++) {
        const struct step *s = &steps[i];
        switch (s->ev) {
        case ALLOW: {
            bool got = circuit_allow(&c, s->now);
            if (got != s->allowed)
                fail_msg("step %zu: allow at %lld gave %d", i, (long long)s->now, got);
            break;
        }
        case OK:
            circuit_record(&c, true, s->now);
            break;
        case FAIL:
            circuit_record(&c, false, s->now);
            break;
        case ABANDON:
            circuit_abandon(&c);
            break;
        }
        if (c.state != s->after)
            fail_msg("step %zu: state %s, expected %s", i, circuit_state_name(c.state),
                     circuit_state_name(s->after));
    }
}

#define RUN(f, r, t) run_table((f), (r), (t), sizeof(t) / sizeof((t)[0]))

static void opens_after_failures_in_a_row(void **state)
{
    static const struct step t[] = {
        {0, ALLOW, true, CIRCUIT_CLOSED},   {0, FAIL, 0, CIRCUIT_CLOSED},
        {1, ALLOW, true, CIRCUIT_CLOSED},   {1, FAIL, 0, CIRCUIT_CLOSED},
        {2, ALLOW, true, CIRCUIT_CLOSED},   {2, FAIL, 0, CIRCUIT_OPEN},
        {3, ALLOW, false, CIRCUIT_OPEN},    {999, ALLOW, false, CIRCUIT_OPEN},
        {1001, ALLOW, false, CIRCUIT_OPEN},
    };
    RUN(3, 1000, t);
}

static void success_resets_the_streak(void **state)
{
    static const struct step t[] = {
        {0, FAIL, 0, CIRCUIT_CLOSED}, {0, FAIL, 0, CIRCUIT_CLOSED},
        {0, OK, 0, CIRCUIT_CLOSED},   {0, FAIL, 0, CIRCUIT_CLOSED},
        {0, FAIL, 0, CIRCUIT_CLOSED}, {0, ALLOW, true, CIRCUIT_CLOSED},
        {0, FAIL, 0, CIRCUIT_OPEN},
    };
    RUN(3, 100, t);
}

static void reset_lets_one_trial_through(void **state)
{
    static const struct step t[] = {
        {0, FAIL, 0, CIRCUIT_OPEN}, /* failures: 1 */
        {50, ALLOW, false, CIRCUIT_OPEN},
        {99, ALLOW, false, CIRCUIT_OPEN},
        {100, ALLOW, true, CIRCUIT_HALF_OPEN},  /* the trial */
        {101, ALLOW, false, CIRCUIT_HALF_OPEN}, /* only one */
        {5000, ALLOW, false, CIRCUIT_HALF_OPEN},
        {5001, OK, 0, CIRCUIT_CLOSED},
        {5002, ALLOW, true, CIRCUIT_CLOSED},
        {5003, ALLOW, true, CIRCUIT_CLOSED},
    };
    RUN(1, 100, t);
}

static void failed_trial_reopens_and_restarts_the_reset(void **state)
{
    static const struct step t[] = {
        {0, FAIL, 0, CIRCUIT_CLOSED},
        {0, FAIL, 0, CIRCUIT_OPEN},
        {200, ALLOW, true, CIRCUIT_HALF_OPEN},
        {250, FAIL, 0, CIRCUIT_OPEN},
        {400, ALLOW, false, CIRCUIT_OPEN}, /* reset counts from 250 */
        {449, ALLOW, false, CIRCUIT_OPEN},
        {450, ALLOW, true, CIRCUIT_HALF_OPEN},
        {460, OK, 0, CIRCUIT_CLOSED},
        /* after closing it takes `failures` failures again */
        {470, FAIL, 0, CIRCUIT_CLOSED},
        {480, FAIL, 0, CIRCUIT_OPEN},
    };
    RUN(2, 200, t);
}

static void late_answers_while_open_are_ignored(void **state)
{
    static const struct step t[] = {
        {0, FAIL, 0, CIRCUIT_OPEN},
        {10, OK, 0, CIRCUIT_OPEN}, /* a request sent before it opened */
        {20, FAIL, 0, CIRCUIT_OPEN},
        {30, ALLOW, true, CIRCUIT_HALF_OPEN}, /* the late failure did not restart the reset */
    };
    RUN(1, 25, t);
}

static void abandoned_trial_gives_the_next_try_the_trial(void **state)
{
    static const struct step t[] = {
        {0, FAIL, 0, CIRCUIT_OPEN},
        {100, ALLOW, true, CIRCUIT_HALF_OPEN},
        {110, ABANDON, 0, CIRCUIT_OPEN},
        {111, ALLOW, true, CIRCUIT_HALF_OPEN},
        {112, ALLOW, false, CIRCUIT_HALF_OPEN},
        {113, ABANDON, 0, CIRCUIT_OPEN},
        {114, ABANDON, 0, CIRCUIT_OPEN}, /* no trial out: nothing changes */
        {115, ALLOW, true, CIRCUIT_HALF_OPEN},
    };
    RUN(1, 100, t);
}

static void zero_reset_allows_a_trial_at_once(void **state)
{
    static const struct step t[] = {
        {0, FAIL, 0, CIRCUIT_OPEN},
        {0, ALLOW, true, CIRCUIT_HALF_OPEN},
        {0, ALLOW, false, CIRCUIT_HALF_OPEN},
        {0, OK, 0, CIRCUIT_CLOSED},
    };
    RUN(1, 0, t);
}

static void bad_settings_are_clamped(void **state)
{
    struct circuit c;
    circuit_init(&c, 0, -5);
    assert_int_equal(c.failures, 1);
    assert_int_equal(c.reset_ms, 0);
    circuit_record(&c, false, 10);
    assert_int_equal(c.state, CIRCUIT_OPEN);
    circuit_configure(&c, 4, 1000);
    assert_int_equal(c.state, CIRCUIT_OPEN); /* configure keeps the state */
    assert_int_equal(circuit_retry_in_ms(&c, 10), 1000);
    assert_int_equal(circuit_retry_in_ms(&c, 600), 410);
    assert_int_equal(circuit_retry_in_ms(&c, 2000), 0);
    assert_true(circuit_allow(&c, 2000));                  /* the trial */
    assert_int_equal(circuit_retry_in_ms(&c, 2100), 1000); /* its outcome is not known yet */
    circuit_record(&c, true, 2200);
    assert_int_equal(circuit_retry_in_ms(&c, 2200), 0);
    assert_string_equal(circuit_state_name(CIRCUIT_HALF_OPEN), "half_open");
    assert_string_equal(circuit_state_name((enum circuit_state)42), "unknown");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(opens_after_failures_in_a_row),
        cmocka_unit_test(success_resets_the_streak),
        cmocka_unit_test(reset_lets_one_trial_through),
        cmocka_unit_test(failed_trial_reopens_and_restarts_the_reset),
        cmocka_unit_test(late_answers_while_open_are_ignored),
        cmocka_unit_test(abandoned_trial_gives_the_next_try_the_trial),
        cmocka_unit_test(zero_reset_allows_a_trial_at_once),
        cmocka_unit_test(bad_settings_are_clamped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
