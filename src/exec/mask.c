/*
 * mask.c - see mask.h. A plain multi-value matcher: a table of the bytes
 * values start with lets the scan copy runs of other bytes at once; at a
 * candidate position each value (longest first) is compared. A try has a
 * handful of secrets, so this costs a memcmp or two per candidate byte.
 */
#include "exec/mask.h"

#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/err.h"
#include "base/xalloc.h"

static int mask_pat_cmp(const void *a, const void *b)
{
    size_t x = ((const struct mask_pat *)a)->len, y = ((const struct mask_pat *)b)->len;
    return x < y ? 1 : x > y ? -1 : 0;
}

void mask_init(struct mask *m, const char *const *vals, const size_t *lens, size_t n)
{
    memset(m, 0, sizeof(*m));
    m->pats = xcalloc(n ? n : 1, sizeof(*m->pats));
    for (size_t i = 0; i < n; i++) {
        if (lens[i] < MASK_MIN_LEN)
            continue;
        bool dup = false;
        for (size_t j = 0; j < m->npats && !dup; j++)
            dup = m->pats[j].len == lens[i] && memcmp(m->pats[j].p, vals[i], lens[i]) == 0;
        if (dup)
            continue;
        struct mask_pat *p = &m->pats[m->npats++];
        p->p = xmalloc(lens[i]);
        memcpy(p->p, vals[i], lens[i]);
        p->len = lens[i];
        m->first[(unsigned char)vals[i][0]] = true;
        if (lens[i] > m->max_len)
            m->max_len = lens[i];
    }
    qsort(m->pats, m->npats, sizeof(*m->pats), mask_pat_cmp);
    m->held = xmalloc(m->max_len ? m->max_len : 1);
}

bool mask_empty(const struct mask *m)
{
    return m->npats == 0;
}

void mask_release(struct mask *m)
{
    for (size_t i = 0; i < m->npats; i++)
        free(m->pats[i].p);
    free(m->pats);
    free(m->held);
    memset(m, 0, sizeof(*m));
}

/* At s[0..rem): the length of the longest value that starts there (0: none), or -1 when
 * !final and s[0..rem) is a proper prefix of a longer value, which more bytes could finish. */
static long mask_match(const struct mask *m, const char *s, size_t rem, bool final)
{
    for (size_t i = 0; i < m->npats; i++) { /* longest first */
        const struct mask_pat *p = &m->pats[i];
        if (p->len <= rem) {
            if (memcmp(p->p, s, p->len) == 0)
                return (long)p->len;
        } else if (!final && memcmp(p->p, s, rem) == 0) {
            return -1;
        }
    }
    return 0;
}

/* Masks s[0..n) into out; returns how many bytes were consumed (the rest may start a value
 * and must wait, unless final), or -1 past out's max. */
static long mask_scan(const struct mask *m, const char *s, size_t n, bool final, struct buf *out)
{
    size_t i = 0, run = 0; /* s[run..i) is plain text not yet appended */
    while (i < n) {
        if (!m->first[(unsigned char)s[i]]) {
            i++;
            continue;
        }
        long k = mask_match(m, s + i, n - i, final);
        if (k == 0) {
            i++;
            continue;
        }
        if (buf_add(out, s + run, i - run) < 0)
            return -1;
        if (k < 0)
            return (long)i;
        if (buf_add(out, MASK_REPLACEMENT, sizeof(MASK_REPLACEMENT) - 1) < 0)
            return -1;
        i += (size_t)k;
        run = i;
    }
    if (buf_add(out, s + run, n - run) < 0)
        return -1;
    return (long)n;
}

int mask_feed(struct mask *m, const char *data, size_t n, struct buf *out)
{
    if (m->npats == 0) {
        return buf_add(out, data, n);
    }
    size_t start = out->len;
    /* What is held is shorter than max_len: join it with just enough of data to decide it. */
    while (m->nheld && n) {
        size_t take = m->max_len - m->nheld < n ? m->max_len - m->nheld : n;
        char *tmp = xmalloc(m->nheld + take);
        memcpy(tmp, m->held, m->nheld);
        memcpy(tmp + m->nheld, data, take);
        long used = mask_scan(m, tmp, m->nheld + take, false, out);
        if (used < 0) {
            free(tmp);
            buf_truncate(out, start);
            return ERR_TOO_BIG;
        }
        size_t u = (size_t)used, total = m->nheld + take;
        if (u >= m->nheld) { /* the held bytes are decided; go on in data itself */
            free(tmp);
            data += u - m->nheld;
            n -= u - m->nheld;
            m->nheld = 0;
            break;
        }
        /* Still undecided from tmp[u]: keep it held (shorter than max_len) and go on. */
        memmove(m->held, tmp + u, total - u);
        free(tmp);
        m->nheld = total - u;
        data += take;
        n -= take;
    }
    if (!n)
        return 0;
    long used = mask_scan(m, data, n, false, out);
    if (used < 0) {
        buf_truncate(out, start);
        return ERR_TOO_BIG;
    }
    memcpy(m->held, data + used, n - (size_t)used);
    m->nheld = n - (size_t)used;
    return 0;
}

int mask_flush(struct mask *m, struct buf *out)
{
    if (!m->nheld)
        return 0;
    if (mask_scan(m, m->held, m->nheld, true, out) < 0)
        return ERR_TOO_BIG;
    m->nheld = 0;
    return 0;
}

char *mask_string(struct mask *m, const char *s, size_t n, size_t *outlen)
{
    struct buf b = BUF_INIT(BUF_NO_MAX); /* no maximum: nothing can fail */
    if (m->npats == 0 && buf_add(&b, s, n) < 0)
        return NULL;
    if (m->npats && mask_scan(m, s, n, true, &b) < 0)
        return NULL;
    return buf_detach(&b, outlen);
}
