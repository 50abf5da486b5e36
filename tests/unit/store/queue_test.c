/*
 * queue_test.c - admission across schedulers (store/queue.h) on a real PostgreSQL: a fresh
 * database per case in the cluster whose socket folder BARAM_TEST_PG names (the "_pg" run,
 * tests/unit/pgtmp.h). Two or three connections
 * stand for schedulers registered in `workers`: a pool's slots hold across them, priority
 * wins across them, a scheduler no longer active loses its slots, a stopping one frees them,
 * and max_active_runs holds across them. On SQLite (the other run) every call says -ENOTSUP.
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
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/err.h"
#include "store/pg_int.h"
#include "store/queue.h"
#include "store/store.h"

#include "../pgtmp.h"

static int setup(void **state)
{
    (void)state;
    testdb_reset("queue");
    return 0;
}

static struct store *open_ok(void)
{
    struct store *s = testdb_open("q");
    assert_true(queue_supported(s));
    return s;
}

static int64_t sched_new(struct store *s, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO workers (role, name, hostname, pid) VALUES ('scheduler', '%s', 'h', 1) "
             "RETURNING id",
             name);
    return testdb_store_num(s, sql);
}

/* Rows of pool in flight (queued or running), across schedulers. */
static int64_t busy(struct store *s, const char *pool)
{
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ti_queue WHERE pool = '%s' AND state IN ('queued', 'running')",
             pool);
    return testdb_store_num(s, sql);
}

struct round {
    struct queue_key *granted;
    size_t n;
    bool dispatched;
};

static void round_free(struct round *r)
{
    queue_free_keys(r->granted, r->n);
    memset(r, 0, sizeof *r);
}

static void round_ok(struct store *s, int64_t id, const struct queue_key *rel, size_t nrel,
                     const struct queue_want *add, size_t nadd, const struct queue_pool *pools,
                     size_t npools, struct round *out)
{
    struct err e = {0};
    if (queue_round(s, id, rel, nrel, add, nadd, pools, npools, &out->granted, &out->n,
                    &out->dispatched, &e) < 0)
        fail_msg("queue_round: %s", e.msg);
}

/* A round that must succeed: how many tries it granted (freed). */
static size_t round_n(struct store *s, int64_t id, const struct queue_want *add, size_t nadd,
                      const struct queue_pool *pools, size_t npools)
{
    struct round r = {0};
    round_ok(s, id, NULL, 0, add, nadd, pools, npools, &r);
    size_t n = r.n;
    round_free(&r);
    return n;
}

/* Scheduler id declared dead by the others (as the reaper does). */
static void sched_dead(struct store *s, int64_t id)
{
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE workers SET state = 'dead' WHERE id = %lld", (long long)id);
    testdb_store_num(s, sql);
}

static bool granted_has(const struct round *r, const char *run_id, const char *task_id)
{
    for (size_t i = 0; i < r->n; i++)
        if (strcmp(r->granted[i].run_id, run_id) == 0 &&
            strcmp(r->granted[i].task_id, task_id) == 0)
            return true;
    return false;
}

/* Two schedulers, a pool of 2: never more than 2 in flight whoever asks; a slot freed by one
 * goes to the best waiting try, whoever's, claimed at its owner's next round. */
static void test_pool_holds_across_schedulers(void **state)
{
    (void)state;
    struct store *a = open_ok(), *b = open_ok();
    int64_t ida = sched_new(a, "a"), idb = sched_new(a, "b");
    struct queue_pool pools[] = {{"p2", 2}};
    struct queue_want wa[] = {{"ra", "t1", 1, "p2", 1, 1000, false},
                              {"ra", "t2", 1, "p2", 1, 1001, false},
                              {"ra", "t3", 1, "p2", 1, 3000, false}};
    struct queue_want wb[] = {{"rb", "t1", 1, "p2", 1, 2000, false},
                              {"rb", "t2", 1, "p2", 1, 2001, false}};
    struct round r = {0};
    round_ok(a, ida, NULL, 0, wa, 3, pools, 1, &r);
    assert_true(r.dispatched);
    assert_int_equal(r.n, 2); /* the two first ready */
    assert_true(granted_has(&r, "ra", "t1") && granted_has(&r, "ra", "t2"));
    round_free(&r);
    round_ok(b, idb, NULL, 0, wb, 2, pools, 1, &r);
    assert_int_equal(r.n, 0); /* full, whoever asks */
    round_free(&r);
    assert_int_equal(busy(a, "p2"), 2);

    /* a's try t1 ends: its round frees the slot and grants the best waiting try, b's t1 (ready
     * before a's t3), which b claims at its next round. */
    struct queue_key rel[] = {{"ra", "t1", 1}};
    round_ok(a, ida, rel, 1, NULL, 0, pools, 1, &r);
    assert_int_equal(r.n, 0);
    round_free(&r);
    assert_int_equal(busy(a, "p2"), 2);
    round_ok(b, idb, NULL, 0, NULL, 0, pools, 1, &r);
    assert_int_equal(r.n, 1);
    assert_true(granted_has(&r, "rb", "t1"));
    round_free(&r);
    assert_int_equal(busy(a, "p2"), 2);

    /* The `pools` row wins over the slots a scheduler knows: 3 slots now. */
    testdb_store_num(a, "INSERT INTO pools (name, slots, updated_at) VALUES ('p2', 3, 0)");
    round_ok(a, ida, NULL, 0, NULL, 0, pools, 1, &r);
    assert_int_equal(r.n, 0); /* granted b's t2 (ready before a's t3) */
    round_free(&r);
    assert_int_equal(busy(a, "p2"), 3);
    store_close(a);
    store_close(b);
}

