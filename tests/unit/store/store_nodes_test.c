/*
 * store_nodes_test.c - the registry of schedulers and workers and run ownership (migration
 * 0006) on a real SQLite file in a fresh folder, and on a fresh PostgreSQL database in the
 * "_pg" run (tests/unit/pgtmp.h): register, heartbeat, declare dead and
 * release runs, claim and take runs, the write fence (also through the group-commit writer), a
 * clean stop, and one scheduled run per interval.
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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "../pgtmp.h"
#include "base/err.h"
#include "base/when.h"
#include "store/store.h"

static const char *url;

static int setup(void **state)
{
    (void)state;
    testdb_reset("snodes");
    url = testdb_url("baram.db");
    return 0;
}

static struct store *open_ok(void)
{
    return testdb_open("baram.db");
}

static int64_t register_ok(struct store *s, const char *name)
{
    struct node_rec n = {
        .role = "scheduler", .name = (char *)name, .hostname = "h1", .pid = 42, .slots = 0};
    int64_t id = 0;
    struct err e = {0};
    if (store_node_register(s, &n, &id, &e) < 0)
        fail_msg("register: %s", e.msg);
    assert_true(id > 0);
    return id;
}

/* A queued run of DAG etl, made by a trigger (no scheduler owns it). */
static void put_queued(struct store *s, const char *run_id, int64_t at)
{
    struct run_rec r = {
        .run_id = (char *)run_id,
        .dag_id = "etl",
        .state = RUN_QUEUED,
        .type = RUN_MANUAL,
        .logical_at_ms = at,
        .queued_at_ms = at,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, &r, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
}

static size_t owned(struct store *s, int64_t id)
{
    struct run_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_owned_runs(s, id, &v, &n, NULL), 0);
    store_free_runs(v, n);
    return n;
}

