/*
 * cmd_dags_test.c - `baram dags validate`: exit codes, the "ok" lines, a
 * folder's files in name order, duplicate ids within a folder, --json, and
 * usage errors. Runs cmd_dags in this process with stdout and stderr sent to
 * real temporary files, on real DAG files in a temporary folder.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/xalloc.h"
#include "cli/cli.h"
#include "cli/cmd.h"

static char dir[] = "/tmp/cmd_dags_test.XXXXXX";

struct captured {
    int rc;
    char out[16384];
    char err[16384];
};

static void slurp(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    ssize_t r;
    lseek(fd, 0, SEEK_SET);
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)r;
    buf[n] = 0;
}

/* Runs cmd_dags with argv (NULL-terminated), capturing both streams. */
static void run(struct captured *c, const char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    char outp[PATH_MAX], errp[PATH_MAX];
    snprintf(outp, sizeof outp, "%s/.out", dir);
    snprintf(errp, sizeof errp, "%s/.err", dir);
    int of = open(outp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ef = open(errp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    assert_true(of >= 0 && ef >= 0);
    fflush(stdout);
    fflush(stderr);
    int so = dup(1), se = dup(2);
    dup2(of, 1);
    dup2(ef, 2);
    c->rc = cmd_dags(argc, (char **)argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, 1);
    dup2(se, 2);
    close(so);
    close(se);
    slurp(of, c->out, sizeof c->out);
    slurp(ef, c->err, sizeof c->err);
    close(of);
    close(ef);
    unlink(outp);
    unlink(errp);
}

static void write_file(const char *name, const char *text)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static char *path_of(const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return xstrdup(p);
}

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    write_file("b.yaml", "dag: bee\ntasks:\n  one: {run: \"true\"}\n  two: {run: \"true\"}\n");
    write_file("a.yml", "dag: ay\ntasks:\n  one: {run: \"true\"}\n");
    write_file("notes.txt", "not a dag\n");
    return 0;
}

static int teardown(void **state)
{
    const char *names[] = {"a.yml", "b.yaml", "notes.txt", "bad.yaml", "c.yaml"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *p = path_of(names[i]);
        unlink(p);
        free(p);
    }
    rmdir(dir);
    return 0;
}

static void valid_files_print_ok_and_exit_0(void **state)
{
    struct captured c;
    char *b = path_of("b.yaml");
    const char *argv[] = {"dags", "validate", b, NULL};
    run(&c, argv);
    assert_int_equal(c.rc, EXIT_OK);
    char want[PATH_MAX + 32];
    snprintf(want, sizeof want, "%s: ok (2 tasks)\n", b);
    assert_string_equal(c.out, want);
    assert_string_equal(c.err, "");
    free(b);
}

static void folder_validates_yaml_files_in_name_order(void **state)
{
    struct captured c;
    const char *argv[] = {"dags", "validate", dir, NULL};
    run(&c, argv);
    assert_int_equal(c.rc, EXIT_OK);
    char want[2 * PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/a.yml: ok (1 tasks)\n%s/b.yaml: ok (2 tasks)\n", dir, dir);
    assert_string_equal(c.out, want);
}

static void invalid_file_prints_diagnostics_and_exits_1(void **state)
{
    write_file("bad.yaml", "dag: bad\ntasks:\n  x:\n    run: \"true\"\n    retires: 1\n");
    char *bad = path_of("bad.yaml"), *b = path_of("b.yaml");
    struct captured c;
    const char *argv[] = {"dags", "validate", b, bad, NULL};
    run(&c, argv);
    assert_int_equal(c.rc, EXIT_FAILED);
    char want[PATH_MAX + 128];
    snprintf(want, sizeof want, "%s:5:5: error: unknown key 'retires' (did you mean 'retries'?)\n",
             bad);
    assert_string_equal(c.err, want);
    assert_non_null(strstr(c.out, "b.yaml: ok (2 tasks)"));
    assert_null(strstr(c.out, "bad.yaml"));

    /* --json: an object with one entry per file, errors with positions. */
    const char *jargv[] = {"dags", "validate", "--json", b, bad, NULL};
    run(&c, jargv);
    assert_int_equal(c.rc, EXIT_FAILED);
    json_error_t jerr;
    json_t *top = json_loads(c.out, 0, &jerr);
    assert_non_null(top);
    json_t *j = json_object_get(top, "files");
    assert_true(json_is_array(j));
    assert_int_equal(json_array_size(j), 2);
    json_t *ok = json_array_get(j, 0), *ko = json_array_get(j, 1);
    assert_string_equal(json_string_value(json_object_get(ok, "dag")), "bee");
    assert_int_equal(json_integer_value(json_object_get(ok, "tasks")), 2);
    assert_int_equal(json_array_size(json_object_get(ok, "errors")), 0);
    assert_string_equal(json_string_value(json_object_get(ko, "file")), bad);
    assert_true(json_is_null(json_object_get(ko, "dag")));
    json_t *e = json_array_get(json_object_get(ko, "errors"), 0);
    assert_int_equal(json_integer_value(json_object_get(e, "line")), 5);
    assert_int_equal(json_integer_value(json_object_get(e, "col")), 5);
    assert_string_equal(json_string_value(json_object_get(e, "message")), "unknown key 'retires'");
    json_decref(top);
    free(bad);
    free(b);
    char *p = path_of("bad.yaml");
    unlink(p);
    free(p);
}

static void duplicate_ids_in_a_folder_are_errors(void **state)
{
    write_file("c.yaml", "dag: bee\ntasks:\n  t: {run: \"true\"}\n");
    struct captured c;
    const char *argv[] = {"dags", "validate", dir, NULL};
    run(&c, argv);
    assert_int_equal(c.rc, EXIT_FAILED);
    char want[2 * PATH_MAX + 64];
    snprintf(want, sizeof want, "%s/c.yaml: error: dag id 'bee' is also used by '%s/b.yaml'\n", dir,
             dir);
    assert_string_equal(c.err, want);
    char *p = path_of("c.yaml");
    unlink(p);
    free(p);
}

static void usage_errors_exit_2(void **state)
{
    struct captured c;
    const char *missing[] = {"dags", "validate", "/nonexistent/x.yaml", NULL};
    run(&c, missing);
    assert_int_equal(c.rc, EXIT_USAGE);
    assert_non_null(strstr(c.err, "cannot open '/nonexistent/x.yaml'"));

    const char *none[] = {"dags", "validate", NULL};
    run(&c, none);
    assert_int_equal(c.rc, EXIT_USAGE);

    const char *typo[] = {"dags", "valdate", "x", NULL};
    run(&c, typo);
    assert_int_equal(c.rc, EXIT_USAGE);
    assert_string_equal(c.err, "baram dags: unknown subcommand 'valdate' (did you mean "
                               "'validate'?)\n");

    const char *flag[] = {"dags", "validate", "--jsn", dir, NULL};
    run(&c, flag);
    assert_int_equal(c.rc, EXIT_USAGE);

    const char *bare[] = {"dags", NULL};
    run(&c, bare);
    assert_int_equal(c.rc, EXIT_USAGE);
}

static void help_goes_to_stdout_and_exits_0(void **state)
{
    struct captured c;
    const char *h1[] = {"dags", "--help", NULL};
    run(&c, h1);
    assert_int_equal(c.rc, EXIT_OK);
    assert_non_null(strstr(c.out, "validate PATH..."));
    const char *h2[] = {"dags", "validate", "--help", NULL};
    run(&c, h2);
    assert_int_equal(c.rc, EXIT_OK);
    assert_non_null(strstr(c.out, "usage: baram dags validate PATH..."));
    assert_string_equal(c.err, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(valid_files_print_ok_and_exit_0),
        cmocka_unit_test(folder_validates_yaml_files_in_name_order),
        cmocka_unit_test(invalid_file_prints_diagnostics_and_exits_1),
        cmocka_unit_test(duplicate_ids_in_a_folder_are_errors),
        cmocka_unit_test(usage_errors_exit_2),
        cmocka_unit_test(help_goes_to_stdout_and_exits_0),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
