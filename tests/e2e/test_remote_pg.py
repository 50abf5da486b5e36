"""Tries run by workers, the scheduler's side (SPEC section 12, issue 12): real `baram
scheduler` and `baram worker` processes on one PostgreSQL database, each on its own home,
sharing the DAG folder.

Every task appends "RUN TASK start TRY" and "RUN TASK done TRY" lines to one file, so the tests
count executions rather than trust the store. Cases: a try's instance goes queued (no worker
yet) -> running -> success through a worker, the scheduler spawning nothing; cancel of a try
no worker claimed yet (withdrawn) and of one a worker runs (killed there); a worker killed
with its try running: the try is 'lost' and retried when tries remain, fails the run when
none do; a scheduler killed (-9) while its tries run on a worker: the other scheduler adopts
the run, no try number runs twice and the run succeeds.
"""

import collections
import re
import time

import pytest

from conftest import Baram, db_query
from daemon_util import (daemons, poll, run_show, trigger, wait_run,  # noqa: F401 (fixture)
                         worker_name, worker_short)

pytestmark = pytest.mark.pg_only

DEAD_AFTER = 3.0


class Fleet:
    """Homes on one database and one DAG folder; schedulers and workers started on them."""

    def __init__(self, tmp_path, pg_url, daemons):
        self.tmp = tmp_path
        self.url = pg_url
        self.daemons = daemons
        self.dags = tmp_path / "dags"
        self.dags.mkdir()
        self.log = tmp_path / "tasks.log"
        self.log.touch()
        self.homes = {}

    def home(self, name):
        if name not in self.homes:
            b = Baram(self.tmp / name, self.dags)
            b.env["BARAM_DB"] = self.url
            b.env["BARAM_DAGS"] = str(self.dags)
            b.env["BARAM_SCHEDULER_HEARTBEAT"] = "1s"
            b.env["BARAM_SCHEDULER_DEAD_AFTER"] = "%gs" % DEAD_AFTER
            b.env["BARAM_WORKER_HEARTBEAT"] = "1s"
            b.env["BARAM_WORKER_DEAD_AFTER"] = "%gs" % DEAD_AFTER
            self.homes[name] = b
        return self.homes[name]

    def b(self):
        return self.home("s0")

    def scheduler(self, i=0):
        return self.daemons(self.home("s%d" % i), log_name="sched%d.log" % i, cmd="scheduler")

    def worker(self, name, *args):
        """`baram worker` named NAME-PID.N (worker_name): lines() shows it as NAME."""
        w = self.daemons.worker(self.home("w-" + name), "--name", worker_name(name), *args,
                                log_name="worker-%s.log" % name)
        w.name = w.args[w.args.index("--name") + 1]
        return w

    def write_dag(self, name, text):
        (self.dags / name).write_text(text.replace("LOG", str(self.log)))

    def lines(self):
        """Counter of (run, task, start|done, try[, worker]) lines the tasks wrote; a worker
        by the name the test gave it (worker_short)."""
        return collections.Counter(tuple(ln.split()[:4] + [worker_short(x) for x in ln.split()[4:]])
                                   for ln in self.log.read_text().splitlines() if ln.strip())

    def q(self, sql, *args):
        return db_query(self.url, sql, *args)

    def ti(self, run_id, task):
        rows = self.q("SELECT state, try_number FROM task_instances WHERE run_id = ? AND "
                      "task_id = ?", run_id, task)
        return (rows[0][0], int(rows[0][1])) if rows else (None, 0)

    def tries(self, run_id):
        return sorted((r[0], int(r[1]), r[2]) for r in self.q(
            "SELECT task_id, try_number, state FROM tries WHERE run_id = ?", run_id))

    def queue_rows(self, run_id):
        return self.q("SELECT task_id, try_number, state, worker_id FROM ti_queue "
                      "WHERE run_id = ?", run_id)


