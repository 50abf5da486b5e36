"""Logs across machines (SPEC section 12) on PostgreSQL: when a try's log is not on this
machine's disk, `baram logs` and the API's log route (so the UI's live tail) read the store's
copy (try_logs), else ask the worker running the try at its log_url, else say the log is not
available and name the worker.

The try is a real one (`baram run` on the database); its local file is then removed, and the
worker's part is played by rows of the registry and the queue plus a small HTTP server of the
test standing in for a worker's log server (GET /logs/RUN/TASK/TRY?offset=N): it checks the
token it is sent against the home's secret.key, as a worker does."""

import base64
import hashlib
import hmac
import http.server
import json
import threading
import time
import urllib.parse

import pytest

from api_util import ApiServer, free_port, token
from conftest import db_query

pytestmark = pytest.mark.pg_only


class FakeWorker:
    """A log server on a loopback port: serves `text` from ?offset, records each request."""

    def __init__(self, secret_hex, text, status=200):
        self.secret = bytes.fromhex(secret_hex)
        self.text = text.encode()
        self.status = status
        self.hang_s = 0  # seconds to wait before answering
        self.seen = []  # (path, offset, token_ok)
        self.roles = []  # the role of each token received
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                url = urllib.parse.urlsplit(self.path)
                offset = int(urllib.parse.parse_qs(url.query).get("offset", ["0"])[0])
                auth = self.headers.get("Authorization", "")
                ok = auth.startswith("Bearer ") and outer.token_ok(auth[7:])
                outer.seen.append((url.path, offset, ok))
                time.sleep(outer.hang_s)
                status = outer.status if ok else 401
                body = outer.text[offset:] if status == 200 else b"{}"
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.port = free_port()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def token_ok(self, tok):
        """An HS256 token signed with the home's key, with the role viewer or more."""
        try:
            head, claims, sig = tok.split(".")
            want = hmac.new(self.secret, (head + "." + claims).encode(), hashlib.sha256).digest()
            got = base64.urlsafe_b64decode(sig + "=" * (-len(sig) % 4))
            body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
            self.roles.append(body.get("role"))
            return hmac.compare_digest(want, got) and body.get("role") in (
                "viewer", "operator", "admin")
        except ValueError:
            return False

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def setup(tmp_path, pg_url):
    """A home on pg_url with one finished run of dag 'd' (task 'a', then its local log removed),
    and a scheduler row to own queue rows: (baram, run_id, sched_id)."""
    (tmp_path / "x").mkdir()
    b = make_home_on(tmp_path / "x", pg_url)
    b.write("d.yaml", "dag: d\ntasks:\n  a: {run: 'echo from the local file'}\n")
    obj = b.run_json("d.yaml")
    run_id = obj["run_id"]
    log = b.try_log(obj, "a")
    assert log.read_text() == "from the local file\n"
    log.unlink()
    db_query(pg_url, "INSERT INTO workers (role, name, hostname, pid) "
                     "VALUES ('scheduler', 's1', 'h', 1)")
    ((sched,),) = db_query(pg_url, "SELECT id FROM workers WHERE name = 's1'")
    return b, run_id, sched


def make_home_on(root, pg_url):
    from conftest import Baram

    (root / "dags").mkdir()
    b = Baram(root / "home", root / "dags")
    b.env["BARAM_DB"] = pg_url
    r = b("init", env={"BARAM_ADMIN_PASSWORD": "admin-pw-for-tests"})
    assert r.rc == 0, r
    return b


def add_worker(b, sched_id, run_id, log_url, name="w1"):
    """A worker row (active) running try 1 of task a of run_id."""
    db = b.env["BARAM_DB"]
    db_query(db, "INSERT INTO workers (role, name, hostname, pid, log_url) "
                 "VALUES ('worker', ?, 'far-away', 7, ?)", name, log_url)
    ((wid,),) = db_query(db, "SELECT id FROM workers WHERE name = ?", name)
    db_query(db, "INSERT INTO ti_queue (run_id, task_id, try_number, state, sched_id, worker_id, "
                 "claimed_at) VALUES (?, 'a', 1, 'running', ?, ?, now())", run_id, sched_id, wid)
    return wid


def api_logs(api, tok, run_id, query=""):
    return api.get("/api/v1/dags/d/runs/%s/tasks/a/logs%s" % (run_id, query), token=tok)


