/*
 * layout_test.c - the order within layers (layout.h): crossings counted
 * right on drawings checked by hand, the barycenter sweeps untangle what
 * they should, every layer stays a permutation, and on random layered DAGs
 * the result is never worse than declaration order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"
#include "dag/graph.h"
#include "dag/layout.h"

struct laid {
    struct graph g;
    uint32_t *level;
    uint32_t nlevels;
    uint32_t *order;
};

static void lay(struct laid *l, uint32_t n, const struct graph_edge *e, size_t ne)
{
    assert_int_equal(graph_build(&l->g, n, e, ne), 0);
    uint32_t *topo = xmalloc((n ? n : 1) * sizeof(*topo));
    assert_int_equal(graph_topo(&l->g, topo), 0);
    l->level = xmalloc((n ? n : 1) * sizeof(*l->level));
    l->nlevels = graph_levels(&l->g, topo, l->level);
    l->order = xmalloc((n ? n : 1) * sizeof(*l->order));
    free(topo);
}

static void unlay(struct laid *l)
{
    graph_release(&l->g);
    free(l->level);
    free(l->order);
}

/* Each layer's positions are exactly 0..width-1. */
static void assert_permutations(const struct laid *l)
{
    uint32_t n = l->g.n;
    bool *seen = xcalloc((size_t)n * (l->nlevels ? l->nlevels : 1) + 1, 1);
    uint32_t *width = xcalloc(l->nlevels ? l->nlevels : 1, sizeof(*width));
    for (uint32_t v = 0; v < n; v++)
        width[l->level[v]]++;
    for (uint32_t v = 0; v < n; v++) {
        assert_true(l->order[v] < width[l->level[v]]);
        size_t k = (size_t)l->level[v] * n + l->order[v];
        assert_false(seen[k]);
        seen[k] = true;
    }
    free(width);
    free(seen);
}

static void crossings_are_counted_on_a_drawing_by_hand(void **state)
{
    /* Layer 0: a=0, b=1; layer 1: c=2, d=3. a->d, b->c cross once in declaration order. */
    const struct graph_edge e[] = {{0, 3}, {1, 2}};
    struct laid l;
    lay(&l, 4, e, 2);
    const uint32_t declared[] = {0, 1, 0, 1};
    assert_int_equal(layout_crossings(&l.g, l.level, declared), 1);
    const uint32_t swapped[] = {0, 1, 1, 0};
    assert_int_equal(layout_crossings(&l.g, l.level, swapped), 0);
    /* K(3,3): 3 x 3 edges between two layers cross 9 times in any order. */
    struct graph_edge k[9];
    for (uint32_t i = 0; i < 9; i++)
        k[i] = (struct graph_edge){i / 3, 3 + i % 3};
    struct laid m;
    lay(&m, 6, k, 9);
    const uint32_t any[] = {0, 1, 2, 0, 1, 2};
    assert_int_equal(layout_crossings(&m.g, m.level, any), 9);
    assert_int_equal(layout_order(&m.g, m.level, m.nlevels, m.order), 9);
    assert_permutations(&m);
    unlay(&m);
    unlay(&l);
}

static void a_simple_tangle_is_undone(void **state)
{
    const struct graph_edge e[] = {{0, 3}, {1, 2}};
    struct laid l;
    lay(&l, 4, e, 2);
    assert_int_equal(layout_order(&l.g, l.level, l.nlevels, l.order), 0);
    assert_int_equal(layout_crossings(&l.g, l.level, l.order), 0);
    assert_permutations(&l);
    unlay(&l);
}

static void two_interleaved_chains_are_separated(void **state)
{
    /* Chains 0->2->4->6 and 1->3->5->7, but declared so that each layer alternates sides:
     * layer k holds (2k, 2k+1) and the edges go 0->3, 1->2, 2->5, 3->4, ... */
    struct graph_edge e[6];
    size_t ne = 0;
    for (uint32_t k = 0; k < 3; k++) {
        e[ne++] = (struct graph_edge){2 * k, 2 * k + 3};
        e[ne++] = (struct graph_edge){2 * k + 1, 2 * k + 2};
    }
    struct laid l;
    lay(&l, 8, e, ne);
    assert_int_equal(l.nlevels, 4);
    uint32_t declared[8];
    for (uint32_t v = 0; v < 8; v++)
        declared[v] = v % 2;
    assert_int_equal(layout_crossings(&l.g, l.level, declared), 3);
    assert_int_equal(layout_order(&l.g, l.level, l.nlevels, l.order), 0);
    assert_permutations(&l);
    unlay(&l);
}

