/*
 * graph_test.c - the graph core: CSR both ways, Kahn's order, cycles as
 * paths, levels and components, on small graphs checked by hand and on
 * 100,000-vertex chains (which must not overflow the stack).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "dag/graph.h"

/* Position of each vertex in order, to check "u before v". */
static uint32_t *positions(const uint32_t *order, uint32_t n)
{
    uint32_t *pos = xmalloc((n ? n : 1) * sizeof *pos);
    for (uint32_t i = 0; i < n; i++)
        pos[order[i]] = i;
    return pos;
}

static void csr_holds_both_directions_in_edge_order(void **state)
{
    /* 0 -> 2, 1 -> 2, 2 -> 3, 0 -> 3 */
    const struct graph_edge e[] = {{0, 2}, {1, 2}, {2, 3}, {0, 3}};
    struct graph g;
    assert_int_equal(graph_build(&g, 4, e, 4), 0);
    assert_int_equal(g.n, 4);
    assert_int_equal(g.nedges, 4);
    assert_int_equal(graph_nup(&g, 2), 2);
    assert_int_equal(g.up[g.up_start[2]], 0);
    assert_int_equal(g.up[g.up_start[2] + 1], 1);
    assert_int_equal(graph_nup(&g, 3), 2);
    assert_int_equal(g.up[g.up_start[3]], 2);
    assert_int_equal(g.up[g.up_start[3] + 1], 0);
    assert_int_equal(graph_nup(&g, 0), 0);
    assert_int_equal(graph_ndown(&g, 0), 2);
    assert_int_equal(g.down[g.down_start[0]], 2);
    assert_int_equal(g.down[g.down_start[0] + 1], 3);
    assert_int_equal(graph_ndown(&g, 3), 0);
    assert_int_equal(g.up_start[4], 4);
    assert_int_equal(g.down_start[4], 4);
    graph_release(&g);
    assert_null(g.up);
    assert_int_equal(g.n, 0);
}

static void build_rejects_out_of_range_edges(void **state)
{
    const struct graph_edge e[] = {{0, 1}, {1, 5}};
    struct graph g;
    assert_int_equal(graph_build(&g, 3, e, 2), -EINVAL);
    graph_release(&g);
}

static void empty_graph_is_fine(void **state)
{
    struct graph g;
    assert_int_equal(graph_build(&g, 0, NULL, 0), 0);
    uint32_t order[1], level[1], comp[1], path[1];
    assert_int_equal(graph_topo(&g, order), 0);
    assert_int_equal(graph_find_cycle(&g, path), 0);
    assert_int_equal(graph_levels(&g, order, level), 0);
    assert_int_equal(graph_components(&g, comp), 0);
    graph_release(&g);
}

static void topo_puts_roots_first_in_index_order(void **state)
{
    /* 3 -> 0, 1 -> 0, 2 isolated, 0 -> 4 */
    const struct graph_edge e[] = {{3, 0}, {1, 0}, {0, 4}};
    struct graph g;
    assert_int_equal(graph_build(&g, 5, e, 3), 0);
    uint32_t order[5];
    assert_int_equal(graph_topo(&g, order), 0);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
    assert_int_equal(order[2], 3);
    assert_int_equal(order[3], 0);
    assert_int_equal(order[4], 4);
    graph_release(&g);
}

static void topo_respects_every_edge_of_a_diamond_grid(void **state)
{
    /* A lattice: W columns, D layers; (d, i) needs (d-1, i) and (d-1, (i+1) % W). */
    enum { W = 7, D = 9 };
    struct graph_edge e[2 * W * D];
    size_t ne = 0;
    for (uint32_t d = 1; d < D; d++)
        for (uint32_t i = 0; i < W; i++) {
            e[ne++] = (struct graph_edge){(d - 1) * W + i, d * W + i};
            e[ne++] = (struct graph_edge){(d - 1) * W + (i + 1) % W, d * W + i};
        }
    struct graph g;
    assert_int_equal(graph_build(&g, W * D, e, ne), 0);
    uint32_t order[W * D], level[W * D], comp[W * D];
    assert_int_equal(graph_topo(&g, order), 0);
    uint32_t *pos = positions(order, W * D);
    for (size_t i = 0; i < ne; i++)
        assert_true(pos[e[i].from] < pos[e[i].to]);
    free(pos);
    assert_int_equal(graph_levels(&g, order, level), D);
    for (uint32_t v = 0; v < W * D; v++)
        assert_int_equal(level[v], v / W);
    assert_int_equal(graph_components(&g, comp), 1);
    graph_release(&g);
}

static void cycle_is_reported_as_a_closed_path(void **state)
{
    /* 0 -> 1 -> 2 -> 3 -> 1, and 4 -> 0 */
    const struct graph_edge e[] = {{0, 1}, {1, 2}, {2, 3}, {3, 1}, {4, 0}};
    struct graph g;
    assert_int_equal(graph_build(&g, 5, e, 5), 0);
    uint32_t order[5], path[6];
    assert_int_equal(graph_topo(&g, order), -ELOOP);
    size_t n = graph_find_cycle(&g, path);
    assert_int_equal(n, 4);
    assert_int_equal(path[0], path[3]);
    /* Every step is an edge. */
    for (size_t i = 0; i + 1 < n; i++) {
        int found = 0;
        for (uint32_t k = g.down_start[path[i]]; k < g.down_start[path[i] + 1]; k++)
            found |= g.down[k] == path[i + 1];
        assert_true(found);
    }
    graph_release(&g);
}

