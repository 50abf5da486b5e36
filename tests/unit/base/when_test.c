/*
 * when_test.c - UTC dates: parse, format, civil-day arithmetic.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>

#include "base/when.h"

static void parses_dates_and_times(void **state)
{
    int64_t t;
    assert_int_equal(when_parse("1970-01-01", &t), 0);
    assert_int_equal(t, 0);
    assert_int_equal(when_parse("2026-11-29T03:00:00.000Z", &t), 0);
    char s[32];
    when_format_iso(t, s, sizeof s);
    assert_string_equal(s, "2026-11-29T03:00:00.000Z");
    when_format_date(t, s, sizeof s);
    assert_string_equal(s, "2026-11-29");
    assert_int_equal(when_parse("2024-02-29", &t), 0);
    assert_int_equal(when_parse("2026-11-29T03:04", &t), 0);
    when_format_iso(t, s, sizeof s);
    assert_string_equal(s, "2026-11-29T03:04:00.000Z");
}

static void rejects_impossible_dates(void **state)
{
    int64_t t;
    assert_int_equal(when_parse("2026-02-29", &t), -EINVAL);
    assert_int_equal(when_parse("2026-13-01", &t), -EINVAL);
    assert_int_equal(when_parse("2026-1-1", &t), -EINVAL);
    assert_int_equal(when_parse("2026-01-01x", &t), -EINVAL);
    assert_int_equal(when_parse("2026-01-01T24:00", &t), -EINVAL);
    assert_int_equal(when_parse("", &t), -EINVAL);
}

static void civil_days_round_trip(void **state)
{
    for (int64_t d = -800000; d < 800000; d += 37) {
        int y;
        unsigned m, dd;
        when_civil_from_days(d, &y, &m, &dd);
        assert_int_equal(when_days_from_civil(y, m, dd), d);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_dates_and_times),
        cmocka_unit_test(rejects_impossible_dates),
        cmocka_unit_test(civil_days_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
