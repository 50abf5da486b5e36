-- 0007_try_worker.sql - the worker that ran a try: on PostgreSQL a worker's
-- name; on SQLite the scheduler runs every try itself, so it stays NULL. The
-- column is here so that both backends read tries with the same columns.
ALTER TABLE tries ADD COLUMN worker TEXT;
