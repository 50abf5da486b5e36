/*
 * cron_test.c - cron_parse() and cron_next(): a table of expressions and
 * instants with their expected next fire times, a table of errors with their
 * exact messages, and a cross-check of cron_next()'s field jumps against a
 * plain day-by-day, minute-by-minute scan.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/when.h"
#include "dag/cron.h"

static const struct {
    const char *expr;
    const char *after;
    const char *next; /* NULL: never again */
} nexts[] = {
    /* month ends */
    {"0 0 31 * *", "2026-04-01T00:00", "2026-05-31T00:00:00.000Z"},
    {"0 0 31 * *", "2026-01-31T00:00", "2026-03-31T00:00:00.000Z"},
    {"0 0 31 * *", "2026-05-31T00:00", "2026-07-31T00:00:00.000Z"},
    {"0 0 31 * *", "2026-12-31T00:00", "2027-01-31T00:00:00.000Z"},
    {"0 0 30 1-12/2 *", "2026-01-30T00:00", "2026-03-30T00:00:00.000Z"},
    {"0 0 31 * *", "2026-04-30T00:00", "2026-05-31T00:00:00.000Z"}, /* from a 30th */
    {"0 0 31 * *", "2026-06-30T23:59", "2026-07-31T00:00:00.000Z"},
    {"0 0 31 * *", "2026-09-01T00:00", "2026-10-31T00:00:00.000Z"},
    {"0 0 31 * *", "2026-11-30T23:59:59.999", "2026-12-31T00:00:00.000Z"},
    {"0 0 31 * *", "2026-02-28T00:00", "2026-03-31T00:00:00.000Z"},
    /* leap days */
    {"0 0 29 2 *", "2025-01-01T00:00", "2028-02-29T00:00:00.000Z"},
    {"0 0 29 2 *", "2028-02-29T00:00", "2032-02-29T00:00:00.000Z"},
    {"0 0 29 2 *", "2096-03-01T00:00", "2104-02-29T00:00:00.000Z"},
    {"0 0 29 2 *", "2026-01-01T00:00", "2028-02-29T00:00:00.000Z"}, /* from a non-leap year */
    {"0 0 29 2 *", "2026-02-28T23:59", "2028-02-29T00:00:00.000Z"},
    {"0 0 29 2 *", "2027-03-01T00:00", "2028-02-29T00:00:00.000Z"},
    {"0 0 29 2 *", "2028-02-28T00:00", "2028-02-29T00:00:00.000Z"}, /* within a leap year */
    {"0 0 29 2 *", "2000-01-01T00:00", "2000-02-29T00:00:00.000Z"}, /* 400-year rule */
    /* steps crossing boundaries */
    {"*/7 * * * *", "2026-03-10T10:56", "2026-03-10T11:00:00.000Z"},
    {"*/7 * * * *", "2026-03-10T10:55", "2026-03-10T10:56:00.000Z"},
    {"*/7 * * * *", "2026-03-10T10:50", "2026-03-10T10:56:00.000Z"},
    {"*/7 * * * *", "2026-12-31T23:58", "2027-01-01T00:00:00.000Z"},
    {"0 0 */7 * *", "2026-03-01T00:00", "2026-03-08T00:00:00.000Z"},
    {"0 0 */7 * *", "2026-03-29T00:00", "2026-04-01T00:00:00.000Z"},
    {"0 0 */7 * *", "2026-02-22T00:00", "2026-03-01T00:00:00.000Z"}, /* no Feb 29 in 2026 */
    {"0 0 */7 * *", "2028-02-22T00:00", "2028-02-29T00:00:00.000Z"}, /* 2028 has one */
    {"0 0 */7 * *", "2026-04-29T00:00", "2026-05-01T00:00:00.000Z"},
    {"0 0 */7 * *", "2026-03-08T00:00", "2026-03-15T00:00:00.000Z"},
    {"*/7 * * * *", "2026-03-10T10:42", "2026-03-10T10:49:00.000Z"},
    {"*/7 * * * *", "2026-03-10T10:00", "2026-03-10T10:07:00.000Z"},
    {"0 9-17/2 * * *", "2026-03-10T09:00", "2026-03-10T11:00:00.000Z"},
    {"0 9-17/2 * * *", "2026-03-10T17:00", "2026-03-11T09:00:00.000Z"},
    {"5/15 * * * *", "2026-03-10T10:50", "2026-03-10T11:05:00.000Z"},
    {"1-30/2 * * * *", "2026-03-10T10:29", "2026-03-10T11:01:00.000Z"},
    {"0 */6 * * *", "2026-03-10T18:00", "2026-03-11T00:00:00.000Z"},
    /* lists and names */
    {"0 0 1,15 * *", "2026-03-02T00:00", "2026-03-15T00:00:00.000Z"},
    {"0,30 * * * *", "2026-03-10T10:29", "2026-03-10T10:30:00.000Z"},
    {"30 8 * JAN,jul *", "2026-02-01T00:00", "2026-07-01T08:30:00.000Z"},
    {"0 0 * FEB *", "2026-02-28T00:00", "2027-02-01T00:00:00.000Z"},
    {"0 12 * * MON-FRI", "2026-03-14T00:00", "2026-03-16T12:00:00.000Z"},
    {"0 22 * * 1-5", "2026-03-13T22:00", "2026-03-16T22:00:00.000Z"},
    {"0 12 * * Sun", "2026-03-10T00:00", "2026-03-15T12:00:00.000Z"},
    /* weekday 7 is Sunday */
    {"0 12 * * 7", "2026-03-10T00:00", "2026-03-15T12:00:00.000Z"},
    {"0 0 * * 5-7", "2026-03-14T00:00", "2026-03-15T00:00:00.000Z"},
    {"0 0 * * 0", "2026-03-15T00:00", "2026-03-22T00:00:00.000Z"},
    /* day-of-month OR day-of-week when both are restricted */
    {"0 0 13 * 5", "2026-03-01T00:00", "2026-03-06T00:00:00.000Z"},
    {"0 0 13 * 5", "2026-04-11T00:00", "2026-04-13T00:00:00.000Z"},
    {"0 0 1 * 1", "2026-04-14T00:00", "2026-04-20T00:00:00.000Z"},
    {"0 0 29 2 1", "2026-03-10T00:00", "2027-02-01T00:00:00.000Z"},
    {"0 0 * * 1", "2026-04-11T00:00", "2026-04-13T00:00:00.000Z"},
    /* aliases */
    {"@hourly", "2026-03-10T10:30", "2026-03-10T11:00:00.000Z"},
    {"@daily", "2026-03-10T10:30", "2026-03-11T00:00:00.000Z"},
    {"@midnight", "2026-03-10T10:30", "2026-03-11T00:00:00.000Z"},
    {"@weekly", "2026-03-10T00:00", "2026-03-15T00:00:00.000Z"},
    {"@monthly", "2026-03-10T00:00", "2026-04-01T00:00:00.000Z"},
    {"@yearly", "2026-03-10T00:00", "2027-01-01T00:00:00.000Z"},
    {"@ANNUALLY", "2026-12-31T23:59:59.999", "2027-01-01T00:00:00.000Z"},
    /* intervals, anchored at the epoch */
    {"every 15m", "2026-03-10T10:07:30", "2026-03-10T10:15:00.000Z"},
    {"every 15m", "2026-03-10T10:15", "2026-03-10T10:30:00.000Z"},
    {"every 1h30m", "1970-01-01T00:00", "1970-01-01T01:30:00.000Z"},
    {"every 7s", "1970-01-01T00:00", "1970-01-01T00:00:07.000Z"},
    {"  every   90  ", "1969-12-31T23:59", "1970-01-01T00:00:00.000Z"},
    /* year rollover, exact fire times, before the epoch */
    {"0 0 1 1 *", "2026-12-31T23:59", "2027-01-01T00:00:00.000Z"},
    {"59 23 31 12 *", "2026-03-10T00:00", "2026-12-31T23:59:00.000Z"},
    {"* * * * *", "2026-03-10T10:00", "2026-03-10T10:01:00.000Z"},
    {"* * * * *", "2026-03-10T10:00:00.001", "2026-03-10T10:01:00.000Z"},
    {"* * * * *", "2026-03-10T09:59:59.999", "2026-03-10T10:00:00.000Z"},
    {"0 3 * * *", "2026-03-10T03:00", "2026-03-11T03:00:00.000Z"},
    {"15 14 1 * *", "2026-03-10T00:00", "2026-04-01T14:15:00.000Z"},
    {"0 0 1 1 *", "1969-06-01T00:00", "1970-01-01T00:00:00.000Z"},
    {"\t0  0 1 1 *\n", "9999-01-01T00:00", NULL},
};

