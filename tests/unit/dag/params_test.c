/*
 * params_test.c - a DAG's params and a run's overrides (dag/params.h):
 * every way an override is wrong is reported in one pass (unknown name with
 * its hint, malformed, a param without default left unset), the values a
 * run sees (default, override, last override wins), what {{ params.X }}
 * expands to, and the conf JSON both ways (sorted keys, numbers and
 * booleans kept as written, everything else refused).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/diag.h"
#include "dag/dag.h"
#include "dag/params.h"

static struct dag *load(const char *yaml)
{
    struct diag d;
    diag_init(&d);
    struct dag *dag = dag_load_mem(yaml, strlen(yaml), "p.yaml", &d);
    assert_int_equal(d.n, 0);
    diag_release(&d);
    assert_non_null(dag);
    return dag;
}

static const char *params_yaml =
    "dag: p\nparams: {region: eu, need: null, size: '3'}\ntasks:\n  a: {run: 'true'}\n";

/* The number of entries of d whose message holds what. */
static int diag_count(const struct diag *d, const char *what)
{
    int n = 0;
    for (size_t i = 0; i < d->n; i++)
        n += strstr(d->v[i].msg, what) != NULL;
    return n;
}

static void check_reports_every_problem_at_once(void **state)
{
    (void)state;
    struct dag *dag = load(params_yaml);
    struct diag d;
    diag_init(&d);
    struct params_override p[] = {{"regoin", "x"}, {"", "y"}, {"size", NULL}};
    assert_int_equal(params_check(dag, p, 3, &d), -EINVAL);
    assert_int_equal(d.n, 4);
    assert_int_equal(diag_count(&d, "unknown param 'regoin'"), 1);
    assert_int_equal(diag_count(&d, "malformed param '' (expected NAME=VALUE)"), 1);
    assert_int_equal(diag_count(&d, "malformed param 'size'"), 1);
    assert_int_equal(diag_count(&d, "param 'need' has no default and was not given"), 1);
    for (size_t i = 0; i < d.n; i++) {
        assert_string_equal(d.v[i].file, "p.yaml");
        if (strstr(d.v[i].msg, "regoin")) {
            assert_non_null(d.v[i].hint);
            assert_string_equal(d.v[i].hint, "did you mean 'region'?");
        }
    }
    diag_release(&d);
    dag_free(dag);
}

static void check_accepts_a_given_required_param(void **state)
{
    (void)state;
    struct dag *dag = load(params_yaml);
    struct diag d;
    diag_init(&d);
    struct params_override ok[] = {{"need", "v"}, {"region", "us"}};
    assert_int_equal(params_check(dag, ok, 2, &d), 0);
    assert_int_equal(d.n, 0);
    assert_int_equal(params_check(dag, ok, 1, &d), 0);
    /* Without the required one, whatever else is given. */
    assert_int_equal(params_check(dag, ok + 1, 1, &d), -EINVAL);
    assert_int_equal(d.n, 1);
    diag_release(&d);
    dag_free(dag);
}

static void values_take_defaults_then_the_last_override(void **state)
{
    (void)state;
    struct dag *dag = load(params_yaml);
    struct params_override ov[] = {
        {"region", "us"}, {"nope", "x"}, {"region", "ap"}, {"size", NULL}};
    const char **v = params_values(dag, ov, 4);
    int region = dag_param_index(dag, "region"), need = dag_param_index(dag, "need"),
        size = dag_param_index(dag, "size");
    assert_string_equal(v[region], "ap");
    assert_null(v[need]);
    assert_string_equal(v[size], "3"); /* an override without a value leaves the default */
    assert_string_equal(params_lookup(dag, v, "region"), "ap");
    assert_null(params_lookup(dag, v, "need"));
    assert_null(params_lookup(dag, v, "nope"));
    free(v);
    v = params_values(dag, NULL, 0);
    assert_string_equal(params_lookup(dag, v, "region"), "eu");
    free(v);
    dag_free(dag);
}

