"""Several schedulers on one PostgreSQL database (SPEC section 12): real `baram scheduler`
processes, each on its own home, sharing a fresh database of the session's cluster.

Every task appends "RUN TASK start" and "RUN TASK done" lines to one file, so the tests count
executions rather than trust the store. Cases: two and three schedulers (every run once, one
run per scheduled interval), kill -9 of a scheduler at random points (another takes its runs
within dead_after + 5 s; nothing that had finished runs again), SIGSTOP past dead_after then
SIGCONT (its stale writes are refused, it exits 1, each run ends once), a clean stop (its runs
are taken at once), and no deadlock (40P01) in any log. dead_after is 3 s, heartbeat 1 s.
"""

import collections
import datetime
import os
import random
import signal
import time

import pytest

from api_util import ApiServer, token
from conftest import Baram, db_query
from daemon_util import Daemon, daemons, poll, worker_name  # noqa: F401 (daemons: a fixture)

pytestmark = pytest.mark.pg_only

DEAD_AFTER = 3.0


class Scheduler(Daemon):
    cmd = "scheduler"


class Ha:
    """Homes h0..hN-1 on one database and one DAG folder; schedulers started on them."""

    def __init__(self, tmp_path, pg_url, daemons):
        self.tmp = tmp_path
        self.url = pg_url
        self.daemons = daemons
        self.dags = tmp_path / "dags"
        self.dags.mkdir()
        self.log = tmp_path / "tasks.log"
        self.log.touch()
        self.homes = []
        self.scheds = []
        self.dead_after = DEAD_AFTER

    def home(self, i):
        while len(self.homes) <= i:
            b = Baram(self.tmp / ("h%d" % len(self.homes)), self.dags)
            b.env["BARAM_DB"] = self.url
            b.env["BARAM_DAGS"] = str(self.dags)
            b.env["BARAM_SCHEDULER_HEARTBEAT"] = "1s"
            b.env["BARAM_SCHEDULER_DEAD_AFTER"] = "%gs" % self.dead_after
            self.homes.append(b)
        return self.homes[i]

    def worker(self, name="w0", *args):
        """Starts a worker on a home of its own (on PostgreSQL workers run every try)."""
        b = self.home(0)
        w = Baram(self.tmp / ("home-" + name), self.dags)
        w.env.update({k: v for k, v in b.env.items() if k.startswith("BARAM_")})
        w.env["BARAM_WORKER_HEARTBEAT"] = "1s"
        w.env["BARAM_WORKER_DEAD_AFTER"] = "%gs" % self.dead_after
        return self.daemons.worker(w, "--name", worker_name(name), "--slots", "16", *args,
                                   log_name="worker-%s.log" % name)

    def start(self, i):
        """Starts a scheduler on home i (a new process, a new registration)."""
        s = Scheduler(self.home(i), [], self.tmp / ("sched%d.log" % i))
        self.daemons.all.append(s)
        s.start()
        self.scheds.append(s)
        return s

    def b(self):
        return self.home(0)

    def write_dag(self, name, text):
        (self.dags / name).write_text(text.replace("LOG", str(self.log)))

    def trigger(self, dag, n=1):
        ids = []
        for _ in range(n):
            r = self.b()("dags", "trigger", dag, "--json")
            assert r.rc == 0, r
            ids.append(r.json["run_id"])
        return ids

    def lines(self):
        """Counter of (run, task, start|done) lines the tasks wrote."""
        return collections.Counter(tuple(ln.split()) for ln in self.log.read_text().splitlines()
                                   if ln.strip())

    def q(self, sql, *args):
        return db_query(self.url, sql, *args)

    def runs(self):
        return {r[0]: r[1] for r in self.q("SELECT run_id, state FROM runs")}

    def owner(self, run_id):
        rows = self.q("SELECT sched_id FROM runs WHERE run_id = ?", run_id)
        return int(rows[0][0]) if rows and rows[0][0] not in (None, "") else None

    def sched_id(self, d):
        rows = self.q("SELECT id FROM workers WHERE pid = ? AND state = 'active'", d.pid)
        return int(rows[0][0]) if rows else None

    def all_done(self, ids):
        st = self.runs()
        return all(st.get(i) in ("success", "failed") for i in ids)

    def no_deadlock(self):
        for d in self.scheds:
            assert "40P01" not in d.log() and "deadlock" not in d.log(), d.log()