static const struct {
    const char *expr;
    const char *err;
} errors[] = {
    {"0 0 30 2 *", "never fires"},
    {"0 0 31 4,6,9,11 *", "never fires"},
    {"0 0 30,31 feb *", "never fires"},
    {"* * * * * *", "expected 5 fields, got 6"},
    {"* * * *", "expected 5 fields, got 4"},
    {"garbage", "expected 5 fields, got 1"},
    {"", "empty schedule"},
    {"  \t ", "empty schedule"},
    {"60 * * * *", "minute 60 out of range 0-59"},
    {"99999999999 * * * *", "minute 99999999999 out of range 0-59"},
    {"* 24 * * *", "hour 24 out of range 0-23"},
    {"* * 0 * *", "day-of-month 0 out of range 1-31"},
    {"* * 32 * *", "day-of-month 32 out of range 1-31"},
    {"* * * 13 *", "month 13 out of range 1-12"},
    {"* * * 0 *", "month 0 out of range 1-12"},
    {"* * * * 8", "day-of-week 8 out of range 0-7"},
    {"*/0 * * * *", "bad step '0'"},
    {"*/x * * * *", "bad step 'x'"},
    {"*/ * * * *", "bad step ''"},
    {"1-30/2/3 * * * *", "bad step '2/3'"},
    {"*/61 * * * *", "bad step '61'"},
    {"* * * FOO *", "unknown month 'FOO'"},
    {"* * * * FUNDAY", "unknown weekday 'FUNDAY'"},
    {"x * * * *", "bad minute 'x'"},
    {"1.5 * * * *", "bad minute '1.5'"},
    {"* * * * -1", "bad day-of-week '-1'"},
    {"5-1 * * * *", "bad range '5-1' in minute field"},
    {"1,,2 * * * *", "empty list item in minute field"},
    {"1, * * * *", "empty list item in minute field"},
    {"@often", "unknown schedule '@often'"},
    {"every 0s", "interval '0s' is shorter than 1s"},
    {"every 500ms", "interval '500ms' is shorter than 1s"},
    {"every soon", "bad duration 'soon'"},
    {"every", "expected 5 fields, got 1"},
};

