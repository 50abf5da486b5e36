"""--json, and the durable records of a run: runs list/show/profile, logs,
tasks test, hooks (SPEC section 3)."""

import json
import re
import time

import pytest

from conftest import check_run_shape, db_query, parse_ts, states, wait_for

SIMPLE = """
dag: simple
tasks:
  first:
    run: echo "hello from first"; printf out1 > "$BARAM_OUTPUT"
  second:
    needs: [first]
    run: echo "hello from second"
"""


def test_json_shape(baram):
    p = baram.write("simple.yaml", SIMPLE)
    before = time.time()
    obj = baram.run_json(p)
    after = time.time()
    assert obj["dag"] == "simple"
    assert obj["state"] == "success"
    assert set(obj["tasks"]) == {"first", "second"}
    for name, t in obj["tasks"].items():
        assert t["state"] == "success" and t["tries"] == 1 and t["exit_code"] == 0, t
        assert before - 1 <= parse_ts(t["started_at"]) <= parse_ts(t["ended_at"]) <= after + 1
        assert abs(t["duration_s"] - (parse_ts(t["ended_at"]) - parse_ts(t["started_at"]))) < 0.01
    assert obj["tasks"]["first"]["output"] == "out1"
    assert obj["tasks"]["second"]["output"] in ("", None)
    assert before - 1 <= parse_ts(obj["started_at"]) <= parse_ts(obj["ended_at"]) <= after + 1
    # the run_id is manual__ + an ISO time near now
    stamp = obj["run_id"][len("manual__"):]
    assert abs(parse_ts(stamp) - before) < 5, obj["run_id"]


def test_json_on_failure_exit_1(baram):
    p = baram.write("f.yaml", """
        dag: f
        tasks:
          boom: {run: "exit 7"}
        """)
    obj = baram.run_json(p, expect_rc=1)
    assert obj["state"] == "failed"
    t = obj["tasks"]["boom"]
    assert t["state"] == "failed" and t["exit_code"] == 7 and t["tries"] == 1, t


def test_runs_show_json_same_object(baram):
    p = baram.write("simple.yaml", SIMPLE)
    obj = baram.run_json(p)
    r = baram("runs", "show", obj["run_id"], "--json")
    assert r.rc == 0, r
    shown = r.json
    check_run_shape(shown)
    assert shown == obj


def test_every_json_list_is_an_object(baram):
    """Every --json list prints one object holding its list under a name, as the API does."""
    assert baram("init", env={"BARAM_ADMIN_PASSWORD": "s3cret-pass"}).rc == 0
    p = baram.write("simple.yaml", SIMPLE)
    baram.write("broken.yaml", "dag: broken\ntasks:\n  x: {run: 'true', retires: 1}\n")
    run = baram.run_json(p)
    env = {"BARAM_DAGS": str(baram.dags)}
    for cmd, key in ((["runs", "list"], "runs"), (["runs", "list", "simple"], "runs"),
                     (["dags", "list"], "dags"), (["pools", "list"], "pools"),
                     (["users", "list"], "users"), (["dags", "validate", p], "files")):
        r = baram(*cmd, "--json", env=env)
        assert r.rc == 0, r
        obj = r.json
        assert isinstance(obj[key], list) and obj[key], (cmd, obj)
    assert [x["run_id"] for x in baram("runs", "list", "--json").json["runs"]] == [run["run_id"]]
    assert baram("runs", "list", "--json").json["total_entries"] == 1
    # a file with errors: still one object, exit 1; its errors under dags list's import_errors
    r = baram("dags", "validate", baram.dags / "broken.yaml", "--json")
    assert r.rc == 1 and [f["dag"] for f in r.json["files"]] == [None], r
    assert [e["file"] for e in baram("dags", "list", "--json", env=env).json["import_errors"]] \
        == [str(baram.dags / "broken.yaml")]


