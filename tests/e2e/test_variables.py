"""Variables and secrets (SPEC section 13) end to end, on both backends: `baram
variables set|get|list|delete`, {{ var.KEY }} in a task, a secret masked as ***
in the try's log (CLI and API) wherever and however the task writes it, kept
out of the command line of the task's process (/proc/PID/cmdline) and out of
the store in clear, and /api/v1/variables with its role checks and hostile
input.

One `baram standalone` (scheduler, executor or in-process worker, and API) per
module; each test uses keys of its own.
"""

import json
import os
import re
import time
from pathlib import Path

import pytest

from api_util import ApiServer, add_user, check_problem, free_port, make_home, token
from conftest import ON_PG, db_query
from daemon_util import Daemon, poll, wait_run

SECRET = "s3cr3t-Pa55"
PLAIN = "hello world"


class Env:
    def __init__(self, b, daemon, api, tokens):
        self.b = b
        self.daemon = daemon
        self.api = api
        self.tokens = tokens

    def req(self, method, path, role="admin", body=None, **kw):
        return self.api.request(method, path, token=self.tokens[role], body=body, **kw)

    def cli(self, *args, input=None):
        r = self.b(*args, input=input)
        assert r.rc == 0, r
        return r


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("vars")
    b = make_home(root)
    for role in ("viewer", "operator"):
        add_user(b, role, role)
    d = Daemon(b, ["--listen", "127.0.0.1:0"], root / "daemon.log").start()
    api = ApiServer(b, root / "api-unused.log")
    m = re.search(r'msg="api listening".* port=(\d+)', d.log())
    assert m, d.log()
    api.port = int(m.group(1))
    tokens = {"none": None, "viewer": token(b, "viewer"), "operator": token(b, "operator"),
              "admin": token(b, "admin")}
    yield Env(b, d, api, tokens)
    d.stop()


def test_cli_set_get_list_delete(env):
    b = env.b
    env.cli("variables", "set", "cli.plain", PLAIN)
    env.cli("variables", "set", "cli.stdin", input="from stdin\n")
    env.cli("variables", "set", "cli.secret", "--secret", input=SECRET + "\n")
    assert env.cli("variables", "get", "cli.plain").out == PLAIN + "\n"
    assert env.cli("variables", "get", "cli.stdin").out == "from stdin\n"
    got = env.cli("variables", "get", "cli.secret")
    assert got.out == "***\n" and SECRET not in got.out + got.err
    listed = {v["key"]: v for v in env.cli("variables", "list", "--json").json["variables"]}
    assert listed["cli.plain"]["value"] == PLAIN and listed["cli.plain"]["secret"] is False
    assert listed["cli.secret"] == dict(listed["cli.secret"], value="***", secret=True)
    assert listed["cli.secret"]["updated_by"] == "cli"
    table = env.cli("variables", "list").out
    assert "cli.secret" in table and SECRET not in table
    env.cli("variables", "delete", "cli.plain")
    r = b("variables", "get", "cli.plain")
    assert r.rc == 2 and "no variable cli.plain: baram variables list" in r.err, r
    r = b("variables", "delete", "cli.plain")
    assert r.rc == 2 and "no variable cli.plain" in r.err, r
    for bad in ("has space", "x" * 201, "", "a/b"):
        r = b("variables", "set", bad, "v")
        assert r.rc == 2 and "bad key" in r.err, (bad, r)
    r = b("variables", "set", "cli.big", "x" * (64 * 1024 + 1))
    assert r.rc == 2 and "64 KiB" in r.err, r.err
    r = b("variables", "sett", "k", "v")
    assert r.rc == 2 and "did you mean 'set'" in r.err, r
    for sub in ("set", "get", "list", "delete"):
        r = b("variables", sub, "--help")
        assert r.rc == 0 and "usage: baram variables" in r.out, r


def test_secret_at_rest_is_sealed(env):
    env.cli("variables", "set", "rest.secret", "--secret", input="at-rest-" + SECRET)
    rows = db_query(env.b, "SELECT value, ciphertext, nonce FROM variables WHERE key = ?",
                    "rest.secret")
    assert len(rows) == 1 and rows[0][0] is None and rows[0][1] and rows[0][2], rows
    assert "at-rest-" not in json.dumps(rows)
    if not ON_PG:
        data = (Path(env.b.home) / "baram.db").read_bytes()
        for suffix in ("-wal", "-journal"):
            p = Path(str(Path(env.b.home) / "baram.db") + suffix)
            if p.exists():
                data += p.read_bytes()
        assert b"at-rest-" not in data
    # A fresh nonce per write: the same value sealed twice differs.
    env.cli("variables", "set", "rest.secret", "--secret", input="at-rest-" + SECRET)
    again = db_query(env.b, "SELECT ciphertext, nonce FROM variables WHERE key = ?",
                     "rest.secret")
    assert again[0] != (rows[0][1], rows[0][2])


