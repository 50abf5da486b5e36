"""Ctrl-C on `baram run`: the run ends as `cancelled`, its task processes are
killed, baram exits promptly."""

import json
import signal
import time

import pytest

from conftest import RUN_ID_RE, alive, check_run_shape, kill_pids, read_pids, wait_for

DAG = """
dag: longsleep
tasks:
  s1:
    run: 'sleep 30 & echo $! > s1-child.pid; echo $$ > s1.pid; touch s1.started; wait'
  s2:
    run: 'echo $$ > s2.pid; touch s2.started; sleep 30'
  later:
    needs: [s1, s2]
    run: touch later.ran
"""


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_cancels_run(baram, sig):
    p = baram.write("long.yaml", DAG)
    proc = baram.popen("run", p, "--parallelism", "4", "--json")
    try:
        started = wait_for(lambda: all((baram.dags / f).exists()
                                       for f in ("s1.started", "s2.started", "s1-child.pid")))
        assert started, "tasks never started"
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
        took = time.monotonic() - t0
        assert took < 5.0, (took, err)
        assert proc.returncode == 1, (proc.returncode, out, err)
        # every task process is gone
        time.sleep(0.2)
        pids = read_pids(baram.dags)
        assert len(pids) == 3, pids
        assert [pid for pid in pids if alive(pid)] == []
        assert not (baram.dags / "later.ran").exists()
        # --json still reports the run
        obj = json.loads(out)
        check_run_shape(obj)
        assert obj["state"] == "cancelled", obj
        # the store says cancelled
        ids = baram.run_ids()
        assert len(ids) == 1, ids
        r = baram("runs", "show", ids[0], "--json")
        assert r.rc == 0, r
        shown = r.json
        assert shown["state"] == "cancelled", shown
        assert shown["run_id"] == obj["run_id"]
        for name in ("s1", "s2", "later"):
            assert shown["tasks"][name]["state"] not in ("running", "queued", "scheduled",
                                                         "success"), shown
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        kill_pids(read_pids(baram.dags))


def test_cancelled_run_listed(baram):
    p = baram.write("long.yaml", DAG)
    proc = baram.popen("run", p)
    try:
        assert wait_for(lambda: (baram.dags / "s2.started").exists())
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
        r = baram("runs", "list")
        assert r.rc == 0, r
        assert RUN_ID_RE.search(r.out) and "cancelled" in r.out, r
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=10)
        kill_pids(read_pids(baram.dags))


def test_signal_with_task_ignoring_sigterm(baram):
    # cancel sends SIGTERM to the task's group, then SIGKILL after the grace
    # (10 s): baram must not exit and leave the process running
    p = baram.write("stubborn.yaml", """
        dag: stubborn
        tasks:
          s:
            run: |
              trap '' TERM
              echo $$ > sh.pid
              sleep 60 &
              echo $! > child.pid
              touch started
              sleep 60
        """)
    proc = baram.popen("run", p, "--json")
    try:
        assert wait_for(lambda: (baram.dags / "started").exists())
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
        assert time.monotonic() - t0 < 15.0, err
        assert proc.returncode == 1, (out, err)
        assert json.loads(out)["state"] == "cancelled"
        time.sleep(0.2)
        pids = read_pids(baram.dags)
        assert len(pids) == 2 and [pid for pid in pids if alive(pid)] == [], pids
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
        kill_pids(read_pids(baram.dags))