@pytest.fixture
def fleet(tmp_path, pg_url, daemons):
    f = Fleet(tmp_path, pg_url, daemons)
    r = f.b()("init")
    assert r.rc == 0, r
    return f


def task(name, body="", extra=""):
    return ("  %s: {run: 'echo \"$BARAM_RUN_ID %s start $BARAM_TRY $BARAM_WORKER\" >> LOG; %s "
            "echo \"$BARAM_RUN_ID %s done $BARAM_TRY\" >> LOG'%s}\n"
            % (name, name, body, name, extra))


def states_seen(fleet, run_id, task_id, until, timeout=20.0):
    """The task instance's states as polled until one of `until` (in order, no repeats)."""
    seen = []

    def look():
        st = fleet.ti(run_id, task_id)[0]
        if st and (not seen or seen[-1] != st):
            seen.append(st)
        return st in until
    assert poll(look, timeout, step=0.02), seen
    return seen


def test_try_goes_queued_running_success_through_a_worker(fleet):
    fleet.write_dag("one.yaml", "dag: one\ntasks:\n" + task("a", "sleep 0.5;"))
    s = fleet.scheduler()
    run_id = trigger(fleet.b(), "one")
    # No worker listens yet: the try waits in the workers' queue, its instance 'queued'.
    assert poll(lambda: fleet.queue_rows(run_id), 10), s.log()
    time.sleep(1.0)
    assert fleet.ti(run_id, "a") == ("queued", 1)
    rows = fleet.queue_rows(run_id)
    assert [(r[0], int(r[1]), r[2], r[3]) for r in rows] == [("a", 1, "queued", None)], rows
    assert not fleet.log.read_text(), "nothing ran without a worker"
    w = fleet.worker("w1")
    seen = states_seen(fleet, run_id, "a", ("success", "failed"))
    if seen[0] != "queued":  # claimed before the first look: it was queued just above
        seen.insert(0, "queued")
    assert seen == ["queued", "running", "success"], seen
    o = wait_run(fleet.b(), run_id, timeout=15, daemon=s)
    assert o["state"] == "success", o
    lines = fleet.lines()
    assert lines[(run_id, "a", "start", "1", "w1")] == 1, lines
    assert lines[(run_id, "a", "done", "1")] == 1, lines
    assert fleet.tries(run_id) == [("a", 1, "success")]
    assert fleet.queue_rows(run_id) == []
    w.assert_alive()
    s.assert_alive()


def test_cancel_a_queued_remote_try_withdraws_it(fleet):
    fleet.write_dag("one.yaml", "dag: one\ntasks:\n" + task("a", "sleep 0.2;"))
    s = fleet.scheduler()
    run_id = trigger(fleet.b(), "one")
    assert poll(lambda: fleet.queue_rows(run_id), 10), s.log()
    r = fleet.b()("runs", "cancel", run_id)
    assert r.rc == 0, r
    o = wait_run(fleet.b(), run_id, timeout=10, daemon=s)
    assert o["state"] == "cancelled", o
    assert fleet.queue_rows(run_id) == []
    assert fleet.ti(run_id, "a")[0] == "failed"
    # A worker started now finds nothing to run.
    fleet.worker("w1")
    time.sleep(1.5)
    assert not fleet.log.read_text()


def test_cancel_a_running_remote_try_kills_it_on_its_worker(fleet):
    fleet.write_dag("one.yaml", "dag: one\ntasks:\n" + task("a", "sleep 60;"))
    s = fleet.scheduler()
    w = fleet.worker("w1")
    run_id = trigger(fleet.b(), "one")
    assert poll(lambda: fleet.ti(run_id, "a")[0] == "running", 15), s.log()
    assert poll(lambda: (run_id, "a", "start", "1", "w1") in fleet.lines(), 5)
    t0 = time.monotonic()
    r = fleet.b()("runs", "cancel", run_id)
    assert r.rc == 0, r
    o = wait_run(fleet.b(), run_id, timeout=15, daemon=s)
    assert o["state"] == "cancelled", o
    assert time.monotonic() - t0 < 12  # the worker killed it (SIGTERM), not the sleep's end
    assert fleet.queue_rows(run_id) == []
    assert (run_id, "a", "done", "1") not in fleet.lines()
    w.assert_alive()


