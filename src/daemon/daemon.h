/*
 * daemon.h - the scheduler daemon (`baram standalone`, `baram scheduler`):
 * one libuv loop that owns scheduling state for every DAG of the folder.
 *
 * What it does, all as events on the loop:
 *  - watches the DAG folder (dagdir.h) and records each DAG and import error
 *    in the store for the CLI, API and UI;
 *  - creates scheduled runs when their data interval has ended (plan.h),
 *    catching up within max_active_runs, on one timer set to the earliest
 *    due time;
 *  - starts queued runs (`dags trigger`, `dags backfill`, `tasks clear`)
 *    and acts on requests (`runs cancel`), pools and pauses read from the
 *    store when the CLI rings the doorbell (schedlock_ring) or every few
 *    seconds otherwise;
 *  - runs them all on one engine (engine.h): shared pools and parallelism;
 *  - at start, resumes every unfinished run of the store (crash recovery,
 *    SPEC section 5), killing the process groups its dead predecessor left;
 *  - on SIGTERM or SIGINT, starts nothing new, gives running tries a grace
 *    period, then stops them and leaves the store as it stood, for the next
 *    start to resume. A second signal cuts the grace short.
 *  - registers in the store's registry (role scheduler) and heartbeats; it
 *    takes only the runs it owns: those it creates, and those it claims
 *    (queued by the CLI or API, or released by a scheduler that stopped or
 *    was declared dead). On PostgreSQL several schedulers share a database:
 *    each beat also declares dead the schedulers silent for dead_after, whose
 *    runs the others then claim and resume; every write of a scheduler is
 *    fenced by its registry row, and one declared dead stops its tries and
 *    exits (daemon_run returns -ESTALE). A clean stop marks the row stopped
 *    and releases its runs at once.
 *
 * Store access that may block (claims, loading a run's records) runs on the
 * libuv thread pool, one job at a time on the daemon's own connection; the
 * loop never waits on the database.
 *
 * Called from the main thread; daemon_run blocks until the daemon stops.
 */
#ifndef BARAM_DAEMON_DAEMON_H
#define BARAM_DAEMON_DAEMON_H

#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct worker_opts;
struct run_pool;

#define DAEMON_GRACE_MS      30000 /* default grace for running tries at shutdown */
#define DAEMON_RESYNC_MS     2000  /* the store is read this often without a doorbell */
#define DAEMON_HEARTBEAT_MS  5000  /* scheduler.heartbeat */
#define DAEMON_DEAD_AFTER_MS 20000 /* scheduler.dead_after */

struct notifier;

struct daemon_opts {
    const char *home;      /* the home folder (lock, doorbell, logs) */
    const char *dags;      /* the DAG folder */
    const char *store_url; /* the database */
    int parallelism;
    int http_max_per_host;        /* requests in flight per host; <= 0: the default (16) */
    const struct run_pool *pools; /* from baram.yaml; the store's `pools set` win */
    size_t npools;
    int64_t grace_ms; /* < 0: DAEMON_GRACE_MS */
    /* notify: baram.yaml's notifiers (borrowed for daemon_run) */
    const struct notifier *notifiers;
    size_t nnotifiers;
    const char *public_url; /* api.public_url, or NULL */
    /* Called once on the loop when the daemon is up (DAGs loaded, recovery started). */
    void (*ready)(void *ud, size_t ndags, size_t nerrors);
    void *ready_ud;
    /* Called once the home's lock is taken, before anything else (NULL: none): where
     * `standalone` starts its API, so a second scheduler on the same home never serves.
     * A negative return (with *e filled) ends daemon_run with it. */
    int (*locked)(void *ud, struct err *e);
    /* Called on the store writer's thread after each commit (store.h, store_commit_fn), with
     * commit_ud (NULL: none): `standalone` wakes its API's event hub with it. */
    void (*on_commit)(void *ud, uint64_t seq, size_t nevents);
    void *commit_ud;
    /* Several schedulers on one database (SPEC section 12): how often this one heartbeats,
     * and how long a silent one keeps its runs (<= 0: DAEMON_HEARTBEAT_MS,
     * DAEMON_DEAD_AFTER_MS). */
    int64_t heartbeat_ms;
    int64_t dead_after_ms;
    /* PostgreSQL: workers run the tries (sched/remote.h); dead ones are swept every
     * worker_heartbeat_ms, declared dead after worker_dead_after_ms (<= 0: 5 s, 20 s). */
    int64_t worker_heartbeat_ms;
    int64_t worker_dead_after_ms;
    /* PostgreSQL: a worker run in process, on the daemon's loop (`baram standalone`: loop,
     * stopped and ud are the daemon's); NULL: none (`baram scheduler`). It drains when the
     * daemon stops, which waits for it. Unused on SQLite (the daemon runs its tries). */
    const struct worker_opts *worker;
    /* versions part (issue 13): retention (daemon/retain.h), from baram.yaml `retention`; both
     * 0: nothing is deleted. every <= 0: hourly. */
    int64_t retention_runs_ms;
    int64_t retention_logs_ms;
    int64_t retention_every_ms;
};

/* Runs the daemon until a signal stops it. 0 after a clean stop, or a negative code with *e
 * filled: could not start (another scheduler holds the home, the store cannot be opened, the
 * DAG folder cannot be read). */
int daemon_run(const struct daemon_opts *o, struct err *e) WARN_UNUSED;

#endif
