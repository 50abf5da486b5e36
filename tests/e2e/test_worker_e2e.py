"""`baram worker` end to end (SPEC section 12, issue 12): real PostgreSQL, a real `baram
scheduler` and real worker processes, several on this machine standing in for several hosts
(worker_util.Fleet: homes on one database, one DAG folder at the same path).

Timings are short (worker heartbeat 500ms, dead_after 3s) except in the test of a long task
with the defaults. Tasks stamp their start and end (task, try, BARAM_WORKER, pid, ms) into a
file, so a test counts what really ran where, and reads the store with psql.

Cases: queues (a task of a queue no worker listens on stays queued and says so, then runs once
a worker of that queue comes); kill -9 of a worker (its tries retried on another within
dead_after + 5 s; with no tries left the run fails with `worker NAME lost`); a worker
restarted under its name kills its predecessor's orphans, never another's; SIGSTOP past
dead_after then SIGCONT (it kills its tries, its late result is refused, it re-registers);
pg_terminate_backend of a worker's LISTEN connection (it listens again at once, and is woken
by notifications); PostgreSQL restarted mid-run; a 2-minute task with the default timings is
never rescued; SIGTERM drain (and a drain whose grace runs out: the try is given back); a
worker on a second home runs the tasks in the DAG folder and its logs are read after it is
gone, from another home (the store keeps the tail beyond logs.store_max); a running try's log
served by its worker; `workers list` of a worker; `baram worker` on SQLite. The 2,000-task
chaos run is in test_worker_chaos.py.
"""

import json
import shutil
import signal
import time

import pytest

from api_util import ApiServer, token
from conftest import Baram
from daemon_util import daemons, poll, run_show, wait_run  # noqa: F401 (daemons: a fixture)
from worker_util import Fleet, pid_alive, wait_until, workers  # noqa: F401 (workers: a fixture)

DEAD_AFTER = 3.0


def tries_rows(f, run_id, task_id):
    """[(try_number, state)] of the tries table."""
    return [tuple(r) for r in f.db("SELECT try_number, state FROM tries WHERE run_id = ? AND "
                                   "task_id = ? ORDER BY try_number", run_id, task_id)]


# ---- SQLite -------------------------------------------------------------------------------


def test_worker_on_sqlite_says_standalone_runs_the_tasks(tmp_path):
    b = Baram(tmp_path / "home", tmp_path)
    b.env.pop("BARAM_DB", None)
    r = b("worker", "--name", "w")
    assert r.rc == 2, r
    assert ("baram worker needs a PostgreSQL database (db: postgresql://...): on SQLite "
            "`baram standalone` runs the tasks") in r.err, r


# ---- queues -------------------------------------------------------------------------------

QUEUES_DAG = """\
dag: q
tasks:
  cpu:
    run: 'STAMP_S'
  train:
    queue: gpu
    run: 'STAMP_S'
"""


@pytest.mark.pg_only
def test_queue_task_runs_only_on_a_worker_of_its_queue(workers):
    f = workers
    f.write("q.yaml", QUEUES_DAG)
    f.scheduler()
    w1 = f.worker("cpu1", slots=2)  # queue default
    run_id = f.trigger("q")
    wait_until(lambda: f.ti(run_id, "cpu") and f.ti(run_id, "cpu")[0] == "success", 15,
               "cpu done")
    # no worker listens on gpu: the instance stays queued, and says so
    time.sleep(1.5)  # the 1 s claim backstop of w1 has run at least once
    assert f.ti(run_id, "train")[0] == "queued", f.ti(run_id, "train")
    assert f.stamped(task="train") == []
    note = "no active worker listens on queue 'gpu'"
    show = f.b("runs", "show", run_id)
    assert show.rc == 0, show
    line = [ln for ln in show.out.splitlines() if "train" in ln]
    assert line and "queued" in line[0] and note in show.out, show.out
    api = ApiServer(f.b, f.tmp / "api.log").start()
    try:
        tok = token(f.b)
        r = api.get("/api/v1/dags/q/runs/%s/tasks/train" % run_id, token=tok)
        assert r.status == 200, r
        assert r.json["state"] == "queued" and r.json.get("note") == note, r.json
        r = api.get("/api/v1/dags/q/runs/%s/tasks/cpu" % run_id, token=tok)
        assert r.status == 200 and r.json.get("note") is None, r.json
    finally:
        api.stop()
    # a gpu worker comes: the instance runs there
    w2 = f.worker("gpu1", queues="gpu", slots=1)
    o = wait_run(f.b, run_id, timeout=20)
    assert o["state"] == "success", o
    (cpu,) = f.stamped(task="cpu")
    (train,) = f.stamped(task="train")
    assert cpu[3] == w1.name and train[3] == w2.name, f.stamped()
    show = f.b("runs", "show", run_id)
    assert note not in show.out, show.out
    assert w1.alive() and w2.alive()


