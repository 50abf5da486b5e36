-- 0007_queue.sql - the dispatch queue: task instances in flight (ti_queue) and the
-- inbox of finished tries for their run's scheduler (try_results). PostgreSQL only:
-- on SQLite one scheduler owns a home, and its pools stay in its memory.
--
-- A try of a task whose pool is limited (a pool set with `baram pools set` or in
-- baram.yaml) has one row here from the moment it is ready until it ends:
--   scheduled  the owning scheduler wants it to run (INSERT, in its admission round);
--   queued     the dispatch critical section granted it a pool slot (one holder of
--              pg_try_advisory_xact_lock(7262001) at a time counts the pool's queued
--              and running rows and grants as many as are free, priority first);
--   running    claimed by whoever runs it: the owning scheduler itself (worker_id =
--              its workers.id) until `baram worker` exists, then a worker.
-- A pool's use is the number of its queued and running rows; rows leave when the
-- try ends, when the run is cancelled, and when their scheduler is no longer
-- active in `workers` (the dispatcher deletes them before it counts; a deleted
-- `workers` row takes its rows along), so a dead scheduler never keeps slots.
-- Rows hold the instance's spec (argv, env, ...) for the workers of the next
-- issue; the scheduler's own executor needs none yet.

CREATE TABLE ti_queue (
    run_id         text NOT NULL,
    task_id        text NOT NULL,
    try_number     int NOT NULL,
    state          text NOT NULL CHECK (state IN ('scheduled', 'queued', 'running')),
    queue          text NOT NULL DEFAULT 'default',
    pool           text NOT NULL DEFAULT 'default',
    priority       int NOT NULL DEFAULT 1,
    sched_id       bigint NOT NULL              -- the scheduler that owns the run
                   REFERENCES workers (id) ON DELETE CASCADE,
    ready_at       timestamptz NOT NULL DEFAULT now(),
    queued_at      timestamptz,
    claimed_at     timestamptz,
    worker_id      bigint REFERENCES workers (id), -- who runs it, once running
    kill_requested bool NOT NULL DEFAULT false,
    spec           jsonb NOT NULL DEFAULT '{}',
    PRIMARY KEY (run_id, task_id)
);
CREATE INDEX ti_queue_ready  ON ti_queue (pool, priority DESC, ready_at) WHERE state = 'scheduled';
CREATE INDEX ti_queue_claim  ON ti_queue (queue, priority DESC, queued_at) WHERE state = 'queued';
CREATE INDEX ti_queue_busy   ON ti_queue (pool) WHERE state IN ('queued', 'running');
CREATE INDEX ti_queue_worker ON ti_queue (worker_id) WHERE state = 'running';
CREATE INDEX ti_queue_sched  ON ti_queue (sched_id);
-- Small and hot: every state change is a non-HOT update (indexed columns).
ALTER TABLE ti_queue SET (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 1000);

-- What a worker reports to the run's owner; the owner deletes what it consumed.
CREATE TABLE try_results (
    run_id     text NOT NULL,
    task_id    text NOT NULL,
    try_number int NOT NULL,
    state      text NOT NULL,
    exit_code  int NOT NULL,
    message    text,
    output     bytea,
    ended_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, task_id, try_number)
);

-- One admission round of scheduler p_sched (store/queue.c), in one statement so that it
-- costs one round trip and one commit: frees the rows of ended tries (p_rel_*), adds the
-- tries that became ready (p_add_*; running ones take their slot at once), then, as the
-- holder of the dispatch lock only (pg_try_advisory_xact_lock(7262001), held until the
-- commit), deletes the rows of schedulers no longer active and grants as many 'scheduled'
-- rows of the pools p_pool_* (the `pools` row's slots win) as they have free, priority first,
-- then the longest ready; last it claims this scheduler's granted rows. Returns them (g_run
-- NULL when none), each with g_dispatched: whether this round held the lock.
CREATE FUNCTION baram_queue_round(
    p_sched bigint,
    p_rel_run text[], p_rel_task text[], p_rel_try int[],
    p_add_run text[], p_add_task text[], p_add_try int[], p_add_pool text[], p_add_prio int[],
    p_add_ready bigint[], p_add_running bool[],
    p_pool_name text[], p_pool_slots int[])
RETURNS TABLE (g_run text, g_task text, g_try int, g_dispatched bool)
LANGUAGE plpgsql AS $$
DECLARE
    got bool;
BEGIN
    DELETE FROM ti_queue q
     USING unnest(p_rel_run, p_rel_task, p_rel_try) AS r(run_id, task_id, try_number)
     WHERE q.run_id = r.run_id AND q.task_id = r.task_id AND q.try_number = r.try_number;
    INSERT INTO ti_queue (run_id, task_id, try_number, state, pool, priority, sched_id, ready_at,
                          queued_at, claimed_at, worker_id)
    SELECT a.run_id, a.task_id, a.try_number,
           CASE WHEN a.running THEN 'running' ELSE 'scheduled' END, a.pool, a.priority, p_sched,
           to_timestamp(a.ready_ms / 1000.0), CASE WHEN a.running THEN now() END,
           CASE WHEN a.running THEN now() END, CASE WHEN a.running THEN p_sched END
      FROM unnest(p_add_run, p_add_task, p_add_try, p_add_pool, p_add_prio, p_add_ready,
                  p_add_running) AS a(run_id, task_id, try_number, pool, priority, ready_ms, running)
    ON CONFLICT (run_id, task_id) DO UPDATE
       SET try_number = EXCLUDED.try_number, state = EXCLUDED.state, pool = EXCLUDED.pool,
           priority = EXCLUDED.priority, sched_id = EXCLUDED.sched_id,
           ready_at = EXCLUDED.ready_at, queued_at = EXCLUDED.queued_at,
           claimed_at = EXCLUDED.claimed_at, worker_id = EXCLUDED.worker_id,
           kill_requested = false;
    got := pg_try_advisory_xact_lock(7262001);
    IF got AND cardinality(p_pool_name) > 0 THEN
        DELETE FROM ti_queue q WHERE NOT EXISTS (
            SELECT 1 FROM workers w WHERE w.id = q.sched_id AND w.state IN ('active', 'draining'));
        WITH p AS (SELECT a.name, coalesce(t.slots, a.slots) AS slots
                     FROM unnest(p_pool_name, p_pool_slots) AS a(name, slots)
                     LEFT JOIN pools t ON t.name = a.name),
        free AS (SELECT p.name, p.slots - (SELECT count(*) FROM ti_queue q
                                            WHERE q.pool = p.name
                                              AND q.state IN ('queued', 'running')) AS n
                   FROM p),
        pick AS MATERIALIZED (
            SELECT q.run_id, q.task_id FROM free f CROSS JOIN LATERAL (
                SELECT x.run_id, x.task_id FROM ti_queue x
                 WHERE x.state = 'scheduled' AND x.pool = f.name
                 ORDER BY x.priority DESC, x.ready_at LIMIT greatest(f.n, 0)
                   FOR UPDATE SKIP LOCKED) q)
        UPDATE ti_queue t SET state = 'queued', queued_at = now()
          FROM pick WHERE t.run_id = pick.run_id AND t.task_id = pick.task_id;
    END IF;
    RETURN QUERY
        WITH c AS (UPDATE ti_queue t SET state = 'running', worker_id = p_sched,
                          claimed_at = now()
                    WHERE t.sched_id = p_sched AND t.state = 'queued'
                   RETURNING t.run_id, t.task_id, t.try_number)
        SELECT c.run_id, c.task_id, c.try_number, got FROM c;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::int, got;
    END IF;
END
$$;
