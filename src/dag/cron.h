/*
 * cron.h - schedules (SPEC section 2): a 5-field cron expression (minute hour
 * day-of-month month day-of-week, with lists, ranges, steps, month and weekday
 * names), an @alias (@hourly @daily @weekly @monthly @yearly @annually
 * @midnight), or "every DURATION" (fixed interval, anchored at the Unix epoch).
 * All times are UTC milliseconds. A parsed expression is one bitmap per field;
 * cron_next() jumps field by field, not minute by minute. Vixie cron's rule
 * for days: when both day-of-month and day-of-week are restricted, a day
 * matching either fires. No allocation; any thread.
 */
#ifndef BARAM_DAG_CRON_H
#define BARAM_DAG_CRON_H

#include <stdbool.h>
#include <stdint.h>

struct err;
struct tz;

struct cron {
    uint64_t minutes; /* bit m for minute m, 0-59 */
    uint32_t hours;   /* 0-23 */
    uint32_t mdays;   /* bit d for day d, 1-31 */
    uint16_t months;  /* bit m for month m, 1-12 */
    uint8_t wdays;    /* bit w for weekday w, 0 = Sunday .. 6 */
    bool mday_any;    /* day-of-month field was '*' */
    bool wday_any;    /* day-of-week field was '*' */
    int64_t every_ms; /* > 0 for "every DURATION"; the bitmaps are then unused */
};

/* 0, or -EINVAL with *err (the caller's, may be NULL) filled with what is wrong (for example
 * "month 13 out of range 1-12", or "never fires" for "0 0 30 2 *"). Any thread. */
int cron_parse(const char *expr, struct cron *out, struct err *err);
/* The first fire time strictly after after_ms, or -1 when there is none in the next 100 years. */
int64_t cron_next(const struct cron *c, int64_t after_ms);
/* The same in zone z's local time (z NULL: UTC), with Airflow's rules for clock changes. An
 * expression whose hour field covers every hour ("0 * * * *", or every 15 minutes) is absolute: it
 * fires at each instant whose local time matches, so it keeps its pace across a change (both
 * passes of a repeated hour fire). Any other fires at local wall times: a time skipped by a
 * forward change fires once at the change's instant (02:30 on Berlin's spring day fires at
 * 03:00 local), a repeated time fires once, at its first occurrence. "every DURATION" ignores
 * the zone. */
int64_t cron_next_tz(const struct cron *c, const struct tz *z, int64_t after_ms);

#endif
