-- 0010_worker.sql - `baram worker`: the protocol between schedulers and workers (SPEC
-- section 12, store/wq.h). Every try on PostgreSQL is a ti_queue row handed out with its
-- spec (JSON, exec/tryspec.h); workers claim, run and finish them; the run's owner reads
-- what they report from its inbox, try_results. Only schedulers write task instances.
--
--  * try_results, the inbox, gains the raw end of a try and its phase:
--      running  a worker claimed the try (worker, started_at): the owner marks it running;
--      ended    the try ended on its worker (exit_code, term_signal, timed_out, killed,
--               met, hold_ms, message, output);
--      lost     its worker was declared dead (exit_code -1, 'worker NAME lost').
--    One row per try: 'ended' or 'lost' replaces a 'running' row not consumed yet.
--    The owner consumes a row in two steps: it takes it (taken_by, taken_phase: the phase
--    it saw), then deletes it once the records it made of it are durable (wq_ack_results).
--    A row taken and not deleted stays for the run's next owner (or for the same one when it
--    lost the take's answer): results are never lost with a scheduler. A row whose phase
--    changed since it was taken ('running' became 'ended') is taken again.
--  * try_logs keeps a stopped try's log (the last logs.store_max bytes), written by the
--    worker in the transaction of its finish, so logs outlive the worker.
--  * baram_queue_round (0007, 0009) leaves alone the rows that carry a spec: they are
--    handed to workers. Its clean-up of the rows of schedulers no longer active keeps
--    them (they belong to the run, which another scheduler adopts: baram_wq_adopt), its
--    claim of granted rows takes only rows without a spec (the ones the scheduler has not
--    submitted yet), and its upsert does not replace a submitted row of the same try.
--  * functions that make each step of the protocol one round trip: baram_wq_claim,
--    baram_wq_finish, baram_wq_withdraw, baram_wq_sweep, baram_wq_adopt.
-- Lock order (no 40P01 between the roles): claims, the sweep and the inbox's consumer (its
-- take and its delete) skip locked rows (FOR UPDATE SKIP LOCKED) and never wait on one; the others (finish, withdraw,
-- adopt, submit) lock ti_queue and try_results rows in key order (run_id, task_id[, try]).
-- NOTIFYs: 'baram_queued' (payload: the queue) when tries are submitted, one per queue per
-- transaction; 'baram_sched_<id>' (payload '') to a run's owner when its inbox has new rows;
-- 'baram_worker_<id>' (payload '') when one of a worker's tries is to be killed.

-- A worker's machine and PID namespace (exec/orphans.h orphans_host_key): a scheduler
-- starting beside it may judge by its pid whether it is gone only when the keys match.
ALTER TABLE workers ADD COLUMN host_key text;

ALTER TABLE try_results DROP COLUMN state;
ALTER TABLE try_results
    ADD COLUMN phase       text NOT NULL DEFAULT 'ended'
                           CHECK (phase IN ('running', 'ended', 'lost')),
    ADD COLUMN worker      text,
    ADD COLUMN started_at  timestamptz,
    ADD COLUMN term_signal int NOT NULL DEFAULT 0,
    ADD COLUMN timed_out   bool NOT NULL DEFAULT false,
    ADD COLUMN killed      bool NOT NULL DEFAULT false,
    ADD COLUMN met         bool NOT NULL DEFAULT false,
    ADD COLUMN hold_ms     bigint NOT NULL DEFAULT 0,
    ADD COLUMN taken_by    bigint,
    ADD COLUMN taken_phase text;
ALTER TABLE try_results ALTER COLUMN exit_code SET DEFAULT 0;
ALTER TABLE try_results ALTER COLUMN ended_at DROP NOT NULL;
ALTER TABLE try_results ALTER COLUMN ended_at DROP DEFAULT;

CREATE TABLE try_logs (
    run_id     text NOT NULL,
    task_id    text NOT NULL,
    try_number int NOT NULL,
    log        bytea NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, task_id, try_number)
);

