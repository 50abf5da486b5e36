"""Per-task `env` and `dir` (SPEC section 13), through `baram run` on both
backends (on PostgreSQL the try runs from its spec on a worker, so both travel
in it): a task's env is templated, added to the DAG's and overrides the same
names (the DAG's and the inherited environment's); `dir` is its working folder,
relative to the DAG file's folder or absolute; a missing one fails the try
with a message naming it.
"""

import os

import pytest

from api_util import free_port
from conftest import try_log_path
from daemon_util import daemons, trigger, wait_run  # noqa: F401  (daemons: a fixture)


@pytest.fixture
def b(baram):
    return baram

DAG = """
    dag: envdir
    env: {SHARED: from-dag, KEEP: dag-keep}
    tasks:
      a:
        run: echo "A=$SHARED|$KEEP|$TOK|$WHO|$LANG_X|$(pwd)"
        env: {SHARED: "task-{{ ds }}", TOK: t1, WHO: "{{ dag }}", LANG_X: "{{ params.x }}"}
        dir: scripts
      b:
        needs: [a]
        run: echo "B=$SHARED|$TOK|$(pwd)"
      c:
        needs: [a]
        run: echo "C=$TZT_INHERITED|$(env | grep -c '^TZT_INHERITED=')|$(pwd)"
        env: {TZT_INHERITED: inner}
        dir: ABSDIR
      d:
        run: echo "D=$TZT_INHERITED"
      e:
        run: echo never
        dir: not/there
    params: {x: px}
"""


def test_task_env_and_dir_reach_the_try(b, tmp_path, daemons):
    """Through `baram standalone`: on PostgreSQL its in-process worker runs each try from the
    spec the scheduler wrote."""
    (b.dags / "scripts").mkdir()
    absdir = tmp_path / "abs"
    absdir.mkdir()
    b.write("envdir.yaml", DAG.replace("ABSDIR", str(absdir)))
    b.env.update(TZT_INHERITED="outer", BARAM_DAGS=str(b.dags))
    d = daemons(b, "--listen", "127.0.0.1:%d" % free_port())
    run_id = trigger(b, "envdir", "--date", "2026-03-29")
    obj = wait_run(b, run_id, daemon=d)
    assert obj["state"] == "failed", obj  # e only
    assert {t: v["state"] for t, v in obj["tasks"].items()} == {
        "a": "success", "b": "success", "c": "success", "d": "success", "e": "failed"}, obj
    log = lambda t: try_log_path(b.home, "envdir", run_id, t).read_text()  # noqa: E731
    a = log("a")
    assert ("A=task-2026-03-29|dag-keep|t1|envdir|px|%s" % os.path.realpath(b.dags / "scripts")) \
        in a, a
    assert "B=from-dag||%s" % os.path.realpath(b.dags) in log("b"), log("b")
    # one value of the name, the task's, over the one inherited from the daemon
    assert "C=inner|1|%s" % absdir in log("c"), log("c")
    assert "D=outer" in log("d"), log("d")
    want = "working folder '%s/not/there' does not exist" % os.path.realpath(b.dags)
    assert want in log("e"), log("e")


def test_a_missing_dir_fails_the_try_with_its_name(b):
    p = b.write("nodir.yaml", """
        dag: nodir
        tasks:
          a:
            run: echo never
            dir: not/there
    """)
    r = b("run", p)
    assert r.rc == 1, r
    want = "working folder '%s/not/there' does not exist" % os.path.realpath(b.dags)
    assert want in r.out + r.err, r


def test_bad_env_and_dir_are_reported(b):
    p = b.write("bad.yaml", """
        dag: bad
        defaults: {dir: x}
        tasks:
          a:
            run: echo
            env: {BARAM_X: "1", "9bad": v, OK: "{{ nope }}"}
            dir: [1]
    """)
    r = b("run", p)
    assert r.rc == 2, r
    for m in ("env 'BARAM_X' is baram's own", "bad env name '9bad'", "'dir' must be a string",
              "nope"):
        assert m in r.err, (m, r.err)
    assert "bad.yaml:2:" in r.err and "'dir'" in r.err, r.err
