/*
 * log.h - the daemon's own log: one logfmt line per event on stderr
 * (SPEC section 10): ts=2026-11-29T03:00:00.000Z level=info msg="run started" run=...
 *
 * The macros test the level before evaluating their arguments. Key/value
 * pairs are given as a printf format whose values log.c does not quote: use
 * log_q() for values that may hold spaces or quotes. Never log tokens,
 * passwords, Authorization headers or env values.
 *
 * Settings are written once by main() before threads start; any thread logs.
 */
#ifndef BARAM_BASE_LOG_H
#define BARAM_BASE_LOG_H

#include <stdio.h>

#include "base/compiler.h"

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

void log_set_level(enum log_level l);
enum log_level log_get_level(void);
/* Parses "debug" | "info" | "warn" | "error" | "off": 0, or -EINVAL. */
int log_parse_level(const char *s, enum log_level *out);
void log_set_stream(FILE *f);

/* msg is quoted; kvfmt (may be NULL or "") is appended as given: "run=%s task=%s". */
void log__emit(enum log_level l, const char *msg, const char *kvfmt, ...) PRINTF_LIKE(3, 4);

#define log_at(l, msg, ...)                                                                        \
    do {                                                                                           \
        if ((l) >= log_get_level())                                                                \
            log__emit((l), (msg), __VA_ARGS__);                                                    \
    } while (0)
#define log_debug(msg, ...) log_at(LOG_DEBUG, (msg), __VA_ARGS__)
#define log_info(msg, ...)  log_at(LOG_INFO, (msg), __VA_ARGS__)
#define log_warn(msg, ...)  log_at(LOG_WARN, (msg), __VA_ARGS__)
#define log_error(msg, ...) log_at(LOG_ERROR, (msg), __VA_ARGS__)

/* Returns a logfmt-quoted copy of s in one of 8 rotating thread-local buffers (each 512 bytes,
 * longer values are cut): for use as a %s argument of the log macros only. */
const char *log_q(const char *s);

#endif