static void values_of_a_dag_without_params(void **state)
{
    (void)state;
    struct dag *dag = load("dag: q\ntasks:\n  a: {run: 'true'}\n");
    struct params_override ov[] = {{"x", "1"}};
    const char **v = params_values(dag, ov, 1);
    assert_non_null(v);
    assert_null(params_lookup(dag, v, "x"));
    free(v);
    dag_free(dag);
}

static void conf_json_is_compact_and_sorted(void **state)
{
    (void)state;
    assert_null(params_conf_json(NULL, 0));
    struct params_override ov[] = {{"zone", "b"}, {"alpha", "a \"q\""}, {NULL, "x"}, {"n", NULL}};
    char *s = params_conf_json(ov, 4);
    assert_string_equal(s, "{\"alpha\":\"a \\\"q\\\"\",\"zone\":\"b\"}");
    free(s);
}

static void conf_parse_keeps_numbers_as_written(void **state)
{
    (void)state;
    struct params_override *ov = NULL;
    size_t n = 9;
    char *err = NULL;
    assert_int_equal(params_conf_parse(NULL, &ov, &n, &err), 0);
    assert_null(ov);
    assert_int_equal(n, 0);
    assert_int_equal(params_conf_parse("", &ov, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(
        params_conf_parse("{\"s\": \"eu\", \"r\": 0.1, \"i\": 42, \"b\": true}", &ov, &n, &err), 0);
    assert_null(err);
    assert_int_equal(n, 4);
    const char *want[][2] = {{"s", "eu"}, {"r", "0.1"}, {"i", "42"}, {"b", "true"}};
    for (size_t k = 0; k < 4; k++) {
        bool seen = false;
        for (size_t i = 0; i < n; i++)
            if (strcmp(ov[i].name, want[k][0]) == 0) {
                assert_string_equal(ov[i].value, want[k][1]);
                seen = true;
            }
        assert_true(seen);
    }
    /* Round trip: what the store records parses back to the same overrides. */
    char *s = params_conf_json(ov, n);
    assert_string_equal(s, "{\"b\":\"true\",\"i\":\"42\",\"r\":\"0.1\",\"s\":\"eu\"}");
    params_conf_free(ov, n);
    assert_int_equal(params_conf_parse(s, &ov, &n, &err), 0);
    assert_int_equal(n, 4);
    free(s);
    params_conf_free(ov, n);
    params_conf_free(NULL, 0);
}

static void conf_parse_refuses_what_is_not_a_flat_object(void **state)
{
    (void)state;
    static const struct {
        const char *json, *msg;
    } bad[] = {
        {"[1]", "conf must be a JSON object of params"},
        {"{\"a\": ", "conf is not valid JSON"},
        {"{\"a\": \"1\", \"a\": \"2\"}", "conf is not valid JSON"},
        {"{\"ok\": \"1\", \"a\": {\"b\": 1}}",
         "conf param 'a' must be a string, number or boolean"},
        {"{\"a\": null}", "conf param 'a' must be"},
        {"{\"a\": [1]}", "conf param 'a' must be"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct params_override *ov = (void *)1;
        size_t n = 9;
        char *err = NULL;
        assert_int_equal(params_conf_parse(bad[i].json, &ov, &n, &err), -EINVAL);
        assert_null(ov);
        assert_int_equal(n, 0);
        assert_non_null(err);
        assert_non_null(strstr(err, bad[i].msg));
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(check_reports_every_problem_at_once),
        cmocka_unit_test(check_accepts_a_given_required_param),
        cmocka_unit_test(values_take_defaults_then_the_last_override),
        cmocka_unit_test(values_of_a_dag_without_params),
        cmocka_unit_test(conf_json_is_compact_and_sorted),
        cmocka_unit_test(conf_parse_keeps_numbers_as_written),
        cmocka_unit_test(conf_parse_refuses_what_is_not_a_flat_object),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
