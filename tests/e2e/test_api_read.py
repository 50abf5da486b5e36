"""The REST API's server and read routes (SPEC section 8), through the real
`baram api` on a real home.

One home is built for the module: DAGs loaded by a short `baram
standalone` (so the `dags` table and import errors are filled), runs made by
`baram run` (one with a retried task and a log over 1 MiB), a paused DAG, a
queued trigger, a pool. Then one `baram api` serves every test, and the last
test checks its log never held a token.
"""

import json
import re
import socket
import time

import pytest

from api_util import (ApiServer, add_user, alive_cleanup, check_problem, make_home, record_dags,
                      token)
from conftest import ON_PG, ROOT

LIST_ROUTES = ["/api/v1/dags", "/api/v1/import-errors", "/api/v1/pools", "/api/v1/workers"]
BIG_LOG = 1536 * 1024  # bytes the "big" task prints: more than one 1 MiB chunk


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("api")
    b = make_home(root)
    b.write("hello.yaml", """
        dag: hello
        description: a small DAG
        params: {region: eu}
        tasks:
          a:
            run: printf 'line one\\nline two\\n'
          b:
            needs: [a]
            run: echo b
          m:
            needs: [a]
            for_each: [x, y]
            run: echo item {{ item }}
          flaky:
            needs: [b]
            retries: 1
            run: if [ -f flaky.marker ]; then echo second try; else touch flaky.marker; echo first try; exit 3; fi
        """)
    b.write("other.yaml", """
        dag: other
        schedule: "@daily"
        start: 2030-01-01
        tasks:
          big:
            run: head -c %d /dev/zero | tr '\\0' 'x'
        """ % BIG_LOG)
    b.write("broken.yaml", "dag: broken\ntasks:\n  a: {run: echo, needs: [nope]}\n")
    b.write("typo.yaml", "dag: typo\ntasks:\n  a: {run: echo, retires: 1}\n")
    record_dags(b, root / "standalone.log")  # the DAGs as loaded, and the import error
    runs = []
    for _ in range(3):
        r = b("run", b.dags / "hello.yaml", "--json")
        assert r.rc == 0, r
        runs.append(r.json["run_id"])
    r = b("run", b.dags / "other.yaml", "--json")
    assert r.rc == 0, r
    big_run = r.json["run_id"]
    assert b("dags", "pause", "other").rc == 0
    r = b("dags", "trigger", "hello", env={"BARAM_DAGS": str(b.dags)})
    assert r.rc == 0, r
    assert b("pools", "set", "etl", "3").rc == 0
    add_user(b, "viewer1", "viewer")
    srv = ApiServer(b, root / "api.log").start()
    e = {"b": b, "srv": srv, "runs": runs, "big_run": big_run, "root": root,
         "admin": token(b, "admin"), "viewer": token(b, "viewer1")}
    yield e
    alive_cleanup([srv])


def get(env, path, who="viewer"):
    return env["srv"].get(path, token=env[who] if who else None)


def ok_json(r):
    assert r.status == 200, r
    assert r.header("content-type") == "application/json", r
    assert r.header("cache-control") == "no-store", r
    return r.json


def run_path(env, i=0):
    return "/api/v1/dags/hello/runs/" + env["runs"][i]


# ---- the server ----

def test_health_is_public(env):
    r = get(env, "/api/v1/health", who=None)
    o = ok_json(r)
    db = o.pop("database")
    assert o == {"status": "ok", "store": "ok"}
    # the database: its backend, reached with a round trip that took a moment
    assert db["backend"] == ("postgresql" if ON_PG else "sqlite"), db
    assert db["reachable"] is True, db
    assert 0 < db["latency_ms"] < 5000, db


def test_unknown_route_is_a_404_problem(env):
    for path in ("/api/v1/nope", "/nope", "/ui", "/api/v1/dags/", "/api/v1/dags//runs", "/api/v2/dags"):
        check_problem(get(env, path), 404)


def test_wrong_method_is_405_with_allow(env):
    r = env["srv"].request("DELETE", "/api/v1/dags", token=env["admin"])
    check_problem(r, 405)
    assert r.header("allow") == "GET, HEAD", r
    r = env["srv"].request("PUT", "/api/v1/dags/hello", token=env["admin"])
    check_problem(r, 405)
    assert set(r.header("allow").split(", ")) == {"GET", "HEAD", "PATCH"}, r


