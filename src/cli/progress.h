/*
 * progress.h - what `baram run` shows while a run goes (SPEC section 3).
 *
 * On a terminal: one live line on the stream, redrawn at most every 100 ms,
 *   [ 12/40 ] running: extract, shards[3] (+4) 3.2s
 * The total is the instances known when the run began; a for_each that
 * expands later (its items come from an upstream's output) adds its
 * instances as "+N mapped", [ 12/40 +6 mapped ], rather than moving the
 * total the user has been watching.
 * with failures printed above it as they happen. Not on a terminal: one
 * plain line per finished task instance, `12/40 extract success 0.81s`
 * (task finishes only, not every state change), so logs stay short.
 * quiet shows nothing.
 *
 * progress_update has the shape of run_progress_fn (sched/run.h) and is
 * called on the run's loop thread. On a terminal a ticker thread also
 * redraws the line every 100 ms from the last snapshot, so the elapsed time
 * moves while a long task runs with no state change; a mutex guards the
 * snapshot and the stream between the two threads.
 */
#ifndef BARAM_CLI_PROGRESS_H
#define BARAM_CLI_PROGRESS_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "base/hmap.h"
#include "base/vec.h"

struct run_progress;

#define PROGRESS_REDRAW_MS 100
#define PROGRESS_IDS       8
#define PROGRESS_ID_MAX    64

/* The last state reported, copied out of the borrowed struct run_progress. */
struct progress_snap {
    uint32_t total, mapped, done, running, failed; /* total: as at the first report */
    int64_t elapsed_ms;
    int64_t at_ms; /* monotonic time of the report */
    char ids[PROGRESS_IDS][PROGRESS_ID_MAX];
    size_t nids;
    bool valid;
};

struct progress {
    FILE *out;            /* borrowed: stderr usually */
    bool tty;             /* live line mode */
    bool quiet;           /* print nothing */
    bool line_shown;      /* a live line is on screen */
    int64_t last_draw_ms; /* monotonic */
    struct progress_snap snap;
    uint32_t base_total;  /* the instances of the first report (0: none yet) */
    pthread_mutex_t lock; /* guards snap, line_shown, last_draw_ms, out (tty mode) */
    pthread_t ticker;
    bool ticking;        /* the ticker thread runs */
    bool stop;           /* asks the ticker to end (under lock) */
    struct hmap started; /* task id -> index into starts: when each instance began running */
    VEC(char *) ids;     /* owned keys of started */
    VEC(int64_t) starts; /* monotonic ms */
};

/* tty: whether out is a terminal (the caller passes isatty(fileno(out))). ticker: start the
 * redraw thread in tty mode (tests pass false for deterministic output). */
void progress_init(struct progress *p, FILE *out, bool tty, bool quiet, bool ticker);
/* Stops the ticker if it runs and frees everything. */
void progress_release(struct progress *p);

/* A run_progress_fn: ud is the struct progress. */
void progress_update(void *ud, const struct run_progress *rp);

/* Stops the ticker and removes the live line (before the final summary is printed). */
void progress_finish(struct progress *p);

#endif
