"""The API's write routes (SPEC section 8) against `baram api` on a real home:
POST /api/v1/dags/{dag}/runs, POST .../runs/{run}/cancel, POST
.../runs/{run}/tasks/{task}/clear, PATCH /api/v1/dags/{dag}, PUT
/api/v1/pools/{name}.

They call the same functions (ops/ops.h) as `baram dags trigger`, `runs
cancel`, `tasks clear`, `dags pause` and `pools set`: the tests read back what
they wrote through the CLI and db_query, and compare a run triggered through
the API with one triggered by the CLI. No scheduler runs, except where a test
holds HOME/scheduler.lock itself (as the daemon does) to see cancel hand its
request over (202). One server per module; each test makes its own runs.

A table gives, for every write route and every caller (no token, viewer,
operator, admin), the status expected: 401, 403 or the route's success, and
checks that a refused request changed nothing.
"""

import fcntl
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from api_util import ApiServer, add_user, alive_cleanup, check_problem, make_home, token
from conftest import BIN, db_query

ETL = """
dag: etl
schedule: "@daily"
start: 2026-01-01
params: {region: eu, limit: 100}
tasks:
  extract:
    run: "true"
  transform:
    needs: [extract]
    run: "true"
  load:
    needs: [transform]
    run: "true"
  report:
    needs: [extract]
    run: "true"
"""

OTHER = """
dag: other
tasks:
  a:
    run: "true"
"""

ROLES = ("none", "viewer", "operator", "admin")


class Env:
    def __init__(self, b, server, tokens):
        self.b = b
        self.server = server
        self.tokens = tokens  # role -> token (None for "none")

    def req(self, method, path, role="operator", body=None, **kw):
        return self.server.request(method, path, token=self.tokens[role], body=body, **kw)

    def cli(self, *args):
        r = self.b(*args)
        assert r.rc == 0, r
        return r

    def query(self, sql, *args):
        return db_query(self.b, sql, *args)

    def execute(self, sql, *args):
        db_query(self.b, sql, *args)

    def queued_run(self, dag="etl"):
        """A run triggered by the CLI: queued, no scheduler."""
        return json.loads(self.cli("dags", "trigger", dag, "--json").out)["run_id"]

    def ended_run(self):
        """A run of etl that ended (success), made by a foreground `baram run`."""
        r = self.b("run", self.b.dags / "etl.yaml", "--json")
        assert r.rc == 0, r
        return json.loads(r.out)["run_id"]

    def run_state(self, run_id):
        rows = self.query("SELECT state FROM runs WHERE run_id = ?", run_id)
        return rows[0][0] if rows else None


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    root = tmp_path_factory.mktemp("apiw")
    b = make_home(root)
    b.env["BARAM_DAGS"] = str(b.dags)
    b.write("etl.yaml", ETL)
    b.write("other.yaml", OTHER)
    add_user(b, "vera", "viewer")
    add_user(b, "otto", "operator")
    tokens = {"none": None, "viewer": token(b, "vera"), "operator": token(b, "otto"),
              "admin": token(b, "admin")}
    server = ApiServer(b, root / "api.log").start()
    try:
        yield Env(b, server, tokens)
    finally:
        rc = server.stop()
        alive_cleanup([server])
        assert rc == 0, server.log()


