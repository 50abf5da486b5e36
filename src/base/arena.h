/*
 * arena.h - a region allocator for short-lived graphs (a parse, a request):
 * many allocations, one arena_release(). arena_defer() also registers a
 * cleanup for things that are not arena memory (a jansson reference, a FILE).
 * Memory is 16-byte aligned. Not thread-safe.
 */
#ifndef BARAM_BASE_ARENA_H
#define BARAM_BASE_ARENA_H

#include <stddef.h>

struct arena_block;
struct arena_defer;

struct arena {
    struct arena_block *head; /* owned list */
    struct arena_defer *defers;
    size_t block_size;
    size_t used; /* bytes handed out, for statistics */
};

typedef void (*arena_cleanup_fn)(void *obj);

void arena_init(struct arena *a, size_t block_size);
/* Runs the deferred cleanups (last registered first) and frees every block. */
void arena_release(struct arena *a);
void *arena_alloc(struct arena *a, size_t n);  /* uninitialised */
void *arena_zalloc(struct arena *a, size_t n); /* zeroed */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
void arena_defer(struct arena *a, arena_cleanup_fn fn, void *obj);

#endif
