/*
 * runfilter_test.c - the filters of the runs list across DAGs (ops/runfilter.h), as the CLI and
 * the API read them: a table of accepted inputs with the filter they make, and of refused ones
 * with the words of the message (the field named, the rule), plus the states' bound text
 * (store.h run_filter_states). Pure functions: no store.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "base/err.h"
#include "ops/runfilter.h"
#include "store/store.h"

static const char *const names[4] = {"state", "from", "to", "dag"};

#define JAN3 1767398400000LL /* 2026-01-03T00:00:00Z */

static void accepted(void **state)
{
    (void)state;
    static const struct {
        const char *dag, *states, *from, *to;
        unsigned want_states;
        bool has_from, has_to;
        int64_t from_ms, to_ms;
    } cases[] = {
        {NULL, NULL, NULL, NULL, 0, false, false, 0, 0},
        {"etl", NULL, NULL, NULL, 0, false, false, 0, 0},
        {NULL, "failed", NULL, NULL, RUN_STATE_BIT(RUN_FAILED), false, false, 0, 0},
        {NULL, "failed,running,failed", NULL, NULL,
         RUN_STATE_BIT(RUN_FAILED) | RUN_STATE_BIT(RUN_RUNNING), false, false, 0, 0},
        {NULL, "queued,running,success,failed,cancelled", NULL, NULL, (1u << RUN_STATE_COUNT) - 1,
         false, false, 0, 0},
        {NULL, NULL, "2026-01-03", NULL, 0, true, false, JAN3, 0},
        {NULL, NULL, NULL, "2026-01-03T00:00:01.500Z", 0, false, true, 0, JAN3 + 1500},
        {NULL, NULL, "2026-01-03", "2026-01-03", 0, true, true, JAN3, JAN3},
        {"a.b-c_d", "success", "2026-01-03", "2026-01-04", RUN_STATE_BIT(RUN_SUCCESS), true, true,
         JAN3, JAN3 + 86400000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run_filter f;
        struct err e = {0};
        int r = runfilter_parse(&f, cases[i].dag, cases[i].states, cases[i].from, cases[i].to,
                                names, &e);
        if (r != 0)
            fail_msg("case %zu refused: %s", i, err_msg(&e));
        assert_ptr_equal(f.dag_id, cases[i].dag);
        assert_int_equal(f.states, cases[i].want_states);
        assert_int_equal(f.has_from, cases[i].has_from);
        assert_int_equal(f.has_to, cases[i].has_to);
        if (f.has_from)
            assert_int_equal(f.from_ms, cases[i].from_ms);
        if (f.has_to)
            assert_int_equal(f.to_ms, cases[i].to_ms);
    }
}

static void refused(void **state)
{
    (void)state;
    char huge[400];
    memset(huge, 'x', sizeof huge - 1);
    huge[sizeof huge - 1] = '\0';
    static const char bad_utf8[] = "\xff\xfe";
    const struct {
        const char *dag, *states, *from, *to;
        const char *words[3];
    } cases[] = {
        {NULL, "", NULL, NULL, {"state", "empty"}},
        {NULL, "faild", NULL, NULL, {"state", "did you mean 'failed'"}},
        {NULL, "bogus", NULL, NULL, {"state", "expected queued, running"}},
        {NULL, "failed,", NULL, NULL, {"state", "empty state"}},
        {NULL, ",failed", NULL, NULL, {"state", "empty state"}},
        {NULL, "failed,,running", NULL, NULL, {"state", "empty state"}},
        {NULL, "Failed", NULL, NULL, {"state", "unknown run state"}},
        {NULL, "upstream_failed", NULL, NULL, {"state", "unknown run state"}},
        {NULL, huge, NULL, NULL, {"state", "too long"}},
        {NULL, bad_utf8, NULL, NULL, {"state", "unknown run state"}},
        {NULL, NULL, "", NULL, {"from", "empty"}},
        {NULL, NULL, "2026-02-30", NULL, {"from", "bad date"}},
        {NULL, NULL, "tomorrow", NULL, {"from", "YYYY-MM-DD"}},
        {NULL, NULL, huge, NULL, {"from", "too long"}},
        {NULL, NULL, NULL, "2026-13-01", {"to", "bad date"}},
        {NULL, NULL, "2026-01-04", "2026-01-03", {"from '2026-01-04' is after to '2026-01-03'"}},
        {"", NULL, NULL, NULL, {"dag", "empty"}},
        {"a b", NULL, NULL, NULL, {"dag", "not a DAG id"}},
        {"..", NULL, NULL, NULL, {"dag", "not a DAG id"}},
        {bad_utf8, NULL, NULL, NULL, {"dag", "not a DAG id"}},
        {"x' OR '1'='1", NULL, NULL, NULL, {"dag", "not a DAG id"}},
        {huge, NULL, NULL, NULL, {"dag", "too long"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct run_filter f;
        struct err e = {0};
        int r = runfilter_parse(&f, cases[i].dag, cases[i].states, cases[i].from, cases[i].to,
                                names, &e);
        if (r != -EINVAL)
            fail_msg("case %zu: %d, not -EINVAL", i, r);
        for (size_t k = 0; k < 3 && cases[i].words[k]; k++)
            if (!strstr(err_msg(&e), cases[i].words[k]))
                fail_msg("case %zu: '%s' does not say '%s'", i, err_msg(&e), cases[i].words[k]);
    }
}

static void states_text(void **state)
{
    (void)state;
    char buf[RUN_FILTER_STATES_MAX];
    struct run_filter f = {0};
    assert_string_equal(run_filter_states(&f, buf, sizeof buf), "");
    f.states = RUN_STATE_BIT(RUN_RUNNING) | RUN_STATE_BIT(RUN_FAILED);
    assert_string_equal(run_filter_states(&f, buf, sizeof buf), ",running,failed,");
    f.states = (1u << RUN_STATE_COUNT) - 1;
    assert_string_equal(run_filter_states(&f, buf, sizeof buf),
                        ",queued,running,success,failed,cancelled,");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted),
        cmocka_unit_test(refused),
        cmocka_unit_test(states_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
