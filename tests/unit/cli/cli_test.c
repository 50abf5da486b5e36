/*
 * cli_test.c - the commands through cli_main, in process, against real DAG
 * files, a real home and real task processes: exit codes, nothing written
 * for bad input, `run --json` and `runs show --json` printing the same
 * object, logs, init's files and modes. stdout and stderr are captured in
 * temp files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "cli/cli.h"

struct fixture {
    char dir[64];
    char home[96];
    char dag[96];
    char bad[96];
};

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/baram-cli-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->home, sizeof f->home, "%s/home", f->dir);
    snprintf(f->dag, sizeof f->dag, "%s/demo.yaml", f->dir);
    snprintf(f->bad, sizeof f->bad, "%s/bad.yaml", f->dir);
    write_file(f->dag, "dag: demo\n"
                       "tasks:\n"
                       "  extract:\n"
                       "    run: printf '[\"a\",\"b\"]' > \"$BARAM_OUTPUT\"; echo log-{{ "
                       "params.greeting }}\n"
                       "  shards:\n"
                       "    needs: [extract]\n"
                       "    for_each: \"{{ outputs.extract }}\"\n"
                       "    run: echo shard {{ item }}\n"
                       "  flaky:\n"
                       "    needs: [extract]\n"
                       "    run: echo broken >&2; exit {{ params.code }}\n"
                       "params: {greeting: hi, code: '0'}\n");
    write_file(f->bad, "dag: bad\ntasks:\n  a:\n    run: true\n    retires: 1\n");
    unsetenv("BARAM_HOME");
    unsetenv("BARAM_PARALLELISM");
    *state = f;
    return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(f);
    return 0;
}

struct result {
    int code;
    char *out; /* malloc'd */
    char *err; /* malloc'd */
};

static char *slurp(FILE *f)
{
    fflush(f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc(1, (size_t)n + 1);
    assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

/* Runs cli_main on a NULL-terminated argument list, capturing stdout and stderr. */
static struct result run_cli(const char *arg0, ...)
{
    char *argv[32];
    int argc = 0;
    argv[argc++] = "baram";
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = (char *)a;
    va_end(ap);
    argv[argc] = NULL;

    fflush(stdout);
    fflush(stderr);
    int so = dup(STDOUT_FILENO), se = dup(STDERR_FILENO);
    FILE *fo = tmpfile(), *fe = tmpfile();
    dup2(fileno(fo), STDOUT_FILENO);
    dup2(fileno(fe), STDERR_FILENO);
    struct result r;
    r.code = cli_main(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(so, STDOUT_FILENO);
    dup2(se, STDERR_FILENO);
    close(so);
    close(se);
    fseek(fo, 0, SEEK_END);
    fseek(fe, 0, SEEK_END);
    r.out = slurp(fo);
    r.err = slurp(fe);
    return r;
}

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void bad_input_exits_2_and_writes_nothing(void **state)
{
    struct fixture *f = *state;
    struct result r = run_cli("run", f->bad, "--home", f->home, NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "bad.yaml:5:5: error: unknown key 'retires' (did you mean "
                                  "'retries'?)"));
    result_free(&r);

    r = run_cli("run", f->dag, "--home", f->home, "--param", "greting=x", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "unknown param 'greting' (did you mean 'greeting'?)"));
    result_free(&r);

    r = run_cli("run", f->dag, "--home", f->home, "--parralelism", "2", NULL);
    assert_int_equal(r.code, 2);
    assert_string_equal(
        r.err, "baram run: unknown flag '--parralelism' (did you mean '--parallelism'?)\n");
    result_free(&r);

    r = run_cli("run", f->dag, "--home", f->home, "--date", "2026-02-30", NULL);
    assert_int_equal(r.code, 2);
    result_free(&r);

    r = run_cli("run", "/nonexistent/x.yaml", "--home", f->home, NULL);
    assert_int_equal(r.code, 2);
    result_free(&r);

    /* No home, no database: nothing was written. */
    assert_false(exists(f->home));
}

static void run_json_matches_runs_show_and_logs_work(void **state)
{
    struct fixture *f = *state;
    struct result r = run_cli("run", f->dag, "--home", f->home, "--json", "--quiet", "--date",
                              "2026-11-29", NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.err, "");
    json_error_t jerr;
    json_t *run = json_loads(r.out, 0, &jerr);
    assert_non_null(run);
    assert_string_equal(json_string_value(json_object_get(run, "state")), "success");
    assert_string_equal(json_string_value(json_object_get(run, "logical_date")),
                        "2026-11-29T00:00:00.000Z");
    json_t *tasks = json_object_get(run, "tasks");
    assert_int_equal(json_object_size(tasks), 4);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(tasks, "extract"), "output")),
        "[\"a\",\"b\"]");
    assert_non_null(json_object_get(tasks, "shards[1]"));
    const char *run_id = json_string_value(json_object_get(run, "run_id"));
    assert_non_null(run_id);
    result_free(&r);

    r = run_cli("runs", "show", run_id, "--json", "--home", f->home, NULL);
    assert_int_equal(r.code, 0);
    json_t *shown = json_loads(r.out, 0, &jerr);
    assert_non_null(shown);
    assert_true(json_equal(run, shown));
    json_decref(shown);
    result_free(&r);

    r = run_cli("runs", "list", "--home", f->home, NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, run_id));
    result_free(&r);

    r = run_cli("runs", "profile", run_id, "--home", f->home, NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "critical path"));
    assert_non_null(strstr(r.out, "extract ("));
    assert_non_null(strstr(r.out, "shards (x2, "));
    result_free(&r);

    r = run_cli("logs", run_id, "extract", "--home", f->home, NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "log-hi\n");
    result_free(&r);

    r = run_cli("logs", run_id, "shards[1]", "--home", f->home, NULL);
    assert_int_equal(r.code, 0);
    assert_string_equal(r.out, "shard b\n");
    result_free(&r);

    r = run_cli("logs", run_id, "extrct", "--home", f->home, NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "(did you mean 'extract'?)"));
    result_free(&r);

    r = run_cli("logs", run_id, "../../etc", "--home", f->home, NULL);
    assert_int_equal(r.code, 2);
    result_free(&r);
    json_decref(run);
}

