-- 0015_retention.sql - DAG versions and retention (SPEC section 13).
-- A DAG's versions are listed newest first (`baram dags versions`, GET
-- /api/v1/dags/{dag}/versions). Retention deletes finished runs ended
-- before a cutoff (`retention.runs`, `baram db clean`) and, earlier, only
-- their logs and stored logs (`retention.logs`): logs_purged_at is when a run's logs were
-- removed (NULL: they are kept), so each pass looks only at the runs whose
-- logs are still there. A run written again (a task cleared and run anew)
-- gets new logs: its write sets the column back to NULL.
CREATE INDEX dag_versions_dag ON dag_versions (dag_id, created_at);
CREATE INDEX runs_ended ON runs (ended_at) WHERE ended_at IS NOT NULL;
ALTER TABLE runs ADD COLUMN logs_purged_at bigint;
CREATE INDEX runs_logs_kept ON runs (ended_at) WHERE logs_purged_at IS NULL;
