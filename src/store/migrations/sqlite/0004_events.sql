-- 0004_events.sql - the event log: one row per state change of a run or a
-- task instance, written by the group-commit writer in the same transaction
-- as the change itself, so an event is never seen before its change is
-- durable. GET /api/v1/events streams it (id = the SSE event id, so a client
-- resumes with Last-Event-ID); old rows are pruned to the newest ones.
CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    at         INTEGER NOT NULL,
    kind       TEXT NOT NULL,          -- 'run' or 'task_instance'
    dag_id     TEXT,
    run_id     TEXT NOT NULL,
    task_id    TEXT,                   -- NULL for runs
    state      TEXT NOT NULL,
    try_number INTEGER NOT NULL DEFAULT 0
);
