#!/usr/bin/env python3
"""drive.py - drive `baram standalone` for bench/daemon.sh and time it.

Usage (BARAM and BENCH_DIR from the environment, see daemon.sh):
  drive.py latency    --tmp DIR [--reps R] [--jobs N] [--tasks N] [--shape chain|wide]
                      [--dbs sqlite,pg] [--no-init]
  drive.py startup    --tmp DIR [--reps R] [--dags N] [--idle S]
  drive.py throughput --tmp DIR [--reps R] [--jobs N] [--runs N] [--width W] [--depth D]
                      [--settle S]

Each prints one markdown section (tables) on stdout; progress on stderr.

Key idea: the daemon runs as a child whose stderr (logfmt) is read line by
line by a thread that stamps each line with time.monotonic() when it
arrives; a measurement is the time between an action of this script (exec,
the start of a `dags trigger`) and the arrival of a log line ("scheduler
up", "run started", "run ended"). Reading a pipe adds microseconds, not
milliseconds. ninja runs on the very same workload (gen.py), in the same
loop, alternating with baram.

Workloads come from the shared generator (BENCH_DIR/gen.py); the DAG file
is copied into a DAG folder of its own (the daemon scans the whole folder)
whose out/ the tasks write into; ninja runs in the generator's folder, on
the same file system. Python 3 standard library only.

Stores (latency, --dbs): sqlite is HOME/baram.db; pg is a fresh database per
repetition on a throwaway PostgreSQL cluster (scripts/pg-cluster) whose data
folder is under --tmp too, so tmpfs and disk apply to both stores alike (fsync
stays on). In each repetition ninja and then each store run in turn.
"""

import argparse
import json
import os
import queue
import re
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

BARAM = os.environ.get("BARAM", "baram")
PG_CLUSTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts",
                          "pg-cluster")
BENCH_DIR = os.environ.get("BENCH_DIR", "")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def gen(shape_args, out, name=None):
    cmd = [sys.executable, os.path.join(BENCH_DIR, "gen.py")] + [str(a) for a in shape_args]
    cmd += ["--out", out]
    if name:
        cmd += ["--name", name]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)


def fstype(path):
    r = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", path], capture_output=True,
                       text=True)
    return (r.stdout.split() or ["?"])[0]


def med(v):
    return statistics.median(v) if v else float("nan")


def rng(v, fmt="%.3f"):
    return (fmt + "-" + fmt) % (min(v), max(v)) if v else "-"


def logfmt(line):
    """key=value pairs of one logfmt line (values may be "quoted")."""
    out = {}
    for m in re.finditer(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)', line):
        v = m.group(2)
        if v.startswith('"'):
            v = v[1:-1]
        out[m.group(1)] = v
    return out


# --------------------------------------------------------------------------
# the daemon as a child


class Daemon:
    def __init__(self, home, jobs, logpath):
        self.lines = []  # (monotonic, dict, raw)
        self.cv = threading.Condition()
        self.logf = open(logpath, "a")
        env = dict(os.environ)
        env.pop("BARAM_HOME", None)
        self.t_exec = time.monotonic()
        self.p = subprocess.Popen([BARAM, "standalone", "--home", home, "--parallelism",
                                   str(jobs), "--grace", "5s"],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, env=env)
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()

    def _read(self):
        for raw in self.p.stderr:
            t = time.monotonic()
            s = raw.decode("utf-8", "replace").rstrip("\n")
            self.logf.write(s + "\n")
            with self.cv:
                self.lines.append((t, logfmt(s), s))
                self.cv.notify_all()
        with self.cv:
            self.lines.append((time.monotonic(), {"msg": "<eof>"}, ""))
            self.cv.notify_all()

    def wait(self, pred, start=0, timeout=300):
        """Index and time of the first line at or after index start matching pred."""
        deadline = time.monotonic() + timeout
        i = start
        with self.cv:
            while True:
                while i < len(self.lines):
                    t, kv, raw = self.lines[i]
                    if kv.get("msg") == "<eof>":
                        raise RuntimeError("daemon exited: %s" % self.tail())
                    if pred(kv):
                        return i, t
                    i += 1
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("timeout waiting in the daemon log: %s" % self.tail())
                self.cv.wait(left)

    def count(self, pred, n, start=0, timeout=600):
        """Time of the n-th line at or after start matching pred."""
        i, t = start, None
        for _ in range(n):
            i, t = self.wait(pred, i, timeout)
            i += 1
        return i, t

    def tail(self):
        return " | ".join(raw for _, _, raw in self.lines[-4:])

    def stop(self):
        """SIGTERM, wait; the "scheduling latency" fields (or {})."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(30)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.th.join(5)
        self.logf.close()
        for _, kv, _ in self.lines:
            if kv.get("msg") == "scheduling latency":
                return kv
        return {}


def cpu_ns(pid):
    """utime+stime ticks of /proc/PID/stat, and the sum of every thread's run time (ns,
    schedstat) and context switches."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    run_ns = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                run_ns += int(f.read().split()[0])
        except OSError:
            pass
    return ticks, run_ns


