#!/usr/bin/env python3
"""spread.py - throughput of several `baram scheduler`s on one PostgreSQL database, with the
tasks' pool unlimited (default: each scheduler's own) or limited across them (`pools set`,
every try admitted by the database, see src/sched/admit.h).

Usage: spread.py --baram BIN --db URL [--scheds 3] [--runs 6] [--tasks 50] [--pool SLOTS]
The database should be empty. Runs are dealt out to the schedulers in turn (as the tests do)
so that each has work. Prints one markdown row: tasks/s from the first run's start to the last
run's end (by the runs' records), and whether everything ran exactly once: each task appends
"RUN TASK TRY" to one file when its process runs (O_APPEND, one write), so a task run twice,
by two schedulers or by one, shows there whatever the store says; each run must have ended
once (one 'run' event in state success in the event log) and each instance have one try.
Exits 1 when any check fails.
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--baram", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--scheds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=6)
    ap.add_argument("--tasks", type=int, default=50)
    ap.add_argument("--pool", type=int, default=0)
    ap.add_argument("--tmp", default="/dev/shm")
    a = ap.parse_args()
    root = tempfile.mkdtemp(prefix="baram-spread-", dir=a.tmp)
    procs = []
    try:
        dags = os.path.join(root, "dags")
        ran = os.path.join(root, "ran.txt")
        os.makedirs(dags)
        with open(os.path.join(dags, "w.yaml"), "w") as f:
            f.write("dag: w\nmax_active_runs: 64\ntasks:\n" + "".join(
                "  t%d:\n    run: 'echo \"$BARAM_RUN_ID $BARAM_TASK $BARAM_TRY\" >> %s'\n%s"
                % (i, ran, "    pool: lim\n" if a.pool else "")
                for i in range(a.tasks)))
        base = {k: v for k, v in os.environ.items() if not k.startswith("BARAM_")}
        base.update(BARAM_DB=a.db, BARAM_DAGS=dags)
        envs = [dict(base, BARAM_HOME=os.path.join(root, "h%d" % i)) for i in range(a.scheds)]
        run = lambda env, *args: subprocess.run([a.baram] + list(args), env=env, check=True,
                                                capture_output=True, text=True)
        run(dict(envs[0], BARAM_ADMIN_PASSWORD="x" * 16), "init")
        if a.pool:
            run(envs[0], "pools", "set", "lim", str(a.pool))
        run(envs[0], "dags", "pause", "w")
        for i, env in enumerate(envs):
            log = open(os.path.join(root, "s%d.log" % i), "wb")
            procs.append(subprocess.Popen([a.baram, "scheduler", "--parallelism", "8"], env=env,
                                          stdout=subprocess.DEVNULL, stderr=log, cwd=dags))
        psql = lambda sql: subprocess.run(["psql", "-X", "-q", "-At", a.db, "-c", sql],
                                          check=True, capture_output=True, text=True).stdout.strip()
        while psql("SELECT count(*) FROM workers WHERE state = 'active'") != str(a.scheds):
            time.sleep(0.05)
        for _ in range(a.runs):
            run(envs[0], "dags", "trigger", "w")
        while psql("SELECT count(*) FROM runs WHERE sched_id IS NULL") != "0":
            time.sleep(0.05)
        psql("UPDATE runs r SET sched_id = (SELECT array_agg(id ORDER BY id) FROM workers)"
             "[1 + (k.n - 1) %% %d] FROM (SELECT run_id, row_number() OVER (ORDER BY run_id) "
             "AS n FROM runs) k WHERE r.run_id = k.run_id" % a.scheds)
        t0 = time.monotonic()
        run(envs[0], "dags", "unpause", "w")
        while psql("SELECT count(*) FROM runs WHERE state NOT IN ('success', 'failed')") != "0":
            time.sleep(0.02)
        del t0
        # From the first run's start to the last one's end (the unpause reaches each scheduler
        # at its next sync, up to 2 s later: not the figure wanted).
        took = int(psql("SELECT max(ended_at) - min(started_at) FROM runs")) / 1000.0
        bad = psql("SELECT count(*) FROM runs WHERE state <> 'success'")
        n = a.runs * a.tasks
        lines = []
        if os.path.exists(ran):
            with open(ran) as f:
                lines = [l.split() for l in f.read().splitlines()]
        execs = len(lines)
        twice = execs - len({(r, t) for r, t, _ in lines})
        checks = {
            "runs": int(psql("SELECT count(*) FROM runs")) == a.runs,
            "runs ended once": psql("SELECT count(*) FROM (SELECT run_id FROM events WHERE "
                                    "kind = 'run' AND state = 'success' GROUP BY run_id "
                                    "HAVING count(*) = 1) k") == str(a.runs),
            "instances succeeded": psql("SELECT count(*) FROM task_instances WHERE state = "
                                        "'success' AND try_number = 1") == str(n),
            "one try each": psql("SELECT count(*) FROM tries") == str(n),
            "processes": execs == n and twice == 0,
        }
        failed = [k for k, ok in checks.items() if not ok]
        print("| %d schedulers | %d runs x %d tasks | pool %s | %.2f s | %.0f tasks/s | failed runs %s "
              "| task processes %d, run twice %d | %s |"
              % (a.scheds, a.runs, a.tasks, a.pool or "default", took, n / took, bad, execs, twice,
                 "exactly once: yes" if not failed else "FAILED: " + ", ".join(failed)))
        return 1 if failed or bad != "0" else 0
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(60)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
