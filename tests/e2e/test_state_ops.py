"""State operations and the audit log (SPEC section 13): `baram tasks mark`,
`runs mark`, `dags clear --from --to`, their API routes, POST .../backfill,
and the audit log (`baram audit list`, GET /api/v1/audit) that records every
state-changing command and route.

One `baram standalone` (scheduler + API) per module on a home with a viewer,
an operator and the admin; each test makes its own runs. A running task is
a `sleep` whose pid the test reads from a file: marking it must leave no
process behind. Every refused or invalid request is checked to change
nothing and to write no audit row.
"""

import getpass
import json
import os

import pytest

from api_util import ApiServer, add_user, check_problem, free_port, make_home, token
from conftest import ON_PG, db_query, scratch_of  # noqa: F401
from daemon_util import Daemon, daemons, poll, run_show, trigger, wait_run  # noqa: F401

SLOW = """
dag: slow
tasks:
  a:
    run: echo $$ > "{pids}/$BARAM_RUN_ID.a"; exec sleep 60
  b:
    needs: [a]
    run: "true"
"""

DAILY = """
dag: daily
schedule: "@daily"
start: 2026-01-01
catchup: false
tasks:
  x:
    run: "true"
  y:
    needs: [x]
    run: test ! -e "{flag}"
"""

CLI_USER = "cli:" + getpass.getuser()


class Env:
    def __init__(self, b, daemon, server, tokens, pids, flag):
        self.b, self.daemon, self.server, self.tokens = b, daemon, server, tokens
        self.pids, self.flag = pids, flag

    def req(self, method, path, role="operator", body=None, **kw):
        return self.server.request(method, path, token=self.tokens[role], body=body, **kw)

    def cli(self, *args, rc=0):
        r = self.b(*args)
        assert r.rc == rc, r
        return r

    def audit(self, **q):
        r = self.req("GET", "/api/v1/audit?" + "&".join("%s=%s" % kv for kv in q.items()),
                     role="admin")
        assert r.status == 200, r
        return r.json["entries"]

    def naudit(self):
        return db_query(self.b, "SELECT COUNT(*) FROM audit")[0][0]

    def ti(self, run_id, task):
        return run_show(self.b, run_id)["tasks"].get(task)

    def running_pid(self, run_id):
        p = self.pids / (run_id + ".a")
        assert poll(lambda: p.exists() and p.read_text().strip(), 15), "task a never started"
        return int(p.read_text())