def test_head_is_get_without_the_body(env):
    """RFC 9110: a server that answers GET answers HEAD; the same status and headers, no body.
    The token is checked as for GET, and HEAD on the event stream ends at once."""
    srv = env["srv"]
    for path in ("/api/v1/dags", "/api/v1/dags/hello", "/api/v1/health", "/api/v1/openapi.json",
                 "/api/v1/events"):
        g = srv.request("GET", path, token=env["viewer"]) if path != "/api/v1/events" else None
        t0 = time.monotonic()
        h = srv.request("HEAD", path, token=env["viewer"])
        assert time.monotonic() - t0 < 3, path
        assert h.status == 200 and h.body == b"", (path, h)
        if g is not None:
            assert h.header("content-type") == g.header("content-type"), path
        else:
            assert h.header("content-type").startswith("text/event-stream"), h
    r = srv.request("HEAD", "/api/v1/dags")
    assert r.status == 401 and r.body == b"", r
    r = srv.request("HEAD", "/api/v1/dags/nope", token=env["viewer"])
    assert r.status == 404 and r.body == b"", r
    r = srv.request("HEAD", "/api/v1/auth/token")
    assert r.status == 405 and r.header("allow") == "POST", r
    # On one kept-alive connection: HEAD of the event stream, of a log, then a GET. A body on a
    # HEAD answer (a chunked stream's last chunk) would be read as the start of the next one.
    log = run_path(env) + "/tasks/a/logs"
    with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as sock:
        for method, path in (("HEAD", "/api/v1/events"), ("HEAD", log),
                             ("GET", "/api/v1/health")):
            sock.sendall(("%s %s HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer %s\r\n\r\n"
                          % (method, path, env["viewer"])).encode())
        got, end = b"", time.monotonic() + 5
        while (got.count(b"HTTP/1.1 ") < 3 or not got.endswith(b"}")) and time.monotonic() < end:
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
    heads = got.split(b"\r\n\r\n")
    assert [h.split(b"\r\n")[0] for h in heads[:3]] == [b"HTTP/1.1 200 OK"] * 3, got
    health = json.loads(heads[3])  # the GET's whole body, nothing of the HEADs before it
    assert health["status"] == "ok" and health["database"]["reachable"] is True, got


def test_missing_or_bad_token_is_401(env):
    srv = env["srv"]
    bad = [None, "garbage", "a.b.c", env["viewer"][:-4] + "AAAA"]
    for t in bad:
        r = srv.get("/api/v1/dags", token=t)
        check_problem(r, 401)
        assert r.header("www-authenticate").startswith("Bearer"), r
    r = srv.get("/api/v1/dags", headers={"Authorization": "Basic YWRtaW46eA=="})
    check_problem(r, 401)
    r = srv.get("/api/v1/dags", headers={"Authorization": "Bearer"})
    check_problem(r, 401)


def test_role_below_the_route_is_403(env):
    # A viewer reads, but may not manage users.
    assert get(env, "/api/v1/dags").status == 200
    check_problem(get(env, "/api/v1/users"), 403)


def test_body_over_1mib_is_413(env):
    srv = env["srv"]
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    check_problem(srv.request("POST", "/api/v1/auth/token", body=big), 413)
    r = srv.request("POST", "/api/v1/auth/token", body=big,
                    headers={"Transfer-Encoding": "chunked"})
    check_problem(r, 413)
    # Just under the limit is read and judged on its content.
    ok = json.dumps({"username": "admin", "password": "x" * (1024 * 1024 - 100)})
    assert srv.request("POST", "/api/v1/auth/token", body=ok).status in (400, 401)


def test_openapi_document_lists_every_route(env):
    r = get(env, "/api/v1/openapi.json", who=None)
    doc = ok_json(r)
    assert doc["openapi"].startswith("3."), doc.get("openapi")
    documented = set()
    for path, ops in doc["paths"].items():
        for method in ops:
            if method in ("get", "post", "put", "patch", "delete"):
                documented.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", path)))
    served = set()
    row = re.compile(r'\{\s*"(GET|POST|PUT|PATCH|DELETE)",\s*"([^"]+)"')
    for f in sorted((ROOT / "src" / "api").glob("routes_*.c")):
        for method, pattern in row.findall(f.read_text()):
            served.add((method, re.sub(r"\{[^}]+\}", "{}", pattern)))
    assert served, "no route rows found in src/api/routes_*.c"
    assert served - documented == set(), "routes missing from openapi.json"
    assert documented - served == set(), "openapi.json documents routes the server lacks"
    # Every SPEC section 8 route is served.
    spec = {("GET", "/api/v1/dags"), ("PATCH", "/api/v1/dags/{}"), ("GET", "/api/v1/health"),
            ("GET", "/api/v1/dags/{}/runs/{}/tasks/{}/logs"), ("GET", "/metrics"),
            ("POST", "/api/v1/auth/token"), ("GET", "/api/v1/events")}
    assert spec <= served


