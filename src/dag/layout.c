/*
 * layout.c - the order of tasks within layers (layout.h): barycenter sweeps,
 * crossings counted as inversions, the best order kept.
 *
 * Ownership: every array is the caller's or freed before returning.
 */
#include "dag/layout.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

/* A node and the key it is sorted by within its layer. */
struct layout_key {
    double key;
    uint32_t pos; /* current position: ties keep the current order */
    uint32_t v;
};

static int key_cmp(const void *a, const void *b)
{
    const struct layout_key *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* An edge between adjacent layers, as (upper position, lower position). */
struct layout_pair {
    uint32_t a, b;
};

static int pair_cmp(const void *p, const void *q)
{
    const struct layout_pair *x = p, *y = q;
    if (x->a != y->a)
        return x->a < y->a ? -1 : 1;
    return x->b < y->b ? -1 : x->b > y->b;
}

/* Inversions of v[0..n) (pairs i < j with v[i] > v[j]), sorting v; tmp has room for n. */
static uint64_t inversions(uint32_t *v, uint32_t *tmp, size_t n)
{
    if (n < 2)
        return 0;
    size_t h = n / 2;
    uint64_t c = inversions(v, tmp, h) + inversions(v + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        if (v[j] < v[i]) {
            c += h - i;
            tmp[k++] = v[j++];
        } else {
            tmp[k++] = v[i++];
        }
    }
    while (i < h)
        tmp[k++] = v[i++];
    while (j < n)
        tmp[k++] = v[j++];
    memcpy(v, tmp, n * sizeof(*v));
    return c;
}

uint64_t layout_crossings(const struct graph *g, const uint32_t *level, const uint32_t *order)
{
    if (g->nedges == 0)
        return 0;
    /* Edges grouped by the upper layer; within one group, sorted by (upper, lower) position:
     * two edges cross when their lower positions are inverted. */
    struct layout_pair *pairs = xmalloc(g->nedges * sizeof(*pairs));
    uint32_t *lay = xmalloc(g->nedges * sizeof(*lay));
    size_t n = 0;
    for (uint32_t u = 0; u < g->n; u++) {
        for (uint32_t k = g->down_start[u]; k < g->down_start[u + 1]; k++) {
            uint32_t v = g->down[k];
            if (level[v] != level[u] + 1)
                continue;
            lay[n] = level[u];
            pairs[n++] = (struct layout_pair){order[u], order[v]};
        }
    }
    /* Sort by layer first (counting sort would do; a stable index sort keeps it simple). */
    uint32_t maxl = 0;
    for (size_t i = 0; i < n; i++)
        maxl = lay[i] > maxl ? lay[i] : maxl;
    size_t *start = xcalloc((size_t)maxl + 2, sizeof(*start));
    for (size_t i = 0; i < n; i++)
        start[lay[i] + 1]++;
    for (uint32_t l = 0; l <= maxl; l++)
        start[l + 1] += start[l];
    struct layout_pair *by = xmalloc((n ? n : 1) * sizeof(*by));
    size_t *fill = xmalloc(((size_t)maxl + 1) * sizeof(*fill));
    memcpy(fill, start, ((size_t)maxl + 1) * sizeof(*fill));
    for (size_t i = 0; i < n; i++)
        by[fill[lay[i]]++] = pairs[i];
    uint32_t *low = xmalloc((n ? n : 1) * sizeof(*low));
    uint32_t *tmp = xmalloc((n ? n : 1) * sizeof(*tmp));
    uint64_t total = 0;
    for (uint32_t l = 0; l <= maxl && n; l++) {
        size_t a = start[l], m = start[l + 1] - a;
        qsort(by + a, m, sizeof(*by), pair_cmp);
        for (size_t i = 0; i < m; i++)
            low[i] = by[a + i].b;
        total += inversions(low, tmp, m);
    }
    free(tmp);
    free(low);
    free(fill);
    free(by);
    free(start);
    free(lay);
    free(pairs);
    return total;
}

/* One sweep: each layer (top-down when down, else bottom-up) sorted by the mean relative
 * position of its neighbours on the other side; a node without such neighbours keeps its
 * own relative position. layers[l] lists layer l's nodes in order; pos/width are updated. */
static void sweep(const struct graph *g, uint32_t nlevels, uint32_t **layers, const uint32_t *width,
                  const uint32_t *level, uint32_t *pos, bool down, struct layout_key *keys)
{
    for (uint32_t s = 1; s < nlevels; s++) {
        uint32_t l = down ? s : nlevels - 1 - s;
        for (uint32_t i = 0; i < width[l]; i++) {
            uint32_t v = layers[l][i];
            const uint32_t *nb = down ? g->up + g->up_start[v] : g->down + g->down_start[v];
            uint32_t nn = down ? graph_nup(g, v) : graph_ndown(g, v);
            double sum = 0;
            for (uint32_t k = 0; k < nn; k++)
                sum += (pos[nb[k]] + 0.5) / width[level[nb[k]]];
            double key = nn ? sum / nn : (pos[v] + 0.5) / width[l];
            keys[i] = (struct layout_key){key, pos[v], v};
        }
        qsort(keys, width[l], sizeof(*keys), key_cmp);
        for (uint32_t i = 0; i < width[l]; i++) {
            layers[l][i] = keys[i].v;
            pos[keys[i].v] = i;
        }
    }
}

uint64_t layout_order(const struct graph *g, const uint32_t *level, uint32_t nlevels,
                      uint32_t *order)
{
    if (g->n == 0)
        return 0;
    uint32_t *width = xcalloc(nlevels ? nlevels : 1, sizeof(*width));
    for (uint32_t v = 0; v < g->n; v++)
        order[v] = width[level[v]]++;
    uint32_t **layers = xmalloc((nlevels ? nlevels : 1) * sizeof(*layers));
    uint32_t *slots = xmalloc(g->n * sizeof(*slots));
    uint32_t maxw = 0;
    for (uint32_t l = 0, at = 0; l < nlevels; l++) {
        layers[l] = slots + at;
        at += width[l];
        maxw = width[l] > maxw ? width[l] : maxw;
    }
    for (uint32_t v = 0; v < g->n; v++)
        layers[level[v]][order[v]] = v;
    uint32_t *pos = xmemdup(order, g->n * sizeof(*pos));
    struct layout_key *keys = xmalloc(maxw * sizeof(*keys));
    uint64_t best = layout_crossings(g, level, order);
    for (int i = 0; i < LAYOUT_SWEEPS && best > 0; i++) {
        sweep(g, nlevels, layers, width, level, pos, i % 2 == 0, keys);
        uint64_t c = layout_crossings(g, level, pos);
        if (c < best) {
            best = c;
            memcpy(order, pos, g->n * sizeof(*order));
        }
    }
    free(keys);
    free(pos);
    free(slots);
    free(layers);
    free(width);
    return best;
}
