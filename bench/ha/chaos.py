#!/usr/bin/env python3
"""Kill -9 chaos and takeover times for several schedulers on one PostgreSQL database.

usage: bench/ha/chaos.py BARAM [--trials 20] [--dead-after 3s] [--heartbeat 1s] [--seed 1]

Starts two `baram scheduler` processes on their own homes and one fresh database (of the
cluster whose socket folder BARAM_TEST_PG names, else a throwaway one from scripts/pg-cluster),
then for each trial: triggers 3 runs (from each home in turn) of a chain of 4 tasks (1 s each, retries 3), waits a
random 0.3-3.5 s, kill -9's the scheduler owning the most unfinished runs, measures the time
until every one of its runs is owned by the other (the takeover), waits for the runs to end,
and restarts the victim. Every task appends "RUN TASK start|done" to one file, so the script
counts what ran rather than trusting the store. Prints one line per trial and a summary:
runs lost (not success), tasks that had finished before a kill and started again (must be
0), takeover p50/max, and whether any log mentions a deadlock (40P01).
"""

import argparse
import collections
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHAIN = """dag: chain
max_active_runs: 64
tasks:
""" + "".join(
    "  %s: {run: 'echo \"$BARAM_RUN_ID %s start\" >> LOG; sleep 1; echo \"$BARAM_RUN_ID %s done\" "
    ">> LOG', retries: 3%s}\n" % (t, t, t, ", needs: [%s]" % p if p else "")
    for t, p in (("a", None), ("b", "a"), ("c", "b"), ("d", "c")))


def psql(sock, db, sql):
    r = subprocess.run(["psql", "-X", "-q", "-At", "-h", sock, "-U", "postgres", "-d", db, "-c",
                        sql], capture_output=True, text=True, timeout=60,
                       env={k: v for k, v in os.environ.items() if not k.startswith("PG")})
    if r.returncode:
        raise RuntimeError(r.stderr)
    return [ln.split("|") for ln in r.stdout.splitlines() if ln]