@pytest.mark.pg_only
def test_a_try_shows_the_worker_that_ran_it(workers):
    # runs show, the API's task instance and try objects and runs show --json name the worker
    f = workers
    f.write("who.yaml", "dag: who\ntasks:\n  t:\n    retries: 1\n"
                        "    run: 'STAMP_S; [ \"$BARAM_TRY\" = 2 ]'\n")
    f.scheduler()
    w = f.worker("runner", slots=1)
    run_id = f.trigger("who")
    o = wait_run(f.b, run_id, timeout=20)
    assert o["state"] == "success", o
    assert o["tasks"]["t"].get("worker") == w.name, o
    assert f.db("SELECT try_number, worker FROM tries WHERE run_id = ? ORDER BY try_number",
                run_id) == [(1, w.name), (2, w.name)]
    show = f.b("runs", "show", run_id)
    assert show.rc == 0, show
    head = [ln for ln in show.out.splitlines() if ln.startswith("TASK")]
    line = [ln for ln in show.out.splitlines() if ln.startswith("t ")]
    assert head and "WORKER" in head[0].split(), show.out
    assert line and w.name in line[0].split(), show.out
    api = ApiServer(f.b, f.tmp / "api.log").start()
    try:
        tok = token(f.b)
        r = api.get("/api/v1/dags/who/runs/%s/tasks/t" % run_id, token=tok)
        assert r.status == 200, r
        assert r.json["worker"] == w.name, r.json
        assert [(t["try_number"], t["worker"]) for t in r.json["tries"]] == [
            (1, w.name), (2, w.name)], r.json
        r = api.get("/api/v1/dags/who/runs/%s/tasks" % run_id, token=tok)
        assert r.status == 200, r
        tis = r.json if isinstance(r.json, list) else r.json.get("tasks", r.json.get("items"))
        assert [t["worker"] for t in tis] == [w.name], r.json
    finally:
        api.stop()


# ---- kill -9 ------------------------------------------------------------------------------

RESCUE_DAG = """\
dag: rescue
tasks:
"""


def rescue_dag(n, sleep, retries):
    text = RESCUE_DAG
    for i in range(n):
        text += "  t%d:\n    retries: %d\n    run: 'STAMP_S; sleep %s; STAMP_E'\n" % (
            i, retries, sleep)
    return text


@pytest.mark.pg_only
def test_kill9_worker_tries_retried_elsewhere(workers):
    f = workers
    f.write("rescue.yaml", rescue_dag(3, 4, 1))
    f.scheduler()
    w1 = f.worker("a", slots=3)
    run_id = f.trigger("rescue")
    wait_until(lambda: len(f.stamped("s")) == 3, 15, "3 tries started on a")
    assert {s[3] for s in f.stamped("s")} == {w1.name}
    w2 = f.worker("b", slots=3)
    w1.kill9()
    t_kill = time.monotonic()
    # each try is started again, on b, within dead_after + 5 s
    wait_until(lambda: len([s for s in f.stamped("s") if s[3] == w2.name]) == 3,
               DEAD_AFTER + 5, "the 3 tries retried on b")
    took = time.monotonic() - t_kill
    retried = [s for s in f.stamped("s") if s[3] == w2.name]
    assert sorted((s[1], s[2]) for s in retried) == [("t0", 2), ("t1", 2), ("t2", 2)], retried
    o = wait_run(f.b, run_id, timeout=20)
    assert o["state"] == "success", o
    for t in ("t0", "t1", "t2"):
        assert tries_rows(f, run_id, t) == [(1, "failed"), (2, "success")], tries_rows(f, run_id, t)
    reg = {(x["name"], x["pid"]): x for x in f.registry()}
    assert reg[(w1.name, w1.pid)]["state"] == "dead", reg
    assert reg[(w2.name, w2.pid)]["state"] == "active", reg
    assert reg[(w1.name, w1.pid)]["role"] == "worker", reg
    print("kill -9 -> retried on another worker: %.2fs" % took)


