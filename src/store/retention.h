/*
 * retention.h - what the store does for retention (SPEC section 13:
 * `retention:` in baram.yaml, applied by the scheduler, and `baram db
 * clean`): pick old finished runs in batches, delete them with everything
 * recorded for them, or mark their logs removed. ops/retention.h drives it
 * (and removes the log files on disk).
 *
 * A finished run is one in state success, failed or cancelled with an end
 * time; a queued or running run is never picked, however old.
 *
 * Any thread that may block, one at a time per store (store.h).
 */
#ifndef BARAM_STORE_RETENTION_H
#define BARAM_STORE_RETENTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

struct retention_run {
    char *run_id; /* owned */
    char *dag_id; /* owned */
    int64_t ended_at_ms;
    bool done; /* store_retention_delete / _logs_done: its rows were deleted / marked */
};
void store_free_retention_runs(struct retention_run *v, size_t n);

/* Up to limit finished runs ended before before_ms, in (ended_at, run_id) order after the
 * key (after_ms, after_id) (after_id NULL: from the first); logs_kept: only those whose logs
 * were not removed yet. 0 and *out (malloc'd, *n entries), or a negative code with *e filled. */
int store_retention_pick(struct store *s, int64_t before_ms, bool logs_kept, int64_t after_ms,
                         const char *after_id, size_t limit, struct retention_run **out, size_t *n,
                         struct err *e) WARN_UNUSED;

/* The task instances of these runs: 0 and *tis, or a negative code with *e filled. */
int store_retention_count_tis(struct store *s, const struct retention_run *runs, size_t n,
                              int64_t *tis, struct err *e) WARN_UNUSED;

/* Deletes those of these runs that are still finished and ended before before_ms (a run
 * queued again since it was picked, by a clear, keeps everything), and what belongs to them
 * (task instances, tries, requests, deliveries; on PostgreSQL also their queue rows, results
 * and stored logs), in one transaction: 0, each run's done set (deleted or not) and *tis
 * (task instances deleted), or a negative code with *e filled (nothing deleted). The event
 * log keeps its rows: it is pruned by count (events.h, EVENTS_KEEP) and has no index by run. */
int store_retention_delete(struct store *s, struct retention_run *runs, size_t n, int64_t before_ms,
                           int64_t *tis, struct err *e) WARN_UNUSED;

/* Marks the logs removed at at_ms of those of these runs that are still finished, ended before
 * before_ms and with their logs (the runs stay) and, on PostgreSQL, deletes their stored logs
 * (try_logs), in one transaction: 0 and each run's done set (marked or not), or a negative
 * code with *e filled. */
int store_retention_logs_done(struct store *s, struct retention_run *runs, size_t n,
                              int64_t before_ms, int64_t at_ms, struct err *e) WARN_UNUSED;

/* Retention runs in one process at a time per database: on PostgreSQL takes a session
 * advisory lock on s's connection (kept until store_retention_unlock or the connection
 * closes); *got false when another holds it. On SQLite *got is always true (one scheduler
 * per home). 0, or a negative code with *e filled. */
int store_retention_lock(struct store *s, bool *got, struct err *e) WARN_UNUSED;
void store_retention_unlock(struct store *s);

#endif
