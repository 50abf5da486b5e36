/*
 * waiter.h - one try of a `wait` sensor (SPEC sections 2 and 7): checks its
 * condition now and then every `every_ms` until it holds or `timeout_ms` has
 * passed. Conditions: a file exists (uv_fs_stat on the libuv thread pool, so
 * a slow disk never blocks the loop) or a URL answers 2xx (a GET through
 * httptask, so it obeys the host's in-flight limit).
 *
 * An http check refused by the host's open circuit breaker (httptask.h) ends
 * the wait at once as WAITER_CIRCUIT_OPEN, "circuit open": the breaker
 * belongs to the host, and every wait on it is refused while it is open
 * (SPEC section 7).
 *
 * A waiter is two uv timers and at most one check in flight: it holds no
 * process and no pool slot while it waits (the run engine should release the
 * task instance's slot, if any, before starting one).
 *
 * The waiter owns its copies of the inputs; the caller owns the loop and the
 * httptask client, which must outlive it. Loop thread only.
 */
#ifndef BARAM_EXEC_WAITER_H
#define BARAM_EXEC_WAITER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "base/compiler.h"

struct httptask_client;
struct waiter;

#define WAITER_MIN_EVERY_MS    10    /* checks never come closer than this */
#define WAITER_HTTP_TIMEOUT_MS 30000 /* one http check; the overall deadline still wins */

#define WAITER_OUTCOME_TABLE(X)                                                                    \
    X(WAITER_MET, "met")                                                                           \
    X(WAITER_TIMED_OUT, "timed_out")                                                               \
    X(WAITER_CIRCUIT_OPEN, "circuit_open")                                                         \
    X(WAITER_CANCELLED, "cancelled")

enum waiter_outcome {
#define X(e, s) e,
    WAITER_OUTCOME_TABLE(X)
#undef X
};

/* Borrowed for the waiter_start() call only. */
struct waiter_opts {
    const char *file;     /* a path that must exist (relative paths resolve against the process's
                             cwd: pass it absolute, joined to the DAG's folder); or NULL */
    const char *http_url; /* a URL that must answer 2xx to a GET (expanded by the caller); or
                             NULL. Exactly one of file and http_url is set. */
    int64_t every_ms;     /* between the end of one check and the start of the next; values
                             under WAITER_MIN_EVERY_MS are raised to it */
    int64_t timeout_ms;   /* from waiter_start(); <= 0 means no deadline */
};

struct waiter_result {
    enum waiter_outcome outcome;
    const char *message; /* for people, never NULL: "file '/data/x.done' exists",
                            "timed out after 6h: file '/data/x.done' does not exist",
                            "timed out after 5m: last check: expected status 2xx, got 503" */
    unsigned checks;     /* checks completed */
    int64_t elapsed_ms;
    int64_t trial_in_ms; /* WAITER_CIRCUIT_OPEN: until the breaker may let a trial through */
};

/* The wait ended; res is borrowed until the callback returns. The waiter is freed by the
 * library afterwards (asynchronously: its timers close on the loop). */
typedef void waiter_done_fn(void *arg, const struct waiter_result *res);

/* Starts waiting: the first check starts at once; done runs exactly once, later (never from
 * within waiter_start), on the loop thread. 0 and *out (valid until done runs; may be NULL),
 * or -EINVAL when not exactly one of file/http_url is set, or http_url is set and http is NULL
 * (then done is never called). */
int waiter_start(uv_loop_t *loop, struct httptask_client *http, const struct waiter_opts *o,
                 waiter_done_fn *done, void *arg, struct waiter **out) WARN_UNUSED;

/* Ends a waiter whose done has not run yet: done runs before waiter_cancel() returns, with
 * WAITER_CANCELLED and message "cancelled". */
void waiter_cancel(struct waiter *w);

const char *waiter_outcome_name(enum waiter_outcome o);

#endif
