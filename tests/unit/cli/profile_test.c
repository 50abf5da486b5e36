/*
 * profile_test.c - critical path and parallelism on synthetic timelines:
 * the walk follows the upstream that ended last, mapped instances merge into
 * their task, overlapping intervals give the maximum parallelism.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <string.h>

#include "cli/profile.h"
#include "dag/graph.h"

/* Tasks: 0 extract, 1 fast, 2 slow, 3 report (needs fast and slow), 4 lonely (no edges). */
static void build_diamond(struct graph *g)
{
    const struct graph_edge e[] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}};
    assert_int_equal(graph_build(g, 5, e, 4), 0);
}

static void path_follows_the_upstream_that_ended_last(void **state)
{
    struct graph g;
    build_diamond(&g);
    const struct profile_ti tis[] = {
        {0, 0, 10, 500},                       /* extract 0.49s */
        {1, 500, 510, 600},                    /* fast */
        {2, 500, 505, 3600},                   /* slow: ends last of report's upstream */
        {3, 3600, 3601, 3800}, {4, 0, 5, 100}, /* a lonely leaf that ended early */
    };
    struct profile p;
    assert_int_equal(profile_compute(&g, tis, 5, 0, 3810, &p), 0);
    assert_int_equal(p.npath, 3);
    assert_int_equal(p.path[0], 0);
    assert_int_equal(p.path[1], 2);
    assert_int_equal(p.path[2], 3);
    assert_int_equal(p.wall_ms, 3810);
    assert_int_equal(p.begin_at_ms, 0);
    assert_int_equal(p.end_at_ms, 3810);
    assert_int_equal(p.sum_run_ms, 490 + 90 + 3095 + 199 + 95);
    assert_int_equal(p.sum_wait_ms, 10 + 10 + 5 + 1 + 5);
    /* extract+lonely overlap; then fast+slow. */
    assert_int_equal(p.max_parallel, 2);
    assert_float_equal(p.avg_parallel, (double)p.sum_run_ms / 3810.0, 1e-9);
    profile_release(&p);
    assert_null(p.path);
    graph_release(&g);
}

static void mapped_instances_count_as_their_task(void **state)
{
    struct graph g;
    build_diamond(&g);
    /* fast is mapped: 4 instances, the last ends at 5000, after slow. */
    const struct profile_ti tis[] = {
        {0, 0, 0, 100},      {1, 100, 101, 1000}, {1, 100, 102, 2000},   {1, 100, 103, 3000},
        {1, 100, 104, 5000}, {2, 100, 100, 4000}, {3, 5000, 5001, 5100}, {4, -1, -1, -1},
    };
    struct profile p;
    assert_int_equal(profile_compute(&g, tis, 8, -1, -1, &p), 0);
    assert_int_equal(p.npath, 3);
    assert_int_equal(p.path[1], 1);
    assert_int_equal(p.tasks[1].ninstances, 4);
    assert_int_equal(p.tasks[1].started_at_ms, 101);
    assert_int_equal(p.tasks[1].ended_at_ms, 5000);
    assert_int_equal(p.tasks[1].queued_at_ms, 100);
    /* Without run times, the instances' extent is the wall. */
    assert_int_equal(p.begin_at_ms, 0);
    assert_int_equal(p.end_at_ms, 5100);
    /* 4 fast + slow overlap at t=104. */
    assert_int_equal(p.max_parallel, 5);
    /* The task that never ran has no times. */
    assert_int_equal(p.tasks[4].ninstances, 1);
    assert_int_equal(p.tasks[4].ended_at_ms, -1);
    profile_release(&p);
    graph_release(&g);
}

static void back_to_back_intervals_do_not_overlap(void **state)
{
    struct graph g;
    const struct graph_edge e[] = {{0, 1}, {1, 2}};
    assert_int_equal(graph_build(&g, 3, e, 2), 0);
    const struct profile_ti tis[] = {{0, 0, 0, 100}, {1, 100, 100, 200}, {2, 200, 200, 300}};
    struct profile p;
    assert_int_equal(profile_compute(&g, tis, 3, 0, 300, &p), 0);
    assert_int_equal(p.max_parallel, 1);
    assert_float_equal(p.avg_parallel, 1.0, 1e-9);
    assert_int_equal(p.npath, 3);
    assert_int_equal(p.path[0], 0);
    assert_int_equal(p.path[2], 2);
    profile_release(&p);
    graph_release(&g);
}

static void unfinished_instance_hides_its_task_end(void **state)
{
    struct graph g;
    const struct graph_edge e[] = {{0, 1}};
    assert_int_equal(graph_build(&g, 3, e, 1), 0);
    /* Task 1 still running (no end): the ended leaf 2 is where the path starts. Its running
     * instance counts until the run's end for parallelism. */
    const struct profile_ti tis[] = {{0, 0, 0, 100}, {1, 100, 100, -1}, {2, 0, 0, 50}};
    struct profile p;
    assert_int_equal(profile_compute(&g, tis, 3, 0, 400, &p), 0);
    assert_int_equal(p.tasks[1].ended_at_ms, -1);
    assert_int_equal(p.npath, 1);
    assert_int_equal(p.path[0], 2);
    assert_int_equal(p.sum_run_ms, 100 + 300 + 50);
    assert_int_equal(p.max_parallel, 2);
    profile_release(&p);
    graph_release(&g);
}

static void empty_and_bad_input(void **state)
{
    struct graph g;
    assert_int_equal(graph_build(&g, 0, NULL, 0), 0);
    struct profile p;
    assert_int_equal(profile_compute(&g, NULL, 0, -1, -1, &p), 0);
    assert_int_equal(p.npath, 0);
    assert_int_equal(p.max_parallel, 0);
    assert_int_equal(p.wall_ms, 0);
    assert_float_equal(p.avg_parallel, 0.0, 0);
    profile_release(&p);
    const struct profile_ti bad[] = {{7, 0, 0, 1}};
    assert_int_equal(profile_compute(&g, bad, 1, -1, -1, &p), -EINVAL);
    profile_release(&p);
    graph_release(&g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(path_follows_the_upstream_that_ended_last),
        cmocka_unit_test(mapped_instances_count_as_their_task),
        cmocka_unit_test(back_to_back_intervals_do_not_overlap),
        cmocka_unit_test(unfinished_instance_hides_its_task_end),
        cmocka_unit_test(empty_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