# ---- DAGs ----

def test_dags_list(env):
    o = ok_json(get(env, "/api/v1/dags"))
    assert o["total_entries"] == 2, o
    by_id = {d["dag_id"]: d for d in o["dags"]}
    assert set(by_id) == {"hello", "other"}
    assert by_id["other"]["paused"] is True and by_id["hello"]["paused"] is False
    assert by_id["other"]["schedule"] == "@daily"
    assert by_id["hello"]["description"] == "a small DAG"
    assert by_id["hello"]["last_run"]["dag"] == "hello"
    assert len(by_id["hello"]["hash"]) == 64
    # The recent runs, newest first (the queued trigger, then the three `baram run`s).
    recent = by_id["hello"]["recent_runs"]
    assert [r["run_id"] for r in recent[1:]] == env["runs"][::-1], recent
    assert recent[0]["state"] == "queued" and recent[0]["run_id"].startswith("manual__"), recent
    assert by_id["hello"]["last_run"]["run_id"] == recent[0]["run_id"]
    assert all(r["state"] in ("success", "failed") for r in recent[1:]), recent
    # The next scheduled run: none without a schedule; the first interval from `start`.
    assert by_id["hello"]["next_run"] is None
    assert by_id["other"]["next_run"] == {"logical_date": "2030-01-01T00:00:00.000Z",
                                          "due_at": "2030-01-02T00:00:00.000Z",
                                          "logical_date_local": "2030-01-01T00:00:00Z",
                                          "due_at_local": "2030-01-02T00:00:00Z",
                                          "timezone": "UTC"}, by_id["other"]
    assert by_id["other"]["timezone"] == "UTC"


def test_dags_show_has_the_next_run_of_the_apis_dag(env):
    b = env["b"]
    for dag in ("hello", "other"):
        api = ok_json(get(env, "/api/v1/dags/" + dag))["next_run"]
        r = b("dags", "show", dag, "--json", env={"BARAM_DAGS": str(b.dags)})
        assert r.rc == 0, r
        assert r.json["next_run"] == api, (dag, r.json, api)
    r = b("dags", "show", "other", env={"BARAM_DAGS": str(b.dags)})
    assert r.rc == 0, r
    assert re.search(r"^next run: +2030-01-01T00:00:00\.000Z \(due 2030-01-02T00:00:00\.000Z\)$",
                     r.out, re.M), r
    r = b("dags", "show", "hello", env={"BARAM_DAGS": str(b.dags)})
    assert re.search(r"^next run: +-$", r.out, re.M), r


def test_dags_pagination(env):
    first = ok_json(get(env, "/api/v1/dags?limit=1"))
    second = ok_json(get(env, "/api/v1/dags?limit=1&offset=1"))
    assert first["total_entries"] == second["total_entries"] == 2
    assert len(first["dags"]) == len(second["dags"]) == 1
    assert first["dags"][0]["dag_id"] != second["dags"][0]["dag_id"]
    past = ok_json(get(env, "/api/v1/dags?offset=5"))
    assert past == {"dags": [], "total_entries": 2}


def test_dag_detail(env):
    o = ok_json(get(env, "/api/v1/dags/hello"))
    assert o["dag_id"] == "hello" and o["params"] == {"region": "eu"}
    tasks = {t["name"]: t for t in o["tasks"]}
    assert set(tasks) == {"a", "b", "m", "flaky"}
    assert tasks["b"]["upstream"] == ["a"] and tasks["m"]["mapped"] is True
    assert tasks["flaky"]["retries"] == 1
    p = check_problem(get(env, "/api/v1/dags/nope"), 404)
    assert "nope" in p["detail"]


