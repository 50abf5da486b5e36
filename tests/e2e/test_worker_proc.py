"""`baram worker` as a process, without a scheduler (SPEC section 12): tries are put in
ti_queue by hand (a spec as the scheduler would write it, exec/tryspec.h) and the worker's
side of the protocol is read back from the database: it claims them, runs them, writes their
logs in its home and reports their ends in try_results (and the log in try_logs); it honours
its queues and slots, drains on SIGTERM, registers again when declared dead, kills its tries
when it cannot heartbeat for 3/4 of dead_after, and at its start kills only the tries a
previous worker of its own name left behind. Plus its flags and its refusal of SQLite."""

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request

import pytest

from api_util import add_user, token
from conftest import BIN, alive, db_query, sanitizers
from daemon_util import daemons, poll  # noqa: F401 (daemons: a fixture)

FAST = {"BARAM_WORKER_HEARTBEAT": "200ms", "BARAM_WORKER_DEAD_AFTER": "2s"}


class Worker:
    """One `baram worker ARGS` process on b's home, its stderr in a file."""

    def __init__(self, b, url, args, log_path, env=None):
        self.b = b
        self.env = dict(b.env, BARAM_DB=url, **(env or {}))
        self.args = [str(a) for a in args]
        self.log_path = log_path
        sanitizers.log(log_path, self)
        with open(log_path, "ab") as f:
            self.proc = subprocess.Popen([BIN, "worker"] + self.args, cwd=str(b.dags),
                                         env=self.env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=f)

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_log(self, text, timeout=15.0, count=1):
        def seen():
            if self.proc.poll() is not None and self.log().count(text) < count:
                raise AssertionError("worker exited (rc %s) before logging %r:\n%s"
                                     % (self.proc.returncode, text, self.log()))
            return self.log().count(text) >= count
        assert poll(seen, timeout), "no %r in %.1fs:\n%s" % (text, timeout, self.log())

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("worker did not stop within %.0fs:\n%s" % (timeout, self.log()))


class Fleet:
    """The database (pg_url), a scheduler row that owns the tries put in by hand, and the
    workers a test starts (SIGKILLed at teardown if still running)."""

    def __init__(self, b, url, tmp):
        self.b, self.url, self.tmp = b, url, tmp
        self.workers = []
        self.sched = None

    def worker(self, *args, env=None, up=True):
        w = Worker(self.b, self.url, args, self.tmp / ("worker%d.log" % len(self.workers)), env)
        self.workers.append(w)
        if up:
            w.wait_log('msg="worker up"')
            if self.sched is None:  # the worker made the tables
                db_query(self.url, "INSERT INTO workers (role, name, hostname, pid) "
                                   "VALUES ('scheduler', 'sched', 'h', 1)")
                self.sched = self.q("SELECT max(id) FROM workers WHERE role = 'scheduler'")[0][0]
        return w

    def q(self, sql, *args):
        return db_query(self.url, sql, *args)

    def submit(self, run_id, task, cmd=None, kind="run", queue="default", try_number=1,
               timeout_ms=0, spec=None, **extra):
        """Puts one try in ti_queue as a scheduler would (wq_submit), then rings baram_queued."""
        if spec is None:
            spec = {"v": 1, "kind": kind, "dag": "d", "run_id": run_id, "task": task,
                    "map_index": -1, "task_id": task, "try": try_number, "queue": queue,
                    "dir": str(self.b.dags), "timeout_ms": timeout_ms, "grace_ms": 2000,
                    "env": ["BARAM_DAG=d", "BARAM_RUN_ID=%s" % run_id, "BARAM_TASK=%s" % task,
                            "BARAM_TRY=%d" % try_number, "FROM_SPEC=yes"]}
            if cmd is not None:
                spec["cmd"] = cmd
            spec.update(extra)
        self.q("INSERT INTO ti_queue (run_id, task_id, try_number, state, queue, sched_id, "
               "queued_at, spec) VALUES (?, ?, ?, 'queued', ?, ?, now(), CAST(? AS jsonb))",
               run_id, task, try_number, queue, self.sched, json.dumps(spec))
        self.q("NOTIFY baram_queued")

    def result(self, run_id, task, phase="ended"):
        rows = self.q("SELECT phase, worker, exit_code, term_signal, timed_out, killed, met, "
                      "message, output FROM try_results WHERE run_id = ? AND task_id = ? "
                      "AND phase = ?", run_id, task, phase)
        if not rows:
            return None
        keys = ("phase", "worker", "exit_code", "term_signal", "timed_out", "killed", "met",
                "message", "output")
        return dict(zip(keys, rows[0]))

    def wait_result(self, run_id, task, timeout=15.0):
        r = poll(lambda: self.result(run_id, task), timeout)
        assert r, "no end of %s %s in %.0fs:\n%s" % (run_id, task, timeout,
                                                       "\n".join(w.log() for w in self.workers))
        return r

    def queue_rows(self):
        return self.q("SELECT task_id, state, worker_id FROM ti_queue ORDER BY task_id")

    def cleanup(self):
        for w in self.workers:
            if w.proc.poll() is None:
                w.proc.kill()
                w.proc.wait(10)


