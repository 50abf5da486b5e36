-- 0004_events.sql - the event log (store/events.h): one row per state change
-- of a run or a task instance, appended in the transaction of the change.
-- Mirrors migrations/sqlite/0004_events.sql column for column; GET
-- /api/v1/events streams it by id (the SSE id).
--
-- Tailing without gaps (events_pg.c): ids come from a sequence when a row is
-- inserted, not when it commits, so id 10 may become visible after id 11,
-- and a reader that moved past 11 would never return 10. So every id is
-- drawn by events_next_id(), which first takes the transaction-level SHARED
-- advisory lock 7262004 (shared locks never wait for each other: appenders
-- do not serialize, and cannot deadlock on it). A reader reads the sequence's
-- last value L, then waits until the transactions holding that lock at that
-- moment have ended (pg_locks; none: at once): they include every one that
-- drew an id <= L, so every id <= L is then committed or never will be, and
-- a fresh read returns them all. Unrelated transactions, however long, never
-- hold the stream back. (A filter `xid < pg_snapshot_xmin(...)` on a per-row
-- xid would: and it still loses a row when an older transaction draws a
-- higher id and commits first.)
CREATE SEQUENCE events_id_seq;

CREATE FUNCTION events_next_id() RETURNS bigint LANGUAGE plpgsql VOLATILE AS
$$ BEGIN PERFORM pg_advisory_xact_lock_shared(7262004); RETURN nextval('events_id_seq'); END $$;

CREATE TABLE events (
    id         bigint PRIMARY KEY DEFAULT events_next_id(),
    at         bigint NOT NULL,
    kind       text NOT NULL,          -- 'run' or 'task_instance'
    dag_id     text,
    run_id     text NOT NULL,
    task_id    text,                   -- NULL for runs
    state      text NOT NULL,
    try_number integer NOT NULL DEFAULT 0
);
ALTER SEQUENCE events_id_seq OWNED BY events.id;

-- Wakes every `LISTEN baram_events` (an API's event hub, in any process on any
-- host) when a transaction that appended events commits: once per statement,
-- and PostgreSQL folds the same notification within a transaction into one.
CREATE FUNCTION events_notify() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN PERFORM pg_notify('baram_events', ''); RETURN NULL; END $$;

CREATE TRIGGER events_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
