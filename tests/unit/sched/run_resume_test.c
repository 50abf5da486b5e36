/*
 * run_resume_test.c - resuming a run from its stored records (run.c's
 * run_restore_init and run_replay), as the daemon does after a crash: the
 * records are written to a real SQLite store in a mkdtemp home, read back
 * with store_list_tis, and handed to run_begin on a real engine (gated on
 * durability, like the daemon's) that runs real processes. Each task appends
 * "TASK TRY" to ran.txt, so a test sees what ran again and what did not.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "base/diag.h"
#include "base/err.h"
#include "base/when.h"
#include "dag/dag.h"
#include "sched/engine.h"
#include "sched/run.h"
#include "store/store.h"

#include "../tmphome.h"

#define RUN_ID "scheduled__2026-12-01T00:00:00.000Z"
#define RAN    "echo $BARAM_TASK $BARAM_TRY >> ran.txt"

static int setup(void **state)
{
    (void)state;
    return tmphome_make("resume");
}

static int teardown(void **state)
{
    (void)state;
    return tmphome_remove();
}

/* A stored task instance of RUN_ID (times unknown unless set after). */
static struct ti_rec stored(const char *task_id, const char *task, int map_index, enum ti_state st,
                            int try_number, int max_tries)
{
    struct ti_rec t = {
        .run_id = RUN_ID,
        .task_id = (char *)task_id,
        .task = (char *)task,
        .map_index = map_index,
        .state = st,
        .try_number = try_number,
        .max_tries = max_tries,
        .exit_code = st == TI_SUCCESS ? 0 : -1,
        .scheduled_at_ms = -1,
        .queued_at_ms = -1,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    return t;
}

struct resumed {
    struct dag *dag;
    struct engine *e;
    enum run_state state;
    bool ended, stopped;
    int64_t begun_at_ms; /* when run_begin was called */
    struct store *s;     /* open on the store once the run is over */
};

static void on_stopped(void *ud)
{
    struct resumed *x = ud;
    x->stopped = true;
}

static void on_ended(void *ud, struct run *r)
{
    struct resumed *x = ud;
    x->state = run_get_state(r);
    x->ended = true;
    run_free(r);
    engine_stop(x->e, on_stopped, x);
}

/* Stores the run ('running', as a dead scheduler left it) and tis, then resumes it from what
 * the store gives back and runs it to its end on a fresh loop. */
static void resume(struct resumed *x, const char *yaml, const struct ti_rec *tis, size_t n)
{
    memset(x, 0, sizeof(*x));
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/dag.yaml", home);
    struct diag d;
    diag_init(&d);
    x->dag = dag_load_mem(yaml, strlen(yaml), path, &d);
    if (!x->dag)
        diag_print(&d, stderr, 0);
    diag_release(&d);
    assert_non_null(x->dag);

    struct store *s = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(dbpath, &s, &serr), 0);
    int64_t t0 = when_now_ms() - 60000;
    struct run_rec rr = {
        .run_id = RUN_ID,
        .dag_id = (char *)x->dag->id,
        .state = RUN_RUNNING,
        .type = RUN_SCHEDULED,
        .logical_at_ms = t0,
        .queued_at_ms = t0,
        .started_at_ms = t0,
        .ended_at_ms = -1,
        .dag_hash = (char *)x->dag->hash,
        .dag_path = path,
    };
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, &rr, NULL), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(store_put_ti(s, &tis[i], NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    struct ti_rec *back = NULL;
    size_t nback = 0;
    assert_int_equal(store_list_tis(s, RUN_ID, &back, &nback, NULL), 0);
    assert_int_equal(nback, n);
    store_close(s);

    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct engine_opts eo = {
        .loop = &loop,
        .store_url = dbpath,
        .home = home,
        .parallelism = 4,
        .gate_on_durable = true,
    };
    assert_int_equal(engine_start(&eo, &x->e, &serr), 0);
    struct run_spec sp = {
        .dag = x->dag,
        .run_id = RUN_ID,
        .type = RUN_SCHEDULED,
        .logical_at_ms = t0,
        .queued_at_ms = t0,
        .started_at_ms = t0,
        .tis = back,
        .ntis = nback,
    };
    struct run *r = NULL;
    x->begun_at_ms = when_now_ms();
    assert_int_equal(run_begin(x->e, &sp, on_ended, x, &r, &serr), 0);
    store_free_tis(back, nback);
    assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
    assert_true(x->ended && x->stopped);
    assert_int_equal(uv_loop_close(&loop), 0);
    assert_int_equal(store_open(dbpath, &x->s, &serr), 0);
}

static void resumed_free(struct resumed *x)
{
    store_close(x->s);
    dag_free(x->dag);
}

/* The lines of ran.txt ("TASK TRY"), as one string; "" when nothing ran. Malloc'd. */
static char *ran(void)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/ran.txt", home);
    char *p = calloc(1, 64 * 1024);
    FILE *f = fopen(path, "re");
    if (f) {
        size_t got = fread(p, 1, 64 * 1024 - 1, f);
        p[got] = 0;
        fclose(f);
    }
    return p;
}

