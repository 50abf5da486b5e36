/*
 * err.c - text for baram's error codes and negative errno values.
 * Stateless; any thread.
 */
#include "base/err.h"

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