@pytest.fixture
def fleet(baram, pg_url, tmp_path):
    f = Fleet(baram, pg_url, tmp_path)
    yield f
    f.cleanup()


def wait_pid(path, timeout=15.0):
    """The pid a task wrote to path."""
    assert poll(lambda: path.exists() and path.read_text().strip(), timeout), path
    return int(path.read_text())


def log_of(b, run_id, task, try_number=1):
    return b.home / "logs" / "d" / run_id / ("%s.%d.log" % (task, try_number))


# ---- flags ----

def test_worker_help_and_bad_flags(baram):
    r = baram("worker", "--help")
    assert r.rc == 0 and r.out.startswith("usage: baram worker [--queues Q1,Q2]"), r
    assert "--slots N" in r.out and "--grace DURATION" in r.out and "--listen" in r.out
    for args, words in ((["--slots", "0"], "--slots"), (["--queues", "a,,b"], "bad queue name"),
                        (["--queues", "gp u"], "bad queue name"), (["--grace", "soon"], "--grace"),
                        (["--slot", "2"], "did you mean '--slots'?"), (["extra"], "")):
        r = baram("worker", *args)
        assert r.rc == 2 and words in r.err, (args, r)
    assert "worker" in baram("--help").out


def test_worker_refuses_sqlite(baram):
    r = baram("worker", env={"BARAM_DB": str(baram.home / "baram.db")})
    assert r.rc == 2, r
    assert r.err == ("baram worker needs a PostgreSQL database (db: postgresql://...): on SQLite "
                     "`baram standalone` runs the tasks\n"), r
    r = baram("worker", env={"BARAM_DB": "postgresql:///none?host=%s&connect_timeout=2"
                             % (baram.home / "no-server")})
    assert r.rc == 2 and 'msg="cannot start" role=worker' in r.err, r


# ---- running tries ----

def test_worker_runs_a_try_and_reports_its_end(fleet):
    b = fleet.b
    w = fleet.worker("--name", "w1")
    assert 'worker=w1' in w.log() and "queues=default" in w.log() and "slots=" in w.log()
    (row,) = fleet.q("SELECT role, name, state, queues, slots FROM workers WHERE role = 'worker'")
    assert row[:4] == ("worker", "w1", "active", ["default"]) and row[4] >= 1, row
    fleet.submit("r1", "t", "echo hello; env | grep -E '^(BARAM_|FROM_SPEC)' | sort; "
                            "printf 42 > \"$BARAM_OUTPUT\"")
    fleet.submit("r1", "f", "exit 3")
    r = fleet.wait_result("r1", "t")
    assert r["worker"] == "w1" and r["exit_code"] == 0 and r["message"] is None, r
    assert r["output"] == b"42" and not r["killed"] and not r["timed_out"], r
    r = fleet.wait_result("r1", "f")
    assert r["exit_code"] == 3 and r["message"] == "exit code 3" and r["output"] is None, r
    log = log_of(b, "r1", "t").read_text()
    assert log.startswith("hello\n"), log
    env = [ln for ln in log.splitlines()[1:]]
    assert "BARAM_WORKER=w1" in env and "FROM_SPEC=yes" in env and "BARAM_RUN_ID=r1" in env, env
    assert any(v.startswith("BARAM_OUTPUT=") for v in env), env
    assert not any(v.startswith(("BARAM_DB=", "BARAM_HOME=")) for v in env), env  # no secrets
    (stored,) = fleet.q("SELECT log FROM try_logs WHERE run_id = 'r1' AND task_id = 't'")
    assert stored[0].decode() == log
    assert fleet.queue_rows() == []  # the row went with the end
    assert w.stop() == 0
    assert fleet.q("SELECT state FROM workers WHERE role = 'worker'") == [("stopped",)]


