#!/usr/bin/env python3
"""perf.py - where the time of tries run by a worker goes: wide N x true on 1 scheduler +
1 worker (SLOTS) + a throwaway PostgreSQL cluster (scripts/pg-cluster, under --tmp, fsync on).

Usage (BARAM and BENCH_DIR from the environment, as for figures.py):
  perf.py [--tmp DIR] [--reps R] [--slots N] [--parallelism P] [--n 2000] [--stats]
          [--sql SQL] [--after SQL] [--perf FILE]

Per repetition (a fresh database and home): trigger -> "run ended" and the CPU per task
instance of the scheduler, of the worker with its tries' processes and of the cluster.
--stats: pg_stat_statements (track all, nested statements too) over the run: calls and
server time per task instance, rows per call, the 40 costliest statements.
--sql: run on the database once the worker is up (e.g. to try a setting before changing a
migration); --after: a query whose rows are printed after the run. --perf FILE: `perf record -g` of the worker process over the run.

Reuses figures.py (Fleet, workload, the CPU readers) and bench/daemon/drive.py.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from figures import Fleet, cpu_now, home_for, one_run, psql, workload  # noqa: E402
import drive  # noqa: E402  (figures.py put bench/daemon on the path)
from drive import Pg, med  # noqa: E402

STATS_SQL = (
    "SELECT round(calls::numeric / %d, 3), round(rows::numeric / greatest(calls, 1), 2), "
    "round((total_exec_time / %d)::numeric, 4), toplevel, "
    "regexp_replace(left(query, 150), '\\s+', ' ', 'g') FROM pg_stat_statements "
    "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
    "ORDER BY total_exec_time DESC LIMIT 40")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tmp", default="/dev/shm")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--slots", type=int, default=8)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--parallelism", type=int, default=0, help="the scheduler's (default: slots)")
    ap.add_argument("--stats", action="store_true")
    ap.add_argument("--sql", default="")
    ap.add_argument("--after", default="", help="a query whose rows are printed after the run")
    ap.add_argument("--perf", default="")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="baram-perfw.", dir=a.tmp)
    os.chmod(root, 0o755)  # the cluster runs as postgres when we are root
    pg = Pg(os.path.join(root, "pg"))
    try:
        if a.stats:
            pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
            subprocess.run([drive.PG_CLUSTER, "restart", pg.dir], check=True)
            pg.psql("ALTER SYSTEM SET pg_stat_statements.track = 'all'")
            pg.psql("SELECT pg_reload_conf()")
        dag = "bw_wide"
        dags = workload(root, "wide", a.n, "true", dag)
        nt = a.n + 1
        walls, cpus = [], []
        for rep in range(a.reps):
            url = pg.fresh()
            if a.stats:
                psql(url, "CREATE EXTENSION pg_stat_statements")
            home = home_for(root, dags, url, a.parallelism or a.slots)
            drive.clean_out(dags)
            f = Fleet(root, home, url)
            try:
                w = f.worker("bench-w1", a.slots)
                if a.sql:
                    psql(url, a.sql)
                if a.stats:
                    psql(url, "SELECT pg_stat_statements_reset()")
                pp = None
                if a.perf:
                    pp = subprocess.Popen(["perf", "record", "-g", "-o", a.perf, "-p",
                                           str(w.p.pid)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                    time.sleep(0.5)
                c0 = cpu_now(f, w, pg)
                wall, _ = one_run(f.sched, home, dag)
                c1 = cpu_now(f, w, pg)
                if pp:
                    pp.send_signal(2)
                    pp.wait()
                if a.after:
                    print(psql(url, a.after))
                if a.stats:
                    print("calls/task | rows/call | ms/task | top level | statement")
                    print(psql(url, STATS_SQL % (nt, nt)))
            finally:
                f.stop()
            cpu = [(y - x) / nt * 1000 for x, y in zip(c0, c1)]
            walls.append(wall)
            cpus.append(cpu)
            with open("/proc/loadavg") as lf:
                load = " ".join(lf.read().split()[:3])
            print("rep %d: %.3f s = %.0f tasks/s; CPU ms/task scheduler %.2f, worker + tries "
                  "%.2f, PostgreSQL %.2f; load %s"
                  % (rep + 1, wall, nt / wall, cpu[0], cpu[1], cpu[2], load), flush=True)
        m = med(walls)
        print("median %.3f s = %.0f tasks/s; CPU ms/task scheduler %.2f, worker + tries %.2f, "
              "PostgreSQL %.2f" % (m, nt / m, *[med([c[i] for c in cpus]) for i in range(3)]))
    finally:
        pg.destroy()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
