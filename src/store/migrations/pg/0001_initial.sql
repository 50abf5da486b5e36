-- 0001_initial.sql - the first schema: DAG versions, runs, task instances, tries.
-- Mirrors migrations/sqlite/0001_initial.sql column for column. Times are
-- bigint UTC milliseconds, NULL when unknown. States are their JSON names
-- (dag/state.h). Bytes that may hold anything (a DAG's source, a task's
-- output) are bytea. Every table is keyed by its natural key so each write
-- is an upsert of a whole row.

CREATE TABLE dag_versions (
    hash       text PRIMARY KEY,
    dag_id     text NOT NULL,
    source     bytea NOT NULL,
    created_at bigint NOT NULL
);

CREATE TABLE runs (
    run_id     text PRIMARY KEY,
    dag_id     text NOT NULL,
    state      text NOT NULL,
    type       text NOT NULL,
    logical_at bigint NOT NULL,
    queued_at  bigint,
    started_at bigint,
    ended_at   bigint,
    conf       text,
    dag_hash   text,
    dag_path   text
);
CREATE INDEX runs_dag_logical ON runs (dag_id, logical_at);
CREATE INDEX runs_logical ON runs (logical_at, queued_at);

-- seq: first-seen order of the task in its run (all instances of a mapped
-- task share it), so listings keep the order the scheduler met the tasks in.
CREATE TABLE task_instances (
    run_id       text NOT NULL,
    task_id      text NOT NULL,
    task         text NOT NULL,
    map_index    integer NOT NULL,
    state        text NOT NULL,
    try_number   integer NOT NULL,
    max_tries    integer NOT NULL,
    exit_code    integer NOT NULL,
    output       bytea,
    message      text,
    priority     integer NOT NULL,
    pool         text,
    scheduled_at bigint,
    queued_at    bigint,
    started_at   bigint,
    ended_at     bigint,
    seq          integer NOT NULL,
    PRIMARY KEY (run_id, task_id)
);
CREATE INDEX task_instances_task ON task_instances (run_id, task, seq);
CREATE INDEX task_instances_seq ON task_instances (run_id, seq, map_index);

CREATE TABLE tries (
    run_id      text NOT NULL,
    task_id     text NOT NULL,
    try_number  integer NOT NULL,
    state       text NOT NULL,
    exit_code   integer NOT NULL,
    term_signal integer NOT NULL,
    timed_out   integer NOT NULL,
    queued_at   bigint,
    started_at  bigint,
    ended_at    bigint,
    hostname    text,
    pid         integer NOT NULL,
    PRIMARY KEY (run_id, task_id, try_number)
);