def test_dag_graph(env):
    g = ok_json(get(env, "/api/v1/dags/hello/graph"))
    nodes = {n["id"]: n for n in g["nodes"]}
    assert {k: v["layer"] for k, v in nodes.items()} == {"a": 0, "b": 1, "m": 1, "flaky": 2}
    orders = [(n["layer"], n["order"]) for n in g["nodes"]]
    assert len(set(orders)) == len(orders), orders  # each node its own place in its layer
    assert g["layers"] == 3 and g["crossings"] == 0, g
    assert {(e["from"], e["to"]) for e in g["edges"]} == {("a", "b"), ("a", "m"),
                                                          ("b", "flaky")}
    check_problem(get(env, "/api/v1/dags/nope/graph"), 404)


def test_dag_grid(env):
    g = ok_json(get(env, "/api/v1/dags/hello/grid"))
    assert g["dag_id"] == "hello"
    codes = g["codes"]
    assert codes["s"] == "success" and codes["."] == "none" and len(codes) == 9, codes
    # The runs newest first: the queued trigger (no instances yet), then the three runs.
    ids = [r["run_id"] for r in g["runs"]]
    assert ids[1:] == env["runs"][::-1], ids
    assert set(g["tasks"]) == {"a", "b", "m[0]", "m[1]", "flaky"}, g["tasks"]
    for col in g["runs"]:
        assert len(col["states"]) == len(g["tasks"]) == len(col["tries"]), col
    # Each run's letters agree with its instances as /tasks reports them.
    for col in g["runs"][1:]:
        tis = ok_json(get(env, run_path(env, env["runs"].index(col["run_id"])) + "/tasks"))
        want = {t["task_id"]: (t["state"], t["try_number"]) for t in tis["tasks"]}
        got = {task: (codes[c], n) for task, c, n in zip(g["tasks"], col["states"], col["tries"])
               if c != "."}
        assert got == want, (got, want)
    assert g["runs"][0]["states"] == "." * len(g["tasks"])
    one = ok_json(get(env, "/api/v1/dags/hello/grid?limit=1"))
    assert len(one["runs"]) == 1
    for bad in ("0", "101", "-1", "x"):
        check_problem(get(env, "/api/v1/dags/hello/grid?limit=" + bad), 400)
    check_problem(get(env, "/api/v1/dags/nope/grid"), 404)


def test_import_errors(env):
    o = ok_json(get(env, "/api/v1/import-errors"))
    assert o["total_entries"] >= 1
    e = o["import_errors"][0]
    assert e["path"].endswith("broken.yaml") and e["line"] >= 1 and "nope" in e["message"]


def test_import_errors_keep_the_did_you_mean_the_cli_prints(env):
    b = env["b"]
    api = {e["path"]: e for e in ok_json(get(env, "/api/v1/import-errors"))["import_errors"]}
    typo = api[str(b.dags / "typo.yaml")]
    assert typo["message"] == "unknown key 'retires' (did you mean 'retries'?)", typo
    # the same words as `baram dags list` and `dags validate` for the same file
    cli = b("dags", "list", "--json", env={"BARAM_DAGS": str(b.dags)}).json["import_errors"]
    assert {e["file"]: e["message"] for e in cli} == {p: e["message"] for p, e in api.items()}
    r = b("dags", "validate", b.dags / "typo.yaml")
    assert r.rc == 1 and typo["message"] in r.err, r


# ---- runs and tasks ----

def test_runs_list_and_pagination(env):
    o = ok_json(get(env, "/api/v1/dags/hello/runs"))
    assert o["total_entries"] == 4, o  # three `baram run` + one queued trigger
    ids = [r["run_id"] for r in o["runs"]]
    assert set(env["runs"]) <= set(ids)
    assert sum(r["state"] == "queued" for r in o["runs"]) == 1
    page1 = ok_json(get(env, "/api/v1/dags/hello/runs?limit=3"))
    page2 = ok_json(get(env, "/api/v1/dags/hello/runs?limit=3&offset=3"))
    assert len(page1["runs"]) == 3 and len(page2["runs"]) == 1
    assert [r["run_id"] for r in page1["runs"] + page2["runs"]] == ids
    assert page1["total_entries"] == page2["total_entries"] == 4
    check_problem(get(env, "/api/v1/dags/nope/runs"), 404)
    # A paused DAG with runs lists them; the other DAG's runs are not mixed in.
    o = ok_json(get(env, "/api/v1/dags/other/runs"))
    assert [r["run_id"] for r in o["runs"]] == [env["big_run"]]