def test_worker_reports_timeouts_waits_and_bad_specs(fleet):
    fleet.worker()
    (fleet.b.dags / "here").write_text("")
    fleet.submit("r2", "slow", "sleep 30", timeout_ms=300)
    fleet.submit("r2", "w", kind="wait", wait={"file": str(fleet.b.dags / "here"),
                                                "http_url": None, "every_ms": 50, "timeout_ms": 0})
    fleet.submit("r2", "bad", spec={"v": 1, "kind": "teleport"})
    r = fleet.wait_result("r2", "slow")
    assert r["timed_out"] and r["message"].startswith("timed out after"), r
    assert "timed out after" in log_of(fleet.b, "r2", "slow").read_text()
    r = fleet.wait_result("r2", "w")
    assert r["met"] and r["exit_code"] == -1 and r["message"] is None, r
    r = fleet.wait_result("r2", "bad")
    assert r["exit_code"] == -1 and r["message"].startswith("cannot read the try's spec"), r


def test_worker_keeps_the_last_bytes_of_a_long_log(fleet):
    fleet.worker(env={"BARAM_LOGS_STORE_MAX": "1KiB"})
    fleet.submit("r3", "t", "head -c 5000 /dev/zero | tr '\\0' x; echo; echo last line")
    fleet.wait_result("r3", "t")
    size = log_of(fleet.b, "r3", "t").stat().st_size
    assert size == 5011  # the file keeps it all
    (stored,) = fleet.q("SELECT log FROM try_logs WHERE run_id = 'r3'")
    head, rest = stored[0].decode().split("\n", 1)
    assert head == "[baram: log cut: the first %d bytes are not kept]" % (size - 1024), head
    assert len(rest) == 1024 and rest.endswith("x\nlast line\n"), rest[-40:]


def test_worker_honours_its_queues_and_slots(fleet):
    go = fleet.b.dags / "go"
    fleet.worker("--queues", "a,b", "--slots", "2")
    wait_go = "while [ ! -e %s ]; do sleep 0.05; done" % go
    for t in ("t1", "t2", "t3"):
        fleet.submit("r4", t, wait_go, queue="a")
    fleet.submit("r4", "t4", wait_go, queue="b")
    fleet.submit("r4", "gpu", "true", queue="gpu")
    running = lambda: [r for r in fleet.queue_rows() if r[1] == "running"]  # noqa: E731
    assert poll(lambda: len(running()) == 2, 10), fleet.queue_rows()
    time.sleep(1.5)  # a claim a second at least: none takes a third slot
    assert len(running()) == 2, fleet.queue_rows()
    go.write_text("")
    for t in ("t1", "t2", "t3", "t4"):
        assert fleet.wait_result("r4", t)["exit_code"] == 0
    assert fleet.queue_rows() == [("gpu", "queued", None)]  # no worker listens on gpu


def test_worker_waits_hold_no_slot(fleet):
    fleet.worker("--slots", "1")
    flag = fleet.b.dags / "flag"
    fleet.submit("r5", "w", kind="wait", wait={"file": str(flag), "http_url": None,
                                                "every_ms": 50, "timeout_ms": 0})
    fleet.submit("r5", "t", "true")
    assert fleet.wait_result("r5", "t")["exit_code"] == 0  # ran beside the wait
    flag.write_text("")
    assert fleet.wait_result("r5", "w")["met"]


