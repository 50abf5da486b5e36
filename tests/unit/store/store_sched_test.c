/*
 * store_sched_test.c - the scheduler's part of the store (migration 0002)
 * on real databases (SQLite files in a fresh mkdtemp folder, and fresh
 * PostgreSQL databases in the "_pg" run, tests/unit/pgtmp.h): DAG rows and their paused
 * flag, import errors, pools and their usage, CLI-to-daemon requests,
 * concurrent writers of one file's import errors,
 * unfinished runs, run-id claims (also from concurrent processes), deleting
 * task instances, and migrating a database made by the 0001 schema.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <uv.h>

#include "../pgtmp.h"
#include "base/err.h"
#include "base/when.h"
#include "store/migrate.h"
#include "store/store.h"

static int setup(void **state)
{
    (void)state;
    testdb_reset("ssched");
    return 0;
}

static struct store *open_ok(void)
{
    return testdb_open("baram.db");
}

static long long raw_int(const char *sql)
{
    return testdb_int("baram.db", sql);
}

/* The migrations of the backend under test. */
static const struct migrate_step *steps(size_t *n)
{
    *n = testdb_pg() ? migrate_pg_steps_count : migrate_sqlite_steps_count;
    return testdb_pg() ? migrate_pg_steps : migrate_sqlite_steps;
}

