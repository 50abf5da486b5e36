#!/usr/bin/env python3
"""drive.py - the API benchmark of bench/api.sh (see there): wrk against
GET /api/v1/dags while a wide run executes, the run's wall time with and
without that load, and SSE subscribers that must each receive every event.
Standard library only, plus wrk. Prints markdown."""

import argparse
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Home:
    def __init__(self, baram, tmp, tasks, par, split=False):
        self.baram, self.split = baram, split
        self.dir = tempfile.mkdtemp(prefix="baram-api-bench.", dir=tmp)
        self.home = os.path.join(self.dir, "home")
        self.dags = os.path.join(self.dir, "dags")
        os.makedirs(self.dags)
        with open(os.path.join(self.dags, "wide.yaml"), "w") as f:
            f.write("dag: wide\ntasks:\n")
            for i in range(tasks):
                f.write(f"  t{i}: {{run: 'true'}}\n")
        for i in range(20):
            with open(os.path.join(self.dags, f"small{i}.yaml"), "w") as f:
                f.write(f"dag: small{i}\nschedule: '@daily'\nstart: 2026-01-01\n"
                        f"description: a small DAG\ntasks:\n  a: {{run: 'true'}}\n"
                        f"  b: {{run: 'true', needs: [a]}}\n")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("BARAM_")}
        self.env.update(BARAM_HOME=self.home, BARAM_DAGS=self.dags,
                        BARAM_ADMIN_PASSWORD="bench-password", BARAM_LOG_LEVEL="warn")
        for k in ("BARAM_API_NICE", "BARAM_API_MAX_RPS", "BARAM_API_THREADS"):  # when given
            if k in os.environ:
                self.env[k] = os.environ[k]
        self.run("init")
        self.token = self.run("token", "admin").strip()
        self.port = free_port()
        self.par = par
        self.proc = None

    def run(self, *args):
        r = subprocess.run([self.baram, *args], env=self.env, capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"baram {' '.join(args)}: {r.stderr}")
        return r.stdout

    def start(self):
        self.log = open(os.path.join(self.dir, "daemon.log"), "w+")
        # The daemon and wrk each get a session of their own, as a service and an outside
        # client have: in the driver's session they would share its scheduling group (Linux
        # autogroups), so the driver's own work would count against the daemon.
        self.api = None
        if self.split:  # `baram scheduler` and `baram api`, two processes on one home
            self.proc = subprocess.Popen(
                [self.baram, "scheduler", "--parallelism", str(self.par)], env=self.env,
                stdout=self.log, stderr=self.log, start_new_session=True)
            self.api = subprocess.Popen(
                [self.baram, "api", "--listen", f"127.0.0.1:{self.port}"], env=self.env,
                stdout=self.log, stderr=self.log, start_new_session=True)
        else:
            self.proc = subprocess.Popen(
                [self.baram, "standalone", "--listen", f"127.0.0.1:{self.port}",
                 "--parallelism", str(self.par)], env=self.env, stdout=self.log, stderr=self.log,
                start_new_session=True)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                time.sleep(0.5)  # the scheduler records the DAGs
                return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("the daemon did not start")

    def stop(self):
        if self.api:
            self.api.send_signal(signal.SIGTERM)
            self.api.wait(60)
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(60)

    def wait_ended(self, run_id):
        """Polls the run's state with a read of the database (a `runs show --json` of 2000
        tasks costs 25 ms of CPU: polling with it would load the machine as much as wrk)."""
        db = sqlite3.connect(f"file:{os.path.join(self.home, 'baram.db')}?mode=ro", uri=True)
        try:
            while True:
                row = db.execute("SELECT state FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row and row[0] in ("success", "failed", "cancelled"):
                    return
                time.sleep(0.02)
        finally:
            db.close()

    def trigger_and_wait(self):
        run_id = self.run("dags", "trigger", "wide").strip()
        self.wait_ended(run_id)
        return run_id, json.loads(self.run("runs", "show", run_id, "--json"))


def iso_s(t):
    from datetime import datetime
    return datetime.fromisoformat(t.replace("Z", "+00:00")).timestamp()


def run_wall(o):
    return iso_s(o["ended_at"]) - iso_s(o["started_at"])


def wrk(h, dur, conns):
    cmd = ["nice", "-n", os.environ.get("WRK_NICE", "0"), "wrk",
           f"-t{os.environ.get('WRK_THREADS', '2')}", f"-c{conns}", f"-d{dur}", "--latency", "-H",
           f"Authorization: Bearer {h.token}",
           f"http://127.0.0.1:{h.port}{os.environ.get('API_BENCH_PATH', '/api/v1/dags')}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def parse_wrk(out):
    def lat(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)", out, re.M)
        if not m:
            return float("nan")
        v = float(m.group(1))
        return v / 1000 if m.group(2) == "us" else v * 1000 if m.group(2) == "s" else v
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(rps.group(1)) if rps else 0.0, "p50": lat(50), "p99": lat(99),
            "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "errors": errors.group(1) if errors else "none"}


class Sub(threading.Thread):
    """One SSE client on a raw socket, with an incremental chunked-encoding decoder; it stops
    once the run's final event arrived."""

    def __init__(self, h, stop_run):
        super().__init__(daemon=True)
        self.h, self.ids, self.stop_run, self.ok = h, [], stop_run, False
        self.sock = socket.create_connection(("127.0.0.1", h.port))
        self.sock.sendall(f"GET /api/v1/events?dag=wide HTTP/1.1\r\nHost: b\r\n"
                          f"Authorization: Bearer {h.token}\r\n\r\n".encode())

    def run(self):
        raw, pos, body, head_done, need = bytearray(), 0, bytearray(), False, None
        self.sock.settimeout(120)
        try:
            while True:
                c = self.sock.recv(1 << 16)
                if not c:
                    self.why = b"closed: " + bytes(raw[:200]) + b" ... " + bytes(raw[-200:])
                    return
                raw += c
                if not head_done:
                    i = raw.find(b"\r\n\r\n")
                    if i < 0:
                        continue
                    pos, head_done = i + 4, True
                got = False
                while True:  # chunks: SIZE CRLF DATA CRLF
                    if need is None:
                        i = raw.find(b"\r\n", pos)
                        if i < 0:
                            break
                        need = int(raw[pos:i], 16)
                        pos = i + 2
                        if need == 0:
                            self.why = b"ended: " + bytes(body[-300:])
                            return
                    if len(raw) - pos < need + 2:
                        break
                    body += raw[pos:pos + need]
                    pos += need + 2
                    need = None
                    got = True
                if pos > 1 << 20:  # drop what was decoded
                    del raw[:pos]
                    pos = 0
                # cheap per chunk (many clients share one Python): look at the tail only
                tail = bytes(body[-8192:]) if got else b""
                if (self.stop_run[0] and b'"type":"run"' in tail and
                        b'"state":"success"' in tail and self.stop_run[0].encode() in tail):
                    self.ids = [int(x) for x in re.findall(rb"(?m)^id: (\d+)$", bytes(body))]
                    self.ok = True
                    return
        except OSError:
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("baram")
    ap.add_argument("--conns", type=int, default=64)
    ap.add_argument("--subs", type=int, default=256)
    ap.add_argument("--tasks", type=int, default=2000)
    ap.add_argument("--par", type=int, default=8)
    ap.add_argument("--tmp", default="/dev/shm")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--split", action="store_true",
                    help="`baram scheduler` + `baram api` instead of `baram standalone`")
    a = ap.parse_args()
    h = Home(a.baram, a.tmp, a.tasks, a.par, a.split)
    print(f"# baram API benchmark ({time.strftime('%Y-%m-%dT%H:%MZ', time.gmtime())})\n")
    print(f"- machine: {os.cpu_count()} cores; load {open('/proc/loadavg').read().split()[:3]}")
    knobs = " ".join(f"{k}={os.environ[k]}" for k in ("BARAM_API_THREADS", "BARAM_API_MAX_RPS",
                                                        "BARAM_API_NICE", "WRK_NICE",
                                                        "WRK_THREADS", "SPLIT")
                     if k in os.environ)
    print(f"- `{knobs + ' ' if knobs else ''}bench/api.sh {a.baram}`: wrk -t{os.environ.get('WRK_THREADS', '2')} "
          f"-c{a.conns} during each loaded run, wrk and the daemon each in a session of its own; "
          f"{'`baram scheduler` + `baram api`' if a.split else '`baram standalone`'}; wide run of {a.tasks} `true` tasks at --parallelism {a.par}; home on "
          f"{a.tmp}\n")
    try:
        h.start()
        _, o = h.trigger_and_wait()  # warm
        # Pairs, alone then under load, so that drift on a shared machine hits both sides.
        base, loaded, stats = [], [], []
        for _ in range(a.pairs):
            _, o = h.trigger_and_wait()
            alone = run_wall(o)
            base.append(alone)
            w = wrk(h, f"{int(max(3.0, alone * 2 + 2.0))}s", a.conns)
            time.sleep(0.7)  # wrk's connections are up and busy
            _, o = h.trigger_and_wait()
            loaded.append(run_wall(o))
            stats.append(parse_wrk(w.communicate()[0]))
        med = lambda v: sorted(v)[len(v) // 2]
        b, l = med(base), med(loaded)
        rps = med([r["rps"] for r in stats])
        p50 = med([r["p50"] for r in stats])
        p99 = med([r["p99"] for r in stats])
        p99_worst = max(r["p99"] for r in stats)
        non2xx = sum(r["non2xx"] for r in stats)
        errors = "; ".join(sorted({r["errors"] for r in stats}))
        print("| GET /api/v1/dags (20 DAGs), token, during runs | requests/s | p50 ms | p99 ms "
              "(worst) | non-2xx | socket errors |")
        print("|---|---:|---:|---:|---:|---|")
        print(f"| wrk -c{a.conns}, median of {a.pairs} | **{rps:.0f}** | {p50:.2f} | **{p99:.2f}**"
              f" ({p99_worst:.2f}) | {non2xx} | {errors} |\n")
        print(f"| wide {a.tasks}: run wall, median of {a.pairs} pairs | alone | under the wrk load"
              f" | slower by |")
        print("|---|---:|---:|---:|")
        print(f"| each pair: alone, then loaded | {b:.3f} s | {l:.3f} s |"
              f" **{(l / b - 1) * 100:+.0f} %** |\n")
        print("pairs (alone / loaded s, req/s, p99 ms): " + ", ".join(
            f"{x:.2f}/{y:.2f} {r['rps']:.0f} {r['p99']:.1f}" for x, y, r in zip(base, loaded, stats))
            + "\n")
        # SSE
        stop_run = [None]
        subs = [Sub(h, stop_run) for _ in range(a.subs)]
        time.sleep(1.0)
        for s in subs:
            s.start()
        run_id = h.run("dags", "trigger", "wide").strip()
        stop_run[0] = run_id
        h.wait_ended(run_id)
        deadline = time.time() + 60
        for s in subs:
            s.join(max(0.1, deadline - time.time()))
        db = sqlite3.connect(os.path.join(h.home, "baram.db"))
        want = [x for (x,) in db.execute("SELECT id FROM events WHERE run_id = ? ORDER BY id",
                                         (run_id,))]
        db.close()
        wset = set(want)
        full = sum(1 for s in subs if s.ok and [i for i in s.ids if i in wset] == want)
        if os.environ.get("API_BENCH_DEBUG"):
            for s in [x for x in subs if not (x.ok and [i for i in x.ids if i in wset] == want)][:3]:
                print("debug sub", s.ok, len(s.ids), s.ids[:3], s.ids[-3:], want[:3], want[-3:],
                      s.is_alive(), getattr(s, "why", None))
        print(f"| SSE subscribers during a {a.tasks}-task run | events of the run | "
              f"subscribers that got every one, in order |")
        print("|---|---:|---:|")
        print(f"| {a.subs} | {len(want)} | **{full} / {a.subs}** |\n")
    finally:
        if h.proc:
            h.stop()
        shutil.rmtree(h.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