@pytest.mark.pg_only
def test_kill9_worker_with_no_tries_left_fails_the_run(workers):
    f = workers
    f.write("rescue.yaml", rescue_dag(1, 30, 0))
    f.scheduler()
    w1 = f.worker("a", slots=1)
    run_id = f.trigger("rescue")
    wait_until(lambda: f.stamped("s"), 15, "the try started")
    w1.kill9()
    o = wait_run(f.b, run_id, timeout=DEAD_AFTER + 10)
    assert o["state"] == "failed", o
    t = o["tasks"]["t0"]
    assert t["state"] == "failed" and t["tries"] == 1, t
    assert t.get("message") == "worker %s lost" % w1.name, t
    assert tries_rows(f, run_id, "t0") == [(1, "failed")]
    assert f.db("SELECT count(*) FROM ti_queue") == [(0,)]


@pytest.mark.pg_only
def test_restarted_worker_kills_its_orphans_never_anothers(workers):
    f = workers
    f.write("orph.yaml", "dag: orph\ntasks:\n"
                         "  x: {run: 'STAMP_S; sleep 60'}\n  y: {run: 'STAMP_S; sleep 60'}\n")
    f.scheduler()
    a = f.worker("orphaner", slots=1)
    b = f.worker("bystander", slots=1)
    f.trigger("orph")
    wait_until(lambda: len(f.stamped("s")) == 2, 15, "x and y started")
    by = {s[3]: s[4] for s in f.stamped("s")}
    assert set(by) == {a.name, b.name}, f.stamped()
    a.kill9()
    assert pid_alive(by[a.name]), "the try outlives its worker's kill -9"
    f.restart(a)
    wait_until(lambda: not pid_alive(by[a.name]), 10, "the orphan of %s killed" % a.name)
    time.sleep(1.0)
    assert pid_alive(by[b.name]), "another worker's try was killed"
    assert b.running(), b.row()


def twins_running(f):
    """Two workers of one name on homes h0 and h1 of one database, each running a try of its
    own: (worker on h0, worker on h1, {absolute home: pid of its try})."""
    f.write("twins.yaml", "dag: twins\ntasks:\n"
                          "  x: {run: 'STAMP_S; sleep 60'}\n  y: {run: 'STAMP_S; sleep 60'}\n")
    f.scheduler()
    a = f.worker("twin", slots=1, home=0)
    b = f.worker("twin", slots=1, home=1)
    assert a.name == b.name
    f.trigger("twins")
    wait_until(lambda: len(f.stamped("s")) == 2, 15, "x and y started")
    by = {}
    for pid in {s[4] for s in f.stamped("s")}:
        env = open("/proc/%d/environ" % pid, "rb").read().split(b"\0")
        home = [v for v in env if v.startswith(b"BARAM_WORKER_HOME=")]
        assert len(home) == 1, env
        by[home[0].split(b"=", 1)[1].decode()] = pid
    assert set(by) == {str(a.b.home.resolve()), str(b.b.home.resolve())}, by
    return a, b, by


@pytest.mark.pg_only
def test_restarted_worker_spares_a_namesake_of_another_home(workers):
    # two fleets on one host may give a worker the same name: the orphans a worker kills at
    # start are those of its name AND its home
    f = workers
    a, b, by = twins_running(f)
    ha, hb = str(a.b.home.resolve()), str(b.b.home.resolve())
    a.kill9()
    assert pid_alive(by[ha]), "the try outlives its worker's kill -9"
    f.restart(a)
    wait_until(lambda: not pid_alive(by[ha]), 10, "the orphan of %s on %s killed" % (a.name, ha))
    time.sleep(1.0)
    assert pid_alive(by[hb]), "the try of the namesake on another home was killed"
    assert b.running(), b.row()