def test_run_detail_is_the_cli_object(env):
    b = env["b"]
    rid = env["runs"][0]
    o = ok_json(get(env, run_path(env)))
    r = b("runs", "show", rid, "--json")
    assert r.rc == 0, r
    cli = r.json
    for k, v in cli.items():
        assert o[k] == v, k
    assert o["tasks"]["flaky"]["state"] == "success" and o["tasks"]["flaky"]["tries"] == 2
    check_problem(get(env, "/api/v1/dags/hello/runs/manual__nope"), 404)
    # A run is only found under its own DAG.
    check_problem(get(env, "/api/v1/dags/other/runs/" + rid), 404)


def test_tasks_list(env):
    o = ok_json(get(env, run_path(env) + "/tasks"))
    assert o["total_entries"] == 5
    assert {t["task_id"] for t in o["tasks"]} == {"a", "b", "m[0]", "m[1]", "flaky"}
    m1 = [t for t in o["tasks"] if t["task_id"] == "m[1]"][0]
    assert m1["task"] == "m" and m1["map_index"] == 1 and m1["state"] == "success"
    page = ok_json(get(env, run_path(env) + "/tasks?limit=2&offset=4"))
    assert len(page["tasks"]) == 1 and page["total_entries"] == 5
    check_problem(get(env, "/api/v1/dags/hello/runs/manual__nope/tasks"), 404)


@pytest.mark.sqlite_only(reason="on SQLite no worker runs a try: the scheduler does")
def test_no_worker_on_sqlite_tries(env):
    o = ok_json(get(env, run_path(env) + "/tasks/flaky"))
    assert o["worker"] is None and [t["worker"] for t in o["tries"]] == [None, None], o
    o = ok_json(get(env, run_path(env) + "/tasks"))
    assert {t["worker"] for t in o["tasks"]} == {None}, o
    assert "worker" not in ok_json(get(env, run_path(env)))["tasks"]["flaky"]
    r = env["b"]("runs", "show", env["runs"][0])
    assert r.rc == 0 and "WORKER" not in r.out and "TASK" in r.out, r


def test_task_detail_with_tries(env):
    o = ok_json(get(env, run_path(env) + "/tasks/flaky"))
    assert o["task_id"] == "flaky" and o["try_number"] == 2 and o["max_tries"] == 2
    assert [t["try_number"] for t in o["tries"]] == [1, 2]
    assert o["tries"][0]["exit_code"] == 3 and o["tries"][1]["exit_code"] == 0
    o = ok_json(get(env, run_path(env) + "/tasks/m%5B0%5D"))
    assert o["task_id"] == "m[0]" and len(o["tries"]) == 1
    check_problem(get(env, run_path(env) + "/tasks/nope"), 404)


def test_logs(env):
    base = run_path(env) + "/tasks/"
    r = get(env, base + "a/logs")
    assert r.status == 200, r
    assert r.header("content-type").startswith("text/plain"), r
    assert r.text == "line one\nline two\n"
    assert r.header("x-next-offset") == str(len(r.body))
    r = get(env, base + "a/logs?offset=5")
    assert r.text == "one\nline two\n" and r.header("x-next-offset") == "18"
    r = get(env, base + "a/logs?offset=18")
    assert r.body == b"" and r.header("x-next-offset") == "18"
    assert get(env, base + "flaky/logs?try=1").text.startswith("first try")
    assert get(env, base + "flaky/logs?try=2").text.startswith("second try")
    assert get(env, base + "flaky/logs").text.startswith("second try")  # the latest
    assert get(env, base + "m%5B1%5D/logs").text == "item y\n"
    check_problem(get(env, base + "flaky/logs?try=3"), 404)
    check_problem(get(env, base + "flaky/logs?try=0"), 400)
    check_problem(get(env, base + "flaky/logs?offset=-1"), 400)
    check_problem(get(env, base + "nope/logs"), 404)


