"""run_timeout, max_active_tasks, task max_active and depends_on_past (SPEC section 13)
against one `baram standalone` for the module (SQLite or PostgreSQL, as the harness says):
runs are triggered with the CLI and read back with `runs show --json`, the intervals of
the tries compared from their stored start and end times."""

import os
import signal
import time
from datetime import datetime

import pytest

from api_util import free_port, make_home
from daemon_util import Daemons, daemons, poll, run_show, trigger, wait_run  # noqa: F401
from test_ha import ha  # noqa: F401 (a fixture: schedulers on one PostgreSQL database)

DAGS = {
    "tmo.yaml": """
        dag: tmo
        run_timeout: 2s
        on_failure: {run: 'touch tmo.hook'}
        tasks:
          s: {run: 'echo $$ > tmo.pid; exec sleep 30'}
          after: {run: 'touch after.ran', needs: [s]}
        """,
    "tmo2.yaml": """
        dag: tmo2
        run_timeout: 4s
        tasks:
          s: {run: 'echo $$ >> tmo2.pids; touch tmo2.started; exec sleep 30'}
        """,
    "gate.yaml": """
        dag: gate
        max_active_tasks: 2
        tasks:
          a: {run: 'sleep 0.5'}
          b: {run: 'sleep 0.5'}
          c: {run: 'sleep 0.5'}
        """,
    "one.yaml": """
        dag: one
        tasks:
          t: {run: 'sleep 0.4', max_active: 1}
          m: {for_each: [x, y], run: 'sleep 0.2', max_active: 1}
          free: {run: 'true'}
        """,
    "past.yaml": """
        dag: past
        depends_on_past: true
        params: {fail: "0"}
        tasks:
          t: {run: 'sleep 0.8; exit {{ params.fail }}'}
          own: {run: 'true', depends_on_past: false}
        """,
}


def ts(s):
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def intervals(b, run_ids):
    out = []
    for rid in run_ids:
        for name, t in run_show(b, rid)["tasks"].items():
            if t.get("started_at") and t.get("ended_at"):
                out.append((ts(t["started_at"]), ts(t["ended_at"]), rid, name))
    return out


def max_overlap(iv):
    ev = sorted([(s, 1) for s, _, _, _ in iv] + [(e, -1) for _, e, _, _ in iv],
                key=lambda x: (x[0], x[1]))  # an end before a start at the same instant
    cur = best = 0
    for _, d in ev:
        cur += d
        best = max(best, cur)
    return best


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("conc")
    b = make_home(root)
    b.env["BARAM_DAGS"] = str(b.dags)
    for name, text in DAGS.items():
        b.write(name, text)
    ds = Daemons(root)
    # the home has a key: its API listens, on a port of its own (not the default 8080)
    d = ds(b, "--grace", "200ms", "--listen", "127.0.0.1:%d" % free_port())
    try:
        yield b, d
    finally:
        ds.cleanup()


def test_run_timeout_kills_the_try_and_fails_the_run(env):
    b, d = env
    rid = trigger(b, "tmo")
    o = wait_run(b, rid, timeout=15, daemon=d)
    assert o["state"] == "failed", o
    took = ts(o["ended_at"]) - ts(o["started_at"])
    assert 2.0 <= took < 3.0, (took, o)
    assert o["tasks"]["s"]["state"] == "failed", o
    assert o["tasks"]["s"]["message"] == "run timed out", o
    assert o["tasks"]["after"]["state"] == "none", o
    assert not (b.dags / "after.ran").exists()
    pid = int((b.dags / "tmo.pid").read_text())
    assert poll(lambda: not alive(pid), 5), "the try's process outlived the run's timeout"
    assert len(d.lines("run timed out")) >= 1, d.log()
    assert poll(lambda: (b.dags / "tmo.hook").exists(), 5), "on_failure did not run"
    # cleared, the run goes on with a new clock (Airflow resets its start): not at once
    r = b("tasks", "clear", rid, "s")
    assert r.rc == 0, r
    assert poll(lambda: run_show(b, rid)["state"] == "failed" and run_show(b, rid)["ended_at"] !=
                o["ended_at"], 10)
    o2 = run_show(b, rid)
    assert o2["state"] == "failed" and o2["ended_at"] != o["ended_at"], (o, o2)
    took = ts(o2["ended_at"]) - ts(o2["started_at"])
    assert ts(o2["started_at"]) >= ts(o["ended_at"]) and 2.0 <= took < 3.0, (o, o2)
    assert o2["tasks"]["s"]["message"] == "run timed out", o2


