/*
 * args_test.c - the shared flag parser: value forms, repeatable flags,
 * positionals, `--`, help, and the exact unknown-flag message with its
 * did-you-mean (stderr captured in a real temp file).
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
#include <unistd.h>

#include "cli/args.h"
#include "dag/params.h"
#include "sched/run.h"

/* Runs args_parse with stderr sent to a temp file; returns its result, *err the text. */
struct captured {
    int r;
    char text[1024];
};

static struct captured parse_capture(int argc, char **argv, const struct args_flag *flags,
                                     size_t nflags, const char **pos, size_t maxpos, size_t *npos)
{
    struct captured c;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    assert_non_null(tmp);
    dup2(fileno(tmp), STDERR_FILENO);
    c.r = args_parse("run", argc, argv, flags, nflags, pos, maxpos, npos);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    size_t n = fread(c.text, 1, sizeof c.text - 1, tmp);
    c.text[n] = 0;
    fclose(tmp);
    return c;
}

struct opts {
    const char *date, *par;
    bool json;
    struct args_list params;
};

#define FLAGS(o)                                                                                   \
    {                                                                                              \
        {"param", ARGS_LIST, NULL, NULL, &(o).params},                                             \
            {"date", ARGS_STRING, NULL, &(o).date, NULL},                                          \
            {"parallelism", ARGS_STRING, NULL, &(o).par, NULL},                                    \
            {"json", ARGS_BOOL, &(o).json, NULL, NULL},                                            \
    }

static void parses_every_value_form(void **state)
{
    struct opts o = {0};
    const struct args_flag flags[] = FLAGS(o);
    char *argv[] = {"run",    "dag.yaml",      "--param", "a=1", "--param=b=2", "--date=2026-01-02",
                    "--json", "--parallelism", "4",       "--",  "--not-a-flag"};
    const char *pos[3];
    size_t npos;
    struct captured c = parse_capture(11, argv, flags, 4, pos, 3, &npos);
    assert_int_equal(c.r, 0);
    assert_string_equal(c.text, "");
    assert_int_equal(npos, 2);
    assert_string_equal(pos[0], "dag.yaml");
    assert_string_equal(pos[1], "--not-a-flag");
    assert_int_equal(o.params.n, 2);
    assert_string_equal(o.params.v[0], "a=1");
    assert_string_equal(o.params.v[1], "b=2");
    assert_string_equal(o.date, "2026-01-02");
    assert_string_equal(o.par, "4");
    assert_true(o.json);

    struct params_override *p;
    size_t np;
    assert_int_equal(args_params("run", &o.params, &p, &np), 0);
    assert_int_equal(np, 2);
    assert_string_equal(p[0].name, "a");
    assert_string_equal(p[0].value, "1");
    assert_string_equal(p[1].name, "b");
    assert_string_equal(p[1].value, "2");
    args_params_free(p, np);
    args_list_release(&o.params);
}

static void unknown_flag_suggests_the_closest(void **state)
{
    struct opts o = {0};
    const struct args_flag flags[] = FLAGS(o);
    char *argv[] = {"run", "x.yaml", "--parralelism", "4"};
    const char *pos[1];
    size_t npos;
    struct captured c = parse_capture(4, argv, flags, 4, pos, 1, &npos);
    assert_int_equal(c.r, -EINVAL);
    assert_string_equal(
        c.text, "baram run: unknown flag '--parralelism' (did you mean '--parallelism'?)\n");
    char *argv2[] = {"run", "--parralelism=4"};
    c = parse_capture(2, argv2, flags, 4, pos, 1, &npos);
    assert_string_equal(
        c.text, "baram run: unknown flag '--parralelism' (did you mean '--parallelism'?)\n");
    char *argv3[] = {"run", "-x"};
    c = parse_capture(2, argv3, flags, 4, pos, 1, &npos);
    assert_int_equal(c.r, -EINVAL);
    assert_string_equal(c.text, "baram run: unknown flag '-x'; see 'baram run --help'\n");
    args_list_release(&o.params);
}

