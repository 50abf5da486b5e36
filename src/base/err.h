/*
 * err.h - baram's own error codes. Functions that can fail return 0 or a
 * negative code: a negative errno (libuv codes pass through unchanged), or
 * one of these, which sit below the errno range.
 */
#ifndef BARAM_BASE_ERR_H
#define BARAM_BASE_ERR_H

#define ERR_TABLE(X)                                                                               \
    X(ERR_DB, -10001, "database error")                                                            \
    X(ERR_TOO_BIG, -10002, "value too large")                                                      \
    X(ERR_SYNTAX, -10003, "syntax error")                                                          \
    X(ERR_CANCELLED, -10004, "cancelled")                                                          \
    X(ERR_TEMPLATE, -10005, "template error")

enum err_code {
#define X(name, value, text) name = value,
    ERR_TABLE(X)
#undef X
};

/* Human text for r (negative errno or ERR_*); never NULL, static storage. */
const char *err_str(int r);

#endif
