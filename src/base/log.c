/*
 * log.c - logfmt lines on stderr; see log.h. The level and stream are
 * globals written by main() before any thread starts (STYLE.md 6); each line
 * is formatted into a local buffer and written with one fputs so lines from
 * different threads do not interleave.
 */
#include "base/log.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>

#include "base/when.h"

static enum log_level log_level = LOG_INFO; /* written by main() only */
static FILE *log_stream;                    /* NULL = stderr */

void log_set_level(enum log_level l)
{
    log_level = l;
}

enum log_level log_get_level(void)
{
    return log_level;
}

void log_set_stream(FILE *f)
{
    log_stream = f;
}

int log_parse_level(const char *s, enum log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++) {
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -EINVAL;
}

static void quote_into(char *dst, size_t cap, const char *s)
{
    size_t o = 0;
    int need = s[0] == 0;
    for (const char *p = s; *p; p++)
        if (*p == ' ' || *p == '"' || *p == '=' || *p == '\\' || (unsigned char)*p < 0x20)
            need = 1;
    if (!need) {
        snprintf(dst, cap, "%s", s);
        return;
    }
    dst[o++] = '"';
    for (const char *p = s; *p && o + 4 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            dst[o++] = '\\';
            dst[o++] = (char)c;
        } else if (c == '\n') {
            dst[o++] = '\\';
            dst[o++] = 'n';
        } else if (c < 0x20) {
            dst[o++] = ' ';
        } else {
            dst[o++] = (char)c;
        }
    }
    dst[o++] = '"';
    dst[o] = 0;
}

const char *log_q(const char *s)
{
    static _Thread_local char ring[8][512];
    static _Thread_local int next;
    char *dst = ring[next++ & 7];
    quote_into(dst, 512, s ? s : "");
    return dst;
}

void log__emit(enum log_level l, const char *msg, const char *kvfmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    char line[4096], ts[32], qmsg[512];
    when_format_iso(when_now_ms(), ts, sizeof ts);
    quote_into(qmsg, sizeof qmsg, msg);
    int n = snprintf(line, sizeof line, "ts=%s level=%s msg=%s", ts, names[l], qmsg);
    if (n < 0)
        return;
    if (kvfmt && kvfmt[0] && (size_t)n + 2 < sizeof line) {
        line[n++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int k = vsnprintf(line + n, sizeof line - (size_t)n, kvfmt, ap);
        va_end(ap);
        if (k > 0)
            n += k;
        if ((size_t)n >= sizeof line - 1)
            n = (int)sizeof line - 2;
    }
    line[n++] = '\n';
    line[n] = 0;
    fputs(line, log_stream ? log_stream : stderr);
}
