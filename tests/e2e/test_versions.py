"""DAG versions (SPEC section 13): `baram dags versions`, GET /api/v1/dags/{dag}/versions and
.../versions/{hash}, and a run's graph drawn from its own version (?run=, ?hash=).

One home for the module: DAG "hello" run once, then edited (a task removed, a command
changed) and run twice more; DAG "other" run once. One `baram api` serves every test.
"""

import json

import pytest

from api_util import ApiServer, alive_cleanup, check_problem, make_home, token
from conftest import db_query

V1 = """
    dag: hello
    tasks:
      a:
        run: echo one
      gone:
        needs: [a]
        run: echo gone
    """
V2 = """
    dag: hello
    tasks:
      a:
        run: echo two
    """


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("versions")
    b = make_home(root)
    b.write("other.yaml", "dag: other\ntasks:\n  x: {run: echo x}\n")
    p = b.write("hello.yaml", V1)
    v1_src = p.read_text()
    old = b.run_json(p)["run_id"]
    p = b.write("hello.yaml", V2)
    v2_src = p.read_text()
    new = [b.run_json(p)["run_id"] for _ in range(2)]
    other = b.run_json(b.dags / "other.yaml")["run_id"]
    hashes = dict(db_query(b, "SELECT run_id, dag_hash FROM runs"))
    srv = ApiServer(b, root / "api.log").start()
    e = {"b": b, "srv": srv, "old": old, "new": new, "other": other, "v1": hashes[old],
         "v2": hashes[new[0]], "other_hash": hashes[other], "v1_src": v1_src, "v2_src": v2_src,
         "viewer": token(b, "admin")}
    yield e
    alive_cleanup([srv])


def get(env, path, tok=True):
    return env["srv"].get(path, token=env["viewer"] if tok else None)


def test_cli_lists_versions_newest_first(env):
    b = env["b"]
    r = b("dags", "versions", "hello", "--json")
    assert r.rc == 0, r
    o = r.json
    assert o["dag_id"] == "hello"
    assert [v["hash"] for v in o["versions"]] == [env["v2"], env["v1"]], o
    assert [v["runs"] for v in o["versions"]] == [2, 1], o
    for v in o["versions"]:
        assert v["created_at"].endswith("Z") and v["first_run_at"].endswith("Z"), v
        assert v["current"] is False, v  # no scheduler has loaded the folder
    r = b("dags", "versions", "hello")
    assert r.rc == 0, r
    lines = r.out.splitlines()
    assert lines[0].split() == ["VERSION", "FIRST", "SEEN", "FIRST", "RUN", "RUNS"], r.out
    assert lines[1].split()[0] == env["v2"][:16] and lines[1].split()[-1] == "2", r.out
    assert lines[2].split()[0] == env["v1"][:16] and lines[2].split()[-1] == "1", r.out


def test_cli_versions_bad_input(env):
    b = env["b"]
    r = b("dags", "versions", "helo")
    assert r.rc == 2 and "no DAG 'helo'" in r.err and "did you mean" in r.err, r
    r = b("dags", "versions")
    assert r.rc == 2 and "expected a DAG id" in r.err, r
    r = b("dags", "versions", "hello", "--jsn")
    assert r.rc == 2 and "--json" in r.err, r
    r = b("dags", "versions", "--help")
    assert r.rc == 0 and "usage: baram dags versions" in r.out, r
    r = b("dags", "verions", "hello")
    assert r.rc == 2 and "did you mean 'versions'" in r.err, r


def test_api_versions_match_the_cli(env):
    r = get(env, "/api/v1/dags/hello/versions")
    assert r.status == 200, r
    cli = env["b"]("dags", "versions", "hello", "--json").json
    assert r.json == cli
    check_problem(get(env, "/api/v1/dags/nope/versions"), 404)
    check_problem(get(env, "/api/v1/dags/hello/versions", tok=False), 401)


def test_api_version_source(env):
    for h, src in ((env["v1"], env["v1_src"]), (env["v2"], env["v2_src"])):
        r = get(env, "/api/v1/dags/hello/versions/" + h)
        assert r.status == 200, r
        assert r.json == {"dag_id": "hello", "hash": h, "source": src}
    # another DAG's version, an unknown one, a malformed one, a huge one: 404 each
    for h in (env["other_hash"], "0" * 64, "ZZ", "a" * 200, env["v1"].upper()):
        check_problem(get(env, "/api/v1/dags/hello/versions/" + h), 404)
    # bytes that are no name at all, or longer than any segment: the server's 400
    for h in ("%ff%fe", "a" * 5000):
        check_problem(get(env, "/api/v1/dags/hello/versions/" + h), 400)
    check_problem(get(env, "/api/v1/dags/nope/versions/" + env["v1"]), 404)
    check_problem(get(env, "/api/v1/dags/hello/versions/" + env["v1"], tok=False), 401)


def nodes(r):
    assert r.status == 200, r
    return sorted(n["id"] for n in r.json["nodes"])


def test_graph_of_a_run_is_drawn_from_its_version(env):
    g = "/api/v1/dags/hello/graph"
    assert nodes(get(env, g + "?run=" + env["old"])) == ["a", "gone"]
    assert get(env, g + "?run=" + env["old"]).json["hash"] == env["v1"]
    # the runs list names each run's version, so a client knows which graph it needs
    runs = get(env, "/api/v1/dags/hello/runs").json["runs"]
    assert {r["run_id"]: r["hash"] for r in runs} == {env["old"]: env["v1"], env["new"][0]: env["v2"],
                                                      env["new"][1]: env["v2"]}
    assert nodes(get(env, g + "?run=" + env["new"][0])) == ["a"]
    assert nodes(get(env, g + "?hash=" + env["v1"])) == ["a", "gone"]
    assert nodes(get(env, g)) == ["a"]  # no scheduler: the newest run's version
    check_problem(get(env, g + "?run=%s&hash=%s" % (env["old"], env["v1"])), 400)
    check_problem(get(env, g + "?hash=xyz"), 400)
    check_problem(get(env, g + "?run=" + "r" * 500), 400)
    check_problem(get(env, g + "?hash=" + env["other_hash"]), 404)
    check_problem(get(env, g + "?run=" + env["other"]), 404)  # another DAG's run
    check_problem(get(env, g + "?run=nope"), 404)
    # a run whose version was never stored (written before versions were): the DAG's current
    # graph, its hash saying which one (a 404 would break the DAG page of such a run)
    rid = env["old"]
    db_query(env["b"], "UPDATE runs SET dag_hash = ? WHERE run_id = ?", "0" * 64, rid)
    try:
        o = get(env, g + "?run=" + rid).json
        assert [n["id"] for n in o["nodes"]] == ["a"] and o["hash"] == env["v2"], o
    finally:
        db_query(env["b"], "UPDATE runs SET dag_hash = ? WHERE run_id = ?", env["v1"], rid)


def test_openapi_documents_the_routes(env):
    doc = get(env, "/api/v1/openapi.json", tok=False).json
    assert "/api/v1/dags/{dag}/versions" in doc["paths"]
    assert "/api/v1/dags/{dag}/versions/{hash}" in doc["paths"]
    names = {p["name"] for p in doc["paths"]["/api/v1/dags/{dag}/graph"]["get"]["parameters"]}
    assert {"run", "hash"} <= names
