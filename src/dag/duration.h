/*
 * duration.h - durations as users write them (SPEC section 2): "250ms",
 * "30s", "5m", "2h", "1d", "1h30m", or a bare number of seconds ("90",
 * "1.5"). Values are int64_t milliseconds. Any thread, no allocation.
 */
#ifndef BARAM_DAG_DURATION_H
#define BARAM_DAG_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* 0 and *ms set, or -EINVAL (empty, unknown unit, negative, overflow past 100 years). */
int duration_parse(const char *s, int64_t *ms);
/* Writes a short human form ("1h30m", "250ms", "0s") into out (cap >= 32). */
void duration_format(int64_t ms, char *out, size_t cap);

#endif