def poll(cond, timeout, step=0.02):
    end = time.monotonic() + timeout
    while True:
        v = cond()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("baram")
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--dead-after", default="3s")
    ap.add_argument("--heartbeat", default="1s")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="baram-chaos."))
    os.chmod(tmp, 0o755)
    sock = os.environ.get("BARAM_TEST_PG")
    own = not sock
    if own:
        sock = str(tmp / "pg")
        subprocess.run([str(ROOT / "scripts/pg-cluster"), "start", sock], check=True)
    db = "chaos_%d" % os.getpid()
    psql(sock, "postgres", "CREATE DATABASE %s" % db)
    url = "postgresql:///%s?host=%s&user=postgres" % (db, sock)
    dags = tmp / "dags"
    dags.mkdir()
    log = tmp / "tasks.log"
    log.touch()
    (dags / "chain.yaml").write_text(CHAIN.replace("LOG", str(log)))
    env = {k: v for k, v in os.environ.items() if not k.startswith("BARAM_")}
    env.update(BARAM_DB=url, BARAM_DAGS=str(dags), BARAM_SCHEDULER_DEAD_AFTER=a.dead_after,
               BARAM_SCHEDULER_HEARTBEAT=a.heartbeat)
    procs, logs = {}, []

    def start(i):
        e = dict(env, BARAM_HOME=str(tmp / ("h%d" % i)))
        lf = tmp / ("sched%d.%d.log" % (i, len(logs)))
        logs.append(lf)
        p = subprocess.Popen([a.baram, "scheduler"], env=e, cwd=str(dags),
                             stdout=subprocess.DEVNULL, stderr=open(lf, "wb"))
        assert poll(lambda: "scheduler up" in lf.read_text(), 20), lf.read_text()
        procs[i] = p

    def q(sql):
        return psql(sock, db, sql)

    def lines():
        return collections.Counter(tuple(x.split()) for x in log.read_text().splitlines() if x)

    def sched_id(p):
        r = q("SELECT id FROM workers WHERE pid = %d AND state = 'active'" % p.pid)
        return int(r[0][0]) if r else None

    subprocess.run([a.baram, "init"], env=dict(env, BARAM_HOME=str(tmp / "h0")), check=True,
                   capture_output=True)
    start(0)
    start(1)
    rnd = random.Random(a.seed)
    takeovers, reruns, lost_runs, all_ids = [], 0, 0, []
    try:
        for trial in range(a.trials):
            ids = []
            for _ in range(3):
                # from each home in turn: its scheduler hears the doorbell first
                r = subprocess.run([a.baram, "dags", "trigger", "chain", "--json"],
                                   env=dict(env, BARAM_HOME=str(tmp / ("h%d" % (trial % 2)))),
                                   capture_output=True, text=True, check=True)
                ids.append(json.loads(r.stdout)["run_id"])
            all_ids += ids
            time.sleep(rnd.uniform(0.3, 3.5))
            sid = {i: sched_id(p) for i, p in procs.items()}
            own_runs = collections.Counter(
                int(o) for (o,) in q("SELECT sched_id FROM runs WHERE state IN ('queued', "
                                     "'running') AND sched_id IS NOT NULL"))
            victim = max(procs, key=lambda i: own_runs.get(sid[i], 0))
            lost = [r for (r,) in q("SELECT run_id FROM runs WHERE sched_id = %d AND state IN "
                                    "('queued', 'running')" % sid[victim])]
            done = {tuple(x) for x in q("SELECT run_id, task_id FROM task_instances WHERE "
                                        "state = 'success'")}
            before = lines()
            procs[victim].kill()
            procs[victim].wait()
            t0 = time.monotonic()
            other = sid[1 - victim]
            took = None
            if lost:
                inl = ",".join("'%s'" % r for r in lost)
                ok = poll(lambda: all(int(o or 0) == other or s == "success" for o, s in q(
                    "SELECT sched_id, state FROM runs WHERE run_id IN (%s)" % inl)), 60)
                took = time.monotonic() - t0 if ok else None
                if took is not None:
                    takeovers.append(took)
            inl = ",".join("'%s'" % r for r in ids)
            poll(lambda: all(s in ("success", "failed") for (s,) in q(
                "SELECT state FROM runs WHERE run_id IN (%s)" % inl)), 90)
            states = [s for (s,) in q("SELECT state FROM runs WHERE run_id IN (%s)" % inl)]
            lost_runs += sum(1 for s in states if s != "success")
            after = lines()
            rr = sum(1 for (r, t) in done if after[(r, t, "start")] != before[(r, t, "start")])
            reruns += rr
            print("trial %2d: killed %d owning %d unfinished runs, takeover %s, runs %s, "
                  "finished tasks started again %d" % (
                      trial, victim, len(lost), "%.2f s" % took if took is not None else "-",
                      ",".join(states), rr), flush=True)
            start(victim)
    finally:
        for p in procs.values():
            p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
    deadlock = any("40P01" in f.read_text() or "deadlock" in f.read_text() for f in logs)
    print("\ntrials %d, dead_after %s, heartbeat %s: runs %d, lost %d, finished tasks started "
          "again %d, takeover p50 %.2f s max %.2f s (%d takeovers), deadlock in logs: %s" % (
              a.trials, a.dead_after, a.heartbeat, len(all_ids), lost_runs, reruns,
              statistics.median(takeovers) if takeovers else float("nan"),
              max(takeovers) if takeovers else float("nan"), len(takeovers),
              "yes" if deadlock else "no"))
    psql(sock, "postgres", "DROP DATABASE %s WITH (FORCE)" % db)
    if own:
        subprocess.run([str(ROOT / "scripts/pg-cluster"), "destroy", sock])
    shutil.rmtree(tmp, ignore_errors=True)
    return 0 if lost_runs == 0 and reruns == 0 and not deadlock else 1


if __name__ == "__main__":
    sys.exit(main())
