"""http tasks, waits and the per-host circuit breaker (SPEC sections 2, 4 and 7)
against real HTTP servers on loopback, started by each test: timeouts, the
breaker shared by every task of a host, retries held back while it is open,
the per-host limit on requests in flight, exit codes, and `baram tasks test`."""

import http.server
import json
import threading
import time
import urllib.parse
import urllib.request

import pytest

from api_util import free_port, make_home, token
from conftest import states
from daemon_util import daemons, poll, run_show, trigger  # noqa: F401 (daemons: a fixture)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        srv = self.server
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        with srv.lock:
            srv.hits.append((time.monotonic(), u.path, self.path))
            srv.inflight += 1
            srv.max_inflight = max(srv.max_inflight, srv.inflight)
        try:
            if "ms" in q:
                time.sleep(int(q["ms"][0]) / 1000.0)
            status = 500 if u.path.startswith("/fail") else 200
            body = b"ok" if status == 200 else b"down"
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        finally:
            with srv.lock:
                srv.inflight -= 1

    def log_message(self, *a):
        pass


class Server:
    def __init__(self):
        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.srv.daemon_threads = True
        self.srv.lock = threading.Lock()
        self.srv.hits = []
        self.srv.inflight = 0
        self.srv.max_inflight = 0
        self.port = self.srv.server_address[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.thread = threading.Thread(target=self.srv.serve_forever, daemon=True)
        self.thread.start()

    def hits(self, path=None):
        with self.srv.lock:
            return [h for h in self.srv.hits if path is None or h[1] == path]

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def tries(baram, run_id, task):
    r = baram("runs", "show", run_id, "--json")
    assert r.rc in (0, 1), r
    ti = [t for t in r.json["task_instances"] if t["task_id"] == task]
    assert len(ti) == 1, r.out
    return ti[0]


# ---- timeouts: the task's own http/wait timeout wins over defaults.timeout ----

def test_own_wait_and_http_timeout_win_over_default(baram, server):
    flag = baram.dags / "late.flag"
    p = baram.write("own.yaml", """
        dag: own
        defaults: {timeout: 1s}
        tasks:
          maker: {run: 'sleep 2; touch %s', timeout: 10s}
          ready:
            wait: {file: "%s", every: 100ms, timeout: 10s}
          slow:
            http: {url: "%s/slow?ms=2000", timeout: 10s}
        """ % (flag, flag, server.url))
    obj = baram.run_json(p)
    assert states(obj) == {"maker": "success", "ready": "success", "slow": "success"}, obj
    assert obj["tasks"]["slow"]["output"] == "ok"


def test_default_timeout_applies_where_task_sets_none(baram, server):
    p = baram.write("dflt.yaml", """
        dag: dflt
        defaults: {timeout: 500ms}
        tasks:
          never:
            wait: {file: "never.flag", every: 100ms}
          slow:
            http: {url: "%s/slow?ms=3000"}
        """ % server.url)
    r = baram.run(p, "--json")
    assert r.rc == 1, r
    obj = r.json
    assert states(obj) == {"never": "failed", "slow": "failed"}, obj
    assert r.elapsed < 2.5, r
    for task in ("never", "slow"):
        msg = obj["tasks"][task]["message"]
        assert msg.startswith("timed out after 500ms"), msg


# ---- exit codes: an http or wait try runs no process ----

def test_http_and_wait_tries_have_no_exit_code(baram, server):
    p = baram.write("codes.yaml", """
        dag: codes
        tasks:
          good: {http: {url: "%s/ok"}}
          bad: {http: {url: "%s/fail"}}
          there: {wait: {file: "codes.yaml", every: 100ms}}
          gone: {wait: {file: "never.flag", every: 100ms, timeout: 300ms}}
          proc: {run: "exit 3"}
        """ % (server.url, server.url))
    r = baram.run(p, "--json")
    assert r.rc == 1, r
    obj = r.json
    assert states(obj) == {"good": "success", "bad": "failed", "there": "success",
                           "gone": "failed", "proc": "failed"}, obj
    for o in (obj, baram("runs", "show", obj["run_id"], "--json").json):
        codes = {k: v["exit_code"] for k, v in o["tasks"].items()}
        assert codes == {"good": None, "bad": None, "there": None, "gone": None, "proc": 3}, o


# ---- the circuit breaker belongs to the host ----

def test_open_circuit_refuses_every_task_and_wait_on_the_host(baram, server):
    p = baram.write("host.yaml", """
        dag: host
        tasks:
          guard:
            http: {url: "%s/fail", circuit_breaker: {failures: 1, reset: 60s}}
          plain:
            needs: [guard]
            trigger: all_done
            http: {url: "%s/ok"}
          probe:
            needs: [guard]
            trigger: all_done
            wait: {http: "%s/ok", every: 100ms, timeout: 5s}
        """ % (server.url, server.url, server.url))
    r = baram.run(p, "--json")
    assert r.rc == 1, r
    obj = r.json
    assert states(obj) == {"guard": "failed", "plain": "failed", "probe": "failed"}, obj
    assert obj["tasks"]["plain"]["message"] == "circuit open", obj
    assert obj["tasks"]["probe"]["message"] == "circuit open", obj
    assert r.elapsed < 4, r  # the wait was refused at once, not left to time out
    assert [h[1] for h in server.hits()] == ["/fail"]  # nothing sent while open


def test_retry_waits_for_the_breakers_trial(baram, server):
    p = baram.write("hold.yaml", """
        dag: hold
        tasks:
          flaky:
            http: {url: "%s/fail", circuit_breaker: {failures: 1, reset: 1s}}
            retries: 3
            retry_delay: 100ms
        """ % server.url)
    r = baram.run(p, "--json")
    assert r.rc == 1, r
    t = r.json["tasks"]["flaky"]
    assert t["state"] == "failed" and t["tries"] == 4, t
    # try 1 opens the circuit; try 2 is refused and its retry waits for the reset, so try 3
    # is the trial (sent, fails, opens again) and try 4 is refused: two requests, a reset apart
    hits = server.hits("/fail")
    assert len(hits) == 2, (hits, r)
    assert hits[1][0] - hits[0][0] >= 0.95, hits
    assert t["message"] == "circuit open", t


# ---- requests in flight per host: http.max_per_host ----

def _config(baram, text):
    """Writes HOME/baram.yaml; returns a DAG of one process task to run under it."""
    baram.home.mkdir(parents=True, exist_ok=True)
    (baram.home / "baram.yaml").write_text(text)
    return baram.write("one.yaml", "dag: one\ntasks:\n  a: {run: 'true'}\n")


def _fanout(baram, server, n=6):
    tasks = "".join('  t%d: {http: {url: "%s/slow?ms=800"}}\n' % (i, server.url)
                    for i in range(n))
    return baram.write("fan.yaml", "dag: fan\ntasks:\n" + tasks)


def test_max_per_host_from_config_and_environment(baram, server):
    _config(baram, "http:\n  max_per_host: 2\n")
    p = _fanout(baram, server)
    obj = baram.run_json(p)
    assert set(states(obj).values()) == {"success"}, obj
    assert server.srv.max_inflight == 2
    server.srv.max_inflight = 0
    obj = baram.run_json(p, env={"BARAM_HTTP_MAX_PER_HOST": "3"})
    assert server.srv.max_inflight == 3
    server.srv.max_inflight = 0
    (baram.home / "baram.yaml").unlink()
    obj = baram.run_json(p)  # the default, 16: all six at once
    assert server.srv.max_inflight == 6


@pytest.mark.parametrize("value", ["0", "-1", "abc", "1.5", "100001"])
def test_bad_max_per_host_is_a_config_error(baram, value):
    p = _config(baram, "log_level: warn\nhttp:\n  max_per_host: %s\n" % value)
    r = baram.run(p)
    assert r.rc == 2, r
    assert "baram.yaml:3:17: error: bad 'http.max_per_host' '%s'" % value in r.err, r
    (baram.home / "baram.yaml").unlink()
    r = baram.run(p, env={"BARAM_HTTP_MAX_PER_HOST": value})
    assert r.rc == 2, r
    assert "BARAM_HTTP_MAX_PER_HOST" in r.err and "'%s'" % value in r.err, r


def test_unknown_http_config_key(baram):
    r = baram.run(_config(baram, "http:\n  max_per_hots: 4\n"))
    assert r.rc == 2, r
    assert "unknown key 'max_per_hots' in 'http'" in r.err and "max_per_host" in r.err, r


# ---- /metrics: in-flight requests and breaker state per host; the API's exit codes ----

def _get(port, path, tok=None):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path))
    if tok:
        req.add_header("Authorization", "Bearer " + tok)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return resp.read().decode()


