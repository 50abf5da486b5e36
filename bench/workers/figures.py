#!/usr/bin/env python3
"""figures.py - the figures of `baram worker` (issue 12) for bench/workers/run.sh.

Usage (BARAM and BENCH_DIR from the environment, see run.sh):
  figures.py throughput --tmp DIR [--reps R] [--slots N]   wide 2000 x true, and chain 300
  figures.py rescue     --tmp DIR [--reps R]               kill -9 -> retried elsewhere, defaults
  figures.py scale      --tmp DIR [--reps R] [--slots N]   1 -> 2 -> 4 workers, wide 2000 x sleep 0.2

Each prints one markdown section on stdout; progress on stderr.

throughput: in each repetition, in turn, `baram standalone --parallelism N` on a fresh SQLite
home, and `baram scheduler` + one `baram worker --slots N` on a fresh database of a throwaway
PostgreSQL cluster (scripts/pg-cluster, data under --tmp, fsync on): trigger -> "run ended"
(the scheduler's log line, stamped as it arrives), tasks/s = tasks / that wall. The chain 300
gives the latency: the daemons' own "scheduling latency" line (ready -> process started,
logged at SIGTERM; on PostgreSQL the start is the one the worker reports), and from the store
(tries, whole ms; on PostgreSQL a try's started_at is its claim's time and ended_at its
reported end's, both by the database's clock) per step the upstream's recorded end -> the
next recorded start (the end consumed by the scheduler, the next try submitted and claimed)
and the whole cycle of a step (start -> next start: that plus the worker's claim -> spawn ->
exit -> end reported). The PostgreSQL rows also give the CPU time of the
scheduler, of the worker with its tries' processes (reaped children) and of the cluster
(postmaster and its live backends) over the run.

rescue: default timings (worker heartbeat 5s, dead_after 20s): worker A runs 4 `sleep 300`
tries, worker B idles; kill -9 A; the time until B has started all 4 again (the tries stamp
their start). Target <= 25 s.

scale: 1, 2 and 4 workers of N slots on wide 2000 x sleep 0.2: trigger -> "run ended", against
the ideal 2000 * 0.2 / (workers * N). The scheduler's `parallelism` is 4 * N: it caps the
tries in flight over all its workers.

Python 3 standard library only; reuses bench/daemon/drive.py (the daemon reader, Pg, gen).
"""

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "daemon"))
import drive  # noqa: E402  (bench/daemon/drive.py)
from drive import BARAM, Pg, fstype, gen, is_msg, log, med, trigger  # noqa: E402


class Child(drive.Daemon):
    """A baram process (argv after the binary) whose stderr is read and stamped line by line
    like drive.Daemon's."""

    def __init__(self, argv, logpath, env=None):
        self.lines = []
        self.cv = threading.Condition()
        self.logf = open(logpath, "a")
        e = dict(os.environ)
        e.pop("BARAM_HOME", None)
        e.update(env or {})
        self.t_exec = time.monotonic()
        self.p = subprocess.Popen([BARAM] + argv, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=e)
        self.th = threading.Thread(target=self._read, daemon=True)
        self.th.start()