static void help_missing_values_and_extra_args(void **state)
{
    struct opts o = {0};
    const struct args_flag flags[] = FLAGS(o);
    const char *pos[1];
    size_t npos;
    char *help[] = {"run", "x", "--help"};
    assert_int_equal(parse_capture(3, help, flags, 4, pos, 1, &npos).r, ARGS_HELP);
    char *h2[] = {"run", "-h"};
    assert_int_equal(parse_capture(2, h2, flags, 4, pos, 1, &npos).r, ARGS_HELP);

    char *missing[] = {"run", "x", "--date"};
    struct captured c = parse_capture(3, missing, flags, 4, pos, 1, &npos);
    assert_int_equal(c.r, -EINVAL);
    assert_string_equal(c.text, "baram run: flag '--date' needs a value\n");

    char *extra[] = {"run", "x", "y"};
    c = parse_capture(3, extra, flags, 4, pos, 1, &npos);
    assert_int_equal(c.r, -EINVAL);
    assert_string_equal(c.text, "baram run: unexpected argument 'y'; see 'baram run --help'\n");

    char *boolval[] = {"run", "--json=yes"};
    c = parse_capture(2, boolval, flags, 4, pos, 1, &npos);
    assert_int_equal(c.r, -EINVAL);
    assert_string_equal(c.text, "baram run: flag '--json' takes no value\n");
    args_list_release(&o.params);
}

static void bad_params_dates_and_numbers(void **state)
{
    struct args_list l = {0};
    const char *vals[] = {"=x", "novalue", "a=1"};
    struct params_override *p;
    size_t np;
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    FILE *tmp = tmpfile();
    dup2(fileno(tmp), STDERR_FILENO);
    for (int i = 0; i < 2; i++) {
        l.v = &vals[i];
        l.n = 1;
        assert_int_equal(args_params("run", &l, &p, &np), -EINVAL);
    }
    const char *dup_vals[] = {"a=1", "a=2"};
    l.v = dup_vals;
    l.n = 2;
    assert_int_equal(args_params("run", &l, &p, &np), -EINVAL);
    /* An empty value is a value. */
    const char *empty[] = {"a="};
    l.v = empty;
    l.n = 1;
    assert_int_equal(args_params("run", &l, &p, &np), 0);
    assert_string_equal(p[0].value, "");
    args_params_free(p, np);
    int64_t at;
    assert_int_equal(args_date("run", "2026-02-30", &at), -EINVAL);
    assert_int_equal(args_date("run", "2026-02-28", &at), 0);
    int n;
    assert_int_equal(args_int("run", "--parallelism", "0", 1, 10, &n), -EINVAL);
    assert_int_equal(args_int("run", "--parallelism", "4x", 1, 10, &n), -EINVAL);
    assert_int_equal(args_int("run", "--parallelism", "10", 1, 10, &n), 0);
    assert_int_equal(n, 10);
    fflush(stderr);
    dup2(saved, STDERR_FILENO);
    close(saved);
    rewind(tmp);
    char text[2048];
    size_t len = fread(text, 1, sizeof text - 1, tmp);
    text[len] = 0;
    fclose(tmp);
    assert_string_equal(text, "baram run: bad --param '=x' (expected NAME=VALUE)\n"
                              "baram run: bad --param 'novalue' (expected NAME=VALUE)\n"
                              "baram run: --param 'a' given twice\n"
                              "baram run: bad date '2026-02-30' (expected YYYY-MM-DD)\n"
                              "baram run: bad --parallelism '0' (a whole number from 1 to 10)\n"
                              "baram run: bad --parallelism '4x' (a whole number from 1 to 10)\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(parses_every_value_form),
        cmocka_unit_test(unknown_flag_suggests_the_closest),
        cmocka_unit_test(help_missing_values_and_extra_args),
        cmocka_unit_test(bad_params_dates_and_numbers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