def test_max_active_tasks_across_runs(env):
    b, d = env
    runs = [trigger(b, "gate"), trigger(b, "gate")]
    for rid in runs:
        assert wait_run(b, rid, timeout=20, daemon=d)["state"] == "success"
    iv = intervals(b, runs)
    assert len(iv) == 6, iv
    assert max_overlap(iv) == 2, sorted(iv)


def test_task_max_active_across_runs(env):
    b, d = env
    runs = [trigger(b, "one") for _ in range(3)]
    for rid in runs:
        assert wait_run(b, rid, timeout=20, daemon=d)["state"] == "success"
    iv = [x for x in intervals(b, runs) if x[3] == "t"]
    assert len(iv) == 3, iv
    assert max_overlap(iv) == 1, sorted(iv)
    # mapped instances count one each
    iv = [x for x in intervals(b, runs) if x[3].startswith("m[")]
    assert len(iv) == 6, intervals(b, runs)
    assert max_overlap(iv) == 1, sorted(iv)


def test_depends_on_past_waits_for_the_previous_run(env):
    b, d = env
    first = trigger(b, "past")
    second = trigger(b, "past")
    o1 = wait_run(b, first, timeout=15, daemon=d)
    o2 = wait_run(b, second, timeout=15, daemon=d)
    assert o1["state"] == o2["state"] == "success", (o1, o2)
    # the second run's t starts only once the first run's t has ended
    assert ts(o2["tasks"]["t"]["started_at"]) >= ts(o1["tasks"]["t"]["ended_at"]), (o1, o2)
    # a task without the flag did not wait
    assert ts(o2["tasks"]["own"]["started_at"]) < ts(o1["tasks"]["t"]["ended_at"]), (o1, o2)


def test_depends_on_past_holds_after_a_failure(env):
    b, d = env
    bad = trigger(b, "past", "--conf", '{"fail": 1}')
    held = trigger(b, "past")
    assert wait_run(b, bad, timeout=15, daemon=d)["state"] == "failed"
    o = wait_run(b, held, states=("running",), timeout=5, daemon=d)
    # it stays waiting, with the reason, well after the previous run failed
    time.sleep(0.5)
    o = run_show(b, held)
    assert o["state"] == "running", o
    t = o["tasks"]["t"]
    assert t["state"] == "scheduled" and t["tries"] == 0, o
    assert t["message"] == "waiting for t in run %s (depends_on_past)" % bad, o
    assert o["tasks"]["own"]["state"] == "success", o
    r = b("runs", "cancel", held)
    assert r.rc == 0, r
    o = wait_run(b, held, timeout=10, daemon=d)
    assert o["state"] == "cancelled" and o["tasks"]["t"]["state"] == "none", o


def test_run_timeout_survives_a_restart(env):
    # last: restarts the module's daemon
    b, d = env
    rid = trigger(b, "tmo2")
    assert poll(lambda: (b.dags / "tmo2.started").exists(), 10), d.log()
    assert d.stop() == 0, d.log()
    d.start()
    o = wait_run(b, rid, timeout=15, daemon=d)
    assert o["state"] == "failed", o
    took = ts(o["ended_at"]) - ts(o["started_at"])
    assert 4.0 <= took < 5.0, (took, o)
    assert o["tasks"]["s"]["message"] == "run timed out", o
    pids = [int(x) for x in (b.dags / "tmo2.pids").read_text().split()]
    assert poll(lambda: not any(alive(p) for p in pids), 5), pids


PAST_PG = """
dag: past2
depends_on_past: true
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t $(date +%s.%N)" >> LOG; sleep 0.5; echo "$BARAM_RUN_ID t $(date +%s.%N)" >> LOG'}
"""


