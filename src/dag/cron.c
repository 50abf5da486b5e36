/*
 * cron.c - next fire time of a 5-field cron expression, an @alias or an
 * "every DURATION" interval.
 *
 * A parsed expression is one bitmap per field (struct cron, see cron.h).
 * cron_next() walks civil fields (year, month, day, hour, minute) and jumps
 * each one to its next set bit, resetting the smaller ones, so @yearly costs
 * what @hourly costs: a few dozen steps, never a loop over minutes. Dates come
 * from base/when.h (proleptic Gregorian, UTC), never from localtime/mktime.
 *
 * Days follow Vixie cron: when both day-of-month and day-of-week are
 * restricted (neither is '*'), a day matching either fires; otherwise both
 * must match (the '*' one always does). Weekday 7 is Sunday, like 0.
 *
 * Parse errors fill the caller's struct err (the message names the bad
 * value). No allocation, no state; any thread.
 */
#include "dag/cron.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "base/compiler.h"
#include "base/err.h"
#include "base/tz.h"
#include "base/when.h"
#include "dag/duration.h"

#define CRON_MAX_LEN 256
#define CRON_MIN_MS  (-62167219200000LL) /* 0000-01-01T00:00:00Z */
#define CRON_MAX_MS  253402300799999LL   /* 9999-12-31T23:59:59.999Z */
#define CRON_MINUTE  60000LL
#define CRON_HORIZON 100 /* years searched before cron_next() gives up */

enum cron_field { CRON_MINUTE_F, CRON_HOUR_F, CRON_MDAY_F, CRON_MONTH_F, CRON_WDAY_F };

static const char *const cron_month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                               "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const cron_wday_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

struct cron_spec {
    const char *name;
    int min, max;             /* values accepted */
    int star_max;             /* upper end of '*' and of "a/step" (6 for weekdays: 7 is 0) */
    const char *const *names; /* names[i] is value i + name_base, or NULL */
    int nnames, name_base;
    const char *unknown; /* "month", "weekday" for "unknown month 'FOO'" */
};

static const struct cron_spec cron_specs[5] = {
    {"minute", 0, 59, 59, NULL, 0, 0, NULL},
    {"hour", 0, 23, 23, NULL, 0, 0, NULL},
    {"day-of-month", 1, 31, 31, NULL, 0, 0, NULL},
    {"month", 1, 12, 12, cron_month_names, 12, 1, "month"},
    {"day-of-week", 0, 7, 6, cron_wday_names, 7, 0, "weekday"},
};

static const struct {
    const char *name;
    const char *expr;
} cron_aliases[] = {
    {"@hourly", "0 * * * *"},   {"@daily", "0 0 * * *"},   {"@midnight", "0 0 * * *"},
    {"@weekly", "0 0 * * 0"},   {"@monthly", "0 0 1 * *"}, {"@yearly", "0 0 1 1 *"},
    {"@annually", "0 0 1 1 *"},
};

static bool cron_is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static bool cron_is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool cron_is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* One value (number or name) at s[*i..n): 0 and *v, or -EINVAL with *err filled. */
static int cron_value(const struct cron_spec *f, const char *s, size_t n, size_t *i, int *v,
                      struct err *err)
{
    size_t start = *i, j = *i;
    if (j < n && cron_is_digit(s[j])) {
        long x = 0;
        while (j < n && cron_is_digit(s[j])) {
            if (x < 100000)
                x = x * 10 + (s[j] - '0');
            j++;
        }
        if (x < f->min || x > f->max)
            return err_set(err, -EINVAL, "%s %.*s out of range %d-%d", f->name, (int)(j - start),
                           s + start, f->min, f->max);
        *v = (int)x;
        *i = j;
        return 0;
    }
    while (j < n && cron_is_alpha(s[j]))
        j++;
    if (j == start) {
        size_t k = start; /* show the rest of the item */
        while (k < n && s[k] != ',')
            k++;
        return err_set(err, -EINVAL, "bad %s '%.*s'", f->name,
                       (int)(k - start > 32 ? 32 : k - start), s + start);
    }
    if (!f->names)
        return err_set(err, -EINVAL, "bad %s '%.*s'", f->name,
                       (int)(j - start > 32 ? 32 : j - start), s + start);
    for (int k = 0; k < f->nnames; k++) {
        if (j - start == 3 && strncasecmp(s + start, f->names[k], 3) == 0) {
            *v = k + f->name_base;
            *i = j;
            return 0;
        }
    }
    return err_set(err, -EINVAL, "unknown %s '%.*s'", f->unknown,
                   (int)(j - start > 32 ? 32 : j - start), s + start);
}

