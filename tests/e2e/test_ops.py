"""The operations commands (SPEC section 3): `dags list|show|pause|unpause|
trigger|backfill`, `runs cancel`, `tasks clear`, `pools list|set`.

No scheduler daemon runs here: the tests check what the CLI leaves in the
store (through `runs list/show --json`, `dags list --json` and db_query), the
no-scheduler paths, and, for `runs cancel`, the scheduler-present path with
the home's lock held by this test (fcntl.flock on HOME/scheduler.lock, as
the daemon does) while a thread plays the scheduler.
"""

import fcntl
import json
import os
import threading
import time

import pytest
from conftest import db_created, db_query

ETL = """
dag: etl
description: nightly load
schedule: "@daily"
start: 2026-01-01
params: {region: eu, limit: 100}
tasks:
  extract:
    run: "true"
  transform:
    needs: [extract]
    run: "true"
    retries: 2
  load:
    needs: [transform]
    run: "true"
  report:
    needs: [extract]
    run: "true"
"""

MANUAL = """
dag: manual_only
params: {who: null}
tasks:
  a:
    run: echo "$PARAM_WHO"
"""

MAPPED = """
dag: mapped
tasks:
  make:
    run: "true"
  shards:
    needs: [make]
    for_each: [x, y, z]
    run: echo {{ item }}
  after:
    needs: [shards]
    run: "true"
"""

BROKEN = """
dag: broken
tasks:
  a:
    runn: echo a
"""

NO_SCHED = "no scheduler is running"


@pytest.fixture
def ops(baram):
    baram.env["BARAM_DAGS"] = str(baram.dags)
    baram.write("etl.yaml", ETL)
    baram.write("manual.yaml", MANUAL)
    return baram


query = db_query


def runs(b, *args):
    r = b("runs", "list", *args, "--limit", "100000", "--json")
    assert r.rc == 0, r
    return json.loads(r.out)["runs"]


def show(b, run_id):
    r = b("runs", "show", run_id, "--json")
    assert r.rc == 0, r
    return r.json


def trigger(b, dag="etl", *args):
    r = b("dags", "trigger", dag, *args, "--json")
    assert r.rc == 0, r
    return r.json


# ---- help ----

@pytest.mark.parametrize("cmd", [
    ["dags", "list"], ["dags", "show"], ["dags", "pause"], ["dags", "unpause"],
    ["dags", "trigger"], ["dags", "backfill"], ["runs", "cancel"], ["tasks", "clear"],
    ["pools"], ["pools", "list"], ["pools", "set"]], ids=lambda c: "-".join(c))
def test_help(ops, cmd):
    r = ops(*cmd, "--help")
    assert r.rc == 0, r
    assert "usage" in r.out.lower() and cmd[-1] in r.out, r


def test_unknown_subcommands_suggest(ops):
    for cmd, near in [(["dags", "trigerr"], "trigger"), (["runs", "cancl"], "cancel"),
                      (["pools", "lst"], "list"), (["tasks", "claer"], "clear")]:
        r = ops(*cmd)
        assert r.rc == 2, r
        assert "did you mean '%s'" % near in r.err, r


# ---- dags list / show ----

def test_list_without_database(ops):
    ops.write("broken.yaml", BROKEN)
    r = ops("dags", "list", "--json")
    assert r.rc == 0, r
    obj = r.json
    ids = [d["dag_id"] for d in obj["dags"]]
    assert ids == ["etl", "manual_only"], obj
    etl = obj["dags"][0]
    assert etl == {"dag_id": "etl", "file": str(ops.dags / "etl.yaml"), "schedule": "@daily",
                   "paused": False, "description": "nightly load", "tasks": 4,
                   "last_run": None, "timezone": "UTC"}, etl
    assert obj["dags"][1]["schedule"] is None
    errs = obj["import_errors"]
    assert errs and all(e["file"] == str(ops.dags / "broken.yaml") for e in errs), errs
    assert any("unknown key 'runn'" in e["message"] and e["line"] == 4 for e in errs), errs
    assert "could not be loaded" in r.err, r
    assert not db_created(ops)   # reading never creates the database


