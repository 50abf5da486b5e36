-- 0002_scheduler.sql - what the scheduler daemon and the operations CLI share:
-- who owns a run, the DAGs the scheduler loaded (and their paused flag), the
-- import errors of the DAG folder, pools, and requests the CLI leaves for the
-- daemon (cancel). Times are INTEGER UTC milliseconds.

-- NULL: the scheduler runs it (and resumes it after a crash); 'cli': a
-- foreground `baram run` does.
ALTER TABLE runs ADD COLUMN owner TEXT;
CREATE INDEX runs_unfinished ON runs (queued_at) WHERE state IN ('queued', 'running');

-- A row exists once the scheduler loaded the DAG or someone paused it; a row
-- made by a pause alone has the other columns NULL.
CREATE TABLE dags (
    dag_id      TEXT PRIMARY KEY,
    path        TEXT,
    hash        TEXT,
    schedule    TEXT,
    description TEXT,
    paused      INTEGER NOT NULL DEFAULT 0,
    updated_at  INTEGER
);

CREATE TABLE import_errors (
    path    TEXT NOT NULL,
    line    INTEGER NOT NULL,
    col     INTEGER NOT NULL,
    message TEXT NOT NULL,
    at      INTEGER NOT NULL
);
CREATE INDEX import_errors_path ON import_errors (path);

CREATE TABLE pools (
    name       TEXT PRIMARY KEY,
    slots      INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE INDEX task_instances_pool ON task_instances (pool, state);

CREATE TABLE run_requests (
    run_id TEXT NOT NULL,
    kind   TEXT NOT NULL,
    at     INTEGER NOT NULL,
    PRIMARY KEY (run_id, kind)
) WITHOUT ROWID;
