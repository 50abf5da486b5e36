/*
 * xalloc.h - allocation that never returns NULL: out of memory aborts
 * (Redis zmalloc, git xmalloc), so callers need no NULL checks. Bound
 * growth of anything a user controls instead (buf max sizes).
 */
#ifndef BARAM_BASE_XALLOC_H
#define BARAM_BASE_XALLOC_H

#include <stddef.h>

#include "base/compiler.h"

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
/* Grow *p (holding *cap elements of size elem) to hold at least need elements. */
void xgrow(void **p, size_t *cap, size_t need, size_t elem);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
void *xmemdup(const void *p, size_t n);
/* A formatted string, malloc'd. */
char *xasprintf(const char *fmt, ...) PRINTF_LIKE(1, 2);

#endif