DAG = """
dag: vars_dag
tasks:
  plain:
    run: echo "plain={{ var.greet }}"
  leak:
    run: |
      echo start {{ var.tok }} middle '{{ var.tok }}' end "{{ var.tok }}"
      printf 's3cr'; sleep 0.2; printf '3t-Pa55|'; printf '%s%s' "$BARAM_VAR_TOK" "$BARAM_VAR_TOK" >&2
      printf '\\001\\377%s\\000' "$BARAM_VAR_TOK"; printf 's3cr3t-Pa5'
  ps:
    run: echo $$ > {pidfile}; sleep 2; test -n {{ var.tok }}
  unknown:
    run: echo {{ var.no_such_key }}
  collide:
    run: test "{{ var.col.x }}" = first-secret && test {{ var.col_x }} = second-secret
  http_leak:
    http: {url: "http://127.0.0.1:{port}/x/{{ var.tok }}/y", timeout: 5s}
"""


def test_task_reads_variables_and_secret_is_masked(env, tmp_path):
    b = env.b
    env.cli("variables", "set", "greet", PLAIN)
    env.cli("variables", "set", "tok", "--secret", input=SECRET)
    # two keys whose environment names would be the same (BARAM_VAR_COL_X)
    env.cli("variables", "set", "col.x", "--secret", input="first-secret")
    env.cli("variables", "set", "col_x", "--secret", input="second-secret")
    pidfile = tmp_path / "pid"
    b.write("vars_dag.yaml", DAG.replace("{pidfile}", str(pidfile))
            .replace("{port}", str(free_port())))
    env.daemon.wait_log('msg="dag loaded" dag=vars_dag', timeout=10)
    # make_home's config names the DAG folder ./dags: the CLI runs from its parent
    r = b("dags", "trigger", "vars_dag", "--json", cwd=b.dags.parent)
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    # The running task's command line: no secret, a reference to the environment instead.
    assert poll(lambda: pidfile.exists() and pidfile.read_text().strip(), timeout=15)
    pid = int(pidfile.read_text())
    cmdline = Path("/proc/%d/cmdline" % pid).read_bytes()
    assert SECRET.encode() not in cmdline and b"BARAM_VAR_TOK" in cmdline, cmdline
    environ = Path("/proc/%d/environ" % pid).read_bytes()
    assert ("BARAM_VAR_TOK=" + SECRET).encode() in environ.split(b"\0")
    run = wait_run(b, run_id, timeout=20, daemon=env.daemon)
    states = run["tasks"]
    assert states["plain"]["state"] == "success", run
    assert states["leak"]["state"] == "success", run
    assert states["ps"]["state"] == "success", run
    assert states["collide"]["state"] == "success", run
    assert states["unknown"]["state"] == "failed", run
    assert "no variable 'no_such_key'" in (states["unknown"].get("message") or ""), run

    assert env.cli("logs", run_id, "plain").out == "plain=" + PLAIN + "\n"
    out = env.cli("logs", run_id, "leak").out
    assert SECRET not in out and "s3cr3t" not in out.replace("s3cr3t-Pa5", ""), out
    assert out.startswith("start *** middle *** end ***\n***|"), out
    assert out.count("***") == 7 and out.endswith("s3cr3t-Pa5"), out  # a prefix is not a secret
    r = env.req("GET", "/api/v1/dags/vars_dag/runs/%s/tasks/leak/logs" % run_id, role="viewer")
    assert r.status == 200, r
    assert SECRET.encode() not in r.body and r.body.count(b"***") == 7, r.body
    assert SECRET not in env.cli("logs", run_id, "unknown").out
    # An http task's own log lines: the URL it called, the secret in its path masked.
    assert states["http_leak"]["state"] == "failed", run
    r = b("logs", run_id, "http_leak")
    assert SECRET not in r.out and "/x/***/y" in r.out, r.out


