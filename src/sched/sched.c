/*
 * sched.c - ready queue with parallelism and pool slots; see sched.h.
 * Each pool's heap is an array-backed binary max-heap on (priority, -age).
 */
#include "sched/sched.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

static bool sched_before(const struct sched_item *a, const struct sched_item *b)
{
    if (a->priority != b->priority)
        return a->priority > b->priority;
    return a->age < b->age;
}

static void sched_sift_up(struct sched_item *h, size_t i)
{
    struct sched_item x = h[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!sched_before(&x, &h[p]))
            break;
        h[i] = h[p];
        i = p;
    }
    h[i] = x;
}

static void sched_sift_down(struct sched_item *h, size_t n, size_t i)
{
    struct sched_item x = h[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && sched_before(&h[c + 1], &h[c]))
            c++;
        if (!sched_before(&h[c], &x))
            break;
        h[i] = h[c];
        i = c;
    }
    h[i] = x;
}

void sched_init(struct sched *s, int parallelism, sched_start_fn start)
{
    memset(s, 0, sizeof(*s));
    s->parallelism = parallelism > 0 ? parallelism : 1;
    s->start = start;
    hmap_init(&s->by_name);
}

void sched_release(struct sched *s)
{
    for (size_t i = 0; i < s->pools.n; i++) {
        free(s->pools.v[i].name);
        VEC_FREE(&s->pools.v[i].heap);
    }
    VEC_FREE(&s->pools);
    hmap_release(&s->by_name);
}

uint32_t sched_pool(struct sched *s, const char *name)
{
    uint32_t idx;
    if (hmap_get(&s->by_name, name, strlen(name), &idx))
        return idx;
    struct sched_pool p = {.name = xstrdup(name), .slots = SCHED_POOL_DEFAULT_SLOTS};
    VEC_PUSH(&s->pools, p);
    /* The keys point into the pools' names, which do not move when the vector grows. */
    idx = (uint32_t)(s->pools.n - 1);
    hmap_put(&s->by_name, s->pools.v[idx].name, strlen(name), idx);
    return idx;
}

void sched_pool_set(struct sched *s, const char *name, int slots)
{
    uint32_t i = sched_pool(s, name); /* may move s->pools.v */
    s->pools.v[i].slots = slots > 0 ? slots : 0;
}

void sched_push(struct sched *s, void *owner, uint32_t id, int priority, uint32_t pool)
{
    struct sched_pool *p = &s->pools.v[pool];
    struct sched_item it = {.priority = priority, .age = s->next_age++, .owner = owner, .id = id};
    VEC_PUSH(&p->heap, it);
    sched_sift_up(p->heap.v, p->heap.n - 1);
}

void sched_dispatch(struct sched *s)
{
    if (s->dispatching)
        return; /* the outer call's loop picks up what was pushed meanwhile */
    s->dispatching = 1;
    while (s->running < s->parallelism) {
        struct sched_pool *best = NULL;
        for (size_t i = 0; i < s->pools.n; i++) {
            struct sched_pool *p = &s->pools.v[i];
            if (p->heap.n == 0 || p->used >= p->slots)
                continue;
            if (!best || sched_before(&p->heap.v[0], &best->heap.v[0]))
                best = p;
        }
        if (!best)
            break;
        struct sched_item it = best->heap.v[0];
        best->heap.v[0] = best->heap.v[--best->heap.n];
        if (best->heap.n > 0)
            sched_sift_down(best->heap.v, best->heap.n, 0);
        best->used++;
        s->running++;
        s->start(it.owner, it.id);
    }
    s->dispatching = 0;
}

void sched_done(struct sched *s, uint32_t pool)
{
    s->pools.v[pool].used--;
    s->running--;
}

size_t sched_drop(struct sched *s, void *owner)
{
    size_t dropped = 0;
    for (size_t i = 0; i < s->pools.n; i++) {
        struct sched_pool *p = &s->pools.v[i];
        size_t k = 0;
        for (size_t j = 0; j < p->heap.n; j++) {
            if (p->heap.v[j].owner == owner)
                dropped++;
            else
                p->heap.v[k++] = p->heap.v[j];
        }
        p->heap.n = k;
        for (size_t j = k / 2; j-- > 0;)
            sched_sift_down(p->heap.v, p->heap.n, j);
    }
    return dropped;
}

size_t sched_queued(const struct sched *s)
{
    size_t n = 0;
    for (size_t i = 0; i < s->pools.n; i++)
        n += s->pools.v[i].heap.n;
    return n;
}