@pytest.fixture
def ha(tmp_path, pg_url, daemons):
    h = Ha(tmp_path, pg_url, daemons)
    r = h.b()("init")
    assert r.rc == 0, r
    h.w = h.worker()
    return h


CHAIN = """
dag: chain
max_active_runs: 64
tasks:
  a: {run: 'echo "$BARAM_RUN_ID a start" >> LOG; sleep 0.3; echo "$BARAM_RUN_ID a done" >> LOG', retries: 3}
  b: {run: 'echo "$BARAM_RUN_ID b start" >> LOG; sleep 0.3; echo "$BARAM_RUN_ID b done" >> LOG', retries: 3, needs: [a]}
  c: {run: 'echo "$BARAM_RUN_ID c start" >> LOG; sleep 0.3; echo "$BARAM_RUN_ID c done" >> LOG', retries: 3, needs: [b]}
  d: {run: 'echo "$BARAM_RUN_ID d start" >> LOG; sleep 0.3; echo "$BARAM_RUN_ID d done" >> LOG', retries: 3, needs: [c]}
"""


def run_ended_lines(ha, run_id):
    return sum(1 for d in ha.scheds for ln in d.lines("run ended") if run_id in ln)


@pytest.mark.parametrize("n", [2, 3])
def test_schedulers_share_runs_each_once(ha, n):
    start = (datetime.date.today() - datetime.timedelta(days=8)).isoformat()
    ha.write_dag("daily.yaml", """
dag: daily
schedule: "@daily"
start: %s
catchup: true
max_active_runs: 16
tasks:
  a: {run: 'echo "$BARAM_RUN_ID a start" >> LOG; echo "$BARAM_RUN_ID a done" >> LOG'}
  b: {run: 'echo "$BARAM_RUN_ID b start" >> LOG; echo "$BARAM_RUN_ID b done" >> LOG', needs: [a]}
""" % start)
    ha.write_dag("chain.yaml", CHAIN)
    for i in range(n):
        ha.start(i)
    ids = ha.trigger("chain", 12)
    assert poll(lambda: ha.all_done(ids) and len([r for r in ha.runs() if r.startswith(
        "scheduled__")]) >= 8 and ha.all_done(ha.runs()), 60), (ha.runs(), ha.scheds[0].log())
    time.sleep(1.5)  # a late duplicate would show by now
    runs = ha.q("SELECT run_id, dag_id, logical_at, type, state, sched_id FROM runs")
    assert all(r[4] == "success" for r in runs), runs
    sched = [r for r in runs if r[3] == "scheduled"]
    dates = [r[2] for r in sched]
    assert len(dates) == len(set(dates)) and 8 <= len(dates) <= 9, sched
    lines = ha.lines()
    want = {(r[0], t) for r in runs for t in ("abcd" if r[1] == "chain" else "ab")}
    for run_id, task in want:
        assert lines[(run_id, task, "start")] == 1 and lines[(run_id, task, "done")] == 1, \
            (run_id, task, lines)
    assert sum(lines.values()) == 2 * len(want)
    for r in runs:
        assert run_ended_lines(ha, r[0]) == 1, r
    owners = collections.Counter(r[5] for r in runs)
    print("runs per scheduler:", dict(owners))
    r = ha.b()("workers", "list", "--json")
    assert r.rc == 0, r
    ws = [w for w in r.json["workers"] if w["role"] == "scheduler"]
    assert len(ws) == n and all(w["state"] == "active" for w in ws)
    assert sorted(w["pid"] for w in ws) == sorted(d.pid for d in ha.scheds)
    for d in ha.scheds:
        assert d.stop() == 0
    assert {w[0] for w in ha.q("SELECT state FROM workers WHERE role = 'scheduler'")} == \
        {"stopped"}
    ha.no_deadlock()


def finished_at(ha):
    """(run, task) pairs whose success is recorded."""
    return {(r[0], r[1]) for r in ha.q(
        "SELECT run_id, task_id FROM task_instances WHERE state = 'success'")}


