/*
 * diag.c - collecting and printing diagnostics; see diag.h. Not thread-safe.
 */
#include "base/diag.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>

#include "base/buf.h"
#include "base/xalloc.h"

void diag_init(struct diag *d)
{
    d->v = NULL;
    d->n = d->cap = d->errors = 0;
}

void diag_release(struct diag *d)
{
    for (size_t i = 0; i < d->n; i++) {
        free(d->v[i].file);
        free(d->v[i].msg);
        free(d->v[i].hint);
    }
    free(d->v);
    diag_init(d);
}

static char *vformat(const char *fmt, va_list ap)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    if (buf_vaddf(&b, fmt, ap) < 0)
        buf_reset(&b);
    return buf_detach(&b, NULL);
}

int diag__add(struct diag *d, enum diag_level level, const char *file, int line, int col,
              const char *src_file, int src_line, const char *fmt, ...)
{
    xgrow((void **)&d->v, &d->cap, d->n + 1, sizeof *d->v);
    struct diag_entry *e = &d->v[d->n++];
    e->level = level;
    e->file = xstrdup(file ? file : "");
    e->line = line;
    e->col = col;
    va_list ap;
    va_start(ap, fmt);
    e->msg = vformat(fmt, ap);
    va_end(ap);
    e->hint = NULL;
    e->src_file = src_file;
    e->src_line = src_line;
    if (level == DIAG_ERROR)
        d->errors++;
    return -EINVAL;
}

void diag_hint(struct diag *d, const char *fmt, ...)
{
    if (!d->n)
        return;
    struct diag_entry *e = &d->v[d->n - 1];
    free(e->hint);
    va_list ap;
    va_start(ap, fmt);
    e->hint = vformat(fmt, ap);
    va_end(ap);
}

const char *diag_level_name(enum diag_level l)
{
    switch (l) {
    case DIAG_ERROR:
        return "error";
    case DIAG_WARNING:
        return "warning";
    case DIAG_NOTE:
        return "note";
    }
    return "error";
}

char *diag_format(const struct diag_entry *e)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    int r = 0;
    if (e->line > 0)
        r |= buf_addf(&b, "%s:%d:%d: ", e->file, e->line, e->col > 0 ? e->col : 1);
    else if (e->file[0])
        r |= buf_addf(&b, "%s: ", e->file);
    r |= buf_addf(&b, "%s: ", diag_level_name(e->level));
    char *msg = diag_message(e);
    r |= buf_adds(&b, msg);
    free(msg);
    (void)r;
    return buf_detach(&b, NULL);
}

char *diag_message(const struct diag_entry *e)
{
    struct buf b = BUF_INIT(BUF_NO_MAX);
    int r = buf_adds(&b, e->msg ? e->msg : "");
    if (e->hint)
        r |= buf_addf(&b, " (%s)", e->hint);
    (void)r;
    return buf_detach(&b, NULL);
}

void diag_print(const struct diag *d, FILE *out, int debug)
{
    for (size_t i = 0; i < d->n; i++) {
        char *s = diag_format(&d->v[i]);
        if (debug)
            fprintf(out, "%s [%s:%d]\n", s, d->v[i].src_file, d->v[i].src_line);
        else
            fprintf(out, "%s\n", s);
        free(s);
    }
}
