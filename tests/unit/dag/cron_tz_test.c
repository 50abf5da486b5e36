/*
 * cron_tz_test.c - time zones (base/tz.c) and cron in local time
 * (cron_next_tz): offsets against `zdump -v` for the 2026 and 2040 changes
 * (2040 is past the fat files' tables: the footer rule answers), a
 * cross-check of every transition zdump prints for a few zones from 1970 to
 * 2060, and tables of next fire times across both 2026 clock changes in
 * Europe/Berlin and America/New_York, in 2040, in a southern zone and in one
 * without DST. Needs Debian's tzdata (/usr/share/zoneinfo).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/err.h"
#include "base/tz.h"
#include "base/when.h"
#include "dag/cron.h"

static int64_t at(const char *s)
{
    int64_t ms;
    if (when_parse(s, &ms) < 0)
        fail_msg("bad date %s", s);
    return ms;
}

static const struct tz *zone(const char *name)
{
    const struct tz *z = NULL;
    struct err e = {0};
    if (tz_get(name, &z, &e) < 0)
        fail_msg("%s: %s", name, err_msg(&e));
    return z;
}

/* From `zdump -v -c 2026,2027 ZONE` and `-c 2040,2041` (tzdata 2025b): the last second before
 * each change and the first after. */
static const struct {
    const char *zone, *utc;
    int32_t off;
} offsets[] = {
    {"Europe/Berlin", "2026-03-29T00:59:59Z", 3600},
    {"Europe/Berlin", "2026-03-29T01:00:00Z", 7200},
    {"Europe/Berlin", "2026-10-25T00:59:59Z", 7200},
    {"Europe/Berlin", "2026-10-25T01:00:00Z", 3600},
    {"Europe/Berlin", "2040-03-25T00:59:59Z", 3600},
    {"Europe/Berlin", "2040-03-25T01:00:00Z", 7200},
    {"Europe/Berlin", "2040-10-28T00:59:59Z", 7200},
    {"Europe/Berlin", "2040-10-28T01:00:00Z", 3600},
    {"America/New_York", "2026-03-08T06:59:59Z", -18000},
    {"America/New_York", "2026-03-08T07:00:00Z", -14400},
    {"America/New_York", "2026-11-01T05:59:59Z", -14400},
    {"America/New_York", "2026-11-01T06:00:00Z", -18000},
    {"America/New_York", "2040-03-11T06:59:59Z", -18000},
    {"America/New_York", "2040-03-11T07:00:00Z", -14400},
    {"America/New_York", "2040-11-04T05:59:59Z", -14400},
    {"America/New_York", "2040-11-04T06:00:00Z", -18000},
    {"Australia/Sydney", "2026-04-04T15:59:59Z", 39600},
    {"Australia/Sydney", "2026-04-04T16:00:00Z", 36000},
    {"Australia/Sydney", "2026-10-03T15:59:59Z", 36000},
    {"Australia/Sydney", "2026-10-03T16:00:00Z", 39600},
    {"Australia/Sydney", "2040-10-06T16:00:00Z", 39600},
    {"Asia/Tokyo", "2026-03-29T01:00:00Z", 32400},
    {"Asia/Tokyo", "2040-10-28T01:00:00Z", 32400},
    {"UTC", "2026-03-29T01:00:00Z", 0},
};

static void offsets_match_zdump(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++) {
        int32_t got = tz_offset_at(zone(offsets[i].zone), at(offsets[i].utc), NULL);
        if (got != offsets[i].off)
            fail_msg("%s at %s: offset %d, want %d", offsets[i].zone, offsets[i].utc, got,
                     offsets[i].off);
    }
}

