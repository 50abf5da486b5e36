"""Pools and max_active_runs across several schedulers on one PostgreSQL database (SPEC
section 12, issue 11 item 3): two and three `baram scheduler` processes, each with its own
home, the same DAG folder and the same database.

Every task appends a start and an end stamp (monotonic ns, its run, the scheduler that
spawned it) to one file; the overlap of the intervals is the use that really happened, so a
limit that did not hold shows as more tasks at once than slots, whatever the database says.
While the runs go, the database is sampled too: the pool's rows in flight (ti_queue) and
the DAG's running runs, after every step of the poll loop.
"""

import json
import subprocess
import time

import pytest

from conftest import Baram
from daemon_util import ENDED, daemons, poll, runs_list, worker_name  # noqa: F401 (fixture)

pytestmark = pytest.mark.pg_only

# A task's command (run by /bin/sh -c, spawned by its scheduler): one line per event,
# "<ns> <s|e> <run_id> <task> <scheduler pid>".
STAMP = ('echo "$(date +%s%N) s $BARAM_RUN_ID $BARAM_TASK $PPID" >> {f}; sleep {d}; '
         'echo "$(date +%s%N) e $BARAM_RUN_ID $BARAM_TASK $PPID" >> {f}')


def stamp_task(name, f, d, extra=""):
    return "  %s:\n    run: %s\n%s" % (name, json.dumps(STAMP.format(f=f, d=d)), extra)