def test_list_human_shows_import_errors(ops):
    ops.write("broken.yaml", BROKEN)
    r = ops("dags", "list")
    assert r.rc == 0, r
    assert "etl" in r.out and "@daily" in r.out and "manual_only" in r.out, r
    assert "broken.yaml:4:5: unknown key 'runn'" in r.out, r
    assert "import errors" in r.err, r


def test_list_last_run_and_paused(ops):
    t = trigger(ops)
    assert ops("dags", "pause", "etl").rc == 0
    obj = ops("dags", "list", "--json").json
    etl = obj["dags"][0]
    assert etl["paused"] is True
    assert etl["last_run"] == {"run_id": t["run_id"], "state": "queued"}, etl
    assert obj["import_errors"] == []


def test_list_missing_folder_is_empty(ops, tmp_path):
    r = ops("dags", "list", "--json", env={"BARAM_DAGS": str(tmp_path / "nope")})
    assert r.rc == 0, r
    assert r.json == {"dags": [], "import_errors": []}


def test_show(ops):
    trigger(ops)
    r = ops("dags", "show", "etl", "--json")
    assert r.rc == 0, r
    o = r.json
    assert o["dag_id"] == "etl" and o["file"] == str(ops.dags / "etl.yaml")
    assert o["schedule"] == "@daily" and o["start"] == "2026-01-01T00:00:00.000Z"
    assert o["end"] is None and o["catchup"] is False and o["paused"] is False
    assert o["params"] == {"region": "eu", "limit": "100"}
    names = [t["name"] for t in o["tasks"]]
    assert sorted(names) == ["extract", "load", "report", "transform"]
    for t in o["tasks"]:       # topological: every need comes earlier
        for n in t["needs"]:
            assert names.index(n) < names.index(t["name"]), o["tasks"]
    assert {t["name"]: t["needs"] for t in o["tasks"]}["load"] == ["transform"]
    assert len(o["recent_runs"]) == 1
    h = ops("dags", "show", "etl")
    assert h.rc == 0 and "transform" in h.out and "needs: extract" in h.out, h
    assert "region=eu" in h.out, h


def test_show_unknown_dag_suggests(ops):
    r = ops("dags", "show", "elt")
    assert r.rc == 2, r
    assert "no DAG 'elt'" in r.err and "did you mean 'etl'" in r.err, r
    r = ops("dags", "show")
    assert r.rc == 2, r
    r = ops("dags", "show", "a", "b")
    assert r.rc == 2, r


# ---- pause / unpause ----

def test_pause_unpause(ops):
    r = ops("dags", "pause", "etl")
    assert r.rc == 0 and "paused etl" in r.out, r
    assert query(ops, "SELECT paused FROM dags WHERE dag_id = 'etl'") == [(1,)]
    r = ops("dags", "unpause", "etl", "--json")
    assert r.rc == 0, r
    assert r.json == {"dag": "etl", "paused": False}
    assert query(ops, "SELECT paused FROM dags WHERE dag_id = 'etl'") == [(0,)]


def test_pause_known_only_to_the_store(ops):
    assert ops("dags", "pause", "etl").rc == 0
    (ops.dags / "etl.yaml").unlink()
    r = ops("dags", "unpause", "etl")
    assert r.rc == 0, r
    assert query(ops, "SELECT paused FROM dags WHERE dag_id = 'etl'") == [(0,)]


@pytest.mark.parametrize("name", ["etll", "nope", "a b", "../etl", "x" * 5000, ""])
def test_pause_unknown_dag(ops, name):
    r = ops("dags", "pause", name)
    assert r.rc == 2, r
    assert "no DAG" in r.err, r
    if name == "etll":
        assert "did you mean 'etl'" in r.err, r
    assert query(ops, "SELECT COUNT(*) FROM dags") == [(0,)]


# ---- trigger ----

