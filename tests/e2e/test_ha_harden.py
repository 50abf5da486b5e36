"""Several schedulers on one PostgreSQL database, the hard cases (review of issue 11): a
scheduler frozen inside a writer batch, one cut off from the database, one back from an outage,
a queued run changed while a scheduler admits it, cancel requests of other schedulers' runs.
dead_after is 3 s, heartbeat 1 s, unless a test says otherwise.
"""

import os
import signal
import subprocess
import time

import pytest

from conftest import PgCluster
from daemon_util import daemons, poll  # noqa: F401 (daemons: a fixture)
from test_ha import DEAD_AFTER, ha  # noqa: F401 (ha: a fixture)

pytestmark = pytest.mark.pg_only

SLEEPY = """
dag: sleepy
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t start" >> LOG; echo $$ > PIDFILE; sleep 60; echo "$BARAM_RUN_ID t done" >> LOG'}
"""


def proc_state(pid):
    """The state letter of /proc/PID/stat (T: stopped), None when the process is gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return None


def alive(pid):
    return proc_state(pid) not in (None, "Z")


def cluster_of(url):
    """The PgCluster and database name of a tests' URL."""
    db, rest = url.split(":///", 1)[1].split("?", 1)
    host = [kv.split("=", 1)[1] for kv in rest.split("&") if kv.startswith("host=")][0]
    return PgCluster(host), db


def hold(url, sql):
    """A psql session that ran sql and stays open (its locks held) until closed."""
    pg, db = cluster_of(url)
    cmd = ["psql", "-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", pg.dir, "-U", "postgres", "-d", db]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    p.stdin.write(sql + "\n\\echo held\n")
    p.stdin.flush()
    while p.stdout.readline().strip() != "held":
        pass
    return p


def test_frozen_inside_a_batch_is_declared_dead(ha):
    """A scheduler frozen (SIGSTOP) while its writer holds its fence lock (FOR SHARE on its
    workers row, inside a batch) is still declared dead: the server ends its idle transaction,
    the reaper waits for the row instead of skipping it, and another scheduler finishes the
    run within dead_after + 5 s of being able to judge."""
    ha.write_dag("one.yaml", """
dag: one
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t start" >> LOG; echo "$BARAM_RUN_ID t done" >> LOG', retries: 2}
""")
    (run_id,) = ha.trigger("one")
    ha.home(0).env["BARAM_FAULT"] = "FP_STOP_IN_BATCH"
    a = ha.start(0)
    try:
        assert poll(lambda: proc_state(a.pid) == "T", 10), a.log()
        aid = ha.q("SELECT id FROM workers WHERE pid = ?", a.pid)[0][0]
        assert ha.owner(run_id) == int(aid)
        b = ha.start(1)
        bid = ha.sched_id(b)
        # b judges others once it has beaten for dead_after itself; a is silent by then.
        assert poll(lambda: ha.runs()[run_id] == "success", 2 * DEAD_AFTER + 5), b.log()
        assert ha.owner(run_id) == bid
        assert ha.q("SELECT state FROM workers WHERE id = ?", aid) == [("dead",)]
    finally:
        a.proc.send_signal(signal.SIGKILL)
        a.proc.wait(10)
    ha.no_deadlock()


def test_cut_off_scheduler_stops_its_tries(ha, tmp_path):
    """A scheduler that cannot reach the database (no new connection allowed, its sessions
    ended) stops its own tries within 3/4 of dead_after, before the others could declare it
    dead and run them again; it exits 1."""
    pidfile = tmp_path / "t.pid"
    ha.write_dag("sleepy.yaml", SLEEPY.replace("PIDFILE", str(pidfile)))
    a = ha.start(0)
    (run_id,) = ha.trigger("sleepy")
    assert poll(lambda: pidfile.exists() and pidfile.read_text().strip(), 10), a.log()
    task = int(pidfile.read_text())
    assert alive(task)
    pg, db = cluster_of(ha.url)
    pg.psql("ALTER DATABASE %s ALLOW_CONNECTIONS false;"
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s';"
            % (db, db))
    cut = time.monotonic()
    try:
        assert poll(lambda: not alive(task), DEAD_AFTER + 2), a.log()
        took = time.monotonic() - cut
        assert took < DEAD_AFTER, took  # before anyone could have declared it dead
    finally:
        pg.psql("ALTER DATABASE %s ALLOW_CONNECTIONS true" % db)
        assert a.proc.wait(40) == 1, a.log()
        assert a.lines("scheduler lost its runs: stopping its tries and exiting"), a.log()
        if alive(task):
            os.kill(task, signal.SIGKILL)