static void register_list_heartbeat(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t a = register_ok(s, "h1:42");
    int64_t b = register_ok(s, "h1:43");
    assert_true(b > a);
    bool alive = false;
    assert_int_equal(store_node_heartbeat(s, a, &alive, NULL), 0);
    assert_true(alive);
    struct node_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_nodes(s, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_int_equal(v[0].id, a);
    assert_string_equal(v[0].role, "scheduler");
    assert_string_equal(v[0].name, "h1:42");
    assert_string_equal(v[0].hostname, "h1");
    assert_int_equal(v[0].pid, 42);
    assert_string_equal(v[0].state, "active");
    assert_string_equal(v[0].queues, "default");
    assert_int_equal(v[0].running, 0);
    int64_t now = when_now_ms();
    assert_true(v[0].started_at_ms > now - 60000 && v[0].started_at_ms <= now + 60000);
    assert_true(v[0].heartbeat_at_ms >= v[0].started_at_ms);
    store_free_nodes(v, n);
    /* Bad calls. */
    struct node_rec bad = {.role = "boss", .name = "x", .hostname = "h"};
    int64_t id;
    assert_int_equal(store_node_register(s, &bad, &id, NULL), -EINVAL);
    store_close(s);
}

static void claim_and_take_runs(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t a = register_ok(s, "a"), b = register_ok(s, "b");
    put_queued(s, "r1", 1000);
    put_queued(s, "r2", 2000);
    put_queued(s, "r3", 3000);
    size_t got = 0;
    assert_int_equal(store_claim_runs(s, a, 2, &got, NULL), 0);
    assert_int_equal(got, 2);
    assert_int_equal(owned(s, a), 2);
    assert_int_equal(store_claim_runs(s, b, 5, &got, NULL), 0);
    assert_int_equal(got, 1); /* r3 only: r1 and r2 are a's */
    assert_int_equal(owned(s, b), 1);
    bool taken = true;
    assert_int_equal(store_take_run(s, a, "r3", &taken, NULL), 0);
    assert_false(taken); /* b's */
    assert_int_equal(store_take_run(s, b, "r3", &taken, NULL), 0);
    assert_true(taken); /* its own already */
    assert_int_equal(store_claim_runs(s, b, 5, &got, NULL), 0);
    assert_int_equal(got, 0);
    store_close(s);
}

static void claims_take_a_fair_share(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t a = register_ok(s, "a"), b = register_ok(s, "b"), c = register_ok(s, "c");
    char id[16];
    for (int i = 0; i < 7; i++) {
        snprintf(id, sizeof id, "r%d", i);
        put_queued(s, id, 1000 + i);
    }
    size_t got = 0;
    assert_int_equal(store_claim_runs(s, a, 16, &got, NULL), 0);
    assert_int_equal(got, 3); /* 7 runs, 3 schedulers */
    assert_int_equal(store_claim_runs(s, b, 16, &got, NULL), 0);
    assert_int_equal(got, 2); /* 4 left */
    assert_int_equal(store_claim_runs(s, c, 1, &got, NULL), 0);
    assert_int_equal(got, 1); /* its own limit */
    assert_int_equal(store_claim_runs(s, c, 16, &got, NULL), 0);
    assert_int_equal(got, 1);
    assert_int_equal(store_claim_runs(s, a, 16, &got, NULL), 0);
    assert_int_equal(got, 0);
    assert_int_equal(owned(s, a) + owned(s, b) + owned(s, c), 7);
    store_close(s);
}

static void reap_fences_and_releases(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t a = register_ok(s, "a"), b = register_ok(s, "b");
    put_queued(s, "r1", 1000);
    size_t got = 0;
    assert_int_equal(store_claim_runs(s, a, 5, &got, NULL), 0);
    assert_int_equal(got, 1);
    /* Nobody is silent for an hour: nothing happens. */
    assert_int_equal(store_reap_nodes(s, 3600 * 1000, &got, NULL), 0);
    assert_int_equal(got, 0);
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_fence(s, a, NULL), 0);
    store_rollback(s);
    /* a goes silent; b beats. */
    usleep(300 * 1000);
    bool alive = false;
    assert_int_equal(store_node_heartbeat(s, b, &alive, NULL), 0);
    assert_true(alive);
    assert_int_equal(store_reap_nodes(s, 200, &got, NULL), 0);
    assert_int_equal(got, 1);
    assert_int_equal(store_reap_nodes(s, 200, &got, NULL), 0); /* idempotent */
    assert_int_equal(got, 0);
    assert_int_equal(owned(s, a), 0);
    assert_int_equal(store_node_heartbeat(s, a, &alive, NULL), 0);
    assert_false(alive);
    struct err e = {0};
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_fence(s, a, &e), -ESTALE);
    assert_non_null(strstr(e.msg, "no longer active"));
    store_rollback(s);
    /* The orphaned run is claimable again. */
    assert_int_equal(store_claim_runs(s, b, 5, &got, NULL), 0);
    assert_int_equal(got, 1);
    struct node_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(store_list_nodes(s, &v, &n, NULL), 0);
    assert_int_equal(n, 2);
    assert_string_equal(v[0].state, "dead");
    assert_string_equal(v[1].state, "active");
    store_free_nodes(v, n);
    store_close(s);
}

static void stop_releases_runs(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t a = register_ok(s, "a");
    put_queued(s, "r1", 1000);
    bool taken = false;
    assert_int_equal(store_take_run(s, a, "r1", &taken, NULL), 0);
    assert_true(taken);
    assert_int_equal(store_node_stop(s, a, NULL), 0);
    assert_int_equal(owned(s, a), 0);
    bool alive = true;
    assert_int_equal(store_node_heartbeat(s, a, &alive, NULL), 0);
    assert_false(alive);
    int64_t b = register_ok(s, "b");
    assert_int_equal(store_take_run(s, b, "r1", &taken, NULL), 0);
    assert_true(taken);
    store_close(s);
}