def test_trigger_queues_a_run(ops):
    r = ops("dags", "trigger", "etl")
    assert r.rc == 0, r
    run_id = r.out.strip()
    assert run_id.startswith("manual__"), r
    assert NO_SCHED in r.err and "baram standalone" in r.err, r
    o = show(ops, run_id)
    assert o["state"] == "queued" and o["type"] == "manual" and o["dag"] == "etl", o
    row = query(ops, "SELECT state, type, conf, dag_hash, dag_path, owner, queued_at, "
                     "started_at, ended_at FROM runs WHERE run_id = ?", run_id)[0]
    state, typ, conf, dag_hash, dag_path, owner, queued, started, ended = row
    assert (state, typ, conf, owner, started, ended) == ("queued", "manual", None, None, None,
                                                         None)
    assert dag_path == str(ops.dags / "etl.yaml") and queued > 0
    src = query(ops, "SELECT source FROM dag_versions WHERE hash = ?", dag_hash)
    assert src and bytes(src[0][0]) == (ops.dags / "etl.yaml").read_bytes()


def test_trigger_conf_and_date(ops):
    o = trigger(ops, "etl", "--conf", '{"region": "us", "limit": 5}', "--date", "2026-03-04")
    assert o["dag"] == "etl" and o["state"] == "queued", o
    assert o["logical_date"] == "2026-03-04T00:00:00.000Z", o
    conf = query(ops, "SELECT conf FROM runs WHERE run_id = ?", o["run_id"])[0][0]
    assert conf == '{"limit":"5","region":"us"}'
    o2 = trigger(ops, "etl", "--conf", '{"limit": 1.5, "region": true}',
                 "--date", "2026-03-04T05:06:07Z")
    assert o2["logical_date"] == "2026-03-04T05:06:07.000Z"
    conf = query(ops, "SELECT conf FROM runs WHERE run_id = ?", o2["run_id"])[0][0]
    assert json.loads(conf) == {"limit": "1.5", "region": "true"}
    assert o2["run_id"] != o["run_id"]


def test_trigger_same_millisecond_ids_differ(ops):
    ids = {trigger(ops)["run_id"] for _ in range(5)}
    assert len(ids) == 5


def test_required_param(ops):
    r = ops("dags", "trigger", "manual_only")
    assert r.rc == 2 and "param 'who' has no default" in r.err, r
    o = trigger(ops, "manual_only", "--conf", '{"who": "me"}')
    assert query(ops, "SELECT conf FROM runs WHERE run_id = ?", o["run_id"]) == \
        [('{"who":"me"}',)]