LOST = "dag: lost\ntasks:\n" + task("a", "sleep 30;", ", retries: RETRIES, retry_delay: 2s")


@pytest.mark.parametrize("retries", [1, 0])
def test_a_lost_try_is_retried_or_fails_the_run(fleet, retries):
    """A worker killed (-9) with a try running: declared dead after dead_after, its try is
    'lost' (a failed try, "worker NAME lost"): retried on another worker when tries remain,
    the run failed when none do."""
    fleet.write_dag("lost.yaml", LOST.replace("RETRIES", str(retries))
                    .replace("sleep 30;", 'if [ "$BARAM_TRY" = 1 ]; then sleep 30; fi;'))
    s = fleet.scheduler()
    w1 = fleet.worker("w1")
    run_id = trigger(fleet.b(), "lost")
    assert poll(lambda: (run_id, "a", "start", "1", "w1") in fleet.lines(), 15), s.log()
    w1.kill9()
    t0 = time.monotonic()
    w2 = fleet.worker("w2")

    def ti():
        return tuple(fleet.q("SELECT state, message FROM task_instances WHERE run_id = ?",
                             run_id)[0])
    want = ("up_for_retry" if retries else "failed", "worker %s lost" % w1.name)
    assert poll(lambda: ti() == want, DEAD_AFTER + 10), (ti(), s.log())
    took = time.monotonic() - t0
    o = wait_run(fleet.b(), run_id, timeout=15, daemon=s)
    tries = fleet.tries(run_id)
    if retries:
        assert o["state"] == "success", o
        assert tries == [("a", 1, "failed"), ("a", 2, "success")], tries
        assert fleet.lines()[(run_id, "a", "start", "2", "w2")] == 1, fleet.lines()
    else:
        assert o["state"] == "failed", o
        assert tries == [("a", 1, "failed")], tries
    assert took < DEAD_AFTER + 10, took
    assert fleet.queue_rows(run_id) == []
    w2.assert_alive()


ADOPT = "dag: adopt\nmax_active_runs: 8\ntasks:\n" + \
    task("a", "sleep 3;") + task("b", "sleep 3;") + task("c", "sleep 0.2;", ", needs: [a, b]")


def test_scheduler_killed_its_tries_on_a_worker_are_adopted_not_rerun(fleet):
    """kill -9 of the scheduler owning a run while its tries run on a worker: the other
    scheduler takes the run over, adopts the tries in flight (their results come to it), runs
    none of them again, and the run succeeds."""
    fleet.write_dag("adopt.yaml", ADOPT)
    s0 = fleet.scheduler(0)
    w = fleet.worker("w1", "--slots", "4")
    run_id = trigger(fleet.b(), "adopt")
    assert poll(lambda: fleet.ti(run_id, "a")[0] == "running" and
                fleet.ti(run_id, "b")[0] == "running", 15), s0.log()
    s1 = fleet.scheduler(1)
    s0.kill9()
    o = wait_run(fleet.b(), run_id, timeout=DEAD_AFTER + 20, daemon=s1)
    assert o["state"] == "success", (o, s1.log())
    lines = fleet.lines()
    for t in "abc":
        assert lines[(run_id, t, "start", "1", "w1")] == 1, lines
        assert lines[(run_id, t, "done", "1")] == 1, lines
    assert sum(lines.values()) == 6, lines
    assert fleet.tries(run_id) == [("a", 1, "success"), ("b", 1, "success"),
                                   ("c", 1, "success")]
    w.assert_alive()


