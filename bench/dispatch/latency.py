#!/usr/bin/env python3
"""latency.py - ready -> process started on PostgreSQL, as `baram scheduler` logs it at exit
("scheduling latency": p50/p99 over the run's tries; and, for a limited pool, "pool
admission latency": ready -> slot granted by the database), for a chain or a wide DAG of `true`
tasks, with their pool unlimited (default: no database round trip) or limited with
`baram pools set` (each try waits for a slot granted by the database, see src/sched/admit.h).

Usage: latency.py --baram BIN --db URL [--shape chain|wide] [--tasks N] [--pool SLOTS]
                  [--reps R] [--tmp DIR]
Prints one markdown row per repetition. The database should be empty (a fresh one).
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time


def dag_yaml(shape, n, pool):
    lines = ["dag: lat", "max_active_runs: 16", "tasks:"]
    for i in range(n):
        lines.append("  t%d:" % i)
        lines.append("    run: 'true'")
        if pool:
            lines.append("    pool: limited")
        if shape == "chain" and i > 0:
            lines.append("    needs: [t%d]" % (i - 1))
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baram", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--shape", default="chain", choices=["chain", "wide"])
    ap.add_argument("--tasks", type=int, default=300)
    ap.add_argument("--pool", type=int, default=0, help="slots of a limited pool (0: none)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--tmp", default="/dev/shm")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="baram-lat-", dir=a.tmp)
    try:
        dags = os.path.join(root, "dags")
        os.makedirs(dags)
        with open(os.path.join(dags, "lat.yaml"), "w") as f:
            f.write(dag_yaml(a.shape, a.tasks, a.pool))
        env = {k: v for k, v in os.environ.items() if not k.startswith("BARAM_")}
        env.update(BARAM_HOME=os.path.join(root, "home"), BARAM_DB=a.db, BARAM_DAGS=dags)
        subprocess.run([a.baram, "init"], env=dict(env, BARAM_ADMIN_PASSWORD="x" * 16),
                       check=True, capture_output=True)
        if a.pool:
            subprocess.run([a.baram, "pools", "set", "limited", str(a.pool)], env=env,
                           check=True, capture_output=True)
        print("| shape | tasks | pool | rep | tries | p50 us | p99 us | max us "
              "| admission p50 / p99 us | run s |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for rep in range(a.reps):
            log = os.path.join(root, "sched.log")
            with open(log, "wb") as errf:
                p = subprocess.Popen([a.baram, "scheduler", "--parallelism", "8"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=errf, cwd=dags)
            deadline = time.monotonic() + 30
            while b"scheduler up" not in open(log, "rb").read():
                if time.monotonic() > deadline or p.poll() is not None:
                    sys.exit("scheduler did not start: " + open(log).read())
                time.sleep(0.02)
            t0 = time.monotonic()
            r = subprocess.run([a.baram, "dags", "trigger", "lat"], env=env, check=True,
                               capture_output=True, text=True)
            run_id = r.stdout.split()[-1] if r.stdout.split() else ""
            while True:
                text = open(log).read()
                m = [ln for ln in text.splitlines() if 'msg="run ended"' in ln]
                if m:
                    break
                if time.monotonic() - t0 > 300 or p.poll() is not None:
                    sys.exit("run did not end: " + text[-2000:])
                time.sleep(0.01)
            took = time.monotonic() - t0
            p.send_signal(signal.SIGTERM)
            p.wait(60)
            text = open(log).read()
            if "state=success" not in m[0]:
                sys.exit("run failed: " + m[0])
            lat = [ln for ln in text.splitlines() if 'msg="scheduling latency"' in ln]
            kv = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', lat[-1])) if lat else {}
            adm = [ln for ln in text.splitlines() if 'msg="pool admission latency"' in ln]
            ak = dict(re.findall(r'(\w+)=("[^"]*"|\S+)', adm[-1])) if adm else {}
            print("| %s | %d | %s | %d | %s | %s | %s | %s | %s | %.3f |"
                  % (a.shape, a.tasks, a.pool or "default", rep + 1, kv.get("tries"),
                     kv.get("p50_us"), kv.get("p99_us"), kv.get("max_us"),
                     "%s / %s" % (ak["p50_us"], ak["p99_us"]) if ak else "-", took))
            sys.stdout.flush()
            os.remove(log)
            del run_id
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
