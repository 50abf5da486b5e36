/*
 * remote.h - the scheduler's side of tries run by workers (PostgreSQL,
 * SPEC section 12): an engine in remote mode hands each try to the
 * database's ti_queue (store/wq.h) instead of starting it, and learns how it
 * went from the results the workers leave for it.
 *
 * Key ideas:
 *  - The loop never waits on the database. Submissions, kill requests, the
 *    taking of results and the sweep of dead workers are gathered on the
 *    loop; one job at a time runs them on the thread pool, on a connection
 *    of its own, so whatever was gathered while a job ran goes in the next
 *    one (one wq_submit per batch, not per try). A failed job's submissions
 *    and kill requests are sent again by the next one (REMOTE_RETRY_MS
 *    later); they are idempotent upserts and deletes.
 *  - Results are taken when the scheduler's channel (baram_sched_<id>, which
 *    the daemon's listener hears with its wake-ups: remote_take) is notified,
 *    when that listener reconnects, and every REMOTE_POLL_MS.
 *  - A try stays 'queued' until its worker's 'running' result is seen; an
 *    'ended' or 'lost' one goes through the same end path as a local try.
 *  - A result is deleted from the database only once the records made of it
 *    are durable (remote_durable): until then it stays there, taken by this
 *    scheduler, for the run's next owner should this one die.
 *
 * Loop thread only. The remote object is the engine's (engine.c makes and
 * stops it); runs register their tries with it through run_int.h.
 */
#ifndef BARAM_SCHED_REMOTE_H
#define BARAM_SCHED_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define REMOTE_POLL_MS  1000 /* results are taken at least this often */
#define REMOTE_RETRY_MS 1000 /* after a failed job */

struct engine;
struct remote;

struct remote_opts {
    uv_loop_t *loop;
    const char *store_url; /* copied; a postgresql:// URL */
    int64_t sched_id;      /* this scheduler's workers.id */
    int64_t sweep_ms;      /* how often dead workers are swept (remote_sweep_interval) */
    int64_t dead_after_ms; /* worker.dead_after */
};

/* How often a scheduler sweeps dead workers: a twentieth of dead_after (1 s with the
 * defaults), at least 250 ms and at most the heartbeat, so that a worker silent for dead_after
 * is declared dead at most that much later (SPEC section 12: detection in dead_after plus a
 * little, not dead_after plus a whole heartbeat). One small UPDATE of `workers` a sweep. */
int64_t remote_sweep_interval(int64_t heartbeat_ms, int64_t dead_after_ms);

typedef void (*remote_stopped_fn)(void *ud);

/* Makes the remote side of engine e; nothing blocks (its connection opens in its first job). */
struct remote *remote_new(struct engine *e, const struct remote_opts *o);
/* Takes the results workers left for this scheduler soon (its channel was notified). */
void remote_take(struct remote *rm);
/* The engine's durable sequence number advanced: the results whose records are durable now
 * are deleted from the inbox soon. */
void remote_durable(struct remote *rm);
/* Stops: waits for the job in flight, closes the listener, timers and connection, frees the
 * object and calls done(ud). Tries still registered are left in the database (their runs
 * were halted: the next scheduler adopts them). */
void remote_stop(struct remote *rm, remote_stopped_fn done, void *ud);

#endif