def gone(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("stops")
    b = make_home(root)
    pids = root / "pids"
    pids.mkdir()
    flag = root / "fail_y"
    b.env["BARAM_DAGS"] = str(b.dags)
    b.write("slow.yaml", SLOW.replace("{pids}", str(pids)))
    b.write("daily.yaml", DAILY.replace("{flag}", str(flag)))
    add_user(b, "vera", "viewer")
    add_user(b, "otto", "operator")
    tokens = {"none": None, "viewer": token(b, "vera"), "operator": token(b, "otto"),
              "admin": token(b, "admin")}
    port = free_port()
    d = Daemon(b, ["--listen", "127.0.0.1:%d" % port, "--grace", "1s"], root / "daemon.log")
    d.start()
    server = ApiServer(b, root / "unused.log")
    server.port = port
    try:
        yield Env(b, d, server, tokens, pids, flag)
    finally:
        if d.alive():
            assert d.stop() == 0, d.log()


def test_mark_running_task_cli(env):
    run_id = trigger(env.b, "slow")
    pid = env.running_pid(run_id)
    r = env.cli("tasks", "mark", run_id, "a", "success", "--json")
    assert r.json["requested"] is True and r.json["marked"] == ["a"], r
    o = wait_run(env.b, run_id, daemon=env.daemon)
    assert o["state"] == "success", o
    assert poll(lambda: gone(pid), 10), "the marked try's process is still there"
    a, b = env.ti(run_id, "a"), env.ti(run_id, "b")
    assert a["state"] == "success" and a["message"] == "marked success", a
    assert b["state"] == "success", b  # its downstream ran after the mark
    rows = [e for e in env.audit() if e["run_id"] == run_id and e["action"] == "mark"]
    assert len(rows) == 1, rows
    assert rows[0]["user"] == CLI_USER and rows[0]["source"] == "cli", rows
    assert rows[0]["task_id"] == "a" and rows[0]["details"]["state"] == "success", rows


def test_mark_task_api_downstream_failed(env):
    r = env.req("POST", "/api/v1/dags/slow/runs", body={})
    assert r.status == 201, r
    run_id = r.json["run_id"]
    pid = env.running_pid(run_id)
    r = env.req("POST", "/api/v1/dags/slow/runs/%s/tasks/a/mark" % run_id,
                body={"state": "failed", "downstream": True})
    assert r.status == 202, r
    assert r.json["marked"] == ["a", "b"], r
    o = wait_run(env.b, run_id, daemon=env.daemon)
    assert o["state"] == "failed", o
    assert poll(lambda: gone(pid), 10)
    assert env.ti(run_id, "a")["state"] == "failed"
    b = env.ti(run_id, "b")
    assert b["state"] == "failed" and b["message"] == "marked failed", b
    rows = env.audit(user="otto")
    assert rows[0]["action"] == "mark" and rows[0]["source"] == "api", rows
    assert rows[0]["run_id"] == run_id and rows[0]["dag_id"] == "slow", rows
    assert rows[0]["details"]["tasks"] == ["a", "b"], rows


def test_mark_run_failed_api_and_ended_run_cli(env):
    run_id = trigger(env.b, "slow")
    pid = env.running_pid(run_id)
    r = env.req("POST", "/api/v1/dags/slow/runs/%s/mark" % run_id, body={"state": "failed"})
    assert r.status == 202, r
    o = wait_run(env.b, run_id, daemon=env.daemon)
    assert o["state"] == "failed", o
    assert poll(lambda: gone(pid), 10)
    assert env.ti(run_id, "a")["state"] == "failed"
    assert env.ti(run_id, "b")["state"] == "skipped"  # not started: skipped, as Airflow does
    # An ended run: only its state changes.
    r = env.cli("runs", "mark", run_id, "success", "--json")
    assert r.json["requested"] is False and r.json["state"] == "success", r
    assert run_show(env.b, run_id)["state"] == "success"
    assert env.ti(run_id, "b")["state"] == "skipped"
    # ... and an ended run's task: the run keeps its state.
    r = env.cli("tasks", "mark", run_id, "b", "failed", "--json")
    assert r.json["task_instances"] == 1 and r.json["run_state"] == "success", r
    assert env.ti(run_id, "b")["state"] == "failed"
    acts = [(e["action"], e["source"]) for e in env.audit(dag="slow")
            if e["run_id"] == run_id]
    assert acts[:3] == [("mark", "cli"), ("mark", "cli"), ("mark", "api")], acts


def test_backfill_api_then_clear_range(env):
    env.flag.write_text("fail")  # y fails in these runs
    r = env.req("POST", "/api/v1/dags/daily/backfill",
                body={"from": "2026-01-01", "to": "2026-01-03"})
    assert r.status == 201, r
    ids = r.json["run_ids"]
    assert len(ids) == 3 and r.json["queued"] == 3, r
    for i in ids:
        assert wait_run(env.b, i, daemon=env.daemon)["state"] == "failed"
    # A dry run lists and changes nothing (and records nothing).
    n = env.naudit()
    r = env.req("POST", "/api/v1/dags/daily/clear",
                body={"from": "2026-01-01", "to": "2026-01-02", "only_failed": True,
                      "dry_run": True})
    assert r.status == 200, r
    assert [x["run_id"] for x in r.json["runs"]] == ids[:2], r
    assert all(x["tasks"] == ["y"] for x in r.json["runs"]), r
    assert env.naudit() == n
    assert run_show(env.b, ids[0])["state"] == "failed"
    # Only the failed task of the first two runs runs again, and now succeeds.
    env.flag.unlink()
    r = env.req("POST", "/api/v1/dags/daily/clear",
                body={"from": "2026-01-01", "to": "2026-01-02", "only_failed": True})
    assert r.status == 200 and r.json["task_instances"] == 2, r
    for i in ids[:2]:
        o = wait_run(env.b, i, daemon=env.daemon)
        assert o["state"] == "success", o
        assert env.ti(i, "x")["tries"] == 1 and env.ti(i, "y")["tries"] == 2
    assert run_show(env.b, ids[2])["state"] == "failed"
    # The CLI clears a task over the whole range: every run runs x again.
    r = env.cli("dags", "clear", "daily", "--from", "2026-01-01", "--to", "2026-01-03",
                "--task", "x", "--json")
    assert len(r.json["runs"]) == 3 and r.json["task_instances"] == 3, r
    for i in ids:
        wait_run(env.b, i, daemon=env.daemon)
        assert poll(lambda: env.ti(i, "x")["tries"] == 2, 10)
    rows = env.audit(dag="daily")
    assert [(e["action"], e["source"]) for e in rows[:3]] == [
        ("clear", "cli"), ("clear", "api"), ("backfill", "api")], rows
    assert rows[0]["task_id"] == "x" and rows[2]["details"]["queued"] == 3, rows


ROUTES = [
    ("POST", "/api/v1/dags/slow/runs/RUN/tasks/a/mark", {"state": "success"}),
    ("POST", "/api/v1/dags/slow/runs/RUN/mark", {"state": "failed"}),
    ("POST", "/api/v1/dags/daily/clear", {"from": "2026-01-01", "to": "2026-01-02"}),
    ("POST", "/api/v1/dags/daily/backfill", {"from": "2026-02-01", "to": "2026-02-02"}),
]


def test_roles(env):
    run_id = trigger(env.b, "slow")
    env.running_pid(run_id)
    n = env.naudit()
    nruns = db_query(env.b, "SELECT COUNT(*) FROM runs")[0][0]
    for method, path, body in ROUTES:
        path = path.replace("RUN", run_id)
        check_problem(env.req(method, path, role="viewer", body=body), 403)
        check_problem(env.req(method, path, role="none", body=body), 401)
    check_problem(env.req("GET", "/api/v1/audit", role="operator"), 403)
    check_problem(env.req("GET", "/api/v1/audit", role="viewer"), 403)
    assert env.naudit() == n
    assert db_query(env.b, "SELECT COUNT(*) FROM runs")[0][0] == nruns
    assert run_show(env.b, run_id)["state"] == "running"
    env.cli("runs", "cancel", run_id)
    wait_run(env.b, run_id, daemon=env.daemon)


BAD = [
    ("/api/v1/dags/slow/runs/RUN/tasks/a/mark", {"state": "done"}, 400),
    ("/api/v1/dags/slow/runs/RUN/tasks/a/mark", {"state": 1}, 400),
    ("/api/v1/dags/slow/runs/RUN/tasks/a/mark", {}, 400),
    ("/api/v1/dags/slow/runs/RUN/tasks/a/mark", {"state": "success", "downstream": "yes"}, 400),
    ("/api/v1/dags/slow/runs/RUN/tasks/a/mark", {"state": "success", "extra": 1}, 400),
    ("/api/v1/dags/slow/runs/RUN/tasks/nope/mark", {"state": "success"}, 404),
    ("/api/v1/dags/slow/runs/nope/tasks/a/mark", {"state": "success"}, 404),
    ("/api/v1/dags/daily/runs/RUN/mark", {"state": "success"}, 404),  # not its DAG
    ("/api/v1/dags/slow/runs/RUN/mark", {"state": ["success"]}, 400),
    ("/api/v1/dags/daily/clear", {"from": "2026-13-01", "to": "2026-01-02"}, 400),
    ("/api/v1/dags/daily/clear", {"from": "2026-01-03", "to": "2026-01-02"}, 400),
    ("/api/v1/dags/daily/clear", {"from": "2026-01-01"}, 400),
    ("/api/v1/dags/daily/clear", {"from": "2026-01-01", "to": "2026-01-02", "task": 5}, 400),
    ("/api/v1/dags/daily/clear", {"from": "2026-01-01", "to": "2026-01-02", "task": "nope"}, 404),
    ("/api/v1/dags/nope/clear", {"from": "2026-01-01", "to": "2026-01-02"}, 404),
    ("/api/v1/dags/daily/backfill", {"from": "2026-01-01", "to": "2029-01-02"}, 400),  # > 1000
    ("/api/v1/dags/daily/backfill", {"from": "2026-01-01", "to": "2026-01-02", "conf": []}, 400),
    ("/api/v1/dags/daily/backfill", {"from": "x" * 100000, "to": "2026-01-02"}, 400),
    ("/api/v1/dags/daily/backfill", {"from": 20260101, "to": "2026-01-02"}, 400),
    ("/api/v1/dags/slow/backfill", {"from": "2026-01-01", "to": "2026-01-02"}, 400),  # manual
]


def test_hostile_input_changes_nothing(env):
    run_id = trigger(env.b, "slow")
    env.running_pid(run_id)
    n = env.naudit()
    nruns = db_query(env.b, "SELECT COUNT(*) FROM runs")[0][0]
    for path, body, status in BAD:
        r = env.req("POST", path.replace("RUN", run_id), body=body)
        check_problem(r, status)
    for raw in (b"\xff\xfe{", b'{"state": "succ\xffess"}', b"[1]", b"nul"):
        r = env.req("POST", "/api/v1/dags/slow/runs/%s/mark" % run_id, body=raw,
                    headers={"Content-Type": "application/json"})
        check_problem(r, 400)
    r = env.req("GET", "/api/v1/audit?limit=0", role="admin")
    check_problem(r, 400)
    r = env.req("GET", "/api/v1/audit?before=x", role="admin")
    check_problem(r, 400)
    assert env.naudit() == n
    assert db_query(env.b, "SELECT COUNT(*) FROM runs")[0][0] == nruns
    # The CLI refuses bad input with exit 2, recording nothing either.
    env.cli("tasks", "mark", run_id, "a", "done", rc=2)
    env.cli("tasks", "mark", run_id, "nope", "success", rc=2)
    env.cli("runs", "mark", run_id, "maybe", rc=2)
    env.cli("runs", "mark", "nope", "success", rc=2)
    env.cli("dags", "clear", "daily", "--from", "2026-01-03", "--to", "2026-01-01", rc=2)
    env.cli("dags", "clear", "daily", "--from", "2026-01-01", rc=2)
    env.cli("dags", "clear", "nope", "--from", "2026-01-01", "--to", "2026-01-02", rc=2)
    env.cli("dags", "clear", "daily", "--from", "2026-01-01", "--to", "2026-01-02",
            "--task", "nope", rc=2)
    env.cli("audit", "list", "--limit", "0", rc=2)
    assert env.naudit() == n
    assert run_show(env.b, run_id)["state"] == "running"
    env.cli("runs", "cancel", run_id)
    wait_run(env.b, run_id, daemon=env.daemon)


def test_audit_of_existing_commands(env):
    env.cli("dags", "pause", "daily")
    env.cli("dags", "unpause", "daily")
    assert env.req("PATCH", "/api/v1/dags/daily", body={"paused": True}).status == 200
    assert env.req("PATCH", "/api/v1/dags/daily", body={"paused": False}).status == 200
    env.cli("pools", "set", "etl", "3")
    assert env.req("PUT", "/api/v1/pools/etl", role="admin", body={"slots": 4}).status == 200
    r = env.req("POST", "/api/v1/users", role="admin",
                body={"name": "tmpuser", "role": "viewer", "password": "secret-password-1"})
    assert r.status == 201, r
    assert env.req("DELETE", "/api/v1/users/tmpuser", role="admin").status == 204
    add_user(env.b, "tmp2", "viewer")
    env.cli("users", "delete", "tmp2")
    rows = env.audit(limit=10)
    got = [(e["action"], e["source"], e["user"]) for e in rows[:10]]
    assert got == [
        ("user delete", "cli", CLI_USER), ("user add", "cli", CLI_USER),
        ("user delete", "api", "admin"), ("user add", "api", "admin"),
        ("pool set", "api", "admin"), ("pool set", "cli", CLI_USER),
        ("unpause", "api", "otto"), ("pause", "api", "otto"),
        ("unpause", "cli", CLI_USER), ("pause", "cli", CLI_USER)], got
    assert "secret-password-1" not in json.dumps(rows)
    assert rows[3]["details"] == {"name": "tmpuser", "role": "viewer"}, rows
    # The CLI's list: filters, a limit, JSON and text; `before` pages the API's.
    r = env.cli("audit", "list", "--dag", "daily", "--user", CLI_USER, "--limit", "2", "--json")
    assert [e["action"] for e in r.json["entries"]] == ["unpause", "pause"], r
    r = env.cli("audit", "list", "--limit", "1")
    assert "user delete" in r.out and CLI_USER in r.out, r
    page = env.audit(limit=2, before=rows[1]["id"])
    assert [e["id"] for e in page] == [rows[2]["id"], rows[3]["id"]], page
    env.cli("audit", "--help")



def test_audit_of_variables_and_db_clean(env):
    """`variables set|delete` (CLI and API) and `db clean` are audited: a variable's row holds
    its key and whether it is a secret, never its value; a clean holds its counts, a dry run
    writes no row."""
    value = "audit-Val-9f1"
    r = env.b("variables", "set", "aud.sec", "--secret", input=value)
    assert r.rc == 0, r
    env.cli("variables", "set", "aud.plain", value)
    r = env.req("PUT", "/api/v1/variables/aud.api", role="admin",
                body={"value": value, "secret": True})
    assert r.status == 200, r
    assert env.req("DELETE", "/api/v1/variables/aud.api", role="admin").status == 204
    env.cli("variables", "delete", "aud.plain")
    n = env.naudit()
    env.cli("db", "clean", "--older-than", "3650d", "--dry-run")
    assert env.naudit() == n
    env.cli("db", "clean", "--older-than", "3650d")
    rows = env.audit(limit=6)
    got = [(e["action"], e["source"], e["user"], e["details"]) for e in rows[:6]]
    clean = dict(older_than_ms=3650 * 86400000, logs_only=False, runs=0, task_instances=0,
                 log_runs=0, log_files=0, bytes=0)
    assert got == [
        ("db clean", "cli", CLI_USER, clean),
        ("variable delete", "cli", CLI_USER, {"key": "aud.plain", "secret": False}),
        ("variable delete", "api", "admin", {"key": "aud.api", "secret": True}),
        ("variable set", "api", "admin", {"key": "aud.api", "secret": True}),
        ("variable set", "cli", CLI_USER, {"key": "aud.plain", "secret": False}),
        ("variable set", "cli", CLI_USER, {"key": "aud.sec", "secret": True})], got
    assert value not in json.dumps(rows)
    assert value not in json.dumps(db_query(env.b, "SELECT details FROM audit"))


# ---- several schedulers on one PostgreSQL database (SPEC section 12) ----

@pytest.fixture
def ha(tmp_path, pg_url, daemons):
    from test_ha import Ha
    h = Ha(tmp_path, pg_url, daemons)
    r = h.b()("init")
    assert r.rc == 0, r
    h.w = h.worker()
    return h


def test_mark_reaches_the_owning_scheduler(ha):
    """A mark made on another scheduler's home is carried out by the run's owner: its try is
    stopped there, its downstream runs, the run ends once."""
    from test_ha import Scheduler  # noqa: F401 (Ha.start makes them)
    ha.write_dag("long.yaml", """
dag: long
tasks:
  t: {run: 'echo "$BARAM_RUN_ID t start $$" >> LOG; exec sleep 60'}
  u: {run: 'echo "$BARAM_RUN_ID u start" >> LOG', needs: [t]}
""")
    a = ha.start(0)
    (run_id,) = ha.trigger("long")
    assert poll(lambda: any(k[:3] == (run_id, "t", "start") for k in ha.lines()), 10), a.log()
    pid = int([k for k in ha.lines() if k[:3] == (run_id, "t", "start")][0][3])
    b = ha.start(1)
    assert ha.owner(run_id) == ha.sched_id(a)
    r = ha.home(1)("tasks", "mark", run_id, "t", "success")
    assert r.rc == 0, r
    assert poll(lambda: ha.runs()[run_id] == "success", 15), (a.log(), b.log())
    assert (run_id, "u", "start") in ha.lines()
    assert poll(lambda: gone(pid), 10), "the marked try still runs"
    ended = [d for d in (a, b) for ln in d.lines("run ended") if run_id in ln]
    assert ended == [a], (a.log(), b.log())
    for d in (a, b):
        assert d.stop() == 0
    ha.no_deadlock()


ONE = """
    dag: one
    tasks:
      x:
        run: "true"
    """
DATES = ("2020-01-01", "2020-01-02", "2020-01-03")


def one_runs(b, dates):
    """A run of DAG one per date, by `baram run`; the DAG recorded in the store as a scheduler
    records the DAGs it loads."""
    p = b.write("one.yaml", ONE)
    ids = [b.run_json(p, "--date", d)["run_id"] for d in dates]
    db_query(b, "INSERT INTO dags (dag_id, path, hash) SELECT dag_id, dag_path, dag_hash FROM "
                "runs WHERE run_id = ?", ids[-1])
    return ids


def clear_audits(b):
    return db_query(b, "SELECT details FROM audit WHERE action = 'clear' ORDER BY id")


def test_clear_range_reaches_runs_past_the_newest(baram):
    """`dags clear --from --to` clears every run of its range, however many newer runs the DAG
    has (10001 here, written straight into the store), and its audit row says what it did."""
    b = baram
    olds = one_runs(b, DATES[:2])
    db_query(b, "INSERT INTO runs (run_id, dag_id, state, type, logical_at, queued_at, ended_at, "
                "dag_hash) WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                "WHERE i < 10001) SELECT 'filler-' || i, 'one', 'success', 'manual', "
                "1735689600000 + i * 60000, 1735689600000, 1735689600000, "
                "(SELECT dag_hash FROM runs WHERE run_id = ?) FROM n", olds[0])
    r = b("dags", "clear", "one", "--from", DATES[0], "--to", DATES[1], "--json")
    assert r.rc == 0, r
    assert [x["run_id"] for x in r.json["runs"]] == olds and r.json["task_instances"] == 2, r
    for rid in olds:
        assert db_query(b, "SELECT state FROM runs WHERE run_id = ?", rid) == [("queued",)]
    (d,), = clear_audits(b)
    d = json.loads(d) if isinstance(d, str) else d
    assert (d["runs"], d["skipped"], d["task_instances"]) == (2, 0, 2), d


