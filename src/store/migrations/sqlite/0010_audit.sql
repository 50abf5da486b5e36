-- 0010_audit.sql - the audit log (SPEC section 13, ops/audit.h): one row per
-- state-changing command or API call, who (an API user, or cli:<unix user>),
-- from where (cli|api), what (the action), on what (dag, run, task) and its
-- details as JSON (never a secret value). Newest first by id.
CREATE TABLE audit (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    at       INTEGER NOT NULL,
    username TEXT NOT NULL,
    source   TEXT NOT NULL,
    action   TEXT NOT NULL,
    dag_id   TEXT,
    run_id   TEXT,
    task_id  TEXT,
    details  TEXT
);
CREATE INDEX audit_dag ON audit (dag_id, id);
CREATE INDEX audit_user ON audit (username, id);
