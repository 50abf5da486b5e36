/*
 * plan_test.c - the data-interval planner (dag/plan.h) as one table:
 * each row is a DAG (schedule, start, end, catchup, loaded from YAML with
 * dag_load_mem), the newest scheduled run's logical date (or none) and
 * "now"; it expects plan_cursor, plan_due_at of that cursor and
 * plan_latest_ended. Rows cover daily, hourly with an unaligned start,
 * @weekly, @monthly and month ends (the 30th and 31st skip short months),
 * @yearly, "every 15m", "every 1m" over six years, the leap day, the
 * day-of-month OR day-of-week rule, a start in the future, an end in the
 * past or mid-interval, catchup false after a long pause, and no schedule.
 * Then a walk over a catchup (plan_after from the cursor) that must meet
 * every interval once and stop at the latest ended one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/diag.h"
#include "base/when.h"
#include "base/xalloc.h"
#include "dag/plan.h"
#include "dag/dag.h"

struct plan_case {
    const char *schedule; /* NULL: manual only */
    const char *start;    /* NULL: none */
    const char *end;      /* NULL: none */
    bool catchup;
    const char *last;   /* the newest scheduled run's logical date; NULL: none (-1) */
    const char *now;    /* the clock */
    const char *cursor; /* expected plan_cursor; NULL: PLAN_NEVER */
    const char *due;    /* expected plan_due_at(cursor); NULL: PLAN_NEVER */
    const char *latest; /* expected plan_latest_ended(now); NULL: -1 */
};

#define D(x) x "T00:00:00Z"

