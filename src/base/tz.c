/*
 * tz.c - a small TZif reader (RFC 8536) and the two questions a scheduler
 * asks of a zone: which offset is in effect at an instant, and which instant
 * a local wall-clock time names.
 *
 * A zone is its transitions (UTC seconds, ascending), the offset after each,
 * the offset before the first, and the POSIX TZ rule of the file's footer
 * ("CET-1CEST,M3.5.0,M10.5.0/3") for every instant past the table. Debian's
 * tzdata since 2024 ships "slim" files whose table stops where the footer
 * rule takes over, so the rule is not optional: an instant past the table
 * looks at the rule's transitions of its year and the years either side.
 *
 * The C library's localtime_r and mktime follow the process's one TZ, and
 * changing it (setenv + tzset) is not safe in a threaded daemon; this reader
 * holds no global state but the cache of loaded zones (a list under a mutex,
 * zones immutable and never freed once cached, so readers need no lock).
 */
#include "base/tz.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/diag.h"
#include "base/err.h"
#include "base/suggest.h"
#include "base/when.h"
#include "base/xalloc.h"

#define TZ_FILE_MAX   (1024 * 1024)
#define TZ_TIMES_MAX  100000
#define TZ_DEFAULT_US "M3.2.0,M11.1.0" /* POSIX's rule when a dst name has none */

enum tz_rule_kind { TZ_RULE_JULIAN1, TZ_RULE_JULIAN0, TZ_RULE_MONTH };

struct tz_rule {
    enum tz_rule_kind kind;
    int day;         /* Jn: 1..365; n: 0..365; Mm.w.d: d, 0 = Sunday */
    int month, week; /* Mm.w.d */
    int32_t time_s;  /* local time of the change, -167h..167h; default 2h */
};

struct tz {
    char *name;
    int64_t *times; /* transitions, UTC seconds, ascending */
    int32_t *offs;  /* offs[i]: seconds east of UTC from times[i] on */
    size_t ntimes;
    int32_t first; /* offset before the first transition (time type 0) */
    bool has_rule; /* the footer holds a rule; else the last offset lasts */
    int32_t std_off, dst_off;
    bool has_dst;
    struct tz_rule start, end;
    struct tz *next; /* the cache's list */
};

/* ---- the footer's POSIX TZ string -------------------------------------------------------- */

static bool tz_digit(char c)
{
    return c >= '0' && c <= '9';
}

static const char *tz_posix_name(const char *s)
{
    if (*s == '<') {
        const char *e = strchr(s, '>');
        return e && e > s + 1 ? e + 1 : NULL;
    }
    const char *p = s;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))
        p++;
    return p - s >= 3 ? p : NULL;
}

/* [+-]hh[:mm[:ss]] with hh <= maxh, into seconds. */
static const char *tz_posix_time(const char *s, int maxh, int32_t *out)
{
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (i > 0) {
            if (*s != ':')
                break;
            s++;
        }
        if (!tz_digit(*s))
            return NULL;
        int v = 0, nd = 0;
        while (tz_digit(*s) && nd < 3) {
            v = v * 10 + (*s++ - '0');
            nd++;
        }
        if (tz_digit(*s) || (i == 0 ? v > maxh : v > 59))
            return NULL;
        part[i] = v;
    }
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    return s;
}

static const char *tz_posix_num(const char *s, int lo, int hi, int *out)
{
    if (!tz_digit(*s))
        return NULL;
    int v = 0;
    while (tz_digit(*s)) {
        v = v * 10 + (*s++ - '0');
        if (v > hi)
            return NULL;
    }
    if (v < lo)
        return NULL;
    *out = v;
    return s;
}