# ---- stopping, kills and failures ----

def test_worker_drains_on_sigterm(fleet):
    w = fleet.worker("--grace", "1s", "--name", "drainer")
    # quick ends when told (during the drain): both tries are running at once however slow the
    # claims are
    flag = fleet.b.dags / "quick-may-end"
    fleet.submit("r6", "quick", "until [ -e %s ]; do sleep 0.05; done" % flag)
    fleet.submit("r6", "long", "sleep 30")
    assert poll(lambda: len([r for r in fleet.queue_rows() if r[1] == "running"]) == 2, 10)
    w.proc.send_signal(signal.SIGTERM)
    assert poll(lambda: fleet.q("SELECT state FROM workers WHERE name = 'drainer'")
                == [("draining",)], 5)
    flag.write_text("")
    fleet.submit("r6", "late", "true")
    assert w.proc.wait(15) == 0, w.log()
    assert fleet.wait_result("r6", "quick")["exit_code"] == 0
    r = fleet.wait_result("r6", "long")
    assert r["killed"] and r["term_signal"] == signal.SIGTERM, r
    assert fleet.q("SELECT state FROM workers WHERE name = 'drainer'") == [("stopped",)]
    assert fleet.queue_rows() == [("late", "queued", None)]  # never claimed
    assert 'msg="worker draining"' in w.log() and 'msg="worker stopped"' in w.log()


def test_worker_kills_a_try_on_request(fleet):
    fleet.worker(env=FAST)
    pidf = fleet.b.dags / "pid"
    fleet.submit("r7", "t", "echo $$ > %s; exec sleep 30" % pidf)
    pid = wait_pid(pidf)
    (wid,) = fleet.q("SELECT worker_id FROM ti_queue WHERE run_id = 'r7'")[0]
    fleet.q("UPDATE ti_queue SET kill_requested = true WHERE run_id = 'r7'")
    fleet.q("NOTIFY baram_worker_%d" % wid)
    r = fleet.wait_result("r7", "t")
    assert r["killed"] and not alive(pid), r
    assert "killed at the scheduler's request" in log_of(fleet.b, "r7", "t").read_text()


def test_worker_registers_again_when_declared_dead(fleet):
    w = fleet.worker("--name", "phoenix", env=FAST)
    pidf = fleet.b.dags / "pid"
    fleet.submit("r8", "t", "echo $$ > %s; exec sleep 30" % pidf)
    pid = wait_pid(pidf)
    fleet.q("UPDATE workers SET state = 'dead' WHERE name = 'phoenix'")
    w.wait_log('msg="declared dead: killing its tries and registering again"')
    w.wait_log('msg="worker up"', count=2)
    assert poll(lambda: not alive(pid), 10)
    rows = fleet.q("SELECT state FROM workers WHERE name = 'phoenix' ORDER BY id")
    assert rows == [("dead",), ("active",)], rows
    time.sleep(0.5)
    assert fleet.result("r8", "t") is None  # dropped: a sweep reports it lost
    fleet.submit("r9", "t", "true")  # claims again, under its new id
    assert fleet.wait_result("r9", "t")["exit_code"] == 0


def test_worker_kills_its_tries_after_a_freeze(fleet):
    w = fleet.worker("--name", "frozen", env=FAST)
    pidf = fleet.b.dags / "pid"
    fleet.submit("r10", "t", "echo $$ > %s; exec sleep 30" % pidf)
    pid = wait_pid(pidf)
    os.kill(w.pid, signal.SIGSTOP)
    time.sleep(1.8)  # over 3/4 of dead_after (2s): a scheduler may give its tries away now
    os.kill(w.pid, signal.SIGCONT)
    w.wait_log("no heartbeat for 3/4 of dead_after")
    assert poll(lambda: not alive(pid), 10)
    # no scheduler declared it dead: once a heartbeat succeeds the kill is reported
    r = fleet.wait_result("r10", "t")
    assert r["killed"], r
    assert "had no heartbeat for" in log_of(fleet.b, "r10", "t").read_text()
    assert w.proc.poll() is None


