/*
 * events_test.c - the event log (events_pg.c, events_sqlite.c): appends
 * gathered and flushed in one statement, in order; reads that never pass over
 * an id still in progress (the gap an id drawn early and committed late
 * would leave); the end a new stream starts from; one NOTIFY baram_events per
 * transaction; wake-ups and the health probe.
 *
 * Built once, run twice (tests/unit/pgtmp.h): the appends and reads also on
 * SQLite; the cases about concurrent transactions and NOTIFY only in the
 * PostgreSQL run (BARAM_UNIT_DB=pg, on the cluster in BARAM_TEST_PG).
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "base/err.h"
#include "base/when.h"
#include "store/events.h"
#include "store/store.h"

#include "../pgtmp.h"

static int setup(void **state)
{
    (void)state;
    testdb_reset("events");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    testdb_drop();
    return 0;
}

/* A connection of the case's database "e", as the store opens it; pg_only: the case runs on
 * PostgreSQL alone (skipped in the SQLite run). */
static struct store *open_store(bool pg_only)
{
    if (pg_only && !testdb_pg())
        skip();
    struct store *s = NULL;
    struct err e = {0};
    if (store_open(testdb_url("e"), &s, &e) < 0)
        fail_msg("store_open: %s", err_msg(&e));
    return s;
}