@pytest.mark.pg_only
def test_scheduler_start_spares_a_namesake_of_a_gone_worker(tmp_path, pg_url, daemons):
    # a scheduler starting on this host kills what a gone worker of this host left: only the
    # tries of its name AND home (default timings: no sweep declares it dead first)
    f = Fleet(tmp_path, pg_url, daemons, short=False)
    try:
        a, b, by = twins_running(f)
        ha, hb = str(a.b.home.resolve()), str(b.b.home.resolve())
        assert f.db("SELECT home FROM workers WHERE role = 'worker' AND pid = ?", a.pid) == [
            (ha,)]
        a.kill9()
        d = f.scheduler(1)
        wait_until(lambda: "worker of this host gone: declared dead" in d.log(), 15,
                   "the gone worker declared dead")
        wait_until(lambda: not pid_alive(by[ha]), 10, "the orphan of %s on %s killed" % (
            a.name, ha))
        time.sleep(1.0)
        assert pid_alive(by[hb]), "the try of the namesake on another home was killed"
        assert b.running(), b.row()
    finally:
        f.cleanup()


# ---- SIGSTOP past dead_after, then SIGCONT -------------------------------------------------

FROZEN_DAG = """\
dag: frozen
tasks:
  long:
    retries: 1
    run: 'STAMP_S; if [ "$BARAM_TRY" = 1 ]; then sleep 60; fi; STAMP_E'
"""


@pytest.mark.pg_only
def test_sigstop_worker_is_fenced_and_reregisters(workers):
    f = workers
    f.write("frozen.yaml", FROZEN_DAG)
    f.scheduler()
    w1 = f.worker("frozen", slots=1)
    run_id = f.trigger("frozen")
    (first,) = wait_until(lambda: f.stamped("s"), 15, "try 1 started")
    assert first[2] == 1 and first[3] == w1.name
    child = first[4]
    (old_id, _, _, _, _) = w1.row()
    w2 = f.worker("rescuer", slots=1)
    w1.send(signal.SIGSTOP)
    try:
        # declared dead, its try lost and retried on the rescuer, which succeeds
        o = wait_run(f.b, run_id, timeout=DEAD_AFTER + 15)
        assert o["state"] == "success", o
        assert w1.state() == "dead"
        assert pid_alive(child), "try 1 went before the worker could see it"
    finally:
        w1.send(signal.SIGCONT)
    # the worker learns it is dead: it kills its try ...
    wait_until(lambda: not pid_alive(child), 10, "try 1's process killed by its worker")
    # ... and registers again under its name (a new row), alive
    wait_until(lambda: [r for r in w1.rows() if r[0] != old_id and r[2] == "active"], 10,
               "a new registration of %s" % w1.name)
    assert w1.alive()
    # its late result was refused: try 1 stays the lost one, the instance the rescue's success
    time.sleep(1.0)
    assert f.ti(run_id, "long")[:2] == ("success", 2), f.ti(run_id, "long")
    assert tries_rows(f, run_id, "long") == [(1, "failed"), (2, "success")]
    assert f.db("SELECT count(*) FROM try_results") == [(0,)]
    assert [s[3] for s in f.stamped("e")] == [w2.name], f.stamped()
    o = run_show(f.b, run_id)
    assert o["state"] == "success" and o["tasks"]["long"]["tries"] == 2, o


# ---- the LISTEN connection cut ----------------------------------------------------------

PICK_DAG = """\
dag: pick
tasks:
  one:
    run: 'STAMP_S'
"""


def worker_listen_backends(f):
    """pids of the backends LISTENing on the workers' channels."""
    rows = f.db("SELECT pid, query FROM pg_stat_activity WHERE datname = current_database() "
                "AND query ILIKE 'LISTEN%'")
    return [r[0] for r in rows if "baram_queued" in r[1] or "baram_worker_" in r[1]]


