/*
 * wq.h - the work queue between schedulers and `baram worker` on PostgreSQL (SPEC section 12,
 * migration pg/0010): how a try travels from the scheduler that owns its run to a worker
 * and how its end comes back.
 *
 *   scheduler  wq_submit      a ti_queue row 'queued' with the try's spec (JSON,
 *                             exec/tryspec.h); NOTIFY baram_queued '<queue>'
 *   worker     wq_claim       up to its free slots of its queues, one statement (SKIP
 *                             LOCKED): 'running', and a 'running' row in the owner's inbox
 *                             (try_results); NOTIFY baram_sched_<owner>
 *   worker     wq_finish      fenced: the row goes only if it is still this worker's and
 *                             running; then the raw end ('ended') and the log (try_logs)
 *   scheduler  wq_take_results  reads its inbox: 'running', 'ended', 'lost' (marked taken)
 *   scheduler  wq_ack_results   deletes what it took once its records of it are durable
 *   scheduler  wq_withdraw    cancel: an unclaimed row is deleted, a claimed one marked
 *                             kill_requested (NOTIFY baram_worker_<id>): wq_heartbeat's list
 *   scheduler  wq_sweep       workers silent for dead_after are declared dead; their running
 *                             tries become 'lost' ("worker NAME lost")
 *   scheduler  wq_adopt       a run taken over: its rows in flight become the adopter's
 *
 * Only schedulers write task instances and tries; workers write ti_queue, try_results and
 * try_logs. Each call is one round trip and one transaction (a plpgsql function of 0010 where
 * it takes several statements); NOTIFYs go at its commit, one per channel. Arrays travel as
 * one text parameter each, outputs and logs as one binary blob, so a batch costs about what
 * one row does.
 *
 * PostgreSQL only: on SQLite every call returns -ENOTSUP (one scheduler runs the tries
 * itself). The calls block on the database: call them from a thread that may block, on a
 * struct store of the caller's own, one thread at a time per store. Outside any
 * store_begin: each call is its own transaction.
 */
#ifndef BARAM_STORE_WQ_H
#define BARAM_STORE_WQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

#define WQ_CHANNEL_QUEUED "baram_queued"  /* + "baram_sched_<id>", "baram_worker_<id>" */
#define WQ_CHANNEL_SCHED  "baram_sched_"  /* + the scheduler's workers.id */
#define WQ_CHANNEL_WORKER "baram_worker_" /* + the worker's workers.id */

/* s is on a backend with a work queue (PostgreSQL). */
bool wq_supported(struct store *s);

/* ---- scheduler: hand tries out ---- */

/* What the scheduler hands out (borrowed strings). */
struct wq_item {
    const char *run_id, *task_id;
    int try_number;
    const char *queue, *pool; /* pool: NULL is "default" */
    int priority;
    const char *spec; /* JSON (tryspec_encode); never empty */
};
/* Upserts each try's row 'queued' for workers (a pool-limited try's granted row keeps its
 * slot), owned by scheduler sched_id; NOTIFY baram_queued once per queue. Fenced: only the
 * tries of runs sched_id owns (runs.sched_id; the others are skipped), and never over a row
 * of the same try already handed out or of a newer try (skipped: a late or repeated
 * submission hands nothing out twice). 0, -ENOTSUP, -ESTALE (*e filled) when sched_id is not
 * active any more (declared dead: it must stop writing), or a negative code with *e filled
 * (nothing changed; -EINVAL for an item without a spec or whose spec is not valid UTF-8,
 * named in *e). */
int wq_submit(struct store *s, int64_t sched_id, const struct wq_item *v, size_t n,
              struct err *e) WARN_UNUSED;

/* ---- worker: claim, finish, heartbeat ---- */

struct wq_claimed {
    char *run_id, *task_id;
    int try_number;
    char *spec; /* JSON as PostgreSQL's jsonb prints it */
};
/* Claims up to max queued tries of queues (priority first, then the longest queued) for the
 * worker worker_id named worker_name; each gets a 'running' row in its owner's inbox, and the
 * owners are notified. A worker not 'active' (draining, dead, stopped) claims nothing.
 * *out malloc'd (*n entries; free with wq_free_claimed), or NULL when none. */