/* The ids of the events after after_id, as "1,2,3". */
static void ids(struct store *s, int64_t after_id, char *out, size_t n)
{
    struct event_rec *v = NULL;
    size_t k = 0;
    struct err e = {0};
    int r = events_list(s, after_id, NULL, NULL, 100, &v, &k, &e);
    if (r == -EAGAIN) {
        snprintf(out, n, "again"); /* not final yet */
        return;
    }
    if (r < 0)
        fail_msg("events_list: %s", err_msg(&e));
    out[0] = '\0';
    for (size_t i = 0; i < k; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%lld", i ? "," : "", (long long)v[i].id);
    events_free(v, k);
}

static void put(struct store *s, const char *run, const char *state)
{
    struct err e = {0};
    if (events_put(s, EVENT_RUN, "d", run, NULL, state, 0, 1000, &e) < 0)
        fail_msg("events_put: %s", err_msg(&e));
}

static void begin(struct store *s)
{
    struct err e = {0};
    if (store_begin(s, &e) < 0)
        fail_msg("store_begin: %s", err_msg(&e));
}

static void commit(struct store *s)
{
    struct err e = {0};
    if (store_commit(s, &e) < 0)
        fail_msg("store_commit: %s", err_msg(&e));
}

static void test_flush_appends_the_batch_in_order(void **state)
{
    (void)state;
    struct store *s = open_store(false);
    testdb_exec("e", "INSERT INTO runs (run_id, dag_id, state, type, logical_at) VALUES "
                     "('r\"1\\', 'dag \"x\"', 'running', 'manual', 5)");
    struct err e = {0};
    begin(s);
    struct events_w *w = NULL;
    assert_int_equal(events_w_open(s, &w, &e), 0);
    /* a dag_id left NULL is the run's; quotes and backslashes survive the array literal */
    assert_int_equal(events_w_put(w, EVENT_RUN, NULL, "r\"1\\", NULL, "running", 0, 7, &e), 0);
    assert_int_equal(events_w_put(w, EVENT_TI, NULL, "r\"1\\", "t,{a}", "queued", 2, 8, &e), 0);
    assert_int_equal(events_w_put(w, EVENT_TI, "other", "r\"1\\", "NULL", "running", 3, 9, &e), 0);
    assert_int_equal(events_w_flush(w, &e), 0);
    assert_int_equal(events_w_flush(w, &e), 0); /* nothing gathered: nothing written */
    commit(s);
    struct event_rec *v = NULL;
    size_t n = 0;
    assert_int_equal(events_list(s, 0, NULL, NULL, 10, &v, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_int_equal(v[0].kind, EVENT_RUN);
    assert_string_equal(v[0].dag_id, "dag \"x\"");
    assert_string_equal(v[0].run_id, "r\"1\\");
    assert_null(v[0].task_id);
    assert_int_equal(v[0].at_ms, 7);
    assert_string_equal(v[1].task_id, "t,{a}");
    assert_string_equal(v[1].state, "queued");
    assert_int_equal(v[1].try_number, 2);
    assert_string_equal(v[2].dag_id, "other");
    assert_string_equal(v[2].task_id, "NULL");
    assert_true(v[0].id < v[1].id && v[1].id < v[2].id);
    int64_t last = 0;
    assert_int_equal(events_last_id(s, &last, &e), 0);
    assert_int_equal(last, v[2].id);
    events_free(v, n);
    /* filters */
    assert_int_equal(events_list(s, 0, "other", NULL, 10, &v, &n, &e), 0);
    assert_int_equal(n, 1);
    events_free(v, n);
    assert_int_equal(events_list(s, 0, NULL, "nope", 10, &v, &n, &e), 0);
    assert_int_equal(n, 0);
    events_w_close(w);
    store_close(s);
}

/* One batch of the writer: begin, two appends at at_ms, flush, then commit or roll back. */
static void batch(struct store *s, struct events_w *w, int64_t at_ms, bool keep)
{
    struct err e = {0};
    begin(s);
    assert_int_equal(events_w_put(w, EVENT_RUN, "d", "r", NULL, "running", 0, at_ms, &e), 0);
    assert_int_equal(events_w_put(w, EVENT_TI, "d", "r", "t", "running", 1, at_ms, &e), 0);
    assert_int_equal(events_w_flush(w, &e), 0);
    if (keep)
        commit(s);
    else
        store_rollback(s);
}

/* The writer retries a batch whose COMMIT's answer was lost (the connection dropped): when
 * that COMMIT had gone through, the same events are not appended a second time; a batch that
 * was rolled back, or another one, is. */
static void test_a_retried_batch_that_committed_is_not_appended_twice(void **state)
{
    (void)state;
    struct store *s = open_store(true);
    struct events_w *w = NULL;
    struct err e = {0};
    assert_int_equal(events_w_open(s, &w, &e), 0);
    batch(s, w, 10, true);
    batch(s, w, 10, true); /* the retry of a committed batch */
    assert_int_equal(testdb_int("e", "SELECT count(*) FROM events"), 2);
    batch(s, w, 11, false); /* rolled back, then retried */
    batch(s, w, 11, true);
    assert_int_equal(testdb_int("e", "SELECT count(*) FROM events"), 4);
    batch(s, w, 12, true);
    assert_int_equal(testdb_int("e", "SELECT count(*) FROM events WHERE at = 12"), 2);
    events_w_close(w);
    store_close(s);
}

/* Ids 1-3 were drawn, B's still uncommitted: r's read proves nothing and says so, at once
 * (not after a long wait); once B commits it returns all three. Closes the stores. */
static void held_then_released(struct store *a, struct store *b, struct store *r)
{
    char got[256];
    int64_t t0 = when_mono_ms();
    ids(r, 0, got, sizeof got);
    assert_string_equal(got, "again");
    assert_true(when_mono_ms() - t0 < 2000);
    commit(b);
    ids(r, 0, got, sizeof got);
    assert_string_equal(got, "1,2,3");
    store_close(a);
    store_close(b);
    store_close(r);
}

/* Transaction B draws id 1 and stays open; A draws id 2 and commits. A reader must not
 * return 2 before B ends: having moved past it, it would never return 1. */
static void test_a_read_never_passes_an_id_in_progress(void **state)
{
    (void)state;
    struct store *a = open_store(true), *b = open_store(true), *r = open_store(true);
    begin(a);
    put(a, "early-xid", "queued"); /* A has the older xid... */
    begin(b);
    put(b, "b", "queued"); /* ...B draws its id */
    commit(a);             /* A's row commits first */
    begin(a);
    put(a, "a2", "queued"); /* a younger transaction, drawn after B, committed */
    commit(a);
    held_then_released(a, b, r);
}

/* The older transaction draws the HIGHER id and commits first: a filter `xid < xmin` on
 * each row would return A's rows and skip B's lower id for good. */
static void test_an_older_transaction_with_a_higher_id(void **state)
{
    (void)state;
    struct store *a = open_store(true), *b = open_store(true), *r = open_store(true);
    begin(a);
    put(a, "a", "queued"); /* id 1: A takes the older xid */
    begin(b);
    put(b, "b", "queued");  /* id 2, the younger xid, stays open */
    put(a, "a", "running"); /* id 3 */
    commit(a);
    held_then_released(a, b, r);
}

/* A transaction that appends no event, however long it stays open, never holds the stream
 * back (a read filtered on the snapshot's xmin would wait for it). */
static void test_an_unrelated_transaction_does_not_hold_the_stream(void **state)
{
    (void)state;
    struct store *a = open_store(true), *r = open_store(true);
    PGconn *other = testdb_connect(testdb_pgdb("e"));
    testdb_pg_exec(other, "BEGIN");
    testdb_pg_exec(other, "SELECT pg_current_xact_id()"); /* it has an xid and stays open */
    put(a, "a", "queued");
    char got[256];
    int64_t t0 = when_mono_ms();
    ids(r, 0, got, sizeof got);
    assert_string_equal(got, "1");
    assert_true(when_mono_ms() - t0 < 50);
    testdb_pg_exec(other, "COMMIT");
    PQfinish(other);
    store_close(a);
    store_close(r);
}

static void test_one_notify_per_transaction(void **state)
{
    (void)state;
    struct store *s = open_store(true);
    PGconn *l = testdb_connect(testdb_pgdb("e"));
    testdb_pg_exec(l, "LISTEN baram_events");
    testdb_pg_exec(l, "LISTEN baram_wake");
    begin(s);
    put(s, "r", "queued");
    put(s, "r", "running");
    commit(s);
    struct err e = {0};
    assert_int_equal(events_notify(s, EVENTS_CHANNEL_WAKE, &e), 0);
    int events = 0, wakes = 0;
    int64_t until = when_mono_ms() + 500;
    while (when_mono_ms() < until) {
        struct pollfd p = {.fd = PQsocket(l), .events = POLLIN};
        poll(&p, 1, 50);
        PQconsumeInput(l);
        PGnotify *n;
        while ((n = PQnotifies(l))) {
            events += strcmp(n->relname, "baram_events") == 0;
            wakes += strcmp(n->relname, "baram_wake") == 0;
            PQfreemem(n);
        }
    }
    assert_int_equal(events, 1);
    assert_int_equal(wakes, 1);
    assert_int_equal(store_ping(s, &e), 0);
    assert_string_equal(store_backend_name(s), "postgresql");
    PQfinish(l);
    store_close(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_flush_appends_the_batch_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_read_never_passes_an_id_in_progress, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_older_transaction_with_a_higher_id, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_an_unrelated_transaction_does_not_hold_the_stream,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_notify_per_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_retried_batch_that_committed_is_not_appended_twice,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
