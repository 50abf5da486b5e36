"""`baram workers list` (SPEC section 12) on either backend: the registry row of a scheduler
as it starts, runs a try, stops, and is replaced by its successor on the same home after a
kill -9. (On PostgreSQL `baram standalone` also registers the worker inside it; only the
scheduler rows are followed here.)"""

import socket

from daemon_util import daemons, poll  # noqa: F401 (daemons: a fixture)


def workers(b):
    r = b("workers", "list", "--json")
    assert r.rc == 0, r
    return r.json["workers"]


def schedulers(b):
    return [w for w in workers(b) if w["role"] == "scheduler"]


def test_workers_list_without_a_database(baram):
    r = baram("workers", "list")
    assert r.rc == 0 and r.out == "no schedulers or workers registered\n", r
    assert workers(baram) == []
    r = baram("workers", "--help")
    assert r.rc == 0 and r.out.startswith("usage: baram workers list [--json]"), r
    r = baram("workers", "lsit")
    assert r.rc == 2 and "did you mean 'list'?" in r.err, r
    r = baram("workers", "list", "--jsn")
    assert r.rc == 2, r


def test_workers_list_follows_a_scheduler(baram, daemons):
    baram.env["BARAM_DAGS"] = str(baram.dags)
    baram.write("slow.yaml", "dag: slow\ntasks:\n  a: {run: 'sleep 30', retries: 1}\n")
    d = daemons(baram)
    (w,) = schedulers(baram)
    assert w["role"] == "scheduler" and w["state"] == "active" and w["pid"] == d.pid
    assert w["hostname"] == socket.gethostname() and w["name"] == "%s:%d" % (w["hostname"], d.pid)
    assert w["queues"] == ["default"] and w["slots"] >= 1 and w["running"] == 0
    assert w["started_at"].endswith("Z") and w["heartbeat_at"] >= w["started_at"]
    assert baram("dags", "trigger", "slow").rc == 0
    assert poll(lambda: schedulers(baram)[0]["running"] == 1, 10), workers(baram)
    table = baram("workers", "list")
    assert table.rc == 0, table
    head, *rows = table.out.splitlines()
    assert head.split() == ["NAME", "ROLE", "HOST", "PID", "QUEUES", "SLOTS", "RUNNING", "STATE",
                            "STARTED", "HEARTBEAT"]
    # schedulers first
    assert rows[0].split()[:8] == [w["name"], "scheduler", w["hostname"], str(d.pid), "default",
                                   str(w["slots"]), "1", "active"], table.out
    d.kill9()
    d2 = daemons(baram, "--grace", "0s", log_name="daemon2.log")
    ws = schedulers(baram)
    assert [(x["pid"], x["state"]) for x in ws] == [(d.pid, "dead"), (d2.pid, "active")], ws
    # the successor resumed the run at once: its try is running under it
    assert poll(lambda: schedulers(baram)[1]["running"] == 1, 10), (workers(baram), d2.log())
    assert d2.stop() == 0
    assert [x["state"] for x in schedulers(baram)] == ["dead", "stopped"]
    # the dead one stands out in the table
    rows = baram("workers", "list").out.splitlines()[1:]
    assert [r.split()[7] for r in rows if r.split()[1] == "scheduler"] == ["DEAD", "stopped"], rows
