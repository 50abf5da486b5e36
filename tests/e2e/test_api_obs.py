"""The event stream (GET /api/v1/events, Server-Sent Events) and /metrics of
`baram standalone`, against the real daemon: every state change arrives, in
order, filtered and resumable; many subscribers all get everything; a stuck
subscriber neither slows the scheduler nor stays attached; /metrics has the
series SPEC section 10 lists, and they move."""

import binascii
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import jwt
import pytest

from conftest import BIN, TIMEOUT, base_env, sanitizers, wait_for


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Api:
    """A `baram standalone` with its API on a free port, its home made by `baram init`."""

    def __init__(self, tmp, ring=None, poll_ms=None):
        self.home = tmp / "home"
        self.dags = tmp / "dags"
        self.dags.mkdir()
        self.env = base_env(self.home)
        self.env["BARAM_ADMIN_PASSWORD"] = "s3cret-pass"
        self.env["BARAM_DAGS"] = str(self.dags)
        if ring:
            self.env["BARAM_EVENTS_RING"] = str(ring)
        if poll_ms:
            self.env["BARAM_EVENTS_POLL_MS"] = str(poll_ms)
        r = self.baram("init")
        assert r.returncode == 0, r.stderr
        key = binascii.unhexlify((self.home / "secret.key").read_text().strip())
        now = int(time.time())
        self.token = jwt.encode({"sub": "admin", "role": "admin", "iss": "baram", "aud": "baram",
                                 "iat": now, "exp": now + 3600, "jti": "t"}, key,
                                algorithm="HS256")
        self.port = free_port()
        # append mode: the daemon's writes always land at the end, whatever
        # offset logtext()'s seek left on the file they share
        self.log = open(tmp / "daemon.log", "a+")
        self.proc = None
        sanitizers.log(tmp / "daemon.log", self)

    def start(self):
        self.proc = subprocess.Popen(
            [BIN, "standalone", "--home", str(self.home), "--dags", str(self.dags),
             "--listen", f"127.0.0.1:{self.port}", "--grace", "1s"],
            env=self.env, stdout=self.log, stderr=self.log)
        deadline = time.time() + 10
        while time.time() < deadline:
            if "scheduler up" in self.logtext() and "api listening" in self.logtext():
                return
            assert self.proc.poll() is None, self.logtext()
            time.sleep(0.02)
        raise AssertionError("daemon did not start: " + self.logtext())

    def logtext(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()

    def write(self, name, text):
        (self.dags / name).write_text(text)

    def baram(self, *args):
        r = subprocess.run([BIN, *args, "--home", str(self.home)], env=self.env,
                           capture_output=True, text=True, timeout=TIMEOUT)
        sanitizers.output("baram " + " ".join(args), r.stderr)
        return r

    def trigger(self, dag):
        r = self.baram("dags", "trigger", dag)
        assert r.returncode == 0, r.stderr
        return r.stdout.strip()

    def get(self, path, token=True):
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}")
        if token:
            req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, dict(resp.headers), resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read().decode()

    def wait_run(self, run_id, timeout=30):
        deadline = time.time() + timeout
        while time.time() < deadline:
            r = self.baram("runs", "show", run_id, "--json")
            if r.returncode in (0, 1) and r.stdout.strip():
                o = json.loads(r.stdout)
                if o["state"] in ("success", "failed", "cancelled"):
                    return o
            time.sleep(0.05)
        raise AssertionError(f"run {run_id} did not end: {self.logtext()}")