static int64_t at(const char *s)
{
    int64_t t;
    if (when_parse(s, &t) != 0)
        fail_msg("bad instant in the table: %s", s);
    return t;
}

static void next_table(void **state)
{
    for (size_t i = 0; i < sizeof(nexts) / sizeof(nexts[0]); i++) {
        struct cron c;
        struct err err = {0};
        if (cron_parse(nexts[i].expr, &c, &err) != 0)
            fail_msg("'%s' rejected: %s", nexts[i].expr, err.msg);
        int64_t n = cron_next(&c, at(nexts[i].after));
        char got[32] = "never";
        if (n >= 0 || n < -1)
            when_format_iso(n, got, sizeof(got));
        if (!nexts[i].next ? n != -1 : strcmp(got, nexts[i].next) != 0)
            fail_msg("'%s' after %s: got %s, want %s", nexts[i].expr, nexts[i].after, got,
                     nexts[i].next ? nexts[i].next : "never");
    }
}

static void error_table(void **state)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
        struct cron c;
        memset(&c, 0x5a, sizeof(c));
        struct err err = {0};
        int r = cron_parse(errors[i].expr, &c, &err);
        if (r != -EINVAL || err.code != -EINVAL || strcmp(err.msg, errors[i].err) != 0)
            fail_msg("'%s': r=%d err='%s', want '%s'", errors[i].expr, r, err.msg, errors[i].err);
    }
    struct cron c;
    struct err err = {0};
    assert_int_equal(cron_parse(NULL, &c, &err), -EINVAL);
    char longexpr[400];
    memset(longexpr, '*', sizeof(longexpr) - 1);
    longexpr[sizeof(longexpr) - 1] = 0;
    assert_int_equal(cron_parse(longexpr, &c, &err), -EINVAL);
    assert_string_equal(err.msg, "schedule longer than 256 characters");
}

