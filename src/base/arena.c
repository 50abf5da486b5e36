/*
 * arena.c - bump allocation in blocks; see arena.h. A request larger than a
 * quarter block gets a block of its own so big strings waste nothing.
 */
#include "base/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/xalloc.h"

struct arena_block {
    struct arena_block *next;
    size_t size, used;
    _Alignas(16) unsigned char data[];
};

struct arena_defer {
    struct arena_defer *next;
    arena_cleanup_fn fn;
    void *obj;
};

void arena_init(struct arena *a, size_t block_size)
{
    a->head = NULL;
    a->defers = NULL;
    a->block_size = block_size < 256 ? 256 : block_size;
    a->used = 0;
}

void arena_release(struct arena *a)
{
    /* Cleanups first: their records live in the blocks. */
    for (struct arena_defer *d = a->defers; d; d = d->next)
        d->fn(d->obj);
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        free(b);
        b = next;
    }
    arena_init(a, a->block_size);
}

void *arena_alloc(struct arena *a, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    a->used += n;
    struct arena_block *b = a->head;
    if (b && b->size - b->used >= n) {
        void *p = b->data + b->used;
        b->used += n;
        return p;
    }
    size_t size = n > a->block_size / 4 ? n : a->block_size;
    struct arena_block *nb = xmalloc(sizeof *nb + size);
    nb->size = size;
    nb->used = n;
    if (size == n && b) {
        /* A dedicated block goes behind the current one, which keeps its free space. */
        nb->next = b->next;
        b->next = nb;
    } else {
        nb->next = b;
        a->head = nb;
    }
    return nb->data;
}

void *arena_zalloc(struct arena *a, size_t n)
{
    void *p = arena_alloc(a, n);
    memset(p, 0, n);
    return p;
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *arena_strdup(struct arena *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

void arena_defer(struct arena *a, arena_cleanup_fn fn, void *obj)
{
    struct arena_defer *d = arena_alloc(a, sizeof *d);
    d->fn = fn;
    d->obj = obj;
    d->next = a->defers;
    a->defers = d;
}
