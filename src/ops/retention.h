/*
 * retention.h - retention (SPEC section 13): deletes the finished runs that
 * ended before a cutoff, with their task instances, tries and log files, and
 * removes only the log files (and stored logs) of the runs that ended before
 * an earlier cutoff. In batches of RETENTION_BATCH runs, one transaction
 * each, so the scheduler's writer is never held long. The scheduler runs it
 * on its thread pool every retention.every (`retention:` in baram.yaml);
 * `baram db clean` runs it by hand.
 *
 * Log files are removed from HOME/logs/<dag>/<run_id>/ of the home given;
 * a worker's copies on other hosts stay (their store copies, PostgreSQL's
 * try_logs, go). Queued and running runs are never touched.
 *
 * Any thread that may block; s is used by this thread alone meanwhile.
 */
#ifndef BARAM_OPS_RETENTION_H
#define BARAM_OPS_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

#define RETENTION_BATCH 500 /* runs per transaction */

struct retention_opts {
    const char *home;       /* its logs/ folder holds the log files */
    int64_t runs_before_ms; /* delete finished runs ended before this; <= 0: none */
    int64_t logs_before_ms; /* remove the logs of finished runs ended before this; <= 0: none */
    bool dry_run;           /* count only: nothing is deleted */
    size_t batch;           /* runs per transaction; 0: RETENTION_BATCH */
};

struct retention_counts {
    int64_t runs;      /* runs deleted */
    int64_t tis;       /* their task instances */
    int64_t log_runs;  /* runs kept whose logs were removed */
    int64_t log_files; /* files removed (of both) */
    int64_t bytes;     /* their bytes */
};

/* One pass: 0 and *c (added to); *skipped true when another process holds retention (PostgreSQL)
 * and nothing was done; or a negative code with *e filled (the batches committed before it
 * stay done). */
int ops_retention(struct store *s, const struct retention_opts *o, struct retention_counts *c,
                  bool *skipped, struct err *e) WARN_UNUSED;

#endif
