-- 0007_queue.sql - the dispatch queue: task instances in flight (ti_queue) and the
-- inbox of finished tries for their run's scheduler (try_results). PostgreSQL only:
-- on SQLite one scheduler owns a home, and its pools stay in its memory.
--
-- A try of a task whose pool is limited (a pool set with `baram pools set` or in
-- baram.yaml) has one row here from the moment it is ready until it ends:
--   scheduled  the owning scheduler wants it to run (INSERT, in its admission round);
--   queued     the dispatch critical section granted it a pool slot (one holder of
--              pg_try_advisory_xact_lock(7262001) at a time counts the pool's queued
--              and running rows and grants as many as are free, priority first);
--   running    claimed by whoever runs it: the owning scheduler itself (worker_id =
--              its workers.id) until `baram worker` exists, then a worker.
-- A pool's use is the number of its queued and running rows; rows leave when the
-- try ends, when the run is cancelled, and when their scheduler is no longer
-- active in `workers` (the dispatcher deletes them before it counts), so a dead
-- scheduler never keeps slots. Rows hold the instance's spec (argv, env, ...)
-- for the workers of the next issue; the scheduler's own executor needs none yet.

CREATE TABLE ti_queue (
    run_id         text NOT NULL,
    task_id        text NOT NULL,
    try_number     int NOT NULL,
    state          text NOT NULL CHECK (state IN ('scheduled', 'queued', 'running')),
    queue          text NOT NULL DEFAULT 'default',
    pool           text NOT NULL DEFAULT 'default',
    priority       int NOT NULL DEFAULT 1,
    sched_id       bigint NOT NULL,            -- the scheduler that owns the run (workers.id)
    ready_at       timestamptz NOT NULL DEFAULT now(),
    queued_at      timestamptz,
    claimed_at     timestamptz,
    worker_id      bigint,                     -- who runs it (workers.id), once running
    kill_requested bool NOT NULL DEFAULT false,
    spec           jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, task_id)
);
CREATE INDEX ti_queue_ready  ON ti_queue (pool, priority DESC, ready_at) WHERE state = 'scheduled';
CREATE INDEX ti_queue_claim  ON ti_queue (queue, priority DESC, queued_at) WHERE state = 'queued';
CREATE INDEX ti_queue_busy   ON ti_queue (pool) WHERE state IN ('queued', 'running');
CREATE INDEX ti_queue_worker ON ti_queue (worker_id) WHERE state = 'running';
CREATE INDEX ti_queue_sched  ON ti_queue (sched_id);
-- Small and hot: every state change is a non-HOT update (indexed columns).
ALTER TABLE ti_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- What a worker reports to the run's owner; the owner deletes what it consumed.
CREATE TABLE try_results (
    run_id     text NOT NULL,
    task_id    text NOT NULL,
    try_number int NOT NULL,
    state      text NOT NULL,
    exit_code  int NOT NULL,
    message    text,
    output     bytea,
    ended_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, task_id, try_number)
);
