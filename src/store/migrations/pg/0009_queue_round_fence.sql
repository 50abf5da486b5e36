-- 0009_queue_round_fence.sql - two changes to the admission round of 0007
-- (baram_queue_round, same arguments and results):
--  * the dispatch lock holder's clean-up of rows of schedulers no longer active skips
--    rows another transaction has locked (FOR UPDATE SKIP LOCKED; a later round removes
--    them). It waited on them before: a scheduler taking over a dead one's runs upserts
--    those rows in its own round, locking several in its order while the holder deleted
--    them in another, a lock cycle PostgreSQL ends with 40P01. The holder now waits on
--    no other round's rows at all.
--  * a round is fenced like the writer's batches: the scheduler must be active (or
--    draining, as the clean-up counts it live), else the round fails and changes nothing,
--    so a scheduler declared dead but still running inserts no rows and claims no grants.

CREATE OR REPLACE FUNCTION baram_queue_round(
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
    -- Fenced: a scheduler declared dead writes and claims nothing here. Its row stays shared-
    -- locked until the round commits, so the reaper cannot declare it dead meanwhile either.
    PERFORM 1 FROM workers WHERE id = p_sched AND state IN ('active', 'draining') FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'scheduler % is not active: its admission round is refused', p_sched
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
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
        DELETE FROM ti_queue q WHERE (q.run_id, q.task_id) IN (
            SELECT x.run_id, x.task_id FROM ti_queue x WHERE NOT EXISTS (
                SELECT 1 FROM workers w WHERE w.id = x.sched_id
                   AND w.state IN ('active', 'draining'))
               FOR UPDATE OF x SKIP LOCKED);
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