static void failed_run_exits_1_and_names_the_log(void **state)
{
    struct fixture *f = *state;
    struct result r =
        run_cli("run", f->dag, "--home", f->home, "--param", "code=3", "--quiet", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.out, " failed in "));
    assert_non_null(strstr(r.out, "failed: flaky (exit 3, try 1/1)"));
    assert_non_null(strstr(r.out, "see: baram logs manual__"));
    assert_non_null(strstr(r.out, " flaky --home "));
    result_free(&r);
}

static void tasks_test_runs_one_task(void **state)
{
    struct fixture *f = *state;
    struct result r = run_cli("tasks", "test", f->dag, "extract", NULL);
    assert_int_equal(r.code, 0);
    result_free(&r);
    r = run_cli("tasks", "test", f->dag, "flaky", "--param", "code=4", NULL);
    assert_int_equal(r.code, 1);
    assert_non_null(strstr(r.err, "failed (exit 4)"));
    result_free(&r);
    r = run_cli("tasks", "test", f->dag, "flakey", NULL);
    assert_int_equal(r.code, 2);
    assert_non_null(strstr(r.err, "(did you mean 'flaky'?)"));
    result_free(&r);
}

static void init_is_idempotent_and_private(void **state)
{
    struct fixture *f = *state;
    struct result r = run_cli("--home", f->home, "init", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "created home"));
    result_free(&r);
    char key[128], db[128];
    snprintf(key, sizeof key, "%s/secret.key", f->home);
    snprintf(db, sizeof db, "%s/baram.db", f->home);
    struct stat st;
    assert_int_equal(stat(key, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, 65); /* 64 hex digits and a newline */
    assert_int_equal(stat(f->home, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    assert_true(exists(db));
    FILE *kf = fopen(key, "re");
    char first[80] = {0};
    assert_non_null(fgets(first, sizeof first, kf));
    fclose(kf);

    r = run_cli("init", "--home", f->home, NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "already exists"));
    result_free(&r);
    kf = fopen(key, "re");
    char again[80] = {0};
    assert_non_null(fgets(again, sizeof again, kf));
    fclose(kf);
    assert_string_equal(first, again);
}

static void help_and_version(void **state)
{
    const char *cmds[] = {"run", "runs", "tasks", "logs", "init"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        struct result r = run_cli(cmds[i], "--help", NULL);
        assert_int_equal(r.code, 0);
        assert_non_null(strstr(r.out, "usage: baram "));
        result_free(&r);
    }
    struct result r = run_cli("--version", NULL);
    assert_int_equal(r.code, 0);
    assert_non_null(strstr(r.out, "baram "));
    result_free(&r);
    r = run_cli("rnu", NULL);
    assert_int_equal(r.code, 2);
    assert_string_equal(r.err, "baram: unknown command 'rnu' (did you mean 'run'?)\n");
    result_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(bad_input_exits_2_and_writes_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(run_json_matches_runs_show_and_logs_work, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_run_exits_1_and_names_the_log, setup, teardown),
        cmocka_unit_test_setup_teardown(tasks_test_runs_one_task, setup, teardown),
        cmocka_unit_test_setup_teardown(init_is_idempotent_and_private, setup, teardown),
        cmocka_unit_test_setup_teardown(help_and_version, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