def test_runs_show_unknown_run(baram):
    p = baram.write("simple.yaml", SIMPLE)
    baram.run_json(p)
    r = baram("runs", "show", "manual__1999-01-01T00:00:00.000Z")
    assert r.rc == 2, r  # a usage error: the run named does not exist
    assert "no run 'manual__1999-01-01T00:00:00.000Z'" in r.err, r


def test_runs_list_and_show_human(baram):
    p = baram.write("simple.yaml", SIMPLE)
    a = baram.run_json(p)
    b = baram.run_json(p)
    assert a["run_id"] != b["run_id"]
    ids = baram.run_ids()
    assert a["run_id"] in ids and b["run_id"] in ids, ids
    assert set(baram.run_ids("simple")) == set(ids)
    r = baram("runs", "list", "nosuchdag")
    assert "manual__" not in r.out, r
    r = baram("runs", "show", a["run_id"])
    assert r.rc == 0, r
    assert "first" in r.out and "second" in r.out and "success" in r.out, r


def test_runs_profile_critical_path(baram):
    p = baram.write("prof.yaml", """
        dag: prof
        tasks:
          extract: {run: sleep 0.1}
          slowpart: {run: sleep 0.6, needs: [extract]}
          quickpart: {run: sleep 0.1, needs: [extract]}
        """)
    obj = baram.run_json(p, "--parallelism", "4")
    r = baram("runs", "profile", obj["run_id"])
    assert r.rc == 0, r
    assert re.search(r"critical", r.out, re.I), r
    # "extract -> slowpart", each name maybe followed by its time in parentheses
    assert re.search(r"\bextract\b(\s*\([^)]*\))?\s*(->|→)\s*slowpart\b", r.out), r
    assert not re.search(r"(->|→)\s*quickpart\b", r.out), r
    assert re.search(r"parallelism", r.out, re.I), r
    assert "quickpart" in r.out  # every task's wait and run time
    r = baram("runs", "profile", "manual__1999-01-01T00:00:00.000Z")
    assert r.rc == 2 and "no run" in r.err, r


def test_runs_profile_of_a_running_run_is_so_far(baram):
    gate = baram.dags / "gate"
    p = baram.write("going.yaml", f"""
        dag: going
        tasks:
          first: {{run: sleep 0.2}}
          left: {{run: "while [ ! -e {gate} ]; do sleep 0.05; done", needs: [first]}}
          right: {{run: "while [ ! -e {gate} ]; do sleep 0.05; done", needs: [first]}}
        """)
    proc = baram.popen("run", p, "--parallelism", "4")
    try:
        def both_running():
            r = baram("runs", "list", "--json")
            runs = r.json["runs"] if r.rc == 0 and r.out.strip() else []
            if not runs:
                return None
            o = baram("runs", "show", runs[0]["run_id"], "--json").json
            return o if [o["tasks"][t]["state"] for t in ("left", "right")] == \
                ["running", "running"] else None
        assert wait_for(both_running, 30), baram("runs", "list").out
        run_id = both_running()["run_id"]
        time.sleep(0.3)  # both have run a while
        r = baram("runs", "profile", run_id, "--json")
        assert r.rc == 0, r
        o = r.json
        assert o["state"] == "running" and o["in_progress"] is True, o
        assert o["wall_s"] >= 0.5, o  # first's 0.2 s, then the two running 0.3 s and more
        assert o["parallelism"]["max"] == 2 and o["parallelism"]["average"] > 0, o
        for t in ("left", "right"):
            assert o["tasks"][t]["state"] == "running" and o["tasks"][t]["run_s"] >= 0.3, o
        r = baram("runs", "profile", run_id)
        assert r.rc == 0, r
        assert re.search(r"running, wall \d+\.\d+s so far", r.out), r
        assert "still running" in r.out and "max 2 at once" in r.out, r
    finally:
        gate.touch()
        proc.communicate(timeout=60)
    assert proc.returncode == 0
    o = baram("runs", "profile", run_id, "--json").json
    assert o["state"] == "success" and o["in_progress"] is False, o
    assert "so far" not in baram("runs", "profile", run_id).out


