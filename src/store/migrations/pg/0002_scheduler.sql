-- 0002_scheduler.sql - what the scheduler daemon and the operations CLI share:
-- who owns a run, the DAGs the scheduler loaded (and their paused flag), the
-- import errors of the DAG folder, pools, and requests the CLI leaves for the
-- daemon (cancel). Mirrors migrations/sqlite/0002_scheduler.sql; times are
-- bigint UTC milliseconds.

-- NULL: the scheduler runs it (and resumes it after a crash); 'cli': a
-- foreground `baram run` does.
ALTER TABLE runs ADD COLUMN owner text;
CREATE INDEX runs_unfinished ON runs (queued_at) WHERE state IN ('queued', 'running');

-- A row exists once the scheduler loaded the DAG or someone paused it; a row
-- made by a pause alone has the other columns NULL.
CREATE TABLE dags (
    dag_id      text PRIMARY KEY,
    path        text,
    hash        text,
    schedule    text,
    description text,
    paused      integer NOT NULL DEFAULT 0,
    updated_at  bigint
);

-- id: the order the errors were written in (SQLite's rowid).
CREATE TABLE import_errors (
    id      bigserial PRIMARY KEY,
    path    text NOT NULL,
    line    integer NOT NULL,
    col     integer NOT NULL,
    message text NOT NULL,
    at      bigint NOT NULL
);
CREATE INDEX import_errors_path ON import_errors (path);

CREATE TABLE pools (
    name       text PRIMARY KEY,
    slots      integer NOT NULL,
    updated_at bigint NOT NULL
);

CREATE INDEX task_instances_pool ON task_instances (pool, state);

CREATE TABLE run_requests (
    run_id text NOT NULL,
    kind   text NOT NULL,
    at     bigint NOT NULL,
    PRIMARY KEY (run_id, kind)
);
