"""SPEC section 10: every stderr line of every long-running role (`baram
standalone`, `baram scheduler`, `baram api`) is one logfmt line, whatever the
role does: start with a DAG file that has errors, run a DAG (a failing task
with a retry included), serve requests (a refused login included), stop on
SIGTERM, and fail to start (a second scheduler on the same home)."""

import json
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from api_util import free_port
from conftest import BIN, ON_PG, base_env, wait_for

# key=value, the value bare (no space, quote or '=') or double-quoted with \" and \\ escapes
PAIR = r'[A-Za-z_][A-Za-z0-9_.\-]*=(?:"(?:[^"\\]|\\.)*"|[^\s"=]*)'
LINE = re.compile(r"^ts=\S+ level=(debug|info|warn|error) msg=(?:\"(?:[^\"\\]|\\.)*\"|[^\s\"=]+)"
                  r"(?: " + PAIR + r")*$")

DAGS = {
    "ok.yaml": "dag: ok\non_failure: {run: 'echo hook >&2'}\n"
               "tasks:\n  a: {run: 'echo hi; echo oops >&2'}\n"
               "  b: {run: 'exit 3', needs: [a], retries: 1, retry_delay: 0s}\n",
    "broken.yaml": "dag: broken\ntasks:\n  x: {run: 'true', retires: 1}\n",
}


def check_logfmt(text):
    lines = text.splitlines()
    assert lines, "nothing logged"
    bad = [ln for ln in lines if not LINE.match(ln)]
    assert not bad, "not logfmt:\n" + "\n".join(bad)
    return lines


class Home:
    def __init__(self, tmp):
        self.home = tmp / "home"
        self.dags = tmp / "dags"
        self.dags.mkdir()
        for name, text in DAGS.items():
            (self.dags / name).write_text(text)
        self.env = base_env(self.home)
        self.env["BARAM_ADMIN_PASSWORD"] = "s3cret-pass"
        self.env["BARAM_DAGS"] = str(self.dags)
        self.tmp = tmp
        r = self.baram("init")
        assert r.returncode == 0, r.stderr

    def baram(self, *args):
        return subprocess.run([BIN, *args, "--home", str(self.home)], env=self.env,
                              capture_output=True, text=True, timeout=60)

    def start(self, role, *args, name=None):
        log = open(self.tmp / ((name or role) + ".log"), "w+")
        p = subprocess.Popen([BIN, role, "--home", str(self.home), *args], env=self.env,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log)
        p.log = log
        return p

    @staticmethod
    def text(p):
        p.log.flush()
        p.log.seek(0)
        return p.log.read()

    def stop(self, p):
        p.send_signal(signal.SIGTERM)
        assert p.wait(30) == 0, self.text(p)
        t = self.text(p)
        p.log.close()
        return t

    def run_one(self):
        r = self.baram("dags", "trigger", "ok")
        assert r.returncode == 0, r.stderr
        run_id = r.stdout.strip()

        def ended():
            s = self.baram("runs", "show", run_id, "--json")
            return s.stdout.strip() and json.loads(s.stdout)["state"] in ("success", "failed")
        assert wait_for(ended, 60), self.baram("runs", "show", run_id).stdout


def login(port, password):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/v1/auth/token", method="POST",
                                 data=json.dumps({"username": "admin",
                                                  "password": password}).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, None


def use_api(port):
    status, body = login(port, "wrong-password")
    assert status == 401, status
    status, body = login(port, "s3cret-pass")
    assert status == 200, status
    for path in ("/api/v1/dags", "/api/v1/import-errors", "/api/v1/nope"):
        req = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": "Bearer " + body["access_token"]})
        try:
            urllib.request.urlopen(req, timeout=10).read()
        except urllib.error.HTTPError:
            pass


@pytest.mark.parametrize("role", ["standalone", "scheduler"])
def test_scheduler_roles_log_only_logfmt(tmp_path, role):
    h = Home(tmp_path)
    port = free_port()
    args = ["--dags", str(h.dags), "--grace", "1s"]
    if role == "standalone":
        args += ["--listen", f"127.0.0.1:{port}"]
    p = h.start(role, *args)
    assert wait_for(lambda: 'msg="scheduler up"' in h.text(p), 30), h.text(p)
    w = None
    if ON_PG and role == "scheduler":  # on PostgreSQL a worker runs the scheduler's tries
        w = h.start("worker", "--grace", "1s")
        assert wait_for(lambda: 'msg="worker up"' in h.text(w), 30), h.text(w)
    h.run_one()
    if role == "standalone":
        assert wait_for(lambda: 'msg="api listening"' in h.text(p), 30), h.text(p)
        use_api(port)
    # a second scheduler on the home cannot start: its one line says why
    second = h.start(role, *args[:4], name="second")
    assert second.wait(30) == 1
    lines = check_logfmt(h.text(second))
    assert any("level=error" in ln and "already running" in ln for ln in lines), lines
    second.log.close()
    lines = check_logfmt(h.stop(p))
    if w:
        check_logfmt(h.stop(w))
    text = "\n".join(lines)
    assert 'msg="DAG files with errors" files=1' in text, text
    assert 'msg="run ended" dag=ok' in text and "msg=stopped" in text, text


def test_api_role_logs_only_logfmt(tmp_path):
    h = Home(tmp_path)
    port = free_port()
    p = h.start("api", "--listen", f"127.0.0.1:{port}")
    assert wait_for(lambda: 'msg="api listening"' in h.text(p), 30), h.text(p)
    use_api(port)
    # the same port taken: this one cannot start
    second = h.start("api", "--listen", f"127.0.0.1:{port}", name="second")
    assert second.wait(30) == 1
    lines = check_logfmt(h.text(second))
    assert any("level=error" in ln and 'msg="cannot start"' in ln for ln in lines), lines
    second.log.close()
    assert 'msg="api stopping"' in "\n".join(check_logfmt(h.stop(p)))
