/*
 * err.h - baram's own error codes, and struct err, the one shape of a
 * failure with words (docs/architecture.md, "Errors"). Functions that can
 * fail return 0 or a negative code: a negative errno (libuv codes pass
 * through unchanged), or one of these, which sit below the errno range.
 * A caller that wants to tell a person why passes a struct err it owns,
 * which the callee fills.
 */
#ifndef BARAM_BASE_ERR_H
#define BARAM_BASE_ERR_H

#include <limits.h>

#include "base/compiler.h"

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

/* One failure: its code and a message for people, in storage the caller owns (usually its
 * stack), filled by the callee. Nothing is allocated, nothing outlives the caller's struct,
 * nothing is kept in the callee (no sticky "last error", no thread-local buffer): curl's
 * error buffer, git's strbuf *err. A function taking one documents "or a negative code with
 * *e filled"; e may be NULL when the caller wants the code only. */
/* Room for two whole paths (the store's messages quote a database path and a folder of it, each
 * up to PATH_MAX) and their words: 8.5 KiB, so a struct err lives on a stack, once per call that
 * can fail, never in a per-task or per-connection struct. */
#define ERR_MSG_MAX (2 * PATH_MAX + 512)
struct err {
    int code;              /* 0: no failure; else what the function returned */
    char msg[ERR_MSG_MAX]; /* lower case, no final period, cut at ERR_MSG_MAX - 1 bytes */
};

/* Fills e (when not NULL) with code and the message; returns code, so a failure reads
 * `return err_set(e, -EINVAL, "month %d out of range 1-12", m);`. Any thread. */
int err_set(struct err *e, int code, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* e's message, or the text of its code when it has none ("" when there is no failure):
 * borrowed from e, or static. Never NULL. */
const char *err_msg(const struct err *e);

#endif