class Stream:
    """A raw SSE client on a socket: reads frames in a thread (or not at all: stuck)."""

    def __init__(self, api, query="", last_id=None, read=True):
        self.sock = socket.create_connection(("127.0.0.1", api.port))
        self.sock.settimeout(30)
        if not read:  # a stuck client: a tiny receive buffer, never read
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        headers = f"Authorization: Bearer {api.token}\r\n"
        if last_id is not None:
            headers += f"Last-Event-ID: {last_id}\r\n"
        self.sock.sendall(f"GET /api/v1/events{query} HTTP/1.1\r\nHost: x\r\n{headers}\r\n"
                          .encode())
        self.events = []
        self.ended = False
        self.raw = b""
        self.lock = threading.RLock()
        if read:
            self.thread = threading.Thread(target=self._run, daemon=True)
            self.thread.start()

    def _run(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
                with self.lock:
                    self.raw += chunk
                    self._parse()
        except OSError:
            pass
        with self.lock:
            self.ended = True

    def _parse(self):
        text = self.raw.decode(errors="replace")
        head, sep, body = text.partition("\r\n\r\n")
        if not sep:
            return
        # chunked transfer encoding: strip the chunk size lines
        body = re.sub(r"(^|\r\n)[0-9a-fA-F]+\r\n", "\n", body)
        frames = [f for f in body.replace("\r\n", "\n").split("\n\n") if f.strip()]
        evs = []
        for f in frames:
            fields = {}
            for line in f.split("\n"):
                if ":" in line and not line.startswith(":"):
                    k, _, v = line.partition(":")
                    fields[k.strip()] = v.strip()
            if "event" in fields:
                evs.append(fields)
        self.events = evs
        self.status = head.split(" ")[1] if " " in head else "?"

    def wait(self, pred, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if pred(self):
                    return True
            time.sleep(0.02)
        return False

    def data(self):
        with self.lock:
            return [json.loads(e["data"]) for e in self.events if e.get("event") != "overflow"]

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def api(tmp_path):
    a = Api(tmp_path)
    yield a
    a.stop()


CHAIN = """
dag: chain
tasks:
  a: {run: "true"}
  b: {run: "true", needs: [a]}
  c: {run: "exit 1", needs: [b], retries: 1}
  d: {run: "true", needs: [c], trigger: all_done}
"""


def expected_states(ev):
    return [(e["type"], e.get("task_id"), e["state"], e.get("try")) for e in ev]


def test_events_need_a_token(api):
    api.start()
    status, headers, body = api.get("/api/v1/events", token=False)
    assert status == 401, body


def test_every_state_change_streams_in_order(api):
    api.write("chain.yaml", CHAIN)
    api.start()
    s = Stream(api)
    assert s.wait(lambda x: getattr(x, "status", None) == "200", 5), s.raw
    run_id = api.trigger("chain")
    api.wait_run(run_id)
    assert s.wait(lambda x: any(e["type"] == "run" and e["state"] in ("failed", "success")
                                for e in x.data()))
    ev = s.data()
    ids = [e["id"] for e in ev]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    got = expected_states([e for e in ev if e["run_id"] == run_id])
    assert got[:2] == [("run", None, "queued", None), ("run", None, "running", None)]
    assert got[-1] == ("run", None, "success", None)  # the only leaf, d (all_done), succeeded
    # Each try is claimed durably ('queued') before its process starts (SPEC section 5).
    for task, states in {"a": ["queued", "running", "success"],
                         "b": ["queued", "running", "success"],
                         "d": ["queued", "running", "success"]}.items():
        assert [st for (_, t, st, _) in got if t == task] == states, got
    # c: try 1 fails and goes up_for_retry, try 2 fails for good
    c = [(st, tr) for (_, t, st, tr) in got if t == "c"]
    assert ("running", 1) in c and ("up_for_retry", 1) in c and ("queued", 2) in c and \
        ("running", 2) in c, c
    assert c[-1] == ("failed", 2), c
    # every event of the stream is in the store's run record: nothing reported before it was
    # durable, nothing invented
    o = api.wait_run(run_id)
    assert o["tasks"]["c"]["state"] == "failed" and o["tasks"]["d"]["state"] == "success"
    s.close()


def test_filters_and_resume(api):
    api.write("one.yaml", "dag: one\ntasks:\n  t: {run: 'true'}\n")
    api.write("two.yaml", "dag: two\ntasks:\n  t: {run: 'true'}\n")
    api.start()
    only_one = Stream(api, "?dag=one")
    everything = Stream(api)
    assert only_one.wait(lambda x: getattr(x, "status", None) == "200", 5)
    r1 = api.trigger("one")
    r2 = api.trigger("two")
    api.wait_run(r1)
    api.wait_run(r2)
    assert everything.wait(lambda x: sum(1 for e in x.data() if e["type"] == "run"
                                         and e["state"] == "success") == 2)
    time.sleep(0.3)
    assert {e["dag"] for e in only_one.data()} == {"one"}
    assert len(only_one.data()) == len([e for e in everything.data() if e["dag"] == "one"])
    by_run = Stream(api, f"?run={r2}", last_id=0)  # resumes from the start of the log
    assert by_run.wait(lambda x: any(e["type"] == "run" and e["state"] == "success"
                                     for e in x.data()))
    assert {e["run_id"] for e in by_run.data()} == {r2}
    # resume from the middle: exactly the events after it
    all_ev = everything.data()
    mid = all_ev[len(all_ev) // 2]["id"]
    resumed = Stream(api, last_id=mid)
    assert resumed.wait(lambda x: len(x.data()) >= len([e for e in all_ev if e["id"] > mid]))
    assert [e["id"] for e in resumed.data()][:len([e for e in all_ev if e["id"] > mid])] == \
        [e["id"] for e in all_ev if e["id"] > mid]
    status, _, body = api.get("/api/v1/events?last_event_id=abc")
    assert status == 400, body
    for s in (only_one, everything, by_run, resumed):
        s.close()


def test_many_subscribers_each_get_every_event(api):
    tasks = "\n".join(f"  t{i}: {{run: 'true'}}" for i in range(20))
    api.write("wide.yaml", "dag: wide\ntasks:\n" + tasks + "\n")
    api.start()
    subs = [Stream(api) for _ in range(64)]
    assert all(s.wait(lambda x: getattr(x, "status", None) == "200", 10) for s in subs)
    run_id = api.trigger("wide")
    api.wait_run(run_id)
    n = None
    for s in subs:
        assert s.wait(lambda x: any(e["type"] == "run" and e["state"] == "success"
                                    for e in x.data())), len(s.data())
        got = [e["id"] for e in s.data()]
        n = n or got
        assert got == n  # identical streams
    assert len(n) >= 2 + 2 * 20
    status, _, metrics = api.get("/metrics", token=False)
    assert re.search(r"^baram_event_subscribers 64$", metrics, re.M), metrics
    for s in subs:
        s.close()


def test_a_stuck_subscriber_is_dropped_and_slows_nothing(tmp_path):
    a = Api(tmp_path, ring=64)
    tasks = "\n".join(f"  t{i}: {{run: 'true'}}" for i in range(150))
    a.write("wide.yaml", "dag: wide\ntasks:\n" + tasks + "\n")
    try:
        a.start()
        t0 = time.time()
        a.wait_run(a.trigger("wide"))
        alone = time.time() - t0
        stuck = Stream(a, read=False)
        time.sleep(0.2)
        t0 = time.time()
        a.wait_run(a.trigger("wide"))
        with_stuck = time.time() - t0
        assert with_stuck < alone * 2 + 1.0, (alone, with_stuck)
        # now it reads: what it gets ends with the overflow notice, then the stream ends
        stuck.thread = threading.Thread(target=stuck._run, daemon=True)
        stuck.thread.start()
        # the stream ends: the last (empty) chunk of the response, or the connection closed
        assert stuck.wait(lambda x: x.ended or x.raw.endswith(b"\r\n0\r\n\r\n"), 20), \
            stuck.raw[-300:]
        assert b"event: overflow" in stuck.raw
        stuck.close()
        # the daemon goes on serving new subscribers
        status, _, _ = a.get("/metrics", token=False)
        assert status == 200
    finally:
        a.stop()


def test_metrics_series(api):
    api.write("chain.yaml", CHAIN)
    api.start()
    status, headers, body = api.get("/metrics", token=False)
    assert status == 200 and headers["Content-Type"].startswith("text/plain"), headers
    for name in ["baram_task_instances", "baram_runs", "baram_tries_started_total",
                 "baram_tries_finished_total", "baram_scheduler_latency_seconds_bucket",
                 "baram_scheduler_latency_seconds_sum", "baram_scheduler_latency_seconds_count",
                 "baram_queue_depth", "baram_active_runs", "baram_store_commits_total",
                 "baram_store_commit_seconds_total", "baram_process_resident_memory_bytes"]:
        assert re.search(rf"^{name}[{{ ]", body, re.M), name
    api.wait_run(api.trigger("chain"))
    _, _, body = api.get("/metrics", token=False)
    started = int(re.search(r"^baram_tries_started_total (\d+)$", body, re.M).group(1))
    assert started == 5  # a, b, c twice, d
    assert re.search(r'^baram_task_instances\{state="success"\} 3$', body, re.M), body
    assert re.search(r'^baram_runs\{state="success"\} 1$', body, re.M), body
    inf = int(re.search(r'^baram_scheduler_latency_seconds_bucket\{le="\+Inf"\} (\d+)$', body,
                        re.M).group(1))
    assert inf == 5
    rss = int(re.search(r"^baram_process_resident_memory_bytes (\d+)$", body, re.M).group(1))
    assert 1 << 20 < rss < 1 << 30


def post(api, path, body):
    req = urllib.request.Request(f"http://127.0.0.1:{api.port}{path}", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Authorization": f"Bearer {api.token}",
                                          "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_the_scheduler_in_the_process_wakes_the_stream_at_each_commit(tmp_path):
    """In `baram standalone` the store writer's commits wake the event hub: with its poll
    set to a minute, every state change still streams within seconds."""
    a = Api(tmp_path, poll_ms=60000)
    try:
        gate = tmp_path / "gate"
        a.write("gated.yaml", "dag: gated\ntasks:\n"
                f"  t: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n")
        a.start()
        s = Stream(a)
        assert s.wait(lambda x: getattr(x, "status", None) == "200", 5), s.raw

        def states(run_id, task=None):
            return [e["state"] for e in s.data()
                    if e["run_id"] == run_id and e.get("task_id") == task]

        run_id = a.trigger("gated")
        assert s.wait(lambda x: states(run_id, "t") == ["queued", "running"], 5), s.data()
        assert states(run_id)[:2] == ["queued", "running"], s.data()
        gate.touch()
        assert s.wait(lambda x: states(run_id)[-1:] == ["success"], 5), s.data()
        assert states(run_id, "t")[-1] == "success"
        s.close()
    finally:
        a.stop()


def test_a_run_held_queued_streams_its_queued_event(api, tmp_path):
    gate = tmp_path / "gate"
    api.write("held.yaml", "dag: held\nmax_active_runs: 1\ntasks:\n"
              f"  t: {{run: 'while [ ! -e {gate} ]; do sleep 0.05; done'}}\n")
    api.write("asleep.yaml", "dag: asleep\ntasks:\n  t: {run: 'true'}\n")
    api.start()
    r = api.baram("dags", "pause", "asleep")
    assert r.returncode == 0, r.stderr
    s = Stream(api)
    assert s.wait(lambda x: getattr(x, "status", None) == "200", 5), s.raw

    def run_states(run_id):
        return [e["state"] for e in s.data() if e["type"] == "run" and e["run_id"] == run_id]

    first = api.trigger("held")
    assert s.wait(lambda x: "running" in run_states(first)), s.data()
    # held by max_active_runs (the CLI writes it), and by a paused DAG (the API writes it)
    second = api.trigger("held")
    status, body = post(api, "/api/v1/dags/asleep/runs", {})
    assert status == 201, body
    paused = json.loads(body)["run_id"]
    assert s.wait(lambda x: run_states(second) == ["queued"] and run_states(paused) == ["queued"],
                  10), s.data()
    ev = [e for e in s.data() if e["run_id"] in (second, paused)]
    assert {e["dag"] for e in ev} == {"held", "asleep"}
    # the held run goes on from queued once the first ends; the paused one stays queued
    gate.touch()
    api.wait_run(second)
    assert s.wait(lambda x: run_states(second)[-1:] == ["success"]), s.data()
    assert run_states(second)[:2] == ["queued", "running"], run_states(second)
    assert run_states(paused) == ["queued"]
    s.close()


def test_a_clear_and_a_cancel_the_cli_writes_stream_their_events(api):
    """Changes the CLI writes itself, not through the scheduler's writer, are in the stream
    too: a clear of an ended run (the run queued again, its instances back to none), then its
    rerun; and, with no scheduler at all (`baram api` alone), a cancel."""
    api.write("two.yaml", "dag: two\ntasks:\n  a: {run: 'true'}\n  b: {run: 'true', needs: [a]}\n")
    api.start()
    s = Stream(api)
    assert s.wait(lambda x: getattr(x, "status", None) == "200", 5), s.raw
    run_id = api.trigger("two")
    api.wait_run(run_id)
    assert s.wait(lambda x: any(e["type"] == "run" and e["state"] == "success" for e in x.data()))
    n = len(s.data())
    r = api.baram("tasks", "clear", run_id, "b")
    assert r.returncode == 0, r.stderr
    assert s.wait(lambda x: [e["state"] for e in x.data()[n:] if e["type"] == "run"][-1:]
                  == ["success"], 20), s.data()[n:]
    got = expected_states(s.data()[n:])
    assert got[:2] == [("task_instance", "b", "none", 1), ("run", None, "queued", None)], got
    assert ("task_instance", "b", "running", 2) in got and got[-1] == ("run", None, "success",
                                                                       None), got
    s.close()
    # no scheduler: a triggered run stays queued, and its cancel is written by the CLI
    api.proc.send_signal(signal.SIGTERM)
    assert api.proc.wait(15) == 0
    api.proc = subprocess.Popen([BIN, "api", "--home", str(api.home), "--listen",
                                 f"127.0.0.1:{api.port}"], env=api.env, stdout=api.log,
                                stderr=api.log)
    assert wait_for(lambda: api.logtext().count('msg="api listening"') == 2, 10), api.logtext()
    s = Stream(api)
    assert s.wait(lambda x: getattr(x, "status", None) == "200", 5), s.raw
    queued = api.trigger("two")
    r = api.baram("runs", "cancel", queued)
    assert r.returncode == 0, r.stderr
    assert s.wait(lambda x: [e["state"] for e in x.data() if e["run_id"] == queued]
                  == ["queued", "cancelled"], 10), s.data()
    s.close()


def test_a_client_resuming_after_a_restart_catches_up_from_the_store(api):
    """Events written before the server started are not in its ring: a client resuming from
    id 0 reads them from the store (the catch-up), all of them, in order."""
    api.write("one.yaml", "dag: one\ntasks:\n  t: {run: 'true'}\n  u: {run: 'true', needs: [t]}\n")
    api.start()
    api.wait_run(api.trigger("one"))
    api.stop()
    api.log = open(api.home.parent / "daemon2.log", "a+")  # its "up" lines, not the first's
    sanitizers.log(api.home.parent / "daemon2.log", api)
    api.start()
    s = Stream(api, last_id=0)
    assert s.wait(lambda x: sum(1 for e in x.data() if e["type"] == "run"
                                and e["state"] == "success") == 1), (s.raw[-500:], api.logtext())
    ids = [e["id"] for e in s.data()]
    assert ids == sorted(ids) and ids[0] == 1 and len(ids) == len(set(ids)) >= 6, ids
    s.close()
