/*
 * queue.h - admission across schedulers that share one PostgreSQL database:
 * pool slots (the ti_queue table, migration pg/0007) and max_active_runs.
 *
 * Key idea (Airflow's critical section): only the holder of one advisory
 * transaction lock grants; it counts what is in flight in the database, so a
 * pool's slots and a DAG's max_active_runs hold however many schedulers run.
 *  - A try of a task in a limited pool is a ti_queue row, 'scheduled' while
 *    it waits. A round (queue_round) deletes the rows of tries that ended,
 *    inserts the ones that became ready, then, when it gets
 *    pg_try_advisory_xact_lock, grants as many 'scheduled' rows of every
 *    scheduler as the pools have free slots, priority first ('queued'), and
 *    finally claims this scheduler's own granted rows ('running'): those are
 *    the tries it may start. Another scheduler's granted rows are claimed by
 *    its own next round. Rows of a scheduler that is not active in `workers`
 *    any more are deleted before the count.
 *  - A queued run starts only under the runs' lock (queue_start_runs), when
 *    its DAG's running runs in the database are below max_active_runs.
 *
 * These block on the database: call them from a thread that may block, on a
 * struct store of its own (store.h). On SQLite (one scheduler per home) they
 * return -ENOTSUP: nothing about pools changes there.
 */
#ifndef BARAM_STORE_QUEUE_H
#define BARAM_STORE_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/compiler.h"

struct err;
struct store;

/* The advisory lock keys (pg_try_advisory_xact_lock in migration pg/0007's baram_queue_round /
 * pg_advisory_xact_lock). */
#define QUEUE_LOCK_DISPATCH 7262001
#define QUEUE_LOCK_RUNS     7262002

/* One try: its instance and try number. The strings are owned in results, borrowed in
 * arguments. */
struct queue_key {
    char *run_id;
    char *task_id;
    int try_number;
};

/* A try that became ready, or (running) one that runs already and takes its slot at once:
 * a try that started before its pool was limited. */
struct queue_want {
    const char *run_id;
    const char *task_id;
    int try_number;
    const char *pool;
    int priority;
    int64_t ready_at_ms; /* UTC: ties of one priority go to the one ready first */
    bool running;
};

/* A pool this scheduler limits, with its slots (the store's `pools` row wins). */
struct queue_pool {
    const char *name;
    int slots;
};

/* One admission round for scheduler sched_id (its workers.id), in one transaction: deletes
 * release (tries that ended or were withdrawn), inserts add ('scheduled'; an earlier row of
 * the same instance is replaced; a running one goes in 'running', its slot taken), grants free
 * slots of pools (when this round gets the dispatch lock: *dispatched), then claims this
 * scheduler's granted rows: *granted (malloc'd, *ngranted entries; free with queue_free_keys). 0,
 * -ENOTSUP on SQLite, or a negative code with *e filled (nothing changed). */
int queue_round(struct store *s, int64_t sched_id, const struct queue_key *release, size_t nrelease,
                const struct queue_want *add, size_t nadd, const struct queue_pool *pools,
                size_t npools, struct queue_key **granted, size_t *ngranted, bool *dispatched,
                struct err *e) WARN_UNUSED;
/* Deletes every row of scheduler sched_id (it stops, or it was declared dead): its slots are
 * free. 0, -ENOTSUP, or a negative code with *e filled. */
int queue_release_sched(struct store *s, int64_t sched_id, struct err *e) WARN_UNUSED;
void queue_free_keys(struct queue_key *v, size_t n);

/* A queued run this scheduler would start, and its DAG's max_active_runs. */
struct queue_run {
    const char *run_id;
    const char *dag_id;
    int max_active;
};

/* Starts queued runs under the runs' lock: for each DAG, as many of its runs in v (in the
 * order given) as its running runs in the database (the schedulers': owner NULL) leave room
 * for under max_active; each is set 'running' with started_at now_ms and owned by scheduler
 * sched_id in the same transaction, so the next holder counts it. A run another scheduler
 * owns, or no longer queued, is not started. *started: malloc'd run ids (free each and the
 * array), *nstarted of them. 0, -ENOTSUP on SQLite, or a negative code with *e filled. */
int queue_start_runs(struct store *s, const struct queue_run *v, size_t n, int64_t now_ms,
                     int64_t sched_id, char ***started, size_t *nstarted,
                     struct err *e) WARN_UNUSED;

/* s is on a backend with these (PostgreSQL). */
bool queue_supported(struct store *s);

#endif