static void self_loop_is_a_cycle_of_one(void **state)
{
    const struct graph_edge e[] = {{0, 1}, {1, 1}};
    struct graph g;
    assert_int_equal(graph_build(&g, 2, e, 2), 0);
    uint32_t path[3];
    assert_int_equal(graph_find_cycle(&g, path), 2);
    assert_int_equal(path[0], 1);
    assert_int_equal(path[1], 1);
    graph_release(&g);
}

static void acyclic_graph_has_no_cycle(void **state)
{
    const struct graph_edge e[] = {{0, 1}, {0, 2}, {1, 3}, {2, 3}};
    struct graph g;
    assert_int_equal(graph_build(&g, 4, e, 4), 0);
    uint32_t path[5];
    assert_int_equal(graph_find_cycle(&g, path), 0);
    graph_release(&g);
}

static void levels_are_longest_paths(void **state)
{
    /* 0 -> 1 -> 2 -> 3 and a shortcut 0 -> 3: 3 is at level 3, not 1. */
    const struct graph_edge e[] = {{0, 1}, {1, 2}, {2, 3}, {0, 3}, {4, 3}};
    struct graph g;
    assert_int_equal(graph_build(&g, 5, e, 5), 0);
    uint32_t order[5], level[5];
    assert_int_equal(graph_topo(&g, order), 0);
    assert_int_equal(graph_levels(&g, order, level), 4);
    assert_int_equal(level[0], 0);
    assert_int_equal(level[1], 1);
    assert_int_equal(level[2], 2);
    assert_int_equal(level[3], 3);
    assert_int_equal(level[4], 0);
    graph_release(&g);
}

static void components_are_weak_and_numbered_by_lowest_vertex(void **state)
{
    /* {0, 3, 5} joined through 5 -> 3 and 3 -> 0 (against the index order), {1}, {2, 4}. */
    const struct graph_edge e[] = {{5, 3}, {3, 0}, {4, 2}};
    struct graph g;
    assert_int_equal(graph_build(&g, 6, e, 3), 0);
    uint32_t comp[6];
    assert_int_equal(graph_components(&g, comp), 3);
    assert_int_equal(comp[0], 0);
    assert_int_equal(comp[3], 0);
    assert_int_equal(comp[5], 0);
    assert_int_equal(comp[1], 1);
    assert_int_equal(comp[2], 2);
    assert_int_equal(comp[4], 2);
    graph_release(&g);
}

static void chain_of_100000_needs_no_recursion(void **state)
{
    enum { N = 100000 };
    struct graph_edge *e = xmalloc(N * sizeof *e);
    /* Edges listed backwards, so DFS order and index order disagree. */
    for (uint32_t i = 0; i + 1 < N; i++)
        e[i] = (struct graph_edge){N - 2 - i, N - 1 - i};
    struct graph g;
    assert_int_equal(graph_build(&g, N, e, N - 1), 0);
    uint32_t *order = xmalloc(N * sizeof *order), *level = xmalloc(N * sizeof *level);
    uint32_t *comp = xmalloc(N * sizeof *comp), *path = xmalloc((N + 1) * sizeof *path);
    assert_int_equal(graph_topo(&g, order), 0);
    for (uint32_t i = 0; i < N; i++)
        assert_int_equal(order[i], i);
    assert_int_equal(graph_find_cycle(&g, path), 0);
    assert_int_equal(graph_levels(&g, order, level), N);
    assert_int_equal(level[N - 1], N - 1);
    assert_int_equal(graph_components(&g, comp), 1);
    graph_release(&g);

    /* Close the chain into one cycle through all 100,000 vertices. */
    e[N - 1] = (struct graph_edge){N - 1, 0};
    assert_int_equal(graph_build(&g, N, e, N), 0);
    assert_int_equal(graph_topo(&g, order), -ELOOP);
    assert_int_equal(graph_find_cycle(&g, path), N + 1);
    assert_int_equal(path[0], 0);
    assert_int_equal(path[N], 0);
    assert_int_equal(path[N - 1], N - 1);
    graph_release(&g);
    free(e);
    free(order);
    free(level);
    free(comp);
    free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(csr_holds_both_directions_in_edge_order),
        cmocka_unit_test(build_rejects_out_of_range_edges),
        cmocka_unit_test(empty_graph_is_fine),
        cmocka_unit_test(topo_puts_roots_first_in_index_order),
        cmocka_unit_test(topo_respects_every_edge_of_a_diamond_grid),
        cmocka_unit_test(cycle_is_reported_as_a_closed_path),
        cmocka_unit_test(self_loop_is_a_cycle_of_one),
        cmocka_unit_test(acyclic_graph_has_no_cycle),
        cmocka_unit_test(levels_are_longest_paths),
        cmocka_unit_test(components_are_weak_and_numbered_by_lowest_vertex),
        cmocka_unit_test(chain_of_100000_needs_no_recursion),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