def cpu_self_children(pid):
    """utime+stime and cutime+cstime (reaped children) of /proc/PID/stat, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        v = [int(x) for x in f.read().rsplit(")", 1)[1].split()[11:15]]
    return (v[0] + v[1]) / CLK_TCK, (v[2] + v[3]) / CLK_TCK


def ctxsw(pid):
    n = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                for line in f:
                    if line.startswith(("voluntary_ctxt_switches", "nonvoluntary_ctxt")):
                        n += int(line.split()[1])
        except OSError:
            pass
    return n


def status_kb(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return -1


def nthreads(pid):
    return len(os.listdir("/proc/%d/task" % pid))


def new_home(root, dags, jobs, db=None, init=True):
    """A fresh home; db: its store's URL (None: HOME/baram.db); init: `baram init` it (the
    secret key, so standalone serves the API too)."""
    home = os.path.join(root, "home")
    shutil.rmtree(home, ignore_errors=True)
    os.makedirs(home)
    with open(os.path.join(home, "baram.yaml"), "w") as f:
        f.write("dags: %s\nparallelism: %d\n" % (dags, jobs))
        if db:
            f.write("db: %s\n" % db)
    if init:
        subprocess.run([BARAM, "init", "--home", home], check=True, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL)
    return home


class Pg:
    """A throwaway PostgreSQL cluster in folder (scripts/pg-cluster): a fresh database per
    repetition."""

    def __init__(self, folder):
        self.dir = folder
        os.makedirs(folder)
        subprocess.run([PG_CLUSTER, "start", folder], check=True)
        self.n = 0

    def psql(self, sql):
        subprocess.run(["psql", "-X", "-q", "-h", self.dir, "-U", "postgres", "-d", "postgres",
                        "-c", sql], check=True, stdin=subprocess.DEVNULL)

    def fresh(self):
        """The URL of a new empty database (the one before is dropped)."""
        if self.n:
            self.psql("DROP DATABASE IF EXISTS bench_%d WITH (FORCE)" % self.n)
        self.n += 1
        self.psql("CREATE DATABASE bench_%d" % self.n)
        return "postgresql:///bench_%d?host=%s&user=postgres" % (self.n, self.dir)

    def version(self):
        return subprocess.run(["psql", "-X", "-At", "-h", self.dir, "-U", "postgres", "-d",
                               "postgres", "-c", "SHOW server_version"], capture_output=True,
                              text=True).stdout.split(" ")[0].strip()

    def destroy(self):
        subprocess.run([PG_CLUSTER, "destroy", self.dir])


def stores(a, root):
    """{store: None (SQLite) or a Pg} for --dbs, in order."""
    out = {}
    for db in a.dbs.split(","):
        if db == "sqlite":
            out[db] = None
        elif db == "pg":
            os.chmod(root, 0o755)  # the cluster runs as postgres when we are root
            out[db] = Pg(os.path.join(root, "pg"))
        else:
            raise SystemExit("drive.py: unknown store %r (sqlite, pg)" % db)
    return out


def trigger(home, dag, date=None):
    cmd = [BARAM, "dags", "trigger", dag, "--home", home]
    if date:
        cmd += ["--date", date]
    r = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("dags trigger %s: %s" % (dag, r.stderr.strip()))
    return r.stdout.strip()


def clean_out(d):
    out = os.path.join(d, "out")
    shutil.rmtree(out, ignore_errors=True)
    os.mkdir(out)


def run_ninja(folder, jobs):
    clean_out(folder)
    for f in (".ninja_log", ".ninja_deps"):
        try:
            os.unlink(os.path.join(folder, f))
        except FileNotFoundError:
            pass
    t = time.monotonic()
    r = subprocess.run(["ninja", "--quiet", "-j", str(jobs)], cwd=folder,
                       stdin=subprocess.DEVNULL, capture_output=True)
    wall = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError("ninja failed: %s" % r.stdout[-300:])
    return wall


def count_files(d):
    n = 0
    for _, _, files in os.walk(d):
        n += len(files)
    return n


def run_times(home, run_id):
    r = subprocess.run([BARAM, "runs", "show", run_id, "--home", home, "--json"],
                       capture_output=True, text=True)
    return json.loads(r.stdout) if r.returncode == 0 else {}


def iso_s(s):
    # 2026-11-29T04:09:35.829Z -> seconds (only differences are used)
    m = re.match(r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):([\d.]+)Z", s or "")
    if not m:
        return None
    y, mo, d, h, mi, sec = m.groups()
    import calendar
    return calendar.timegm((int(y), int(mo), int(d), int(h), int(mi), 0)) + float(sec)


def is_msg(msg, **kw):
    return lambda kv: kv.get("msg") == msg and all(kv.get(k) == v for k, v in kw.items())


# --------------------------------------------------------------------------
# 1. latency: a chain run by the daemon, ninja on the same chain


def bench_latency(a, root, dbs):
    """Per store: the walls (trigger -> run ended) and the latency fields of each repetition;
    and ninja's walls."""
    wl = os.path.join(root, "wl")
    gen([a.shape, a.tasks], wl)
    dags = os.path.join(root, "dags")
    os.makedirs(dags)
    shutil.copy(os.path.join(wl, "dag.yaml"), os.path.join(dags, "chain.yaml"))
    dag = "bench_%s_%d" % (a.shape, a.tasks)
    ntasks = a.tasks + (1 if a.shape == "wide" else 0)  # wide N: N tasks and a final one
    ninja = []
    res = {db: ([], []) for db in dbs}  # store -> (walls, latency fields)
    for rep in range(a.reps):
        log("latency rep %d/%d" % (rep + 1, a.reps))
        ninja.append(run_ninja(wl, a.jobs))
        if count_files(os.path.join(wl, "out")) != ntasks:
            raise RuntimeError("ninja: missing outputs")
        for db, pg in dbs.items():
            wall, l = latency_once(a, root, dags, dag, ntasks, pg.fresh() if pg else None)
            res[db][0].append(wall)
            res[db][1].append(l)
    return ninja, res