def psql(url, sql):
    r = subprocess.run(["psql", "-X", "-q", "-At", url, "-c", sql], capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError("psql: %s" % r.stderr.strip())
    return r.stdout.strip()


def home_for(root, dags, db, jobs, beats=None):
    """A fresh `baram init`-ed home on db (None: SQLite). beats: extra baram.yaml text."""
    home = drive.new_home(root, dags, jobs, db, init=True)
    if beats:
        with open(os.path.join(home, "baram.yaml"), "a") as f:
            f.write(beats)
    return home


class Fleet:
    """`baram scheduler` and `baram worker`s on one home and database."""

    def __init__(self, root, home, url):
        self.root, self.home, self.url = root, home, url
        self.sched = Child(["scheduler", "--home", home], os.path.join(root, "sched.log"))
        self.sched.wait(is_msg("scheduler up"))
        self.workers = []
        self.names = []

    def worker(self, name, slots):
        w = Child(["worker", "--home", self.home, "--name", name, "--slots", str(slots),
                   "--grace", "5s"], os.path.join(self.root, "worker-%s.log" % name))
        self.workers.append(w)
        self.names.append(name)
        end = time.monotonic() + 60
        while psql(self.url, "SELECT count(*) FROM workers WHERE role = 'worker' AND "
                             "name = '%s' AND state = 'active'" % name) != "1":
            if time.monotonic() > end or w.p.poll() is not None:
                raise RuntimeError("worker %s did not register: %s" % (name, w.tail()))
            time.sleep(0.05)
        return w

    def stop(self):
        """SIGTERM to everyone; the scheduler's "scheduling latency" fields (or {})."""
        for w in self.workers:
            if w.p.poll() is None:
                w.p.send_signal(signal.SIGTERM)
        for w in self.workers:
            w.stop()
        kill_env(self.names)
        return self.sched.stop()


def kill_env(names):
    """SIGKILLs what is left of the tries of the workers named (BARAM_WORKER=name)."""
    want = {("BARAM_WORKER=%s" % n).encode() for n in names}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/environ" % d, "rb") as f:
                    if set(f.read().split(b"\0")) & want:
                        os.kill(int(d), signal.SIGKILL)
            except OSError:
                pass


def workload(root, shape, n, body, name):
    """A DAG folder with the gen.py workload `shape n` (body) as DAG `name`; its path."""
    wl = os.path.join(root, "wl-" + name)
    gen([shape, n, "--body", body], wl, name=name)
    dags = os.path.join(root, "dags-" + name)
    os.makedirs(os.path.join(dags, "out"))
    shutil.copy(os.path.join(wl, "dag.yaml"), os.path.join(dags, name + ".yaml"))
    return dags


def one_run(d, home, dag, timeout=900):
    """trigger -> "run ended" of d (a Child reading the scheduler): (wall s, run_id)."""
    i = len(d.lines)
    t0 = time.monotonic()
    run_id = trigger(home, dag)
    i, t_end = d.wait(is_msg("run ended", run=run_id), i, timeout)
    if d.lines[i][1].get("state") != "success":
        raise RuntimeError("run %s ended %s" % (run_id, d.lines[i][1].get("state")))
    return t_end - t0, run_id


def step_latency_ms(url, run_id):
    """Chain: per task, its try's start minus the recorded end of the task before it, and
    minus the start of the task before it (the whole cycle of a step), ms: two sorted lists."""
    sql = ("SELECT t.started_at - lag(t.ended_at) OVER w, t.started_at - lag(t.started_at) "
           "OVER w FROM tries t WHERE t.run_id = '%s' AND t.state = 'success' "
           "WINDOW w AS (ORDER BY t.started_at)" % run_id)
    rows = [ln.split("|") for ln in psql(url, sql).splitlines()]
    rows = [(int(a), int(b)) for a, b in rows if a and b]
    return sorted(a for a, _ in rows), sorted(b for _, b in rows)


def pair(v):
    return "%d/%d" % (pct(v, 50), pct(v, 99)) if v else "-"


def pct(v, p):
    if not v:
        return float("nan")
    return v[min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1))))]


def sqlite_once(root, dags, dag, slots):
    home = home_for(root, dags, None, slots)
    drive.clean_out(dags)
    d = Child(["standalone", "--home", home, "--parallelism", str(slots), "--grace", "5s"],
              os.path.join(root, "standalone.log"))
    d.wait(is_msg("scheduler up"))
    wall, run_id = one_run(d, home, dag)
    lat = d.stop()
    return wall, lat, home, run_id


def cluster_cpu_s(pg):
    """CPU seconds (utime+stime) of pg's postmaster and its live children."""
    with open(os.path.join(pg.dir, "data", "postmaster.pid")) as f:
        pm = f.read().split()[0]
    pids = [pm]
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open("/proc/%s/stat" % d) as f:
                    if f.read().rsplit(")", 1)[1].split()[1] == pm:
                        pids.append(d)
            except OSError:
                pass
    total = 0.0
    for p in pids:
        try:
            total += drive.cpu_self_children(int(p))[0]
        except OSError:
            pass
    return total


def cpu_now(f, w, pg):
    """CPU seconds so far: the scheduler, the worker with its reaped tries, the cluster."""
    return (drive.cpu_self_children(f.sched.p.pid)[0], sum(drive.cpu_self_children(w.p.pid)),
            cluster_cpu_s(pg))


def pg_once(root, dags, dag, slots, pg):
    url = pg.fresh()
    home = home_for(root, dags, url, slots)
    drive.clean_out(dags)
    f = Fleet(root, home, url)
    w = f.worker("bench-w1", slots)
    c0 = cpu_now(f, w, pg)
    wall, run_id = one_run(f.sched, home, dag)
    c1 = cpu_now(f, w, pg)
    lat = f.stop()
    lat["cpu"] = tuple(b - a for a, b in zip(c0, c1))
    return wall, lat, url, run_id


