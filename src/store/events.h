/*
 * events.h - the event log (migration 0004): one row per state change of a
 * run or task instance. The group-commit writer appends them in the same
 * transaction as the changes (so an event is durable when it can be read),
 * and so does every change written outside it (a claimed run, a clear, a
 * cancel without a scheduler: events_put); the API streams them (GET
 * /api/v1/events) and resumes from an id.
 *
 * A struct events_w is a writer's prepared statements on its connection:
 * one thread at a time, like the connection. events_list is a plain read on
 * any connection.
 */
#ifndef BARAM_STORE_EVENTS_H
#define BARAM_STORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"
#include "dag/state.h"

struct err;
struct store;

#define EVENTS_KEEP 200000 /* the newest rows kept; older ones are pruned */

enum event_kind { EVENT_RUN, EVENT_TI };

struct event_rec {
    int64_t id;
    int64_t at_ms;
    enum event_kind kind;
    char *dag_id; /* may be NULL (a run not recorded) */
    char *run_id;
    char *task_id; /* NULL for runs */
    char *state;   /* its JSON name */
    int try_number;
};

const char *event_kind_name(enum event_kind k); /* "run", "task_instance" */
void event_rec_release(struct event_rec *e);
void events_free(struct event_rec *v, size_t n);

struct events_w;
/* Prepares the appends on s (inside or outside a transaction). 0 and *out, or ERR_DB. */
int events_w_open(struct store *s, struct events_w **out, struct err *e) WARN_UNUSED;
void events_w_close(struct events_w *w);
/* Appends one event (dag_id looked up from the run when NULL). 0 or ERR_DB. */
int events_w_put(struct events_w *w, enum event_kind kind, const char *dag_id, const char *run_id,
                 const char *task_id, const char *state, int try_number, int64_t at_ms,
                 struct err *e) WARN_UNUSED;
/* Appends one event on s outside the writer, in the transaction s has open (a change the CLI
 * or the API writes itself: a clear, a cancel without a scheduler), so it is durable with
 * the change. 0, -ENOTSUP (no event log on this backend: nothing to do), or ERR_DB. */
int events_put(struct store *s, enum event_kind kind, const char *dag_id, const char *run_id,
               const char *task_id, const char *state, int try_number, int64_t at_ms,
               struct err *e) WARN_UNUSED;
/* Writes the events appended since the last flush: a backend may gather events_w_put's and
 * write them here in one statement, so the writer calls it after its batch's appends, in the
 * same transaction. Afterwards nothing is gathered, whether it failed or not. 0 or ERR_DB. */
int events_w_flush(struct events_w *w, struct err *e) WARN_UNUSED;
/* Deletes all but the newest EVENTS_KEEP rows. 0 or ERR_DB. */
int events_w_prune(struct events_w *w, struct err *e) WARN_UNUSED;

/* Events with id > after_id, oldest first, at most limit, optionally of one DAG / one run
 * (NULL: any): never one with a lower id that commits later (so a reader moving past the
 * last one misses nothing). 0 and *out (*n; free with events_free); -EAGAIN (PostgreSQL:
 * an id after after_id may still commit, and nothing before it is final yet: read again
 * later, this is not "nothing more"); or ERR_DB. */
int events_list(struct store *s, int64_t after_id, const char *dag_id, const char *run_id,
                size_t limit, struct event_rec **out, size_t *n, struct err *e) WARN_UNUSED;
/* Rows by state, for /metrics: task instances and runs. 0 or ERR_DB. */
int events_count_tis(struct store *s, int64_t counts[TI_STATE_COUNT], struct err *e) WARN_UNUSED;
int events_count_runs(struct store *s, int64_t counts[RUN_STATE_COUNT], struct err *e) WARN_UNUSED;

/* The newest event's id (0 when none): a stream starting after it misses nothing that
 * commits later (on PostgreSQL, an id below it committing later is waited for first). */
int events_last_id(struct store *s, int64_t *id, struct err *e) WARN_UNUSED;

/* Wake-ups between processes (PostgreSQL: NOTIFY, seen by store/listen.h's listeners on any
 * host): wakes every listener of channel, at the commit of the transaction s has open, or at
 * once. 0, -ENOTSUP (a backend without notifications: the caller uses its own doorbell), or
 * ERR_DB. */
#define EVENTS_CHANNEL_WAKE   "baram_wake"   /* a request for the schedulers: sync now */
#define EVENTS_CHANNEL_EVENTS "baram_events" /* events committed (sent by the database) */
int events_notify(struct store *s, const char *channel, struct err *e) WARN_UNUSED;

#endif
