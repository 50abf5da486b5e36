/*
 * err.c - text for baram's error codes and negative errno values, and
 * struct err. Stateless; any thread.
 */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *err_str(int r)
{
    switch (r) {
#define X(name, value, text)                                                                       \
    case value:                                                                                    \
        return text;
        ERR_TABLE(X)
#undef X
    default:
        break;
    }
    if (r < 0 && r > -4096)
        return strerror(-r);
    return "unknown error";
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
    if (!e)
        return code;
    e->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
    va_end(ap);
    return code;
}

const char *err_msg(const struct err *e)
{
    if (!e || e->code == 0)
        return "";
    return e->msg[0] ? e->msg : err_str(e->code);
}
