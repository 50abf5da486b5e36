-- 0008_lost_scheduler.sql - the scheduler a run was taken from when another
-- declared it dead for its silence (SPEC sections 5 and 12): the reaper
-- releases the run and records the lost scheduler's name here, so that
-- whoever resumes the run fails the try in flight with "scheduler NAME lost".
-- A clean stop, or a successor on the same home resuming after a crash,
-- releases the runs with NULL here. Read only when resuming. PostgreSQL only:
-- on SQLite one scheduler runs per home and nothing is taken from another.

ALTER TABLE runs ADD COLUMN lost_sched text;