static const char *tz_posix_rule(const char *s, struct tz_rule *r)
{
    if (*s == 'M') {
        r->kind = TZ_RULE_MONTH;
        if (!(s = tz_posix_num(s + 1, 1, 12, &r->month)) || *s++ != '.' ||
            !(s = tz_posix_num(s, 1, 5, &r->week)) || *s++ != '.' ||
            !(s = tz_posix_num(s, 0, 6, &r->day)))
            return NULL;
    } else if (*s == 'J') {
        r->kind = TZ_RULE_JULIAN1;
        if (!(s = tz_posix_num(s + 1, 1, 365, &r->day)))
            return NULL;
    } else {
        r->kind = TZ_RULE_JULIAN0;
        if (!(s = tz_posix_num(s, 0, 365, &r->day)))
            return NULL;
    }
    r->time_s = 7200;
    if (*s == '/' && !(s = tz_posix_time(s + 1, 167, &r->time_s)))
        return NULL;
    return s;
}

/* The footer's TZ string: 0, or -EINVAL. An empty string means no rule. */
static int tz_posix_parse(struct tz *z, const char *s)
{
    if (!*s)
        return 0;
    int32_t off;
    if (!(s = tz_posix_name(s)) || !(s = tz_posix_time(s, 24, &off)))
        return -EINVAL;
    z->has_rule = true;
    z->std_off = -off; /* POSIX counts west of UTC */
    if (!*s)
        return 0;
    if (!(s = tz_posix_name(s)))
        return -EINVAL;
    z->has_dst = true;
    z->dst_off = z->std_off + 3600;
    if (*s && *s != ',') {
        if (!(s = tz_posix_time(s, 24, &off)))
            return -EINVAL;
        z->dst_off = -off;
    }
    const char *rules = *s == ',' ? s + 1 : TZ_DEFAULT_US;
    if (!(rules = tz_posix_rule(rules, &z->start)) || *rules++ != ',' ||
        !(rules = tz_posix_rule(rules, &z->end)) || *rules)
        return -EINVAL;
    if (*s != ',' && *s)
        return -EINVAL;
    return 0;
}

static bool tz_leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* The UTC second a rule names in year y, for a clock at offset before (seconds east). */
static int64_t tz_rule_at(const struct tz_rule *r, int y, int32_t before)
{
    int64_t days = when_days_from_civil(y, 1, 1);
    switch (r->kind) {
    case TZ_RULE_JULIAN1:
        days += r->day - 1 + (tz_leap(y) && r->day >= 60 ? 1 : 0);
        break;
    case TZ_RULE_JULIAN0:
        days += r->day;
        break;
    case TZ_RULE_MONTH: {
        static const int dim[13] = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int n = r->month == 2 && tz_leap(y) ? 29 : dim[r->month];
        int64_t first = when_days_from_civil(y, (unsigned)r->month, 1);
        int wd1 = (int)(((first + 4) % 7 + 7) % 7); /* 1970-01-01 was a Thursday */
        int d = 1 + (r->day - wd1 + 7) % 7 + 7 * (r->week - 1);
        while (d > n)
            d -= 7;
        days = first + d - 1;
        break;
    }
    }
    return days * 86400 + r->time_s - before;
}

static int64_t tz_floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* The rule's offset at second t, and its next change after t (TZ_NONE without dst). */
static int32_t tz_rule_offset(const struct tz *z, int64_t t, int64_t *next)
{
    *next = TZ_NONE;
    if (!z->has_dst)
        return z->std_off;
    int y;
    unsigned m, d;
    when_civil_from_days(tz_floor_div(t, 86400), &y, &m, &d);
    int64_t at[6];
    int32_t off[6];
    for (int i = 0; i < 3; i++) {
        at[2 * i] = tz_rule_at(&z->start, y - 1 + i, z->std_off);
        off[2 * i] = z->dst_off;
        at[2 * i + 1] = tz_rule_at(&z->end, y - 1 + i, z->dst_off);
        off[2 * i + 1] = z->std_off;
    }
    int64_t best = INT64_MIN;
    int32_t cur = z->std_off;
    for (int i = 0; i < 6; i++) {
        if (at[i] <= t && at[i] > best) {
            best = at[i];
            cur = off[i];
        }
        if (at[i] > t && at[i] < *next)
            *next = at[i];
    }
    return cur;
}

/* ---- the TZif file ------------------------------------------------------------------------ */