def test_metrics_per_host_and_api_exit_codes(tmp_path, daemons, server):
    other = Server()
    try:
        b = make_home(tmp_path)
        b.env["BARAM_DAGS"] = str(b.dags)
        b.write("m.yaml", """
            dag: m
            tasks:
              guard:
                http: {url: "%s/fail", circuit_breaker: {failures: 1, reset: 60s}}
              slow:
                http: {url: "%s/slow?ms=5000"}
            """ % (server.url, other.url))
        port = free_port()
        d = daemons(b, "--listen", "127.0.0.1:%d" % port)
        d.wait_log('msg="api listening"')
        run_id = trigger(b, "m")
        a, o = 'host="http://127.0.0.1:%d"' % server.port, 'host="http://127.0.0.1:%d"' % other.port
        want = ['baram_circuit_state{%s,state="open"} 1' % a,
                'baram_circuit_state{%s,state="closed"} 0' % a,
                'baram_http_in_flight{%s} 1' % o,
                'baram_http_in_flight{%s} 0' % a]
        text = poll(lambda: (lambda t: t if all(w in t.splitlines() for w in want) else None)(
            _get(port, "/metrics")), timeout=15)
        assert text, (_get(port, "/metrics"), d.log())
        assert "baram_circuit_state{%s" % o not in text  # no breaker on that host
        assert poll(lambda: run_show(b, run_id)["state"] in ("success", "failed"), timeout=20)
        text = _get(port, "/metrics")
        assert 'baram_http_in_flight{%s} 0' % o in text.splitlines(), text
        tok = token(b)
        tis = json.loads(_get(port, "/api/v1/dags/m/runs/%s/tasks" % run_id, tok))
        tis = tis["tasks"]
        assert {t["task_id"]: t["exit_code"] for t in tis} == {"guard": None, "slow": None}, tis
        ti = json.loads(_get(port, "/api/v1/dags/m/runs/%s/tasks/slow" % run_id, tok))
        assert ti["exit_code"] is None and ti["state"] == "success", ti
        assert [t["exit_code"] for t in ti["tries"]] == [None], ti
    finally:
        other.close()