def test_kill9_takeover_random_points(ha):
    """kill -9 of the scheduler owning runs, at random points: the other takes them within
    dead_after + 5 s and finishes them; nothing that had finished runs again."""
    ha.write_dag("chain.yaml", CHAIN.replace("sleep 0.3", "sleep 1"))
    rnd = random.Random(11)
    live = {0: ha.start(0), 1: ha.start(1)}
    takeovers = []
    all_ids = []
    for trial in range(3):
        ids = ha.trigger("chain", 3)
        all_ids += ids
        time.sleep(rnd.uniform(0.3, 3.5))
        by = collections.Counter(ha.owner(i) for i in ids if ha.runs().get(i) == "running")
        ids_of = {k: ha.sched_id(d) for k, d in live.items()}
        victim = max(live, key=lambda k: by.get(ids_of[k], 0))
        lost = [i for i in ids if ha.owner(i) == ids_of[victim] and
                ha.runs().get(i) in ("queued", "running")]
        done_before = finished_at(ha)
        starts_before = ha.lines()
        live[victim].kill9()
        t0 = time.monotonic()
        other = ids_of[1 - victim]
        if lost:
            assert poll(lambda: all(ha.owner(i) == other or ha.runs().get(i) == "success"
                                    for i in lost), DEAD_AFTER + 5), \
                (lost, [ha.owner(i) for i in lost], live[1 - victim].log())
            takeovers.append(time.monotonic() - t0)
        assert poll(lambda: ha.all_done(ids), 60), (ha.runs(), live[1 - victim].log())
        assert all(ha.runs()[i] == "success" for i in ids), ha.runs()
        lines = ha.lines()
        for run_id, task in done_before:  # finished before the kill: never started again
            key = (run_id, task, "start")
            assert lines[key] == starts_before[key], (run_id, task, lines)
        live[victim] = ha.start(victim)
    lines = ha.lines()
    for run_id in all_ids:
        for task in "abcd":
            assert lines[(run_id, task, "done")] >= 1, (run_id, task)
    print("takeover seconds:", ["%.2f" % t for t in takeovers])
    ha.no_deadlock()


def test_sigstop_past_dead_after_is_fenced(ha):
    """A scheduler stopped (SIGSTOP) past dead_after loses its run to another; at SIGCONT its
    late writes are refused, it stops and exits 1, and the run ends once, by the other."""
    ha.write_dag("two.yaml", """
dag: two
tasks:
  t1: {run: 'echo "$BARAM_RUN_ID t1 start" >> LOG; sleep 1; echo "$BARAM_RUN_ID t1 done" >> LOG', retries: 2}
  t2: {run: 'echo "$BARAM_RUN_ID t2 start" >> LOG; echo "$BARAM_RUN_ID t2 done" >> LOG', needs: [t1]}
""")
    a = ha.start(0)
    (run_id,) = ha.trigger("two")
    assert poll(lambda: (run_id, "t1", "start") in ha.lines(), 10), a.log()
    a.proc.send_signal(signal.SIGSTOP)
    b = ha.start(1)
    bid = ha.sched_id(b)
    try:
        # t1 ends on its worker while its scheduler is stopped; b takes the run over and
        # adopts t1's result.
        assert poll(lambda: ha.owner(run_id) == bid, DEAD_AFTER + 5), (ha.owner(run_id), b.log())
        assert poll(lambda: ha.runs()[run_id] == "success", 20), b.log()
    finally:
        a.proc.send_signal(signal.SIGCONT)
    assert a.proc.wait(20) == 1, a.log()
    assert a.lines("scheduler lost its runs: stopping its tries and exiting"), a.log()
    time.sleep(0.5)
    lines = ha.lines()
    # t1 ran on the worker to its end; b adopted its result rather than running it again
    assert lines[(run_id, "t1", "start")] == 1 and lines[(run_id, "t1", "done")] == 1, lines
    assert lines[(run_id, "t2", "start")] == 1, lines  # a never started t2 on its stale view
    tries = ha.q("SELECT try_number, state FROM tries WHERE run_id = ? AND task_id = 't1' "
                 "ORDER BY try_number", run_id)
    assert [tuple(t) for t in tries] == [(1, "success")], tries
    assert ha.runs()[run_id] == "success"
    assert run_ended_lines(ha, run_id) == 1 and not a.lines("run ended")
    assert ha.q("SELECT state FROM workers WHERE pid = ?", a.pid) == [("dead",)]
    assert b.stop() == 0
    ha.no_deadlock()


