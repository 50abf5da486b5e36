-- 0008_ti_seq_index.sql - each seq lookup of a task instance write has one index.
--
-- A write looks up its task's seq among the task's other instances (task_instances_task,
-- run_id and task in collation "C") and else takes the run's largest + 1
-- (task_instances_seq). Both indexes led with run_id COLLATE "C", so the first lookup
-- could also be planned on task_instances_seq, filtering on task: the plan a connection
-- caches while the table is new and empty does so, and then every new instance of a
-- mapped task reads the run's rows up to its task's seq. task_instances_seq now keys
-- run_id in collation "POSIX" (the same byte order, another collation), named so by the
-- largest-seq lookup alone; neither lookup matches the other's index.
DROP INDEX task_instances_seq;
CREATE INDEX task_instances_seq ON task_instances (run_id COLLATE "POSIX", seq, map_index);