def pickup_ms(f, run_id, task="one"):
    """A task instance queued -> its process started (ms, the store's and the stamp's clocks
    are this machine's)."""
    (queued_ms,) = f.db("SELECT queued_at FROM task_instances WHERE run_id = ? AND "
                        "task_id = ?", run_id, task)[0]
    (start,) = [s for s in f.stamped("s", task) if s[5] >= queued_ms] or [None]
    assert start, (run_id, f.stamped())
    return start[5] - queued_ms


@pytest.mark.pg_only
def test_worker_listen_connection_terminated_next_task_within_1s(workers):
    f = workers
    f.write("pick.yaml", PICK_DAG)
    f.scheduler()
    w = f.worker("listener", slots=2)
    (pid,) = wait_until(lambda: worker_listen_backends(f), 10, "the worker LISTENs")
    f.db("SELECT pg_terminate_backend(?)", pid)
    # the next task is picked up within 1 s, whatever the worker knows of its connection yet
    run_id = f.trigger("pick")
    assert wait_run(f.b, run_id, timeout=15)["state"] == "success"
    took = [pickup_ms(f, run_id)]
    assert took[0] < 1000, took
    # it listens again, on a new connection, at once (not at its next check, 10 s on)
    assert poll(lambda: [p for p in worker_listen_backends(f) if p != pid], 3), (
        "no new LISTEN connection within 3 s", pid, w.log(),
        f.db("SELECT pid, query FROM pg_stat_activity WHERE datname = current_database()"))
    # and is woken by notifications again: pickups in milliseconds (8-25 ms here), not by
    # its polls (100-400 ms here): 4 of 5 below 100 ms by polling alone is 1 chance in 150
    for i in range(5):
        f.stamps.write_text("")
        run_id = f.trigger("pick")
        assert wait_run(f.b, run_id, timeout=15)["state"] == "success"
        took.append(pickup_ms(f, run_id))
    assert max(took) < 1000 and len([t for t in took[1:] if t < 100]) >= 4, (took, w.log())


# ---- PostgreSQL restarted mid-run -------------------------------------------------------


@pytest.mark.pg_only
def test_postgres_restart_mid_run(tmp_path, pg_private, daemons):
    url = pg_private.url(pg_private.create_db())
    f = Fleet(tmp_path, url, daemons)
    try:
        text = "dag: chain\ntasks:\n"
        for i in range(12):
            text += "  c%d:\n    run: 'STAMP_S; sleep 0.5'\n" % i
            if i:
                text += "    needs: [c%d]\n" % (i - 1)
        f.write("chain.yaml", text)
        s = f.scheduler()
        ws = [f.worker("r%d" % i, slots=2) for i in range(2)]
        run_id = f.trigger("chain")
        wait_until(lambda: len(f.stamped("s")) >= 3, 20, "3 tasks started")
        pg_private.restart()
        o = wait_run(f.b, run_id, timeout=60)
        assert o["state"] == "success", (o, s.log(), ws[0].log())
        assert len(f.stamped("s")) >= 12
        s.assert_alive()
        for w in ws:
            w.assert_alive()
            wait_until(lambda: w.state() == "active", 10, "%s active" % w.name)
        # still working after the restart
        run2 = f.trigger("chain")
        assert wait_run(f.b, run2, timeout=60)["state"] == "success"
    finally:
        f.cleanup()


# ---- a long task on a live worker, default timings ------------------------------------


@pytest.mark.pg_only
@pytest.mark.timeout(300)
def test_two_minute_task_on_a_live_worker_is_never_rescued(tmp_path, pg_url, daemons):
    f = Fleet(tmp_path, pg_url, daemons, short=False)  # heartbeat 5s, dead_after 20s
    try:
        f.write("long.yaml", "dag: long\ntasks:\n  t:\n    retries: 2\n"
                             "    run: 'STAMP_S; sleep 120; STAMP_E'\n")
        f.scheduler()
        w1 = f.worker("steady", slots=1)
        w2 = f.worker("idle", slots=1)
        run_id = f.trigger("long")
        o = wait_run(f.b, run_id, timeout=170)
        assert o["state"] == "success", o
        assert o["tasks"]["t"]["tries"] == 1, o
        assert tries_rows(f, run_id, "t") == [(1, "success")]
        assert [(s[0], s[2]) for s in f.stamped()] == [("s", 1), ("e", 1)], f.stamped()
        assert {s[3] for s in f.stamped()} <= {w1.name, w2.name}
        assert w1.state() == "active" and w2.state() == "active"
    finally:
        f.cleanup()


