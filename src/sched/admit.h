/*
 * admit.h - pool slots that hold across schedulers on one PostgreSQL
 * database: the event loop's side of store/queue.h.
 *
 * A try of a task whose pool this scheduler limits (a pool set in baram.yaml
 * or with `baram pools set`) waits here, not in the local ready queue, until
 * the database grants it a slot; the default pool (SCHED_POOL_DEFAULT_SLOTS
 * per scheduler) stays local, so a try in it costs no database round trip.
 *
 * Key ideas:
 *  - The loop never waits on the database. Wants and releases are gathered
 *    on the loop; one round at a time (queue_round) runs on the thread pool,
 *    on a connection of its own, and reports the tries granted to this
 *    scheduler, which the loop then starts.
 *  - A round runs as soon as there is something to send, and again every
 *    ADMIT_POLL_MS while tries wait: another scheduler's round may have
 *    granted our rows (or freed slots that no one has dispatched yet).
 *  - A failed round's wants and releases are sent again by the next one
 *    (ADMIT_RETRY_MS later). It may have been applied all the same (it
 *    committed and its answer was lost), so a want once sent is released
 *    when withdrawn, whatever its rounds answered: deleting a missing row is
 *    harmless, keeping a granted one would hold its slot forever.
 *
 * Loop thread only. The admit object owns its wants, releases, timer and
 * connection; the owners passed to admit_want are borrowed until granted or
 * withdrawn.
 */
#ifndef BARAM_SCHED_ADMIT_H
#define BARAM_SCHED_ADMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define ADMIT_POLL_MS  50
#define ADMIT_RETRY_MS 1000

struct admit;

/* Slots were granted: each item's try may start. Loop thread. */
struct admit_grant {
    void *owner; /* borrowed: as given to admit_want */
    uint32_t id;
    int try_number;
};
typedef void (*admit_grant_fn)(void *ud, const struct admit_grant *v, size_t n);
typedef void (*admit_stopped_fn)(void *ud);

struct admit_opts {
    uv_loop_t *loop;
    const char *store_url; /* copied; a postgresql:// URL */
    int64_t sched_id;      /* this scheduler's workers.id */
    admit_grant_fn grant;
    void *ud;
};

/* Makes the admit object; nothing blocks (its connection opens in its first round). */
struct admit *admit_new(const struct admit_opts *o);
/* Stops: logs the want -> grant latency ("pool admission latency", p50/p99 over the last
 * grants), waits for the round in flight, then a last round frees every row of this scheduler
 * (its slots), closes the connection and the timer, frees the object and calls done(ud). */
void admit_stop(struct admit *a, admit_stopped_fn done, void *ud);

/* Limits pool across schedulers with slots (the store's `pools` row wins in the database). */
void admit_set_pool(struct admit *a, const char *name, int slots);
/* The pool is limited across schedulers. */
bool admit_limits(const struct admit *a, const char *pool);
/* Asks a slot of pool for try try_number of instance task_id of run_id (strings copied);
 * it comes back through grant once granted, unless withdrawn before. */
void admit_want(struct admit *a, void *owner, uint32_t id, const char *run_id, const char *task_id,
                int try_number, const char *pool, int priority);
/* A try of owner already running takes a slot of pool at once (its pool became limited while
 * it ran); give it back with admit_release like a granted one. */
void admit_adopt(struct admit *a, void *owner, const char *run_id, const char *task_id,
                 int try_number, const char *pool, int priority);
/* Withdraws every want of owner (its run is cancelled, drains, halts or is freed). */
void admit_withdraw(struct admit *a, void *owner);
/* Frees the slot granted to a try (it ended, gave its slot back, or will not start). */
void admit_release(struct admit *a, const char *run_id, const char *task_id, int try_number);

/* Tries waiting for a slot. */
size_t admit_waiting(const struct admit *a);

#endif