static const struct plan_case cases[] = {
    /* daily: catchup from start; off: only the latest ended day; the newest run given */
    {"@daily", "2026-01-01", NULL, true, NULL, "2026-01-05T10:00:00Z", D("2026-01-01"),
     D("2026-01-02"), D("2026-01-04")},
    {"@daily", "2026-01-01", NULL, false, NULL, "2026-01-05T10:00:00Z", D("2026-01-04"),
     D("2026-01-05"), D("2026-01-04")},
    {"@daily", "2026-01-01", NULL, true, D("2026-01-03"), "2026-01-05T10:00:00Z", D("2026-01-04"),
     D("2026-01-05"), D("2026-01-04")},
    {"@daily", "2026-01-01", NULL, false, D("2026-01-01"), "2026-01-05T10:00:00Z", D("2026-01-04"),
     D("2026-01-05"), D("2026-01-04")},
    /* the newest run is newer than the latest ended interval: the one after it, due later */
    {"@daily", "2026-01-01", NULL, false, D("2026-01-04"), "2026-01-05T10:00:00Z", D("2026-01-05"),
     D("2026-01-06"), D("2026-01-04")},
    /* an interval has ended exactly at its end, not a second before */
    {"@daily", "2026-01-01", NULL, false, NULL, D("2026-01-02"), D("2026-01-01"), D("2026-01-02"),
     D("2026-01-01")},
    {"@daily", "2026-01-01", NULL, false, NULL, "2026-01-01T23:59:59Z", D("2026-01-01"),
     D("2026-01-02"), NULL},
    /* hourly, start between fires: the first logical date is the next fire */
    {"@hourly", "2026-03-01T05:30:00Z", NULL, true, NULL, "2026-03-01T05:45:00Z",
     "2026-03-01T06:00:00Z", "2026-03-01T07:00:00Z", NULL},
    {"@hourly", "2026-03-01T05:30:00Z", NULL, false, NULL, "2026-03-01T07:00:00Z",
     "2026-03-01T06:00:00Z", "2026-03-01T07:00:00Z", "2026-03-01T06:00:00Z"},
    /* catchup false after a long pause skips to the latest ended hour; true does not */
    {"@hourly", "2026-01-01", NULL, false, "2026-01-01T05:00:00Z", "2026-02-15T10:30:00Z",
     "2026-02-15T09:00:00Z", "2026-02-15T10:00:00Z", "2026-02-15T09:00:00Z"},
    {"@hourly", "2026-01-01", NULL, true, "2026-01-01T05:00:00Z", "2026-02-15T10:30:00Z",
     "2026-01-01T06:00:00Z", "2026-01-01T07:00:00Z", "2026-02-15T09:00:00Z"},
    /* @weekly is Sunday midnight: 2026-01-04, -11, -18 */
    {"@weekly", "2026-01-01", NULL, true, NULL, D("2026-01-20"), D("2026-01-04"), D("2026-01-11"),
     D("2026-01-11")},
    {"@weekly", "2026-01-01", NULL, false, NULL, D("2026-01-20"), D("2026-01-11"), D("2026-01-18"),
     D("2026-01-11")},
    /* @monthly from the 31st: the first of the next month */
    {"@monthly", "2026-01-31", NULL, true, NULL, D("2026-05-15"), D("2026-02-01"), D("2026-03-01"),
     D("2026-04-01")},
    /* the 31st skips February and April; the 30th skips February */
    {"0 0 31 * *", "2026-01-01", NULL, true, D("2026-01-31"), D("2026-07-01"), D("2026-03-31"),
     D("2026-05-31"), D("2026-03-31")},
    {"0 0 30 * *", "2026-02-01", NULL, false, NULL, D("2026-03-31"), D("2026-03-30"),
     D("2026-04-30"), NULL},
    {"@yearly", "2020-06-01", NULL, false, NULL, D("2026-03-01"), D("2025-01-01"), D("2026-01-01"),
     D("2025-01-01")},
    /* "every 15m" is anchored at the epoch, not at start */
    {"every 15m", "2026-01-01T00:07:00Z", NULL, true, NULL, "2026-01-01T01:00:00Z",
     "2026-01-01T00:15:00Z", "2026-01-01T00:30:00Z", "2026-01-01T00:45:00Z"},
    {"every 15m", "2026-01-01T00:07:00Z", NULL, false, NULL, "2026-01-01T01:00:00Z",
     "2026-01-01T00:45:00Z", "2026-01-01T01:00:00Z", "2026-01-01T00:45:00Z"},
    /* every minute, six years off: straight to the latest minute */
    {"every 1m", "2020-01-01", NULL, false, D("2020-01-01"), "2026-01-01T00:00:30Z",
     "2025-12-31T23:59:00Z", D("2026-01-01"), "2025-12-31T23:59:00Z"},
    /* the leap day: intervals four years long */
    {"0 0 29 2 *", "2025-01-01", NULL, true, NULL, D("2026-06-01"), D("2028-02-29"),
     D("2032-02-29"), NULL},
    {"0 0 29 2 *", "2024-01-01", NULL, false, NULL, D("2030-01-01"), D("2024-02-29"),
     D("2028-02-29"), D("2024-02-29")},
    {"0 0 29 2 *", "2024-01-01", NULL, true, D("2024-02-29"), D("2033-01-01"), D("2028-02-29"),
     D("2032-02-29"), D("2028-02-29")},
    /* day of month OR day of week: the 13th or Fridays (Feb 6, 13, 20 of 2026) */
    {"0 0 13 * 5", "2026-02-01", NULL, true, NULL, D("2026-02-14"), D("2026-02-06"),
     D("2026-02-13"), D("2026-02-06")},
    /* start in the future: the first fire at or after it, due a day later */
    {"@daily", "2027-01-01", NULL, false, NULL, D("2026-06-01"), D("2027-01-01"), D("2027-01-02"),
     NULL},
    {"@daily", "2027-01-01T06:00:00Z", NULL, true, NULL, D("2026-06-01"), D("2027-01-02"),
     D("2027-01-03"), NULL},
    /* an end in the past bounds the logical dates (the end itself included) */
    {"@daily", "2026-01-01", "2026-01-03", true, NULL, D("2026-06-01"), D("2026-01-01"),
     D("2026-01-02"), D("2026-01-03")},
    {"@daily", "2026-01-01", "2026-01-03", true, D("2026-01-03"), D("2026-06-01"), NULL, NULL,
     D("2026-01-03")},
    {"@daily", "2026-01-01", "2026-01-03", false, NULL, D("2026-06-01"), D("2026-01-03"),
     D("2026-01-04"), D("2026-01-03")},
    {"@daily", "2026-01-01", "2026-01-03", false, D("2026-01-03"), D("2026-06-01"), NULL, NULL,
     D("2026-01-03")},
    {"@daily", "2026-01-01", "2026-01-03T12:00:00Z", false, NULL, D("2026-06-01"), D("2026-01-03"),
     D("2026-01-04"), D("2026-01-03")},
    /* an end in the future changes nothing yet */
    {"@daily", "2026-01-01", "2026-12-31", false, NULL, "2026-01-05T10:00:00Z", D("2026-01-04"),
     D("2026-01-05"), D("2026-01-04")},
    /* no schedule: manual only */
    {NULL, NULL, NULL, false, NULL, D("2026-06-01"), NULL, NULL, NULL},
};

static int64_t at(const char *s, int64_t none)
{
    if (!s)
        return none;
    int64_t ms = 0;
    if (when_parse(s, &ms) < 0)
        fail_msg("bad time in the table: %s", s);
    return ms;
}