def test_logs_of_a_home_from_an_earlier_baram(env):
    """Logs in the layout of an earlier baram (<task>/<try>.log, mapped <task>.<index>/...)
    are still served; the flat file wins when both exist."""
    b, rid = env["b"], env["runs"][2]
    obj = {"dag": "hello", "run_id": rid}
    for task, folder in (("a", "a"), ("m[1]", "m.1"), ("flaky", "flaky")):
        (b.run_dir(obj) / folder).mkdir()
        b.try_log(obj, task).rename(b.run_dir(obj) / folder / "1.log")
    base = run_path(env, 2) + "/tasks/"
    assert get(env, base + "a/logs").text == "line one\nline two\n"
    assert get(env, base + "m%5B1%5D/logs").text == "item y\n"
    assert get(env, base + "flaky/logs?try=1").text == "second try\n"  # the marker was there
    (b.run_dir(obj) / "a.1.log").write_text("flat\n")
    assert get(env, base + "a/logs").text == "flat\n"


def test_logs_come_in_1mib_chunks(env):
    path = "/api/v1/dags/other/runs/%s/tasks/big/logs" % env["big_run"]
    r = get(env, path)
    assert r.status == 200 and len(r.body) == 1024 * 1024, r.status
    nxt = int(r.header("x-next-offset"))
    assert nxt == 1024 * 1024
    r2 = get(env, path + "?offset=%d" % nxt)
    assert len(r2.body) == BIG_LOG - nxt and int(r2.header("x-next-offset")) == BIG_LOG
    assert set(r.body + r2.body) == {ord("x")}


def test_pools_and_workers(env):
    o = ok_json(get(env, "/api/v1/pools"))
    by = {p["name"]: p for p in o["pools"]}
    assert set(by) == {"default", "etl"} and o["total_entries"] == 2
    assert by["etl"]["slots"] == 3 and by["etl"]["running"] == 0 and by["etl"]["source"] == "store"
    assert by["default"]["slots"] == 128 and by["default"]["source"] == "default"
    assert by["default"]["updated_at"] is None and by["etl"]["updated_at"].endswith("Z")
    page = ok_json(get(env, "/api/v1/pools?limit=1&offset=1"))
    assert len(page["pools"]) == 1 and page["total_entries"] == 2
    # record_dags ran `baram standalone` once: its registry row, stopped, as the CLI shows it
    # (on PostgreSQL also the row of its in-process worker, SPEC section 12)
    o = ok_json(get(env, "/api/v1/workers"))
    nrows = 2 if ON_PG else 1
    assert o["total_entries"] == nrows and len(o["workers"]) == nrows, o
    w = o["workers"][0]
    assert set(w) == {"name", "role", "hostname", "pid", "queues", "slots", "running", "state",
                      "started_at", "heartbeat_at"}
    assert w["role"] == "scheduler" and w["state"] == "stopped" and w["running"] == 0
    assert w["name"] == "%s:%d" % (w["hostname"], w["pid"]) and w["queues"] == ["default"]
    assert w["started_at"].endswith("Z") and w["heartbeat_at"] >= w["started_at"]
    if ON_PG:
        wk = o["workers"][1]
        assert wk["role"] == "worker" and wk["state"] == "stopped" and wk["running"] == 0, wk
        assert wk["pid"] == w["pid"] and wk["queues"] == ["default"], wk
    cli = env["b"]("workers", "list", "--json")
    assert cli.rc == 0 and cli.json == {"workers": o["workers"]}, cli
    assert ok_json(get(env, "/api/v1/workers?offset=%d" % nrows)) == \
        {"workers": [], "total_entries": nrows}


# ---- bad input ----

@pytest.mark.parametrize("bad", ["-1", "0", "1000000000", "abc", "", "1.5", "10001", "%00"])
def test_bad_limit_is_400(env, bad):
    for route in LIST_ROUTES + ["/api/v1/dags/hello/runs", run_path(env) + "/tasks"]:
        p = check_problem(get(env, "%s?limit=%s" % (route, bad)), 400)
        assert "limit" in p["detail"]
    check_problem(get(env, "/api/v1/dags?offset=-1"), 400)
    check_problem(get(env, "/api/v1/dags?offset=x"), 400)


TRAVERSAL = ["..", ".", "%2e%2e", "%2E%2E", "..%2F..%2Fsecret.key", "%2e%2e%2fsecret.key",
             "a%2Fb", "a%00b", "%00", "%ff", "%c0%ae%c0%ae", "a%zz", "%", "x" * 300]


