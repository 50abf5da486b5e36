/*
 * sched_test.c - the ready queue: priority then age order, the parallelism
 * limit, pool slots (a full pool does not block another pool), drop.
 */
/* cmocka.h needs these first. */
/* clang-format off */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include "sched/sched.h"

static uint32_t started[64];
static size_t nstarted;

static void on_start(void *owner, uint32_t id)
{
    started[nstarted++] = id;
}

static void priority_then_age(void **state)
{
    struct sched s;
    sched_init(&s, 1, on_start);
    nstarted = 0;
    uint32_t p = sched_pool(&s, "default");
    int prio[] = {1, 5, 3, 5, 9, 1, 3};
    for (uint32_t i = 0; i < 7; i++)
        sched_push(&s, &s, i, prio[i], p);
    uint32_t want[] = {4, 1, 3, 2, 6, 0, 5};
    for (int k = 0; k < 7; k++) {
        sched_dispatch(&s);
        assert_int_equal(nstarted, k + 1);
        assert_int_equal(started[k], want[k]);
        sched_dispatch(&s); /* parallelism 1: nothing more until done */
        assert_int_equal(nstarted, k + 1);
        sched_done(&s, p);
    }
    assert_int_equal(sched_queued(&s), 0);
    sched_release(&s);
}

static void pools_limit_separately(void **state)
{
    struct sched s;
    sched_init(&s, 10, on_start);
    nstarted = 0;
    sched_pool_set(&s, "db", 2);
    uint32_t db = sched_pool(&s, "db");
    uint32_t def = sched_pool(&s, "default");
    for (uint32_t i = 0; i < 5; i++)
        sched_push(&s, &s, i, 10, db); /* higher priority, but only 2 slots */
    for (uint32_t i = 10; i < 13; i++)
        sched_push(&s, &s, i, 1, def);
    sched_dispatch(&s);
    assert_int_equal(nstarted, 5);
    assert_int_equal(started[0], 0);
    assert_int_equal(started[1], 1);
    assert_int_equal(started[2], 10);
    assert_int_equal(sched_queued(&s), 3);
    sched_done(&s, db);
    sched_dispatch(&s);
    assert_int_equal(nstarted, 6);
    assert_int_equal(started[5], 2);
    sched_release(&s);
}

static void drop_removes_an_owner(void **state)
{
    struct sched s;
    int a, b;
    sched_init(&s, 1, on_start);
    nstarted = 0;
    uint32_t p = sched_pool(&s, "default");
    for (uint32_t i = 0; i < 6; i++)
        sched_push(&s, i % 2 ? (void *)&a : (void *)&b, i, (int)i, p);
    assert_int_equal(sched_drop(&s, &a), 3);
    assert_int_equal(sched_queued(&s), 3);
    sched_dispatch(&s);
    assert_int_equal(started[0], 4);
    sched_release(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(priority_then_age),
        cmocka_unit_test(pools_limit_separately),
        cmocka_unit_test(drop_removes_an_owner),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