-- The admission round of 0009, with the three changes above (same arguments and results).
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
           kill_requested = false, spec = '{}'
     WHERE ti_queue.spec = '{}'::jsonb OR ti_queue.try_number < EXCLUDED.try_number;
    got := pg_try_advisory_xact_lock(7262001);
    IF got AND cardinality(p_pool_name) > 0 THEN
        DELETE FROM ti_queue q WHERE (q.run_id, q.task_id) IN (
            SELECT x.run_id, x.task_id FROM ti_queue x
             WHERE x.spec = '{}'::jsonb AND NOT EXISTS (
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
                    WHERE t.sched_id = p_sched AND t.state = 'queued' AND t.spec = '{}'::jsonb
                   RETURNING t.run_id, t.task_id, t.try_number)
        SELECT c.run_id, c.task_id, c.try_number, got FROM c;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::text, NULL::text, NULL::int, got;
    END IF;
END
$$;

-- SUBMIT (scheduler p_sched, active: fenced like the admission round): the tries of the runs
-- it owns become 'queued' rows with their spec, for workers. A pool-limited try's granted
-- row (no spec yet) is turned into one and keeps its slot; a row already handed out of the
-- same try, or of a newer one, is never touched (a late or repeated submission must not
-- hand a try out twice, nor rewind it). Returns the queues notified (one NOTIFY
-- baram_queued per queue).
CREATE FUNCTION baram_wq_submit(
    p_sched bigint, p_run text[], p_task text[], p_try int[], p_queue text[], p_pool text[],
    p_prio int[], p_spec text[])
RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    qs text[];
BEGIN
    PERFORM 1 FROM workers WHERE id = p_sched AND state IN ('active', 'draining') FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'scheduler % is not active: its tries are not handed out', p_sched
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    WITH a AS (
        SELECT DISTINCT ON (a.run_id, a.task_id) a.*
          FROM unnest(p_run, p_task, p_try, p_queue, p_pool, p_prio, p_spec) WITH ORDINALITY
               AS a(run_id, task_id, try_number, queue, pool, priority, spec, i)
          JOIN runs r ON r.run_id = a.run_id AND r.sched_id = p_sched
         ORDER BY a.run_id, a.task_id, a.i DESC),
    up AS (
        INSERT INTO ti_queue AS t (run_id, task_id, try_number, state, queue, pool, priority,
                                   sched_id, ready_at, queued_at, spec)
        SELECT a.run_id, a.task_id, a.try_number, 'queued', a.queue, a.pool, a.priority,
               p_sched, now(), now(), a.spec::jsonb FROM a ORDER BY a.run_id, a.task_id
        ON CONFLICT (run_id, task_id) DO UPDATE
           SET try_number = EXCLUDED.try_number, state = 'queued', queue = EXCLUDED.queue,
               priority = EXCLUDED.priority, sched_id = EXCLUDED.sched_id,
               queued_at = now(), claimed_at = NULL, worker_id = NULL,
               kill_requested = false, spec = EXCLUDED.spec
         WHERE t.try_number < EXCLUDED.try_number
            OR (t.try_number = EXCLUDED.try_number AND t.spec = '{}'::jsonb)
        RETURNING t.queue)
    SELECT coalesce(array_agg(DISTINCT up.queue), '{}') INTO qs FROM up;
    PERFORM pg_notify('baram_queued', q) FROM unnest(qs) AS q;
    RETURN QUERY SELECT unnest(qs);
END
$$;

-- CLAIM (worker p_worker, named p_name): up to p_max queued tries of its queues, priority
-- first, then the longest queued; each gets a 'running' row in its owner's inbox. A worker
-- that is not active (draining, dead, stopped) claims nothing; its row stays share-locked
-- until the commit, so a sweep cannot declare it dead meanwhile (it skips it).
CREATE FUNCTION baram_wq_claim(p_worker bigint, p_name text, p_queues text[], p_max int)
RETURNS TABLE (c_run text, c_task text, c_try int, c_spec text)
LANGUAGE plpgsql AS $$
DECLARE
    runs_ text[];
    tasks text[];
    tries int[];
    specs text[];
    owners bigint[];
BEGIN
    PERFORM 1 FROM workers WHERE id = p_worker AND state = 'active' FOR SHARE;
    IF NOT FOUND OR p_max <= 0 THEN
        RETURN;
    END IF;
    -- Per queue, the index ti_queue_claim gives its best rows in order (queue = ANY would
    -- sort every queued row: milliseconds with thousands queued); the best p_max of those.
    WITH pick AS MATERIALIZED (
        SELECT c.run_id, c.task_id
          FROM (SELECT DISTINCT u.name FROM unnest(p_queues) AS u(name)) qn
         CROSS JOIN LATERAL (
            SELECT q.run_id, q.task_id, q.priority, q.queued_at FROM ti_queue q
             WHERE q.state = 'queued' AND q.queue = qn.name AND q.spec <> '{}'::jsonb
             ORDER BY q.priority DESC, q.queued_at LIMIT p_max FOR UPDATE SKIP LOCKED) c
         ORDER BY c.priority DESC, c.queued_at LIMIT p_max),
    c AS (
        UPDATE ti_queue t SET state = 'running', worker_id = p_worker, claimed_at = now()
          FROM pick WHERE t.run_id = pick.run_id AND t.task_id = pick.task_id
        RETURNING t.run_id, t.task_id, t.try_number, t.spec, t.claimed_at, t.priority,
                  t.queued_at),
    r AS (
        INSERT INTO try_results AS x (run_id, task_id, try_number, phase, worker, started_at)
        SELECT c.run_id, c.task_id, c.try_number, 'running', p_name, c.claimed_at FROM c
        ON CONFLICT (run_id, task_id, try_number) DO UPDATE
           SET phase = 'running', worker = EXCLUDED.worker, started_at = EXCLUDED.started_at
         WHERE x.phase = 'running')
    SELECT array_agg(c.run_id ORDER BY c.priority DESC, c.queued_at),
           array_agg(c.task_id ORDER BY c.priority DESC, c.queued_at),
           array_agg(c.try_number ORDER BY c.priority DESC, c.queued_at),
           array_agg(c.spec::text ORDER BY c.priority DESC, c.queued_at)
      INTO runs_, tasks, tries, specs FROM c;
    IF runs_ IS NULL THEN
        RETURN;
    END IF;
    SELECT array_agg(DISTINCT r.sched_id) INTO owners FROM runs r
     WHERE r.sched_id IS NOT NULL AND r.run_id = ANY (runs_);
    PERFORM pg_notify('baram_sched_' || o, '') FROM unnest(owners) AS o;
    RETURN QUERY SELECT * FROM unnest(runs_, tasks, tries, specs);
END
$$;

-- FINISH (worker p_worker), fenced: a try's row goes only if it is still this worker's and
-- running; then, only for those, its end goes to the inbox ('ended') and its log to try_logs.
-- p_out_off/p_out_len and p_log_off/p_log_len (1-based offset, length; length -1: none) cut
-- the outputs and logs out of one binary blob, p_blob. Returns the positions (1-based) of
-- the ends accepted; the others were discarded (the try was taken from this worker).
CREATE FUNCTION baram_wq_finish(
    p_worker bigint, p_run text[], p_task text[], p_try int[], p_exit int[], p_sig int[],
    p_timed bool[], p_killed bool[], p_met bool[], p_hold bigint[], p_msg text[],
    p_out_off int[], p_out_len int[], p_log_off int[], p_log_len int[], p_blob bytea)
RETURNS SETOF int
LANGUAGE plpgsql AS $$
DECLARE
    acc int[];
    owners bigint[];
BEGIN
    WITH a AS (
        SELECT DISTINCT ON (run_id, task_id, try_number) *
          FROM unnest(p_run, p_task, p_try, p_exit, p_sig, p_timed, p_killed, p_met, p_hold,
                      p_msg, p_out_off, p_out_len, p_log_off, p_log_len) WITH ORDINALITY
               AS a(run_id, task_id, try_number, exit_code, term_signal, timed_out, killed, met,
                    hold_ms, message, out_off, out_len, log_off, log_len, i)
         ORDER BY run_id, task_id, try_number, i),
    mine AS MATERIALIZED (
        SELECT x.run_id, x.task_id FROM ti_queue x JOIN a
            ON x.run_id = a.run_id AND x.task_id = a.task_id AND x.try_number = a.try_number
         WHERE x.worker_id = p_worker AND x.state = 'running'
         ORDER BY x.run_id, x.task_id FOR UPDATE OF x),
    gone AS (
        DELETE FROM ti_queue q USING mine
         WHERE q.run_id = mine.run_id AND q.task_id = mine.task_id
        RETURNING q.run_id, q.task_id, q.try_number, q.claimed_at),
    g AS (
        SELECT a.*, gone.claimed_at FROM a
          JOIN gone ON gone.run_id = a.run_id AND gone.task_id = a.task_id
                   AND gone.try_number = a.try_number),
    res AS (
        INSERT INTO try_results AS x (run_id, task_id, try_number, phase, worker, started_at,
                                      ended_at, exit_code, term_signal, timed_out, killed, met,
                                      hold_ms, message, output)
        SELECT g.run_id, g.task_id, g.try_number, 'ended',
               (SELECT w.name FROM workers w WHERE w.id = p_worker), g.claimed_at, now(),
               g.exit_code, g.term_signal, g.timed_out, g.killed, g.met, g.hold_ms, g.message,
               CASE WHEN g.out_len >= 0 THEN substring(p_blob FROM g.out_off FOR g.out_len) END
          FROM g ORDER BY g.run_id, g.task_id, g.try_number
        ON CONFLICT (run_id, task_id, try_number) DO UPDATE
           SET phase = 'ended', worker = coalesce(x.worker, EXCLUDED.worker),
               started_at = coalesce(x.started_at, EXCLUDED.started_at),
               ended_at = EXCLUDED.ended_at, exit_code = EXCLUDED.exit_code,
               term_signal = EXCLUDED.term_signal, timed_out = EXCLUDED.timed_out,
               killed = EXCLUDED.killed, met = EXCLUDED.met, hold_ms = EXCLUDED.hold_ms,
               message = EXCLUDED.message, output = EXCLUDED.output),
    logs AS (
        INSERT INTO try_logs (run_id, task_id, try_number, log)
        SELECT g.run_id, g.task_id, g.try_number, substring(p_blob FROM g.log_off FOR g.log_len)
          FROM g WHERE g.log_len >= 0 ORDER BY g.run_id, g.task_id, g.try_number
        ON CONFLICT (run_id, task_id, try_number) DO UPDATE
           SET log = EXCLUDED.log, stored_at = now())
    SELECT coalesce(array_agg(g.i::int), '{}') INTO acc FROM g;
    SELECT array_agg(DISTINCT r.sched_id) INTO owners FROM runs r
     WHERE r.sched_id IS NOT NULL AND r.run_id IN (SELECT p_run[k] FROM unnest(acc) AS k);
    PERFORM pg_notify('baram_sched_' || o, '') FROM unnest(owners) AS o;
    RETURN QUERY SELECT unnest(acc);
END
$$;

-- WITHDRAW (a run's owner cancels tries): a row not claimed yet is deleted (its position
-- returned: the try ends killed at once); a claimed one of the same try is marked
-- kill_requested and its worker notified. Two statements: the second sees a claim that
-- committed while the first waited for the row.
CREATE FUNCTION baram_wq_withdraw(p_run text[], p_task text[], p_try int[])
RETURNS SETOF int
LANGUAGE plpgsql AS $$
DECLARE
    gone int[];
    ws bigint[];
BEGIN
    WITH a AS (
        SELECT * FROM unnest(p_run, p_task, p_try) WITH ORDINALITY
                 AS a(run_id, task_id, try_number, i)),
    l AS MATERIALIZED (
        SELECT x.run_id, x.task_id FROM ti_queue x JOIN a
            ON x.run_id = a.run_id AND x.task_id = a.task_id AND x.try_number = a.try_number
         WHERE x.state IN ('scheduled', 'queued')
         ORDER BY x.run_id, x.task_id FOR UPDATE OF x),
    d AS (
        DELETE FROM ti_queue q USING l WHERE q.run_id = l.run_id AND q.task_id = l.task_id
        RETURNING q.run_id, q.task_id)
    SELECT coalesce(array_agg(a.i::int), '{}') INTO gone FROM a
      JOIN d ON d.run_id = a.run_id AND d.task_id = a.task_id;
    WITH a AS (
        SELECT * FROM unnest(p_run, p_task, p_try) WITH ORDINALITY
                 AS a(run_id, task_id, try_number, i)),
    l AS MATERIALIZED (
        SELECT x.run_id, x.task_id FROM ti_queue x JOIN a
            ON x.run_id = a.run_id AND x.task_id = a.task_id AND x.try_number = a.try_number
         WHERE x.state = 'running' AND a.i <> ALL (gone)
         ORDER BY x.run_id, x.task_id FOR UPDATE OF x),
    k AS (
        UPDATE ti_queue q SET kill_requested = true FROM l
         WHERE q.run_id = l.run_id AND q.task_id = l.task_id
        RETURNING q.worker_id)
    SELECT array_agg(DISTINCT k.worker_id) INTO ws FROM k WHERE k.worker_id IS NOT NULL;
    PERFORM pg_notify('baram_worker_' || w, '') FROM unnest(ws) AS w;
    RETURN QUERY SELECT unnest(gone);
END
$$;

-- SWEEP (any scheduler, at any time; concurrent sweeps skip each other's rows): workers
-- silent for p_dead_after_ms by the database's clock are declared dead, and the running
-- tries of dead (or stopped) workers become 'lost' rows in their owners' inboxes. A try's
-- row locked by its worker's finish is skipped: the finish wins, or a later sweep takes it.
-- Returns how many were declared dead.
CREATE FUNCTION baram_wq_sweep(p_dead_after_ms bigint)
RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    n int;
    lruns text[];
    owners bigint[];
BEGIN
    WITH dead AS (
        UPDATE workers w SET state = 'dead'
         WHERE w.id IN (SELECT x.id FROM workers x
                         WHERE x.role = 'worker' AND x.state IN ('active', 'draining')
                           AND x.heartbeat_at < now() - p_dead_after_ms * interval '1 millisecond'
                           FOR UPDATE SKIP LOCKED)
        RETURNING w.id, w.name),
    gone AS (
        SELECT id, name FROM dead
        UNION
        SELECT id, name FROM workers WHERE role = 'worker' AND state IN ('dead', 'stopped')),
    pick AS MATERIALIZED (
        SELECT x.run_id, x.task_id FROM ti_queue x
         WHERE x.state = 'running' AND x.worker_id IN (SELECT id FROM gone)
           FOR UPDATE SKIP LOCKED),
    lost AS (
        DELETE FROM ti_queue q USING pick, gone
         WHERE q.run_id = pick.run_id AND q.task_id = pick.task_id AND gone.id = q.worker_id
        RETURNING q.run_id, q.task_id, q.try_number, q.claimed_at, gone.name),
    res AS (
        INSERT INTO try_results AS x (run_id, task_id, try_number, phase, worker, started_at,
                                      ended_at, exit_code, message)
        SELECT l.run_id, l.task_id, l.try_number, 'lost', l.name, l.claimed_at, now(), -1,
               'worker ' || l.name || ' lost'
          FROM lost l
        ON CONFLICT (run_id, task_id, try_number) DO UPDATE
           SET phase = 'lost', worker = EXCLUDED.worker,
               started_at = coalesce(x.started_at, EXCLUDED.started_at),
               ended_at = EXCLUDED.ended_at, exit_code = -1, term_signal = 0,
               timed_out = false, killed = false, met = false, hold_ms = 0,
               message = EXCLUDED.message, output = NULL
         WHERE x.phase = 'running')
    SELECT (SELECT count(*) FROM dead), (SELECT array_agg(DISTINCT lost.run_id) FROM lost)
      INTO n, lruns;
    SELECT array_agg(DISTINCT r.sched_id) INTO owners FROM runs r
     WHERE r.sched_id IS NOT NULL AND r.run_id = ANY (lruns);
    PERFORM pg_notify('baram_sched_' || o, '') FROM unnest(owners) AS o;
    RETURN n;
END
$$;

-- ADOPT (a scheduler that took run p_run over, or resumes it): the run's rows handed to
-- workers (with a spec) become p_sched's and are returned: those tries are in flight. The
-- other schedulers' rows of the run without a spec (waiting for a pool slot, or granted but
-- never submitted) are deleted: nobody runs them, the adopter decides again.
CREATE FUNCTION baram_wq_adopt(p_sched bigint, p_run text)
RETURNS TABLE (a_task text, a_try int)
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM 1 FROM workers WHERE id = p_sched AND state IN ('active', 'draining') FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'scheduler % is not active: it cannot adopt run %', p_sched, p_run
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    DELETE FROM ti_queue q WHERE q.run_id = p_run AND q.task_id IN (
        SELECT x.task_id FROM ti_queue x
         WHERE x.run_id = p_run AND x.spec = '{}'::jsonb AND x.sched_id <> p_sched
         ORDER BY x.task_id FOR UPDATE);
    RETURN QUERY
        UPDATE ti_queue q SET sched_id = p_sched
         WHERE q.run_id = p_run AND q.task_id IN (
            SELECT x.task_id FROM ti_queue x WHERE x.run_id = p_run AND x.spec <> '{}'::jsonb
             ORDER BY x.task_id FOR UPDATE)
        RETURNING q.task_id, q.try_number;
END
$$;

-- The statements of the claim, the finish and the submit are planned once per connection:
-- with custom plans (the default) PostgreSQL planned them again at every call, which cost
-- more than running them (the claim's pick most: a worker claims several times a second per
-- slot). The generic plans read the same indexes (ti_queue_claim per queue, the keys).
ALTER FUNCTION baram_wq_claim(bigint, text, text[], int) SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION baram_wq_finish(bigint, text[], text[], int[], int[], int[], bool[], bool[], bool[],
                               bigint[], text[], int[], int[], int[], int[], bytea)
    SET plan_cache_mode = force_generic_plan;
ALTER FUNCTION baram_wq_submit(bigint, text[], text[], int[], text[], text[], int[], text[])
    SET plan_cache_mode = force_generic_plan;
