/*
 * store_test.c - the synchronous store API on real databases: SQLite files in
 * a fresh mkdtemp folder, and (the "_pg" run, tests/unit/pgtmp.h) fresh
 * PostgreSQL databases: creation and modes, migrations, round trips of every
 * field, upserts, listings and their order, errors people see. The cases
 * about SQLite files run on SQLite only; everything store.h promises runs on
 * both.
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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../pgtmp.h"
#include "base/err.h"
#include "dag/dag.h"
#include "store/migrate.h"
#include "store/pg_int.h"
#include "store/store.h"
#include "store/store_int.h"

static int setup(void **state)
{
    testdb_reset("store");
    return 0;
}

static int teardown(void **state)
{
    testdb_drop();
    return 0;
}

#define path_in  testdb_path
#define raw_int  testdb_int
#define raw_exec testdb_exec

/* The migrations of the backend under test. */
static const struct migrate_step *steps(size_t *n)
{
    *n = testdb_pg() ? migrate_pg_steps_count : migrate_sqlite_steps_count;
    return testdb_pg() ? migrate_pg_steps : migrate_sqlite_steps;
}

static struct store *open_ok(const char *name)
{
    struct store *s = NULL;
    struct err serr = {0};
    int r = store_open(testdb_url(name), &s, &serr);
    if (r < 0)
        fail_msg("store_open: %d %s", r, serr.msg);
    assert_int_equal(serr.code, 0);
    return s;
}

static struct run_rec full_run(char *run_id, char *dag_id, int64_t logical)
{
    struct run_rec r = {
        .run_id = run_id,
        .dag_id = dag_id,
        .state = RUN_RUNNING,
        .type = RUN_SCHEDULED,
        .logical_at_ms = logical,
        .queued_at_ms = logical + 1,
        .started_at_ms = logical + 2,
        .ended_at_ms = logical + 3,
        .conf = "{\"x\":1}",
        .dag_hash = "abc123",
        .dag_path = "/dags/etl.yaml",
    };
    return r;
}

static struct ti_rec full_ti(char *run_id, char *task_id, char *task, int map_index)
{
    struct ti_rec t = {
        .run_id = run_id,
        .task_id = task_id,
        .task = task,
        .map_index = map_index,
        .state = TI_UP_FOR_RETRY,
        .try_number = 2,
        .max_tries = 4,
        .exit_code = 3,
        .output = "out",
        .output_len = 3,
        .message = "exit code 3",
        .priority = 7,
        .pool = "default",
        .scheduled_at_ms = 1000,
        .queued_at_ms = 1001,
        .started_at_ms = 1002,
        .ended_at_ms = 1003,
    };
    return t;
}

static void put_run(struct store *s, const struct run_rec *r)
{
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, r, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
}

static void put_ti(struct store *s, const struct ti_rec *t)
{
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_ti(s, t, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
}

static void assert_str_or_null(const char *a, const char *b)
{
    if (!b)
        assert_null(a);
    else
        assert_string_equal(a, b);
}

static void assert_run_equal(const struct run_rec *a, const struct run_rec *b)
{
    assert_string_equal(a->run_id, b->run_id);
    assert_string_equal(a->dag_id, b->dag_id);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->type, b->type);
    assert_int_equal(a->logical_at_ms, b->logical_at_ms);
    assert_int_equal(a->queued_at_ms, b->queued_at_ms);
    assert_int_equal(a->started_at_ms, b->started_at_ms);
    assert_int_equal(a->ended_at_ms, b->ended_at_ms);
    assert_str_or_null(a->conf, b->conf);
    assert_str_or_null(a->dag_hash, b->dag_hash);
    assert_str_or_null(a->dag_path, b->dag_path);
}

static void assert_ti_equal(const struct ti_rec *a, const struct ti_rec *b)
{
    assert_string_equal(a->run_id, b->run_id);
    assert_string_equal(a->task_id, b->task_id);
    assert_string_equal(a->task, b->task);
    assert_int_equal(a->map_index, b->map_index);
    assert_int_equal(a->state, b->state);
    assert_int_equal(a->try_number, b->try_number);
    assert_int_equal(a->max_tries, b->max_tries);
    assert_int_equal(a->exit_code, b->exit_code);
    assert_int_equal(a->output_len, b->output_len);
    if (b->output) {
        assert_non_null(a->output);
        assert_memory_equal(a->output, b->output, b->output_len);
        assert_int_equal(a->output[a->output_len], 0);
    } else {
        assert_null(a->output);
    }
    assert_str_or_null(a->message, b->message);
    assert_int_equal(a->priority, b->priority);
    assert_str_or_null(a->pool, b->pool);
    assert_int_equal(a->scheduled_at_ms, b->scheduled_at_ms);
    assert_int_equal(a->queued_at_ms, b->queued_at_ms);
    assert_int_equal(a->started_at_ms, b->started_at_ms);
    assert_int_equal(a->ended_at_ms, b->ended_at_ms);
}

/* ---- tests ---- */