def test_clean_stop_releases_runs_at_once(ha):
    """SIGTERM: the scheduler's row is stopped and its runs released, so another takes them
    without waiting for dead_after (10 s here)."""
    ha.dead_after = 10.0
    ha.write_dag("chain.yaml", CHAIN.replace("sleep 0.3", "sleep 1"))
    a = ha.start(0)
    (run_id,) = ha.trigger("chain")
    assert poll(lambda: (run_id, "a", "start") in ha.lines(), 10), a.log()
    b = ha.start(1)
    bid = ha.sched_id(b)
    assert ha.owner(run_id) == ha.sched_id(a)
    assert a.stop() == 0  # its running try finishes first (the grace)
    t0 = time.monotonic()
    # the other's next sync (every 2 s) claims it; dead_after would take 10 s
    assert poll(lambda: ha.owner(run_id) == bid, 5), (ha.owner(run_id), b.log())
    took = time.monotonic() - t0
    assert poll(lambda: ha.runs()[run_id] == "success", 30), b.log()
    assert ha.q("SELECT state FROM workers WHERE pid = ?", a.pid) == [("stopped",)]
    print("taken %.2f s after SIGTERM" % took)
    assert b.stop() == 0
    ha.no_deadlock()


def test_cancel_reaches_the_owning_scheduler(ha):
    """`runs cancel` wakes the scheduler of the home it was run on; when another scheduler owns
    the run, the request is handed over to it rather than dropped."""
    ha.write_dag("long.yaml", """
dag: long
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t start" >> LOG; sleep 60'}
""")
    a = ha.start(0)
    (run_id,) = ha.trigger("long")
    assert poll(lambda: (run_id, "t", "start") in ha.lines(), 10), a.log()
    b = ha.start(1)
    assert ha.owner(run_id) == ha.sched_id(a)
    r = ha.home(1)("runs", "cancel", run_id)  # rings b's doorbell: b reads the request first
    assert r.rc == 0, r
    assert poll(lambda: ha.runs()[run_id] == "cancelled", 8), (a.log(), b.log())
    assert a.lines("run ended") and not b.lines("run ended")
    for d in (a, b):
        assert d.stop() == 0
    ha.no_deadlock()


def pid_alive(pid):
    """Whether pid runs (a zombie waiting for its reaper does not)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


LONG = """
dag: long
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t start $$" >> LOG; sleep 60; echo "$BARAM_RUN_ID t done" >> LOG'}
"""


def try_pid(ha, run_id, task="t"):
    """The pid of the first try of task that started (its "start" line), or None."""
    got = [k for k in ha.lines() if k[:3] == (run_id, task, "start")]
    return int(got[0][3]) if got else None


def test_cli_on_another_home_sees_the_scheduler_in_the_registry(ha):
    """The CLI on a home where no scheduler runs (no lock held there), with a scheduler of the
    same database on another home: `runs cancel` hands the request over (the scheduler ends
    the run and stops its try) instead of writing the run cancelled itself while the try goes
    on; `dags trigger` does not claim the run waits for `baram standalone`. Once the scheduler
    has stopped, both behave as without a scheduler."""
    ha.write_dag("long.yaml", LONG)
    a = ha.start(0)
    cli = ha.home(1)  # no scheduler ever runs on this home
    r = cli("dags", "trigger", "long", "--json")
    assert r.rc == 0, r
    assert "no scheduler is running" not in r.err, r
    run_id = r.json["run_id"]
    assert poll(lambda: try_pid(ha, run_id), 10), a.log()
    pid = try_pid(ha, run_id)
    r = cli("runs", "cancel", run_id, "--wait", "10", "--json")
    assert r.rc == 0, r
    assert r.json["state"] == "cancelled", r
    # the scheduler ended it (not the CLI behind its back), and its try is stopped
    assert [ln for ln in a.lines("run ended") if run_id in ln], a.log()
    assert poll(lambda: not pid_alive(pid), 10), "the cancelled run's task still runs"
    assert ha.runs()[run_id] == "cancelled"
    assert a.stop() == 0
    r = cli("dags", "trigger", "long")
    assert r.rc == 0, r
    assert "no scheduler is running on %s" % cli.home in r.err, r
    ha.no_deadlock()


def test_try_of_a_killed_scheduler_is_adopted_not_lost(ha):
    """kill -9 of the scheduler mid-try: the other declares it dead after dead_after and takes
    the run over; the tries it had handed to the worker go on there (never killed, never
    counted as failed, never started again) and their results come to the new owner."""
    ha.write_dag("lost.yaml", """