/* Two failed parses on one thread keep their own messages (each in the caller's struct). */
static void two_errors_keep_their_own_messages(void **state)
{
    struct cron c;
    struct err a = {0}, b = {0};
    assert_int_equal(cron_parse("61 * * * *", &c, &a), -EINVAL);
    assert_int_equal(cron_parse("* 25 * * *", &c, &b), -EINVAL);
    assert_string_equal(a.msg, "minute 61 out of range 0-59");
    assert_string_equal(b.msg, "hour 25 out of range 0-23");
    assert_int_equal(cron_parse("@nope", &c, NULL), -EINVAL); /* the caller may want no words */
}

static void parse_fills_bitmaps(void **state)
{
    struct cron c;
    struct err err = {0};
    assert_int_equal(cron_parse("0,30 9-17/4 */10 jan-mar,DEC sat-sun", &c, &err), -EINVAL);
    assert_int_equal(cron_parse("0,30 9-17/4 */10 jan-mar,DEC 0,6-7", &c, &err), 0);
    assert_true(c.minutes == (1ULL | 1ULL << 30));
    assert_int_equal(c.hours, 1u << 9 | 1u << 13 | 1u << 17);
    assert_int_equal(c.mdays, 1u << 1 | 1u << 11 | 1u << 21 | 1u << 31);
    assert_int_equal(c.months, 1u << 1 | 1u << 2 | 1u << 3 | 1u << 12);
    assert_int_equal(c.wdays, 1u << 0 | 1u << 6);
    assert_false(c.mday_any);
    assert_false(c.wday_any);
    assert_int_equal(c.every_ms, 0);
    assert_int_equal(cron_parse("* * * * *", &c, &err), 0);
    assert_true(c.mday_any && c.wday_any);
    assert_int_equal(c.wdays, 0x7f);
    assert_int_equal(cron_parse("every 2h", &c, &err), 0);
    assert_int_equal(c.every_ms, 2 * 3600 * 1000);
}

static void next_gives_up_on_empty_or_far(void **state)
{
    struct cron zero;
    memset(&zero, 0, sizeof(zero));
    assert_int_equal(cron_next(&zero, 0), -1);
    struct cron c;
    struct err err = {0};
    assert_int_equal(cron_parse("@daily", &c, &err), 0);
    assert_int_equal(cron_next(&c, INT64_MAX), -1);
    assert_int_equal(cron_next(&c, INT64_MIN), -1);
    assert_int_equal(cron_parse("every 1d", &c, &err), 0);
    assert_int_equal(cron_next(&c, INT64_MAX - 5), -1);
    assert_true(cron_next(&c, INT64_MIN + 5) < 0 || cron_next(&c, INT64_MIN + 5) > INT64_MIN);
}