/* One field s[0..n) into *bits. */
static int cron_field(const struct cron_spec *f, const char *s, size_t n, uint64_t *bits,
                      struct err *err)
{
    uint64_t out = 0;
    size_t i = 0;
    for (;;) {
        int lo, hi, step = 1;
        bool ranged = false;
        size_t item = i;
        if (i >= n || s[i] == ',')
            return err_set(err, -EINVAL, "empty list item in %s field", f->name);
        if (s[i] == '*') {
            lo = f->min;
            hi = f->star_max;
            ranged = true;
            i++;
        } else {
            if (cron_value(f, s, n, &i, &lo, err) < 0)
                return -EINVAL;
            hi = lo;
            if (i < n && s[i] == '-') {
                size_t at = ++i;
                if (cron_value(f, s, n, &i, &hi, err) < 0)
                    return -EINVAL;
                if (hi < lo)
                    return err_set(err, -EINVAL, "bad range '%d-%.*s' in %s field", lo,
                                   (int)(i - at), s + at, f->name);
                ranged = true;
            }
        }
        if (i < n && s[i] == '/') {
            size_t at = ++i;
            long x = 0;
            while (i < n && cron_is_digit(s[i])) {
                if (x < 100000)
                    x = x * 10 + (s[i] - '0');
                i++;
            }
            size_t e = i;
            while (e < n && s[e] != ',')
                e++;
            if (i == at || i != e || x < 1 || x > f->max - f->min + 1)
                return err_set(err, -EINVAL, "bad step '%.*s'", (int)(e - at > 32 ? 32 : e - at),
                               s + at);
            step = (int)x;
            if (!ranged) /* "5/15": from 5 to the end */
                hi = f->star_max;
        }
        if (i < n && s[i] != ',') {
            size_t e = i;
            while (e < n && s[e] != ',')
                e++;
            return err_set(err, -EINVAL, "bad %s '%.*s'", f->name,
                           (int)(e - item > 32 ? 32 : e - item), s + item);
        }
        for (int v = lo; v <= hi; v += step)
            out |= 1ULL << (f == &cron_specs[CRON_WDAY_F] && v == 7 ? 0 : v);
        if (i >= n)
            break;
        i++; /* ',' */
        if (i >= n)
            return err_set(err, -EINVAL, "empty list item in %s field", f->name);
    }
    *bits = out;
    return 0;
}

static bool cron_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int cron_days_in_month(int y, int m)
{
    static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && cron_leap(y) ? 29 : dim[m];
}

