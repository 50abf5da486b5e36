/*
 * runjson_test.c - the "no active worker" note of ops/runjson.h: its text,
 * where runjson_set_notes puts it (the run object's tasks by id, an array of
 * task instance objects, one object) and where it leaves it out, and that a
 * store without workers (SQLite, a real file in a mkdtemp folder) has none.
 * The notes read from PostgreSQL are checked end to end in
 * tests/e2e/test_fleet_registry.py.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "base/err.h"
#include "ops/runjson.h"
#include "store/store.h"

static const char gpu_note[] = "no active worker listens on queue 'gpu'";

static void note_text(void **state)
{
    (void)state;
    char buf[64];
    assert_string_equal(runjson_note("gpu", buf, sizeof buf), gpu_note);
    assert_string_equal(runjson_note(NULL, buf, sizeof buf),
                        "no active worker listens on queue 'default'");
    char small[8];
    assert_string_equal(runjson_note("gpu", small, sizeof small), "no acti"); /* cut, ended */
}

static json_t *notes_gpu(void)
{
    return json_pack("{s:s}", "train", gpu_note);
}

static void run_object_tasks(void **state)
{
    (void)state;
    /* the run object's tasks, by id; a task may be called "task_id" */
    json_t *tasks = json_pack("{s:{s:s}, s:{s:s}, s:{s:s}}", "train", "state", "queued", "prep",
                              "state", "success", "task_id", "state", "queued");
    json_t *notes = notes_gpu();
    runjson_set_notes(tasks, notes);
    assert_string_equal(json_string_value(json_object_get(json_object_get(tasks, "train"), "note")),
                        gpu_note);
    assert_null(json_object_get(json_object_get(tasks, "prep"), "note"));
    assert_null(json_object_get(json_object_get(tasks, "task_id"), "note"));
    json_decref(tasks);
    json_decref(notes);
}

static void instance_array_and_one(void **state)
{
    (void)state;
    json_t *a = json_pack("[{s:s}, {s:s}, {}]", "task_id", "prep", "task_id", "train");
    json_t *one = json_pack("{s:s}", "task_id", "train");
    json_t *other = json_pack("{s:s}", "task_id", "prep");
    json_t *notes = notes_gpu();
    runjson_set_notes(a, notes);
    runjson_set_notes(one, notes);
    runjson_set_notes(other, notes);
    assert_null(json_object_get(json_array_get(a, 0), "note"));
    assert_string_equal(json_string_value(json_object_get(json_array_get(a, 1), "note")), gpu_note);
    assert_null(json_object_get(json_array_get(a, 2), "note"));
    assert_string_equal(json_string_value(json_object_get(one, "note")), gpu_note);
    assert_null(json_object_get(other, "note"));
    /* no notes, or none to set them on: nothing happens */
    json_t *empty = json_object();
    runjson_set_notes(other, empty);
    runjson_set_notes(NULL, notes);
    runjson_set_notes(other, NULL);
    assert_null(json_object_get(other, "note"));
    json_decref(empty);
    json_decref(a);
    json_decref(one);
    json_decref(other);
    json_decref(notes);
}

static void sqlite_has_no_notes(void **state)
{
    (void)state;
    char dir[] = "/tmp/baram-runjson-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/baram.db", dir);
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(path, &s, &e), 0);
    json_t *notes = NULL;
    assert_int_equal(runjson_notes(s, "manual__2026-01-01T00:00:00.000Z", &notes, &e), 0);
    assert_true(json_is_object(notes));
    assert_int_equal(json_object_size(notes), 0);
    json_decref(notes);
    store_close(s);
    char side[80];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++) {
        snprintf(side, sizeof side, "%s%s", path, suffix[i]);
        unlink(side);
    }
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(note_text),
        cmocka_unit_test(run_object_tasks),
        cmocka_unit_test(instance_array_and_one),
        cmocka_unit_test(sqlite_has_no_notes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
