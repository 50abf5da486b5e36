/*
 * when.c - clocks and UTC date arithmetic without the C library's time zone
 * machinery (Howard Hinnant's civil-date algorithms), so results never depend
 * on TZ. Any thread.
 */
#include "base/when.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int64_t when_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t when_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t when_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t when_days_from_civil(int y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void when_civil_from_days(int64_t z, int *y, unsigned *m, unsigned *d)
{
    z += 719468;
    const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const int64_t yy = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

void when_format_iso(int64_t at_ms, char *out, size_t cap)
{
    int64_t days = floor_div(at_ms, 86400000);
    int64_t rem = at_ms - days * 86400000;
    int y;
    unsigned m, d;
    when_civil_from_days(days, &y, &m, &d);
    snprintf(out, cap, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", y, m, d, (int)(rem / 3600000),
             (int)(rem / 60000 % 60), (int)(rem / 1000 % 60), (int)(rem % 1000));
}

void when_format_date(int64_t at_ms, char *out, size_t cap)
{
    int y;
    unsigned m, d;
    when_civil_from_days(floor_div(at_ms, 86400000), &y, &m, &d);
    snprintf(out, cap, "%04d-%02u-%02u", y, m, d);
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

int when_parse(const char *s, int64_t *at_ms)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
    size_t len = strlen(s);
    if (len < 10 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d))
        return -EINVAL;
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo))
        return -EINVAL;
    const char *p = s + 10;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (strlen(p) < 5 || digits(p, 2, &h) || p[2] != ':' || digits(p + 3, 2, &mi))
            return -EINVAL;
        p += 5;
        if (*p == ':') {
            if (digits(p + 1, 2, &sec))
                return -EINVAL;
            p += 3;
            if (*p == '.') {
                if (digits(p + 1, 3, &ms))
                    return -EINVAL;
                p += 4;
            }
        }
        if (*p == 'Z')
            p++;
        else if (strcmp(p, "+00:00") == 0)
            p += 6;
        if (h > 23 || mi > 59 || sec > 59)
            return -EINVAL;
    }
    if (*p)
        return -EINVAL;
    *at_ms = when_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400000 +
             (int64_t)h * 3600000 + (int64_t)mi * 60000 + (int64_t)sec * 1000 + ms;
    return 0;
}
