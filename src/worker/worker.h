/*
 * worker.h - a worker of a PostgreSQL deployment (SPEC section 12): it
 * registers in the `workers` table, claims the tries queued for its queues
 * (store/wq.h: ti_queue), runs them as a scheduler's local executor does
 * (exec/: spawn, httptask, waiter) and reports their ends; the scheduler
 * that owns each run decides what an end means. `baram worker` runs one
 * alone; `baram standalone` on PostgreSQL runs one in process, on its loop.
 *
 * Its life: register (role 'worker'), LISTEN for new tries and kill
 * requests, claim up to its free slots (a wait holds none), heartbeat every
 * heartbeat_ms. Declared dead by a scheduler's sweep: kill every try, drop
 * their results, register again under a new id. No good heartbeat for 3/4
 * of dead_after_ms (its own monotonic clock): kill every try (a sweep will
 * give them to others), claim nothing until a heartbeat succeeds. Drain
 * (SIGTERM): claim nothing more, give running tries grace_ms, kill the rest,
 * report them, mark the row stopped, then call stopped(ud, 0).
 *
 * Loop thread only; the store calls run on libuv's thread pool, each on a
 * connection of the worker's own.
 */
#ifndef BARAM_WORKER_WORKER_H
#define BARAM_WORKER_WORKER_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct auth;
struct err;
struct uv_loop_s;
struct worker;

/* How long a draining worker's tries may go on (`--grace`'s default). */
#define WORKER_GRACE_MS 30000

struct worker_opts {
    struct uv_loop_s *loop;
    const char *store_url;     /* a PostgreSQL url (copied) */
    const char *home;          /* where tries' logs go: HOME/logs/<dag>/<run>/ (copied) */
    const char *name;          /* NULL: HOSTNAME:PID (copied) */
    const char *const *queues; /* NULL or nqueues 0: "default" (copied) */
    size_t nqueues;
    int slots; /* tries running at once; <= 0: the number of CPUs */
    int64_t heartbeat_ms, dead_after_ms, grace_ms;
    int64_t store_max;  /* bytes of a try's log kept in the store (logs.store_max) */
    const char *listen; /* HOST:PORT of the log server (logserve.h), NULL: none */
    struct auth *auth;  /* with listen: checks the log server's tokens (borrowed until
                         * stopped() is called) */
    void (*stopped)(void *ud, int rc); /* after drain (rc 0) or a fatal error (rc < 0, and the
                                        * error was logged); the worker is freed after it */
    void *ud;
};

/* Starts the worker: its registration and its store connections are made on the thread pool,
 * then it claims. 0 and *out (owned by the worker itself: freed after stopped() returns), or a
 * negative code with *e filled (-ENOTSUP: not a PostgreSQL url; -EINVAL: bad options; the
 * log server's codes when it cannot listen). */
int worker_start(const struct worker_opts *o, struct worker **out, struct err *e) WARN_UNUSED;
/* Stops claiming, lets running tries go on for grace_ms, kills what is left, reports every end,
 * marks the worker stopped and calls stopped(ud, 0). Idempotent. */
void worker_drain(struct worker *w);
/* Drains with no grace left (a second signal, the daemon's grace over): the tries still
 * running are killed now and reported. Idempotent. */
void worker_stop_now(struct worker *w);

/* libuv's thread pool for a process that runs a worker (`baram worker`, `standalone`): 16
 * threads unless the user set UV_THREADPOOL_SIZE, so that a slow database holding the blocking
 * calls of claims, ends and the scheduler's jobs does not starve the heartbeat behind them
 * (the default 4 are too few). Starts the pool now, with UV_THREADPOOL_SIZE set only while it
 * starts: baram's value is never seen by tries. Call before anything queues work. */
void worker_pool_widen(void);

#endif
