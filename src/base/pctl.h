/*
 * pctl.h - percentiles of the last PCTL_MAX samples of a duration: a ring
 * of microseconds (a fixed 256 KiB at most however many are noted), sorted
 * on demand. For the latency lines a scheduler logs at its stop.
 *
 * Not thread-safe: one owner thread. The ring owns its array.
 */
#ifndef BARAM_BASE_PCTL_H
#define BARAM_BASE_PCTL_H

#include <stdint.h>

#include "base/vec.h"

#define PCTL_MAX 65536

struct pctl {
    VEC(uint32_t) us; /* the last samples, a ring once full */
    uint64_t total;   /* samples noted so far */
};

/* Notes a duration in ns (a negative one is ignored). */
void pctl_note_ns(struct pctl *p, int64_t ns);
/* The p-th percentile (0..100) of the samples kept, in microseconds; 0 when none. */
int64_t pctl_get_us(const struct pctl *p, double pct);
void pctl_release(struct pctl *p);

#endif
