/*
 * duration.c - durations as users write them: a bare number of seconds
 * ("90", "1.5") or a run of NUMBER UNIT parts with units d h m s ms, each
 * used at most once and in descending order ("1d2h3m4s500ms"). Every number
 * may carry a decimal fraction ("1.5h"); the result is truncated to whole
 * milliseconds.
 *
 * Key idea: all arithmetic is in int64 with explicit bounds, so the 100-year
 * limit is checked before anything could overflow. No allocation, no state;
 * any thread.
 */
#include "dag/duration.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define DURATION_DAY_MS (86400LL * 1000)
#define DURATION_MAX_MS (36525LL * DURATION_DAY_MS) /* 100 years of 365.25 days */
#define DURATION_FRAC   9                           /* fraction digits kept */

struct duration_unit {
    const char *name;
    int64_t ms;
};

/* In the only order they may appear; longer names before their prefixes ("ms" before "m"). */
static const struct duration_unit duration_units[] = {
    {"d", DURATION_DAY_MS}, {"h", 3600LL * 1000}, {"ms", 1}, {"m", 60LL * 1000}, {"s", 1000},
};
/* Rank of each unit above (bigger rank = smaller unit). */
static const int duration_rank[] = {0, 1, 4, 2, 3};

/* Reads DIGITS[.DIGITS] at *p: integer part (capped) and fraction as num / 10^DURATION_FRAC. */
static int duration_number(const char **p, int64_t *whole, int64_t *frac)
{
    const char *s = *p;
    int64_t w = 0, f = 0;
    if (*s < '0' || *s > '9')
        return -EINVAL;
    while (*s >= '0' && *s <= '9') {
        if (w > DURATION_MAX_MS) /* already far too big: keep it there, no overflow */
            w = DURATION_MAX_MS + 1;
        else
            w = w * 10 + (*s - '0');
        s++;
    }
    if (*s == '.') {
        s++;
        if (*s < '0' || *s > '9')
            return -EINVAL;
        int n = 0;
        while (*s >= '0' && *s <= '9') {
            if (n < DURATION_FRAC) {
                f = f * 10 + (*s - '0');
                n++;
            }
            s++;
        }
        for (; n < DURATION_FRAC; n++)
            f *= 10;
    }
    *whole = w;
    *frac = f;
    *p = s;
    return 0;
}

/* whole.frac * unit in ms, or -EINVAL past the limit. */
static int duration_scale(int64_t whole, int64_t frac, int64_t unit, int64_t *out)
{
    if (whole > DURATION_MAX_MS / unit)
        return -EINVAL;
    int64_t ms = whole * unit;
    /* frac < 1e9 and unit <= 8.64e7: split to stay in range (1e9 * 8.64e7 overflows). */
    ms += (frac / 1000) * unit / 1000000 + (frac % 1000) * unit / 1000000000;
    if (ms > DURATION_MAX_MS)
        return -EINVAL;
    *out = ms;
    return 0;
}

int duration_parse(const char *s, int64_t *ms)
{
    if (!s || !*s)
        return -EINVAL;
    const char *p = s;
    int64_t whole, frac, total = 0;
    if (duration_number(&p, &whole, &frac) < 0)
        return -EINVAL;
    if (*p == 0) { /* bare seconds */
        if (duration_scale(whole, frac, 1000, &total) < 0)
            return -EINVAL;
        *ms = total;
        return 0;
    }
    int last_rank = -1;
    for (;;) {
        size_t u = 0;
        for (; u < sizeof(duration_units) / sizeof(duration_units[0]); u++) {
            size_t n = strlen(duration_units[u].name);
            if (strncmp(p, duration_units[u].name, n) == 0 &&
                !(p[n] >= 'a' && p[n] <= 'z')) /* "mx" is not "m" + "x" */
                break;
        }
        if (u == sizeof(duration_units) / sizeof(duration_units[0]))
            return -EINVAL;
        if (duration_rank[u] <= last_rank)
            return -EINVAL; /* repeated or out of order: "1m1h", "1s1s" */
        last_rank = duration_rank[u];
        int64_t part;
        if (duration_scale(whole, frac, duration_units[u].ms, &part) < 0)
            return -EINVAL;
        total += part;
        if (total > DURATION_MAX_MS)
            return -EINVAL;
        p += strlen(duration_units[u].name);
        if (*p == 0)
            break;
        if (duration_number(&p, &whole, &frac) < 0 || *p == 0)
            return -EINVAL; /* "1h30" is ambiguous: the unit is required after the first part */
    }
    *ms = total;
    return 0;
}

void duration_format(int64_t ms, char *out, size_t cap)
{
    if (cap == 0)
        return;
    out[0] = 0;
    if (ms == 0) {
        snprintf(out, cap, "0s");
        return;
    }
    size_t len = 0;
    /* -INT64_MIN overflows: work on the magnitude as unsigned. */
    uint64_t v = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    if (ms < 0)
        len += (size_t)snprintf(out, cap, "-");
    static const struct duration_unit order[] = {
        {"d", DURATION_DAY_MS}, {"h", 3600LL * 1000}, {"m", 60LL * 1000}, {"s", 1000}, {"ms", 1},
    };
    for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
        uint64_t n = v / (uint64_t)order[i].ms;
        v %= (uint64_t)order[i].ms;
        if (n == 0 || len >= cap)
            continue;
        len +=
            (size_t)snprintf(out + len, cap - len, "%llu%s", (unsigned long long)n, order[i].name);
    }
}
