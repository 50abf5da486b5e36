"""Task hooks, notifiers and deadlines (SPEC section 13), against real receivers.

A local HTTP receiver (a ThreadingHTTPServer on 127.0.0.1) plays the webhook
and the Slack incoming webhook: /ok answers 200, /fail2/KEY answers 500 to the
first two requests of KEY and 200 after, /hang holds the request for 5 s (/hang1st/KEY only
the first one). A
local SMTP sink (smtp_sink.py) takes the mails. Every delivery must also be in
the store's `deliveries` (both backends) with its attempts and outcome.
"""

import http.server
import json
import textwrap
import threading
import time

import pytest

from api_util import ApiServer, add_user, make_home, token
from conftest import db_query, parse_ts
from daemon_util import daemons, poll, trigger, wait_run  # noqa: F401
from smtp_sink import SmtpSink


class Receiver:
    def __init__(self):
        self.requests = []  # (path, body as parsed JSON or text, monotonic time)
        self.counts = {}
        self.lock = threading.Lock()
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(n)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                with rec.lock:
                    rec.requests.append((self.path, body, time.monotonic()))
                    k = rec.counts[self.path] = rec.counts.get(self.path, 0) + 1
                status = 200
                if self.path.startswith("/fail2/") and k <= 2:
                    status = 500
                if self.path.startswith("/hang") or (self.path.startswith("/hang1st/") and k == 1):
                    time.sleep(5)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the client gave up (its timeout)

            def log_message(self, *a):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def bodies(self, prefix):
        with self.lock:
            return [b for p, b, _ in self.requests if p.startswith(prefix)]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def recv():
    r = Receiver()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def sink():
    s = SmtpSink().start()
    yield s
    s.stop()


def config(b, text):
    b.home.mkdir(parents=True, exist_ok=True)
    (b.home / "baram.yaml").write_text(textwrap.dedent(text).lstrip("\n"))


def deliveries(b, run_id):
    return db_query(b, "SELECT task_id, try_number, hook, notifier, attempts, state, status, error "
                       "FROM deliveries WHERE run_id = ? ORDER BY created_at, id", run_id)


def test_webhook_and_slack_payloads(baram, recv):
    config(baram, """
        notifiers:
          ops: {webhook: "%s"}
          chat: {slack: "%s"}
        """ % (recv.url("/ok/ops1"), recv.url("/ok/chat1")))
    p = baram.write("n1.yaml", """
        dag: n1
        on_failure: {notify: chat}
        tasks:
          good:
            run: "true"
            on_success: {notify: ops}
          bad:
            run: "echo broken >&2; exit 4"
            on_failure: {notify: ops}
        """)
    obj = baram.run_json(p, expect_rc=1)
    run_id = obj["run_id"]
    ops = sorted(recv.bodies("/ok/ops1"), key=lambda o: o["task"])
    assert [(o["task"], o["hook"], o["state"], o["try"]) for o in ops] == [
        ("bad", "on_failure", "failed", 1), ("good", "on_success", "success", 1)], ops
    for o in ops:
        assert o["dag"] == "n1" and o["run_id"] == run_id and o["url"] is None, o
        assert set(o) == {"dag", "run_id", "task", "try", "hook", "state", "message", "url"}, o
    assert ops[0]["message"] == "exit code 4", ops
    chat = recv.bodies("/ok/chat1")
    assert len(chat) == 1 and set(chat[0]) == {"text"}, chat
    assert "n1" in chat[0]["text"] and run_id in chat[0]["text"] and "failed" in chat[0]["text"]
    rows = deliveries(baram, run_id)
    assert sorted(((r[0], r[2], r[3], r[4], r[5], r[6]) for r in rows), key=str) == sorted([
        ("good", "on_success", "ops", 1, "sent", 200), ("bad", "on_failure", "ops", 1, "sent", 200),
        (None, "on_failure", "chat", 1, "sent", 200)], key=str), rows


def test_retries_are_recorded(baram, recv):
    config(baram, """
        api: {public_url: "https://baram.example.com/"}
        notifiers:
          flaky: {webhook: "%s", retries: 3}
        """ % recv.url("/fail2/r1"))
    p = baram.write("n2.yaml", """
        dag: n2
        on_success: {notify: flaky}
        tasks:
          a: {run: "true"}
        """)
    obj = baram.run_json(p)
    got = recv.bodies("/fail2/r1")
    assert len(got) == 3, got
    # the link to the run's page, from api.public_url
    assert got[2]["url"] == "https://baram.example.com/#/dags/n2/runs/%s" % obj["run_id"], got
    rows = deliveries(baram, obj["run_id"])
    assert [(r[2], r[4], r[5], r[6], r[7]) for r in rows] == [
        ("on_success", 3, "sent", 200, None)], rows


