"""How tasks are started (stdin, file descriptors, process groups), the home's
configuration (parallelism, pools), concurrent runs in one home, retry
backoff, cancelling during a retry delay, wait sensors and http tasks."""

import http.server
import json
import os
import signal
import subprocess
import threading
import time

import pytest

from conftest import BIN, read_events, stamp, states, wait_for
from test_sched import max_overlap


def test_task_stdin_fds_and_process_group(baram):
    # The task ends in `exec sleep`: the process then holds exactly the descriptors baram
    # gave it, read from outside while it sleeps (a shell lists its own fds racily: a
    # pipeline or a redirection opens some of its own for a moment).
    p = baram.write("proc.yaml", """
        dag: proc
        tasks:
          probe:
            run: |
              cat > stdin.txt
              ps -o pgid= -p $$ | tr -d ' ' > pgid.txt
              echo $$ > pid.txt
              exec sleep 2
        """)
    # baram's own stdin is a pipe that never closes: the task must not read it
    proc = subprocess.Popen([BIN, "run", str(p)], cwd=str(baram.dags), env=baram.env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    pid_file = baram.dags / "pid.txt"
    fds = None

    def sleeping():
        nonlocal fds
        if not pid_file.exists() or not pid_file.read_text().endswith("\n"):
            return False
        pid = pid_file.read_text().strip()
        try:
            if open(f"/proc/{pid}/comm").read().strip() != "sleep":
                return False
            fds = sorted(os.listdir(f"/proc/{pid}/fd"), key=int)
        except FileNotFoundError:
            return False
        return True

    try:
        assert wait_for(sleeping, timeout=15), "the task never reached its sleep"
        out, err = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("the task read baram's stdin and hung")
    assert proc.returncode == 0, (out, err)
    assert (baram.dags / "stdin.txt").read_text() == ""
    # only stdin, stdout, stderr: none of baram's own files (database, logs, loop) leak
    assert fds == ["0", "1", "2"]
    # its own process group
    assert (baram.dags / "pgid.txt").read_text().strip() == (baram.dags / "pid.txt").read_text().strip()


def test_parallelism_from_home_config(baram):
    body = "%s; sleep 0.3; %s" % (stamp("start"), stamp("end"))
    tasks = "".join("  t%d: {run: '%s'}\n" % (i, body) for i in range(4))
    p = baram.write("cfg.yaml", "dag: cfg\ntasks:\n" + tasks)
    baram.home.mkdir(parents=True, exist_ok=True)
    (baram.home / "baram.yaml").write_text("parallelism: 1\n")
    baram.run_json(p)
    assert max_overlap(read_events(baram.dags / "events.log")) == 1
    # the environment overrides the file, the flag overrides both
    (baram.dags / "events.log").unlink()
    baram.run_json(p, env={"BARAM_PARALLELISM": "4"})
    assert max_overlap(read_events(baram.dags / "events.log")) == 4
    (baram.dags / "events.log").unlink()
    baram.run_json(p, "--parallelism", "2", env={"BARAM_PARALLELISM": "4"})
    assert max_overlap(read_events(baram.dags / "events.log")) == 2


def test_bad_home_config_exit_2(baram):
    p = baram.write("ok.yaml", "dag: ok\ntasks:\n  a: {run: 'true'}\n")
    baram.home.mkdir(parents=True, exist_ok=True)
    (baram.home / "baram.yaml").write_text("parallelizm: 3\n")
    r = baram.run(p)
    assert r.rc == 2, r
    assert "baram.yaml:1:1: error:" in r.err and "parallelism" in r.err, r


def test_pool_slots(baram):
    body = "%s; sleep 0.3; %s" % (stamp("start"), stamp("end"))
    tasks = "".join("  s%d: {run: '%s', pool: solo}\n" % (i, body) for i in range(3))
    tasks += "".join("  f%d: {run: '%s'}\n" % (i, body) for i in range(3))
    p = baram.write("pool.yaml", "dag: pool\ntasks:\n" + tasks)
    baram.home.mkdir(parents=True, exist_ok=True)
    (baram.home / "baram.yaml").write_text("pools: {solo: 1}\n")
    baram.run_json(p, "--parallelism", "8")
    ev = read_events(baram.dags / "events.log")
    solo = {k: v for k, v in ev.items() if k.startswith("s")}
    free = {k: v for k, v in ev.items() if k.startswith("f")}
    assert max_overlap(solo) == 1, solo
    assert max_overlap(free) == 3, free


CONC = """
dag: conc
tasks:
  a: {run: 'sleep 0.1'}
  b: {run: 'sleep 0.1', needs: [a]}
  c: {run: 'true', needs: [a]}
"""


def concurrent_runs(baram, p, n):
    procs = [baram.popen("run", p, "--json") for _ in range(n)]
    results = [proc.communicate(timeout=60) + (proc.returncode,) for proc in procs]
    return results


def test_concurrent_runs_distinct_ids(baram):
    # several `baram run` at once in one home (that already exists): each run
    # gets its own id and its own records
    p = baram.write("conc.yaml", CONC)
    assert baram.run(p).rc == 0
    for _ in range(4):
        objs = []
        for out, err, rc in concurrent_runs(baram, p, 6):
            assert rc == 0, (out, err)
            objs.append(json.loads(out))
        ids = [o["run_id"] for o in objs]
        assert len(set(ids)) == len(ids), ids
        listed = set(baram.run_ids())
        assert set(ids) <= listed, (ids, listed)
        for o in objs:
            assert set(states(o).values()) == {"success"}
            r = baram("runs", "show", o["run_id"], "--json")
            assert r.rc == 0 and r.json == o, r


def test_concurrent_first_runs_fresh_home(tmp_path):
    # the very first runs of a home, started together, all open (and create) it
    from conftest import Baram
    for i in range(6):
        base = tmp_path / ("round%d" % i)
        (base / "dags").mkdir(parents=True)
        b = Baram(base / "home", base / "dags")
        p = b.write("conc.yaml", CONC)
        for out, err, rc in concurrent_runs(b, p, 4):
            assert rc == 0, (out, err)


def test_retry_backoff(baram):
    p = baram.write("bo.yaml", """
        dag: bo
        tasks:
          flaky:
            retries: 3
            retry_delay: 300ms
            retry_backoff: 2
            max_retry_delay: 700ms
            run: |
              date +%s.%N >> starts.txt
              [ "$BARAM_TRY" = 4 ]
        """)
    obj = baram.run_json(p)
    assert obj["tasks"]["flaky"]["tries"] == 4
    s = [float(x) for x in (baram.dags / "starts.txt").read_text().split()]
    gaps = [b - a for a, b in zip(s, s[1:])]
    # 300 ms, 600 ms, then 1200 ms capped at 700 ms
    assert 0.3 <= gaps[0] < 0.6, gaps
    assert 0.6 <= gaps[1] < 0.9, gaps
    assert 0.7 <= gaps[2] < 1.0, gaps


def test_cancel_during_retry_delay(baram):
    p = baram.write("crd.yaml", """
        dag: crd
        tasks:
          flaky:
            retries: 3
            retry_delay: 30s
            run: 'echo $BARAM_TRY >> tries.txt; exit 1'
        """)
    proc = baram.popen("run", p, "--json")
    try:
        assert wait_for(lambda: (baram.dags / "tries.txt").exists())
        time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
        assert time.monotonic() - t0 < 5, err
        assert proc.returncode == 1, (out, err)
        assert json.loads(out)["state"] == "cancelled"
        assert (baram.dags / "tries.txt").read_text() == "1\n"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_wait_file_sensor(baram):
    target = baram.dags / "arrived.flag"
    p = baram.write("wait.yaml", """
        dag: waits
        tasks:
          producer: {run: 'sleep 0.5; touch %s'}
          sensor:
            wait: {file: "%s", every: 100ms, timeout: 10s}
          never:
            wait: {file: "%s", every: 100ms, timeout: 600ms}
          after: {run: 'true', needs: [sensor]}
        """ % (target, target, baram.dags / "never.flag"))
    r = baram.run(p, "--json", "--parallelism", "1")
    assert r.rc == 1, r
    s = states(r.json)
    # the sensor holds no slot while it waits: with one slot the producer still runs
    assert s == {"producer": "success", "sensor": "success", "never": "failed",
                 "after": "success"}, s


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/big"):
            body = b"z" * 100000
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        if self.path.startswith("/fail"):
            self.send_response(500)
            self.end_headers()
            return
        body = ("path=" + self.path).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


@pytest.fixture
def http_server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv.server_address[1]
    srv.shutdown()
    srv.server_close()


def test_http_task(baram, http_server):
    p = baram.write("http.yaml", """
        dag: web
        params: {q: "a b&c=d/e?f#g"}
        tasks:
          get:
            http: {url: "http://127.0.0.1:%d/echo?q={{ params.q }}"}
          bad:
            http: {url: "http://127.0.0.1:%d/fail"}
          big:
            http: {url: "http://127.0.0.1:%d/big"}
          use:
            needs: [get]
            run: printf '%%s' "$OUTPUT_GET" > got.txt
        """ % (http_server, http_server, http_server))
    r = baram.run(p, "--json")
    assert r.rc == 1, r
    obj = r.json
    assert states(obj) == {"get": "success", "bad": "failed", "use": "success",
                           "big": "success"}, obj
    assert obj["tasks"]["big"]["output"] == "z" * 65536  # an http body is cut at 64 KiB
    want = "path=/echo?q=a%20b%26c%3Dd%2Fe%3Ff%23g"
    assert obj["tasks"]["get"]["output"] == want
    assert (baram.dags / "got.txt").read_text() == want


def test_many_mapped_instances(baram):
    p = baram.write("many.yaml", """
        dag: many
        tasks:
          gen: {run: 'i=0; while [ $i -lt 200 ]; do echo "item$i"; i=$((i+1)); done > "$BARAM_OUTPUT"'}
          each:
            needs: [gen]
            for_each: "{{ outputs.gen }}"
            run: printf '%s' {{ item }} > "$BARAM_OUTPUT"
          sum:
            needs: [each]
            run: printf '%s' "$OUTPUT_EACH" > all.json
        """)
    obj = baram.run_json(p, "--parallelism", "16")
    assert len([n for n in obj["tasks"] if n.startswith("each[")]) == 200
    assert json.loads((baram.dags / "all.json").read_text()) == ["item%d" % i for i in range(200)]


def test_logs_of_mapped_instance(baram):
    p = baram.write("ml.yaml", """
        dag: ml
        tasks:
          each: {for_each: [x, y], run: 'echo "hello {{ item }}"'}
        """)
    obj = baram.run_json(p)
    r = baram("logs", obj["run_id"], "each[1]")
    assert r.rc == 0, r
    assert r.out.strip() == "hello y", r