static void assert_ran(const char *want)
{
    char *got = ran();
    if (strcmp(got, want) != 0)
        fprintf(stderr, "ran.txt:\n%s\nwanted:\n%s\n", got, want);
    assert_string_equal(got, want);
    free(got);
}

static void get_ti(struct resumed *x, const char *task_id, struct ti_rec *t)
{
    int rc = store_get_ti(x->s, RUN_ID, task_id, t, NULL);
    if (rc != 0)
        fprintf(stderr, "no ti '%s'\n", task_id);
    assert_int_equal(rc, 0);
}

static void assert_ti(struct resumed *x, const char *task_id, enum ti_state st, int tries)
{
    struct ti_rec t;
    get_ti(x, task_id, &t);
    if (t.state != st || t.try_number != tries)
        fprintf(stderr, "%s: %s after %d tries, wanted %s after %d\n", task_id,
                ti_state_name(t.state), t.try_number, ti_state_name(st), tries);
    assert_int_equal(t.state, st);
    assert_int_equal(t.try_number, tries);
    ti_rec_release(&t);
}

/* The stored try number n of task_id (its state; *started_at_ms when not NULL). */
static enum ti_state try_state(struct resumed *x, const char *task_id, int n,
                               int64_t *started_at_ms)
{
    struct try_rec *v = NULL;
    size_t nv = 0;
    assert_int_equal(store_list_tries(x->s, RUN_ID, task_id, &v, &nv, NULL), 0);
    enum ti_state st = TI_NONE;
    bool found = false;
    for (size_t i = 0; i < nv; i++)
        if (v[i].try_number == n) {
            found = true;
            st = v[i].state;
            if (started_at_ms)
                *started_at_ms = v[i].started_at_ms;
        }
    store_free_tries(v, nv);
    if (!found)
        fprintf(stderr, "%s: no try %d\n", task_id, n);
    assert_true(found);
    return st;
}

static void running_try_counts_as_failed_and_is_retried(void **state)
{
    (void)state;
    struct resumed x;
    struct ti_rec tis[] = {stored("a", "a", -1, TI_RUNNING, 1, 2)};
    resume(&x,
           "dag: r1\n"
           "tasks:\n"
           "  a: {retries: 1, run: '" RAN "'}\n"
           "  b: {needs: [a], run: '" RAN "'}\n",
           tis, 1);
    assert_int_equal(x.state, RUN_SUCCESS);
    assert_ran("a 2\nb 1\n");
    assert_ti(&x, "a", TI_SUCCESS, 2);
    assert_int_equal(try_state(&x, "a", 1, NULL), TI_FAILED);
    assert_int_equal(try_state(&x, "a", 2, NULL), TI_SUCCESS);
    resumed_free(&x);
}

static void running_last_try_fails_without_running_again(void **state)
{
    (void)state;
    struct resumed x;
    struct ti_rec tis[] = {stored("a", "a", -1, TI_RUNNING, 1, 1)};
    resume(&x,
           "dag: r2\n"
           "tasks:\n"
           "  a: {run: '" RAN "'}\n"
           "  b: {needs: [a], run: '" RAN "'}\n"
           "  c: {needs: [a], trigger: all_done, run: '" RAN "'}\n",
           tis, 1);
    assert_int_equal(x.state, RUN_FAILED);
    assert_ran("c 1\n");
    assert_ti(&x, "a", TI_FAILED, 1);
    assert_int_equal(try_state(&x, "a", 1, NULL), TI_FAILED);
    struct ti_rec t;
    get_ti(&x, "a", &t);
    assert_non_null(t.message);
    assert_non_null(strstr(t.message, "scheduler stopped"));
    ti_rec_release(&t);
    assert_ti(&x, "b", TI_UPSTREAM_FAILED, 0);
    resumed_free(&x);
}