def test_hanging_receiver_times_out_and_never_holds_the_task(baram, recv):
    config(baram, """
        notifiers:
          slow: {webhook: "%s", timeout: 1s, retries: 0}
        """ % recv.url("/hang/h1"))
    p = baram.write("n3.yaml", """
        dag: n3
        tasks:
          a:
            run: "true"
            on_success: {notify: slow}
          b:
            needs: [a]
            run: "true"
        """)
    t = time.monotonic()
    obj = baram.run_json(p)
    took = time.monotonic() - t
    tasks = obj["tasks"]
    assert tasks["b"]["state"] == "success", obj
    # b ran right after a: the delivery held on to nothing of the run
    a_end, b_start = parse_ts(tasks["a"]["ended_at"]), parse_ts(tasks["b"]["started_at"])
    assert b_start - a_end < 0.9, obj
    assert took < 4.5, took  # `baram run` waits for the delivery's 1 s timeout, not the 5 s hang
    rows = deliveries(baram, obj["run_id"])
    assert len(rows) == 1 and rows[0][4:6] == (1, "failed"), rows
    assert "timed out" in (rows[0][7] or "").lower() or "timeout" in (rows[0][7] or "").lower(), rows


def test_on_retry_fires_per_retry_and_run_hooks_get_the_facts(baram):
    p = baram.write("n4.yaml", """
        dag: n4
        tasks:
          a:
            run: "exit 7"
            retries: 2
            on_retry: {run: 'echo "$BARAM_HOOK $BARAM_TASK $BARAM_TRY $BARAM_STATE" >> hooks.txt'}
            on_failure: {run: 'echo "$BARAM_HOOK $BARAM_TASK $BARAM_TRY $BARAM_MESSAGE" >> hooks.txt'}
        """)
    obj = baram.run_json(p, expect_rc=1)
    lines = sorted((baram.dags / "hooks.txt").read_text().splitlines())
    assert lines == ["on_failure a 3 exit code 7", "on_retry a 1 up_for_retry",
                     "on_retry a 2 up_for_retry"], lines
    assert (baram.run_dir(obj) / "a.on_retry.1.log").exists()


def test_a_failing_hook_changes_no_state(baram):
    p = baram.write("n5.yaml", """
        dag: n5
        tasks:
          a:
            run: "true"
            on_success: {run: "exit 9"}
        """)
    obj = baram.run_json(p)
    assert obj["state"] == "success", obj


def test_mail_through_smtp(baram, sink):
    config(baram, """
        notifiers:
          mail: {smtp: "smtp://127.0.0.1:%d", from: baram@example.org, to: [ops@example.org, dev@example.org]}
        """ % sink.port)
    p = baram.write("n6.yaml", """
        dag: n6
        tasks:
          a:
            run: "exit 2"
            on_failure: {notify: mail}
        """)
    n0 = len(sink.messages)
    obj = baram.run_json(p, expect_rc=1)
    assert len(sink.messages) == n0 + 1, sink.messages
    m = sink.messages[-1]
    assert m["from"] == "baram@example.org" and m["to"] == ["ops@example.org", "dev@example.org"]
    assert "Subject: baram: dag n6 run %s task a try 1 failed" % obj["run_id"] in m["data"], m
    assert "Content-Type: text/plain" in m["data"], m
    assert m["data"].startswith("Date: ") and "\r\nFrom: <baram@example.org>\r\n" in m["data"], m
    rows = deliveries(baram, obj["run_id"])
    assert [(r[3], r[5], r[6]) for r in rows] == [("mail", "sent", 250)], rows


def test_unknown_notifier_fails_validation(baram):
    config(baram, """
        notifiers:
          ops: {webhook: "http://127.0.0.1:9/x"}
        """)
    p = baram.write("n7.yaml", """
        dag: n7
        tasks:
          a:
            run: "true"
            on_failure: {notify: opz}
        """)
    r = baram("dags", "validate", p)
    assert r.rc == 1, r
    assert "n7.yaml:5:26: error: 'tasks.a.on_failure' names no notifier 'opz'" in r.err, r
    assert "did you mean 'ops'?" in r.err, r
    r = baram.run(p)
    assert r.rc == 2, r
    # without a baram.yaml in the home the names cannot be checked: the file is valid
    (baram.home / "baram.yaml").unlink()
    r = baram("dags", "validate", p)
    assert r.rc == 0, r


