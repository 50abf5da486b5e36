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

#include <jansson.h>

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
    struct params_override p[] = {{"regoin", "x", 0}, {"", "y", 0}, {"size", NULL, 0}};
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
    struct params_override ok[] = {{"need", "v", 0}, {"region", "us", 0}};
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
        {"region", "us", 0}, {"nope", "x", 0}, {"region", "ap", 0}, {"size", NULL, 0}};
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
    struct params_override ov[] = {{"x", "1", 0}};
    const char **v = params_values(dag, ov, 1);
    assert_non_null(v);
    assert_null(params_lookup(dag, v, "x"));
    free(v);
    dag_free(dag);
}

static void conf_json_is_compact_and_sorted(void **state)
{
    (void)state;
    assert_null(params_conf_json(NULL, NULL, 0));
    struct params_override ov[] = {
        {"zone", "b", 0}, {"alpha", "a \"q\"", 0}, {NULL, "x", 0}, {"n", NULL, 0}};
    char *s = params_conf_json(NULL, ov, 4);
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
    char *s = params_conf_json(NULL, ov, n);
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
        {"{\"ok\": \"1\", \"a\": null}", "conf param 'a' must be a string, number or boolean"},
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

/* ---- typed params (SPEC section 13) ---- */

static const char *typed_yaml =
    "dag: t\n"
    "params:\n"
    "  limit: {type: integer, default: 100, minimum: 1, maximum: 1000, description: Rows}\n"
    "  mode: {type: string, enum: [fast, slow], default: fast}\n"
    "  day: {type: string, pattern: '^[0-9]{4}-[0-9]{2}$'}\n"
    "  ratio: {type: number, default: 0.5, maximum: 1.5}\n"
    "  dry: {type: boolean, default: false}\n"
    "  tags: {type: array, default: [a, 1]}\n"
    "  opts: {type: object, default: {x: 1}}\n"
    "  level: {type: integer, enum: [1, 2, 3], default: 2}\n"
    "  plain: eu\n"
    "tasks:\n  a: {run: 'true'}\n";

/* One value against a param of typed_yaml: NULL when accepted, else the message (malloc'd). */
static char *check_one(const struct dag *dag, const char *name, const char *value,
                       enum params_from from)
{
    struct diag d;
    diag_init(&d);
    struct params_override ov[] = {{name, value, (unsigned char)from},
                                   {"day", "2026-01", PARAMS_FROM_TEXT}};
    size_t n = strcmp(name, "day") == 0 ? 1 : 2;
    char *msg = NULL;
    if (params_check(dag, ov, n, &d) < 0) {
        assert_int_equal(d.n, 1);
        msg = strdup(d.v[0].msg);
    }
    diag_release(&d);
    return msg;
}

static void typed_values_are_checked_against_their_schema(void **state)
{
    (void)state;
    struct dag *dag = load(typed_yaml);
    static const struct {
        const char *name, *value;
        enum params_from from;
        const char *msg; /* NULL: accepted */
    } cases[] = {
        {"limit", "5", PARAMS_FROM_TEXT, NULL},
        {"limit", "5", PARAMS_FROM_JSON, NULL},
        {"limit", "5.0", PARAMS_FROM_JSON, NULL},
        {"limit", "1000", PARAMS_FROM_TEXT, NULL},
        {"limit", "5", PARAMS_FROM_STRING, "param 'limit': \"5\" is not an integer"},
        {"limit", "0", PARAMS_FROM_JSON, "param 'limit': 0 is less than the minimum 1"},
        {"limit", "1001", PARAMS_FROM_TEXT, "param 'limit': 1001 is greater than the maximum 1000"},
        {"limit", "5.5", PARAMS_FROM_TEXT, "param 'limit': 5.5 is not an integer"},
        {"limit", "five", PARAMS_FROM_TEXT, "param 'limit': \"five\" is not an integer"},
        {"limit", "", PARAMS_FROM_TEXT, "param 'limit': \"\" is not an integer"},
        {"limit", "99999999999999999999999", PARAMS_FROM_TEXT, "is not an integer"},
        {"mode", "slow", PARAMS_FROM_STRING, NULL},
        {"mode", "medium", PARAMS_FROM_TEXT,
         "param 'mode': \"medium\" is not one of [\"fast\",\"slow\"]"},
        {"mode", "1", PARAMS_FROM_JSON, "param 'mode': 1 is not a string"},
        {"day", "2026-12", PARAMS_FROM_TEXT, NULL},
        {"day", "x2026-12", PARAMS_FROM_TEXT,
         "param 'day': \"x2026-12\" does not match the pattern '^[0-9]{4}-[0-9]{2}$'"},
        {"ratio", "1.25", PARAMS_FROM_TEXT, NULL},
        {"ratio", "1", PARAMS_FROM_JSON, NULL},
        {"ratio", "2", PARAMS_FROM_JSON, "param 'ratio': 2 is greater than the maximum 1.5"},
        {"ratio", "NaN", PARAMS_FROM_TEXT, "param 'ratio': \"NaN\" is not a number"},
        {"dry", "true", PARAMS_FROM_TEXT, NULL},
        {"dry", "false", PARAMS_FROM_JSON, NULL},
        {"dry", "yes", PARAMS_FROM_TEXT, "param 'dry': \"yes\" is not a boolean"},
        {"dry", "true", PARAMS_FROM_STRING, "param 'dry': \"true\" is not a boolean"},
        {"tags", "[1, \"x\"]", PARAMS_FROM_TEXT, NULL},
        {"tags", "[]", PARAMS_FROM_JSON, NULL},
        {"tags", "{}", PARAMS_FROM_JSON, "param 'tags': {} is not an array"},
        {"tags", "[1", PARAMS_FROM_TEXT, "param 'tags': \"[1\" is not an array"},
        {"opts", "{\"a\": [1]}", PARAMS_FROM_JSON, NULL},
        {"opts", "{\"a\": 1, \"a\": 2}", PARAMS_FROM_TEXT, "is not an object"},
        {"level", "3", PARAMS_FROM_TEXT, NULL},
        {"level", "3.0", PARAMS_FROM_JSON, NULL},
        {"level", "4", PARAMS_FROM_JSON, "param 'level': 4 is not one of [1,2,3]"},
        {"plain", "anything", PARAMS_FROM_TEXT, NULL},
        {"plain", "7", PARAMS_FROM_JSON, NULL},
        {"plain", "[1]", PARAMS_FROM_JSON,
         "conf param 'plain' must be a string, number or boolean, not an array"},
        {"plain", "{}", PARAMS_FROM_JSON,
         "conf param 'plain' must be a string, number or boolean, not an object"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *msg = check_one(dag, cases[i].name, cases[i].value, cases[i].from);
        if (!cases[i].msg) {
            if (msg)
                fail_msg("case %zu (%s=%s): refused: %s", i, cases[i].name, cases[i].value, msg);
        } else {
            if (!msg || !strstr(msg, cases[i].msg))
                fail_msg("case %zu (%s=%s): got '%s', want '%s'", i, cases[i].name, cases[i].value,
                         msg ? msg : "(accepted)", cases[i].msg);
        }
        free(msg);
    }
    dag_free(dag);
}

static void a_long_value_is_cut_in_the_message(void **state)
{
    (void)state;
    struct dag *dag = load(typed_yaml);
    char *big = malloc(100001);
    memset(big, 'x', 100000);
    big[100000] = 0;
    char *msg = check_one(dag, "limit", big, PARAMS_FROM_STRING);
    assert_non_null(msg);
    assert_true(strlen(msg) < 200);
    assert_non_null(strstr(msg, "...\" is not an integer") ? msg : strstr(msg, "... is not"));
    free(msg);
    free(big);
    dag_free(dag);
}

static void conf_json_keeps_the_types_of_typed_params(void **state)
{
    (void)state;
    struct dag *dag = load(typed_yaml);
    struct params_override ov[] = {
        {"limit", "5", PARAMS_FROM_TEXT},      {"dry", "true", PARAMS_FROM_TEXT},
        {"tags", "[\"q\"]", PARAMS_FROM_TEXT}, {"ratio", "0.25", PARAMS_FROM_JSON},
        {"level", "2.0", PARAMS_FROM_JSON},    {"mode", "slow", PARAMS_FROM_TEXT},
        {"plain", "5", PARAMS_FROM_JSON}};
    char *s = params_conf_json(dag, ov, 7);
    assert_string_equal(s,
                        "{\"dry\":true,\"level\":2,\"limit\":5,\"mode\":\"slow\",\"plain\":\"5\","
                        "\"ratio\":0.25,\"tags\":[\"q\"]}");
    /* what the store records parses back, and passes the same check */
    struct params_override *back = NULL;
    size_t n = 0;
    char *err = NULL;
    assert_int_equal(params_conf_parse(s, &back, &n, &err), 0);
    assert_int_equal(n, 7);
    struct diag d;
    diag_init(&d);
    struct params_override all[8];
    memcpy(all, back, n * sizeof *back);
    all[7] = (struct params_override){"day", "2026-01", PARAMS_FROM_STRING};
    assert_int_equal(params_check(dag, all, 8, &d), 0);
    diag_release(&d);
    char *again = params_conf_json(dag, back, n);
    assert_string_equal(again, s);
    free(again);
    params_conf_free(back, n);
    free(s);
    dag_free(dag);
}

static void defaults_are_typed_and_seen_as_text(void **state)
{
    (void)state;
    struct dag *dag = load(typed_yaml);
    const char **v = params_values(dag, NULL, 0);
    assert_string_equal(params_lookup(dag, v, "limit"), "100");
    assert_string_equal(params_lookup(dag, v, "tags"), "[\"a\",1]");
    assert_string_equal(params_lookup(dag, v, "opts"), "{\"x\":1}");
    assert_null(params_lookup(dag, v, "day"));
    free(v);
    json_t *j = params_schema_json(dag);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(strstr(s, "\"limit\":{\"type\":\"integer\",\"default\":100,\"minimum\":1,"
                              "\"maximum\":1000,\"description\":\"Rows\"}"));
    assert_non_null(strstr(s, "\"plain\":{\"default\":\"eu\"}"));
    assert_non_null(strstr(s, "\"day\":{\"type\":\"string\",\"default\":null,\"pattern\":"));
    assert_non_null(strstr(s, "\"level\":{\"type\":\"integer\",\"default\":2,\"enum\":[1,2,3]}"));
    assert_non_null(strstr(s, "\"ratio\":{\"type\":\"number\",\"default\":0.5,\"maximum\":1.5}"));
    free(s);
    json_decref(j);
    dag_free(dag);
}

static void schema_errors_name_the_line(void **state)
{
    (void)state;
    static const struct {
        const char *param; /* the line under params: */
        const char *msg;
    } bad[] = {
        {"a: {type: integr}", "2:13: error: param 'a': unknown type 'integr'"},
        {"a: {type: integer, default: 0, minimum: 1}",
         "2:31: error: bad default: param 'a': 0 is less than the minimum 1"},
        {"a: {type: integer, minimum: 5, maximum: 1}",
         "2:43: error: param 'a': the minimum 5 is greater than the maximum 1"},
        {"a: {type: number, minimum: x}", "param 'a': 'minimum' must be a number"},
        {"a: {type: string, pattern: '(ab'}", "2:30: error: param 'a': bad 'pattern' '(ab'"},
        {"a: {type: string, pattern: '(a)\\1'}", "may not use back-references"},
        {"a: {type: string, enum: [x, y], default: z}", "bad default: param 'a': \"z\" is not one"},
        {"a: {type: integer, enum: [1, two]}", "param 'a': \"two\" is not an integer"},
        {"a: {type: integer, enum: []}", "'enum' must be a non-empty list"},
        {"a: {type: array, enum: [[1]]}", "'enum' is for strings, numbers and booleans"},
        {"a: {type: boolean, default: yes}", "bad default: param 'a': \"yes\" is not a boolean"},
        {"a: {type: array, default: 5}", "bad default: param 'a': 5 is not an array"},
        {"a: {type: integer, default: [1]}", "param 'a': 'default' must be an integer"},
        {"a: {type: string, minimum: 1}", "param 'a': 'minimum' needs type integer or number"},
        {"a: {type: integer, pattern: x}", "param 'a': 'pattern' needs type string"},
        {"a: {typ: string}", "param 'a': unknown key 'typ'"},
        {"a: {type: [string]}", "param 'a': unknown type"},
        {"a: {type: string, description: [x]}", "'description' must be a string"},
        {"a: {type: object, default: {k: 1, k: 2}}", "duplicate key 'k'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char yaml[512];
        snprintf(yaml, sizeof yaml, "params:\n  %s\ndag: x\ntasks:\n  a: {run: 'true'}\n",
                 bad[i].param);
        struct diag d;
        diag_init(&d);
        struct dag *dag = dag_load_mem(yaml, strlen(yaml), "p.yaml", &d);
        bool found = false;
        for (size_t k = 0; k < d.n && !found; k++) {
            char *f = diag_format(&d.v[k]);
            found = strstr(f, bad[i].msg) != NULL;
            free(f);
        }
        if (dag || !found) {
            char *f = d.n ? diag_format(&d.v[0]) : NULL;
            fail_msg("case %zu (%s): got '%s', want '%s'", i, bad[i].param, f ? f : "(loaded)",
                     bad[i].msg);
        }
        diag_release(&d);
    }
    /* a pattern is bounded */
    char yaml[1400];
    char pat[1002];
    memset(pat, 'a', 1001);
    pat[1001] = 0;
    snprintf(yaml, sizeof yaml,
             "dag: x\nparams:\n  a: {type: string, pattern: '%s'}\ntasks:\n"
             "  a: {run: 'true'}\n",
             pat);
    struct diag d;
    diag_init(&d);
    assert_null(dag_load_mem(yaml, strlen(yaml), "p.yaml", &d));
    assert_int_equal(diag_count(&d, "'pattern' is longer than 1000 bytes"), 1);
    diag_release(&d);
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
        cmocka_unit_test(typed_values_are_checked_against_their_schema),
        cmocka_unit_test(a_long_value_is_cut_in_the_message),
        cmocka_unit_test(conf_json_keeps_the_types_of_typed_params),
        cmocka_unit_test(defaults_are_typed_and_seen_as_text),
        cmocka_unit_test(schema_errors_name_the_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
