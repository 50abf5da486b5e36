-- notify: one row per message a hook sent (or tried to send) to a notifier, and the mark
-- that a run's deadline fired (hook 'deadline'). id: run_id, task, try, hook, notifier.
CREATE TABLE deliveries (
    id          TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    task_id     TEXT,
    try_number  INTEGER NOT NULL DEFAULT 0,
    hook        TEXT NOT NULL,
    notifier    TEXT NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    state       TEXT NOT NULL,
    status      INTEGER NOT NULL DEFAULT 0,
    error       TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);
CREATE INDEX deliveries_run ON deliveries (run_id, created_at);