def test_logs_fall_back_to_the_stored_copy(setup, tmp_path):
    b, run_id, _ = setup
    r = b("logs", run_id, "a")
    assert r.rc == 1 and "no log for try 1 of 'a'" in r.err, r
    db_query(b.env["BARAM_DB"],
             "INSERT INTO try_logs (run_id, task_id, try_number, log) "
             "VALUES (?, 'a', 1, convert_to(?, 'UTF8'))", run_id, "stored line\nsecond\n")
    r = b("logs", run_id, "a")
    assert r.rc == 0 and r.out == "stored line\nsecond\n", r
    r = b("logs", run_id, "a", "--follow")
    assert r.rc == 0 and r.out == "stored line\nsecond\n", r
    api = ApiServer(b, tmp_path / "api.log").start()
    try:
        tok = token(b)
        res = api_logs(api, tok, run_id)
        assert res.status == 200 and res.text == "stored line\nsecond\n", res
        assert res.header("X-Next-Offset") == "19"
        res = api_logs(api, tok, run_id, "?offset=12")
        assert res.status == 200 and res.text == "second\n", res
        assert res.header("X-Next-Offset") == "19"
        res = api_logs(api, tok, run_id, "?offset=19")
        assert res.status == 200 and res.text == "", res
        assert api_logs(api, tok, run_id, "?try=2").status == 404
    finally:
        assert api.stop() == 0


def test_logs_ask_the_worker_running_the_try(setup, tmp_path):
    b, run_id, sched = setup
    secret = (b.home / "secret.key").read_text().strip()
    fw = FakeWorker(secret, "live one\nlive two\n")
    add_worker(b, sched, run_id, fw.url + "/")
    api = ApiServer(b, tmp_path / "api.log").start()
    try:
        r = b("logs", run_id, "a")
        assert r.rc == 0 and r.out == "live one\nlive two\n", (r, fw.seen)
        # the ids travel percent-encoded (a run id holds ':')
        path = "/logs/%s/a/1" % urllib.parse.quote(run_id, safe="")
        assert fw.seen == [(path, 0, True)], fw.seen
        tok = token(b)
        res = api_logs(api, tok, run_id, "?offset=9")
        assert res.status == 200 and res.text == "live two\n", res
        assert res.header("X-Next-Offset") == "18"
        assert fw.seen[-1] == (path, 9, True), fw.seen
        # the API asked with a viewer's token, though its caller is an admin: the token goes
        # to the worker's log_url, maybe over plain http, and reads logs only
        assert fw.roles[-1] == "viewer", fw.roles
        # a worker that refuses the token
        fw.status = 401
        r = b("logs", run_id, "a")
        assert r.rc == 1 and "worker w1 refused the token" in r.err, r
        res = api_logs(api, tok, run_id)
        assert res.status == 502 and "worker w1 refused the token" in res.json["detail"], res
        # the worker has no log yet: as a try that has written nothing
        fw.status = 404
        assert api_logs(api, tok, run_id).status == 404
        # gone: the log is not available, and the message names the worker
        fw.status = 200
        fw.stop()
        r = b("logs", run_id, "a")
        assert r.rc == 1, r
        assert "log not available (worker w1 unreachable)" in r.err, r
        res = api_logs(api, tok, run_id)
        assert res.status == 502, res
        assert res.json["detail"] == "log not available (worker w1 unreachable)", res
        # once the try's copy is stored, the worker is not asked any more
        db_query(b.env["BARAM_DB"],
                 "INSERT INTO try_logs (run_id, task_id, try_number, log) "
                 "VALUES (?, 'a', 1, convert_to('kept', 'UTF8'))", run_id)
        assert b("logs", run_id, "a").out == "kept"
        assert api_logs(api, tok, run_id).text == "kept"
    finally:
        assert api.stop() == 0


def test_a_worker_without_a_log_server_is_named(setup):
    b, run_id, sched = setup
    add_worker(b, sched, run_id, None, name="quiet")
    r = b("logs", run_id, "a")
    assert r.rc == 1, r
    assert "log not available (worker quiet serves no logs: started without --listen)" in r.err


def test_a_worker_that_hangs_is_given_up_after_two_seconds(setup, tmp_path):
    b, run_id, sched = setup
    secret = (b.home / "secret.key").read_text().strip()
    fw = FakeWorker(secret, "at last\n")
    fw.hang_s = 4
    add_worker(b, sched, run_id, fw.url)
    api = ApiServer(b, tmp_path / "api.log").start()
    try:
        t = time.monotonic()
        r = b("logs", run_id, "a")
        took = time.monotonic() - t
        assert r.rc == 1 and "log not available (worker w1 unreachable)" in r.err, r
        assert 1.5 < took < 3.9, took
        tok = token(b)
        t = time.monotonic()
        res = api_logs(api, tok, run_id)
        assert res.status == 502 and "worker w1 unreachable" in res.json["detail"], res
        assert time.monotonic() - t > 1.5
        # the API does not ask a silent worker again at once: the next poll is answered now
        asked = len(fw.seen)
        t = time.monotonic()
        res = api_logs(api, tok, run_id)
        assert res.status == 502 and "worker w1 unreachable" in res.json["detail"], res
        assert time.monotonic() - t < 1.5 and len(fw.seen) == asked, fw.seen
        # ... but does a few seconds later, and reads the log once the worker answers
        fw.hang_s = 0
        time.sleep(5.5)
        res = api_logs(api, tok, run_id)
        assert res.status == 200 and res.text == "at last\n", res
        assert len(fw.seen) == asked + 1
    finally:
        assert api.stop() == 0
        fw.stop()