/* `zdump -v -c 1970,2060 ZONE` (libc-bin's) as a stream to read, its stderr dropped. */
static FILE *zdump_open(const char *zone, pid_t *pid)
{
    int fds[2];
    if (pipe(fds) < 0)
        return NULL;
    *pid = fork();
    if (*pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(fds[1], 1);
        if (null >= 0)
            dup2(null, 2);
        close(fds[0]);
        execlp("zdump", "zdump", "-v", "-c", "1970,2060", zone, (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    if (*pid < 0) {
        close(fds[0]);
        return NULL;
    }
    return fdopen(fds[0], "r");
}

static int zdump_close(FILE *p, pid_t pid)
{
    int st = 0;
    fclose(p);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    return st;
}

/* Every change `zdump -v -c 1970,2060` lists, for zones north, south, and with odd rules. */
static void every_zdump_transition_matches(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin",    "America/New_York", "Australia/Sydney",
                                        "America/Santiago", "Asia/Tehran",      "Europe/Dublin",
                                        "Pacific/Chatham",  "America/Sao_Paulo"};
    static const char *const mon[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                      "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    for (size_t zi = 0; zi < sizeof zones / sizeof zones[0]; zi++) {
        pid_t pid;
        FILE *p = zdump_open(zones[zi], &pid);
        assert_non_null(p);
        char line[512];
        int checked = 0;
        while (fgets(line, sizeof line, p)) {
            char wd[8], mo[8];
            int d, h, mi, s, y;
            long off;
            const char *g = strstr(line, "gmtoff=");
            if (!g || strstr(line, "NULL"))
                continue;
            if (sscanf(line + strlen(zones[zi]), " %7s %7s %d %d:%d:%d %d UT", wd, mo, &d, &h, &mi,
                       &s, &y) != 7)
                continue;
            off = strtol(g + 7, NULL, 10);
            int m = 0;
            while (m < 12 && strcmp(mon[m], mo) != 0)
                m++;
            assert_true(m < 12);
            int64_t t = (when_days_from_civil(y, (unsigned)m + 1, (unsigned)d) * 86400 + h * 3600 +
                         mi * 60 + s) *
                        1000;
            int32_t got = tz_offset_at(zone(zones[zi]), t, NULL);
            if (got != off)
                fail_msg("%s at %s: offset %d, zdump says %ld", zones[zi], line, got, off);
            checked++;
        }
        int rc = zdump_close(p, pid);
        if (rc != 0 || checked == 0)
            skip(); /* no zdump here */
        assert_true(checked > 10);
    }
}

static void next_transition_is_the_change(void **state)
{
    (void)state;
    int64_t next;
    (void)tz_offset_at(zone("Europe/Berlin"), at("2026-03-28T12:00:00Z"), &next);
    assert_int_equal(next, at("2026-03-29T01:00:00Z"));
    (void)tz_offset_at(zone("Europe/Berlin"), at("2040-06-01T00:00:00Z"), &next);
    assert_int_equal(next, at("2040-10-28T01:00:00Z"));
    (void)tz_offset_at(zone("Asia/Tokyo"), at("2040-06-01T00:00:00Z"), &next);
    assert_true(next == TZ_NONE);
}

static void local_times_resolve(void **state)
{
    (void)state;
    const struct tz *b = zone("Europe/Berlin");
    /* skipped: the change's instant */
    assert_int_equal(tz_from_local(b, at("2026-03-29T02:30")), at("2026-03-29T01:00:00Z"));
    /* repeated: the first occurrence (CEST) */
    assert_int_equal(tz_from_local(b, at("2026-10-25T02:30")), at("2026-10-25T00:30:00Z"));
    assert_int_equal(tz_from_local(b, at("2026-10-25T03:00")), at("2026-10-25T02:00:00Z"));
    assert_int_equal(tz_from_local(b, at("2026-07-01T12:00")), at("2026-07-01T10:00:00Z"));
    char s[40];
    tz_format(b, at("2026-03-29T01:00:00Z"), s, sizeof s);
    assert_string_equal(s, "2026-03-29T03:00:00+02:00");
    tz_format(zone("America/New_York"), at("2026-11-01T06:30:00Z"), s, sizeof s);
    assert_string_equal(s, "2026-11-01T01:30:00-05:00");
    tz_format(NULL, at("2026-11-01T06:30:00Z"), s, sizeof s);
    assert_string_equal(s, "2026-11-01T06:30:00Z");
}

static void unknown_zones_are_errors(void **state)
{
    (void)state;
    const struct tz *z = NULL;
    struct err e = {0};
    assert_int_equal(tz_get("Europe/Berln", &z, &e), -ENOENT);
    assert_string_equal(err_msg(&e), "unknown time zone 'Europe/Berln'; did you mean "
                                     "'Europe/Berlin'?");
    assert_int_equal(tz_get("europe/berlin", &z, &e), -ENOENT);
    assert_string_equal(err_msg(&e), "unknown time zone 'europe/berlin'; did you mean "
                                     "'Europe/Berlin'?");
    static const char *const bad[] = {"",
                                      "../../etc/passwd",
                                      "/etc/localtime",
                                      "Europe//Berlin",
                                      "Europe/.",
                                      "Mars/Olympus_Mons",
                                      "Europe/Berlin\n",
                                      "zone.tab",
                                      "posix/../../../../etc/hostname"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(tz_get(bad[i], &z, &e), -ENOENT);
        assert_non_null(strstr(err_msg(&e), "unknown time zone"));
    }
    assert_int_equal(tz_get(NULL, &z, &e), -ENOENT);
}

static void hostile_tzif_bytes_are_rejected(void **state)
{
    (void)state;
    FILE *f = fopen("/usr/share/zoneinfo/America/New_York", "rb");
    if (!f)
        skip();
    static unsigned char data[1 << 16];
    size_t n = fread(data, 1, sizeof data, f);
    fclose(f);
    struct tz *z = NULL;
    struct err e = {0};
    assert_int_equal(tz_parse("ny", data, n, &z, &e), 0);
    tz_free(z);
    for (size_t cut = 0; cut < n; cut += 7) { /* every truncation fails cleanly or parses */
        z = NULL;
        if (tz_parse("ny", data, cut, &z, &e) == 0)
            tz_free(z);
    }
    unsigned char bad[64] = "TZif2";
    memset(bad + 20, 0xff, 24); /* huge counts */
    assert_int_equal(tz_parse("bad", bad, sizeof bad, &z, &e), -EINVAL);
    assert_int_equal(tz_parse("bad", (const unsigned char *)"nope", 4, &z, &e), -EINVAL);
    /* a broken footer */
    unsigned char copy[1 << 16];
    memcpy(copy, data, n);
    for (size_t i = n - 2; i > 0 && copy[i] != '\n'; i--)
        if (copy[i] == ',')
            copy[i] = '!';
    assert_int_equal(tz_parse("ny", copy, n, &z, &e), -EINVAL);
}

/* A "slim" TZif file as Debian's tzdata 2024+ ships: no transitions, all in the footer's rule.
 * It must answer as the full Europe/Berlin file does. */
static struct tz *slim_zone(const char *footer)
{
    unsigned char f[256] = {0};
    size_t n = 0;
    for (int v = 0; v < 2; v++) {
        memcpy(f + n, "TZif2", 5);
        f[n + 39] = 1; /* typecnt */
        f[n + 43] = 4; /* charcnt */
        n += 44;
        f[n + 2] = 0x0e; /* type 0: utoff 3600 (0x00000e10) */
        f[n + 3] = 0x10;
        memcpy(f + n + 6, "CET", 4);
        n += 10;
    }
    n += (size_t)snprintf((char *)f + n, sizeof f - n, "\n%s\n", footer);
    struct tz *z = NULL;
    struct err e = {0};
    if (tz_parse("slim", f, n, &z, &e) < 0)
        fail_msg("slim: %s", err_msg(&e));
    return z;
}

static void slim_files_follow_the_footer(void **state)
{
    (void)state;
    struct tz *z = slim_zone("CET-1CEST,M3.5.0,M10.5.0/3");
    const struct tz *full = zone("Europe/Berlin");
    for (size_t i = 0; i < sizeof offsets / sizeof offsets[0]; i++)
        if (strcmp(offsets[i].zone, "Europe/Berlin") == 0)
            assert_int_equal(tz_offset_at(z, at(offsets[i].utc), NULL), offsets[i].off);
    struct cron c;
    assert_int_equal(cron_parse("30 2 * * *", &c, NULL), 0);
    for (int64_t t = at("2026-01-01T00:00:00Z"); t < at("2028-01-01T00:00:00Z");
         t += 6 * 3600 * 1000LL)
        assert_int_equal(cron_next_tz(&c, z, t), cron_next_tz(&c, full, t));
    tz_free(z);
    /* a dst name without a rule takes POSIX's (US) one; Jn and n dates; <+03> names */
    z = slim_zone("EST5EDT");
    assert_int_equal(tz_offset_at(z, at("2026-03-08T07:00:00Z"), NULL), -14400);
    assert_int_equal(tz_offset_at(z, at("2026-11-01T06:00:00Z"), NULL), -18000);
    tz_free(z);
    z = slim_zone("<+03>-3");
    assert_int_equal(tz_offset_at(z, at("2040-01-01T00:00:00Z"), NULL), 3 * 3600);
    tz_free(z);
    z = slim_zone("XST-1XDT,J60/2,300");
    assert_int_equal(tz_offset_at(z, at("2028-03-01T00:59:59Z"), NULL), 3600); /* leap year */
    assert_int_equal(tz_offset_at(z, at("2028-03-01T01:00:00Z"), NULL), 7200);
    tz_free(z);
    struct err e = {0};
    static const char *const bad[] = {"CET-1CEST,M13.5.0,M10.5.0", "CET-1CEST,M3.5.0", "C-1",
                                      "CET-1CEST,J0,J365", "CET-1CEST,M3.5.0/200,M10.5.0"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        unsigned char f[256] = {0};
        size_t n = 0;
        for (int v = 0; v < 2; v++) {
            memcpy(f + n, "TZif2", 5);
            f[n + 39] = 1;
            f[n + 43] = 4;
            n += 54;
        }
        n += (size_t)snprintf((char *)f + n, sizeof f - n, "\n%s\n", bad[i]);
        z = NULL;
        if (tz_parse("bad", f, n, &z, &e) != -EINVAL)
            fail_msg("footer '%s' accepted", bad[i]);
    }
}

static const struct {
    const char *zone, *expr, *after, *next;
} nexts[] = {
    /* Europe/Berlin, spring: 02:00 CET jumps to 03:00 CEST at 01:00Z on 2026-03-29 */
    {"Europe/Berlin", "30 2 * * *", "2026-03-28T01:30:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "30 2 * * *", "2026-03-29T01:00:00Z", "2026-03-30T00:30:00Z"},
    {"Europe/Berlin", "30 1 * * *", "2026-03-28T00:30:00Z", "2026-03-29T00:30:00Z"},
    {"Europe/Berlin", "30 1 * * *", "2026-03-29T00:30:00Z", "2026-03-29T23:30:00Z"},
    {"Europe/Berlin", "0 3 * * *", "2026-03-28T02:00:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "0 * * * *", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "0 * * * *", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
    {"Europe/Berlin", "30 * * * *", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"},
    {"Europe/Berlin", "*/15 * * * *", "2026-03-29T00:45:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "*/15 * * * *", "2026-03-29T00:59:59Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "0 3 * * 0", "2026-03-22T02:00:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "30 2 * * 0", "2026-03-22T01:30:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "30 2 * * 0", "2026-03-29T01:00:00Z", "2026-04-05T00:30:00Z"},
    {"Europe/Berlin", "0 0 * * *", "2026-03-28T23:00:00Z", "2026-03-29T22:00:00Z"},
    /* two wall times in the skipped hour fire once */
    {"Europe/Berlin", "15,45 2 * * *", "2026-03-28T01:45:00Z", "2026-03-29T01:00:00Z"},
    {"Europe/Berlin", "15,45 2 * * *", "2026-03-29T01:00:00Z", "2026-03-30T00:15:00Z"},
    /* Europe/Berlin, autumn: 03:00 CEST falls back to 02:00 CET at 01:00Z on 2026-10-25 */
    {"Europe/Berlin", "30 2 * * *", "2026-10-24T00:30:00Z", "2026-10-25T00:30:00Z"},
    {"Europe/Berlin", "30 2 * * *", "2026-10-25T00:30:00Z", "2026-10-26T01:30:00Z"},
    {"Europe/Berlin", "30 2 * * *", "2026-10-25T01:10:00Z", "2026-10-26T01:30:00Z"},
    {"Europe/Berlin", "30 1 * * *", "2026-10-24T23:00:00Z", "2026-10-24T23:30:00Z"},
    {"Europe/Berlin", "0 * * * *", "2026-10-25T00:00:00Z", "2026-10-25T01:00:00Z"},
    {"Europe/Berlin", "0 * * * *", "2026-10-25T01:00:00Z", "2026-10-25T02:00:00Z"},
    {"Europe/Berlin", "30 * * * *", "2026-10-25T00:30:00Z", "2026-10-25T01:30:00Z"},
    {"Europe/Berlin", "*/15 * * * *", "2026-10-25T00:45:00Z", "2026-10-25T01:00:00Z"},
    {"Europe/Berlin", "*/15 * * * *", "2026-10-25T01:00:00Z", "2026-10-25T01:15:00Z"},
    {"Europe/Berlin", "30 2 * * 0", "2026-10-18T00:30:00Z", "2026-10-25T00:30:00Z"},
    {"Europe/Berlin", "30 2 * * 0", "2026-10-25T00:30:00Z", "2026-11-01T01:30:00Z"},
    /* America/New_York, spring: 02:00 EST jumps to 03:00 EDT at 07:00Z on 2026-03-08 */
    {"America/New_York", "30 2 * * *", "2026-03-07T07:30:00Z", "2026-03-08T07:00:00Z"},
    {"America/New_York", "30 2 * * *", "2026-03-08T07:00:00Z", "2026-03-09T06:30:00Z"},
    {"America/New_York", "30 1 * * *", "2026-03-07T06:30:00Z", "2026-03-08T06:30:00Z"},
    {"America/New_York", "30 1 * * *", "2026-03-08T06:30:00Z", "2026-03-09T05:30:00Z"},
    {"America/New_York", "0 * * * *", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"},
    {"America/New_York", "*/15 * * * *", "2026-03-08T06:45:00Z", "2026-03-08T07:00:00Z"},
    {"America/New_York", "30 2 * * 0", "2026-03-01T07:30:00Z", "2026-03-08T07:00:00Z"},
    /* America/New_York, autumn: 02:00 EDT falls back to 01:00 EST at 06:00Z on 2026-11-01 */
    {"America/New_York", "30 1 * * *", "2026-10-31T05:30:00Z", "2026-11-01T05:30:00Z"},
    {"America/New_York", "30 1 * * *", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"},
    {"America/New_York", "30 1 * * *", "2026-11-01T06:00:00Z", "2026-11-02T06:30:00Z"},
    {"America/New_York", "30 2 * * *", "2026-10-31T06:30:00Z", "2026-11-01T07:30:00Z"},
    {"America/New_York", "0 * * * *", "2026-11-01T05:00:00Z", "2026-11-01T06:00:00Z"},
    {"America/New_York", "0 * * * *", "2026-11-01T06:00:00Z", "2026-11-01T07:00:00Z"},
    {"America/New_York", "30 * * * *", "2026-11-01T05:30:00Z", "2026-11-01T06:30:00Z"},
    {"America/New_York", "*/15 * * * *", "2026-11-01T05:45:00Z", "2026-11-01T06:00:00Z"},
    {"America/New_York", "30 1 * * 0", "2026-10-26T00:00:00Z", "2026-11-01T05:30:00Z"},
    {"America/New_York", "30 1 * * 0", "2026-11-01T05:30:00Z", "2026-11-08T06:30:00Z"},
    /* 2040: past the files' tables, the footer rule decides */
    {"Europe/Berlin", "30 2 * * *", "2040-03-24T01:30:00Z", "2040-03-25T01:00:00Z"},
    {"Europe/Berlin", "30 2 * * *", "2040-10-27T00:30:00Z", "2040-10-28T00:30:00Z"},
    {"Europe/Berlin", "30 2 * * *", "2040-10-28T00:30:00Z", "2040-10-29T01:30:00Z"},
    {"Europe/Berlin", "0 * * * *", "2040-10-28T00:00:00Z", "2040-10-28T01:00:00Z"},
    {"America/New_York", "30 2 * * *", "2040-03-10T07:30:00Z", "2040-03-11T07:00:00Z"},
    {"America/New_York", "30 1 * * *", "2040-11-04T05:30:00Z", "2040-11-05T06:30:00Z"},
    /* southern hemisphere: Sydney springs forward in October */
    {"Australia/Sydney", "30 2 * * *", "2026-10-02T16:30:00Z", "2026-10-03T16:00:00Z"},
    {"Australia/Sydney", "30 2 * * *", "2040-10-05T16:30:00Z", "2040-10-06T16:00:00Z"},
    /* no DST */
    {"Asia/Tokyo", "0 9 * * *", "2026-03-28T00:00:00Z", "2026-03-29T00:00:00Z"},
    {"Asia/Tokyo", "30 2 * * *", "2026-03-28T00:00:00Z", "2026-03-28T17:30:00Z"},
    {"Asia/Tokyo", "0 * * * *", "2026-10-25T00:10:00Z", "2026-10-25T01:00:00Z"},
    {"Asia/Tokyo", "0 0 1 1 *", "2040-06-01T00:00:00Z", "2040-12-31T15:00:00Z"},
    /* "every" ignores the zone; UTC is UTC */
    {"Europe/Berlin", "every 1h", "2026-03-29T00:30:00Z", "2026-03-29T01:00:00Z"},
    {"UTC", "30 2 * * *", "2026-03-28T02:30:00Z", "2026-03-29T02:30:00Z"},
};

static void next_fires_follow_local_time(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof nexts / sizeof nexts[0]; i++) {
        struct cron c;
        struct err e = {0};
        if (cron_parse(nexts[i].expr, &c, &e) < 0)
            fail_msg("%s: %s", nexts[i].expr, err_msg(&e));
        int64_t got = cron_next_tz(&c, zone(nexts[i].zone), at(nexts[i].after));
        int64_t want = at(nexts[i].next);
        if (got != want) {
            char g[32], w[32];
            when_format_iso(got, g, sizeof g);
            when_format_iso(want, w, sizeof w);
            fail_msg("%s '%s' after %s: %s, want %s", nexts[i].zone, nexts[i].expr, nexts[i].after,
                     g, w);
        }
    }
}

/* Hourly and quarter-hourly schedules keep their pace in absolute time through a whole year. */
static void hourly_keeps_its_pace_all_year(void **state)
{
    (void)state;
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Sydney"};
    static const struct {
        const char *expr;
        int64_t step;
    } ex[] = {{"0 * * * *", 3600000}, {"*/15 * * * *", 900000}};
    for (size_t zi = 0; zi < 3; zi++)
        for (size_t k = 0; k < 2; k++) {
            struct cron c;
            assert_int_equal(cron_parse(ex[k].expr, &c, NULL), 0);
            int64_t t = at("2026-01-01T00:00:00Z");
            for (int i = 0; i < 9000; i++) {
                int64_t n = cron_next_tz(&c, zone(zones[zi]), t);
                if (n - t != ex[k].step)
                    fail_msg("%s '%s': %lld ms after %lld", zones[zi], ex[k].expr,
                             (long long)(n - t), (long long)t);
                t = n;
            }
        }
}

/* A daily schedule fires exactly once per local day, every day of the year. */
static void daily_fires_once_a_day(void **state)
{
    (void)state;
    static const char *const exprs[] = {"30 2 * * *", "30 1 * * *", "0 3 * * *", "59 23 * * *"};
    static const char *const zones[] = {"Europe/Berlin", "America/New_York", "Australia/Sydney",
                                        "Asia/Tokyo"};
    for (size_t zi = 0; zi < 4; zi++)
        for (size_t k = 0; k < 4; k++) {
            struct cron c;
            assert_int_equal(cron_parse(exprs[k], &c, NULL), 0);
            const struct tz *z = zone(zones[zi]);
            int64_t t = at("2026-01-01T00:00:00Z");
            int64_t prev_day = -1;
            for (int i = 0; i < 365; i++) {
                int64_t n = cron_next_tz(&c, z, t);
                assert_true(n > t);
                int64_t day = (n + (int64_t)tz_offset_at(z, n, NULL) * 1000) / 86400000;
                if (prev_day >= 0 && day != prev_day + 1)
                    fail_msg("%s '%s': local day %lld after %lld", zones[zi], exprs[k],
                             (long long)day, (long long)prev_day);
                prev_day = day;
                t = n;
            }
        }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(offsets_match_zdump),
        cmocka_unit_test(every_zdump_transition_matches),
        cmocka_unit_test(next_transition_is_the_change),
        cmocka_unit_test(local_times_resolve),
        cmocka_unit_test(unknown_zones_are_errors),
        cmocka_unit_test(hostile_tzif_bytes_are_rejected),
        cmocka_unit_test(slim_files_follow_the_footer),
        cmocka_unit_test(next_fires_follow_local_time),
        cmocka_unit_test(hourly_keeps_its_pace_all_year),
        cmocka_unit_test(daily_fires_once_a_day),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
