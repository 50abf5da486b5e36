/*
 * out_test.c - the run JSON object (SPEC section 3) built from real records
 * written to a real temporary SQLite store and read back, UTF-8 cleaning of
 * task output, durations and shell quoting for people.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/when.h"
#include "cli/out.h"
#include "store/store.h"

struct fixture {
    char dir[64];
    struct store *s;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/baram-out-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    struct buf url = BUF_INIT(BUF_NO_MAX);
    assert_int_equal(buf_addf(&url, "%s/baram.db", f->dir), 0);
    struct err serr = {0};
    assert_int_equal(store_open(url.data, &f->s, &serr), 0);
    buf_release(&url);
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
    store_close(f->s);
    assert_int_equal(nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(f);
    return 0;
}

static const int64_t T0 = 1795921200000; /* 2026-11-29T03:00:00.000Z */

static void put_run(struct store *s, const char *run_id, enum run_state st, int64_t started,
                    int64_t ended)
{
    struct run_rec r = {
        .run_id = (char *)run_id,
        .dag_id = "etl",
        .state = st,
        .type = RUN_MANUAL,
        .logical_at_ms = T0,
        .queued_at_ms = started,
        .started_at_ms = started,
        .ended_at_ms = ended,
        .dag_hash = "abc",
        .dag_path = "/x/etl.yaml",
    };
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, &r, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
}

static void put_ti(struct store *s, const char *run_id, const char *task_id, const char *task,
                   int map_index, enum ti_state st, int tries, int exit_code, const char *output,
                   size_t output_len, int64_t started, int64_t ended)
{
    struct ti_rec t = {
        .run_id = (char *)run_id,
        .task_id = (char *)task_id,
        .task = (char *)task,
        .map_index = map_index,
        .state = st,
        .try_number = tries,
        .max_tries = 3,
        .exit_code = exit_code,
        .output = (char *)output,
        .output_len = output_len,
        .priority = 1,
        .pool = "default",
        .scheduled_at_ms = started < 0 ? -1 : started - 5,
        .queued_at_ms = started < 0 ? -1 : started - 2,
        .started_at_ms = started,
        .ended_at_ms = ended,
    };
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_ti(s, &t, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
}

static void assert_json_str(json_t *o, const char *key, const char *want)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), want);
}

static void assert_json_null(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    assert_non_null(v);
    assert_true(json_is_null(v));
}

static void run_object_has_spec_shape(void **state)
{
    struct fixture *f = *state;
    const char *id = "manual__2026-11-29T03:00:00.000Z";
    put_run(f->s, id, RUN_FAILED, T0, T0 + 1234);
    put_ti(f->s, id, "extract", "extract", -1, TI_SUCCESS, 1, 0, "[1,2]", 5, T0 + 10, T0 + 22);
    put_ti(f->s, id, "shards[0]", "shards", 0, TI_FAILED, 3, 2, NULL, 0, T0 + 30, T0 + 530);
    put_ti(f->s, id, "shards[1]", "shards", 1, TI_SUCCESS, 1, 0,
           "bad\xff\xfe"
           "bytes\xe2\x82",
           12, T0 + 30, T0 + 40);
    put_ti(f->s, id, "report", "report", -1, TI_UPSTREAM_FAILED, 0, -1, NULL, 0, -1, T0 + 531);

    json_t *o = NULL;
    assert_int_equal(out_run_load(f->s, id, &o), 0);
    assert_json_str(o, "dag", "etl");
    assert_json_str(o, "run_id", id);
    assert_json_str(o, "state", "failed");
    assert_json_str(o, "type", "manual");
    assert_json_str(o, "logical_date", "2026-11-29T03:00:00.000Z");
    assert_json_str(o, "started_at", "2026-11-29T03:00:00.000Z");
    assert_json_str(o, "ended_at", "2026-11-29T03:00:01.234Z");
    json_t *tasks = json_object_get(o, "tasks");
    assert_true(json_is_object(tasks));
    assert_int_equal(json_object_size(tasks), 4);

    /* Order of the store (first-seen task order, then map index) is kept. */
    const char *want_order[] = {"extract", "shards[0]", "shards[1]", "report"};
    size_t i = 0;
    const char *key;
    json_t *val;
    json_object_foreach(tasks, key, val)
    {
        assert_string_equal(key, want_order[i++]);
    }

    json_t *e = json_object_get(tasks, "extract");
    assert_json_str(e, "state", "success");
    assert_int_equal(json_integer_value(json_object_get(e, "tries")), 1);
    assert_int_equal(json_integer_value(json_object_get(e, "exit_code")), 0);
    assert_true(json_is_integer(json_object_get(e, "exit_code")));
    assert_json_str(e, "output", "[1,2]");
    assert_json_str(e, "started_at", "2026-11-29T03:00:00.010Z");
    assert_json_str(e, "ended_at", "2026-11-29T03:00:00.022Z");
    assert_true(json_is_real(json_object_get(e, "duration_s")));
    assert_float_equal(json_real_value(json_object_get(e, "duration_s")), 0.012, 1e-9);

    json_t *s0 = json_object_get(tasks, "shards[0]");
    assert_json_str(s0, "state", "failed");
    assert_int_equal(json_integer_value(json_object_get(s0, "tries")), 3);
    assert_int_equal(json_integer_value(json_object_get(s0, "exit_code")), 2);
    assert_json_null(s0, "output");
    assert_float_equal(json_real_value(json_object_get(s0, "duration_s")), 0.5, 1e-9);

    json_t *s1 = json_object_get(tasks, "shards[1]");
    assert_json_str(s1, "output",
                    "bad\xef\xbf\xbd\xef\xbf\xbd"
                    "bytes\xef\xbf\xbd\xef\xbf\xbd");

    json_t *rep = json_object_get(tasks, "report");
    assert_json_str(rep, "state", "upstream_failed");
    assert_int_equal(json_integer_value(json_object_get(rep, "tries")), 0);
    assert_json_null(rep, "exit_code");
    assert_json_null(rep, "output");
    assert_json_null(rep, "started_at");
    assert_json_str(rep, "ended_at", "2026-11-29T03:00:00.531Z");
    assert_json_null(rep, "duration_s");

    /* It prints as one line of valid JSON that parses back to the same object. */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    assert_int_equal(out_json_print(mem, o), 0);
    fclose(mem);
    assert_int_equal(text[len - 1], '\n');
    assert_null(memchr(text, '\n', len - 1));
    json_error_t jerr;
    json_t *back = json_loads(text, 0, &jerr);
    assert_non_null(back);
    assert_true(json_equal(back, o));
    json_decref(back);
    free(text);
    json_decref(o);
}