def psql(url, sql):
    r = subprocess.run(["psql", "-X", "-q", "-At", url, "-c", sql], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def homes(tmp_path, pg_url, n):
    """n homes on the database pg_url sharing the DAG folder tmp_path/dags (the first one
    made with `baram init`): their Baram objects."""
    dags = tmp_path / "dags"
    dags.mkdir(exist_ok=True)
    bs = []
    for i in range(n):
        b = Baram(tmp_path / ("home%d" % i), dags)
        b.env["BARAM_DB"] = pg_url
        b.env["BARAM_DAGS"] = str(dags)
        if i == 0:
            r = b("init", env={"BARAM_ADMIN_PASSWORD": "pw-" + "x" * 12})
            assert r.rc == 0, r
        bs.append(b)
    return bs


def start_all(daemons, bs, parallelism=8):
    """A scheduler on each home, and beside it a worker with as many slots (on PostgreSQL
    workers run the tries)."""
    ds = []
    for i, b in enumerate(bs):
        ds.append(daemons(b, "--parallelism", str(parallelism), log_name="sched%d.log" % i,
                          cmd="scheduler"))
        daemons.worker(b, "--slots", str(parallelism), "--name", worker_name("w%d" % i),
                       log_name="worker%d.log" % i)
    return ds


def trigger_spread(b, pg_url, dag, nruns, nsched):
    """Triggers nruns runs of dag, paused, and deals them out to the nsched schedulers in turn
    (claims would give them to whichever syncs first); then unpauses the DAG. The schedulers
    must be up, the DAG paused since before they started."""
    for _ in range(nruns):
        r = b("dags", "trigger", dag, "--json")
        assert r.rc == 0, r
    assert poll(lambda: psql(pg_url, "SELECT count(*) FROM runs WHERE dag_id = '%s' "
                                     "AND sched_id IS NOT NULL" % dag) == str(nruns), 10)
    ids = psql(pg_url, "SELECT id FROM workers WHERE role = 'scheduler' AND state = 'active' "
                       "ORDER BY id").split()
    assert len(ids) == nsched, ids
    psql(pg_url, "UPDATE runs r SET sched_id = (ARRAY[%s]::bigint[])[1 + (k.n - 1) %% %d] "
                 "FROM (SELECT run_id, row_number() OVER (ORDER BY run_id) AS n FROM runs "
                 "WHERE dag_id = '%s') k WHERE r.run_id = k.run_id"
         % (",".join(ids), nsched, dag))
    r = b("dags", "unpause", dag)
    assert r.rc == 0, r


def read_stamps(path):
    ev = []
    for line in path.read_text().splitlines():
        ns, kind, run_id, task, pid = line.split()
        ev.append((int(ns), kind, run_id, task, int(pid)))
    return ev


def max_overlap(ev):
    """The most tasks running at once (an end sorts before a start at the same ns)."""
    cur = best = 0
    for _, kind, *_ in sorted(ev, key=lambda x: (x[0], 0 if x[1] == "e" else 1)):
        cur += 1 if kind == "s" else -1
        best = max(best, cur)
    return best


def wait_all_ended(b, dag, n, ds, sample, timeout):
    """Polls until n runs of dag have ended, calling sample() after every step."""
    last = {}

    def check():
        for d in ds:
            d.assert_alive()
        sample()
        runs = [r for r in runs_list(b) if r["dag"] == dag]
        last["runs"] = runs
        return len(runs) == n and all(r["state"] in ENDED for r in runs)
    ok = poll(check, timeout, step=0.05)
    assert ok, "runs not ended after %.0fs: %s\n%s" % (
        timeout, json.dumps(last.get("runs"), indent=1), "\n".join(d.log()[-3000:] for d in ds))
    return last["runs"]


@pytest.mark.parametrize("nsched", [2, 3])
def test_pool_slots_hold_across_schedulers(tmp_path, pg_url, daemons, nsched):
    """A pool of 2 slots, 3 runs of 4 pooled tasks per scheduler: never
    more than 2 of them at once, by the tasks' own stamps and by the database after every
    step; each runs once, and every slot is given back."""
    stamps = tmp_path / "stamps"
    bs = homes(tmp_path, pg_url, nsched)
    b = bs[0]
    r = b("pools", "set", "p2", "2")
    assert r.rc == 0, r
    tasks = "".join(stamp_task("t%d" % i, stamps, "0.4", "    pool: p2\n") for i in range(4))
    b.write("pooled.yaml", "dag: pooled\nmax_active_runs: 16\ntasks:\n" + tasks)
    assert b("dags", "pause", "pooled").rc == 0
    ds = start_all(daemons, bs)
    # Each scheduler has work for longer (2.4 s at 2 slots) than the others may take to see
    # the unpause (the 2 s resync): their tries would overlap if each counted on its own.
    nruns = 3 * nsched
    trigger_spread(b, pg_url, "pooled", nruns, nsched)
    seen = []

    def sample():
        v = psql(pg_url, "SELECT count(*) FROM ti_queue WHERE pool = 'p2' "
                         "AND state IN ('queued', 'running')")
        seen.append(int(v))

    runs = wait_all_ended(b, "pooled", nruns, ds, sample, timeout=90)
    assert all(r["state"] == "success" for r in runs), runs
    ev = read_stamps(stamps)
    starts = [e for e in ev if e[1] == "s"]
    assert len(starts) == 4 * nruns  # each pooled task once
    assert len({(e[2], e[3]) for e in starts}) == 4 * nruns
    assert max_overlap(ev) <= 2, sorted(ev)
    assert max(seen) <= 2, seen
    assert max(seen) == 2  # the slots were used
    # Spread over several schedulers, or the test proves nothing about "across".
    assert len({e[4] for e in starts}) == nsched, starts
    assert psql(pg_url, "SELECT count(*) FROM ti_queue") == "0"  # every slot given back
    for d in ds:
        assert d.stop() == 0
        assert "40P01" not in d.log()


def test_max_active_runs_holds_across_schedulers(tmp_path, pg_url, daemons):
    """max_active_runs 1 and 8 queued runs taken by 3 schedulers: never 2 running, by the
    tasks' stamps and by the database after every step; every run succeeds once."""
    stamps = tmp_path / "stamps"
    bs = homes(tmp_path, pg_url, 3)
    b = bs[0]
    b.write("one.yaml", "dag: one\nmax_active_runs: 1\ntasks:\n"
            + stamp_task("a", stamps, "0.1")
            + stamp_task("b", stamps, "0.1", "    needs: [a]\n"))
    assert b("dags", "pause", "one").rc == 0
    ds = start_all(daemons, bs)
    nruns = 8
    trigger_spread(b, pg_url, "one", nruns, 3)
    seen = []

    def sample():
        seen.append(int(psql(pg_url, "SELECT count(*) FROM runs WHERE dag_id = 'one' "
                                     "AND state = 'running'")))

    runs = wait_all_ended(b, "one", nruns, ds, sample, timeout=90)
    assert all(r["state"] == "success" for r in runs), runs
    ev = read_stamps(stamps)
    # A run's span: its first start to its last end; no two spans overlap.
    span = {}
    for ns, kind, run_id, _, _ in ev:
        lo, hi = span.get(run_id, (ns, ns))
        span[run_id] = (min(lo, ns), max(hi, ns))
    assert len(span) == nruns
    order = sorted(span.values())
    for (a0, a1), (b0, b1) in zip(order, order[1:]):
        assert b0 > a1, "two runs of 'one' at once: %s" % order
    assert max(seen) <= 1, seen
    assert len({e[4] for e in ev}) == 3, ev  # run by every scheduler
    for d in ds:
        assert d.stop() == 0
        assert "40P01" not in d.log()


# A pooled task that holds its slot until the file `release` exists; killed (SIGTERM), it
# stamps its end too.
HOLD = ('echo "$(date +%s%N) s $BARAM_RUN_ID $BARAM_TASK $PPID" >> {f}; '
        'trap \'echo "$(date +%s%N) e $BARAM_RUN_ID $BARAM_TASK $PPID" >> {f}; exit 143\' TERM; '
        'while [ ! -f {rel} ]; do sleep 0.05; done; '
        'echo "$(date +%s%N) e $BARAM_RUN_ID $BARAM_TASK $PPID" >> {f}')


def hold_setup(tmp_path, pg_url, daemons, env=None, retries=1):
    """Two schedulers, a pool of 1 slot, two runs of DAG 'hold' (one task holding the slot
    until tmp_path/release exists), one run each: the first start's (run, scheduler pid)
    and the stamps file, the schedulers' Barams and daemons."""
    stamps, rel = tmp_path / "stamps", tmp_path / "release"
    bs = homes(tmp_path, pg_url, 2)
    for b in bs:
        b.env.update(env or {})
    b = bs[0]
    assert b("pools", "set", "p1", "1").rc == 0
    b.write("hold.yaml", "dag: hold\nmax_active_runs: 4\ntasks:\n  h:\n    run: %s\n"
            "    pool: p1\n    retries: %d\n" % (json.dumps(HOLD.format(f=stamps, rel=rel)), retries))
    assert b("dags", "pause", "hold").rc == 0
    ds = start_all(daemons, bs)
    trigger_spread(b, pg_url, "hold", 2, 2)
    assert poll(lambda: stamps.exists() and stamps.read_text().strip(), 15), "nothing started"
    first = read_stamps(stamps)[0]
    time.sleep(0.5)  # the other run's try waits: the slot is taken
    assert len(read_stamps(stamps)) == 1, read_stamps(stamps)
    assert psql(pg_url, "SELECT count(*) FROM ti_queue WHERE pool = 'p1' "
                        "AND state IN ('queued', 'running')") == "1"
    return first, stamps, rel, bs, ds


def test_cancel_gives_the_slot_to_another_scheduler(tmp_path, pg_url, daemons):
    """The run holding the only slot is cancelled: the other scheduler's waiting try gets the
    slot (the pool is never over its size), and at the end no slot is left taken."""
    (_, _, run_id, _, pid), stamps, rel, bs, ds = hold_setup(tmp_path, pg_url, daemons)
    assert bs[0]("runs", "cancel", run_id).rc == 0
    assert poll(lambda: len(read_stamps(stamps)) >= 3, 15), (read_stamps(stamps), [d.log()[-3000:] for d in ds])
    ev = read_stamps(stamps)
    second = [e for e in ev if e[1] == "s" and e[2] != run_id]
    assert second, ev
    owner = "SELECT sched_id FROM runs WHERE run_id = '%s'"
    assert psql(pg_url, owner % second[0][2]) != psql(pg_url, owner % run_id)  # the other's
    rel.write_text("")
    runs = wait_all_ended(bs[0], "hold", 2, ds, lambda: None, timeout=30)
    states = {r["run_id"]: r["state"] for r in runs}
    assert states[run_id] == "cancelled", states
    assert [s for k, s in states.items() if k != run_id] == ["success"], states
    assert max_overlap(read_stamps(stamps)) <= 1, read_stamps(stamps)
    assert psql(pg_url, "SELECT count(*) FROM ti_queue") == "0"


def test_killed_scheduler_keeps_its_slot_until_its_try_ends(tmp_path, pg_url, daemons):
    """kill -9 of the scheduler whose try holds the only slot: the try goes on on its worker;
    once the scheduler is declared dead (scheduler.dead_after 3s) the other takes the run over
    and adopts the try. Its row keeps the slot until the try ends (the pool is never over its
    size), then the other run's try gets it; both runs succeed, the held try ran once, and
    no slot stays taken."""
    env = {"BARAM_SCHEDULER_HEARTBEAT": "1s", "BARAM_SCHEDULER_DEAD_AFTER": "3s"}
    (_, _, run_id, _, _), stamps, rel, bs, ds = hold_setup(tmp_path, pg_url, daemons, env, 0)
    owner = psql(pg_url, "SELECT w.pid FROM runs r JOIN workers w ON w.id = r.sched_id "
                         "WHERE r.run_id = '%s'" % run_id)
    victim = next(d for d in ds if str(d.pid) == owner)
    survivors = [d for d in ds if d is not victim]
    dead = psql(pg_url, "SELECT id FROM workers WHERE pid = %d AND role = 'scheduler'"
                % victim.pid)
    victim.kill9()
    assert poll(lambda: psql(pg_url, "SELECT sched_id FROM runs WHERE run_id = '%s'" % run_id)
                != dead, 3 + 5), survivors[0].log()[-3000:]
    time.sleep(1.0)
    assert len(read_stamps(stamps)) == 1, read_stamps(stamps)  # the slot is still held
    assert psql(pg_url, "SELECT count(*) FROM ti_queue WHERE pool = 'p1' "
                        "AND state = 'running'") == "1"
    rel.write_text("")
    runs = wait_all_ended(bs[0], "hold", 2, survivors, lambda: None, timeout=40)
    states = {r["run_id"]: r["state"] for r in runs}
    assert list(states.values()) == ["success", "success"], runs
    ev = read_stamps(stamps)
    assert [e[2] for e in ev if e[1] == "s"].count(run_id) == 1, ev
    assert max_overlap(ev) <= 1, ev
    assert psql(pg_url, "SELECT count(*) FROM ti_queue") == "0"
    for d in survivors:
        assert d.stop() == 0


def test_pool_limited_while_its_tries_run(tmp_path, pg_url, daemons):
    """`pools set` on a pool whose tries already run: they take their slots in the database at
    once, so a try that becomes ready afterwards waits until the pool is below its size."""
    stamps, rel = tmp_path / "stamps", tmp_path / "release"
    (b,) = homes(tmp_path, pg_url, 1)
    for dag in ("late1", "late2"):
        b.write(dag + ".yaml", "dag: %s\ntasks:\n" % dag + "".join(
            "  h%d:\n    run: %s\n    pool: late\n" % (i, json.dumps(HOLD.format(f=stamps, rel=rel)))
            for i in range(3)))
    (d,) = start_all(daemons, [b])
    assert b("dags", "trigger", "late1").rc == 0
    assert poll(lambda: stamps.exists() and len(read_stamps(stamps)) == 3, 15)
    assert b("pools", "set", "late", "2").rc == 0
    in_flight = "SELECT count(*) FROM ti_queue WHERE pool = 'late' AND state = 'running'"
    assert poll(lambda: psql(pg_url, in_flight) == "3", 10), d.log()[-3000:]
    r = b("dags", "trigger", "late2", "--json")
    assert r.rc == 0, r
    late2 = r.json["run_id"]
    time.sleep(1.0)
    assert len(read_stamps(stamps)) == 3, read_stamps(stamps)  # 3 in flight, 2 slots
    rel.write_text("")
    wait_all_ended(b, "late2", 1, [d], lambda: None, timeout=30)
    cur = 0
    for _, kind, run_id, _, _ in sorted(read_stamps(stamps), key=lambda x: (x[0], x[1] != "e")):
        cur += 1 if kind == "s" else -1
        if kind == "s" and run_id != late2:
            continue
        assert cur <= 2, read_stamps(stamps)
    assert psql(pg_url, "SELECT count(*) FROM ti_queue") == "0"
    assert d.stop() == 0


def test_withdrawn_want_frees_its_slot_after_a_lost_round_answer(tmp_path, pg_url, daemons):
    """A round that committed but whose answer was lost (FP_ADMIT_ANSWER_LOST: every round
    carrying a want loses its answer) leaves the want's row in ti_queue; cancelling the run
    must still delete it, or the pool's slot stays taken while the scheduler lives."""
    (b,) = homes(tmp_path, pg_url, 1)
    b.env["BARAM_FAULT"] = "FP_ADMIT_ANSWER_LOST"
    assert b("pools", "set", "p1", "1").rc == 0
    b.write("lost.yaml", "dag: lost\ntasks:\n  h:\n    run: 'true'\n    pool: p1\n")
    (d,) = start_all(daemons, [b])
    r = b("dags", "trigger", "lost", "--json")
    assert r.rc == 0, r
    run_id = r.json["run_id"]
    rows = "SELECT count(*) FROM ti_queue WHERE run_id = '%s'" % run_id
    assert poll(lambda: psql(pg_url, rows) == "1", 15), d.log()[-3000:]
    assert poll(lambda: "pool admission failed" in d.log(), 10), d.log()[-3000:]
    assert b("runs", "cancel", run_id).rc == 0
    assert poll(lambda: [x["state"] for x in runs_list(b) if x["run_id"] == run_id]
                == ["cancelled"], 15), d.log()[-3000:]
    assert poll(lambda: psql(pg_url, rows) == "0", 5), (psql(
        pg_url, "SELECT * FROM ti_queue"), d.log()[-3000:])
    d.assert_alive()


def test_held_queued_runs_are_offered_in_one_round_per_sync(tmp_path, pg_url, daemons):
    """max_active_runs 8 filled by one scheduler's runs; the other's 8 queued runs of the DAG
    are held. Each sync offers them together (one queue_start_runs statement), not one
    transaction per run: counted by a statement trigger on runs over a quiet window."""
    stamps, rel = tmp_path / "stamps", tmp_path / "release"
    bs = homes(tmp_path, pg_url, 2)
    b = bs[0]
    b.write("full.yaml", "dag: full\nmax_active_runs: 8\ntasks:\n  h:\n    run: %s\n"
            % json.dumps(HOLD.format(f=stamps, rel=rel)))
    assert b("dags", "pause", "full").rc == 0
    psql(pg_url, "CREATE TABLE offers (at timestamptz NOT NULL DEFAULT clock_timestamp());"
                 "CREATE FUNCTION count_offer() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                 "IF current_query() LIKE '%unnest($1::text[], $2::text[], $3::int[])%' THEN "
                 "INSERT INTO offers DEFAULT VALUES; END IF; RETURN NULL; END $$;"
                 "CREATE TRIGGER count_offer AFTER UPDATE ON runs FOR EACH STATEMENT "
                 "EXECUTE FUNCTION count_offer();")
    ds = start_all(daemons, bs)
    for _ in range(16):
        assert b("dags", "trigger", "full").rc == 0
    assert poll(lambda: psql(pg_url, "SELECT count(*) FROM runs WHERE sched_id IS NOT NULL")
                == "16", 10)
    ids = psql(pg_url, "SELECT id FROM workers WHERE role = 'scheduler' AND state = 'active' "
                       "ORDER BY id").split()
    # 8 runs each; whichever scheduler starts them, 8 run and 8 are held
    psql(pg_url, "UPDATE runs r SET sched_id = CASE WHEN k.n <= 8 THEN %s ELSE %s END FROM "
                 "(SELECT run_id, row_number() OVER (ORDER BY run_id) AS n FROM runs) k "
                 "WHERE r.run_id = k.run_id" % (ids[0], ids[1]))
    assert b("dags", "unpause", "full").rc == 0
    assert poll(lambda: stamps.exists() and len(read_stamps(stamps)) == 8, 20), \
        [d.log()[-2000:] for d in ds]
    time.sleep(1)
    before = int(psql(pg_url, "SELECT count(*) FROM offers"))
    time.sleep(6)
    n = int(psql(pg_url, "SELECT count(*) FROM offers")) - before
    assert psql(pg_url, "SELECT count(*) FROM runs WHERE state = 'running'") == "8"
    # a sync every 2 s: about 3 offers in 6 s; one per run would be 8 a sync
    print("offers in 6 s: %d" % n)
    assert 1 <= n <= 8, n
    rel.write_text("")
    runs = wait_all_ended(b, "full", 16, ds, lambda: None, timeout=60)
    assert all(r["state"] == "success" for r in runs), runs
