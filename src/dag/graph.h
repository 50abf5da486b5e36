/*
 * graph.h - the graph core: a directed graph on dense vertex indices
 * 0..n-1, with edges in compressed sparse rows both ways (CSR: the
 * downstream of v are down[down_start[v] .. down_start[v+1]), likewise up),
 * so a 100,000-task DAG costs a few bytes per edge and no pointer chasing.
 * Algorithms: Kahn's topological order, a cycle as a path, levels (longest
 * path from a root) and weakly connected components, each O(V + E).
 *
 * Edges go from upstream to downstream ("a needs b" is the edge b -> a).
 * Immutable after graph_build: any thread may read it.
 */
#ifndef BARAM_DAG_GRAPH_H
#define BARAM_DAG_GRAPH_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct graph_edge {
    uint32_t from; /* upstream */
    uint32_t to;   /* downstream */
};

struct graph {
    uint32_t n;
    uint32_t nedges;
    uint32_t *up_start;   /* owned, n + 1 entries */
    uint32_t *up;         /* owned, nedges entries, each vertex's upstream in edge order */
    uint32_t *down_start; /* owned, n + 1 */
    uint32_t *down;       /* owned, nedges */
};

/* Builds g from the edge list (duplicates kept as given; callers reject them first).
 * 0, or -EINVAL if an edge names a vertex >= n. */
int graph_build(struct graph *g, uint32_t n, const struct graph_edge *edges,
                size_t nedges) WARN_UNUSED;
void graph_release(struct graph *g);

static inline uint32_t graph_nup(const struct graph *g, uint32_t v)
{
    return g->up_start[v + 1] - g->up_start[v];
}
static inline uint32_t graph_ndown(const struct graph *g, uint32_t v)
{
    return g->down_start[v + 1] - g->down_start[v];
}

/* Kahn's algorithm: fills order[0..n) with a topological order (roots in index order first)
 * and returns 0, or returns -ELOOP when there is a cycle (order then holds a prefix). */
int graph_topo(const struct graph *g, uint32_t *order) WARN_UNUSED;
/* Finds one cycle: writes its vertices to path (room for n + 1) in edge direction, the first
 * vertex repeated at the end (a -> b -> c -> a), and returns the number written; 0 if acyclic. */
size_t graph_find_cycle(const struct graph *g, uint32_t *path);
/* level[v] = length of the longest path from a root to v (roots are 0), given a topological
 * order. Returns the number of levels (max level + 1; 0 for an empty graph). */
uint32_t graph_levels(const struct graph *g, const uint32_t *order, uint32_t *level);
/* comp[v] = index of v's weakly connected component, numbered in order of their lowest vertex.
 * Returns the number of components. */
uint32_t graph_components(const struct graph *g, uint32_t *comp);

#endif