def test_logs(baram):
    p = baram.write("logs.yaml", """
        dag: logs
        tasks:
          talker:
            retries: 1
            run: |
              echo "line one of try $BARAM_TRY"
              echo "line two on stderr" >&2
              [ "$BARAM_TRY" = 2 ]
        """)
    obj = baram.run_json(p)
    rid = obj["run_id"]
    r = baram("logs", rid, "talker")
    assert r.rc == 0, r
    assert "line one of try 2" in r.out and "line two on stderr" in r.out, r
    r = baram("logs", rid, "talker", "--try", "1")
    assert r.rc == 0, r
    assert "line one of try 1" in r.out and "try 2" not in r.out, r
    r = baram("logs", rid, "nosuchtask")
    assert r.rc == 2, r
    r = baram("logs", rid, "talker", "--try", "9")
    assert r.rc != 0, r


def test_logs_of_a_home_from_an_earlier_baram(baram):
    """A home made by an earlier baram keeps a try's log in <task>/<try>.log (mapped:
    <task>.<index>/<try>.log): `baram logs` still finds it there."""
    p = baram.write("oldlogs.yaml", """
        dag: oldlogs
        tasks:
          t:
            run: echo from t
          m:
            for_each: [x, y]
            run: echo item {{ item }}
        """)
    obj = baram.run_json(p)
    for task, folder in (("t", "t"), ("m[1]", "m.1")):
        flat = baram.try_log(obj, task)
        old = baram.run_dir(obj) / folder / "1.log"
        old.parent.mkdir()
        flat.rename(old)
    r = baram("logs", obj["run_id"], "t")
    assert r.rc == 0 and r.out == "from t\n", r
    r = baram("logs", obj["run_id"], "m[1]")
    assert r.rc == 0 and r.out == "item y\n", r


def test_tasks_test(baram):
    p = baram.write("tt.yaml", """
        dag: tt
        params: {who: world}
        tasks:
          greet: {run: 'echo "hello {{ params.who }} on {{ ds }}"'}
          broken: {run: 'echo "about to fail"; exit 3', needs: [greet]}
        """)
    r = baram("tasks", "test", p, "greet", "--date", "2026-05-06")
    assert r.rc == 0, r
    assert "hello world on 2026-05-06" in r.out + r.err, r
    r = baram("tasks", "test", p, "broken")
    assert r.rc == 1, r
    assert "about to fail" in r.out + r.err, r
    r = baram("tasks", "test", p, "nosuch")
    assert r.rc == 2, r
    # outside any run: nothing is recorded
    assert "manual__" not in baram("runs", "list").out


def test_tasks_test_says_why_a_task_cannot_run(baram):
    p = baram.write("ttm.yaml", """
        dag: ttm
        tasks:
          list: {run: 'echo a'}
          each: {needs: [list], for_each: '{{ outputs.list }}', run: 'echo {{ item }}'}
        """)
    r = baram("tasks", "test", p, "each")
    assert r.rc == 1, r
    assert r.err == ("baram tasks test: task 'each' could not run: cannot test a mapped task "
                     "whose items come from upstream outputs\n"), r


def hook_env(path):
    env = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition("=")
        env[k] = v
    return env


def test_hooks_on_success(baram):
    p = baram.write("hs.yaml", """
        dag: hs
        on_success: {run: 'env > success.env; echo "hook noise on stdout"'}
        on_failure: {run: 'env > failure.env'}
        tasks:
          a: {run: "true"}
        """)
    obj = baram.run_json(p)  # the hook's stdout must not break --json
    env = hook_env(baram.dags / "success.env")
    assert not (baram.dags / "failure.env").exists()
    assert env.get("BARAM_RUN_ID") == obj["run_id"], env
    assert env.get("BARAM_DAG") == "hs", env
    assert env.get("BARAM_RUN_STATE") == "success", env