def test_api_roles_and_values(env):
    check_problem(env.req("GET", "/api/v1/variables", role="none"), 401)
    r = env.req("PUT", "/api/v1/variables/api.sec", body={"value": SECRET, "secret": True})
    assert r.status == 200 and r.json["value"] == "***" and r.json["secret"] is True, r
    assert r.json["updated_by"] == "admin" and SECRET.encode() not in r.body
    r = env.req("PUT", "/api/v1/variables/api.plain", body={"value": "v1"})
    assert r.status == 200 and r.json["value"] == "v1" and r.json["secret"] is False, r
    for role in ("viewer", "operator"):
        check_problem(env.req("PUT", "/api/v1/variables/api.plain", role=role,
                              body={"value": "nope"}), 403)
        check_problem(env.req("DELETE", "/api/v1/variables/api.plain", role=role), 403)
    check_problem(env.req("PUT", "/api/v1/variables/api.plain", role="none",
                          body={"value": "nope"}), 401)
    assert env.cli("variables", "get", "api.plain").out == "v1\n"
    r = env.req("GET", "/api/v1/variables", role="viewer")
    assert r.status == 200 and SECRET.encode() not in r.body, r
    listed = {v["key"]: v for v in r.json["variables"]}
    assert listed["api.sec"]["value"] == "***" and listed["api.plain"]["value"] == "v1"
    assert r.json["total_entries"] == len(r.json["variables"])
    r = env.req("GET", "/api/v1/variables/api.sec", role="viewer")
    assert r.status == 200 and r.json["value"] == "***", r
    # The secret set through the API is the one a task reads (sealed with the same key).
    assert env.cli("variables", "get", "api.sec").out == "***\n"
    r = env.req("DELETE", "/api/v1/variables/api.plain")
    assert r.status == 204, r
    check_problem(env.req("DELETE", "/api/v1/variables/api.plain"), 404)
    check_problem(env.req("GET", "/api/v1/variables/api.plain", role="viewer"), 404)


@pytest.mark.parametrize("body,field", [
    ({}, "value"),
    ({"value": 3}, "value"),
    ({"value": None}, "value"),
    ({"value": "x", "secret": "yes"}, "secret"),
    ({"value": "x", "extra": 1}, "extra"),
    ({"value": "x" * (64 * 1024 + 1)}, "value"),
    ({"value": "a\u0000b"}, None),  # the body parser refuses a NUL itself
    ([1, 2], None),
    (b"\xff\xfe{", None),
    (b'{"value": "\xff"}', None),
    ("{not json", None),
])
def test_api_hostile_input(env, body, field):
    r = env.req("PUT", "/api/v1/variables/hostile", body=body)
    check_problem(r, 400)
    if field:
        assert field in r.json["detail"], r.json
    check_problem(env.req("GET", "/api/v1/variables/hostile"), 404)


def test_api_bad_keys(env):
    for key in ("a%20b", "x" * 201, "%C3%A9t%C3%A9", "a%3Bb"):
        r = env.req("PUT", "/api/v1/variables/" + key, body={"value": "v"})
        assert r.status in (400, 404), (key, r)
        if r.status == 400:
            check_problem(r, 400)


ONLY_DAG = """
dag: vars_only
deadline: {after: 1s, run: 'echo "deadline={{ var.only.tok }}"'}
tasks:
  envdump:
    run: |
      test -n "{{ var.only.tok }}" && test "{{ var.only.plain }}" = p
      env | grep '^BARAM_VAR_' | sort > {envfile}; sleep 1.5
  bad:
    run: exit 1
    on_failure: {run: 'echo "hook={{ var.only.tok }}"; printf "%s" "$BARAM_VAR_ONLY_TOK" >&2'}
"""