/* A claimed try (queued with its number: see run__sched_start) may have started its process
 * before the scheduler died: it is a failed try too, never started again under its number. */
static void claimed_try_counts_as_failed(void **state)
{
    (void)state;
    struct resumed x;
    struct ti_rec tis[] = {stored("a", "a", -1, TI_QUEUED, 1, 1),
                           stored("q", "q", -1, TI_QUEUED, 1, 2)};
    resume(&x,
           "dag: r3\n"
           "tasks:\n"
           "  a: {run: '" RAN "'}\n"
           "  q: {retries: 1, run: '" RAN "'}\n",
           tis, 2);
    assert_int_equal(x.state, RUN_FAILED);
    assert_ran("q 2\n");
    assert_ti(&x, "a", TI_FAILED, 1);
    assert_ti(&x, "q", TI_SUCCESS, 2);
    assert_int_equal(try_state(&x, "q", 1, NULL), TI_FAILED);
    resumed_free(&x);
}

static void finished_instances_never_run_again(void **state)
{
    (void)state;
    struct resumed x;
    struct ti_rec tis[] = {
        stored("a", "a", -1, TI_SUCCESS, 1, 1),
        stored("f", "f", -1, TI_FAILED, 2, 2),
        stored("s", "s", -1, TI_SKIPPED, 1, 1),
    };
    tis[0].output = "from-a";
    tis[0].output_len = 6;
    resume(&x,
           "dag: r4\n"
           "tasks:\n"
           "  a: {run: '" RAN "'}\n"
           "  f: {retries: 1, run: '" RAN "'}\n"
           "  s: {run: '" RAN "'}\n"
           "  b:\n"
           "    needs: [a, f, s]\n"
           "    trigger: all_done\n"
           "    run: " RAN "; printf %s \"$OUTPUT_A\" > $BARAM_OUTPUT\n",
           tis, 3);
    assert_int_equal(x.state, RUN_SUCCESS);
    assert_ran("b 1\n");
    assert_ti(&x, "a", TI_SUCCESS, 1);
    assert_ti(&x, "f", TI_FAILED, 2);
    assert_ti(&x, "s", TI_SKIPPED, 1);
    struct ti_rec t;
    get_ti(&x, "b", &t);
    assert_string_equal(t.output, "from-a"); /* the stored output, handed on */
    ti_rec_release(&t);
    resumed_free(&x);
}

/* Waiting for its retry when the scheduler died: it waits what is left of the delay, from
 * the failed try's end (kept as the instance's ended_at), not the whole delay, nor none. */
static void up_for_retry_waits_the_rest_of_its_delay(void **state)
{
    (void)state;
    struct resumed x;
    int64_t now = when_now_ms();
    struct ti_rec tis[] = {
        stored("w", "w", -1, TI_UP_FOR_RETRY, 1, 2),
        stored("old", "old", -1, TI_UP_FOR_RETRY, 1, 2),
    };
    tis[0].ended_at_ms = now - 1200;  /* 800 ms of its 2 s delay left */
    tis[1].ended_at_ms = now - 10000; /* its delay is over: at once */
    resume(&x,
           "dag: r5\n"
           "tasks:\n"
           "  w: {retries: 1, retry_delay: 2s, run: '" RAN "'}\n"
           "  old: {retries: 1, retry_delay: 2s, run: '" RAN "'}\n",
           tis, 2);
    assert_int_equal(x.state, RUN_SUCCESS);
    assert_ti(&x, "w", TI_SUCCESS, 2);
    assert_ti(&x, "old", TI_SUCCESS, 2);
    int64_t w2 = 0, old2 = 0;
    assert_int_equal(try_state(&x, "w", 2, &w2), TI_SUCCESS);
    assert_int_equal(try_state(&x, "old", 2, &old2), TI_SUCCESS);
    int64_t wait_w = w2 - x.begun_at_ms, wait_old = old2 - x.begun_at_ms;
    fprintf(stderr, "waited: w %lld ms, old %lld ms\n", (long long)wait_w, (long long)wait_old);
    assert_true(wait_w >= 700 - (x.begun_at_ms - now)); /* not none */
    assert_true(wait_w < 1700);                         /* not the whole 2 s again */
    assert_true(wait_old < 700);
    resumed_free(&x);
}