static void restart_on_a_home_replaces_its_predecessor(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct node_rec n = {
        .role = "scheduler", .name = "h1:1", .hostname = "h1", .pid = 1, .home = "/srv/baram"};
    int64_t a = 0, b = 0, other = 0;
    assert_int_equal(store_node_register(s, &n, &a, NULL), 0);
    n.home = "/srv/other";
    assert_int_equal(store_node_register(s, &n, &other, NULL), 0);
    put_queued(s, "r1", 1000);
    size_t got = 0;
    assert_int_equal(store_claim_runs(s, a, 5, &got, NULL), 0);
    assert_int_equal(got, 1);
    /* a crashed; its successor on the same home (and host) takes its place at once */
    n.home = "/srv/baram";
    n.pid = 2;
    assert_int_equal(store_node_register(s, &n, &b, NULL), 0);
    bool alive = true;
    assert_int_equal(store_node_heartbeat(s, a, &alive, NULL), 0);
    assert_false(alive);
    assert_int_equal(store_node_heartbeat(s, other, &alive, NULL), 0);
    assert_true(alive); /* another home: untouched */
    assert_int_equal(owned(s, a), 0);
    assert_int_equal(store_claim_runs(s, b, 5, &got, NULL), 0);
    assert_int_equal(got, 1);
    store_close(s);
}

/* Sets run_id's state (as a clear or a run's end does: a whole-row upsert, sched_id kept). */
static void set_state(struct store *s, const char *run_id, enum run_state st)
{
    struct run_rec r;
    assert_int_equal(store_get_run(s, run_id, &r, NULL), 0);
    r.state = st;
    assert_int_equal(store_begin(s, NULL), 0);
    assert_int_equal(store_put_run(s, &r, NULL), 0);
    assert_int_equal(store_commit(s, NULL), 0);
    run_rec_release(&r);
}

static void cleared_run_of_a_gone_scheduler_is_claimable(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t a = register_ok(s, "a");
    put_queued(s, "r1", 1000);
    put_queued(s, "r2", 2000);
    size_t got = 0;
    assert_int_equal(store_claim_runs(s, a, 5, &got, NULL), 0);
    assert_int_equal(got, 2);
    int64_t b = register_ok(s, "b");
    set_state(s, "r1", RUN_SUCCESS);
    set_state(s, "r2", RUN_SUCCESS);
    /* Cleared while a lives: still a's (it takes the run again at its next sync). */
    set_state(s, "r2", RUN_QUEUED);
    assert_int_equal(store_claim_runs(s, b, 5, &got, NULL), 0);
    assert_int_equal(got, 0);
    assert_int_equal(owned(s, a), 1);
    /* a stops: its unfinished run is released; its finished one keeps its last owner... */
    assert_int_equal(store_node_stop(s, a, NULL), 0);
    assert_int_equal(owned(s, a), 0);
    /* ... and is anyone's once cleared. */
    set_state(s, "r1", RUN_QUEUED);
    assert_int_equal(store_claim_runs(s, b, 5, &got, NULL), 0);
    assert_int_equal(got, 2);
    assert_int_equal(owned(s, b), 2);
    store_close(s);
}

static void scheduled_interval_once(void **state)
{
    (void)state;
    struct store *s = open_ok();
    struct run_rec rec = {
        .dag_id = "etl",
        .state = RUN_QUEUED,
        .type = RUN_SCHEDULED,
        .logical_at_ms = 1764385200000,
        .queued_at_ms = 5,
        .started_at_ms = -1,
        .ended_at_ms = -1,
    };
    char id[96];
    struct err e = {0};
    assert_int_equal(store_claim_run(s, "scheduled__", rec.logical_at_ms, &rec, id, sizeof id, &e),
                     0);
    assert_string_equal(id, "scheduled__2025-11-29T03:00:00.000Z");
    assert_int_equal(store_claim_run(s, "scheduled__", rec.logical_at_ms, &rec, id, sizeof id, &e),
                     -EALREADY);
    assert_string_equal(id, "");
    /* A manual run at the same date is another matter. */
    rec.type = RUN_MANUAL;
    assert_int_equal(store_claim_run(s, "manual__", rec.logical_at_ms, &rec, id, sizeof id, &e), 0);
    struct run_rec *v = NULL;
    size_t n = 0, total = 0;
    assert_int_equal(store_list_runs(s, "etl", -1, 0, &v, &n, &total, NULL), 0);
    assert_int_equal(n, 2);
    store_free_runs(v, n);
    store_close(s);
}

