"""Helpers for the tests that drive the REST API through `baram api`.

make_home() creates a home with `baram init` (the first admin's password
from BARAM_ADMIN_PASSWORD); ApiServer runs `baram api --listen
127.0.0.1:0` on it, its stderr going to a file, and reads the bound port from
its "api listening" log line; token() mints a JWT with `baram token NAME`.
Requests go through http.client so that a path is sent exactly as written
(no client-side normalisation of "..", "%2e" or "%2F"): the server must cope
with whatever arrives. Every wait polls with a timeout.
"""

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

from conftest import BIN, Baram, sanitizers

ADMIN_PASSWORD = "admin-pw-for-tests"
TIMEOUT = 30


def make_home(root):
    """A fresh home and DAG folder under root, initialised: returns a Baram."""
    root = Path(root)
    (root / "dags").mkdir(parents=True, exist_ok=True)
    b = Baram(root / "home", root / "dags")
    r = b("init", env={"BARAM_ADMIN_PASSWORD": ADMIN_PASSWORD})
    assert r.rc == 0, r
    return b


def free_port():
    """A loopback port free right now (for commands that do not take port 0)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def token(b, name="admin", ttl=None):
    args = ["token", name] + (["--ttl", ttl] if ttl else [])
    r = b(*args)
    assert r.rc == 0, r
    tok = r.out.strip()
    assert tok.count(".") == 2, r
    return tok


def add_user(b, name, role, password="pw-" + "x" * 8):
    r = b("users", "add", name, "--role", role, env={"BARAM_PASSWORD": password})
    assert r.rc == 0, r


class Resp:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers  # lower-cased names
        self.body = body

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    @property
    def json(self):
        try:
            return json.loads(self.body)
        except ValueError as e:
            raise AssertionError("not JSON (%s): %r" % (e, self.body[:500]))

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "Resp(%d, %r, %r)" % (self.status, self.headers, self.body[:500])


class ApiServer:
    """One `baram api` process on b's home, listening on a free loopback port."""

    def __init__(self, b, log_path, args=()):
        self.b = b
        self.log_path = Path(log_path)
        self.args = [str(a) for a in args]
        self.proc = None
        self.port = None
        sanitizers.log(self.log_path, self)

    def start(self, timeout=20.0):
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as errf:
            self.proc = subprocess.Popen(
                [BIN, "api", "--listen", "127.0.0.1:0"] + self.args, cwd=str(self.b.dags),
                env=self.b.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=errf)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            m = re.search(r'msg="api listening".* port=(\d+)', self.log())
            if m:
                self.port = int(m.group(1))
                return self
            if self.proc.poll() is not None:
                raise AssertionError("baram api exited (rc %s):\n%s"
                                     % (self.proc.returncode, self.log()))
            time.sleep(0.02)
        raise AssertionError("baram api did not come up:\n" + self.log())

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout=20.0):
        """SIGTERM, then wait: returns the exit code (SIGKILL after timeout)."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("baram api did not stop on SIGTERM:\n" + self.log())

    def request(self, method, path, token=None, body=None, headers=None, timeout=TIMEOUT):
        """Sends path exactly as given; body: bytes, str or a JSON-able object."""
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            h.setdefault("Content-Type", "application/json")
        if isinstance(body, str):
            body = body.encode()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest(method, path, skip_accept_encoding=True)
            for k, v in h.items():
                conn.putheader(k, v)
            if body is not None and "Transfer-Encoding" not in h:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders()
            if body is not None:
                try:
                    if h.get("Transfer-Encoding") == "chunked":
                        step = 64 * 1024
                        for i in range(0, len(body), step):
                            chunk = body[i:i + step]
                            conn.send(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        conn.send(b"0\r\n\r\n")
                    else:
                        conn.send(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the server answered early and closed (413)
            r = conn.getresponse()
            data = r.read()
            return Resp(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def get(self, path, token=None, **kw):
        return self.request("GET", path, token=token, **kw)


def check_problem(r, status):
    """r is an application/problem+json answer with this status."""
    assert r.status == status, r
    assert r.header("content-type") == "application/problem+json", r
    p = r.json
    assert set(p) >= {"type", "title", "status", "detail"}, p
    assert p["status"] == status, p
    return p


def alive_cleanup(servers):
    for s in servers:
        if s.proc is not None and s.proc.poll() is None:
            os.kill(s.proc.pid, signal.SIGKILL)
            s.proc.wait()


def record_dags(b, log_path):
    """Starts `baram standalone` on b's home and stops it at once: the scheduler records the
    DAGs it loads (and their versions, and import errors) as the API shows them."""
    from daemon_util import Daemon
    d = Daemon(b, ["--listen", "127.0.0.1:%d" % free_port()], log_path)
    try:
        d.start()
        assert d.stop() == 0
    finally:
        if d.proc and d.proc.poll() is None:
            d.proc.kill()
            d.proc.wait()