# ---- SIGTERM drain ----------------------------------------------------------------------

@pytest.mark.pg_only
def test_sigterm_drain_finishes_the_running_try_and_claims_nothing(workers):
    f = workers
    f.write("d1.yaml", "dag: d1\ntasks:\n  first:\n    run: 'STAMP_S; sleep 3; STAMP_E'\n")
    f.write("d2.yaml", "dag: d2\ntasks:\n  second:\n    run: 'STAMP_S; STAMP_E'\n")
    f.scheduler()
    w1 = f.worker("drainer", "--grace", "20s", slots=4)
    r1 = f.trigger("d1")
    wait_until(lambda: f.stamped("s", "first"), 15, "first started")
    w1.send(signal.SIGTERM)
    w1.wait_state("draining", 5)
    r2 = f.trigger("d2")
    rc = w1.wait_exit(25)
    assert rc == 0, w1.log()
    assert w1.state() == "stopped"
    assert wait_run(f.b, r1, timeout=10)["state"] == "success"
    assert [s[3] for s in f.stamped("e", "first")] == [w1.name]
    # nothing new was claimed while it drained
    assert f.stamped(task="second") == []
    assert f.ti(r2, "second")[0] == "queued", f.ti(r2, "second")
    w2 = f.worker("after", slots=1)
    assert wait_run(f.b, r2, timeout=15)["state"] == "success"
    assert [s[3] for s in f.stamped("s", "second")] == [w2.name]


@pytest.mark.pg_only
def test_sigterm_drain_kills_what_outlives_the_grace_and_gives_it_back(workers):
    """Past --grace the try is killed; not the task's failure, it gets a try more (as a try a
    scheduler's shutdown stops), which another worker runs."""
    f = workers
    f.write("d.yaml", "dag: d\ntasks:\n  slow:\n"
                      "    run: 'STAMP_S; if [ \"$BARAM_TRY\" = 1 ]; then sleep 60; fi; STAMP_E'\n")
    f.scheduler()
    w1 = f.worker("brief", "--grace", "1s", slots=1)
    run_id = f.trigger("d")
    (s,) = wait_until(lambda: f.stamped("s", "slow"), 15, "slow started")
    t = time.monotonic()
    w1.send(signal.SIGTERM)
    assert w1.wait_exit(15) == 0, w1.log()
    assert time.monotonic() - t < 10
    assert not pid_alive(s[4])
    assert w1.state() == "stopped"
    assert f.stamped("e") == []
    wait_until(lambda: f.ti(run_id, "slow")[:2] == ("queued", 2), 10, "try 2 queued")
    assert "worker %s shut down" % w1.name in f.ti(run_id, "slow")[2], f.ti(run_id, "slow")
    w2 = f.worker("next", slots=1)
    o = wait_run(f.b, run_id, timeout=15)
    assert o["state"] == "success" and o["tasks"]["slow"]["tries"] == 2, o
    assert [(x[2], x[3]) for x in f.stamped("e")] == [(2, w2.name)], f.stamped()
    assert f.db("SELECT count(*) FROM ti_queue") == [(0,)]


# ---- logs and a second home -------------------------------------------------------------


@pytest.mark.pg_only
def test_second_home_worker_runs_tasks_and_logs_outlive_it(workers):
    f = workers
    (f.dags / "data.txt").write_text("from the dag folder\n")
    f.write("lg.yaml", "dag: lg\ntasks:\n  hello:\n"
                       "    run: 'cat data.txt; echo \"hello from $BARAM_WORKER\"'\n")
    f.scheduler()
    w = f.worker("remote", home=1, slots=1)  # home h1: a stand-in for another host
    run_id = f.trigger("lg")
    o = wait_run(f.b, run_id, timeout=15)
    assert o["state"] == "success", o
    # the worker wrote the log in ITS home, same layout as the scheduler's
    log1 = f.home(1).home / "logs" / "lg" / run_id / "hello.1.log"
    assert log1.read_text() == "from the dag folder\nhello from %s\n" % w.name
    assert not (f.home(0).home / "logs" / "lg" / run_id / "hello.1.log").exists()
    assert w.stop() == 0
    log1.unlink()
    # read from h0 (another host), the worker gone: the log kept in the store
    r = f.b("logs", run_id, "hello")
    assert r.rc == 0, r
    assert r.out == "from the dag folder\nhello from %s\n" % w.name, r
    api = ApiServer(f.b, f.tmp / "api.log").start()
    try:
        r = api.get("/api/v1/dags/lg/runs/%s/tasks/hello/logs" % run_id, token=token(f.b))
        assert r.status == 200 and "hello from %s" % w.name in r.text, r
    finally:
        api.stop()


