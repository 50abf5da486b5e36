-- 0006_distributed.sql - several schedulers on one database (SPEC section 12):
-- the registry of schedulers and workers with their heartbeats, which scheduler
-- owns each run, and one run per scheduled interval. Times are INTEGER UTC ms.
-- On SQLite one scheduler runs per home (its lock), but it registers too, so
-- `baram workers list` shows it; 0007 (the queue of task instances for
-- workers) references workers (id).

CREATE TABLE workers (
    id           INTEGER PRIMARY KEY, -- rows are never deleted: ids never come back
    role         TEXT NOT NULL CHECK (role IN ('worker', 'scheduler')),
    name         TEXT NOT NULL,
    hostname     TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    queues       TEXT NOT NULL DEFAULT 'default', -- comma-separated
    slots        INTEGER NOT NULL DEFAULT 0,
    log_url      TEXT,
    home         TEXT, -- a scheduler's home folder (absolute): its successor there replaces it
    state        TEXT NOT NULL DEFAULT 'active'
                 CHECK (state IN ('active', 'draining', 'dead', 'stopped')),
    started_at   INTEGER NOT NULL,
    heartbeat_at INTEGER NOT NULL
);
CREATE INDEX workers_live ON workers (role, state);

-- The scheduler that owns the run (workers.id); NULL: any scheduler may claim it.
ALTER TABLE runs ADD COLUMN sched_id INTEGER;
CREATE INDEX runs_sched ON runs (sched_id) WHERE state IN ('queued', 'running');

-- A scheduled interval exists once, however many schedulers plan it.
CREATE UNIQUE INDEX runs_scheduled_once ON runs (dag_id, logical_at) WHERE type = 'scheduled';