static void running_run_has_null_times(void **state)
{
    struct fixture *f = *state;
    const char *id = "manual__2026-11-29T04:00:00.000Z";
    put_run(f->s, id, RUN_RUNNING, T0, -1);
    put_ti(f->s, id, "a", "a", -1, TI_RUNNING, 1, -1, NULL, 0, T0 + 1, -1);
    json_t *o = NULL;
    assert_int_equal(out_run_load(f->s, id, &o), 0);
    assert_json_str(o, "state", "running");
    assert_json_null(o, "ended_at");
    json_t *a = json_object_get(json_object_get(o, "tasks"), "a");
    assert_json_null(a, "exit_code");
    assert_json_null(a, "ended_at");
    assert_json_null(a, "duration_s");
    json_decref(o);
}

static void missing_run_is_enoent(void **state)
{
    struct fixture *f = *state;
    json_t *o = NULL;
    assert_int_equal(out_run_load(f->s, "manual__nope", &o), -ENOENT);
    assert_null(o);

    /* The did-you-mean for a near miss names the stored run. */
    put_run(f->s, "manual__2026-11-29T05:00:00.000Z", RUN_SUCCESS, T0, T0 + 1);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    out_no_such_run(mem, f->s, "runs show", "manual__2026-11-29T05:00:00.001Z");
    fclose(mem);
    assert_string_equal(text, "baram runs show: no run 'manual__2026-11-29T05:00:00.001Z' "
                              "(did you mean 'manual__2026-11-29T05:00:00.000Z'?)\n");
    free(text);
}

static void summary_and_tables(void **state)
{
    struct fixture *f = *state;
    put_run(f->s, "manual__A", RUN_SUCCESS, T0, T0 + 2500);
    struct run_rec run;
    assert_int_equal(store_get_run(f->s, "manual__A", &run, NULL), 0);
    json_t *o = out_run_summary_json(&run);
    assert_null(json_object_get(o, "tasks"));
    assert_float_equal(json_real_value(json_object_get(o, "duration_s")), 2.5, 1e-9);
    json_decref(o);

    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    out_runs_table(mem, &run, 1);
    fclose(mem);
    assert_non_null(strstr(text, "RUN ID"));
    assert_non_null(strstr(text, "manual__A"));
    assert_non_null(strstr(text, "success"));
    assert_non_null(strstr(text, "2.50s"));
    free(text);
    run_rec_release(&run);
}

static void utf8_clean_replaces_only_invalid(void **state)
{
    const char in[] = "ok \xc3\xa9 \xf0\x9f\x98\x80 \xc0\xaf \xed\xa0\x80 \x00z";
    char *s = out_utf8_clean(in, sizeof in - 1);
    assert_string_equal(s, "ok \xc3\xa9 \xf0\x9f\x98\x80 \xef\xbf\xbd\xef\xbf\xbd "
                           "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd \xef\xbf\xbdz");
    free(s);
}

static void durations_and_quoting_for_people(void **state)
{
    char d[16];
    out_duration(-1, d, sizeof d);
    assert_string_equal(d, "-");
    out_duration(810, d, sizeof d);
    assert_string_equal(d, "0.81s");
    out_duration(12345, d, sizeof d);
    assert_string_equal(d, "12.3s");
    out_duration(123000, d, sizeof d);
    assert_string_equal(d, "2m03s");
    out_duration(3720000, d, sizeof d);
    assert_string_equal(d, "1h02m");

    char *q = out_shell_quote("extract");
    assert_string_equal(q, "extract");
    free(q);
    q = out_shell_quote("shards[3]");
    assert_string_equal(q, "'shards[3]'");
    free(q);
    q = out_shell_quote("it's");
    assert_string_equal(q, "'it'\\''s'");
    free(q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(run_object_has_spec_shape, setup, teardown),
        cmocka_unit_test_setup_teardown(running_run_has_null_times, setup, teardown),
        cmocka_unit_test_setup_teardown(missing_run_is_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(summary_and_tables, setup, teardown),
        cmocka_unit_test(utf8_clean_replaces_only_invalid),
        cmocka_unit_test(durations_and_quoting_for_people),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