def test_worker_kills_only_its_own_orphans(fleet):
    a = fleet.worker("--name", "alpha")
    fleet.worker("--name", "beta", "--queues", "other")
    pa, pb = fleet.b.dags / "pa", fleet.b.dags / "pb"
    fleet.submit("r11", "a", "echo $$ > %s; exec sleep 30" % pa)
    fleet.submit("r11", "b", "echo $$ > %s; exec sleep 30" % pb, queue="other")
    pid_a, pid_b = wait_pid(pa), wait_pid(pb)
    a.stop(signal.SIGKILL)
    assert alive(pid_a)  # left behind, in a session of its own
    a2 = fleet.worker("--name", "alpha")
    assert poll(lambda: not alive(pid_a), 10)
    assert "killed a try left by a previous worker of this name" in a2.log()
    assert alive(pid_b)  # beta's own try is none of alpha's business
    os.kill(pid_b, signal.SIGKILL)


def test_worker_serves_the_logs_of_its_running_tries(fleet):
    b = fleet.b
    r = b("worker", "--listen", "127.0.0.1:0", env={"BARAM_DB": fleet.url})
    assert r.rc == 2 and "secret.key" in r.err, r  # no keys to check tokens with
    b.env["BARAM_DB"] = fleet.url
    assert b("init", env={"BARAM_ADMIN_PASSWORD": "admin-pw-for-tests"}).rc == 0
    tok = token(b)
    w = fleet.worker("--listen", "127.0.0.1:0")
    ((url,),) = fleet.q("SELECT log_url FROM workers WHERE role = 'worker'")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and "log_url=%s" % url in w.log(), url
    go = b.dags / "go"
    fleet.submit("r12", "t", "echo first line; while [ ! -e %s ]; do sleep 0.05; done" % go)

    def get(path, auth=True):
        req = urllib.request.Request(url + path, headers={"Authorization": "Bearer " + tok}
                                     if auth else {})
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()
    assert poll(lambda: get("/logs/r12/t/1") == (200, b"first line\n"), 10), get("/logs/r12/t/1")
    assert get("/logs/r12/t/1?offset=6") == (200, b"line\n")
    assert get("/logs/r12/t/1", auth=False)[0] == 401
    go.write_text("")
    assert fleet.wait_result("r12", "t")["exit_code"] == 0
    assert w.stop() == 0


def test_worker_widens_the_thread_pool_and_keeps_it_from_tries(fleet):
    """libuv's pool has 16 threads in a worker (4 by default: a slow database holding claims,
    ends and a scheduler's calls would starve the heartbeat behind them), unless the user set
    UV_THREADPOOL_SIZE; a try sees the user's value, never baram's."""
    def pool_threads(w):
        # the pool's threads are started at once; a few others (the LISTEN connection's)
        return len(os.listdir("/proc/%d/task" % w.pid))

    w = fleet.worker()
    fleet.submit("r16", "t", "env")
    assert fleet.wait_result("r16", "t")["exit_code"] == 0
    log = log_of(fleet.b, "r16", "t").read_text()
    assert "FROM_SPEC=yes" in log and "UV_THREADPOOL_SIZE" not in log, log
    assert pool_threads(w) >= 16, pool_threads(w)
    assert w.stop() == 0
    mine = fleet.worker(env={"UV_THREADPOOL_SIZE": "2"})
    fleet.submit("r16", "u", "env")
    assert fleet.wait_result("r16", "u")["exit_code"] == 0
    assert "UV_THREADPOOL_SIZE=2" in log_of(fleet.b, "r16", "u").read_text()
    assert pool_threads(mine) < 16, pool_threads(mine)
    assert mine.stop() == 0