def test_bad_notifiers_config(baram):
    config(baram, """
        notifiers:
          a: {webhook: "ftp://x"}
          b: {smtp: "smtp://x", to: nobody}
          c: {slak: "http://x"}
        """)
    r = baram("dags", "list")
    assert r.rc == 2, r
    assert "bad URL 'ftp://x' for 'notifiers.a.webhook'" in r.err, r
    assert "mail notifier 'b' needs 'from'" in r.err, r
    assert "bad mail address 'nobody'" in r.err, r
    assert "unknown key 'slak' in notifier 'c' (did you mean 'slack'?)" in r.err, r


# ---- the deadline, in the scheduler ----------------------------------------------------------

@pytest.fixture
def b(baram):
    baram.env["BARAM_DAGS"] = str(baram.dags)
    return baram


def test_deadline_fires_once_and_survives_a_restart(b, recv, daemons, tmp_path):
    config(b, """
        notifiers:
          ops: {webhook: "%s"}
        """ % recv.url("/ok/dl1"))
    b.write("late.yaml", """
        dag: late
        deadline: {after: 1s, notify: ops}
        tasks:
          a: {run: "sleep 3", retries: 1}  # the try the kill ends is tried again
        """)
    d = daemons(b)
    run_id = trigger(b, "late")
    assert poll(lambda: recv.bodies("/ok/dl1"), timeout=10), "the deadline did not fire"
    # once its delivery is recorded as sent (one still 'pending' is sent again: at least once)
    assert poll(lambda: [r for r in deliveries(b, run_id) if r[5] == "sent"], timeout=10)
    d.kill9()  # the run is still going: the next scheduler resumes it
    d2 = daemons(b, log_name="daemon2.log")
    obj = wait_run(b, run_id, timeout=20, daemon=d2)
    assert obj["state"] == "success", obj  # the run went on
    time.sleep(0.3)
    got = recv.bodies("/ok/dl1")
    assert len(got) == 1, got
    assert got[0]["hook"] == "deadline" and got[0]["state"] == "running", got
    rows = deliveries(b, run_id)
    assert [(r[2], r[3], r[5]) for r in rows] == [("deadline", "ops", "sent")], rows


def test_deadline_armed_again_after_a_restart_before_it_fired(b, recv, daemons):
    config(b, """
        notifiers:
          ops: {webhook: "%s"}
        """ % recv.url("/ok/dl2"))
    b.write("late2.yaml", """
        dag: late2
        deadline: {after: 2s, run: 'echo fired >> deadline.txt'}
        tasks:
          a: {run: "sleep 3", retries: 1}
        """)
    d = daemons(b)
    run_id = trigger(b, "late2")
    assert poll(lambda: b.home.joinpath("logs", "late2", run_id, "a.1.log").exists(), timeout=10)
    d.kill9()
    assert not (b.dags / "deadline.txt").exists()
    d2 = daemons(b, log_name="daemon2.log")
    obj = wait_run(b, run_id, timeout=20, daemon=d2)
    assert obj["state"] == "success", obj
    assert (b.dags / "deadline.txt").read_text() == "fired\n"
    rows = deliveries(b, run_id)
    assert [(r[2], r[3]) for r in rows] == [("deadline", "run")], rows


def test_deadline_of_a_cleared_run_counts_from_the_clear(b, daemons):
    """A finished run queued again by `tasks clear` is queued now: its deadline counts from the
    clear (an old run cleared does not miss it at once), and a deadline it missed before
    fires again if the new go is late too."""
    b.write("late3.yaml", """
        dag: late3
        deadline: {after: 1s, run: 'echo fired >> deadline3.txt'}
        tasks:
          a: {run: 'if [ -e slow ]; then sleep 2; fi'}
        """)
    d = daemons(b)
    run_id = trigger(b, "late3")
    assert wait_run(b, run_id, daemon=d)["state"] == "success"
    fired = lambda: [r for r in deliveries(b, run_id) if r[2] == "deadline"]  # noqa: E731

    def clear_and_wait():
        r = b("tasks", "clear", run_id, "a")
        assert r.rc == 0, r
        assert wait_run(b, run_id, daemon=d)["state"] == "success"

    # queued an hour ago, then cleared: it runs in time
    db_query(b, "UPDATE runs SET queued_at = queued_at - 3600000 WHERE run_id = ?", run_id)
    clear_and_wait()
    assert fired() == [] and not d.lines("missed its deadline"), d.log()
    # late: the deadline fires; cleared and late again: it fires again
    (b.dags / "slow").write_text("")
    for n in (1, 2):
        clear_and_wait()
        assert poll(lambda: (b.dags / "deadline3.txt").exists() and
                    (b.dags / "deadline3.txt").read_text() == "fired\n" * n, timeout=10), d.log()
    d.wait_log("missed its deadline", count=2)
    assert len(fired()) == 1, deliveries(b, run_id)  # the mark, of the last go