int wq_claim(struct store *s, int64_t worker_id, const char *worker_name, const char *const *queues,
             size_t nqueues, int max, struct wq_claimed **out, size_t *n,
             struct err *e) WARN_UNUSED;
void wq_free_claimed(struct wq_claimed *v, size_t n);

/* A try's raw end (sched/run_int.h struct run_try_end). */
struct wq_end {
    const char *run_id, *task_id;
    int try_number;
    int exit_code, term_signal;
    bool timed_out, killed, met;
    int64_t hold_ms;
    const char *message; /* may be NULL; invalid UTF-8 is replaced by '?' */
    const char *output;  /* NULL: none */
    size_t output_len;
    const char *log; /* what to keep (already cut to logs.store_max), may be NULL */
    size_t log_len;
};
/* Reports ends, fenced: accepted[i] true when the try's row was still this worker's and
 * running (it is deleted, the end goes to the owner's inbox and the log to try_logs, the
 * owner is notified); false: discarded (the try was taken from this worker: swept,
 * withdrawn, resubmitted), nothing written for it. All in one transaction. accepted may be
 * NULL. */
int wq_finish(struct store *s, int64_t worker_id, const struct wq_end *v, size_t n, bool *accepted,
              struct err *e) WARN_UNUSED;

/* wq_finish of v[0..n), then wq_claim of up to max, in one round trip and one transaction:
 * a worker whose tries ended reports them and fills the slots they freed at once. Either part
 * may be empty (n 0: a claim; max 0: a finish). */
int wq_finish_claim(struct store *s, int64_t worker_id, const char *worker_name,
                    const struct wq_end *v, size_t n, bool *accepted, const char *const *queues,
                    size_t nqueues, int max, struct wq_claimed **out, size_t *nout,
                    struct err *e) WARN_UNUSED;

struct wq_kill {
    char *run_id, *task_id;
    int try_number;
};
/* A worker's heartbeat (the database's clock); draining true sets it 'draining' (for good).
 * *alive false: the row is not active/draining any more (declared dead, stopped): kill every
 * try and re-register. *kills: its tries whose kill was requested (malloc'd, *nkills; free
 * with wq_free_kills), NULL when none. */
int wq_heartbeat(struct store *s, int64_t worker_id, bool draining, bool *alive,
                 struct wq_kill **kills, size_t *nkills, struct err *e) WARN_UNUSED;
/* wq_heartbeat, and *running: every try the store has as this worker's, running (malloc'd,
 * *nrunning; free with wq_free_kills), NULL when none. A worker gives back those it neither
 * runs nor is reporting: a claim that committed although its answer never reached it. */
int wq_heartbeat_rows(struct store *s, int64_t worker_id, bool draining, bool *alive,
                      struct wq_kill **kills, size_t *nkills, struct wq_kill **running,
                      size_t *nrunning, struct err *e) WARN_UNUSED;
void wq_free_kills(struct wq_kill *v, size_t n);

/* ---- scheduler: cancel, inbox, sweep, adopt ---- */

/* Cancels tries: a row not claimed yet is deleted (withdrawn[i] true: the try ends killed at
 * once); a claimed one of the same try number gets kill_requested and its worker a NOTIFY
 * baram_worker_<id> (withdrawn[i] false: its end comes through the inbox). A try without a
 * row: false. withdrawn may be NULL. */
int wq_withdraw(struct store *s, const struct wq_kill *v, size_t n, bool *withdrawn,
                struct err *e) WARN_UNUSED;