static uint32_t tz_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t tz_be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)tz_be32(p) << 32 | tz_be32(p + 4));
}

struct tz_hdr {
    uint32_t isut, isstd, leap, time, type, chars;
};

static int tz_header(const unsigned char *p, size_t len, struct tz_hdr *h, char *version)
{
    if (len < 44 || memcmp(p, "TZif", 4) != 0)
        return -EINVAL;
    *version = (char)p[4];
    h->isut = tz_be32(p + 20);
    h->isstd = tz_be32(p + 24);
    h->leap = tz_be32(p + 28);
    h->time = tz_be32(p + 32);
    h->type = tz_be32(p + 36);
    h->chars = tz_be32(p + 40);
    if (h->type < 1 || h->type > 256 || h->time > TZ_TIMES_MAX || h->chars > 65536 ||
        h->leap > 65536 || h->isut > h->type || h->isstd > h->type)
        return -EINVAL;
    return 0;
}

static size_t tz_block_len(const struct tz_hdr *h, size_t tsize)
{
    return h->time * tsize + h->time + h->type * 6 + h->chars + h->leap * (tsize + 4) + h->isstd +
           h->isut;
}

int tz_parse(const char *name, const unsigned char *data, size_t len, struct tz **out,
             struct err *e)
{
    struct tz_hdr h;
    char version;
    if (tz_header(data, len, &h, &version) < 0)
        return err_set(e, -EINVAL, "time zone '%s': not a TZif file", name);
    const unsigned char *p = data + 44;
    size_t rest = len - 44, tsize = 4;
    if (version >= '2') { /* skip the 32-bit block, read the 64-bit one */
        size_t skip = tz_block_len(&h, 4);
        if (rest < skip || tz_header(p + skip, rest - skip, &h, &version) < 0)
            return err_set(e, -EINVAL, "time zone '%s': bad TZif file", name);
        p += skip + 44;
        rest -= skip + 44;
        tsize = 8;
    }
    size_t blen = tz_block_len(&h, tsize);
    if (rest < blen)
        return err_set(e, -EINVAL, "time zone '%s': truncated TZif file", name);
    const unsigned char *times = p, *idx = p + h.time * tsize, *types = idx + h.time;
    struct tz *z = xcalloc(1, sizeof *z);
    z->name = xstrdup(name);
    z->ntimes = h.time;
    z->times = xmalloc((h.time ? h.time : 1) * sizeof *z->times);
    z->offs = xmalloc((h.time ? h.time : 1) * sizeof *z->offs);
    int32_t type_off[256];
    for (uint32_t i = 0; i < h.type; i++) {
        type_off[i] = (int32_t)tz_be32(types + 6 * i);
        if (type_off[i] < -25 * 3600 || type_off[i] > 26 * 3600)
            goto bad;
    }
    z->first = type_off[0];
    for (uint32_t i = 0; i < h.time; i++) {
        z->times[i] = tsize == 8 ? tz_be64(times + 8 * i) : (int32_t)tz_be32(times + 4 * i);
        if (idx[i] >= h.type || (i > 0 && z->times[i] <= z->times[i - 1]))
            goto bad;
        z->offs[i] = type_off[idx[i]];
    }
    if (version >= '2') {
        const char *f = (const char *)p + blen;
        size_t flen = rest - blen;
        const char *nl = flen > 0 && f[0] == '\n' ? memchr(f + 1, '\n', flen - 1) : NULL;
        if (!nl || nl - f - 1 > 255)
            goto bad;
        char footer[256];
        memcpy(footer, f + 1, (size_t)(nl - f - 1));
        footer[nl - f - 1] = 0;
        if (tz_posix_parse(z, footer) < 0)
            goto bad;
    }
    *out = z;
    return 0;
bad:
    tz_free(z);
    return err_set(e, -EINVAL, "time zone '%s': bad TZif file", name);
}

void tz_free(struct tz *z)
{
    if (!z)
        return;
    free(z->name);
    free(z->times);
    free(z->offs);
    free(z);
}

const char *tz_name(const struct tz *z)
{
    return z->name;
}

