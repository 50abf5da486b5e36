-- 0001_initial.sql - the first schema: DAG versions, runs, task instances, tries.
-- Times are INTEGER UTC milliseconds, NULL when unknown. States are their
-- JSON names (dag/state.h). Every table is keyed by its natural key so each
-- write is an upsert of a whole row.
--
-- Later migrations add: users, pools, workers (the service registry,
-- heartbeats), events (the audit/event log).

CREATE TABLE dag_versions (
    hash       TEXT PRIMARY KEY,
    dag_id     TEXT NOT NULL,
    source     BLOB NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE runs (
    run_id     TEXT PRIMARY KEY,
    dag_id     TEXT NOT NULL,
    state      TEXT NOT NULL,
    type       TEXT NOT NULL,
    logical_at INTEGER NOT NULL,
    queued_at  INTEGER,
    started_at INTEGER,
    ended_at   INTEGER,
    conf       TEXT,
    dag_hash   TEXT,
    dag_path   TEXT
);
CREATE INDEX runs_dag_logical ON runs (dag_id, logical_at);
CREATE INDEX runs_logical ON runs (logical_at, queued_at);

-- seq: first-seen order of the task in its run (all instances of a mapped
-- task share it), so listings keep the order the scheduler met the tasks in.
CREATE TABLE task_instances (
    run_id       TEXT NOT NULL,
    task_id      TEXT NOT NULL,
    task         TEXT NOT NULL,
    map_index    INTEGER NOT NULL,
    state        TEXT NOT NULL,
    try_number   INTEGER NOT NULL,
    max_tries    INTEGER NOT NULL,
    exit_code    INTEGER NOT NULL,
    output       BLOB,
    message      TEXT,
    priority     INTEGER NOT NULL,
    pool         TEXT,
    scheduled_at INTEGER,
    queued_at    INTEGER,
    started_at   INTEGER,
    ended_at     INTEGER,
    seq          INTEGER NOT NULL,
    PRIMARY KEY (run_id, task_id)
) WITHOUT ROWID;
CREATE INDEX task_instances_task ON task_instances (run_id, task, seq);
CREATE INDEX task_instances_seq ON task_instances (run_id, seq, map_index);

CREATE TABLE tries (
    run_id      TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    try_number  INTEGER NOT NULL,
    state       TEXT NOT NULL,
    exit_code   INTEGER NOT NULL,
    term_signal INTEGER NOT NULL,
    timed_out   INTEGER NOT NULL,
    queued_at   INTEGER,
    started_at  INTEGER,
    ended_at    INTEGER,
    hostname    TEXT,
    pid         INTEGER NOT NULL,
    PRIMARY KEY (run_id, task_id, try_number)
) WITHOUT ROWID;
