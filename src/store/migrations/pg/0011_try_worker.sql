-- 0011_try_worker.sql - the worker that ran a try (SPEC section 12): its name
-- (workers.name), as the scheduler received it with the try's results; shown
-- by `baram runs show`, the API's try and task instance objects and the UI.
-- NULL: the try was not run by a worker (or its result never came).
ALTER TABLE tries ADD COLUMN worker text;