def test_run_gets_only_the_variables_it_reads_and_hooks_are_masked(env, tmp_path):
    """Only the keys the DAG's templates read are loaded and exported: another secret of the
    home is in no try's environment (nor, on PostgreSQL, in the try's spec); a task hook and
    the deadline's `run` get the secrets the run read and their logs show them as ***."""
    env.cli("variables", "set", "only.tok", "--secret", input="only-" + SECRET)
    env.cli("variables", "set", "only.plain", "p")
    env.cli("variables", "set", "unread.secret", "--secret", input="unread-" + SECRET)
    envfile = tmp_path / "env"
    env.b.write("vars_only.yaml", ONLY_DAG.replace("{envfile}", str(envfile)))
    env.daemon.wait_log('msg="dag loaded" dag=vars_only', timeout=10)
    r = env.b("dags", "trigger", "vars_only", "--json", cwd=env.b.dags.parent)
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    assert poll(lambda: envfile.exists() and envfile.read_text(), timeout=15)
    if ON_PG:  # the running try's spec: the secret it reads, never another one
        specs = db_query(env.b, "SELECT spec::text FROM ti_queue WHERE run_id = ? AND "
                         "task_id = 'envdump'", run_id)
        assert len(specs) == 1 and "BARAM_VAR_ONLY_TOK" in specs[0][0], specs
        assert "unread-" not in specs[0][0] and "UNREAD" not in specs[0][0], specs
    run = wait_run(env.b, run_id, timeout=20, daemon=env.daemon)
    assert run["tasks"]["envdump"]["state"] == "success", run
    dumped = envfile.read_text()
    assert dumped == "BARAM_VAR_ONLY_TOK=only-%s\n" % SECRET, dumped
    run_dir = Path(env.b.home) / "logs" / "vars_only" / run_id
    hook = (run_dir / "bad.on_failure.1.log").read_text()
    assert "only-" + SECRET not in hook and hook.count("***") == 2, hook
    assert hook.startswith("hook=***"), hook
    assert poll(lambda: (run_dir / "deadline.log").exists()
                and "deadline=" in (run_dir / "deadline.log").read_text(), timeout=10)
    dl = (run_dir / "deadline.log").read_text()
    assert "only-" + SECRET not in dl and "deadline=***" in dl, dl


def test_run_start_reads_variables_off_the_loop(tmp_path):
    """The variables of a run are read (store and key file) off the scheduler's loop: while
    the key file cannot be read yet (a FIFO nobody writes), a run that needs it waits, but
    another run that is already going ends and is recorded all the same."""
    b = make_home(tmp_path)
    keyfile = tmp_path / "secret.key"
    keyfile.write_bytes((Path(b.home) / "secret.key").read_bytes())
    b.env["BARAM_SECRET_KEY_FILE"] = str(keyfile)
    r = b("variables", "set", "loop.tok", "--secret", input=SECRET)
    assert r.rc == 0, r
    b.write("loop_slow.yaml", "dag: loop_slow\ntasks:\n  a:\n    run: sleep 2\n")
    b.write("loop_vars.yaml", "dag: loop_vars\ntasks:\n  a:\n"
            "    run: test \"{{ var.loop.tok }}\" = %s\n" % SECRET)
    d = Daemon(b, ["--listen", "127.0.0.1:0"], tmp_path / "daemon.log").start()
    key = keyfile.read_bytes()
    keyfile.unlink()
    os.mkfifo(keyfile)
    fed = False

    def feed():
        # A reader blocked in open() gets the key; none there: nothing to do yet.
        try:
            fd = os.open(keyfile, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:
            return False
        try:
            os.write(fd, key)
        finally:
            os.close(fd)
        return True
    try:
        r = b("dags", "trigger", "loop_slow", "--json", cwd=b.dags.parent)
        assert r.rc == 0, r
        slow = r.json["run_id"]
        wait_run(b, slow, states=("running",), timeout=10, daemon=d)
        r = b("dags", "trigger", "loop_vars", "--json", cwd=b.dags.parent)
        assert r.rc == 0, r
        waiting = r.json["run_id"]
        # the other run ends and is recorded while the key file is being waited for
        run = wait_run(b, slow, timeout=10, daemon=d)
        assert run["state"] == "success", run
        fed = poll(feed, timeout=10)
        assert fed, "the key file was never read"  # so it was waited for till now
        run = wait_run(b, waiting, timeout=15, daemon=d)
        assert run["state"] == "success", run
    finally:
        if not fed:
            fed = poll(feed, timeout=2)  # lets the key read end before the daemon stops
        d.stop()


def test_foreground_run_reads_only_its_variables(env, tmp_path):
    """`baram run` reads the variables before its loop starts: the ones its DAG reads only."""
    env.cli("variables", "set", "fg.tok", "--secret", input="fg-" + SECRET)
    env.cli("variables", "set", "fg.unread", "--secret", input="fgu-" + SECRET)
    envfile = tmp_path / "env"
    dag = tmp_path / "fg.yaml"
    dag.write_text("dag: vars_fg\ntasks:\n  a:\n    run: |\n"
                   "      test \"{{ var.fg.tok }}\" = fg-%s\n"
                   "      env | grep '^BARAM_VAR_' | sort > %s\n" % (SECRET, envfile))
    obj = env.b.run_json(str(dag))
    assert obj["state"] == "success", obj
    assert envfile.read_text() == "BARAM_VAR_FG_TOK=fg-%s\n" % SECRET
