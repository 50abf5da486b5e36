/*
 * parse.h - checked conversions of user text to numbers: the whole string
 * must be the number, and range errors are errors (no atoi). Any thread.
 */
#ifndef BARAM_BASE_PARSE_H
#define BARAM_BASE_PARSE_H

#include <stdint.h>

#include "base/compiler.h"

/* Decimal integer in [min, max]: 0, or -EINVAL (not a number) / -ERANGE. */
int parse_int64(const char *s, int64_t min, int64_t max, int64_t *out) WARN_UNUSED;
int parse_int(const char *s, int min, int max, int *out) WARN_UNUSED;
/* Finite decimal number: 0 or -EINVAL. */
int parse_double(const char *s, double *out) WARN_UNUSED;

#endif