@pytest.mark.pg_only
def test_stored_log_keeps_the_tail_beyond_store_max(tmp_path, pg_url, daemons):
    f = Fleet(tmp_path, pg_url, daemons, extra_yaml="logs: {store_max: 1KiB}\n")
    try:
        f.write("big.yaml", "dag: big\ntasks:\n  big:\n"
                            "    run: 'for i in $(seq 1 500); do echo line$i; done'\n")
        f.scheduler()
        w = f.worker("big", home=1, slots=1)
        run_id = f.trigger("big")
        assert wait_run(f.b, run_id, timeout=15)["state"] == "success"
        full = "".join("line%d\n" % i for i in range(1, 501))
        assert w.stop() == 0
        r = f.b("logs", run_id, "big")
        assert r.rc == 0, r
        cut = len(full) - 1024
        head = "[baram: log cut: the first %d bytes are not kept]\n" % cut
        assert r.out == head + full[cut:], r.out[:300]
    finally:
        f.cleanup()


@pytest.mark.pg_only
def test_running_try_log_served_by_its_worker(workers):
    f = workers
    from api_util import free_port
    f.write("live.yaml", "dag: live\ntasks:\n  t:\n"
                         "    run: 'echo first line; STAMP_S; sleep 30'\n")
    f.scheduler()
    # another host shares the signing key (SPEC section 12), so the tokens hold there too
    shutil.copy(f.home(0).home / "secret.key", f.home(1).home / "secret.key")
    port = free_port()
    w = f.worker("live", "--listen", "127.0.0.1:%d" % port, home=1, slots=1)
    assert w.row()[4] == "http://127.0.0.1:%d" % port, w.row()
    run_id = f.trigger("live")
    wait_until(lambda: f.stamped("s"), 15, "t started")
    # h0 has no file and the store no log yet: the worker serves it
    r = f.b("logs", run_id, "t")
    assert r.rc == 0 and r.out == "first line\n", r
    # with a token only; any valid token of the home's key
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/logs/%s/t/1" % run_id)
    assert c.getresponse().status == 401
    c.close()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/logs/%s/t/1?offset=6" % run_id,
              headers={"Authorization": "Bearer " + token(f.b)})
    resp = c.getresponse()
    assert resp.status == 200 and resp.read() == b"line\n"
    c.close()
    # the worker gone: no file, no stored log, nobody to ask
    w.kill9()
    r = f.b("logs", run_id, "t")
    assert "log not available (worker %s unreachable)" % w.name in r.out + r.err, r


# ---- `baram workers list` of a fleet ----------------------------------------------------


@pytest.mark.pg_only
def test_workers_list_shows_queues_slots_and_running(workers):
    f = workers
    f.write("slow.yaml", "dag: slow\ntasks:\n  s:\n    run: 'STAMP_S; sleep 30'\n")
    f.scheduler()
    w = f.worker("lister", queues="default,gpu", slots=3)
    f.trigger("slow")
    wait_until(lambda: f.stamped("s"), 15, "s started")

    def mine():
        return [x for x in f.registry() if x["name"] == w.name]
    wait_until(lambda: mine() and mine()[0]["running"] == 1, 10, "running 1")
    (x,) = mine()
    assert x["role"] == "worker" and x["state"] == "active" and x["pid"] == w.pid, x
    assert x["queues"] == ["default", "gpu"] and x["slots"] == 3, x
    assert json.dumps(x)