def test_hooks_see_none_of_barams_own_settings(baram):
    """A hook, like a try, gets only the BARAM_* that describe its run: not baram's settings
    (BARAM_PASSWORD holds a user's password, BARAM_DB may hold a database's)."""
    p = baram.write("hsec.yaml", """
        dag: hsec
        on_success: {run: 'env > success.env'}
        tasks:
          a: {run: 'env > task.env'}
        """)
    r = baram("run", p, "--json", env={"BARAM_PASSWORD": "hunter2-secret", "BARAM_LOG_LEVEL": "warn"})
    assert r.rc == 0, r
    for name in ("success.env", "task.env"):
        env = hook_env(baram.dags / name)
        assert "BARAM_PASSWORD" not in env and "BARAM_LOG_LEVEL" not in env, (name, env)
        assert env.get("BARAM_DAG") == "hsec", (name, env)
        assert env.get("BARAM_HOME") is None, (name, env)


def test_hooks_on_failure(baram):
    p = baram.write("hf.yaml", """
        dag: hf
        on_success: {run: 'env > success.env'}
        on_failure: {run: 'env > failure.env'}
        tasks:
          a: {run: "exit 1"}
        """)
    obj = baram.run_json(p, expect_rc=1)
    assert not (baram.dags / "success.env").exists()
    env = hook_env(baram.dags / "failure.env")
    assert env.get("BARAM_RUN_ID") == obj["run_id"], env
    assert env.get("BARAM_RUN_STATE") == "failed", env


def test_hook_runs_after_tasks(baram):
    p = baram.write("ho.yaml", """
        dag: ho
        on_success: {run: 'cat order.txt > hook-saw.txt'}
        tasks:
          a: {run: "sleep 0.2; echo a >> order.txt"}
          b: {run: "echo b >> order.txt", needs: [a]}
        """)
    baram.run_json(p)
    assert (baram.dags / "hook-saw.txt").read_text() == "a\nb\n"


def test_json_states_every_task(baram):
    p = baram.write("three.yaml", """
        dag: three
        tasks:
          a: {run: "true"}
          b: {run: "exit 99"}
          c: {run: "exit 2"}
        """)
    obj = baram.run_json(p, expect_rc=1)
    assert states(obj) == {"a": "success", "b": "skipped", "c": "failed"}
    assert obj["tasks"]["b"]["exit_code"] == 99


def test_runs_show_json_same_object_complex_run(baram):
    p = baram.write("cx.yaml", """
        dag: cx
        tasks:
          ok:
            run: |
              printf '%s\\n' 'a "quoted" output' > "$BARAM_OUTPUT"
          skip: {run: 'exit 99'}
          bad: {run: 'echo oops >&2; exit 4', retries: 1}
          uf: {run: 'true', needs: [bad]}
          each: {for_each: [x, y], run: 'printf {{ item }} > "$BARAM_OUTPUT"', needs: [ok]}
          join: {run: 'true', needs: [each, skip], trigger: none_failed}
          done: {run: 'true', needs: [uf, join], trigger: all_done}
        """)
    obj = baram.run_json(p)
    assert states(obj) == {"ok": "success", "skip": "skipped", "bad": "failed",
                           "uf": "upstream_failed", "each[0]": "success",
                           "each[1]": "success", "join": "success", "done": "success"}
    assert obj["tasks"]["ok"]["output"] == 'a "quoted" output\n'
    assert obj["tasks"]["bad"]["tries"] == 2
    r = baram("runs", "show", obj["run_id"], "--json")
    assert r.rc == 0, r
    assert r.json == obj
    r = baram("runs", "show", obj["run_id"])
    assert r.rc == 0, r
    for name in obj["tasks"]:
        assert name in r.out, (name, r.out)


def test_logs_of_names_with_dots_inside(baram):
    # "a..b" is a valid DAG id and task name (one path component): its logs must be readable
    p = baram.write("dots.yaml", """
        dag: d..d
        tasks:
          a..b:
            run: echo "hello from a..b"
        """)
    obj = baram.run_json(p)
    r = baram("logs", obj["run_id"], "a..b")
    assert r.rc == 0, r
    assert "hello from a..b" in r.out, r
    for bad in ("..", ".", "x/y"):
        r = baram("logs", obj["run_id"], bad)
        assert r.rc == 2, r