/* A mapped task's instances resume one by one: the finished one keeps its output, the
 * running one's try counts as failed (it has one more), the one that never started starts;
 * the downstream gets every output in order. */
static void mapped_instances_resume_one_by_one(void **state)
{
    (void)state;
    struct resumed x;
    struct ti_rec tis[] = {
        stored("m[0]", "m", 0, TI_SUCCESS, 1, 2),
        stored("m[1]", "m", 1, TI_RUNNING, 1, 2),
        stored("m[2]", "m", 2, TI_NONE, 0, 2),
    };
    tis[0].output = "X";
    tis[0].output_len = 1;
    resume(&x,
           "dag: r6\n"
           "tasks:\n"
           "  m:\n"
           "    for_each: [x, y, z]\n"
           "    retries: 1\n"
           "    run: " RAN "; printf %s {{ item }} | tr a-z A-Z > $BARAM_OUTPUT\n"
           "  after:\n"
           "    needs: [m]\n"
           "    run: " RAN "; printf %s \"$OUTPUT_M\" > $BARAM_OUTPUT\n",
           tis, 3);
    assert_int_equal(x.state, RUN_SUCCESS);
    char *got = ran();
    /* m[1] and m[2] run side by side: either order */
    if (strcmp(got, "m[1] 2\nm[2] 1\nafter 1\n") != 0 &&
        strcmp(got, "m[2] 1\nm[1] 2\nafter 1\n") != 0)
        fprintf(stderr, "ran.txt:\n%s", got);
    assert_true(strcmp(got, "m[1] 2\nm[2] 1\nafter 1\n") == 0 ||
                strcmp(got, "m[2] 1\nm[1] 2\nafter 1\n") == 0);
    free(got);
    assert_ti(&x, "m[0]", TI_SUCCESS, 1);
    assert_ti(&x, "m[1]", TI_SUCCESS, 2);
    assert_ti(&x, "m[2]", TI_SUCCESS, 1);
    assert_int_equal(try_state(&x, "m[1]", 1, NULL), TI_FAILED);
    struct ti_rec t;
    get_ti(&x, "after", &t);
    assert_string_equal(t.output, "[\"X\",\"Y\",\"Z\"]");
    ti_rec_release(&t);
    resumed_free(&x);
}

/* Instances the dead scheduler never reached ('none', 'scheduled') are decided afresh. */
static void unreached_instances_are_decided_afresh(void **state)
{
    (void)state;
    struct resumed x;
    struct ti_rec tis[] = {
        stored("a", "a", -1, TI_SUCCESS, 1, 1),
        stored("b", "b", -1, TI_SCHEDULED, 0, 1),
        stored("c", "c", -1, TI_NONE, 0, 1),
    };
    resume(&x,
           "dag: r7\n"
           "tasks:\n"
           "  a: {run: '" RAN "'}\n"
           "  b: {needs: [a], run: '" RAN "'}\n"
           "  c: {needs: [b], run: '" RAN "'}\n",
           tis, 3);
    assert_int_equal(x.state, RUN_SUCCESS);
    assert_ran("b 1\nc 1\n");
    assert_ti(&x, "b", TI_SUCCESS, 1);
    assert_ti(&x, "c", TI_SUCCESS, 1);
    resumed_free(&x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(running_try_counts_as_failed_and_is_retried, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(running_last_try_fails_without_running_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(claimed_try_counts_as_failed, setup, teardown),
        cmocka_unit_test_setup_teardown(finished_instances_never_run_again, setup, teardown),
        cmocka_unit_test_setup_teardown(up_for_retry_waits_the_rest_of_its_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(mapped_instances_resume_one_by_one, setup, teardown),
        cmocka_unit_test_setup_teardown(unreached_instances_are_decided_afresh, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