/* ---- offsets and wall times ---------------------------------------------------------------- */

int32_t tz_offset_at(const struct tz *z, int64_t at_ms, int64_t *next_ms)
{
    int64_t t = tz_floor_div(at_ms, 1000), next = TZ_NONE;
    int32_t off;
    if (z->ntimes == 0 || t < z->times[0]) {
        off = z->first;
        if (z->ntimes)
            next = z->times[0];
        else if (z->has_rule)
            off = tz_rule_offset(z, t, &next);
    } else if (t >= z->times[z->ntimes - 1]) {
        if (z->has_rule)
            off = tz_rule_offset(z, t, &next);
        else
            off = z->offs[z->ntimes - 1];
    } else {
        size_t lo = 0, hi = z->ntimes - 1; /* times[lo] <= t < times[hi] */
        while (hi - lo > 1) {
            size_t mid = lo + (hi - lo) / 2;
            if (z->times[mid] <= t)
                lo = mid;
            else
                hi = mid;
        }
        off = z->offs[lo];
        next = z->times[hi];
    }
    if (next_ms)
        *next_ms = next == TZ_NONE || next > INT64_MAX / 1000 ? TZ_NONE : next * 1000;
    return off;
}

int64_t tz_from_local(const struct tz *z, int64_t wall_ms)
{
    /* Walk the periods from two days before: the first whose local span holds the wall time
     * gives its first occurrence; a wall time that falls before a period's local start (and
     * after the previous one's end) was skipped, and the period's start is the next valid
     * instant. Offsets stay within +-26h, so the first period starts before any answer. */
    int64_t x = wall_ms - 2 * 86400000LL, u = wall_ms;
    for (int i = 0; i < 64; i++) {
        int64_t next;
        int32_t off = tz_offset_at(z, x, &next);
        u = wall_ms - (int64_t)off * 1000;
        if (u < x)
            return x;
        if (u < next)
            return u;
        x = next;
    }
    return u;
}

void tz_format(const struct tz *z, int64_t at_ms, char *out, size_t cap)
{
    int32_t off = z ? tz_offset_at(z, at_ms, NULL) : 0;
    char iso[32];
    when_format_iso(at_ms + (int64_t)off * 1000, iso, sizeof iso);
    iso[19] = 0; /* drop ".mmmZ" */
    if (!z) {
        snprintf(out, cap, "%sZ", iso);
        return;
    }
    int32_t a = off < 0 ? -off : off;
    snprintf(out, cap, "%s%c%02d:%02d", iso, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

/* ---- loading by name ---------------------------------------------------------------------- */

static pthread_mutex_t tz_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tz *tz_cache;

static const char *tz_dir(void)
{
    const char *d = getenv("TZDIR");
    return d && *d ? d : "/usr/share/zoneinfo";
}

/* IANA names: letters, digits, '_', '-', '+', components joined by '/', none starting with
 * '.' (so no "..", no hidden files), no leading '/'. */
static bool tz_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > TZ_NAME_MAX || name[0] == '/' || name[n - 1] == '/')
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (c == '.' && (i == 0 || name[i - 1] == '/'))
            return false;
        if (c == '/' && name[i + 1] == '/')
            return false;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || tz_digit(c) || c == '_' ||
              c == '-' || c == '+' || c == '/' || c == '.'))
            return false;
    }
    return true;
}

static int tz_read(const char *path, struct buf *b)
{
    /* tzdata links many names (UTC, US/Eastern): links are followed; only TZif bytes count */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0)
        return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > TZ_FILE_MAX) {
        close(fd);
        return -ENOENT;
    }
    char chunk[8192];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) > 0)
        if (buf_add(b, chunk, (size_t)r) < 0 || b->len > TZ_FILE_MAX) {
            close(fd);
            return -EINVAL;
        }
    close(fd);
    return r < 0 ? -EIO : 0;
}

/* Every zone name under dir/rel, for the did-you-mean: names whose components start with a
 * capital letter (not posix/, right/, zone.tab...). */
