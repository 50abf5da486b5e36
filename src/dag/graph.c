/*
 * graph.c - the graph core of graph.h: CSR adjacency both ways, Kahn's
 * topological order, one cycle as a path, levels and weakly connected
 * components.
 *
 * Key idea: everything is O(V + E) and iterative. A DAG file may hold a
 * 100,000-deep chain, so no algorithm here recurses: the cycle search keeps
 * its DFS path in an explicit stack, components use a plain BFS queue.
 * Scratch arrays are malloc'd per call and freed before returning.
 *
 * The graph owns its four arrays; it is immutable after graph_build and any
 * thread may read it.
 */
#include "dag/graph.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

/* Fills start[0..n] and adj[0..nedges) with one CSR direction: key(e) is the row, val(e) the
 * entry. A stable counting sort, so each row keeps edge order. */
static void csr_fill(uint32_t n, const struct graph_edge *edges, size_t nedges, int by_to,
                     uint32_t *start, uint32_t *adj)
{
    memset(start, 0, (size_t)(n + 1) * sizeof *start);
    for (size_t i = 0; i < nedges; i++)
        start[(by_to ? edges[i].to : edges[i].from) + 1]++;
    for (uint32_t v = 0; v < n; v++)
        start[v + 1] += start[v];
    uint32_t *fill = xmalloc((size_t)(n ? n : 1) * sizeof *fill);
    memcpy(fill, start, (size_t)n * sizeof *fill);
    for (size_t i = 0; i < nedges; i++) {
        uint32_t row = by_to ? edges[i].to : edges[i].from;
        adj[fill[row]++] = by_to ? edges[i].from : edges[i].to;
    }
    free(fill);
}

int graph_build(struct graph *g, uint32_t n, const struct graph_edge *edges, size_t nedges)
{
    memset(g, 0, sizeof *g);
    if (nedges > UINT32_MAX)
        return -EINVAL;
    for (size_t i = 0; i < nedges; i++)
        if (edges[i].from >= n || edges[i].to >= n)
            return -EINVAL;
    g->n = n;
    g->nedges = (uint32_t)nedges;
    g->up_start = xmalloc(((size_t)n + 1) * sizeof *g->up_start);
    g->down_start = xmalloc(((size_t)n + 1) * sizeof *g->down_start);
    g->up = xmalloc((nedges ? nedges : 1) * sizeof *g->up);
    g->down = xmalloc((nedges ? nedges : 1) * sizeof *g->down);
    csr_fill(n, edges, nedges, 1, g->up_start, g->up);
    csr_fill(n, edges, nedges, 0, g->down_start, g->down);
    return 0;
}

void graph_release(struct graph *g)
{
    free(g->up_start);
    free(g->up);
    free(g->down_start);
    free(g->down);
    memset(g, 0, sizeof *g);
}

int graph_topo(const struct graph *g, uint32_t *order)
{
    uint32_t n = g->n;
    uint32_t *indeg = xmalloc((size_t)(n ? n : 1) * sizeof *indeg);
    size_t head = 0, tail = 0;
    /* order doubles as the FIFO queue: every vertex enters it once. */
    for (uint32_t v = 0; v < n; v++) {
        indeg[v] = graph_nup(g, v);
        if (indeg[v] == 0)
            order[tail++] = v;
    }
    while (head < tail) {
        uint32_t v = order[head++];
        for (uint32_t i = g->down_start[v]; i < g->down_start[v + 1]; i++) {
            uint32_t w = g->down[i];
            if (--indeg[w] == 0)
                order[tail++] = w;
        }
    }
    free(indeg);
    return tail == n ? 0 : -ELOOP;
}

enum { WHITE, GREY, BLACK };

size_t graph_find_cycle(const struct graph *g, uint32_t *path)
{
    uint32_t n = g->n;
    if (n == 0)
        return 0;
    unsigned char *color = xcalloc(n, 1);
    uint32_t *stack = xmalloc((size_t)n * sizeof *stack); /* the current DFS path */
    uint32_t *next = xmalloc((size_t)n * sizeof *next);   /* per path vertex: next edge */
    uint32_t *pos = xmalloc((size_t)n * sizeof *pos);     /* a grey vertex's place in stack */
    size_t found = 0;
    for (uint32_t root = 0; root < n && !found; root++) {
        if (color[root] != WHITE)
            continue;
        size_t sp = 0;
        stack[sp] = root;
        next[sp] = g->down_start[root];
        pos[root] = 0;
        color[root] = GREY;
        sp++;
        while (sp > 0 && !found) {
            uint32_t v = stack[sp - 1];
            if (next[sp - 1] == g->down_start[v + 1]) {
                color[v] = BLACK;
                sp--;
                continue;
            }
            uint32_t w = g->down[next[sp - 1]++];
            if (color[w] == WHITE) {
                color[w] = GREY;
                pos[w] = (uint32_t)sp;
                stack[sp] = w;
                next[sp] = g->down_start[w];
                sp++;
            } else if (color[w] == GREY) {
                for (size_t i = pos[w]; i < sp; i++)
                    path[found++] = stack[i];
                path[found++] = w;
            }
        }
    }
    free(color);
    free(stack);
    free(next);
    free(pos);
    return found;
}

uint32_t graph_levels(const struct graph *g, const uint32_t *order, uint32_t *level)
{
    uint32_t nlevels = 0;
    for (uint32_t k = 0; k < g->n; k++) {
        uint32_t v = order[k];
        uint32_t lv = 0;
        for (uint32_t i = g->up_start[v]; i < g->up_start[v + 1]; i++)
            if (level[g->up[i]] + 1 > lv)
                lv = level[g->up[i]] + 1;
        level[v] = lv;
        if (lv + 1 > nlevels)
            nlevels = lv + 1;
    }
    return nlevels;
}

uint32_t graph_components(const struct graph *g, uint32_t *comp)
{
    uint32_t n = g->n;
    if (n == 0)
        return 0;
    uint32_t *queue = xmalloc((size_t)n * sizeof *queue);
    for (uint32_t v = 0; v < n; v++)
        comp[v] = UINT32_MAX;
    uint32_t ncomp = 0;
    for (uint32_t s = 0; s < n; s++) {
        if (comp[s] != UINT32_MAX)
            continue;
        size_t head = 0, tail = 0;
        comp[s] = ncomp;
        queue[tail++] = s;
        while (head < tail) {
            uint32_t v = queue[head++];
            for (uint32_t i = g->down_start[v]; i < g->down_start[v + 1]; i++)
                if (comp[g->down[i]] == UINT32_MAX) {
                    comp[g->down[i]] = ncomp;
                    queue[tail++] = g->down[i];
                }
            for (uint32_t i = g->up_start[v]; i < g->up_start[v + 1]; i++)
                if (comp[g->up[i]] == UINT32_MAX) {
                    comp[g->up[i]] = ncomp;
                    queue[tail++] = g->up[i];
                }
        }
        ncomp++;
    }
    free(queue);
    return ncomp;
}
