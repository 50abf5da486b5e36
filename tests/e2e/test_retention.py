"""Retention (SPEC section 13): `baram db clean --older-than D [--logs-only] [--dry-run]` and
`retention: {runs, logs, every}` in baram.yaml applied by a running scheduler. Runs are made
by `baram run`, then aged by moving their end time back in the store; a run still queued or
running is never deleted, however old.
"""

import json
import subprocess

import pytest

from conftest import BIN, ON_PG, TIMEOUT, _pg_env, db_query, home_db, wait_for
from daemon_util import daemons, wait_run  # noqa: F401 (daemons: a fixture)

DAY_MS = 86400 * 1000

DAG = """
    dag: d
    tasks:
      a:
        run: echo a-output
      b:
        needs: [a]
        run: echo b-output
    """


def make_runs(b, n):
    p = b.write("d.yaml", DAG)
    objs = [b.run_json(p) for _ in range(n)]
    for o in objs:
        assert len(list(b.run_dir(o).glob("*.log"))) == 2, o
    return objs


def age(b, run_id, days, state=None):
    """Moves the run's end back by days (and sets its state)."""
    db_query(b, "UPDATE runs SET ended_at = ended_at - ? WHERE run_id = ?", days * DAY_MS, run_id)
    if state:
        db_query(b, "UPDATE runs SET state = ? WHERE run_id = ?", state, run_id)


def count(b, table, run_id):
    return db_query(b, "SELECT count(*) FROM %s WHERE run_id = ?" % table, run_id)[0][0]


def add_delivery(b, run_id):
    """A delivery of a notification of the run, as a DAG hook records it (migration 0009)."""
    db_query(b, "INSERT INTO deliveries (id, run_id, hook, notifier, state, created_at, "
                "updated_at) VALUES (?, ?, 'on_failure', 'ops', 'sent', 1, 1)",
             run_id + "/on_failure/ops", run_id)


def clean(b, *args):
    r = b("db", "clean", *args, "--json")
    assert r.rc == 0, r
    return r.json


def test_db_clean_dry_run_then_real(baram):
    b = baram
    old, old_running, mid, new = make_runs(b, 4)
    age(b, old["run_id"], 40)
    age(b, old_running["run_id"], 40, state="running")
    age(b, mid["run_id"], 10)
    for o in (old, mid):
        add_delivery(b, o["run_id"])
    queued = b("dags", "trigger", "d", "--date", "2020-01-01", "--json",
               env={"BARAM_DAGS": str(b.dags)})
    assert queued.rc == 0, queued
    queued = queued.json["run_id"]
    nruns = db_query(b, "SELECT count(*) FROM runs")[0][0]

    o = clean(b, "--older-than", "30d", "--dry-run")
    assert o["dry_run"] is True and o["older_than_ms"] == 30 * DAY_MS, o
    assert (o["runs"], o["task_instances"], o["log_files"]) == (1, 2, 2), o
    assert o["bytes"] == len("a-output\n") + len("b-output\n"), o
    assert db_query(b, "SELECT count(*) FROM runs")[0][0] == nruns
    assert count(b, "task_instances", old["run_id"]) == 2
    assert count(b, "deliveries", old["run_id"]) == 1
    assert b.run_dir(old).is_dir()

    o = clean(b, "--older-than", "30d")
    assert (o["dry_run"], o["runs"], o["task_instances"], o["log_files"]) == (False, 1, 2, 2), o
    for table in ("runs", "task_instances", "tries", "deliveries"):
        assert count(b, table, old["run_id"]) == 0, table
    assert count(b, "deliveries", mid["run_id"]) == 1
    assert not b.run_dir(old).exists()
    # the old one still running, the queued one, and the recent ones stay with their logs
    for o in (old_running, mid, new):
        assert count(b, "runs", o["run_id"]) == 1 and count(b, "task_instances", o["run_id"]) == 2
        assert len(list(b.run_dir(o).glob("*.log"))) == 2, o
    assert count(b, "runs", queued) == 1
    assert clean(b, "--older-than", "30d")["runs"] == 0  # nothing left to do

    # logs only: the run stays, its log files go, once
    o = clean(b, "--older-than", "5d", "--logs-only", "--dry-run")
    assert (o["runs"], o["log_runs"], o["log_files"]) == (0, 1, 2), o
    assert b.run_dir(mid).is_dir()
    o = clean(b, "--older-than", "5d", "--logs-only")
    assert (o["runs"], o["log_runs"], o["log_files"]) == (0, 1, 2), o
    assert not b.run_dir(mid).exists()
    assert count(b, "runs", mid["run_id"]) == 1 and count(b, "task_instances", mid["run_id"]) == 2
    assert b("logs", mid["run_id"], "a").rc != 0  # its log is gone

    assert len(list(b.run_dir(new).glob("*.log"))) == 2
    assert b.run_dir(old_running).is_dir()
    o = clean(b, "--older-than", "5d", "--logs-only")
    assert (o["log_runs"], o["log_files"]) == (0, 0), o

    # a run written again (a task cleared: it runs anew, with new logs) is looked at again
    purged = "SELECT logs_purged_at FROM runs WHERE run_id = ?"
    assert db_query(b, purged, mid["run_id"])[0][0] is not None
    r = b("tasks", "clear", mid["run_id"], "a")
    assert r.rc == 0, r
    assert db_query(b, purged, mid["run_id"])[0][0] is None

    age(b, new["run_id"], 3)
    r = b("db", "clean", "--older-than", "2d")
    assert r.rc == 0 and r.out == "deleted 1 runs, 2 task instances, 2 log files, 18 bytes\n", r