# ---- baram tasks test: timeouts said as such; http and wait tasks run ----

def test_tasks_test_says_timed_out(baram):
    p = baram.write("tt.yaml", """
        dag: tt
        tasks:
          slow: {timeout: 300ms, run: 'sleep 5'}
          bad: {run: 'exit 3'}
        """)
    r = baram("tasks", "test", p, "slow")
    assert r.rc == 1, r
    assert "task 'slow' failed in" in r.err and r.err.rstrip().endswith(
        ": timed out after 300ms"), r
    assert "143" not in r.err, r
    r = baram("tasks", "test", p, "bad")
    assert r.rc == 1, r
    assert "task 'bad' failed (exit 3) in" in r.err, r


def test_tasks_test_says_what_a_run_says_when_exec_refuses(baram):
    """The kernel may still refuse a command and environment that spawn_check let through
    (E2BIG: it counts what baram cannot see). A run explains it; the test of the same task
    must say the same, not strerror's "Argument list too long"."""
    p = baram.write("big.yaml", """
        dag: big
        tasks:
          a: {run: 'true'}
        """)
    fault = {"BARAM_FAULT": "FP_SPAWN_E2BIG"}
    want = "over what exec takes (E2BIG)"
    r = baram("run", p, env=fault)
    assert r.rc == 1 and want in r.out + r.err, r
    r = baram("tasks", "test", p, "a", env=fault)
    assert r.rc == 1, r
    assert want in r.err and "Argument list too long" not in r.err, r


def test_tasks_test_runs_http_and_wait_tasks(baram, server):
    p = baram.write("tth.yaml", """
        dag: tth
        params: {who: "a b"}
        tasks:
          get: {http: {url: "%s/ok?who={{ params.who }}"}}
          bad: {http: {url: "%s/fail"}}
          slow: {http: {url: "%s/slow?ms=3000", timeout: 300ms}}
          there: {wait: {file: "tth.yaml", every: 50ms}}
          never: {wait: {file: "never.flag", every: 50ms, timeout: 300ms}}
          up: {wait: {http: "%s/ok", every: 50ms, timeout: 5s}}
        """ % (server.url, server.url, server.url, server.url))
    r = baram("tasks", "test", p, "get")
    assert r.rc == 0, r
    assert r.out == "ok\n" and "task 'get' succeeded" in r.err, r
    assert [h[2] for h in server.hits("/ok")] == ["/ok?who=a%20b"], r
    r = baram("tasks", "test", p, "bad")
    assert r.rc == 1 and "failed in" in r.err and "expected status 2xx, got 500" in r.err, r
    r = baram("tasks", "test", p, "slow")
    assert r.rc == 1 and r.err.rstrip().endswith(": timed out after 300ms"), r
    assert r.elapsed < 2.5, r
    r = baram("tasks", "test", p, "there")
    assert r.rc == 0 and "task 'there' succeeded" in r.err, r
    r = baram("tasks", "test", p, "never")
    assert r.rc == 1 and "timed out after 300ms: file" in r.err, r
    r = baram("tasks", "test", p, "up")
    assert r.rc == 0 and "task 'up' succeeded" in r.err, r
    assert "manual__" not in baram("runs", "list").out  # nothing recorded
