/*
 * listen_test.c - the PostgreSQL listener (store/listen.h) on a real libuv loop
 * and a real cluster: notifications of its channels only, delivered as
 * callbacks; after pg_terminate_backend of its connection it reconnects,
 * LISTENs again and calls the resync callback; stopped while its connect
 * runs, or while the server cannot be reached, it frees everything (ASan).
 *
 * The PostgreSQL run of the store tests (tests/unit/pgtmp.h); in the SQLite
 * run only the refusal of a non-PostgreSQL URL runs.
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
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "../pgtmp.h"
#include "base/err.h"
#include "base/when.h"
#include "store/listen.h"
#include "store/store.h"

struct seen {
    int resyncs;
    int notes;
    char last[64];
};

static void on_notify(void *ud, const char *channel)
{
    struct seen *s = ud;
    s->notes++;
    snprintf(s->last, sizeof s->last, "%s", channel);
}

static void on_resync(void *ud)
{
    ((struct seen *)ud)->resyncs++;
}

static int setup(void **state)
{
    (void)state;
    testdb_reset("listen");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop();
    return 0;
}

/* Runs the loop until *v reaches want or ms pass; whether it did. */
static bool run_until(uv_loop_t *loop, const int *v, int want, int ms)
{
    int64_t end = when_mono_ms() + ms;
    while (*v < want && when_mono_ms() < end) {
        uv_run(loop, UV_RUN_NOWAIT);
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return *v >= want;
}

static void notify(const char *channel)
{
    char sql[128];
    snprintf(sql, sizeof sql, "NOTIFY %s", channel);
    testdb_exec("e", sql);
}

/* Stops l and runs the loop until its handles are closed; closes the loop. */
static void stop_and_close(uv_loop_t *loop, struct listener *l)
{
    listen_stop(l);
    int64_t end = when_mono_ms() + 10000;
    while (uv_run(loop, UV_RUN_NOWAIT) != 0 && when_mono_ms() < end) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(uv_loop_close(loop), 0);
}

static struct listener *start(uv_loop_t *loop, const char *url, struct seen *s)
{
    const char *channels[] = {"baram_wake", "other_one"};
    struct listener *l = NULL;
    struct err e = {0};
    if (listen_start(loop, url, channels, 2, on_notify, on_resync, s, &l, &e) < 0)
        fail_msg("listen_start: %s", err_msg(&e));
    return l;
}

static void test_refuses_a_sqlite_url(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct listener *l = NULL;
    assert_int_equal(
        listen_start(&loop, "/tmp/x.db", NULL, 0, on_notify, on_resync, NULL, &l, NULL), -ENOTSUP);
    assert_null(l);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_notifications_and_a_reconnect(void **state)
{
    (void)state;
    if (!testdb_pg())
        skip();
    struct store *st = NULL;
    assert_int_equal(store_open(testdb_url("e"), &st, NULL), 0); /* the database, migrated */
    store_close(st);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen s = {0};
    struct listener *l = start(&loop, testdb_url("e"), &s);
    assert_true(run_until(&loop, &s.resyncs, 1, 10000)); /* listening */
    notify("baram_events");                              /* not its channel */
    notify("other_one");
    assert_true(run_until(&loop, &s.notes, 1, 5000));
    assert_string_equal(s.last, "other_one");
    assert_false(run_until(&loop, &s.notes, 2, 100));

    /* its backend is killed: it reconnects, listens again, and says resync */
    long long pid = testdb_int("e", "SELECT pid FROM pg_stat_activity WHERE datname = "
                                    "current_database() AND query LIKE 'LISTEN%'");
    assert_true(pid > 0);
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT pg_terminate_backend(%lld)", pid);
    testdb_exec("e", sql);
    assert_true(run_until(&loop, &s.resyncs, 2, 10000));
    notify("baram_wake");
    assert_true(run_until(&loop, &s.notes, 2, 5000));
    assert_string_equal(s.last, "baram_wake");
    stop_and_close(&loop, l);
}

static void test_stopped_while_connecting(void **state)
{
    (void)state;
    if (!testdb_pg())
        skip();
    struct store *st = NULL;
    assert_int_equal(store_open(testdb_url("e"), &st, NULL), 0);
    store_close(st);
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen s = {0};
    struct listener *l = start(&loop, testdb_url("e"), &s); /* its connect job is queued */
    stop_and_close(&loop, l);
    assert_int_equal(s.resyncs, 0); /* no callback after the stop */
}

static void test_a_server_out_of_reach_is_retried_then_stopped(void **state)
{
    (void)state;
    if (!testdb_pg())
        skip();
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct seen s = {0};
    struct listener *l =
        start(&loop, "postgresql:///nodb?host=/nonexistent-socket-dir&user=postgres", &s);
    int never = 0;
    assert_false(run_until(&loop, &never, 1, 400)); /* a few failed connects, backing off */
    assert_int_equal(s.resyncs, 0);
    stop_and_close(&loop, l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refuses_a_sqlite_url, setup, teardown),
        cmocka_unit_test_setup_teardown(test_notifications_and_a_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopped_while_connecting, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_server_out_of_reach_is_retried_then_stopped, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