def held_clean(b, *args, between):
    """`db clean ARGS --json` stopped after its pick (FP_RETENTION_HOLD): between() runs
    there, then the clean goes on. Its JSON."""
    p = subprocess.Popen([BIN, "db", "clean", *args, "--json"], cwd=str(b.dags),
                         env=dict(b.env, BARAM_FAULT="FP_RETENTION_HOLD"), stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = p.stderr.readline()
        assert "FP_RETENTION_HOLD: picked" in line, (line, p.stderr.read())
        between()
        out, err = p.communicate("\n", timeout=TIMEOUT)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, (out, err)
    return json.loads(out)


def test_db_clean_leaves_a_run_cleared_after_the_pick(baram):
    """A run queued again by a clear between retention's pick and its delete (or its logs'
    removal) keeps its rows and its logs; the others of the batch go."""
    b = baram
    cleared, gone, logs_cleared = make_runs(b, 3)
    for o in (cleared, gone):
        age(b, o["run_id"], 40)
    add_delivery(b, cleared["run_id"])
    clear = lambda o: (lambda: b("tasks", "clear", o["run_id"], "a").rc == 0 or pytest.fail())
    o = held_clean(b, "--older-than", "30d", between=clear(cleared))
    assert (o["runs"], o["task_instances"], o["log_files"]) == (1, 2, 2), o
    assert count(b, "runs", gone["run_id"]) == 0 and not b.run_dir(gone).exists()
    assert db_query(b, "SELECT state FROM runs WHERE run_id = ?",
                    cleared["run_id"]) == [("queued",)]
    for table, n in (("task_instances", 2), ("tries", 2), ("deliveries", 1)):
        assert count(b, table, cleared["run_id"]) == n, table
    assert len(list(b.run_dir(cleared).glob("*.log"))) == 2

    # the logs pass: a run cleared after the pick keeps its logs, and they are not marked gone
    age(b, logs_cleared["run_id"], 10)
    o = held_clean(b, "--older-than", "5d", "--logs-only", between=clear(logs_cleared))
    assert (o["log_runs"], o["log_files"]) == (0, 0), o
    assert len(list(b.run_dir(logs_cleared).glob("*.log"))) == 2
    assert db_query(b, "SELECT logs_purged_at FROM runs WHERE run_id = ?",
                    logs_cleared["run_id"]) == [(None,)]


def test_db_clean_bad_input(baram):
    b = baram
    make_runs(b, 1)
    for args, text in ((["db", "clean"], "--older-than is required"),
                       (["db", "clean", "--older-than", "soon"], "bad --older-than 'soon'"),
                       (["db", "clean", "--older-than", "0"], "bad --older-than"),
                       (["db", "clean", "--older-than", "-3d"], "bad --older-than"),
                       (["db", "clean", "--older-than", "1d", "x"], "unexpected argument"),
                       (["db", "clean", "--older-then", "1d"], "did you mean '--older-than'"),
                       (["db", "vacuum"], "unknown subcommand"),
                       (["db"], "usage: baram db clean")):
        r = b(*args)
        assert r.rc == 2 and text in r.err, (args, r)
    assert b("db", "clean", "--help").rc == 0
    (b.home / "baram.yaml").write_text("retention:\n  run: 30d\n")
    r = b("db", "clean", "--older-than", "1d")
    assert r.rc == 2 and "unknown key 'run'" in r.err and "did you mean 'runs'" in r.err, r
    (b.home / "baram.yaml").write_text("retention:\n  runs: forever\n")
    r = b("db", "clean", "--older-than", "1d")
    assert r.rc == 2 and "bad duration 'forever' for 'retention.runs'" in r.err, r
    (b.home / "baram.yaml").write_text("retention: 30d\n")
    r = b("db", "clean", "--older-than", "1d")
    assert r.rc == 2 and "'retention' must be a mapping" in r.err, r


def test_scheduler_applies_retention(baram, daemons):
    b = baram
    old, mid, new = make_runs(b, 3)
    age(b, old["run_id"], 40)
    age(b, mid["run_id"], 10)
    (b.home / "baram.yaml").write_text("retention: {runs: 30d, logs: 5d, every: 1s}\n")
    d = daemons(b, "--grace", "1s")
    assert wait_for(lambda: count(b, "runs", old["run_id"]) == 0, timeout=15), d.log()
    assert wait_for(lambda: not b.run_dir(mid).exists(), timeout=15), d.log()
    assert not b.run_dir(old).exists()
    assert count(b, "runs", mid["run_id"]) == 1
    # later passes: a run that grows old while the scheduler runs goes too
    age(b, new["run_id"], 40)
    assert wait_for(lambda: count(b, "runs", new["run_id"]) == 0, timeout=15), d.log()
    assert not b.run_dir(new).exists()
    assert d.lines("retention applied"), d.log()
    # a run the scheduler ran: on PostgreSQL a worker ran its tries and the store kept their
    # logs (try_logs), which go with the log files
    r = b("dags", "trigger", "d", "--json", env={"BARAM_DAGS": str(b.dags)})
    assert r.rc == 0, r
    rid = r.json["run_id"]
    wait_run(b, rid, daemon=d)
    if ON_PG:
        assert count(b, "try_logs", rid) == 2
    age(b, rid, 10)
    assert wait_for(lambda: db_query(b, "SELECT logs_purged_at FROM runs WHERE run_id = ?",
                                     rid)[0][0] is not None, timeout=15), d.log()
    assert count(b, "try_logs", rid) == 0 if ON_PG else not (b.home / "logs" / "d" / rid).exists()
    assert count(b, "runs", rid) == 1
    d.stop()
    assert d.rc == 0, d.log()


@pytest.mark.skipif(not ON_PG, reason="the retention lock is PostgreSQL's")
def test_one_process_applies_retention_at_a_time(baram):
    """On PostgreSQL the scheduler that holds the retention lock applies it; `db clean` run
    meanwhile says so and deletes nothing."""
    b = baram
    (old,) = make_runs(b, 1)
    age(b, old["run_id"], 40)
    holder = subprocess.Popen(["psql", "-X", "-q", "-At", home_db(b.home), "-c",
                               "SELECT pg_advisory_lock(7262013), pg_sleep(30)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=_pg_env())
    try:
        locked = lambda: db_query(b, "SELECT count(*) FROM pg_locks WHERE "
                                     "locktype = 'advisory' AND objid = 7262013")
        assert wait_for(lambda: locked()[0][0] == 1), (locked(), holder.poll())
        r = b("db", "clean", "--older-than", "30d")
        assert r.rc == 1 and "applying retention" in r.err, r
        assert count(b, "runs", old["run_id"]) == 1
    finally:  # the server's session holds the lock until it ends, not when psql dies
        db_query(b, "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE "
                    "locktype = 'advisory' AND objid = 7262013")
        holder.kill()
        holder.wait()
    assert wait_for(lambda: b("db", "clean", "--older-than", "30d").rc == 0)
    assert count(b, "runs", old["run_id"]) == 0


def test_db_clean_never_leaves_the_run_folder(baram):
    """A run id that names a path (written into the store by hand: baram never makes one)
    is deleted from the store, but no folder above a run's own is touched."""
    b = baram
    (keep,) = make_runs(b, 1)
    for rid in ("../..", "", "x/../../.."):
        db_query(b, "INSERT INTO runs (run_id, dag_id, state, type, logical_at, ended_at) "
                    "VALUES (?, 'd', 'success', 'manual', 0, 1000)", rid)
    o = clean(b, "--older-than", "30d")
    assert (o["runs"], o["log_files"]) == (3, 0), o
    assert (b.home / "logs" / "d").is_dir()
    if not ON_PG:
        assert (b.home / "baram.db").exists()
    assert len(list(b.run_dir(keep).glob("*.log"))) == 2
    assert count(b, "runs", keep["run_id"]) == 1