static struct run_rec run_of(char *run_id, char *dag_id, enum run_state state, int64_t queued)
{
    struct run_rec r = {
        .run_id = run_id,
        .dag_id = dag_id,
        .state = state,
        .type = RUN_SCHEDULED,
        .logical_at_ms = queued - 10,
        .queued_at_ms = queued,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    return r;
}

static void put_run(struct store *s, const struct run_rec *r)
{
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, r, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
}

static void put_ti(struct store *s, char *run_id, char *task_id, char *task, enum ti_state st,
                   char *pool)
{
    struct ti_rec t = {
        .run_id = run_id,
        .task_id = task_id,
        .task = task,
        .map_index = -1,
        .state = st,
        .max_tries = 1,
        .exit_code = -1,
        .pool = pool,
        .scheduled_at_ms = -1,
        .queued_at_ms = -1,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_ti(s, &t, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
}

/* ---- tests ---- */

static void owner_round_trips(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct run_rec a = run_of("a", "d", RUN_RUNNING, 100);
    a.owner = "cli";
    put_run(s, &a);
    struct run_rec b = run_of("b", "d", RUN_RUNNING, 200);
    put_run(s, &b);
    struct run_rec got;
    assert_int_equal(store_get_run(s, "a", &got, NULL), 0);
    assert_string_equal(got.owner, "cli");
    run_rec_release(&got);
    assert_int_equal(store_get_run(s, "b", &got, NULL), 0);
    assert_null(got.owner);
    run_rec_release(&got);
    /* An upsert replaces the owner too. */
    a.owner = NULL;
    put_run(s, &a);
    assert_int_equal(store_get_run(s, "a", &got, NULL), 0);
    assert_null(got.owner);
    run_rec_release(&got);
    struct run_rec *v;
    size_t n;
    b.owner = "cli";
    put_run(s, &b);
    assert_int_equal(store_list_runs(s, "d", -1, 0, &v, &n, NULL, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].run_id, "b");
    assert_string_equal(v[0].owner, "cli");
    assert_null(v[1].owner);
    store_free_runs(v, n);
    store_close(s);
}

struct wseen {
    uint64_t durable;
    int stopped;
};

static void w_durable(void *ud, uint64_t seq)
{
    ((struct wseen *)ud)->durable = seq;
}

static void w_error(void *ud, int code, const char *msg)
{
    (void)ud;
    fail_msg("writer error %d: %s", code, msg);
}

static void w_stopped(void *ud)
{
    ((struct wseen *)ud)->stopped++;
}

/* The group-commit writer copies the owner too (the caller frees its record at once). */
static void writer_carries_owner(void **state)
{
    (void)state;
    struct store *s = open_ok();
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct wseen seen = {0};
    struct store_writer *w = NULL;
    struct err serr = {0};
    assert_int_equal(store_writer_start(&loop, testdb_url("baram.db"), w_durable, w_error, &seen,
                                        NULL, NULL, &w, &serr),
                     0);
    char *owner = strdup("cli");
    struct run_rec r = run_of("fg", "d", RUN_RUNNING, 100);
    r.owner = owner;
    uint64_t seq = store_writer_put_run(w, &r);
    assert_true(seq > 0);
    memset(owner, 'x', 3); /* the writer must hold its own copy */
    free(owner);
    while (seen.durable < seq && uv_run(&loop, UV_RUN_ONCE))
        ;
    store_writer_stop(w, w_stopped);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(seen.stopped, 1);
    assert_int_equal(uv_loop_close(&loop), 0);
    struct run_rec got;
    assert_int_equal(store_get_run(s, "fg", &got, NULL), 0);
    assert_string_equal(got.owner, "cli");
    run_rec_release(&got);
    struct run_rec *v;
    size_t n;
    assert_int_equal(store_list_unfinished_runs(s, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    store_free_runs(v, n);
    store_close(s);
}

static void put_dag_keeps_paused(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct dag_rec d = {.dag_id = "etl",
                        .path = "/dags/etl.yaml",
                        .hash = "h1",
                        .schedule = "@daily",
                        .description = "nightly"};
    assert_int_equal(store_put_dag(s, &d, NULL), 0);
    struct dag_rec got;
    assert_int_equal(store_get_dag(s, "etl", &got, NULL), 0);
    assert_false(got.paused);
    assert_string_equal(got.path, "/dags/etl.yaml");
    assert_string_equal(got.hash, "h1");
    assert_string_equal(got.schedule, "@daily");
    assert_string_equal(got.description, "nightly");
    assert_true(got.updated_at_ms > 0);
    dag_rec_release(&got);

    assert_int_equal(store_set_paused(s, "etl", true, NULL), 0);
    d.hash = "h2";
    d.schedule = NULL;
    assert_int_equal(store_put_dag(s, &d, NULL), 0);
    assert_int_equal(store_get_dag(s, "etl", &got, NULL), 0);
    assert_true(got.paused);
    assert_string_equal(got.hash, "h2");
    assert_null(got.schedule);
    dag_rec_release(&got);

    assert_int_equal(store_set_paused(s, "etl", false, NULL), 0);
    assert_int_equal(store_get_dag(s, "etl", &got, NULL), 0);
    assert_false(got.paused);
    assert_string_equal(got.hash, "h2");
    dag_rec_release(&got);
    store_close(s);
}

static void set_paused_creates_a_bare_row(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct dag_rec got;
    assert_int_equal(store_get_dag(s, "ghost", &got, NULL), -ENOENT);
    assert_int_equal(store_set_paused(s, "ghost", true, NULL), 0);
    assert_int_equal(store_get_dag(s, "ghost", &got, NULL), 0);
    assert_string_equal(got.dag_id, "ghost");
    assert_true(got.paused);
    assert_null(got.path);
    assert_null(got.hash);
    dag_rec_release(&got);
    /* Loading it later keeps the pause. */
    struct dag_rec d = {.dag_id = "ghost", .path = "/g.yaml", .hash = "x"};
    assert_int_equal(store_put_dag(s, &d, NULL), 0);
    struct dag_rec *v;
    size_t n;
    struct dag_rec e = {.dag_id = "alpha"};
    assert_int_equal(store_put_dag(s, &e, NULL), 0);
    assert_int_equal(store_list_dags(s, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].dag_id, "alpha");
    assert_false(v[0].paused);
    assert_string_equal(v[1].dag_id, "ghost");
    assert_true(v[1].paused);
    assert_string_equal(v[1].path, "/g.yaml");
    store_free_dags(v, n);
    assert_int_equal(store_set_paused(s, NULL, true, NULL), ERR_DB);
    store_close(s);
}

static void import_errors_replace_per_path(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct import_error_rec e1[] = {
        {.line = 3, .col = 5, .message = "unknown key 'retires'"},
        {.line = 1, .col = 1, .message = "missing 'dag'"},
    };
    struct import_error_rec e2[] = {{.line = 7, .col = 2, .message = "cycle a -> b -> a"}};
    assert_int_equal(store_set_import_errors(s, "/d/b.yaml", e1, 2, NULL), 0);
    assert_int_equal(store_set_import_errors(s, "/d/a.yaml", e2, 1, NULL), 0);
    struct import_error_rec *v;
    size_t n;
    assert_int_equal(store_list_import_errors(s, &v, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].path, "/d/a.yaml");
    assert_int_equal(v[0].line, 7);
    assert_string_equal(v[1].path, "/d/b.yaml");
    assert_int_equal(v[1].line, 1);
    assert_string_equal(v[1].message, "missing 'dag'");
    assert_int_equal(v[2].line, 3);
    assert_int_equal(v[2].col, 5);
    assert_true(v[2].at_ms > 0);
    store_free_import_errors(v, n);

    /* Replacing b's errors leaves a's; n == 0 clears. */
    assert_int_equal(store_set_import_errors(s, "/d/b.yaml", e2, 1, NULL), 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM import_errors WHERE path = '/d/b.yaml'"), 1);
    assert_int_equal(store_set_import_errors(s, "/d/b.yaml", NULL, 0, NULL), 0);
    assert_int_equal(store_list_import_errors(s, &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].path, "/d/a.yaml");
    store_free_import_errors(v, n);

    /* A bad entry changes nothing. */
    struct import_error_rec bad[] = {{.line = 1, .message = "ok"}, {.line = 2, .message = NULL}};
    assert_int_equal(store_set_import_errors(s, "/d/a.yaml", bad, 2, NULL), ERR_DB);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM import_errors"), 1);
    store_close(s);
}

struct import_writer {
    struct store *s;
    int rc;
};

static void *write_import_error(void *arg)
{
    struct import_writer *w = arg;
    struct import_error_rec e[] = {{.line = 3, .col = 1, .message = "unknown key 'retires'"}};
    w->rc = store_set_import_errors(w->s, "/d/a.yaml", e, 1, NULL);
    return NULL;
}

/* Every scheduler records every changed DAG file: two of them replacing one file's errors at
 * once leave one set, not both (the second waits for the first, then replaces its rows). */
static void import_errors_of_concurrent_writers_replace(void **state)
{
    (void)state;
    struct store *a = open_ok();
    struct import_writer w = {.s = open_ok()};
    struct import_error_rec e[] = {{.line = 3, .col = 1, .message = "unknown key 'retires'"}};
    assert_int_equal(store_begin(a, NULL), 0);
    assert_int_equal(store_set_import_errors(a, "/d/a.yaml", e, 1, NULL), 0);
    struct import_error_rec *v;
    size_t n;
    /* a read: a's writes are on the server now, its transaction still open */
    assert_int_equal(store_list_import_errors(a, &v, &n, NULL), 0);
    store_free_import_errors(v, n);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, write_import_error, &w), 0);
    usleep(400 * 1000); /* b is inside its own write by now */
    assert_int_equal(store_commit(a, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_int_equal(w.rc, 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM import_errors WHERE path = '/d/a.yaml'"), 1);
    store_close(w.s);
    store_close(a);
}

static void pools_and_usage(void **state)
{
    (void)state;
    struct store *s = open_ok();
    assert_int_equal(store_set_pool(s, "gpu", 2, NULL), 0);
    assert_int_equal(store_set_pool(s, "api", 10, NULL), 0);
    assert_int_equal(store_set_pool(s, "gpu", 4, NULL), 0);
    assert_int_equal(store_set_pool(s, "bad", -1, NULL), ERR_DB);
    struct pool_rec *v;
    size_t n;
    assert_int_equal(store_list_pools(s, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].name, "api");
    assert_int_equal(v[0].slots, 10);
    assert_string_equal(v[1].name, "gpu");
    assert_int_equal(v[1].slots, 4);
    assert_true(v[1].updated_at_ms > 0);
    store_free_pools(v, n);

    struct run_rec r = run_of("r", "d", RUN_RUNNING, 10);
    put_run(s, &r);
    put_ti(s, "r", "a", "a", TI_RUNNING, "gpu");
    put_ti(s, "r", "b", "b", TI_QUEUED, "gpu");
    put_ti(s, "r", "c", "c", TI_SCHEDULED, "gpu");
    put_ti(s, "r", "d", "d", TI_SUCCESS, "gpu");
    put_ti(s, "r", "e", "e", TI_RUNNING, NULL);
    put_ti(s, "r", "f", "f", TI_QUEUED, "default");
    struct pool_usage u = {-1, -1, -1};
    assert_int_equal(store_pool_usage(s, "gpu", &u, NULL), 0);
    assert_int_equal(u.running, 1);
    assert_int_equal(u.queued, 1);
    assert_int_equal(u.scheduled, 1);
    assert_int_equal(store_pool_usage(s, "default", &u, NULL), 0);
    assert_int_equal(u.running, 1);
    assert_int_equal(u.queued, 1);
    assert_int_equal(u.scheduled, 0);
    assert_int_equal(store_pool_usage(s, "nope", &u, NULL), 0);
    assert_int_equal(u.running + u.queued + u.scheduled, 0);
    store_close(s);
}

static void take_requests_empties(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct run_request *v;
    size_t n;
    assert_int_equal(store_take_requests(s, 0, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    store_free_requests(v, n);
    assert_int_equal(store_put_request(s, "r1", "cancel", NULL), 0);
    assert_int_equal(store_put_request(s, "r2", "cancel", NULL), 0);
    assert_int_equal(store_put_request(s, "r1", "cancel", NULL), 0); /* once per run and kind */
    assert_int_equal(store_put_request(s, NULL, "cancel", NULL), ERR_DB);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM run_requests"), 2);
    assert_int_equal(store_take_requests(s, 0, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    bool seen1 = false, seen2 = false;
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].kind, "cancel");
        assert_true(v[i].at_ms > 0);
        seen1 |= strcmp(v[i].run_id, "r1") == 0;
        seen2 |= strcmp(v[i].run_id, "r2") == 0;
    }
    assert_true(seen1 && seen2);
    store_free_requests(v, n);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM run_requests"), 0);
    assert_int_equal(store_take_requests(s, 0, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    assert_null(v);
    store_close(s);
}

static void unfinished_runs_are_the_schedulers_own(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct run_rec r;
    r = run_of("late", "d", RUN_QUEUED, 300);
    put_run(s, &r);
    r = run_of("early", "d", RUN_RUNNING, 100);
    put_run(s, &r);
    r = run_of("mid", "e", RUN_QUEUED, 200);
    put_run(s, &r);
    r = run_of("fg", "d", RUN_RUNNING, 50);
    r.owner = "cli";
    put_run(s, &r);
    r = run_of("done", "d", RUN_SUCCESS, 60);
    put_run(s, &r);
    r = run_of("bad", "d", RUN_FAILED, 70);
    put_run(s, &r);
    r = run_of("stop", "d", RUN_CANCELLED, 80);
    put_run(s, &r);
    struct run_rec *v;
    size_t n;
    assert_int_equal(store_list_unfinished_runs(s, &v, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].run_id, "early");
    assert_string_equal(v[1].run_id, "mid");
    assert_string_equal(v[2].run_id, "late");
    assert_null(v[0].owner);
    store_free_runs(v, n);
    store_close(s);
}

static void last_logical_and_has_run_at(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t at = 0;
    bool exists = true;
    assert_int_equal(store_last_logical(s, "d", RUN_SCHEDULED, &at, NULL), -ENOENT);
    assert_int_equal(store_has_run_at(s, "d", 1000, &exists, NULL), 0);
    assert_false(exists);
    struct run_rec r = run_of("s1", "d", RUN_SUCCESS, 1010); /* logical 1000 */
    put_run(s, &r);
    r = run_of("s2", "d", RUN_SUCCESS, 2010);
    put_run(s, &r);
    r = run_of("m1", "d", RUN_SUCCESS, 9010);
    r.type = RUN_MANUAL;
    put_run(s, &r);
    r = run_of("b1", "d", RUN_QUEUED, 5010);
    r.type = RUN_BACKFILL;
    put_run(s, &r);
    r = run_of("o1", "other", RUN_SUCCESS, 7010);
    put_run(s, &r);
    assert_int_equal(store_last_logical(s, "d", RUN_SCHEDULED, &at, NULL), 0);
    assert_int_equal(at, 2000);
    assert_int_equal(store_last_logical(s, "d", RUN_MANUAL, &at, NULL), 0);
    assert_int_equal(at, 9000);
    assert_int_equal(store_last_logical(s, "d", RUN_BACKFILL, &at, NULL), 0);
    assert_int_equal(at, 5000);
    assert_int_equal(store_last_logical(s, "nope", RUN_SCHEDULED, &at, NULL), -ENOENT);
    assert_int_equal(store_has_run_at(s, "d", 1000, &exists, NULL), 0);
    assert_true(exists);
    assert_int_equal(store_has_run_at(s, "d", 5000, &exists, NULL), 0);
    assert_true(exists);
    /* A manual run at that date does not count; nor does another DAG's run. */
    assert_int_equal(store_has_run_at(s, "d", 9000, &exists, NULL), 0);
    assert_false(exists);
    assert_int_equal(store_has_run_at(s, "d", 7000, &exists, NULL), 0);
    assert_false(exists);
    store_close(s);
}

static struct run_rec claim_rec(void)
{
    struct run_rec r = {
        .dag_id = "etl",
        .state = RUN_QUEUED,
        .type = RUN_MANUAL,
        .logical_at_ms = 1000,
        .queued_at_ms = 2000,
        .started_at_ms = -1,
        .ended_at_ms = -1,
        .conf = "{\"a\":\"1\"}",
        .dag_hash = "h",
        .dag_path = "/d/etl.yaml",
    };
    return r;
}

static void claim_run_gives_distinct_ids(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t at = 1764385200000; /* 2025-11-29T03:00:00.000Z */
    struct run_rec rec = claim_rec();
    rec.run_id = "ignored";
    char id1[96], id2[96], id3[96];
    assert_int_equal(store_claim_run(s, "manual__", at, &rec, id1, sizeof id1, NULL), 0);
    assert_int_equal(store_claim_run(s, "manual__", at, &rec, id2, sizeof id2, NULL), 0);
    assert_int_equal(store_claim_run(s, "backfill__", at, &rec, id3, sizeof id3, NULL), 0);
    assert_string_equal(id1, "manual__2025-11-29T03:00:00.000Z");
    assert_string_equal(id2, "manual__2025-11-29T03:00:00.001Z");
    assert_string_equal(id3, "backfill__2025-11-29T03:00:00.000Z");
    struct run_rec got;
    assert_int_equal(store_get_run(s, id2, &got, NULL), 0);
    assert_string_equal(got.dag_id, "etl");
    assert_int_equal(got.state, RUN_QUEUED);
    assert_int_equal(got.queued_at_ms, 2000);
    assert_string_equal(got.conf, "{\"a\":\"1\"}");
    assert_string_equal(got.dag_path, "/d/etl.yaml");
    assert_null(got.owner);
    run_rec_release(&got);
    assert_int_equal(store_get_run(s, "ignored", &got, NULL), -ENOENT);

    /* Inside a caller's transaction: joined, and gone on rollback. */
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_claim_run(s, "manual__", at, &rec, id1, sizeof id1, NULL), 0);
    assert_string_equal(id1, "manual__2025-11-29T03:00:00.002Z");
    store_rollback(s);
    assert_int_equal(store_get_run(s, id1, &got, NULL), -ENOENT);

    /* Bad calls. */
    char tiny[8];
    assert_true(store_claim_run(s, "manual__", at, &rec, tiny, sizeof tiny, NULL) < 0);
    rec.dag_id = NULL;
    assert_true(store_claim_run(s, "manual__", at, &rec, id1, sizeof id1, NULL) < 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM runs"), 3);
    store_close(s);
}

/* Several processes claim ids at the same millisecond: every claim gets its own id. */
static void claim_run_across_processes(void **state)
{
    (void)state;
    struct store *s0 = open_ok(); /* migrate once first */
    store_close(s0);
    const char *url = testdb_url("baram.db");
    enum { PROCS = 4, EACH = 25 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            struct store *s = NULL;
            struct err serr = {0};
            if (store_open(url, &s, &serr) < 0)
                _exit(3);
            struct run_rec rec = claim_rec();
            char id[96];
            for (int i = 0; i < EACH; i++)
                if (store_claim_run(s, "scheduled__", 1764385200000, &rec, id, sizeof id, NULL) < 0)
                    _exit(4);
            store_close(s);
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(raw_int("SELECT COUNT(*) FROM runs"), PROCS * EACH);
    assert_int_equal(raw_int("SELECT COUNT(DISTINCT run_id) FROM runs"), PROCS * EACH);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM runs WHERE run_id = "
                             "'scheduled__2025-11-29T03:00:00.099Z'"),
                     1);
}

static void delete_ti_removes_its_tries(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct run_rec r = run_of("r", "d", RUN_FAILED, 10);
    put_run(s, &r);
    put_ti(s, "r", "m[0]", "m", TI_SUCCESS, NULL);
    put_ti(s, "r", "m[1]", "m", TI_FAILED, NULL);
    put_ti(s, "r", "x", "x", TI_FAILED, NULL);
    struct try_rec t = {.run_id = "r", .task_id = "m[1]", .try_number = 1, .state = TI_FAILED};
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_try(s, &t, NULL), 0);
    t.try_number = 2;
    assert_int_equal(store_put_try(s, &t, NULL), 0);
    t.task_id = "x";
    assert_int_equal(store_put_try(s, &t, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);

    assert_int_equal(store_delete_ti(s, "r", "m[1]", NULL), 0);
    struct ti_rec got;
    assert_int_equal(store_get_ti(s, "r", "m[1]", &got, NULL), -ENOENT);
    assert_int_equal(store_get_ti(s, "r", "m[0]", &got, NULL), 0);
    ti_rec_release(&got);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tries WHERE task_id = 'm[1]'"), 0);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM tries WHERE task_id = 'x'"), 1);
    assert_int_equal(store_delete_ti(s, "r", "never", NULL), 0);
    assert_int_equal(store_delete_ti(s, NULL, "x", NULL), ERR_DB);

    /* In a caller's transaction, rolled back: nothing deleted. */
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_delete_ti(s, "r", "x", NULL), 0);
    store_rollback(s);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM task_instances WHERE task_id = 'x'"), 1);
    store_close(s);
}

/* A database made by the 0001 schema alone gets 0002 on open and keeps its rows. */
static void migrates_a_0001_database(void **state)
{
    (void)state;
    size_t nsteps;
    const struct migrate_step *all = steps(&nsteps), *first = NULL;
    for (size_t i = 0; i < nsteps; i++)
        if (all[i].number == 1)
            first = &all[i];
    assert_non_null(first);
    testdb_exec("baram.db", "CREATE TABLE schema_migrations (number INTEGER PRIMARY KEY,"
                            " name TEXT NOT NULL, applied_at BIGINT NOT NULL);"
                            "INSERT INTO schema_migrations VALUES (1, 'initial', 1)");
    testdb_exec("baram.db", first->sql);
    testdb_exec("baram.db",
                "INSERT INTO runs (run_id, dag_id, state, type, logical_at, queued_at, "
                "started_at, ended_at, conf, dag_hash, dag_path) VALUES ('old', 'etl', "
                "'running', 'manual', 5, 6, 7, NULL, '{}', 'h', '/p.yaml');"
                "INSERT INTO task_instances (run_id, task_id, task, map_index, state, "
                "try_number, max_tries, exit_code, priority, seq) VALUES ('old', 't', 't', "
                "-1, 'running', 1, 1, -1, 1, 1)");

    struct store *s = open_ok();
    assert_int_equal(raw_int("SELECT MAX(number) FROM schema_migrations"),
                     migrate_latest(all, nsteps));
    assert_true(migrate_latest(all, nsteps) >= 2);
    struct run_rec got;
    assert_int_equal(store_get_run(s, "old", &got, NULL), 0);
    assert_string_equal(got.dag_id, "etl");
    assert_int_equal(got.state, RUN_RUNNING);
    assert_int_equal(got.started_at_ms, 7);
    assert_int_equal(got.ended_at_ms, -1);
    assert_string_equal(got.dag_path, "/p.yaml");
    assert_null(got.owner);
    run_rec_release(&got);
    struct ti_rec ti;
    assert_int_equal(store_get_ti(s, "old", "t", &ti, NULL), 0);
    ti_rec_release(&ti);
    /* The old run is the scheduler's: it shows up as unfinished. */
    struct run_rec *v;
    size_t n;
    assert_int_equal(store_list_unfinished_runs(s, &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    store_free_runs(v, n);
    /* And the new tables work. */
    assert_int_equal(store_set_pool(s, "p", 1, NULL), 0);
    store_close(s);
    /* Opening again applies nothing twice. */
    s = open_ok();
    store_close(s);
    assert_int_equal(raw_int("SELECT COUNT(*) FROM schema_migrations"), (long long)nsteps);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(owner_round_trips, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(writer_carries_owner, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(put_dag_keeps_paused, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(set_paused_creates_a_bare_row, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(import_errors_replace_per_path, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(import_errors_of_concurrent_writers_replace, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(pools_and_usage, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(take_requests_empties, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(unfinished_runs_are_the_schedulers_own, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(last_logical_and_has_run_at, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(claim_run_gives_distinct_ids, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(claim_run_across_processes, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(delete_ti_removes_its_tries, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(migrates_a_0001_database, setup, testdb_teardown),
    };
    return testdb_run_group(NULL, 0, tests, sizeof tests / sizeof *tests);
}