def report_throughput(a, root, where):
    pg = Pg(os.path.join(root, "pg"))
    try:
        print("## wide 2000 x true and chain 300 x true: 1 scheduler + 1 worker (%d slots) + "
              "PostgreSQL %s against `baram standalone --parallelism %d` on SQLite (%s)"
              % (a.slots, pg.version(), a.slots, where))
        print()
        for shape, n in (("wide", 2000), ("chain", 300)):
            dag = "bw_%s" % shape
            dags = workload(root, shape, n, "true", dag)
            ntasks = n + (1 if shape == "wide" else 0)
            res = {"sqlite": [], "pg": []}
            for rep in range(a.reps):
                log("throughput %s rep %d/%d" % (shape, rep + 1, a.reps))
                wall, lat, _, _ = sqlite_once(root, dags, dag, a.slots)
                res["sqlite"].append((wall, lat, []))
                wall, lat, url, run_id = pg_once(root, dags, dag, a.slots, pg)
                steps = step_latency_ms(url, run_id) if shape == "chain" else ([], [])
                res["pg"].append((wall, lat, steps))
            print("### %s %d x true (%d task instances)" % (shape, n, ntasks))
            print()
            print("| rep | SQLite standalone s | tasks/s | PG scheduler + worker s | tasks/s "
                  "| PG scheduler's ready -> started p50/p99 us | PG end -> next start p50/p99 ms "
                  "| PG start -> next start p50/p99 ms | PG CPU s: scheduler / worker + tries / PostgreSQL |")
            print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
            for k in range(a.reps):
                sw, _, _ = res["sqlite"][k]
                pw, lat, steps = res["pg"][k]
                print("| %d | %.3f | %.0f | %.3f | %.0f | %s/%s | %s | %s | %s |"
                      % (k + 1, sw, ntasks / sw, pw, ntasks / pw, lat.get("p50_us", "-"),
                         lat.get("p99_us", "-"), pair(steps[0]), pair(steps[1]),
                         " / ".join("%.2f" % c for c in lat["cpu"])))
            sw = med([r[0] for r in res["sqlite"]])
            pw = med([r[0] for r in res["pg"]])
            print()
            print("- median: SQLite standalone %.3f s = %.0f tasks/s; PostgreSQL + worker "
                  "%.3f s = %.0f tasks/s (%.2fx the SQLite wall)"
                  % (sw, ntasks / sw, pw, ntasks / pw, pw / sw))
            if shape == "wide":
                print("- target >= 1,000 tasks/s with a worker: %s"
                      % ("met" if ntasks / pw >= 1000 else "MISSED"))
                cpu = [med([r[1]["cpu"][i] for r in res["pg"]]) for i in range(3)]
                print("- CPU per task instance (median of reps): scheduler %.2f ms, worker with "
                      "its tries' processes %.2f ms, PostgreSQL %.2f ms (2 cores: %.1f ms of CPU "
                      "per task at most for 1,000 tasks/s)"
                      % tuple([c / ntasks * 1000 for c in cpu] + [2.0]))
            else:
                pl = [r[1] for r in res["pg"] if r[1].get("p50_us")]
                if pl:
                    p50 = med([int(x["p50_us"]) for x in pl])
                    print("- PostgreSQL, ready -> process started (the scheduler's own "
                          "\"scheduling latency\" line, median of reps): p50 %s us, p99 %s us "
                          "(target p50 <= 5 ms: %s)"
                          % (p50, med([int(x["p99_us"]) for x in pl]),
                             "met" if p50 <= 5000 else "MISSED"))
                ends = sorted(x for r in res["pg"] for x in r[2][0])
                cycle = sorted(x for r in res["pg"] for x in r[2][1])
                if ends:
                    print("- PostgreSQL, from the store (tries, whole ms, all reps; started_at "
                          "is the claim's time, ended_at the reported end's): upstream's "
                          "recorded end -> next start p50 %d / p99 %d ms; a step's whole cycle "
                          "(start -> next start, the try itself included) p50 %d / p99 %d ms"
                          % (pct(ends, 50), pct(ends, 99), pct(cycle, 50), pct(cycle, 99)))
                sl = [r[1] for r in res["sqlite"] if r[1]]
                if sl:
                    print("- SQLite standalone, the daemon's own ready -> started: p50 %s us, "
                          "p99 %s us (median of reps)"
                          % (med([int(x["p50_us"]) for x in sl]),
                             med([int(x["p99_us"]) for x in sl])))
            print()
    finally:
        pg.destroy()


RESCUE_DAG = """dag: rescue
tasks:
"""