def test_worker_rides_out_a_database_restart(baram, pg_private, tmp_path):
    f = Fleet(baram, pg_private.url(pg_private.create_db()), tmp_path)
    try:
        w = f.worker()
        f.submit("r13", "t", "sleep 1; echo done")
        assert poll(lambda: f.queue_rows() == [("t", "running", f.q(
            "SELECT id FROM workers WHERE role = 'worker'")[0][0])], 10), f.queue_rows()
        pg_private.stop()
        time.sleep(2.5)  # the try ends meanwhile: its report fails and is kept for later
        pg_private.start()
        r = f.wait_result("r13", "t", timeout=30)
        assert r["exit_code"] == 0, r
        assert "cannot report the ends of tries, will retry" in w.log()
        ((stored,),) = f.q("SELECT log FROM try_logs WHERE run_id = 'r13'")
        assert stored == b"done\n"
        f.submit("r13", "u", "true")  # and claims again
        assert f.wait_result("r13", "u")["exit_code"] == 0
        assert w.stop() == 0
    finally:
        f.cleanup()


def test_worker_serves_logs_while_the_database_is_down(baram, pg_private, tmp_path):
    """Tokens are checked against revocations read on a side thread (logserve.c): a database
    that is down stalls no log request, and a token revoked before stays refused."""
    f = Fleet(baram, pg_private.url(pg_private.create_db()), tmp_path)
    down = False
    try:
        b = f.b
        b.env["BARAM_DB"] = f.url
        assert b("init", env={"BARAM_ADMIN_PASSWORD": "admin-pw-for-tests"}).rc == 0
        tok = token(b)
        add_user(b, "eve", "viewer")
        gone = token(b, "eve")
        w = f.worker("--listen", "127.0.0.1:0")
        ((url,),) = f.q("SELECT log_url FROM workers WHERE role = 'worker'")
        go = b.dags / "go"
        f.submit("r15", "t", "echo first line; while [ ! -e %s ]; do sleep 0.05; done" % go)

        def get(tk):
            req = urllib.request.Request(url + "/logs/r15/t/1",
                                         headers={"Authorization": "Bearer " + tk})
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(req, timeout=10) as resp:
                    return resp.status, resp.read(), time.monotonic() - t0
            except urllib.error.HTTPError as e:
                return e.code, e.read(), time.monotonic() - t0

        assert poll(lambda: get(tok)[:2] == (200, b"first line\n"), 10), get(tok)
        assert b("users", "delete", "eve").rc == 0
        assert poll(lambda: get(gone)[0] == 401, 10), get(gone)
        pg_private.stop()
        down = True
        time.sleep(0.5)
        for _ in range(3):  # more than one request: none waits on the database
            st, body, took = get(tok)
            assert (st, body) == (200, b"first line\n") and took < 1.5, (st, body, took)
            st, body, took = get(gone)
            assert st == 401 and b"revoked" in body and took < 1.5, (st, body, took)
            time.sleep(2.2)  # past a refresh that fails
        pg_private.start()
        down = False
        go.write_text("")
        assert f.wait_result("r15", "t", timeout=30)["exit_code"] == 0
        assert w.stop() == 0
    finally:
        f.cleanup()
        if down:
            pg_private.start()


def test_worker_drain_gives_up_ends_it_cannot_report(baram, pg_private, tmp_path):
    f = Fleet(baram, pg_private.url(pg_private.create_db()), tmp_path)
    try:
        w = f.worker("--grace", "1s")
        f.submit("r14", "t", "sleep 0.5")
        assert poll(lambda: [r[1] for r in f.queue_rows()] == ["running"], 10), f.queue_rows()
        pg_private.stop()
        w.wait_log("cannot report the ends of tries, will retry")
        w.proc.send_signal(signal.SIGTERM)
        assert w.proc.wait(20) == 0, w.log()  # not held up by a database that is gone
        assert "ends of tries given up: the database is unreachable" in w.log()
    finally:
        f.cleanup()
        pg_private.start()