/* ---- the fence through the writer ---- */

struct wctx {
    int err_code;
    char err_msg[512];
    uint64_t durable;
    bool stopped;
};

static void on_durable(void *ud, uint64_t seq)
{
    ((struct wctx *)ud)->durable = seq;
}

static void on_error(void *ud, int code, const char *msg)
{
    struct wctx *c = ud;
    c->err_code = code;
    snprintf(c->err_msg, sizeof c->err_msg, "%s", msg);
}

static void on_stopped(void *ud)
{
    ((struct wctx *)ud)->stopped = true;
}

static void run_until(uv_loop_t *loop, bool (*done)(struct wctx *), struct wctx *c)
{
    for (int i = 0; i < 500 && !done(c); i++) {
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(10 * 1000);
    }
}

static bool got_durable(struct wctx *c)
{
    return c->durable > 0 || c->err_code;
}

static bool got_error(struct wctx *c)
{
    return c->err_code != 0;
}

static void writer_fenced_after_reap(void **state)
{
    (void)state;
    struct store *s = open_ok();
    int64_t a = register_ok(s, "a");
    put_queued(s, "r1", 1000);
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    struct wctx c = {0};
    struct store_writer *w = NULL;
    assert_int_equal(store_writer_start(&loop, url, on_durable, on_error, &c, NULL, NULL, &w, NULL),
                     0);
    store_writer_set_fence(w, a);
    struct run_rec r = {.run_id = "r1",
                        .dag_id = "etl",
                        .state = RUN_RUNNING,
                        .type = RUN_MANUAL,
                        .logical_at_ms = 1000,
                        .queued_at_ms = 1000,
                        .started_at_ms = 1100,
                        .ended_at_ms = -1};
    assert_true(store_writer_put_run(w, &r) > 0);
    run_until(&loop, got_durable, &c);
    assert_int_equal(c.err_code, 0); /* active: written */
    usleep(150 * 1000);
    size_t got = 0;
    assert_int_equal(store_reap_nodes(s, 100, &got, NULL), 0);
    assert_int_equal(got, 1);
    r.state = RUN_SUCCESS;
    r.ended_at_ms = 1200;
    assert_true(store_writer_put_run(w, &r) > 0);
    run_until(&loop, got_error, &c);
    assert_int_equal(c.err_code, -ESTALE);
    assert_non_null(strstr(c.err_msg, "no longer active"));
    store_writer_stop(w, on_stopped);
    while (!c.stopped)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(uv_loop_close(&loop), 0);
    struct run_rec got_run;
    assert_int_equal(store_get_run(s, "r1", &got_run, NULL), 0);
    assert_int_equal(got_run.state, RUN_RUNNING); /* the stale write was refused */
    run_rec_release(&got_run);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(register_list_heartbeat, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(claim_and_take_runs, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(claims_take_a_fair_share, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(reap_fences_and_releases, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(stop_releases_runs, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(restart_on_a_home_replaces_its_predecessor, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(cleared_run_of_a_gone_scheduler_is_claimable, setup,
                                        testdb_teardown),
        cmocka_unit_test_setup_teardown(scheduled_interval_once, setup, testdb_teardown),
        cmocka_unit_test_setup_teardown(writer_fenced_after_reap, setup, testdb_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
