/*
 * compiler.h - the only place where compiler attributes are spelled, and the
 * BUG()/dassert() macros for our own bugs (never for bad input: STYLE.md 4).
 */
#ifndef BARAM_BASE_COMPILER_H
#define BARAM_BASE_COMPILER_H

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>

#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define NORETURN               __attribute__((noreturn))
#define WARN_UNUSED            __attribute__((warn_unused_result))
#define UNUSED                 __attribute__((unused))
#define ARRAY_SIZE(a)          (sizeof(a) / sizeof((a)[0]))

/* An impossible state was reached: report where, then abort. Stays on in release. */
#define BUG(...)                                                                                   \
    do {                                                                                           \
        fprintf(stderr, "BUG: %s:%d: ", __FILE__, __LINE__);                                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
        abort();                                                                                   \
    } while (0)

/* A check too costly for release builds. */
#ifdef NDEBUG
#define dassert(x) ((void)0)
#else
#define dassert(x) assert(x)
#endif

#endif
