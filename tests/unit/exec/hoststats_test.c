/*
 * hoststats_test.c - the per-host gauges table /metrics reads: a host keeps
 * its slot, counts add up as deltas (two clients on one host), the table is
 * bounded, and a reader on another thread only ever sees whole updates.
 * The table is process-wide, so the cases run in order in one process.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "exec/hoststats.h"

static struct hoststats_row rows[HOSTSTATS_MAX];

static void slots_are_kept_and_counts_add(void **state)
{
    (void)state;
    int a = hoststats_slot("http://a:80");
    int b = hoststats_slot("http://b:80");
    assert_true(a >= 0 && b >= 0 && a != b);
    assert_int_equal(hoststats_slot("http://a:80"), a);
    hoststats_update(a, 2, 1, HOSTSTATS_NO_CIRCUIT);
    hoststats_update(a, 1, -1, 1); /* a second client on the same host */
    hoststats_update(-1, 5, 5, 0); /* untracked: ignored */
    uint64_t untracked;
    size_t n = hoststats_snapshot(rows, HOSTSTATS_MAX, &untracked);
    assert_int_equal(n, 2);
    assert_int_equal(untracked, 0);
    assert_string_equal(rows[a].key, "http://a:80");
    assert_int_equal(rows[a].in_flight, 3);
    assert_int_equal(rows[a].queued, 0);
    assert_int_equal(rows[a].circuit, 1);
    assert_int_equal(rows[b].in_flight, 0);
    assert_int_equal(rows[b].circuit, HOSTSTATS_NO_CIRCUIT);
    hoststats_update(a, -3, 0, HOSTSTATS_NO_CIRCUIT);
}

static void the_table_is_bounded(void **state)
{
    (void)state;
    char key[64];
    for (int i = 0; i < HOSTSTATS_MAX + 10; i++) {
        snprintf(key, sizeof(key), "http://h%d:80", i);
        (void)hoststats_slot(key);
    }
    assert_int_equal(hoststats_slot("http://one-more:80"), -1);
    uint64_t untracked;
    size_t n = hoststats_snapshot(rows, HOSTSTATS_MAX, &untracked);
    assert_int_equal(n, HOSTSTATS_MAX);
    assert_int_equal(untracked, 12 + 1); /* h254..h265 did not fit beside a and b; one-more */
    assert_int_equal(hoststats_snapshot(rows, 3, &untracked), 3);
}

static void *reader(void *arg)
{
    bool *bad = arg;
    static struct hoststats_row mine[HOSTSTATS_MAX];
    for (int i = 0; i < 2000; i++) {
        uint64_t untracked;
        size_t n = hoststats_snapshot(mine, HOSTSTATS_MAX, &untracked);
        /* the writer moves one from queued to in flight and back: the sum never changes */
        if (n < 1 || mine[0].in_flight + mine[0].queued != 0)
            *bad = true;
    }
    return NULL;
}

static void readers_see_whole_updates(void **state)
{
    (void)state;
    int a = hoststats_slot("http://a:80");
    assert_int_equal(a, 0);
    bool bad = false;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, reader, &bad), 0);
    for (int i = 0; i < 20000; i++) {
        hoststats_update(a, 1, -1, 0);
        hoststats_update(a, -1, 1, 0);
    }
    pthread_join(th, NULL);
    assert_false(bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(slots_are_kept_and_counts_add),
        cmocka_unit_test(the_table_is_bounded),
        cmocka_unit_test(readers_see_whole_updates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
