/*
 * engine.h - what the runs on one event loop share: the store writer (one
 * group-commit thread for every run), the ready queue with its parallelism
 * and pool slots (so pools and priorities hold across runs), the HTTP client
 * of http and wait tasks, and the pump that turns events into decisions.
 * `baram run` makes an engine for its one run; the daemon makes one for all.
 *
 * Key ideas:
 *  - One pump for all runs. An event marks its run dirty; engine_pump
 *    decides the dirty runs' work, then dispatches the shared ready queue
 *    (which may start another run's task), and repeats until nothing is
 *    dirty; only then are the touched runs' records written and their ends
 *    checked. So a slot freed by one run goes to the best ready task of any
 *    run, and no event scans runs it did not touch.
 *  - The writer's durable sequence number is global: each run compares it
 *    with its own gates and end record.
 *  - A run that has ended (records durable, hooks done) is reported to its
 *    owner from a zero timer, never from inside the pump, so the owner may
 *    free it at once.
 *
 * Loop thread only. The engine owns the writer, the HTTP client and its
 * timers; the runs are owned by whoever began them (run.h).
 */
#ifndef BARAM_SCHED_ENGINE_H
#define BARAM_SCHED_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "base/compiler.h"

struct err;
struct engine; /* opaque: its inside is the run module's (run_int.h) */
struct run;
struct run_rec;
struct store_writer;
struct httptask_client;
struct notifier;

/* The store failed for good (the writer gave up): every run has been failed. */
typedef void (*engine_error_fn)(void *ud, const char *msg);
typedef void (*engine_stopped_fn)(void *ud);

struct engine_opts {
    uv_loop_t *loop;
    const char *store_url; /* copied */
    const char *home;      /* copied: logs go to HOME/logs/... */
    int parallelism;       /* > 0 */
    int http_max_per_host; /* requests in flight per host; <= 0: HTTPTASK_HOST_LIMIT */
    bool gate_on_durable;  /* see run_opts in run.h */
    engine_error_fn on_error;
    void *ud;
    /* Given to the store writer as its on_commit hook (store.h; writer thread; may be NULL). */
    void (*on_commit)(void *ud, uint64_t seq, size_t nevents);
    void *commit_ud;
    /* A scheduler's id in the registry whose row fences every write (store_writer_set_fence;
     * 0: none). On PostgreSQL it also makes every pool set with engine_set_pool hold across
     * the schedulers of the database (admit.h); the default pool stays this one's own. */
    int64_t fence_id;
    /* With fence_id on PostgreSQL: every try is run by a worker (sched/remote.h), none here;
     * dead workers are swept (remote_sweep_interval: 1 s with the defaults), declared dead after
     * worker_dead_after_ms of silence (<= 0: 5 s and 20 s). */
    bool remote;
    int64_t worker_heartbeat_ms, worker_dead_after_ms;
    /* notify: baram.yaml's notifiers (copied), the UI's address for links in messages (copied;
     * NULL: none), and whether engine_stop waits for deliveries in flight (`baram run`) or
     * drops them (a daemon: they stay 'pending' in the store). */
    const struct notifier *notifiers;
    size_t nnotifiers;
    const char *public_url;
    bool wait_notify;
};

/* Starts the store writer (opening the database: this blocks, call it before the loop runs
 * or off the loop's hot path). 0 and *out, or a negative code with *e filled (the store's
 * words: see store_writer_start). */
int engine_start(const struct engine_opts *o, struct engine **out, struct err *e) WARN_UNUSED;
/* Every run must have been freed. Flushes and stops the writer, closes the engine's handles;
 * done(ud) is called on the loop when all is closed, and the engine frees itself then. */
void engine_stop(struct engine *e, engine_stopped_fn done, void *ud);

/* Sets a pool's slots (a pool not set has SCHED_POOL_DEFAULT_SLOTS) and the parallelism
 * (0: nothing new starts, as when a daemon stops); waiting tasks start at once if slots were
 * freed. With engine_opts.fence_id on PostgreSQL, a pool set here is limited across schedulers: its
 * tries wait for a slot granted by the database, and the database's `pools` row wins over slots. */
void engine_set_pool(struct engine *e, const char *name, int slots);
void engine_set_parallelism(struct engine *e, int parallelism);
/* Makes and checks the scratch folder for tries' outputs (logpath.h) at each run's start and
 * when a try finds it gone, so that one removed while a daemon runs is made again and one replaced
 * by something unsafe is refused. Warns when it starts being refused. Loop thread. */
void engine_check_scratch(struct engine *e);
/* The scratch folder for a try about to start, or NULL (outputs beside the logs): checked
 * first (one lstat), and made again when it was removed since. Loop thread. */
const char *engine_scratch(struct engine *e);

/* Writes a run's record through the engine's writer, with the records of the event around it
 * (a run that will not start: cancelled while queued, or its DAG unloadable). The sequence
 * number the writer gave it (durable once the writer reports it), or 0 when the store has
 * failed or the engine has no writer. */
uint64_t engine_put_run(struct engine *e, const struct run_rec *rec);
/* engine_opts.fence_id: the scheduler's id in the registry, or 0. */
int64_t engine_sched_id(const struct engine *e);
/* Tries are run by workers (engine_opts.remote on PostgreSQL). */
bool engine_remote(const struct engine *e);
/* Workers left results for this scheduler (NOTIFY baram_sched_<id>, or a listener's resync):
 * they are taken soon (remote.h). Nothing when not remote. */
void engine_remote_take(struct engine *e);
/* depends_on_past: the previous runs that runs of this engine wait on and that do not run
 * here (another scheduler's, or not started yet): their ids in *ids (malloc'd, as each id),
 * and their number. engine_past_update tells the engine what the store holds of one now (its
 * state has ended, its task instances): the runs waiting on it look again. */
size_t engine_past_pending(struct engine *e, char ***ids);
struct ti_rec;
void engine_past_update(struct engine *e, const char *run_id, bool ended, const struct ti_rec *tis,
                        size_t n);
/* engine_stop has been called. */
bool engine_stopping(const struct engine *e);

/* Around each event: the records it makes go to the writer as one batch. */
void engine_cork(struct engine *e);
void engine_uncork(struct engine *e);
/* Decides and dispatches everything the dirty runs have (see above). */
void engine_pump(struct engine *e);

/* Statistics for logs: commits and changes written so far. */
void engine_stats(const struct engine *e, uint64_t *commits, uint64_t *changes);
/* Scheduling latency, from a task instance becoming ready (upstream met, or its retry
 * delay over) to its process having started, over the last PCTL_MAX tries (a
 * fixed 256 KiB however long a daemon runs; /metrics has the histogram of all of them):
 * percentiles in microseconds (p in 0..100). 0 when none. */
int64_t engine_latency_pct(const struct engine *e, double p);

#endif