static struct dag *load(const char *schedule, const char *start, const char *end, bool catchup)
{
    char *text = xasprintf("dag: p\n%s%s%s%s%s%s%s%s%s"
                           "catchup: %s\n"
                           "tasks:\n  a: {run: \"true\"}\n",
                           schedule ? "schedule: \"" : "", schedule ? schedule : "",
                           schedule ? "\"\n" : "", start ? "start: \"" : "", start ? start : "",
                           start ? "\"\n" : "", end ? "end: \"" : "", end ? end : "",
                           end ? "\"\n" : "", catchup ? "true" : "false");
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_mem(text, strlen(text), "/nonexistent/p.yaml", &d);
    if (!dag) {
        diag_print(&d, stderr, 0);
        fail_msg("the DAG did not load:\n%s", text);
    }
    diag_release(&d);
    free(text);
    return dag;
}

static void show(char *out, size_t cap, int64_t t)
{
    if (t == PLAN_NEVER)
        snprintf(out, cap, "never");
    else if (t < 0)
        snprintf(out, cap, "%lld", (long long)t);
    else
        when_format_iso(t, out, cap);
}

static void table(void **state)
{
    (void)state;
    int bad = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct plan_case *c = &cases[i];
        struct dag *dag = load(c->schedule, c->start, c->end, c->catchup);
        int64_t now = at(c->now, -1);
        int64_t cur = plan_cursor(dag, at(c->last, -1), now);
        int64_t due = plan_due_at(dag, cur);
        int64_t latest = plan_latest_ended(dag, now);
        int64_t want[3] = {at(c->cursor, PLAN_NEVER), at(c->due, PLAN_NEVER), at(c->latest, -1)};
        int64_t got[3] = {cur, due, latest};
        static const char *const what[3] = {"cursor", "due", "latest_ended"};
        for (int k = 0; k < 3; k++) {
            if (got[k] == want[k])
                continue;
            char g[40], w[40];
            show(g, sizeof g, got[k]);
            show(w, sizeof w, want[k]);
            print_error("row %zu (%s start=%s end=%s catchup=%d last=%s now=%s): %s %s, want %s\n",
                        i, c->schedule ? c->schedule : "-", c->start ? c->start : "-",
                        c->end ? c->end : "-", c->catchup, c->last ? c->last : "-", c->now, what[k],
                        g, w);
            bad++;
        }
        /* The cursor is a logical date: a fire within start..end. */
        if (cur != PLAN_NEVER) {
            assert_int_equal(plan_first_from(dag, cur), cur);
            assert_true(cur >= dag->start_at_ms);
            assert_true(dag->end_at_ms < 0 || cur <= dag->end_at_ms);
            assert_true(due > cur);
        }
        dag_free(dag);
    }
    assert_int_equal(bad, 0);
}

/* Catching up walks every interval once, in order, and stops at the latest ended one. */
static void catchup_walk(void **state)
{
    (void)state;
    static const struct {
        const char *schedule, *start, *now;
        int n;
    } walks[] = {
        {"0 * * * *", "2026-11-29T00:00:00Z", "2026-11-29T05:10:00Z", 5},
        {"@daily", "2026-01-01", "2026-03-01T00:00:00Z", 59},
        {"every 15m", "2026-01-01T00:07:00Z", "2026-01-02T00:07:00Z", 95},
        {"0 0 31 * *", "2026-01-01", "2027-01-01T00:00:00Z", 6},
        {"0 0 29 2 *", "2000-01-01", "2026-01-01T00:00:00Z", 6},
    };
    for (size_t i = 0; i < sizeof(walks) / sizeof(walks[0]); i++) {
        struct dag *dag = load(walks[i].schedule, walks[i].start, NULL, true);
        int64_t now = at(walks[i].now, -1);
        int64_t latest = plan_latest_ended(dag, now);
        int n = 0;
        int64_t prev = -1, last = -1;
        for (int64_t t = plan_cursor(dag, -1, now); t != PLAN_NEVER && plan_due_at(dag, t) <= now;
             t = plan_cursor(dag, t, now)) {
            assert_true(t > prev);
            assert_int_equal(plan_after(dag, t), plan_due_at(dag, t));
            prev = last = t;
            n++;
            assert_true(n <= 10000);
        }
        if (n != walks[i].n)
            print_error("walk %zu (%s): %d intervals, want %d\n", i, walks[i].schedule, n,
                        walks[i].n);
        assert_int_equal(n, walks[i].n);
        assert_int_equal(last, latest);
        dag_free(dag);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table),
        cmocka_unit_test(catchup_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
