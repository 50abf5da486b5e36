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
-- Both serve only the seq lookups of a write, which name them by their collation: a
-- plain `run_id = ...` matches neither, so a lookup by primary key can never be planned
-- on them (a table without statistics yet, or a plan cached while it was small,
-- otherwise scans the whole run for one row). The task's own seq is looked up on
-- task_instances_task (run_id in "C"), the run's largest on task_instances_seq (run_id
-- in "POSIX": the same byte order, another collation), so neither lookup can be planned
-- on the other's index either (a generic plan did, and read the run's rows up to the
-- task's seq for every new instance of a mapped task).
CREATE INDEX task_instances_task ON task_instances (run_id COLLATE "C", task COLLATE "C", seq);
CREATE INDEX task_instances_seq ON task_instances (run_id COLLATE "POSIX", seq, map_index);

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
