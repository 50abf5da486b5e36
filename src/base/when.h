/*
 * when.h - baram's one time type: int64_t milliseconds, `_ms` for durations
 * and `_at_ms` for UTC instants since the Unix epoch (STYLE.md 3). Parsing
 * and formatting of the dates and timestamps users see. Any thread.
 */
#ifndef BARAM_BASE_WHEN_H
#define BARAM_BASE_WHEN_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, UTC ms since the epoch. */
int64_t when_now_ms(void);
/* Monotonic clock in ms, for measuring durations. */
int64_t when_mono_ms(void);
/* Monotonic clock in ns, for fine measurements. */
int64_t when_mono_ns(void);

/* Writes "2026-11-29T03:00:00.000Z" (24 chars + NUL; cap >= 25). */
void when_format_iso(int64_t at_ms, char *out, size_t cap);
/* Writes "2026-11-29" (cap >= 11). */
void when_format_date(int64_t at_ms, char *out, size_t cap);
/* Parses "YYYY-MM-DD" (midnight UTC) or "YYYY-MM-DDTHH:MM[:SS[.mmm]][Z]": 0 or -EINVAL.
 * Rejects impossible dates (2026-02-30). */
int when_parse(const char *s, int64_t *at_ms);
/* Days since the epoch for a civil date (proleptic Gregorian), and back. */
int64_t when_days_from_civil(int y, unsigned m, unsigned d);
void when_civil_from_days(int64_t days, int *y, unsigned *m, unsigned *d);

#endif