static void tz_list(const char *dir, const char *rel, char ***names, size_t *n, size_t *cap,
                    int depth)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s%s%s", dir, *rel ? "/" : "", rel);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *de;
    while ((de = readdir(d)) && *n < 4096) {
        if (de->d_name[0] < 'A' || de->d_name[0] > 'Z' || strchr(de->d_name, '.'))
            continue;
        char sub[PATH_MAX];
        snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", de->d_name);
        if (de->d_type == DT_DIR) {
            if (depth < 3)
                tz_list(dir, sub, names, n, cap, depth + 1);
            continue;
        }
        if (*n == *cap) {
            *cap = *cap ? 2 * *cap : 256;
            *names = xrealloc(*names, *cap * sizeof **names);
        }
        (*names)[(*n)++] = xstrdup(sub);
    }
    closedir(d);
}

static int tz_unknown(const char *name, struct err *e)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    const char *near = NULL;
    if (tz_name_ok(name)) {
        tz_list(tz_dir(), "", &names, &n, &cap, 0);
        for (size_t i = 0; i < n && !near; i++)
            if (strcasecmp(names[i], name) == 0)
                near = names[i];
        if (!near)
            near = suggest_closest(name, (const char *const *)names, n);
    }
    int r;
    if (near)
        r = err_set(e, -ENOENT, "unknown time zone '%.64s'; did you mean '%s'?", name, near);
    else
        r = err_set(e, -ENOENT, "unknown time zone '%.64s' (an IANA name such as Europe/Berlin)",
                    name);
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return r;
}

/* "UTC" needs no file: a zone without transitions and with offset 0. */
static struct tz *tz_utc(const char *name)
{
    struct tz *z = xcalloc(1, sizeof *z);
    z->name = xstrdup(name);
    z->times = xmalloc(sizeof *z->times);
    z->offs = xmalloc(sizeof *z->offs);
    return z;
}

int tz_get(const char *name, const struct tz **out, struct err *e)
{
    if (!name || !tz_name_ok(name))
        return tz_unknown(name ? name : "", e);
    pthread_mutex_lock(&tz_lock);
    for (struct tz *z = tz_cache; z; z = z->next)
        if (strcmp(z->name, name) == 0) {
            *out = z;
            pthread_mutex_unlock(&tz_lock);
            return 0;
        }
    pthread_mutex_unlock(&tz_lock);

    struct tz *z = NULL;
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", tz_dir(), name);
    struct buf b = BUF_INIT(TZ_FILE_MAX + 8192);
    int r = tz_read(path, &b);
    if (r < 0 && strcmp(name, "UTC") == 0) {
        z = tz_utc(name);
        r = 0;
    } else if (r < 0) {
        buf_release(&b);
        return tz_unknown(name, e);
    } else if (b.len < 4 || memcmp(b.data, "TZif", 4) != 0) { /* zone.tab, tzdata.zi... */
        buf_release(&b);
        return tz_unknown(name, e);
    } else {
        r = tz_parse(name, (const unsigned char *)b.data, b.len, &z, e);
    }
    buf_release(&b);
    if (r < 0)
        return r;
    pthread_mutex_lock(&tz_lock);
    for (struct tz *c = tz_cache; c; c = c->next) /* another thread loaded it meanwhile */
        if (strcmp(c->name, name) == 0) {
            pthread_mutex_unlock(&tz_lock);
            tz_free(z);
            *out = c;
            return 0;
        }
    z->next = tz_cache;
    tz_cache = z;
    pthread_mutex_unlock(&tz_lock);
    *out = z;
    return 0;
}

int tz_get_diag(const char *name, const struct tz **out, struct diag *d, const char *file, int line,
                int col)
{
    struct err e = {0};
    int r = tz_get(name, out, &e);
    if (r == 0)
        return 0;
    const char *msg = err_msg(&e), *hint = strstr(msg, "; did you mean ");
    diag_err(d, file, line, col, "%.*s", hint ? (int)(hint - msg) : (int)strlen(msg), msg);
    if (hint)
        diag_hint(d, "%s", hint + 2);
    return r;
}
