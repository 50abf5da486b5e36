"""Typed params (SPEC section 13): a param written as a mapping {type, enum, minimum,
maximum, pattern, description, default} is checked at every door a run is made through:
the API (POST /api/v1/dags/{dag}/runs -> 400 naming the param and the rule), `baram dags
trigger --conf` and `baram run --param` (exit 2; command-line text converted to the type).
A run records its conf with the types, its tasks see the values as text, and GET
/api/v1/dags/{dag} gives each param's schema (params_schema) for the UI's trigger form while
`params` keeps its old shape (name -> default).

One `baram standalone` (scheduler, worker and API) for the module.
"""

import json

import pytest

from api_util import ApiServer, check_problem, free_port, make_home, token
from conftest import db_query, try_log_path
from daemon_util import Daemon, poll, wait_run

TYPED = """
dag: typed
params:
  limit: {type: integer, default: 100, minimum: 1, maximum: 1000, description: Rows per batch}
  mode: {type: string, enum: [fast, slow], default: fast}
  day: {type: string, pattern: '^[0-9]{4}-[0-9]{2}$', default: "2026-01"}
  dry: {type: boolean, default: false}
  tags: {type: array, default: [a, b]}
  region: eu
tasks:
  show:
    run: "echo limit={{ params.limit }} mode=$PARAM_MODE dry={{ params.dry }} tags={{ params.tags }}"
"""


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("ptyped")
    b = make_home(root)
    b.env["BARAM_DAGS"] = str(b.dags)
    b.write("typed.yaml", TYPED)
    port = free_port()
    d = Daemon(b, ["--listen", "127.0.0.1:%d" % port], root / "standalone.log")
    d.start()
    try:
        d.wait_log("api listening")
        srv = ApiServer(b, root / "unused.log")  # only its client: the standalone serves
        srv.port = port
        yield b, d, srv, token(b, "admin")
    finally:
        if d.alive():
            assert d.stop() == 0, d.log()


def runs(b):
    return db_query(b, "SELECT run_id FROM runs WHERE dag_id = 'typed'")


def test_the_dag_object_gives_each_params_schema(env):
    b, d, srv, tok = env
    r = srv.get("/api/v1/dags/typed", token=tok)
    assert r.status == 200, r
    o = r.json
    # the old shape stays: name -> default, as text
    assert o["params"] == {"limit": "100", "mode": "fast", "day": "2026-01", "dry": "false",
                           "tags": '["a","b"]', "region": "eu"}
    s = o["params_schema"]
    assert s["limit"] == {"type": "integer", "default": 100, "minimum": 1, "maximum": 1000,
                          "description": "Rows per batch"}
    assert s["mode"] == {"type": "string", "default": "fast", "enum": ["fast", "slow"]}
    assert s["day"]["pattern"] == "^[0-9]{4}-[0-9]{2}$"
    assert s["dry"] == {"type": "boolean", "default": False}
    assert s["tags"] == {"type": "array", "default": ["a", "b"]}
    assert s["region"] == {"default": "eu"}
    # `baram dags show --json` says the same
    r = b("dags", "show", "typed", "--json")
    assert r.rc == 0, r
    assert r.json["params_schema"] == s and r.json["params"] == o["params"]


@pytest.mark.parametrize("conf,msg", [
    ({"limit": 0}, "param 'limit': 0 is less than the minimum 1"),
    ({"limit": 1001}, "param 'limit': 1001 is greater than the maximum 1000"),
    ({"limit": "5"}, "param 'limit': \"5\" is not an integer"),
    ({"limit": 2.5}, "param 'limit': 2.5 is not an integer"),
    ({"mode": "medium"}, "param 'mode': \"medium\" is not one of [\"fast\",\"slow\"]"),
    ({"day": "26-1"}, "param 'day': \"26-1\" does not match the pattern"),
    ({"dry": "yes"}, "param 'dry': \"yes\" is not a boolean"),
    ({"tags": {"a": 1}}, "param 'tags': {\"a\":1} is not an array"),
    ({"region": [1]}, "conf param 'region' must be a string, number or boolean, not an array"),
    ({"limt": 5}, "unknown param 'limt'"),
    ({"limit": "x" * 100000}, "is not an integer"),
])
def test_the_api_refuses_a_value_its_schema_refuses(env, conf, msg):
    b, d, srv, tok = env
    before = runs(b)
    p = check_problem(srv.request("POST", "/api/v1/dags/typed/runs", token=tok,
                                  body={"conf": conf}), 400)
    assert msg in p["detail"], p
    assert len(p["detail"]) < 400, p
    assert runs(b) == before