enum wq_phase { WQ_RUNNING, WQ_ENDED, WQ_LOST };
struct wq_result {
    char *run_id, *task_id;
    int try_number;
    enum wq_phase phase;
    char *worker;                       /* the worker's name (NULL when unknown) */
    int64_t started_at_ms, ended_at_ms; /* UTC; 0 when unknown (ended_at: running) */
    int exit_code, term_signal;
    bool timed_out, killed, met;
    int64_t hold_ms;
    char *message; /* NULL when none */
    char *output;  /* NULL when none; NUL-terminated besides output_len */
    size_t output_len;
};
/* Takes the inbox rows of the runs scheduler sched_id owns (runs.sched_id) that it has not
 * taken yet (taken by nobody, by a former owner of the run, or taken in an earlier phase:
 * 'running' since become 'ended'), ordered by run, task and try: they are marked taken by
 * sched_id and stay in the inbox until wq_ack_results deletes them, so that a scheduler that
 * dies before the records it makes of them are durable loses nothing (the run's next owner
 * takes them again). Rows of runs already finished are deleted instead (nothing to record).
 * *out malloc'd (*n; free with wq_free_results), NULL when none. */
int wq_take_results(struct store *s, int64_t sched_id, struct wq_result **out, size_t *n,
                    struct err *e) WARN_UNUSED;
/* wq_take_results, also returning the rows sched_id took already and has not deleted: after a
 * take whose answer was lost, or once a run whose results came before it was loaded is. */
int wq_retake_results(struct store *s, int64_t sched_id, struct wq_result **out, size_t *n,
                      struct err *e) WARN_UNUSED;
void wq_free_results(struct wq_result *v, size_t n);

/* A result taken (borrowed strings): its key and the phase it was taken in. */
struct wq_taken {
    const char *run_id, *task_id;
    int try_number;
    enum wq_phase phase;
};
/* Deletes the inbox rows of v that scheduler sched_id took in that phase (call it once the
 * records made of them are durable; a row whose phase changed since, or taken by another, is
 * left). left[i] true (left may be NULL): the row was locked by another transaction and is
 * still there: ack it again later. */
int wq_ack_results(struct store *s, int64_t sched_id, const struct wq_taken *v, size_t n,
                   bool *left, struct err *e) WARN_UNUSED;

/* Declares dead the workers (role 'worker') active or draining silent for dead_after_ms or
 * more by the database's clock; their running tries become 'lost' results ("worker NAME
 * lost", exit code -1) and their owners are notified. Idempotent; rows another sweep holds
 * are skipped. *declared (may be NULL): how many. */
int wq_sweep(struct store *s, int64_t dead_after_ms, size_t *declared, struct err *e) WARN_UNUSED;

/* Declares worker worker_id dead at once, whatever its heartbeat, as wq_sweep does a silent
 * one (its running tries become 'lost'): for a worker known to be gone (its process no longer
 * exists on this host). Nothing when it is not active or draining. */
int wq_lose_worker(struct store *s, int64_t worker_id, struct err *e) WARN_UNUSED;
/* Makes scheduler sched_id (active) the owner of run_id's rows handed to workers and returns
 * them, with the tries of the run whose result waits in the inbox (*rows malloc'd, *n; free
 * with wq_free_kills): those tries are in flight, their result will come; do not start them
 * again. Other schedulers' rows of the run that were never
 * handed out are deleted. */
int wq_adopt(struct store *s, int64_t sched_id, const char *run_id, struct wq_kill **rows,
             size_t *n, struct err *e) WARN_UNUSED;

/* ---- logs and the registry ---- */

/* A stopped try's log as stored by its worker: *log malloc'd (NUL-terminated besides *len).
 * -ENOENT (e filled) when none is stored. */
int wq_log_get(struct store *s, const char *run_id, const char *task_id, int try_number, char **log,
               size_t *len, struct err *e) WARN_UNUSED;
/* The worker of a try: the one running it, else the one named by its inbox row; its name and
 * log_url (malloc'd; NULL when none). 0 (both NULL when no worker is known). */
int wq_try_worker(struct store *s, const char *run_id, const char *task_id, int try_number,
                  char **name, char **log_url, struct err *e) WARN_UNUSED;
/* How many active workers listen on queue (the "no active worker listens" note). */
int wq_queue_workers(struct store *s, const char *queue, int64_t *n, struct err *e) WARN_UNUSED;

#endif