class HeldLock:
    """Holds HOME/scheduler.lock as a running scheduler would."""

    def __init__(self, home):
        self.fd = os.open(str(home / "scheduler.lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                          0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def close(self):
        os.close(self.fd)


# ---- the role table ----

def _trigger(e):
    before = len(e.query("SELECT run_id FROM runs"))
    return ("POST", "/api/v1/dags/etl/runs", {"conf": {"region": "us"}}, 201,
            lambda: len(e.query("SELECT run_id FROM runs")) == before)


def _cancel(e):
    run_id = e.queued_run()
    return ("POST", "/api/v1/dags/etl/runs/%s/cancel" % run_id, None, 200,
            lambda: e.run_state(run_id) == "queued")


def _clear(e):
    run_id = e.ended_run()
    return ("POST", "/api/v1/dags/etl/runs/%s/tasks/transform/clear" % run_id,
            {"downstream": True}, 200, lambda: e.run_state(run_id) == "success")


def _patch(e):
    e.cli("dags", "unpause", "etl")
    return ("PATCH", "/api/v1/dags/etl", {"paused": True}, 200,
            lambda: e.query("SELECT paused FROM dags WHERE dag_id = 'etl'") == [(0,)])


def _pool(e):
    name = "p%d" % int(time.monotonic() * 1e6)
    return ("PUT", "/api/v1/pools/" + name, {"slots": 3}, 200,
            lambda: e.query("SELECT slots FROM pools WHERE name = ?", name) == [])


ROUTES = {"trigger": (_trigger, "operator"), "cancel": (_cancel, "operator"),
          "clear": (_clear, "operator"), "pause": (_patch, "operator"),
          "pool": (_pool, "admin")}

# (route, caller) -> expected status; success is the route's own 2xx.
TABLE = {(route, role): (401 if role == "none" else
                         "ok" if ROLES.index(role) >= ROLES.index(least) else 403)
         for route, (_, least) in ROUTES.items() for role in ROLES}


@pytest.mark.parametrize("route,role", sorted(TABLE))
def test_role_table(api, route, role):
    method, path, body, ok_status, unchanged = ROUTES[route][0](api)
    want = TABLE[(route, role)]
    r = api.req(method, path, role=role, body=body)
    if want == "ok":
        assert r.status == ok_status, r
        assert not unchanged(), "a %s request by %s changed nothing" % (route, role)
    else:
        check_problem(r, want)
        assert unchanged(), "a refused %s request by %s changed the store" % (route, role)


def test_role_table_is_complete():
    assert len(TABLE) == 5 * 4
    assert TABLE[("pool", "operator")] == 403 and TABLE[("pool", "admin")] == "ok"
    assert TABLE[("trigger", "viewer")] == 403 and TABLE[("clear", "none")] == 401


# ---- trigger ----

def test_trigger_same_as_cli(api):
    r = api.req("POST", "/api/v1/dags/etl/runs",
                body={"conf": {"region": "us", "limit": 5}, "logical_date": "2026-03-04"})
    assert r.status == 201, r
    o = r.json
    assert set(o) == {"dag", "run_id", "state", "logical_date"}, o
    assert o["dag"] == "etl" and o["state"] == "queued", o
    assert o["logical_date"] == "2026-03-04T00:00:00.000Z", o
    assert o["run_id"].startswith("manual__"), o
    assert r.header("location") == "/api/v1/dags/etl/runs/" + o["run_id"], r
    c = api.cli("dags", "trigger", "etl", "--conf", '{"region": "us", "limit": 5}',
                "--date", "2026-03-04", "--json")
    cli_id = json.loads(c.out)["run_id"]
    cols = "dag_id, state, type, logical_at, conf, dag_hash, dag_path, owner"
    a = api.query("SELECT %s FROM runs WHERE run_id = ?" % cols, o["run_id"])
    b = api.query("SELECT %s FROM runs WHERE run_id = ?" % cols, cli_id)
    assert a == b and len(a) == 1, (a, b)
    assert json.loads(a[0][4]) == {"limit": "5", "region": "us"}


def test_trigger_conf_reals_keep_their_digits(api):
    """A real in conf becomes the param's text as written: 0.1, not 0.10000000000000001."""
    r = api.req("POST", "/api/v1/dags/etl/runs", body={"conf": {"limit": 0.1}})
    assert r.status == 201, r
    c = api.cli("dags", "trigger", "etl", "--conf", '{"limit": 0.1234567890123}', "--json")
    for run_id, want in ((r.json["run_id"], "0.1"), (json.loads(c.out)["run_id"],
                                                       "0.1234567890123")):
        conf = api.query("SELECT conf FROM runs WHERE run_id = ?", run_id)[0][0]
        assert json.loads(conf) == {"limit": want}, conf


def test_trigger_iso_date_and_now(api):
    r = api.req("POST", "/api/v1/dags/etl/runs", body={"logical_date": "2026-05-06T07:08:09Z"})
    assert r.status == 201 and r.json["logical_date"] == "2026-05-06T07:08:09.000Z", r
    t0 = time.time()
    r = api.req("POST", "/api/v1/dags/etl/runs")  # no body: now, no conf
    assert r.status == 201, r
    run = api.query("SELECT logical_at, conf FROM runs WHERE run_id = ?", r.json["run_id"])
    assert run[0][1] is None, run
    assert abs(run[0][0] / 1000 - t0) < 30, run


@pytest.mark.parametrize("body,words", [
    ({"conf": {}, "date": "2026-01-01"}, "unknown field 'date'"),
    ({"conf": "region=us"}, "'conf' must be an object"),
    ({"conf": [1]}, "'conf' must be an object"),
    ({"conf": {"region": [1]}}, "conf param 'region' must be a string, number or boolean"),
    ({"conf": {"region": None}}, "not null"),
    ({"conf": {"regoin": "us"}}, "regoin"),
    ({"logical_date": 20260101}, "'logical_date' must be a date string"),
    ({"logical_date": "2026-02-30"}, "bad logical_date '2026-02-30'"),
    ({"logical_date": "yesterday"}, "bad logical_date"),
    ("[1, 2]", "JSON object"),
    ("{\"conf\": ", "not valid JSON"),
])
def test_trigger_bad_input(api, body, words):
    before = api.query("SELECT COUNT(*) FROM runs")
    r = api.req("POST", "/api/v1/dags/etl/runs", body=body)
    p = check_problem(r, 400)
    assert words in p["detail"], p
    assert ".yaml" not in p["detail"], p  # no server paths
    assert api.query("SELECT COUNT(*) FROM runs") == before


def test_trigger_unknown_dag(api):
    r = api.req("POST", "/api/v1/dags/elt/runs", body={})
    p = check_problem(r, 404)
    assert p["detail"] == "no DAG 'elt' (did you mean 'etl'?)", p
    assert p["did_you_mean"] == "etl"
    assert str(api.b.dags) not in r.text  # no server path in the answer
    p = check_problem(api.req("POST", "/api/v1/dags/zzzzzzzz/runs"), 404)
    assert p["detail"] == "no DAG 'zzzzzzzz'", p


# ---- cancel ----

def test_cancel_direct(api):
    run_id = api.queued_run()
    r = api.req("POST", "/api/v1/dags/etl/runs/%s/cancel" % run_id)
    assert r.status == 200, r
    assert r.json == {"run_id": run_id, "state": "cancelled"}
    assert api.run_state(run_id) == "cancelled"
    # Again: it has ended.
    p = check_problem(api.req("POST", "/api/v1/dags/etl/runs/%s/cancel" % run_id), 409)
    assert p["detail"] == "run '%s' already ended (cancelled)" % run_id, p


def test_cancel_hands_over_to_the_scheduler(api):
    run_id = api.queued_run()
    lock = HeldLock(api.b.home)
    try:
        r = api.req("POST", "/api/v1/dags/etl/runs/%s/cancel" % run_id)
    finally:
        lock.close()
    assert r.status == 202, r
    assert r.json == {"run_id": run_id, "state": "queued"}
    assert api.query("SELECT run_id, kind FROM run_requests") == [(run_id, "cancel")]
    assert api.run_state(run_id) == "queued"  # the scheduler's to change
    api.execute("DELETE FROM run_requests")


def test_cancel_waits_for_the_scheduler(api):
    run_id = api.queued_run()
    lock = HeldLock(api.b.home)

    def scheduler():  # takes the request and cancels the run, as the daemon would
        end = time.monotonic() + 20
        while time.monotonic() < end:
            if api.query("SELECT run_id FROM run_requests"):
                api.execute("DELETE FROM run_requests")
                api.execute("UPDATE runs SET state = 'cancelled', ended_at = 1 "
                            "WHERE run_id = ?", run_id)
                return
            time.sleep(0.02)

    t = threading.Thread(target=scheduler)
    t.start()
    try:
        r = api.req("POST", "/api/v1/dags/etl/runs/%s/cancel?wait=10" % run_id)
    finally:
        t.join()
        lock.close()
    assert r.status == 200, r
    assert r.json == {"run_id": run_id, "state": "cancelled"}


def test_cancel_bad_input(api):
    run_id = api.queued_run()
    base = "/api/v1/dags/etl/runs/%s/cancel" % run_id
    check_problem(api.req("POST", base, body={"force": True}), 400)
    check_problem(api.req("POST", base + "?wait=31"), 400)
    check_problem(api.req("POST", base + "?wait=x"), 400)
    # The run must belong to the DAG of the URL.
    p = check_problem(api.req("POST", "/api/v1/dags/other/runs/%s/cancel" % run_id), 404)
    assert run_id in p["detail"], p
    check_problem(api.req("POST", "/api/v1/dags/etl/runs/manual__nope/cancel"), 404)
    assert api.run_state(run_id) == "queued"
    # A foreground `baram run`: conflict.
    api.execute("UPDATE runs SET owner = 'cli', state = 'running' WHERE run_id = ?", run_id)
    p = check_problem(api.req("POST", base), 409)
    assert "foreground" in p["detail"], p
    assert api.run_state(run_id) == "running"


# ---- clear ----

def test_clear_same_as_cli(api):
    run_id = api.ended_run()
    r = api.req("POST", "/api/v1/dags/etl/runs/%s/tasks/transform/clear" % run_id,
                body={"downstream": True})
    assert r.status == 200, r
    o = r.json
    assert o["run_id"] == run_id and o["cleared"] == ["transform", "load"], o
    assert o["state"] == "queued" and o["task_instances"] == 2, o
    api_rows = api.query("SELECT task_id, state, max_tries, exit_code FROM task_instances "
                         "WHERE run_id = ? ORDER BY task_id", run_id)
    assert api.query("SELECT state, ended_at, owner FROM runs WHERE run_id = ?", run_id) == \
        [("queued", None, None)]
    cli_id = api.ended_run()
    api.cli("tasks", "clear", cli_id, "transform", "--downstream")
    cli_rows = api.query("SELECT task_id, state, max_tries, exit_code FROM task_instances "
                         "WHERE run_id = ? ORDER BY task_id", cli_id)
    assert api_rows == cli_rows, (api_rows, cli_rows)
    # Queued again, and no scheduler runs it: a second clear applies at once too.
    r = api.req("POST", "/api/v1/dags/etl/runs/%s/tasks/load/clear" % run_id)
    assert r.status == 200 and r.json["cleared"] == ["load"], r


def test_clear_one_task(api):
    run_id = api.ended_run()
    r = api.req("POST", "/api/v1/dags/etl/runs/%s/tasks/extract/clear" % run_id)
    assert r.status == 200 and r.json["cleared"] == ["extract"], r
    st = dict(api.query("SELECT task_id, state FROM task_instances WHERE run_id = ?", run_id))
    assert st == {"extract": "none", "transform": "success", "load": "success",
                  "report": "success"}, st


def test_clear_bad_input(api):
    run_id = api.ended_run()
    base = "/api/v1/dags/etl/runs/%s/tasks" % run_id
    p = check_problem(api.req("POST", base + "/transfrom/clear"), 404)
    assert p["detail"] == "no task 'transfrom' (did you mean 'transform'?)", p
    assert p["did_you_mean"] == "transform"
    p = check_problem(api.req("POST", base + "/load/clear", body={"downstream": "yes"}), 400)
    assert "'downstream' must be a boolean" in p["detail"], p
    check_problem(api.req("POST", base + "/load/clear", body={"upstream": True}), 400)
    check_problem(api.req("POST", "/api/v1/dags/other/runs/%s/tasks/load/clear" % run_id), 404)
    check_problem(api.req("POST", "/api/v1/dags/etl/runs/manual__x/tasks/load/clear"), 404)
    assert api.run_state(run_id) == "success"


# ---- pause ----

def test_pause_and_unpause(api):
    r = api.req("PATCH", "/api/v1/dags/etl", body={"paused": True})
    assert r.status == 200 and r.json == {"dag_id": "etl", "paused": True}, r
    lst = json.loads(api.cli("dags", "list", "--json").out)
    assert [d["paused"] for d in lst["dags"] if d["dag_id"] == "etl"] == [True], lst
    # A trigger on a paused DAG still queues its run.
    assert api.req("POST", "/api/v1/dags/etl/runs").status == 201
    r = api.req("PATCH", "/api/v1/dags/etl", body={"paused": False})
    assert r.status == 200 and r.json == {"dag_id": "etl", "paused": False}, r
    assert api.query("SELECT paused FROM dags WHERE dag_id = 'etl'") == [(0,)]


def test_the_dag_list_shows_a_change_made_through_the_api_at_once(api):
    """The DAG list is kept up to 200 ms for all clients, but not past a write of this server:
    a UI that toggles pause and reads the list again sees its toggle."""
    for _ in range(20):
        for paused in (True, False):
            assert api.req("GET", "/api/v1/dags").status == 200  # the list is fresh in cache
            assert api.req("PATCH", "/api/v1/dags/etl", body={"paused": paused}).status == 200
            lst = api.req("GET", "/api/v1/dags").json
            assert [d["paused"] for d in lst["dags"] if d["dag_id"] == "etl"] == [paused], lst
    before = api.req("GET", "/api/v1/dags").json
    n = [len(d["recent_runs"]) for d in before["dags"] if d["dag_id"] == "etl"][0]
    assert api.req("POST", "/api/v1/dags/etl/runs").status == 201
    after = api.req("GET", "/api/v1/dags").json
    assert [len(d["recent_runs"]) for d in after["dags"] if d["dag_id"] == "etl"] == [
        min(n + 1, 10)], after


@pytest.mark.parametrize("body,status", [
    ({}, 400), ({"paused": "true"}, 400), ({"paused": 1}, 400), ({"paused": None}, 400),
    ({"paused": True, "schedule": "@hourly"}, 400),
])
def test_pause_bad_input(api, body, status):
    api.cli("dags", "unpause", "etl")
    check_problem(api.req("PATCH", "/api/v1/dags/etl", body=body), status)
    assert api.query("SELECT paused FROM dags WHERE dag_id = 'etl'") == [(0,)]


def test_pause_unknown_dag(api):
    p = check_problem(api.req("PATCH", "/api/v1/dags/ett", body={"paused": True}), 404)
    assert p["did_you_mean"] == "etl", p
    assert api.query("SELECT COUNT(*) FROM dags WHERE dag_id = 'ett'") == [(0,)]


# ---- pools ----

def test_pool_set(api):
    r = api.req("PUT", "/api/v1/pools/gpu.a-1", role="admin", body={"slots": 7})
    assert r.status == 200 and r.json == {"name": "gpu.a-1", "slots": 7}, r
    r = api.req("PUT", "/api/v1/pools/gpu.a-1", role="admin", body={"slots": 0})
    assert r.status == 200 and r.json["slots"] == 0, r
    pools = json.loads(api.cli("pools", "list", "--json").out)["pools"]
    assert {"name": "gpu.a-1", "slots": 0, "running": 0, "queued": 0, "scheduled": 0, "open": 0,
            "source": "store"} in pools, pools
    r = api.req("PUT", "/api/v1/pools/big", role="admin", body={"slots": 100000})
    assert r.status == 200, r


@pytest.mark.parametrize("name,body", [
    ("p", {"slots": -1}), ("p", {"slots": 100001}), ("p", {"slots": "5"}), ("p", {"slots": 5.5}),
    ("p", {"slots": True}), ("p", {}), ("p", {"slots": 1, "size": 2}),
    ("a%20b", {"slots": 1}), ("a%3Bb", {"slots": 1}), ("x" * 201, {"slots": 1}),
])
def test_pool_bad_input(api, name, body):
    check_problem(api.req("PUT", "/api/v1/pools/" + name, role="admin", body=body), 400)
    assert api.query("SELECT COUNT(*) FROM pools WHERE name IN ('p', 'a b', 'a;b')") == [(0,)]


# ---- with a real scheduler ----

SLOW = """
dag: slow
tasks:
  nap:
    run: sleep 60
"""

BRANCHES = """
dag: branches
tasks:
  quick:
    run: echo quick >> quick.count
  gate:
    run: i=0; while [ ! -e api.go ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i+1)); done
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_with_a_running_scheduler(tmp_path):
    """`baram standalone --listen`: a run triggered through the API runs at once (the
    doorbell), and cancel of a running run is confirmed by the scheduler (?wait)."""
    b = make_home(tmp_path)
    b.env["BARAM_DAGS"] = str(b.dags)
    b.write("etl.yaml", ETL)
    b.write("slow.yaml", SLOW)
    b.write("branches.yaml", BRANCHES)
    port = free_port()
    log_path = tmp_path / "standalone.log"
    with open(log_path, "ab") as errf:
        proc = subprocess.Popen([BIN, "standalone", "--listen", "127.0.0.1:%d" % port,
                                 "--grace", "1s"], cwd=str(b.dags), env=b.env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
    srv = ApiServer(b, log_path)
    srv.port = port

    def state(run_id):
        rows = db_query(b, "SELECT state FROM runs WHERE run_id = ?", run_id)
        return rows[0][0] if rows else None

    def wait(cond, timeout=20.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if cond():
                return True
            assert proc.poll() is None, srv.log()
            time.sleep(0.02)
        return cond()

    try:
        assert wait(lambda: "scheduler up" in srv.log() and "api listening" in srv.log()), \
            srv.log()
        tok = token(b, "admin")
        t0 = time.monotonic()
        r = srv.request("POST", "/api/v1/dags/etl/runs", token=tok, body={"conf": {"limit": 1}})
        assert r.status == 201, r
        run_id = r.json["run_id"]
        assert wait(lambda: state(run_id) == "success"), (state(run_id), srv.log())
        assert time.monotonic() - t0 < 15

        r = srv.request("POST", "/api/v1/dags/slow/runs", token=tok)
        assert r.status == 201, r
        slow_id = r.json["run_id"]
        assert wait(lambda: state(slow_id) == "running"), (state(slow_id), srv.log())
        r = srv.request("POST", "/api/v1/dags/slow/runs/%s/cancel?wait=20" % slow_id, token=tok)
        assert r.status == 200, r
        assert r.json == {"run_id": slow_id, "state": "cancelled"}
        assert state(slow_id) == "cancelled"

        # Clear a task of the ended etl run: the scheduler runs it again at once.
        r = srv.request("POST", "/api/v1/dags/etl/runs/%s/tasks/load/clear" % run_id,
                        token=tok)
        assert r.status == 200 and r.json["cleared"] == ["load"], r
        assert wait(lambda: state(run_id) == "success"), (state(run_id), srv.log())

        # Clear a task of a run still running: 202, the scheduler clears it once the tries in
        # flight have ended; an instance in flight cannot be cleared (409).
        r = srv.request("POST", "/api/v1/dags/branches/runs", token=tok)
        br = r.json["run_id"]

        def ti(task):
            rows = db_query(b, "SELECT state, try_number FROM task_instances WHERE run_id = ? "
                            "AND task_id = ?", br, task)
            return rows[0] if rows else (None, 0)
        assert wait(lambda: ti("quick")[0] == "success" and ti("gate")[0] == "running"), \
            srv.log()
        base = "/api/v1/dags/branches/runs/%s/tasks/" % br
        p = check_problem(srv.request("POST", base + "gate/clear", token=tok), 409)
        assert "gate is running" in p["detail"], p
        r = srv.request("POST", base + "quick/clear", token=tok)
        assert r.status == 202, r
        assert r.json == {"run_id": br, "cleared": ["quick"], "requested": True}, r.json
        assert ti("quick") == ("success", 1) and state(br) == "running"
        (b.dags / "api.go").write_text("")
        # the run may end before the scheduler takes the clear (a loaded machine): then the
        # clear puts it back and it ends again, quick's second try done
        assert wait(lambda: state(br) == "success" and ti("quick") == ("success", 2)), \
            (state(br), ti("quick"), srv.log())
        assert ti("gate") == ("success", 1)
        assert (b.dags / "quick.count").read_text() == "quick\nquick\n"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_delete_users_keeps_the_last_admin(tmp_path):
    """DELETE /api/v1/users/{name}: 204 and gone; 404 for no such user; 409 for the last admin
    (the same rule as `baram users delete`), which then still logs in."""
    b = make_home(tmp_path)
    add_user(b, "ann", "admin")
    add_user(b, "vic", "viewer")
    srv = ApiServer(b, tmp_path / "api.log").start()
    try:
        tok = token(b, "admin")
        r = srv.request("DELETE", "/api/v1/users/vic", token=tok)
        assert r.status == 204 and r.body == b"", r
        r = srv.request("DELETE", "/api/v1/users/vic", token=tok)
        assert check_problem(r, 404)["detail"] == "no user 'vic'", r
        r = srv.request("DELETE", "/api/v1/users/ann", token=tok)
        assert r.status == 204, r
        r = srv.request("DELETE", "/api/v1/users/admin", token=tok)
        assert "last admin" in check_problem(r, 409)["detail"], r
        names = [u["name"] for u in srv.request("GET", "/api/v1/users", token=tok).json["users"]]
        assert names == ["admin"], names
    finally:
        assert srv.stop() == 0, srv.log()


def test_pools_are_listed_as_the_cli_lists_them(tmp_path):
    """GET /api/v1/pools and `baram pools list --json` give the same pools, sized as the
    scheduler sizes them: 'default' 128, then baram.yaml's pools, then the stored ones."""
    b = make_home(tmp_path)
    with open(b.home / "baram.yaml", "a") as f:
        f.write("pools:\n  warehouse: 2\n  etl: 5\n")
    assert b("pools", "set", "etl", "3").rc == 0
    srv = ApiServer(b, tmp_path / "api.log").start()
    try:
        api_pools = srv.request("GET", "/api/v1/pools", token=token(b, "admin")).json
        cli = b("pools", "list", "--json")
        assert cli.rc == 0, cli
        cli_pools = json.loads(cli.out)["pools"]
        assert api_pools["total_entries"] == 3
        assert [{k: v for k, v in p.items() if k != "updated_at"}
                for p in api_pools["pools"]] == cli_pools, (api_pools, cli_pools)
        idle = {"running": 0, "queued": 0, "scheduled": 0}
        assert cli_pools == [
            {"name": "default", "slots": 128, **idle, "open": 128, "source": "default"},
            {"name": "etl", "slots": 3, **idle, "open": 3, "source": "store"},
            {"name": "warehouse", "slots": 2, **idle, "open": 2, "source": "config"}]
    finally:
        assert srv.stop() == 0, srv.log()