/* Priority first across schedulers, then the longest ready. */
static void test_priority_across_schedulers(void **state)
{
    (void)state;
    struct store *a = open_ok(), *b = open_ok();
    int64_t ida = sched_new(a, "a"), idb = sched_new(a, "b");
    struct queue_pool pools[] = {{"one", 1}};
    struct queue_want block[] = {{"r0", "t", 1, "one", 1, 1, false}};
    struct round r = {0};
    round_ok(a, ida, NULL, 0, block, 1, pools, 1, &r);
    assert_int_equal(r.n, 1);
    round_free(&r);
    struct queue_want wa[] = {{"ra", "low", 1, "one", 1, 10, false}};
    struct queue_want wb[] = {{"rb", "high", 1, "one", 5, 20, false}};
    round_ok(a, ida, NULL, 0, wa, 1, pools, 1, &r);
    round_free(&r);
    round_ok(b, idb, NULL, 0, wb, 1, pools, 1, &r);
    round_free(&r);
    struct queue_key rel[] = {{"r0", "t", 1}};
    round_ok(a, ida, rel, 1, NULL, 0, pools, 1, &r);
    assert_int_equal(r.n, 0); /* not a's: b's has the higher priority */
    round_free(&r);
    round_ok(b, idb, NULL, 0, NULL, 0, pools, 1, &r);
    assert_int_equal(r.n, 1);
    assert_true(granted_has(&r, "rb", "high"));
    round_free(&r);
    store_close(a);
    store_close(b);
}

/* A scheduler declared dead (or stopped) keeps no slot: the next dispatch deletes its rows
 * before counting. A clean stop frees its rows at once, and so does deleting its registry
 * row. */
static void test_inactive_scheduler_frees_slots(void **state)
{
    (void)state;
    struct store *a = open_ok(), *b = open_ok();
    int64_t ida = sched_new(a, "a"), idb = sched_new(a, "b");
    struct queue_pool pools[] = {{"p", 1}};
    struct queue_want wa[] = {{"ra", "t", 1, "p", 1, 1, false}};
    struct queue_want wb[] = {{"rb", "t", 1, "p", 1, 2, false}};
    struct round r = {0};
    assert_int_equal(round_n(a, ida, wa, 1, pools, 1), 1);
    assert_int_equal(round_n(b, idb, wb, 1, pools, 1), 0);
    sched_dead(b, ida);
    char sql[128];
    round_ok(b, idb, NULL, 0, NULL, 0, pools, 1, &r);
    assert_int_equal(r.n, 1);
    assert_true(granted_has(&r, "rb", "t"));
    round_free(&r);
    assert_int_equal(testdb_store_num(b, "SELECT count(*) FROM ti_queue WHERE run_id = 'ra'"), 0);

    struct err e = {0};
    assert_int_equal(queue_release_sched(b, idb, &e), 0);
    assert_int_equal(busy(b, "p"), 0);

    /* A registry row deleted takes its scheduler's rows along. */
    int64_t idc = sched_new(a, "c");
    struct queue_want wc[] = {{"rc", "t", 1, "p", 1, 3, false}};
    round_ok(a, idc, NULL, 0, wc, 1, pools, 1, &r);
    assert_int_equal(r.n, 1);
    round_free(&r);
    snprintf(sql, sizeof sql, "DELETE FROM workers WHERE id = %lld", (long long)idc);
    testdb_store_num(a, sql);
    assert_int_equal(testdb_store_num(a, "SELECT count(*) FROM ti_queue"), 0);
    store_close(a);
    store_close(b);
}

/* The lock holder's clean-up of a dead scheduler's rows skips a row another round has locked
 * (a scheduler adopting the dead one's tries), rather than wait on it and close a lock cycle
 * (40P01); a later round removes it. And the dead scheduler's own rounds are refused. */
