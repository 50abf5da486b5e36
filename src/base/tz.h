/*
 * tz.h - IANA time zones read from the system's TZif files (Debian's tzdata,
 * /usr/share/zoneinfo, or $TZDIR), without the C library's process-wide TZ:
 * offsets at an instant, and the instant of a local wall-clock time. A zone
 * is immutable once loaded; tz_get() keeps one copy per name for the life of
 * the process. Any thread.
 */
#ifndef BARAM_BASE_TZ_H
#define BARAM_BASE_TZ_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct tz;

#define TZ_NAME_MAX 64
#define TZ_NONE     INT64_MAX /* "no next transition" */

/* The zone named name ("Europe/Berlin", "UTC"), loaded once and kept: 0 and *out (never
 * freed), or -ENOENT / -EINVAL with *e filled ("unknown time zone 'Europe/Berln'; did you mean
 * 'Europe/Berlin'?"). Any thread. */
int tz_get(const char *name, const struct tz **out, struct err *e) WARN_UNUSED;
/* tz_get for a checker: 0, or a negative code after an error at file:line:col in d ("unknown
 * time zone 'X'", with the did-you-mean as its hint). */
struct diag;
int tz_get_diag(const char *name, const struct tz **out, struct diag *d, const char *file, int line,
                int col);
/* A zone from TZif bytes (tests, fuzzing): 0 and *out (free with tz_free), or -EINVAL. */
int tz_parse(const char *name, const unsigned char *data, size_t len, struct tz **out,
             struct err *e) WARN_UNUSED;
void tz_free(struct tz *z);

/* The zone's name as given to tz_get. */
const char *tz_name(const struct tz *z);
/* Seconds east of UTC in effect at at_ms; *next_ms (may be NULL) gets the first transition
 * after at_ms, or TZ_NONE. */
int32_t tz_offset_at(const struct tz *z, int64_t at_ms, int64_t *next_ms);
/* The UTC instant of a local wall-clock time (wall_ms: the local date and time written as if
 * it were UTC). A time repeated by a backward change gives its first occurrence; a time
 * skipped by a forward change gives the change's instant (the next valid one). */
int64_t tz_from_local(const struct tz *z, int64_t wall_ms);
/* "2026-03-29T03:00:00+02:00" (cap >= 26); z NULL: UTC ("...Z"). */
void tz_format(const struct tz *z, int64_t at_ms, char *out, size_t cap);

#endif
