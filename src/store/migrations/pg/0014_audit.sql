-- 0014_audit.sql - the audit log (SPEC section 13, ops/audit.h). Mirrors
-- migrations/sqlite/0010_audit.sql: one row per state-changing command or
-- API call, who (an API user, or cli:<unix user>), from where (cli|api),
-- what (the action), on what (dag, run, task) and its details as JSON text
-- (never a secret value). Newest first by id.
CREATE TABLE audit (
    id       bigserial PRIMARY KEY,
    at       bigint NOT NULL,
    username text NOT NULL,
    source   text NOT NULL,
    action   text NOT NULL,
    dag_id   text,
    run_id   text,
    task_id  text,
    details  text
);
CREATE INDEX audit_dag ON audit (dag_id, id);
CREATE INDEX audit_user ON audit (username, id);
