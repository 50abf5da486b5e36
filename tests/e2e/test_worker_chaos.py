"""Chaos on a fleet of workers (SPEC section 12, issue 12): 50 random kill -9 of workers,
each restarted at once under its name, across a 2,000-task run with 3 workers, one
`baram scheduler` and a pool of 16 slots. Nothing may be lost or counted twice:

- every task instance ends success (the run succeeds, tries left for the lost ones);
- the tries table has at most one success per instance (try numbers are its key);
- every slot is freed: ti_queue is empty at the end and the pool shows 0 running; while the
  run goes, the pool's rows in flight never exceed its slots;
- every killed registration is declared dead (never 'active' for good);
- no deadlock (40P01) in the scheduler's or the workers' logs.

Short timings (worker heartbeat 500ms, dead_after 3s).
"""

import random
import time

import pytest

from daemon_util import daemons, poll, wait_run  # noqa: F401 (daemons: a fixture)
from worker_util import wait_until, workers  # noqa: F401 (workers: a fixture)

pytestmark = pytest.mark.pg_only

TASKS = 2000
KILLS = 50
POOL = 16


def wide_dag(n):
    lines = ["dag: wide", "defaults:", "  retries: 8", "  pool: chaos", "tasks:"]
    for i in range(n):
        lines.append("  t%d: {run: 'sleep 0.%d'}" % (i, random.choice((0, 1, 2))))
    lines.append("  end:")
    lines.append("    needs: [%s]" % ", ".join("t%d" % i for i in range(n)))
    lines.append("    run: 'true'")
    return "\n".join(lines) + "\n"


@pytest.mark.timeout(900)
def test_50_kills_across_2000_tasks_lose_nothing(workers):
    f = workers
    rnd = random.Random()
    seed = rnd.randrange(1 << 30)
    rnd.seed(seed)
    f.write("wide.yaml", wide_dag(TASKS))
    assert f.b("pools", "set", "chaos", str(POOL)).rc == 0
    s = f.scheduler()
    ws = [f.worker("c%d" % i, slots=8) for i in range(3)]
    run_id = f.trigger("wide")
    killed = []  # (name, pid) of the killed processes
    peak = 0
    for k in range(KILLS):
        time.sleep(rnd.uniform(0.1, 0.5))
        (inflight,) = f.db("SELECT count(*) FROM ti_queue WHERE pool = 'chaos' AND "
                           "state IN ('queued', 'running')")[0]
        peak = max(peak, inflight)
        assert inflight <= POOL, (k, inflight)
        i = rnd.randrange(len(ws))
        w = ws[i]
        w.kill9()
        killed.append((w.name, w.pid))
        ws[i] = f.restart(w)
        s.assert_alive()
    (state,) = f.db("SELECT state FROM runs WHERE run_id = ?", run_id)[0]
    assert state == "running", "the run ended before the %d kills (seed %d)" % (KILLS, seed)
    o = wait_run(f.b, run_id, timeout=600, daemon=s)
    assert o["state"] == "success", (seed, {t: v for t, v in o["tasks"].items()
                                            if v["state"] != "success"})
    # 0 lost instances
    assert f.db("SELECT count(*), count(*) FILTER (WHERE state = 'success') FROM "
                "task_instances WHERE run_id = ?", run_id) == [(TASKS + 1, TASKS + 1)]
    # no success recorded twice
    assert f.db("SELECT task_id, count(*) FROM tries WHERE run_id = ? AND state = 'success' "
                "GROUP BY task_id HAVING count(*) > 1", run_id) == []
    assert f.db("SELECT count(DISTINCT task_id) FROM tries WHERE run_id = ? AND "
                "state = 'success'", run_id) == [(TASKS + 1,)]
    # every instance's final try is its success, and try numbers run 1..n
    assert f.db("SELECT count(*) FROM (SELECT task_id, max(try_number) AS n, count(*) AS c "
                "FROM tries WHERE run_id = ? GROUP BY task_id) x WHERE n <> c", run_id) == [(0,)]
    # every slot freed
    wait_until(lambda: f.db("SELECT count(*) FROM ti_queue") == [(0,)], 10, "ti_queue empty")
    r = f.b("pools", "list", "--json")
    assert r.rc == 0, r
    (pool,) = [p for p in r.json["pools"] if p["name"] == "chaos"]
    assert pool["running"] == 0 and pool["slots"] == POOL, pool
    # every killed registration declared dead; the live ones active
    def states():
        return {(x["name"], x["pid"]): x["state"] for x in f.registry() if x["role"] == "worker"}
    wait_until(lambda: all(states().get(k) == "dead" for k in killed), 10,
               "the %d killed registrations dead" % KILLS)
    st = states()
    assert all(st[(w.name, w.pid)] == "active" for w in ws), st
    # no deadlock between the scheduler's and the workers' transactions, in any log
    for log in f.tmp.glob("*.log"):
        text = log.read_text(errors="replace")
        assert "40P01" not in text and "deadlock" not in text, (log.name, text[-2000:])
    lost = f.db("SELECT count(*) FROM tries WHERE run_id = ? AND state <> 'success'", run_id)
    print("seed %d: %d kills, %s tries lost and retried, pool peak %d/%d"
          % (seed, KILLS, lost[0][0], peak, POOL))