static void open_creates_private_file_and_folders(void **state)
{
    struct store *s = open_ok("a/b/baram.db");
    struct stat sb;
    assert_int_equal(stat(path_in("a"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(path_in("a/b"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(path_in("a/b/baram.db"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    struct run_rec r = full_run("r1", "etl", 5);
    put_run(s, &r);
    /* SQLite gives the WAL the database's mode. */
    assert_int_equal(stat(path_in("a/b/baram.db-wal"), &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    store_close(s);
    assert_int_equal(raw_int("a/b/baram.db", "SELECT COUNT(*) FROM runs"), 1);
}

static void sqlite_prefix_and_wal_mode(void **state)
{
    char url[PATH_MAX + 128];
    snprintf(url, sizeof(url), "sqlite:%s", path_in("p.db"));
    struct store *s = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(url, &s, &serr), 0);
    assert_int_equal(serr.code, 0);
    store_close(s);
    assert_int_equal(access(path_in("p.db"), F_OK), 0);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path_in("p.db"), &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void migrations_apply_once(void **state)
{
    store_close(open_ok("m.db"));
    size_t nsteps;
    const struct migrate_step *st = steps(&nsteps);
    long long n = raw_int("m.db", "SELECT COUNT(*) FROM schema_migrations");
    assert_int_equal(n, (long long)nsteps);
    assert_true(n >= 1);
    assert_int_equal(raw_int("m.db", "SELECT MAX(number) FROM schema_migrations"),
                     migrate_latest(st, nsteps));
    assert_int_equal(raw_int("m.db", "SELECT COUNT(*) FROM schema_migrations WHERE number = 1 "
                                     "AND name = 'initial'"),
                     1);
    long long at = raw_int("m.db", "SELECT applied_at FROM schema_migrations WHERE number = 1");
    /* Reopening applies nothing: same rows, same times, data kept. */
    struct store *s = open_ok("m.db");
    struct run_rec r = full_run("r1", "etl", 5);
    put_run(s, &r);
    store_close(s);
    store_close(open_ok("m.db"));
    assert_int_equal(raw_int("m.db", "SELECT COUNT(*) FROM schema_migrations"), n);
    assert_int_equal(raw_int("m.db", "SELECT applied_at FROM schema_migrations WHERE number = 1"),
                     at);
    assert_int_equal(raw_int("m.db", "SELECT COUNT(*) FROM runs"), 1);
}

/* Several processes opening one new database at once: each succeeds, each migration is
 * applied once. */
static void concurrent_first_opens_migrate_once(void **state)
{
    enum { N = 6 };
    pid_t pids[N];
    const char *url = testdb_url("race.db"); /* made once, before the children */
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            struct store *s = NULL;
            struct err serr = {0};
            int r = store_open(url, &s, &serr);
            if (r < 0) {
                fprintf(stderr, "child: %s\n", serr.msg);
                _exit(1);
            }
            /* one logical date each: a scheduled interval exists once (0006) */
            struct run_rec rr = full_run("r", "etl", 1 + i);
            char id[16];
            snprintf(id, sizeof(id), "r%d", i);
            rr.run_id = id;
            r = store_begin(s, NULL) < 0 || store_put_run(s, &rr, NULL) < 0 ||
                store_commit(s, NULL) < 0;
            store_close(s);
            _exit(r);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    size_t nsteps;
    steps(&nsteps);
    assert_int_equal(raw_int("race.db", "SELECT COUNT(*) FROM schema_migrations"),
                     (long long)nsteps);
    assert_int_equal(raw_int("race.db", "SELECT COUNT(*) FROM runs"), N);
}

static void newer_schema_is_refused(void **state)
{
    store_close(open_ok("new.db"));
    raw_exec("new.db", "INSERT INTO schema_migrations VALUES (9999, 'from_the_future', 0)");
    struct store *s = NULL;
    struct err serr = {0};
    assert_int_equal(store_open(testdb_url("new.db"), &s, &serr), ERR_DB);
    assert_null(s);
    assert_true(serr.msg[0] != 0);
    assert_non_null(strstr(serr.msg, "newer than this baram"));
    assert_non_null(strstr(serr.msg, "9999"));
    assert_non_null(strstr(serr.msg, testdb_where("new.db")));
}

static void run_round_trip_every_field(void **state)
{
    struct store *s = open_ok("rt.db");
    struct run_rec full = full_run("manual__2026-11-29T03:00:00.000Z", "etl", 1764385200000);
    struct run_rec bare = {
        .run_id = "bare",
        .dag_id = "etl",
        .state = RUN_QUEUED,
        .type = RUN_MANUAL,
        .logical_at_ms = 0,
        .queued_at_ms = -1,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    put_run(s, &full);
    put_run(s, &bare);
    struct run_rec got;
    assert_int_equal(store_get_run(s, full.run_id, &got, NULL), 0);
    assert_run_equal(&got, &full);
    run_rec_release(&got);
    assert_int_equal(store_get_run(s, "bare", &got, NULL), 0);
    assert_run_equal(&got, &bare);
    run_rec_release(&got);
    assert_null(got.run_id);
    store_close(s);
    /* NULL in the database for -1 times. */
    assert_int_equal(raw_int("rt.db", "SELECT COUNT(*) FROM runs WHERE run_id = 'bare' AND "
                                      "queued_at IS NULL AND started_at IS NULL AND ended_at "
                                      "IS NULL AND conf IS NULL"),
                     1);
}

static void ti_round_trip_every_field(void **state)
{
    struct store *s = open_ok("ti.db");
    struct ti_rec full = full_ti("r1", "shards[3]", "shards", 3);
    static const char bin[] = {'a', 0, 'b', 0, 0, 'c'};
    full.output = (char *)bin;
    full.output_len = sizeof(bin);
    struct ti_rec bare = {
        .run_id = "r1",
        .task_id = "extract",
        .task = "extract",
        .map_index = -1,
        .state = TI_NONE,
        .exit_code = -1,
        .scheduled_at_ms = -1,
        .queued_at_ms = -1,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    char *big = malloc(DAG_OUTPUT_MAX);
    for (size_t i = 0; i < DAG_OUTPUT_MAX; i++)
        big[i] = (char)(i * 7);
    struct ti_rec large = full_ti("r1", "large", "large", -1);
    large.output = big;
    large.output_len = DAG_OUTPUT_MAX;
    struct ti_rec empty = full_ti("r1", "empty", "empty", -1);
    empty.output = "";
    empty.output_len = 0;
    put_ti(s, &full);
    put_ti(s, &bare);
    put_ti(s, &large);
    put_ti(s, &empty);

    struct ti_rec got;
    assert_int_equal(store_get_ti(s, "r1", "shards[3]", &got, NULL), 0);
    assert_ti_equal(&got, &full);
    ti_rec_release(&got);
    assert_int_equal(store_get_ti(s, "r1", "extract", &got, NULL), 0);
    assert_ti_equal(&got, &bare);
    ti_rec_release(&got);
    assert_int_equal(store_get_ti(s, "r1", "large", &got, NULL), 0);
    assert_ti_equal(&got, &large);
    assert_int_equal(got.output_len, 65536);
    ti_rec_release(&got);
    assert_int_equal(store_get_ti(s, "r1", "empty", &got, NULL), 0);
    assert_ti_equal(&got, &empty);
    assert_non_null(got.output);
    ti_rec_release(&got);
    free(big);
    store_close(s);
}

static void try_round_trip_and_order(void **state)
{
    struct store *s = open_ok("try.db");
    struct try_rec t2 = {
        .run_id = "r1",
        .task_id = "t",
        .try_number = 2,
        .state = TI_RUNNING,
        .exit_code = -1,
        .term_signal = 0,
        .timed_out = false,
        .queued_at_ms = 10,
        .started_at_ms = 11,
        .ended_at_ms = -1,
        .hostname = NULL,
        .pid = 4242,
    };
    struct try_rec t1 = {
        .run_id = "r1",
        .task_id = "t",
        .try_number = 1,
        .state = TI_FAILED,
        .exit_code = -1,
        .term_signal = 9,
        .timed_out = true,
        .queued_at_ms = 1,
        .started_at_ms = 2,
        .ended_at_ms = 3,
        .hostname = "worker-7",
        .pid = 99,
    };
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_try(s, &t2, NULL), 0);
    assert_int_equal(store_put_try(s, &t1, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    struct try_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tries(s, "r1", "t", &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    const struct try_rec *want[] = {&t1, &t2};
    for (size_t i = 0; i < 2; i++) {
        assert_string_equal(v[i].run_id, "r1");
        assert_string_equal(v[i].task_id, "t");
        assert_int_equal(v[i].try_number, want[i]->try_number);
        assert_int_equal(v[i].state, want[i]->state);
        assert_int_equal(v[i].exit_code, want[i]->exit_code);
        assert_int_equal(v[i].term_signal, want[i]->term_signal);
        assert_int_equal(v[i].timed_out, want[i]->timed_out);
        assert_int_equal(v[i].queued_at_ms, want[i]->queued_at_ms);
        assert_int_equal(v[i].started_at_ms, want[i]->started_at_ms);
        assert_int_equal(v[i].ended_at_ms, want[i]->ended_at_ms);
        assert_str_or_null(v[i].hostname, want[i]->hostname);
        assert_int_equal(v[i].pid, want[i]->pid);
    }
    store_free_tries(v, n);
    assert_int_equal(store_list_tries(s, "r1", "other", &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    store_free_tries(v, n);
    store_close(s);
}

static void upsert_replaces_whole_row(void **state)
{
    struct store *s = open_ok("up.db");
    struct run_rec r = full_run("r1", "etl", 5);
    put_run(s, &r);
    r.state = RUN_SUCCESS;
    r.ended_at_ms = 99;
    r.conf = NULL;
    put_run(s, &r);
    struct run_rec got;
    assert_int_equal(store_get_run(s, "r1", &got, NULL), 0);
    assert_run_equal(&got, &r);
    run_rec_release(&got);

    struct ti_rec t = full_ti("r1", "a", "a", -1);
    put_ti(s, &t);
    t.state = TI_SUCCESS;
    t.output = NULL;
    t.output_len = 0;
    t.message = NULL;
    t.exit_code = 0;
    put_ti(s, &t);
    struct ti_rec gt;
    assert_int_equal(store_get_ti(s, "r1", "a", &gt, NULL), 0);
    assert_ti_equal(&gt, &t);
    ti_rec_release(&gt);
    store_close(s);
    assert_int_equal(raw_int("up.db", "SELECT COUNT(*) FROM runs"), 1);
    assert_int_equal(raw_int("up.db", "SELECT COUNT(*) FROM task_instances"), 1);
}

static void list_runs_orders_filters_and_pages(void **state)
{
    struct store *s = open_ok("lr.db");
    assert_int_equal(store_begin(s, NULL), 0);
    char ids[10][16];
    for (int i = 0; i < 10; i++) {
        snprintf(ids[i], sizeof(ids[i]), "run%d", i);
        struct run_rec r = full_run(ids[i], i % 2 ? "odd" : "even", 1000 * (i % 5));
        r.queued_at_ms = i; /* same logical date: the newer queued first */
        assert_int_equal(store_put_run(s, &r, NULL), 0);
    }
    assert_int_equal(store_commit(s, NULL), 0);

    struct run_rec *v = NULL;
    size_t n = 0, total = 0;
    assert_int_equal(store_list_runs(s, NULL, -1, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(n, 10);
    assert_int_equal(total, 10);
    /* logical 4000: run4 (q4), run9 (q9) -> run9 first. */
    const char *want_all[] = {"run9", "run4", "run8", "run3", "run7",
                              "run2", "run6", "run1", "run5", "run0"};
    for (size_t i = 0; i < n; i++)
        assert_string_equal(v[i].run_id, want_all[i]);
    store_free_runs(v, n);

    assert_int_equal(store_list_runs(s, "odd", -1, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(n, 5);
    assert_int_equal(total, 5);
    const char *want_odd[] = {"run9", "run3", "run7", "run1", "run5"};
    for (size_t i = 0; i < n; i++) {
        assert_string_equal(v[i].run_id, want_odd[i]);
        assert_string_equal(v[i].dag_id, "odd");
    }
    store_free_runs(v, n);

    assert_int_equal(store_list_runs(s, NULL, 3, 2, &v, &n, &total, NULL), 0);
    assert_int_equal(n, 3);
    assert_int_equal(total, 10);
    assert_string_equal(v[0].run_id, "run8");
    assert_string_equal(v[2].run_id, "run7");
    store_free_runs(v, n);

    assert_int_equal(store_list_runs(s, "odd", 2, 4, &v, &n, NULL, NULL), 0);
    assert_int_equal(n, 1);
    assert_string_equal(v[0].run_id, "run5");
    store_free_runs(v, n);

    assert_int_equal(store_list_runs(s, "none", 10, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(n, 0);
    assert_int_equal(total, 0);
    store_free_runs(v, n);
    store_close(s);
}

/* Asserts the ids of v[0..n) are want (NULL-terminated), in order, and frees v. */
static void assert_run_ids(struct run_rec *v, size_t n, const char *const *want)
{
    size_t k = 0;
    for (; want[k]; k++) {
        assert_true(k < n);
        assert_string_equal(v[k].run_id, want[k]);
    }
    assert_int_equal(n, k);
    store_free_runs(v, n);
}

static void find_runs_filters_state_dag_and_dates(void **state)
{
    struct store *s = open_ok("fr.db");
    assert_int_equal(store_begin(s, NULL), 0);
    static const enum run_state states[] = {RUN_SUCCESS, RUN_FAILED,    RUN_RUNNING,
                                            RUN_QUEUED,  RUN_CANCELLED, RUN_FAILED};
    char ids[6][16];
    for (int i = 0; i < 6; i++) {
        snprintf(ids[i], sizeof(ids[i]), "run%d", i);
        struct run_rec r = full_run(ids[i], i % 2 ? "odd" : "even", 1000 * i);
        r.state = states[i];
        assert_int_equal(store_put_run(s, &r, NULL), 0);
    }
    assert_int_equal(store_commit(s, NULL), 0);

    struct run_rec *v = NULL;
    size_t n = 0, total = 0;
    struct run_filter f = {.states = RUN_STATE_BIT(RUN_FAILED)};
    assert_int_equal(store_find_runs(s, &f, -1, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(total, 2);
    assert_run_ids(v, n, (const char *const[]){"run5", "run1", NULL});

    f.states |= RUN_STATE_BIT(RUN_SUCCESS) | RUN_STATE_BIT(RUN_QUEUED);
    f.dag_id = "even";
    assert_int_equal(store_find_runs(s, &f, -1, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(total, 1);
    assert_run_ids(v, n, (const char *const[]){"run0", NULL});

    /* both ends included */
    f = (struct run_filter){.has_from = true, .from_ms = 1000, .has_to = true, .to_ms = 3000};
    assert_int_equal(store_find_runs(s, &f, -1, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(total, 3);
    assert_run_ids(v, n, (const char *const[]){"run3", "run2", "run1", NULL});

    /* paging keeps the total of every match */
    f = (struct run_filter){.has_from = true, .from_ms = 2000};
    assert_int_equal(store_find_runs(s, &f, 2, 1, &v, &n, &total, NULL), 0);
    assert_int_equal(total, 4);
    assert_run_ids(v, n, (const char *const[]){"run4", "run3", NULL});

    /* no filter is every run; a filter that matches nothing, none */
    f = (struct run_filter){0};
    assert_int_equal(store_find_runs(s, &f, 1, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(total, 6);
    assert_run_ids(v, n, (const char *const[]){"run5", NULL});
    f = (struct run_filter){.has_to = true, .to_ms = -1, .dag_id = "odd"};
    assert_int_equal(store_find_runs(s, &f, 10, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(total, 0);
    assert_run_ids(v, n, (const char *const[]){NULL});
    store_close(s);
}

static void list_tis_in_first_seen_then_map_index_order(void **state)
{
    struct store *s = open_ok("lt.db");
    struct ti_rec seq[] = {
        full_ti("r1", "zeta", "zeta", -1),       full_ti("r1", "alpha", "alpha", -1),
        full_ti("r1", "shards[2]", "shards", 2), full_ti("r1", "shards[10]", "shards", 10),
        full_ti("r1", "shards[0]", "shards", 0), full_ti("r1", "mid", "mid", -1),
        full_ti("r2", "other", "other", -1),     full_ti("r1", "shards[1]", "shards", 1),
    };
    assert_int_equal(store_begin(s, NULL), 0);
    for (size_t i = 0; i < sizeof(seq) / sizeof(seq[0]); i++)
        assert_int_equal(store_put_ti(s, &seq[i], NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    /* Updating an early task later does not move it. */
    seq[0].state = TI_SUCCESS;
    put_ti(s, &seq[0]);

    struct ti_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tis(s, "r1", &v, &n, NULL), 0);
    const char *want[] = {"zeta",      "alpha",      "shards[0]", "shards[1]",
                          "shards[2]", "shards[10]", "mid"};
    assert_int_equal(n, 7);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(v[i].task_id, want[i]);
    assert_int_equal(v[0].state, TI_SUCCESS);
    store_free_tis(v, n);
    assert_int_equal(store_list_tis(s, "nope", &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    store_free_tis(v, n);
    store_close(s);
}

/* Tasks come in the order they first started, whatever order their records were first
 * written in; a mapped task's instances stay together; tasks never started come last. */
static void list_tis_in_start_order(void **state)
{
    struct store *s = open_ok("ls.db");
    struct ti_rec v0[] = {
        full_ti("r1", "report", "report", -1),   full_ti("r1", "never", "never", -1),
        full_ti("r1", "load[1]", "load", 1),     full_ti("r1", "load[0]", "load", 0),
        full_ti("r1", "extract", "extract", -1),
    };
    int64_t started[] = {300, -1, 200, 250, 100};
    assert_int_equal(store_begin(s, NULL), 0);
    for (size_t i = 0; i < sizeof(v0) / sizeof(v0[0]); i++) {
        v0[i].started_at_ms = started[i];
        assert_int_equal(store_put_ti(s, &v0[i], NULL), 0);
    }
    assert_int_equal(store_commit(s, NULL), 0);
    struct ti_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_tis(s, "r1", &v, &n, NULL), 0);
    const char *want[] = {"extract", "load[0]", "load[1]", "report", "never"};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(v[i].task_id, want[i]);
    store_free_tis(v, n);
    store_close(s);
}

static void missing_rows_are_enoent(void **state)
{
    struct store *s = open_ok("miss.db");
    struct run_rec r;
    struct ti_rec t;
    char *src = NULL;
    size_t len = 0;
    assert_int_equal(store_get_run(s, "nope", &r, NULL), -ENOENT);
    assert_int_equal(store_get_ti(s, "nope", "x", &t, NULL), -ENOENT);
    assert_int_equal(store_get_dag_version(s, "nope", &src, &len, NULL), -ENOENT);
    assert_null(src);
    store_close(s);
}

static void dag_versions_are_stored_once(void **state)
{
    struct store *s = open_ok("dv.db");
    const char src1[] = "dag: etl\ntasks: {}\n";
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_dag_version(s, "h1", "etl", src1, strlen(src1), NULL), 0);
    assert_int_equal(store_put_dag_version(s, "h1", "etl", "other", 5, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    char *src = NULL;
    size_t len = 0;
    assert_int_equal(store_get_dag_version(s, "h1", &src, &len, NULL), 0);
    assert_int_equal(len, strlen(src1));
    assert_string_equal(src, src1);
    free(src);
    store_close(s);
    assert_int_equal(raw_int("dv.db", "SELECT COUNT(*) FROM dag_versions"), 1);
}

static void bad_paths_give_messages(void **state)
{
    struct store *s = NULL;
    struct err serr = {0};
    serr.code = 0;
    serr.msg[0] = 0;
    assert_int_equal(store_open("/proc/baram-nope/baram.db", &s, &serr), ERR_DB);
    assert_null(s);
    assert_true(serr.msg[0] != 0);
    assert_non_null(strstr(serr.msg, "cannot open database '/proc/baram-nope/baram.db'"));

    /* The path is a folder. */
    assert_int_equal(mkdir(path_in("dir.db"), 0700), 0);
    serr.code = 0;
    serr.msg[0] = 0;
    assert_int_equal(store_open(path_in("dir.db"), &s, &serr), ERR_DB);
    assert_true(serr.msg[0] != 0);
    assert_non_null(strstr(serr.msg, "cannot open database '"));
    assert_non_null(strstr(serr.msg, "dir.db'"));

    /* Not a database at all. */
    FILE *f = fopen(path_in("junk.db"), "w");
    assert_non_null(f);
    for (int i = 0; i < 200; i++)
        fputs("this is not an sqlite database\n", f);
    fclose(f);
    serr.code = 0;
    serr.msg[0] = 0;
    assert_int_equal(store_open(path_in("junk.db"), &s, &serr), ERR_DB);
    assert_true(serr.msg[0] != 0);
    assert_non_null(strstr(serr.msg, "junk.db"));

    serr.code = 0;
    serr.msg[0] = 0;
    /* A PostgreSQL server that is not there (port 1 refuses at once): named, password left out. */
    assert_int_equal(store_open("postgresql://u:secret@127.0.0.1:1/db", &s, &serr), ERR_DB);
    assert_non_null(strstr(serr.msg, "cannot connect to PostgreSQL at 127.0.0.1:1/db"));
    assert_null(strstr(serr.msg, "secret"));

    serr.code = 0;
    serr.msg[0] = 0;
    assert_int_equal(store_open("", &s, &serr), -EINVAL);
    assert_true(serr.msg[0] != 0);

#ifdef BARAM_FAULTS
    setenv("BARAM_FAULT", "FP_STORE_OPEN", 1);
    serr.code = 0;
    serr.msg[0] = 0;
    assert_int_equal(store_open(path_in("fault.db"), &s, &serr), ERR_DB);
    unsetenv("BARAM_FAULT");
    assert_non_null(strstr(serr.msg, "FP_STORE_OPEN"));
    assert_int_equal(access(path_in("fault.db"), F_OK), -1);
#endif
}

static void rollback_leaves_nothing(void **state)
{
    struct store *s = open_ok("rb.db");
    struct run_rec r = full_run("r1", "etl", 5);
    struct ti_rec t = full_ti("r1", "a", "a", -1);
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, &r, NULL), 0);
    assert_int_equal(store_put_ti(s, &t, NULL), 0);
    assert_int_equal(store_put_dag_version(s, "h", "etl", "x", 1, NULL), 0);
    store_rollback(s);
    struct run_rec got;
    assert_int_equal(store_get_run(s, "r1", &got, NULL), -ENOENT);
    store_rollback(s); /* nothing open: harmless */
    /* The connection works on. */
    put_run(s, &r);
    assert_int_equal(store_get_run(s, "r1", &got, NULL), 0);
    run_rec_release(&got);
    store_close(s);
    assert_int_equal(raw_int("rb.db", "SELECT COUNT(*) FROM task_instances"), 0);
    assert_int_equal(raw_int("rb.db", "SELECT COUNT(*) FROM dag_versions"), 0);
}

static void failed_commit_rolls_back(void **state)
{
    struct store *s = open_ok("fc.db");
    struct run_rec r = full_run("r1", "etl", 5);
    setenv("BARAM_FAULT", "FP_STORE_COMMIT", 1);
    struct err e = {0};
    assert_int_equal(store_begin(s, &e), 0);
    assert_int_equal(store_put_run(s, &r, &e), 0);
    assert_int_equal(e.code, 0); /* a call that works leaves e alone */
    int rc = store_commit(s, &e);
    unsetenv("BARAM_FAULT");
#ifdef BARAM_FAULTS
    assert_int_equal(rc, ERR_DB);
    assert_int_equal(e.code, ERR_DB);
    assert_non_null(strstr(e.msg, "cannot commit"));
    struct run_rec got;
    assert_int_equal(store_get_run(s, "r1", &got, NULL), -ENOENT);
    /* A new transaction works. */
    put_run(s, &r);
    assert_int_equal(store_get_run(s, "r1", &got, NULL), 0);
    run_rec_release(&got);
#else
    assert_int_equal(rc, 0);
#endif
    store_close(s);
}

static void errors_name_the_database(void **state)
{
    struct store *s = open_ok("busy.db");
    /* Hold the write lock on another connection: begin waits busy_timeout, then fails. The
     * timeout is 5 s, so only check a statement-level error instead: a transaction inside a
     * transaction. */
    struct err e = {0};
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_begin(s, &e), ERR_DB);
    assert_non_null(strstr(e.msg, testdb_where("busy.db")));
    assert_non_null(strstr(e.msg, "cannot start a transaction"));
    store_rollback(s);
    store_close(s);
}

static void bad_records_are_refused_not_stored(void **state)
{
    struct store *s = open_ok("bad.db");
    assert_int_equal(store_begin(s, NULL), 0);
    struct run_rec r = full_run("r1", "etl", 5);
    r.state = (enum run_state)77;
    struct err e = {0};
    assert_int_equal(store_put_run(s, &r, &e), ERR_DB);
    assert_non_null(strstr(e.msg, "cannot write run 'r1'"));
    r = full_run(NULL, "etl", 5);
    assert_int_equal(store_put_run(s, &r, NULL), ERR_DB);
    struct ti_rec t = full_ti("r1", NULL, "a", -1);
    assert_int_equal(store_put_ti(s, &t, NULL), ERR_DB);
    t = full_ti("r1", "a", NULL, -1); /* task defaults to task_id */
    assert_int_equal(store_put_ti(s, &t, NULL), 0);
    struct try_rec tr = {.run_id = "r1", .task_id = "a", .state = (enum ti_state) - 1};
    assert_int_equal(store_put_try(s, &tr, NULL), ERR_DB);
    assert_int_equal(store_put_dag_version(s, NULL, "etl", "x", 1, NULL), ERR_DB);
    assert_int_equal(store_commit(s, NULL), 0);
    struct ti_rec got;
    assert_int_equal(store_get_ti(s, "r1", "a", &got, NULL), 0);
    assert_string_equal(got.task, "a");
    ti_rec_release(&got);
    store_close(s);
    assert_int_equal(raw_int("bad.db", "SELECT COUNT(*) FROM runs"), 0);
}

/* Failures on two connections, held at once and across later calls on the same connections,
 * keep their own words: each message lives in the caller's struct err, never in a "last
 * error" the connection keeps (which the connection's next call would replace). */
static void two_connections_keep_their_own_failures(void **state)
{
    (void)state;
    struct store *a = open_ok("first.db"), *b = open_ok("second.db");
    struct err ea = {0}, eb = {0}, later = {0};
    assert_int_equal(store_begin(a, NULL), 0);
    assert_int_equal(store_begin(a, &ea), ERR_DB); /* a transaction inside a transaction */
    struct run_rec r = full_run("r9", "etl", 5);
    r.state = (enum run_state)77;
    assert_int_equal(store_put_run(b, &r, &eb), ERR_DB);

    /* Later calls on both connections: some work, some fail into another struct err. */
    struct run_rec got;
    assert_int_equal(store_get_run(a, "r9", &got, &later), -ENOENT);
    assert_int_equal(later.code, 0); /* "not found" is an answer, not a failure */
    r = full_run(NULL, "etl", 5);
    assert_int_equal(store_put_run(a, &r, &later), ERR_DB);
    assert_non_null(strstr(later.msg, testdb_where("first.db")));
    assert_int_equal(store_begin(b, NULL), 0);
    assert_int_equal(store_begin(b, &later), ERR_DB);
    assert_non_null(strstr(later.msg, testdb_where("second.db")));
    store_rollback(a);
    store_rollback(b);
    r = full_run("r9", "etl", 5);
    assert_int_equal(store_begin(b, NULL), 0);
    assert_int_equal(store_put_run(b, &r, NULL), 0);
    assert_int_equal(store_commit(b, NULL), 0);

    assert_int_equal(ea.code, ERR_DB);
    assert_non_null(strstr(ea.msg, "cannot start a transaction in "));
    assert_non_null(strstr(ea.msg, testdb_where("first.db")));
    assert_null(strstr(ea.msg, testdb_where("second.db")));
    assert_int_equal(eb.code, ERR_DB);
    assert_non_null(strstr(eb.msg, "cannot write run 'r9' to "));
    assert_non_null(strstr(eb.msg, testdb_where("second.db")));
    assert_non_null(strstr(eb.msg, ": invalid state or type"));
    assert_null(strstr(eb.msg, testdb_where("first.db")));
    store_close(a);
    store_close(b);
    /* The messages outlive the connections: they are the caller's. */
    assert_non_null(strstr(ea.msg, testdb_where("first.db")));
    assert_non_null(strstr(eb.msg, testdb_where("second.db")));
}

/* Revocations (migration 0005): each raises the generation and is listed above the generation
 * a reader saw; a user's cutoff only grows, and grows on every revocation; a second connection sees
 * a commit at once; a purge drops only expired tokens. */
static void revocations_raise_the_generation(void **state)
{
    (void)state;
    struct store *s = open_ok("rv.db"), *other = open_ok("rv.db");
    int64_t gen = -1, purged = -1;
    assert_int_equal(store_revocation_gen(s, &gen, NULL), 0);
    assert_int_equal(gen, 0);
    assert_int_equal(store_revoke_token(s, "j1", "alice", 1000, NULL), 0);
    assert_int_equal(store_revoke_token(s, "j2", "bob", 5000, NULL), 0);
    assert_int_equal(store_revoke_user(s, "carol", 70, NULL), 0);
    assert_int_equal(store_revoke_user(s, "carol", 60, NULL), 0); /* never lowered, always raised */
    assert_int_equal(store_revocation_gen(other, &gen, NULL), 0);
    assert_int_equal(gen, 4);
    /* A user row is read with the generation of its user's latest revocation (0: none). */
    struct user_rec u = {.name = "carol", .role = "viewer", .password_hash = "h"}, got;
    assert_int_equal(store_put_user(s, &u, NULL), 0);
    u.name = "dave";
    assert_int_equal(store_put_user(s, &u, NULL), 0);
    assert_int_equal(store_get_user(other, "carol", &got, NULL), 0);
    assert_int_equal(got.revoked_gen, 4);
    user_rec_release(&got);
    assert_int_equal(store_get_user(other, "dave", &got, NULL), 0);
    assert_int_equal(got.revoked_gen, 0);
    user_rec_release(&got);

    struct revocation_rec *v;
    size_t n;
    assert_int_equal(store_list_revocations(other, 0, &v, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(v[0].jti, "j1");
    assert_string_equal(v[0].name, "alice");
    assert_int_equal(v[0].at, 1000);
    assert_int_equal(v[0].gen, 1);
    assert_string_equal(v[1].jti, "j2");
    assert_null(v[2].jti);
    assert_string_equal(v[2].name, "carol");
    assert_int_equal(v[2].at, 71);
    assert_int_equal(v[2].gen, 4);
    store_free_revocations(v, n);
    assert_int_equal(store_list_revocations(other, 2, &v, &n, NULL), 0);
    assert_int_equal(n, 1);
    store_free_revocations(v, n);
    assert_int_equal(store_list_revocations(other, 4, &v, &n, NULL), 0);
    assert_int_equal(n, 0);
    store_free_revocations(v, n);

    /* Inside the caller's transaction: a rollback takes the generation back too. */
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_revoke_token(s, "j3", "alice", 9000, NULL), 0);
    store_rollback(s);
    assert_int_equal(store_revocation_gen(other, &gen, NULL), 0);
    assert_int_equal(gen, 4);

    assert_int_equal(store_purge_revocations(s, 2000, &purged, NULL), 0);
    assert_int_equal(purged, 1);
    assert_int_equal(store_list_revocations(other, 0, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].jti, "j2");
    store_free_revocations(v, n);
    assert_int_equal(store_revoke_token(s, "", "alice", 1, NULL), ERR_DB);
    assert_int_equal(store_revoke_user(s, NULL, 1, NULL), ERR_DB);
    store_close(other);
    store_close(s);
}

/* A write the database refuses inside a transaction: PostgreSQL takes no text that is not
 * UTF-8 (SQLite stores the bytes). There the write is pipelined and answers 0; its failure
 * comes with the commit, which rolls the whole transaction back, and the connection works on. */
static void a_refused_write_fails_its_commit(void **state)
{
    struct store *s = open_ok("refused.db");
    struct run_rec r = full_run("r1", "etl", 5);
    struct ti_rec t = full_ti("r1", "a", "a", -1);
    t.message = "bad \xff\xfe bytes";
    struct err e = {0};
    assert_int_equal(store_begin(s, &e), 0);
    assert_int_equal(store_put_run(s, &r, &e), 0);
    assert_int_equal(store_put_ti(s, &t, &e), 0);
    int rc = store_commit(s, &e);
    struct run_rec got;
    if (testdb_pg()) {
        assert_int_equal(rc, ERR_DB);
        assert_non_null(strstr(e.msg, testdb_where("refused.db")));
        assert_non_null(strstr(e.msg, "UTF8"));
        assert_int_equal(store_get_run(s, "r1", &got, NULL), -ENOENT);
    } else {
        assert_int_equal(rc, 0);
        assert_int_equal(store_get_run(s, "r1", &got, NULL), 0);
        run_rec_release(&got);
    }
    /* The next transaction goes in. */
    t.message = "fine";
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, &r, NULL), 0);
    assert_int_equal(store_put_ti(s, &t, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    struct ti_rec ti;
    assert_int_equal(store_get_ti(s, "r1", "a", &ti, NULL), 0);
    assert_string_equal(ti.message, "fine");
    ti_rec_release(&ti);
    store_close(s);
}

static void on_alarm(int sig)
{
    (void)sig;
    static const char msg[] = "big_transaction_commits: no commit after 30 s\n";
    (void)!write(2, msg, sizeof msg - 1);
    _exit(3);
}

/* One transaction of 30000 new instances (half of one mapped task), a caller's own beyond the
 * writer's batches: it commits in time (about 2 s here). On PostgreSQL the writes go to a table
 * without statistics, where a lookup planned on the wrong index reads the whole run for each
 * row (70 s). */
static void big_transaction_commits(void **state)
{
    enum { N = 30000 };
    struct store *s = open_ok("big.db");
    signal(SIGALRM, on_alarm);
    alarm(30);
    assert_int_equal(store_begin(s, NULL), 0);
    for (int i = 0; i < N; i++) {
        char id[16];
        snprintf(id, sizeof id, i % 2 ? "m[%d]" : "t%05d", i);
        struct ti_rec t = full_ti("r1", id, i % 2 ? "m" : id, i % 2 ? i : -1);
        assert_int_equal(store_put_ti(s, &t, NULL), 0);
    }
    assert_int_equal(store_commit(s, NULL), 0);
    alarm(0);
    store_close(s);
    assert_int_equal(raw_int("big.db", "SELECT COUNT(*) FROM task_instances"), N);
    /* every instance of the mapped task shares the seq it got first (after t00000's) */
    assert_int_equal(raw_int("big.db", "SELECT COUNT(DISTINCT seq) FROM task_instances "
                                       "WHERE task = 'm'"),
                     1);
    assert_int_equal(raw_int("big.db", "SELECT MAX(seq) FROM task_instances"), N / 2 + 1);
}

/* The plan PostgreSQL caches for a task instance write (the prepared statement's generic plan,
 * which it keeps after five executions when no worse on average) must look up each seq by its
 * own index, never scan the run: on an empty table without statistics, where a wide DAG's first
 * batch of new instances gets it, and after ANALYZE (which replans). A plan reading the run per
 * write made wide 2000 take twice as long as on SQLite. EXPLAIN shows the plan itself, so this
 * needs no timing. */
static void assert_ti_write_plan_uses_indexes(PGconn *c, const char *stmt, const char *when)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "EXPLAIN EXECUTE %s('r1', 'new[3]', 'new', 3, 'queued', 1, 1, NULL, NULL, NULL, 0, "
             "'default', NULL, NULL, NULL, NULL)",
             stmt);
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK)
        fail_msg("%s: %s", sql, PQresultErrorMessage(r));
    char plan[16384] = "";
    for (int i = 0; i < PQntuples(r); i++) {
        size_t n = strlen(plan);
        snprintf(plan + n, sizeof plan - n, "%s\n", PQgetvalue(r, i, 0));
    }
    PQclear(r);
    /* the row's own (primary key), the task's other instances, the run's largest seq */
    static const char *const want[] = {"using task_instances_pkey on task_instances",
                                       "using task_instances_task on task_instances",
                                       "Backward using task_instances_seq on task_instances"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(plan, want[i]))
            fail_msg("%s: the generic plan of a task instance write lacks \"%s\":\n%s", when,
                     want[i], plan);
    if (strstr(plan, "Seq Scan") || strstr(plan, "Bitmap"))
        fail_msg("%s: the generic plan of a task instance write scans the run:\n%s", when, plan);
}

static void ti_write_plan_never_scans_the_run(void **state)
{
    if (!testdb_pg())
        skip(); /* SQLite plans each statement once, on the schema alone */
    struct store *s = open_ok("plan.db");
    struct run_rec run = full_run("r1", "etl", 5);
    put_run(s, &run);
    struct ti_rec t = full_ti("r1", "t0", "t0", -1);
    put_ti(s, &t); /* prepares the write on the store's connection */
    PGconn *c = store__pg(store__conn(s));
    PGresult *r = PQexec(c, "SELECT name FROM pg_prepared_statements "
                            "WHERE statement LIKE 'INSERT INTO task_instances %'");
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(r), 1);
    char stmt[64];
    snprintf(stmt, sizeof stmt, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = PQexec(c, "SET plan_cache_mode = force_generic_plan");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    assert_ti_write_plan_uses_indexes(c, stmt, "empty table");

    assert_int_equal(store_begin(s, NULL), 0);
    for (int i = 1; i < 3000; i++) {
        char id[16];
        snprintf(id, sizeof id, "t%04d", i);
        struct ti_rec u = full_ti("r1", id, id, -1);
        assert_int_equal(store_put_ti(s, &u, NULL), 0);
    }
    assert_int_equal(store_commit(s, NULL), 0);
    r = PQexec(c, "ANALYZE task_instances");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    assert_ti_write_plan_uses_indexes(c, stmt, "3000 rows, analyzed");
    store_close(s);
}

int main(void)
{
    /* About SQLite files: their modes, the sqlite: prefix, paths. */
    const struct CMUnitTest sqlite_only[] = {
        cmocka_unit_test_setup_teardown(open_creates_private_file_and_folders, setup, teardown),
        cmocka_unit_test_setup_teardown(sqlite_prefix_and_wal_mode, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_paths_give_messages, setup, teardown),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(migrations_apply_once, setup, teardown),
        cmocka_unit_test_setup_teardown(concurrent_first_opens_migrate_once, setup, teardown),
        cmocka_unit_test_setup_teardown(newer_schema_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(run_round_trip_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(ti_round_trip_every_field, setup, teardown),
        cmocka_unit_test_setup_teardown(try_round_trip_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(upsert_replaces_whole_row, setup, teardown),
        cmocka_unit_test_setup_teardown(list_runs_orders_filters_and_pages, setup, teardown),
        cmocka_unit_test_setup_teardown(find_runs_filters_state_dag_and_dates, setup, teardown),
        cmocka_unit_test_setup_teardown(list_tis_in_start_order, setup, teardown),
        cmocka_unit_test_setup_teardown(list_tis_in_first_seen_then_map_index_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(missing_rows_are_enoent, setup, teardown),
        cmocka_unit_test_setup_teardown(dag_versions_are_stored_once, setup, teardown),
        cmocka_unit_test_setup_teardown(rollback_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(failed_commit_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(errors_name_the_database, setup, teardown),
        cmocka_unit_test_setup_teardown(bad_records_are_refused_not_stored, setup, teardown),
        cmocka_unit_test_setup_teardown(two_connections_keep_their_own_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(revocations_raise_the_generation, setup, teardown),
        cmocka_unit_test_setup_teardown(ti_write_plan_never_scans_the_run, setup, teardown),
        cmocka_unit_test_setup_teardown(big_transaction_commits, setup, teardown),
        cmocka_unit_test_setup_teardown(a_refused_write_fails_its_commit, setup, teardown),
    };
    return testdb_run_group(sqlite_only, sizeof sqlite_only / sizeof *sqlite_only, tests,
                            sizeof tests / sizeof *tests);
}