@pytest.mark.parametrize("conf,msg", [
    ("{bad", "not valid JSON"),
    ("", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    ('"x"', "must be a JSON object"),
    ("42", "must be a JSON object"),
    ('{"regoin": "us"}', "unknown param 'regoin'"),
    ('{"region": null}', "must be a string, number or boolean"),
    ('{"region": [1]}', "must be a string, number or boolean"),
    ('{"region": {"a": 1}}', "must be a string, number or boolean"),
    ('{"region": "a", "region": "b"}', "not valid JSON"),
    ('{"' + "k" * 100000 + '": 1}', "unknown param"),
])
def test_trigger_bad_conf(ops, conf, msg):
    r = ops("dags", "trigger", "etl", "--conf", conf)
    assert r.rc == 2, r
    assert msg in r.err, r
    if "regoin" in conf:
        assert "did you mean 'region'" in r.err, r
    assert not db_created(ops) or runs(ops) == []


@pytest.mark.parametrize("date", ["2026-13-01", "yesterday", "2026-02-30", ""])
def test_trigger_bad_date(ops, date):
    r = ops("dags", "trigger", "etl", "--date", date)
    assert r.rc == 2, r


def test_trigger_unknown_dag(ops):
    r = ops("dags", "trigger", "etx")
    assert r.rc == 2 and "did you mean 'etl'" in r.err, r
    ops.write("broken.yaml", BROKEN)
    r = ops("dags", "trigger", "broken")
    assert r.rc == 2 and "no DAG 'broken'" in r.err, r
    r = ops("dags", "trigger", "x" * 100000)
    assert r.rc == 2, r
    r = ops("dags", "trigger", "etl", "--bogus")
    assert r.rc == 2, r


def test_trigger_paused_dag_says_so(ops):
    assert ops("dags", "pause", "etl").rc == 0
    r = ops("dags", "trigger", "etl")
    assert r.rc == 0 and "paused" in r.err, r


# ---- backfill ----

def test_backfill(ops):
    r = ops("dags", "backfill", "etl", "--from", "2026-01-01", "--to", "2026-01-05", "--json")
    assert r.rc == 0, r
    o = r.json
    assert o["queued"] == 5 and o["skipped"] == 0, o
    assert o["run_ids"] == ["backfill__2026-01-0%dT00:00:00.000Z" % d for d in range(1, 6)]
    assert NO_SCHED in r.err, r
    rows = query(ops, "SELECT state, type, logical_at, owner FROM runs ORDER BY logical_at")
    assert [x[:2] for x in rows] == [("queued", "backfill")] * 5
    assert all(x[3] is None for x in rows)
    # Overlapping range: the five dates are skipped, two are new.
    r = ops("dags", "backfill", "etl", "--from", "2026-01-03", "--to", "2026-01-07")
    assert r.rc == 0, r
    assert "queued 2" in r.out and "skipped 3" in r.out, r
    assert len(runs(ops, "etl")) == 7


def test_backfill_conf_and_times(ops):
    r = ops("dags", "backfill", "etl", "--from", "2026-01-01T00:00:01Z",
            "--to", "2026-01-02T12:00", "--conf", '{"region": "jp"}', "--json")
    assert r.rc == 0, r
    assert r.json["run_ids"] == ["backfill__2026-01-02T00:00:00.000Z"], r
    assert query(ops, "SELECT conf FROM runs") == [('{"region":"jp"}',)]


def test_backfill_nothing_in_range(ops):
    r = ops("dags", "backfill", "etl", "--from", "2026-01-01T01:00", "--to",
            "2026-01-01T02:00", "--json")
    assert r.rc == 0, r
    assert r.json["queued"] == 0 and r.json["run_ids"] == []


def test_backfill_keeps_to_the_dags_start_and_end(ops):
    # wholly before the start (etl starts 2026-01-01): refused, naming the start; nothing queued
    for extra in ([], ["--json"]):
        r = ops("dags", "backfill", "etl", "--from", "2025-12-01", "--to", "2025-12-31", *extra)
        assert r.rc == 2, r
        assert "before DAG 'etl' starts" in r.err and "2026-01-01" in r.err, r
    assert not db_created(ops) or runs(ops) == []
    # partly before: the runs from the start on, and it says so
    r = ops("dags", "backfill", "etl", "--from", "2025-12-30", "--to", "2026-01-02", "--json")
    assert r.rc == 0, r
    assert r.json["run_ids"] == ["backfill__2026-01-01T00:00:00.000Z",
                                 "backfill__2026-01-02T00:00:00.000Z"], r
    assert "runs from its start (2026-01-01T00:00:00.000Z) on" in r.err, r
    # the same for the end
    ops.write("ends.yaml", """
        dag: ends
        schedule: "@daily"
        start: 2026-01-01
        end: 2026-01-03
        tasks:
          a: {run: "true"}
        """)
    r = ops("dags", "backfill", "ends", "--from", "2026-02-01", "--to", "2026-02-02")
    assert r.rc == 2 and "after DAG 'ends' ends" in r.err and "2026-01-03" in r.err, r
    r = ops("dags", "backfill", "ends", "--from", "2026-01-02", "--to", "2026-01-09")
    assert r.rc == 0 and "queued 2 " in r.out and "up to its end" in r.err, r
    assert [x["logical_date"][:10] for x in runs(ops, "ends")] == ["2026-01-03", "2026-01-02"]


def test_backfill_limit(ops):
    ops.write("often.yaml", """
        dag: often
        schedule: "every 1m"
        start: 2026-01-01
        tasks:
          a: {run: "true"}
        """)
    r = ops("dags", "backfill", "often", "--from", "2026-01-01", "--to", "2026-02-01")
    assert r.rc == 2 and "narrower" in r.err, r
    assert not db_created(ops) or runs(ops) == []


@pytest.mark.parametrize("args,msg", [
    (["--from", "2026-01-05", "--to", "2026-01-01"], "after"),
    (["--from", "2026-01-05"], "required"),
    (["--to", "2026-01-05"], "required"),
    (["--from", "bad", "--to", "2026-01-01"], ""),
    (["--from", "2026-01-01", "--to", "2026-01-02", "--conf", "[]"], "JSON object"),
    (["--from", "2026-01-01", "--to", "2026-01-02", "--conf", '{"nope": 1}'], "unknown param"),
])
def test_backfill_bad_input(ops, args, msg):
    r = ops("dags", "backfill", "etl", *args)
    assert r.rc == 2, r
    assert msg in r.err, r


def test_backfill_needs_a_schedule(ops):
    r = ops("dags", "backfill", "manual_only", "--from", "2026-01-01", "--to", "2026-01-02",
            "--conf", '{"who": "x"}')
    assert r.rc == 2 and "no schedule" in r.err, r
    r = ops("dags", "backfill", "etk", "--from", "2026-01-01", "--to", "2026-01-02")
    assert r.rc == 2 and "did you mean 'etl'" in r.err, r


# ---- runs cancel ----

def test_cancel_without_scheduler(ops):
    run_id = trigger(ops)["run_id"]
    # Pretend a scheduler had started it and died: instances in every state.
    for task, state in [("extract", "success"), ("transform", "running"),
                        ("report", "queued"), ("load", "none")]:
        query(ops, "INSERT INTO task_instances (run_id, task_id, task, map_index, state, "
              "try_number, max_tries, exit_code, priority, seq) VALUES "
              "(?, ?, ?, -1, ?, 1, 3, -1, 1, 1)", run_id, task, task, state)
    query(ops, "INSERT INTO tries (run_id, task_id, try_number, state, exit_code, "
          "term_signal, timed_out, started_at, pid) VALUES "
          "(?, 'transform', 1, 'running', -1, 0, ?, 5, 123)", run_id, False)
    r = ops("runs", "cancel", run_id)
    assert r.rc == 0, r
    assert "cancelled " + run_id in r.out, r
    o = show(ops, run_id)
    assert o["state"] == "cancelled" and o["ended_at"], o
    st = {k: v["state"] for k, v in o["tasks"].items()}
    assert st == {"extract": "success", "transform": "failed", "report": "none",
                  "load": "none"}, st
    assert query(ops, "SELECT message FROM task_instances WHERE task_id = 'transform'") == \
        [("cancelled",)]
    assert query(ops, "SELECT state FROM tries WHERE task_id = 'transform'") == [("failed",)]
    assert query(ops, "SELECT COUNT(*) FROM run_requests") == [(0,)]
    r = ops("runs", "cancel", run_id, "--json")
    assert r.rc == 1 and "already ended (cancelled)" in r.err, r


def test_cancel_unknown_run(ops):
    run_id = trigger(ops)["run_id"]
    r = ops("runs", "cancel", run_id[:-2])
    assert r.rc == 2 and "no run" in r.err and "did you mean" in r.err, r
    r = ops("runs", "cancel", "x" * 100000)
    assert r.rc == 2 and "no run" in r.err, r
    r = ops("runs", "cancel", "'; DROP TABLE runs; --")
    assert r.rc == 2, r
    assert len(runs(ops)) == 1


def test_cancel_without_database(ops):
    r = ops("runs", "cancel", "manual__x")
    assert r.rc == 2 and "no database" in r.err, r


def test_cancel_foreground_run(ops):
    run_id = trigger(ops)["run_id"]
    query(ops, "UPDATE runs SET owner = 'cli', state = 'running' WHERE run_id = ?", run_id)
    r = ops("runs", "cancel", run_id)
    assert r.rc == 1, r
    assert "baram run" in r.err and "Ctrl-C" in r.err, r
    assert query(ops, "SELECT state FROM runs") == [("running",)]


def test_cancel_ended_run(ops):
    r = ops("run", ops.dags / "etl.yaml", "--json")
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    r = ops("runs", "cancel", run_id)
    assert r.rc == 1 and "already ended (success)" in r.err, r


class HeldLock:
    """Holds HOME/scheduler.lock as the daemon would."""

    def __init__(self, home):
        home.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(str(home / "scheduler.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                          0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self):
        os.close(self.fd)


def test_cancel_with_scheduler_confirmed(ops):
    run_id = trigger(ops)["run_id"]
    lock = HeldLock(ops.home)
    seen = []

    def scheduler():
        # Wait for the request, then cancel the run as the daemon would.
        end = time.monotonic() + 20
        while time.monotonic() < end:
            rows = query(ops, "SELECT run_id, kind FROM run_requests")
            if rows:
                seen.extend(rows)
                query(ops, "DELETE FROM run_requests")
                query(ops, "UPDATE runs SET state = 'cancelled', ended_at = 1 WHERE run_id = ?",
                      run_id)
                return
            time.sleep(0.02)

    t = threading.Thread(target=scheduler)
    t.start()
    try:
        r = ops("runs", "cancel", run_id, "--json")
    finally:
        t.join()
        lock.close()
    assert r.rc == 0, r
    assert r.json == {"run_id": run_id, "state": "cancelled", "requested": False}, r
    assert seen == [(run_id, "cancel")]
    assert r.elapsed < 10, r


def test_cancel_with_scheduler_unconfirmed(ops):
    run_id = trigger(ops)["run_id"]
    lock = HeldLock(ops.home)
    try:
        r = ops("runs", "cancel", run_id, "--wait", "1")
    finally:
        lock.close()
    assert r.rc == 0, r
    assert "requested cancel of " + run_id in r.out, r
    assert 0.9 < r.elapsed < 8, r
    assert query(ops, "SELECT run_id, kind FROM run_requests") == [(run_id, "cancel")]
    assert query(ops, "SELECT state FROM runs") == [("queued",)]   # left to the scheduler


@pytest.mark.parametrize("w", ["-1", "abc", "1e9", "99999"])
def test_cancel_bad_wait(ops, w):
    r = ops("runs", "cancel", "x", "--wait", w)
    assert r.rc == 2, r


# ---- tasks clear ----

def ran(b, name, text, *args):
    p = b.write(name, text)
    r = b("run", p, "--json", *args)
    assert r.rc in (0, 1), r
    return r.json["run_id"]


def test_clear_downstream(ops):
    run_id = ran(ops, "etl.yaml", ETL)
    r = ops("tasks", "clear", run_id, "transform", "--downstream", "--json")
    assert r.rc == 0, r
    o = r.json
    assert o["cleared"] == ["transform", "load"] and o["task_instances"] == 2, o
    assert o["state"] == "queued"
    assert NO_SCHED in r.err, r
    rows = dict((t, (s, tn, mt, ec, out, st, en)) for t, s, tn, mt, ec, out, st, en in query(
        ops, "SELECT task_id, state, try_number, max_tries, exit_code, output, started_at, "
             "ended_at FROM task_instances WHERE run_id = ?", run_id))
    assert rows["transform"] == ("none", 1, 1 + 2 + 1, -1, None, None, None), rows
    assert rows["load"] == ("none", 1, 2, -1, None, None, None), rows
    assert rows["extract"][0] == "success" and rows["report"][0] == "success"
    assert query(ops, "SELECT state, ended_at, owner FROM runs WHERE run_id = ?", run_id) == \
        [("queued", None, None)]
    # Queued again, and no scheduler runs it: clearing more applies at once too.
    r = ops("tasks", "clear", run_id, "extract", "--json")
    assert r.rc == 0 and r.json["cleared"] == ["extract"] and "requested" not in r.json, r
    assert query(ops, "SELECT state FROM task_instances WHERE run_id = ? AND task_id = "
                 "'extract'", run_id) == [("none",)]


def test_clear_one_task(ops):
    run_id = ran(ops, "etl.yaml", ETL)
    r = ops("tasks", "clear", run_id, "extract")
    assert r.rc == 0, r
    assert "cleared extract" in r.out, r
    st = dict(query(ops, "SELECT task_id, state FROM task_instances"))
    assert st == {"extract": "none", "transform": "success", "load": "success",
                  "report": "success"}, st


def test_clear_mapped_deletes_instances(ops):
    run_id = ran(ops, "mapped.yaml", MAPPED)
    before = [t for (t,) in query(ops, "SELECT task_id FROM task_instances")]
    assert "shards[2]" in before, before
    r = ops("tasks", "clear", run_id, "shards", "--downstream")
    assert r.rc == 0, r
    after = sorted(t for (t,) in query(ops, "SELECT task_id FROM task_instances"))
    assert after == ["after", "make"], after
    assert query(ops, "SELECT COUNT(*) FROM tries WHERE task_id LIKE 'shards%'") == [(0,)]
    assert query(ops, "SELECT state FROM task_instances WHERE task_id = 'after'") == \
        [("none",)]


def test_clear_failed_run(ops):
    run_id = ran(ops, "fail.yaml", """
        dag: fail
        tasks:
          a: {run: "exit 3"}
          b: {run: "true", needs: [a]}
        """)
    assert show(ops, run_id)["state"] == "failed"
    r = ops("tasks", "clear", run_id, "a", "--downstream")
    assert r.rc == 0, r
    st = dict(query(ops, "SELECT task_id, state FROM task_instances"))
    assert st == {"a": "none", "b": "none"}, st


def test_clear_bad_input(ops):
    run_id = ran(ops, "etl.yaml", ETL)
    r = ops("tasks", "clear", run_id, "transfrom")
    assert r.rc == 2 and "did you mean 'transform'" in r.err, r
    r = ops("tasks", "clear", run_id + "x", "transform")
    assert r.rc == 2 and "no run" in r.err, r
    r = ops("tasks", "clear", run_id)
    assert r.rc == 2, r
    r = ops("tasks", "clear", run_id, "x" * 100000)
    assert r.rc == 2, r
    assert show(ops, run_id)["state"] == "success"   # nothing changed


def test_clear_live_run_without_scheduler_or_in_the_foreground(ops):
    """No scheduler runs the queued run: the clear applies at once (nothing to reset yet). A
    run in a foreground `baram run` is refused: that process owns it."""
    run_id = trigger(ops)["run_id"]
    r = ops("tasks", "clear", run_id, "extract", "--json")
    assert r.rc == 0 and r.json["task_instances"] == 0 and "requested" not in r.json, r
    assert show(ops, run_id)["state"] == "queued"
    query(ops, "UPDATE runs SET state = 'running', owner = 'cli' WHERE run_id = ?", run_id)
    r = ops("tasks", "clear", run_id, "extract")
    assert r.rc == 1 and "foreground under 'baram run'" in r.err, r


def test_clear_cancelled_run(ops):
    run_id = trigger(ops)["run_id"]
    assert ops("runs", "cancel", run_id).rc == 0
    r = ops("tasks", "clear", run_id, "extract", "--downstream")
    assert r.rc == 0, r
    assert show(ops, run_id)["state"] == "queued"


# ---- pools ----

def test_pools_default_config_store(ops):
    ops.home.mkdir(parents=True, exist_ok=True)
    (ops.home / "baram.yaml").write_text("pools: {gpu: 2, api: 8}\n")
    r = ops("pools", "list", "--json")
    assert r.rc == 0, r
    pools = {p["name"]: p for p in r.json["pools"]}
    assert pools["default"] == {"name": "default", "slots": 128, "running": 0, "queued": 0,
                                "scheduled": 0, "open": 128, "source": "default"}
    assert pools["gpu"]["slots"] == 2 and pools["gpu"]["source"] == "config"
    r = ops("pools", "set", "gpu", "5")
    assert r.rc == 0 and "gpu" in r.out, r
    r = ops("pools", "set", "default", "0")
    assert r.rc == 0, r
    r = ops("pools", "set", "new.pool-1_x", "100000")
    assert r.rc == 0, r
    pools = {p["name"]: p for p in ops("pools", "list", "--json").json["pools"]}
    assert pools["gpu"] == {"name": "gpu", "slots": 5, "running": 0, "queued": 0,
                            "scheduled": 0, "open": 5, "source": "store"}
    assert pools["default"]["slots"] == 0 and pools["default"]["source"] == "store"
    assert pools["api"]["source"] == "config"
    assert pools["new.pool-1_x"]["slots"] == 100000
    h = ops("pools", "list")
    assert h.rc == 0 and "gpu" in h.out and "store" in h.out, h
    assert query(ops, "SELECT name, slots FROM pools ORDER BY name") == \
        [("default", 0), ("gpu", 5), ("new.pool-1_x", 100000)]


def test_pools_running(ops):
    run_id = trigger(ops)["run_id"]
    for i, (pool, state) in enumerate([("gpu", "running"), ("gpu", "queued"),
                                       ("gpu", "success"), ("gpu", "scheduled"),
                                       ("default", "running")]):
        query(ops, "INSERT INTO task_instances (run_id, task_id, task, map_index, state, "
              "try_number, max_tries, exit_code, priority, pool, seq) VALUES "
              "(?, ?, ?, -1, ?, 1, 1, -1, 1, ?, ?)", run_id, "t%d" % i, "t%d" % i, state, pool, i)
    assert ops("pools", "set", "gpu", "3").rc == 0
    pools = {p["name"]: p for p in ops("pools", "list", "--json").json["pools"]}
    gpu = pools["gpu"]
    assert (gpu["running"], gpu["queued"], gpu["scheduled"], gpu["open"]) == (1, 1, 1, 1), gpu
    assert pools["default"]["running"] == 1 and pools["default"]["queued"] == 0, pools


@pytest.mark.parametrize("args", [
    ["gpu", "-1"], ["gpu", "abc"], ["gpu", "1e9"], ["gpu", "100001"], ["gpu", ""],
    ["gpu", "1.5"], ["a/b", "1"], ["a b", "1"], ["", "1"], ["x" * 201, "1"], ["x" * 100000, "1"],
    ["gpu"], [], ["gpu", "1", "2"], ["p\u00e9", "1"], ["../x", "1"]])
def test_pools_set_bad(ops, args):
    r = ops("pools", "set", *args)
    assert r.rc == 2, r
    if len(args) == 2 and args[0] == "gpu":
        assert "bad SLOTS" in r.err, r
    elif len(args) == 2:
        assert "bad pool name" in r.err, r
    assert not db_created(ops) or query(ops, "SELECT COUNT(*) FROM pools") == \
        [(0,)]


def _median_trigger_s(b, dag, reps=5):
    times = []
    for _ in range(reps):
        r = b("dags", "trigger", dag)
        assert r.rc == 0, r
        times.append(r.elapsed)
    return sorted(times)[reps // 2]


def test_trigger_parses_one_file_however_big_the_folder(tmp_path):
    """A trigger finds the DAG through the file the scheduler recorded for it and parses that
    file alone: with 500 DAG files its latency is that of a folder of one (it parsed all 500
    on every trigger, CLI and API alike)."""
    from api_util import make_home, record_dags
    tasks = "".join("  t%02d: {run: \"true\"%s}\n" % (i, ", needs: [t%02d]" % (i - 1) if i else "")
                    for i in range(40))

    def folder(root, n):
        b = make_home(root)
        (b.home / "baram.yaml").write_text("dags: %s\n" % b.dags)
        for i in range(n):
            (b.dags / ("d%03d.yaml" % i)).write_text("dag: d%03d\ntasks:\n%s" % (i, tasks))
        record_dags(b, root / "record.log")
        return b

    one = folder(tmp_path / "one", 1)
    many = folder(tmp_path / "many", 500)
    t1 = _median_trigger_s(one, "d000")
    t500 = _median_trigger_s(many, "d250")
    assert t500 < 3 * t1, (t1, t500)
    # A DAG the scheduler never recorded (a file added since) is still found, by a scan.
    (many.dags / "zz_new.yaml").write_text("dag: zz_new\ntasks:\n  a: {run: \"true\"}\n")
    r = many("dags", "trigger", "zz_new")
    assert r.rc == 0, r
    # A recorded file that now holds another DAG: the scan finds where the DAG went.
    (many.dags / "d001.yaml").write_text("dag: renamed\ntasks:\n  a: {run: \"true\"}\n")
    (many.dags / "d999.yaml").write_text("dag: d001\ntasks:\n  a: {run: \"true\"}\n")
    r = many("dags", "trigger", "d001", "--json")
    assert r.rc == 0, r
    (path,), = query(many, "SELECT dag_path FROM runs WHERE run_id = ?", r.json["run_id"])
    assert path.endswith("/d999.yaml"), path