static void test_cleanup_skips_locked_rows_and_dead_rounds_fail(void **state)
{
    (void)state;
    struct store *a = open_ok(), *b = open_ok(), *c = open_ok();
    int64_t ida = sched_new(a, "a"), idb = sched_new(a, "b");
    struct queue_pool pools[] = {{"p", 5}};
    struct queue_want wa[] = {{"ra", "t", 1, "p", 1, 1, false}, {"ra", "u", 1, "p", 1, 1, false}};
    struct round r = {0};
    assert_int_equal(round_n(a, ida, wa, 2, pools, 1), 2);
    sched_dead(b, ida);

    /* the declared-dead scheduler's round changes nothing */
    struct queue_want late[] = {{"rz", "t", 1, "p", 1, 1, false}};
    struct err e = {0};
    assert_int_equal(
        queue_round(a, ida, NULL, 0, late, 1, pools, 1, &r.granted, &r.n, &r.dispatched, &e),
        ERR_DB);
    assert_non_null(strstr(e.msg, "not active"));
    assert_int_equal(testdb_store_num(b, "SELECT count(*) FROM ti_queue WHERE run_id = 'rz'"), 0);

    testdb_store_num(c, "BEGIN");
    testdb_store_num(c, "SELECT 1 FROM ti_queue WHERE run_id = 'ra' AND task_id = 't' FOR UPDATE");
    testdb_store_num(b, "SET lock_timeout = '2s'"); /* a wait would fail the round */
    round_ok(b, idb, NULL, 0, NULL, 0, pools, 1, &r);
    assert_true(r.dispatched);
    round_free(&r);
    assert_int_equal(testdb_store_num(b, "SELECT count(*) FROM ti_queue WHERE task_id = 'u'"), 0);
    assert_int_equal(testdb_store_num(b, "SELECT count(*) FROM ti_queue WHERE task_id = 't'"), 1);
    testdb_store_num(c, "COMMIT");
    assert_int_equal(round_n(b, idb, NULL, 0, pools, 1), 0);
    assert_int_equal(testdb_store_num(b, "SELECT count(*) FROM ti_queue"), 0);
    store_close(a);
    store_close(b);
    store_close(c);
}

/* A try made ready again (a retry, or a run resumed by another scheduler) replaces the row of
 * its instance; a release names its try, so an older try's release frees nothing newer. */
static void test_row_per_instance(void **state)
{
    (void)state;
    struct store *a = open_ok(), *b = open_ok();
    int64_t ida = sched_new(a, "a"), idb = sched_new(a, "b");
    struct queue_pool pools[] = {{"p", 5}};
    struct queue_want w1[] = {{"r", "t", 1, "p", 1, 1, false}};
    struct round r = {0};
    round_ok(a, ida, NULL, 0, w1, 1, pools, 1, &r);
    assert_int_equal(r.n, 1);
    round_free(&r);
    struct queue_want w2[] = {{"r", "t", 2, "p", 1, 2, false}};
    round_ok(b, idb, NULL, 0, w2, 1, pools, 1, &r);
    assert_int_equal(r.n, 1);
    assert_int_equal(r.granted[0].try_number, 2);
    round_free(&r);
    struct queue_key old[] = {{"r", "t", 1}};
    round_ok(a, ida, old, 1, NULL, 0, pools, 1, &r);
    round_free(&r);
    assert_int_equal(busy(a, "p"), 1);
    assert_int_equal(testdb_store_num(a, "SELECT sched_id FROM ti_queue WHERE run_id = 'r'"), idb);
    store_close(a);
    store_close(b);
}

/* max_active_runs across schedulers: the DAG's running runs in the database count, whoever
 * started them; a foreground `baram run` (owner 'cli') does not. */