@pytest.mark.parametrize("seg", TRAVERSAL)
def test_path_traversal_in_every_segment_is_400(env, seg):
    rid, task = env["runs"][0], "a"
    templates = ["/api/v1/dags/{}", "/api/v1/dags/{}/graph", "/api/v1/dags/{}/runs",
                 "/api/v1/dags/hello/runs/{}", "/api/v1/dags/{}/runs/%s" % rid,
                 "/api/v1/dags/hello/runs/{}/tasks",
                 "/api/v1/dags/hello/runs/%s/tasks/{}" % rid,
                 "/api/v1/dags/{}/runs/%s/tasks/%s/logs" % (rid, task),
                 "/api/v1/dags/hello/runs/{}/tasks/%s/logs" % task,
                 "/api/v1/dags/hello/runs/%s/tasks/{}/logs" % rid]
    for t in templates:
        r = get(env, t.replace("{}", seg))
        check_problem(r, 400)
        assert b"secret" not in r.body or seg.endswith("secret.key"), r


def test_secret_key_is_never_served(env):
    key = (env["b"].home / "secret.key").read_text().strip()
    rid = env["runs"][0]
    for path in ["/api/v1/dags/hello/runs/%s/tasks/..%%2F..%%2F..%%2F..%%2Fsecret.key/logs" % rid,
                 "/api/v1/dags/hello/runs/%s/tasks/a/logs/../../../../secret.key" % rid,
                 "/api/v1/dags/hello/runs/%s/tasks/../../../../secret.key/logs" % rid,
                 "/api/v1/../../secret.key"]:
        r = get(env, path)
        assert r.status in (400, 404), r
        assert key.encode() not in r.body


def test_unauthenticated_traversal_gets_no_further_than_401(env):
    rid = env["runs"][0]
    r = get(env, "/api/v1/dags/hello/runs/%s/tasks/..%%2F..%%2Fsecret.key/logs" % rid, who=None)
    check_problem(r, 401)


# ---- the command ----

def test_api_needs_an_initialised_home(tmp_path):
    from conftest import Baram
    (tmp_path / "dags").mkdir()
    b = Baram(tmp_path / "home", tmp_path / "dags")
    r = b("api", "--listen", "127.0.0.1:0", timeout=20)
    assert r.rc == 1, r
    assert "baram init" in r.err or "database" in r.err, r


def test_api_rejects_a_bad_listen_address_and_a_taken_port(env):
    b = env["b"]
    r = b("api", "--listen", "nowhere", timeout=20)
    assert r.rc == 1 and "listen" in r.err, r
    r = b("api", "--listen", "127.0.0.1:%d" % env["srv"].port, timeout=20)
    assert r.rc == 1 and "cannot listen" in r.err, r


def test_api_stops_on_sigterm_and_logs_no_token(env):
    """Last: stops the module's server, then reads its whole log."""
    srv = env["srv"]
    assert srv.stop() == 0
    log = srv.log()
    # 4xx are logged at info; a busy API's 2xx only at debug (not in this log)
    assert 'msg=request method=GET path=/api/v1/dags status=200' not in log, log[-2000:]
    assert "status=401" in log and "status=413" in log, [x for x in log.split("\n")
                                                          if "status=4" in x]
    for secret in (env["admin"], env["viewer"], env["viewer"].split(".")[2],
                   (env["b"].home / "secret.key").read_text().strip()):
        assert secret not in log
    assert "Bearer" not in log and "Authorization" not in log
    assert "limit=" not in log  # query strings are not logged


def test_a_dag_that_never_ran_has_its_graph_and_tasks(tmp_path):
    """The scheduler records each DAG's version when it loads the file, so the UI can draw a
    DAG before its first run."""
    b = make_home(tmp_path)
    b.write("fresh.yaml", """
        dag: fresh
        tasks:
          a: {run: 'true'}
          b: {run: 'true', needs: [a]}
        """)
    record_dags(b, tmp_path / "standalone.log")
    srv = ApiServer(b, tmp_path / "api.log").start()
    try:
        tok = token(b, "admin")
        r = srv.get("/api/v1/dags/fresh/graph", token=tok)
        assert r.status == 200, r
        g = r.json
        assert {n["id"]: n["layer"] for n in g["nodes"]} == {"a": 0, "b": 1}
        r = srv.get("/api/v1/dags/fresh", token=tok)
        assert [t["name"] for t in r.json["tasks"]] == ["a", "b"], r
        assert r.json["recent_runs"] == [] and r.json["last_run"] is None
    finally:
        alive_cleanup([srv])