def report_rescue(a, root, where):
    pg = Pg(os.path.join(root, "pg"))
    dags = os.path.join(root, "dags-rescue")
    os.makedirs(dags)
    stamps = os.path.join(root, "stamps")
    text = RESCUE_DAG
    for i in range(4):
        text += ("  t%d:\n    retries: 1\n    run: 'echo \"$BARAM_TRY $BARAM_WORKER "
                 "$(date +%%s.%%N)\" >> %s; sleep 300'\n" % (i, stamps))
    with open(os.path.join(dags, "rescue.yaml"), "w") as f:
        f.write(text)
    took = []
    try:
        for rep in range(a.reps):
            log("rescue rep %d/%d" % (rep + 1, a.reps))
            open(stamps, "w").close()
            url = pg.fresh()
            home = home_for(root, dags, url, 4)  # default timings
            f = Fleet(root, home, url)
            try:
                wa = f.worker("bench-a%d" % rep, 4)
                trigger(home, "rescue")
                wait_lines(stamps, lambda ls: len(ls) >= 4, 60)
                f.worker("bench-b%d" % rep, 4)
                wa.p.kill()
                t0 = time.time()
                wa.p.wait()
                ls = wait_lines(stamps, lambda ls: len([x for x in ls if x[0] == "2"]) >= 4, 120)
                took.append(max(float(x[2]) for x in ls if x[0] == "2") - t0)
            finally:
                f.stop()
    finally:
        pg.destroy()
    print("## kill -9 of a worker -> its 4 tries started again on another worker, default "
          "timings (heartbeat 5s, dead_after 20s) (%s)" % where)
    print()
    print("| rep | kill -9 -> last retry started s |")
    print("|---|---:|")
    for k, t in enumerate(took):
        print("| %d | %.2f |" % (k + 1, t))
    print()
    print("- median %.2f s, max %.2f s (target <= 25 s: %s)"
          % (med(took), max(took), "met" if max(took) <= 25 else "MISSED"))
    print()


def wait_lines(path, cond, timeout):
    end = time.monotonic() + timeout
    while True:
        with open(path) as f:
            ls = [ln.split() for ln in f.read().splitlines() if len(ln.split()) == 3]
        if cond(ls):
            return ls
        if time.monotonic() > end:
            raise RuntimeError("timeout: %s" % ls)
        time.sleep(0.05)


def report_scale(a, root, where):
    pg = Pg(os.path.join(root, "pg"))
    dag = "bw_sleep"
    dags = workload(root, "wide", 2000, "sleep:0.2", dag)
    counts = (1, 2, 4)
    res = {k: [] for k in counts}
    try:
        for rep in range(a.reps):
            for k in counts:
                log("scale %d workers rep %d/%d" % (k, rep + 1, a.reps))
                url = pg.fresh()
                # the scheduler's parallelism caps the tries in flight over all its workers:
                # room for the 4 workers' slots, so that only the workers limit
                home = home_for(root, dags, url, max(counts) * a.slots)
                drive.clean_out(dags)
                f = Fleet(root, home, url)
                try:
                    for i in range(k):
                        f.worker("bench-s%d" % i, a.slots)
                    wall, _ = one_run(f.sched, home, dag)
                finally:
                    f.stop()
                res[k].append(wall)
    finally:
        pg.destroy()
    print("## 1 -> 2 -> 4 workers of %d slots on wide 2000 x sleep 0.2, scheduler parallelism %d "
          "(%s)" % (a.slots, max(counts) * a.slots, where))
    print()
    print("| workers | slots | wall s (median) | walls | tasks/s | ideal s (2000 x 0.2 / slots) "
          "| speed-up vs 1 |")
    print("|---:|---:|---:|---|---:|---:|---:|")
    base = med(res[1])
    for k in counts:
        w = med(res[k])
        print("| %d | %d | %.2f | %s | %.0f | %.2f | %.2fx |"
              % (k, k * a.slots, w, ", ".join("%.2f" % x for x in res[k]), 2001 / w,
                 2000 * 0.2 / (k * a.slots), base / w))
    print()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["throughput", "rescue", "scale"])
    ap.add_argument("--tmp", default="/dev/shm")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="baram-workers.", dir=a.tmp)
    os.chmod(root, 0o755)  # the cluster runs as postgres when we are root
    where = "%s (%s)" % (a.tmp, fstype(root))
    try:
        {"throughput": report_throughput, "rescue": report_rescue,
         "scale": report_scale}[a.what](a, root, where)
    finally:
        if a.keep:
            log("kept %s" % root)
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
