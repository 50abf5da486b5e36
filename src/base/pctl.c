/*
 * pctl.c - percentiles of recent durations (see pctl.h): a ring of uint32
 * microseconds; a percentile sorts a copy (nearest rank), so noting costs
 * O(1) and only the rare read pays O(n log n).
 */
#include "base/pctl.h"

#include <stdlib.h>

#include "base/xalloc.h"

void pctl_note_ns(struct pctl *p, int64_t ns)
{
    if (ns < 0)
        return;
    int64_t us = ns / 1000;
    uint32_t v = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (p->us.n < PCTL_MAX)
        VEC_PUSH(&p->us, v);
    else
        p->us.v[p->total % PCTL_MAX] = v;
    p->total++;
}

static int pctl_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int64_t pctl_get_us(const struct pctl *p, double pct)
{
    size_t n = p->us.n;
    if (n == 0)
        return 0;
    uint32_t *v = xmemdup(p->us.v, n * sizeof(uint32_t));
    qsort(v, n, sizeof(uint32_t), pctl_cmp);
    size_t k = (size_t)(pct / 100.0 * (double)(n - 1) + 0.5);
    if (k >= n)
        k = n - 1;
    int64_t r = v[k];
    free(v);
    return r;
}

void pctl_release(struct pctl *p)
{
    VEC_FREE(&p->us);
    p->total = 0;
}