/* The plain reading of struct cron, to check the jumps against. */
static bool naive_match(const struct cron *c, int64_t t_min)
{
    int64_t days = t_min >= 0 ? t_min / 1440 : -((-t_min + 1439) / 1440);
    int mod = (int)(t_min - days * 1440);
    int y;
    unsigned m, d;
    when_civil_from_days(days, &y, &m, &d);
    int wd = (int)(((days + 4) % 7 + 7) % 7);
    bool md = c->mdays >> d & 1, w = c->wdays >> wd & 1;
    bool day = (!c->mday_any && !c->wday_any) ? (md || w) : (md && w);
    return (c->months >> m & 1) && day && (c->hours >> (mod / 60) & 1) &&
           (c->minutes >> (mod % 60) & 1);
}

static bool naive_day(const struct cron *c, int64_t days)
{
    int y;
    unsigned m, d;
    when_civil_from_days(days, &y, &m, &d);
    int wd = (int)(((days + 4) % 7 + 7) % 7);
    bool md = c->mdays >> d & 1, w = c->wdays >> wd & 1;
    bool day = (!c->mday_any && !c->wday_any) ? (md || w) : (md && w);
    return (c->months >> m & 1) && day;
}

static void next_agrees_with_a_plain_scan(void **state)
{
    static const char *const pieces[5][8] = {
        {"*", "0", "*/7", "5/15", "1-30/2", "59", "0,30", "10-12"},
        {"*", "0", "23", "*/6", "9-17/2", "1,13", "12", "3"},
        {"*", "1", "31", "29", "*/7", "15-16", "30", "1,31"},
        {"*", "2", "feb", "*/3", "4,6,9,11", "1-12/5", "dec", "*"},
        {"*", "0", "7", "mon-fri", "5", "*/2", "6", "*"},
    };
    srand(1234);
    int checked = 0;
    for (int k = 0; k < 400; k++) {
        char expr[128];
        int len = 0;
        for (int f = 0; f < 5; f++)
            len += snprintf(expr + len, sizeof(expr) - (size_t)len, "%s%s", f ? " " : "",
                            pieces[f][rand() % 8]);
        struct cron c;
        struct err err = {0};
        if (cron_parse(expr, &c, &err) != 0) {
            assert_string_equal(err.msg, "never fires");
            continue;
        }
        int64_t after = (int64_t)(rand() % 2000) * 86400000 + (int64_t)(rand() % 86400000) +
                        at("2024-01-01T00:00");
        int64_t got = cron_next(&c, after);
        /* Scan up to 3 years ahead, skipping non-matching days whole. */
        int64_t t = after / 60000 + 1, limit = t + 3 * 366 * 1440, want = -1;
        while (t < limit) {
            int64_t day = t / 1440;
            if (!naive_day(&c, day)) {
                t = (day + 1) * 1440;
                continue;
            }
            if (naive_match(&c, t)) {
                want = t * 60000;
                break;
            }
            t++;
        }
        if (want >= 0 ? got != want : (got != -1 && got < limit * 60000))
            fail_msg("'%s' after %lld: got %lld want %lld", expr, (long long)after, (long long)got,
                     (long long)want);
        checked++;
    }
    assert_true(checked > 300);
}

static void next_is_fast(void **state)
{
    struct cron c;
    struct err err = {0};
    assert_int_equal(cron_parse("0 0 29 2 *", &c, &err), 0);
    int64_t t0 = when_mono_ns(), t = at("2001-01-01T00:00");
    for (int i = 0; i < 10000; i++) {
        int64_t n = cron_next(&c, t);
        assert_true(n > t);
        t = n;
        if (t > at("9000-01-01T00:00"))
            t = at("2001-01-01T00:00");
    }
    int64_t ns = when_mono_ns() - t0;
    print_message("cron_next('0 0 29 2 *'): %.2f us per call\n", ns / 10000.0 / 1000.0);
    assert_true(ns < 2000LL * 1000 * 1000); /* < 200 us per call even under ASan */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(next_table),
        cmocka_unit_test(error_table),
        cmocka_unit_test(two_errors_keep_their_own_messages),
        cmocka_unit_test(parse_fills_bitmaps),
        cmocka_unit_test(next_gives_up_on_empty_or_far),
        cmocka_unit_test(next_agrees_with_a_plain_scan),
        cmocka_unit_test(next_is_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