static void test_start_runs_max_active(void **state)
{
    (void)state;
    struct store *a = open_ok(), *b = open_ok();
    int64_t ida = sched_new(a, "a"), idb = sched_new(a, "b");
    testdb_store_num(
        a, "INSERT INTO runs (run_id, dag_id, state, type, logical_at, queued_at) VALUES "
           "('q1', 'd', 'queued', 'manual', 1, 1), ('q2', 'd', 'queued', 'manual', 2, 2), "
           "('q3', 'd', 'queued', 'manual', 3, 3), ('x1', 'e', 'queued', 'manual', 1, 1), "
           "('c1', 'd', 'running', 'manual', 0, 0)");
    testdb_store_num(a, "UPDATE runs SET owner = 'cli' WHERE run_id = 'c1'");
    struct queue_run va[] = {{"q1", "d", 1}, {"q2", "d", 1}, {"x1", "e", 2}};
    struct queue_run vb[] = {{"q3", "d", 1}};
    char **started = NULL;
    size_t n = 0;
    struct err e = {0};
    assert_int_equal(queue_start_runs(a, va, 3, 5000, ida, &started, &n, &e), 0);
    assert_int_equal(n, 2); /* q1 (the first of d) and x1 */
    bool q1 = false, x1 = false;
    for (size_t i = 0; i < n; i++) {
        q1 |= strcmp(started[i], "q1") == 0;
        x1 |= strcmp(started[i], "x1") == 0;
        free(started[i]);
    }
    free(started);
    assert_true(q1 && x1);
    assert_int_equal(testdb_store_num(a, "SELECT started_at FROM runs WHERE run_id = 'q1'"), 5000);
    assert_int_equal(testdb_store_num(a, "SELECT sched_id FROM runs WHERE run_id = 'q1'"), ida);
    assert_int_equal(queue_start_runs(b, vb, 1, 6000, idb, &started, &n, &e), 0);
    assert_int_equal(n, 0); /* d has one running, whoever runs it */
    free(started);
    testdb_store_num(a, "UPDATE runs SET state = 'success' WHERE run_id = 'q1'");
    assert_int_equal(queue_start_runs(b, vb, 1, 7000, idb, &started, &n, &e), 0);
    assert_int_equal(n, 1);
    free(started[0]);
    free(started);
    /* A run another scheduler owns is not started by this one. */
    testdb_store_num(a, "UPDATE runs SET state = 'success' WHERE run_id = 'q3'");
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE runs SET sched_id = %lld WHERE run_id = 'q2'",
             (long long)idb);
    testdb_store_num(a, sql);
    struct queue_run vq2[] = {{"q2", "d", 1}};
    assert_int_equal(queue_start_runs(a, vq2, 1, 8000, ida, &started, &n, &e), 0);
    assert_int_equal(n, 0);
    free(started);
    store_close(a);
    store_close(b);
}

/* A try that started before its pool was limited goes in 'running': it takes its slot at once,
 * so a pool limited while tries run never grants past its size. */
static void test_running_try_takes_its_slot(void **state)
{
    (void)state;
    struct store *a = open_ok();
    int64_t ida = sched_new(a, "a");
    struct queue_pool pools[] = {{"late", 2}};
    struct queue_want run[] = {{"r", "x", 1, "late", 1, 1, true},
                               {"r", "y", 1, "late", 1, 2, true},
                               {"r", "z", 1, "late", 1, 3, true}};
    struct queue_want w[] = {{"r2", "t", 1, "late", 9, 4, false}};
    struct round r = {0};
    round_ok(a, ida, NULL, 0, run, 3, pools, 1, &r);
    assert_int_equal(r.n, 0); /* not granted: running already */
    round_free(&r);
    assert_int_equal(busy(a, "late"), 3);
    round_ok(a, ida, NULL, 0, w, 1, pools, 1, &r);
    assert_int_equal(r.n, 0); /* 3 in flight, 2 slots */
    round_free(&r);
    struct queue_key rel[] = {{"r", "x", 1}, {"r", "y", 1}};
    round_ok(a, ida, rel, 2, NULL, 0, pools, 1, &r);
    assert_int_equal(r.n, 1);
    assert_true(granted_has(&r, "r2", "t"));
    round_free(&r);
    store_close(a);
}

/* SQLite: one scheduler per home, nothing here applies. */
static void test_sqlite_not_supported(void **state)
{
    (void)state;
    struct store *s = NULL;
    struct err e = {0};
    assert_int_equal(store_open(testdb_path("baram.db"), &s, &e), 0);
    assert_false(queue_supported(s));
    struct round r = {0};
    assert_int_equal(
        queue_round(s, 1, NULL, 0, NULL, 0, NULL, 0, &r.granted, &r.n, &r.dispatched, &e),
        -ENOTSUP);
    char **started = NULL;
    size_t n = 0;
    struct queue_run v[] = {{"q", "d", 1}};
    assert_int_equal(queue_start_runs(s, v, 1, 0, 1, &started, &n, &e), -ENOTSUP);
    store_close(s);
}

int main(void)
{
    /* The SQLite run checks that nothing applies there; the "_pg" run (BARAM_UNIT_DB=pg) runs
     * the rest on fresh databases of the cluster in BARAM_TEST_PG. */
    const struct CMUnitTest pg[] = {
        cmocka_unit_test_setup_teardown(test_pool_holds_across_schedulers, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_priority_across_schedulers, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_inactive_scheduler_frees_slots, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(test_cleanup_skips_locked_rows_and_dead_rounds_fail, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(test_row_per_instance, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_start_runs_max_active, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(test_running_try_takes_its_slot, setup, testdb_teardown),
    };
    const struct CMUnitTest lite[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_not_supported, setup, testdb_teardown),
    };
    if (testdb_pg())
        return cmocka_run_group_tests(pg, NULL, NULL);
    return cmocka_run_group_tests(lite, NULL, NULL);
}