def test_pending_delivery_is_sent_again_by_the_next_scheduler(b, recv, daemons):
    """At least once: a scheduler killed while a delivery is in flight leaves it 'pending'; the
    scheduler that resumes the run sends it again (the receiver may see it twice)."""
    config(b, """
        notifiers:
          ops: {webhook: "%s"}
        """ % recv.url("/hang1st/p1"))
    b.write("pend.yaml", """
        dag: pend
        tasks:
          a:
            run: "true"
            on_success: {notify: ops}
          b: {run: "sleep 2", retries: 1}
        """)
    d = daemons(b)
    run_id = trigger(b, "pend")
    assert poll(lambda: recv.bodies("/hang1st/p1"), timeout=10), "no delivery started"
    assert poll(lambda: [r for r in deliveries(b, run_id) if r[5] == "pending"], timeout=10)
    d.kill9()
    d2 = daemons(b, log_name="daemon2.log")
    assert poll(lambda: [r for r in deliveries(b, run_id) if r[5] == "sent"], timeout=20), \
        deliveries(b, run_id)
    got = recv.bodies("/hang1st/p1")
    assert len(got) == 2 and got[1]["task"] == "a" and got[1]["hook"] == "on_success", got
    assert wait_run(b, run_id, timeout=20, daemon=d2)["state"] == "success"


def test_a_stopping_scheduler_does_not_wait_for_a_hanging_receiver(b, recv, daemons):
    config(b, """
        notifiers:
          slow: {webhook: "%s", timeout: 30s}
        """ % recv.url("/hang/s1"))
    b.write("stopme.yaml", """
        dag: stopme
        tasks:
          a:
            run: "true"
            on_success: {notify: slow}
        """)
    d = daemons(b)
    run_id = trigger(b, "stopme")
    assert poll(lambda: recv.bodies("/hang/s1"), timeout=10), "no delivery started"
    t = time.monotonic()
    assert d.stop() == 0
    assert time.monotonic() - t < 4, "the stop waited for the delivery"
    # dropped in flight: the row says so, for the next scheduler
    assert [r[5] for r in deliveries(b, run_id)] == ["pending"]


def test_api_lists_the_deliveries(tmp_path, recv):
    b = make_home(tmp_path / "api")
    config(b, """
        notifiers:
          ops: {webhook: "%s"}
        """ % recv.url("/ok/api1"))
    p = b.write("n8.yaml", """
        dag: n8
        tasks:
          a:
            run: "true"
            on_success: {notify: ops}
        """)
    obj = b.run_json(p)
    srv = ApiServer(b, tmp_path / "api.log").start()
    try:
        tok = token(b, "admin")
        r = srv.get("/api/v1/dags/n8/runs/%s/deliveries" % obj["run_id"], token=tok)
        assert r.status == 200, r
        body = r.json
        assert body["total_entries"] == 1, body
        d = body["deliveries"][0]
        assert (d["task"], d["try"], d["hook"], d["notifier"], d["attempts"], d["state"],
                d["status"], d["error"]) == ("a", 1, "on_success", "ops", 1, "sent", 200, None), d
        assert srv.get("/api/v1/dags/n8/runs/nope/deliveries", token=tok).status == 404
        assert srv.get("/api/v1/dags/other/runs/%s/deliveries" % obj["run_id"],
                       token=tok).status == 404
        assert srv.get("/api/v1/dags/n8/runs/%s/deliveries" % obj["run_id"]).status == 401
        # hostile run ids: huge, not UTF-8
        assert srv.get("/api/v1/dags/n8/runs/%s/deliveries" % ("x" * 5000),
                       token=tok).status in (400, 404, 414)
        assert srv.get("/api/v1/dags/n8/runs/%FF%FE/deliveries", token=tok).status in (400, 404)
        # a viewer reads them
        add_user(b, "vera", "viewer")
        r = srv.get("/api/v1/dags/n8/runs/%s/deliveries" % obj["run_id"], token=token(b, "vera"))
        assert r.status == 200 and r.json["total_entries"] == 1, r
    finally:
        srv.stop()