def latency_once(a, root, dags, dag, ntasks, db):
    """One run of dag by a fresh daemon on a fresh home (store db, None: SQLite): its wall
    (trigger -> run ended) and its latency fields."""
    clean_out(dags)
    home = new_home(root, dags, a.jobs, db, a.init)
    d = Daemon(home, a.jobs, os.path.join(root, "daemon.log"))
    i, _ = d.wait(is_msg("scheduler up"))
    t0 = time.monotonic()
    run_id = trigger(home, dag)
    i, t_start = d.wait(is_msg("run started", run=run_id), i)
    i, t_end = d.wait(is_msg("run ended", run=run_id), i)
    ended = d.lines[i][1]
    kv = d.stop()
    if ended.get("state") != "success":
        raise RuntimeError("run %s ended %s" % (run_id, ended.get("state")))
    if count_files(os.path.join(dags, "out")) != ntasks:
        raise RuntimeError("baram: missing outputs")
    show = run_times(home, run_id)
    own = None
    if show:
        s, e = iso_s(show.get("started_at")), iso_s(show.get("ended_at"))
        own = e - s if s and e else None
    return t_end - t0, {"p50": int(kv.get("p50_us", -1)), "p99": int(kv.get("p99_us", -1)),
                        "max": int(kv.get("max_us", -1)), "tries": int(kv.get("tries", -1)),
                        "trig": t_start - t0, "own": own}