def test_no_scheduler_reaped_before_the_reaper_beats_steadily(ha):
    """A scheduler judges others only after it has itself beaten for dead_after: back from an
    outage (or just started), everybody's heartbeat is old, and the first one back must not
    declare them all dead. The silent scheduler is a row whose heartbeat is an hour old."""
    ha.home(0).env["BARAM_SCHEDULER_DEAD_AFTER"] = "6s"
    ha.q("INSERT INTO workers (role, name, hostname, pid, queues, slots, home, heartbeat_at) "
         "VALUES ('scheduler', 'other:1', 'otherhost', 1, ARRAY['default'], 4, '/elsewhere', "
         "now() - interval '1 hour')")
    a = ha.start(0)
    assert poll(lambda: ha.sched_id(a), 10)
    time.sleep(3.0)  # three beats of a, half its dead_after
    assert ha.q("SELECT state FROM workers WHERE name = 'other:1'") == [("active",)], a.log()
    assert poll(lambda: ha.q("SELECT state FROM workers WHERE name = 'other:1'")
                == [("dead",)], 10), a.log()
    assert a.stop() == 0


def test_admission_does_not_overwrite_a_concurrent_cancel(ha):
    """A queued run cancelled while a scheduler admits it (its start waits for the cancel's
    row lock) stays cancelled: the start re-checks the row it updates, and the task never
    runs."""
    ha.write_dag("one.yaml", """
dag: one
max_active_runs: 1
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t start" >> LOG; sleep 2; echo "$BARAM_RUN_ID t done" >> LOG'}
""")
    a = ha.start(0)
    (first,) = ha.trigger("one")
    assert poll(lambda: (first, "t", "start") in ha.lines(), 10), a.log()
    (run_id,) = ha.trigger("one")
    assert poll(lambda: ha.owner(run_id) == ha.sched_id(a), 10), a.log()
    assert ha.runs()[run_id] == "queued"
    psql = hold(ha.url, "BEGIN;\nUPDATE runs SET state = 'cancelled' WHERE run_id = '%s';"
                % run_id)
    try:
        # The first run ends; the scheduler's start of the second waits for this transaction.
        waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' " \
                  "AND query LIKE '%UPDATE runs r SET state = ''running''%'"
        assert poll(lambda: ha.q(waiting)[0][0] > 0, 15), a.log()
        psql.stdin.write("COMMIT;\n")
        psql.stdin.flush()
        assert psql.stdout.readline().strip() == "COMMIT"
    finally:
        psql.stdin.close()
        psql.wait(10)
    time.sleep(3)
    assert ha.runs()[run_id] == "cancelled", a.log()
    assert (run_id, "t", "start") not in ha.lines()
    assert a.stop() == 0


def test_cancel_of_another_schedulers_run_is_left_in_place(ha):
    """A cancel requested for a run another scheduler owns is not taken (deleted, then put
    back: lost if the taker dies in between) by the scheduler that reads it first: the row
    stays untouched until its owner takes it, and the owner cancels the run."""
    for i in (0, 1):
        ha.home(i).env["BARAM_SCHEDULER_DEAD_AFTER"] = "10s"
    ha.write_dag("long.yaml", """
dag: long
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t start" >> LOG; sleep 60'}
""")
    b = ha.start(1)
    (run_id,) = ha.trigger("long")
    assert poll(lambda: (run_id, "t", "start") in ha.lines(), 10), b.log()
    a = ha.start(0)
    assert ha.owner(run_id) == ha.sched_id(b)
    b.proc.send_signal(signal.SIGSTOP)  # b cannot take its request for now
    try:
        r = ha.home(0)("runs", "cancel", run_id, "--wait", "0")  # wakes a, which reads the request first
        assert r.rc == 0, r
        row = ha.q("SELECT xmin::text, kind FROM run_requests WHERE run_id = ?", run_id)
        assert len(row) == 1, row
        time.sleep(3)  # a's wake-up sync and its next resync
        assert ha.q("SELECT xmin::text, kind FROM run_requests WHERE run_id = ?",
                    run_id) == row, a.log()
    finally:
        b.proc.send_signal(signal.SIGCONT)
    assert poll(lambda: ha.runs()[run_id] == "cancelled", 8), (a.log(), b.log())
    assert b.lines("run ended") and not a.lines("run ended")
    assert ha.q("SELECT count(*) FROM run_requests WHERE run_id = ?", run_id)[0][0] == 0
    for d in (a, b):
        assert d.stop() == 0
    ha.no_deadlock()


def test_a_command_waiting_for_a_lock_gives_up(ha):
    """No lock wait is unbounded: a command whose store open waits for a lock another session
    holds (here the migrations' advisory lock) fails with the server's lock timeout, in about
    10 s, instead of hanging."""
    held = hold(ha.url, "SELECT pg_advisory_lock(7262000);")
    try:
        start = time.monotonic()
        r = ha.home(0)("runs", "list", timeout=40)
        took = time.monotonic() - start
        assert r.rc != 0, r
        assert "lock timeout" in r.err, r
        assert took < 20, took
    finally:
        held.stdin.close()
        held.wait(10)