def test_worker_runs_http_tries(fleet):
    import http.server
    import threading
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append((self.path, self.headers.get("X-Key"), body))
            self.send_response(201 if self.path == "/ok" else 503)
            self.send_header("Content-Length", "5")
            self.end_headers()
            self.wfile.write(b"pong\n")

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        fleet.worker()
        base = "http://127.0.0.1:%d" % srv.server_address[1]
        for task, path in (("ok", "/ok"), ("down", "/down")):
            fleet.submit("r15", task, kind="http", http={
                "method": "POST", "url": base + path, "body": "ping", "headers": [["X-Key", "v"]],
                "expect": [201], "timeout_ms": 0, "cb_failures": 0, "cb_reset_ms": 0})
        r = fleet.wait_result("r15", "ok")
        assert r["met"] and r["output"] == b"pong\n" and r["message"] is None, r
        r = fleet.wait_result("r15", "down")
        assert not r["met"] and "503" in r["message"], r
        assert sorted(seen) == [("/down", "v", b"ping"), ("/ok", "v", b"ping")]
        assert log_of(fleet.b, "r15", "ok").read_text().startswith("baram: POST %s/ok" % base)
    finally:
        srv.shutdown()


def test_worker_discards_the_end_of_a_try_taken_from_it(fleet):
    w = fleet.worker()
    go = fleet.b.dags / "go"
    fleet.submit("r16", "t", "while [ ! -e %s ]; do sleep 0.05; done" % go)
    assert poll(lambda: [r[1] for r in fleet.queue_rows()] == ["running"], 10)
    fleet.q("DELETE FROM ti_queue")  # as a sweep does for a worker it declared dead
    fleet.q("DELETE FROM try_results")
    go.write_text("")
    w.wait_log('msg="result of r16 t try 1 discarded: the try was taken from this worker"')
    assert fleet.result("r16", "t") is None
    assert fleet.q("SELECT count(*) FROM try_logs") == [(0,)]


# ---- claims whose answer is lost or late (review 12: M1, M2) ----

def test_worker_gives_back_a_try_it_holds_but_never_started(fleet):
    """A claim that committed although its answer never reached the worker leaves a row
    running under its id: its heartbeats list it and it gives the try back (killed, fenced)
    within two heartbeats, while a try it really runs is left alone."""
    w = fleet.worker("--name", "forgetful", env=FAST)
    go = fleet.b.dags / "go"
    fleet.submit("r17", "real", "while [ ! -e %s ]; do sleep 0.05; done" % go)
    assert poll(lambda: [r[1] for r in fleet.queue_rows()] == ["running"], 10)
    ((wid,),) = fleet.q("SELECT id FROM workers WHERE name = 'forgetful'")
    spec = {"v": 1, "kind": "run", "dag": "d", "run_id": "r17", "task": "ghost",
            "map_index": -1, "task_id": "ghost", "try": 1, "queue": "default",
            "dir": str(fleet.b.dags), "timeout_ms": 0, "grace_ms": 2000, "cmd": "true",
            "env": []}
    fleet.q("INSERT INTO ti_queue (run_id, task_id, try_number, state, queue, sched_id, "
            "queued_at, claimed_at, worker_id, spec) VALUES ('r17', 'ghost', 1, 'running', "
            "'default', ?, now(), now(), ?, CAST(? AS jsonb))", fleet.sched, wid, json.dumps(spec))
    r = fleet.wait_result("r17", "ghost", timeout=5)  # heartbeats every 200ms
    assert r["killed"] and r["exit_code"] == -1 and "never started it" in r["message"], r
    assert r["worker"] == "forgetful", r
    assert 'msg="a try this worker never started is given back"' in w.log()
    assert not log_of(fleet.b, "r17", "ghost").exists()  # never ran
    assert fleet.result("r17", "real") is None  # the try it runs was not given back
    go.write_text("")
    r = fleet.wait_result("r17", "real")
    assert r["exit_code"] == 0 and not r["killed"], r