STORE_NAMES = {"sqlite": "SQLite", "pg": "PostgreSQL"}


def report_latency(a, root, where):
    dbs = stores(a, root)
    try:
        ninja, res = bench_latency(a, root, dbs)
        pgv = {db: pg.version() for db, pg in dbs.items() if pg}
    finally:
        for pg in dbs.values():
            if pg:
                pg.destroy()
    for db, (walls, lat) in res.items():
        store = STORE_NAMES[db] + (" %s" % pgv[db] if db in pgv else "")
        latency_table(a, where, store, {"baram": walls, "ninja": ninja}, lat)
    if len(res) > 1 and "sqlite" in res and "pg" in res:
        s, p = med(res["sqlite"][0]), med(res["pg"][0])
        p50, p99 = med([l["p50"] for l in res["pg"][1]]), med([l["p99"] for l in res["pg"][1]])
        print("- PostgreSQL / SQLite wall (median): %.3f / %.3f s = %.2fx (target <= 1.5x: %s);"
              " ninja %.3f s" % (p, s, p / s, "met" if p / s <= 1.5 else "MISSED", med(ninja)))
        print("- PostgreSQL ready -> process started (median of the reps): p50 %.3f ms "
              "(target <= 2 ms: %s), p99 %.3f ms (target <= 10 ms: %s)"
              % (p50 / 1000, "met" if p50 <= 2000 else "MISSED", p99 / 1000,
                 "met" if p99 <= 10000 else "MISSED"))
        print()


