-- 0006_distributed.sql - several schedulers on one database (SPEC section 12):
-- the registry of schedulers and workers with their heartbeats, which scheduler
-- owns each run, and one run per scheduled interval. started_at and
-- heartbeat_at are the database's clock (now()), and leases compare them with
-- now() only, so the hosts' clocks never matter. heartbeat_at is not indexed:
-- a heartbeat is a HOT update (fillfactor 50 leaves the room). 0007 (the queue
-- of task instances for workers) references workers (id).

CREATE TABLE workers (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    role         text NOT NULL CHECK (role IN ('worker', 'scheduler')),
    name         text NOT NULL,
    hostname     text NOT NULL,
    pid          integer NOT NULL,
    queues       text[] NOT NULL DEFAULT '{default}',
    slots        integer NOT NULL DEFAULT 0,
    log_url      text,
    home         text, -- a scheduler's home folder (absolute): its successor there replaces it
    state        text NOT NULL DEFAULT 'active'
                 CHECK (state IN ('active', 'draining', 'dead', 'stopped')),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 50);
CREATE INDEX workers_live ON workers (role, state);

-- The scheduler that owns the run (workers.id); NULL: any scheduler may claim it.
ALTER TABLE runs ADD COLUMN sched_id bigint;
CREATE INDEX runs_sched ON runs (sched_id) WHERE state IN ('queued', 'running');

-- A scheduled interval exists once, however many schedulers plan it.
CREATE UNIQUE INDEX runs_scheduled_once ON runs (dag_id, logical_at) WHERE type = 'scheduled';