def split_runs(ha, dag, n=1):
    """n runs of dag on scheduler 0, then n on scheduler 1 (scheduler 0 is
    stopped, for less than dead_after, while scheduler 1 takes it)."""
    ha.dead_after = 10.0  # scheduler 0 stopped is not declared dead, however loaded the box
    ha.home(0).env["BARAM_SCHEDULER_DEAD_AFTER"] = "10s"
    s0 = ha.start(0)
    first = ha.trigger(dag, n)
    assert poll(lambda: all(ha.owner(i) == ha.sched_id(s0) for i in first), 10), ha.runs()
    s1 = ha.start(1)
    os.kill(s0.pid, signal.SIGSTOP)
    try:
        second = ha.trigger(dag, n)
        ok = poll(lambda: all(ha.owner(i) == ha.sched_id(s1) for i in second), 2)
        time.sleep(0.3)
    finally:
        os.kill(s0.pid, signal.SIGCONT)
    assert ok, (ha.runs(), s1.log())
    return first, second


GATE_PG = """
dag: gate2
max_active_tasks: 2
max_active_runs: 16
tasks:
  a: {run: 'echo "$BARAM_RUN_ID a $(date +%s.%N)" >> LOG; sleep 0.4; echo "$BARAM_RUN_ID a $(date +%s.%N)" >> LOG'}
  b: {run: 'echo "$BARAM_RUN_ID b $(date +%s.%N)" >> LOG; sleep 0.4; echo "$BARAM_RUN_ID b $(date +%s.%N)" >> LOG'}
  c: {run: 'echo "$BARAM_RUN_ID c $(date +%s.%N)" >> LOG; sleep 0.4; echo "$BARAM_RUN_ID c $(date +%s.%N)" >> LOG'}
"""


@pytest.mark.pg_only
def test_max_active_tasks_holds_across_schedulers(ha):
    # Two runs on scheduler 0; scheduler 1 takes two more while scheduler 0 is stopped (for
    # less than dead_after): its tries go on on the worker and hold the DAG's two slots in
    # the database, so scheduler 1's tries wait for them.
    ha.write_dag("gate2.yaml", GATE_PG)
    first, second = split_runs(ha, "gate2", 2)
    ids = first + second
    assert poll(lambda: ha.all_done(ids), 40), ha.runs()
    assert all(ha.runs()[i] == "success" for i in ids), ha.runs()
    stamps = {}
    for ln in ha.log.read_text().splitlines():
        run, task, t = ln.split()
        stamps.setdefault((run, task), []).append(float(t))
    iv = [(min(v), max(v), k[0], k[1]) for k, v in stamps.items()]
    assert len(iv) == 12 and all(len(v) == 2 for v in stamps.values()), stamps
    assert max_overlap(iv) <= 2, sorted(iv)
    for d in ha.scheds:
        assert d.stop() == 0
    ha.no_deadlock()


@pytest.mark.pg_only
def test_depends_on_past_waits_for_a_run_of_another_scheduler(ha):
    ha.write_dag("past2.yaml", PAST_PG)
    first, second = split_runs(ha, "past2")
    ids = first + second
    assert poll(lambda: ha.all_done(ids), 30), ha.runs()
    assert all(ha.runs()[i] == "success" for i in ids), ha.runs()
    stamps = {}
    for ln in ha.log.read_text().splitlines():
        run, task, t = ln.split()
        stamps.setdefault(run, []).append(float(t))
    assert min(stamps[second[0]]) >= max(stamps[first[0]]), stamps
    for d in ha.scheds:
        assert d.stop() == 0


def test_run_timeout_in_the_foreground(baram):
    p = baram.write("fg.yaml", """
        dag: fg
        run_timeout: 1s
        tasks:
          s: {run: 'exec sleep 20'}
        """)
    t0 = time.monotonic()
    obj = baram.run_json(p, expect_rc=1)
    assert time.monotonic() - t0 < 10
    assert obj["state"] == "failed", obj
    assert obj["tasks"]["s"]["message"] == "run timed out", obj