def latency_table(a, where, store, rows, lat):
    print("### %s %d, body true, daemon --parallelism %d, home and workload on %s, store %s%s"
          % (a.shape, a.tasks, a.jobs, where, store, "" if a.init else " (no `baram init`: API off)"))
    print()
    print("| rep | tries | p50 us | p99 us | max us | trigger -> run started ms "
          "| run (store started->ended) s | trigger -> run ended s | ninja s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, l in enumerate(lat):
        print("| %d | %d | %d | %d | %d | %.1f | %s | %.3f | %.3f |"
              % (k + 1, l["tries"], l["p50"], l["p99"], l["max"], l["trig"] * 1000,
                 "%.3f" % l["own"] if l["own"] is not None else "-", rows["baram"][k],
                 rows["ninja"][k]))
    b, n = med(rows["baram"]), med(rows["ninja"])
    print("| **median** | | **%d** | **%d** | %d | %.1f | %s | **%.3f** | **%.3f** |"
          % (med([l["p50"] for l in lat]), med([l["p99"] for l in lat]),
             med([l["max"] for l in lat]), med([l["trig"] for l in lat]) * 1000,
             "%.3f" % med([l["own"] for l in lat if l["own"] is not None]), b, n))
    print()
    print("- baram / ninja wall (median): %.2fx; per task: baram %.3f ms, ninja %.3f ms"
          % (b / n, b / a.tasks * 1000, n / a.tasks * 1000))
    print("- p50 target < 1 ms: %s" % ("met" if med([l["p50"] for l in lat]) < 1000
                                       else "MISSED"))
    print()


# --------------------------------------------------------------------------
# 2. start-up, idle RSS and idle CPU with a folder of many DAG files


SHAPES10 = [["chain", 10], ["wide", 9], ["lattice", 5, 2], ["tree", 2, 2]]  # 10 tasks each


def make_folder(root, n):
    dags = os.path.join(root, "dags")
    os.makedirs(os.path.join(dags, "out"))
    texts = []
    for k, shape in enumerate(SHAPES10):
        wl = os.path.join(root, "g%d" % k)
        gen(shape, wl, name="tmpl")
        with open(os.path.join(wl, "dag.yaml")) as f:
            texts.append(f.read())
        shutil.rmtree(wl)
    for i in range(n):
        t = texts[i % len(texts)].replace("dag: tmpl\n", "dag: folder_%03d\n" % i, 1)
        with open(os.path.join(dags, "dag_%03d.yaml" % i), "w") as f:
            f.write(t)
    return dags


def startup_once(a, root, dags, home, fresh, res):
    d = Daemon(home, a.jobs, os.path.join(root, "daemon.log"))
    pid = d.p.pid
    try:
        i, t_up = d.wait(is_msg("scheduler up"))
        up_kv = d.lines[i][1]
        rss_up = status_kb(pid, "VmRSS")
        t_trig = time.monotonic()
        dag = "folder_%03d" % (a.dags // 2)
        run_id = trigger(home, dag)
        i, t_started = d.wait(is_msg("run started", run=run_id), i)
        i, t_ended = d.wait(is_msg("run ended", run=run_id), i)
        r = {"fresh": fresh, "up": t_up - d.t_exec, "started": t_started - d.t_exec,
             "trig": t_started - t_trig, "rss_up": rss_up, "dags": up_kv.get("dags"),
             "errors": up_kv.get("import_errors"), "state": d.lines[i][1].get("state")}
        if fresh:
            time.sleep(1.0)  # let the run's end settle
            r["rss_idle0"] = status_kb(pid, "VmRSS")
            ticks0, ns0 = cpu_ns(pid)
            cs0 = ctxsw(pid)
            time.sleep(a.idle)
            ticks1, ns1 = cpu_ns(pid)
            r["cs"] = ctxsw(pid) - cs0
            r["rss_idle"] = status_kb(pid, "VmRSS")
            r["hwm"] = status_kb(pid, "VmHWM")
            r["threads"] = nthreads(pid)
            r["cpu_ticks_ms"] = (ticks1 - ticks0) * 1000.0 / CLK_TCK
            r["cpu_ns_ms"] = (ns1 - ns0) / 1e6
    finally:
        d.stop()
    res.append(r)


def report_startup(a, root, where):
    dags = make_folder(root, a.dags)
    res = []
    for rep in range(a.reps):
        log("startup rep %d/%d" % (rep + 1, a.reps))
        home = new_home(root, dags, a.jobs)
        startup_once(a, root, dags, home, True, res)
        startup_once(a, root, dags, home, False, res)
    fresh = [r for r in res if r["fresh"]]
    again = [r for r in res if not r["fresh"]]
    print("### %d DAG files of 10 tasks (chain, wide, lattice, tree), home and folder on %s"
          % (a.dags, where))
    print()
    print("| start | reps | exec -> \"scheduler up\" ms | exec -> triggered run started ms "
          "| trigger -> run started ms | VmRSS at up MiB | DAGs / import errors |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for label, rs in (("fresh home (DAGs recorded)", fresh), ("restart (same home)", again)):
        print("| %s | %d | %.1f (%s) | %.1f (%s) | %.1f (%s) | %.1f | %s / %s |"
              % (label, len(rs), med([r["up"] for r in rs]) * 1000,
                 rng([r["up"] * 1000 for r in rs], "%.1f"),
                 med([r["started"] for r in rs]) * 1000,
                 rng([r["started"] * 1000 for r in rs], "%.1f"),
                 med([r["trig"] for r in rs]) * 1000,
                 rng([r["trig"] * 1000 for r in rs], "%.1f"),
                 med([r["rss_up"] for r in rs]) / 1024, rs[0]["dags"], rs[0]["errors"]))
    print()
    print("Idle, after the fresh start and its one triggered run (%g s of idling):" % a.idle)
    print()
    print("| rep | VmRSS idle MiB | VmHWM MiB | threads | CPU utime+stime ms (/proc/PID/stat) "
          "| CPU ms (sum of threads' schedstat) | context switches |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for k, r in enumerate(fresh):
        print("| %d | %.1f | %.1f | %d | %.0f | %.2f | %d |"
              % (k + 1, r["rss_idle"] / 1024, r["hwm"] / 1024, r["threads"], r["cpu_ticks_ms"],
                 r["cpu_ns_ms"], r["cs"]))
    rss = med([r["rss_idle"] for r in fresh]) / 1024
    cpu = med([r["cpu_ns_ms"] for r in fresh])
    print("| **median** | **%.1f** | %.1f | | %.0f | **%.2f** | %d |"
          % (rss, med([r["hwm"] for r in fresh]) / 1024,
             med([r["cpu_ticks_ms"] for r in fresh]), cpu, med([r["cs"] for r in fresh])))
    print()
    print("- idle RSS target < 15 MB: %s; idle CPU target < 10 ms per %g s: %s"
          % ("met" if rss * 1.048576 < 15 else "MISSED", a.idle,
             "met" if cpu < 10 else "MISSED"))
    print("- /proc/PID/stat counts in clock ticks of %.0f ms; schedstat is in ns"
          % (1000.0 / CLK_TCK))
    print()


# --------------------------------------------------------------------------
# 3. throughput: many concurrent runs of one DAG against ninja on N copies


def lattice_workload(a, root):
    """The generator's lattice, made per-run: each run writes under out/$BARAM_DS/."""
    wl = os.path.join(root, "wl")
    gen(["lattice", a.width, a.depth], wl, name="bench_tp")
    ntask = a.width * a.depth
    dates = [time.strftime("%Y-%m-%d", time.gmtime(1767225600 + 86400 * k))
             for k in range(a.runs)]  # from 2026-01-01
    # baram: one DAG; its commands use the run's logical date as the folder
    with open(os.path.join(wl, "dag.yaml")) as f:
        y = f.read()
    y = y.replace("\ntasks:\n", "\nmax_active_runs: %d\ntasks:\n" % a.runs, 1)
    y = y.replace("out/", "out/$BARAM_DS/")
    dags = os.path.join(root, "dags")
    os.makedirs(dags)
    with open(os.path.join(dags, "tp.yaml"), "w") as f:
        f.write(y)
    # ninja: one build graph with a copy per date
    with open(os.path.join(wl, "build.ninja")) as f:
        nj = f.read()
    head, body = nj.split("\nbuild ", 1)
    body = "build " + body
    parts = [head + "\n"]
    for ds in dates:
        parts.append(body.replace("out/", "out/%s/" % ds))
    with open(os.path.join(wl, "build.ninja"), "w") as f:
        f.write("".join(parts))
    return wl, dags, dates, ntask


def mk_out(folder, dates):
    clean_out(folder)
    for ds in dates:
        os.mkdir(os.path.join(folder, "out", ds))


def bench_throughput(a, root):
    wl, dags, dates, ntask = lattice_workload(a, root)
    total = ntask * a.runs
    res = []
    for rep in range(a.reps):
        if rep and a.settle:
            time.sleep(a.settle)  # ext4 without a journal: let deleted inodes age (see README)
        log("throughput rep %d/%d" % (rep + 1, a.reps))
        # ninja
        mk_out(wl, dates)
        for f in (".ninja_log", ".ninja_deps"):
            if os.path.exists(os.path.join(wl, f)):
                os.unlink(os.path.join(wl, f))
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.monotonic()
        r = subprocess.run(["ninja", "--quiet", "-j", str(a.jobs)], cwd=wl,
                           stdin=subprocess.DEVNULL, capture_output=True)
        nwall = time.monotonic() - t
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        ncpu = (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime)
        if r.returncode != 0 or count_files(os.path.join(wl, "out")) != total:
            raise RuntimeError("ninja failed or missed outputs: %s" % r.stdout[-300:])
        # baram
        mk_out(dags, dates)
        home = new_home(root, dags, a.jobs)
        d = Daemon(home, a.jobs, os.path.join(root, "daemon.log"))
        pid = d.p.pid
        try:
            i0, _ = d.wait(is_msg("scheduler up"))
            c0 = cpu_ns(pid)[1]
            t0 = time.monotonic()
            for ds in dates:
                trigger(home, "bench_tp", ds)
            t_trig = time.monotonic() - t0
            ended = lambda kv: kv.get("msg") == "run ended"
            i, t_last = d.count(ended, a.runs, i0)
            states = [kv.get("state") for _, kv, _ in d.lines[i0:i] if ended(kv)]
            cpu = (cpu_ns(pid)[1] - c0) / 1e9
            self_s, kids_s = cpu_self_children(pid)
            hwm = status_kb(pid, "VmHWM")
        finally:
            kv = d.stop()
        if states.count("success") != a.runs:
            raise RuntimeError("runs did not all succeed: %s" % states)
        got = count_files(os.path.join(dags, "out"))
        if got != total:
            raise RuntimeError("baram: %d of %d outputs" % (got, total))
        res.append({"ninja": nwall, "baram": t_last - t0, "trig": t_trig, "cpu": cpu,
                    "kids": kids_s, "ncpu": ncpu,
                    "hwm": hwm, "p50": int(kv.get("p50_us", -1)),
                    "p99": int(kv.get("p99_us", -1)), "tries": int(kv.get("tries", -1))})
    return res, ntask, total


def report_throughput(a, root, where):
    res, ntask, total = bench_throughput(a, root)
    print("### %d runs of lattice %d %d (%d tasks each) = %d task instances, body true, "
          "--parallelism %d / ninja -j %d, on %s"
          % (a.runs, a.width, a.depth, ntask, total, a.jobs, a.jobs, where))
    print()
    print("| rep | baram s (1st trigger -> last run ended) | of which %d triggers s "
          "| ninja s | baram / ninja | baram tasks/s | daemon CPU s | its tasks' CPU s "
          "| ninja + tasks CPU s | daemon VmHWM MiB | latency p50 / p99 ms |" % a.runs)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for k, r in enumerate(res):
        print("| %d | %.3f | %.3f | %.3f | %.2f | %.0f | %.2f | %.2f | %.2f | %.1f | %.0f / %.0f |"
              % (k + 1, r["baram"], r["trig"], r["ninja"], r["baram"] / r["ninja"],
                 total / r["baram"], r["cpu"], r["kids"], r["ncpu"], r["hwm"] / 1024,
                 r["p50"] / 1000, r["p99"] / 1000))
    b, n = med([r["baram"] for r in res]), med([r["ninja"] for r in res])
    print("| **median** | **%.3f** | %.3f | **%.3f** | **%.2f** | %.0f | %.2f | %.2f | %.2f "
          "| %.1f | %.0f / %.0f |"
          % (b, med([r["trig"] for r in res]), n, b / n, total / b,
             med([r["cpu"] for r in res]), med([r["kids"] for r in res]),
             med([r["ncpu"] for r in res]), med([r["hwm"] for r in res]) / 1024,
             med([r["p50"] for r in res]) / 1000, med([r["p99"] for r in res]) / 1000))
    print()
    print("- ratio target <= 1.5x: %s (median of the walls %.2fx)"
          % ("met" if b / n <= 1.5 else "MISSED", b / n))
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["latency", "startup", "throughput"])
    ap.add_argument("--tmp", default="/dev/shm")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--shape", choices=["chain", "wide"], default="chain",
                    help="latency's workload: chain N, or wide N (N tasks and a final one)")
    ap.add_argument("--dags", type=int, default=100)
    ap.add_argument("--idle", type=float, default=10.0)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--width", type=int, default=20)
    ap.add_argument("--depth", type=int, default=10)
    ap.add_argument("--settle", type=float, default=0.0,
                    help="throughput: seconds to wait between repetitions")
    ap.add_argument("--dbs", default="sqlite",
                    help="latency: the stores to run on, in turn in each repetition: sqlite,pg")
    ap.add_argument("--no-init", dest="init", action="store_false",
                    help="latency: no `baram init` of the homes (no secret key: the API is off)")
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="baram-daemon.", dir=a.tmp)
    where = "%s (%s)" % (a.tmp, fstype(root))
    try:
        {"latency": report_latency, "startup": report_startup,
         "throughput": report_throughput}[a.what](a, root, where)
    finally:
        if a.keep:
            log("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