static void edges_that_skip_layers_pull_their_ends_together(void **state)
{
    /* 0 -> 1 -> 2 (a chain) and 3 -> 4 with 3 a root on layer 0 and 4 on layer 1; 5 on
     * layer 2 needs 3 directly (skips a layer). 5 is placed by its upstream's position. */
    const struct graph_edge e[] = {{0, 1}, {1, 2}, {3, 4}, {4, 6}, {3, 5}, {0, 7}, {7, 5}};
    struct laid l;
    lay(&l, 8, e, 7);
    (void)layout_order(&l.g, l.level, l.nlevels, l.order);
    assert_permutations(&l);
    assert_int_equal(layout_crossings(&l.g, l.level, l.order), 0);
    unlay(&l);
}

/* A random layered DAG: widths up to 12, each node with 1-3 upstream on the layer above. */
static void random_dags_never_get_worse(void **state)
{
    unsigned seed = 12345;
    for (int round = 0; round < 50; round++) {
        uint32_t layers = 2 + (uint32_t)(rand_r(&seed) % 8), n = 0;
        uint32_t start[11];
        for (uint32_t k = 0; k < layers; k++) {
            start[k] = n;
            n += 1 + (uint32_t)(rand_r(&seed) % 12);
        }
        start[layers] = n;
        struct graph_edge *e = xmalloc(n * 3 * sizeof(*e));
        size_t ne = 0;
        for (uint32_t k = 1; k < layers; k++) {
            uint32_t w = start[k] - start[k - 1];
            for (uint32_t v = start[k]; v < start[k + 1]; v++) {
                uint32_t deg = 1 + (uint32_t)(rand_r(&seed) % 3);
                uint32_t first = start[k - 1] + (uint32_t)(rand_r(&seed) % w);
                for (uint32_t d = 0; d < deg && d < w; d++)
                    e[ne++] = (struct graph_edge){start[k - 1] + (first - start[k - 1] + d) % w, v};
            }
        }
        struct laid l;
        lay(&l, n, e, ne);
        uint32_t *declared = xmalloc(n * sizeof(*declared));
        uint32_t width[11] = {0};
        for (uint32_t v = 0; v < n; v++)
            declared[v] = width[l.level[v]]++;
        uint64_t before = layout_crossings(&l.g, l.level, declared);
        uint64_t after = layout_order(&l.g, l.level, l.nlevels, l.order);
        assert_true(after <= before);
        assert_int_equal(after, layout_crossings(&l.g, l.level, l.order));
        assert_permutations(&l);
        free(declared);
        unlay(&l);
        free(e);
    }
}

static void a_wide_dag_of_2000_tasks_is_laid_out(void **state)
{
    /* 40 layers x 50, each node fed by 2 of the layer above, shuffled declaration order. */
    const uint32_t L = 40, W = 50, n = L * W;
    struct graph_edge *e = xmalloc(n * 2 * sizeof(*e));
    size_t ne = 0;
    for (uint32_t k = 1; k < L; k++)
        for (uint32_t i = 0; i < W; i++) {
            uint32_t v = k * W + i;
            e[ne++] = (struct graph_edge){(k - 1) * W + (i * 7) % W, v};
            e[ne++] = (struct graph_edge){(k - 1) * W + (i * 7 + 1) % W, v};
        }
    struct laid l;
    lay(&l, n, e, ne);
    uint32_t *declared = xmalloc(n * sizeof(*declared));
    for (uint32_t v = 0; v < n; v++)
        declared[v] = v % W;
    uint64_t before = layout_crossings(&l.g, l.level, declared);
    uint64_t after = layout_order(&l.g, l.level, l.nlevels, l.order);
    assert_true(after < before);
    assert_permutations(&l);
    free(declared);
    unlay(&l);
    free(e);
}

static void empty_and_edgeless_graphs(void **state)
{
    struct laid l;
    lay(&l, 0, NULL, 0);
    assert_int_equal(layout_order(&l.g, l.level, l.nlevels, l.order), 0);
    unlay(&l);
    lay(&l, 3, NULL, 0);
    assert_int_equal(layout_order(&l.g, l.level, l.nlevels, l.order), 0);
    assert_permutations(&l);
    unlay(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(crossings_are_counted_on_a_drawing_by_hand),
        cmocka_unit_test(a_simple_tangle_is_undone),
        cmocka_unit_test(two_interleaved_chains_are_separated),
        cmocka_unit_test(edges_that_skip_layers_pull_their_ends_together),
        cmocka_unit_test(random_dags_never_get_worse),
        cmocka_unit_test(a_wide_dag_of_2000_tasks_is_laid_out),
        cmocka_unit_test(empty_and_edgeless_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