def test_worker_does_not_start_a_claim_answered_after_it_was_declared_dead(fleet):
    """The claim commits, its answer is late (FP_WORKER_SLOW_CLAIM: 1s); meanwhile the worker
    is declared dead (its try made 'lost') and registers again: the claimed try is not
    started."""
    w = fleet.worker("--name", "latecomer", env=dict(FAST, BARAM_FAULT="FP_WORKER_SLOW_CLAIM"))
    fleet.submit("r18", "t", "true")
    assert poll(lambda: [r[1] for r in fleet.queue_rows()] == ["running"], 10, step=0.02)
    fleet.q("UPDATE workers SET state = 'dead' WHERE name = 'latecomer'")
    fleet.q("SELECT baram_wq_sweep(600000)")  # its running try becomes 'lost'
    w.wait_log('msg="claimed tries not started: the worker was declared dead meanwhile"')
    w.wait_log('msg="worker up"', count=2)
    assert not log_of(fleet.b, "r18", "t").exists()
    assert fleet.result("r18", "t", phase="lost") is not None
    assert fleet.result("r18", "t") is None


def test_worker_does_not_start_a_claim_answered_after_its_fence(fleet):
    """The claim commits, then the worker freezes past 3/4 of dead_after before its answer is
    handled: the try is not started (a sweep may be giving it away); no sweep came, so once
    a heartbeat succeeds it is given back as killed."""
    w = fleet.worker("--name", "sleeper", env=dict(FAST, BARAM_FAULT="FP_WORKER_SLOW_CLAIM"))
    fleet.submit("r19", "t", "true")
    assert poll(lambda: [r[1] for r in fleet.queue_rows()] == ["running"], 10, step=0.02)
    os.kill(w.pid, signal.SIGSTOP)
    time.sleep(1.8)  # over 3/4 of dead_after (2s), and the claim's 1s delay is over
    os.kill(w.pid, signal.SIGCONT)
    w.wait_log('msg="claimed tries not started: no heartbeat for 3/4 of dead_after"')
    r = fleet.wait_result("r19", "t")
    assert r["killed"] and "the try was not started" in r["message"], r
    assert not log_of(fleet.b, "r19", "t").exists()
    assert w.proc.poll() is None


# ---- gone workers of this host at a scheduler's start (review 12: M4) ----

def host_key():
    """This machine's boot and this process's PID namespace, as baram keys them."""
    with open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    return "%s/%d" % (boot, os.stat("/proc/self/ns/pid").st_ino)


def test_standalone_declares_dead_only_gone_workers_of_its_pid_namespace(fleet, daemons):
    """At its start a scheduler declares dead the workers of this host whose process is
    gone. A worker row with this host name but another host key (a container with the host's
    network and pids of its own) cannot be judged by its pid: it is left to its heartbeats;
    one with this key and a pid that does not exist is declared dead."""
    import socket
    live = fleet.worker("--name", "live")
    with open("/proc/sys/kernel/pid_max") as f:
        gone_pid = int(f.read()) + 1000  # no process has it, here or anywhere
    host = socket.gethostname()
    for name, key in (("same-ns", host_key()), ("other-ns", "another-boot/4026531836"),
                      ("no-key", None)):
        fleet.q("INSERT INTO workers (role, name, hostname, pid, host_key) "
                "VALUES ('worker', ?, ?, ?, ?)", name, host, gone_pid, key)
    (row,) = fleet.q("SELECT host_key FROM workers WHERE name = 'live'")
    assert row == (host_key(),), row  # the worker registered its own
    fleet.b.env["BARAM_DB"] = fleet.url
    d = daemons(fleet.b)
    states = dict(fleet.q("SELECT name, state FROM workers WHERE role = 'worker' AND name IN "
                          "('live', 'same-ns', 'other-ns', 'no-key')"))
    assert states == {"live": "active", "same-ns": "dead", "other-ns": "active",
                      "no-key": "active"}, (states, d.log())
    assert 'msg="worker of this host gone: declared dead" worker=same-ns' in d.log(), d.log()
    assert "other-ns" not in d.log() and "no-key" not in d.log(), d.log()
    assert live.proc.poll() is None
    assert d.stop() == 0