dag: lost
tasks:
  t:
    run: 'echo "$BARAM_RUN_ID t start $$ $BARAM_TRY" >> LOG; sleep 6; echo "$BARAM_RUN_ID t done $$ $BARAM_TRY" >> LOG'
    retries: 1
  last:
    run: 'echo "$BARAM_RUN_ID last start $$ $BARAM_TRY" >> LOG; sleep 6; echo "$BARAM_RUN_ID last done $$ $BARAM_TRY" >> LOG'
""")
    a = ha.start(0)
    (run_id,) = ha.trigger("lost")
    assert poll(lambda: try_pid(ha, run_id) and try_pid(ha, run_id, "last"), 10), a.log()
    first = try_pid(ha, run_id)
    b = ha.start(1)
    bid = ha.sched_id(b)
    a.kill9()
    assert poll(lambda: ha.owner(run_id) == bid, DEAD_AFTER + 5), (ha.owner(run_id), b.log())
    assert pid_alive(first), "the adopted try was stopped"
    assert poll(lambda: ha.runs()[run_id] == "success", 20), (ha.runs(), b.log())
    for task in ("t", "last"):
        tries = ha.q("SELECT try_number, state FROM tries WHERE run_id = ? AND task_id = ? "
                     "ORDER BY try_number", run_id, task)
        assert [tuple(t) for t in tries] == [(1, "success")], (task, tries)
    lines = ha.lines()
    assert sorted(k[1:3] for k in lines if k[0] == run_id) == \
        [("last", "done"), ("last", "start"), ("t", "done"), ("t", "start")], lines
    assert not b.lines("killing a try left running"), b.log()
    assert b.stop() == 0
    ha.no_deadlock()


def test_api_on_another_home_hands_a_cancel_to_the_scheduler(ha):
    """`baram api` on a home without a scheduler, sharing the database with one on another
    home: a cancel is handed over (202, then the scheduler ends the run and stops its try)
    instead of being written by the API while the try goes on."""
    ha.write_dag("long.yaml", LONG)
    a = ha.start(0)
    (run_id,) = ha.trigger("long")
    assert poll(lambda: try_pid(ha, run_id), 10), a.log()
    pid = try_pid(ha, run_id)
    web = ha.home(1)
    assert web("init").rc == 0  # its own secret.key; the users are the database's
    api = ApiServer(web, ha.tmp / "api.log").start()
    try:
        r = api.request("POST", "/api/v1/dags/long/runs/%s/cancel" % run_id, token(web), {})
        assert r.status == 202, r
        assert poll(lambda: ha.runs()[run_id] == "cancelled", 10), (a.log(), api.log())
        assert [ln for ln in a.lines("run ended") if run_id in ln], a.log()
        assert poll(lambda: not pid_alive(pid), 10), "the cancelled run's task still runs"
    finally:
        api.stop()
    assert a.stop() == 0


def test_cli_on_the_home_of_a_killed_scheduler_cancels_itself(ha):
    """kill -9 of the only scheduler: its row looks alive until dead_after, but on its own home
    the free lock shows it died, so `runs cancel` there writes the cancellation at once
    rather than leaving it to a scheduler that is gone."""
    ha.dead_after = 30.0
    ha.write_dag("long.yaml", LONG)
    a = ha.start(0)
    (run_id,) = ha.trigger("long")
    assert poll(lambda: try_pid(ha, run_id), 10), a.log()
    a.kill9()
    try:
        r = ha.home(0)("runs", "cancel", run_id, "--json")
        assert r.rc == 0, r
        assert r.json == {"run_id": run_id, "state": "cancelled", "requested": False}, r
        assert ha.runs()[run_id] == "cancelled"
    finally:
        os.killpg(try_pid(ha, run_id), signal.SIGKILL)  # the try the dead scheduler left
