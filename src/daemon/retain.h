/*
 * retain.h - the scheduler's retention timer (SPEC section 13, `retention:`
 * in baram.yaml): at start and every retention.every, one pass of
 * ops_retention (ops/retention.h) on the libuv thread pool, on a connection
 * of its own opened for the pass, so the loop and the daemon's job queue
 * never wait on it. A pass still running when the timer fires again is not
 * doubled. On PostgreSQL one scheduler at a time applies it (an advisory
 * lock): the others skip their pass.
 *
 * Loop thread, except the pass itself (thread pool).
 */
#ifndef BARAM_DAEMON_RETAIN_H
#define BARAM_DAEMON_RETAIN_H

#include <stdbool.h>
#include <stdint.h>

struct uv_loop_s;

struct retain_opts {
    const char *home;       /* borrowed for the timer's life: its logs/ folder */
    const char *store_url;  /* borrowed likewise */
    int64_t runs_ms;        /* retention.runs; 0: runs are kept */
    int64_t logs_ms;        /* retention.logs; 0: logs are kept with their runs */
    int64_t every_ms;       /* retention.every; <= 0: 1h */
    void (*idle)(void *ud); /* called on the loop when a pass has ended */
    void *ud;
};

struct retain;

/* Starts the timer (the first pass at once): NULL when neither runs_ms nor logs_ms is set. */
struct retain *retain_start(struct uv_loop_s *loop, const struct retain_opts *o);
/* Whether a pass is running (the daemon waits for it before it stops). NULL: false. */
bool retain_busy(const struct retain *r);
/* Starts no pass any more (the daemon is stopping). NULL: nothing. */
void retain_stop(struct retain *r);
/* Stops the timer and frees r once closed (a pass must not be running). NULL: nothing. */
void retain_close(struct retain *r);

#endif
