/*
 * duration_test.c - duration_parse() over tables of good and bad inputs, and
 * duration_format() round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "dag/duration.h"

#define SEC  1000LL
#define MIN  (60 * SEC)
#define HOUR (60 * MIN)
#define DAY  (24 * HOUR)

static const struct {
    const char *in;
    int64_t ms;
} good[] = {
    {"250ms", 250},
    {"30s", 30 * SEC},
    {"5m", 5 * MIN},
    {"2h", 2 * HOUR},
    {"1d", DAY},
    {"1h30m", HOUR + 30 * MIN},
    {"1d2h3m4s500ms", DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 500},
    {"90", 90 * SEC},
    {"1.5", 1500},
    {"0", 0},
    {"0s", 0},
    {"0.001", 1},
    {"0.0009", 0},
    {"1.5h", 90 * MIN},
    {"2m30s", 150 * SEC},
    {"1s1ms", 1001},
    {"36525d", 36525 * DAY},
    {"3155760000", 3155760000 * SEC},
    {"00010s", 10 * SEC},
    {"1d1ms", DAY + 1},
};

static const char *const bad[] = {
    "",           "-1",
    "-5m",        "+5m",
    "5x",         "5 m",
    " 5m",        "5m ",
    "m",          "ms",
    "1h30",       "1m1h",
    "1s1s",       "1ms1s",
    "1.",         ".5",
    "1..5",       "5M",
    "5S",         "1y",
    "1w",         "36526d",
    "3155760001", "99999999999999999999999",
    "876601h",    "1d99999999999999999999h",
    "5min",       "5mss",
    "1e3",        "0x10",
    "1h-30m",     "nan",
    "inf",
};

static void parses_good_inputs(void **state)
{
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        int64_t ms = -42;
        int r = duration_parse(good[i].in, &ms);
        if (r != 0 || ms != good[i].ms)
            fail_msg("'%s': r=%d ms=%lld, want %lld", good[i].in, r, (long long)ms,
                     (long long)good[i].ms);
    }
}

static void rejects_bad_inputs(void **state)
{
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = -42;
        int r = duration_parse(bad[i], &ms);
        if (r != -EINVAL || ms != -42)
            fail_msg("'%s' accepted: r=%d ms=%lld", bad[i], r, (long long)ms);
    }
    int64_t ms;
    assert_int_equal(duration_parse(NULL, &ms), -EINVAL);
}

static void formats_for_humans(void **state)
{
    static const struct {
        int64_t ms;
        const char *out;
    } cases[] = {
        {0, "0s"},
        {250, "250ms"},
        {30 * SEC, "30s"},
        {HOUR + 30 * MIN, "1h30m"},
        {DAY + 2 * HOUR + 3 * MIN + 4 * SEC + 500, "1d2h3m4s500ms"},
        {-90 * SEC, "-1m30s"},
        {INT64_MIN, "-106751991167d7h12m55s808ms"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[32];
        duration_format(cases[i].ms, out, sizeof(out));
        assert_string_equal(out, cases[i].out);
    }
    char small[4];
    duration_format(DAY + HOUR, small, sizeof(small));
    assert_true(strlen(small) < sizeof(small));
}

static void format_round_trips(void **state)
{
    const int64_t samples[] = {1, 999, 1000, 61 * SEC, HOUR, DAY - 1, 36525 * DAY, 123456789};
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        char out[32];
        int64_t back = -1;
        duration_format(samples[i], out, sizeof(out));
        assert_int_equal(duration_parse(out, &back), 0);
        assert_int_equal(back, samples[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_good_inputs),
        cmocka_unit_test(rejects_bad_inputs),
        cmocka_unit_test(formats_for_humans),
        cmocka_unit_test(format_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