def test_scheduler_killed_after_taking_an_end_loses_no_result(fleet):
    """Review of issue 12, H2: the scheduler owning a run takes a try's end from its inbox and
    is killed (-9) before recording it (FP_CRASH_AFTER_TAKE). The end stays in the database
    until the records made of it are durable, so the scheduler taking the run over gets it:
    the try is not counted failed nor run again (no retry left: the run would fail)."""
    fleet.write_dag("one.yaml", "dag: one\ntasks:\n" + task("a", "sleep 0.5;") +
                    task("b", "", ", needs: [a]"))
    fleet.home("s0").env["BARAM_FAULT"] = "FP_CRASH_AFTER_TAKE"
    s0 = fleet.scheduler(0)
    w = fleet.worker("w1")
    run_id = trigger(fleet.b(), "one")
    assert poll(lambda: (run_id, "a", "done", "1") in fleet.lines(), 15), s0.log()
    assert poll(lambda: s0.proc.poll() is not None, 10), "s0 took a's end and died"
    assert fleet.ti(run_id, "a") != ("success", 1)  # not recorded by s0
    s1 = fleet.scheduler(1)
    o = wait_run(fleet.b(), run_id, timeout=DEAD_AFTER + 20, daemon=s1)
    assert o["state"] == "success", (o, s1.log())
    lines = fleet.lines()
    assert lines[(run_id, "a", "start", "1", "w1")] == 1, lines
    assert lines[(run_id, "b", "start", "1", "w1")] == 1, lines
    assert sum(lines.values()) == 4, lines
    assert fleet.tries(run_id) == [("a", 1, "success"), ("b", 1, "success")]
    # what s1 recorded is deleted from the inbox
    assert poll(lambda: fleet.q("SELECT count(*) FROM try_results WHERE run_id = ?",
                                run_id) == [(0,)], 5)
    w.assert_alive()


def test_tries_given_back_by_stopped_workers_are_bounded(fleet):
    """Review of issue 12, L5: a try killed because its worker stopped (SIGTERM, grace over)
    is given back (a try more), but only as many times as the task has tries: a task whose
    workers are stopped under it each time ends failed instead of being handed out forever."""
    fleet.write_dag("one.yaml", "dag: one\ntasks:\n" + task("a", "sleep 60;"))
    s = fleet.scheduler()
    run_id = trigger(fleet.b(), "one")
    for n, name in ((1, "w1"), (2, "w2")):
        w = fleet.worker(name, "--grace", "0.2s")
        assert poll(lambda: (run_id, "a", "start", str(n), name) in fleet.lines(), 15), s.log()
        assert w.stop() == 0, w.log()
    # retries 0: try 1 was given back, try 2 (stopped the same way) counts as failed
    o = wait_run(fleet.b(), run_id, timeout=15, daemon=s)
    assert o["state"] == "failed", o
    assert fleet.tries(run_id) == [("a", 1, "failed"), ("a", 2, "failed")]
    msg = fleet.q("SELECT message FROM task_instances WHERE run_id = ?", run_id)[0][0]
    assert re.search(r"worker w2-\d+\.\d+ shut down", msg) and "counts as failed" in msg, msg
    assert fleet.queue_rows(run_id) == []


def test_sigterm_while_a_try_runs_on_a_worker_waits_for_it_then_exits(fleet):
    """SIGTERM to the scheduler while its try runs on a worker: it starts nothing new, waits
    for the try's result and then exits 0, its wake-up listener closed with the runs rather
    than left holding the loop open (when the run ended before the drain's next look)."""
    fleet.write_dag("one.yaml", "dag: one\ntasks:\n" + task("a", "sleep 1.5;"))
    s = fleet.scheduler()
    fleet.worker("w1")
    run_id = trigger(fleet.b(), "one")
    assert poll(lambda: fleet.ti(run_id, "a")[0] == "running", 15), s.log()
    assert s.stop(timeout=15) == 0, s.log()
    assert "tries_running=1" in s.log(), s.log()
    # its try ended during the drain and was recorded (the run itself may be halted in its
    # last step: the next scheduler ends it)
    assert fleet.tries(run_id) == [("a", 1, "success")], s.log()
