/*
 * buf.h - a growable, always NUL-terminated byte string with a maximum size
 * (curl dynbuf, git strbuf). An append that would pass the maximum appends
 * nothing and returns ERR_TOO_BIG, so every outside input stays bounded.
 *
 * Invariant: data is never NULL after buf_init (it points at a static "" until
 * the first append), data[len] == 0, len <= max.
 */
#ifndef BARAM_BASE_BUF_H
#define BARAM_BASE_BUF_H

#include <stdarg.h>
#include <stddef.h>

#include "base/compiler.h"

#define BUF_NO_MAX ((size_t)-1 / 2)

struct buf {
    char *data; /* owned (unless it is the static empty string) */
    size_t len;
    size_t cap;
    size_t max;
};

#define BUF_INIT(maxlen) {buf__empty, 0, 0, (maxlen)}
extern char buf__empty[1];

void buf_init(struct buf *b, size_t max);
void buf_release(struct buf *b);
/* Empties b for reuse, keeping its memory. */
void buf_reset(struct buf *b);
/* Appends; 0, or ERR_TOO_BIG (nothing appended) past b->max. */
int buf_add(struct buf *b, const void *p, size_t n) WARN_UNUSED;
int buf_adds(struct buf *b, const char *s) WARN_UNUSED;
int buf_addc(struct buf *b, char c) WARN_UNUSED;
int buf_addf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3) WARN_UNUSED;
int buf_vaddf(struct buf *b, const char *fmt, va_list ap) PRINTF_LIKE(2, 0) WARN_UNUSED;
/* Cuts b to n bytes (n <= len). */
void buf_truncate(struct buf *b, size_t n);
/* Hands the bytes to the caller (free() them); b is left empty and reusable. */
char *buf_detach(struct buf *b, size_t *len);

#endif
