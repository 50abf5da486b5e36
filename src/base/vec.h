/*
 * vec.h - a typed growable array as macros: VEC(int) v = {0}; VEC_PUSH(&v, 3);
 * v.v[i], v.n. Memory is owned by the vec: VEC_FREE releases it.
 */
#ifndef BARAM_BASE_VEC_H
#define BARAM_BASE_VEC_H

#include <stdlib.h>

#include "base/xalloc.h"

#define VEC(T)                                                                                     \
    struct {                                                                                       \
        T *v;                                                                                      \
        size_t n, cap;                                                                             \
    }

#define VEC_RESERVE(vec, need)                                                                     \
    xgrow((void **)&(vec)->v, &(vec)->cap, (need), sizeof(*(vec)->v))

#define VEC_PUSH(vec, x)                                                                           \
    do {                                                                                           \
        VEC_RESERVE((vec), (vec)->n + 1);                                                          \
        (vec)->v[(vec)->n++] = (x);                                                                \
    } while (0)

#define VEC_FREE(vec)                                                                              \
    do {                                                                                           \
        free((vec)->v);                                                                            \
        (vec)->v = NULL;                                                                           \
        (vec)->n = (vec)->cap = 0;                                                                 \
    } while (0)

#endif