/* A day-of-month restriction must meet some selected month (Feb 29 counts: leap years). */
static bool cron_can_fire(const struct cron *c)
{
    static const int maxd[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (!c->wday_any) /* some weekday falls in every month */
        return true;
    for (int m = 1; m <= 12; m++) {
        uint32_t upto = (uint32_t)((2ULL << maxd[m]) - 2); /* bits 1..maxd */
        if ((c->months >> m & 1) && (c->mdays & upto))
            return true;
    }
    return false;
}

static int cron_parse_fields(const char *s, size_t n, struct cron *out, struct err *err)
{
    const char *field[5];
    size_t flen[5];
    int count = 0;
    size_t i = 0;
    for (;;) {
        while (i < n && cron_is_space(s[i]))
            i++;
        if (i >= n)
            break;
        size_t start = i;
        while (i < n && !cron_is_space(s[i]))
            i++;
        if (count < 5) {
            field[count] = s + start;
            flen[count] = i - start;
        }
        count++;
    }
    if (count != 5)
        return err_set(err, -EINVAL, "expected 5 fields, got %d", count);
    uint64_t bits[5];
    for (int f = 0; f < 5; f++)
        if (cron_field(&cron_specs[f], field[f], flen[f], &bits[f], err) < 0)
            return -EINVAL;
    struct cron c = {
        .minutes = bits[0],
        .hours = (uint32_t)bits[1],
        .mdays = (uint32_t)bits[2],
        .months = (uint16_t)bits[3],
        .wdays = (uint8_t)bits[4],
        .mday_any = flen[2] == 1 && field[2][0] == '*',
        .wday_any = flen[4] == 1 && field[4][0] == '*',
        .every_ms = 0,
    };
    if (!cron_can_fire(&c))
        return err_set(err, -EINVAL, "never fires");
    *out = c;
    return 0;
}

int cron_parse(const char *expr, struct cron *out, struct err *err)
{
    if (!expr)
        return err_set(err, -EINVAL, "empty schedule");
    size_t n = strnlen(expr, CRON_MAX_LEN + 1);
    if (n > CRON_MAX_LEN)
        return err_set(err, -EINVAL, "schedule longer than %d characters", CRON_MAX_LEN);
    while (n > 0 && cron_is_space(expr[n - 1]))
        n--;
    while (n > 0 && cron_is_space(*expr)) {
        expr++;
        n--;
    }
    if (n == 0)
        return err_set(err, -EINVAL, "empty schedule");
    if (expr[0] == '@') {
        for (size_t i = 0; i < ARRAY_SIZE(cron_aliases); i++)
            if (strlen(cron_aliases[i].name) == n &&
                strncasecmp(expr, cron_aliases[i].name, n) == 0)
                return cron_parse_fields(cron_aliases[i].expr, strlen(cron_aliases[i].expr), out,
                                         err);
        return err_set(err, -EINVAL, "unknown schedule '%.*s'", (int)(n > 32 ? 32 : n), expr);
    }
    if (n > 5 && strncasecmp(expr, "every", 5) == 0 && cron_is_space(expr[5])) {
        char d[CRON_MAX_LEN + 1];
        size_t i = 5;
        while (i < n && cron_is_space(expr[i]))
            i++;
        memcpy(d, expr + i, n - i);
        d[n - i] = 0;
        int64_t ms;
        if (duration_parse(d, &ms) < 0)
            return err_set(err, -EINVAL, "bad duration '%.32s'", d);
        if (ms < 1000)
            return err_set(err, -EINVAL, "interval '%.32s' is shorter than 1s", d);
        *out = (struct cron){.every_ms = ms};
        return 0;
    }
    return cron_parse_fields(expr, n, out, err);
}

/* The lowest set bit of mask at or above from, or -1. */
static int cron_next_bit(uint64_t mask, int from)
{
    if (from >= 64)
        return -1;
    mask >>= from;
    return mask ? from + __builtin_ctzll(mask) : -1;
}

static bool cron_day_ok(const struct cron *c, int y, int m, int d)
{
    int64_t days = when_days_from_civil(y, (unsigned)m, (unsigned)d);
    int wd = (int)(((days + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
    bool md = c->mdays >> d & 1, w = c->wdays >> wd & 1;
    if (!c->mday_any && !c->wday_any)
        return md || w;
    return md && w;
}

static int64_t cron_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

int64_t cron_next(const struct cron *c, int64_t after_ms)
{
    if (c->every_ms > 0) {
        int64_t q = cron_floor_div(after_ms, c->every_ms);
        if (q >= INT64_MAX / c->every_ms - 1)
            return -1;
        return (q + 1) * c->every_ms;
    }
    if (after_ms < CRON_MIN_MS || after_ms > CRON_MAX_MS) /* years 0..9999 only */
        return -1;
    if (!c->minutes || !c->hours || !c->mdays || !c->months || !c->wdays)
        return -1;
    int64_t t = cron_floor_div(after_ms, CRON_MINUTE) + 1; /* strictly after, whole minutes */
    int64_t days = cron_floor_div(t, 1440);
    int mod = (int)(t - days * 1440);
    int y, h = mod / 60, mi = mod % 60;
    unsigned um, ud;
    when_civil_from_days(days, &y, &um, &ud);
    int m = (int)um, d = (int)ud;
    const int ylimit = y + CRON_HORIZON;

    /* Each pass moves forward in time, so the loop ends at ylimit at the latest. */
    for (;;) {
        if (y > ylimit)
            return -1;
        int nm = cron_next_bit(c->months, m);
        if (nm < 0 || nm > 12) {
            y++;
            m = 1;
            d = 1;
            h = mi = 0;
            continue;
        }
        if (nm != m) {
            m = nm;
            d = 1;
            h = mi = 0;
        }
        int dim = cron_days_in_month(y, m);
        if (c->wday_any) { /* only the day-of-month bitmap matters: jump */
            int nd = cron_next_bit(c->mdays, d);
            if (nd > 0 && nd != d) {
                d = nd;
                h = mi = 0;
            }
            if (nd < 0)
                d = dim + 1;
        } else {
            while (d <= dim && !cron_day_ok(c, y, m, d)) { /* at most 7 steps */
                d++;
                h = mi = 0;
            }
        }
        if (d > dim) {
            if (++m > 12) {
                m = 1;
                y++;
            }
            d = 1;
            h = mi = 0;
            continue;
        }
        int nh = cron_next_bit(c->hours, h);
        if (nh < 0 || nh > 23) {
            d++;
            h = mi = 0;
            continue;
        }
        if (nh != h) {
            h = nh;
            mi = 0;
        }
        int nmi = cron_next_bit(c->minutes, mi);
        if (nmi < 0 || nmi > 59) {
            h++;
            mi = 0;
            if (h > 23) {
                d++;
                h = 0;
            }
            continue;
        }
        days = when_days_from_civil(y, (unsigned)m, (unsigned)d);
        int64_t next = (days * 1440 + h * 60 + nmi) * CRON_MINUTE;
        return next > CRON_MAX_MS ? -1 : next; /* past year 9999 nothing can print it */
    }
}

/* Periods (spans of one offset) a search may cross before giving up: 100 years of two changes
 * a year, with room. */
#define CRON_TZ_STEPS 1000

int64_t cron_next_tz(const struct cron *c, const struct tz *z, int64_t after_ms)
{
    if (!z || c->every_ms > 0)
        return cron_next(c, after_ms);
    if (c->hours == 0xFFFFFFu) {
        /* Absolute: within each period local time is UTC plus one offset, so the period's first
         * match is one cron_next away; past the period's end, go on from the next. */
        int64_t x = after_ms + 1; /* the first instant that may fire */
        for (int i = 0; i < CRON_TZ_STEPS; i++) {
            int64_t end;
            int64_t off = (int64_t)tz_offset_at(z, x, &end) * 1000;
            int64_t wall = cron_next(c, x - 1 + off);
            if (wall < 0)
                return -1;
            if (wall - off < end)
                return wall - off;
            x = end;
        }
        return -1;
    }
    /* Wall times: the next matching local time whose instant (first occurrence, or the change's
     * instant when skipped) is after after_ms. Earlier wall times map to earlier instants, so
     * only times in a repeated hour, or several in one skipped span, are stepped over. */
    int64_t wall = after_ms + (int64_t)tz_offset_at(z, after_ms, NULL) * 1000;
    for (int i = 0; i < CRON_TZ_STEPS; i++) {
        wall = cron_next(c, wall);
        if (wall < 0)
            return -1;
        int64_t at = tz_from_local(z, wall);
        if (at > after_ms)
            return at;
    }
    return -1;
}