def test_clear_range_failing_midway_clears_nothing(baram):
    """A store error on the last run of the range leaves every run as it was, says so, and
    records no audit row (the runs are reset together, with the audit row, or not at all)."""
    b = baram
    ids = one_runs(b, DATES)
    if ON_PG:
        db_query(b, "CREATE FUNCTION no_requeue() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'no requeue for this run'; END $$")
        db_query(b, "CREATE TRIGGER no_requeue BEFORE UPDATE ON runs FOR EACH ROW WHEN "
                    "(NEW.run_id = '%s' AND NEW.state = 'queued') EXECUTE FUNCTION no_requeue()"
                 % ids[-1])
    else:
        db_query(b, "CREATE TRIGGER no_requeue BEFORE UPDATE ON runs WHEN NEW.run_id = '%s' "
                    "AND NEW.state = 'queued' BEGIN SELECT RAISE(ABORT, "
                    "'no requeue for this run'); END" % ids[-1])
    r = b("dags", "clear", "one", "--from", DATES[0], "--to", DATES[-1])
    assert r.rc == 1 and "nothing was cleared" in r.err, r
    # (PostgreSQL's pipelined writes report the statement after the failing one)
    assert ON_PG or "no requeue for this run" in r.err, r
    for rid in ids:
        assert db_query(b, "SELECT state FROM runs WHERE run_id = ?", rid) == [("success",)]
    assert clear_audits(b) == []