def test_logs_follow_live(baram):
    p = baram.write("follow.yaml", """
        dag: follow
        tasks:
          talk: {run: 'echo first; touch started; sleep 1; echo second'}
        """)
    proc = baram.popen("run", p)
    try:
        assert wait_for(lambda: (baram.dags / "started").exists())
        ids = []
        assert wait_for(lambda: bool(ids.extend(baram.run_ids()) or ids), timeout=10)
        r = baram("logs", ids[0], "talk", "--follow", timeout=20)
        assert r.rc == 0, r
        assert r.out.split() == ["first", "second"], r  # waited for the try to end
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_failing_hook_does_not_change_the_run(baram):
    p = baram.write("hk.yaml", """
        dag: hk
        on_success: {run: 'echo from the hook; exit 3'}
        tasks:
          a: {run: "true"}
        """)
    obj = baram.run_json(p)  # exit 0: the run succeeded; the hook is an afterthought
    assert obj["state"] == "success"
    r = baram("runs", "show", obj["run_id"], "--json")
    assert r.json["state"] == "success"


def test_progress_on_a_terminal(baram):
    import os
    import pty
    import select
    import subprocess
    from conftest import BIN, TIMEOUT
    p = baram.write("tty.yaml", """
        dag: tty
        tasks:
          a: {run: "sleep 0.4"}
          b: {run: "exit 3", needs: [a]}
        """)
    master, slave = pty.openpty()
    # stdout a pipe (for --json), stderr a terminal (for progress)
    proc = subprocess.Popen([BIN, "run", str(p), "--json"], cwd=str(baram.dags), env=baram.env,
                            stdin=slave, stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    chunks = []
    end = time.monotonic() + TIMEOUT
    while time.monotonic() < end:  # until the terminal closes (EOF or EIO)
        if not select.select([master], [], [], 0.2)[0]:
            continue
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    else:
        proc.kill()
        raise AssertionError("baram run still writing to the terminal after %d s: %r"
                             % (TIMEOUT, b"".join(chunks)))
    os.close(master)
    out = proc.stdout.read().decode()
    proc.stdout.close()
    assert proc.wait(timeout=60) == 1
    tty = b"".join(chunks).decode(errors="replace")
    assert "a" in tty and "b" in tty, tty  # progress names the tasks
    obj = json.loads(out)  # stdout still holds just the JSON object
    assert obj["state"] == "failed"


@pytest.mark.sqlite_only(reason="counts the rows written by SQLite triggers")
def test_running_records_wait_for_their_own_try(baram):
    """A try's 'running' records go ENGINE_RUNNING_DELAY_MS (50 ms) after its start, or with
    its final ones if it ends sooner: a try of a chain of short steps never has its 'running'
    row written, even when another try's delay runs out meanwhile. Counted by triggers on the
    task_instances rows written with state 'running'."""
    baram.run_json(baram.write("first.yaml", "dag: first\ntasks:\n  a: {run: 'true'}\n"))
    db_query(baram, "CREATE TABLE running_rows (task_id TEXT NOT NULL)")
    for when in ("INSERT", "UPDATE"):
        db_query(baram, "CREATE TRIGGER running_%s AFTER %s ON task_instances "
                        "WHEN NEW.state = 'running' BEGIN INSERT INTO running_rows "
                        "VALUES (NEW.task_id); END" % (when.lower(), when))
    text = "dag: steps\ntasks:\n"
    for i in range(30):
        text += "  s%d: {run: 'sleep 0.01'%s}\n" % (i, ", needs: [s%d]" % (i - 1) if i else "")
    obj = baram.run_json(baram.write("steps.yaml", text))
    assert obj["state"] == "success"
    rows = db_query(baram, "SELECT r.task_id, t.ended_at - t.started_at FROM running_rows r "
                           "JOIN tries t ON t.task_id = r.task_id AND t.run_id = ?",
                    obj["run_id"])
    # written only for a try that ran its 50 ms (a loaded machine may stretch one)
    assert all(ms >= 45 for _, ms in rows), rows