def test_a_run_gets_its_conf_with_the_types_and_its_tasks_the_text(env):
    b, d, srv, tok = env
    r = srv.request("POST", "/api/v1/dags/typed/runs", token=tok,
                    body={"conf": {"limit": 5, "dry": True, "tags": ["x", 1], "mode": "slow",
                                   "region": 7}})
    assert r.status == 201, r
    run_id = r.json["run_id"]
    o = wait_run(b, run_id, daemon=d)
    assert o["state"] == "success", o
    got = srv.get("/api/v1/dags/typed/runs/" + run_id, token=tok).json
    # typed params keep their types; an untyped one is recorded as text, as before
    assert got["conf"] == {"limit": 5, "dry": True, "tags": ["x", 1], "mode": "slow",
                           "region": "7"}
    log = try_log_path(b.home, "typed", run_id, "show").read_text()
    assert 'limit=5 mode=slow dry=true tags=["x",1]' in log, log


def test_dags_trigger_checks_its_conf(env):
    b, d, srv, tok = env
    before = runs(b)
    r = b("dags", "trigger", "typed", "--conf", '{"limit": -1}')
    assert r.rc == 2 and "param 'limit': -1 is less than the minimum 1" in r.err, r
    r = b("dags", "trigger", "typed", "--conf", '{"mode": 1}')
    assert r.rc == 2 and "param 'mode': 1 is not a string" in r.err, r
    assert runs(b) == before
    r = b("dags", "trigger", "typed", "--conf", '{"limit": 7.0, "tags": []}', "--json")
    assert r.rc == 0, r
    conf = db_query(b, "SELECT conf FROM runs WHERE run_id = ?", r.json["run_id"])[0][0]
    assert json.loads(conf) == {"limit": 7, "tags": []}
    wait_run(b, r.json["run_id"], daemon=d)


def test_baram_run_converts_command_line_text_to_the_type(env, tmp_path):
    b, d, srv, tok = env
    path = b.dags / "typed.yaml"
    for arg, msg in [("limit=abc", "param 'limit': \"abc\" is not an integer"),
                     ("limit=0", "param 'limit': 0 is less than the minimum 1"),
                     ("dry=maybe", "param 'dry': \"maybe\" is not a boolean"),
                     ("tags=[1", "param 'tags': \"[1\" is not an array"),
                     ("mode=\udcff", "param 'mode': the value is not valid UTF-8")]:
        r = b("run", path, "--param", arg)
        assert r.rc == 2 and msg in r.err, (arg, r)
    r = b("run", path, "--param", "limit=42", "--param", "dry=true", "--param", "tags=[]",
          "--json")
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    conf = db_query(b, "SELECT conf FROM runs WHERE run_id = ?", run_id)[0][0]
    assert json.loads(conf) == {"limit": 42, "dry": True, "tags": []}
    assert poll(lambda: "limit=42 mode=fast dry=true tags=[]" in
                try_log_path(b.home, "typed", run_id, "show").read_text())


def test_a_bad_schema_is_an_import_error_with_its_line(env, tmp_path):
    b, d, srv, tok = env
    bad = tmp_path / "bad.yaml"
    bad.write_text("dag: bad\nparams:\n  n: {type: integer, default: 0, minimum: 1}\n"
                   "  m: {type: strng}\ntasks:\n  a: {run: 'true'}\n")
    r = b("dags", "validate", bad)
    assert r.rc != 0, r
    assert "bad.yaml:3:31: error: bad default: param 'n': 0 is less than the minimum 1" in \
        r.out + r.err, r
    assert "bad.yaml:4:13: error: param 'm': unknown type 'strng' (did you mean 'string'?)" in \
        r.out + r.err, r
